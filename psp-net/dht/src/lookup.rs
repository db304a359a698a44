//! The iterative lookup over d disjoint paths (S/Kademlia §4.4), sans IO.
//!
//! A [`Lookup`] is seeded with the k closest peers the caller knows, dealt round-robin into d
//! paths. Each path keeps its own candidates by XOR distance to the target and queries up to
//! α of them at once; a peer is queried by at most one path (one `seen` set for all), so an
//! adversary on one path cannot steer the others. A path ends when its k closest live
//! candidates have all answered; the lookup ends when every path has ended.
//!
//! Responses carry closer peers and/or a record. The lookup trusts no record: it checks each
//! one itself through a [`Validator`] and keeps the valid one with the **highest** sequence
//! number, so a stale but validly signed record loses to the current one and forged ones are
//! dropped. It does not stop at the first record found, or a stale answer could win.
//!
//! Driving it: [`Lookup::poll_queries`] gives the queries to send now (it also fails the
//! overdue ones); feed answers to [`Lookup::on_response`], losses to [`Lookup::on_timeout`]; wake
//! up at [`Lookup::next_deadline`]. When [`Lookup::is_finished`], [`Lookup::result`] gives the
//! record, and [`LookupResult::closest`] the k closest peers that answered: where a put stores.

use std::collections::{BTreeMap, HashMap, HashSet};

use super::record::{RecordKey, RecordLimits, SignedRecord, ValidRecord};
use super::routing::{DhtId, Distance, PeerInfo, K};
use crate::circuit::Timestamp;
use crate::registry::{IdentityKind, IdentityRegistry, IdentityStatus};

/// Queries in flight per path (Kademlia's α).
pub const ALPHA: usize = 3;
/// Disjoint paths (S/Kademlia's d).
pub const PATHS: usize = 4;

/// Tunables of a lookup.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LookupConfig {
    /// Peers a path must hear from near the target, and the most closer peers taken from one
    /// response (k).
    pub k: usize,
    /// Queries in flight per path (α).
    pub alpha: usize,
    /// Disjoint paths (d).
    pub paths: usize,
    /// How long a peer has to answer, in milliseconds.
    pub query_timeout_ms: u64,
}

impl Default for LookupConfig {
    fn default() -> Self {
        Self {
            k: K,
            alpha: ALPHA,
            paths: PATHS,
            query_timeout_ms: 1_000,
        }
    }
}

/// The handle of one query, for the driver to match a wire reply to it.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, PartialOrd, Ord)]
pub struct QueryId(pub u64);

/// A peer's answer to `FIND_VALUE(target)`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Response {
    /// Peers closer to the target (only the first k are looked at).
    pub closer: Vec<PeerInfo>,
    /// The record the peer holds, as wire bytes (unchecked).
    pub record: Option<Vec<u8>>,
}

/// A checked record with a sequence number: what a lookup ranks.
pub trait Versioned {
    /// The renewal counter; the highest wins.
    fn seq(&self) -> u64;
}

impl Versioned for ValidRecord {
    fn seq(&self) -> u64 {
        self.content().seq
    }
}

/// What a lookup trusts: records that check out, and peers that may be queried.
pub trait Validator {
    /// The checked record.
    type Record: Versioned;

    /// Checks record bytes; `None` if they are not a valid record for the target.
    fn validate(&self, bytes: &[u8]) -> Option<Self::Record>;

    /// The sequence number the bytes claim, unchecked, if cheap to read. A record claiming no
    /// more than the best one held cannot win, so it is dropped without the signature checks;
    /// `None` means "check it".
    fn claimed_seq(&self, _bytes: &[u8]) -> Option<u64> {
        None
    }

    /// Whether a peer named in a response may be queried.
    fn peer_allowed(&self, _peer: &PeerInfo) -> bool {
        true
    }
}

/// Any `Fn(&[u8]) -> Option<R>` checks records (and allows every peer).
impl<R: Versioned, F: Fn(&[u8]) -> Option<R>> Validator for F {
    type Record = R;

