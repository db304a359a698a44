//! Tests of every call and error, the unsigned validation (each refusal checked both in the
//! pool and at dispatch), pruning and the runtime API. Every test ends with
//! [`crate::Pallet::check_invariants`] (see [`mock::test`]).

#![allow(deprecated)] // `ValidateUnsigned`, which the runtime still uses for unsigned calls.

use crate::{
    mock::*, Call, Error, Event, KeyEpochs, PublicationError, ReceiptKeys, Subscriptions as Subs,
    INVALID_BAD_EXPIRY, INVALID_DUPLICATE_TIER, INVALID_EMPTY_KEY, INVALID_NOT_AN_ORACLE,
    INVALID_NO_KEYS, INVALID_TIER_NOT_IN_PLANS,
};
use frame_support::{
    assert_noop, assert_ok,
    pallet_prelude::{
        InvalidTransaction, TransactionSource, TransactionValidityError, ValidTransaction,
        ValidateUnsigned,
    },
    traits::fungible::Inspect,
};
use psp_primitives::{
    staking::EpochIndex,
    subscriptions::{
        OracleReceiptKeys, ReceiptKey, ReceiptKeyPublication, Subscription, SubscriptionInfo,
        SubscriptionsStatus, Tier,
    },
};
use sp_runtime::{BoundedVec, DispatchError, TokenError};

fn events() -> Vec<Event<Test>> {
    System::events()
        .into_iter()
        .filter_map(|r| match r.event {
            RuntimeEvent::Subscriptions(e) => Some(e),
            _ => None,
        })
        .collect()
}

fn last_event() -> Event<Test> {
    events().pop().expect("a subscriptions event")
}

fn balance(who: u64) -> u64 {
    Balances::balance(&who)
}

fn subscribe(payer: u64, client_index: u8, plan: u8, epochs: u32) -> sp_runtime::DispatchResult {
    Subscriptions::subscribe(
        RuntimeOrigin::signed(payer),
        client(client_index),
        plan,
        epochs,
    )
}

fn validate(publication: &ReceiptKeyPublication) -> Result<ValidTransaction, InvalidTransaction> {
    let call = Call::<Test>::publish_receipt_keys {
        publication: publication.clone(),
    };
    <Subscriptions as ValidateUnsigned>::validate_unsigned(TransactionSource::External, &call)
        .map_err(|e| match e {
            TransactionValidityError::Invalid(i) => i,
            TransactionValidityError::Unknown(u) => panic!("unknown validity error {u:?}"),
        })
}

fn publish(publication: ReceiptKeyPublication) -> sp_runtime::DispatchResult {
    Subscriptions::publish_receipt_keys(RuntimeOrigin::none(), publication)
}

/// Both the pool and the dispatch refuse `publication`, with `invalid` and `error`; nothing
/// is stored.
fn assert_refused(
    publication: ReceiptKeyPublication,
    invalid: InvalidTransaction,
    error: Error<Test>,
) {
    assert_eq!(validate(&publication), Err(invalid));
    let before = ReceiptKeys::<Test>::get(publication.epoch, publication.oracle);
    assert_noop!(publish(publication.clone()), error);
    assert_eq!(
        ReceiptKeys::<Test>::get(publication.epoch, publication.oracle),
        before
    );
}

// --- subscribe

#[test]
fn subscribing_pays_the_pot_exactly_and_records_the_span() {
    test(|| {
        run_to_epoch(2);
        assert_ok!(subscribe(BOB, 0, 1, 3));
        assert_eq!(balance(BOB), 1_000 - 75);
        assert_eq!(balance(POT), 75);
        assert_eq!(
            Subs::<Test>::get(client(0)),
            Some(Subscription {
                plan: 1,
                from: 2,
                until: 5,
                payer: BOB,
            })
        );
        assert_eq!(
            last_event(),
            Event::Subscribed {
                identity: client(0),
                plan: 1,
                from: 2,
                until: 5,
                paid: 75,
                payer: BOB,
            }
        );
    });
}

