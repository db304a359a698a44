//! DHT record validation against raw signature verification, in the same run.
//!
//! A record carries two sr25519 signatures (owner, publisher co-signature), so the raw
//! baseline is those two verifications on messages built beforehand; validation is everything
//! a node does before storing: decode, size/time/key checks, the two chain look-ups (an
//! in-memory registry here, as the node's is behind a runtime-API call), both verifications.
//! Rounds alternate the two so that machine load hits both alike; the medians are compared.
//!
//! `cargo bench -p psp-net --bench records` (prints a table; the README has the figures).

use std::hint::black_box;
use std::time::Instant;

use psp_net::crypto::Sr25519Keypair;
use psp_net::dht::record::{bench_raw_verify, PreparedSignatures};
use psp_net::dht::{RecordContent, RecordKind, RecordLimits, SignedRecord};
use psp_net::registry::{IdentityKind, StaticRegistry};

const ROUNDS: usize = 31;
const PER_ROUND: u32 = 400;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn main() {
    let owner = Sr25519Keypair::from_seed(&[1; 32]);
    let publisher = Sr25519Keypair::from_seed(&[2; 32]);
    let mut registry = StaticRegistry::default();
    // A registry of realistic size: the look-ups are hash-map reads among 10,000 identities.
    for i in 0..10_000u32 {
        let mut key = [0u8; 32];
        key[..4].copy_from_slice(&i.to_be_bytes());
        registry.insert(key, IdentityKind::Client);
    }
    registry.insert(owner.public(), IdentityKind::Client);
    registry.insert(publisher.public(), IdentityKind::Node);
    let now = 1_000_000;
    let limits = RecordLimits::default();
    for value_len in [64usize, 256, 1_024] {
        let record = RecordContent {
            kind: RecordKind::Presence,
            owner: owner.public(),
            topic: [3; 32],
            publisher: publisher.public(),
            seq: 1,
            issued_at: now,
            expires_at: now + 600,
            value: vec![0xab; value_len],
        }
        .sign(&owner, &publisher);
        let bytes = record.encode();
        let key = record.content.key();
        let prepared = PreparedSignatures::new(&record);
        assert!(bench_raw_verify(&prepared));
        assert!(SignedRecord::decode_valid(&key, &bytes, now, &registry, &limits).is_ok());

        let (mut raw, mut full) = (Vec::new(), Vec::new());
        for _ in 0..ROUNDS {
            let t = Instant::now();
            for _ in 0..PER_ROUND {
                black_box(bench_raw_verify(black_box(&prepared)));
            }
            raw.push(t.elapsed().as_secs_f64() / f64::from(PER_ROUND));
            let t = Instant::now();
            for _ in 0..PER_ROUND {
                let ok = SignedRecord::decode_valid(
                    black_box(&key),
                    black_box(&bytes),
                    now,
                    &registry,
                    &limits,
                );
                black_box(ok.is_ok());
            }
            full.push(t.elapsed().as_secs_f64() / f64::from(PER_ROUND));
        }
        let (raw, full) = (median(raw), median(full));
        println!(
            "value {value_len:>5} B (record {:>5} B): raw 2× sr25519 verify {:6.1} µs ({:6.0}/s) | validation {:6.1} µs ({:6.0} records/s) | ratio {:.3}×",
            bytes.len(),
            raw * 1e6,
            1.0 / raw,
            full * 1e6,
            1.0 / full,
            full / raw
        );
    }
}
