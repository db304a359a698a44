//! Tests of every call and error, the election and its session hand-over, and slashing. Every
//! test ends with [`Staking::check_invariants`] (see [`mock::test`]), and every block advanced
//! with [`mock::run_to_block`] checks them too.

use crate::{
    mock::*, Candidates, CurrentEpoch, Elected, Error, Event, HoldReason, Invulnerables, Ledger,
    Offences,
};
use frame_support::{
    assert_noop, assert_ok,
    traits::{
        fungible::{Inspect, InspectHold},
        EstimateNextSessionRotation,
    },
};
use psp_primitives::{
    staking::{
        equivocation_report_message, statement_message, EquivocationEvidence,
        NodeEquivocationReport, NodeRegistry, Role, RoleStatement, SignedStatement,
    },
    IdentityKey,
};
use sp_core::{sr25519, Pair};
use sp_runtime::{DispatchError, Permill};

fn origin(who: u64) -> RuntimeOrigin {
    RuntimeOrigin::signed(who)
}

fn held(who: u64) -> u64 {
    Balances::balance_on_hold(&HoldReason::Staking.into(), &who)
}

fn last_event() -> Event<Test> {
    System::events()
        .into_iter()
        .rev()
        .find_map(|r| match r.event {
            RuntimeEvent::Staking(e) => Some(e),
            _ => None,
        })
        .expect("a staking event")
}

/// Bonds `stake`, registers `node` for `who` and stands for `roles`.
fn candidate(who: u64, node: IdentityKey, stake: u64, roles: &[Role]) {
    assert_ok!(Staking::bond(origin(who), stake));
    register_node(who, node);
    for role in roles {
        assert_ok!(Staking::stand(origin(who), node, *role));
    }
}

fn elected_nodes(epoch: u32, role: Role) -> Vec<IdentityKey> {
    Elected::<Test>::get(epoch, role)
        .iter()
        .map(|n| n.node)
        .collect()
}

/// Runs to the first block of epoch `epoch`.
fn run_to_epoch(epoch: u32) {
    run_to_block(u64::from(epoch) * EPOCH);
    assert_eq!(CurrentEpoch::<Test>::get(), epoch);
}

// --- bonding

#[test]
fn bond_holds_funds_and_emits() {
    test(|| {
        assert_ok!(Staking::bond(origin(ALICE), 1_000));
        assert_eq!(held(ALICE), 1_000);
        assert_eq!(Balances::balance(&ALICE), 9_000);
        assert_eq!(Ledger::<Test>::get(ALICE).map(|l| l.active), Some(1_000));
        assert_eq!(
            last_event(),
            Event::Bonded {
                who: ALICE,
                amount: 1_000
            }
        );
    });
}

#[test]
fn bond_errors_change_nothing() {
    test(|| {
        assert_noop!(Staking::bond(origin(ALICE), 0), Error::<Test>::ZeroAmount);
        assert_noop!(
            Staking::bond(origin(POOR), 501),
            Error::<Test>::InsufficientBalance
        );
        assert_noop!(
            Staking::bond_extra(origin(ALICE), 10),
            Error::<Test>::NotBonded
        );
        assert_ok!(Staking::bond(origin(ALICE), 1_000));
        assert_noop!(
            Staking::bond(origin(ALICE), 10),
            Error::<Test>::AlreadyBonded
        );
        assert_noop!(
            Staking::bond_extra(origin(ALICE), 20_000),
            Error::<Test>::InsufficientBalance
        );
        assert_noop!(
            Staking::bond(RuntimeOrigin::root(), 10),
            DispatchError::BadOrigin
        );
    });
}

#[test]
fn bond_extra_adds_to_the_active_bond() {
    test(|| {
        assert_ok!(Staking::bond(origin(ALICE), 1_000));
        assert_ok!(Staking::bond_extra(origin(ALICE), 500));
        assert_eq!(held(ALICE), 1_500);
        assert_eq!(Ledger::<Test>::get(ALICE).map(|l| l.active), Some(1_500));
    });
}

