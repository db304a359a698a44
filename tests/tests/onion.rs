//! End to end: onion routing through real `psp-node`s on a `--chain local` network.
//!
//! Alice, Bob and Charlie (the authorities) and Dave (a plain fourth node) all run the overlay
//! with raised circuit rates. The overlay identities of Alice, Bob and Charlie are registered
//! on chain the way `psp identity register-node` does it (each node signs its registration,
//! //Alice submits and pays, one at a time, each waiting for finality). Then a client:
//! - reads the registered nodes from `psp_nodes`, builds a 3-hop circuit through them and
//!   echoes 1 MiB with every byte checked;
//! - builds a circuit on a random path of the registered nodes and echoes a little;
//! - tries a path whose second hop is Dave (unregistered, described by his own
//!   `psp_overlayInfo`): the first hop refuses to extend, the error names Alice as the refusing
//!   hop and Dave as the refused node, and Alice's log has the `refused:` warning;
//! - and still builds a good circuit afterwards;
//! - tampers with one cell: through the client's test-only hook
//!   (`Circuit::tamper_next_cell_for_tests`), one bit of the next RELAY cell on an
//!   alice -> bob -> charlie circuit is flipped after encryption. Alice (the entry) detects
//!   it and tears the circuit down: the client sees the close with reason `Integrity`, its
//!   stream ends, further sends fail; Alice's log has the close with its local cause (psp-node
//!   logs circuit closes only at debug, so the nodes run with `-l psp-overlay=debug`), Bob's
//!   has the DESTROY he received; a fresh circuit through the same relays echoes again;
//! - then the `psp` CLI (`$PSP_BIN`, else `$CARGO_TARGET_DIR/debug/psp`, else next to
//!   psp-node; required) registers Dave with `identity register-node`, echoes through him with
//!   `circuit echo`, builds a 4-hop circuit with `circuit build`, and names the shortfall of
//!   a 5-hop one.
//!
//! Last, a fault: a circuit alice -> dave -> charlie carries a message, Dave's process is
//! killed, the client is told within seconds (the circuit closes, sends fail), and a new
//! circuit alice -> bob -> charlie carries the next message.
//!
//! Metrics: every node runs with `--prometheus-port`. Alice's `/metrics` lists the overlay's
//! `psp_overlay_*` metrics before any circuit; after the 1 MiB echo (Alice is the entry) her
//! circuits created and closed rose by one or more and her link frames and bytes in and out by
//! at least the 1 MiB; after the tampered cell and the refusal of Dave, her closes with reason
//! `integrity` and her refused EXTENDs with reason `not_registered` are counted, and Charlie
//! (the exit) counts the echo streams opened to him.

use anyhow::{bail, ensure, Context, Result};
use psp_client::{
    chain::{keypair_from_suri, Chain, Progress},
    hex0x,
    overlay::{self, CircuitOptions, Hop, NodeRpc, OverlayClient, RelayNode},
    psp_net::{cell::DestroyReason, circuit::Rate, driver::DriverError},
    psp_primitives::{IdString, IdentityKind},
    Error,
};
use psp_e2e_tests::{
    run_psp, run_scenario, start_local_network_with, wait_finalized, wait_for, wait_for_node_list,
    OverlayOptions, PspNode, Scrape,
};
use std::{
    collections::BTreeSet,
    time::{Duration, Instant},
};

/// How soon the client must learn that a relay of its circuit died.
const RELAY_DEATH_NOTICE: Duration = Duration::from_secs(10);
/// The whole scenario after startup.
const TEST_TIMEOUT: Duration = Duration::from_secs(600);
/// Finality of the first blocks (needs all three authorities connected).
const FINALITY_TIMEOUT: Duration = Duration::from_secs(240);
/// A registration's finality reaching every relay.
const PROPAGATION_TIMEOUT: Duration = Duration::from_secs(120);
/// 1 MiB.
const MIB: usize = 1 << 20;
/// The driver's totals reach the metrics once a second.
const METRICS_TIMEOUT: Duration = Duration::from_secs(15);

