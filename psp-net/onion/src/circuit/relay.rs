//! The node side of circuits: a sans-IO state machine.
//!
//! Input: [`Relay::handle_cell`] with the time, the peer and the 512 bytes it sent, and
//! [`Relay::handle_link_closed`]. Output: [`Relay::poll_transmit`] (cells, released at the
//! rate limits), [`Relay::poll_timeout`] (when to call again) and [`Relay::poll_event`].
//!
//! Every failure on a circuit closes it with a [`DestroyReason`] sent both ways and an event;
//! nothing a peer sends can panic the relay.
//!
//! As the last hop, the relay keeps the circuit windows ([`super::window`]): service replies
//! beyond the send window wait in the circuit's backlog (bounded by
//! [`Config::max_queue_per_circuit`]), and while that backlog is longer than one SENDME
//! increment the relay holds back its own SENDMEs, so a client that does not read what it
//! asked for is slowed down rather than served into unbounded memory.

use std::collections::{BTreeSet, HashMap, VecDeque};

use rand_core::CryptoRngCore;

use super::limits::{Config, TokenBucket};
use super::service::{ServiceAction, ServiceHub, StreamRef};
use super::window::{Windows, SENDME_INCREMENT};
use super::{transmit, CircuitError, NodeDirectory, Peer, Timestamp, Transmit};
use crate::cell::{
    Cell, CellError, ChanMsg, CircId, DestroyReason, EndReason, RelayBody, RelayMsg, StreamId,
    BODY_LEN, CELL_LEN, MAX_BACKWARD_DATA, RELAY_PLAINTEXT_LEN,
};
use crate::crypto::{ntor_server, HopCrypto, NodeId, OnionPublic, OnionSecret};

/// What happened at the relay; for logs and the driver.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum RelayEvent {
    /// A CREATE succeeded: a new circuit from `peer`.
    CircuitCreated {
        /// Previous hop (client or node).
        peer: Peer,
        /// Its circuit id on that link.
        circ_id: CircId,
    },
    /// An EXTEND was accepted; CREATE sent to `target`.
    Extending {
        /// The next hop.
        target: NodeId,
    },
    /// An EXTEND was refused (unregistered target, key mismatch, ...): the chain check.
    ExtendRefused {
        /// The requested next hop.
        target: NodeId,
        /// Why.
        error: CircuitError,
    },
    /// A circuit closed.
    CircuitClosed {
        /// Previous hop of the circuit.
        peer: Peer,
        /// Its id on that link.
        circ_id: CircId,
        /// The reason sent (or received) in DESTROY.
        reason: DestroyReason,
        /// The local cause, when this node decided to close.
        cause: Option<CircuitError>,
    },
    /// A CREATE was refused before any circuit existed.
    CreateRefused {
        /// Who sent it.
        peer: Peer,
        /// Why.
        error: CircuitError,
    },
    /// A cell that did not decode (dropped; closes its circuit if the id was known).
    BadCell {
        /// Who sent it.
        peer: Peer,
        /// The decode error.
        error: CellError,
    },
    /// A cell for a circuit this node does not know (dropped).
    UnknownCircuit {
        /// Who sent it.
        peer: Peer,
        /// The unknown id.
        circ_id: CircId,
    },
    /// A stream was opened to a local service.
    StreamOpened {
        /// The service name.
        service: String,
    },
}

/// Service actions carried out per call into the relay.
const MAX_SERVICE_ACTIONS_PER_POLL: usize = 1_024;

/// Control cells (the DESTROY answers to refused CREATEs) queued at most: every other cell
/// the relay sends is either in a circuit's bounded queue or bounded by the circuits open.
const MAX_REFUSALS_QUEUED: usize = 4_096;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Side {
    Prev,
    Next,
}

struct Queued {
    to: Peer,
    cell: Box<[u8; CELL_LEN]>,
    at: Timestamp,
}

struct RelayCirc {
    prev: (Peer, CircId),
    next: Option<(Peer, CircId)>,
    extending: bool,
    crypto: HopCrypto,
    early_seen: u16,
    /// Streams open at this node (last hop only); their state lives in the service hub.
    streams: BTreeSet<StreamId>,
    bucket: TokenBucket,
    queue: VecDeque<Queued>,
    /// Flow control towards the client (used at the last hop only).
    windows: Windows,
    /// DATA for the client waiting for the send window (last hop only).
    backlog: VecDeque<RelayMsg>,
}

