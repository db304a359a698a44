//! # Core: the agent's state and decisions, sans IO
//!
//! Everything the agent decides — which node each stream goes to, which machine a stream's
//! bytes belong to, when a presence point is replaced, which presence record to try next,
//! what goes to the inbox — happens here, in plain synchronous code with time passed in as
//! `now` (unix seconds). The async [`Agent`](super::Agent) only moves bytes and runs the
//! [`Action`]s, so the whole flow runs in tests on in-memory node services.
//!
//! ## Terminology
//! * **Point**: one presence point (an `Announcer` on its own stream) in a slot. A point
//!   that ends is replaced in the same slot on a new path, at once and then with backoff.
//! * **Request**: a pending introduction, numbered for `accept` / `decline`; accepting it
//!   starts a **join** (a `Responder` on a stream to the introducer's rendezvous node). With
//!   [`CoreConfig::accept_all`] every request is accepted as it arrives.
//! * **Connect**: reaching a peer: a **lookup** (a `Looker` on a stream to a random node's
//!   `lookup` service), then one **attempt** per presence record (an `Initiator` on two
//!   streams), most recent record first, until one gives a channel. A send restricted to
//!   one presence node (`Command::Send::presence_node`) tries only the records there.
//! * **Channel**: an established `Session`, numbered, one per peer for sending.
//!
//! ## Hops
//! Every circuit takes [`CoreConfig::hops`] hops, entering through the agent's entry guard,
//! except: public points ([`CoreConfig::public`]) register on the first hop, and a direct
//! agent ([`CoreConfig::direct`]) builds in one hop its rendezvous circuits (as caller and
//! to join a caller's point) and its introductions to public points. Look-ups and
//! introductions to anonymous points always take `hops`.
//!
//! ## Interface
//! Inputs: [`Core::start`], the stream events ([`Core::stream_opened`],
//! [`Core::stream_failed`], [`Core::stream_data`], [`Core::stream_closed`]),
//! [`Core::command`], [`Core::handle_timeout`] at [`Core::poll_timeout`]. Outputs:
//! [`Core::take_actions`], in order. Before feeding a presence stream's bytes, fetch the
//! statuses [`Core::keys_to_fetch`] names (the introducers', which the checks will ask).
//!
//! ## Bounds
//! Points ≤ [`CoreConfig::max_points`]; requests ≤ points × the announcer's pending bound;
//! connects, lookups, joins and channels each ≤ their `max_*`; bytes queued for a connect
//! ≤ [`CoreConfig::max_queued_bytes`]; inbox per [`InboxLimits`]; inbox waiters ≤
//! [`CoreConfig::max_inbox_waiters`]. Actions are drained after every input.

mod channels;
mod connect;
mod lookup;
mod paths;
mod points;
mod requests;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::sync::Arc;

use psp_net::rendezvous::client::{
    AnnouncerConfig, Identity, InitiatorConfig, LookerConfig, Output, ResponderConfig, Transmit,
};
use psp_net::rendezvous::replay::{ReplayCache, ReplayConfig};
use psp_net::rendezvous::wire::ChannelLimits;
use psp_net::rendezvous::StreamHandle;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::SeedableRng;

use super::chainview::ChainState;
use super::error::MessagingError;
use super::events::AgentEvent;
use super::inbox::{Inbox, InboxLimits};
use super::net::OpenRequest;
use super::protocol::{Reply, Response};
use super::views::StatusView;
use crate::hex0x;

pub use psp_net::driver::messaging::{LOOKUP_SERVICE, PRESENCE_SERVICE, RENDEZVOUS_SERVICE};

