//! The messaging services of a node, as one [`ServiceHub`] for its relay: `presence`,
//! `rendezvous` and `lookup` (the psp-rendezvous state machines) beside the simple services
//! (`echo`).
//!
//! The relay names streams by [`StreamRef`]; the state machines by [`StreamHandle`]. This
//! module maps one to the other, feeds the machines the bytes and the time (unix seconds,
//! which they use, translated to and from the relay's [`Timestamp`]s), and turns their
//! actions into the relay's: bytes to a stream, or the end of a stream after the bytes sent
//! before it (a declined or cancelled introducer hears why before its stream ends).
//!
//! What needs the node beyond the relay goes to the node task through [`HubQueues`]: presence
//! records co-signed with the node key, to put in the DHT, and the DHT look-ups of the
//! `lookup` service, whose answers come back the same way.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use psp_rendezvous::lookup::{self, Lookup, LookupConfig};
use psp_rendezvous::presence::{self, Presence, PresenceConfig};
use psp_rendezvous::rendezvous::{self, Rendezvous, RendezvousConfig};
use psp_rendezvous::{ChainView, StreamHandle};

use crate::circuit::{ServiceAction, ServiceHub, StreamRef, Timestamp};
use crate::crypto::Sr25519Keypair;
use crate::dht::{RecordKey, SignedRecord};
use crate::driver::unix_now;
use crate::registry::IdentityRegistry;

/// Name of the presence service in BEGIN.
pub const PRESENCE_SERVICE: &str = "presence";
/// Name of the rendezvous service in BEGIN.
pub const RENDEZVOUS_SERVICE: &str = "rendezvous";
/// Name of the lookup service in BEGIN.
pub const LOOKUP_SERVICE: &str = "lookup";
/// Entries of each [`HubQueues`] queue; beyond this the oldest is dropped (and logged). The
/// node task drains the queues every turn of its loop, and the lookup service bounds its
/// fetches in flight far below this.
const MAX_QUEUED: usize = 1_024;

/// The chain as the messaging services check it, kept current by the host at each
/// finalized block.
#[derive(Clone)]
pub struct MessagingChain {
    /// The chain's genesis hash.
    pub genesis: [u8; 32],
    /// The elected authorities (certificate issuers) at the latest finalized block.
    pub authorities: Arc<RwLock<Vec<[u8; 32]>>>,
    /// Identity status at the latest finalized block.
    pub registry: Arc<dyn IdentityRegistry + Send + Sync>,
    /// Bumped by the host at each finalized block: the presence service then re-checks every
    /// registered identity (a revoked one loses its presence at its next event).
    pub generation: Arc<AtomicU64>,
}

