//! # psp-net: the PSP overlay
//!
//! Sans-IO protocol cores of the PeerStream Protocol overlay. This crate takes bytes and time
//! in and gives bytes and events out; it owns no socket, no task and no clock, so multi-node
//! tests run in one process, deterministically, in milliseconds.
//!
//! Modules, lowest first (the order of arti's crates):
//! * [`crypto`]: the only module naming primitive crates: ntor X25519 handshake, layer crypto.
//! * [`bytes`]: bounds-checked reader and writer.
//! * [`cell`]: fixed 512-byte cells and relay messages.
//! * [`circuit`]: onion circuits: the relay and client state machines, limits, services, and
//!   the chain directory trait.
//!
//! See the crate README for the wire format, the handshake, the integrity design and the
//! limits.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod bytes;
pub mod cell;
pub mod circuit;
pub mod crypto;
