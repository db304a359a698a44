//! The messaging agent on the real overlay: six in-process `psp_net` driver nodes (DHT,
//! presence, rendezvous and lookup services) joined by real libp2p links on 127.0.0.1, and
//! three agents whose every stream is a real 3-hop circuit built by [`OverlayNetwork`]. The
//! chain is a fake [`ChainSource`] (a static registry and one certificate authority); the
//! rest is production code.
//!
//! Bob announces at two points; Alice looks him up and sends; Bob accepts; they exchange
//! messages both ways (one of 64 KiB) byte-exact; Carol is declined and told so. Then, on
//! the same nodes, a Bob with a public point and a direct Alice (her rendezvous circuit and
//! her introduction take one hop each) exchange a binary message byte-exact.

use std::collections::HashMap;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use psp_client::keystore::Keys;
use psp_client::messaging::source::{BoxFuture, IssuedCertificate, Peer, Snapshot, Statuses};
use psp_client::messaging::views::LookupView;
use psp_client::messaging::{
    Agent, AgentEvent, AgentHandle, AgentParts, ChainSource, CoreConfig, MessagingError,
    OverlayNetwork, Reply, Request,
};
use psp_client::overlay::{CircuitOptions, RelayNode};
use psp_client::{hex0x, identity::IdentityLookup};
use psp_net::cert::{CertRequest, CertificateAuthority};
use psp_net::circuit::{NodeDirectory, NodeRecord, Rate, Services};
use psp_net::crypto::{NodeId, OnionSecret, Sr25519Keypair};
use psp_net::driver::messaging::{MessagingChain, MessagingSetup};
use psp_net::driver::{
    unix_now, DhtSetup, Keypair, Node, NodeConfig, NodeHandle, NodeSecrets, NodeServices,
};
use psp_net::registry::{IdentityKind, IdentityRegistry, StaticRegistry};
use tokio::sync::broadcast;
use tokio::time::timeout;

const GENESIS: [u8; 32] = [0x47; 32];
const STEP: Duration = Duration::from_secs(30);
const FAST: Rate = Rate {
    cells_per_sec: 50_000,
    burst: 10_000,
};

#[derive(Default)]
struct Directory(Mutex<HashMap<NodeId, NodeRecord>>);

impl NodeDirectory for Directory {
    fn onion_key(&self, node: &NodeId) -> Option<NodeRecord> {
        self.0.lock().ok()?.get(node).cloned()
    }
}

/// The chain: a static registry, one authority, the nodes as they listen.
struct FakeChain {
    registry: Arc<StaticRegistry>,
    authority: Mutex<CertificateAuthority>,
    authorities: Vec<[u8; 32]>,
    nodes: Vec<RelayNode>,
    keys: Arc<Keys>,
}

impl ChainSource for FakeChain {
    fn genesis(&self) -> [u8; 32] {
        GENESIS
    }

    fn snapshot(&self) -> BoxFuture<'_, Result<Snapshot, MessagingError>> {
        Box::pin(async move {
            Ok(Snapshot {
                authorities: self.authorities.clone(),
                nodes: self.nodes.clone(),
            })
        })
    }

    fn statuses(&self, keys: Vec<[u8; 32]>) -> BoxFuture<'_, Result<Statuses, MessagingError>> {
        Box::pin(async move { Ok(keys.iter().map(|k| (*k, self.registry.status(k))).collect()) })
    }

    fn resolve(&self, who: String) -> BoxFuture<'_, Result<Peer, MessagingError>> {
        Box::pin(async move {
            let IdentityLookup::Key(key) = psp_client::messaging::source::parse_peer(&who)? else {
                panic!("keys only in this test");
            };
            Ok(Peer {
                key,
                id: hex0x(&key),
                status: self.registry.status(&key),
            })
        })
    }

    fn certificate(&self) -> BoxFuture<'_, Result<IssuedCertificate, MessagingError>> {
        Box::pin(async move {
            let key = Sr25519Keypair::from_seed(self.keys.identity_seed());
            let mut authority = self.authority.lock().expect("lock");
            let now = unix_now();
            let request =
                CertRequest::new(&key, self.keys.x25519_public(), authority.public(), now);
            let cert = authority
                .issue(&request.encode(), now, &*self.registry)
                .expect("issued");
            Ok(IssuedCertificate {
                not_before: cert.body.not_before,
                not_after: cert.body.not_after,
                bytes: cert.encode(),
            })
        })
    }
}

struct Network {
    registry: Arc<StaticRegistry>,
    authority_key: Sr25519Keypair,
    nodes: Vec<RelayNode>,
    /// The nodes run while their handles live.
    _handles: Vec<NodeHandle>,
}

fn client_keys(seed: u8) -> Keys {
    Keys::from_secrets([seed; 32], [seed.wrapping_add(100); 32]).expect("keys")
}

