//! An in-memory network for the client machines: two presence nodes and a rendezvous node
//! (the real services), streams routed by handle, a DHT of co-signed records, and what each
//! node received. The tests play the client driver: they move bytes between the machines
//! and this network, and jump time.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use psp_dht::{record_key, RecordKey, RecordKind, RecordLimits, SignedRecord};
use psp_onion::crypto::Sr25519Keypair;
use psp_onion::registry::IdentityKind;
use psp_rendezvous::client::{
    presence_topic, Announcer, AnnouncerConfig, AnnouncerEvent, Identity, Initiator,
    InitiatorConfig, InitiatorEvent, InitiatorStreams, Output, Responder, ResponderConfig,
    ResponderEvent, Session, SessionEvent, Transmit,
};
use psp_rendezvous::intro::VerifiedIntroduction;
use psp_rendezvous::presence::{self, Presence};
use psp_rendezvous::record::{verify_presence_record, VerifiedPresence};
use psp_rendezvous::rendezvous::{self, Rendezvous};
use psp_rendezvous::replay::ReplayCache;
use psp_rendezvous::{IntroId, StreamHandle};

use super::{rendezvous_service, Client, TestRng, World, NOW};

/// Which node service a stream reaches.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Service {
    /// The presence service of the presence node with this index.
    Presence(usize),
    /// The rendezvous node's service.
    Rendezvous,
}

/// A presence node: its key (to co-sign) and its service.
pub struct PresenceNode {
    pub key: Sr25519Keypair,
    pub service: Presence,
}

pub struct Net {
    pub world: World,
    pub now: u64,
    pub presence: Vec<PresenceNode>,
    pub rendezvous: Rendezvous,
    routes: HashMap<StreamHandle, Service>,
    /// Bytes the nodes wrote to each stream, not yet read by its client.
    inbox: HashMap<StreamHandle, Vec<u8>>,
    /// Streams a node closed, not yet reported to their client.
    closed_by_node: HashSet<StreamHandle>,
    /// The DHT: encoded co-signed records by key.
    pub dht: BTreeMap<RecordKey, Vec<u8>>,
    /// Every byte the rendezvous node received.
    pub seen_by_rendezvous: Vec<u8>,
    /// Every byte each presence node received, per stream.
    pub seen_by_presence: HashMap<StreamHandle, Vec<u8>>,
    /// Transmits to these streams are lost (a silent node, a dead circuit).
    pub black_holes: HashSet<StreamHandle>,
}

/// An identity for the client machines.
pub fn identity(client: Client) -> Arc<Identity> {
    Arc::new(Identity::new(
        client.key,
        client.certificate,
        client.announcement,
    ))
}

impl Net {
    /// The world's presence node and a second one, and the rendezvous node.
    pub fn new() -> Self {
        let mut world = World::new();
        let second = Sr25519Keypair::from_seed(&[0xb1; 32]);
        world.registry.insert(second.public(), IdentityKind::Node);
        let first = Sr25519Keypair::from_seed(&[0xb0; 32]);
        let presence = [first, second]
            .into_iter()
            .map(|key| PresenceNode {
                service: Presence::new(key.public(), presence::PresenceConfig::default()),
                key,
            })
            .collect();
        Self {
            world,
            now: NOW,
            presence,
            rendezvous: rendezvous_service(),
            routes: HashMap::new(),
            inbox: HashMap::new(),
            closed_by_node: HashSet::new(),
            dht: BTreeMap::new(),
            seen_by_rendezvous: Vec::new(),
            seen_by_presence: HashMap::new(),
            black_holes: HashSet::new(),
        }
    }

    pub fn identity(&mut self, seed: u8) -> Arc<Identity> {
        identity(self.world.client(seed))
    }

    pub fn presence_id(&self, node: usize) -> [u8; 32] {
        self.presence[node].key.public()
    }

