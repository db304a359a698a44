//! Relay throughput through real links: DATA cells pushed end to end through three
//! in-process `psp-net` relays (entry, middle, exit) over their real libp2p links (TCP +
//! Noise + Yamux on 127.0.0.1), with every rate limit raised, measuring cells per second end
//! to end and the CPU each relay spends per cell.
//!
//! Each relay and the client run on their **own OS thread with a single-threaded tokio
//! runtime** (threads `psp-entry`, `psp-middle`, `psp-exit`, `psp-client`), so everything a
//! relay does — its driver task, its link tasks, libp2p's connection tasks (Yamux, Noise), the
//! TCP syscalls — runs on that one thread, and that thread's CPU time (read from
//! `/proc/self/task/<tid>/schedstat`, nanoseconds on CPU) is the relay's CPU time. Cells per
//! CPU-second of the `psp-middle` thread is therefore a true "cells per second per relay
//! core" figure, even though all four threads share one process and the machine's cores.
//!
//! The client builds several 3-hop circuits through the same three relays (so the relay
//! carries many circuits, as a real one does), opens a stream on each to a `sink` service at
//! the exit (it counts cells and answers nothing), and sends full DATA cells on all of them.
//! Circuits obey the SENDME windows (50 cells in flight per circuit); on top of that the
//! sender keeps at most [`AHEAD`] cells per circuit between "handed to the client" and
//! "delivered at the exit", so the client's send backlog can never overflow. Relay and client
//! rate limits are raised far above what the machine can do.
//!
//! `cargo bench -p psp-net --bench relay_links [-- CELLS [CIRCUITS]]` (defaults 200 000
//! cells, 8 circuits). It prints the end-to-end rate, each thread's CPU time, cells per
//! CPU-second for each relay, and the middle relay's link frame counters.
//!
//! Profile (threads are named, so `perf` can separate them):
//!
//! ```sh
//! perf record -F 1999 -o /tmp/relay.data -- $CARGO_TARGET_DIR/release/deps/relay_links-<hash> 400000
//! perf report -i /tmp/relay.data --comms psp-middle --no-children --sort symbol --stdio
//! ```

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use psp_net::circuit::{self, NodeDirectory, NodeRecord, Rate, Services, Stream};
use psp_net::crypto::{NodeId, OnionSecret};
use psp_net::driver::{
    ClientConfig, ClientHandle, Keypair, Node, NodeConfig, NodeDescriptor, NodeHandle, NodeSecrets,
    NodeStats, StreamWriter,
};
use tokio::sync::Notify;

/// Cells a circuit's sender may be ahead of what the exit has received (far below the
/// client's 4 096-cell send backlog, far above the 50-cell circuit window).
const AHEAD: u64 = 1_024;

/// Cells sent on every circuit before the clock starts (links, windows and allocators warm).
const WARMUP_PER_CIRCUIT: u64 = 2_000;

/// A rate no run here comes near: effectively no limit.
const OPEN: Rate = Rate {
    cells_per_sec: 100_000_000,
    burst: 1_000_000,
};

/// The registered nodes, filled in once each relay listens.
#[derive(Default)]
struct Registry(Mutex<HashMap<NodeId, NodeRecord>>);

impl NodeDirectory for Registry {
    fn onion_key(&self, node: &NodeId) -> Option<NodeRecord> {
        self.0.lock().ok()?.get(node).cloned()
    }
}

/// Cells delivered at the exit, per circuit (the first payload byte names the circuit).
struct Delivered {
    cells: Vec<AtomicU64>,
    wake: Vec<Notify>,
}

impl Delivered {
    fn new(circuits: usize) -> Self {
        Self {
            cells: (0..circuits).map(|_| AtomicU64::new(0)).collect(),
            wake: (0..circuits).map(|_| Notify::new()).collect(),
        }
    }

    fn total(&self) -> u64 {
        self.cells.iter().map(|c| c.load(Ordering::Relaxed)).sum()
    }
}

/// The `sink` service: counts every DATA cell, replies nothing.
struct Sink(Arc<Delivered>);

impl Stream for Sink {
    fn on_data(&mut self, data: &[u8], _reply: &mut Vec<u8>) {
        let Some(&i) = data.first() else { return };
        let i = usize::from(i);
        if let (Some(count), Some(wake)) = (self.0.cells.get(i), self.0.wake.get(i)) {
            count.fetch_add(1, Ordering::Relaxed);
            wake.notify_one();
        }
    }
}

