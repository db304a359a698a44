//! The logic behind the calls and hooks, the runtime API and the invariants: verify first,
//! write last.

use crate::{
    Accrual, Accrued, BalanceOf, Clock, Committed, Config, Disputes, EpochSnapshot, EpochTotals,
    Error, Event, Oracle, Pallet, Payout, Payouts, PruneStage, Pruning, RelayTally, SessionMark,
    Sessions, Snapshots, Tallies, Totals, WeightInfo,
};
use alloc::{
    collections::{BTreeMap, BTreeSet},
    vec::Vec,
};
use frame_support::{
    pallet_prelude::*,
    traits::{
        fungible::{Inspect, Mutate},
        tokens::{Fortitude, Preservation},
        UnixTime,
    },
};
use psp_primitives::{
    api::MAX_PENDING_EPOCHS,
    rewards::{
        node_batch_message, pro_rata, quorum, rate_limited_pool, relay_credit, EpochRewards,
        NodeUsageBatch, Normalization, OracleSet, PendingReward, RecordError, RelayEpochInfo,
        RelayRewards, RewardsStatus, SessionId, UsageRecord, Verdict,
    },
    staking::{EpochIndex, NodeRegistry},
    IdentityKey, IdentitySignature,
};
use sp_runtime::{
    traits::{AccountIdConversion, Saturating, Zero},
    transaction_validity::{
        InvalidTransaction, TransactionPriority, TransactionValidity, ValidTransaction,
    },
    SaturatedConversion,
};

/// Most epochs closed at the start of one block (more than one only after a gap).
pub const MAX_CLOSES_PER_BLOCK: u32 = 2;
/// Most storage keys pruned in one block.
pub const MAX_PRUNE_PER_BLOCK: u32 = 512;

/// What one batch does to one relay's tally.
struct RelayUpdate {
    /// This oracle's credit for the relay's sessions in the batch.
    credit: u64,
    /// Sessions of the batch disputed for the first time.
    new_disputes: u32,
}

impl<T: Config> Pallet<T> {
    /// The pot rewards are paid from.
    pub fn pot_account() -> T::AccountId {
        T::PalletId::get().into_account_truncating()
    }

    /// What the pot can pay out: its balance above the existential deposit.
    pub fn pot_balance() -> BalanceOf<T> {
        T::Currency::reducible_balance(
            &Self::pot_account(),
            Preservation::Preserve,
            Fortitude::Polite,
        )
    }

    /// The normalization rule of this runtime.
    pub fn normalization() -> Normalization {
        Normalization {
            tolerance: T::Tolerance::get(),
            max_bytes_per_second: T::MaxBytesPerSecond::get(),
            max_session_bytes: T::MaxSessionBytes::get(),
        }
    }

