//! Consumer tokens: what makes a session count toward rewards (issue 14, point 2).
//!
//! Puzzles and tickets cost a relay nothing it cannot pay with CPU time, so a relay could
//! invent consumers, meter traffic to itself and sign both halves. A session therefore counts
//! only when its client half carries a *consumer token*: an RFC 9474 blind RSA signature,
//! drawn from a paid subscription, over
//!
//! ```text
//! prefix ‖ TOKEN_CONTEXT ‖ version ‖ key id ‖ epoch ‖ session id
//! ```
//!
//! The oracle that issues it sees the subscription (the client proved it holds one) but not
//! the session id inside the blinded message, so the token cannot be linked back to the
//! subscription. Binding the session id means one token backs one session in one epoch; a
//! relay cannot move a consumer's token to a session it made up (it would need the session
//! key to sign the client half).
//!
//! Issuing reuses `psp-receipts` as it is: [`TokenIssuer`] wraps its [`Issuer`] (key per
//! epoch, the blind signature with its own fault check, and the per-subscription bound shared
//! between oracles as a G-counter CRDT, [`TokenIssuer::counts`] / [`TokenIssuer::merge`]).
//! Tokens use their own keys — one per oracle and epoch, published as consumer-token keys,
//! never as receipt keys — and their own issuer and counters, so a token and a stream receipt
//! are never interchangeable and the two bounds are counted apart. The receipts issuer's
//! *tier* has no meaning for tokens: every token key is installed under the single
//! placeholder [`TOKEN_TIER`].
//!
//! The bound this buys is derived in [`bound`] and in the crate README.
//!
//! Token wire format (big-endian), 363 bytes with a 2048-bit key:
//!
//! | offset | len | field |
//! |---|---|---|
//! | 0 | 1 | version (1) |
//! | 1 | 32 | key id (psp-receipts' SHA-256 key id) |
//! | 33 | 8 | epoch |
//! | 41 | 32 | session id |
//! | 73 | 32 | RFC 9474 message prefix |
//! | 105 | 2 | signature length (256, 384 or 512) |
//! | 107 | 256/384/512 | RSA-PSS signature |

pub mod bound;

use std::collections::HashMap;

use psp_onion::bytes::Reader;
use psp_onion::crypto::NodeId;
use psp_primitives::rewards::SessionId;
use psp_receipts::blind_rsa::{self, PREFIX_LEN};
use psp_receipts::{
    BitrateClass, BlindSignature, BlindedMessage, BlindingSecret, Counts, Issuer, IssuerConfig,
    KeyId, KeySize, MergeReport, OracleId, PublicKey, SigningKey, StreamParams, SubscriptionId,
};

use crate::error::short;
use crate::ticket::finish;
use crate::UsageError;

/// Domain separation of the token message.
pub const TOKEN_CONTEXT: &[u8] = b"psp/usage/consumer-token/v1";
/// Wire version of tokens.
pub const TOKEN_VERSION: u8 = 1;
/// The signed body: version 1 + key id 32 + epoch 8 + session 32.
pub const TOKEN_BODY_LEN: usize = 1 + 32 + 8 + 32;
/// Everything before the signature: body + prefix 32 + signature length 2.
pub const TOKEN_HEADER_LEN: usize = TOKEN_BODY_LEN + PREFIX_LEN + 2;
/// Longest token: header + a 4096-bit signature.
pub const MAX_TOKEN_LEN: usize = TOKEN_HEADER_LEN + KeySize::Rsa4096.modulus_len();
/// Tokens per subscription and epoch, over all oracles together, by default: as many as the
/// runtime's stream receipts (`ReceiptsPerEpoch`), a household's worth of viewing sessions.
pub const DEFAULT_TOKENS_PER_SUBSCRIPTION: u32 = 16;

/// The placeholder tier every token key is installed under in the wrapped receipts issuer.
pub const TOKEN_TIER: StreamParams = StreamParams {
    lifetime_secs: 1,
    bitrate: BitrateClass::Low,
    distribution_nodes: 1,
};

/// A consumer-token key as the chain publishes it: an oracle's RSA key for one epoch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenKey {
    /// The RSA public key.
    pub public: PublicKey,
    /// The epoch whose tokens it signs.
    pub epoch: u64,
    /// The oracle that holds the private half.
    pub oracle: NodeId,
}

impl TokenKey {
    /// The key's id.
    pub fn key_id(&self) -> KeyId {
        self.public.key_id()
    }
}

/// A consumer token, as decoded: *not checked* (see [`TokenKeys::verify`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConsumerToken {
    /// The signing key's id.
    pub key_id: KeyId,
    /// The epoch it counts in.
    pub epoch: u64,
    /// The session it backs.
    pub session: SessionId,
    /// RFC 9474's random message prefix.
    pub prefix: [u8; PREFIX_LEN],
    /// The RSA-PSS signature, modulus length.
    pub signature: Vec<u8>,
}

