//! # Client: the client's side of presence, introduction and rendezvous, sans IO
//!
//! Five state machines, each owning one or two onion streams that the driver opened and
//! named with [`StreamHandle`](crate::StreamHandle)s. The driver only moves bytes: it feeds
//! what a stream delivered to the machine that owns it and writes back what the machine
//! returns.
//!
//! ## Terminology
//! * **Announcer** ([`Announcer`], Bob): one presence point. Registers at a presence node,
//!   keeps the record alive, receives and checks introductions, answers them.
//! * **Responder** ([`Responder`], Bob): one accepted introduction. Joins the rendezvous
//!   point, checks the introducer's finish, yields a [`Session`].
//! * **Initiator** ([`Initiator`], Alice): one attempt to reach a presence point.
//!   Establishes a rendezvous point, introduces herself, waits for the answer and the join,
//!   finishes the handshake, yields a [`Session`].
//! * **Session** ([`Session`], both): an established end-to-end channel on the rendezvous
//!   stream: messages in, `Relay` frames out.
//! * **Looker** ([`Looker`], Alice): one lookup of an identity's presence records at a
//!   node's `lookup` service; checks every record itself and yields them in the order to
//!   try.
//!
//! ## Interface
//! Every machine has the same shape, after `quinn-proto`:
//! * commands from the local user (`start`, `accept`, `decline`, `send`) return the bytes to
//!   write as [`Transmit`]s, or a [`ClientError`] that changes nothing;
//! * inputs from the network and the clock (`handle_data`, `handle_timeout`,
//!   `handle_stream_closed`) return an [`Output`]: transmits to write in order, streams to
//!   close after them, and events. Peer faults never come back as `Err`: they end the
//!   machine with a last event (`Failed`, or `Refused` from the announcer) and close its
//!   streams;
//! * `poll_timeout` says when to call `handle_timeout` next. Time is `now` in unix seconds.
//!
//! ## Usage (a driver)
//! 1. Bob: per presence point, open a stream to the node's `presence` service, build an
//!    [`Announcer`], write [`Announcer::start`]. Feed the stream to
//!    [`Announcer::handle_data`] with the chain view and the client's one
//!    [`ReplayCache`](crate::replay::ReplayCache). On `IntroductionReceived`, ask the user;
//!    [`Announcer::accept`] yields the introduction: open a stream to its rendezvous node's
//!    `rendezvous` service and build a [`Responder`] on it.
//! 2. Alice: open a stream to a node's `lookup` service, build a [`Looker`] for Bob's
//!    identity and write its request; its `Found` event holds his checked records in the
//!    order to try (or check records fetched otherwise with
//!    [`verify_presence_record`](crate::record::verify_presence_record) and order them with
//!    [`preferred_presence`]). Open a stream to a rendezvous node and one to the record's
//!    presence node, build an [`Initiator`].
//! 3. Both: the `Established` event hands over a [`Session`]; events wrapped in `Session(..)`
//!    in the same output are the session's (messages that arrived with the handshake).
//!
//! ## Bounds
//! No machine queues anything between calls except the announcer's pending introductions
//! ([`AnnouncerConfig::max_pending`], default 16). An output holds what one input produced:
//! at most a few transmits per received frame, and a message's frames.

mod announcer;
mod error;
mod initiator;
mod looker;
mod output;
mod responder;
mod session;

pub use announcer::{presence_topic, Announcer, AnnouncerConfig, AnnouncerEvent};
pub use error::ClientError;
pub use initiator::{
    preferred_presence, Initiator, InitiatorConfig, InitiatorEvent, InitiatorStreams,
};
pub use looker::{Looker, LookerConfig, LookerEvent};
pub use output::{Output, Transmit};
pub use responder::{Responder, ResponderConfig, ResponderEvent};
pub use session::{Session, SessionEvent};

use psp_onion::crypto::Sr25519Keypair;

use crate::crypto::AnnouncementSecret;

/// A client identity: the key pair registered on chain, its access certificate and its
/// X25519 announcement secret (whose public half the certificate certifies). Share it
/// between machines with an `Arc`; nothing in it changes.
pub struct Identity {
    key: Sr25519Keypair,
    certificate: Vec<u8>,
    announcement: AnnouncementSecret,
}

impl Identity {
    /// Bundles the identity's keys and its certificate (encoded).
    pub fn new(
        key: Sr25519Keypair,
        certificate: Vec<u8>,
        announcement: AnnouncementSecret,
    ) -> Self {
        Self {
            key,
            certificate,
            announcement,
        }
    }

    /// The identity key: the public half of the key pair.
    pub fn id(&self) -> [u8; 32] {
        self.key.public()
    }

    /// The key pair.
    pub fn key(&self) -> &Sr25519Keypair {
        &self.key
    }

    /// The access certificate, encoded.
    pub fn certificate(&self) -> &[u8] {
        &self.certificate
    }

    /// The announcement secret.
    pub fn announcement(&self) -> &AnnouncementSecret {
        &self.announcement
    }
}

impl core::fmt::Debug for Identity {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Identity")
            .field("key", &self.key)
            .finish_non_exhaustive()
    }
}