    pub(crate) fn do_submit(
        oracle: OracleRef<T::AccountId>,
        epoch: EpochIndex,
        reports: Vec<UsageRecord>,
    ) -> DispatchResult {
        ensure!(!reports.is_empty(), Error::<T>::EmptyBatch);
        let count = u32::try_from(reports.len()).unwrap_or(u32::MAX);
        ensure!(count <= T::MaxBatchSize::get(), Error::<T>::TooManyReports);
        let current = Clock::<T>::get().current.ok_or(Error::<T>::NoOracleSet)?;
        ensure!(epoch < current, Error::<T>::EpochNotEnded);
        ensure!(
            epoch.saturating_add(1) == current,
            Error::<T>::ReportWindowClosed
        );
        let mut snapshot = Snapshots::<T>::get(epoch).ok_or(Error::<T>::NoOracleSet)?;
        let index = snapshot
            .oracles
            .iter()
            .position(|o| match &oracle {
                OracleRef::Owner(who) => o.owner == *who,
                OracleRef::Node(node) => o.node == *node,
            })
            .ok_or(Error::<T>::NotOracle)?;
        let sessions = snapshot.oracles[index].sessions.saturating_add(count);
        ensure!(
            sessions <= T::MaxSessionsPerOracle::get(),
            Error::<T>::TooManySessions
        );
        // Positions fit a 64-bit mask: `MaxOracles` is at most 64 (`integrity_test`).
        let bit = u32::try_from(index)
            .ok()
            .and_then(|i| 1u64.checked_shl(i))
            .ok_or(Error::<T>::NotOracle)?;

        // Every record: binding, signatures, not reported by this oracle, one relay per
        // session. Nothing is written until all of them pass.
        let mut seen = BTreeSet::new();
        for record in &reports {
            ensure!(seen.insert(record.session), Error::<T>::DuplicateSession);
        }
        let genesis = T::Nodes::genesis_hash();
        let rule = Self::normalization();
        let span = snapshot.span();
        let mut marks: Vec<(SessionId, SessionMark)> = Vec::with_capacity(reports.len());
        let mut updates: BTreeMap<IdentityKey, RelayUpdate> = BTreeMap::new();
        let mut disputed = 0u32;
        for record in &reports {
            let checked = record
                .check(&genesis, epoch, verify_sr25519)
                .map_err(|e| match e {
                    RecordError::SessionKeyMismatch => Error::<T>::SessionKeyMismatch,
                    RecordError::BadRelaySignature => Error::<T>::BadRelaySignature,
                    RecordError::BadClientSignature => Error::<T>::BadClientSignature,
                })?;
            let mut mark = match Sessions::<T>::get(epoch, record.session) {
                Some(mark) => {
                    ensure!(mark.relay == record.relay, Error::<T>::SessionRelayMismatch);
                    ensure!(mark.oracles & bit == 0, Error::<T>::AlreadyReported);
                    mark
                }
                None => SessionMark {
                    relay: record.relay,
                    oracles: 0,
                    disputed: false,
                },
            };
            mark.oracles |= bit;
            let update = updates.entry(record.relay).or_insert(RelayUpdate {
                credit: 0,
                new_disputes: 0,
            });
            match rule.normalize(checked.relay_usage(), checked.client_usage(), span) {
                Verdict::Credit(bytes) => update.credit = update.credit.saturating_add(bytes),
                Verdict::Disputed => {
                    disputed = disputed.saturating_add(1);
                    if !mark.disputed {
                        mark.disputed = true;
                        update.new_disputes = update.new_disputes.saturating_add(1);
                    }
                }
            }
            marks.push((record.session, mark));
        }

        // Every relay: active, and its tally with this oracle's credit added.
        let elected = snapshot.elected();
        let position = u8::try_from(index).map_err(|_| Error::<T>::NotOracle)?;
        let mut totals = Totals::<T>::get(epoch).unwrap_or_default();
        let mut tallies = Vec::with_capacity(updates.len());
        for (relay, update) in updates {
            let owner = T::Nodes::active_node_owner(&relay).ok_or(Error::<T>::UnknownRelay)?;
            let mut tally = match Tallies::<T>::get(epoch, relay) {
                Some(tally) => tally,
                None => {
                    ensure!(
                        totals.relays < T::MaxRelaysPerEpoch::get(),
                        Error::<T>::TooManyRelays
                    );
                    totals.relays = totals.relays.saturating_add(1);
                    RelayTally {
                        owner,
                        reports: BoundedVec::default(),
                        credit: 0,
                    }
                }
            };
            match tally.reports.iter_mut().find(|(i, _)| *i == position) {
                Some((_, bytes)) => *bytes = bytes.saturating_add(update.credit),
                // Cannot fail: one entry per oracle position, and positions are below
                // `MaxOracles`.
                None => tally
                    .reports
                    .try_push((position, update.credit))
                    .map_err(|_| Error::<T>::NotOracle)?,
            }
            let before = tally.credit;
            let credits: Vec<u64> = tally.reports.iter().map(|(_, bytes)| *bytes).collect();
            tally.credit = relay_credit(&credits, elected);
            totals.credit = totals
                .credit
                .saturating_sub(u128::from(before))
                .saturating_add(u128::from(tally.credit));
            match (before > 0, tally.credit > 0) {
                (false, true) => totals.credited = totals.credited.saturating_add(1),
                (true, false) => totals.credited = totals.credited.saturating_sub(1),
                _ => {}
            }
            tallies.push((relay, tally, update.new_disputes));
        }

        for (session, mark) in marks {
            Sessions::<T>::insert(epoch, session, mark);
        }
        for (relay, tally, new_disputes) in tallies {
            if tally.credit > 0 {
                let accrual = Accrual {
                    owner: tally.owner.clone(),
                    credit: tally.credit,
                };
                Accrued::<T>::insert(relay, epoch, accrual);
            } else {
                Accrued::<T>::remove(relay, epoch);
            }
            if new_disputes > 0 {
                Disputes::<T>::mutate(relay, |n| *n = n.saturating_add(new_disputes));
            }
            Tallies::<T>::insert(epoch, relay, tally);
        }
        Totals::<T>::insert(epoch, totals);
        let oracle = snapshot.oracles[index].node;
        snapshot.oracles[index].sessions = sessions;
        Snapshots::<T>::insert(epoch, snapshot);
        Self::deposit_event(Event::ReportsSubmitted {
            epoch,
            oracle,
            sessions: count,
            disputed,
        });
        Ok(())
    }