// --- unbonding and withdrawal

#[test]
fn unbond_makes_chunks_that_mature_after_the_period() {
    test(|| {
        assert_ok!(Staking::bond(origin(ALICE), 1_000));
        assert_ok!(Staking::unbond(origin(ALICE), 100));
        assert_eq!(
            last_event(),
            Event::Unbonded {
                who: ALICE,
                amount: 100,
                unlocks_at: 1 + UNBONDING
            }
        );
        // Same block: merged into one chunk.
        assert_ok!(Staking::unbond(origin(ALICE), 50));
        run_to_block(2);
        assert_ok!(Staking::unbond(origin(ALICE), 200));
        let ledger = Ledger::<Test>::get(ALICE).expect("bonded");
        assert_eq!(ledger.active, 650);
        assert_eq!(ledger.unlocking.len(), 2);
        // Unbonding funds stay held (and slashable) until withdrawn.
        assert_eq!(held(ALICE), 1_000);
        assert_noop!(
            Staking::withdraw_unbonded(origin(ALICE)),
            Error::<Test>::NothingToWithdraw
        );
        run_to_block(1 + UNBONDING);
        assert_ok!(Staking::withdraw_unbonded(origin(ALICE)));
        assert_eq!(held(ALICE), 850);
        assert_eq!(Balances::balance(&ALICE), 9_150);
        assert_eq!(
            last_event(),
            Event::Withdrawn {
                who: ALICE,
                amount: 150
            }
        );
    });
}

#[test]
fn withdraw_releases_several_matured_chunks_at_once_and_clears_the_ledger() {
    test(|| {
        assert_ok!(Staking::bond(origin(ALICE), 300));
        for block in 1..=3 {
            run_to_block(block);
            assert_ok!(Staking::unbond(origin(ALICE), 100));
        }
        run_to_block(20);
        assert_ok!(Staking::withdraw_unbonded(origin(ALICE)));
        assert_eq!(held(ALICE), 0);
        assert_eq!(Balances::balance(&ALICE), 10_000);
        assert!(Ledger::<Test>::get(ALICE).is_none());
    });
}

#[test]
fn unbond_errors_change_nothing() {
    test(|| {
        assert_noop!(Staking::unbond(origin(ALICE), 10), Error::<Test>::NotBonded);
        assert_noop!(
            Staking::withdraw_unbonded(origin(ALICE)),
            Error::<Test>::NotBonded
        );
        assert_ok!(Staking::bond(origin(ALICE), 1_000));
        assert_noop!(Staking::unbond(origin(ALICE), 0), Error::<Test>::ZeroAmount);
        assert_noop!(
            Staking::unbond(origin(ALICE), 1_001),
            Error::<Test>::UnbondTooMuch
        );
        // Three chunks at most (MaxUnlockingChunks).
        for block in 1..=3 {
            run_to_block(block);
            assert_ok!(Staking::unbond(origin(ALICE), 10));
        }
        run_to_block(4);
        assert_noop!(
            Staking::unbond(origin(ALICE), 10),
            Error::<Test>::TooManyUnlockingChunks
        );
    });
}

#[test]
fn a_candidate_cannot_unbond_below_its_roles_minimum() {
    test(|| {
        candidate(ALICE, node_of(ALICE), 400, &[Role::Discovery, Role::Oracle]);
        assert_noop!(
            Staking::unbond(origin(ALICE), 101),
            Error::<Test>::WouldFallBelowMinimum
        );
        assert_ok!(Staking::unbond(origin(ALICE), 100));
        assert_ok!(Staking::leave(origin(ALICE), Role::Discovery));
        assert_ok!(Staking::unbond(origin(ALICE), 250));
        assert_noop!(
            Staking::unbond(origin(ALICE), 1),
            Error::<Test>::WouldFallBelowMinimum
        );
    });
}

// --- candidacy

