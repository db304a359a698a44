//! The stream-creation services of a node (PSP overview §8.2), as one [`ServiceHub`] wrapped
//! around the node's other services: `oracle` (anonymous creation receipts, on elected
//! oracle nodes) and `landing` (stream creation from a receipt, on any node), the
//! `psp-stream` state machines.
//!
//! Like [`super::messaging`], this module maps the relay's [`StreamRef`]s to the machines'
//! [`StreamHandle`]s and feeds them bytes and unix time. What the host must supply goes
//! through [`StreamSetup`]: the chain checks of the messaging services, the subscriptions on
//! chain, and [`ReceiptKeyUpdates`] — this oracle's issuing keys as the host makes them and
//! the keys every oracle published on chain, which the landing service accepts receipts
//! under (a key that leaves the chain is removed). Both are taken at the hub's next event, as
//! are the other oracles' receipt counts the node task received ([`super::counts`]); this
//! oracle's own counts go out to them whenever a request changed them.
//!
//! Each stream the landing service creates goes to the host as a [`CreatedStream`] (through
//! the node task's events), for its media path to accept the producer.
//!
//! The landing node puts each stream record it signs into the DHT as a
//! [`RecordKind::Stream`] record it owns and publishes (topic: the stream id; value: the
//! [`StreamRecord`] bytes), through the node task's publication queue, and renews it while
//! the stream lives (DHT records live at most [`StreamSetup::record_lifetime_secs`]).
//!
//! The host may re-sign the record of a stream this node lands ([`SharedLandingUpdates`]):
//! with more access points (distribution scaling), or ending now (the producer stopped the
//! stream). The hub replaces its record, publishes it at once with a higher sequence number,
//! and renews the new one; an ended record stays in the DHT for [`ENDED_RECORD_SECS`] (so a
//! consumer looking it up learns that it ended) and is not renewed.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex};

use psp_receipts::{
    Issuer, IssuerConfig, KeyId, OracleId, PublishedKey, SigningKey, StreamParams, Verifier,
    VerifierConfig,
};
use psp_rendezvous::StreamHandle;
use psp_stream::landing::{Landing, LandingConfig};
use psp_stream::oracle::{Oracle, OracleConfig, OracleContext, SubscriptionView};
use psp_stream::record::StreamRecord;
use psp_stream::Action;
use psp_usage::token::{TokenIssuer, DEFAULT_TOKENS_PER_SUBSCRIPTION};

use crate::circuit::{ServiceAction, ServiceHub, StreamRef, Timestamp};
use crate::crypto::{NodeId, Sr25519Keypair};
use crate::dht::{RecordContent, RecordKind};
use crate::driver::counts::{CountsKind, ExchangeRequest, SharedOracles};
use crate::driver::messaging::{HubQueues, MessagingChain, ServiceObserver, SharedQueues};
use crate::driver::unix_now;

/// Name of the oracle's receipt service in BEGIN.
pub const ORACLE_SERVICE: &str = "oracle";
/// Name of the landing service in BEGIN.
pub const LANDING_SERVICE: &str = "landing";
/// Stream records renewed in the DHT at once; beyond this the oldest is no longer renewed.
const MAX_LIVE_RECORDS: usize = 4_096;
/// How long the record of a stream that ended early stays in the DHT.
pub const ENDED_RECORD_SECS: u64 = 120;
/// Record updates held for the hub; past it the oldest is dropped.
const MAX_LANDING_UPDATES: usize = 256;

/// Stream records the host re-signed for streams this node lands (encoded
/// [`StreamRecord`]s), taken by the hub at its next turn (within a second).
#[derive(Clone, Default)]
pub struct SharedLandingUpdates(Arc<Mutex<VecDeque<Vec<u8>>>>);

