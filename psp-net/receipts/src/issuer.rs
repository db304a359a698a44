//! The oracle's side: checks a request against the subscription and the shared bound, then
//! blind-signs it with the epoch's key for the requested tier.
//!
//! The oracle sees the requester (it checked her certificate and subscription) but only a
//! blinded message, so it cannot check what it signs. What it can enforce is *which key* it
//! signs with: one key per tier ([`crate::PublishedKey::tier`]), and the landing node refuses a
//! receipt whose parameters exceed its key's tier. So [`Issuer::issue`] refuses a tier beyond
//! the subscription's allowance, and that is what makes the allowance binding.
//!
//! The per-subscription bound holds across oracles: for each (epoch, subscription) every
//! oracle keeps a grow-only counter per oracle id (a G-counter CRDT). An oracle increments only
//! its own entry; [`Issuer::counts`] exports its entries and [`Issuer::merge`] takes the
//! pointwise maximum of another oracle's, so merges commute, repeat harmlessly and converge.
//! A request is refused once the *sum* over oracles reaches the bound. Between two exchanges a
//! subscription can draw at most one bound's worth from each oracle that has not yet heard of
//! the others' issues; exchanging after every issue keeps the overshoot to concurrent requests.
//!
//! Memory is bounded: counters are kept for the current and the next epoch only (older epochs
//! are pruned on every call), at most [`IssuerConfig::max_subscriptions_per_epoch`]
//! subscriptions per epoch and [`IssuerConfig::max_oracles`] oracle entries per counter; past
//! that, new subscriptions are refused with [`ReceiptError::SubscriptionTableFull`].

use std::collections::{BTreeMap, HashMap};
use std::fmt;

use crate::blind_rsa::{BlindSignature, BlindedMessage, PublicKey, SigningKey};
use crate::receipt::{KeyId, StreamParams};
use crate::wire::{short_hex, Reader};
use crate::ReceiptError;

/// Wire version of [`Counts`].
pub const COUNTS_VERSION: u8 = 1;
/// Entries in one [`Counts`] message: 16,384 × 68 bytes ≈ 1.1 MB.
pub const MAX_COUNT_ENTRIES: usize = 16_384;
/// One entry on the wire: subscription 32 + oracle 32 + count 4.
const COUNT_ENTRY_LEN: usize = 32 + 32 + 4;
/// Header of [`Counts`]: version 1 + epoch 8 + entry count 4.
const COUNTS_HEADER_LEN: usize = 1 + 8 + 4;

/// An oracle's id (its node key).
#[derive(Copy, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct OracleId(pub [u8; 32]);

/// A subscription's id as the chain names it (e.g. the subscriber's account). Known to the
/// oracles, never written into a receipt.
#[derive(Copy, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SubscriptionId(pub [u8; 32]);

macro_rules! hex_id {
    ($t:ident) => {
        impl fmt::Display for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                short_hex(&self.0, f)
            }
        }
        impl fmt::Debug for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, concat!(stringify!($t), "({})"), self)
            }
        }
    };
}
hex_id!(OracleId);
hex_id!(SubscriptionId);

/// Bounds of an [`Issuer`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IssuerConfig {
    /// Receipts one subscription may draw per epoch, summed over all oracles. Every oracle
    /// must use the same value.
    pub receipts_per_subscription: u32,
    /// Subscriptions tracked per epoch; requests from further ones are refused.
    pub max_subscriptions_per_epoch: usize,
    /// Other oracles' entries kept per counter (the elected oracle set is small).
    pub max_oracles: usize,
    /// Keys (tiers) per epoch.
    pub max_tiers: usize,
}

impl Default for IssuerConfig {
    /// 16 receipts per subscription and epoch; 20,000 subscriptions × (32 + 1) entries of
    /// 36 bytes: at most about 24 MB of counters per epoch, two epochs kept.
    fn default() -> Self {
        IssuerConfig {
            receipts_per_subscription: 16,
            max_subscriptions_per_epoch: 20_000,
            max_oracles: 32,
            max_tiers: 8,
        }
    }
}

