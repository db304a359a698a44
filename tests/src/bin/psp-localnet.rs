//! `psp-localnet`: a local PSP network in one command (issue 17, point 7).
//!
//! Starts up to six `psp-node`s on `--chain local` (alice … ferdie; alice, bob and charlie are
//! the chain's genesis authorities and author blocks), every one running the overlay with
//! short directory periods. Each node's owner (the dev account of the same name) registers the
//! node's identity, bonds and stands for the roles asked for — the first `--discovery` nodes
//! for discovery, the last `--oracles` for oracle — through the `psp` CLI. Once the roles are
//! elected and the discovery nodes have signed a directory listing every node, it prints one
//! JSON line on stdout (`"ready": true`: the nodes, their RPC and overlay ports, and `psp`
//! commands to try) and runs until interrupted (Ctrl-C or SIGTERM); then it stops every node
//! with SIGTERM, waits for it to exit, prints `{"stopped": …}` and exits 0. Progress goes to
//! stderr. The nodes' chain data live in temporary directories removed on exit.
//!
//! Needs the `psp-node` and `psp` binaries (built by `cargo build`; `PSP_NODE_BIN` and
//! `PSP_BIN` override where they are looked for).

use anyhow::{bail, ensure, Context, Result};
use psp_client::{chain::Chain, psp_primitives::staking::Role};
use psp_e2e_tests::{
    dev_account, psp_ok, run_psp, start_local_network, wait_finalized, wait_for, OverlayOptions,
    PspNode, PSP_TIMEOUT,
};
use serde_json::{json, Value};
use std::time::{Duration, Instant};

/// The nodes, in start order, each owned by the dev account of its name.
const NAMES: [&str; 6] = ["alice", "bob", "charlie", "dave", "eve", "ferdie"];
/// Directory period and vote window, seconds: short, so a directory forms quickly.
const DIRECTORY_TIMING: (u64, u64) = (8, 3);
/// Discovery needs the highest bond (`MIN_DISCOVERY_STAKE`); other roles fit in less.
const DISCOVERY_BOND: &str = "5000";
const ORACLE_BOND: &str = "1000";
const FINALITY_TIMEOUT: Duration = Duration::from_secs(240);
/// Elections happen at epoch boundaries (30 s); registrations may take a few blocks first.
const ELECTION_TIMEOUT: Duration = Duration::from_secs(180);
const DIRECTORY_TIMEOUT: Duration = Duration::from_secs(120);
/// How long a node may take to exit after SIGTERM before it is killed.
const STOP_GRACE: Duration = Duration::from_secs(30);

const USAGE: &str = "usage: psp-localnet [--nodes N (2..=6, default 4)] \
    [--discovery K (1..=N, default 3)] [--oracles M (0..=N, default 1)]";

/// What to start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Plan {
    nodes: usize,
    discovery: usize,
    oracles: usize,
}

impl Plan {
    fn parse(mut args: impl Iterator<Item = String>) -> Result<Plan> {
        let mut plan = Plan {
            nodes: 4,
            discovery: 3,
            oracles: 1,
        };
        while let Some(flag) = args.next() {
            let slot = match flag.as_str() {
                "--nodes" => &mut plan.nodes,
                "--discovery" => &mut plan.discovery,
                "--oracles" => &mut plan.oracles,
                "-h" | "--help" => bail!("{USAGE}"),
                other => bail!("unknown argument {other:?}\n{USAGE}"),
            };
            let value = args
                .next()
                .with_context(|| format!("{flag} needs a number\n{USAGE}"))?;
            *slot = value
                .parse()
                .with_context(|| format!("{flag} {value:?} is not a number\n{USAGE}"))?;
        }
        ensure!(
            (2..=NAMES.len()).contains(&plan.nodes),
            "--nodes must be 2..=6 (one dev account per node)\n{USAGE}"
        );
        ensure!(
            (1..=plan.nodes).contains(&plan.discovery),
            "--discovery must be 1..=--nodes: the directory needs signers\n{USAGE}"
        );
        ensure!(
            plan.oracles <= plan.nodes,
            "--oracles must be at most --nodes\n{USAGE}"
        );
        Ok(plan)
    }

