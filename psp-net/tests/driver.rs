//! The driver over real sockets: relay nodes and a client in one process, linked by libp2p
//! (TCP + Noise + Yamux) on 127.0.0.1 with ephemeral ports. Every test is bounded in time.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use psp_net::cell::DestroyReason;
use psp_net::circuit::{CircuitError, NodeDirectory, NodeRecord, Peer, Rate, RelayEvent};
use psp_net::crypto::{NodeId, OnionSecret};
use psp_net::driver::{
    Circuit, CircuitStream, ClientConfig, ClientHandle, DriverError, Keypair, Node, NodeConfig,
    NodeDescriptor, NodeEvent, NodeHandle, NodeSecrets,
};
use tokio::sync::mpsc;
use tokio::time::timeout;

/// A directory the test fills in once the nodes know their ports.
#[derive(Default)]
struct TestDirectory(Mutex<HashMap<NodeId, NodeRecord>>);

impl NodeDirectory for TestDirectory {
    fn onion_key(&self, node: &NodeId) -> Option<NodeRecord> {
        self.0.lock().ok()?.get(node).cloned()
    }
}

struct TestNode {
    handle: NodeHandle,
    events: mpsc::Receiver<NodeEvent>,
    desc: NodeDescriptor,
}

impl TestNode {
    /// Waits (bounded) for the first event matching `f`.
    async fn expect(&mut self, what: &str, f: impl Fn(&NodeEvent) -> bool) -> NodeEvent {
        let wait = async {
            while let Some(e) = self.events.recv().await {
                if f(&e) {
                    return Some(e);
                }
            }
            None
        };
        match timeout(Duration::from_secs(20), wait).await {
            Ok(Some(e)) => e,
            _ => panic!("no {what} event"),
        }
    }
}

/// Limits high enough that a debug build can push a mebibyte through in seconds.
fn fast_config() -> NodeConfig {
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
    c.limits.max_queue_per_circuit = 4_096;
    c.events = 100_000;
    c
}

async fn start_node(
    i: u8,
    dir: &Arc<TestDirectory>,
    config: NodeConfig,
    register: bool,
) -> TestNode {
    let secrets = NodeSecrets {
        id: NodeId([i; 32]),
        onion: OnionSecret::from_bytes([i.wrapping_mul(37); 32]),
        link_key: Keypair::generate_ed25519(),
    };
    let directory: Arc<dyn NodeDirectory + Send + Sync> = dir.clone();
    let Node {
        handle,
        events,
        task,
    } = Node::new(config, secrets, directory).expect("node");
    tokio::spawn(task.run());
    let desc = timeout(Duration::from_secs(10), handle.descriptor())
        .await
        .expect("listen in time")
        .expect("descriptor");
    if register {
        dir.0
            .lock()
            .expect("lock")
            .insert(desc.id, desc.to_record());
    }
    TestNode {
        handle,
        events,
        desc,
    }
}

async fn start_nodes(n: u8, config: NodeConfig) -> (Arc<TestDirectory>, Vec<TestNode>) {
    let dir = Arc::new(TestDirectory::default());
    let mut nodes = Vec::new();
    for i in 1..=n {
        nodes.push(start_node(i, &dir, config.clone(), true).await);
    }
    (dir, nodes)
}

fn client(send_rate: Rate) -> ClientHandle {
    let config = ClientConfig {
        send_rate,
        stream_buffer: 4_096,
        ..ClientConfig::default()
    };
    let (client, task) = ClientHandle::new(config).expect("client");
    tokio::spawn(task.run());
    client
}

/// A client at the pace of most tests: 100 cells per second, burst 100.
fn slow_client() -> ClientHandle {
    client(Rate {
        cells_per_sec: 100,
        burst: 100,
    })
}

/// Opens an echo stream on `circuit`, sends `msg` and checks that it comes back.
async fn echo_once(circuit: &Circuit, msg: &[u8]) -> CircuitStream {
    let mut s = circuit.open_stream("echo").await.expect("echo");
    s.send(msg).await.expect("send");
    assert_eq!(s.recv().await.as_deref(), Some(msg));
    s
}

/// Runs a test's body, failing it after a minute.
async fn within_a_minute(test: impl std::future::Future<Output = ()>) {
    timeout(Duration::from_secs(60), test)
        .await
        .expect("test took too long");
}

