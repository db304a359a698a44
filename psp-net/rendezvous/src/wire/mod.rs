//! The wire format of the `presence`, `rendezvous` and `lookup` services.
//!
//! One `#[non_exhaustive]` message enum per service ([`PresenceMsg`], [`RendezvousMsg`],
//! [`LookupMsg`]).
//! On an onion stream every message is a frame:
//!
//! | field | bytes |
//! |---|---|
//! | body length `n` (big-endian) | 2 |
//! | version = [`VERSION`] | 1 |
//! | message type | 1 |
//! | fields | `n − 2` |
//!
//! Variable fields carry a 2-byte length and an upper bound of their own; integers are
//! big-endian. The [`Deframer`] cuts a stream's bytes into bodies (at most
//! [`MAX_MESSAGE_LEN`] each, so its buffer is bounded); `decode` turns a body into a message
//! and checks structure only, never a signature or a time. Decoders never panic.

mod bounded;
pub mod codec;
mod deframer;
pub mod lookup;
pub mod presence;
pub mod rendezvous;

pub use bounded::BoundedBytes;
pub use deframer::Deframer;
pub use lookup::{
    LookupMsg, LookupRecord, LookupRefusal, MAX_LOOKUP_RECORDS, MAX_LOOKUP_RECORD_LEN,
    MAX_LOOKUP_SLOTS,
};
pub use presence::{
    ChannelLimits, IntroRefusal, OwnerSignedRecord, PresenceMsg, Register, RegisterRefusal,
    Registered, SealedIntroduction, MAX_SEALED_INTRODUCTION_LEN,
};
pub use rendezvous::{
    HandshakeBytes, RelayPayload, RendezvousMsg, RendezvousRefusal, MAX_HANDSHAKE_LEN,
    MAX_RELAY_PAYLOAD_LEN,
};

use psp_onion::bytes::BytesError;

/// Wire version, the first byte of every body.
pub const VERSION: u8 = 1;
/// The length prefix of a frame: a big-endian `u16`.
pub const LENGTH_PREFIX_LEN: usize = 2;
/// Version + message type = 1 + 1 = 2 bytes at the start of every body.
pub const BODY_HEADER_LEN: usize = 2;
/// Largest body: 8 KiB. The largest message, a `Register` with a full 4 096-byte record
/// value, is 2 + 3 × 32 + 3 × 8 + 2 + 4 096 + 64 + 6 = 4 290 bytes; the rest is headroom.
pub const MAX_MESSAGE_LEN: usize = 8 * 1024;
/// What a `Relay` frame adds around its payload: length prefix 2 + version 1 + type 1 = 4
/// bytes. A channel frame that must fit one onion cell may be at most the stream's data per
/// cell minus this (see `channel::ChannelConfig::for_cell_data`).
pub const RELAY_OVERHEAD: usize = LENGTH_PREFIX_LEN + BODY_HEADER_LEN;

/// Why bytes are not a message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum WireError {
    /// A field ran past the end of the body.
    #[error("message truncated: {0}")]
    Truncated(#[from] BytesError),
    /// The body starts with a version this code does not speak.
    #[error("unsupported wire version {got} (this node speaks {VERSION})")]
    Version {
        /// The version byte received.
        got: u8,
    },
    /// The message type is not one of the service's.
    #[error("unknown {service} message type 0x{got:02x}")]
    UnknownType {
        /// `presence`, `rendezvous` or `lookup`.
        service: &'static str,
        /// The type byte received.
        got: u8,
    },
    /// Bytes were left after the last field.
    #[error("{count} trailing bytes after a {message} message")]
    TrailingBytes {
        /// The message type's name.
        message: &'static str,
        /// How many bytes were left.
        count: usize,
    },
    /// A variable field is longer than its bound.
    #[error("{field} of {len} bytes exceeds its limit of {max}")]
    FieldTooLong {
        /// The field's name.
        field: &'static str,
        /// Its length.
        len: usize,
        /// Its bound.
        max: usize,
    },
    /// A frame announced a body shorter than the version and type bytes.
    #[error("frame of {len} bytes is shorter than a body header")]
    FrameTooShort {
        /// The announced body length.
        len: usize,
    },
    /// A frame announced a body longer than [`MAX_MESSAGE_LEN`].
    #[error("frame of {len} bytes exceeds the limit of {MAX_MESSAGE_LEN}")]
    FrameTooLong {
        /// The announced body length.
        len: usize,
    },
    /// A field holds a value that has no meaning (a reason code, a flag bit, a record kind).
    #[error("invalid {field}: {value}")]
    InvalidValue {
        /// The field's name.
        field: &'static str,
        /// The value received.
        value: u64,
    },
}

/// Runs every decoder of the crate on `data`: the fuzz target's body. Never panics; the
/// results are thrown away.
pub fn fuzz_decode_all(data: &[u8]) {
    let _ = PresenceMsg::decode(data);
    let _ = RendezvousMsg::decode(data);
    let _ = LookupMsg::decode(data);
    let mut deframer = Deframer::default();
    if let Ok(bodies) = deframer.feed(data) {
        for body in bodies {
            let _ = PresenceMsg::decode(&body);
            let _ = RendezvousMsg::decode(&body);
            if let Ok(LookupMsg::Records(records)) = LookupMsg::decode(&body) {
                for record in records {
                    let _ = psp_dht::SignedRecord::decode(record.as_slice());
                }
            }
        }
    }
    let _ = crate::record::PresenceValue::decode(data);
    let _ = crate::intro::fuzz_decode_plaintext(data);
    let _ = crate::handshake::fuzz_decode(data);
    let _ = crate::channel::fuzz_decode_plaintext(data);
}
