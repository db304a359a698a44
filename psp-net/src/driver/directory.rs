//! The discovery directory on the overlay's links: request-response `/psp/directory/1`
//! carrying the [`crate::directory`] protocol between nodes.
//!
//! * Every node signs a status report (its flags and entry addresses) for the next period and
//!   sends it to every elected discovery node, once per period.
//! * An elected discovery node runs a [`DiscoveryService`]: it takes the reports, votes at the
//!   period start, sends its vote and, after the vote window, its signature on the consensus
//!   to the other discovery nodes; a signer's second, different signature for one period is
//!   kept as an [`Equivocation`] for the host to report to the chain.
//! * Every node serves the latest directory holding the threshold of signatures: its own
//!   (discovery) or the one it fetched from a discovery node and verified (proxy).
//!
//! The host (psp-node) refreshes the discovery set from the chain ([`DiscoveryView`]).

use std::io;
use std::sync::Arc;

use async_trait::async_trait;
use futures::{AsyncRead, AsyncWrite};
use libp2p::request_response::{self, OutboundRequestId, ProtocolSupport};
use libp2p::{Multiaddr, PeerId, StreamProtocol};

use super::frames;
use crate::crypto::{NodeId, Sr25519Keypair};
use crate::directory::{
    default_threshold, Config, DirectoryError, DiscoveryService, Equivocation, Output,
    SignedDirectory, SignedStatus, StatusReport,
};
use crate::registry::IdentityRegistry;

/// The request-response protocol of the directory.
pub const DIRECTORY_PROTOCOL: StreamProtocol = StreamProtocol::new("/psp/directory/1");
/// Largest message: a directory of thousands of nodes fits.
const MAX_MESSAGE: usize = 4 << 20;
/// Equivocations kept for the host.
const MAX_EQUIVOCATIONS: usize = 64;

/// A directory message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DirRequest {
    /// A [`SignedStatus`].
    Status(Vec<u8>),
    /// A signed vote.
    Vote(Vec<u8>),
    /// A directory signature.
    Signature(Vec<u8>),
    /// A whole signed directory.
    Directory(Vec<u8>),
    /// Asks for the latest directory.
    Get,
}

/// The answer to a [`DirRequest`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DirResponse {
    /// Taken.
    Accepted,
    /// Refused, with the reason.
    Refused(String),
    /// The latest directory, if any.
    Latest(Option<Vec<u8>>),
}

/// Frames messages as `tag ‖ u32 length ‖ bytes`.
#[derive(Clone, Copy, Debug, Default)]
pub struct DirCodec;

const WHAT: &str = "directory";

async fn read_frame<T: AsyncRead + Unpin + Send>(io: &mut T) -> io::Result<(u8, Vec<u8>)> {
    frames::read_frame(io, MAX_MESSAGE, WHAT).await
}

async fn write_frame<T: AsyncWrite + Unpin + Send>(
    io: &mut T,
    tag: u8,
    body: &[u8],
) -> io::Result<()> {
    frames::write_frame(io, tag, body, MAX_MESSAGE, WHAT).await
}

fn bad_tag(tag: u8) -> io::Error {
    frames::bad_tag(tag, WHAT)
}

#[async_trait]
impl request_response::Codec for DirCodec {
    type Protocol = StreamProtocol;
    type Request = DirRequest;
    type Response = DirResponse;

    async fn read_request<T>(&mut self, _: &StreamProtocol, io: &mut T) -> io::Result<DirRequest>
    where
        T: AsyncRead + Unpin + Send,
    {
        let (tag, body) = read_frame(io).await?;
        Ok(match tag {
            1 => DirRequest::Status(body),
            2 => DirRequest::Vote(body),
            3 => DirRequest::Signature(body),
            4 => DirRequest::Directory(body),
            5 => DirRequest::Get,
            t => return Err(bad_tag(t)),
        })
    }

