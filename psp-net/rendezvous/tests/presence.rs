//! The presence service: registration accepted and refused, keep-alives, lapse, and the
//! receiver controls on introductions (accept, decline, cancel, cap, rate, pending bound,
//! timeout).

mod common;

use common::*;
use psp_cert::Certificate;
use psp_dht::{RecordLimits, SignedRecord};
use psp_onion::crypto::Sr25519Keypair;
use psp_rendezvous::presence::{Action, LapseReason, Presence, PresenceConfig, PresenceError};
use psp_rendezvous::record::{verify_presence_record, PresenceValue};
use psp_rendezvous::wire::{
    ChannelLimits, IntroRefusal, OwnerSignedRecord, PresenceMsg, Register, RegisterRefusal,
    Registered, SealedIntroduction,
};
use psp_rendezvous::{IntroId, StreamHandle};

const BOB: StreamHandle = StreamHandle(1);

fn registered(world: &mut World, limits: ChannelLimits) -> (Presence, Client) {
    let bob = world.client(2);
    let mut p = world.presence();
    p.handle_data(NOW, BOB, &world.register(&bob, limits), &world.chain())
        .unwrap();
    drain_presence(&mut p);
    (p, bob)
}

fn introduce(
    p: &mut Presence,
    world: &World,
    stream: u64,
    target: [u8; 32],
    now: u64,
) -> Result<(), PresenceError> {
    let msg = PresenceMsg::Introduce {
        target,
        sealed: SealedIntroduction::new("sealed", vec![stream as u8; 300]).unwrap(),
    };
    p.handle_data(now, StreamHandle(stream), &msg.encode(), &world.chain())
}

fn intro_ids(actions: &[Action]) -> Vec<IntroId> {
    presence_sent(actions, BOB)
        .into_iter()
        .filter_map(|m| match m {
            PresenceMsg::Introduction { id, .. } => Some(id),
            _ => None,
        })
        .collect()
}

#[test]
fn a_registration_is_checked_published_and_the_record_validates_for_lookers() {
    let mut world = World::new();
    let bob = world.client(2);
    let mut p = world.presence();
    p.handle_data(
        NOW,
        BOB,
        &world.register(&bob, ChannelLimits::default()),
        &world.chain(),
    )
    .unwrap();
    let actions = drain_presence(&mut p);
    assert_eq!(
        presence_sent(&actions, BOB),
        vec![PresenceMsg::Registered(Registered {
            expires_at: NOW + RECORD_LIFETIME,
            limits: ChannelLimits::default(),
        })]
    );
    let Some(Action::Publish {
        content,
        owner_signature,
    }) = actions
        .iter()
        .find(|a| matches!(a, Action::Publish { .. }))
        .cloned()
    else {
        panic!("no publish in {actions:?}");
    };
    // The driver co-signs; a looker checks the whole record and gets Bob's announcement key.
    let record = SignedRecord::cosign(content, owner_signature, &world.presence_node);
    let wire = SignedRecord::decode(&record.encode()).unwrap();
    let verified =
        verify_presence_record(wire, NOW + 1, &world.chain(), &RecordLimits::default()).unwrap();
    assert_eq!(verified.owner, bob.id());
    assert_eq!(verified.presence_node, world.presence_node.public());
    assert_eq!(verified.announcement_key, bob.announcement.public());
    assert!(!verified.public);
    assert_eq!(p.registrations(), 1);
    assert_eq!(p.poll_timeout(), Some(NOW + RECORD_LIFETIME));
}

/// Registers a record built by `tamper` and expects the refusal `reason`.
fn refused(
    world: &World,
    bob: &Client,
    tamper: impl FnOnce(&mut psp_dht::RecordContent) -> Option<Sr25519Keypair>,
    reason: RegisterRefusal,
) -> PresenceError {
    let mut content = world.presence_content(bob, 1, NOW);
    let signer = tamper(&mut content).unwrap_or_else(|| bob.key.clone());
    let record = OwnerSignedRecord::sign(content, &signer).unwrap();
    let msg = PresenceMsg::Register(Register {
        record,
        limits: ChannelLimits::default(),
    });
    let mut p = world.presence();
    let err = p
        .handle_data(NOW, BOB, &msg.encode(), &world.chain())
        .unwrap_err();
    let actions = drain_presence(&mut p);
    assert_eq!(
        presence_sent(&actions, BOB),
        vec![PresenceMsg::Refused(reason)],
        "{err}"
    );
    assert!(presence_closed(&actions, BOB));
    assert!(!actions.iter().any(|a| matches!(a, Action::Publish { .. })));
    assert_eq!((p.registrations(), p.streams(), p.timers()), (0, 0, 0));
    err
}

