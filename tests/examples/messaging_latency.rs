//! Private messaging between real processes, measured: six `psp-node` processes on
//! `--chain local` (the network of `tests/messaging.rs`, relays' circuit rate raised to
//! [`RELAY_RATE`]) and two `psp messaging agent` processes, driven through their control
//! sockets.
//!
//! ```text
//! cargo run -p psp-e2e-tests --example messaging_latency -- [CONNECTS] [ROUND_TRIPS] [MESSAGES]
//! ```
//! (defaults 20, 50, 200; `PSP_NODE_BIN` and the `psp` binary as for the end-to-end tests).
//!
//! - **connect**: from Alice's `send` to Bob's id string until Bob's agent reports the message
//!   (`message-received`), on a fresh channel each time: lookup over a 3-hop circuit,
//!   rendezvous point, introduction through a presence point, Bob's agent accepting at once
//!   (`--accept-all`), its join, the handshake, the message. Alice closes the channel after
//!   each; connects start at least [`CONNECT_SPACING`] apart (Bob's points let 60
//!   introductions a minute through).
//! - **round trip** of 32 B on an established channel: Alice sends, Bob's agent reports it, Bob
//!   sends back, Alice's agent reports it.
//! - **messages per second** on one channel at the agents' default pace (10 cells a second
//!   per circuit after a burst of 100: the relays' default circuit rate): Alice queues
//!   `MESSAGES` messages of 32 B, Bob's agent reports the last.
//!
//! Arrivals are seen by polling the agents' event lines every [`POLL`]: that is the
//! resolution of every figure. The agents and the `psp` control calls are the debug builds
//! the tests use unless `PSP_NODE_BIN` and the target directory say otherwise.

use anyhow::{bail, Context, Result};
use psp_client::messaging::{control, Reply, Request};
use psp_e2e_tests::agent::{prepare, start_messaging_nodes, AgentProc, AGENT_TIMEOUT};
use psp_e2e_tests::{run_scenario, wait_for, PspNode};
use std::path::Path;
use std::time::{Duration, Instant};

/// How often the agents' event lines are read.
const POLL: Duration = Duration::from_millis(2);
/// Least time between two connects' starts.
const CONNECT_SPACING: Duration = Duration::from_millis(1_100);
/// A control call's deadline.
const CALL_TIMEOUT: Duration = Duration::from_secs(120);
/// The whole run after the nodes are up.
const RUN_TIMEOUT: Duration = Duration::from_secs(1_200);

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<()> {
    let mut args = std::env::args().skip(1).map(|a| a.parse::<usize>());
    let mut next = |default: usize| args.next().unwrap_or(Ok(default));
    let connects = next(20).context("CONNECTS")?.max(1);
    let round_trips = next(50).context("ROUND_TRIPS")?.max(1);
    let messages = next(200).context("MESSAGES")?.max(1);
    eprintln!("messaging_latency: starting six psp-node processes");
    let nodes = start_messaging_nodes(false).await?;
    run_scenario(
        &nodes,
        RUN_TIMEOUT,
        bench(&nodes, connects, round_trips, messages),
    )
    .await
}

