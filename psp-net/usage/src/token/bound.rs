//! The most a relay can earn with fabricated consumers, against what it must spend.
//!
//! Notation, per epoch: `Π` the pool (`RewardPerEpoch`), `P` the price of the cheapest plan
//! per epoch, `T` the tokens per subscription (over all oracles), `c` the most bytes one
//! session is credited (`MaxBytesPerSecond` × the epoch's length: the pallet caps each session
//! at the rate over the time both sides say it ran within the epoch), `H` the honest credit of
//! the epoch over all relays, of which `h` is the fabricating relay's own.
//!
//! A relay that buys `S` subscriptions can back at most `S·T` sessions, so its fabricated
//! credit is `F ≤ S·T·c`. Pro rata, its payout goes from `Π·h/H` to `Π·(h+F)/(H+F)`: a gain of
//!
//! ```text
//! G = Π·F·(H−h) / (H·(H+F))  ≤  Π·F/(H+F)  ≤  Π·S·T·c / (S·T·c + H)
//! ```
//!
//! for a cost of `S·P` (the price goes to the pot, never back to the relay). Per subscription
//! the gain is at most `Π·T·c / (S·T·c + H) ≤ Π·T·c / (T·c + H)`, so **fabrication never pays,
//! for any number of subscriptions, when `P ≥ Π·T·c / (T·c + H)`** ([`min_price`]); with no
//! honest traffic at all (`H = 0`) that is `P ≥ Π`. Whatever the prices, the gain is below
//! `Π·F/(H+F)`: fabricated consumers can never take more than the pool, and only the part of
//! it that their capped credit is of the epoch's total.
//!
//! The pallet rounds each share down ([`pro_rata`]), which can only lower the fabricator's new
//! share; its old share may have been rounded down by one unit, so the exact bound on the
//! pallet's figures is `G ≤ Π·F/(H+F) + 1` ([`gain_bound`]).

use psp_primitives::rewards::{pro_rata, Interval, Normalization};

/// The most bytes one session is credited in an epoch of `epoch_ms` at the pallet's
/// `max_bytes_per_second`: the pallet's own cap (`Normalization::cap`).
pub fn session_cap_bytes(max_bytes_per_second: u64, epoch_ms: u64) -> u64 {
    Normalization {
        tolerance: Default::default(),
        max_bytes_per_second,
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

/// What fabricated credit `fabricated` adds to a relay's payout under the pallet's rule, when
/// the relay's own honest credit is `own_honest` and the other relays' is `others_honest`:
/// `pro_rata(Π, h+F, H+F) − pro_rata(Π, h, H)` with `H = h + others`.
pub fn fabrication_gain(
    pool: u128,
    own_honest: u128,
    others_honest: u128,
    fabricated: u128,
) -> u128 {
    let honest = own_honest.saturating_add(others_honest);
    let with = pro_rata(
        pool,
        own_honest.saturating_add(fabricated),
        honest.saturating_add(fabricated),
    );
    let without = pro_rata(pool, own_honest, honest);
    with.saturating_sub(without)
}

/// The bound on [`fabrication_gain`]: `Π·F/(H+F)` rounded down, plus one unit for the
/// pallet's rounding.
pub fn gain_bound(pool: u128, honest: u128, fabricated: u128) -> u128 {
    pro_rata(pool, fabricated, honest.saturating_add(fabricated)).saturating_add(1)
}

/// The lowest plan price per epoch at which fabrication never pays, at any number of
/// subscriptions, when the epoch's honest credit is at least `honest`: `Π·T·c/(T·c+H)`,
/// rounded up (plus one unit for the pallet's rounding).
pub fn min_price(pool: u128, tokens_per_subscription: u32, cap: u64, honest: u128) -> u128 {
    let per_subscription = fabricated_credit(1, tokens_per_subscription, cap);
    pro_rata(
        pool,
        per_subscription,
        per_subscription.saturating_add(honest),
    )
    .saturating_add(1)
}

/// The honest credit per epoch above which fabrication cannot pay at plan price `price`:
/// `T·c·(Π/P − 1)`, rounded up; `None` when `price` is zero (it always pays).
pub fn honest_threshold(
    pool: u128,
    price: u128,
    tokens_per_subscription: u32,
    cap: u64,
) -> Option<u128> {
    if price == 0 {
        return None;
    }
    let per_subscription = fabricated_credit(1, tokens_per_subscription, cap);
    if price >= pool {
        return Some(0);
    }
    // T·c·(Π − P)/P, rounded up; saturates when the product does not fit.
    let threshold = per_subscription
        .checked_mul(pool - price)
        .map_or(u128::MAX, |n| n.div_ceil(price));
    Some(threshold)
}