impl MessagingChain {
    /// Runs `f` with the chain as the services check it now (the authorities read once).
    pub(crate) fn with_view<R>(&self, f: impl FnOnce(&ChainView<'_>) -> R) -> R {
        let authorities = self
            .authorities
            .read()
            .map(|a| a.clone())
            .unwrap_or_default();
        f(&ChainView {
            genesis: &self.genesis,
            authorities: &authorities,
            registry: &*self.registry,
        })
    }
}

/// What a node needs to run the messaging services.
#[derive(Clone)]
pub struct MessagingSetup {
    /// The node's identity key: co-signs the presence records it publishes.
    pub node_key: Arc<Sr25519Keypair>,
    /// The chain checks.
    pub chain: MessagingChain,
    /// Presence service limits.
    pub presence: PresenceConfig,
    /// Rendezvous service limits.
    pub rendezvous: RendezvousConfig,
    /// Lookup service limits.
    pub lookup: LookupConfig,
    /// Sees every byte a client sends to the presence, rendezvous and lookup services, with
    /// the service's name: the plaintext this node learns at the end of a circuit. For tests
    /// of what each node learns; `None` in production.
    pub observer: Option<ServiceObserver>,
}

/// See [`MessagingSetup::observer`].
pub type ServiceObserver = Arc<dyn Fn(&'static str, &[u8]) + Send + Sync>;

/// What the hub and the node task hand each other, each queue bounded by `MAX_QUEUED`.
#[derive(Default, Debug)]
pub struct HubQueues {
    /// Co-signed presence records (encoded [`SignedRecord`]s) to put in the DHT.
    pub publish: VecDeque<Vec<u8>>,
    /// Look-ups to run: the lookup stream and the DHT keys it asked for.
    pub fetch: VecDeque<(StreamHandle, Vec<RecordKey>)>,
    /// Finished look-ups: the stream and the records found (encoded, unchecked).
    pub fetched: VecDeque<(StreamHandle, Vec<Vec<u8>>)>,
    /// This oracle's receipt counts (encoded messages), set by the stream hub when they
    /// changed, taken by the node task to send to the other oracles.
    pub counts_out: Option<Vec<super::counts::ExchangeRequest>>,
    /// Other oracles' receipt counts (only entries they issued), for the stream hub to merge.
    pub counts_in: VecDeque<(super::counts::CountsKind, psp_receipts::Counts)>,
    /// Streams the landing service created, for the node task to report to the host.
    pub created: VecDeque<super::streams::CreatedStream>,
}

impl HubQueues {
    pub(crate) fn push<T>(queue: &mut VecDeque<T>, item: T, what: &str) {
        if queue.len() >= MAX_QUEUED {
            queue.pop_front();
            tracing::warn!("psp messaging: {what} queue full, oldest entry dropped");
        }
        queue.push_back(item);
    }
}

/// The queues, shared by the hub (inside the relay) and the node task.
pub type SharedQueues = Arc<Mutex<HubQueues>>;

#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
enum Kind {
    Presence,
    Rendezvous,
    Lookup,
}

/// The relay's hub: simple services, presence and rendezvous.
pub struct MessagingHub {
    simple: Box<dyn ServiceHub>,
    presence: Presence,
    rendezvous: Rendezvous,
    lookup: Lookup,
    setup: MessagingSetup,
    streams: HashMap<StreamRef, (Kind, StreamHandle)>,
    handles: HashMap<(Kind, StreamHandle), StreamRef>,
    next_handle: u64,
    actions: VecDeque<ServiceAction>,
    queues: SharedQueues,
    /// The relay time and unix time of the latest call, to translate deadlines.
    clock: (Timestamp, u64),
    /// The chain generation the registrations were last checked at.
    checked: u64,
}

impl MessagingHub {
    /// A hub serving `simple` beside presence, rendezvous and lookup; what needs the node
    /// task goes through `queues`.
    pub fn new(simple: Box<dyn ServiceHub>, setup: MessagingSetup, queues: SharedQueues) -> Self {
        let node_id = setup.node_key.public();
        Self {
            simple,
            presence: Presence::new(node_id, setup.presence.clone()),
            rendezvous: Rendezvous::new(setup.rendezvous.clone()),
            lookup: Lookup::new(setup.lookup.clone()),
            setup,
            streams: HashMap::new(),
            handles: HashMap::new(),
            next_handle: 0,
            actions: VecDeque::new(),
            queues,
            clock: (Timestamp(0), 0),
            checked: 0,
        }
    }

    /// Unix seconds now, remembering which relay time it goes with.
    fn tick(&mut self, now: Timestamp) -> u64 {
        let unix = unix_now();
        self.clock = (now, unix);
        unix
    }

    fn run_presence(&mut self, now: Timestamp, f: impl FnOnce(&mut Presence, &ChainView<'_>, u64)) {
        let unix = self.tick(now);
        let generation = self.setup.chain.generation.load(Ordering::Relaxed);
        let recheck = generation != self.checked;
        self.checked = generation;
        let presence = &mut self.presence;
        self.setup.chain.with_view(|chain| {
            if recheck {
                presence.recheck_identities(chain);
            }
            f(presence, chain, unix);
        });
        self.drain();
    }

    /// Turns the machines' actions into the relay's.
    fn drain(&mut self) {
        while let Some(action) = self.presence.poll_action() {
            match action {
                presence::Action::Send { stream, bytes } => {
                    self.send(Kind::Presence, stream, bytes)
                }
                presence::Action::Close { stream } => {
                    // END after the bytes queued before it (a declined introducer hears
                    // why); the client then tears its circuit down.
                    if let Some(at) = self.forget(Kind::Presence, stream) {
                        self.actions.push_back(ServiceAction::End { stream: at });
                    }
                }
                presence::Action::Teardown { stream } => {
                    // DESTROY the introducer's whole route (a cancelled request).
                    if let Some(at) = self.forget(Kind::Presence, stream) {
                        self.actions.push_back(ServiceAction::Destroy {
                            circuit: at.circuit,
                        });
                    }
                }
                presence::Action::Publish {
                    content,
                    owner_signature,
                } => self.publish(SignedRecord::cosign(
                    content,
                    owner_signature,
                    &self.setup.node_key,
                )),
                presence::Action::Unpublish { key, reason } => {
                    // Other nodes drop it at its expiry; this node stops renewing it.
                    tracing::info!(?key, ?reason, "psp presence: record lapsed");
                }
                other => tracing::debug!(action = ?other, "psp presence: action ignored"),
            }
        }
        while let Some(action) = self.rendezvous.poll_action() {
            match action {
                rendezvous::Action::Send { stream, bytes } => {
                    self.send(Kind::Rendezvous, stream, bytes)
                }
                rendezvous::Action::Close { stream } => {
                    if let Some(at) = self.forget(Kind::Rendezvous, stream) {
                        self.actions.push_back(ServiceAction::End { stream: at });
                    }
                }
                other => tracing::debug!(action = ?other, "psp rendezvous: action ignored"),
            }
        }
        while let Some(action) = self.lookup.poll_action() {
            match action {
                lookup::Action::Fetch { stream, keys } => {
                    let mut queues = self.queues();
                    HubQueues::push(&mut queues.fetch, (stream, keys), "look-up");
                }
                lookup::Action::Send { stream, bytes } => self.send(Kind::Lookup, stream, bytes),
                lookup::Action::Close { stream } => {
                    if let Some(at) = self.forget(Kind::Lookup, stream) {
                        self.actions.push_back(ServiceAction::End { stream: at });
                    }
                }
                other => tracing::debug!(action = ?other, "psp lookup: action ignored"),
            }
        }
    }

    fn queues(&self) -> std::sync::MutexGuard<'_, HubQueues> {
        // A poisoned lock only means the other side panicked between two whole entries.
        self.queues.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Hands the lookup service the DHT answers the node task has found.
    fn take_fetched(&mut self) {
        let fetched: Vec<_> = self.queues().fetched.drain(..).collect();
        if fetched.is_empty() {
            return;
        }
        let unix = unix_now();
        for (stream, records) in fetched {
            self.lookup.handle_fetched(unix, stream, records);
        }
        self.drain();
    }

    fn send(&mut self, kind: Kind, stream: StreamHandle, data: Vec<u8>) {
        if let Some(&to) = self.handles.get(&(kind, stream)) {
            self.actions.push_back(ServiceAction::Send { to, data });
        }
    }

    fn forget(&mut self, kind: Kind, stream: StreamHandle) -> Option<StreamRef> {
        let at = self.handles.remove(&(kind, stream))?;
        self.streams.remove(&at);
        Some(at)
    }

    fn publish(&mut self, record: SignedRecord) {
        HubQueues::push(&mut self.queues().publish, record.encode(), "publication");
    }
}

impl ServiceHub for MessagingHub {
    fn open(&mut self, now: Timestamp, service: &str, stream: StreamRef) -> bool {
        let kind = match service {
            PRESENCE_SERVICE => Kind::Presence,
            RENDEZVOUS_SERVICE => Kind::Rendezvous,
            LOOKUP_SERVICE => Kind::Lookup,
            _ => return self.simple.open(now, service, stream),
        };
        self.next_handle = self.next_handle.wrapping_add(1);
        let handle = StreamHandle(self.next_handle);
        self.streams.insert(stream, (kind, handle));
        self.handles.insert((kind, handle), stream);
        true
    }

    fn on_data(&mut self, now: Timestamp, stream: StreamRef, data: &[u8]) {
        let kind = self.streams.get(&stream).copied();
        if let (Some(observe), Some((kind, _))) = (&self.setup.observer, kind) {
            let service = match kind {
                Kind::Presence => PRESENCE_SERVICE,
                Kind::Rendezvous => RENDEZVOUS_SERVICE,
                Kind::Lookup => LOOKUP_SERVICE,
            };
            observe(service, data);
        }
        match kind {
            Some((Kind::Presence, handle)) => self.run_presence(now, |p, chain, unix| {
                if let Err(e) = p.handle_data(unix, handle, data, chain) {
                    tracing::info!(%e, "psp presence: refused");
                }
            }),
            Some((Kind::Rendezvous, handle)) => {
                let unix = self.tick(now);
                if let Err(e) = self.rendezvous.handle_data(unix, handle, data) {
                    tracing::info!(%e, "psp rendezvous: refused");
                }
                self.drain();
            }
            Some((Kind::Lookup, handle)) => {
                let unix = self.tick(now);
                if let Err(e) = self.lookup.handle_data(unix, handle, data) {
                    tracing::info!(%e, "psp lookup: refused");
                }
                self.drain();
            }
            None => self.simple.on_data(now, stream, data),
        }
    }

    fn on_closed(&mut self, now: Timestamp, stream: StreamRef) {
        let Some((kind, handle)) = self.streams.remove(&stream) else {
            return self.simple.on_closed(now, stream);
        };
        self.handles.remove(&(kind, handle));
        match kind {
            Kind::Presence => self.presence.handle_stream_closed(handle),
            Kind::Rendezvous => self.rendezvous.handle_stream_closed(handle),
            Kind::Lookup => self.lookup.handle_stream_closed(handle),
        }
        self.drain();
    }

    fn poll_action(&mut self) -> Option<ServiceAction> {
        if self.actions.is_empty() {
            self.take_fetched();
        }
        self.actions
            .pop_front()
            .or_else(|| self.simple.poll_action())
    }

    fn poll_timeout(&self) -> Option<Timestamp> {
        let unix = [
            self.presence.poll_timeout(),
            self.rendezvous.poll_timeout(),
            self.lookup.poll_timeout(),
        ]
        .into_iter()
        .flatten()
        .min();
        let ours = unix.map(|unix| {
            let (at, at_unix) = self.clock;
            Timestamp(at.0.saturating_add(unix.saturating_sub(at_unix).saturating_mul(1_000)))
        });
        match (ours, self.simple.poll_timeout()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    fn on_timeout(&mut self, now: Timestamp) {
        self.run_presence(now, |p, _, unix| p.handle_timeout(unix));
        let unix = self.tick(now);
        self.rendezvous.handle_timeout(unix);
        self.lookup.handle_timeout(unix);
        self.drain();
        self.simple.on_timeout(now);
    }
}
