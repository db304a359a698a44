//! Stream latency between real processes, measured: the six-node `--chain local` network of
//! `tests/streams.rs` (Dave's node elected oracle), one stream created through the `psp` CLI
//! (landing node Bob's, access points Eve's and Ferdie's), `psp stream publish` sending the
//! test pattern, and one `psp stream watch` at each access point.
//!
//! ```text
//! cargo run -p psp-e2e-tests --example stream_latency -- [SECONDS] [FPS] [FRAME_BYTES]
//! ```
//! (defaults 20, 25, 1200; `PSP_NODE_BIN` and the `psp` binary as for the end-to-end tests).
//!
//! **Glass to glass** here is from the producer handing a frame (already SFrame-encrypted) to
//! its WebRTC data channel until a consumer has it decrypted: producer → landing node (WHIP)
//! → distribution node (the landing node's fan-out, WHIP) → consumer (WHEP), all on loopback.
//! Both ends write `<frame index> <unix µs>` lines (`--frame-log`); one machine, one clock.
//! No codec, capture or display is involved: it is the network path's share.

use anyhow::{bail, Context, Result};
use psp_client::psp_primitives::staking::Role;
use psp_e2e_tests::agent::{node_key, prepare_with_roles, start_messaging_nodes, AGENT_TIMEOUT};
use psp_e2e_tests::{psp_json, run_psp, run_scenario, wait_for, PspNode};
use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

/// The whole run after the nodes are up.
const RUN_TIMEOUT: Duration = Duration::from_secs(900);

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<()> {
    let mut args = std::env::args().skip(1).map(|a| a.parse::<u64>());
    let mut next = |default: u64| args.next().unwrap_or(Ok(default));
    let seconds = next(20).context("SECONDS")?.max(1);
    let fps = next(25).context("FPS")?.max(1);
    let frame_bytes = next(1_200).context("FRAME_BYTES")?.max(9);
    eprintln!("stream_latency: starting six psp-node processes");
    let nodes = start_messaging_nodes(false).await?;
    run_scenario(
        &nodes,
        RUN_TIMEOUT,
        bench(&nodes, seconds, fps, frame_bytes),
    )
    .await
}

/// `<index> <µs>` lines.
fn read_log(path: &Path) -> Result<HashMap<u64, u128>> {
    let text = std::fs::read_to_string(path).with_context(|| path.display().to_string())?;
    text.lines()
        .map(|line| {
            let (i, t) = line.split_once(' ').context("a frame log line")?;
            Ok((i.parse()?, t.parse()?))
        })
        .collect()
}

