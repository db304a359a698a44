//! The rendezvous node's `rendezvous` service, sans IO.
//!
//! Alice's stream establishes a one-time cookie; Bob's stream joins with it, which consumes
//! the cookie, links the two streams, hands Bob's handshake reply to Alice (`Joined`) and
//! tells Bob (`Linked`). From then on every `Relay` from one side goes to the other, unread:
//! the node sees a cookie and opaque bytes, never an identity. A side closing closes the
//! other; waiting cookies expire, idle links are closed.
//!
//! Driving it: feed every stream's bytes to [`Rendezvous::handle_data`], report closed
//! streams with [`Rendezvous::handle_stream_closed`], call [`Rendezvous::handle_timeout`] at
//! [`Rendezvous::poll_timeout`], and after every call run the actions from
//! [`Rendezvous::poll_action`] in order.

use std::collections::{HashMap, VecDeque};

use crate::deadlines::Deadlines;
use crate::ids::{Cookie, StreamHandle};
use crate::service::{dispatch, DeframedStreams};
use crate::wire::{
    Deframer, HandshakeBytes, RelayPayload, RendezvousMsg, RendezvousRefusal, WireError,
};

/// Limits of the rendezvous service. Every table is bounded by one of these.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RendezvousConfig {
    /// Cookies waiting for a join. Default 4 096.
    pub max_waiting: usize,
    /// Linked pairs of streams. Default 4 096.
    pub max_links: usize,
    /// Streams tracked at once: waiting, linked (two per link), and streams that have not
    /// said what they are. Default 16 384 (4 096 + 2 × 4 096 + 4 096); each holds at most
    /// one incomplete 8 KiB frame, so buffers stay under 128 MiB.
    pub max_streams: usize,
    /// How long a cookie waits for its join. Default 120 s.
    pub cookie_lifetime_secs: u64,
    /// A link with no relayed bytes for this long is closed. Default 300 s; it also ends a
    /// handshake that stopped half-way.
    pub link_idle_timeout_secs: u64,
}

impl Default for RendezvousConfig {
    fn default() -> Self {
        Self {
            max_waiting: 4_096,
            max_links: 4_096,
            max_streams: 16_384,
            cookie_lifetime_secs: 120,
            link_idle_timeout_secs: 300,
        }
    }
}

/// What the driver must do, in order.
#[derive(Clone, PartialEq, Eq, Debug)]
#[non_exhaustive]
pub enum Action {
    /// Write these bytes (one or more whole frames) on the stream.
    Send {
        /// The stream.
        stream: StreamHandle,
        /// The bytes.
        bytes: Vec<u8>,
    },
    /// Close the stream (after sending what was queued for it). The service has forgotten it.
    Close {
        /// The stream.
        stream: StreamHandle,
    },
}

/// Why an input was refused. The actions queued say what the peer is told and whether its
/// stream is closed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RendezvousError {
    /// The bytes are not a rendezvous message; the stream was closed.
    #[error("malformed rendezvous message: {0}")]
    Malformed(#[from] WireError),
    /// A message this stream may not send in its state; the stream was closed.
    #[error("unexpected {message} on a {role} stream")]
    UnexpectedMessage {
        /// The message's name.
        message: &'static str,
        /// `new`, `waiting` or `linked`.
        role: &'static str,
    },
    /// The service tracks as many streams as it allows; the new one was closed.
    #[error("too many streams (limit {max})")]
    TooManyStreams {
        /// The bound.
        max: usize,
    },
    /// `Establish` with a cookie already waiting; refused, the stream stays open.
    #[error("cookie already established here")]
    DuplicateCookie,
    /// `Join` with a cookie not waiting here; refused and the stream closed.
    #[error("join with an unknown or used cookie")]
    UnknownCookie,
    /// As many cookies wait as allowed; refused, the stream stays open.
    #[error("waiting cookies full (limit {max})")]
    WaitingFull {
        /// The bound.
        max: usize,
    },
    /// As many links as allowed; the join was refused, the stream closed, the cookie still
    /// waits.
    #[error("links full (limit {max})")]
    LinksFull {
        /// The bound.
        max: usize,
    },
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Role {
    New,
    Waiting(Cookie),
    Linked {
        peer: StreamHandle,
        /// The establishing side's handle: names the link's idle timer.
        establisher: StreamHandle,
    },
}

impl Role {
    fn name(&self) -> &'static str {
        match self {
            Self::New => "new",
            Self::Waiting(_) => "waiting",
            Self::Linked { .. } => "linked",
        }
    }
}

