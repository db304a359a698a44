//! The runtime APIs: what the overlay and clients ask the chain.
//!
//! - `PspApi`: identity look-ups.
//! - `PspStakingApi`: elected sets, bonds, candidacies and the epoch schedule.
//! - `PspRewardsApi`: bandwidth rewards — pending rewards and credited bytes per relay and
//!   epoch, epoch pools, the pot.
//! - `PspSubscriptionsApi`: stream subscriptions, plans and the oracles' receipt keys.
//!
//! The node serves it over JSON-RPC as `psp_*` methods next to the standard Substrate RPC.

use crate::{
    identity::{IdentityInfo, IdentityKey},
    rewards::{EpochRewards, RelayEpochInfo, RelayRewards, RewardsStatus},
    staking::{ElectedNode, EpochIndex, EpochSchedule, LedgerInfo, Role},
    subscriptions::{OracleReceiptKeys, SubscriptionInfo, SubscriptionsStatus},
};
use alloc::vec::Vec;
use codec::Codec;

/// Most node identities one `PspApi::nodes` call returns.
pub const MAX_NODES_PER_PAGE: u32 = 256;
/// Most unclaimed epochs one `PspRewardsApi::relay_rewards` call lists.
pub const MAX_PENDING_EPOCHS: u32 = 1024;

sp_api::decl_runtime_apis! {
    /// Identity look-ups for the overlay and clients.
    pub trait PspApi<AccountId, Balance, BlockNumber>
    where
        AccountId: Codec,
        Balance: Codec,
        BlockNumber: Codec,
    {
        /// The identity registered under an sr25519 public key, revoked ones included.
        fn identity_by_key(key: IdentityKey) -> Option<IdentityInfo<AccountId, Balance, BlockNumber>>;
        /// The identity an id string names: `None` if it does not parse, its check bytes do not
        /// match, or no identity with that key, kind and namespaces is registered.
        fn identity_by_id(id: Vec<u8>) -> Option<IdentityInfo<AccountId, Balance, BlockNumber>>;
        /// Active node identities in storage order, at most `limit` (capped at
        /// [`MAX_NODES_PER_PAGE`]), starting after the node key `start_after`.
        fn nodes(start_after: Option<IdentityKey>, limit: u32) -> Vec<IdentityInfo<AccountId, Balance, BlockNumber>>;
    }

    /// Staking look-ups: who is elected, who stands, who has bonded what, and when epochs turn.
    pub trait PspStakingApi<AccountId, Balance, BlockNumber>
    where
        AccountId: Codec,
        Balance: Codec,
        BlockNumber: Codec,
    {
        /// The nodes elected to `role` for `epoch`, in election order (highest stake first);
        /// `None` unless `epoch` is the current or the next one.
        fn elected(role: Role, epoch: EpochIndex) -> Option<Vec<ElectedNode<AccountId, Balance>>>;
        /// The bond, unbonding chunks and candidacy of an account.
        fn ledger(who: AccountId) -> Option<LedgerInfo<Balance, BlockNumber>>;
        /// The account backing a candidate node and the roles it stands for.
        fn candidate(node: IdentityKey) -> Option<(AccountId, Vec<Role>)>;
        /// The current epoch and when the next one starts.
        fn epoch() -> EpochSchedule<BlockNumber>;
    }

    /// Bandwidth rewards: what relays earned and can claim, what the oracles reported, and the
    /// pot rewards are paid from.
    pub trait PspRewardsApi<AccountId, Balance>
    where
        AccountId: Codec,
        Balance: Codec,
    {
        /// The pot, what it can pay and already owes, and which epoch's reports are accepted.
        fn rewards_status() -> RewardsStatus<AccountId, Balance>;
        /// A relay's lifetime dispute count and its unclaimed credits by epoch, each with its
        /// amount once the epoch is closed; at most [`MAX_PENDING_EPOCHS`] of them (sorted by
        /// epoch, but which ones is arbitrary when more are pending).
        fn relay_rewards(relay: IdentityKey) -> RelayRewards<Balance>;
        /// The bytes each oracle credited a relay in an epoch and the resulting credit, while
        /// the epoch's reports are kept (until shortly after it closes).
        fn relay_epoch(relay: IdentityKey, epoch: EpochIndex) -> Option<RelayEpochInfo<AccountId>>;
        /// An epoch's relays, credits, pool and payouts; `None` for an epoch nobody was
        /// credited in, or whose rewards were all claimed.
        fn epoch_rewards(epoch: EpochIndex) -> Option<EpochRewards<Balance>>;
    }

    /// Stream subscriptions (§8.2): the plans, who holds one, and the receipt keys the
    /// oracles published.
    pub trait PspSubscriptionsApi<AccountId, Balance>
    where
        AccountId: Codec,
        Balance: Codec,
    {
        /// The current epoch, the plans, the receipt bound and the pot payments go to.
        fn subscriptions_status() -> SubscriptionsStatus<AccountId, Balance>;
        /// The subscription `identity` holds (current or future), if any.
        fn subscription(identity: IdentityKey) -> Option<SubscriptionInfo<AccountId, Balance>>;
        /// The receipt keys each oracle published for `epoch` (kept for the current epoch and
        /// the two before it).
        fn receipt_keys(epoch: EpochIndex) -> Vec<OracleReceiptKeys>;
    }
}
