//! The logic behind the calls, the invariants, and the runtime API: verify first, write last.

use crate::{
    min_stake, BalanceOf, Candidates, Config, CurrentEpoch, Elected, ElectedNodeOf, EpochStart,
    Error, Event, HoldReason, Ledger, Offences, Pallet, StakingLedger, UnlockChunk,
};
use alloc::vec::Vec;
use frame_support::{
    pallet_prelude::*,
    traits::{
        fungible::{InspectHold, MutateHold},
        tokens::{Fortitude, Precision, Restriction},
    },
};
use frame_system::pallet_prelude::BlockNumberFor;
use psp_primitives::{
    staking::{
        equivocation_report_message, statement_message, EpochIndex, EpochSchedule,
        EquivocationEvidence, LedgerInfo, NodeEquivocationReport, NodeRegistry, Role,
        SignedStatement, UnlockingInfo,
    },
    IdentityKey,
};
use sp_runtime::traits::{Saturating, Zero};
use sp_runtime::transaction_validity::{
    InvalidTransaction, TransactionPriority, TransactionValidity, ValidTransaction,
};

/// Priority of a node's equivocation report in the pool: above ordinary transactions.
pub const NODE_REPORT_PRIORITY: TransactionPriority = TransactionPriority::MAX / 2;
/// Blocks a node's equivocation report stays valid in the pool.
pub const NODE_REPORT_LONGEVITY: u64 = 64;

/// The runtime API's view of a ledger in this runtime.
pub type LedgerInfoOf<T> = LedgerInfo<BalanceOf<T>, BlockNumberFor<T>>;

impl<T: Config> Pallet<T> {
    pub(crate) fn do_bond(who: T::AccountId, value: BalanceOf<T>) -> DispatchResult {
        ensure!(!value.is_zero(), Error::<T>::ZeroAmount);
        let reason = HoldReason::Staking.into();
        ensure!(
            T::Currency::can_hold(&reason, &who, value),
            Error::<T>::InsufficientBalance
        );
        T::Currency::hold(&reason, &who, value)?;
        Ledger::<T>::mutate(&who, |ledger| {
            let ledger = ledger.get_or_insert_with(StakingLedger::new);
            ledger.active = ledger.active.saturating_add(value);
        });
        Self::deposit_event(Event::Bonded { who, amount: value });
        Ok(())
    }

    pub(crate) fn do_unbond(who: T::AccountId, value: BalanceOf<T>) -> DispatchResult {
        ensure!(!value.is_zero(), Error::<T>::ZeroAmount);
        let mut ledger = Ledger::<T>::get(&who).ok_or(Error::<T>::NotBonded)?;
        ensure!(value <= ledger.active, Error::<T>::UnbondTooMuch);
        let remaining = ledger.active.saturating_sub(value);
        ensure!(
            remaining >= ledger.required_stake(),
            Error::<T>::WouldFallBelowMinimum
        );
        let unlocks_at =
            frame_system::Pallet::<T>::block_number().saturating_add(T::UnbondingPeriod::get());
        // Chunks unbonded in the same block share one entry.
        match ledger.unlocking.last_mut() {
            Some(last) if last.unlocks_at == unlocks_at => {
                last.value = last.value.saturating_add(value)
            }
            _ => ledger
                .unlocking
                .try_push(UnlockChunk { value, unlocks_at })
                .map_err(|_| Error::<T>::TooManyUnlockingChunks)?,
        }
        ledger.active = remaining;
        Ledger::<T>::insert(&who, ledger);
        Self::deposit_event(Event::Unbonded {
            who,
            amount: value,
            unlocks_at,
        });
        Ok(())
    }

    pub(crate) fn do_withdraw(who: T::AccountId) -> DispatchResult {
        let mut ledger = Ledger::<T>::get(&who).ok_or(Error::<T>::NotBonded)?;
        let now = frame_system::Pallet::<T>::block_number();
        let mut amount = BalanceOf::<T>::zero();
        ledger.unlocking.retain(|chunk| {
            let matured = chunk.unlocks_at <= now;
            if matured {
                amount = amount.saturating_add(chunk.value);
            }
            !matured
        });
        ensure!(!amount.is_zero(), Error::<T>::NothingToWithdraw);
        T::Currency::release(&HoldReason::Staking.into(), &who, amount, Precision::Exact)?;
        Self::store_ledger(&who, ledger);
        Self::deposit_event(Event::Withdrawn { who, amount });
        Ok(())
    }