#[test]
fn subscribing_again_to_the_same_plan_extends_it() {
    test(|| {
        assert_ok!(subscribe(ALICE, 0, 0, 2));
        run_to_epoch(1);
        assert_ok!(subscribe(BOB, 0, 0, 4));
        assert_eq!(
            Subs::<Test>::get(client(0)),
            Some(Subscription {
                plan: 0,
                from: 0,
                until: 6,
                payer: BOB,
            })
        );
        assert_eq!(balance(ALICE), 1_000 - 20);
        assert_eq!(balance(BOB), 1_000 - 40);
        assert_eq!(balance(POT), 60);
        assert!(matches!(
            last_event(),
            Event::Subscribed {
                from: 0,
                until: 6,
                paid: 40,
                ..
            }
        ));
    });
}

#[test]
fn a_run_out_subscription_is_replaced_by_any_plan() {
    test(|| {
        assert_ok!(subscribe(ALICE, 0, 0, 1));
        run_to_epoch(3);
        assert_ok!(subscribe(ALICE, 0, 2, 2));
        assert_eq!(
            Subs::<Test>::get(client(0)),
            Some(Subscription {
                plan: 2,
                from: 3,
                until: 5,
                payer: ALICE,
            })
        );
        assert_eq!(balance(POT), 10 + 120);
    });
}

#[test]
fn another_plan_is_refused_while_one_is_active() {
    test(|| {
        assert_ok!(subscribe(ALICE, 0, 0, 2));
        run_to_epoch(1);
        assert_noop!(
            subscribe(ALICE, 0, 1, 1),
            Error::<Test>::PlanChangeWhileActive
        );
        // Its last epoch is still covered.
        assert_eq!(Subs::<Test>::get(client(0)).map(|s| s.until), Some(2));
    });
}

#[test]
fn only_active_clients_may_subscribe() {
    test(|| {
        // Unknown identity.
        assert_noop!(subscribe(ALICE, 5, 0, 1), Error::<Test>::NotAClient);
        // A node identity.
        assert_noop!(
            Subscriptions::subscribe(RuntimeOrigin::signed(ALICE), oracle(0), 0, 1),
            Error::<Test>::NotAClient
        );
        // A revoked client.
        register_client(4);
        assert_ok!(Identity::force_revoke(RuntimeOrigin::root(), client(4)));
        assert_noop!(subscribe(ALICE, 4, 0, 1), Error::<Test>::NotAClient);
        assert_eq!(balance(POT), 0);
    });
}

#[test]
fn bad_plans_and_epoch_counts_are_refused() {
    test(|| {
        assert_noop!(subscribe(ALICE, 0, 3, 1), Error::<Test>::UnknownPlan);
        assert_noop!(subscribe(ALICE, 0, 255, 1), Error::<Test>::UnknownPlan);
        assert_noop!(subscribe(ALICE, 0, 0, 0), Error::<Test>::ZeroEpochs);
        assert_noop!(
            subscribe(ALICE, 0, 0, MAX_EPOCHS + 1),
            Error::<Test>::TooManyEpochs
        );
        assert_noop!(
            subscribe(ALICE, 0, 0, u32::MAX),
            Error::<Test>::TooManyEpochs
        );
        // Exactly MaxEpochs is fine; one more by extension is not.
        assert_ok!(subscribe(ALICE, 0, 0, MAX_EPOCHS));
        assert_noop!(subscribe(ALICE, 0, 0, 1), Error::<Test>::TooManyEpochs);
        run_to_epoch(1);
        assert_ok!(subscribe(ALICE, 0, 0, 1));
        assert_eq!(
            Subs::<Test>::get(client(0)).map(|s| s.until),
            Some(MAX_EPOCHS + 1)
        );
    });
}

#[test]
fn a_payer_without_the_funds_changes_nothing() {
    test(|| {
        // 30 cannot pay 60.
        assert_noop!(
            subscribe(POOR, 0, 2, 1),
            DispatchError::Token(TokenError::FundsUnavailable)
        );
        // 30 can pay 30 only by being reaped: refused too.
        assert_noop!(
            subscribe(POOR, 0, 0, 3),
            DispatchError::Token(TokenError::NotExpendable)
        );
        assert_eq!(balance(POOR), 30);
        assert_eq!(balance(POT), 0);
        assert!(Subs::<Test>::get(client(0)).is_none());
        // 20 leaves 10 behind.
        assert_ok!(subscribe(POOR, 0, 0, 2));
        assert_eq!(balance(POOR), 10);
    });
}

