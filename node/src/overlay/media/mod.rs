//! The node's media service (issue 13, points 4–6): the realtime path of PSP streams.
//!
//! ```text
//! producer ──WHIP (Bearer publish token)──▶ landing node ──WHIP (record + signature)──▶
//!     distribution nodes (the record's access points) ◀──WHEP── consumers
//! ```
//!
//! One port number, `--media-port` (30445) on `--media-ip` (127.0.0.1): HTTP signalling on
//! TCP ([`psp_webrtc::signalling`]) and WebRTC on UDP ([`psp_webrtc::WebRtcServer`]). The
//! node registers `/ip4/<--media-public-ip>/tcp/<port>/http` as its second address.
//!
//! - `POST /whip/<stream id, 64 hex>` with `Authorization: Bearer <publish token, 64 hex>`:
//!   the producer of a stream this node created (`NodeEvent::StreamCreated`); one at a time
//!   (409). Its frames feed the stream's [`psp_media::relay::Relay`] (the receipt's bitrate
//!   class, two seconds of burst), which forwards each to one WebRTC connection per access
//!   point ([`fanout`]), reconnected with backoff, dropped at the stream's expiry.
//! - `POST /whip/<stream id>` with `X-Psp-Record` and `X-Psp-Signature` ([`fanout`]): a
//!   landing node fanning out to this node. Accepted when the record verifies against the
//!   chain (landing node live, signature, not expired), names this node as an access point
//!   and is for this stream, and the signature over the offer is the landing node's.
//! - `POST /whep/<stream id>` with `PSP-Admission` and `PSP-Challenge`: a consumer of a
//!   stream whose landing node is connected here, with a session ticket of an elected oracle
//!   (`state`'s `metering` module); the bytes sent to it are metered and reported to the
//!   oracles when the epoch ends.
//! - `GET /watch/<stream id>`: the watch page.
//! - `POST /nodes/<stream id>` and `DELETE /whip/<stream id>`, with the publish token: the
//!   producer adds distribution nodes, or ends the stream ([`state`]'s `scaling` module:
//!   load reports, scaling, commands).
//!
//! Refusals answer 401 (credentials), 403 (not an access point), 404 (unknown stream), 409
//! (a publisher already), 503 (bounds), with the reason in the body, and are logged at
//! target `psp-media`. Every binary message on the data channel `media` is one SFrame frame,
//! opaque here, at most 64 KiB.
//!
//! [`state`] holds the streams and decides, without IO; this module binds the sockets, runs
//! the task that reads the WebRTC server's events, and starts the fan-out connections.

pub mod fanout;
pub mod state;
#[cfg(test)]
mod tests;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tokio::sync::mpsc;

use psp_net::{
    crypto::Sr25519Keypair,
    driver::streams::{CreatedStream, SharedLandingUpdates},
    driver::NodeHandle,
    registry::IdentityRegistry,
};
use psp_webrtc::{
    signalling, PeerId, Refusal, Route, ServerConfig, SignallingConfig, SignallingRequest,
    StreamDirectory, WebRtcServer,
};

use self::fanout::Resolve;
use self::state::{Action, MediaLimits, MediaState, MAX_FRAME_BYTES};
use super::usage::SharedChainFacts;
use super::{Metrics, Observer};

/// How often relay timers, reservations, load reports and expiries are looked at.
const TICK: Duration = Duration::from_millis(500);
/// Media-link messages from distribution nodes (load reports) waiting for the driver.
const FANOUT_MESSAGES: usize = 256;

/// Unix time in milliseconds.
fn unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// Where and how the media service runs.
#[derive(Clone, Debug)]
pub struct MediaConfig {
    /// The TCP and UDP address bound.
    pub bind: SocketAddr,
    /// The address peers reach (the WebRTC host candidate).
    pub public: SocketAddr,
    /// Bounds.
    pub limits: MediaLimits,
}

/// What the media service needs from the node.
pub struct MediaDeps {
    /// This node's identity key (its id is the key's public key).
    pub key: Arc<Sr25519Keypair>,
    /// The chain's identity registry, for stream records.
    pub registry: Arc<dyn IdentityRegistry + Send + Sync>,
    /// Finds distribution nodes' media services.
    pub resolve: Resolve,
    /// The test-only observer.
    pub observer: Option<Arc<Observer>>,
    /// The node's metrics.
    pub metrics: Option<Arc<Metrics>>,
    /// Where re-signed records of streams landing here go (the stream hub publishes them).
    pub landing_updates: SharedLandingUpdates,
    /// Consumers' session tickets and the usage meter; without it consumers need no ticket
    /// (a node that does not know its chain's genesis).
    pub usage: Option<MediaUsage>,
}

