//! Tests of every call and error, the epoch hooks (snapshot, closing, pruning) and the runtime
//! API. Every test ends with [`Rewards::check_invariants`] and the check that no epoch paid more
//! than its pool (see [`mock::test`]); every block advanced with [`mock::run_to_block`] checks
//! the invariants too.

use crate::{
    mock::*, Accrual, Accrued, Clock, Committed, Disputes, Error, Event, Payouts, Pruning,
    Sessions, Snapshots, Tallies, Totals, WeightInfo,
};
use frame_support::{
    assert_noop, assert_ok,
    dispatch::{DispatchResultWithPostInfo, Pays},
    traits::{fungible::Inspect, Hooks},
    weights::Weight,
};
use psp_primitives::{
    rewards::{session_id_of, PendingReward, UsageRecord},
    staking::EpochIndex,
};
use sp_core::Pair;
use sp_runtime::DispatchError;

fn origin(who: u64) -> RuntimeOrigin {
    RuntimeOrigin::signed(who)
}

fn submit(oracle: u64, epoch: EpochIndex, records: Vec<UsageRecord>) -> DispatchResultWithPostInfo {
    Rewards::submit_reports(origin(oracle), epoch, records)
}

fn claim(who: u64, relay: u8, epochs: Vec<EpochIndex>) -> sp_runtime::DispatchResult {
    Rewards::claim(origin(who), relay_key(relay), epochs)
}

fn events() -> Vec<Event<Test>> {
    System::events()
        .into_iter()
        .filter_map(|r| match r.event {
            RuntimeEvent::Rewards(e) => Some(e),
            _ => None,
        })
        .collect()
}

fn last_event() -> Event<Test> {
    events().pop().expect("a rewards event")
}

fn balance(who: u64) -> u64 {
    Balances::balance(&who)
}

fn credit(relay: u8, epoch: EpochIndex) -> u64 {
    Tallies::<Test>::get(epoch, relay_key(relay)).map_or(0, |t| t.credit)
}

/// All three default oracles report `records` for `epoch`.
fn all_report(epoch: EpochIndex, records: &[UsageRecord]) {
    for oracle in &ORACLES[..3] {
        assert_ok!(submit(*oracle, epoch, records.to_vec()));
    }
}

// --- epochs and snapshots

#[test]
fn each_epoch_start_records_its_oracles_and_span() {
    test(|| {
        let snapshot = Snapshots::<Test>::get(0).expect("epoch 0 recorded at block 1");
        let owners: Vec<u64> = snapshot.oracles.iter().map(|o| o.owner).collect();
        assert_eq!(owners, ORACLES[..3]);
        assert_eq!(snapshot.oracles[0].node, oracle_node(11));
        assert_eq!(snapshot.started_at_ms, epoch_span(0).start_ms);
        assert_eq!(snapshot.ended_at_ms, None);
        run_to_epoch(1);
        assert_eq!(
            Snapshots::<Test>::get(0).map(|s| s.span()),
            Some(epoch_span(0))
        );
        assert_eq!(Clock::<Test>::get().current, Some(1));
        assert!(events().contains(&Event::EpochStarted {
            epoch: 1,
            oracles: 3
        }));
    });
}

#[test]
fn a_snapshot_keeps_one_oracle_per_owner_and_node_and_at_most_the_maximum() {
    test(|| {
        let mut set = vec![
            (oracle_node(11), 11),
            (oracle_node(11), 12), // same node again
            (oracle_node(12), 11), // same owner again
        ];
        set.extend((12..22).map(|o| (oracle_node(o), o)));
        <MockOracles as psp_primitives::rewards::OracleSet<u64>>::set_oracles_unchecked(1, set);
        run_to_epoch(1);
        let owners: Vec<u64> = Snapshots::<Test>::get(1)
            .expect("recorded")
            .oracles
            .iter()
            .map(|o| o.owner)
            .collect();
        assert_eq!(owners, vec![11, 12, 13, 14, 15, 16, 17, 18]);
    });
}

#[test]
fn an_epoch_keeps_the_oracles_elected_when_it_started() {
    test(|| {
        register_relay(0);
        run_to_epoch(1);
        // The staking set changes after epoch 1 started: epoch 1 still belongs to 11..13.
        elect(1, &[14, 15, 16]);
        run_to_epoch(2);
        assert_ok!(submit(11, 1, vec![honest(1, 0, 1, 100)]));
        assert_noop!(
            submit(14, 1, vec![honest(1, 0, 2, 100)]),
            Error::<Test>::NotOracle
        );
        // Epoch 2 started with the new set.
        run_to_epoch(3);
        assert_ok!(submit(14, 2, vec![honest(2, 0, 1, 100)]));
    });
}

