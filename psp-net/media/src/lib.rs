//! # psp-media: the realtime media path of PSP streams, sans IO (issue 13, points 4–6, 10)
//!
//! ## Overview
//!
//! A producer encrypts every media frame end to end with SFrame and sends it over a media link
//! to the stream's landing node; the landing node fans it out to the stream's distribution
//! nodes (access points), which fan it out to consumers. Nodes forward ciphertext only.
//!
//! ```text
//! producer ──Publish, Frame…──▶ landing node ──Frame…──▶ distribution nodes ──▶ consumers
//!          ◀──NeedNodes─────── (Relay, Scaling) ◀──Load── (Relay)
//!          ───AddNodes───────▶
//! ```
//!
//! ## Modules
//! * [`sframe`]: RFC 9605 frame encryption, suite `AES_128_GCM_SHA256_128` (WebCrypto-decodable).
//! * [`relay`]: the per-stream fan-out machine (token bucket, bounded queues, stall removal).
//! * [`load`]: signed load reports and the landing node's [`load::Scaling`] machine.
//! * [`wire`]: the media link's length-prefixed messages and their [`wire::Deframer`].
//! * [`pattern`]: the self-checking test pattern producers send without a media source.
//!
//! State machines only: no sockets, tasks or clock. Time comes in as milliseconds (`now_ms`),
//! answers go out as return values, `poll_*` outputs and events. Every queue is bounded.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod error;
pub mod load;
pub mod pattern;
pub mod relay;
pub mod sframe;
pub mod wire;

pub use error::MediaError;
pub use wire::fuzz_decode_all;

/// A stream id: the same 32 bytes as `psp-stream`'s `record::StreamId` (the driver converts
/// with `.0`; this crate does not depend on the stream-creation crate).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct StreamId(pub [u8; 32]);

impl core::fmt::Debug for StreamId {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "StreamId(")?;
        for b in &self.0[..4] {
            write!(f, "{b:02x}")?;
        }
        write!(f, "..)")
    }
}
