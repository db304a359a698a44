//! The oracle exchange, request-response `/psp/oracle-exchange/1`: receipt and token counts
//! between the elected oracles, and relays' usage halves to them.
//!
//! **Relay halves** (issue 14, point 3): when an epoch ends, a distribution or landing node
//! sends its signed half of each session it served to every oracle elected for that epoch
//! ([`crate::driver::NodeHandle::send_relay_halves`]). A half needs no link authentication:
//! it carries the relay's signature and the oracle's ticket, which the oracle's collector
//! ([`super::usage::SharedUsage`]) checks before it answers; the answer says whether it was
//! taken and why not.
//!
//! **Receipt and token counts**: each oracle tells every other elected oracle how many
//! stream receipts, and apart from them how many consumer tokens, it issued to each
//! subscription in the epoch (psp-receipts' [`Counts`], a G-counter, tagged by
//! [`CountsKind`]), so that one subscription cannot draw its per-epoch bounds from every
//! oracle in turn. The sender is
//! authenticated by the link (Noise: its libp2p peer id), which the host's view of the
//! elected oracles ([`OraclePeer`]) maps to a node id; only entries that name the sender as
//! the issuing oracle are kept, so an oracle vouches for its own counts only. What arrives
//! goes to the stream hub through [`HubQueues::counts_in`]; what the hub's issuer counted goes
//! out from [`HubQueues::counts_out`] as soon as it changes, and again every
//! [`RESEND_SECS`] (an oracle that restarted, or a message lost with a link, catches up).

use std::collections::HashSet;
use std::io;
use std::sync::{Arc, RwLock};

use async_trait::async_trait;
use futures::{AsyncRead, AsyncWrite};
use libp2p::request_response::{self, ProtocolSupport};
use libp2p::{Multiaddr, PeerId, StreamProtocol};
use psp_receipts::issuer::MAX_COUNT_ENTRIES;
use psp_receipts::{Counts, OracleId};

use super::frames;
use super::messaging::{HubQueues, SharedQueues};
use super::usage::SharedUsage;
use crate::crypto::NodeId;
use psp_usage::report::MAX_HALF_LEN;

/// The request-response protocol of receipt counts.
pub const COUNTS_PROTOCOL: StreamProtocol = StreamProtocol::new("/psp/oracle-exchange/1");
/// Largest message: one whole [`Counts`] (13-byte header, 68 bytes per entry).
const MAX_MESSAGE: usize = 13 + MAX_COUNT_ENTRIES * 68;
/// Seconds between two sends of unchanged counts.
pub const RESEND_SECS: u64 = 15;
const WHAT: &str = "oracle exchange";

/// An elected oracle as the host knows it from the chain: node id, libp2p peer id, address.
pub type OraclePeer = (NodeId, PeerId, Multiaddr);

/// The elected oracles (current and next epoch), kept current by the host.
pub type SharedOracles = Arc<RwLock<Vec<OraclePeer>>>;

/// Frames counts as `1 ‖ u32 length ‖ Counts` and relay halves as `3 ‖ u32 length ‖ half`;
/// answers `1` (taken) or `2 ‖ reason`.
#[derive(Clone, Copy, Debug, Default)]
pub struct CountsCodec;

/// A request on the oracle exchange.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ExchangeRequest {
    /// An oracle's receipt counts (psp-receipts' [`Counts`], encoded).
    Counts(Vec<u8>),
    /// A relay's usage half (psp-usage's `Half`, encoded).
    RelayHalf(Vec<u8>),
    /// An oracle's consumer-token counts ([`Counts`] of its token issuer, encoded).
    TokenCounts(Vec<u8>),
}

/// Which issuer's counts: stream receipts or consumer tokens (bounded apart).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CountsKind {
    /// Stream-creation receipts.
    Receipts,
    /// Consumer tokens.
    Tokens,
}

const TAG_COUNTS: u8 = 1;
const TAG_RELAY_HALF: u8 = 3;
const TAG_TOKEN_COUNTS: u8 = 4;

/// The answer to counts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CountsResponse {
    /// Taken.
    Accepted,
    /// Refused, with the reason.
    Refused(String),
}

#[async_trait]
impl request_response::Codec for CountsCodec {
    type Protocol = StreamProtocol;
    type Request = ExchangeRequest;
    type Response = CountsResponse;

