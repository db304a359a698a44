//! Messages on a stream to a landing node's `landing` service (stream creation).
//!
//! | message | direction | fields (after version and type) |
//! |---|---|---|
//! | `CreateStream` | producer → landing | receipt (2 + ≤ [`MAX_RECEIPT_LEN`]) · format flags 1 · count 1 (1 ..= [`MAX_DISTRIBUTION_NODES`]) · count × node id 32 |
//! | `StreamCreated` | landing → producer | stream id 32 · record (2 + ≤ [`MAX_RECORD_LEN`]) |
//! | `Refused` | landing → producer | reason 1 |
//!
//! `CreateStream` carries nothing that names the producer: an anonymous receipt, the flags
//! and the distribution nodes she chose.

use psp_onion::bytes::Reader;
use psp_receipts::receipt::{MAX_DISTRIBUTION_NODES, MAX_RECEIPT_LEN};

use super::{
    expect_end, finish_frame, put_bytes, read_bytes, read_header, reason_code, reason_from_code,
    start_frame, BoundedBytes, FormatFlags, WireError, MAX_MESSAGE_LEN,
};
use crate::record::{StreamId, MAX_RECORD_LEN};

/// Largest `CreateStream` body: header 2 + receipt 2 + 625 + flags 1 + count 1 + 32 × 32
/// = 1 655 bytes, within [`MAX_MESSAGE_LEN`].
pub const MAX_CREATE_STREAM_BODY_LEN: usize =
    2 + 2 + MAX_RECEIPT_LEN + 1 + 1 + MAX_DISTRIBUTION_NODES as usize * 32;
const _: () = assert!(MAX_CREATE_STREAM_BODY_LEN <= MAX_MESSAGE_LEN);
const _: () = assert!(2 + 32 + 2 + MAX_RECORD_LEN <= MAX_MESSAGE_LEN);

/// Why the landing node refused to create a stream. The code on the wire is the 1-based
/// position in this list.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
#[non_exhaustive]
pub enum LandingRefusal {
    /// The message or the receipt did not decode, or was not expected.
    Malformed,
    /// The receipt's key is not published on chain (or no longer held).
    UnknownKey,
    /// The receipt names another epoch than its key's.
    WrongEpoch,
    /// The receipt's key has expired.
    Expired,
    /// The receipt was spent before.
    AlreadySpent,
    /// The receipt's parameters exceed its key's tier.
    BeyondTier,
    /// The receipt's signature does not verify.
    BadSignature,
    /// More (or repeated) distribution nodes than the receipt allows.
    TooManyDistributionNodes,
    /// A distribution node is not a live node identity.
    DistributionNodeNotLive,
    /// Format flags without WebRTC, or with a reserved transport.
    UnsupportedFormat,
    /// The node is at one of its bounds; retry later or at another node.
    Busy,
    /// The receipt was drawn for another landing node.
    WrongLanding,
}

const REFUSALS: [LandingRefusal; 12] = [
    LandingRefusal::Malformed,
    LandingRefusal::UnknownKey,
    LandingRefusal::WrongEpoch,
    LandingRefusal::Expired,
    LandingRefusal::AlreadySpent,
    LandingRefusal::BeyondTier,
    LandingRefusal::BadSignature,
    LandingRefusal::TooManyDistributionNodes,
    LandingRefusal::DistributionNodeNotLive,
    LandingRefusal::UnsupportedFormat,
    LandingRefusal::Busy,
    LandingRefusal::WrongLanding,
];

/// Every message on a stream to the `landing` service.
#[derive(Clone, PartialEq, Eq, Debug)]
#[non_exhaustive]
pub enum LandingMsg {
    /// Producer → landing: create a stream with this receipt.
    CreateStream {
        /// The encoded receipt (`psp_receipts::Receipt::encode`).
        receipt: BoundedBytes<MAX_RECEIPT_LEN>,
        /// The distribution nodes, 1 ..= [`MAX_DISTRIBUTION_NODES`]. `encode` writes the
        /// first [`MAX_DISTRIBUTION_NODES`] only.
        distribution_nodes: Vec<[u8; 32]>,
        /// The transports asked for.
        format: FormatFlags,
    },
    /// Landing → producer: created; the signed record it publishes.
    StreamCreated {
        /// The stream's id.
        stream_id: StreamId,
        /// The encoded, signed [`crate::record::StreamRecord`].
        record: BoundedBytes<MAX_RECORD_LEN>,
    },
    /// Landing → producer: refused.
    Refused(LandingRefusal),
}

mod types {
    pub const CREATE_STREAM: u8 = 0x01;
    pub const STREAM_CREATED: u8 = 0x02;
    pub const REFUSED: u8 = 0x03;
}

impl LandingMsg {
    /// The message's name, for logs and errors.
    pub fn name(&self) -> &'static str {
        match self {
            Self::CreateStream { .. } => "CreateStream",
            Self::StreamCreated { .. } => "StreamCreated",
            Self::Refused(_) => "Refused",
        }
    }

    /// The frame to write on the stream: length prefix and body.
    pub fn encode(&self) -> Vec<u8> {
        use types::*;
        let out = match self {
            Self::CreateStream {
                receipt,
                distribution_nodes,
                format,
            } => {
                let mut out = start_frame(CREATE_STREAM);
                put_bytes(&mut out, receipt);
                out.push(format.bits());
                let count = distribution_nodes
                    .len()
                    .min(usize::from(MAX_DISTRIBUTION_NODES));
                // count ≤ 32.
                out.push(u8::try_from(count).unwrap_or(0));
                for node in distribution_nodes.iter().take(count) {
                    out.extend_from_slice(node);
                }
                out
            }
            Self::StreamCreated { stream_id, record } => {
                let mut out = start_frame(STREAM_CREATED);
                out.extend_from_slice(&stream_id.0);
                put_bytes(&mut out, record);
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
    /// The receipt and the record are carried as bytes, not decoded.
    pub fn decode(body: &[u8]) -> Result<Self, WireError> {
        use types::*;
        let mut r = Reader::new(body);
        let msg = match read_header(&mut r)? {
            CREATE_STREAM => {
                let receipt = read_bytes(&mut r, "receipt")?;
                let format = FormatFlags::from_bits(r.u8()?)?;
                let count = r.u8()?;
                if count == 0 || count > MAX_DISTRIBUTION_NODES {
                    return Err(WireError::InvalidValue {
                        field: "distribution node count",
                        value: u64::from(count),
                    });
                }
                let mut distribution_nodes = Vec::with_capacity(usize::from(count));
                for _ in 0..count {
                    distribution_nodes.push(r.array()?);
                }
                Self::CreateStream {
                    receipt,
                    distribution_nodes,
                    format,
                }
            }
            STREAM_CREATED => Self::StreamCreated {
                stream_id: StreamId(r.array()?),
                record: read_bytes(&mut r, "stream record")?,
            },
            REFUSED => Self::Refused(reason_from_code(
                &REFUSALS,
                "landing refusal reason",
                r.u8()?,
            )?),
            got => {
                return Err(WireError::UnknownType {
                    service: "landing",
                    got,
                })
            }
        };
        expect_end(&r, msg.name())?;
        Ok(msg)
    }
}
