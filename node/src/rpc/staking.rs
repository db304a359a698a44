//! The `psp_staking*` JSON-RPC methods over the `PspStakingApi` runtime API: elected sets,
//! bonds, candidacies and the epoch schedule.

use super::{invalid_params, parse_key, runtime_error, Hash, RuntimeApiRpc};
use jsonrpsee::{core::RpcResult, proc_macros::rpc};
use psp_primitives::{
    api::PspStakingApi,
    rpc::{CandidateView, ElectedView, EpochView, LedgerView},
    staking::Role,
};
use psp_runtime::{opaque::Block, AccountId, Balance, BlockNumber};
use sp_api::ProvideRuntimeApi;
use sp_blockchain::HeaderBackend;
use sp_core::crypto::Ss58Codec;

/// The staking methods. `at` defaults to the best block.
#[rpc(server)]
pub trait StakingRpc {
    /// The current epoch, when it started, its length and when the next one starts.
    #[method(name = "psp_stakingEpoch")]
    fn epoch(&self, at: Option<Hash>) -> RpcResult<EpochView>;

    /// The nodes elected to `role` (`authority`, `discovery` or `oracle`) for `epoch`
    /// (default: the current one), highest stake first; an error unless `epoch` is the
    /// current or the next one.
    #[method(name = "psp_stakingElected")]
    fn elected(
        &self,
        role: String,
        epoch: Option<u32>,
        at: Option<Hash>,
    ) -> RpcResult<Vec<ElectedView>>;

    /// An account's bond, unbonding chunks and candidacy; `null` if it has not bonded.
    #[method(name = "psp_stakingLedger")]
    fn ledger(&self, account: String, at: Option<Hash>) -> RpcResult<Option<LedgerView>>;

    /// The account backing a candidate node (`0x` + 64 hex digits) and its roles; `null` if
    /// the node does not stand.
    #[method(name = "psp_stakingCandidate")]
    fn candidate(&self, node: String, at: Option<Hash>) -> RpcResult<Option<CandidateView>>;
}

impl<C> StakingRpcServer for RuntimeApiRpc<C>
where
    C: ProvideRuntimeApi<Block> + HeaderBackend<Block> + Send + Sync + 'static,
    C::Api: PspStakingApi<Block, AccountId, Balance, BlockNumber>,
{
    fn epoch(&self, at: Option<Hash>) -> RpcResult<EpochView> {
        let schedule = self
            .client
            .runtime_api()
            .epoch(self.at(at))
            .map_err(runtime_error)?;
        Ok(EpochView {
            current: schedule.current,
            started_at: schedule.started_at.into(),
            length: schedule.length.into(),
            next_starts_at: schedule.next_starts_at.into(),
        })
    }

    fn elected(
        &self,
        role: String,
        epoch: Option<u32>,
        at: Option<Hash>,
    ) -> RpcResult<Vec<ElectedView>> {
        let role = Role::from_label(&role).ok_or_else(|| {
            invalid_params(format!(
                "unknown role {role:?}; expected authority, discovery or oracle"
            ))
        })?;
        let at = self.at(at);
        let api = self.client.runtime_api();
        let current = api.epoch(at).map_err(runtime_error)?.current;
        let epoch = epoch.unwrap_or(current);
        let elected = api.elected(at, role, epoch).map_err(runtime_error)?;
        let elected = elected.ok_or_else(|| {
            invalid_params(format!(
                "epoch {epoch} is neither the current ({current}) nor the next one; only those \
                 sets are kept"
            ))
        })?;
        Ok(elected
            .into_iter()
            .map(|e| ElectedView::from_elected(e, |owner| owner.to_ss58check()))
            .collect())
    }

    fn ledger(&self, account: String, at: Option<Hash>) -> RpcResult<Option<LedgerView>> {
        let who = AccountId::from_ss58check(&account)
            .map_err(|e| invalid_params(format!("account is not an SS58 address ({e:?})")))?;
        let ledger = self
            .client
            .runtime_api()
            .ledger(self.at(at), who)
            .map_err(runtime_error)?;
        Ok(ledger.map(LedgerView::from_info))
    }

    fn candidate(&self, node: String, at: Option<Hash>) -> RpcResult<Option<CandidateView>> {
        let node = parse_key(&node)?;
        let candidate = self
            .client
            .runtime_api()
            .candidate(self.at(at), node)
            .map_err(runtime_error)?;
        Ok(candidate.map(|(owner, roles)| CandidateView {
            owner: owner.to_ss58check(),
            roles,
        }))
    }
}
