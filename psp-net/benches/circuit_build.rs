//! 3-hop circuit build latency over real loopback sockets (in-process nodes, one tokio
//! runtime): p50 / p99 of `ClientHandle::build_circuit` + `destroy`.
//!
//! * warm: one client, links already up (client→entry and node→node): three handshakes
//!   and two telescoping round trips per build.
//! * cold client: a fresh client per build, so the client→entry link (TCP, Noise, Yamux,
//!   hello) is set up inside the measurement; node→node links are warm.
//!
//! `cargo bench -p psp-net --bench circuit_build` (optionally `-- <warm builds> <cold builds>`).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use psp_net::circuit::{NodeDirectory, NodeRecord};
use psp_net::crypto::{NodeId, OnionSecret};
use psp_net::driver::{
    ClientConfig, ClientHandle, Keypair, Node, NodeConfig, NodeDescriptor, NodeSecrets,
};

#[derive(Default)]
struct Dir(Mutex<HashMap<NodeId, NodeRecord>>);

impl NodeDirectory for Dir {
    fn onion_key(&self, node: &NodeId) -> Option<NodeRecord> {
        self.0.lock().ok()?.get(node).cloned()
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx.min(sorted.len() - 1)]
}

fn report(name: &str, mut v: Vec<Duration>) {
    v.sort();
    let mean = v.iter().sum::<Duration>() / v.len() as u32;
    println!(
        "{name:<12} n={:<4} p50={:>8.3?} p99={:>8.3?} mean={:>8.3?} min={:>8.3?} max={:>8.3?}",
        v.len(),
        percentile(&v, 0.50),
        percentile(&v, 0.99),
        mean,
        v[0],
        v[v.len() - 1]
    );
}

async fn run(warm: usize, cold: usize) {
    let dir = Arc::new(Dir::default());
    let mut path: Vec<NodeDescriptor> = Vec::new();
    let mut handles = Vec::new();
    for i in 1..=3u8 {
        let config = NodeConfig {
            listen: "/ip4/127.0.0.1/tcp/0".parse().expect("multiaddr"),
            ..NodeConfig::default()
        };
        let secrets = NodeSecrets {
            id: NodeId([i; 32]),
            onion: OnionSecret::from_bytes([i.wrapping_mul(37); 32]),
            link_key: Keypair::generate_ed25519(),
        };
        let d: Arc<dyn NodeDirectory + Send + Sync> = dir.clone();
        let node = Node::new(config, secrets, d).expect("node");
        tokio::spawn(node.task.run());
        let desc = node.handle.descriptor().await.expect("descriptor");
        dir.0
            .lock()
            .expect("lock")
            .insert(desc.id, desc.to_record());
        path.push(desc);
        handles.push((node.handle, node.events));
    }

    let (client, task) = ClientHandle::new(ClientConfig::default()).expect("client");
    tokio::spawn(task.run());
    // Warm-up: brings every link up.
    for _ in 0..5 {
        let c = client.build_circuit(&path).await.expect("build");
        c.destroy().await.expect("destroy");
    }
    let mut v = Vec::with_capacity(warm);
    for _ in 0..warm {
        let t = Instant::now();
        let c = client.build_circuit(&path).await.expect("build");
        v.push(t.elapsed());
        c.destroy().await.expect("destroy");
    }
    report("warm", v);

    let mut v = Vec::with_capacity(cold);
    for _ in 0..cold {
        let (client, task) = ClientHandle::new(ClientConfig::default()).expect("client");
        let join = tokio::spawn(task.run());
        let t = Instant::now();
        let c = client.build_circuit(&path).await.expect("build");
        v.push(t.elapsed());
        c.destroy().await.expect("destroy");
        client.shutdown().await;
        let _ = join.await;
    }
    report("cold client", v);
    for (h, _) in &handles {
        h.shutdown().await;
    }
}

fn main() {
    // `cargo bench` passes `--bench`; take the first two numeric arguments, if any.
    let nums: Vec<usize> = std::env::args().filter_map(|a| a.parse().ok()).collect();
    let warm = nums.first().copied().unwrap_or(200).max(1);
    let cold = nums.get(1).copied().unwrap_or(50).max(1);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    println!(
        "3-hop circuit build, in-process nodes over 127.0.0.1 (TCP + Noise + Yamux), {} threads",
        2
    );
    rt.block_on(run(warm, cold));
}
