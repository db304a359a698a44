//! The presence node's `presence` service, sans IO.
//!
//! A client registers a presence point over a stream (its 3-hop circuit, or the first hop if
//! public): the node checks the certificate against the chain, the owner's signature and that
//! the record is its own to publish, then asks the driver to co-sign and publish the record
//! ([`Action::Publish`]). Keep-alives renew it; without one the registration lapses at the
//! record's expiry ([`Action::Unpublish`]), as it does when the client's stream closes.
//!
//! Introducers send sealed introductions for a registered identity over other streams. The
//! node cannot open them (it never learns who asks); it enforces the client's channel cap and
//! rate, and its own bound on pending introductions, forwards them with a fresh [`IntroId`],
//! and relays the client's answer. The client may cancel a pending introduction, which closes
//! the introducer's stream at once; unanswered introductions time out.
//!
//! Driving it: feed every stream's bytes to [`Presence::handle_data`], report closed streams
//! with [`Presence::handle_stream_closed`], call [`Presence::handle_timeout`] at
//! [`Presence::poll_timeout`], and after every call run the actions from
//! [`Presence::poll_action`] in order (a `Send` before the `Close` of the same stream).

mod error;
mod registration;

use std::collections::{BTreeSet, HashMap, VecDeque};

use psp_dht::{RecordContent, RecordKey};
use psp_onion::crypto::Sr25519Signature;
use psp_onion::registry::IdentityStatus;

pub use error::PresenceError;
use registration::{check_record, effective_limits, IntroBucket, Registration};

use crate::chain::ChainView;
use crate::deadlines::Deadlines;
use crate::ids::{IntroId, StreamHandle};
use crate::service::{dispatch, DeframedStreams};
use crate::wire::{
    ChannelLimits, Deframer, IntroRefusal, OwnerSignedRecord, PresenceMsg, Register, Registered,
    SealedIntroduction,
};

/// Limits of the presence service. Every table is bounded by one of these.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PresenceConfig {
    /// Presence points held at once (one per identity). Default 4 096.
    pub max_registrations: usize,
    /// Streams tracked at once (registered clients, introducers, streams that have not said
    /// what they are). Default 8 192; each holds at most one incomplete 8 KiB frame, so
    /// buffers stay under 64 MiB.
    pub max_streams: usize,
    /// Introductions forwarded and not answered yet, over all registrations. Default 256.
    pub max_pending_introductions: usize,
    /// How long a client has to answer an introduction. Default 60 s.
    pub introduction_timeout_secs: u64,
    /// Longest record lifetime from now: the client must keep alive within it. Default 300 s.
    pub max_record_lifetime_secs: u64,
    /// How far in the future a record's issue time may be. Default 30 s.
    pub max_clock_skew_secs: u64,
    /// Highest limits a client may ask for. Default 60 introductions a minute, bursts of
    /// 10, 64 channels per presence point.
    pub max_limits: ChannelLimits,
}

impl Default for PresenceConfig {
    fn default() -> Self {
        Self {
            max_registrations: 4_096,
            max_streams: 8_192,
            max_pending_introductions: 256,
            introduction_timeout_secs: 60,
            max_record_lifetime_secs: 300,
            max_clock_skew_secs: 30,
            max_limits: ChannelLimits {
                rate_per_minute: 60,
                burst: 10,
                cap: 64,
            },
        }
    }
}

/// Why a registration ended.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[non_exhaustive]
pub enum LapseReason {
    /// No keep-alive before the record's expiry.
    Expired,
    /// The client's stream closed.
    StreamClosed,
    /// A keep-alive was refused.
    Refused,
    /// The identity is no longer live on chain ([`Presence::recheck_identities`]).
    IdentityNotLive,
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
    /// Tear down the whole circuit the stream is on at once (DESTROY, nothing more is sent):
    /// the route of an introducer whose request was cancelled. The service has forgotten it.
    Teardown {
        /// The stream.
        stream: StreamHandle,
    },
    /// Co-sign the record with the node key (`SignedRecord::cosign(content, owner_signature,
    /// node_key)`) and publish it in the DHT, replacing an older one under the same key.
    Publish {
        /// The checked, owner-signed content (kind presence, publisher this node).
        content: RecordContent,
        /// The owner's signature over it.
        owner_signature: Sr25519Signature,
    },
    /// Stop publishing the record under this key (remove it from the local store; other DHT
    /// nodes drop it at its expiry).
    Unpublish {
        /// The record's DHT key.
        key: RecordKey,
        /// Why.
        reason: LapseReason,
    },
}

