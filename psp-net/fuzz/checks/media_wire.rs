//! The media link of `psp-media`, as peers reach it: any bytes into
//! `psp_media::fuzz_decode_all` (media-link messages, the `Deframer`, signed load reports, the
//! SFrame header), the deframer fed in two pieces, and SFrame decryption.
//!
//! Shared by the `media_wire` fuzz target and `tests/fuzz_regressions.rs` (`#[path]` module).
//!
//! Checked:
//! * no decoder panics;
//! * what decodes re-encodes to exactly the input: a message (type and body), a signed load
//!   report, an SFrame header (the bytes it consumed);
//! * the deframer yields the same messages whether the bytes come at once or in two pieces
//!   (cut where the first byte says), fails on the same input, and the messages it yields
//!   re-encode to exactly the bytes it consumed;
//! * a fuzzed load report is refused for its signature (or, carrying a real one, verified);
//!   re-signed by a real node key it verifies to the same report, and not once a byte is
//!   flipped;
//! * fuzzed bytes never decrypt as an SFrame ciphertext.

use std::sync::OnceLock;

use psp_media::load::{LoadReport, SignedLoadReport};
use psp_media::sframe::{Context, Header, KeyUsage};
use psp_media::wire::{Deframer, MediaMsg, LENGTH_PREFIX_LEN};
use psp_net::crypto::{NodeId, Sr25519Keypair};

fn node_key() -> &'static Sr25519Keypair {
    static KEY: OnceLock<Sr25519Keypair> = OnceLock::new();
    KEY.get_or_init(|| Sr25519Keypair::from_seed(&[0x6d; 32]))
}

fn receiver() -> &'static Context {
    static CONTEXT: OnceLock<Context> = OnceLock::new();
    CONTEXT.get_or_init(|| {
        let mut c = Context::new();
        for kid in 0..4u64 {
            c.add_key(kid, &[0x5c; 16], KeyUsage::Decrypt)
                .expect("a 16-byte base key");
        }
        c
    })
}

/// A signed load report: canonical; refused for its signature only. Returns whether the
/// report re-signed by a real key verified.
fn load_report(data: &[u8]) -> bool {
    let Ok(signed) = SignedLoadReport::decode(data) else {
        return false;
    };
    assert_eq!(
        &signed.encode()[..],
        data,
        "load report decoder is canonical"
    );
    if let Ok(report) = signed.verify() {
        assert_eq!(&report, signed.unverified());
    }
    let key = node_key();
    let report = LoadReport {
        node: NodeId(key.public()),
        ..*signed.unverified()
    };
    let resigned = report.sign(key);
    assert_eq!(
        resigned.verify().ok(),
        Some(report),
        "a re-signed report verifies"
    );
    let bytes = resigned.encode();
    for pos in [0, 40, bytes.len() - 1] {
        let mut bad = bytes;
        bad[pos] ^= 0x10;
        if let Ok(r) = SignedLoadReport::decode(&bad) {
            assert!(
                r.verify().is_err(),
                "a flipped byte at {pos} still verifies"
            );
        }
    }
    true
}

/// Runs every check on `data`; returns whether a load report re-signed from it (or from a
/// message it holds) verified.
pub fn check(data: &[u8]) -> bool {
    psp_media::fuzz_decode_all(data);
    let mut reached = load_report(data);

    if let Ok(msg) = MediaMsg::decode(data) {
        let bytes = msg.encode();
        assert_eq!(
            &bytes[LENGTH_PREFIX_LEN..],
            data,
            "message decoder is canonical"
        );
        if let MediaMsg::Load(r) = &msg {
            reached |= load_report(&r.encode());
        }
    }

    if let Ok((header, len)) = Header::decode(data) {
        assert!(len <= data.len());
        assert_eq!(
            header.to_bytes(),
            &data[..len],
            "SFrame header is canonical"
        );
    }
    assert!(
        receiver().decrypt(data, b"").is_err(),
        "fuzzed bytes decrypt"
    );

    // The deframer, at once and in two pieces.
    let mut whole = Deframer::new();
    let at_once = whole.feed(data);
    let cut = data
        .first()
        .map_or(0, |&b| usize::from(b) % (data.len() + 1));
    let mut split = Deframer::new();
    let in_two = split.feed(&data[..cut]).and_then(|mut first| {
        first.extend(split.feed(&data[cut..])?);
        Ok(first)
    });
    match (&at_once, &in_two) {
        (Ok(a), Ok(b)) => {
            assert_eq!(a, b, "the deframer depends on how bytes are cut");
            assert_eq!(whole.buffered(), split.buffered());
            let consumed = data.len() - whole.buffered();
            let encoded: Vec<u8> = a.iter().flat_map(MediaMsg::encode).collect();
            assert_eq!(
                encoded,
                &data[..consumed],
                "deframed messages are canonical"
            );
            for msg in a {
                if let MediaMsg::Load(r) = msg {
                    reached |= load_report(&r.encode());
                }
            }
        }
        (Err(_), Err(_)) => {}
        _ => panic!("the deframer fails only on some cuts: {at_once:?} vs {in_two:?}"),
    }
    reached
}