/// What the core does and how much it holds. Defaults per field.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CoreConfig {
    /// Presence points held at once. Default 2.
    pub points: u8,
    /// Points at most, counting those added when a point's channel cap is reached. Default
    /// 4, the slots a look-up fetches ([`Self::lookup_slots`]).
    pub max_points: u8,
    /// Public points (registered on the first hop) instead of anonymous ones. Default false.
    pub public: bool,
    /// This agent does not hide its address: its rendezvous circuits (the ones it sets up
    /// as caller and the ones it builds to join a caller's rendezvous point) take one hop,
    /// and so do its introductions to public presence points (records flagged public).
    /// Anonymous points are still reached over [`Self::hops`], and look-ups too. Default
    /// false.
    pub direct: bool,
    /// Accept every introduction that passes its checks at once, as `accept` would (the
    /// `introduction-received` event is still emitted, then the channel opens): for a
    /// public service or a benchmark. Default false.
    pub accept_all: bool,
    /// Contact-only mode: the identity keys whose introductions are let through (to
    /// `requests`, or accepted at once with [`Self::accept_all`]). Any other introducer is
    /// declined here, at the client, with an ordinary decline (the presence node learns
    /// nothing more), and only an `introduction-declined-not-a-contact` event tells of it.
    /// `None` (the default): everyone's introductions are let through.
    pub contacts: Option<Arc<BTreeSet<[u8; 32]>>>,
    /// Introduction rate and channel cap asked of each presence node. Default
    /// [`ChannelLimits::default`] (6 a minute, bursts of 3, 16 channels).
    pub limits: ChannelLimits,
    /// Hops of every anonymous circuit, the target included. Default 3.
    pub hops: usize,
    /// Presence slots a look-up fetches (`0..lookup_slots`). Default 4.
    pub lookup_slots: u8,
    /// Record lifetime, deadlines and pending bound of each point (slot, public flag and
    /// limits are set per point). Default [`AnnouncerConfig::default`].
    pub announcer: AnnouncerConfig,
    /// Deadlines and channel bounds of attempts. Default [`InitiatorConfig::default`].
    pub initiator: InitiatorConfig,
    /// Deadline and channel bounds of joins. Default [`ResponderConfig::default`].
    pub responder: ResponderConfig,
    /// Deadline of look-ups. Default [`LookerConfig::default`] (30 s).
    pub looker: LookerConfig,
    /// Channels open at once, joins included. Default 64.
    pub max_channels: usize,
    /// Connects under way at once. Default 16.
    pub max_connects: usize,
    /// Look-ups under way at once (connects' included). Default 16.
    pub max_lookups: usize,
    /// Bytes of messages queued for a channel being opened. Default 2 MiB.
    pub max_queued_bytes: usize,
    /// Messages queued for a channel being opened. Default 16.
    pub max_queued_messages: usize,
    /// `inbox --wait` requests waiting at once. Default 64.
    pub max_inbox_waiters: usize,
    /// Inbox bounds. Default [`InboxLimits::default`].
    pub inbox: InboxLimits,
    /// The replay cache shared by all points. Default [`ReplayConfig::default`].
    pub replay: ReplayConfig,
    /// First backoff before replacing a point that failed again. Default 2 s (the first
    /// replacement is immediate); it doubles up to [`Self::retry_max_secs`].
    pub retry_min_secs: u64,
    /// Longest backoff. Default 60 s.
    pub retry_max_secs: u64,
}

impl Default for CoreConfig {
    fn default() -> Self {
        Self {
            points: 2,
            max_points: 4,
            public: false,
            direct: false,
            accept_all: false,
            contacts: None,
            limits: ChannelLimits::default(),
            hops: 3,
            lookup_slots: 4,
            announcer: AnnouncerConfig::default(),
            initiator: InitiatorConfig::default(),
            responder: ResponderConfig::default(),
            looker: LookerConfig::default(),
            max_channels: 64,
            max_connects: 16,
            max_lookups: 16,
            max_queued_bytes: 2 << 20,
            max_queued_messages: 16,
            max_inbox_waiters: 64,
            inbox: InboxLimits::default(),
            replay: ReplayConfig::default(),
            retry_min_secs: 2,
            retry_max_secs: 60,
        }
    }
}

/// Names a control request until its answer, which comes as [`Action::Reply`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Ticket(pub u64);

/// A control request, its identity arguments resolved to keys.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command {
    /// The status.
    Status,
    /// Look up a peer's presence records.
    Lookup {
        /// The peer's identity key (status cached).
        peer: [u8; 32],
    },
    /// Send a message, opening a channel if needed.
    Send {
        /// The peer's identity key (status cached).
        peer: [u8; 32],
        /// The message.
        bytes: Vec<u8>,
        /// Open the channel only through the peer's presence point at this node (`None`:
        /// any). An open channel to the peer is used whatever its point.
        presence_node: Option<[u8; 32]>,
    },
    /// The pending requests.
    Requests,
    /// Accept a request.
    Accept(u64),
    /// Decline a request.
    Decline(u64),
    /// Take inbox messages.
    Inbox {
        /// Seconds to wait for one when empty.
        wait_secs: u64,
        /// Most to take.
        max: Option<usize>,
    },
    /// Close a channel.
    Close(u64),
}

