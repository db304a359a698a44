//! Messages on a stream to an oracle's `oracle` service (receipt issuance).
//!
//! | message | direction | fields (after version and type) |
//! |---|---|---|
//! | `ReceiptRequest` | client → oracle | certificate (2 + ≤ [`MAX_CERTIFICATE_LEN`]) · tier key id 32 · blinded message (2 + ≤ [`MAX_BLIND_LEN`]) · signature 64 |
//! | `ReceiptIssued` | oracle → client | blind signature (2 + ≤ [`MAX_BLIND_LEN`]) |
//! | `Refused` | oracle → client | reason 1 |
//!
//! The signature is the requester's identity key over [`POSSESSION_CONTEXT`] ‖ oracle node
//! id ‖ tier key id ‖ blinded message: certificates are public (they travel in presence
//! records), so the certificate alone does not prove its holder is asking; binding the oracle
//! id keeps one oracle from replaying the request at another to drain the subscription.

use psp_onion::bytes::Reader;
use psp_onion::crypto::{Sr25519Signature, SIGNATURE_LEN};
use psp_receipts::KeyId;

use super::{
    expect_end, finish_frame, put_bytes, read_bytes, read_header, reason_code, reason_from_code,
    start_frame, BoundedBytes, WireError, MAX_MESSAGE_LEN,
};

/// Largest blinded message or blind signature: the modulus of a 4096-bit key, 512 bytes.
pub const MAX_BLIND_LEN: usize = 512;
/// Largest certificate carried: its fixed length, `psp_cert::CERTIFICATE_LEN` = 186 bytes.
pub const MAX_CERTIFICATE_LEN: usize = psp_cert::CERTIFICATE_LEN;
/// Domain separation of the requester's signature.
pub const POSSESSION_CONTEXT: &[u8] = b"psp/stream/receipt-request/v1";
/// Largest `ReceiptRequest` body: header 2 + certificate 2 + 186 + key id 32 + blinded
/// 2 + 512 + signature 64 = 800 bytes, within [`MAX_MESSAGE_LEN`].
pub const MAX_RECEIPT_REQUEST_BODY_LEN: usize =
    2 + 2 + MAX_CERTIFICATE_LEN + 32 + 2 + MAX_BLIND_LEN + SIGNATURE_LEN;
const _: () = assert!(MAX_RECEIPT_REQUEST_BODY_LEN <= MAX_MESSAGE_LEN);

/// Why the oracle refused a request. The code on the wire is the 1-based position in this
/// list.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
#[non_exhaustive]
pub enum OracleRefusal {
    /// The message did not decode, was not expected, or the blinded message does not fit the
    /// tier's key.
    Malformed,
    /// The certificate is forged, expired, for another chain, not from an elected authority,
    /// or the request's signature is not the certified identity's.
    BadCertificate,
    /// The certified identity is revoked or unknown on chain.
    IdentityNotLive,
    /// No subscription for the current epoch.
    NotSubscribed,
    /// No key with that id at this oracle in the current epoch.
    UnknownTier,
    /// The tier asked for is beyond the subscription's allowance.
    BeyondAllowance,
    /// The subscription drew its receipts for the epoch (counting every oracle's).
    Exhausted,
    /// The oracle is at one of its bounds; retry later or at another oracle.
    Busy,
    /// The oracle failed (a signing fault); nothing was issued.
    Internal,
}

const REFUSALS: [OracleRefusal; 9] = [
    OracleRefusal::Malformed,
    OracleRefusal::BadCertificate,
    OracleRefusal::IdentityNotLive,
    OracleRefusal::NotSubscribed,
    OracleRefusal::UnknownTier,
    OracleRefusal::BeyondAllowance,
    OracleRefusal::Exhausted,
    OracleRefusal::Busy,
    OracleRefusal::Internal,
];

/// Every message on a stream to the `oracle` service.
#[derive(Clone, PartialEq, Eq, Debug)]
#[non_exhaustive]
pub enum OracleMsg {
    /// Client → oracle: sign this blinded message with the key `tier`.
    ReceiptRequest {
        /// The requester's access certificate, encoded.
        certificate: BoundedBytes<MAX_CERTIFICATE_LEN>,
        /// The id of the oracle's published key for the tier asked for.
        tier: KeyId,
        /// The blinded receipt message (RFC 9474 `blinded_msg`).
        blinded: BoundedBytes<MAX_BLIND_LEN>,
        /// The certified identity's signature (see the module docs).
        signature: Sr25519Signature,
    },
    /// Oracle → client: the blind signature.
    ReceiptIssued {
        /// RFC 9474 `blind_sig`.
        blind_signature: BoundedBytes<MAX_BLIND_LEN>,
    },
    /// Oracle → client: refused.
    Refused(OracleRefusal),
}

mod types {
    pub const RECEIPT_REQUEST: u8 = 0x01;
    pub const RECEIPT_ISSUED: u8 = 0x02;
    pub const REFUSED: u8 = 0x03;
}

impl OracleMsg {
    /// The message's name, for logs and errors.
    pub fn name(&self) -> &'static str {
        match self {
            Self::ReceiptRequest { .. } => "ReceiptRequest",
            Self::ReceiptIssued { .. } => "ReceiptIssued",
            Self::Refused(_) => "Refused",
        }
    }

    /// The bytes the requester signs: [`POSSESSION_CONTEXT`] ‖ oracle ‖ tier ‖ blinded.
    pub fn possession_message(oracle: &[u8; 32], tier: &KeyId, blinded: &[u8]) -> Vec<u8> {
        [POSSESSION_CONTEXT, oracle, &tier.0, blinded].concat()
    }

    /// The frame to write on the stream: length prefix and body.
    pub fn encode(&self) -> Vec<u8> {
        use types::*;
        let out = match self {
            Self::ReceiptRequest {
                certificate,
                tier,
                blinded,
                signature,
            } => {
                let mut out = start_frame(RECEIPT_REQUEST);
                put_bytes(&mut out, certificate);
                out.extend_from_slice(&tier.0);
                put_bytes(&mut out, blinded);
                out.extend_from_slice(signature);
                out
            }
            Self::ReceiptIssued { blind_signature } => {
                let mut out = start_frame(RECEIPT_ISSUED);
                put_bytes(&mut out, blind_signature);
                out
            }
            Self::Refused(reason) => {
                let mut out = start_frame(REFUSED);
                out.push(reason_code(&REFUSALS, reason));
                out
            }
        };
        finish_frame(out)
    }

    /// Decodes one body (as the [`super::Deframer`] yields it, without the length prefix).
    pub fn decode(body: &[u8]) -> Result<Self, WireError> {
        use types::*;
        let mut r = Reader::new(body);
        let msg = match read_header(&mut r)? {
            RECEIPT_REQUEST => Self::ReceiptRequest {
                certificate: read_bytes(&mut r, "certificate")?,
                tier: KeyId(r.array()?),
                blinded: read_bytes(&mut r, "blinded message")?,
                signature: r.array()?,
            },
            RECEIPT_ISSUED => Self::ReceiptIssued {
                blind_signature: read_bytes(&mut r, "blind signature")?,
            },
            REFUSED => Self::Refused(reason_from_code(
                &REFUSALS,
                "oracle refusal reason",
                r.u8()?,
            )?),
            got => {
                return Err(WireError::UnknownType {
                    service: "oracle",
                    got,
                })
            }
        };
        expect_end(&r, msg.name())?;
        Ok(msg)
    }
}
