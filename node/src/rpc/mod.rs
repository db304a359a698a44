//! JSON-RPC of the node: the standard Substrate methods (so polkadot-js and subxt work
//! unchanged), transaction payment, the `psp_*` identity and overlay methods over the `PspApi`
//! runtime API, the `psp_staking*` methods ([`staking`]), the `psp_rewards*` methods
//! ([`rewards`]) and the subscription methods ([`subscriptions`]).

pub mod cert;
pub mod dht;
pub mod directory;
pub mod policy;
pub mod rewards;
pub mod staking;
pub mod subscriptions;

use std::sync::Arc;

use jsonrpsee::{
    core::RpcResult,
    proc_macros::rpc,
    types::{error::ErrorObjectOwned, ErrorCode},
    RpcModule,
};
use psp_primitives::{
    api::PspApi as PspRuntimeApi,
    rpc::{IdentityView, OverlayView as OverlayInfo},
    IdentityKey,
};
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
    /// The overlay started beside the chain (empty with `--no-overlay`).
    pub overlay: Arc<crate::overlay::OverlayState>,
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

    /// Active node identities at the latest finalized block, at most `limit` (default and
    /// maximum 256), after the node key `startAfter` (hex) for paging.
    #[method(name = "psp_nodes")]
    fn nodes(
        &self,
        start_after: Option<String>,
        limit: Option<u32>,
    ) -> RpcResult<Vec<IdentityView>>;
}

/// A node registration signed by the node's identity key, as `psp_overlayRegistration`
/// returns it: submit it with `PspIdentity::register(registration, proof)`.
#[derive(Clone, Debug, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SignedRegistration {
    /// SCALE-encoded `psp_primitives::Registration`, hex.
    pub registration: String,
    /// The identity key's proof of possession for the given owner, hex.
    pub proof: String,
}

/// The overlay methods.
#[rpc(server)]
pub trait OverlayRpc {
    /// This node's overlay identity and addresses; an error with `--no-overlay`.
    #[method(name = "psp_overlayInfo")]
    async fn overlay_info(&self) -> RpcResult<OverlayInfo>;

    /// This node's registration, signed for `owner` (SS58) to submit and pay the deposit.
    /// `namespace` defaults to `peerstream`, `app` to `relay`. Unsafe: it signs with the
    /// node's identity key, so whoever calls it can claim the node (see [`policy`]).
    #[method(name = "psp_overlayRegistration", with_extensions)]
    fn overlay_registration(
        &self,
        owner: String,
        namespace: Option<String>,
        app: Option<String>,
    ) -> RpcResult<SignedRegistration>;
}

/// Serves the `psp_staking*` and `psp_rewards*` methods from the runtime API at the best block
/// or at a given one.
pub struct RuntimeApiRpc<C> {
    client: Arc<C>,
}

impl<C> RuntimeApiRpc<C> {
    /// Serves from `client`.
    pub fn new(client: Arc<C>) -> Self {
        Self { client }
    }
}

impl<C: HeaderBackend<Block>> RuntimeApiRpc<C> {
    /// `at`, or the best block.
    fn at(&self, at: Option<Hash>) -> Hash {
        at.unwrap_or_else(|| self.client.info().best_hash)
    }
}

/// Serves `psp_*` from the runtime API and the overlay.
pub struct Psp<C> {
    client: Arc<C>,
    overlay: Arc<crate::overlay::OverlayState>,
    /// Shared by every `psp_*` server object, so one connection has one budget.
    budget: Arc<policy::NetworkBudget>,
}

impl<C> Clone for Psp<C> {
    fn clone(&self) -> Self {
        Self {
            client: self.client.clone(),
            overlay: self.overlay.clone(),
            budget: self.budget.clone(),
        }
    }
}

impl<C> Psp<C> {
    fn handle(&self) -> Result<&psp_net::driver::NodeHandle, ErrorObjectOwned> {
        self.overlay
            .handle
            .get()
            .ok_or_else(|| internal_error("the overlay has not started (or runs --no-overlay)"))
    }

    fn identity(&self) -> Result<&Arc<crate::overlay::OverlayIdentity>, ErrorObjectOwned> {
        self.overlay.identity.get().ok_or_else(|| {
            internal_error("the overlay is not running on this node (started with --no-overlay)")
        })
    }
}

#[jsonrpsee::core::async_trait]
impl<C> OverlayRpcServer for Psp<C>
where
    C: HeaderBackend<Block> + Send + Sync + 'static,
{
    async fn overlay_info(&self) -> RpcResult<OverlayInfo> {
        let identity = self.identity()?;
        let listen_addrs = match self.overlay.handle.get() {
            Some(handle) => handle
                .listen_addrs()
                .await
                .map(|addrs| addrs.iter().map(ToString::to_string).collect())
                .unwrap_or_default(),
            None => Vec::new(),
        };
        Ok(OverlayInfo {
            node_id: format!("0x{}", hex::encode(identity.node_id())),
            onion_key: format!("0x{}", hex::encode(identity.onion_public)),
            peer_id: identity.link_key.public().to_peer_id().to_string(),
            address: identity.address.clone(),
            listen_addrs,
        })
    }

    fn overlay_registration(
        &self,
        ext: &jsonrpsee::Extensions,
        owner: String,
        namespace: Option<String>,
        app: Option<String>,
    ) -> RpcResult<SignedRegistration> {
        use codec::Encode;
        use sp_core::crypto::Ss58Codec;
        policy::ensure_unsafe_allowed(ext, "psp_overlayRegistration")?;
        let identity = self.identity()?;
        let owner = AccountId::from_ss58check(&owner)
            .map_err(|e| invalid_params(format!("owner is not an SS58 account ({e:?})")))?;
        let genesis = crate::chain_checks::genesis(&*self.client)
            .ok_or_else(|| internal_error("no genesis block"))?;
        let (registration, proof) = identity.registration(
            &genesis,
            &owner,
            namespace.as_deref().unwrap_or("peerstream"),
            app.as_deref().unwrap_or("relay"),
        );
        Ok(SignedRegistration {
            registration: format!("0x{}", hex::encode(registration.encode())),
            proof: format!("0x{}", hex::encode(proof)),
        })
    }
}

