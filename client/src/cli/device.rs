//! `psp device`: devices' signed updates (issue 16, point 4). `sign-update` signs a payload's
//! manifest with a publisher identity; `check-update` decides, as a device would, whether to
//! install it: the publisher it trusts, live on chain at the latest finalized block, the
//! signature, the payload's digest and length, the target, and a version newer than the
//! installed one. The work is done by `psp_client::devices::update`.

use std::path::PathBuf;

use clap::Subcommand;
use psp_client::devices::update::{self, Device, Manifest};
use psp_client::messaging::chainview::status_of;
use psp_client::psp_primitives::id_string::IdString;
use psp_client::{parse_hex, Error, Result};

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

fn publisher_key(text: &str) -> Result<[u8; 32]> {
    if text.starts_with("0x") {
        return parse_hex::<32>(text, "--publisher");
    }
    IdString::parse(text)
        .map(|id| id.key)
        .map_err(|e| Error::InvalidInput {
            what: "--publisher",
            reason: format!("{e}; give an id string or 0x + 64 hex digits"),
        })
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
            let trusted = publisher_key(&publisher)?;
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
