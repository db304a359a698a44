//! A deterministic in-process DHT network: the simulation test and the lookup benchmark run on it.
//!
//! Every node has a [`RoutingTable`] and a [`RecordStore`]; every lookup is a real [`Lookup`]
//! checked by the real [`RecordValidator`]. Messages are not sent anywhere: a query is answered at
//! once from the responder's state, and its answer is delivered after a seeded latency (two
//! one-way delays) on a simulated millisecond clock. A silent peer fails at the query deadline.
//! Nothing reads the wall clock, so a run is a pure function of its [`SimConfig`].
//!
//! Malicious nodes (registered, staked nodes whose operator misbehaves) take turns among the
//! [`Behaviour`]s: drop every query, answer with forged records, answer with a stale but validly
//! signed record, or answer with only their accomplices as "closer peers" (eclipse attempt).
//! They know every record ever published, stale versions included.
//!
//! Unoptimized, one sr25519 verification takes about 15 ms, so a debug-build run can memoize
//! record validation ([`SimConfig::memoize_validation`]); see [`Memo`] for why that is sound.

use std::cell::RefCell;
use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, HashMap};
use std::net::{IpAddr, Ipv4Addr};

use super::lookup::{Lookup, LookupConfig, LookupResult, RecordValidator, Response, Validator};
use super::record::{
    RecordContent, RecordError, RecordKey, RecordKind, RecordLimits, SignedRecord, ValidRecord,
};
use super::routing::{DhtId, PeerInfo, RoutingConfig, RoutingTable};
use super::store::{RecordStore, StoreLimits};
use crate::circuit::Timestamp;
use crate::crypto::Sr25519Keypair;
use crate::registry::{IdentityKind, StaticRegistry};

/// Unix seconds at simulated time zero.
pub const EPOCH_SECS: u64 = 1_700_000_000;

/// xorshift64*: a tiny seeded generator (the library has no `rand`).
#[derive(Clone, Debug)]
pub struct XorShift(u64);

impl XorShift {
    /// A generator from `seed` (any value, zero included).
    pub fn new(seed: u64) -> Self {
        Self(seed ^ 0x9e37_79b9_7f4a_7c15 | 1)
    }

    /// The next 64 bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// Uniform in `0..n` (`0` when `n == 0`).
    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            0
        } else {
            self.next_u64() % n
        }
    }

    /// Uniform in `lo..=hi`.
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.below(hi.saturating_sub(lo) + 1)
    }

    /// 32 random bytes.
    pub fn bytes32(&mut self) -> [u8; 32] {
        let mut out = [0u8; 32];
        for chunk in out.chunks_mut(8) {
            chunk.copy_from_slice(&self.next_u64().to_le_bytes());
        }
        out
    }
}

/// How a node answers queries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Behaviour {
    /// Follows the protocol.
    Honest,
    /// Never answers.
    Drop,
    /// Answers with a forged record (bad signature, wrong key or junk) and honest peers.
    Forge,
    /// Answers with the oldest validly signed version of the record and honest peers.
    Stale,
    /// Answers with the malicious nodes closest to the target, and no record.
    Eclipse,
}

const MALICIOUS: [Behaviour; 4] = [
    Behaviour::Drop,
    Behaviour::Forge,
    Behaviour::Stale,
    Behaviour::Eclipse,
];

/// One simulated node.
#[derive(Debug)]
pub struct SimNode {
    /// Its identity key pair (it co-signs the records it publishes).
    pub keypair: Sr25519Keypair,
    /// Its identity, DHT id and address.
    pub info: PeerInfo,
    /// How it answers.
    pub behaviour: Behaviour,
    /// Its routing table.
    pub table: RoutingTable,
    /// Its record store.
    pub store: RecordStore,
}

