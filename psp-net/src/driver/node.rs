//! The relay node task: a [`Relay`] core driven over libp2p links.
//!
//! Embedding (the host program, e.g. psp-node):
//!
//! ```no_run
//! # use std::sync::Arc;
//! # use psp_net::driver::{Node, NodeConfig, NodeSecrets, NodeEvent};
//! # use psp_net::circuit::NodeDirectory;
//! # async fn embed(secrets: NodeSecrets, dir: Arc<dyn NodeDirectory + Send + Sync>)
//! #     -> Result<(), psp_net::driver::DriverError> {
//! let Node { handle, mut events, task } = Node::new(NodeConfig::default(), secrets, dir)?;
//! let join = tokio::spawn(task.run());
//! println!("listening on {:?}", handle.listen_addrs().await?);
//! while let Some(event) = events.recv().await {
//!     if let NodeEvent::Relay(e) = event { println!("{e:?}") }
//! }
//! handle.shutdown().await;
//! let _ = join.await;
//! # Ok(()) }
//! ```
//!
//! The task stops on [`NodeHandle::shutdown`] or when every [`NodeHandle`] is dropped.

use std::sync::Arc;
use std::time::Duration;

use futures::stream::FuturesUnordered;
use futures::StreamExt;
use libp2p::swarm::SwarmEvent;
use libp2p::{Multiaddr, PeerId};
use rand_core::OsRng;
use tokio::sync::{mpsc, oneshot};

use super::behaviour::OverlayEvent;
use super::counts::{CountsBehaviour, CountsNode, CountsReceived, OraclePeer};
use super::dht::{Dht, DhtGetReport, DhtPutReport, DhtSetup, DhtStore};
use super::directory::{DirBehaviour, DirectoryNode, DirectorySetup, DiscoveryView};
use super::link::{Hello, LinkEvent, Links};
use super::{
    build_swarm, require_runtime, resolve, unix_now, Clock, DriverError, Keypair, LinkConfig,
    NodeDescriptor,
};
use crate::circuit::{self, NodeDirectory, NodeRecord, Peer, Relay, RelayEvent, Services};
use crate::circuit::{ServiceHub, Timestamp};
use crate::crypto::{NodeId, OnionPublic, OnionSecret};
use crate::dht::RecordKey;
use crate::directory::Equivocation;
use crate::driver::messaging::{MessagingHub, MessagingSetup, SharedQueues};
use crate::driver::streams::{CreatedStream, StreamHub, StreamSetup};
use crate::driver::usage::{SharedUsage, UsageHub};
use crate::rendezvous::StreamHandle;

/// Configuration of a relay node. Defaults are documented per field.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeConfig {
    /// Where to listen. Default `/ip4/0.0.0.0/tcp/0` (every interface, an ephemeral port):
    /// a real node sets the address it registered on chain.
    pub listen: Multiaddr,
    /// Links: idle timeout (180 s), dial and hello timeouts (10 s), queue bounds.
    pub link: LinkConfig,
    /// The relay core's limits (rates, caps, queues): [`circuit::Config`] defaults.
    pub limits: circuit::Config,
    /// Capacity of the event channel. Default 1 024; when full, events are dropped and
    /// counted ([`NodeStats::events_dropped`]), the node never waits for its host.
    pub events: usize,
    /// Capacity of the command channel from [`NodeHandle`]s. Default 64.
    pub commands: usize,
}

impl Default for NodeConfig {
    fn default() -> Self {
        Self {
            listen: "/ip4/0.0.0.0/tcp/0"
                .parse()
                .unwrap_or_else(|_| Multiaddr::empty()),
            link: LinkConfig::default(),
            limits: circuit::Config::default(),
            events: 1_024,
            commands: 64,
        }
    }
}

/// The secrets of a node.
pub struct NodeSecrets {
    /// The node's identity (its registered sr25519 public key).
    pub id: NodeId,
    /// The X25519 onion secret whose public part is registered on chain.
    pub onion: OnionSecret,
    /// The libp2p key (its peer id is registered on chain in the node's address).
    pub link_key: Keypair,
}

impl std::fmt::Debug for NodeSecrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodeSecrets")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