fn with_certificate(content: &mut psp_dht::RecordContent, certificate: Vec<u8>) {
    content.value = PresenceValue {
        public: false,
        certificate,
    }
    .encode();
}

#[test]
fn forged_expired_revoked_and_mismatched_registrations_are_refused() {
    let mut world = World::new();
    let bob = world.client(2);
    let carol = world.client(3);

    // Forged: the certificate's body altered after signing.
    let mut forged = Certificate::decode(&bob.certificate).unwrap();
    forged.body.not_after += 10_000;
    let err = refused(
        &world,
        &bob,
        |c| {
            with_certificate(c, forged.encode());
            None
        },
        RegisterRefusal::Certificate,
    );
    assert!(err.to_string().contains("signature"), "{err}");

    // Self-issued: signed by a key that is not an elected authority.
    let mut rogue = Certificate::decode(&bob.certificate).unwrap();
    rogue.body.authority = [9; 32];
    refused(
        &world,
        &bob,
        |c| {
            with_certificate(c, rogue.encode());
            None
        },
        RegisterRefusal::Certificate,
    );

    // Garbage in place of a certificate.
    refused(
        &world,
        &bob,
        |c| {
            with_certificate(c, vec![1; 40]);
            None
        },
        RegisterRefusal::Certificate,
    );

    // The owner signature made with another key.
    refused(
        &world,
        &bob,
        |_| Some(carol.key.clone()),
        RegisterRefusal::OwnerSignature,
    );

    // Owner ≠ the certificate's identity: Carol's record carrying Bob's certificate.
    let bob_cert = bob.certificate.clone();
    refused(
        &world,
        &carol,
        |c| {
            with_certificate(c, bob_cert);
            None
        },
        RegisterRefusal::OwnerMismatch,
    );

    // Another node as publisher; times out of bounds.
    refused(
        &world,
        &bob,
        |c| {
            c.publisher = [5; 32];
            None
        },
        RegisterRefusal::WrongPublisher,
    );
    refused(
        &world,
        &bob,
        |c| {
            c.expires_at = NOW + 301;
            None
        },
        RegisterRefusal::BadValidity,
    );
    refused(
        &world,
        &bob,
        |c| {
            c.issued_at = NOW + 31;
            c.expires_at = NOW + 100;
            None
        },
        RegisterRefusal::BadValidity,
    );
    refused(
        &world,
        &bob,
        |c| {
            c.value = vec![2, 0];
            None
        },
        RegisterRefusal::BadValue,
    );

    // Revoked on chain.
    let mut revoked = World::new();
    let dave = revoked.client(4);
    revoked.registry.revoke(dave.id());
    refused(&revoked, &dave, |_| None, RegisterRefusal::IdentityNotLive);
}

#[test]
fn an_expired_certificate_and_a_record_outliving_it_are_refused() {
    let mut world = World::new();
    let bob = world.client(2);
    let mut p = world.presence();
    // An hour later the certificate has expired.
    let later = NOW + CERT_LIFETIME;
    let mut content = world.presence_content(&bob, 1, later);
    content.expires_at = later + 60;
    let msg = PresenceMsg::Register(Register {
        record: OwnerSignedRecord::sign(content, &bob.key).unwrap(),
        limits: ChannelLimits::default(),
    });
    let err = p
        .handle_data(later, BOB, &msg.encode(), &world.chain())
        .unwrap_err();
    assert!(err.to_string().contains("certificate valid from"), "{err}");
    assert_eq!(
        presence_sent(&drain_presence(&mut p), BOB),
        vec![PresenceMsg::Refused(RegisterRefusal::Certificate)]
    );
    // A minute before the certificate ends, a two-minute record would outlive it.
    let late = NOW + CERT_LIFETIME - 60;
    let content = world.presence_content(&bob, 1, late);
    let msg = PresenceMsg::Register(Register {
        record: OwnerSignedRecord::sign(content, &bob.key).unwrap(),
        limits: ChannelLimits::default(),
    });
    assert!(matches!(
        p.handle_data(late, BOB, &msg.encode(), &world.chain()),
        Err(PresenceError::OutlivesCertificate { .. })
    ));
}

