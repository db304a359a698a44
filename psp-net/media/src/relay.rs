//! The fan-out machine of one stream, run by its landing node (frames from the producer) and
//! by each distribution node (frames from the landing node), sans IO.
//!
//! ```text
//! publisher ──ingest(now, frame)──▶ token bucket ──▶ one queue per subscriber ──poll_transmit──▶
//!                                   (bitrate class)   (byte-bounded, oldest dropped)
//! ```
//!
//! * **Rate**: a token bucket of `burst_bytes` refilled at `bitrate_bytes_per_sec` enforces the
//!   stream's bitrate class. A frame with too few tokens is dropped and counted
//!   ([`Ingest::Throttled`]). A publisher throttled at least once every
//!   [`OVER_RATE_GAP_MS`] for `cutoff_after_ms` is cut off ([`Ingest::CutOff`],
//!   [`Event::PublisherCutOff`]); every later frame is refused.
//! * **Queues**: each subscriber's queue holds at most `per_subscriber_queue_bytes`, each frame
//!   charged its length plus [`FRAME_OVERHEAD`] (so many tiny frames are bounded too); a frame
//!   that does not fit evicts the oldest ones (counted as dropped for that subscriber). Frames
//!   are shared (`Arc`), and every queue is a suffix of the same frame sequence, so the frame
//!   bytes a stream holds never exceed one queue's bound, whatever the subscriber count.
//! * **Stalls**: a subscriber with frames waiting that takes none for `stall_timeout_ms` is
//!   removed ([`Event::SubscriberStalled`]); the driver closes its link. Taking a frame with
//!   [`Relay::poll_transmit`] is the flow signal: the driver polls only when the link can
//!   accept bytes.
//!
//! Frames are opaque to the relay (SFrame ciphertext; it holds no key). Time is passed in as
//! milliseconds on any monotonic clock; a clock going backwards counts as no time passing.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

use crate::sframe::{MAX_FRAME_LEN, MIN_FRAME_LEN};
use crate::{MediaError, StreamId};

/// Bytes charged to a queue per frame on top of its length: the queue entry's bookkeeping.
pub const FRAME_OVERHEAD: usize = 64;
/// A publisher counts as continuously over its rate while no more than this passes between two
/// throttled frames.
pub const OVER_RATE_GAP_MS: u64 = 1_000;

/// An opaque subscriber id chosen by the driver (e.g. its link's id).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub struct SubscriberId(pub u64);

/// Bounds and the bitrate class of one stream's relay.
#[derive(Clone, Debug)]
pub struct RelayConfig {
    /// Subscribers served at once.
    pub max_subscribers: usize,
    /// Bytes a subscriber's queue may hold (frames plus [`FRAME_OVERHEAD`] each). At least one
    /// largest frame should fit, or large frames are dropped for everyone.
    pub per_subscriber_queue_bytes: usize,
    /// A subscriber with frames waiting that takes none for this long is removed.
    pub stall_timeout_ms: u64,
    /// The stream's bitrate class: sustained ingest rate, in bytes per second.
    pub bitrate_bytes_per_sec: u64,
    /// Token bucket depth: bytes the publisher may send above the rate at once (a key frame).
    pub burst_bytes: u64,
    /// Continuous over-rate time after which the publisher is cut off.
    pub cutoff_after_ms: u64,
}

impl Default for RelayConfig {
    /// A 2.5 Mbit/s class with a 1 MiB burst, 256 subscribers, 4 MiB per queue, 5 s stalls,
    /// 10 s of over-rate before cut-off.
    fn default() -> Self {
        Self {
            max_subscribers: 256,
            per_subscriber_queue_bytes: 4 << 20,
            stall_timeout_ms: 5_000,
            bitrate_bytes_per_sec: 2_500_000 / 8,
            burst_bytes: 1 << 20,
            cutoff_after_ms: 10_000,
        }
    }
}

/// What became of an ingested frame.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum Ingest {
    /// Queued for every subscriber.
    Forwarded {
        /// Subscribers it was queued for.
        subscribers: usize,
    },
    /// Dropped: above the bitrate class.
    Throttled {
        /// The frame's length.
        frame_len: usize,
        /// Bytes the bucket held.
        available_bytes: u64,
        /// How long the publisher has been continuously over the rate.
        over_rate_for_ms: u64,
    },
    /// Dropped, and the publisher is now cut off: every later frame is refused with
    /// [`MediaError::PublisherCutOff`]. The driver closes the publishing link.
    CutOff {
        /// How long the publisher was continuously over the rate.
        over_rate_for_ms: u64,
    },
}

