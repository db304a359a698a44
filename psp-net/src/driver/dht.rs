//! The DHT on the overlay's libp2p links: libp2p Kademlia (`/psp/kad/1`) whose store takes
//! only chain-checked records.
//!
//! * **Nothing unvalidated is stored**: Kademlia runs with `StoreInserts::FilterBoth`, and the
//!   store itself ([`DhtStore`]) validates every record ([`crate::dht::RecordStore::put`]:
//!   owner and publisher signatures, both identities live on chain, expiry within the maximum
//!   lifetime, size and per-publisher bounds, newest sequence number wins).
//! * **Node ids bound to chain identities**: buckets are filled by hand
//!   (`BucketInserts::Manual`) with the peer ids and addresses of node identities registered
//!   on chain, fed by the host ([`super::NodeHandle::dht_set_peers`]: the whole live set at
//!   each finalized block); at most [`DhtSetup::max_peers_per_ip`] peers per IP address and
//!   [`DhtSetup::max_peers_per_subnet_in_bucket`] per subnet in a bucket (loopback exempt: a
//!   local test network).
//! * **Eviction**: a peer missing from the next feed (its identity revoked or deregistered on
//!   chain) leaves the routing table at that feed, and its per-IP slot is freed; a peer whose
//!   registered address changed is re-admitted at the new one.
//! * **No referrals to unregistered peers**: Kademlia would dial any peer another peer names
//!   in an answer; the swarm's dial gate (`behaviour::DialGate`) denies every outbound
//!   connection to a peer outside the set last fed, so a lookup only ever contacts registered
//!   nodes. Inbound connections stay open to anyone (clients have no chain identity). Before
//!   the first feed (nodes without a chain, e.g. on static directories) nothing is denied.
//! * **Disjoint lookups**: `disjoint_query_paths(true)` (S/Kademlia); every record a lookup
//!   meets is validated here and the valid one with the highest sequence number wins, so a
//!   stale or forged answer never does.
//! * **Expiry**: expired records are wiped at every sweep and never served; records of
//!   identities revoked on chain are purged. Records are not republished: owners renew them.

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use libp2p::kad::{self, store::RecordStore as KadStore};
use libp2p::multiaddr::Protocol;
use libp2p::{Multiaddr, PeerId, StreamProtocol};
use tokio::sync::oneshot;

use super::{unix_now, DriverError};
use crate::dht::{RecordKey, RecordStore, SignedRecord, StoreError, StoreLimits, ValidRecord};
use crate::registry::IdentityRegistry;

/// The Kademlia protocol of the PSP DHT.
pub const DHT_PROTOCOL: StreamProtocol = StreamProtocol::new("/psp/kad/1");

/// What a node needs to serve the DHT.
#[derive(Clone)]
pub struct DhtSetup {
    /// The chain check for record owners and publishers.
    pub registry: Arc<dyn IdentityRegistry + Send + Sync>,
    /// Record and store bounds.
    pub limits: StoreLimits,
    /// How long a lookup or a put may take. Default 15 s: above libp2p-kad's fixed 10 s wait for
    /// a silent peer, so one peer that drops requests among a key's closest cannot end a put's
    /// closest-peers phase before the record is sent anywhere (measured in
    /// `tests/dht_adversarial.rs`: with 10 s, puts beside drop nodes reached nobody).
    pub query_timeout: Duration,
    /// Most peers per IP address in the routing table (loopback addresses exempt). Default 2.
    pub max_peers_per_ip: usize,
    /// Most peers of one /24 (IPv4) or /48 (IPv6) network in one k-bucket (loopback exempt).
    /// Default 2.
    pub max_peers_per_subnet_in_bucket: usize,
}

impl DhtSetup {
    /// Defaults with `registry`.
    pub fn new(registry: Arc<dyn IdentityRegistry + Send + Sync>) -> Self {
        Self {
            registry,
            limits: StoreLimits::default(),
            query_timeout: Duration::from_secs(15),
            max_peers_per_ip: 2,
            max_peers_per_subnet_in_bucket: 2,
        }
    }
}

