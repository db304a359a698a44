//! A test runtime: System, Balances, Timestamp, the identity registry (the node registry),
//! this pallet, and a mock oracle set whose epochs follow the block number and whose elected
//! oracles each test chooses. Blocks are 3 s apart and epochs 5 blocks long: epoch `e` covers
//! blocks `5e + 1 ..= 5e + 5`.

use crate as pallet_psp_rewards;
use crate::{Event, Payouts};
use frame_support::{
    derive_impl, parameter_types,
    traits::{ConstU32, ConstU64, Hooks},
    weights::Weight,
    PalletId,
};
use frame_system::EnsureRoot;
use psp_primitives::{
    rewards::{
        client_report_message, relay_report_message, session_id_of, Interval, OracleSet,
        SignedUsage, Usage, UsageRecord,
    },
    staking::{EpochIndex, NodeRegistry},
    IdentityKey,
};
use sp_core::{sr25519, Pair};
use sp_runtime::{traits::AccountIdConversion, BuildStorage, Perbill};
use std::collections::BTreeMap;

type Block = frame_system::mocking::MockBlock<Test>;

frame_support::construct_runtime!(
    pub enum Test {
        System: frame_system,
        Balances: pallet_balances,
        Timestamp: pallet_timestamp,
        Identity: pallet_psp_identity,
        Rewards: pallet_psp_rewards,
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
/// Each epoch's pool.
pub const REWARD: u64 = 1_000;
/// The pot's genesis balance: ten pools and the existential deposit.
pub const POT_FUNDS: u64 = 10 * REWARD + 1;
/// The rate cap: 1 000 bytes per second, so 15 000 bytes per session over a whole epoch.
pub const MAX_BPS: u64 = 1_000;
/// The most one session is credited in an epoch: the rate cap over a whole epoch.
pub const MAX_SESSION_BYTES: u64 = MAX_BPS * EPOCH_BLOCKS * BLOCK_MS / 1_000;
/// The default rate cap of payouts: 100 per byte, so only epochs of under 10 bytes of credit
/// pay less than the full pool.
pub const RATE_PER_GIGABYTE: u64 = 100_000_000_000;
/// Bounds.
pub const MAX_BATCH: u32 = 8;
pub const MAX_ORACLES: u32 = 8;
pub const MAX_SESSIONS_PER_ORACLE: u32 = 24;
pub const MAX_RELAYS: u32 = 6;
pub const MAX_CLAIM_EPOCHS: u32 = 4;

parameter_types! {
    pub const RewardsPalletId: PalletId = PalletId(*b"psp/rwrd");
    pub const Tolerance: Perbill = Perbill::from_percent(5);
    /// The elected oracles, by the epoch they are elected from (until the next entry).
    /// The rate cap of payouts; a test may lower it.
    pub storage MaxRewardPerGigabyte: u64 = RATE_PER_GIGABYTE;
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

impl pallet_psp_rewards::Config for Test {
    type Currency = Balances;
    type PalletId = RewardsPalletId;
    type RewardPerEpoch = ConstU64<REWARD>;
    type MaxRewardPerGigabyte = MaxRewardPerGigabyte;
    type Oracles = MockOracles;
    type Nodes = Identity;
    type Time = Timestamp;
    type Tolerance = Tolerance;
    type MaxBytesPerSecond = ConstU64<MAX_BPS>;
    type MaxSessionBytes = ConstU64<MAX_SESSION_BYTES>;
    type MaxBatchSize = ConstU32<MAX_BATCH>;
    type MaxOracles = ConstU32<MAX_ORACLES>;
    type MaxSessionsPerOracle = ConstU32<MAX_SESSIONS_PER_ORACLE>;
    type MaxRelaysPerEpoch = ConstU32<MAX_RELAYS>;
    type MaxClaimEpochs = ConstU32<MAX_CLAIM_EPOCHS>;
    type WeightInfo = ();
}

/// Oracle owner accounts (each with 1 000).
pub const ORACLES: [u64; 8] = [11, 12, 13, 14, 15, 16, 17, 18];
/// An account that is neither oracle nor relay owner.
pub const STRANGER: u64 = 99;

/// The epoch a block belongs to.
pub fn epoch_of_block(block: u64) -> EpochIndex {
    (block.saturating_sub(1) / EPOCH_BLOCKS) as EpochIndex
}

/// The chain-time span of epoch `e`: from its first block's time to the next epoch's.
pub fn epoch_span(e: EpochIndex) -> Interval {
    let first = u64::from(e) * EPOCH_BLOCKS + 1;
    Interval {
        start_ms: first * BLOCK_MS,
        end_ms: (first + EPOCH_BLOCKS) * BLOCK_MS,
    }
}

/// An oracle's node key.
pub fn oracle_node(owner: u64) -> IdentityKey {
    let mut key = [0xEE; 32];
    key[..8].copy_from_slice(&owner.to_le_bytes());
    key
}

/// Elects the oracles owned by `owners` from epoch `from` on.
pub fn elect(from: EpochIndex, owners: &[u64]) {
    let set = owners.iter().map(|o| (oracle_node(*o), *o)).collect();
    MockOracles::set_oracles_unchecked(from, set);
}

/// The pot account.
pub fn pot() -> u64 {
    RewardsPalletId::get().into_account_truncating()
}

/// A relay: its node key pair, and its owner account `20 + i`.
pub fn relay_pair(i: u8) -> sr25519::Pair {
    sr25519::Pair::from_seed(&[100u8.wrapping_add(i); 32])
}

/// The node key of relay `i`.
pub fn relay_key(i: u8) -> IdentityKey {
    relay_pair(i).public().0
}

/// The owner of relay `i`.
pub fn relay_owner(i: u8) -> u64 {
    20 + u64::from(i)
}

/// Registers relay `i` as an active node of its owner.
pub fn register_relay(i: u8) {
    <Identity as NodeRegistry<u64>>::insert_node_unchecked(&relay_owner(i), relay_key(i));
}

/// A client's session key pair, one per `n`.
pub fn client_pair(n: u32) -> sr25519::Pair {
    let mut seed = [7u8; 32];
    seed[..4].copy_from_slice(&n.to_le_bytes());
    sr25519::Pair::from_seed(&seed)
}

/// A usage report.
pub fn usage(bytes: u64, span: Interval) -> Usage {
    Usage {
        bytes,
        start_ms: span.start_ms,
        end_ms: span.end_ms,
    }
}

/// A record for `epoch`, signed by `relay` and `client` over their own reports.
pub fn signed_record(
    epoch: EpochIndex,
    relay: &sr25519::Pair,
    client: &sr25519::Pair,
    relay_usage: Usage,
    client_usage: Usage,
) -> UsageRecord {
    let genesis = <Identity as NodeRegistry<u64>>::genesis_hash();
    let client_key = client.public().0;
    let session = session_id_of(&client_key);
    let relay_key = relay.public().0;
    let relay_message = relay_report_message(&genesis, epoch, &session, &relay_key, &relay_usage);
    let client_message =
        client_report_message(&genesis, epoch, &session, &relay_key, &client_usage);
    UsageRecord {
        session,
        relay: relay_key,
        relay_report: SignedUsage {
            usage: relay_usage,
            signature: relay.sign(&relay_message).0,
        },
        client_key,
        client_report: SignedUsage {
            usage: client_usage,
            signature: client.sign(&client_message).0,
        },
    }
}

/// An honest record: relay `relay` carried `bytes` for client `client` over all of `epoch`.
pub fn honest(epoch: EpochIndex, relay: u8, client: u32, bytes: u64) -> UsageRecord {
    let u = usage(bytes, epoch_span(epoch));
    signed_record(epoch, &relay_pair(relay), &client_pair(client), u, u)
}

/// Genesis: oracle owners hold 1 000 each, relay owners 1 000, the pot [`POT_FUNDS`]; the
/// oracles owned by 11, 12 and 13 are elected from epoch 0 on; the first block has run.
pub fn new_test_ext() -> sp_io::TestExternalities {
    let mut storage = frame_system::GenesisConfig::<Test>::default()
        .build_storage()
        .expect("system genesis");
    let mut balances: Vec<(u64, u64)> = ORACLES.iter().map(|o| (*o, 1_000)).collect();
    balances.extend((0..8).map(|i| (relay_owner(i), 1_000)));
    balances.push((STRANGER, 1_000));
    balances.push((pot(), POT_FUNDS));
    pallet_balances::GenesisConfig::<Test> {
        balances,
        ..Default::default()
    }
    .assimilate_storage(&mut storage)
    .expect("balances genesis");
    let mut ext = sp_io::TestExternalities::new(storage);
    ext.register_extension(sp_keystore::KeystoreExt::new(
        sp_keystore::testing::MemoryKeystore::new(),
    ));
    ext.execute_with(|| {
        elect(0, &ORACLES[..3]);
        run_to_block(1);
    });
    ext
}

/// Runs `test` in a fresh genesis, then checks the pallet's invariants and that no epoch paid
/// more than its pool.
pub fn test(test: impl FnOnce()) {
    new_test_ext().execute_with(|| {
        test();
        check_all();
    });
}

/// The pallet's invariants, and from the events: what each epoch paid is at most its pool,
/// and the pot lost exactly what was paid.
pub fn check_all() {
    if let Err(broken) = Rewards::check_invariants() {
        panic!("invariant broken: {broken}");
    }
    let mut pools: BTreeMap<EpochIndex, u64> = BTreeMap::new();
    let mut paid: BTreeMap<EpochIndex, u64> = BTreeMap::new();
    for record in System::events() {
        match record.event {
            RuntimeEvent::Rewards(Event::EpochClosed { epoch, pool, .. }) => {
                pools.insert(epoch, pool);
            }
            RuntimeEvent::Rewards(Event::RewardClaimed { epoch, amount, .. }) => {
                *paid.entry(epoch).or_default() += amount;
            }
            _ => {}
        }
    }
    for (epoch, amount) in &paid {
        let pool = pools.get(epoch).copied().unwrap_or(0);
        assert!(
            *amount <= pool,
            "epoch {epoch} paid {amount} of a pool of {pool}"
        );
        if let Some(payout) = Payouts::<Test>::get(epoch) {
            assert_eq!(payout.paid, *amount, "epoch {epoch}: payout.paid");
        }
    }
}

/// Advances to block `n`: sets the time, runs the pallet's `on_initialize` and `on_idle` (with
/// room for 64 prunes), and checks the invariants after every block.
pub fn run_to_block(n: u64) {
    while System::block_number() < n {
        let next = System::block_number() + 1;
        System::set_block_number(next);
        Timestamp::set_timestamp(next * BLOCK_MS);
        Rewards::on_initialize(next);
        Rewards::on_idle(next, idle_budget(64));
        if let Err(broken) = Rewards::check_invariants() {
            panic!("invariant broken at block {next}: {broken}");
        }
    }
}

/// The weight `on_idle` needs to prune `keys` keys.
pub fn idle_budget(keys: u32) -> Weight {
    <() as crate::WeightInfo>::prune(keys)
}

/// Runs to the first block of epoch `e`.
pub fn run_to_epoch(e: EpochIndex) {
    run_to_block(u64::from(e) * EPOCH_BLOCKS + 1);
}