    pub(crate) fn do_claim(
        who: T::AccountId,
        relay: IdentityKey,
        epochs: Vec<EpochIndex>,
    ) -> DispatchResult {
        ensure!(!epochs.is_empty(), Error::<T>::NoEpochs);
        ensure!(
            epochs.len() <= T::MaxClaimEpochs::get() as usize,
            Error::<T>::TooManyEpochs
        );
        let mut seen = BTreeSet::new();
        let mut claims = Vec::with_capacity(epochs.len());
        let mut total = BalanceOf::<T>::zero();
        for epoch in epochs {
            ensure!(seen.insert(epoch), Error::<T>::DuplicateEpoch);
            let accrual = Accrued::<T>::get(relay, epoch).ok_or(Error::<T>::NothingAccrued)?;
            ensure!(accrual.owner == who, Error::<T>::NotRelayOwner);
            let mut payout = Payouts::<T>::get(epoch).ok_or(Error::<T>::EpochNotClosed)?;
            let amount = Self::share(&payout, accrual.credit);
            payout.paid = payout.paid.saturating_add(amount);
            payout.unclaimed = payout.unclaimed.saturating_sub(1);
            total = total.saturating_add(amount);
            claims.push((epoch, payout, amount));
        }
        let pot = Self::pot_account();
        ensure!(Self::pot_balance() >= total, Error::<T>::PotInsufficient);
        if !total.is_zero() {
            T::Currency::transfer(&pot, &who, total, Preservation::Preserve)?;
        }

        let mut released = total;
        for (epoch, payout, amount) in claims {
            Accrued::<T>::remove(relay, epoch);
            Self::deposit_event(Event::RewardClaimed {
                relay,
                owner: who.clone(),
                epoch,
                amount,
            });
            if payout.unclaimed == 0 {
                // The last credited relay claimed: the rounding dust is no longer owed.
                let dust = payout.pool.saturating_sub(payout.paid);
                released = released.saturating_add(dust);
                Payouts::<T>::remove(epoch);
                Self::deposit_event(Event::EpochSettled { epoch, dust });
            } else {
                Payouts::<T>::insert(epoch, payout);
            }
        }
        Committed::<T>::mutate(|c| *c = c.saturating_sub(released));
        Ok(())
    }

    /// A credit's share of a closed epoch's pool, rounded down.
    fn share(payout: &Payout<T>, credit: u64) -> BalanceOf<T> {
        pro_rata(
            payout.pool.saturated_into::<u128>(),
            u128::from(credit),
            payout.total_credit,
        )
        .saturated_into()
    }