fn body(key_id: &KeyId, epoch: u64, session: &SessionId) -> [u8; TOKEN_BODY_LEN] {
    let mut out = [0u8; TOKEN_BODY_LEN];
    out[0] = TOKEN_VERSION;
    out[1..33].copy_from_slice(&key_id.0);
    out[33..41].copy_from_slice(&epoch.to_be_bytes());
    out[41..73].copy_from_slice(session);
    out
}

fn signing_message(key_id: &KeyId, epoch: u64, session: &SessionId) -> Vec<u8> {
    [TOKEN_CONTEXT, &body(key_id, epoch, session)[..]].concat()
}

impl ConsumerToken {
    /// The prepared message the signature covers: prefix, domain string, body.
    pub fn signed_message(&self) -> Vec<u8> {
        [
            &self.prefix[..],
            &signing_message(&self.key_id, self.epoch, &self.session),
        ]
        .concat()
    }

    /// Its encoded length.
    pub fn encoded_len(&self) -> usize {
        TOKEN_HEADER_LEN + self.signature.len()
    }

    /// Appends the wire encoding to `out`.
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&body(&self.key_id, self.epoch, &self.session));
        out.extend_from_slice(&self.prefix);
        // Bounded by construction (decode, finalize); saturating keeps encoding total, and an
        // overlong signature would not decode or verify anyway.
        let len = u16::try_from(self.signature.len()).unwrap_or(u16::MAX);
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(&self.signature);
    }

    /// The wire encoding.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.encoded_len());
        self.encode_into(&mut out);
        out
    }

    pub(crate) fn read(r: &mut Reader<'_>, what: &'static str) -> Result<Self, UsageError> {
        let t = UsageError::truncated(what);
        let version = r.u8().map_err(&t)?;
        if version != TOKEN_VERSION {
            return Err(UsageError::UnsupportedVersion { what, version });
        }
        let key_id = KeyId(r.array().map_err(&t)?);
        let epoch = r.u64().map_err(&t)?;
        let session = r.array().map_err(&t)?;
        let prefix = r.array().map_err(&t)?;
        let len = usize::from(r.u16().map_err(&t)?);
        if KeySize::from_modulus_len(len).is_none() {
            return Err(UsageError::OutOfBounds {
                field: "token signature length (256, 384 or 512)",
                value: len as u64,
                min: KeySize::Rsa2048.modulus_len() as u64,
                max: KeySize::Rsa4096.modulus_len() as u64,
            });
        }
        let signature = r.take(len).map_err(&t)?.to_vec();
        Ok(ConsumerToken {
            key_id,
            epoch,
            session,
            prefix,
            signature,
        })
    }

    /// Strict decoding: version, a signature length of a supported key size, no trailing
    /// bytes. Checks no signature.
    pub fn decode(bytes: &[u8]) -> Result<Self, UsageError> {
        const WHAT: &str = "consumer token";
        let mut r = Reader::new(bytes);
        let token = Self::read(&mut r, WHAT)?;
        finish(&r, WHAT)?;
        Ok(token)
    }
}

/// The client's side of one token issuance: what it blinded and the secret to unblind with.
#[derive(Debug)]
pub struct TokenRequest {
    public: PublicKey,
    epoch: u64,
    session: SessionId,
    prefix: [u8; PREFIX_LEN],
    prepared: Vec<u8>,
    secret: BlindingSecret,
}

impl TokenRequest {
    /// Prepares and blinds a token for `session` under an oracle's token `key`. Send the
    /// [`BlindedMessage`] to that oracle (over the channel where the subscription is proved);
    /// keep the request.
    pub fn new(key: &TokenKey, session: SessionId) -> Result<(Self, BlindedMessage), UsageError> {
        let message = signing_message(&key.key_id(), key.epoch, &session);
        let prepared = blind_rsa::prepare(&message)?;
        let mut prefix = [0u8; PREFIX_LEN];
        prefix.copy_from_slice(prepared.get(..PREFIX_LEN).unwrap_or(&[0u8; PREFIX_LEN]));
        let (blinded, secret) = blind_rsa::blind(&key.public, &prepared)?;
        Ok((
            TokenRequest {
                public: key.public.clone(),
                epoch: key.epoch,
                session,
                prefix,
                prepared,
                secret,
            },
            blinded,
        ))
    }

    /// Unblinds the oracle's answer, refusing a signature that does not verify.
    pub fn finalize(self, blind_signature: &BlindSignature) -> Result<ConsumerToken, UsageError> {
        let signature =
            blind_rsa::finalize(&self.public, &self.secret, blind_signature, &self.prepared)?;
        Ok(ConsumerToken {
            key_id: self.public.key_id(),
            epoch: self.epoch,
            session: self.session,
            prefix: self.prefix,
            signature,
        })
    }
}

