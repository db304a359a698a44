//! `psp stream`: realtime streams, created anonymously. `plans` and `subscription` show the
//! subscription plans and an identity's subscription; `subscribe` pays for one; `create` draws
//! a receipt from an elected oracle (proving the keystore's identity with a certificate from
//! an authority) and hands it to a landing node over a fresh anonymous circuit; `show` finds a
//! stream's record in the DHT and checks it; `publish` sends SFrame-encrypted frames into a
//! stream at its landing node; `watch` receives them at an access point, with a session
//! ticket bought from an elected oracle, checks them and, with a subscribed identity, reports
//! the session's usage to the oracles for the relays' rewards.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use clap::{Args, Subcommand};
use psp_client::{
    chain::Chain,
    hex0x, keystore,
    overlay::{self, CircuitOptions, Hop, NodeRpc, OverlayClient, RelayNode},
    parse_hex, parse_hex_vec,
    stream::{self, media, scaling, session, StreamClientError},
    Error, Result,
};
use rand::seq::SliceRandom;
use zeroize::Zeroizing;

use super::common::{finalized, payer_keypair, print_json, report, NodeArgs, PassArgs};

/// How often `watch` looks whether an epoch ended (to report its usage).
const REPORT_POLL: Duration = Duration::from_secs(2);

