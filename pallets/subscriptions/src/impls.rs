//! The logic behind the calls, the unsigned validation, the runtime API and the invariants:
//! check first, write last.

use crate::{
    Config, Error, Event, KeyEpochs, Pallet, PublicationError, ReceiptKeys, Subscriptions,
    MAX_KEY_EPOCHS,
};
use alloc::vec::Vec;
use frame_support::{
    pallet_prelude::*,
    traits::{fungible::Mutate, tokens::Preservation, UnixTime},
};
use psp_primitives::{
    rewards::OracleSet,
    staking::{EpochIndex, NodeRegistry},
    subscriptions::{
        receipt_keys_message, OracleReceiptKeys, PlanId, ReceiptKeyPublication, SubscriberRegistry,
        Subscription, SubscriptionInfo, SubscriptionsStatus,
    },
    IdentityKey,
};
use sp_runtime::traits::CheckedMul;

/// Epochs before the current one whose receipt keys are kept.
pub const KEPT_PAST_EPOCHS: EpochIndex = 2;

impl<T: Config> Pallet<T> {
    /// [`Pallet::subscribe`]: buy or extend `identity`'s subscription, paid by `payer`.
    pub(crate) fn do_subscribe(
        payer: T::AccountId,
        identity: IdentityKey,
        plan: PlanId,
        epochs: u32,
    ) -> DispatchResult {
        ensure!(
            T::Subscribers::is_active_client(&identity),
            Error::<T>::NotAClient
        );
        let plans = T::Plans::get();
        let price_per_epoch = plans
            .get(usize::from(plan))
            .map(|p| p.price_per_epoch)
            .ok_or(Error::<T>::UnknownPlan)?;
        ensure!(epochs > 0, Error::<T>::ZeroEpochs);

        let current = T::Oracles::current_epoch();
        let (from, until) = match Subscriptions::<T>::get(identity) {
            Some(held) if held.until > current => {
                ensure!(held.plan == plan, Error::<T>::PlanChangeWhileActive);
                (held.from, held.until.checked_add(epochs))
            }
            _ => (current, current.checked_add(epochs)),
        };
        let until = until.ok_or(Error::<T>::TooManyEpochs)?;
        ensure!(
            until.saturating_sub(current) <= T::MaxEpochs::get(),
            Error::<T>::TooManyEpochs
        );
        let paid = price_per_epoch
            .checked_mul(&epochs.into())
            .ok_or(Error::<T>::PriceOverflow)?;

        T::Currency::transfer(&payer, &T::Pot::get(), paid, Preservation::Preserve)?;
        Subscriptions::<T>::insert(
            identity,
            Subscription {
                plan,
                from,
                until,
                payer: payer.clone(),
            },
        );
        Self::deposit_event(Event::Subscribed {
            identity,
            plan,
            from,
            until,
            paid,
            payer,
        });
        Ok(())
    }

    /// [`Pallet::publish_receipt_keys`] once the origin is checked: check again, store, prune.
    pub(crate) fn do_publish(publication: ReceiptKeyPublication) -> DispatchResult {
        Self::check_publication(&publication).map_err(|e| e.dispatch_error::<T>())?;
        let ReceiptKeyPublication {
            epoch,
            oracle,
            keys,
            ..
        } = publication;
        let count = keys.len() as u32;
        ReceiptKeys::<T>::insert(epoch, oracle, keys);
        Self::track_and_prune(epoch);
        Self::deposit_event(Event::ReceiptKeysPublished {
            epoch,
            oracle,
            keys: count,
        });
        Ok(())
    }

    /// Records that `published` holds keys, and prunes one stale epoch: one before the
    /// current one and the [`KEPT_PAST_EPOCHS`] before it.
    fn track_and_prune(published: EpochIndex) {
        let horizon = T::Oracles::current_epoch().saturating_sub(KEPT_PAST_EPOCHS);
        let mut epochs = KeyEpochs::<T>::get();
        Self::prune_one_stale(&mut epochs, horizon);
        if !epochs.contains(&published) {
            // Cannot fail: in steady state the current epoch, the two before and the next
            // hold keys, and each publication prunes one stale epoch (see `MAX_KEY_EPOCHS`).
            // Were it full, the epoch would only be missed by pruning, never refused.
            let _ = epochs.try_push(published);
        }
        KeyEpochs::<T>::put(epochs);
    }

    /// Removes the keys of the first epoch in `epochs` before `horizon`, if any: at most
    /// `MaxOracles` entries, as many as one epoch can hold. Returns the epoch pruned.
    pub(crate) fn prune_one_stale(
        epochs: &mut BoundedVec<EpochIndex, ConstU32<MAX_KEY_EPOCHS>>,
        horizon: EpochIndex,
    ) -> Option<EpochIndex> {
        let pos = epochs.iter().position(|e| *e < horizon)?;
        let stale = epochs[pos];
        let result = ReceiptKeys::<T>::clear_prefix(stale, T::MaxOracles::get(), None);
        // Entries left over (only if `MaxOracles` shrank) are removed by a later publication.
        if result.maybe_cursor.is_none() {
            epochs.remove(pos);
        }
        Some(stale)
    }