#[test]
fn keep_alives_renew_and_silence_lapses() {
    let mut world = World::new();
    let (mut p, bob) = registered(&mut world, ChannelLimits::default());
    let renew_at = NOW + 100;
    let record =
        OwnerSignedRecord::sign(world.presence_content(&bob, 2, renew_at), &bob.key).unwrap();
    p.handle_data(
        renew_at,
        BOB,
        &PresenceMsg::KeepAlive(record).encode(),
        &world.chain(),
    )
    .unwrap();
    let actions = drain_presence(&mut p);
    assert!(matches!(
        presence_sent(&actions, BOB)[..],
        [PresenceMsg::Registered(Registered { expires_at, .. })] if expires_at == renew_at + RECORD_LIFETIME
    ));
    assert!(actions
        .iter()
        .any(|a| matches!(a, Action::Publish { content, .. } if content.seq == 2)));
    // The old expiry passes: still registered.
    p.handle_timeout(NOW + RECORD_LIFETIME);
    assert!(drain_presence(&mut p).is_empty());
    assert_eq!(p.registrations(), 1);
    // No keep-alive after that: it lapses, the record is unpublished, the stream closed.
    let deadline = p.poll_timeout().unwrap();
    assert_eq!(deadline, renew_at + RECORD_LIFETIME);
    p.handle_timeout(deadline);
    let actions = drain_presence(&mut p);
    assert!(actions.iter().any(|a| matches!(
        a,
        Action::Unpublish {
            reason: LapseReason::Expired,
            ..
        }
    )));
    assert!(presence_closed(&actions, BOB));
    assert_eq!((p.registrations(), p.streams(), p.timers()), (0, 0, 0));
}

#[test]
fn a_stale_keep_alive_ends_the_registration() {
    let mut world = World::new();
    let (mut p, bob) = registered(&mut world, ChannelLimits::default());
    let record = OwnerSignedRecord::sign(world.presence_content(&bob, 1, NOW), &bob.key).unwrap();
    let err = p
        .handle_data(
            NOW + 1,
            BOB,
            &PresenceMsg::KeepAlive(record).encode(),
            &world.chain(),
        )
        .unwrap_err();
    assert_eq!(
        err,
        PresenceError::NotARenewal("sequence number not higher")
    );
    let actions = drain_presence(&mut p);
    assert_eq!(
        presence_sent(&actions, BOB),
        vec![PresenceMsg::Refused(RegisterRefusal::NotARenewal)]
    );
    assert!(presence_closed(&actions, BOB));
    assert_eq!(p.registrations(), 0);
}

#[test]
fn a_closed_stream_or_a_revocation_unpublishes_at_once() {
    let mut world = World::new();
    let (mut p, _bob) = registered(&mut world, ChannelLimits::default());
    p.handle_stream_closed(BOB);
    let actions = drain_presence(&mut p);
    assert!(matches!(
        actions[..],
        [Action::Unpublish {
            reason: LapseReason::StreamClosed,
            ..
        }]
    ));
    assert_eq!((p.registrations(), p.streams(), p.timers()), (0, 0, 0));

    let mut world = World::new();
    let (mut p, bob) = registered(&mut world, ChannelLimits::default());
    world.registry.revoke(bob.id());
    p.recheck_identities(&world.chain());
    let actions = drain_presence(&mut p);
    assert!(actions.iter().any(|a| matches!(
        a,
        Action::Unpublish {
            reason: LapseReason::IdentityNotLive,
            ..
        }
    )));
    assert!(presence_closed(&actions, BOB));
    // Registering again is refused.
    let err = p
        .handle_data(
            NOW,
            StreamHandle(9),
            &world.register(&bob, ChannelLimits::default()),
            &world.chain(),
        )
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "certificate: certificate refused: identity is revoked"
    );
}