/// One G-counter entry: how many receipts `oracle` issued to `subscription`.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct CountEntry {
    /// The subscription.
    pub subscription: SubscriptionId,
    /// The issuing oracle.
    pub oracle: OracleId,
    /// Receipts it issued in the epoch (only ever grows).
    pub issued: u32,
}

/// Counter entries for one epoch, exchanged between oracles (authenticated by the transport).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    /// The epoch counted.
    pub epoch: u64,
    /// The entries, at most [`MAX_COUNT_ENTRIES`].
    pub entries: Vec<CountEntry>,
}

impl Counts {
    /// Wire encoding: version, epoch, entry count, entries (subscription, oracle, count).
    /// Entries beyond [`MAX_COUNT_ENTRIES`] are not encoded; [`Issuer::counts`] never makes
    /// more.
    pub fn encode(&self) -> Vec<u8> {
        let n = self.entries.len().min(MAX_COUNT_ENTRIES);
        let mut out = Vec::with_capacity(COUNTS_HEADER_LEN + n * COUNT_ENTRY_LEN);
        out.push(COUNTS_VERSION);
        out.extend_from_slice(&self.epoch.to_be_bytes());
        out.extend_from_slice(&(n as u32).to_be_bytes());
        for e in self.entries.iter().take(n) {
            out.extend_from_slice(&e.subscription.0);
            out.extend_from_slice(&e.oracle.0);
            out.extend_from_slice(&e.issued.to_be_bytes());
        }
        out
    }

    /// Strict decoding: known version, at most [`MAX_COUNT_ENTRIES`], exact length. Never
    /// panics.
    pub fn decode(bytes: &[u8]) -> Result<Self, ReceiptError> {
        const WHAT: &str = "counts";
        let mut r = Reader::new(bytes, WHAT);
        let version = r.u8()?;
        if version != COUNTS_VERSION {
            return Err(ReceiptError::UnsupportedVersion {
                what: WHAT,
                version,
            });
        }
        let epoch = r.u64()?;
        let n = r.u32()?;
        if n as usize > MAX_COUNT_ENTRIES {
            return Err(ReceiptError::OutOfBounds {
                field: "count entries",
                value: u64::from(n),
                min: 0,
                max: MAX_COUNT_ENTRIES as u64,
            });
        }
        let mut entries = Vec::with_capacity(n as usize);
        for _ in 0..n {
            entries.push(CountEntry {
                subscription: SubscriptionId(r.array()?),
                oracle: OracleId(r.array()?),
                issued: r.u32()?,
            });
        }
        r.finish()?;
        Ok(Counts { epoch, entries })
    }
}

/// What a [`Issuer::merge`] did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MergeReport {
    /// Entries that raised a count.
    pub raised: usize,
    /// Entries at or below what was known.
    pub unchanged: usize,
    /// Entries dropped because a table was full (a subscription this oracle does not track
    /// and will refuse anyway, or a counter with [`IssuerConfig::max_oracles`] entries).
    pub dropped: usize,
    /// Entries ignored because their epoch is neither the current nor the next one.
    pub wrong_epoch: usize,
}

struct Tier {
    ceiling: StreamParams,
    key: SigningKey,
}

/// A G-counter: (oracle, issued) pairs, one per oracle, few enough for a linear scan.
type GCounter = Vec<(OracleId, u32)>;

fn total(counter: &GCounter) -> u64 {
    counter.iter().map(|(_, n)| u64::from(*n)).sum()
}

/// The oracle's receipt issuer: its keys per epoch and tier, and the shared counters.
pub struct Issuer {
    oracle: OracleId,
    config: IssuerConfig,
    keys: BTreeMap<u64, Vec<Tier>>,
    counters: BTreeMap<u64, HashMap<SubscriptionId, GCounter>>,
    /// The latest `now_epoch` seen: nothing older is kept, so a caller's clock going back
    /// cannot make the tables grow.
    horizon: u64,
}