    /// The start of a block: on a new epoch, records its oracles and closes the epochs whose
    /// report window is over (at most [`MAX_CLOSES_PER_BLOCK`]). Returns the weight used.
    pub(crate) fn tick(current: EpochIndex) -> Weight {
        let mut weight = T::WeightInfo::on_initialize();
        let mut clock = Clock::<T>::get();
        let mut changed = false;
        if clock.current != Some(current) {
            if clock.current.is_none() {
                // The first block the pallet runs: nothing older exists.
                clock.next_to_close = current;
                Pruning::<T>::mutate(|p| p.epoch = current);
            }
            Self::start_epoch(current);
            clock.current = Some(current);
            weight.saturating_accrue(T::WeightInfo::start_epoch());
            changed = true;
        }
        let mut closed = 0;
        while closed < MAX_CLOSES_PER_BLOCK && clock.next_to_close.saturating_add(2) <= current {
            Self::close_epoch(clock.next_to_close);
            clock.next_to_close = clock.next_to_close.saturating_add(1);
            closed += 1;
            weight.saturating_accrue(T::WeightInfo::close_epoch());
        }
        if changed || closed > 0 {
            Clock::<T>::put(clock);
        }
        weight
    }

    /// Records the oracles of `epoch` (one per owner and node, at most `MaxOracles`) and its
    /// start time, which is also the end of the previous epoch.
    pub(crate) fn start_epoch(epoch: EpochIndex) {
        let now = u64::try_from(T::Time::now().as_millis()).unwrap_or(u64::MAX);
        let mut oracles = BoundedVec::<Oracle<T::AccountId>, T::MaxOracles>::default();
        for (node, owner) in T::Oracles::oracles(epoch).unwrap_or_default() {
            if oracles.iter().any(|o| o.node == node || o.owner == owner) {
                continue;
            }
            let oracle = Oracle {
                node,
                owner,
                sessions: 0,
            };
            if oracles.try_push(oracle).is_err() {
                break;
            }
        }
        let count = oracles.len() as u32;
        Snapshots::<T>::insert(
            epoch,
            EpochSnapshot {
                oracles,
                started_at_ms: now,
                ended_at_ms: None,
            },
        );
        if let Some(previous) = epoch.checked_sub(1) {
            Snapshots::<T>::mutate_exists(previous, |snapshot| {
                if let Some(snapshot) = snapshot {
                    snapshot.ended_at_ms = Some(now);
                }
            });
        }
        Self::deposit_event(Event::EpochStarted {
            epoch,
            oracles: count,
        });
    }

    /// Ends `epoch`'s report window: sets its pool aside (what the pot can cover on top of
    /// what it owes, at most `RewardPerEpoch` and at most `MaxRewardPerGigabyte` times the
    /// epoch's credit) if any relay was credited.
    pub(crate) fn close_epoch(epoch: EpochIndex) {
        let totals = Totals::<T>::take(epoch).unwrap_or_default();
        let mut pool = BalanceOf::<T>::zero();
        if totals.credited > 0 {
            let committed = Committed::<T>::get();
            let available = Self::pot_balance().saturating_sub(committed);
            let rate_limit: BalanceOf<T> = rate_limited_pool(
                T::MaxRewardPerGigabyte::get().saturated_into(),
                totals.credit,
            )
            .saturated_into();
            pool = T::RewardPerEpoch::get().min(available).min(rate_limit);
            Payouts::<T>::insert(
                epoch,
                Payout {
                    pool,
                    paid: Zero::zero(),
                    total_credit: totals.credit,
                    relays: totals.relays,
                    credited: totals.credited,
                    unclaimed: totals.credited,
                },
            );
            Committed::<T>::put(committed.saturating_add(pool));
        }
        Self::deposit_event(Event::EpochClosed {
            epoch,
            pool,
            total_credit: totals.credit,
            credited_relays: totals.credited,
        });
    }

