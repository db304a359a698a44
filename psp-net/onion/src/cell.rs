//! The wire format: fixed 512-byte cells and the relay messages inside them.
//!
//! Two layers, one message enum each (after arti's `tor-cell`):
//! * [`ChanMsg`]: what a link carries, one per 512-byte [`Cell`]
//!   (`circ_id: u32 | command: u8 | body: 507 bytes`).
//! * [`RelayMsg`]: what the last hop of a circuit and the client say to each other, inside the
//!   onion layers of a RELAY / RELAY_EARLY body
//!   (`command: u8 | stream_id: u16 | length: u16 | data | padding`).
//!
//! Decoding checks structure only; it never checks cryptography.

use core::num::{NonZeroU16, NonZeroU32};

use crate::bytes::{BytesError, Reader, Writer};
use crate::crypto::{NodeId, NtorClientMsg, NtorServerMsg, OnionPublic, AUTH_LEN, TAG_LEN};

/// Every cell on the wire is exactly 512 bytes (seed §6.1: "fixed 512 byte boundary slots").
pub const CELL_LEN: usize = 512;
/// Circuit id: 4 bytes, big-endian, never zero.
pub const CIRC_ID_LEN: usize = 4;
/// Command: 1 byte.
pub const CMD_LEN: usize = 1;
/// Cell header: circuit id + command = 4 + 1 = 5 bytes.
pub const CELL_HEADER_LEN: usize = CIRC_ID_LEN + CMD_LEN;
/// Cell body: 512 − 5 = 507 bytes; unused bytes are zero (or padding inside onion layers).
pub const BODY_LEN: usize = CELL_LEN - CELL_HEADER_LEN;
/// Relay plaintext under one layer: 507 − 16-byte tag = 491 bytes.
pub const RELAY_PLAINTEXT_LEN: usize = BODY_LEN - TAG_LEN;
/// Relay message header: command 1 + stream id 2 + length 2 = 5 bytes.
pub const RELAY_HEADER_LEN: usize = 5;
/// Largest DATA payload towards the client: 491 − 5 = 486 bytes (one seal, whatever the depth).
pub const MAX_BACKWARD_DATA: usize = RELAY_PLAINTEXT_LEN - RELAY_HEADER_LEN;
/// Handshake type of the ntor X25519 handshake (the only one so far).
pub const HTYPE_NTOR: u16 = 1;
/// ntor client message: ID 32 + B 32 + X 32 = 96 bytes.
pub const NTOR_CLIENT_LEN: usize = 96;
/// ntor server message: Y 32 + AUTH 32 = 64 bytes.
pub const NTOR_SERVER_LEN: usize = 32 + AUTH_LEN;
/// Longest overlay service name in a BEGIN.
pub const MAX_SERVICE_NAME: usize = 64;

/// Largest forward DATA payload on a circuit of `hops` hops: every hop beyond the first costs a
/// 16-byte tag, so 491 − 16 × (hops − 1) − 5; 454 bytes on a 3-hop circuit.
pub const fn max_forward_data(hops: usize) -> usize {
    crate::crypto::forward_capacity(hops).saturating_sub(RELAY_HEADER_LEN)
}

