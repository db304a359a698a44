//! The client: an async API over a [`Client`] core driven over libp2p links.
//!
//! ```no_run
//! # use psp_net::driver::{ClientConfig, ClientHandle, NodeDescriptor};
//! # async fn f(path: Vec<NodeDescriptor>) -> Result<(), psp_net::driver::DriverError> {
//! let (client, task) = ClientHandle::new(ClientConfig::default())?;
//! tokio::spawn(task.run());
//! let circuit = client.build_circuit(&path).await?;      // N hops, chosen by the caller
//! let mut stream = circuit.open_stream("echo").await?;
//! stream.send(b"hello").await?;
//! let reply = stream.recv().await;
//! circuit.destroy().await?;
//! # Ok(()) }
//! ```
//!
//! There is no SENDME flow control, so the client paces itself: every circuit has a token
//! bucket ([`ClientConfig::send_rate`], by default the relays' default circuit rate) and
//! [`StreamWriter::send`] waits for tokens. Received data goes into a bounded per-stream
//! buffer; if the application does not read and it fills, the circuit is destroyed (logged)
//! rather than buffering without bound.
//!
//! Test-only: `Circuit::tamper_next_cell_for_tests` makes the task flip one bit of the next
//! RELAY cell it sends on a circuit, after encryption, so tests can show that the entry hop
//! detects the modification and the circuit dies. It exists only with the `test-hooks`
//! feature (off by default), nothing in the crate or in `psp-client` calls it, and it never
//! changes a cell unless it was called.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use libp2p::{Multiaddr, PeerId};
use rand_core::OsRng;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::Instant;

use super::link::{Hello, LinkEvent, Links};
use super::{build_swarm, require_runtime, Clock, DriverError, LinkConfig, NodeDescriptor};
use crate::cell::{max_forward_data, Cell, ChanMsg, DestroyReason, StreamId, CELL_HEADER_LEN};
use crate::circuit::client::MAX_HOPS;
use crate::circuit::{
    CircuitError, CircuitHandle, Client, ClientEvent, Peer, Rate, TokenBucket, Transmit,
};
use crate::crypto::{NodeId, TAG_LEN};

/// Configuration of a client. Defaults are documented per field.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientConfig {
    /// Links: idle timeout (180 s), dial and hello timeouts (10 s), queue bounds.
    pub link: LinkConfig,
    /// What this client sends per circuit. Default: the relays' default circuit rate, 10
    /// cells/s with a burst of 100. Sending faster overflows the relays' queues, which
    /// destroys the circuit.
    pub send_rate: Rate,
    /// Time to build a whole circuit. Default 30 s.
    pub build_timeout: Duration,
    /// Messages (≤ 486 bytes each) buffered per stream for the reader. Default 1 024.
    pub stream_buffer: usize,
    /// Capacity of the command channel from handles. Default 256.
    pub commands: usize,
}

impl Default for ClientConfig {
    fn default() -> Self {
        Self {
            link: LinkConfig::default(),
            send_rate: crate::circuit::Config::default().circuit_rate,
            build_timeout: Duration::from_secs(30),
            stream_buffer: 1_024,
            commands: 256,
        }
    }
}

/// Why a circuit closed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CircuitClosed {
    /// The DESTROY reason (received, sent, or `LinkClosed`).
    pub reason: DestroyReason,
    /// The local cause, if this client decided to close.
    pub cause: Option<CircuitError>,
}

type Reply<T> = oneshot::Sender<Result<T, DriverError>>;

enum Command {
    Build {
        path: Vec<NodeDescriptor>,
        reply: Reply<Circuit>,
    },
    Open {
        circuit: CircuitHandle,
        service: String,
        reply: Reply<CircuitStream>,
    },
    Data {
        circuit: CircuitHandle,
        stream: StreamId,
        data: Vec<u8>,
    },
    CloseStream {
        circuit: CircuitHandle,
        stream: StreamId,
    },
    Destroy {
        circuit: CircuitHandle,
        reply: oneshot::Sender<()>,
    },
    /// Test-only: corrupt the next RELAY cell sent on `circuit`.
    #[cfg(feature = "test-hooks")]
    TamperNextCell {
        circuit: CircuitHandle,
        reply: Reply<()>,
    },
    Shutdown,
}

