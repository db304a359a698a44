//! # Discovery directory
//!
//! The sans-IO core of the discovery directory (PSP overview §2): how overlay nodes announce
//! themselves, how the elected discovery nodes agree on one list of them per period, and how a
//! client checks that list.
//!
//! ## Overview
//!
//! 1. Every node signs a [`StatusReport`] for the coming period (its flags and addresses) and
//!    sends it to the discovery nodes. [`SignedStatus::verify`] checks the signature, the chain
//!    registration (an active [`IdentityKind::Node`](crate::registry::IdentityKind)), the period
//!    and the clock skew.
//! 2. At the start of the period each discovery node signs a [`Vote`]: the reports it holds.
//! 3. After the vote window each computes the [`consensus()`] of the votes it received. The
//!    function is deterministic, so discovery nodes holding the same votes get the same
//!    [`Directory`], byte for byte.
//! 4. Each signs the directory's hash inside a *staking statement*
//!    ([`statement::statement_message`]), the bytes the chain verifies, so that a discovery
//!    node signing two different directories for one period can be slashed
//!    ([`find_equivocations`]).
//! 5. A [`SignedDirectory`] carrying [`default_threshold`] valid signatures of the discovery set
//!    is what clients use ([`SignedDirectory::verify`]).
//!
//! [`DiscoveryService`] runs steps 2–5 for one discovery node: it takes bytes and the time in,
//! and gives bytes to broadcast and equivocations to report out.
//!
//! ## Terminology
//!
//! * *Period*: the directory's slot, `now / period_secs`. A period's directory is valid from the
//!   period's start for two periods, so the previous one stays usable while the next forms.
//! * *Discovery set*: the nodes elected to the discovery role for the epoch, given by the
//!   caller (from chain state); the cores never read the chain themselves.
//!
//! ## Wire format
//!
//! Integers are big-endian; strings and lists carry a length prefix (`u8` for addresses and
//! address lists, `u32` for entry lists, `u16` for signature lists). Every decoder is strict:
//! limits are checked before allocating, lists must be sorted where the spec says so, and
//! trailing bytes are refused, so a decoded value re-encodes to the bytes that were signed.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

// The sans-IO onion crate's modules, under the paths this code had inside `psp-net`.
use psp_onion::{bytes, crypto, registry};

mod consensus;
mod equivocation;
mod error;
mod service;
mod signed;
pub mod statement;
mod status;
mod vote;
mod wire;

#[cfg(test)]
mod tests;

pub use consensus::{consensus, Directory, DirectoryEntry, DIRECTORY_TAG};
pub use equivocation::{find_equivocations, Equivocation};
pub use error::DirectoryError;
pub use service::{Config, DiscoveryService, Output};
pub use signed::{default_threshold, DirectorySignature, SignedDirectory, VerifiedDirectory};
pub use status::{SignedStatus, StatusReport, STATUS_TAG};
pub use vote::{SignedVote, Vote, VOTE_TAG};

/// Node flags: the roles a node offers, one bit each.
pub mod flags {
    /// Relays circuit cells.
    pub const RELAY: u8 = 1;
    /// Accepts client connections as the first hop.
    pub const ENTRY: u8 = 2;
    /// Serves the directory.
    pub const DISCOVERY: u8 = 4;
    /// Issues access certificates.
    pub const AUTHORITY: u8 = 8;
    /// Collects usage reports.
    pub const ORACLE: u8 = 16;
    /// Every defined bit; a report or vote with another bit set is refused.
    pub const ALL: u8 = RELAY | ENTRY | DISCOVERY | AUTHORITY | ORACLE;
}

/// Most addresses a node may announce: a few transports (TCP, QUIC) on IPv4 and IPv6.
pub const MAX_ADDRESSES: usize = 4;

/// Longest address, in bytes: a multiaddr string with a DNS name and a `/p2p/` peer id fits
/// with room to spare.
pub const MAX_ADDRESS_LEN: usize = 128;

/// Most entries in a vote, and most status reports a discovery node holds for one period.
pub const MAX_VOTE_ENTRIES: usize = 8_192;

/// Most entries in a consensus directory: a node is listed only when more than half of the
/// votes list it, so the listings (at most `votes × MAX_VOTE_ENTRIES`) cover fewer than
/// `2 × MAX_VOTE_ENTRIES` nodes.
pub const MAX_DIRECTORY_ENTRIES: usize = 2 * MAX_VOTE_ENTRIES;

/// Most signatures on a directory: far more than any discovery set.
pub const MAX_SIGNATURES: usize = 1_024;

/// How far in the future a status report's `issued_at` may be: the clock skew tolerated.
pub const MAX_CLOCK_SKEW_SECS: u64 = 30;
