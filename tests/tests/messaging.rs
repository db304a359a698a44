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
//! - Carol's send reaches Bob as a request, Bob `decline`s it, and Carol's send fails saying
//!   Bob declined;
//! - Bob's agent (records of 30 s, `--record-lifetime`) is killed: once the records lapse,
//!   Alice's lookups find no point of his;
//! - Bob's identity is revoked on chain: Alice's lookups of Bob are refused, and a new agent of
//!   Bob's gets no certificate, so no presence.

use anyhow::{bail, ensure, Context, Result};
use psp_client::{chain::Chain, psp_primitives::staking::Role};
use psp_e2e_tests::{
    psp_binary, psp_json, psp_ok, psp_refuses_now, run_psp, run_scenario, start_local_network,
    wait_finalized, wait_for, NodeOptions, OverlayOptions, PspNode, PSP_TIMEOUT,
};
use serde_json::Value;
use std::{
    path::Path,
    process::Stdio,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};
use tokio::io::{AsyncBufReadExt, BufReader};

/// The whole scenario after startup.
const TEST_TIMEOUT: Duration = Duration::from_secs(480);
/// Finality of the first blocks (needs all three authorities connected).
const FINALITY_TIMEOUT: Duration = Duration::from_secs(240);
/// Election at the next epoch boundary (10 blocks of 3 s), for the epoch after it.
const ELECTION_TIMEOUT: Duration = Duration::from_secs(150);
/// An agent's step: a presence point registered, an introduction arriving, a message.
const AGENT_TIMEOUT: Duration = Duration::from_secs(90);
/// Lifetime of Bob's presence records (renewed at half of it).
const RECORD_LIFETIME: Duration = Duration::from_secs(30);
/// The file Alice sends: over 64 KiB.
const FILE_LEN: usize = 70_000;

/// The relays' pace per circuit (cells a second, burst), and the agents' (within it).
const RELAY_RATE: u32 = 1_000;
const AGENT_RATE: &str = "200";

/// A `psp messaging agent` child process and the lines it printed.
struct AgentProc {
    name: &'static str,
    socket: String,
    /// Stdout lines (JSON events) and stderr lines (prefixed `stderr: `), in arrival order.
    lines: Arc<Mutex<Vec<String>>>,
    /// Set once stdout reached its end (the agent stopped).
    ended: Arc<Mutex<bool>>,
    child: tokio::process::Child,
}

impl AgentProc {
    fn spawn(
        name: &'static str,
        client: &Client,
        url: &str,
        authority_url: &str,
        points: u8,
        extra: &[&str],
    ) -> Result<Self> {
        let socket = client
            .dir
            .join(format!("{name}.sock"))
            .display()
            .to_string();
        let points = points.to_string();
        let mut child = tokio::process::Command::new(psp_binary()?)
            .args(["messaging", "agent", "--keystore", &client.keystore])
            .args(["--passphrase-file", &client.pass, "--url", url])
            .args(["--authority-url", authority_url, "--socket", &socket])
            .args(["--points", &points])
            .args(["--cell-rate", AGENT_RATE, "--cell-burst", AGENT_RATE])
            .args(extra)
            .env_remove("PSP_PASSPHRASE")
            .env_remove("PSP_MESSAGING_SOCKET")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("starting {name}'s agent"))?;
        let lines = Arc::new(Mutex::new(Vec::new()));
        let ended = Arc::new(Mutex::new(false));
        let stdout = child.stdout.take().context("agent stdout")?;
        let stderr = child.stderr.take().context("agent stderr")?;
        {
            let (lines, ended) = (lines.clone(), ended.clone());
            tokio::spawn(async move {
                let mut reader = BufReader::new(stdout).lines();
                while let Ok(Some(line)) = reader.next_line().await {
                    eprintln!("[{name} agent] {line}");
                    lines.lock().expect("lines").push(line);
                }
                *ended.lock().expect("ended") = true;
            });
        }
        {
            let lines = lines.clone();
            tokio::spawn(async move {
                let mut reader = BufReader::new(stderr).lines();
                while let Ok(Some(line)) = reader.next_line().await {
                    eprintln!("[{name} agent stderr] {line}");
                    lines.lock().expect("lines").push(format!("stderr: {line}"));
                }
            });
        }
        Ok(Self {
            name,
            socket,
            lines,
            ended,
            child,
        })
    }

    /// The events printed so far.
    fn events(&self) -> Vec<Value> {
        let lines = self.lines.lock().expect("lines");
        lines
            .iter()
            .filter(|l| !l.starts_with("stderr: "))
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }

    /// The agent's last lines, for error messages.
    fn tail(&self) -> String {
        let lines = self.lines.lock().expect("lines");
        let start = lines.len().saturating_sub(20);
        lines[start..].join("\n")
    }

    /// Waits for the events `pick` accepts (it sees them all at once); fails at once if the
    /// agent stops.
    async fn wait_events<T>(
        &self,
        what: &str,
        timeout: Duration,
        pick: impl Fn(&[Value]) -> Option<T>,
    ) -> Result<T> {
        let found = wait_for(what, timeout, || {
            let events = self.events();
            let ended = *self.ended.lock().expect("ended");
            let got = pick(&events);
            async move {
                match got {
                    Some(v) => Ok(Some(Ok(v))),
                    None if ended => Ok(Some(Err(()))),
                    None => Err(format!("{} events so far", events.len())),
                }
            }
        })
        .await
        .with_context(|| format!("{}'s agent:\n{}", self.name, self.tail()))?;
        match found {
            Ok(v) => Ok(v),
            Err(()) => bail!("{}'s agent stopped:\n{}", self.name, self.tail()),
        }
    }

    /// `psp messaging <args> --socket S`, expecting success; its JSON answer.
    async fn call(&self, args: &[&str]) -> Result<Value> {
        let args = [&["messaging"][..], args, &["--socket", &self.socket]].concat();
        psp_json(&args)
            .await
            .with_context(|| format!("{}'s agent:\n{}", self.name, self.tail()))
    }

    /// The arguments of `psp messaging send TO --text|--file X` through this agent.
    fn send_args(&self, to: &str, what: &str, value: &str) -> Vec<String> {
        [
            "messaging",
            "send",
            to,
            what,
            value,
            "--socket",
            &self.socket,
        ]
        .map(String::from)
        .to_vec()
    }

    /// Messages taken from the inbox until `n` have come (or the time is up).
    async fn inbox(&self, n: usize) -> Result<Vec<Value>> {
        let deadline = Instant::now() + AGENT_TIMEOUT;
        let mut got = Vec::new();
        while got.len() < n {
            ensure!(
                Instant::now() < deadline,
                "{}'s inbox: {} of {n} messages in {} s:\n{}",
                self.name,
                got.len(),
                AGENT_TIMEOUT.as_secs(),
                self.tail()
            );
            let reply = self.call(&["inbox", "--wait", "20"]).await?;
            let messages = reply["messages"].as_array().context("inbox messages")?;
            got.extend(messages.iter().cloned());
        }
        Ok(got)
    }

    fn stop(&mut self) -> Result<()> {
        self.child.start_kill().context("killing the agent")
    }
}

