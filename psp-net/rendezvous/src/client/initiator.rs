//! # Initiator: Alice reaching Bob through one of his presence points
//!
//! One attempt, two streams the driver opened: one to a rendezvous node of Alice's choice
//! (its `rendezvous` service) and one to the presence node of Bob's record (its `presence`
//! service). The steps, each with its own deadline ([`InitiatorConfig`]):
//!
//! 1. **Establishing**: [`Initiator::new`] draws the cookie and the handshake key, seals the
//!    introduction to Bob's announcement key, and returns `Establish` for the rendezvous
//!    stream.
//! 2. **Awaiting the answer**: on `Established` the introduction goes to the presence
//!    stream (`Introduce`). The presence node answers `IntroAccepted`, `IntroDeclined` or
//!    `IntroRefused`.
//! 3. **Awaiting the join**: after the acceptance the presence stream is closed; Bob joins
//!    at the rendezvous node, which hands us his reply (`Joined`).
//! 4. On `Joined` (which may overtake the acceptance: the two travel on different circuits)
//!    the handshake is finished: the finish goes out as the first `Relay`, and a [`Session`]
//!    is handed over. If the acceptance had not arrived yet, the presence stream is closed
//!    anyway; the presence node then withdraws the introduction, which only costs Bob's
//!    point a slot of its cap back.
//!
//! Declined, refused, timed out or failed, the attempt ends with one event and closes both
//! streams. To try another presence point, build another initiator.

use std::sync::Arc;

use super::error::ClientError;
use super::output::{Output, Transmit};
use super::session::{Session, SessionEvent};
use super::Identity;
use crate::channel::ChannelConfig;
use crate::handshake::InitiatorHandshake;
use crate::ids::{Cookie, StreamHandle};
use crate::intro::Introduction;
use crate::record::VerifiedPresence;
use crate::wire::{Deframer, IntroRefusal, PresenceMsg, RendezvousMsg, WireError};

/// Deadlines and bounds of an initiator.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct InitiatorConfig {
    /// From `Establish` to `Established`. Default 30 s: one round trip on a built circuit.
    pub establish_timeout_secs: u64,
    /// From `Introduce` to the presence node's answer. Default 75 s: the presence node
    /// itself answers `IntroRefused(TimedOut)` after 60 s (its default), so this only fires
    /// for a node that stays silent.
    pub answer_timeout_secs: u64,
    /// From the acceptance to `Joined`. Default 60 s: Bob builds a circuit to the rendezvous
    /// node; the node's cookie lifetime (120 s from `Establish`) bounds it too.
    pub join_timeout_secs: u64,
    /// Frame and message bounds of the session.
    pub channel: ChannelConfig,
}

impl Default for InitiatorConfig {
    fn default() -> Self {
        Self {
            establish_timeout_secs: 30,
            answer_timeout_secs: 75,
            join_timeout_secs: 60,
            channel: ChannelConfig::default(),
        }
    }
}

/// The two streams of an attempt, as the driver named them. They must differ.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct InitiatorStreams {
    /// To the chosen rendezvous node's `rendezvous` service.
    pub rendezvous: StreamHandle,
    /// To the record's presence node's `presence` service.
    pub presence: StreamHandle,
}

/// What an initiator's input produced.
#[derive(Debug)]
#[non_exhaustive]
pub enum InitiatorEvent {
    /// The rendezvous point waits and the introduction was sent.
    Introduced,
    /// Bob accepted; his join is awaited.
    Accepted,
    /// Bob declined. Last event.
    Declined,
    /// The presence node refused to forward or answer (cap reached, rate limited, Bob gone
    /// or silent). Last event.
    Refused(IntroRefusal),
    /// Bob proved his identity: the session, which owns the rendezvous stream from now on.
    /// Last event of the initiator.
    Established(Session),
    /// What the new session made of bytes that arrived with Bob's reply.
    Session(SessionEvent),
    /// The attempt failed; the error says why. Last event.
    Failed(ClientError),
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Step {
    Establishing,
    AwaitingAnswer,
    AwaitingJoin,
    Ended,
}

impl Step {
    fn name(self) -> &'static str {
        match self {
            Self::Establishing => "establishing the rendezvous point",
            Self::AwaitingAnswer => "awaiting the answer to the introduction",
            Self::AwaitingJoin => "awaiting the join",
            Self::Ended => "ended",
        }
    }
}

/// Alice's attempt to open a session with the owner of one presence record.
pub struct Initiator {
    identity: Arc<Identity>,
    streams: InitiatorStreams,
    target: [u8; 32],
    step: Step,
    deadline: u64,
    config: InitiatorConfig,
    /// Taken when Bob's reply arrives.
    handshake: Option<InitiatorHandshake>,
    /// The `Introduce` frame, taken when the rendezvous point is established.
    introduce: Option<Vec<u8>>,
    presence_open: bool,
    rendezvous_deframer: Deframer,
    presence_deframer: Deframer,
}