    /// Prunes closed epochs' reports with at most `remaining` weight.
    pub(crate) fn prune_within(remaining: Weight) -> Weight {
        let base = T::WeightInfo::prune(0);
        if !remaining.all_gte(base) {
            return Weight::zero();
        }
        let per_key = T::WeightInfo::prune(1).saturating_sub(base);
        let spare = remaining.saturating_sub(base);
        let by_time = spare
            .ref_time()
            .checked_div(per_key.ref_time())
            .unwrap_or(u64::MAX);
        let by_proof = spare
            .proof_size()
            .checked_div(per_key.proof_size())
            .unwrap_or(u64::MAX);
        let keys = by_time.min(by_proof).min(u64::from(MAX_PRUNE_PER_BLOCK)) as u32;
        if keys == 0 {
            return Weight::zero();
        }
        let removed = Self::prune(keys);
        T::WeightInfo::prune(removed)
    }

    /// Removes at most `limit` keys of the oldest closed epoch's session marks, then its
    /// tallies, then its snapshot. Returns how many keys it removed.
    pub(crate) fn prune(limit: u32) -> u32 {
        let mut state = Pruning::<T>::get();
        if state.epoch >= Clock::<T>::get().next_to_close {
            return 0;
        }
        let cursor = state.cursor.take();
        let cursor = cursor.as_ref().map(|c| c.as_slice());
        let result = match state.stage {
            PruneStage::Sessions => Sessions::<T>::clear_prefix(state.epoch, limit, cursor),
            PruneStage::Tallies => Tallies::<T>::clear_prefix(state.epoch, limit, cursor),
        };
        match result.maybe_cursor {
            Some(cursor) => state.cursor = BoundedVec::try_from(cursor).ok(),
            None => match state.stage {
                PruneStage::Sessions => state.stage = PruneStage::Tallies,
                PruneStage::Tallies => {
                    Snapshots::<T>::remove(state.epoch);
                    state.epoch = state.epoch.saturating_add(1);
                    state.stage = PruneStage::Sessions;
                }
            },
        }
        Pruning::<T>::put(state);
        // Keys written in this block are removed from the overlay beyond the limit; count
        // every removal.
        result.unique.max(result.loops)
    }

    /// The pallet's state, as the runtime API returns it.
    pub fn status() -> RewardsStatus<T::AccountId, BalanceOf<T>> {
        let current = Clock::<T>::get().current;
        RewardsStatus {
            current_epoch: current,
            reporting_epoch: current.and_then(|c| c.checked_sub(1)),
            pot: Self::pot_account(),
            pot_balance: Self::pot_balance(),
            committed: Committed::<T>::get(),
            reward_per_epoch: T::RewardPerEpoch::get(),
            max_reward_per_gigabyte: T::MaxRewardPerGigabyte::get(),
        }
    }

    /// A relay's disputes and unclaimed credits, sorted by epoch (at most
    /// `MAX_PENDING_EPOCHS` of them).
    pub fn relay_rewards(relay: &IdentityKey) -> RelayRewards<BalanceOf<T>> {
        let mut pending: Vec<PendingReward<BalanceOf<T>>> = Accrued::<T>::iter_prefix(relay)
            .take(MAX_PENDING_EPOCHS as usize)
            .map(|(epoch, accrual)| PendingReward {
                epoch,
                credited_bytes: accrual.credit,
                amount: Payouts::<T>::get(epoch).map(|p| Self::share(&p, accrual.credit)),
            })
            .collect();
        pending.sort_by_key(|p| p.epoch);
        RelayRewards {
            disputes: Disputes::<T>::get(relay),
            pending,
        }
    }

    /// What the oracles credited a relay in an epoch, while its reports are kept.
    pub fn relay_epoch(
        relay: &IdentityKey,
        epoch: EpochIndex,
    ) -> Option<RelayEpochInfo<T::AccountId>> {
        let tally = Tallies::<T>::get(epoch, relay)?;
        let snapshot = Snapshots::<T>::get(epoch)?;
        let reports = tally
            .reports
            .iter()
            .filter_map(|(i, bytes)| {
                snapshot
                    .oracles
                    .get(usize::from(*i))
                    .map(|o| (o.node, *bytes))
            })
            .collect();
        Some(RelayEpochInfo {
            owner: tally.owner,
            reports,
            elected: snapshot.elected(),
            quorum: quorum(snapshot.elected()),
            credited_bytes: tally.credit,
        })
    }

