//! The configuration of every pallet in the runtime.

use frame_support::traits::Get;
use frame_support::{
    derive_impl,
    dispatch::DispatchClass,
    parameter_types,
    traits::{ConstBool, ConstU128, ConstU32, ConstU64, ConstU8, VariantCountOf},
    weights::{
        constants::{ParityDbWeight, WEIGHT_REF_TIME_PER_SECOND},
        IdentityFee, Weight,
    },
};
use frame_system::{
    limits::{BlockLength, BlockWeights},
    EnsureRoot,
};
use pallet_transaction_payment::{ConstFeeMultiplier, FungibleAdapter, Multiplier};
use psp_primitives::subscriptions::{Plan, Tier, MAX_PLANS};
use sp_consensus_aura::sr25519::AuthorityId as AuraId;
use sp_runtime::{
    traits::{ConvertInto, One},
    transaction_validity::TransactionPriority,
    BoundedVec, Perbill,
};
use sp_version::RuntimeVersion;

use super::{
    AccountId, Aura, Balance, Balances, Block, BlockNumber, Hash, Nonce, PalletInfo, PspIdentity,
    PspStaking, Runtime, RuntimeCall, RuntimeEvent, RuntimeFreezeReason, RuntimeHoldReason,
    RuntimeOrigin, RuntimeTask, SessionKeys, System, Timestamp, EPOCH_LENGTH, EXISTENTIAL_DEPOSIT,
    IDENTITY_DEPOSIT, MAX_REWARD_PER_GIGABYTE, MAX_SESSION_BYTES, MAX_SESSION_BYTES_PER_SECOND,
    MIN_AUTHORITY_STAKE, MIN_DISCOVERY_STAKE, MIN_ORACLE_STAKE, REWARD_PER_EPOCH, SLOT_DURATION,
    STREAM_PLAN_PRICE, UNBONDING_PERIOD, VERSION,
};

const NORMAL_DISPATCH_RATIO: Perbill = Perbill::from_percent(75);
/// Invulnerable authorities at most.
const MAX_INVULNERABLES: u32 = 8;
/// Elected authorities at most (besides the invulnerables).
const MAX_ELECTED_AUTHORITIES: u32 = 24;
/// The most Aura/GRANDPA authorities: invulnerables plus elected.
const MAX_VALIDATORS: u32 = MAX_INVULNERABLES + MAX_ELECTED_AUTHORITIES;
/// Elected oracles at most (staking elects them, rewards snapshots them).
const MAX_ORACLES: u32 = 16;

parameter_types! {
    pub const BlockHashCount: BlockNumber = 2400;
    pub const Version: RuntimeVersion = VERSION;
    /// Two seconds of compute per block, at most.
    pub RuntimeBlockWeights: BlockWeights = BlockWeights::with_sensible_defaults(
        Weight::from_parts(2u64 * WEIGHT_REF_TIME_PER_SECOND, u64::MAX),
        NORMAL_DISPATCH_RATIO,
    );
    pub RuntimeBlockLength: BlockLength =
        BlockLength::builder()
            .max_length(5 * 1024 * 1024)
            .modify_max_length_for_class(DispatchClass::Normal, |max| *max = NORMAL_DISPATCH_RATIO * *max)
            .build();
    pub const SS58Prefix: u8 = 42;
}

#[derive_impl(frame_system::config_preludes::SolochainDefaultConfig)]
impl frame_system::Config for Runtime {
    type Block = Block;
    type BlockWeights = RuntimeBlockWeights;
    type BlockLength = RuntimeBlockLength;
    type AccountId = AccountId;
    type Nonce = Nonce;
    type Hash = Hash;
    type BlockHashCount = BlockHashCount;
    /// The node stores state in ParityDB.
    type DbWeight = ParityDbWeight;
    type Version = Version;
    type AccountData = pallet_balances::AccountData<Balance>;
    type SS58Prefix = SS58Prefix;
    type MaxConsumers = ConstU32<16>;
}

impl pallet_aura::Config for Runtime {
    type AuthorityId = AuraId;
    type DisabledValidators = ();
    type MaxAuthorities = ConstU32<MAX_VALIDATORS>;
    type AllowMultipleBlocksPerSlot = ConstBool<false>;
    type SlotDuration = pallet_aura::MinimumPeriodTimesTwo<Runtime>;
}

