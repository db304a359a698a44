//! `psp directory`: the discovery directory. `show` fetches the latest directory and accepts
//! it only with the threshold of signatures from the discovery set elected for the current
//! epoch (or a trusted bootstrap set); `equivocations` lists the conflicting directory
//! signatures a node has seen, as evidence for `psp stake report-equivocation`.

use clap::Subcommand;
use psp_client::{directory, parse_hex, Result};

use super::common::{print_json, NodeArgs};

#[derive(Debug, Subcommand)]
pub enum DirectoryCommand {
    /// Fetch the latest directory from the node at `--url` and accept it only with the
    /// threshold of valid signatures from the discovery set elected for the current epoch (or
    /// the `--trust` set). JSON on stdout; exit code 1 with the reason if refused.
    Show {
        /// Trust these discovery node keys (hex) instead of the chain's elected set: the
        /// built-in bootstrap set of a client that cannot read the chain yet. Repeatable.
        #[arg(long = "trust")]
        trust: Vec<String>,
        #[command(flatten)]
        node: NodeArgs,
    },
    /// Equivocations (two directories signed for one period) the node at `--url` has seen,
    /// with the evidence `psp stake report-equivocation` takes. JSON on stdout.
    Equivocations {
        #[command(flatten)]
        node: NodeArgs,
    },
}

/// Runs a `psp directory` command.
pub async fn run(cmd: DirectoryCommand) -> Result<()> {
    match cmd {
        DirectoryCommand::Show { trust, node } => {
            let rpc = node.rpc().await?;
            let trusted = trust
                .iter()
                .map(|k| parse_hex::<32>(k, "--trust"))
                .collect::<Result<Vec<_>>>()?;
            let chain = node.chain().await?;
            print_json(&directory::fetch_checked(&rpc, &chain, &trusted).await?)
        }
        DirectoryCommand::Equivocations { node } => {
            print_json(&node.rpc().await?.directory_equivocations().await?)
        }
    }
}