impl core::fmt::Debug for Initiator {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Initiator")
            .field("streams", &self.streams)
            .field("step", &self.step)
            .field("deadline", &self.deadline)
            .finish_non_exhaustive()
    }
}

/// Bob's checked records in the order to try them: unexpired, most recently issued first
/// (a looker prefers the most recent records and can try several).
pub fn preferred_presence(records: &[VerifiedPresence], now: u64) -> Vec<&VerifiedPresence> {
    let mut live: Vec<&VerifiedPresence> = records.iter().filter(|r| r.expires_at > now).collect();
    live.sort_by_key(|r| core::cmp::Reverse((r.issued_at, r.expires_at)));
    live
}

impl Initiator {
    /// Starts an attempt by `identity` to reach the owner of `target` (a record checked with
    /// [`verify_presence_record`](crate::record::verify_presence_record)) through the
    /// rendezvous node `rendezvous_node` (its node identity, named in the introduction).
    /// Returns the initiator and the `Establish` for the rendezvous stream.
    pub fn new(
        identity: Arc<Identity>,
        target: &VerifiedPresence,
        rendezvous_node: [u8; 32],
        streams: InitiatorStreams,
        now: u64,
        rng: &mut dyn rand_core::CryptoRngCore,
        config: InitiatorConfig,
    ) -> Result<(Self, Transmit), ClientError> {
        if target.expires_at <= now {
            return Err(ClientError::PresenceExpired {
                expires_at: target.expires_at,
                now,
            });
        }
        let cookie = Cookie::random(rng);
        let handshake = InitiatorHandshake::new(identity.id(), target.owner, cookie, rng);
        let sealed = Introduction::new(
            identity.id(),
            identity.certificate().to_vec(),
            rendezvous_node,
            cookie,
            handshake.handshake_key(),
            now,
            rng,
        )
        .seal(identity.key(), &target.owner, &target.announcement_key, rng)?;
        let introduce = PresenceMsg::Introduce {
            target: target.owner,
            sealed,
        };
        let initiator = Self {
            identity,
            streams,
            target: target.owner,
            step: Step::Establishing,
            deadline: now.saturating_add(config.establish_timeout_secs),
            config,
            handshake: Some(handshake),
            introduce: Some(introduce.encode()),
            presence_open: true,
            rendezvous_deframer: Deframer::default(),
            presence_deframer: Deframer::default(),
        };
        let establish = Transmit {
            stream: streams.rendezvous,
            bytes: RendezvousMsg::Establish(cookie).encode(),
        };
        Ok((initiator, establish))
    }

    /// The two streams.
    pub fn streams(&self) -> InitiatorStreams {
        self.streams
    }

    /// The identity being reached.
    pub fn target(&self) -> &[u8; 32] {
        &self.target
    }

    /// Whether the attempt ended (established, declined, refused or failed).
    pub fn is_closed(&self) -> bool {
        self.step == Step::Ended
    }

    /// When [`Self::handle_timeout`] must run next: the current step's deadline.
    pub fn poll_timeout(&self) -> Option<u64> {
        (!self.is_closed()).then_some(self.deadline)
    }

    /// Ends the attempt if the current step's deadline passed.
    pub fn handle_timeout(&mut self, now: u64) -> Output<InitiatorEvent> {
        let mut out = Output::default();
        if !self.is_closed() && now >= self.deadline {
            self.fail_timed_out(&mut out);
        }
        out
    }

    /// One of the two streams closed.
    pub fn handle_stream_closed(&mut self, stream: StreamHandle) -> Output<InitiatorEvent> {
        let mut out = Output::default();
        if self.is_closed() {
            return out;
        }
        if stream == self.streams.rendezvous {
            let state = self.step.name();
            self.fail(
                &mut out,
                ClientError::StreamClosed {
                    service: "rendezvous",
                    state,
                },
            );
        } else if stream == self.streams.presence {
            self.presence_open = false;
            // Once accepted, the presence stream is not needed any more.
            if self.step != Step::AwaitingJoin {
                let state = self.step.name();
                self.fail(
                    &mut out,
                    ClientError::StreamClosed {
                        service: "presence",
                        state,
                    },
                );
            }
        }
        out
    }

    /// Bytes arrived on one of the two streams. Past the step's deadline they are not read:
    /// the attempt times out.
    pub fn handle_data(
        &mut self,
        now: u64,
        stream: StreamHandle,
        bytes: &[u8],
    ) -> Output<InitiatorEvent> {
        let mut out = Output::default();
        if self.is_closed() {
            return out;
        }
        if now >= self.deadline {
            self.fail_timed_out(&mut out);
        } else if stream == self.streams.rendezvous {
            self.rendezvous_data(now, bytes, &mut out);
        } else if stream == self.streams.presence {
            self.presence_data(now, bytes, &mut out);
        } else {
            let error = ClientError::UnknownStream {
                stream,
                machine: "initiator",
            };
            self.fail(&mut out, error);
        }
        out
    }

