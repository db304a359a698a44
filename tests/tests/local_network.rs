//! End to end: a `--chain local` network of the three authorities Alice, Bob and Charlie on
//! loopback (distinct free ports, Bob and Charlie bootstrapped from Alice's fixed peer id)
//! connects and finalizes: every node's finalized block reaches #3, and all three agree on
//! the finalized block hash at a common height.

use anyhow::{ensure, Context, Result};
use psp_client::chain::Chain;
use psp_e2e_tests::{
    block_hash_at, finalized_head, node_binary, node_key_for, peer_id_of_node_key, run_scenario,
    start_local_network, wait_for, PspNode,
};
use std::time::{Duration, Instant};

/// Finality needs all three authorities up and connected; allow for slow starts.
const FINALITY_TIMEOUT: Duration = Duration::from_secs(240);
/// The whole scenario, startup included.
const TEST_TIMEOUT: Duration = Duration::from_secs(600);

/// The peer id the harness derives from a node key is the one psp-node itself derives.
fn derived_peer_id_matches_the_node() -> Result<()> {
    let key = node_key_for("alice");
    let dir = tempfile::tempdir()?;
    let file = dir.path().join("node-key");
    std::fs::write(
        &file,
        key.iter().map(|b| format!("{b:02x}")).collect::<String>(),
    )?;
    let out = std::process::Command::new(node_binary()?)
        .args(["key", "inspect-node-key", "--file"])
        .arg(&file)
        .output()
        .context("running psp-node key inspect-node-key")?;
    ensure!(
        out.status.success(),
        "inspect-node-key failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let from_node = String::from_utf8_lossy(&out.stdout).trim().to_string();
    ensure!(
        from_node == peer_id_of_node_key(&key)?,
        "psp-node says {from_node}, the harness derived {}",
        peer_id_of_node_key(&key)?
    );
    Ok(())
}

async fn scenario(nodes: &[PspNode]) -> Result<()> {
    let mut chains = Vec::new();
    for n in nodes {
        chains.push((n.name(), Chain::connect(&n.url()).await?));
    }
    let genesis = chains[0].1.genesis_hash();
    for (name, chain) in &chains {
        ensure!(
            chain.genesis_hash() == genesis,
            "{name} is on another chain"
        );
    }
    let start = Instant::now();
    for (name, chain) in &chains {
        let (n, hash) = wait_for(
            &format!("{name} finalizing block #3"),
            FINALITY_TIMEOUT.saturating_sub(start.elapsed()),
            || async {
                match finalized_head(chain).await {
                    Ok((n, hash)) if n >= 3 => Ok(Some((n, hash))),
                    Ok((n, _)) => Err(format!("finalized #{n}")),
                    Err(e) => Err(format!("{e:#}")),
                }
            },
        )
        .await?;
        eprintln!("{name}: finalized #{n} {hash} after {:?}", start.elapsed());
    }
    // Every node has finalized at least #3 now; compare hashes at the lowest finalized height.
    let mut heights = Vec::new();
    for (_, chain) in &chains {
        heights.push(finalized_head(chain).await?.0);
    }
    let common = heights.iter().copied().min().context("no nodes")?;
    ensure!(common >= 3, "common finalized height {common}");
    let mut hashes = Vec::new();
    for (name, chain) in &chains {
        let hash = block_hash_at(chain, common)
            .await?
            .with_context(|| format!("{name} has no block #{common}"))?;
        eprintln!("{name}: #{common} = {hash}");
        hashes.push(hash);
    }
    ensure!(
        hashes.iter().all(|h| *h == hashes[0]),
        "the nodes disagree on finalized block #{common}: {hashes:?}"
    );
    for (name, chain) in &chains {
        let health: serde_json::Value = chain
            .rpc()
            .request("system_health", psp_client::subxt::rpcs::rpc_params![])
            .await?;
        let peers = health.get("peers").and_then(|p| p.as_u64()).unwrap_or(0);
        ensure!(peers >= 2, "{name} has {peers} peers: {health}");
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_authorities_form_a_finalizing_network() -> Result<()> {
    derived_peer_id_matches_the_node()?;
    let started = Instant::now();
    let nodes = start_local_network(&["alice", "bob", "charlie"], None).await?;
    eprintln!(
        "alice, bob, charlie answering RPC after {:?}",
        started.elapsed()
    );
    run_scenario(&nodes, TEST_TIMEOUT, scenario(&nodes)).await?;
    eprintln!("network finalized and agreed after {:?}", started.elapsed());
    Ok(())
}