#[derive(Debug, Subcommand)]
pub enum StreamCommand {
    /// The subscription plans, the current epoch and receipts per epoch (JSON on stdout).
    Plans {
        #[command(flatten)]
        node: NodeArgs,
    },
    /// An identity's subscription (JSON on stdout; `subscription` is null without one).
    Subscription {
        #[command(flatten)]
        identity: IdentityArgs,
        #[command(flatten)]
        node: NodeArgs,
    },
    /// Subscribe an active client identity to a plan, paying every epoch in advance.
    Subscribe {
        /// The plan (see `psp stream plans`).
        #[arg(long)]
        plan: u8,
        /// How many epochs to pay for, from the current one.
        #[arg(long)]
        epochs: u32,
        #[command(flatten)]
        identity: IdentityArgs,
        /// The account that signs and pays (any account), as a secret URI such as //Alice.
        #[arg(long, env = "PSP_PAYER", hide_env_values = true)]
        payer: String,
        #[command(flatten)]
        node: NodeArgs,
    },
    /// Create a stream: draw a receipt of the plan from an elected oracle over one circuit,
    /// then have the landing node create the stream over another (JSON on stdout, progress on
    /// stderr).
    Create {
        /// The plan whose receipt to draw (within the subscription's).
        #[arg(long)]
        plan: u8,
        /// The landing node: its node key (0x + 64 hex digits) or its RPC URL (ws://...).
        #[arg(long)]
        landing: String,
        /// A distribution node (node key) serving the stream; repeat for more (at most the
        /// plan's allowance).
        #[arg(long = "distribution", required = true)]
        distribution: Vec<String>,
        /// An elected authority node's RPC URL, to get an access certificate from.
        #[arg(long, value_name = "URL")]
        authority_url: String,
        /// The keystore holding the subscribed identity.
        #[arg(long)]
        keystore: PathBuf,
        #[command(flatten)]
        pass: PassArgs,
        /// Seconds to build each circuit and for each node to answer.
        #[arg(long, default_value_t = 30)]
        timeout: u64,
        /// Also write the receipt drawn to this file (0600; whoever holds it can create the
        /// stream), e.g. to create it later or elsewhere with `--receipt`.
        #[arg(long, value_name = "FILE", conflicts_with = "receipt")]
        save_receipt: Option<PathBuf>,
        /// Use the receipt in this file (written by `--save-receipt`) instead of drawing one.
        #[arg(long, value_name = "FILE")]
        receipt: Option<PathBuf>,
        /// The stream key to print (16 bytes, hex); by default a fresh random one. Only the
        /// producer and her consumers hold it: it is never sent to a node.
        #[arg(long, value_name = "HEX")]
        stream_key: Option<String>,
        #[command(flatten)]
        node: NodeArgs,
    },
    /// Publish media into a stream at its landing node: SFrame-encrypted test-pattern frames
    /// (or a file's bytes) over WebRTC (WHIP). One JSON line per second on stdout
    /// (`{"event":"progress",...}`), then `{"event":"done",...}`.
    Publish {
        /// The landing node that created the stream: node key or RPC URL (ws://...).
        #[arg(long)]
        landing: String,
        /// The stream id, 0x + 64 hex digits.
        #[arg(long)]
        stream: String,
        /// The publish token `psp stream create` printed (`publishToken`).
        #[arg(long, value_name = "HEX")]
        token: String,
        /// The stream key `psp stream create` printed (`streamKey`).
        #[arg(long, value_name = "HEX")]
        key: String,
        /// Frames per second.
        #[arg(long, default_value_t = 25, value_parser = clap::value_parser!(u32).range(1..=1000))]
        fps: u32,
        /// Bytes of each test-pattern frame (before encryption).
        #[arg(long, default_value_t = 1200)]
        frame_bytes: usize,
        /// Seconds to publish.
        #[arg(long, default_value_t = 20)]
        duration: u64,
        /// Send this file instead of the test pattern, once: an IVF file (VP8, VP9, AV1 as
        /// `vpxenc`/`ffmpeg -f ivf` write it) one encoded frame per stream frame at its own
        /// frame rate; any other file 16 KiB per frame.
        #[arg(long, value_name = "FILE")]
        file: Option<PathBuf>,
        /// A distribution node (node key) to offer when the landing node asks for more (its
        /// access points near their capacity); repeat for more, offered in order. Without
        /// enough of them, random registered nodes with a media service are offered. Each
        /// addition prints `{"event":"nodesAdded",...}` (or `nodesRefused`).
        #[arg(long = "spare", value_name = "NODE_KEY")]
        spare: Vec<String>,
        /// Write `<frame index> <unix microseconds>` for every frame sent to this file (with
        /// `watch --frame-log`: the latency of every frame).
        #[arg(long, value_name = "FILE")]
        frame_log: Option<PathBuf>,
        #[command(flatten)]
        node: NodeArgs,
    },
    /// Watch a stream at one of its access points over WebRTC (WHEP): count the frames and,
    /// with the stream key, decrypt and check them (progress on stderr, JSON on stdout).
    Watch {
        /// The landing node that created the stream: node key or RPC URL.
        #[arg(long)]
        landing: String,
        /// The stream id, 0x + 64 hex digits.
        #[arg(long)]
        stream: String,
        /// The stream key; without it frames are only counted.
        #[arg(long, value_name = "HEX")]
        key: Option<String>,
        /// The access point (node key) to watch at; by default a random one of the record's.
        #[arg(long, value_name = "NODE_KEY")]
        access_point: Option<String>,
        /// Stop after this many frames.
        #[arg(long, conflicts_with = "duration")]
        frames: Option<u64>,
        /// Stop after this many seconds.
        #[arg(long)]
        duration: Option<u64>,
        /// Write `<frame index> <unix microseconds>` for every frame decrypted to this file.
        #[arg(long, value_name = "FILE")]
        frame_log: Option<PathBuf>,
        /// Leading zero bits of work in the session puzzle (at least what the oracles ask:
        /// their `--usage-puzzle-bits`, 20 by default).
        #[arg(long, value_name = "BITS", default_value_t = psp_client::psp_net::usage::puzzle::DEFAULT_DIFFICULTY)]
        puzzle_bits: u8,
        /// Report the session's usage for bandwidth rewards with this keystore's subscribed
        /// identity (a consumer token per epoch; needs --authority-url). After watching, waits
        /// for the epoch to end to report it.
        #[arg(long, requires = "authority_url")]
        keystore: Option<PathBuf>,
        #[command(flatten)]
        pass: PassArgs,
        /// An elected authority node's RPC URL, for the access certificate that proves the
        /// identity to the oracles (with --keystore).
        #[arg(long, value_name = "URL")]
        authority_url: Option<String>,
        /// Seconds to build each circuit and for each oracle to answer.
        #[arg(long, default_value_t = 30)]
        timeout: u64,
        #[command(flatten)]
        node: NodeArgs,
    },
    /// Buy a session ticket from an elected oracle and print the admission that lets one
    /// consumer watch a stream at one access point (JSON on stdout: `fragment` goes after the
    /// watch page's `#key=...`). `watch` does this by itself.
    Ticket {
        /// The stream id, 0x + 64 hex digits.
        #[arg(long)]
        stream: String,
        /// The access point (node key) the admission is for.
        #[arg(long, value_name = "NODE_KEY")]
        access_point: String,
        /// Leading zero bits of work in the session puzzle.
        #[arg(long, value_name = "BITS", default_value_t = psp_client::psp_net::usage::puzzle::DEFAULT_DIFFICULTY)]
        puzzle_bits: u8,
        /// Seconds to build the circuit and for the oracle to answer.
        #[arg(long, default_value_t = 30)]
        timeout: u64,
        #[command(flatten)]
        node: NodeArgs,
    },
    /// End a stream at its landing node with its publish token: the producer's connection
    /// and every consumer's are closed, the record in the DHT is replaced by one that has
    /// expired (JSON on stdout).
    Stop {
        /// The landing node that created the stream: node key or RPC URL (ws://...).
        #[arg(long)]
        landing: String,
        /// The stream id, 0x + 64 hex digits.
        #[arg(long)]
        stream: String,
        /// The publish token `psp stream create` printed (`publishToken`).
        #[arg(long, value_name = "HEX")]
        token: String,
        #[command(flatten)]
        node: NodeArgs,
    },
    /// Find a stream's record in the DHT and check it (JSON on stdout).
    Show {
        /// The landing node that created it: node key or RPC URL.
        #[arg(long)]
        landing: String,
        /// The stream id, 0x + 64 hex digits.
        #[arg(long)]
        stream: String,
        #[command(flatten)]
        node: NodeArgs,
    },
}

