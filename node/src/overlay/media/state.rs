//! The media service's streams and peers, without IO: who may publish or watch what
//! ([`MediaState::admit`]), and what each WebRTC event makes the service do ([`Action`]s).
//! The driver ([`super`]) holds it behind one lock, shared by the signalling endpoint and the
//! task that reads the WebRTC server's events. Distribution scaling and the producer's
//! commands are in [`scaling`]; consumers' session tickets and the usage meter in
//! [`metering`].

mod metering;
mod scaling;

use std::collections::HashMap;
use std::sync::Arc;

use psp_media::load::Scaling;
use psp_media::relay::{Event, Ingest, Relay, RelayConfig, SubscriberId};
use psp_net::{
    crypto::{sr25519_verify, Sr25519Keypair},
    receipts::{BitrateClass, StreamParams},
    registry::IdentityRegistry,
    stream::record::{verify_stream_record, StreamRecord, MAX_RECORD_LEN},
};
use psp_webrtc::{GoneReason, PeerId, Refusal, Route, ServerEvent, SignallingRequest};
use tokio::sync::mpsc;

use super::fanout::{fanout_message, RECORD_HEADER, SIGNATURE_HEADER};

/// Largest frame relayed: one data-channel message, which every WebRTC stack takes without
/// negotiating `a=max-message-size` (64 KiB).
pub const MAX_FRAME_BYTES: usize = 64 * 1024;

/// A publisher slot or a consumer place reserved at admission and not accepted or failed
/// within this long is released (the signalling request was cut off in between).
const RESERVATION_MS: u64 = 30_000;

/// Frames buffered between a landing node's relay and one fan-out connection.
pub const UPSTREAM_QUEUE: usize = 64;

/// Bounds of one node's media service.
#[derive(Clone, Debug)]
pub struct MediaLimits {
    /// Streams this node lands (created with its receipts) at once.
    pub max_landing_streams: usize,
    /// Streams this node distributes at once.
    pub max_distributed_streams: usize,
    /// Consumers of one distributed stream.
    pub max_consumers: usize,
    /// Bytes queued per subscriber of a relay (consumer or fan-out connection).
    pub queue_bytes: usize,
    /// What this node sends to consumers at most, all streams together (`--media-capacity`):
    /// its load reports measure against it.
    pub capacity_bytes_per_sec: u64,
    /// How often a distribution node reports its load to a stream's landing node.
    pub load_report_ms: u64,
}

impl Default for MediaLimits {
    fn default() -> Self {
        Self {
            max_landing_streams: 64,
            max_distributed_streams: 64,
            max_consumers: 200,
            queue_bytes: 2 << 20,
            capacity_bytes_per_sec: 100_000_000 / 8,
            load_report_ms: 5_000,
        }
    }
}

/// What the driver does after a state change.
#[derive(Debug)]
pub enum Action {
    /// Send a frame (or a media-link message) to a WebRTC peer.
    Send(PeerId, Arc<[u8]>),
    /// Drop a WebRTC peer.
    Disconnect(PeerId),
    /// Start a fan-out connection of a landing stream (a new access point).
    Fanout(NewUpstream),
    /// Publish this re-signed record of a landing stream in place of the old one (more
    /// access points, or the stream ended).
    Republish(Vec<u8>),
}

/// A fan-out connection to start: the access point, the record that names it, its frames.
pub struct NewUpstream {
    /// The stream.
    pub stream_id: [u8; 32],
    /// The access point.
    pub node: [u8; 32],
    /// The signed record naming it (sent with the offer).
    pub record: Arc<[u8]>,
    /// The frames for it.
    pub frames: Frames,
}

impl std::fmt::Debug for NewUpstream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "NewUpstream({} to {})",
            short(&self.stream_id),
            short(&self.node)
        )
    }
}

/// A publisher's place.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Slot {
    Free,
    /// Admitted at this time, its offer not yet accepted.
    Reserved(u64),
    Peer(PeerId),
}