    /// The roles node `index` stands for.
    fn roles(&self, index: usize) -> Vec<Role> {
        let mut roles = Vec::new();
        if index < self.discovery {
            roles.push(Role::Discovery);
        }
        if index >= self.nodes - self.oracles {
            roles.push(Role::Oracle);
        }
        roles
    }
}

/// Registers `node`, bonds and stands for `roles`, as its owner.
async fn stand(node_url: String, chain_url: String, owner: String, roles: Vec<Role>) -> Result<()> {
    let common = ["--payer", owner.as_str(), "--url", chain_url.as_str()];
    let run = |parts: &[&str]| {
        let args: Vec<String> = parts.iter().chain(&common).map(|s| s.to_string()).collect();
        async move {
            let refs: Vec<&str> = args.iter().map(String::as_str).collect();
            psp_ok(&refs).await
        }
    };
    run(&["identity", "register-node", "--node-url", &node_url]).await?;
    if roles.is_empty() {
        return Ok(());
    }
    let bond = if roles.contains(&Role::Discovery) {
        DISCOVERY_BOND
    } else {
        ORACLE_BOND
    };
    run(&["stake", "bond", "--amount", bond]).await?;
    for role in roles {
        run(&[
            "stake",
            "candidate",
            "--role",
            role.as_str(),
            "--node-url",
            &node_url,
        ])
        .await?;
    }
    Ok(())
}

/// `psp directory show` through `url`, once it lists `entries` nodes with every signature
/// the discovery set can give.
async fn signed_directory(
    url: &str,
    entries: usize,
    signers: usize,
) -> Result<Option<Value>, String> {
    let run = run_psp(&["directory", "show", "--url", url], PSP_TIMEOUT)
        .await
        .map_err(|e| e.to_string())?;
    if run.code != Some(0) {
        return Err(run.stderr);
    }
    let shown: Value = serde_json::from_str(&run.stdout).map_err(|e| e.to_string())?;
    let complete = shown["entries"].as_array().map(Vec::len) == Some(entries)
        && shown["verifiedSignatures"].as_u64() >= Some(signers as u64);
    Ok(complete.then_some(shown))
}

async fn bring_up(plan: Plan) -> Result<Vec<PspNode>> {
    let started = Instant::now();
    let overlay = OverlayOptions {
        directory_timing: Some(DIRECTORY_TIMING),
        ..OverlayOptions::default()
    };
    eprintln!("starting {} nodes on --chain local ...", plan.nodes);
    let nodes = start_local_network(&NAMES[..plan.nodes], Some(overlay)).await?;
    let url = nodes[0].url();
    let chain = Chain::connect(&url).await?;
    wait_finalized(&chain, 1, FINALITY_TIMEOUT).await?;
    eprintln!(
        "finalizing after {:?}; registering and staking ...",
        started.elapsed()
    );

    let mut stands = tokio::task::JoinSet::new();
    for (index, node) in nodes.iter().enumerate() {
        let name = NAMES[index];
        stands.spawn(stand(
            node.url(),
            url.clone(),
            dev_account(name),
            plan.roles(index),
        ));
    }
    while let Some(done) = stands.join_next().await {
        done.context("a registration task")??;
    }
    for (role, wanted) in [
        (Role::Discovery, plan.discovery),
        (Role::Oracle, plan.oracles),
    ] {
        if wanted == 0 {
            continue;
        }
        wait_for(
            &format!("{wanted} {} nodes elected", role.as_str()),
            ELECTION_TIMEOUT,
            || async {
                let set = chain
                    .staking_elected(role, None)
                    .await
                    .map_err(|e| e.to_string())?;
                Ok((set.len() >= wanted).then_some(()))
            },
        )
        .await?;
        eprintln!(
            "{wanted} {} node(s) elected after {:?}",
            role.as_str(),
            started.elapsed()
        );
    }
    let directory = wait_for(
        "a directory listing every node, signed by the discovery set",
        DIRECTORY_TIMEOUT,
        || signed_directory(&url, plan.nodes, plan.discovery),
    )
    .await?;
    eprintln!(
        "directory of period {} signed by {} after {:?}",
        directory["period"],
        directory["verifiedSignatures"],
        started.elapsed()
    );
    Ok(nodes)
}