struct PeerState {
    bucket: TokenBucket,
    /// Circuits with this peer at either end.
    circuits: usize,
    /// Circuits this peer created here (the per-peer cap).
    inbound: usize,
    next_circ_id: u32,
}

/// The relay state machine of one node.
pub struct Relay {
    id: NodeId,
    onion: OnionSecret,
    config: Config,
    directory: Box<dyn NodeDirectory>,
    services: Box<dyn ServiceHub>,
    rng: Box<dyn CryptoRngCore + Send>,
    circuits: HashMap<u64, RelayCirc>,
    ends: HashMap<(Peer, CircId), (u64, Side)>,
    peers: HashMap<Peer, PeerState>,
    next_key: u64,
    active: VecDeque<u64>,
    queued_total: usize,
    /// The time the head cell of each non-empty circuit queue was queued, ordered: the
    /// memory-pressure eviction takes the oldest in O(log n) instead of scanning circuits.
    heads: BTreeSet<(Timestamp, u64)>,
    outbox: VecDeque<Transmit>,
    events: VecDeque<RelayEvent>,
    events_dropped: u64,
    /// The latest time passed in (for hub calls made from inside other calls).
    now: Timestamp,
}

impl Relay {
    /// A relay with identity `id` and onion secret `onion` (whose public part is registered).
    pub fn new(
        id: NodeId,
        onion: OnionSecret,
        config: Config,
        directory: Box<dyn NodeDirectory>,
        services: Box<dyn ServiceHub>,
        rng: Box<dyn CryptoRngCore + Send>,
    ) -> Self {
        Self {
            id,
            onion,
            config,
            directory,
            services,
            rng,
            circuits: HashMap::new(),
            ends: HashMap::new(),
            peers: HashMap::new(),
            next_key: 0,
            active: VecDeque::new(),
            queued_total: 0,
            heads: BTreeSet::new(),
            outbox: VecDeque::new(),
            events: VecDeque::new(),
            events_dropped: 0,
            now: Timestamp::default(),
        }
    }

    /// This node's identity.
    pub fn id(&self) -> NodeId {
        self.id
    }

    /// This node's onion public key.
    pub fn onion_public(&self) -> OnionPublic {
        self.onion.public()
    }

    /// Open circuits.
    pub fn circuit_count(&self) -> usize {
        self.circuits.len()
    }

    /// Circuits with `peer` at either end (0 if none); the driver keeps a link open while
    /// this is non-zero.
    pub fn peer_circuits(&self, peer: &Peer) -> usize {
        self.peers.get(peer).map_or(0, |p| p.circuits)
    }

    /// Cells queued over all circuits.
    pub fn queued_cells(&self) -> usize {
        self.queued_total
    }

    /// Events dropped because the driver did not poll them in time.
    pub fn events_dropped(&self) -> u64 {
        self.events_dropped
    }

    /// Approximate heap + inline bytes one idle circuit costs this relay (no queue, no stream):
    /// the circuit struct, its two index entries and hash-map slack.
    pub fn idle_circuit_bytes() -> usize {
        let circ = core::mem::size_of::<(u64, RelayCirc)>();
        let end = core::mem::size_of::<((Peer, CircId), (u64, Side))>();
        // hashbrown keeps 1 control byte per slot and a load factor of at most 7/8.
        (circ + 1 + 2 * (end + 1)) * 8 / 7
    }

    fn event(&mut self, e: RelayEvent) {
        if self.events.len() >= self.config.max_events {
            self.events_dropped = self.events_dropped.saturating_add(1);
        } else {
            self.events.push_back(e);
        }
    }

    /// Next event, if any.
    pub fn poll_event(&mut self) -> Option<RelayEvent> {
        self.events.pop_front()
    }

