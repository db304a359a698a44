//! The client machines against the real node services in memory: the channel cap, keep-alives
//! and lapse, every deadline of the initiator and the responder, a tampered finish, dropped
//! introductions, and the commands' errors.

mod common;

use std::sync::Arc;

use common::net::*;
use common::*;
use psp_cert::CertRequest;
use psp_rendezvous::channel::{ChannelError, DEFAULT_MAX_MESSAGE_LEN};
use psp_rendezvous::client::{
    Announcer, AnnouncerConfig, AnnouncerEvent, ClientError, Identity, Initiator, InitiatorConfig,
    InitiatorEvent, InitiatorStreams, ResponderEvent, SessionEvent,
};
use psp_rendezvous::handshake::HandshakeError;
use psp_rendezvous::intro::IntroError;
use psp_rendezvous::record::VerifiedPresence;
use psp_rendezvous::replay::ReplayCache;
use psp_rendezvous::wire::{
    ChannelLimits, HandshakeBytes, IntroRefusal, PresenceMsg, RegisterRefusal, RendezvousMsg,
    SealedIntroduction,
};
use psp_rendezvous::{IntroId, StreamHandle};

const BOB: StreamHandle = StreamHandle(1);
const BOB_RV: StreamHandle = StreamHandle(2);

fn streams(base: u64) -> InitiatorStreams {
    InitiatorStreams {
        rendezvous: StreamHandle(base),
        presence: StreamHandle(base + 1),
    }
}

/// Bob registered at presence node 0 with `config`; his record as a looker checks it.
struct Setup {
    net: Net,
    rng: TestRng,
    bob: Arc<Identity>,
    replay: ReplayCache,
    point: Announcer,
    target: VerifiedPresence,
}

fn setup(config: AnnouncerConfig) -> Setup {
    let mut net = Net::new();
    let bob = net.identity(2);
    let mut replay = ReplayCache::default();
    let point = net.announce(&bob, &mut replay, 0, BOB, config);
    let target = net.lookup(&bob.id()).pop().unwrap();
    Setup {
        net,
        rng: TestRng::new(5),
        bob,
        replay,
        point,
        target,
    }
}

#[test]
fn at_the_cap_bob_is_told_and_the_next_introducer_refused() {
    let limits = ChannelLimits {
        cap: 1,
        ..ChannelLimits::default()
    };
    let mut s = setup(AnnouncerConfig {
        limits,
        ..AnnouncerConfig::default()
    });
    let alice = s.net.identity(1);
    let carol = s.net.identity(3);
    let config = InitiatorConfig::default();
    let mut alice_attempt = s
        .net
        .introduce(&alice, &s.target, streams(10), &mut s.rng, config);
    let (id, _) = s.net.receive_introduction(&mut s.point, &mut s.replay);
    let _responder = s
        .net
        .accept_and_join(&s.bob, &mut s.point, id, BOB_RV, &mut s.rng);
    let events = s.net.pump_announcer(&mut s.point, &mut s.replay);
    assert!(
        matches!(events[..], [AnnouncerEvent::CapReached]),
        "{events:?}"
    );
    let (_session, _) = initiator_session(s.net.pump_initiator(&mut alice_attempt));

    // Carol's attempt: the node refuses her introduction, her attempt ends cleanly.
    let mut carol_attempt = s
        .net
        .introduce(&carol, &s.target, streams(20), &mut s.rng, config);
    let events = s.net.pump_initiator(&mut carol_attempt);
    assert!(
        matches!(
            events[..],
            [InitiatorEvent::Refused(IntroRefusal::CapReached)]
        ),
        "{events:?}"
    );
    assert!(carol_attempt.is_closed());
    // Bob was told once, not again.
    assert!(s.net.pump_announcer(&mut s.point, &mut s.replay).is_empty());
}