    /// An epoch's relays, credits, pool and payouts.
    pub fn epoch_rewards(epoch: EpochIndex) -> Option<EpochRewards<BalanceOf<T>>> {
        if let Some(payout) = Payouts::<T>::get(epoch) {
            return Some(EpochRewards {
                epoch,
                relays: payout.relays,
                credited_relays: payout.credited,
                unclaimed_relays: payout.unclaimed,
                total_credit: payout.total_credit,
                pool: Some(payout.pool),
                paid: payout.paid,
            });
        }
        Totals::<T>::get(epoch).map(|totals| EpochRewards {
            epoch,
            relays: totals.relays,
            credited_relays: totals.credited,
            unclaimed_relays: totals.credited,
            total_credit: totals.credit,
            pool: None,
            paid: Zero::zero(),
        })
    }

    /// The pallet's invariants:
    /// - the pot owes exactly the unpaid part of every open payout, no payout has paid more
    ///   than its pool, and the pot can pay what it owes;
    /// - every unclaimed credit is positive and belongs to an open epoch whose totals count
    ///   it, or to a closed one whose payout counts it as unclaimed;
    /// - an open epoch's totals are the sums of its tallies, and each tally's credit is the
    ///   quorum median of its reports;
    /// - each oracle's session count is the number of sessions marked with its bit;
    /// - epochs with totals are not closed, epochs with payouts are.
    pub fn check_invariants() -> Result<(), &'static str> {
        let mut owed = BalanceOf::<T>::zero();
        for (_, payout) in Payouts::<T>::iter() {
            if payout.paid > payout.pool {
                return Err("a payout paid more than its pool");
            }
            if payout.unclaimed > payout.credited || payout.unclaimed == 0 {
                return Err("a payout's unclaimed count is out of range");
            }
            owed = owed.saturating_add(payout.pool.saturating_sub(payout.paid));
        }
        if owed != Committed::<T>::get() {
            return Err("committed differs from the unpaid part of the payouts");
        }
        if Self::pot_balance() < owed {
            return Err("the pot cannot pay what it owes");
        }

        let clock = Clock::<T>::get();
        let mut accrued_per_epoch: BTreeMap<EpochIndex, u32> = BTreeMap::new();
        for (relay, epoch, accrual) in Accrued::<T>::iter() {
            if accrual.credit == 0 {
                return Err("an accrual has no credit");
            }
            *accrued_per_epoch.entry(epoch).or_default() += 1;
            if Totals::<T>::contains_key(epoch) {
                let tally = Tallies::<T>::get(epoch, relay);
                if tally.map(|t| (t.owner, t.credit)) != Some((accrual.owner, accrual.credit)) {
                    return Err("an open epoch's accrual differs from its tally");
                }
            } else if !Payouts::<T>::contains_key(epoch) {
                return Err("an accrual belongs to no open or closed epoch");
            }
        }
        for (epoch, count) in &accrued_per_epoch {
            let expected = match (Totals::<T>::get(epoch), Payouts::<T>::get(epoch)) {
                (Some(totals), None) => totals.credited,
                (None, Some(payout)) => payout.unclaimed,
                _ => return Err("an epoch is both open and closed, or neither"),
            };
            if expected != *count {
                return Err("an epoch's credited count differs from its accruals");
            }
        }
        for (epoch, _) in Payouts::<T>::iter() {
            if epoch >= clock.next_to_close {
                return Err("a payout exists for an epoch not closed");
            }
        }

