//! # Staking Pallet
//!
//! Bonds, candidacies and the per-epoch election of the nodes that run the PeerStream
//! Protocol's elected roles — authorities (block authoring and finality), discovery nodes (the
//! signed directory) and oracles (usage reports for rewards) — and slashing on proof that an
//! elected node signed two conflicting statements.
//!
//! ## Overview
//!
//! An account *bonds* funds (a hold of [`HoldReason::Staking`] on the fungible currency),
//! then *stands* for one or more roles with a node identity it registered in the identity
//! registry ([`Config::Nodes`]). Each role has a minimum stake, discovery's the highest.
//! Epochs are the chain's sessions: `pallet-session` asks this pallet when an epoch ends
//! ([`Config::EpochLength`] blocks) and for the validator set of the epoch after next
//! ([`pallet_session::SessionManager`]). At each boundary the pallet elects, for each role, the
//! candidates with the most stake up to the role's maximum (ties go to the lower node key),
//! drops candidates whose node identity was revoked, stores the sets of the current and next
//! epoch and emits them. The authority set, after the [`Invulnerables`], becomes the Aura and
//! GRANDPA validator set through `pallet-session`.
//!
//! Unbonding moves stake into chunks that can be withdrawn after [`Config::UnbondingPeriod`]
//! blocks, and stay slashable until then.
//!
//! ## Terminology
//!
//! - **Ledger**: an account's active bond, its unbonding chunks, and its candidacy.
//! - **Candidate**: a node identity standing for roles, backed by its owner's active bond.
//! - **Epoch**: one session; the elected sets change at epoch boundaries.
//! - **Statement / evidence**: see [`psp_primitives::staking`].
//!
//! ## Interface
//!
//! Signed origin:
//! - [`Pallet::bond`], [`Pallet::bond_extra`], [`Pallet::unbond`], [`Pallet::withdraw_unbonded`].
//! - [`Pallet::stand`], [`Pallet::leave`]: candidacy per role.
//! - [`Pallet::report_equivocation`]: anyone; valid evidence slashes the offender and rewards
//!   the reporter, invalid evidence fails and costs the reporter its fee.
//!
//! [`Config::AdminOrigin`] (root): [`Pallet::set_invulnerables`].
#![cfg_attr(not(feature = "std"), no_std)]

extern crate alloc;

pub use pallet::*;

#[cfg(feature = "runtime-benchmarks")]
mod benchmarking;
mod election;
mod impls;
#[cfg(test)]
mod mock;
#[cfg(test)]
mod tests;
pub mod types;
pub mod weights;

pub use impls::{NODE_REPORT_LONGEVITY, NODE_REPORT_PRIORITY};
pub use types::*;
pub use weights::WeightInfo;

#[frame_support::pallet]
pub mod pallet {
    use super::*;
    use frame_support::{
        pallet_prelude::*,
        traits::fungible::{Inspect, InspectHold, MutateHold},
    };
    use frame_system::pallet_prelude::*;
    use psp_primitives::{
        staking::{
            ElectedNode, EpochIndex, EquivocationEvidence, NodeEquivocationReport, NodeRegistry,
            Role,
        },
        IdentityKey,
    };
    use sp_runtime::Perbill;

    /// The balance type of the bonded currency.
    pub type BalanceOf<T> =
        <<T as Config>::Currency as Inspect<<T as frame_system::Config>::AccountId>>::Balance;

    /// An elected node in this runtime.
    pub type ElectedNodeOf<T> = ElectedNode<<T as frame_system::Config>::AccountId, BalanceOf<T>>;

    #[pallet::pallet]
    pub struct Pallet<T>(_);

    /// Why this pallet holds funds.
    #[pallet::composite_enum]
    pub enum HoldReason {
        /// Bonded stake, active or unbonding.
        Staking,
    }

