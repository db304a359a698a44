//! The layer benchmarks that `psp-onion`'s `layer` bench and `psp-net`'s `cells` bench both run
//! (included by path): ring's raw AEAD seals and the onion layer operations, as criterion
//! benchmarks and then as ratios. The ratios interleave every operation in every round (best of
//! [`ROUNDS`] rounds of [`CALLS`] calls each), so a change of machine load hits all of them alike.

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{measurement::WallTime, BenchmarkGroup, Criterion, Throughput};
use psp_onion::crypto::{
    client_unwrap_backward, client_wrap_forward, forward_capacity, ntor_client_start, ntor_server,
    HopCrypto, HopKeys, NodeId, OnionSecret, PaddingStream, RawAead, LAYER_LEN,
};

const ROUNDS: usize = 20;
const CALLS: u64 = 10_000;
/// Inputs prepared at a time for the operations that consume theirs (opens, unwraps).
const CHUNK: u64 = 4_096;

/// The server side of the ntor handshake, a fresh ephemeral key per call, as `server_ntor` in
/// group `g`.
pub fn server_ntor(g: &mut BenchmarkGroup<'_, WallTime>) {
    let id = NodeId([1; 32]);
    let b = OnionSecret::from_bytes([2; 32]);
    let (_, msg) = ntor_client_start(id, b.public(), [3; 32]);
    let mut y = 0u64;
    g.bench_function("server_ntor", |bn| {
        bn.iter(|| {
            y += 1;
            let mut e = [4u8; 32];
            e[..8].copy_from_slice(&y.to_le_bytes());
            black_box(ntor_server(&id, &b, black_box(&msg), e).unwrap())
        })
    });
}

fn hop(seed: u8) -> HopCrypto {
    HopCrypto::new(HopKeys {
        forward: [seed; 32],
        backward: [seed ^ 0xff; 32],
    })
}

/// Times `op` on `n` inputs made by `make`, made outside the timing, in chunks over distinct
/// cells (a 2 MiB working set, as a relay walks its queues).
fn consuming<T>(n: u64, mut make: impl FnMut() -> T, mut op: impl FnMut(&mut T)) -> Duration {
    let mut total = Duration::ZERO;
    let mut left = n;
    while left > 0 {
        let k = left.min(CHUNK);
        let mut items: Vec<T> = (0..k).map(|_| make()).collect();
        let t = Instant::now();
        for item in items.iter_mut() {
            op(black_box(item));
        }
        total += t.elapsed();
        left -= k;
    }
    total
}

fn repeated(n: u64, mut op: impl FnMut()) -> Duration {
    let t = Instant::now();
    for _ in 0..n {
        op();
    }
    t.elapsed()
}

/// One operation: `n` calls → their time.
type Op = (&'static str, Box<dyn FnMut(u64) -> Duration>);

fn raw_seal(name: &'static str, raw: RawAead, len: usize) -> Op {
    let mut buf = [0u8; 512];
    let mut ctr = 0u64;
    let run = move |n| {
        repeated(n, || {
            ctr += 1;
            black_box(raw.seal(ctr, black_box(&mut buf[..len])));
        })
    };
    (name, Box::new(run))
}

/// The baselines first: [`ratios`] divides by the first two.
fn ops() -> Vec<Op> {
    let (mut client, mut relay, mut pad) = ([hop(1)], hop(1), PaddingStream::new([3; 32]));
    let open_forward = move |n| {
        consuming(
            n,
            || client_wrap_forward(&mut client, &[9; 400], &mut pad).unwrap(),
            |cell| relay.relay_open_forward(cell).unwrap(),
        )
    };
    let (mut last, mut body) = (hop(2), [5u8; LAYER_LEN]);
    let seal_backward = move |n| repeated(n, || last.relay_seal_backward(&mut body).unwrap());
    let (mut middle, mut body) = (hop(3), [5u8; LAYER_LEN]);
    let mask = move |n| repeated(n, || middle.mask_backward(&mut body).unwrap());
    let (mut hops, mut pad) = ([hop(1), hop(2), hop(3)], PaddingStream::new([3; 32]));
    let msg = vec![1u8; forward_capacity(3)];
    let wrap = move |n| {
        repeated(n, || {
            black_box(client_wrap_forward(&mut hops, &msg, &mut pad).unwrap());
        })
    };
    let (mut relays, mut client) = ([hop(1), hop(2), hop(3)], [hop(1), hop(2), hop(3)]);
    let unwrap = move |n| {
        consuming(
            n,
            || {
                let mut b = [4u8; LAYER_LEN];
                relays[2].relay_seal_backward(&mut b).unwrap();
                relays[1].mask_backward(&mut b).unwrap();
                relays[0].mask_backward(&mut b).unwrap();
                b
            },
            |cell| {
                black_box(client_unwrap_backward(&mut client, cell).unwrap());
            },
        )
    };
    vec![
        raw_seal(
            "ring_aes256gcm_seal_512B",
            RawAead::aes_256_gcm(&[7; 32]),
            512,
        ),
        raw_seal(
            "ring_aes256gcm_seal_491B",
            RawAead::aes_256_gcm(&[7; 32]),
            491,
        ),
        raw_seal(
            "ring_chacha20poly1305_seal_512B",
            RawAead::chacha20_poly1305(&[7; 32]),
            512,
        ),
        ("relay_forward_open_per_hop", Box::new(open_forward)),
        ("relay_backward_seal_last_hop", Box::new(seal_backward)),
        ("relay_backward_mask_middle_hop", Box::new(mask)),
        ("client_wrap_forward_3_hops", Box::new(wrap)),
        ("client_unwrap_backward_3_hops", Box::new(unwrap)),
    ]
}

/// Every operation as a criterion benchmark (group `layer`).
pub fn layer(c: &mut Criterion) {
    let mut g = c.benchmark_group("layer");
    g.throughput(Throughput::Elements(1));
    for (name, mut op) in ops() {
        g.bench_function(name, |b| b.iter_custom(&mut op));
    }
    g.finish();
}

/// Every operation against ring's AES-256-GCM seal of 512 bytes and of 491 bytes (a layer's
/// AEAD payload), interleaved in the same run.
pub fn ratios(_: &mut Criterion) {
    let mut ops = ops();
    let mut best = vec![Duration::MAX; ops.len()];
    for _ in 0..ROUNDS {
        for ((_, op), best) in ops.iter_mut().zip(best.iter_mut()) {
            *best = (*best).min(op(CALLS));
        }
    }
    let ns: Vec<f64> = best
        .iter()
        .map(|d| d.as_secs_f64() * 1e9 / CALLS as f64)
        .collect();
    println!(
        "layer ratios: best of {ROUNDS} interleaved rounds of {CALLS} calls; \
         × ring AES-256-GCM seal of 512 B / of 491 B"
    );
    for ((name, _), t) in ops.iter().zip(&ns) {
        println!(
            "  {name:<34} {t:>8.1} ns  {:>5.2}× / {:>5.2}×",
            t / ns[0],
            t / ns[1]
        );
    }
}
