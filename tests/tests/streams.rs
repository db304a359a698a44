//! End to end: stream subscriptions and anonymous stream creation through real `psp-node`s,
//! driven by the `psp` CLI only (issue 13, points 1–5, 7 and 9).
//!
//! The six-node `--chain local` network of the messaging test (Alice, Bob and Charlie, the
//! genesis authorities; Dave, a validator; Eve and Ferdie, plain nodes). Dave's account bonds
//! and stands as authority *and* oracle, so Dave's node issues certificates and, once elected
//! oracle, makes receipt keys and publishes them on chain by itself (an unsigned transaction
//! signed with its node key). Two client identities, Alice and Mallory, are registered. Then:
//! - the oracle's keys for the current epoch appear on chain (`psp_receiptKeys`): one per plan
//!   and its consumer-token key;
//! - Ferdie's account pays Alice's subscription (`psp stream subscribe`): the rewards pot grows
//!   by exactly the plan's price times the epochs, and `psp stream subscription` shows it
//!   active;
//! - `psp stream create`: Alice draws a receipt from Dave's oracle over one circuit and Bob's
//!   node, as landing node, creates a stream with Eve's and Ferdie's nodes as access points
//!   over another; `psp stream show`, asked through Eve's node, finds the signed record in
//!   the DHT;
//! - the same receipt handed to Bob's node again is refused as spent, and handed to Charlie's
//!   node it is refused as drawn for another landing node;
//! - Mallory, not subscribed, is refused a receipt by the oracle;
//! - media: Alice publishes the test pattern (SFrame-encrypted with her stream key) into Bob's
//!   node for 30 s (`psp stream publish`); Bob's node fans it out to Eve's and Ferdie's; three
//!   `psp stream watch` consumers with the key decode 250 frames each, every one equal to what
//!   was sent; one without the key receives only ciphertext; headless Chromium on Ferdie's
//!   watch page decrypts in the page with WebCrypto and reports at least 100 intact frames;
//! - what the nodes learned (`--overlay-observe-file`): the landing and distribution nodes
//!   received nothing naming Alice in any service (stream creation, media signalling); the
//!   oracle did learn who asked (it must, to check the subscription).

use anyhow::{bail, ensure, Context, Result};
use psp_client::stream::ivf::Ivf;
use psp_client::{chain::Chain, psp_primitives::staking::Role};
use psp_e2e_tests::agent::{
    node_key, prepare_with_roles, start_messaging_nodes, Client, AGENT_TIMEOUT,
};
use psp_e2e_tests::browser::{next_report, percent_encode, Browser, ReportServer};
use psp_e2e_tests::{
    psp_json, psp_refused, psp_refuses_now, run_psp, run_scenario, wait_for, PspNode, PUZZLE_BITS,
};
use serde_json::Value;
use std::time::{Duration, Instant};

/// The whole scenario after startup.
const TEST_TIMEOUT: Duration = Duration::from_secs(600);
/// Epochs Alice's subscription is paid for.
const EPOCHS: u32 = 50;
/// The price of one epoch of plan 0 (`STREAM_PLAN_PRICE`, a thousandth of a token).
const PLAN_PRICE: u128 = 1_000_000_000;

/// `psp stream create` arguments for `client` at the landing node `landing_url`.
fn create_args<'a>(
    client: &'a Client,
    landing_url: &'a str,
    access: &'a [String],
    dave_url: &'a str,
    url: &'a str,
    extra: &[&'a str],
) -> Vec<&'a str> {
    let mut args = vec![
        "stream",
        "create",
        "--plan",
        "0",
        "--landing",
        landing_url,
        "--authority-url",
        dave_url,
        "--keystore",
        &client.keystore,
        "--passphrase-file",
        &client.pass,
        "--url",
        url,
    ];
    for key in access {
        args.extend(["--distribution", key.as_str()]);
    }
    args.extend(extra);
    args
}

