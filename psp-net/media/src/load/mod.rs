//! Distribution-node load reports and the landing node's scaling decisions.
//!
//! Every access point (distribution node) of a stream periodically sends the landing node a
//! [`LoadReport`] signed with its node key; the landing node's [`Scaling`] machine keeps the
//! latest report of each, spreads consumers over the least-loaded ones and asks for more nodes
//! when the set runs short.
//!
//! A signed report on the wire (156 bytes, integers big-endian):
//!
//! | field | bytes |
//! |---|---|
//! | `node`: the distribution node's id (sr25519 public key) | 32 |
//! | `stream_id` | 32 |
//! | `subscribers` | 4 |
//! | `bytes_per_sec_out` | 8 |
//! | `capacity_bytes_per_sec` | 8 |
//! | `at`: unix milliseconds | 8 |
//! | sr25519 signature by `node` over [`LOAD_REPORT_CONTEXT`] ‖ the 92 bytes above | 64 |
//!
//! Decoding yields a [`SignedLoadReport`], unchecked; only [`SignedLoadReport::verify`] yields
//! the [`LoadReport`].

mod scaling;

pub use scaling::{Action, ConsumerId, NodeLoad, Scaling, ScalingConfig, MAX_ACCESS_POINTS};

use psp_onion::bytes::Reader;
use psp_onion::crypto::{sr25519_verify, NodeId, Sr25519Keypair, Sr25519Signature};

use crate::error::short;
use crate::{MediaError, StreamId};

/// Domain separation of the report signature.
pub const LOAD_REPORT_CONTEXT: &[u8] = b"psp/media/load-report/v1";
/// The signed fields: node 32 + stream 32 + subscribers 4 + rate 8 + capacity 8 + time 8.
pub const LOAD_REPORT_BODY_LEN: usize = 32 + 32 + 4 + 8 + 8 + 8;
/// A signed report: the body and a 64-byte signature.
pub const SIGNED_LOAD_REPORT_LEN: usize = LOAD_REPORT_BODY_LEN + 64;

/// What one distribution node serves of one stream, at one time.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct LoadReport {
    /// The reporting distribution node.
    pub node: NodeId,
    /// The stream.
    pub stream_id: StreamId,
    /// Consumers it serves the stream to.
    pub subscribers: u32,
    /// Bytes per second it sends, all consumers of the stream together.
    pub bytes_per_sec_out: u64,
    /// Bytes per second it is willing to send for this stream.
    pub capacity_bytes_per_sec: u64,
    /// When it was made: unix milliseconds.
    pub at: u64,
}

impl LoadReport {
    /// The signed fields.
    fn body(&self) -> [u8; LOAD_REPORT_BODY_LEN] {
        let mut out = [0u8; LOAD_REPORT_BODY_LEN];
        out[..32].copy_from_slice(&self.node.0);
        out[32..64].copy_from_slice(&self.stream_id.0);
        out[64..68].copy_from_slice(&self.subscribers.to_be_bytes());
        out[68..76].copy_from_slice(&self.bytes_per_sec_out.to_be_bytes());
        out[76..84].copy_from_slice(&self.capacity_bytes_per_sec.to_be_bytes());
        out[84..92].copy_from_slice(&self.at.to_be_bytes());
        out
    }

    fn signed_message(&self) -> Vec<u8> {
        [LOAD_REPORT_CONTEXT, &self.body()].concat()
    }

    /// Signs the report with `key`, which must be `node`'s (otherwise it will not verify).
    pub fn sign(&self, key: &Sr25519Keypair) -> SignedLoadReport {
        SignedLoadReport {
            report: *self,
            signature: key.sign(&self.signed_message()),
        }
    }

    /// Load as a fraction of capacity, in thousandths (saturating; zero capacity is full).
    pub fn load_permille(&self) -> u64 {
        permille(self.bytes_per_sec_out, self.capacity_bytes_per_sec)
    }
}

/// `num / den` in thousandths, saturating; a zero denominator is "full" (1000) unless
/// `num` is zero too.
pub(crate) fn permille(num: u64, den: u64) -> u64 {
    if den == 0 {
        return if num == 0 { 0 } else { u64::MAX };
    }
    u64::try_from(u128::from(num) * 1000 / u128::from(den)).unwrap_or(u64::MAX)
}

/// A load report as received: the signature is not checked yet.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct SignedLoadReport {
    report: LoadReport,
    signature: Sr25519Signature,
}

impl SignedLoadReport {
    /// The report, not yet verified: for logs and routing only.
    pub fn unverified(&self) -> &LoadReport {
        &self.report
    }

    /// The signature.
    pub fn signature(&self) -> &Sr25519Signature {
        &self.signature
    }

    /// Checks the signature under the report's own node; the report if it verifies. Whether
    /// that node is one of the stream's access points is [`Scaling`]'s check.
    pub fn verify(&self) -> Result<LoadReport, MediaError> {
        let r = &self.report;
        if !sr25519_verify(&r.node.0, &r.signed_message(), &self.signature) {
            return Err(MediaError::ReportSignature {
                node: short(&r.node.0),
            });
        }
        Ok(*r)
    }

    /// The [`SIGNED_LOAD_REPORT_LEN`] bytes.
    pub fn encode(&self) -> [u8; SIGNED_LOAD_REPORT_LEN] {
        let mut out = [0u8; SIGNED_LOAD_REPORT_LEN];
        out[..LOAD_REPORT_BODY_LEN].copy_from_slice(&self.report.body());
        out[LOAD_REPORT_BODY_LEN..].copy_from_slice(&self.signature);
        out
    }

    /// Decodes exactly [`SIGNED_LOAD_REPORT_LEN`] bytes; checks nothing but the length.
    pub fn decode(bytes: &[u8]) -> Result<Self, MediaError> {
        const WHAT: &str = "load report";
        let mut r = Reader::new(bytes);
        let e = MediaError::bytes(WHAT);
        let report = LoadReport {
            node: NodeId(r.array().map_err(&e)?),
            stream_id: StreamId(r.array().map_err(&e)?),
            subscribers: r.u32().map_err(&e)?,
            bytes_per_sec_out: r.u64().map_err(&e)?,
            capacity_bytes_per_sec: r.u64().map_err(&e)?,
            at: r.u64().map_err(&e)?,
        };
        let signature = r.array().map_err(&e)?;
        if r.remaining() != 0 {
            return Err(MediaError::TrailingBytes {
                what: WHAT,
                count: r.remaining(),
            });
        }
        Ok(Self { report, signature })
    }
}