/// The `psp_overlay_*` metrics a relay serves from its start (the labelled ones, such as
/// `psp_overlay_circuits_closed_total{reason}`, appear with their first sample).
const OVERLAY_METRICS: &[&str] = &[
    "psp_overlay_links",
    "psp_overlay_circuits_open",
    "psp_overlay_queued_cells",
    "psp_overlay_circuits_created_total",
    "psp_overlay_links_closed_total",
    "psp_overlay_links_refused_total",
    "psp_overlay_dials_failed_total",
    "psp_overlay_bad_cells_total",
    "psp_overlay_unknown_circuit_cells_total",
    "psp_overlay_link_frames_in_total",
    "psp_overlay_link_frames_out_total",
    "psp_overlay_link_bytes_in_total",
    "psp_overlay_link_bytes_out_total",
    "psp_overlay_events_dropped_total",
    "psp_overlay_dials_denied_total",
    "psp_overlay_directory_period",
    "psp_overlay_directory_signatures",
];

fn print(p: Progress) {
    eprintln!("  {p}");
}

/// The client's pace: below the relays' raised rate (5000/s, burst 5000) and their per-peer
/// rate (2000/s, psp-net's default, which psp-node does not change), with room for the
/// echo's backward cells on the same circuit.
fn client_options() -> CircuitOptions {
    CircuitOptions {
        send_rate: Rate {
            cells_per_sec: 1_000,
            burst: 100,
        },
        build_timeout: Duration::from_secs(30),
        idle_timeout: Duration::from_secs(30),
    }
}