async fn pot_balance(chain: &Chain) -> Result<u128> {
    let status = chain.rewards_status().await?;
    status
        .pot_balance
        .parse()
        .with_context(|| format!("pot balance {:?}", status.pot_balance))
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
    let dave_key = node_key(&nodes[5]).await?;

    // Dave's node publishes its receipt keys by itself once elected oracle.
    let t = Instant::now();
    let keys = wait_for(
        "dave's receipt keys on chain for the current epoch",
        AGENT_TIMEOUT,
        || async {
            let epoch = chain
                .subscriptions_status()
                .await
                .map_err(|e| e.to_string())?
                .current_epoch;
            let keys = chain.receipt_keys(epoch).await.map_err(|e| e.to_string())?;
            let dave: Vec<_> = keys.into_iter().filter(|k| k.oracle == dave_key).collect();
            if dave.is_empty() {
                Err(format!("no key of dave's for epoch {epoch}"))
            } else {
                Ok(Some(dave))
            }
        },
    )
    .await?;
    let tokens = keys.iter().filter(|k| k.tier.is_consumer_tokens()).count();
    ensure!(
        keys.len() == 3 && tokens == 1,
        "one key per plan and a consumer-token key expected, got {} ({tokens} token keys)",
        keys.len()
    );
    eprintln!(
        "dave's {} receipt keys on chain after {:?}",
        keys.len(),
        t.elapsed()
    );

    // Ferdie pays Alice's subscription into the rewards pot.
    let before = pot_balance(&chain).await?;
    let subscribed = psp_json(&[
        "stream",
        "subscribe",
        "--plan",
        "0",
        "--epochs",
        &EPOCHS.to_string(),
        "--keystore",
        &alice.keystore,
        "--payer",
        "//Ferdie",
        "--url",
        &url,
    ])
    .await?;
    let after = pot_balance(&chain).await?;
    ensure!(
        after - before == u128::from(EPOCHS) * PLAN_PRICE,
        "the pot grew by {} instead of {}",
        after - before,
        u128::from(EPOCHS) * PLAN_PRICE
    );
    ensure!(
        subscribed["subscription"]["active"] == true,
        "subscription not active: {subscribed}"
    );
    let shown = psp_json(&[
        "stream",
        "subscription",
        "--identity",
        &alice.key,
        "--url",
        &url,
    ])
    .await?;
    ensure!(
        shown["subscription"]["plan"]["plan"] == 0
            && shown["subscription"]["until"].as_u64()
                == subscribed["subscription"]["until"].as_u64(),
        "subscription shown: {shown}"
    );

    // Alice creates a stream at Bob's node with Eve's and Ferdie's as access points.
    let access = [node_key(&nodes[3]).await?, node_key(&nodes[4]).await?];
    let bob_url = nodes[1].url();
    let bob_key = node_key(&nodes[1]).await?;
    let receipt_file = dir.path().join("alice.receipt").display().to_string();
    let charlie_url = nodes[2].url();
    let t = Instant::now();
    let created = psp_json(&create_args(
        alice,
        &bob_url,
        &access,
        &dave_url,
        &charlie_url,
        &["--save-receipt", &receipt_file],
    ))
    .await?;
    let stream_id = created["streamId"]
        .as_str()
        .context("no streamId")?
        .to_owned();
    ensure!(
        created["landing"] == bob_key.as_str(),
        "landing node: {created}"
    );
    let points: Vec<&str> = created["accessPoints"]
        .as_array()
        .context("no accessPoints")?
        .iter()
        .filter_map(Value::as_str)
        .collect();
    ensure!(
        points == access,
        "access points {points:?}, asked {access:?}"
    );
    eprintln!("stream {stream_id} created after {:?}", t.elapsed());

    // Anyone holding the landing node and the stream id finds the signed record.
    let eve_url = nodes[3].url();
    let found = wait_for("the stream record in the DHT", AGENT_TIMEOUT, || async {
        match psp_json(&[
            "stream",
            "show",
            "--landing",
            &bob_key,
            "--stream",
            &stream_id,
            "--url",
            &eve_url,
        ])
        .await
        {
            Ok(v) => Ok(Some(v)),
            Err(e) => Err(e.to_string()),
        }
    })
    .await?;
    ensure!(
        found["streamId"] == stream_id.as_str() && found["accessPoints"] == created["accessPoints"],
        "record found: {found}"
    );

    // The same receipt again at the same landing node: refused as spent.
    psp_refused(
        &create_args(
            alice,
            &bob_url,
            &access,
            &dave_url,
            &charlie_url,
            &["--receipt", &receipt_file],
        ),
        "spent already",
    )
    .await?;

    // The receipt was drawn for Bob's node: Charlie's refuses it.
    psp_refused(
        &create_args(
            alice,
            &charlie_url,
            &access,
            &dave_url,
            &charlie_url,
            &["--receipt", &receipt_file],
        ),
        "another landing node",
    )
    .await?;

    // Mallory holds no subscription: the oracle issues her nothing.
    psp_refused(
        &create_args(mallory, &bob_url, &access, &dave_url, &charlie_url, &[]),
        "NotSubscribed",
    )
    .await?;

    let charlie_key = node_key(&nodes[2]).await?;
    media(nodes, &url, &created, &bob_key, &access, &charlie_key).await?;

    // What the landing, distribution and oracle services learned: Bob's, Eve's and Ferdie's
    // nodes received nothing naming Alice in any service (stream creation, media signalling);
    // Dave's oracle service did learn who asked.
    let alice_key = psp_client::parse_hex_vec(&alice.key, "alice's key")?;
    let landing_seen = nodes[1].observed()?;
    let landing_bytes = landing_seen
        .service_bytes
        .get("landing")
        .context("bob's landing service received nothing")?;
    for node in &nodes[1..5] {
        if node.name() == "charlie" {
            continue;
        }
        let seen = node.observed()?;
        for (service, bytes) in &seen.service_bytes {
            ensure!(
                !contains(bytes, &alice_key),
                "{}'s node received alice's identity key in its {service} service",
                node.name()
            );
        }
    }
    for (node, service) in [(1, "media-whip"), (3, "media-whip"), (3, "media-whep")] {
        ensure!(
            nodes[node].observed()?.service_bytes.contains_key(service),
            "{} observed no {service} request",
            nodes[node].name()
        );
    }
    let oracle_seen = nodes[5].observed()?;
    let oracle_bytes = oracle_seen
        .service_bytes
        .get("oracle")
        .context("dave's oracle service received nothing")?;
    ensure!(
        contains(oracle_bytes, &alice_key),
        "the oracle should have seen who asked"
    );
    eprintln!(
        "landing service: {} bytes received, none naming alice; oracle: {} bytes",
        landing_bytes.len(),
        oracle_bytes.len()
    );
    Ok(())
}

