//! The elected oracle's `usage` service, sans IO: tickets for solved puzzles and report
//! halves for the collector, one request per circuit stream.
//!
//! A client opens a stream to the oracle with BEGIN name [`USAGE_SERVICE`] and writes one
//! frame ([`crate::wire`]): a `TicketRequest` or a `Report`. [`UsageService::handle_data`]
//! deframes it and answers once, then closes the stream:
//!
//! | request | checked by | answer |
//! |---|---|---|
//! | `TicketRequest(solution)` | [`TicketIssuer::issue`] | `Ticket(ticket)` or `Refused(reason)` |
//! | `Report(half)` | [`Collector::receive`] | `Accepted` or `Refused(reason)` |
//! | anything else (an answer type, a bad frame) | | `Refused(Malformed)` |
//!
//! Beyond [`ServiceConfig::max_streams`] streams a new stream is answered `Refused(Busy)` and
//! closed; a stream that has not delivered its whole request by its deadline
//! ([`ServiceConfig::request_timeout_secs`] after its first bytes) is closed. A stream holds
//! at most one incomplete frame of ≤ 2 + [`MAX_USAGE_BODY_LEN`] bytes (a longer frame is
//! refused as soon as that much is buffered), so the buffers stay under 1 MB with the
//! defaults. Every refusal also comes back as `Err`, for the log.
//!
//! Driving it: feed every stream's bytes to [`UsageService::handle_data`], report closed
//! streams with [`UsageService::handle_stream_closed`], call [`UsageService::handle_timeout`]
//! at [`UsageService::poll_timeout`], and after every call run [`UsageService::poll_action`]'s
//! actions in order. Once the service closed a stream it has forgotten it: the driver must
//! not feed it that stream's later bytes (they would open a new request). Recent blocks,
//! epochs and batches go through [`UsageService::issuer_mut`] and
//! [`UsageService::collector_mut`].

use std::collections::{BTreeSet, HashMap, VecDeque};

use psp_rendezvous::wire::{Deframer, LENGTH_PREFIX_LEN};
use psp_rendezvous::StreamHandle;

use crate::collect::{Accepted, Collector};
use crate::ticket::TicketIssuer;
use crate::wire::{UsageMsg, MAX_USAGE_BODY_LEN};
use crate::UsageError;

/// The BEGIN name of the oracle's `usage` service on a circuit stream.
pub const USAGE_SERVICE: &str = "usage";

/// Limits of the `usage` service.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServiceConfig {
    /// Request streams held at once. Default 1 024; each holds at most 2 + 781 bytes.
    pub max_streams: usize,
    /// How long a stream may take to deliver its request, from its first bytes. Default
    /// 30 s.
    pub request_timeout_secs: u64,
}

impl Default for ServiceConfig {
    fn default() -> Self {
        Self {
            max_streams: 1_024,
            request_timeout_secs: 30,
        }
    }
}

/// What the driver must do, in order, after every call into the service.
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
}

/// What [`UsageService::handle_data`] did with bytes that did not end in a refusal, for the
/// host's metrics.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[non_exhaustive]
pub enum Handled {
    /// The request is not whole yet; nothing was answered.
    Pending,
    /// A ticket was issued and sent.
    TicketIssued,
    /// A half was taken by the collector (held, or paired) and `Accepted` sent.
    HalfAccepted(Accepted),
}

/// A stream waiting for its request.
#[derive(Debug)]
struct Open {
    deframer: Deframer,
    deadline: u64,
}

/// The `usage` service of one elected oracle; see the module docs.
#[derive(Debug)]
pub struct UsageService {
    issuer: TicketIssuer,
    collector: Collector,
    config: ServiceConfig,
    open: HashMap<StreamHandle, Open>,
    deadlines: BTreeSet<(u64, StreamHandle)>,
    /// At most two actions (answer, close) per request, drained after every call.
    actions: VecDeque<Action>,
}

impl UsageService {
    /// The service issuing tickets with `issuer` and pairing halves in `collector`.
    pub fn new(issuer: TicketIssuer, collector: Collector, config: ServiceConfig) -> Self {
        Self {
            issuer,
            collector,
            config,
            open: HashMap::new(),
            deadlines: BTreeSet::new(),
            actions: VecDeque::new(),
        }
    }

    /// The ticket issuer.
    pub fn issuer(&self) -> &TicketIssuer {
        &self.issuer
    }

    /// The ticket issuer, to note finalized blocks.
    pub fn issuer_mut(&mut self) -> &mut TicketIssuer {
        &mut self.issuer
    }

    /// The collector.
    pub fn collector(&self) -> &Collector {
        &self.collector
    }

    /// The collector, to open epochs and take batches.
    pub fn collector_mut(&mut self) -> &mut Collector {
        &mut self.collector
    }

