//! 3-hop circuit build latency between real `psp-node` processes on loopback.
//!
//! ```sh
//! PSP_NODE_BIN=$HOME/.cache/psp-target/debug/psp-node \
//!     cargo run -p psp-e2e-tests --example circuit_latency -- --builds 200
//! ```
//!
//! Starts a `--chain local` network of Alice, Bob and Charlie with the overlay on (harness of
//! the e2e tests; relays' circuit rate raised to 5 000 cells/s, burst 5 000), waits for
//! finality, registers the three overlay identities on chain (//Alice pays, each waits for
//! finality) and waits until every relay sees all three in its finalized state. Then one
//! client builds a circuit alice -> bob -> charlie once (cold: the client's link and the
//! node links are dialled inside it), then `--builds` more, sequentially, each destroyed
//! right after it is built (warm links), and prints p50/p90/p99/max of the warm builds;
//! then as many 1-hop and 2-hop builds over the first hops of the same path, to split the
//! cost per hop.
//! Last, one 1 MiB echo (every byte checked) through a fresh circuit, paced at `--rate`
//! cells/s, so its throughput is bounded by that pace.
//!
//! Options: `--builds N` (200), `--rate CELLS_PER_SEC` (1000, the e2e test's pace),
//! `--echo-bytes N` (1 MiB, 0 to skip).

use anyhow::{bail, ensure, Context, Result};
use psp_client::{
    chain::{keypair_from_suri, Chain},
    hex0x,
    overlay::{self, Hop, NodeRpc},
    psp_net::{
        circuit::Rate,
        driver::{ClientConfig, ClientHandle, NodeDescriptor},
    },
};
use psp_e2e_tests::{
    finalized_head, node_binary, start_local_network, wait_for, wait_for_node_list, OverlayOptions,
    PspNode,
};
use std::{
    collections::BTreeSet,
    time::{Duration, Instant},
};

struct Args {
    builds: usize,
    rate: u32,
    echo_bytes: usize,
}

fn parse_args() -> Result<Args> {
    let mut args = Args {
        builds: 200,
        rate: 1_000,
        echo_bytes: 1 << 20,
    };
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        let mut value = |name: &str| -> Result<String> {
            it.next().with_context(|| format!("{name} needs a value"))
        };
        match a.as_str() {
            "--builds" => args.builds = value("--builds")?.parse().context("--builds")?,
            "--rate" => args.rate = value("--rate")?.parse().context("--rate")?,
            "--echo-bytes" => {
                args.echo_bytes = value("--echo-bytes")?.parse().context("--echo-bytes")?
            }
            "-h" | "--help" => {
                println!(
                    "circuit_latency [--builds N (200)] [--rate CELLS_PER_SEC (1000)] \
                     [--echo-bytes N (1048576; 0 skips the echo)]"
                );
                std::process::exit(0);
            }
            other => bail!("unknown argument {other:?} (try --help)"),
        }
    }
    ensure!(args.builds > 0, "--builds must be at least 1");
    ensure!(args.rate > 0, "--rate must be at least 1");
    Ok(args)
}

/// Nearest-rank percentile of sorted samples.
fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1e3)
}

fn machine() -> String {
    let cpus = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(0);
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    format!("{cpus} CPUs ({model})")
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "n/a".into())
}

/// Registers the three relays and waits until each sees all three finalized.
async fn register(nodes: &[PspNode]) -> Result<Vec<[u8; 32]>> {
    let chain = Chain::connect(&nodes[0].url()).await?;
    let t = Instant::now();
    wait_for(
        "the network finalizing block #1",
        Duration::from_secs(240),
        || async {
            match finalized_head(&chain).await {
                Ok((n, _)) if n >= 1 => Ok(Some(())),
                Ok((n, _)) => Err(format!("finalized #{n}")),
                Err(e) => Err(format!("{e:#}")),
            }
        },
    )
    .await?;
    eprintln!("network finalizing after {:?}", t.elapsed());
    let payer = keypair_from_suri("//Alice", "--payer")?;
    let mut keys = Vec::new();
    for node in nodes {
        let rpc = NodeRpc::connect(&node.url()).await?;
        let reg = overlay::register_node(&chain, &rpc, &payer, "peerstream", "relay", |_| {})
            .await
            .with_context(|| format!("registering {}", node.name()))?;
        eprintln!("registered {} as {}", node.name(), reg.id);
        keys.push(reg.key);
    }
    let want: BTreeSet<String> = keys.iter().map(|k| hex0x(k)).collect();
    for node in nodes {
        let c = Chain::connect(&node.url()).await?;
        wait_for_node_list(
            &c,
            &want,
            &format!("{} seeing the registrations finalized", node.name()),
            Duration::from_secs(120),
        )
        .await?;
    }
    Ok(keys)
}

