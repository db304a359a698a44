//! Messages on a stream to a node's `presence` service.
//!
//! Two kinds of peers use the service:
//! * the **registered client** (Bob, over his presence circuit): `Register`, `KeepAlive`,
//!   `Accept`, `Decline`, `Cancel`; the node answers `Registered`, `Refused`, and pushes
//!   `Introduction`, `Withdrawn`, `CapReached`;
//! * an **introducer** (Alice, over a separate circuit): `Introduce`; the node answers
//!   `IntroAccepted`, `IntroDeclined` or `IntroRefused`.
//!
//! Field layouts (after version and type):
//!
//! | message | fields |
//! |---|---|
//! | `Register` | record (below) · rate/min 2 · burst 2 · cap 2 |
//! | `KeepAlive` | record |
//! | `Registered` | expires_at 8 · rate/min 2 · burst 2 · cap 2 |
//! | `Refused`, `IntroRefused` | reason 1 |
//! | `Introduction` | intro id 8 · sealed (2 + ≤ 1 024) |
//! | `Accept`, `Decline`, `Cancel`, `Withdrawn` | intro id 8 |
//! | `Introduce` | target identity 32 · sealed (2 + ≤ 1 024) |
//! | `CapReached`, `IntroAccepted`, `IntroDeclined` | — |
//!
//! A record is the owner-signed content of a presence record without the publisher's
//! co-signature: owner 32 · topic 32 · publisher 32 · seq 8 · issued_at 8 · expires_at 8 ·
//! value (2 + ≤ 4 096) · owner signature 64.

use psp_dht::record::MAX_VALUE_LEN;
use psp_dht::{RecordContent, RecordKind};
use psp_onion::bytes::Reader;
use psp_onion::crypto::{Sr25519Keypair, Sr25519Signature};

use super::codec::{
    expect_end, finish_frame, put_bytes, read_bytes, read_header, reason_code, reason_from_code,
    start_frame,
};
use super::{BoundedBytes, WireError, VERSION};
use crate::ids::IntroId;

/// Largest sealed introduction: 1 KiB. A sealed introduction with today's 186-byte
/// certificate is 1 + 32 + (32 + 2 + 186 + 32 + 32 + 32 + 8 + 16 + 64) + 16 = 453 bytes
/// (see `intro::MAX_SEALED_LEN` for the arithmetic at the largest certificate).
pub const MAX_SEALED_INTRODUCTION_LEN: usize = 1024;

/// A sealed introduction, as the presence node carries it (it cannot open it).
pub type SealedIntroduction = BoundedBytes<MAX_SEALED_INTRODUCTION_LEN>;

type RecordValue = BoundedBytes<MAX_VALUE_LEN>;

/// What the registered client allows through one presence point.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct ChannelLimits {
    /// Introductions forwarded per minute, sustained.
    pub rate_per_minute: u16,
    /// Introductions forwarded in one burst.
    pub burst: u16,
    /// Channels through this presence point, ever: accepted plus pending introductions.
    /// When it is reached the node refuses introducers and tells the client once, so it can
    /// register another presence point.
    pub cap: u16,
}

impl Default for ChannelLimits {
    /// 6 introductions a minute, bursts of 3, 16 channels per presence point.
    fn default() -> Self {
        Self {
            rate_per_minute: 6,
            burst: 3,
            cap: 16,
        }
    }
}

/// The owner-signed content of a presence record, before the presence node co-signs it.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct OwnerSignedRecord {
    content: RecordContent,
    owner_signature: Sr25519Signature,
}

impl OwnerSignedRecord {
    /// Wraps content the owner signed. Refuses anything but a presence record, and values
    /// above the DHT's 4 096-byte bound. The signature is not checked here.
    pub fn new(
        content: RecordContent,
        owner_signature: Sr25519Signature,
    ) -> Result<Self, WireError> {
        if content.kind != RecordKind::Presence {
            return Err(WireError::InvalidValue {
                field: "record kind (must be presence)",
                value: 0,
            });
        }
        if content.value.len() > MAX_VALUE_LEN {
            return Err(WireError::FieldTooLong {
                field: "record value",
                len: content.value.len(),
                max: MAX_VALUE_LEN,
            });
        }
        Ok(Self {
            content,
            owner_signature,
        })
    }

    /// Signs `content` as its owner.
    pub fn sign(content: RecordContent, owner: &Sr25519Keypair) -> Result<Self, WireError> {
        let signature = content.sign_as_owner(owner);
        Self::new(content, signature)
    }

