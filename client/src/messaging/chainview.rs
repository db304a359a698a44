//! The chain as the client's messaging machines check it: genesis, elected authorities and
//! identity statuses, held in memory so the (synchronous) checks never wait on the network.
//!
//! The machines call [`IdentityRegistry::status`] synchronously, so every key they will ask
//! about must be cached *before* the call: node keys (publishers, authorities) come with the
//! node list at each refresh, a peer's key when its id is resolved, and an introducer's key
//! from a dry run of the introduction's check ([`keys_asked`]) before the real one. A key
//! not in the cache is [`IdentityStatus::Unknown`], which refuses it: the cache can make the
//! client stricter than the chain, never laxer.

use std::cell::RefCell;
use std::collections::{HashMap, HashSet};

use psp_net::registry::{IdentityKind, IdentityRegistry, IdentityStatus};
use psp_net::rendezvous::ChainView;
use psp_primitives::rpc::IdentityView;

/// Identity statuses cached at most. Default 4 096 (node keys are not counted against it).
pub const DEFAULT_CACHE_CAPACITY: usize = 4_096;

#[derive(Clone, Copy, Debug)]
struct Cached {
    status: IdentityStatus,
    fetched_at: u64,
}

/// Identity statuses as the chain last reported them.
#[derive(Debug)]
pub struct StatusCache {
    /// Peers' and introducers' statuses, at most `capacity`.
    identities: HashMap<[u8; 32], Cached>,
    /// The registered nodes at the last refresh (all active nodes).
    nodes: HashSet<[u8; 32]>,
    capacity: usize,
}

impl Default for StatusCache {
    fn default() -> Self {
        Self::new(DEFAULT_CACHE_CAPACITY)
    }
}

impl StatusCache {
    /// An empty cache keeping at most `capacity` identities.
    pub fn new(capacity: usize) -> Self {
        Self {
            identities: HashMap::new(),
            nodes: HashSet::new(),
            capacity: capacity.max(1),
        }
    }

    /// Replaces the node list: these keys are active nodes, and only these.
    pub fn set_nodes(&mut self, nodes: impl IntoIterator<Item = [u8; 32]>) {
        self.nodes = nodes.into_iter().collect();
    }

    /// Records what the chain said about `key` at `now`; when full, the entry fetched longest
    /// ago is forgotten.
    pub fn insert(&mut self, key: [u8; 32], status: IdentityStatus, now: u64) {
        if !self.identities.contains_key(&key) && self.identities.len() >= self.capacity {
            let oldest = self
                .identities
                .iter()
                .min_by_key(|(_, c)| c.fetched_at)
                .map(|(k, _)| *k);
            if let Some(oldest) = oldest {
                self.identities.remove(&oldest);
            }
        }
        let fetched_at = now;
        self.identities.insert(key, Cached { status, fetched_at });
    }

    /// The keys among `keys` the cache knows nothing about.
    pub fn missing(&self, keys: &[[u8; 32]]) -> Vec<[u8; 32]> {
        let mut out: Vec<[u8; 32]> = keys
            .iter()
            .filter(|k| !self.nodes.contains(*k) && !self.identities.contains_key(*k))
            .copied()
            .collect();
        out.sort();
        out.dedup();
        out
    }

    /// Identities fetched before `now - max_age`, to refresh.
    pub fn stale(&self, now: u64, max_age: u64) -> Vec<[u8; 32]> {
        self.identities
            .iter()
            .filter(|(_, c)| c.fetched_at.saturating_add(max_age) <= now)
            .map(|(k, _)| *k)
            .collect()
    }

    /// Identities cached (nodes not counted).
    pub fn len(&self) -> usize {
        self.identities.len()
    }

    /// Whether no identity is cached.
    pub fn is_empty(&self) -> bool {
        self.identities.is_empty()
    }

    /// Nodes known.
    pub fn nodes(&self) -> usize {
        self.nodes.len()
    }
}

impl IdentityRegistry for StatusCache {
    fn status(&self, key: &[u8; 32]) -> IdentityStatus {
        if let Some(c) = self.identities.get(key) {
            return c.status;
        }
        if self.nodes.contains(key) {
            return IdentityStatus::Active(IdentityKind::Node);
        }
        IdentityStatus::Unknown
    }
}

