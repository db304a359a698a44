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

/// Starts a frame: reserves the length prefix and writes version and type.
pub(crate) fn start_frame(message_type: u8) -> Vec<u8> {
    let mut out = Vec::with_capacity(64);
    out.extend_from_slice(&[0, 0, VERSION, message_type]);
    out
}

/// Fills in the length prefix. Every message's fields are bounded so that the body stays
/// within [`MAX_MESSAGE_LEN`] (< 65 536, checked at compile time per message); the saturation
/// is unreachable.
pub(crate) fn finish_frame(mut out: Vec<u8>) -> Vec<u8> {
    let body_len = out.len().saturating_sub(2);
    let prefix = u16::try_from(body_len).unwrap_or(u16::MAX).to_be_bytes();
    out[..2].copy_from_slice(&prefix);
    out
}

/// Appends a length-prefixed byte field.
pub(crate) fn put_bytes<const MAX: usize>(out: &mut Vec<u8>, field: &BoundedBytes<MAX>) {
    // Every bound used is ≤ MAX_MESSAGE_LEN < 65 536.
    let len = u16::try_from(field.len()).unwrap_or(u16::MAX);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(field.as_slice());
}

/// Reads the body header: checks the version, returns the message type.
pub(crate) fn read_header(r: &mut Reader<'_>) -> Result<u8, WireError> {
    let version = r.u8()?;
    if version != VERSION {
        return Err(WireError::Version { got: version });
    }
    Ok(r.u8()?)
}

/// Reads a length-prefixed byte field of at most `MAX` bytes.
pub(crate) fn read_bytes<const MAX: usize>(
    r: &mut Reader<'_>,
    field: &'static str,
) -> Result<BoundedBytes<MAX>, WireError> {
    let len = usize::from(r.u16()?);
    if len > MAX {
        return Err(WireError::FieldTooLong {
            field,
            len,
            max: MAX,
        });
    }
    BoundedBytes::new(field, r.take(len)?.to_vec())
}

/// Refuses bytes after the last field.
pub(crate) fn expect_end(r: &Reader<'_>, message: &'static str) -> Result<(), WireError> {
    match r.remaining() {
        0 => Ok(()),
        count => Err(WireError::TrailingBytes { message, count }),
    }
}

/// The code of a refusal reason: its 1-based position in `table`, which lists every variant.
pub(crate) fn reason_code<T: PartialEq>(table: &[T], reason: &T) -> u8 {
    let index = table.iter().position(|r| r == reason).unwrap_or(0);
    u8::try_from(index + 1).unwrap_or(0)
}

/// The refusal reason of a code, or `InvalidValue` naming `field`.
pub(crate) fn reason_from_code<T: Copy>(
    table: &[T],
    field: &'static str,
    code: u8,
) -> Result<T, WireError> {
    usize::from(code)
        .checked_sub(1)
        .and_then(|i| table.get(i))
        .copied()
        .ok_or(WireError::InvalidValue {
            field,
            value: u64::from(code),
        })
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
