//! Shared helpers of the end-to-end tests: starting and stopping real `psp-node` processes.
//!
//! [`PspNode::start_with`] runs `psp-node --tmp` with [`NodeOptions`]: the chain (`--dev` or
//! `--chain local`), an authority name (`--alice` ...), a fixed `--node-key` (so the peer id,
//! and with it the bootnode address, is known in advance: [`peer_id_of_node_key`]),
//! `--bootnodes`, and the overlay (`--overlay-port` on a free port, `--overlay-seed`,
//! `--overlay-circuit-rate` / `-burst`, and `-l psp-overlay=debug` if asked) or
//! `--no-overlay`. Every node gets free loopback ports (`--rpc-port`,
//! `--listen-addr /ip4/127.0.0.1/tcp/P` for p2p, `--prometheus-port` with
//! [`NodeOptions::prometheus`], read with [`PspNode::scrape`]) and its log, with levels and
//! targets (`--detailed-log-output`), in a temporary file. It waits until the RPC answers (and,
//! if asked, until a first block is finalized: a lone dev node finalizes by itself, a
//! local-chain authority only once the others are up), and kills the process when dropped. If a test panics while the node is alive, the tail of
//! the node's log is printed, because that is usually where the reason is.
//! [`PspNode::start`] is the plain dev node (`--dev`, no overlay).
//!
//! [`agent`] runs `psp messaging agent` processes; [`observe`] reads back what a node
//! started with [`OverlayOptions::observe`] learned.
//!
//! The binary is `$PSP_NODE_BIN`, else `$CARGO_TARGET_DIR/debug/psp-node`, else
//! `$HOME/.cache/psp-target/debug/psp-node`. A missing binary is a test failure with a message
//! saying how to build it, never a skip.

#![warn(missing_docs)]

pub mod agent;
pub mod browser;
pub mod observe;

use anyhow::{bail, ensure, Context, Result};
use psp_client::{chain::Chain, subxt::rpcs::rpc_params};
use std::{
    fs::File,
    io::{Read, Seek, SeekFrom},
    net::TcpListener,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::atomic::{AtomicU16, AtomicU64, Ordering},
    time::{Duration, Instant},
};

/// How long a fresh node may take to answer RPC (and finalize a block, if asked); a debug
/// build on two busy cores needs about two minutes in the worst case.
pub const STARTUP_TIMEOUT: Duration = Duration::from_secs(300);
/// Lines of node log printed when a test fails.
pub const LOG_TAIL_LINES: usize = 60;

/// Where the `psp-node` binary is looked for, in order; the first that exists wins.
pub fn node_binary_candidates() -> Vec<PathBuf> {
    if let Some(bin) = std::env::var_os("PSP_NODE_BIN") {
        return vec![PathBuf::from(bin)];
    }
    let mut out = Vec::new();
    if let Some(dir) = std::env::var_os("CARGO_TARGET_DIR") {
        out.push(PathBuf::from(dir).join("debug/psp-node"));
    }
    if let Some(home) = std::env::var_os("HOME") {
        out.push(PathBuf::from(home).join(".cache/psp-target/debug/psp-node"));
    }
    out
}

/// The `psp-node` binary, or an error that says how to build it.
pub fn node_binary() -> Result<PathBuf> {
    let candidates = node_binary_candidates();
    if let Some(found) = candidates.iter().find(|p| p.is_file()) {
        return Ok(found.clone());
    }
    let tried: Vec<String> = candidates.iter().map(|p| p.display().to_string()).collect();
    bail!(
        "psp-node binary not found (tried: {}). Build it first: \
         `CARGO_TARGET_DIR=$HOME/.cache/psp-target cargo build -p psp-node`, \
         or point PSP_NODE_BIN at an existing binary",
        if tried.is_empty() {
            "nothing: set PSP_NODE_BIN".to_string()
        } else {
            tried.join(", ")
        }
    )
}

/// Where the `psp` CLI binary is looked for, in order: `$PSP_BIN`, then
/// `$CARGO_TARGET_DIR/debug/psp`, then next to the `psp-node` binary.
pub fn psp_binary_candidates() -> Vec<PathBuf> {
    if let Some(bin) = std::env::var_os("PSP_BIN") {
        return vec![PathBuf::from(bin)];
    }
    let mut out = Vec::new();
    if let Some(dir) = std::env::var_os("CARGO_TARGET_DIR") {
        out.push(PathBuf::from(dir).join("debug/psp"));
    }
    for node in node_binary_candidates() {
        if let Some(dir) = node.parent() {
            out.push(dir.join("psp"));
        }
    }
    out
}

/// The `psp` CLI binary, or an error that says how to build it.
pub fn psp_binary() -> Result<PathBuf> {
    let candidates = psp_binary_candidates();
    if let Some(found) = candidates.iter().find(|p| p.is_file()) {
        return Ok(found.clone());
    }
    let tried: Vec<String> = candidates.iter().map(|p| p.display().to_string()).collect();
    bail!(
        "psp binary not found (tried: {}). Build it first: `cargo build -p psp-client` (with the \
         same CARGO_TARGET_DIR), or point PSP_BIN at it",
        tried.join(", ")
    )
}