#[test]
fn stand_and_leave() {
    test(|| {
        candidate(ALICE, node_of(ALICE), 1_000, &[Role::Authority]);
        assert_eq!(
            last_event(),
            Event::CandidateStood {
                node: node_of(ALICE),
                owner: ALICE,
                role: Role::Authority
            }
        );
        assert_ok!(Staking::stand(origin(ALICE), node_of(ALICE), Role::Oracle));
        assert_eq!(Candidates::<Test>::get(node_of(ALICE)), Some(ALICE));
        assert_eq!(
            Staking::candidate_info(&node_of(ALICE)),
            Some((ALICE, vec![Role::Authority, Role::Oracle]))
        );
        assert_ok!(Staking::leave(origin(ALICE), Role::Authority));
        assert_eq!(Candidates::<Test>::get(node_of(ALICE)), Some(ALICE));
        assert_ok!(Staking::leave(origin(ALICE), Role::Oracle));
        assert_eq!(
            last_event(),
            Event::CandidateLeft {
                node: node_of(ALICE),
                role: Role::Oracle
            }
        );
        assert_eq!(Candidates::<Test>::count(), 0);
        assert_eq!(Ledger::<Test>::get(ALICE).and_then(|l| l.node), None);
    });
}

#[test]
fn stand_errors_change_nothing() {
    test(|| {
        let node = node_of(ALICE);
        assert_noop!(
            Staking::stand(origin(ALICE), node, Role::Authority),
            Error::<Test>::NotBonded
        );
        assert_ok!(Staking::bond(origin(ALICE), 200));
        assert_noop!(
            Staking::stand(origin(ALICE), node, Role::Authority),
            Error::<Test>::NotANode
        );
        register_node(BOB, node_of(BOB));
        assert_noop!(
            Staking::stand(origin(ALICE), node_of(BOB), Role::Authority),
            Error::<Test>::NotNodeOwner
        );
        register_node(ALICE, node);
        assert_noop!(
            Staking::stand(origin(ALICE), node, Role::Discovery),
            Error::<Test>::BelowMinimumStake
        );
        assert_ok!(Staking::stand(origin(ALICE), node, Role::Authority));
        assert_noop!(
            Staking::stand(origin(ALICE), node, Role::Authority),
            Error::<Test>::AlreadyCandidate
        );
        let second = [9u8; 32];
        register_node(ALICE, second);
        assert_noop!(
            Staking::stand(origin(ALICE), second, Role::Oracle),
            Error::<Test>::OtherNodeStanding
        );
        assert_noop!(
            Staking::leave(origin(BOB), Role::Oracle),
            Error::<Test>::NotBonded
        );
        assert_noop!(
            Staking::leave(origin(ALICE), Role::Oracle),
            Error::<Test>::NotCandidate
        );
    });
}

#[test]
fn a_revoked_client_identity_or_unknown_key_is_not_a_node() {
    test(|| {
        assert_ok!(Staking::bond(origin(ALICE), 200));
        register_node(ALICE, node_of(ALICE));
        assert_ok!(Identity::force_revoke(
            RuntimeOrigin::root(),
            node_of(ALICE)
        ));
        assert_noop!(
            Staking::stand(origin(ALICE), node_of(ALICE), Role::Authority),
            Error::<Test>::NotANode
        );
    });
}

#[test]
fn the_candidate_list_is_bounded() {
    test(|| {
        // MaxCandidates = 6; accounts 10..16 are funded here.
        for who in 10..16u64 {
            assert_ok!(Balances::force_set_balance(
                RuntimeOrigin::root(),
                who,
                1_000
            ));
            candidate(who, node_of(who), 100, &[Role::Oracle]);
        }
        assert_ok!(Staking::bond(origin(ALICE), 100));
        register_node(ALICE, node_of(ALICE));
        assert_noop!(
            Staking::stand(origin(ALICE), node_of(ALICE), Role::Oracle),
            Error::<Test>::TooManyCandidates
        );
    });
}

// --- elections and epochs

