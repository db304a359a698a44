//! The whole agent — loop, control socket, stream layer interface, chain interface — on
//! in-memory fakes of the network and the chain (over [`testkit`]'s real node services):
//! two agents talk through the same commands `psp messaging` sends.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use psp_net::driver::unix_now;
use psp_net::rendezvous::StreamHandle;
use tokio::sync::{broadcast, mpsc, Mutex};

use super::*;
use crate::identity::IdentityLookup;
use crate::messaging::error::ErrorView;
use crate::messaging::net::{NetEvent, OpenRequest};
use crate::messaging::source::{
    parse_peer, BoxFuture, IssuedCertificate, Peer, Snapshot, Statuses,
};
use crate::messaging::testkit::{Delivery, World, GENESIS};
use crate::overlay::RelayNode;

type Routes = Arc<std::sync::Mutex<HashMap<u64, (mpsc::Sender<NetEvent>, StreamHandle)>>>;

/// Streams straight to the world's node services, one task per stream. The world's lock is
/// held while what a write produced is delivered, so bytes keep their order per stream.
struct FakeNet {
    world: Arc<Mutex<World>>,
    routes: Routes,
}

async fn deliver(routes: &Routes, deliveries: Vec<Delivery>) {
    for delivery in deliveries {
        let (id, closed) = match &delivery {
            Delivery::Data(id, _) => (*id, false),
            Delivery::Closed(id) => (*id, true),
        };
        let route = {
            let mut routes = routes.lock().expect("routes");
            if closed {
                routes.remove(&id)
            } else {
                routes.get(&id).cloned()
            }
        };
        let Some((events, stream)) = route else {
            continue;
        };
        let event = match delivery {
            Delivery::Data(_, bytes) => NetEvent::Data { stream, bytes },
            Delivery::Closed(_) => NetEvent::Closed {
                stream,
                reason: "closed by the node".into(),
            },
        };
        let _ = events.send(event).await;
    }
}

impl Network for FakeNet {
    fn open(&self, request: OpenRequest, events: mpsc::Sender<NetEvent>) {
        let world = self.world.clone();
        let routes = self.routes.clone();
        tokio::spawn(async move {
            let stream = request.stream;
            let target = request.target().copied().unwrap_or_default();
            let opened = world.lock().await.open(&target, request.service);
            let id = match opened {
                Ok(id) => id,
                Err(reason) => {
                    let _ = events.send(NetEvent::OpenFailed { stream, reason }).await;
                    return;
                }
            };
            routes
                .lock()
                .expect("routes")
                .insert(id, (events.clone(), stream));
            let (writer, mut outgoing) = mpsc::channel::<Vec<u8>>(8_192);
            let _ = events.send(NetEvent::Opened { stream, writer }).await;
            while let Some(bytes) = outgoing.recv().await {
                let mut world = world.lock().await;
                let deliveries = world.write(unix_now(), id, &bytes);
                deliver(&routes, deliveries).await;
            }
            // The agent dropped the writer: it closed the stream.
            routes.lock().expect("routes").remove(&id);
            let mut world = world.lock().await;
            let deliveries = world.close(unix_now(), id);
            deliver(&routes, deliveries).await;
        });
    }

    fn set_nodes(&self, _nodes: Vec<RelayNode>) {}
}

/// The world's registry and authority as the chain.
struct FakeChain {
    world: Arc<Mutex<World>>,
    keys: Arc<Keys>,
    nodes: Vec<RelayNode>,
}

impl ChainSource for FakeChain {
    fn genesis(&self) -> [u8; 32] {
        GENESIS
    }

    fn snapshot(&self) -> BoxFuture<'_, Result<Snapshot, MessagingError>> {
        Box::pin(async move {
            let authorities = self.world.lock().await.authorities.clone();
            Ok(Snapshot {
                authorities,
                nodes: self.nodes.clone(),
            })
        })
    }

    fn statuses(&self, keys: Vec<[u8; 32]>) -> BoxFuture<'_, Result<Statuses, MessagingError>> {
        Box::pin(async move {
            let world = self.world.lock().await;
            Ok(keys.into_iter().map(|k| (k, world.status(&k))).collect())
        })
    }

    fn resolve(&self, who: String) -> BoxFuture<'_, Result<Peer, MessagingError>> {
        Box::pin(async move {
            let IdentityLookup::Key(key) = parse_peer(&who)? else {
                return Err(MessagingError::InvalidRequest {
                    what: "peer",
                    reason: "the fake chain knows keys only".into(),
                });
            };
            let status = self.world.lock().await.status(&key);
            Ok(Peer {
                key,
                id: hex0x(&key),
                status,
            })
        })
    }

    fn certificate(&self) -> BoxFuture<'_, Result<IssuedCertificate, MessagingError>> {
        Box::pin(async move { Ok(self.world.lock().await.certificate(&self.keys, unix_now())) })
    }
}

/// The world and the routes of every agent's streams (a node's answer may go to another
/// agent's stream).
#[derive(Clone)]
struct Shared {
    world: Arc<Mutex<World>>,
    routes: Routes,
}

impl Shared {
    fn new(nodes: u8) -> Self {
        Self {
            world: Arc::new(Mutex::new(World::new(nodes))),
            routes: Routes::default(),
        }
    }
}