#[test]
fn unsigned_origin_cannot_subscribe_and_signed_cannot_publish() {
    test(|| {
        assert_noop!(
            Subscriptions::subscribe(RuntimeOrigin::none(), client(0), 0, 1),
            DispatchError::BadOrigin
        );
        assert_noop!(
            Subscriptions::publish_receipt_keys(
                RuntimeOrigin::signed(100),
                publication(0, 0, all_keys())
            ),
            DispatchError::BadOrigin
        );
        assert_noop!(
            Subscriptions::publish_receipt_keys(
                RuntimeOrigin::root(),
                publication(0, 0, all_keys())
            ),
            DispatchError::BadOrigin
        );
    });
}

// --- publish_receipt_keys

#[test]
fn a_valid_publication_is_accepted_once() {
    test(|| {
        let p = publication(0, 1, all_keys());
        let valid = validate(&p).expect("valid");
        assert_eq!(valid.priority, PRIORITY);
        assert_eq!(valid.longevity, LONGEVITY);
        assert!(valid.propagate);
        assert_eq!(valid.provides.len(), 1);
        assert!(valid.requires.is_empty());
        assert_ok!(publish(p.clone()));
        assert_eq!(ReceiptKeys::<Test>::get(0, oracle(1)), Some(p.keys.clone()));
        assert_eq!(
            last_event(),
            Event::ReceiptKeysPublished {
                epoch: 0,
                oracle: oracle(1),
                keys: 3,
            }
        );
        assert_refused(
            p,
            InvalidTransaction::Stale,
            Error::<Test>::AlreadyPublished,
        );
        // Another oracle, and the same oracle for the next epoch, still can.
        assert_ok!(publish(publication(0, 2, all_keys())));
        assert_ok!(publish(publication(1, 1, all_keys())));
    });
}

#[test]
fn the_provided_tag_is_per_epoch_and_oracle() {
    test(|| {
        let a = validate(&publication(0, 0, all_keys())).expect("valid");
        let b = validate(&publication(0, 0, vec![receipt_key(0, 60)])).expect("valid");
        let c = validate(&publication(1, 0, all_keys())).expect("valid");
        let d = validate(&publication(0, 1, all_keys())).expect("valid");
        assert_eq!(a.provides, b.provides);
        assert_ne!(a.provides, c.provides);
        assert_ne!(a.provides, d.provides);
    });
}

#[test]
fn a_subset_of_tiers_may_be_published() {
    test(|| {
        assert_ok!(publish(publication(0, 0, vec![receipt_key(2, 60)])));
        assert_eq!(
            ReceiptKeys::<Test>::get(0, oracle(0)).map(|k| k.len()),
            Some(1)
        );
    });
}

#[test]
fn forged_signatures_are_refused() {
    test(|| {
        let genesis = <Identity as psp_primitives::staking::NodeRegistry<u64>>::genesis_hash();
        // Signed by another key.
        let p = publication_signed(&genesis, 0, 0, all_keys(), &oracle_pair(1));
        assert_refused(p, InvalidTransaction::BadProof, Error::<Test>::BadSignature);
        // Signed for another chain.
        let p = publication_signed(&[7; 32], 0, 0, all_keys(), &oracle_pair(0));
        assert_refused(p, InvalidTransaction::BadProof, Error::<Test>::BadSignature);
        // Signed for another epoch.
        let mut p = publication(1, 0, all_keys());
        p.epoch = 0;
        assert_refused(p, InvalidTransaction::BadProof, Error::<Test>::BadSignature);
        // Keys changed after signing.
        let mut p = publication(0, 0, all_keys());
        p.keys[0].expires_at += 1;
        assert_refused(p, InvalidTransaction::BadProof, Error::<Test>::BadSignature);
        // Claimed for another oracle (which is elected).
        let mut p = publication(0, 0, all_keys());
        p.oracle = oracle(1);
        assert_refused(p, InvalidTransaction::BadProof, Error::<Test>::BadSignature);
    });
}

#[test]
fn only_oracles_elected_for_the_epoch_may_publish() {
    test(|| {
        assert_refused(
            publication(0, 5, all_keys()),
            InvalidTransaction::Custom(INVALID_NOT_AN_ORACLE),
            Error::<Test>::NotAnOracle,
        );
        // Oracle 5 is elected for epoch 1 only; oracle 0 is no longer.
        elect(1, &[1, 5]);
        assert_ok!(publish(publication(1, 5, all_keys())));
        assert_refused(
            publication(1, 0, all_keys()),
            InvalidTransaction::Custom(INVALID_NOT_AN_ORACLE),
            Error::<Test>::NotAnOracle,
        );
        assert_ok!(publish(publication(0, 0, all_keys())));
    });
}

