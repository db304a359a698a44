//! The receipt client: one issuance at one oracle.

use psp_onion::crypto::Sr25519Keypair;
use psp_receipts::{BlindSignature, PublishedKey, Receipt, ReceiptRequest, StreamParams};
use psp_rendezvous::StreamHandle;

use super::{Output, Transmit};
use crate::error::StreamError;
use crate::wire::{BoundedBytes, Deframer, OracleMsg};

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
    stream: StreamHandle,
    deadline: u64,
    deframer: Deframer,
    /// `None` once ended.
    request: Option<ReceiptRequest>,
}

impl ReceiptClient {
    /// Blinds a receipt for `params` under `key` (the oracle's published key of the wanted
    /// tier in the current epoch; `params` within its tier) and signs the request with
    /// `identity` for the oracle `oracle` (its node id). Returns the machine and the
    /// `ReceiptRequest` to write on `stream`.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        stream: StreamHandle,
        identity: &Sr25519Keypair,
        certificate: &[u8],
        oracle: &[u8; 32],
        key: &PublishedKey,
        params: StreamParams,
        now: u64,
        timeout_secs: u64,
    ) -> Result<(Self, Transmit), StreamError> {
        let certificate = BoundedBytes::new("certificate", certificate.to_vec())
            .map_err(StreamError::malformed("certificate"))?;
        let (request, blinded) = ReceiptRequest::new(key, params)?;
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
            stream,
            deadline: now.saturating_add(timeout_secs),
            deframer: Deframer::default(),
            request: Some(request),
        };
        Ok((
            client,
            Transmit {
                stream,
                bytes: msg.encode(),
            },
        ))
    }

    /// The stream to the oracle.
    pub fn stream(&self) -> StreamHandle {
        self.stream
    }

    /// Whether the machine ended.
    pub fn is_closed(&self) -> bool {
        self.request.is_none()
    }

    /// When [`Self::handle_timeout`] must run.
    pub fn poll_timeout(&self) -> Option<u64> {
        (!self.is_closed()).then_some(self.deadline)
    }

    /// Ends the machine if its deadline passed.
    pub fn handle_timeout(&mut self, now: u64) -> Output<ReceiptEvent> {
        if !self.is_closed() && now >= self.deadline {
            let deadline = self.deadline;
            return self.fail(StreamError::TimedOut {
                step: "waiting for the oracle's answer",
                deadline,
            });
        }
        Output::default()
    }

    /// The stream closed before the answer.
    pub fn handle_stream_closed(&mut self) -> Output<ReceiptEvent> {
        if self.is_closed() {
            return Output::default();
        }
        self.fail(StreamError::StreamClosed {
            service: "oracle",
            state: "waiting for the answer",
        })
    }

    /// Bytes arrived from the oracle.
    pub fn handle_data(&mut self, now: u64, bytes: &[u8]) -> Output<ReceiptEvent> {
        if self.is_closed() {
            return Output::default();
        }
        if now >= self.deadline {
            return self.handle_timeout(now);
        }
        let body = match self.deframer.feed(bytes) {
            Ok(bodies) => match bodies.into_iter().next() {
                Some(body) => body,
                None => return Output::default(),
            },
            Err(e) => return self.fail(StreamError::malformed("oracle frame")(e)),
        };
        match OracleMsg::decode(&body) {
            Ok(OracleMsg::ReceiptIssued { blind_signature }) => {
                let Some(request) = self.request.take() else {
                    return Output::default();
                };
                let blind = BlindSignature::from_bytes(blind_signature.into_vec());
                match request.finalize(&blind) {
                    Ok(receipt) => self.end(ReceiptEvent::Issued(receipt)),
                    Err(e) => self.end(ReceiptEvent::Failed(e.into())),
                }
            }
            Ok(OracleMsg::Refused(reason)) => self.fail(StreamError::OracleRefused(reason)),
            Ok(other) => self.fail(StreamError::UnexpectedMessage {
                message: other.name(),
                state: "waiting for the oracle's answer",
            }),
            Err(e) => self.fail(StreamError::malformed("oracle message")(e)),
        }
    }

    fn fail(&mut self, error: StreamError) -> Output<ReceiptEvent> {
        self.end(ReceiptEvent::Failed(error))
    }

    fn end(&mut self, event: ReceiptEvent) -> Output<ReceiptEvent> {
        self.request = None;
        Output {
            transmits: Vec::new(),
            close: vec![self.stream],
            events: vec![event],
        }
    }
}