    fn validate(&self, bytes: &[u8]) -> Option<R> {
        self(bytes)
    }
}

/// The real validator: [`SignedRecord::decode_valid`] for the key, and only live node
/// identities as peers.
#[derive(Clone, Copy, Debug)]
pub struct RecordValidator<'a, R> {
    /// The key looked up.
    pub key: RecordKey,
    /// Unix seconds.
    pub now_secs: u64,
    /// The chain state.
    pub registry: &'a R,
    /// The record limits.
    pub limits: &'a RecordLimits,
}

impl<R: IdentityRegistry> Validator for RecordValidator<'_, R> {
    type Record = ValidRecord;

    fn validate(&self, bytes: &[u8]) -> Option<ValidRecord> {
        SignedRecord::decode_valid(&self.key, bytes, self.now_secs, self.registry, self.limits).ok()
    }

    fn claimed_seq(&self, bytes: &[u8]) -> Option<u64> {
        SignedRecord::decode(bytes).ok().map(|r| r.content.seq)
    }

    fn peer_allowed(&self, peer: &PeerInfo) -> bool {
        self.registry.status(peer.identity()) == IdentityStatus::Active(IdentityKind::Node)
    }
}

/// Where a candidate stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Pending,
    InFlight { deadline: Timestamp },
    Answered,
    Failed,
}

#[derive(Clone, Debug)]
struct Candidate {
    peer: PeerInfo,
    /// Queries on the chain of referrals that led here, this one included (seeds: 1).
    depth: usize,
    state: State,
}

/// One disjoint path: its candidates by distance to the target.
#[derive(Clone, Debug, Default)]
struct Path {
    candidates: BTreeMap<Distance, Candidate>,
    in_flight: usize,
    finished: bool,
}

impl Path {
    /// The k closest candidates that have not failed.
    fn live(&self, k: usize) -> impl Iterator<Item = (&Distance, &Candidate)> {
        self.candidates
            .iter()
            .filter(|(_, c)| c.state != State::Failed)
            .take(k)
    }

    /// The closest live candidate not yet queried, among the k closest.
    fn next_pending(&self, k: usize) -> Option<Distance> {
        self.live(k)
            .find(|(_, c)| c.state == State::Pending)
            .map(|(d, _)| *d)
    }

    /// Whether the k closest live candidates have all answered.
    fn done(&self, k: usize) -> bool {
        self.live(k).all(|(_, c)| c.state == State::Answered)
    }

    /// Gives up the queries still out (farther than the k closest, which all answered).
    fn abandon_in_flight(&mut self) {
        for c in self.candidates.values_mut() {
            if matches!(c.state, State::InFlight { .. }) {
                c.state = State::Failed;
            }
        }
        self.in_flight = 0;
    }
}

/// The outcome of a lookup.
#[derive(Clone, Debug)]
pub struct LookupResult<R> {
    /// The valid record with the highest sequence number, if any peer had one.
    pub record: Option<R>,
    /// The longest chain of referrals (queries, seeds counting 1) followed on the path that
    /// found the winning record; without a record, on any path.
    pub hops: usize,
    /// Queries on the chain of referrals that led to the winning record (0 without one).
    pub record_depth: usize,
    /// Peers queried.
    pub queried: usize,
    /// The k closest peers that answered, closest first: the targets of a put.
    pub closest: Vec<PeerInfo>,
}

#[derive(Clone, Debug)]
struct Best<R> {
    record: R,
    path: usize,
    depth: usize,
}

/// An iterative lookup in progress.
#[derive(Clone, Debug)]
pub struct Lookup<R> {
    target: DhtId,
    config: LookupConfig,
    paths: Vec<Path>,
    seen: HashSet<[u8; 32]>,
    /// In-flight queries: peer identity → (path, distance, query).
    in_flight: HashMap<[u8; 32], (usize, Distance, QueryId)>,
    next_query: u64,
    queried: usize,
    /// The best record, and the path and depth it was found at.
    best: Option<Best<R>>,
}

