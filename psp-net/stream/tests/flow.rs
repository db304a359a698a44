//! The whole creation in memory: oracle → client finalize → landing → record verifies, and
//! what the landing node received names nothing of the producer.

mod common;

use common::*;
use psp_receipts::IssuerConfig;
use psp_stream::client::CreatorEvent;
use psp_stream::record::{dht_key, stream_id_for, verify_stream_record};
use psp_stream::wire::{FormatFlags, OracleMsg};
use psp_stream::Action;

#[test]
fn a_subscribed_identity_gets_a_receipt_and_creates_a_stream_whose_record_verifies() {
    let world = World::new();
    let mut oracle = world.oracle(&world.oracle_a, IssuerConfig::default());
    let (result, event) = request_receipt(
        &world,
        &mut oracle,
        world.oracle_a.node.public(),
        &world.alice,
        &world.oracle_a.hd,
        hd(),
        NOW,
    );
    result.expect("issued");
    let receipt = issued(event);
    assert_eq!(receipt.params, hd());
    assert_eq!(oracle.streams(), 0);

    let mut landing = world.landing_node();
    let c = create_stream(
        &world,
        &mut landing,
        &receipt,
        world.dist(2),
        FormatFlags::webrtc(),
        NOW + 10,
    );
    c.result.expect("created");
    let CreatorEvent::Created {
        stream_id,
        record,
        record_bytes,
    } = c.event
    else {
        panic!("not created: {:?}", c.event)
    };
    assert_eq!(stream_id, stream_id_for(&receipt.spend_id));
    assert_eq!(record.access_points(), &world.dist(2)[..]);
    assert_eq!(record.record().landing, world.landing.public());
    assert_eq!(record.record().created_at, NOW + 10);
    assert_eq!(record.record().expires_at, NOW + 10 + 3_600);
    // The landing node publishes exactly those bytes under the stream's DHT key.
    let published: Vec<_> = c
        .actions
        .iter()
        .filter_map(|a| match a {
            Action::Publish { key, record } => Some((*key, record.clone())),
            _ => None,
        })
        .collect();
    assert_eq!(
        published,
        vec![(
            dht_key(&world.landing.public(), &stream_id),
            record_bytes.clone()
        )]
    );
    // The media path learns the producer's publish token (derived from the spend id) and
    // what the receipt allows, and nothing else.
    let created: Vec<_> = c
        .actions
        .iter()
        .filter_map(|a| match a {
            Action::Created {
                stream_id: id,
                publish_token: token,
                params,
                record,
            } => Some((*id, *token, *params, record.clone())),
            _ => None,
        })
        .collect();
    assert_eq!(
        created,
        vec![(
            stream_id,
            psp_stream::record::publish_token(&receipt.spend_id),
            receipt.params,
            record_bytes.clone()
        )]
    );
    assert_ne!(
        psp_stream::record::publish_token(&receipt.spend_id),
        stream_id.0
    );
    // Anyone fetching it checks it.
    let fetched =
        verify_stream_record(&record_bytes, NOW + 100, &world.registry).expect("verifies");
    assert_eq!(fetched, record);
    assert_eq!(landing.streams(), 0);
    assert_eq!(landing.verifier().spent_len(), 1);
}

#[test]
fn nothing_the_landing_node_receives_names_the_producer() {
    let world = World::new();
    let mut oracle = world.oracle(&world.oracle_a, IssuerConfig::default());
    let stream = psp_rendezvous::StreamHandle(1);
    let (mut machine, request) = alice_hd_client(&world, stream);
    oracle
        .handle_data(NOW, stream, &request.bytes, &world.ctx())
        .expect("issued");
    let answer = sent(&drain(|| oracle.poll_action()), stream);
    let mut out = machine.handle_data(NOW, &answer);
    let receipt = issued(out.events.remove(0));

    let mut landing = world.landing_node();
    let c = create_stream(
        &world,
        &mut landing,
        &receipt,
        world.dist(3),
        FormatFlags::webrtc(),
        // Not the certificate's issue time: the record's creation time would share those 8
        // bytes with the certificate's `not_before` by coincidence, not by leak.
        NOW + 17,
    );
    c.result.expect("created");
    // The identity key, the certificate, and what the oracle saw of the issuance (blinded
    // message, Alice's signature, blind signature) leave no run of 8 bytes in what the
    // landing node received, nor in the record it publishes. Random strings share runs of
    // 2–3 bytes by chance. (The tier's key id is in both, by design: it is public and shared
    // by every receipt of that key.)
    let identity = world.alice.id();
    let OracleMsg::ReceiptRequest {
        blinded, signature, ..
    } = OracleMsg::decode(&request.bytes[2..]).expect("request decodes")
    else {
        panic!("not a request")
    };
    let publish: Vec<u8> = c
        .actions
        .iter()
        .filter_map(|a| match a {
            Action::Publish { record, .. } => Some(record.clone()),
            _ => None,
        })
        .flatten()
        .collect();
    for (what, seen) in [
        ("identity", &identity[..]),
        ("certificate", &world.alice.certificate[..]),
        ("blinded message", blinded.as_slice()),
        ("request signature", &signature[..]),
        ("blind signature", &answer[..]),
    ] {
        assert!(
            longest_common_run(seen, &c.received) < 8,
            "{what} in the request"
        );
        assert!(
            longest_common_run(seen, &publish) < 8,
            "{what} in the record"
        );
    }
}