impl Slot {
    fn release_stale(&mut self, now_ms: u64) {
        if matches!(*self, Slot::Reserved(at) if now_ms.saturating_sub(at) >= RESERVATION_MS) {
            *self = Slot::Free;
        }
    }
}

/// A fan-out connection of a landing stream: the relay subscriber and the channel to the
/// task that holds the WebRTC connection to one distribution node.
struct Upstream {
    node: [u8; 32],
    sub: SubscriberId,
    frames: mpsc::Sender<Arc<[u8]>>,
}

/// A stream this node landed: its producer publishes here.
struct Landing {
    token: [u8; 32],
    /// The record as last signed (its access points are the fan-out's).
    record: StreamRecord,
    publisher: Slot,
    relay: Relay,
    upstreams: Vec<Upstream>,
    /// The next fan-out subscriber id.
    next_sub: u64,
    /// The access points' load and when to ask for more.
    scaling: Scaling,
}

/// A stream this node distributes: its landing node publishes here, consumers watch.
struct Distributed {
    landing: [u8; 32],
    expires_at: u64,
    publisher: Slot,
    relay: Relay,
    /// Consumers admitted whose channel is not open yet, by admission time.
    pending: Vec<u64>,
    /// Bytes sent to consumers so far.
    sent_bytes: u64,
    /// When the latest load report was made (monotonic ms) and `sent_bytes` then.
    reported: (u64, u64),
    /// The rate measured at the latest report, bytes per second.
    rate: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Role {
    Producer,
    Fanout,
    Consumer { open: bool },
}

/// Counters the metrics read (totals since start).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    /// Frames accepted from publishers.
    pub frames_in: u64,
    /// Frames sent to consumers and handed to fan-out connections.
    pub frames_out: u64,
    /// Consumers with an open channel.
    pub consumers: u64,
}

/// What the media service knows. See the module docs.
pub struct MediaState {
    key: Arc<Sr25519Keypair>,
    node_id: [u8; 32],
    limits: MediaLimits,
    landing: HashMap<[u8; 32], Landing>,
    distributed: HashMap<[u8; 32], Distributed>,
    peers: HashMap<PeerId, (Role, [u8; 32])>,
    counts: Counts,
    /// Consumers' tickets and their metering, once [`MediaState::meter_consumers`].
    metering: Option<metering::Metering>,
    /// Unix ms minus monotonic ms, as of the latest tick.
    unix_offset_ms: u64,
}

/// The frames of one fan-out connection, as its task receives them.
pub type Frames = mpsc::Receiver<Arc<[u8]>>;

/// A stream newly landed here, for the driver to start its fan-out connections.
pub struct NewLanding {
    /// The stream.
    pub stream_id: [u8; 32],
    /// One fan-out connection per access point.
    pub upstreams: Vec<NewUpstream>,
}

/// The relay bounds for a stream of `class`: its ceiling as the rate, two seconds of it (at
/// least 256 KiB, four largest frames) as the burst.
fn relay_config(class: BitrateClass, max_subscribers: usize, queue_bytes: usize) -> RelayConfig {
    let rate = u64::from(class.max_kbps()) * 1000 / 8;
    RelayConfig {
        max_subscribers,
        per_subscriber_queue_bytes: queue_bytes,
        bitrate_bytes_per_sec: rate,
        burst_bytes: (2 * rate).max(4 * MAX_FRAME_BYTES as u64),
        ..RelayConfig::default()
    }
}

fn short(id: &[u8; 32]) -> String {
    hex::encode(&id[..4])
}

/// A 32-byte value from exactly 64 hex digits.
pub fn hex32(text: &str) -> Option<[u8; 32]> {
    if text.len() != 64 {
        return None;
    }
    hex::decode(text).ok()?.try_into().ok()
}

