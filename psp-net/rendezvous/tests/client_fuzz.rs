//! Random bytes, timeouts and closed streams into every client machine, in every state it
//! can wait in: errors and `Failed` events, never a panic; bounds hold; an ended machine
//! stays silent. Altered presence records never pass a looker.

mod common;

use std::sync::{Arc, OnceLock};

use common::net::*;
use common::*;
use proptest::prelude::*;
use psp_dht::{record_key, RecordKind};
use psp_rendezvous::client::{
    presence_topic, Announcer, AnnouncerConfig, Identity, Initiator, InitiatorConfig,
    InitiatorEvent, InitiatorStreams, Looker, LookerConfig, LookerEvent, Responder,
    ResponderConfig, ResponderEvent, Session,
};
use psp_rendezvous::intro::{self, VerifiedIntroduction};
use psp_rendezvous::record::VerifiedPresence;
use psp_rendezvous::replay::ReplayCache;
use psp_rendezvous::wire::{
    ChannelLimits, Deframer, LookupMsg, PresenceMsg, Registered, RendezvousMsg, MAX_MESSAGE_LEN,
};
use psp_rendezvous::StreamHandle;

const BOB: StreamHandle = StreamHandle(1);
const BOB_RV: StreamHandle = StreamHandle(2);
const LOOKUP: StreamHandle = StreamHandle(30);
const ALICE: InitiatorStreams = InitiatorStreams {
    rendezvous: StreamHandle(10),
    presence: StreamHandle(11),
};

/// The network with Bob registered, and Alice; made once (sr25519 is slow in debug builds).
struct Fixture {
    net: Net,
    alice: Arc<Identity>,
    bob: Arc<Identity>,
    target: VerifiedPresence,
    /// Bob's co-signed record for slot 0, as the DHT holds it.
    record: Vec<u8>,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let mut net = Net::new();
        let alice = net.identity(1);
        let bob = net.identity(2);
        let mut replay = ReplayCache::default();
        net.announce(&bob, &mut replay, 0, BOB, AnnouncerConfig::default());
        let target = net.lookup(&bob.id()).pop().unwrap();
        let key = record_key(RecordKind::Presence, &bob.id(), &presence_topic(0));
        let record = net.dht[&key].clone();
        Fixture {
            net,
            alice,
            bob,
            target,
            record,
        }
    })
}

/// Alice's attempt fed `Established` (so it sent its introduction), and Bob's check of that
/// introduction.
fn introduced(rng: &mut TestRng) -> (Initiator, VerifiedIntroduction) {
    let f = fixture();
    let (mut initiator, _) = Initiator::new(
        f.alice.clone(),
        &f.target,
        f.net.rendezvous_id(),
        ALICE,
        NOW,
        rng,
        InitiatorConfig::default(),
    )
    .unwrap();
    let out = initiator.handle_data(NOW, ALICE.rendezvous, &RendezvousMsg::Established.encode());
    let body = Deframer::default().feed(&out.transmits[0].bytes).unwrap();
    let PresenceMsg::Introduce { sealed, .. } = PresenceMsg::decode(&body[0]).unwrap() else {
        panic!("not an Introduce");
    };
    let introduction = intro::open(sealed.as_slice(), f.bob.announcement())
        .unwrap()
        .check(
            NOW,
            &f.bob.id(),
            &f.net.world.chain(),
            &mut ReplayCache::default(),
        )
        .unwrap();
    (initiator, introduction)
}

fn responder(introduction: &VerifiedIntroduction, rng: &mut TestRng) -> (Responder, Vec<u8>) {
    let f = fixture();
    let (responder, join) = Responder::new(
        &f.bob,
        introduction,
        BOB_RV,
        NOW,
        rng,
        ResponderConfig::default(),
    )
    .unwrap();
    let body = Deframer::default().feed(&join.bytes).unwrap();
    let RendezvousMsg::Join { reply, .. } = RendezvousMsg::decode(&body[0]).unwrap() else {
        panic!("not a Join");
    };
    (responder, RendezvousMsg::Joined { reply }.encode())
}