/// What a `psp` run printed and how it exited.
#[derive(Debug)]
pub struct PspRun {
    /// The exit code.
    pub code: Option<i32>,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

/// Runs the `psp` CLI with `args` (no passphrase, payer or URL from the environment), bounded
/// by `timeout`.
pub async fn run_psp(args: &[&str], timeout: Duration) -> Result<PspRun> {
    let bin = psp_binary()?;
    let child = tokio::process::Command::new(&bin)
        .args(args)
        .env_remove("PSP_PASSPHRASE")
        .env_remove("PSP_PAYER")
        .env_remove("PSP_URL")
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(timeout, child)
        .await
        .with_context(|| format!("psp {} took over {} s", args.join(" "), timeout.as_secs()))?
        .with_context(|| format!("running {}", bin.display()))?;
    Ok(PspRun {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    })
}

/// The registration of `keys` as a client identity in `peerstream` / `account`.
pub fn client_registration(keys: &psp_client::keystore::Keys) -> psp_primitives::Registration {
    psp_primitives::Registration {
        kind: psp_primitives::IdentityKind::Client,
        namespace: b"peerstream".to_vec(),
        app_namespace: b"account".to_vec(),
        key: keys.identity_public(),
        x25519: keys.x25519_public(),
        node: None,
    }
}

/// How long one `psp` command may take in the end-to-end tests (a transaction to finality).
pub const PSP_TIMEOUT: Duration = Duration::from_secs(180);
/// The session puzzle's work on test networks (nodes' `--usage-puzzle-bits`, consumers'
/// `--puzzle-bits`).
pub const PUZZLE_BITS: u8 = 10;

/// Runs `psp args...` and expects success; returns its stdout.
pub async fn psp_ok(args: &[&str]) -> Result<String> {
    let run = run_psp(args, PSP_TIMEOUT).await?;
    ensure!(
        run.code == Some(0),
        "psp {} failed:\n{}",
        args.join(" "),
        run.stderr
    );
    eprintln!(
        "psp {}: ok",
        args.iter().take(2).copied().collect::<Vec<_>>().join(" ")
    );
    Ok(run.stdout)
}

/// Runs `psp args...`, expects success and parses its stdout as JSON.
pub async fn psp_json(args: &[&str]) -> Result<serde_json::Value> {
    let out = psp_ok(args).await?;
    serde_json::from_str(&out).with_context(|| format!("JSON of psp {}", args.join(" ")))
}

/// Runs `psp args...` and expects a failure (exit code 1) whose message names `reason`.
pub async fn psp_refused(args: &[&str], reason: &str) -> Result<()> {
    ensure!(
        psp_refuses_now(args, reason)
            .await
            .map_err(anyhow::Error::msg)?
            .is_some(),
        "psp {} should be refused with {reason:?}",
        args.join(" ")
    );
    eprintln!(
        "psp {}: refused with {reason}",
        args.iter().take(2).copied().collect::<Vec<_>>().join(" ")
    );
    Ok(())
}

/// Whether `psp args...` fails now with `reason` in its message (for polling with
/// [`wait_for`]); the error names what happened instead.
pub async fn psp_refuses_now(args: &[&str], reason: &str) -> Result<Option<()>, String> {
    let run = run_psp(args, PSP_TIMEOUT)
        .await
        .map_err(|e| e.to_string())?;
    if run.code == Some(1) && run.stderr.contains(reason) {
        Ok(Some(()))
    } else if run.code == Some(0) {
        Ok(None)
    } else {
        Err(format!("exit {:?}: {}", run.code, run.stderr.trim()))
    }
}

/// Ports handed to test nodes: below Linux's ephemeral range (32768-60999), so the local
/// end of an outgoing connection (nodes dial each other all the time) never takes a port a
/// node is about to bind.
const TEST_PORTS: std::ops::Range<u16> = 20_000..32_000;

/// A free TCP port on 127.0.0.1 (free when asked; the node binds it a moment later).
pub fn free_port() -> Result<u16> {
    Ok(free_ports(1)?[0])
}

/// `n` distinct ports free on 127.0.0.1 (TCP and UDP), drawn at random from [`TEST_PORTS`] (tests run in
/// parallel processes; a random draw makes two of them unlikely to pick the same port in
/// the moment between the check and the node's bind, and [`PspNode::wait_ready`] notices
/// if it happens anyway).
pub fn free_ports(n: usize) -> Result<Vec<u16>> {
    use rand::Rng;
    let mut rng = rand::thread_rng();
    // Hold every listener until all are chosen, so one port is not handed out twice.
    let mut listeners = Vec::with_capacity(n);
    let mut tries = 0;
    while listeners.len() < n {
        tries += 1;
        ensure!(
            tries <= 1000,
            "no {n} free ports in {TEST_PORTS:?} on 127.0.0.1"
        );
        let port = rng.gen_range(TEST_PORTS);
        // The media service binds the same number on TCP and UDP: both must be free.
        if let (Ok(listener), Ok(udp)) = (
            TcpListener::bind(("127.0.0.1", port)),
            std::net::UdpSocket::bind(("127.0.0.1", port)),
        ) {
            listeners.push((listener, udp));
        }
    }
    listeners
        .iter()
        .map(|(l, _)| Ok(l.local_addr()?.port()))
        .collect()
}

/// The libp2p peer id of a node started with `--node-key <hex of key>` (an ed25519 secret).
pub fn peer_id_of_node_key(key: &[u8; 32]) -> Result<String> {
    let keypair = psp_client::psp_net::driver::Keypair::ed25519_from_bytes(*key)
        .context("the node key is not an ed25519 secret")?;
    Ok(keypair.public().to_peer_id().to_string())
}

/// Which built-in chain a node runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChainKind {
    /// `--dev`: Alice alone authors and finalizes.
    Dev,
    /// `--chain local`: Alice, Bob and Charlie are the authorities.
    Local,
}

