//! Signed DHT records: the wire format and the validation that makes one usable.
//!
//! A record is `(kind, owner, topic, publisher, seq, issued_at, expires_at, value)`. Its DHT key
//! is `blake2_256("psp/dht/key/v1" ‖ kind ‖ owner ‖ topic)`, so nobody can write under another
//! owner's key. The owner signs everything (including the publisher it chose); the publisher —
//! the node that puts the record into the DHT, e.g. the presence node of a client — co-signs the
//! key and the owner's signature. Both must be live identities on chain, the publisher a node.
//!
//! [`SignedRecord`] is the unchecked form that decoding yields; only
//! [`SignedRecord::validate`] gives a [`ValidRecord`]. Checks run cheapest first (sizes, times,
//! key, chain state) so junk costs no signature verification.
//!
//! Wire format (big-endian integers):
//!
//! | field | bytes |
//! |---|---|
//! | version = 1 | 1 |
//! | kind | 1 |
//! | owner, topic, publisher | 32 each |
//! | seq, issued_at, expires_at | 8 each |
//! | value length | 2 |
//! | value | ≤ [`MAX_VALUE_LEN`] |
//! | owner signature, publisher signature | 64 each |

use crate::bytes::{BytesError, Reader};
use crate::crypto::{
    blake2_256_parts, sr25519_verify, Sr25519Keypair, Sr25519Signature, SIGNATURE_LEN,
};
use crate::registry::{IdentityKind, IdentityRegistry, IdentityStatus};

/// A DHT key: 32 bytes.
pub type RecordKey = [u8; 32];

/// Wire format version.
const VERSION: u8 = 1;
/// Domain tags of the key and the two signatures.
const KEY_CONTEXT: &[u8] = b"psp/dht/key/v1";
const OWNER_CONTEXT: &[u8] = b"psp/dht/record/owner/v1";
const PUBLISHER_CONTEXT: &[u8] = b"psp/dht/record/publisher/v1";

/// Hard upper bound of a value, whatever the configured limit.
pub const MAX_VALUE_LEN: usize = 4_096;
/// Bytes of a record without its value.
pub const HEADER_LEN: usize = 1 + 1 + 3 * 32 + 3 * 8 + 2;
/// Largest encoded record.
pub const MAX_RECORD_LEN: usize = HEADER_LEN + MAX_VALUE_LEN + 2 * SIGNATURE_LEN;

/// What a record announces.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum RecordKind {
    /// Where a client (or node) can be reached: its presence nodes. Owner: a client, device or
    /// node; topic: the presence slot.
    Presence,
    /// A stream and its distribution nodes (later work). Owner: any identity; topic: stream id.
    Stream,
    /// A group's join record (the members taking JOINs, the rules). Owner: a group identity;
    /// topic: `join`.
    Group,
    /// A device's reading (sensor data for a server to pull). Owner: a device identity;
    /// topic: what is measured.
    Reading,
}

impl RecordKind {
    fn to_byte(self) -> u8 {
        match self {
            Self::Presence => 1,
            Self::Stream => 2,
            Self::Group => 3,
            Self::Reading => 4,
        }
    }

    fn from_byte(b: u8) -> Option<Self> {
        match b {
            1 => Some(Self::Presence),
            2 => Some(Self::Stream),
            3 => Some(Self::Group),
            4 => Some(Self::Reading),
            _ => None,
        }
    }

    /// The record kind's name, as the CLI spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Presence => "presence",
            Self::Stream => "stream",
            Self::Group => "group",
            Self::Reading => "reading",
        }
    }

    /// Parses a kind name.
    pub fn from_name(name: &str) -> Option<Self> {
        [Self::Presence, Self::Stream, Self::Group, Self::Reading]
            .into_iter()
            .find(|k| k.as_str() == name)
    }

    /// Whether an identity of `kind` may own records of this kind.
    fn owner_allowed(self, kind: IdentityKind) -> bool {
        match self {
            Self::Presence => kind != IdentityKind::Group,
            Self::Stream => true,
            Self::Group => kind == IdentityKind::Group,
            Self::Reading => kind == IdentityKind::Device,
        }
    }
}

/// The DHT key of `(kind, owner, topic)`.
pub fn record_key(kind: RecordKind, owner: &[u8; 32], topic: &[u8; 32]) -> RecordKey {
    blake2_256_parts(&[KEY_CONTEXT, &[kind.to_byte()], owner, topic])
}