/// Errors of the cell layer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CellError {
    /// A cell was not exactly [`CELL_LEN`] bytes.
    #[error("cell must be {CELL_LEN} bytes, got {0}")]
    WrongLength(usize),
    /// Circuit id 0 is reserved.
    #[error("circuit id 0 is invalid")]
    ZeroCircId,
    /// Stream id 0 on a message that needs a stream, or a stream id on one that must not have one.
    #[error("bad stream id {id} for relay command {cmd}")]
    BadStreamId {
        /// The relay command.
        cmd: u8,
        /// The stream id found.
        id: u16,
    },
    /// The cell command is not one we know.
    #[error("unknown cell command {0}")]
    UnknownCommand(u8),
    /// The relay command is not one we know.
    #[error("unknown relay command {0}")]
    UnknownRelayCommand(u8),
    /// A handshake of a type we do not speak, or of the wrong length.
    #[error("unsupported handshake type {htype} with length {len}")]
    BadHandshake {
        /// Handshake type.
        htype: u16,
        /// Declared length.
        len: u16,
    },
    /// A length field points past the end of the body.
    #[error("length field {len} exceeds the {available} bytes available")]
    BadLength {
        /// Declared length.
        len: usize,
        /// Available space.
        available: usize,
    },
    /// A service name that is empty, too long or not printable ASCII.
    #[error("invalid service name")]
    BadServiceName,
    /// A message does not fit in the space available.
    #[error("message does not fit: {0}")]
    TooLong(BytesError),
    /// A field was cut short.
    #[error(transparent)]
    Bytes(#[from] BytesError),
}

/// A circuit id, unique per link and direction; never zero.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, PartialOrd, Ord)]
pub struct CircId(pub NonZeroU32);

impl CircId {
    /// Wraps a non-zero id.
    pub fn new(v: u32) -> Option<Self> {
        NonZeroU32::new(v).map(Self)
    }
    /// The raw value.
    pub fn get(self) -> u32 {
        self.0.get()
    }
}

/// A stream id inside a circuit; never zero.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, PartialOrd, Ord)]
pub struct StreamId(pub NonZeroU16);

impl StreamId {
    /// Wraps a non-zero id.
    pub fn new(v: u16) -> Option<Self> {
        NonZeroU16::new(v).map(Self)
    }
    /// The raw value.
    pub fn get(self) -> u16 {
        self.0.get()
    }
}

