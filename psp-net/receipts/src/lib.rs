//! # psp-receipts: anonymous stream-creation receipts (PSP overview §8.2, issue 13 point 2)
//!
//! ## Overview
//!
//! Alice proves her identity to an elected oracle over a circuit; the oracle checks her
//! subscription on chain and signs, *blindly*, a receipt for the stream parameters her
//! subscription allows. Later, over a fresh anonymous circuit, she hands the receipt to any
//! landing node, which checks it against the oracle keys published on chain and creates the
//! stream without learning who she is. The oracle never sees the receipt it signed, so it cannot
//! link the receipt it later meets (if ever) to the issuance.
//!
//! The blind signature is RSA per RFC 9474, variant RSABSSA-SHA384-PSS-Randomized
//! ([`blind_rsa`]): a receipt's signature is an ordinary RSA-PSS signature that anyone holding
//! the public key verifies. Blind Schnorr is deliberately not used: concurrent sessions of it
//! are broken by the ROS attack (Benhamouda et al., 2021).
//!
//! ## Terminology
//!
//! - *Tier*: the ceiling [`StreamParams`] a receipt key stands for. Each oracle publishes, per
//!   epoch, one key per tier. A blind signer cannot see what it signs, so the parameters inside
//!   a receipt are bounded by the key's tier, which the verifier checks, not by the oracle's
//!   look at the request.
//! - *Key id*: SHA-256 of the domain-separated public key ([`KeyId`]).
//! - *Spend id*: the receipt's 32 random bytes, chosen by the client; a landing node accepts
//!   each one once ([`SpendId`]).
//!
//! ## Interface
//!
//! - Client: [`ReceiptRequest::new`] (prepare and blind), [`ReceiptRequest::finalize`].
//! - Oracle: [`Issuer::issue`] (allowance, tier, shared per-subscription bound, blind
//!   signature), [`Issuer::counts`] / [`Issuer::merge`] to share issued counts (a G-counter
//!   CRDT) with the other oracles.
//! - Landing node: [`Verifier::verify`], [`Verifier::spend`].
//! - Wire: [`Receipt::encode`] / [`Receipt::decode`], [`Counts::encode`] / [`Counts::decode`].
//!
//! Everything is sans IO: no sockets, no clock, no chain access. Time comes in as arguments
//! (epoch numbers for the oracle, Unix seconds for the landing node); the published keys come
//! in from whoever reads the chain.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod blind_rsa;
pub mod issuer;
pub mod receipt;
pub mod verifier;

mod wire;

pub use blind_rsa::{
    BlindSignature, BlindedMessage, BlindingSecret, KeySize, PublicKey, SigningKey,
};
pub use issuer::{CountEntry, Counts, Issuer, IssuerConfig, MergeReport, OracleId, SubscriptionId};
pub use receipt::{
    BitrateClass, KeyId, PublishedKey, Receipt, ReceiptRequest, SpendId, StreamParams,
};
pub use verifier::{VerifiedReceipt, Verifier, VerifierConfig};