impl MediaState {
    /// An empty state for the node of `key` (which signs load reports and re-signed records).
    pub fn new(key: Arc<Sr25519Keypair>, limits: MediaLimits) -> Self {
        Self {
            node_id: key.public(),
            key,
            limits,
            landing: HashMap::new(),
            distributed: HashMap::new(),
            peers: HashMap::new(),
            counts: Counts::default(),
            metering: None,
            unix_offset_ms: 0,
        }
    }

    /// From now on consumers need a session ticket of an elected oracle of the chain
    /// `genesis`, and the bytes sent to them are metered for rewards ([`metering`]).
    /// (`inflate_percent`: a test network's lying relay, 0 for an honest one).
    pub fn meter_consumers(&mut self, genesis: [u8; 32], inflate_percent: u32) {
        let mut metering = metering::Metering::new(genesis, &self.key);
        metering.inflate_percent = inflate_percent;
        self.metering = Some(metering);
    }

    /// Takes the chain's usage facts: the oracles whose tickets count and the recent blocks;
    /// returns the relay halves of every epoch that ended, to send to its oracles.
    pub fn on_chain(
        &mut self,
        facts: &crate::overlay::usage::ChainFacts,
    ) -> Vec<(
        psp_primitives::staking::EpochIndex,
        Vec<psp_net::usage::RelayHalf>,
    )> {
        self.metering
            .as_mut()
            .map(|m| m.on_chain(facts))
            .unwrap_or_default()
    }

    /// The totals so far.
    pub fn counts(&self) -> Counts {
        self.counts
    }

    /// A stream this node created (`NodeEvent::StreamCreated`): remember its publish token,
    /// and subscribe one fan-out connection per access point. `None` (logged) if the record
    /// does not decode, or too many streams land here.
    pub fn add_landing(
        &mut self,
        now_ms: u64,
        unix_ms: u64,
        stream_id: [u8; 32],
        publish_token: [u8; 32],
        params: &StreamParams,
        record: &[u8],
    ) -> Option<NewLanding> {
        let decoded = match StreamRecord::decode(record) {
            Ok(decoded) if decoded.stream_id.0 == stream_id => decoded,
            Ok(_) => {
                log::warn!(target: "psp-media", "stream {}: record for another stream", short(&stream_id));
                return None;
            }
            Err(e) => {
                log::warn!(target: "psp-media", "stream {}: record: {e}", short(&stream_id));
                return None;
            }
        };
        if !self.landing.contains_key(&stream_id)
            && self.landing.len() >= self.limits.max_landing_streams
        {
            log::warn!(
                target: "psp-media",
                "refused: landing stream {}: {} streams already land here",
                short(&stream_id),
                self.limits.max_landing_streams
            );
            return None;
        }
        let points = decoded.access_points.clone();
        let scaling = self.scaling_for(unix_ms, &decoded, params)?;
        let relay = Relay::new(
            psp_media::StreamId(stream_id),
            relay_config(
                params.bitrate,
                psp_media::load::MAX_ACCESS_POINTS,
                self.limits.queue_bytes,
            ),
            now_ms,
        );
        let mut landing = Landing {
            token: publish_token,
            record: decoded,
            publisher: Slot::Free,
            relay,
            upstreams: Vec::with_capacity(points.len()),
            next_sub: 0,
            scaling,
        };
        let record: Arc<[u8]> = Arc::from(record);
        let upstreams = points
            .into_iter()
            .map(|node| NewUpstream {
                stream_id,
                node,
                record: record.clone(),
                frames: landing.add_upstream(now_ms, node),
            })
            .collect();
        // A stream created again (a retried creation) replaces the old one and its fan-out.
        if let Some(old) = self.landing.insert(stream_id, landing) {
            if let Slot::Peer(peer) = old.publisher {
                self.peers.remove(&peer);
            }
        }
        Some(NewLanding {
            stream_id,
            upstreams,
        })
    }

    /// Whether consumers of `stream_id` are served here: a distributed stream whose landing
    /// node is connected.
    pub fn serves(&self, stream_id: &str) -> bool {
        hex32(stream_id)
            .and_then(|id| self.distributed.get(&id))
            .is_some_and(|d| matches!(d.publisher, Slot::Peer(_)))
    }