// --- submission

#[test]
fn reports_for_the_previous_epoch_are_tallied_and_free() {
    test(|| {
        register_relay(0);
        run_to_epoch(1);
        let record = honest(0, 0, 1, 5_000);
        let info = submit(11, 0, vec![record.clone()]).expect("accepted");
        assert_eq!(info.pays_fee, Pays::No);
        assert_eq!(
            last_event(),
            Event::ReportsSubmitted {
                epoch: 0,
                oracle: oracle_node(11),
                sessions: 1,
                disputed: 0
            }
        );
        let tally = Tallies::<Test>::get(0, relay_key(0)).expect("tallied");
        assert_eq!(tally.owner, relay_owner(0));
        assert_eq!(tally.reports.into_inner(), vec![(0, 5_000)]);
        // One of three oracles is no quorum.
        assert_eq!(credit(0, 0), 0);
        assert_eq!(Accrued::<Test>::get(relay_key(0), 0), None);
        let mark = Sessions::<Test>::get(0, record.session).expect("marked");
        assert_eq!(mark.oracles, 0b001);

        assert_ok!(submit(12, 0, vec![record.clone()]));
        assert_eq!(credit(0, 0), 5_000);
        assert_eq!(
            Accrued::<Test>::get(relay_key(0), 0),
            Some(Accrual {
                owner: relay_owner(0),
                credit: 5_000
            })
        );
        let totals = Totals::<Test>::get(0).expect("open epoch");
        assert_eq!(
            (totals.relays, totals.credited, totals.credit),
            (1, 1, 5_000)
        );
        assert_eq!(
            Snapshots::<Test>::get(0).map(|s| s.oracles[1].sessions),
            Some(1)
        );
    });
}

#[test]
fn several_batches_of_one_oracle_add_up() {
    test(|| {
        register_relay(0);
        run_to_epoch(1);
        for oracle in [11, 12] {
            assert_ok!(submit(oracle, 0, vec![honest(0, 0, 1, 1_000)]));
            assert_ok!(submit(oracle, 0, vec![honest(0, 0, 2, 2_000)]));
        }
        assert_eq!(
            Tallies::<Test>::get(0, relay_key(0)).map(|t| t.reports.into_inner()),
            Some(vec![(0, 3_000), (1, 3_000)])
        );
        assert_eq!(credit(0, 0), 3_000);
    });
}

#[test]
fn credit_is_the_lower_median_of_a_two_thirds_quorum() {
    test(|| {
        register_relay(0);
        run_to_epoch(1);
        // The relay and client signed three versions of the same session; each oracle got
        // a different one.
        let version = |bytes| honest(0, 0, 1, bytes);
        assert_ok!(submit(11, 0, vec![version(9_000)]));
        assert_eq!(credit(0, 0), 0);
        assert_ok!(submit(12, 0, vec![version(3_000)]));
        assert_eq!(credit(0, 0), 3_000);
        assert_ok!(submit(13, 0, vec![version(6_000)]));
        assert_eq!(credit(0, 0), 6_000);
    });
}

#[test]
fn a_credit_that_loses_its_median_is_withdrawn() {
    test(|| {
        elect(1, &ORACLES[..4]);
        register_relay(0);
        run_to_epoch(2);
        let agreed = honest(1, 0, 1, 5_000);
        let span = epoch_span(1);
        let disputed = signed_record(
            1,
            &relay_pair(0),
            &client_pair(1),
            usage(5_000, span),
            usage(10, span),
        );
        assert_ok!(submit(11, 1, vec![agreed.clone()]));
        assert_ok!(submit(12, 1, vec![agreed]));
        assert_ok!(submit(13, 1, vec![disputed.clone()]));
        // {0, 5 000, 5 000}: three of four oracles, median 5 000.
        assert_eq!(credit(0, 1), 5_000);
        assert!(Accrued::<Test>::contains_key(relay_key(0), 1));
        assert_ok!(submit(14, 1, vec![disputed]));
        // {0, 0, 5 000, 5 000}: the lower median is 0.
        assert_eq!(credit(0, 1), 0);
        assert!(!Accrued::<Test>::contains_key(relay_key(0), 1));
        assert_eq!(Totals::<Test>::get(1).map(|t| t.credited), Some(0));
        // The session was disputed twice but counts against the relay once.
        assert_eq!(Disputes::<Test>::get(relay_key(0)), 1);
    });
}