    async fn read_response<T>(&mut self, _: &StreamProtocol, io: &mut T) -> io::Result<DirResponse>
    where
        T: AsyncRead + Unpin + Send,
    {
        let (tag, body) = read_frame(io).await?;
        Ok(match tag {
            1 => DirResponse::Accepted,
            2 => DirResponse::Refused(String::from_utf8_lossy(&body).into_owned()),
            3 => DirResponse::Latest(None),
            4 => DirResponse::Latest(Some(body)),
            t => return Err(bad_tag(t)),
        })
    }

    async fn write_request<T>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        req: DirRequest,
    ) -> io::Result<()>
    where
        T: AsyncWrite + Unpin + Send,
    {
        match req {
            DirRequest::Status(b) => write_frame(io, 1, &b).await,
            DirRequest::Vote(b) => write_frame(io, 2, &b).await,
            DirRequest::Signature(b) => write_frame(io, 3, &b).await,
            DirRequest::Directory(b) => write_frame(io, 4, &b).await,
            DirRequest::Get => write_frame(io, 5, &[]).await,
        }
    }

    async fn write_response<T>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        res: DirResponse,
    ) -> io::Result<()>
    where
        T: AsyncWrite + Unpin + Send,
    {
        match res {
            DirResponse::Accepted => write_frame(io, 1, &[]).await,
            DirResponse::Refused(reason) => write_frame(io, 2, reason.as_bytes()).await,
            DirResponse::Latest(None) => write_frame(io, 3, &[]).await,
            DirResponse::Latest(Some(b)) => write_frame(io, 4, &b).await,
        }
    }
}

/// The request-response behaviour of the directory.
pub(crate) type DirBehaviour = request_response::Behaviour<DirCodec>;

pub(crate) fn behaviour() -> DirBehaviour {
    request_response::Behaviour::with_codec(
        DirCodec,
        [(DIRECTORY_PROTOCOL, ProtocolSupport::Full)],
        request_response::Config::default()
            .with_request_timeout(std::time::Duration::from_secs(10)),
    )
}

/// What the host knows from the chain, refreshed as it changes.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DiscoveryView {
    /// The elected discovery nodes: node id, libp2p peer id, address.
    pub set: Vec<(NodeId, PeerId, Multiaddr)>,
    /// This node's flags for its status report ([`crate::directory::flags`]).
    pub flags: u8,
    /// This node's entry addresses for its status report.
    pub addresses: Vec<String>,
}

/// What a node needs to take part in the directory.
#[derive(Clone)]
pub struct DirectorySetup {
    /// The node key (signs status reports; votes and signs directories when elected).
    pub key: Sr25519Keypair,
    /// The chain's genesis hash (directory signatures are bound to it).
    pub genesis: [u8; 32],
    /// Period and vote window.
    pub config: Config,
    /// The chain check for status reports.
    pub registry: Arc<dyn IdentityRegistry + Send + Sync>,
}

impl std::fmt::Debug for DirectorySetup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DirectorySetup")
            .field("key", &self.key)
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// What a fetch or a send was for.
enum Purpose {
    Fetch,
    Other,
}

/// The node task's directory state.
pub(crate) struct DirectoryNode {
    setup: DirectorySetup,
    service: DiscoveryService,
    view: DiscoveryView,
    /// The period whose next period this node last reported its status for.
    reported_in: Option<u64>,
    /// The period whose directory was last fetched (non-discovery nodes).
    fetched_in: Option<u64>,
    fetch_attempts: usize,
    /// The newest verified directory from elsewhere (served as a proxy).
    fetched: Option<SignedDirectory>,
    equivocations: Vec<Equivocation>,
    outstanding: std::collections::HashMap<OutboundRequestId, Purpose>,
}

impl DirectoryNode {
    pub(crate) fn new(setup: DirectorySetup) -> Self {
        let service = DiscoveryService::new(setup.key.clone(), setup.genesis, setup.config.clone());
        Self {
            setup,
            service,
            view: DiscoveryView::default(),
            reported_in: None,
            fetched_in: None,
            fetch_attempts: 0,
            fetched: None,
            equivocations: Vec::new(),
            outstanding: std::collections::HashMap::new(),
        }
    }

