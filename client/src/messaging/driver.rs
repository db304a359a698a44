//! The agent's loop: the only async part. It owns the [`Core`] and moves things between it
//! and the world — stream events in, the core's actions out (streams opened through the
//! [`Network`], bytes to each stream's writer, replies to control requests, events to
//! subscribers) — and runs one timer for all the machines (the earliest `poll_timeout`),
//! the periodic chain refresh and the certificate renewal.
//!
//! Work that waits on the chain (resolving an id, fetching statuses, a refresh, a renewal)
//! runs in its own task and comes back as an [`Internal`] message, so the loop never blocks.
//! A presence stream whose next bytes carry an introducer the status cache does not know is
//! held (its later events queue behind it, in order) until that status arrives.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use psp_net::driver::unix_now;
use psp_net::registry::IdentityStatus;
use psp_net::rendezvous::StreamHandle;
use tokio::sync::{broadcast, mpsc, oneshot};

use super::chainview::describe_status;
use super::control::ControlRequest;
use super::core::{Action, Command, Core, Ticket};
use super::credentials;
use super::error::MessagingError;
use super::events::AgentEvent;
use super::groups::GroupInput;
use super::net::{NetEvent, Network};
use super::protocol::{message_bytes, presence_node_key, Request, Response};
use super::source::{ChainSource, IssuedCertificate, Peer, Snapshot, Statuses};
use crate::groups::{protocol::GroupRequest, GroupError};
use crate::hex0x;
use crate::keystore::Keys;

/// Stream events queued from the network tasks to the loop.
const NET_EVENTS: usize = 1_024;
/// Results of background chain work queued to the loop.
const INTERNAL: usize = 64;
/// A failed certificate renewal is retried after this long.
const RENEW_RETRY_SECS: u64 = 30;

/// What the loop's background tasks hand back.
enum Internal {
    /// An id was resolved for a `lookup` or `send`.
    Resolved {
        ticket: Ticket,
        then: Then,
        result: Result<Peer, MessagingError>,
    },
    /// Statuses fetched for a held stream.
    Statuses {
        stream: StreamHandle,
        result: Result<Statuses, MessagingError>,
    },
    /// A chain refresh.
    Refreshed(Result<(Snapshot, Statuses), MessagingError>),
    /// A certificate renewal.
    Renewed(Result<IssuedCertificate, MessagingError>),
}

/// What to do with a resolved peer.
enum Then {
    Lookup,
    Send {
        bytes: Vec<u8>,
        presence_node: Option<[u8; 32]>,
    },
}

/// A stream whose events wait for statuses.
#[derive(Default)]
struct Held {
    fetches: usize,
    events: VecDeque<NetEvent>,
}

/// Settings of the loop.
#[derive(Clone, Copy, Debug)]
pub(super) struct DriverTiming {
    /// Chain refresh period.
    pub refresh: Duration,
    /// Statuses older than this are fetched again at a refresh (seconds).
    pub status_max_age: u64,
}

/// The loop's state.
pub(super) struct Driver {
    core: Core,
    source: Arc<dyn ChainSource>,
    network: Arc<dyn Network>,
    keys: Arc<Keys>,
    timing: DriverTiming,
    writers: HashMap<StreamHandle, mpsc::Sender<Vec<u8>>>,
    tickets: HashMap<Ticket, oneshot::Sender<Response>>,
    next_ticket: u64,
    held: HashMap<StreamHandle, Held>,
    net_tx: mpsc::Sender<NetEvent>,
    net_rx: mpsc::Receiver<NetEvent>,
    internal_tx: mpsc::Sender<Internal>,
    internal_rx: mpsc::Receiver<Internal>,
    events: broadcast::Sender<AgentEvent>,
    /// The groups task, if the agent keeps groups.
    groups: Option<mpsc::Sender<GroupInput>>,
    refreshing: bool,
    next_refresh: u64,
    renewing: bool,
    renew_at: u64,
}

/// What stops the loop.
#[derive(Debug)]
pub(super) enum AgentCommand {
    /// A control request.
    Control(ControlRequest),
    /// Stop.
    Shutdown,
}

impl Driver {
    #[allow(clippy::too_many_arguments)]
    pub(super) fn new(
        core: Core,
        source: Arc<dyn ChainSource>,
        network: Arc<dyn Network>,
        keys: Arc<Keys>,
        timing: DriverTiming,
        events: broadcast::Sender<AgentEvent>,
        certificate: (u64, u64),
        groups: Option<mpsc::Sender<GroupInput>>,
    ) -> Self {
        let (net_tx, net_rx) = mpsc::channel(NET_EVENTS);
        let (internal_tx, internal_rx) = mpsc::channel(INTERNAL);
        let now = unix_now();
        Self {
            core,
            source,
            network,
            keys,
            timing,
            writers: HashMap::new(),
            tickets: HashMap::new(),
            next_ticket: 0,
            held: HashMap::new(),
            net_tx,
            net_rx,
            internal_tx,
            internal_rx,
            events,
            groups,
            refreshing: false,
            next_refresh: now.saturating_add(timing.refresh.as_secs().max(1)),
            renewing: false,
            renew_at: credentials::renew_at(certificate.0, certificate.1, now),
        }
    }

