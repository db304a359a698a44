//! The media link's messages: what a producer and her landing node, and a landing node and its
//! distribution nodes, exchange over one reliable ordered byte stream.
//!
//! Every message is one frame:
//!
//! | field | bytes |
//! |---|---|
//! | length `n` of type and body (big-endian) | 4 |
//! | message type | 1 |
//! | body | `n − 1`, at most [`MAX_BODY_LEN`] |
//!
//! | type | message | body | direction |
//! |---|---|---|---|
//! | 0x01 | [`MediaMsg::Publish`] | stream id 32 ‖ token 32 | producer → landing, landing → distribution: opens the link |
//! | 0x02 | [`MediaMsg::Frame`] | one SFrame ciphertext, [`MIN_FRAME_LEN`]..=[`MAX_FRAME_LEN`] | downstream |
//! | 0x03 | [`MediaMsg::Load`] | a signed load report, 156 ([`crate::load`]) | distribution → landing |
//! | 0x04 | [`MediaMsg::NeedNodes`] | count 1 (1..=32) | landing → producer |
//! | 0x05 | [`MediaMsg::AddNodes`] | count 1 (1..=32) ‖ 32 × count node ids, distinct | producer → landing |
//! | 0x06 | [`MediaMsg::Error`] | code 1 ‖ reason, UTF-8, ≤ [`MAX_REASON_LEN`] | either, then close |
//!
//! The version is the link's protocol name (`/psp/media/1`), not a byte. Decoders are strict:
//! known types and codes, exact or bounded lengths, no trailing bytes, no panics; they check no
//! signature (a `Load` decodes to an unchecked [`SignedLoadReport`]). A [`Deframer`] holds at
//! most one incomplete frame; after any error the link is closed.

use psp_onion::crypto::NodeId;

use crate::error::short;
use crate::load::{SignedLoadReport, MAX_ACCESS_POINTS, SIGNED_LOAD_REPORT_LEN};
use crate::sframe::{MAX_FRAME_LEN, MIN_FRAME_LEN};
use crate::{MediaError, StreamId};

/// Bytes of the length prefix.
pub const LENGTH_PREFIX_LEN: usize = 4;
/// Longest body: a frame of [`MAX_FRAME_LEN`].
pub const MAX_BODY_LEN: usize = MAX_FRAME_LEN;
/// Longest frame after the prefix: the type byte and the longest body.
pub const MAX_MESSAGE_LEN: usize = 1 + MAX_BODY_LEN;
/// Longest error reason, in bytes.
pub const MAX_REASON_LEN: usize = 256;
/// Length of the publish token.
pub const TOKEN_LEN: usize = 32;

const T_PUBLISH: u8 = 0x01;
const T_FRAME: u8 = 0x02;
const T_LOAD: u8 = 0x03;
const T_NEED_NODES: u8 = 0x04;
const T_ADD_NODES: u8 = 0x05;
const T_ERROR: u8 = 0x06;

/// Why a link is closed, sent in [`MediaMsg::Error`].
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
#[non_exhaustive]
pub enum ErrorCode {
    /// The publish token was refused.
    BadToken = 1,
    /// No such stream here.
    UnknownStream = 2,
    /// The publisher exceeded its bitrate class and was cut off.
    OverRate = 3,
    /// The node serves as many subscribers or streams as it allows.
    Full = 4,
    /// A message did not decode.
    Malformed = 5,
    /// A message not allowed now (a second `Publish`, a `Frame` before it).
    Unexpected = 6,
    /// The peer took no frame for too long.
    Stalled = 7,
}

impl ErrorCode {
    const ALL: [ErrorCode; 7] = [
        Self::BadToken,
        Self::UnknownStream,
        Self::OverRate,
        Self::Full,
        Self::Malformed,
        Self::Unexpected,
        Self::Stalled,
    ];

    /// The code of a byte, if defined.
    pub fn from_u8(b: u8) -> Option<Self> {
        Self::ALL.iter().copied().find(|c| *c as u8 == b)
    }
}