    #[pallet::config]
    pub trait Config: frame_system::Config<RuntimeEvent: From<Event<Self>>> {
        /// The currency stake is bonded in.
        type Currency: MutateHold<Self::AccountId, Reason = Self::RuntimeHoldReason>
            + InspectHold<Self::AccountId>;
        /// The overarching hold reason.
        type RuntimeHoldReason: From<HoldReason>;
        /// The identity registry: which node identities are active and who owns them.
        type Nodes: NodeRegistry<Self::AccountId>;
        /// Blocks per epoch (one session).
        #[pallet::constant]
        type EpochLength: Get<BlockNumberFor<Self>>;
        /// Blocks between `unbond` and the moment the chunk can be withdrawn.
        #[pallet::constant]
        type UnbondingPeriod: Get<BlockNumberFor<Self>>;
        /// Most unbonding chunks an account may have at once.
        #[pallet::constant]
        type MaxUnlockingChunks: Get<u32>;
        /// Least active bond to stand as an authority.
        #[pallet::constant]
        type MinAuthorityStake: Get<BalanceOf<Self>>;
        /// Least active bond to stand as a discovery node (the highest minimum).
        #[pallet::constant]
        type MinDiscoveryStake: Get<BalanceOf<Self>>;
        /// Least active bond to stand as an oracle.
        #[pallet::constant]
        type MinOracleStake: Get<BalanceOf<Self>>;
        /// Most elected authorities (besides the invulnerables).
        #[pallet::constant]
        type MaxAuthorities: Get<u32>;
        /// Most elected discovery nodes.
        #[pallet::constant]
        type MaxDiscovery: Get<u32>;
        /// Most elected oracles.
        #[pallet::constant]
        type MaxOracles: Get<u32>;
        /// Most candidate nodes at once; bounds the election's weight.
        #[pallet::constant]
        type MaxCandidates: Get<u32>;
        /// Most invulnerable authorities.
        #[pallet::constant]
        type MaxInvulnerables: Get<u32>;
        /// The part of an offender's bond (active and unbonding) that valid evidence slashes.
        #[pallet::constant]
        type SlashFraction: Get<Perbill>;
        /// The part of a slash paid to the reporter; the rest is burned.
        #[pallet::constant]
        type ReporterShare: Get<Perbill>;
        /// Who may set the invulnerable authorities.
        type AdminOrigin: EnsureOrigin<Self::RuntimeOrigin>;
        /// Weights of this pallet's calls and of the election.
        type WeightInfo: WeightInfo;
    }

    /// Bonds, unbonding chunks and candidacies, by account.
    #[pallet::storage]
    pub type Ledger<T: Config> =
        StorageMap<_, Blake2_128Concat, T::AccountId, StakingLedger<T>, OptionQuery>;

    /// Candidate nodes and the account backing each.
    #[pallet::storage]
    pub type Candidates<T: Config> =
        CountedStorageMap<_, Blake2_128Concat, IdentityKey, T::AccountId, OptionQuery>;

    /// The nodes elected to each role for the current and the next epoch.
    #[pallet::storage]
    pub type Elected<T: Config> = StorageDoubleMap<
        _,
        Twox64Concat,
        EpochIndex,
        Twox64Concat,
        Role,
        BoundedVec<ElectedNodeOf<T>, MaxElected<T>>,
        ValueQuery,
    >;

    /// Authorities that are always in the validator set, ahead of the elected ones.
    #[pallet::storage]
    pub type Invulnerables<T: Config> =
        StorageValue<_, BoundedVec<T::AccountId, T::MaxInvulnerables>, ValueQuery>;

    /// The current epoch.
    #[pallet::storage]
    pub type CurrentEpoch<T> = StorageValue<_, EpochIndex, ValueQuery>;

    /// The block the current epoch started at.
    #[pallet::storage]
    pub type EpochStart<T: Config> = StorageValue<_, BlockNumberFor<T>, ValueQuery>;

