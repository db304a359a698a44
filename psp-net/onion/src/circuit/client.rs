//! The client side of circuits: a sans-IO state machine.
//!
//! The client picks every hop (node id + onion key from the chain), sends CREATE to the entry
//! node, then telescopes: each EXTEND travels (in RELAY_EARLY) to the current last hop, which
//! sends CREATE onward; the new hop's reply comes back as EXTENDED and the client checks it
//! reached the node that holds the registered onion key. Streams to named services at the
//! last hop are multiplexed over the circuit.
//!
//! DATA obeys the circuit windows ([`super::window`]): what the window does not let out yet
//! waits in the circuit's backlog (at most [`MAX_SEND_BACKLOG`] cells; [`Client::send`]
//! refuses more) and leaves as the last hop's SENDMEs arrive. The other way, the last hop can
//! have at most [`CIRCUIT_WINDOW`](super::window::CIRCUIT_WINDOW) DATA cells in flight, so
//! the event queue holds at most that many DATA events per circuit plus one event per
//! extend, stream and close: it is bounded without dropping anything.

use std::collections::{BTreeSet, HashMap, VecDeque};

use rand_core::CryptoRngCore;

use super::window::Windows;
use super::{next_stream_id, transmit, CircuitError, Peer, Transmit};
use crate::cell::{
    max_forward_data, Cell, ChanMsg, CircId, DestroyReason, EndReason, RelayBody, RelayMsg,
    StreamId,
};
use crate::crypto::{
    client_unwrap_backward, client_wrap_forward, ntor_client_finish, ntor_client_start, HopCrypto,
    NodeId, NtorClientState, OnionPublic, PaddingStream,
};

/// Longest circuit the client builds (the relays' RELAY_EARLY limit allows 8 extends).
pub const MAX_HOPS: usize = 8;

/// DATA cells one circuit may hold waiting for its window (about 1.8 MiB on 3 hops).
pub const MAX_SEND_BACKLOG: usize = 4_096;

/// A circuit of this client: the entry node and the circuit id on that link.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct CircuitHandle {
    /// The first hop.
    pub entry: NodeId,
    /// The circuit id on the link to it.
    pub id: CircId,
}

/// What happened on the client's circuits.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ClientEvent {
    /// A hop was added and authenticated; `hops` is the new length.
    Extended {
        /// The circuit.
        circuit: CircuitHandle,
        /// Hops now built.
        hops: usize,
    },
    /// The last hop accepted a stream.
    StreamOpened {
        /// The circuit.
        circuit: CircuitHandle,
        /// The stream.
        stream: StreamId,
    },
    /// Bytes on a stream.
    Data {
        /// The circuit.
        circuit: CircuitHandle,
        /// The stream.
        stream: StreamId,
        /// The bytes.
        data: Vec<u8>,
    },
    /// A stream ended.
    StreamClosed {
        /// The circuit.
        circuit: CircuitHandle,
        /// The stream.
        stream: StreamId,
        /// Why.
        reason: EndReason,
    },
    /// The circuit is gone.
    Closed {
        /// The circuit.
        circuit: CircuitHandle,
        /// The DESTROY reason (received or sent).
        reason: DestroyReason,
        /// The local cause, if this client closed it.
        cause: Option<CircuitError>,
    },
}

struct ClientCirc {
    hops: Vec<HopCrypto>,
    path: Vec<NodeId>,
    pending: Option<NtorClientState>,
    streams: BTreeSet<StreamId>,
    next_stream: u16,
    windows: Windows,
    /// Messages waiting for the send window, in order (a stream's END waits behind its DATA).
    backlog: VecDeque<RelayMsg>,
}

/// The client state machine.
pub struct Client {
    rng: Box<dyn CryptoRngCore + Send>,
    padding: PaddingStream,
    circuits: HashMap<(NodeId, CircId), ClientCirc>,
    next_id: u32,
    outbox: VecDeque<Transmit>,
    events: VecDeque<ClientEvent>,
}

impl Client {
    /// A client drawing ephemeral keys and padding from `rng`.
    pub fn new(mut rng: Box<dyn CryptoRngCore + Send>) -> Self {
        let mut seed = [0u8; 32];
        rng.fill_bytes(&mut seed);
        Self {
            rng,
            padding: PaddingStream::new(seed),
            circuits: HashMap::new(),
            next_id: 0,
            outbox: VecDeque::new(),
            events: VecDeque::new(),
        }
    }