#[derive(Debug)]
struct StreamState {
    deframer: Deframer,
    role: Role,
}

#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
enum Timer {
    /// The cookie established by this stream expires.
    CookieExpiry(StreamHandle),
    /// The link whose establisher is this stream has been idle too long.
    LinkIdle(StreamHandle),
}

/// The rendezvous service of one node.
#[derive(Debug)]
pub struct Rendezvous {
    config: RendezvousConfig,
    streams: HashMap<StreamHandle, StreamState>,
    waiting: HashMap<Cookie, StreamHandle>,
    links: usize,
    timers: Deadlines<Timer>,
    /// Drained by the driver after every call: at most two actions per message, plus two per
    /// cookie or link a timeout ends.
    actions: VecDeque<Action>,
}

impl DeframedStreams for Rendezvous {
    fn deframer(&mut self, stream: StreamHandle) -> Option<&mut Deframer> {
        self.streams.get_mut(&stream).map(|s| &mut s.deframer)
    }

    fn is_open(&self, stream: StreamHandle) -> bool {
        self.streams.contains_key(&stream)
    }
}

impl Rendezvous {
    /// An empty service.
    pub fn new(config: RendezvousConfig) -> Self {
        Self {
            config,
            streams: HashMap::new(),
            waiting: HashMap::new(),
            links: 0,
            timers: Deadlines::default(),
            actions: VecDeque::new(),
        }
    }

    /// Cookies waiting for a join.
    pub fn waiting(&self) -> usize {
        self.waiting.len()
    }

    /// Linked pairs.
    pub fn links(&self) -> usize {
        self.links
    }

    /// Streams tracked.
    pub fn streams(&self) -> usize {
        self.streams.len()
    }

    /// Deadlines scheduled (for metrics, and for tests that check nothing is left behind).
    pub fn timers(&self) -> usize {
        self.timers.len()
    }

    /// Bytes arrived on `stream`. `Err` says what was refused, for the log.
    pub fn handle_data(
        &mut self,
        now: u64,
        stream: StreamHandle,
        bytes: &[u8],
    ) -> Result<(), RendezvousError> {
        if !self.streams.contains_key(&stream) {
            if self.streams.len() >= self.config.max_streams {
                self.actions.push_back(Action::Close { stream });
                return Err(RendezvousError::TooManyStreams {
                    max: self.config.max_streams,
                });
            }
            self.streams.insert(
                stream,
                StreamState {
                    deframer: Deframer::default(),
                    role: Role::New,
                },
            );
        }
        dispatch(
            self,
            stream,
            bytes,
            RendezvousMsg::decode,
            |service, msg| service.handle_message(now, stream, msg),
            |service, stream| service.refuse_and_close(stream, RendezvousRefusal::Malformed),
        )
    }

    /// The stream closed. Closes its linked peer, forgets its cookie. Idempotent.
    pub fn handle_stream_closed(&mut self, stream: StreamHandle) {
        self.forget_stream(stream);
    }

    /// The earliest time [`Self::handle_timeout`] has work.
    pub fn poll_timeout(&self) -> Option<u64> {
        self.timers.next()
    }

    /// Expires waiting cookies and idle links due at `now`.
    pub fn handle_timeout(&mut self, now: u64) {
        while let Some(timer) = self.timers.pop_due(now) {
            match timer {
                Timer::CookieExpiry(stream) => {
                    self.refuse_and_close(stream, RendezvousRefusal::Expired)
                }
                Timer::LinkIdle(establisher) => self.close_stream(establisher),
            }
        }
    }