#[test]
fn only_oracles_within_max_oracles_may_publish() {
    test(|| {
        let all: Vec<u8> = (0..=MAX_ORACLES as u8).collect();
        elect(1, &all);
        assert_ok!(publish(publication(1, MAX_ORACLES as u8 - 1, all_keys())));
        assert_refused(
            publication(1, MAX_ORACLES as u8, all_keys()),
            InvalidTransaction::Custom(INVALID_NOT_AN_ORACLE),
            Error::<Test>::NotAnOracle,
        );
    });
}

#[test]
fn only_the_current_and_next_epoch_are_accepted() {
    test(|| {
        run_to_epoch(3);
        assert_refused(
            publication(2, 0, all_keys()),
            InvalidTransaction::Stale,
            Error::<Test>::WrongEpoch,
        );
        assert_refused(
            publication(0, 0, all_keys()),
            InvalidTransaction::Stale,
            Error::<Test>::WrongEpoch,
        );
        assert_refused(
            publication(5, 0, all_keys()),
            InvalidTransaction::Future,
            Error::<Test>::WrongEpoch,
        );
        assert_refused(
            publication(EpochIndex::MAX, 0, all_keys()),
            InvalidTransaction::Future,
            Error::<Test>::WrongEpoch,
        );
        assert_ok!(publish(publication(3, 0, all_keys())));
        assert_ok!(publish(publication(4, 0, all_keys())));
    });
}

#[test]
fn keys_must_match_the_plans_tiers_once_each() {
    test(|| {
        assert_refused(
            publication(0, 0, vec![]),
            InvalidTransaction::Custom(INVALID_NO_KEYS),
            Error::<Test>::NoKeys,
        );
        let mut odd = receipt_key(0, 60);
        odd.tier.bitrate_class = 9;
        assert_refused(
            publication(0, 0, vec![receipt_key(1, 60), odd]),
            InvalidTransaction::Custom(INVALID_TIER_NOT_IN_PLANS),
            Error::<Test>::TierNotInPlans,
        );
        assert_refused(
            publication(
                0,
                0,
                vec![receipt_key(1, 60), receipt_key(0, 60), receipt_key(1, 90)],
            ),
            InvalidTransaction::Custom(INVALID_DUPLICATE_TIER),
            Error::<Test>::DuplicateTier,
        );
        let empty = ReceiptKey {
            public_key: BoundedVec::new(),
            ..receipt_key(0, 60)
        };
        assert_refused(
            publication(0, 0, vec![empty]),
            InvalidTransaction::Custom(INVALID_EMPTY_KEY),
            Error::<Test>::EmptyKey,
        );
    });
}

#[test]
fn expiries_must_be_in_the_future_and_within_the_lifetime() {
    test(|| {
        let now = now_secs();
        let at = |expires_at| ReceiptKey {
            expires_at,
            ..receipt_key(0, 0)
        };
        for bad in [0, now - 1, now, now + MAX_KEY_LIFETIME + 1, u64::MAX] {
            assert_refused(
                publication(0, 0, vec![receipt_key(1, 60), at(bad)]),
                InvalidTransaction::Custom(INVALID_BAD_EXPIRY),
                Error::<Test>::BadExpiry,
            );
        }
        assert_ok!(publish(publication(0, 0, vec![at(now + 1)])));
        assert_ok!(publish(publication(0, 1, vec![at(now + MAX_KEY_LIFETIME)])));
    });
}

#[test]
fn a_publication_valid_in_the_pool_is_checked_again_at_dispatch() {
    test(|| {
        let p = publication(0, 0, all_keys());
        assert!(validate(&p).is_ok());
        // The epoch moves on before it is included.
        run_to_epoch(1);
        assert_refused(p, InvalidTransaction::Stale, Error::<Test>::WrongEpoch);
    });
}