    /// The index of the presence node with this identity.
    pub fn presence_index(&self, node: &[u8; 32]) -> usize {
        self.presence
            .iter()
            .position(|n| &n.key.public() == node)
            .expect("a known presence node")
    }

    pub fn rendezvous_id(&self) -> [u8; 32] {
        self.world.rendezvous_node.public()
    }

    /// Opens a stream to a node service.
    pub fn open(&mut self, stream: StreamHandle, service: Service) {
        self.routes.insert(stream, service);
    }

    /// Writes a client's bytes to the node at the stream's end.
    pub fn write(&mut self, transmit: Transmit) {
        let Transmit { stream, bytes } = transmit;
        if self.black_holes.contains(&stream) {
            return;
        }
        let now = self.now;
        match self.routes.get(&stream).copied() {
            Some(Service::Presence(node)) => {
                self.seen_by_presence
                    .entry(stream)
                    .or_default()
                    .extend_from_slice(&bytes);
                let chain = self.world.chain();
                let _ = self.presence[node]
                    .service
                    .handle_data(now, stream, &bytes, &chain);
            }
            Some(Service::Rendezvous) => {
                // Every message to the rendezvous node fits the data of one 3-hop cell.
                assert!(bytes.len() <= psp_onion::cell::max_forward_data(3));
                self.seen_by_rendezvous.extend_from_slice(&bytes);
                let _ = self.rendezvous.handle_data(now, stream, &bytes);
            }
            None => panic!("write to unopened stream {stream:?}"),
        }
        self.run_node_actions();
    }

    /// Runs a client machine's output: writes, closes; returns its events.
    pub fn apply<E>(&mut self, out: Output<E>) -> Vec<E> {
        for transmit in out.transmits {
            self.write(transmit);
        }
        for stream in out.close {
            self.client_closed(stream);
        }
        out.events
    }

    /// The client closed a stream.
    pub fn client_closed(&mut self, stream: StreamHandle) {
        match self.routes.remove(&stream) {
            Some(Service::Presence(node)) => {
                self.presence[node].service.handle_stream_closed(stream)
            }
            Some(Service::Rendezvous) => self.rendezvous.handle_stream_closed(stream),
            None => {}
        }
        self.inbox.remove(&stream);
        self.closed_by_node.remove(&stream);
        self.run_node_actions();
    }

    /// What the nodes wrote to `stream` since the last call.
    pub fn take(&mut self, stream: StreamHandle) -> Vec<u8> {
        self.inbox.remove(&stream).unwrap_or_default()
    }

    /// Whether a node closed `stream` (reported once).
    pub fn take_closed(&mut self, stream: StreamHandle) -> bool {
        self.closed_by_node.remove(&stream)
    }

    /// Moves time to `now` and runs the nodes' timers.
    pub fn advance(&mut self, now: u64) {
        self.now = now;
        for node in &mut self.presence {
            node.service.handle_timeout(now);
        }
        self.rendezvous.handle_timeout(now);
        self.run_node_actions();
    }

    fn run_node_actions(&mut self) {
        for node in 0..self.presence.len() {
            while let Some(action) = self.presence[node].service.poll_action() {
                match action {
                    presence::Action::Send { stream, bytes } => self.deliver(stream, bytes),
                    presence::Action::Close { stream } | presence::Action::Teardown { stream } => {
                        self.node_closed(stream)
                    }
                    presence::Action::Publish {
                        content,
                        owner_signature,
                    } => {
                        let key = content.key();
                        let record = SignedRecord::cosign(
                            content,
                            owner_signature,
                            &self.presence[node].key,
                        );
                        self.dht.insert(key, record.encode());
                    }
                    presence::Action::Unpublish { key, .. } => {
                        self.dht.remove(&key);
                    }
                    other => panic!("unknown presence action {other:?}"),
                }
            }
        }
        while let Some(action) = self.rendezvous.poll_action() {
            match action {
                rendezvous::Action::Send { stream, bytes } => self.deliver(stream, bytes),
                rendezvous::Action::Close { stream } => self.node_closed(stream),
                other => panic!("unknown rendezvous action {other:?}"),
            }
        }
    }

