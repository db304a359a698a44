//! Discovery directory benchmarks: building and signing a directory of 1,000 nodes, and a
//! client's check of a 5-signature directory.
//!
//! `cargo bench -p psp-net --bench directory -- --warm-up-time 1 --measurement-time 3`

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion};
use psp_net::crypto::{NodeId, Sr25519Keypair};
use psp_net::directory::{
    consensus, flags, DirectorySignature, SignedDirectory, SignedStatus, SignedVote, StatusReport,
    Vote,
};
use psp_net::registry::{IdentityKind, StaticRegistry};

const NODES: usize = 1_000;
const VOTERS: usize = 5;
const PERIOD: u64 = 480_000;
const NOW: u64 = PERIOD * 3_600;
const GENESIS: [u8; 32] = [0x6e; 32];

fn keypair(tag: u8, i: usize) -> Sr25519Keypair {
    let mut seed = [tag; 32];
    seed[..8].copy_from_slice(&(i as u64).to_be_bytes());
    Sr25519Keypair::from_seed(&seed)
}

struct Setup {
    registry: StaticRegistry,
    statuses: Vec<Vec<u8>>,
    voters: Vec<Sr25519Keypair>,
    set: Vec<NodeId>,
    /// The other four discovery nodes' votes.
    others: Vec<Vote>,
}

fn setup() -> Setup {
    let mut registry = StaticRegistry::default();
    let statuses = (0..NODES)
        .map(|i| {
            let k = keypair(1, i);
            registry.insert(k.public(), IdentityKind::Node);
            let report = StatusReport {
                node: NodeId(k.public()),
                period: PERIOD,
                flags: flags::RELAY | flags::ENTRY,
                addresses: vec![
                    format!("/ip4/10.{}.{}.1/tcp/4001", i / 256, i % 256),
                    format!("/ip6/fd00::{i:x}/udp/4001/quic-v1"),
                ],
                issued_at: NOW - 60,
            };
            SignedStatus::sign(report, &k).unwrap().encode()
        })
        .collect::<Vec<_>>();
    let voters: Vec<Sr25519Keypair> = (0..VOTERS).map(|i| keypair(2, i)).collect();
    let set: Vec<NodeId> = voters.iter().map(|k| NodeId(k.public())).collect();
    let reports: Vec<StatusReport> = statuses
        .iter()
        .map(|b| SignedStatus::decode(b).unwrap().unverified().clone())
        .collect();
    let others = set[1..]
        .iter()
        .map(|v| Vote::from_reports(PERIOD, *v, &reports))
        .collect();
    Setup {
        registry,
        statuses,
        voters,
        set,
        others,
    }
}

/// What one discovery node does for a period, minus the network.
fn build_and_sign(s: &Setup) -> (Vec<u8>, DirectorySignature) {
    let reports: Vec<StatusReport> = s
        .statuses
        .iter()
        .map(|b| {
            SignedStatus::decode(b)
                .unwrap()
                .verify(NOW, PERIOD, &s.registry)
                .unwrap()
        })
        .collect();
    let vote = Vote::from_reports(PERIOD, s.set[0], &reports);
    let signed_vote = SignedVote::sign(vote.clone(), &s.voters[0]).unwrap();
    black_box(signed_vote.encode());
    let mut votes = s.others.clone();
    votes.push(vote);
    let directory = consensus(PERIOD, NOW, NOW + 7_200, &votes);
    let bytes = directory.encode();
    black_box(psp_net::crypto::blake2_256(&bytes));
    let sig = DirectorySignature::sign(&directory, &s.voters[0], &GENESIS);
    (bytes, sig)
}

fn directory(c: &mut Criterion) {
    let s = setup();
    let (bytes, _) = build_and_sign(&s);
    let mut signed = SignedDirectory::new(psp_net::directory::Directory::decode(&bytes).unwrap());
    for k in &s.voters {
        signed.sign(k, &GENESIS);
    }
    let signed_bytes = signed.encode();
    println!(
        "directory of {NODES} nodes: {} bytes, {} bytes with {VOTERS} signatures",
        bytes.len(),
        signed_bytes.len()
    );

    let mut g = c.benchmark_group("directory");
    g.sample_size(10);
    g.bench_function("build_and_sign_1000_nodes", |b| {
        b.iter(|| black_box(build_and_sign(&s)))
    });
    g.bench_function("verify_1000_status_reports", |b| {
        b.iter(|| {
            for st in &s.statuses {
                black_box(
                    SignedStatus::decode(st)
                        .unwrap()
                        .verify(NOW, PERIOD, &s.registry)
                        .unwrap(),
                );
            }
        })
    });
    let mut votes = s.others.clone();
    votes.push(s.others[0].clone());
    votes[4].voter = s.set[0];
    g.bench_function("consensus_5_votes_1000_nodes", |b| {
        b.iter(|| black_box(consensus(PERIOD, NOW, NOW + 7_200, &votes)))
    });
    g.bench_function("encode_and_hash_1000_nodes", |b| {
        b.iter(|| black_box(signed.directory.hash()))
    });
    g.sample_size(20);
    g.bench_function("decode_and_verify_5_signatures_1000_nodes", |b| {
        b.iter(|| {
            let sd = SignedDirectory::decode(&signed_bytes).unwrap();
            black_box(sd.verify(&GENESIS, &s.set, 3, NOW).unwrap())
        })
    });
    g.finish();
}

criterion_group!(benches, directory);
criterion_main!(benches);