    /// Feeds one cell received from `from`.
    pub fn handle_cell(&mut self, now: Timestamp, from: Peer, bytes: &[u8]) {
        self.now = now;
        let cell = match Cell::decode(bytes) {
            Ok(c) => c,
            Err(error) => {
                self.event(RelayEvent::BadCell {
                    peer: from,
                    error: error.clone(),
                });
                let id = bytes
                    .get(..4)
                    .and_then(|b| <[u8; 4]>::try_from(b).ok())
                    .and_then(|b| CircId::new(u32::from_be_bytes(b)));
                if let Some(&(key, _)) = id.and_then(|id| self.ends.get(&(from, id))) {
                    self.close(
                        key,
                        DestroyReason::Protocol,
                        Some(CircuitError::Cell(error)),
                    );
                }
                return;
            }
        };
        let end = self.ends.get(&(from, cell.circ_id)).copied();
        match (cell.msg, end) {
            (ChanMsg::Create(m), None) => self.on_create(now, from, cell.circ_id, &m),
            (ChanMsg::Create(_), Some((key, _))) => self.close(
                key,
                DestroyReason::Protocol,
                Some(CircuitError::Unexpected("CREATE on an open circuit")),
            ),
            (ChanMsg::Created(m), Some((key, Side::Next))) => {
                let extending = self.circuits.get(&key).is_some_and(|c| c.extending);
                if extending {
                    if let Some(c) = self.circuits.get_mut(&key) {
                        c.extending = false;
                    }
                    self.originate(now, key, &RelayMsg::Extended(m));
                } else {
                    self.close(
                        key,
                        DestroyReason::Protocol,
                        Some(CircuitError::Unexpected("CREATED")),
                    );
                }
            }
            (ChanMsg::Relay(body), Some((key, Side::Prev))) => {
                self.on_forward(now, key, body, false)
            }
            (ChanMsg::RelayEarly(body), Some((key, Side::Prev))) => {
                self.on_forward(now, key, body, true)
            }
            (ChanMsg::Relay(mut body), Some((key, Side::Next))) => {
                let ok = match self.circuits.get_mut(&key) {
                    Some(c) => c.crypto.mask_backward(&mut body.0).map(|_| c.prev),
                    None => return,
                };
                match ok {
                    Ok((peer, id)) => self.enqueue(now, key, peer, id, ChanMsg::Relay(body)),
                    Err(e) => self.close(
                        key,
                        DestroyReason::Internal,
                        Some(CircuitError::Integrity(e)),
                    ),
                }
            }
            (ChanMsg::Destroy(reason), Some((key, side))) => {
                self.remove(key, reason, side == Side::Next, side == Side::Prev, None)
            }
            (ChanMsg::Destroy(_), None) => {}
            (_, Some((key, _))) => self.close(
                key,
                DestroyReason::Protocol,
                Some(CircuitError::Unexpected("cell for this direction")),
            ),
            (_, None) => self.event(RelayEvent::UnknownCircuit {
                peer: from,
                circ_id: cell.circ_id,
            }),
        }
    }

    /// The link to `peer` is gone: close every circuit through it.
    pub fn handle_link_closed(&mut self, now: Timestamp, peer: Peer) {
        self.now = now;
        let keys: Vec<(u64, Side)> = self
            .ends
            .iter()
            .filter(|((p, _), _)| *p == peer)
            .map(|(_, v)| *v)
            .collect();
        for (key, side) in keys {
            // Tell the other side only.
            self.remove(
                key,
                DestroyReason::LinkClosed,
                side == Side::Next,
                side == Side::Prev,
                None,
            );
        }
        self.peers.remove(&peer);
    }

    fn peer(&mut self, peer: Peer, now: Timestamp) -> &mut PeerState {
        let rate = self.config.peer_rate;
        self.peers.entry(peer).or_insert_with(|| PeerState {
            bucket: TokenBucket::new(rate, now),
            circuits: 0,
            inbound: 0,
            next_circ_id: 0,
        })
    }