impl std::fmt::Debug for DhtSetup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DhtSetup")
            .field("limits", &self.limits)
            .field("query_timeout", &self.query_timeout)
            .field("max_peers_per_ip", &self.max_peers_per_ip)
            .field(
                "max_peers_per_subnet_in_bucket",
                &self.max_peers_per_subnet_in_bucket,
            )
            .finish_non_exhaustive()
    }
}

/// What a put did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DhtPutReport {
    /// The record's key.
    pub key: RecordKey,
    /// Peers (besides this node) known to have stored it: the put asks the k closest nodes
    /// and succeeds at the first acknowledgement, so 1 means "at least one"; 0 means none
    /// answered (e.g. a one-node network), the record is still stored here.
    pub replicas: usize,
}

/// What a lookup found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DhtGetReport {
    /// The valid record with the highest sequence number, encoded.
    pub record: Option<Vec<u8>>,
    /// Answers that failed validation (forged, stale beyond the best, expired, ...).
    pub refused: usize,
    /// Valid answers.
    pub found: usize,
}

fn record_key(key: &kad::RecordKey) -> Option<RecordKey> {
    key.as_ref().try_into().ok()
}

/// The Kademlia store: a [`RecordStore`] and the chain check.
pub(crate) struct DhtStore {
    records: RecordStore,
    registry: Arc<dyn IdentityRegistry + Send + Sync>,
}

impl DhtStore {
    fn new(setup: &DhtSetup) -> Self {
        Self {
            records: RecordStore::new(setup.limits),
            registry: setup.registry.clone(),
        }
    }

    /// Validates and stores; storing the very record held again is a no-op, not an error.
    pub(crate) fn put_checked(&mut self, key: &RecordKey, value: &[u8]) -> Result<(), StoreError> {
        match self.records.put(key, value, unix_now(), &&*self.registry) {
            Ok(_) => Ok(()),
            Err(StoreError::Stale { .. })
                if self
                    .records
                    .get(key, unix_now())
                    .is_some_and(|held| held.signed().encode() == value) =>
            {
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    /// Keeps a record validated elsewhere (a lookup's winner), unless the store holds a newer
    /// one or is full: best effort, never an error.
    fn keep(&mut self, record: ValidRecord) {
        let _ = self.records.insert(record);
    }

    /// Wipes expired records and, with `purge`, those of identities no longer live.
    pub(crate) fn sweep(&mut self, purge: bool) -> usize {
        let mut wiped = self.records.expire(unix_now());
        if purge {
            wiped += self.records.purge_revoked(&&*self.registry);
        }
        wiped
    }

    fn to_kad(record: &ValidRecord) -> Cow<'static, kad::Record> {
        let left = record.content().expires_at.saturating_sub(unix_now());
        Cow::Owned(kad::Record {
            key: kad::RecordKey::new(record.key()),
            value: record.signed().encode(),
            publisher: None,
            expires: Instant::now().checked_add(Duration::from_secs(left)),
        })
    }
}

impl KadStore for DhtStore {
    type RecordsIter<'a> = std::vec::IntoIter<Cow<'a, kad::Record>>;
    type ProvidedIter<'a> = std::iter::Empty<Cow<'a, kad::ProviderRecord>>;

    fn get(&self, k: &kad::RecordKey) -> Option<Cow<'_, kad::Record>> {
        let key = record_key(k)?;
        self.records.get(&key, unix_now()).map(Self::to_kad)
    }

    fn put(&mut self, r: kad::Record) -> kad::store::Result<()> {
        let key = record_key(&r.key).ok_or(kad::store::Error::ValueTooLarge)?;
        self.put_checked(&key, &r.value).map_err(|e| match e {
            StoreError::Full { .. } | StoreError::PublisherQuota { .. } => {
                kad::store::Error::MaxRecords
            }
            // Kademlia has no "invalid" error; it only logs it.
            _ => kad::store::Error::ValueTooLarge,
        })
    }

    fn remove(&mut self, k: &kad::RecordKey) {
        if let Some(key) = record_key(k) {
            self.records.remove(&key);
        }
    }

    fn records(&self) -> Self::RecordsIter<'_> {
        let now = unix_now();
        self.records
            .iter()
            .filter(|r| !r.expired(now))
            .map(Self::to_kad)
            .collect::<Vec<_>>()
            .into_iter()
    }

