//! The stream record a landing node publishes (PSP overview §8.2), and its check.
//!
//! | field | bytes |
//! |---|---|
//! | version = [`RECORD_VERSION`] | 1 |
//! | stream id | 32 |
//! | format flags ([`FormatFlags`]; WebRTC required) | 1 |
//! | landing node id (sr25519) | 32 |
//! | created_at, unix seconds | 8 |
//! | expires_at = created_at + the receipt's lifetime | 8 |
//! | access point count `n` (1 ..= 32) | 1 |
//! | `n` distribution node ids | 32 · n |
//! | landing node's sr25519 signature | 64 |
//!
//! The signature covers [`RECORD_CONTEXT`] ‖ every field before it. The largest record is
//! 1 + 32 + 1 + 32 + 8 + 8 + 1 + 32 × 32 + 64 = [`MAX_RECORD_LEN`] = 1 171 bytes.
//!
//! **Publishing**: the landing node puts the record bytes ([`StreamRecord::encode`]) into the
//! DHT as a `Stream` record it owns and publishes, topic the stream id, so its key is
//! [`dht_key`] = psp-dht's `record_key(Stream, landing node, stream id)`: only that landing
//! node can write it, and anyone holding the landing node and the stream id finds the access
//! points. A fetcher checks what it gets with [`verify_stream_record`] and trusts no DHT node.
//!
//! **Stream ids** are derived, not drawn: [`stream_id_for`] = BLAKE2-256([`STREAM_ID_CONTEXT`]
//! ‖ the receipt's spend id). The spend id is random, known only to the producer and the
//! landing node (the oracle signed it blind), so the id links to no one. It also needs no RNG
//! in the machine, and the producer can check the id she is handed. A receipt names the one
//! landing node that may spend it (chosen before drawing, blinded from the oracle), so that
//! node's spent set is the only one that can have seen it: a replay anywhere is refused.

use psp_onion::bytes::Reader;
use psp_onion::crypto::{blake2_256_parts, sr25519_verify, Sr25519Keypair, Sr25519Signature};
use psp_onion::registry::{IdentityKind, IdentityRegistry, IdentityStatus};
use psp_receipts::receipt::MAX_DISTRIBUTION_NODES;
use psp_receipts::SpendId;

use crate::error::{prefix, StreamError};
use crate::wire::{FormatFlags, WireError};

/// Wire version of stream records.
pub const RECORD_VERSION: u8 = 1;
/// Domain separation of the landing node's signature.
pub const RECORD_CONTEXT: &[u8] = b"psp/stream/record/v1";
/// Domain separation of stream ids.
pub const STREAM_ID_CONTEXT: &[u8] = b"psp/stream/stream-id/v1";
/// Everything before the access points: version 1 + stream id 32 + flags 1 + landing 32 +
/// created_at 8 + expires_at 8 + count 1 = 83 bytes.
pub const RECORD_HEADER_LEN: usize = 1 + 32 + 1 + 32 + 8 + 8 + 1;
/// Largest record: header 83 + 32 access points × 32 + signature 64 = 1 171 bytes.
pub const MAX_RECORD_LEN: usize = RECORD_HEADER_LEN + MAX_DISTRIBUTION_NODES as usize * 32 + 64;
/// Clock skew accepted on a record's creation time.
pub const RECORD_CLOCK_SKEW_SECS: u64 = 30;

/// A stream's id.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
pub struct StreamId(pub [u8; 32]);

/// Domain separation of publish tokens.
pub const PUBLISH_TOKEN_CONTEXT: &[u8] = b"psp/stream/publish-token/v1";

/// The token the producer shows the landing node to publish media into the stream created
/// with a receipt of this spend id: only she and the landing node know the spend id, and the
/// token reveals nothing of it (nor links to the stream id).
pub fn publish_token(spend_id: &SpendId) -> [u8; 32] {
    blake2_256_parts(&[PUBLISH_TOKEN_CONTEXT, &spend_id.0])
}

/// The stream id a landing node gives the stream created with a receipt of this spend id.
pub fn stream_id_for(spend_id: &SpendId) -> StreamId {
    StreamId(blake2_256_parts(&[STREAM_ID_CONTEXT, &spend_id.0]))
}

/// The DHT key the record of `stream_id` created at `landing` is published under.
pub fn dht_key(landing: &[u8; 32], stream_id: &StreamId) -> [u8; 32] {
    psp_dht::record::record_key(psp_dht::record::RecordKind::Stream, landing, &stream_id.0)
}

/// A stream record as decoded: *not checked*. Only [`verify_stream_record`] yields something
/// to act on.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct StreamRecord {
    /// The stream.
    pub stream_id: StreamId,
    /// Its transports.
    pub format: FormatFlags,
    /// The landing node that created it and signs the record.
    pub landing: [u8; 32],
    /// Creation, unix seconds.
    pub created_at: u64,
    /// Expiry, unix seconds.
    pub expires_at: u64,
    /// The distribution nodes consumers connect to.
    pub access_points: Vec<[u8; 32]>,
    /// The landing node's signature.
    pub signature: Sr25519Signature,
}

impl StreamRecord {
    /// A record signed by `landing_key`. The caller bounds the access points (1 ..= 32,
    /// distinct) and the times; [`Self::encode`] writes at most 32 access points.
    pub fn sign(
        landing_key: &Sr25519Keypair,
        stream_id: StreamId,
        format: FormatFlags,
        created_at: u64,
        expires_at: u64,
        access_points: Vec<[u8; 32]>,
    ) -> Self {
        let mut record = Self {
            stream_id,
            format,
            landing: landing_key.public(),
            created_at,
            expires_at,
            access_points,
            signature: [0; 64],
        };
        record.signature = landing_key.sign(&record.signing_message());
        record
    }

