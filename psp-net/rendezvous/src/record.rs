//! The value of a presence record, and the looker's check of a whole presence record.
//!
//! A presence record (DHT kind `Presence`) is signed by its owner and co-signed by the
//! presence node that publishes it. Its value carries the owner's access certificate and
//! whether the point is public, so a looker can check everything itself and trust no node:
//! owner signature, publisher co-signature, expiry, identity live on chain (the DHT's
//! `SignedRecord::validate`), then the certificate and that it certifies the owner.
//!
//! Value layout: version 1 · flags 1 (bit 0: public) · certificate (2 + ≤ 512).

use psp_cert::VerifiedCertificate;
use psp_dht::{RecordError, RecordKind, RecordLimits, SignedRecord};
use psp_onion::bytes::Reader;

use crate::chain::{CertificateError, ChainView};
use crate::wire::WireError;

/// Version of the value layout.
const VALUE_VERSION: u8 = 1;
/// Flag bit: the presence point is public (registered on the first hop).
const FLAG_PUBLIC: u8 = 0x01;
/// Largest certificate carried: 512 bytes, room to grow from psp-cert's 186 bytes today.
pub const MAX_CERTIFICATE_LEN: usize = 512;
/// Largest presence value: version 1 + flags 1 + certificate length 2 + 512 = 516 bytes.
/// `PresenceValue::decode` refuses anything longer, so no valid presence record carries more.
pub const MAX_PRESENCE_VALUE_LEN: usize = 1 + 1 + 2 + MAX_CERTIFICATE_LEN;

/// What a presence record's value says.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct PresenceValue {
    /// Public (the owner registered on the first hop and may be reached directly) or
    /// anonymous (behind a 3-hop circuit).
    pub public: bool,
    /// The owner's access certificate, encoded.
    pub certificate: Vec<u8>,
}

impl PresenceValue {
    /// The record value bytes.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(4 + self.certificate.len());
        out.push(VALUE_VERSION);
        out.push(if self.public { FLAG_PUBLIC } else { 0 });
        // Certificates above the bound are refused by `decode`, so a record carrying one is
        // refused by every presence node and looker; saturating keeps encoding total.
        let len = u16::try_from(self.certificate.len()).unwrap_or(u16::MAX);
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(&self.certificate);
        out
    }

    /// Decodes a record value (nothing checked but structure).
    pub fn decode(bytes: &[u8]) -> Result<Self, WireError> {
        let mut r = Reader::new(bytes);
        let version = r.u8()?;
        if version != VALUE_VERSION {
            return Err(WireError::Version { got: version });
        }
        let flags = r.u8()?;
        if flags & !FLAG_PUBLIC != 0 {
            return Err(WireError::InvalidValue {
                field: "presence flags",
                value: u64::from(flags),
            });
        }
        let len = usize::from(r.u16()?);
        if len > MAX_CERTIFICATE_LEN {
            return Err(WireError::FieldTooLong {
                field: "certificate",
                len,
                max: MAX_CERTIFICATE_LEN,
            });
        }
        let certificate = r.take(len)?.to_vec();
        if r.remaining() != 0 {
            return Err(WireError::TrailingBytes {
                message: "presence value",
                count: r.remaining(),
            });
        }
        Ok(Self {
            public: flags & FLAG_PUBLIC != 0,
            certificate,
        })
    }
}

/// Why a looker refused a presence record.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PresenceRecordError {
    /// The DHT's checks failed (signatures, expiry, owner or publisher not live).
    #[error("presence record invalid: {0}")]
    Record(#[from] RecordError),
    /// The record is of another kind.
    #[error("record of kind {0} is not a presence record")]
    NotPresence(&'static str),
    /// The value is not a presence value.
    #[error("presence value does not decode: {0}")]
    Value(#[from] WireError),
    /// The certificate in the value was refused.
    #[error("presence record's certificate: {0}")]
    Certificate(#[from] CertificateError),
}

/// A presence record whose signatures, expiry, chain state and certificate were checked.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct VerifiedPresence {
    /// The identity present.
    pub owner: [u8; 32],
    /// Which of the owner's presence slots.
    pub topic: [u8; 32],
    /// The presence node (the record's publisher): where to send introductions.
    pub presence_node: [u8; 32],
    /// Whether the point is public.
    pub public: bool,
    /// The owner's X25519 announcement key, from the certificate: seal introductions to it.
    pub announcement_key: [u8; 32],
    /// Renewal counter.
    pub seq: u64,
    /// Unix seconds; lookers prefer the most recent records.
    pub issued_at: u64,
    /// Unix seconds.
    pub expires_at: u64,
    /// The owner's certificate.
    pub certificate: VerifiedCertificate,
}

/// The looker's check of a presence record fetched from the DHT (from any node, trusted by
/// none): everything the DHT checks, then the certificate in the value against `chain`.
pub fn verify_presence_record(
    record: SignedRecord,
    now: u64,
    chain: &ChainView<'_>,
    limits: &RecordLimits,
) -> Result<VerifiedPresence, PresenceRecordError> {
    if record.content.kind != RecordKind::Presence {
        return Err(PresenceRecordError::NotPresence(
            record.content.kind.as_str(),
        ));
    }
    let valid = record.validate(now, &chain.registry, limits)?;
    let c = valid.content();
    let value = PresenceValue::decode(&c.value)?;
    let certificate = chain.verify_certificate(&value.certificate, now, &c.owner)?;
    Ok(VerifiedPresence {
        owner: c.owner,
        topic: c.topic,
        presence_node: c.publisher,
        public: value.public,
        announcement_key: certificate.body().x25519,
        seq: c.seq,
        issued_at: c.issued_at,
        expires_at: c.expires_at,
        certificate,
    })
}
