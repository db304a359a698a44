//! FRAME v2 benchmarks of every call at its worst case, and of the election at the maximum
//! candidate count (every candidate standing for every role).

use super::*;
use crate::Pallet as Staking;
use alloc::vec::Vec;
use frame_benchmarking::v2::*;
use frame_support::traits::{fungible::Mutate, Get};
use frame_system::RawOrigin;
use psp_primitives::{
    staking::{
        equivocation_report_message, statement_message, EquivocationEvidence,
        NodeEquivocationReport, NodeRegistry, Role, RoleStatement, SignedStatement,
    },
    IdentityKey,
};
use sp_core::{crypto::KeyTypeId, sr25519};
use sp_runtime::traits::Saturating;

const KEY_TYPE: KeyTypeId = KeyTypeId(*b"psst");
const SEED: u32 = 0;

fn funded<T: Config>(name: &'static str, index: u32) -> T::AccountId
where
    T::Currency: Mutate<T::AccountId>,
{
    let who: T::AccountId = account(name, index, SEED);
    // Enough for every bond here, small enough that hundreds of stakers do not overflow the
    // total issuance.
    T::Currency::set_balance(&who, big_bond::<T>().saturating_mul(10u32.into()));
    who
}

/// A bond large enough for every role.
fn big_bond<T: Config>() -> BalanceOf<T> {
    min_stake::<T>(Role::Discovery)
        .saturating_add(min_stake::<T>(Role::Authority))
        .saturating_mul(4u32.into())
}

fn node_key(index: u32) -> IdentityKey {
    let mut key = [0xAB; 32];
    key[..4].copy_from_slice(&index.to_le_bytes());
    key
}

/// A bonded account standing for every role with a registered node.
fn candidate<T: Config>(index: u32, node: IdentityKey) -> T::AccountId
where
    T::Currency: Mutate<T::AccountId>,
{
    let who = funded::<T>("candidate", index);
    if Staking::<T>::do_bond(who.clone(), big_bond::<T>()).is_err() {
        panic!("benchmark setup: bond failed");
    }
    T::Nodes::insert_node_unchecked(&who, node);
    for role in Role::ALL {
        if Staking::<T>::do_stand(who.clone(), node, role).is_err() {
            panic!("benchmark setup: stand failed");
        }
    }
    who
}

fn sign<T: Config>(key: &sr25519::Public, statement: RoleStatement) -> SignedStatement {
    let message = statement_message(&T::Nodes::genesis_hash(), &statement);
    let signature = sp_io::crypto::sr25519_sign(KEY_TYPE, key, &message)
        .map(|s| s.0)
        .unwrap_or([0; 64]);
    SignedStatement {
        statement,
        signature,
    }
}

/// An elected discovery node with full unbonding chunks (the costliest slash) and evidence of
/// its equivocation in slot 9; `others` stand and are elected beside it.
fn equivocation<T: Config>(others: &[IdentityKey]) -> (IdentityKey, EquivocationEvidence)
where
    T::Currency: Mutate<T::AccountId>,
{
    let key = sp_io::crypto::sr25519_generate(KEY_TYPE, None);
    let who = candidate::<T>(0, key.0);
    for block in 1..=T::MaxUnlockingChunks::get() {
        frame_system::Pallet::<T>::set_block_number(block.into());
        assert!(Staking::<T>::do_unbond(who.clone(), 1u32.into()).is_ok());
    }
    for (i, other) in others.iter().enumerate() {
        candidate::<T>(i as u32 + 1, *other);
    }
    Staking::<T>::elect(CurrentEpoch::<T>::get());
    let statement = |payload| RoleStatement {
        role: Role::Discovery,
        slot: 9,
        payload_hash: [payload; 32],
    };
    let evidence = EquivocationEvidence {
        offender: key.0,
        first: sign::<T>(&key, statement(1)),
        second: sign::<T>(&key, statement(2)),
    };
    (key.0, evidence)
}

#[benchmarks(where T::Currency: Mutate<T::AccountId>)]
mod benchmarks {
    use super::*;

    #[benchmark]
    fn bond() {
        let who = funded::<T>("staker", 0);
        let value = big_bond::<T>();
        #[extrinsic_call]
        _(RawOrigin::Signed(who.clone()), value);
        assert_eq!(Ledger::<T>::get(&who).map(|l| l.active), Some(value));
    }

    #[benchmark]
    fn bond_extra() {
        let who = funded::<T>("staker", 0);
        let value = big_bond::<T>();
        assert!(Staking::<T>::do_bond(who.clone(), value).is_ok());
        #[extrinsic_call]
        _(RawOrigin::Signed(who.clone()), value);
        assert_eq!(
            Ledger::<T>::get(&who).map(|l| l.active),
            Some(value.saturating_mul(2u32.into()))
        );
    }

    /// A candidate for every role unbonding down to the discovery minimum, with all but one
    /// chunk slot taken.
    #[benchmark]
    fn unbond() {
        let who = candidate::<T>(0, node_key(0));
        let chunks = T::MaxUnlockingChunks::get().saturating_sub(1);
        for block in 1..=chunks {
            frame_system::Pallet::<T>::set_block_number(block.into());
            assert!(Staking::<T>::do_unbond(who.clone(), 1u32.into()).is_ok());
        }
        frame_system::Pallet::<T>::set_block_number((chunks + 1).into());
        #[extrinsic_call]
        _(RawOrigin::Signed(who.clone()), 1u32.into());
        assert_eq!(
            Ledger::<T>::get(&who).map(|l| l.unlocking.len() as u32),
            Some(chunks + 1)
        );
    }

    /// Withdrawing `c` matured chunks at once.
    #[benchmark]
    fn withdraw_unbonded(c: Linear<1, { T::MaxUnlockingChunks::get() }>) {
        let who = funded::<T>("staker", 0);
        assert!(Staking::<T>::do_bond(who.clone(), big_bond::<T>()).is_ok());
        for block in 1..=c {
            frame_system::Pallet::<T>::set_block_number(block.into());
            assert!(Staking::<T>::do_unbond(who.clone(), 1u32.into()).is_ok());
        }
        frame_system::Pallet::<T>::set_block_number(
            T::UnbondingPeriod::get().saturating_add((c + 1).into()),
        );
        #[extrinsic_call]
        _(RawOrigin::Signed(who.clone()));
        assert_eq!(Ledger::<T>::get(&who).map(|l| l.unlocking.len()), Some(0));
    }

    /// Standing with a new node (the candidate list grows).
    #[benchmark]
    fn stand() {
        let who = funded::<T>("staker", 0);
        assert!(Staking::<T>::do_bond(who.clone(), big_bond::<T>()).is_ok());
        let node = node_key(7);
        T::Nodes::insert_node_unchecked(&who, node);
        #[extrinsic_call]
        _(RawOrigin::Signed(who.clone()), node, Role::Discovery);
        assert_eq!(Candidates::<T>::get(node), Some(who));
    }

    /// Leaving the last role of an elected node (the candidacy and elected entries go).
    #[benchmark]
    fn leave() {
        let node = node_key(0);
        let who = candidate::<T>(0, node);
        for role in [Role::Authority, Role::Oracle] {
            assert!(Staking::<T>::do_leave(who.clone(), role).is_ok());
        }
        Staking::<T>::elect(CurrentEpoch::<T>::get().saturating_add(1));
        #[extrinsic_call]
        _(RawOrigin::Signed(who.clone()), Role::Discovery);
        assert_eq!(Candidates::<T>::get(node), None);
    }

    /// Valid evidence against an elected discovery node with unbonding chunks; the reporter
    /// is a new account.
    #[benchmark]
    fn report_equivocation() {
        let (offender, evidence) = equivocation::<T>(&[]);
        let reporter: T::AccountId = whitelisted_caller();
        #[extrinsic_call]
        _(
            RawOrigin::Signed(reporter),
            alloc::boxed::Box::new(evidence),
        );
        assert!(Offences::<T>::contains_key((offender, Role::Discovery, 9)));
    }

    /// As `report_equivocation`, reported by another elected node with its node key.
    #[benchmark]
    fn report_equivocation_by_node() {
        let reporter = sp_io::crypto::sr25519_generate(KEY_TYPE, None);
        let (offender, evidence) = equivocation::<T>(&[reporter.0]);
        let message =
            equivocation_report_message(&T::Nodes::genesis_hash(), &evidence, &reporter.0);
        let signature = sp_io::crypto::sr25519_sign(KEY_TYPE, &reporter, &message)
            .map(|s| s.0)
            .unwrap_or([0; 64]);
        let report = NodeEquivocationReport {
            evidence,
            reporter: reporter.0,
            signature,
        };
        #[extrinsic_call]
        _(RawOrigin::None, alloc::boxed::Box::new(report));
        assert!(Offences::<T>::contains_key((offender, Role::Discovery, 9)));
    }

    #[benchmark]
    fn set_invulnerables(n: Linear<1, { T::MaxInvulnerables::get() }>) {
        let invulnerables: Vec<T::AccountId> =
            (0..n).map(|i| account("invulnerable", i, SEED)).collect();
        #[extrinsic_call]
        _(RawOrigin::Root, invulnerables);
        assert_eq!(Invulnerables::<T>::get().len() as u32, n);
    }

    /// The election with `c` candidates, each standing for every role.
    #[benchmark]
    fn elect(c: Linear<1, { T::MaxCandidates::get() }>) {
        for i in 0..c {
            candidate::<T>(i, node_key(i));
        }
        #[block]
        {
            Staking::<T>::elect(1);
        }
        assert_eq!(
            Elected::<T>::get(1, Role::Oracle).len() as u32,
            c.min(T::MaxOracles::get())
        );
    }

    impl_benchmark_test_suite!(Staking, crate::mock::new_test_ext(), crate::mock::Test);
}