macro_rules! reason_enum {
    ($(#[$m:meta])* $name:ident { $($(#[$vm:meta])* $var:ident = $val:expr,)* }) => {
        $(#[$m])*
        #[derive(Clone, Copy, PartialEq, Eq, Debug, Hash)]
        #[non_exhaustive]
        pub enum $name {
            $($(#[$vm])* $var,)*
            /// A code this version does not know (kept, not rejected).
            Unknown(u8),
        }
        impl $name {
            /// Wire value.
            pub fn to_u8(self) -> u8 {
                match self { $(Self::$var => $val,)* Self::Unknown(v) => v }
            }
            /// From the wire value.
            pub fn from_u8(v: u8) -> Self {
                match v { $($val => Self::$var,)* v => Self::Unknown(v) }
            }
        }
    };
}

reason_enum!(
    /// Why a circuit was destroyed (DESTROY body byte 0).
    DestroyReason {
        /// No reason given.
        None = 0,
        /// The peer violated the protocol.
        Protocol = 1,
        /// Local internal error.
        Internal = 2,
        /// The client asked for it.
        Requested = 3,
        /// The handshake failed (wrong node, wrong key, bad point).
        Handshake = 4,
        /// An EXTEND was refused (target not registered, or its key differs from the chain).
        ExtendRefused = 5,
        /// Too many circuits from this peer.
        ResourceLimit = 6,
        /// A relay cell failed its integrity check (modified, replayed or tagged).
        Integrity = 7,
        /// The circuit's queue overflowed: the sender exceeded the rate limit.
        QueueOverflow = 8,
        /// Closed to relieve memory pressure (oldest queued data first).
        MemoryPressure = 9,
        /// The link to the next or previous hop went away.
        LinkClosed = 10,
        /// More RELAY_EARLY cells than allowed (limits circuit length).
        ExtendLimit = 11,
    }
);

reason_enum!(
    /// Why a stream ended (END body byte 0).
    EndReason {
        /// Normal close.
        Done = 1,
        /// No service with that name at this node.
        UnknownService = 2,
        /// Too many streams on this circuit.
        TooManyStreams = 3,
        /// The stream violated the protocol.
        Protocol = 4,
    }
);

/// Cell commands (byte 4 of a cell).
mod cmd {
    pub const CREATE: u8 = 1;
    pub const CREATED: u8 = 2;
    pub const RELAY: u8 = 3;
    pub const RELAY_EARLY: u8 = 4;
    pub const DESTROY: u8 = 5;
}

/// An onion-encrypted relay body, opaque to the link.
#[derive(Clone, PartialEq, Eq)]
pub struct RelayBody(pub Box<[u8; BODY_LEN]>);

impl core::fmt::Debug for RelayBody {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("RelayBody(..)")
    }
}

/// Messages a link carries: one per cell.
#[derive(Clone, PartialEq, Eq, Debug)]
#[non_exhaustive]
pub enum ChanMsg {
    /// Open a circuit at the receiving node (ntor client message).
    Create(NtorClientMsg),
    /// The node's ntor reply.
    Created(NtorServerMsg),
    /// An onion-encrypted relay cell.
    Relay(RelayBody),
    /// A relay cell counted against the extend limit; EXTEND must use it (tor's RELAY_EARLY).
    RelayEarly(RelayBody),
    /// Tear the circuit down, in either direction.
    Destroy(DestroyReason),
}

/// A 512-byte cell: circuit id and message.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Cell {
    /// The circuit on this link.
    pub circ_id: CircId,
    /// The message.
    pub msg: ChanMsg,
}

fn write_ntor_client(w: &mut Writer<'_>, m: &NtorClientMsg) -> Result<(), BytesError> {
    w.u16(HTYPE_NTOR)?;
    w.u16(NTOR_CLIENT_LEN as u16)?;
    w.put(&m.node_id.0)?;
    w.put(&m.onion_key.0)?;
    w.put(&m.client_pk)
}

/// Decodes an ntor client message (`htype u16 | hlen u16 | ID | B | X`).
pub fn read_ntor_client(r: &mut Reader<'_>) -> Result<NtorClientMsg, CellError> {
    let htype = r.u16()?;
    let len = r.u16()?;
    if htype != HTYPE_NTOR || usize::from(len) != NTOR_CLIENT_LEN {
        return Err(CellError::BadHandshake { htype, len });
    }
    Ok(NtorClientMsg {
        node_id: NodeId(r.array()?),
        onion_key: OnionPublic(r.array()?),
        client_pk: r.array()?,
    })
}

fn write_ntor_server(w: &mut Writer<'_>, m: &NtorServerMsg) -> Result<(), BytesError> {
    w.u16(NTOR_SERVER_LEN as u16)?;
    w.put(&m.server_pk)?;
    w.put(&m.auth)
}

/// Decodes an ntor server message (`hlen u16 | Y | AUTH`).
pub fn read_ntor_server(r: &mut Reader<'_>) -> Result<NtorServerMsg, CellError> {
    let len = r.u16()?;
    if usize::from(len) != NTOR_SERVER_LEN {
        return Err(CellError::BadHandshake {
            htype: HTYPE_NTOR,
            len,
        });
    }
    Ok(NtorServerMsg {
        server_pk: r.array()?,
        auth: r.array()?,
    })
}

impl Cell {
    /// Encodes to exactly [`CELL_LEN`] bytes.
    pub fn encode(&self) -> [u8; CELL_LEN] {
        let mut out = [0u8; CELL_LEN];
        out[..CIRC_ID_LEN].copy_from_slice(&self.circ_id.get().to_be_bytes());
        let (head, body) = out.split_at_mut(CELL_HEADER_LEN);
        let mut w = Writer::new(body);
        // Every body below is at most 100 bytes or exactly BODY_LEN: writes cannot fail.
        let _ = match &self.msg {
            ChanMsg::Create(m) => {
                head[CIRC_ID_LEN] = cmd::CREATE;
                write_ntor_client(&mut w, m)
            }
            ChanMsg::Created(m) => {
                head[CIRC_ID_LEN] = cmd::CREATED;
                write_ntor_server(&mut w, m)
            }
            ChanMsg::Relay(b) => {
                head[CIRC_ID_LEN] = cmd::RELAY;
                w.put(&b.0[..])
            }
            ChanMsg::RelayEarly(b) => {
                head[CIRC_ID_LEN] = cmd::RELAY_EARLY;
                w.put(&b.0[..])
            }
            ChanMsg::Destroy(r) => {
                head[CIRC_ID_LEN] = cmd::DESTROY;
                w.u8(r.to_u8())
            }
        };
        out
    }

    /// Decodes a cell; `bytes` must be exactly [`CELL_LEN`] long.
    pub fn decode(bytes: &[u8]) -> Result<Self, CellError> {
        if bytes.len() != CELL_LEN {
            return Err(CellError::WrongLength(bytes.len()));
        }
        let mut r = Reader::new(bytes);
        let circ_id = CircId::new(r.u32()?).ok_or(CellError::ZeroCircId)?;
        let command = r.u8()?;
        let msg = match command {
            cmd::CREATE => ChanMsg::Create(read_ntor_client(&mut r)?),
            cmd::CREATED => ChanMsg::Created(read_ntor_server(&mut r)?),
            cmd::RELAY | cmd::RELAY_EARLY => {
                let body = Box::new(r.array::<BODY_LEN>()?);
                if command == cmd::RELAY {
                    ChanMsg::Relay(RelayBody(body))
                } else {
                    ChanMsg::RelayEarly(RelayBody(body))
                }
            }
            cmd::DESTROY => ChanMsg::Destroy(DestroyReason::from_u8(r.u8()?)),
            other => return Err(CellError::UnknownCommand(other)),
        };
        Ok(Self { circ_id, msg })
    }
}

/// Relay commands (byte 0 of a relay plaintext).
mod relay_cmd {
    pub const BEGIN: u8 = 1;
    pub const CONNECTED: u8 = 2;
    pub const DATA: u8 = 3;
    pub const END: u8 = 4;
    pub const EXTEND: u8 = 5;
    pub const EXTENDED: u8 = 6;
    pub const DROP: u8 = 7;
    pub const SENDME: u8 = 8;
}

/// Messages between the client and the last hop of its circuit.
#[derive(Clone, PartialEq, Eq, Debug)]
#[non_exhaustive]
pub enum RelayMsg {
    /// Open a stream to the named overlay service at the last hop.
    Begin {
        /// New stream id, chosen by the client.
        stream: StreamId,
        /// Service name, e.g. `echo`.
        service: String,
    },
    /// The stream is open.
    Connected {
        /// The stream.
        stream: StreamId,
    },
    /// Stream bytes.
    Data {
        /// The stream.
        stream: StreamId,
        /// The bytes.
        data: Vec<u8>,
    },
    /// Close a stream.
    End {
        /// The stream.
        stream: StreamId,
        /// Why.
        reason: EndReason,
    },
    /// Extend the circuit by one hop (only in RELAY_EARLY).
    Extend(NtorClientMsg),
    /// The new hop answered.
    Extended(NtorServerMsg),
    /// Long-range padding; ignored.
    Drop,
    /// Flow control: the sender of this message has taken delivery of another
    /// [`SENDME_INCREMENT`](crate::circuit::window::SENDME_INCREMENT) DATA cells, so the
    /// other end may send that many more (see [`crate::circuit::window`]).
    Sendme,
}

impl RelayMsg {
    /// Encodes into `out` (the plaintext area of one cell); returns the bytes used.
    pub fn encode_into(&self, out: &mut [u8]) -> Result<usize, CellError> {
        let mut w = Writer::new(out);
        let put = |w: &mut Writer<'_>, c: u8, s: u16, body: &[u8]| -> Result<(), BytesError> {
            w.u8(c)?;
            w.u16(s)?;
            // body length is bounded by the writer's buffer (< 65 536) before the cast matters.
            let len = u16::try_from(body.len()).map_err(|_| BytesError::Full {
                needed: body.len(),
                remaining: usize::from(u16::MAX),
            })?;
            w.u16(len)?;
            w.put(body)
        };
        let res = match self {
            RelayMsg::Begin { stream, service } => {
                if !valid_service_name(service.as_bytes()) {
                    return Err(CellError::BadServiceName);
                }
                put(&mut w, relay_cmd::BEGIN, stream.get(), service.as_bytes())
            }
            RelayMsg::Connected { stream } => put(&mut w, relay_cmd::CONNECTED, stream.get(), &[]),
            RelayMsg::Data { stream, data } => put(&mut w, relay_cmd::DATA, stream.get(), data),
            RelayMsg::End { stream, reason } => {
                put(&mut w, relay_cmd::END, stream.get(), &[reason.to_u8()])
            }
            RelayMsg::Extend(m) => {
                let mut b = [0u8; 4 + NTOR_CLIENT_LEN];
                let _ = write_ntor_client(&mut Writer::new(&mut b), m);
                put(&mut w, relay_cmd::EXTEND, 0, &b)
            }
            RelayMsg::Extended(m) => {
                let mut b = [0u8; 2 + NTOR_SERVER_LEN];
                let _ = write_ntor_server(&mut Writer::new(&mut b), m);
                put(&mut w, relay_cmd::EXTENDED, 0, &b)
            }
            RelayMsg::Drop => put(&mut w, relay_cmd::DROP, 0, &[]),
            RelayMsg::Sendme => put(&mut w, relay_cmd::SENDME, 0, &[]),
        };
        res.map_err(CellError::TooLong)?;
        Ok(w.position())
    }

    /// Decodes a relay plaintext; bytes after the declared length are padding and ignored.
    pub fn decode(bytes: &[u8]) -> Result<Self, CellError> {
        let mut r = Reader::new(bytes);
        let command = r.u8()?;
        let sid = r.u16()?;
        let len = usize::from(r.u16()?);
        if len > r.remaining() {
            return Err(CellError::BadLength {
                len,
                available: r.remaining(),
            });
        }
        let mut body = Reader::new(r.take(len)?);
        let stream = || {
            StreamId::new(sid).ok_or(CellError::BadStreamId {
                cmd: command,
                id: sid,
            })
        };
        let no_stream = || {
            if sid == 0 {
                Ok(())
            } else {
                Err(CellError::BadStreamId {
                    cmd: command,
                    id: sid,
                })
            }
        };
        let msg = match command {
            relay_cmd::BEGIN => {
                let stream = stream()?;
                let name = body.take(len)?;
                if !valid_service_name(name) {
                    return Err(CellError::BadServiceName);
                }
                RelayMsg::Begin {
                    stream,
                    service: String::from_utf8_lossy(name).into_owned(),
                }
            }
            relay_cmd::CONNECTED => RelayMsg::Connected { stream: stream()? },
            relay_cmd::DATA => RelayMsg::Data {
                stream: stream()?,
                data: body.take(len)?.to_vec(),
            },
            relay_cmd::END => RelayMsg::End {
                stream: stream()?,
                reason: EndReason::from_u8(body.u8()?),
            },
            relay_cmd::EXTEND => {
                no_stream()?;
                RelayMsg::Extend(read_ntor_client(&mut body)?)
            }
            relay_cmd::EXTENDED => {
                no_stream()?;
                RelayMsg::Extended(read_ntor_server(&mut body)?)
            }
            relay_cmd::DROP => RelayMsg::Drop,
            relay_cmd::SENDME => {
                no_stream()?;
                RelayMsg::Sendme
            }
            other => return Err(CellError::UnknownRelayCommand(other)),
        };
        Ok(msg)
    }
}

fn valid_service_name(name: &[u8]) -> bool {
    !name.is_empty() && name.len() <= MAX_SERVICE_NAME && name.iter().all(|b| b.is_ascii_graphic())
}

#[cfg(test)]
mod tests;