#[test]
fn keep_alives_renew_before_expiry_and_silence_lapses_the_record() {
    let mut s = setup(AnnouncerConfig::default());
    let first_expiry = s.point.expires_at().unwrap();
    assert_eq!(first_expiry, NOW + 240);
    let mut last_expiry = first_expiry;
    for round in 1..=3u64 {
        let at = s.point.poll_timeout().unwrap();
        assert_eq!(
            at,
            NOW + 120 * round,
            "keep-alive at half the record's life"
        );
        s.net.advance(at);
        let out = s.point.handle_timeout(at);
        assert_eq!(out.transmits.len(), 1);
        s.net.apply(out);
        let events = s.net.pump_announcer(&mut s.point, &mut s.replay);
        let [AnnouncerEvent::Renewed { expires_at }] = events[..] else {
            panic!("{events:?}");
        };
        assert_eq!(expires_at, at + 240);
        last_expiry = expires_at;
    }
    // Past the first record's expiry Bob is still present, with the newest record.
    assert!(s.net.now > first_expiry);
    s.net.advance(s.net.now + 1);
    let found = s.net.lookup(&s.bob.id());
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].expires_at, last_expiry);
    assert!(found[0].seq > s.target.seq);
    assert_eq!(s.net.presence[0].service.registrations(), 1);

    // Bob stops keeping alive: the node lapses the record at its expiry.
    s.net.advance(last_expiry);
    assert!(s.net.lookup(&s.bob.id()).is_empty());
    assert_eq!(s.net.presence[0].service.registrations(), 0);
    let events = s.net.pump_announcer(&mut s.point, &mut s.replay);
    assert!(matches!(
        events[..],
        [AnnouncerEvent::Failed(ClientError::StreamClosed {
            service: "presence",
            ..
        })]
    ));
    assert!(s.point.is_closed() && s.point.poll_timeout().is_none());
}

#[test]
fn an_unconfirmed_keep_alive_ends_the_announcer_at_the_expiry() {
    let mut s = setup(AnnouncerConfig::default());
    let expiry = s.point.expires_at().unwrap();
    s.net.black_holes.insert(BOB);
    let at = s.point.poll_timeout().unwrap();
    s.net.apply(s.point.handle_timeout(at));
    assert_eq!(s.point.poll_timeout(), Some(expiry));
    assert!(s.net.apply(s.point.handle_timeout(expiry - 1)).is_empty());
    let out = s.point.handle_timeout(expiry);
    assert_eq!(out.close, vec![BOB]);
    assert!(matches!(
        s.net.apply(out)[..],
        [AnnouncerEvent::Failed(ClientError::RecordLapsed { expires_at })] if expires_at == expiry
    ));
}

#[test]
fn records_stop_at_the_certificate_and_a_renewed_certificate_extends_them() {
    let mut s = setup(AnnouncerConfig::default());
    let cert_end = NOW + CERT_LIFETIME;
    // Keep alive until the certificate's end caps the record.
    while s.point.expires_at() != Some(cert_end) {
        let at = s.point.poll_timeout().unwrap();
        s.net.advance(at);
        let out = s.point.handle_timeout(at);
        s.net.apply(out);
        let events = s.net.pump_announcer(&mut s.point, &mut s.replay);
        assert!(
            matches!(events[..], [AnnouncerEvent::Renewed { .. }]),
            "{events:?}"
        );
    }
    // A renewed certificate, issued a little later: the next record outlives the old one.
    let now = s.net.now + 10;
    s.net.advance(now);
    let request = CertRequest::new(
        s.bob.key(),
        s.bob.announcement().public(),
        s.net.world.authority.public(),
        now,
    );
    let renewed = s
        .net
        .world
        .authority
        .issue(&request.encode(), now, &s.net.world.registry)
        .unwrap()
        .encode();
    s.point.renew_certificate(now, renewed);
    let out = s.point.handle_timeout(now);
    s.net.apply(out);
    let events = s.net.pump_announcer(&mut s.point, &mut s.replay);
    assert!(
        matches!(events[..], [AnnouncerEvent::Renewed { expires_at }] if expires_at == now + 240),
        "{events:?}"
    );

    // Without a renewal the announcer stops at the certificate's end, saying why.
    let mut s = setup(AnnouncerConfig::default());
    let mut failed = None;
    for _ in 0..100 {
        let Some(at) = s.point.poll_timeout() else {
            break;
        };
        s.net.advance(at);
        let mut events = s.net.apply(s.point.handle_timeout(at));
        events.extend(s.net.pump_announcer(&mut s.point, &mut s.replay));
        if let Some(AnnouncerEvent::Failed(e)) = events.pop() {
            failed = Some((at, e));
            break;
        }
    }
    assert_eq!(
        failed,
        Some((
            cert_end,
            ClientError::CertificateEnding {
                not_after: cert_end,
                now: cert_end
            }
        ))
    );
}

