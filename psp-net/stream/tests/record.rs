//! Stream records: what `verify_stream_record` refuses.

mod common;

use common::*;
use psp_onion::crypto::Sr25519Keypair;
use psp_stream::record::{
    dht_key, verify_stream_record, StreamId, StreamRecord, MAX_RECORD_LEN, RECORD_CLOCK_SKEW_SECS,
};
use psp_stream::wire::FormatFlags;
use psp_stream::StreamError;

fn record(world: &World, signer: &Sr25519Keypair, nodes: usize) -> StreamRecord {
    StreamRecord::sign(
        signer,
        StreamId([0x5a; 32]),
        FormatFlags::webrtc(),
        NOW,
        NOW + 600,
        world.dist(nodes),
    )
}

#[test]
fn a_signed_record_round_trips_and_verifies() {
    let world = World::new();
    let r = record(&world, &world.landing, 32.min(world.distribution.len()));
    let bytes = r.encode();
    assert_eq!(StreamRecord::decode(&bytes), Ok(r.clone()));
    let v = verify_stream_record(&bytes, NOW + 1, &world.registry).expect("verifies");
    assert_eq!(v.record(), &r);
    assert_eq!(r.dht_key(), dht_key(&r.landing, &StreamId([0x5a; 32])));
    assert_ne!(r.dht_key(), [0x5a; 32]);
}

#[test]
fn the_largest_record_is_max_record_len() {
    let world = World::new();
    let nodes: Vec<[u8; 32]> = (0..32u8).map(|i| [i; 32]).collect();
    let r = StreamRecord::sign(
        &world.landing,
        StreamId([1; 32]),
        FormatFlags::webrtc(),
        NOW,
        NOW + 1,
        nodes,
    );
    assert_eq!(r.encode().len(), MAX_RECORD_LEN);
}

#[test]
fn a_tampered_record_is_refused() {
    let world = World::new();
    let bytes = record(&world, &world.landing, 2).encode();
    // Every byte of the signed part, flipped, is refused (decode or signature).
    for i in 0..bytes.len() {
        let mut t = bytes.clone();
        t[i] ^= 0x01;
        assert!(
            verify_stream_record(&t, NOW + 1, &world.registry).is_err(),
            "byte {i}"
        );
    }
    let mut t = bytes.clone();
    t[1] ^= 1; // the stream id
    assert_eq!(
        verify_stream_record(&t, NOW + 1, &world.registry),
        Err(StreamError::RecordSignature)
    );
}

#[test]
fn a_record_signed_by_another_key_than_its_landing_node_is_refused() {
    let world = World::new();
    let mut r = record(&world, &world.distribution[0], 2);
    r.landing = world.landing.public();
    assert_eq!(
        verify_stream_record(&r.encode(), NOW + 1, &world.registry),
        Err(StreamError::RecordSignature)
    );
    // A well-signed record by an identity that is not a node.
    let r = record(&world, &world.alice.key, 2);
    assert!(matches!(
        verify_stream_record(&r.encode(), NOW + 1, &world.registry),
        Err(StreamError::LandingNotLive { .. })
    ));
}

#[test]
fn an_expired_or_future_record_is_refused() {
    let world = World::new();
    let bytes = record(&world, &world.landing, 2).encode();
    assert!(matches!(
        verify_stream_record(&bytes, NOW + 600, &world.registry),
        Err(StreamError::RecordOutsideValidity { .. })
    ));
    assert!(verify_stream_record(&bytes, NOW - RECORD_CLOCK_SKEW_SECS, &world.registry).is_ok());
    assert!(matches!(
        verify_stream_record(&bytes, NOW - RECORD_CLOCK_SKEW_SECS - 1, &world.registry),
        Err(StreamError::RecordOutsideValidity { .. })
    ));
}

#[test]
fn a_record_of_a_revoked_landing_node_is_refused() {
    let mut world = World::new();
    let bytes = record(&world, &world.landing, 2).encode();
    world.registry.revoke(world.landing.public());
    assert!(matches!(
        verify_stream_record(&bytes, NOW + 1, &world.registry),
        Err(StreamError::LandingNotLive { .. })
    ));
}

#[test]
fn records_without_webrtc_with_unknown_bits_duplicates_or_trailing_bytes_do_not_decode() {
    let world = World::new();
    let bytes = record(&world, &world.landing, 2).encode();
    for flags in [0u8, FormatFlags::RTMP, 0x08, 0x81] {
        let mut t = bytes.clone();
        t[33] = flags;
        assert!(StreamRecord::decode(&t).is_err(), "flags {flags:#x}");
    }
    let mut t = bytes.clone();
    t.push(0);
    assert!(StreamRecord::decode(&t).is_err());
    let dup = StreamRecord::sign(
        &world.landing,
        StreamId([1; 32]),
        FormatFlags::webrtc(),
        NOW,
        NOW + 1,
        vec![[3; 32], [3; 32]],
    );
    assert!(StreamRecord::decode(&dup.encode()).is_err());
    let backwards = StreamRecord::sign(
        &world.landing,
        StreamId([1; 32]),
        FormatFlags::webrtc(),
        NOW,
        NOW,
        vec![[3; 32]],
    );
    assert!(StreamRecord::decode(&backwards.encode()).is_err());
}