#[test]
fn the_top_stakes_fill_each_role_ties_to_the_lower_key() {
    test(|| {
        candidate(
            ALICE,
            node_of(ALICE),
            1_000,
            &[Role::Authority, Role::Oracle],
        );
        candidate(BOB, node_of(BOB), 500, &[Role::Authority, Role::Discovery]);
        candidate(
            CHARLIE,
            node_of(CHARLIE),
            500,
            &[Role::Authority, Role::Oracle],
        );
        candidate(DAVE, node_of(DAVE), 400, &[Role::Discovery, Role::Oracle]);
        run_to_epoch(1);
        // Epoch 1 starts: epoch 2 is elected.
        // Authorities (max 2): ALICE 1000, then BOB and CHARLIE tie at 500 -> BOB's key
        // (2) is lower than CHARLIE's (3).
        assert_eq!(
            elected_nodes(2, Role::Authority),
            vec![node_of(ALICE), node_of(BOB)]
        );
        assert_eq!(
            elected_nodes(2, Role::Discovery),
            vec![node_of(BOB), node_of(DAVE)]
        );
        assert_eq!(
            elected_nodes(2, Role::Oracle),
            vec![node_of(ALICE), node_of(CHARLIE), node_of(DAVE)]
        );
        assert!(System::events().iter().any(|r| r.event
            == RuntimeEvent::Staking(Event::Elected {
                epoch: 2,
                role: Role::Authority,
                nodes: vec![node_of(ALICE), node_of(BOB)],
            })));
        assert_eq!(Staking::elected(Role::Oracle, 2).map(|s| s.len()), Some(3));
        assert_eq!(
            Staking::elected(Role::Oracle, 2).and_then(|s| s.first().map(|n| n.stake)),
            Some(1_000)
        );
        // Only the current and next epochs are served and kept.
        assert!(Staking::elected(Role::Oracle, 3).is_none());
        run_to_epoch(3);
        assert!(Elected::<Test>::get(1, Role::Oracle).is_empty());
        assert_eq!(elected_nodes(3, Role::Oracle).len(), 3);
        assert_eq!(elected_nodes(4, Role::Oracle).len(), 3);
    });
}

#[test]
fn the_rewards_pallet_sees_the_elected_oracles() {
    use psp_primitives::rewards::OracleSet;
    test(|| {
        candidate(ALICE, node_of(ALICE), 1_000, &[Role::Oracle]);
        run_to_epoch(1);
        assert_eq!(<Staking as OracleSet<u64>>::current_epoch(), 1);
        assert_eq!(<Staking as OracleSet<u64>>::oracles(1), Some(vec![]));
        assert_eq!(
            <Staking as OracleSet<u64>>::oracles(2),
            Some(vec![(node_of(ALICE), ALICE)])
        );
        // Only the current and next epochs are known.
        assert_eq!(<Staking as OracleSet<u64>>::oracles(0), None);
        assert_eq!(<Staking as OracleSet<u64>>::oracles(3), None);
    });
}

#[test]
fn bond_changes_show_in_the_next_election() {
    test(|| {
        candidate(ALICE, node_of(ALICE), 500, &[Role::Discovery]);
        candidate(BOB, node_of(BOB), 400, &[Role::Discovery]);
        candidate(CHARLIE, node_of(CHARLIE), 300, &[Role::Discovery]);
        run_to_epoch(1);
        assert_eq!(
            elected_nodes(2, Role::Discovery),
            vec![node_of(ALICE), node_of(BOB)]
        );
        assert_ok!(Staking::bond_extra(origin(CHARLIE), 300));
        run_to_epoch(2);
        assert_eq!(
            elected_nodes(3, Role::Discovery),
            vec![node_of(CHARLIE), node_of(ALICE)]
        );
    });
}

