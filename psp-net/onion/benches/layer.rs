//! Per-hop layer crypto against ring's raw AEAD seals, and the server ntor handshake with the
//! parts it is made of, in one run: `cargo bench -p psp-onion --bench layer` (a quick build;
//! `psp-net`'s `cells` bench runs the same layer benchmarks with the relay around them).

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use curve25519_dalek::{EdwardsPoint, MontgomeryPoint};
use psp_onion::crypto::{ntor_client_start, NodeId, OnionSecret};

#[path = "shared/layers.rs"]
mod layers;

fn handshake(c: &mut Criterion) {
    let mut g = c.benchmark_group("handshake");
    g.throughput(Throughput::Elements(1));
    layers::server_ntor(&mut g);
    let id = NodeId([1; 32]);
    let b = OnionSecret::from_bytes([2; 32]);
    let (_, msg) = ntor_client_start(id, b.public(), [3; 32]);
    // Its parts, as `ntor_server` and `dh_pair` compute them.
    let x = MontgomeryPoint(msg.client_pk);
    let e = x.to_edwards(0).unwrap();
    g.bench_function("part_fixed_base_Y", |bn| {
        bn.iter(|| black_box(EdwardsPoint::mul_base_clamped(black_box([5; 32])).to_montgomery()))
    });
    g.bench_function("part_to_edwards", |bn| {
        bn.iter(|| black_box(black_box(x).to_edwards(0)))
    });
    g.bench_function("part_variable_base_edwards", |bn| {
        bn.iter(|| black_box(black_box(e).mul_clamped([6; 32])))
    });
    g.bench_function("part_to_montgomery", |bn| {
        bn.iter(|| black_box(black_box(e).to_montgomery()))
    });
    g.bench_function("part_montgomery_ladder", |bn| {
        bn.iter(|| black_box(black_box(x).mul_clamped([6; 32])))
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    targets = layers::layer, layers::ratios, handshake
}
criterion_main!(benches);
