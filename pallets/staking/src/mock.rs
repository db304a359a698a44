//! A test runtime: System, Balances, the identity registry, this pallet, and `pallet-session`
//! driven by it, with 5-block epochs and a 4-block unbonding period.

use crate as pallet_psp_staking;
use frame_support::{
    derive_impl, parameter_types,
    traits::{ConstU32, ConstU64, Hooks},
};
use frame_system::EnsureRoot;
use psp_primitives::{staking::NodeRegistry, IdentityKey};
use sp_runtime::{
    testing::UintAuthorityId,
    traits::{ConvertInto, OpaqueKeys},
    BuildStorage, Perbill,
};

type Block = frame_system::mocking::MockBlock<Test>;

frame_support::construct_runtime!(
    pub enum Test {
        System: frame_system,
        Balances: pallet_balances,
        Identity: pallet_psp_identity,
        Staking: pallet_psp_staking,
        Session: pallet_session,
    }
);

#[derive_impl(frame_system::config_preludes::TestDefaultConfig)]
impl frame_system::Config for Test {
    type Block = Block;
    type AccountData = pallet_balances::AccountData<u64>;
}

#[derive_impl(pallet_balances::config_preludes::TestDefaultConfig)]
impl pallet_balances::Config for Test {
    type AccountStore = System;
    type RuntimeHoldReason = RuntimeHoldReason;
}

impl pallet_psp_identity::Config for Test {
    type Currency = Balances;
    type RuntimeHoldReason = RuntimeHoldReason;
    type IdentityDeposit = ConstU64<10>;
    type MaxPeerIdLen = ConstU32<64>;
    type MaxAddresses = ConstU32<4>;
    type MaxAddressLen = ConstU32<64>;
    type ForceOrigin = EnsureRoot<u64>;
    type WeightInfo = ();
}

/// Blocks per epoch.
pub const EPOCH: u64 = 5;
/// Blocks from unbond to withdrawable.
pub const UNBONDING: u64 = 4;
/// Minimum stakes per role.
pub const MIN_AUTHORITY: u64 = 100;
pub const MIN_DISCOVERY: u64 = 300;
pub const MIN_ORACLE: u64 = 50;
/// The invulnerable authority of the genesis.
pub const GENESIS_AUTHORITY: u64 = 100;

parameter_types! {
    pub const SlashFraction: Perbill = Perbill::from_percent(10);
    pub const ReporterShare: Perbill = Perbill::from_percent(50);
}

impl pallet_psp_staking::Config for Test {
    type Currency = Balances;
    type RuntimeHoldReason = RuntimeHoldReason;
    type Nodes = Identity;
    type EpochLength = ConstU64<EPOCH>;
    type UnbondingPeriod = ConstU64<UNBONDING>;
    type MaxUnlockingChunks = ConstU32<3>;
    type MinAuthorityStake = ConstU64<MIN_AUTHORITY>;
    type MinDiscoveryStake = ConstU64<MIN_DISCOVERY>;
    type MinOracleStake = ConstU64<MIN_ORACLE>;
    type MaxAuthorities = ConstU32<2>;
    type MaxDiscovery = ConstU32<2>;
    type MaxOracles = ConstU32<3>;
    type MaxCandidates = ConstU32<6>;
    type MaxInvulnerables = ConstU32<2>;
    type SlashFraction = SlashFraction;
    type ReporterShare = ReporterShare;
    type AdminOrigin = EnsureRoot<u64>;
    type WeightInfo = ();
}

impl pallet_session::Config for Test {
    type RuntimeEvent = RuntimeEvent;
    type ValidatorId = u64;
    type ValidatorIdOf = ConvertInto;
    type ShouldEndSession = Staking;
    type NextSessionRotation = Staking;
    type SessionManager = Staking;
    type SessionHandler = pallet_session::TestSessionHandler;
    type Keys = UintAuthorityId;
    type DisablingStrategy = ();
    type WeightInfo = ();
    type Currency = Balances;
    type KeyDeposit = ConstU64<0>;
}

/// Stakers of the test genesis, each with 10_000.
pub const ALICE: u64 = 1;
pub const BOB: u64 = 2;
pub const CHARLIE: u64 = 3;
pub const DAVE: u64 = 4;
/// Holds 500: enough to bond a little, not enough for large bonds.
pub const POOR: u64 = 5;
/// A reporter with only the existential deposit-free balance of 1_000.
pub const REPORTER: u64 = 6;

/// A node key for an account number (its sr25519 key in the tests that sign).
pub fn node_of(who: u64) -> IdentityKey {
    let mut key = [0u8; 32];
    key[..8].copy_from_slice(&who.to_le_bytes());
    key
}

/// Puts an active node identity owned by `owner` in the registry.
pub fn register_node(owner: u64, key: IdentityKey) {
    <Identity as NodeRegistry<u64>>::insert_node_unchecked(&owner, key);
}

/// Genesis: stakers hold 10_000, POOR 500, REPORTER 1_000; the invulnerable authority has
/// session keys.
pub fn new_test_ext() -> sp_io::TestExternalities {
    let mut storage = frame_system::GenesisConfig::<Test>::default()
        .build_storage()
        .expect("system genesis");
    pallet_balances::GenesisConfig::<Test> {
        balances: vec![
            (ALICE, 10_000),
            (BOB, 10_000),
            (CHARLIE, 10_000),
            (DAVE, 10_000),
            (POOR, 500),
            (REPORTER, 1_000),
            (GENESIS_AUTHORITY, 10_000),
        ],
        ..Default::default()
    }
    .assimilate_storage(&mut storage)
    .expect("balances genesis");
    pallet_psp_staking::GenesisConfig::<Test> {
        invulnerables: vec![GENESIS_AUTHORITY],
    }
    .assimilate_storage(&mut storage)
    .expect("staking genesis");
    pallet_session::GenesisConfig::<Test> {
        keys: vec![(
            GENESIS_AUTHORITY,
            GENESIS_AUTHORITY,
            UintAuthorityId(GENESIS_AUTHORITY),
        )],
        non_authority_keys: vec![],
    }
    .assimilate_storage(&mut storage)
    .expect("session genesis");
    let mut ext = sp_io::TestExternalities::new(storage);
    ext.register_extension(sp_keystore::KeystoreExt::new(
        sp_keystore::testing::MemoryKeystore::new(),
    ));
    ext.execute_with(|| System::set_block_number(1));
    ext
}

/// Runs `test` in a fresh genesis, then checks the pallet's invariants.
pub fn test(test: impl FnOnce()) {
    new_test_ext().execute_with(|| {
        test();
        if let Err(broken) = Staking::check_invariants() {
            panic!("invariant broken: {broken}");
        }
    });
}

/// Advances to block `n`, running the session pallet's `on_initialize` (epoch boundaries)
/// and checking the invariants after every block.
pub fn run_to_block(n: u64) {
    while System::block_number() < n {
        let next = System::block_number() + 1;
        System::set_block_number(next);
        Session::on_initialize(next);
        if let Err(broken) = Staking::check_invariants() {
            panic!("invariant broken at block {next}: {broken}");
        }
    }
}

/// Sets session keys for `who` so it can validate once elected.
pub fn set_session_keys(who: u64) {
    let keys = UintAuthorityId(who);
    assert_eq!(UintAuthorityId::key_ids().len(), 1);
    frame_support::assert_ok!(Session::set_keys(RuntimeOrigin::signed(who), keys, vec![]));
}