/// A client identity's keystore and its public key and id string.
struct Client {
    dir: std::path::PathBuf,
    keystore: String,
    pass: String,
    key: String,
    id: String,
}

async fn new_client(dir: &Path, name: &str) -> Result<Client> {
    let keystore = dir.join(format!("{name}.json")).display().to_string();
    let pass = dir.join(format!("{name}.pass")).display().to_string();
    std::fs::write(&pass, format!("{name} e2e passphrase"))?;
    psp_ok(&[
        "key",
        "generate",
        "--out",
        &keystore,
        "--passphrase-file",
        &pass,
        "--insecure-test-kdf",
    ])
    .await?;
    let public = psp_client::keystore::load_public(Path::new(&keystore))?;
    let id = public.id_string(
        "peerstream",
        psp_client::psp_primitives::IdentityKind::Client,
        "account",
    )?;
    Ok(Client {
        dir: dir.to_path_buf(),
        keystore,
        pass,
        key: psp_client::hex0x(&public.sr25519),
        id: id.to_string(),
    })
}

/// Runs the `psp` commands of each payer in order, the payers in parallel (one nonce each).
async fn per_payer(chains: Vec<Vec<Vec<String>>>) -> Result<()> {
    let tasks: Vec<_> = chains
        .into_iter()
        .map(|commands| {
            tokio::spawn(async move {
                for args in commands {
                    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
                    psp_ok(&refs).await?;
                }
                Ok::<_, anyhow::Error>(())
            })
        })
        .collect();
    for task in tasks {
        task.await??;
    }
    Ok(())
}

fn args(parts: &[&str]) -> Vec<String> {
    parts.iter().map(|s| s.to_string()).collect()
}

/// `identity register` of a client keystore, paid by `payer`.
fn register_client(client: &Client, payer: &str, url: &str) -> Vec<String> {
    args(&[
        "identity",
        "register",
        "--keystore",
        &client.keystore,
        "--passphrase-file",
        &client.pass,
        "--kind",
        "client",
        "--namespace",
        "peerstream",
        "--app",
        "account",
        "--payer",
        payer,
        "--url",
        url,
    ])
}

/// Waits for the request of `from` at `agent`; its number.
async fn request_from(agent: &AgentProc, from: &str) -> Result<u64> {
    agent
        .wait_events(
            &format!("an introduction from {from}"),
            AGENT_TIMEOUT,
            |events| {
                events.iter().find_map(|e| {
                    (e["event"] == "introduction-received" && e["from"] == from)
                        .then(|| e["request"].as_u64())
                        .flatten()
                })
            },
        )
        .await
}

