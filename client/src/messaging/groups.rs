//! The agent's groups task: runs the sans-IO [`Host`] beside the loop. Group envelopes that
//! arrive on channels and `group` control requests come in from the loop; the host's
//! envelopes go out as ordinary `send`s through the loop (each to a member's identity key,
//! opening a channel if there is none), and how each send ended goes back to the host for
//! re-delivery. State changes are sealed to disk ([`Store`]) as they happen; at start every
//! saved group is restored. An introduction from a member of a group held here is accepted
//! at once (group traffic needs channels between members); anyone else's waits for the user
//! (or `--accept-all`), contact-only mode still applying first.

use std::time::Duration;

use psp_net::driver::unix_now;
use tokio::sync::{broadcast, mpsc, oneshot};
use tokio::task::JoinSet;

use super::control::ControlRequest;
use super::driver::{until, AgentCommand};
use super::error::MessagingError;
use super::events::AgentEvent;
use super::protocol::{Reply, Request, Response};
use crate::groups::host::{Changed, Host, Outgoing};
use crate::groups::protocol::{GroupReply, GroupRequest};
use crate::groups::store::Store;
use crate::hex0x;

/// Inputs queued for the groups task.
pub(super) const GROUP_INPUTS: usize = 256;
/// Sends in flight at once.
const MAX_SENDS: usize = 64;
/// `read` waits at most this long.
const MAX_WAIT_SECS: u64 = 300;
/// `read`s waiting at once; past it a waiting read is refused.
const MAX_WAITERS: usize = 64;

/// What the loop hands the groups task.
#[derive(Debug)]
pub(super) enum GroupInput {
    /// A group envelope from a channel's proven peer.
    Packet {
        /// The peer.
        from: [u8; 32],
        /// The envelope.
        bytes: Vec<u8>,
    },
    /// A `group` control request and where its answer goes.
    Request {
        /// The request.
        request: GroupRequest,
        /// The control request's answer.
        reply: oneshot::Sender<Response>,
    },
}

struct Waiter {
    request: GroupRequest,
    group: String,
    deadline: u64,
    reply: oneshot::Sender<Response>,
}

/// The groups task's state.
pub(super) struct GroupsTask {
    host: Host,
    store: Store,
    agent: mpsc::Sender<AgentCommand>,
    events: broadcast::Sender<AgentEvent>,
    sends: JoinSet<(u64, Result<(), String>)>,
    queued: std::collections::VecDeque<Outgoing>,
    waiters: Vec<Waiter>,
}

impl GroupsTask {
    /// A task over `host`, restoring every group saved in `store`.
    pub(super) fn new(
        mut host: Host,
        store: Store,
        agent: mpsc::Sender<AgentCommand>,
        events: broadcast::Sender<AgentEvent>,
    ) -> Self {
        for loaded in store.load_all() {
            let result = loaded.and_then(|snapshot| host.restore(&snapshot));
            let event = match result {
                Ok(id) => AgentEvent::GroupNotice {
                    group: crate::groups::protocol::group_text(id),
                    what: "restored".into(),
                    detail: format!("from {}", store.dir().display()),
                },
                Err(e) => AgentEvent::Warning {
                    message: format!("a saved group was not restored: {e}"),
                },
            };
            let _ = events.send(event);
        }
        Self {
            host,
            store,
            agent,
            events,
            sends: JoinSet::new(),
            queued: std::collections::VecDeque::new(),
            waiters: Vec::new(),
        }
    }

    /// Runs until the loop drops its sender.
    pub(super) async fn run(mut self, mut inputs: mpsc::Receiver<GroupInput>) {
        let mut agent_events = self.events.subscribe();
        self.host.handle_timeout(unix_now());
        self.drain();
        loop {
            let sleep = tokio::time::sleep(self.until_next());
            tokio::select! {
                input = inputs.recv() => match input {
                    Some(input) => self.input(input),
                    None => break,
                },
                event = agent_events.recv() => match event {
                    Ok(AgentEvent::IntroductionReceived { request, from, .. }) => {
                        self.accept_member(request, &from);
                    }
                    Err(broadcast::error::RecvError::Closed) => break,
                    _ => {}
                },
                Some(done) = self.sends.join_next(), if !self.sends.is_empty() => {
                    if let Ok((id, result)) = done {
                        self.host.delivered(unix_now(), id, result);
                    }
                }
                _ = sleep => {}
            }
            // Whatever woke the loop, what is due runs: a steady stream of inputs would
            // otherwise keep re-arming the sleep and starve the timers.
            let now = unix_now();
            if self.host.poll_timeout().is_some_and(|t| t <= now) {
                self.host.handle_timeout(now);
            }
            self.drain();
        }
        self.sends.abort_all();
    }

