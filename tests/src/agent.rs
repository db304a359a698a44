//! Private messaging between real processes: `psp messaging agent` child processes driven
//! by the `psp` CLI ([`AgentProc`]), client identities ([`Client`]), and the six-node
//! `--chain local` network they run on ([`start_messaging_nodes`], [`prepare`]): Alice, Bob
//! and Charlie (the genesis authorities), Eve and Ferdie (plain nodes) and Dave, a validator
//! whose account stakes so that his node is elected authority and issues access certificates.
//! Shared by `tests/messaging.rs` and `examples/messaging_latency.rs`.

use crate::{
    psp_binary, psp_json, psp_ok, start_local_network_with, wait_finalized, wait_for, NodeOptions,
    OverlayOptions, PspNode,
};
use anyhow::{bail, ensure, Context, Result};
use psp_client::{chain::Chain, psp_primitives::staking::Role};
use serde_json::Value;
use std::{
    path::Path,
    process::Stdio,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};
use tokio::io::{AsyncBufReadExt, BufReader};

/// Finality of the first blocks (needs all three authorities connected).
pub const FINALITY_TIMEOUT: Duration = Duration::from_secs(240);
/// Election at the next epoch boundary (10 blocks of 3 s), for the epoch after it.
pub const ELECTION_TIMEOUT: Duration = Duration::from_secs(150);
/// An agent's step: a presence point registered, an introduction arriving, a message.
pub const AGENT_TIMEOUT: Duration = Duration::from_secs(90);
/// The relays' pace per circuit (cells a second, and burst), and the agents' (within it).
pub const RELAY_RATE: u32 = 1_000;
/// See [`RELAY_RATE`].
pub const AGENT_RATE: &str = "200";
/// The agent arguments that pace its circuits at [`AGENT_RATE`] (without them, the agent's
/// default: 10 cells a second, bursts of 100).
pub const FAST_AGENT: [&str; 4] = ["--cell-rate", AGENT_RATE, "--cell-burst", AGENT_RATE];

/// Starts the six overlay nodes (relay pace [`RELAY_RATE`]); `observe`: each records what it
/// learns ([`OverlayOptions::observe`]).
pub async fn start_messaging_nodes(observe: bool) -> Result<Vec<PspNode>> {
    start_messaging_nodes_with(observe, |_| {}).await
}

