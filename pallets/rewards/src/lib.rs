//! # Rewards Pallet
//!
//! Bandwidth rewards for PeerStream relays, paid per epoch from a pot, for traffic that both
//! ends of a stream session signed and that a quorum of the epoch's elected oracles reported.
//!
//! ## Overview
//!
//! After each epoch the relay (with its node identity key) and the client (with the
//! anonymous session key its session id is the hash of) both sign what they saw of a session:
//! bytes and interval ([`psp_primitives::rewards`]). Oracles collect both halves and, during
//! the next epoch, submit them in bounded batches ([`Pallet::submit_reports`]). The pallet
//! checks both signatures and normalizes each session: when the two byte counts agree within
//! [`Config::Tolerance`] the smaller counts, capped at [`Config::MaxBytesPerSecond`] times the
//! time both sides say the session ran within the epoch; beyond the tolerance nothing counts
//! and the dispute is counted against the relay. Each oracle's credits are summed per relay as
//! its batches arrive; a relay's credit for the epoch is the lower median of the oracles'
//! sums, and only if at least two thirds of the epoch's oracles reported it.
//!
//! When the epoch after next starts, the epoch *closes*: its pool —
//! [`Config::RewardPerEpoch`], or less if the pot cannot cover it on top of what it already
//! owes or if the epoch's credit at [`Config::MaxRewardPerGigabyte`] is worth less — is set
//! aside, and every credited relay's owner may claim its share, pro rata to
//! credited bytes and rounded down, whenever it likes ([`Pallet::claim`], several epochs in one
//! call). Rounding dust stays in the pot once everyone has claimed.
//!
//! The staking pallet knows an epoch's elected oracles only while that epoch is current or
//! next, so this pallet copies the set of each epoch when the epoch starts, together with the
//! chain time, which also gives the epoch's span.
//!
//! Nothing in a block iterates over unbounded storage: a batch touches its own records and
//! their relays; a claim touches its epochs; each block's start reads two values and, at an
//! epoch boundary, copies one oracle set and closes at most two epochs; the reports of closed
//! epochs are pruned in `on_idle`, as far as the block's spare weight allows.
//!
//! ## Terminology
//!
//! - **Epoch**: the staking pallet's epoch ([`Config::Oracles`]); the oracle set changes with it.
//! - **Usage record**: both signed sides of one session in one epoch.
//! - **Credit**: bytes a relay is paid for.
//! - **Report window**: reports for epoch `e` are accepted during epoch `e + 1` only.
//! - **Pot**: the account rewards are paid from, derived from [`Config::PalletId`]; anyone may
//!   fund it with a transfer.
//!
//! ## Interface
//!
//! Signed origin:
//! - [`Pallet::submit_reports`]: the owner of an oracle elected for the epoch; free when it
//!   succeeds.
//! - [`Pallet::claim`]: the owner of a credited relay.
//!
//! ## Usage
//!
//! The runtime sets [`Config::Oracles`] to the staking pallet (implementing
//! [`psp_primitives::rewards::OracleSet`]), [`Config::Nodes`] to the identity registry and
//! [`Config::Time`] to the timestamp pallet, places this pallet after them in
//! `construct_runtime!`, and funds [`Pallet::pot_account`]. Relays and clients sign
//! [`psp_primitives::rewards::relay_report_message`] and
//! [`psp_primitives::rewards::client_report_message`] for each session and epoch; oracles check
//! records with [`psp_primitives::rewards::UsageRecord::check`] and submit them; relay owners
//! read `PspRewardsApi::relay_rewards` and claim.
#![cfg_attr(not(feature = "std"), no_std)]

extern crate alloc;

pub use pallet::*;

#[cfg(feature = "runtime-benchmarks")]
mod benchmarking;
mod impls;
#[cfg(test)]
mod mock;
#[cfg(test)]
mod proptests;
#[cfg(test)]
mod tests;
pub mod types;
pub mod weights;

pub use impls::{NODE_BATCH_LONGEVITY, NODE_BATCH_PRIORITY};
pub use types::*;
pub use weights::WeightInfo;

#[frame_support::pallet]
pub mod pallet {
    use super::*;
    use alloc::vec::Vec;
    use frame_support::{
        pallet_prelude::*,
        traits::{
            fungible::{Inspect, Mutate},
            UnixTime,
        },
        PalletId,
    };
    use frame_system::pallet_prelude::*;
    use psp_primitives::{
        rewards::{NodeUsageBatch, OracleSet, SessionId, UsageRecord},
        staking::{EpochIndex, NodeRegistry},
        IdentityKey,
    };
    use sp_runtime::Perbill;