/// The parameters of a run.
#[derive(Clone, Copy, Debug)]
pub struct SimConfig {
    /// Nodes.
    pub nodes: usize,
    /// Share of malicious nodes, in percent.
    pub malicious_percent: usize,
    /// Registered clients (record owners).
    pub clients: usize,
    /// The seed of everything.
    pub seed: u64,
    /// One-way message delay, uniform in this range, in milliseconds.
    pub latency_ms: (u64, u64),
    /// Lookups.
    pub lookup: LookupConfig,
    /// Routing tables.
    pub routing: RoutingConfig,
    /// Record stores.
    pub store: StoreLimits,
    /// Chance that an honest holder misses a renewal (keeps serving the stale version), percent.
    pub renewal_loss_percent: u64,
    /// Memoize record validation (see [`Memo`]): for debug builds.
    pub memoize_validation: bool,
}

impl Default for SimConfig {
    fn default() -> Self {
        Self {
            nodes: 200,
            malicious_percent: 20,
            clients: 20,
            seed: 1,
            latency_ms: (20, 80),
            lookup: LookupConfig {
                query_timeout_ms: 500,
                ..LookupConfig::default()
            },
            routing: RoutingConfig::default(),
            store: StoreLimits::default(),
            renewal_loss_percent: 10,
            memoize_validation: false,
        }
    }
}

/// Every version of one published record, and the forgeries the attackers serve for it.
#[derive(Clone, Debug)]
pub struct Published {
    /// The owner (a client index).
    pub owner: usize,
    /// The publisher (a node index).
    pub publisher: usize,
    /// Versions by ascending seq; the last is current.
    pub versions: Vec<SignedRecord>,
    /// Forged answers (invalid in different ways).
    pub forged: Vec<Vec<u8>>,
}

impl Published {
    /// The current version.
    pub fn current(&self) -> &SignedRecord {
        // `publish` always pushes one version first.
        &self.versions[self.versions.len() - 1]
    }
}

/// What one simulated lookup gave.
#[derive(Clone, Debug)]
pub struct LookupStats {
    /// The lookup's result.
    pub result: LookupResult<ValidRecord>,
    /// Simulated time from start to end, in milliseconds.
    pub latency_ms: u64,
}

/// The simulated network.
#[derive(Debug)]
pub struct Network {
    /// The nodes.
    pub nodes: Vec<SimNode>,
    /// The clients' key pairs (all registered as clients).
    pub clients: Vec<Sr25519Keypair>,
    registry: StaticRegistry,
    /// Published records by key.
    pub published: BTreeMap<RecordKey, Published>,
    /// The simulated clock.
    pub now: Timestamp,
    /// The run's parameters.
    pub config: SimConfig,
    rng: XorShift,
    index: HashMap<[u8; 32], usize>,
    malicious: Vec<PeerInfo>,
    /// A validly signed record of an unregistered owner (served under other keys).
    foreign: Vec<u8>,
    memo: Memo,
}

impl Network {
    /// Creates the nodes and clients and registers them; routing tables start empty.
    pub fn new(config: SimConfig) -> Self {
        let mut rng = XorShift::new(config.seed);
        let bad = config.nodes * config.malicious_percent / 100;
        let mut order: Vec<usize> = (0..config.nodes).collect();
        shuffle(&mut order, &mut rng);
        let mut behaviour = vec![Behaviour::Honest; config.nodes];
        for (m, &i) in order.iter().take(bad).enumerate() {
            behaviour[i] = MALICIOUS[m % MALICIOUS.len()];
        }
        let mut registry = StaticRegistry::default();
        let mut nodes = Vec::with_capacity(config.nodes);
        let mut malicious = Vec::new();
        for (i, b) in behaviour.into_iter().enumerate() {
            let keypair = Sr25519Keypair::from_seed(&rng.bytes32());
            let info = PeerInfo::new(keypair.public(), address(i, b, malicious.len()));
            registry.insert(keypair.public(), IdentityKind::Node);
            if b != Behaviour::Honest {
                malicious.push(info);
            }
            nodes.push(SimNode {
                table: RoutingTable::new(&keypair.public(), config.routing),
                store: RecordStore::new(config.store),
                keypair,
                info,
                behaviour: b,
            });
        }
        let clients: Vec<Sr25519Keypair> = (0..config.clients)
            .map(|_| Sr25519Keypair::from_seed(&rng.bytes32()))
            .collect();
        for c in &clients {
            registry.insert(c.public(), IdentityKind::Client);
        }
        let index = nodes
            .iter()
            .enumerate()
            .map(|(i, n)| (*n.info.identity(), i))
            .collect();
        let foreign = foreign_record(&mut rng, &nodes);
        Self {
            nodes,
            clients,
            registry,
            published: BTreeMap::new(),
            now: Timestamp(0),
            config,
            rng,
            index,
            malicious,
            foreign,
            memo: Memo::default(),
        }
    }