/// What a node reports to its host.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum NodeEvent {
    /// Now listening on this address.
    Listening(Multiaddr),
    /// An event of the relay core (circuits created and closed, refused extends, ...).
    Relay(RelayEvent),
    /// A link passed its hello.
    LinkUp {
        /// The core's name for the other end.
        peer: Peer,
        /// Its libp2p peer id.
        peer_id: PeerId,
    },
    /// A link closed; every circuit through it was closed.
    LinkClosed {
        /// The other end.
        peer: Peer,
        /// Its libp2p peer id.
        peer_id: PeerId,
        /// Why.
        reason: String,
    },
    /// A substream was refused before it became a link (bad hello, unregistered node, ...).
    LinkRefused {
        /// The libp2p peer.
        peer_id: PeerId,
        /// Why.
        reason: String,
    },
    /// Dialling a next hop failed; the circuits waiting for it were closed.
    DialFailed {
        /// The next hop.
        node: NodeId,
        /// Why.
        reason: String,
    },
    /// Another elected oracle's receipt counts were taken (the stream hub merges them at its
    /// next event).
    ReceiptCounts(CountsReceived),
    /// The landing service created a stream: the host's media path should accept its
    /// producer.
    StreamCreated(CreatedStream),
}

/// Counters of a running node.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NodeStats {
    /// Usable links.
    pub links: usize,
    /// Open circuits.
    pub circuits: usize,
    /// Cells queued in the core.
    pub queued_cells: usize,
    /// Events dropped because the event channel was full (driver and core).
    pub events_dropped: u64,
    /// Outbound connections refused because the peer is not in the registered set last given
    /// to [`NodeHandle::dht_set_peers`] (DHT referrals to unregistered peers, mostly).
    pub dials_denied: u64,
    /// Frames read from link substreams (hellos included): every one is a 512-byte cell.
    pub link_frames_in: u64,
    /// Bytes read from link substreams.
    pub link_bytes_in: u64,
    /// Frames written to link substreams (hellos included).
    pub link_frames_out: u64,
    /// Bytes written to link substreams.
    pub link_bytes_out: u64,
}

enum Command {
    ListenAddrs(oneshot::Sender<Vec<Multiaddr>>),
    Stats(oneshot::Sender<NodeStats>),
    CloseLink(NodeId, oneshot::Sender<bool>),
    DhtPut(Vec<u8>, oneshot::Sender<Result<DhtPutReport, DriverError>>),
    DhtGet(
        RecordKey,
        oneshot::Sender<Result<DhtGetReport, DriverError>>,
    ),
    DhtSetPeers(Vec<(PeerId, Multiaddr)>, oneshot::Sender<(usize, usize)>),
    DirectoryUpdate(DiscoveryView),
    DirectoryLatest(oneshot::Sender<Option<(Vec<u8>, Vec<NodeId>)>>),
    DirectorySubmit(Vec<u8>, oneshot::Sender<Result<(), DriverError>>),
    DirectoryEquivocations(oneshot::Sender<Vec<Equivocation>>),
    SendRelayHalves(Vec<OraclePeer>, Vec<Vec<u8>>),
    Shutdown,
}

/// Controls a running node; cheap to clone.
#[derive(Clone, Debug)]
pub struct NodeHandle {
    cmd: mpsc::Sender<Command>,
    id: NodeId,
    onion_key: OnionPublic,
    peer_id: PeerId,
}

impl NodeHandle {
    /// The node's identity.
    pub fn node_id(&self) -> NodeId {
        self.id
    }

    /// The node's libp2p peer id.
    pub fn peer_id(&self) -> PeerId {
        self.peer_id
    }

    async fn ask<T>(
        &self,
        make: impl FnOnce(oneshot::Sender<T>) -> Command,
    ) -> Result<T, DriverError> {
        let (tx, rx) = oneshot::channel();
        self.cmd
            .send(make(tx))
            .await
            .map_err(|_| DriverError::Stopped)?;
        rx.await.map_err(|_| DriverError::Stopped)
    }