async fn scenario(nodes: &[PspNode]) -> Result<()> {
    let [alice, bob, charlie, dave] = nodes else {
        bail!("expected four nodes");
    };
    let chain = Chain::connect(&alice.url()).await?;
    let t = Instant::now();
    wait_finalized(&chain, 1, FINALITY_TIMEOUT).await?;
    eprintln!("network finalizing after {:?}", t.elapsed());

    // Before any registration: no relay to route through, and the client says so.
    match overlay::registered_nodes(&chain).await {
        Err(Error::NoRegisteredNodes { .. }) => {}
        other => bail!("expected NoRegisteredNodes before registering, got {other:?}"),
    }

    // Register the three relays, one after the other (one payer, one nonce at a time).
    let payer = keypair_from_suri("//Alice", "--payer")?;
    let mut keys = Vec::new();
    for node in [alice, bob, charlie] {
        let t = Instant::now();
        let rpc = NodeRpc::connect(&node.url()).await?;
        let info = rpc.overlay_info().await?;
        let registered =
            overlay::register_node(&chain, &rpc, &payer, "peerstream", "relay", print).await?;
        ensure!(
            hex0x(&registered.key) == info.node_id,
            "{} registered {} but its overlay id is {}",
            node.name(),
            hex0x(&registered.key),
            info.node_id
        );
        ensure!(
            registered.address == info.address,
            "address {}",
            registered.address
        );
        let id = IdString::new("peerstream", IdentityKind::Node, "relay", registered.key)?;
        ensure!(registered.id == id.to_string(), "id {}", registered.id);
        eprintln!(
            "registered {} as {} in {:?}",
            node.name(),
            registered.id,
            t.elapsed()
        );
        keys.push(registered.key);
    }
    // Registering again is refused by the chain, by name.
    {
        let rpc = NodeRpc::connect(&bob.url()).await?;
        match overlay::register_node(&chain, &rpc, &payer, "peerstream", "relay", print).await {
            Err(e) if e.identity_error() == Some(psp_client::IdentityError::AlreadyRegistered) => {}
            other => bail!("expected AlreadyRegistered, got {other:?}"),
        }
    }

    // Relays check their own finalized state: wait until every relay lists all three.
    let want: BTreeSet<String> = keys.iter().map(|k| hex0x(k)).collect();
    for node in [alice, bob, charlie] {
        let c = Chain::connect(&node.url()).await?;
        wait_for_node_list(
            &c,
            &want,
            &format!("{} seeing the 3 registrations finalized", node.name()),
            PROPAGATION_TIMEOUT,
        )
        .await?;
    }

    let registered = overlay::registered_nodes(&chain).await?;
    ensure!(
        registered.len() == 3,
        "{} registered nodes",
        registered.len()
    );
    let mut rng = rand::thread_rng();
    ensure!(
        matches!(
            overlay::select_path(&registered, vec![], 4, &mut rng),
            Err(Error::NotEnoughNodes {
                hops: 4,
                registered: 3,
                ..
            })
        ),
        "4 hops over 3 nodes must be refused"
    );
    let client = OverlayClient::new(client_options())?;

    let before = alice.scrape().await?;
    let names = before.names();
    let missing: Vec<&&str> = OVERLAY_METRICS
        .iter()
        .filter(|n| !names.contains(**n))
        .collect();
    ensure!(
        missing.is_empty(),
        "alice's /metrics lacks {missing:?} (it has {} psp_overlay_* series)",
        names
            .iter()
            .filter(|n| n.starts_with("psp_overlay_"))
            .count()
    );

    // 3 hops through Alice, Bob, Charlie: 1 MiB echoed, every byte checked.
    let via = keys.iter().map(|k| Hop::Registered(*k)).collect();
    let path = overlay::select_path(&registered, via, 3, &mut rng)?;
    let built = client.build(&path, Some(&chain)).await?;
    ensure!(
        built.circuit.path().iter().map(|n| n.0).collect::<Vec<_>>() == keys,
        "circuit path differs from the chosen one"
    );
    eprintln!(
        "3-hop circuit alice -> bob -> charlie built in {:?}",
        built.build_time
    );
    let report = overlay::echo(&built.circuit, MIB, client.options().idle_timeout).await?;
    ensure!(report.bytes == MIB, "echoed {} bytes", report.bytes);
    eprintln!(
        "1 MiB echoed over 3 hops in {:.2} s ({:.0} KiB/s each way, {} cells, stream opened in {:?})",
        report.elapsed.as_secs_f64(),
        report.throughput() / 1024.0,
        report.cells,
        report.open_time
    );
    built
        .circuit
        .destroy()
        .await
        .context("destroying the circuit")?;
    entry_metrics_moved(alice, &before, MIB).await?;

    // A random path over the registered nodes works too.
    let path = overlay::select_path(&registered, vec![], 3, &mut rng)?;
    let distinct: BTreeSet<[u8; 32]> = path.iter().map(RelayNode::key).collect();
    ensure!(distinct.len() == 3, "random path repeats a node");
    let built = client.build(&path, Some(&chain)).await?;
    let report = overlay::echo(&built.circuit, 8 * 1024, client.options().idle_timeout).await?;
    eprintln!(
        "random path {} built in {:?}, 8 KiB echoed in {:?}",
        overlay::describe(&path),
        built.build_time,
        report.elapsed
    );
    built
        .circuit
        .destroy()
        .await
        .context("destroying the circuit")?;

    tampered_cell_kills_the_circuit(&client, &registered, &keys, alice, bob).await?;

    // Dave is not registered: Alice refuses to extend to him.
    let dave_info = NodeRpc::connect(&dave.url()).await?.overlay_info().await?;
    ensure!(
        !want.contains(&dave_info.node_id),
        "dave must not be registered"
    );
    let dave_hop = Hop::from_node_url(&dave.url()).await?;
    let path = overlay::select_path(
        &registered,
        vec![Hop::Registered(keys[0]), dave_hop, Hop::Registered(keys[1])],
        3,
        &mut rng,
    )?;
    let t = Instant::now();
    let err = match client.build(&path, Some(&chain)).await {
        Ok(built) => {
            let _ = built.circuit.destroy().await;
            bail!("a circuit through unregistered dave was built");
        }
        Err(e) => e,
    };
    eprintln!("refused as expected after {:?}: {err}", t.elapsed());
    match &err {
        Error::ExtendRefused {
            hop,
            by,
            target,
            reason,
        } => {
            ensure!(*hop == 1, "refusing hop {hop}");
            ensure!(*by == path[0].id, "refusing node {by}");
            ensure!(target.contains(&dave_info.node_id), "refused node {target}");
            ensure!(
                reason.contains("not registered on chain"),
                "reason {reason}"
            );
        }
        other => bail!("expected ExtendRefused, got {other}"),
    }
    let text = err.to_string();
    ensure!(
        text.contains("refused") && text.contains(&dave_info.node_id),
        "the message must name the refusal and dave: {text}"
    );
    // Alice's relay logged why (target psp-overlay, warn): NotRegistered(dave).
    let dave_short = format!("NodeId({}..)", &dave_info.node_id[2..10]);
    let line = wait_for(
        "alice logging the refusal",
        Duration::from_secs(15),
        || async {
            let lines =
                alice.log_lines_with(&["psp-overlay", "refused:", "NotRegistered", &dave_short]);
            match lines.into_iter().next() {
                Some(l) => Ok(Some(l)),
                None => Err("no `refused:` line naming dave yet".into()),
            }
        },
    )
    .await?;
    ensure!(line.contains("WARN"), "refusal logged below warn: {line}");
    eprintln!("alice's log: {line}");

    // The relays keep serving after a refusal.
    let path = overlay::select_path(
        &registered,
        vec![Hop::Registered(keys[1]), Hop::Registered(keys[2])],
        2,
        &mut rng,
    )?;
    let built = client.build(&path, Some(&chain)).await?;
    overlay::echo(&built.circuit, 1024, client.options().idle_timeout).await?;
    built
        .circuit
        .destroy()
        .await
        .context("destroying the circuit")?;
    client.shutdown().await;
    refusals_counted(alice, charlie).await?;

    cli_registers_dave_and_routes_through_him(alice, dave, &dave_info.node_id, &want).await
}

