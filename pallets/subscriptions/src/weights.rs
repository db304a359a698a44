//! Weights for `pallet_psp_subscriptions`.
//!
//! NOT YET GENERATED: hand estimates to be replaced by
//! `scripts/bench-weights.sh pallet_psp_subscriptions` (the FRAME benchmark CLI on the node,
//! with the benchmarks of `benchmarking.rs`). The figures below are conservative guesses: the
//! storage reads and writes are counted from the code, the execution times are rounded up
//! (about 50 µs for a subscription; about 150 µs for a publication, mostly the sr25519
//! verification and hashing of up to eight 600-byte keys; about 10 µs per pruned entry, and a
//! publication is charged a full prune of `MaxOracles` entries),
//! and the proof sizes are the `MaxEncodedLen` bounds of the entries touched.

#![cfg_attr(rustfmt, rustfmt_skip)]
#![allow(unused_parens)]
#![allow(unused_imports)]
#![allow(missing_docs)]

use frame_support::{traits::Get, weights::{Weight, constants::ParityDbWeight}};
use core::marker::PhantomData;

/// Weight functions needed for `pallet_psp_subscriptions`.
pub trait WeightInfo {
	fn subscribe() -> Weight;
	fn publish_receipt_keys() -> Weight;
	fn prune_receipt_keys(k: u32, ) -> Weight;
}

/// Weights for `pallet_psp_subscriptions` using the runtime's database weights.
pub struct SubstrateWeight<T>(PhantomData<T>);
impl<T: frame_system::Config> WeightInfo for SubstrateWeight<T> {
	/// Storage: `PspIdentity::IdentityOf` (r:1 w:0)
	/// Proof: `PspIdentity::IdentityOf` (`max_values`: None, `max_size`: Some(1317), added: 3792, mode: `MaxEncodedLen`)
	/// Storage: `PspStaking::CurrentEpoch` (r:1 w:0)
	/// Proof: `PspStaking::CurrentEpoch` (`max_values`: Some(1), `max_size`: Some(4), added: 499, mode: `MaxEncodedLen`)
	/// Storage: `PspSubscriptions::Subscriptions` (r:1 w:1)
	/// Proof: `PspSubscriptions::Subscriptions` (`max_values`: None, `max_size`: Some(93), added: 2568, mode: `MaxEncodedLen`)
	/// Storage: `System::Account` (r:2 w:2)
	/// Proof: `System::Account` (`max_values`: None, `max_size`: Some(128), added: 2603, mode: `MaxEncodedLen`)
	fn subscribe() -> Weight {
		// Hand estimate, not measured.
		Weight::from_parts(50_000_000, 6196)
			.saturating_add(T::DbWeight::get().reads(5_u64))
			.saturating_add(T::DbWeight::get().writes(3_u64))
	}
	/// Storage: `PspStaking::CurrentEpoch` (r:1 w:0)
	/// Proof: `PspStaking::CurrentEpoch` (`max_values`: Some(1), `max_size`: Some(4), added: 499, mode: `MaxEncodedLen`)
	/// Storage: `PspStaking::Elected` (r:1 w:0)
	/// Proof: `PspStaking::Elected` (`max_values`: None, `max_size`: Some(1942), added: 4417, mode: `MaxEncodedLen`)
	/// Storage: `PspSubscriptions::ReceiptKeys` (r:1 w:1)
	/// Proof: `PspSubscriptions::ReceiptKeys` (`max_values`: None, `max_size`: Some(4994), added: 7469, mode: `MaxEncodedLen`)
	/// Storage: `Timestamp::Now` (r:1 w:0)
	/// Proof: `Timestamp::Now` (`max_values`: Some(1), `max_size`: Some(8), added: 503, mode: `MaxEncodedLen`)
	/// Storage: `System::BlockHash` (r:1 w:0)
	/// Proof: `System::BlockHash` (`max_values`: None, `max_size`: Some(44), added: 2519, mode: `MaxEncodedLen`)
	/// Storage: `PspSubscriptions::KeyEpochs` (r:1 w:1)
	/// Proof: `PspSubscriptions::KeyEpochs` (`max_values`: Some(1), `max_size`: Some(17), added: 512, mode: `MaxEncodedLen`)
	fn publish_receipt_keys() -> Weight {
		// Hand estimate, not measured.
		Weight::from_parts(150_000_000, 7469)
			.saturating_add(T::DbWeight::get().reads(6_u64))
			.saturating_add(T::DbWeight::get().writes(2_u64))
	}
	/// Storage: `PspSubscriptions::ReceiptKeys` (r:0 w:64)
	/// Proof: `PspSubscriptions::ReceiptKeys` (`max_values`: None, `max_size`: Some(4994), added: 7469, mode: `MaxEncodedLen`)
	/// The parameter `k` is the number of entries removed.
	fn prune_receipt_keys(k: u32, ) -> Weight {
		// Hand estimate, not measured.
		Weight::from_parts(5_000_000, 0)
			.saturating_add(Weight::from_parts(10_000_000, 0).saturating_mul(k.into()))
			.saturating_add(T::DbWeight::get().reads((1_u64).saturating_mul(k.into())))
			.saturating_add(T::DbWeight::get().writes((1_u64).saturating_mul(k.into())))
			.saturating_add(Weight::from_parts(0, 7469).saturating_mul(k.into()))
	}
}

// For tests: the same figures with ParityDB weights.
impl WeightInfo for () {
	fn subscribe() -> Weight {
		Weight::from_parts(50_000_000, 6196)
			.saturating_add(ParityDbWeight::get().reads(5_u64))
			.saturating_add(ParityDbWeight::get().writes(3_u64))
	}
	fn publish_receipt_keys() -> Weight {
		Weight::from_parts(150_000_000, 7469)
			.saturating_add(ParityDbWeight::get().reads(6_u64))
			.saturating_add(ParityDbWeight::get().writes(2_u64))
	}
	fn prune_receipt_keys(k: u32, ) -> Weight {
		Weight::from_parts(5_000_000, 0)
			.saturating_add(Weight::from_parts(10_000_000, 0).saturating_mul(k.into()))
			.saturating_add(ParityDbWeight::get().reads((1_u64).saturating_mul(k.into())))
			.saturating_add(ParityDbWeight::get().writes((1_u64).saturating_mul(k.into())))
			.saturating_add(Weight::from_parts(0, 7469).saturating_mul(k.into()))
	}
}