/// `n` sequential builds through `path` (each destroyed once built); sorted durations of
/// the builds alone.
async fn measure(
    client: &ClientHandle,
    path: &[NodeDescriptor],
    n: usize,
) -> Result<Vec<Duration>> {
    let mut samples = Vec::with_capacity(n);
    for i in 0..n {
        let t = Instant::now();
        let circuit = client
            .build_circuit(path)
            .await
            .with_context(|| format!("{}-hop build {}", path.len(), i + 1))?;
        samples.push(t.elapsed());
        circuit.destroy().await?;
    }
    samples.sort();
    Ok(samples)
}

async fn run(args: &Args, nodes: &[PspNode]) -> Result<()> {
    let keys = register(nodes).await?;
    let chain = Chain::connect(&nodes[0].url()).await?;
    let registered = overlay::registered_nodes(&chain).await?;
    let via = keys.iter().map(|k| Hop::Registered(*k)).collect();
    let path = overlay::select_path(&registered, via, 3, &mut rand::thread_rng())?;
    let descriptors: Vec<NodeDescriptor> = path.iter().map(|n| n.descriptor.clone()).collect();

    let rate = Rate {
        cells_per_sec: args.rate,
        burst: 100,
    };
    let (client, task) = ClientHandle::new(ClientConfig {
        send_rate: rate,
        build_timeout: Duration::from_secs(30),
        stream_buffer: 4_096,
        ..ClientConfig::default()
    })?;
    tokio::spawn(task.run());

    let load_before = loadavg();
    let t = Instant::now();
    let circuit = client
        .build_circuit(&descriptors)
        .await
        .context("cold build")?;
    let cold = t.elapsed();
    circuit.destroy().await?;

    let all = Instant::now();
    let samples = measure(&client, &descriptors, args.builds).await?;
    let wall = all.elapsed();
    // Shorter prefixes of the same path, to split the cost per hop: every EXTEND adds a
    // round trip, one ntor handshake and the relay's chain look-up of the next hop.
    let one = measure(&client, &descriptors[..1], args.builds).await?;
    let two = measure(&client, &descriptors[..2], args.builds).await?;
    let load_after = loadavg();
    let mean = samples.iter().sum::<Duration>() / samples.len() as u32;

    println!("psp-node: {}", node_binary()?.display());
    println!("machine: {}", machine());
    println!("load average (1/5/15 min): before {load_before}, after {load_after}");
    println!("3-hop circuit alice -> bob -> charlie, real psp-node processes on 127.0.0.1");
    println!(
        "cold build (client link + node links dialled): {}",
        ms(cold)
    );
    println!(
        "warm builds: n={} p50={} p90={} p99={} max={} min={} mean={} ({:.1} s in all, build + destroy)",
        samples.len(),
        ms(percentile(&samples, 50.0)),
        ms(percentile(&samples, 90.0)),
        ms(percentile(&samples, 99.0)),
        ms(samples[samples.len() - 1]),
        ms(samples[0]),
        ms(mean),
        wall.as_secs_f64()
    );
    for (hops, s) in [(1, &one), (2, &two)] {
        println!(
            "  same path, first {hops} hop(s) only: n={} p50={} p99={} max={}",
            s.len(),
            ms(percentile(s, 50.0)),
            ms(percentile(s, 99.0)),
            ms(s[s.len() - 1]),
        );
    }

    if args.echo_bytes > 0 {
        let circuit = client.build_circuit(&descriptors).await?;
        let report = overlay::echo(&circuit, args.echo_bytes, Duration::from_secs(30))
            .await
            .context("echo")?;
        println!(
            "echo: {} bytes over 3 hops in {:.2} s = {:.0} KiB/s each way ({} DATA cells, client \
             pace {} cells/s burst 100 = at most {:.0} KiB/s; stream opened in {})",
            report.bytes,
            report.elapsed.as_secs_f64(),
            report.throughput() / 1024.0,
            report.cells,
            args.rate,
            f64::from(args.rate) * circuit.max_data() as f64 / 1024.0,
            ms(report.open_time)
        );
        circuit.destroy().await?;
    }
    client.shutdown().await;
    Ok(())
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<()> {
    let args = parse_args()?;
    let overlay = OverlayOptions {
        seed: None,
        circuit_rate: Some(5_000),
        circuit_burst: Some(5_000),
        debug_log: false,
        directory_timing: None,
        observe: false,
    };
    let started = Instant::now();
    let nodes = start_local_network(&["alice", "bob", "charlie"], Some(overlay)).await?;
    eprintln!("three nodes answering RPC after {:?}", started.elapsed());
    let result = tokio::time::timeout(Duration::from_secs(900), run(&args, &nodes)).await;
    let tails = || {
        nodes
            .iter()
            .map(|n| format!("--- {} log tail ---\n{}", n.name(), n.log_tail(20)))
            .collect::<Vec<_>>()
            .join("\n")
    };
    match result {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => bail!("{e:#}\n{}", tails()),
        Err(_) => bail!("did not finish within 900 s\n{}", tails()),
    }
}