    /// The next action to run.
    pub fn poll_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }

    fn handle_message(
        &mut self,
        now: u64,
        stream: StreamHandle,
        msg: RendezvousMsg,
    ) -> Result<(), RendezvousError> {
        let role = self.streams.get(&stream).map_or(Role::New, |s| s.role);
        match (role, msg) {
            (Role::New, RendezvousMsg::Establish(cookie)) => self.establish(now, stream, cookie),
            (Role::New, RendezvousMsg::Join { cookie, reply }) => {
                self.join(now, stream, cookie, reply)
            }
            (Role::Linked { peer, establisher }, RendezvousMsg::Relay(payload)) => {
                self.relay(now, peer, establisher, payload);
                Ok(())
            }
            (role, msg) => {
                self.refuse_and_close(stream, RendezvousRefusal::Malformed);
                Err(RendezvousError::UnexpectedMessage {
                    message: msg.name(),
                    role: role.name(),
                })
            }
        }
    }

    fn establish(
        &mut self,
        now: u64,
        stream: StreamHandle,
        cookie: Cookie,
    ) -> Result<(), RendezvousError> {
        if self.waiting.contains_key(&cookie) {
            self.send(
                stream,
                &RendezvousMsg::Refused(RendezvousRefusal::DuplicateCookie),
            );
            return Err(RendezvousError::DuplicateCookie);
        }
        if self.waiting.len() >= self.config.max_waiting {
            self.send(stream, &RendezvousMsg::Refused(RendezvousRefusal::Busy));
            return Err(RendezvousError::WaitingFull {
                max: self.config.max_waiting,
            });
        }
        self.waiting.insert(cookie, stream);
        self.set_role(stream, Role::Waiting(cookie));
        let expiry = now.saturating_add(self.config.cookie_lifetime_secs);
        self.timers.set(Timer::CookieExpiry(stream), expiry);
        self.send(stream, &RendezvousMsg::Established);
        Ok(())
    }

    fn join(
        &mut self,
        now: u64,
        joiner: StreamHandle,
        cookie: Cookie,
        reply: HandshakeBytes,
    ) -> Result<(), RendezvousError> {
        let Some(&establisher) = self.waiting.get(&cookie) else {
            self.refuse_and_close(joiner, RendezvousRefusal::UnknownCookie);
            return Err(RendezvousError::UnknownCookie);
        };
        if self.links >= self.config.max_links {
            self.refuse_and_close(joiner, RendezvousRefusal::Busy);
            return Err(RendezvousError::LinksFull {
                max: self.config.max_links,
            });
        }
        self.waiting.remove(&cookie);
        self.timers.remove(Timer::CookieExpiry(establisher));
        self.set_role(
            establisher,
            Role::Linked {
                peer: joiner,
                establisher,
            },
        );
        self.set_role(
            joiner,
            Role::Linked {
                peer: establisher,
                establisher,
            },
        );
        self.links += 1;
        let idle = now.saturating_add(self.config.link_idle_timeout_secs);
        self.timers.set(Timer::LinkIdle(establisher), idle);
        self.send(establisher, &RendezvousMsg::Joined { reply });
        self.send(joiner, &RendezvousMsg::Linked);
        Ok(())
    }

    fn relay(
        &mut self,
        now: u64,
        peer: StreamHandle,
        establisher: StreamHandle,
        payload: RelayPayload,
    ) {
        let idle = now.saturating_add(self.config.link_idle_timeout_secs);
        self.timers.set(Timer::LinkIdle(establisher), idle);
        self.send(peer, &RendezvousMsg::Relay(payload));
    }

    fn set_role(&mut self, stream: StreamHandle, role: Role) {
        if let Some(state) = self.streams.get_mut(&stream) {
            state.role = role;
        }
    }

    fn refuse_and_close(&mut self, stream: StreamHandle, reason: RendezvousRefusal) {
        if self.streams.contains_key(&stream) {
            self.send(stream, &RendezvousMsg::Refused(reason));
            self.close_stream(stream);
        }
    }

    /// Closes a stream we decided to end (and its linked peer), and forgets it.
    fn close_stream(&mut self, stream: StreamHandle) {
        if self.streams.contains_key(&stream) {
            self.actions.push_back(Action::Close { stream });
            self.forget_stream(stream);
        }
    }

    fn forget_stream(&mut self, stream: StreamHandle) {
        let Some(state) = self.streams.remove(&stream) else {
            return;
        };
        match state.role {
            Role::New => {}
            Role::Waiting(cookie) => {
                self.waiting.remove(&cookie);
                self.timers.remove(Timer::CookieExpiry(stream));
            }
            Role::Linked { peer, establisher } => {
                self.links = self.links.saturating_sub(1);
                self.timers.remove(Timer::LinkIdle(establisher));
                if self.streams.remove(&peer).is_some() {
                    self.actions.push_back(Action::Close { stream: peer });
                }
            }
        }
    }

    fn send(&mut self, stream: StreamHandle, msg: &RendezvousMsg) {
        self.actions.push_back(Action::Send {
            stream,
            bytes: msg.encode(),
        });
    }
}
