//! FRAME v2 benchmarks: a batch of `n` records for `n` different relays with both signatures
//! of every record checked, each relay already reported by every other oracle (the largest
//! tallies and median); a claim of `n` epochs, each settled by it; and the block-start steps
//! (the quiet check, recording an epoch's full oracle set, closing an epoch) and pruning.

use super::*;
use crate::Pallet as Rewards;
use alloc::vec::Vec;
use frame_benchmarking::v2::*;
use frame_support::{
    pallet_prelude::*,
    traits::{
        fungible::{Inspect, Mutate},
        Hooks,
    },
};
use frame_system::RawOrigin;
use psp_primitives::{
    rewards::{
        client_report_message, relay_credit, relay_report_message, session_id_of, OracleSet,
        SignedUsage, Usage, UsageRecord,
    },
    staking::{EpochIndex, NodeRegistry},
    IdentityKey,
};
use sp_core::{crypto::KeyTypeId, sr25519};
use sp_runtime::traits::Saturating;

const KEY_TYPE: KeyTypeId = KeyTypeId(*b"psrw");
const SEED: u32 = 0;
/// The epoch reports are submitted for.
const EPOCH: EpochIndex = 1;

fn oracle_node(index: u32) -> IdentityKey {
    let mut key = [0xA0; 32];
    key[..4].copy_from_slice(&index.to_le_bytes());
    key
}

/// `MaxOracles` oracles, the last one owned by `last`.
fn oracles<T: Config>(last: &T::AccountId) -> BoundedVec<Oracle<T::AccountId>, T::MaxOracles> {
    let max = T::MaxOracles::get();
    let all: Vec<_> = (0..max)
        .map(|i| Oracle {
            node: oracle_node(i),
            owner: if i + 1 == max {
                last.clone()
            } else {
                account("oracle", i, SEED)
            },
            sessions: 0,
        })
        .collect();
    BoundedVec::truncate_from(all)
}

fn sign(key: &sr25519::Public, message: &[u8]) -> [u8; 64] {
    sp_io::crypto::sr25519_sign(KEY_TYPE, key, message)
        .map(|s| s.0)
        .unwrap_or([0; 64])
}

/// An agreed record of `relay` and a fresh client for [`EPOCH`].
fn record<T: Config>(relay: &sr25519::Public) -> UsageRecord {
    let client = sp_io::crypto::sr25519_generate(KEY_TYPE, None);
    let session = session_id_of(&client.0);
    let usage = Usage {
        bytes: 1_000_000,
        start_ms: 0,
        end_ms: 10_000,
    };
    let genesis = T::Nodes::genesis_hash();
    let relay_message = relay_report_message(&genesis, EPOCH, &session, &relay.0, &usage);
    let client_message = client_report_message(&genesis, EPOCH, &session, &relay.0, &usage);
    UsageRecord {
        session,
        relay: relay.0,
        relay_report: SignedUsage {
            usage,
            signature: sign(relay, &relay_message),
        },
        client_key: client.0,
        client_report: SignedUsage {
            usage,
            signature: sign(&client, &client_message),
        },
    }
}

/// Gives the pot `amount` above the existential deposit.
fn fund_pot<T: Config>(amount: BalanceOf<T>) {
    let pot = Rewards::<T>::pot_account();
    T::Currency::set_balance(&pot, T::Currency::minimum_balance().saturating_add(amount));
}

#[benchmarks]
mod benchmarks {
    use super::*;

    /// `n` records for `n` relays; every other oracle has reported each session and relay.
    #[benchmark]
    fn submit_reports(n: Linear<1, { T::MaxBatchSize::get() }>) {
        let caller: T::AccountId = whitelisted_caller();
        let max = T::MaxOracles::get();
        let others = max.saturating_sub(1);
        Snapshots::<T>::insert(
            EPOCH,
            EpochSnapshot::<T> {
                oracles: oracles::<T>(&caller),
                started_at_ms: 0,
                ended_at_ms: Some(u64::MAX),
            },
        );
        Clock::<T>::put(EpochClock {
            current: Some(EPOCH + 1),
            next_to_close: EPOCH,
        });
        let earlier: Vec<u64> = (0..others).map(|_| 1_000_000).collect();
        let credit = relay_credit(&earlier, max);
        let reports = BoundedVec::truncate_from(
            (0..others)
                .map(|o| (o as u8, 1_000_000u64))
                .collect::<Vec<_>>(),
        );
        let marked = 1u64.checked_shl(others).unwrap_or(0).wrapping_sub(1);
        let mut totals = EpochTotals::default();
        let mut records = Vec::new();
        for i in 0..n {
            let relay = sp_io::crypto::sr25519_generate(KEY_TYPE, None);
            let owner: T::AccountId = account("relay", i, SEED);
            T::Nodes::insert_node_unchecked(&owner, relay.0);
            let record = record::<T>(&relay);
            Sessions::<T>::insert(
                EPOCH,
                record.session,
                SessionMark {
                    relay: relay.0,
                    oracles: marked,
                    disputed: false,
                },
            );
            Tallies::<T>::insert(
                EPOCH,
                relay.0,
                RelayTally::<T> {
                    owner: owner.clone(),
                    reports: reports.clone(),
                    credit,
                },
            );
            if credit > 0 {
                Accrued::<T>::insert(relay.0, EPOCH, Accrual::<T> { owner, credit });
                totals.credited += 1;
                totals.credit += u128::from(credit);
            }
            totals.relays += 1;
            records.push(record);
        }
        Totals::<T>::insert(EPOCH, totals);
        let relays: Vec<IdentityKey> = records.iter().map(|r| r.relay).collect();

        #[extrinsic_call]
        _(RawOrigin::Signed(caller), EPOCH, records);

        for relay in relays {
            let tally = Tallies::<T>::get(EPOCH, relay);
            assert_eq!(tally.map(|t| t.reports.len() as u32), Some(max));
        }
    }

