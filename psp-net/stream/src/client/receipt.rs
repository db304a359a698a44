//! The receipt client: one issuance at one oracle.

use psp_onion::crypto::Sr25519Keypair;
use psp_receipts::{PublishedKey, Receipt, ReceiptRequest, StreamParams};
use psp_rendezvous::StreamHandle;

use super::{Exchange, Output, Transmit};
use crate::error::StreamError;

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
        let (request, blinded) = ReceiptRequest::new(key, params, *landing)?;
        let (exchange, transmit) = super::blind_exchange(
            stream,
            identity,
            certificate,
            oracle,
            key.key_id(),
            blinded.as_bytes(),
            request,
            now,
            timeout_secs,
        )?;
        Ok((Self { exchange }, transmit))
    }

    super::exchange_methods!(ReceiptEvent, "oracle");

    /// Bytes arrived from the oracle.
    pub fn handle_data(&mut self, now: u64, bytes: &[u8]) -> Output<ReceiptEvent> {
        let (request, blind) = match self.exchange.receive_blind(now, bytes) {
            Ok(answer) => answer,
            Err(output) => return output,
        };
        match request.finalize(&blind) {
            Ok(receipt) => self.exchange.end(ReceiptEvent::Issued(receipt)),
            Err(e) => self.exchange.end(ReceiptEvent::Failed(e.into())),
        }
    }
}