    async fn read_request<T>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
    ) -> io::Result<ExchangeRequest>
    where
        T: AsyncRead + Unpin + Send,
    {
        match frames::read_frame(io, MAX_MESSAGE, WHAT).await? {
            (TAG_COUNTS, body) => Ok(ExchangeRequest::Counts(body)),
            (TAG_TOKEN_COUNTS, body) => Ok(ExchangeRequest::TokenCounts(body)),
            (TAG_RELAY_HALF, body) if body.len() <= MAX_HALF_LEN => {
                Ok(ExchangeRequest::RelayHalf(body))
            }
            (TAG_RELAY_HALF, body) => Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("relay half of {} bytes (max {MAX_HALF_LEN})", body.len()),
            )),
            (tag, _) => Err(frames::bad_tag(tag, WHAT)),
        }
    }

    async fn read_response<T>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
    ) -> io::Result<CountsResponse>
    where
        T: AsyncRead + Unpin + Send,
    {
        match frames::read_frame(io, 1_024, WHAT).await? {
            (1, _) => Ok(CountsResponse::Accepted),
            (2, reason) => Ok(CountsResponse::Refused(
                String::from_utf8_lossy(&reason).into_owned(),
            )),
            (tag, _) => Err(frames::bad_tag(tag, WHAT)),
        }
    }

    async fn write_request<T>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        req: ExchangeRequest,
    ) -> io::Result<()>
    where
        T: AsyncWrite + Unpin + Send,
    {
        let (tag, body) = match &req {
            ExchangeRequest::Counts(body) => (TAG_COUNTS, body),
            ExchangeRequest::RelayHalf(body) => (TAG_RELAY_HALF, body),
            ExchangeRequest::TokenCounts(body) => (TAG_TOKEN_COUNTS, body),
        };
        frames::write_frame(io, tag, body, MAX_MESSAGE, WHAT).await
    }

    async fn write_response<T>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        res: CountsResponse,
    ) -> io::Result<()>
    where
        T: AsyncWrite + Unpin + Send,
    {
        match res {
            CountsResponse::Accepted => frames::write_frame(io, 1, &[], 1_024, WHAT).await,
            CountsResponse::Refused(reason) => {
                let reason: String = reason.chars().take(200).collect();
                frames::write_frame(io, 2, reason.as_bytes(), 1_024, WHAT).await
            }
        }
    }
}

/// The request-response behaviour of receipt counts.
pub(crate) type CountsBehaviour = request_response::Behaviour<CountsCodec>;

pub(crate) fn behaviour() -> CountsBehaviour {
    request_response::Behaviour::with_codec(
        CountsCodec,
        [(COUNTS_PROTOCOL, ProtocolSupport::Full)],
        request_response::Config::default()
            .with_request_timeout(std::time::Duration::from_secs(10)),
    )
}

/// Counts taken from another oracle, for the host's log and tests.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CountsReceived {
    /// The oracle that sent them.
    pub from: NodeId,
    /// The epoch counted.
    pub epoch: u64,
    /// Entries kept (those naming the sender as the issuer).
    pub entries: usize,
    /// Receipts those entries count, summed.
    pub issued: u64,
}

/// The node task's side of the exchange.
pub(crate) struct CountsNode {
    me: NodeId,
    oracles: SharedOracles,
    queues: SharedQueues,
    /// The latest own counts (encoded messages) and when they were last sent.
    latest: Vec<ExchangeRequest>,
    sent_at: u64,
    /// Peers whose address the swarm was given.
    addressed: HashSet<PeerId>,
    /// The usage service relay halves go to (this node as an oracle).
    usage: Option<SharedUsage>,
}

impl CountsNode {
    pub(crate) fn new(
        me: NodeId,
        oracles: SharedOracles,
        queues: SharedQueues,
        usage: Option<SharedUsage>,
    ) -> Self {
        Self {
            me,
            oracles,
            queues,
            latest: Vec::new(),
            sent_at: 0,
            addressed: HashSet::new(),
            usage,
        }
    }

    /// Sends each of `halves` (encoded relay halves) to each of `to`; returns the peer
    /// addresses the swarm must learn. A half for this node itself goes straight to its
    /// usage service.
    pub(crate) fn send_relay_halves(
        &mut self,
        rr: &mut CountsBehaviour,
        to: Vec<OraclePeer>,
        halves: Vec<Vec<u8>>,
    ) -> Vec<(PeerId, Multiaddr)> {
        let mut addresses = Vec::new();
        for (id, peer, addr) in to {
            if id == self.me {
                for half in &halves {
                    if let Err(reason) = self.take_half(half) {
                        tracing::info!(%reason, "psp usage: own relay half refused");
                    }
                }
                continue;
            }
            if self.addressed.insert(peer) {
                addresses.push((peer, addr));
            }
            for half in &halves {
                rr.send_request(&peer, ExchangeRequest::RelayHalf(half.clone()));
            }
        }
        addresses
    }

    /// Gives a relay half to this node's collector.
    fn take_half(&self, bytes: &[u8]) -> Result<(), String> {
        let usage = self
            .usage
            .as_ref()
            .ok_or("this node collects no usage reports")?;
        let accepted = usage
            .lock()
            .collector_mut()
            .receive_bytes(bytes)
            .map_err(|e| e.to_string())?;
        tracing::debug!(?accepted, "psp usage: relay half taken");
        Ok(())
    }

