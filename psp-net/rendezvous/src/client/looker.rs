//! # Looker: Alice fetching another identity's presence records from a node
//!
//! One lookup on one stream the driver opened to a node's `lookup` service (over a 3-hop
//! circuit, so the node does not learn who asks). [`Looker::new`] returns the `Request` for
//! the owner's presence slots `0..slots`; the node answers `Records` (or `Refused`).
//!
//! The node is trusted for nothing: every record is checked here with
//! [`verify_presence_record`] (owner signature, publisher co-signature, expiry, owner and
//! publisher live on chain, the certificate in the value), then that it belongs to the
//! identity asked for and sits under one of the slots asked. A second record for a slot
//! already held is a duplicate: the one with the higher sequence number (then the later
//! issue) is kept. Every record refused is counted in [`LookerEvent::Found`], never
//! returned. The records kept come out in the order to try them
//! ([`preferred_presence`]: unexpired, most recently issued first).
//!
//! The looker ends after one answer (or its deadline, or the stream closing) and asks for
//! its stream to be closed. To ask again, or ask another node, build another looker.

use psp_dht::{RecordLimits, SignedRecord};

use super::error::ClientError;
use super::initiator::preferred_presence;
use super::output::{Output, Transmit};
use super::presence_topic;
use crate::chain::ChainView;
use crate::ids::StreamHandle;
use crate::record::{verify_presence_record, VerifiedPresence};
use crate::wire::{Deframer, LookupMsg, LookupRecord, WireError, MAX_LOOKUP_SLOTS};

/// Deadline and record limits of a looker.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct LookerConfig {
    /// From the `Request` to the node's answer. Default 30 s: the node gives its own DHT
    /// fetch 20 s (its default) before it answers `Refused(Busy)`, so this only fires for a
    /// node that stays silent.
    pub timeout_secs: u64,
    /// The record limits the records are checked against. Default
    /// [`RecordLimits::default`] (the DHT's: values ≤ 1 024 bytes, lifetimes ≤ 1 h, 30 s
    /// clock skew).
    pub record_limits: RecordLimits,
}

impl Default for LookerConfig {
    fn default() -> Self {
        Self {
            timeout_secs: 30,
            record_limits: RecordLimits::default(),
        }
    }
}

/// What a looker's input produced. Either event is the last.
#[derive(Clone, PartialEq, Eq, Debug)]
#[non_exhaustive]
pub enum LookerEvent {
    /// The node answered. `presences` are the records that passed every check, at most one
    /// per slot, in the order to try them (unexpired, most recent first); possibly none.
    Found {
        /// The checked presence points.
        presences: Vec<VerifiedPresence>,
        /// Records the node sent that were refused: undecodable, forged, expired, another
        /// owner's or another slot's, a bad or revoked certificate, duplicates.
        rejected: usize,
    },
    /// The lookup failed: the node refused, stayed silent, closed the stream or sent bytes
    /// that are not an answer.
    Failed(ClientError),
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum State {
    AwaitingRecords,
    Ended,
}

impl State {
    fn name(self) -> &'static str {
        match self {
            Self::AwaitingRecords => "awaiting the lookup's records",
            Self::Ended => "ended",
        }
    }
}

/// One lookup of an identity's presence records at one node.
#[derive(Debug)]
pub struct Looker {
    stream: StreamHandle,
    owner: [u8; 32],
    slots: u8,
    state: State,
    deadline: u64,
    config: LookerConfig,
    deframer: Deframer,
}

impl Looker {
    /// Starts a lookup of `owner`'s presence slots `0..slots` (1 ..= [`MAX_LOOKUP_SLOTS`])
    /// on `stream` (to a node's `lookup` service). Returns the looker and the `Request` to
    /// write.
    pub fn new(
        stream: StreamHandle,
        owner: [u8; 32],
        slots: u8,
        now: u64,
        config: LookerConfig,
    ) -> Result<(Self, Transmit), ClientError> {
        if slots == 0 || slots > MAX_LOOKUP_SLOTS {
            return Err(ClientError::LookupSlots {
                slots,
                max: MAX_LOOKUP_SLOTS,
            });
        }
        let looker = Self {
            stream,
            owner,
            slots,
            state: State::AwaitingRecords,
            deadline: now.saturating_add(config.timeout_secs),
            config,
            deframer: Deframer::default(),
        };
        let request = Transmit {
            stream,
            bytes: LookupMsg::Request { owner, slots }.encode(),
        };
        Ok((looker, request))
    }

    /// The stream to the lookup service.
    pub fn stream(&self) -> StreamHandle {
        self.stream
    }

    /// The identity looked up.
    pub fn owner(&self) -> &[u8; 32] {
        &self.owner
    }