    fn on_create(
        &mut self,
        now: Timestamp,
        from: Peer,
        id: CircId,
        m: &crate::crypto::NtorClientMsg,
    ) {
        let cap = match from {
            Peer::Client(_) => self.config.max_circuits_per_client,
            Peer::Node(_) => self.config.max_circuits_per_node,
        };
        let inbound = self.peers.get(&from).map_or(0, |p| p.inbound);
        let refuse = |this: &mut Self, reason: DestroyReason, error: CircuitError| {
            // A peer flooding CREATEs gets refusals only while the driver keeps up; beyond
            // that the refusal is an event alone (the peer's build times out).
            if this.outbox.len() < MAX_REFUSALS_QUEUED {
                this.outbox
                    .push_back(transmit(from, id, ChanMsg::Destroy(reason)));
            }
            this.event(RelayEvent::CreateRefused { peer: from, error });
        };
        if inbound >= cap {
            return refuse(
                self,
                DestroyReason::ResourceLimit,
                CircuitError::TooManyCircuits,
            );
        }
        let mut y = [0u8; 32];
        self.rng.fill_bytes(&mut y);
        let (reply, keys) = match ntor_server(&self.id, &self.onion, m, y) {
            Ok(r) => r,
            Err(e) => return refuse(self, DestroyReason::Handshake, CircuitError::Handshake(e)),
        };
        let key = self.next_key;
        self.next_key = self.next_key.wrapping_add(1);
        let circ = RelayCirc {
            prev: (from, id),
            next: None,
            extending: false,
            crypto: HopCrypto::new(keys),
            early_seen: 0,
            streams: BTreeSet::new(),
            bucket: TokenBucket::new(self.config.circuit_rate, now),
            queue: VecDeque::new(),
            windows: Windows::default(),
            backlog: VecDeque::new(),
        };
        self.circuits.insert(key, circ);
        self.ends.insert((from, id), (key, Side::Prev));
        let p = self.peer(from, now);
        p.circuits += 1;
        p.inbound += 1;
        self.outbox
            .push_back(transmit(from, id, ChanMsg::Created(reply)));
        self.event(RelayEvent::CircuitCreated {
            peer: from,
            circ_id: id,
        });
    }

    fn on_forward(&mut self, now: Timestamp, key: u64, mut body: RelayBody, early: bool) {
        let max_early = self.config.max_relay_early;
        let Some(c) = self.circuits.get_mut(&key) else {
            return;
        };
        if early {
            c.early_seen = c.early_seen.saturating_add(1);
            if c.early_seen > max_early {
                return self.close(
                    key,
                    DestroyReason::ExtendLimit,
                    Some(CircuitError::ExtendLimit),
                );
            }
        }
        if let Err(e) = c.crypto.relay_open_forward(&mut body.0) {
            return self.close(
                key,
                DestroyReason::Integrity,
                Some(CircuitError::Integrity(e)),
            );
        }
        if c.extending {
            return self.close(
                key,
                DestroyReason::Protocol,
                Some(CircuitError::Unexpected("relay cell while extending")),
            );
        }
        if let Some((peer, id)) = c.next {
            let msg = if early {
                ChanMsg::RelayEarly(body)
            } else {
                ChanMsg::Relay(body)
            };
            return self.enqueue(now, key, peer, id, msg);
        }
        match RelayMsg::decode(&body.0[..RELAY_PLAINTEXT_LEN]) {
            Ok(msg) => self.on_relay_msg(now, key, msg, early),
            Err(e) => self.close(key, DestroyReason::Protocol, Some(CircuitError::Cell(e))),
        }
    }

