//! The oracle's refusals: certificates, subscriptions, tiers, the shared bound, streams.

mod common;

use common::*;
use psp_cert::CertificateAuthority;
use psp_onion::crypto::Sr25519Keypair;
use psp_receipts::IssuerConfig;
use psp_rendezvous::StreamHandle;
use psp_stream::client::ReceiptEvent;
use psp_stream::wire::{BoundedBytes, OracleMsg, OracleRefusal};
use psp_stream::{Action, StreamError};

fn refused(event: ReceiptEvent) -> OracleRefusal {
    match event {
        ReceiptEvent::Failed(StreamError::OracleRefused(r)) => r,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

fn ask(world: &World, client: &Client, now: u64) -> (Result<(), StreamError>, OracleRefusal) {
    let mut oracle = world.oracle(&world.oracle_a, IssuerConfig::default());
    let (result, event) = request_receipt(
        world,
        &mut oracle,
        world.oracle_a.node.public(),
        client,
        &world.oracle_a.hd,
        hd(),
        now,
    );
    (result, refused(event))
}

#[test]
fn a_forged_certificate_is_refused() {
    let world = World::new();
    let mut certificate = world.alice.certificate.clone();
    let last = certificate.len() - 1;
    certificate[last] ^= 1;
    let forged = Client {
        key: world.alice.key.clone(),
        certificate,
    };
    let (result, reason) = ask(&world, &forged, NOW);
    assert!(matches!(result, Err(StreamError::Certificate(_))));
    assert_eq!(reason, OracleRefusal::BadCertificate);
}

#[test]
fn an_expired_certificate_is_refused() {
    let world = World::new();
    let (result, reason) = ask(&world, &world.alice, NOW + CERT_LIFETIME + 1);
    assert!(
        matches!(result, Err(StreamError::Certificate(_))),
        "{result:?}"
    );
    assert_eq!(reason, OracleRefusal::BadCertificate);
}

#[test]
fn a_revoked_identity_is_refused() {
    let mut world = World::new();
    world.registry.revoke(world.alice.id());
    let (result, reason) = ask(&world, &world.alice, NOW);
    assert!(matches!(result, Err(StreamError::Certificate(_))));
    assert_eq!(reason, OracleRefusal::IdentityNotLive);
}

#[test]
fn a_certificate_from_a_foreign_authority_or_chain_is_refused() {
    let world = World::new();
    // An authority that is not elected.
    let mut rogue = CertificateAuthority::new(
        Sr25519Keypair::from_seed(&[0xee; 32]),
        GENESIS,
        CERT_LIFETIME,
        1,
    );
    let foreign = Client {
        certificate: certificate(&mut rogue, &world.alice.key, &world.registry),
        key: world.alice.key.clone(),
    };
    let (result, reason) = ask(&world, &foreign, NOW);
    assert!(matches!(result, Err(StreamError::Certificate(_))));
    assert_eq!(reason, OracleRefusal::BadCertificate);
    // The elected authority's key, but for another chain.
    let mut other_chain = CertificateAuthority::new(
        Sr25519Keypair::from_seed(&[0xa0; 32]),
        [0x99; 32],
        CERT_LIFETIME,
        1,
    );
    let foreign = Client {
        certificate: certificate(&mut other_chain, &world.alice.key, &world.registry),
        key: world.alice.key.clone(),
    };
    let (result, reason) = ask(&world, &foreign, NOW);
    assert!(matches!(result, Err(StreamError::Certificate(_))));
    assert_eq!(reason, OracleRefusal::BadCertificate);
}

#[test]
fn someone_elses_certificate_is_refused() {
    let world = World::new();
    let mallory = Client {
        key: Sr25519Keypair::from_seed(&[0x66; 32]),
        certificate: world.alice.certificate.clone(),
    };
    let (result, reason) = ask(&world, &mallory, NOW);
    assert_eq!(result, Err(StreamError::PossessionSignature));
    assert_eq!(reason, OracleRefusal::BadCertificate);
}

#[test]
fn an_identity_without_a_subscription_gets_no_receipt() {
    let mut world = World::new();
    let bob = world.client(0x22);
    let (result, reason) = ask(&world, &bob, NOW);
    assert!(matches!(result, Err(StreamError::NotSubscribed { .. })));
    assert_eq!(reason, OracleRefusal::NotSubscribed);
}

#[test]
fn a_tier_beyond_the_allowance_or_unknown_is_refused() {
    let mut world = World::new();
    world.subscriptions.0.insert(world.alice.id(), sd());
    let (result, reason) = ask(&world, &world.alice, NOW);
    assert!(matches!(result, Err(StreamError::Receipt(_))));
    assert_eq!(reason, OracleRefusal::BeyondAllowance);
    // Oracle B's key at oracle A.
    let mut oracle = world.oracle(&world.oracle_a, IssuerConfig::default());
    let (result, event) = request_receipt(
        &world,
        &mut oracle,
        world.oracle_a.node.public(),
        &world.alice,
        &world.oracle_b.sd,
        sd(),
        NOW,
    );
    assert!(matches!(result, Err(StreamError::UnknownTier { .. })));
    assert_eq!(refused(event), OracleRefusal::UnknownTier);
}

#[test]
fn a_request_signed_for_another_oracle_is_refused() {
    let world = World::new();
    let mut oracle = world.oracle(&world.oracle_a, IssuerConfig::default());
    let (result, event) = request_receipt(
        &world,
        &mut oracle,
        world.oracle_b.node.public(),
        &world.alice,
        &world.oracle_a.hd,
        hd(),
        NOW,
    );
    assert_eq!(result, Err(StreamError::PossessionSignature));
    assert_eq!(refused(event), OracleRefusal::BadCertificate);
}

#[test]
fn the_bound_counts_receipts_drawn_at_other_oracles_once_merged() {
    let world = World::new();
    let config = IssuerConfig {
        receipts_per_subscription: 2,
        ..IssuerConfig::default()
    };
    let mut a = world.oracle(&world.oracle_a, config.clone());
    let mut b = world.oracle(&world.oracle_b, config);
    let b_id = world.oracle_b.node.public();
    for _ in 0..2 {
        let (result, event) = request_receipt(
            &world,
            &mut b,
            b_id,
            &world.alice,
            &world.oracle_b.hd,
            hd(),
            NOW,
        );
        result.expect("issued at B");
        issued(event);
    }
    for counts in b.issuer().counts(EPOCH) {
        a.issuer_mut().merge(EPOCH, &counts);
    }
    let a_id = world.oracle_a.node.public();
    let (result, event) = request_receipt(
        &world,
        &mut a,
        a_id,
        &world.alice,
        &world.oracle_a.hd,
        hd(),
        NOW,
    );
    assert!(matches!(result, Err(StreamError::Receipt(_))), "{result:?}");
    assert_eq!(refused(event), OracleRefusal::Exhausted);
}

#[test]
fn one_request_per_stream_and_answers_are_not_requests() {
    let world = World::new();
    let mut oracle = world.oracle(&world.oracle_a, IssuerConfig::default());
    let stream = StreamHandle(3);
    let answer = OracleMsg::ReceiptIssued {
        blind_signature: BoundedBytes::new("s", vec![1; 256]).expect("bounded"),
    }
    .encode();
    let result = oracle.handle_data(NOW, stream, &answer, &world.ctx());
    assert!(matches!(result, Err(StreamError::UnexpectedMessage { .. })));
    let actions = drain(|| oracle.poll_action());
    assert_eq!(
        OracleMsg::decode(&sent(&actions, stream)[2..]),
        Ok(OracleMsg::Refused(OracleRefusal::Malformed))
    );
    assert!(closed(&actions, stream));
    assert_eq!(oracle.streams(), 0);
}

#[test]
fn idle_streams_time_out_and_the_stream_table_is_bounded() {
    let world = World::new();
    let mut issuer_oracle = world.oracle(&world.oracle_a, IssuerConfig::default());
    // Half a frame: the stream waits, then times out.
    issuer_oracle
        .handle_data(NOW, StreamHandle(1), &[0], &world.ctx())
        .expect("partial");
    assert_eq!(issuer_oracle.poll_timeout(), Some(NOW + 30));
    issuer_oracle.handle_timeout(NOW + 30);
    assert_eq!(
        drain(|| issuer_oracle.poll_action()),
        vec![Action::Close {
            stream: StreamHandle(1)
        }]
    );
    assert_eq!(issuer_oracle.streams(), 0);
    // A full table refuses new streams with Busy.
    let mut oracle = psp_stream::oracle::Oracle::new(
        world.oracle_a.node.public(),
        psp_receipts::Issuer::new(
            psp_receipts::OracleId(world.oracle_a.node.public()),
            IssuerConfig::default(),
        ),
        psp_stream::oracle::OracleConfig {
            max_streams: 2,
            request_timeout_secs: 30,
        },
    );
    for s in 0..2 {
        oracle
            .handle_data(NOW, StreamHandle(s), &[0], &world.ctx())
            .expect("admitted");
    }
    let result = oracle.handle_data(NOW, StreamHandle(9), &[0], &world.ctx());
    assert_eq!(result, Err(StreamError::TooManyStreams { max: 2 }));
    let actions = drain(|| oracle.poll_action());
    assert_eq!(
        OracleMsg::decode(&sent(&actions, StreamHandle(9))[2..]),
        Ok(OracleMsg::Refused(OracleRefusal::Busy))
    );
    assert_eq!(oracle.streams(), 2);
}

#[test]
fn the_client_times_out_and_reports_a_closed_stream() {
    let world = World::new();
    let (mut machine, _) = alice_hd_client(&world, StreamHandle(1));
    assert_eq!(machine.poll_timeout(), Some(NOW + TIMEOUT));
    let mut out = machine.handle_timeout(NOW + TIMEOUT);
    assert!(matches!(
        out.events.remove(0),
        ReceiptEvent::Failed(StreamError::TimedOut { .. })
    ));
    assert!(machine.is_closed());
    assert!(machine.handle_stream_closed().is_empty());
}
