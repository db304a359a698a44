//! Links: the hello frame, one task per cell substream, and the table that maps libp2p
//! peers to the cores' [`Peer`]s, dials on demand and closes idle links.
//!
//! A link task reads exactly 512 bytes at a time and hands each frame to the driver task
//! through one bounded channel shared by all links (when it is full, readers wait: TCP
//! backpressure). The driver writes through a bounded per-link channel; if that is full the
//! peer is not reading and the link is closed. Any read or write error, a bad hello or a
//! hello timeout ends the task, and the driver closes the link and every circuit on it.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures::{AsyncReadExt, AsyncWriteExt};
use libp2p::swarm::dial_opts::DialOpts;
use libp2p::swarm::{DialError, SwarmEvent};
use libp2p::{Multiaddr, PeerId, Stream, Swarm};
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::behaviour::{self, Overlay, OverlayEvent};
use super::LinkConfig;
use crate::cell::CELL_LEN;
use crate::circuit::Peer;
use crate::crypto::NodeId;

/// One 512-byte frame.
pub(crate) type Frame = Box<[u8; CELL_LEN]>;

/// Looks up where a node is: `Ok((peer id, address))` or why not.
pub(crate) type Resolve<'a> = &'a dyn Fn(&NodeId) -> Result<(PeerId, Multiaddr), String>;

/// First 8 bytes of a hello frame: "PSPLINK" and the link version.
const HELLO_MAGIC: [u8; 8] = *b"PSPLINK\x01";
const ROLE_NODE: u8 = 1;
const ROLE_CLIENT: u8 = 2;
/// Most queued cells one link write carries (16 KiB): enough to amortise the per-write cost
/// of Yamux framing, Noise and the syscall, small enough not to delay the first cell.
const MAX_WRITE_BATCH: usize = 32;

/// Who the sender of a hello says it is.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Hello {
    /// A node with this identity (checked against the directory and the Noise peer id).
    Node(NodeId),
    /// A client (anonymous: it gets a fresh `Peer::Client` handle).
    Client,
}

impl Hello {
    /// `magic[8] | role u8 | node id[32] (zero for a client) | zeros`, 512 bytes.
    pub(crate) fn encode(self) -> Frame {
        let mut f = Box::new([0u8; CELL_LEN]);
        f[..8].copy_from_slice(&HELLO_MAGIC);
        match self {
            Hello::Node(id) => {
                f[8] = ROLE_NODE;
                f[9..41].copy_from_slice(&id.0);
            }
            Hello::Client => f[8] = ROLE_CLIENT,
        }
        f
    }

    pub(crate) fn decode(f: &[u8; CELL_LEN]) -> Result<Self, String> {
        if f[..8] != HELLO_MAGIC {
            return Err("bad hello: wrong magic or link version".into());
        }
        let mut id = [0u8; 32];
        id.copy_from_slice(&f[9..41]);
        match f[8] {
            ROLE_NODE => Ok(Hello::Node(NodeId(id))),
            ROLE_CLIENT if id == [0u8; 32] => Ok(Hello::Client),
            r => Err(format!("bad hello: role {r}")),
        }
    }
}

type LinkId = u64;

/// The frames and bytes this node's link tasks read from and wrote to their substreams,
/// hellos included, counted where they hand each buffer to the substream (so that a frame of
/// any other size than 512 bytes would show).
#[derive(Debug, Default)]
pub(crate) struct LinkTraffic {
    frames_in: AtomicU64,
    bytes_in: AtomicU64,
    frames_out: AtomicU64,
    bytes_out: AtomicU64,
}

impl LinkTraffic {
    fn read(&self, bytes: usize) {
        self.frames_in.fetch_add(1, Ordering::Relaxed);
        self.bytes_in.fetch_add(bytes as u64, Ordering::Relaxed);
    }

    fn wrote(&self, frames: usize, bytes: usize) {
        self.frames_out.fetch_add(frames as u64, Ordering::Relaxed);
        self.bytes_out.fetch_add(bytes as u64, Ordering::Relaxed);
    }

    /// `(frames in, bytes in, frames out, bytes out)`.
    pub(crate) fn totals(&self) -> (u64, u64, u64, u64) {
        (
            self.frames_in.load(Ordering::Relaxed),
            self.bytes_in.load(Ordering::Relaxed),
            self.frames_out.load(Ordering::Relaxed),
            self.bytes_out.load(Ordering::Relaxed),
        )
    }
}

/// From link tasks to the driver task.
#[derive(Debug)]
pub(crate) enum LinkMsg {
    Up { link: LinkId, hello: Hello },
    Cell { link: LinkId, cell: Frame },
    Down { link: LinkId, reason: String },
}