/// The overlay settings of a node.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OverlayOptions {
    /// `--overlay-seed`: a deterministic dev identity.
    pub seed: Option<String>,
    /// `--overlay-circuit-rate`, cells per second per circuit.
    pub circuit_rate: Option<u32>,
    /// `--overlay-circuit-burst`, cells.
    pub circuit_burst: Option<u32>,
    /// `-l psp-overlay=debug`: also log the overlay's debug events. psp-node logs link
    /// refusals, failed dials and refused EXTENDs at warn, but every other relay event
    /// (circuit created, circuit closed with its reason, ...) only at debug.
    pub debug_log: bool,
    /// `--directory-period` (seconds) and `--directory-vote-window` (seconds).
    pub directory_timing: Option<(u64, u64)>,
    /// `--overlay-observe-file` in the node's log directory: what the node learns, read back
    /// with [`PspNode::observed`].
    pub observe: bool,
}

/// How to start a node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeOptions {
    /// A short name for messages (`alice`, `dave`, ...).
    pub name: String,
    /// The chain.
    pub chain: ChainKind,
    /// `--alice`, `--bob`, ... (an authority of the local chain); `None` for a plain node.
    pub authority: Option<String>,
    /// `--node-key` (hex of this ed25519 secret): fixes the p2p peer id.
    pub node_key: Option<[u8; 32]>,
    /// `--bootnodes`, full multiaddrs ending in `/p2p/<peer id>`.
    pub bootnodes: Vec<String>,
    /// The overlay on a free port with these settings, or `--no-overlay`.
    pub overlay: Option<OverlayOptions>,
    /// Also wait for a finalized block #1 before [`PspNode::start_with`] returns.
    pub wait_finalized: bool,
    /// Further `psp-node` arguments, passed last (e.g. `--rpc-external`).
    pub extra_args: Vec<String>,
    /// `--prometheus-port` on a free port (read with [`PspNode::scrape`]) instead of
    /// `--no-prometheus`.
    pub prometheus: bool,
    /// With the overlay, `--no-media`; otherwise the overlay's media service (WHIP/WHEP
    /// signalling on TCP, WebRTC on UDP) runs on a free port of its own (`--media-port`,
    /// see [`PspNode::media_url`]).
    pub no_media: bool,
}

impl NodeOptions {
    /// A lone `--dev` node without the overlay, ready once block 1 is finalized.
    pub fn dev() -> Self {
        Self {
            name: "dev".into(),
            chain: ChainKind::Dev,
            authority: None,
            node_key: None,
            bootnodes: Vec::new(),
            overlay: None,
            wait_finalized: true,
            extra_args: Vec::new(),
            prometheus: false,
            no_media: false,
        }
    }

    /// A `--chain local` node named `name`, with a node key derived from the name; an
    /// authority if `name` is alice, bob or charlie. Ready once its RPC answers.
    pub fn local(name: &str) -> Self {
        let authority = matches!(name, "alice" | "bob" | "charlie").then(|| name.to_string());
        Self {
            name: name.into(),
            chain: ChainKind::Local,
            authority,
            node_key: Some(node_key_for(name)),
            bootnodes: Vec::new(),
            overlay: None,
            wait_finalized: false,
            extra_args: Vec::new(),
            prometheus: false,
            no_media: false,
        }
    }
}

/// The dev account named after node `name`: `//Alice` for alice.
pub fn dev_account(name: &str) -> String {
    let mut chars = name.chars();
    let first = chars.next().map(|c| c.to_ascii_uppercase()).unwrap_or('X');
    format!("//{first}{}", chars.as_str())
}

/// The sr25519 seed of the overlay node key psp-node derives from `--overlay-seed <seed>`
/// (`node/src/overlay.rs`: `blake2_256("psp/overlay/seed/" ‖ seed)` is the master secret, the
/// node key's seed is `blake2_256("psp/overlay/id" ‖ master)`). Tests sign with it to play a
/// misbehaving node; a test checks it against the node's own `psp_overlayInfo`.
pub fn overlay_key_seed(seed: &str) -> [u8; 32] {
    use psp_net::crypto::blake2_256;
    let master = blake2_256(&[b"psp/overlay/seed/".as_slice(), seed.as_bytes()].concat());
    blake2_256(&[b"psp/overlay/id".as_slice(), &master].concat())
}

/// A fixed, name-derived node key (distinct per name; never all zero).
pub fn node_key_for(name: &str) -> [u8; 32] {
    let mut key = [0x5a_u8; 32];
    for (i, b) in name.bytes().enumerate() {
        key[i % 32] ^= b;
        key[(i * 7 + 3) % 32] = key[(i * 7 + 3) % 32].wrapping_add(b.rotate_left(3));
    }
    key
}

