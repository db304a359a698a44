//! FRAME v2 benchmarks: extending a subscription by as many epochs as `MaxEpochs` allows; a
//! receipt-key publication with one 600-byte key per tier of the runtime's plans and a
//! 600-byte consumer-token key (the longest set a publication may hold), by the last
//! of `MaxOracles` elected oracles (its signature checked); and the removal of `k` key sets of
//! a stale epoch, which a publication is charged for `MaxOracles` of.

use super::*;
use crate::Pallet as PspSubscriptions;
use alloc::{vec, vec::Vec};
use frame_benchmarking::v2::*;
use frame_support::{
    pallet_prelude::*,
    traits::{
        fungible::{Inspect, Mutate},
        UnixTime,
    },
};
use frame_system::RawOrigin;
use psp_primitives::{
    rewards::OracleSet,
    staking::NodeRegistry,
    subscriptions::{
        receipt_keys_message, PlanId, ReceiptKey, ReceiptKeyPublication, ReceiptKeySet,
        SubscriberRegistry, Subscription, Tier, MAX_RECEIPT_KEY_LEN,
    },
    IdentityKey,
};
use sp_core::crypto::KeyTypeId;
use sp_runtime::traits::Saturating;

const KEY_TYPE: KeyTypeId = KeyTypeId(*b"pssb");
const SEED: u32 = 0;

fn oracle_node(index: u32) -> IdentityKey {
    let mut key = [0xB0; 32];
    key[..4].copy_from_slice(&index.to_le_bytes());
    key
}

/// A full receipt key set: one key of the longest length per tier of the plans, and the
/// consumer-token key.
fn full_keys<T: Config>() -> ReceiptKeySet {
    let expires_at = T::Time::now()
        .as_secs()
        .saturating_add(T::MaxKeyLifetime::get());
    let keys: Vec<ReceiptKey> = T::Plans::get()
        .iter()
        .map(|plan| plan.tier)
        .chain([Tier::CONSUMER_TOKENS])
        .map(|tier| ReceiptKey {
            tier,
            public_key: BoundedVec::truncate_from(vec![0x30; MAX_RECEIPT_KEY_LEN as usize]),
            expires_at,
        })
        .collect();
    BoundedVec::truncate_from(keys)
}

#[benchmarks]
mod benchmarks {
    use super::*;

    /// Extending an active subscription of the dearest plan by as many epochs as allowed.
    #[benchmark]
    fn subscribe() {
        let caller: T::AccountId = whitelisted_caller();
        let identity: IdentityKey = [0xC1; 32];
        T::Subscribers::insert_client_unchecked(&caller, identity);
        let plans = T::Plans::get();
        assert!(!plans.is_empty(), "the runtime offers no plan");
        let plan = (0..plans.len())
            .max_by_key(|i| plans[*i].price_per_epoch)
            .unwrap_or(0) as PlanId;
        let current = T::Oracles::current_epoch();
        let max = T::MaxEpochs::get();
        let epochs = if max >= 2 {
            Subscriptions::<T>::insert(
                identity,
                Subscription {
                    plan,
                    from: current,
                    until: current.saturating_add(1),
                    payer: caller.clone(),
                },
            );
            max - 1
        } else {
            1
        };
        let price = plans[usize::from(plan)]
            .price_per_epoch
            .saturating_mul(epochs.into());
        let ed = T::Currency::minimum_balance();
        T::Currency::set_balance(&caller, price.saturating_add(ed).saturating_add(ed));
        T::Currency::set_balance(&T::Pot::get(), ed);

        #[extrinsic_call]
        _(RawOrigin::Signed(caller), identity, plan, epochs);

        assert_eq!(
            Subscriptions::<T>::get(identity).map(|s| s.until),
            Some(current.saturating_add(max.max(1)))
        );
        assert_eq!(
            T::Currency::balance(&T::Pot::get()),
            ed.saturating_add(price)
        );
    }

    /// A publication for the next epoch by the last of `MaxOracles` oracles, one longest key
    /// per tier of the plans and the consumer-token key; its signature is checked.
    #[benchmark]
    fn publish_receipt_keys() {
        let epoch = T::Oracles::current_epoch().saturating_add(1);
        let max = T::MaxOracles::get();
        let signer = sp_io::crypto::sr25519_generate(KEY_TYPE, None);
        let mut set: Vec<(IdentityKey, T::AccountId)> = (0..max.saturating_sub(1))
            .map(|i| (oracle_node(i), account("oracle", i, SEED)))
            .collect();
        let owner: T::AccountId = account("oracle", max, SEED);
        T::Nodes::insert_node_unchecked(&owner, signer.0);
        set.push((signer.0, owner));
        T::Oracles::set_oracles_unchecked(epoch, set);
        let keys = full_keys::<T>();
        assert!(!keys.is_empty(), "the runtime offers no plan");
        let message = receipt_keys_message(&T::Nodes::genesis_hash(), epoch, &signer.0, &keys);
        let signature = sp_io::crypto::sr25519_sign(KEY_TYPE, &signer, &message)
            .map(|s| s.0)
            .unwrap_or([0; 64]);
        let publication = ReceiptKeyPublication {
            epoch,
            oracle: signer.0,
            keys,
            signature,
        };

        #[extrinsic_call]
        _(RawOrigin::None, publication);

        assert!(ReceiptKeys::<T>::contains_key(epoch, signer.0));
    }

    /// Removing `k` full key sets of a stale epoch.
    #[benchmark]
    fn prune_receipt_keys(k: Linear<0, { T::MaxOracles::get() }>) {
        let keys = full_keys::<T>();
        for i in 0..k {
            ReceiptKeys::<T>::insert(0, oracle_node(i), keys.clone());
        }
        let mut epochs = BoundedVec::truncate_from(vec![0, 3]);
        let removed;
        #[block]
        {
            removed = PspSubscriptions::<T>::prune_one_stale(&mut epochs, 3);
        }
        assert_eq!(removed, Some(0));
        assert_eq!(ReceiptKeys::<T>::iter_prefix(0).count(), 0);
        assert_eq!(epochs.into_inner(), vec![3]);
    }

    impl_benchmark_test_suite!(
        PspSubscriptions,
        crate::mock::new_test_ext(),
        crate::mock::Test
    );
}