/// How long Alice publishes, and at what rate: 25 frames of 2,400 bytes a second, about
/// 0.49 Mbit/s per consumer, so the access points (`--media-capacity 1` in the tests) run hot
/// with two consumers each.
const PUBLISH_SECS: u64 = 45;
const FPS: u64 = 25;
const FRAME_BYTES: &str = "2400";
/// Frames each keyed Rust consumer must take (10 s of the stream).
const WATCH_FRAMES: u64 = 250;

/// `psp stream watch` of the stream at `access_point`, with the stream key or without.
async fn watch(
    url: &str,
    landing: &str,
    stream: &str,
    access_point: &str,
    key: Option<&str>,
    frames: u64,
) -> Result<Value> {
    let frames = frames.to_string();
    let bits = PUZZLE_BITS.to_string();
    let mut args = vec![
        "stream",
        "watch",
        "--landing",
        landing,
        "--stream",
        stream,
        "--access-point",
        access_point,
        "--frames",
        &frames,
        "--puzzle-bits",
        &bits,
        "--url",
        url,
    ];
    if let Some(key) = key {
        args.extend(["--key", key]);
    }
    psp_json(&args).await
}

/// The media path: Alice publishes the test pattern into Bob's node for [`PUBLISH_SECS`];
/// Eve's and Ferdie's nodes serve it to three Rust consumers with the key, one without, and
/// a headless Chromium on Ferdie's watch page, which decrypts in the page. Both access points
/// run hot: Bob's node asks Alice for a node, she adds her spare (Charlie's), the record
/// lists three access points and Charlie's node serves the stream. Then Alice ends it.
async fn media(
    nodes: &[PspNode],
    url: &str,
    created: &Value,
    bob_key: &str,
    access: &[String],
    spare: &str,
) -> Result<()> {
    let stream = created["streamId"].as_str().context("streamId")?.to_owned();
    let token = created["publishToken"]
        .as_str()
        .context("publishToken")?
        .to_owned();
    let key = created["streamKey"]
        .as_str()
        .context("streamKey")?
        .to_owned();
    let duration = PUBLISH_SECS.to_string();
    let fps = FPS.to_string();
    let publish_args = [
        "stream",
        "publish",
        "--landing",
        bob_key,
        "--stream",
        &stream,
        "--token",
        &token,
        "--key",
        &key,
        "--fps",
        &fps,
        "--frame-bytes",
        FRAME_BYTES,
        "--duration",
        &duration,
        "--spare",
        spare,
        "--url",
        url,
    ];
    let t = Instant::now();
    let producer = spawn_psp(&publish_args, Duration::from_secs(PUBLISH_SECS + 60));

    // The access points serve the stream once the landing node's fan-out reached them.
    let (eve, ferdie) = (&access[0], &access[1]);
    for point in [eve, ferdie] {
        wait_for(
            "the access point serving the stream",
            AGENT_TIMEOUT,
            || async {
                watch(url, bob_key, &stream, point, Some(&key), 5)
                    .await
                    .map(Some)
                    .map_err(|e| e.to_string())
            },
        )
        .await?;
    }
    eprintln!(
        "both access points serve the stream after {:?}",
        t.elapsed()
    );

    // Chromium on Ferdie's watch page, reporting what it decrypted.
    let (browser, mut reports) = open_watch_page(&nodes[4], &stream, &key, "").await?;

    let (a, b, c, keyless) = tokio::join!(
        watch(url, bob_key, &stream, eve, Some(&key), WATCH_FRAMES),
        watch(url, bob_key, &stream, ferdie, Some(&key), WATCH_FRAMES),
        watch(url, bob_key, &stream, eve, Some(&key), WATCH_FRAMES),
        watch(url, bob_key, &stream, ferdie, None, 50),
    );
    for (name, report) in [("first", a?), ("second", b?), ("third", c?)] {
        let frames = report["frames"].as_u64().unwrap_or(0);
        ensure!(
            frames >= WATCH_FRAMES
                && report["decrypted"].as_u64() == Some(frames)
                && report["patternOk"].as_u64() == Some(frames)
                && report["undecryptable"].as_u64() == Some(0),
            "the {name} consumer: {report}"
        );
    }
    let keyless = keyless?;
    ensure!(
        keyless["frames"].as_u64().unwrap_or(0) >= 50
            && keyless["decrypted"].as_u64() == Some(0)
            && keyless["clearPatternFrames"].as_u64() == Some(0),
        "the consumer without the key: {keyless}"
    );
    let seen = next_report(&mut reports, AGENT_TIMEOUT, |r| {
        r["patternOk"].as_u64().unwrap_or(0) >= 100
    })
    .await
    .with_context(|| format!("chromium's log:\n{}", browser.log_tail(40)))?;
    ensure!(
        seen["decrypted"] == seen["patternOk"] && seen["undecryptable"].as_u64() == Some(0),
        "the browser: {seen}"
    );
    eprintln!("three consumers and chromium decoded the stream; the keyless one saw ciphertext");

    let show = [
        "stream",
        "show",
        "--landing",
        bob_key,
        "--stream",
        &stream,
        "--url",
        url,
    ];
    // Scaling: the landing node asked for a node, Alice's spare is an access point now, in
    // the record in the DHT, and serves the stream.
    let shown = wait_for(
        "a third access point in the record",
        AGENT_TIMEOUT,
        || async {
            let shown = psp_json(&show).await.map_err(|e| e.to_string())?;
            let points = shown["accessPoints"].as_array().map_or(0, Vec::len);
            Ok((points == 3).then_some(shown))
        },
    )
    .await?;
    ensure!(
        shown["accessPoints"][2] == spare,
        "the spare is the new access point: {shown}"
    );
    let at_spare = watch(url, bob_key, &stream, spare, Some(&key), 25).await?;
    ensure!(
        at_spare["patternOk"].as_u64() == at_spare["frames"].as_u64()
            && at_spare["frames"].as_u64().unwrap_or(0) >= 25,
        "the consumer at the added access point: {at_spare}"
    );
    eprintln!(
        "the stream scaled to Charlie's node after {:?}",
        t.elapsed()
    );

    let published = producer.await??;
    let done = published
        .stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|e| e["event"] == "done")
        .with_context(|| format!("the producer did not finish: {}", published.stderr))?;
    ensure!(
        done["frames"].as_u64().unwrap_or(0) >= PUBLISH_SECS * FPS * 9 / 10,
        "the producer sent {done}"
    );
    ensure!(
        published.stdout.contains("\"event\":\"nodesAdded\""),
        "the producer added no node: {}",
        published.stdout
    );
    eprintln!("alice published {done} in {:?}", t.elapsed());

    video(nodes, url, bob_key, &stream, &token, access).await?;

    // Alice ends the stream: its record in the DHT says so, and it cannot be ended twice.
    let stop = [
        "stream",
        "stop",
        "--landing",
        bob_key,
        "--stream",
        &stream,
        "--token",
        &token,
        "--url",
        url,
    ];
    let stopped = psp_json(&stop).await?;
    ensure!(stopped["ended"] == true, "stop: {stopped}");
    wait_for(
        "the record to say the stream ended",
        AGENT_TIMEOUT,
        || async {
            let shown = psp_refuses_now(&show, "has ended").await?;
            Ok(shown)
        },
    )
    .await?;
    psp_refused(&stop, "already ended").await?;
    eprintln!("alice ended the stream");
    Ok(())
}

