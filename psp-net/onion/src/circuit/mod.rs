//! Onion circuits: telescoping, layered, rate-limited, ending at overlay services.
//!
//! * [`relay::Relay`]: the node side. Answers CREATE, forwards and peels relay cells, extends
//!   circuits to registered nodes only, serves streams at the last hop, enforces the limits.
//! * [`client::Client`]: the client side. Picks every hop, builds circuits hop by hop, wraps
//!   and unwraps all layers, multiplexes streams.
//! * [`limits`]: [`Config`] and the token bucket.
//! * [`directory`]: the chain check ([`NodeDirectory`]): is a node registered, with which key.
//! * [`service`]: overlay services at the last hop ([`ServiceHub`]; `echo` built in).
//! * [`window`]: circuit-level flow control (SENDME windows).
//!
//! Both state machines are sans-IO: they take `(now, peer, bytes)` in and give
//! [`Transmit`]s, a next deadline and events out. Time is a [`Timestamp`] passed in.

pub mod client;
pub mod directory;
pub mod limits;
pub mod relay;
pub mod service;
pub mod window;

pub use client::{CircuitHandle, Client, ClientEvent};
pub use directory::{NodeDirectory, NodeRecord, StaticDirectory};
pub use limits::{Config, Rate, TokenBucket};
pub use relay::{Relay, RelayEvent};
pub use service::{EchoService, ServiceAction, ServiceHub, Services, Stream, StreamRef};

use crate::cell::{CellError, CircId, StreamId, CELL_LEN};
use crate::crypto::{CryptoError, NodeId};

/// Milliseconds since an epoch chosen by the driver. The cores never read a clock.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Default)]
pub struct Timestamp(pub u64);

/// The other end of a link.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, PartialOrd, Ord)]
pub enum Peer {
    /// A registered node, authenticated by the link layer.
    Node(NodeId),
    /// A client connection; the number is the driver's handle for it.
    Client(u64),
}

/// A cell to write to a link.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Transmit {
    /// Where to send it.
    pub to: Peer,
    /// The encoded cell, always exactly [`CELL_LEN`] bytes.
    pub cell: Box<[u8; CELL_LEN]>,
}

/// Errors of the circuit layer: local API misuse and the causes of refusals and closes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CircuitError {
    /// EXTEND target is not a registered node in the chain directory.
    #[error("extend target {0:?} is not a registered node")]
    NotRegistered(NodeId),
    /// EXTEND names an onion key that differs from the one registered on chain.
    #[error("extend target {0:?} has a different onion key on chain")]
    OnionKeyMismatch(NodeId),
    /// EXTEND to the node itself.
    #[error("extend to self refused")]
    ExtendToSelf,
    /// EXTEND arrived in a plain RELAY cell; it must come in RELAY_EARLY.
    #[error("EXTEND not in a RELAY_EARLY cell")]
    ExtendNotEarly,
    /// EXTEND on a circuit that already has a next hop or open streams.
    #[error("circuit already extended or has open streams")]
    CannotExtend,
    /// More RELAY_EARLY cells than [`Config::max_relay_early`].
    #[error("too many RELAY_EARLY cells")]
    ExtendLimit,
    /// A relay cell failed its layer check.
    #[error("integrity: {0}")]
    Integrity(CryptoError),
    /// The ntor handshake failed.
    #[error("handshake: {0}")]
    Handshake(CryptoError),
    /// A cell or relay message did not decode.
    #[error("bad cell: {0}")]
    Cell(CellError),
    /// A message that is not allowed at this point of the protocol.
    #[error("unexpected {0}")]
    Unexpected(&'static str),
    /// The peer has too many circuits open at this node.
    #[error("too many circuits from this peer")]
    TooManyCircuits,
    /// A circuit's queue overflowed: its sender exceeds the rate limit or ignores the
    /// circuit window.
    #[error("circuit queue overflow")]
    QueueOverflow,
    /// [`Client::send`] would put more than `max` cells in the circuit's backlog, which
    /// already holds `queued` waiting for the circuit window; nothing was sent.
    #[error("send backlog full: {queued} cells already wait for the circuit window (max {max})")]
    SendBacklogFull {
        /// Cells waiting.
        queued: usize,
        /// The backlog's size.
        max: usize,
    },
    /// The circuit was closed to free memory (its queued data was the oldest).
    #[error("closed under memory pressure")]
    MemoryPressure,
    /// No free circuit id on a link.
    #[error("no free circuit id")]
    NoCircuitId,
    /// The circuit handle is unknown (closed or never opened).
    #[error("no such circuit")]
    NoSuchCircuit,
    /// The stream is unknown on this circuit.
    #[error("no such stream")]
    NoSuchStream,
    /// An extend is already pending, or the circuit is not yet built.
    #[error("circuit busy: handshake pending")]
    Busy,
    /// The circuit already has [`client::MAX_HOPS`] hops.
    #[error("too many hops")]
    TooManyHops,
    /// No free stream id on the circuit.
    #[error("no free stream id")]
    NoStreamId,
    /// The named service does not exist (or the name is invalid).
    #[error("bad service name")]
    BadService,
}

/// Encodes a cell for transmission.
fn transmit(to: Peer, circ_id: CircId, msg: crate::cell::ChanMsg) -> Transmit {
    Transmit {
        to,
        cell: Box::new(crate::cell::Cell { circ_id, msg }.encode()),
    }
}

/// Stream ids are allocated by the client; 0 is reserved.
fn next_stream_id(current: &mut u16) -> Option<StreamId> {
    *current = current.checked_add(1)?;
    StreamId::new(*current)
}
