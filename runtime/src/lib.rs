//! # PSP runtime
//!
//! The FRAME runtime of the PeerStream Protocol chain: the public-key infrastructure
//! (`pallet-psp-identity`), the staking that elects authority, discovery and oracle nodes each
//! epoch (`pallet-psp-staking`) and the bandwidth rewards those oracles report for
//! (`pallet-psp-rewards`), on top of balances, transaction payment, and Aura block
//! production with GRANDPA finality whose authorities `pallet-session` takes from the election,
//! with sudo for the dev and local networks.
//!
//! - [`configs`]: the `Config` of every pallet.
//! - [`apis`]: the runtime APIs, `PspApi` among them.
//! - [`genesis_config_presets`]: the `dev` and `local` genesis presets.
#![cfg_attr(not(feature = "std"), no_std)]
// `construct_runtime`-style macros expand to items without docs.
#![allow(missing_docs)]

#[cfg(feature = "std")]
include!(concat!(env!("OUT_DIR"), "/wasm_binary.rs"));

extern crate alloc;

use alloc::vec::Vec;

pub mod apis;
#[cfg(feature = "runtime-benchmarks")]
mod benchmarks;
pub mod configs;
pub mod genesis_config_presets;

use sp_runtime::{
    generic, impl_opaque_keys,
    traits::{BlakeTwo256, IdentifyAccount, Verify},
    MultiAddress, MultiSignature,
};
use sp_version::RuntimeVersion;

pub use frame_system::Call as SystemCall;
pub use pallet_balances::Call as BalancesCall;
pub use pallet_timestamp::Call as TimestampCall;
#[cfg(any(feature = "std", test))]
pub use sp_runtime::BuildStorage;

/// Opaque types the node uses without knowing the runtime's extrinsic format.
pub mod opaque {
    use super::*;
    pub use sp_runtime::OpaqueExtrinsic as UncheckedExtrinsic;

    /// Block header.
    pub type Header = generic::Header<BlockNumber, BlakeTwo256>;
    /// Block.
    pub type Block = generic::Block<Header, UncheckedExtrinsic>;
    /// Block hash.
    pub type Hash = <BlakeTwo256 as sp_runtime::traits::Hash>::Output;
}

impl_opaque_keys! {
    /// The session keys of an authority.
    pub struct SessionKeys {
        pub aura: Aura,
        pub grandpa: Grandpa,
    }
}

/// The runtime version.
#[sp_version::runtime_version]
pub const VERSION: RuntimeVersion = RuntimeVersion {
    spec_name: alloc::borrow::Cow::Borrowed("psp-runtime"),
    impl_name: alloc::borrow::Cow::Borrowed("psp-runtime"),
    authoring_version: 1,
    spec_version: 104,
    impl_version: 1,
    apis: apis::RUNTIME_API_VERSIONS,
    transaction_version: 1,
    system_version: 1,
};

/// Target block time. Short, so a dev chain and the tests move in seconds.
pub const MILLI_SECS_PER_BLOCK: u64 = 3000;
/// Aura slot duration equals the block time.
pub const SLOT_DURATION: u64 = MILLI_SECS_PER_BLOCK;
/// Blocks per minute.
pub const MINUTES: BlockNumber = 60_000 / (MILLI_SECS_PER_BLOCK as BlockNumber);

/// One PSP token, in its smallest units (12 decimals).
pub const UNIT: Balance = 1_000_000_000_000;
/// A thousandth of a token.
pub const MILLI_UNIT: Balance = UNIT / 1000;
/// The smallest balance an account may hold.
pub const EXISTENTIAL_DEPOSIT: Balance = MILLI_UNIT;
/// The deposit held for each registered identity.
pub const IDENTITY_DEPOSIT: Balance = UNIT;

/// Blocks per epoch (one session): 30 seconds, so dev and test chains see elections quickly.
/// A public network would choose hours.
pub const EPOCH_LENGTH: BlockNumber = 10;
/// Blocks from `unbond` to withdrawable: two epochs.
pub const UNBONDING_PERIOD: BlockNumber = 2 * EPOCH_LENGTH;
/// Least bond to stand as an authority.
pub const MIN_AUTHORITY_STAKE: Balance = 1_000 * UNIT;
/// Least bond to stand as a discovery node: the highest, discovery being the most
/// security-sensitive role.
pub const MIN_DISCOVERY_STAKE: Balance = 5_000 * UNIT;
/// Least bond to stand as an oracle.
pub const MIN_ORACLE_STAKE: Balance = 500 * UNIT;
/// The bandwidth reward pool of each epoch, paid from the rewards pot.
pub const REWARD_PER_EPOCH: Balance = UNIT;
/// The price of one epoch of the standard stream plan (a public network with hour-long
/// epochs would charge more per epoch).
pub const STREAM_PLAN_PRICE: Balance = MILLI_UNIT;
/// The most bytes per second one session is credited for: 32 Mbit/s, the highest bitrate
/// class (25 Mbit/s, 4K) with headroom for packet overhead.
pub const MAX_SESSION_BYTES_PER_SECOND: u64 = 4_000_000;
/// The most bytes one session is credited in one epoch, however long the epoch runs: the rate
/// cap over an epoch at the target block time (120 MB).
pub const MAX_SESSION_BYTES: u64 =
    MAX_SESSION_BYTES_PER_SECOND * EPOCH_LENGTH as u64 * MILLI_SECS_PER_BLOCK / 1_000;