impl pallet_grandpa::Config for Runtime {
    type RuntimeEvent = RuntimeEvent;
    type WeightInfo = ();
    type MaxAuthorities = ConstU32<MAX_VALIDATORS>;
    type MaxNominators = ConstU32<0>;
    type MaxSetIdSessionEntries = ConstU64<0>;
    type KeyOwnerProof = sp_core::Void;
    type EquivocationReportSystem = ();
}

impl pallet_timestamp::Config for Runtime {
    type Moment = u64;
    type OnTimestampSet = Aura;
    type MinimumPeriod = ConstU64<{ SLOT_DURATION / 2 }>;
    type WeightInfo = ();
}

impl pallet_balances::Config for Runtime {
    type MaxLocks = ConstU32<50>;
    type MaxReserves = ();
    type ReserveIdentifier = [u8; 8];
    type Balance = Balance;
    type RuntimeEvent = RuntimeEvent;
    type DustRemoval = ();
    type ExistentialDeposit = ConstU128<EXISTENTIAL_DEPOSIT>;
    type AccountStore = System;
    type WeightInfo = pallet_balances::weights::SubstrateWeight<Runtime>;
    type FreezeIdentifier = RuntimeFreezeReason;
    type MaxFreezes = VariantCountOf<RuntimeFreezeReason>;
    type RuntimeHoldReason = RuntimeHoldReason;
    type RuntimeFreezeReason = RuntimeFreezeReason;
    type DoneSlashHandler = ();
}

parameter_types! {
    pub FeeMultiplier: Multiplier = Multiplier::one();
}

impl pallet_transaction_payment::Config for Runtime {
    type RuntimeEvent = RuntimeEvent;
    type OnChargeTransaction = FungibleAdapter<Balances, ()>;
    type OperationalFeeMultiplier = ConstU8<5>;
    type WeightToFee = IdentityFee<Balance>;
    type LengthToFee = IdentityFee<Balance>;
    type FeeMultiplierUpdate = ConstFeeMultiplier<FeeMultiplier>;
    type WeightInfo = pallet_transaction_payment::weights::SubstrateWeight<Runtime>;
}

impl pallet_sudo::Config for Runtime {
    type RuntimeEvent = RuntimeEvent;
    type RuntimeCall = RuntimeCall;
    type WeightInfo = pallet_sudo::weights::SubstrateWeight<Runtime>;
}

impl pallet_psp_identity::Config for Runtime {
    type Currency = Balances;
    type RuntimeHoldReason = RuntimeHoldReason;
    type IdentityDeposit = ConstU128<IDENTITY_DEPOSIT>;
    /// A libp2p peer id is a multihash of at most 42 bytes (identity-hashed ed25519 key).
    type MaxPeerIdLen = ConstU32<64>;
    type MaxAddresses = ConstU32<8>;
    type MaxAddressLen = ConstU32<128>;
    type ForceOrigin = EnsureRoot<AccountId>;
    type WeightInfo = pallet_psp_identity::weights::SubstrateWeight<Runtime>;
}

parameter_types! {
    /// An equivocation costs a tenth of the bond.
    pub const SlashFraction: Perbill = Perbill::from_percent(10);
    /// Half of a slash rewards the reporter; the rest is burned.
    pub const ReporterShare: Perbill = Perbill::from_percent(50);
}

impl pallet_psp_staking::Config for Runtime {
    type Currency = Balances;
    type RuntimeHoldReason = RuntimeHoldReason;
    type Nodes = PspIdentity;
    type EpochLength = ConstU32<EPOCH_LENGTH>;
    type UnbondingPeriod = ConstU32<UNBONDING_PERIOD>;
    type MaxUnlockingChunks = ConstU32<16>;
    type MinAuthorityStake = ConstU128<MIN_AUTHORITY_STAKE>;
    type MinDiscoveryStake = ConstU128<MIN_DISCOVERY_STAKE>;
    type MinOracleStake = ConstU128<MIN_ORACLE_STAKE>;
    type MaxAuthorities = ConstU32<MAX_ELECTED_AUTHORITIES>;
    type MaxDiscovery = ConstU32<16>;
    type MaxOracles = ConstU32<MAX_ORACLES>;
    type MaxCandidates = ConstU32<512>;
    type MaxInvulnerables = ConstU32<MAX_INVULNERABLES>;
    type SlashFraction = SlashFraction;
    type ReporterShare = ReporterShare;
    type AdminOrigin = EnsureRoot<AccountId>;
    type WeightInfo = pallet_psp_staking::weights::SubstrateWeight<Runtime>;
}