/// What the driver must do, in order.
#[derive(Debug)]
pub enum Action {
    /// Open a stream (report it with `stream_opened` / `stream_failed`).
    Open(OpenRequest),
    /// Write bytes on an open stream.
    Write(Transmit),
    /// Close a stream after its writes (also one still opening: drop it when it opens).
    Close(StreamHandle),
    /// Answer a control request.
    Reply {
        /// The request.
        ticket: Ticket,
        /// The answer.
        response: Response,
    },
    /// Report an event.
    Event(AgentEvent),
    /// A group envelope arrived on a channel: for the groups host, not the inbox.
    GroupPacket {
        /// The channel's proven peer.
        from: [u8; 32],
        /// The envelope.
        bytes: Vec<u8>,
    },
}

/// Which part of the core a stream belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Owner {
    Point(u8),
    Lookup(u64),
    Attempt(u64),
    Join(u64),
    Session(u64),
}

/// The agent's state.
pub struct Core {
    identity: Arc<Identity>,
    id_string: String,
    certificate_not_after: u64,
    config: CoreConfig,
    chain: ChainState,
    nodes: Vec<[u8; 32]>,
    /// The entry of every anonymous circuit ([`paths`]).
    guard: Option<[u8; 32]>,
    /// Every node that learned this agent's identity: the nodes its anonymous points were
    /// ever registered at. Never made an entry ([`paths`]).
    knows_identity: BTreeSet<[u8; 32]>,
    /// Every node that learned its address: the entries of its circuits so far. Never made an
    /// anonymous presence node.
    knows_address: BTreeSet<[u8; 32]>,
    /// Circuits in a row that failed to open.
    open_failures: u32,
    rng: StdRng,
    replay: ReplayCache,
    next_id: u64,
    owners: HashMap<StreamHandle, Owner>,
    points: BTreeMap<u8, points::Point>,
    requests: BTreeMap<u64, requests::PendingRequest>,
    joins: BTreeMap<u64, requests::Join>,
    lookups: BTreeMap<u64, lookup::LookupRun>,
    connects: BTreeMap<u64, connect::Connect>,
    channels: BTreeMap<u64, channels::Channel>,
    by_peer: HashMap<[u8; 32], u64>,
    inbox: Inbox,
    inbox_waiters: VecDeque<channels::InboxWaiter>,
    actions: VecDeque<Action>,
}

impl std::fmt::Debug for Core {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Core")
            .field("identity", &hex0x(&self.identity.id()))
            .field("points", &self.points.len())
            .field("channels", &self.channels.len())
            .finish_non_exhaustive()
    }
}

impl Core {
    /// A core for `identity` (whose id string is `id_string` and whose certificate ends at
    /// `certificate_not_after`), checking against `chain`. `seed` seeds its random choices
    /// (paths, cookies, handshake keys): give it 32 bytes from the OS in production.
    pub fn new(
        identity: Arc<Identity>,
        id_string: String,
        certificate_not_after: u64,
        chain: ChainState,
        config: CoreConfig,
        seed: [u8; 32],
    ) -> Self {
        Self {
            identity,
            id_string,
            certificate_not_after,
            replay: ReplayCache::new(config.replay),
            inbox: Inbox::new(config.inbox),
            config,
            chain,
            nodes: Vec::new(),
            guard: None,
            knows_identity: BTreeSet::new(),
            knows_address: BTreeSet::new(),
            open_failures: 0,
            rng: StdRng::from_seed(seed),
            next_id: 0,
            owners: HashMap::new(),
            points: BTreeMap::new(),
            requests: BTreeMap::new(),
            joins: BTreeMap::new(),
            lookups: BTreeMap::new(),
            connects: BTreeMap::new(),
            channels: BTreeMap::new(),
            by_peer: HashMap::new(),
            inbox_waiters: VecDeque::new(),
            actions: VecDeque::new(),
        }
    }

    /// Opens the configured presence points.
    pub fn start(&mut self, now: u64) {
        for slot in 0..self.config.points.min(self.config.max_points) {
            self.open_point(now, slot);
        }
    }

    /// The registered overlay nodes (keys) to choose presence, rendezvous and lookup nodes
    /// from; they are also active nodes for the checks.
    pub fn set_nodes(&mut self, nodes: Vec<[u8; 32]>) {
        self.chain.registry.set_nodes(nodes.iter().copied());
        self.nodes = nodes;
        self.ensure_guard();
    }

    /// The chain state, to update after a refresh.
    pub fn chain_mut(&mut self) -> &mut ChainState {
        &mut self.chain
    }

    /// The chain state.
    pub fn chain(&self) -> &ChainState {
        &self.chain
    }

    /// The identity in use.
    pub fn identity(&self) -> &Arc<Identity> {
        &self.identity
    }

    /// The configuration.
    pub fn config(&self) -> &CoreConfig {
        &self.config
    }