    fn rendezvous_data(&mut self, now: u64, bytes: &[u8], out: &mut Output<InitiatorEvent>) {
        let bodies = match self.rendezvous_deframer.feed(bytes) {
            Ok(bodies) => bodies,
            Err(source) => return self.fail_malformed(out, "rendezvous", source),
        };
        let mut bodies = bodies.into_iter();
        while let Some(body) = bodies.next() {
            let msg = match RendezvousMsg::decode(&body) {
                Ok(msg) => msg,
                Err(source) => return self.fail_malformed(out, "rendezvous", source),
            };
            match (self.step, msg) {
                (Step::Establishing, RendezvousMsg::Established) => {
                    self.step = Step::AwaitingAnswer;
                    self.deadline = now.saturating_add(self.config.answer_timeout_secs);
                    if let Some(introduce) = self.introduce.take() {
                        out.send(self.streams.presence, introduce);
                    }
                    out.emit(InitiatorEvent::Introduced);
                }
                (Step::AwaitingAnswer | Step::AwaitingJoin, RendezvousMsg::Joined { reply }) => {
                    return self.finish(reply.as_slice(), bodies.collect(), out);
                }
                (_, RendezvousMsg::Refused(reason)) => {
                    return self.fail(out, ClientError::RendezvousRefused(reason));
                }
                (step, msg) => return self.fail_unexpected(out, "rendezvous", msg.name(), step),
            }
        }
    }

    fn presence_data(&mut self, now: u64, bytes: &[u8], out: &mut Output<InitiatorEvent>) {
        let bodies = match self.presence_deframer.feed(bytes) {
            Ok(bodies) => bodies,
            Err(source) => return self.fail_malformed(out, "presence", source),
        };
        for body in bodies {
            let msg = match PresenceMsg::decode(&body) {
                Ok(msg) => msg,
                Err(source) => return self.fail_malformed(out, "presence", source),
            };
            match (self.step, msg) {
                (Step::AwaitingAnswer, PresenceMsg::IntroAccepted) => {
                    self.step = Step::AwaitingJoin;
                    self.deadline = now.saturating_add(self.config.join_timeout_secs);
                    self.presence_open = false;
                    out.close(self.streams.presence);
                    out.emit(InitiatorEvent::Accepted);
                }
                (Step::AwaitingAnswer, PresenceMsg::IntroDeclined) => {
                    return self.end(out, InitiatorEvent::Declined);
                }
                (Step::AwaitingAnswer, PresenceMsg::IntroRefused(reason)) => {
                    return self.end(out, InitiatorEvent::Refused(reason));
                }
                (step, msg) => return self.fail_unexpected(out, "presence", msg.name(), step),
            }
        }
    }

    /// Bob's reply arrived: check it, send the finish, hand over the session.
    fn finish(&mut self, reply: &[u8], rest: Vec<Vec<u8>>, out: &mut Output<InitiatorEvent>) {
        let Some(handshake) = self.handshake.take() else {
            return self.fail_unexpected(out, "rendezvous", "Joined", self.step);
        };
        let (finish, channel) =
            match handshake.finish(self.identity.key(), reply, self.config.channel) {
                Ok(done) => done,
                Err(e) => return self.fail(out, e.into()),
            };
        let relay = match RendezvousMsg::relay(finish) {
            Ok(relay) => relay,
            Err(source) => return self.fail_malformed(out, "rendezvous", source),
        };
        out.send(self.streams.rendezvous, relay.encode());
        self.step = Step::Ended;
        if self.presence_open {
            self.presence_open = false;
            out.close(self.streams.presence);
        }
        let deframer = std::mem::take(&mut self.rendezvous_deframer);
        let (session, session_out) =
            Session::start(self.streams.rendezvous, channel, deframer, rest);
        out.emit(InitiatorEvent::Established(session));
        out.absorb(session_out, InitiatorEvent::Session);
    }

    /// Ends the attempt with `event`, closing both streams.
    fn end(&mut self, out: &mut Output<InitiatorEvent>, event: InitiatorEvent) {
        self.step = Step::Ended;
        out.close(self.streams.rendezvous);
        if self.presence_open {
            self.presence_open = false;
            out.close(self.streams.presence);
        }
        out.emit(event);
    }

    fn fail(&mut self, out: &mut Output<InitiatorEvent>, error: ClientError) {
        self.end(out, InitiatorEvent::Failed(error));
    }

    fn fail_timed_out(&mut self, out: &mut Output<InitiatorEvent>) {
        let error = ClientError::TimedOut {
            step: self.step.name(),
            deadline: self.deadline,
        };
        self.fail(out, error);
    }

    fn fail_malformed(
        &mut self,
        out: &mut Output<InitiatorEvent>,
        service: &'static str,
        source: WireError,
    ) {
        self.fail(out, ClientError::Malformed { service, source });
    }

    fn fail_unexpected(
        &mut self,
        out: &mut Output<InitiatorEvent>,
        service: &'static str,
        message: &'static str,
        step: Step,
    ) {
        let state = step.name();
        self.fail(
            out,
            ClientError::Unexpected {
                service,
                message,
                state,
            },
        );
    }
}
