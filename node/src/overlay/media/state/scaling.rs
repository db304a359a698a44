//! Distribution scaling (issue 13, point 6) and the producer's commands, on the media state.
//!
//! ```text
//! distribution node ──Load (signed, every load_report_ms)──▶ landing node   (fan-out link, upstream)
//! landing node ──NeedNodes{count}──▶ producer                           (WHIP link, downstream)
//! producer ──POST /nodes/<stream> (Bearer publish token)──▶ landing node
//! producer ──DELETE /whip/<stream> (Bearer publish token)──▶ landing node: the stream ends
//! ```
//!
//! Media-link messages ([`psp_media::wire::MediaMsg`]) travel in the direction of a link that
//! carries no frames: a distribution node's load reports go back up its landing node's
//! fan-out connection, a landing node's request for nodes goes back down the producer's
//! publishing connection. The producer's link is anonymous: the landing node knows it by the
//! publish token only, never by identity. Its answers are HTTP commands with that token.
//!
//! The landing node runs one [`Scaling`] machine per stream (`psp_media::load`): it verifies
//! each report (signature, stream, a current access point, in order), and asks the producer for
//! more nodes when every live access point is at 80 % of the capacity it reports, or when one
//! falls silent (no report for three periods), within the receipt's allowance. Nodes the
//! producer adds must be live node identities on chain; the landing node re-signs the stream
//! record with the new set ([`Action::Republish`]: the DHT record is replaced at once), starts
//! a fan-out connection to each new access point and closes those of the dropped ones.
//! Consumers spread over the access points by choosing one at random and moving on when one is
//! full (503).

use std::sync::Arc;

use psp_media::load::{
    Action as ScalingAction, LoadReport, Scaling, ScalingConfig, MAX_ACCESS_POINTS,
};
use psp_media::wire::{Deframer, MediaMsg};
use psp_net::{
    crypto::NodeId,
    receipts::StreamParams,
    registry::{IdentityKind, IdentityRegistry, IdentityStatus},
    stream::record::StreamRecord,
};
use psp_webrtc::{Refusal, Route, SignallingRequest};

use super::{constant_time_eq, hex32, short, Action, Landing, MediaState, NewUpstream, Role, Slot};

/// Reports missed before an access point counts as silent.
const SILENT_AFTER_REPORTS: u64 = 3;

impl MediaState {
    /// The scaling machine of a stream landing here, from its record and receipt.
    pub(super) fn scaling_for(
        &self,
        unix_ms: u64,
        record: &StreamRecord,
        params: &StreamParams,
    ) -> Option<Scaling> {
        let points: Vec<NodeId> = record.access_points.iter().map(|n| NodeId(*n)).collect();
        let allowance = usize::from(params.distribution_nodes).max(points.len());
        let config = ScalingConfig {
            stale_after_ms: self.limits.load_report_ms * SILENT_AFTER_REPORTS,
            per_consumer_bytes_per_sec: u64::from(params.bitrate.max_kbps()) * 1000 / 8,
            ..ScalingConfig::default()
        };
        let stream = psp_media::StreamId(record.stream_id.0);
        match Scaling::new(stream, &points, allowance, config, unix_ms) {
            Ok(scaling) => Some(scaling),
            Err(e) => {
                log::warn!(target: "psp-media", "stream {}: {e}", short(&record.stream_id.0));
                None
            }
        }
    }

