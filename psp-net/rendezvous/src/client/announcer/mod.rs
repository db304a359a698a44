//! # Announcer: Bob's side of one presence point
//!
//! One announcer per presence point, on a stream the driver opened to the presence node's
//! `presence` service (through a 3-hop circuit, or the first hop for a public point).
//!
//! * [`Announcer::start`] signs a presence record (slot topic, the node as publisher, the
//!   certificate and the public flag in its value) and returns `Register`.
//! * The node answers `Registered` (event [`AnnouncerEvent::Registered`]) or `Refused`.
//! * At half the record's life [`Announcer::handle_timeout`] sends a `KeepAlive` with a
//!   newer record; the node's `Registered` confirms it ([`AnnouncerEvent::Renewed`]). No
//!   confirmation before the expiry ends the announcer: the record lapsed.
//! * Each `Introduction` is opened with the announcement secret and checked (time window,
//!   introducer's signature and certificate, the client's replay cache). A good one is kept
//!   pending and reported; a bad one, or one past [`AnnouncerConfig::max_pending`], is
//!   cancelled at once (the node closes the introducer's stream without an answer) and
//!   reported as dropped.
//! * [`Announcer::accept`] / [`Announcer::decline`] answer a pending introduction.
//!
//! Refused, lapsed, timed out or failed, the announcer ends with one event; the driver
//! registers a replacement point (a client holds two at once by default).

mod record;

use std::collections::BTreeMap;
use std::sync::Arc;

pub use record::presence_topic;
use record::{certificate_end, keep_alive_at, sign_record, RecordTerms};

use super::error::ClientError;
use super::output::{Output, Transmit};
use super::Identity;
use crate::chain::ChainView;
use crate::deadlines::Deadlines;
use crate::ids::{IntroId, StreamHandle};
use crate::intro::{self, VerifiedIntroduction};
use crate::replay::ReplayCache;
use crate::wire::{
    ChannelLimits, Deframer, OwnerSignedRecord, PresenceMsg, Register, RegisterRefusal, Registered,
    SealedIntroduction,
};

/// What an announcer registers and how long it waits.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct AnnouncerConfig {
    /// The presence slot: its record's topic is [`presence_topic`]`(slot)`. Each of a
    /// client's points needs its own. Default 0.
    pub slot: u8,
    /// Public (registered on the first hop; callers may connect directly) or anonymous.
    /// Default anonymous.
    pub public: bool,
    /// Introduction rate and channel cap asked of the node (it may lower them; the
    /// `Registered` event says what holds). Default [`ChannelLimits::default`].
    pub limits: ChannelLimits,
    /// Lifetime of each record. Default 240 s: under the presence node's 300 s maximum with
    /// room for clock skew; renewed every 120 s.
    pub record_lifetime_secs: u64,
    /// How long the node may take to answer `Register`. Default 30 s.
    pub answer_timeout_secs: u64,
    /// Introductions kept pending at once; more are cancelled. Default 16, the default
    /// channel cap (the node never forwards more than the cap at once).
    pub max_pending: usize,
    /// How long a pending introduction is kept without an answer. Default 90 s: the node
    /// withdraws it after 60 s (its default); this only forgets ones a node never withdraws.
    pub pending_lifetime_secs: u64,
}

impl Default for AnnouncerConfig {
    fn default() -> Self {
        Self {
            slot: 0,
            public: false,
            limits: ChannelLimits::default(),
            record_lifetime_secs: 240,
            answer_timeout_secs: 30,
            max_pending: 16,
            pending_lifetime_secs: 90,
        }
    }
}

