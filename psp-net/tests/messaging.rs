//! Private messaging over the real driver: six in-process nodes with the DHT and the
//! messaging services (presence, rendezvous), joined by real libp2p links (TCP + Noise +
//! Yamux on 127.0.0.1), and three clients whose every byte to a node travels on a 3-hop
//! circuit. The clients run the psp-rendezvous client machines; this test is their driver.
//!
//! Bob announces at two presence points; his records reach the DHT co-signed by the presence
//! nodes; Alice finds them, checks them herself, sets up a rendezvous point, introduces herself;
//! Bob accepts and joins; they exchange messages both ways (one of 64 KiB) byte-exact
//! through the rendezvous node. Carol is declined and told so; when she tries again, Bob
//! cancels her request and the presence node tears her route down at once (DESTROY), leaving
//! her other circuits alone.
//!
//! What each node learns, recorded by a test-only observer (the plaintext its services
//! receive, the clients linked to it): no node saw both a client's address (its link) and
//! that client's identity; the presence nodes never learned who introduced themselves; the
//! rendezvous node learned no identity at all; every frame each node read from or wrote to its
//! links was one 512-byte cell. (Paths are chosen so that no client's entry
//! node is the last hop of a circuit that names that client: the agent's path choice must
//! keep that rule.)
//!
//! Alice finds Bob's points through a node's `lookup` service over a 3-hop circuit and checks
//! every record herself. Certificates come from a certificate authority in the test rather
//! than an elected node.

mod messaging_net;