    /// The addresses the node listens on; waits until there is at least one.
    pub async fn listen_addrs(&self) -> Result<Vec<Multiaddr>, DriverError> {
        self.ask(Command::ListenAddrs).await
    }

    /// This node as a client or a directory sees it, at its first listen address (waits for
    /// one). With a `0.0.0.0` listen address that is the first interface libp2p reports.
    pub async fn descriptor(&self) -> Result<NodeDescriptor, DriverError> {
        let addrs = self.listen_addrs().await?;
        Ok(NodeDescriptor {
            id: self.id,
            onion_key: self.onion_key,
            peer_id: self.peer_id,
            address: addrs.first().cloned().unwrap_or_else(Multiaddr::empty),
        })
    }

    /// Counters.
    pub async fn stats(&self) -> Result<NodeStats, DriverError> {
        self.ask(Command::Stats).await
    }

    /// Closes the link to `node` (and every circuit on it). `false` if there was none.
    pub async fn close_link(&self, node: NodeId) -> Result<bool, DriverError> {
        self.ask(|tx| Command::CloseLink(node, tx)).await
    }

    /// Validates a signed DHT record (see [`crate::dht::record`]), stores it here and
    /// replicates it to the closest nodes. Refused with the failed check as the reason.
    pub async fn dht_put(&self, record: Vec<u8>) -> Result<DhtPutReport, DriverError> {
        self.ask(|tx| Command::DhtPut(record, tx)).await?
    }

    /// Looks a key up over disjoint paths; the valid record with the highest sequence number.
    pub async fn dht_get(&self, key: RecordKey) -> Result<DhtGetReport, DriverError> {
        self.ask(|tx| Command::DhtGet(key, tx)).await?
    }

    /// Tells the node the registered nodes: the FULL current set of live node identities on
    /// chain (libp2p peer id and address, as the chain lists them), e.g. at each finalized
    /// block. Returns `(added, removed)`: peers newly put in the DHT routing table (within the
    /// per-IP and per-bucket subnet limits of [`DhtSetup`]) and previously known peers evicted
    /// from it because they are no longer in the set (revoked or deregistered).
    ///
    /// From the first call on, the node's swarm opens outbound connections only to peers of the
    /// set last given (all of them, including any the routing-table limits left out): a DHT
    /// referral to any other peer, or an EXTEND towards one, is denied before dialling
    /// ([`NodeStats::dials_denied`]). Inbound connections are not affected. A node that is
    /// never told (no chain, static directories) dials anyone. On a node without the DHT the
    /// set still restricts dials, and `(0, 0)` is returned.
    pub async fn dht_set_peers(
        &self,
        peers: Vec<(PeerId, Multiaddr)>,
    ) -> Result<(usize, usize), DriverError> {
        self.ask(|tx| Command::DhtSetPeers(peers, tx)).await
    }

    /// Tells the node the discovery set and its own flags and addresses (from the chain).
    pub async fn directory_update(&self, view: DiscoveryView) -> Result<(), DriverError> {
        self.cmd
            .send(Command::DirectoryUpdate(view))
            .await
            .map_err(|_| DriverError::Stopped)
    }

    /// The newest directory with the threshold of signatures this node holds (its own as a
    /// discovery node, or the one it fetched and verified), and the discovery set it checked
    /// it against.
    pub async fn directory_latest(&self) -> Result<Option<(Vec<u8>, Vec<NodeId>)>, DriverError> {
        self.ask(Command::DirectoryLatest).await
    }

    /// Hands the node a signed directory (e.g. one seen elsewhere): a discovery node records
    /// its signatures, so a signer's conflicting signature shows in
    /// [`directory_equivocations`](Self::directory_equivocations).
    pub async fn directory_submit(&self, directory: Vec<u8>) -> Result<(), DriverError> {
        self.ask(|tx| Command::DirectorySubmit(directory, tx))
            .await?
    }

    /// Sends this relay's usage halves of an epoch (encoded `psp_usage::report::Half`s) to
    /// the oracles elected for it, over the oracle exchange ([`super::counts`]); each oracle
    /// checks them and logs a refusal. Needs the stream services.
    pub async fn send_relay_halves(
        &self,
        to: Vec<OraclePeer>,
        halves: Vec<Vec<u8>>,
    ) -> Result<(), DriverError> {
        self.cmd
            .send(Command::SendRelayHalves(to, halves))
            .await
            .map_err(|_| DriverError::Stopped)
    }