    /// The chain state: every node and client registered.
    pub fn registry(&self) -> &StaticRegistry {
        &self.registry
    }

    /// Revokes an identity on the simulated chain (and forgets every memoized validation).
    pub fn revoke(&mut self, identity: [u8; 32]) {
        self.registry.revoke(identity);
        self.memo = Memo::default();
    }

    /// Validates `bytes` as the record under `key` now, through the memo if it is on.
    pub fn validate(&self, key: &RecordKey, bytes: &[u8]) -> Result<ValidRecord, RecordError> {
        let (now, limits) = (self.now_secs(), &self.config.store.record);
        if self.config.memoize_validation {
            self.memo.validate(key, bytes, now, &self.registry, limits)
        } else {
            SignedRecord::decode_valid(key, bytes, now, &self.registry, limits)
        }
    }

    /// Turns memoized validation on or off.
    pub fn set_memoize(&mut self, on: bool) {
        self.config.memoize_validation = on;
    }

    /// The simulated time in unix seconds (what records are checked against).
    pub fn now_secs(&self) -> u64 {
        EPOCH_SECS + self.now.0 / 1_000
    }

    /// The seeded generator, for the caller's random choices.
    pub fn rng(&mut self) -> &mut XorShift {
        &mut self.rng
    }

    /// Indexes of the honest nodes.
    pub fn honest(&self) -> Vec<usize> {
        (0..self.nodes.len())
            .filter(|&i| self.nodes[i].behaviour == Behaviour::Honest)
            .collect()
    }

    /// Kademlia joins: node by node, each learns one node already in and looks up its own id;
    /// then every node refreshes once (another lookup of its own id and one of a random id).
    pub fn bootstrap(&mut self) {
        let entry = self.honest().first().copied().unwrap_or(0);
        let mut order: Vec<usize> = (0..self.nodes.len()).filter(|&i| i != entry).collect();
        shuffle(&mut order, &mut self.rng);
        for &i in &order {
            let known = self.nodes[entry].info;
            let _ = self.nodes[i].table.insert(known, &self.registry);
            let own = *self.nodes[i].info.id();
            self.lookup(i, own);
        }
        for i in 0..self.nodes.len() {
            let own = *self.nodes[i].info.id();
            self.lookup(i, own);
            let random = DhtId(self.rng.bytes32());
            self.lookup(i, random);
        }
    }

    /// A lookup of `target` by node `origin` (a node lookup: any record is ignored).
    pub fn lookup(&mut self, origin: usize, target: DhtId) -> LookupStats {
        self.run_lookup(origin, target)
    }

    /// A value lookup of `key` by node `origin`.
    pub fn get(&mut self, origin: usize, key: RecordKey) -> LookupStats {
        self.run_lookup(origin, DhtId(key))
    }

    fn run_lookup(&mut self, origin: usize, target: DhtId) -> LookupStats {
        let me = self.nodes[origin].info;
        let seeds = self.nodes[origin]
            .table
            .closest(&target, self.config.lookup.k);
        let mut lookup = Lookup::new(target, seeds, self.config.lookup);
        lookup.exclude(*me.identity());
        let start = self.now;
        // Answers in flight: (delivery time, order) → (responder, answer).
        let mut wire: BinaryHeap<Reverse<(Timestamp, u64)>> = BinaryHeap::new();
        let mut answers: HashMap<u64, (usize, Response)> = HashMap::new();
        let mut sent = 0u64;
        loop {
            for (peer, _) in lookup.poll_queries(self.now) {
                let Some(&j) = self.index.get(peer.identity()) else {
                    continue;
                };
                if let Some(answer) = self.answer(j, &me, &target) {
                    let at = Timestamp(self.now.0 + self.delay() + self.delay());
                    wire.push(Reverse((at, sent)));
                    answers.insert(sent, (j, answer));
                    sent += 1;
                }
            }
            if lookup.is_finished() {
                break;
            }
            let next_answer = wire.peek().map(|Reverse((t, _))| *t);
            let Some(next) = [next_answer, lookup.next_deadline()]
                .into_iter()
                .flatten()
                .min()
            else {
                break;
            };
            self.now = next.max(self.now);
            self.deliver(origin, &mut lookup, &mut wire, &mut answers);
        }
        LookupStats {
            result: lookup.result(),
            latency_ms: self.now.0 - start.0,
        }
    }

