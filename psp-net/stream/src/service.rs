//! What the two node services share: their actions, a bounded table of request streams,
//! each with its [`Deframer`] and an idle deadline, and the request lifecycle built on them
//! ([`RequestService`]: admit and deframe, answer or refuse once, close, time out).
//!
//! Both services answer exactly one request per stream and then close it, so a stream holds at
//! most one incomplete frame (≤ 2 + 8 192 bytes) until its first whole message or its
//! deadline, whichever comes first.

use std::collections::{BTreeSet, HashMap, VecDeque};

use psp_rendezvous::StreamHandle;

use crate::error::StreamError;
use crate::wire::{Deframer, LandingMsg, OracleMsg, WireError};

/// What the driver must do, in order, after every call into a service.
#[derive(Clone, PartialEq, Eq, Debug)]
#[non_exhaustive]
pub enum Action {
    /// Write these bytes (one whole frame) on the stream.
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
    /// A stream was created (landing node only; before its [`Action::Publish`]): the media
    /// path must accept its producer, who shows `publish_token`, at up to `params`.
    Created {
        /// The stream.
        stream_id: crate::record::StreamId,
        /// [`crate::record::publish_token`] of the receipt's spend id.
        publish_token: [u8; 32],
        /// What the receipt allows (bitrate class, lifetime, distribution nodes).
        params: psp_receipts::StreamParams,
        /// The signed record's bytes.
        record: Vec<u8>,
    },
    /// Publish `record` in the DHT under `key` (landing node only): the bytes of a signed
    /// [`crate::record::StreamRecord`], key [`crate::record::dht_key`] of the landing node and
    /// the stream id.
    Publish {
        /// The DHT key.
        key: [u8; 32],
        /// The record bytes.
        record: Vec<u8>,
    },
}

/// Request streams of a service: at most `max` at once, each closed at its deadline if no
/// whole request arrived.
#[derive(Debug)]
pub(crate) struct RequestStreams {
    max: usize,
    timeout_secs: u64,
    open: HashMap<StreamHandle, (Deframer, u64)>,
    deadlines: BTreeSet<(u64, StreamHandle)>,
}

impl RequestStreams {
    pub(crate) fn new(max: usize, timeout_secs: u64) -> Self {
        Self {
            max,
            timeout_secs,
            open: HashMap::new(),
            deadlines: BTreeSet::new(),
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.open.len()
    }

    /// Feeds bytes of `stream`, admitting it if new. Returns the first whole body, if one
    /// completed (the service answers it and closes the stream, so later ones are not read).
    pub(crate) fn feed(
        &mut self,
        now: u64,
        stream: StreamHandle,
        bytes: &[u8],
        what: &'static str,
    ) -> Result<Option<Vec<u8>>, StreamError> {
        if !self.open.contains_key(&stream) {
            if self.open.len() >= self.max {
                return Err(StreamError::TooManyStreams { max: self.max });
            }
            let deadline = now.saturating_add(self.timeout_secs);
            self.open.insert(stream, (Deframer::default(), deadline));
            self.deadlines.insert((deadline, stream));
        }
        let Some((deframer, _)) = self.open.get_mut(&stream) else {
            return Ok(None);
        };
        let bodies = deframer
            .feed(bytes)
            .map_err(|e: WireError| StreamError::malformed(what)(e))?;
        Ok(bodies.into_iter().next())
    }

    /// Forgets `stream`; whether it was open.
    pub(crate) fn remove(&mut self, stream: StreamHandle) -> bool {
        match self.open.remove(&stream) {
            Some((_, deadline)) => {
                self.deadlines.remove(&(deadline, stream));
                true
            }
            None => false,
        }
    }

    pub(crate) fn next_deadline(&self) -> Option<u64> {
        self.deadlines.first().map(|&(at, _)| at)
    }

    /// Removes and returns a stream whose deadline is at or before `now`.
    pub(crate) fn pop_due(&mut self, now: u64) -> Option<StreamHandle> {
        let &(at, stream) = self.deadlines.first()?;
        if at > now {
            return None;
        }
        self.deadlines.pop_first();
        self.open.remove(&stream);
        Some(stream)
    }
}

/// A service's answer message: encodable, with a refusal for every error.
pub(crate) trait Answer {
    /// The frame to write.
    fn encode(&self) -> Vec<u8>;
    /// The `Refused` message telling the requester why `error`.
    fn refusal(error: &StreamError) -> Self;
}

impl Answer for OracleMsg {
    fn encode(&self) -> Vec<u8> {
        OracleMsg::encode(self)
    }