/// A real encoded video: Alice publishes a VP8 clip (IVF, `tests/fixtures`) into the same
/// stream under a fresh stream key; a Rust consumer at Ferdie's node gets every frame it sees
/// byte-exact, and headless Chromium on Eve's watch page decodes the pictures with WebCodecs.
async fn video(
    nodes: &[PspNode],
    url: &str,
    bob_key: &str,
    stream: &str,
    token: &str,
    access: &[String],
) -> Result<()> {
    let clip_path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/vp8-160x120-100f.ivf");
    let clip = std::fs::read(&clip_path).context("the VP8 fixture")?;
    let clip = Ivf::parse(&clip, 64 * 1024)?;
    let key = format!("0x{}", "5a".repeat(16));

    let (browser, mut reports) = open_watch_page(&nodes[3], stream, &key, "&codec=vp8").await?;
    next_report(&mut reports, AGENT_TIMEOUT, |r| r["state"] == "open")
        .await
        .with_context(|| format!("chromium's log:\n{}", browser.log_tail(40)))?;
    let bits = PUZZLE_BITS.to_string();
    let watch_args = [
        "stream",
        "watch",
        "--landing",
        bob_key,
        "--stream",
        stream,
        "--access-point",
        &access[1],
        "--key",
        &key,
        "--duration",
        "20",
        "--puzzle-bits",
        &bits,
        "--url",
        url,
    ];
    let consumer = spawn_psp(&watch_args, Duration::from_secs(60));
    // The consumer's channel opens within a second or two; the clip starts after.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let clip_arg = clip_path.display().to_string();
    let published = run_psp(
        &[
            "stream",
            "publish",
            "--landing",
            bob_key,
            "--stream",
            stream,
            "--token",
            token,
            "--key",
            &key,
            "--file",
            &clip_arg,
            "--url",
            url,
        ],
        Duration::from_secs(60),
    )
    .await?;
    ensure!(
        published
            .stdout
            .contains(&format!("\"frames\":{}", clip.frames.len())),
        "the clip was not sent whole: {} {}",
        published.stdout,
        published.stderr
    );

    let watched = consumer.await??;
    let seen: Value = serde_json::from_str(&watched.stdout)
        .with_context(|| format!("the consumer's report: {}", watched.stderr))?;
    let (first, last) = (
        seen["firstIndex"].as_u64().context("no frame decrypted")?,
        seen["lastIndex"].as_u64().context("no frame decrypted")?,
    );
    let expected = psp_client::stream::media::frames_digest(
        (first..=last).map(|i| (i, clip.frames[i as usize].as_slice())),
    );
    ensure!(
        last == clip.frames.len() as u64 - 1
            && seen["decrypted"].as_u64() == Some(last - first + 1)
            && seen["digest"] == expected.as_str(),
        "the Rust consumer's frames differ from the clip's: {seen}"
    );
    let decoded = next_report(&mut reports, AGENT_TIMEOUT, |r| {
        r["videoFrames"].as_u64().unwrap_or(0) >= 50
    })
    .await
    .with_context(|| format!("chromium's log:\n{}", browser.log_tail(40)))?;
    ensure!(
        decoded["videoWidth"] == 160
            && decoded["videoHeight"] == 120
            && decoded["videoErrors"] == 0
            && decoded["undecryptable"] == 0,
        "the browser's decoding: {decoded}"
    );
    eprintln!(
        "the VP8 clip: the Rust consumer got frames {first}..={last} byte-exact, chromium \
         decoded {} pictures of 160x120",
        decoded["videoFrames"]
    );
    Ok(())
}