/// Waits until Alice's metrics show the circuit she was the entry of, which carried `bytes`
/// each way: circuits created and closed rose, and her link frames and bytes in and out by at
/// least `bytes` (the echo crosses her links twice each way).
async fn entry_metrics_moved(alice: &PspNode, before: &Scrape, bytes: usize) -> Result<()> {
    let bytes = bytes as f64;
    // A cell is 512 bytes and carries less than that of the echo.
    let frames = bytes / 512.0;
    let rises = [
        ("psp_overlay_circuits_created_total", 1.0),
        ("psp_overlay_circuits_closed_total", 1.0),
        ("psp_overlay_link_frames_in_total", frames),
        ("psp_overlay_link_frames_out_total", frames),
        ("psp_overlay_link_bytes_in_total", bytes),
        ("psp_overlay_link_bytes_out_total", bytes),
    ];
    let value = |s: &Scrape, name: &str| s.total(name).unwrap_or(0.0);
    let after = wait_for(
        "alice's metrics showing the 1 MiB circuit",
        METRICS_TIMEOUT,
        || async {
            let now = alice.scrape().await.map_err(|e| format!("{e:#}"))?;
            let short: Vec<String> = rises
                .iter()
                .filter(|(name, by)| value(&now, name) < value(before, name) + by)
                .map(|(name, by)| {
                    format!(
                        "{name} {} -> {} (want +{by})",
                        value(before, name),
                        value(&now, name)
                    )
                })
                .collect();
            if short.is_empty() {
                Ok(Some(now))
            } else {
                Err(short.join(", "))
            }
        },
    )
    .await?;
    let delta = |name: &str| value(&after, name) - value(before, name);
    eprintln!(
        "alice's /metrics once they showed the 1 MiB circuit (refreshed each second): +{} created, +{} closed, +{} frames / +{} bytes in, +{} frames / +{} bytes out",
        delta("psp_overlay_circuits_created_total"),
        delta("psp_overlay_circuits_closed_total"),
        delta("psp_overlay_link_frames_in_total"),
        delta("psp_overlay_link_bytes_in_total"),
        delta("psp_overlay_link_frames_out_total"),
        delta("psp_overlay_link_bytes_out_total"),
    );
    Ok(())
}