    /// Hands every answer due by now to the lookup; the origin learns the peers that answered.
    fn deliver(
        &mut self,
        origin: usize,
        lookup: &mut Lookup<ValidRecord>,
        wire: &mut BinaryHeap<Reverse<(Timestamp, u64)>>,
        answers: &mut HashMap<u64, (usize, Response)>,
    ) {
        let validator = SimValidator {
            inner: RecordValidator {
                key: lookup.target().0,
                now_secs: self.now_secs(),
                registry: &self.registry,
                limits: &self.config.store.record,
            },
            memo: self.config.memoize_validation.then_some(&self.memo),
        };
        while let Some(Reverse((at, n))) = wire.peek().copied() {
            if at > self.now {
                break;
            }
            wire.pop();
            let Some((j, answer)) = answers.remove(&n) else {
                continue;
            };
            let from = self.nodes[j].info;
            if lookup.on_response(from.identity(), answer, &validator) {
                let _ = self.nodes[origin].table.insert(from, &self.registry);
            }
        }
    }

    fn delay(&mut self) -> u64 {
        let (lo, hi) = self.config.latency_ms;
        self.rng.range(lo, hi)
    }

    /// Node `j`'s answer to `FIND_VALUE(target)` from `from`; `None`: it stays silent.
    fn answer(&mut self, j: usize, from: &PeerInfo, target: &DhtId) -> Option<Response> {
        let k = self.config.lookup.k;
        let node = &mut self.nodes[j];
        // Kademlia: whoever queries you is a live peer.
        let _ = node.table.insert(*from, &self.registry);
        let honest_peers = node.table.closest(target, k);
        let versions = self.published.get(&target.0);
        let record = match node.behaviour {
            Behaviour::Honest => {
                let now_secs = EPOCH_SECS + self.now.0 / 1_000;
                node.store
                    .get(&target.0, now_secs)
                    .map(|r| r.signed().encode())
            }
            Behaviour::Drop => return None,
            Behaviour::Forge => {
                let forged = versions.map_or(&[][..], |p| p.forged.as_slice());
                let pick = self.rng.below(forged.len() as u64 + 1) as usize;
                Some(forged.get(pick).unwrap_or(&self.foreign).clone())
            }
            // The oldest version; for an unknown key, some other key's record.
            Behaviour::Stale => versions
                .or_else(|| self.published.values().next())
                .map(|p| p.versions[0].encode()),
            Behaviour::Eclipse => {
                return Some(Response {
                    closer: closest_of(&self.malicious, target, k),
                    record: None,
                })
            }
        };
        Some(Response {
            closer: honest_peers,
            record,
        })
    }

    /// A record of client `owner` published by node `publisher`, signed by both.
    pub fn make_record(
        &self,
        owner: usize,
        publisher: usize,
        topic: [u8; 32],
        seq: u64,
        value: Vec<u8>,
    ) -> SignedRecord {
        let now = self.now_secs();
        let owner_key = &self.clients[owner];
        let content = RecordContent {
            kind: RecordKind::Presence,
            owner: owner_key.public(),
            topic,
            publisher: self.nodes[publisher].keypair.public(),
            seq,
            issued_at: now,
            expires_at: now + self.config.store.record.max_lifetime_secs,
            value,
        };
        content.sign(owner_key, &self.nodes[publisher].keypair)
    }

