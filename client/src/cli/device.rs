//! `psp device`: devices' signed updates (issue 16, point 4) and data (point 5).
//! `sign-update` signs a payload's manifest with a publisher identity; `check-update` decides,
//! as a device would, whether to install it: the publisher it trusts, live on chain at the
//! latest finalized block, the signature, the payload's digest and length, the target, and a
//! version newer than the installed one. `publish` puts a reading as a signed DHT record of
//! the device identity; `watch` polls a device's readings through a node and prints, one JSON
//! line each, only those that validate here. The work is done by `psp_client::devices`.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use clap::Subcommand;
use psp_client::devices::data::Watch;
use psp_client::devices::update::{self, Device, Manifest};
use psp_client::dht::Publication;
use psp_client::messaging::chainview::status_of;
use psp_client::psp_net::driver::unix_now;
use psp_client::psp_net::registry::StaticRegistry;
use psp_client::psp_primitives::id_string::IdString;
use psp_client::{parse_hex, parse_hex_vec, Error, Result};

use super::common::{print_json, NodeArgs, PassArgs};

/// Largest payload file read.
const MAX_PAYLOAD_FILE: u64 = update::MAX_PAYLOAD;

#[derive(Debug, Subcommand)]
pub enum DeviceCommand {
    /// Sign an update: prints its manifest (JSON) for the payload file.
    SignUpdate {
        /// The publisher's keystore.
        #[arg(long)]
        keystore: PathBuf,
        #[command(flatten)]
        pass: PassArgs,
        /// What the payload is for (a firmware family, a model), 1 to 64 bytes.
        #[arg(long)]
        target: String,
        /// Its version.
        #[arg(long)]
        version: u64,
        /// The payload file.
        #[arg(long)]
        payload: PathBuf,
    },
    /// Publish a reading: a DHT record of kind reading, signed by the device identity,
    /// co-signed and stored by the node at --url. JSON on stdout.
    Publish {
        /// The device's keystore.
        #[arg(long)]
        keystore: PathBuf,
        #[command(flatten)]
        pass: PassArgs,
        /// What is measured (the record's topic label).
        #[arg(long)]
        topic: String,
        /// The reading, as text.
        #[arg(long)]
        value: String,
        /// Seconds the reading lives.
        #[arg(long, default_value_t = 600)]
        ttl: u64,
        #[command(flatten)]
        node: NodeArgs,
    },
    /// Watch a device's readings under a topic through the node at --url: one JSON line per
    /// new reading that validates here (owner, co-signer, signatures, expiry, newer sequence).
    Watch {
        /// The device: its id string or identity key (0x + 64 hex).
        device: String,
        /// What is measured.
        #[arg(long)]
        topic: String,
        /// Seconds between look-ups.
        #[arg(long, default_value_t = 5)]
        every: u64,
        /// Stop after this many readings (default: run until killed).
        #[arg(long)]
        count: Option<usize>,
        /// Stop after this many seconds (exit 1 if --count was not reached).
        #[arg(long)]
        timeout: Option<u64>,
        #[command(flatten)]
        node: NodeArgs,
    },
    /// Check an update as a device would; exit 1 with the reason if it is refused.
    CheckUpdate {
        /// The manifest file (from `sign-update`).
        #[arg(long)]
        manifest: PathBuf,
        /// The payload file.
        #[arg(long)]
        payload: PathBuf,
        /// The publisher the device trusts: its id string or identity key (0x + 64 hex).
        #[arg(long)]
        publisher: String,
        /// The device's target.
        #[arg(long)]
        target: String,
        /// The version the device runs.
        #[arg(long)]
        installed: u64,
        #[command(flatten)]
        node: NodeArgs,
    },
}

fn read_bounded(path: &PathBuf, what: &'static str) -> Result<Vec<u8>> {
    let invalid = |reason: String| Error::InvalidInput { what, reason };
    let len = std::fs::metadata(path)
        .map_err(|e| invalid(format!("{}: {e}", path.display())))?
        .len();
    if len > MAX_PAYLOAD_FILE {
        return Err(invalid(format!(
            "{}: {len} bytes, limit {MAX_PAYLOAD_FILE}",
            path.display()
        )));
    }
    std::fs::read(path).map_err(|e| invalid(format!("{}: {e}", path.display())))
}