    /// The limits in force.
    pub fn config(&self) -> &ServiceConfig {
        &self.config
    }

    /// Streams waiting for their request.
    pub fn streams(&self) -> usize {
        self.open.len()
    }

    /// Bytes arrived on `stream` at `now` (unix seconds). `Err` says what was refused, for
    /// the log; the queued actions say what the requester is told.
    pub fn handle_data(
        &mut self,
        now: u64,
        stream: StreamHandle,
        bytes: &[u8],
    ) -> Result<Handled, UsageError> {
        let served = match self.feed(now, stream, bytes) {
            Ok(None) => return Ok(Handled::Pending),
            Ok(Some(body)) => self.serve(now, &body),
            Err(e) => Err(e),
        };
        match served {
            Ok((answer, handled)) => {
                self.answer(stream, &answer);
                Ok(handled)
            }
            Err(e) => {
                self.answer(stream, &UsageMsg::Refused(e.refusal()));
                Err(e)
            }
        }
    }

    /// The stream closed. Idempotent.
    pub fn handle_stream_closed(&mut self, stream: StreamHandle) {
        self.forget(stream);
    }

    /// The earliest time [`Self::handle_timeout`] has work.
    pub fn poll_timeout(&self) -> Option<u64> {
        self.deadlines.first().map(|&(at, _)| at)
    }

    /// Closes streams that did not deliver their request by their deadline.
    pub fn handle_timeout(&mut self, now: u64) {
        while let Some(&(at, stream)) = self.deadlines.first() {
            if at > now {
                break;
            }
            self.deadlines.pop_first();
            self.open.remove(&stream);
            self.actions.push_back(Action::Close { stream });
        }
    }

    /// The next action to run.
    pub fn poll_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }

    /// Feeds bytes of `stream`, admitting it if new. Returns its first whole body, if one
    /// completed (the service answers it and closes the stream, so later ones are not read).
    fn feed(
        &mut self,
        now: u64,
        stream: StreamHandle,
        bytes: &[u8],
    ) -> Result<Option<Vec<u8>>, UsageError> {
        if !self.open.contains_key(&stream) {
            if self.open.len() >= self.config.max_streams {
                return Err(UsageError::TooManyStreams {
                    max: self.config.max_streams,
                });
            }
            let deadline = now.saturating_add(self.config.request_timeout_secs);
            self.open.insert(
                stream,
                Open {
                    deframer: Deframer::default(),
                    deadline,
                },
            );
            self.deadlines.insert((deadline, stream));
        }
        let Some(open) = self.open.get_mut(&stream) else {
            return Ok(None);
        };
        let bodies = open
            .deframer
            .feed(bytes)
            .map_err(|source| UsageError::Framing {
                what: "usage request frame",
                source,
            })?;
        if let Some(body) = bodies.into_iter().next() {
            return Ok(Some(body));
        }
        // The shared deframer accepts frames up to 8 KiB; no usage message is that long, so a
        // partial frame past the largest one is refused now rather than buffered.
        let buffered = open.deframer.buffered();
        if buffered > LENGTH_PREFIX_LEN + MAX_USAGE_BODY_LEN {
            return Err(UsageError::OutOfBounds {
                field: "usage request frame length",
                value: buffered as u64,
                min: LENGTH_PREFIX_LEN as u64,
                max: (LENGTH_PREFIX_LEN + MAX_USAGE_BODY_LEN) as u64,
            });
        }
        Ok(None)
    }

    /// Checks and carries out one request: the answer and what happened.
    fn serve(&mut self, now: u64, body: &[u8]) -> Result<(UsageMsg, Handled), UsageError> {
        match UsageMsg::decode(body)? {
            UsageMsg::TicketRequest(solution) => {
                let ticket = self.issuer.issue(now, &solution)?;
                Ok((UsageMsg::Ticket(ticket), Handled::TicketIssued))
            }
            UsageMsg::Report(half) => {
                let accepted = self.collector.receive(&half)?;
                Ok((UsageMsg::Accepted, Handled::HalfAccepted(accepted)))
            }
            other => Err(UsageError::UnexpectedMessage {
                message: other.name(),
                state: "awaiting a ticket request or a report",
            }),
        }
    }

    /// Sends the one answer of `stream` and closes it (also a stream refused before it was
    /// admitted, which the table never held).
    fn answer(&mut self, stream: StreamHandle, msg: &UsageMsg) {
        self.forget(stream);
        self.actions.push_back(Action::Send {
            stream,
            bytes: msg.encode(),
        });
        self.actions.push_back(Action::Close { stream });
    }

    fn forget(&mut self, stream: StreamHandle) {
        if let Some(open) = self.open.remove(&stream) {
            self.deadlines.remove(&(open.deadline, stream));
        }
    }
}