/// Something the driver acts on, from [`Relay::poll_event`].
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum Event {
    /// A subscriber took nothing for `stall_timeout_ms` with frames waiting and was removed.
    SubscriberStalled {
        /// The subscriber.
        id: SubscriberId,
        /// Bytes it left queued.
        queued_bytes: usize,
    },
    /// The publisher was cut off for exceeding the bitrate class.
    PublisherCutOff {
        /// How long it was over the rate.
        over_rate_for_ms: u64,
    },
}

/// Counters of one subscriber.
#[derive(Clone, Copy, PartialEq, Eq, Default, Debug)]
pub struct SubscriberStats {
    /// Frames handed to the driver.
    pub frames_out: u64,
    /// Their bytes.
    pub bytes_out: u64,
    /// Frames evicted from its full queue.
    pub frames_dropped: u64,
    /// Their bytes.
    pub bytes_dropped: u64,
    /// Frames waiting.
    pub queued_frames: usize,
    /// Bytes waiting (frame bytes only).
    pub queued_bytes: usize,
}

/// Counters of the stream.
#[derive(Clone, PartialEq, Eq, Default, Debug)]
pub struct RelayStats {
    /// Frames accepted from the publisher.
    pub frames_in: u64,
    /// Their bytes.
    pub bytes_in: u64,
    /// Frames dropped by the token bucket.
    pub frames_throttled: u64,
    /// Their bytes.
    pub bytes_throttled: u64,
    /// Subscribers removed for stalling.
    pub subscribers_stalled: u64,
    /// Whether the publisher is cut off.
    pub publisher_cut_off: bool,
    /// Current subscribers and their counters, by id.
    pub subscribers: Vec<(SubscriberId, SubscriberStats)>,
}

struct Subscriber {
    queue: VecDeque<Arc<[u8]>>,
    /// Frame bytes plus FRAME_OVERHEAD per frame.
    charged: usize,
    /// Since when it has had frames waiting without taking any (None: nothing waiting).
    waiting_since: Option<u64>,
    stats: SubscriberStats,
}

/// Token bucket in milli-bytes (bytes × 1000), so refills of a few bytes per ms do not round
/// away.
struct Bucket {
    tokens_mb: u64,
    cap_mb: u64,
    rate: u64,
    last_ms: u64,
}

impl Bucket {
    fn refill(&mut self, now_ms: u64) {
        let elapsed = now_ms.saturating_sub(self.last_ms);
        self.last_ms = self.last_ms.max(now_ms);
        let added = self.rate.saturating_mul(elapsed);
        self.tokens_mb = self.tokens_mb.saturating_add(added).min(self.cap_mb);
    }
}

/// The relay of one stream. See the module docs.
pub struct Relay {
    stream_id: StreamId,
    config: RelayConfig,
    bucket: Bucket,
    /// Since when the publisher is over the rate, and its last throttled frame.
    over_rate: Option<(u64, u64)>,
    cut_off: Option<u64>,
    subscribers: BTreeMap<SubscriberId, Subscriber>,
    events: VecDeque<Event>,
    stats: RelayStats,
}

impl core::fmt::Debug for Relay {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Relay")
            .field("stream_id", &self.stream_id)
            .field("subscribers", &self.subscribers.len())
            .field("cut_off", &self.cut_off)
            .finish_non_exhaustive()
    }
}

impl Relay {
    /// A relay for `stream_id`; the token bucket starts full at `now_ms`.
    pub fn new(stream_id: StreamId, config: RelayConfig, now_ms: u64) -> Self {
        let cap_mb = config.burst_bytes.saturating_mul(1000);
        let bucket = Bucket {
            tokens_mb: cap_mb,
            cap_mb,
            rate: config.bitrate_bytes_per_sec,
            last_ms: now_ms,
        };
        Self {
            stream_id,
            config,
            bucket,
            over_rate: None,
            cut_off: None,
            subscribers: BTreeMap::new(),
            events: VecDeque::new(),
            stats: RelayStats::default(),
        }
    }

    /// The stream relayed.
    pub fn stream_id(&self) -> StreamId {
        self.stream_id
    }

    /// The configuration.
    pub fn config(&self) -> &RelayConfig {
        &self.config
    }