/// [`start_messaging_nodes`], with `tune` applied to each of the first five nodes' options.
pub async fn start_messaging_nodes_with(
    observe: bool,
    tune: impl Fn(&mut NodeOptions),
) -> Result<Vec<PspNode>> {
    let overlay = OverlayOptions {
        circuit_rate: Some(RELAY_RATE),
        circuit_burst: Some(RELAY_RATE),
        observe,
        ..OverlayOptions::default()
    };
    let mut nodes = start_local_network_with(
        &["alice", "bob", "charlie", "eve", "ferdie"],
        Some(overlay.clone()),
        tune,
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
    Ok(nodes)
}

/// The network after [`prepare`]: where to reach it, and the client identities.
pub struct Prepared {
    /// Alice's node RPC (chain transactions).
    pub url: String,
    /// Dave's node RPC (the elected authority: certificates).
    pub dave_url: String,
    /// The client identities, in the order asked for.
    pub clients: Vec<Client>,
}

/// Waits for finality, registers the six nodes' identities (each paid by its own account) and
/// the client identities `names` (at most five, paid by Charlie, Eve, Ferdie, Alice and Bob), and has
/// Dave's account make his node an authority; returns once Dave's node is elected.
pub async fn prepare(nodes: &[PspNode], dir: &Path, names: &[&str]) -> Result<Prepared> {
    prepare_with_roles(nodes, dir, names, &[Role::Authority]).await
}

/// [`prepare`], with Dave's node standing for `roles` (authority among them) and elected to
/// each before it returns.
pub async fn prepare_with_roles(
    nodes: &[PspNode],
    dir: &Path,
    names: &[&str],
    roles: &[Role],
) -> Result<Prepared> {
    let [alice, _bob, _charlie, _eve, _ferdie, dave] = nodes else {
        bail!("expected six nodes");
    };
    ensure!(names.len() <= 5, "at most five clients, one per payer");
    let url = alice.url();
    let dave_url = dave.url();
    let chain = Chain::connect(&url).await?;
    let t = Instant::now();
    wait_finalized(&chain, 1, FINALITY_TIMEOUT).await?;
    eprintln!("network finalizing after {:?}", t.elapsed());

    let mut clients = Vec::new();
    for name in names {
        clients.push(new_client(dir, name).await?);
    }
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
    let mut chains = vec![
        [
            staker(&["stake", "session-keys", "--node-url", &dave_url]),
            node_reg(dave, "//Dave"),
            staker(&["stake", "bond", "--amount", "2000"]),
        ]
        .into_iter()
        .chain(roles.iter().map(|role| {
            staker(&[
                "stake",
                "candidate",
                "--role",
                role.as_str(),
                "--node-url",
                &dave_url,
            ])
        }))
        .collect(),
        vec![node_reg(&nodes[0], "//Alice")],
        vec![node_reg(&nodes[1], "//Bob")],
        vec![node_reg(&nodes[2], "//Charlie")],
        vec![node_reg(&nodes[3], "//Eve")],
        vec![node_reg(&nodes[4], "//Ferdie")],
    ];
    // Alice's and Bob's accounts pay after their nodes' registrations.
    let payers = [
        (3, "//Charlie"),
        (4, "//Eve"),
        (5, "//Ferdie"),
        (1, "//Alice"),
        (2, "//Bob"),
    ];
    for (client, (chain, payer)) in clients.iter_mut().zip(payers) {
        client.payer = payer;
        chains[chain].push(register_client(client, payer, &url));
    }
    per_payer(chains).await?;
    eprintln!(
        "six nodes and {} clients registered, dave standing, in {:?}",
        clients.len(),
        t.elapsed()
    );

    let dave_key = psp_client::overlay::NodeRpc::connect(&dave_url)
        .await?
        .overlay_info()
        .await?
        .node_id;
    let t = Instant::now();
    for &role in roles {
        wait_for(
            &format!(
                "dave's node elected {} for the current epoch",
                role.as_str()
            ),
            ELECTION_TIMEOUT,
            || async {
                let set = chain
                    .staking_elected(role, None)
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
    }
    eprintln!(
        "dave's node is elected to {roles:?} after {:?}",
        t.elapsed()
    );
    Ok(Prepared {
        url,
        dave_url,
        clients,
    })
}

/// A node's overlay node key (`psp_overlayInfo`), hex.
pub async fn node_key(node: &PspNode) -> Result<String> {
    Ok(psp_client::overlay::NodeRpc::connect(&node.url())
        .await?
        .overlay_info()
        .await?
        .node_id)
}

/// A `psp messaging agent` child process and the lines it printed.
pub struct AgentProc {
    /// Its name in messages.
    pub name: &'static str,
    /// Its control socket.
    pub socket: String,
    /// Stdout lines (JSON events) and stderr lines (prefixed `stderr: `), in arrival order.
    lines: Arc<Mutex<Vec<String>>>,
    /// Set once stdout reached its end (the agent stopped).
    ended: Arc<Mutex<bool>>,
    child: tokio::process::Child,
}

impl AgentProc {
    /// Starts `psp messaging agent` for `client` (chain at `url`, certificates from
    /// `authority_url`) holding `points` presence points, with `extra` arguments.
    pub fn spawn(
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
    pub fn events(&self) -> Vec<Value> {
        let lines = self.lines.lock().expect("lines");
        lines
            .iter()
            .filter(|l| !l.starts_with("stderr: "))
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }

    /// The peer id of the agent's links (from its `started` event): what its entry nodes see.
    pub fn link_peer(&self) -> Result<String> {
        self.events()
            .iter()
            .find(|e| e["event"] == "started")
            .and_then(|e| e["linkPeer"].as_str().map(str::to_owned))
            .with_context(|| format!("{}'s agent printed no link peer id", self.name))
    }

    /// How many `kind` events the agent printed so far (cheap: no JSON parsing).
    pub fn count(&self, kind: &str) -> usize {
        let tag = format!("{{\"event\":\"{kind}\"");
        let lines = self.lines.lock().expect("lines");
        lines.iter().filter(|l| l.starts_with(&tag)).count()
    }

    /// The agent's last lines, for error messages.
    pub fn tail(&self) -> String {
        let lines = self.lines.lock().expect("lines");
        let start = lines.len().saturating_sub(20);
        lines[start..].join("\n")
    }

    /// Waits for the events `pick` accepts (it sees them all at once); fails at once if the
    /// agent stops.
    pub async fn wait_events<T>(
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
    pub async fn call(&self, args: &[&str]) -> Result<Value> {
        let args = [&["messaging"][..], args, &["--socket", &self.socket]].concat();
        psp_json(&args)
            .await
            .with_context(|| format!("{}'s agent:\n{}", self.name, self.tail()))
    }

    /// The arguments of `psp messaging send TO --text|--file X` through this agent.
    pub fn send_args(&self, to: &str, what: &str, value: &str) -> Vec<String> {
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
    pub async fn inbox(&self, n: usize) -> Result<Vec<Value>> {
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

    /// Kills the agent.
    pub fn stop(&mut self) -> Result<()> {
        self.child.start_kill().context("killing the agent")
    }
}

/// A client identity's keystore and its public key and id string.
pub struct Client {
    /// The directory of its files.
    pub dir: std::path::PathBuf,
    /// The keystore.
    pub keystore: String,
    /// The passphrase file.
    pub pass: String,
    /// The identity key, `0x` hex.
    pub key: String,
    /// The id string.
    pub id: String,
    /// The account that registered (paid for) the identity, once [`prepare`] did.
    pub payer: &'static str,
}

/// A new client keystore `name` in `dir` (not registered yet).
pub async fn new_client(dir: &Path, name: &str) -> Result<Client> {
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
        payer: "",
    })
}

/// Runs the `psp` commands of each payer in order, the payers in parallel (one nonce each).
pub async fn per_payer(chains: Vec<Vec<Vec<String>>>) -> Result<()> {
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

/// The parts as owned strings.
pub fn args(parts: &[&str]) -> Vec<String> {
    parts.iter().map(|s| s.to_string()).collect()
}

/// `identity register` of a client keystore, paid by `payer`.
pub fn register_client(client: &Client, payer: &str, url: &str) -> Vec<String> {
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
pub async fn request_from(agent: &AgentProc, from: &str) -> Result<u64> {
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