#[test]
fn a_revoked_identity_drops_out_of_candidacy_and_the_election() {
    test(|| {
        candidate(
            ALICE,
            node_of(ALICE),
            1_000,
            &[Role::Oracle, Role::Authority],
        );
        candidate(BOB, node_of(BOB), 500, &[Role::Oracle]);
        run_to_epoch(1);
        assert_eq!(
            elected_nodes(2, Role::Oracle),
            vec![node_of(ALICE), node_of(BOB)]
        );
        assert_ok!(Identity::force_revoke(
            RuntimeOrigin::root(),
            node_of(ALICE)
        ));
        run_to_epoch(2);
        assert!(System::events().iter().any(|r| r.event
            == RuntimeEvent::Staking(Event::CandidateDropped {
                node: node_of(ALICE),
                owner: ALICE
            })));
        assert_eq!(Candidates::<Test>::get(node_of(ALICE)), None);
        assert_eq!(elected_nodes(2, Role::Oracle), vec![node_of(BOB)]);
        assert_eq!(elected_nodes(3, Role::Oracle), vec![node_of(BOB)]);
        assert!(elected_nodes(3, Role::Authority).is_empty());
        // The bond itself is untouched and can be unbonded.
        assert_eq!(held(ALICE), 1_000);
        assert_ok!(Staking::unbond(origin(ALICE), 1_000));
    });
}

#[test]
fn elected_authorities_become_the_session_validators() {
    test(|| {
        assert_eq!(Session::validators(), vec![GENESIS_AUTHORITY]);
        candidate(ALICE, node_of(ALICE), 1_000, &[Role::Authority]);
        set_session_keys(ALICE);
        // Epoch 1 plans epoch 2 with ALICE; she validates from epoch 2.
        run_to_epoch(1);
        assert_eq!(Session::validators(), vec![GENESIS_AUTHORITY]);
        run_to_epoch(2);
        assert_eq!(Session::validators(), vec![GENESIS_AUTHORITY, ALICE]);
        // Leaving takes effect for the epochs planned afterwards.
        assert_ok!(Staking::leave(origin(ALICE), Role::Authority));
        run_to_epoch(4);
        assert_eq!(Session::validators(), vec![GENESIS_AUTHORITY]);
    });
}

#[test]
fn an_elected_authority_without_session_keys_does_not_validate() {
    test(|| {
        candidate(ALICE, node_of(ALICE), 1_000, &[Role::Authority]);
        run_to_epoch(2);
        assert_eq!(elected_nodes(2, Role::Authority), vec![node_of(ALICE)]);
        assert_eq!(Session::validators(), vec![GENESIS_AUTHORITY]);
    });
}

#[test]
fn epochs_follow_the_configured_length() {
    test(|| {
        assert_eq!(Staking::epoch_schedule().next_starts_at, EPOCH);
        run_to_block(EPOCH - 1);
        assert_eq!(CurrentEpoch::<Test>::get(), 0);
        run_to_block(EPOCH);
        assert_eq!(CurrentEpoch::<Test>::get(), 1);
        assert_eq!(Session::current_index(), 1);
        let schedule = Staking::epoch_schedule();
        assert_eq!(
            (schedule.started_at, schedule.next_starts_at),
            (EPOCH, 2 * EPOCH)
        );
        assert_eq!(
            <Staking as EstimateNextSessionRotation<u64>>::estimate_next_session_rotation(
                EPOCH + 1
            )
            .0,
            Some(2 * EPOCH)
        );
        assert_eq!(
            <Staking as EstimateNextSessionRotation<u64>>::estimate_current_session_progress(
                EPOCH + 1
            )
            .0,
            Some(Permill::from_percent(20))
        );
        assert!(System::events()
            .iter()
            .any(|r| r.event == RuntimeEvent::Staking(Event::EpochStarted { epoch: 1 })));
    });
}