/// The byte of a cell the test-only tamper hook changes: the first byte of the onion
/// ciphertext after the entry hop's 16-byte tag, so the entry's AEAD check fails.
const TAMPER_OFFSET: usize = CELL_HEADER_LEN + TAG_LEN;

/// The client's async API; cheap to clone.
#[derive(Clone)]
pub struct ClientHandle {
    cmd: mpsc::Sender<Command>,
    peer_id: PeerId,
}

impl std::fmt::Debug for ClientHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientHandle").finish_non_exhaustive()
    }
}

impl ClientHandle {
    /// A client with a fresh libp2p key (so its links are not linkable across runs). Call
    /// from inside a tokio runtime, then `tokio::spawn(task.run())`.
    pub fn new(config: ClientConfig) -> Result<(Self, ClientTask), DriverError> {
        require_runtime()?;
        let key = super::Keypair::generate_ed25519();
        let peer_id = key.public().to_peer_id();
        let swarm = build_swarm(key, &config.link, None)?;
        let (cmd_tx, cmd_rx) = mpsc::channel(config.commands.max(1));
        let links = Links::new(swarm, config.link.clone(), Hello::Client, false);
        let sweep =
            (config.link.idle_timeout / 4).clamp(Duration::from_millis(10), Duration::from_secs(1));
        let handle = Self {
            cmd: cmd_tx,
            peer_id,
        };
        let task = ClientTask {
            core: Client::new(Box::new(OsRng)),
            links,
            clock: Clock::new(),
            commands: cmd_rx,
            handle: handle.cmd.downgrade(),
            entries: HashMap::new(),
            builds: HashMap::new(),
            circuits: HashMap::new(),
            tamper: HashSet::new(),
            sweep,
            config,
        };
        Ok((handle, task))
    }

    /// The libp2p peer id of this client's links (fresh for every client): what its entry
    /// nodes see of it besides its address.
    pub fn peer_id(&self) -> PeerId {
        self.peer_id
    }

    /// Builds a circuit through `path` (entry first), one hop at a time; fails if any hop
    /// refuses, a link fails, or it takes longer than [`ClientConfig::build_timeout`].
    pub async fn build_circuit(&self, path: &[NodeDescriptor]) -> Result<Circuit, DriverError> {
        let (reply, rx) = oneshot::channel();
        let path = path.to_vec();
        self.cmd
            .send(Command::Build { path, reply })
            .await
            .map_err(|_| DriverError::Stopped)?;
        rx.await.map_err(|_| DriverError::Stopped)?
    }

    /// Stops the client: every circuit and link closes.
    pub async fn shutdown(&self) {
        let _ = self.cmd.send(Command::Shutdown).await;
    }
}

/// Per-circuit send pacing, shared by the circuit's streams.
struct Pacer {
    bucket: Mutex<TokenBucket>,
    clock: Clock,
}

impl Pacer {
    async fn wait(&self) {
        loop {
            let at = {
                let mut b = self.bucket.lock().unwrap_or_else(|e| e.into_inner());
                if b.ready(self.clock.now()) {
                    b.take();
                    return;
                }
                b.ready_at()
            };
            match at {
                Some(t) => tokio::time::sleep_until(self.clock.instant(t)).await,
                // Rate 0: never send.
                None => futures::future::pending::<()>().await,
            }
        }
    }
}

/// A built circuit. Dropping it does not destroy it; call [`Circuit::destroy`].
pub struct Circuit {
    id: CircuitHandle,
    path: Vec<NodeId>,
    cmd: mpsc::Sender<Command>,
    closed: watch::Receiver<Option<CircuitClosed>>,
}