    /// A message a distribution node sent back up the fan-out connection of a landing
    /// stream: its load report. Anything else, or a report that does not check, is logged
    /// and dropped.
    pub fn on_fanout_message(
        &mut self,
        now_ms: u64,
        unix_ms: u64,
        stream_id: [u8; 32],
        bytes: &[u8],
    ) -> Vec<Action> {
        let mut actions = Vec::new();
        let Some(stream) = self.landing.get_mut(&stream_id) else {
            return actions;
        };
        match link_message(bytes) {
            Ok(MediaMsg::Load(report)) => {
                let from = short(&report.unverified().node.0);
                match stream.scaling.on_report(unix_ms, &report) {
                    Ok(()) => {
                        let r = report.unverified();
                        log::debug!(
                            target: "psp-media",
                            "stream {}: load of {from}: {} consumers, {} of {} B/s",
                            short(&stream_id), r.subscribers, r.bytes_per_sec_out,
                            r.capacity_bytes_per_sec
                        );
                    }
                    Err(e) => log::info!(
                        target: "psp-media",
                        "refused: stream {}: load report from {from}: {e}", short(&stream_id)
                    ),
                }
            }
            Ok(other) => log::debug!(
                target: "psp-media",
                "stream {}: unexpected message on a fan-out link: {other:?}", short(&stream_id)
            ),
            Err(e) => log::info!(
                target: "psp-media",
                "refused: stream {}: fan-out link message: {e}", short(&stream_id)
            ),
        }
        self.drain_scaling(now_ms, unix_ms, &stream_id, &mut actions);
        actions
    }

    /// A producer's command ([`Route::Nodes`], [`Route::End`]), authorised by the stream's
    /// publish token. The answer's text, and what the driver does.
    pub fn command(
        &mut self,
        request: &SignallingRequest<'_>,
        now_ms: u64,
        unix_ms: u64,
        registry: &dyn IdentityRegistry,
    ) -> Result<(String, Vec<Action>), Refusal> {
        let id = self.producer_stream(request)?;
        let mut actions = Vec::new();
        match request.route {
            Route::Nodes => {
                let nodes = parse_nodes(request.body, registry)?;
                let Some(stream) = self.landing.get_mut(&id) else {
                    return Err(Refusal::not_found("unknown stream"));
                };
                stream
                    .scaling
                    .add_nodes(unix_ms, &nodes)
                    .map_err(|e| Refusal::conflict(format!("nodes not added: {e}")))?;
                log::info!(
                    target: "psp-media",
                    "stream {}: the producer added {} distribution node(s)", short(&id), nodes.len()
                );
                self.drain_scaling(now_ms, unix_ms, &id, &mut actions);
                let count = self
                    .landing
                    .get(&id)
                    .map_or(0, |s| s.record.access_points.len());
                Ok((format!("access points: {count}"), actions))
            }
            Route::End => {
                self.end_landing(&id, unix_ms / 1000, &mut actions);
                Ok(("stream ended".to_owned(), actions))
            }
            Route::Whip | Route::Whep => Err(Refusal::bad_request("not a command")),
        }
    }

    /// The landing stream whose publish token `request` carries.
    fn producer_stream(&self, request: &SignallingRequest<'_>) -> Result<[u8; 32], Refusal> {
        let token = request
            .header("authorization")
            .and_then(|auth| auth.split_once(' '))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .and_then(|(_, token)| hex32(token.trim()))
            .ok_or_else(|| {
                Refusal::unauthorized("Authorization must be Bearer <publish token, 64 hex digits>")
            })?;
        let id = hex32(request.stream_id)
            .ok_or_else(|| Refusal::not_found("unknown stream (ids are 64 hex digits)"))?;
        let stream = self.landing.get(&id).ok_or_else(|| {
            Refusal::not_found("unknown stream: not created at this node, or ended")
        })?;
        if !constant_time_eq(&token, &stream.token) {
            return Err(Refusal::unauthorized("wrong publish token"));
        }
        Ok(id)
    }

    /// Ends a landing stream: the producer is dropped, the fan-out connections close (their
    /// distribution nodes end it for their consumers) and the record is re-signed to expire
    /// now.
    fn end_landing(&mut self, id: &[u8; 32], now_secs: u64, actions: &mut Vec<Action>) {
        let Some(stream) = self.landing.remove(id) else {
            return;
        };
        if let Slot::Peer(peer) = stream.publisher {
            self.peers.remove(&peer);
            actions.push(Action::Disconnect(peer));
        }
        let record = &stream.record;
        let ended = StreamRecord::sign(
            &self.key,
            record.stream_id,
            record.format,
            record.created_at,
            now_secs.max(record.created_at + 1),
            record.access_points.clone(),
        );
        actions.push(Action::Republish(ended.encode()));
        log::info!(target: "psp-media", "stream {}: ended by its producer", short(id));
        // Dropping `stream` closes its fan-out channels.
    }