impl pallet_session::Config for Runtime {
    type RuntimeEvent = RuntimeEvent;
    type ValidatorId = AccountId;
    type ValidatorIdOf = ConvertInto;
    type ShouldEndSession = PspStaking;
    type NextSessionRotation = PspStaking;
    type SessionManager = PspStaking;
    type SessionHandler = <SessionKeys as sp_runtime::traits::OpaqueKeys>::KeyTypeIdProviders;
    type Keys = SessionKeys;
    type DisablingStrategy = ();
    type WeightInfo = pallet_session::weights::SubstrateWeight<Runtime>;
    type Currency = Balances;
    type KeyDeposit = ConstU128<0>;
}

parameter_types! {
    /// The pot rewards are paid from.
    pub const RewardsPalletId: frame_support::PalletId = frame_support::PalletId(*b"psp/rwrd");
    /// Two sides of a session may differ by 5% and still be credited (the smaller count).
    pub const RewardsTolerance: Perbill = Perbill::from_percent(5);
}

impl pallet_psp_rewards::Config for Runtime {
    type Currency = Balances;
    type PalletId = RewardsPalletId;
    type RewardPerEpoch = ConstU128<REWARD_PER_EPOCH>;
    type MaxRewardPerGigabyte = ConstU128<MAX_REWARD_PER_GIGABYTE>;
    type Oracles = PspStaking;
    type Nodes = PspIdentity;
    type Time = Timestamp;
    type Tolerance = RewardsTolerance;
    /// 32 Mbit/s per session at most: the rate cap of a colluding relay and client.
    type MaxBytesPerSecond = ConstU64<MAX_SESSION_BYTES_PER_SECOND>;
    type MaxSessionBytes = ConstU64<MAX_SESSION_BYTES>;
    type MaxBatchSize = ConstU32<128>;
    type MaxOracles = ConstU32<MAX_ORACLES>;
    type MaxSessionsPerOracle = ConstU32<2048>;
    type MaxRelaysPerEpoch = ConstU32<1024>;
    type MaxClaimEpochs = ConstU32<128>;
    type WeightInfo = pallet_psp_rewards::weights::SubstrateWeight<Runtime>;
}

parameter_types! {
    /// The stream plans (§8.2): a standard plan (SD video, an hour per stream, four
    /// distribution nodes) and a high plan (HD video, four hours, eight nodes) at four times
    /// the price. Bitrate classes are psp-receipts' codes. No plan may cost less than
    /// `STREAM_PLAN_PRICE`, which the fabrication bound in `lib.rs` is checked against.
    pub StreamPlans: BoundedVec<Plan<Balance>, ConstU32<MAX_PLANS>> = BoundedVec::truncate_from(alloc::vec![
        Plan {
            tier: Tier { lifetime_secs: 3_600, bitrate_class: 2, distribution_nodes: 4 },
            price_per_epoch: STREAM_PLAN_PRICE,
        },
        Plan {
            tier: Tier { lifetime_secs: 4 * 3_600, bitrate_class: 3, distribution_nodes: 8 },
            price_per_epoch: 4 * STREAM_PLAN_PRICE,
        },
    ]);
    /// Oracles' receipt keys validate ahead of other transactions.
    pub const ReceiptKeysPriority: TransactionPriority = TransactionPriority::MAX / 2;
}

/// The rewards pot: subscriptions pay the relays that carry the streams.
pub struct RewardsPot;
impl Get<AccountId> for RewardsPot {
    fn get() -> AccountId {
        crate::PspRewards::pot_account()
    }
}

impl pallet_psp_subscriptions::Config for Runtime {
    type Currency = Balances;
    type Pot = RewardsPot;
    type Plans = StreamPlans;
    /// The issuer's default bound (psp-receipts `IssuerConfig`): oracles enforce it.
    type ReceiptsPerEpoch = ConstU32<16>;
    /// About 35 days of 30-second epochs.
    type MaxEpochs = ConstU32<100_000>;
    type MaxKeyLifetime = ConstU64<86_400>;
    type MaxOracles = ConstU32<MAX_ORACLES>;
    type Subscribers = PspIdentity;
    type Oracles = PspStaking;
    type Nodes = PspIdentity;
    type Time = Timestamp;
    type UnsignedPriority = ReceiptKeysPriority;
    /// A publication not in a block within an epoch is stale.
    type UnsignedLongevity = ConstU64<{ EPOCH_LENGTH as u64 }>;
    type WeightInfo = pallet_psp_subscriptions::weights::SubstrateWeight<Runtime>;
}