impl std::fmt::Debug for Circuit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Circuit")
            .field("id", &self.id)
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl Circuit {
    /// The core's handle of this circuit.
    pub fn id(&self) -> CircuitHandle {
        self.id
    }

    /// The hops, entry first.
    pub fn path(&self) -> &[NodeId] {
        &self.path
    }

    /// Largest payload of one DATA cell on this circuit (454 bytes on 3 hops).
    pub fn max_data(&self) -> usize {
        max_forward_data(self.path.len())
    }

    /// Why the circuit closed, if it has.
    pub fn close_reason(&self) -> Option<CircuitClosed> {
        self.closed.borrow().clone()
    }

    /// Waits until the circuit closes, and says why.
    pub async fn closed(&self) -> CircuitClosed {
        let mut rx = self.closed.clone();
        loop {
            if let Some(c) = rx.borrow_and_update().clone() {
                return c;
            }
            if rx.changed().await.is_err() {
                // The task stopped: every circuit is gone with it.
                return CircuitClosed {
                    reason: DestroyReason::LinkClosed,
                    cause: None,
                };
            }
        }
    }

    /// Opens a stream to `service` at the last hop; waits for CONNECTED.
    pub async fn open_stream(&self, service: &str) -> Result<CircuitStream, DriverError> {
        let (reply, rx) = oneshot::channel();
        let cmd = Command::Open {
            circuit: self.id,
            service: service.to_owned(),
            reply,
        };
        self.cmd.send(cmd).await.map_err(|_| DriverError::Stopped)?;
        rx.await.map_err(|_| DriverError::Stopped)?
    }

    /// Destroys the circuit (DESTROY to the entry, which propagates it).
    pub async fn destroy(self) -> Result<(), DriverError> {
        let (reply, rx) = oneshot::channel();
        let cmd = Command::Destroy {
            circuit: self.id,
            reply,
        };
        self.cmd.send(cmd).await.map_err(|_| DriverError::Stopped)?;
        rx.await.map_err(|_| DriverError::Stopped)
    }

    /// **Test-only fault injection; never use it outside tests.** Makes the client flip one
    /// bit of the next RELAY cell it sends on this circuit, after onion encryption (in the
    /// entry hop's ciphertext). The entry hop's integrity check then fails, and it destroys
    /// the circuit in both directions with [`DestroyReason::Integrity`]: the client sees
    /// [`Circuit::closed`] with that reason and further sends fail.
    ///
    /// Only the one next RELAY cell of this circuit is changed (RELAY_EARLY, CREATE and
    /// DESTROY cells and other circuits are not). The hook is armed once the command has
    /// reached the client task, i.e. when this returns; fails with
    /// [`CircuitError::NoSuchCircuit`] if the circuit has already closed.
    ///
    /// Only with psp-net's `test-hooks` cargo feature, off by default: the dev-dependencies of
    /// the crates whose tests call it (psp-net itself, psp-e2e-tests) turn it on, so a plain
    /// `cargo build -p psp-node` does not have it. (A whole-workspace build unifies features
    /// and compiles it in; it still does nothing unless called.)
    #[cfg(feature = "test-hooks")]
    pub async fn tamper_next_cell_for_tests(&self) -> Result<(), DriverError> {
        let (reply, rx) = oneshot::channel();
        let cmd = Command::TamperNextCell {
            circuit: self.id,
            reply,
        };
        self.cmd.send(cmd).await.map_err(|_| DriverError::Stopped)?;
        rx.await.map_err(|_| DriverError::Stopped)?
    }
}

/// An open stream: a writer and a reader, which [`CircuitStream::into_split`] separates so
/// two tasks can send and receive at once.
#[derive(Debug)]
pub struct CircuitStream {
    writer: StreamWriter,
    reader: StreamReader,
}

impl CircuitStream {
    /// Sends bytes (paced; see [`StreamWriter::send`]).
    pub async fn send(&self, data: &[u8]) -> Result<(), DriverError> {
        self.writer.send(data).await
    }

    /// Next bytes received; `None` once the stream or circuit has closed.
    pub async fn recv(&mut self) -> Option<Vec<u8>> {
        self.reader.recv().await
    }