#[test]
fn set_invulnerables_is_root_only_and_bounded() {
    test(|| {
        assert_noop!(
            Staking::set_invulnerables(origin(ALICE), vec![ALICE]),
            DispatchError::BadOrigin
        );
        assert_noop!(
            Staking::set_invulnerables(RuntimeOrigin::root(), vec![1, 2, 3]),
            Error::<Test>::TooManyInvulnerables
        );
        assert_ok!(Staking::set_invulnerables(
            RuntimeOrigin::root(),
            vec![GENESIS_AUTHORITY, BOB]
        ));
        assert_eq!(
            Invulnerables::<Test>::get().into_inner(),
            vec![GENESIS_AUTHORITY, BOB]
        );
        set_session_keys(BOB);
        run_to_epoch(2);
        assert_eq!(Session::validators(), vec![GENESIS_AUTHORITY, BOB]);
    });
}

// --- slashing

/// A node with a real sr25519 key, bonded and elected to `role` for epochs 1 and 2.
fn elected_signer(who: u64, role: Role) -> sr25519::Pair {
    let pair = sr25519::Pair::from_seed(&[who as u8; 32]);
    candidate(who, pair.public().0, 1_000, &[role]);
    run_to_epoch(1);
    run_to_epoch(2);
    assert_eq!(elected_nodes(2, role), vec![pair.public().0]);
    pair
}

fn report(
    reporter: u64,
    evidence: EquivocationEvidence,
) -> frame_support::dispatch::DispatchResult {
    Staking::report_equivocation(origin(reporter), Box::new(evidence))
}

fn signed(pair: &sr25519::Pair, role: Role, slot: u64, payload: u8) -> SignedStatement {
    let statement = RoleStatement {
        role,
        slot,
        payload_hash: [payload; 32],
    };
    let genesis = <Identity as NodeRegistry<u64>>::genesis_hash();
    SignedStatement {
        signature: pair.sign(&statement_message(&genesis, &statement)).0,
        statement,
    }
}

fn evidence(
    pair: &sr25519::Pair,
    first: SignedStatement,
    second: SignedStatement,
) -> EquivocationEvidence {
    EquivocationEvidence {
        offender: pair.public().0,
        first,
        second,
    }
}

#[test]
fn valid_evidence_slashes_rewards_and_removes_from_the_role() {
    test(|| {
        let pair = elected_signer(ALICE, Role::Discovery);
        let node = pair.public().0;
        let issuance = Balances::total_issuance();
        let proof = evidence(
            &pair,
            signed(&pair, Role::Discovery, 7, 1),
            signed(&pair, Role::Discovery, 7, 2),
        );
        assert_ok!(report(REPORTER, proof.clone()));
        // 10% of 1_000 slashed; half to the reporter, half burned.
        assert_eq!(held(ALICE), 900);
        assert_eq!(Ledger::<Test>::get(ALICE).map(|l| l.active), Some(900));
        assert_eq!(Balances::balance(&REPORTER), 1_050);
        assert_eq!(Balances::total_issuance(), issuance - 50);
        assert_eq!(
            last_event(),
            Event::Slashed {
                node,
                owner: ALICE,
                role: Role::Discovery,
                amount: 100,
                reporter: REPORTER,
                reward: 50
            }
        );
        assert!(elected_nodes(2, Role::Discovery).is_empty());
        assert!(elected_nodes(3, Role::Discovery).is_empty());
        assert_eq!(Candidates::<Test>::get(node), None);
        assert_eq!(Offences::<Test>::get((node, Role::Discovery, 7)), Some(2));
        // The same evidence never slashes twice.
        assert_noop!(report(BOB, proof), Error::<Test>::AlreadyReported);
    });
}

#[test]
fn slashing_reaches_unbonding_chunks() {
    test(|| {
        let pair = elected_signer(ALICE, Role::Oracle);
        assert_ok!(Staking::unbond(origin(ALICE), 950));
        assert_ok!(report(
            REPORTER,
            evidence(
                &pair,
                signed(&pair, Role::Oracle, 1, 1),
                signed(&pair, Role::Oracle, 1, 2)
            )
        ));
        // 100 slashed: 50 active, then 50 from the unbonding chunk.
        let ledger = Ledger::<Test>::get(ALICE).expect("still bonded");
        assert_eq!(ledger.active, 0);
        assert_eq!(ledger.unlocking.first().map(|c| c.value), Some(900));
        assert_eq!(held(ALICE), 900);
    });
}