#[test]
fn disagreeing_sides_credit_nothing_and_count_against_the_relay() {
    test(|| {
        register_relay(0);
        run_to_epoch(1);
        let span = epoch_span(0);
        // The relay inflates by 10%: beyond the 5% tolerance.
        let inflated = signed_record(
            0,
            &relay_pair(0),
            &client_pair(1),
            usage(1_100, span),
            usage(1_000, span),
        );
        // Within the tolerance: the smaller count.
        let close = signed_record(
            0,
            &relay_pair(0),
            &client_pair(2),
            usage(1_040, span),
            usage(1_000, span),
        );
        for oracle in &ORACLES[..3] {
            assert_ok!(submit(*oracle, 0, vec![inflated.clone(), close.clone()]));
        }
        assert_eq!(
            last_event(),
            Event::ReportsSubmitted {
                epoch: 0,
                oracle: oracle_node(13),
                sessions: 2,
                disputed: 1
            }
        );
        assert_eq!(credit(0, 0), 1_000);
        assert_eq!(Disputes::<Test>::get(relay_key(0)), 1);
        assert!(Sessions::<Test>::get(0, inflated.session).is_some_and(|m| m.disputed));
    });
}

#[test]
fn sessions_are_capped_by_the_rate_over_their_time_in_the_epoch() {
    test(|| {
        register_relay(0);
        run_to_epoch(1);
        let span = epoch_span(0);
        // Both sides claim a gigabyte over the whole 15 s epoch: 15 000 bytes at 1 000 B/s.
        let huge = honest(0, 0, 1, 1_000_000_000);
        // Two seconds of the session fall within the epoch.
        let late = {
            let u = usage(
                1_000_000,
                psp_primitives::rewards::Interval {
                    start_ms: span.end_ms - 2_000,
                    end_ms: span.end_ms + 60_000,
                },
            );
            signed_record(0, &relay_pair(0), &client_pair(2), u, u)
        };
        // Entirely before the epoch: nothing.
        let before = {
            let u = usage(
                500,
                psp_primitives::rewards::Interval {
                    start_ms: 0,
                    end_ms: span.start_ms,
                },
            );
            signed_record(0, &relay_pair(0), &client_pair(3), u, u)
        };
        all_report(0, &[huge, late, before]);
        assert_eq!(credit(0, 0), 15_000 + 2_000);
        assert_eq!(Disputes::<Test>::get(relay_key(0)), 0);
    });
}

#[test]
fn submission_errors_change_nothing() {
    test(|| {
        register_relay(0);
        run_to_epoch(1);
        let good = honest(0, 0, 1, 1_000);
        assert_noop!(
            Rewards::submit_reports(RuntimeOrigin::root(), 0, vec![good.clone()]),
            DispatchError::BadOrigin
        );
        assert_noop!(submit(11, 0, vec![]), Error::<Test>::EmptyBatch);
        let too_many: Vec<UsageRecord> =
            (0..=MAX_BATCH).map(|c| honest(0, 0, 100 + c, 10)).collect();
        assert_noop!(submit(11, 0, too_many), Error::<Test>::TooManyReports);
        // The current epoch and a future one have not ended.
        assert_noop!(
            submit(11, 1, vec![honest(1, 0, 1, 1_000)]),
            Error::<Test>::EpochNotEnded
        );
        assert_noop!(
            submit(11, 7, vec![honest(7, 0, 1, 1_000)]),
            Error::<Test>::EpochNotEnded
        );
        assert_noop!(
            submit(STRANGER, 0, vec![good.clone()]),
            Error::<Test>::NotOracle
        );
        assert_noop!(
            submit(11, 0, vec![good.clone(), good.clone()]),
            Error::<Test>::DuplicateSession
        );
        let mut unbound = good.clone();
        unbound.session = [0; 32];
        assert_noop!(
            submit(11, 0, vec![unbound]),
            Error::<Test>::SessionKeyMismatch
        );
        let mut inflated = good.clone();
        inflated.relay_report.usage.bytes *= 2;
        assert_noop!(
            submit(11, 0, vec![inflated]),
            Error::<Test>::BadRelaySignature
        );
        let mut deflated = good.clone();
        deflated.client_report.usage.bytes /= 2;
        assert_noop!(
            submit(11, 0, vec![deflated]),
            Error::<Test>::BadClientSignature
        );
        // A record signed for another epoch is a replay: its signatures do not verify here.
        assert_noop!(
            submit(11, 0, vec![honest(1, 0, 1, 1_000)]),
            Error::<Test>::BadRelaySignature
        );
        // The relay key signed the client's half, or the client key the relay's: the domain
        // tags differ, so neither verifies.
        let mut swapped = good.clone();
        swapped.client_report.signature = swapped.relay_report.signature;
        assert_noop!(
            submit(11, 0, vec![swapped]),
            Error::<Test>::BadClientSignature
        );
        // A bad record anywhere in the batch fails all of it.
        let mut last_bad = good.clone();
        last_bad.client_report.usage.bytes += 1;
        assert_noop!(
            submit(11, 0, vec![honest(0, 0, 2, 10), last_bad]),
            Error::<Test>::BadClientSignature
        );
        // Relay 1 is not registered.
        assert_noop!(
            submit(11, 0, vec![honest(0, 1, 3, 1_000)]),
            Error::<Test>::UnknownRelay
        );
        // A revoked relay is unknown too.
        register_relay(2);
        assert_ok!(Identity::force_revoke(RuntimeOrigin::root(), relay_key(2)));
        assert_noop!(
            submit(11, 0, vec![honest(0, 2, 4, 1_000)]),
            Error::<Test>::UnknownRelay
        );

        assert_ok!(submit(11, 0, vec![good.clone()]));
        assert_noop!(
            submit(11, 0, vec![honest(0, 0, 5, 10), good.clone()]),
            Error::<Test>::AlreadyReported
        );
        // The same client key signed for relay 3 too.
        register_relay(3);
        assert_noop!(
            submit(12, 0, vec![honest(0, 3, 1, 1_000)]),
            Error::<Test>::SessionRelayMismatch
        );

        // Too late: in epoch 2, epoch 0's window is over.
        run_to_epoch(2);
        assert_noop!(submit(12, 0, vec![good]), Error::<Test>::ReportWindowClosed);
    });
}