    fn deliver(&mut self, stream: StreamHandle, bytes: Vec<u8>) {
        if self.routes.contains_key(&stream) {
            self.inbox.entry(stream).or_default().extend(bytes);
        }
    }

    fn node_closed(&mut self, stream: StreamHandle) {
        if self.routes.remove(&stream).is_some() {
            self.closed_by_node.insert(stream);
        }
    }

    /// A looker's lookup: the records of `owner`'s slots 0..4 in the DHT, each checked.
    pub fn lookup(&self, owner: &[u8; 32]) -> Vec<VerifiedPresence> {
        (0..4)
            .filter_map(|slot| {
                let key = record_key(RecordKind::Presence, owner, &presence_topic(slot));
                let fetched = SignedRecord::decode(self.dht.get(&key)?).ok()?;
                verify_presence_record(
                    fetched,
                    self.now,
                    &self.world.chain(),
                    &RecordLimits::default(),
                )
                .ok()
            })
            .collect()
    }

    /// Feeds an announcer what its stream delivered (and its closing); runs its output.
    pub fn pump_announcer(
        &mut self,
        announcer: &mut Announcer,
        replay: &mut ReplayCache,
    ) -> Vec<AnnouncerEvent> {
        let stream = announcer.stream();
        let bytes = self.take(stream);
        let mut events = Vec::new();
        if !bytes.is_empty() {
            let out = announcer.handle_data(self.now, &bytes, &self.world.chain(), replay);
            events.extend(self.apply(out));
        }
        if self.take_closed(stream) {
            events.extend(self.apply(announcer.handle_stream_closed()));
        }
        events
    }

    /// The same for an initiator's two streams.
    pub fn pump_initiator(&mut self, initiator: &mut Initiator) -> Vec<InitiatorEvent> {
        let streams = initiator.streams();
        let mut events = Vec::new();
        // The presence node's answer first: it usually overtakes Bob's join.
        for stream in [streams.presence, streams.rendezvous] {
            let bytes = self.take(stream);
            if !bytes.is_empty() {
                events.extend(self.apply(initiator.handle_data(self.now, stream, &bytes)));
            }
            if self.take_closed(stream) {
                events.extend(self.apply(initiator.handle_stream_closed(stream)));
            }
        }
        events
    }

    pub fn pump_responder(&mut self, responder: &mut Responder) -> Vec<ResponderEvent> {
        let stream = responder.stream();
        let bytes = self.take(stream);
        let mut events = Vec::new();
        if !bytes.is_empty() {
            events.extend(self.apply(responder.handle_data(self.now, &bytes)));
        }
        if self.take_closed(stream) {
            events.extend(self.apply(responder.handle_stream_closed()));
        }
        events
    }

    pub fn pump_session(&mut self, session: &mut Session) -> Vec<SessionEvent> {
        let stream = session.stream();
        let bytes = self.take(stream);
        let mut events = Vec::new();
        if !bytes.is_empty() {
            events.extend(self.apply(session.handle_data(&bytes)));
        }
        if self.take_closed(stream) {
            events.extend(self.apply(session.handle_stream_closed()));
        }
        events
    }

    /// Sends a message on a session; returns the transmits' count (frames).
    pub fn send(&mut self, session: &mut Session, message: &[u8]) -> usize {
        let transmits = session.send(message).unwrap();
        let frames = transmits.len();
        for transmit in transmits {
            self.write(transmit);
        }
        frames
    }
}

impl Net {
    /// Registers a presence point at node `node` on `stream`; returns the registered
    /// announcer.
    pub fn announce(
        &mut self,
        who: &Arc<Identity>,
        replay: &mut ReplayCache,
        node: usize,
        stream: StreamHandle,
        config: AnnouncerConfig,
    ) -> Announcer {
        self.open(stream, Service::Presence(node));
        let mut announcer = Announcer::new(who.clone(), self.presence_id(node), stream, config);
        let register = announcer.start(self.now).unwrap();
        self.write(register);
        let events = self.pump_announcer(&mut announcer, replay);
        assert!(
            matches!(events[..], [AnnouncerEvent::Registered { .. }]),
            "{events:?}"
        );
        announcer
    }