    /// Admits a WHIP or WHEP request at `now_ms` (monotonic) and `now_secs` (unix), checking
    /// fan-out records against `registry`. What it reserves is taken by [`Self::accepted`]
    /// or released by [`Self::failed`] (or after [`RESERVATION_MS`]).
    pub fn admit(
        &mut self,
        request: &SignallingRequest<'_>,
        now_ms: u64,
        now_secs: u64,
        registry: &dyn IdentityRegistry,
    ) -> Result<(), Refusal> {
        let Some(id) = hex32(request.stream_id) else {
            return Err(Refusal::not_found("unknown stream (ids are 64 hex digits)"));
        };
        match request.route {
            Route::Whep => {
                self.admit_consumer(&id, now_ms)?;
                let Some(metering) = self.metering.as_mut() else {
                    return Ok(());
                };
                let admitted = metering.admit(request, &id, now_ms, now_secs);
                if admitted.is_err() {
                    if let Some(stream) = self.distributed.get_mut(&id) {
                        stream.pending.pop();
                    }
                }
                admitted
            }
            Route::Whip if request.header("authorization").is_some() => {
                self.admit_producer(request, &id, now_ms)
            }
            Route::Whip if request.header(RECORD_HEADER).is_some() => {
                self.admit_fanout(request, &id, now_ms, now_secs, registry)
            }
            Route::Nodes | Route::End => Err(Refusal::bad_request("not an offer")),
            Route::Whip => Err(Refusal::unauthorized(format!(
                "no credentials: send Authorization: Bearer <publish token>, or {RECORD_HEADER} \
                 and {SIGNATURE_HEADER}"
            ))),
        }
    }

    fn admit_consumer(&mut self, id: &[u8; 32], now_ms: u64) -> Result<(), Refusal> {
        let max = self.limits.max_consumers;
        let Some(stream) = self.distributed.get_mut(id) else {
            return Err(Refusal::not_found("stream not served here"));
        };
        if !matches!(stream.publisher, Slot::Peer(_)) {
            return Err(Refusal::not_found(
                "stream not served here (its landing node is not connected)",
            ));
        }
        stream
            .pending
            .retain(|at| now_ms.saturating_sub(*at) < RESERVATION_MS);
        if stream.relay.subscriber_count() + stream.pending.len() >= max {
            return Err(Refusal::unavailable(format!(
                "stream has its {max} consumers here; try another access point"
            )));
        }
        stream.pending.push(now_ms);
        Ok(())
    }

    fn admit_producer(
        &mut self,
        request: &SignallingRequest<'_>,
        id: &[u8; 32],
        now_ms: u64,
    ) -> Result<(), Refusal> {
        let auth = request.header("authorization").unwrap_or_default();
        let token = auth
            .split_once(' ')
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .and_then(|(_, token)| hex32(token.trim()));
        let Some(token) = token else {
            return Err(Refusal::unauthorized(
                "Authorization must be Bearer <publish token, 64 hex digits>",
            ));
        };
        let Some(stream) = self.landing.get_mut(id) else {
            return Err(Refusal::not_found(
                "unknown stream: not created at this node",
            ));
        };
        if !constant_time_eq(&token, &stream.token) {
            return Err(Refusal::unauthorized("wrong publish token"));
        }
        stream.publisher.release_stale(now_ms);
        if stream.publisher != Slot::Free {
            return Err(Refusal::conflict("the stream already has its publisher"));
        }
        stream.publisher = Slot::Reserved(now_ms);
        Ok(())
    }

