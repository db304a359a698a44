//! # Subscriptions Pallet
//!
//! Stream subscriptions paid in PSP into the rewards pot, so the consumers of streams fund the
//! relays that carry them; and the per-epoch receipt keys of the elected oracles, so landing
//! nodes accept stream receipts under those keys only (PSP overview §8.2).
//!
//! ## Overview
//!
//! The runtime offers a short list of plans ([`Config::Plans`], at most
//! [`MAX_PLANS`](psp_primitives::subscriptions::MAX_PLANS)): each stands for a
//! [`Tier`](psp_primitives::subscriptions::Tier) (what one stream
//! receipt of the plan may allow) and has a price per epoch. Anyone may pay for an active
//! client identity to hold a plan for a number of epochs ([`Pallet::subscribe`]); the whole
//! price goes, in one transfer, to the rewards pot ([`Config::Pot`]). A subscription covers the
//! epochs `from..until`; paying again for the same plan while it still covers the current
//! epoch (or a later one) extends `until`; a different plan can only be bought once the current
//! one has run out. No subscription reaches more than [`Config::MaxEpochs`] epochs ahead.
//!
//! Oracles issue the stream receipts (blind RSA signatures, `psp-receipts`) to subscribers, at
//! most [`Config::ReceiptsPerEpoch`] per subscription and epoch over all oracles together — a
//! rule the oracles enforce off chain. So that a landing node knows which receipt keys are
//! genuine, each oracle elected for an epoch publishes, once, one RSA key per tier for that
//! epoch, signed with its node identity key ([`Pallet::publish_receipt_keys`]). The same
//! publication may carry one more key, of the reserved tier
//! [`Tier::CONSUMER_TOKENS`](psp_primitives::subscriptions::Tier::CONSUMER_TOKENS): the
//! oracle's consumer-token key for the epoch, under which it blind-signs the tokens a
//! subscriber's usage reports must carry to count toward rewards (`psp-usage`). No plan has
//! that tier, and no landing node accepts receipts under it. The
//! publication is an *unsigned* transaction (like an `im-online` heartbeat): the oracle's
//! signature is the proof, and the oracle pays no fee. It is checked in the transaction pool
//! ([`ValidateUnsigned`](frame_support::pallet_prelude::ValidateUnsigned)) and again at
//! dispatch. Keys are kept for the current epoch and the two before it (receipts issued late
//! in an epoch stay checkable for a while), plus the next epoch's once published.
//!
//! Nothing iterates over unbounded storage: a subscription touches one entry; a publication
//! stores one entry and removes at most one stale epoch's entries, at most [`Config::MaxOracles`]
//! of them.
//!
//! ## Terminology
//!
//! - **Epoch**: the staking pallet's epoch ([`Config::Oracles`]).
//! - **Plan**: an entry of [`Config::Plans`]; its `PlanId` is its index in that list.
//! - **Subscription**: a plan held by an identity for the epochs `from..until`; *active* while
//!   it covers the current epoch.
//! - **Pot**: the rewards pallet's pot, which pays the relays.
//! - **Receipt key**: an oracle's RSA public key for one tier and epoch, with an expiry.
//! - **Consumer-token key**: an oracle's RSA public key for one epoch's consumer tokens,
//!   published as a receipt key of the reserved tier `Tier::CONSUMER_TOKENS`.
//!
//! ## Interface
//!
//! Signed origin:
//! - [`Pallet::subscribe`]: anyone, paying for any active client identity.
//!
//! Unsigned (validated by the oracle's signature):
//! - [`Pallet::publish_receipt_keys`]: an oracle elected for the epoch, once per epoch.
//!
//! Read-only (for the `PspSubscriptionsApi` runtime API): [`Pallet::status`],
//! [`Pallet::subscription_info`], [`Pallet::receipt_keys`].
//!
//! ## Usage
//!
//! The runtime sets [`Config::Pot`] to the rewards pallet's pot account, [`Config::Oracles`] to
//! the staking pallet, [`Config::Subscribers`] and [`Config::Nodes`] to the identity registry
//! and [`Config::Time`] to the timestamp pallet, and answers `PspSubscriptionsApi` with the
//! read-only functions. An oracle node signs
//! [`psp_primitives::subscriptions::receipt_keys_message`] with its node key and submits a
//! [`ReceiptKeyPublication`](psp_primitives::subscriptions::ReceiptKeyPublication) as an
//! unsigned `publish_receipt_keys` extrinsic during the epoch before (or at the start of) the
//! epoch it is for.
#![cfg_attr(not(feature = "std"), no_std)]

