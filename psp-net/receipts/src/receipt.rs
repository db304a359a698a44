//! The receipt: parameters, key, spend id and signature; its wire format; the client's request.
//!
//! A receipt names the stream it allows (lifetime, bitrate class, number of distribution nodes),
//! the key that signed it and that key's epoch, the one landing node that may create the
//! stream, and a random spend id. Nothing in it names the requester. Binding the landing node
//! makes that node's spent set the only one that matters: a receipt cannot be spent once at
//! each of several landing nodes. The oracle never sees which node (the body is blinded). The signature is RFC 9474 RSABSSA-SHA384-PSS-Randomized over the prepared message
//! `prefix || "psp/receipts/receipt/v1" || body`, where `body` is the encoding up to and
//! including the spend id: every field but the prefix and the signature is signed, and the
//! domain string keeps a receipt signature from meaning anything else.
//!
//! Wire format (big-endian), 401 bytes with a 2048-bit key:
//!
//! | offset | len | field |
//! |---|---|---|
//! | 0 | 1 | version (2) |
//! | 1 | 32 | key id |
//! | 33 | 8 | epoch |
//! | 41 | 4 | lifetime, seconds (1..=[`MAX_LIFETIME_SECS`]) |
//! | 45 | 1 | bitrate class code |
//! | 46 | 1 | distribution nodes (1..=[`MAX_DISTRIBUTION_NODES`]) |
//! | 47 | 32 | landing node id (sr25519) |
//! | 79 | 32 | spend id |
//! | 111 | 32 | RFC 9474 message prefix |
//! | 143 | 2 | signature length (256, 384 or 512) |
//! | 145 | 256/384/512 | signature |

use std::fmt;

use sha2::{Digest, Sha256};

use crate::blind_rsa::KeySize;
use crate::blind_rsa::{
    self, BlindSignature, BlindedMessage, BlindingSecret, PublicKey, PREFIX_LEN,
};
use crate::wire::{short_hex, Reader};
use crate::ReceiptError;

/// Wire version of receipts.
pub const RECEIPT_VERSION: u8 = 2;
/// Domain separation of the signed message.
const SIGNING_CONTEXT: &[u8] = b"psp/receipts/receipt/v1";
/// Domain separation of key ids.
const KEY_ID_CONTEXT: &[u8] = b"psp/receipts/key-id/v1";
/// Longest stream a receipt may allow: 7 days (a week-long broadcast needs a new receipt).
pub const MAX_LIFETIME_SECS: u32 = 7 * 24 * 3600;
/// Most distribution nodes a receipt may ask for at creation; the landing node adds more
/// later as load requires (§8.2), not through the receipt.
pub const MAX_DISTRIBUTION_NODES: u8 = 32;
/// The signed body: version 1 + key id 32 + epoch 8 + lifetime 4 + class 1 + nodes 1 +
/// landing node 32 + spend id 32.
pub const BODY_LEN: usize = 1 + 32 + 8 + 4 + 1 + 1 + 32 + 32;
/// Everything before the signature: body + prefix 32 + signature length 2.
pub const HEADER_LEN: usize = BODY_LEN + PREFIX_LEN + 2;
/// Longest receipt: header + a 4096-bit signature.
pub const MAX_RECEIPT_LEN: usize = HEADER_LEN + KeySize::Rsa4096.modulus_len();

/// Bitrate classes a stream may be created with; the landing node throttles to the class.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum BitrateClass {
    /// Up to 512 kbit/s: audio, low-resolution video.
    Low,
    /// Up to 2.5 Mbit/s: SD video.
    Standard,
    /// Up to 8 Mbit/s: 720p/1080p video.
    High,
    /// Up to 25 Mbit/s: 4K video.
    Ultra,
}

impl BitrateClass {
    const ALL: [BitrateClass; 4] = [
        BitrateClass::Low,
        BitrateClass::Standard,
        BitrateClass::High,
        BitrateClass::Ultra,
    ];

    /// Wire code (1..=4; 0 is never valid).
    pub const fn code(self) -> u8 {
        match self {
            BitrateClass::Low => 1,
            BitrateClass::Standard => 2,
            BitrateClass::High => 3,
            BitrateClass::Ultra => 4,
        }
    }

    /// The class with this wire code.
    pub fn from_code(code: u8) -> Result<Self, ReceiptError> {
        Self::ALL
            .into_iter()
            .find(|c| c.code() == code)
            .ok_or(ReceiptError::UnknownBitrateClass(code))
    }

    /// The class's ceiling in kbit/s.
    pub const fn max_kbps(self) -> u32 {
        match self {
            BitrateClass::Low => 512,
            BitrateClass::Standard => 2_500,
            BitrateClass::High => 8_000,
            BitrateClass::Ultra => 25_000,
        }
    }
}

/// What a receipt allows: stream lifetime, bitrate class, distribution nodes at creation.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub struct StreamParams {
    /// How long the stream may run once created, in seconds.
    pub lifetime_secs: u32,
    /// The bitrate class.
    pub bitrate: BitrateClass,
    /// Distribution nodes the landing node may register at creation.
    pub distribution_nodes: u8,
}

