//! A node's `lookup` service, sans IO.
//!
//! A looker asks, over a stream (its 3-hop circuit), for the presence records of an
//! identity's slots `0..slots` ([`LookupMsg::Request`]). The service asks the driver to fetch
//! their DHT keys ([`Action::Fetch`]) and sends back what the driver found
//! ([`LookupMsg::Records`]). It does not check the records: the looker checks every one
//! itself and trusts no node. It only bounds what it forwards: at most one record per slot
//! asked, each no longer than a presence record can be ([`MAX_LOOKUP_RECORD_LEN`]).
//!
//! One request is in flight per stream; a stream makes at most
//! [`LookupConfig::max_requests_per_stream`] requests, and the whole service at most
//! [`LookupConfig::max_concurrent_fetches`] fetches at once (beyond it: `Refused(Busy)`).
//!
//! Driving it: feed every stream's bytes to [`Lookup::handle_data`], hand the DHT's answer
//! to a [`Action::Fetch`] to [`Lookup::handle_fetched`], report closed streams with
//! [`Lookup::handle_stream_closed`], call [`Lookup::handle_timeout`] at
//! [`Lookup::poll_timeout`], and after every call run the actions from
//! [`Lookup::poll_action`] in order (a `Send` before the `Close` of the same stream).

use std::collections::{HashMap, VecDeque};

use psp_dht::{record_key, RecordKey, RecordKind};

use crate::client::presence_topic;
use crate::deadlines::Deadlines;
use crate::ids::StreamHandle;
use crate::service::{dispatch, DeframedStreams};
use crate::wire::{
    Deframer, LookupMsg, LookupRecord, LookupRefusal, WireError, MAX_LOOKUP_RECORD_LEN,
};

/// Limits of the lookup service. Every table is bounded by one of these.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LookupConfig {
    /// Streams tracked at once. Default 1 024; each holds at most one incomplete 8 KiB
    /// frame, so buffers stay under 8 MiB.
    pub max_streams: usize,
    /// Fetches in flight over all streams. Default 64; a request beyond it is refused
    /// (`Busy`) and the stream stays open.
    pub max_concurrent_fetches: usize,
    /// Requests one stream may make, refused ones included. Default 16; the next one is
    /// refused (`TooManyRequests`) and the stream closed.
    pub max_requests_per_stream: u32,
    /// How long the driver has to answer a fetch. Default 20 s; then the looker is told
    /// `Refused(Busy)` and the stream is closed, so a late answer cannot be taken for the
    /// answer to a later request.
    pub fetch_timeout_secs: u64,
    /// A stream with no request in flight and no message for this long is closed, without a
    /// message. Default 60 s: a looker sends its request as soon as the stream opens.
    pub idle_timeout_secs: u64,
}

impl Default for LookupConfig {
    fn default() -> Self {
        Self {
            max_streams: 1_024,
            max_concurrent_fetches: 64,
            max_requests_per_stream: 16,
            fetch_timeout_secs: 20,
            idle_timeout_secs: 60,
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
    /// Fetch the records under these DHT keys (the presence slots `0..slots` of the owner
    /// asked for, in slot order) and hand the encoded records found to
    /// [`Lookup::handle_fetched`] for this stream, at most one per key. Records need not be
    /// checked: the looker does.
    Fetch {
        /// The stream that asked.
        stream: StreamHandle,
        /// `record_key(RecordKind::Presence, &owner, &presence_topic(slot))` for each slot.
        keys: Vec<RecordKey>,
    },
}

/// Why an input was refused. The actions queued say what the looker is told and whether its
/// stream is closed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LookupError {
    /// The bytes are not a lookup message; the stream was refused (`Malformed`) and closed.
    #[error("malformed lookup message: {0}")]
    Malformed(#[from] WireError),
    /// A message the looker may not send in its state; refused (`Malformed`) and closed.
    #[error("unexpected {message} on a lookup stream while {state}")]
    UnexpectedMessage {
        /// The message's name.
        message: &'static str,
        /// `idle` or `fetching`.
        state: &'static str,
    },
    /// The service tracks as many streams as it allows; the new one was closed.
    #[error("too many lookup streams (limit {max})")]
    TooManyStreams {
        /// The bound.
        max: usize,
    },
    /// As many fetches are in flight as allowed; refused (`Busy`), the stream stays open.
    #[error("lookup fetches full (limit {max})")]
    FetchesFull {
        /// The bound.
        max: usize,
    },
    /// The stream made as many requests as allowed; refused (`TooManyRequests`) and closed.
    #[error("too many requests on one lookup stream (limit {max})")]
    TooManyRequests {
        /// The bound.
        max: u32,
    },
}

#[derive(Debug)]
struct StreamState {
    deframer: Deframer,
    /// Requests received, refused ones included.
    requests: u32,
    /// The slots asked by the request in flight.
    fetching: Option<u8>,
}

impl StreamState {
    fn state_name(&self) -> &'static str {
        if self.fetching.is_some() {
            "fetching"
        } else {
            "idle"
        }
    }
}

/// The lookup service of one node.
#[derive(Debug)]
pub struct Lookup {
    config: LookupConfig,
    streams: HashMap<StreamHandle, StreamState>,
    /// Streams with a fetch in flight.
    fetches: usize,
    /// One deadline per stream: its fetch's timeout while fetching, its idle timeout
    /// otherwise.
    timers: Deadlines<StreamHandle>,
    /// Drained by the driver after every call: at most two actions per message, plus two
    /// per stream a timeout ends.
    actions: VecDeque<Action>,
}

impl DeframedStreams for Lookup {
    fn deframer(&mut self, stream: StreamHandle) -> Option<&mut Deframer> {
        self.streams.get_mut(&stream).map(|s| &mut s.deframer)
    }

