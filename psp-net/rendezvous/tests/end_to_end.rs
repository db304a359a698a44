//! The whole flow in one process, through the client machines and the real node services:
//! Bob announces at two presence points, Alice looks him up and checks his records herself,
//! introduces herself through one, Bob accepts and joins, they finish the handshake and
//! exchange messages both ways; Carol is declined; what each node saw. A peer that stops
//! half-way is cleaned up by timeouts; an impostor's join fails at Alice. The tests play
//! the driver: they only move bytes between the machines and the in-memory network.

mod common;

use std::sync::Arc;

use common::net::*;
use common::*;
use psp_rendezvous::client::{
    preferred_presence, Announcer, AnnouncerConfig, AnnouncerEvent, ClientError, Identity,
    InitiatorConfig, InitiatorEvent, InitiatorStreams, Responder, ResponderConfig, ResponderEvent,
    SessionEvent,
};
use psp_rendezvous::handshake::HandshakeError;
use psp_rendezvous::replay::ReplayCache;
use psp_rendezvous::wire::IntroRefusal;
use psp_rendezvous::StreamHandle;

const BOB_A: StreamHandle = StreamHandle(1);
const BOB_B: StreamHandle = StreamHandle(2);
const BOB_RV: StreamHandle = StreamHandle(3);
const ALICE: InitiatorStreams = InitiatorStreams {
    rendezvous: StreamHandle(10),
    presence: StreamHandle(11),
};
const CAROL: InitiatorStreams = InitiatorStreams {
    rendezvous: StreamHandle(20),
    presence: StreamHandle(21),
};

/// Bob's agent: his identity, his one replay cache and his presence points.
struct Bob {
    identity: Arc<Identity>,
    replay: ReplayCache,
    points: Vec<Announcer>,
}

/// Bob announces at both presence nodes (slots 0 and 1).
fn bob_announces(net: &mut Net) -> Bob {
    let identity = net.identity(2);
    let mut replay = ReplayCache::default();
    let points = [(0u8, BOB_A), (1, BOB_B)]
        .into_iter()
        .map(|(slot, stream)| {
            let config = AnnouncerConfig {
                slot,
                ..AnnouncerConfig::default()
            };
            net.announce(&identity, &mut replay, usize::from(slot), stream, config)
        })
        .collect();
    Bob {
        identity,
        replay,
        points,
    }
}

fn contains(haystack: &[u8], needle: &[u8; 32]) -> bool {
    haystack.windows(32).any(|w| w == needle)
}

#[test]
fn alice_and_bob_talk_and_carol_is_declined() {
    let mut net = Net::new();
    let mut rng = TestRng::new(7);
    let alice = net.identity(1);
    let carol = net.identity(3);
    let mut bob = bob_announces(&mut net);

    // Alice looks Bob up: two records, each checked by her, the most recent first.
    net.now += 1;
    let records = net.lookup(&bob.identity.id());
    assert_eq!(records.len(), 2);
    let order = preferred_presence(&records, net.now);
    assert_eq!(order.len(), 2);
    let target = order[0].clone();
    assert_eq!(
        target.announcement_key,
        bob.identity.announcement().public()
    );

    // She introduces herself through that point; Bob sees who asks and accepts.
    let mut alice_attempt =
        net.introduce(&alice, &target, ALICE, &mut rng, InitiatorConfig::default());
    let point = net.presence_index(&target.presence_node);
    let (id, introduction) = net.receive_introduction(&mut bob.points[point], &mut bob.replay);
    assert_eq!(introduction.introducer(), &alice.id());
    let mut responder =
        net.accept_and_join(&bob.identity, &mut bob.points[point], id, BOB_RV, &mut rng);

    // Alice gets the acceptance and Bob's join, checks him and sends her finish; Bob checks
    // her.
    let events = net.pump_initiator(&mut alice_attempt);
    assert!(matches!(events[0], InitiatorEvent::Accepted));
    let (mut alice_session, early) = initiator_session(events);
    assert!(early.is_empty() && alice_attempt.is_closed());
    let (mut bob_session, early) = responder_session(net.pump_responder(&mut responder));
    assert!(early.is_empty() && responder.is_closed());
    assert_eq!(alice_session.peer_identity(), &bob.identity.id());
    assert_eq!(bob_session.peer_identity(), &alice.id());

    // Messages both ways, one of 70 000 bytes, byte-exact and in order; each frame one cell.
    let big: Vec<u8> = (0..70_000u32).map(|i| (i % 251) as u8).collect();
    for m in [
        b"hello Bob".to_vec(),
        big.clone(),
        Vec::new(),
        b"bye".to_vec(),
    ] {
        net.send(&mut alice_session, &m);
        assert_eq!(messages(net.pump_session(&mut bob_session)), vec![m]);
    }
    let reversed: Vec<u8> = big.iter().rev().copied().collect();
    let frames = net.send(&mut bob_session, b"hello Alice");
    assert_eq!(frames, 1);
    assert!(net.send(&mut bob_session, &reversed) > 150);
    assert_eq!(
        messages(net.pump_session(&mut alice_session)),
        vec![b"hello Alice".to_vec(), reversed]
    );

    // Carol asks through Bob's other point; Bob declines; Carol is told.
    let other = 1 - point;
    let mut carol_attempt = net.introduce(
        &carol,
        order[1],
        CAROL,
        &mut rng,
        InitiatorConfig::default(),
    );
    let (carol_id, from_carol) = net.receive_introduction(&mut bob.points[other], &mut bob.replay);
    assert_eq!(from_carol.introducer(), &carol.id());
    let decline = bob.points[other].decline(carol_id).unwrap();
    net.write(decline);
    let events = net.pump_initiator(&mut carol_attempt);
    assert!(
        matches!(events[..], [InitiatorEvent::Declined]),
        "{events:?}"
    );
    assert!(carol_attempt.is_closed());

    // Alice ends the session; the rendezvous node closes Bob's side; nothing is left.
    let closing = alice_session.close();
    net.apply(closing);
    let events = net.pump_session(&mut bob_session);
    assert!(matches!(
        events[..],
        [SessionEvent::Closed(ClientError::StreamClosed { .. })]
    ));
    let rv = &net.rendezvous;
    assert_eq!(
        (rv.waiting(), rv.links(), rv.streams(), rv.timers()),
        (0, 0, 0, 0)
    );
    for point in &bob.points {
        assert!(point.is_registered() && point.pending().next().is_none());
    }

    // What the nodes learned: the rendezvous node never saw an identity key; the presence
    // nodes never saw Alice's or Carol's from the introducers' streams.
    for id in [alice.id(), bob.identity.id(), carol.id()] {
        assert!(!contains(&net.seen_by_rendezvous, &id));
    }
    for stream in [ALICE.presence, CAROL.presence] {
        let seen = &net.seen_by_presence[&stream];
        assert!(!contains(seen, &alice.id()) && !contains(seen, &carol.id()));
    }
}

