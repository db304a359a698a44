//! What the two node services share: their actions, and a bounded table of request streams,
//! each with its [`Deframer`] and an idle deadline.
//!
//! Both services answer exactly one request per stream and then close it, so a stream holds at
//! most one incomplete frame (≤ 2 + 8 192 bytes) until its first whole message or its
//! deadline, whichever comes first.

use std::collections::{BTreeSet, HashMap};

use psp_rendezvous::StreamHandle;

use crate::error::StreamError;
use crate::wire::{Deframer, WireError};

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
    /// Publish `record` in the DHT under `key` (landing node only): the bytes of a signed
    /// [`crate::record::StreamRecord`], key [`crate::record::dht_key`] of its stream id.
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