/// Alice counted the circuit she closed for the tampered cell and the EXTEND to Dave she
/// refused (both are counted before they are logged, and the test saw the log lines);
/// Charlie, the exit, counted the echo streams opened to him.
async fn refusals_counted(alice: &PspNode, charlie: &PspNode) -> Result<()> {
    let metrics = alice.scrape().await?;
    let integrity = metrics
        .with_labels(
            "psp_overlay_circuits_closed_total",
            &[("reason", "integrity")],
        )
        .unwrap_or(0.0);
    ensure!(
        integrity >= 1.0,
        "alice counted {integrity} integrity closes"
    );
    let refused = metrics
        .with_labels(
            "psp_overlay_extends_refused_total",
            &[("reason", "not_registered")],
        )
        .unwrap_or(0.0);
    ensure!(
        refused >= 1.0,
        "alice counted {refused} EXTENDs refused as not_registered"
    );
    let echo = charlie
        .scrape()
        .await?
        .with_labels(
            "psp_overlay_streams_opened_total",
            &[("service", overlay::ECHO_SERVICE)],
        )
        .unwrap_or(0.0);
    ensure!(echo >= 1.0, "charlie counted {echo} echo streams");
    eprintln!(
        "alice's /metrics: {integrity} integrity closes, {refused} EXTENDs refused as \
         not_registered; charlie's: {echo} echo streams opened"
    );
    Ok(())
}

/// One bit of one RELAY cell flipped by the client (test-only hook, after encryption): the
/// entry relay (Alice) detects it and destroys the circuit both ways with `Integrity`.
async fn tampered_cell_kills_the_circuit(
    client: &OverlayClient,
    registered: &[RelayNode],
    keys: &[[u8; 32]],
    alice: &PspNode,
    bob: &PspNode,
) -> Result<()> {
    let mut rng = rand::thread_rng();
    let via = keys.iter().map(|k| Hop::Registered(*k)).collect();
    let path = overlay::select_path(registered, via, 3, &mut rng)?;
    let built = client.build(&path, None).await?;
    let circuit = &built.circuit;
    let mut stream = circuit
        .open_stream(overlay::ECHO_SERVICE)
        .await
        .context("opening the echo stream")?;
    stream.send(b"before").await.context("sending before")?;
    let reply = tokio::time::timeout(Duration::from_secs(15), stream.recv()).await;
    ensure!(
        matches!(&reply, Ok(Some(r)) if r == b"before"),
        "echo before tampering: {reply:?}"
    );

    circuit
        .tamper_next_cell_for_tests()
        .await
        .context("arming the tamper hook")?;
    let t = Instant::now();
    // The cell leaves while the circuit is still open, so this send itself succeeds.
    stream
        .send(b"tampered")
        .await
        .context("sending the tampered cell")?;
    let closed = tokio::time::timeout(Duration::from_secs(15), circuit.closed())
        .await
        .context("the circuit was not closed within 15 s of the tampered cell")?;
    eprintln!(
        "tampered cell: circuit closed after {:?}: {closed}",
        t.elapsed()
    );
    ensure!(
        closed.reason == DestroyReason::Integrity,
        "closed with {:?}, expected Integrity",
        closed.reason
    );
    ensure!(
        closed.cause.is_none(),
        "the client closed it itself ({:?}); a relay should have",
        closed.cause
    );
    let next = tokio::time::timeout(Duration::from_secs(5), stream.recv()).await;
    ensure!(
        matches!(next, Ok(None)),
        "the stream must end with the circuit, got {next:?}"
    );
    match stream.send(b"after").await {
        Err(DriverError::CircuitClosed(c)) if c == closed => {}
        other => bail!("a send after the close must fail with the close, got {other:?}"),
    }

    // The entry relay logged the close with its local cause (debug level, target psp-overlay);
    // the middle relay only received the DESTROY.
    let detected = [
        "psp-overlay",
        "CircuitClosed",
        "reason: Integrity",
        "cause: Some(Integrity",
    ];
    let line = wait_for(
        "alice logging the integrity close",
        Duration::from_secs(15),
        || async {
            match alice.log_lines_with(&detected).into_iter().next() {
                Some(l) => Ok(Some(l)),
                None => Err("no CircuitClosed / Integrity line yet".into()),
            }
        },
    )
    .await?;
    ensure!(line.contains("peer: Client("), "closed towards {line}");
    eprintln!("alice's log: {line}");
    let told = [
        "psp-overlay",
        "CircuitClosed",
        "reason: Integrity",
        "cause: None",
    ];
    let line = wait_for(
        "bob logging the DESTROY he received",
        Duration::from_secs(15),
        || async {
            match bob.log_lines_with(&told).into_iter().next() {
                Some(l) => Ok(Some(l)),
                None => Err("no CircuitClosed / Integrity line yet".into()),
            }
        },
    )
    .await?;
    eprintln!("bob's log: {line}");
    ensure!(
        bob.log_lines_with(&detected).is_empty(),
        "bob must not have detected the modification himself"
    );
    drop(stream);
    built.circuit.destroy().await.ok();

    // A fresh circuit through the same relays works.
    let path = overlay::select_path(
        registered,
        keys.iter().map(|k| Hop::Registered(*k)).collect(),
        3,
        &mut rng,
    )?;
    let built = client.build(&path, None).await?;
    let report = overlay::echo(&built.circuit, 64 * 1024, client.options().idle_timeout).await?;
    eprintln!(
        "fresh circuit alice -> bob -> charlie after the tampering: 64 KiB echoed in {:?}",
        report.elapsed
    );
    built
        .circuit
        .destroy()
        .await
        .context("destroying the circuit")?;
    Ok(())
}