#[test]
fn an_epoch_the_pallet_did_not_see_start_accepts_no_reports() {
    test(|| {
        register_relay(0);
        run_to_epoch(1);
        // As if the pallet had been added to the chain during epoch 0.
        Snapshots::<Test>::remove(0);
        assert_noop!(
            submit(11, 0, vec![honest(0, 0, 1, 1_000)]),
            Error::<Test>::NoOracleSet
        );
    });
}

#[test]
fn an_oracle_reports_at_most_its_session_bound_per_epoch() {
    test(|| {
        register_relay(0);
        run_to_epoch(1);
        let records: Vec<UsageRecord> = (0..=MAX_SESSIONS_PER_ORACLE)
            .map(|c| honest(0, 0, c, 10))
            .collect();
        for batch in records[..MAX_SESSIONS_PER_ORACLE as usize].chunks(MAX_BATCH as usize) {
            assert_ok!(submit(11, 0, batch.to_vec()));
        }
        let last = records[MAX_SESSIONS_PER_ORACLE as usize].clone();
        assert_noop!(
            submit(11, 0, vec![last.clone()]),
            Error::<Test>::TooManySessions
        );
        // Another oracle has its own bound.
        assert_ok!(submit(12, 0, vec![last]));
    });
}

#[test]
fn an_epoch_credits_at_most_its_relay_bound() {
    test(|| {
        for relay in 0..=MAX_RELAYS as u8 {
            register_relay(relay);
        }
        run_to_epoch(1);
        let records: Vec<UsageRecord> = (0..MAX_RELAYS as u8)
            .map(|r| honest(0, r, u32::from(r), 10))
            .collect();
        assert_ok!(submit(11, 0, records));
        let extra = honest(0, MAX_RELAYS as u8, 99, 10);
        assert_noop!(
            submit(11, 0, vec![extra.clone()]),
            Error::<Test>::TooManyRelays
        );
        assert_noop!(submit(12, 0, vec![extra]), Error::<Test>::TooManyRelays);
        // Relays already in the epoch can still be reported.
        assert_ok!(submit(12, 0, vec![honest(0, 0, 0, 10)]));
    });
}

// --- closing and claiming

/// Credits relay 0 with 1 000 bytes and relay 1 with 2 000 in `epoch` (all three oracles).
fn credit_two_relays(epoch: EpochIndex) {
    all_report(
        epoch,
        &[
            honest(epoch, 0, 10 * epoch, 1_000),
            honest(epoch, 1, 10 * epoch + 1, 2_000),
        ],
    );
}

#[test]
fn a_closed_epoch_pays_pro_rata_and_the_dust_stays_in_the_pot() {
    test(|| {
        register_relay(0);
        register_relay(1);
        run_to_epoch(1);
        credit_two_relays(0);
        // Epoch 0 closes when epoch 2 starts.
        run_to_epoch(2);
        assert!(events().contains(&Event::EpochClosed {
            epoch: 0,
            pool: REWARD,
            total_credit: 3_000,
            credited_relays: 2
        }));
        assert_eq!(Committed::<Test>::get(), REWARD);

        let before = balance(relay_owner(0));
        assert_ok!(claim(relay_owner(0), 0, vec![0]));
        assert_eq!(balance(relay_owner(0)), before + 333);
        assert_eq!(
            last_event(),
            Event::RewardClaimed {
                relay: relay_key(0),
                owner: relay_owner(0),
                epoch: 0,
                amount: 333
            }
        );
        assert_eq!(Committed::<Test>::get(), REWARD - 333);
        assert_eq!(Payouts::<Test>::get(0).map(|p| p.unclaimed), Some(1));

        assert_ok!(claim(relay_owner(1), 1, vec![0]));
        assert_eq!(last_event(), Event::EpochSettled { epoch: 0, dust: 1 });
        assert_eq!(Payouts::<Test>::get(0), None);
        assert_eq!(Committed::<Test>::get(), 0);
        assert_eq!(balance(pot()), POT_FUNDS - 999);
    });
}