    fn on_relay_msg(&mut self, now: Timestamp, key: u64, msg: RelayMsg, early: bool) {
        match msg {
            RelayMsg::Extend(m) => self.on_extend(now, key, &m, early),
            RelayMsg::Begin { stream, service } => {
                let max = self.config.max_streams_per_circuit;
                let Some(c) = self.circuits.get_mut(&key) else {
                    return;
                };
                if c.streams.contains(&stream) {
                    return self.close(
                        key,
                        DestroyReason::Protocol,
                        Some(CircuitError::Unexpected("BEGIN on an open stream")),
                    );
                }
                let at = StreamRef {
                    circuit: key,
                    stream,
                };
                let reply = if c.streams.len() >= max {
                    RelayMsg::End {
                        stream,
                        reason: EndReason::TooManyStreams,
                    }
                } else if self.services.open(now, &service, at) {
                    c.streams.insert(stream);
                    self.event(RelayEvent::StreamOpened { service });
                    RelayMsg::Connected { stream }
                } else {
                    RelayMsg::End {
                        stream,
                        reason: EndReason::UnknownService,
                    }
                };
                self.originate(now, key, &reply);
                self.run_services(now);
            }
            RelayMsg::Data { stream, data } => {
                let Some(c) = self.circuits.get_mut(&key) else {
                    return;
                };
                if let Err(e) = c.windows.on_data() {
                    return self.close(key, DestroyReason::Protocol, Some(e));
                }
                if c.streams.contains(&stream) {
                    let at = StreamRef {
                        circuit: key,
                        stream,
                    };
                    self.services.on_data(now, at, &data);
                    self.run_services(now);
                } else {
                    let end = RelayMsg::End {
                        stream,
                        reason: EndReason::Protocol,
                    };
                    self.originate(now, key, &end);
                }
                // The cell counted against the window: a SENDME may be due.
                self.flush_backlog(now, key);
            }
            RelayMsg::Sendme => {
                let Some(c) = self.circuits.get_mut(&key) else {
                    return;
                };
                if let Err(e) = c.windows.on_sendme() {
                    return self.close(key, DestroyReason::Protocol, Some(e));
                }
                self.flush_backlog(now, key);
            }
            RelayMsg::End { stream, .. } => {
                let removed = self
                    .circuits
                    .get_mut(&key)
                    .is_some_and(|c| c.streams.remove(&stream));
                if removed {
                    let at = StreamRef {
                        circuit: key,
                        stream,
                    };
                    self.services.on_closed(now, at);
                    self.run_services(now);
                }
            }
            RelayMsg::Drop => {}
            _ => self.close(
                key,
                DestroyReason::Protocol,
                Some(CircuitError::Unexpected("relay message towards a relay")),
            ),
        }
    }

    fn on_extend(
        &mut self,
        now: Timestamp,
        key: u64,
        m: &crate::crypto::NtorClientMsg,
        early: bool,
    ) {
        let target = m.node_id;
        let can = self
            .circuits
            .get(&key)
            .is_some_and(|c| c.next.is_none() && c.streams.is_empty());
        let check = if !early {
            Err(CircuitError::ExtendNotEarly)
        } else if !can {
            Err(CircuitError::CannotExtend)
        } else if target == self.id {
            Err(CircuitError::ExtendToSelf)
        } else {
            match self.directory.onion_key(&target) {
                None => Err(CircuitError::NotRegistered(target)),
                Some(r) if r.onion_key != m.onion_key => {
                    Err(CircuitError::OnionKeyMismatch(target))
                }
                Some(_) => Ok(()),
            }
        };
        if let Err(error) = check {
            self.event(RelayEvent::ExtendRefused {
                target,
                error: error.clone(),
            });
            return self.close(key, DestroyReason::ExtendRefused, Some(error));
        }
        let peer = Peer::Node(target);
        let Some(id) = self.alloc_circ_id(peer, target, now) else {
            return self.close(
                key,
                DestroyReason::ResourceLimit,
                Some(CircuitError::NoCircuitId),
            );
        };
        if let Some(c) = self.circuits.get_mut(&key) {
            c.next = Some((peer, id));
            c.extending = true;
        }
        self.ends.insert((peer, id), (key, Side::Next));
        self.peer(peer, now).circuits += 1;
        self.outbox
            .push_back(transmit(peer, id, ChanMsg::Create(*m)));
        self.event(RelayEvent::Extending { target });
    }

    /// Circuit ids we create on a link to `node` have the high bit set iff our id is greater,
    /// so the two ends of a node-to-node link never pick the same id.
    fn alloc_circ_id(&mut self, peer: Peer, node: NodeId, now: Timestamp) -> Option<CircId> {
        let high = if self.id > node { 0x8000_0000 } else { 0 };
        for _ in 0..64 {
            let st = self.peer(peer, now);
            st.next_circ_id = (st.next_circ_id % 0x7fff_ffff) + 1;
            let id = CircId::new(st.next_circ_id | high)?;
            if !self.ends.contains_key(&(peer, id)) {
                return Some(id);
            }
        }
        None
    }

