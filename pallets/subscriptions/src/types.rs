//! Why a receipt-key publication is refused. The same checks run in the transaction pool
//! (`validate_unsigned`) and at dispatch; this type maps each refusal to both a transaction
//! validity error and a dispatch error.

use crate::{Config, Error};
use frame_support::pallet_prelude::InvalidTransaction;

/// A refused receipt-key publication.
///
/// In the transaction pool a refusal is an [`InvalidTransaction`]:
///
/// | refusal | validity error | dispatch error |
/// |---|---|---|
/// | [`StaleEpoch`](Self::StaleEpoch) | `Stale` | `WrongEpoch` |
/// | [`FutureEpoch`](Self::FutureEpoch) | `Future` | `WrongEpoch` |
/// | [`AlreadyPublished`](Self::AlreadyPublished) | `Stale` | `AlreadyPublished` |
/// | [`BadSignature`](Self::BadSignature) | `BadProof` | `BadSignature` |
/// | [`NotAnOracle`](Self::NotAnOracle) | `Custom(1)` | `NotAnOracle` |
/// | [`NoKeys`](Self::NoKeys) | `Custom(2)` | `NoKeys` |
/// | [`TierNotInPlans`](Self::TierNotInPlans) | `Custom(3)` | `TierNotInPlans` |
/// | [`DuplicateTier`](Self::DuplicateTier) | `Custom(4)` | `DuplicateTier` |
/// | [`BadExpiry`](Self::BadExpiry) | `Custom(5)` | `BadExpiry` |
/// | [`EmptyKey`](Self::EmptyKey) | `Custom(6)` | `EmptyKey` |
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PublicationError {
    /// The epoch is before the current one.
    StaleEpoch,
    /// The epoch is after the next one.
    FutureEpoch,
    /// The key is not an oracle elected for the epoch.
    NotAnOracle,
    /// The oracle already published for the epoch.
    AlreadyPublished,
    /// No key.
    NoKeys,
    /// A key's tier is neither a plan's tier nor the consumer-token tier.
    TierNotInPlans,
    /// Two keys of the same tier (two consumer-token keys included).
    DuplicateTier,
    /// A key expires now or earlier, or later than `MaxKeyLifetime` from now.
    BadExpiry,
    /// A key is empty.
    EmptyKey,
    /// The oracle's signature does not verify.
    BadSignature,
}

/// `InvalidTransaction::Custom` code of [`PublicationError::NotAnOracle`].
pub const INVALID_NOT_AN_ORACLE: u8 = 1;
/// `InvalidTransaction::Custom` code of [`PublicationError::NoKeys`].
pub const INVALID_NO_KEYS: u8 = 2;
/// `InvalidTransaction::Custom` code of [`PublicationError::TierNotInPlans`].
pub const INVALID_TIER_NOT_IN_PLANS: u8 = 3;
/// `InvalidTransaction::Custom` code of [`PublicationError::DuplicateTier`].
pub const INVALID_DUPLICATE_TIER: u8 = 4;
/// `InvalidTransaction::Custom` code of [`PublicationError::BadExpiry`].
pub const INVALID_BAD_EXPIRY: u8 = 5;
/// `InvalidTransaction::Custom` code of [`PublicationError::EmptyKey`].
pub const INVALID_EMPTY_KEY: u8 = 6;

impl PublicationError {
    /// The refusal in the transaction pool.
    pub fn invalid_transaction(self) -> InvalidTransaction {
        match self {
            Self::StaleEpoch | Self::AlreadyPublished => InvalidTransaction::Stale,
            Self::FutureEpoch => InvalidTransaction::Future,
            Self::BadSignature => InvalidTransaction::BadProof,
            Self::NotAnOracle => InvalidTransaction::Custom(INVALID_NOT_AN_ORACLE),
            Self::NoKeys => InvalidTransaction::Custom(INVALID_NO_KEYS),
            Self::TierNotInPlans => InvalidTransaction::Custom(INVALID_TIER_NOT_IN_PLANS),
            Self::DuplicateTier => InvalidTransaction::Custom(INVALID_DUPLICATE_TIER),
            Self::BadExpiry => InvalidTransaction::Custom(INVALID_BAD_EXPIRY),
            Self::EmptyKey => InvalidTransaction::Custom(INVALID_EMPTY_KEY),
        }
    }

    /// The refusal at dispatch.
    pub fn dispatch_error<T: Config>(self) -> Error<T> {
        match self {
            Self::StaleEpoch | Self::FutureEpoch => Error::WrongEpoch,
            Self::NotAnOracle => Error::NotAnOracle,
            Self::AlreadyPublished => Error::AlreadyPublished,
            Self::NoKeys => Error::NoKeys,
            Self::TierNotInPlans => Error::TierNotInPlans,
            Self::DuplicateTier => Error::DuplicateTier,
            Self::BadExpiry => Error::BadExpiry,
            Self::EmptyKey => Error::EmptyKey,
            Self::BadSignature => Error::BadSignature,
        }
    }
}
