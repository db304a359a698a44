//! The wire format of the `oracle` and `landing` services.
//!
//! One `#[non_exhaustive]` message enum per service ([`OracleMsg`], [`LandingMsg`]). On an
//! onion stream every message is a frame as in `psp-rendezvous` (whose [`Deframer`] is
//! reused, so every node service frames alike):
//!
//! | field | bytes |
//! |---|---|
//! | body length `n` (big-endian) | 2 |
//! | version = [`VERSION`] | 1 |
//! | message type | 1 |
//! | fields | `n − 2` |
//!
//! Variable fields carry a 2-byte length and an upper bound of their own; integers are
//! big-endian. Decoding checks structure and bounds only (never a signature, a time or the
//! chain), refuses unknown message types, unknown reason codes, unknown flag bits and trailing
//! bytes, and never panics.

mod landing;
mod oracle;

pub use landing::{LandingMsg, LandingRefusal, MAX_CREATE_STREAM_BODY_LEN};
pub use oracle::{
    OracleMsg, OracleRefusal, MAX_BLIND_LEN, MAX_RECEIPT_REQUEST_BODY_LEN, POSSESSION_CONTEXT,
};
pub use psp_rendezvous::wire::{BoundedBytes, Deframer, WireError, MAX_MESSAGE_LEN};

use psp_onion::bytes::Reader;
// Field encoding, as `psp-rendezvous` frames its messages (with this crate's version byte).
pub(crate) use psp_rendezvous::wire::codec::{
    self, expect_end, finish_frame, put_bytes, read_bytes, reason_code, reason_from_code,
};

/// Wire version, the first byte of every body.
pub const VERSION: u8 = 1;

/// A stream's transports: which protocols its access points serve consumers with.
///
/// | bit | name | status |
/// |---|---|---|
/// | 0 | [`FormatFlags::WEBRTC`] | defined, required in every record |
/// | 1 | [`FormatFlags::RTMP`] | named, reserved: landing nodes refuse it for now |
/// | 2 | [`FormatFlags::RTMPE`] | named, reserved: landing nodes refuse it for now |
///
/// Any other bit is refused when decoding, so a future flag is an explicit version bump.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct FormatFlags(u8);

impl FormatFlags {
    /// WebRTC (DTLS-SRTP / data channels) from the access points.
    pub const WEBRTC: u8 = 0x01;
    /// RTMP, reserved for later.
    pub const RTMP: u8 = 0x02;
    /// RTMPE, reserved for later.
    pub const RTMPE: u8 = 0x04;
    /// Every bit with a name.
    pub const KNOWN: u8 = Self::WEBRTC | Self::RTMP | Self::RTMPE;

    /// WebRTC only: what landing nodes create today.
    pub const fn webrtc() -> Self {
        Self(Self::WEBRTC)
    }

    /// The flags of `bits`, or `InvalidValue` if a bit has no name.
    pub fn from_bits(bits: u8) -> Result<Self, WireError> {
        if bits & !Self::KNOWN != 0 {
            return Err(WireError::InvalidValue {
                field: "format flags",
                value: u64::from(bits),
            });
        }
        Ok(Self(bits))
    }

    /// The raw bits.
    pub const fn bits(self) -> u8 {
        self.0
    }

    /// Whether every bit of `flag` is set.
    pub const fn contains(self, flag: u8) -> bool {
        self.0 & flag == flag
    }
}

/// Starts a frame of this crate's [`VERSION`].
pub(crate) fn start_frame(message_type: u8) -> Vec<u8> {
    codec::start_frame(VERSION, message_type)
}

/// Reads the body header: checks this crate's [`VERSION`], returns the message type.
pub(crate) fn read_header(r: &mut Reader<'_>) -> Result<u8, WireError> {
    codec::read_header(r, VERSION)
}

/// Runs every decoder of the crate on `data`: the fuzz target's body. Never panics; the
/// results are thrown away.
pub fn fuzz_decode_all(data: &[u8]) {
    let _ = OracleMsg::decode(data);
    let _ = LandingMsg::decode(data);
    let _ = crate::record::StreamRecord::decode(data);
    let _ = psp_receipts::Receipt::decode(data);
    let mut deframer = Deframer::default();
    if let Ok(bodies) = deframer.feed(data) {
        for body in bodies {
            let _ = OracleMsg::decode(&body);
            if let Ok(LandingMsg::StreamCreated { record, .. }) = LandingMsg::decode(&body) {
                let _ = crate::record::StreamRecord::decode(record.as_slice());
            }
        }
    }
}

#[cfg(test)]
mod tests;