#[test]
fn an_epoch_pays_at_most_the_rate_cap_per_byte_and_the_rest_stays_uncommitted() {
    test(|| {
        // 0.2 per byte: the epoch's 3 000 bytes may take 600 of the 1 000 pool.
        MaxRewardPerGigabyte::set(&200_000_000);
        register_relay(0);
        register_relay(1);
        run_to_epoch(1);
        credit_two_relays(0);
        run_to_epoch(2);
        assert!(events().contains(&Event::EpochClosed {
            epoch: 0,
            pool: 600,
            total_credit: 3_000,
            credited_relays: 2
        }));
        assert_eq!(Committed::<Test>::get(), 600);
        let before = balance(relay_owner(0));
        assert_ok!(claim(relay_owner(0), 0, vec![0]));
        // 1 000 bytes at 200 per byte, exactly the rate.
        assert_eq!(balance(relay_owner(0)), before + 200);
        assert_ok!(claim(relay_owner(1), 1, vec![0]));
        assert_eq!(Committed::<Test>::get(), 0);
        // The 400 the rate held back were never committed: the next epoch's pool is whole.
        assert_eq!(balance(pot()), POT_FUNDS - 600);
    });
}

#[test]
fn one_claim_covers_several_epochs_and_unclaimed_rewards_wait() {
    test(|| {
        register_relay(0);
        register_relay(1);
        for epoch in 0..3 {
            run_to_epoch(epoch + 1);
            credit_two_relays(epoch);
        }
        run_to_epoch(6);
        let before = balance(relay_owner(0));
        assert_ok!(claim(relay_owner(0), 0, vec![2, 0]));
        assert_eq!(balance(relay_owner(0)), before + 2 * 333);
        // Epoch 1 is still waiting, long after.
        run_to_epoch(9);
        assert_eq!(
            Rewards::relay_rewards(&relay_key(0)).pending,
            vec![PendingReward {
                epoch: 1,
                credited_bytes: 1_000,
                amount: Some(333)
            }]
        );
        assert_ok!(claim(relay_owner(0), 0, vec![1]));
        assert_eq!(balance(relay_owner(0)), before + 3 * 333);
        assert!(Rewards::relay_rewards(&relay_key(0)).pending.is_empty());
    });
}

#[test]
fn claim_errors_change_nothing() {
    test(|| {
        register_relay(0);
        register_relay(1);
        run_to_epoch(1);
        credit_two_relays(0);
        run_to_epoch(2);
        credit_two_relays(1);
        let owner = relay_owner(0);
        assert_noop!(
            Rewards::claim(RuntimeOrigin::root(), relay_key(0), vec![0]),
            DispatchError::BadOrigin
        );
        assert_noop!(claim(owner, 0, vec![]), Error::<Test>::NoEpochs);
        assert_noop!(
            claim(owner, 0, (0..=MAX_CLAIM_EPOCHS).collect()),
            Error::<Test>::TooManyEpochs
        );
        assert_noop!(claim(owner, 0, vec![0, 0]), Error::<Test>::DuplicateEpoch);
        assert_noop!(claim(owner, 0, vec![5]), Error::<Test>::NothingAccrued);
        assert_noop!(claim(owner, 2, vec![0]), Error::<Test>::NothingAccrued);
        // Someone else, or the owner of another relay, cannot claim relay 0's reward.
        assert_noop!(claim(STRANGER, 0, vec![0]), Error::<Test>::NotRelayOwner);
        assert_noop!(
            claim(relay_owner(1), 0, vec![0]),
            Error::<Test>::NotRelayOwner
        );
        // Epoch 1 is credited but closes only when epoch 3 starts.
        assert_noop!(claim(owner, 0, vec![0, 1]), Error::<Test>::EpochNotClosed);
        // The pot drained outside the pallet.
        assert_ok!(Balances::force_set_balance(
            RuntimeOrigin::root(),
            pot(),
            10
        ));
        assert_noop!(claim(owner, 0, vec![0]), Error::<Test>::PotInsufficient);
        assert_ok!(Balances::force_set_balance(
            RuntimeOrigin::root(),
            pot(),
            POT_FUNDS
        ));
        assert_ok!(claim(owner, 0, vec![0]));
        // Claimed already.
        assert_noop!(claim(owner, 0, vec![0]), Error::<Test>::NothingAccrued);
    });
}

