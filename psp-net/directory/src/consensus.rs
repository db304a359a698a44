//! The consensus directory and the deterministic function computing it from votes.
//!
//! Wire: [`DIRECTORY_TAG`] ‖ `period ‖ valid_after ‖ valid_until (u64 each) ‖ entries`. The tag
//! is part of the encoding, so [`Directory::hash`] is domain-separated from every other hash
//! of the overlay.

use std::collections::BTreeMap;

use super::wire::{finish, put_entries, put_u64, read_entries};
use super::{DirectoryError, Vote, MAX_DIRECTORY_ENTRIES};
use crate::bytes::Reader;
use crate::crypto::{blake2_256, NodeId};

/// The first bytes of every encoded directory.
pub const DIRECTORY_TAG: &[u8] = b"psp/directory/consensus/v1";

/// One node as listed by a vote or a directory.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct DirectoryEntry {
    /// The node.
    pub node: NodeId,
    /// Its flags ([`flags`](super::flags)).
    pub flags: u8,
    /// Its addresses (multiaddr strings).
    pub addresses: Vec<String>,
}

/// The overlay's nodes for one period, as agreed by the discovery set.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Directory {
    /// The period.
    pub period: u64,
    /// Start of validity (unix seconds).
    pub valid_after: u64,
    /// End of validity (unix seconds).
    pub valid_until: u64,
    /// The listed nodes, sorted by node id, no duplicates.
    pub entries: Vec<DirectoryEntry>,
}

impl Directory {
    /// The canonical encoding: what [`hash`](Self::hash) covers.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(DIRECTORY_TAG.len() + 28 + self.entries.len() * 100);
        self.encode_to(&mut out);
        out
    }

    pub(super) fn encode_to(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(DIRECTORY_TAG);
        put_u64(out, self.period);
        put_u64(out, self.valid_after);
        put_u64(out, self.valid_until);
        put_entries(out, &self.entries);
    }

    /// BLAKE2-256 of [`encode`](Self::encode): the `payload_hash` discovery nodes sign.
    pub fn hash(&self) -> [u8; 32] {
        blake2_256(&self.encode())
    }

    /// Decodes exactly one directory.
    pub fn decode(bytes: &[u8]) -> Result<Self, DirectoryError> {
        let mut r = Reader::new(bytes);
        let d = Self::read(&mut r)?;
        finish(&r, "directory")?;
        Ok(d)
    }

    /// Reads a directory from the front of `r`.
    pub(super) fn read(r: &mut Reader<'_>) -> Result<Self, DirectoryError> {
        const WHAT: &str = "directory";
        let t = DirectoryError::truncated;
        if r.take(DIRECTORY_TAG.len()).map_err(t(WHAT))? != DIRECTORY_TAG {
            return Err(DirectoryError::WrongTag { what: WHAT });
        }
        let period = r.u64().map_err(t(WHAT))?;
        let valid_after = r.u64().map_err(t(WHAT))?;
        let valid_until = r.u64().map_err(t(WHAT))?;
        if valid_after > valid_until {
            return Err(DirectoryError::InvalidValidity {
                period,
                valid_after,
                valid_until,
            });
        }
        let entries = read_entries(r, MAX_DIRECTORY_ENTRIES, WHAT)?;
        Ok(Self {
            period,
            valid_after,
            valid_until,
            entries,
        })
    }

    /// The entry of `node`, if listed.
    pub fn get(&self, node: &NodeId) -> Option<&DirectoryEntry> {
        self.entries
            .binary_search_by(|e| e.node.cmp(node))
            .ok()
            .and_then(|i| self.entries.get(i))
    }
}

/// The consensus of `votes` for `period`.
///
/// Deterministic, whatever the order of `votes`: votes for other periods are ignored, and a
/// voter's votes count once (its smallest, should a caller pass two). With `n` votes left:
/// * a node is listed iff more than `n / 2` votes list it;
/// * each flag bit is set iff more than half of the votes listing the node set it;
/// * its addresses are the list given by the most votes listing it, ties going to the
///   lexicographically smallest list.
///
/// Entries come out sorted by node id.
pub fn consensus(period: u64, valid_after: u64, valid_until: u64, votes: &[Vote]) -> Directory {
    let mut ballots: Vec<&Vote> = votes.iter().filter(|v| v.period == period).collect();
    ballots.sort();
    ballots.dedup_by_key(|v| v.voter);
    let n = ballots.len();

    let mut listings: BTreeMap<NodeId, Vec<&DirectoryEntry>> = BTreeMap::new();
    for v in &ballots {
        for e in &v.entries {
            listings.entry(e.node).or_default().push(e);
        }
    }

    let entries = listings
        .into_iter()
        .filter(|(_, listed)| 2 * listed.len() > n)
        .map(|(node, listed)| {
            let c = listed.len();
            let flags = (0..8)
                .map(|bit| 1u8 << bit)
                .filter(|b| 2 * listed.iter().filter(|e| e.flags & b != 0).count() > c)
                .fold(0, |acc, b| acc | b);
            let mut tally: BTreeMap<&[String], usize> = BTreeMap::new();
            for e in &listed {
                *tally.entry(&e.addresses).or_default() += 1;
            }
            // Iteration is in increasing list order and only a strictly larger count replaces
            // the best, so ties go to the smallest list.
            let mut best: (&[String], usize) = (&[], 0);
            for (list, count) in tally {
                if count > best.1 {
                    best = (list, count);
                }
            }
            DirectoryEntry {
                node,
                flags,
                addresses: best.0.to_vec(),
            }
        })
        .collect();

    Directory {
        period,
        valid_after,
        valid_until,
        entries,
    }
}
