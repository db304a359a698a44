//! JSON-RPC of the node: the standard Substrate methods (so polkadot-js and subxt work
//! unchanged), transaction payment, and the `psp_*` methods over the `PspApi` runtime API.

use std::sync::Arc;

use jsonrpsee::{
    core::RpcResult,
    proc_macros::rpc,
    types::{error::ErrorObjectOwned, ErrorCode},
    RpcModule,
};
use psp_primitives::{api::PspApi as PspRuntimeApi, rpc::IdentityView, IdentityKey};
use psp_runtime::{opaque::Block, AccountId, Balance, BlockNumber, Nonce};
use sc_transaction_pool_api::TransactionPool;
use sp_api::ProvideRuntimeApi;
use sp_blockchain::{Error as BlockChainError, HeaderBackend, HeaderMetadata};
use sp_runtime::traits::Block as BlockT;

/// What the RPC extensions need from the node.
pub struct FullDeps<C, P> {
    /// The client.
    pub client: Arc<C>,
    /// The transaction pool.
    pub pool: Arc<P>,
}

type Hash = <Block as BlockT>::Hash;

/// The `psp_*` methods.
#[rpc(server)]
pub trait PspRpc {
    /// The identity registered under an sr25519 key (`0x` + 64 hex digits), revoked ones
    /// included; `null` if none. `at` defaults to the best block.
    #[method(name = "psp_identityByKey")]
    fn identity_by_key(&self, key: String, at: Option<Hash>) -> RpcResult<Option<IdentityView>>;

    /// The identity an id string names; `null` if it does not parse, its check bytes do not
    /// match, or nothing matching is registered.
    #[method(name = "psp_identityById")]
    fn identity_by_id(&self, id: String, at: Option<Hash>) -> RpcResult<Option<IdentityView>>;
}

/// Serves `psp_*` from the runtime API.
pub struct Psp<C> {
    client: Arc<C>,
}

fn invalid_params(message: String) -> ErrorObjectOwned {
    ErrorObjectOwned::owned(ErrorCode::InvalidParams.code(), message, None::<()>)
}

fn runtime_error(err: sp_api::ApiError) -> ErrorObjectOwned {
    ErrorObjectOwned::owned(
        ErrorCode::InternalError.code(),
        format!("runtime API call failed: {err}"),
        None::<()>,
    )
}

fn parse_key(key: &str) -> Result<IdentityKey, ErrorObjectOwned> {
    let digits = key.strip_prefix("0x").unwrap_or(key);
    let bytes = hex::decode(digits)
        .map_err(|e| invalid_params(format!("key is not hex ({e}); expected 0x + 64 hex digits")))?;
    bytes
        .try_into()
        .map_err(|b: Vec<u8>| invalid_params(format!("key has {} bytes; expected 32", b.len())))
}

fn view(info: psp_primitives::IdentityInfo<AccountId, Balance, BlockNumber>) -> IdentityView {
    IdentityView::from_info(info, |owner| owner.to_string())
}

impl<C> PspRpcServer for Psp<C>
where
    C: ProvideRuntimeApi<Block> + HeaderBackend<Block> + Send + Sync + 'static,
    C::Api: PspRuntimeApi<Block, AccountId, Balance, BlockNumber>,
{
    fn identity_by_key(&self, key: String, at: Option<Hash>) -> RpcResult<Option<IdentityView>> {
        let key = parse_key(&key)?;
        let at = at.unwrap_or_else(|| self.client.info().best_hash);
        let info = self.client.runtime_api().identity_by_key(at, key).map_err(runtime_error)?;
        Ok(info.map(view))
    }

    fn identity_by_id(&self, id: String, at: Option<Hash>) -> RpcResult<Option<IdentityView>> {
        if id.len() > psp_primitives::id_string::MAX_ID_STRING_LEN {
            return Err(invalid_params("id string is longer than any valid id".into()));
        }
        let at = at.unwrap_or_else(|| self.client.info().best_hash);
        let info =
            self.client.runtime_api().identity_by_id(at, id.into_bytes()).map_err(runtime_error)?;
        Ok(info.map(view))
    }
}

/// All RPC extensions of the node.
pub fn create_full<C, P>(
    deps: FullDeps<C, P>,
) -> Result<RpcModule<()>, Box<dyn std::error::Error + Send + Sync>>
where
    C: ProvideRuntimeApi<Block>,
    C: HeaderBackend<Block> + HeaderMetadata<Block, Error = BlockChainError> + 'static,
    C: Send + Sync + 'static,
    C::Api: substrate_frame_rpc_system::AccountNonceApi<Block, AccountId, Nonce>,
    C::Api: pallet_transaction_payment_rpc::TransactionPaymentRuntimeApi<Block, Balance>,
    C::Api: sp_block_builder::BlockBuilder<Block>,
    C::Api: PspRuntimeApi<Block, AccountId, Balance, BlockNumber>,
    P: TransactionPool + 'static,
{
    use pallet_transaction_payment_rpc::{TransactionPayment, TransactionPaymentApiServer};
    use substrate_frame_rpc_system::{System, SystemApiServer};

    let mut module = RpcModule::new(());
    let FullDeps { client, pool } = deps;
    module.merge(System::new(client.clone(), pool).into_rpc())?;
    module.merge(TransactionPayment::new(client.clone()).into_rpc())?;
    module.merge(Psp { client }.into_rpc())?;
    Ok(module)
}
