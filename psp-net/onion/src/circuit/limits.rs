//! Limits: rates, caps and queue bounds, with their defaults.
//!
//! Every node limits what it sends per circuit and per peer (token buckets), caps the circuits
//! a peer may open, bounds every circuit's queue, and under memory pressure closes the circuits
//! whose queued data is oldest first (Tor's answer to the "sniper" attack).

use super::Timestamp;

/// A token-bucket rate in cells.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Rate {
    /// Sustained rate, cells per second.
    pub cells_per_sec: u32,
    /// Bucket size: the largest burst, in cells.
    pub burst: u32,
}

/// Relay limits. Defaults are documented per field.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// Cells per second one circuit may send from this node (either direction).
    /// Default 10/s, burst 100: 10 × 454 B ≈ 36 kbit/s, room for signaling and messages
    /// (a 45 KB message in one burst) and far below real-time video.
    pub circuit_rate: Rate,
    /// Cells per second this node sends to one peer, over all circuits.
    /// Default 2 000/s, burst 4 000 (relay-to-relay links carry many circuits).
    pub peer_rate: Rate,
    /// Circuits a client connection may have open here. Default 16.
    pub max_circuits_per_client: usize,
    /// Circuits another node may have open here. Default 4 096.
    pub max_circuits_per_node: usize,
    /// Cells queued per circuit before it is closed with `QueueOverflow`.
    /// Default 128 (64 KiB): a sender exceeding the rate for ~13 s at 10/s.
    pub max_queue_per_circuit: usize,
    /// Cells queued over all circuits before the oldest-queue circuits are closed.
    /// Default 65 536 (32 MiB of cells).
    pub max_queued_cells: usize,
    /// RELAY_EARLY cells a circuit may carry through this node; bounds circuit length.
    /// Default 8 (as Tor).
    pub max_relay_early: u16,
    /// Streams per circuit at the last hop. Default 32.
    pub max_streams_per_circuit: usize,
    /// Undelivered events kept before new ones are dropped (and counted). Default 1 024.
    pub max_events: usize,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            circuit_rate: Rate {
                cells_per_sec: 10,
                burst: 100,
            },
            peer_rate: Rate {
                cells_per_sec: 2_000,
                burst: 4_000,
            },
            max_circuits_per_client: 16,
            max_circuits_per_node: 4_096,
            max_queue_per_circuit: 128,
            max_queued_cells: 65_536,
            max_relay_early: 8,
            max_streams_per_circuit: 32,
            max_events: 1_024,
        }
    }
}

/// One cell = 1 000 milli-tokens; integer arithmetic, no floats, no clock.
const CELL: u64 = 1_000;

/// A token bucket refilled from the timestamps passed in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenBucket {
    milli_tokens: u64,
    capacity: u64,
    /// Milli-tokens per millisecond = cells per second.
    per_ms: u64,
    last: Timestamp,
}

impl TokenBucket {
    /// A full bucket at `now`.
    pub fn new(rate: Rate, now: Timestamp) -> Self {
        let capacity = u64::from(rate.burst.max(1)) * CELL;
        Self {
            milli_tokens: capacity,
            capacity,
            per_ms: u64::from(rate.cells_per_sec),
            last: now,
        }
    }

    fn refill(&mut self, now: Timestamp) {
        if now > self.last {
            let add = (now.0 - self.last.0).saturating_mul(self.per_ms);
            self.milli_tokens = self.milli_tokens.saturating_add(add).min(self.capacity);
            self.last = now;
        }
    }

    /// Whether a cell may be sent at `now` (refills first, does not take).
    pub fn ready(&mut self, now: Timestamp) -> bool {
        self.refill(now);
        self.milli_tokens >= CELL
    }

    /// Takes one cell's worth; call after [`TokenBucket::ready`] returned true.
    pub fn take(&mut self) {
        self.milli_tokens = self.milli_tokens.saturating_sub(CELL);
    }

    /// When the next cell may be sent (`None`: never, rate 0).
    pub fn ready_at(&self) -> Option<Timestamp> {
        if self.milli_tokens >= CELL {
            return Some(self.last);
        }
        if self.per_ms == 0 {
            return None;
        }
        let wait = (CELL - self.milli_tokens).div_ceil(self.per_ms);
        Some(Timestamp(self.last.0.saturating_add(wait)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_refills_at_rate() {
        let mut b = TokenBucket::new(
            Rate {
                cells_per_sec: 10,
                burst: 2,
            },
            Timestamp(0),
        );
        assert!(b.ready(Timestamp(0)));
        b.take();
        b.take();
        assert!(!b.ready(Timestamp(0)));
        assert_eq!(b.ready_at(), Some(Timestamp(100)));
        assert!(!b.ready(Timestamp(99)));
        assert!(b.ready(Timestamp(100)));
        assert!(b.ready(Timestamp(10_000)));
        b.take();
        b.take();
        assert!(!b.ready(Timestamp(10_000)), "burst caps the refill");
    }
}