    /// Offences already punished, by offender, role and slot, with the epoch of the report;
    /// the same evidence can never slash twice.
    #[pallet::storage]
    pub type Offences<T: Config> =
        StorageMap<_, Blake2_128Concat, (IdentityKey, Role, u64), EpochIndex, OptionQuery>;

    #[pallet::genesis_config]
    #[derive(frame_support::DefaultNoBound)]
    pub struct GenesisConfig<T: Config> {
        /// Authorities that always author blocks, ahead of elected ones.
        pub invulnerables: alloc::vec::Vec<T::AccountId>,
    }

    #[pallet::genesis_build]
    impl<T: Config> BuildGenesisConfig for GenesisConfig<T> {
        fn build(&self) {
            let bounded =
                BoundedVec::<_, T::MaxInvulnerables>::try_from(self.invulnerables.clone())
                    .expect("genesis: more invulnerables than MaxInvulnerables");
            Invulnerables::<T>::put(bounded);
        }
    }

    #[pallet::event]
    #[pallet::generate_deposit(pub(super) fn deposit_event)]
    pub enum Event<T: Config> {
        /// Funds were bonded (a first bond or more).
        Bonded {
            /// The staker.
            who: T::AccountId,
            /// The amount added.
            amount: BalanceOf<T>,
        },
        /// Active stake started unbonding.
        Unbonded {
            /// The staker.
            who: T::AccountId,
            /// The amount.
            amount: BalanceOf<T>,
            /// The first block it can be withdrawn at.
            unlocks_at: BlockNumberFor<T>,
        },
        /// Matured chunks were released.
        Withdrawn {
            /// The staker.
            who: T::AccountId,
            /// The amount released.
            amount: BalanceOf<T>,
        },
        /// A node now stands for a role.
        CandidateStood {
            /// The node identity.
            node: IdentityKey,
            /// The backing account.
            owner: T::AccountId,
            /// The role.
            role: Role,
        },
        /// A node no longer stands for a role.
        CandidateLeft {
            /// The node identity.
            node: IdentityKey,
            /// The role.
            role: Role,
        },
        /// A candidate's node identity was revoked, so it left every role.
        CandidateDropped {
            /// The node identity.
            node: IdentityKey,
            /// The backing account.
            owner: T::AccountId,
        },
        /// The nodes elected to a role for an epoch, highest stake first.
        Elected {
            /// The epoch they serve.
            epoch: EpochIndex,
            /// The role.
            role: Role,
            /// Their node identity keys.
            nodes: alloc::vec::Vec<IdentityKey>,
        },
        /// An epoch started.
        EpochStarted {
            /// The epoch.
            epoch: EpochIndex,
        },
        /// Evidence of equivocation was accepted: the offender was slashed and removed from
        /// the role.
        Slashed {
            /// The offending node identity.
            node: IdentityKey,
            /// The account whose bond was slashed.
            owner: T::AccountId,
            /// The role it equivocated in.
            role: Role,
            /// The amount slashed.
            amount: BalanceOf<T>,
            /// The reporter.
            reporter: T::AccountId,
            /// What the reporter received.
            reward: BalanceOf<T>,
        },
        /// The invulnerable authorities were replaced.
        InvulnerablesSet {
            /// The new list.
            invulnerables: alloc::vec::Vec<T::AccountId>,
        },
    }

    #[allow(deprecated)]
    #[pallet::validate_unsigned]
    impl<T: Config> ValidateUnsigned for Pallet<T> {
        type Call = Call<T>;

        fn validate_unsigned(_source: TransactionSource, call: &Self::Call) -> TransactionValidity {
            match call {
                Call::report_equivocation_by_node { report } => Self::validate_node_report(report),
                _ => InvalidTransaction::Call.into(),
            }
        }
    }