/// An identity given as its id string or its key.
fn identity_key(text: &str, what: &'static str) -> Result<[u8; 32]> {
    if text.starts_with("0x") {
        return parse_hex::<32>(text, what);
    }
    IdString::parse(text)
        .map(|id| id.key)
        .map_err(|e| Error::InvalidInput {
            what,
            reason: format!("{e}; give an id string or 0x + 64 hex digits"),
        })
}

/// Polls the device's readings and prints each new valid one; see [`DeviceCommand::Watch`].
async fn watch(
    device: [u8; 32],
    topic: &str,
    every: Duration,
    count: Option<usize>,
    timeout: Option<Duration>,
    node: &NodeArgs,
) -> Result<()> {
    let chain = node.chain().await?;
    let rpc = node.rpc().await?;
    let mut watch = Watch::new(device, topic);
    let started = Instant::now();
    let mut seen = 0usize;
    loop {
        if let Some(record) = rpc.dht_get(watch.key()).await? {
            let bytes = parse_hex_vec(&record.record, "record")?;
            let publisher = parse_hex::<32>(&record.publisher, "publisher")?;
            // The statuses the record is checked against, read at the latest finalized block.
            let mut registry = StaticRegistry::default();
            for key in [device, publisher] {
                if let psp_net::registry::IdentityStatus::Active(kind) =
                    status_of(chain.identity_by_key(&key, None).await?.as_ref())
                {
                    registry.insert(key, kind);
                }
            }
            match watch.accept(&bytes, unix_now(), &registry) {
                Ok(Some(reading)) => {
                    println!("{}", serde_json::to_string(&reading).unwrap_or_default());
                    seen += 1;
                }
                Ok(None) => {}
                Err(e) => eprintln!("refused a record from the node: {e}"),
            }
        }
        if count.is_some_and(|c| seen >= c) {
            return Ok(());
        }
        if timeout.is_some_and(|t| started.elapsed() >= t) {
            return match count {
                Some(c) => Err(Error::InvalidInput {
                    what: "watch",
                    reason: format!("{seen} of {c} readings before the timeout"),
                }),
                None => Ok(()),
            };
        }
        tokio::time::sleep(every).await;
    }
}

/// Runs a `psp device` command.
pub async fn run(cmd: DeviceCommand) -> Result<()> {
    match cmd {
        DeviceCommand::SignUpdate {
            keystore,
            pass,
            target,
            version,
            payload,
        } => {
            let keys = pass.open(&keystore)?;
            let payload = read_bounded(&payload, "--payload")?;
            let manifest = update::sign(&keys, &target, version, &payload).map_err(|e| {
                Error::InvalidInput {
                    what: "update",
                    reason: e.to_string(),
                }
            })?;
            print_json(&manifest)
        }
        DeviceCommand::Publish {
            keystore,
            pass,
            topic,
            value,
            ttl,
            node,
        } => {
            let keys = pass.open(&keystore)?;
            let publication =
                Publication::labelled("reading", &topic, value.into_bytes(), ttl, None)?;
            print_json(&node.rpc().await?.dht_publish(&keys, &publication).await?)
        }
        DeviceCommand::Watch {
            device,
            topic,
            every,
            count,
            timeout,
            node,
        } => {
            let device = identity_key(&device, "device")?;
            watch(
                device,
                &topic,
                Duration::from_secs(every.max(1)),
                count,
                timeout.map(Duration::from_secs),
                &node,
            )
            .await
        }
        DeviceCommand::CheckUpdate {
            manifest,
            payload,
            publisher,
            target,
            installed,
            node,
        } => {
            let text = read_bounded(&manifest, "--manifest")?;
            let manifest: Manifest =
                serde_json::from_slice(&text).map_err(|e| Error::InvalidInput {
                    what: "--manifest",
                    reason: format!("not a manifest: {e}"),
                })?;
            let payload = read_bounded(&payload, "--payload")?;
            let trusted = identity_key(&publisher, "--publisher")?;
            let view = node.chain().await?.identity_by_key(&trusted, None).await?;
            let device = Device {
                trusted_publisher: trusted,
                target: &target,
                installed,
            };
            update::check(&device, &manifest, &payload, status_of(view.as_ref())).map_err(|e| {
                Error::InvalidInput {
                    what: "update refused",
                    reason: e.to_string(),
                }
            })?;
            print_json(&serde_json::json!({
                "accepted": true,
                "target": manifest.target,
                "version": manifest.version,
                "publisher": manifest.publisher,
            }))
        }
    }
}