#[test]
fn every_refusal_maps_to_its_documented_codes() {
    use PublicationError::*;
    let all = [
        StaleEpoch,
        FutureEpoch,
        NotAnOracle,
        AlreadyPublished,
        NoKeys,
        TierNotInPlans,
        DuplicateTier,
        BadExpiry,
        EmptyKey,
        BadSignature,
    ];
    let codes: Vec<InvalidTransaction> = all.iter().map(|e| e.invalid_transaction()).collect();
    let customs: Vec<u8> = codes
        .iter()
        .filter_map(|c| match c {
            InvalidTransaction::Custom(n) => Some(*n),
            _ => None,
        })
        .collect();
    assert_eq!(customs, vec![1, 2, 3, 4, 5, 6]);
    let dispatch = |e: PublicationError| DispatchError::from(e.dispatch_error::<Test>());
    assert_eq!(dispatch(BadSignature), Error::<Test>::BadSignature.into());
    assert_eq!(dispatch(StaleEpoch), Error::<Test>::WrongEpoch.into());
    assert_eq!(dispatch(FutureEpoch), Error::<Test>::WrongEpoch.into());
    assert_eq!(dispatch(EmptyKey), Error::<Test>::EmptyKey.into());
}

// --- pruning

fn oracles_with_keys(epoch: EpochIndex) -> usize {
    ReceiptKeys::<Test>::iter_prefix(epoch).count()
}

#[test]
fn publishing_prunes_keys_older_than_the_two_epochs_before_the_current() {
    test(|| {
        for epoch in 0..4 {
            run_to_epoch(epoch);
            for oracle in 0..3 {
                assert_ok!(publish(publication(epoch, oracle, all_keys())));
            }
        }
        // At epoch 3: 0 is stale and pruned by the first publication of epoch 3.
        assert_eq!(oracles_with_keys(0), 0);
        assert_eq!(
            (1..4).map(oracles_with_keys).collect::<Vec<_>>(),
            vec![3, 3, 3]
        );
        // Publishing for the next epoch keeps the current one and the two before.
        assert_ok!(publish(publication(4, 0, all_keys())));
        assert_eq!(
            (1..5).map(oracles_with_keys).collect::<Vec<_>>(),
            vec![3, 3, 3, 1]
        );
        assert_eq!(KeyEpochs::<Test>::get().into_inner(), vec![1, 2, 3, 4]);
        run_to_epoch(4);
        assert_ok!(publish(publication(4, 1, all_keys())));
        assert_eq!(oracles_with_keys(1), 0);
        assert_eq!(
            (2..5).map(oracles_with_keys).collect::<Vec<_>>(),
            vec![3, 3, 2]
        );
    });
}

#[test]
fn pruning_catches_up_after_epochs_without_publications() {
    test(|| {
        assert_ok!(publish(publication(0, 0, all_keys())));
        assert_ok!(publish(publication(1, 0, all_keys())));
        run_to_epoch(1);
        assert_ok!(publish(publication(1, 1, all_keys())));
        // Nobody publishes for epochs 2..=9.
        run_to_epoch(10);
        assert_ok!(publish(publication(10, 0, all_keys())));
        assert_eq!(oracles_with_keys(0), 0);
        assert_eq!(oracles_with_keys(1), 2);
        assert_ok!(publish(publication(10, 1, all_keys())));
        assert_eq!(oracles_with_keys(1), 0);
        assert_eq!(KeyEpochs::<Test>::get().into_inner(), vec![10]);
        assert_eq!(ReceiptKeys::<Test>::iter().count(), 2);
    });
}

// --- runtime API

#[test]
fn status_reports_plans_rules_and_pot() {
    test(|| {
        run_to_epoch(2);
        assert_eq!(
            Subscriptions::status(),
            SubscriptionsStatus {
                current_epoch: 2,
                plans: plans(),
                receipts_per_epoch: RECEIPTS_PER_EPOCH,
                pot: POT,
            }
        );
    });
}

#[test]
fn subscription_info_tells_whether_it_is_active() {
    test(|| {
        assert_eq!(Subscriptions::subscription_info(client(0)), None);
        assert_ok!(subscribe(ALICE, 0, 1, 2));
        let info = |active| {
            Some(SubscriptionInfo {
                subscription: Subscription {
                    plan: 1,
                    from: 0,
                    until: 2,
                    payer: ALICE,
                },
                plan: plans()[1].clone(),
                active,
            })
        };
        assert_eq!(Subscriptions::subscription_info(client(0)), info(true));
        run_to_epoch(1);
        assert_eq!(Subscriptions::subscription_info(client(0)), info(true));
        run_to_epoch(2);
        assert_eq!(Subscriptions::subscription_info(client(0)), info(false));
        // A plan id the runtime no longer offers.
        Subs::<Test>::insert(
            client(1),
            Subscription {
                plan: 7,
                from: 0,
                until: 3,
                payer: ALICE,
            },
        );
        assert_eq!(Subscriptions::subscription_info(client(1)), None);
        Subs::<Test>::remove(client(1));
    });
}