#[test]
fn registration_refused_or_unanswered_ends_the_announcer() {
    let mut net = Net::new();
    let bob = net.identity(2);
    let mut replay = ReplayCache::default();
    // A record naming node 1 as publisher, sent to node 0.
    net.open(BOB, Service::Presence(0));
    let mut point = Announcer::new(
        bob.clone(),
        net.presence_id(1),
        BOB,
        AnnouncerConfig::default(),
    );
    net.write(point.start(net.now).unwrap());
    assert_eq!(point.start(net.now), Err(ClientError::AlreadyStarted));
    let events = net.pump_announcer(&mut point, &mut replay);
    assert!(matches!(
        events[..],
        [AnnouncerEvent::Refused(RegisterRefusal::WrongPublisher)]
    ));
    assert!(point.is_closed());
    assert_eq!(
        point.start(net.now),
        Err(ClientError::Ended {
            machine: "announcer"
        })
    );

    // A node that never answers.
    net.open(StreamHandle(5), Service::Presence(0));
    net.black_holes.insert(StreamHandle(5));
    let mut point = Announcer::new(
        bob,
        net.presence_id(0),
        StreamHandle(5),
        AnnouncerConfig::default(),
    );
    net.write(point.start(NOW).unwrap());
    assert_eq!(point.poll_timeout(), Some(NOW + 30));
    let events = net.apply(point.handle_timeout(NOW + 30));
    assert!(matches!(
        events[..],
        [AnnouncerEvent::Failed(ClientError::TimedOut { deadline, .. })] if deadline == NOW + 30
    ));
}

#[test]
fn every_step_of_the_initiator_has_a_deadline() {
    let mut s = setup(AnnouncerConfig::default());
    let alice = s.net.identity(1);
    let config = InitiatorConfig::default();
    let rendezvous_node = s.net.rendezvous_id();

    // 1. The rendezvous node never answers `Establish`.
    let (mut attempt, _lost_establish) = Initiator::new(
        alice.clone(),
        &s.target,
        rendezvous_node,
        streams(10),
        NOW,
        &mut s.rng,
        config,
    )
    .unwrap();
    let deadline = NOW + config.establish_timeout_secs;
    assert_eq!(attempt.poll_timeout(), Some(deadline));
    assert!(attempt.handle_timeout(deadline - 1).is_empty());
    let out = attempt.handle_timeout(deadline);
    assert_eq!(out.close, vec![StreamHandle(10), StreamHandle(11)]);
    assert!(matches!(
        out.events[..],
        [InitiatorEvent::Failed(ClientError::TimedOut {
            step: "establishing the rendezvous point",
            ..
        })]
    ));
    assert!(attempt.is_closed() && attempt.poll_timeout().is_none());

    // 2. The presence node never answers the introduction.
    s.net.black_holes.insert(StreamHandle(21));
    let mut attempt = s
        .net
        .introduce(&alice, &s.target, streams(20), &mut s.rng, config);
    let deadline = s.net.now + config.answer_timeout_secs;
    assert_eq!(attempt.poll_timeout(), Some(deadline));
    let events = s.net.apply(attempt.handle_timeout(deadline));
    assert!(matches!(
        events[..],
        [InitiatorEvent::Failed(ClientError::TimedOut {
            step: "awaiting the answer to the introduction",
            ..
        })]
    ));

    // 3. Bob accepts but never joins; his late join is not read.
    let mut attempt = s
        .net
        .introduce(&alice, &s.target, streams(30), &mut s.rng, config);
    let (id, _) = s.net.receive_introduction(&mut s.point, &mut s.replay);
    let (accept, _) = s.point.accept(id).unwrap();
    s.net.write(accept);
    let events = s.net.pump_initiator(&mut attempt);
    assert!(matches!(events[..], [InitiatorEvent::Accepted]));
    let deadline = s.net.now + config.join_timeout_secs;
    assert_eq!(attempt.poll_timeout(), Some(deadline));
    s.net.now = deadline;
    let joined = RendezvousMsg::Joined {
        reply: HandshakeBytes::new("reply", vec![1; 113]).unwrap(),
    };
    let out = attempt.handle_data(deadline, streams(30).rendezvous, &joined.encode());
    assert!(matches!(
        out.events[..],
        [InitiatorEvent::Failed(ClientError::TimedOut {
            step: "awaiting the join",
            ..
        })]
    ));
    assert!(out.transmits.is_empty());
}