extern crate alloc;

pub use pallet::*;

#[cfg(feature = "runtime-benchmarks")]
mod benchmarking;
mod impls;
#[cfg(test)]
mod mock;
#[cfg(test)]
mod tests;
pub mod types;
pub mod weights;

pub use types::*;
pub use weights::WeightInfo;

#[frame_support::pallet]
pub mod pallet {
    use super::*;
    use frame_support::{
        pallet_prelude::*,
        traits::{
            fungible::{Inspect, Mutate},
            UnixTime,
        },
    };
    use frame_system::pallet_prelude::*;
    use psp_primitives::{
        rewards::OracleSet,
        staking::{EpochIndex, NodeRegistry},
        subscriptions::{
            Plan, PlanId, ReceiptKeyPublication, ReceiptKeySet, SubscriberRegistry, Subscription,
            MAX_PLANS,
        },
        IdentityKey,
    };

    /// The balance type of the currency subscriptions are paid in.
    pub type BalanceOf<T> =
        <<T as Config>::Currency as Inspect<<T as frame_system::Config>::AccountId>>::Balance;

    /// The plans a runtime offers, by [`PlanId`].
    pub type PlansOf<T> = BoundedVec<Plan<BalanceOf<T>>, ConstU32<MAX_PLANS>>;

    /// Most epochs that hold receipt keys at once: the current one, the two before it and the
    /// next one (see [`KeyEpochs`]).
    pub const MAX_KEY_EPOCHS: u32 = 4;

    #[pallet::pallet]
    pub struct Pallet<T>(_);

    #[pallet::config]
    pub trait Config: frame_system::Config<RuntimeEvent: From<Event<Self>>> {
        /// The currency subscriptions are paid in.
        type Currency: Mutate<Self::AccountId>;
        /// The account payments go to: the rewards pot.
        type Pot: Get<Self::AccountId>;
        /// The plans offered, by [`PlanId`]. Their tiers should differ: an oracle publishes one
        /// receipt key per tier.
        #[pallet::constant]
        type Plans: Get<PlansOf<Self>>;
        /// Receipts one subscription may draw per epoch, over all oracles together. The oracles
        /// enforce it off chain; the chain only reports it ([`Pallet::status`]).
        #[pallet::constant]
        type ReceiptsPerEpoch: Get<u32>;
        /// The most epochs a subscription may reach ahead: `until - current <= MaxEpochs`.
        #[pallet::constant]
        type MaxEpochs: Get<u32>;
        /// The longest a published receipt key may live, in seconds: its `expires_at` must be at
        /// most the chain time plus this.
        #[pallet::constant]
        type MaxKeyLifetime: Get<u64>;
        /// Most oracles per epoch whose keys are accepted; should equal the staking pallet's
        /// maximum, since a larger elected set is cut to this size. Bounds the entries of one
        /// epoch, and so what one publication prunes.
        #[pallet::constant]
        type MaxOracles: Get<u32>;
        /// The identities that may hold a subscription (the identity registry).
        type Subscribers: SubscriberRegistry<Self::AccountId>;
        /// The epochs and their elected oracles (the staking pallet).
        type Oracles: OracleSet<Self::AccountId>;
        /// The identity registry, for the genesis hash publications bind to.
        type Nodes: NodeRegistry<Self::AccountId>;
        /// The chain's clock, for the keys' expiry.
        type Time: UnixTime;
        /// The priority of a receipt-key publication in the transaction pool.
        #[pallet::constant]
        type UnsignedPriority: Get<TransactionPriority>;
        /// How many blocks a receipt-key publication stays valid in the transaction pool.
        #[pallet::constant]
        type UnsignedLongevity: Get<u64>;
        /// Weights of this pallet's calls.
        type WeightInfo: WeightInfo;
    }