    /// The two halves.
    pub fn into_split(self) -> (StreamWriter, StreamReader) {
        (self.writer, self.reader)
    }
}

/// The sending half of a stream; cheap to clone.
#[derive(Clone)]
pub struct StreamWriter {
    circuit: CircuitHandle,
    stream: StreamId,
    max_data: usize,
    cmd: mpsc::Sender<Command>,
    closed: watch::Receiver<Option<CircuitClosed>>,
    pacer: Arc<Pacer>,
}

impl std::fmt::Debug for StreamWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StreamWriter")
            .field("circuit", &self.circuit)
            .field("stream", &self.stream)
            .finish_non_exhaustive()
    }
}

impl StreamWriter {
    /// Sends `data` in cells of at most the circuit's DATA size, each waiting for the
    /// circuit's pacing token. Fails once the circuit has closed.
    pub async fn send(&self, data: &[u8]) -> Result<(), DriverError> {
        for chunk in data.chunks(self.max_data.max(1)) {
            self.pacer.wait().await;
            if let Some(c) = self.closed.borrow().clone() {
                return Err(DriverError::CircuitClosed(c));
            }
            let cmd = Command::Data {
                circuit: self.circuit,
                stream: self.stream,
                data: chunk.to_vec(),
            };
            self.cmd.send(cmd).await.map_err(|_| DriverError::Stopped)?;
        }
        Ok(())
    }

    /// Ends the stream (END to the service).
    pub async fn close(self) -> Result<(), DriverError> {
        let cmd = Command::CloseStream {
            circuit: self.circuit,
            stream: self.stream,
        };
        self.cmd.send(cmd).await.map_err(|_| DriverError::Stopped)
    }
}

/// The receiving half of a stream.
#[derive(Debug)]
pub struct StreamReader {
    rx: mpsc::Receiver<Vec<u8>>,
}

impl StreamReader {
    /// Next bytes received; `None` once the stream or circuit has closed.
    pub async fn recv(&mut self) -> Option<Vec<u8>> {
        self.rx.recv().await
    }
}

struct Build {
    path: Vec<NodeDescriptor>,
    reply: Reply<Circuit>,
    deadline: Instant,
}

enum StreamState {
    Opening {
        service: String,
        reply: Reply<CircuitStream>,
        tx: mpsc::Sender<Vec<u8>>,
        rx: mpsc::Receiver<Vec<u8>>,
    },
    Open(mpsc::Sender<Vec<u8>>),
}

struct CircState {
    closed: watch::Sender<Option<CircuitClosed>>,
    pacer: Arc<Pacer>,
    hops: usize,
    streams: HashMap<StreamId, StreamState>,
}

/// The client's task; run it with `tokio::spawn(task.run())`.
pub struct ClientTask {
    core: Client,
    links: Links,
    clock: Clock,
    commands: mpsc::Receiver<Command>,
    /// For the handles the task creates (circuits, streams); weak, so that the task stops
    /// when the application has dropped every handle.
    handle: mpsc::WeakSender<Command>,
    /// Where the entry nodes in use are.
    entries: HashMap<NodeId, (PeerId, Multiaddr)>,
    builds: HashMap<CircuitHandle, Build>,
    circuits: HashMap<CircuitHandle, CircState>,
    /// Test-only: circuits whose next RELAY cell is to be corrupted
    /// (`Circuit::tamper_next_cell_for_tests`, `test-hooks` feature); empty otherwise.
    tamper: HashSet<CircuitHandle>,
    sweep: Duration,
    config: ClientConfig,
}

