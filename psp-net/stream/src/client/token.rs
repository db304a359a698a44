//! The token client: one consumer-token issuance at one oracle (issue 14, `psp-usage`).
//!
//! The same exchange as [`ReceiptClient`](super::ReceiptClient), on the same `oracle`
//! service: the certificate, the key id (the oracle's consumer-token key of the epoch), the
//! blinded token message and the identity's signature over them; the answer is a
//! `ReceiptIssued` blind signature, unblinded here into a [`ConsumerToken`] and checked under
//! the token key.

use psp_onion::crypto::Sr25519Keypair;
use psp_rendezvous::StreamHandle;
use psp_usage::token::{ConsumerToken, TokenKey, TokenRequest};

use super::{Exchange, Output, Transmit};
use crate::error::StreamError;

/// The token client's last event.
#[derive(Debug)]
#[non_exhaustive]
pub enum TokenEvent {
    /// The oracle signed; the token is unblinded and verified under the oracle's token key.
    Issued(ConsumerToken),
    /// The oracle refused ([`StreamError::OracleRefused`]), stayed silent, closed the stream,
    /// sent something that is not an answer, or a signature that does not verify.
    Failed(StreamError),
}

/// One consumer-token request at one oracle.
#[derive(Debug)]
pub struct TokenClient {
    /// The blinding state, to unblind the answer.
    exchange: Exchange<TokenRequest>,
}

impl TokenClient {
    /// Blinds a token for `session` (a session id, `psp_primitives::rewards::SessionId`)
    /// under `key` (an oracle's published consumer-token key of
    /// the epoch the session counts in) and signs the request with `identity`, whose access
    /// certificate is `certificate`, for the oracle that holds `key` (it never learns
    /// `session`). Returns the machine and the `ReceiptRequest` to write on `stream`.
    pub fn new(
        stream: StreamHandle,
        identity: &Sr25519Keypair,
        certificate: &[u8],
        key: &TokenKey,
        session: [u8; 32],
        now: u64,
        timeout_secs: u64,
    ) -> Result<(Self, Transmit), StreamError> {
        let (request, blinded) = TokenRequest::new(key, session)?;
        let (exchange, transmit) = super::blind_exchange(
            stream,
            identity,
            certificate,
            &key.oracle.0,
            key.key_id(),
            blinded.as_bytes(),
            request,
            now,
            timeout_secs,
        )?;
        Ok((Self { exchange }, transmit))
    }

    super::exchange_methods!(TokenEvent, "oracle");

    /// Bytes arrived from the oracle.
    pub fn handle_data(&mut self, now: u64, bytes: &[u8]) -> Output<TokenEvent> {
        let (request, blind) = match self.exchange.receive_blind(now, bytes) {
            Ok(answer) => answer,
            Err(output) => return output,
        };
        match request.finalize(&blind) {
            Ok(token) => self.exchange.end(TokenEvent::Issued(token)),
            Err(e) => self.exchange.end(TokenEvent::Failed(e.into())),
        }
    }
}