// Whose subscription: by key, or a keystore's (no passphrase needed).
#[derive(Debug, Args)]
#[group(required = true, multiple = false)]
pub struct IdentityArgs {
    /// The client identity key, 0x + 64 hex digits.
    #[arg(long)]
    identity: Option<String>,
    /// Or: a keystore whose identity key to use (no passphrase needed).
    #[arg(long)]
    keystore: Option<PathBuf>,
}

impl IdentityArgs {
    fn key(&self) -> Result<[u8; 32]> {
        match (&self.identity, &self.keystore) {
            (Some(key), _) => parse_hex::<32>(key, "--identity"),
            (None, Some(path)) => Ok(keystore::load_public(path)?.sr25519),
            (None, None) => Err(Error::InvalidInput {
                what: "--identity / --keystore",
                reason: "say whose subscription".into(),
            }),
        }
    }
}

/// The library's stream errors as the crate's: their messages are printed as they are.
fn cli_error(e: StreamClientError) -> Error {
    match e {
        StreamClientError::Client(e) => e,
        other => Error::Stream(Box::new(other)),
    }
}

/// A node given by key (must be among `nodes`, the registered ones) or by RPC URL.
async fn node_arg(text: &str, nodes: &[RelayNode], what: &'static str) -> Result<RelayNode> {
    if text.starts_with("ws://") || text.starts_with("wss://") {
        let info = NodeRpc::connect(text).await?.overlay_info().await?;
        let key = parse_hex::<32>(&info.node_id, "psp_overlayInfo nodeId")?;
        if let Some(n) = nodes.iter().find(|n| n.key() == key) {
            return Ok(n.clone());
        }
        return match Hop::from_node_url(text).await? {
            Hop::Described(n) => Ok(n),
            Hop::Registered(_) => unreachable!("from_node_url describes"),
        };
    }
    let key = parse_hex::<32>(text, what)?;
    nodes
        .iter()
        .find(|n| n.key() == key)
        .cloned()
        .ok_or_else(|| Error::UnknownHop {
            hop: hex0x(&key),
            registered: nodes.len(),
        })
}

/// A node key given as hex, or the key of the node at a URL.
async fn node_key(text: &str, what: &'static str) -> Result<[u8; 32]> {
    let (key, url) = if text.starts_with("ws://") || text.starts_with("wss://") {
        (None, Some(text))
    } else {
        (Some(text), None)
    };
    overlay::node_key(key, url, what)
        .await?
        .ok_or_else(|| Error::InvalidInput {
            what,
            reason: "empty".into(),
        })
}