    /// Client `owner` publishes a new record through node `publisher`: a lookup of the key, then
    /// a put to the k closest peers it found. Returns the key and how many honest nodes
    /// stored it.
    pub fn publish(
        &mut self,
        owner: usize,
        publisher: usize,
        topic: [u8; 32],
    ) -> (RecordKey, usize) {
        let value = format!("presence of client {owner} topic {:02x}", topic[0]).into_bytes();
        let record = self.make_record(owner, publisher, topic, 1, value);
        let key = record.content.key();
        let forged = forgeries(&record);
        self.published.insert(
            key,
            Published {
                owner,
                publisher,
                versions: vec![record.clone()],
                forged,
            },
        );
        let stored = self.put(publisher, &record, 0);
        (key, stored)
    }

    /// The owner renews the record under `key` (seq + 1, new value); each honest holder misses
    /// the renewal with [`SimConfig::renewal_loss_percent`] chance, so stale copies remain.
    /// Returns how many honest nodes stored the new version, `None` for an unknown key.
    pub fn renew(&mut self, key: &RecordKey) -> Option<usize> {
        let p = self.published.get(key)?;
        let (owner, publisher) = (p.owner, p.publisher);
        let old = p.current().content.clone();
        let value = [old.value.as_slice(), b" renewed"].concat();
        let record = self.make_record(owner, publisher, old.topic, old.seq + 1, value);
        let forged = forgeries(&record);
        if let Some(p) = self.published.get_mut(key) {
            p.versions.push(record.clone());
            p.forged = forged;
        }
        Some(self.put(publisher, &record, self.config.renewal_loss_percent))
    }

    /// A put lookup from `publisher`, then a store at each honest target (some lost).
    fn put(&mut self, publisher: usize, record: &SignedRecord, loss_percent: u64) -> usize {
        let key = record.content.key();
        let targets = self.get(publisher, key).result.closest;
        let bytes = record.encode();
        let now = self.now_secs();
        let mut stored = 0;
        for t in targets {
            let Some(&j) = self.index.get(t.identity()) else {
                continue;
            };
            if self.nodes[j].behaviour != Behaviour::Honest || self.rng.below(100) < loss_percent {
                continue;
            }
            if self.store_at(j, &key, &bytes, now) {
                stored += 1;
            }
        }
        stored
    }
}

impl Network {
    /// Node `j` is asked to store `bytes` under `key`; returns whether it did.
    fn store_at(&mut self, j: usize, key: &RecordKey, bytes: &[u8], now: u64) -> bool {
        if !self.config.memoize_validation {
            return self.nodes[j]
                .store
                .put(key, bytes, now, &self.registry)
                .is_ok();
        }
        match self
            .memo
            .validate(key, bytes, now, &self.registry, &self.config.store.record)
        {
            Ok(record) => self.nodes[j].store.insert(record).is_ok(),
            Err(_) => false,
        }
    }
}

/// Memoized record validation, the simulation's shortcut around slow unoptimized sr25519.
///
/// Sound, not a trust shortcut: [`SignedRecord::decode_valid`] is a pure function of (key,
/// bytes, now, registry, limits); the registry and limits do not change while a memo lives (it
/// is dropped by [`Network::revoke`]), and a result is only reused at the same or a later time.
/// Then a record valid at t0 stays valid until it expires (the future and lifetime checks only
/// get easier as time passes), which is checked again at every use, and every refusal kept
/// ([`lasting`]) stays a refusal. So a memoized answer is always the answer validation would give.
#[derive(Debug, Default)]
pub struct Memo(RefCell<MemoMap>);

type MemoMap = HashMap<(RecordKey, Vec<u8>), (u64, Result<ValidRecord, RecordError>)>;

impl Memo {
    fn validate(
        &self,
        key: &RecordKey,
        bytes: &[u8],
        now: u64,
        registry: &StaticRegistry,
        limits: &RecordLimits,
    ) -> Result<ValidRecord, RecordError> {
        let memo_key = (*key, bytes.to_vec());
        if let Some((at, result)) = self.0.borrow().get(&memo_key) {
            match result {
                _ if *at > now => {}
                Ok(r) if r.expired(now) => {}
                Ok(r) => return Ok(r.clone()),
                Err(e) if lasting(e) => return Err(e.clone()),
                Err(_) => {}
            }
        }
        let result = SignedRecord::decode_valid(key, bytes, now, registry, limits);
        self.0.borrow_mut().insert(memo_key, (now, result.clone()));
        result
    }
}

