//! Deadlines of a state machine's entries, earliest first: the next one in O(log n), no scan.

use std::collections::{BTreeSet, HashMap};
use std::hash::Hash;

/// One deadline per key.
#[derive(Debug)]
pub(crate) struct Deadlines<K: Ord + Hash + Copy> {
    at: HashMap<K, u64>,
    order: BTreeSet<(u64, K)>,
}

impl<K: Ord + Hash + Copy> Default for Deadlines<K> {
    fn default() -> Self {
        Self {
            at: HashMap::new(),
            order: BTreeSet::new(),
        }
    }
}

impl<K: Ord + Hash + Copy> Deadlines<K> {
    /// Sets (or moves) the deadline of `key`.
    pub(crate) fn set(&mut self, key: K, deadline: u64) {
        if let Some(old) = self.at.insert(key, deadline) {
            self.order.remove(&(old, key));
        }
        self.order.insert((deadline, key));
    }

    /// Forgets the deadline of `key`.
    pub(crate) fn remove(&mut self, key: K) {
        if let Some(old) = self.at.remove(&key) {
            self.order.remove(&(old, key));
        }
    }

    /// The earliest deadline.
    pub(crate) fn next(&self) -> Option<u64> {
        self.order.first().map(|&(at, _)| at)
    }

    /// Removes and returns a key whose deadline is at or before `now`.
    pub(crate) fn pop_due(&mut self, now: u64) -> Option<K> {
        let &(at, key) = self.order.first()?;
        if at > now {
            return None;
        }
        self.order.pop_first();
        self.at.remove(&key);
        Some(key)
    }

    /// Entries held.
    pub(crate) fn len(&self) -> usize {
        self.at.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deadlines_come_out_earliest_first_and_move() {
        let mut d = Deadlines::default();
        d.set(1u8, 30);
        d.set(2u8, 10);
        d.set(3u8, 20);
        d.set(2u8, 40);
        d.remove(3);
        assert_eq!(d.next(), Some(30));
        assert_eq!(d.pop_due(29), None);
        assert_eq!(d.pop_due(100), Some(1));
        assert_eq!(d.pop_due(100), Some(2));
        assert_eq!(d.pop_due(100), None);
        assert_eq!(d.len(), 0);
    }
}
