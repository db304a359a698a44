//! The relay: fan-out, bitrate class, queue bounds, stalls, counters.

use psp_media::relay::{Event, Ingest, Relay, RelayConfig, SubscriberId, FRAME_OVERHEAD};
use psp_media::{MediaError, StreamId};

const S: StreamId = StreamId([3; 32]);

fn config() -> RelayConfig {
    RelayConfig {
        max_subscribers: 4,
        per_subscriber_queue_bytes: 10 * (100 + FRAME_OVERHEAD),
        stall_timeout_ms: 1_000,
        bitrate_bytes_per_sec: 10_000,
        burst_bytes: 1_000,
        cutoff_after_ms: 3_000,
    }
}

fn frame(tag: u8) -> Vec<u8> {
    vec![tag; 100]
}

#[test]
fn every_subscriber_gets_every_frame_in_order() {
    let mut r = Relay::new(S, config(), 0);
    let (a, b) = (SubscriberId(1), SubscriberId(2));
    r.subscribe(0, a).unwrap();
    r.subscribe(0, b).unwrap();
    for i in 0..5u8 {
        assert_eq!(
            r.ingest(u64::from(i) * 10, &frame(i)),
            Ok(Ingest::Forwarded { subscribers: 2 })
        );
    }
    for id in [a, b] {
        for i in 0..5u8 {
            assert_eq!(&*r.poll_transmit(50, id).unwrap().unwrap(), &frame(i)[..]);
        }
        assert_eq!(r.poll_transmit(50, id), Ok(None));
    }
    let stats = r.stats();
    assert_eq!((stats.frames_in, stats.bytes_in), (5, 500));
    assert_eq!(stats.subscribers.len(), 2);
    assert_eq!(stats.subscribers[0].1.frames_out, 5);
    assert_eq!(stats.subscribers[0].1.bytes_out, 500);
}

#[test]
fn late_subscribers_start_at_the_next_frame() {
    let mut r = Relay::new(S, config(), 0);
    r.ingest(0, &frame(0)).unwrap();
    r.subscribe(0, SubscriberId(1)).unwrap();
    r.ingest(1, &frame(1)).unwrap();
    assert_eq!(
        &*r.poll_transmit(1, SubscriberId(1)).unwrap().unwrap(),
        &frame(1)[..]
    );
}

#[test]
fn bitrate_class_throttles_then_cuts_off() {
    let mut r = Relay::new(S, config(), 0);
    // Burst 1000 bytes: ten frames pass at once, the eleventh is throttled.
    for i in 0..10 {
        assert!(matches!(
            r.ingest(0, &frame(i)),
            Ok(Ingest::Forwarded { .. })
        ));
    }
    assert_eq!(
        r.ingest(0, &frame(10)),
        Ok(Ingest::Throttled {
            frame_len: 100,
            available_bytes: 0,
            over_rate_for_ms: 0
        })
    );
    // 10 ms refill 100 bytes at 10 000 B/s: one more frame passes.
    assert!(matches!(
        r.ingest(10, &frame(11)),
        Ok(Ingest::Forwarded { .. })
    ));
    // Sending at twice the rate (200 B every 10 ms) keeps throttling every other frame;
    // after 3 s continuously over the rate the publisher is cut off.
    let mut now = 10;
    let cut = loop {
        now += 5;
        match r.ingest(now, &frame(0)).unwrap() {
            Ingest::CutOff { over_rate_for_ms } => break over_rate_for_ms,
            _ => assert!(now < 10_000, "never cut off"),
        }
    };
    assert!(cut >= 3_000);
    assert!(r.is_cut_off());
    assert_eq!(
        r.ingest(now + 1, &frame(0)),
        Err(MediaError::PublisherCutOff {
            over_rate_for_ms: cut
        })
    );
    assert_eq!(
        r.poll_event(),
        Some(Event::PublisherCutOff {
            over_rate_for_ms: cut
        })
    );
    let stats = r.stats();
    assert!(stats.frames_throttled > 0 && stats.publisher_cut_off);
}

