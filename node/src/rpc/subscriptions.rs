//! The `psp_subscription*` and `psp_receiptKeys` JSON-RPC methods over the
//! `PspSubscriptionsApi` runtime API: the plans, an identity's subscription, and the receipt
//! keys the oracles published for an epoch.

use super::{parse_key, runtime_error, Hash, RuntimeApiRpc};
use jsonrpsee::{core::RpcResult, proc_macros::rpc};
use psp_primitives::{
    api::PspSubscriptionsApi,
    rpc::{ReceiptKeyView, SubscriptionView, SubscriptionsStatusView},
};
use psp_runtime::{opaque::Block, AccountId, Balance};
use sp_api::ProvideRuntimeApi;
use sp_blockchain::HeaderBackend;
use sp_core::crypto::Ss58Codec;

/// The subscription methods. `at` defaults to the best block.
#[rpc(server)]
pub trait SubscriptionsRpc {
    /// The current epoch, the plans and their prices, the receipts a subscription may draw
    /// per epoch, and the pot payments go to.
    #[method(name = "psp_subscriptionsStatus")]
    fn status(&self, at: Option<Hash>) -> RpcResult<SubscriptionsStatusView>;

    /// The subscription an identity (`0x` + 64 hex digits) holds; `null` if none.
    #[method(name = "psp_subscription")]
    fn subscription(
        &self,
        identity: String,
        at: Option<Hash>,
    ) -> RpcResult<Option<SubscriptionView>>;

    /// Every receipt key the oracles published for `epoch` (kept for the current epoch and
    /// the two before it).
    #[method(name = "psp_receiptKeys")]
    fn receipt_keys(&self, epoch: u32, at: Option<Hash>) -> RpcResult<Vec<ReceiptKeyView>>;
}

impl<C> SubscriptionsRpcServer for RuntimeApiRpc<C>
where
    C: ProvideRuntimeApi<Block> + HeaderBackend<Block> + Send + Sync + 'static,
    C::Api: PspSubscriptionsApi<Block, AccountId, Balance>,
{
    fn status(&self, at: Option<Hash>) -> RpcResult<SubscriptionsStatusView> {
        let status = self
            .client
            .runtime_api()
            .subscriptions_status(self.at(at))
            .map_err(runtime_error)?;
        Ok(SubscriptionsStatusView::from_info(status, |a| {
            a.to_ss58check()
        }))
    }

    fn subscription(
        &self,
        identity: String,
        at: Option<Hash>,
    ) -> RpcResult<Option<SubscriptionView>> {
        let identity = parse_key(&identity)?;
        let info = self
            .client
            .runtime_api()
            .subscription(self.at(at), identity)
            .map_err(runtime_error)?;
        Ok(info.map(|i| SubscriptionView::from_info(i, |a| a.to_ss58check())))
    }

    fn receipt_keys(&self, epoch: u32, at: Option<Hash>) -> RpcResult<Vec<ReceiptKeyView>> {
        let keys = self
            .client
            .runtime_api()
            .receipt_keys(self.at(at), epoch)
            .map_err(runtime_error)?;
        Ok(ReceiptKeyView::from_info(&keys))
    }
}