    /// Ends a distributed stream: its consumers are disconnected.
    pub(super) fn end_distribution(&mut self, id: &[u8; 32], actions: &mut Vec<Action>) {
        self.distributed.remove(id);
        let mut gone_consumers = 0;
        self.peers.retain(|peer, (role, stream)| {
            if stream != id || matches!(role, Role::Producer) {
                return true;
            }
            if matches!(role, Role::Consumer { open: true }) {
                gone_consumers += 1;
            }
            actions.push(Action::Disconnect(*peer));
            false
        });
        self.counts.consumers = self.counts.consumers.saturating_sub(gone_consumers);
    }

    /// Runs every landing stream's scaling timers (access points fall silent with time).
    pub(super) fn scale(&mut self, now_ms: u64, unix_ms: u64, actions: &mut Vec<Action>) {
        let ids: Vec<[u8; 32]> = self.landing.keys().copied().collect();
        for id in ids {
            if let Some(stream) = self.landing.get_mut(&id) {
                stream.scaling.handle_timeout(unix_ms);
            }
            self.drain_scaling(now_ms, unix_ms, &id, actions);
        }
    }

    /// Acts on a landing stream's scaling decisions: asks the producer for nodes, or
    /// re-signs the record and changes the fan-out to a new access-point set.
    fn drain_scaling(
        &mut self,
        now_ms: u64,
        unix_ms: u64,
        id: &[u8; 32],
        actions: &mut Vec<Action>,
    ) {
        let key = self.key.clone();
        let Some(stream) = self.landing.get_mut(id) else {
            return;
        };
        while let Some(action) = stream.scaling.poll_action() {
            match action {
                ScalingAction::NeedNodes { count } => match stream.publisher {
                    Slot::Peer(peer) => {
                        log::info!(
                            target: "psp-media",
                            "stream {}: access points short; asking the producer for {count} more", short(id)
                        );
                        let message = MediaMsg::NeedNodes { count }.encode();
                        actions.push(Action::Send(peer, Arc::from(message)));
                    }
                    _ => log::info!(
                        target: "psp-media",
                        "stream {}: access points short, no producer connected to ask", short(id)
                    ),
                },
                ScalingAction::AccessPointsChanged { nodes } => {
                    let nodes: Vec<[u8; 32]> = nodes.iter().map(|n| n.0).collect();
                    change_access_points(stream, &key, now_ms, unix_ms, id, nodes, actions);
                }
                // Consumers choose their access point themselves.
                ScalingAction::Assign { .. } => {}
            }
        }
    }

    /// A distribution node's signed load report per stream it serves whose landing node is
    /// connected, every `load_report_ms`: consumers, the rate sent since the last report, and
    /// the node's capacity less what its other streams send.
    pub(super) fn report_loads(&mut self, now_ms: u64, unix_ms: u64, actions: &mut Vec<Action>) {
        let period = self.limits.load_report_ms.max(1);
        let total_rate: u64 = self.distributed.values().map(|s| s.rate).sum();
        for (id, stream) in self.distributed.iter_mut() {
            let (at, sent) = stream.reported;
            let elapsed = now_ms.saturating_sub(at);
            if elapsed < period {
                continue;
            }
            stream.rate = stream.sent_bytes.saturating_sub(sent) * 1000 / elapsed.max(1);
            stream.reported = (now_ms, stream.sent_bytes);
            let Slot::Peer(landing) = stream.publisher else {
                continue;
            };
            let others = total_rate.saturating_sub(stream.rate);
            let report = LoadReport {
                node: NodeId(self.node_id),
                stream_id: psp_media::StreamId(*id),
                subscribers: u32::try_from(stream.relay.subscriber_count()).unwrap_or(u32::MAX),
                bytes_per_sec_out: stream.rate,
                capacity_bytes_per_sec: self.limits.capacity_bytes_per_sec.saturating_sub(others),
                at: unix_ms,
            };
            let message = MediaMsg::Load(report.sign(&self.key)).encode();
            actions.push(Action::Send(landing, Arc::from(message)));
        }
    }
}