    /// The content.
    pub fn content(&self) -> &RecordContent {
        &self.content
    }

    /// The owner's signature over the content.
    pub fn owner_signature(&self) -> &Sr25519Signature {
        &self.owner_signature
    }

    /// Content and signature.
    pub fn into_parts(self) -> (RecordContent, Sr25519Signature) {
        (self.content, self.owner_signature)
    }

    fn encode_into(&self, out: &mut Vec<u8>) {
        let c = &self.content;
        out.extend_from_slice(&c.owner);
        out.extend_from_slice(&c.topic);
        out.extend_from_slice(&c.publisher);
        out.extend_from_slice(&c.seq.to_be_bytes());
        out.extend_from_slice(&c.issued_at.to_be_bytes());
        out.extend_from_slice(&c.expires_at.to_be_bytes());
        // `new` bounded the value.
        let len = u16::try_from(c.value.len()).unwrap_or(u16::MAX);
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(&c.value);
        out.extend_from_slice(&self.owner_signature);
    }

    fn decode_from(r: &mut Reader<'_>) -> Result<Self, WireError> {
        let owner = r.array()?;
        let topic = r.array()?;
        let publisher = r.array()?;
        let seq = r.u64()?;
        let issued_at = r.u64()?;
        let expires_at = r.u64()?;
        let value: RecordValue = read_bytes(r, "record value")?;
        let owner_signature = r.array()?;
        Ok(Self {
            content: RecordContent {
                kind: RecordKind::Presence,
                owner,
                topic,
                publisher,
                seq,
                issued_at,
                expires_at,
                value: value.into_vec(),
            },
            owner_signature,
        })
    }
}

/// Why a registration or keep-alive was refused.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
#[non_exhaustive]
pub enum RegisterRefusal {
    /// The message did not decode, or was not expected on this stream.
    Malformed,
    /// The record names another node as its publisher.
    WrongPublisher,
    /// The record's issue or expiry time is outside what this node accepts.
    BadValidity,
    /// The record's value is not a presence value.
    BadValue,
    /// The certificate did not verify (forged, expired, not from an elected authority).
    Certificate,
    /// The identity is revoked or unknown on chain.
    IdentityNotLive,
    /// The record's owner is not the certificate's identity.
    OwnerMismatch,
    /// The owner's signature over the record does not verify.
    OwnerSignature,
    /// The identity already holds a presence point at this node.
    AlreadyRegistered,
    /// The node holds as many registrations as it allows.
    Busy,
    /// A keep-alive without a registration on this stream.
    NotRegistered,
    /// A keep-alive whose record is not a renewal of the registered one (owner, topic or
    /// publisher changed, or sequence number not higher).
    NotARenewal,
    /// Channel limits of zero.
    BadLimits,
}

const REGISTER_REFUSALS: [RegisterRefusal; 13] = [
    RegisterRefusal::Malformed,
    RegisterRefusal::WrongPublisher,
    RegisterRefusal::BadValidity,
    RegisterRefusal::BadValue,
    RegisterRefusal::Certificate,
    RegisterRefusal::IdentityNotLive,
    RegisterRefusal::OwnerMismatch,
    RegisterRefusal::OwnerSignature,
    RegisterRefusal::AlreadyRegistered,
    RegisterRefusal::Busy,
    RegisterRefusal::NotRegistered,
    RegisterRefusal::NotARenewal,
    RegisterRefusal::BadLimits,
];

/// Why an introduction was not forwarded or not answered.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
#[non_exhaustive]
pub enum IntroRefusal {
    /// The target has no presence point at this node.
    NotRegistered,
    /// The target's channel cap at this presence point is reached.
    CapReached,
    /// The target's introduction rate at this presence point is exceeded: retry later.
    RateLimited,
    /// The node holds as many pending introductions as it allows: retry later.
    Busy,
    /// The target did not answer in time.
    TimedOut,
    /// The target's registration ended while the introduction was pending.
    TargetGone,
}

const INTRO_REFUSALS: [IntroRefusal; 6] = [
    IntroRefusal::NotRegistered,
    IntroRefusal::CapReached,
    IntroRefusal::RateLimited,
    IntroRefusal::Busy,
    IntroRefusal::TimedOut,
    IntroRefusal::TargetGone,
];

