//! End to end: the rewards loop closes (issue 14) through real `psp-node`s, driven by the
//! `psp` CLI.
//!
//! The six-node `--chain local` network of the messaging test. Three oracles: Dave's node
//! (standing as authority and oracle) and Alice's and Bob's nodes (their accounts bond and
//! stand as oracles). Each elected oracle publishes its receipt keys and its consumer-token
//! key by itself. Then:
//! - Alice and Mallory, two client identities, hold subscriptions; Alice creates a stream at
//!   Charlie's node with Eve's and Ferdie's nodes as its two access points and publishes the
//!   test pattern into it for longer than two epochs;
//! - at Eve's access point: a WHEP request without a session ticket, with a forged ticket and
//!   with an admission used before are refused (401, with the reason);
//! - two consumers, Alice at Eve's node and Mallory at Ferdie's, each buy a session ticket
//!   from an elected oracle (`psp stream watch`: a puzzle over a 3-hop circuit), watch across
//!   at least one epoch boundary and report their usage of every epoch, with a consumer token
//!   of that epoch, to every oracle of it over circuits; the relays report theirs over the
//!   oracle exchange;
//! - with no person acting, every oracle submits its batches on chain
//!   (`PspRewards::submit_reports_by_node`): all three oracles report an epoch of Eve's relay;
//!   then Bob's node stops, and the epochs after it settle with the two oracles left (a
//!   quorum of two thirds; an epoch before the stop that one oracle missed under load settles
//!   the same way); Eve's credit equals what Alice reported, within the pallet's tolerance; Ferdie's
//!   node lies (a test network's `--test-inflate-usage 50`: it reports half as much again as
//!   it sent) and is credited nothing, the dispute counted against it;
//! - once the epochs close, `psp rewards claim` by Eve (her node's owner) pays her: her balance
//!   rises by what the pallet computed, less the claim's fee.

use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};
use psp_client::stream::media::{connect, Credentials};
use psp_client::stream::StreamClientError;
use psp_client::{chain::Chain, psp_primitives::staking::Role};
use psp_e2e_tests::agent::{
    node_key, prepare_with_roles, start_messaging_nodes_with, Client, AGENT_TIMEOUT,
};
use psp_e2e_tests::{psp_json, psp_ok, run_psp, run_scenario, wait_for, PspNode, PUZZLE_BITS};
use serde_json::Value;

/// The whole scenario after startup.
const TEST_TIMEOUT: Duration = Duration::from_secs(900);
/// Elections take effect at an epoch boundary, keys are published in the epoch after.
const ORACLES_TIMEOUT: Duration = Duration::from_secs(240);
/// Epochs each subscription pays for.
const EPOCHS: &str = "50";
/// Seconds each consumer watches: more than two epochs of 30 s.
const WATCH_SECS: u64 = 70;
/// Seconds the producer publishes (the consumers start a few seconds after it).
const PUBLISH_SECS: u64 = 90;
/// The pallet's tolerance between the two sides' byte counts.
const TOLERANCE: f64 = 0.05;
/// An epoch closes (its rewards can be claimed) when the epoch after next starts.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(180);

/// Bonds and stands `node` as an oracle, signed by `payer`.
async fn stand_oracle(node: &PspNode, payer: &str, url: &str) -> Result<()> {
    psp_ok(&[
        "stake", "bond", "--amount", "2000", "--payer", payer, "--url", url,
    ])
    .await?;
    psp_ok(&[
        "stake",
        "candidate",
        "--role",
        "oracle",
        "--node-url",
        &node.url(),
        "--payer",
        payer,
        "--url",
        url,
    ])
    .await?;
    Ok(())
}

