//! # Responder: Bob's side of one accepted introduction
//!
//! Built from the [`VerifiedIntroduction`] that [`Announcer::accept`](super::Announcer::accept)
//! returned, on a stream the driver opened to the introduction's rendezvous node
//! (`introduction().rendezvous_node`). It answers the handshake and joins the cookie
//! (`Join`), waits for `Linked` and then the introducer's finish (the first relayed bytes),
//! checks it and hands over a [`Session`]. The whole handshake has one deadline
//! ([`ResponderConfig::handshake_timeout_secs`]).

use super::error::ClientError;
use super::output::{Output, Transmit};
use super::session::{Session, SessionEvent};
use super::Identity;
use crate::channel::ChannelConfig;
use crate::handshake::ResponderHandshake;
use crate::ids::StreamHandle;
use crate::intro::VerifiedIntroduction;
use crate::wire::{Deframer, RendezvousMsg};

/// Bounds of a responder.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct ResponderConfig {
    /// From `Join` to a checked finish. Default 60 s: one round trip through the rendezvous
    /// node, with room for a slow introducer circuit; the node's idle link timeout (300 s)
    /// would end it far later.
    pub handshake_timeout_secs: u64,
    /// Frame and message bounds of the session.
    pub channel: ChannelConfig,
}

impl Default for ResponderConfig {
    fn default() -> Self {
        Self {
            handshake_timeout_secs: 60,
            channel: ChannelConfig::default(),
        }
    }
}

/// What a responder's input produced.
#[derive(Debug)]
#[non_exhaustive]
pub enum ResponderEvent {
    /// The rendezvous node joined our stream to the introducer's.
    Linked,
    /// The introducer proved its identity: the session, which owns the stream from now on.
    /// Last event of the responder.
    Established(Session),
    /// What the new session made of bytes that arrived with the finish.
    Session(SessionEvent),
    /// The attempt ended; the error says why. Last event.
    Failed(ClientError),
}

enum State {
    AwaitingLink(ResponderHandshake),
    AwaitingFinish(ResponderHandshake),
    Ended,
}

impl State {
    fn name(&self) -> &'static str {
        match self {
            Self::AwaitingLink(_) => "awaiting the link",
            Self::AwaitingFinish(_) => "awaiting the introducer's finish",
            Self::Ended => "ended",
        }
    }
}

/// Bob joining one rendezvous point.
pub struct Responder {
    stream: StreamHandle,
    introducer: [u8; 32],
    state: State,
    deadline: u64,
    deframer: Deframer,
    channel: ChannelConfig,
}

impl core::fmt::Debug for Responder {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Responder")
            .field("stream", &self.stream)
            .field("state", &self.state.name())
            .field("deadline", &self.deadline)
            .finish_non_exhaustive()
    }
}

impl Responder {
    /// Answers `introduction` as `identity` on `stream` (to the introduction's rendezvous
    /// node): returns the responder and the `Join` to write.
    pub fn new(
        identity: &Identity,
        introduction: &VerifiedIntroduction,
        stream: StreamHandle,
        now: u64,
        rng: &mut dyn rand_core::CryptoRngCore,
        config: ResponderConfig,
    ) -> Result<(Self, Transmit), ClientError> {
        let (reply, handshake) = ResponderHandshake::respond(identity.key(), introduction, rng)?;
        let join = RendezvousMsg::Join {
            cookie: introduction.introduction().cookie,
            reply,
        };
        let responder = Self {
            stream,
            introducer: *introduction.introducer(),
            state: State::AwaitingLink(handshake),
            deadline: now.saturating_add(config.handshake_timeout_secs),
            deframer: Deframer::default(),
            channel: config.channel,
        };
        let transmit = Transmit {
            stream,
            bytes: join.encode(),
        };
        Ok((responder, transmit))
    }

    /// The rendezvous stream.
    pub fn stream(&self) -> StreamHandle {
        self.stream
    }

