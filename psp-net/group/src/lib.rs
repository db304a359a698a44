//! # psp-group: the sans-IO core of PSP groups
//!
//! A group is a small set of members (sr25519 identities, each with an X25519 key-agreement
//! key) that share a group key `K_c`. Members admit and expel by signed vote, heartbeat, and
//! drop silent, expelled and leaving members with a key rollout led by a member drawn at
//! random in a way every member can check. Group messages are sealed under `K_c` with the
//! sender hidden inside. The design follows the Peerster clusters report (the seed); the
//! README compares it with MLS and says what it gives up.
//!
//! Nothing here owns a socket, a task or a clock: time comes in as unix seconds, randomness
//! as a `CryptoRngCore`, packets as bytes, and [`Group`] answers through
//! [`Group::poll_transmit`], [`Group::poll_event`] and [`Group::poll_timeout`] (quinn-proto's
//! shape). Multi-member tests run in one process and jump time.
//!
//! Modules, lowest first:
//! * [`crypto`]: the only module naming primitive crates: pairwise seals, the group key.
//! * [`ids`]: ids, rules and bounds.
//! * [`wire`]: strict encode/decode of every packet; signed packets decode unchecked.
//! * [`message`]: group messages under `K_c`.
//! * [`vote`]: open proposals, signed ballots, the recomputable [`Tally`].
//! * [`rollout`]: the leader draw, the tie-break of competing rollouts, key sealing.
//! * [`group`]: the membership state machine ([`Group`], [`Joining`]), and its snapshots
//!   ([`group::snapshot`]) that keep a member's state across restarts.
//! * [`error`]: the crate's one error type.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod crypto;
pub mod error;
pub mod group;
pub mod ids;
pub mod message;
pub mod rollout;
pub mod vote;
pub mod wire;

pub use crypto::{AgreementSecret, GroupKey};
pub use error::Error;
pub use group::{Event, Group, Joining, Member, Removal, Transmit};
pub use ids::{AgreementKey, GroupId, KeyEpoch, MemberId, ProposalId, Rules};
pub use message::Delivered;
pub use psp_onion::crypto::Sr25519Keypair;
pub use vote::{Outcome, Tally};
