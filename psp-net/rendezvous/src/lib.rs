//! # psp-rendezvous: private messaging between two identities, sans IO
//!
//! The protocol core of PSP's presence, introduction and rendezvous (overview §6.2–7.2), after
//! Tor's onion services (rend-spec-v3) with identities checked against the chain and
//! receiver-set channel limits. Nothing here owns a socket, a task or a clock: time comes in
//! as `now` (unix seconds), randomness as a `rand_core::CryptoRngCore`, and the node services
//! answer through actions the driver polls, like `quinn-proto`.
//!
//! ## The flow
//! 1. **Presence**: Bob registers at a presence node over a circuit ([`wire::PresenceMsg`]
//!    `Register`, with an owner-signed presence record whose value, a
//!    [`record::PresenceValue`], carries his access certificate). The node's
//!    [`presence::Presence`] checks it and asks the driver to co-sign and publish it.
//! 2. **Lookup**: over a 3-hop circuit Alice asks a node's lookup service
//!    ([`wire::LookupMsg`] `Request`, served by [`lookup::Lookup`]) for Bob's presence
//!    records; the node fetches them from the DHT and hands them over unchecked. Alice's
//!    [`client::Looker`] checks each herself with [`record::verify_presence_record`] (which
//!    yields his presence node and his X25519 announcement key) and trusts no node.
//! 3. **Rendezvous point**: Alice draws a [`Cookie`] and an [`handshake::InitiatorHandshake`],
//!    and establishes the cookie at a rendezvous node ([`wire::RendezvousMsg`] `Establish`).
//! 4. **Introduction**: she seals an [`intro::Introduction`] to Bob's announcement key and
//!    sends it to his presence node (`Introduce`), which forwards it to Bob. Bob opens it
//!    ([`intro::open`]) and checks it ([`intro::UncheckedIntroduction::check`], with his
//!    [`replay::ReplayCache`]), then accepts or declines.
//! 5. **Join**: Bob answers the handshake ([`handshake::ResponderHandshake`]) and joins the
//!    cookie at the rendezvous node; [`rendezvous::Rendezvous`] links the two streams and
//!    hands Alice his reply.
//! 6. **Channel**: Alice checks Bob's signature and sends hers; both hold a
//!    [`channel::Channel`] that encrypts messages end to end and splits them into cell-sized
//!    frames relayed as `Relay` messages.
//!
//! ## Modules
//! * [`wire`]: the messages of the `presence`, `rendezvous` and `lookup` services, framing,
//!   bounds.
//! * [`record`]: the presence record's value and the looker's check of a record.
//! * [`intro`]: the sealed introduction; [`replay`]: the recipient's replay cache.
//! * [`handshake`]: the end-to-end authenticated key exchange; [`channel`]: the channel.
//! * [`presence`], [`rendezvous`], [`lookup`]: the three node services' state machines.
//! * [`client`]: the client's side as state machines: [`client::Announcer`] (a presence
//!   point), [`client::Initiator`] (introduce and rendezvous), [`client::Responder`] (answer
//!   an introduction), [`client::Session`] (the channel on its stream) and
//!   [`client::Looker`] (a lookup of presence records). A client program
//!   only moves bytes between them and its onion streams.
//! * [`chain`]: the chain state certificates are checked against.
//! * [`crypto`]: the only module naming primitive crates.
//!
//! What each node learns: the presence node sees Bob's registration (and, for an anonymous
//! point, not his address) and sealed introductions it cannot open; the rendezvous node sees a
//! cookie and opaque bytes. Neither learns Alice's identity. The lookup node sees an identity
//! looked up, not who looks.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod chain;
pub mod channel;
pub mod client;
pub mod crypto;
mod deadlines;
pub mod handshake;
mod ids;
pub mod intro;
pub mod lookup;
pub mod presence;
pub mod record;
pub mod rendezvous;
pub mod replay;
mod service;
pub mod wire;

pub use chain::ChainView;
pub use ids::{Cookie, IntroId, StreamHandle};
pub use wire::fuzz_decode_all;