impl fmt::Debug for Issuer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Issuer")
            .field("oracle", &self.oracle)
            .field("config", &self.config)
            .field("key_epochs", &self.keys.keys().collect::<Vec<_>>())
            .field("counter_epochs", &self.counters.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl Issuer {
    /// An issuer for `oracle` with no keys yet.
    pub fn new(oracle: OracleId, config: IssuerConfig) -> Self {
        Issuer {
            oracle,
            config,
            keys: BTreeMap::new(),
            counters: BTreeMap::new(),
            horizon: 0,
        }
    }

    /// This oracle's id.
    pub fn oracle(&self) -> OracleId {
        self.oracle
    }

    /// Installs the key for `tier` in `epoch` (its public half is what gets published on
    /// chain with the tier). One key per tier, each key once, at most
    /// [`IssuerConfig::max_tiers`] per epoch.
    pub fn install_key(
        &mut self,
        epoch: u64,
        tier: StreamParams,
        key: SigningKey,
    ) -> Result<KeyId, ReceiptError> {
        tier.validate()?;
        let id = key.public_key().key_id();
        if self
            .keys
            .values()
            .flatten()
            .any(|t| t.key.public_key().key_id() == id)
        {
            return Err(ReceiptError::DuplicateKey);
        }
        let tiers = self.keys.entry(epoch).or_default();
        if tiers.iter().any(|t| t.ceiling == tier) {
            return Err(ReceiptError::DuplicateKey);
        }
        if tiers.len() >= self.config.max_tiers {
            return Err(ReceiptError::TooManyKeys {
                max: self.config.max_tiers,
            });
        }
        tiers.push(Tier { ceiling: tier, key });
        Ok(id)
    }

    /// The public keys of `epoch` with their tiers, to publish on chain.
    pub fn public_keys(&self, epoch: u64) -> Vec<(StreamParams, PublicKey)> {
        self.keys
            .get(&epoch)
            .map(|tiers| {
                tiers
                    .iter()
                    .map(|t| (t.ceiling, t.key.public_key().clone()))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Drops keys and counters of epochs before `now_epoch` (or before the latest epoch seen,
    /// if that is later).
    pub fn prune(&mut self, now_epoch: u64) {
        self.horizon = self.horizon.max(now_epoch);
        self.keys = self.keys.split_off(&self.horizon);
        self.counters = self.counters.split_off(&self.horizon);
    }

    /// Receipts issued to `subscription` in `epoch`, summed over the oracles this one knows of.
    pub fn issued(&self, epoch: u64, subscription: &SubscriptionId) -> u64 {
        self.counters
            .get(&epoch)
            .and_then(|subs| subs.get(subscription))
            .map_or(0, total)
    }

    /// Issues a blind signature for `subscription` in `now_epoch`.
    ///
    /// The caller has checked the requester's certificate and read from chain that she holds
    /// `subscription` with allowance `allowed`. Refused: a `requested` tier beyond `allowed`,
    /// a tier this oracle has no key for, a subscription whose receipts for the epoch (summed
    /// over oracles) reached the bound, a new subscription when the table is full, a blinded
    /// message of the wrong length or not below the modulus. Counts only what it signs.
    pub fn issue(
        &mut self,
        now_epoch: u64,
        subscription: SubscriptionId,
        allowed: &StreamParams,
        requested: &StreamParams,
        blinded: &BlindedMessage,
    ) -> Result<BlindSignature, ReceiptError> {
        self.prune(now_epoch);
        requested.validate()?;
        if !requested.within(allowed) {
            return Err(ReceiptError::BeyondAllowance {
                requested: *requested,
                allowed: *allowed,
            });
        }
        let tiers = self
            .keys
            .get(&now_epoch)
            .ok_or(ReceiptError::NoKeyForEpoch { epoch: now_epoch })?;
        let tier =
            tiers
                .iter()
                .find(|t| t.ceiling == *requested)
                .ok_or(ReceiptError::NoSuchTier {
                    requested: *requested,
                    epoch: now_epoch,
                })?;
        let subs = self.counters.entry(now_epoch).or_default();
        let issued = subs.get(&subscription).map_or(0, total);
        let bound = self.config.receipts_per_subscription;
        if issued >= u64::from(bound) {
            return Err(ReceiptError::SubscriptionExhausted {
                subscription,
                epoch: now_epoch,
                issued,
                bound,
            });
        }
        if !subs.contains_key(&subscription)
            && subs.len() >= self.config.max_subscriptions_per_epoch
        {
            return Err(ReceiptError::SubscriptionTableFull {
                epoch: now_epoch,
                max: self.config.max_subscriptions_per_epoch,
            });
        }
        let signature = tier.key.blind_sign(blinded)?;
        // Signed: count it. Our own entry is always allowed (the bound is on others' entries).
        let counter = subs.entry(subscription).or_default();
        match counter.iter_mut().find(|(o, _)| *o == self.oracle) {
            Some((_, n)) => *n = n.saturating_add(1),
            None => counter.push((self.oracle, 1)),
        }
        Ok(signature)
    }

    /// This oracle's own entries for `epoch`, in messages of at most [`MAX_COUNT_ENTRIES`].
    /// Each oracle sends its own to every other (the elected set is small), so no oracle
    /// relays what it cannot vouch for.
    pub fn counts(&self, epoch: u64) -> Vec<Counts> {
        let mut entries: Vec<CountEntry> = self
            .counters
            .get(&epoch)
            .into_iter()
            .flatten()
            .filter_map(|(sub, counter)| {
                counter
                    .iter()
                    .find(|(o, _)| *o == self.oracle)
                    .map(|(_, n)| CountEntry {
                        subscription: *sub,
                        oracle: self.oracle,
                        issued: *n,
                    })
            })
            .collect();
        entries.sort_by_key(|e| e.subscription);
        entries
            .chunks(MAX_COUNT_ENTRIES)
            .map(|c| Counts {
                epoch,
                entries: c.to_vec(),
            })
            .collect()
    }

    /// Merges another oracle's counts: pointwise maximum per (subscription, oracle). Entries
    /// for epochs other than the current one (`now_epoch`, or the latest seen) and the next are
    /// ignored; entries that do not fit the
    /// memory bounds are dropped (see [`MergeReport`]).
    pub fn merge(&mut self, now_epoch: u64, counts: &Counts) -> MergeReport {
        self.prune(now_epoch);
        let mut report = MergeReport::default();
        if counts.epoch < self.horizon || counts.epoch > self.horizon.saturating_add(1) {
            report.wrong_epoch = counts.entries.len();
            return report;
        }
        let (max_subs, max_oracles) = (
            self.config.max_subscriptions_per_epoch,
            self.config.max_oracles,
        );
        let subs = self.counters.entry(counts.epoch).or_default();
        for e in &counts.entries {
            if !subs.contains_key(&e.subscription) && subs.len() >= max_subs {
                report.dropped += 1;
                continue;
            }
            let counter = subs.entry(e.subscription).or_default();
            match counter.iter_mut().find(|(o, _)| *o == e.oracle) {
                Some((_, n)) if *n < e.issued => {
                    *n = e.issued;
                    report.raised += 1;
                }
                Some(_) => report.unchanged += 1,
                None => {
                    let others = counter.iter().filter(|(o, _)| *o != self.oracle).count();
                    if e.oracle != self.oracle && others >= max_oracles {
                        report.dropped += 1;
                    } else if e.issued == 0 {
                        report.unchanged += 1;
                    } else {
                        counter.push((e.oracle, e.issued));
                        report.raised += 1;
                    }
                }
            }
            if counter.is_empty() {
                subs.remove(&e.subscription);
            }
        }
        report
    }
}