    /// Discovery nodes caught signing two different directories for one period.
    pub async fn directory_equivocations(&self) -> Result<Vec<Equivocation>, DriverError> {
        self.ask(Command::DirectoryEquivocations).await
    }

    /// Stops the node: every link and circuit closes.
    pub async fn shutdown(&self) {
        let _ = self.cmd.send(Command::Shutdown).await;
    }
}

/// A node just created: its handle, its event stream, and the task to spawn.
pub struct Node {
    /// Controls the node.
    pub handle: NodeHandle,
    /// What the node reports (bounded; see [`NodeConfig::events`]).
    pub events: mpsc::Receiver<NodeEvent>,
    /// The task: `tokio::spawn(task.run())`.
    pub task: NodeTask,
}

impl Node {
    /// A node serving the built-in services (`echo`). Call from inside a tokio runtime; the
    /// listen address is bound here.
    pub fn new(
        config: NodeConfig,
        secrets: NodeSecrets,
        directory: Arc<dyn NodeDirectory + Send + Sync>,
    ) -> Result<Self, DriverError> {
        Self::with_services(config, secrets, directory, Box::new(Services::default()))
    }

    /// A node serving `services`.
    pub fn with_services(
        config: NodeConfig,
        secrets: NodeSecrets,
        directory: Arc<dyn NodeDirectory + Send + Sync>,
        services: Box<dyn ServiceHub>,
    ) -> Result<Self, DriverError> {
        Self::with_node_services(
            config,
            secrets,
            directory,
            services,
            NodeServices::default(),
        )
    }

    /// A node serving `services` and the node services set up in `node_services` (the
    /// chain-checked DHT, the discovery directory).
    pub fn with_node_services(
        config: NodeConfig,
        secrets: NodeSecrets,
        directory: Arc<dyn NodeDirectory + Send + Sync>,
        services: Box<dyn ServiceHub>,
        node_services: NodeServices,
    ) -> Result<Self, DriverError> {
        require_runtime()?;
        let peer_id = secrets.link_key.public().to_peer_id();
        let mut swarm = build_swarm(secrets.link_key, &config.link, Some(&node_services))?;
        let NodeServices {
            dht,
            directory: discovery,
            messaging,
            streams,
            usage,
        } = node_services;
        // With messaging, presence, rendezvous and lookup join the relay's services, and with
        // streams, oracle and landing; the records they publish and the look-ups they run go
        // through the node task.
        let queues = SharedQueues::default();
        let hubs = messaging.is_some() || streams.is_some();
        let mut services = services;
        if let Some(setup) = messaging {
            services = Box::new(MessagingHub::new(services, setup, queues.clone()));
        }
        let mut counts = None;
        if let Some(setup) = streams {
            counts = Some(CountsNode::new(
                secrets.id,
                setup.oracles.clone(),
                queues.clone(),
                usage.clone(),
            ));
            if let Some(usage) = usage {
                services = Box::new(UsageHub::new(services, usage, setup.observer.clone()));
            }
            services = Box::new(StreamHub::new(services, setup, queues.clone()));
        }
        let messaging = hubs.then_some(queues);
        swarm
            .listen_on(config.listen.clone())
            .map_err(|e| DriverError::Listen {
                addr: config.listen.clone(),
                reason: e.to_string(),
            })?;
        let onion_key = secrets.onion.public();
        let relay = Relay::new(
            secrets.id,
            secrets.onion,
            config.limits.clone(),
            Box::new(SharedDirectory(directory.clone())),
            services,
            Box::new(OsRng),
        );
        let (cmd_tx, cmd_rx) = mpsc::channel(config.commands.max(1));
        let (ev_tx, ev_rx) = mpsc::channel(config.events.max(1));
        let links = Links::new(swarm, config.link.clone(), Hello::Node(secrets.id), true);
        let sweep =
            (config.link.idle_timeout / 4).clamp(Duration::from_millis(10), Duration::from_secs(1));
        Ok(Self {
            handle: NodeHandle {
                cmd: cmd_tx,
                id: secrets.id,
                onion_key,
                peer_id,
            },
            events: ev_rx,
            task: NodeTask {
                relay,
                links,
                directory,
                clock: Clock::new(),
                commands: cmd_rx,
                events: ev_tx,
                events_dropped: 0,
                listen: Vec::new(),
                waiting: Vec::new(),
                sweep,
                dht: dht.map(|setup| Dht::new(setup, peer_id)),
                discovery: discovery.map(DirectoryNode::new),
                messaging,
                counts,
                lookups: FuturesUnordered::new(),
            },
        })
    }
}