/// A running `psp-node` with its base path in a temporary directory, killed on drop.
pub struct PspNode {
    /// Behind a lock so that a scenario holding `&PspNode` can restart it.
    child: std::sync::Mutex<Child>,
    name: String,
    options: NodeOptions,
    /// The port asked for with `--rpc-port`, or the one the node reported using instead
    /// (sc-rpc-server moves to a random port when the asked one is taken).
    rpc_port: AtomicU16,
    /// Length of the log when the current process started: its own lines come after.
    log_start: AtomicU64,
    p2p_port: u16,
    overlay_port: Option<u16>,
    media_port: Option<u16>,
    prometheus_port: Option<u16>,
    peer_id: Option<String>,
    log_path: PathBuf,
    _log_dir: tempfile::TempDir,
}

/// The dev node of the older tests.
pub type DevNode = PspNode;

impl PspNode {
    /// Starts a `--dev` node (no overlay) and waits until its RPC answers and block 1 is
    /// finalized.
    pub async fn start() -> Result<Self> {
        Self::start_with(NodeOptions::dev()).await
    }

    /// Starts a node and waits until it is ready (see [`NodeOptions::wait_finalized`]).
    pub async fn start_with(options: NodeOptions) -> Result<Self> {
        let wait_finalized = options.wait_finalized;
        let node = Self::spawn(options)?;
        node.wait_ready(wait_finalized).await?;
        Ok(node)
    }

    /// Starts the process without waiting; call [`PspNode::wait_ready`] (several nodes can
    /// then start at once).
    pub fn spawn(options: NodeOptions) -> Result<Self> {
        let ports = free_ports(5)?;
        let (rpc_port, p2p_port) = (ports[0], ports[1]);
        let overlay_port = options.overlay.as_ref().map(|_| ports[2]);
        let prometheus_port = options.prometheus.then_some(ports[3]);
        let media_port = (options.overlay.is_some() && !options.no_media).then_some(ports[4]);
        let peer_id = options
            .node_key
            .as_ref()
            .map(peer_id_of_node_key)
            .transpose()?;
        let log_dir = tempfile::tempdir().context("creating a temp dir for the node log")?;
        let log_path = log_dir
            .path()
            .join(format!("psp-node-{}.log", options.name));
        let log_start = log_len(&log_path);
        let child = launch(
            &options,
            rpc_port,
            p2p_port,
            overlay_port,
            media_port,
            prometheus_port,
            &log_dir.path().join("base"),
            &log_path,
        )?;
        Ok(PspNode {
            child: std::sync::Mutex::new(child),
            name: options.name.clone(),
            options,
            rpc_port: AtomicU16::new(rpc_port),
            log_start: AtomicU64::new(log_start),
            p2p_port,
            overlay_port,
            media_port,
            prometheus_port,
            peer_id,
            log_path,
            _log_dir: log_dir,
        })
    }

    /// What the node observed so far (started with [`OverlayOptions::observe`]).
    pub fn observed(&self) -> Result<observe::Observed> {
        observe::Observed::read(&observe_path(&self.log_path))
    }

    /// Stops the node and starts it again on the same ports and base path (chain database,
    /// overlay secret), appending to the same log; returns once its RPC answers.
    pub async fn restart(&self) -> Result<()> {
        self.kill();
        self.log_start
            .store(log_len(&self.log_path), Ordering::Relaxed);
        let child = launch(
            &self.options,
            self.rpc_port.load(Ordering::Relaxed),
            self.p2p_port,
            self.overlay_port,
            self.media_port,
            self.prometheus_port,
            &self._log_dir.path().join("base"),
            &self.log_path,
        )?;
        *self.child() = child;
        self.wait_ready(false).await
    }

    /// The process (a poisoned lock still holds a valid child handle).
    fn child(&self) -> std::sync::MutexGuard<'_, Child> {
        self.child.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn kill(&self) {
        let mut child = self.child();
        let _ = child.kill();
        let _ = child.wait();
    }

    /// Waits (bounded by [`STARTUP_TIMEOUT`]) until the RPC answers and, with
    /// `finalized`, block 1 is finalized. On failure the error carries the log tail.
    pub async fn wait_ready(&self, finalized: bool) -> Result<()> {
        match self.poll_ready(finalized).await {
            Ok(()) => Ok(()),
            Err(e) => {
                let tail = self.log_tail(LOG_TAIL_LINES);
                bail!(
                    "{}: {e:#}\n--- last {LOG_TAIL_LINES} lines of its psp-node log ---\n{tail}",
                    self.name
                );
            }
        }
    }