/// Runs a `psp stream` command.
pub async fn run(cmd: StreamCommand) -> Result<()> {
    match cmd {
        StreamCommand::Plans { node } => {
            print_json(&node.chain().await?.subscriptions_status().await?)
        }
        StreamCommand::Subscription { identity, node } => {
            let key = identity.key()?;
            let chain = node.chain().await?;
            let status = chain.subscriptions_status().await?;
            print_json(&serde_json::json!({
                "identity": hex0x(&key),
                "currentEpoch": status.current_epoch,
                "subscription": chain.subscription(&key).await?,
            }))
        }
        StreamCommand::Subscribe {
            plan,
            epochs,
            identity,
            payer,
            node,
        } => {
            let key = identity.key()?;
            let payer = payer_keypair(&payer)?;
            let chain = node.chain().await?;
            let outcome = chain.subscribe(&payer, key, plan, epochs, report).await?;
            finalized(
                &format!(
                    "subscribed {} to plan {plan} for {epochs} epoch(s)",
                    hex0x(&key)
                ),
                &outcome,
            );
            print_json(&serde_json::json!({
                "identity": hex0x(&key),
                "block": hex0x(&outcome.block_hash),
                "subscription": chain.subscription(&key).await?,
            }))
        }
        StreamCommand::Create {
            plan,
            landing,
            distribution,
            authority_url,
            keystore,
            pass,
            timeout,
            save_receipt,
            receipt,
            stream_key,
            node,
        } => {
            let stream_key = match stream_key {
                Some(text) => media::parse_stream_key(&text, "--stream-key")?,
                None => Zeroizing::new(media::generate_stream_key().to_vec()),
            };
            let keys = pass.open(&keystore)?;
            let distribution = distribution
                .iter()
                .map(|d| parse_hex::<32>(d, "--distribution"))
                .collect::<Result<Vec<_>>>()?;
            let timeout = Duration::from_secs(timeout.max(1));
            let chain = node.chain().await?;
            let nodes = overlay::registered_nodes(&chain).await?;
            let landing = node_arg(&landing, &nodes, "--landing").await?;
            eprintln!("asking {authority_url} for an access certificate");
            let view = NodeRpc::connect(&authority_url)
                .await?
                .request_certificate(&keys)
                .await?;
            let certificate = parse_hex_vec(&view.certificate, "psp_certRequest certificate")?;
            let options = CircuitOptions {
                build_timeout: timeout,
                idle_timeout: timeout,
                ..CircuitOptions::default()
            };
            let overlay = OverlayClient::new(options)?;
            let progress = |p: stream::StreamProgress| eprintln!("  {p}");
            let receipts = ReceiptFiles {
                save: save_receipt,
                load: receipt,
            };
            let result = create(
                &chain,
                &overlay,
                &nodes,
                &keys,
                &certificate,
                plan,
                &landing,
                distribution,
                timeout,
                &receipts,
                progress,
            )
            .await;
            overlay.shutdown().await;
            let (created, token) = result.map_err(cli_error)?;
            print_json(&CreateView {
                stream: created.view(),
                publish_token: hex0x(&token),
                stream_key: hex0x(&stream_key),
            })
        }
        StreamCommand::Publish {
            landing,
            stream: id,
            token,
            key,
            fps,
            frame_bytes,
            duration,
            file,
            spare,
            frame_log,
            node,
        } => {
            let stream_id = stream::parse_stream_id(&id, "--stream")?;
            let token = parse_hex::<32>(&token, "--token")?;
            let spares = scaling::parse_spares(&spare)?;
            let key = media::parse_stream_key(&key, "--key")?;
            let (source, fps) = match file {
                Some(path) => {
                    let data = std::fs::read(&path).map_err(|e| Error::InvalidInput {
                        what: "--file",
                        reason: format!("{}: {e}", path.display()),
                    })?;
                    match media::Source::from_file(data)? {
                        (source, Some(video)) => {
                            eprintln!(
                                "{}: {} video, {}x{}, {} frames at {} frames/s",
                                path.display(),
                                video.fourcc,
                                video.width,
                                video.height,
                                video.frames.len(),
                                video.fps
                            );
                            (source, video.fps)
                        }
                        (source, None) => (source, fps),
                    }
                }
                None => (media::Source::Pattern { frame_bytes }, fps),
            };
            let mut publisher = media::Publisher::new(&key, source)?;
            let landing = node_key(&landing, "--landing").await?;
            let chain = node.chain().await?;
            let url = chain.media_url(&landing).await.map_err(cli_error)?;
            eprintln!("publishing into {} at {url}", hex0x(&stream_id.0));
            let mut client = media::connect(
                &landing,
                &url,
                &stream_id,
                media::Credentials::Publish(&token),
            )
            .await
            .map_err(cli_error)?;
            let options = media::PublishOptions {
                fps,
                duration: Duration::from_secs(duration),
            };
            let line = |event: &str, p: media::PublishProgress| {
                let line =
                    serde_json::json!({"event": event, "frames": p.frames, "bytes": p.bytes});
                println!("{line}");
            };
            let mut log = frame_log
                .as_deref()
                .map(media::FrameLog::create)
                .transpose()?;
            let mut supply = scaling::NodeSupply::new(
                chain.clone(),
                node.rpc().await?,
                landing,
                url.clone(),
                stream_id,
                token,
                spares,
            );
            let (asks, mut asked) = tokio::sync::mpsc::channel::<u8>(4);
            let supplier = tokio::spawn(async move {
                while let Some(count) = asked.recv().await {
                    eprintln!("the landing node asks for {count} more distribution node(s)");
                    let line = match supply.supply(count).await {
                        Ok(added) => serde_json::json!({
                            "event": "nodesAdded", "nodes": added.nodes, "answer": added.answer,
                        }),
                        Err(e) => {
                            eprintln!("warning: {e}");
                            serde_json::json!({"event": "nodesRefused", "reason": e.to_string()})
                        }
                    };
                    println!("{line}");
                }
            });
            let sent = media::publish_logged(
                &mut client,
                &mut publisher,
                options,
                log.as_mut(),
                |p| line("progress", p),
                |message| match scaling::need_nodes(&message) {
                    // A request while one is being answered waits for the next one.
                    Some(count) => {
                        let _ = asks.try_send(count);
                    }
                    None => eprintln!("warning: unexpected message from the landing node ignored"),
                },
            )
            .await;
            drop(asks);
            supplier.abort();
            let sent = match sent {
                Ok(sent) => sent,
                Err(source) => {
                    return Err(cli_error(StreamClientError::Media {
                        node: hex0x(&landing),
                        url,
                        step: "publishing (WHIP)",
                        hint: "the landing node closed the connection: the stream may have expired, or the publisher exceeded the stream's bitrate class",
                        source,
                    }))
                }
            };
            tokio::time::sleep(media::LINGER).await;
            client.close().await;
            line("done", sent);
            Ok(())
        }
        StreamCommand::Watch {
            landing,
            stream: id,
            key,
            access_point,
            frames,
            duration,
            frame_log,
            puzzle_bits,
            keystore,
            pass,
            authority_url,
            timeout,
            node,
        } => {
            let stream_id = stream::parse_stream_id(&id, "--stream")?;
            let key = key
                .map(|k| media::parse_stream_key(&k, "--key"))
                .transpose()?;
            let keys = keystore.as_deref().map(|k| pass.open(k)).transpose()?;
            let timeout = Duration::from_secs(timeout.max(1));
            let landing = node_key(&landing, "--landing").await?;
            let chain = node.chain().await?;
            let rpc = node.rpc().await?;
            let view = stream::show_stream(&rpc, &chain, &landing, &stream_id)
                .await
                .map_err(cli_error)?;
            let nodes = overlay::registered_nodes(&chain).await?;
            let overlay = Arc::new(OverlayClient::new(CircuitOptions {
                build_timeout: timeout,
                idle_timeout: timeout,
                ..CircuitOptions::default()
            })?);
            eprintln!("buying a session ticket from an elected oracle ({puzzle_bits}-bit puzzle)");
            let ticket =
                session::open_session(&chain, &overlay, &nodes, puzzle_bits, timeout, |p| {
                    eprintln!("  {p}")
                })
                .await
                .map_err(cli_error)?;
            eprintln!("  session ticket from oracle {}", hex0x(&ticket.oracle()));
            let (access_point, mut client) = connect_to_access_point(
                &chain,
                &view,
                access_point.as_deref(),
                &stream_id,
                &ticket,
            )
            .await?;
            let meter = Arc::new(Mutex::new(
                ticket.meter(chain.genesis_hash(), &access_point),
            ));
            let mut watcher =
                media::Watcher::new(hex0x(&access_point), key.as_deref().map(|k| &k[..]))?
                    .with_meter(meter.clone());
            if let Some(path) = &frame_log {
                watcher = watcher.with_log(media::FrameLog::create(path)?);
            }
            let limit = media::WatchLimit {
                frames,
                duration: duration.map(Duration::from_secs),
            };
            let mut reporter = match (keys, authority_url) {
                (Some(keys), Some(url)) => {
                    eprintln!("asking {url} for an access certificate (usage reports)");
                    let view = NodeRpc::connect(&url)
                        .await?
                        .request_certificate(&keys)
                        .await?;
                    let certificate =
                        parse_hex_vec(&view.certificate, "psp_certRequest certificate")?;
                    Some(session::Reporter::new(
                        chain.clone(),
                        overlay.clone(),
                        nodes.clone(),
                        keys,
                        certificate,
                        ticket.id(),
                        meter,
                        timeout,
                    ))
                }
                _ => None,
            };
            let mut reports = Vec::new();
            if let Some(reporter) = reporter.as_mut() {
                // A token the oracles cannot issue yet (keys of a new epoch not installed) is
                // tried again every REPORT_POLL while watching.
                match reporter.step().await {
                    Ok(done) => reports.extend(done),
                    Err(e) => eprintln!("warning: no consumer token yet (retried): {e}"),
                }
            }
            let watching = media::watch(&mut client, &mut watcher, limit, |r| {
                eprintln!(
                    "  frames {} bytes {} decrypted {} pattern ok {} undecryptable {}",
                    r.frames, r.bytes, r.decrypted, r.pattern_ok, r.undecryptable
                )
            });
            match reporter.as_mut() {
                Some(reporter) => {
                    // Epochs that end while watching are reported while watching.
                    tokio::pin!(watching);
                    let mut every = tokio::time::interval(REPORT_POLL);
                    loop {
                        tokio::select! {
                            () = &mut watching => break,
                            _ = every.tick() => match reporter.step().await {
                                Ok(done) => reports.extend(done),
                                Err(e) => eprintln!("warning: usage not reported yet: {e}"),
                            },
                        }
                    }
                }
                None => watching.await,
            }
            client.close().await;
            if let Some(reporter) = reporter.as_mut() {
                eprintln!("waiting for the epoch to end to report the session's usage");
                reports.extend(reporter.finish(REPORT_POLL).await.map_err(cli_error)?);
            }
            overlay.shutdown().await;
            let mut report = serde_json::to_value(watcher.report()).unwrap_or_default();
            report["session"] = serde_json::json!(hex0x(&ticket.id()));
            report["usageReports"] = serde_json::to_value(&reports).unwrap_or_default();
            print_json(&report)
        }
        StreamCommand::Ticket {
            stream: id,
            access_point,
            puzzle_bits,
            timeout,
            node,
        } => {
            let stream_id = stream::parse_stream_id(&id, "--stream")?;
            let point = parse_hex::<32>(&access_point, "--access-point")?;
            let timeout = Duration::from_secs(timeout.max(1));
            let chain = node.chain().await?;
            let nodes = overlay::registered_nodes(&chain).await?;
            let overlay = OverlayClient::new(CircuitOptions {
                build_timeout: timeout,
                idle_timeout: timeout,
                ..CircuitOptions::default()
            })?;
            let opened =
                session::open_session(&chain, &overlay, &nodes, puzzle_bits, timeout, |p| {
                    eprintln!("  {p}")
                })
                .await;
            overlay.shutdown().await;
            let ticket = opened.map_err(cli_error)?;
            let headers = ticket.headers(&point, &stream_id);
            let header = |name: &str| {
                headers
                    .iter()
                    .find(|(n, _)| n == name)
                    .map(|(_, v)| v.clone())
                    .unwrap_or_default()
            };
            let admission = header(session::ADMISSION_HEADER);
            let challenge = header(session::CHALLENGE_HEADER);
            print_json(&serde_json::json!({
                "session": hex0x(&ticket.id()),
                "oracle": hex0x(&ticket.oracle()),
                "accessPoint": hex0x(&point),
                "admission": admission,
                "challenge": challenge,
                "fragment": format!("&admission={admission}&challenge={challenge}"),
            }))
        }
        StreamCommand::Stop {
            landing,
            stream: id,
            token,
            node,
        } => {
            let stream_id = stream::parse_stream_id(&id, "--stream")?;
            let token = parse_hex::<32>(&token, "--token")?;
            let landing = node_key(&landing, "--landing").await?;
            let chain = node.chain().await?;
            let url = chain.media_url(&landing).await.map_err(cli_error)?;
            let answer = scaling::end_stream(&landing, &url, &stream_id, &token)
                .await
                .map_err(cli_error)?;
            eprintln!("stream {} ended at {url}", hex0x(&stream_id.0));
            print_json(&serde_json::json!({
                "stream": hex0x(&stream_id.0),
                "landing": hex0x(&landing),
                "ended": true,
                "answer": answer,
            }))
        }
        StreamCommand::Show {
            landing,
            stream: id,
            node,
        } => {
            let landing = node_key(&landing, "--landing").await?;
            let stream_id = stream::parse_stream_id(&id, "--stream")?;
            let chain = node.chain().await?;
            let rpc = node.rpc().await?;
            let view = stream::show_stream(&rpc, &chain, &landing, &stream_id)
                .await
                .map_err(cli_error)?;
            print_json(&view)
        }
    }
}

