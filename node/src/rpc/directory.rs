//! The directory methods: `psp_directory` (the latest directory this node holds, checked
//! against the elected discovery set), `psp_directorySubmit` (hand the node a signed directory
//! seen elsewhere) and `psp_directoryEquivocations` (discovery nodes caught signing two
//! directories for one period, as the chain's evidence, ready for
//! `PspStaking::report_equivocation`).

use codec::Encode;
use jsonrpsee::{core::RpcResult, proc_macros::rpc, Extensions};
use psp_net::directory::{default_threshold, flags, SignedDirectory};
use psp_primitives::rpc::{DirectoryEntryView, DirectoryView, EquivocationView};

use super::{from_hex, hex0x, internal_error, invalid_params, Psp};

/// The directory methods.
#[rpc(server)]
pub trait DirectoryRpc {
    /// The newest directory with the threshold of signatures this node holds; `null` if none
    /// yet.
    #[method(name = "psp_directory")]
    async fn directory(&self) -> RpcResult<Option<DirectoryView>>;

    /// Hands this node a signed directory (hex); a discovery node records its signatures.
    #[method(name = "psp_directorySubmit", with_extensions)]
    async fn directory_submit(&self, directory: String) -> RpcResult<()>;

    /// Equivocations this node has seen.
    #[method(name = "psp_directoryEquivocations")]
    async fn directory_equivocations(&self) -> RpcResult<Vec<EquivocationView>>;
}

fn flag_names(bits: u8) -> Vec<String> {
    [
        (flags::RELAY, "relay"),
        (flags::ENTRY, "entry"),
        (flags::DISCOVERY, "discovery"),
        (flags::AUTHORITY, "authority"),
        (flags::ORACLE, "oracle"),
    ]
    .into_iter()
    .filter(|(bit, _)| bits & bit != 0)
    .map(|(_, name)| name.to_owned())
    .collect()
}

#[jsonrpsee::core::async_trait]
impl<C> DirectoryRpcServer for Psp<C>
where
    C: sp_blockchain::HeaderBackend<psp_runtime::opaque::Block> + Send + Sync + 'static,
{
    async fn directory(&self) -> RpcResult<Option<DirectoryView>> {
        let Some((bytes, set)) = self
            .handle()?
            .directory_latest()
            .await
            .map_err(|e| internal_error(&e.to_string()))?
        else {
            return Ok(None);
        };
        let signed = SignedDirectory::decode(&bytes)
            .map_err(|e| internal_error(&format!("held directory does not decode: {e}")))?;
        let genesis = crate::chain_checks::genesis(&*self.client)
            .ok_or_else(|| internal_error("no genesis block"))?;
        let d = &signed.directory;
        Ok(Some(DirectoryView {
            period: d.period,
            valid_after: d.valid_after,
            valid_until: d.valid_until,
            entries: d
                .entries
                .iter()
                .map(|e| DirectoryEntryView {
                    node: hex0x(&e.node.0),
                    flags: flag_names(e.flags),
                    addresses: e.addresses.clone(),
                })
                .collect(),
            signers: signed
                .valid_signers(&genesis, &set)
                .iter()
                .map(|s| hex0x(&s.0))
                .collect(),
            discovery_set: set.iter().map(|s| hex0x(&s.0)).collect(),
            threshold: default_threshold(set.len()) as u32,
            directory: hex0x(&bytes),
        }))
    }

    async fn directory_submit(&self, ext: &Extensions, directory: String) -> RpcResult<()> {
        self.budget.take(ext, "psp_directorySubmit")?;
        let bytes = from_hex(&directory, "directory")?;
        self.handle()?
            .directory_submit(bytes)
            .await
            .map_err(|e| invalid_params(format!("refused: {e}")))
    }

    async fn directory_equivocations(&self) -> RpcResult<Vec<EquivocationView>> {
        let found = self
            .handle()?
            .directory_equivocations()
            .await
            .map_err(|e| internal_error(&e.to_string()))?;
        Ok(found
            .iter()
            .map(|e| EquivocationView {
                offender: hex0x(&e.offender.0),
                period: e.period,
                evidence: hex0x(&crate::overlay::slashing::evidence(e).encode()),
            })
            .collect())
    }
}
