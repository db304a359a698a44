//! Property tests: every decoder on random bytes (no panic, and what decodes re-encodes to the
//! same bytes), SFrame round trips, the relay's bounds under random operations, the scaling
//! machine under random inputs.

use proptest::prelude::*;
use psp_media::load::{ConsumerId, LoadReport, Scaling, ScalingConfig, SignedLoadReport};
use psp_media::relay::{Ingest, Relay, RelayConfig, SubscriberId, FRAME_OVERHEAD};
use psp_media::sframe::{Context, Header, KeyUsage};
use psp_media::wire::{Deframer, MediaMsg};
use psp_media::{fuzz_decode_all, StreamId};
use psp_onion::crypto::{NodeId, Sr25519Keypair};

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn decoders_never_panic(data in proptest::collection::vec(any::<u8>(), 0..400)) {
        fuzz_decode_all(&data);
    }

    #[test]
    fn media_messages_decode_canonically(ty in 1u8..=6, body in proptest::collection::vec(any::<u8>(), 0..300)) {
        let mut bytes = vec![ty];
        bytes.extend_from_slice(&body);
        if let Ok(msg) = MediaMsg::decode(&bytes) {
            prop_assert_eq!(&msg.encode()[4..], &bytes[..]);
        }
    }

    #[test]
    fn headers_decode_canonically(data in proptest::collection::vec(any::<u8>(), 0..20)) {
        if let Ok((h, len)) = Header::decode(&data) {
            prop_assert_eq!(&h.to_bytes()[..], &data[..len]);
        }
    }

    #[test]
    fn headers_round_trip(kid in any::<u64>(), ctr in any::<u64>()) {
        let h = Header { kid, ctr };
        let bytes = h.to_bytes();
        prop_assert_eq!(Header::decode(&bytes).unwrap(), (h, bytes.len()));
    }

    #[test]
    fn load_reports_decode_canonically(data in proptest::collection::vec(any::<u8>(), 150..160)) {
        if let Ok(r) = SignedLoadReport::decode(&data) {
            prop_assert_eq!(&r.encode()[..], &data[..]);
            // Random bytes are not a valid signature.
            prop_assert!(r.verify().is_err());
        }
    }

    #[test]
    fn the_deframer_survives_any_split(data in proptest::collection::vec(any::<u8>(), 0..600), cut in 0usize..600) {
        let cut = cut.min(data.len());
        let mut d = Deframer::new();
        if d.feed(&data[..cut]).is_ok() {
            let _ = d.feed(&data[cut..]);
        }
    }

    #[test]
    fn random_frames_never_decrypt(kid in 0u64..4, data in proptest::collection::vec(any::<u8>(), 0..200)) {
        let mut r = Context::new();
        r.add_key(kid, &[kid as u8; 16], KeyUsage::Decrypt).unwrap();
        prop_assert!(r.decrypt(&data, b"").is_err());
    }

    #[test]
    fn sframe_round_trips(kid in any::<u64>(), ctr in any::<u64>(),
                          meta in proptest::collection::vec(any::<u8>(), 0..64),
                          pt in proptest::collection::vec(any::<u8>(), 0..2_000)) {
        let key = [0x5c; 16];
        let mut s = Context::new();
        s.add_key(kid, &key, KeyUsage::Encrypt).unwrap();
        let mut r = Context::new();
        r.add_key(kid, &key, KeyUsage::Decrypt).unwrap();
        let frame = s.encrypt(kid, ctr, &meta, &pt).unwrap();
        let out = r.decrypt(&frame, &meta).unwrap();
        prop_assert_eq!(out.header, Header { kid, ctr });
        prop_assert_eq!(out.plaintext, pt);
    }
}