/// Six nodes with every messaging service, and the clients `seeds` registered.
async fn start_network(seeds: &[u8]) -> Network {
    let authority_key = Sr25519Keypair::from_seed(&[0xa0; 32]);
    let node_keys: Vec<Sr25519Keypair> = (1..=6u8)
        .map(|i| Sr25519Keypair::from_seed(&[i; 32]))
        .collect();
    let mut registry = StaticRegistry::default();
    registry.insert(authority_key.public(), IdentityKind::Node);
    for k in &node_keys {
        registry.insert(k.public(), IdentityKind::Node);
    }
    for &seed in seeds {
        registry.insert(client_keys(seed).identity_public(), IdentityKind::Client);
    }
    let registry = Arc::new(registry);
    let mut config = NodeConfig {
        listen: "/ip4/127.0.0.1/tcp/0".parse().expect("multiaddr"),
        ..NodeConfig::default()
    };
    config.limits.circuit_rate = FAST;
    config.limits.peer_rate = Rate {
        cells_per_sec: 100_000,
        burst: 20_000,
    };
    let directory = Arc::new(Directory::default());
    let mut nodes = Vec::new();
    let mut handles = Vec::new();
    let mut peers = Vec::new();
    for (i, key) in node_keys.iter().enumerate() {
        let link_key = Keypair::generate_ed25519();
        let peer_id = link_key.public().to_peer_id();
        let secrets = NodeSecrets {
            id: NodeId(key.public()),
            onion: OnionSecret::from_bytes([(i as u8).wrapping_mul(37).wrapping_add(5); 32]),
            link_key,
        };
        let services = NodeServices {
            dht: Some(DhtSetup::new(registry.clone())),
            messaging: Some(MessagingSetup {
                node_key: Arc::new(Sr25519Keypair::from_seed(&[i as u8 + 1; 32])),
                chain: MessagingChain {
                    genesis: GENESIS,
                    authorities: Arc::new(RwLock::new(vec![authority_key.public()])),
                    registry: registry.clone(),
                    generation: Arc::new(AtomicU64::new(0)),
                },
                presence: Default::default(),
                rendezvous: Default::default(),
                lookup: Default::default(),
                observer: None,
            }),
            ..NodeServices::default()
        };
        let dir: Arc<dyn NodeDirectory + Send + Sync> = directory.clone();
        let node = Node::with_node_services(
            config.clone(),
            secrets,
            dir,
            Box::new(Services::default()),
            services,
        )
        .expect("node starts");
        tokio::spawn(node.task.run());
        let desc = timeout(STEP, node.handle.descriptor())
            .await
            .expect("listening in time")
            .expect("descriptor");
        directory
            .0
            .lock()
            .expect("lock")
            .insert(desc.id, desc.to_record());
        peers.push((peer_id, desc.address.clone()));
        nodes.push(RelayNode {
            id: format!("node-{i}"),
            descriptor: desc,
        });
        handles.push(node.handle);
    }
    for handle in &handles {
        handle.dht_set_peers(peers.clone()).await.expect("running");
    }
    Network {
        registry,
        authority_key,
        nodes,
        _handles: handles,
    }
}

/// An agent holding `points` presence points, otherwise as configured by default.
fn points(points: u8) -> CoreConfig {
    CoreConfig {
        points,
        ..CoreConfig::default()
    }
}

async fn agent(net: &Network, seed: u8, core: CoreConfig) -> AgentHandle {
    let keys = Arc::new(client_keys(seed));
    let source = Arc::new(FakeChain {
        registry: net.registry.clone(),
        authority: Mutex::new(CertificateAuthority::new(
            Sr25519Keypair::from_seed(&[0xa0; 32]),
            GENESIS,
            3_600,
            u64::from(seed) << 32,
        )),
        authorities: vec![net.authority_key.public()],
        nodes: net.nodes.clone(),
        keys: keys.clone(),
    });
    let options = CircuitOptions {
        send_rate: FAST,
        ..CircuitOptions::default()
    };
    let network = Arc::new(OverlayNetwork::new(options, 8_192).expect("onion client"));
    Agent::spawn_with(AgentParts {
        keys,
        id: format!("client-{seed}"),
        source,
        network,
        core,
        socket: None,
        refresh: Duration::from_secs(30),
        status_max_age_secs: 60,
        groups_dir: None,
    })
    .await
    .expect("agent starts")
}

async fn next_event<T>(
    events: &mut broadcast::Receiver<AgentEvent>,
    mut pick: impl FnMut(&AgentEvent) -> Option<T>,
) -> T {
    let wait = async {
        loop {
            match events.recv().await {
                Ok(event) => {
                    if let Some(t) = pick(&event) {
                        return t;
                    }
                }
                Err(broadcast::error::RecvError::Lagged(_)) => continue,
                Err(e) => panic!("events ended: {e}"),
            }
        }
    };
    timeout(STEP, wait).await.expect("the event in time")
}