    #[pallet::error]
    pub enum Error<T> {
        /// The account has bonded already; use `bond_extra` to add more.
        AlreadyBonded,
        /// The account has no bond.
        NotBonded,
        /// The amount is zero.
        ZeroAmount,
        /// The free balance cannot cover the amount (holds must leave the existential deposit).
        InsufficientBalance,
        /// More than the active bond.
        UnbondTooMuch,
        /// Too many unbonding chunks; withdraw matured ones first or wait.
        TooManyUnlockingChunks,
        /// No unbonding chunk has matured yet.
        NothingToWithdraw,
        /// No active node identity is registered under this key.
        NotANode,
        /// The node identity belongs to another account.
        NotNodeOwner,
        /// The account stands with another node already; one node per bond.
        OtherNodeStanding,
        /// The node already stands for this role.
        AlreadyCandidate,
        /// The node does not stand for this role.
        NotCandidate,
        /// The active bond is below the role's minimum stake.
        BelowMinimumStake,
        /// The candidate list is full (`MaxCandidates`).
        TooManyCandidates,
        /// Unbonding this much would leave less than a role the node stands for requires;
        /// leave the role first.
        WouldFallBelowMinimum,
        /// The two statements do not conflict: roles, slots differ or payloads are equal.
        EvidenceNotConflicting,
        /// A statement's signature does not verify under the offender's key.
        BadEvidenceSignature,
        /// The offender is not elected to that role in the current or next epoch.
        OffenderNotElected,
        /// This offence (node, role, slot) was punished already.
        AlreadyReported,
        /// More invulnerables than `MaxInvulnerables`.
        TooManyInvulnerables,
        /// The reporting node is not elected to any role in the current or next epoch.
        ReporterNotElected,
        /// The reporting node's signature over its report does not verify.
        BadReportSignature,
    }

    #[pallet::hooks]
    impl<T: Config> Hooks<BlockNumberFor<T>> for Pallet<T> {
        fn integrity_test() {
            assert!(
                T::MinDiscoveryStake::get() >= T::MinAuthorityStake::get()
                    && T::MinDiscoveryStake::get() >= T::MinOracleStake::get(),
                "discovery is the most security-sensitive role: its minimum stake must be the highest"
            );
            assert!(
                !T::EpochLength::get().is_zero(),
                "epochs must be at least one block"
            );
            assert!(
                T::MaxUnlockingChunks::get() > 0,
                "unbonding needs at least one chunk"
            );
        }

        #[cfg(feature = "try-runtime")]
        fn try_state(_n: BlockNumberFor<T>) -> Result<(), sp_runtime::TryRuntimeError> {
            Self::check_invariants().map_err(Into::into)
        }
    }

    #[pallet::call]
    impl<T: Config> Pallet<T> {
        /// Bond `value` from the caller's free balance (a first bond).
        ///
        /// Emits [`Event::Bonded`].
        #[pallet::call_index(0)]
        #[pallet::weight(T::WeightInfo::bond())]
        pub fn bond(
            origin: OriginFor<T>,
            #[pallet::compact] value: BalanceOf<T>,
        ) -> DispatchResult {
            let who = ensure_signed(origin)?;
            ensure!(!Ledger::<T>::contains_key(&who), Error::<T>::AlreadyBonded);
            Self::do_bond(who, value)
        }

        /// Add `value` to an existing bond.
        ///
        /// Emits [`Event::Bonded`].
        #[pallet::call_index(1)]
        #[pallet::weight(T::WeightInfo::bond_extra())]
        pub fn bond_extra(
            origin: OriginFor<T>,
            #[pallet::compact] value: BalanceOf<T>,
        ) -> DispatchResult {
            let who = ensure_signed(origin)?;
            ensure!(Ledger::<T>::contains_key(&who), Error::<T>::NotBonded);
            Self::do_bond(who, value)
        }

        /// Start unbonding `value` of the active bond; it can be withdrawn after
        /// [`Config::UnbondingPeriod`] blocks and stays slashable until then.
        ///
        /// Emits [`Event::Unbonded`].
        #[pallet::call_index(2)]
        #[pallet::weight(T::WeightInfo::unbond())]
        pub fn unbond(
            origin: OriginFor<T>,
            #[pallet::compact] value: BalanceOf<T>,
        ) -> DispatchResult {
            let who = ensure_signed(origin)?;
            Self::do_unbond(who, value)
        }