/// What a stream is to the service.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Role {
    /// Has not sent a whole message yet.
    New,
    /// A registered client.
    Owner([u8; 32]),
    /// An introducer, with its pending introduction if any.
    Introducer(Option<IntroId>),
}

impl Role {
    fn name(&self) -> &'static str {
        match self {
            Self::New => "new",
            Self::Owner(_) => "registered client",
            Self::Introducer(_) => "introducer",
        }
    }
}

#[derive(Debug)]
struct StreamState {
    deframer: Deframer,
    role: Role,
}

/// An introduction forwarded to a client and not answered yet.
#[derive(Clone, Copy, Debug)]
struct Pending {
    introducer: StreamHandle,
    owner: [u8; 32],
}

#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
enum Timer {
    RecordExpiry([u8; 32]),
    IntroductionTimeout(IntroId),
}

/// How a pending introduction ended.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Outcome {
    Accepted,
    Declined,
    Cancelled,
    TimedOut,
    TargetGone,
    IntroducerGone,
}

/// The presence service of one node.
#[derive(Debug)]
pub struct Presence {
    node_id: [u8; 32],
    config: PresenceConfig,
    streams: HashMap<StreamHandle, StreamState>,
    registrations: HashMap<[u8; 32], Registration>,
    pending: HashMap<IntroId, Pending>,
    timers: Deadlines<Timer>,
    next_intro_id: u64,
    /// Drained by the driver after every call: at most a few actions per message, plus a
    /// few per registration or introduction that a timeout or closed stream ends.
    actions: VecDeque<Action>,
}

impl DeframedStreams for Presence {
    fn deframer(&mut self, stream: StreamHandle) -> Option<&mut Deframer> {
        self.streams.get_mut(&stream).map(|s| &mut s.deframer)
    }

    fn is_open(&self, stream: StreamHandle) -> bool {
        self.streams.contains_key(&stream)
    }
}

impl Presence {
    /// The service of the node with identity `node_id` (the publisher of the records it
    /// co-signs).
    pub fn new(node_id: [u8; 32], config: PresenceConfig) -> Self {
        Self {
            node_id,
            config,
            streams: HashMap::new(),
            registrations: HashMap::new(),
            pending: HashMap::new(),
            timers: Deadlines::default(),
            next_intro_id: 1,
            actions: VecDeque::new(),
        }
    }

    /// Presence points held.
    pub fn registrations(&self) -> usize {
        self.registrations.len()
    }

    /// Introductions waiting for an answer.
    pub fn pending_introductions(&self) -> usize {
        self.pending.len()
    }

    /// Streams tracked.
    pub fn streams(&self) -> usize {
        self.streams.len()
    }

    /// Deadlines scheduled (for metrics, and for tests that check nothing is left behind).
    pub fn timers(&self) -> usize {
        self.timers.len()
    }

