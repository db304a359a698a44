//! The recipient's replay cache of introductions (Tor's INTRODUCE2 replay cache).
//!
//! An introduction is accepted only inside a time window around its timestamp, and only once:
//! its random nonce is remembered until the timestamp leaves the window, after which the window
//! check alone refuses it. The cache is bounded; when it is full of live entries it refuses new
//! introductions rather than forget one (forgetting would let that one be replayed).

use std::collections::{BTreeSet, HashSet};

use crate::intro::{IntroError, NONCE_LEN};

/// Replay cache limits.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct ReplayConfig {
    /// Accepted clock difference between the introducer and us, either way. Default 120 s.
    pub window_secs: u64,
    /// Introductions remembered at once. Default 4 096: ~17 accepted introductions a second
    /// sustained over a 240-second window, far above what presence nodes' rate limits let
    /// through to one client.
    pub capacity: usize,
}

impl Default for ReplayConfig {
    fn default() -> Self {
        Self {
            window_secs: 120,
            capacity: 4_096,
        }
    }
}

/// Remembers the nonces of accepted introductions until they expire.
#[derive(Debug, Default)]
pub struct ReplayCache {
    config: ReplayConfig,
    seen: HashSet<[u8; NONCE_LEN]>,
    /// `(forget_at, nonce)`, earliest first.
    by_expiry: BTreeSet<(u64, [u8; NONCE_LEN])>,
}

impl ReplayCache {
    /// An empty cache.
    pub fn new(config: ReplayConfig) -> Self {
        Self {
            config,
            seen: HashSet::new(),
            by_expiry: BTreeSet::new(),
        }
    }

    /// Introductions remembered.
    pub fn len(&self) -> usize {
        self.seen.len()
    }

    /// Whether nothing is remembered.
    pub fn is_empty(&self) -> bool {
        self.seen.is_empty()
    }

    /// Refuses a timestamp outside the window around `now`.
    pub fn check_window(&self, now: u64, timestamp: u64) -> Result<(), IntroError> {
        if timestamp.abs_diff(now) > self.config.window_secs {
            return Err(IntroError::OutsideWindow {
                timestamp,
                now,
                window_secs: self.config.window_secs,
            });
        }
        Ok(())
    }

    /// Checks the window and remembers `nonce`; refuses a nonce already remembered.
    pub fn insert(
        &mut self,
        now: u64,
        timestamp: u64,
        nonce: [u8; NONCE_LEN],
    ) -> Result<(), IntroError> {
        self.check_window(now, timestamp)?;
        self.forget_expired(now);
        if self.seen.contains(&nonce) {
            return Err(IntroError::Replayed);
        }
        if self.seen.len() >= self.config.capacity {
            return Err(IntroError::ReplayCacheFull {
                capacity: self.config.capacity,
            });
        }
        let forget_at = timestamp.saturating_add(self.config.window_secs);
        self.seen.insert(nonce);
        self.by_expiry.insert((forget_at, nonce));
        Ok(())
    }

    /// Forgets entries whose timestamps left the window (the window check refuses them now).
    pub fn forget_expired(&mut self, now: u64) {
        while let Some(&(forget_at, nonce)) = self.by_expiry.first() {
            if forget_at >= now {
                break;
            }
            self.by_expiry.pop_first();
            self.seen.remove(&nonce);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_nonce_is_accepted_once_and_forgotten_after_the_window() {
        let mut cache = ReplayCache::new(ReplayConfig {
            window_secs: 10,
            capacity: 2,
        });
        assert_eq!(cache.insert(100, 100, [1; 16]), Ok(()));
        assert_eq!(cache.insert(105, 100, [1; 16]), Err(IntroError::Replayed));
        // At 110 the timestamp is still inside the window: still remembered.
        assert_eq!(cache.insert(110, 100, [1; 16]), Err(IntroError::Replayed));
        assert!(matches!(
            cache.insert(111, 100, [1; 16]),
            Err(IntroError::OutsideWindow { .. })
        ));
        cache.forget_expired(111);
        assert!(cache.is_empty());
    }

    #[test]
    fn a_full_cache_refuses_instead_of_forgetting() {
        let mut cache = ReplayCache::new(ReplayConfig {
            window_secs: 10,
            capacity: 2,
        });
        cache.insert(100, 100, [1; 16]).unwrap();
        cache.insert(100, 100, [2; 16]).unwrap();
        assert_eq!(
            cache.insert(100, 100, [3; 16]),
            Err(IntroError::ReplayCacheFull { capacity: 2 })
        );
        // Once the first two leave the window there is room again.
        cache.insert(111, 105, [3; 16]).unwrap();
        assert_eq!(cache.len(), 1);
        // Future timestamps beyond the skew are refused too.
        assert!(matches!(
            cache.insert(100, 111, [4; 16]),
            Err(IntroError::OutsideWindow { .. })
        ));
    }
}
