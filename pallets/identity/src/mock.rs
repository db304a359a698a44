//! A test runtime: System, Balances and the identity pallet.

use crate as pallet_psp_identity;
use frame_support::{derive_impl, parameter_types, traits::ConstU32};
use frame_system::EnsureRoot;
use sp_runtime::BuildStorage;

type Block = frame_system::mocking::MockBlock<Test>;

frame_support::construct_runtime!(
    pub enum Test {
        System: frame_system,
        Balances: pallet_balances,
        Identity: pallet_psp_identity,
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

/// The deposit of one identity in the test runtime.
pub const DEPOSIT: u64 = 100;
/// Rich accounts of the test genesis.
pub const ALICE: u64 = 1;
pub const BOB: u64 = 2;
/// An account that cannot afford a deposit.
pub const POOR: u64 = 3;

parameter_types! {
    pub const IdentityDeposit: u64 = DEPOSIT;
}

impl pallet_psp_identity::Config for Test {
    type Currency = Balances;
    type RuntimeHoldReason = RuntimeHoldReason;
    type IdentityDeposit = IdentityDeposit;
    type MaxPeerIdLen = ConstU32<64>;
    type MaxAddresses = ConstU32<4>;
    type MaxAddressLen = ConstU32<64>;
    type ForceOrigin = EnsureRoot<u64>;
    type WeightInfo = ();
}

/// Genesis: ALICE and BOB hold 10_000, POOR holds 50 (below the deposit).
pub fn new_test_ext() -> sp_io::TestExternalities {
    let mut storage = frame_system::GenesisConfig::<Test>::default()
        .build_storage()
        .unwrap();
    pallet_balances::GenesisConfig::<Test> {
        balances: vec![(ALICE, 10_000), (BOB, 10_000), (POOR, 50)],
        ..Default::default()
    }
    .assimilate_storage(&mut storage)
    .unwrap();
    let mut ext = sp_io::TestExternalities::new(storage);
    ext.register_extension(sp_keystore::KeystoreExt::new(
        sp_keystore::testing::MemoryKeystore::new(),
    ));
    ext.execute_with(|| System::set_block_number(1));
    ext
}