fn path(nodes: &[TestNode], idx: &[usize]) -> Vec<NodeDescriptor> {
    idx.iter().map(|&i| nodes[i].desc.clone()).collect()
}

/// 3 relays + a client: a 3-hop circuit echoes 1 MiB, every byte checked.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_hop_circuit_echoes_one_mebibyte() {
    let test = async {
        let (_dir, nodes) = start_nodes(3, fast_config()).await;
        let client = client(Rate {
            cells_per_sec: 5_000,
            burst: 500,
        });
        let circuit = client
            .build_circuit(&path(&nodes, &[0, 1, 2]))
            .await
            .expect("3-hop circuit");
        assert_eq!(circuit.path().len(), 3);
        assert_eq!(circuit.max_data(), 454);
        let stream = circuit.open_stream("echo").await.expect("echo stream");
        let (writer, mut reader) = stream.into_split();

        const LEN: usize = 1 << 20;
        let data: Vec<u8> = (0..LEN as u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
            .collect();
        let start = std::time::Instant::now();
        let to_send = data.clone();
        let sender = tokio::spawn(async move { writer.send(&to_send).await });
        let mut got = Vec::with_capacity(LEN);
        while got.len() < LEN {
            match reader.recv().await {
                Some(chunk) => got.extend_from_slice(&chunk),
                None => panic!(
                    "stream ended after {} bytes: {:?}",
                    got.len(),
                    circuit.close_reason()
                ),
            }
        }
        sender.await.expect("join").expect("send");
        let elapsed = start.elapsed();
        assert_eq!(got.len(), LEN);
        assert!(got == data, "echoed bytes differ");
        eprintln!(
            "1 MiB echoed over 3 hops in {elapsed:?} ({:.0} KiB/s each way)",
            1024.0 / elapsed.as_secs_f64()
        );
        circuit.destroy().await.expect("destroy");
        for n in &nodes {
            n.handle.shutdown().await;
        }
    };
    timeout(Duration::from_secs(240), test)
        .await
        .expect("test took too long");
}

/// EXTEND to a node that runs but is not in the directory: refused, and both the relay
/// (event) and the client (error) see it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn extend_to_unregistered_node_is_refused() {
    let test = async {
        let (dir, mut nodes) = start_nodes(2, fast_config()).await;
        let rogue = start_node(9, &dir, fast_config(), false).await;
        let client = slow_client();
        let err = client
            .build_circuit(&[
                nodes[0].desc.clone(),
                nodes[1].desc.clone(),
                rogue.desc.clone(),
            ])
            .await
            .expect_err("extend must be refused");
        match err {
            DriverError::CircuitClosed(c) => assert_eq!(c.reason, DestroyReason::ExtendRefused),
            other => panic!("unexpected error {other}"),
        }
        let target = rogue.desc.id;
        let ev = nodes[1]
            .expect("ExtendRefused", |e| {
                matches!(e, NodeEvent::Relay(RelayEvent::ExtendRefused { .. }))
            })
            .await;
        assert_eq!(
            ev,
            NodeEvent::Relay(RelayEvent::ExtendRefused {
                target,
                error: CircuitError::NotRegistered(target),
            })
        );
        // The refusing node still serves: a good 2-hop circuit works afterwards.
        let c = client
            .build_circuit(&path(&nodes, &[0, 1]))
            .await
            .expect("good circuit after a refusal");
        let _stream = echo_once(&c, b"still here").await;
        // And an unknown service is refused with a reason.
        match c.open_stream("no-such-service").await {
            Err(DriverError::StreamRefused { .. }) => {}
            other => panic!("unexpected {other:?}"),
        }
    };
    within_a_minute(test).await;
}

