//! Weights for `pallet_psp_rewards`.
//!
//! PLACEHOLDER FIGURES: written by hand from the storage accesses of each benchmark and a
//! guess of ~60 µs per sr25519 verification, not measured. Regenerate with
//! `scripts/bench-weights.sh pallet_psp_rewards` before relying on them.

#![cfg_attr(rustfmt, rustfmt_skip)]
#![allow(unused_parens)]
#![allow(unused_imports)]
#![allow(missing_docs)]

use frame_support::{traits::Get, weights::{Weight, constants::ParityDbWeight}};
use core::marker::PhantomData;

/// Weight functions needed for `pallet_psp_rewards`.
pub trait WeightInfo {
	fn submit_reports(n: u32, ) -> Weight;
	fn claim(n: u32, ) -> Weight;
	fn on_initialize() -> Weight;
	fn start_epoch() -> Weight;
	fn close_epoch() -> Weight;
	fn prune(k: u32, ) -> Weight;
}

/// Weights for `pallet_psp_rewards` using the runtime's database weights.
/// PLACEHOLDER: not measured (see the module docs).
pub struct SubstrateWeight<T>(PhantomData<T>);
impl<T: frame_system::Config> WeightInfo for SubstrateWeight<T> {
	/// PLACEHOLDER. Per record: two sr25519 verifications, a session mark read and write, and
	/// (worst case, one relay per record) an identity read, a tally read and write, an accrual
	/// write and a dispute counter read and write.
	fn submit_reports(n: u32, ) -> Weight {
		Weight::from_parts(40_000_000, 6000)
			.saturating_add(Weight::from_parts(150_000_000, 3000).saturating_mul(n.into()))
			.saturating_add(T::DbWeight::get().reads(4_u64))
			.saturating_add(T::DbWeight::get().reads((4_u64).saturating_mul(n.into())))
			.saturating_add(T::DbWeight::get().writes(2_u64))
			.saturating_add(T::DbWeight::get().writes((4_u64).saturating_mul(n.into())))
	}
	/// PLACEHOLDER. One transfer from the pot (the caller's account is whitelisted, as in the
	/// balances benchmark), the commitment, and per epoch an accrual and a payout read and
	/// write.
	fn claim(n: u32, ) -> Weight {
		Weight::from_parts(35_000_000, 3600)
			.saturating_add(Weight::from_parts(8_000_000, 2600).saturating_mul(n.into()))
			.saturating_add(T::DbWeight::get().reads(2_u64))
			.saturating_add(T::DbWeight::get().reads((2_u64).saturating_mul(n.into())))
			.saturating_add(T::DbWeight::get().writes(2_u64))
			.saturating_add(T::DbWeight::get().writes((2_u64).saturating_mul(n.into())))
	}
	/// PLACEHOLDER. The clock and the oracle set's current epoch.
	fn on_initialize() -> Weight {
		Weight::from_parts(5_000_000, 1500)
			.saturating_add(T::DbWeight::get().reads(2_u64))
	}
	/// PLACEHOLDER. The elected set, the time, two snapshots and the clock.
	fn start_epoch() -> Weight {
		Weight::from_parts(30_000_000, 4000)
			.saturating_add(T::DbWeight::get().reads(3_u64))
			.saturating_add(T::DbWeight::get().writes(3_u64))
	}
	/// PLACEHOLDER. Totals, the pot, the commitment and the payout.
	fn close_epoch() -> Weight {
		Weight::from_parts(25_000_000, 3600)
			.saturating_add(T::DbWeight::get().reads(3_u64))
			.saturating_add(T::DbWeight::get().writes(3_u64))
	}
	/// PLACEHOLDER. The pruning state and the clock, then one removal per key.
	fn prune(k: u32, ) -> Weight {
		Weight::from_parts(10_000_000, 1500)
			.saturating_add(Weight::from_parts(1_000_000, 0).saturating_mul(k.into()))
			.saturating_add(T::DbWeight::get().reads(2_u64))
			.saturating_add(T::DbWeight::get().writes(1_u64))
			.saturating_add(T::DbWeight::get().writes((1_u64).saturating_mul(k.into())))
	}
}

// For tests.
impl WeightInfo for () {
	fn submit_reports(n: u32, ) -> Weight {
		Weight::from_parts(40_000_000, 6000)
			.saturating_add(Weight::from_parts(150_000_000, 3000).saturating_mul(n.into()))
	}
	fn claim(n: u32, ) -> Weight {
		Weight::from_parts(35_000_000, 3600)
			.saturating_add(Weight::from_parts(8_000_000, 2600).saturating_mul(n.into()))
	}
	fn on_initialize() -> Weight { Weight::from_parts(5_000_000, 1500) }
	fn start_epoch() -> Weight { Weight::from_parts(30_000_000, 4000) }
	fn close_epoch() -> Weight { Weight::from_parts(25_000_000, 3600) }
	fn prune(k: u32, ) -> Weight {
		Weight::from_parts(10_000_000, 1500)
			.saturating_add(Weight::from_parts(1_000_000, 100).saturating_mul(k.into()))
	}
}