        /// Release every unbonding chunk that has matured.
        ///
        /// Emits [`Event::Withdrawn`].
        #[pallet::call_index(3)]
        #[pallet::weight(T::WeightInfo::withdraw_unbonded(T::MaxUnlockingChunks::get()))]
        pub fn withdraw_unbonded(origin: OriginFor<T>) -> DispatchResult {
            let who = ensure_signed(origin)?;
            Self::do_withdraw(who)
        }

        /// Stand for `role` with the node identity `node`, which the caller must own.
        ///
        /// Emits [`Event::CandidateStood`].
        #[pallet::call_index(4)]
        #[pallet::weight(T::WeightInfo::stand())]
        pub fn stand(origin: OriginFor<T>, node: IdentityKey, role: Role) -> DispatchResult {
            let who = ensure_signed(origin)?;
            Self::do_stand(who, node, role)
        }

        /// Stop standing for `role`. An elected node serves out the epochs it was elected for.
        ///
        /// Emits [`Event::CandidateLeft`].
        #[pallet::call_index(5)]
        #[pallet::weight(T::WeightInfo::leave())]
        pub fn leave(origin: OriginFor<T>, role: Role) -> DispatchResult {
            let who = ensure_signed(origin)?;
            Self::do_leave(who, role)
        }

        /// Report that an elected node signed two conflicting statements for one slot of its
        /// role. Valid evidence slashes [`Config::SlashFraction`] of the offender's bond, pays
        /// [`Config::ReporterShare`] of it to the caller, burns the rest and removes the node
        /// from the role. Invalid evidence fails, and the caller pays the fee.
        ///
        /// Emits [`Event::Slashed`].
        #[pallet::call_index(6)]
        #[pallet::weight(T::WeightInfo::report_equivocation())]
        pub fn report_equivocation(
            origin: OriginFor<T>,
            evidence: alloc::boxed::Box<EquivocationEvidence>,
        ) -> DispatchResult {
            let reporter = ensure_signed(origin)?;
            Self::do_report(reporter, *evidence)
        }

        /// Report equivocation as an elected node, signed with its node key: an unsigned
        /// transaction, so a node slashes an equivocating node by itself with no account and no
        /// fee. The reporter must be elected to a role for the current or next epoch; the
        /// reporter's share goes to its owner. Checked in the pool first (`validate_unsigned`:
        /// one transaction per offence) and again here.
        ///
        /// Emits [`Event::Slashed`].
        #[pallet::call_index(8)]
        #[pallet::weight(T::WeightInfo::report_equivocation_by_node())]
        pub fn report_equivocation_by_node(
            origin: OriginFor<T>,
            report: alloc::boxed::Box<NodeEquivocationReport>,
        ) -> DispatchResult {
            ensure_none(origin)?;
            let reporter = Self::check_node_report(&report)?;
            Self::do_report(reporter, report.evidence)
        }

        /// Replace the invulnerable authorities.
        ///
        /// Emits [`Event::InvulnerablesSet`].
        #[pallet::call_index(7)]
        #[pallet::weight(T::WeightInfo::set_invulnerables(invulnerables.len() as u32))]
        pub fn set_invulnerables(
            origin: OriginFor<T>,
            invulnerables: alloc::vec::Vec<T::AccountId>,
        ) -> DispatchResult {
            T::AdminOrigin::ensure_origin(origin)?;
            let bounded = BoundedVec::<_, T::MaxInvulnerables>::try_from(invulnerables.clone())
                .map_err(|_| Error::<T>::TooManyInvulnerables)?;
            Invulnerables::<T>::put(bounded);
            Self::deposit_event(Event::InvulnerablesSet { invulnerables });
            Ok(())
        }
    }
}
