//! Votes: a discovery node's signed list of the nodes it holds valid status reports from.
//!
//! Wire: `period (u64) ‖ voter (32) ‖ entries ‖ signature (64)`; the signature covers
//! [`VOTE_TAG`] followed by everything before it.

use super::consensus::DirectoryEntry;
use super::wire::{check_entries, finish, put_entries, put_u64, read_entries};
use super::{DirectoryError, StatusReport, MAX_VOTE_ENTRIES};
use crate::bytes::Reader;
use crate::crypto::{sr25519_verify, NodeId, Sr25519Keypair, Sr25519Signature};

/// Domain separation tag of a vote signature.
pub const VOTE_TAG: &[u8] = b"psp/directory/vote/v1";

/// One discovery node's view of the overlay for a period.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Vote {
    /// The period voted on.
    pub period: u64,
    /// The discovery node voting.
    pub voter: NodeId,
    /// The nodes it holds valid reports from, sorted by node id, no duplicates, at most
    /// [`MAX_VOTE_ENTRIES`].
    pub entries: Vec<DirectoryEntry>,
}

impl Vote {
    /// The vote of `voter` listing `reports` (verified reports for `period`; at most one per
    /// node, else the last one of a node wins).
    pub fn from_reports<'a>(
        period: u64,
        voter: NodeId,
        reports: impl IntoIterator<Item = &'a StatusReport>,
    ) -> Self {
        let mut entries: Vec<DirectoryEntry> = reports
            .into_iter()
            .map(|r| DirectoryEntry {
                node: r.node,
                flags: r.flags,
                addresses: r.addresses.clone(),
            })
            .collect();
        entries.sort_by_key(|e| e.node);
        // Keep the last entry of each node: `dedup_by` keeps the first, so dedup reversed.
        entries.reverse();
        entries.dedup_by_key(|e| e.node);
        entries.reverse();
        Self {
            period,
            voter,
            entries,
        }
    }

    fn encode_body(&self, out: &mut Vec<u8>) {
        put_u64(out, self.period);
        out.extend_from_slice(&self.voter.0);
        put_entries(out, &self.entries);
    }

    fn message(&self) -> Vec<u8> {
        let mut m = VOTE_TAG.to_vec();
        self.encode_body(&mut m);
        m
    }
}

/// A vote as received: decoded, not checked. Only [`SignedVote::verify`] yields the [`Vote`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignedVote {
    vote: Vote,
    signature: Sr25519Signature,
}

impl SignedVote {
    /// Signs `vote` with the voter's key. Refuses a vote the decoder would refuse, or one whose
    /// `voter` is not `keypair`'s key.
    pub fn sign(vote: Vote, keypair: &Sr25519Keypair) -> Result<Self, DirectoryError> {
        check_entries(&vote.entries, MAX_VOTE_ENTRIES)?;
        if vote.voter.0 != keypair.public() {
            return Err(DirectoryError::BadSignature {
                what: "vote",
                signer: vote.voter,
                period: vote.period,
            });
        }
        let signature = keypair.sign(&vote.message());
        Ok(Self { vote, signature })
    }

    /// The vote, unchecked: for routing and logging only.
    pub fn unverified(&self) -> &Vote {
        &self.vote
    }

    /// The wire bytes.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.vote.encode_body(&mut out);
        out.extend_from_slice(&self.signature);
        out
    }

    /// Decodes the wire bytes, checking limits and order but not the signature.
    pub fn decode(bytes: &[u8]) -> Result<Self, DirectoryError> {
        const WHAT: &str = "vote";
        let t = DirectoryError::truncated;
        let mut r = Reader::new(bytes);
        let period = r.u64().map_err(t(WHAT))?;
        let voter = NodeId(r.array().map_err(t(WHAT))?);
        let entries = read_entries(&mut r, MAX_VOTE_ENTRIES, WHAT)?;
        let signature = r.array().map_err(t(WHAT))?;
        finish(&r, WHAT)?;
        Ok(Self {
            vote: Vote {
                period,
                voter,
                entries,
            },
            signature,
        })
    }

    /// Checks the vote for `period`: its voter is in `discovery_set` and signed it.
    pub fn verify(&self, period: u64, discovery_set: &[NodeId]) -> Result<Vote, DirectoryError> {
        let v = &self.vote;
        if v.period != period {
            return Err(DirectoryError::WrongPeriod {
                what: "vote",
                node: v.voter,
                expected: period,
                got: v.period,
            });
        }
        if !discovery_set.contains(&v.voter) {
            return Err(DirectoryError::NotInDiscoverySet {
                what: "vote",
                signer: v.voter,
                period: v.period,
            });
        }
        if !sr25519_verify(&v.voter.0, &v.message(), &self.signature) {
            return Err(DirectoryError::BadSignature {
                what: "vote",
                signer: v.voter,
                period: v.period,
            });
        }
        Ok(v.clone())
    }
}
