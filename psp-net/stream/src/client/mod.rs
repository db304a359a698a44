//! # Client: the producer's side of stream creation, sans IO
//!
//! Three state machines, each owning one onion stream the driver opened and named with a
//! [`StreamHandle`], shaped like `psp-rendezvous`'s client machines:
//!
//! * [`ReceiptClient`]: over a circuit to an elected oracle's `oracle` service, proves the
//!   identity (certificate and a signature), sends the blinded request for one tier, and
//!   unblinds the answer into a [`Receipt`](psp_receipts::Receipt) (refusing a signature that
//!   does not verify).
//! * [`TokenClient`]: the same exchange with the same `oracle` service for a consumer token
//!   (`psp-usage`, issue 14) under the oracle's consumer-token key of the epoch, unblinded
//!   into a [`ConsumerToken`](psp_usage::token::ConsumerToken) that backs one session.
//! * [`StreamCreator`]: over a *fresh* anonymous circuit to any node's `landing` service,
//!   hands over the receipt and the distribution nodes and checks the signed stream record it
//!   gets back (signature, landing node live, the stream id derived from the receipt, the
//!   access points and format asked for).
//!
//! `new` returns the machine and the request to write; `handle_data`, `handle_timeout` and
//! `handle_stream_closed` return an [`Output`]: transmits (none after the request), streams to
//! close, and one last event. Peer faults never come back as `Err`: they end the machine with
//! a `Failed` event. Use a different circuit for the two machines: the oracle knows who
//! asks, the landing node must not.

mod creator;
mod receipt;
mod token;

pub use creator::{CreatorEvent, StreamCreator};
pub use psp_rendezvous::client::{Output, Transmit};
pub use receipt::{ReceiptClient, ReceiptEvent};
pub use token::{TokenClient, TokenEvent};

use psp_onion::crypto::Sr25519Keypair;
use psp_receipts::{BlindSignature, KeyId};
use psp_rendezvous::StreamHandle;

use crate::error::StreamError;
use crate::wire::{BoundedBytes, Deframer, OracleMsg};

/// How long a machine waits for its answer by default: 30 s.
pub const DEFAULT_TIMEOUT_SECS: u64 = 30;

/// The public methods both machines delegate to their [`Exchange`] in `exchange`:
/// `stream`, `is_closed`, `poll_timeout`, `handle_timeout`, `handle_stream_closed`.
macro_rules! exchange_methods {
    ($event:ty, $peer:literal) => {
        #[doc = concat!("The stream to the ", $peer, ".")]
        pub fn stream(&self) -> StreamHandle {
            self.exchange.stream
        }

        /// Whether the machine ended.
        pub fn is_closed(&self) -> bool {
            self.exchange.is_closed()
        }

        /// When [`Self::handle_timeout`] must run.
        pub fn poll_timeout(&self) -> Option<u64> {
            self.exchange.poll_timeout()
        }

        /// Ends the machine if its deadline passed.
        pub fn handle_timeout(&mut self, now: u64) -> Output<$event> {
            self.exchange.handle_timeout(now)
        }

        /// The stream closed before the answer.
        pub fn handle_stream_closed(&mut self) -> Output<$event> {
            self.exchange.handle_stream_closed()
        }
    };
}
use exchange_methods;

/// A machine's last event, one of which is a failure.
trait Event {
    fn failed(error: StreamError) -> Self;
}

impl Event for ReceiptEvent {
    fn failed(error: StreamError) -> Self {
        Self::Failed(error)
    }
}

impl Event for TokenEvent {
    fn failed(error: StreamError) -> Self {
        Self::Failed(error)
    }
}

impl Event for CreatorEvent {
    fn failed(error: StreamError) -> Self {
        Self::Failed(error)
    }
}

/// Starts a blind-signature exchange with an `oracle` service: the `ReceiptRequest` for
/// `blinded` under the key `tier` of `oracle`, signed by `identity` whose access certificate
/// is `certificate`, and the exchange holding `state` (the blinding state) until the answer.
#[allow(clippy::too_many_arguments)]
fn blind_exchange<S>(
    stream: StreamHandle,
    identity: &Sr25519Keypair,
    certificate: &[u8],
    oracle: &[u8; 32],
    tier: KeyId,
    blinded: &[u8],
    state: S,
    now: u64,
    timeout_secs: u64,
) -> Result<(Exchange<S>, Transmit), StreamError> {
    let certificate = BoundedBytes::new("certificate", certificate.to_vec())
        .map_err(StreamError::malformed("certificate"))?;
    let signature = identity.sign(&OracleMsg::possession_message(oracle, &tier, blinded));
    let blinded = BoundedBytes::new("blinded message", blinded.to_vec())
        .map_err(StreamError::malformed("blinded message"))?;
    let msg = OracleMsg::ReceiptRequest {
        certificate,
        tier,
        blinded,
        signature,
    };
    let exchange = Exchange::new(stream, state, "oracle", ORACLE_WAITING, now, timeout_secs);
    Ok((
        exchange,
        Transmit {
            stream,
            bytes: msg.encode(),
        },
    ))
}