    /// Starts a circuit at `entry` (whose onion key is `onion_key`, from the chain).
    pub fn build(
        &mut self,
        entry: NodeId,
        onion_key: OnionPublic,
    ) -> Result<CircuitHandle, CircuitError> {
        // Clients allocate ids without the high bit; a relay never creates towards a client.
        let mut id = None;
        for _ in 0..64 {
            self.next_id = (self.next_id % 0x7fff_ffff) + 1;
            let c = CircId::new(self.next_id).ok_or(CircuitError::NoCircuitId)?;
            if !self.circuits.contains_key(&(entry, c)) {
                id = Some(c);
                break;
            }
        }
        let id = id.ok_or(CircuitError::NoCircuitId)?;
        let mut x = [0u8; 32];
        self.rng.fill_bytes(&mut x);
        let (state, msg) = ntor_client_start(entry, onion_key, x);
        self.circuits.insert(
            (entry, id),
            ClientCirc {
                hops: Vec::new(),
                path: Vec::new(),
                pending: Some(state),
                streams: BTreeSet::new(),
                next_stream: 0,
                windows: Windows::default(),
                backlog: VecDeque::new(),
            },
        );
        self.outbox
            .push_back(transmit(Peer::Node(entry), id, ChanMsg::Create(msg)));
        Ok(CircuitHandle { entry, id })
    }

    /// Extends `circuit` by one hop to `node` (onion key from the chain).
    pub fn extend(
        &mut self,
        circuit: CircuitHandle,
        node: NodeId,
        onion_key: OnionPublic,
    ) -> Result<(), CircuitError> {
        let c = self.circ(circuit)?;
        if c.pending.is_some() || c.hops.is_empty() {
            return Err(CircuitError::Busy);
        }
        if c.hops.len() >= MAX_HOPS {
            return Err(CircuitError::TooManyHops);
        }
        let mut x = [0u8; 32];
        self.rng.fill_bytes(&mut x);
        let (state, msg) = ntor_client_start(node, onion_key, x);
        self.send_msg(circuit, &RelayMsg::Extend(msg), true)?;
        if let Ok(c) = self.circ(circuit) {
            c.pending = Some(state);
        }
        Ok(())
    }

    /// Opens a stream to `service` at the last hop.
    pub fn open_stream(
        &mut self,
        circuit: CircuitHandle,
        service: &str,
    ) -> Result<StreamId, CircuitError> {
        let c = self.circ(circuit)?;
        if c.pending.is_some() || c.hops.is_empty() {
            return Err(CircuitError::Busy);
        }
        let stream = next_stream_id(&mut c.next_stream).ok_or(CircuitError::NoStreamId)?;
        let msg = RelayMsg::Begin {
            stream,
            service: service.to_owned(),
        };
        self.send_msg(circuit, &msg, false)?;
        self.circ(circuit)?.streams.insert(stream);
        Ok(stream)
    }

    /// Largest DATA payload per cell on `circuit` now.
    pub fn max_data(&self, circuit: CircuitHandle) -> usize {
        self.circuits
            .get(&(circuit.entry, circuit.id))
            .map_or(0, |c| max_forward_data(c.hops.len()))
    }

    /// Sends `data` on a stream, as many cells as needed; returns the number of cells. Cells
    /// beyond the circuit window wait in its backlog; when the backlog cannot take them all,
    /// nothing is sent and the error says how full it is.
    pub fn send(
        &mut self,
        circuit: CircuitHandle,
        stream: StreamId,
        data: &[u8],
    ) -> Result<usize, CircuitError> {
        let c = self.circ(circuit)?;
        if !c.streams.contains(&stream) {
            return Err(CircuitError::NoSuchStream);
        }
        let chunk = max_forward_data(c.hops.len()).max(1);
        let cells = data.len().div_ceil(chunk);
        // A non-empty backlog means the window is spent; otherwise it takes cells first.
        let room = MAX_SEND_BACKLOG + usize::from(c.windows.package_left());
        if c.backlog.len() + cells > room {
            return Err(CircuitError::SendBacklogFull {
                queued: c.backlog.len(),
                max: MAX_SEND_BACKLOG,
            });
        }
        c.backlog
            .extend(data.chunks(chunk).map(|part| RelayMsg::Data {
                stream,
                data: part.to_vec(),
            }));
        self.flush_backlog(circuit)?;
        Ok(cells)
    }

    /// Messages of `circuit` waiting for its send window.
    pub fn backlog(&self, circuit: CircuitHandle) -> usize {
        self.circuits
            .get(&(circuit.entry, circuit.id))
            .map_or(0, |c| c.backlog.len())
    }