    /// Runs until [`AgentCommand::Shutdown`] or until every command sender is gone.
    pub(super) async fn run(
        mut self,
        mut commands: mpsc::Receiver<AgentCommand>,
        started: AgentEvent,
    ) {
        self.publish(started);
        self.core.start(unix_now());
        self.run_actions();
        loop {
            let sleep = tokio::time::sleep(self.until_next_deadline());
            tokio::select! {
                command = commands.recv() => match command {
                    Some(AgentCommand::Control(request)) => self.control(request),
                    Some(AgentCommand::Shutdown) | None => break,
                },
                Some(event) = self.net_rx.recv() => self.net_event(event),
                Some(internal) = self.internal_rx.recv() => self.internal(internal),
                _ = sleep => {}
            }
            // Whatever woke the loop, what is due runs: a steady stream of events would
            // otherwise keep re-arming the sleep and starve the timers.
            if self.next_deadline() <= unix_now() {
                self.timers();
            }
            self.run_actions();
        }
        // Dropping the writers closes every stream (after what was queued) and its circuit.
        self.writers.clear();
    }

    /// The earliest of the core's timeout, the refresh and the renewal (unix seconds).
    fn next_deadline(&self) -> u64 {
        [
            self.core.poll_timeout(),
            (!self.refreshing).then_some(self.next_refresh),
            (!self.renewing).then_some(self.renew_at),
        ]
        .into_iter()
        .flatten()
        .min()
        .unwrap_or(u64::MAX)
    }

    fn until_next_deadline(&self) -> Duration {
        until(self.next_deadline(), Duration::from_millis(20))
    }

    fn timers(&mut self) {
        let now = unix_now();
        self.core.handle_timeout(now);
        if now >= self.next_refresh && !self.refreshing {
            self.refresh(now);
        }
        if now >= self.renew_at && !self.renewing {
            self.renew();
        }
    }

    /// Runs the core's actions until it has none (running one may produce more).
    fn run_actions(&mut self) {
        loop {
            let actions = self.core.take_actions();
            if actions.is_empty() {
                return;
            }
            for action in actions {
                self.run_action(action);
            }
        }
    }

    fn run_action(&mut self, action: Action) {
        match action {
            Action::Open(request) => self.network.open(request, self.net_tx.clone()),
            Action::Write(transmit) => self.write(transmit.stream, transmit.bytes),
            Action::Close(stream) => {
                self.writers.remove(&stream);
                self.held.remove(&stream);
            }
            Action::Reply { ticket, response } => {
                if let Some(reply) = self.tickets.remove(&ticket) {
                    let _ = reply.send(response);
                }
            }
            Action::Event(event) => self.publish(event),
            Action::GroupPacket { from, bytes } => {
                let dropped = match &self.groups {
                    Some(groups) => groups
                        .try_send(GroupInput::Packet { from, bytes })
                        .err()
                        .map(|_| "the groups task is backlogged"),
                    None => Some("this agent runs without groups"),
                };
                if let Some(why) = dropped {
                    self.publish(AgentEvent::Warning {
                        message: format!("a group packet from {} dropped: {why}", hex0x(&from)),
                    });
                }
            }
        }
    }

    fn publish(&self, event: AgentEvent) {
        // No subscriber is fine: events are reports, not requests.
        let _ = self.events.send(event);
    }