    /// Each identity's subscription, current, future or run out (a run-out one is replaced by
    /// the next subscription).
    #[pallet::storage]
    pub type Subscriptions<T: Config> =
        StorageMap<_, Blake2_128Concat, IdentityKey, Subscription<T::AccountId>, OptionQuery>;

    /// The receipt keys each oracle published, by epoch and oracle node key.
    #[pallet::storage]
    pub type ReceiptKeys<T: Config> = StorageDoubleMap<
        _,
        Twox64Concat,
        EpochIndex,
        Blake2_128Concat,
        IdentityKey,
        ReceiptKeySet,
        OptionQuery,
    >;

    /// The epochs that hold receipt keys, in the order they got their first ones. Lets a
    /// publication find the stale epoch to prune even after epochs without any publication.
    #[pallet::storage]
    pub type KeyEpochs<T> =
        StorageValue<_, BoundedVec<EpochIndex, ConstU32<MAX_KEY_EPOCHS>>, ValueQuery>;

    #[pallet::event]
    #[pallet::generate_deposit(pub(super) fn deposit_event)]
    pub enum Event<T: Config> {
        /// An identity's subscription was bought or extended.
        Subscribed {
            /// The identity.
            identity: IdentityKey,
            /// The plan.
            plan: PlanId,
            /// The first epoch it covers.
            from: EpochIndex,
            /// The first epoch it no longer covers.
            until: EpochIndex,
            /// What was paid into the pot.
            paid: BalanceOf<T>,
            /// Who paid.
            payer: T::AccountId,
        },
        /// An oracle published its receipt keys for an epoch.
        ReceiptKeysPublished {
            /// The epoch.
            epoch: EpochIndex,
            /// The oracle's node identity key.
            oracle: IdentityKey,
            /// How many keys (one per tier, the consumer-token key included).
            keys: u32,
        },
    }

    #[pallet::error]
    pub enum Error<T> {
        /// The identity is not an active client identity (unknown, a node identity, or
        /// revoked); only active clients hold subscriptions.
        NotAClient,
        /// No plan has this id; `psp subscriptions status` lists the plans.
        UnknownPlan,
        /// A subscription needs at least one epoch.
        ZeroEpochs,
        /// The subscription would reach more than `MaxEpochs` epochs past the current one;
        /// buy fewer epochs now and extend later.
        TooManyEpochs,
        /// The identity holds another plan that still covers the current or a later epoch;
        /// a different plan can be bought once it has run out.
        PlanChangeWhileActive,
        /// The price (price per epoch × epochs) does not fit the balance type.
        PriceOverflow,
        /// Receipt keys are published for the current or the next epoch only.
        WrongEpoch,
        /// The key is not an oracle elected for the epoch.
        NotAnOracle,
        /// The oracle already published its keys for the epoch; they cannot be replaced.
        AlreadyPublished,
        /// The publication holds no key.
        NoKeys,
        /// A key's tier is not the tier of any plan, nor the consumer-token tier.
        TierNotInPlans,
        /// Two keys have the same tier; publish one key per tier and at most one
        /// consumer-token key.
        DuplicateTier,
        /// A key's expiry is not in the future, or further than `MaxKeyLifetime` ahead.
        BadExpiry,
        /// A key is empty.
        EmptyKey,
        /// The oracle's signature does not verify for this chain, epoch, oracle and keys.
        BadSignature,
    }

