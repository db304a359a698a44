//! Costs of the rewards loop's off-chain core: the client's puzzle solve at the default
//! difficulty (per fresh session key, so the geometric spread shows), the oracle's puzzle
//! check, the distribution node's ticket admission, the oracle's pairing of halves (two
//! halves per session: relay half with ticket, client half with consumer token), and batch
//! building.
//!
//! `cargo bench -p psp-usage --bench usage -- --quick`

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use psp_onion::crypto::{NodeId, Sr25519Keypair};
use psp_primitives::rewards::session_id_of;
use psp_receipts::{KeySize, SigningKey, SubscriptionId};
use psp_usage::puzzle::{self, Challenge, Solution, DEFAULT_DIFFICULTY};
use psp_usage::report::{ClientMeter, Half, RelayMeter};
use psp_usage::ticket::{
    Admission, GateConfig, IssuerConfig, SignedTicket, TicketGate, TicketIssuer,
};
use psp_usage::token::{TokenIssuer, TokenKey, TokenRequest};
use psp_usage::{Collector, CollectorConfig, EpochInfo};

const GENESIS: [u8; 32] = [0x9e; 32];
const BLOCK: [u8; 32] = [0xb1; 32];
const STREAM: [u8; 32] = [0x5d; 32];
const NOW: u64 = 1_800_000_000;
const EPOCH: u32 = 7;

/// A ticket from `issuer` for the session key `k`, its puzzle solved at `difficulty`.
fn solved_ticket(issuer: &mut TicketIssuer, k: &Sr25519Keypair, difficulty: u8) -> SignedTicket {
    let ch = Challenge {
        genesis: GENESIS,
        block: BLOCK,
        oracle: issuer.oracle(),
        session_key: k.public(),
    };
    let nonce = puzzle::solve(&ch, difficulty, 0, u64::MAX)
        .unwrap()
        .unwrap();
    let solution = Solution {
        block: BLOCK,
        session_key: k.public(),
        nonce,
    };
    issuer.issue(NOW, &solution).unwrap()
}

fn key(tag: u8, i: u32) -> Sr25519Keypair {
    let mut seed = [tag; 32];
    seed[28..].copy_from_slice(&i.to_be_bytes());
    Sr25519Keypair::from_seed(&seed)
}

fn challenge(i: u32) -> Challenge {
    Challenge {
        genesis: GENESIS,
        block: BLOCK,
        oracle: NodeId(key(0x0a, 0).public()),
        session_key: key(0x5e, i).public(),
    }
}

/// Solve time at the default difficulty over many fresh session keys: mean, spread and
/// percentiles, printed beside criterion's figures (criterion's mean alone hides the
/// geometric tail that a viewer actually waits through).
fn puzzle_spread() {
    let runs = 60u32;
    let mut times: Vec<f64> = (0..runs)
        .map(|i| {
            let c = challenge(1_000 + i);
            let start = Instant::now();
            let nonce = puzzle::solve(&c, DEFAULT_DIFFICULTY, 0, u64::MAX).unwrap();
            black_box(nonce);
            start.elapsed().as_secs_f64() * 1e3
        })
        .collect();
    times.sort_by(|a, b| a.total_cmp(b));
    let mean = times.iter().sum::<f64>() / f64::from(runs);
    let var = times.iter().map(|t| (t - mean).powi(2)).sum::<f64>() / f64::from(runs - 1);
    let at = |q: f64| times[((f64::from(runs) - 1.0) * q).round() as usize];
    println!(
        "puzzle/solve spread (difficulty {DEFAULT_DIFFICULTY}, {runs} session keys): mean {mean:.1} ms, \
         std dev {:.1} ms, median {:.1} ms, p90 {:.1} ms, max {:.1} ms",
        var.sqrt(),
        at(0.5),
        at(0.9),
        at(1.0)
    );
}