async fn bench(nodes: &[PspNode], seconds: u64, fps: u64, frame_bytes: u64) -> Result<()> {
    let dir = tempfile::tempdir()?;
    let prepared = prepare_with_roles(
        nodes,
        dir.path(),
        &["alice"],
        &[Role::Authority, Role::Oracle],
    )
    .await?;
    let (url, dave_url) = (prepared.url.clone(), prepared.dave_url.clone());
    let alice = &prepared.clients[0];
    let chain = psp_client::chain::Chain::connect(&url).await?;
    let dave_key = node_key(&nodes[5]).await?;
    wait_for("dave's receipt keys on chain", AGENT_TIMEOUT, || async {
        let epoch = chain
            .subscriptions_status()
            .await
            .map_err(|e| e.to_string())?
            .current_epoch;
        let keys = chain.receipt_keys(epoch).await.map_err(|e| e.to_string())?;
        match keys.iter().any(|k| k.oracle == dave_key) {
            true => Ok(Some(())),
            false => Err(format!("none for epoch {epoch}")),
        }
    })
    .await?;
    psp_json(&[
        "stream",
        "subscribe",
        "--plan",
        "0",
        "--epochs",
        "100",
        "--keystore",
        &alice.keystore,
        "--payer",
        "//Ferdie",
        "--url",
        &url,
    ])
    .await?;
    let (bob_key, eve_key, ferdie_key) = (
        node_key(&nodes[1]).await?,
        node_key(&nodes[3]).await?,
        node_key(&nodes[4]).await?,
    );
    let bob_url = nodes[1].url();
    let created = psp_json(&[
        "stream",
        "create",
        "--plan",
        "0",
        "--landing",
        &bob_url,
        "--distribution",
        &eve_key,
        "--distribution",
        &ferdie_key,
        "--authority-url",
        &dave_url,
        "--keystore",
        &alice.keystore,
        "--passphrase-file",
        &alice.pass,
        "--url",
        &url,
    ])
    .await?;
    let field = |name: &str| -> Result<String> {
        Ok(created[name].as_str().context(name.to_owned())?.to_owned())
    };
    let (stream, token, key) = (
        field("streamId")?,
        field("publishToken")?,
        field("streamKey")?,
    );

    let sent_log = dir.path().join("sent.log");
    let publish: Vec<String> = [
        "stream",
        "publish",
        "--landing",
        &bob_key,
        "--stream",
        &stream,
        "--token",
        &token,
        "--key",
        &key,
        "--fps",
        &fps.to_string(),
        "--frame-bytes",
        &frame_bytes.to_string(),
        "--duration",
        &seconds.to_string(),
        "--frame-log",
        &sent_log.display().to_string(),
        "--url",
        &url,
    ]
    .iter()
    .map(|a| a.to_string())
    .collect();
    let producer = tokio::spawn(async move {
        let args: Vec<&str> = publish.iter().map(String::as_str).collect();
        run_psp(&args, Duration::from_secs(seconds + 60)).await
    });
    let mut watchers = Vec::new();
    for (name, point) in [("eve", &eve_key), ("ferdie", &ferdie_key)] {
        // The access point serves the stream once the landing node's fan-out reached it.
        let log = dir.path().join(format!("{name}.log"));
        let args: Vec<String> = [
            "stream",
            "watch",
            "--landing",
            &bob_key,
            "--stream",
            &stream,
            "--access-point",
            point,
            "--key",
            &key,
            "--duration",
            &(seconds + 5).to_string(),
            "--frame-log",
            &log.display().to_string(),
            "--url",
            &url,
        ]
        .iter()
        .map(|a| a.to_string())
        .collect();
        let watcher = wait_for("the access point serving", AGENT_TIMEOUT, || {
            let args = args.clone();
            async move {
                let child = tokio::spawn(async move {
                    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
                    run_psp(&refs, Duration::from_secs(seconds + 60)).await
                });
                // A refused watch ends at once; one that connected keeps running.
                tokio::time::sleep(Duration::from_secs(2)).await;
                if child.is_finished() {
                    let run = child.await.map_err(|e| e.to_string())?;
                    Err(run.map(|r| r.stderr).unwrap_or_else(|e| e.to_string()))
                } else {
                    Ok(Some(child))
                }
            }
        })
        .await?;
        watchers.push((name, log, watcher));
    }
    let produced = producer.await??;
    if produced.code != Some(0) {
        bail!("psp stream publish failed: {}", produced.stderr);
    }
    let sent = read_log(&sent_log)?;
    for (name, log, watcher) in watchers {
        let run = watcher.await??;
        if run.code != Some(0) {
            bail!("psp stream watch at {name} failed: {}", run.stderr);
        }
        let received = read_log(&log)?;
        let mut latencies: Vec<u128> = received
            .iter()
            .filter_map(|(i, at)| at.checked_sub(*sent.get(i)?))
            .collect();
        latencies.sort_unstable();
        if latencies.is_empty() {
            bail!("{name}: no frame matched a sent one");
        }
        let pct = |p: usize| latencies[(latencies.len() * p / 100).min(latencies.len() - 1)];
        println!(
            "{name}: {} of {} frames ({} B at {fps}/s) glass to glass p50 {:.1} ms, p99 {:.1} \
             ms, max {:.1} ms",
            latencies.len(),
            sent.len(),
            frame_bytes,
            pct(50) as f64 / 1000.0,
            pct(99) as f64 / 1000.0,
            latencies[latencies.len() - 1] as f64 / 1000.0,
        );
    }
    Ok(())
}