    #[pallet::hooks]
    impl<T: Config> Hooks<BlockNumberFor<T>> for Pallet<T> {
        fn integrity_test() {
            assert!(
                T::MaxOracles::get() > 0,
                "MaxOracles must be at least 1: publications come from oracles"
            );
            assert!(
                T::MaxEpochs::get() > 0,
                "MaxEpochs must be at least 1, or no subscription can be bought"
            );
            assert!(
                T::MaxKeyLifetime::get() > 0,
                "MaxKeyLifetime must be at least 1 second, or no key can be published"
            );
            let plans = T::Plans::get();
            assert!(
                plans.iter().all(|plan| !plan.tier.is_consumer_tokens()),
                "a plan has the reserved consumer-token tier (all zero)"
            );
            for (i, plan) in plans.iter().enumerate() {
                assert!(
                    plans
                        .iter()
                        .skip(i + 1)
                        .all(|other| other.tier != plan.tier),
                    "two plans have the same tier; receipt keys are published per tier"
                );
            }
        }

        #[cfg(feature = "try-runtime")]
        fn try_state(_n: BlockNumberFor<T>) -> Result<(), sp_runtime::TryRuntimeError> {
            Self::check_invariants().map_err(Into::into)
        }
    }

    #[pallet::call]
    impl<T: Config> Pallet<T> {
        /// Pay for `identity` to hold plan `plan` for `epochs` more epochs. Anyone may pay; the
        /// identity must be an active client. A subscription that still covers the current or a
        /// later epoch is extended if it is of the same plan (another plan is refused);
        /// otherwise a new one starts with the current epoch. The price, the plan's price per
        /// epoch times `epochs`, is transferred to the pot; the payer's account is kept alive.
        ///
        /// Emits [`Event::Subscribed`].
        #[pallet::call_index(0)]
        #[pallet::weight(T::WeightInfo::subscribe())]
        pub fn subscribe(
            origin: OriginFor<T>,
            identity: IdentityKey,
            plan: PlanId,
            epochs: u32,
        ) -> DispatchResult {
            let payer = ensure_signed(origin)?;
            Self::do_subscribe(payer, identity, plan, epochs)
        }

        /// Publish the receipt keys of an elected oracle for the current or the next epoch:
        /// one key per tier of the plans, and at most one consumer-token key (of the tier
        /// [`Tier::CONSUMER_TOKENS`](psp_primitives::subscriptions::Tier::CONSUMER_TOKENS)),
        /// signed by the oracle's node identity key over
        /// [`psp_primitives::subscriptions::receipt_keys_message`]. Unsigned: submitted as an
        /// unsigned extrinsic and checked by [`ValidateUnsigned`] (see
        /// [`PublicationError`] for the refusal codes), then again here. Each
        /// oracle publishes once per epoch. Prunes the keys of one epoch older than the current
        /// one and the two before it.
        ///
        /// Emits [`Event::ReceiptKeysPublished`].
        #[pallet::call_index(1)]
        #[pallet::weight(T::WeightInfo::publish_receipt_keys()
            .saturating_add(T::WeightInfo::prune_receipt_keys(T::MaxOracles::get())))]
        pub fn publish_receipt_keys(
            origin: OriginFor<T>,
            publication: ReceiptKeyPublication,
        ) -> DispatchResult {
            ensure_none(origin)?;
            Self::do_publish(publication)
        }
    }

    #[allow(deprecated)]
    #[pallet::validate_unsigned]
    impl<T: Config> ValidateUnsigned for Pallet<T> {
        type Call = Call<T>;

        fn validate_unsigned(_source: TransactionSource, call: &Self::Call) -> TransactionValidity {
            match call {
                Call::publish_receipt_keys { publication } => {
                    Self::validate_publication(publication)
                }
                _ => InvalidTransaction::Call.into(),
            }
        }
    }
}