impl StreamParams {
    /// Parameters from their wire values (a bitrate class code, as the chain's plans carry
    /// it), checked like [`Self::validate`].
    pub fn from_codes(
        lifetime_secs: u32,
        bitrate_class: u8,
        distribution_nodes: u8,
    ) -> Result<Self, ReceiptError> {
        let params = StreamParams {
            lifetime_secs,
            bitrate: BitrateClass::from_code(bitrate_class)?,
            distribution_nodes,
        };
        params.validate()?;
        Ok(params)
    }

    /// Checks every field is within its bounds.
    pub fn validate(&self) -> Result<(), ReceiptError> {
        if self.lifetime_secs == 0 || self.lifetime_secs > MAX_LIFETIME_SECS {
            return Err(ReceiptError::OutOfBounds {
                field: "lifetime_secs",
                value: u64::from(self.lifetime_secs),
                min: 1,
                max: u64::from(MAX_LIFETIME_SECS),
            });
        }
        if self.distribution_nodes == 0 || self.distribution_nodes > MAX_DISTRIBUTION_NODES {
            return Err(ReceiptError::OutOfBounds {
                field: "distribution_nodes",
                value: u64::from(self.distribution_nodes),
                min: 1,
                max: u64::from(MAX_DISTRIBUTION_NODES),
            });
        }
        Ok(())
    }

    /// True when every field is at most `ceiling`'s.
    pub fn within(&self, ceiling: &StreamParams) -> bool {
        self.lifetime_secs <= ceiling.lifetime_secs
            && self.bitrate <= ceiling.bitrate
            && self.distribution_nodes <= ceiling.distribution_nodes
    }
}

impl fmt::Display for StreamParams {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{{{} s, {:?}, {} nodes}}",
            self.lifetime_secs, self.bitrate, self.distribution_nodes
        )
    }
}

/// A receipt key's id: SHA-256 of `"psp/receipts/key-id/v1"` and the key's PKCS#1 DER.
#[derive(Copy, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KeyId(pub [u8; 32]);

impl KeyId {
    pub(crate) fn of_der(der: &[u8]) -> Self {
        let mut h = Sha256::new();
        h.update(KEY_ID_CONTEXT);
        h.update(der);
        KeyId(h.finalize().into())
    }
}

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        short_hex(&self.0, f)
    }
}

impl fmt::Debug for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyId({self})")
    }
}

/// A receipt's spend id: 32 random bytes chosen by the client, spent once.
#[derive(Copy, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SpendId(pub [u8; 32]);

impl fmt::Display for SpendId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        short_hex(&self.0, f)
    }
}

impl fmt::Debug for SpendId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SpendId({self})")
    }
}

/// An oracle's receipt key as published on chain for one epoch and one tier.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PublishedKey {
    /// The RSA public key.
    pub public: PublicKey,
    /// The epoch whose receipts it signs.
    pub epoch: u64,
    /// The tier: the most a receipt under this key may allow.
    pub tier: StreamParams,
    /// Unix seconds from which receipts under this key are refused.
    pub expires_at: u64,
}

impl PublishedKey {
    /// The key's id.
    pub fn key_id(&self) -> KeyId {
        self.public.key_id()
    }
}

/// A receipt as decoded: *not yet checked*. Only [`crate::Verifier::verify`] turns it into
/// something a landing node may act on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Receipt {
    /// The signing key's id.
    pub key_id: KeyId,
    /// The epoch the receipt was issued in.
    pub epoch: u64,
    /// What it allows.
    pub params: StreamParams,
    /// The only landing node that may create the stream.
    pub landing: [u8; 32],
    /// Its spend id.
    pub spend_id: SpendId,
    /// RFC 9474's random message prefix.
    pub prefix: [u8; PREFIX_LEN],
    /// RSA-PSS signature, modulus length.
    pub signature: Vec<u8>,
}

/// What a receipt's signature covers, besides the domain string and the prefix.
struct Body<'a> {
    key_id: &'a KeyId,
    epoch: u64,
    params: &'a StreamParams,
    landing: &'a [u8; 32],
    spend_id: &'a SpendId,
}

impl Body<'_> {
    fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(BODY_LEN);
        out.push(RECEIPT_VERSION);
        out.extend_from_slice(&self.key_id.0);
        out.extend_from_slice(&self.epoch.to_be_bytes());
        out.extend_from_slice(&self.params.lifetime_secs.to_be_bytes());
        out.push(self.params.bitrate.code());
        out.push(self.params.distribution_nodes);
        out.extend_from_slice(self.landing);
        out.extend_from_slice(&self.spend_id.0);
        out
    }

    /// The message before RFC 9474's prefix: domain string, then the body.
    fn signing_message(&self) -> Vec<u8> {
        [SIGNING_CONTEXT, &self.encode()].concat()
    }
}

