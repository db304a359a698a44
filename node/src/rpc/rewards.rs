//! The `psp_rewards*` JSON-RPC methods over the `PspRewardsApi` runtime API: the pot, a relay's
//! pending rewards and credits, what the oracles reported, and each epoch's pool.

use super::{parse_key, runtime_error, Hash, RuntimeApiRpc};
use jsonrpsee::{core::RpcResult, proc_macros::rpc};
use psp_primitives::{
    api::PspRewardsApi,
    rpc::{EpochRewardsView, RelayEpochView, RelayRewardsView, RewardsStatusView},
};
use psp_runtime::{opaque::Block, AccountId, Balance};
use sp_api::ProvideRuntimeApi;
use sp_blockchain::HeaderBackend;
use sp_core::crypto::Ss58Codec;

/// The rewards methods. `at` defaults to the best block.
#[rpc(server)]
pub trait RewardsRpc {
    /// The pot, what it can pay and already owes, the pool per epoch, and which epoch's
    /// reports the oracles may submit now.
    #[method(name = "psp_rewardsStatus")]
    fn status(&self, at: Option<Hash>) -> RpcResult<RewardsStatusView>;

    /// A relay node's (`0x` + 64 hex digits) unclaimed rewards by epoch, what claiming them
    /// pays, and its lifetime dispute count.
    #[method(name = "psp_rewardsRelay")]
    fn relay(&self, relay: String, at: Option<Hash>) -> RpcResult<RelayRewardsView>;

    /// What each oracle credited a relay in `epoch` and the resulting credit; `null` once the
    /// epoch's reports are pruned or if none named the relay.
    #[method(name = "psp_rewardsRelayEpoch")]
    fn relay_epoch(
        &self,
        relay: String,
        epoch: u32,
        at: Option<Hash>,
    ) -> RpcResult<Option<RelayEpochView>>;

    /// An epoch's relays, credits, pool and payouts; `null` if nobody was credited in it or
    /// everything was claimed.
    #[method(name = "psp_rewardsEpoch")]
    fn epoch(&self, epoch: u32, at: Option<Hash>) -> RpcResult<Option<EpochRewardsView>>;

    /// The chain time (unix milliseconds) `epoch` started at, as the rewards pallet recorded
    /// it: where relays and consumers cut their usage between epochs. `null` if the epoch has
    /// not started yet or its record was pruned.
    #[method(name = "psp_rewardsEpochStart")]
    fn epoch_start(&self, epoch: u32, at: Option<Hash>) -> RpcResult<Option<u64>>;
}

impl<C> RewardsRpcServer for RuntimeApiRpc<C>
where
    C: ProvideRuntimeApi<Block> + HeaderBackend<Block> + Send + Sync + 'static,
    C: sc_client_api::StorageProvider<Block, crate::chain_checks::FullBackend>,
    C::Api: PspRewardsApi<Block, AccountId, Balance>,
{
    fn epoch_start(&self, epoch: u32, at: Option<Hash>) -> RpcResult<Option<u64>> {
        crate::overlay::usage::epoch_facts(&*self.client, self.at(at), epoch)
            .map(|facts| facts.map(|f| f.started_at_ms))
            .map_err(|e| {
                jsonrpsee::types::ErrorObjectOwned::owned(
                    jsonrpsee::types::ErrorCode::InternalError.code(),
                    format!("epoch record not read: {e}"),
                    None::<()>,
                )
            })
    }

    fn status(&self, at: Option<Hash>) -> RpcResult<RewardsStatusView> {
        let status = self
            .client
            .runtime_api()
            .rewards_status(self.at(at))
            .map_err(runtime_error)?;
        Ok(RewardsStatusView::from_info(status, |a| a.to_ss58check()))
    }

    fn relay(&self, relay: String, at: Option<Hash>) -> RpcResult<RelayRewardsView> {
        let relay = parse_key(&relay)?;
        let rewards = self
            .client
            .runtime_api()
            .relay_rewards(self.at(at), relay)
            .map_err(runtime_error)?;
        Ok(RelayRewardsView::from_info(rewards))
    }

    fn relay_epoch(
        &self,
        relay: String,
        epoch: u32,
        at: Option<Hash>,
    ) -> RpcResult<Option<RelayEpochView>> {
        let relay = parse_key(&relay)?;
        let info = self
            .client
            .runtime_api()
            .relay_epoch(self.at(at), relay, epoch)
            .map_err(runtime_error)?;
        Ok(info.map(|i| RelayEpochView::from_info(i, |a| a.to_ss58check())))
    }

    fn epoch(&self, epoch: u32, at: Option<Hash>) -> RpcResult<Option<EpochRewardsView>> {
        let info = self
            .client
            .runtime_api()
            .epoch_rewards(self.at(at), epoch)
            .map_err(runtime_error)?;
        Ok(info.map(EpochRewardsView::from_info))
    }
}