/// Limits a node applies to records (configurable; the dev chain uses short lifetimes).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RecordLimits {
    /// Largest value accepted (at most [`MAX_VALUE_LEN`]).
    pub max_value_len: usize,
    /// Longest lifetime from `now`, in seconds: an owner must renew before it runs out.
    pub max_lifetime_secs: u64,
    /// How far in the future `issued_at` may be (clock skew), in seconds.
    pub max_clock_skew_secs: u64,
}

impl Default for RecordLimits {
    fn default() -> Self {
        Self {
            max_value_len: 1_024,
            max_lifetime_secs: 3_600,
            max_clock_skew_secs: 30,
        }
    }
}

/// Why a record was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RecordError {
    /// The bytes are not a record.
    #[error("malformed record: {0}")]
    Malformed(#[from] BytesError),
    /// Unknown wire-format version.
    #[error("unsupported record version {0}")]
    Version(u8),
    /// Unknown record kind.
    #[error("unknown record kind {0}")]
    UnknownKind(u8),
    /// Bytes after the last field.
    #[error("{0} trailing bytes after the record")]
    TrailingBytes(usize),
    /// The value is larger than allowed.
    #[error("value of {len} bytes exceeds the limit of {max}")]
    Oversized {
        /// Value length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The record was stored under another key than its content gives.
    #[error("record stored under the wrong key")]
    WrongKey,
    /// `expires_at` is not after `issued_at`.
    #[error("expiry {expires_at} is not after issue time {issued_at}")]
    BadValidity {
        /// Issue time.
        issued_at: u64,
        /// Expiry.
        expires_at: u64,
    },
    /// The record has expired.
    #[error("record expired at {expires_at} (now {now})")]
    Expired {
        /// Expiry.
        expires_at: u64,
        /// Current time.
        now: u64,
    },
    /// Issued in the future (beyond the allowed clock skew).
    #[error("record issued at {issued_at}, in the future (now {now})")]
    FromTheFuture {
        /// Issue time.
        issued_at: u64,
        /// Current time.
        now: u64,
    },
    /// Expires later than the maximum lifetime allows.
    #[error(
        "record expires at {expires_at}, beyond the maximum lifetime ({max_secs} s from {now})"
    )]
    LifetimeTooLong {
        /// Expiry.
        expires_at: u64,
        /// Current time.
        now: u64,
        /// The maximum lifetime.
        max_secs: u64,
    },
    /// The owner is not a live identity (or of a kind that may not own this record).
    #[error("owner 0x{} is {status}", hex4(.owner))]
    Owner {
        /// The owner key.
        owner: [u8; 32],
        /// What the chain says.
        status: &'static str,
    },
    /// The publisher is not a live node identity.
    #[error("publisher 0x{} is {status}", hex4(.publisher))]
    Publisher {
        /// The publisher key.
        publisher: [u8; 32],
        /// What the chain says.
        status: &'static str,
    },
    /// The owner's signature does not verify.
    #[error("bad owner signature")]
    OwnerSignature,
    /// The publisher's co-signature does not verify.
    #[error("bad publisher signature")]
    PublisherSignature,
}

fn hex4(key: &[u8; 32]) -> String {
    key[..4]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<String>()
        + ".."
}

fn status_name(status: IdentityStatus) -> &'static str {
    match status {
        IdentityStatus::Active(_) => "of the wrong kind",
        IdentityStatus::Revoked => "revoked",
        IdentityStatus::Unknown => "not registered",
    }
}

/// What a record says (everything the owner signs).
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct RecordContent {
    /// What it announces.
    pub kind: RecordKind,
    /// The identity it belongs to.
    pub owner: [u8; 32],
    /// Which of the owner's records of this kind.
    pub topic: [u8; 32],
    /// The node that publishes it.
    pub publisher: [u8; 32],
    /// Renewal counter: a store keeps the highest.
    pub seq: u64,
    /// Unix seconds.
    pub issued_at: u64,
    /// Unix seconds; the record is wiped everywhere after this.
    pub expires_at: u64,
    /// The payload (presence points, stream descriptor, ...).
    pub value: Vec<u8>,
}

impl RecordContent {
    /// The DHT key.
    pub fn key(&self) -> RecordKey {
        record_key(self.kind, &self.owner, &self.topic)
    }