/// The [`NodeDirectory`] the core owns, sharing the host's.
struct SharedDirectory(Arc<dyn NodeDirectory + Send + Sync>);

impl NodeDirectory for SharedDirectory {
    fn onion_key(&self, node: &NodeId) -> Option<NodeRecord> {
        self.0.onion_key(node)
    }
}

/// The node's task; run it with `tokio::spawn(task.run())`.
pub struct NodeTask {
    relay: Relay,
    links: Links,
    directory: Arc<dyn NodeDirectory + Send + Sync>,
    clock: Clock,
    commands: mpsc::Receiver<Command>,
    events: mpsc::Sender<NodeEvent>,
    events_dropped: u64,
    listen: Vec<Multiaddr>,
    waiting: Vec<oneshot::Sender<Vec<Multiaddr>>>,
    sweep: Duration,
    dht: Option<Dht>,
    discovery: Option<DirectoryNode>,
    /// The messaging services' requests (publications, look-ups) and answers.
    messaging: Option<SharedQueues>,
    /// Receipt counts exchanged with the other elected oracles (with the stream services).
    counts: Option<CountsNode>,
    /// Look-ups of the lookup service in flight in the DHT.
    lookups: FuturesUnordered<LookupFuture>,
}

/// A look-up of the lookup service: its stream and the records found.
type LookupFuture = futures::future::BoxFuture<'static, (StreamHandle, Vec<Vec<u8>>)>;

/// The node services beyond relaying, each optional.
#[derive(Clone, Default)]
pub struct NodeServices {
    /// The chain-checked DHT.
    pub dht: Option<DhtSetup>,
    /// The discovery directory.
    pub directory: Option<DirectorySetup>,
    /// Presence and rendezvous (presence records are published through the DHT, so a node
    /// with messaging should run the DHT too).
    pub messaging: Option<MessagingSetup>,
    /// The oracle and landing services (stream records are published through the DHT).
    pub streams: Option<StreamSetup>,
    /// The oracle's usage service: session tickets, usage reports (runs with `streams`,
    /// whose oracle exchange carries the relays' halves).
    pub usage: Option<SharedUsage>,
}

impl std::fmt::Debug for NodeServices {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodeServices")
            .field("dht", &self.dht)
            .field("directory", &self.directory)
            .field("messaging", &self.messaging.is_some())
            .field("streams", &self.streams.is_some())
            .field("usage", &self.usage.is_some())
            .finish()
    }
}

/// Period of the DHT's expiry sweep and the directory's duties.
const SERVICE_TICK: Duration = Duration::from_secs(1);

/// Link messages handled per wake-up before the core's output is flushed.
const BATCH: usize = 64;

