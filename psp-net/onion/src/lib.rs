//! # psp-onion: the sans-IO onion core of the PSP overlay
//!
//! The lowest layer of the overlay: primitives, the wire format and the circuit state
//! machines. Everything here takes bytes and time in and gives bytes and events out; nothing
//! owns a socket, a task or a clock (no tokio, no libp2p), so multi-node tests run in one
//! process, deterministically.
//!
//! Modules, lowest first (the order of arti's crates):
//! * [`crypto`]: the only module naming primitive crates: ntor X25519 handshake, layer crypto,
//!   sr25519 identity signatures and BLAKE2.
//! * [`bytes`]: bounds-checked reader and writer.
//! * [`cell`]: fixed 512-byte cells and relay messages.
//! * [`circuit`]: onion circuits: the relay and client state machines, limits, services, and
//!   the chain directory trait.
//! * [`registry`]: the chain check for signed data (is an identity live, of which kind), which
//!   the DHT, directory and certificate crates build on.
//!
//! `psp-net` re-exports these modules under the same names (`psp_net::cell`, ...).

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod bytes;
pub mod cell;
pub mod circuit;
pub mod crypto;
pub mod registry;