async fn scenario(nodes: &[PspNode]) -> Result<()> {
    let [alice, _bob, _charlie, _eve, _ferdie, dave] = nodes else {
        bail!("expected six nodes");
    };
    let url = alice.url();
    let dave_url = dave.url();
    let chain = Chain::connect(&url).await?;
    let t = Instant::now();
    wait_finalized(&chain, 1, FINALITY_TIMEOUT).await?;
    eprintln!("network finalizing after {:?}", t.elapsed());

    let dir = tempfile::tempdir()?;
    let bob_c = new_client(dir.path(), "bob").await?;
    let alice_c = new_client(dir.path(), "alice").await?;
    let carol_c = new_client(dir.path(), "carol").await?;

    // Each node's identity paid by its own account; Dave's account also makes his node an
    // authority; the client identities after that, paid by Eve, Ferdie and Charlie.
    let t = Instant::now();
    let node_reg = |node: &PspNode, payer: &str| {
        args(&[
            "identity",
            "register-node",
            "--node-url",
            &node.url(),
            "--payer",
            payer,
            "--url",
            &url,
        ])
    };
    let staker = |parts: &[&str]| {
        let mut a = args(parts);
        a.extend(args(&["--payer", "//Dave", "--url", &url]));
        a
    };
    per_payer(vec![
        vec![
            staker(&["stake", "session-keys", "--node-url", &dave_url]),
            node_reg(dave, "//Dave"),
            staker(&["stake", "bond", "--amount", "2000"]),
            staker(&[
                "stake",
                "candidate",
                "--role",
                "authority",
                "--node-url",
                &dave_url,
            ]),
        ],
        vec![node_reg(&nodes[0], "//Alice")],
        vec![node_reg(&nodes[1], "//Bob")],
        vec![
            node_reg(&nodes[2], "//Charlie"),
            register_client(&carol_c, "//Charlie", &url),
        ],
        vec![
            node_reg(&nodes[3], "//Eve"),
            register_client(&bob_c, "//Eve", &url),
        ],
        vec![
            node_reg(&nodes[4], "//Ferdie"),
            register_client(&alice_c, "//Ferdie", &url),
        ],
    ])
    .await?;
    eprintln!(
        "six nodes and three clients registered, dave standing, in {:?}",
        t.elapsed()
    );

    let dave_key = psp_client::overlay::NodeRpc::connect(&dave_url)
        .await?
        .overlay_info()
        .await?
        .node_id;
    let t = Instant::now();
    wait_for(
        "dave's node elected authority for the current epoch",
        ELECTION_TIMEOUT,
        || async {
            let set = chain
                .staking_elected(Role::Authority, None)
                .await
                .map_err(|e| e.to_string())?;
            if set.iter().any(|n| n.node == dave_key) {
                Ok(Some(()))
            } else {
                Err(format!("{} elected, not dave", set.len()))
            }
        },
    )
    .await?;
    eprintln!(
        "dave's node is an elected authority after {:?}",
        t.elapsed()
    );

    // The agents: Bob announces at two points; Alice and Carol only reach out.
    let lifetime = RECORD_LIFETIME.as_secs().to_string();
    let mut bob_a = AgentProc::spawn(
        "bob",
        &bob_c,
        &url,
        &dave_url,
        2,
        &["--record-lifetime", &lifetime, "--cap", "1"],
    )?;
    let alice_a = AgentProc::spawn("alice", &alice_c, &nodes[1].url(), &dave_url, 0, &[])?;
    let mut carol_a = AgentProc::spawn("carol", &carol_c, &nodes[2].url(), &dave_url, 0, &[])?;
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
        .and_then(|h| hex_decode(h.trim_start_matches("0x")))
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

    // Bob's identity revoked (by Eve, its owner): Alice's lookups of Bob are refused, and so
    // is a new agent of Bob's (no certificate, so no presence).
    psp_ok(&[
        "identity",
        "revoke",
        "--keystore",
        &bob_c.keystore,
        "--payer",
        "//Eve",
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
    let again = AgentProc::spawn("bob (revoked)", &bob_c, &url, &dave_url, 2, &[])?;
    again
        .wait_events("bob's new agent stopping", AGENT_TIMEOUT, |_| None::<()>)
        .await
        .err()
        .filter(|e| format!("{e:#}").contains("stopped") && again.tail().contains("revoked"))
        .with_context(|| format!("bob's new agent was not refused:\n{}", again.tail()))?;
    eprintln!("bob's new agent refused: {}", again.tail());
    Ok(())
}

fn hex_decode(hex: &str) -> Option<Vec<u8>> {
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(hex.get(i..i + 2)?, 16).ok())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_identities_message_through_six_real_nodes() -> Result<()> {
    let overlay = OverlayOptions {
        circuit_rate: Some(RELAY_RATE),
        circuit_burst: Some(RELAY_RATE),
        ..OverlayOptions::default()
    };
    let mut nodes = start_local_network(
        &["alice", "bob", "charlie", "eve", "ferdie"],
        Some(overlay.clone()),
    )
    .await?;
    let mut dave = NodeOptions::local("dave");
    // `--dave`: a validator (its keystore holds the session keys it generates).
    dave.authority = Some("dave".into());
    dave.overlay = Some(OverlayOptions {
        seed: Some("psp-e2e-dave".into()),
        ..overlay
    });
    dave.bootnodes.push(nodes[0].bootnode_addr()?);
    nodes.push(PspNode::start_with(dave).await?);
    run_scenario(&nodes, TEST_TIMEOUT, scenario(&nodes)).await
}