/// Alice's and Bob's sessions from a real handshake through the machines, no nodes.
fn sessions(rng: &mut TestRng) -> (Session, Session) {
    let (mut initiator, introduction) = introduced(rng);
    let (mut responder, joined) = responder(&introduction, rng);
    let out = initiator.handle_data(NOW, ALICE.rendezvous, &joined);
    let mut to_bob = RendezvousMsg::Linked.encode();
    to_bob.extend(out.transmits.iter().flat_map(|t| t.bytes.clone()));
    let (alice, _) = initiator_session(out.events);
    let (bob, _) = responder_session(responder.handle_data(NOW, &to_bob).events);
    (alice, bob)
}

/// A lookup of Bob's slots `0..slots` at `NOW`.
fn looker_of(slots: u8) -> Looker {
    let f = fixture();
    Looker::new(LOOKUP, f.bob.id(), slots, NOW, LookerConfig::default())
        .unwrap()
        .0
}

fn looker() -> Looker {
    looker_of(2)
}

/// Random bytes, or a whole frame of version 1 with a random type and fields (to get past
/// the deframer and the version check).
fn input() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..400),
        (0u8..0x10, proptest::collection::vec(any::<u8>(), 0..300)).prop_map(|(kind, rest)| {
            let len = u16::try_from(rest.len() + 2).unwrap();
            let mut frame = len.to_be_bytes().to_vec();
            frame.extend([1, kind]);
            frame.extend(rest);
            frame
        }),
    ]
}

/// The machines a case drives, each in a state where it waits for the network.
struct Machines {
    announcers: Vec<Announcer>,
    initiators: Vec<Initiator>,
    responders: Vec<Responder>,
    sessions: Vec<Session>,
    lookers: Vec<Looker>,
}

fn machines(seed: u8) -> Machines {
    let f = fixture();
    let mut rng = TestRng::new(seed);
    let new_announcer = || {
        Announcer::new(
            f.bob.clone(),
            f.net.presence_id(0),
            BOB,
            AnnouncerConfig {
                max_pending: 2,
                ..AnnouncerConfig::default()
            },
        )
    };
    let fresh = new_announcer();
    let mut registering = new_announcer();
    let _ = registering.start(NOW).unwrap();
    let mut registered = new_announcer();
    let _ = registered.start(NOW).unwrap();
    let confirm = PresenceMsg::Registered(Registered {
        expires_at: NOW + 240,
        limits: ChannelLimits::default(),
    });
    let chain = f.net.world.chain();
    let mut replay = ReplayCache::default();
    let _ = registered.handle_data(NOW, &confirm.encode(), &chain, &mut replay);
    assert!(registered.is_registered());

    let (establishing, _) = Initiator::new(
        f.alice.clone(),
        &f.target,
        f.net.rendezvous_id(),
        ALICE,
        NOW,
        &mut rng,
        InitiatorConfig::default(),
    )
    .unwrap();
    let (awaiting_answer, introduction) = introduced(&mut rng);
    let (awaiting_link, _) = responder(&introduction, &mut rng);
    let (mut awaiting_finish, _) = responder(&introduction, &mut rng);
    let linked = awaiting_finish.handle_data(NOW, &RendezvousMsg::Linked.encode());
    assert!(matches!(linked.events[..], [ResponderEvent::Linked]));
    let (alice, bob) = sessions(&mut rng);
    Machines {
        announcers: vec![fresh, registering, registered],
        initiators: vec![establishing, awaiting_answer],
        responders: vec![awaiting_link, awaiting_finish],
        sessions: vec![alice, bob],
        lookers: vec![looker_of(1), looker_of(8)],
    }
}

