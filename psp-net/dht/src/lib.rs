//! The chain-checked DHT (PSP overview §3): S/Kademlia-style, nothing unsigned is stored.
//!
//! * [`record`]: the signed record (owner signature + publisher co-signature), its wire format
//!   and its validation against the identity registry — the only way to a usable record.
//! * [`store`]: a node's record store: validates before storing, keeps the newest sequence
//!   number per key, bounds records per publisher and in total, wipes expired and
//!   revoked-owner records.
//! * [`routing`]: the Kademlia routing table: ids bound to registered node identities, k-buckets
//!   that keep long-lived peers, per-IP and per-subnet diversity limits.
//! * [`lookup`]: the iterative lookup over d disjoint paths (S/Kademlia), sans IO, which checks
//!   every record itself and keeps the newest valid one.
//!
//! The libp2p driver carries these records in Kademlia's `PUT_VALUE`/`GET_VALUE` with
//! `StoreInserts::FilterBoth`: every inbound record goes through [`store::RecordStore::put`].

#![forbid(unsafe_code)]
#![warn(missing_docs)]

// The sans-IO onion crate's modules, under the paths this code had inside `psp-net`.
use psp_onion::{bytes, circuit, crypto, registry};

pub mod lookup;
pub mod record;
pub mod routing;
/// A deterministic in-process DHT network for tests and benchmarks; only with the `sim`
/// feature (off by default), which `psp-net`'s dev-dependencies turn on.
#[cfg(feature = "sim")]
pub mod sim;
pub mod store;

pub use lookup::{
    Lookup, LookupConfig, LookupResult, QueryId, RecordValidator, Response, Validator, Versioned,
};
pub use record::{
    record_key, RecordContent, RecordError, RecordKey, RecordKind, RecordLimits, SignedRecord,
    ValidRecord,
};
pub use routing::{
    DhtId, Distance, InsertOutcome, PeerInfo, RoutingConfig, RoutingError, RoutingTable, Subnet, K,
};
pub use store::{PutOutcome, RecordStore, StoreError, StoreLimits};