/// An identity's status from the chain's JSON view (`None`: not registered).
pub fn status_of(view: Option<&IdentityView>) -> IdentityStatus {
    use psp_primitives::{IdentityKind as Kind, IdentityStatus as Status};
    match view {
        None => IdentityStatus::Unknown,
        Some(v) => match v.status {
            Status::Revoked { .. } => IdentityStatus::Revoked,
            Status::Active => IdentityStatus::Active(match v.kind {
                Kind::Client => IdentityKind::Client,
                Kind::Node => IdentityKind::Node,
                Kind::Group => IdentityKind::Group,
                Kind::Device => IdentityKind::Device,
            }),
        },
    }
}

/// A status in words, for messages.
pub fn describe_status(status: IdentityStatus) -> &'static str {
    match status {
        IdentityStatus::Active(_) => "active",
        IdentityStatus::Revoked => "revoked",
        IdentityStatus::Unknown => "not registered",
    }
}

/// The chain state the agent checks against.
#[derive(Debug)]
pub struct ChainState {
    /// The chain's genesis hash.
    pub genesis: [u8; 32],
    /// The authorities elected for the current epoch.
    pub authorities: Vec<[u8; 32]>,
    /// Identity statuses.
    pub registry: StatusCache,
}

impl ChainState {
    /// A state with no authorities and nothing cached.
    pub fn new(genesis: [u8; 32]) -> Self {
        Self {
            genesis,
            authorities: Vec::new(),
            registry: StatusCache::default(),
        }
    }

    /// The view the machines take.
    pub fn view(&self) -> ChainView<'_> {
        ChainView {
            genesis: &self.genesis,
            authorities: &self.authorities,
            registry: &self.registry,
        }
    }
}

/// Runs `check` against `chain` with a registry that remembers every key asked about, and
/// returns those keys: a dry run, to learn which statuses a real check will need.
pub fn keys_asked(chain: &ChainState, check: impl FnOnce(&ChainView<'_>)) -> Vec<[u8; 32]> {
    let recording = Recording {
        inner: &chain.registry,
        asked: RefCell::new(Vec::new()),
    };
    let view = ChainView {
        genesis: &chain.genesis,
        authorities: &chain.authorities,
        registry: &recording,
    };
    check(&view);
    recording.asked.into_inner()
}

struct Recording<'a> {
    inner: &'a dyn IdentityRegistry,
    asked: RefCell<Vec<[u8; 32]>>,
}

impl IdentityRegistry for Recording<'_> {
    fn status(&self, key: &[u8; 32]) -> IdentityStatus {
        self.asked.borrow_mut().push(*key);
        self.inner.status(key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nodes_are_active_until_the_next_list_and_identities_are_bounded() {
        let mut cache = StatusCache::new(2);
        cache.set_nodes([[1; 32]]);
        assert_eq!(
            cache.status(&[1; 32]),
            IdentityStatus::Active(IdentityKind::Node)
        );
        cache.set_nodes([[2; 32]]);
        assert_eq!(cache.status(&[1; 32]), IdentityStatus::Unknown);

        cache.insert([3; 32], IdentityStatus::Active(IdentityKind::Client), 10);
        cache.insert([4; 32], IdentityStatus::Revoked, 20);
        cache.insert([5; 32], IdentityStatus::Active(IdentityKind::Client), 30);
        assert_eq!(cache.len(), 2);
        assert_eq!(
            cache.status(&[3; 32]),
            IdentityStatus::Unknown,
            "oldest evicted"
        );
        assert_eq!(cache.status(&[4; 32]), IdentityStatus::Revoked);
        assert_eq!(
            cache.missing(&[[2; 32], [3; 32], [3; 32], [4; 32]]),
            vec![[3; 32]]
        );
        assert_eq!(cache.stale(40, 15), vec![[4; 32]]);
    }

    #[test]
    fn a_dry_run_names_the_keys_a_check_asks_about() {
        let mut chain = ChainState::new([0; 32]);
        chain.registry.set_nodes([[9; 32]]);
        let asked = keys_asked(&chain, |view| {
            assert_eq!(view.registry.status(&[7; 32]), IdentityStatus::Unknown);
            assert_eq!(
                view.registry.status(&[9; 32]),
                IdentityStatus::Active(IdentityKind::Node)
            );
        });
        assert_eq!(asked, vec![[7; 32], [9; 32]]);
    }
}