    /// Starts an attempt by `who` to reach `target` on `streams`, through the rendezvous
    /// node; returns the initiator once its introduction is sent.
    pub fn introduce(
        &mut self,
        who: &Arc<Identity>,
        target: &VerifiedPresence,
        streams: InitiatorStreams,
        rng: &mut TestRng,
        config: InitiatorConfig,
    ) -> Initiator {
        self.open(streams.rendezvous, Service::Rendezvous);
        let node = self.presence_index(&target.presence_node);
        self.open(streams.presence, Service::Presence(node));
        let rendezvous_node = self.rendezvous_id();
        let (mut initiator, establish) = Initiator::new(
            who.clone(),
            target,
            rendezvous_node,
            streams,
            self.now,
            rng,
            config,
        )
        .unwrap();
        self.write(establish);
        let events = self.pump_initiator(&mut initiator);
        assert!(
            matches!(events[..], [InitiatorEvent::Introduced]),
            "{events:?}"
        );
        initiator
    }

    /// The one introduction an announcer receives now.
    pub fn receive_introduction(
        &mut self,
        announcer: &mut Announcer,
        replay: &mut ReplayCache,
    ) -> (IntroId, VerifiedIntroduction) {
        let mut events = self.pump_announcer(announcer, replay);
        match events.pop() {
            Some(AnnouncerEvent::IntroductionReceived { id, introduction })
                if events.is_empty() =>
            {
                (id, *introduction)
            }
            other => panic!("no introduction: {other:?} after {events:?}"),
        }
    }

    /// Bob accepts introduction `id` and joins its rendezvous point on `stream`.
    pub fn accept_and_join(
        &mut self,
        bob: &Identity,
        announcer: &mut Announcer,
        id: IntroId,
        stream: StreamHandle,
        rng: &mut TestRng,
    ) -> Responder {
        let (accept, introduction) = announcer.accept(id).unwrap();
        self.write(accept);
        assert_eq!(
            introduction.introduction().rendezvous_node,
            self.rendezvous_id()
        );
        self.open(stream, Service::Rendezvous);
        let (responder, join) = Responder::new(
            bob,
            &introduction,
            stream,
            self.now,
            rng,
            ResponderConfig::default(),
        )
        .unwrap();
        self.write(join);
        responder
    }
}

/// The messages among session events.
pub fn messages(events: Vec<SessionEvent>) -> Vec<Vec<u8>> {
    events
        .into_iter()
        .map(|e| match e {
            SessionEvent::Message(m) => m,
            other => panic!("not a message: {other:?}"),
        })
        .collect()
}

/// The session an initiator's events hand over, and the session events that came with it.
pub fn initiator_session(events: Vec<InitiatorEvent>) -> (Session, Vec<SessionEvent>) {
    let mut session = None;
    let mut rest = Vec::new();
    for event in events {
        match event {
            InitiatorEvent::Established(s) => session = Some(s),
            InitiatorEvent::Session(e) => rest.push(e),
            InitiatorEvent::Accepted | InitiatorEvent::Introduced => {}
            other => panic!("initiator did not establish: {other:?}"),
        }
    }
    (session.expect("a session"), rest)
}

/// The same for a responder.
pub fn responder_session(events: Vec<ResponderEvent>) -> (Session, Vec<SessionEvent>) {
    let mut session = None;
    let mut rest = Vec::new();
    for event in events {
        match event {
            ResponderEvent::Established(s) => session = Some(s),
            ResponderEvent::Session(e) => rest.push(e),
            ResponderEvent::Linked => {}
            other => panic!("responder did not establish: {other:?}"),
        }
    }
    (session.expect("a session"), rest)
}
