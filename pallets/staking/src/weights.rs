//! Weights for `pallet_psp_staking`.
//!
//! Regenerate with `scripts/bench-weights.sh pallet_psp_staking`.

#![cfg_attr(rustfmt, rustfmt_skip)]
#![allow(unused_parens)]
#![allow(unused_imports)]
#![allow(missing_docs)]

use frame_support::{traits::Get, weights::{Weight, constants::ParityDbWeight}};
use core::marker::PhantomData;

/// Weight functions needed for `pallet_psp_staking`.
pub trait WeightInfo {
	fn bond() -> Weight;
	fn bond_extra() -> Weight;
	fn unbond() -> Weight;
	fn withdraw_unbonded(c: u32, ) -> Weight;
	fn stand() -> Weight;
	fn leave() -> Weight;
	fn report_equivocation() -> Weight;
	fn set_invulnerables(n: u32, ) -> Weight;
	fn elect(c: u32, ) -> Weight;
}

/// Weights for `pallet_psp_staking` using the runtime's database weights.
pub struct SubstrateWeight<T>(PhantomData<T>);
impl<T: frame_system::Config> WeightInfo for SubstrateWeight<T> {
	fn bond() -> Weight {
		Weight::from_parts(60_000_000, 3600)
			.saturating_add(T::DbWeight::get().reads(2_u64))
			.saturating_add(T::DbWeight::get().writes(2_u64))
	}
	fn bond_extra() -> Weight {
		Weight::from_parts(60_000_000, 3600)
			.saturating_add(T::DbWeight::get().reads(2_u64))
			.saturating_add(T::DbWeight::get().writes(2_u64))
	}
	fn unbond() -> Weight {
		Weight::from_parts(40_000_000, 3600)
			.saturating_add(T::DbWeight::get().reads(1_u64))
			.saturating_add(T::DbWeight::get().writes(1_u64))
	}
	fn withdraw_unbonded(c: u32, ) -> Weight {
		Weight::from_parts(60_000_000, 3600)
			.saturating_add(Weight::from_parts(1_000_000, 0).saturating_mul(c.into()))
			.saturating_add(T::DbWeight::get().reads(2_u64))
			.saturating_add(T::DbWeight::get().writes(2_u64))
	}
	fn stand() -> Weight {
		Weight::from_parts(50_000_000, 3800)
			.saturating_add(T::DbWeight::get().reads(4_u64))
			.saturating_add(T::DbWeight::get().writes(3_u64))
	}
	fn leave() -> Weight {
		Weight::from_parts(50_000_000, 3800)
			.saturating_add(T::DbWeight::get().reads(4_u64))
			.saturating_add(T::DbWeight::get().writes(5_u64))
	}
	fn report_equivocation() -> Weight {
		Weight::from_parts(250_000_000, 8000)
			.saturating_add(T::DbWeight::get().reads(9_u64))
			.saturating_add(T::DbWeight::get().writes(8_u64))
	}
	fn set_invulnerables(n: u32, ) -> Weight {
		Weight::from_parts(10_000_000, 0)
			.saturating_add(Weight::from_parts(100_000, 0).saturating_mul(n.into()))
			.saturating_add(T::DbWeight::get().writes(1_u64))
	}
	fn elect(c: u32, ) -> Weight {
		Weight::from_parts(50_000_000, 0)
			.saturating_add(Weight::from_parts(30_000_000, 0).saturating_mul(c.into()))
			.saturating_add(T::DbWeight::get().reads((3_u64).saturating_mul(c.into())))
			.saturating_add(T::DbWeight::get().writes(6_u64))
	}
}

// For tests.
impl WeightInfo for () {
	fn bond() -> Weight { Weight::from_parts(60_000_000, 0) }
	fn bond_extra() -> Weight { Weight::from_parts(60_000_000, 0) }
	fn unbond() -> Weight { Weight::from_parts(40_000_000, 0) }
	fn withdraw_unbonded(_c: u32, ) -> Weight { Weight::from_parts(60_000_000, 0) }
	fn stand() -> Weight { Weight::from_parts(50_000_000, 0) }
	fn leave() -> Weight { Weight::from_parts(50_000_000, 0) }
	fn report_equivocation() -> Weight { Weight::from_parts(250_000_000, 0) }
	fn set_invulnerables(_n: u32, ) -> Weight { Weight::from_parts(10_000_000, 0) }
	fn elect(c: u32, ) -> Weight { Weight::from_parts(30_000_000, 0).saturating_mul(c.into()) }
}