    fn write_header(&self, out: &mut Vec<u8>) {
        out.push(VERSION);
        out.push(self.kind.to_byte());
        out.extend_from_slice(&self.owner);
        out.extend_from_slice(&self.topic);
        out.extend_from_slice(&self.publisher);
        out.extend_from_slice(&self.seq.to_be_bytes());
        out.extend_from_slice(&self.issued_at.to_be_bytes());
        out.extend_from_slice(&self.expires_at.to_be_bytes());
        // Values longer than u16 are refused before encoding; saturate rather than wrap.
        out.extend_from_slice(
            &u16::try_from(self.value.len())
                .unwrap_or(u16::MAX)
                .to_be_bytes(),
        );
        out.extend_from_slice(&self.value);
    }

    /// The bytes the owner signs: the tag and the whole content (for signers outside
    /// psp-net, e.g. a keystore).
    pub fn owner_message(&self) -> Vec<u8> {
        let mut m = Vec::with_capacity(OWNER_CONTEXT.len() + HEADER_LEN + self.value.len());
        m.extend_from_slice(OWNER_CONTEXT);
        self.write_header(&mut m);
        m
    }

    /// The owner's signature over the content.
    pub fn sign_as_owner(&self, owner: &Sr25519Keypair) -> Sr25519Signature {
        owner.sign(&self.owner_message())
    }

    /// Signs as owner and co-signs as publisher (both keys at hand: tests, self-published
    /// node records).
    pub fn sign(self, owner: &Sr25519Keypair, publisher: &Sr25519Keypair) -> SignedRecord {
        let owner_sig = self.sign_as_owner(owner);
        SignedRecord::cosign(self, owner_sig, publisher)
    }
}

/// The bytes the publisher signs: the key and the owner's signature (which binds the content).
fn publisher_message(key: &RecordKey, owner_sig: &Sr25519Signature) -> [u8; 123] {
    let mut m = [0u8; 123];
    m[..27].copy_from_slice(PUBLISHER_CONTEXT);
    m[27..59].copy_from_slice(key);
    m[59..].copy_from_slice(owner_sig);
    m
}

/// A decoded record whose signatures and chain state are not checked yet.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct SignedRecord {
    /// The content.
    pub content: RecordContent,
    /// The owner's signature over the content.
    pub owner_sig: Sr25519Signature,
    /// The publisher's co-signature.
    pub publisher_sig: Sr25519Signature,
}

impl SignedRecord {
    /// Adds the publisher's co-signature to content the owner signed.
    pub fn cosign(
        content: RecordContent,
        owner_sig: Sr25519Signature,
        publisher: &Sr25519Keypair,
    ) -> Self {
        let publisher_sig = publisher.sign(&publisher_message(&content.key(), &owner_sig));
        Self {
            content,
            owner_sig,
            publisher_sig,
        }
    }