/// What an announcer's input produced.
#[derive(Debug)]
#[non_exhaustive]
pub enum AnnouncerEvent {
    /// The node published the record: the point is live until `expires_at` unless renewed.
    Registered {
        /// The record's expiry.
        expires_at: u64,
        /// The limits the node enforces.
        limits: ChannelLimits,
    },
    /// A keep-alive was accepted: the point now lives until `expires_at`.
    Renewed {
        /// The new record's expiry.
        expires_at: u64,
    },
    /// The node refused the registration or a keep-alive, and closed the stream. Last event.
    Refused(RegisterRefusal),
    /// A checked introduction, pending until answered with [`Announcer::accept`] or
    /// [`Announcer::decline`], or withdrawn.
    IntroductionReceived {
        /// Its id at this presence node.
        id: IntroId,
        /// Who asks, and where to join (boxed: it carries a certificate).
        introduction: Box<VerifiedIntroduction>,
    },
    /// An introduction that was not kept; it was cancelled at the node (a `Withdrawn` for
    /// it may follow).
    IntroductionDropped {
        /// Its id at this presence node.
        id: IntroId,
        /// Why: it did not open or check, or too many are pending.
        reason: ClientError,
    },
    /// The channel cap of this point is reached: the node refuses further introducers.
    /// Register another point to stay reachable.
    CapReached,
    /// The introduction is no longer pending: the node withdrew it (timed out, the
    /// introducer left, cancelled) or it was kept past
    /// [`AnnouncerConfig::pending_lifetime_secs`]. Also the node's answer to an `Accept`
    /// that came too late: then the introducer is gone.
    Withdrawn(IntroId),
    /// The announcer ended; the error says why. Last event.
    Failed(ClientError),
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Phase {
    NotStarted,
    Registering { deadline: u64 },
    Registered,
    Ended,
}

impl Phase {
    fn name(self) -> &'static str {
        match self {
            Self::NotStarted => "not started",
            Self::Registering { .. } => "registering",
            Self::Registered => "registered",
            Self::Ended => "ended",
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
enum Timer {
    /// `Register` unanswered.
    Answer,
    /// Time to renew.
    KeepAlive,
    /// The confirmed record expires.
    Expiry,
    /// A pending introduction is forgotten.
    Pending(IntroId),
}

/// The record last signed, and the one the node confirmed.
#[derive(Clone, Copy, Debug, Default)]
struct RecordTimes {
    /// `seq` of the last record signed.
    seq: u64,
    /// Issue time of the last record sent.
    issued_at: u64,
    /// Expiry of the record the node confirmed.
    confirmed_expiry: u64,
    /// A keep-alive is out and unanswered.
    renewing: bool,
}

/// Bob's side of one presence point.
pub struct Announcer {
    identity: Arc<Identity>,
    presence_node: [u8; 32],
    stream: StreamHandle,
    config: AnnouncerConfig,
    certificate: Vec<u8>,
    phase: Phase,
    record: RecordTimes,
    /// At most `config.max_pending` entries.
    pending: BTreeMap<IntroId, VerifiedIntroduction>,
    /// At most three registration timers plus one per pending introduction.
    timers: Deadlines<Timer>,
    deframer: Deframer,
}

impl core::fmt::Debug for Announcer {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Announcer")
            .field("stream", &self.stream)
            .field("phase", &self.phase)
            .field("pending", &self.pending.len())
            .finish_non_exhaustive()
    }
}

impl Announcer {
    /// An announcer for `identity` at the presence node `presence_node` (its node
    /// identity, the publisher of the record), on `stream`. Nothing is sent until
    /// [`Self::start`].
    pub fn new(
        identity: Arc<Identity>,
        presence_node: [u8; 32],
        stream: StreamHandle,
        config: AnnouncerConfig,
    ) -> Self {
        let certificate = identity.certificate().to_vec();
        Self {
            identity,
            presence_node,
            stream,
            config,
            certificate,
            phase: Phase::NotStarted,
            record: RecordTimes::default(),
            pending: BTreeMap::new(),
            timers: Deadlines::default(),
            deframer: Deframer::default(),
        }
    }

    /// The presence stream.
    pub fn stream(&self) -> StreamHandle {
        self.stream
    }

    /// The presence node.
    pub fn presence_node(&self) -> &[u8; 32] {
        &self.presence_node
    }