/// A named OS thread running a single-threaded tokio runtime until `stop` fires.
struct RoleThread {
    name: &'static str,
    rt: tokio::runtime::Handle,
    tid: u32,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    join: Option<std::thread::JoinHandle<()>>,
}

impl RoleThread {
    fn spawn(name: &'static str) -> Self {
        let (tx, rx) = std::sync::mpsc::channel();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let join = std::thread::Builder::new()
            .name(name.to_owned())
            .spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("tokio runtime");
                tx.send((rt.handle().clone(), own_tid()))
                    .expect("main thread waiting");
                rt.block_on(async {
                    let _ = stopped.await;
                });
            })
            .expect("spawn thread");
        let (rt, tid) = rx.recv().expect("runtime thread started");
        Self {
            name,
            rt,
            tid,
            stop: Some(stop),
            join: Some(join),
        }
    }

    fn cpu(&self) -> Cpu {
        Cpu::read(&format!("/proc/self/task/{}", self.tid))
    }

    fn stop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(join) = self.join.take() {
            join.join().expect("runtime thread panicked");
        }
    }
}

/// The calling thread's kernel thread id, from `/proc/thread-self` (`<pid>/task/<tid>`).
fn own_tid() -> u32 {
    let link = std::fs::read_link("/proc/thread-self").expect("/proc/thread-self (Linux only)");
    link.file_name()
        .and_then(|s| s.to_str())
        .and_then(|s| s.parse().ok())
        .expect("a numeric thread id")
}

/// CPU time of a thread (`/proc/self/task/<tid>`), or of the whole process (`/proc/self`,
/// whose `stat` sums every thread but whose `schedstat` is the main thread's only).
#[derive(Clone, Copy, Default, Debug)]
struct Cpu {
    /// Nanoseconds on CPU (schedstat; 0 where unavailable).
    on_cpu_ns: u64,
    /// User and system time in clock ticks (utime, stime of `stat`; USER_HZ = 100).
    user_ticks: u64,
    sys_ticks: u64,
}

const TICKS_PER_SEC: f64 = 100.0;

impl Cpu {
    fn read(dir: &str) -> Self {
        let on_cpu_ns = std::fs::read_to_string(format!("{dir}/schedstat"))
            .ok()
            .and_then(|s| s.split_whitespace().next()?.parse().ok())
            .unwrap_or(0);
        let stat = std::fs::read_to_string(format!("{dir}/stat")).expect("stat");
        // Fields after the command name (which may hold spaces) start at field 3, the state.
        let rest = stat.rsplit_once(')').expect("stat format").1;
        let fields: Vec<&str> = rest.split_whitespace().collect();
        let field = |n: usize| -> u64 { fields[n - 3].parse().expect("numeric stat field") };
        Self {
            on_cpu_ns,
            user_ticks: field(14),
            sys_ticks: field(15),
        }
    }

    fn since(self, earlier: Self) -> Self {
        Self {
            on_cpu_ns: self.on_cpu_ns.saturating_sub(earlier.on_cpu_ns),
            user_ticks: self.user_ticks.saturating_sub(earlier.user_ticks),
            sys_ticks: self.sys_ticks.saturating_sub(earlier.sys_ticks),
        }
    }

    /// CPU seconds: schedstat if available, else user + system ticks.
    fn secs(self) -> f64 {
        if self.on_cpu_ns > 0 {
            self.on_cpu_ns as f64 / 1e9
        } else {
            (self.user_ticks + self.sys_ticks) as f64 / TICKS_PER_SEC
        }
    }

    /// Share of user and system time (from ticks).
    fn split(self) -> (f64, f64) {
        let t = (self.user_ticks + self.sys_ticks).max(1) as f64;
        (self.user_ticks as f64 / t, self.sys_ticks as f64 / t)
    }
}

fn node_config() -> NodeConfig {
    let mut config = NodeConfig {
        listen: "/ip4/127.0.0.1/tcp/0".parse().expect("multiaddr"),
        ..NodeConfig::default()
    };
    config.limits = circuit::Config {
        circuit_rate: OPEN,
        peer_rate: OPEN,
        max_circuits_per_client: 1_024,
        ..circuit::Config::default()
    };
    config
}

