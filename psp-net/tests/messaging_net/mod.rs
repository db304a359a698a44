//! A private-messaging network on the real driver, for the messaging test and benchmark:
//! driver nodes with the DHT and the messaging services (presence, rendezvous, lookup) on
//! real libp2p links (TCP + Noise + Yamux on 127.0.0.1), a chain (static registry, one
//! certificate authority), and clients whose machines (psp-rendezvous) are driven here, one
//! stream per circuit. Each node records what it learns (test-only observer).
#![allow(dead_code)]

use std::collections::{HashMap, HashSet};
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use psp_net::cert::{CertRequest, CertificateAuthority};
use psp_net::circuit::{NodeDirectory, NodeRecord, Peer, Rate, Services};
use psp_net::crypto::{NodeId, OnionSecret, Sr25519Keypair};
use psp_net::driver::messaging::{
    MessagingChain, MessagingSetup, ServiceObserver, LOOKUP_SERVICE, PRESENCE_SERVICE,
    RENDEZVOUS_SERVICE,
};
use psp_net::driver::{
    unix_now, Circuit, ClientConfig, ClientHandle, DhtSetup, Keypair, Node, NodeConfig,
    NodeDescriptor, NodeEvent, NodeHandle, NodeSecrets, NodeServices, PeerId, StreamReader,
    StreamWriter,
};
use psp_net::registry::{IdentityKind, StaticRegistry};
use psp_net::rendezvous::client::{
    Announcer, AnnouncerConfig, AnnouncerEvent, Identity, Initiator, InitiatorEvent,
    InitiatorStreams, Looker, LookerConfig, LookerEvent, Output, Responder, ResponderEvent,
    Session, SessionEvent, Transmit,
};
use psp_net::rendezvous::crypto::AnnouncementSecret;
use psp_net::rendezvous::intro::VerifiedIntroduction;
use psp_net::rendezvous::record::VerifiedPresence;
use psp_net::rendezvous::replay::ReplayCache;
use psp_net::rendezvous::wire::ChannelLimits;
use psp_net::rendezvous::{ChainView, IntroId, StreamHandle};
use rand_core::OsRng;
use tokio::time::timeout;

pub const GENESIS: [u8; 32] = [0x47; 32];
/// How long one step (a read, a lookup) may take.
pub const STEP: Duration = Duration::from_secs(30);

/// The onion keys of the nodes, filled in once they listen.
#[derive(Default)]
pub struct TestDirectory(pub Mutex<HashMap<NodeId, NodeRecord>>);

impl NodeDirectory for TestDirectory {
    fn onion_key(&self, node: &NodeId) -> Option<NodeRecord> {
        self.0.lock().ok()?.get(node).cloned()
    }
}

/// The chain as everyone sees it: nodes, clients, one certificate authority.
pub struct World {
    pub registry: Arc<StaticRegistry>,
    pub authority: CertificateAuthority,
    pub authorities: Vec<[u8; 32]>,
    pub node_keys: Vec<Sr25519Keypair>,
    pub clients: HashMap<u8, Arc<Identity>>,
}

impl World {
    pub fn new(nodes: u8, clients: &[u8]) -> Self {
        let authority_key = Sr25519Keypair::from_seed(&[0xa0; 32]);
        let node_keys: Vec<_> = (1..=nodes)
            .map(|i| Sr25519Keypair::from_seed(&[i; 32]))
            .collect();
        let mut registry = StaticRegistry::default();
        registry.insert(authority_key.public(), IdentityKind::Node);
        for k in &node_keys {
            registry.insert(k.public(), IdentityKind::Node);
        }
        for &seed in clients {
            registry.insert(
                Sr25519Keypair::from_seed(&[seed; 32]).public(),
                IdentityKind::Client,
            );
        }
        let authorities = vec![authority_key.public()];
        let authority = CertificateAuthority::new(authority_key, GENESIS, 3_600, 1);
        let mut world = Self {
            registry: Arc::new(registry),
            authority,
            authorities,
            node_keys,
            clients: HashMap::new(),
        };
        for &seed in clients {
            let identity = world.issue(seed);
            world.clients.insert(seed, identity);
        }
        world
    }