    fn admit_fanout(
        &mut self,
        request: &SignallingRequest<'_>,
        id: &[u8; 32],
        now_ms: u64,
        now_secs: u64,
        registry: &dyn IdentityRegistry,
    ) -> Result<(), Refusal> {
        let record_hex = request.header(RECORD_HEADER).unwrap_or_default();
        if record_hex.len() > 2 * MAX_RECORD_LEN {
            return Err(Refusal::bad_request("stream record too long"));
        }
        let Ok(record) = hex::decode(record_hex) else {
            return Err(Refusal::bad_request(format!("{RECORD_HEADER} is not hex")));
        };
        let signature: Option<[u8; 64]> = request
            .header(SIGNATURE_HEADER)
            .and_then(|s| hex::decode(s).ok())
            .and_then(|s| s.try_into().ok());
        let Some(signature) = signature else {
            return Err(Refusal::unauthorized(format!(
                "{SIGNATURE_HEADER} must be 128 hex digits (an sr25519 signature)"
            )));
        };
        let verified = verify_stream_record(&record, now_secs, registry)
            .map_err(|e| Refusal::unauthorized(format!("stream record refused: {e}")))?;
        let record = verified.record();
        if record.stream_id.0 != *id {
            return Err(Refusal::bad_request(
                "the stream record is for another stream",
            ));
        }
        if !record.access_points.contains(&self.node_id) {
            return Err(Refusal::forbidden(
                "this node is not an access point of the stream",
            ));
        }
        let body_hash = sp_crypto_hashing::sha2_256(request.body);
        if !sr25519_verify(&record.landing, &fanout_message(id, &body_hash), &signature) {
            return Err(Refusal::unauthorized(
                "bad fan-out signature (the landing node's, over the stream id and the offer)",
            ));
        }
        if let Some(stream) = self.distributed.get_mut(id) {
            if stream.landing != record.landing {
                return Err(Refusal::conflict(
                    "the stream is distributed here for another landing node",
                ));
            }
            stream.publisher.release_stale(now_ms);
            if stream.publisher != Slot::Free {
                return Err(Refusal::conflict("the stream already has its publisher"));
            }
            stream.publisher = Slot::Reserved(now_ms);
            stream.expires_at = stream.expires_at.max(record.expires_at);
            return Ok(());
        }
        if self.distributed.len() >= self.limits.max_distributed_streams {
            return Err(Refusal::unavailable(format!(
                "this node distributes {} streams already",
                self.limits.max_distributed_streams
            )));
        }
        // The receipt's class is the landing node's to enforce; here the highest class bounds
        // what a landing node may push through.
        let relay = Relay::new(
            psp_media::StreamId(*id),
            relay_config(
                BitrateClass::Ultra,
                self.limits.max_consumers,
                self.limits.queue_bytes,
            ),
            now_ms,
        );
        self.distributed.insert(
            *id,
            Distributed {
                landing: record.landing,
                expires_at: record.expires_at,
                publisher: Slot::Reserved(now_ms),
                relay,
                pending: Vec::new(),
                sent_bytes: 0,
                reported: (now_ms, 0),
                rate: 0,
            },
        );
        Ok(())
    }

    /// An admitted request became `peer`.
    pub fn accepted(&mut self, request: &SignallingRequest<'_>, peer: PeerId) {
        let Some(id) = hex32(request.stream_id) else {
            return;
        };
        let role = match request.route {
            Route::Whep => {
                if let Some(metering) = self.metering.as_mut() {
                    metering.accepted(request, peer);
                }
                Role::Consumer { open: false }
            }
            Route::Whip if request.header("authorization").is_some() => Role::Producer,
            Route::Whip => Role::Fanout,
            Route::Nodes | Route::End => return,
        };
        let slot = match role {
            Role::Producer => self.landing.get_mut(&id).map(|s| &mut s.publisher),
            Role::Fanout => self.distributed.get_mut(&id).map(|s| &mut s.publisher),
            Role::Consumer { .. } => None,
        };
        if let Some(slot) = slot {
            *slot = Slot::Peer(peer);
        }
        self.peers.insert(peer, (role, id));
    }