    /// Everything to do, in order.
    pub fn take_actions(&mut self) -> Vec<Action> {
        self.actions.drain(..).collect()
    }

    /// A control request; its answer comes as an [`Action::Reply`] for `ticket` (at once, or
    /// when a connect, join or inbox wait ends).
    pub fn command(&mut self, now: u64, ticket: Ticket, command: Command) {
        match command {
            Command::Status => {
                let status = self.status();
                self.reply(ticket, Ok(Reply::Status(status)));
            }
            Command::Lookup { peer } => {
                if let Err(e) = self.start_lookup(peer, lookup::Purpose::Report(ticket)) {
                    self.reply(ticket, Err(e));
                }
            }
            Command::Send {
                peer,
                bytes,
                presence_node,
            } => self.send(ticket, peer, bytes, presence_node),
            Command::Requests => {
                let requests = self.request_views();
                self.reply(ticket, Ok(Reply::Requests { requests }));
            }
            Command::Accept(request) => self.accept(ticket, request),
            Command::Decline(request) => self.decline(ticket, request),
            Command::Inbox { wait_secs, max } => self.take_inbox(now, ticket, wait_secs, max),
            Command::Close(channel) => self.close_channel(ticket, channel),
        }
    }

    /// A stream asked for with [`Action::Open`] is open. Returns false if nothing wants it
    /// any more: close it.
    pub fn stream_opened(&mut self, now: u64, stream: StreamHandle) -> bool {
        self.circuit_opened();
        match self.owners.get(&stream).copied() {
            Some(Owner::Point(slot)) => self.point_opened(now, slot, stream),
            Some(Owner::Lookup(id)) => self.lookup_opened(now, id),
            Some(Owner::Attempt(id)) => self.attempt_opened(now, id),
            Some(Owner::Join(request)) => self.join_opened(now, request),
            Some(Owner::Session(_)) | None => return false,
        }
        true
    }

    /// A stream could not be opened.
    pub fn stream_failed(&mut self, now: u64, stream: StreamHandle, reason: &str) {
        let Some(owner) = self.owners.remove(&stream) else {
            return;
        };
        self.circuit_failed();
        match owner {
            Owner::Point(slot) => self.point_lost(now, slot, format!("no circuit: {reason}")),
            Owner::Lookup(id) => {
                let error = format!("no circuit to a lookup node: {reason}");
                self.lookup_done(now, id, Err(error));
            }
            Owner::Attempt(id) => self.attempt_failed(now, id, format!("no circuit: {reason}")),
            Owner::Join(request) => {
                let reason = format!("no circuit to the rendezvous node: {reason}");
                self.join_failed(request, reason);
            }
            Owner::Session(_) => {}
        }
    }

    /// Bytes arrived on a stream.
    pub fn stream_data(&mut self, now: u64, stream: StreamHandle, bytes: &[u8]) {
        match self.owners.get(&stream).copied() {
            Some(Owner::Point(slot)) => self.point_data(now, slot, bytes),
            Some(Owner::Lookup(id)) => self.lookup_data(now, id, bytes),
            Some(Owner::Attempt(id)) => self.attempt_data(now, id, stream, bytes),
            Some(Owner::Join(request)) => self.join_data(now, request, bytes),
            Some(Owner::Session(channel)) => self.session_data(now, channel, bytes),
            None => {}
        }
    }

    /// A stream ended without our asking (the node closed it, the circuit died).
    pub fn stream_closed(&mut self, now: u64, stream: StreamHandle, reason: &str) {
        let Some(owner) = self.owners.get(&stream).copied() else {
            return;
        };
        match owner {
            Owner::Point(slot) => self.point_closed(now, slot, reason),
            Owner::Lookup(id) => self.lookup_closed(now, id),
            Owner::Attempt(id) => self.attempt_closed(now, id, stream),
            Owner::Join(request) => self.join_closed(now, request),
            Owner::Session(channel) => self.session_closed(now, channel),
        }
        // Whatever the machine made of it, the stream is gone: let the driver drop it.
        self.close_stream(stream);
    }

    /// When [`Self::handle_timeout`] must run next.
    pub fn poll_timeout(&self) -> Option<u64> {
        let points = self.points.values().filter_map(points::Point::poll_timeout);
        let joins = self
            .joins
            .values()
            .filter_map(|j| j.responder.as_ref()?.poll_timeout());
        let lookups = self
            .lookups
            .values()
            .filter_map(|l| l.looker.as_ref()?.poll_timeout());
        let connects = self
            .connects
            .values()
            .filter_map(connect::Connect::poll_timeout);
        let waiters = self.inbox_waiters.iter().map(|w| w.deadline);
        points
            .chain(joins)
            .chain(lookups)
            .chain(connects)
            .chain(waiters)
            .min()
    }

