//! Receipt counts between the elected oracles: request-response `/psp/receipt-counts/1`.
//!
//! Each oracle tells every other elected oracle how many receipts it issued to each
//! subscription in the epoch (psp-receipts' [`Counts`], a G-counter), so that one
//! subscription cannot draw its per-epoch bound from every oracle in turn. The sender is
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
use crate::crypto::NodeId;

/// The request-response protocol of receipt counts.
pub const COUNTS_PROTOCOL: StreamProtocol = StreamProtocol::new("/psp/receipt-counts/1");
/// Largest message: one whole [`Counts`] (13-byte header, 68 bytes per entry).
const MAX_MESSAGE: usize = 13 + MAX_COUNT_ENTRIES * 68;
/// Seconds between two sends of unchanged counts.
pub const RESEND_SECS: u64 = 15;
const WHAT: &str = "receipt counts";

/// An elected oracle as the host knows it from the chain: node id, libp2p peer id, address.
pub type OraclePeer = (NodeId, PeerId, Multiaddr);

/// The elected oracles (current and next epoch), kept current by the host.
pub type SharedOracles = Arc<RwLock<Vec<OraclePeer>>>;

/// Frames counts as `1 ‖ u32 length ‖ Counts`; answers `1` (taken) or `2 ‖ reason`.
#[derive(Clone, Copy, Debug, Default)]
pub struct CountsCodec;

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
    type Request = Vec<u8>;
    type Response = CountsResponse;

    async fn read_request<T>(&mut self, _: &StreamProtocol, io: &mut T) -> io::Result<Vec<u8>>
    where
        T: AsyncRead + Unpin + Send,
    {
        match frames::read_frame(io, MAX_MESSAGE, WHAT).await? {
            (1, body) => Ok(body),
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
        req: Vec<u8>,
    ) -> io::Result<()>
    where
        T: AsyncWrite + Unpin + Send,
    {
        frames::write_frame(io, 1, &req, MAX_MESSAGE, WHAT).await
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
    latest: Vec<Vec<u8>>,
    sent_at: u64,
    /// Peers whose address the swarm was given.
    addressed: HashSet<PeerId>,
}

impl CountsNode {
    pub(crate) fn new(me: NodeId, oracles: SharedOracles, queues: SharedQueues) -> Self {
        Self {
            me,
            oracles,
            queues,
            latest: Vec::new(),
            sent_at: 0,
            addressed: HashSet::new(),
        }
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
        event: request_response::Event<Vec<u8>, CountsResponse>,
    ) -> Option<CountsReceived> {
        match event {
            request_response::Event::Message {
                peer,
                message:
                    request_response::Message::Request {
                        request, channel, ..
                    },
            } => {
                let (response, received) = match self.take(&peer, &request) {
                    Ok(received) => (CountsResponse::Accepted, Some(received)),
                    Err(reason) => {
                        tracing::info!(%peer, %reason, "psp oracle: receipt counts refused");
                        (CountsResponse::Refused(reason), None)
                    }
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
                tracing::info!(%peer, %reason, "psp oracle: our receipt counts were refused");
                None
            }
            request_response::Event::OutboundFailure { peer, error, .. } => {
                tracing::debug!(%peer, %error, "psp oracle: receipt counts not delivered");
                None
            }
            _ => None,
        }
    }

    /// Checks and queues counts from `peer` for the hub.
    fn take(&mut self, peer: &PeerId, bytes: &[u8]) -> Result<CountsReceived, String> {
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
        HubQueues::push(&mut queues.counts_in, counts, "receipt counts");
        Ok(received)
    }
}