    fn add_provider(&mut self, _record: kad::ProviderRecord) -> kad::store::Result<()> {
        // Provider records are unsigned: the PSP DHT does not store them.
        Err(kad::store::Error::MaxProvidedKeys)
    }

    fn providers(&self, _key: &kad::RecordKey) -> Vec<kad::ProviderRecord> {
        Vec::new()
    }

    fn provided(&self) -> Self::ProvidedIter<'_> {
        std::iter::empty()
    }

    fn remove_provider(&mut self, _k: &kad::RecordKey, _p: &PeerId) {}
}

/// The Kademlia behaviour of a node.
pub(crate) fn behaviour(peer_id: PeerId, setup: &DhtSetup) -> kad::Behaviour<DhtStore> {
    let mut config = kad::Config::new(DHT_PROTOCOL);
    config
        .set_record_filtering(kad::StoreInserts::FilterBoth)
        .disjoint_query_paths(true)
        .set_kbucket_inserts(kad::BucketInserts::Manual)
        .set_query_timeout(setup.query_timeout)
        .set_record_ttl(None)
        .set_replication_interval(None)
        .set_publication_interval(None)
        .set_provider_publication_interval(None)
        .set_periodic_bootstrap_interval(None)
        .set_max_packet_size(2 * crate::dht::record::MAX_RECORD_LEN);
    let mut kad = kad::Behaviour::with_config(peer_id, DhtStore::new(setup), config);
    kad.set_mode(Some(kad::Mode::Server));
    kad
}

struct PendingGet {
    key: RecordKey,
    best: Option<ValidRecord>,
    found: usize,
    refused: usize,
    reply: oneshot::Sender<Result<DhtGetReport, DriverError>>,
}

/// The node task's DHT state: pending queries and the routing-table admission.
pub(crate) struct Dht {
    setup: DhtSetup,
    local: PeerId,
    gets: HashMap<kad::QueryId, PendingGet>,
    puts: HashMap<
        kad::QueryId,
        (
            RecordKey,
            oneshot::Sender<Result<DhtPutReport, DriverError>>,
        ),
    >,
    /// The peers in the routing table (added, possibly still pending in a full bucket).
    known: HashMap<PeerId, Known>,
    per_ip: HashMap<IpAddr, usize>,
    sweeps: u64,
}

/// A peer this node put in the routing table.
struct Known {
    /// The address it was fed with.
    addr: Multiaddr,
    /// The address it counts against in `per_ip` (`None`: loopback or no IP, not counted).
    ip: Option<IpAddr>,
}

fn ip_of(addr: &Multiaddr) -> Option<IpAddr> {
    addr.iter().find_map(|p| match p {
        Protocol::Ip4(ip) => Some(IpAddr::V4(ip)),
        Protocol::Ip6(ip) => Some(IpAddr::V6(ip)),
        _ => None,
    })
}

/// The network prefix the per-bucket limit counts: /24 for IPv4, /48 for IPv6.
fn subnet(ip: IpAddr) -> Vec<u8> {
    match ip {
        IpAddr::V4(v4) => v4.octets()[..3].to_vec(),
        IpAddr::V6(v6) => v6.octets()[..6].to_vec(),
    }
}

/// Peers of `ip`'s subnet already in the k-bucket `peer` falls into.
fn subnet_peers_in_bucket(kad: &mut kad::Behaviour<DhtStore>, peer: PeerId, ip: IpAddr) -> usize {
    let net = subnet(ip);
    kad.kbucket(peer).map_or(0, |bucket| {
        bucket
            .iter()
            .filter(|e| {
                e.node
                    .value
                    .iter()
                    .any(|a| ip_of(a).is_some_and(|other| subnet(other) == net))
            })
            .count()
    })
}

fn dht_error(reason: impl Into<String>) -> DriverError {
    DriverError::Dht(reason.into())
}

impl Dht {
    pub(crate) fn new(setup: DhtSetup, local: PeerId) -> Self {
        Self {
            setup,
            local,
            gets: HashMap::new(),
            puts: HashMap::new(),
            known: HashMap::new(),
            per_ip: HashMap::new(),
            sweeps: 0,
        }
    }