    /// Sends what the window lets out of the backlog, in order.
    fn flush_backlog(&mut self, h: CircuitHandle) -> Result<(), CircuitError> {
        loop {
            let c = self.circ(h)?;
            let Some(front) = c.backlog.front() else {
                return Ok(());
            };
            if matches!(front, RelayMsg::Data { .. }) && !c.windows.take_package() {
                return Ok(());
            }
            let Some(msg) = c.backlog.pop_front() else {
                return Ok(());
            };
            self.send_msg(h, &msg, false)?;
        }
    }

    /// Closes a stream.
    pub fn close_stream(
        &mut self,
        circuit: CircuitHandle,
        stream: StreamId,
    ) -> Result<(), CircuitError> {
        let c = self.circ(circuit)?;
        if !c.streams.remove(&stream) {
            return Err(CircuitError::NoSuchStream);
        }
        // Behind the stream's DATA still waiting for the window.
        c.backlog.push_back(RelayMsg::End {
            stream,
            reason: EndReason::Done,
        });
        self.flush_backlog(circuit)
    }

    /// Tears the circuit down (DESTROY to the entry, which propagates it).
    pub fn destroy(&mut self, circuit: CircuitHandle) -> Result<(), CircuitError> {
        self.circ(circuit)?;
        self.close(circuit, DestroyReason::Requested, true, None);
        Ok(())
    }

    /// Hops built so far on `circuit`.
    pub fn path(&self, circuit: CircuitHandle) -> Option<&[NodeId]> {
        self.circuits
            .get(&(circuit.entry, circuit.id))
            .map(|c| c.path.as_slice())
    }

    /// Open circuits (built or being built) whose entry is `entry`.
    pub fn circuits_via(&self, entry: NodeId) -> usize {
        self.circuits.keys().filter(|(e, _)| *e == entry).count()
    }

    /// The link to `entry` is gone: every circuit through it is closed (no DESTROY can be
    /// sent), each with a [`ClientEvent::Closed`] with reason `LinkClosed`.
    pub fn handle_link_closed(&mut self, entry: NodeId) {
        let gone: Vec<CircuitHandle> = self
            .circuits
            .keys()
            .filter(|(e, _)| *e == entry)
            .map(|&(entry, id)| CircuitHandle { entry, id })
            .collect();
        for h in gone {
            self.close(h, DestroyReason::LinkClosed, false, None);
        }
    }