fn invalid_params(message: String) -> ErrorObjectOwned {
    ErrorObjectOwned::owned(ErrorCode::InvalidParams.code(), message, None::<()>)
}

/// `0x` + lowercase hex.
fn hex0x(bytes: &[u8]) -> String {
    format!("0x{}", hex::encode(bytes))
}

/// Bytes from hex with or without `0x`; an invalid-params error naming `what` otherwise.
fn from_hex(text: &str, what: &str) -> Result<Vec<u8>, ErrorObjectOwned> {
    let text = text.trim();
    hex::decode(text.strip_prefix("0x").unwrap_or(text))
        .map_err(|e| invalid_params(format!("{what} is not hex: {e}")))
}

fn internal_error(message: &str) -> ErrorObjectOwned {
    ErrorObjectOwned::owned(ErrorCode::InternalError.code(), message, None::<()>)
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
    let bytes = hex::decode(digits).map_err(|e| {
        invalid_params(format!("key is not hex ({e}); expected 0x + 64 hex digits"))
    })?;
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
        let info = self
            .client
            .runtime_api()
            .identity_by_key(at, key)
            .map_err(runtime_error)?;
        Ok(info.map(view))
    }

    fn identity_by_id(&self, id: String, at: Option<Hash>) -> RpcResult<Option<IdentityView>> {
        if id.len() > psp_primitives::id_string::MAX_ID_STRING_LEN {
            return Err(invalid_params(
                "id string is longer than any valid id".into(),
            ));
        }
        let at = at.unwrap_or_else(|| self.client.info().best_hash);
        let info = self
            .client
            .runtime_api()
            .identity_by_id(at, id.into_bytes())
            .map_err(runtime_error)?;
        Ok(info.map(view))
    }

    fn nodes(
        &self,
        start_after: Option<String>,
        limit: Option<u32>,
    ) -> RpcResult<Vec<IdentityView>> {
        let start_after = start_after.as_deref().map(parse_key).transpose()?;
        let limit = limit.unwrap_or(psp_primitives::api::MAX_NODES_PER_PAGE);
        let at = self.client.info().finalized_hash;
        let nodes = self
            .client
            .runtime_api()
            .nodes(at, start_after, limit)
            .map_err(runtime_error)?;
        Ok(nodes.into_iter().map(view).collect())
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
    C: sc_client_api::StorageProvider<Block, crate::chain_checks::FullBackend>,
    C::Api: substrate_frame_rpc_system::AccountNonceApi<Block, AccountId, Nonce>,
    C::Api: pallet_transaction_payment_rpc::TransactionPaymentRuntimeApi<Block, Balance>,
    C::Api: sp_block_builder::BlockBuilder<Block>,
    C::Api: PspRuntimeApi<Block, AccountId, Balance, BlockNumber>,
    C::Api: psp_primitives::api::PspStakingApi<Block, AccountId, Balance, BlockNumber>,
    C::Api: psp_primitives::api::PspRewardsApi<Block, AccountId, Balance>,
    C::Api: psp_primitives::api::PspSubscriptionsApi<Block, AccountId, Balance>,
    P: TransactionPool + 'static,
{
    use pallet_transaction_payment_rpc::{TransactionPayment, TransactionPaymentApiServer};
    use substrate_frame_rpc_system::{System, SystemApiServer};

    let mut module = RpcModule::new(());
    let FullDeps {
        client,
        pool,
        overlay,
    } = deps;
    module.merge(System::new(client.clone(), pool).into_rpc())?;
    module.merge(TransactionPayment::new(client.clone()).into_rpc())?;
    let psp = Psp {
        client: client.clone(),
        overlay,
        budget: Arc::new(policy::NetworkBudget::default()),
    };
    module.merge(PspRpcServer::into_rpc(psp.clone()))?;
    module.merge(staking::StakingRpcServer::into_rpc(RuntimeApiRpc::new(
        client.clone(),
    )))?;
    module.merge(rewards::RewardsRpcServer::into_rpc(RuntimeApiRpc::new(
        client.clone(),
    )))?;
    module.merge(subscriptions::SubscriptionsRpcServer::into_rpc(
        RuntimeApiRpc::new(client.clone()),
    ))?;
    module.merge(cert::CertRpcServer::into_rpc(psp.clone()))?;
    module.merge(dht::DhtRpcServer::into_rpc(psp.clone()))?;
    module.merge(directory::DirectoryRpcServer::into_rpc(psp.clone()))?;
    module.merge(OverlayRpcServer::into_rpc(psp))?;
    Ok(module)
}