proptest! {
    // Each case builds real handshakes: 48 cases keep the file to a few seconds.
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn client_machines_never_panic_and_stay_bounded(
        seed in any::<u8>(),
        inputs in proptest::collection::vec((any::<u8>(), input(), 0u64..100, any::<u8>()), 1..24),
    ) {
        let f = fixture();
        let chain = f.net.world.chain();
        let mut replay = ReplayCache::default();
        let mut m = machines(seed);
        let mut now = NOW;
        for (target, bytes, dt, action) in inputs {
            now += dt;
            let index = usize::from(target / 5);
            match target % 5 {
                0 => {
                    let a = &mut m.announcers[index % 3];
                    let closed = a.is_closed();
                    let out = a.handle_data(now, &bytes, &chain, &mut replay);
                    prop_assert!(!closed || out.is_empty());
                    let _ = a.handle_timeout(now);
                    if action % 7 == 0 {
                        let _ = a.handle_stream_closed();
                    }
                    prop_assert!(a.pending().count() <= 2);
                }
                1 => {
                    let i = &mut m.initiators[index % 2];
                    let stream = if action % 2 == 0 { ALICE.rendezvous } else { ALICE.presence };
                    let closed = i.is_closed();
                    let out = i.handle_data(now, stream, &bytes);
                    prop_assert!(!closed || out.is_empty());
                    // An established session from random bytes would be a forged handshake.
                    prop_assert!(!out.events.iter().any(|e| matches!(e, InitiatorEvent::Established(_))));
                    let _ = i.handle_timeout(now);
                    if action % 5 == 0 {
                        let _ = i.handle_stream_closed(stream);
                    }
                }
                2 => {
                    let r = &mut m.responders[index % 2];
                    let closed = r.is_closed();
                    let out = r.handle_data(now, &bytes);
                    prop_assert!(!closed || out.is_empty());
                    prop_assert!(!out.events.iter().any(|e| matches!(e, ResponderEvent::Established(_))));
                    let _ = r.handle_timeout(now);
                }
                4 => {
                    let l = &mut m.lookers[index % 2];
                    let closed = l.is_closed();
                    let out = l.handle_data(now, &bytes, &chain);
                    prop_assert!(!closed || out.is_empty());
                    for event in &out.events {
                        // Random bytes never make a record that checks.
                        let found_some = matches!(event, LookerEvent::Found { presences, .. } if !presences.is_empty());
                        prop_assert!(!found_some, "a random record passed the looker");
                    }
                    let _ = l.handle_timeout(now);
                    if action % 13 == 0 {
                        let _ = l.handle_stream_closed();
                    }
                }
                _ => {
                    let s = &mut m.sessions[index % 2];
                    let out = s.handle_data(&bytes);
                    prop_assert!(out.events.len() <= 1, "random frames never authenticate");
                    if s.is_closed() {
                        prop_assert!(s.send(b"x").is_err());
                    }
                    if action % 11 == 0 {
                        let _ = s.handle_stream_closed();
                    }
                }
            }
        }
    }

    /// Bob's real record with random bytes changed, among random records: a changed record
    /// is always refused and counted, the real one found once, nothing panics.
    #[test]
    fn a_looker_refuses_every_altered_record(
        flips in proptest::collection::vec((any::<u16>(), 1u8..=255), 1..4),
        noise in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..768), 0..4),
        with_original in any::<bool>(),
    ) {
        let f = fixture();
        let chain = f.net.world.chain();
        let mut altered = f.record.clone();
        for (at, mask) in flips {
            let i = usize::from(at) % altered.len();
            altered[i] ^= mask;
        }
        let mut records = vec![altered];
        records.extend(noise.iter().cloned());
        if with_original {
            records.push(f.record.clone());
        }
        let total = records.len();
        let reply = LookupMsg::records(records).unwrap().encode();
        let mut l = looker();
        let out = l.handle_data(NOW, &reply, &chain);
        prop_assert_eq!(out.close, vec![LOOKUP]);
        match &out.events[..] {
            [LookerEvent::Found { presences, rejected }] => {
                let kept = usize::from(with_original);
                prop_assert_eq!(presences.len(), kept);
                prop_assert_eq!(*rejected, total - kept);
                if with_original {
                    prop_assert_eq!(&presences[0], &f.target);
                }
            }
            other => prop_assert!(false, "expected Found: {:?}", other),
        }
    }

    /// Bytes split anywhere reach a session whole: the deframer's buffer never holds more
    /// than one frame.
    #[test]
    fn a_session_reassembles_whatever_the_chunking(
        seed in any::<u8>(),
        cuts in proptest::collection::vec(1usize..600, 1..30),
    ) {
        let mut rng = TestRng::new(seed);
        let (mut alice, mut bob) = sessions(&mut rng);
        let message: Vec<u8> = (0..5_000u32).map(|i| (i % 253) as u8).collect();
        let bytes: Vec<u8> = alice.send(&message).unwrap().into_iter().flat_map(|t| t.bytes).collect();
        prop_assert!(bytes.len() < 20 * MAX_MESSAGE_LEN);
        let mut got = Vec::new();
        let mut rest = &bytes[..];
        for cut in cuts.iter().cycle() {
            if rest.is_empty() {
                break;
            }
            let (chunk, tail) = rest.split_at((*cut).min(rest.len()));
            rest = tail;
            got.extend(messages(bob.handle_data(chunk).events));
        }
        prop_assert_eq!(got, vec![message]);
    }
}