impl NodeTask {
    /// Runs the node until it is shut down.
    pub async fn run(mut self) {
        let mut sweep = tokio::time::interval(self.sweep);
        sweep.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // The DHT expiry sweep and the directory duties run once a second whatever the link
        // idle timeout is (the link sweep's period follows that timeout).
        let mut services = tokio::time::interval(SERVICE_TICK);
        services.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tracing::info!(node = ?self.relay.id(), "psp node: started");
        loop {
            self.flush();
            let deadline = self.relay.poll_timeout().map(|t| {
                self.clock
                    .instant(Timestamp(t.0.max(self.clock.now().0 + 1)))
            });
            tokio::select! {
                Some((stream, records)) = self.lookups.next(), if !self.lookups.is_empty() => {
                    if let Some(queues) = &self.messaging {
                        if let Ok(mut q) = queues.lock() {
                            q.fetched.push_back((stream, records));
                        }
                    }
                }
                cmd = self.commands.recv() => match cmd {
                    None | Some(Command::Shutdown) => break,
                    Some(cmd) => self.on_command(cmd),
                },
                Some(msg) = self.links.from_links.recv() => {
                    let dir = self.directory.clone();
                    let resolve = |n: &NodeId| resolve(&*dir, n);
                    self.links.on_link_msg(msg, &resolve);
                    for _ in 1..BATCH {
                        match self.links.from_links.try_recv() {
                            Ok(msg) => self.links.on_link_msg(msg, &resolve),
                            Err(_) => break,
                        }
                        self.on_link_events();
                    }
                }
                ev = self.links.swarm.select_next_some() => match ev {
                    SwarmEvent::Behaviour(OverlayEvent::Dht(e)) => {
                        if let (Some(dht), Some(kad)) =
                            (&mut self.dht, self.links.swarm.behaviour_mut().dht.as_mut())
                        {
                            dht.on_event(kad, e);
                        }
                    }
                    SwarmEvent::Behaviour(OverlayEvent::Directory(e)) => {
                        if let Some((node, rr)) = self.discovery_parts() {
                            node.on_event(rr, e, unix_now());
                        }
                    }
                    SwarmEvent::Behaviour(OverlayEvent::Counts(e)) => {
                        let received = self
                            .counts_parts()
                            .and_then(|(node, rr)| node.on_event(rr, e));
                        if let Some(received) = received {
                            self.report(NodeEvent::ReceiptCounts(received));
                        }
                    }
                    other => self.links.on_swarm_event(other),
                },
                () = sleep_until(deadline) => {}
                _ = sweep.tick() => {
                    let relay = &self.relay;
                    self.links.sweep(&|p| relay.peer_circuits(p) > 0);
                }
                _ = services.tick() => {
                    if let (Some(dht), Some(kad)) =
                        (&mut self.dht, self.links.swarm.behaviour_mut().dht.as_mut())
                    {
                        dht.sweep(kad);
                    }
                    if let Some((node, rr)) = self.discovery_parts() {
                        node.tick(rr, unix_now());
                    }
                    let addresses = self
                        .counts_parts()
                        .map(|(node, rr)| node.tick(rr, unix_now()))
                        .unwrap_or_default();
                    for (peer, addr) in addresses {
                        self.links.swarm.add_peer_address(peer, addr);
                    }
                }
            }
            self.on_link_events();
        }
        tracing::info!(node = ?self.relay.id(), "psp node: stopped");
    }