impl<R: Versioned> Lookup<R> {
    /// A lookup of `target` from `seeds` (typically the routing table's k closest).
    pub fn new(target: DhtId, seeds: Vec<PeerInfo>, config: LookupConfig) -> Self {
        let paths = config.paths.max(1);
        let mut lookup = Self {
            target,
            config,
            paths: vec![Path::default(); paths],
            seen: HashSet::new(),
            in_flight: HashMap::new(),
            next_query: 0,
            queried: 0,
            best: None,
        };
        lookup.seed(seeds);
        lookup
    }

    fn seed(&mut self, mut seeds: Vec<PeerInfo>) {
        seeds.sort_by_key(|p| self.target.distance(p.id()));
        seeds.dedup_by_key(|p| *p.identity());
        let paths = self.paths.len();
        for (i, peer) in seeds.into_iter().take(self.config.k).enumerate() {
            self.add_candidate(i % paths, peer, 1);
        }
        self.update_finished();
    }

    /// Never queries `identity` (the local node).
    pub fn exclude(&mut self, identity: [u8; 32]) {
        self.seen.insert(identity);
        for path in &mut self.paths {
            path.candidates
                .retain(|_, c| c.peer.identity() != &identity);
        }
        self.update_finished();
    }

    /// The target.
    pub fn target(&self) -> &DhtId {
        &self.target
    }

    fn add_candidate(&mut self, path: usize, peer: PeerInfo, depth: usize) {
        if !self.seen.insert(*peer.identity()) {
            return;
        }
        let candidate = Candidate {
            peer,
            depth,
            state: State::Pending,
        };
        self.paths[path]
            .candidates
            .insert(self.target.distance(peer.id()), candidate);
    }

    /// Fails overdue queries, then starts as many as α allows on every open path.
    pub fn poll_queries(&mut self, now: Timestamp) -> Vec<(PeerInfo, QueryId)> {
        self.expire(now);
        let mut out = Vec::new();
        for path in 0..self.paths.len() {
            self.start_queries(path, now, &mut out);
        }
        out
    }

    fn start_queries(&mut self, path: usize, now: Timestamp, out: &mut Vec<(PeerInfo, QueryId)>) {
        let (k, alpha) = (self.config.k, self.config.alpha.max(1));
        let deadline = Timestamp(now.0.saturating_add(self.config.query_timeout_ms));
        while !self.paths[path].finished && self.paths[path].in_flight < alpha {
            let Some(dist) = self.paths[path].next_pending(k) else {
                break;
            };
            let p = &mut self.paths[path];
            let Some(c) = p.candidates.get_mut(&dist) else {
                break;
            };
            c.state = State::InFlight { deadline };
            p.in_flight += 1;
            let query = QueryId(self.next_query);
            self.next_query += 1;
            self.queried += 1;
            self.in_flight
                .insert(*c.peer.identity(), (path, dist, query));
            out.push((c.peer, query));
        }
    }

    /// The earliest deadline of a query in flight: when to call [`Self::poll_queries`] again.
    pub fn next_deadline(&self) -> Option<Timestamp> {
        self.paths
            .iter()
            .flat_map(|p| p.candidates.values())
            .filter_map(|c| match c.state {
                State::InFlight { deadline } => Some(deadline),
                _ => None,
            })
            .min()
    }

    fn expire(&mut self, now: Timestamp) {
        let overdue: Vec<[u8; 32]> = self
            .paths
            .iter()
            .flat_map(|p| p.candidates.values())
            .filter(|c| matches!(c.state, State::InFlight { deadline } if deadline <= now))
            .map(|c| *c.peer.identity())
            .collect();
        for identity in overdue {
            self.on_timeout(&identity);
        }
    }

    /// The peer `identity` will not answer (timeout, lost link): it counts as failed.
    pub fn on_timeout(&mut self, identity: &[u8; 32]) {
        self.settle(identity, State::Failed);
        self.update_finished();
    }

