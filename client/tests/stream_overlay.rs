//! Stream creation on the real overlay: five in-process `psp_net` driver nodes (DHT,
//! messaging, and the `oracle` and `landing` stream services) joined by real libp2p links on
//! 127.0.0.1, and a producer whose every exchange is a real 3-hop circuit built by
//! [`OverlayClient`]. The chain is faked: a static registry, one certificate authority, an
//! in-memory subscription table, and receipt keys handed to the nodes as the host would.
//!
//! Alice (subscribed) draws a receipt from the oracle and creates a stream at a landing node
//! with two distribution nodes over a fresh circuit; the record verifies, names the two
//! access points, and another node finds it in the DHT. Mallory (not subscribed) is refused a
//! receipt with the not-subscribed reason; the same receipt presented again is refused as
//! spent; a receipt drawn for one landing node is refused at another; a receipt under a key
//! the landing nodes do not accept is refused as unknown.
//!
//! Nodes 0 and 1 are both elected oracles and exchange receipt counts over
//! `/psp/oracle-exchange/1`: once Alice drew her subscription's bound from oracle 0, oracle 1
//! refuses her too.

use std::collections::HashMap;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use psp_client::keystore::Keys;
use psp_client::overlay::{CircuitOptions, OverlayClient, RelayNode};
use psp_client::stream::{
    create_stream, draw_receipt_at, stream_record_key, verify_dht_stream_record, LandingRefusal,
    OracleRefusal, StreamClientError,
};
use psp_net::cert::{CertRequest, CertificateAuthority};
use psp_net::circuit::{NodeDirectory, NodeRecord, Rate, Services};
use psp_net::crypto::{NodeId, OnionSecret, Sr25519Keypair};
use psp_net::driver::counts::SharedOracles;
use psp_net::driver::messaging::{MessagingChain, MessagingSetup};
use psp_net::driver::streams::{ReceiptKeyUpdates, SharedKeyUpdates, StreamSetup};
use psp_net::driver::{
    unix_now, DhtSetup, Keypair, Node, NodeConfig, NodeEvent, NodeHandle, NodeSecrets, NodeServices,
};
use psp_net::receipts::{
    BitrateClass, IssuerConfig, KeySize, PublishedKey, SigningKey, StreamParams,
};
use psp_net::registry::{IdentityKind, StaticRegistry};
use psp_net::stream::oracle::SubscriptionView;
use psp_net::stream::record::{stream_id_for, verify_stream_record};
use tokio::time::timeout;

const GENESIS: [u8; 32] = [0x53; 32];
const EPOCH: u64 = 7;
const STEP: Duration = Duration::from_secs(30);
const ANSWER: Duration = Duration::from_secs(20);
const FAST: Rate = Rate {
    cells_per_sec: 50_000,
    burst: 10_000,
};
/// Receipts one subscription may draw per epoch, over both oracles.
const BOUND: u32 = 4;
const ALICE: u8 = 0x0a;
const MALLORY: u8 = 0x0d;

#[derive(Default)]
struct Directory(Mutex<HashMap<NodeId, NodeRecord>>);

impl NodeDirectory for Directory {
    fn onion_key(&self, node: &NodeId) -> Option<NodeRecord> {
        self.0.lock().ok()?.get(node).cloned()
    }
}

/// Subscriptions on the fake chain: identity → the tier it allows, every epoch.
struct Subscriptions(HashMap<[u8; 32], StreamParams>);

impl SubscriptionView for Subscriptions {
    fn allowance(&self, identity: &[u8; 32], _epoch: u64) -> Option<StreamParams> {
        self.0.get(identity).copied()
    }
}

fn client_keys(seed: u8) -> Keys {
    Keys::from_secrets([seed; 32], [seed.wrapping_add(100); 32]).expect("keys")
}

/// The plan Alice subscribes to, and a lower one.
fn tiers() -> (StreamParams, StreamParams) {
    (
        StreamParams {
            lifetime_secs: 3_600,
            bitrate: BitrateClass::Standard,
            distribution_nodes: 4,
        },
        StreamParams {
            lifetime_secs: 600,
            bitrate: BitrateClass::Low,
            distribution_nodes: 2,
        },
    )
}