    fn refusal(error: &StreamError) -> Self {
        Self::Refused(error.oracle_refusal())
    }
}

impl Answer for LandingMsg {
    fn encode(&self) -> Vec<u8> {
        LandingMsg::encode(self)
    }

    fn refusal(error: &StreamError) -> Self {
        Self::Refused(error.landing_refusal())
    }
}

/// The request lifecycle both services share: one request per stream, answered (or refused)
/// once, then closed; streams silent past their deadline closed. The service checks the
/// request in between ([`Self::feed`] then [`Self::reply`]) and the driver drains
/// [`Self::poll_action`] after every call.
#[derive(Debug)]
pub(crate) struct RequestService {
    streams: RequestStreams,
    /// At most three actions (publish, answer, close) per request, drained after every call.
    actions: VecDeque<Action>,
}

impl RequestService {
    pub(crate) fn new(max_streams: usize, timeout_secs: u64) -> Self {
        Self {
            streams: RequestStreams::new(max_streams, timeout_secs),
            actions: VecDeque::new(),
        }
    }

    /// Streams waiting for their request.
    pub(crate) fn streams(&self) -> usize {
        self.streams.len()
    }

    /// Feeds bytes of `stream` (`what` names its frames in errors). Returns the request's
    /// body once whole; an error is answered with `M`'s refusal (the stream closed) and
    /// returned for the log.
    pub(crate) fn feed<M: Answer>(
        &mut self,
        now: u64,
        stream: StreamHandle,
        bytes: &[u8],
        what: &'static str,
    ) -> Result<Option<Vec<u8>>, StreamError> {
        self.streams
            .feed(now, stream, bytes, what)
            .inspect_err(|e| self.answer(stream, M::refusal(e)))
    }

    /// Answers the request of `stream` with `result`'s message, or its error's refusal
    /// (returned for the log), and closes the stream.
    pub(crate) fn reply<M: Answer>(
        &mut self,
        stream: StreamHandle,
        result: Result<M, StreamError>,
    ) -> Result<(), StreamError> {
        match result {
            Ok(msg) => {
                self.answer(stream, msg);
                Ok(())
            }
            Err(e) => {
                self.answer(stream, M::refusal(&e));
                Err(e)
            }
        }
    }

    /// Queues `action` (before the answer it goes with).
    pub(crate) fn push(&mut self, action: Action) {
        self.actions.push_back(action);
    }

    /// The stream closed. Idempotent.
    pub(crate) fn stream_closed(&mut self, stream: StreamHandle) {
        self.streams.remove(stream);
    }

    /// The earliest time [`Self::handle_timeout`] has work.
    pub(crate) fn poll_timeout(&self) -> Option<u64> {
        self.streams.next_deadline()
    }

    /// Closes streams that did not deliver a request by their deadline.
    pub(crate) fn handle_timeout(&mut self, now: u64) {
        while let Some(stream) = self.streams.pop_due(now) {
            self.actions.push_back(Action::Close { stream });
        }
    }

    /// The next action to run.
    pub(crate) fn poll_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }

    /// Sends the one answer of `stream` and closes it (also a stream refused before it was
    /// admitted, which the table never held).
    fn answer<M: Answer>(&mut self, stream: StreamHandle, msg: M) {
        self.streams.remove(stream);
        self.actions.push_back(Action::Send {
            stream,
            bytes: msg.encode(),
        });
        self.actions.push_back(Action::Close { stream });
    }
}

/// The public lifecycle methods of a service holding a [`RequestService`] in `requests`:
/// `streams`, `handle_stream_closed`, `poll_timeout`, `handle_timeout` and `poll_action`.
macro_rules! request_lifecycle {
    () => {
        /// Streams waiting for their request.
        pub fn streams(&self) -> usize {
            self.requests.streams()
        }

        /// The stream closed. Idempotent.
        pub fn handle_stream_closed(&mut self, stream: StreamHandle) {
            self.requests.stream_closed(stream);
        }

        /// The earliest time [`Self::handle_timeout`] has work.
        pub fn poll_timeout(&self) -> Option<u64> {
            self.requests.poll_timeout()
        }

        /// Closes streams that did not deliver a request by their deadline.
        pub fn handle_timeout(&mut self, now: u64) {
            self.requests.handle_timeout(now);
        }

        /// The next action to run.
        pub fn poll_action(&mut self) -> Option<Action> {
            self.requests.poll_action()
        }
    };
}
pub(crate) use request_lifecycle;