#[test]
fn one_presence_point_per_identity_and_node() {
    let mut world = World::new();
    let (mut p, bob) = registered(&mut world, ChannelLimits::default());
    let err = p
        .handle_data(
            NOW,
            StreamHandle(5),
            &world.register(&bob, ChannelLimits::default()),
            &world.chain(),
        )
        .unwrap_err();
    assert_eq!(err, PresenceError::AlreadyRegistered);
    // A second Register on the registered stream is a protocol error.
    let err = p
        .handle_data(
            NOW,
            BOB,
            &world.register(&bob, ChannelLimits::default()),
            &world.chain(),
        )
        .unwrap_err();
    assert!(matches!(err, PresenceError::UnexpectedMessage { .. }));
    assert_eq!(p.registrations(), 0);
}

#[test]
fn accept_answers_the_introducer_and_decline_closes_its_stream() {
    let mut world = World::new();
    let (mut p, bob) = registered(&mut world, ChannelLimits::default());
    introduce(&mut p, &world, 10, bob.id(), NOW).unwrap();
    introduce(&mut p, &world, 11, bob.id(), NOW).unwrap();
    let actions = drain_presence(&mut p);
    let ids = intro_ids(&actions);
    assert_eq!(ids.len(), 2);
    // The sealed bytes arrive unchanged.
    assert!(matches!(
        &presence_sent(&actions, BOB)[0],
        PresenceMsg::Introduction { sealed, .. } if sealed.as_slice() == [10u8; 300]
    ));
    assert_eq!(p.pending_introductions(), 2);

    p.handle_data(
        NOW + 1,
        BOB,
        &PresenceMsg::Accept(ids[0]).encode(),
        &world.chain(),
    )
    .unwrap();
    p.handle_data(
        NOW + 1,
        BOB,
        &PresenceMsg::Decline(ids[1]).encode(),
        &world.chain(),
    )
    .unwrap();
    let actions = drain_presence(&mut p);
    assert_eq!(
        presence_sent(&actions, StreamHandle(10)),
        vec![PresenceMsg::IntroAccepted]
    );
    assert!(!presence_closed(&actions, StreamHandle(10)));
    assert_eq!(
        presence_sent(&actions, StreamHandle(11)),
        vec![PresenceMsg::IntroDeclined]
    );
    assert!(presence_closed(&actions, StreamHandle(11)));
    assert_eq!(p.pending_introductions(), 0);
    // Answering again: the id is no longer pending.
    let err = p
        .handle_data(
            NOW + 1,
            BOB,
            &PresenceMsg::Accept(ids[1]).encode(),
            &world.chain(),
        )
        .unwrap_err();
    assert_eq!(err, PresenceError::UnknownIntroduction(ids[1]));
    assert_eq!(
        presence_sent(&drain_presence(&mut p), BOB),
        vec![PresenceMsg::Withdrawn(ids[1])]
    );
}

#[test]
fn cancel_tears_down_the_introducers_circuit_at_once() {
    let mut world = World::new();
    let (mut p, bob) = registered(&mut world, ChannelLimits::default());
    introduce(&mut p, &world, 10, bob.id(), NOW).unwrap();
    introduce(&mut p, &world, 11, bob.id(), NOW).unwrap();
    let ids = intro_ids(&drain_presence(&mut p));
    // By the client.
    p.handle_data(
        NOW,
        BOB,
        &PresenceMsg::Cancel(ids[0]).encode(),
        &world.chain(),
    )
    .unwrap();
    let actions = drain_presence(&mut p);
    assert!(presence_sent(&actions, StreamHandle(10)).is_empty());
    assert!(presence_torn_down(&actions, StreamHandle(10)));
    assert!(!presence_closed(&actions, StreamHandle(10)));
    // By the operator.
    assert!(p.cancel_introduction(ids[1]));
    assert!(!p.cancel_introduction(ids[1]));
    let actions = drain_presence(&mut p);
    assert!(presence_torn_down(&actions, StreamHandle(11)));
    assert_eq!(
        presence_sent(&actions, BOB),
        vec![PresenceMsg::Withdrawn(ids[1])]
    );
    assert_eq!(
        (p.pending_introductions(), p.streams(), p.timers()),
        (0, 1, 1)
    );
}