    /// Bytes arrived on `stream`. Certificates are checked against `chain` (the latest
    /// finalized block). `Err` says what was refused, for the log; the actions queued say
    /// what the peer is told and whether the stream is closed.
    pub fn handle_data(
        &mut self,
        now: u64,
        stream: StreamHandle,
        bytes: &[u8],
        chain: &ChainView<'_>,
    ) -> Result<(), PresenceError> {
        if !self.streams.contains_key(&stream) {
            if self.streams.len() >= self.config.max_streams {
                self.actions.push_back(Action::Close { stream });
                return Err(PresenceError::TooManyStreams {
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
            PresenceMsg::decode,
            |service, msg| service.handle_message(now, stream, msg, chain),
            |service, stream| service.close_stream(stream),
        )
    }

    /// The stream closed (the client's or introducer's circuit went away). Idempotent.
    pub fn handle_stream_closed(&mut self, stream: StreamHandle) {
        self.forget_stream(stream);
    }

    /// The earliest time [`Self::handle_timeout`] has work.
    pub fn poll_timeout(&self) -> Option<u64> {
        self.timers.next()
    }

    /// Ends what is due at `now`: lapsed registrations and unanswered introductions.
    pub fn handle_timeout(&mut self, now: u64) {
        while let Some(timer) = self.timers.pop_due(now) {
            match timer {
                Timer::RecordExpiry(owner) => {
                    self.end_registration(&owner, LapseReason::Expired, true)
                }
                Timer::IntroductionTimeout(id) => self.end_pending(id, Outcome::TimedOut),
            }
        }
    }

    /// The next action to run.
    pub fn poll_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }

    /// Ends the registrations of identities no longer live in `chain` (call it when a new
    /// block is finalized): revocation takes effect at once, not at the next keep-alive.
    pub fn recheck_identities(&mut self, chain: &ChainView<'_>) {
        let lapsed: Vec<[u8; 32]> = self
            .registrations
            .keys()
            .filter(|owner| !matches!(chain.registry.status(owner), IdentityStatus::Active(_)))
            .copied()
            .collect();
        for owner in lapsed {
            self.end_registration(&owner, LapseReason::IdentityNotLive, true);
        }
    }

    /// Cancels a pending introduction (operator or client): tears the introducer's circuit
    /// down at once ([`Action::Teardown`]) and tells the client it is withdrawn. Returns whether it was pending.
    pub fn cancel_introduction(&mut self, id: IntroId) -> bool {
        let pending = self.pending.contains_key(&id);
        self.end_pending(id, Outcome::Cancelled);
        pending
    }

    fn handle_message(
        &mut self,
        now: u64,
        stream: StreamHandle,
        msg: PresenceMsg,
        chain: &ChainView<'_>,
    ) -> Result<(), PresenceError> {
        let role = self.streams.get(&stream).map_or(Role::New, |s| s.role);
        match (role, msg) {
            (Role::New, PresenceMsg::Register(register)) => {
                self.register(now, stream, register, chain)
            }
            (Role::Owner(owner), PresenceMsg::KeepAlive(record)) => {
                self.keep_alive(now, owner, record, chain)
            }
            (Role::Owner(owner), PresenceMsg::Accept(id)) => {
                self.answer(stream, owner, id, Outcome::Accepted)
            }
            (Role::Owner(owner), PresenceMsg::Decline(id)) => {
                self.answer(stream, owner, id, Outcome::Declined)
            }
            (Role::Owner(owner), PresenceMsg::Cancel(id)) => {
                self.answer(stream, owner, id, Outcome::Cancelled)
            }
            (Role::New | Role::Introducer(None), PresenceMsg::Introduce { target, sealed }) => {
                self.introduce(now, stream, target, sealed)
            }
            (role, msg) => {
                self.close_stream(stream);
                Err(PresenceError::UnexpectedMessage {
                    message: msg.name(),
                    role: role.name(),
                })
            }
        }
    }

    fn register(
        &mut self,
        now: u64,
        stream: StreamHandle,
        register: Register,
        chain: &ChainView<'_>,
    ) -> Result<(), PresenceError> {
        let result = self.check_registration(now, register, chain);
        let (checked, limits) = match result {
            Ok(ok) => ok,
            Err(e) => {
                self.refuse_and_close(stream, &e);
                return Err(e);
            }
        };
        let content = checked.content;
        let owner = content.owner;
        let expires_at = content.expires_at;
        self.registrations.insert(
            owner,
            Registration {
                stream,
                key: content.key(),
                topic: content.topic,
                seq: content.seq,
                public: checked.public,
                expires_at,
                limits,
                bucket: IntroBucket::new(&limits, now),
                accepted: 0,
                pending: BTreeSet::new(),
                cap_notified: false,
            },
        );
        if let Some(state) = self.streams.get_mut(&stream) {
            state.role = Role::Owner(owner);
        }
        self.timers.set(Timer::RecordExpiry(owner), expires_at);
        self.send(
            stream,
            &PresenceMsg::Registered(Registered { expires_at, limits }),
        );
        self.actions.push_back(Action::Publish {
            content,
            owner_signature: checked.owner_signature,
        });
        Ok(())
    }

    fn check_registration(
        &self,
        now: u64,
        register: Register,
        chain: &ChainView<'_>,
    ) -> Result<(registration::CheckedRecord, ChannelLimits), PresenceError> {
        let limits = effective_limits(register.limits, self.config.max_limits)?;
        let owner = register.record.content().owner;
        if self.registrations.contains_key(&owner) {
            return Err(PresenceError::AlreadyRegistered);
        }
        if self.registrations.len() >= self.config.max_registrations {
            return Err(PresenceError::RegistrationsFull {
                max: self.config.max_registrations,
            });
        }
        let checked = check_record(register.record, now, &self.node_id, &self.config, chain)?;
        Ok((checked, limits))
    }

    fn keep_alive(
        &mut self,
        now: u64,
        owner: [u8; 32],
        record: OwnerSignedRecord,
        chain: &ChainView<'_>,
    ) -> Result<(), PresenceError> {
        let checked = self.check_renewal(now, &owner, record, chain);
        let checked = match checked {
            Ok(checked) => checked,
            Err(e) => {
                if let Some(reg) = self.registrations.get(&owner) {
                    let stream = reg.stream;
                    self.send(stream, &PresenceMsg::Refused(e.register_refusal()));
                }
                self.end_registration(&owner, LapseReason::Refused, true);
                return Err(e);
            }
        };
        let Some(reg) = self.registrations.get_mut(&owner) else {
            return Err(PresenceError::NotARenewal("not registered"));
        };
        reg.seq = checked.content.seq;
        reg.expires_at = checked.content.expires_at;
        let (stream, expires_at, limits) = (reg.stream, reg.expires_at, reg.limits);
        self.timers.set(Timer::RecordExpiry(owner), expires_at);
        self.send(
            stream,
            &PresenceMsg::Registered(Registered { expires_at, limits }),
        );
        self.actions.push_back(Action::Publish {
            content: checked.content,
            owner_signature: checked.owner_signature,
        });
        Ok(())
    }

    fn check_renewal(
        &self,
        now: u64,
        owner: &[u8; 32],
        record: OwnerSignedRecord,
        chain: &ChainView<'_>,
    ) -> Result<registration::CheckedRecord, PresenceError> {
        let reg = self
            .registrations
            .get(owner)
            .ok_or(PresenceError::NotARenewal("not registered"))?;
        let content = record.content();
        if &content.owner != owner || content.topic != reg.topic {
            return Err(PresenceError::NotARenewal("owner or topic changed"));
        }
        if content.seq <= reg.seq {
            return Err(PresenceError::NotARenewal("sequence number not higher"));
        }
        let checked = check_record(record, now, &self.node_id, &self.config, chain)?;
        if checked.public != reg.public {
            return Err(PresenceError::NotARenewal("public flag changed"));
        }
        Ok(checked)
    }

    fn introduce(
        &mut self,
        now: u64,
        stream: StreamHandle,
        target: [u8; 32],
        sealed: SealedIntroduction,
    ) -> Result<(), PresenceError> {
        if let Some(state) = self.streams.get_mut(&stream) {
            state.role = Role::Introducer(None);
        }
        let admitted = self.admit_introduction(now, &target);
        let owner_stream = match admitted {
            Ok(owner_stream) => owner_stream,
            Err((refusal, error)) => {
                self.send(stream, &PresenceMsg::IntroRefused(refusal));
                return Err(error);
            }
        };
        let id = IntroId(self.next_intro_id);
        self.next_intro_id = self.next_intro_id.wrapping_add(1);
        if let Some(reg) = self.registrations.get_mut(&target) {
            reg.pending.insert(id);
        }
        self.pending.insert(
            id,
            Pending {
                introducer: stream,
                owner: target,
            },
        );
        if let Some(state) = self.streams.get_mut(&stream) {
            state.role = Role::Introducer(Some(id));
        }
        let deadline = now.saturating_add(self.config.introduction_timeout_secs);
        self.timers.set(Timer::IntroductionTimeout(id), deadline);
        self.send(owner_stream, &PresenceMsg::Introduction { id, sealed });
        Ok(())
    }

    /// The checks an introduction must pass, in order: target registered, cap, the node's
    /// pending bound, the target's rate. Returns the target's stream.
    fn admit_introduction(
        &mut self,
        now: u64,
        target: &[u8; 32],
    ) -> Result<StreamHandle, (IntroRefusal, PresenceError)> {
        let pending_full = self.pending.len() >= self.config.max_pending_introductions;
        let Some(reg) = self.registrations.get_mut(target) else {
            return Err((
                IntroRefusal::NotRegistered,
                PresenceError::TargetNotRegistered,
            ));
        };
        if reg.cap_reached() {
            let cap = reg.limits.cap;
            let owner_stream = reg.stream;
            if !reg.cap_notified {
                reg.cap_notified = true;
                self.send(owner_stream, &PresenceMsg::CapReached);
            }
            return Err((IntroRefusal::CapReached, PresenceError::CapReached { cap }));
        }
        if pending_full {
            return Err((
                IntroRefusal::Busy,
                PresenceError::PendingFull {
                    max: self.config.max_pending_introductions,
                },
            ));
        }
        if !reg.bucket.try_take(now) {
            return Err((IntroRefusal::RateLimited, PresenceError::RateLimited));
        }
        Ok(reg.stream)
    }

    /// The client's answer to one of its pending introductions.
    fn answer(
        &mut self,
        stream: StreamHandle,
        owner: [u8; 32],
        id: IntroId,
        outcome: Outcome,
    ) -> Result<(), PresenceError> {
        if self.pending.get(&id).is_none_or(|p| p.owner != owner) {
            self.send(stream, &PresenceMsg::Withdrawn(id));
            return Err(PresenceError::UnknownIntroduction(id));
        }
        self.end_pending(id, outcome);
        Ok(())
    }

    /// Ends a pending introduction and tells whom it concerns.
    fn end_pending(&mut self, id: IntroId, outcome: Outcome) {
        let Some(pending) = self.pending.remove(&id) else {
            return;
        };
        self.timers.remove(Timer::IntroductionTimeout(id));
        if let Some(state) = self.streams.get_mut(&pending.introducer) {
            state.role = Role::Introducer(None);
        }
        let owner_stream = self.registrations.get_mut(&pending.owner).map(|reg| {
            reg.pending.remove(&id);
            if outcome == Outcome::Accepted {
                reg.accepted = reg.accepted.saturating_add(1);
            }
            reg.stream
        });
        match outcome {
            Outcome::Accepted => {
                self.send(pending.introducer, &PresenceMsg::IntroAccepted);
                self.notify_if_cap_reached(&pending.owner);
            }
            Outcome::Declined => {
                self.send(pending.introducer, &PresenceMsg::IntroDeclined);
                self.close_stream(pending.introducer);
            }
            Outcome::Cancelled => {
                self.teardown_stream(pending.introducer);
                if let Some(owner_stream) = owner_stream {
                    self.send(owner_stream, &PresenceMsg::Withdrawn(id));
                }
            }
            Outcome::TimedOut => {
                let refusal = PresenceMsg::IntroRefused(IntroRefusal::TimedOut);
                self.send(pending.introducer, &refusal);
                if let Some(owner_stream) = owner_stream {
                    self.send(owner_stream, &PresenceMsg::Withdrawn(id));
                }
            }
            Outcome::TargetGone => {
                let refusal = PresenceMsg::IntroRefused(IntroRefusal::TargetGone);
                self.send(pending.introducer, &refusal);
            }
            Outcome::IntroducerGone => {
                if let Some(owner_stream) = owner_stream {
                    self.send(owner_stream, &PresenceMsg::Withdrawn(id));
                }
            }
        }
    }

    fn notify_if_cap_reached(&mut self, owner: &[u8; 32]) {
        let Some(reg) = self.registrations.get_mut(owner) else {
            return;
        };
        if reg.cap_reached() && !reg.cap_notified {
            reg.cap_notified = true;
            let stream = reg.stream;
            self.send(stream, &PresenceMsg::CapReached);
        }
    }

    /// Ends a registration: unpublishes, refuses its pending introductions, and closes the
    /// client's stream if it is still open.
    fn end_registration(&mut self, owner: &[u8; 32], reason: LapseReason, close_stream: bool) {
        let Some(reg) = self.registrations.remove(owner) else {
            return;
        };
        self.timers.remove(Timer::RecordExpiry(*owner));
        self.actions.push_back(Action::Unpublish {
            key: reg.key,
            reason,
        });
        for id in reg.pending {
            self.end_pending(id, Outcome::TargetGone);
        }
        if close_stream && self.streams.remove(&reg.stream).is_some() {
            self.actions.push_back(Action::Close { stream: reg.stream });
        }
    }

    fn refuse_and_close(&mut self, stream: StreamHandle, error: &PresenceError) {
        self.send(stream, &PresenceMsg::Refused(error.register_refusal()));
        self.close_stream(stream);
    }

    /// Closes a stream we decided to end, and forgets it.
    fn close_stream(&mut self, stream: StreamHandle) {
        if self.streams.contains_key(&stream) {
            self.actions.push_back(Action::Close { stream });
            self.forget_stream(stream);
        }
    }

    /// Tears down the circuit of a stream we cut off, and forgets the stream.
    fn teardown_stream(&mut self, stream: StreamHandle) {
        if self.streams.contains_key(&stream) {
            self.actions.push_back(Action::Teardown { stream });
            self.forget_stream(stream);
        }
    }

    /// Forgets a stream and what hangs on it.
    fn forget_stream(&mut self, stream: StreamHandle) {
        let Some(state) = self.streams.remove(&stream) else {
            return;
        };
        match state.role {
            Role::Owner(owner) => self.end_registration(&owner, LapseReason::StreamClosed, false),
            Role::Introducer(Some(id)) => self.end_pending(id, Outcome::IntroducerGone),
            Role::New | Role::Introducer(None) => {}
        }
    }

    fn send(&mut self, stream: StreamHandle, msg: &PresenceMsg) {
        self.actions.push_back(Action::Send {
            stream,
            bytes: msg.encode(),
        });
    }
}
