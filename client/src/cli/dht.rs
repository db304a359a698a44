//! `psp dht`: signed records in the DHT. `put` signs a record with the keystore's identity
//! and has a node co-sign and publish it (or puts a record signed elsewhere); `get` looks a
//! record up by its key, or by owner, kind and topic.

use std::path::PathBuf;

use clap::Subcommand;
use psp_client::{dht, hex0x, parse_hex, parse_hex_vec, Error, Result};

use super::common::{print_json, NodeArgs, PassArgs};

#[derive(Debug, Subcommand)]
pub enum DhtCommand {
    /// Sign a record with the keystore's identity and have the node at `--url` co-sign and
    /// publish it (or put a record signed elsewhere with `--record`). JSON on stdout.
    Put {
        /// The keystore holding the owner's identity key.
        #[arg(long, required_unless_present = "record", conflicts_with = "record")]
        keystore: Option<PathBuf>,
        #[command(flatten)]
        pass: PassArgs,
        /// Record kind: presence, stream, group or reading.
        #[arg(long, default_value = "presence")]
        kind: String,
        /// Topic label (hashed to the record's 32-byte topic).
        #[arg(long, default_value = "default")]
        topic: String,
        /// The value, as text.
        #[arg(long, conflicts_with = "value_hex")]
        value: Option<String>,
        /// The value, as hex.
        #[arg(long)]
        value_hex: Option<String>,
        /// Seconds until the record expires.
        #[arg(long, default_value_t = 600)]
        ttl: u64,
        /// Sequence number (default: now in milliseconds, so renewals supersede).
        #[arg(long)]
        seq: Option<u64>,
        /// A complete signed record as hex, put as is.
        #[arg(long)]
        record: Option<String>,
        /// The publishing node's WebSocket RPC endpoint.
        #[command(flatten)]
        node: NodeArgs,
    },
    /// Look a record up (JSON on stdout; exit code 1 if no valid record is found).
    Get {
        /// The DHT key, 0x + 64 hex digits.
        #[arg(long, required_unless_present = "owner", conflicts_with = "owner")]
        key: Option<String>,
        /// The owner's identity key (with --kind and --topic instead of --key).
        #[arg(long)]
        owner: Option<String>,
        /// Record kind: presence, stream, group or reading.
        #[arg(long, default_value = "presence")]
        kind: String,
        /// Topic label.
        #[arg(long, default_value = "default")]
        topic: String,
        #[command(flatten)]
        node: NodeArgs,
    },
}

/// Runs a `psp dht` command.
pub async fn run(cmd: DhtCommand) -> Result<()> {
    match cmd {
        DhtCommand::Put {
            keystore,
            pass,
            kind,
            topic,
            value,
            value_hex,
            ttl,
            seq,
            record,
            node,
        } => {
            let rpc = node.rpc().await?;
            let view = match (record, keystore) {
                (Some(record), _) => rpc.dht_put_raw(&record).await?,
                (None, Some(path)) => {
                    let keys = pass.open(&path)?;
                    let value = match (value, value_hex) {
                        (Some(text), _) => text.into_bytes(),
                        (None, Some(hex)) => parse_hex_vec(&hex, "--value-hex")?,
                        (None, None) => Vec::new(),
                    };
                    let publication = dht::Publication::labelled(&kind, &topic, value, ttl, seq)?;
                    rpc.dht_publish(&keys, &publication).await?
                }
                (None, None) => {
                    return Err(Error::InvalidInput {
                        what: "dht put",
                        reason: "give --keystore or --record".into(),
                    })
                }
            };
            print_json(&view)
        }
        DhtCommand::Get {
            key,
            owner,
            kind,
            topic,
            node,
        } => {
            let key = match (key, owner) {
                (Some(key), _) => parse_hex::<32>(&key, "--key")?,
                (None, Some(owner)) => dht::owner_key(&kind, &owner, &topic)?,
                (None, None) => {
                    return Err(Error::InvalidInput {
                        what: "dht get",
                        reason: "give --key or --owner".into(),
                    })
                }
            };
            match node.rpc().await?.dht_get(&key).await? {
                Some(view) => print_json(&view),
                None => Err(Error::NotFound(format!(
                    "no valid record found for key {} (through {})",
                    hex0x(&key),
                    node.url
                ))),
            }
        }
    }
}