    /// Runs every machine's timers due at `now`.
    pub fn handle_timeout(&mut self, now: u64) {
        self.points_timeout(now);
        self.joins_timeout(now);
        self.lookups_timeout(now);
        self.connects_timeout(now);
        self.waiters_timeout(now);
    }

    /// Uses a renewed certificate (same keys) from now on.
    pub fn renew_certificate(&mut self, now: u64, identity: Arc<Identity>, not_after: u64) {
        for point in self.points.values_mut() {
            if let Some(announcer) = point.announcer.as_mut() {
                announcer.renew_certificate(now, identity.certificate().to_vec());
            }
        }
        self.identity = identity;
        self.certificate_not_after = not_after;
        self.emit(AgentEvent::CertificateRenewed { not_after });
    }

    /// The stream and channel a `send` to `peer` would use now, if a channel is open: the
    /// driver checks the stream has room for the message's frames first.
    pub fn channel_to(&self, peer: &[u8; 32]) -> Option<(u64, StreamHandle)> {
        let channel = *self.by_peer.get(peer)?;
        let stream = self.channels.get(&channel)?.session.stream();
        Some((channel, stream))
    }

    /// Frames a message of `len` bytes takes on a channel.
    pub fn frames_for(&self, len: usize) -> usize {
        self.config.initiator.channel.frames_for(len)
    }

    /// The agent's status.
    pub fn status(&self) -> StatusView {
        StatusView {
            identity: hex0x(&self.identity.id()),
            id: self.id_string.clone(),
            certificate_not_after: self.certificate_not_after,
            points: self.points.values().map(|p| p.view(&self.config)).collect(),
            channels: self.channels.iter().map(|(id, c)| c.view(*id)).collect(),
            guard: self.guard.map(|g| hex0x(&g)),
            requests: self.requests.len(),
            connects: self.connects.len(),
            inbox: self.inbox.stats(),
            nodes: self.nodes.len(),
        }
    }

    // --- shared helpers

    fn next_id(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    /// Asks the driver for a stream to `service` at `target` over `hops` hops ([`paths`]),
    /// owned by `owner`.
    fn open(
        &mut self,
        owner: Owner,
        target: [u8; 32],
        service: &'static str,
        hops: usize,
    ) -> Result<StreamHandle, MessagingError> {
        let path = self.path_to(target, hops)?;
        Ok(self.open_path(owner, path, service))
    }

    /// Asks the driver for a stream to `service` at the end of `path`.
    fn open_path(
        &mut self,
        owner: Owner,
        path: Vec<[u8; 32]>,
        service: &'static str,
    ) -> StreamHandle {
        let stream = StreamHandle(self.next_id());
        self.owners.insert(stream, owner);
        self.knows_address.extend(path.first().copied());
        self.actions.push_back(Action::Open(OpenRequest {
            stream,
            path,
            service,
        }));
        stream
    }

    /// A random registered node not in `avoid` (any node if all are avoided).
    fn pick_node(&mut self, avoid: &[[u8; 32]]) -> Option<[u8; 32]> {
        let free: Vec<[u8; 32]> = self
            .nodes
            .iter()
            .filter(|n| !avoid.contains(n))
            .copied()
            .collect();
        let pool = if free.is_empty() { &self.nodes } else { &free };
        pool.choose(&mut self.rng).copied()
    }

    /// Forgets a stream and tells the driver to close it (no-op if already forgotten).
    fn close_stream(&mut self, stream: StreamHandle) {
        if self.owners.remove(&stream).is_some() {
            self.actions.push_back(Action::Close(stream));
        }
    }

    /// Runs a machine's output: writes, closes; returns its events.
    fn apply<E>(&mut self, out: Output<E>) -> Vec<E> {
        for transmit in out.transmits {
            self.actions.push_back(Action::Write(transmit));
        }
        for stream in out.close {
            self.close_stream(stream);
        }
        out.events
    }

    fn write(&mut self, transmit: Transmit) {
        self.actions.push_back(Action::Write(transmit));
    }

    fn emit(&mut self, event: AgentEvent) {
        self.actions.push_back(Action::Event(event));
    }

    fn reply(&mut self, ticket: Ticket, result: Result<Reply, MessagingError>) {
        self.actions.push_back(Action::Reply {
            ticket,
            response: result.into(),
        });
    }
}