    fn on_command(&mut self, cmd: Command) {
        match cmd {
            Command::ListenAddrs(tx) => {
                if self.listen.is_empty() {
                    self.waiting.push(tx);
                } else {
                    let _ = tx.send(self.listen.clone());
                }
            }
            Command::Stats(tx) => {
                let (link_frames_in, link_bytes_in, link_frames_out, link_bytes_out) =
                    self.links.traffic.totals();
                let _ = tx.send(NodeStats {
                    links: self.links.link_count(),
                    circuits: self.relay.circuit_count(),
                    queued_cells: self.relay.queued_cells(),
                    events_dropped: self
                        .events_dropped
                        .saturating_add(self.relay.events_dropped()),
                    dials_denied: self.links.swarm.behaviour().gate.denied(),
                    link_frames_in,
                    link_bytes_in,
                    link_frames_out,
                    link_bytes_out,
                });
            }
            Command::CloseLink(node, tx) => {
                let peer = Peer::Node(node);
                let up = self.links.is_up(&peer);
                if up {
                    self.links.close(peer, "closed by the host".to_owned());
                }
                let _ = tx.send(up);
            }
            Command::DhtPut(record, tx) => match self.dht_parts() {
                Some((dht, kad)) => dht.put(kad, record, tx),
                None => {
                    let _ = tx.send(Err(DriverError::Dht(
                        "this node does not run the DHT".into(),
                    )));
                }
            },
            Command::DhtGet(key, tx) => match self.dht_parts() {
                Some((dht, kad)) => dht.get(kad, key, tx),
                None => {
                    let _ = tx.send(Err(DriverError::Dht(
                        "this node does not run the DHT".into(),
                    )));
                }
            },
            Command::DhtSetPeers(peers, tx) => {
                let registered = peers.iter().map(|(peer, _)| *peer).collect();
                self.links
                    .swarm
                    .behaviour_mut()
                    .gate
                    .set_registered(registered);
                let counts = self
                    .dht_parts()
                    .map_or((0, 0), |(dht, kad)| dht.set_peers(kad, peers));
                let _ = tx.send(counts);
            }
            Command::DirectoryUpdate(view) => {
                let mut addresses = Vec::new();
                if let Some(node) = self.discovery.as_mut() {
                    node.update(&mut addresses, view);
                }
                for (peer, addr) in addresses {
                    self.links.swarm.add_peer_address(peer, addr);
                }
            }
            Command::DirectoryLatest(tx) => {
                let latest = self
                    .discovery
                    .as_ref()
                    .and_then(|d| d.latest().map(|sd| (sd.encode(), d.set())));
                let _ = tx.send(latest);
            }
            Command::DirectorySubmit(bytes, tx) => {
                let result = match self.discovery.as_mut() {
                    Some(d) => d
                        .accept_directory(unix_now(), &bytes)
                        .map_err(|e| DriverError::Directory(e.to_string())),
                    None => Err(DriverError::Directory(
                        "this node does not run the directory".into(),
                    )),
                };
                let _ = tx.send(result);
            }
            Command::DirectoryEquivocations(tx) => {
                let _ = tx.send(
                    self.discovery
                        .as_ref()
                        .map(DirectoryNode::equivocations)
                        .unwrap_or_default(),
                );
            }
            Command::SendRelayHalves(to, halves) => {
                let addresses = match self.counts_parts() {
                    Some((node, rr)) => node.send_relay_halves(rr, to, halves),
                    None => {
                        tracing::warn!("psp usage: relay halves not sent (no stream services)");
                        Vec::new()
                    }
                };
                for (peer, addr) in addresses {
                    self.links.swarm.add_peer_address(peer, addr);
                }
            }
            Command::Shutdown => {}
        }
    }

    fn discovery_parts(&mut self) -> Option<(&mut DirectoryNode, &mut DirBehaviour)> {
        Some((
            self.discovery.as_mut()?,
            self.links.swarm.behaviour_mut().directory.as_mut()?,
        ))
    }

    fn counts_parts(&mut self) -> Option<(&mut CountsNode, &mut CountsBehaviour)> {
        Some((
            self.counts.as_mut()?,
            self.links.swarm.behaviour_mut().counts.as_mut()?,
        ))
    }

    fn dht_parts(&mut self) -> Option<(&mut Dht, &mut libp2p::kad::Behaviour<DhtStore>)> {
        Some((
            self.dht.as_mut()?,
            self.links.swarm.behaviour_mut().dht.as_mut()?,
        ))
    }

    /// Handles what the links report; `true` if there was anything.
    fn on_link_events(&mut self) -> bool {
        let mut any = false;
        while let Some(e) = self.links.poll_event() {
            any = true;
            let now = self.clock.now();
            match e {
                LinkEvent::Cell { peer, cell } => self.relay.handle_cell(now, peer, &cell[..]),
                LinkEvent::Up { peer, peer_id } => {
                    tracing::debug!(?peer, %peer_id, "psp node: link up");
                    self.report(NodeEvent::LinkUp { peer, peer_id });
                }
                LinkEvent::Down {
                    peer,
                    peer_id,
                    reason,
                } => {
                    tracing::info!(?peer, %peer_id, %reason, "psp node: link closed");
                    self.relay.handle_link_closed(now, peer);
                    self.report(NodeEvent::LinkClosed {
                        peer,
                        peer_id,
                        reason,
                    });
                }
                LinkEvent::Refused { peer_id, reason } => {
                    tracing::warn!(%peer_id, %reason, "psp node: link refused");
                    self.report(NodeEvent::LinkRefused { peer_id, reason });
                }
                LinkEvent::DialFailed { node, reason } => {
                    tracing::info!(?node, %reason, "psp node: dial failed");
                    self.relay.handle_link_closed(now, Peer::Node(node));
                    self.report(NodeEvent::DialFailed { node, reason });
                }
                LinkEvent::Listening(addr) => {
                    tracing::info!(%addr, "psp node: listening");
                    self.listen.push(addr.clone());
                    for tx in self.waiting.drain(..) {
                        let _ = tx.send(self.listen.clone());
                    }
                    self.report(NodeEvent::Listening(addr));
                }
            }
        }
        any
    }