    /// The balance type of the reward currency.
    pub type BalanceOf<T> =
        <<T as Config>::Currency as Inspect<<T as frame_system::Config>::AccountId>>::Balance;

    #[pallet::pallet]
    pub struct Pallet<T>(_);

    #[pallet::config]
    pub trait Config: frame_system::Config<RuntimeEvent: From<Event<Self>>> {
        /// The currency rewards are paid in.
        type Currency: Mutate<Self::AccountId>;
        /// Derives the pot account rewards are paid from.
        #[pallet::constant]
        type PalletId: Get<PalletId>;
        /// The pool of each epoch, if the pot can cover it.
        #[pallet::constant]
        type RewardPerEpoch: Get<BalanceOf<Self>>;
        /// The most an epoch pays per gigabyte (10⁹ bytes) of credit: the pool is at most this
        /// rate times the epoch's total credit, so no relay earns more than the rate per byte
        /// and fabricated credit gains at most the rate times itself (see the README's bound).
        #[pallet::constant]
        type MaxRewardPerGigabyte: Get<BalanceOf<Self>>;
        /// The epochs and their elected oracles (the staking pallet).
        type Oracles: OracleSet<Self::AccountId>;
        /// The identity registry: which relays are active nodes, who owns them, and the
        /// genesis hash signed messages bind to.
        type Nodes: NodeRegistry<Self::AccountId>;
        /// The chain's clock, for the epochs' spans.
        type Time: UnixTime;
        /// How far a session's two byte counts may differ, as a part of the larger one.
        #[pallet::constant]
        type Tolerance: Get<Perbill>;
        /// The most bytes per second a session is credited for.
        #[pallet::constant]
        type MaxBytesPerSecond: Get<u64>;
        /// The most bytes one session is credited in one epoch, however long the epoch ran.
        #[pallet::constant]
        type MaxSessionBytes: Get<u64>;
        /// Most records in one batch.
        #[pallet::constant]
        type MaxBatchSize: Get<u32>;
        /// Most oracles per epoch (at most 64); should equal the staking pallet's maximum,
        /// since a larger elected set is cut to this size.
        #[pallet::constant]
        type MaxOracles: Get<u32>;
        /// Most sessions one oracle may report for one epoch; bounds the epoch's storage and
        /// what a dishonest oracle can fill.
        #[pallet::constant]
        type MaxSessionsPerOracle: Get<u32>;
        /// Most relays reported in one epoch.
        #[pallet::constant]
        type MaxRelaysPerEpoch: Get<u32>;
        /// Most epochs one claim covers.
        #[pallet::constant]
        type MaxClaimEpochs: Get<u32>;
        /// Weights of this pallet's calls and hooks.
        type WeightInfo: WeightInfo;
    }

    /// Where the pallet is in the sequence of epochs.
    #[pallet::storage]
    pub type Clock<T> = StorageValue<_, EpochClock, ValueQuery>;

    /// The oracles and the span of each epoch from its start until its reports are pruned.
    #[pallet::storage]
    pub type Snapshots<T: Config> =
        StorageMap<_, Twox64Concat, EpochIndex, EpochSnapshot<T>, OptionQuery>;

    /// The oracles that reported each session, by epoch; pruned once the epoch is closed.
    #[pallet::storage]
    pub type Sessions<T: Config> = StorageDoubleMap<
        _,
        Twox64Concat,
        EpochIndex,
        Blake2_128Concat,
        SessionId,
        SessionMark,
        OptionQuery,
    >;

    /// What the oracles credited each relay, by epoch; pruned once the epoch is closed.
    #[pallet::storage]
    pub type Tallies<T: Config> = StorageDoubleMap<
        _,
        Twox64Concat,
        EpochIndex,
        Blake2_128Concat,
        IdentityKey,
        RelayTally<T>,
        OptionQuery,
    >;

    /// Running totals of each epoch whose reports are coming in.
    #[pallet::storage]
    pub type Totals<T: Config> = StorageMap<_, Twox64Concat, EpochIndex, EpochTotals, OptionQuery>;

    /// Unclaimed credits, by relay and epoch.
    #[pallet::storage]
    pub type Accrued<T: Config> = StorageDoubleMap<
        _,
        Blake2_128Concat,
        IdentityKey,
        Twox64Concat,
        EpochIndex,
        Accrual<T>,
        OptionQuery,
    >;

    /// The pool of each closed epoch with a credit not yet claimed.
    #[pallet::storage]
    pub type Payouts<T: Config> = StorageMap<_, Twox64Concat, EpochIndex, Payout<T>, OptionQuery>;

    /// What the pot owes: the unpaid part of every pool in [`Payouts`].
    #[pallet::storage]
    pub type Committed<T: Config> = StorageValue<_, BalanceOf<T>, ValueQuery>;

