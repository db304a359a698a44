//! The discovery directory from the client side: fetch the latest directory from any node
//! (every node serves or proxies it) and accept it only with the threshold of valid
//! signatures from the discovery set — the one elected on chain for the current epoch, or a
//! trusted bootstrap set.

use psp_net::crypto::NodeId;
use psp_net::directory::{default_threshold, SignedDirectory};
use psp_net::driver::unix_now;
use psp_primitives::rpc::{DirectoryView, EquivocationView};
use psp_primitives::staking::Role;
use serde::Serialize;
use subxt::rpcs::rpc_params;

use crate::chain::Chain;
use crate::error::{Error, Result};
use crate::overlay::NodeRpc;
use crate::{parse_hex, parse_hex_vec};

impl NodeRpc {
    /// `psp_directory`: the latest directory the node holds (`None` before the first forms).
    pub async fn directory(&self) -> Result<Option<DirectoryView>> {
        self.request("psp_directory", rpc_params![]).await
    }

    /// `psp_directorySubmit`: hands the node a signed directory (hex).
    pub async fn directory_submit(&self, directory: &str) -> Result<()> {
        self.request("psp_directorySubmit", rpc_params![directory])
            .await
    }

    /// `psp_directoryEquivocations`: conflicting directory signatures the node has seen.
    pub async fn directory_equivocations(&self) -> Result<Vec<EquivocationView>> {
        self.request("psp_directoryEquivocations", rpc_params![])
            .await
    }
}

/// A directory this client checked itself.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CheckedDirectory {
    /// What the node served.
    #[serde(flatten)]
    pub view: DirectoryView,
    /// Signatures from the trusted set that verified here.
    pub verified_signatures: usize,
    /// The threshold applied.
    pub required_signatures: usize,
    /// Where the trusted set came from: `chain` or `bootstrap`.
    pub trusted_set: &'static str,
}

/// Fetches the directory from `node` and checks it against `trusted` (the bootstrap set) or,
/// when that is empty, the discovery set elected on `chain` for the current epoch.
pub async fn fetch_checked(
    node: &NodeRpc,
    chain: &Chain,
    trusted: &[[u8; 32]],
) -> Result<CheckedDirectory> {
    let view = node.directory().await?.ok_or_else(|| {
        Error::NotFound(format!(
            "{} holds no directory yet (one forms each period once discovery nodes are elected)",
            node.url()
        ))
    })?;
    let (set, source) = if trusted.is_empty() {
        let elected = chain.staking_elected(Role::Discovery, None).await?;
        let set = elected
            .iter()
            .map(|e| parse_hex::<32>(&e.node, "elected node").map(NodeId))
            .collect::<Result<Vec<_>>>()?;
        (set, "chain")
    } else {
        (trusted.iter().copied().map(NodeId).collect(), "bootstrap")
    };
    let bytes = parse_hex_vec(&view.directory, "psp_directory directory")?;
    let signed = SignedDirectory::decode(&bytes).map_err(|e| Error::InvalidInput {
        what: "directory",
        reason: format!("does not decode: {e}"),
    })?;
    let threshold = default_threshold(set.len());
    let verified = signed
        .verify(&chain.genesis_hash(), &set, threshold, unix_now())
        .map_err(|e| Error::InvalidInput {
            what: "directory",
            reason: format!("refused: {e}"),
        })?;
    Ok(CheckedDirectory {
        view,
        verified_signatures: verified.signers().len(),
        required_signatures: threshold,
        trusted_set: source,
    })
}