    /// Marks the in-flight query of `identity` settled; returns its (path, depth).
    fn settle(&mut self, identity: &[u8; 32], state: State) -> Option<(usize, usize)> {
        let (path, dist, _) = self.in_flight.remove(identity)?;
        let p = &mut self.paths[path];
        p.in_flight = p.in_flight.saturating_sub(1);
        let c = p.candidates.get_mut(&dist)?;
        c.state = state;
        Some((path, c.depth))
    }

    /// The answer of `identity`. Unsolicited and late answers are ignored (returns `false`).
    pub fn on_response(
        &mut self,
        identity: &[u8; 32],
        response: Response,
        validator: &impl Validator<Record = R>,
    ) -> bool {
        let Some((path, depth)) = self.settle(identity, State::Answered) else {
            return false;
        };
        if let Some(bytes) = response.record {
            self.offer(&bytes, path, depth, validator);
        }
        let k = self.config.k;
        for peer in response.closer.into_iter().take(k) {
            if validator.peer_allowed(&peer) {
                self.add_candidate(path, peer, depth + 1);
            }
        }
        self.update_finished();
        true
    }

    /// Keeps the record if it is valid and newer than the best held.
    fn offer(
        &mut self,
        bytes: &[u8],
        path: usize,
        depth: usize,
        validator: &impl Validator<Record = R>,
    ) {
        let best_seq = self.best.as_ref().map(|b| b.record.seq());
        if let (Some(best), Some(claimed)) = (best_seq, validator.claimed_seq(bytes)) {
            if claimed <= best {
                return;
            }
        }
        let Some(record) = validator.validate(bytes) else {
            return;
        };
        if best_seq.is_none_or(|best| record.seq() > best) {
            self.best = Some(Best {
                record,
                path,
                depth,
            });
        }
    }

    fn update_finished(&mut self) {
        let k = self.config.k;
        let mut newly = false;
        for path in &mut self.paths {
            if !path.finished && path.done(k) {
                path.finished = true;
                path.abandon_in_flight();
                newly = true;
            }
        }
        if newly {
            // Late answers to abandoned queries are ignored.
            let paths = &self.paths;
            self.in_flight.retain(|_, (p, _, _)| !paths[*p].finished);
        }
    }

    /// Whether every path has ended.
    pub fn is_finished(&self) -> bool {
        self.paths.iter().all(|p| p.finished)
    }

    /// Peers queried so far.
    pub fn queried(&self) -> usize {
        self.queried
    }

    /// The `n` closest peers that answered, over all paths, closest first.
    pub fn closest_answered(&self, n: usize) -> Vec<PeerInfo> {
        let mut answered: Vec<(&Distance, &Candidate)> = self
            .paths
            .iter()
            .flat_map(|p| p.candidates.iter())
            .filter(|(_, c)| c.state == State::Answered)
            .collect();
        answered.sort_by_key(|(d, _)| **d);
        answered.into_iter().take(n).map(|(_, c)| c.peer).collect()
    }

    /// The longest chain of answered referrals on `path`, or on any path.
    fn longest_chain(&self, path: Option<usize>) -> usize {
        self.paths
            .iter()
            .enumerate()
            .filter(|(i, _)| path.is_none_or(|p| p == *i))
            .flat_map(|(_, p)| p.candidates.values())
            .filter(|c| c.state == State::Answered)
            .map(|c| c.depth)
            .max()
            .unwrap_or(0)
    }

    /// The outcome so far (final once [`Self::is_finished`]).
    pub fn result(&self) -> LookupResult<R>
    where
        R: Clone,
    {
        LookupResult {
            record: self.best.as_ref().map(|b| b.record.clone()),
            hops: self.longest_chain(self.best.as_ref().map(|b| b.path)),
            record_depth: self.best.as_ref().map_or(0, |b| b.depth),
            queried: self.queried,
            closest: self.closest_answered(self.config.k),
        }
    }

    /// Where a put stores: the k closest peers that answered.
    pub fn put_targets(&self) -> Vec<PeerInfo> {
        self.closest_answered(self.config.k)
    }
}

#[cfg(test)]
mod tests;