    pub(crate) fn do_stand(who: T::AccountId, node: IdentityKey, role: Role) -> DispatchResult {
        let mut ledger = Ledger::<T>::get(&who).ok_or(Error::<T>::NotBonded)?;
        let owner = T::Nodes::active_node_owner(&node).ok_or(Error::<T>::NotANode)?;
        ensure!(owner == who, Error::<T>::NotNodeOwner);
        match ledger.node {
            Some(current) if current != node => return Err(Error::<T>::OtherNodeStanding.into()),
            Some(_) => ensure!(!ledger.roles.contains(role), Error::<T>::AlreadyCandidate),
            None => ensure!(
                Candidates::<T>::count() < T::MaxCandidates::get(),
                Error::<T>::TooManyCandidates
            ),
        }
        ensure!(
            ledger.active >= min_stake::<T>(role),
            Error::<T>::BelowMinimumStake
        );
        if ledger.node.is_none() {
            Candidates::<T>::insert(node, &who);
            ledger.node = Some(node);
        }
        ledger.roles.insert(role);
        Ledger::<T>::insert(&who, ledger);
        Self::deposit_event(Event::CandidateStood {
            node,
            owner: who,
            role,
        });
        Ok(())
    }

    pub(crate) fn do_leave(who: T::AccountId, role: Role) -> DispatchResult {
        let ledger = Ledger::<T>::get(&who).ok_or(Error::<T>::NotBonded)?;
        let node = ledger.node.ok_or(Error::<T>::NotCandidate)?;
        ensure!(ledger.roles.contains(role), Error::<T>::NotCandidate);
        Self::remove_from_role(&who, node, role);
        Self::deposit_event(Event::CandidateLeft { node, role });
        Ok(())
    }

    pub(crate) fn do_report(
        reporter: T::AccountId,
        evidence: EquivocationEvidence,
    ) -> DispatchResult {
        let owner = Self::check_evidence(&evidence)?;
        let role = evidence.first.statement.role;
        let offence = (evidence.offender, role, evidence.first.statement.slot);
        let (amount, reward) = Self::slash(&owner, &reporter);
        Self::remove_from_role(&owner, evidence.offender, role);
        Offences::<T>::insert(offence, CurrentEpoch::<T>::get());
        Self::deposit_event(Event::Slashed {
            node: evidence.offender,
            owner,
            role,
            amount,
            reporter,
            reward,
        });
        Ok(())
    }

    /// Checks evidence without changing anything: the statements conflict, both are the
    /// offender's, the offence is new and the offender is elected to the role for the current
    /// or next epoch. Its owner if so.
    fn check_evidence(evidence: &EquivocationEvidence) -> Result<T::AccountId, Error<T>> {
        ensure!(evidence.conflicts(), Error::<T>::EvidenceNotConflicting);
        let genesis = T::Nodes::genesis_hash();
        for signed in [&evidence.first, &evidence.second] {
            ensure!(
                Self::signed_by(&genesis, &evidence.offender, signed),
                Error::<T>::BadEvidenceSignature
            );
        }
        let role = evidence.first.statement.role;
        let offence = (evidence.offender, role, evidence.first.statement.slot);
        ensure!(
            !Offences::<T>::contains_key(offence),
            Error::<T>::AlreadyReported
        );
        Self::elected_owner(&evidence.offender, Some(role)).ok_or(Error::<T>::OffenderNotElected)
    }

    /// The owner of `node` if it is elected for the current or next epoch, to `role` or (with
    /// `None`) to any role.
    fn elected_owner(node: &IdentityKey, role: Option<Role>) -> Option<T::AccountId> {
        let epoch = CurrentEpoch::<T>::get();
        let roles = match role {
            Some(role) => alloc::vec![role],
            None => alloc::vec![Role::Authority, Role::Discovery, Role::Oracle],
        };
        [epoch, epoch.saturating_add(1)].into_iter().find_map(|e| {
            roles.iter().find_map(|role| {
                Elected::<T>::get(e, role)
                    .into_iter()
                    .find(|n| n.node == *node)
                    .map(|n| n.owner)
            })
        })
    }

