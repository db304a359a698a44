//! Consumer tokens: issued blindly within the per-subscription bound shared by the oracles,
//! checked against the epoch's token keys and bound to one session; and the fabrication
//! bound, computed with the pallet's own pro-rata rule.

mod common;

use common::*;
use proptest::prelude::*;
use psp_primitives::rewards::session_id_of;
use psp_receipts::{KeySize, ReceiptError, SigningKey, SubscriptionId};
use psp_usage::token::bound::{
    fabricated_credit, fabrication_gain, gain_bound, min_price, session_cap_bytes,
};
use psp_usage::token::{ConsumerToken, TokenKey, TokenKeys, TokenRequest, MAX_TOKEN_LEN};
use psp_usage::UsageError;

fn keys() -> TokenKeys {
    TokenKeys::new(u64::from(EPOCH), (0..3).map(token_key).collect()).unwrap()
}

#[test]
fn a_token_backs_exactly_its_session_and_epoch() {
    let mut issuer = token_issuer(0);
    let key = session_key(1);
    let session = session_id_of(&key.public());
    let token = token_for(&mut issuer, 1, &key);
    let keys = keys();
    assert_eq!(keys.verify(u64::from(EPOCH), &session, &token), Ok(()));
    // Another session (a relay moving a real consumer's token to a session it made up).
    let other = session_id_of(&session_key(2).public());
    assert!(matches!(
        keys.verify(u64::from(EPOCH), &other, &token),
        Err(UsageError::TokenMismatch { .. })
    ));
    // Another epoch: tokens do not carry over.
    assert!(matches!(
        keys.verify(u64::from(EPOCH) + 1, &session, &token),
        Err(UsageError::TokenMismatch { .. })
    ));
    // The session field rewritten to match: the signature no longer verifies.
    let mut moved = token.clone();
    moved.session = other;
    assert!(matches!(
        keys.verify(u64::from(EPOCH), &other, &moved),
        Err(UsageError::Token(ReceiptError::BadSignature { .. }))
    ));
    // A flipped signature bit.
    let mut bad = token.clone();
    bad.signature[10] ^= 1;
    assert!(matches!(
        keys.verify(u64::from(EPOCH), &session, &bad),
        Err(UsageError::Token(ReceiptError::BadSignature { .. }))
    ));
}

#[test]
fn a_key_that_is_not_a_token_key_of_the_epoch_is_refused() {
    // A client blind-signed under a key nobody published as a token key (for example an
    // oracle's stream-receipt key): refused before any RSA work.
    let stray = SigningKey::generate(KeySize::Rsa2048).unwrap();
    let stray_public = TokenKey {
        public: stray.public_key().clone(),
        epoch: u64::from(EPOCH),
        oracle: node(&oracle_key(0)),
    };
    let mut issuer = psp_usage::TokenIssuer::new(node(&oracle_key(0)), TOKENS, 10);
    issuer.install_key(u64::from(EPOCH), stray).unwrap();
    let key = session_key(3);
    let (request, blinded) =
        TokenRequest::new(&stray_public, session_id_of(&key.public())).unwrap();
    let sig = issuer
        .issue(u64::from(EPOCH), SubscriptionId([3; 32]), &blinded)
        .unwrap();
    let token = request.finalize(&sig).unwrap();
    assert!(matches!(
        keys().verify(u64::from(EPOCH), &session_id_of(&key.public()), &token),
        Err(UsageError::UnknownTokenKey { .. })
    ));
    // A key set mixing epochs is refused.
    let mut wrong_epoch = token_key(0);
    wrong_epoch.epoch += 1;
    assert!(TokenKeys::new(u64::from(EPOCH), vec![wrong_epoch]).is_err());
}

#[test]
fn a_subscription_draws_at_most_t_tokens_per_epoch_over_all_oracles() {
    let mut a = token_issuer(0);
    let mut b = token_issuer(1);
    let sub = SubscriptionId([42; 32]);
    let draw = |issuer: &mut psp_usage::TokenIssuer, key_index: u8, i: u32| {
        let session = session_id_of(&session_key(100 + i).public());
        let (_, blinded) = TokenRequest::new(&token_key(key_index), session).unwrap();
        issuer.issue(u64::from(EPOCH), sub, &blinded)
    };
    // Half the bound from each oracle, exchanging counts in between.
    for i in 0..TOKENS / 2 {
        draw(&mut a, 0, i).unwrap();
    }
    for counts in a.counts(u64::from(EPOCH)) {
        b.merge(u64::from(EPOCH), &counts);
    }
    for i in TOKENS / 2..TOKENS {
        draw(&mut b, 1, i).unwrap();
    }
    assert_eq!(b.issued(u64::from(EPOCH), &sub), u64::from(TOKENS));
    assert!(matches!(
        draw(&mut b, 1, 99),
        Err(UsageError::Token(
            ReceiptError::SubscriptionExhausted { .. }
        ))
    ));
    for counts in b.counts(u64::from(EPOCH)) {
        a.merge(u64::from(EPOCH), &counts);
    }
    assert!(matches!(
        draw(&mut a, 0, 98),
        Err(UsageError::Token(
            ReceiptError::SubscriptionExhausted { .. }
        ))
    ));
    // Another subscription is unaffected; the next epoch has no key yet.
    let other = SubscriptionId([43; 32]);
    let (_, blinded) =
        TokenRequest::new(&token_key(0), session_id_of(&session_key(5).public())).unwrap();
    assert!(a.issue(u64::from(EPOCH), other, &blinded).is_ok());
    assert!(matches!(
        a.issue(u64::from(EPOCH) + 1, other, &blinded),
        Err(UsageError::Token(ReceiptError::NoKeyForEpoch { .. }))
    ));
}