    /// An admitted request's offer was refused: release what [`Self::admit`] reserved.
    pub fn failed(&mut self, request: &SignallingRequest<'_>) {
        let Some(id) = hex32(request.stream_id) else {
            return;
        };
        match request.route {
            Route::Whep => {
                if let Some(stream) = self.distributed.get_mut(&id) {
                    stream.pending.pop();
                }
                if let Some(metering) = self.metering.as_mut() {
                    metering.failed(request);
                }
            }
            Route::Nodes | Route::End => {}
            Route::Whip => {
                let slot = if request.header("authorization").is_some() {
                    self.landing.get_mut(&id).map(|s| &mut s.publisher)
                } else {
                    self.distributed.get_mut(&id).map(|s| &mut s.publisher)
                };
                if let Some(slot) = slot.filter(|s| matches!(s, Slot::Reserved(_))) {
                    *slot = Slot::Free;
                }
            }
        }
    }

    /// Handles one WebRTC server event.
    pub fn on_event(&mut self, now_ms: u64, event: ServerEvent) -> Vec<Action> {
        let mut actions = Vec::new();
        match event {
            ServerEvent::ChannelOpen { peer, .. } => self.channel_open(now_ms, peer, &mut actions),
            ServerEvent::Data { peer, bytes } => self.data(now_ms, peer, &bytes, &mut actions),
            ServerEvent::PeerGone { peer, reason } => {
                let Some((role, id)) = self.peers.remove(&peer) else {
                    return actions;
                };
                log::debug!(target: "psp-media", "stream {}: {role:?} {peer} gone: {reason:?}", short(&id));
                match role {
                    Role::Producer => {
                        if let Some(s) = self.landing.get_mut(&id) {
                            if s.publisher == Slot::Peer(peer) {
                                s.publisher = Slot::Free;
                            }
                        }
                    }
                    Role::Fanout => {
                        let ours = self
                            .distributed
                            .get(&id)
                            .is_some_and(|s| s.publisher == Slot::Peer(peer));
                        if ours && reason == GoneReason::Closed {
                            // The landing node closed the fan-out: the stream ended (stopped,
                            // expired, or this node is no longer one of its access points).
                            log::info!(target: "psp-media", "stream {}: the landing node ended the fan-out; distribution ends", short(&id));
                            self.end_distribution(&id, &mut actions);
                        } else if let Some(s) = self.distributed.get_mut(&id).filter(|_| ours) {
                            s.publisher = Slot::Free;
                        }
                    }
                    Role::Consumer { open } => {
                        if let Some(metering) = self.metering.as_mut() {
                            metering.gone(peer);
                        }
                        if let Some(s) = self.distributed.get_mut(&id) {
                            if open {
                                s.relay.unsubscribe(SubscriberId(peer.0));
                                self.counts.consumers = self.counts.consumers.saturating_sub(1);
                            } else {
                                s.pending.pop();
                            }
                        }
                    }
                }
            }
            _ => {}
        }
        actions
    }

    fn channel_open(&mut self, now_ms: u64, peer: PeerId, actions: &mut Vec<Action>) {
        let Some((Role::Consumer { open: false }, id)) = self.peers.get(&peer).copied() else {
            return;
        };
        let Some(stream) = self.distributed.get_mut(&id) else {
            actions.push(Action::Disconnect(peer));
            return;
        };
        stream.pending.pop();
        match stream.relay.subscribe(now_ms, SubscriberId(peer.0)) {
            Ok(()) => {
                self.peers.insert(peer, (Role::Consumer { open: true }, id));
                self.counts.consumers += 1;
            }
            Err(e) => {
                log::info!(target: "psp-media", "refused: consumer {peer} of {}: {e}", short(&id));
                self.peers.remove(&peer);
                actions.push(Action::Disconnect(peer));
            }
        }
    }