    /// Claiming `n` closed epochs, each of which the claim settles.
    #[benchmark]
    fn claim(n: Linear<1, { T::MaxClaimEpochs::get() }>) {
        let caller: T::AccountId = whitelisted_caller();
        T::Currency::set_balance(&caller, T::Currency::minimum_balance());
        let relay = [7u8; 32];
        let pool = T::RewardPerEpoch::get();
        for epoch in 0..n {
            Accrued::<T>::insert(
                relay,
                epoch,
                Accrual::<T> {
                    owner: caller.clone(),
                    credit: 1_000,
                },
            );
            Payouts::<T>::insert(
                epoch,
                Payout::<T> {
                    pool,
                    paid: Zero::zero(),
                    total_credit: 1_000,
                    relays: 1,
                    credited: 1,
                    unclaimed: 1,
                },
            );
        }
        let owed = pool.saturating_mul(n.into());
        Committed::<T>::put(owed);
        fund_pot::<T>(owed);
        Clock::<T>::put(EpochClock {
            current: Some(n + 2),
            next_to_close: n,
        });
        let epochs: Vec<EpochIndex> = (0..n).collect();

        #[extrinsic_call]
        _(RawOrigin::Signed(caller), relay, epochs);

        assert!(Committed::<T>::get().is_zero());
        assert!(Payouts::<T>::get(0).is_none());
    }

    /// A block start within an epoch: the clock and the current epoch are read.
    #[benchmark]
    fn on_initialize() {
        let current = T::Oracles::current_epoch();
        Clock::<T>::put(EpochClock {
            current: Some(current),
            next_to_close: current,
        });
        #[block]
        {
            Rewards::<T>::on_initialize(1u32.into());
        }
        assert_eq!(Clock::<T>::get().current, Some(current));
    }

    /// Recording the next epoch's full oracle set and ending the current one's span.
    #[benchmark]
    fn start_epoch() {
        let epoch = T::Oracles::current_epoch().saturating_add(1);
        let max = T::MaxOracles::get();
        let set = (0..max)
            .map(|i| (oracle_node(i), account("oracle", i, SEED)))
            .collect();
        T::Oracles::set_oracles_unchecked(epoch, set);
        let none: T::AccountId = account("nobody", 0, SEED);
        Snapshots::<T>::insert(
            epoch.saturating_sub(1),
            EpochSnapshot::<T> {
                oracles: oracles::<T>(&none),
                started_at_ms: 0,
                ended_at_ms: None,
            },
        );
        #[block]
        {
            Rewards::<T>::start_epoch(epoch);
        }
        assert_eq!(Snapshots::<T>::get(epoch).map(|s| s.elected()), Some(max));
    }

    /// Closing an epoch with credited relays: its pool is set aside.
    #[benchmark]
    fn close_epoch() {
        let epoch = 5;
        Totals::<T>::insert(
            epoch,
            EpochTotals {
                relays: 1,
                credited: 1,
                credit: 1_000,
            },
        );
        let pool = T::RewardPerEpoch::get();
        Committed::<T>::put(pool);
        fund_pot::<T>(pool.saturating_mul(2u32.into()));
        #[block]
        {
            Rewards::<T>::close_epoch(epoch);
        }
        assert!(Payouts::<T>::get(epoch).is_some());
    }

    /// Removing `k` session marks of a closed epoch.
    #[benchmark]
    fn prune(k: Linear<0, { crate::impls::MAX_PRUNE_PER_BLOCK }>) {
        for i in 0..k {
            let mut session = [0u8; 32];
            session[..4].copy_from_slice(&i.to_le_bytes());
            Sessions::<T>::insert(
                0,
                session,
                SessionMark {
                    relay: [1; 32],
                    oracles: 1,
                    disputed: false,
                },
            );
        }
        Clock::<T>::put(EpochClock {
            current: Some(2),
            next_to_close: 1,
        });
        Pruning::<T>::put(PruneState::default());
        #[block]
        {
            Rewards::<T>::prune(k.max(1));
        }
        assert_eq!(Sessions::<T>::iter_prefix(0).count(), 0);
    }

    impl_benchmark_test_suite!(Rewards, crate::mock::new_test_ext(), crate::mock::Test);
}