use messaging_net::*;
use psp_net::cell::DestroyReason;
use psp_net::driver::unix_now;
use psp_net::rendezvous::client::{InitiatorEvent, Transmit};
use psp_net::rendezvous::wire::PresenceMsg;
use psp_net::rendezvous::StreamHandle;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_identities_talk_through_presence_introduction_and_rendezvous() {
    let (bob_seed, alice_seed, carol_seed) = (0x0b, 0x0a, 0x0c);
    let world = World::new(6, &[bob_seed, alice_seed, carol_seed]);
    let nodes = start_nodes(&world, fast_config()).await;
    let bob_id = world.clients[&bob_seed].id();

    // Bob announces at two presence points (nodes 2 and 3), each behind its own circuit.
    let mut bob = announce(
        &world,
        &nodes,
        bob_seed,
        &[(0, [0, 1, 2]), (1, [1, 0, 3])],
        FAST_SEND,
        Default::default(),
    )
    .await;

    // Alice finds both records (published by the presence nodes) through a node's lookup
    // service and checks them herself.
    let alice_client = client(FAST_SEND);
    let found = lookup(&world, &nodes, &alice_client, bob_id, 2).await;
    let at_node = |i: usize| {
        found
            .iter()
            .find(|p| p.presence_node == nodes[i].desc.id.0)
            .expect("a point at this node")
            .clone()
    };
    let points = [at_node(2), at_node(3)];

    // Alice introduces herself through the first point; Bob sees who it is, accepts and
    // joins her rendezvous point; both finish the handshake.
    let mut alice = Pipes::default();
    let mut initiator = introduce(
        &world,
        &nodes,
        alice_seed,
        &points[0],
        &mut alice,
        &alice_client,
    )
    .await;
    let (id, introduction) = bob.next_introduction(&world, 0).await;
    assert_eq!(introduction.introducer(), &world.clients[&alice_seed].id());
    let mut responder = bob.accept(&nodes, 0, id, [0, 5, 4], StreamHandle(20)).await;
    let mut alice_session = established(&mut initiator, &mut alice).await;
    let mut bob_session = bob.joined(&mut responder).await;
    assert_eq!(alice_session.peer_identity(), &bob_id);
    assert_eq!(
        bob_session.peer_identity(),
        &world.clients[&alice_seed].id()
    );

    // Messages both ways, one of 64 KiB, byte-exact.
    let big: Vec<u8> = (0..64 * 1024u32).map(|i| (i % 251) as u8).collect();
    for message in [&b"hello Bob"[..], &big] {
        let got = deliver(
            (&mut alice_session, &mut alice),
            (&mut bob_session, &mut bob.pipes),
            message,
        )
        .await;
        assert!(got == message, "Bob got {} bytes, byte-exact", got.len());
    }
    let got = deliver(
        (&mut bob_session, &mut bob.pipes),
        (&mut alice_session, &mut alice),
        b"hello Alice",
    )
    .await;
    assert_eq!(got, b"hello Alice");

    // Alice closes her channel (her rendezvous circuit goes): the rendezvous node ends Bob's
    // joined stream (END), so his side of the channel closes too while his circuit stays.
    alice.close(StreamHandle(10)).await;
    let ended = tokio::time::timeout(
        STEP,
        bob.pipes
            .0
            .get_mut(&StreamHandle(20))
            .expect("Bob's join")
            .reader
            .recv(),
    )
    .await
    .expect("Bob's stream ended in time");
    assert_eq!(ended, None, "no bytes after Alice left");
    assert!(bob.pipes.1[&StreamHandle(20)].close_reason().is_none());

    // Carol introduces herself through the second point; Bob declines; Carol is told.
    let carol_client = client(FAST_SEND);
    let mut carol = Pipes::default();
    let mut attempt = introduce(
        &world,
        &nodes,
        carol_seed,
        &points[1],
        &mut carol,
        &carol_client,
    )
    .await;
    let (id, introduction) = bob.next_introduction(&world, 1).await;
    assert_eq!(introduction.introducer(), &world.clients[&carol_seed].id());
    bob.decline(1, id).await;
    let presence = attempt.streams().presence;
    until(
        &mut carol,
        presence,
        |b| attempt.handle_data(unix_now(), presence, b),
        |e| match e {
            InitiatorEvent::Declined => Some(()),
            InitiatorEvent::Failed(e) => panic!("Carol's attempt failed otherwise: {e}"),
            _ => None,
        },
    )
    .await;

    // Carol tries again; Bob cancels the request at his presence node: the node tears
    // Carol's whole route to it down at once (DESTROY, not only an END of the stream), while
    // her rendezvous circuit is untouched.
    let mut carol_again = Pipes::default();
    let _attempt = introduce(
        &world,
        &nodes,
        carol_seed,
        &points[1],
        &mut carol_again,
        &carol_client,
    )
    .await;
    let (id, _) = bob.next_introduction(&world, 1).await;
    let cancel = Transmit {
        stream: StreamHandle(1),
        bytes: PresenceMsg::Cancel(id).encode(),
    };
    write(&mut bob.pipes, cancel).await;
    let to_presence = &carol_again.1[&StreamHandle(11)];
    let closed = tokio::time::timeout(STEP, to_presence.closed())
        .await
        .expect("the cancelled introducer's circuit torn down in time");
    assert_eq!(
        (closed.reason, closed.cause),
        (DestroyReason::Requested, None),
        "destroyed by the network at the presence node's request"
    );
    assert!(
        carol_again.1[&StreamHandle(10)].close_reason().is_none(),
        "Carol's rendezvous circuit stays up"
    );

    // What each node learned: its services' plaintext and the clients linked to it.
    let people = [
        (
            "Alice",
            world.clients[&alice_seed].id(),
            alice_client.peer_id(),
        ),
        ("Bob", bob_id, bob.client.peer_id()),
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
    // Every frame on every link, both ways, was one 512-byte cell.
    for (i, node) in nodes.iter().enumerate() {
        let stats = node.handle.stats().await.expect("stats");
        assert!(stats.link_frames_in > 0 && stats.link_frames_out > 0);
        assert_eq!(
            (stats.link_bytes_in, stats.link_bytes_out),
            (stats.link_frames_in * 512, stats.link_frames_out * 512),
            "node {i}: link bytes are not whole 512-byte cells"
        );
    }
}
