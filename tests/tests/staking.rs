//! End to end: a fourth node becomes an authority through staking, on `--chain local`.
//!
//! Alice, Bob and Charlie (the genesis authorities, invulnerable) run without the overlay;
//! Dave runs as a validator (`--dave`) with the overlay, so he has a node identity. With the
//! `psp` CLI only, Dave's account:
//! - has Dave's node generate session keys (`author_rotateKeysWithOwner`) and registers them
//!   (`psp stake session-keys`);
//! - registers Dave's overlay identity (`psp identity register-node`);
//! - bonds 2000 tokens (`psp stake bond`) and is refused, by name, when standing as a
//!   discovery node (minimum 5000), unbonding more than bonded and withdrawing early;
//! - stands as an authority (`psp stake candidate --role authority --node-url dave`).
//!
//! Then the chain elects Dave's node as an authority at the next epoch boundary (10 blocks),
//! `psp stake status` shows it, and after the session that follows, Dave's node authors blocks
//! (its log shows blocks it sealed) while the four authorities keep finalizing. Finally
//! `psp rewards status` shows the funded rewards pot and the node's (empty) rewards, and
//! `psp rewards claim` refuses: nothing to claim. Last, a client identity gets an access
//! certificate from Dave's node (`psp cert request`), Alice's node verifies it
//! (`psp cert show`), and once the identity is revoked on chain the certificate is refused.
//! Then Charlie's validator is killed and the three left (Alice, Bob, Dave) keep finalizing.

use anyhow::{bail, ensure, Context, Result};
use psp_client::{chain::Chain, overlay::NodeRpc, psp_primitives::staking::Role};
use psp_e2e_tests::{
    finalized_head, psp_ok, psp_refused, psp_refuses_now, run_psp, run_scenario,
    start_local_network, wait_finalized, wait_for, NodeOptions, OverlayOptions, PspNode,
    PSP_TIMEOUT,
};
use std::time::{Duration, Instant};

/// The whole scenario after startup.
const TEST_TIMEOUT: Duration = Duration::from_secs(600);
/// Finality of the first blocks (needs all three authorities connected).
const FINALITY_TIMEOUT: Duration = Duration::from_secs(240);
/// Election at the next boundary, then one more session: at most ~3 epochs of 30 s.
const ELECTION_TIMEOUT: Duration = Duration::from_secs(150);
/// What Dave's log says when his node seals a block it authored (sc-consensus-slots).
const SEALED: &str = "Pre-sealed block for proposal";