#[test]
fn invalid_evidence_is_refused_without_state_change() {
    test(|| {
        let pair = elected_signer(ALICE, Role::Discovery);
        let stranger = sr25519::Pair::from_seed(&[42; 32]);
        let refused = |offender: &sr25519::Pair, first, second, error: Error<Test>| {
            assert_noop!(report(REPORTER, evidence(offender, first, second)), error);
        };
        let discovery =
            |signer: &sr25519::Pair, slot, payload| signed(signer, Role::Discovery, slot, payload);
        // Same payload twice: no conflict.
        refused(
            &pair,
            discovery(&pair, 7, 1),
            discovery(&pair, 7, 1),
            Error::EvidenceNotConflicting,
        );
        // Different slots.
        refused(
            &pair,
            discovery(&pair, 7, 1),
            discovery(&pair, 8, 2),
            Error::EvidenceNotConflicting,
        );
        // A statement forged by another key.
        refused(
            &pair,
            discovery(&pair, 7, 1),
            discovery(&stranger, 7, 2),
            Error::BadEvidenceSignature,
        );
        // A tampered payload under a valid signature.
        let mut tampered = discovery(&pair, 7, 2);
        tampered.statement.payload_hash[0] ^= 1;
        refused(
            &pair,
            discovery(&pair, 7, 1),
            tampered,
            Error::BadEvidenceSignature,
        );
        // Real equivocation, but in a role the node is not elected to.
        refused(
            &pair,
            signed(&pair, Role::Authority, 7, 1),
            signed(&pair, Role::Authority, 7, 2),
            Error::OffenderNotElected,
        );
        // A key that is not elected at all.
        refused(
            &stranger,
            discovery(&stranger, 7, 1),
            discovery(&stranger, 7, 2),
            Error::OffenderNotElected,
        );
        assert_eq!(held(ALICE), 1_000);
    });
}

/// `reporter`'s report of `evidence`, signed with its node key.
fn node_report(reporter: &sr25519::Pair, evidence: EquivocationEvidence) -> NodeEquivocationReport {
    let genesis = <Identity as NodeRegistry<u64>>::genesis_hash();
    let message = equivocation_report_message(&genesis, &evidence, &reporter.public().0);
    NodeEquivocationReport {
        evidence,
        reporter: reporter.public().0,
        signature: reporter.sign(&message).0,
    }
}

#[allow(deprecated)] // `ValidateUnsigned`, which the runtime still uses for unsigned calls.
fn validate(
    report: &NodeEquivocationReport,
) -> sp_runtime::transaction_validity::TransactionValidity {
    use sp_runtime::traits::ValidateUnsigned;
    let call = crate::Call::<Test>::report_equivocation_by_node {
        report: Box::new(report.clone()),
    };
    <Staking as ValidateUnsigned>::validate_unsigned(
        sp_runtime::transaction_validity::TransactionSource::External,
        &call,
    )
}

fn report_by_node(report: &NodeEquivocationReport) -> frame_support::dispatch::DispatchResult {
    Staking::report_equivocation_by_node(RuntimeOrigin::none(), Box::new(report.clone()))
}