    /// Takes a frame from the publisher: checks its size and the bitrate class, then queues it
    /// for every subscriber. Errors: a frame outside [`MIN_FRAME_LEN`]..=[`MAX_FRAME_LEN`]
    /// (`TooShort`/`TooLarge`, not counted against the rate), a cut-off publisher.
    pub fn ingest(&mut self, now_ms: u64, frame: &[u8]) -> Result<Ingest, MediaError> {
        if let Some(over_rate_for_ms) = self.cut_off {
            return Err(MediaError::PublisherCutOff { over_rate_for_ms });
        }
        check_frame_len(frame.len())?;
        self.handle_timeout(now_ms);
        self.bucket.refill(now_ms);
        let cost_mb = (frame.len() as u64).saturating_mul(1000);
        if self.bucket.tokens_mb < cost_mb {
            return Ok(self.throttle(now_ms, frame.len()));
        }
        self.bucket.tokens_mb -= cost_mb;
        if let Some((_, last)) = self.over_rate {
            if now_ms.saturating_sub(last) > OVER_RATE_GAP_MS {
                self.over_rate = None;
            }
        }
        self.stats.frames_in += 1;
        self.stats.bytes_in += frame.len() as u64;
        let shared: Arc<[u8]> = Arc::from(frame);
        let bound = self.config.per_subscriber_queue_bytes;
        for sub in self.subscribers.values_mut() {
            sub.push(now_ms, shared.clone(), bound);
        }
        Ok(Ingest::Forwarded {
            subscribers: self.subscribers.len(),
        })
    }

    fn throttle(&mut self, now_ms: u64, frame_len: usize) -> Ingest {
        self.stats.frames_throttled += 1;
        self.stats.bytes_throttled += frame_len as u64;
        let since = match self.over_rate {
            Some((since, last)) if now_ms.saturating_sub(last) <= OVER_RATE_GAP_MS => since,
            _ => now_ms,
        };
        self.over_rate = Some((since, now_ms));
        let over_rate_for_ms = now_ms.saturating_sub(since);
        if over_rate_for_ms >= self.config.cutoff_after_ms {
            self.cut_off = Some(over_rate_for_ms);
            self.stats.publisher_cut_off = true;
            self.push_event(Event::PublisherCutOff { over_rate_for_ms });
            return Ingest::CutOff { over_rate_for_ms };
        }
        Ingest::Throttled {
            frame_len,
            available_bytes: self.bucket.tokens_mb / 1000,
            over_rate_for_ms,
        }
    }

    /// Adds a subscriber; it receives frames ingested from now on.
    pub fn subscribe(&mut self, now_ms: u64, id: SubscriberId) -> Result<(), MediaError> {
        // Stalled subscribers give up their places first.
        self.handle_timeout(now_ms);
        if self.subscribers.contains_key(&id) {
            return Err(MediaError::AlreadySubscribed { id });
        }
        if self.subscribers.len() >= self.config.max_subscribers {
            return Err(MediaError::TooManySubscribers {
                max: self.config.max_subscribers,
            });
        }
        let sub = Subscriber {
            queue: VecDeque::new(),
            charged: 0,
            waiting_since: None,
            stats: SubscriberStats::default(),
        };
        self.subscribers.insert(id, sub);
        Ok(())
    }

    /// Removes a subscriber and its queue; its final counters, or `None` if it was not
    /// subscribed.
    pub fn unsubscribe(&mut self, id: SubscriberId) -> Option<SubscriberStats> {
        self.subscribers.remove(&id).map(|s| s.stats)
    }

    /// The next frame for `id`, oldest first, if any; taking it counts as the subscriber's
    /// progress.
    pub fn poll_transmit(
        &mut self,
        now_ms: u64,
        id: SubscriberId,
    ) -> Result<Option<Arc<[u8]>>, MediaError> {
        // No stall sweep here: it is O(subscribers) and this runs once per subscriber and
        // frame. The driver calls `handle_timeout` at `poll_timeout`; `ingest` sweeps too.
        let sub = self
            .subscribers
            .get_mut(&id)
            .ok_or(MediaError::UnknownSubscriber { id })?;
        let Some(frame) = sub.queue.pop_front() else {
            return Ok(None);
        };
        sub.charged -= frame.len() + FRAME_OVERHEAD;
        sub.stats.queued_frames -= 1;
        sub.stats.queued_bytes -= frame.len();
        sub.stats.frames_out += 1;
        sub.stats.bytes_out += frame.len() as u64;
        sub.waiting_since = (!sub.queue.is_empty()).then_some(now_ms);
        Ok(Some(frame))
    }