    fn view(&self) -> Vec<OraclePeer> {
        self.oracles
            .read()
            .map(|o| o.clone())
            .unwrap_or_else(|e| e.into_inner().clone())
    }

    /// Once a second: sends new own counts to the other oracles (or the latest again, every
    /// [`RESEND_SECS`]); returns the peer addresses the swarm must learn.
    pub(crate) fn tick(&mut self, rr: &mut CountsBehaviour, now: u64) -> Vec<(PeerId, Multiaddr)> {
        let fresh = {
            let mut queues = self.queues.lock().unwrap_or_else(|e| e.into_inner());
            queues.counts_out.take()
        };
        let due = match fresh {
            Some(latest) => {
                self.latest = latest;
                true
            }
            None => now >= self.sent_at.saturating_add(RESEND_SECS),
        };
        let mut addresses = Vec::new();
        if !due || self.latest.is_empty() {
            return addresses;
        }
        self.sent_at = now;
        for (id, peer, addr) in self.view() {
            if id == self.me {
                continue;
            }
            if self.addressed.insert(peer) {
                addresses.push((peer, addr));
            }
            for message in &self.latest {
                rr.send_request(&peer, message.clone());
            }
        }
        addresses
    }

    /// Takes a request or logs an answer; returns what was taken from another oracle.
    pub(crate) fn on_event(
        &mut self,
        rr: &mut CountsBehaviour,
        event: request_response::Event<ExchangeRequest, CountsResponse>,
    ) -> Option<CountsReceived> {
        match event {
            request_response::Event::Message {
                peer,
                message:
                    request_response::Message::Request {
                        request, channel, ..
                    },
            } => {
                let (response, received) = match request {
                    ExchangeRequest::Counts(bytes) => {
                        self.answer_counts(&peer, CountsKind::Receipts, &bytes)
                    }
                    ExchangeRequest::TokenCounts(bytes) => {
                        self.answer_counts(&peer, CountsKind::Tokens, &bytes)
                    }
                    ExchangeRequest::RelayHalf(bytes) => match self.take_half(&bytes) {
                        Ok(()) => (CountsResponse::Accepted, None),
                        Err(reason) => {
                            tracing::info!(%peer, %reason, "psp usage: relay half refused");
                            (CountsResponse::Refused(reason), None)
                        }
                    },
                };
                let _ = rr.send_response(channel, response);
                received
            }
            request_response::Event::Message {
                peer,
                message:
                    request_response::Message::Response {
                        response: CountsResponse::Refused(reason),
                        ..
                    },
            } => {
                tracing::info!(%peer, %reason, "psp oracle: our exchange request was refused");
                None
            }
            request_response::Event::OutboundFailure { peer, error, .. } => {
                tracing::info!(%peer, %error, "psp oracle: exchange request not delivered");
                None
            }
            _ => None,
        }
    }

    /// Takes counts of `kind` from `peer`: the answer, and what was taken.
    fn answer_counts(
        &mut self,
        peer: &PeerId,
        kind: CountsKind,
        bytes: &[u8],
    ) -> (CountsResponse, Option<CountsReceived>) {
        match self.take(peer, kind, bytes) {
            Ok(received) => (CountsResponse::Accepted, Some(received)),
            Err(reason) => {
                tracing::info!(%peer, %reason, ?kind, "psp oracle: counts refused");
                (CountsResponse::Refused(reason), None)
            }
        }
    }

    /// Checks and queues counts of `kind` from `peer` for the hub.
    fn take(
        &mut self,
        peer: &PeerId,
        kind: CountsKind,
        bytes: &[u8],
    ) -> Result<CountsReceived, String> {
        let from = self
            .view()
            .into_iter()
            .find(|(_, p, _)| p == peer)
            .map(|(id, _, _)| id)
            .ok_or("the sender is not an elected oracle")?;
        let mut counts = Counts::decode(bytes).map_err(|e| e.to_string())?;
        let issuer = OracleId(from.0);
        let before = counts.entries.len();
        counts.entries.retain(|e| e.oracle == issuer);
        if counts.entries.len() != before {
            tracing::info!(
                ?from,
                dropped = before - counts.entries.len(),
                "psp oracle: counts naming another oracle dropped"
            );
        }
        let received = CountsReceived {
            from,
            epoch: counts.epoch,
            entries: counts.entries.len(),
            issued: counts.entries.iter().map(|e| u64::from(e.issued)).sum(),
        };
        let mut queues = self.queues.lock().unwrap_or_else(|e| e.into_inner());
        HubQueues::push(&mut queues.counts_in, (kind, counts), "oracle counts");
        Ok(received)
    }
}