#[test]
fn an_elected_node_reports_equivocation_with_its_key_and_its_owner_is_rewarded() {
    use sp_runtime::transaction_validity::{InvalidTransaction, TransactionValidityError};
    test(|| {
        let offender = sr25519::Pair::from_seed(&[ALICE as u8; 32]);
        let reporter = sr25519::Pair::from_seed(&[BOB as u8; 32]);
        candidate(ALICE, offender.public().0, 1_000, &[Role::Discovery]);
        candidate(BOB, reporter.public().0, 1_000, &[Role::Oracle]);
        run_to_epoch(1);
        run_to_epoch(2);
        let proof = evidence(
            &offender,
            signed(&offender, Role::Discovery, 7, 1),
            signed(&offender, Role::Discovery, 7, 2),
        );
        let report = node_report(&reporter, proof.clone());
        let custom = |code| {
            Err(TransactionValidityError::Invalid(
                InvalidTransaction::Custom(code),
            ))
        };

        // Refused in the pool and at dispatch, nothing changed: a reporter that is not
        // elected, a forged reporter signature, a report signed for other evidence, a signed
        // origin.
        let stranger = sr25519::Pair::from_seed(&[42; 32]);
        let unelected = node_report(&stranger, proof.clone());
        assert_eq!(validate(&unelected), custom(1));
        assert_noop!(
            report_by_node(&unelected),
            Error::<Test>::ReporterNotElected
        );
        let mut forged = report.clone();
        forged.signature = stranger.sign(b"anything").0;
        assert_eq!(validate(&forged), custom(2));
        assert_noop!(report_by_node(&forged), Error::<Test>::BadReportSignature);
        let mut swapped = report.clone();
        swapped.evidence.second = signed(&offender, Role::Discovery, 7, 3);
        assert_eq!(validate(&swapped), custom(2));
        let not_conflicting = node_report(
            &reporter,
            evidence(
                &offender,
                signed(&offender, Role::Discovery, 7, 1),
                signed(&offender, Role::Discovery, 8, 2),
            ),
        );
        assert_eq!(validate(&not_conflicting), custom(3));
        assert_noop!(
            Staking::report_equivocation_by_node(origin(BOB), Box::new(report.clone())),
            DispatchError::BadOrigin
        );

        // Valid: one transaction per offence, then the slash; the reporter's owner gets its
        // share.
        let valid = validate(&report).expect("valid in the pool");
        assert_eq!(valid.provides.len(), 1);
        assert_eq!(valid.longevity, crate::NODE_REPORT_LONGEVITY);
        let bob_before = Balances::balance(&BOB);
        assert_ok!(report_by_node(&report));
        assert_eq!(held(ALICE), 900);
        assert_eq!(Balances::balance(&BOB), bob_before + 50);
        assert_eq!(
            last_event(),
            Event::Slashed {
                node: offender.public().0,
                owner: ALICE,
                role: Role::Discovery,
                amount: 100,
                reporter: BOB,
                reward: 50
            }
        );
        // Stale afterwards, and never twice.
        assert_eq!(
            validate(&report),
            Err(TransactionValidityError::Invalid(InvalidTransaction::Stale))
        );
        assert_noop!(report_by_node(&report), Error::<Test>::AlreadyReported);
    });
}

// --- the invariant check itself

#[test]
fn the_invariant_check_catches_broken_state() {
    new_test_ext().execute_with(|| {
        candidate(ALICE, node_of(ALICE), 1_000, &[Role::Oracle]);
        assert_eq!(Staking::check_invariants(), Ok(()));
        // A ledger that claims more than is held.
        Ledger::<Test>::mutate(ALICE, |l| {
            if let Some(l) = l {
                l.active += 1
            }
        });
        assert!(Staking::check_invariants().is_err());
        Ledger::<Test>::mutate(ALICE, |l| {
            if let Some(l) = l {
                l.active -= 1
            }
        });
        assert_eq!(Staking::check_invariants(), Ok(()));
        // A candidate without a ledger naming it.
        Candidates::<Test>::insert(node_of(BOB), BOB);
        assert!(Staking::check_invariants().is_err());
        Candidates::<Test>::remove(node_of(BOB));
        // An elected node that is not a live candidate for the role.
        run_to_epoch(1);
        Elected::<Test>::mutate(2, Role::Discovery, |set| {
            let _ = set.try_push(psp_primitives::staking::ElectedNode {
                node: node_of(ALICE),
                owner: ALICE,
                stake: 1_000,
            });
        });
        assert!(Staking::check_invariants().is_err());
    });
}