    /// Removes subscribers stalled at `now_ms` (an [`Event::SubscriberStalled`] each).
    pub fn handle_timeout(&mut self, now_ms: u64) {
        let timeout = self.config.stall_timeout_ms;
        let stalled: Vec<SubscriberId> = self
            .subscribers
            .iter()
            .filter(|(_, s)| {
                s.waiting_since
                    .is_some_and(|t| now_ms.saturating_sub(t) >= timeout)
            })
            .map(|(id, _)| *id)
            .collect();
        for id in stalled {
            if let Some(sub) = self.subscribers.remove(&id) {
                self.stats.subscribers_stalled += 1;
                self.push_event(Event::SubscriberStalled {
                    id,
                    queued_bytes: sub.stats.queued_bytes,
                });
            }
        }
    }

    /// When [`Relay::handle_timeout`] should next run: the earliest stall deadline.
    pub fn poll_timeout(&self) -> Option<u64> {
        let timeout = self.config.stall_timeout_ms;
        self.subscribers
            .values()
            .filter_map(|s| s.waiting_since.map(|t| t.saturating_add(timeout)))
            .min()
    }

    /// The next event, oldest first.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// Whether the publisher is cut off.
    pub fn is_cut_off(&self) -> bool {
        self.cut_off.is_some()
    }

    /// Current subscribers.
    pub fn subscriber_count(&self) -> usize {
        self.subscribers.len()
    }

    /// Counters of one subscriber.
    pub fn subscriber_stats(&self, id: SubscriberId) -> Option<SubscriberStats> {
        self.subscribers.get(&id).map(|s| s.stats)
    }

    /// The stream's counters and every current subscriber's.
    pub fn stats(&self) -> RelayStats {
        let mut stats = self.stats.clone();
        stats.subscribers = self
            .subscribers
            .iter()
            .map(|(id, s)| (*id, s.stats))
            .collect();
        stats
    }

    /// Frame bytes the stream holds: the longest queue's, since queues share their frames and
    /// each is a suffix of the same frame sequence. Never above `per_subscriber_queue_bytes`.
    pub fn held_frame_bytes(&self) -> usize {
        self.subscribers
            .values()
            .map(|s| s.stats.queued_bytes)
            .max()
            .unwrap_or(0)
    }

    /// Events are bounded: one stall per subscriber removed plus the cut-off; past the bound
    /// the oldest is dropped (the driver polls events after every input).
    fn push_event(&mut self, event: Event) {
        let bound = self.config.max_subscribers.saturating_add(1);
        if self.events.len() >= bound {
            self.events.pop_front();
        }
        self.events.push_back(event);
    }
}

impl Subscriber {
    fn push(&mut self, now_ms: u64, frame: Arc<[u8]>, bound: usize) {
        let cost = frame.len() + FRAME_OVERHEAD;
        if cost > bound {
            // Larger than the whole queue: dropped for this subscriber (for every one, as all
            // share the bound), without evicting what is queued.
            self.stats.frames_dropped += 1;
            self.stats.bytes_dropped += frame.len() as u64;
            return;
        }
        while self.charged + cost > bound {
            let Some(old) = self.queue.pop_front() else {
                break;
            };
            self.charged -= old.len() + FRAME_OVERHEAD;
            self.stats.queued_frames -= 1;
            self.stats.queued_bytes -= old.len();
            self.stats.frames_dropped += 1;
            self.stats.bytes_dropped += old.len() as u64;
        }
        self.charged += cost;
        self.stats.queued_frames += 1;
        self.stats.queued_bytes += frame.len();
        self.queue.push_back(frame);
        if self.waiting_since.is_none() {
            self.waiting_since = Some(now_ms);
        }
    }
}

fn check_frame_len(len: usize) -> Result<(), MediaError> {
    if len < MIN_FRAME_LEN {
        return Err(MediaError::TooShort {
            what: "media frame",
            len,
            min: MIN_FRAME_LEN,
        });
    }
    if len > MAX_FRAME_LEN {
        return Err(MediaError::TooLarge {
            what: "media frame",
            len,
            max: MAX_FRAME_LEN,
        });
    }
    Ok(())
}