    fn data(&mut self, now_ms: u64, peer: PeerId, frame: &[u8], actions: &mut Vec<Action>) {
        let Some((role, id)) = self.peers.get(&peer).copied() else {
            return;
        };
        if frame.len() > MAX_FRAME_BYTES {
            log::debug!(target: "psp-media", "stream {}: {} B frame from {peer} dropped (max {MAX_FRAME_BYTES})", short(&id), frame.len());
            return;
        }
        let relay = match role {
            Role::Producer => self.landing.get_mut(&id).map(|s| &mut s.relay),
            Role::Fanout => self.distributed.get_mut(&id).map(|s| &mut s.relay),
            // Consumers have nothing to say.
            Role::Consumer { .. } => return,
        };
        let Some(relay) = relay else {
            return;
        };
        match relay.ingest(now_ms, frame) {
            Ok(Ingest::Forwarded { .. }) => self.counts.frames_in += 1,
            Ok(Ingest::Throttled {
                frame_len,
                over_rate_for_ms,
                ..
            }) => {
                log::debug!(target: "psp-media", "stream {}: {frame_len} B frame over the bitrate class dropped ({over_rate_for_ms} ms over)", short(&id));
            }
            Ok(Ingest::CutOff { over_rate_for_ms }) => {
                log::warn!(target: "psp-media", "refused: stream {}: publisher {peer} cut off after {over_rate_for_ms} ms over its bitrate class", short(&id));
                actions.push(Action::Disconnect(peer));
            }
            Err(e) => {
                log::debug!(target: "psp-media", "stream {}: frame from {peer} dropped: {e}", short(&id));
            }
        }
        self.flush(now_ms, &id, role, actions);
    }

    /// Hands queued frames on: to fan-out channels with room (landing), to consumers
    /// (distribution; the WebRTC server's per-peer queue bounds them).
    fn flush(&mut self, now_ms: u64, id: &[u8; 32], role: Role, actions: &mut Vec<Action>) {
        match role {
            Role::Producer => {
                let Some(stream) = self.landing.get_mut(id) else {
                    return;
                };
                for up in &stream.upstreams {
                    while up.frames.capacity() > 0 {
                        let Ok(Some(frame)) = stream.relay.poll_transmit(now_ms, up.sub) else {
                            break;
                        };
                        if up.frames.try_send(frame).is_ok() {
                            self.counts.frames_out += 1;
                        }
                    }
                }
                drain_events(
                    &mut stream.relay,
                    stream.publisher,
                    actions,
                    |relay, sub| {
                        // A fan-out connection that took nothing for a while (reconnecting)
                        // lost its queue; it starts again with the next frame.
                        let _ = relay.subscribe(now_ms, sub);
                        None
                    },
                );
            }
            Role::Fanout => {
                let Some(stream) = self.distributed.get_mut(id) else {
                    return;
                };
                let subscribers: Vec<SubscriberId> = stream
                    .relay
                    .stats()
                    .subscribers
                    .iter()
                    .map(|(sub, _)| *sub)
                    .collect();
                let unix_ms = now_ms.saturating_add(self.unix_offset_ms);
                for sub in subscribers {
                    while let Ok(Some(frame)) = stream.relay.poll_transmit(now_ms, sub) {
                        self.counts.frames_out += 1;
                        stream.sent_bytes += frame.len() as u64;
                        if let Some(metering) = self.metering.as_mut() {
                            metering.sent(PeerId(sub.0), frame.len(), unix_ms);
                        }
                        actions.push(Action::Send(PeerId(sub.0), frame));
                    }
                }
                drain_events(&mut stream.relay, stream.publisher, actions, |_, sub| {
                    actions_disconnect(sub)
                });
            }
            Role::Consumer { .. } => {}
        }
    }

