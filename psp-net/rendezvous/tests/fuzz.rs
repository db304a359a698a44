//! Random bytes into every decoder and state machine: nothing panics, and the services stay
//! within their bounds.

mod common;

use common::*;
use proptest::prelude::*;
use psp_rendezvous::channel::ChannelConfig;
use psp_rendezvous::handshake::{InitiatorHandshake, ResponderHandshake};
use psp_rendezvous::intro;
use psp_rendezvous::lookup::{self, Lookup, LookupConfig};
use psp_rendezvous::record::PresenceValue;
use psp_rendezvous::wire::{
    ChannelLimits, Deframer, LookupMsg, PresenceMsg, RendezvousMsg, MAX_LOOKUP_RECORDS,
};
use psp_rendezvous::{fuzz_decode_all, Cookie, StreamHandle};
use std::sync::OnceLock;

/// The world, Alice, Bob and Bob's registration, made once: sr25519 in a debug build costs
/// milliseconds, and the state-machine cases only need fresh services.
struct Fixture {
    world: World,
    alice: Client,
    bob: Client,
    register: Vec<u8>,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let mut world = World::new();
        let alice = world.client(1);
        let bob = world.client(2);
        let register = world.register(&bob, ChannelLimits::default());
        Fixture {
            world,
            alice,
            bob,
            register,
        }
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn decoders_never_panic(data in proptest::collection::vec(any::<u8>(), 0..2_048)) {
        fuzz_decode_all(&data);
        let _ = PresenceValue::decode(&data);
        let bob = psp_rendezvous::crypto::AnnouncementSecret::from_bytes([9; 32]);
        let _ = intro::open(&data, &bob);
    }

    /// Bodies that start like real messages reach deeper into the decoders.
    #[test]
    fn decoders_never_panic_on_plausible_bodies(
        kind in 0u8..0x20,
        rest in proptest::collection::vec(any::<u8>(), 0..600),
    ) {
        let mut body = vec![1, kind];
        body.extend_from_slice(&rest);
        let _ = PresenceMsg::decode(&body);
        let _ = RendezvousMsg::decode(&body);
        if let Ok(LookupMsg::Records(records)) = LookupMsg::decode(&body) {
            prop_assert!(records.len() <= MAX_LOOKUP_RECORDS);
        }
    }

}