#[test]
fn the_channel_cap_refuses_introducers_and_tells_the_client_once() {
    let mut world = World::new();
    let limits = ChannelLimits {
        rate_per_minute: 60,
        burst: 10,
        cap: 2,
    };
    let (mut p, bob) = registered(&mut world, limits);
    introduce(&mut p, &world, 10, bob.id(), NOW).unwrap();
    introduce(&mut p, &world, 11, bob.id(), NOW).unwrap();
    drain_presence(&mut p);
    // Two pending fill the cap.
    let err = introduce(&mut p, &world, 12, bob.id(), NOW).unwrap_err();
    assert_eq!(err, PresenceError::CapReached { cap: 2 });
    let actions = drain_presence(&mut p);
    assert_eq!(
        presence_sent(&actions, StreamHandle(12)),
        vec![PresenceMsg::IntroRefused(IntroRefusal::CapReached)]
    );
    assert_eq!(presence_sent(&actions, BOB), vec![PresenceMsg::CapReached]);
    // Told once only.
    introduce(&mut p, &world, 13, bob.id(), NOW).unwrap_err();
    assert!(presence_sent(&drain_presence(&mut p), BOB).is_empty());
}

#[test]
fn accepting_up_to_the_cap_notifies_the_client() {
    let mut world = World::new();
    let limits = ChannelLimits {
        rate_per_minute: 60,
        burst: 10,
        cap: 1,
    };
    let (mut p, bob) = registered(&mut world, limits);
    introduce(&mut p, &world, 10, bob.id(), NOW).unwrap();
    let ids = intro_ids(&drain_presence(&mut p));
    p.handle_data(
        NOW,
        BOB,
        &PresenceMsg::Accept(ids[0]).encode(),
        &world.chain(),
    )
    .unwrap();
    assert_eq!(
        presence_sent(&drain_presence(&mut p), BOB),
        vec![PresenceMsg::CapReached]
    );
    // Accepted channels count for good; declined ones would not.
    assert_eq!(
        introduce(&mut p, &world, 11, bob.id(), NOW + 60),
        Err(PresenceError::CapReached { cap: 1 })
    );
}

#[test]
fn the_rate_limit_refuses_a_burst_and_refills_with_time() {
    let mut world = World::new();
    let limits = ChannelLimits {
        rate_per_minute: 2,
        burst: 2,
        cap: 64,
    };
    let (mut p, bob) = registered(&mut world, limits);
    introduce(&mut p, &world, 10, bob.id(), NOW).unwrap();
    introduce(&mut p, &world, 11, bob.id(), NOW).unwrap();
    assert_eq!(
        introduce(&mut p, &world, 12, bob.id(), NOW + 29),
        Err(PresenceError::RateLimited)
    );
    let actions = drain_presence(&mut p);
    assert_eq!(
        presence_sent(&actions, StreamHandle(12)),
        vec![PresenceMsg::IntroRefused(IntroRefusal::RateLimited)]
    );
    // The refused introducer may try again on the same stream once a token is back.
    introduce(&mut p, &world, 12, bob.id(), NOW + 30).unwrap();
    assert_eq!(p.pending_introductions(), 3);
}

#[test]
fn the_pending_bound_refuses_and_frees_on_timeout() {
    let mut world = World::new();
    let bob = world.client(2);
    let config = PresenceConfig {
        max_pending_introductions: 2,
        introduction_timeout_secs: 30,
        ..PresenceConfig::default()
    };
    let mut p = Presence::new(world.presence_node.public(), config);
    p.handle_data(
        NOW,
        BOB,
        &world.register(&bob, ChannelLimits::default()),
        &world.chain(),
    )
    .unwrap();
    introduce(&mut p, &world, 10, bob.id(), NOW).unwrap();
    introduce(&mut p, &world, 11, bob.id(), NOW).unwrap();
    assert_eq!(
        introduce(&mut p, &world, 12, bob.id(), NOW),
        Err(PresenceError::PendingFull { max: 2 })
    );
    let ids = intro_ids(&drain_presence(&mut p));
    // Nobody answers: both time out, introducers are told, the client sees them withdrawn.
    assert_eq!(p.poll_timeout(), Some(NOW + 30));
    p.handle_timeout(NOW + 30);
    let actions = drain_presence(&mut p);
    for s in [10, 11] {
        assert_eq!(
            presence_sent(&actions, StreamHandle(s)),
            vec![PresenceMsg::IntroRefused(IntroRefusal::TimedOut)]
        );
    }
    assert_eq!(
        presence_sent(&actions, BOB),
        ids.iter()
            .map(|&id| PresenceMsg::Withdrawn(id))
            .collect::<Vec<_>>()
    );
    assert_eq!(p.pending_introductions(), 0);
    introduce(&mut p, &world, 12, bob.id(), NOW + 30).unwrap();
}