    /// Next cell to write.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.outbox.pop_front()
    }

    /// Next event.
    pub fn poll_event(&mut self) -> Option<ClientEvent> {
        self.events.pop_front()
    }

    fn circ(&mut self, h: CircuitHandle) -> Result<&mut ClientCirc, CircuitError> {
        self.circuits
            .get_mut(&(h.entry, h.id))
            .ok_or(CircuitError::NoSuchCircuit)
    }

    fn send_msg(
        &mut self,
        h: CircuitHandle,
        msg: &RelayMsg,
        early: bool,
    ) -> Result<(), CircuitError> {
        let mut plain = [0u8; crate::cell::RELAY_PLAINTEXT_LEN];
        let n = msg.encode_into(&mut plain).map_err(CircuitError::Cell)?;
        let c = self
            .circuits
            .get_mut(&(h.entry, h.id))
            .ok_or(CircuitError::NoSuchCircuit)?;
        let body = client_wrap_forward(&mut c.hops, &plain[..n], &mut self.padding)
            .map_err(CircuitError::Integrity)?;
        let body = RelayBody(Box::new(body));
        let msg = if early {
            ChanMsg::RelayEarly(body)
        } else {
            ChanMsg::Relay(body)
        };
        self.outbox
            .push_back(transmit(Peer::Node(h.entry), h.id, msg));
        Ok(())
    }

    fn close(
        &mut self,
        h: CircuitHandle,
        reason: DestroyReason,
        notify: bool,
        cause: Option<CircuitError>,
    ) {
        if self.circuits.remove(&(h.entry, h.id)).is_none() {
            return;
        }
        if notify {
            self.outbox.push_back(transmit(
                Peer::Node(h.entry),
                h.id,
                ChanMsg::Destroy(reason),
            ));
        }
        self.events.push_back(ClientEvent::Closed {
            circuit: h,
            reason,
            cause,
        });
    }

    /// Feeds one cell received from node `from`.
    pub fn handle_cell(&mut self, from: NodeId, bytes: &[u8]) {
        let Ok(cell) = Cell::decode(bytes) else {
            // Undecodable: we cannot trust the id; the link driver counts and may drop the link.
            return;
        };
        let h = CircuitHandle {
            entry: from,
            id: cell.circ_id,
        };
        let Some(c) = self.circuits.get_mut(&(from, cell.circ_id)) else {
            return;
        };
        match cell.msg {
            ChanMsg::Created(reply) if c.hops.is_empty() => {
                let Some(state) = c.pending.take() else {
                    return self.close(h, DestroyReason::Protocol, true, None);
                };
                match ntor_client_finish(state, &reply) {
                    Ok(keys) => {
                        c.hops.push(HopCrypto::new(keys));
                        c.path.push(from);
                        self.events.push_back(ClientEvent::Extended {
                            circuit: h,
                            hops: 1,
                        });
                    }
                    Err(e) => self.close(
                        h,
                        DestroyReason::Handshake,
                        true,
                        Some(CircuitError::Handshake(e)),
                    ),
                }
            }
            ChanMsg::Relay(mut body) => {
                let msg = match client_unwrap_backward(&mut c.hops, &mut body.0) {
                    Ok(plain) => RelayMsg::decode(plain).map_err(CircuitError::Cell),
                    Err(e) => Err(CircuitError::Integrity(e)),
                };
                match msg {
                    Ok(m) => self.on_relay_msg(h, m),
                    Err(e) => {
                        let reason = match e {
                            CircuitError::Integrity(_) => DestroyReason::Integrity,
                            _ => DestroyReason::Protocol,
                        };
                        self.close(h, reason, true, Some(e))
                    }
                }
            }
            ChanMsg::Destroy(reason) => self.close(h, reason, false, None),
            _ => self.close(
                h,
                DestroyReason::Protocol,
                true,
                Some(CircuitError::Unexpected("cell towards a client")),
            ),
        }
    }

    fn on_relay_msg(&mut self, h: CircuitHandle, msg: RelayMsg) {
        let Some(c) = self.circuits.get_mut(&(h.entry, h.id)) else {
            return;
        };
        match msg {
            RelayMsg::Extended(reply) => {
                let Some(state) = c.pending.take() else {
                    return self.close(
                        h,
                        DestroyReason::Protocol,
                        true,
                        Some(CircuitError::Unexpected("EXTENDED")),
                    );
                };
                let node = state_node(&state);
                match ntor_client_finish(state, &reply) {
                    Ok(keys) => {
                        c.hops.push(HopCrypto::new(keys));
                        c.path.push(node);
                        let hops = c.hops.len();
                        self.events
                            .push_back(ClientEvent::Extended { circuit: h, hops });
                    }
                    Err(e) => self.close(
                        h,
                        DestroyReason::Handshake,
                        true,
                        Some(CircuitError::Handshake(e)),
                    ),
                }
            }
            RelayMsg::Connected { stream } if c.streams.contains(&stream) => self
                .events
                .push_back(ClientEvent::StreamOpened { circuit: h, stream }),
            RelayMsg::Data { stream, data } => {
                if let Err(e) = c.windows.on_data() {
                    return self.close(h, DestroyReason::Protocol, true, Some(e));
                }
                let due = c.windows.sendme_due();
                if due {
                    c.windows.sendme_sent();
                }
                // DATA racing our END of its stream is dropped (it still counted).
                if c.streams.contains(&stream) {
                    self.events.push_back(ClientEvent::Data {
                        circuit: h,
                        stream,
                        data,
                    });
                }
                if due {
                    if let Err(e) = self.send_msg(h, &RelayMsg::Sendme, false) {
                        self.close(h, DestroyReason::Internal, true, Some(e));
                    }
                }
            }
            RelayMsg::Sendme => {
                if let Err(e) = c.windows.on_sendme() {
                    return self.close(h, DestroyReason::Protocol, true, Some(e));
                }
                if let Err(e) = self.flush_backlog(h) {
                    self.close(h, DestroyReason::Internal, true, Some(e));
                }
            }
            RelayMsg::End { stream, reason } => {
                if c.streams.remove(&stream) {
                    self.events.push_back(ClientEvent::StreamClosed {
                        circuit: h,
                        stream,
                        reason,
                    });
                }
            }
            RelayMsg::Drop => {}
            _ => self.close(
                h,
                DestroyReason::Protocol,
                true,
                Some(CircuitError::Unexpected("relay message towards a client")),
            ),
        }
    }
}

fn state_node(state: &NtorClientState) -> NodeId {
    state.node_id()
}