/// A media-link message.
#[derive(Clone, PartialEq, Eq, Debug)]
#[non_exhaustive]
pub enum MediaMsg {
    /// Opens a link for a stream: the token is what the landing node gave the producer (or
    /// a distribution node) when the stream was created; the receiver checks it.
    Publish {
        /// The stream.
        stream_id: StreamId,
        /// The secret token.
        token: [u8; TOKEN_LEN],
    },
    /// One media frame: SFrame ciphertext, opaque to nodes.
    Frame(Vec<u8>),
    /// A distribution node's signed load report.
    Load(SignedLoadReport),
    /// The landing node asks the producer for more distribution nodes.
    NeedNodes {
        /// How many, 1..=32.
        count: u8,
    },
    /// The producer supplies distribution nodes.
    AddNodes {
        /// Distinct node ids, 1..=32.
        nodes: Vec<NodeId>,
    },
    /// The sender closes the link.
    Error {
        /// Why.
        code: ErrorCode,
        /// Detail for logs, UTF-8.
        reason: String,
    },
}

/// The 5 bytes before a frame's ciphertext in a [`MediaMsg::Frame`]: lets a relay send a shared
/// frame without copying it into a message. `len` must be within the frame bounds.
pub fn frame_prefix(len: usize) -> [u8; LENGTH_PREFIX_LEN + 1] {
    let n = u32::try_from(len.saturating_add(1))
        .unwrap_or(u32::MAX)
        .to_be_bytes();
    [n[0], n[1], n[2], n[3], T_FRAME]
}

impl MediaMsg {
    /// The whole frame: length prefix, type, body. Bodies built from this crate's types are
    /// within bounds; a `Frame` or `AddNodes` assembled by hand is the caller's to bound (the
    /// receiver refuses it otherwise).
    pub fn encode(&self) -> Vec<u8> {
        let mut out = vec![0u8; LENGTH_PREFIX_LEN];
        match self {
            MediaMsg::Publish { stream_id, token } => {
                out.push(T_PUBLISH);
                out.extend_from_slice(&stream_id.0);
                out.extend_from_slice(token);
            }
            MediaMsg::Frame(frame) => {
                out.push(T_FRAME);
                out.extend_from_slice(frame);
            }
            MediaMsg::Load(report) => {
                out.push(T_LOAD);
                out.extend_from_slice(&report.encode());
            }
            MediaMsg::NeedNodes { count } => out.extend_from_slice(&[T_NEED_NODES, *count]),
            MediaMsg::AddNodes { nodes } => {
                out.push(T_ADD_NODES);
                out.push(u8::try_from(nodes.len()).unwrap_or(u8::MAX));
                for n in nodes {
                    out.extend_from_slice(&n.0);
                }
            }
            MediaMsg::Error { code, reason } => {
                out.push(T_ERROR);
                out.push(*code as u8);
                out.extend_from_slice(reason.as_bytes());
            }
        }
        let n = u32::try_from(out.len() - LENGTH_PREFIX_LEN)
            .unwrap_or(u32::MAX)
            .to_be_bytes();
        out[..LENGTH_PREFIX_LEN].copy_from_slice(&n);
        out
    }

    /// Decodes one frame's type and body (the bytes after the length prefix).
    pub fn decode(bytes: &[u8]) -> Result<Self, MediaError> {
        let (&ty, body) = bytes.split_first().ok_or(MediaError::Truncated {
            what: "media message",
            needed: 1,
            remaining: 0,
        })?;
        if body.len() > MAX_BODY_LEN {
            return Err(MediaError::TooLarge {
                what: "media message body",
                len: body.len(),
                max: MAX_BODY_LEN,
            });
        }
        match ty {
            T_PUBLISH => {
                exact(body, 64, "Publish")?;
                let mut stream_id = [0u8; 32];
                let mut token = [0u8; TOKEN_LEN];
                stream_id.copy_from_slice(&body[..32]);
                token.copy_from_slice(&body[32..]);
                Ok(MediaMsg::Publish {
                    stream_id: StreamId(stream_id),
                    token,
                })
            }
            T_FRAME => {
                if body.len() < MIN_FRAME_LEN {
                    return Err(MediaError::TooShort {
                        what: "Frame",
                        len: body.len(),
                        min: MIN_FRAME_LEN,
                    });
                }
                Ok(MediaMsg::Frame(body.to_vec()))
            }
            T_LOAD => {
                exact(body, SIGNED_LOAD_REPORT_LEN, "Load")?;
                Ok(MediaMsg::Load(SignedLoadReport::decode(body)?))
            }
            T_NEED_NODES => {
                exact(body, 1, "NeedNodes")?;
                Ok(MediaMsg::NeedNodes {
                    count: node_count(body[0])?,
                })
            }
            T_ADD_NODES => {
                let (&count, ids) = body.split_first().ok_or(MediaError::Truncated {
                    what: "AddNodes",
                    needed: 1,
                    remaining: 0,
                })?;
                let count = usize::from(node_count(count)?);
                exact(ids, count * 32, "AddNodes")?;
                let mut nodes: Vec<NodeId> = Vec::with_capacity(count);
                for chunk in ids.chunks_exact(32) {
                    let mut id = [0u8; 32];
                    id.copy_from_slice(chunk);
                    if nodes.iter().any(|n| n.0 == id) {
                        return Err(MediaError::DuplicateNode { node: short(&id) });
                    }
                    nodes.push(NodeId(id));
                }
                Ok(MediaMsg::AddNodes { nodes })
            }
            T_ERROR => {
                let (&code, reason) = body.split_first().ok_or(MediaError::Truncated {
                    what: "Error",
                    needed: 1,
                    remaining: 0,
                })?;
                let code = ErrorCode::from_u8(code).ok_or(MediaError::InvalidValue {
                    field: "error code",
                    value: u64::from(code),
                })?;
                if reason.len() > MAX_REASON_LEN {
                    return Err(MediaError::TooLarge {
                        what: "error reason",
                        len: reason.len(),
                        max: MAX_REASON_LEN,
                    });
                }
                let reason = std::str::from_utf8(reason)
                    .map_err(|_| MediaError::NotUtf8 {
                        field: "error reason",
                    })?
                    .to_owned();
                Ok(MediaMsg::Error { code, reason })
            }
            got => Err(MediaError::UnknownMessageType { got }),
        }
    }
}