#[test]
fn a_pool_is_what_the_pot_can_cover_beyond_what_it_owes() {
    test(|| {
        register_relay(0);
        register_relay(1);
        // 1 500 above the existential deposit: one full pool, then half of one, then nothing.
        assert_ok!(Balances::force_set_balance(
            RuntimeOrigin::root(),
            pot(),
            1 + 1_500
        ));
        for epoch in 0..3 {
            run_to_epoch(epoch + 1);
            credit_two_relays(epoch);
        }
        run_to_epoch(4);
        let pools: Vec<(EpochIndex, u64)> = events()
            .into_iter()
            .filter_map(|e| match e {
                Event::EpochClosed { epoch, pool, .. } => Some((epoch, pool)),
                _ => None,
            })
            .collect();
        assert_eq!(pools, vec![(0, 1_000), (1, 500), (2, 0)]);
        // A zero pool pays nothing but settles.
        assert_ok!(claim(relay_owner(0), 0, vec![2]));
        assert_ok!(claim(relay_owner(1), 1, vec![2]));
        assert_eq!(Payouts::<Test>::get(2), None);
        // Every pool is still payable.
        assert_ok!(claim(relay_owner(0), 0, vec![0, 1]));
        assert_ok!(claim(relay_owner(1), 1, vec![0, 1]));
        assert_eq!(Committed::<Test>::get(), 0);
        assert_eq!(balance(pot()), 1 + 1_500 - (333 + 666) - (166 + 333));
    });
}

#[test]
fn an_epoch_nobody_was_credited_in_sets_nothing_aside() {
    test(|| {
        register_relay(0);
        run_to_epoch(1);
        // One report of three: no quorum.
        assert_ok!(submit(11, 0, vec![honest(0, 0, 1, 1_000)]));
        run_to_epoch(2);
        assert!(events().contains(&Event::EpochClosed {
            epoch: 0,
            pool: 0,
            total_credit: 0,
            credited_relays: 0
        }));
        assert_eq!(Payouts::<Test>::get(0), None);
        assert_eq!(Committed::<Test>::get(), 0);
    });
}

#[test]
fn closing_catches_up_after_a_gap_at_two_epochs_per_block() {
    test(|| {
        register_relay(0);
        register_relay(1);
        run_to_epoch(1);
        credit_two_relays(0);
        // The chain stalls and resumes in epoch 6: epochs 0..=4 are due.
        System::set_block_number(6 * EPOCH_BLOCKS);
        run_to_block(6 * EPOCH_BLOCKS + 1);
        assert_eq!(Clock::<Test>::get().next_to_close, 2);
        run_to_block(6 * EPOCH_BLOCKS + 2);
        assert_eq!(Clock::<Test>::get().next_to_close, 4);
        run_to_block(6 * EPOCH_BLOCKS + 3);
        assert_eq!(Clock::<Test>::get().next_to_close, 5);
        assert_ok!(claim(relay_owner(0), 0, vec![0]));
    });
}

#[test]
fn the_block_start_costs_two_reads_and_an_epoch_boundary_more() {
    test(|| {
        let quiet = Rewards::on_initialize(2);
        assert_eq!(quiet, <() as WeightInfo>::on_initialize());
        // Block 11 starts epoch 2 and closes epoch 0.
        System::set_block_number(11);
        let boundary = Rewards::on_initialize(11);
        assert_eq!(
            boundary,
            <() as WeightInfo>::on_initialize()
                + <() as WeightInfo>::start_epoch()
                + <() as WeightInfo>::close_epoch()
        );
    });
}

// --- pruning

