//! The async driver: libp2p links under the sans-IO circuit cores.
//!
//! A link is a libp2p connection (TCP + Noise + Yamux) carrying one long-lived substream on
//! [`PROTOCOL`] (`/psp/cells/1`), opened by the dialer. Both ends first send one 512-byte
//! hello frame (who they are: a node id or "client"), then only 512-byte cells, so the framing
//! is just "read exactly 512 bytes". Noise authenticates the libp2p peer id; the hello binds
//! it to a node id, checked against the chain directory ([`NodeDirectory`]) whose records
//! carry the node's peer id in their address (see [`node_address`]).
//!
//! * [`node`]: [`Node`], the relay task: owns a [`crate::circuit::Relay`], dials next hops on
//!   EXTEND, drives its timers, closes idle links, reports [`NodeEvent`]s.
//! * [`client`]: [`ClientHandle`], the async client API: build an N-hop circuit, open a
//!   stream to a service, send and receive bytes, destroy the circuit.
//! * `link` and `behaviour` (private): the per-link tasks and the libp2p plumbing shared by
//!   both.
//!
//! Every queue is bounded (see [`LinkConfig`]); a link whose peer misbehaves or cannot keep
//! up is closed with a logged reason, and the task keeps serving the others.

mod behaviour;
pub mod client;
pub mod counts;
mod dht;
mod directory;
mod frames;
mod link;
pub mod messaging;
pub mod node;
pub mod streams;
pub mod usage;

use std::time::Duration;

/// The link hello decoder, for the fuzz target (`test-hooks` feature only; the hello itself
/// stays private to the link layer). Any bytes: `Ok(Some(node id))` for a node's hello,
/// `Ok(None)` for a client's, `Err` with the reason otherwise. A decoded hello re-encodes to a
/// frame that decodes to the same hello.
#[cfg(feature = "test-hooks")]
pub fn decode_link_hello(bytes: &[u8]) -> Result<Option<[u8; 32]>, String> {
    let frame: &[u8; crate::cell::CELL_LEN] = bytes.try_into().map_err(|_| {
        format!(
            "a hello is {} bytes, not {}",
            crate::cell::CELL_LEN,
            bytes.len()
        )
    })?;
    let hello = link::Hello::decode(frame)?;
    if link::Hello::decode(&hello.encode()) != Ok(hello) {
        return Err("hello does not round-trip".into());
    }
    Ok(match hello {
        link::Hello::Node(id) => Some(id.0),
        link::Hello::Client => None,
    })
}

pub use libp2p::identity::Keypair;
pub use libp2p::{Multiaddr, PeerId, StreamProtocol};

pub use client::{
    Circuit, CircuitClosed, CircuitStream, ClientConfig, ClientHandle, ClientTask, StreamReader,
    StreamWriter,
};
pub use dht::{DhtGetReport, DhtPutReport, DhtSetup, DHT_PROTOCOL};
pub use directory::{
    DirCodec, DirRequest, DirResponse, DirectorySetup, DiscoveryView, DIRECTORY_PROTOCOL,
};
pub use node::{
    Node, NodeConfig, NodeEvent, NodeHandle, NodeSecrets, NodeServices, NodeStats, NodeTask,
};

use crate::cell::EndReason;
use crate::circuit::{CircuitError, NodeDirectory, NodeRecord, Timestamp};
use crate::crypto::{NodeId, OnionPublic};

/// The libp2p protocol of the cell substream.
pub const PROTOCOL: StreamProtocol = StreamProtocol::new("/psp/cells/1");