/// Errors of blind RSA, receipts, issuing and verification.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ReceiptError {
    /// OpenSSL reported an error (allocation, key parsing, random numbers).
    #[error("OpenSSL failed in {operation}: {detail}")]
    Crypto {
        /// What was being done.
        operation: &'static str,
        /// OpenSSL's error stack, as text.
        detail: String,
    },
    /// The RSA key is not 2048, 3072 or 4096 bits.
    #[error("RSA modulus of {bits} bits; receipt keys are 2048, 3072 or 4096 bits")]
    UnsupportedKeySize {
        /// The modulus length found.
        bits: u32,
    },
    /// The RSA public exponent is not 65537.
    #[error("RSA public exponent is not 65537")]
    UnsupportedExponent,
    /// A private key whose components do not form a valid RSA key.
    #[error("RSA private key is inconsistent")]
    InvalidPrivateKey,
    /// A byte string has the wrong length for this key.
    #[error("{what} is {got} bytes, expected {expected}")]
    WrongLength {
        /// Which input.
        what: &'static str,
        /// Length for this key.
        expected: usize,
        /// Length given.
        got: usize,
    },
    /// The encoded message shares a factor with the modulus (RFC 9474 §4.2 step 4).
    #[error("encoded message is not coprime to the modulus")]
    NotCoprime,
    /// The blinded message is not smaller than the modulus (RFC 9474 §4.3 step 2).
    #[error("blinded message is not smaller than the modulus")]
    BlindedMessageOutOfRange,
    /// The private operation's result did not verify: a fault; nothing is returned
    /// (RFC 9474 §4.3 step 4).
    #[error("blind signature failed its own check (signing fault)")]
    SigningFault,
    /// An RSA-PSS signature does not verify under the key.
    #[error("signature does not verify under key {key_id}")]
    BadSignature {
        /// The key it was checked against.
        key_id: KeyId,
    },
    /// Truncated input.
    #[error("truncated {what}: {needed} more bytes needed at offset {offset}")]
    Truncated {
        /// What was being decoded.
        what: &'static str,
        /// Where it ended.
        offset: usize,
        /// How many more bytes the field needs.
        needed: usize,
    },
    /// Bytes after the end of a receipt or counts message.
    #[error("{extra} trailing bytes after {what}")]
    TrailingBytes {
        /// What was decoded.
        what: &'static str,
        /// How many bytes were left.
        extra: usize,
    },
    /// A wire version this code does not know.
    #[error("unsupported {what} version {version}")]
    UnsupportedVersion {
        /// What was decoded.
        what: &'static str,
        /// The version byte.
        version: u8,
    },
    /// A bitrate class code this code does not know.
    #[error("unknown bitrate class code {0}")]
    UnknownBitrateClass(u8),
    /// A field outside its bounds.
    #[error("{field} = {value} is outside {min}..={max}")]
    OutOfBounds {
        /// The field.
        field: &'static str,
        /// Its value.
        value: u64,
        /// Smallest allowed.
        min: u64,
        /// Largest allowed.
        max: u64,
    },
    /// The oracle has no receipt key for this epoch.
    #[error("no receipt key installed for epoch {epoch}")]
    NoKeyForEpoch {
        /// The epoch asked for.
        epoch: u64,
    },
    /// The requested parameters exceed the subscription's allowance.
    #[error("requested {requested} exceeds the subscription's allowance {allowed}")]
    BeyondAllowance {
        /// What was asked for.
        requested: StreamParams,
        /// What the subscription allows.
        allowed: StreamParams,
    },
    /// The oracle has no key whose tier is exactly the requested parameters.
    #[error("no receipt key for tier {requested} in epoch {epoch}")]
    NoSuchTier {
        /// What was asked for.
        requested: StreamParams,
        /// The epoch.
        epoch: u64,
    },
    /// Too many keys (tiers per epoch at an oracle, or published keys at a verifier).
    #[error("too many receipt keys: at most {max}")]
    TooManyKeys {
        /// The bound.
        max: usize,
    },
    /// A key is installed twice, or two keys of one epoch share a tier.
    #[error("duplicate receipt key or tier")]
    DuplicateKey,
    /// The subscription has drawn its receipts for the epoch, counting every oracle's issues.
    #[error("subscription {subscription} has {issued} receipts in epoch {epoch}, bound {bound}")]
    SubscriptionExhausted {
        /// The subscription.
        subscription: SubscriptionId,
        /// The epoch.
        epoch: u64,
        /// Receipts issued so far, summed over oracles.
        issued: u64,
        /// The per-subscription bound.
        bound: u32,
    },
    /// The oracle already tracks as many subscriptions as it may for this epoch.
    #[error("already tracking {max} subscriptions in epoch {epoch}; try another oracle or epoch")]
    SubscriptionTableFull {
        /// The epoch.
        epoch: u64,
        /// The bound.
        max: usize,
    },
    /// The receipt's key id is not among the published keys.
    #[error("unknown receipt key {key_id}")]
    UnknownKey {
        /// The key id in the receipt.
        key_id: KeyId,
    },
    /// The receipt names an epoch other than its key's.
    #[error("receipt names epoch {receipt_epoch}, its key is for epoch {key_epoch}")]
    WrongEpoch {
        /// Epoch in the receipt.
        receipt_epoch: u64,
        /// Epoch the key was published for.
        key_epoch: u64,
    },
    /// The receipt's key has expired.
    #[error("receipt expired at {expires_at}, now is {now}")]
    Expired {
        /// Expiry (Unix seconds).
        expires_at: u64,
        /// Current time (Unix seconds).
        now: u64,
    },
    /// The receipt's parameters exceed its key's tier.
    #[error("receipt parameters {params} exceed the key's tier {tier}")]
    BeyondTier {
        /// Parameters in the receipt.
        params: StreamParams,
        /// The key's tier.
        tier: StreamParams,
    },
    /// The receipt was spent before.
    #[error("receipt {spend_id} already spent")]
    AlreadySpent {
        /// Its spend id.
        spend_id: SpendId,
    },
    /// The spent set is full of unexpired receipts.
    #[error("spent set full ({max} unexpired receipts); refusing until some expire")]
    SpentSetFull {
        /// The bound.
        max: usize,
    },
}

impl ReceiptError {
    pub(crate) fn crypto(
        operation: &'static str,
    ) -> impl FnOnce(openssl::error::ErrorStack) -> Self {
        move |e| ReceiptError::Crypto {
            operation,
            detail: e.to_string(),
        }
    }
}

#[cfg(test)]
mod tests;