    /// Whether the node confirmed the registration and it has not ended.
    pub fn is_registered(&self) -> bool {
        self.phase == Phase::Registered
    }

    /// Whether the announcer ended.
    pub fn is_closed(&self) -> bool {
        self.phase == Phase::Ended
    }

    /// The expiry of the record the node last confirmed.
    pub fn expires_at(&self) -> Option<u64> {
        self.is_registered().then_some(self.record.confirmed_expiry)
    }

    /// The pending introductions, by id.
    pub fn pending(&self) -> impl Iterator<Item = (IntroId, &VerifiedIntroduction)> {
        self.pending.iter().map(|(id, intro)| (*id, intro))
    }

    /// Signs the first record and returns `Register`.
    pub fn start(&mut self, now: u64) -> Result<Transmit, ClientError> {
        match self.phase {
            Phase::NotStarted => {}
            Phase::Ended => {
                return Err(ClientError::Ended {
                    machine: "announcer",
                })
            }
            Phase::Registering { .. } | Phase::Registered => {
                return Err(ClientError::AlreadyStarted)
            }
        }
        let record = self.sign_record(now)?;
        self.commit(&record);
        let deadline = now.saturating_add(self.config.answer_timeout_secs);
        self.phase = Phase::Registering { deadline };
        self.timers.set(Timer::Answer, deadline);
        let register = PresenceMsg::Register(Register {
            record,
            limits: self.config.limits,
        });
        Ok(self.transmit(&register))
    }

    /// Uses `certificate` (a renewal of the identity's, for the same keys) in the records
    /// from now on, and renews the record at once so it may outlive the old certificate.
    pub fn renew_certificate(&mut self, now: u64, certificate: Vec<u8>) {
        self.certificate = certificate;
        if self.phase == Phase::Registered {
            self.timers.set(Timer::KeepAlive, now);
        }
    }

    /// Accepts a pending introduction: returns `Accept` for the presence stream and the
    /// introduction, to build a [`Responder`](super::Responder) from.
    pub fn accept(&mut self, id: IntroId) -> Result<(Transmit, VerifiedIntroduction), ClientError> {
        let introduction = self.take_pending(id)?;
        Ok((self.transmit(&PresenceMsg::Accept(id)), introduction))
    }

    /// Declines a pending introduction: returns `Decline` for the presence stream (the node
    /// tells the introducer).
    pub fn decline(&mut self, id: IntroId) -> Result<Transmit, ClientError> {
        self.take_pending(id)?;
        Ok(self.transmit(&PresenceMsg::Decline(id)))
    }

    /// When [`Self::handle_timeout`] must run next.
    pub fn poll_timeout(&self) -> Option<u64> {
        self.timers.next()
    }

    /// Runs what is due at `now`: keep-alives, the registration's deadlines, forgetting
    /// stale pending introductions.
    pub fn handle_timeout(&mut self, now: u64) -> Output<AnnouncerEvent> {
        let mut out = Output::default();
        while let Some(timer) = self.timers.pop_due(now) {
            match timer {
                Timer::Answer => {
                    let deadline = match self.phase {
                        Phase::Registering { deadline } => deadline,
                        _ => now,
                    };
                    let step = "awaiting the registration";
                    self.fail(&mut out, ClientError::TimedOut { step, deadline });
                }
                Timer::KeepAlive => self.keep_alive(now, &mut out),
                Timer::Expiry => {
                    let expires_at = self.record.confirmed_expiry;
                    let error = match certificate_end(&self.certificate) {
                        Some(not_after) if not_after <= expires_at => {
                            ClientError::CertificateEnding { not_after, now }
                        }
                        _ => ClientError::RecordLapsed { expires_at },
                    };
                    self.fail(&mut out, error);
                }
                Timer::Pending(id) => {
                    if self.pending.remove(&id).is_some() {
                        out.emit(AnnouncerEvent::Withdrawn(id));
                    }
                }
            }
            if self.is_closed() {
                break;
            }
        }
        out
    }

