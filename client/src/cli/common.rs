//! What the command groups share: the flattened arguments that name the node (`--url`), the
//! keystore passphrase (`--passphrase-file`) and the signing account (`--payer`), the identity
//! kinds, and the few ways `psp` talks to the user — JSON results on stdout, progress on
//! stderr.

use std::path::{Path, PathBuf};

use clap::{Args, ValueEnum};
use psp_client::{
    chain::{keypair_from_suri, ss58, Chain, Progress, TxOutcome},
    hex0x,
    keystore::{self, Keys},
    overlay::NodeRpc,
    Error, Keypair, Result,
};
use psp_primitives::IdentityKind;
use zeroize::Zeroizing;

// The keystore passphrase.
#[derive(Debug, Args)]
pub struct PassArgs {
    /// A file holding the keystore passphrase (else PSP_PASSPHRASE is used; psp never prompts).
    #[arg(long)]
    pub passphrase_file: Option<PathBuf>,
}

impl PassArgs {
    /// The passphrase from the file or PSP_PASSPHRASE.
    pub fn passphrase(&self) -> Result<Zeroizing<String>> {
        keystore::read_passphrase(self.passphrase_file.as_deref())
    }

    /// Opens the keystore at `path` with the passphrase.
    pub fn open(&self, path: &Path) -> Result<Keys> {
        keystore::open(path, self.passphrase_file.as_deref())
    }
}

// An optional paying account; the identity key pays by default.
#[derive(Debug, Args)]
pub struct PayerArgs {
    /// The account that signs and pays (and owns the identity), as a secret URI such as //Alice.
    /// Default: the identity key itself.
    #[arg(long, env = "PSP_PAYER", hide_env_values = true)]
    pub payer: Option<String>,
}

impl PayerArgs {
    /// The payer's key pair if one was given, else the identity key of `keys`.
    pub fn keypair_or(&self, keys: &Keys) -> Result<Keypair> {
        match &self.payer {
            Some(suri) => payer_keypair(suri),
            None => Ok(keys.identity_keypair().clone()),
        }
    }
}

// The staking account, always required.
#[derive(Debug, Args)]
pub struct StakerArgs {
    /// The staking account that signs and pays, as a secret URI such as //Alice.
    #[arg(long, env = "PSP_PAYER", hide_env_values = true)]
    pub payer: String,
}

impl StakerArgs {
    /// The staker's key pair.
    pub fn keypair(&self) -> Result<Keypair> {
        payer_keypair(&self.payer)
    }
}

// The node to talk to.
#[derive(Debug, Args)]
pub struct NodeArgs {
    /// The node's WebSocket RPC endpoint.
    #[arg(long, env = "PSP_URL", default_value = "ws://127.0.0.1:9944")]
    pub url: String,
}

impl NodeArgs {
    /// Connects to the chain through the node, saying so on stderr.
    pub async fn chain(&self) -> Result<Chain> {
        eprintln!("connecting to {}", self.url);
        Chain::connect(&self.url).await
    }

    /// Connects to the node's own RPC (overlay, DHT, certificates, directory), quietly.
    pub async fn rpc(&self) -> Result<NodeRpc> {
        NodeRpc::connect(&self.url).await
    }
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum Kind {
    Client,
    Node,
    Group,
    Device,
}

impl From<Kind> for IdentityKind {
    fn from(kind: Kind) -> Self {
        match kind {
            Kind::Client => IdentityKind::Client,
            Kind::Node => IdentityKind::Node,
            Kind::Group => IdentityKind::Group,
            Kind::Device => IdentityKind::Device,
        }
    }
}

/// Parses a `--payer` secret URI.
pub fn payer_keypair(suri: &str) -> Result<Keypair> {
    keypair_from_suri(suri, "--payer")
}

/// The SS58 account of a key pair, as progress lines name payers.
pub fn account(keypair: &Keypair) -> String {
    ss58(&keypair.public_key().0)
}

/// Prints a transaction's progress on stderr.
pub fn report(progress: Progress) {
    eprintln!("  {progress}");
}

/// Says on stderr that a transaction was finalized: `{what} in finalized block 0x...`.
pub fn finalized(what: &str, outcome: &TxOutcome) {
    eprintln!("{what} in finalized block {}", hex0x(&outcome.block_hash));
}

/// Prints `value` as pretty JSON on stdout.
pub fn print_json(value: &impl serde::Serialize) -> Result<()> {
    let text = serde_json::to_string_pretty(value).map_err(|e| Error::InvalidInput {
        what: "output",
        reason: format!("cannot print as JSON: {e}"),
    })?;
    println!("{text}");
    Ok(())
}