struct Network {
    registry: Arc<StaticRegistry>,
    authority_key: Sr25519Keypair,
    nodes: Vec<RelayNode>,
    handles: Vec<NodeHandle>,
    /// What node 1 (the second oracle) reports.
    second_events: tokio::sync::mpsc::Receiver<NodeEvent>,
    /// The key landing nodes accept, and one they do not; both held by the oracle (node 0).
    published: PublishedKey,
    unpublished: PublishedKey,
    /// The second oracle's key of the same tier as `published` (accepted too).
    second: PublishedKey,
}

/// Five nodes with the DHT, messaging and stream services; nodes 0 and 1 are the oracles.
async fn start_network() -> Network {
    let authority_key = Sr25519Keypair::from_seed(&[0xa0; 32]);
    let node_keys: Vec<Sr25519Keypair> = (1..=5u8)
        .map(|i| Sr25519Keypair::from_seed(&[i; 32]))
        .collect();
    let mut registry = StaticRegistry::default();
    registry.insert(authority_key.public(), IdentityKind::Node);
    for k in &node_keys {
        registry.insert(k.public(), IdentityKind::Node);
    }
    for seed in [ALICE, MALLORY] {
        registry.insert(client_keys(seed).identity_public(), IdentityKind::Client);
    }
    let registry = Arc::new(registry);

    let (tier, lower) = tiers();
    let subscriptions = Arc::new(Subscriptions(HashMap::from([(
        client_keys(ALICE).identity_public(),
        tier,
    )])));
    let expires_at = unix_now() + 3_600;
    let signing = SigningKey::generate(KeySize::Rsa2048).expect("rsa key");
    let other = SigningKey::generate(KeySize::Rsa2048).expect("rsa key");
    let published = PublishedKey {
        public: signing.public_key().clone(),
        epoch: EPOCH,
        tier,
        expires_at,
    };
    let unpublished = PublishedKey {
        public: other.public_key().clone(),
        epoch: EPOCH,
        tier: lower,
        expires_at,
    };
    let second_key = SigningKey::generate(KeySize::Rsa2048).expect("rsa key");
    let second = PublishedKey {
        public: second_key.public_key().clone(),
        epoch: EPOCH,
        tier,
        expires_at,
    };
    let mut issuing = vec![(EPOCH, tier, signing), (EPOCH, lower, other)];
    let mut second_issuing = vec![(EPOCH, tier, second_key)];
    let oracles = SharedOracles::default();

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
    let chain = MessagingChain {
        genesis: GENESIS,
        authorities: Arc::new(RwLock::new(vec![authority_key.public()])),
        registry: registry.clone(),
        generation: Arc::new(AtomicU64::new(0)),
    };
    let mut nodes = Vec::new();
    let mut handles = Vec::new();
    let mut peers = Vec::new();
    let mut second_events = None;
    for (i, key) in node_keys.iter().enumerate() {
        let link_key = Keypair::generate_ed25519();
        let peer_id = link_key.public().to_peer_id();
        let secrets = NodeSecrets {
            id: NodeId(key.public()),
            onion: OnionSecret::from_bytes([(i as u8).wrapping_mul(37).wrapping_add(5); 32]),
            link_key,
        };
        let node_key = Arc::new(Sr25519Keypair::from_seed(&[i as u8 + 1; 32]));
        let keys: SharedKeyUpdates = Arc::new(Mutex::new(ReceiptKeyUpdates {
            epoch: EPOCH,
            issuing: match i {
                0 => std::mem::take(&mut issuing),
                1 => std::mem::take(&mut second_issuing),
                _ => Vec::new(),
            },
            token_issuing: Vec::new(),
            published: Some(vec![published.clone(), second.clone()]),
        }));
        let services = NodeServices {
            dht: Some(DhtSetup::new(registry.clone())),
            messaging: Some(MessagingSetup {
                node_key: node_key.clone(),
                chain: chain.clone(),
                presence: Default::default(),
                rendezvous: Default::default(),
                lookup: Default::default(),
                observer: None,
            }),
            streams: Some(StreamSetup {
                oracles: oracles.clone(),
                issuer: IssuerConfig {
                    receipts_per_subscription: BOUND,
                    ..IssuerConfig::default()
                },
                ..StreamSetup::new(node_key, chain.clone(), subscriptions.clone(), keys)
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
        if i == 1 {
            second_events = Some(node.events);
        }
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
        if i < 2 {
            let oracle = (desc.id, peer_id, desc.address.clone());
            oracles.write().expect("lock").push(oracle);
        }
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
        handles,
        second_events: second_events.expect("node 1 started"),
        published,
        unpublished,
        second,
    }
}

/// An access certificate for `keys` from the network's authority.
fn certificate(net: &Network, keys: &Keys, serial: u64) -> Vec<u8> {
    let mut authority =
        CertificateAuthority::new(net.authority_key.clone(), GENESIS, 3_600, serial << 32);
    let key = Sr25519Keypair::from_seed(keys.identity_seed());
    let now = unix_now();
    let request = CertRequest::new(&key, keys.x25519_public(), authority.public(), now);
    authority
        .issue(&request.encode(), now, &*net.registry)
        .expect("issued")
        .encode()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscribed_producer_creates_a_stream_over_real_circuits() {
    let net = start_network().await;
    let client = OverlayClient::new(CircuitOptions {
        send_rate: FAST,
        ..CircuitOptions::default()
    })
    .expect("onion client");
    let alice = client_keys(ALICE);
    let alice_cert = certificate(&net, &alice, 1);
    let oracle = &net.nodes[0];
    let landing = &net.nodes[2];
    let distribution = vec![net.nodes[3].key(), net.nodes[4].key()];
    let registry: &dyn psp_net::registry::IdentityRegistry = &*net.registry;
    let mut lines = Vec::new();

    // Alice draws a receipt from the oracle and creates a stream over a fresh circuit.
    let drawn = draw_receipt_at(
        &client,
        &net.nodes,
        &alice,
        &alice_cert,
        oracle,
        &net.published,
        &landing.key(),
        ANSWER,
        |p| lines.push(p.to_string()),
    )
    .await
    .expect("a receipt");
    assert_eq!(drawn.oracle, oracle.key());
    assert_eq!(drawn.path.last(), Some(&oracle.key()));
    assert_eq!(drawn.receipt.params, net.published.tier);
    assert_eq!(drawn.receipt.epoch, EPOCH);
    let created = create_stream(
        &client,
        &net.nodes,
        landing,
        &drawn,
        distribution.clone(),
        registry,
        ANSWER,
        |p| lines.push(p.to_string()),
    )
    .await
    .expect("a stream");
    assert_eq!(created.path.last(), Some(&landing.key()));
    assert_ne!(created.path, drawn.path, "a fresh circuit");
    let stream_id = created.stream_id();
    assert_eq!(stream_id, stream_id_for(&drawn.receipt.spend_id));
    let checked = verify_stream_record(&created.record_bytes, unix_now(), registry)
        .expect("the record verifies");
    assert_eq!(checked.access_points(), &distribution[..]);
    assert_eq!(checked.record().landing, landing.key());
    let view = created.view();
    assert_eq!(view.access_points.len(), 2);
    assert_eq!(view.formats, ["webrtc"]);
    assert!(
        lines.iter().any(|l| l.contains("created")),
        "progress: {lines:?}"
    );

    // Another node finds the record in the DHT.
    let key = stream_record_key(&landing.key(), &stream_id);
    let signed = timeout(STEP, async {
        loop {
            let report = net.handles[1].dht_get(key).await.expect("dht get");
            if let Some(record) = report.record {
                return record;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    })
    .await
    .expect("the record reaches the DHT");
    let (found, bytes) =
        verify_dht_stream_record(&landing.key(), &stream_id, &signed, unix_now(), registry)
            .expect("the DHT record verifies");
    assert_eq!(found.access_points(), &distribution[..]);
    assert_eq!(bytes, created.record_bytes);

    // Mallory holds no subscription.
    let mallory = client_keys(MALLORY);
    let mallory_cert = certificate(&net, &mallory, 2);
    let err = draw_receipt_at(
        &client,
        &net.nodes,
        &mallory,
        &mallory_cert,
        oracle,
        &net.published,
        &landing.key(),
        ANSWER,
        |_| {},
    )
    .await
    .expect_err("not subscribed");
    assert!(
        matches!(
            err,
            StreamClientError::OracleRefused {
                reason: OracleRefusal::NotSubscribed,
                ..
            }
        ),
        "{err}"
    );

    // The same receipt again: spent.
    let err = create_stream(
        &client,
        &net.nodes,
        landing,
        &drawn,
        distribution.clone(),
        registry,
        ANSWER,
        |_| {},
    )
    .await
    .expect_err("spent");
    assert!(
        matches!(
            err,
            StreamClientError::LandingRefused {
                reason: LandingRefusal::AlreadySpent,
                ..
            }
        ),
        "{err}"
    );

    // A receipt drawn for one landing node, presented at another.
    let for_landing = draw_receipt_at(
        &client,
        &net.nodes,
        &alice,
        &alice_cert,
        oracle,
        &net.published,
        &landing.key(),
        ANSWER,
        |_| {},
    )
    .await
    .expect("a receipt");
    let err = create_stream(
        &client,
        &net.nodes,
        &net.nodes[1],
        &for_landing,
        distribution.clone(),
        registry,
        ANSWER,
        |_| {},
    )
    .await
    .expect_err("bound to another landing node");
    assert!(
        matches!(
            err,
            StreamClientError::LandingRefused {
                reason: LandingRefusal::WrongLanding,
                ..
            }
        ),
        "{err}"
    );

    // A receipt under a key the landing nodes do not accept.
    let unpublished = draw_receipt_at(
        &client,
        &net.nodes,
        &alice,
        &alice_cert,
        oracle,
        &net.unpublished,
        &landing.key(),
        ANSWER,
        |_| {},
    )
    .await
    .expect("a receipt of the lower tier");
    let err = create_stream(
        &client,
        &net.nodes,
        landing,
        &unpublished,
        distribution,
        registry,
        ANSWER,
        |_| {},
    )
    .await
    .expect_err("unknown key");
    assert!(
        matches!(
            err,
            StreamClientError::LandingRefused {
                reason: LandingRefusal::UnknownKey,
                ..
            }
        ),
        "{err}"
    );

    client.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscription_cannot_draw_more_by_asking_another_oracle() {
    let mut net = start_network().await;
    let client = OverlayClient::new(CircuitOptions {
        send_rate: FAST,
        ..CircuitOptions::default()
    })
    .expect("onion client");
    let alice = client_keys(ALICE);
    let alice_cert = certificate(&net, &alice, 3);
    let draw = |oracle: usize, key: PublishedKey| {
        let (client, nodes, cert, alice) = (&client, &net.nodes, &alice_cert, &alice);
        async move {
            let landing = nodes[2].key();
            draw_receipt_at(
                client,
                nodes,
                alice,
                cert,
                &nodes[oracle],
                &key,
                &landing,
                ANSWER,
                |_| {},
            )
            .await
        }
    };

    // The whole bound from oracle 0.
    for _ in 0..BOUND {
        draw(0, net.published.clone())
            .await
            .expect("within the bound");
    }
    // Oracle 1 hears of them: its node task takes oracle 0's counts (all BOUND of them).
    timeout(STEP, async {
        while let Some(event) = net.second_events.recv().await {
            if let NodeEvent::ReceiptCounts(received) = event {
                if received.from.0 == net.nodes[0].key() && received.issued == u64::from(BOUND) {
                    return;
                }
            }
        }
        panic!("node 1 stopped");
    })
    .await
    .expect("oracle 1 receives oracle 0's counts");
    let err = draw(1, net.second.clone())
        .await
        .expect_err("the bound is shared");
    assert!(
        matches!(
            err,
            StreamClientError::OracleRefused {
                reason: OracleRefusal::Exhausted,
                ..
            }
        ),
        "{err}"
    );
    client.shutdown().await;
}