    /// Makes the routing table the registered nodes `peers` (the whole current set): peers
    /// no longer in it are evicted (first, so their per-IP slots are free again), new ones are
    /// added within the per-IP and per-bucket subnet limits. Returns `(added, removed)`; a
    /// peer whose address changed and was re-admitted counts as neither.
    pub(crate) fn set_peers(
        &mut self,
        kad: &mut kad::Behaviour<DhtStore>,
        peers: Vec<(PeerId, Multiaddr)>,
    ) -> (usize, usize) {
        // The set, in the order given (admission under the limits is first come, first
        // served), the first address of a peer listed twice.
        let mut wanted: HashMap<PeerId, Multiaddr> = HashMap::with_capacity(peers.len());
        let mut order = Vec::with_capacity(peers.len());
        for (peer, addr) in peers {
            if peer != self.local && !wanted.contains_key(&peer) {
                wanted.insert(peer, addr);
                order.push(peer);
            }
        }

        let mut removed = 0;
        let mut moved = HashSet::new();
        let stale: Vec<PeerId> = self
            .known
            .iter()
            .filter(|(peer, known)| wanted.get(peer) != Some(&known.addr))
            .map(|(peer, _)| *peer)
            .collect();
        for peer in stale {
            self.forget(kad, &peer);
            if wanted.contains_key(&peer) {
                tracing::info!(%peer, "psp dht: registered address changed, re-admitting");
                moved.insert(peer);
            } else {
                tracing::info!(%peer, "psp dht: peer no longer registered, evicted");
                removed += 1;
            }
        }

        let mut added = 0;
        for peer in order {
            if self.known.contains_key(&peer) {
                continue;
            }
            let Some(addr) = wanted.remove(&peer) else {
                continue;
            };
            match (self.admit(kad, peer, addr), moved.contains(&peer)) {
                (true, false) => added += 1,
                (false, true) => {
                    tracing::info!(%peer, "psp dht: not re-admitted at its new address, evicted");
                    removed += 1;
                }
                _ => {}
            }
        }
        (added, removed)
    }

    /// Puts a registered node in the routing table unless a limit refuses it.
    fn admit(&mut self, kad: &mut kad::Behaviour<DhtStore>, peer: PeerId, addr: Multiaddr) -> bool {
        let ip = ip_of(&addr).filter(|ip| !ip.is_loopback());
        if let Some(ip) = ip {
            if self.per_ip.get(&ip).copied().unwrap_or(0) >= self.setup.max_peers_per_ip {
                tracing::info!(%peer, %ip, "psp dht: per-address limit, peer not added");
                return false;
            }
            if subnet_peers_in_bucket(kad, peer, ip) >= self.setup.max_peers_per_subnet_in_bucket {
                tracing::info!(%peer, %ip, "psp dht: per-bucket subnet limit, peer not added");
                return false;
            }
        }
        if let kad::RoutingUpdate::Failed = kad.add_address(&peer, addr.clone()) {
            // Retried at the next feed; at debug, as a full bucket refuses at every block.
            tracing::debug!(%peer, %addr, "psp dht: bucket full or bad address, peer not added");
            return false;
        }
        if let Some(ip) = ip {
            *self.per_ip.entry(ip).or_insert(0) += 1;
        }
        self.known.insert(peer, Known { addr, ip });
        true
    }

    /// Takes a peer out of the routing table and frees its per-IP slot.
    fn forget(&mut self, kad: &mut kad::Behaviour<DhtStore>, peer: &PeerId) {
        kad.remove_peer(peer);
        if let Some(Known { ip: Some(ip), .. }) = self.known.remove(peer) {
            if let Some(n) = self.per_ip.get_mut(&ip) {
                *n = n.saturating_sub(1);
                if *n == 0 {
                    self.per_ip.remove(&ip);
                }
            }
        }
    }

    /// Validates and stores locally, then replicates to the closest peers.
    pub(crate) fn put(
        &mut self,
        kad: &mut kad::Behaviour<DhtStore>,
        bytes: Vec<u8>,
        reply: oneshot::Sender<Result<DhtPutReport, DriverError>>,
    ) {
        let key = match SignedRecord::decode(&bytes) {
            Ok(r) => r.content.key(),
            Err(e) => {
                let _ = reply.send(Err(dht_error(format!("record refused: {e}"))));
                return;
            }
        };
        if let Err(e) = kad.store_mut().put_checked(&key, &bytes) {
            let _ = reply.send(Err(dht_error(format!("record refused: {e}"))));
            return;
        }
        let record = kad::Record::new(kad::RecordKey::new(&key), bytes);
        match kad.put_record(record, kad::Quorum::One) {
            Ok(id) => {
                self.puts.insert(id, (key, reply));
            }
            Err(e) => {
                let _ = reply.send(Err(dht_error(format!("record refused: {e}"))));
            }
        }
    }