    fn me(&self) -> NodeId {
        self.service.id()
    }

    fn set_ids(&self) -> Vec<NodeId> {
        self.view.set.iter().map(|(id, _, _)| *id).collect()
    }

    fn am_discovery(&self) -> bool {
        self.view.set.iter().any(|(id, _, _)| *id == self.me())
    }

    pub(crate) fn update(
        &mut self,
        swarm_addresses: &mut Vec<(PeerId, Multiaddr)>,
        view: DiscoveryView,
    ) {
        for (_, peer, addr) in &view.set {
            swarm_addresses.push((*peer, addr.clone()));
        }
        self.view = view;
    }

    fn send_to_others(&mut self, rr: &mut DirBehaviour, request: DirRequest) {
        let me = self.me();
        for (id, peer, _) in &self.view.set {
            if *id != me {
                let rid = rr.send_request(peer, request.clone());
                self.outstanding.insert(rid, Purpose::Other);
            }
        }
    }

    /// Once a second: report status, run the discovery duties, fetch the directory.
    pub(crate) fn tick(&mut self, rr: &mut DirBehaviour, now: u64) {
        if self.view.set.is_empty() {
            return;
        }
        let period = self.service.period_at(now);
        if self.reported_in != Some(period) {
            // The first time, for the current period too (so a fresh network forms at once).
            let periods = match self.reported_in {
                None => vec![period, period + 1],
                Some(_) => vec![period + 1],
            };
            self.reported_in = Some(period);
            for p in periods {
                self.report_status(rr, now, p);
            }
        }
        let ids = self.set_ids();
        for out in self.service.poll(now, &ids) {
            match out {
                Output::BroadcastVote(b) => self.send_to_others(rr, DirRequest::Vote(b)),
                Output::BroadcastSignature(b) => self.send_to_others(rr, DirRequest::Signature(b)),
                Output::Equivocation(e) => {
                    tracing::warn!(offender = ?e.offender, period = e.period, "psp directory: a discovery node signed two directories");
                    if self.equivocations.len() < MAX_EQUIVOCATIONS {
                        self.equivocations.push(e);
                    }
                }
                Output::DirectoryComplete { period, .. } => {
                    tracing::info!(period, "psp directory: directory complete");
                }
                // `Output` is `#[non_exhaustive]` (it lives in psp-directory): every output it
                // has now is handled above; one added there is logged until this handles it.
                other => tracing::debug!(?other, "psp directory: service output not handled"),
            }
        }
        let window = period * self.setup.config.period_secs + self.setup.config.vote_window_secs;
        if !self.am_discovery() && self.fetched_in != Some(period) && now > window {
            let n = self.view.set.len();
            let (_, peer, _) = self.view.set[self.fetch_attempts % n];
            self.fetch_attempts += 1;
            self.fetched_in = Some(period);
            let rid = rr.send_request(&peer, DirRequest::Get);
            self.outstanding.insert(rid, Purpose::Fetch);
        }
    }

    fn report_status(&mut self, rr: &mut DirBehaviour, now: u64, period: u64) {
        let report = StatusReport {
            node: self.me(),
            period,
            flags: self.view.flags,
            addresses: self.view.addresses.clone(),
            issued_at: now,
        };
        let bytes = match SignedStatus::sign(report, &self.setup.key) {
            Ok(s) => s.encode(),
            Err(e) => {
                tracing::warn!(%e, "psp directory: cannot sign our status");
                return;
            }
        };
        if self.am_discovery() {
            if let Err(e) = self.service.on_status(now, &bytes, &*self.setup.registry) {
                tracing::debug!(%e, "psp directory: own status not taken");
            }
        }
        self.send_to_others(rr, DirRequest::Status(bytes));
    }

