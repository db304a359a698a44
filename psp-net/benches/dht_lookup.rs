//! DHT lookups against network size: hops, simulated latency and success, honest and under
//! attack (20% malicious nodes, mixed behaviours; see `psp_net::dht::sim`).
//!
//! `cargo bench -p psp-net --bench dht_lookup` prints one row per (N, malicious share). Time is
//! simulated (20–80 ms per message, seeded), so the figures are the same on every machine; the
//! last column is the wall time of the row. "hops": the longest chain of referrals on the path
//! that found the winning record; "rec depth": the chain that led to the record itself.

use std::time::Instant;

use psp_net::dht::sim::{Network, SimConfig};
use psp_net::dht::RecordKey;

const SIZES: [usize; 5] = [100, 200, 500, 1_000, 2_000];
const MALICIOUS_PERCENT: [usize; 2] = [0, 20];
const RECORDS: usize = 20;
const LOOKUPS: usize = 300;

struct Row {
    hops: Vec<usize>,
    record_depth: Vec<usize>,
    latency_ms: Vec<u64>,
    queried: usize,
    current: usize,
}

fn main() {
    println!(
        "{:>5} {:>6} {:>5} {:>9} {:>8} {:>9} {:>8} {:>8} {:>8} {:>8} {:>7}",
        "N",
        "log2 N",
        "bad",
        "mean hops",
        "p95 hops",
        "rec depth",
        "mean ms",
        "p95 ms",
        "queried",
        "success",
        "wall s"
    );
    for n in SIZES {
        for bad in MALICIOUS_PERCENT {
            let started = Instant::now();
            let row = run(n, bad);
            print_row(n, bad, &row, started.elapsed().as_secs_f64());
        }
    }
}

fn run(nodes: usize, malicious_percent: usize) -> Row {
    let config = SimConfig {
        nodes,
        malicious_percent,
        seed: 7 + nodes as u64,
        ..SimConfig::default()
    };
    let mut net = Network::new(config);
    net.bootstrap();
    let keys = publish(&mut net);
    let honest = net.honest();
    let mut row = Row {
        hops: Vec::new(),
        record_depth: Vec::new(),
        latency_ms: Vec::new(),
        queried: 0,
        current: 0,
    };
    for _ in 0..LOOKUPS {
        let origin = honest[net.rng().below(honest.len() as u64) as usize];
        let key = keys[net.rng().below(keys.len() as u64) as usize];
        let stats = net.get(origin, key);
        row.hops.push(stats.result.hops);
        row.record_depth.push(stats.result.record_depth);
        row.latency_ms.push(stats.latency_ms);
        row.queried += stats.result.queried;
        let want = net.published[&key].current();
        if stats.result.record.is_some_and(|r| r.signed() == want) {
            row.current += 1;
        }
    }
    row
}

/// Publishes `RECORDS` records through random honest nodes and renews every other one.
fn publish(net: &mut Network) -> Vec<RecordKey> {
    let honest = net.honest();
    let mut keys = Vec::new();
    for r in 0..RECORDS {
        let owner = r % net.clients.len();
        let publisher = honest[net.rng().below(honest.len() as u64) as usize];
        keys.push(net.publish(owner, publisher, [r as u8; 32]).0);
    }
    for key in keys.iter().step_by(2) {
        let _ = net.renew(key);
    }
    keys
}

fn mean<T: Copy + Into<f64>>(v: &[T]) -> f64 {
    v.iter().map(|x| (*x).into()).sum::<f64>() / v.len().max(1) as f64
}

fn p95<T: Copy + Ord>(v: &[T]) -> Option<T> {
    let mut s = v.to_vec();
    s.sort_unstable();
    s.get((s.len() * 95 / 100).min(s.len().saturating_sub(1)))
        .copied()
}

fn print_row(n: usize, bad: usize, row: &Row, wall_secs: f64) {
    let hops: Vec<u32> = row.hops.iter().map(|h| *h as u32).collect();
    let depth: Vec<u32> = row.record_depth.iter().map(|h| *h as u32).collect();
    let latency: Vec<u32> = row.latency_ms.iter().map(|l| *l as u32).collect();
    println!(
        "{:>5} {:>6.2} {:>4}% {:>9.2} {:>8} {:>9.2} {:>8.0} {:>8} {:>8.1} {:>7.1}% {:>7.1}",
        n,
        (n as f64).log2(),
        bad,
        mean(&hops),
        p95(&hops).unwrap_or(0),
        mean(&depth),
        mean(&latency),
        p95(&latency).unwrap_or(0),
        row.queried as f64 / LOOKUPS as f64,
        100.0 * row.current as f64 / LOOKUPS as f64,
        wall_secs
    );
}