    /// A report by an elected node with its node key: the reporting node's owner if the
    /// reporter is elected (any role, current or next epoch) and signed the report, and the
    /// evidence checks.
    pub(crate) fn check_node_report(
        report: &NodeEquivocationReport,
    ) -> Result<T::AccountId, Error<T>> {
        let reporter =
            Self::elected_owner(&report.reporter, None).ok_or(Error::<T>::ReporterNotElected)?;
        let message = equivocation_report_message(
            &T::Nodes::genesis_hash(),
            &report.evidence,
            &report.reporter,
        );
        ensure!(
            sp_io::crypto::sr25519_verify(
                &sp_core::sr25519::Signature::from_raw(report.signature),
                &message,
                &sp_core::sr25519::Public::from_raw(report.reporter),
            ),
            Error::<T>::BadReportSignature
        );
        Self::check_evidence(&report.evidence)?;
        Ok(reporter)
    }

    /// The pool's check of a node's report ([`Self::check_node_report`]): one transaction per
    /// offence (its tag), at [`NODE_REPORT_PRIORITY`], valid for [`NODE_REPORT_LONGEVITY`]
    /// blocks.
    pub fn validate_node_report(report: &NodeEquivocationReport) -> TransactionValidity {
        if let Err(e) = Self::check_node_report(report) {
            let code = match e {
                Error::<T>::ReporterNotElected => 1,
                Error::<T>::BadReportSignature => 2,
                Error::<T>::EvidenceNotConflicting => 3,
                Error::<T>::BadEvidenceSignature => 4,
                Error::<T>::AlreadyReported => return InvalidTransaction::Stale.into(),
                Error::<T>::OffenderNotElected => 5,
                _ => 0,
            };
            return InvalidTransaction::Custom(code).into();
        }
        let statement = &report.evidence.first.statement;
        ValidTransaction::with_tag_prefix("PspEquivocation")
            .priority(NODE_REPORT_PRIORITY)
            .and_provides((report.evidence.offender, statement.role, statement.slot))
            .longevity(NODE_REPORT_LONGEVITY)
            .propagate(true)
            .build()
    }

    /// Slashes `SlashFraction` of the bond, active stake first, then the newest unbonding
    /// chunks; pays `ReporterShare` of it to `reporter` and burns the rest. Returns the amount
    /// slashed and the reward paid.
    fn slash(owner: &T::AccountId, reporter: &T::AccountId) -> (BalanceOf<T>, BalanceOf<T>) {
        let Some(mut ledger) = Ledger::<T>::get(owner) else {
            return (Zero::zero(), Zero::zero());
        };
        let amount = T::SlashFraction::get() * ledger.total();
        let mut left = amount;
        let from_active = left.min(ledger.active);
        ledger.active = ledger.active.saturating_sub(from_active);
        left = left.saturating_sub(from_active);
        for chunk in ledger.unlocking.iter_mut().rev() {
            let take = left.min(chunk.value);
            chunk.value = chunk.value.saturating_sub(take);
            left = left.saturating_sub(take);
        }
        ledger.unlocking.retain(|chunk| !chunk.value.is_zero());

        let reason = HoldReason::Staking.into();
        let reward = T::ReporterShare::get() * amount;
        let paid = T::Currency::transfer_on_hold(
            &reason,
            owner,
            reporter,
            reward,
            Precision::Exact,
            Restriction::Free,
            Fortitude::Force,
        )
        .unwrap_or_else(|_| Zero::zero());
        // Whatever the reporter could not receive (e.g. below the existential deposit) is
        // burned with the rest.
        let burned = T::Currency::burn_held(
            &reason,
            owner,
            amount.saturating_sub(paid),
            Precision::BestEffort,
            Fortitude::Force,
        )
        .unwrap_or_else(|_| Zero::zero());
        Ledger::<T>::insert(owner, ledger);
        (paid.saturating_add(burned), paid)
    }

    /// Takes `node` out of `role`: out of its owner's candidacy (dropping the candidacy when
    /// no role is left) and out of the current and next elected sets.
    pub(crate) fn remove_from_role(owner: &T::AccountId, node: IdentityKey, role: Role) {
        if let Some(mut ledger) = Ledger::<T>::get(owner) {
            if ledger.node == Some(node) {
                ledger.roles.remove(role);
                if ledger.roles.is_empty() {
                    ledger.node = None;
                    Candidates::<T>::remove(node);
                }
            }
            Self::store_ledger(owner, ledger);
        }
        let epoch = CurrentEpoch::<T>::get();
        for e in [epoch, epoch.saturating_add(1)] {
            Elected::<T>::mutate(e, role, |set| set.retain(|n| n.node != node));
        }
    }