fn puzzles(c: &mut Criterion) {
    puzzle_spread();
    let mut group = c.benchmark_group("puzzle");
    group
        .sample_size(20)
        .measurement_time(Duration::from_secs(8));
    let mut i = 0u32;
    group.bench_function("solve_default_difficulty", |b| {
        b.iter(|| {
            i += 1;
            black_box(puzzle::solve(&challenge(i), DEFAULT_DIFFICULTY, 0, u64::MAX).unwrap())
        })
    });
    group.finish();

    // Attempt rate: a fixed number of attempts at an impossible difficulty.
    let mut group = c.benchmark_group("puzzle");
    group.throughput(Throughput::Elements(100_000));
    group.bench_function("attempts_100k", |b| {
        b.iter(|| black_box(puzzle::solve(&challenge(0), 32, 0, 100_000).unwrap()))
    });
    group.finish();

    let c0 = challenge(0);
    let nonce = puzzle::solve(&c0, DEFAULT_DIFFICULTY, 0, u64::MAX)
        .unwrap()
        .unwrap();
    let mut verifier =
        puzzle::PuzzleVerifier::new(GENESIS, c0.oracle, DEFAULT_DIFFICULTY, 64).unwrap();
    for b in 0..63u8 {
        verifier.note_finalized([b; 32]);
    }
    verifier.note_finalized(BLOCK);
    let solution = Solution {
        block: BLOCK,
        session_key: c0.session_key,
        nonce,
    };
    c.bench_function("puzzle/verify (oracle, 64 recent blocks)", |b| {
        b.iter(|| black_box(verifier.verify(black_box(&solution)).unwrap()))
    });
}

fn tickets(c: &mut Criterion) {
    let oracle = key(0x0a, 0);
    let relay = key(0x7e, 1);
    let config = IssuerConfig {
        difficulty: 8,
        ..IssuerConfig::default()
    };
    let mut issuer = TicketIssuer::new(GENESIS, oracle.clone(), config).unwrap();
    issuer.note_finalized(BLOCK);
    // Admissions for many sessions, so the replay set is exercised as it is in service.
    let admissions: Vec<Admission> = (0..2_000u32)
        .map(|i| {
            let k = key(0x5e, i);
            let ticket = solved_ticket(&mut issuer, &k, 8);
            Admission::new(ticket, &k, &NodeId(relay.public()), &STREAM, &[7; 32])
        })
        .collect();
    let elected = [NodeId(oracle.public())];
    let mut group = c.benchmark_group("ticket");
    group.throughput(Throughput::Elements(100));
    group.bench_function("admit 100 (distribution node)", |b| {
        b.iter_batched(
            || {
                let mut gate =
                    TicketGate::new(GENESIS, NodeId(relay.public()), GateConfig::default());
                gate.set_elected(&elected).unwrap();
                gate
            },
            |mut gate| {
                for a in &admissions[..100] {
                    black_box(gate.admit(NOW, &STREAM, &[7; 32], a).unwrap());
                }
                gate
            },
            BatchSize::SmallInput,
        )
    });
    group.finish();
    let mut i = 0usize;
    let mut fresh = TicketIssuer::new(
        GENESIS,
        oracle.clone(),
        IssuerConfig {
            difficulty: 8,
            max_issued: usize::MAX,
            ..IssuerConfig::default()
        },
    )
    .unwrap();
    fresh.note_finalized(BLOCK);
    let solutions: Vec<Solution> = admissions
        .iter()
        .map(|a| {
            let ch = Challenge {
                genesis: GENESIS,
                block: BLOCK,
                oracle: fresh.oracle(),
                session_key: a.session_key,
            };
            Solution {
                block: BLOCK,
                session_key: a.session_key,
                nonce: puzzle::solve(&ch, 8, 0, u64::MAX).unwrap().unwrap(),
            }
        })
        .collect();
    c.bench_function("ticket/issue (oracle, puzzle check + sign)", |b| {
        b.iter(|| {
            i += 1;
            // Each solution once per epoch of `NOW`: advance time past expiry on wrap.
            let now = NOW + 3_600 * (i / solutions.len()) as u64;
            black_box(fresh.issue(now, &solutions[i % solutions.len()]).unwrap())
        })
    });
}