    /// Starts a lookup.
    pub(crate) fn get(
        &mut self,
        kad: &mut kad::Behaviour<DhtStore>,
        key: RecordKey,
        reply: oneshot::Sender<Result<DhtGetReport, DriverError>>,
    ) {
        let id = kad.get_record(kad::RecordKey::new(&key));
        self.gets.insert(
            id,
            PendingGet {
                key,
                best: None,
                found: 0,
                refused: 0,
                reply,
            },
        );
    }

    /// Wipes expired records (and every 10th time, revoked identities' records).
    pub(crate) fn sweep(&mut self, kad: &mut kad::Behaviour<DhtStore>) {
        self.sweeps += 1;
        let wiped = kad.store_mut().sweep(self.sweeps.is_multiple_of(10));
        if wiped > 0 {
            tracing::info!(wiped, "psp dht: expired or revoked records wiped");
        }
    }

    pub(crate) fn on_event(&mut self, kad: &mut kad::Behaviour<DhtStore>, event: kad::Event) {
        match event {
            kad::Event::InboundRequest {
                request:
                    kad::InboundRequest::PutRecord {
                        source,
                        record: Some(record),
                        ..
                    },
            } => {
                let Some(key) = record_key(&record.key) else {
                    tracing::info!(%source, "psp dht: refused a record under a malformed key");
                    return;
                };
                match kad.store_mut().put_checked(&key, &record.value) {
                    Ok(()) => tracing::debug!(%source, "psp dht: stored a record"),
                    Err(e) => tracing::info!(%source, %e, "psp dht: refused a record"),
                }
            }
            kad::Event::OutboundQueryProgressed {
                id, result, step, ..
            } => self.on_progress(kad, id, result, step.last),
            other => tracing::trace!(event = ?other, "psp dht"),
        }
    }

    fn on_progress(
        &mut self,
        kad: &mut kad::Behaviour<DhtStore>,
        id: kad::QueryId,
        result: kad::QueryResult,
        last: bool,
    ) {
        match result {
            kad::QueryResult::GetRecord(result) => {
                let Some(pending) = self.gets.get_mut(&id) else {
                    return;
                };
                if let Ok(kad::GetRecordOk::FoundRecord(found)) = &result {
                    let registry = &*self.setup.registry;
                    match SignedRecord::decode_valid(
                        &pending.key,
                        &found.record.value,
                        unix_now(),
                        &registry,
                        &self.setup.limits.record,
                    ) {
                        Ok(valid) => {
                            pending.found += 1;
                            let newer = pending
                                .best
                                .as_ref()
                                .is_none_or(|b| valid.content().seq > b.content().seq);
                            if newer {
                                pending.best = Some(valid);
                            }
                        }
                        Err(e) => {
                            pending.refused += 1;
                            tracing::info!(peer = ?found.peer, %e, "psp dht: lookup answer refused");
                        }
                    }
                }
                if last || result.is_err() {
                    if let Some(p) = self.gets.remove(&id) {
                        if let Some(best) = &p.best {
                            // Keep the newest version here too (it was validated above).
                            kad.store_mut().keep(best.clone());
                        }
                        let _ = p.reply.send(Ok(DhtGetReport {
                            record: p.best.map(|b| b.signed().encode()),
                            refused: p.refused,
                            found: p.found,
                        }));
                    }
                }
            }
            kad::QueryResult::PutRecord(result) => {
                let Some((key, reply)) = self.puts.remove(&id) else {
                    return;
                };
                let replicas = match result {
                    Ok(_) => 1,
                    Err(kad::PutRecordError::QuorumFailed { success, .. })
                    | Err(kad::PutRecordError::Timeout { success, .. }) => success.len(),
                };
                let _ = reply.send(Ok(DhtPutReport { key, replicas }));
            }
            _ => {}
        }
    }
}