    fn write(&mut self, stream: StreamHandle, bytes: Vec<u8>) {
        let Some(writer) = self.writers.get(&stream) else {
            return;
        };
        match writer.try_send(bytes) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(_)) => {
                // Sends are checked for room first; a full queue here means the circuit
                // stalled: the stream is given up rather than queueing without bound.
                self.writers.remove(&stream);
                self.core.stream_closed(
                    unix_now(),
                    stream,
                    "its write queue is full (stalled circuit)",
                );
            }
            Err(mpsc::error::TrySendError::Closed(_)) => {}
        }
    }

    fn control(&mut self, ControlRequest { request, reply }: ControlRequest) {
        self.next_ticket += 1;
        let ticket = Ticket(self.next_ticket);
        self.tickets.insert(ticket, reply);
        let now = unix_now();
        let command = match request {
            Request::Status => Command::Status,
            Request::Requests => Command::Requests,
            Request::Accept { request } => Command::Accept(request),
            Request::Decline { request } => Command::Decline(request),
            Request::Inbox { wait_secs, max } => Command::Inbox { wait_secs, max },
            Request::Close { channel } => Command::Close(channel),
            Request::Lookup { peer } => return self.resolve(ticket, peer, Then::Lookup),
            Request::Group { request } => {
                if let Some(reply) = self.tickets.remove(&ticket) {
                    self.group_request(request, reply);
                }
                return;
            }
            Request::Send {
                to,
                text,
                hex,
                presence_node,
            } => {
                let then = message_bytes(text, hex).and_then(|bytes| {
                    let presence_node = presence_node_key(presence_node.as_deref())?;
                    Ok(Then::Send {
                        bytes,
                        presence_node,
                    })
                });
                return match then {
                    Ok(then) => self.resolve(ticket, to, then),
                    Err(e) => self.answer(ticket, Err(e)),
                };
            }
        };
        self.core.command(now, ticket, command);
    }

    /// Hands a `group` request to the groups task, which answers it.
    fn group_request(&mut self, request: GroupRequest, reply: oneshot::Sender<Response>) {
        let Some(groups) = &self.groups else {
            let _ = reply.send(Err(MessagingError::from(GroupError::Disabled)).into());
            return;
        };
        if let Err(e) = groups.try_send(GroupInput::Request { request, reply }) {
            let busy = MessagingError::TooMany {
                what: "queued group requests",
                max: super::groups::GROUP_INPUTS,
            };
            let reply = match e {
                mpsc::error::TrySendError::Full(GroupInput::Request { reply, .. })
                | mpsc::error::TrySendError::Closed(GroupInput::Request { reply, .. }) => reply,
                _ => return,
            };
            let _ = reply.send(Err(busy).into());
        }
    }

    fn answer(&mut self, ticket: Ticket, result: Result<super::protocol::Reply, MessagingError>) {
        if let Some(reply) = self.tickets.remove(&ticket) {
            let _ = reply.send(result.into());
        }
    }

    fn resolve(&mut self, ticket: Ticket, who: String, then: Then) {
        let source = self.source.clone();
        let tx = self.internal_tx.clone();
        tokio::spawn(async move {
            let result = source.resolve(who).await;
            let _ = tx
                .send(Internal::Resolved {
                    ticket,
                    then,
                    result,
                })
                .await;
        });
    }

    fn resolved(&mut self, ticket: Ticket, then: Then, result: Result<Peer, MessagingError>) {
        let now = unix_now();
        let peer = match result {
            Ok(peer) => peer,
            Err(e) => return self.answer(ticket, Err(e)),
        };
        // The look-up's checks ask about the peer: its status is cached now.
        self.core
            .chain_mut()
            .registry
            .insert(peer.key, peer.status, now);
        if !matches!(peer.status, IdentityStatus::Active(_)) {
            let error = MessagingError::NotLive {
                peer: peer.id,
                status: describe_status(peer.status).into(),
            };
            return self.answer(ticket, Err(error));
        }
        let command = match then {
            Then::Lookup => Command::Lookup { peer: peer.key },
            Then::Send {
                bytes,
                presence_node,
            } => {
                if let Some((channel, stream)) = self.core.channel_to(&peer.key) {
                    let room = self.writers.get(&stream).map(|w| w.capacity()).unwrap_or(0);
                    let needed = self.core.frames_for(bytes.len());
                    if room < needed {
                        let error = MessagingError::Backlogged {
                            channel,
                            room,
                            needed,
                        };
                        return self.answer(ticket, Err(error));
                    }
                }
                Command::Send {
                    peer: peer.key,
                    bytes,
                    presence_node,
                }
            }
        };
        self.core.command(now, ticket, command);
    }

    fn net_event(&mut self, event: NetEvent) {
        let now = unix_now();
        match event {
            NetEvent::Opened { stream, writer } => {
                if self.core.stream_opened(now, stream) {
                    self.writers.insert(stream, writer);
                }
            }
            NetEvent::OpenFailed { stream, reason } => {
                self.core.stream_failed(now, stream, &reason)
            }
            NetEvent::Data { stream, bytes } => {
                let missing = self.core.keys_to_fetch(now, stream, &bytes);
                let held = self.held.contains_key(&stream);
                if !missing.is_empty() {
                    self.held.entry(stream).or_default().fetches += 1;
                    self.fetch_statuses(stream, missing);
                }
                match self.held.get_mut(&stream) {
                    Some(held) => held.events.push_back(NetEvent::Data { stream, bytes }),
                    None => {
                        debug_assert!(!held);
                        self.core.stream_data(now, stream, &bytes);
                    }
                }
            }
            NetEvent::Closed { stream, reason } => match self.held.get_mut(&stream) {
                Some(held) => held.events.push_back(NetEvent::Closed { stream, reason }),
                None => {
                    self.writers.remove(&stream);
                    self.core.stream_closed(now, stream, &reason);
                }
            },
        }
    }

    fn fetch_statuses(&self, stream: StreamHandle, keys: Vec<[u8; 32]>) {
        let source = self.source.clone();
        let tx = self.internal_tx.clone();
        tokio::spawn(async move {
            let result = source.statuses(keys).await;
            let _ = tx.send(Internal::Statuses { stream, result }).await;
        });
    }

    fn internal(&mut self, internal: Internal) {
        let now = unix_now();
        match internal {
            Internal::Resolved {
                ticket,
                then,
                result,
            } => self.resolved(ticket, then, result),
            Internal::Statuses { stream, result } => {
                match result {
                    Ok(statuses) => self.cache(statuses, now),
                    Err(e) => self.publish(AgentEvent::Warning {
                        message: format!("identity statuses for an introduction: {e}"),
                    }),
                }
                self.release(stream, now);
            }
            Internal::Refreshed(result) => {
                self.refreshing = false;
                self.next_refresh = now.saturating_add(self.timing.refresh.as_secs().max(1));
                match result {
                    Ok((snapshot, statuses)) => {
                        self.core.chain_mut().authorities = snapshot.authorities;
                        self.core
                            .set_nodes(snapshot.nodes.iter().map(|n| n.key()).collect());
                        self.network.set_nodes(snapshot.nodes);
                        self.cache(statuses, now);
                    }
                    Err(e) => self.publish(AgentEvent::Warning {
                        message: format!("chain refresh: {e}"),
                    }),
                }
            }
            Internal::Renewed(result) => {
                self.renewing = false;
                match result {
                    Ok(cert) => {
                        let identity = credentials::identity(&self.keys, cert.bytes);
                        self.core.renew_certificate(now, identity, cert.not_after);
                        self.renew_at = credentials::renew_at(cert.not_before, cert.not_after, now);
                    }
                    Err(e) => {
                        self.renew_at = now.saturating_add(RENEW_RETRY_SECS);
                        self.publish(AgentEvent::Warning {
                            message: format!(
                                "certificate renewal (retried in {RENEW_RETRY_SECS} s): {e}"
                            ),
                        });
                    }
                }
            }
        }
    }

    fn cache(&mut self, statuses: Statuses, now: u64) {
        let registry = &mut self.core.chain_mut().registry;
        for (key, status) in statuses {
            registry.insert(key, status, now);
        }
    }

    /// A held stream's fetch finished; when none is left, its events run in order.
    fn release(&mut self, stream: StreamHandle, now: u64) {
        let Some(held) = self.held.get_mut(&stream) else {
            return;
        };
        held.fetches = held.fetches.saturating_sub(1);
        if held.fetches > 0 {
            return;
        }
        let Some(held) = self.held.remove(&stream) else {
            return;
        };
        for event in held.events {
            match event {
                NetEvent::Data { stream, bytes } => self.core.stream_data(now, stream, &bytes),
                NetEvent::Closed { stream, reason } => {
                    self.writers.remove(&stream);
                    self.core.stream_closed(now, stream, &reason);
                }
                NetEvent::Opened { .. } | NetEvent::OpenFailed { .. } => {}
            }
        }
    }

    fn refresh(&mut self, now: u64) {
        self.refreshing = true;
        let stale = self
            .core
            .chain()
            .registry
            .stale(now, self.timing.status_max_age);
        let source = self.source.clone();
        let tx = self.internal_tx.clone();
        tokio::spawn(async move {
            let result = async {
                let snapshot = source.snapshot().await?;
                let statuses = source.statuses(stale).await?;
                Ok((snapshot, statuses))
            }
            .await;
            let _ = tx.send(Internal::Refreshed(result)).await;
        });
    }

    fn renew(&mut self) {
        self.renewing = true;
        let source = self.source.clone();
        let tx = self.internal_tx.clone();
        tokio::spawn(async move {
            let result = source.certificate().await;
            let _ = tx.send(Internal::Renewed(result)).await;
        });
    }
}

/// How long from now until `deadline` (unix seconds), at least `floor`: deadlines are whole
/// seconds, and one already due must not make a loop spin.
pub(super) fn until(deadline: u64, floor: Duration) -> Duration {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    Duration::from_secs(deadline).saturating_sub(now).max(floor)
}
