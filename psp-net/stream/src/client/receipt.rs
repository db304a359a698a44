//! The receipt client: one issuance at one oracle.

use psp_onion::crypto::Sr25519Keypair;
use psp_receipts::{BlindSignature, PublishedKey, Receipt, ReceiptRequest, StreamParams};
use psp_rendezvous::StreamHandle;

use super::{Exchange, Output, Transmit};
use crate::error::StreamError;
use crate::wire::{BoundedBytes, OracleMsg};

/// The receipt client's last event.
#[derive(Debug)]
#[non_exhaustive]
pub enum ReceiptEvent {
    /// The oracle signed; the receipt is unblinded and verified under the tier's key.
    Issued(Receipt),
    /// The oracle refused ([`StreamError::OracleRefused`]), stayed silent, closed the stream,
    /// sent something that is not an answer, or a signature that does not verify.
    Failed(StreamError),
}

/// One receipt request at one oracle.
#[derive(Debug)]
pub struct ReceiptClient {
    /// The blinding state, to unblind the answer.
    exchange: Exchange<ReceiptRequest>,
}

impl ReceiptClient {
    /// Blinds a receipt for `params` under `key` (the oracle's published key of the wanted
    /// tier in the current epoch; `params` within its tier), valid at the landing node
    /// `landing` only, and signs the request with `identity` for the oracle `oracle` (its
    /// node id; it never learns `landing`). Returns the machine and the `ReceiptRequest` to
    /// write on `stream`.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        stream: StreamHandle,
        identity: &Sr25519Keypair,
        certificate: &[u8],
        oracle: &[u8; 32],
        key: &PublishedKey,
        params: StreamParams,
        landing: &[u8; 32],
        now: u64,
        timeout_secs: u64,
    ) -> Result<(Self, Transmit), StreamError> {
        let certificate = BoundedBytes::new("certificate", certificate.to_vec())
            .map_err(StreamError::malformed("certificate"))?;
        let (request, blinded) = ReceiptRequest::new(key, params, *landing)?;
        let tier = key.key_id();
        let signature = identity.sign(&OracleMsg::possession_message(
            oracle,
            &tier,
            blinded.as_bytes(),
        ));
        let blinded = BoundedBytes::new("blinded message", blinded.as_bytes().to_vec())
            .map_err(StreamError::malformed("blinded message"))?;
        let msg = OracleMsg::ReceiptRequest {
            certificate,
            tier,
            blinded,
            signature,
        };
        let client = Self {
            exchange: Exchange::new(
                stream,
                request,
                "oracle",
                "waiting for the oracle's answer",
                now,
                timeout_secs,
            ),
        };
        Ok((
            client,
            Transmit {
                stream,
                bytes: msg.encode(),
            },
        ))
    }

    super::exchange_methods!(ReceiptEvent, "oracle");

    /// Bytes arrived from the oracle.
    pub fn handle_data(&mut self, now: u64, bytes: &[u8]) -> Output<ReceiptEvent> {
        let body = match self.exchange.receive(now, bytes, "oracle frame") {
            Ok(body) => body,
            Err(output) => return output,
        };
        match OracleMsg::decode(&body) {
            Ok(OracleMsg::ReceiptIssued { blind_signature }) => {
                let Some(request) = self.exchange.state.take() else {
                    return Output::default();
                };
                let blind = BlindSignature::from_bytes(blind_signature.into_vec());
                match request.finalize(&blind) {
                    Ok(receipt) => self.exchange.end(ReceiptEvent::Issued(receipt)),
                    Err(e) => self.exchange.end(ReceiptEvent::Failed(e.into())),
                }
            }
            Ok(OracleMsg::Refused(reason)) => {
                self.exchange.fail(StreamError::OracleRefused(reason))
            }
            Ok(other) => self.exchange.fail(StreamError::UnexpectedMessage {
                message: other.name(),
                state: "waiting for the oracle's answer",
            }),
            Err(e) => self
                .exchange
                .fail(StreamError::malformed("oracle message")(e)),
        }
    }
}