    /// Accepts a pending introduction if it comes from a member of a group held here.
    fn accept_member(&mut self, request: u64, from: &str) {
        let Ok(key) = crate::parse_hex::<32>(from, "introducer") else {
            return;
        };
        if !self.host.is_member(&key) {
            return;
        }
        let agent = self.agent.clone();
        tokio::spawn(async move {
            // A request withdrawn meanwhile is answered with an error: nothing to do.
            let _ = call(&agent, Request::Accept { request }).await;
        });
    }

    fn until_next(&self) -> Duration {
        let next = self
            .host
            .poll_timeout()
            .into_iter()
            .chain(self.waiters.iter().map(|w| w.deadline))
            .min()
            .unwrap_or(unix_now().saturating_add(3_600));
        until(next, Duration::from_millis(100))
    }

    fn input(&mut self, input: GroupInput) {
        let now = unix_now();
        match input {
            GroupInput::Packet { from, bytes } => {
                // A refusal is reported as a `group-notice` event by the host.
                let _ = self.host.input(now, from, &bytes);
            }
            GroupInput::Request {
                request:
                    GroupRequest::Read {
                        group,
                        wait_secs,
                        max,
                    },
                reply,
            } if wait_secs > 0 && !self.host.has_messages(&group) => {
                if self.waiters.len() >= MAX_WAITERS {
                    let busy = MessagingError::TooMany {
                        what: "waiting group reads",
                        max: MAX_WAITERS,
                    };
                    let _ = reply.send(Err(busy).into());
                    return;
                }
                self.waiters.push(Waiter {
                    request: GroupRequest::Read {
                        group: group.clone(),
                        wait_secs: 0,
                        max,
                    },
                    group,
                    deadline: now.saturating_add(wait_secs.min(MAX_WAIT_SECS)),
                    reply,
                });
            }
            GroupInput::Request { request, reply } => {
                let result = self.host.command(now, request);
                let _ = reply.send(response(result));
            }
        }
    }

    /// Answers waiters, starts sends, publishes events, saves state.
    fn drain(&mut self) {
        let now = unix_now();
        let (ready, waiting): (Vec<Waiter>, Vec<Waiter>) = std::mem::take(&mut self.waiters)
            .into_iter()
            .partition(|w| w.deadline <= now || self.host.has_messages(&w.group));
        self.waiters = waiting;
        for w in ready {
            let result = self.host.command(now, w.request);
            let _ = w.reply.send(response(result));
        }
        self.queued.extend(self.host.take_outgoing());
        while self.sends.len() < MAX_SENDS {
            let Some(out) = self.queued.pop_front() else {
                break;
            };
            let agent = self.agent.clone();
            self.sends
                .spawn(async move { (out.id, send(agent, out).await) });
        }
        for event in self.host.take_events() {
            let _ = self.events.send(event);
        }
        for change in self.host.take_changed() {
            let result = match change {
                Changed::Saved(id, snapshot) => self.store.save(id, &snapshot),
                Changed::Removed(id) => self.store.remove(id),
            };
            if let Err(e) = result {
                let _ = self.events.send(AgentEvent::Warning {
                    message: format!("group state not saved: {e}"),
                });
            }
        }
    }
}

fn response(result: Result<GroupReply, crate::groups::GroupError>) -> Response {
    result
        .map(|reply| Reply::Group { reply })
        .map_err(MessagingError::from)
        .into()
}

/// One envelope through the loop's `send`, as a control request would.
async fn send(agent: mpsc::Sender<AgentCommand>, out: Outgoing) -> Result<(), String> {
    call(&agent, Request::send(hex0x(&out.to), out.bytes))
        .await
        .map(|_| ())
}

/// A control request through the loop, as the socket would send it; the error as text.
async fn call(agent: &mpsc::Sender<AgentCommand>, request: Request) -> Result<Reply, String> {
    let stopped = || "the agent stopped".to_owned();
    let (reply, answer) = oneshot::channel();
    agent
        .send(AgentCommand::Control(ControlRequest { request, reply }))
        .await
        .map_err(|_| stopped())?;
    match answer.await {
        Ok(Response::Ok(reply)) => Ok(reply),
        Ok(Response::Error(e)) => Err(e.message),
        Err(_) => Err(stopped()),
    }
}