/// Consumer tokens one subscription may draw per epoch, over all oracles (the oracles'
/// `psp_usage::token::DEFAULT_TOKENS_PER_SUBSCRIPTION`; a node test checks they agree).
pub const CONSUMER_TOKENS_PER_EPOCH: u32 = 16;
/// The most an epoch pays per gigabyte of credited traffic: 0.5 milli-UNIT.
pub const MAX_REWARD_PER_GIGABYTE: Balance = MILLI_UNIT / 2;

/// Fabricated consumers cost more than they earn (issue 14, point 2; derivation in
/// `psp-net/usage/README.md`): each token backs one session credited at most
/// `MAX_SESSION_BYTES`, the pallet pays at most `MAX_REWARD_PER_GIGABYTE` per byte of credit
/// (plus two units of rounding per relay and epoch), so a subscription's tokens can earn a
/// fabricating relay at most `r·T·c + 2`, which must stay below the cheapest plan's price.
const _: () = assert!(
    (MAX_REWARD_PER_GIGABYTE * CONSUMER_TOKENS_PER_EPOCH as Balance * MAX_SESSION_BYTES as Balance)
        .div_ceil(1_000_000_000)
        + 2
        <= STREAM_PLAN_PRICE,
    "a subscription's consumer tokens could earn more than the cheapest plan costs"
);

/// What the dev and local genesis put in the rewards pot.
pub const REWARDS_POT_ENDOWMENT: Balance = 100_000 * UNIT;

/// Signature of transactions.
pub type Signature = MultiSignature;
/// Account id: the public key behind a signature.
pub type AccountId = <<Signature as Verify>::Signer as IdentifyAccount>::AccountId;
/// Balances.
pub type Balance = u128;
/// Transaction nonce.
pub type Nonce = u32;
/// Block hash.
pub type Hash = sp_core::H256;
/// Block number.
pub type BlockNumber = u32;
/// Address format of transactions.
pub type Address = MultiAddress<AccountId, ()>;
/// Block header.
pub type Header = generic::Header<BlockNumber, BlakeTwo256>;
/// Block.
pub type Block = generic::Block<Header, UncheckedExtrinsic>;

/// The transaction extensions every signed transaction carries.
pub type TxExtension = (
    frame_system::CheckNonZeroSender<Runtime>,
    frame_system::CheckSpecVersion<Runtime>,
    frame_system::CheckTxVersion<Runtime>,
    frame_system::CheckGenesis<Runtime>,
    frame_system::CheckEra<Runtime>,
    frame_system::CheckNonce<Runtime>,
    frame_system::CheckWeight<Runtime>,
    pallet_transaction_payment::ChargeTransactionPayment<Runtime>,
    frame_metadata_hash_extension::CheckMetadataHash<Runtime>,
    frame_system::WeightReclaim<Runtime>,
);

/// Extrinsic format.
pub type UncheckedExtrinsic =
    generic::UncheckedExtrinsic<Address, RuntimeCall, Signature, TxExtension>;

/// Block execution.
pub type Executive = frame_executive::Executive<
    Runtime,
    Block,
    frame_system::ChainContext<Runtime>,
    Runtime,
    AllPalletsWithSystem,
>;

#[frame_support::runtime]
mod runtime {
    #[runtime::runtime]
    #[runtime::derive(
        RuntimeCall,
        RuntimeEvent,
        RuntimeError,
        RuntimeOrigin,
        RuntimeFreezeReason,
        RuntimeHoldReason,
        RuntimeSlashReason,
        RuntimeLockId,
        RuntimeTask,
        RuntimeViewFunction
    )]
    pub struct Runtime;

    #[runtime::pallet_index(0)]
    pub type System = frame_system;
    #[runtime::pallet_index(1)]
    pub type Timestamp = pallet_timestamp;
    #[runtime::pallet_index(2)]
    pub type Aura = pallet_aura;
    #[runtime::pallet_index(3)]
    pub type Grandpa = pallet_grandpa;
    #[runtime::pallet_index(4)]
    pub type Balances = pallet_balances;
    #[runtime::pallet_index(5)]
    pub type TransactionPayment = pallet_transaction_payment;
    #[runtime::pallet_index(6)]
    pub type Sudo = pallet_sudo;
    #[runtime::pallet_index(10)]
    pub type PspIdentity = pallet_psp_identity;
    // Staking builds its genesis (the invulnerables) before Session asks it for validators.
    #[runtime::pallet_index(11)]
    pub type PspStaking = pallet_psp_staking;
    #[runtime::pallet_index(12)]
    pub type Session = pallet_session;
    // After Session: it sees a new epoch in the epoch's first block.
    #[runtime::pallet_index(13)]
    pub type PspRewards = pallet_psp_rewards;
    #[runtime::pallet_index(14)]
    pub type PspSubscriptions = pallet_psp_subscriptions;
}