/// A registration: the owner-signed record to publish and the limits to enforce.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Register {
    /// The presence record, signed by its owner; its value is a `record::PresenceValue`
    /// holding the owner's certificate and the public/anonymous flag.
    pub record: OwnerSignedRecord,
    /// The limits the owner asks for.
    pub limits: ChannelLimits,
}

/// The node's acceptance of a registration or keep-alive.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Registered {
    /// When the published record expires unless renewed.
    pub expires_at: u64,
    /// The limits in force (the asked ones, lowered to the node's maxima).
    pub limits: ChannelLimits,
}

/// Every message on a stream to the `presence` service.
#[derive(Clone, PartialEq, Eq, Debug)]
#[non_exhaustive]
pub enum PresenceMsg {
    /// Client → node: register a presence point.
    Register(Register),
    /// Client → node: renew the registration with a newer record (higher `seq`, later expiry,
    /// possibly a fresh certificate in its value).
    KeepAlive(OwnerSignedRecord),
    /// Node → client: registration or keep-alive accepted.
    Registered(Registered),
    /// Node → client: registration or keep-alive refused; the node closes the stream.
    Refused(RegisterRefusal),
    /// Node → client: someone asks for a channel.
    Introduction {
        /// The node's name for this request.
        id: IntroId,
        /// The introduction, sealed to the client's announcement key.
        sealed: SealedIntroduction,
    },
    /// Client → node: accept the introduction (the introducer is told).
    Accept(IntroId),
    /// Client → node: decline it (the introducer is told, its stream closed).
    Decline(IntroId),
    /// Client → node: drop it and close the introducer's stream at once, without an answer.
    Cancel(IntroId),
    /// Node → client: the channel cap of this presence point is reached.
    CapReached,
    /// Node → client: this introduction is no longer pending (timed out, introducer gone,
    /// cancelled, or an unknown id was answered).
    Withdrawn(IntroId),
    /// Introducer → node: forward a sealed introduction to `target`.
    Introduce {
        /// The target's identity key (sr25519).
        target: [u8; 32],
        /// The introduction, sealed to the target's announcement key.
        sealed: SealedIntroduction,
    },
    /// Node → introducer: the target accepted.
    IntroAccepted,
    /// Node → introducer: the target declined; the node closes the stream.
    IntroDeclined,
    /// Node → introducer: not forwarded or not answered.
    IntroRefused(IntroRefusal),
}

mod types {
    pub const REGISTER: u8 = 0x01;
    pub const KEEP_ALIVE: u8 = 0x02;
    pub const REGISTERED: u8 = 0x03;
    pub const REFUSED: u8 = 0x04;
    pub const INTRODUCTION: u8 = 0x05;
    pub const ACCEPT: u8 = 0x06;
    pub const DECLINE: u8 = 0x07;
    pub const CANCEL: u8 = 0x08;
    pub const CAP_REACHED: u8 = 0x09;
    pub const WITHDRAWN: u8 = 0x0a;
    pub const INTRODUCE: u8 = 0x10;
    pub const INTRO_ACCEPTED: u8 = 0x11;
    pub const INTRO_DECLINED: u8 = 0x12;
    pub const INTRO_REFUSED: u8 = 0x13;
}

fn put_limits(out: &mut Vec<u8>, limits: &ChannelLimits) {
    out.extend_from_slice(&limits.rate_per_minute.to_be_bytes());
    out.extend_from_slice(&limits.burst.to_be_bytes());
    out.extend_from_slice(&limits.cap.to_be_bytes());
}

fn read_limits(r: &mut Reader<'_>) -> Result<ChannelLimits, WireError> {
    Ok(ChannelLimits {
        rate_per_minute: r.u16()?,
        burst: r.u16()?,
        cap: r.u16()?,
    })
}

