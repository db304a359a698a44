//! The most a relay can earn with fabricated consumers, against what it must spend.
//!
//! Notation, per epoch: `Π` the pool (`RewardPerEpoch`), `r` the payout rate cap
//! (`MaxRewardPerGigabyte`, per byte here), `P` the price of the cheapest plan per epoch, `T`
//! the tokens per subscription (over all oracles), `c` the most bytes one session is credited
//! (`MaxSessionBytes`, and no more than `MaxBytesPerSecond` × the time both sides say it ran
//! within the epoch), `H` the honest credit of the epoch over all relays, of which `h` is the
//! fabricating relay's own.
//!
//! The pallet's pool for an epoch of total credit `X` is `min(Π, r·X)`, shared pro rata, so no
//! relay is ever paid more than `r` per byte of its credit. A relay that buys `S` subscriptions
//! backs at most `S·T` sessions, so its fabricated credit is `F ≤ S·T·c`, and its payout goes
//! from `min(Π, r·H)·h/H` to `min(Π, r·(H+F))·(h+F)/(H+F)`. Three cases:
//!
//! - both pools rate-limited: the gain is exactly `r·F`;
//! - both pools `Π`: the gain is `Π·F·(H−h)/(H·(H+F)) ≤ Π·F/(H+F) ≤ r·F` (as `Π ≤ r·(H+F)`);
//! - only the first rate-limited: the new payout is below `r·(h+F)` and the old one `r·h`.
//!
//! So **`G ≤ r·F ≤ r·S·T·c`** whatever the honest traffic, for a cost of `S·P` (the price goes
//! to the pot, never back to the relay): **fabrication never pays when `P ≥ r·T·c`**
//! ([`min_price`]). The pallet rounds the rate-limited pool and each share down, which can
//! cost the relay's old payout at most two units, so on the pallet's figures `G ≤ ⌊r·F⌋ + 2`
//! ([`gain_bound`]) and a price of `⌈r·T·c⌉ + 2` suffices. The runtime asserts this
//! for its constants at compile time (`runtime/src/lib.rs`).

use psp_primitives::rewards::{pro_rata, rate_limited_pool, Interval, Normalization};

/// The most bytes one session is credited in an epoch of `epoch_ms`: the pallet's own cap
/// (`Normalization::cap`), the rate over the epoch but never above `max_session_bytes`.
pub fn session_cap_bytes(max_bytes_per_second: u64, max_session_bytes: u64, epoch_ms: u64) -> u64 {
    Normalization {
        tolerance: Default::default(),
        max_bytes_per_second,
        max_session_bytes,
    }
    .cap(Interval {
        start_ms: 0,
        end_ms: epoch_ms,
    })
}

/// The most credit `subscriptions` subscriptions can back: `S·T·c`, saturating.
pub fn fabricated_credit(subscriptions: u64, tokens_per_subscription: u32, cap: u64) -> u128 {
    u128::from(subscriptions)
        .saturating_mul(u128::from(tokens_per_subscription))
        .saturating_mul(u128::from(cap))
}

/// The pallet's payout to a relay credited `credit` of an epoch's `total`: its pro-rata share
/// of `min(pool, rate × total)`.
fn payout(pool: u128, rate_per_gigabyte: u128, credit: u128, total: u128) -> u128 {
    let pool = pool.min(rate_limited_pool(rate_per_gigabyte, total));
    pro_rata(pool, credit, total)
}

/// What fabricated credit `fabricated` adds to a relay's payout under the pallet's rule, when
/// the relay's own honest credit is `own_honest` and the other relays' is `others_honest`.
pub fn fabrication_gain(
    pool: u128,
    rate_per_gigabyte: u128,
    own_honest: u128,
    others_honest: u128,
    fabricated: u128,
) -> u128 {
    let honest = own_honest.saturating_add(others_honest);
    let with = payout(
        pool,
        rate_per_gigabyte,
        own_honest.saturating_add(fabricated),
        honest.saturating_add(fabricated),
    );
    let without = payout(pool, rate_per_gigabyte, own_honest, honest);
    with.saturating_sub(without)
}

/// The bound on [`fabrication_gain`]: `r·F` rounded down, plus two units for the pallet's
/// rounding.
pub fn gain_bound(rate_per_gigabyte: u128, fabricated: u128) -> u128 {
    rate_limited_pool(rate_per_gigabyte, fabricated).saturating_add(2)
}

/// A plan price per epoch at which fabrication never pays, at any number of subscriptions and
/// any honest traffic: `r·T·c` rounded down, plus one unit to round it up and two for the
/// pallet's rounding (at most one unit above the least such price).
pub fn min_price(rate_per_gigabyte: u128, tokens_per_subscription: u32, cap: u64) -> u128 {
    let per_subscription = fabricated_credit(1, tokens_per_subscription, cap);
    rate_limited_pool(rate_per_gigabyte, per_subscription).saturating_add(3)
}