#[test]
fn tokens_round_trip_and_decode_strictly() {
    let mut issuer = token_issuer(0);
    let token = token_for(&mut issuer, 7, &session_key(7));
    let bytes = token.encode();
    assert_eq!(bytes.len(), 107 + 256);
    assert!(bytes.len() <= MAX_TOKEN_LEN);
    assert_eq!(ConsumerToken::decode(&bytes), Ok(token));
    let mut bad_len = bytes.clone();
    bad_len[105..107].copy_from_slice(&255u16.to_be_bytes());
    assert!(matches!(
        ConsumerToken::decode(&bad_len),
        Err(UsageError::OutOfBounds { value: 255, .. })
    ));
    assert!(ConsumerToken::decode(&bytes[..bytes.len() - 1]).is_err());
}

// --- the fabrication bound (see `token::bound` and the README)

/// The runtime: 30-second epochs (10 blocks of 3 s), 4 MB/s and 120 MB per session and
/// epoch, 16 tokens per subscription, 0.5 milli-UNIT per gigabyte, a 1-UNIT pool and a
/// 1-milli-UNIT standard plan (`runtime/src/lib.rs`, which asserts the bound at compile time).
const EPOCH_MS: u64 = 30_000;
const MAX_BYTES_PER_SECOND: u64 = 4_000_000;
const MAX_SESSION_BYTES: u64 = 120_000_000;
const T: u32 = 16;
const RATE: u128 = 500_000_000;
const POOL: u128 = 1_000_000_000_000;
const PLAN_PRICE: u128 = 1_000_000_000;

#[test]
fn with_the_runtimes_constants_fabricated_consumers_cost_more_than_they_earn() {
    // c = 4 MB/s × 30 s = 120 MB per session and epoch; T·c = 1.92 GB per subscription.
    let c = session_cap_bytes(MAX_BYTES_PER_SECOND, MAX_SESSION_BYTES, EPOCH_MS);
    assert_eq!(c, 120_000_000);
    // A stalled chain's longer epoch credits no more.
    assert_eq!(
        session_cap_bytes(MAX_BYTES_PER_SECOND, MAX_SESSION_BYTES, 10 * EPOCH_MS),
        c
    );
    assert_eq!(fabricated_credit(1, T, c), 1_920_000_000);
    // r·T·c = 0.5 mUNIT/GB × 1.92 GB = 0.96 mUNIT: the plan's 1 mUNIT is enough.
    let price = min_price(RATE, T, c);
    assert_eq!(price, 960_000_003);
    assert!(price <= PLAN_PRICE);
    // Whatever the honest traffic — none, 10 GB, 10 TB (the pool then full) — and however
    // much of it is the relay's own, S subscriptions earn less than they cost.
    for honest in [0u128, 10_000_000_000, 10_000_000_000_000] {
        for own in [0, honest / 10, honest] {
            for s in [1u64, 10, 1_000, 100_000] {
                let fabricated = fabricated_credit(s, T, c);
                let gain = fabrication_gain(POOL, RATE, own, honest - own, fabricated);
                let cost = u128::from(s) * PLAN_PRICE;
                assert!(
                    gain < cost,
                    "H {honest}, h {own}, S {s}: gain {gain} ≥ cost {cost}"
                );
                assert!(gain <= gain_bound(RATE, fabricated));
            }
        }
    }
    // With no honest traffic, one subscription's 16 fabricated sessions earn exactly r·T·c.
    let one = fabrication_gain(POOL, RATE, 0, 0, fabricated_credit(1, T, c));
    assert_eq!(one, 960_000_000);
}

#[test]
fn without_the_rate_cap_fabrication_would_pay_with_the_same_prices() {
    // The rule before the rate cap (pool always Π): with 10 GB of honest traffic, one
    // subscription would earn about 160 times its price.
    let c = session_cap_bytes(MAX_BYTES_PER_SECOND, MAX_SESSION_BYTES, EPOCH_MS);
    let unlimited = u128::MAX;
    let gain = fabrication_gain(
        POOL,
        unlimited,
        0,
        10_000_000_000,
        fabricated_credit(1, T, c),
    );
    assert!(gain > 150 * PLAN_PRICE, "gain {gain}");
    assert!(gain > gain_bound(RATE, fabricated_credit(1, T, c)));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2_000))]

    /// For any pool, rate, tokens, cap, honest traffic (the relay's own share of it included)
    /// and number of subscriptions: at the minimum price, what fabricated consumers earn under
    /// the pallet's rate-limited pro rata is at most what they cost, and never more than the
    /// bound.
    #[test]
    fn fabricated_consumers_cost_at_least_what_they_earn(
        pool in 1u128..=1_000_000_000_000_000_000,
        rate in 1u128..=1_000_000_000_000_000,
        tokens in 1u32..=64,
        cap in 1u64..=10_000_000_000,
        honest in 0u128..=100_000_000_000_000,
        own_part in 0u32..=1_000,
        subscriptions in 1u64..=10_000,
    ) {
        let own = honest * u128::from(own_part) / 1_000;
        let price = min_price(rate, tokens, cap);
        let fabricated = fabricated_credit(subscriptions, tokens, cap);
        let gain = fabrication_gain(pool, rate, own, honest - own, fabricated);
        prop_assert!(gain <= u128::from(subscriptions) * price);
        prop_assert!(gain <= gain_bound(rate, fabricated));
        prop_assert!(gain <= pool);
        // Using fewer tokens than allowed earns no more.
        let partial = fabrication_gain(pool, rate, own, honest - own, fabricated / 2);
        prop_assert!(partial <= gain);
    }
}