async fn agent(shared: &Shared, seed: u8, points: u8, socket: Option<PathBuf>) -> AgentHandle {
    let world = &shared.world;
    let (keys, nodes) = {
        let mut w = world.lock().await;
        (Arc::new(w.client(seed)), w.relay_nodes())
    };
    let network = Arc::new(FakeNet {
        world: world.clone(),
        routes: shared.routes.clone(),
    });
    let source = Arc::new(FakeChain {
        world: world.clone(),
        keys: keys.clone(),
        nodes,
    });
    Agent::spawn_with(AgentParts {
        id: format!("client-{seed}"),
        keys,
        source,
        network,
        core: CoreConfig {
            points,
            ..CoreConfig::default()
        },
        socket,
        refresh: Duration::from_secs(30),
        status_max_age_secs: 60,
        groups_dir: None,
    })
    .await
    .expect("agent starts")
}

/// The next event `pick` accepts, within 10 s.
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
    tokio::time::timeout(Duration::from_secs(10), wait)
        .await
        .expect("the event in time")
}

const T: Duration = Duration::from_secs(20);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_agents_talk_through_their_control_sockets() {
    let world = Shared::new(6);
    let dir = tempfile::tempdir().expect("tempdir");
    let (bob_sock, alice_sock) = (dir.path().join("bob.sock"), dir.path().join("alice.sock"));
    let mut bob = agent(&world, 0x0b, 2, Some(bob_sock.clone())).await;
    let mut bob_events = bob.events();
    for _ in 0..2 {
        next_event(&mut bob_events, |e| {
            matches!(e, AgentEvent::PointRegistered { .. }).then_some(())
        })
        .await;
    }
    let alice = agent(&world, 0x0a, 0, Some(alice_sock.clone())).await;
    let bob_key = hex0x(&bob.identity());

    // Alice's send waits for the channel; Bob sees the request and accepts it.
    let send = {
        let request = Request::send(bob_key.clone(), b"hello Bob".to_vec());
        let socket = alice_sock.clone();
        tokio::spawn(async move { control::call(&socket, &request, T).await })
    };
    let request = next_event(&mut bob_events, |e| match e {
        AgentEvent::IntroductionReceived { request, .. } => Some(*request),
        _ => None,
    })
    .await;
    let accepted = control::call(&bob_sock, &Request::Accept { request }, T)
        .await
        .expect("accepted");
    let Reply::Accepted { peer, .. } = accepted else {
        panic!("not accepted: {accepted:?}")
    };
    assert_eq!(peer, hex0x(&alice.identity()));
    let sent = send.await.expect("task").expect("sent");
    assert!(matches!(sent, Reply::Sent { bytes: 9, .. }), "{sent:?}");
    let inbox = control::call(
        &bob_sock,
        &Request::Inbox {
            wait_secs: 10,
            max: None,
        },
        T,
    )
    .await
    .expect("inbox");
    let Reply::Inbox(view) = inbox else {
        panic!("not an inbox")
    };
    assert_eq!(view.messages[0].text.as_deref(), Some("hello Bob"));

    // 64 KiB back, in-process, on the same channel; byte-exact.
    let big: Vec<u8> = (0..65_536u32).map(|i| (i % 253) as u8).collect();
    let reply = bob
        .request(Request::send(hex0x(&alice.identity()), big.clone()))
        .await
        .expect("sent");
    assert!(matches!(reply, Reply::Sent { bytes: 65_536, .. }));
    let Reply::Inbox(view) = alice
        .request(Request::Inbox {
            wait_secs: 10,
            max: None,
        })
        .await
        .expect("inbox")
    else {
        panic!("not an inbox")
    };
    assert_eq!(view.messages.len(), 1);
    assert_eq!(view.messages[0].bytes().expect("hex"), big);

    let Reply::Status(status) = control::call(&bob_sock, &Request::Status, T)
        .await
        .expect("status")
    else {
        panic!("not a status")
    };
    assert_eq!(status.channels.len(), 1);
    assert_eq!(status.points.len(), 2);
    assert!(status.points.iter().all(|p| p.state == "registered"));

    bob.shutdown().await;
    alice.shutdown().await;
    assert!(
        !bob_sock.exists() && !alice_sock.exists(),
        "sockets removed"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sends_to_unknown_or_revoked_identities_are_refused() {
    let world = Shared::new(4);
    let alice = agent(&world, 0x0a, 0, None).await;
    let revoked = {
        let mut w = world.world.lock().await;
        let key = w.client(0x0e).identity_public();
        w.registry.revoke(key);
        key
    };
    let err = alice
        .request(Request::send(hex0x(&revoked), b"hi".to_vec()))
        .await
        .expect_err("refused");
    assert_eq!(ErrorView::from(&err).code, "NotLive");
    assert!(err.to_string().contains("revoked"), "{err}");
    let err = alice
        .request(Request::send(hex0x(&[0x55; 32]), b"hi".to_vec()))
        .await
        .expect_err("refused");
    assert!(err.to_string().contains("not registered"), "{err}");
    let err = alice
        .request(Request::Send {
            to: hex0x(&[0x55; 32]),
            text: None,
            hex: None,
            presence_node: None,
        })
        .await
        .expect_err("no body");
    assert_eq!(ErrorView::from(&err).code, "InvalidRequest");
    let err = alice
        .request(Request::Send {
            to: hex0x(&[0x55; 32]),
            text: Some("hi".into()),
            hex: None,
            presence_node: Some("0x1234".into()),
        })
        .await
        .expect_err("a short node key");
    assert_eq!(ErrorView::from(&err).code, "InvalidRequest");
    assert!(err.to_string().contains("presenceNode"), "{err}");
    alice.shutdown().await;
}
