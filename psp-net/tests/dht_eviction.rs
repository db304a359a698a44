//! The DHT's routing table follows the chain, over real sockets (nodes on 127.0.0.1 in one
//! process): the host feeds the whole registered set with `dht_set_peers`; a peer missing
//! from the next feed is evicted (and no longer queried, its address slot freed), and once a
//! set has been fed a node never dials a peer outside it, not even when another node refers
//! it there. Every test is bounded in time; nothing waits on a sleep to decide an outcome.

use std::net::TcpListener as StdListener;
use std::sync::Arc;
use std::time::Duration;

mod common;

use common::{presence_record, start_dht_node, DhtNode};
use psp_net::circuit::StaticDirectory;
use psp_net::crypto::Sr25519Keypair;
use psp_net::dht::SignedRecord;
use psp_net::driver::{DhtSetup, Keypair, Multiaddr, PeerId};
use psp_net::registry::{IdentityKind, StaticRegistry};
use tokio::time::timeout;

async fn start(i: u8, registry: &Arc<StaticRegistry>, query_timeout: Duration) -> DhtNode {
    let key = Sr25519Keypair::from_seed(&[i; 32]);
    let mut dht = DhtSetup::new(registry.clone());
    dht.query_timeout = query_timeout;
    start_dht_node(key, i, Arc::new(StaticDirectory::default()), dht).await
}

fn record(owner: &Sr25519Keypair, publisher: &Sr25519Keypair, topic: u8) -> SignedRecord {
    presence_record(owner, publisher, [topic; 32], 1, &[topic; 16], 300)
}

/// A registry with the node identities `nodes` (seeds) and a client (seed 100).
fn registry(nodes: &[u8]) -> (Arc<StaticRegistry>, Sr25519Keypair) {
    let client = Sr25519Keypair::from_seed(&[100; 32]);
    let mut registry = StaticRegistry::default();
    registry.insert(client.public(), IdentityKind::Client);
    for &i in nodes {
        registry.insert(
            Sr25519Keypair::from_seed(&[i; 32]).public(),
            IdentityKind::Node,
        );
    }
    (Arc::new(registry), client)
}

fn peer_at(addr: &str) -> (PeerId, Multiaddr) {
    (
        Keypair::generate_ed25519().public().to_peer_id(),
        addr.parse().expect("multiaddr"),
    )
}

