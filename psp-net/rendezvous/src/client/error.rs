//! Why a client machine refused a command or ended.

use crate::channel::ChannelError;
use crate::handshake::HandshakeError;
use crate::ids::{IntroId, StreamHandle};
use crate::intro::IntroError;
use crate::wire::{LookupRefusal, RendezvousRefusal, WireError};

/// Why a client command was refused, a machine ended (in its `Failed` or `Closed` event) or
/// an introduction was dropped.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// The machine already ended (after its last event); build a new one.
    #[error("the {machine} has ended")]
    Ended {
        /// `announcer`, `initiator`, `responder`, `session` or `looker`.
        machine: &'static str,
    },
    /// `start` called twice.
    #[error("the announcer was already started")]
    AlreadyStarted,
    /// Bytes or a close for a stream the machine does not own: a driver bug.
    #[error("stream {stream:?} does not belong to this {machine}")]
    UnknownStream {
        /// The stream named.
        stream: StreamHandle,
        /// The machine.
        machine: &'static str,
    },
    /// The node's bytes are not messages of its service: the stream's framing is lost.
    #[error("malformed {service} message from the node: {source}")]
    Malformed {
        /// `presence`, `rendezvous` or `lookup`.
        service: &'static str,
        /// What the decoder said.
        source: WireError,
    },
    /// A message the node may not send in this state (a faulty or hostile node).
    #[error("unexpected {message} from the {service} node while {state}")]
    Unexpected {
        /// `presence`, `rendezvous` or `lookup`.
        service: &'static str,
        /// The message's name.
        message: &'static str,
        /// The machine's state.
        state: &'static str,
    },
    /// A step did not complete by its deadline.
    #[error("timed out {step} (deadline {deadline})")]
    TimedOut {
        /// The step that was waiting.
        step: &'static str,
        /// The deadline, unix seconds.
        deadline: u64,
    },
    /// The stream closed while the machine still needed it.
    #[error("the {service} stream closed while {state}")]
    StreamClosed {
        /// `presence`, `rendezvous` or `lookup`.
        service: &'static str,
        /// The machine's state.
        state: &'static str,
    },
    /// The presence record lapsed: no renewal was confirmed before it expired.
    #[error("presence record lapsed at {expires_at} without a confirmed renewal")]
    RecordLapsed {
        /// The expiry that passed.
        expires_at: u64,
    },
    /// The certificate ends before a record could be (re)issued: renew it
    /// (`Announcer::renew_certificate`).
    #[error("certificate ends at {not_after}; a presence record cannot outlive it (now {now})")]
    CertificateEnding {
        /// The certificate's end.
        not_after: u64,
        /// Current time.
        now: u64,
    },
    /// The presence record could not be built (a certificate too long for a record value).
    #[error("presence record not encodable: {0}")]
    Record(WireError),
    /// The rendezvous node refused (`Establish` or `Join`), or told a linked side it closed.
    #[error("rendezvous node refused: {0:?}")]
    RendezvousRefused(RendezvousRefusal),
    /// An introduction did not open or did not check, or could not be sealed.
    #[error("introduction: {0}")]
    Introduction(#[from] IntroError),
    /// More introductions pending than the announcer keeps; the new one was cancelled.
    #[error("too many pending introductions (limit {max})")]
    TooManyPending {
        /// The bound.
        max: usize,
    },
    /// The presence node forwarded a second introduction under a pending id.
    #[error("introduction id {0:?} is already pending")]
    DuplicateIntroduction(IntroId),
    /// `accept` or `decline` of an introduction that is not pending (answered, withdrawn or
    /// never received).
    #[error("no pending introduction {0:?}")]
    UnknownIntroduction(IntroId),
    /// The presence record to introduce through expired.
    #[error("presence record expired at {expires_at} (now {now}); look it up again")]
    PresenceExpired {
        /// The record's expiry.
        expires_at: u64,
        /// Current time.
        now: u64,
    },
    /// The end-to-end handshake failed: the peer is not who it should be, or bytes were
    /// altered.
    #[error("handshake: {0}")]
    Handshake(#[from] HandshakeError),
    /// The channel failed (tampered, reordered, replayed or oversized frame) or a message is
    /// too long to send.
    #[error("channel: {0}")]
    Channel(#[from] ChannelError),
    /// The lookup service refused the request.
    #[error("lookup node refused: {0:?}")]
    LookupRefused(LookupRefusal),
    /// A lookup of no slots, or of more than a request may ask.
    #[error("a lookup asks for 1 to {max} presence slots, not {slots}")]
    LookupSlots {
        /// The slots asked.
        slots: u8,
        /// The bound.
        max: u8,
    },
}
