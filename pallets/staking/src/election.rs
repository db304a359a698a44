//! Epochs and elections: this pallet tells `pallet-session` when an epoch ends and which
//! accounts validate the epoch it plans, and elects every role at each boundary.
//!
//! `pallet-session` plans one session ahead: when epoch `n` starts it asks
//! [`SessionManager::new_session`] for epoch `n + 1`. The election therefore runs at the start
//! of each epoch, for the next one, and the sets of both are kept.

use crate::{
    max_elected, min_stake, Candidates, Config, CurrentEpoch, Elected, ElectedNodeOf, EpochStart,
    Event, Invulnerables, Ledger, Pallet, WeightInfo,
};
use alloc::vec::Vec;
use frame_support::{
    dispatch::DispatchClass,
    pallet_prelude::*,
    traits::{EstimateNextSessionRotation, Get},
};
use frame_system::pallet_prelude::BlockNumberFor;
use pallet_session::{SessionManager, ShouldEndSession};
use psp_primitives::staking::{EpochIndex, NodeRegistry, Role};
use sp_runtime::{traits::Saturating, Permill};

impl<T: Config> Pallet<T> {
    /// Elects every role for `epoch` from the current candidates and stores the sets; drops
    /// candidates whose node identity is no longer active. Returns the elected authorities'
    /// accounts. Reads each candidate's entry, identity and ledger once: its weight is
    /// `WeightInfo::elect(candidates)`, registered with the block.
    pub(crate) fn elect(epoch: EpochIndex) -> Vec<T::AccountId> {
        let mut pools: [Vec<ElectedNodeOf<T>>; 3] = Default::default();
        let mut dropped = Vec::new();
        let mut candidates = 0u32;
        for (node, owner) in Candidates::<T>::iter() {
            candidates += 1;
            let Some(ledger) = Ledger::<T>::get(&owner) else {
                continue;
            };
            if T::Nodes::active_node_owner(&node).as_ref() != Some(&owner) {
                dropped.push((node, owner, ledger.roles));
                continue;
            }
            for role in ledger.roles.iter() {
                if ledger.active >= min_stake::<T>(role) {
                    pools[role as usize].push(ElectedNodeOf::<T> {
                        node,
                        owner: owner.clone(),
                        stake: ledger.active,
                    });
                }
            }
        }
        for (node, owner, roles) in dropped {
            for role in roles.iter() {
                Self::remove_from_role(&owner, node, role);
            }
            Self::deposit_event(Event::CandidateDropped { node, owner });
        }

        let mut authorities = Vec::new();
        for (role, mut pool) in Role::ALL.into_iter().zip(pools) {
            // Highest stake first; equal stakes go to the lower node key.
            pool.sort_by(|a, b| b.stake.cmp(&a.stake).then_with(|| a.node.cmp(&b.node)));
            pool.truncate(max_elected::<T>(role) as usize);
            if role == Role::Authority {
                authorities = pool.iter().map(|n| n.owner.clone()).collect();
            }
            let nodes = pool.iter().map(|n| n.node).collect();
            Elected::<T>::insert(epoch, role, BoundedVec::truncate_from(pool));
            Self::deposit_event(Event::Elected { epoch, role, nodes });
        }
        // Only the current and the next epoch's sets are kept.
        if let Some(old) = epoch.checked_sub(2) {
            for role in Role::ALL {
                Elected::<T>::remove(old, role);
            }
        }
        frame_system::Pallet::<T>::register_extra_weight_unchecked(
            T::WeightInfo::elect(candidates),
            DispatchClass::Mandatory,
        );
        authorities
    }

    /// The validators of a planned epoch: the invulnerables, then the elected authorities.
    fn validators(elected: Vec<T::AccountId>) -> Vec<T::AccountId> {
        let mut validators = Invulnerables::<T>::get().into_inner();
        for who in elected {
            if !validators.contains(&who) {
                validators.push(who);
            }
        }
        validators
    }
}

impl<T: Config> SessionManager<T::AccountId> for Pallet<T> {
    fn new_session(new_index: EpochIndex) -> Option<Vec<T::AccountId>> {
        let validators = Self::validators(Self::elect(new_index));
        // Never plan an epoch without authors: keep the current set instead.
        (!validators.is_empty()).then_some(validators)
    }

    fn end_session(_: EpochIndex) {}

    fn start_session(start_index: EpochIndex) {
        CurrentEpoch::<T>::put(start_index);
        EpochStart::<T>::put(frame_system::Pallet::<T>::block_number());
        Self::deposit_event(Event::EpochStarted { epoch: start_index });
    }
}

impl<T: Config> ShouldEndSession<BlockNumberFor<T>> for Pallet<T> {
    fn should_end_session(now: BlockNumberFor<T>) -> bool {
        now.saturating_sub(EpochStart::<T>::get()) >= T::EpochLength::get()
    }
}

impl<T: Config> EstimateNextSessionRotation<BlockNumberFor<T>> for Pallet<T> {
    fn average_session_length() -> BlockNumberFor<T> {
        T::EpochLength::get()
    }

    fn estimate_current_session_progress(now: BlockNumberFor<T>) -> (Option<Permill>, Weight) {
        let length = T::EpochLength::get();
        let elapsed = now.saturating_sub(EpochStart::<T>::get()).min(length);
        (
            Some(Permill::from_rational(elapsed, length)),
            T::DbWeight::get().reads(1),
        )
    }

    fn estimate_next_session_rotation(
        _now: BlockNumberFor<T>,
    ) -> (Option<BlockNumberFor<T>>, Weight) {
        (
            Some(EpochStart::<T>::get().saturating_add(T::EpochLength::get())),
            T::DbWeight::get().reads(1),
        )
    }
}

/// The rewards pallet's view of the elected oracles: the current epoch and the oracle set of
/// the current or next one.
impl<T: Config> psp_primitives::rewards::OracleSet<T::AccountId> for Pallet<T> {
    fn current_epoch() -> EpochIndex {
        CurrentEpoch::<T>::get()
    }

    fn oracles(epoch: EpochIndex) -> Option<Vec<(psp_primitives::IdentityKey, T::AccountId)>> {
        Self::elected(Role::Oracle, epoch)
            .map(|set| set.into_iter().map(|n| (n.node, n.owner)).collect())
    }

    fn set_oracles_unchecked(
        epoch: EpochIndex,
        oracles: Vec<(psp_primitives::IdentityKey, T::AccountId)>,
    ) {
        let set = oracles
            .into_iter()
            .map(|(node, owner)| ElectedNodeOf::<T> {
                node,
                owner,
                stake: Default::default(),
            })
            .collect::<Vec<_>>();
        Elected::<T>::insert(epoch, Role::Oracle, BoundedVec::truncate_from(set));
    }
}