    /// Sessions whose two sides disagreed, by relay, over its lifetime.
    #[pallet::storage]
    pub type Disputes<T: Config> = StorageMap<_, Blake2_128Concat, IdentityKey, u32, ValueQuery>;

    /// Where pruning of closed epochs stands.
    #[pallet::storage]
    pub type Pruning<T> = StorageValue<_, PruneState, ValueQuery>;

    #[pallet::event]
    #[pallet::generate_deposit(pub(super) fn deposit_event)]
    pub enum Event<T: Config> {
        /// An epoch started; the pallet recorded its oracles.
        EpochStarted {
            /// The epoch.
            epoch: EpochIndex,
            /// How many oracles were elected for it.
            oracles: u32,
        },
        /// An oracle's batch of usage records was accepted.
        ReportsSubmitted {
            /// The epoch the records are for.
            epoch: EpochIndex,
            /// The oracle's node identity key.
            oracle: IdentityKey,
            /// Records in the batch.
            sessions: u32,
            /// Records whose two sides disagreed beyond the tolerance.
            disputed: u32,
        },
        /// An epoch's reports are final and its pool is set aside.
        EpochClosed {
            /// The epoch.
            epoch: EpochIndex,
            /// What its credited relays share (zero when none was credited).
            pool: BalanceOf<T>,
            /// Total credited bytes.
            total_credit: u128,
            /// Relays with a credit.
            credited_relays: u32,
        },
        /// A relay's owner claimed its reward for an epoch.
        RewardClaimed {
            /// The relay.
            relay: IdentityKey,
            /// Its owner, who was paid.
            owner: T::AccountId,
            /// The epoch.
            epoch: EpochIndex,
            /// The amount.
            amount: BalanceOf<T>,
        },
        /// Every credited relay of an epoch has claimed; the rounding dust stays in the pot.
        EpochSettled {
            /// The epoch.
            epoch: EpochIndex,
            /// The part of the pool nobody was paid.
            dust: BalanceOf<T>,
        },
    }

    #[pallet::error]
    pub enum Error<T> {
        /// The batch is empty; submit at least one record.
        EmptyBatch,
        /// The batch has more records than `MaxBatchSize`; split it.
        TooManyReports,
        /// The epoch has not ended: reports for epoch `e` are accepted during epoch `e + 1`
        /// only. Submit them once the next epoch has started.
        EpochNotEnded,
        /// The epoch's report window is over: reports for epoch `e` are accepted during epoch
        /// `e + 1` only. These records can no longer be credited.
        ReportWindowClosed,
        /// The pallet has no oracle set for the epoch (it was not running when the epoch
        /// started), so nothing can be reported for it.
        NoOracleSet,
        /// The caller does not own an oracle elected for the epoch; only elected oracles
        /// report, from their owner accounts.
        NotOracle,
        /// The oracle's sessions for the epoch would exceed `MaxSessionsPerOracle`.
        TooManySessions,
        /// A session appears twice in the batch; submit each session once.
        DuplicateSession,
        /// A record's session id is not the BLAKE2-256 hash of its client session key; drop
        /// the record.
        SessionKeyMismatch,
        /// A record's relay signature does not verify for this chain and epoch; drop the
        /// record.
        BadRelaySignature,
        /// A record's client signature does not verify for this chain and epoch; drop the
        /// record.
        BadClientSignature,
        /// A record's relay is not an active node identity; drop the record.
        UnknownRelay,
        /// The caller already reported one of the batch's sessions for this epoch; drop it.
        AlreadyReported,
        /// Another oracle reported one of the batch's sessions for a different relay (its
        /// client signed for two relays); drop the record.
        SessionRelayMismatch,
        /// The epoch already has `MaxRelaysPerEpoch` relays; a record for a new relay cannot
        /// be accepted.
        TooManyRelays,
        /// The claim names no epoch; list the epochs to claim (`psp rewards status` shows them).
        NoEpochs,
        /// The claim names more epochs than `MaxClaimEpochs`; claim in several calls.
        TooManyEpochs,
        /// The claim names an epoch twice.
        DuplicateEpoch,
        /// The relay has no unclaimed credit for one of the epochs: it was not credited then,
        /// or has claimed already.
        NothingAccrued,
        /// The caller does not own the relay; its owner claims.
        NotRelayOwner,
        /// One of the epochs is not closed: reports for it are accepted until the end of the
        /// next epoch. Claim it after that.
        EpochNotClosed,
        /// The pot cannot pay the claim (it was drained outside this pallet); claim again once
        /// it is refilled.
        PotInsufficient,
        /// An oracle node's signature over its batch does not verify.
        BadBatchSignature,
    }