    /// The wire bytes.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(HEADER_LEN + self.content.value.len() + 128);
        self.content.write_header(&mut out);
        out.extend_from_slice(&self.owner_sig);
        out.extend_from_slice(&self.publisher_sig);
        out
    }

    /// Decodes wire bytes (bounds only; nothing is trusted yet).
    pub fn decode(bytes: &[u8]) -> Result<Self, RecordError> {
        let mut r = Reader::new(bytes);
        let version = r.u8()?;
        if version != VERSION {
            return Err(RecordError::Version(version));
        }
        let kind_byte = r.u8()?;
        let kind = RecordKind::from_byte(kind_byte).ok_or(RecordError::UnknownKind(kind_byte))?;
        let owner = r.array()?;
        let topic = r.array()?;
        let publisher = r.array()?;
        let seq = r.u64()?;
        let issued_at = r.u64()?;
        let expires_at = r.u64()?;
        let len = usize::from(r.u16()?);
        if len > MAX_VALUE_LEN {
            return Err(RecordError::Oversized {
                len,
                max: MAX_VALUE_LEN,
            });
        }
        let value = r.take(len)?.to_vec();
        let owner_sig = r.array()?;
        let publisher_sig = r.array()?;
        if r.remaining() != 0 {
            return Err(RecordError::TrailingBytes(r.remaining()));
        }
        Ok(Self {
            content: RecordContent {
                kind,
                owner,
                topic,
                publisher,
                seq,
                issued_at,
                expires_at,
                value,
            },
            owner_sig,
            publisher_sig,
        })
    }

    /// Checks everything; the only way to a [`ValidRecord`].
    ///
    /// `now` is unix seconds. Cheap checks first: sizes, times, chain state, then the two
    /// signatures.
    pub fn validate(
        self,
        now: u64,
        registry: &impl IdentityRegistry,
        limits: &RecordLimits,
    ) -> Result<ValidRecord, RecordError> {
        let c = &self.content;
        let max = limits.max_value_len.min(MAX_VALUE_LEN);
        if c.value.len() > max {
            return Err(RecordError::Oversized {
                len: c.value.len(),
                max,
            });
        }
        if c.expires_at <= c.issued_at {
            return Err(RecordError::BadValidity {
                issued_at: c.issued_at,
                expires_at: c.expires_at,
            });
        }
        if c.expires_at <= now {
            return Err(RecordError::Expired {
                expires_at: c.expires_at,
                now,
            });
        }
        if c.issued_at > now.saturating_add(limits.max_clock_skew_secs) {
            return Err(RecordError::FromTheFuture {
                issued_at: c.issued_at,
                now,
            });
        }
        if c.expires_at - now > limits.max_lifetime_secs {
            return Err(RecordError::LifetimeTooLong {
                expires_at: c.expires_at,
                now,
                max_secs: limits.max_lifetime_secs,
            });
        }
        match registry.status(&c.owner) {
            IdentityStatus::Active(kind) if c.kind.owner_allowed(kind) => {}
            status => {
                return Err(RecordError::Owner {
                    owner: c.owner,
                    status: status_name(status),
                })
            }
        }
        match registry.status(&c.publisher) {
            IdentityStatus::Active(IdentityKind::Node) => {}
            status => {
                return Err(RecordError::Publisher {
                    publisher: c.publisher,
                    status: status_name(status),
                })
            }
        }
        let key = c.key();
        if !sr25519_verify(
            &c.publisher,
            &publisher_message(&key, &self.owner_sig),
            &self.publisher_sig,
        ) {
            return Err(RecordError::PublisherSignature);
        }
        if !sr25519_verify(&c.owner, &c.owner_message(), &self.owner_sig) {
            return Err(RecordError::OwnerSignature);
        }
        Ok(ValidRecord { key, record: self })
    }

    /// Decodes and validates, and checks the record belongs under `key`.
    pub fn decode_valid(
        key: &RecordKey,
        bytes: &[u8],
        now: u64,
        registry: &impl IdentityRegistry,
        limits: &RecordLimits,
    ) -> Result<ValidRecord, RecordError> {
        let record = Self::decode(bytes)?;
        if &record.content.key() != key {
            return Err(RecordError::WrongKey);
        }
        record.validate(now, registry, limits)
    }
}

/// A record whose signatures, sizes, times and chain state were checked.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct ValidRecord {
    key: RecordKey,
    record: SignedRecord,
}

impl ValidRecord {
    /// The DHT key.
    pub fn key(&self) -> &RecordKey {
        &self.key
    }

    /// The checked content.
    pub fn content(&self) -> &RecordContent {
        &self.record.content
    }

    /// The signed record (to re-encode and serve).
    pub fn signed(&self) -> &SignedRecord {
        &self.record
    }

    /// Whether it has expired at `now`.
    pub fn expired(&self, now: u64) -> bool {
        self.record.content.expires_at <= now
    }
}

/// The raw baseline of the validation benchmark: the record's two signature checks alone,
/// on messages built beforehand. Returns whether both verify.
#[doc(hidden)]
pub fn bench_raw_verify(prepared: &PreparedSignatures) -> bool {
    sr25519_verify(
        &prepared.publisher,
        &prepared.publisher_msg,
        &prepared.publisher_sig,
    ) && sr25519_verify(&prepared.owner, &prepared.owner_msg, &prepared.owner_sig)
}

/// Messages and signatures of a record, prepared for [`bench_raw_verify`].
#[doc(hidden)]
pub struct PreparedSignatures {
    owner: [u8; 32],
    owner_msg: Vec<u8>,
    owner_sig: Sr25519Signature,
    publisher: [u8; 32],
    publisher_msg: [u8; 123],
    publisher_sig: Sr25519Signature,
}

impl PreparedSignatures {
    /// Prepares the messages of `record`.
    #[doc(hidden)]
    pub fn new(record: &SignedRecord) -> Self {
        let c = &record.content;
        Self {
            owner: c.owner,
            owner_msg: c.owner_message(),
            owner_sig: record.owner_sig,
            publisher: c.publisher,
            publisher_msg: publisher_message(&c.key(), &record.owner_sig),
            publisher_sig: record.publisher_sig,
        }
    }
}

#[cfg(test)]
pub(crate) mod tests;