    /// Sends what the core has to send now and reports its events.
    fn flush(&mut self) {
        loop {
            let now = self.clock.now();
            let mut progress = false;
            let dir = self.directory.clone();
            let resolve = |n: &NodeId| resolve(&*dir, n);
            while let Some(t) = self.relay.poll_transmit(now) {
                self.links.send(t.to, t.cell, &resolve);
                progress = true;
            }
            while let Some(e) = self.relay.poll_event() {
                log_relay_event(&e);
                self.report(NodeEvent::Relay(e));
                progress = true;
            }
            self.serve_messaging();
            // Sending may have failed a dial or closed a link: the core must hear it, and
            // may then have more to send.
            if !self.on_link_events() && !progress {
                break;
            }
        }
    }

    /// Puts the presence records the messaging services co-signed into the DHT and starts
    /// the DHT look-ups the lookup service asked for.
    fn serve_messaging(&mut self) {
        let Some(queues) = self.messaging.clone() else {
            return;
        };
        let (records, fetches, created): (Vec<_>, Vec<_>, Vec<_>) = match queues.lock() {
            Ok(mut q) => (
                q.publish.drain(..).collect(),
                q.fetch.drain(..).collect(),
                q.created.drain(..).collect(),
            ),
            Err(_) => return,
        };
        for stream in created {
            self.report(NodeEvent::StreamCreated(stream));
        }
        for record in records {
            match self.dht_parts() {
                Some((dht, kad)) => {
                    // The put's report is not awaited: a failed put is logged by the DHT, and
                    // the client's next keep-alive publishes the record again.
                    let (tx, _rx) = oneshot::channel();
                    dht.put(kad, record, tx);
                }
                None => tracing::warn!("psp presence: no DHT on this node, record not published"),
            }
        }
        for (stream, keys) in fetches {
            let mut answers = Vec::with_capacity(keys.len());
            if let Some((dht, kad)) = self.dht_parts() {
                for key in keys {
                    let (tx, rx) = oneshot::channel();
                    dht.get(kad, key, tx);
                    answers.push(rx);
                }
            }
            // No DHT: every answer is empty at once.
            self.lookups.push(Box::pin(async move {
                let mut records = Vec::new();
                for rx in answers {
                    if let Ok(Ok(DhtGetReport {
                        record: Some(record),
                        ..
                    })) = rx.await
                    {
                        records.push(record);
                    }
                }
                (stream, records)
            }));
        }
    }

    fn report(&mut self, e: NodeEvent) {
        if self.events.try_send(e).is_err() {
            self.events_dropped = self.events_dropped.saturating_add(1);
        }
    }
}

fn log_relay_event(e: &RelayEvent) {
    match e {
        RelayEvent::ExtendRefused { target, error } => {
            tracing::warn!(?target, %error, "psp node: extend refused")
        }
        RelayEvent::CreateRefused { peer, error } => {
            tracing::info!(?peer, %error, "psp node: create refused")
        }
        RelayEvent::BadCell { peer, error } => {
            tracing::info!(?peer, %error, "psp node: bad cell")
        }
        RelayEvent::CircuitClosed {
            peer,
            reason,
            cause: Some(cause),
            ..
        } => tracing::debug!(?peer, ?reason, %cause, "psp node: circuit closed"),
        other => tracing::trace!(event = ?other, "psp node"),
    }
}

/// Sleeps until `deadline`, or forever.
async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => futures::future::pending().await,
    }
}