#[test]
fn bursts_at_the_rate_are_never_cut_off() {
    let mut r = Relay::new(S, config(), 0);
    // 10 000 B/s in 100-byte frames every 10 ms, for a minute.
    for t in 0..6_000u64 {
        assert!(matches!(
            r.ingest(t * 10, &frame(0)),
            Ok(Ingest::Forwarded { .. })
        ));
    }
    // Occasional over-rate: a burst with one frame throttled, then 2 s at the rate, over and
    // over for longer than `cutoff_after_ms`: each throttle starts a new over-rate period.
    let mut now = 60_000;
    for _ in 0..5 {
        let throttled = (0..12)
            .filter(|_| matches!(r.ingest(now, &frame(0)), Ok(Ingest::Throttled { .. })))
            .count();
        assert!(throttled >= 1);
        for _ in 0..200 {
            now += 10;
            r.ingest(now, &frame(0)).unwrap();
        }
        now += 1_000;
    }
    assert!(!r.is_cut_off());
}

#[test]
fn full_queues_lose_their_oldest_frames() {
    let mut config = config();
    config.bitrate_bytes_per_sec = 1_000_000;
    config.burst_bytes = 1_000_000;
    let mut r = Relay::new(S, config, 0);
    let id = SubscriberId(1);
    r.subscribe(0, id).unwrap();
    // Room for 10 frames; 15 arrive.
    for i in 0..15u8 {
        r.ingest(0, &frame(i)).unwrap();
    }
    let s = r.subscriber_stats(id).unwrap();
    assert_eq!(
        (s.queued_frames, s.frames_dropped, s.bytes_dropped),
        (10, 5, 500)
    );
    assert_eq!(r.held_frame_bytes(), 1_000);
    assert_eq!(&*r.poll_transmit(0, id).unwrap().unwrap(), &frame(5)[..]);
    // A frame larger than the whole queue is dropped without evicting the others.
    r.ingest(0, &vec![1u8; 2_000]).unwrap();
    let s = r.subscriber_stats(id).unwrap();
    assert_eq!((s.queued_frames, s.frames_dropped), (9, 6));
}

#[test]
fn stalled_subscribers_are_removed() {
    let mut r = Relay::new(S, config(), 0);
    let (slow, fast, idle) = (SubscriberId(1), SubscriberId(2), SubscriberId(3));
    for id in [slow, fast] {
        r.subscribe(0, id).unwrap();
    }
    r.ingest(100, &frame(0)).unwrap();
    assert_eq!(r.poll_timeout(), Some(1_100));
    r.poll_transmit(500, fast).unwrap().unwrap();
    r.subscribe(500, idle).unwrap();
    r.handle_timeout(1_099);
    assert_eq!(r.subscriber_count(), 3);
    r.handle_timeout(1_100);
    assert_eq!(r.subscriber_count(), 2);
    assert_eq!(
        r.poll_event(),
        Some(Event::SubscriberStalled {
            id: slow,
            queued_bytes: 100
        })
    );
    // Nothing waiting is not a stall: the others stay, however long.
    r.handle_timeout(100_000);
    assert_eq!(r.subscriber_count(), 2);
    assert_eq!(r.poll_timeout(), None);
    assert_eq!(
        r.poll_transmit(100_000, slow),
        Err(MediaError::UnknownSubscriber { id: slow })
    );
    assert_eq!(r.stats().subscribers_stalled, 1);
}

#[test]
fn subscriptions_are_bounded() {
    let mut r = Relay::new(S, config(), 0);
    for i in 0..4 {
        r.subscribe(0, SubscriberId(i)).unwrap();
    }
    assert_eq!(
        r.subscribe(0, SubscriberId(1)),
        Err(MediaError::AlreadySubscribed {
            id: SubscriberId(1)
        })
    );
    assert_eq!(
        r.subscribe(0, SubscriberId(9)),
        Err(MediaError::TooManySubscribers { max: 4 })
    );
    assert!(r.unsubscribe(SubscriberId(0)).is_some());
    assert!(r.unsubscribe(SubscriberId(0)).is_none());
    r.subscribe(0, SubscriberId(9)).unwrap();
}

#[test]
fn frame_sizes_are_checked_before_the_rate() {
    let mut r = Relay::new(S, config(), 0);
    assert!(matches!(
        r.ingest(0, &[0; 16]),
        Err(MediaError::TooShort { .. })
    ));
    assert!(matches!(
        r.ingest(0, &vec![0; (1 << 20) + 1]),
        Err(MediaError::TooLarge { .. })
    ));
    assert_eq!(r.stats().frames_throttled, 0);
}