    /// Who asked (the introducer's identity, from the checked introduction; the handshake
    /// proves it again).
    pub fn introducer(&self) -> &[u8; 32] {
        &self.introducer
    }

    /// Whether the responder ended (established or failed).
    pub fn is_closed(&self) -> bool {
        matches!(self.state, State::Ended)
    }

    /// When [`Self::handle_timeout`] must run next.
    pub fn poll_timeout(&self) -> Option<u64> {
        (!self.is_closed()).then_some(self.deadline)
    }

    /// Ends the attempt if its deadline passed.
    pub fn handle_timeout(&mut self, now: u64) -> Output<ResponderEvent> {
        let mut out = Output::default();
        if !self.is_closed() && now >= self.deadline {
            self.fail_timed_out(&mut out);
        }
        out
    }

    /// The rendezvous stream closed.
    pub fn handle_stream_closed(&mut self) -> Output<ResponderEvent> {
        let mut out = Output::default();
        if !self.is_closed() {
            let state = self.state.name();
            self.state = State::Ended;
            out.emit(ResponderEvent::Failed(ClientError::StreamClosed {
                service: "rendezvous",
                state,
            }));
        }
        out
    }

    /// Bytes arrived on the rendezvous stream. Past the deadline they are not read: the
    /// attempt times out.
    pub fn handle_data(&mut self, now: u64, bytes: &[u8]) -> Output<ResponderEvent> {
        let mut out = Output::default();
        if self.is_closed() {
            return out;
        }
        if now >= self.deadline {
            self.fail_timed_out(&mut out);
            return out;
        }
        let bodies = match self.deframer.feed(bytes) {
            Ok(bodies) => bodies,
            Err(source) => {
                let service = "rendezvous";
                self.fail(&mut out, ClientError::Malformed { service, source });
                return out;
            }
        };
        let mut bodies = bodies.into_iter();
        while let Some(body) = bodies.next() {
            let msg = match RendezvousMsg::decode(&body) {
                Ok(msg) => msg,
                Err(source) => {
                    let service = "rendezvous";
                    self.fail(&mut out, ClientError::Malformed { service, source });
                    return out;
                }
            };
            let state = std::mem::replace(&mut self.state, State::Ended);
            match (state, msg) {
                (State::AwaitingLink(handshake), RendezvousMsg::Linked) => {
                    self.state = State::AwaitingFinish(handshake);
                    out.emit(ResponderEvent::Linked);
                }
                (State::AwaitingFinish(handshake), RendezvousMsg::Relay(finish)) => {
                    match handshake.finish(finish.as_slice(), self.channel) {
                        Ok(channel) => {
                            let deframer = std::mem::take(&mut self.deframer);
                            let rest = bodies.collect();
                            let (session, session_out) =
                                Session::start(self.stream, channel, deframer, rest);
                            out.emit(ResponderEvent::Established(session));
                            out.absorb(session_out, ResponderEvent::Session);
                        }
                        Err(e) => self.fail(&mut out, e.into()),
                    }
                    return out;
                }
                (_, RendezvousMsg::Refused(reason)) => {
                    self.fail(&mut out, ClientError::RendezvousRefused(reason));
                    return out;
                }
                (state, msg) => {
                    let error = ClientError::Unexpected {
                        service: "rendezvous",
                        message: msg.name(),
                        state: state.name(),
                    };
                    self.fail(&mut out, error);
                    return out;
                }
            }
        }
        out
    }

    fn fail_timed_out(&mut self, out: &mut Output<ResponderEvent>) {
        let error = ClientError::TimedOut {
            step: self.state.name(),
            deadline: self.deadline,
        };
        self.fail(out, error);
    }

    fn fail(&mut self, out: &mut Output<ResponderEvent>, error: ClientError) {
        self.state = State::Ended;
        out.close(self.stream);
        out.emit(ResponderEvent::Failed(error));
    }
}
