//! Fan-out throughput of a PSP distribution node: WebRTC media forwarded per CPU core.
//!
//! Run with `cargo bench -p psp-webrtc --bench fanout` (bench profile, i.e. optimised).
//!
//! # What runs
//!
//! - **The distribution node** is a child process (this binary re-executed with `--serve`) on a
//!   *current-thread* tokio runtime, so it uses at most about one core. It runs what psp-node's
//!   media service runs for a stream it distributes (`node/src/overlay/media/state.rs`, `data`
//!   and `flush`): one [`WebRtcServer`] (one UDP port, str0m, ice-lite), the WHIP/WHEP
//!   [`signalling`] endpoint, and a [`Relay`] configured as the node configures it
//!   (`relay_config`: the class's rate, a burst of `max(2 × rate, 4 × 64 KiB)`, 2 MiB per
//!   subscriber queue, 64 KiB frames at most). Every `ServerEvent::Data` from the publisher is
//!   `Relay::ingest`ed, then every subscriber's `Relay::poll_transmit` is drained into
//!   `WebRtcServer::send`.
//! - **The parent** (a multi-thread runtime) publishes with one WHIP [`WebRtcClient`] and
//!   watches with N WHEP clients (N = 1, 10, 50). Frames are psp-media's test pattern, so each
//!   consumer checks every frame byte for byte and counts gaps in the frame index.
//!
//! # What is measured, for each N
//!
//! - **Fixed rate**: a Standard-class stream (2.5 Mbit/s) paced as video, one frame of
//!   rate / 30 bytes every 1/30 s. Forwarded Mbit/s (the sum over consumers of what they
//!   received), the node process's CPU as % of one core (from `/proc/<pid>/task/*/schedstat`:
//!   time on CPU of all its threads), that CPU per consumer, and CPU µs per forwarded MB.
//! - **Saturation**: the relay's rate raised to 1 Gbit/s (queue bounds as in the node) and the
//!   publisher sending the same frames as fast as its data channel takes them. Forwarded
//!   Mbit/s, the node's CPU, and forwarded Mbit/s per node core (forwarded / CPU fraction).
//! - **Paced ramp**: as saturation, but the publisher paced so the consumers together should
//!   receive 100, 200, 300, … Mbit/s, up to the first step that loses anything or falls short
//!   of its rate: the fastest clean step is what the node sustains here.
//!
//! Each case starts a fresh node, connects everyone, warms up for [`WARM_UP`] and measures
//! over [`MEASURE`] (the ramp's steps: [`RAMP_WARM_UP`], [`RAMP_MEASURE`]). Losses are
//! reported with the figures: frames the relay did not take, frames missing or damaged at
//! consumers, consumers the server dropped (`GoneReason`), and UDP datagrams dropped by full
//! socket receive buffers (`/proc/net/snmp`, and of those the node's socket's, from
//! `/proc/net/udp`): the data channels are reliable, so a dropped datagram costs an SCTP
//! retransmission and congestion-window cut rather than a frame.
//!
//! # What is not measured
//!
//! - A real network: everything is on loopback (no link loss, no RTT, no MTU surprises), and the
//!   consumers and the publisher run on the same machine as the node, sharing its cores (the
//!   parent's CPU is printed too; on a 2-core machine it competes with the node).
//! - The node's admission (publish tokens, fan-out signatures, reservations), its state lock,
//!   its metrics and its other work; SFrame encryption (done by the producer, not the node).
//! - Browsers as consumers: the consumers are psp-webrtc's Rust client (str0m).

