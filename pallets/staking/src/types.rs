//! Storage types of the staking pallet.

use crate::{BalanceOf, Config};
use frame_support::{pallet_prelude::*, CloneNoBound, DebugNoBound, EqNoBound, PartialEqNoBound};
use frame_system::pallet_prelude::BlockNumberFor;
use psp_primitives::{
    staking::{Role, RoleSet},
    IdentityKey,
};
use sp_runtime::traits::{Saturating, Zero};

/// The bound of every elected set: the largest of the per-role maximums.
pub struct MaxElected<T>(core::marker::PhantomData<T>);

impl<T: Config> Get<u32> for MaxElected<T> {
    fn get() -> u32 {
        T::MaxAuthorities::get()
            .max(T::MaxDiscovery::get())
            .max(T::MaxOracles::get())
    }
}

/// Stake on its way out: withdrawable from `unlocks_at`.
#[derive(
    Encode, Decode, MaxEncodedLen, TypeInfo, CloneNoBound, PartialEqNoBound, EqNoBound, DebugNoBound,
)]
#[scale_info(skip_type_params(T))]
#[codec(mel_bound())]
pub struct UnlockChunk<T: Config> {
    /// The amount.
    pub value: BalanceOf<T>,
    /// The first block it can be withdrawn at.
    pub unlocks_at: BlockNumberFor<T>,
}

/// An account's bond and candidacy. Everything in it is held under `HoldReason::Staking`:
/// the held amount always equals [`StakingLedger::total`].
#[derive(
    Encode, Decode, MaxEncodedLen, TypeInfo, CloneNoBound, PartialEqNoBound, EqNoBound, DebugNoBound,
)]
#[scale_info(skip_type_params(T))]
#[codec(mel_bound())]
pub struct StakingLedger<T: Config> {
    /// Bonded stake that counts in elections.
    pub active: BalanceOf<T>,
    /// Unbonding chunks, oldest first.
    pub unlocking: BoundedVec<UnlockChunk<T>, T::MaxUnlockingChunks>,
    /// The node identity the account stands with.
    pub node: Option<IdentityKey>,
    /// The roles it stands for (empty when not standing).
    pub roles: RoleSet,
}

impl<T: Config> StakingLedger<T> {
    /// An empty ledger.
    pub fn new() -> Self {
        Self {
            active: Zero::zero(),
            unlocking: BoundedVec::default(),
            node: None,
            roles: RoleSet::default(),
        }
    }

    /// Active plus unbonding: what is held.
    pub fn total(&self) -> BalanceOf<T> {
        self.unlocking
            .iter()
            .fold(self.active, |sum, chunk| sum.saturating_add(chunk.value))
    }

    /// The highest minimum stake among the roles stood for (zero when standing for none).
    pub fn required_stake(&self) -> BalanceOf<T> {
        self.roles
            .iter()
            .map(min_stake::<T>)
            .max()
            .unwrap_or_else(Zero::zero)
    }

    /// Whether nothing is bonded and the account stands for nothing: the ledger can go.
    pub fn is_empty(&self) -> bool {
        self.total().is_zero() && self.node.is_none()
    }
}

impl<T: Config> Default for StakingLedger<T> {
    fn default() -> Self {
        Self::new()
    }
}

/// The least active bond to stand for `role`.
pub fn min_stake<T: Config>(role: Role) -> BalanceOf<T> {
    match role {
        Role::Authority => T::MinAuthorityStake::get(),
        Role::Discovery => T::MinDiscoveryStake::get(),
        Role::Oracle => T::MinOracleStake::get(),
    }
}

/// The most nodes elected to `role`.
pub fn max_elected<T: Config>(role: Role) -> u32 {
    match role {
        Role::Authority => T::MaxAuthorities::get(),
        Role::Discovery => T::MaxDiscovery::get(),
        Role::Oracle => T::MaxOracles::get(),
    }
}