#[test]
fn receipt_keys_returns_each_oracles_publication() {
    test(|| {
        assert!(Subscriptions::receipt_keys(0).is_empty());
        let a = publication(0, 2, all_keys());
        let b = publication(0, 0, vec![receipt_key(1, 60)]);
        assert_ok!(publish(a.clone()));
        assert_ok!(publish(b.clone()));
        let mut expected = vec![
            OracleReceiptKeys {
                oracle: a.oracle,
                keys: a.keys.into_inner(),
            },
            OracleReceiptKeys {
                oracle: b.oracle,
                keys: b.keys.into_inner(),
            },
        ];
        expected.sort_by_key(|k| k.oracle);
        assert_eq!(Subscriptions::receipt_keys(0), expected);
        assert!(Subscriptions::receipt_keys(1).is_empty());
    });
}

#[test]
fn a_consumer_token_key_rides_along_with_the_plan_keys() {
    test(|| {
        let mut keys = all_keys();
        keys.push(token_key(0x77, 86_400));
        let p = publication(0, 1, keys.clone());
        assert_ok!(validate(&p));
        assert_ok!(publish(p));
        assert_eq!(
            last_event(),
            Event::ReceiptKeysPublished {
                epoch: 0,
                oracle: oracle(1),
                keys: 4,
            }
        );
        assert_eq!(
            Subscriptions::receipt_keys(0),
            vec![OracleReceiptKeys {
                oracle: oracle(1),
                keys: keys.clone(),
            }]
        );
        let token: Vec<_> = Subscriptions::receipt_keys(0)
            .into_iter()
            .flat_map(|o| o.keys)
            .filter(|k| k.tier == Tier::CONSUMER_TOKENS)
            .collect();
        assert_eq!(token, vec![token_key(0x77, 86_400)]);
        // The token key alone, too.
        assert_ok!(publish(publication(0, 2, vec![token_key(0x78, 60)])));
    });
}

#[test]
fn a_publication_holds_at_most_one_consumer_token_key() {
    test(|| {
        let mut keys = all_keys();
        keys.push(token_key(0x77, 86_400));
        keys.push(token_key(0x78, 86_400));
        assert_refused(
            publication(0, 0, keys),
            InvalidTransaction::Custom(INVALID_DUPLICATE_TIER),
            Error::<Test>::DuplicateTier,
        );
        // Checked like any key: expiry and emptiness.
        assert_refused(
            publication(
                0,
                0,
                vec![receipt_key(0, 60), token_key(0x77, MAX_KEY_LIFETIME + 1)],
            ),
            InvalidTransaction::Custom(INVALID_BAD_EXPIRY),
            Error::<Test>::BadExpiry,
        );
        let empty = ReceiptKey {
            public_key: BoundedVec::new(),
            ..token_key(0x77, 60)
        };
        assert_refused(
            publication(0, 0, vec![empty]),
            InvalidTransaction::Custom(INVALID_EMPTY_KEY),
            Error::<Test>::EmptyKey,
        );
    });
}

#[test]
fn dispatch_weights_cover_the_prune() {
    use crate::WeightInfo;
    let none = <() as WeightInfo>::prune_receipt_keys(0);
    let full = <() as WeightInfo>::prune_receipt_keys(MAX_ORACLES);
    assert!(full.ref_time() > none.ref_time());
    assert!(full.proof_size() > none.proof_size());
    let full = <() as WeightInfo>::publish_receipt_keys().saturating_add(full);
    let info = frame_support::dispatch::GetDispatchInfo::get_dispatch_info(
        &Call::<Test>::publish_receipt_keys {
            publication: ReceiptKeyPublication {
                epoch: 0,
                oracle: [0; 32],
                keys: BoundedVec::new(),
                signature: [0; 64],
            },
        },
    );
    assert_eq!(info.call_weight, full);
}