/// The link between the middle and the last hop drops: the circuit is torn down at the
/// client (DESTROY LinkClosed travels back), and a later send fails.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn link_dropped_mid_circuit_tears_down_at_client() {
    let test = async {
        let (_dir, mut nodes) = start_nodes(3, fast_config()).await;
        let client = slow_client();
        let circuit = client
            .build_circuit(&path(&nodes, &[0, 1, 2]))
            .await
            .expect("circuit");
        let mut s = echo_once(&circuit, b"ping").await;

        let third = nodes[2].desc.id;
        assert!(nodes[1].handle.close_link(third).await.expect("close"));
        let closed = timeout(Duration::from_secs(10), circuit.closed())
            .await
            .expect("circuit closed at the client in time");
        assert_eq!(closed.reason, DestroyReason::LinkClosed);
        assert_eq!(s.recv().await, None, "stream ends with the circuit");
        assert!(s.send(b"x").await.is_err());
        nodes[1]
            .expect(
                "LinkClosed",
                |e| matches!(e, NodeEvent::LinkClosed { peer, .. } if *peer == Peer::Node(third)),
            )
            .await;
    };
    within_a_minute(test).await;
}

/// The entry node goes away (process stop): the client's link closes and the circuit with it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn entry_node_stopping_tears_down_at_client() {
    let test = async {
        let (_dir, nodes) = start_nodes(3, fast_config()).await;
        let client = slow_client();
        let circuit = client
            .build_circuit(&path(&nodes, &[0, 1, 2]))
            .await
            .expect("circuit");
        nodes[0].handle.shutdown().await;
        let closed = timeout(Duration::from_secs(10), circuit.closed())
            .await
            .expect("circuit closed at the client in time");
        assert_eq!(closed.reason, DestroyReason::LinkClosed);
    };
    within_a_minute(test).await;
}

/// Links with no circuit close after the idle timeout; links with a circuit do not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_links_close_after_idle_timeout() {
    let test = async {
        let idle = Duration::from_millis(300);
        let mut config = fast_config();
        config.link.idle_timeout = idle;
        let (_dir, mut nodes) = start_nodes(2, config).await;
        let client = slow_client();
        let circuit = client
            .build_circuit(&path(&nodes, &[0, 1]))
            .await
            .expect("circuit");
        // Busy links stay up well past the idle timeout.
        tokio::time::sleep(idle * 4).await;
        let _stream = echo_once(&circuit, b"alive").await;
        assert_eq!(nodes[0].handle.stats().await.expect("stats").links, 2);

        let start = std::time::Instant::now();
        circuit.destroy().await.expect("destroy");
        let second = nodes[1].desc.id;
        let mut closed_client = false;
        let mut closed_node = false;
        while !(closed_client && closed_node) {
            match nodes[0]
                .expect("LinkClosed", |e| matches!(e, NodeEvent::LinkClosed { .. }))
                .await
            {
                NodeEvent::LinkClosed { peer, reason, .. } => match peer {
                    // The client's idle timeout is the default 180 s: this node closed it.
                    Peer::Client(_) => {
                        assert!(reason.contains("idle"), "closed for {reason}");
                        closed_client = true
                    }
                    // Both nodes time the link out; whichever is first closes it.
                    Peer::Node(n) => {
                        assert_eq!(n, second);
                        assert!(
                            reason.contains("idle") || reason.contains("closed by peer"),
                            "closed for {reason}"
                        );
                        closed_node = true
                    }
                },
                _ => unreachable!(),
            }
        }
        let after = start.elapsed();
        assert!(
            after >= idle,
            "closed after {after:?}, before the idle timeout"
        );
        assert_eq!(nodes[0].handle.stats().await.expect("stats").links, 0);
    };
    within_a_minute(test).await;
}

/// A node that claims a registered node's id but has another libp2p key: the node it dials
/// refuses the link (peer id mismatch, logged and reported), the circuit through it fails at
/// the client, and the refusing node keeps serving others.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn impostor_link_is_refused_and_node_keeps_serving() {
    let test = async {
        let (dir, mut nodes) = start_nodes(2, fast_config()).await;
        // Claims node 1's id; its own onion key, so a client that believes it can handshake.
        let impostor = start_node(1, &dir, fast_config(), false).await;
        assert_eq!(impostor.desc.id, nodes[0].desc.id);
        assert_ne!(impostor.desc.peer_id, nodes[0].desc.peer_id);
        let client = slow_client();
        let err = client
            .build_circuit(&[impostor.desc.clone(), nodes[1].desc.clone()])
            .await
            .expect_err("the impostor cannot extend");
        match err {
            DriverError::CircuitClosed(c) => assert_eq!(c.reason, DestroyReason::LinkClosed),
            other => panic!("unexpected error {other}"),
        }
        let ev = nodes[1]
            .expect("LinkRefused", |e| {
                matches!(e, NodeEvent::LinkRefused { .. })
            })
            .await;
        match ev {
            NodeEvent::LinkRefused { peer_id, reason } => {
                assert_eq!(peer_id, impostor.desc.peer_id);
                assert!(reason.contains("registered with peer id"), "{reason}");
            }
            _ => unreachable!(),
        }
        let c = client
            .build_circuit(&path(&nodes, &[0, 1]))
            .await
            .expect("honest circuit still works");
        let _stream = echo_once(&c, b"ok").await;
    };
    within_a_minute(test).await;
}