/// Errors of the driver, with the context needed to act on them.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DriverError {
    /// The driver was created outside a tokio runtime (libp2p-tcp needs its reactor).
    #[error("no tokio runtime: create the driver from inside one")]
    NoRuntime,
    /// Building the libp2p transport failed (Noise key setup).
    #[error("transport setup failed: {0}")]
    Transport(String),
    /// The listen address could not be bound.
    #[error("cannot listen on {addr}: {reason}")]
    Listen {
        /// The configured address.
        addr: Multiaddr,
        /// The transport's error.
        reason: String,
    },
    /// A node address is not a multiaddr ending in `/p2p/<peer id>`.
    #[error("bad node address {address:?}: {reason}")]
    BadAddress {
        /// The address as given.
        address: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A path for a circuit is empty or longer than [`crate::circuit::client::MAX_HOPS`].
    #[error("bad circuit path: {0} hops (1 to {max} allowed)", max = crate::circuit::client::MAX_HOPS)]
    BadPath(usize),
    /// The circuit core refused a local request.
    #[error("circuit: {0}")]
    Circuit(#[from] CircuitError),
    /// The circuit was closed (by a relay, the link, or this client).
    #[error("{0}")]
    CircuitClosed(CircuitClosed),
    /// The last hop refused a stream.
    #[error("stream to service {service:?} refused: {reason:?}")]
    StreamRefused {
        /// The requested service.
        service: String,
        /// The END reason.
        reason: EndReason,
    },
    /// The stream was closed.
    #[error("stream closed")]
    StreamClosed,
    /// An operation did not finish in time.
    #[error("{what} timed out after {after:?}")]
    Timeout {
        /// What timed out.
        what: &'static str,
        /// The configured limit.
        after: Duration,
    },
    /// A DHT operation was refused or failed (the reason says which check).
    #[error("dht: {0}")]
    Dht(String),
    /// A directory was refused (the reason says which check).
    #[error("directory: {0}")]
    Directory(String),
    /// The driver task has stopped (shut down, or its handle outlived it).
    #[error("the driver task has stopped")]
    Stopped,
}

/// A node as a client (or the chain) describes it: everything needed to reach it and to
/// run the handshake with it.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct NodeDescriptor {
    /// The node's identity (its sr25519 public key).
    pub id: NodeId,
    /// Its registered X25519 onion key.
    pub onion_key: OnionPublic,
    /// Its libp2p peer id (authenticated by Noise on the link).
    pub peer_id: PeerId,
    /// Where it listens (without the `/p2p/` suffix).
    pub address: Multiaddr,
}

impl NodeDescriptor {
    /// Reads a directory record (whose address ends in `/p2p/<peer id>`).
    pub fn from_record(id: NodeId, record: &NodeRecord) -> Result<Self, DriverError> {
        let (peer_id, address) = parse_node_address(&record.address)?;
        Ok(Self {
            id,
            onion_key: record.onion_key,
            peer_id,
            address,
        })
    }

    /// The directory record of this node.
    pub fn to_record(&self) -> NodeRecord {
        NodeRecord {
            onion_key: self.onion_key,
            address: node_address(&self.address, self.peer_id),
        }
    }
}

/// The [`NodeRecord::address`] string for a node listening on `addr` with peer id `peer`:
/// `addr` with `/p2p/<peer>` appended (an existing, different `/p2p/` is replaced).
pub fn node_address(addr: &Multiaddr, peer: PeerId) -> String {
    let mut base = addr.clone();
    if matches!(
        base.iter().last(),
        Some(libp2p::multiaddr::Protocol::P2p(_))
    ) {
        base.pop();
    }
    base.with(libp2p::multiaddr::Protocol::P2p(peer))
        .to_string()
}

/// Splits a [`NodeRecord::address`] into the peer id and the dialable address.
pub fn parse_node_address(s: &str) -> Result<(PeerId, Multiaddr), DriverError> {
    let bad = |reason| DriverError::BadAddress {
        address: s.to_owned(),
        reason,
    };
    let mut addr: Multiaddr = s.parse().map_err(|_| bad("not a multiaddr"))?;
    match addr.pop() {
        Some(libp2p::multiaddr::Protocol::P2p(peer)) if !addr.is_empty() => Ok((peer, addr)),
        Some(libp2p::multiaddr::Protocol::P2p(_)) => Err(bad("no transport address")),
        _ => Err(bad("does not end in /p2p/<peer id>")),
    }
}

/// Looks a node up in the directory and returns where to dial it.
fn resolve(directory: &dyn NodeDirectory, node: &NodeId) -> Result<(PeerId, Multiaddr), String> {
    let record = directory
        .onion_key(node)
        .ok_or_else(|| "not a registered node".to_owned())?;
    parse_node_address(&record.address).map_err(|e| e.to_string())
}