/// Starts relay `i` on `thread`'s runtime, with the `sink` service; returns its handle.
async fn start_relay(
    thread: &RoleThread,
    i: u8,
    registry: Arc<Registry>,
    delivered: Arc<Delivered>,
) -> (NodeHandle, NodeDescriptor) {
    let handle = thread
        .rt
        .spawn(async move {
            let secrets = NodeSecrets {
                id: NodeId([i; 32]),
                onion: OnionSecret::from_bytes([i.wrapping_mul(53).wrapping_add(1); 32]),
                link_key: Keypair::generate_ed25519(),
            };
            let mut services = Services::empty();
            services.register("sink", move || -> Box<dyn Stream> {
                Box::new(Sink(delivered.clone()))
            });
            let dir: Arc<dyn NodeDirectory + Send + Sync> = registry;
            let node = Node::with_services(node_config(), secrets, dir, Box::new(services))
                .expect("relay node");
            tokio::spawn(node.task.run());
            let mut events = node.events;
            tokio::spawn(async move { while events.recv().await.is_some() {} });
            node.handle
        })
        .await
        .expect("relay start task");
    let desc = handle.descriptor().await.expect("relay descriptor");
    (handle, desc)
}

/// Sends `cells` full DATA cells on circuit `i`, staying at most [`AHEAD`] cells ahead of the
/// exit; `sent` is how many this circuit has sent before (all delivered).
async fn push(
    writer: StreamWriter,
    i: usize,
    sent: u64,
    cells: u64,
    payload: Arc<Vec<u8>>,
    delivered: Arc<Delivered>,
) {
    let count = &delivered.cells[i];
    let wake = &delivered.wake[i];
    for n in sent..sent + cells {
        while n.saturating_sub(count.load(Ordering::Relaxed)) >= AHEAD {
            wake.notified().await;
        }
        writer.send(&payload).await.expect("send on circuit");
    }
}

struct Snapshot {
    at: Instant,
    threads: Vec<Cpu>,
    process: Cpu,
    middle: NodeStats,
    delivered: u64,
}

async fn snapshot(threads: &[RoleThread], middle: &NodeHandle, d: &Delivered) -> Snapshot {
    let middle = middle.stats().await.expect("middle stats");
    Snapshot {
        at: Instant::now(),
        threads: threads.iter().map(RoleThread::cpu).collect(),
        // `/proc/self/schedstat` is the main thread's alone: the process total is in ticks.
        process: Cpu {
            on_cpu_ns: 0,
            ..Cpu::read("/proc/self")
        },
        middle,
        delivered: d.total(),
    }
}

/// Runs `per_circuit` cells on every circuit from the client thread; returns when the exit
/// has all of them.
async fn run_round(
    client_rt: &tokio::runtime::Handle,
    writers: &[StreamWriter],
    sent: &mut [u64],
    per_circuit: u64,
    payloads: &[Arc<Vec<u8>>],
    delivered: &Arc<Delivered>,
) {
    let tasks: Vec<_> = writers
        .iter()
        .enumerate()
        .map(|(i, w)| {
            client_rt.spawn(push(
                w.clone(),
                i,
                sent[i],
                per_circuit,
                payloads[i].clone(),
                delivered.clone(),
            ))
        })
        .collect();
    for t in tasks {
        t.await.expect("sender task");
    }
    for s in sent.iter_mut() {
        *s += per_circuit;
    }
    let want: u64 = sent.iter().sum();
    let deadline = Instant::now() + Duration::from_secs(120);
    while delivered.total() < want {
        assert!(
            Instant::now() < deadline,
            "only {} of {want} cells delivered after 120 s",
            delivered.total()
        );
        tokio::time::sleep(Duration::from_micros(200)).await;
    }
}

