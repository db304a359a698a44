//! Cell crypto, handshake and relay throughput benchmarks, plus the memory of an idle circuit.
//!
//! `cargo bench -p psp-net --bench cells` (short measurement times; see the README for the
//! figures). The layer benchmarks and their ratios to ring's raw AEAD seals are shared with
//! `psp-onion`'s `layer` bench (`onion/benches/shared/layers.rs`).

use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::sync::atomic::{AtomicIsize, Ordering};
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use psp_net::cell::{max_forward_data, Cell, ChanMsg, CircId};
use psp_net::circuit::{
    Config, NodeRecord, Peer, Rate, Relay, Services, StaticDirectory, Timestamp,
};
use psp_net::crypto::{ntor_client_start, NodeId, OnionSecret};
use rand::rngs::StdRng;
use rand::SeedableRng;

/// Counts live heap bytes, to measure what an idle circuit costs.
struct Counting;
static LIVE: AtomicIsize = AtomicIsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        LIVE.fetch_add(l.size() as isize, Ordering::Relaxed);
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        LIVE.fetch_sub(l.size() as isize, Ordering::Relaxed);
        unsafe { System.dealloc(p, l) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

#[path = "../onion/benches/shared/layers.rs"]
mod layers;

fn handshake(c: &mut Criterion) {
    let mut g = c.benchmark_group("handshake");
    g.throughput(Throughput::Elements(1));
    layers::server_ntor(&mut g);
    let id = NodeId([1; 32]);
    let b = OnionSecret::from_bytes([2; 32]);
    g.bench_function("client_start", |bn| {
        bn.iter(|| black_box(ntor_client_start(id, b.public(), [5; 32])))
    });
    g.finish();
}

fn unlimited() -> Config {
    let fast = Rate {
        cells_per_sec: u32::MAX,
        burst: u32::MAX,
    };
    Config {
        circuit_rate: fast,
        peer_rate: fast,
        max_circuits_per_client: usize::MAX,
        ..Config::default()
    }
}

fn relay_with(config: Config, dir: StaticDirectory, i: u8) -> Relay {
    Relay::new(
        NodeId([i; 32]),
        OnionSecret::from_bytes([i; 32]),
        config,
        Box::new(dir),
        Box::new(Services::default()),
        Box::new(StdRng::seed_from_u64(u64::from(i))),
    )
}

/// Cells per second one relay forwards as a middle hop (decode, peel, queue, encode, release).
fn through_one_relay(c: &mut Criterion) {
    let mut dir = StaticDirectory::default();
    for i in 1..=2u8 {
        dir.0.insert(
            NodeId([i; 32]),
            NodeRecord {
                onion_key: OnionSecret::from_bytes([i; 32]).public(),
                address: String::new(),
            },
        );
    }
    let mut r1 = relay_with(unlimited(), dir.clone(), 1);
    let mut r2 = relay_with(unlimited(), dir, 2);
    let mut client = psp_net::circuit::Client::new(Box::new(StdRng::seed_from_u64(9)));
    let now = Timestamp(0);
    let client_peer = Peer::Client(1);
    let h = client
        .build(NodeId([1; 32]), r1.onion_public())
        .expect("build");
    // A tiny synchronous network: client <-> r1 <-> r2.
    let pump = |client: &mut psp_net::circuit::Client, r1: &mut Relay, r2: &mut Relay| loop {
        let mut moved = false;
        while let Some(t) = client.poll_transmit() {
            r1.handle_cell(now, client_peer, &t.cell[..]);
            moved = true;
        }
        while let Some(t) = r1.poll_transmit(now) {
            match t.to {
                Peer::Client(_) => client.handle_cell(NodeId([1; 32]), &t.cell[..]),
                Peer::Node(_) => r2.handle_cell(now, Peer::Node(NodeId([1; 32])), &t.cell[..]),
            }
            moved = true;
        }
        while let Some(t) = r2.poll_transmit(now) {
            r1.handle_cell(now, Peer::Node(NodeId([2; 32])), &t.cell[..]);
            moved = true;
        }
        if !moved {
            break;
        }
    };
    pump(&mut client, &mut r1, &mut r2);
    client
        .extend(h, NodeId([2; 32]), r2.onion_public())
        .expect("extend");
    pump(&mut client, &mut r1, &mut r2);
    let s = client.open_stream(h, "echo").expect("stream");
    pump(&mut client, &mut r1, &mut r2);
    let data = vec![0x42u8; max_forward_data(2)];
    let mut g = c.benchmark_group("relay");
    g.throughput(Throughput::Elements(1));
    // The client may have only a circuit window of DATA cells in flight: each round sends what
    // the window lets out, times r1 on them, then (untimed) hands r1's output to r2 and lets the
    // network settle, so r2's SENDMEs reopen the window.
    g.bench_function("forward_one_cell_middle_hop", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            let mut left = iters;
            while left > 0 {
                let mut cells = Vec::new();
                while (cells.len() as u64) < left && client.backlog(h) == 0 {
                    client.send(h, s, &data).unwrap();
                    cells.extend(std::iter::from_fn(|| client.poll_transmit()));
                }
                let mut out = Vec::with_capacity(cells.len());
                let t = Instant::now();
                for cell in &cells {
                    r1.handle_cell(now, client_peer, &cell.cell[..]);
                    out.extend(black_box(r1.poll_transmit(now)));
                }
                total += t.elapsed();
                left = left.saturating_sub(cells.len() as u64);
                for t in out {
                    r2.handle_cell(now, Peer::Node(NodeId([1; 32])), &t.cell[..]);
                }
                pump(&mut client, &mut r1, &mut r2);
            }
            total
        })
    });
    g.finish();
}

/// Measured heap + table bytes per idle circuit at a relay (10 000 circuits).
fn idle_circuit_memory() {
    let mut r = relay_with(unlimited(), StaticDirectory::default(), 1);
    let id = r.id();
    let key = r.onion_public();
    let n = 10_000u32;
    let cells: Vec<_> = (1..=n)
        .map(|i| {
            let mut x = [7u8; 32];
            x[..4].copy_from_slice(&i.to_le_bytes());
            let (_, m) = ntor_client_start(id, key, x);
            Cell {
                circ_id: CircId::new(i).unwrap(),
                msg: ChanMsg::Create(m),
            }
            .encode()
        })
        .collect();
    let before = LIVE.load(Ordering::Relaxed);
    for c in &cells {
        r.handle_cell(Timestamp(0), Peer::Client(1), c);
        while r.poll_transmit(Timestamp(0)).is_some() {}
        while r.poll_event().is_some() {}
    }
    let after = LIVE.load(Ordering::Relaxed);
    assert_eq!(r.circuit_count(), n as usize);
    println!(
        "memory/idle_circuit: measured {} bytes per circuit ({} circuits, heap delta {} bytes); \
         computed estimate {} bytes",
        (after - before) / n as isize,
        n,
        after - before,
        Relay::idle_circuit_bytes()
    );
}

fn memory(_: &mut Criterion) {
    idle_circuit_memory();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    targets = layers::layer, layers::ratios, handshake, through_one_relay, memory
}
criterion_main!(benches);