    async fn poll_ready(&self, finalized: bool) -> Result<()> {
        let deadline = Instant::now() + STARTUP_TIMEOUT;
        let mut last_error = String::from("no attempt yet");
        loop {
            let exited = self.child().try_wait().context("polling psp-node")?;
            if let Some(status) = exited {
                bail!("psp-node exited during startup with {status}");
            }
            if Instant::now() > deadline {
                bail!(
                    "psp-node did not answer RPC at {}{} within {} s (last error: {last_error})",
                    self.url(),
                    if finalized {
                        " with a finalized block"
                    } else {
                        ""
                    },
                    STARTUP_TIMEOUT.as_secs()
                );
            }
            // Only the port this process reports is its own: before that line, whatever
            // answers at the asked port may be another test's node.
            let Some(port) = self.reported_rpc_port() else {
                last_error = "its log does not show the RPC server yet".into();
                tokio::time::sleep(Duration::from_millis(500)).await;
                continue;
            };
            self.rpc_port.store(port, Ordering::Relaxed);
            match Chain::connect(&self.url()).await {
                Ok(_) if !finalized => return Ok(()),
                Ok(chain) => match chain.finalized_number().await {
                    Ok(n) if n >= 1 => return Ok(()),
                    Ok(n) => last_error = format!("finalized block is #{n}"),
                    Err(e) => last_error = e.to_string(),
                },
                Err(e) => last_error = e.to_string(),
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    /// The name given in [`NodeOptions::name`].
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The node's WebSocket RPC URL.
    pub fn url(&self) -> String {
        format!("ws://127.0.0.1:{}", self.rpc_port.load(Ordering::Relaxed))
    }

    /// The RPC port in the current process's `Running JSON-RPC server: addr=127.0.0.1:<port>`
    /// log line, once it is there.
    fn reported_rpc_port(&self) -> Option<u16> {
        let mut file = File::open(&self.log_path).ok()?;
        file.seek(SeekFrom::Start(self.log_start.load(Ordering::Relaxed)))
            .ok()?;
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes).ok()?;
        let text = String::from_utf8_lossy(&bytes);
        let line = text
            .lines()
            .find(|l| l.contains("Running JSON-RPC server: addr="))?;
        let (_, rest) = line.split_once("addr=127.0.0.1:")?;
        let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
        digits.parse().ok()
    }

    /// The p2p port.
    pub fn p2p_port(&self) -> u16 {
        self.p2p_port
    }

    /// The overlay port, if the overlay is on.
    pub fn overlay_port(&self) -> Option<u16> {
        self.overlay_port
    }

    /// The media service's port (`--media-port`: TCP signalling and UDP WebRTC), if the
    /// overlay is on without [`NodeOptions::no_media`].
    pub fn media_port(&self) -> Option<u16> {
        self.media_port
    }

    /// The media service's signalling URL, `http://127.0.0.1:<media port>` (`POST
    /// /whip/<id>`, `POST /whep/<id>`, `GET /watch/<id>`), if the media service runs.
    pub fn media_url(&self) -> Option<String> {
        self.media_port
            .map(|port| format!("http://127.0.0.1:{port}"))
    }

    /// The Prometheus endpoint, `http://127.0.0.1:<port>/metrics`, if
    /// [`NodeOptions::prometheus`] is on.
    pub fn metrics_url(&self) -> Option<String> {
        self.prometheus_port
            .map(|port| format!("http://127.0.0.1:{port}/metrics"))
    }

    /// One scrape of the node's `/metrics` (needs [`NodeOptions::prometheus`]).
    pub async fn scrape(&self) -> Result<Scrape> {
        let port = self.prometheus_port.with_context(|| {
            format!(
                "{} runs with --no-prometheus (NodeOptions::prometheus)",
                self.name
            )
        })?;
        let text = tokio::time::timeout(Duration::from_secs(10), http_get(port, "/metrics"))
            .await
            .with_context(|| format!("{}: GET /metrics timed out", self.name))?
            .with_context(|| format!("{}: GET http://127.0.0.1:{port}/metrics", self.name))?;
        Ok(Scrape::parse(&text))
    }

    /// The p2p peer id, if the node key was fixed.
    pub fn peer_id(&self) -> Option<&str> {
        self.peer_id.as_deref()
    }

    /// The address to give other nodes as `--bootnodes` (needs a fixed node key).
    pub fn bootnode_addr(&self) -> Result<String> {
        let peer = self.peer_id.as_deref().with_context(|| {
            format!("{} has no fixed --node-key, so no known peer id", self.name)
        })?;
        Ok(format!("/ip4/127.0.0.1/tcp/{}/p2p/{peer}", self.p2p_port))
    }

    /// Stops the node (kills the process); its log stays readable.
    pub fn stop(&self) {
        self.kill();
    }

    /// Stops the node as an operator would: SIGTERM, then up to `grace` for it to exit (it
    /// is killed after that). Returns its exit code, `None` if it had to be killed or died of
    /// a signal.
    pub fn terminate(&self, grace: Duration) -> Option<i32> {
        let mut child = self.child();
        if let Ok(Some(status)) = child.try_wait() {
            return status.code();
        }
        let signalled = std::process::Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .is_ok_and(|s| s.success());
        let deadline = Instant::now() + grace;
        while signalled && Instant::now() < deadline {
            match child.try_wait() {
                Ok(Some(status)) => return status.code(),
                Ok(None) => std::thread::sleep(Duration::from_millis(100)),
                Err(_) => break,
            }
        }
        let _ = child.kill();
        let _ = child.wait();
        None
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child().try_wait(), Ok(None))
    }

    /// The node's log file.
    pub fn log_path(&self) -> &Path {
        &self.log_path
    }

    /// The last `lines` lines of the node's log.
    pub fn log_tail(&self, lines: usize) -> String {
        read_tail(&self.log_path, lines)
    }

    /// The log lines containing every one of `needles`.
    pub fn log_lines_with(&self, needles: &[&str]) -> Vec<String> {
        let text = std::fs::read(&self.log_path)
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default();
        text.lines()
            .filter(|l| needles.iter().all(|n| l.contains(n)))
            .map(str::to_string)
            .collect()
    }
}

/// The latest finalized block of the node at `url`: its number and hash.
pub async fn finalized_head(chain: &Chain) -> Result<(u64, String)> {
    let rpc = chain.rpc();
    let hash: String = rpc
        .request("chain_getFinalizedHead", rpc_params![])
        .await
        .context("chain_getFinalizedHead")?;
    let header: serde_json::Value = rpc
        .request("chain_getHeader", rpc_params![hash.clone()])
        .await
        .context("chain_getHeader")?;
    let number = header
        .get("number")
        .and_then(|n| n.as_str())
        .context("header without a number")?;
    let number = u64::from_str_radix(number.trim_start_matches("0x"), 16)
        .with_context(|| format!("header number {number:?}"))?;
    Ok((number, hash))
}

/// Waits (bounded by `timeout`) until the node behind `chain` has finalized block `height`;
/// returns the finalized number it saw.
pub async fn wait_finalized(chain: &Chain, height: u64, timeout: Duration) -> Result<u64> {
    wait_for(&format!("finalized block #{height}"), timeout, || async {
        match finalized_head(chain).await {
            Ok((n, _)) if n >= height => Ok(Some(n)),
            Ok((n, _)) => Err(format!("finalized #{n}")),
            Err(e) => Err(format!("{e:#}")),
        }
    })
    .await
}

/// Waits (bounded by `timeout`) until the finalized node list the node behind `chain` serves
/// (`psp_nodes`) holds exactly the node keys `want` (`0x` hex).
pub async fn wait_for_node_list(
    chain: &Chain,
    want: &std::collections::BTreeSet<String>,
    what: &str,
    timeout: Duration,
) -> Result<()> {
    wait_for(what, timeout, || async {
        match psp_client::overlay::node_views(chain).await {
            Ok(views) => {
                let got: std::collections::BTreeSet<String> =
                    views.into_iter().map(|v| v.key).collect();
                if &got == want {
                    Ok(Some(()))
                } else {
                    Err(format!("psp_nodes has {got:?}"))
                }
            }
            Err(e) => Err(e.to_string()),
        }
    })
    .await
}

/// The canonical block hash at `height` on the node behind `chain`, if it has one.
pub async fn block_hash_at(chain: &Chain, height: u64) -> Result<Option<String>> {
    chain
        .rpc()
        .request("chain_getBlockHash", rpc_params![height])
        .await
        .context("chain_getBlockHash")
}

/// Polls `check` every 500 ms until it returns `Some`, or fails after `timeout` with `what`
/// and the last observation.
pub async fn wait_for<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<Option<T>, String>>,
{
    let deadline = Instant::now() + timeout;
    let mut last = String::from("not checked yet");
    loop {
        match check().await {
            Ok(Some(v)) => return Ok(v),
            Ok(None) => {}
            Err(e) => last = e,
        }
        if Instant::now() > deadline {
            bail!("{what}: not within {} s (last: {last})", timeout.as_secs());
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Fails with a clear message if `bin --help` does not mention `flag` (an old build).
fn require_flag(bin: &Path, flag: &str) -> Result<()> {
    let out = Command::new(bin)
        .arg("--help")
        .output()
        .with_context(|| format!("running {} --help", bin.display()))?;
    let help = String::from_utf8_lossy(&out.stdout);
    if !help.contains(flag) {
        bail!(
            "{} has no {flag} option: it predates the overlay flags this test needs; rebuild it \
             (`CARGO_TARGET_DIR=$HOME/.cache/psp-target cargo build -p psp-node`)",
            bin.display()
        );
    }
    Ok(())
}

fn hex_of(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The length of the file at `path` (0 if it does not exist yet).
fn log_len(path: &Path) -> u64 {
    std::fs::metadata(path).map(|m| m.len()).unwrap_or(0)
}

fn read_tail(path: &Path, lines: usize) -> String {
    let Ok(mut file) = File::open(path) else {
        return format!("(cannot open {})", path.display());
    };
    // The tail is all we want; 256 KiB covers many lines of Substrate output.
    let len = file.metadata().map(|m| m.len()).unwrap_or(0);
    let _ = file.seek(SeekFrom::Start(len.saturating_sub(256 * 1024)));
    let mut text = String::new();
    let mut bytes = Vec::new();
    if file.read_to_end(&mut bytes).is_ok() {
        text = String::from_utf8_lossy(&bytes).into_owned();
    }
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

impl Drop for PspNode {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "--- last {LOG_TAIL_LINES} lines of the psp-node log of {} ({}) ---\n{}",
                self.name,
                self.log_path.display(),
                self.log_tail(LOG_TAIL_LINES)
            );
        }
        self.kill();
    }
}

/// One scrape of a node's `/metrics`: the samples of the Prometheus text format.
#[derive(Clone, Debug, Default)]
pub struct Scrape {
    /// `(series, value)`, the series as written: `name{label="value",...}` or `name`.
    pub samples: Vec<(String, f64)>,
}

impl Scrape {
    /// The samples of `text` (comment lines and unparsable values are skipped).
    pub fn parse(text: &str) -> Self {
        let samples = text
            .lines()
            .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
            .filter_map(|line| {
                // Label values may hold spaces; the value follows the closing brace.
                let (series, rest) = match line.rfind('}') {
                    Some(end) => line.split_at(end + 1),
                    None => line.split_once(' ')?,
                };
                let value = rest.split_whitespace().next()?.parse().ok()?;
                Some((series.trim().to_string(), value))
            })
            .collect();
        Self { samples }
    }

    /// The metric names present.
    pub fn names(&self) -> std::collections::BTreeSet<&str> {
        self.samples.iter().map(|(s, _)| metric_name(s)).collect()
    }

    /// The sum of `name` over all its label sets, if the metric is present.
    pub fn total(&self, name: &str) -> Option<f64> {
        self.with_labels(name, &[])
    }

    /// The sum of `name` over its series that carry every `label="value"` of `labels`, if
    /// there is one.
    pub fn with_labels(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        let wanted: Vec<String> = labels.iter().map(|(l, v)| format!("{l}=\"{v}\"")).collect();
        self.samples
            .iter()
            .filter(|(s, _)| metric_name(s) == name && wanted.iter().all(|w| s.contains(w)))
            .map(|(_, v)| *v)
            .reduce(|a, b| a + b)
    }
}

fn metric_name(series: &str) -> &str {
    series.split('{').next().unwrap_or(series)
}

/// The body of `GET path` at `127.0.0.1:port` (HTTP/1.0: the server closes after it).
async fn http_get(port: u16, path: &str) -> Result<String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port)).await?;
    stream
        .write_all(format!("GET {path} HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\n\r\n").as_bytes())
        .await?;
    let mut bytes = Vec::new();
    stream.read_to_end(&mut bytes).await?;
    let response = String::from_utf8_lossy(&bytes);
    let (head, body) = response
        .split_once("\r\n\r\n")
        .context("the response has no end of headers")?;
    let status = head.lines().next().unwrap_or_default();
    ensure!(
        status.split_whitespace().nth(1) == Some("200"),
        "answered {status:?}"
    );
    Ok(body.to_string())
}