        for (epoch, totals) in Totals::<T>::iter() {
            if epoch < clock.next_to_close {
                return Err("totals exist for a closed epoch");
            }
            let snapshot =
                Snapshots::<T>::get(epoch).ok_or("an open epoch with reports has no snapshot")?;
            let mut sum = EpochTotals::default();
            for (_, tally) in Tallies::<T>::iter_prefix(epoch) {
                let credits: Vec<u64> = tally.reports.iter().map(|(_, b)| *b).collect();
                if tally.credit != relay_credit(&credits, snapshot.elected()) {
                    return Err("a tally's credit is not the quorum median of its reports");
                }
                sum.relays += 1;
                sum.credited += u32::from(tally.credit > 0);
                sum.credit += u128::from(tally.credit);
            }
            if sum != totals {
                return Err("an epoch's totals are not the sums of its tallies");
            }
            if totals.relays > T::MaxRelaysPerEpoch::get() {
                return Err("an epoch has more relays than the bound");
            }
            let mut sessions = alloc::vec![0u32; snapshot.oracles.len()];
            for (_, mark) in Sessions::<T>::iter_prefix(epoch) {
                for (i, count) in sessions.iter_mut().enumerate() {
                    *count += u32::from(mark.oracles >> i & 1 == 1);
                }
            }
            for (oracle, count) in snapshot.oracles.iter().zip(sessions) {
                if oracle.sessions != count || oracle.sessions > T::MaxSessionsPerOracle::get() {
                    return Err("an oracle's session count differs from its marks");
                }
            }
        }
        Ok(())
    }
}

/// Who submits a batch: an oracle's owner account (a signed call) or the oracle node itself
/// (an unsigned call signed with its node key).
pub(crate) enum OracleRef<AccountId> {
    Owner(AccountId),
    Node(IdentityKey),
}

impl<T: Config> Pallet<T> {
    /// An oracle node's batch: its signature over [`node_batch_message`] verifies.
    pub(crate) fn check_batch_signature(batch: &NodeUsageBatch) -> Result<(), Error<T>> {
        let message = node_batch_message(
            &T::Nodes::genesis_hash(),
            batch.epoch,
            &batch.oracle,
            &batch.reports,
        );
        ensure!(
            verify_sr25519(&batch.signature, &message, &batch.oracle),
            Error::<T>::BadBatchSignature
        );
        Ok(())
    }

    /// The pool's check of an oracle node's batch: the signature, then the whole submission
    /// run and rolled back, so the pool keeps only batches the block will accept. One
    /// transaction per (epoch, oracle, batch), at [`NODE_BATCH_PRIORITY`], valid for
    /// [`NODE_BATCH_LONGEVITY`] blocks.
    pub fn validate_node_batch(batch: &NodeUsageBatch) -> TransactionValidity {
        if Self::check_batch_signature(batch).is_err() {
            return InvalidTransaction::Custom(1).into();
        }
        let accepted = frame_support::storage::with_transaction(|| {
            let result = Self::do_submit(
                OracleRef::Node(batch.oracle),
                batch.epoch,
                batch.reports.clone(),
            );
            frame_support::storage::TransactionOutcome::Rollback(Ok::<_, DispatchError>(result))
        });
        if !matches!(accepted, Ok(Ok(()))) {
            return InvalidTransaction::Custom(2).into();
        }
        let digest = sp_io::hashing::blake2_256(&batch.reports.encode());
        ValidTransaction::with_tag_prefix("PspUsageBatch")
            .priority(NODE_BATCH_PRIORITY)
            .and_provides((batch.epoch, batch.oracle, digest))
            .longevity(NODE_BATCH_LONGEVITY)
            .propagate(true)
            .build()
    }
}

/// Priority of an oracle node's batch in the pool: above ordinary transactions.
pub const NODE_BATCH_PRIORITY: TransactionPriority = TransactionPriority::MAX / 2;
/// Blocks an oracle node's batch stays valid in the pool.
pub const NODE_BATCH_LONGEVITY: u64 = 32;

/// The sr25519 verifier the usage records are checked with (the runtime's host function).
fn verify_sr25519(signature: &IdentitySignature, message: &[u8], key: &[u8; 32]) -> bool {
    sp_io::crypto::sr25519_verify(
        &sp_core::sr25519::Signature::from_raw(*signature),
        message,
        &sp_core::sr25519::Public::from_raw(*key),
    )
}
