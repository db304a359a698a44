//! End to end: private messaging between identities through real `psp-node`s, driven by the
//! `psp` CLI only (issue 12, point 8).
//!
//! Six overlay nodes on `--chain local` (Alice, Bob and Charlie, the genesis authorities; Dave,
//! a validator; Eve and Ferdie, plain nodes) have their node identities registered on chain
//! (`psp identity register-node`, each paid by its own account, in parallel). Dave's account
//! registers session keys, bonds and stands as an authority (`psp stake ...`), so Dave's node
//! is elected and issues access certificates. Three client identities (Bob, Alice, Carol) are
//! registered (`psp identity register`) and each runs `psp messaging agent` as a child process
//! (one JSON event per line on stdout, which the test reads). Then:
//! - Bob announces anonymously at two presence points (two `point-registered` events), and
//!   Alice's `lookup` finds both records, each checked by her agent;
//! - Alice `send`s Bob a text: Bob's `requests` lists Alice's identity, Bob `accept`s, the send
//!   completes; Alice then sends a 70 000-byte file on the same channel, and Bob sends a text
//!   back: every message arrives byte-exact in the other's `inbox`;
//! - Bob's cap is one channel per point: after Alice's channel the presence node tells him
//!   (`cap-reached`) and his agent adds a point;
//! - a request past the cap: Carol's send through the capped point only (`--presence-node`)
//!   is refused there and says the cap is reached;
//! - Carol's send reaches Bob as a request, Bob `decline`s it, and Carol's send fails saying
//!   Bob declined;
//! - what each node learned, from the file every node writes (`--overlay-observe-file`: the
//!   clients linked to it, the bytes its services received, its link traffic): no node saw
//!   both a client's address and its identity, no presence service learned an introducer, no
//!   rendezvous service learned any identity, every link frame was one 512-byte cell;
//! - contacts: Alice and Bob exchange signed offers (`psp contact offer`, `psp contact add`,
//!   which checks each against the chain); Bob's agent restarts with `--contacts-only`: Carol's
//!   request is declined at his agent (never listed), Alice's is accepted and her text arrives;
//! - Bob's agent (records of 30 s, `--record-lifetime`) is killed: once the records lapse,
//!   Alice's lookups find no point of his;
//! - Bob's identity is revoked on chain: Alice's lookups of Bob are refused, and a new agent of
//!   Bob's gets no certificate, so no presence.

use anyhow::{bail, ensure, Context, Result};
use psp_e2e_tests::agent::{
    prepare, request_from, start_messaging_nodes, AgentProc, AGENT_TIMEOUT, FAST_AGENT,
};
use psp_e2e_tests::{
    psp_ok, psp_refuses_now, run_psp, run_scenario, wait_for, PspNode, PSP_TIMEOUT,
};
use serde_json::Value;
use std::time::{Duration, Instant};

/// The whole scenario after startup.
const TEST_TIMEOUT: Duration = Duration::from_secs(480);
/// Lifetime of Bob's presence records (renewed at half of it).
const RECORD_LIFETIME: Duration = Duration::from_secs(30);
/// The file Alice sends: over 64 KiB.
const FILE_LEN: usize = 70_000;

