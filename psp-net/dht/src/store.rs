//! A node's record store: nothing enters it without validation.
//!
//! [`RecordStore::put`] decodes, validates against the registry and the limits, refuses a
//! record older (lower `seq`) than the one held for the key, and bounds how many records one
//! publisher and the whole store hold, so a flood of puts cannot grow it without end.
//! [`RecordStore::expire`] wipes expired records; [`RecordStore::purge_revoked`] drops records
//! whose owner or publisher was revoked (the node calls it at every finalized block).

use std::collections::HashMap;

use super::record::{RecordError, RecordKey, RecordLimits, SignedRecord, ValidRecord};
use crate::registry::{IdentityKind, IdentityRegistry, IdentityStatus};

/// Bounds of a store.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StoreLimits {
    /// Record checks.
    pub record: RecordLimits,
    /// Most records in the store.
    pub max_records: usize,
    /// Most records one publisher may have in the store.
    pub max_per_publisher: usize,
}

impl Default for StoreLimits {
    fn default() -> Self {
        Self {
            record: RecordLimits::default(),
            max_records: 65_536,
            max_per_publisher: 1_024,
        }
    }
}

/// Why a put was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The record itself is invalid.
    #[error("invalid record: {0}")]
    Invalid(#[from] RecordError),
    /// The store holds a record with this or a higher sequence number.
    #[error("stale record: seq {offered} is not newer than the stored {stored}")]
    Stale {
        /// The sequence number offered.
        offered: u64,
        /// The one held.
        stored: u64,
    },
    /// The publisher has too many records here.
    #[error("publisher quota of {max} records reached")]
    PublisherQuota {
        /// The quota.
        max: usize,
    },
    /// The store is full.
    #[error("store full ({max} records)")]
    Full {
        /// The bound.
        max: usize,
    },
}

/// What a successful put did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PutOutcome {
    /// A new key.
    Inserted,
    /// A newer record replaced the one held.
    Replaced,
}

/// Validated records by key.
#[derive(Debug, Default)]
pub struct RecordStore {
    limits: StoreLimits,
    records: HashMap<RecordKey, ValidRecord>,
    per_publisher: HashMap<[u8; 32], usize>,
}

impl RecordStore {
    /// An empty store.
    pub fn new(limits: StoreLimits) -> Self {
        Self {
            limits,
            records: HashMap::new(),
            per_publisher: HashMap::new(),
        }
    }

    /// The limits in force.
    pub fn limits(&self) -> &StoreLimits {
        &self.limits
    }

    /// Decodes, validates and stores the record sent for `key`.
    pub fn put(
        &mut self,
        key: &RecordKey,
        bytes: &[u8],
        now: u64,
        registry: &impl IdentityRegistry,
    ) -> Result<PutOutcome, StoreError> {
        let record = SignedRecord::decode_valid(key, bytes, now, registry, &self.limits.record)?;
        self.insert(record)
    }

    /// Stores a record validated elsewhere (e.g. by a lookup).
    pub fn insert(&mut self, record: ValidRecord) -> Result<PutOutcome, StoreError> {
        let publisher = record.content().publisher;
        let replaced = match self.records.get(record.key()) {
            Some(held) if held.content().seq >= record.content().seq => {
                return Err(StoreError::Stale {
                    offered: record.content().seq,
                    stored: held.content().seq,
                })
            }
            Some(held) => Some(held.content().publisher),
            None => None,
        };
        let same_publisher = replaced == Some(publisher);
        let count = self.per_publisher.get(&publisher).copied().unwrap_or(0);
        if !same_publisher && count >= self.limits.max_per_publisher {
            return Err(StoreError::PublisherQuota {
                max: self.limits.max_per_publisher,
            });
        }
        if replaced.is_none() && self.records.len() >= self.limits.max_records {
            return Err(StoreError::Full {
                max: self.limits.max_records,
            });
        }
        if let Some(old) = replaced.filter(|_| !same_publisher) {
            self.release(&old);
        }
        if !same_publisher {
            *self.per_publisher.entry(publisher).or_insert(0) += 1;
        }
        self.records.insert(*record.key(), record);
        Ok(if replaced.is_some() {
            PutOutcome::Replaced
        } else {
            PutOutcome::Inserted
        })
    }

    fn release(&mut self, publisher: &[u8; 32]) {
        if let Some(n) = self.per_publisher.get_mut(publisher) {
            *n -= 1;
            if *n == 0 {
                self.per_publisher.remove(publisher);
            }
        }
    }

    /// The record held for `key`, if it has not expired.
    pub fn get(&self, key: &RecordKey, now: u64) -> Option<&ValidRecord> {
        self.records.get(key).filter(|r| !r.expired(now))
    }

    /// Removes the record held for `key`; whether there was one.
    pub fn remove(&mut self, key: &RecordKey) -> bool {
        match self.records.remove(key) {
            Some(r) => {
                self.release(&r.content().publisher);
                true
            }
            None => false,
        }
    }

    /// Wipes every expired record; returns how many.
    pub fn expire(&mut self, now: u64) -> usize {
        self.remove_where(|r| r.expired(now))
    }

    /// Drops records whose owner or publisher is no longer live; returns how many.
    pub fn purge_revoked(&mut self, registry: &impl IdentityRegistry) -> usize {
        self.remove_where(|r| {
            let c = r.content();
            registry.status(&c.owner).active_kind().is_none()
                || registry.status(&c.publisher) != IdentityStatus::Active(IdentityKind::Node)
        })
    }

    fn remove_where(&mut self, mut doomed: impl FnMut(&ValidRecord) -> bool) -> usize {
        let keys: Vec<RecordKey> = self
            .records
            .iter()
            .filter(|(_, r)| doomed(r))
            .map(|(k, _)| *k)
            .collect();
        for key in &keys {
            self.remove(key);
        }
        keys.len()
    }

    /// Number of records held (expired ones included until [`Self::expire`]).
    pub fn len(&self) -> usize {
        self.records.len()
    }

    /// Whether the store is empty.
    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// Every record held.
    pub fn iter(&self) -> impl Iterator<Item = &ValidRecord> {
        self.records.values()
    }
}

#[cfg(test)]
mod tests;
