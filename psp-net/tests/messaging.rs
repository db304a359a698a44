//! Private messaging over the real driver: six in-process nodes with the DHT and the
//! messaging services (presence, rendezvous), joined by real libp2p links (TCP + Noise +
//! Yamux on 127.0.0.1), and three clients whose every byte to a node travels on a 3-hop
//! circuit. The clients run the psp-rendezvous client machines; this test is their driver.
//!
//! Bob announces at two presence points; his records reach the DHT co-signed by the presence
//! nodes; Alice finds them, checks them herself, sets up a rendezvous point, introduces herself;
//! Bob accepts and joins; they exchange messages both ways (one of 64 KiB) byte-exact
//! through the rendezvous node. Carol is declined and told so.
//!
//! What each node learns, recorded by a test-only observer (the plaintext its services
//! receive, the clients linked to it): no node saw both a client's address (its link) and
//! that client's identity; the presence nodes never learned who introduced themselves; the
//! rendezvous node learned no identity at all. (Paths are chosen so that no client's entry
//! node is the last hop of a circuit that names that client: the agent's path choice must
//! keep that rule.)
//!
//! Alice finds Bob's points through a node's `lookup` service over a 3-hop circuit and checks
//! every record herself. Certificates come from a certificate authority in the test rather
//! than an elected node.

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
    Session, SessionEvent,
};
use psp_net::rendezvous::crypto::AnnouncementSecret;
use psp_net::rendezvous::record::VerifiedPresence;
use psp_net::rendezvous::replay::ReplayCache;
use psp_net::rendezvous::{ChainView, StreamHandle};
use rand_core::OsRng;
use tokio::time::timeout;

const GENESIS: [u8; 32] = [0x47; 32];
/// How long one step (a read, a lookup) may take.
const STEP: Duration = Duration::from_secs(30);

/// The onion keys of the nodes, filled in once they listen.
#[derive(Default)]
struct TestDirectory(Mutex<HashMap<NodeId, NodeRecord>>);

impl NodeDirectory for TestDirectory {
    fn onion_key(&self, node: &NodeId) -> Option<NodeRecord> {
        self.0.lock().ok()?.get(node).cloned()
    }
}

/// The chain as everyone sees it: nodes, clients, one certificate authority.
struct World {
    registry: Arc<StaticRegistry>,
    authority: CertificateAuthority,
    authorities: Vec<[u8; 32]>,
    node_keys: Vec<Sr25519Keypair>,
    clients: HashMap<u8, Arc<Identity>>,
}

