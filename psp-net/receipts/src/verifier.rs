//! The landing node's side: checks a receipt against the published keys and spends it once.
//!
//! [`Verifier::verify`] refuses, in this order (cheap checks first): an unknown key id, a
//! receipt naming another epoch than its key's, an expired key, parameters beyond the key's
//! tier, a spend id already spent, and a signature that does not verify. Only then does it
//! yield a [`VerifiedReceipt`], the one thing [`Verifier::spend`] accepts.
//!
//! The spent set is keyed by spend id and remembers each until its key's expiry, after which
//! the receipt would be refused as expired anyway; it holds at most
//! [`VerifierConfig::max_spent`] unexpired spend ids and refuses further spends with
//! [`ReceiptError::SpentSetFull`] rather than grow or forget early (forgetting early would
//! allow replays).

use std::collections::{BTreeSet, HashMap};

use crate::receipt::{KeyId, PublishedKey, Receipt, SpendId, StreamParams};
use crate::ReceiptError;

/// Bounds of a [`Verifier`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifierConfig {
    /// Published keys held (oracles × tiers × epochs kept).
    pub max_keys: usize,
    /// Unexpired spent receipts remembered. Size it to what the oracles can issue over a key's
    /// lifetime; 1,000,000 entries take about 100 MB.
    pub max_spent: usize,
}

impl Default for VerifierConfig {
    fn default() -> Self {
        VerifierConfig {
            max_keys: 1_024,
            max_spent: 1_000_000,
        }
    }
}

/// A receipt that passed every check of [`Verifier::verify`]; only the verifier makes one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifiedReceipt {
    receipt: Receipt,
    expires_at: u64,
}

impl VerifiedReceipt {
    /// What the stream may do.
    pub fn params(&self) -> StreamParams {
        self.receipt.params
    }

    /// The spend id.
    pub fn spend_id(&self) -> SpendId {
        self.receipt.spend_id
    }

    /// The key that signed it.
    pub fn key_id(&self) -> KeyId {
        self.receipt.key_id
    }

    /// Its epoch.
    pub fn epoch(&self) -> u64 {
        self.receipt.epoch
    }

    /// When its key expires (Unix seconds).
    pub fn expires_at(&self) -> u64 {
        self.expires_at
    }

    /// The receipt itself.
    pub fn receipt(&self) -> &Receipt {
        &self.receipt
    }
}

/// The landing node's receipt checker: published keys and the spent set.
#[derive(Debug)]
pub struct Verifier {
    config: VerifierConfig,
    keys: HashMap<KeyId, PublishedKey>,
    /// Spend id → expiry.
    spent: HashMap<SpendId, u64>,
    /// (expiry, spend id), for pruning in expiry order.
    by_expiry: BTreeSet<(u64, SpendId)>,
}

impl Verifier {
    /// A verifier with no keys.
    pub fn new(config: VerifierConfig) -> Self {
        Verifier {
            config,
            keys: HashMap::new(),
            spent: HashMap::new(),
            by_expiry: BTreeSet::new(),
        }
    }

    /// Adds a key read from chain. Refused beyond [`VerifierConfig::max_keys`]; the same id
    /// again replaces the entry.
    pub fn insert_key(&mut self, key: PublishedKey) -> Result<KeyId, ReceiptError> {
        key.tier.validate()?;
        let id = key.key_id();
        if !self.keys.contains_key(&id) && self.keys.len() >= self.config.max_keys {
            return Err(ReceiptError::TooManyKeys {
                max: self.config.max_keys,
            });
        }
        self.keys.insert(id, key);
        Ok(id)
    }

    /// Removes a key (e.g. no longer on chain).
    pub fn remove_key(&mut self, id: &KeyId) -> Option<PublishedKey> {
        self.keys.remove(id)
    }

    /// Number of unexpired spend ids remembered.
    pub fn spent_len(&self) -> usize {
        self.spent.len()
    }

    /// Forgets spend ids and keys that expired at or before `now` (Unix seconds). Receipts
    /// under a pruned key are then refused as [`ReceiptError::UnknownKey`] rather than
    /// [`ReceiptError::Expired`].
    pub fn prune(&mut self, now: u64) {
        self.prune_spent(now);
        self.keys.retain(|_, k| k.expires_at > now);
    }

    fn prune_spent(&mut self, now: u64) {
        while let Some(&(expires_at, id)) = self.by_expiry.first() {
            if expires_at > now {
                break;
            }
            self.by_expiry.pop_first();
            self.spent.remove(&id);
        }
    }

    /// Checks a receipt at `now` (Unix seconds); see the module docs for what is refused.
    pub fn verify(&self, now: u64, receipt: &Receipt) -> Result<VerifiedReceipt, ReceiptError> {
        let key = self
            .keys
            .get(&receipt.key_id)
            .ok_or(ReceiptError::UnknownKey {
                key_id: receipt.key_id,
            })?;
        if receipt.epoch != key.epoch {
            return Err(ReceiptError::WrongEpoch {
                receipt_epoch: receipt.epoch,
                key_epoch: key.epoch,
            });
        }
        if now >= key.expires_at {
            return Err(ReceiptError::Expired {
                expires_at: key.expires_at,
                now,
            });
        }
        if !receipt.params.within(&key.tier) {
            return Err(ReceiptError::BeyondTier {
                params: receipt.params,
                tier: key.tier,
            });
        }
        if self.spent.contains_key(&receipt.spend_id) {
            return Err(ReceiptError::AlreadySpent {
                spend_id: receipt.spend_id,
            });
        }
        key.public
            .verify(&receipt.signed_message(), &receipt.signature)
            .map_err(|_| ReceiptError::BadSignature {
                key_id: receipt.key_id,
            })?;
        Ok(VerifiedReceipt {
            receipt: receipt.clone(),
            expires_at: key.expires_at,
        })
    }

    /// Marks a verified receipt spent. Refused if it was spent since it was verified, if it
    /// has expired, or if the spent set is full of unexpired entries.
    pub fn spend(&mut self, now: u64, receipt: &VerifiedReceipt) -> Result<SpendId, ReceiptError> {
        self.prune_spent(now);
        let id = receipt.spend_id();
        if now >= receipt.expires_at {
            return Err(ReceiptError::Expired {
                expires_at: receipt.expires_at,
                now,
            });
        }
        if self.spent.contains_key(&id) {
            return Err(ReceiptError::AlreadySpent { spend_id: id });
        }
        if self.spent.len() >= self.config.max_spent {
            return Err(ReceiptError::SpentSetFull {
                max: self.config.max_spent,
            });
        }
        self.spent.insert(id, receipt.expires_at);
        self.by_expiry.insert((receipt.expires_at, id));
        Ok(id)
    }

    /// [`Verifier::verify`], then [`Verifier::spend`]: what a landing node does on a
    /// stream-creation request.
    pub fn verify_and_spend(
        &mut self,
        now: u64,
        receipt: &Receipt,
    ) -> Result<VerifiedReceipt, ReceiptError> {
        let verified = self.verify(now, receipt)?;
        self.spend(now, &verified)?;
        Ok(verified)
    }
}