/// Refusals that no later time can lift.
fn lasting(e: &RecordError) -> bool {
    !matches!(
        e,
        RecordError::FromTheFuture { .. } | RecordError::LifetimeTooLong { .. }
    )
}

/// [`RecordValidator`], through the memo when it is on.
struct SimValidator<'a> {
    inner: RecordValidator<'a, StaticRegistry>,
    memo: Option<&'a Memo>,
}

impl Validator for SimValidator<'_> {
    type Record = ValidRecord;

    fn validate(&self, bytes: &[u8]) -> Option<ValidRecord> {
        let v = &self.inner;
        match self.memo {
            Some(memo) => memo.validate(&v.key, bytes, v.now_secs, v.registry, v.limits),
            None => SignedRecord::decode_valid(&v.key, bytes, v.now_secs, v.registry, v.limits),
        }
        .ok()
    }

    fn claimed_seq(&self, bytes: &[u8]) -> Option<u64> {
        self.inner.claimed_seq(bytes)
    }

    fn peer_allowed(&self, peer: &PeerInfo) -> bool {
        self.inner.peer_allowed(peer)
    }
}

/// Honest node `i` gets its own /24; attackers share a /24 per four nodes.
fn address(i: usize, behaviour: Behaviour, malicious_so_far: usize) -> IpAddr {
    let ip = if behaviour == Behaviour::Honest {
        Ipv4Addr::new(10, (i >> 8) as u8, i as u8, 1)
    } else {
        let m = malicious_so_far;
        Ipv4Addr::new(172, 16 + (m >> 10) as u8, (m >> 2) as u8, (m & 3) as u8 + 1)
    };
    IpAddr::V4(ip)
}

fn shuffle<T>(v: &mut [T], rng: &mut XorShift) {
    for i in (1..v.len()).rev() {
        let j = rng.below(i as u64 + 1) as usize;
        v.swap(i, j);
    }
}

/// The `n` peers of `set` closest to `target`.
fn closest_of(set: &[PeerInfo], target: &DhtId, n: usize) -> Vec<PeerInfo> {
    let mut v = set.to_vec();
    v.sort_by_key(|p| target.distance(p.id()));
    v.truncate(n);
    v
}

/// Forged versions of `record` that claim to be newer: new content under the old signatures,
/// and junk bytes.
fn forgeries(record: &SignedRecord) -> Vec<Vec<u8>> {
    let mut bumped = record.clone();
    bumped.content.seq += 1_000;
    bumped.content.value = b"forged: follow me".to_vec();
    let mut cosigned = record.clone();
    cosigned.content.seq += 1_000;
    cosigned.publisher_sig[0] ^= 1;
    let mut junk = record.encode();
    junk.truncate(junk.len() / 2);
    vec![bumped.encode(), cosigned.encode(), junk]
}

/// A validly signed record of an unregistered owner: under any real key it is refused.
fn foreign_record(rng: &mut XorShift, nodes: &[SimNode]) -> Vec<u8> {
    let stranger = Sr25519Keypair::from_seed(&rng.bytes32());
    // Co-signed by an attacker's node (any node if there is none).
    let attacker = nodes.iter().find(|n| n.behaviour != Behaviour::Honest);
    let Some(publisher) = attacker.or(nodes.first()) else {
        return Vec::new();
    };
    let content = RecordContent {
        kind: RecordKind::Presence,
        owner: stranger.public(),
        topic: [0; 32],
        publisher: publisher.keypair.public(),
        seq: u64::MAX,
        issued_at: EPOCH_SECS,
        expires_at: EPOCH_SECS + 3_000,
        value: b"forged: unregistered owner".to_vec(),
    };
    content.sign(&stranger, &publisher.keypair).encode()
}