#[test]
fn closed_epochs_are_pruned_within_the_idle_weight() {
    let mut ext = new_test_ext();
    ext.execute_with(|| {
        register_relay(0);
        register_relay(1);
        run_to_epoch(1);
        credit_two_relays(0);
        run_to_block(2 * EPOCH_BLOCKS);
    });
    // Each block's writes reach the database before the next block, where removals count
    // against the limit.
    ext.commit_all().expect("commit");
    let block = 2 * EPOCH_BLOCKS + 1;
    ext.execute_with(|| {
        assert_eq!(Sessions::<Test>::iter_prefix(0).count(), 2);
        assert_eq!(Tallies::<Test>::iter_prefix(0).count(), 2);
        // Epoch 0 closes at the start of the next block.
        System::set_block_number(block);
        Timestamp::set_timestamp(block * BLOCK_MS);
        Rewards::on_initialize(block);
        // Without room for the check, nothing happens.
        assert_eq!(
            Rewards::on_idle(block, idle_budget(0) - Weight::from_parts(1, 0)),
            Weight::zero()
        );
        assert_eq!(Sessions::<Test>::iter_prefix(0).count(), 2);
        // Room for one key: one session mark goes.
        assert_eq!(Rewards::on_idle(block, idle_budget(1)), idle_budget(1));
        assert_eq!(Sessions::<Test>::iter_prefix(0).count(), 1);
        assert_ok!(claim(relay_owner(0), 0, vec![0]));
    });
    ext.commit_all().expect("commit");
    // Then, a block and a key at a time, the other mark, the tallies and the snapshot.
    let mut rounds = 0;
    while ext.execute_with(|| Snapshots::<Test>::contains_key(0)) {
        ext.execute_with(|| {
            Rewards::on_idle(block, idle_budget(1));
        });
        ext.commit_all().expect("commit");
        rounds += 1;
        assert!(rounds <= 6, "pruning does not progress");
    }
    ext.execute_with(|| {
        assert!(rounds >= 3);
        assert_eq!(Sessions::<Test>::iter_prefix(0).count(), 0);
        assert_eq!(Tallies::<Test>::iter_prefix(0).count(), 0);
        assert_eq!(Pruning::<Test>::get().epoch, 1);
        // Nothing more is due: pruning costs only its check.
        assert_eq!(Rewards::on_idle(block, idle_budget(64)), idle_budget(0));
        // Credits survive pruning.
        assert_ok!(claim(relay_owner(1), 1, vec![0]));
        check_all();
    });
}

// --- runtime API

#[test]
fn the_runtime_api_shows_status_credits_and_pools() {
    test(|| {
        register_relay(0);
        register_relay(1);
        run_to_epoch(1);
        let status = Rewards::status();
        assert_eq!(status.current_epoch, Some(1));
        assert_eq!(status.reporting_epoch, Some(0));
        assert_eq!(status.pot, pot());
        assert_eq!(status.pot_balance, POT_FUNDS - 1);
        assert_eq!(status.committed, 0);
        assert_eq!(status.reward_per_epoch, REWARD);
        assert_eq!(status.max_reward_per_gigabyte, RATE_PER_GIGABYTE);

        assert_eq!(Rewards::epoch_rewards(0), None);
        assert_ok!(submit(11, 0, vec![honest(0, 0, 5, 1_000)]));
        let info = Rewards::relay_epoch(&relay_key(0), 0).expect("reported");
        assert_eq!(info.owner, relay_owner(0));
        assert_eq!(info.reports, vec![(oracle_node(11), 1_000)]);
        assert_eq!((info.elected, info.quorum, info.credited_bytes), (3, 2, 0));
        assert_eq!(Rewards::relay_epoch(&relay_key(1), 0), None);

        credit_two_relays(0);
        let open = Rewards::epoch_rewards(0).expect("open");
        assert_eq!((open.relays, open.credited_relays), (2, 2));
        assert_eq!((open.total_credit, open.pool), (3_000, None));
        assert_eq!(
            Rewards::relay_rewards(&relay_key(0)).pending,
            vec![PendingReward {
                epoch: 0,
                credited_bytes: 1_000,
                amount: None
            }]
        );

        run_to_epoch(2);
        let closed = Rewards::epoch_rewards(0).expect("closed");
        assert_eq!(
            (closed.pool, closed.paid, closed.unclaimed_relays),
            (Some(REWARD), 0, 2)
        );
        assert_eq!(
            Rewards::relay_rewards(&relay_key(1)).pending[0].amount,
            Some(666)
        );
        assert_eq!(Rewards::status().committed, REWARD);
    });
}

#[test]
fn the_invariant_check_catches_broken_state() {
    new_test_ext().execute_with(|| {
        assert_eq!(Rewards::check_invariants(), Ok(()));
        Committed::<Test>::put(5);
        assert!(Rewards::check_invariants().is_err());
        Committed::<Test>::put(0);
        Accrued::<Test>::insert(
            relay_key(0),
            0,
            Accrual {
                owner: relay_owner(0),
                credit: 1,
            },
        );
        assert!(Rewards::check_invariants().is_err());
    });
}

#[test]
fn session_ids_are_the_hash_of_the_client_key() {
    test(|| {
        let record = honest(0, 0, 1, 1);
        assert_eq!(record.session, session_id_of(&client_pair(1).public().0));
    });
}

// --- oracle nodes submitting by themselves