    /// The presence stream closed: the point is gone.
    pub fn handle_stream_closed(&mut self) -> Output<AnnouncerEvent> {
        let mut out = Output::default();
        if !self.is_closed() {
            let state = self.phase.name();
            self.end();
            let error = ClientError::StreamClosed {
                service: "presence",
                state,
            };
            out.emit(AnnouncerEvent::Failed(error));
        }
        out
    }

    /// Bytes arrived on the presence stream. Introductions are checked against `chain` (the
    /// client's latest finalized block) and `replay`, the client's one replay cache, shared
    /// by all its presence points (a node could replay an introduction to another point).
    pub fn handle_data(
        &mut self,
        now: u64,
        bytes: &[u8],
        chain: &ChainView<'_>,
        replay: &mut ReplayCache,
    ) -> Output<AnnouncerEvent> {
        let mut out = Output::default();
        if self.is_closed() {
            return out;
        }
        let bodies = match self.deframer.feed(bytes) {
            Ok(bodies) => bodies,
            Err(source) => {
                let error = ClientError::Malformed {
                    service: "presence",
                    source,
                };
                self.fail(&mut out, error);
                return out;
            }
        };
        for body in bodies {
            match PresenceMsg::decode(&body) {
                Ok(msg) => self.handle_message(now, msg, chain, replay, &mut out),
                Err(source) => {
                    let error = ClientError::Malformed {
                        service: "presence",
                        source,
                    };
                    self.fail(&mut out, error);
                }
            }
            if self.is_closed() {
                break;
            }
        }
        out
    }

    fn handle_message(
        &mut self,
        now: u64,
        msg: PresenceMsg,
        chain: &ChainView<'_>,
        replay: &mut ReplayCache,
        out: &mut Output<AnnouncerEvent>,
    ) {
        match (self.phase, msg) {
            (Phase::Registering { .. }, PresenceMsg::Registered(registered)) => {
                self.phase = Phase::Registered;
                self.timers.remove(Timer::Answer);
                self.confirm(registered);
                let Registered { expires_at, limits } = registered;
                out.emit(AnnouncerEvent::Registered { expires_at, limits });
            }
            (Phase::Registered, PresenceMsg::Registered(registered)) if self.record.renewing => {
                self.confirm(registered);
                let expires_at = registered.expires_at;
                out.emit(AnnouncerEvent::Renewed { expires_at });
            }
            (Phase::Registering { .. } | Phase::Registered, PresenceMsg::Refused(reason)) => {
                self.end();
                out.close(self.stream);
                out.emit(AnnouncerEvent::Refused(reason));
            }
            (Phase::Registered, PresenceMsg::Introduction { id, sealed }) => {
                self.introduction(now, id, &sealed, chain, replay, out)
            }
            (Phase::Registered, PresenceMsg::Withdrawn(id)) => {
                self.pending.remove(&id);
                self.timers.remove(Timer::Pending(id));
                out.emit(AnnouncerEvent::Withdrawn(id));
            }
            (Phase::Registered, PresenceMsg::CapReached) => out.emit(AnnouncerEvent::CapReached),
            (phase, msg) => {
                let error = ClientError::Unexpected {
                    service: "presence",
                    message: msg.name(),
                    state: phase.name(),
                };
                self.fail(out, error);
            }
        }
    }