    /// Carries out what the service hub asks, until it has nothing more (bounded per call, so
    /// a hub that keeps asking cannot stall the relay; the rest waits for the next poll).
    fn run_services(&mut self, now: Timestamp) {
        for _ in 0..MAX_SERVICE_ACTIONS_PER_POLL {
            let Some(action) = self.services.poll_action() else {
                return;
            };
            match action {
                ServiceAction::Send { to, data } => {
                    let msgs = data.chunks(MAX_BACKWARD_DATA).map(|chunk| RelayMsg::Data {
                        stream: to.stream,
                        data: chunk.to_vec(),
                    });
                    self.queue_for_client(now, to, msgs);
                }
                ServiceAction::End { stream } => {
                    // Queued while the stream is still open (behind the bytes before it),
                    // then closed to anything after.
                    let end = RelayMsg::End {
                        stream: stream.stream,
                        reason: EndReason::Done,
                    };
                    self.queue_for_client(now, stream, std::iter::once(end));
                    if let Some(c) = self.circuits.get_mut(&stream.circuit) {
                        c.streams.remove(&stream.stream);
                    }
                }
                ServiceAction::Destroy { circuit } => {
                    if self.circuits.contains_key(&circuit) {
                        self.close(circuit, DestroyReason::Requested, None);
                    }
                }
            }
        }
    }

    /// Puts messages for the client on an open stream behind what already waits for the
    /// window, then sends what it lets out. More than the backlog holds closes the circuit:
    /// the client is not taking delivery.
    fn queue_for_client(
        &mut self,
        now: Timestamp,
        at: StreamRef,
        msgs: impl Iterator<Item = RelayMsg>,
    ) {
        let max_backlog = self.config.max_queue_per_circuit;
        let Some(c) = self.circuits.get_mut(&at.circuit) else {
            return;
        };
        if !c.streams.contains(&at.stream) {
            return;
        }
        c.backlog.extend(msgs);
        if c.backlog.len() > max_backlog {
            return self.close(
                at.circuit,
                DestroyReason::QueueOverflow,
                Some(CircuitError::QueueOverflow),
            );
        }
        self.flush_backlog(now, at.circuit);
    }

    /// Sends what the window lets out of the backlog, then the SENDMEs owed to the client,
    /// unless the backlog is still longer than one increment (the client is not reading:
    /// holding our SENDMEs stops it from sending more).
    fn flush_backlog(&mut self, now: Timestamp, key: u64) {
        loop {
            let Some(c) = self.circuits.get_mut(&key) else {
                return;
            };
            let front_ready = match c.backlog.front() {
                Some(RelayMsg::Data { .. }) => c.windows.take_package(),
                Some(_) => true,
                None => false,
            };
            let msg = if front_ready {
                c.backlog.pop_front()
            } else if c.backlog.len() < usize::from(SENDME_INCREMENT) && c.windows.sendme_due() {
                c.windows.sendme_sent();
                Some(RelayMsg::Sendme)
            } else {
                None
            };
            let Some(msg) = msg else {
                return;
            };
            self.originate(now, key, &msg);
        }
    }

    /// Sends `msg` towards the client as the last hop: one seal, queued under the limits.
    fn originate(&mut self, now: Timestamp, key: u64, msg: &RelayMsg) {
        let mut body = Box::new([0u8; BODY_LEN]);
        let Some(c) = self.circuits.get_mut(&key) else {
            return;
        };
        let sealed = msg
            .encode_into(&mut body[..RELAY_PLAINTEXT_LEN])
            .map_err(CircuitError::Cell)
            .and_then(|_| {
                c.crypto
                    .relay_seal_backward(&mut body)
                    .map_err(CircuitError::Integrity)
            });
        let (peer, id) = c.prev;
        match sealed {
            Ok(()) => self.enqueue(now, key, peer, id, ChanMsg::Relay(RelayBody(body))),
            Err(e) => self.close(key, DestroyReason::Internal, Some(e)),
        }
    }

    fn enqueue(&mut self, now: Timestamp, key: u64, to: Peer, id: CircId, msg: ChanMsg) {
        let max = self.config.max_queue_per_circuit;
        let Some(c) = self.circuits.get_mut(&key) else {
            return;
        };
        if c.queue.len() >= max {
            return self.close(
                key,
                DestroyReason::QueueOverflow,
                Some(CircuitError::QueueOverflow),
            );
        }
        if c.queue.is_empty() {
            self.active.push_back(key);
            self.heads.insert((now, key));
        }
        c.queue.push_back(Queued {
            to,
            cell: Box::new(Cell { circ_id: id, msg }.encode()),
            at: now,
        });
        self.queued_total += 1;
        while self.queued_total > self.config.max_queued_cells {
            match self.heads.first().copied() {
                Some((_, k)) => self.close(
                    k,
                    DestroyReason::MemoryPressure,
                    Some(CircuitError::MemoryPressure),
                ),
                None => break,
            }
        }
    }