fn tcp_port(addr: &Multiaddr) -> u16 {
    addr.iter()
        .find_map(|p| match p {
            libp2p::multiaddr::Protocol::Tcp(port) => Some(port),
            _ => None,
        })
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_missing_from_the_next_feed_is_evicted_and_no_longer_queried() {
    timeout(Duration::from_secs(60), async {
        let (registry, client) = registry(&[1, 2, 3]);
        let q = Duration::from_secs(10);
        let (a, b, c) = (
            start(1, &registry, q).await,
            start(2, &registry, q).await,
            start(3, &registry, q).await,
        );
        // Two records stored on C only: C knows no peer yet, so nothing is replicated.
        let (r1, r2) = (record(&client, &c.key, 1), record(&client, &c.key, 2));
        for r in [&r1, &r2] {
            let put = c.handle.dht_put(r.encode()).await.expect("stored");
            assert_eq!(put.replicas, 0, "stored on C only: {put:?}");
        }

        let all = vec![a.peer.clone(), b.peer.clone(), c.peer.clone()];
        for n in [&a, &b] {
            let counts = n.handle.dht_set_peers(all.clone()).await.expect("running");
            assert_eq!(counts, (2, 0));
        }
        // Control: while C is registered, a lookup reaches it (B then keeps r1 too).
        let got = b.handle.dht_get(r1.content.key()).await.expect("lookup");
        assert_eq!(got.record, Some(r1.encode()), "found on C: {got:?}");

        // C is deregistered on chain: the next feed (to every node) no longer lists it.
        let without_c = vec![a.peer.clone(), b.peer.clone()];
        for n in [&a, &b] {
            let counts = n
                .handle
                .dht_set_peers(without_c.clone())
                .await
                .expect("running");
            assert_eq!(counts, (0, 1), "C evicted");
        }
        // The same set again changes nothing.
        assert_eq!(
            a.handle
                .dht_set_peers(without_c.clone())
                .await
                .expect("running"),
            (0, 0)
        );

        // r2 lives only on C, and no lookup reaches C any more: not found. (C left the routing
        // table above, `(0, 1)`; a dial to C that kad had queued before the eviction may
        // still be denied by the gate, so the gate's count is not the evidence here.)
        let got = a.handle.dht_get(r2.content.key()).await.expect("lookup");
        assert_eq!(got.record, None, "C was queried: {got:?}");
        assert_eq!(got.found, 0);
        // Lookups still work: r1, kept by B, is found through B.
        let got = a.handle.dht_get(r1.content.key()).await.expect("lookup");
        assert_eq!(got.record, Some(r1.encode()), "found on B: {got:?}");
    })
    .await
    .expect("within a minute");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_evicted_or_moved_peer_frees_its_address_slot() {
    timeout(Duration::from_secs(30), async {
        let (registry, _) = registry(&[1]);
        let node = start(1, &registry, Duration::from_secs(10)).await;
        let ip = "/ip4/198.51.100.7/tcp/30444";
        let (p1, p2, p3, p4, p5) = (
            peer_at(ip),
            peer_at(ip),
            peer_at(ip),
            peer_at(ip),
            peer_at(ip),
        );
        let set = |peers: &[&(PeerId, Multiaddr)]| peers.iter().map(|p| (*p).clone()).collect();
        let h = &node.handle;
        // Two per IP address (the default).
        assert_eq!(h.dht_set_peers(set(&[&p1, &p2])).await.unwrap(), (2, 0));
        // p2 evicted first, so p3 takes its slot.
        assert_eq!(h.dht_set_peers(set(&[&p1, &p3])).await.unwrap(), (1, 1));
        // p1 registered another address (another /24): re-admitted there, neither added nor
        // removed, and its slot at the first address is free again ...
        let p1_moved = (
            p1.0,
            "/ip4/203.0.113.9/tcp/30444".parse().expect("multiaddr"),
        );
        assert_eq!(
            h.dht_set_peers(set(&[&p1_moved, &p3])).await.unwrap(),
            (0, 0)
        );
        // ... so p4 gets in beside p3 (p5 does not: two again); p1 leaves.
        assert_eq!(
            h.dht_set_peers(set(&[&p3, &p4, &p5])).await.unwrap(),
            (1, 1)
        );
    })
    .await
    .expect("within 30 s");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_referral_to_an_unregistered_peer_is_not_followed() {
    timeout(Duration::from_secs(60), async {
        let (registry, client) = registry(&[1, 2]);
        // X: reachable, but not a registered node. A bare TCP listener that never answers,
        // so a dial to it shows up in its accept queue (with the dialer's listen port as
        // source: libp2p-tcp reuses it) and never completes.
        let x = StdListener::bind("127.0.0.1:0").expect("bind");
        x.set_nonblocking(true).expect("non-blocking");
        let x_addr: Multiaddr = format!("/ip4/127.0.0.1/tcp/{}", x.local_addr().unwrap().port())
            .parse()
            .expect("multiaddr");
        let x_peer = (Keypair::generate_ed25519().public().to_peer_id(), x_addr);

        // H: honest, short query timeout (a lookup that dials X waits for it that long).
        let h = start(1, &registry, Duration::from_secs(2)).await;
        // M: registered, but (lagging or malicious) its routing table holds X.
        let m = start(2, &registry, Duration::from_secs(10)).await;
        assert_eq!(
            m.handle
                .dht_set_peers(vec![x_peer.clone()])
                .await
                .expect("running"),
            (1, 0)
        );
        // H is fed the chain's set: itself and M (its own entry is skipped).
        assert_eq!(
            h.handle
                .dht_set_peers(vec![h.peer.clone(), m.peer.clone()])
                .await
                .expect("running"),
            (1, 0)
        );
        let h_port = tcp_port(&h.peer.1);
        assert_ne!(h_port, 0);

        // H looks up a key nobody has: it asks M (an inbound connection at M, allowed though
        // H is not in M's set), M refers it to X, the dial to X is denied.
        let before = h.handle.stats().await.expect("running").dials_denied;
        let key = record(&client, &h.key, 7).content.key();
        let got = h.handle.dht_get(key).await.expect("lookup");
        assert_eq!(got.record, None);
        let after = h.handle.stats().await.expect("running").dials_denied;
        assert!(after > before, "no dial denied: {before} -> {after}");
        // Had H dialled X, the TCP connection would be in X's queue by now: the lookup
        // would still be waiting for X's answer. (M's own dials to X come from M's port.)
        let mut from_h = 0;
        loop {
            match x.accept() {
                Ok((_, from)) if from.port() == h_port => from_h += 1,
                Ok(_) => {}
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                Err(e) => panic!("accept: {e}"),
            }
        }
        assert_eq!(from_h, 0, "H connected to the unregistered X");

        // Control: once X is registered (fed to H), H does dial it, and it shows up at X
        // from H's port. So the check above could have seen a connection.
        assert_eq!(
            h.handle
                .dht_set_peers(vec![m.peer.clone(), x_peer.clone()])
                .await
                .expect("running"),
            (1, 0)
        );
        let key = record(&client, &h.key, 8).content.key();
        let got = h.handle.dht_get(key).await.expect("lookup");
        assert_eq!(got.record, None);
        let x = tokio::net::TcpListener::from_std(x).expect("tokio listener");
        timeout(Duration::from_secs(10), async {
            loop {
                let (_, from) = x.accept().await.expect("accept");
                if from.port() == h_port {
                    break;
                }
            }
        })
        .await
        .expect("H dials X once X is registered");
    })
    .await
    .expect("within a minute");
}