#[test]
fn a_peer_that_stops_half_way_is_cleaned_up_by_timeouts() {
    let mut net = Net::new();
    let mut rng = TestRng::new(8);
    let alice = net.identity(1);
    let mut bob = bob_announces(&mut net);
    let target = net.lookup(&bob.identity.id())[0].clone();

    // 1. Bob never answers: the presence node refuses Alice (timed out) and withdraws the
    // introduction from Bob; Alice's attempt closes its streams and the cookie goes.
    let mut attempt = net.introduce(&alice, &target, ALICE, &mut rng, InitiatorConfig::default());
    let (id, _) = net.receive_introduction(&mut bob.points[0], &mut bob.replay);
    net.advance(net.now + 60);
    let events = net.pump_initiator(&mut attempt);
    assert!(
        matches!(
            events[..],
            [InitiatorEvent::Refused(IntroRefusal::TimedOut)]
        ),
        "{events:?}"
    );
    let events = net.pump_announcer(&mut bob.points[0], &mut bob.replay);
    assert!(matches!(events[..], [AnnouncerEvent::Withdrawn(w)] if w == id));
    assert_eq!(
        bob.points[0].accept(id).unwrap_err(),
        ClientError::UnknownIntroduction(id)
    );
    assert_eq!(net.rendezvous.waiting(), 0);

    // 2. Bob joins, Alice stops before her finish: Bob's handshake deadline ends his side,
    // which closes the link at the rendezvous node.
    let streams = InitiatorStreams {
        rendezvous: StreamHandle(30),
        presence: StreamHandle(31),
    };
    let _stopped = net.introduce(
        &alice,
        &target,
        streams,
        &mut rng,
        InitiatorConfig::default(),
    );
    let (id, _) = net.receive_introduction(&mut bob.points[0], &mut bob.replay);
    let mut responder =
        net.accept_and_join(&bob.identity, &mut bob.points[0], id, BOB_RV, &mut rng);
    let events = net.pump_responder(&mut responder);
    assert!(matches!(events[..], [ResponderEvent::Linked]));
    let deadline = responder.poll_timeout().unwrap();
    assert_eq!(
        deadline,
        net.now + ResponderConfig::default().handshake_timeout_secs
    );
    net.now = deadline;
    let events = net.apply(responder.handle_timeout(deadline));
    assert!(matches!(
        events[..],
        [ResponderEvent::Failed(ClientError::TimedOut { .. })]
    ));
    let rv = &net.rendezvous;
    assert_eq!(
        (rv.waiting(), rv.links(), rv.streams(), rv.timers()),
        (0, 0, 0, 0)
    );

    // 3. Bob stops keeping alive: his records lapse, lookups find nothing, the presence
    // nodes are empty, and his announcers learn their streams closed.
    net.advance(net.now + 1_000);
    assert!(net.lookup(&bob.identity.id()).is_empty());
    for point in &mut bob.points {
        let events = net.pump_announcer(point, &mut bob.replay);
        assert!(matches!(
            events[..],
            [AnnouncerEvent::Failed(ClientError::StreamClosed { .. })]
        ));
    }
    for node in &net.presence {
        let p = &node.service;
        assert_eq!(
            (p.registrations(), p.pending_introductions(), p.timers()),
            (0, 0, 0)
        );
    }
}

#[test]
fn a_join_by_an_impostor_fails_at_alice_not_at_the_node() {
    let mut net = Net::new();
    let mut rng = TestRng::new(9);
    let alice = net.identity(1);
    let mallory = net.identity(4);
    let mut bob = bob_announces(&mut net);
    let target = net.lookup(&bob.identity.id())[0].clone();
    let mut attempt = net.introduce(&alice, &target, ALICE, &mut rng, InitiatorConfig::default());
    let (_, introduction) = net.receive_introduction(&mut bob.points[0], &mut bob.replay);

    // Mallory learned the introduction somehow and joins in Bob's place.
    net.open(StreamHandle(40), Service::Rendezvous);
    let (_, join) = Responder::new(
        &mallory,
        &introduction,
        StreamHandle(40),
        net.now,
        &mut rng,
        ResponderConfig::default(),
    )
    .unwrap();
    net.write(join);
    let events = net.pump_initiator(&mut attempt);
    assert!(
        matches!(
            events[..],
            [InitiatorEvent::Failed(ClientError::Handshake(
                HandshakeError::DoesNotOpen { .. } | HandshakeError::Signature { .. }
            ))]
        ),
        "{events:?}"
    );
    assert!(attempt.is_closed());
}
