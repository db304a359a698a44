//! The landing node's refusals: receipts, distribution nodes, formats, malformed requests.

mod common;

use common::*;
use psp_rendezvous::StreamHandle;
use psp_stream::client::CreatorEvent;
use psp_stream::wire::{FormatFlags, LandingMsg, LandingRefusal};
use psp_stream::{Action, StreamError};

fn refusal(c: &Creation) -> LandingRefusal {
    assert!(c
        .actions
        .iter()
        .all(|a| !matches!(a, Action::Publish { .. })));
    match &c.event {
        CreatorEvent::Failed(StreamError::LandingRefused(r)) => *r,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[test]
fn a_forged_receipt_is_refused() {
    let world = World::new();
    let mut forged = hd_receipt(&world);
    forged.signature[10] ^= 1;
    let mut landing = world.landing_node();
    let c = create_stream(
        &world,
        &mut landing,
        &forged,
        world.dist(2),
        FormatFlags::webrtc(),
        NOW,
    );
    assert!(matches!(c.result, Err(StreamError::Receipt(_))));
    assert_eq!(refusal(&c), LandingRefusal::BadSignature);
    // Parameters raised beyond what was signed: beyond the SD tier if moved there, or a bad
    // signature under its own key.
    let mut raised = hd_receipt(&world);
    raised.params.distribution_nodes = 4;
    raised.key_id = world.oracle_a.sd.key_id();
    let c = create_stream(
        &world,
        &mut landing,
        &raised,
        world.dist(2),
        FormatFlags::webrtc(),
        NOW,
    );
    assert_eq!(refusal(&c), LandingRefusal::BeyondTier);
    assert_eq!(landing.verifier().spent_len(), 0);
}

#[test]
fn an_expired_receipt_is_refused() {
    let world = World::new();
    let r = hd_receipt(&world);
    let mut landing = world.landing_node();
    let c = create_stream(
        &world,
        &mut landing,
        &r,
        world.dist(2),
        FormatFlags::webrtc(),
        KEY_EXPIRES,
    );
    assert_eq!(refusal(&c), LandingRefusal::Expired);
}

#[test]
fn a_replayed_receipt_is_refused() {
    let world = World::new();
    let r = hd_receipt(&world);
    let mut landing = world.landing_node();
    let first = create_stream(
        &world,
        &mut landing,
        &r,
        world.dist(2),
        FormatFlags::webrtc(),
        NOW,
    );
    first.result.expect("created");
    let again = create_stream(
        &world,
        &mut landing,
        &r,
        world.dist(2),
        FormatFlags::webrtc(),
        NOW + 1,
    );
    assert_eq!(refusal(&again), LandingRefusal::AlreadySpent);
}

#[test]
fn a_receipt_for_another_landing_node_is_refused_without_being_spent() {
    let world = World::new();
    let r = hd_receipt(&world);
    let mut elsewhere =
        world.landing_node_with_key(psp_onion::crypto::Sr25519Keypair::from_seed(&[0x77; 32]));
    let refused = create_stream(
        &world,
        &mut elsewhere,
        &r,
        world.dist(2),
        FormatFlags::webrtc(),
        NOW,
    );
    assert_eq!(refusal(&refused), LandingRefusal::WrongLanding);
    assert_eq!(elsewhere.verifier().spent_len(), 0);
    // At the node it was drawn for, it still creates the stream.
    let mut landing = world.landing_node();
    let created = create_stream(
        &world,
        &mut landing,
        &r,
        world.dist(2),
        FormatFlags::webrtc(),
        NOW,
    );
    created.result.expect("created at its own landing node");
}

#[test]
fn a_receipt_under_an_unpublished_key_is_refused() {
    let world = World::new();
    let r = hd_receipt(&world);
    let mut landing = world.landing_node();
    landing
        .verifier_mut()
        .remove_key(&world.oracle_a.hd.key_id());
    let c = create_stream(
        &world,
        &mut landing,
        &r,
        world.dist(2),
        FormatFlags::webrtc(),
        NOW,
    );
    assert_eq!(refusal(&c), LandingRefusal::UnknownKey);
}

#[test]
fn more_distribution_nodes_than_allowed_are_refused_without_spending_the_receipt() {
    let world = World::new();
    let r = hd_receipt(&world);
    let mut landing = world.landing_node();
    let c = create_stream(
        &world,
        &mut landing,
        &r,
        world.dist(5),
        FormatFlags::webrtc(),
        NOW,
    );
    assert!(matches!(
        c.result,
        Err(StreamError::TooManyDistributionNodes { got: 5, allowed: 4 })
    ));
    assert_eq!(refusal(&c), LandingRefusal::TooManyDistributionNodes);
    let twice = vec![world.dist(1)[0], world.dist(1)[0]];
    let c = create_stream(&world, &mut landing, &r, twice, FormatFlags::webrtc(), NOW);
    assert!(matches!(
        c.result,
        Err(StreamError::DuplicateDistributionNode { .. })
    ));
    // Not spent: the same receipt still creates a stream.
    let ok = create_stream(
        &world,
        &mut landing,
        &r,
        world.dist(4),
        FormatFlags::webrtc(),
        NOW,
    );
    ok.result.expect("created");
}

#[test]
fn unregistered_revoked_or_client_distribution_nodes_are_refused() {
    let mut world = World::new();
    let r = hd_receipt(&world);
    let mut landing = world.landing_node();
    let mut nodes = world.dist(1);
    nodes.push([0x77; 32]);
    let c = create_stream(&world, &mut landing, &r, nodes, FormatFlags::webrtc(), NOW);
    assert_eq!(refusal(&c), LandingRefusal::DistributionNodeNotLive);
    let nodes = vec![world.dist(1)[0], world.alice.id()];
    let c = create_stream(&world, &mut landing, &r, nodes, FormatFlags::webrtc(), NOW);
    assert_eq!(refusal(&c), LandingRefusal::DistributionNodeNotLive);
    let revoked = world.dist(3)[2];
    world.registry.revoke(revoked);
    let c = create_stream(
        &world,
        &mut landing,
        &r,
        world.dist(3),
        FormatFlags::webrtc(),
        NOW,
    );
    assert_eq!(refusal(&c), LandingRefusal::DistributionNodeNotLive);
}

#[test]
fn bad_format_flags_are_refused() {
    let world = World::new();
    let r = hd_receipt(&world);
    let mut landing = world.landing_node();
    for bits in [
        0,
        FormatFlags::RTMP,
        FormatFlags::WEBRTC | FormatFlags::RTMP,
        FormatFlags::WEBRTC | FormatFlags::RTMPE,
    ] {
        let flags = FormatFlags::from_bits(bits).expect("named bits");
        let c = create_stream(&world, &mut landing, &r, world.dist(2), flags, NOW);
        assert_eq!(
            refusal(&c),
            LandingRefusal::UnsupportedFormat,
            "flags {bits:#x}"
        );
    }
    // Unknown bits do not even decode.
    let msg = LandingMsg::CreateStream {
        receipt: psp_stream::wire::BoundedBytes::new("r", r.encode()).expect("bounded"),
        distribution_nodes: world.dist(2),
        format: FormatFlags::webrtc(),
    };
    let mut bytes = msg.encode();
    let flags_at = 2 + 2 + 2 + r.encode().len();
    bytes[flags_at] = 0x81;
    let stream = StreamHandle(5);
    let result = landing.handle_data(NOW, stream, &bytes, &world.registry);
    assert!(matches!(result, Err(StreamError::Malformed { .. })));
    let actions = drain(|| landing.poll_action());
    assert_eq!(
        LandingMsg::decode(&sent(&actions, stream)[2..]),
        Ok(LandingMsg::Refused(LandingRefusal::Malformed))
    );
    assert_eq!(landing.verifier().spent_len(), 0);
}

#[test]
fn a_receipt_that_does_not_decode_is_malformed() {
    let world = World::new();
    let mut landing = world.landing_node();
    let msg = LandingMsg::CreateStream {
        receipt: psp_stream::wire::BoundedBytes::new("r", vec![1; 40]).expect("bounded"),
        distribution_nodes: world.dist(1),
        format: FormatFlags::webrtc(),
    };
    let stream = StreamHandle(2);
    let result = landing.handle_data(NOW, stream, &msg.encode(), &world.registry);
    assert!(matches!(result, Err(StreamError::Receipt(_))));
    let actions = drain(|| landing.poll_action());
    assert_eq!(
        LandingMsg::decode(&sent(&actions, stream)[2..]),
        Ok(LandingMsg::Refused(LandingRefusal::Malformed))
    );
    assert!(closed(&actions, stream));
}