/// The observe file of the node logging to `log_path`.
fn observe_path(log_path: &Path) -> PathBuf {
    log_path.with_extension("observe")
}

/// Starts `psp-node` for `options` on the given ports and base path, its output appended to
/// `log_path`.
#[allow(clippy::too_many_arguments)]
fn launch(
    options: &NodeOptions,
    rpc_port: u16,
    p2p_port: u16,
    overlay_port: Option<u16>,
    media_port: Option<u16>,
    prometheus_port: Option<u16>,
    base_path: &Path,
    log_path: &Path,
) -> Result<Child> {
    let bin = node_binary()?;
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log_path)
        .context("opening the node log")?;
    let log_err = log.try_clone().context("duplicating the node log handle")?;
    let mut cmd = Command::new(&bin);
    // A base path of its own (not `--tmp`), so a restarted node finds its chain database
    // and overlay secret again.
    cmd.arg("--base-path").arg(base_path);
    match prometheus_port {
        Some(port) => cmd.args(["--prometheus-port", &port.to_string()]),
        None => cmd.arg("--no-prometheus"),
    };
    cmd.args(["--no-telemetry", "--no-mdns"]);
    // Log lines carry their level and target (`WARN ... psp-overlay: refused: ...`).
    cmd.arg("--detailed-log-output");
    match options.chain {
        ChainKind::Dev => cmd.arg("--dev"),
        ChainKind::Local => cmd.args(["--chain", "local"]),
    };
    if let Some(authority) = &options.authority {
        cmd.arg(format!("--{authority}"));
    }
    cmd.args(["--name", &options.name]);
    cmd.args(["--rpc-port", &rpc_port.to_string()]);
    // `--listen-addr` replaces `--port` (the node refuses both) and keeps p2p on loopback.
    cmd.args(["--listen-addr", &format!("/ip4/127.0.0.1/tcp/{p2p_port}")]);
    if let Some(key) = &options.node_key {
        cmd.args(["--node-key", &hex_of(key)]);
    }
    for boot in &options.bootnodes {
        cmd.args(["--bootnodes", boot]);
    }
    match (&options.overlay, overlay_port) {
        (Some(overlay), Some(port)) => {
            if overlay.circuit_rate.is_some() || overlay.circuit_burst.is_some() {
                require_flag(&bin, "--overlay-circuit-rate")?;
            }
            cmd.args(["--overlay-port", &port.to_string()]);
            if let Some(seed) = &overlay.seed {
                cmd.args(["--overlay-seed", seed]);
            }
            if let Some(rate) = overlay.circuit_rate {
                cmd.args(["--overlay-circuit-rate", &rate.to_string()]);
            }
            if let Some(burst) = overlay.circuit_burst {
                cmd.args(["--overlay-circuit-burst", &burst.to_string()]);
            }
            if overlay.debug_log {
                cmd.args(["-l", "psp-overlay=debug"]);
            }
            if overlay.observe {
                cmd.arg("--overlay-observe-file")
                    .arg(observe_path(log_path));
            }
            if let Some((period, window)) = overlay.directory_timing {
                cmd.args(["--directory-period", &period.to_string()]);
                cmd.args(["--directory-vote-window", &window.to_string()]);
            }
            // Session puzzles of a few milliseconds (debug builds hash slowly).
            cmd.args(["--usage-puzzle-bits", &PUZZLE_BITS.to_string()]);
            match media_port {
                // A small capacity (1 Mbit/s) and a report a second: a test stream scales
                // with a few consumers, within seconds.
                Some(port) => cmd.args([
                    "--media-port",
                    &port.to_string(),
                    "--media-capacity",
                    "1",
                    "--media-load-report-secs",
                    "1",
                ]),
                None => cmd.arg("--no-media"),
            };
        }
        _ => {
            cmd.arg("--no-overlay");
        }
    }
    cmd.args(&options.extra_args);
    cmd.stdin(Stdio::null())
        .stdout(Stdio::from(log))
        .stderr(Stdio::from(log_err))
        .spawn()
        .with_context(|| format!("starting {}", bin.display()))
}