#[derive(Clone, Debug)]
enum Op {
    Ingest(u16),
    Subscribe(u8),
    Unsubscribe(u8),
    Take(u8),
    Tick(u16),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (17u16..3_000).prop_map(Op::Ingest),
        1 => (0u8..8).prop_map(Op::Subscribe),
        1 => (0u8..8).prop_map(Op::Unsubscribe),
        3 => (0u8..8).prop_map(Op::Take),
        1 => (0u16..2_000).prop_map(Op::Tick),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Whatever happens, queues stay within their bound, the stream's held bytes within one
    /// queue's bound, subscribers within theirs, and counters add up.
    #[test]
    fn relay_bounds_hold(ops in proptest::collection::vec(op(), 0..300)) {
        let config = RelayConfig {
            max_subscribers: 5,
            per_subscriber_queue_bytes: 8_000,
            stall_timeout_ms: 700,
            bitrate_bytes_per_sec: 50_000,
            burst_bytes: 6_000,
            cutoff_after_ms: 2_000,
        };
        let mut r = Relay::new(StreamId([1; 32]), config, 0);
        let mut now = 0u64;
        let mut taken = 0u64;
        for op in ops {
            match op {
                Op::Ingest(len) => {
                    now += 1;
                    if let Ok(Ingest::Forwarded { subscribers }) = r.ingest(now, &vec![0; len.into()]) {
                        prop_assert_eq!(subscribers, r.subscriber_count());
                    }
                }
                Op::Subscribe(id) => { let _ = r.subscribe(now, SubscriberId(id.into())); }
                Op::Unsubscribe(id) => { r.unsubscribe(SubscriberId(id.into())); }
                Op::Take(id) => {
                    if let Ok(Some(f)) = r.poll_transmit(now, SubscriberId(id.into())) {
                        taken += f.len() as u64;
                    }
                }
                Op::Tick(ms) => { now += u64::from(ms); r.handle_timeout(now); }
            }
            prop_assert!(r.subscriber_count() <= 5);
            prop_assert!(r.held_frame_bytes() <= 8_000);
            for (_, s) in r.stats().subscribers {
                prop_assert!(s.queued_bytes + s.queued_frames * FRAME_OVERHEAD <= 8_000);
            }
            while r.poll_event().is_some() {}
        }
        let stats = r.stats();
        prop_assert!(stats.bytes_in <= 6_000 + 50 * now + 3_000);
        let out: u64 = stats.subscribers.iter().map(|(_, s)| s.bytes_out).sum();
        prop_assert!(out <= taken);
    }

}

proptest! {
    // sr25519 signing and verifying dominate (slow in debug builds): fewer cases.
    #![proptest_config(ProptestConfig::with_cases(24))]

    /// Random reports and assignments never panic, and every assignment names an access point.
    #[test]
    fn scaling_takes_anything(inputs in proptest::collection::vec((0u8..4, any::<u32>(), any::<u32>(), 0u64..50_000, any::<bool>()), 0..40)) {
        let keys: Vec<Sr25519Keypair> = (0..4).map(|i| Sr25519Keypair::from_seed(&[i; 32])).collect();
        let nodes: Vec<NodeId> = keys.iter().map(|k| NodeId(k.public())).collect();
        let stream = StreamId([4; 32]);
        let mut s = Scaling::new(stream, &nodes[..2], 4, ScalingConfig::default(), 0).unwrap();
        let mut now = 0u64;
        for (i, (who, out, cap, dt, add)) in inputs.into_iter().enumerate() {
            now += dt;
            let report = LoadReport {
                node: nodes[usize::from(who)],
                stream_id: stream,
                subscribers: 0,
                bytes_per_sec_out: out.into(),
                capacity_bytes_per_sec: cap.into(),
                at: now,
            };
            let _ = s.on_report(now, &report.sign(&keys[usize::from(who)]));
            if let Ok(node) = s.assign(now, ConsumerId(i as u64)) {
                prop_assert!(s.access_points().contains(&node));
            }
            if add {
                let _ = s.add_nodes(now, &[nodes[usize::from(who)]]);
            }
            prop_assert!(s.access_points().len() <= 4);
            while s.poll_action().is_some() {}
        }
    }
}