fn exact(body: &[u8], len: usize, what: &'static str) -> Result<(), MediaError> {
    if body.len() < len {
        return Err(MediaError::Truncated {
            what,
            needed: len,
            remaining: body.len(),
        });
    }
    if body.len() > len {
        return Err(MediaError::TrailingBytes {
            what,
            count: body.len() - len,
        });
    }
    Ok(())
}

fn node_count(count: u8) -> Result<u8, MediaError> {
    if count == 0 || usize::from(count) > MAX_ACCESS_POINTS {
        return Err(MediaError::InvalidValue {
            field: "node count",
            value: u64::from(count),
        });
    }
    Ok(count)
}

/// Splits a byte stream into messages. Holds at most one incomplete frame (≤ 4 +
/// [`MAX_MESSAGE_LEN`] bytes) between calls; refuses a length prefix above the bound as soon as
/// its 4 bytes arrive.
#[derive(Default, Debug)]
pub struct Deframer {
    buf: Vec<u8>,
}

impl Deframer {
    /// A deframer with nothing buffered.
    pub fn new() -> Self {
        Self::default()
    }

    /// Bytes of the incomplete frame held.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// Takes received bytes; returns the messages they complete, in order. After an error the
    /// link must be closed (the stream is out of sync).
    pub fn feed(&mut self, data: &[u8]) -> Result<Vec<MediaMsg>, MediaError> {
        self.buf.extend_from_slice(data);
        let mut out = Vec::new();
        let mut pos = 0;
        let result = loop {
            let rest = &self.buf[pos..];
            let Some(prefix) = rest.get(..LENGTH_PREFIX_LEN) else {
                break Ok(());
            };
            let n = u32::from_be_bytes([prefix[0], prefix[1], prefix[2], prefix[3]]) as usize;
            if n == 0 || n > MAX_MESSAGE_LEN {
                break Err(if n == 0 {
                    MediaError::TooShort {
                        what: "media message",
                        len: 0,
                        min: 1,
                    }
                } else {
                    MediaError::TooLarge {
                        what: "media message",
                        len: n,
                        max: MAX_MESSAGE_LEN,
                    }
                });
            }
            let Some(frame) = rest.get(LENGTH_PREFIX_LEN..LENGTH_PREFIX_LEN + n) else {
                break Ok(());
            };
            match MediaMsg::decode(frame) {
                Ok(msg) => out.push(msg),
                Err(e) => break Err(e),
            }
            pos += LENGTH_PREFIX_LEN + n;
        };
        self.buf.drain(..pos);
        result.map(|()| out)
    }
}

/// Runs every decoder of the crate on `data`: the fuzz target's body. Never panics.
pub fn fuzz_decode_all(data: &[u8]) {
    let _ = MediaMsg::decode(data);
    let _ = SignedLoadReport::decode(data);
    let _ = crate::sframe::Header::decode(data);
    let _ = Deframer::new().feed(data);
}