/// Starts a `--chain local` network on loopback: the first name is the bootnode of the rest
/// (alice, bob and charlie are authorities; others are plain nodes). With `overlay`, every
/// node runs it on its own free port with the overlay seed `psp-e2e-<name>`. Returns once
/// every node's RPC answers (finality needs all three authorities, so it is not awaited here).
pub async fn start_local_network(
    names: &[&str],
    overlay: Option<OverlayOptions>,
) -> Result<Vec<PspNode>> {
    start_local_network_with(names, overlay, |_| {}).await
}

/// [`start_local_network`], with `tune` applied to every node's options before it starts
/// (e.g. to turn on [`NodeOptions::prometheus`]).
pub async fn start_local_network_with(
    names: &[&str],
    overlay: Option<OverlayOptions>,
    tune: impl Fn(&mut NodeOptions),
) -> Result<Vec<PspNode>> {
    let mut nodes: Vec<PspNode> = Vec::with_capacity(names.len());
    let mut boot = None;
    for name in names {
        let mut options = NodeOptions::local(name);
        options.overlay = overlay.clone().map(|o| OverlayOptions {
            seed: Some(o.seed.unwrap_or_else(|| format!("psp-e2e-{name}"))),
            ..o
        });
        if let Some(addr) = &boot {
            options.bootnodes.push(String::clone(addr));
        }
        tune(&mut options);
        let node = PspNode::spawn(options)?;
        if boot.is_none() {
            boot = Some(node.bootnode_addr()?);
        }
        nodes.push(node);
    }
    for node in &mut nodes {
        node.wait_ready(false).await?;
    }
    Ok(nodes)
}