    /// Closes a circuit on a local decision: DESTROY both ways.
    fn close(&mut self, key: u64, reason: DestroyReason, cause: Option<CircuitError>) {
        self.remove(key, reason, true, true, cause);
    }

    fn remove(
        &mut self,
        key: u64,
        reason: DestroyReason,
        notify_prev: bool,
        notify_next: bool,
        cause: Option<CircuitError>,
    ) {
        let Some(c) = self.circuits.remove(&key) else {
            return;
        };
        self.queued_total = self.queued_total.saturating_sub(c.queue.len());
        if let Some(head) = c.queue.front() {
            self.heads.remove(&(head.at, key));
        }
        self.ends.remove(&c.prev);
        self.release_peer(c.prev.0, true);
        if notify_prev {
            self.outbox
                .push_back(transmit(c.prev.0, c.prev.1, ChanMsg::Destroy(reason)));
        }
        if let Some(next) = c.next {
            self.ends.remove(&next);
            self.release_peer(next.0, false);
            if notify_next {
                self.outbox
                    .push_back(transmit(next.0, next.1, ChanMsg::Destroy(reason)));
            }
        }
        // The hub's answers to these wait for the next poll (this runs inside other calls).
        for stream in c.streams {
            let at = StreamRef {
                circuit: key,
                stream,
            };
            self.services.on_closed(self.now, at);
        }
        self.event(RelayEvent::CircuitClosed {
            peer: c.prev.0,
            circ_id: c.prev.1,
            reason,
            cause,
        });
    }

    fn release_peer(&mut self, peer: Peer, inbound: bool) {
        if let Some(p) = self.peers.get_mut(&peer) {
            p.circuits = p.circuits.saturating_sub(1);
            if inbound {
                p.inbound = p.inbound.saturating_sub(1);
            }
            if p.circuits == 0 {
                self.peers.remove(&peer);
            }
        }
    }

    /// Next cell to send at `now`: control cells first, then relay cells round-robin over
    /// circuits whose circuit and peer buckets both have a token.
    pub fn poll_transmit(&mut self, now: Timestamp) -> Option<Transmit> {
        self.now = now;
        if self.services.poll_timeout().is_some_and(|t| t <= now) {
            self.services.on_timeout(now);
        }
        self.run_services(now);
        if let Some(t) = self.outbox.pop_front() {
            return Some(t);
        }
        for _ in 0..self.active.len() {
            let key = self.active.pop_front()?;
            let Some(c) = self.circuits.get_mut(&key) else {
                continue;
            };
            let Some(head) = c.queue.front() else {
                continue;
            };
            let to = head.to;
            let peer_ok = match self.peers.get_mut(&to) {
                Some(p) => p.bucket.ready(now),
                None => true,
            };
            if peer_ok && c.bucket.ready(now) {
                c.bucket.take();
                if let Some(p) = self.peers.get_mut(&to) {
                    p.bucket.take();
                }
                let q = c.queue.pop_front()?;
                self.heads.remove(&(q.at, key));
                if let Some(next) = c.queue.front() {
                    self.heads.insert((next.at, key));
                    self.active.push_back(key);
                }
                self.queued_total = self.queued_total.saturating_sub(1);
                return Some(Transmit { to, cell: q.cell });
            }
            self.active.push_back(key);
        }
        None
    }

    /// When queued cells can next be released or the services need the time (`None`:
    /// nothing queued, no service deadline).
    pub fn poll_timeout(&self) -> Option<Timestamp> {
        let services = self.services.poll_timeout();
        let cells = self
            .active
            .iter()
            .filter_map(|k| self.circuits.get(k))
            .filter_map(|c| {
                let head = c.queue.front()?;
                let mut t = c.bucket.ready_at()?;
                if let Some(p) = self.peers.get(&head.to) {
                    t = t.max(p.bucket.ready_at()?);
                }
                Some(t)
            })
            .min();
        match (cells, services) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }
}