async fn run(cells: u64, circuits: usize, threads: &[RoleThread]) {
    let registry = Arc::new(Registry::default());
    let delivered = Arc::new(Delivered::new(circuits));
    let mut path = Vec::new();
    let mut relays = Vec::new();
    for (i, thread) in threads.iter().take(3).enumerate() {
        let (handle, desc) =
            start_relay(thread, i as u8 + 1, registry.clone(), delivered.clone()).await;
        registry
            .0
            .lock()
            .expect("registry lock")
            .insert(desc.id, desc.to_record());
        path.push(desc);
        relays.push(handle);
    }
    let client_rt = threads[3].rt.clone();
    let client = client_rt
        .spawn(async {
            let config = ClientConfig {
                send_rate: OPEN,
                ..ClientConfig::default()
            };
            let (client, task) = ClientHandle::new(config).expect("client");
            tokio::spawn(task.run());
            client
        })
        .await
        .expect("client start task");

    let mut built = Vec::new();
    let mut writers = Vec::new();
    let mut payloads = Vec::new();
    for i in 0..circuits {
        let circuit = client.build_circuit(&path).await.expect("3-hop circuit");
        let stream = circuit.open_stream("sink").await.expect("sink stream");
        let (writer, _reader) = stream.into_split();
        payloads.push(Arc::new(vec![i as u8; circuit.max_data()]));
        writers.push(writer);
        built.push(circuit);
    }
    let cell_payload = payloads[0].len();
    let per_circuit = cells.div_ceil(circuits as u64).max(1);
    let cells = per_circuit * circuits as u64;
    let mut sent = vec![0u64; circuits];

    run_round(
        &client_rt,
        &writers,
        &mut sent,
        WARMUP_PER_CIRCUIT,
        &payloads,
        &delivered,
    )
    .await;

    let before = snapshot(threads, &relays[1], &delivered).await;
    run_round(
        &client_rt,
        &writers,
        &mut sent,
        per_circuit,
        &payloads,
        &delivered,
    )
    .await;
    let after = snapshot(threads, &relays[1], &delivered).await;

    for c in &built {
        if let Some(closed) = c.close_reason() {
            panic!("a circuit closed during the run: {closed}");
        }
    }

    let wall = after.at.duration_since(before.at).as_secs_f64();
    let got = after.delivered - before.delivered;
    assert_eq!(got, cells, "cells delivered at the exit");
    let rate = got as f64 / wall;
    println!(
        "{got} DATA cells ({cell_payload} B payload each) on {circuits} circuits in {wall:.3} s: \
         {rate:.0} cells/s end to end ({:.1} MB/s of payload)",
        rate * cell_payload as f64 / 1e6
    );
    println!();
    println!(
        "{:<11} {:>9} {:>7} {:>11} {:>13} {:>9}",
        "thread", "CPU s", "% wall", "user/sys", "cells/CPU-s", "µs/cell"
    );
    let mut middle_rate = 0.0;
    for (k, t) in threads.iter().enumerate() {
        let cpu = after.threads[k].since(before.threads[k]);
        let (user, sys) = cpu.split();
        let per_cpu = got as f64 / cpu.secs();
        if t.name == "psp-middle" {
            middle_rate = per_cpu;
        }
        println!(
            "{:<11} {:>9.3} {:>6.0}% {:>5.0}/{:<5.0} {:>13.0} {:>9.2}",
            t.name,
            cpu.secs(),
            100.0 * cpu.secs() / wall,
            100.0 * user,
            100.0 * sys,
            per_cpu,
            1e6 / per_cpu
        );
    }
    let process = after.process.since(before.process);
    let (user, sys) = process.split();
    println!(
        "{:<11} {:>9.3} {:>6.0}% {:>5.0}/{:<5.0} {:>13.0} {:>9.2}   (all threads, ticks)",
        "process",
        process.secs(),
        100.0 * process.secs() / wall,
        100.0 * user,
        100.0 * sys,
        got as f64 / process.secs(),
        1e6 * process.secs() / got as f64
    );
    let (m0, m1) = (before.middle, after.middle);
    let frames_in = m1.link_frames_in - m0.link_frames_in;
    let frames_out = m1.link_frames_out - m0.link_frames_out;
    println!();
    println!(
        "middle relay links: {frames_in} frames in, {frames_out} frames out \
         ({:.3} per DATA cell each way, SENDMEs included)",
        (frames_in + frames_out) as f64 / (2 * got) as f64
    );
    println!(
        "middle relay: {middle_rate:.0} DATA cells per CPU-second of its thread \
         (goal >= 200000: {})",
        if middle_rate >= 200_000.0 {
            "met"
        } else {
            "NOT met"
        }
    );

    for c in built {
        let _ = c.destroy().await;
    }
    client.shutdown().await;
    for r in &relays {
        r.shutdown().await;
    }
}

fn main() {
    // `cargo bench` passes `--bench`; the numeric arguments are CELLS and CIRCUITS.
    let nums: Vec<u64> = std::env::args().filter_map(|a| a.parse().ok()).collect();
    let cells = nums.first().copied().unwrap_or(200_000).max(1);
    let circuits = nums.get(1).copied().unwrap_or(8).clamp(1, 256) as usize;
    let mut threads: Vec<RoleThread> = ["psp-entry", "psp-middle", "psp-exit", "psp-client"]
        .into_iter()
        .map(RoleThread::spawn)
        .collect();
    println!(
        "relay throughput through real links: client -> entry -> middle -> exit, in-process \
         relays on 127.0.0.1 (TCP + Noise + Yamux), one OS thread and single-threaded tokio \
         runtime each, rate limits raised; {} CPUs available",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    let main_rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    main_rt.block_on(run(cells, circuits, &threads));
    for t in &mut threads {
        t.stop();
    }
}
