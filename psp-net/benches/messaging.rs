//! Private messaging latency and rate over the real driver: six in-process driver nodes on
//! real libp2p links on 127.0.0.1 and clients on 3-hop circuits, as in `tests/messaging.rs`.
//! Not `psp-node` processes: the nodes check identities against a static registry, not a
//! chain, and the client machines are driven by this program, not the messaging agent.
//!
//! `cargo bench -p psp-net --bench messaging [-- CONNECTS]` prints:
//! - connect: from "send to Bob" to the first message delivered to Bob on a fresh channel —
//!   lookup over a 3-hop circuit, rendezvous point, introduction, Bob's accept and join, the
//!   handshake, the message — p50 / p99 over CONNECTS (default 20) fresh channels;
//! - round trip of a 32-byte message on an established channel, p50 / p99 over 200;
//!
//! both with the circuit rate limit raised (at the default 10 cells/s a round trip waits for
//! the token bucket once the burst is spent, which measures the limiter, not the network);
//! - messages per second on one channel at the default rate limit (10 cells/s per circuit,
//!   burst 100; 300 messages of 32 B), on a second network with the default limits.

#[path = "../tests/messaging_net/mod.rs"]
mod messaging_net;

use std::time::{Duration, Instant};

use messaging_net::*;
use psp_net::circuit::{Config, Rate};
use psp_net::driver::{ClientHandle, NodeConfig};
use psp_net::rendezvous::client::{Output, Session, SessionEvent};
use psp_net::rendezvous::wire::ChannelLimits;
use psp_net::rendezvous::StreamHandle;

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn report(what: &str, mut samples: Vec<Duration>) {
    samples.sort();
    println!(
        "{what}: p50 {:.1} ms, p99 {:.1} ms, min {:.1} ms, max {:.1} ms ({} samples)",
        percentile(&samples, 0.5).as_secs_f64() * 1e3,
        percentile(&samples, 0.99).as_secs_f64() * 1e3,
        samples[0].as_secs_f64() * 1e3,
        samples[samples.len() - 1].as_secs_f64() * 1e3,
        samples.len()
    );
}

fn main() {
    let connects: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(20);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(run(connects));
}

/// Bob announced on `nodes`, and Alice's client.
struct Pair {
    world: World,
    nodes: Vec<TestNode>,
    bob: Announced,
    alice: ClientHandle,
}

const BOB: u8 = 0x0b;
const ALICE: u8 = 0x0a;

async fn pair(config: NodeConfig, send_rate: Rate) -> Pair {
    let world = World::new(6, &[BOB, ALICE]);
    let nodes = start_nodes(&world, config).await;
    // The highest introduction rate and channel cap a presence node grants (60 a minute,
    // bursts of 10, 64 channels): the connects below are paced to stay within them.
    let limits = ChannelLimits {
        rate_per_minute: 60,
        burst: 10,
        cap: 64,
    };
    let bob = announce(&world, &nodes, BOB, &[(0, [0, 1, 2])], send_rate, limits).await;
    let alice = client(send_rate);
    // Once, so that the record has reached the DHT before any clock starts.
    lookup(&world, &nodes, &alice, bob.identity.id(), 1).await;
    Pair {
        world,
        nodes,
        bob,
        alice,
    }
}

/// A fresh channel from Alice to Bob; Bob's end of it is his stream `handle`.
async fn connect(p: &mut Pair, handle: StreamHandle) -> (Pipes, Session, Session) {
    let (world, nodes) = (&p.world, &p.nodes);
    let found = lookup(world, nodes, &p.alice, p.bob.identity.id(), 1).await;
    let mut alice = Pipes::default();
    let mut initiator = introduce(world, nodes, ALICE, &found[0], &mut alice, &p.alice).await;
    let (id, _) = p.bob.next_introduction(world, 0).await;
    let mut responder = p.bob.accept(nodes, 0, id, [0, 5, 4], handle).await;
    let alice_session = established(&mut initiator, &mut alice).await;
    let bob_session = p.bob.joined(&mut responder).await;
    (alice, alice_session, bob_session)
}

async fn run(connects: usize) {
    let mut p = pair(fast_config(), FAST_SEND).await;
    let mut connect_times = Vec::new();
    let mut last = None;
    for i in 0..connects {
        // One introduction a second at most (Bob's point's rate limit), off the clock.
        tokio::time::sleep(Duration::from_millis(1_100)).await;
        let start = Instant::now();
        let handle = StreamHandle(1_000 + i as u64);
        let (mut alice, mut alice_session, mut bob_session) = connect(&mut p, handle).await;
        let first = deliver(
            (&mut alice_session, &mut alice),
            (&mut bob_session, &mut p.bob.pipes),
            b"first",
        )
        .await;
        assert_eq!(first, b"first");
        connect_times.push(start.elapsed());
        // The channel before this one closes (relays cap the circuits per client).
        if let Some((_, _, old)) = last.replace((alice, alice_session, bob_session)) {
            let old: Session = old;
            p.bob.pipes.close(old.stream()).await;
        }
    }
    report(
        "connect (lookup + introduction + rendezvous + first message)",
        connect_times,
    );

    let (mut alice, mut alice_session, mut bob_session) = last.expect("one channel");
    let mut round_trips = Vec::new();
    for _ in 0..200 {
        let start = Instant::now();
        let ping = deliver(
            (&mut alice_session, &mut alice),
            (&mut bob_session, &mut p.bob.pipes),
            &[7; 32],
        )
        .await;
        deliver(
            (&mut bob_session, &mut p.bob.pipes),
            (&mut alice_session, &mut alice),
            &ping,
        )
        .await;
        round_trips.push(start.elapsed());
    }
    report(
        "round trip of 32 bytes on an established channel",
        round_trips,
    );

    drop((alice, alice_session, bob_session));
    drop(p);

    const MESSAGES: usize = 300;
    let mut p = pair(default_config(), Config::default().circuit_rate).await;
    let (mut alice, mut alice_session, mut bob_session) = connect(&mut p, StreamHandle(999)).await;
    let start = Instant::now();
    for _ in 0..MESSAGES {
        let frames = alice_session.send(&[9; 32]).expect("sealed");
        alice
            .run(Output {
                transmits: frames,
                close: Vec::new(),
                events: Vec::<SessionEvent>::new(),
            })
            .await;
    }
    let stream = bob_session.stream();
    let mut received = 0;
    while received < MESSAGES {
        let bytes = p.bob.pipes.recv(stream).await;
        let out = bob_session.handle_data(&bytes);
        received += p
            .bob
            .pipes
            .run(out)
            .await
            .into_iter()
            .filter(|e| matches!(e, SessionEvent::Message(_)))
            .count();
    }
    let secs = start.elapsed().as_secs_f64();
    println!(
        "{MESSAGES} messages of 32 B on one channel at the default rate limit: {secs:.1} s, {:.1} messages/s",
        MESSAGES as f64 / secs
    );
}