/// A node's libp2p peer and address (for the oracle exchange), from the chain.
pub type Links = Arc<
    dyn Fn(&[u8; 32]) -> Option<(psp_net::driver::PeerId, psp_net::driver::Multiaddr)>
        + Send
        + Sync,
>;

/// What metering consumers for rewards needs from the node.
pub struct MediaUsage {
    /// The chain's genesis hash (tickets and reports name it).
    pub genesis: [u8; 32],
    /// Test networks: the percentage this relay inflates its reports by (0: honest).
    pub inflate_percent: u32,
    /// Epochs, oracles and recent blocks, kept current by the chain feed.
    pub facts: SharedChainFacts,
    /// Sends the relay halves to the oracles.
    pub handle: NodeHandle,
    /// A node's libp2p peer and address, from the chain.
    pub links: Links,
}

/// A running media service; cheap to clone.
#[derive(Clone)]
pub struct MediaService {
    inner: Arc<Inner>,
}

struct Inner {
    state: Mutex<MediaState>,
    server: WebRtcServer,
    deps: MediaDeps,
    epoch: Instant,
    local: SocketAddr,
    /// Messages distribution nodes send back up fan-out connections: (stream, message).
    fanout_messages: mpsc::Sender<([u8; 32], Vec<u8>)>,
}

impl MediaService {
    /// Binds TCP and UDP on `config.bind` and starts serving on the current tokio runtime.
    pub async fn start(config: MediaConfig, deps: MediaDeps) -> Result<Self, psp_webrtc::Error> {
        let listener = tokio::net::TcpListener::bind(config.bind).await?;
        let local = listener.local_addr()?;
        let public = if config.public.port() == 0 {
            SocketAddr::new(config.public.ip(), local.port())
        } else {
            config.public
        };
        let (server, task) = WebRtcServer::bind(ServerConfig {
            bind: local,
            advertised_addr: Some(public),
            max_message_bytes: MAX_FRAME_BYTES,
            ..ServerConfig::default()
        })
        .await?;
        let mut events = server.events().ok_or(psp_webrtc::Error::ServerStopped)?;
        let (fanout_messages, mut from_fanout) = mpsc::channel(FANOUT_MESSAGES);
        let mut state = MediaState::new(deps.key.clone(), config.limits);
        if let Some(usage) = &deps.usage {
            state.meter_consumers(usage.genesis, usage.inflate_percent);
        }
        let inner = Arc::new(Inner {
            state: Mutex::new(state),
            server: server.clone(),
            deps,
            epoch: Instant::now(),
            local,
            fanout_messages,
        });
        tokio::spawn(async move {
            if let Err(e) = task.run().await {
                log::error!(target: "psp-media", "WebRTC server stopped: {e}");
            }
        });
        let gate: Arc<dyn StreamDirectory> = Arc::new(Gate(inner.clone()));
        tokio::spawn(async move {
            if let Err(e) =
                signalling::serve(listener, server, gate, SignallingConfig::default()).await
            {
                log::error!(target: "psp-media", "media signalling stopped: {e}");
            }
        });
        let driver = inner.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(TICK);
            let mut reported = state::Counts::default();
            loop {
                tokio::select! {
                    event = events.recv() => match event {
                        Some(event) => {
                            let now = driver.now_ms();
                            let actions = driver.state().on_event(now, event);
                            driver.act(actions).await;
                        }
                        None => return,
                    },
                    Some((stream, message)) = from_fanout.recv() => {
                        let actions = driver.state().on_fanout_message(driver.now_ms(), unix_ms(), stream, &message);
                        driver.act(actions).await;
                    }
                    _ = tick.tick() => {
                        let actions = driver.state().on_tick(driver.now_ms(), unix_ms());
                        driver.act(actions).await;
                        driver.report_usage().await;
                        let counts = driver.state().counts();
                        if let Some(metrics) = &driver.deps.metrics {
                            metrics.media(
                                counts.frames_in - reported.frames_in,
                                counts.frames_out - reported.frames_out,
                                counts.consumers,
                            );
                        }
                        reported = counts;
                    }
                }
            }
        });
        log::info!(
            target: "psp-media",
            "🎥 media service on {local} (TCP signalling, UDP WebRTC), announced as {public}"
        );
        Ok(Self { inner })
    }

    /// The bound address (TCP signalling and UDP WebRTC).
    pub fn local_addr(&self) -> SocketAddr {
        self.inner.local
    }

    /// A stream this node created: its producer may publish here, and its frames go to its
    /// access points.
    pub fn stream_created(&self, created: &CreatedStream) {
        let now = self.inner.now_ms();
        let new = self.inner.state().add_landing(
            now,
            unix_ms(),
            created.stream_id,
            created.publish_token,
            &created.params,
            &created.record,
        );
        let Some(new) = new else {
            return;
        };
        log::info!(
            target: "psp-media",
            "stream {} lands here; fan-out to {} access points",
            hex::encode(&new.stream_id[..4]),
            new.upstreams.len()
        );
        for upstream in new.upstreams {
            self.inner.start_upstream(upstream);
        }
    }
}