    /// Writes a ledger, or removes it once nothing is bonded and it stands for nothing.
    pub(crate) fn store_ledger(who: &T::AccountId, ledger: StakingLedger<T>) {
        if ledger.is_empty() {
            Ledger::<T>::remove(who);
        } else {
            Ledger::<T>::insert(who, ledger);
        }
    }

    fn signed_by(genesis: &[u8; 32], key: &IdentityKey, signed: &SignedStatement) -> bool {
        let message = statement_message(genesis, &signed.statement);
        sp_io::crypto::sr25519_verify(
            &sp_core::sr25519::Signature::from_raw(signed.signature),
            &message,
            &sp_core::sr25519::Public::from_raw(*key),
        )
    }

    /// An account's ledger, as the runtime API returns it.
    pub fn ledger_info(who: &T::AccountId) -> Option<LedgerInfoOf<T>> {
        Ledger::<T>::get(who).map(|ledger| LedgerInfo {
            active: ledger.active,
            unlocking: ledger
                .unlocking
                .iter()
                .map(|c| UnlockingInfo {
                    value: c.value,
                    unlocks_at: c.unlocks_at,
                })
                .collect(),
            node: ledger.node,
            roles: ledger.roles.iter().collect(),
        })
    }

    /// A candidate node's backing account and roles.
    pub fn candidate_info(node: &IdentityKey) -> Option<(T::AccountId, Vec<Role>)> {
        let owner = Candidates::<T>::get(node)?;
        let roles = Ledger::<T>::get(&owner)
            .map(|l| l.roles.iter().collect())
            .unwrap_or_default();
        Some((owner, roles))
    }

    /// The nodes elected to `role` for `epoch`, if `epoch` is the current or the next one.
    pub fn elected(role: Role, epoch: EpochIndex) -> Option<Vec<ElectedNodeOf<T>>> {
        let current = CurrentEpoch::<T>::get();
        (epoch == current || epoch == current.saturating_add(1))
            .then(|| Elected::<T>::get(epoch, role).into_inner())
    }

    /// The current epoch and when the next starts.
    pub fn epoch_schedule() -> EpochSchedule<BlockNumberFor<T>> {
        let started_at = EpochStart::<T>::get();
        let length = T::EpochLength::get();
        EpochSchedule {
            current: CurrentEpoch::<T>::get(),
            started_at,
            length,
            next_starts_at: started_at.saturating_add(length),
        }
    }

    /// The pallet's invariants: each ledger's total is exactly what the currency holds for it;
    /// every candidate is backed by a ledger naming it; every elected node of the current and
    /// next epoch is a live candidate for that role; no elected set exceeds its role's maximum
    /// or names a node twice.
    pub fn check_invariants() -> Result<(), &'static str> {
        let reason = HoldReason::Staking.into();
        for (who, ledger) in Ledger::<T>::iter() {
            if T::Currency::balance_on_hold(&reason, &who) != ledger.total() {
                return Err("held balance differs from the ledger's total");
            }
            if ledger.node.is_some() == ledger.roles.is_empty() {
                return Err("a ledger names a node without roles or roles without a node");
            }
            if let Some(node) = ledger.node {
                if Candidates::<T>::get(node).as_ref() != Some(&who) {
                    return Err("a ledger's node is not a candidate backed by it");
                }
            }
        }
        let mut candidates = 0u32;
        for (node, owner) in Candidates::<T>::iter() {
            candidates += 1;
            if Ledger::<T>::get(&owner).and_then(|l| l.node) != Some(node) {
                return Err("a candidate's ledger does not name it");
            }
        }
        if candidates != Candidates::<T>::count() || candidates > T::MaxCandidates::get() {
            return Err("candidate count is wrong or over the maximum");
        }
        let epoch = CurrentEpoch::<T>::get();
        for e in [epoch, epoch.saturating_add(1)] {
            for role in Role::ALL {
                let set = Elected::<T>::get(e, role);
                if set.len() as u32 > crate::max_elected::<T>(role) {
                    return Err("an elected set exceeds its role's maximum");
                }
                let mut seen = alloc::collections::BTreeSet::new();
                for elected in &set {
                    if !seen.insert(elected.node) {
                        return Err("a node is elected twice to one role");
                    }
                    let live = Candidates::<T>::get(elected.node)
                        .filter(|owner| owner == &elected.owner)
                        .and_then(Ledger::<T>::get)
                        .is_some_and(|ledger| ledger.roles.contains(role));
                    if !live {
                        return Err("an elected node is not a live candidate for its role");
                    }
                }
            }
        }
        Ok(())
    }
}