    /// The client `seed`'s keys and a certificate issued now.
    pub fn issue(&mut self, seed: u8) -> Arc<Identity> {
        let key = Sr25519Keypair::from_seed(&[seed; 32]);
        let announcement = AnnouncementSecret::from_bytes([seed.wrapping_add(100); 32]);
        let now = unix_now();
        let request = CertRequest::new(&key, announcement.public(), self.authority.public(), now);
        let certificate = self
            .authority
            .issue(&request.encode(), now, &*self.registry)
            .expect("certificate issued")
            .encode();
        Arc::new(Identity::new(key, certificate, announcement))
    }

    pub fn chain(&self) -> ChainView<'_> {
        ChainView {
            genesis: &GENESIS,
            authorities: &self.authorities,
            registry: &*self.registry,
        }
    }
}

/// The default limits (10 cells/s per circuit, burst 100), listening on loopback.
pub fn default_config() -> NodeConfig {
    NodeConfig {
        listen: "/ip4/127.0.0.1/tcp/0".parse().expect("multiaddr"),
        ..NodeConfig::default()
    }
}

/// Limits high enough for a debug build to move 64 KiB in a second or two.
pub fn fast_config() -> NodeConfig {
    let mut c = default_config();
    c.limits.circuit_rate = Rate {
        cells_per_sec: 50_000,
        burst: 10_000,
    };
    c.limits.peer_rate = Rate {
        cells_per_sec: 100_000,
        burst: 20_000,
    };
    c
}

pub struct TestNode {
    pub handle: NodeHandle,
    pub desc: NodeDescriptor,
    /// What this node learned: the plaintext its services received, and the peer ids of the
    /// clients linked to it (as their entry node).
    pub seen: Arc<Seen>,
}

#[derive(Default)]
pub struct Seen {
    pub service_bytes: Mutex<Vec<u8>>,
    pub clients: Mutex<HashSet<PeerId>>,
}

impl Seen {
    /// Whether `identity` (its 32-byte key) appeared in what the services received.
    pub fn identity(&self, identity: &[u8; 32]) -> bool {
        self.service_bytes
            .lock()
            .expect("lock")
            .windows(32)
            .any(|w| w == identity)
    }

    pub fn client(&self, peer: &PeerId) -> bool {
        self.clients.lock().expect("lock").contains(peer)
    }
}

/// The test-only observer of a node's messaging services.
pub fn observer(seen: &Arc<Seen>) -> ServiceObserver {
    let seen = seen.clone();
    Arc::new(move |_service, bytes| {
        seen.service_bytes
            .lock()
            .expect("lock")
            .extend_from_slice(bytes)
    })
}

pub async fn start_nodes(world: &World, config: NodeConfig) -> Vec<TestNode> {
    let dir = Arc::new(TestDirectory::default());
    let mut nodes = Vec::new();
    let mut peers = Vec::new();
    for (i, key) in world.node_keys.iter().enumerate() {
        let node_seen = Arc::new(Seen::default());
        let link_key = Keypair::generate_ed25519();
        let peer_id = link_key.public().to_peer_id();
        let secrets = NodeSecrets {
            id: NodeId(key.public()),
            onion: OnionSecret::from_bytes([(i as u8).wrapping_mul(37).wrapping_add(5); 32]),
            link_key,
        };
        let services = NodeServices {
            dht: Some(DhtSetup::new(world.registry.clone())),
            messaging: Some(MessagingSetup {
                node_key: Arc::new(Sr25519Keypair::from_seed(&[i as u8 + 1; 32])),
                chain: MessagingChain {
                    genesis: GENESIS,
                    authorities: Arc::new(RwLock::new(world.authorities.clone())),
                    registry: world.registry.clone(),
                    generation: Arc::new(AtomicU64::new(0)),
                },
                presence: Default::default(),
                rendezvous: Default::default(),
                lookup: Default::default(),
                observer: Some(observer(&node_seen)),
            }),
            ..NodeServices::default()
        };
        let directory: Arc<dyn NodeDirectory + Send + Sync> = dir.clone();
        let started = Node::with_node_services(
            config.clone(),
            secrets,
            directory,
            Box::new(Services::default()),
            services,
        )
        .expect("node starts");
        let Node {
            handle,
            mut events,
            task,
        } = started;
        let seen = node_seen.clone();
        tokio::spawn(async move {
            while let Some(event) = events.recv().await {
                if let NodeEvent::LinkUp {
                    peer: Peer::Client(_),
                    peer_id,
                } = event
                {
                    seen.clients.lock().expect("lock").insert(peer_id);
                }
            }
        });
        tokio::spawn(task.run());
        let desc = timeout(STEP, handle.descriptor())
            .await
            .expect("listening in time")
            .expect("descriptor");
        dir.0
            .lock()
            .expect("lock")
            .insert(desc.id, desc.to_record());
        peers.push((peer_id, desc.address.clone()));
        nodes.push(TestNode {
            handle,
            desc,
            seen: node_seen,
        });
    }
    for n in &nodes {
        n.handle
            .dht_set_peers(peers.clone())
            .await
            .expect("running");
    }
    nodes
}