    /// Runs the relays' timers, releases stale reservations and drops expired streams
    /// (disconnecting their peers). Call it about every second.
    pub fn on_tick(&mut self, now_ms: u64, unix_ms: u64) -> Vec<Action> {
        let now_secs = unix_ms / 1000;
        self.unix_offset_ms = unix_ms.saturating_sub(now_ms);
        let mut actions = Vec::new();
        self.report_loads(now_ms, unix_ms, &mut actions);
        self.scale(now_ms, unix_ms, &mut actions);
        let ids: Vec<[u8; 32]> = self.landing.keys().copied().collect();
        for id in ids {
            if let Some(stream) = self.landing.get_mut(&id) {
                stream.publisher.release_stale(now_ms);
                stream.relay.handle_timeout(now_ms);
            }
            self.flush(now_ms, &id, Role::Producer, &mut actions);
        }
        let ids: Vec<[u8; 32]> = self.distributed.keys().copied().collect();
        for id in ids {
            if let Some(stream) = self.distributed.get_mut(&id) {
                stream.publisher.release_stale(now_ms);
                stream
                    .pending
                    .retain(|at| now_ms.saturating_sub(*at) < RESERVATION_MS);
                stream.relay.handle_timeout(now_ms);
            }
            self.flush(now_ms, &id, Role::Fanout, &mut actions);
        }
        let expired_landing: Vec<[u8; 32]> = self
            .landing
            .iter()
            .filter(|(_, s)| now_secs >= s.record.expires_at)
            .map(|(id, _)| *id)
            .collect();
        for id in expired_landing {
            log::info!(target: "psp-media", "stream {} expired: landing ends", short(&id));
            // Dropping it closes its fan-out channels, which ends their connections.
            self.landing.remove(&id);
        }
        let expired: Vec<[u8; 32]> = self
            .distributed
            .iter()
            .filter(|(_, s)| now_secs >= s.expires_at)
            .map(|(id, _)| *id)
            .collect();
        for id in expired {
            log::info!(target: "psp-media", "stream {} expired: distribution ends", short(&id));
            self.distributed.remove(&id);
        }
        // Peers of streams that are gone are disconnected.
        let landing = &self.landing;
        let distributed = &self.distributed;
        let mut gone_consumers = 0;
        self.peers.retain(|peer, (role, id)| {
            let live = match role {
                Role::Producer => landing.contains_key(id),
                Role::Fanout | Role::Consumer { .. } => distributed.contains_key(id),
            };
            if !live {
                if matches!(role, Role::Consumer { open: true }) {
                    gone_consumers += 1;
                }
                actions.push(Action::Disconnect(*peer));
            }
            live
        });
        self.counts.consumers = self.counts.consumers.saturating_sub(gone_consumers);
        actions
    }
}

impl Landing {
    /// Subscribes a fan-out connection to `node`; its frames come out of the receiver.
    fn add_upstream(&mut self, now_ms: u64, node: [u8; 32]) -> Frames {
        let sub = SubscriberId(self.next_sub);
        self.next_sub += 1;
        // At most 32 access points, as many subscribers as the relay allows.
        let _ = self.relay.subscribe(now_ms, sub);
        let (frames, receiver) = mpsc::channel(UPSTREAM_QUEUE);
        self.upstreams.push(Upstream { node, sub, frames });
        receiver
    }
}

/// A consumer subscriber id is its peer id.
fn actions_disconnect(sub: SubscriberId) -> Option<Action> {
    Some(Action::Disconnect(PeerId(sub.0)))
}

/// Acts on a relay's events: a cut-off publisher is disconnected; a stalled subscriber is
/// handed to `on_stall` (which may return an action).
fn drain_events(
    relay: &mut Relay,
    publisher: Slot,
    actions: &mut Vec<Action>,
    mut on_stall: impl FnMut(&mut Relay, SubscriberId) -> Option<Action>,
) {
    while let Some(event) = relay.poll_event() {
        match event {
            Event::PublisherCutOff { .. } => {
                if let Slot::Peer(peer) = publisher {
                    actions.push(Action::Disconnect(peer));
                }
            }
            Event::SubscriberStalled { id, .. } => {
                if let Some(action) = on_stall(relay, id) {
                    actions.push(action);
                }
            }
        }
    }
}

/// Compares secrets in time independent of where they differ.
fn constant_time_eq(a: &[u8; 32], b: &[u8; 32]) -> bool {
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
