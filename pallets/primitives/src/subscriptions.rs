//! Stream subscriptions and receipt keys (PSP overview §8.2): what the subscriptions pallet
//! stores, what the `PspSubscriptionsApi` runtime API returns, and the exact bytes an oracle
//! node signs to publish its receipt keys.
//!
//! An identity holds a *subscription* to one of the runtime's [`Plan`]s for a span of epochs,
//! paid in advance into the rewards pot. Each plan stands for a [`Tier`]: the most one stream
//! receipt of that plan allows (lifetime, bitrate class, distribution nodes). Each elected
//! oracle publishes, per epoch, one RSA receipt key per tier ([`ReceiptKey`]), signed with its
//! node identity key over [`receipt_keys_message`]; landing nodes accept receipts under those
//! keys only.
//!
//! The same publication may carry one more key, of the reserved tier
//! [`Tier::CONSUMER_TOKENS`]: the oracle's *consumer-token* key for the epoch, under which it
//! blind-signs the tokens that make a consumer's usage report count toward rewards
//! (`psp-usage`). It is never a receipt key: the all-zero tier is no valid stream tier, so
//! landing nodes cannot accept receipts under it.

use crate::{
    identity::{IdentityKey, IdentitySignature},
    staking::EpochIndex,
};
use alloc::vec::Vec;
use codec::{Decode, DecodeWithMemTracking, Encode, MaxEncodedLen};
use scale_info::TypeInfo;
use sp_runtime::{traits::ConstU32, BoundedVec};

/// Index of a plan in the runtime's plan list.
pub type PlanId = u8;

/// The most plans (and so receipt keys per oracle and epoch) a runtime may offer.
pub const MAX_PLANS: u32 = 8;
/// The most keys one publication holds: one per plan, and one consumer-token key
/// ([`Tier::CONSUMER_TOKENS`]): `MAX_PLANS + 1`.
pub const MAX_PUBLISHED_KEYS: u32 = MAX_PLANS + 1;
/// The longest receipt key: the DER SubjectPublicKeyInfo of an RSA-4096 key is 550 bytes.
pub const MAX_RECEIPT_KEY_LEN: u32 = 600;
/// Domain separation tag of an oracle's receipt-key publication.
pub const RECEIPT_KEYS_CONTEXT: &[u8] = b"psp/subscriptions/receipt-keys/v1";

/// A receipt key's DER SubjectPublicKeyInfo, bounded.
pub type ReceiptKeyBytes = BoundedVec<u8, ConstU32<MAX_RECEIPT_KEY_LEN>>;
/// The keys one oracle publishes for one epoch: one per tier, the consumer-token key
/// ([`Tier::CONSUMER_TOKENS`]) included.
pub type ReceiptKeySet = BoundedVec<ReceiptKey, ConstU32<MAX_PUBLISHED_KEYS>>;

/// The most one stream receipt may allow. Bitrate classes are psp-receipts' codes (1 low,
/// 2 standard, 3 high, 4 ultra).
#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    Encode,
    Decode,
    DecodeWithMemTracking,
    MaxEncodedLen,
    TypeInfo,
)]
#[cfg_attr(feature = "std", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "std", serde(rename_all = "camelCase"))]
pub struct Tier {
    /// How long a stream may run, in seconds.
    pub lifetime_secs: u32,
    /// The bitrate class code.
    pub bitrate_class: u8,
    /// Distribution nodes a stream may start with.
    pub distribution_nodes: u8,
}

impl Tier {
    /// The reserved tier of an oracle's consumer-token key. Besides one key per plan tier, an
    /// oracle's publication for an epoch may carry one key of this tier: its consumer-token
    /// key for the epoch (`psp-usage`). All fields are zero, which no stream tier can be (a
    /// stream lives at least a second, in a bitrate class from 1, with a distribution node),
    /// so no plan has it and no landing node takes it for a receipt key.
    pub const CONSUMER_TOKENS: Tier = Tier {
        lifetime_secs: 0,
        bitrate_class: 0,
        distribution_nodes: 0,
    };

    /// Whether this is [`Tier::CONSUMER_TOKENS`].
    pub fn is_consumer_tokens(&self) -> bool {
        *self == Self::CONSUMER_TOKENS
    }
}

/// A subscription plan: a tier and its price.
#[derive(
    Clone, Debug, PartialEq, Eq, Encode, Decode, DecodeWithMemTracking, MaxEncodedLen, TypeInfo,
)]
pub struct Plan<Balance> {
    /// What each receipt of the plan may allow.
    pub tier: Tier,
    /// The price of one epoch.
    pub price_per_epoch: Balance,
}

/// An identity's subscription: a plan for the epochs `from..until`.
#[derive(
    Clone, Debug, PartialEq, Eq, Encode, Decode, DecodeWithMemTracking, MaxEncodedLen, TypeInfo,
)]
pub struct Subscription<AccountId> {
    /// The plan.
    pub plan: PlanId,
    /// The first epoch it covers.
    pub from: EpochIndex,
    /// The first epoch it no longer covers.
    pub until: EpochIndex,
    /// Who paid last.
    pub payer: AccountId,
}

impl<AccountId> Subscription<AccountId> {
    /// Whether it covers `epoch`.
    pub fn covers(&self, epoch: EpochIndex) -> bool {
        self.from <= epoch && epoch < self.until
    }
}

/// One receipt key of an oracle for one epoch.
#[derive(
    Clone, Debug, PartialEq, Eq, Encode, Decode, DecodeWithMemTracking, MaxEncodedLen, TypeInfo,
)]
pub struct ReceiptKey {
    /// The tier its receipts stand for: one of the plans' tiers.
    pub tier: Tier,
    /// The RSA public key, DER SubjectPublicKeyInfo (2048, 3072 or 4096 bits, e = 65537).
    pub public_key: ReceiptKeyBytes,
    /// Unix seconds from which landing nodes refuse receipts under it.
    pub expires_at: u64,
}