/// `n` sessions' halves, relay and client, encoded.
fn halves(n: u32) -> (Vec<Vec<u8>>, EpochInfo) {
    let oracle = key(0x0a, 0);
    let relay = key(0x7e, 1);
    let signing = SigningKey::generate(KeySize::Rsa2048).unwrap();
    let token_key = TokenKey {
        public: signing.public_key().clone(),
        epoch: u64::from(EPOCH),
        oracle: NodeId(oracle.public()),
    };
    let mut tokens = TokenIssuer::new(NodeId(oracle.public()), 16, 100_000);
    tokens.install_key(u64::from(EPOCH), signing).unwrap();
    let mut issuer = TicketIssuer::new(
        GENESIS,
        oracle.clone(),
        IssuerConfig {
            difficulty: 4,
            max_issued: usize::MAX,
            ..IssuerConfig::default()
        },
    )
    .unwrap();
    issuer.note_finalized(BLOCK);
    let mut gate = TicketGate::new(GENESIS, NodeId(relay.public()), GateConfig::default());
    gate.set_elected(&[NodeId(oracle.public())]).unwrap();
    let mut meter = RelayMeter::new(GENESIS, relay.clone(), 1 << 20);
    let mut out = Vec::new();
    for i in 0..n {
        let k = key(0x5e, i);
        let ticket = solved_ticket(&mut issuer, &k, 4);
        let a = Admission::new(ticket, &k, &NodeId(relay.public()), &STREAM, &[7; 32]);
        let admitted = gate.admit(NOW, &STREAM, &[7; 32], &a).unwrap();
        meter.admit(&admitted).unwrap();
        meter
            .record(&admitted.session(), 1_000_000, NOW * 1000)
            .unwrap();
        meter
            .record(&admitted.session(), 0, NOW * 1000 + 10_000)
            .unwrap();
        let mut client = ClientMeter::new(GENESIS, k.clone(), NodeId(relay.public()));
        client.record(990_000, NOW * 1000);
        client.record(0, NOW * 1000 + 10_000);
        let (request, blinded) = TokenRequest::new(&token_key, session_id_of(&k.public())).unwrap();
        let mut sub = [0u8; 32];
        sub[..4].copy_from_slice(&i.to_be_bytes());
        let token = request
            .finalize(
                &tokens
                    .issue(u64::from(EPOCH), SubscriptionId(sub), &blinded)
                    .unwrap(),
            )
            .unwrap();
        let half = client.end_epoch(EPOCH, token).unwrap().unwrap();
        out.push(Half::Client(half).encode());
    }
    for h in meter.end_epoch(EPOCH) {
        out.push(Half::Relay(h).encode());
    }
    let info = EpochInfo {
        epoch: EPOCH,
        elected: vec![NodeId(oracle.public())],
        token_keys: vec![token_key],
    };
    (out, info)
}

fn collector(c: &mut Criterion) {
    let sessions = 256u32;
    let (bytes, info) = halves(sessions);
    let mut group = c.benchmark_group("collect");
    group.throughput(Throughput::Elements(bytes.len() as u64));
    group.sample_size(10);
    group.bench_function("pair 512 halves (decode + verify + pair)", |b| {
        b.iter_batched(
            || {
                let mut col = Collector::new(GENESIS, CollectorConfig::default());
                col.open_epoch(info.clone()).unwrap();
                col
            },
            |mut col| {
                for h in &bytes {
                    black_box(col.receive_bytes(h).unwrap());
                }
                col
            },
            BatchSize::LargeInput,
        )
    });
    group.finish();

    let mut full = Collector::new(GENESIS, CollectorConfig::default());
    full.open_epoch(info.clone()).unwrap();
    for h in &bytes {
        full.receive_bytes(h).unwrap();
    }
    let mut group = c.benchmark_group("collect");
    group.throughput(Throughput::Elements(u64::from(sessions)));
    group.bench_function("batch 256 paired records (2 batches of 128)", |b| {
        b.iter_batched(
            || full.clone(),
            |mut col| {
                while let Some(batch) = col.take_batch(EPOCH) {
                    black_box(batch);
                }
                col
            },
            BatchSize::LargeInput,
        )
    });
    group.finish();
}

criterion_group!(benches, puzzles, tickets, collector);
criterion_main!(benches);
