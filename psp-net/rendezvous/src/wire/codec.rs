//! Field encoding shared by the message families: the body header, length-prefixed fields,
//! the trailing-bytes check, refusal reason codes.
//!
//! Public so that other node services framing their messages alike (`psp-stream`'s `oracle`
//! and `landing`) encode with the same code; each passes its own wire version byte
//! (`psp-rendezvous`'s messages use [`VERSION`](super::VERSION)).

use psp_onion::bytes::Reader;

use super::{BoundedBytes, WireError, BODY_HEADER_LEN, LENGTH_PREFIX_LEN};

/// Starts a frame: reserves the length prefix and writes `version` and the message type.
pub fn start_frame(version: u8, message_type: u8) -> Vec<u8> {
    let mut out = Vec::with_capacity(64);
    out.extend_from_slice(&[0, 0, version, message_type]);
    out
}

/// Fills in the length prefix of a frame begun with [`start_frame`]. Every message's fields are
/// bounded so that the body stays within [`MAX_MESSAGE_LEN`](super::MAX_MESSAGE_LEN) (< 65 536); the saturation is
/// unreachable.
pub fn finish_frame(mut out: Vec<u8>) -> Vec<u8> {
    let body_len = out.len().saturating_sub(LENGTH_PREFIX_LEN);
    let prefix = u16::try_from(body_len).unwrap_or(u16::MAX).to_be_bytes();
    out[..LENGTH_PREFIX_LEN].copy_from_slice(&prefix);
    out
}

/// Appends a length-prefixed byte field.
pub fn put_bytes<const MAX: usize>(out: &mut Vec<u8>, field: &BoundedBytes<MAX>) {
    // BoundedBytes bounds are ≤ MAX_MESSAGE_LEN < 65 536.
    let len = u16::try_from(field.len()).unwrap_or(u16::MAX);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(field.as_slice());
}

/// Reads the body header: checks that the version is `expected`, returns the message type.
pub fn read_header(r: &mut Reader<'_>, expected: u8) -> Result<u8, WireError> {
    let version = r.u8()?;
    if version != expected {
        return Err(WireError::Version { got: version });
    }
    Ok(r.u8()?)
}

/// Reads a length-prefixed byte field of at most `MAX` bytes.
pub fn read_bytes<const MAX: usize>(
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

/// Reads the rest of the body as one field of at most `MAX` bytes.
pub fn read_rest<const MAX: usize>(
    r: &mut Reader<'_>,
    field: &'static str,
) -> Result<BoundedBytes<MAX>, WireError> {
    let rest = r.take(r.remaining())?;
    BoundedBytes::new(field, rest.to_vec())
}

/// Refuses bytes after the last field.
pub fn expect_end(r: &Reader<'_>, message: &'static str) -> Result<(), WireError> {
    match r.remaining() {
        0 => Ok(()),
        count => Err(WireError::TrailingBytes { message, count }),
    }
}

/// The code of a refusal reason: its 1-based position in `table`, which lists every variant.
pub fn reason_code<T: PartialEq>(table: &[T], reason: &T) -> u8 {
    let index = table.iter().position(|r| r == reason).unwrap_or(0);
    u8::try_from(index + 1).unwrap_or(0)
}

/// The refusal reason of a code, or `InvalidValue` naming `field`.
pub fn reason_from_code<T: Copy>(
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

/// The smallest body: the header alone.
pub(crate) const MIN_BODY_LEN: usize = BODY_HEADER_LEN;