impl ClientTask {
    /// Runs the client until it is shut down or every handle is dropped.
    pub async fn run(mut self) {
        let mut sweep = tokio::time::interval(self.sweep);
        sweep.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            self.flush();
            tokio::select! {
                cmd = self.commands.recv() => match cmd {
                    None | Some(Command::Shutdown) => break,
                    Some(cmd) => self.on_command(cmd),
                },
                Some(msg) = self.links.from_links.recv() => {
                    let entries = &self.entries;
                    let resolve = |n: &NodeId| lookup(entries, n);
                    self.links.on_link_msg(msg, &resolve);
                }
                ev = self.links.swarm.select_next_some() => self.links.on_swarm_event(ev),
                _ = sweep.tick() => self.on_sweep(),
            }
        }
        for (_, c) in self.circuits.drain() {
            let _ = c.closed.send(Some(CircuitClosed {
                reason: DestroyReason::Requested,
                cause: None,
            }));
        }
    }

    fn on_command(&mut self, cmd: Command) {
        match cmd {
            Command::Build { path, reply } => self.start_build(path, reply),
            Command::Open {
                circuit,
                service,
                reply,
            } => {
                let Some(c) = self.circuits.get_mut(&circuit) else {
                    let _ = reply.send(Err(CircuitError::NoSuchCircuit.into()));
                    return;
                };
                match self.core.open_stream(circuit, &service) {
                    Ok(stream) => {
                        let (tx, rx) = mpsc::channel(self.config.stream_buffer.max(1));
                        c.streams.insert(
                            stream,
                            StreamState::Opening {
                                service,
                                reply,
                                tx,
                                rx,
                            },
                        );
                    }
                    Err(e) => {
                        let _ = reply.send(Err(e.into()));
                    }
                }
            }
            Command::Data {
                circuit,
                stream,
                data,
            } => {
                if let Err(e) = self.core.send(circuit, stream, &data) {
                    tracing::debug!(?circuit, %e, "psp client: data not sent");
                }
            }
            Command::CloseStream { circuit, stream } => {
                if let Some(c) = self.circuits.get_mut(&circuit) {
                    c.streams.remove(&stream);
                }
                let _ = self.core.close_stream(circuit, stream);
            }
            Command::Destroy { circuit, reply } => {
                let _ = self.core.destroy(circuit);
                let _ = reply.send(());
            }
            #[cfg(feature = "test-hooks")]
            Command::TamperNextCell { circuit, reply } => {
                if self.circuits.contains_key(&circuit) {
                    tracing::warn!(
                        ?circuit,
                        "psp client: test hook armed: the next RELAY cell will be corrupted"
                    );
                    self.tamper.insert(circuit);
                    let _ = reply.send(Ok(()));
                } else {
                    let _ = reply.send(Err(CircuitError::NoSuchCircuit.into()));
                }
            }
            Command::Shutdown => {}
        }
    }

    fn start_build(&mut self, path: Vec<NodeDescriptor>, reply: Reply<Circuit>) {
        let Some(entry) = path.first().filter(|_| path.len() <= MAX_HOPS) else {
            let _ = reply.send(Err(DriverError::BadPath(path.len())));
            return;
        };
        self.entries
            .insert(entry.id, (entry.peer_id, entry.address.clone()));
        // The descriptor is authoritative: a link to this node id at another peer id is
        // closed first (and the core told, before the new circuit exists).
        self.links.retarget(entry.id, entry.peer_id);
        self.flush();
        match self.core.build(entry.id, entry.onion_key) {
            Ok(h) => {
                let deadline = Instant::now() + self.config.build_timeout;
                self.builds.insert(
                    h,
                    Build {
                        path,
                        reply,
                        deadline,
                    },
                );
            }
            Err(e) => {
                let _ = reply.send(Err(e.into()));
            }
        }
    }

    fn on_sweep(&mut self) {
        let now = Instant::now();
        let late: Vec<CircuitHandle> = self
            .builds
            .iter()
            .filter(|(_, b)| b.deadline <= now)
            .map(|(h, _)| *h)
            .collect();
        for h in late {
            if let Some(b) = self.builds.remove(&h) {
                tracing::info!(circuit = ?h, "psp client: circuit build timed out");
                let _ = self.core.destroy(h);
                let _ = b.reply.send(Err(DriverError::Timeout {
                    what: "circuit build",
                    after: self.config.build_timeout,
                }));
            }
        }
        let core = &self.core;
        self.links.sweep(&|p| match p {
            Peer::Node(n) => core.circuits_via(*n) > 0,
            Peer::Client(_) => false,
        });
        // Forget entries with no circuit and no link (a new build adds them back).
        let links = &self.links;
        self.entries
            .retain(|n, _| core.circuits_via(*n) > 0 || links.is_up(&Peer::Node(*n)));
    }

    /// Sends what the core has to send, handles its events and the links' events, until
    /// nothing is left.
    fn flush(&mut self) {
        loop {
            let mut progress = false;
            while let Some(mut t) = self.core.poll_transmit() {
                if !self.tamper.is_empty() {
                    self.tamper_if_armed(&mut t);
                }
                let entries = &self.entries;
                let resolve = |n: &NodeId| lookup(entries, n);
                self.links.send(t.to, t.cell, &resolve);
                progress = true;
            }
            while let Some(e) = self.core.poll_event() {
                self.on_core_event(e);
                progress = true;
            }
            while let Some(e) = self.links.poll_event() {
                self.on_link_event(e);
                progress = true;
            }
            if !progress {
                break;
            }
        }
    }

    /// Test-only (`Circuit::tamper_next_cell_for_tests`, `test-hooks` feature): flips one bit of `t` if it is a
    /// RELAY cell of a circuit whose hook is armed, and disarms the hook.
    fn tamper_if_armed(&mut self, t: &mut Transmit) {
        let Peer::Node(entry) = t.to else {
            return;
        };
        let Ok(cell) = Cell::decode(&t.cell[..]) else {
            return;
        };
        if !matches!(cell.msg, ChanMsg::Relay(_)) {
            return;
        }
        let circuit = CircuitHandle {
            entry,
            id: cell.circ_id,
        };
        if self.tamper.remove(&circuit) {
            t.cell[TAMPER_OFFSET] ^= 0x01;
            tracing::warn!(
                ?circuit,
                "psp client: test hook flipped one bit of a RELAY cell"
            );
        }
    }

    fn on_link_event(&mut self, e: LinkEvent) {
        match e {
            LinkEvent::Cell {
                peer: Peer::Node(n),
                cell,
            } => self.core.handle_cell(n, &cell[..]),
            LinkEvent::Cell { .. } => {}
            LinkEvent::Up { peer, peer_id } => {
                tracing::debug!(?peer, %peer_id, "psp client: link up");
            }
            LinkEvent::Down {
                peer,
                peer_id,
                reason,
            } => {
                tracing::info!(?peer, %peer_id, %reason, "psp client: link closed");
                if let Peer::Node(n) = peer {
                    self.core.handle_link_closed(n);
                }
            }
            LinkEvent::Refused { peer_id, reason } => {
                tracing::warn!(%peer_id, %reason, "psp client: link refused");
            }
            LinkEvent::DialFailed { node, reason } => {
                tracing::info!(?node, %reason, "psp client: entry unreachable");
                self.core.handle_link_closed(node);
            }
            LinkEvent::Listening(_) => {}
        }
    }

    fn on_core_event(&mut self, e: ClientEvent) {
        match e {
            ClientEvent::Extended { circuit, hops } => self.on_extended(circuit, hops),
            ClientEvent::StreamOpened { circuit, stream } => {
                let Some(c) = self.circuits.get_mut(&circuit) else {
                    return;
                };
                let Some(StreamState::Opening { reply, tx, rx, .. }) = c.streams.remove(&stream)
                else {
                    return;
                };
                let Some(cmd) = self.handle.upgrade() else {
                    return;
                };
                let s = CircuitStream {
                    writer: StreamWriter {
                        circuit,
                        stream,
                        max_data: max_forward_data(c.hops),
                        cmd,
                        closed: c.closed.subscribe(),
                        pacer: c.pacer.clone(),
                    },
                    reader: StreamReader { rx },
                };
                if reply.send(Ok(s)).is_ok() {
                    c.streams.insert(stream, StreamState::Open(tx));
                } else {
                    let _ = self.core.close_stream(circuit, stream);
                }
            }
            ClientEvent::Data {
                circuit,
                stream,
                data,
            } => self.on_data(circuit, stream, data),
            ClientEvent::StreamClosed {
                circuit,
                stream,
                reason,
            } => {
                let Some(c) = self.circuits.get_mut(&circuit) else {
                    return;
                };
                if let Some(StreamState::Opening { service, reply, .. }) = c.streams.remove(&stream)
                {
                    let _ = reply.send(Err(DriverError::StreamRefused { service, reason }));
                }
            }
            ClientEvent::Closed {
                circuit,
                reason,
                cause,
            } => {
                let closed = CircuitClosed { reason, cause };
                self.tamper.remove(&circuit);
                tracing::debug!(?circuit, %closed, "psp client: circuit closed");
                if let Some(b) = self.builds.remove(&circuit) {
                    let _ = b
                        .reply
                        .send(Err(DriverError::CircuitClosed(closed.clone())));
                }
                if let Some(c) = self.circuits.remove(&circuit) {
                    for (_, s) in c.streams {
                        if let StreamState::Opening { reply, .. } = s {
                            let _ = reply.send(Err(DriverError::CircuitClosed(closed.clone())));
                        }
                    }
                    let _ = c.closed.send(Some(closed));
                }
            }
            // `ClientEvent` is `#[non_exhaustive]` (it lives in psp-onion): every event it has
            // now is handled above; one added there is logged until the driver handles it.
            other => tracing::debug!(?other, "psp client: core event not handled"),
        }
    }

    fn on_extended(&mut self, circuit: CircuitHandle, hops: usize) {
        let Some(b) = self.builds.get(&circuit) else {
            return;
        };
        if let Some(next) = b.path.get(hops) {
            if let Err(e) = self.core.extend(circuit, next.id, next.onion_key) {
                if let Some(b) = self.builds.remove(&circuit) {
                    let _ = b.reply.send(Err(e.into()));
                }
                let _ = self.core.destroy(circuit);
            }
            return;
        }
        let Some(b) = self.builds.remove(&circuit) else {
            return;
        };
        let Some(cmd) = self.handle.upgrade() else {
            let _ = self.core.destroy(circuit);
            return;
        };
        let (closed_tx, closed_rx) = watch::channel(None);
        let pacer = Arc::new(Pacer {
            bucket: Mutex::new(TokenBucket::new(self.config.send_rate, self.clock.now())),
            clock: self.clock,
        });
        let c = Circuit {
            id: circuit,
            path: b.path.iter().map(|d| d.id).collect(),
            cmd,
            closed: closed_rx,
        };
        if b.reply.send(Ok(c)).is_ok() {
            self.circuits.insert(
                circuit,
                CircState {
                    closed: closed_tx,
                    pacer,
                    hops,
                    streams: HashMap::new(),
                },
            );
        } else {
            // The caller gave up waiting.
            let _ = self.core.destroy(circuit);
        }
    }

    fn on_data(&mut self, circuit: CircuitHandle, stream: StreamId, data: Vec<u8>) {
        let Some(c) = self.circuits.get_mut(&circuit) else {
            return;
        };
        let Some(StreamState::Open(tx)) = c.streams.get(&stream) else {
            return;
        };
        match tx.try_send(data) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(_)) => {
                tracing::warn!(
                    ?circuit,
                    buffer = self.config.stream_buffer,
                    "psp client: stream buffer full (application not reading); destroying circuit"
                );
                let _ = self.core.destroy(circuit);
            }
            Err(mpsc::error::TrySendError::Closed(_)) => {
                c.streams.remove(&stream);
                let _ = self.core.close_stream(circuit, stream);
            }
        }
    }
}

fn lookup(
    entries: &HashMap<NodeId, (PeerId, Multiaddr)>,
    node: &NodeId,
) -> Result<(PeerId, Multiaddr), String> {
    entries
        .get(node)
        .cloned()
        .ok_or_else(|| "not an entry node of this client".to_owned())
}