#[test]
fn a_tampered_finish_fails_at_bob_and_closes_both_sides() {
    let mut s = setup(AnnouncerConfig::default());
    let alice = s.net.identity(1);
    let mut attempt = s.net.introduce(
        &alice,
        &s.target,
        streams(10),
        &mut s.rng,
        InitiatorConfig::default(),
    );
    let (id, _) = s.net.receive_introduction(&mut s.point, &mut s.replay);
    let mut responder = s
        .net
        .accept_and_join(&s.bob, &mut s.point, id, BOB_RV, &mut s.rng);

    // Alice's driver feeds her the answer and the join; the finish is altered on the way.
    let presence_bytes = s.net.take(streams(10).presence);
    s.net
        .apply(attempt.handle_data(s.net.now, streams(10).presence, &presence_bytes));
    let joined = s.net.take(streams(10).rendezvous);
    let mut out = attempt.handle_data(s.net.now, streams(10).rendezvous, &joined);
    let finish = out.transmits.first_mut().unwrap();
    assert_eq!(finish.stream, streams(10).rendezvous);
    *finish.bytes.last_mut().unwrap() ^= 0x01;
    let (mut alice_session, _) = initiator_session(s.net.apply(out));

    let events = s.net.pump_responder(&mut responder);
    assert!(
        matches!(
            events[..],
            [
                ResponderEvent::Linked,
                ResponderEvent::Failed(ClientError::Handshake(HandshakeError::DoesNotOpen {
                    message: "finish"
                }))
            ]
        ),
        "{events:?}"
    );
    // Bob closed his stream; the rendezvous node closed Alice's.
    let events = s.net.pump_session(&mut alice_session);
    assert!(matches!(
        events[..],
        [SessionEvent::Closed(ClientError::StreamClosed { .. })]
    ));
    assert_eq!(s.net.rendezvous.links(), 0);
}

#[test]
fn bad_replayed_and_surplus_introductions_are_dropped_and_cancelled() {
    let mut s = setup(AnnouncerConfig {
        max_pending: 1,
        ..AnnouncerConfig::default()
    });
    let alice = s.net.identity(1);
    let carol = s.net.identity(3);
    let config = InitiatorConfig::default();
    let mut alice_attempt = s
        .net
        .introduce(&alice, &s.target, streams(10), &mut s.rng, config);
    let introduce = s.net.seen_by_presence[&streams(10).presence].clone();
    let PresenceMsg::Introduce { sealed, .. } = PresenceMsg::decode(&introduce[2..]).unwrap()
    else {
        panic!("not an Introduce");
    };
    let (id, _) = s.net.receive_introduction(&mut s.point, &mut s.replay);
    let garbage = || SealedIntroduction::new("sealed", vec![7; 40]).unwrap();

    // A second introduction under a pending id is dropped without cancelling the first.
    let again = PresenceMsg::Introduction {
        id,
        sealed: garbage(),
    };
    let chain = s.net.world.chain();
    let out = s
        .point
        .handle_data(s.net.now, &again.encode(), &chain, &mut s.replay);
    assert!(out.transmits.is_empty());
    assert!(matches!(
        out.events[..],
        [AnnouncerEvent::IntroductionDropped {
            reason: ClientError::DuplicateIntroduction(_),
            ..
        }]
    ));

    // Carol's introduction finds the pending table full: cancelled, her stream closed.
    let mut carol_attempt = s
        .net
        .introduce(&carol, &s.target, streams(20), &mut s.rng, config);
    let events = s.net.pump_announcer(&mut s.point, &mut s.replay);
    assert!(
        matches!(
            events[..],
            [AnnouncerEvent::IntroductionDropped {
                reason: ClientError::TooManyPending { max: 1 },
                ..
            }]
        ),
        "{events:?}"
    );
    let events = s.net.pump_initiator(&mut carol_attempt);
    assert!(
        matches!(
            events[..],
            [InitiatorEvent::Failed(ClientError::StreamClosed {
                service: "presence",
                ..
            })]
        ),
        "{events:?}"
    );
    // The node confirms the cancel to Bob; Alice's introduction is still pending.
    let events = s.net.pump_announcer(&mut s.point, &mut s.replay);
    assert!(matches!(events[..], [AnnouncerEvent::Withdrawn(_)]));
    assert_eq!(
        s.point.pending().map(|(id, _)| id).collect::<Vec<_>>(),
        vec![id]
    );
    s.net.write(s.point.decline(id).unwrap());
    let events = s.net.pump_initiator(&mut alice_attempt);
    assert!(matches!(events[..], [InitiatorEvent::Declined]));

    // A hostile node replays Alice's introduction under another id, and sends garbage.
    let chain = s.net.world.chain();
    for (fake, sealed, expected) in [
        (IntroId(900), sealed, IntroError::Replayed),
        (IntroId(901), garbage(), IntroError::BadLength { len: 40 }),
    ] {
        let msg = PresenceMsg::Introduction { id: fake, sealed };
        let out = s
            .point
            .handle_data(s.net.now, &msg.encode(), &chain, &mut s.replay);
        assert_eq!(out.transmits.len(), 1);
        assert_eq!(out.transmits[0].bytes, PresenceMsg::Cancel(fake).encode());
        assert!(matches!(
            &out.events[..],
            [AnnouncerEvent::IntroductionDropped { id, reason: ClientError::Introduction(e) }]
                if *id == fake && *e == expected
        ));
    }
    assert!(s.point.pending().next().is_none());
}