/// `psp stream watch` by `client` at `point` for [`WATCH_SECS`], reporting its usage.
fn watch_args(
    client: &Client,
    landing: &str,
    stream: &str,
    point: &str,
    dave_url: &str,
    url: &str,
) -> Vec<String> {
    [
        "stream",
        "watch",
        "--landing",
        landing,
        "--stream",
        stream,
        "--access-point",
        point,
        "--duration",
        &WATCH_SECS.to_string(),
        "--puzzle-bits",
        &PUZZLE_BITS.to_string(),
        "--keystore",
        &client.keystore,
        "--passphrase-file",
        &client.pass,
        "--authority-url",
        dave_url,
        "--url",
        url,
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

/// `psp args...` in a task of its own; its standard output.
fn spawn_psp(args: Vec<String>, timeout: Duration) -> tokio::task::JoinHandle<Result<String>> {
    tokio::spawn(async move {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let run = run_psp(&args, timeout).await?;
        ensure!(
            run.code == Some(0),
            "psp {} failed:\n{}",
            args.join(" "),
            run.stderr
        );
        Ok(run.stdout)
    })
}

/// The status a WHEP request with `headers` at `node` gets, and its reason.
async fn refused_at(
    url: &str,
    node: &[u8; 32],
    stream: &psp_client::psp_net::stream::record::StreamId,
    headers: Vec<(String, String)>,
) -> Result<String> {
    match connect(node, url, stream, Credentials::Watch(headers)).await {
        Ok(client) => {
            client.close().await;
            bail!("the access point took the consumer")
        }
        Err(StreamClientError::Media { source, .. }) => Ok(source.to_string()),
        Err(e) => bail!("unexpected error: {e}"),
    }
}

/// For each (relay, epoch): the most oracles seen reporting it, and its credit then.
type Seen = Arc<Mutex<BTreeMap<([u8; 32], u32), (usize, u64)>>>;

/// Records, for each relay and epoch, the most oracles seen reporting it and its credit then,
/// polling the reporting epoch (and the one before) every two seconds.
async fn watch_reports(chain: Chain, relays: [[u8; 32]; 2], seen: Seen) {
    loop {
        if let Ok(Some(reporting)) = chain.rewards_status().await.map(|s| s.reporting_epoch) {
            for epoch in [reporting.saturating_sub(1), reporting] {
                for relay in relays {
                    let Ok(Some(view)) = chain.relay_epoch(&relay, epoch).await else {
                        continue;
                    };
                    let mut seen = seen.lock().unwrap_or_else(|e| e.into_inner());
                    let entry = seen.entry((relay, epoch)).or_insert((0, 0));
                    if view.reports.len() >= entry.0 {
                        *entry = (view.reports.len(), view.credited_bytes);
                    }
                }
            }
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
}

fn header_pairs(ticket: &Value) -> Result<Vec<(String, String)>> {
    let field = |name: &str| -> Result<String> {
        Ok(ticket[name]
            .as_str()
            .with_context(|| format!("ticket without {name}: {ticket}"))?
            .to_owned())
    };
    Ok(vec![
        ("PSP-Admission".into(), field("admission")?),
        ("PSP-Challenge".into(), field("challenge")?),
    ])
}

/// The consumers' reports per epoch: the bytes, and how many oracles accepted the report.
fn reported(watch: &Value) -> Result<BTreeMap<u64, (u64, u64)>> {
    let reports = watch["usageReports"]
        .as_array()
        .with_context(|| format!("no usageReports: {watch}"))?;
    let mut by_epoch = BTreeMap::new();
    for r in reports {
        let epoch = r["epoch"].as_u64().context("report epoch")?;
        let bytes = r["bytes"].as_u64().context("report bytes")?;
        let accepted = r["accepted"].as_u64().context("report accepted")?;
        // Two of three once Bob's node stopped; what reached the chain is checked below.
        ensure!(
            r["oracles"] == 3 && accepted >= 2,
            "a report not taken by a quorum of the three oracles: {r}"
        );
        by_epoch.insert(epoch, (bytes, accepted));
    }
    Ok(by_epoch)
}

async fn scenario(nodes: &[PspNode]) -> Result<()> {
    let dir = tempfile::tempdir()?;
    let prepared = prepare_with_roles(
        nodes,
        dir.path(),
        &["alice", "mallory"],
        &[Role::Authority, Role::Oracle],
    )
    .await?;
    let (url, dave_url) = (prepared.url.clone(), prepared.dave_url.clone());
    let [alice, mallory] = &prepared.clients[..] else {
        bail!("two clients");
    };
    let chain = Chain::connect(&url).await?;

    // Three oracles: Dave's node, and Alice's and Bob's.
    let t = Instant::now();
    stand_oracle(&nodes[0], "//Alice", &url).await?;
    stand_oracle(&nodes[1], "//Bob", &url).await?;
    let oracles: HashSet<String> = [
        node_key(&nodes[5]).await?,
        node_key(&nodes[0]).await?,
        node_key(&nodes[1]).await?,
    ]
    .into();
    let epoch = wait_for(
        "three elected oracles with consumer-token keys on chain",
        ORACLES_TIMEOUT,
        || async {
            let epoch = chain
                .subscriptions_status()
                .await
                .map_err(|e| e.to_string())?
                .current_epoch;
            let keys = chain.receipt_keys(epoch).await.map_err(|e| e.to_string())?;
            let with_tokens: HashSet<String> = keys
                .iter()
                .filter(|k| k.tier.is_consumer_tokens())
                .map(|k| k.oracle.clone())
                .collect();
            if with_tokens == oracles {
                Ok(Some(epoch))
            } else {
                Err(format!("epoch {epoch}: token keys of {with_tokens:?}"))
            }
        },
    )
    .await?;
    eprintln!(
        "three oracles with token keys in epoch {epoch} after {:?}",
        t.elapsed()
    );

    for (client, payer) in [(alice, "//Ferdie"), (mallory, "//Eve")] {
        psp_json(&[
            "stream",
            "subscribe",
            "--plan",
            "0",
            "--epochs",
            EPOCHS,
            "--keystore",
            &client.keystore,
            "--payer",
            payer,
            "--url",
            &url,
        ])
        .await?;
    }

    // A stream at Charlie's node, served by Eve's and Ferdie's.
    let charlie_key = node_key(&nodes[2]).await?;
    let access = [node_key(&nodes[3]).await?, node_key(&nodes[4]).await?];
    let mut create = vec![
        "stream",
        "create",
        "--plan",
        "0",
        "--landing",
        &charlie_key,
        "--authority-url",
        &dave_url,
        "--keystore",
        &alice.keystore,
        "--passphrase-file",
        &alice.pass,
        "--url",
        &url,
    ];
    for key in &access {
        create.extend(["--distribution", key.as_str()]);
    }
    let created = psp_json(&create).await?;
    let stream = created["streamId"]
        .as_str()
        .context("no streamId")?
        .to_owned();
    let key = created["streamKey"]
        .as_str()
        .context("no streamKey")?
        .to_owned();
    let token = created["publishToken"]
        .as_str()
        .context("no publishToken")?
        .to_owned();
    let publisher = spawn_psp(
        [
            "stream",
            "publish",
            "--landing",
            &charlie_key,
            "--stream",
            &stream,
            "--token",
            &token,
            "--key",
            &key,
            "--duration",
            &PUBLISH_SECS.to_string(),
            "--url",
            &url,
        ]
        .iter()
        .map(|s| s.to_string())
        .collect(),
        Duration::from_secs(PUBLISH_SECS + 60),
    );

    // Refused at Eve's access point: no ticket, a forged one, an admission used before.
    let eve_media = nodes[3].media_url().context("eve's media service")?;
    let eve_key = psp_client::parse_hex::<32>(&access[0], "eve")?;
    let stream_id = psp_client::stream::parse_stream_id(&stream, "stream")?;
    let ticket = psp_json(&[
        "stream",
        "ticket",
        "--stream",
        &stream,
        "--access-point",
        &access[0],
        "--puzzle-bits",
        &PUZZLE_BITS.to_string(),
        "--url",
        &url,
    ])
    .await?;
    let none = refused_at(&eve_media, &eve_key, &stream_id, Vec::new()).await?;
    ensure!(
        none.contains("401") && none.contains("no session ticket"),
        "{none}"
    );
    let mut forged = header_pairs(&ticket)?;
    // The last byte of the ticket's oracle signature (admission: version, ticket, key, proof).
    let admission = &mut forged[0].1;
    let at = 2 * (1 + 177) - 2;
    let flipped = if &admission[at..at + 2] == "00" {
        "01"
    } else {
        "00"
    };
    admission.replace_range(at..at + 2, flipped);
    let forged = refused_at(&eve_media, &eve_key, &stream_id, forged).await?;
    ensure!(
        forged.contains("401") && forged.contains("signature does not verify"),
        "{forged}"
    );
    let honest = wait_for("eve's node serving the stream", AGENT_TIMEOUT, || async {
        match connect(
            &eve_key,
            &eve_media,
            &stream_id,
            Credentials::Watch(header_pairs(&ticket).map_err(|e| e.to_string())?),
        )
        .await
        {
            Ok(client) => Ok(Some(client)),
            // Not served until the landing node's fan-out connects: the admission was not
            // spent (the stream check comes first).
            Err(e) if e.to_string().contains("404") => Err(e.to_string()),
            Err(e) => Err(format!("unexpected: {e}")),
        }
    })
    .await?;
    honest.close().await;
    let replayed = refused_at(&eve_media, &eve_key, &stream_id, header_pairs(&ticket)?).await?;
    ensure!(
        replayed.contains("401") && replayed.contains("already admitted"),
        "{replayed}"
    );
    eprintln!("eve's node refused: {none} / {forged} / {replayed}");

    // What the oracles report is visible while the epoch after is current (the reporting
    // window); closed epochs are pruned. Watch it while the consumers watch the stream.
    let relay_keys = [
        psp_client::parse_hex::<32>(&access[0], "eve")?,
        psp_client::parse_hex::<32>(&access[1], "ferdie")?,
    ];
    let seen = Seen::default();
    let monitor = tokio::spawn(watch_reports(chain.clone(), relay_keys, seen.clone()));

    // Two consumers across epoch boundaries, reporting their usage.
    let t = Instant::now();
    let watch_timeout = Duration::from_secs(WATCH_SECS + 120);
    let watchers = [
        spawn_psp(
            watch_args(alice, &charlie_key, &stream, &access[0], &dave_url, &url),
            watch_timeout,
        ),
        spawn_psp(
            watch_args(mallory, &charlie_key, &stream, &access[1], &dave_url, &url),
            watch_timeout,
        ),
    ];
    // Once every oracle reported an epoch, Bob's node (an oracle) stops: the epochs after
    // settle with the other two, a quorum.
    let first = wait_for(
        "an epoch reported by all three oracles",
        CLOSE_TIMEOUT,
        || async {
            if watchers.iter().any(|w| w.is_finished()) {
                return Ok(Some(None)); // a consumer stopped early: its error is below
            }
            let seen = seen.lock().map_err(|e| e.to_string())?;
            let full = seen
                .iter()
                .find(|((relay, _), (reporters, _))| *relay == relay_keys[0] && *reporters == 3)
                .map(|((_, epoch), _)| Some(*epoch));
            Ok(full)
        },
    )
    .await?;
    let Some(first) = first else {
        for watcher in watchers {
            if watcher.is_finished() {
                let out = watcher.await??;
                bail!("a consumer stopped before any epoch was reported: {out}");
            }
        }
        bail!("a consumer stopped early");
    };
    nodes[1].stop();
    let stopped_in = chain
        .rewards_status()
        .await?
        .current_epoch
        .context("current epoch")?;
    eprintln!(
        "epoch {first} reported by all three oracles; bob's node stopped in epoch {stopped_in}"
    );

    let mut by_relay = Vec::new();
    for (watcher, relay) in watchers.into_iter().zip(&access) {
        let watched: Value = serde_json::from_str(&watcher.await??).context("watch JSON")?;
        let epochs = reported(&watched)?;
        ensure!(
            epochs.len() >= 2,
            "a consumer reported {} epoch(s), expected at least two: {watched}",
            epochs.len()
        );
        eprintln!(
            "consumer at {relay} reported {epochs:?} after {:?}",
            t.elapsed()
        );
        by_relay.push((relay.clone(), epochs));
    }
    let published = publisher.await??;
    let done = published.lines().last().unwrap_or_default();
    eprintln!("publisher: {done}");

    // Every oracle submitted by itself: epoch `first` was reported by all three (above). The
    // other epochs settle with a quorum: an oracle may miss an epoch's one-epoch window, or the
    // consumer's half, under load, and from the stop on only two are left.
    for ((relay, epochs), key) in by_relay.iter().zip(relay_keys) {
        for (&epoch, &(_, accepted)) in epochs {
            let epoch = epoch as u32;
            let reporters = wait_for(
                &format!("a quorum of oracles' reports of {relay} in epoch {epoch}"),
                CLOSE_TIMEOUT,
                || async {
                    let reporters = seen
                        .lock()
                        .map_err(|e| e.to_string())?
                        .get(&(key, epoch))
                        .map_or(0, |(reporters, _)| *reporters);
                    if reporters >= 2 {
                        Ok(Some(reporters))
                    } else {
                        Err(format!("{reporters} oracles reported"))
                    }
                },
            )
            .await?;
            eprintln!(
                "{relay} epoch {epoch}: {reporters} oracles reported, \
                 {accepted} took the consumer's half"
            );
        }
    }
    monitor.abort();
    ensure!(
        by_relay[0].1.keys().any(|e| *e as u32 >= stopped_in),
        "no epoch of traffic after bob's node stopped: {:?}",
        by_relay[0].1
    );

    // The honest relay is credited what its consumer reported; the lying one nothing.
    let credits: BTreeMap<(u8, u32), u64> = seen
        .lock()
        .map_err(|e| anyhow::anyhow!("{e}"))?
        .iter()
        .map(|((key, epoch), (_, credit))| ((key[0], *epoch), *credit))
        .collect();
    for ((relay, epochs), key) in by_relay.iter().zip(relay_keys) {
        for (&epoch, &(bytes, _)) in epochs {
            let credit = credits.get(&(key[0], epoch as u32)).copied().unwrap_or(0);
            if *relay == access[1] {
                // The lying relay: beyond the tolerance, nothing counts.
                ensure!(
                    credit == 0,
                    "ferdie's node inflated its report and was credited {credit} bytes \
                     (its consumer reported {bytes})"
                );
            } else {
                let off = (credit as f64 - bytes as f64).abs() / bytes.max(1) as f64;
                ensure!(
                    off <= TOLERANCE,
                    "{relay} epoch {epoch}: credited {credit} bytes, the consumer reported {bytes}"
                );
            }
            eprintln!("{relay} epoch {epoch}: credited {credit} of {bytes} reported bytes");
        }
    }

    let ferdie_key = psp_client::parse_hex::<32>(&access[1], "ferdie")?;
    let disputes = chain.relay_rewards(&ferdie_key).await?.disputes;
    ensure!(disputes > 0, "the lying relay's disputes are not counted");
    eprintln!("ferdie's node: credited nothing, {disputes} disputes");

    // Eve, the honest relay's owner, claims once the epochs close.
    for ((relay, epochs), owner) in by_relay.iter().zip(["//Eve"]) {
        let last = *epochs.keys().next_back().context("epochs")?;
        let status = wait_for(
            &format!("{relay}'s epochs closed"),
            CLOSE_TIMEOUT,
            || async {
                let status = psp_json(&["rewards", "status", "--relay", relay, "--url", &url])
                    .await
                    .map_err(|e| e.to_string())?;
                let pending = status["relay"]["rewards"]["pending"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default();
                let closed = pending
                    .iter()
                    .any(|p| p["epoch"].as_u64() == Some(last) && !p["amount"].is_null());
                Ok(closed.then_some(status))
            },
        )
        .await?;
        let claimable: u128 = status["relay"]["rewards"]["claimable"]
            .as_str()
            .context("claimable")?
            .parse()?;
        let owner_account = psp_client::chain::keypair_from_suri(owner, "owner")?
            .public_key()
            .0;
        let before = chain.balance(&owner_account, None).await?.free;
        let claimed = psp_json(&[
            "rewards", "claim", "--relay", relay, "--payer", owner, "--url", &url,
        ])
        .await?;
        let block = psp_client::parse_hex::<32>(
            claimed["block"].as_str().context("claim block")?,
            "block",
        )?;
        let after = chain.balance(&owner_account, Some(block)).await?.free;
        let amount: u128 = claimed["claimed"].as_str().context("claimed")?.parse()?;
        let fee: u128 = claimed["fee"].as_str().context("fee")?.parse()?;
        ensure!(
            amount >= claimable && amount > 0,
            "claimed {amount}, claimable was {claimable}"
        );
        ensure!(
            after + fee == before + amount,
            "{owner}'s balance went from {before} to {after} claiming {amount} (fee {fee})"
        );
        eprintln!("{owner} claimed {amount} for {relay} (fee {fee})");
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relays_are_paid_for_the_traffic_their_consumers_report() -> Result<()> {
    // Ferdie's node lies about the bytes it sends.
    let nodes = start_messaging_nodes_with(false, |options| {
        if options.name == "ferdie" {
            options
                .extra_args
                .extend(["--test-inflate-usage".to_string(), "50".to_string()]);
        }
    })
    .await?;
    run_scenario(&nodes, TEST_TIMEOUT, scenario(&nodes)).await
}