/// The `psp` CLI: `identity register-node` registers Dave, after which `circuit echo` routes
/// through him; `circuit build` names a shortfall of nodes.
async fn cli_registers_dave_and_routes_through_him(
    alice: &PspNode,
    dave: &PspNode,
    dave_id: &str,
    relays: &BTreeSet<String>,
) -> Result<()> {
    let url = alice.url();
    let dave_url = dave.url();
    let cli_timeout = Duration::from_secs(180);
    let run = run_psp(
        &[
            "identity",
            "register-node",
            "--node-url",
            &dave_url,
            "--payer",
            "//Bob",
            "--url",
            &url,
        ],
        cli_timeout,
    )
    .await?;
    ensure!(run.code == Some(0), "register-node failed: {}", run.stderr);
    let key = psp_client::parse_hex::<32>(dave_id, "dave's node id")?;
    let id = IdString::new("peerstream", IdentityKind::Node, "relay", key)?.to_string();
    ensure!(
        run.stdout.trim() == id,
        "register-node printed {:?}",
        run.stdout
    );
    ensure!(
        run.stderr.contains("finalized in block"),
        "no finality report: {}",
        run.stderr
    );
    eprintln!("psp identity register-node: {}", run.stdout.trim());

    let mut all = relays.clone();
    all.insert(dave_id.to_string());
    let chain = Chain::connect(&url).await?;
    wait_for_node_list(
        &chain,
        &all,
        "alice seeing dave's registration finalized",
        PROPAGATION_TIMEOUT,
    )
    .await?;

    let alice_key = NodeRpc::connect(&url).await?.overlay_info().await?.node_id;
    let run = run_psp(
        &[
            "circuit", "echo", "--hops", "3", "--via", &alice_key, "--via", &id, "--bytes",
            "100000", "--rate", "1000", "--url", &url,
        ],
        cli_timeout,
    )
    .await?;
    ensure!(run.code == Some(0), "circuit echo failed: {}", run.stderr);
    ensure!(
        run.stdout.contains("echoed 100000 bytes") && run.stdout.contains("every byte checked"),
        "{}",
        run.stdout
    );
    ensure!(
        run.stdout.contains("1. peerstream.node.relay.")
            && run.stdout.contains(&format!("2. {id}"))
            && run.stdout.contains("built in"),
        "path not printed as chosen: {}",
        run.stdout
    );
    eprintln!("psp circuit echo:\n{}", run.stdout.trim_end());

    let run = run_psp(
        &["circuit", "build", "--hops", "4", "--url", &url],
        cli_timeout,
    )
    .await?;
    ensure!(run.code == Some(0), "circuit build failed: {}", run.stderr);
    ensure!(run.stdout.contains("path (4 hops)"), "{}", run.stdout);
    eprintln!("psp circuit build:\n{}", run.stdout.trim_end());

    let run = run_psp(
        &["circuit", "build", "--hops", "5", "--url", &url],
        cli_timeout,
    )
    .await?;
    ensure!(run.code == Some(1), "5 hops over 4 nodes: {run:?}");
    ensure!(
        run.stderr.contains("needs 5 distinct nodes but only 4"),
        "{}",
        run.stderr
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn onion_circuits_through_registered_nodes() -> Result<()> {
    let started = Instant::now();
    let overlay = OverlayOptions {
        seed: None,
        circuit_rate: Some(5_000),
        circuit_burst: Some(5_000),
        // Circuit closes (the tampered cell) are logged at debug only.
        debug_log: true,
        directory_timing: None,
        observe: false,
    };
    let nodes = start_local_network_with(
        &["alice", "bob", "charlie", "dave"],
        Some(overlay),
        |options| options.prometheus = true,
    )
    .await?;
    eprintln!("four nodes answering RPC after {:?}", started.elapsed());
    run_scenario(&nodes, TEST_TIMEOUT, scenario(&nodes)).await?;
    eprintln!("onion scenario passed after {:?}", started.elapsed());

    // A fault: the middle relay of a live circuit is killed.
    let mut live = None;
    run_scenario(&nodes, TEST_TIMEOUT, async {
        live = Some(circuit_through_dave(&nodes).await?);
        Ok(())
    })
    .await?;
    let live = live.context("no circuit through dave")?;
    nodes[3].stop();
    let killed = Instant::now();
    run_scenario(&nodes, TEST_TIMEOUT, after_dave_died(live, killed)).await
}

/// A circuit alice -> dave -> charlie (Dave was registered by the CLI step), with an echo
/// stream that has carried one message.
struct LiveCircuit {
    client: OverlayClient,
    built: overlay::BuiltCircuit,
    stream: psp_client::psp_net::driver::CircuitStream,
    registered: Vec<RelayNode>,
    alice: [u8; 32],
    bob: [u8; 32],
    charlie: [u8; 32],
}

async fn circuit_through_dave(nodes: &[PspNode]) -> Result<LiveCircuit> {
    let mut keys = Vec::new();
    for node in nodes {
        let info = NodeRpc::connect(&node.url()).await?.overlay_info().await?;
        keys.push(psp_client::parse_hex::<32>(&info.node_id, "node id")?);
    }
    let chain = Chain::connect(&nodes[0].url()).await?;
    let registered = overlay::registered_nodes(&chain).await?;
    let client = OverlayClient::new(client_options())?;
    let via = [keys[0], keys[3], keys[2]].map(Hop::Registered).to_vec();
    let path = overlay::select_path(&registered, via, 3, &mut rand::thread_rng())?;
    let built = client.build(&path, None).await?;
    let mut stream = built
        .circuit
        .open_stream(overlay::ECHO_SERVICE)
        .await
        .context("opening the echo stream through dave")?;
    stream.send(b"through dave").await?;
    let reply = tokio::time::timeout(Duration::from_secs(15), stream.recv()).await;
    ensure!(
        matches!(&reply, Ok(Some(r)) if r == b"through dave"),
        "echo through dave: {reply:?}"
    );
    Ok(LiveCircuit {
        client,
        built,
        stream,
        registered,
        alice: keys[0],
        bob: keys[1],
        charlie: keys[2],
    })
}

/// The client learns of the dead relay within seconds, and a new circuit carries the next
/// message.
async fn after_dave_died(live: LiveCircuit, killed: Instant) -> Result<()> {
    let LiveCircuit {
        client,
        built,
        stream,
        registered,
        alice,
        bob,
        charlie,
    } = live;
    let closed = tokio::time::timeout(RELAY_DEATH_NOTICE, built.circuit.closed())
        .await
        .context("the client was not told of the dead middle relay")?;
    eprintln!(
        "dave killed: the client was told after {:?}: {closed}",
        killed.elapsed()
    );
    ensure!(
        stream.send(b"after").await.is_err(),
        "a send on the dead circuit must fail"
    );
    let via = [alice, bob, charlie].map(Hop::Registered).to_vec();
    let path = overlay::select_path(&registered, via, 3, &mut rand::thread_rng())?;
    let fresh = client.build(&path, None).await?;
    let report = overlay::echo(&fresh.circuit, 1024, client.options().idle_timeout).await?;
    ensure!(report.bytes == 1024, "echoed {} bytes", report.bytes);
    eprintln!(
        "a new circuit alice -> bob -> charlie carried the next message ({:?} after the kill)",
        killed.elapsed()
    );
    fresh.circuit.destroy().await.ok();
    Ok(())
}