impl Receipt {
    fn body(&self) -> Body<'_> {
        Body {
            key_id: &self.key_id,
            epoch: self.epoch,
            params: &self.params,
            landing: &self.landing,
            spend_id: &self.spend_id,
        }
    }

    /// The prepared message the signature covers: prefix, domain string, body.
    pub fn signed_message(&self) -> Vec<u8> {
        [&self.prefix[..], &self.body().signing_message()].concat()
    }

    /// The wire encoding.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = self.body().encode();
        out.extend_from_slice(&self.prefix);
        // The signature's length is bounded by construction (decode, finalize); a longer one
        // would not verify anyway, and saturating keeps encode total.
        let sig_len = u16::try_from(self.signature.len()).unwrap_or(u16::MAX);
        out.extend_from_slice(&sig_len.to_be_bytes());
        out.extend_from_slice(&self.signature);
        out
    }

    /// Decodes a receipt, strictly: known version and class, fields within bounds, a
    /// signature of a supported key size, no trailing bytes. Never panics. Checks no
    /// signature.
    pub fn decode(bytes: &[u8]) -> Result<Self, ReceiptError> {
        const WHAT: &str = "receipt";
        if bytes.len() > MAX_RECEIPT_LEN {
            return Err(ReceiptError::OutOfBounds {
                field: "receipt length",
                value: bytes.len() as u64,
                min: (HEADER_LEN + KeySize::Rsa2048.modulus_len()) as u64,
                max: MAX_RECEIPT_LEN as u64,
            });
        }
        let mut r = Reader::new(bytes, WHAT);
        let version = r.u8()?;
        if version != RECEIPT_VERSION {
            return Err(ReceiptError::UnsupportedVersion {
                what: WHAT,
                version,
            });
        }
        let key_id = KeyId(r.array()?);
        let epoch = r.u64()?;
        let lifetime_secs = r.u32()?;
        let bitrate = BitrateClass::from_code(r.u8()?)?;
        let distribution_nodes = r.u8()?;
        let params = StreamParams {
            lifetime_secs,
            bitrate,
            distribution_nodes,
        };
        params.validate()?;
        let landing = r.array()?;
        let spend_id = SpendId(r.array()?);
        let prefix = r.array()?;
        let sig_len = usize::from(r.u16()?);
        if KeySize::from_modulus_len(sig_len).is_none() {
            return Err(ReceiptError::OutOfBounds {
                field: "signature length (256, 384 or 512)",
                value: sig_len as u64,
                min: KeySize::Rsa2048.modulus_len() as u64,
                max: KeySize::Rsa4096.modulus_len() as u64,
            });
        }
        let signature = r.take(sig_len)?.to_vec();
        r.finish()?;
        Ok(Receipt {
            key_id,
            epoch,
            params,
            landing,
            spend_id,
            prefix,
            signature,
        })
    }
}

/// The client's side of one issuance: what it blinded and the secret to unblind with.
#[derive(Debug)]
pub struct ReceiptRequest {
    public: PublicKey,
    epoch: u64,
    params: StreamParams,
    landing: [u8; 32],
    spend_id: SpendId,
    prefix: [u8; PREFIX_LEN],
    prepared: Vec<u8>,
    secret: BlindingSecret,
}

impl ReceiptRequest {
    /// Draws a spend id, prepares and blinds the receipt message for `key` (the oracle's
    /// published key for the wanted tier and the current epoch), for a stream at the landing
    /// node `landing`. `params` must be within the tier. Send the [`BlindedMessage`] to the
    /// oracle along with the tier; keep the request.
    pub fn new(
        key: &PublishedKey,
        params: StreamParams,
        landing: [u8; 32],
    ) -> Result<(Self, BlindedMessage), ReceiptError> {
        params.validate()?;
        if !params.within(&key.tier) {
            return Err(ReceiptError::BeyondTier {
                params,
                tier: key.tier,
            });
        }
        let mut spend_id = [0u8; 32];
        openssl::rand::rand_bytes(&mut spend_id)
            .map_err(ReceiptError::crypto("drawing a spend id"))?;
        let spend_id = SpendId(spend_id);
        let msg = Body {
            key_id: &key.key_id(),
            epoch: key.epoch,
            params: &params,
            landing: &landing,
            spend_id: &spend_id,
        }
        .signing_message();
        let prepared = blind_rsa::prepare(&msg)?;
        // `prepare` puts exactly PREFIX_LEN bytes before the message.
        let mut prefix = [0u8; PREFIX_LEN];
        prefix.copy_from_slice(&prepared[..PREFIX_LEN]);
        let (blinded, secret) = blind_rsa::blind(&key.public, &prepared)?;
        let request = ReceiptRequest {
            public: key.public.clone(),
            epoch: key.epoch,
            params,
            landing,
            spend_id,
            prefix,
            prepared,
            secret,
        };
        Ok((request, blinded))
    }

    /// Unblinds the oracle's answer into a receipt, refusing a signature that does not verify.
    pub fn finalize(self, blind_sig: &BlindSignature) -> Result<Receipt, ReceiptError> {
        let signature = blind_rsa::finalize(&self.public, &self.secret, blind_sig, &self.prepared)?;
        Ok(Receipt {
            key_id: self.public.key_id(),
            epoch: self.epoch,
            params: self.params,
            landing: self.landing,
            spend_id: self.spend_id,
            prefix: self.prefix,
            signature,
        })
    }
}