/// Runs `scenario` within `timeout`. On an error or a timeout the returned error carries the
/// last log lines of every node in `nodes`, so a failed end-to-end test shows what the nodes saw.
pub async fn run_scenario(
    nodes: &[PspNode],
    timeout: Duration,
    scenario: impl std::future::Future<Output = Result<()>>,
) -> Result<()> {
    let tails = || {
        nodes
            .iter()
            .map(|n| format!("--- {} log tail ---\n{}", n.name(), n.log_tail(30)))
            .collect::<Vec<_>>()
            .join("\n")
    };
    match tokio::time::timeout(timeout, scenario).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(anyhow::anyhow!("{e:#}\n{}", tails())),
        Err(_) => Err(anyhow::anyhow!(
            "scenario did not finish within {} s\n{}",
            timeout.as_secs(),
            tails()
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scrape_parses_the_text_format() {
        let text = "# HELP psp_overlay_links Usable links.\n\
                    # TYPE psp_overlay_links gauge\n\
                    psp_overlay_links{chain=\"local testnet\"} 3\n\
                    psp_overlay_circuits_closed_total{chain=\"c\",reason=\"integrity\"} 1\n\
                    psp_overlay_circuits_closed_total{chain=\"c\",reason=\"requested\"} 4\n\
                    process_start_time_seconds 1.7e9\n";
        let scrape = Scrape::parse(text);
        assert_eq!(scrape.total("psp_overlay_links"), Some(3.0));
        assert_eq!(scrape.total("psp_overlay_circuits_closed_total"), Some(5.0));
        assert_eq!(
            scrape.with_labels(
                "psp_overlay_circuits_closed_total",
                &[("reason", "integrity")]
            ),
            Some(1.0)
        );
        assert_eq!(scrape.total("process_start_time_seconds"), Some(1.7e9));
        assert_eq!(scrape.total("psp_overlay_circuits_open"), None);
        assert!(scrape.names().contains("psp_overlay_links"));
    }

    #[test]
    fn free_ports_are_nonzero() {
        assert_ne!(free_port().unwrap(), 0);
        let ports = free_ports(3).unwrap();
        assert!(ports[0] != ports[1] && ports[1] != ports[2] && ports[0] != ports[2]);
    }

    #[test]
    fn node_keys_are_distinct_and_give_peer_ids() {
        let names = ["alice", "bob", "charlie", "dave"];
        let keys: Vec<[u8; 32]> = names.iter().map(|n| node_key_for(n)).collect();
        for (i, a) in keys.iter().enumerate() {
            for b in &keys[i + 1..] {
                assert_ne!(a, b);
            }
        }
        let peer = peer_id_of_node_key(&keys[0]).unwrap();
        assert!(peer.starts_with("12D3KooW"), "{peer}");
        assert_eq!(peer, peer_id_of_node_key(&keys[0]).unwrap());
    }

    #[test]
    fn tail_keeps_the_last_lines() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log");
        std::fs::write(&path, "a\nb\nc\nd\n").unwrap();
        assert_eq!(read_tail(&path, 2), "c\nd");
        assert_eq!(read_tail(&path, 10), "a\nb\nc\nd");
    }
}