/// Looks `peer` up until `count` records are found: they reach the DHT a moment after the
/// registration.
async fn records(agent: &AgentHandle, peer: &str, count: usize) -> LookupView {
    timeout(STEP, async {
        loop {
            let request = Request::Lookup { peer: peer.into() };
            if let Ok(Reply::Lookup(view)) = agent.request(request).await {
                if view.presences.len() == count {
                    return view;
                }
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    })
    .await
    .expect("the records found")
}

/// The number of the next introduction `events` reports.
async fn next_request(events: &mut broadcast::Receiver<AgentEvent>) -> u64 {
    next_event(events, |e| match e {
        AgentEvent::IntroductionReceived { request, .. } => Some(*request),
        _ => None,
    })
    .await
}

async fn inbox(agent: &AgentHandle) -> Vec<Vec<u8>> {
    let request = Request::Inbox {
        wait_secs: 20,
        max: None,
    };
    match agent.request(request).await.expect("inbox") {
        Reply::Inbox(view) => view
            .messages
            .iter()
            .map(|m| m.bytes().expect("hex"))
            .collect(),
        other => panic!("not an inbox: {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agents_talk_over_real_circuits() {
    let (bob_seed, alice_seed, carol_seed) = (0x0b, 0x0a, 0x0c);
    let (public_seed, direct_seed) = (0x1b, 0x1a);
    let seeds = [bob_seed, alice_seed, carol_seed, public_seed, direct_seed];
    let net = start_network(&seeds).await;
    let mut bob = agent(&net, bob_seed, points(2)).await;
    let mut bob_events = bob.events();
    for _ in 0..2 {
        next_event(&mut bob_events, |e| {
            matches!(e, AgentEvent::PointRegistered { .. }).then_some(())
        })
        .await;
    }
    let alice = agent(&net, alice_seed, points(0)).await;
    let bob_key = hex0x(&bob.identity());

    let found = records(&alice, &bob_key, 2).await;
    assert_eq!(found.rejected, 0);

    // Alice's send waits for the channel while Bob accepts.
    let sending = alice.request(Request::send(bob_key.clone(), b"hello Bob".to_vec()));
    let accepting = async {
        let request = next_request(&mut bob_events).await;
        bob.request(Request::Accept { request })
            .await
            .expect("accepted")
    };
    let (sent, accepted) = tokio::join!(sending, accepting);
    assert!(matches!(accepted, Reply::Accepted { .. }), "{accepted:?}");
    let sent = sent.expect("sent");
    assert!(matches!(sent, Reply::Sent { bytes: 9, .. }), "{sent:?}");
    assert_eq!(inbox(&bob).await, [b"hello Bob".to_vec()]);

    let big: Vec<u8> = (0..65_536u32).map(|i| (i % 251) as u8).collect();
    let reply = bob
        .request(Request::send(hex0x(&alice.identity()), big.clone()))
        .await
        .expect("sent");
    assert!(matches!(reply, Reply::Sent { bytes: 65_536, .. }));
    assert_eq!(inbox(&alice).await, [big]);

    // Carol is declined and told so.
    let carol = agent(&net, carol_seed, points(0)).await;
    let carol_send = carol.request(Request::send(bob_key.clone(), b"let me in".to_vec()));
    let declining = async {
        let request = next_request(&mut bob_events).await;
        bob.request(Request::Decline { request })
            .await
            .expect("declined")
    };
    let (refused, _) = tokio::join!(carol_send, declining);
    let err = refused.expect_err("declined");
    assert!(err.to_string().contains("declined"), "{err}");

    let Reply::Status(status) = bob.request(Request::Status).await.expect("status") else {
        panic!("not a status")
    };
    assert_eq!(status.channels.len(), 1);
    let guard = status.guard.expect("a guard");
    assert!(status
        .points
        .iter()
        .all(|p| p.node.as_ref() != Some(&guard)));

    bob.shutdown().await;
    alice.shutdown().await;
    carol.shutdown().await;

    // A public Bob and a direct Alice: her introduction to his public point and her
    // rendezvous circuit take one hop each; his join keeps three.
    let public = CoreConfig {
        public: true,
        ..points(1)
    };
    let mut bob = agent(&net, public_seed, public).await;
    let mut bob_events = bob.events();
    let direct = CoreConfig {
        direct: true,
        ..points(0)
    };
    let alice = agent(&net, direct_seed, direct).await;
    let bob_key = hex0x(&bob.identity());
    let found = records(&alice, &bob_key, 1).await;
    assert!(found.presences[0].public, "{found:?}");
    let binary: Vec<u8> = (0..4_096u32).map(|i| (i * 131 % 256) as u8).collect();
    let sending = alice.request(Request::send(bob_key.clone(), binary.clone()));
    let accepting = async {
        let request = next_request(&mut bob_events).await;
        bob.request(Request::Accept { request })
            .await
            .expect("accepted")
    };
    let (sent, accepted) = tokio::join!(sending, accepting);
    assert!(matches!(accepted, Reply::Accepted { .. }), "{accepted:?}");
    let sent = sent.expect("sent");
    assert!(matches!(sent, Reply::Sent { bytes: 4_096, .. }), "{sent:?}");
    assert_eq!(inbox(&bob).await, [binary]);

    bob.shutdown().await;
    alice.shutdown().await;
}