/// Runs one substream until it fails or the driver drops `out`.
async fn run_link(
    link: LinkId,
    stream: Stream,
    ours: Hello,
    hello_timeout: Duration,
    to_driver: mpsc::Sender<LinkMsg>,
    mut out: mpsc::Receiver<Frame>,
    traffic: Arc<LinkTraffic>,
) {
    let (mut r, mut w) = stream.split();
    let hello = tokio::time::timeout(hello_timeout, async {
        let frame = ours.encode();
        w.write_all(&frame[..]).await?;
        traffic.wrote(1, frame.len());
        w.flush().await?;
        let mut buf = Box::new([0u8; CELL_LEN]);
        r.read_exact(&mut buf[..]).await?;
        traffic.read(buf.len());
        Ok::<_, std::io::Error>(buf)
    })
    .await;
    let hello = match hello {
        Ok(Ok(buf)) => Hello::decode(&buf),
        Ok(Err(e)) => Err(format!("hello: {e}")),
        Err(_) => Err(format!("no hello within {hello_timeout:?}")),
    };
    let hello = match hello {
        Ok(h) => h,
        Err(reason) => {
            let _ = to_driver.send(LinkMsg::Down { link, reason }).await;
            return;
        }
    };
    if to_driver.send(LinkMsg::Up { link, hello }).await.is_err() {
        return;
    }
    let reader = async {
        loop {
            let mut cell = Box::new([0u8; CELL_LEN]);
            if let Err(e) = r.read_exact(&mut cell[..]).await {
                return match e.kind() {
                    std::io::ErrorKind::UnexpectedEof => "closed by peer".to_owned(),
                    _ => format!("read: {e}"),
                };
            }
            traffic.read(cell.len());
            if to_driver.send(LinkMsg::Cell { link, cell }).await.is_err() {
                return "driver stopped".to_owned();
            }
        }
    };
    let writer = async {
        // Cells queued together go out in one write: one Yamux frame and one Noise message
        // for up to `MAX_WRITE_BATCH` cells instead of one each (the receiver still reads
        // cell by cell; the bytes on the link are the same).
        let mut batch = Vec::with_capacity(MAX_WRITE_BATCH * CELL_LEN);
        while let Some(cell) = out.recv().await {
            batch.clear();
            batch.extend_from_slice(&cell[..]);
            let mut cells = 1;
            while cells < MAX_WRITE_BATCH {
                let Ok(next) = out.try_recv() else { break };
                batch.extend_from_slice(&next[..]);
                cells += 1;
            }
            if let Err(e) = w.write_all(&batch).await {
                return format!("write: {e}");
            }
            traffic.wrote(cells, batch.len());
            if out.is_empty() {
                if let Err(e) = w.flush().await {
                    return format!("write: {e}");
                }
            }
        }
        let _ = w.close().await;
        "closed locally".to_owned()
    };
    futures::pin_mut!(reader, writer);
    let reason = match futures::future::select(reader, writer).await {
        futures::future::Either::Left((r, _)) | futures::future::Either::Right((r, _)) => r,
    };
    let _ = to_driver.send(LinkMsg::Down { link, reason }).await;
}

/// What happened on the links; the driver task reacts (feeds the core, logs, reports).
#[derive(Debug)]
pub(crate) enum LinkEvent {
    /// A link passed its hello and is usable.
    Up { peer: Peer, peer_id: PeerId },
    /// A cell arrived.
    Cell { peer: Peer, cell: Frame },
    /// A usable link closed; every circuit on it must be closed.
    Down {
        peer: Peer,
        peer_id: PeerId,
        reason: String,
    },
    /// A substream was refused before it became a link (bad hello, wrong identity, limits).
    Refused { peer_id: PeerId, reason: String },
    /// A dial (for cells waiting to go to `node`) failed; circuits towards it must be closed.
    DialFailed { node: NodeId, reason: String },
    /// Listening on a new address.
    Listening(Multiaddr),
}

struct Link {
    peer_id: PeerId,
    /// Set once the hello is accepted.
    peer: Option<Peer>,
    tx: mpsc::Sender<Frame>,
    /// The node we dialled this link for, if any: its hello must name it.
    dialled: Option<NodeId>,
}

struct PendingDial {
    peer_id: PeerId,
    cells: VecDeque<Frame>,
    deadline: Instant,
}

