//! The crate's one error type: why a frame did not encrypt or decrypt, why the relay or the
//! scaling machine refused an input, why bytes are not a media-link message.

use psp_onion::bytes::BytesError;

use crate::relay::SubscriberId;
use crate::sframe::KeyUsage;

/// Why an input was refused. Every variant carries what a user (or the log) needs to act on
/// it; none carries key material or plaintext.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MediaError {
    /// The input ended before a field was complete.
    #[error("truncated {what}: needed {needed} more bytes, {remaining} left")]
    Truncated {
        /// What was being decoded.
        what: &'static str,
        /// Bytes the field needed.
        needed: usize,
        /// Bytes that were left.
        remaining: usize,
    },
    /// Bytes after the last field of a message.
    #[error("{count} trailing bytes after {what}")]
    TrailingBytes {
        /// The message.
        what: &'static str,
        /// Bytes left over.
        count: usize,
    },
    /// A field holds a value the format does not define (an unknown code, a count out of
    /// range).
    #[error("invalid {field}: {value}")]
    InvalidValue {
        /// The field.
        field: &'static str,
        /// The value received.
        value: u64,
    },
    /// An SFrame header field not in its shortest form (RFC 9605 §4.3 requires the minimum
    /// number of bytes, and values 0–7 in the config byte).
    #[error("SFrame header: {field} not minimally encoded")]
    NonMinimalHeader {
        /// `"KID"` or `"CTR"`.
        field: &'static str,
    },
    /// A frame, plaintext or message beyond its bound.
    #[error("{what} of {len} bytes exceeds the bound of {max}")]
    TooLarge {
        /// What was measured.
        what: &'static str,
        /// Its length.
        len: usize,
        /// The bound.
        max: usize,
    },
    /// A frame shorter than the smallest it can be (header and tag).
    #[error("{what} of {len} bytes is shorter than the minimum of {min}")]
    TooShort {
        /// What was measured.
        what: &'static str,
        /// Its length.
        len: usize,
        /// The minimum.
        min: usize,
    },
    /// No key with this KID in the key store: the frame is for a key not (or no longer)
    /// provisioned.
    #[error("no SFrame key with KID {kid}")]
    UnknownKid {
        /// The KID of the frame or the request.
        kid: u64,
    },
    /// A key used the other way than it was added for (RFC 9605 §4.4.1: a key encrypts or
    /// decrypts, never both).
    #[error("SFrame key {kid} is for {usage:?} only")]
    WrongKeyUsage {
        /// The KID.
        kid: u64,
        /// What the key may do.
        usage: KeyUsage,
    },
    /// A key with this KID is already in the store; remove it first.
    #[error("SFrame key {kid} already present")]
    DuplicateKid {
        /// The KID.
        kid: u64,
    },
    /// The key store holds as many keys as it allows.
    #[error("SFrame key store full ({max} keys)")]
    TooManyKeys {
        /// The bound.
        max: usize,
    },
    /// A base key of an unsupported length.
    #[error("SFrame base key of {len} bytes (16 to 64 accepted)")]
    BaseKeyLength {
        /// Its length.
        len: usize,
    },
    /// Encrypting with a counter not above the last one used under this key: the (KID, CTR)
    /// pair would repeat a nonce.
    #[error("SFrame counter {ctr} reused under KID {kid}: next allowed is {next}")]
    CounterReused {
        /// The KID.
        kid: u64,
        /// The counter asked for.
        ctr: u64,
        /// The lowest counter still unused.
        next: u64,
    },
    /// Every counter of this key is spent (the last one, 2^64 − 1, was used): rotate the key.
    #[error("SFrame key {kid} exhausted its counters")]
    KeyExhausted {
        /// The KID.
        kid: u64,
    },
    /// The frame does not authenticate under its key: tampered header, ciphertext, tag or
    /// metadata, or a different key under the same KID.
    #[error("SFrame frame (KID {kid}, CTR {ctr}) does not authenticate")]
    Authentication {
        /// The KID of the header.
        kid: u64,
        /// The CTR of the header.
        ctr: u64,
    },
    /// The relay serves as many subscribers as it allows.
    #[error("relay full ({max} subscribers)")]
    TooManySubscribers {
        /// The bound.
        max: usize,
    },
    /// This subscriber is already subscribed.
    #[error("subscriber {id:?} already subscribed")]
    AlreadySubscribed {
        /// The subscriber.
        id: SubscriberId,
    },
    /// This subscriber is not (or no longer) subscribed.
    #[error("no subscriber {id:?}")]
    UnknownSubscriber {
        /// The subscriber.
        id: SubscriberId,
    },
    /// The publisher was cut off for sending above its bitrate class; no frame of it is
    /// taken any more.
    #[error("publisher cut off after {over_rate_for_ms} ms above its bitrate class")]
    PublisherCutOff {
        /// How long it was over the rate.
        over_rate_for_ms: u64,
    },
    /// A media-link message of a type this version does not define.
    #[error("unknown message type 0x{got:02x}")]
    UnknownMessageType {
        /// The type byte.
        got: u8,
    },
    /// A text field that is not UTF-8.
    #[error("{field} is not UTF-8")]
    NotUtf8 {
        /// The field.
        field: &'static str,
    },
    /// A load report whose signature does not verify under its node.
    #[error("load report signature of node {node:02x?}.. does not verify")]
    ReportSignature {
        /// First bytes of the node id.
        node: [u8; 4],
    },
    /// A load report from a node that is not an access point of the stream.
    #[error("load report from node {node:02x?}.., not an access point of the stream")]
    NotAnAccessPoint {
        /// First bytes of the node id.
        node: [u8; 4],
    },
    /// A load report for another stream.
    #[error("load report for stream {got:02x?}.., expected {expected:02x?}..")]
    WrongStream {
        /// First bytes of the report's stream id.
        got: [u8; 4],
        /// First bytes of the stream's id.
        expected: [u8; 4],
    },
    /// A load report not newer than the one held, or dated too far ahead of `now`.
    #[error("load report dated {at} ms refused (latest held {latest} ms, now {now} ms)")]
    ReportOutOfOrder {
        /// The report's time.
        at: u64,
        /// The time of the report held (0 if none).
        latest: u64,
        /// The current time.
        now: u64,
    },
    /// More access points than the receipt allows.
    #[error("{got} access points, the receipt allows {allowed}")]
    TooManyNodes {
        /// Nodes there would be.
        got: usize,
        /// The allowance.
        allowed: usize,
    },
    /// A node listed twice (or already an access point).
    #[error("node {node:02x?}.. listed twice")]
    DuplicateNode {
        /// First bytes of the node id.
        node: [u8; 4],
    },
    /// No access point can take a consumer: all are silent, or all are full.
    #[error(
        "no access point can take a consumer ({access_points} known, none live below capacity)"
    )]
    NoAccessPoint {
        /// Access points in the set.
        access_points: usize,
    },
}

impl MediaError {
    /// The byte layer's error, naming what was being decoded.
    pub(crate) fn bytes(what: &'static str) -> impl Fn(BytesError) -> Self {
        move |e| match e {
            BytesError::Truncated { needed, remaining }
            | BytesError::Full { needed, remaining } => MediaError::Truncated {
                what,
                needed,
                remaining,
            },
        }
    }
}

/// First four bytes of an id, for error messages.
pub(crate) fn short(id: &[u8; 32]) -> [u8; 4] {
    [id[0], id[1], id[2], id[3]]
}
