//! One registered presence point: the checks a record must pass, the limits in force and the
//! introduction rate bucket.

use std::collections::BTreeSet;

use psp_dht::{RecordContent, RecordKey};
use psp_onion::crypto::{sr25519_verify, Sr25519Signature};

use super::{PresenceConfig, PresenceError};
use crate::chain::ChainView;
use crate::ids::{IntroId, StreamHandle};
use crate::record::PresenceValue;
use crate::wire::{ChannelLimits, OwnerSignedRecord};

/// A record that passed every check: ready to co-sign.
pub(super) struct CheckedRecord {
    pub(super) content: RecordContent,
    pub(super) owner_signature: Sr25519Signature,
    pub(super) public: bool,
}

/// Checks an owner-signed presence record for this node, cheapest first: publisher, times,
/// value, certificate (live identity, elected authority, certifies the owner, outlasts the
/// record), owner signature.
pub(super) fn check_record(
    record: OwnerSignedRecord,
    now: u64,
    node_id: &[u8; 32],
    config: &PresenceConfig,
    chain: &ChainView<'_>,
) -> Result<CheckedRecord, PresenceError> {
    let (content, owner_signature) = record.into_parts();
    if &content.publisher != node_id {
        return Err(PresenceError::WrongPublisher);
    }
    let times_ok = content.issued_at <= now.saturating_add(config.max_clock_skew_secs)
        && content.expires_at > now
        && content.expires_at > content.issued_at
        && content.expires_at - now <= config.max_record_lifetime_secs;
    if !times_ok {
        return Err(PresenceError::BadValidity {
            issued_at: content.issued_at,
            expires_at: content.expires_at,
            now,
            max_skew_secs: config.max_clock_skew_secs,
            max_lifetime_secs: config.max_record_lifetime_secs,
        });
    }
    let value = PresenceValue::decode(&content.value).map_err(PresenceError::BadValue)?;
    let certificate = chain.verify_certificate(&value.certificate, now, &content.owner)?;
    let not_after = certificate.body().not_after;
    if content.expires_at > not_after {
        return Err(PresenceError::OutlivesCertificate {
            expires_at: content.expires_at,
            not_after,
        });
    }
    if !sr25519_verify(&content.owner, &content.owner_message(), &owner_signature) {
        return Err(PresenceError::OwnerSignature);
    }
    Ok(CheckedRecord {
        content,
        owner_signature,
        public: value.public,
    })
}

/// The asked limits lowered to the node's maxima; cap and burst must be at least 1.
pub(super) fn effective_limits(
    asked: ChannelLimits,
    max: ChannelLimits,
) -> Result<ChannelLimits, PresenceError> {
    if asked.cap == 0 || asked.burst == 0 {
        return Err(PresenceError::BadLimits);
    }
    Ok(ChannelLimits {
        rate_per_minute: asked.rate_per_minute.min(max.rate_per_minute),
        burst: asked.burst.min(max.burst),
        cap: asked.cap.min(max.cap).max(1),
    })
}

/// A token bucket of introductions, refilled from the `now` passed in. Tokens are counted in
/// sixtieths so a per-minute rate refills by whole units every second: an introduction costs
/// 60, a second adds `rate_per_minute`.
#[derive(Debug, Clone)]
pub(super) struct IntroBucket {
    sixtieths: u64,
    capacity: u64,
    per_sec: u64,
    last: u64,
}

const COST: u64 = 60;

impl IntroBucket {
    /// A full bucket.
    pub(super) fn new(limits: &ChannelLimits, now: u64) -> Self {
        let capacity = u64::from(limits.burst) * COST;
        Self {
            sixtieths: capacity,
            capacity,
            per_sec: u64::from(limits.rate_per_minute),
            last: now,
        }
    }

    /// Takes one introduction's worth if there is one.
    pub(super) fn try_take(&mut self, now: u64) -> bool {
        if now > self.last {
            let add = (now - self.last).saturating_mul(self.per_sec);
            self.sixtieths = self.sixtieths.saturating_add(add).min(self.capacity);
            self.last = now;
        }
        if self.sixtieths < COST {
            return false;
        }
        self.sixtieths -= COST;
        true
    }
}

/// A presence point held for a client.
#[derive(Debug)]
pub(super) struct Registration {
    /// The client's stream: introductions go there.
    pub(super) stream: StreamHandle,
    /// The DHT key of its record.
    pub(super) key: RecordKey,
    pub(super) topic: [u8; 32],
    pub(super) seq: u64,
    pub(super) public: bool,
    pub(super) expires_at: u64,
    pub(super) limits: ChannelLimits,
    pub(super) bucket: IntroBucket,
    /// Introductions accepted through this point.
    pub(super) accepted: u16,
    /// Introductions forwarded and not answered yet (at most `limits.cap`).
    pub(super) pending: BTreeSet<IntroId>,
    /// Whether the client was told its cap is reached.
    pub(super) cap_notified: bool,
}

impl Registration {
    /// Channels counted against the cap: accepted plus pending.
    pub(super) fn channels(&self) -> usize {
        usize::from(self.accepted) + self.pending.len()
    }

    /// Whether no further introduction fits under the cap.
    pub(super) fn cap_reached(&self) -> bool {
        self.channels() >= usize::from(self.limits.cap)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bucket_allows_a_burst_then_the_rate() {
        let limits = ChannelLimits {
            rate_per_minute: 6,
            burst: 2,
            cap: 10,
        };
        let mut bucket = IntroBucket::new(&limits, 1_000);
        assert!(bucket.try_take(1_000));
        assert!(bucket.try_take(1_000));
        assert!(!bucket.try_take(1_000));
        // 6 a minute: one every 10 s.
        assert!(!bucket.try_take(1_009));
        assert!(bucket.try_take(1_010));
        assert!(!bucket.try_take(1_010));
        // Refill stops at the burst.
        assert!(bucket.try_take(2_000));
        assert!(bucket.try_take(2_000));
        assert!(!bucket.try_take(2_000));
    }

    #[test]
    fn limits_are_lowered_to_the_maxima_and_zero_is_refused() {
        let max = ChannelLimits {
            rate_per_minute: 60,
            burst: 10,
            cap: 64,
        };
        let asked = ChannelLimits {
            rate_per_minute: 600,
            burst: 1,
            cap: 1_000,
        };
        let got = effective_limits(asked, max).unwrap();
        assert_eq!(
            got,
            ChannelLimits {
                rate_per_minute: 60,
                burst: 1,
                cap: 64
            }
        );
        let zero_cap = ChannelLimits { cap: 0, ..asked };
        assert_eq!(
            effective_limits(zero_cap, max),
            Err(PresenceError::BadLimits)
        );
    }
}