/// The link table of one driver task.
pub(crate) struct Links {
    pub(crate) swarm: Swarm<Overlay>,
    pub(crate) from_links: mpsc::Receiver<LinkMsg>,
    to_driver: mpsc::Sender<LinkMsg>,
    config: LinkConfig,
    ours: Hello,
    accept_clients: bool,
    links: HashMap<LinkId, Link>,
    /// The link each core peer is written through (the first to come up).
    by_peer: HashMap<Peer, LinkId>,
    /// Last time a cell crossed, or the core had circuits on, each link.
    active: HashMap<Peer, Instant>,
    pending: HashMap<NodeId, PendingDial>,
    next_link: LinkId,
    next_client: u64,
    /// Drained by the driver after every call; each call adds a handful at most.
    events: VecDeque<LinkEvent>,
    /// Shared with every link task.
    pub(crate) traffic: Arc<LinkTraffic>,
}

impl Links {
    pub(crate) fn new(
        swarm: Swarm<Overlay>,
        config: LinkConfig,
        ours: Hello,
        accept_clients: bool,
    ) -> Self {
        let (to_driver, from_links) = mpsc::channel(config.inbound_queue.max(1));
        Self {
            swarm,
            from_links,
            to_driver,
            config,
            ours,
            accept_clients,
            links: HashMap::new(),
            by_peer: HashMap::new(),
            active: HashMap::new(),
            pending: HashMap::new(),
            next_link: 0,
            next_client: 0,
            events: VecDeque::new(),
            traffic: Arc::default(),
        }
    }

    pub(crate) fn poll_event(&mut self) -> Option<LinkEvent> {
        self.events.pop_front()
    }

    /// Usable links (one per core peer).
    pub(crate) fn link_count(&self) -> usize {
        self.by_peer.len()
    }

    /// Makes sure the link to `node` (up or being dialled) goes to `peer_id`: one that goes
    /// elsewhere (a stale or wrong descriptor) is closed, or its dial failed.
    pub(crate) fn retarget(&mut self, node: NodeId, peer_id: PeerId) {
        let peer = Peer::Node(node);
        let up = self
            .by_peer
            .get(&peer)
            .and_then(|id| self.links.get(id))
            .map(|l| l.peer_id);
        if up.is_some_and(|p| p != peer_id) {
            self.close(
                peer,
                format!("{node:?} is now expected at peer id {peer_id}"),
            );
        }
        if self
            .pending
            .get(&node)
            .is_some_and(|p| p.peer_id != peer_id)
        {
            self.fail_dial(
                node,
                format!("{node:?} is now expected at peer id {peer_id}"),
            );
        }
    }

    /// Whether a usable link to `peer` exists.
    pub(crate) fn is_up(&self, peer: &Peer) -> bool {
        self.by_peer.contains_key(peer)
    }

    /// Sends a cell to `to`, dialling a node first if there is no link (`resolve` says where).
    /// Cells for a client without a link are dropped: the client is gone.
    pub(crate) fn send(&mut self, to: Peer, cell: Frame, resolve: Resolve<'_>) {
        if let Some(&id) = self.by_peer.get(&to) {
            let res = match self.links.get(&id) {
                Some(l) => l.tx.try_send(cell),
                None => return,
            };
            match res {
                Ok(()) => {
                    self.active.insert(to, Instant::now());
                }
                Err(mpsc::error::TrySendError::Full(_)) => self.close(
                    to,
                    format!(
                        "write queue full ({} cells): peer not reading",
                        self.config.link_queue
                    ),
                ),
                Err(mpsc::error::TrySendError::Closed(_)) => {
                    self.close(to, "link writer gone".to_owned())
                }
            }
            return;
        }
        let Peer::Node(node) = to else {
            tracing::trace!(?to, "psp link: cell for a client with no link dropped");
            return;
        };
        if let Some(p) = self.pending.get_mut(&node) {
            if p.cells.len() >= self.config.pending_dial_cells {
                let reason = format!(
                    "more than {} cells waiting for the dial",
                    self.config.pending_dial_cells
                );
                self.fail_dial(node, reason);
            } else {
                p.cells.push_back(cell);
            }
            return;
        }
        let (peer_id, addr) = match resolve(&node) {
            Ok(x) => x,
            Err(reason) => {
                self.events
                    .push_back(LinkEvent::DialFailed { node, reason });
                return;
            }
        };
        if self.pending.len() >= self.config.max_links {
            let reason = "too many dials pending".to_owned();
            self.events
                .push_back(LinkEvent::DialFailed { node, reason });
            return;
        }
        tracing::debug!(?node, %peer_id, %addr, "psp link: dialling");
        let opts = DialOpts::peer_id(peer_id).addresses(vec![addr]).build();
        match self.swarm.dial(opts) {
            // Already connected or dialling: the substream is on its way.
            Ok(()) | Err(DialError::DialPeerConditionFalse(_)) => {}
            Err(e) => {
                self.events.push_back(LinkEvent::DialFailed {
                    node,
                    reason: format!("dial: {e}"),
                });
                return;
            }
        }
        self.pending.insert(
            node,
            PendingDial {
                peer_id,
                cells: VecDeque::from([cell]),
                deadline: Instant::now() + self.config.dial_timeout,
            },
        );
    }

