//! The pallets whose FRAME benchmarks the node's `benchmark pallet` command runs.

frame_benchmarking::define_benchmarks!(
    [frame_benchmarking, BaselineBench::<Runtime>]
    [frame_system, SystemBench::<Runtime>]
    [frame_system_extensions, SystemExtensionsBench::<Runtime>]
    [pallet_balances, Balances]
    [pallet_timestamp, Timestamp]
    [pallet_sudo, Sudo]
    [pallet_psp_identity, PspIdentity]
    [pallet_psp_staking, PspStaking]
    [pallet_psp_rewards, PspRewards]
    [pallet_psp_subscriptions, PspSubscriptions]
);