/// The bytes an oracle's node key signs to publish `keys` for `epoch` on the chain with
/// genesis hash `genesis`.
pub fn receipt_keys_message(
    genesis: &[u8; 32],
    epoch: EpochIndex,
    oracle: &IdentityKey,
    keys: &[ReceiptKey],
) -> Vec<u8> {
    let mut message = Vec::with_capacity(RECEIPT_KEYS_CONTEXT.len() + 72 + keys.len() * 320);
    message.extend_from_slice(RECEIPT_KEYS_CONTEXT);
    message.extend_from_slice(genesis);
    message.extend_from_slice(&epoch.to_le_bytes());
    message.extend_from_slice(oracle);
    keys.encode_to(&mut message);
    message
}

/// A publication as the pallet's unsigned call carries it.
#[derive(
    Clone, Debug, PartialEq, Eq, Encode, Decode, DecodeWithMemTracking, MaxEncodedLen, TypeInfo,
)]
pub struct ReceiptKeyPublication {
    /// The epoch the keys sign receipts in.
    pub epoch: EpochIndex,
    /// The oracle's node identity key.
    pub oracle: IdentityKey,
    /// One key per tier, and at most one consumer-token key ([`Tier::CONSUMER_TOKENS`]).
    pub keys: ReceiptKeySet,
    /// The oracle's signature over [`receipt_keys_message`].
    pub signature: IdentitySignature,
}

/// One oracle's keys for an epoch, as the runtime API returns them.
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode, TypeInfo)]
pub struct OracleReceiptKeys {
    /// The oracle's node identity key.
    pub oracle: IdentityKey,
    /// Its keys, its consumer-token key ([`Tier::CONSUMER_TOKENS`]) among them if it
    /// published one.
    pub keys: Vec<ReceiptKey>,
}

/// An identity's subscription, as the runtime API returns it.
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode, TypeInfo)]
pub struct SubscriptionInfo<AccountId, Balance> {
    /// The subscription.
    pub subscription: Subscription<AccountId>,
    /// Its plan.
    pub plan: Plan<Balance>,
    /// Whether it covers the current epoch.
    pub active: bool,
}

/// The plans and rules, as the runtime API returns them.
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode, TypeInfo)]
pub struct SubscriptionsStatus<AccountId, Balance> {
    /// The current epoch.
    pub current_epoch: EpochIndex,
    /// The plans, by [`PlanId`].
    pub plans: Vec<Plan<Balance>>,
    /// Receipts one subscription may draw per epoch, over all oracles together.
    pub receipts_per_epoch: u32,
    /// Where payments go: the rewards pot.
    pub pot: AccountId,
}

/// The identities that may hold a subscription, as the subscriptions pallet sees them.
pub trait SubscriberRegistry<AccountId> {
    /// Whether `key` is an active client identity.
    fn is_active_client(key: &IdentityKey) -> bool;

    /// Puts an active client identity owned by `owner` in place without a proof or deposit.
    /// For benchmarks and tests of pallets that depend on the registry; never call it from a
    /// dispatchable.
    fn insert_client_unchecked(owner: &AccountId, key: IdentityKey);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(tier: u8) -> ReceiptKey {
        ReceiptKey {
            tier: Tier {
                lifetime_secs: 3_600,
                bitrate_class: tier,
                distribution_nodes: 4,
            },
            public_key: BoundedVec::truncate_from(alloc::vec![tier; 294]),
            expires_at: 1_700_000_000,
        }
    }

    #[test]
    fn the_message_binds_chain_epoch_oracle_and_every_key() {
        let base = receipt_keys_message(&[1; 32], 7, &[2; 32], &[key(1), key(2)]);
        assert!(base.starts_with(RECEIPT_KEYS_CONTEXT));
        for other in [
            receipt_keys_message(&[9; 32], 7, &[2; 32], &[key(1), key(2)]),
            receipt_keys_message(&[1; 32], 8, &[2; 32], &[key(1), key(2)]),
            receipt_keys_message(&[1; 32], 7, &[3; 32], &[key(1), key(2)]),
            receipt_keys_message(&[1; 32], 7, &[2; 32], &[key(1)]),
            receipt_keys_message(&[1; 32], 7, &[2; 32], &[key(2), key(1)]),
        ] {
            assert_ne!(base, other);
        }
    }

    #[test]
    fn the_consumer_token_tier_is_all_zero_and_a_set_holds_one_beyond_the_plans() {
        assert!(Tier::CONSUMER_TOKENS.is_consumer_tokens());
        assert!(!key(1).tier.is_consumer_tokens());
        assert_eq!(
            Tier::CONSUMER_TOKENS,
            Tier {
                lifetime_secs: 0,
                bitrate_class: 0,
                distribution_nodes: 0
            }
        );
        let mut keys: Vec<ReceiptKey> = (1..=MAX_PLANS as u8).map(key).collect();
        keys.push(ReceiptKey {
            tier: Tier::CONSUMER_TOKENS,
            ..key(0)
        });
        let set: Result<ReceiptKeySet, _> = keys.try_into();
        assert!(set.is_ok(), "a full plan set plus the token key fits");
    }

    #[test]
    fn a_subscription_covers_its_half_open_span() {
        let s = Subscription {
            plan: 0,
            from: 3,
            until: 5,
            payer: (),
        };
        assert!(!s.covers(2));
        assert!(s.covers(3) && s.covers(4));
        assert!(!s.covers(5));
    }
}