/// What a blind-signature machine waits for.
const ORACLE_WAITING: &str = "waiting for the oracle's answer";

/// The blind signature in an oracle's answer `body`, or why there is none.
fn blind_answer(body: &[u8]) -> Result<BlindSignature, StreamError> {
    match OracleMsg::decode(body) {
        Ok(OracleMsg::ReceiptIssued { blind_signature }) => {
            Ok(BlindSignature::from_bytes(blind_signature.into_vec()))
        }
        Ok(OracleMsg::Refused(reason)) => Err(StreamError::OracleRefused(reason)),
        Ok(other) => Err(StreamError::UnexpectedMessage {
            message: other.name(),
            state: ORACLE_WAITING,
        }),
        Err(e) => Err(StreamError::malformed("oracle message")(e)),
    }
}

/// The skeleton both machines share: one request sent on `stream`, one answer awaited until
/// `deadline`, then the stream closed with one event. `state` is what the machine keeps to
/// check the answer against; `None` once ended.
#[derive(Debug)]
struct Exchange<S> {
    stream: StreamHandle,
    deadline: u64,
    deframer: Deframer,
    state: Option<S>,
    /// The service asked (`oracle`, `landing`), for errors.
    service: &'static str,
    /// What the machine waits for, for errors.
    waiting: &'static str,
}

impl<S> Exchange<S> {
    fn new(
        stream: StreamHandle,
        state: S,
        service: &'static str,
        waiting: &'static str,
        now: u64,
        timeout_secs: u64,
    ) -> Self {
        Self {
            stream,
            deadline: now.saturating_add(timeout_secs),
            deframer: Deframer::default(),
            state: Some(state),
            service,
            waiting,
        }
    }

    fn is_closed(&self) -> bool {
        self.state.is_none()
    }

    fn poll_timeout(&self) -> Option<u64> {
        (!self.is_closed()).then_some(self.deadline)
    }

    fn handle_timeout<E: Event>(&mut self, now: u64) -> Output<E> {
        if !self.is_closed() && now >= self.deadline {
            let deadline = self.deadline;
            return self.fail(StreamError::TimedOut {
                step: self.waiting,
                deadline,
            });
        }
        Output::default()
    }

    fn handle_stream_closed<E: Event>(&mut self) -> Output<E> {
        if self.is_closed() {
            return Output::default();
        }
        self.fail(StreamError::StreamClosed {
            service: self.service,
            state: "waiting for the answer",
        })
    }

    /// Feeds bytes that arrived at `now`: `Ok` with the answer's body once whole, or `Err`
    /// with what to return (nothing yet, the machine ended, timed out, or a bad frame —
    /// `frame` names it).
    fn receive<E: Event>(
        &mut self,
        now: u64,
        bytes: &[u8],
        frame: &'static str,
    ) -> Result<Vec<u8>, Output<E>> {
        if self.is_closed() {
            return Err(Output::default());
        }
        if now >= self.deadline {
            return Err(self.handle_timeout(now));
        }
        match self.deframer.feed(bytes) {
            Ok(bodies) => bodies.into_iter().next().ok_or_else(Output::default),
            Err(e) => Err(self.fail(StreamError::malformed(frame)(e))),
        }
    }

    /// [`Self::receive`] for a blind-signature exchange: once the oracle's answer is whole,
    /// the request kept for it and the blind signature it carries.
    fn receive_blind<E: Event>(
        &mut self,
        now: u64,
        bytes: &[u8],
    ) -> Result<(S, BlindSignature), Output<E>> {
        let body = self.receive(now, bytes, "oracle frame")?;
        let blind = blind_answer(&body).map_err(|e| self.fail(e))?;
        let request = self.state.take().ok_or_else(Output::default)?;
        Ok((request, blind))
    }

    fn fail<E: Event>(&mut self, error: StreamError) -> Output<E> {
        self.end(E::failed(error))
    }

    fn end<E>(&mut self, event: E) -> Output<E> {
        self.state = None;
        Output {
            transmits: Vec::new(),
            close: vec![self.stream],
            events: vec![event],
        }
    }
}