    /// Opens, checks and keeps (or cancels) one forwarded introduction.
    fn introduction(
        &mut self,
        now: u64,
        id: IntroId,
        sealed: &SealedIntroduction,
        chain: &ChainView<'_>,
        replay: &mut ReplayCache,
        out: &mut Output<AnnouncerEvent>,
    ) {
        if self.pending.contains_key(&id) {
            // Cancelling by id would cancel the pending one: this one times out at the node.
            let reason = ClientError::DuplicateIntroduction(id);
            out.emit(AnnouncerEvent::IntroductionDropped { id, reason });
            return;
        }
        let checked = if self.pending.len() >= self.config.max_pending {
            Err(ClientError::TooManyPending {
                max: self.config.max_pending,
            })
        } else {
            intro::open(sealed.as_slice(), self.identity.announcement())
                .and_then(|opened| opened.check(now, &self.identity.id(), chain, replay))
                .map_err(ClientError::from)
        };
        match checked {
            Ok(introduction) => {
                self.pending.insert(id, introduction.clone());
                let forget_at = now.saturating_add(self.config.pending_lifetime_secs);
                self.timers.set(Timer::Pending(id), forget_at);
                let introduction = Box::new(introduction);
                out.emit(AnnouncerEvent::IntroductionReceived { id, introduction });
            }
            Err(reason) => {
                out.transmits.push(self.transmit(&PresenceMsg::Cancel(id)));
                out.emit(AnnouncerEvent::IntroductionDropped { id, reason });
            }
        }
    }

    /// Sends a keep-alive if one is due and it would extend the record.
    fn keep_alive(&mut self, now: u64, out: &mut Output<AnnouncerEvent>) {
        if self.phase != Phase::Registered || self.record.renewing {
            return;
        }
        let record = match self.sign_record(now) {
            Ok(record) => record,
            // The certificate ended: the expiry timer reports it.
            Err(ClientError::CertificateEnding { .. }) => return,
            Err(e) => return self.fail(out, e),
        };
        if record.content().expires_at <= self.record.confirmed_expiry {
            // The certificate ends first: renewing cannot extend the record. The expiry timer
            // reports it unless a renewed certificate arrives.
            return;
        }
        self.commit(&record);
        self.record.renewing = true;
        out.transmits
            .push(self.transmit(&PresenceMsg::KeepAlive(record)));
    }

    /// The node confirmed the record last signed.
    fn confirm(&mut self, registered: Registered) {
        self.record.renewing = false;
        self.record.confirmed_expiry = registered.expires_at;
        self.timers.set(Timer::Expiry, registered.expires_at);
        let renew_at = keep_alive_at(self.record.issued_at, registered.expires_at);
        self.timers.set(Timer::KeepAlive, renew_at);
    }

    /// Signs the next record (a higher `seq` than any before, even across restarts: unix
    /// seconds while they advance).
    fn sign_record(&self, now: u64) -> Result<OwnerSignedRecord, ClientError> {
        let seq = self.record.seq.saturating_add(1).max(now);
        let terms = RecordTerms {
            presence_node: &self.presence_node,
            slot: self.config.slot,
            public: self.config.public,
            certificate: &self.certificate,
            seq,
            lifetime_secs: self.config.record_lifetime_secs,
        };
        sign_record(&self.identity, &terms, now)
    }

    /// Remembers the record about to be sent.
    fn commit(&mut self, record: &OwnerSignedRecord) {
        self.record.seq = record.content().seq;
        self.record.issued_at = record.content().issued_at;
    }

    fn take_pending(&mut self, id: IntroId) -> Result<VerifiedIntroduction, ClientError> {
        if self.is_closed() {
            return Err(ClientError::Ended {
                machine: "announcer",
            });
        }
        let introduction = self
            .pending
            .remove(&id)
            .ok_or(ClientError::UnknownIntroduction(id))?;
        self.timers.remove(Timer::Pending(id));
        Ok(introduction)
    }

    fn transmit(&self, msg: &PresenceMsg) -> Transmit {
        Transmit {
            stream: self.stream,
            bytes: msg.encode(),
        }
    }

    fn fail(&mut self, out: &mut Output<AnnouncerEvent>, error: ClientError) {
        self.end();
        out.close(self.stream);
        out.emit(AnnouncerEvent::Failed(error));
    }

    /// Forgets everything: pending introductions and timers.
    fn end(&mut self) {
        self.phase = Phase::Ended;
        self.pending.clear();
        self.timers = Deadlines::default();
    }
}