async fn bench(
    nodes: &[PspNode],
    connects: usize,
    round_trips: usize,
    messages: usize,
) -> Result<()> {
    let dir = tempfile::tempdir()?;
    let prepared = prepare(nodes, dir.path(), &["bob", "alice"]).await?;
    let [bob_c, alice_c] = &prepared.clients[..] else {
        bail!("two clients");
    };
    let bob = AgentProc::spawn(
        "bob",
        bob_c,
        &prepared.url,
        &prepared.dave_url,
        2,
        &[
            "--accept-all",
            "--rate",
            "60",
            "--burst",
            "10",
            "--cap",
            "64",
        ],
    )?;
    let alice = AgentProc::spawn(
        "alice",
        alice_c,
        &nodes[1].url(),
        &prepared.dave_url,
        0,
        &[],
    )?;
    bob.wait_events("bob's two points", AGENT_TIMEOUT, |events| {
        (events
            .iter()
            .filter(|e| e["event"] == "point-registered")
            .count()
            >= 2)
            .then_some(())
    })
    .await?;
    alice
        .wait_events("alice started", AGENT_TIMEOUT, |events| {
            events.iter().any(|e| e["event"] == "started").then_some(())
        })
        .await?;
    let bob_socket = Path::new(&bob.socket).to_path_buf();
    let alice_socket = Path::new(&alice.socket).to_path_buf();
    wait_for("alice finding bob's two points", AGENT_TIMEOUT, || async {
        let reply = control::call(
            &alice_socket,
            &Request::Lookup {
                peer: bob_c.id.clone(),
            },
            CALL_TIMEOUT,
        )
        .await
        .map_err(|e| e.to_string())?;
        match reply {
            Reply::Lookup(view) if view.presences.len() >= 2 => Ok(Some(())),
            other => Err(format!("{other:?}")),
        }
    })
    .await?;

    // Connects, each on a fresh channel.
    let mut connect_ms = Vec::new();
    for i in 0..connects {
        let start = Instant::now();
        let before = bob.count("message-received");
        let reply = call(
            &alice_socket,
            Request::send(bob_c.id.clone(), format!("connect {i}").into_bytes()),
        )
        .await?;
        let Reply::Sent { channel, .. } = reply else {
            bail!("send: {reply:?}");
        };
        arrived(&bob, before + 1).await?;
        connect_ms.push(start.elapsed().as_secs_f64() * 1e3);
        call(&alice_socket, Request::Close { channel }).await?;
        let spent = start.elapsed();
        if spent < CONNECT_SPACING {
            tokio::time::sleep(CONNECT_SPACING - spent).await;
        }
        eprintln!("connect {i}: {:.1} ms", connect_ms[i]);
    }

    // Round trips on one channel.
    let text = |i: usize| format!("{i:032}").into_bytes();
    let mut bob_seen = bob.count("message-received") + 1;
    call(&alice_socket, Request::send(bob_c.id.clone(), text(0))).await?;
    arrived(&bob, bob_seen).await?;
    let mut alice_seen = alice.count("message-received");
    let mut rtt_ms = Vec::new();
    for i in 0..round_trips {
        let start = Instant::now();
        call(&alice_socket, Request::send(bob_c.id.clone(), text(i))).await?;
        bob_seen += 1;
        arrived(&bob, bob_seen).await?;
        call(&bob_socket, Request::send(alice_c.id.clone(), text(i))).await?;
        alice_seen += 1;
        arrived(&alice, alice_seen).await?;
        rtt_ms.push(start.elapsed().as_secs_f64() * 1e3);
        // Let the circuits' buckets refill (4 cells per round trip at 10 a second).
        tokio::time::sleep(Duration::from_millis(400)).await;
    }

    // Messages per second at the default pace, after the buckets refilled.
    tokio::time::sleep(Duration::from_secs(12)).await;
    let start = Instant::now();
    for i in 0..messages {
        call(&alice_socket, Request::send(bob_c.id.clone(), text(i))).await?;
    }
    arrived(&bob, bob_seen + messages).await?;
    let secs = start.elapsed().as_secs_f64();

    let (c50, c99) = percentiles(&mut connect_ms);
    let (r50, r99) = percentiles(&mut rtt_ms);
    println!(
        "messaging between real psp-node processes: connect (send to an id string -> first \
         message delivered, fresh channel) p50 {c50:.1} ms, p99 {c99:.1} ms over {connects}; \
         round trip of 32 B on an established channel p50 {r50:.1} ms, p99 {r99:.1} ms over \
         {round_trips}; {messages} messages of 32 B on one channel at the default pace in \
         {secs:.1} s: {:.1} messages/s",
        messages as f64 / secs
    );
    Ok(())
}

/// A control call that must succeed.
async fn call(socket: &Path, request: Request) -> Result<Reply> {
    control::call(socket, &request, CALL_TIMEOUT)
        .await
        .with_context(|| format!("control call {request:?}"))
}

/// Waits until `agent` has reported `n` received messages.
async fn arrived(agent: &AgentProc, n: usize) -> Result<()> {
    let deadline = Instant::now() + AGENT_TIMEOUT;
    while agent.count("message-received") < n {
        if Instant::now() > deadline {
            bail!(
                "{}'s agent: {n} messages not received:\n{}",
                agent.name,
                agent.tail()
            );
        }
        tokio::time::sleep(POLL).await;
    }
    Ok(())
}

/// p50 and p99 (nearest rank) of `values`.
fn percentiles(values: &mut [f64]) -> (f64, f64) {
    values.sort_by(f64::total_cmp);
    let rank = |p: f64| {
        let i = ((p * values.len() as f64).ceil() as usize).clamp(1, values.len()) - 1;
        values[i]
    };
    (rank(0.50), rank(0.99))
}
