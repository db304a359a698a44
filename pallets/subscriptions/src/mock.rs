//! A test runtime: System, Balances, Timestamp, the identity registry (the subscriber and node
//! registry), this pallet, and a mock oracle set whose epochs follow the block number and whose
//! elected oracles each test chooses. Blocks are 3 s apart and epochs 5 blocks long: epoch `e`
//! covers blocks `5e + 1 ..= 5e + 5`.

use crate as pallet_psp_subscriptions;
use crate::PlansOf;
use frame_support::{
    derive_impl, parameter_types,
    traits::{ConstU32, ConstU64},
};
use frame_system::EnsureRoot;
use psp_primitives::{
    rewards::OracleSet,
    staking::{EpochIndex, NodeRegistry},
    subscriptions::{
        receipt_keys_message, Plan, ReceiptKey, ReceiptKeyPublication, ReceiptKeySet,
        SubscriberRegistry, Tier,
    },
    IdentityKey,
};
use sp_core::{sr25519, Pair};
use sp_runtime::{BoundedVec, BuildStorage};
use std::collections::BTreeMap;

type Block = frame_system::mocking::MockBlock<Test>;

frame_support::construct_runtime!(
    pub enum Test {
        System: frame_system,
        Balances: pallet_balances,
        Timestamp: pallet_timestamp,
        Identity: pallet_psp_identity,
        Subscriptions: pallet_psp_subscriptions,
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

impl pallet_timestamp::Config for Test {
    type Moment = u64;
    type OnTimestampSet = ();
    type MinimumPeriod = ConstU64<1>;
    type WeightInfo = ();
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
pub const EPOCH_BLOCKS: u64 = 5;
/// Milliseconds between blocks.
pub const BLOCK_MS: u64 = 3_000;
/// The chain time of block 0, unix milliseconds.
pub const GENESIS_MS: u64 = 1_700_000_000_000;
/// Bounds.
pub const MAX_EPOCHS: u32 = 12;
pub const MAX_ORACLES: u32 = 8;
pub const MAX_KEY_LIFETIME: u64 = 172_800;
pub const RECEIPTS_PER_EPOCH: u32 = 100;
pub const PRIORITY: u64 = 1 << 20;
pub const LONGEVITY: u64 = 5;
/// The pot account payments go to.
pub const POT: u64 = 1_000;

/// The tier of plan `i`.
pub fn tier(i: u8) -> Tier {
    Tier {
        lifetime_secs: 3_600 * (u32::from(i) + 1),
        bitrate_class: i + 1,
        distribution_nodes: 2 + i,
    }
}

/// The mock plans: tiers 0, 1 and 2 at 10, 25 and 60 a epoch.
pub fn plans() -> Vec<Plan<u64>> {
    vec![
        Plan {
            tier: tier(0),
            price_per_epoch: 10,
        },
        Plan {
            tier: tier(1),
            price_per_epoch: 25,
        },
        Plan {
            tier: tier(2),
            price_per_epoch: 60,
        },
    ]
}

parameter_types! {
    pub MockPlans: PlansOf<Test> = BoundedVec::truncate_from(plans());
    pub const Pot: u64 = POT;
    /// The elected oracles, by the epoch they are elected from (until the next entry).
    pub storage ElectedOracles: BTreeMap<EpochIndex, Vec<(IdentityKey, u64)>> = BTreeMap::new();
}

/// The oracle set: epoch `(block - 1) / 5`, oracles as [`elect`] chose.
pub struct MockOracles;

impl OracleSet<u64> for MockOracles {
    fn current_epoch() -> EpochIndex {
        epoch_of_block(System::block_number())
    }

    fn oracles(epoch: EpochIndex) -> Option<Vec<(IdentityKey, u64)>> {
        ElectedOracles::get()
            .range(..=epoch)
            .next_back()
            .map(|(_, set)| set.clone())
    }

    fn set_oracles_unchecked(epoch: EpochIndex, oracles: Vec<(IdentityKey, u64)>) {
        let mut all = ElectedOracles::get();
        all.insert(epoch, oracles);
        ElectedOracles::set(&all);
    }
}

impl pallet_psp_subscriptions::Config for Test {
    type Currency = Balances;
    type Pot = Pot;
    type Plans = MockPlans;
    type ReceiptsPerEpoch = ConstU32<RECEIPTS_PER_EPOCH>;
    type MaxEpochs = ConstU32<MAX_EPOCHS>;
    type MaxKeyLifetime = ConstU64<MAX_KEY_LIFETIME>;
    type MaxOracles = ConstU32<MAX_ORACLES>;
    type Subscribers = Identity;
    type Oracles = MockOracles;
    type Nodes = Identity;
    type Time = Timestamp;
    type UnsignedPriority = ConstU64<PRIORITY>;
    type UnsignedLongevity = ConstU64<LONGEVITY>;
    type WeightInfo = ();
}

/// Accounts holding 1 000 each.
pub const ALICE: u64 = 1;
pub const BOB: u64 = 2;
/// An account holding 30.
pub const POOR: u64 = 3;

/// The epoch a block belongs to.
pub fn epoch_of_block(block: u64) -> EpochIndex {
    (block.saturating_sub(1) / EPOCH_BLOCKS) as EpochIndex
}

/// The chain time at the current block, unix seconds.
pub fn now_secs() -> u64 {
    (GENESIS_MS + System::block_number() * BLOCK_MS) / 1_000
}

/// Client identity `i`'s key.
pub fn client(i: u8) -> IdentityKey {
    [0xC0 | i; 32]
}

/// Registers client `i` as an active client identity of [`ALICE`].
pub fn register_client(i: u8) {
    <Identity as SubscriberRegistry<u64>>::insert_client_unchecked(&ALICE, client(i));
}

/// Oracle `i`'s node key pair.
pub fn oracle_pair(i: u8) -> sr25519::Pair {
    sr25519::Pair::from_seed(&[40u8.wrapping_add(i); 32])
}

/// Oracle `i`'s node key.
pub fn oracle(i: u8) -> IdentityKey {
    oracle_pair(i).public().0
}

/// Elects oracles `indices` (owned by accounts `100 + i`) from epoch `from` on, and registers
/// them as nodes.
pub fn elect(from: EpochIndex, indices: &[u8]) {
    let set = indices
        .iter()
        .map(|i| {
            let owner = 100 + u64::from(*i);
            <Identity as NodeRegistry<u64>>::insert_node_unchecked(&owner, oracle(*i));
            (oracle(*i), owner)
        })
        .collect();
    MockOracles::set_oracles_unchecked(from, set);
}

/// A receipt key of plan `plan`'s tier expiring `lifetime` seconds from now.
pub fn receipt_key(plan: u8, lifetime: u64) -> ReceiptKey {
    ReceiptKey {
        tier: tier(plan),
        public_key: BoundedVec::truncate_from(vec![0x30 ^ plan; 294]),
        expires_at: now_secs() + lifetime,
    }
}

/// A consumer-token key (tier [`Tier::CONSUMER_TOKENS`]) expiring `lifetime` seconds from
/// now; `byte` fills it.
pub fn token_key(byte: u8, lifetime: u64) -> ReceiptKey {
    ReceiptKey {
        tier: Tier::CONSUMER_TOKENS,
        public_key: BoundedVec::truncate_from(vec![byte; 294]),
        expires_at: now_secs() + lifetime,
    }
}

/// One key per plan, expiring in a day.
pub fn all_keys() -> Vec<ReceiptKey> {
    (0..3).map(|p| receipt_key(p, 86_400)).collect()
}

/// A publication of `keys` for `epoch` by oracle `i`, signed with `signer`'s key over the
/// message for chain `genesis`.
pub fn publication_signed(
    genesis: &[u8; 32],
    epoch: EpochIndex,
    i: u8,
    keys: Vec<ReceiptKey>,
    signer: &sr25519::Pair,
) -> ReceiptKeyPublication {
    let keys: ReceiptKeySet = BoundedVec::truncate_from(keys);
    let message = receipt_keys_message(genesis, epoch, &oracle(i), &keys);
    ReceiptKeyPublication {
        epoch,
        oracle: oracle(i),
        keys,
        signature: signer.sign(&message).0,
    }
}

/// A correctly signed publication of `keys` for `epoch` by oracle `i`.
pub fn publication(epoch: EpochIndex, i: u8, keys: Vec<ReceiptKey>) -> ReceiptKeyPublication {
    let genesis = <Identity as NodeRegistry<u64>>::genesis_hash();
    publication_signed(&genesis, epoch, i, keys, &oracle_pair(i))
}

/// Genesis: [`ALICE`] and [`BOB`] hold 1 000, [`POOR`] 30, the pot nothing; client 0 is
/// registered; oracles 0, 1 and 2 are elected from epoch 0 on; the first block has run.
pub fn new_test_ext() -> sp_io::TestExternalities {
    let mut storage = frame_system::GenesisConfig::<Test>::default()
        .build_storage()
        .expect("system genesis");
    pallet_balances::GenesisConfig::<Test> {
        balances: vec![(ALICE, 1_000), (BOB, 1_000), (POOR, 30)],
        ..Default::default()
    }
    .assimilate_storage(&mut storage)
    .expect("balances genesis");
    let mut ext = sp_io::TestExternalities::new(storage);
    ext.register_extension(sp_keystore::KeystoreExt::new(
        sp_keystore::testing::MemoryKeystore::new(),
    ));
    ext.execute_with(|| {
        run_to_block(1);
        register_client(0);
        elect(0, &[0, 1, 2]);
    });
    ext
}

/// Runs `test` in a fresh genesis, then checks the pallet's invariants.
pub fn test(test: impl FnOnce()) {
    new_test_ext().execute_with(|| {
        test();
        if let Err(broken) = crate::Pallet::<Test>::check_invariants() {
            panic!("invariant broken: {broken}");
        }
    });
}

/// Advances to block `n`, setting the time of each block.
pub fn run_to_block(n: u64) {
    while System::block_number() < n {
        let next = System::block_number() + 1;
        System::set_block_number(next);
        Timestamp::set_timestamp(GENESIS_MS + next * BLOCK_MS);
    }
}

/// Runs to the first block of epoch `e`.
pub fn run_to_epoch(e: EpochIndex) {
    run_to_block(u64::from(e) * EPOCH_BLOCKS + 1);
}