/// The client's own pacing of the fast network.
pub const FAST_SEND: Rate = Rate {
    cells_per_sec: 50_000,
    burst: 10_000,
};

pub fn client(send_rate: Rate) -> ClientHandle {
    let config = ClientConfig {
        send_rate,
        stream_buffer: 4_096,
        ..ClientConfig::default()
    };
    let (client, task) = ClientHandle::new(config).expect("client");
    tokio::spawn(task.run());
    client
}

/// One stream of a client machine: written by handle, read until the machine has its input.
pub struct Pipe {
    pub writer: StreamWriter,
    pub reader: StreamReader,
}

/// A client's streams by the handle its machines name them with, and their circuits.
#[derive(Default)]
pub struct Pipes(
    pub HashMap<StreamHandle, Pipe>,
    pub HashMap<StreamHandle, Circuit>,
);

impl Drop for Pipes {
    /// Destroys the circuits (a relay caps the circuits one client may hold open).
    fn drop(&mut self) {
        for (_, circuit) in self.1.drain() {
            tokio::spawn(circuit.destroy());
        }
    }
}

impl Pipes {
    /// Builds a 3-hop circuit through `path` and opens `service` on it as `handle`.
    pub async fn open(
        &mut self,
        client: &ClientHandle,
        nodes: &[TestNode],
        path: [usize; 3],
        service: &str,
        handle: StreamHandle,
    ) {
        let descs: Vec<_> = path.iter().map(|&i| nodes[i].desc.clone()).collect();
        let circuit = timeout(STEP, client.build_circuit(&descs))
            .await
            .expect("built in time")
            .expect("circuit");
        let stream = circuit.open_stream(service).await.expect("stream opens");
        let (writer, reader) = stream.into_split();
        self.0.insert(handle, Pipe { writer, reader });
        self.1.insert(handle, circuit);
    }

    /// Writes the transmits and returns the events.
    pub async fn run<E>(&mut self, out: Output<E>) -> Vec<E> {
        for t in out.transmits {
            let pipe = self.0.get(&t.stream).expect("a stream of this client");
            pipe.writer.send(&t.bytes).await.expect("written");
        }
        for stream in out.close {
            self.0.remove(&stream);
        }
        out.events
    }

    /// Closes stream `handle` and destroys its circuit.
    pub async fn close(&mut self, handle: StreamHandle) {
        self.0.remove(&handle);
        if let Some(circuit) = self.1.remove(&handle) {
            let _ = circuit.destroy().await;
        }
    }

    pub async fn recv(&mut self, handle: StreamHandle) -> Vec<u8> {
        let pipe = self.0.get_mut(&handle).expect("an open stream");
        timeout(STEP, pipe.reader.recv())
            .await
            .expect("bytes in time")
            .expect("stream open")
    }
}