    fn fail_dial(&mut self, node: NodeId, reason: String) {
        if let Some(p) = self.pending.remove(&node) {
            let _ = self.swarm.disconnect_peer_id(p.peer_id);
            self.events
                .push_back(LinkEvent::DialFailed { node, reason });
        }
    }

    /// Closes the link to `peer` (all its substreams) with a reason.
    pub(crate) fn close(&mut self, peer: Peer, reason: String) {
        let ids: Vec<LinkId> = self
            .links
            .iter()
            .filter(|(_, l)| l.peer == Some(peer))
            .map(|(id, _)| *id)
            .collect();
        let mut peer_id = None;
        for id in ids {
            // Dropping the sender ends the writer, which closes the substream.
            if let Some(l) = self.links.remove(&id) {
                peer_id = Some(l.peer_id);
            }
        }
        self.active.remove(&peer);
        if self.by_peer.remove(&peer).is_some() {
            if let Some(peer_id) = peer_id {
                // Other sessions of this libp2p peer would be surprising; close the connection.
                let _ = self.swarm.disconnect_peer_id(peer_id);
                self.events.push_back(LinkEvent::Down {
                    peer,
                    peer_id,
                    reason,
                });
            }
        }
    }

    pub(crate) fn on_swarm_event(&mut self, event: SwarmEvent<OverlayEvent>) {
        match event {
            SwarmEvent::Behaviour(OverlayEvent::Cells(behaviour::Event::Stream {
                peer,
                stream,
            })) => self.on_stream(peer, stream),
            SwarmEvent::Behaviour(OverlayEvent::Cells(behaviour::Event::Failed {
                peer,
                reason,
            })) => {
                self.fail_dials_to(peer, &reason);
                self.events.push_back(LinkEvent::Refused {
                    peer_id: peer,
                    reason,
                });
            }
            // Another connection may still be on its way; only give up if none is open.
            SwarmEvent::OutgoingConnectionError {
                peer_id: Some(peer),
                error,
                ..
            } if !self.swarm.is_connected(&peer) => {
                self.fail_dials_to(peer, &format!("connect: {error}"));
            }
            SwarmEvent::NewListenAddr { address, .. } => {
                self.events.push_back(LinkEvent::Listening(address))
            }
            SwarmEvent::IncomingConnectionError { error, .. } => {
                tracing::debug!(%error, "psp link: incoming connection failed");
            }
            _ => {}
        }
    }

    fn fail_dials_to(&mut self, peer: PeerId, reason: &str) {
        let nodes: Vec<NodeId> = self
            .pending
            .iter()
            .filter(|(_, p)| p.peer_id == peer)
            .map(|(n, _)| *n)
            .collect();
        for n in nodes {
            self.fail_dial(n, reason.to_owned());
        }
    }

    fn on_stream(&mut self, peer_id: PeerId, stream: Stream) {
        if self.links.len() >= self.config.max_links {
            self.events.push_back(LinkEvent::Refused {
                peer_id,
                reason: format!("link limit ({}) reached", self.config.max_links),
            });
            return;
        }
        let id = self.next_link;
        self.next_link = self.next_link.wrapping_add(1);
        let dialled = self
            .pending
            .iter()
            .find(|(_, p)| p.peer_id == peer_id)
            .map(|(n, _)| *n);
        let (tx, rx) = mpsc::channel(self.config.link_queue.max(1));
        self.links.insert(
            id,
            Link {
                peer_id,
                peer: None,
                tx,
                dialled,
            },
        );
        tokio::spawn(run_link(
            id,
            stream,
            self.ours,
            self.config.hello_timeout,
            self.to_driver.clone(),
            rx,
            self.traffic.clone(),
        ));
    }