impl PresenceMsg {
    /// The message's name, for logs and errors.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Register(_) => "Register",
            Self::KeepAlive(_) => "KeepAlive",
            Self::Registered(_) => "Registered",
            Self::Refused(_) => "Refused",
            Self::Introduction { .. } => "Introduction",
            Self::Accept(_) => "Accept",
            Self::Decline(_) => "Decline",
            Self::Cancel(_) => "Cancel",
            Self::CapReached => "CapReached",
            Self::Withdrawn(_) => "Withdrawn",
            Self::Introduce { .. } => "Introduce",
            Self::IntroAccepted => "IntroAccepted",
            Self::IntroDeclined => "IntroDeclined",
            Self::IntroRefused(_) => "IntroRefused",
        }
    }

    /// The frame to write on the stream: length prefix and body.
    pub fn encode(&self) -> Vec<u8> {
        use types::*;
        let out = match self {
            Self::Register(reg) => {
                let mut out = start_frame(VERSION, REGISTER);
                reg.record.encode_into(&mut out);
                put_limits(&mut out, &reg.limits);
                out
            }
            Self::KeepAlive(record) => {
                let mut out = start_frame(VERSION, KEEP_ALIVE);
                record.encode_into(&mut out);
                out
            }
            Self::Registered(reg) => {
                let mut out = start_frame(VERSION, REGISTERED);
                out.extend_from_slice(&reg.expires_at.to_be_bytes());
                put_limits(&mut out, &reg.limits);
                out
            }
            Self::Refused(reason) => {
                let mut out = start_frame(VERSION, REFUSED);
                out.push(reason_code(&REGISTER_REFUSALS, reason));
                out
            }
            Self::Introduction { id, sealed } => {
                let mut out = start_frame(VERSION, INTRODUCTION);
                out.extend_from_slice(&id.0.to_be_bytes());
                put_bytes(&mut out, sealed);
                out
            }
            Self::Accept(id) => with_id(ACCEPT, *id),
            Self::Decline(id) => with_id(DECLINE, *id),
            Self::Cancel(id) => with_id(CANCEL, *id),
            Self::Withdrawn(id) => with_id(WITHDRAWN, *id),
            Self::CapReached => start_frame(VERSION, CAP_REACHED),
            Self::Introduce { target, sealed } => {
                let mut out = start_frame(VERSION, INTRODUCE);
                out.extend_from_slice(target);
                put_bytes(&mut out, sealed);
                out
            }
            Self::IntroAccepted => start_frame(VERSION, INTRO_ACCEPTED),
            Self::IntroDeclined => start_frame(VERSION, INTRO_DECLINED),
            Self::IntroRefused(reason) => {
                let mut out = start_frame(VERSION, INTRO_REFUSED);
                out.push(reason_code(&INTRO_REFUSALS, reason));
                out
            }
        };
        finish_frame(out)
    }

    /// Decodes one body (as the [`super::Deframer`] yields it, without the length prefix).
    pub fn decode(body: &[u8]) -> Result<Self, WireError> {
        use types::*;
        let mut r = Reader::new(body);
        let msg = match read_header(&mut r, VERSION)? {
            REGISTER => Self::Register(Register {
                record: OwnerSignedRecord::decode_from(&mut r)?,
                limits: read_limits(&mut r)?,
            }),
            KEEP_ALIVE => Self::KeepAlive(OwnerSignedRecord::decode_from(&mut r)?),
            REGISTERED => Self::Registered(Registered {
                expires_at: r.u64()?,
                limits: read_limits(&mut r)?,
            }),
            REFUSED => Self::Refused(reason_from_code(
                &REGISTER_REFUSALS,
                "registration refusal reason",
                r.u8()?,
            )?),
            INTRODUCTION => Self::Introduction {
                id: IntroId(r.u64()?),
                sealed: read_bytes(&mut r, "sealed introduction")?,
            },
            ACCEPT => Self::Accept(IntroId(r.u64()?)),
            DECLINE => Self::Decline(IntroId(r.u64()?)),
            CANCEL => Self::Cancel(IntroId(r.u64()?)),
            WITHDRAWN => Self::Withdrawn(IntroId(r.u64()?)),
            CAP_REACHED => Self::CapReached,
            INTRODUCE => Self::Introduce {
                target: r.array()?,
                sealed: read_bytes(&mut r, "sealed introduction")?,
            },
            INTRO_ACCEPTED => Self::IntroAccepted,
            INTRO_DECLINED => Self::IntroDeclined,
            INTRO_REFUSED => Self::IntroRefused(reason_from_code(
                &INTRO_REFUSALS,
                "introduction refusal reason",
                r.u8()?,
            )?),
            got => {
                return Err(WireError::UnknownType {
                    service: "presence",
                    got,
                })
            }
        };
        expect_end(&r, msg.name())?;
        Ok(msg)
    }
}

fn with_id(message_type: u8, id: IntroId) -> Vec<u8> {
    let mut out = start_frame(VERSION, message_type);
    out.extend_from_slice(&id.0.to_be_bytes());
    out
}

#[cfg(test)]
mod tests;