    /// Whether the lookup ended (found or failed).
    pub fn is_closed(&self) -> bool {
        self.state == State::Ended
    }

    /// When [`Self::handle_timeout`] must run next.
    pub fn poll_timeout(&self) -> Option<u64> {
        (!self.is_closed()).then_some(self.deadline)
    }

    /// Ends the lookup if its deadline passed.
    pub fn handle_timeout(&mut self, now: u64) -> Output<LookerEvent> {
        let mut out = Output::default();
        if !self.is_closed() && now >= self.deadline {
            self.fail_timed_out(&mut out);
        }
        out
    }

    /// The stream closed before the answer.
    pub fn handle_stream_closed(&mut self) -> Output<LookerEvent> {
        let mut out = Output::default();
        if !self.is_closed() {
            let state = self.state.name();
            self.fail(
                &mut out,
                ClientError::StreamClosed {
                    service: "lookup",
                    state,
                },
            );
        }
        out
    }

    /// Bytes arrived on the stream. Records are checked against `chain` (the client's latest
    /// finalized block) at `now`. Past the deadline they are not read: the lookup times out.
    pub fn handle_data(
        &mut self,
        now: u64,
        bytes: &[u8],
        chain: &ChainView<'_>,
    ) -> Output<LookerEvent> {
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
                self.fail_malformed(&mut out, source);
                return out;
            }
        };
        // The first whole message ends the lookup: anything after it is not read.
        if let Some(body) = bodies.first() {
            match LookupMsg::decode(body) {
                Ok(LookupMsg::Records(records)) => {
                    let (presences, rejected) = self.check(records, now, chain);
                    self.end(
                        &mut out,
                        LookerEvent::Found {
                            presences,
                            rejected,
                        },
                    );
                }
                Ok(LookupMsg::Refused(reason)) => {
                    self.fail(&mut out, ClientError::LookupRefused(reason));
                }
                Ok(msg) => {
                    let state = self.state.name();
                    self.fail(
                        &mut out,
                        ClientError::Unexpected {
                            service: "lookup",
                            message: msg.name(),
                            state,
                        },
                    );
                }
                Err(source) => self.fail_malformed(&mut out, source),
            }
        }
        out
    }

    /// Checks every record; returns those kept, in preference order, and how many were
    /// refused.
    fn check(
        &self,
        records: Vec<LookupRecord>,
        now: u64,
        chain: &ChainView<'_>,
    ) -> (Vec<VerifiedPresence>, usize) {
        let topics: Vec<[u8; 32]> = (0..self.slots).map(presence_topic).collect();
        let total = records.len();
        let mut kept: Vec<VerifiedPresence> = Vec::new();
        for bytes in records {
            let Some(presence) = self.check_one(bytes.as_slice(), now, chain, &topics) else {
                continue;
            };
            match kept.iter_mut().find(|p| p.topic == presence.topic) {
                Some(held) => {
                    if (presence.seq, presence.issued_at) > (held.seq, held.issued_at) {
                        *held = presence;
                    }
                }
                None => kept.push(presence),
            }
        }
        let ordered: Vec<VerifiedPresence> = preferred_presence(&kept, now)
            .into_iter()
            .cloned()
            .collect();
        let rejected = total.saturating_sub(ordered.len());
        (ordered, rejected)
    }

    /// One record: decoded, checked, the owner asked for, one of the slots asked.
    fn check_one(
        &self,
        bytes: &[u8],
        now: u64,
        chain: &ChainView<'_>,
        topics: &[[u8; 32]],
    ) -> Option<VerifiedPresence> {
        let record = SignedRecord::decode(bytes).ok()?;
        // Cheap checks before the signatures.
        if record.content.owner != self.owner || !topics.contains(&record.content.topic) {
            return None;
        }
        let presence =
            verify_presence_record(record, now, chain, &self.config.record_limits).ok()?;
        (presence.owner == self.owner).then_some(presence)
    }

    fn end(&mut self, out: &mut Output<LookerEvent>, event: LookerEvent) {
        self.state = State::Ended;
        out.close(self.stream);
        out.emit(event);
    }

    fn fail(&mut self, out: &mut Output<LookerEvent>, error: ClientError) {
        self.end(out, LookerEvent::Failed(error));
    }

    fn fail_timed_out(&mut self, out: &mut Output<LookerEvent>) {
        let error = ClientError::TimedOut {
            step: self.state.name(),
            deadline: self.deadline,
        };
        self.fail(out, error);
    }

    fn fail_malformed(&mut self, out: &mut Output<LookerEvent>, source: WireError) {
        self.fail(
            out,
            ClientError::Malformed {
                service: "lookup",
                source,
            },
        );
    }
}