/// Link settings shared by nodes and clients.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LinkConfig {
    /// A link that has carried no circuit for this long is closed. Default 180 s (Tor closes
    /// circuit-less channels after 3 to 4.5 minutes).
    pub idle_timeout: Duration,
    /// Time to connect, secure, and open the cell substream of a new link. Default 10 s.
    pub dial_timeout: Duration,
    /// Time for the peer's hello frame once the substream is open. Default 10 s.
    pub hello_timeout: Duration,
    /// Cells waiting for one link's writer. Default 4 096 (2 MiB: the default per-peer burst).
    /// When full the peer is not reading: the link is closed.
    pub link_queue: usize,
    /// Cells read from all links waiting for the core. Default 1 024. When full, link readers
    /// wait (TCP backpressure), they do not drop.
    pub inbound_queue: usize,
    /// Cells waiting for a link that is being dialled. Default 256; more closes that dial.
    pub pending_dial_cells: usize,
    /// Links (substreams) at once. Default 8 192; streams beyond are refused.
    pub max_links: usize,
}

impl Default for LinkConfig {
    fn default() -> Self {
        Self {
            idle_timeout: Duration::from_secs(180),
            dial_timeout: Duration::from_secs(10),
            hello_timeout: Duration::from_secs(10),
            link_queue: 4_096,
            inbound_queue: 1_024,
            pending_dial_cells: 256,
            max_links: 8_192,
        }
    }
}

/// Milliseconds since the driver started, as the cores' [`Timestamp`].
#[derive(Clone, Copy, Debug)]
struct Clock(tokio::time::Instant);

impl Clock {
    fn new() -> Self {
        Self(tokio::time::Instant::now())
    }

    fn now(&self) -> Timestamp {
        let ms = self.0.elapsed().as_millis();
        Timestamp(u64::try_from(ms).unwrap_or(u64::MAX))
    }

    fn instant(&self, t: Timestamp) -> tokio::time::Instant {
        self.0 + Duration::from_millis(t.0)
    }
}

/// The text of a DESTROY reason plus its local cause, for logs and errors.
impl std::fmt::Display for CircuitClosed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "circuit closed: {:?}", self.reason)?;
        if let Some(cause) = &self.cause {
            write!(f, " ({cause})")?;
        }
        Ok(())
    }
}

/// The current time in unix seconds: the clock of signed data (record expiry, directory
/// periods, certificate windows), read by the driver and by hosts, never by the cores.
pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default()
}

/// Checks that a tokio runtime is available (libp2p-tcp panics without one).
fn require_runtime() -> Result<(), DriverError> {
    tokio::runtime::Handle::try_current()
        .map(|_| ())
        .map_err(|_| DriverError::NoRuntime)
}

/// Builds the swarm every driver task uses: TCP + Noise + Yamux, the cell behaviour and, on
/// nodes (`services`), Kademlia and the directory protocol.
fn build_swarm(
    key: Keypair,
    config: &LinkConfig,
    services: Option<&NodeServices>,
) -> Result<libp2p::Swarm<behaviour::Overlay>, DriverError> {
    let hello_timeout = config.hello_timeout;
    let dial_timeout = config.dial_timeout;
    let swarm = libp2p::SwarmBuilder::with_existing_identity(key)
        .with_tokio()
        .with_tcp(
            libp2p::tcp::Config::default().nodelay(true),
            libp2p::noise::Config::new,
            libp2p::yamux::Config::default,
        )
        .map_err(|e| DriverError::Transport(e.to_string()))?
        .with_behaviour(|key| behaviour::Overlay {
            gate: behaviour::DialGate::default(),
            cells: behaviour::Behaviour::new(dial_timeout.max(hello_timeout)),
            dht: services
                .and_then(|s| s.dht.as_ref())
                .map(|setup| dht::behaviour(key.public().to_peer_id(), setup))
                .into(),
            directory: services
                .and_then(|s| s.directory.as_ref())
                .map(|_| directory::behaviour())
                .into(),
            counts: services
                .and_then(|s| s.streams.as_ref())
                .map(|_| counts::behaviour())
                .into(),
        })
        .map_err(|e| DriverError::Transport(e.to_string()))?
        // A connection whose cell substream is gone closes soon; the driver decides idleness.
        .with_swarm_config(|c| c.with_idle_connection_timeout(Duration::from_secs(1)))
        .build();
    Ok(swarm)
}