/// A batch of `reports` for `epoch` signed by the oracle node `pair`.
fn node_batch(
    pair: &sp_core::sr25519::Pair,
    epoch: EpochIndex,
    reports: Vec<UsageRecord>,
) -> psp_primitives::rewards::NodeUsageBatch {
    let genesis = <Identity as psp_primitives::staking::NodeRegistry<u64>>::genesis_hash();
    let oracle = pair.public().0;
    let message = psp_primitives::rewards::node_batch_message(&genesis, epoch, &oracle, &reports);
    psp_primitives::rewards::NodeUsageBatch {
        epoch,
        oracle,
        reports,
        signature: pair.sign(&message).0,
    }
}

#[allow(deprecated)] // `ValidateUnsigned`, which the runtime still uses for unsigned calls.
fn validate_batch(
    batch: &psp_primitives::rewards::NodeUsageBatch,
) -> sp_runtime::transaction_validity::TransactionValidity {
    use sp_runtime::traits::ValidateUnsigned;
    let call = crate::Call::<Test>::submit_reports_by_node {
        batch: batch.clone(),
    };
    <Rewards as ValidateUnsigned>::validate_unsigned(
        sp_runtime::transaction_validity::TransactionSource::External,
        &call,
    )
}

#[test]
fn an_oracle_node_settles_by_itself_with_an_unsigned_batch() {
    use sp_runtime::transaction_validity::{InvalidTransaction, TransactionValidityError};
    test(|| {
        register_relay(0);
        // Epoch 1's oracles: 11's node key is a real key, 12 and 13 as usual.
        let node = sp_core::sr25519::Pair::from_seed(&[11; 32]);
        let set = vec![
            (node.public().0, 11),
            (oracle_node(12), 12),
            (oracle_node(13), 13),
        ];
        <MockOracles as psp_primitives::rewards::OracleSet<u64>>::set_oracles_unchecked(1, set);
        run_to_epoch(1);
        run_to_epoch(2);
        let record = honest(1, 0, 1, 5_000);
        let batch = node_batch(&node, 1, vec![record.clone()]);
        let invalid = |code| {
            Err(TransactionValidityError::Invalid(
                InvalidTransaction::Custom(code),
            ))
        };

        // Refused in the pool and at dispatch: another key's signature, records swapped
        // after signing, a node that is not elected, a batch the submission would refuse.
        let stranger = sp_core::sr25519::Pair::from_seed(&[99; 32]);
        let mut forged = batch.clone();
        forged.signature = stranger.sign(b"anything").0;
        assert_eq!(validate_batch(&forged), invalid(1));
        assert_noop!(
            Rewards::submit_reports_by_node(RuntimeOrigin::none(), forged),
            Error::<Test>::BadBatchSignature
        );
        let mut swapped = batch.clone();
        swapped.reports = vec![honest(1, 0, 2, 9_000)];
        assert_eq!(validate_batch(&swapped), invalid(1));
        let unelected = node_batch(&stranger, 1, vec![record.clone()]);
        assert_eq!(validate_batch(&unelected), invalid(2));
        assert_noop!(
            Rewards::submit_reports_by_node(RuntimeOrigin::none(), unelected),
            Error::<Test>::NotOracle
        );
        let stale = node_batch(&node, 0, vec![honest(0, 0, 1, 5_000)]);
        assert_eq!(validate_batch(&stale), invalid(2));
        assert_noop!(
            Rewards::submit_reports_by_node(origin(11), batch.clone()),
            DispatchError::BadOrigin
        );
        // Validation runs the submission and rolls it back: nothing was written.
        assert_eq!(Sessions::<Test>::get(1, record.session), None);

        // Valid: tallied as the oracle's own, free, and once only.
        let valid = validate_batch(&batch).expect("valid in the pool");
        assert_eq!(valid.provides.len(), 1);
        assert_eq!(valid.longevity, crate::NODE_BATCH_LONGEVITY);
        let info = Rewards::submit_reports_by_node(RuntimeOrigin::none(), batch.clone())
            .expect("accepted");
        assert_eq!(info.pays_fee, Pays::No);
        assert_eq!(
            last_event(),
            Event::ReportsSubmitted {
                epoch: 1,
                oracle: node.public().0,
                sessions: 1,
                disputed: 0
            }
        );
        assert_eq!(
            Sessions::<Test>::get(1, record.session).map(|m| m.oracles),
            Some(0b001)
        );
        assert_eq!(validate_batch(&batch), invalid(2));
        assert_noop!(
            Rewards::submit_reports_by_node(RuntimeOrigin::none(), batch),
            Error::<Test>::AlreadyReported
        );
        // With a second oracle's report (its owner's signed call) the relay is credited.
        assert_ok!(submit(12, 1, vec![record]));
        assert_eq!(credit(0, 1), 5_000);
    });
}