/// Looks `owner`'s presence points up as a client does: over a 3-hop circuit to a node's
/// lookup service, every record checked by the client itself. Retries until `want` points
/// are found (the records take a moment to reach the DHT).
pub async fn lookup(
    world: &World,
    nodes: &[TestNode],
    client: &ClientHandle,
    owner: [u8; 32],
    want: usize,
) -> Vec<VerifiedPresence> {
    let deadline = tokio::time::Instant::now() + STEP;
    let mut attempt = 100;
    loop {
        attempt += 1;
        let handle = StreamHandle(attempt);
        let mut pipes = Pipes::default();
        pipes
            .open(client, nodes, [1, 0, 5], LOOKUP_SERVICE, handle)
            .await;
        let (mut looker, request) =
            Looker::new(handle, owner, 2, unix_now(), LookerConfig::default()).expect("looker");
        pipes
            .run(Output {
                transmits: vec![request],
                close: Vec::new(),
                events: Vec::<LookerEvent>::new(),
            })
            .await;
        let chain = world.chain();
        let (found, rejected) = until(
            &mut pipes,
            handle,
            |b| looker.handle_data(unix_now(), b, &chain),
            |e| match e {
                LookerEvent::Found {
                    presences,
                    rejected,
                } => Some((presences, rejected)),
                LookerEvent::Failed(e) => panic!("lookup failed: {e}"),
                _ => None,
            },
        )
        .await;
        assert_eq!(rejected, 0, "every record served is valid");
        if found.len() >= want {
            return found;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{} of {want} presence points found in time",
            found.len()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Reads `handle` until `pick` finds the event wanted; every event is passed to it.
pub async fn until<E, T>(
    pipes: &mut Pipes,
    handle: StreamHandle,
    mut feed: impl FnMut(&[u8]) -> Output<E>,
    mut pick: impl FnMut(E) -> Option<T>,
) -> T {
    loop {
        let bytes = pipes.recv(handle).await;
        let out = feed(&bytes);
        for event in pipes.run(out).await {
            if let Some(t) = pick(event) {
                return t;
            }
        }
    }
}

/// Alice's side up to the point where she waits for Bob's answer.
pub async fn introduce(
    world: &World,
    nodes: &[TestNode],
    who: u8,
    bob: &VerifiedPresence,
    pipes: &mut Pipes,
    client: &ClientHandle,
) -> Initiator {
    let (rv, pr) = (StreamHandle(10), StreamHandle(11));
    let rendezvous = nodes[4].desc.id.0;
    pipes
        .open(client, nodes, [1, 5, 4], RENDEZVOUS_SERVICE, rv)
        .await;
    let presence_node = nodes
        .iter()
        .position(|n| n.desc.id.0 == bob.presence_node)
        .expect("a presence node of the test");
    pipes
        .open(client, nodes, [1, 5, presence_node], PRESENCE_SERVICE, pr)
        .await;
    let (mut initiator, establish) = Initiator::new(
        world.clients[&who].clone(),
        bob,
        rendezvous,
        InitiatorStreams {
            rendezvous: rv,
            presence: pr,
        },
        unix_now(),
        &mut OsRng,
        Default::default(),
    )
    .expect("initiator");
    pipes
        .0
        .get(&rv)
        .expect("rendezvous stream")
        .writer
        .send(&establish.bytes)
        .await
        .expect("written");
    until(
        pipes,
        rv,
        |b| initiator.handle_data(unix_now(), rv, b),
        |e| matches!(e, InitiatorEvent::Introduced).then_some(()),
    )
    .await;
    initiator
}

/// Writes one transmit (a machine's first message).
pub async fn write(pipes: &mut Pipes, transmit: Transmit) {
    pipes
        .run(Output {
            transmits: vec![transmit],
            close: Vec::new(),
            events: Vec::<()>::new(),
        })
        .await;
}

/// A client holding presence points.
pub struct Announced {
    pub identity: Arc<Identity>,
    pub client: ClientHandle,
    pub pipes: Pipes,
    pub replay: ReplayCache,
    pub points: Vec<Announcer>,
}

/// Client `seed` registers a presence point per `(slot, path)` (the path's last node is the
/// presence node), each on its own circuit, with `limits`, and waits until each is
/// registered.
pub async fn announce(
    world: &World,
    nodes: &[TestNode],
    seed: u8,
    points: &[(u8, [usize; 3])],
    send_rate: Rate,
    limits: ChannelLimits,
) -> Announced {
    let mut me = Announced {
        identity: world.clients[&seed].clone(),
        client: client(send_rate),
        pipes: Pipes::default(),
        replay: ReplayCache::new(Default::default()),
        points: Vec::new(),
    };
    for &(slot, path) in points {
        let handle = StreamHandle(u64::from(slot));
        me.pipes
            .open(&me.client, nodes, path, PRESENCE_SERVICE, handle)
            .await;
        let config = AnnouncerConfig {
            slot,
            limits,
            ..AnnouncerConfig::default()
        };
        let mut announcer = Announcer::new(
            me.identity.clone(),
            nodes[path[2]].desc.id.0,
            handle,
            config,
        );
        write(
            &mut me.pipes,
            announcer.start(unix_now()).expect("register"),
        )
        .await;
        let chain = world.chain();
        until(
            &mut me.pipes,
            handle,
            |b| announcer.handle_data(unix_now(), b, &chain, &mut me.replay),
            |e| matches!(e, AnnouncerEvent::Registered { .. }).then_some(()),
        )
        .await;
        me.points.push(announcer);
    }
    me
}

impl Announced {
    /// Waits for the next introduction at point `point`.
    pub async fn next_introduction(
        &mut self,
        world: &World,
        point: usize,
    ) -> (IntroId, Box<VerifiedIntroduction>) {
        let chain = world.chain();
        let announcer = &mut self.points[point];
        let stream = announcer.stream();
        let replay = &mut self.replay;
        until(
            &mut self.pipes,
            stream,
            |b| announcer.handle_data(unix_now(), b, &chain, replay),
            |e| match e {
                AnnouncerEvent::IntroductionReceived { id, introduction } => {
                    Some((id, introduction))
                }
                _ => None,
            },
        )
        .await
    }

    /// Declines introduction `id` at point `point`.
    pub async fn decline(&mut self, point: usize, id: IntroId) {
        let decline = self.points[point].decline(id).expect("pending");
        write(&mut self.pipes, decline).await;
    }

    /// Accepts introduction `id` at point `point` and joins its rendezvous point over a new
    /// circuit through `path` (ending at the rendezvous node), as stream `handle`; the
    /// handshake ends in [`Announced::joined`] once the introducer has answered.
    pub async fn accept(
        &mut self,
        nodes: &[TestNode],
        point: usize,
        id: IntroId,
        path: [usize; 3],
        handle: StreamHandle,
    ) -> Responder {
        let (accept, introduction) = self.points[point].accept(id).expect("pending");
        write(&mut self.pipes, accept).await;
        self.pipes
            .open(&self.client, nodes, path, RENDEZVOUS_SERVICE, handle)
            .await;
        let (responder, join) = Responder::new(
            &self.identity,
            &introduction,
            handle,
            unix_now(),
            &mut OsRng,
            Default::default(),
        )
        .expect("responder");
        write(&mut self.pipes, join).await;
        responder
    }

    /// Reads the rendezvous stream of `responder` until the handshake is done.
    pub async fn joined(&mut self, responder: &mut Responder) -> Session {
        let stream = responder.stream();
        until(
            &mut self.pipes,
            stream,
            |b| responder.handle_data(unix_now(), b),
            |e| match e {
                ResponderEvent::Established(session) => Some(session),
                ResponderEvent::Failed(e) => panic!("the join failed: {e}"),
                _ => None,
            },
        )
        .await
    }
}

/// Alice's side after Bob accepted: reads both her streams, whichever speaks first, until
/// the handshake is done (the acceptance and Bob's join may come in either order).
pub async fn established(initiator: &mut Initiator, pipes: &mut Pipes) -> Session {
    let streams = initiator.streams();
    loop {
        // Out of the map while both are read at once; the acceptance closes the presence one.
        let mut rendezvous = pipes.0.remove(&streams.rendezvous);
        let mut presence = pipes.0.remove(&streams.presence);
        let (stream, bytes) = tokio::select! {
            Some(b) = recv_from(&mut rendezvous) => (streams.rendezvous, b),
            Some(b) = recv_from(&mut presence) => (streams.presence, b),
            _ = tokio::time::sleep(STEP) => panic!("no session in time"),
        };
        for (handle, pipe) in [
            (streams.rendezvous, rendezvous),
            (streams.presence, presence),
        ] {
            if let Some(pipe) = pipe {
                pipes.0.insert(handle, pipe);
            }
        }
        let out = initiator.handle_data(unix_now(), stream, &bytes);
        for event in pipes.run(out).await {
            match event {
                InitiatorEvent::Established(session) => return session,
                InitiatorEvent::Failed(e) => panic!("the attempt failed: {e}"),
                _ => {}
            }
        }
    }
}

/// The next bytes of a pipe that may be gone (then never).
async fn recv_from(pipe: &mut Option<Pipe>) -> Option<Vec<u8>> {
    match pipe {
        Some(p) => p.reader.recv().await,
        None => std::future::pending().await,
    }
}

/// Sends `message` on `from`'s session and returns what `to`'s session receives.
pub async fn deliver(
    from: (&mut Session, &mut Pipes),
    to: (&mut Session, &mut Pipes),
    message: &[u8],
) -> Vec<u8> {
    let (sender, sender_pipes) = from;
    let frames = sender.send(message).expect("sealed");
    sender_pipes
        .run(Output {
            transmits: frames,
            close: Vec::new(),
            events: Vec::<SessionEvent>::new(),
        })
        .await;
    let (receiver, receiver_pipes) = to;
    let stream = receiver.stream();
    until(
        receiver_pipes,
        stream,
        |b| receiver.handle_data(b),
        |e| match e {
            SessionEvent::Message(m) => Some(m),
            other => panic!("session: {other:?}"),
        },
    )
    .await
}