impl SharedLandingUpdates {
    /// Queues a re-signed record; the oldest is dropped past a bound.
    pub fn push(&self, record: Vec<u8>) {
        let mut queue = self.lock();
        if queue.len() >= MAX_LANDING_UPDATES {
            queue.pop_front();
            tracing::warn!("psp landing: record update queue full, oldest update dropped");
        }
        queue.push_back(record);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, VecDeque<Vec<u8>>> {
        // A poisoned lock only means the other side panicked between two whole entries.
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn is_empty(&self) -> bool {
        self.lock().is_empty()
    }

    /// Takes every queued record, oldest first.
    pub fn take(&self) -> Vec<Vec<u8>> {
        self.lock().drain(..).collect()
    }
}

/// What the host hands the stream services; the hub takes it at its next event.
#[derive(Default)]
pub struct ReceiptKeyUpdates {
    /// The current epoch (receipts are issued under its keys).
    pub epoch: u64,
    /// Issuing keys this oracle made, to install: (epoch, tier, key).
    pub issuing: Vec<(u64, StreamParams, SigningKey)>,
    /// Consumer-token keys this oracle made (published under the chain's reserved token
    /// tier), to install in the oracle's token issuer: (epoch, key).
    pub token_issuing: Vec<(u64, SigningKey)>,
    /// Every oracle's published keys as on chain now, when they changed (replaces the
    /// landing service's set).
    pub published: Option<Vec<PublishedKey>>,
}

/// A stream this node created as its landing node, for the host's media path
/// ([`crate::driver::NodeEvent::StreamCreated`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CreatedStream {
    /// The stream.
    pub stream_id: [u8; 32],
    /// What the producer shows to publish into it
    /// ([`psp_stream::record::publish_token`]).
    pub publish_token: [u8; 32],
    /// What its receipt allows.
    pub params: StreamParams,
    /// The signed stream record.
    pub record: Vec<u8>,
}

/// [`ReceiptKeyUpdates`], shared by the host and the hub.
pub type SharedKeyUpdates = Arc<Mutex<ReceiptKeyUpdates>>;

/// What a node needs to run the stream services.
#[derive(Clone)]
pub struct StreamSetup {
    /// The node's identity key: the oracle's id, and the landing node's record signer.
    pub node_key: Arc<Sr25519Keypair>,
    /// Certificates and identities, as the messaging services check them.
    pub chain: MessagingChain,
    /// Subscriptions at the latest finalized block.
    pub subscriptions: Arc<dyn SubscriptionView + Send + Sync>,
    /// Keys and epoch from the host.
    pub keys: SharedKeyUpdates,
    /// The elected oracles (current and next epoch), kept current by the host: this node
    /// exchanges receipt counts with them while it is one ([`super::counts`]).
    pub oracles: SharedOracles,
    /// Oracle service limits.
    pub oracle: OracleConfig,
    /// Landing service limits.
    pub landing: LandingConfig,
    /// Receipts per subscription and epoch, and the issuer's bounds.
    pub issuer: IssuerConfig,
    /// The landing service's key and spent-set bounds.
    pub verifier: VerifierConfig,
    /// Lifetime of the DHT records of streams (renewed before it runs out). Default 600 s;
    /// at most the DHT's record lifetime.
    pub record_lifetime_secs: u64,
    /// Records the host re-signed (more access points, or ended).
    pub landing_updates: SharedLandingUpdates,
    /// Sees every byte a client sends to the oracle and landing services (tests only).
    pub observer: Option<ServiceObserver>,
}

impl StreamSetup {
    /// Default limits with these keys and chain views.
    pub fn new(
        node_key: Arc<Sr25519Keypair>,
        chain: MessagingChain,
        subscriptions: Arc<dyn SubscriptionView + Send + Sync>,
        keys: SharedKeyUpdates,
    ) -> Self {
        Self {
            node_key,
            chain,
            subscriptions,
            keys,
            oracles: SharedOracles::default(),
            oracle: OracleConfig::default(),
            landing: LandingConfig::default(),
            issuer: IssuerConfig::default(),
            verifier: VerifierConfig::default(),
            record_lifetime_secs: 600,
            landing_updates: SharedLandingUpdates::default(),
            observer: None,
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
enum Kind {
    Oracle,
    Landing,
}

impl Kind {
    fn service(self) -> &'static str {
        match self {
            Kind::Oracle => ORACLE_SERVICE,
            Kind::Landing => LANDING_SERVICE,
        }
    }
}

/// A stream record this node keeps in the DHT until the stream ends.
struct LiveRecord {
    record: Vec<u8>,
    stream_id: [u8; 32],
    expires_at: u64,
    renew_at: u64,
    /// The sequence number of its latest publication (each one is higher).
    seq: u64,
}

/// The relay's hub: `oracle` and `landing` beside the services of `inner`.
pub struct StreamHub {
    inner: Box<dyn ServiceHub>,
    oracle: Oracle,
    landing: Landing,
    setup: StreamSetup,
    epoch: u64,
    /// Published key ids the landing service holds.
    accepted: HashSet<KeyId>,
    streams: HashMap<StreamRef, (Kind, StreamHandle)>,
    handles: HashMap<(Kind, StreamHandle), StreamRef>,
    next_handle: u64,
    actions: VecDeque<ServiceAction>,
    queues: SharedQueues,
    live: VecDeque<LiveRecord>,
    /// This oracle's counts as last handed to the node task (epoch, encoded messages).
    exported: (u64, Vec<ExchangeRequest>),
    /// The relay time and unix time of the latest call, to translate deadlines.
    clock: (Timestamp, u64),
}

impl StreamHub {
    /// A hub serving `inner` beside the stream services; records go out through `queues`.
    pub fn new(inner: Box<dyn ServiceHub>, setup: StreamSetup, queues: SharedQueues) -> Self {
        let node_id = setup.node_key.public();
        let issuer = Issuer::new(OracleId(node_id), setup.issuer.clone());
        Self {
            inner,
            oracle: Oracle::new(node_id, issuer, setup.oracle.clone()),
            landing: Landing::new(
                (*setup.node_key).clone(),
                Verifier::new(setup.verifier.clone()),
                setup.landing.clone(),
            ),
            setup,
            epoch: 0,
            accepted: HashSet::new(),
            streams: HashMap::new(),
            handles: HashMap::new(),
            next_handle: 0,
            actions: VecDeque::new(),
            queues,
            live: VecDeque::new(),
            exported: (0, Vec::new()),
            clock: (Timestamp(0), 0),
        }
    }

    /// Unix seconds now, remembering which relay time it goes with; takes the host's key
    /// updates.
    fn tick(&mut self, now: Timestamp) -> u64 {
        let unix = unix_now();
        self.clock = (now, unix);
        self.take_updates(unix);
        self.take_landing_updates(unix);
        unix
    }

    fn take_updates(&mut self, unix: u64) {
        let (epoch, issuing, token_issuing, published) = {
            let mut updates = self.setup.keys.lock().unwrap_or_else(|e| e.into_inner());
            (
                updates.epoch,
                std::mem::take(&mut updates.issuing),
                std::mem::take(&mut updates.token_issuing),
                updates.published.take(),
            )
        };
        if epoch != self.epoch {
            self.epoch = epoch;
            self.oracle.issuer_mut().prune(epoch);
            if let Some(tokens) = self.oracle.token_issuer_mut() {
                tokens.prune(epoch);
            }
        }
        let counts: Vec<_> = self.queues().counts_in.drain(..).collect();
        for (kind, c) in counts {
            let report = match kind {
                CountsKind::Receipts => Some(self.oracle.issuer_mut().merge(epoch, &c)),
                CountsKind::Tokens => self
                    .oracle
                    .token_issuer_mut()
                    .map(|tokens| tokens.merge(epoch, &c)),
            };
            tracing::debug!(epoch = c.epoch, ?kind, ?report, "psp oracle: counts merged");
        }
        for (epoch, tier, key) in issuing {
            match self.oracle.issuer_mut().install_key(epoch, tier, key) {
                Ok(id) => {
                    tracing::info!(epoch, ?tier, key = %id, "psp oracle: receipt key installed")
                }
                Err(e) => tracing::warn!(epoch, %e, "psp oracle: receipt key not installed"),
            }
        }
        if !token_issuing.is_empty() && self.oracle.token_issuer().is_none() {
            // The first token key: this node issues consumer tokens from now on.
            self.oracle.set_token_issuer(TokenIssuer::new(
                NodeId(self.setup.node_key.public()),
                DEFAULT_TOKENS_PER_SUBSCRIPTION,
                self.setup.issuer.max_subscriptions_per_epoch,
            ));
        }
        if let Some(tokens) = self.oracle.token_issuer_mut() {
            for (epoch, key) in token_issuing {
                match tokens.install_key(epoch, key) {
                    Ok(id) => tracing::info!(epoch, key = %id, "psp oracle: token key installed"),
                    Err(e) => tracing::warn!(epoch, %e, "psp oracle: token key not installed"),
                }
            }
        }
        if let Some(keys) = published {
            let wanted: HashSet<KeyId> = keys.iter().map(PublishedKey::key_id).collect();
            for gone in self.accepted.difference(&wanted) {
                self.landing.verifier_mut().remove_key(gone);
            }
            self.accepted.clear();
            for key in keys {
                match self.landing.verifier_mut().insert_key(key) {
                    Ok(id) => {
                        self.accepted.insert(id);
                    }
                    Err(e) => tracing::warn!(%e, "psp landing: published key refused"),
                }
            }
            self.landing.verifier_mut().prune(unix);
        }
    }

    fn run(&mut self, now: Timestamp, kind: Kind, handle: StreamHandle, data: &[u8]) {
        let unix = self.tick(now);
        let (oracle, landing, epoch) = (&mut self.oracle, &mut self.landing, self.epoch);
        let subscriptions = &*self.setup.subscriptions;
        let result = self.setup.chain.with_view(|chain| match kind {
            Kind::Oracle => {
                let ctx = OracleContext {
                    chain: *chain,
                    epoch,
                    subscriptions,
                };
                oracle.handle_data(unix, handle, data, &ctx)
            }
            Kind::Landing => landing.handle_data(unix, handle, data, chain.registry),
        });
        if let Err(e) = result {
            tracing::info!(%e, service = kind.service(), "psp streams: refused");
        }
        if kind == Kind::Oracle {
            self.export_counts();
        }
        self.drain(unix);
    }

    fn queues(&self) -> std::sync::MutexGuard<'_, HubQueues> {
        // A poisoned lock only means the other side panicked between two whole entries.
        self.queues.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Hands this oracle's receipt and token counts of the epoch to the node task if they
    /// changed.
    fn export_counts(&mut self) {
        let receipts = self.oracle.issuer().counts(self.epoch);
        let tokens = self
            .oracle
            .token_issuer()
            .map(|t| t.counts(self.epoch))
            .unwrap_or_default();
        let counts: Vec<ExchangeRequest> = receipts
            .iter()
            .map(|c| ExchangeRequest::Counts(c.encode()))
            .chain(
                tokens
                    .iter()
                    .map(|c| ExchangeRequest::TokenCounts(c.encode())),
            )
            .collect();
        if (self.epoch, &counts) != (self.exported.0, &self.exported.1) {
            self.exported = (self.epoch, counts.clone());
            self.queues().counts_out = Some(counts);
        }
    }

    /// Turns the machines' actions into the relay's.
    fn drain(&mut self, unix: u64) {
        let mut actions = Vec::new();
        while let Some(a) = self.oracle.poll_action() {
            actions.push((Kind::Oracle, a));
        }
        while let Some(a) = self.landing.poll_action() {
            actions.push((Kind::Landing, a));
        }
        for (kind, action) in actions {
            match action {
                Action::Send { stream, bytes } => {
                    if let Some(&to) = self.handles.get(&(kind, stream)) {
                        self.actions
                            .push_back(ServiceAction::Send { to, data: bytes });
                    }
                }
                Action::Close { stream } => {
                    if let Some(at) = self.handles.remove(&(kind, stream)) {
                        self.streams.remove(&at);
                        self.actions.push_back(ServiceAction::End { stream: at });
                    }
                }
                Action::Publish { record, .. } => self.keep_record(unix, record),
                Action::Created {
                    stream_id,
                    publish_token,
                    params,
                    record,
                } => {
                    let created = CreatedStream {
                        stream_id: stream_id.0,
                        publish_token,
                        params,
                        record,
                    };
                    HubQueues::push(&mut self.queues().created, created, "created stream");
                }
                other => tracing::debug!(action = ?other, "psp streams: action ignored"),
            }
        }
    }

    /// Publishes a stream record this node signed and keeps it for renewal.
    fn keep_record(&mut self, unix: u64, record: Vec<u8>) {
        let Ok(decoded) = StreamRecord::decode(&record) else {
            tracing::warn!("psp landing: own stream record does not decode; not published");
            return;
        };
        if self.live.len() >= MAX_LIVE_RECORDS {
            self.live.pop_front();
            tracing::warn!("psp landing: too many live streams, the oldest is no longer renewed");
        }
        let mut live = LiveRecord {
            record,
            stream_id: decoded.stream_id.0,
            expires_at: decoded.expires_at,
            renew_at: 0,
            seq: 0,
        };
        self.publish(unix, &mut live);
        self.live.push_back(live);
    }

    /// Replaces the records the host re-signed and publishes them at once. A record that is
    /// not this node's, or of a stream it does not keep, is dropped (logged).
    fn take_landing_updates(&mut self, unix: u64) {
        let me = self.setup.node_key.public();
        for record in self.setup.landing_updates.take() {
            let decoded = match StreamRecord::decode(&record) {
                Ok(decoded) if decoded.landing == me => decoded,
                Ok(_) => {
                    tracing::warn!("psp landing: updated record signed by another node ignored");
                    continue;
                }
                Err(e) => {
                    tracing::warn!(%e, "psp landing: updated record does not decode");
                    continue;
                }
            };
            let mut live = std::mem::take(&mut self.live);
            match live.iter_mut().find(|r| r.stream_id == decoded.stream_id.0) {
                Some(kept) => {
                    kept.record = record;
                    kept.expires_at = decoded.expires_at;
                    self.publish(unix, kept);
                    tracing::info!(
                        stream = ?decoded.stream_id,
                        access_points = decoded.access_points.len(),
                        ended = decoded.expires_at <= unix,
                        "psp landing: stream record updated"
                    );
                }
                None => tracing::warn!(
                    stream = ?decoded.stream_id,
                    "psp landing: updated record of a stream not kept here ignored"
                ),
            }
            self.live = live;
        }
    }

    /// Puts `live` into the DHT, valid until the stream ends or the record lifetime runs
    /// out, and sets when to renew it (at three quarters of that).
    /// A stream that ended stays for [`ENDED_RECORD_SECS`] and is not renewed.
    fn publish(&self, unix: u64, live: &mut LiveRecord) {
        let lifetime = self.setup.record_lifetime_secs.max(4);
        let ended = live.expires_at <= unix;
        let expires_at = if ended {
            unix.saturating_add(ENDED_RECORD_SECS.min(lifetime))
        } else {
            live.expires_at.min(unix.saturating_add(lifetime))
        };
        // Renewals are at least a second apart, updates may not be: each is higher.
        live.seq = unix.max(live.seq.saturating_add(1));
        let me = self.setup.node_key.public();
        let content = RecordContent {
            kind: RecordKind::Stream,
            owner: me,
            topic: live.stream_id,
            publisher: me,
            seq: live.seq,
            issued_at: unix,
            expires_at,
            value: live.record.clone(),
        };
        let record = content.sign(&self.setup.node_key, &self.setup.node_key);
        HubQueues::push(&mut self.queues().publish, record.encode(), "stream record");
        live.renew_at = if ended {
            u64::MAX
        } else {
            unix.saturating_add((expires_at.saturating_sub(unix) * 3 / 4).max(1))
        };
    }

    /// Renews the records due and forgets the streams that ended.
    fn renew(&mut self, unix: u64) {
        let mut live = std::mem::take(&mut self.live);
        live.retain(|r| r.expires_at > unix);
        for record in live.iter_mut().filter(|r| r.renew_at <= unix) {
            self.publish(unix, record);
        }
        self.live = live;
    }

    fn to_relay_time(&self, unix: u64) -> Timestamp {
        let (at, at_unix) = self.clock;
        Timestamp(at.0.saturating_add(unix.saturating_sub(at_unix).saturating_mul(1_000)))
    }
}

impl ServiceHub for StreamHub {
    fn open(&mut self, now: Timestamp, service: &str, stream: StreamRef) -> bool {
        let kind = match service {
            ORACLE_SERVICE => Kind::Oracle,
            LANDING_SERVICE => Kind::Landing,
            _ => return self.inner.open(now, service, stream),
        };
        self.next_handle = self.next_handle.wrapping_add(1);
        let handle = StreamHandle(self.next_handle);
        self.streams.insert(stream, (kind, handle));
        self.handles.insert((kind, handle), stream);
        true
    }

    fn on_data(&mut self, now: Timestamp, stream: StreamRef, data: &[u8]) {
        let Some((kind, handle)) = self.streams.get(&stream).copied() else {
            return self.inner.on_data(now, stream, data);
        };
        if let Some(observe) = &self.setup.observer {
            observe(kind.service(), data);
        }
        self.run(now, kind, handle, data);
    }

    fn on_closed(&mut self, now: Timestamp, stream: StreamRef) {
        let Some((kind, handle)) = self.streams.remove(&stream) else {
            return self.inner.on_closed(now, stream);
        };
        self.handles.remove(&(kind, handle));
        match kind {
            Kind::Oracle => self.oracle.handle_stream_closed(handle),
            Kind::Landing => self.landing.handle_stream_closed(handle),
        }
        let unix = self.tick(now);
        self.drain(unix);
    }

    fn poll_action(&mut self) -> Option<ServiceAction> {
        self.actions
            .pop_front()
            .or_else(|| self.inner.poll_action())
    }

    fn poll_timeout(&self) -> Option<Timestamp> {
        let unix = [
            self.oracle.poll_timeout(),
            self.landing.poll_timeout(),
            self.live.iter().map(|r| r.renew_at.min(r.expires_at)).min(),
        ]
        .into_iter()
        .flatten()
        .min();
        let mut ours = unix.map(|unix| self.to_relay_time(unix));
        if !self.setup.landing_updates.is_empty() {
            // Updates waiting: a turn now (the node task wakes at least once a second).
            ours = Some(self.clock.0);
        }
        match (ours, self.inner.poll_timeout()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    fn on_timeout(&mut self, now: Timestamp) {
        let unix = self.tick(now);
        self.oracle.handle_timeout(unix);
        self.landing.handle_timeout(unix);
        self.renew(unix);
        self.drain(unix);
        self.inner.on_timeout(now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::circuit::Services;
    use crate::dht::SignedRecord;
    use crate::registry::StaticRegistry;
    use psp_stream::oracle::SubscriptionView;
    use psp_stream::record::StreamId;
    use psp_stream::wire::FormatFlags;

    struct NoSubscriptions;

    impl SubscriptionView for NoSubscriptions {
        fn allowance(&self, _identity: &[u8; 32], _epoch: u64) -> Option<StreamParams> {
            None
        }
    }

    fn hub(key: &Arc<Sr25519Keypair>) -> (StreamHub, SharedQueues, SharedLandingUpdates) {
        let chain = MessagingChain {
            genesis: [0; 32],
            authorities: Default::default(),
            registry: Arc::new(StaticRegistry(Default::default())),
            generation: Default::default(),
        };
        let setup = StreamSetup::new(
            key.clone(),
            chain,
            Arc::new(NoSubscriptions),
            SharedKeyUpdates::default(),
        );
        let updates = setup.landing_updates.clone();
        let queues = SharedQueues::default();
        let hub = StreamHub::new(Box::new(Services::default()), setup, queues.clone());
        (hub, queues, updates)
    }

    fn record(key: &Sr25519Keypair, created: u64, expires: u64, points: &[[u8; 32]]) -> Vec<u8> {
        let id = StreamId([1; 32]);
        StreamRecord::sign(
            key,
            id,
            FormatFlags::webrtc(),
            created,
            expires,
            points.to_vec(),
        )
        .encode()
    }

    /// The DHT records the hub handed to the node task since the last call.
    fn published(queues: &SharedQueues) -> Vec<RecordContent> {
        let mut q = queues.lock().expect("queues");
        q.publish
            .drain(..)
            .map(|bytes| {
                SignedRecord::decode(&bytes)
                    .expect("a signed record")
                    .content
            })
            .collect()
    }

    /// Runs the hub's turn, as the relay does once its deadline has passed.
    fn turn(hub: &mut StreamHub) {
        let due = hub.poll_timeout().expect("updates make the hub due");
        hub.on_timeout(due);
    }

    #[test]
    fn re_signed_records_replace_the_kept_one_at_once_and_an_ended_one_is_not_renewed() {
        let key = Arc::new(Sr25519Keypair::from_seed(&[3; 32]));
        let (mut hub, queues, updates) = hub(&key);
        let now = unix_now();
        let first = record(&key, now, now + 600, &[[2; 32]]);
        hub.keep_record(now, first.clone());
        let kept = published(&queues);
        assert_eq!(kept.len(), 1);
        assert_eq!(kept[0].value, first);

        // More access points: published at once, with a higher sequence number.
        let second = record(&key, now, now + 600, &[[2; 32], [4; 32]]);
        updates.push(second.clone());
        turn(&mut hub);
        let replaced = published(&queues);
        assert_eq!(replaced.len(), 1);
        assert_eq!(replaced[0].value, second);
        assert!(
            replaced[0].seq > kept[0].seq,
            "{} > {}",
            replaced[0].seq,
            kept[0].seq
        );
        assert_eq!(hub.live[0].record, second, "renewals carry the new record");

        // Another node's record, or one of a stream not kept here, changes nothing.
        let other = Sr25519Keypair::from_seed(&[5; 32]);
        updates.push(record(&other, now, now + 600, &[[2; 32]]));
        let unknown = StreamRecord::sign(
            &key,
            StreamId([9; 32]),
            FormatFlags::webrtc(),
            now,
            now + 600,
            vec![[2; 32]],
        );
        updates.push(unknown.encode());
        updates.push(vec![1, 2, 3]);
        turn(&mut hub);
        assert!(published(&queues).is_empty());
        assert_eq!(hub.live[0].record, second);

        // Ended: published to stay a while, then no longer kept or renewed.
        let ended = record(&key, now - 10, now - 1, &[[2; 32], [4; 32]]);
        updates.push(ended.clone());
        turn(&mut hub);
        let last = published(&queues);
        assert_eq!(last.len(), 1);
        assert_eq!(last[0].value, ended);
        assert!(last[0].expires_at > now && last[0].expires_at <= now + ENDED_RECORD_SECS + 1);
        hub.on_timeout(Timestamp(u64::MAX / 2));
        assert!(hub.live.is_empty(), "an ended stream is not renewed");
        assert!(published(&queues).is_empty());
    }
}
