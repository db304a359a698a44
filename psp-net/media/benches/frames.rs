//! Per-frame costs of the media path: SFrame encrypt and decrypt beside a raw AES-128-GCM seal
//! of the same size (the floor SFrame adds its header, AAD and allocation to), and the relay's
//! fan-out of one frame to 1, 10 and 50 subscribers (ingest, then every subscriber takes it).
//!
//! `cargo bench -p psp-media --bench frames -- --quick`

use std::hint::black_box;

use aes_gcm::aead::AeadInPlace;
use aes_gcm::{Aes128Gcm, KeyInit, Nonce};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use psp_media::relay::{Relay, RelayConfig, SubscriberId};
use psp_media::sframe::{Context, KeyUsage};
use psp_media::StreamId;

const SIZES: [(usize, &str); 2] = [(1_200, "1200B"), (64 * 1024, "64KiB")];
const BASE_KEY: [u8; 16] = [0x42; 16];
const METADATA: &[u8] = b"psp/media bench";

fn sframe(c: &mut Criterion) {
    let mut group = c.benchmark_group("sframe");
    for (size, name) in SIZES {
        group.throughput(Throughput::Bytes(size as u64));
        let plaintext = vec![0xabu8; size];

        let mut sender = Context::new();
        sender.add_key(7, &BASE_KEY, KeyUsage::Encrypt).unwrap();
        let mut ctr = 0u64;
        group.bench_function(BenchmarkId::new("encrypt", name), |b| {
            b.iter(|| {
                ctr += 1;
                black_box(
                    sender
                        .encrypt(7, ctr, METADATA, black_box(&plaintext))
                        .unwrap(),
                )
            })
        });

        let mut receiver = Context::new();
        receiver.add_key(7, &BASE_KEY, KeyUsage::Decrypt).unwrap();
        let frame = sender
            .encrypt(7, u64::MAX - 1, METADATA, &plaintext)
            .unwrap();
        group.bench_function(BenchmarkId::new("decrypt", name), |b| {
            b.iter(|| black_box(receiver.decrypt(black_box(&frame), METADATA).unwrap()))
        });

        // The floor: one AES-128-GCM seal of the same bytes in place, no header, no copy.
        let cipher = Aes128Gcm::new(&[0x42u8; 16].into());
        let nonce = [7u8; 12];
        let mut buf = plaintext.clone();
        group.bench_function(BenchmarkId::new("raw_aes128gcm_seal", name), |b| {
            b.iter(|| {
                black_box(
                    cipher
                        .encrypt_in_place_detached(Nonce::from_slice(&nonce), METADATA, &mut buf)
                        .unwrap(),
                )
            })
        });
    }
    group.finish();
}

fn fanout(c: &mut Criterion) {
    let mut group = c.benchmark_group("relay_fanout_1200B");
    let frame = vec![0x5au8; 1_200];
    for subscribers in [1u64, 10, 50] {
        let config = RelayConfig {
            max_subscribers: 64,
            bitrate_bytes_per_sec: u64::MAX / 1_000_000,
            burst_bytes: u64::MAX / 1_000_000,
            ..RelayConfig::default()
        };
        let mut relay = Relay::new(StreamId([1; 32]), config, 0);
        for id in 0..subscribers {
            relay.subscribe(0, SubscriberId(id)).unwrap();
        }
        let mut now = 0u64;
        group.throughput(Throughput::Elements(subscribers));
        group.bench_function(BenchmarkId::from_parameter(subscribers), |b| {
            b.iter(|| {
                now += 1;
                relay.ingest(now, black_box(&frame)).unwrap();
                for id in 0..subscribers {
                    black_box(relay.poll_transmit(now, SubscriberId(id)).unwrap());
                }
            })
        });
    }
    group.finish();
}

criterion_group!(benches, sframe, fanout);
criterion_main!(benches);