/// What `psp stream create` prints: the record, and what the producer needs to publish.
#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct CreateView {
    #[serde(flatten)]
    stream: stream::StreamView,
    /// The token the landing node expects from the producer (from the receipt).
    publish_token: String,
    /// The stream key frames are encrypted under (the producer's, never sent to a node).
    stream_key: String,
}

/// The access points to try, in order: `given` (a node key; a warning if the record does
/// not list it), or the record's in random order (consumers spread over them).
fn choose_access_points(view: &stream::StreamView, given: Option<&str>) -> Result<Vec<[u8; 32]>> {
    if let Some(text) = given {
        let key = parse_hex::<32>(text, "--access-point")?;
        if !view.access_points.contains(&hex0x(&key)) {
            eprintln!(
                "warning: {} is not an access point of the stream's record",
                hex0x(&key)
            );
        }
        return Ok(vec![key]);
    }
    if view.access_points.is_empty() {
        return Err(cli_error(StreamClientError::NoAccessPoint {
            stream_id: view.stream_id.clone(),
        }));
    }
    let mut points = view
        .access_points
        .iter()
        .map(|p| parse_hex::<32>(p, "record access point"))
        .collect::<Result<Vec<_>>>()?;
    points.shuffle(&mut rand::thread_rng());
    Ok(points)
}

