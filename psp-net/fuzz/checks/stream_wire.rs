//! The `oracle` and `landing` services of `psp-stream`, as peers reach them: any bytes into
//! `psp_stream::fuzz_decode_all` (oracle and landing messages, stream records, receipts, the
//! stream deframer and every body it cuts), and stream records into `verify_stream_record`.
//!
//! Shared by the `stream_wire` fuzz target and `tests/fuzz_regressions.rs` (`#[path]` module).
//!
//! Checked:
//! * no decoder panics;
//! * what decodes re-encodes to exactly the input (every decoder is canonical): an oracle or
//!   landing message body (also each body the deframer cuts), a stream record, a receipt;
//! * a decoded stream record, its landing node marked live, is refused for its signature only
//!   (or, carrying a real one, verified); re-signed by a real landing key it verifies at its
//!   creation time, and is refused once expired, with its landing node unknown, or with a
//!   flipped byte.

use std::sync::OnceLock;

use psp_net::crypto::Sr25519Keypair;
use psp_net::registry::{IdentityKind, StaticRegistry};
use psp_stream::record::{verify_stream_record, StreamRecord};
use psp_stream::wire::{Deframer, LandingMsg, OracleMsg};
use psp_stream::StreamError;

fn landing_key() -> &'static Sr25519Keypair {
    static KEY: OnceLock<Sr25519Keypair> = OnceLock::new();
    KEY.get_or_init(|| Sr25519Keypair::from_seed(&[0x51; 32]))
}

/// One message body (without its length prefix): canonical if it decodes. Returns whether a
/// stream record it carries, re-signed, verified.
fn body(data: &[u8]) -> bool {
    if let Ok(msg) = OracleMsg::decode(data) {
        assert_eq!(&msg.encode()[2..], data, "oracle decoder is canonical");
    }
    let Ok(msg) = LandingMsg::decode(data) else {
        return false;
    };
    assert_eq!(&msg.encode()[2..], data, "landing decoder is canonical");
    match &msg {
        LandingMsg::StreamCreated { record, .. } => stream_record(record.as_slice()),
        _ => false,
    }
}

/// A stream record: canonical, and refused only for its signature when everything else
/// passes. Returns whether a record re-signed from it verified.
fn stream_record(data: &[u8]) -> bool {
    let Ok(record) = StreamRecord::decode(data) else {
        return false;
    };
    assert_eq!(record.encode(), data, "stream record decoder is canonical");
    let mut registry = StaticRegistry::default();
    registry.insert(record.landing, IdentityKind::Node);
    // `decode` checked created_at < expires_at, so created_at is inside the window.
    match verify_stream_record(data, record.created_at, &registry) {
        Ok(v) => assert_eq!(v.record(), &record),
        Err(e) => assert!(matches!(e, StreamError::RecordSignature), "{e:?}"),
    }

    // Re-signed by a real landing key: the positive path on fuzzed fields.
    let key = landing_key();
    let signed = StreamRecord::sign(
        key,
        record.stream_id,
        record.format,
        record.created_at,
        record.expires_at,
        record.access_points.clone(),
    );
    let bytes = signed.encode();
    let mut registry = StaticRegistry::default();
    registry.insert(key.public(), IdentityKind::Node);
    let verified = verify_stream_record(&bytes, signed.created_at, &registry)
        .unwrap_or_else(|e| panic!("a re-signed record is refused: {e:?}"));
    assert_eq!(verified.record(), &signed);
    assert!(matches!(
        verify_stream_record(&bytes, signed.expires_at, &registry),
        Err(StreamError::RecordOutsideValidity { .. })
    ));
    assert!(matches!(
        verify_stream_record(&bytes, signed.created_at, &StaticRegistry::default()),
        Err(StreamError::LandingNotLive { .. })
    ));
    for pos in [1, bytes.len() - 65, bytes.len() - 1] {
        let mut bad = bytes.clone();
        bad[pos] ^= 0x10;
        assert!(
            verify_stream_record(&bad, signed.created_at, &registry).is_err(),
            "a flipped byte at {pos} still verifies"
        );
    }
    true
}

/// Runs every check on `data`; returns whether a stream record re-signed from it (or from a
/// body the deframer cut from it) verified.
pub fn check(data: &[u8]) -> bool {
    psp_stream::fuzz_decode_all(data);
    let mut reached = body(data) | stream_record(data);
    if let Ok(receipt) = psp_net::receipts::Receipt::decode(data) {
        assert_eq!(receipt.encode(), data, "receipt decoder is canonical");
    }
    let mut deframer = Deframer::default();
    if let Ok(bodies) = deframer.feed(data) {
        for b in &bodies {
            reached |= body(b);
        }
    }
    reached
}