impl World {
    fn new(nodes: u8, clients: &[u8]) -> Self {
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
    fn issue(&mut self, seed: u8) -> Arc<Identity> {
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

    fn chain(&self) -> ChainView<'_> {
        ChainView {
            genesis: &GENESIS,
            authorities: &self.authorities,
            registry: &*self.registry,
        }
    }
}

/// Limits high enough for a debug build to move 64 KiB in a second or two.
fn config() -> NodeConfig {
    let mut c = NodeConfig {
        listen: "/ip4/127.0.0.1/tcp/0".parse().expect("multiaddr"),
        ..NodeConfig::default()
    };
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

struct TestNode {
    handle: NodeHandle,
    desc: NodeDescriptor,
    /// What this node learned: the plaintext its services received, and the peer ids of the
    /// clients linked to it (as their entry node).
    seen: Arc<Seen>,
}

#[derive(Default)]
struct Seen {
    service_bytes: Mutex<Vec<u8>>,
    clients: Mutex<HashSet<PeerId>>,
}

impl Seen {
    /// Whether `identity` (its 32-byte key) appeared in what the services received.
    fn identity(&self, identity: &[u8; 32]) -> bool {
        self.service_bytes
            .lock()
            .expect("lock")
            .windows(32)
            .any(|w| w == identity)
    }

    fn client(&self, peer: &PeerId) -> bool {
        self.clients.lock().expect("lock").contains(peer)
    }
}

/// The test-only observer of a node's messaging services.
fn observer(seen: &Arc<Seen>) -> ServiceObserver {
    let seen = seen.clone();
    Arc::new(move |_service, bytes| {
        seen.service_bytes
            .lock()
            .expect("lock")
            .extend_from_slice(bytes)
    })
}

async fn start_nodes(world: &World) -> Vec<TestNode> {
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
            config(),
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

fn client() -> ClientHandle {
    let config = ClientConfig {
        send_rate: Rate {
            cells_per_sec: 50_000,
            burst: 10_000,
        },
        stream_buffer: 4_096,
        ..ClientConfig::default()
    };
    let (client, task) = ClientHandle::new(config).expect("client");
    tokio::spawn(task.run());
    client
}

/// One stream of a client machine: written by handle, read until the machine has its input.
struct Pipe {
    writer: StreamWriter,
    reader: StreamReader,
}

/// A client's streams by the handle its machines name them with, and their circuits.
#[derive(Default)]
struct Pipes(HashMap<StreamHandle, Pipe>, Vec<Circuit>);

impl Pipes {
    /// Builds a 3-hop circuit through `path` and opens `service` on it as `handle`.
    async fn open(
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
        self.1.push(circuit);
    }

    /// Writes the transmits and returns the events.
    async fn run<E>(&mut self, out: Output<E>) -> Vec<E> {
        for t in out.transmits {
            let pipe = self.0.get(&t.stream).expect("a stream of this client");
            pipe.writer.send(&t.bytes).await.expect("written");
        }
        for stream in out.close {
            self.0.remove(&stream);
        }
        out.events
    }

    async fn recv(&mut self, handle: StreamHandle) -> Vec<u8> {
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
async fn lookup(
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
async fn until<E, T>(
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
async fn introduce(
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_identities_talk_through_presence_introduction_and_rendezvous() {
    let (bob_seed, alice_seed, carol_seed) = (0x0b, 0x0a, 0x0c);
    let world = World::new(6, &[bob_seed, alice_seed, carol_seed]);
    let nodes = start_nodes(&world).await;
    let bob_id = world.clients[&bob_seed].id();

    // Bob announces at two presence points (nodes 2 and 3), each behind its own circuit.
    let bob_client = client();
    let mut bob = Pipes::default();
    let mut replay = ReplayCache::new(Default::default());
    let mut points = Vec::new();
    for (slot, path) in [(0u8, [0, 1, 2]), (1u8, [1, 0, 3])] {
        let handle = StreamHandle(u64::from(slot));
        bob.open(&bob_client, &nodes, path, PRESENCE_SERVICE, handle)
            .await;
        let config = AnnouncerConfig {
            slot,
            ..AnnouncerConfig::default()
        };
        let mut announcer = Announcer::new(
            world.clients[&bob_seed].clone(),
            nodes[path[2]].desc.id.0,
            handle,
            config,
        );
        let register = announcer.start(unix_now()).expect("register");
        bob.run(Output {
            transmits: vec![register],
            close: Vec::new(),
            events: Vec::<AnnouncerEvent>::new(),
        })
        .await;
        let chain = world.chain();
        until(
            &mut bob,
            handle,
            |b| announcer.handle_data(unix_now(), b, &chain, &mut replay),
            |e| matches!(e, AnnouncerEvent::Registered { .. }).then_some(()),
        )
        .await;
        points.push(announcer);
    }

    // Alice finds both records (published by the presence nodes) through a node's lookup
    // service and checks them herself.
    let alice_client = client();
    let found = lookup(&world, &nodes, &alice_client, bob_id, 2).await;
    let by_node = |i: usize| {
        found
            .iter()
            .find(|p| p.presence_node == nodes[i].desc.id.0)
            .expect("a point at this node")
            .clone()
    };
    let found = [by_node(2), by_node(3)];

    // Alice introduces herself through the first point.
    let mut alice = Pipes::default();
    let mut initiator = introduce(
        &world,
        &nodes,
        alice_seed,
        &found[0],
        &mut alice,
        &alice_client,
    )
    .await;

    // Bob gets the introduction, sees who it is, accepts and joins her rendezvous point.
    let chain = world.chain();
    let announcer = &mut points[0];
    let point = announcer.stream();
    let id = until(
        &mut bob,
        point,
        |b| announcer.handle_data(unix_now(), b, &chain, &mut replay),
        |e| match e {
            AnnouncerEvent::IntroductionReceived { id, introduction } => {
                assert_eq!(introduction.introducer(), &world.clients[&alice_seed].id());
                Some(id)
            }
            _ => None,
        },
    )
    .await;
    let (accept, introduction) = announcer.accept(id).expect("pending");
    bob.run(Output {
        transmits: vec![accept],
        close: Vec::new(),
        events: Vec::<AnnouncerEvent>::new(),
    })
    .await;
    let bob_rv = StreamHandle(20);
    bob.open(&bob_client, &nodes, [0, 5, 4], RENDEZVOUS_SERVICE, bob_rv)
        .await;
    let (mut responder, join) = Responder::new(
        &world.clients[&bob_seed],
        &introduction,
        bob_rv,
        unix_now(),
        &mut OsRng,
        Default::default(),
    )
    .expect("responder");
    bob.run(Output {
        transmits: vec![join],
        close: Vec::new(),
        events: Vec::<ResponderEvent>::new(),
    })
    .await;

    // Alice hears the acceptance and Bob's half of the handshake, and finishes it.
    let alice_rv = initiator.streams().rendezvous;
    // (IntroAccepted on the presence stream and Joined on the rendezvous stream may come in
    // either order.)
    let mut alice_session: Option<Session> = None;
    while alice_session.is_none() {
        let streams: Vec<StreamHandle> = alice.0.keys().copied().collect();
        for stream in streams {
            // Accepted closes the presence stream meanwhile.
            let Some(pipe) = alice.0.get_mut(&stream) else {
                continue;
            };
            let Ok(Some(bytes)) = timeout(Duration::from_millis(200), pipe.reader.recv()).await
            else {
                continue;
            };
            let out = initiator.handle_data(unix_now(), stream, &bytes);
            for event in alice.run(out).await {
                match event {
                    InitiatorEvent::Established(session) => alice_session = Some(session),
                    InitiatorEvent::Failed(e) => panic!("Alice's attempt failed: {e}"),
                    _ => {}
                }
            }
        }
    }
    let mut alice_session = alice_session.expect("established");
    assert_eq!(alice_session.peer_identity(), &bob_id);
    let mut bob_session = until(
        &mut bob,
        bob_rv,
        |b| responder.handle_data(unix_now(), b),
        |e| match e {
            ResponderEvent::Established(session) => Some(session),
            ResponderEvent::Failed(e) => panic!("Bob's join failed: {e}"),
            _ => None,
        },
    )
    .await;
    assert_eq!(
        bob_session.peer_identity(),
        &world.clients[&alice_seed].id()
    );

    // Messages both ways, one of 64 KiB, byte-exact.
    let big: Vec<u8> = (0..64 * 1024u32).map(|i| (i % 251) as u8).collect();
    for message in [&b"hello Bob"[..], &big] {
        let frames = alice_session.send(message).expect("sealed");
        alice
            .run(Output {
                transmits: frames,
                close: Vec::new(),
                events: Vec::<SessionEvent>::new(),
            })
            .await;
        let got = until(
            &mut bob,
            bob_rv,
            |b| bob_session.handle_data(b),
            |e| match e {
                SessionEvent::Message(m) => Some(m),
                other => panic!("Bob's session: {other:?}"),
            },
        )
        .await;
        assert!(got == message, "Bob got {} bytes, byte-exact", got.len());
    }
    let frames = bob_session.send(b"hello Alice").expect("sealed");
    bob.run(Output {
        transmits: frames,
        close: Vec::new(),
        events: Vec::<SessionEvent>::new(),
    })
    .await;
    let got = until(
        &mut alice,
        alice_rv,
        |b| alice_session.handle_data(b),
        |e| match e {
            SessionEvent::Message(m) => Some(m),
            other => panic!("Alice's session: {other:?}"),
        },
    )
    .await;
    assert_eq!(got, b"hello Alice");

    // Carol introduces herself through the second point; Bob declines; Carol is told.
    let carol_client = client();
    let mut carol = Pipes::default();
    let mut carol_attempt = introduce(
        &world,
        &nodes,
        carol_seed,
        &found[1],
        &mut carol,
        &carol_client,
    )
    .await;
    let announcer = &mut points[1];
    let point = announcer.stream();
    let id = until(
        &mut bob,
        point,
        |b| announcer.handle_data(unix_now(), b, &chain, &mut replay),
        |e| match e {
            AnnouncerEvent::IntroductionReceived { id, introduction } => {
                assert_eq!(introduction.introducer(), &world.clients[&carol_seed].id());
                Some(id)
            }
            _ => None,
        },
    )
    .await;
    let decline = announcer.decline(id).expect("pending");
    bob.run(Output {
        transmits: vec![decline],
        close: Vec::new(),
        events: Vec::<AnnouncerEvent>::new(),
    })
    .await;
    let carol_presence = carol_attempt.streams().presence;
    until(
        &mut carol,
        carol_presence,
        |b| carol_attempt.handle_data(unix_now(), carol_presence, b),
        |e| match e {
            InitiatorEvent::Declined => Some(()),
            InitiatorEvent::Failed(e) => panic!("Carol's attempt failed otherwise: {e}"),
            _ => None,
        },
    )
    .await;

    // What each node learned: its services' plaintext and the clients linked to it.
    let people = [
        (
            "Alice",
            world.clients[&alice_seed].id(),
            alice_client.peer_id(),
        ),
        ("Bob", bob_id, bob_client.peer_id()),
        (
            "Carol",
            world.clients[&carol_seed].id(),
            carol_client.peer_id(),
        ),
    ];
    for (i, node) in nodes.iter().enumerate() {
        for (name, id, peer) in &people {
            assert!(
                !(node.seen.client(peer) && node.seen.identity(id)),
                "node {i} saw both {name}'s address and {name}'s identity"
            );
        }
    }
    let entries: Vec<usize> = (0..nodes.len())
        .filter(|&i| people.iter().any(|(_, _, p)| nodes[i].seen.client(p)))
        .collect();
    assert_eq!(entries, [0, 1], "the clients' entry nodes");
    for presence in [2, 3] {
        assert!(
            nodes[presence].seen.identity(&bob_id),
            "a presence node knows Bob"
        );
        for (name, id, _) in [&people[0], &people[2]] {
            assert!(
                !nodes[presence].seen.identity(id),
                "presence node {presence} learned the introducer {name}"
            );
        }
    }
    for (name, id, _) in &people {
        assert!(
            !nodes[4].seen.identity(id),
            "the rendezvous node learned {name}'s identity"
        );
    }
}