async fn scenario(nodes: &[PspNode]) -> Result<()> {
    let [alice, _bob, _charlie, dave] = nodes else {
        bail!("expected four nodes");
    };
    let chain = Chain::connect(&alice.url()).await?;
    wait_finalized(&chain, 1, FINALITY_TIMEOUT).await?;
    let url = alice.url();
    let dave_url = dave.url();
    // Every command signs as //Dave and talks to Alice's node.
    let cmd = |args: &[&str]| -> Vec<String> {
        let staker = ["--payer", "//Dave", "--url", url.as_str()];
        args.iter()
            .chain(staker.iter())
            .map(|a| a.to_string())
            .collect()
    };
    let ok = |args: Vec<String>| async move {
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        psp_ok(&refs).await
    };
    let refused = |args: Vec<String>, error: &'static str| async move {
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        psp_refused(&refs, error).await
    };

    ok(cmd(&["stake", "session-keys", "--node-url", &dave_url])).await?;
    ok(cmd(&["identity", "register-node", "--node-url", &dave_url])).await?;
    let node = NodeRpc::connect(&dave_url)
        .await?
        .overlay_info()
        .await?
        .node_id;
    ok(cmd(&["stake", "bond", "--amount", "2000"])).await?;
    refused(
        cmd(&[
            "stake",
            "candidate",
            "--role",
            "discovery",
            "--node-key",
            &node,
        ]),
        "BelowMinimumStake",
    )
    .await?;
    refused(
        cmd(&["stake", "unbond", "--amount", "2001"]),
        "UnbondTooMuch",
    )
    .await?;
    refused(cmd(&["stake", "withdraw"]), "NothingToWithdraw").await?;
    ok(cmd(&[
        "stake",
        "candidate",
        "--role",
        "authority",
        "--node-url",
        &dave_url,
    ]))
    .await?;
    let stood_at = chain.staking_epoch().await?;
    eprintln!(
        "dave stands as authority in epoch {} (next at block #{})",
        stood_at.current, stood_at.next_starts_at
    );
    ensure!(
        dave.log_lines_with(&[SEALED]).is_empty(),
        "dave authored before being elected"
    );

    // Elected at the next boundary (for the epoch after it).
    let t = Instant::now();
    let elected_epoch = wait_for(
        "dave's node elected authority",
        ELECTION_TIMEOUT,
        || async {
            let epoch = chain
                .staking_epoch()
                .await
                .map_err(|e| e.to_string())?
                .current;
            for e in [epoch, epoch + 1] {
                let set = chain
                    .staking_elected(Role::Authority, Some(e))
                    .await
                    .map_err(|e| e.to_string())?;
                if set.iter().any(|n| n.node == node) {
                    return Ok(Some(e));
                }
            }
            Err(format!("not elected as of epoch {epoch}"))
        },
    )
    .await?;
    eprintln!(
        "dave's node elected authority for epoch {elected_epoch} after {:?}",
        t.elapsed()
    );

    let status = ok(cmd(&["stake", "status"])).await?;
    let status: serde_json::Value = serde_json::from_str(&status).context("status JSON")?;
    ensure!(
        status["ledger"]["active"] == "2000000000000000"
            && status["ledger"]["node"] == node.as_str()
            && status["ledger"]["roles"] == serde_json::json!(["authority"]),
        "status: {status:#}"
    );

    // Dave's node authors once the epoch it was elected for has started.
    let t = Instant::now();
    wait_for("dave's node sealing a block", ELECTION_TIMEOUT, || async {
        let sealed = dave.log_lines_with(&[SEALED]);
        if sealed.is_empty() {
            Err("no block sealed yet".to_string())
        } else {
            Ok(Some(sealed.len()))
        }
    })
    .await?;
    let epoch = chain.staking_epoch().await?;
    ensure!(
        epoch.current >= elected_epoch,
        "dave authored in epoch {} before his epoch {elected_epoch}",
        epoch.current
    );
    eprintln!(
        "dave's node authored in epoch {} ({:?} after the election)",
        epoch.current,
        t.elapsed()
    );

    // Four authorities now: finality goes on (GRANDPA needs three of four votes).
    let (before, _) = finalized_head(&chain).await?;
    wait_finalized(&chain, before + 3, FINALITY_TIMEOUT).await?;
    eprintln!("finality continues with dave's node {node} as a fourth authority");

    // The rewards side of the same node: a funded pot, nothing pending, nothing to claim.
    let rewards = psp_ok(&["rewards", "status", "--relay-url", &dave_url, "--url", &url]).await?;
    let rewards: serde_json::Value = serde_json::from_str(&rewards).context("rewards JSON")?;
    ensure!(
        rewards["pot"]["rewardPerEpoch"] == "1000000000000"
            && rewards["pot"]["potBalance"] != "0"
            && rewards["relay"]["node"] == node.as_str()
            && rewards["relay"]["rewards"]["pending"] == serde_json::json!([]),
        "rewards status: {rewards:#}"
    );
    refused(
        cmd(&["rewards", "claim", "--relay-url", &dave_url]),
        "nothing to claim",
    )
    .await?;

    // Dave's node, an elected authority, issues access certificates to live identities.
    let dir = tempfile::tempdir()?;
    let store = dir.path().join("client.json").display().to_string();
    let pass = dir.path().join("pass").display().to_string();
    std::fs::write(&pass, "e2e passphrase")?;
    let keystore = [
        "--keystore",
        store.as_str(),
        "--passphrase-file",
        pass.as_str(),
    ];
    psp_ok(
        &[
            &["key", "generate", "--out", &store][..],
            &keystore[2..],
            &["--insecure-test-kdf"],
        ]
        .concat(),
    )
    .await?;
    let register = [
        &["identity", "register"][..],
        &keystore,
        &[
            "--kind",
            "client",
            "--namespace",
            "peerstream",
            "--app",
            "account",
        ],
    ]
    .concat();
    ok(cmd(&register)).await?;
    // Dave's node checks the identity against its latest chain snapshot, which may be a block
    // behind the one that finalized the registration: ask again until it has it.
    let request = [&["cert", "request"][..], &keystore, &["--url", &dave_url]].concat();
    let cert = wait_for("a certificate from dave's node", PSP_TIMEOUT, || async {
        let run = run_psp(&request, PSP_TIMEOUT)
            .await
            .map_err(|e| e.to_string())?;
        if run.code == Some(0) {
            Ok(Some(run.stdout))
        } else {
            Err(run.stderr.trim().to_string())
        }
    })
    .await?;
    let cert: serde_json::Value = serde_json::from_str(&cert).context("cert JSON")?;
    ensure!(
        cert["authority"] == node.as_str() && cert["kind"] == "client",
        "certificate: {cert:#}"
    );
    let cert_hex = cert["certificate"]
        .as_str()
        .context("certificate hex")?
        .to_owned();
    // Any node verifies it against the elected authorities and the chain.
    let shown = psp_ok(&["cert", "show", &cert_hex, "--url", &url]).await?;
    let shown: serde_json::Value = serde_json::from_str(&shown).context("cert show JSON")?;
    ensure!(shown["serial"] == cert["serial"], "cert show: {shown:#}");
    // Revoked: refused from the next finalized block on.
    ok(cmd(&[&["identity", "revoke"][..], &keystore].concat())).await?;
    let show = ["cert", "show", cert_hex.as_str(), "--url", url.as_str()];
    wait_for(
        "the certificate refused after revocation",
        PSP_TIMEOUT,
        || psp_refuses_now(&show, "revoked"),
    )
    .await?;
    eprintln!(
        "certificate {} refused once its identity was revoked",
        cert["serial"]
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fourth_node_bonds_stands_is_elected_and_authors() -> Result<()> {
    let mut nodes = start_local_network(&["alice", "bob", "charlie"], None).await?;
    let mut dave = NodeOptions::local("dave");
    // `--dave`: a validator (its keystore holds the session keys it generates).
    dave.authority = Some("dave".into());
    dave.overlay = Some(OverlayOptions {
        seed: Some("psp-e2e-dave".into()),
        ..OverlayOptions::default()
    });
    dave.bootnodes.push(nodes[0].bootnode_addr()?);
    nodes.push(PspNode::start_with(dave).await?);
    run_scenario(&nodes, TEST_TIMEOUT, scenario(&nodes)).await?;
    // A fault: one of the four validators is killed; the other three keep authoring and
    // finalizing (GRANDPA needs three of four votes, Aura skips the dead one's slots).
    nodes[2].stop();
    run_scenario(
        &nodes,
        FINALITY_TIMEOUT,
        finality_without_charlie(&nodes[0]),
    )
    .await
}

/// Finality moves three blocks on while Charlie is down.
async fn finality_without_charlie(alice: &PspNode) -> Result<()> {
    let chain = Chain::connect(&alice.url()).await?;
    let (before, _) = finalized_head(&chain).await?;
    let reached = wait_finalized(&chain, before + 3, FINALITY_TIMEOUT).await?;
    eprintln!("charlie killed: finality went on from #{before} to #{reached}");
    Ok(())
}
