//! The one error type of the directory: every refusal says which node, which period and why.

use crate::bytes::BytesError;
use crate::crypto::NodeId;
use crate::registry::IdentityKind;

/// Why a status report, vote, signature or directory was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DirectoryError {
    /// The bytes ended before a field was complete.
    #[error("malformed {what}: {source}")]
    Truncated {
        /// What was being decoded.
        what: &'static str,
        /// The byte layer's error.
        source: BytesError,
    },
    /// The bytes went on after the value was complete.
    #[error("malformed {what}: {extra} trailing bytes")]
    TrailingBytes {
        /// What was being decoded.
        what: &'static str,
        /// How many bytes were left over.
        extra: usize,
    },
    /// The bytes do not start with the expected domain tag: another message or version.
    #[error("malformed {what}: wrong tag")]
    WrongTag {
        /// What was being decoded.
        what: &'static str,
    },
    /// A list is longer than its limit.
    #[error("{what}: {count} items, at most {max} allowed")]
    TooMany {
        /// Which list.
        what: &'static str,
        /// Its length.
        count: usize,
        /// The limit.
        max: usize,
    },
    /// An address is empty, too long, not UTF-8 or repeated.
    #[error("invalid address of node {node:?}: {why}")]
    InvalidAddress {
        /// The node announcing it.
        node: NodeId,
        /// What is wrong with it.
        why: &'static str,
    },
    /// Flag bits outside [`flags::ALL`](super::flags::ALL).
    #[error("node {node:?}: unknown flag bits {flags:#04x}")]
    UnknownFlags {
        /// The node.
        node: NodeId,
        /// The flags as received.
        flags: u8,
    },
    /// A list that must be strictly increasing (entries by node id, signatures by signer) is not.
    #[error("{what} not sorted or duplicated at {node:?}")]
    Unsorted {
        /// Which list.
        what: &'static str,
        /// The first item out of order.
        node: NodeId,
    },
    /// `valid_after` is later than `valid_until`.
    #[error("directory of period {period}: valid_after {valid_after} > valid_until {valid_until}")]
    InvalidValidity {
        /// The directory's period.
        period: u64,
        /// Start of validity.
        valid_after: u64,
        /// End of validity.
        valid_until: u64,
    },
    /// A signature does not verify.
    #[error("bad {what} signature by {signer:?} for period {period}")]
    BadSignature {
        /// What was signed.
        what: &'static str,
        /// The claimed signer.
        signer: NodeId,
        /// The period.
        period: u64,
    },
    /// The signing key was never registered on chain.
    #[error("{node:?} is not a registered identity")]
    UnknownNode {
        /// The key.
        node: NodeId,
    },
    /// The signing key was revoked on chain.
    #[error("{node:?} is revoked")]
    RevokedNode {
        /// The key.
        node: NodeId,
    },
    /// The signing key is a live identity, but not an overlay node.
    #[error("{node:?} is registered as {kind:?}, not as a node")]
    NotANode {
        /// The key.
        node: NodeId,
        /// What it is registered as.
        kind: IdentityKind,
    },
    /// The signer is not in the discovery set.
    #[error("{what} signer {signer:?} is not in the discovery set (period {period})")]
    NotInDiscoverySet {
        /// What was signed.
        what: &'static str,
        /// The signer.
        signer: NodeId,
        /// The period.
        period: u64,
    },
    /// Signed for another period than the one expected (a replay, or a peer out of step).
    #[error("{what} by {node:?} is for period {got}, expected {expected}")]
    WrongPeriod {
        /// What was signed.
        what: &'static str,
        /// The signer.
        node: NodeId,
        /// The period expected.
        expected: u64,
        /// The period signed.
        got: u64,
    },
    /// A status report issued further in the future than the tolerated clock skew.
    #[error("status of {node:?} issued at {issued_at}, now is {now} (skew {max_skew}s)")]
    FromTheFuture {
        /// The node.
        node: NodeId,
        /// When it claims to have signed.
        issued_at: u64,
        /// The local time.
        now: u64,
        /// The tolerated skew.
        max_skew: u64,
    },
    /// Fewer distinct valid signatures of the discovery set than the threshold.
    #[error("directory of period {period}: {valid} valid signatures, {threshold} needed")]
    TooFewSignatures {
        /// The directory's period.
        period: u64,
        /// Distinct valid signatures by members of the set.
        valid: usize,
        /// Signatures needed.
        threshold: usize,
    },
    /// The directory is not valid yet.
    #[error("directory of period {period} is valid after {valid_after}, now is {now}")]
    NotYetValid {
        /// The directory's period.
        period: u64,
        /// Start of validity.
        valid_after: u64,
        /// The local time.
        now: u64,
    },
    /// The directory has expired.
    #[error("directory of period {period} expired at {valid_until}, now is {now}")]
    Expired {
        /// The directory's period.
        period: u64,
        /// End of validity.
        valid_until: u64,
        /// The local time.
        now: u64,
    },
    /// The service is not collecting this kind of message for that period (too old, too far
    /// ahead, or its round already closed).
    #[error("{what} for period {period} not accepted (current period {current})")]
    RoundClosed {
        /// What was received.
        what: &'static str,
        /// Its period.
        period: u64,
        /// The service's current period.
        current: u64,
    },
    /// The service holds as many status reports for the period as it accepts.
    #[error("status of {node:?}: already {max} reports for period {period}")]
    TooManyReports {
        /// The node whose report was refused.
        node: NodeId,
        /// The period.
        period: u64,
        /// The limit.
        max: usize,
    },
    /// A report not newer than the one held for the node: a replay or a flood.
    #[error("status of {node:?} for period {period} issued at {issued_at}, holding {held}")]
    StaleStatus {
        /// The node.
        node: NodeId,
        /// The period.
        period: u64,
        /// The refused report's time.
        issued_at: u64,
        /// The held report's time.
        held: u64,
    },
    /// A second, different vote from the same voter for the same period.
    #[error("voter {voter:?} sent two different votes for period {period}")]
    ConflictingVote {
        /// The voter.
        voter: NodeId,
        /// The period.
        period: u64,
    },
}

impl DirectoryError {
    /// Maps a byte-layer error while decoding `what`.
    pub(crate) fn truncated(what: &'static str) -> impl FnOnce(BytesError) -> Self {
        move |source| Self::Truncated { what, source }
    }
}