    fn is_open(&self, stream: StreamHandle) -> bool {
        self.streams.contains_key(&stream)
    }
}

impl Lookup {
    /// An empty service.
    pub fn new(config: LookupConfig) -> Self {
        Self {
            config,
            streams: HashMap::new(),
            fetches: 0,
            timers: Deadlines::default(),
            actions: VecDeque::new(),
        }
    }

    /// Streams tracked.
    pub fn streams(&self) -> usize {
        self.streams.len()
    }

    /// Fetches in flight.
    pub fn fetches(&self) -> usize {
        self.fetches
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
    ) -> Result<(), LookupError> {
        if !self.streams.contains_key(&stream) {
            if self.streams.len() >= self.config.max_streams {
                self.actions.push_back(Action::Close { stream });
                return Err(LookupError::TooManyStreams {
                    max: self.config.max_streams,
                });
            }
            self.streams.insert(
                stream,
                StreamState {
                    deframer: Deframer::default(),
                    requests: 0,
                    fetching: None,
                },
            );
            self.set_idle(now, stream);
        }
        dispatch(
            self,
            stream,
            bytes,
            LookupMsg::decode,
            |service, msg| service.handle_message(now, stream, msg),
            |service, stream| service.refuse_and_close(stream, LookupRefusal::Malformed),
        )
    }

    /// The driver's answer to the [`Action::Fetch`] of `stream`: the encoded records it
    /// found. Sends `Records` with those that fit ([`MAX_LOOKUP_RECORD_LEN`]; longer ones
    /// cannot be presence records and are dropped), never more than the slots asked. An
    /// answer for a stream with no fetch in flight (closed, timed out) is ignored.
    pub fn handle_fetched(&mut self, now: u64, stream: StreamHandle, records: Vec<Vec<u8>>) {
        let Some(slots) = self
            .streams
            .get_mut(&stream)
            .and_then(|s| s.fetching.take())
        else {
            return;
        };
        self.fetches = self.fetches.saturating_sub(1);
        let records: Vec<LookupRecord> = records
            .into_iter()
            .filter(|r| r.len() <= MAX_LOOKUP_RECORD_LEN)
            .filter_map(|r| LookupRecord::new("lookup record", r).ok())
            .take(usize::from(slots))
            .collect();
        self.send(stream, &LookupMsg::Records(records));
        self.set_idle(now, stream);
    }

    /// The stream closed. Forgets it and its fetch in flight. Idempotent.
    pub fn handle_stream_closed(&mut self, stream: StreamHandle) {
        self.forget_stream(stream);
    }

    /// The earliest time [`Self::handle_timeout`] has work.
    pub fn poll_timeout(&self) -> Option<u64> {
        self.timers.next()
    }

    /// Ends what is due at `now`: a fetch not answered in time is refused (`Busy`) and its
    /// stream closed; an idle stream is closed.
    pub fn handle_timeout(&mut self, now: u64) {
        while let Some(stream) = self.timers.pop_due(now) {
            let fetching = self
                .streams
                .get(&stream)
                .is_some_and(|s| s.fetching.is_some());
            if fetching {
                self.refuse_and_close(stream, LookupRefusal::Busy);
            } else {
                self.close_stream(stream);
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
        msg: LookupMsg,
    ) -> Result<(), LookupError> {
        let Some(state) = self.streams.get_mut(&stream) else {
            return Ok(());
        };
        let (owner, slots) = match msg {
            LookupMsg::Request { owner, slots } if state.fetching.is_none() => (owner, slots),
            msg => {
                let error = LookupError::UnexpectedMessage {
                    message: msg.name(),
                    state: state.state_name(),
                };
                self.refuse_and_close(stream, LookupRefusal::Malformed);
                return Err(error);
            }
        };
        state.requests = state.requests.saturating_add(1);
        if state.requests > self.config.max_requests_per_stream {
            self.refuse_and_close(stream, LookupRefusal::TooManyRequests);
            return Err(LookupError::TooManyRequests {
                max: self.config.max_requests_per_stream,
            });
        }
        if self.fetches >= self.config.max_concurrent_fetches {
            self.send(stream, &LookupMsg::Refused(LookupRefusal::Busy));
            self.set_idle(now, stream);
            return Err(LookupError::FetchesFull {
                max: self.config.max_concurrent_fetches,
            });
        }
        state.fetching = Some(slots);
        self.fetches += 1;
        let deadline = now.saturating_add(self.config.fetch_timeout_secs);
        self.timers.set(stream, deadline);
        let keys = (0..slots)
            .map(|slot| record_key(RecordKind::Presence, &owner, &presence_topic(slot)))
            .collect();
        self.actions.push_back(Action::Fetch { stream, keys });
        Ok(())
    }

    fn set_idle(&mut self, now: u64, stream: StreamHandle) {
        let deadline = now.saturating_add(self.config.idle_timeout_secs);
        self.timers.set(stream, deadline);
    }

    fn refuse_and_close(&mut self, stream: StreamHandle, reason: LookupRefusal) {
        if self.streams.contains_key(&stream) {
            self.send(stream, &LookupMsg::Refused(reason));
            self.close_stream(stream);
        }
    }

    /// Closes a stream we decided to end, and forgets it.
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
        if state.fetching.is_some() {
            self.fetches = self.fetches.saturating_sub(1);
        }
        self.timers.remove(stream);
    }

    fn send(&mut self, stream: StreamHandle, msg: &LookupMsg) {
        self.actions.push_back(Action::Send {
            stream,
            bytes: msg.encode(),
        });
    }
}
