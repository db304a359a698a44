//! `psp stream`: realtime streams, created anonymously. `plans` and `subscription` show the
//! subscription plans and an identity's subscription; `subscribe` pays for one; `create` draws
//! a receipt from an elected oracle (proving the keystore's identity with a certificate from
//! an authority) and hands it to a landing node over a fresh anonymous circuit; `show` finds a
//! stream's record in the DHT and checks it.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Subcommand};
use psp_client::{
    chain::Chain,
    hex0x, keystore,
    overlay::{self, CircuitOptions, Hop, NodeRpc, OverlayClient, RelayNode},
    parse_hex, parse_hex_vec,
    stream::{self, StreamClientError},
    Error, Result,
};

use super::common::{finalized, payer_keypair, print_json, report, NodeArgs, PassArgs};

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
            node,
        } => {
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
            print_json(&result.map_err(cli_error)?.view())
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
) -> std::result::Result<stream::CreatedStream, StreamClientError> {
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
    stream::create_stream(
        overlay,
        nodes,
        landing,
        &drawn,
        distribution,
        &registry,
        timeout,
        &mut progress,
    )
    .await
}