    /// Handles a message from a link task (`resolve` checks a node's peer id).
    pub(crate) fn on_link_msg(&mut self, msg: LinkMsg, resolve: Resolve<'_>) {
        match msg {
            LinkMsg::Cell { link, cell } => {
                if let Some(peer) = self.links.get(&link).and_then(|l| l.peer) {
                    self.active.insert(peer, Instant::now());
                    self.events.push_back(LinkEvent::Cell { peer, cell });
                }
            }
            LinkMsg::Up { link, hello } => self.on_hello(link, hello, resolve),
            LinkMsg::Down { link, reason } => {
                let Some(l) = self.links.get(&link) else {
                    return;
                };
                match l.peer {
                    Some(peer) => self.close(peer, reason),
                    None => {
                        let (peer_id, dialled) = (l.peer_id, l.dialled);
                        self.links.remove(&link);
                        if let Some(node) = dialled {
                            self.fail_dial(node, reason.clone());
                        }
                        self.events
                            .push_back(LinkEvent::Refused { peer_id, reason });
                    }
                }
            }
        }
    }

    fn on_hello(&mut self, link: LinkId, hello: Hello, resolve: Resolve<'_>) {
        let Some(l) = self.links.get(&link) else {
            return;
        };
        let (peer_id, dialled) = (l.peer_id, l.dialled);
        let verdict = match hello {
            Hello::Client if dialled.is_some() => Err("dialled a node, peer says client".into()),
            Hello::Client if !self.accept_clients => Err("clients are not accepted here".into()),
            Hello::Client => {
                self.next_client = self.next_client.wrapping_add(1);
                Ok(Peer::Client(self.next_client))
            }
            Hello::Node(n) if self.ours == Hello::Node(n) => Err("peer claims our node id".into()),
            Hello::Node(n) => match (dialled, resolve(&n)) {
                (Some(d), _) if d != n => Err(format!("dialled {d:?}, peer says {n:?}")),
                (_, Err(e)) => Err(format!("node {n:?}: {e}")),
                (_, Ok((registered, _))) if registered != peer_id => Err(format!(
                    "node {n:?} is registered with peer id {registered}, not this one"
                )),
                (_, Ok(_)) => Ok(Peer::Node(n)),
            },
        };
        let peer = match verdict {
            Ok(p) => p,
            Err(reason) => {
                self.links.remove(&link);
                if let Some(node) = dialled {
                    self.fail_dial(node, reason.clone());
                }
                self.events
                    .push_back(LinkEvent::Refused { peer_id, reason });
                return;
            }
        };
        if let Some(l) = self.links.get_mut(&link) {
            l.peer = Some(peer);
        }
        if self.by_peer.contains_key(&peer) {
            // A second substream (simultaneous dials): read from it, keep writing on the first,
            // so the cells of each circuit stay in order.
            tracing::debug!(?peer, "psp link: extra substream kept for reading");
            return;
        }
        self.by_peer.insert(peer, link);
        self.active.insert(peer, Instant::now());
        self.events.push_back(LinkEvent::Up { peer, peer_id });
        if let Peer::Node(n) = peer {
            if let Some(p) = self.pending.remove(&n) {
                for cell in p.cells {
                    self.send(peer, cell, resolve);
                }
            }
        }
    }

    /// Closes links that carried no circuit for the idle timeout (`busy` says whether the
    /// core has circuits on a peer), and gives up dials past their deadline.
    pub(crate) fn sweep(&mut self, busy: &dyn Fn(&Peer) -> bool) {
        let now = Instant::now();
        let idle = self.config.idle_timeout;
        let mut to_close = Vec::new();
        for peer in self.by_peer.keys() {
            let last = self.active.entry(*peer).or_insert(now);
            if busy(peer) {
                *last = now;
            } else if now.duration_since(*last) >= idle {
                to_close.push(*peer);
            }
        }
        for peer in to_close {
            self.close(peer, format!("idle for {idle:?} with no circuit"));
        }
        let late: Vec<NodeId> = self
            .pending
            .iter()
            .filter(|(_, p)| p.deadline <= now)
            .map(|(n, _)| *n)
            .collect();
        for n in late {
            let reason = format!("no link within {:?}", self.config.dial_timeout);
            self.fail_dial(n, reason);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hello_round_trips_and_rejects_garbage() {
        let n = Hello::Node(NodeId([7; 32]));
        assert_eq!(Hello::decode(&n.encode()), Ok(n));
        assert_eq!(Hello::decode(&Hello::Client.encode()), Ok(Hello::Client));
        let mut bad = Hello::Client.encode();
        bad[9] = 1;
        assert!(Hello::decode(&bad).is_err());
        bad = n.encode();
        bad[0] ^= 1;
        assert!(Hello::decode(&bad).is_err());
        bad = n.encode();
        bad[8] = 9;
        assert!(Hello::decode(&bad).is_err());
    }
}
