//! Overlay services at the last hop of a circuit.
//!
//! There are no exits: a stream opened by BEGIN ends at a named service inside the node. The
//! relay hands every stream event to one [`ServiceHub`] and carries out what it asks
//! ([`ServiceAction`]): bytes to any open stream (not only the one that spoke, so that a
//! presence node can push an introduction to the client it serves and a rendezvous node can
//! join two circuits), the end of a stream, or the teardown of a whole circuit.
//!
//! [`Services`] is the simple hub: a name → factory registry of per-stream [`Stream`]s that
//! only answer on their own stream (`echo` is built in). Hubs with state across streams
//! (presence, rendezvous) implement [`ServiceHub`] themselves and may wrap a [`Services`] for
//! the simple ones.

use std::collections::{BTreeMap, HashMap, VecDeque};

use super::Timestamp;
use crate::cell::StreamId;

/// A stream at this node's end of a circuit: the relay's key of the circuit and the stream id.
/// Valid until the hub hears [`ServiceHub::on_closed`] for it.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, PartialOrd, Ord)]
pub struct StreamRef {
    /// The relay's key of the circuit (not the circuit id on any link).
    pub circuit: u64,
    /// The stream on that circuit.
    pub stream: StreamId,
}

/// What a hub asks the relay to do.
#[derive(Clone, PartialEq, Eq, Debug)]
#[non_exhaustive]
pub enum ServiceAction {
    /// Send bytes to the client at the other end of `to` (split into cells, under the circuit
    /// window). Ignored if the stream is gone.
    Send {
        /// The stream.
        to: StreamRef,
        /// The bytes.
        data: Vec<u8>,
    },
    /// End the stream (an END to the client, after the bytes sent before).
    End {
        /// The stream.
        stream: StreamRef,
    },
    /// Tear down the circuit the stream is on (DESTROY both ways): for a peer that must be
    /// cut off at once, like an introducer whose request was cancelled.
    Destroy {
        /// The relay's key of the circuit.
        circuit: u64,
    },
}

/// The services of a node, as the relay sees them.
///
/// The relay calls [`ServiceHub::poll_action`] after every call into the hub and whenever it
/// is polled for cells, so a hub may also queue actions from outside input (a DHT answer).
pub trait ServiceHub: Send {
    /// BEGIN for `service` on `stream`: `true` opens the stream (CONNECTED), `false` refuses
    /// it (END `UnknownService`).
    fn open(&mut self, now: Timestamp, service: &str, stream: StreamRef) -> bool;
    /// Bytes from the client on an open stream.
    fn on_data(&mut self, now: Timestamp, stream: StreamRef, data: &[u8]);
    /// The stream ended: END from the client, or its circuit closed. Not called for streams
    /// the hub itself ended.
    fn on_closed(&mut self, now: Timestamp, stream: StreamRef);
    /// The next thing to do, if any.
    fn poll_action(&mut self) -> Option<ServiceAction>;
    /// When [`ServiceHub::on_timeout`] should be called next.
    fn poll_timeout(&self) -> Option<Timestamp> {
        None
    }
    /// Time passed: expire what is due.
    fn on_timeout(&mut self, _now: Timestamp) {}
}

/// One open stream at a simple service.
pub trait Stream: Send {
    /// Bytes from the client; anything appended to `reply` goes back on the stream.
    fn on_data(&mut self, data: &[u8], reply: &mut Vec<u8>);
}

/// `echo`: replies with every byte it receives.
#[derive(Debug, Default)]
pub struct EchoService;

impl Stream for EchoService {
    fn on_data(&mut self, data: &[u8], reply: &mut Vec<u8>) {
        reply.extend_from_slice(data);
    }
}

type Factory = Box<dyn Fn() -> Box<dyn Stream> + Send>;

/// A name → factory registry of simple services; [`Services::default`] offers `echo`.
pub struct Services {
    factories: HashMap<String, Factory>,
    open: BTreeMap<StreamRef, Box<dyn Stream>>,
    actions: VecDeque<ServiceAction>,
}

impl Services {
    /// No services.
    pub fn empty() -> Self {
        Self {
            factories: HashMap::new(),
            open: BTreeMap::new(),
            actions: VecDeque::new(),
        }
    }

    /// Adds (or replaces) a service.
    pub fn register(&mut self, name: &str, factory: impl Fn() -> Box<dyn Stream> + Send + 'static) {
        self.factories.insert(name.to_owned(), Box::new(factory));
    }

    /// Whether `service` is one of these.
    pub fn offers(&self, service: &str) -> bool {
        self.factories.contains_key(service)
    }

    /// Streams open now.
    pub fn open_streams(&self) -> usize {
        self.open.len()
    }
}

impl Default for Services {
    fn default() -> Self {
        let mut s = Self::empty();
        s.register("echo", || Box::new(EchoService));
        s
    }
}

impl ServiceHub for Services {
    fn open(&mut self, _now: Timestamp, service: &str, stream: StreamRef) -> bool {
        match self.factories.get(service) {
            Some(factory) => {
                self.open.insert(stream, factory());
                true
            }
            None => false,
        }
    }

    fn on_data(&mut self, _now: Timestamp, stream: StreamRef, data: &[u8]) {
        let Some(s) = self.open.get_mut(&stream) else {
            return;
        };
        let mut reply = Vec::new();
        s.on_data(data, &mut reply);
        if !reply.is_empty() {
            self.actions.push_back(ServiceAction::Send {
                to: stream,
                data: reply,
            });
        }
    }

    fn on_closed(&mut self, _now: Timestamp, stream: StreamRef) {
        self.open.remove(&stream);
    }

    fn poll_action(&mut self) -> Option<ServiceAction> {
        self.actions.pop_front()
    }
}