proptest! {
    // Each case runs real signature checks: 64 cases keep the file under a few seconds.
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Random chunks on random streams, interleaved with timeouts, against both services.
    #[test]
    fn services_never_panic_and_stay_bounded(
        inputs in proptest::collection::vec(
            (0u64..6, proptest::collection::vec(any::<u8>(), 0..300), 0u64..400, any::<bool>()),
            1..40,
        ),
    ) {
        let Fixture { world, register, .. } = fixture();
        let mut presence = world.presence();
        let mut rendezvous = rendezvous_service();
        // One real registration and one real rendezvous point, so random bytes meet state.
        let _ = presence.handle_data(NOW, StreamHandle(0), register, &world.chain());
        let _ = rendezvous.handle_data(NOW, StreamHandle(0), &RendezvousMsg::Establish(Cookie([1; 32])).encode());
        let mut now = NOW;
        for (stream, bytes, dt, close) in inputs {
            now += dt;
            let stream = StreamHandle(stream);
            let _ = presence.handle_data(now, stream, &bytes, &world.chain());
            let _ = rendezvous.handle_data(now, stream, &bytes);
            if close {
                presence.handle_stream_closed(stream);
                rendezvous.handle_stream_closed(stream);
            }
            presence.handle_timeout(now);
            rendezvous.handle_timeout(now);
            drain_presence(&mut presence);
            drain_rendezvous(&mut rendezvous);
            prop_assert!(presence.streams() <= 6 && rendezvous.streams() <= 6);
        }
        // Everything closes: nothing is left behind.
        for s in 0..6 {
            presence.handle_stream_closed(StreamHandle(s));
            rendezvous.handle_stream_closed(StreamHandle(s));
        }
        prop_assert_eq!((presence.registrations(), presence.pending_introductions(), presence.streams(), presence.timers()), (0, 0, 0, 0));
        prop_assert_eq!((rendezvous.waiting(), rendezvous.links(), rendezvous.streams(), rendezvous.timers()), (0, 0, 0, 0));
    }

    /// Random frames into an established channel and random replies and finishes into the
    /// handshake: errors, never panics.
    #[test]
    fn handshake_and_channel_never_panic(
        frames in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..500), 1..8),
    ) {
        let Fixture { alice, bob, .. } = fixture();
        let mut rng = TestRng::new(frames.len() as u8);
        let cookie = Cookie([3; 32]);
        let initiator = InitiatorHandshake::new(alice.id(), bob.id(), cookie, &mut rng);
        let (_, responder) = ResponderHandshake::respond_to(&bob.key, &alice.id(), &initiator.handshake_key(), &cookie, &mut rng).unwrap();
        prop_assert!(initiator.finish(&alice.key, &frames[0], ChannelConfig::default()).is_err());
        prop_assert!(responder.finish(&frames[0], ChannelConfig::default()).is_err());

        let initiator = InitiatorHandshake::new(alice.id(), bob.id(), cookie, &mut rng);
        let (reply, responder) = ResponderHandshake::respond_to(&bob.key, &alice.id(), &initiator.handshake_key(), &cookie, &mut rng).unwrap();
        let (finish, _alice) = initiator.finish(&alice.key, reply.as_slice(), ChannelConfig::default()).unwrap();
        let mut channel = responder.finish(&finish, ChannelConfig::default()).unwrap();
        for frame in &frames {
            prop_assert!(channel.open_frame(frame).is_err());
        }
        prop_assert_eq!(channel.reassembly_bytes(), 0);
    }

}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Random chunks (and real requests) on random streams, random DHT answers, timeouts and
    /// closes into the lookup service: it never panics, never forwards more than a stream
    /// asked, stays within its bounds and forgets everything once the streams close.
    #[test]
    fn the_lookup_service_never_panics_and_stays_bounded(
        inputs in proptest::collection::vec(
            (
                0u64..6,
                prop_oneof![
                    proptest::collection::vec(any::<u8>(), 0..300),
                    (any::<[u8; 32]>(), 1u8..=8).prop_map(|(owner, slots)| LookupMsg::Request { owner, slots }.encode()),
                ],
                0u64..30,
                0u8..8,
                proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..900), 0..12),
            ),
            1..40,
        ),
    ) {
        let config = LookupConfig {
            max_streams: 4,
            max_concurrent_fetches: 2,
            max_requests_per_stream: 3,
            ..LookupConfig::default()
        };
        let mut service = Lookup::new(config);
        let mut asked = std::collections::HashMap::new();
        let mut now = NOW;
        for (stream, bytes, dt, what, answer) in inputs {
            now += dt;
            let stream = StreamHandle(stream);
            let _ = service.handle_data(now, stream, &bytes);
            match what {
                0 => service.handle_stream_closed(stream),
                1 | 2 => service.handle_fetched(now, stream, answer),
                _ => service.handle_timeout(now),
            }
            for action in drain_lookup(&mut service) {
                match action {
                    lookup::Action::Fetch { stream, keys } => {
                        prop_assert!(!keys.is_empty() && keys.len() <= 8);
                        asked.insert(stream, keys.len());
                    }
                    lookup::Action::Send { stream, bytes } => {
                        let bodies = Deframer::default().feed(&bytes).unwrap();
                        prop_assert_eq!(bodies.len(), 1);
                        if let LookupMsg::Records(records) = LookupMsg::decode(&bodies[0]).unwrap() {
                            prop_assert!(records.len() <= asked.get(&stream).copied().unwrap_or(0));
                        }
                    }
                    _ => {}
                }
            }
            prop_assert!(service.streams() <= 4 && service.fetches() <= 2);
            prop_assert!(service.timers() == service.streams());
        }
        for s in 0..6 {
            service.handle_stream_closed(StreamHandle(s));
        }
        prop_assert_eq!((service.streams(), service.fetches(), service.timers()), (0, 0, 0));
    }

    #[test]
    fn the_deframer_holds_at_most_one_frame(chunks in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..3_000), 1..10)) {
        let mut d = Deframer::default();
        for chunk in chunks {
            if d.feed(&chunk).is_err() {
                break;
            }
            prop_assert!(d.buffered() <= 2 + psp_rendezvous::wire::MAX_MESSAGE_LEN);
        }
    }
}
