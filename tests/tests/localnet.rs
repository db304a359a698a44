//! End to end: `psp-localnet` (issue 17, point 7) brings up three nodes on `--chain local`,
//! two of them elected for discovery and one for oracle, waits for a signed directory and
//! prints its ready line; the directory it announces is there for anyone to check with
//! `psp directory show`, the oracle is elected on chain, and SIGTERM stops every node
//! cleanly (each exits by itself, none killed; their RPC ports close) before the command exits 0.

use anyhow::{ensure, Context, Result};
use psp_client::{chain::Chain, psp_primitives::staking::Role};
use psp_e2e_tests::{psp_json, PSP_TIMEOUT};
use serde_json::Value;
use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, BufReader};

/// Startup, registrations, two elections and a directory period, with room.
const READY_TIMEOUT: Duration = Duration::from_secs(480);
const STOP_TIMEOUT: Duration = Duration::from_secs(120);

#[tokio::test(flavor = "multi_thread")]
async fn a_local_network_comes_up_in_one_command_and_stops_cleanly() -> Result<()> {
    let mut localnet = tokio::process::Command::new(env!("CARGO_BIN_EXE_psp-localnet"))
        .args(["--nodes", "3", "--discovery", "2", "--oracles", "1"])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .context("starting psp-localnet")?;
    let mut lines = BufReader::new(localnet.stdout.take().context("stdout")?).lines();
    let ready: Value = tokio::time::timeout(READY_TIMEOUT, lines.next_line())
        .await
        .context("psp-localnet was not ready in time")??
        .context("psp-localnet exited before it was ready")
        .and_then(|line| serde_json::from_str(&line).context("the ready line"))?;
    ensure!(ready["ready"] == true, "{ready:#}");
    let nodes = ready["nodes"].as_array().context("nodes")?;
    ensure!(nodes.len() == 3, "{ready:#}");
    let url = ready["url"].as_str().context("url")?.to_string();

    // What it announced holds: a directory of the three nodes signed by both discovery nodes,
    // checked by the CLI against the set elected on chain, and the oracle elected.
    let directory = psp_json(&["directory", "show", "--url", &url]).await?;
    ensure!(
        directory["entries"].as_array().map(Vec::len) == Some(3)
            && directory["verifiedSignatures"].as_u64() >= Some(2)
            && directory["trustedSet"] == "chain",
        "{directory:#}"
    );
    let chain = Chain::connect(&url).await?;
    ensure!(chain.staking_elected(Role::Oracle, None).await?.len() == 1);
    ensure!(chain.staking_elected(Role::Discovery, None).await?.len() == 2);
    let roles: Vec<&Value> = nodes.iter().map(|n| &n["roles"]).collect();
    ensure!(
        roles[0] == &serde_json::json!(["discovery"]) && roles[2] == &serde_json::json!(["oracle"]),
        "{ready:#}"
    );

    // SIGTERM: every node exits by itself, then the command.
    let pid = localnet.id().context("psp-localnet pid")?;
    let sent = std::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()?;
    ensure!(sent.success(), "kill -TERM failed");
    let stopped: Value = tokio::time::timeout(STOP_TIMEOUT, lines.next_line())
        .await
        .context("psp-localnet did not stop in time")??
        .context("no stopped line")
        .and_then(|line| serde_json::from_str(&line).context("the stopped line"))?;
    let exits = stopped["stopped"].as_array().context("stopped")?;
    ensure!(
        exits.len() == 3 && exits.iter().all(|e| e["exit"] == 0),
        "a node did not exit cleanly: {stopped:#}"
    );
    let status = tokio::time::timeout(STOP_TIMEOUT, localnet.wait()).await??;
    ensure!(status.success(), "psp-localnet exited with {status}");
    let closed = tokio::time::timeout(PSP_TIMEOUT, Chain::connect(&url)).await;
    ensure!(
        !matches!(closed, Ok(Ok(_))),
        "alice's RPC still answers after the stop"
    );
    Ok(())
}