/// The ready line: every node and what to try.
fn ready_line(plan: Plan, nodes: &[PspNode]) -> Value {
    let url = nodes[0].url();
    let listed: Vec<Value> = nodes
        .iter()
        .enumerate()
        .map(|(index, node)| {
            json!({
                "name": node.name(),
                "owner": dev_account(node.name()),
                "rpc": node.url(),
                "overlayPort": node.overlay_port(),
                "mediaUrl": node.media_url(),
                "authority": index < 3,
                "roles": plan.roles(index).iter().map(|r| r.as_str()).collect::<Vec<_>>(),
            })
        })
        .collect();
    json!({
        "ready": true,
        "chain": "local",
        "url": url,
        "nodes": listed,
        "try": [
            format!("psp directory show --url {url}"),
            format!("psp stake status --payer //Alice --url {url}"),
            format!("psp rewards status --relay-url {url}"),
            "echo secret > pass.txt && psp key generate --out me.key --passphrase-file pass.txt".to_string(),
            format!("psp identity register --keystore me.key --passphrase-file pass.txt --kind client --namespace peerstream --app account --payer //Charlie --url {url}"),
        ],
    })
}

/// Waits for Ctrl-C or SIGTERM.
async fn interrupted() -> Result<()> {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .context("listening for SIGTERM")?;
    tokio::select! {
        result = tokio::signal::ctrl_c() => result.context("listening for Ctrl-C"),
        _ = term.recv() => Ok(()),
    }
}

#[tokio::main]
async fn main() -> Result<()> {
    let plan = Plan::parse(std::env::args().skip(1))?;
    let nodes = tokio::select! {
        up = bring_up(plan) => up?,
        stop = interrupted() => {
            stop?;
            bail!("interrupted before the network was ready; its nodes are stopped");
        }
    };
    println!("{}", ready_line(plan, &nodes));
    eprintln!("running; Ctrl-C or SIGTERM stops every node");
    interrupted().await?;
    eprintln!("stopping {} nodes ...", nodes.len());
    let mut stopped = Vec::new();
    for node in &nodes {
        let code = node.terminate(STOP_GRACE);
        stopped.push(json!({"name": node.name(), "exit": code}));
    }
    println!("{}", json!({ "stopped": stopped }));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Plan> {
        Plan::parse(args.iter().map(|s| s.to_string()))
    }

    #[test]
    fn plans_are_checked_and_roles_assigned_from_both_ends() {
        let plan = parse(&["--nodes", "5", "--discovery", "3", "--oracles", "2"]).unwrap();
        assert_eq!(plan.roles(0), vec![Role::Discovery]);
        assert_eq!(plan.roles(2), vec![Role::Discovery]);
        assert_eq!(plan.roles(3), vec![Role::Oracle]);
        let all = parse(&["--nodes", "2", "--discovery", "2", "--oracles", "2"]).unwrap();
        assert_eq!(all.roles(1), vec![Role::Discovery, Role::Oracle]);
        assert_eq!(parse(&[]).unwrap().nodes, 4);
        for bad in [
            &["--nodes", "7"][..],
            &["--nodes", "1"],
            &["--discovery", "0"],
            &["--nodes", "3", "--discovery", "4"],
            &["--oracles", "9"],
            &["--nodes"],
            &["--nodes", "x"],
            &["--relays", "2"],
        ] {
            assert!(parse(bad).is_err(), "{bad:?} accepted");
        }
    }
}
