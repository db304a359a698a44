//! Bandwidth rewards from the client: the `psp_rewards*` look-ups and `claim`.

use crate::{
    chain::{Chain, Progress, TxOutcome},
    error::{Error, Result},
    hex0x,
};
use psp_primitives::rpc::{EpochRewardsView, RelayEpochView, RelayRewardsView, RewardsStatusView};
use subxt::{rpcs::rpc_params, utils::Static};
use subxt_signer::sr25519::Keypair;

/// The runtime's name of the rewards pallet.
pub const PALLET: &str = "PspRewards";
/// Most epochs one `claim` covers (the runtime's `MaxClaimEpochs`).
pub const MAX_CLAIM_EPOCHS: usize = 128;

impl Chain {
    /// `psp_rewardsStatus`: the pot, what it owes, the pool per epoch, the reporting epoch.
    pub async fn rewards_status(&self) -> Result<RewardsStatusView> {
        self.request("psp_rewardsStatus", rpc_params![]).await
    }

    /// `psp_rewardsRelay`: a relay's unclaimed rewards by epoch and lifetime disputes.
    pub async fn relay_rewards(&self, relay: &[u8; 32]) -> Result<RelayRewardsView> {
        self.request("psp_rewardsRelay", rpc_params![hex0x(relay)])
            .await
    }

    /// `psp_rewardsRelayEpoch`: what each oracle credited a relay in an epoch.
    pub async fn relay_epoch(
        &self,
        relay: &[u8; 32],
        epoch: u32,
    ) -> Result<Option<RelayEpochView>> {
        self.request("psp_rewardsRelayEpoch", rpc_params![hex0x(relay), epoch])
            .await
    }

    /// `psp_rewardsEpoch`: an epoch's relays, credits, pool and payouts.
    pub async fn epoch_rewards(&self, epoch: u32) -> Result<Option<EpochRewardsView>> {
        self.request("psp_rewardsEpoch", rpc_params![epoch]).await
    }

    /// `psp_rewardsEpochStart`: the chain time (unix ms) `epoch` started at, where relays and
    /// consumers cut their usage between epochs; `None` before it started.
    pub async fn rewards_epoch_start(&self, epoch: u32) -> Result<Option<u64>> {
        self.request("psp_rewardsEpochStart", rpc_params![epoch])
            .await
    }

    /// What `psp rewards status` shows as JSON: the `pot` ([`Chain::rewards_status`]) and,
    /// with a relay, its `relay` key (`node`) and unclaimed `rewards`.
    pub async fn rewards_overview(&self, relay: Option<&[u8; 32]>) -> Result<serde_json::Value> {
        let mut status = serde_json::json!({ "pot": self.rewards_status().await? });
        if let Some(key) = relay {
            status["relay"] = serde_json::json!({
                "node": hex0x(key),
                "rewards": self.relay_rewards(key).await?,
            });
        }
        Ok(status)
    }

    /// Claims what `relay` earned in `epochs` (at most [`MAX_CLAIM_EPOCHS`]); `owner`, the
    /// relay's owner, signs and receives the payment.
    pub async fn claim_rewards(
        &self,
        owner: &Keypair,
        relay: [u8; 32],
        epochs: Vec<u32>,
        progress: impl FnMut(Progress) + Send,
    ) -> Result<TxOutcome> {
        let payload = subxt::tx::dynamic(PALLET, "claim", (Static(relay), Static(epochs)));
        self.submit("PspRewards.claim", payload, owner, progress)
            .await
    }

    /// Claims every closed epoch `relay` has a reward in (the oldest [`MAX_CLAIM_EPOCHS`]);
    /// returns the epochs claimed and the outcome. Fails with [`Error::InvalidInput`] when
    /// nothing is claimable yet.
    pub async fn claim_all_rewards(
        &self,
        owner: &Keypair,
        relay: [u8; 32],
        progress: impl FnMut(Progress) + Send,
    ) -> Result<(Vec<u32>, u128, TxOutcome)> {
        let pending = self.relay_rewards(&relay).await?.pending;
        let claimed: Vec<(u32, u128)> = pending
            .iter()
            .filter_map(|p| Some((p.epoch, p.amount.as_deref()?.parse().ok()?)))
            .take(MAX_CLAIM_EPOCHS)
            .collect();
        let epochs: Vec<u32> = claimed.iter().map(|(e, _)| *e).collect();
        let amount = claimed.iter().map(|(_, a)| *a).sum();
        if epochs.is_empty() {
            let open = pending.len();
            return Err(Error::InvalidInput {
                what: "claim",
                reason: format!(
                    "relay {} has nothing to claim yet ({open} epoch(s) still collecting reports; \
                     an epoch closes when the one after next starts)",
                    hex0x(&relay)
                ),
            });
        }
        let outcome = self
            .claim_rewards(owner, relay, epochs.clone(), progress)
            .await?;
        Ok((epochs, amount, outcome))
    }
}