    /// Takes a whole directory (fetched, or submitted by the host): discovery nodes record its
    /// signatures (equivocation detection); every node keeps it if it verifies and is newer.
    pub(crate) fn accept_directory(
        &mut self,
        now: u64,
        bytes: &[u8],
    ) -> Result<(), DirectoryError> {
        let ids = self.set_ids();
        let recorded = if self.am_discovery() {
            self.service.on_directory(now, bytes, &ids)
        } else {
            Ok(())
        };
        let sd = SignedDirectory::decode(bytes)?;
        sd.verify(&self.setup.genesis, &ids, self.threshold(), now)?;
        if self
            .fetched
            .as_ref()
            .is_none_or(|f| f.directory.period < sd.directory.period)
        {
            self.fetched = Some(sd);
        }
        recorded
    }

    fn threshold(&self) -> usize {
        self.setup
            .config
            .threshold
            .unwrap_or_else(|| default_threshold(self.view.set.len()))
    }

    /// The newest directory with the threshold of signatures this node holds.
    pub(crate) fn latest(&self) -> Option<&SignedDirectory> {
        match (self.service.latest(), self.fetched.as_ref()) {
            (Some(a), Some(b)) if b.directory.period > a.directory.period => Some(b),
            (Some(a), _) => Some(a),
            (None, b) => b,
        }
    }

    /// The discovery set the node works with.
    pub(crate) fn set(&self) -> Vec<NodeId> {
        self.set_ids()
    }

    /// Equivocations seen so far (for the host to report).
    pub(crate) fn equivocations(&self) -> Vec<Equivocation> {
        self.equivocations.clone()
    }

    pub(crate) fn on_event(
        &mut self,
        rr: &mut DirBehaviour,
        event: request_response::Event<DirRequest, DirResponse>,
        now: u64,
    ) {
        match event {
            request_response::Event::Message {
                peer,
                message:
                    request_response::Message::Request {
                        request, channel, ..
                    },
            } => {
                let ids = self.set_ids();
                let result = match request {
                    DirRequest::Status(b) => self.service.on_status(now, &b, &*self.setup.registry),
                    DirRequest::Vote(b) => self.service.on_vote(now, &b, &ids),
                    DirRequest::Signature(b) => self.service.on_signature(now, &b, &ids),
                    DirRequest::Directory(b) => self.accept_directory(now, &b),
                    DirRequest::Get => {
                        let latest = self.latest().map(SignedDirectory::encode);
                        let _ = rr.send_response(channel, DirResponse::Latest(latest));
                        return;
                    }
                };
                let response = match result {
                    Ok(()) => DirResponse::Accepted,
                    Err(e) => {
                        tracing::debug!(%peer, %e, "psp directory: refused");
                        DirResponse::Refused(e.to_string())
                    }
                };
                let _ = rr.send_response(channel, response);
            }
            request_response::Event::Message {
                peer,
                message:
                    request_response::Message::Response {
                        request_id,
                        response,
                    },
            } => {
                self.outstanding.remove(&request_id);
                match response {
                    DirResponse::Latest(Some(bytes)) => {
                        if let Err(e) = self.accept_directory(now, &bytes) {
                            tracing::info!(%peer, %e, "psp directory: fetched directory refused");
                            self.fetched_in = None;
                        }
                    }
                    DirResponse::Latest(None) => self.fetched_in = None,
                    DirResponse::Refused(reason) => {
                        tracing::debug!(%peer, %reason, "psp directory: our message refused")
                    }
                    DirResponse::Accepted => {}
                }
            }
            request_response::Event::OutboundFailure {
                peer,
                request_id,
                error,
            } => {
                if let Some(Purpose::Fetch) = self.outstanding.remove(&request_id) {
                    self.fetched_in = None;
                }
                tracing::debug!(%peer, %error, "psp directory: request failed");
            }
            _ => {}
        }
    }
}