/// Connects to the first access point that takes the consumer: one that is full (503), does
/// not serve the stream yet (404) or cannot be reached is skipped for the next. The error of
/// the last one if none does.
async fn connect_to_access_point(
    chain: &Chain,
    view: &stream::StreamView,
    given: Option<&str>,
    stream_id: &psp_client::psp_net::stream::record::StreamId,
    ticket: &session::Session,
) -> Result<([u8; 32], psp_webrtc::WebRtcClient)> {
    let points = choose_access_points(view, given)?;
    let mut last = None;
    for point in points {
        let url = match chain.media_url(&point).await {
            Ok(url) => url,
            Err(e) => {
                eprintln!("  skipping {}: {e}", hex0x(&point));
                last = Some(e);
                continue;
            }
        };
        eprintln!("watching {} at {} ({url})", view.stream_id, hex0x(&point));
        let headers = ticket.headers(&point, stream_id);
        match media::connect(&point, &url, stream_id, media::Credentials::Watch(headers)).await {
            Ok(client) => return Ok((point, client)),
            Err(e) => {
                eprintln!("  {e}");
                last = Some(e);
            }
        }
    }
    Err(cli_error(last.unwrap_or(
        StreamClientError::NoAccessPoint {
            stream_id: view.stream_id.clone(),
        },
    )))
}

