//! The DHT over real sockets: nodes with Kademlia on 127.0.0.1 in one process. A record put
//! through one node is found through another; forged and unregistered-owner records are
//! refused with their reason and stored nowhere; the routing table keeps its diversity
//! limits. Every test is bounded in time.

use std::sync::Arc;
use std::time::Duration;

mod common;

use common::{presence_record, start_dht_node, DhtNode};
use psp_net::circuit::StaticDirectory;
use psp_net::crypto::Sr25519Keypair;
use psp_net::dht::SignedRecord;
use psp_net::driver::{DhtSetup, DriverError, Keypair, Multiaddr, PeerId};
use psp_net::registry::{IdentityKind, StaticRegistry};
use tokio::time::timeout;

async fn start(i: u8, registry: &Arc<StaticRegistry>) -> DhtNode {
    let key = Sr25519Keypair::from_seed(&[i; 32]);
    let directory = Arc::new(StaticDirectory::default());
    start_dht_node(key, i, directory, DhtSetup::new(registry.clone())).await
}

fn record(
    owner: &Sr25519Keypair,
    publisher: &Sr25519Keypair,
    seq: u64,
    value: &[u8],
) -> SignedRecord {
    presence_record(owner, publisher, [1; 32], seq, value, 300)
}

/// Four registered nodes that know each other (as the chain's node list would tell them)
/// and a registered client.
async fn network() -> (Vec<DhtNode>, Sr25519Keypair, Arc<StaticRegistry>) {
    let client = Sr25519Keypair::from_seed(&[100; 32]);
    let mut registry = StaticRegistry::default();
    registry.insert(client.public(), IdentityKind::Client);
    for i in 1..=4u8 {
        registry.insert(
            Sr25519Keypair::from_seed(&[i; 32]).public(),
            IdentityKind::Node,
        );
    }
    let registry = Arc::new(registry);
    let mut nodes = Vec::new();
    for i in 1..=4u8 {
        nodes.push(start(i, &registry).await);
    }
    let peers: Vec<_> = nodes.iter().map(|n| n.peer.clone()).collect();
    for n in &nodes {
        let counts = n
            .handle
            .dht_set_peers(peers.clone())
            .await
            .expect("running");
        assert_eq!(counts, (3, 0), "every other node is added, not itself");
    }
    (nodes, client, registry)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_record_put_through_one_node_is_found_through_another() {
    timeout(Duration::from_secs(60), async {
        let (nodes, client, _) = network().await;
        let first = record(&client, &nodes[0].key, 1, b"at node 1");
        let put = nodes[0]
            .handle
            .dht_put(first.encode())
            .await
            .expect("stored");
        assert!(put.replicas >= 1, "replicated: {put:?}");
        let key = first.content.key();
        let got = nodes[3].handle.dht_get(key).await.expect("lookup");
        assert_eq!(got.record, Some(first.encode()), "{got:?}");

        // A renewal through another publisher supersedes it everywhere it is looked up.
        let second = record(&client, &nodes[1].key, 2, b"at node 2");
        nodes[1]
            .handle
            .dht_put(second.encode())
            .await
            .expect("stored");
        let got = nodes[2].handle.dht_get(key).await.expect("lookup");
        assert_eq!(got.record, Some(second.encode()), "{got:?}");
        // The older one is refused now.
        let stale = nodes[3].handle.dht_put(first.encode()).await;
        assert!(
            matches!(stale, Err(DriverError::Dht(ref m)) if m.contains("stale")),
            "{stale:?}"
        );
    })
    .await
    .expect("within a minute");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_and_unregistered_records_are_refused_and_stored_nowhere() {
    timeout(Duration::from_secs(60), async {
        let (nodes, client, _) = network().await;
        let mut forged = record(&client, &nodes[0].key, 1, b"genuine");
        forged.content.value = b"forged".to_vec();
        let err = nodes[0].handle.dht_put(forged.encode()).await.unwrap_err();
        assert!(err.to_string().contains("bad owner signature"), "{err}");

        let stranger = Sr25519Keypair::from_seed(&[200; 32]);
        let unknown = record(&stranger, &nodes[0].key, 1, b"who?");
        let err = nodes[0].handle.dht_put(unknown.encode()).await.unwrap_err();
        assert!(err.to_string().contains("not registered"), "{err}");

        let err = nodes[0].handle.dht_put(vec![1, 2, 3]).await.unwrap_err();
        assert!(err.to_string().contains("malformed"), "{err}");

        for n in &nodes {
            let got = n
                .handle
                .dht_get(forged.content.key())
                .await
                .expect("lookup");
            assert_eq!(got.record, None);
            let got = n
                .handle
                .dht_get(unknown.content.key())
                .await
                .expect("lookup");
            assert_eq!(got.record, None);
        }
    })
    .await
    .expect("within a minute");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_routing_table_keeps_its_per_address_limit() {
    timeout(Duration::from_secs(30), async {
        let registry = Arc::new(StaticRegistry::default());
        let node = start(1, &registry).await;
        // Five peers claiming one public address: two get in (the default limit).
        let crowd: Vec<(PeerId, Multiaddr)> = (0..5)
            .map(|_| {
                (
                    Keypair::generate_ed25519().public().to_peer_id(),
                    "/ip4/198.51.100.7/tcp/30444".parse().expect("multiaddr"),
                )
            })
            .collect();
        assert_eq!(
            node.handle
                .dht_set_peers(crowd.clone())
                .await
                .expect("running"),
            (2, 0)
        );
        // Loopback (a local test network) is exempt.
        let local: Vec<(PeerId, Multiaddr)> = (0..5)
            .map(|i| {
                (
                    Keypair::generate_ed25519().public().to_peer_id(),
                    format!("/ip4/127.0.0.1/tcp/{}", 40_000 + i)
                        .parse()
                        .expect("multiaddr"),
                )
            })
            .collect();
        // (The whole set each time: the crowd stays, its two peers are not added again.)
        let both = [crowd, local].concat();
        assert_eq!(
            node.handle.dht_set_peers(both).await.expect("running"),
            (5, 0)
        );
    })
    .await
    .expect("within 30 s");
}