/// Re-signs `stream`'s record with `nodes` as its access points, starts fan-out connections
/// to the new ones and closes those of the dropped ones.
fn change_access_points(
    stream: &mut Landing,
    key: &psp_net::crypto::Sr25519Keypair,
    now_ms: u64,
    unix_ms: u64,
    id: &[u8; 32],
    nodes: Vec<[u8; 32]>,
    actions: &mut Vec<Action>,
) {
    let old = &stream.record;
    let record = StreamRecord::sign(
        key,
        old.stream_id,
        old.format,
        old.created_at,
        old.expires_at.max(unix_ms / 1000 + 1),
        nodes.clone(),
    );
    let bytes: Arc<[u8]> = Arc::from(record.encode());
    stream.upstreams.retain(|up| {
        let kept = nodes.contains(&up.node);
        if !kept {
            stream.relay.unsubscribe(up.sub);
            log::info!(target: "psp-media", "stream {}: fan-out to {} closed (no longer an access point)", short(id), short(&up.node));
        }
        kept
    });
    let added: Vec<[u8; 32]> = nodes
        .iter()
        .filter(|n| !stream.upstreams.iter().any(|up| up.node == **n))
        .copied()
        .collect();
    for node in added {
        let frames = stream.add_upstream(now_ms, node);
        actions.push(Action::Fanout(NewUpstream {
            stream_id: *id,
            node,
            record: bytes.clone(),
            frames,
        }));
    }
    log::info!(
        target: "psp-media",
        "stream {}: access points now {}", short(id),
        nodes.iter().map(short).collect::<Vec<_>>().join(", ")
    );
    actions.push(Action::Republish(bytes.to_vec()));
    stream.record = record;
}

/// One media-link message, as one data-channel message carries it (length prefix included).
fn link_message(bytes: &[u8]) -> Result<MediaMsg, psp_media::MediaError> {
    let mut messages = Deframer::new().feed(bytes)?;
    match (messages.pop(), messages.is_empty()) {
        (Some(message), true) => Ok(message),
        _ => Err(psp_media::MediaError::Truncated {
            what: "media-link message (one per data-channel message)",
            needed: 1,
            remaining: 0,
        }),
    }
}

/// The node ids of a `POST /nodes` body: one per line (64 hex digits, `0x` optional), at most
/// [`MAX_ACCESS_POINTS`], each a live node identity on chain.
fn parse_nodes(body: &[u8], registry: &dyn IdentityRegistry) -> Result<Vec<NodeId>, Refusal> {
    let text = std::str::from_utf8(body).map_err(|_| Refusal::bad_request("body is not UTF-8"))?;
    let mut nodes = Vec::new();
    for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
        let hex = line.strip_prefix("0x").unwrap_or(line);
        let node = hex32(hex).ok_or_else(|| {
            Refusal::bad_request(format!("{line:.20}: not a node key (64 hex digits)"))
        })?;
        if registry.status(&node) != IdentityStatus::Active(IdentityKind::Node) {
            return Err(Refusal::bad_request(format!(
                "{}: not a live node identity on chain",
                short(&node)
            )));
        }
        nodes.push(NodeId(node));
        if nodes.len() > MAX_ACCESS_POINTS {
            return Err(Refusal::bad_request(format!(
                "more than {MAX_ACCESS_POINTS} nodes"
            )));
        }
    }
    if nodes.is_empty() {
        return Err(Refusal::bad_request("no nodes: one node key per line"));
    }
    Ok(nodes)
}