/// Where `create` saves the receipt it draws, or loads one instead of drawing.
struct ReceiptFiles {
    save: Option<PathBuf>,
    load: Option<PathBuf>,
}

impl ReceiptFiles {
    fn load(&self) -> Result<Option<stream::DrawnReceipt>> {
        let Some(path) = &self.load else {
            return Ok(None);
        };
        let text = std::fs::read_to_string(path).map_err(|e| Error::InvalidInput {
            what: "--receipt",
            reason: format!("{}: {e}", path.display()),
        })?;
        let bytes = parse_hex_vec(text.trim(), "--receipt")?;
        let receipt = psp_client::psp_net::receipts::Receipt::decode(&bytes).map_err(|e| {
            Error::InvalidInput {
                what: "--receipt",
                reason: format!("{}: not a receipt: {e}", path.display()),
            }
        })?;
        Ok(Some(stream::DrawnReceipt {
            receipt,
            oracle: [0; 32],
            path: Vec::new(),
        }))
    }

    fn save(&self, drawn: &stream::DrawnReceipt) -> Result<()> {
        match &self.save {
            Some(path) => {
                keystore::write_private(path, hex0x(&drawn.receipt.encode()).as_bytes(), true)
            }
            None => Ok(()),
        }
    }
}

#[allow(clippy::too_many_arguments)]
async fn create(
    chain: &Chain,
    overlay: &OverlayClient,
    nodes: &[RelayNode],
    keys: &keystore::Keys,
    certificate: &[u8],
    plan: u8,
    landing: &RelayNode,
    distribution: Vec<[u8; 32]>,
    timeout: Duration,
    receipts: &ReceiptFiles,
    mut progress: impl FnMut(stream::StreamProgress),
) -> std::result::Result<(stream::CreatedStream, [u8; 32]), StreamClientError> {
    let drawn = match receipts.load()? {
        Some(drawn) => drawn,
        None => {
            let drawn = stream::draw_receipt(
                chain,
                overlay,
                nodes,
                keys,
                certificate,
                plan,
                &landing.key(),
                timeout,
                &mut progress,
            )
            .await?;
            receipts.save(&drawn)?;
            drawn
        }
    };
    let registry = stream::node_registry(nodes);
    let created = stream::create_stream(
        overlay,
        nodes,
        landing,
        &drawn,
        distribution,
        &registry,
        timeout,
        &mut progress,
    )
    .await?;
    Ok((created, media::publish_token_of(&drawn.receipt)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(subcommand)]
        command: StreamCommand,
    }

    fn parse(args: &[&str]) -> std::result::Result<StreamCommand, clap::Error> {
        Cli::try_parse_from(std::iter::once("stream").chain(args.iter().copied()))
            .map(|c| c.command)
    }

    const ID: &str = "0x0505050505050505050505050505050505050505050505050505050505050505";

    #[test]
    fn stream_cli_publish_and_watch_parse() {
        let cmd = parse(&[
            "publish",
            "--landing",
            "ws://127.0.0.1:9944",
            "--stream",
            ID,
            "--token",
            "00",
            "--key",
            "11",
            "--fps",
            "50",
        ])
        .unwrap();
        let StreamCommand::Publish {
            fps,
            frame_bytes,
            duration,
            file,
            node,
            ..
        } = cmd
        else {
            panic!("publish: {cmd:?}");
        };
        assert_eq!((fps, frame_bytes, duration, file), (50, 1200, 20, None));
        assert_eq!(node.url, "ws://127.0.0.1:9944");
        assert!(parse(&["publish", "--landing", "x", "--stream", ID, "--token", "00"]).is_err());
        assert!(parse(&[
            "publish",
            "--landing",
            "x",
            "--stream",
            ID,
            "--token",
            "00",
            "--key",
            "11",
            "--fps",
            "0"
        ])
        .is_err());

        let cmd = parse(&["watch", "--landing", "x", "--stream", ID, "--frames", "10"]).unwrap();
        let StreamCommand::Watch {
            key,
            access_point,
            frames,
            duration,
            ..
        } = cmd
        else {
            panic!("watch: {cmd:?}");
        };
        assert_eq!(
            (key, access_point, frames, duration),
            (None, None, Some(10), None)
        );
        let both = [
            "watch",
            "--landing",
            "x",
            "--stream",
            ID,
            "--frames",
            "1",
            "--duration",
            "2",
        ];
        assert!(parse(&both).is_err());

        let cmd = parse(&[
            "create",
            "--plan",
            "0",
            "--landing",
            "x",
            "--distribution",
            "y",
            "--authority-url",
            "ws://a",
            "--keystore",
            "k",
            "--stream-key",
            "22",
        ])
        .unwrap();
        assert!(matches!(cmd, StreamCommand::Create { stream_key: Some(k), .. } if k == "22"));
    }

    #[test]
    fn stream_cli_stop_and_spares_parse() {
        let cmd = parse(&["stop", "--landing", "x", "--stream", ID, "--token", "00"]).unwrap();
        assert!(matches!(cmd, StreamCommand::Stop { token, .. } if token == "00"));
        assert!(parse(&["stop", "--landing", "x", "--stream", ID]).is_err());
        let cmd = parse(&[
            "publish",
            "--landing",
            "x",
            "--stream",
            ID,
            "--token",
            "00",
            "--key",
            "11",
            "--spare",
            "0xaa",
            "--spare",
            "0xbb",
        ])
        .unwrap();
        assert!(matches!(cmd, StreamCommand::Publish { spare, .. } if spare == ["0xaa", "0xbb"]));
    }

    #[test]
    fn stream_cli_picks_an_access_point_of_the_record() {
        let mut view = stream::StreamView {
            stream_id: ID.into(),
            landing: hex0x(&[1; 32]),
            access_points: vec![hex0x(&[2; 32]), hex0x(&[3; 32])],
            formats: vec!["webrtc"],
            created_at: 0,
            expires_at: 1,
            dht_key: hex0x(&[0; 32]),
            record: "0x".into(),
        };
        let mut firsts = std::collections::HashSet::new();
        for _ in 0..64 {
            let mut keys = choose_access_points(&view, None).unwrap();
            firsts.insert(keys[0]);
            keys.sort();
            assert_eq!(keys, vec![[2; 32], [3; 32]], "every access point, once");
        }
        assert_eq!(firsts.len(), 2, "consumers spread: either comes first");
        assert_eq!(
            choose_access_points(&view, Some(&hex0x(&[4; 32]))).unwrap(),
            vec![[4; 32]]
        );
        assert!(choose_access_points(&view, Some("0x12")).is_err());
        view.access_points.clear();
        let e = choose_access_points(&view, None).unwrap_err().to_string();
        assert!(e.contains("--access-point"), "{e}");
    }

    #[test]
    fn stream_cli_create_prints_the_token_and_key() {
        let view = stream::StreamView {
            stream_id: ID.into(),
            landing: hex0x(&[1; 32]),
            access_points: vec![],
            formats: vec!["webrtc"],
            created_at: 0,
            expires_at: 1,
            dht_key: hex0x(&[0; 32]),
            record: "0x".into(),
        };
        let json = serde_json::to_value(CreateView {
            stream: view,
            publish_token: hex0x(&[9; 32]),
            stream_key: hex0x(&[8; 16]),
        })
        .unwrap();
        assert_eq!(json["streamId"], ID);
        assert_eq!(json["publishToken"], hex0x(&[9; 32]));
        assert_eq!(json["streamKey"], hex0x(&[8; 16]));
    }
}