/// Headless Chromium on `node`'s watch page of `stream` with `key` (and `extra` fragment
/// parameters), reporting what it decrypted once a second.
async fn open_watch_page(
    node: &PspNode,
    stream: &str,
    key: &str,
    extra: &str,
) -> Result<(Browser, tokio::sync::mpsc::Receiver<Value>)> {
    let (report_url, reports) = ReportServer::bind().await?;
    let media_url = node.media_url().context("the node's media service")?;
    // The page's session ticket, bought for this node as a consumer would.
    let ticket = psp_json(&[
        "stream",
        "ticket",
        "--stream",
        stream,
        "--access-point",
        &node_key(node).await?,
        "--puzzle-bits",
        &PUZZLE_BITS.to_string(),
        "--url",
        &node.url(),
    ])
    .await?;
    let admission = ticket["fragment"]
        .as_str()
        .context("psp stream ticket prints the fragment")?;
    let page = format!(
        "{media_url}/watch/{}#key={}{extra}{admission}&report={}",
        stream.trim_start_matches("0x"),
        key.trim_start_matches("0x"),
        percent_encode(&report_url)
    );
    // Console messages go to the browser's log, shown if the page does not report.
    let browser = Browser::open_with(&page, &["--enable-logging=stderr", "--v=0"])?;
    Ok((browser, reports))
}

/// `psp args...` in a task of its own.
fn spawn_psp(
    args: &[&str],
    timeout: Duration,
) -> tokio::task::JoinHandle<Result<psp_e2e_tests::PspRun>> {
    let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    tokio::spawn(async move {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        run_psp(&args, timeout).await
    })
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscribed_identity_creates_a_stream_anonymously() -> Result<()> {
    let nodes = start_messaging_nodes(true).await?;
    run_scenario(&nodes, TEST_TIMEOUT, scenario(&nodes)).await
}
