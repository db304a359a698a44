//! # psp-net: the PSP overlay
//!
//! Sans-IO protocol cores of the PeerStream Protocol overlay, and their async driver. The cores
//! take bytes and time in and give bytes and events out; they own no socket, no task and no
//! clock, so multi-node tests run in one process, deterministically, in milliseconds. The
//! driver puts them on libp2p links.
//!
//! The protocol layers are crates of their own under `psp-net/`, one per layer in arti's
//! manner, all sans IO; this crate re-exports each under the module name it had here, so
//! `psp_net::cell`, `psp_net::dht`, ... keep working, and adds the driver. Lowest first:
//! * `psp-onion` ([`crypto`], [`bytes`], [`cell`], [`circuit`], [`registry`]): primitives (the
//!   only crate naming primitive crates: ntor X25519 handshake, layer crypto, sr25519 identity
//!   signatures and BLAKE2), the bounds-checked reader and writer, fixed 512-byte cells and
//!   relay messages, the onion circuits (relay and client state machines, limits, services, the
//!   chain directory trait) and the chain check for signed data (is an identity live, of which
//!   kind).
//! * `psp-dht` ([`dht`]): chain-checked DHT records, the validating store, the S/Kademlia
//!   routing table and disjoint-path lookups.
//! * `psp-directory` ([`directory`]): the discovery directory: signed status reports, votes,
//!   the deterministic consensus, its threshold signatures (staking statements) and
//!   equivocation evidence, and the discovery node's [`directory::DiscoveryService`] state
//!   machine.
//! * `psp-cert` ([`cert`]): access certificates: requests with proof of possession, issuing,
//!   verification.
//! * [`driver`] (this crate): the async driver: libp2p links (TCP + Noise + Yamux) carrying the
//!   cells, the relay [`driver::Node`] task and the [`driver::ClientHandle`] API; on nodes also
//!   Kademlia over the validating store and the directory protocol. The only code with tokio,
//!   libp2p, sockets and a clock.
//!
//! See the crate README for the wire format, the handshake, the integrity design and the
//! limits.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub use psp_onion::{bytes, cell, circuit, crypto, registry};

/// The chain-checked DHT (the `psp-dht` crate).
pub use psp_dht as dht;

/// The discovery directory (the `psp-directory` crate).
pub use psp_directory as directory;

/// Access certificates (the `psp-cert` crate).
pub use psp_cert as cert;

/// Presence, introduction, rendezvous and end-to-end channels (the `psp-rendezvous` crate).
pub use psp_rendezvous as rendezvous;

/// Anonymous stream-creation receipts (the `psp-receipts` crate).
pub use psp_receipts as receipts;

/// Stream creation: oracle and landing services, stream records (the `psp-stream` crate).
pub use psp_stream as stream;

/// Bandwidth rewards off chain: session tickets, usage reports, the oracle's collector (the
/// `psp-usage` crate).
pub use psp_usage as usage;

pub mod driver;