/// The oracle's token service: one key per epoch, at most `tokens_per_subscription` tokens
/// per subscription and epoch over all oracles (a wrapped `psp-receipts` [`Issuer`]).
#[derive(Debug)]
pub struct TokenIssuer {
    inner: Issuer,
}

impl TokenIssuer {
    /// An issuer for the oracle `oracle`. Every oracle must use the same
    /// `tokens_per_subscription`; `max_subscriptions_per_epoch` bounds its memory (about
    /// 1.2 KB per subscription with 32 oracles).
    pub fn new(
        oracle: NodeId,
        tokens_per_subscription: u32,
        max_subscriptions_per_epoch: usize,
    ) -> Self {
        let config = IssuerConfig {
            receipts_per_subscription: tokens_per_subscription,
            max_subscriptions_per_epoch,
            max_tiers: 1,
            ..IssuerConfig::default()
        };
        TokenIssuer {
            inner: Issuer::new(OracleId(oracle.0), config),
        }
    }

    /// Installs the token key of `epoch` (its public half is published as a consumer-token
    /// key). One key per epoch.
    pub fn install_key(&mut self, epoch: u64, key: SigningKey) -> Result<KeyId, UsageError> {
        Ok(self.inner.install_key(epoch, TOKEN_TIER, key)?)
    }

    /// The public half of the token key installed for `epoch`, if any: what an oracle
    /// service matches a request's key id against.
    pub fn public_key(&self, epoch: u64) -> Option<PublicKey> {
        self.inner
            .public_keys(epoch)
            .into_iter()
            .next()
            .map(|(_, key)| key)
    }

    /// Blind-signs a token for `subscription` in `now_epoch`. The caller has checked, on
    /// chain, that the requester holds an active paid subscription `subscription`. Refused
    /// once the subscription drew its tokens for the epoch (summed over every oracle heard
    /// from), with no key for the epoch, or a malformed blinded message.
    pub fn issue(
        &mut self,
        now_epoch: u64,
        subscription: SubscriptionId,
        blinded: &BlindedMessage,
    ) -> Result<BlindSignature, UsageError> {
        Ok(self
            .inner
            .issue(now_epoch, subscription, &TOKEN_TIER, &TOKEN_TIER, blinded)?)
    }

    /// Tokens issued to `subscription` in `epoch`, summed over the oracles heard from.
    pub fn issued(&self, epoch: u64, subscription: &SubscriptionId) -> u64 {
        self.inner.issued(epoch, subscription)
    }

    /// This oracle's counts for `epoch`, to send to the other oracles (on the token channel,
    /// never mixed with receipt counts).
    pub fn counts(&self, epoch: u64) -> Vec<Counts> {
        self.inner.counts(epoch)
    }

    /// Merges another oracle's token counts (pointwise maximum).
    pub fn merge(&mut self, now_epoch: u64, counts: &Counts) -> MergeReport {
        self.inner.merge(now_epoch, counts)
    }

    /// Drops keys and counters of epochs before `now_epoch`.
    pub fn prune(&mut self, now_epoch: u64) {
        self.inner.prune(now_epoch);
    }
}

/// The consumer-token keys of one epoch, as a collector checks tokens against them.
#[derive(Clone, Debug, Default)]
pub struct TokenKeys {
    keys: HashMap<KeyId, TokenKey>,
}

/// Token keys one epoch may have: one per elected oracle, 64 at most on chain.
pub const MAX_TOKEN_KEYS: usize = 64;

impl TokenKeys {
    /// The keys of one epoch; refused beyond [`MAX_TOKEN_KEYS`] or if they are of several
    /// epochs.
    pub fn new(epoch: u64, keys: Vec<TokenKey>) -> Result<Self, UsageError> {
        if keys.len() > MAX_TOKEN_KEYS {
            return Err(UsageError::Full {
                what: "token key set",
                max: MAX_TOKEN_KEYS,
            });
        }
        let mut map = HashMap::with_capacity(keys.len());
        for key in keys {
            if key.epoch != epoch {
                return Err(UsageError::UnknownTokenKey {
                    key_id: short(&key.key_id().0),
                    epoch,
                });
            }
            map.insert(key.key_id(), key);
        }
        Ok(TokenKeys { keys: map })
    }

    /// Keys held.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether no key is held.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Checks that `token` backs `session` in `epoch`: a key of this set, the same epoch and
    /// session, then the RSA-PSS signature.
    pub fn verify(
        &self,
        epoch: u64,
        session: &SessionId,
        token: &ConsumerToken,
    ) -> Result<(), UsageError> {
        let key = self
            .keys
            .get(&token.key_id)
            .ok_or(UsageError::UnknownTokenKey {
                key_id: short(&token.key_id.0),
                epoch,
            })?;
        if token.epoch != epoch || key.epoch != epoch || token.session != *session {
            return Err(UsageError::TokenMismatch {
                token_session: short(&token.session),
                token_epoch: token.epoch,
            });
        }
        key.public
            .verify(&token.signed_message(), &token.signature)?;
        Ok(())
    }
}