async fn scenario(nodes: &[PspNode]) -> Result<()> {
    let dir = tempfile::tempdir()?;
    let prepared = prepare(nodes, dir.path(), &["bob", "alice", "carol"]).await?;
    let (url, dave_url) = (prepared.url.clone(), prepared.dave_url.clone());
    let [bob_c, alice_c, carol_c] = &prepared.clients[..] else {
        bail!("three clients");
    };

    // The agents: Bob announces at two points; Alice and Carol only reach out.
    let lifetime = RECORD_LIFETIME.as_secs().to_string();
    let mut bob_a = AgentProc::spawn(
        "bob",
        bob_c,
        &url,
        &dave_url,
        2,
        &[
            &FAST_AGENT[..],
            &["--record-lifetime", &lifetime, "--cap", "1"],
        ]
        .concat(),
    )?;
    let (alice_url, carol_url) = (nodes[1].url(), nodes[2].url());
    let alice_a = AgentProc::spawn("alice", alice_c, &alice_url, &dave_url, 0, &FAST_AGENT)?;
    let mut carol_a = AgentProc::spawn("carol", carol_c, &carol_url, &dave_url, 0, &FAST_AGENT)?;
    let t = Instant::now();
    let points = bob_a
        .wait_events("two presence points registered", AGENT_TIMEOUT, |events| {
            let mut slots: Vec<(u64, String)> = events
                .iter()
                .filter(|e| e["event"] == "point-registered")
                .filter_map(|e| Some((e["slot"].as_u64()?, e["node"].as_str()?.to_owned())))
                .collect();
            slots.sort();
            slots.dedup_by_key(|(slot, _)| *slot);
            (slots.len() >= 2).then_some(slots)
        })
        .await?;
    ensure!(
        points[0].1 != points[1].1,
        "both points at one node: {points:?}"
    );
    eprintln!("bob present at {points:?} after {:?}", t.elapsed());
    for agent in [&alice_a, &carol_a] {
        agent
            .wait_events("the agent started", AGENT_TIMEOUT, |events| {
                events.iter().find(|e| e["event"] == "started").cloned()
            })
            .await?;
    }

    // Alice finds both of Bob's points (records checked by her agent).
    let found = wait_for("alice finding bob's two points", AGENT_TIMEOUT, || async {
        let args = [
            "messaging",
            "lookup",
            &bob_c.id,
            "--socket",
            &alice_a.socket,
        ];
        let run = run_psp(&args, PSP_TIMEOUT)
            .await
            .map_err(|e| e.to_string())?;
        let reply: Value = serde_json::from_str(&run.stdout)
            .map_err(|_| format!("exit {:?}: {}", run.code, run.stderr.trim()))?;
        let nodes: Vec<String> = reply["presences"]
            .as_array()
            .map(|p| {
                p.iter()
                    .filter_map(|p| p["presenceNode"].as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default();
        if nodes.len() >= 2 {
            Ok(Some(reply))
        } else {
            Err(format!("lookup found {nodes:?}"))
        }
    })
    .await?;
    eprintln!("alice's lookup of bob: {found}");

    // Alice -> Bob: a request, accepted; the send completes once the channel is open.
    let hello = "hello Bob, from Alice";
    let send = alice_a.send_args(&bob_c.id, "--text", hello);
    let sending = tokio::spawn(async move {
        let refs: Vec<&str> = send.iter().map(String::as_str).collect();
        run_psp(&refs, PSP_TIMEOUT).await
    });
    let request = request_from(&bob_a, &alice_c.key).await?;
    let requests = bob_a.call(&["requests"]).await?;
    ensure!(
        requests["requests"]
            .as_array()
            .is_some_and(|r| r.iter().any(|r| r["from"] == alice_c.key.as_str())),
        "bob's requests do not show alice: {requests}"
    );
    let accepted = bob_a.call(&["accept", &request.to_string()]).await?;
    ensure!(
        accepted["peer"] == alice_c.key.as_str(),
        "accepted: {accepted}"
    );
    let sent = sending.await??;
    ensure!(
        sent.code == Some(0),
        "alice's send failed: {}\n{}",
        sent.stderr,
        alice_a.tail()
    );
    eprintln!(
        "bob accepted alice ({accepted}); alice's send: {}",
        sent.stdout.trim()
    );
    // One channel is Bob's cap per point: the presence node tells him, and he adds a point.
    let cap = bob_a
        .wait_events("bob told his cap is reached", AGENT_TIMEOUT, |events| {
            events.iter().find(|e| e["event"] == "cap-reached").cloned()
        })
        .await?;
    eprintln!("bob notified: {cap}");

    // The file, on the same channel.
    let file: Vec<u8> = (0..FILE_LEN as u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let file_path = dir.path().join("file.bin");
    std::fs::write(&file_path, &file)?;
    let t = Instant::now();
    alice_a
        .call(&[
            "send",
            &bob_c.id,
            "--file",
            &file_path.display().to_string(),
        ])
        .await?;
    let got = bob_a.inbox(2).await?;
    ensure!(got.len() == 2, "bob's inbox: {} messages", got.len());
    ensure!(
        got[0]["text"] == hello && got[0]["from"] == alice_c.key.as_str(),
        "bob's first message: {}",
        got[0]
    );
    let bytes = got[1]["hex"]
        .as_str()
        .and_then(|h| psp_client::parse_hex_vec(h, "file").ok())
        .context("the file's hex")?;
    ensure!(
        bytes == file,
        "bob got {} bytes, not the {FILE_LEN} sent byte-exact",
        bytes.len()
    );
    eprintln!(
        "bob received the {FILE_LEN}-byte file byte-exact in {:?}",
        t.elapsed()
    );

    // Bob -> Alice on the open channel.
    let back = "hello Alice, from Bob";
    bob_a.call(&["send", &alice_c.id, "--text", back]).await?;
    let got = alice_a.inbox(1).await?;
    ensure!(
        got[0]["text"] == back && got[0]["from"] == bob_c.key.as_str(),
        "alice's inbox: {}",
        got[0]
    );
    eprintln!("alice received bob's answer");

    // A request past the cap: Carol's send through the capped point only is refused there,
    // and says so.
    let capped = cap["node"].as_str().context("the capped point's node")?;
    let send = carol_a.send_args(&bob_c.id, "--text", "hello Bob, from Carol");
    let send: Vec<&str> = send
        .iter()
        .map(String::as_str)
        .chain(["--presence-node", capped])
        .collect();
    let refused = run_psp(&send, PSP_TIMEOUT).await?;
    ensure!(
        refused.code == Some(1) && refused.stderr.contains("cap"),
        "carol's send through the capped point should be refused at the cap: exit {:?}: {}\n{}",
        refused.code,
        refused.stderr,
        carol_a.tail()
    );
    eprintln!("past the cap: {}", refused.stderr.trim());

    // Carol is declined, and told.
    let send = carol_a.send_args(&bob_c.id, "--text", "hello Bob, from Carol");
    let sending = tokio::spawn(async move {
        let refs: Vec<&str> = send.iter().map(String::as_str).collect();
        run_psp(&refs, PSP_TIMEOUT).await
    });
    let request = request_from(&bob_a, &carol_c.key).await?;
    bob_a.call(&["decline", &request.to_string()]).await?;
    let refused = sending.await??;
    ensure!(
        refused.code == Some(1) && refused.stderr.contains("declined"),
        "carol's send should fail as declined: exit {:?}: {}\n{}",
        refused.code,
        refused.stderr,
        carol_a.tail()
    );
    eprintln!("carol was told: {}", refused.stderr.trim());
    carol_a.stop()?;

    // What each node learned, from the files the nodes wrote.
    let people = [
        ("alice", alice_c, &alice_a),
        ("bob", bob_c, &bob_a),
        ("carol", carol_c, &carol_a),
    ]
    .map(|(name, client, agent)| (name, client.key.clone(), agent.link_peer()));
    what_each_node_learned(nodes, &people)?;

    // Contacts: Alice and Bob exchange signed offers, each checked against the chain by
    // `psp contact add`; Bob's agent restarts in contact-only mode: Carol, a stranger, is
    // declined at his agent, Alice still reaches him.
    let books = [dir.path().join("alice.book"), dir.path().join("bob.book")];
    let books: Vec<String> = books.iter().map(|b| b.display().to_string()).collect();
    for ((from, from_name), (book, _)) in [
        ((bob_c, "bob"), (&books[0], "alice")),
        ((alice_c, "alice"), (&books[1], "bob")),
    ] {
        let offer = run_psp(
            &[
                "contact",
                "offer",
                "--keystore",
                &from.keystore,
                "--passphrase-file",
                &from.pass,
            ],
            PSP_TIMEOUT,
        )
        .await?;
        ensure!(
            offer.code == Some(0) && offer.stdout.contains("BEGIN PSP CONTACT OFFER"),
            "{from_name}'s offer: {}",
            offer.stderr
        );
        let offer_path = dir.path().join(format!("{from_name}.offer"));
        std::fs::write(&offer_path, &offer.stdout)?;
        let offer_path = offer_path.display().to_string();
        psp_ok(&[
            "contact",
            "add",
            "--book",
            book,
            "--name",
            from_name,
            "--url",
            &url,
            &offer_path,
        ])
        .await?;
    }
    bob_a.stop()?;
    alice_a
        .wait_events("alice's channel to bob closing", AGENT_TIMEOUT, |events| {
            events
                .iter()
                .find(|e| e["event"] == "channel-closed")
                .cloned()
        })
        .await?;
    let mut bob_a = AgentProc::spawn(
        "bob (contacts only)",
        bob_c,
        &url,
        &dave_url,
        1,
        &[
            &FAST_AGENT[..],
            &[
                "--record-lifetime",
                &lifetime,
                "--contacts-only",
                "--book",
                &books[1],
            ],
        ]
        .concat(),
    )?;
    bob_a
        .wait_events("bob's point registered again", AGENT_TIMEOUT, |events| {
            events
                .iter()
                .find(|e| e["event"] == "point-registered")
                .cloned()
        })
        .await?;
    let carol_again = AgentProc::spawn("carol", carol_c, &carol_url, &dave_url, 0, &FAST_AGENT)?;
    carol_again
        .wait_events("carol's agent started again", AGENT_TIMEOUT, |events| {
            events.iter().find(|e| e["event"] == "started").cloned()
        })
        .await?;
    let send = carol_again.send_args(&bob_c.id, "--text", "hello again, from Carol");
    let refused = run_psp(
        &send.iter().map(String::as_str).collect::<Vec<_>>(),
        PSP_TIMEOUT,
    )
    .await?;
    ensure!(
        refused.code == Some(1) && refused.stderr.contains("declined"),
        "carol's send to contact-only bob should be declined: exit {:?}: {}\n{}",
        refused.code,
        refused.stderr,
        bob_a.tail()
    );
    bob_a
        .wait_events(
            "bob's agent declining a stranger",
            AGENT_TIMEOUT,
            |events| {
                events
                    .iter()
                    .find(|e| {
                        e["event"] == "introduction-declined-not-a-contact"
                            && e["from"] == carol_c.key.as_str()
                    })
                    .cloned()
            },
        )
        .await?;
    let requests = bob_a.call(&["requests"]).await?;
    ensure!(
        requests["requests"]
            .as_array()
            .is_some_and(|r| r.is_empty()),
        "a stranger's request was listed: {requests}"
    );
    let hello = "hello again, Bob";
    let send = alice_a.send_args(&bob_c.id, "--text", hello);
    let sending = tokio::spawn(async move {
        let refs: Vec<&str> = send.iter().map(String::as_str).collect();
        run_psp(&refs, PSP_TIMEOUT).await
    });
    let request = request_from(&bob_a, &alice_c.key).await?;
    bob_a.call(&["accept", &request.to_string()]).await?;
    let sent = sending.await??;
    ensure!(sent.code == Some(0), "alice's send: {}", sent.stderr);
    let got = bob_a.inbox(1).await?;
    ensure!(
        got[0]["text"] == hello && got[0]["from"] == alice_c.key.as_str(),
        "bob's inbox: {}",
        got[0]
    );
    eprintln!("contacts: offers exchanged, carol declined at bob's agent, alice reached him");
    drop(carol_again);

    // Bob's agent stops: once his records lapse, Alice's lookups find no point of his.
    bob_a.stop()?;
    let t = Instant::now();
    wait_for(
        "bob's records lapsing",
        RECORD_LIFETIME + AGENT_TIMEOUT,
        || async {
            let reply = alice_a
                .call(&["lookup", &bob_c.id])
                .await
                .map_err(|e| format!("{e:#}"))?;
            match reply["presences"].as_array() {
                Some(p) if p.is_empty() => Ok(Some(())),
                _ => Err(format!("lookup: {reply}")),
            }
        },
    )
    .await?;
    eprintln!(
        "bob's records lapsed {:?} after his agent stopped",
        t.elapsed()
    );

    // Bob's identity revoked (by the account that registered it): Alice's lookups of Bob are refused, and so
    // is a new agent of Bob's (no certificate, so no presence).
    psp_ok(&[
        "identity",
        "revoke",
        "--keystore",
        &bob_c.keystore,
        "--payer",
        bob_c.payer,
        "--url",
        &url,
    ])
    .await?;
    let lookup = [
        "messaging",
        "lookup",
        bob_c.id.as_str(),
        "--socket",
        alice_a.socket.as_str(),
    ];
    wait_for("alice's lookup of bob refused", PSP_TIMEOUT, || {
        psp_refuses_now(&lookup, "revoked")
    })
    .await?;
    eprintln!("bob revoked: alice's lookups are refused");
    let again = AgentProc::spawn("bob (revoked)", bob_c, &url, &dave_url, 2, &FAST_AGENT)?;
    again
        .wait_events("bob's new agent stopping", AGENT_TIMEOUT, |_| None::<()>)
        .await
        .err()
        .filter(|e| format!("{e:#}").contains("stopped") && again.tail().contains("revoked"))
        .with_context(|| format!("bob's new agent was not refused:\n{}", again.tail()))?;
    eprintln!("bob's new agent refused: {}", again.tail());
    Ok(())
}

/// Every node's observations (`--overlay-observe-file`) against point 7 of issue 12: no node
/// saw both a client's address (its link) and that client's identity (registered at its
/// presence service); no presence service received an introducer's identity; no rendezvous
/// service received any identity; every frame on every link was one 512-byte cell.
fn what_each_node_learned(
    nodes: &[PspNode],
    people: &[(&str, String, Result<String>)],
) -> Result<()> {
    let mut presence_nodes_of_bob = 0;
    let mut rendezvous_nodes = 0;
    for node in nodes {
        let seen = node.observed()?;
        let name = node.name();
        for (who, key, peer) in people {
            let peer = peer.as_ref().map_err(|e| anyhow::anyhow!("{who}: {e:#}"))?;
            ensure!(
                !(seen.saw_address(peer) && seen.saw_key(Some("presence"), key)),
                "node {name} saw both {who}'s address and {who}'s identity"
            );
            ensure!(
                !seen.saw_key(Some("rendezvous"), key),
                "node {name}'s rendezvous service learned {who}'s identity"
            );
            if *who != "bob" {
                ensure!(
                    !seen.saw_key(Some("presence"), key),
                    "node {name}'s presence service learned the introducer {who}"
                );
            } else if seen.saw_key(Some("presence"), key) {
                presence_nodes_of_bob += 1;
            }
        }
        if seen.served("rendezvous") {
            rendezvous_nodes += 1;
        }
        let [frames_in, bytes_in, frames_out, bytes_out] =
            seen.traffic.context("no link traffic line")?;
        ensure!(
            frames_in > 0 && bytes_in == frames_in * 512 && bytes_out == frames_out * 512,
            "node {name}: link traffic of {frames_in} frames / {bytes_in} B in, {frames_out} \
             frames / {bytes_out} B out is not whole 512-byte cells"
        );
    }
    // The checks can see: Bob's presence nodes did learn him, and rendezvous points ran.
    ensure!(
        presence_nodes_of_bob >= 2 && rendezvous_nodes >= 1,
        "{presence_nodes_of_bob} presence nodes knew bob, {rendezvous_nodes} rendezvous nodes"
    );
    eprintln!(
        "what each node learned: checked on {} nodes ({presence_nodes_of_bob} knew bob as \
         presence nodes, {rendezvous_nodes} ran rendezvous points)",
        nodes.len()
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_identities_message_through_six_real_nodes() -> Result<()> {
    let nodes = start_messaging_nodes(true).await?;
    run_scenario(&nodes, TEST_TIMEOUT, scenario(&nodes)).await
}