#[test]
fn introductions_to_strangers_and_from_vanished_introducers() {
    let mut world = World::new();
    let (mut p, bob) = registered(&mut world, ChannelLimits::default());
    assert_eq!(
        introduce(&mut p, &world, 10, [7; 32], NOW),
        Err(PresenceError::TargetNotRegistered)
    );
    assert_eq!(
        presence_sent(&drain_presence(&mut p), StreamHandle(10)),
        vec![PresenceMsg::IntroRefused(IntroRefusal::NotRegistered)]
    );
    introduce(&mut p, &world, 11, bob.id(), NOW).unwrap();
    let ids = intro_ids(&drain_presence(&mut p));
    // The introducer's circuit dies: its request is withdrawn from the client.
    p.handle_stream_closed(StreamHandle(11));
    assert_eq!(
        presence_sent(&drain_presence(&mut p), BOB),
        vec![PresenceMsg::Withdrawn(ids[0])]
    );
    // The client's registration ends while one is pending: the introducer is told.
    introduce(&mut p, &world, 12, bob.id(), NOW).unwrap();
    drain_presence(&mut p);
    p.handle_stream_closed(BOB);
    let actions = drain_presence(&mut p);
    assert_eq!(
        presence_sent(&actions, StreamHandle(12)),
        vec![PresenceMsg::IntroRefused(IntroRefusal::TargetGone)]
    );
    p.handle_stream_closed(StreamHandle(10));
    p.handle_stream_closed(StreamHandle(12));
    assert_eq!(
        (
            p.registrations(),
            p.pending_introductions(),
            p.streams(),
            p.timers()
        ),
        (0, 0, 0, 0)
    );
}

#[test]
fn a_pending_introducer_may_not_send_another_and_clients_may_not_introduce() {
    let mut world = World::new();
    let (mut p, bob) = registered(&mut world, ChannelLimits::default());
    introduce(&mut p, &world, 10, bob.id(), NOW).unwrap();
    assert!(matches!(
        introduce(&mut p, &world, 10, bob.id(), NOW),
        Err(PresenceError::UnexpectedMessage { .. })
    ));
    assert!(matches!(
        introduce(&mut p, &world, BOB.0, bob.id(), NOW),
        Err(PresenceError::UnexpectedMessage { .. })
    ));
    // Both streams closed, the registration and the pending introduction gone.
    assert_eq!(
        (p.registrations(), p.pending_introductions(), p.streams()),
        (0, 0, 0)
    );
}

#[test]
fn stream_and_registration_tables_are_bounded() {
    let mut world = World::new();
    let bob = world.client(2);
    let carol = world.client(3);
    let config = PresenceConfig {
        max_registrations: 1,
        max_streams: 2,
        ..PresenceConfig::default()
    };
    let mut p = Presence::new(world.presence_node.public(), config);
    p.handle_data(
        NOW,
        BOB,
        &world.register(&bob, ChannelLimits::default()),
        &world.chain(),
    )
    .unwrap();
    let err = p
        .handle_data(
            NOW,
            StreamHandle(2),
            &world.register(&carol, ChannelLimits::default()),
            &world.chain(),
        )
        .unwrap_err();
    assert_eq!(err, PresenceError::RegistrationsFull { max: 1 });
    p.handle_data(NOW, StreamHandle(3), &[0], &world.chain())
        .unwrap();
    assert_eq!(
        p.handle_data(NOW, StreamHandle(4), &[0], &world.chain()),
        Err(PresenceError::TooManyStreams { max: 2 })
    );
}