    fn encode_unsigned(&self) -> Vec<u8> {
        let count = self
            .access_points
            .len()
            .min(usize::from(MAX_DISTRIBUTION_NODES));
        let mut out = Vec::with_capacity(RECORD_HEADER_LEN + count * 32 + 64);
        out.push(RECORD_VERSION);
        out.extend_from_slice(&self.stream_id.0);
        out.push(self.format.bits());
        out.extend_from_slice(&self.landing);
        out.extend_from_slice(&self.created_at.to_be_bytes());
        out.extend_from_slice(&self.expires_at.to_be_bytes());
        // count ≤ 32.
        out.push(u8::try_from(count).unwrap_or(0));
        for node in self.access_points.iter().take(count) {
            out.extend_from_slice(node);
        }
        out
    }

    /// The bytes the landing node signs: [`RECORD_CONTEXT`] ‖ the fields before the signature.
    pub fn signing_message(&self) -> Vec<u8> {
        [RECORD_CONTEXT, &self.encode_unsigned()].concat()
    }

    /// The record bytes to publish.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = self.encode_unsigned();
        out.extend_from_slice(&self.signature);
        out
    }

    /// The DHT key to publish it under.
    pub fn dht_key(&self) -> [u8; 32] {
        dht_key(&self.landing, &self.stream_id)
    }

    /// Decodes strictly: version, flags with WebRTC and no unknown bit, 1 ..= 32 distinct
    /// access points, `created_at < expires_at`, no trailing bytes. Checks no signature, time
    /// or chain state. Never panics.
    pub fn decode(bytes: &[u8]) -> Result<Self, WireError> {
        if bytes.len() > MAX_RECORD_LEN {
            return Err(WireError::FieldTooLong {
                field: "stream record",
                len: bytes.len(),
                max: MAX_RECORD_LEN,
            });
        }
        let mut r = Reader::new(bytes);
        let version = r.u8()?;
        if version != RECORD_VERSION {
            return Err(WireError::Version { got: version });
        }
        let stream_id = StreamId(r.array()?);
        let format = FormatFlags::from_bits(r.u8()?)?;
        if !format.contains(FormatFlags::WEBRTC) {
            return Err(WireError::InvalidValue {
                field: "format flags (WebRTC required)",
                value: u64::from(format.bits()),
            });
        }
        let landing = r.array()?;
        let created_at = r.u64()?;
        let expires_at = r.u64()?;
        if expires_at <= created_at {
            return Err(WireError::InvalidValue {
                field: "stream record expiry (not after creation)",
                value: expires_at,
            });
        }
        let count = r.u8()?;
        if count == 0 || count > MAX_DISTRIBUTION_NODES {
            return Err(WireError::InvalidValue {
                field: "access point count",
                value: u64::from(count),
            });
        }
        let mut access_points: Vec<[u8; 32]> = Vec::with_capacity(usize::from(count));
        for _ in 0..count {
            let node = r.array()?;
            if access_points.contains(&node) {
                return Err(WireError::InvalidValue {
                    field: "access points (duplicate)",
                    value: u64::from(count),
                });
            }
            access_points.push(node);
        }
        let signature = r.array()?;
        if r.remaining() != 0 {
            return Err(WireError::TrailingBytes {
                message: "stream record",
                count: r.remaining(),
            });
        }
        Ok(Self {
            stream_id,
            format,
            landing,
            created_at,
            expires_at,
            access_points,
            signature,
        })
    }
}

/// A stream record that passed [`verify_stream_record`].
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct VerifiedStreamRecord(StreamRecord);

impl VerifiedStreamRecord {
    /// The checked record.
    pub fn record(&self) -> &StreamRecord {
        &self.0
    }

    /// The stream id.
    pub fn stream_id(&self) -> StreamId {
        self.0.stream_id
    }

    /// The distribution nodes to connect to.
    pub fn access_points(&self) -> &[[u8; 32]] {
        &self.0.access_points
    }
}

/// Decodes and checks a stream record at `now`: strict decoding, created no later than
/// `now` + [`RECORD_CLOCK_SKEW_SECS`], not expired (`now < expires_at`), the landing node a
/// live *node* identity in `registry` (revoked, unknown or another kind are refused), and its
/// signature.
pub fn verify_stream_record(
    bytes: &[u8],
    now: u64,
    registry: &dyn IdentityRegistry,
) -> Result<VerifiedStreamRecord, StreamError> {
    let record = StreamRecord::decode(bytes).map_err(StreamError::malformed("stream record"))?;
    if now >= record.expires_at || record.created_at > now.saturating_add(RECORD_CLOCK_SKEW_SECS) {
        return Err(StreamError::RecordOutsideValidity {
            created_at: record.created_at,
            expires_at: record.expires_at,
            now,
            skew_secs: RECORD_CLOCK_SKEW_SECS,
        });
    }
    if registry.status(&record.landing) != IdentityStatus::Active(IdentityKind::Node) {
        return Err(StreamError::LandingNotLive {
            node: prefix(&record.landing),
        });
    }
    if !sr25519_verify(
        &record.landing,
        &record.signing_message(),
        &record.signature,
    ) {
        return Err(StreamError::RecordSignature);
    }
    Ok(VerifiedStreamRecord(record))
}