impl Inner {
    fn state(&self) -> MutexGuard<'_, MediaState> {
        // A poisoned lock only means a panic between two whole updates.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn now_ms(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }

    fn start_upstream(&self, upstream: state::NewUpstream) {
        tokio::spawn(fanout::run_upstream(
            upstream,
            self.deps.key.clone(),
            self.deps.resolve.clone(),
            self.fanout_messages.clone(),
        ));
    }

    /// Cuts the epochs that ended and sends each one's relay halves to its oracles.
    async fn report_usage(&self) {
        let Some(usage) = &self.deps.usage else {
            return;
        };
        let facts = usage
            .facts
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let cut = self.state().on_chain(&facts);
        for (epoch, halves) in cut {
            let oracles: Vec<_> = facts
                .epochs
                .get(&epoch)
                .map(|f| f.oracles.as_slice())
                .unwrap_or_default()
                .iter()
                .filter_map(|o| {
                    let (peer, addr) = (usage.links)(o)?;
                    Some((psp_net::crypto::NodeId(*o), peer, addr))
                })
                .collect();
            let bytes: u64 = halves.iter().map(|h| h.report.usage.bytes).sum();
            log::info!(
                target: "psp-usage",
                "📊 relay: {} sessions, {bytes} bytes in epoch {epoch}: reports sent to {} oracles",
                halves.len(),
                oracles.len()
            );
            let encoded = halves
                .into_iter()
                .map(|h| psp_net::usage::Half::Relay(h).encode())
                .collect();
            if usage
                .handle
                .send_relay_halves(oracles, encoded)
                .await
                .is_err()
            {
                log::warn!(target: "psp-usage", "relay reports of epoch {epoch} not sent: the overlay stopped");
            }
        }
    }

    async fn act(&self, actions: Vec<Action>) {
        for action in actions {
            let sent = match action {
                Action::Send(peer, frame) => self.server.send(peer, frame).await,
                Action::Disconnect(peer) => self.server.disconnect(peer).await,
                Action::Fanout(upstream) => {
                    self.start_upstream(upstream);
                    Ok(())
                }
                Action::Republish(record) => {
                    self.deps.landing_updates.push(record);
                    Ok(())
                }
            };
            if let Err(e) = sent {
                log::debug!(target: "psp-media", "WebRTC server: {e}");
            }
        }
    }
}

/// The signalling endpoint's view of the state.
struct Gate(Arc<Inner>);

impl StreamDirectory for Gate {
    fn serves(&self, stream_id: &str) -> bool {
        self.0.state().serves(stream_id)
    }

    fn admit(&self, request: &SignallingRequest<'_>) -> Result<(), Refusal> {
        let now = self.0.now_ms();
        let admitted = self
            .0
            .state()
            .admit(request, now, unix_ms() / 1000, &*self.0.deps.registry);
        if let Err(refusal) = &admitted {
            log::info!(
                target: "psp-media",
                "refused: {} {}: {} {}",
                request.route.as_str(),
                request.stream_id.get(..8).unwrap_or(request.stream_id),
                refusal.status,
                refusal.reason
            );
        }
        admitted
    }

    fn accepted(&self, request: &SignallingRequest<'_>, peer: PeerId) {
        log::debug!(target: "psp-media", "{} {}: {peer}", request.route.as_str(), request.stream_id);
        self.0.state().accepted(request, peer);
    }

    fn failed(&self, request: &SignallingRequest<'_>) {
        self.0.state().failed(request);
    }

    fn command(&self, request: &SignallingRequest<'_>) -> Result<String, Refusal> {
        let now = self.0.now_ms();
        let outcome = self
            .0
            .state()
            .command(request, now, unix_ms(), &*self.0.deps.registry);
        match outcome {
            Ok((answer, actions)) => {
                let inner = self.0.clone();
                tokio::spawn(async move { inner.act(actions).await });
                Ok(answer)
            }
            Err(refusal) => {
                log::info!(
                    target: "psp-media",
                    "refused: {} {} {}: {} {}",
                    request.route.method(),
                    request.route.as_str(),
                    request.stream_id.get(..8).unwrap_or(request.stream_id),
                    refusal.status,
                    refusal.reason
                );
                Err(refusal)
            }
        }
    }

    fn observe(&self, request: &SignallingRequest<'_>) {
        if let Some(observer) = &self.0.deps.observer {
            let service = match request.route {
                Route::Whip | Route::End => "media-whip",
                Route::Whep => "media-whep",
                Route::Nodes => "media-nodes",
            };
            observer.service_bytes(service, &request.to_bytes());
        }
    }
}
