//! # psp-net: the PSP overlay
//!
//! Sans-IO protocol cores of the PeerStream Protocol overlay, and their async driver. The cores
//! take bytes and time in and give bytes and events out; they own no socket, no task and no
//! clock, so multi-node tests run in one process, deterministically, in milliseconds. The
//! driver puts them on libp2p links.
//!
//! Modules, lowest first (the order of arti's crates):
//! * [`crypto`]: the only module naming primitive crates: ntor X25519 handshake, layer crypto,
//!   sr25519 identity signatures and BLAKE2.
//! * [`bytes`]: bounds-checked reader and writer.
//! * [`cell`]: fixed 512-byte cells and relay messages.
//! * [`circuit`]: onion circuits: the relay and client state machines, limits, services, and
//!   the chain directory trait.
//! * [`registry`]: the chain check for signed data (is an identity live, of which kind).
//! * [`dht`]: chain-checked DHT records, the validating store, the S/Kademlia routing table
//!   and disjoint-path lookups.
//! * [`cert`]: access certificates: requests with proof of possession, issuing, verification.
//! * [`directory`]: the discovery directory: signed status reports, votes, the deterministic
//!   consensus, its threshold signatures (staking statements) and equivocation evidence, and
//!   the discovery node's [`directory::DiscoveryService`] state machine.
//! * [`driver`]: the async driver: libp2p links (TCP + Noise + Yamux) carrying the cells, the
//!   relay [`driver::Node`] task and the [`driver::ClientHandle`] API; on nodes also Kademlia
//!   over the validating store and the directory protocol. The only module with tokio,
//!   sockets and a clock.
//!
//! See the crate README for the wire format, the handshake, the integrity design and the
//! limits.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod bytes;
pub mod cell;
pub mod cert;
pub mod circuit;
pub mod crypto;
pub mod dht;
pub mod directory;
pub mod driver;
pub mod registry;