use std::collections::BTreeMap;
use std::fmt::Display;
use std::io::{BufRead, Write};
use std::process::{ExitCode, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use psp_media::pattern::{check_test_pattern, test_pattern};
use psp_media::relay::{Event, Ingest, Relay, RelayConfig, SubscriberId};
use psp_media::StreamId;
use psp_webrtc::signalling::{self, SignallingConfig};
use psp_webrtc::{
    ClientConfig, PeerId, Refusal, Route, ServerConfig, ServerEvent, SignallingRequest,
    StreamDirectory, WebRtcClient, WebRtcServer,
};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::net::TcpListener;
use tokio::process::{Child, ChildStdin, ChildStdout, Command};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// Consumer counts measured.
const CONSUMERS: [usize; 3] = [1, 10, 50];
/// Time from the first frame to the start of the measured window.
const WARM_UP: Duration = Duration::from_secs(2);
/// The measured window.
const MEASURE: Duration = Duration::from_secs(8);
/// Time after the publisher stops for the last frames to arrive, before losses are counted.
const DRAIN: Duration = Duration::from_secs(2);
/// Aggregate rates (the sum over consumers, Mbit/s) tried in turn by the paced ramp, up to
/// the first that loses frames or consumers or is not reached.
const RAMP_MBPS: [u64; 6] = [100, 200, 300, 400, 600, 800];
/// Warm-up and measured window of each ramp step.
const RAMP_WARM_UP: Duration = Duration::from_secs(1);
const RAMP_MEASURE: Duration = Duration::from_secs(4);

/// The Standard bitrate class (`BitrateClass::Standard.max_kbps()`).
const STANDARD_KBPS: u64 = 2_500;
/// The relay's rate in the saturation runs: far above anything one core forwards.
const SATURATION_KBPS: u64 = 1_000_000;
/// Video-like pacing of the fixed-rate runs.
const FPS: u64 = 30;
/// Frame length in every run: one Standard-class frame at [`FPS`] (10 416 bytes).
const FRAME_LEN: usize = (STANDARD_KBPS * 1000 / 8 / FPS) as usize;
/// The node's largest frame (`MAX_FRAME_BYTES`), also the server's `max_message_bytes`.
const MAX_FRAME_BYTES: usize = 64 * 1024;
/// The node's per-subscriber relay queue (`MediaLimits::queue_bytes`).
const QUEUE_BYTES: usize = 2 << 20;
/// How often the node looks at relay timers (`TICK` in the node's media service).
const TICK: Duration = Duration::from_millis(500);

/// The stream's 32-byte id; its 64 hex digits are the signalling path's stream id.
const STREAM: [u8; 32] = [0xb5; 32];
/// The publisher's bearer token.
const TOKEN: &str = "fanout-bench";
/// The argument that makes this binary the distribution node.
const SERVE_ARG: &str = "--serve";

type Res<T> = Result<T, String>;

/// `.context("what")` on results and options: errors become `what: error` strings.
trait Context<T> {
    fn context(self, what: &str) -> Res<T>;
}

impl<T, E: Display> Context<T> for Result<T, E> {
    fn context(self, what: &str) -> Res<T> {
        self.map_err(|e| format!("{what}: {e}"))
    }
}

impl<T> Context<T> for Option<T> {
    fn context(self, what: &str) -> Res<T> {
        self.ok_or_else(|| what.to_owned())
    }
}

fn stream_hex() -> String {
    STREAM.iter().map(|b| format!("{b:02x}")).collect()
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let result = match args.iter().position(|a| a == SERVE_ARG) {
        Some(at) => args
            .get(at + 1)
            .and_then(|kbps| kbps.parse().ok())
            .context("--serve needs the relay's rate in kbit/s")
            .and_then(node_main),
        // `cargo bench` passes `--bench` (and any filter); there is nothing to choose.
        None => parent_main(),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("fanout: {e}");
            ExitCode::FAILURE
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The distribution node (child process).
// ---------------------------------------------------------------------------------------------

/// Who may publish and watch: one WHIP publisher with [`TOKEN`], any WHEP consumer, of
/// [`STREAM`] only.
#[derive(Default)]
struct Directory {
    publisher: Mutex<Slot>,
}

#[derive(Clone, Copy, PartialEq, Eq, Default)]
enum Slot {
    #[default]
    Free,
    Reserved,
    Peer(PeerId),
}

impl Directory {
    fn slot(&self) -> std::sync::MutexGuard<'_, Slot> {
        self.publisher.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn publisher(&self) -> Option<PeerId> {
        match *self.slot() {
            Slot::Peer(peer) => Some(peer),
            _ => None,
        }
    }
}

impl StreamDirectory for Directory {
    fn serves(&self, stream_id: &str) -> bool {
        stream_id == stream_hex()
    }

    fn admit(&self, request: &SignallingRequest<'_>) -> Result<(), Refusal> {
        if !self.serves(request.stream_id) {
            return Err(Refusal::not_found("stream not served here"));
        }
        if request.route == Route::Whep {
            return Ok(());
        }
        if request.header("authorization") != Some(&format!("Bearer {TOKEN}")) {
            return Err(Refusal::unauthorized("wrong publish token"));
        }
        let mut slot = self.slot();
        if *slot != Slot::Free {
            return Err(Refusal::conflict("the stream already has its publisher"));
        }
        *slot = Slot::Reserved;
        Ok(())
    }

    fn accepted(&self, request: &SignallingRequest<'_>, peer: PeerId) {
        if request.route == Route::Whip {
            *self.slot() = Slot::Peer(peer);
        }
    }

    fn failed(&self, request: &SignallingRequest<'_>) {
        if request.route == Route::Whip {
            *self.slot() = Slot::Free;
        }
    }
}

/// The node's relay configuration for a class of `kbps` (`relay_config` in the node).
fn relay_config(kbps: u64) -> RelayConfig {
    let rate = kbps * 1000 / 8;
    RelayConfig {
        max_subscribers: 256,
        per_subscriber_queue_bytes: QUEUE_BYTES,
        bitrate_bytes_per_sec: rate,
        burst_bytes: (2 * rate).max(4 * MAX_FRAME_BYTES as u64),
        ..RelayConfig::default()
    }
}

/// The node's counters, reported to the parent on request.
#[derive(Default)]
struct NodeCounts {
    frames_in: u64,
    bytes_in: u64,
    throttled: u64,
    frames_out: u64,
    send_errors: u64,
    /// Frames evicted from relay queues of subscribers that have left.
    relay_dropped_gone: u64,
    consumers_gone: BTreeMap<String, u64>,
    publisher_gone: u64,
}

fn node_main(kbps: u64) -> Res<()> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("building the node's runtime")?
        .block_on(node(kbps))
}

async fn node(kbps: u64) -> Res<()> {
    let (server, task) = WebRtcServer::bind(ServerConfig {
        max_message_bytes: MAX_FRAME_BYTES,
        ..ServerConfig::default()
    })
    .await
    .context("binding the WebRTC server")?;
    let mut events = server.events().context("the server's events")?;
    tokio::spawn(async move {
        if let Err(e) = task.run().await {
            eprintln!("fanout node: WebRTC server stopped: {e}");
        }
    });
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .context("binding signalling")?;
    let url = format!(
        "http://{}",
        listener.local_addr().context("signalling address")?
    );
    let directory = Arc::new(Directory::default());
    tokio::spawn(signalling::serve(
        listener,
        server.clone(),
        directory.clone(),
        SignallingConfig::default(),
    ));

    // The parent asks for counters with a line on stdin; EOF (the parent is gone) ends us.
    // A plain thread, so the runtime stays one thread that does all the node's work.
    let (lines_tx, mut lines) = mpsc::channel::<String>(4);
    std::thread::spawn(move || {
        for line in std::io::stdin().lock().lines() {
            let Ok(line) = line else { break };
            if lines_tx.blocking_send(line).is_err() {
                break;
            }
        }
    });
    println!("READY {url} {}", server.local_addr().port());
    std::io::stdout().flush().context("writing to the parent")?;

    let epoch = Instant::now();
    let now_ms = || epoch.elapsed().as_millis() as u64;
    let mut relay = Relay::new(StreamId(STREAM), relay_config(kbps), now_ms());
    let mut counts = NodeCounts::default();
    let mut tick = tokio::time::interval(TICK);
    loop {
        tokio::select! {
            event = events.recv() => match event {
                Some(event) => {
                    on_event(now_ms(), event, &server, &directory, &mut relay, &mut counts).await;
                }
                None => return Err("the WebRTC server stopped".into()),
            },
            line = lines.recv() => match line {
                Some(_) => {
                    println!("{}", stats_line(&relay, &counts));
                    std::io::stdout().flush().context("writing to the parent")?;
                }
                None => return Ok(()),
            },
            _ = tick.tick() => {
                let now = now_ms();
                relay.handle_timeout(now);
                flush(now, &server, &directory, &mut relay, &mut counts).await;
            }
        }
    }
}

/// One server event, as the node's `MediaState::on_event` handles it for a distributed stream.
async fn on_event(
    now: u64,
    event: ServerEvent,
    server: &WebRtcServer,
    directory: &Directory,
    relay: &mut Relay,
    counts: &mut NodeCounts,
) {
    match event {
        ServerEvent::ChannelOpen { peer, .. } if directory.publisher() != Some(peer) => {
            if let Err(e) = relay.subscribe(now, SubscriberId(peer.0)) {
                eprintln!("fanout node: subscribing {peer}: {e}");
                let _ = server.disconnect(peer).await;
            }
        }
        ServerEvent::Data { peer, bytes } if directory.publisher() == Some(peer) => {
            if bytes.len() > MAX_FRAME_BYTES {
                return;
            }
            match relay.ingest(now, &bytes) {
                Ok(Ingest::Forwarded { .. }) => {
                    counts.frames_in += 1;
                    counts.bytes_in += bytes.len() as u64;
                }
                Ok(Ingest::Throttled { .. }) => counts.throttled += 1,
                Ok(Ingest::CutOff { .. }) => {
                    counts.throttled += 1;
                    let _ = server.disconnect(peer).await;
                }
                Err(_) => {}
            }
            flush(now, server, directory, relay, counts).await;
        }
        ServerEvent::PeerGone { peer, reason } => {
            if directory.publisher() == Some(peer) {
                counts.publisher_gone += 1;
                *directory.slot() = Slot::Free;
            } else if let Some(stats) = relay.unsubscribe(SubscriberId(peer.0)) {
                counts.relay_dropped_gone += stats.frames_dropped;
                *counts
                    .consumers_gone
                    .entry(format!("{reason:?}"))
                    .or_default() += 1;
            }
        }
        _ => {}
    }
}

/// Hands every queued frame to the server, as the node's `flush` does for a distributed
/// stream (the subscriber list taken from `Relay::stats`, as there).
async fn flush(
    now: u64,
    server: &WebRtcServer,
    directory: &Directory,
    relay: &mut Relay,
    counts: &mut NodeCounts,
) {
    let subscribers: Vec<SubscriberId> = relay
        .stats()
        .subscribers
        .iter()
        .map(|(sub, _)| *sub)
        .collect();
    for sub in subscribers {
        while let Ok(Some(frame)) = relay.poll_transmit(now, sub) {
            counts.frames_out += 1;
            if server.send(PeerId(sub.0), frame).await.is_err() {
                counts.send_errors += 1;
            }
        }
    }
    while let Some(event) = relay.poll_event() {
        match event {
            Event::SubscriberStalled { id, .. } => {
                let _ = server.disconnect(PeerId(id.0)).await;
            }
            Event::PublisherCutOff { .. } => {
                if let Some(peer) = directory.publisher() {
                    let _ = server.disconnect(peer).await;
                }
            }
        }
    }
}

fn stats_line(relay: &Relay, counts: &NodeCounts) -> String {
    let stats = relay.stats();
    let relay_dropped: u64 = counts.relay_dropped_gone
        + stats
            .subscribers
            .iter()
            .map(|(_, s)| s.frames_dropped)
            .sum::<u64>();
    let gone: u64 = counts.consumers_gone.values().sum();
    let reasons: Vec<String> = counts
        .consumers_gone
        .iter()
        .map(|(reason, n)| format!("{n}x{reason}"))
        .collect();
    format!(
        "STATS frames_in={} bytes_in={} throttled={} frames_out={} send_errors={} \
         relay_dropped={relay_dropped} subscribers={} consumers_gone={gone} \
         publisher_gone={} reasons={}",
        counts.frames_in,
        counts.bytes_in,
        counts.throttled,
        counts.frames_out,
        counts.send_errors,
        stats.subscribers.len(),
        counts.publisher_gone,
        if reasons.is_empty() {
            "-".to_owned()
        } else {
            reasons.join(",").replace(' ', "")
        },
    )
}

// ---------------------------------------------------------------------------------------------
// The parent: publisher, consumers, measurement.
// ---------------------------------------------------------------------------------------------

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Mode {
    /// Standard class, paced at [`FPS`].
    Fixed,
    /// Relay rate raised, publisher unpaced.
    Saturation,
    /// Relay rate raised, publisher paced so that the consumers together should receive
    /// this many Mbit/s.
    Paced { aggregate_mbps: u64 },
}

impl Mode {
    fn relay_kbps(self) -> u64 {
        match self {
            Mode::Fixed => STANDARD_KBPS,
            Mode::Saturation | Mode::Paced { .. } => SATURATION_KBPS,
        }
    }

    /// Time between two frames of the publisher; `None`: as fast as it can.
    fn frame_interval(self, consumers: usize) -> Option<Duration> {
        match self {
            Mode::Fixed => Some(Duration::from_secs(1) / FPS as u32),
            Mode::Saturation => None,
            Mode::Paced { aggregate_mbps } => {
                let stream_bps = aggregate_mbps as f64 * 1e6 / consumers as f64;
                Some(Duration::from_secs_f64(FRAME_LEN as f64 * 8.0 / stream_bps))
            }
        }
    }

    fn windows(self) -> (Duration, Duration) {
        match self {
            Mode::Paced { .. } => (RAMP_WARM_UP, RAMP_MEASURE),
            _ => (WARM_UP, MEASURE),
        }
    }
}

/// The node process; killed when dropped (also when the parent fails half-way).
struct NodeProcess {
    child: Child,
    pid: u32,
    stdin: ChildStdin,
    stdout: Lines<BufReader<ChildStdout>>,
    url: String,
    /// The node's one UDP port (every peer's).
    udp_port: u16,
}

/// The node's counters, parsed from its `STATS` line.
#[derive(Clone, Default, Debug)]
struct NodeStats {
    values: BTreeMap<String, u64>,
    reasons: String,
}

impl NodeStats {
    fn get(&self, key: &str) -> u64 {
        self.values.get(key).copied().unwrap_or(0)
    }
}

impl NodeProcess {
    async fn start(kbps: u64) -> Res<NodeProcess> {
        let exe = std::env::current_exe().context("finding this binary")?;
        let mut child = Command::new(exe)
            .arg(SERVE_ARG)
            .arg(kbps.to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .context("starting the node process")?;
        let pid = child.id().context("the node process's pid")?;
        let stdin = child.stdin.take().context("the node's stdin")?;
        let stdout = child.stdout.take().context("the node's stdout")?;
        let mut node = NodeProcess {
            child,
            pid,
            stdin,
            stdout: BufReader::new(stdout).lines(),
            url: String::new(),
            udp_port: 0,
        };
        let line = node.line().await.context("waiting for the node")?;
        let (url, port) = line
            .strip_prefix("READY ")
            .and_then(|rest| rest.split_once(' '))
            .context("the node's first line is not READY <url> <udp port>")?;
        node.url = url.to_owned();
        node.udp_port = port.parse().context("the node's UDP port")?;
        Ok(node)
    }

    async fn line(&mut self) -> Res<String> {
        tokio::time::timeout(Duration::from_secs(10), self.stdout.next_line())
            .await
            .context("the node did not answer in 10 s")?
            .context("reading the node's stdout")?
            .context("the node exited")
    }

    async fn stats(&mut self) -> Res<NodeStats> {
        self.stdin
            .write_all(b"stats\n")
            .await
            .context("asking the node")?;
        self.stdin.flush().await.context("asking the node")?;
        let line = self.line().await?;
        let rest = line
            .strip_prefix("STATS ")
            .context("the node's answer is not STATS")?;
        let mut stats = NodeStats::default();
        for field in rest.split(' ') {
            let (key, value) = field.split_once('=').context("a STATS field")?;
            match value.parse() {
                Ok(n) => {
                    stats.values.insert(key.to_owned(), n);
                }
                Err(_) => stats.reasons = value.to_owned(),
            }
        }
        Ok(stats)
    }

    /// The node's CPU time so far (all its threads).
    fn cpu(&self) -> Res<Duration> {
        process_cpu(&self.pid.to_string())
    }

    async fn stop(mut self) {
        let _ = self.child.start_kill();
        let _ = tokio::time::timeout(Duration::from_secs(5), self.child.wait()).await;
    }
}

/// CPU time of process `pid` (`self` for this one): the sum over its live threads of the
/// first field of `/proc/<pid>/task/<tid>/schedstat`, nanoseconds on CPU.
fn process_cpu(pid: &str) -> Res<Duration> {
    let dir = format!("/proc/{pid}/task");
    let mut ns = 0u64;
    for task in std::fs::read_dir(&dir).context(&dir)? {
        let path = task.context(&dir)?.path().join("schedstat");
        // A thread may exit between the listing and the read.
        let Ok(text) = std::fs::read_to_string(&path) else {
            continue;
        };
        ns += text
            .split_whitespace()
            .next()
            .and_then(|f| f.parse::<u64>().ok())
            .context("a schedstat line")?;
    }
    Ok(Duration::from_nanos(ns))
}

/// The machine's count of UDP datagrams dropped for a full socket receive buffer
/// (`RcvbufErrors` in `/proc/net/snmp`; every socket of the network namespace, so the node's
/// and the consumers' alike).
fn udp_rcvbuf_errors() -> Res<u64> {
    let snmp = std::fs::read_to_string("/proc/net/snmp").context("/proc/net/snmp")?;
    let mut udp = snmp.lines().filter(|l| l.starts_with("Udp: "));
    let (names, values) = (udp.next(), udp.next());
    let (names, values) = names
        .zip(values)
        .context("no Udp lines in /proc/net/snmp")?;
    names
        .split_whitespace()
        .zip(values.split_whitespace())
        .find(|(name, _)| *name == "RcvbufErrors")
        .and_then(|(_, value)| value.parse().ok())
        .context("no Udp RcvbufErrors in /proc/net/snmp")
}

/// Datagrams dropped so far by the UDP sockets bound to `port` (the last field of
/// `/proc/net/udp`): the node's socket, as opposed to the clients'.
fn udp_socket_drops(port: u16) -> Res<u64> {
    let table = std::fs::read_to_string("/proc/net/udp").context("/proc/net/udp")?;
    let suffix = format!(":{port:04X}");
    Ok(table
        .lines()
        .skip(1)
        .filter(|line| {
            line.split_whitespace()
                .nth(1)
                .is_some_and(|local| local.ends_with(&suffix))
        })
        .filter_map(|line| line.split_whitespace().last()?.parse::<u64>().ok())
        .sum())
}

/// What one consumer saw.
#[derive(Default)]
struct ConsumerCounts {
    frames: AtomicU64,
    bytes: AtomicU64,
    /// Frames that are not an intact test-pattern frame.
    damaged: AtomicU64,
    /// Frames skipped: indices missing between two received frames (or out of order).
    gaps: AtomicU64,
    closed: AtomicBool,
}

async fn consume(mut client: WebRtcClient, counts: Arc<ConsumerCounts>) {
    let mut last: Option<u64> = None;
    while let Some(frame) = client.recv().await {
        counts.frames.fetch_add(1, Ordering::Relaxed);
        counts
            .bytes
            .fetch_add(frame.len() as u64, Ordering::Relaxed);
        match check_test_pattern(&frame) {
            Some(index) => {
                let expected = last.map_or(index, |l| l + 1);
                if index != expected {
                    counts
                        .gaps
                        .fetch_add(index.abs_diff(expected), Ordering::Relaxed);
                }
                last = Some(index);
            }
            None => drop(counts.damaged.fetch_add(1, Ordering::Relaxed)),
        }
    }
    counts.closed.store(true, Ordering::Relaxed);
}

#[derive(Clone, Copy, Default)]
struct Totals {
    frames: u64,
    bytes: u64,
    damaged: u64,
    gaps: u64,
    closed: u64,
}

fn totals(consumers: &[Arc<ConsumerCounts>]) -> Totals {
    let mut t = Totals::default();
    for c in consumers {
        t.frames += c.frames.load(Ordering::Relaxed);
        t.bytes += c.bytes.load(Ordering::Relaxed);
        t.damaged += c.damaged.load(Ordering::Relaxed);
        t.gaps += c.gaps.load(Ordering::Relaxed);
        t.closed += u64::from(c.closed.load(Ordering::Relaxed));
    }
    t
}

/// The publisher: frames of the test pattern, one per `interval` (on average: late ticks
/// are caught up) or as fast as the channel takes them, until `stop`. Returns the client
/// (kept open until the end of the case).
async fn publish(
    client: WebRtcClient,
    interval: Option<Duration>,
    stop: Arc<AtomicBool>,
    sent: Arc<AtomicU64>,
) -> Res<WebRtcClient> {
    let mut pace = interval.map(tokio::time::interval);
    let mut index = 0u64;
    while !stop.load(Ordering::Relaxed) {
        if let Some(pace) = &mut pace {
            pace.tick().await;
        }
        client
            .send(test_pattern(index, FRAME_LEN))
            .await
            .context("publishing")?;
        index += 1;
        sent.store(index, Ordering::Relaxed);
    }
    Ok(client)
}

/// One measured case.
struct Row {
    mode: Mode,
    consumers: usize,
    secs: f64,
    /// Frames the relay took in the window, as Mbit/s.
    ingest_mbps: f64,
    forwarded_mbps: f64,
    node_cpu: f64,
    parent_cpu: f64,
    published: u64,
    ingested: u64,
    throttled: u64,
    relay_dropped: u64,
    received: u64,
    expected: u64,
    gaps: u64,
    damaged: u64,
    consumers_gone: u64,
    reasons: String,
    /// UDP datagrams dropped for full receive buffers, machine-wide, while publishing.
    udp_drops: u64,
    /// Of which by the node's socket.
    node_udp_drops: u64,
}

async fn run_case(mode: Mode, n: usize) -> Res<Row> {
    eprintln!("fanout: {mode:?}, {n} consumers: starting the node");
    let mut node = NodeProcess::start(mode.relay_kbps()).await?;
    let stream = stream_hex();
    let publisher = WebRtcClient::connect_with(ClientConfig::publish(TOKEN), &node.url, &stream)
        .await
        .context("connecting the publisher")?;

    let mut counts = Vec::with_capacity(n);
    let mut tasks: Vec<JoinHandle<()>> = Vec::with_capacity(n);
    // Ten handshakes at a time: the signalling endpoint and the node's one thread take them
    // without timing out.
    while counts.len() < n {
        let connects = (0..(n - counts.len()).min(10)).map(|_| {
            let (url, stream) = (node.url.clone(), stream.clone());
            tokio::spawn(async move { WebRtcClient::connect(&url, &stream).await })
        });
        for connect in connects.collect::<Vec<_>>() {
            let client = connect
                .await
                .context("a consumer's connect task")?
                .context("connecting a consumer")?;
            let c = Arc::new(ConsumerCounts::default());
            counts.push(c.clone());
            tasks.push(tokio::spawn(consume(client, c)));
        }
    }
    // Every consumer subscribed (the node subscribes on ChannelOpen).
    let deadline = Instant::now() + Duration::from_secs(15);
    while node.stats().await?.get("subscribers") < n as u64 {
        if Instant::now() > deadline {
            return Err(format!("{n} consumers did not all subscribe in 15 s"));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    eprintln!("fanout: {mode:?}, {n} consumers: connected; publishing");

    let stop = Arc::new(AtomicBool::new(false));
    let sent = Arc::new(AtomicU64::new(0));
    let (udp0, node_udp0) = (udp_rcvbuf_errors()?, udp_socket_drops(node.udp_port)?);
    let interval = mode.frame_interval(n);
    let publishing = tokio::spawn(publish(publisher, interval, stop.clone(), sent.clone()));
    let (warm_up, measure) = mode.windows();
    tokio::time::sleep(warm_up).await;

    let (node0, t0) = (node.stats().await?, totals(&counts));
    let (cpu0, parent0, start) = (node.cpu()?, process_cpu("self")?, Instant::now());
    tokio::time::sleep(measure).await;
    let (cpu1, parent1, secs) = (node.cpu()?, process_cpu("self")?, start.elapsed());
    let (node1, t1) = (node.stats().await?, totals(&counts));

    stop.store(true, Ordering::Relaxed);
    let publisher = publishing.await.context("the publisher task")??;
    tokio::time::sleep(DRAIN).await;
    let end = node.stats().await?;
    let udp_drops = udp_rcvbuf_errors()? - udp0;
    let node_udp_drops = udp_socket_drops(node.udp_port)? - node_udp0;
    let t_end = totals(&counts);
    let published = sent.load(Ordering::Relaxed);

    for task in &tasks {
        task.abort();
    }
    drop(publisher);
    node.stop().await;

    let secs_f = secs.as_secs_f64();
    let mbps = |bytes: u64| bytes as f64 * 8.0 / secs_f / 1e6;
    let row = Row {
        mode,
        consumers: n,
        secs: secs_f,
        ingest_mbps: mbps(node1.get("bytes_in") - node0.get("bytes_in")),
        forwarded_mbps: mbps(t1.bytes - t0.bytes),
        node_cpu: (cpu1 - cpu0).as_secs_f64() / secs_f,
        parent_cpu: (parent1 - parent0).as_secs_f64() / secs_f,
        published,
        ingested: end.get("frames_in"),
        throttled: end.get("throttled"),
        relay_dropped: end.get("relay_dropped"),
        received: t_end.frames,
        expected: end.get("frames_in") * n as u64,
        gaps: t_end.gaps,
        damaged: t_end.damaged,
        consumers_gone: end.get("consumers_gone").max(t_end.closed),
        reasons: end.reasons.clone(),
        udp_drops,
        node_udp_drops,
    };
    eprintln!(
        "fanout: {mode:?}, {n} consumers: {:.1} Mbit/s forwarded, node {:.0}% of a core, \
         parent {:.0}%; published {} ingested {} received {} of {} (gaps {}, damaged {}, \
         gone {} {}, UDP drops {} of which node {})",
        row.forwarded_mbps,
        row.node_cpu * 100.0,
        row.parent_cpu * 100.0,
        row.published,
        row.ingested,
        row.received,
        row.expected,
        row.gaps,
        row.damaged,
        row.consumers_gone,
        row.reasons,
        row.udp_drops,
        row.node_udp_drops,
    );
    Ok(row)
}

fn parent_main() -> Res<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("building the runtime")?;
    let (rows, ramps) = runtime.block_on(async {
        let mut rows = Vec::new();
        for mode in [Mode::Fixed, Mode::Saturation] {
            for n in CONSUMERS {
                rows.push(run_case(mode, n).await?);
            }
        }
        let mut ramps = Vec::new();
        for n in CONSUMERS {
            let (mut best, mut failed) = (None, None);
            for aggregate_mbps in RAMP_MBPS {
                let row = run_case(Mode::Paced { aggregate_mbps }, n).await?;
                if row.clean() {
                    best = Some(row);
                } else {
                    failed = Some(row);
                    break;
                }
            }
            ramps.push((n, best, failed));
        }
        Ok::<_, String>((rows, ramps))
    })?;
    print_tables(&rows, &ramps);
    Ok(())
}

impl Row {
    /// Whether every frame reached every consumer intact, and no consumer was dropped.
    fn lossless(&self) -> bool {
        self.throttled == 0
            && self.published == self.ingested
            && self.relay_dropped == 0
            && self.received == self.expected
            && self.gaps == 0
            && self.damaged == 0
            && self.consumers_gone == 0
    }

    /// A paced step is clean if lossless and at least 95 % of its rate was forwarded.
    fn clean(&self) -> bool {
        let target = match self.mode {
            Mode::Paced { aggregate_mbps } => aggregate_mbps as f64,
            _ => 0.0,
        };
        self.lossless() && self.forwarded_mbps >= 0.95 * target
    }

    fn per_core(&self) -> f64 {
        if self.node_cpu > 0.0 {
            self.forwarded_mbps / self.node_cpu
        } else {
            0.0
        }
    }
}

fn losses(row: &Row) -> String {
    let mut out = Vec::new();
    if row.throttled > 0 {
        out.push(format!("{} throttled", row.throttled));
    }
    let unseen = row.published.saturating_sub(row.ingested + row.throttled);
    if unseen > 0 {
        out.push(format!("{unseen} not ingested"));
    }
    if row.relay_dropped > 0 {
        out.push(format!("{} relay-dropped", row.relay_dropped));
    }
    let missing = row.expected.saturating_sub(row.received);
    if missing > 0 {
        out.push(format!("{missing} not received"));
    }
    if row.gaps > 0 {
        out.push(format!("{} gaps", row.gaps));
    }
    if row.damaged > 0 {
        out.push(format!("{} damaged", row.damaged));
    }
    if row.consumers_gone > 0 {
        out.push(format!(
            "{} consumers dropped ({})",
            row.consumers_gone, row.reasons
        ));
    }
    if row.udp_drops > 0 {
        out.push(format!(
            "{} UDP datagrams dropped by full receive buffers ({} by the node's socket)",
            row.udp_drops, row.node_udp_drops
        ));
    }
    if out.is_empty() {
        "none".to_owned()
    } else {
        out.join(", ")
    }
}

/// Per consumer count: the fastest clean ramp step, and the first that was not.
type Ramp = (usize, Option<Row>, Option<Row>);

fn print_tables(rows: &[Row], ramps: &[Ramp]) {
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let secs = rows.first().map_or(0.0, |r| r.secs);
    println!();
    println!(
        "Fan-out through one distribution node (current-thread runtime), {FRAME_LEN} B \
         frames, {secs:.1} s measured after {} s warm-up; {cores} cores shared by the node and \
         the publisher + consumers process.",
        WARM_UP.as_secs()
    );
    println!();
    println!("Fixed rate: Standard class (2.5 Mbit/s), {FPS} frames/s");
    println!();
    println!(
        "| consumers | forwarded Mbit/s | node CPU (% of a core) | per consumer (% of a core) \
         | CPU µs per forwarded MB | parent CPU (%) | frames received / expected | losses |"
    );
    println!("|---:|---:|---:|---:|---:|---:|---:|---|");
    for row in rows.iter().filter(|r| r.mode == Mode::Fixed) {
        let mb = row.forwarded_mbps * row.secs / 8.0;
        println!(
            "| {} | {:.2} | {:.1} | {:.2} | {:.0} | {:.1} | {} / {} | {} |",
            row.consumers,
            row.forwarded_mbps,
            row.node_cpu * 100.0,
            row.node_cpu * 100.0 / row.consumers as f64,
            if mb > 0.0 {
                row.node_cpu * row.secs * 1e6 / mb
            } else {
                0.0
            },
            row.parent_cpu * 100.0,
            row.received,
            row.expected,
            losses(row),
        );
    }
    println!();
    println!(
        "Saturation: relay rate {} Mbit/s, publisher unpaced",
        SATURATION_KBPS / 1000
    );
    println!();
    println!(
        "| consumers | ingest Mbit/s | forwarded Mbit/s | node CPU (% of a core) \
         | forwarded Mbit/s per node core | parent CPU (%) | frames received / expected | losses |"
    );
    println!("|---:|---:|---:|---:|---:|---:|---:|---|");
    for row in rows.iter().filter(|r| r.mode == Mode::Saturation) {
        println!(
            "| {} | {:.1} | {:.1} | {:.1} | {:.0} | {:.1} | {} / {} | {} |",
            row.consumers,
            row.ingest_mbps,
            row.forwarded_mbps,
            row.node_cpu * 100.0,
            row.per_core(),
            row.parent_cpu * 100.0,
            row.received,
            row.expected,
            losses(row),
        );
    }
    println!();
    println!(
        "Paced ramp: relay rate {} Mbit/s, publisher paced for an aggregate (sum over \
         consumers) of {} Mbit/s in turn, {} s measured after {} s warm-up; the fastest \
         step with no loss at all and >= 95 % of its rate forwarded",
        SATURATION_KBPS / 1000,
        RAMP_MBPS.map(|r| r.to_string()).join(", "),
        RAMP_MEASURE.as_secs(),
        RAMP_WARM_UP.as_secs(),
    );
    println!();
    println!(
        "| consumers | clean aggregate Mbit/s | forwarded Mbit/s | node CPU (% of a core) \
         | forwarded Mbit/s per node core | parent CPU (%) | next step: forwarded Mbit/s, node CPU, what went wrong |"
    );
    println!("|---:|---:|---:|---:|---:|---:|---|");
    for (n, best, failed) in ramps {
        let (target, forwarded, cpu, per_core, parent) = match best {
            Some(row) => (
                match row.mode {
                    Mode::Paced { aggregate_mbps } => aggregate_mbps.to_string(),
                    _ => "?".into(),
                },
                format!("{:.1}", row.forwarded_mbps),
                format!("{:.1}", row.node_cpu * 100.0),
                format!("{:.0}", row.per_core()),
                format!("{:.1}", row.parent_cpu * 100.0),
            ),
            None => (
                format!("< {}", RAMP_MBPS[0]),
                "-".into(),
                "-".into(),
                "-".into(),
                "-".into(),
            ),
        };
        let next = match failed {
            Some(row) => format!(
                "{}: {:.1} Mbit/s, {:.1} %, {}",
                match row.mode {
                    Mode::Paced { aggregate_mbps } => aggregate_mbps,
                    _ => 0,
                },
                row.forwarded_mbps,
                row.node_cpu * 100.0,
                if row.lossless() {
                    "rate not reached".to_owned()
                } else {
                    losses(row)
                },
            ),
            None => "(none tried: every step was clean)".into(),
        };
        println!("| {n} | {target} | {forwarded} | {cpu} | {per_core} | {parent} | {next} |");
    }
}