/// The test-only hook flips one bit of the next RELAY cell the client sends: the entry hop's
/// integrity check fails, it destroys the circuit both ways with `Integrity` (its event has
/// the local cause; the next hop only receives the DESTROY), the client sees the close,
/// the tampered data never comes back and further sends fail. A fresh circuit through the
/// same nodes works.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tampered_relay_cell_kills_the_circuit() {
    let test = async {
        let (_dir, mut nodes) = start_nodes(3, fast_config()).await;
        let client = slow_client();
        let circuit = client
            .build_circuit(&path(&nodes, &[0, 1, 2]))
            .await
            .expect("circuit");
        let mut s = echo_once(&circuit, b"before").await;

        circuit
            .tamper_next_cell_for_tests()
            .await
            .expect("arm the hook");
        // Accepted locally: the circuit is still open when the cell leaves.
        s.send(b"tampered").await.expect("send the tampered cell");
        let closed = timeout(Duration::from_secs(10), circuit.closed())
            .await
            .expect("circuit closed at the client in time");
        assert_eq!(closed.reason, DestroyReason::Integrity);
        assert_eq!(closed.cause, None, "a relay closed it, not the client");
        assert_eq!(circuit.close_reason(), Some(closed.clone()));
        assert_eq!(s.recv().await, None, "nothing comes back; the stream ends");
        match s.send(b"after").await {
            Err(DriverError::CircuitClosed(c)) => assert_eq!(c, closed),
            other => panic!("send after the close: {other:?}"),
        }
        match circuit.tamper_next_cell_for_tests().await {
            Err(DriverError::Circuit(CircuitError::NoSuchCircuit)) => {}
            other => panic!("hook on a closed circuit: {other:?}"),
        }

        // The entry detected it (local cause), for the client's circuit.
        let ev = nodes[0]
            .expect("CircuitClosed at the entry", |e| {
                matches!(e, NodeEvent::Relay(RelayEvent::CircuitClosed { .. }))
            })
            .await;
        match ev {
            NodeEvent::Relay(RelayEvent::CircuitClosed {
                peer,
                reason,
                cause,
                ..
            }) => {
                assert!(matches!(peer, Peer::Client(_)), "closed from {peer:?}");
                assert_eq!(reason, DestroyReason::Integrity);
                assert!(
                    matches!(cause, Some(CircuitError::Integrity(_))),
                    "cause {cause:?}"
                );
            }
            _ => unreachable!(),
        }
        // The middle hop was told (DESTROY Integrity), it did not detect anything itself.
        let entry = nodes[0].desc.id;
        let ev = nodes[1]
            .expect("CircuitClosed at the middle", |e| {
                matches!(e, NodeEvent::Relay(RelayEvent::CircuitClosed { .. }))
            })
            .await;
        assert!(
            matches!(
                ev,
                NodeEvent::Relay(RelayEvent::CircuitClosed {
                    peer: Peer::Node(p),
                    reason: DestroyReason::Integrity,
                    cause: None,
                    ..
                }) if p == entry
            ),
            "{ev:?}"
        );

        // The relays keep serving: a fresh circuit through the same nodes echoes.
        let c = client
            .build_circuit(&path(&nodes, &[0, 1, 2]))
            .await
            .expect("fresh circuit after the tampering");
        let mut s = c.open_stream("echo").await.expect("echo");
        let data = vec![0x5a_u8; 4_000];
        s.send(&data).await.expect("send");
        let mut got = Vec::new();
        while got.len() < data.len() {
            got.extend(s.recv().await.expect("echoed"));
        }
        assert_eq!(got, data);
        assert_eq!(c.close_reason(), None);
        c.destroy().await.expect("destroy");
    };
    within_a_minute(test).await;
}