#[test]
fn commands_refuse_what_they_cannot_do_without_changing_state() {
    let mut s = setup(AnnouncerConfig::default());
    let alice = s.net.identity(1);
    let mut attempt = s.net.introduce(
        &alice,
        &s.target,
        streams(10),
        &mut s.rng,
        InitiatorConfig::default(),
    );
    let (id, _) = s.net.receive_introduction(&mut s.point, &mut s.replay);
    assert_eq!(
        s.point.decline(IntroId(77)),
        Err(ClientError::UnknownIntroduction(IntroId(77)))
    );
    let mut responder = s
        .net
        .accept_and_join(&s.bob, &mut s.point, id, BOB_RV, &mut s.rng);
    assert_eq!(
        s.point.decline(id),
        Err(ClientError::UnknownIntroduction(id))
    );
    let (mut alice_session, _) = initiator_session(s.net.pump_initiator(&mut attempt));
    let (mut bob_session, _) = responder_session(s.net.pump_responder(&mut responder));

    // Too long a message is refused and the session goes on.
    let max = DEFAULT_MAX_MESSAGE_LEN;
    assert!(matches!(
        alice_session.send(&vec![0; max + 1]),
        Err(ClientError::Channel(ChannelError::MessageTooLong { .. }))
    ));
    assert!(!alice_session.is_closed());
    s.net.send(&mut alice_session, b"still here");
    assert_eq!(
        messages(s.net.pump_session(&mut bob_session)),
        vec![b"still here".to_vec()]
    );

    // A message split across arbitrary reads arrives whole.
    for frame in bob_session.send(&vec![5; 2_000]).unwrap() {
        s.net.write(frame);
    }
    let bytes = s.net.take(alice_session.stream());
    let mut got = Vec::new();
    for chunk in bytes.chunks(7) {
        got.extend(messages(s.net.apply(alice_session.handle_data(chunk))));
    }
    assert_eq!(got, vec![vec![5; 2_000]]);

    // After a close nothing more is sent.
    let closing = alice_session.close();
    assert_eq!(closing.close, vec![alice_session.stream()]);
    s.net.apply(closing);
    assert_eq!(
        alice_session.send(b"x"),
        Err(ClientError::Ended { machine: "session" })
    );
    // Closing Bob's presence stream ends his point and its commands.
    s.net.client_closed(BOB);
    let events = s.net.apply(s.point.handle_stream_closed());
    assert!(matches!(
        events[..],
        [AnnouncerEvent::Failed(ClientError::StreamClosed { .. })]
    ));
    assert_eq!(
        s.point.accept(id),
        Err(ClientError::Ended {
            machine: "announcer"
        })
    );
}

#[test]
fn an_expired_record_is_not_introduced_to() {
    let mut s = setup(AnnouncerConfig::default());
    let alice = s.net.identity(1);
    let err = Initiator::new(
        alice,
        &s.target,
        s.net.rendezvous_id(),
        streams(10),
        s.target.expires_at,
        &mut s.rng,
        InitiatorConfig::default(),
    )
    .unwrap_err();
    assert_eq!(
        err,
        ClientError::PresenceExpired {
            expires_at: s.target.expires_at,
            now: s.target.expires_at
        }
    );
}