    /// Checks a publication against the current state, cheapest checks first and the signature
    /// last. Used by `validate_unsigned` and again at dispatch.
    pub fn check_publication(publication: &ReceiptKeyPublication) -> Result<(), PublicationError> {
        let ReceiptKeyPublication {
            epoch,
            oracle,
            keys,
            signature,
        } = publication;
        let current = T::Oracles::current_epoch();
        ensure!(*epoch >= current, PublicationError::StaleEpoch);
        ensure!(
            *epoch <= current.saturating_add(1),
            PublicationError::FutureEpoch
        );
        let elected = T::Oracles::oracles(*epoch).unwrap_or_default();
        ensure!(
            elected
                .iter()
                .take(T::MaxOracles::get() as usize)
                .any(|(node, _)| node == oracle),
            PublicationError::NotAnOracle
        );
        ensure!(
            !ReceiptKeys::<T>::contains_key(epoch, oracle),
            PublicationError::AlreadyPublished
        );
        ensure!(!keys.is_empty(), PublicationError::NoKeys);

        let plans = T::Plans::get();
        let now = T::Time::now().as_secs();
        let latest = now.saturating_add(T::MaxKeyLifetime::get());
        for (i, key) in keys.iter().enumerate() {
            ensure!(!key.public_key.is_empty(), PublicationError::EmptyKey);
            // The consumer-token key rides along under its reserved tier, which no plan has.
            ensure!(
                key.tier.is_consumer_tokens() || plans.iter().any(|plan| plan.tier == key.tier),
                PublicationError::TierNotInPlans
            );
            ensure!(
                keys.iter().skip(i + 1).all(|other| other.tier != key.tier),
                PublicationError::DuplicateTier
            );
            ensure!(
                key.expires_at > now && key.expires_at <= latest,
                PublicationError::BadExpiry
            );
        }

        let message = receipt_keys_message(&T::Nodes::genesis_hash(), *epoch, oracle, keys);
        let public = sp_core::sr25519::Public::from_raw(*oracle);
        let signature = sp_core::sr25519::Signature::from_raw(*signature);
        ensure!(
            sp_io::crypto::sr25519_verify(&signature, &message, &public),
            PublicationError::BadSignature
        );
        Ok(())
    }

    /// The transaction-pool validity of a publication: valid for `UnsignedLongevity` blocks,
    /// providing the tag `(epoch, oracle)` so the pool holds one publication per oracle and
    /// epoch; refused as [`PublicationError::invalid_transaction`] says.
    pub fn validate_publication(publication: &ReceiptKeyPublication) -> TransactionValidity {
        Self::check_publication(publication).map_err(PublicationError::invalid_transaction)?;
        ValidTransaction::with_tag_prefix("PspReceiptKeys")
            .priority(T::UnsignedPriority::get())
            .and_provides((publication.epoch, publication.oracle))
            .longevity(T::UnsignedLongevity::get())
            .propagate(true)
            .build()
    }

    /// The current epoch, the plans, the receipt bound and the pot (`subscriptions_status`).
    pub fn status() -> SubscriptionsStatus<T::AccountId, crate::BalanceOf<T>> {
        SubscriptionsStatus {
            current_epoch: T::Oracles::current_epoch(),
            plans: T::Plans::get().into_inner(),
            receipts_per_epoch: T::ReceiptsPerEpoch::get(),
            pot: T::Pot::get(),
        }
    }

    /// The subscription `identity` holds, current, future or run out, with its plan and
    /// whether it covers the current epoch; `None` if it holds none or its plan no longer
    /// exists.
    pub fn subscription_info(
        identity: IdentityKey,
    ) -> Option<SubscriptionInfo<T::AccountId, crate::BalanceOf<T>>> {
        let subscription = Subscriptions::<T>::get(identity)?;
        let plan = T::Plans::get()
            .get(usize::from(subscription.plan))
            .cloned()?;
        let active = subscription.covers(T::Oracles::current_epoch());
        Some(SubscriptionInfo {
            subscription,
            plan,
            active,
        })
    }

    /// The receipt keys each oracle published for `epoch`, sorted by oracle key (at most
    /// `MaxOracles`); an oracle's consumer-token key is among its keys, under
    /// [`Tier::CONSUMER_TOKENS`](psp_primitives::subscriptions::Tier::CONSUMER_TOKENS).
    pub fn receipt_keys(epoch: EpochIndex) -> Vec<OracleReceiptKeys> {
        let mut all: Vec<OracleReceiptKeys> = ReceiptKeys::<T>::iter_prefix(epoch)
            .take(T::MaxOracles::get() as usize)
            .map(|(oracle, keys)| OracleReceiptKeys {
                oracle,
                keys: keys.into_inner(),
            })
            .collect();
        all.sort_by_key(|k| k.oracle);
        all
    }

    /// The pallet's invariants: every epoch holding keys is tracked in [`KeyEpochs`] and holds
    /// at most `MaxOracles` entries; no subscription ends before it starts or reaches more than
    /// `MaxEpochs` past the current epoch.
    #[cfg(any(test, feature = "try-runtime"))]
    pub fn check_invariants() -> Result<(), &'static str> {
        use alloc::collections::BTreeMap;
        let tracked = KeyEpochs::<T>::get();
        let mut per_epoch: BTreeMap<EpochIndex, u32> = BTreeMap::new();
        for (epoch, _, keys) in ReceiptKeys::<T>::iter() {
            if keys.is_empty() {
                return Err("a stored key set is empty");
            }
            *per_epoch.entry(epoch).or_default() += 1;
        }
        for (epoch, count) in per_epoch {
            if !tracked.contains(&epoch) {
                return Err("an epoch holding keys is not tracked");
            }
            if count > T::MaxOracles::get() {
                return Err("an epoch holds more than MaxOracles key sets");
            }
        }
        let current = T::Oracles::current_epoch();
        for (_, s) in Subscriptions::<T>::iter() {
            if s.from >= s.until {
                return Err("a subscription ends before it starts");
            }
            if s.until.saturating_sub(current) > T::MaxEpochs::get() {
                return Err("a subscription reaches more than MaxEpochs ahead");
            }
        }
        Ok(())
    }
}