    #[pallet::hooks]
    impl<T: Config> Hooks<BlockNumberFor<T>> for Pallet<T> {
        fn on_initialize(_n: BlockNumberFor<T>) -> Weight {
            Self::tick(T::Oracles::current_epoch())
        }

        fn on_idle(_n: BlockNumberFor<T>, remaining: Weight) -> Weight {
            Self::prune_within(remaining)
        }

        fn integrity_test() {
            assert!(
                (1..=64).contains(&T::MaxOracles::get()),
                "MaxOracles must be 1..=64: a session's reporters are a 64-bit mask"
            );
            assert!(
                T::MaxBatchSize::get() > 0,
                "batches need at least one record"
            );
            assert!(
                T::MaxSessionsPerOracle::get() >= T::MaxBatchSize::get(),
                "an oracle must be able to submit at least one full batch per epoch"
            );
            assert!(
                T::MaxClaimEpochs::get() > 0,
                "claims need at least one epoch"
            );
            assert!(
                T::MaxRelaysPerEpoch::get() > 0,
                "epochs need at least one relay"
            );
        }

        #[cfg(feature = "try-runtime")]
        fn try_state(_n: BlockNumberFor<T>) -> Result<(), sp_runtime::TryRuntimeError> {
            Self::check_invariants().map_err(Into::into)
        }
    }

    #[allow(deprecated)]
    #[pallet::validate_unsigned]
    impl<T: Config> ValidateUnsigned for Pallet<T> {
        type Call = Call<T>;

        fn validate_unsigned(_source: TransactionSource, call: &Self::Call) -> TransactionValidity {
            match call {
                Call::submit_reports_by_node { batch } => Self::validate_node_batch(batch),
                _ => InvalidTransaction::Call.into(),
            }
        }
    }

    #[pallet::call]
    impl<T: Config> Pallet<T> {
        /// Submit usage records for `epoch`, which must be the previous epoch. The caller must
        /// own an oracle elected for `epoch`; each record needs valid relay and client
        /// signatures and an active relay, and each session is accepted once per oracle. Any
        /// invalid record fails the whole batch, which changes nothing. Free when it succeeds.
        ///
        /// Emits [`Event::ReportsSubmitted`].
        #[pallet::call_index(0)]
        #[pallet::weight(T::WeightInfo::submit_reports(
            (reports.len() as u32).min(T::MaxBatchSize::get()).max(1)
        ))]
        pub fn submit_reports(
            origin: OriginFor<T>,
            epoch: EpochIndex,
            reports: Vec<UsageRecord>,
        ) -> DispatchResultWithPostInfo {
            let who = ensure_signed(origin)?;
            Self::do_submit(crate::impls::OracleRef::Owner(who), epoch, reports)?;
            Ok(Pays::No.into())
        }

        /// Submit usage records as an elected oracle *node*, signed with its node key: an
        /// unsigned transaction, so oracle nodes settle their epochs by themselves with no
        /// account and no fee. The same rules as [`Pallet::submit_reports`] (the oracle found by
        /// its node key in the epoch's snapshot); the pool runs the whole submission first
        /// (`validate_unsigned`) and keeps one transaction per (epoch, oracle, batch).
        ///
        /// Emits [`Event::ReportsSubmitted`].
        #[pallet::call_index(2)]
        #[pallet::weight(T::WeightInfo::submit_reports(
            // One record more than the batch: its cost covers the batch signature's check.
            (batch.reports.len() as u32).min(T::MaxBatchSize::get()).saturating_add(1)
        ))]
        pub fn submit_reports_by_node(
            origin: OriginFor<T>,
            batch: NodeUsageBatch,
        ) -> DispatchResultWithPostInfo {
            ensure_none(origin)?;
            Self::check_batch_signature(&batch)?;
            Self::do_submit(
                crate::impls::OracleRef::Node(batch.oracle),
                batch.epoch,
                batch.reports,
            )?;
            Ok(Pays::No.into())
        }

        /// Claim what `relay` earned in `epochs`, which must be closed and credited to it; the
        /// caller must be the relay's owner. Pays the sum from the pot in one transfer.
        ///
        /// Emits [`Event::RewardClaimed`] per epoch, and [`Event::EpochSettled`] for an epoch
        /// whose last credited relay claimed.
        #[pallet::call_index(1)]
        #[pallet::weight(T::WeightInfo::claim(
            (epochs.len() as u32).min(T::MaxClaimEpochs::get()).max(1)
        ))]
        pub fn claim(
            origin: OriginFor<T>,
            relay: IdentityKey,
            epochs: Vec<EpochIndex>,
        ) -> DispatchResult {
            let who = ensure_signed(origin)?;
            Self::do_claim(who, relay, epochs)
        }
    }
}
