//! Chain checks in one place: every check the overlay makes against the chain (EXTEND and link
//! targets, DHT record owners and publishers, certificate holders, the directory's discovery
//! set) reads [`ChainChecks`], at the latest finalized block.
//!
//! - The node identities and elected sets come from a [`ChainSnapshot`] that the overlay's
//!   chain feed reads off the async tasks (in a blocking task) each time finality moves and
//!   swaps in whole ([`ChainChecks::refresh`]); checks read it without calling the runtime.
//! - Other identities (clients, groups, devices) are read on first use straight from the
//!   identity pallet's storage at the finalized block (one trie look-up through the state
//!   cache, no runtime execution) and remembered for that block; a new finalized block empties
//!   that cache, a failed look-up is not remembered. No check on the overlay's path executes
//!   the runtime.
//!
//! Reading at the *finalized* block is what makes "a revoked identity's certificate stops
//! being accepted at the next finalized block" hold.

mod snapshot;

pub use snapshot::ChainSnapshot;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};

use psp_net::circuit::{NodeDirectory, NodeRecord};
use psp_net::crypto::NodeId;

use codec::Decode;
use psp_net::registry::{IdentityKind as NetKind, IdentityRegistry, IdentityStatus as NetStatus};
use psp_primitives::{
    api::{PspApi, PspStakingApi},
    staking::Role,
    IdentityKind, IdentityStatus,
};
use psp_runtime::{opaque::Block, AccountId, Balance, BlockNumber};
use sc_client_api::StorageProvider;
use sp_api::ProvideRuntimeApi;
use sp_blockchain::HeaderBackend;
use sp_core::storage::StorageKey;

/// Most identity statuses remembered for one finalized block.
const MAX_CACHED: usize = 65_536;

type Hash = <Block as sp_runtime::traits::Block>::Hash;

/// Statuses read at one finalized block.
#[derive(Default)]
struct StatusCache {
    at: Option<Hash>,
    statuses: HashMap<[u8; 32], NetStatus>,
}

/// The chain as the overlay checks it: node identities and elected sets from the latest
/// snapshot, other identities' statuses looked up and cached per finalized block.
pub struct ChainChecks<C> {
    client: Arc<C>,
    snapshot: RwLock<Arc<ChainSnapshot>>,
    cache: Mutex<StatusCache>,
}

impl<C> ChainChecks<C> {
    /// Reads through `client`; the snapshot is empty until the first [`Self::refresh`] (a
    /// node identity is then looked up like any other).
    pub fn new(client: Arc<C>) -> Self {
        Self {
            client,
            snapshot: RwLock::new(Arc::new(ChainSnapshot::default())),
            cache: Mutex::new(StatusCache::default()),
        }
    }

    /// The snapshot in force.
    pub fn snapshot(&self) -> Arc<ChainSnapshot> {
        // A poisoned lock only means a writer panicked between two whole snapshots.
        self.snapshot
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

impl<C> ChainChecks<C>
where
    C: ProvideRuntimeApi<Block> + HeaderBackend<Block>,
    C::Api: PspApi<Block, AccountId, Balance, BlockNumber>,
    C::Api: PspStakingApi<Block, AccountId, Balance, BlockNumber>,
{
    /// Reads a new snapshot at the latest finalized block and puts it in force. Executes the
    /// runtime: call it from a blocking task. Returns the snapshot, or `None` when finality
    /// has not moved since the last one.
    pub fn refresh(&self) -> Result<Option<Arc<ChainSnapshot>>, sp_api::ApiError> {
        let finalized = self.client.info().finalized_hash.0;
        if self.snapshot().at == Some(finalized) {
            return Ok(None);
        }
        let fresh = Arc::new(ChainSnapshot::read(&*self.client)?);
        *self.snapshot.write().unwrap_or_else(|e| e.into_inner()) = fresh.clone();
        Ok(Some(fresh))
    }
}

impl<C: Send + Sync> NodeDirectory for ChainChecks<C> {
    /// Active node identities come from the snapshot only: an EXTEND never waits on the
    /// runtime.
    fn onion_key(&self, node: &NodeId) -> Option<NodeRecord> {
        let record = self.snapshot().nodes.get(&node.0).map(|n| n.record.clone());
        if record.is_none() {
            log::info!(
                target: "psp-overlay",
                "node {node:?} is not an active node identity at the latest finalized block"
            );
        }
        record
    }
}

fn net_kind(kind: IdentityKind) -> NetKind {
    match kind {
        IdentityKind::Client => NetKind::Client,
        IdentityKind::Node => NetKind::Node,
        IdentityKind::Group => NetKind::Group,
        IdentityKind::Device => NetKind::Device,
    }
}

/// The chain's name for a psp-net identity kind.
pub fn chain_kind(kind: NetKind) -> IdentityKind {
    match kind {
        NetKind::Client => IdentityKind::Client,
        NetKind::Node => IdentityKind::Node,
        NetKind::Group => IdentityKind::Group,
        NetKind::Device => IdentityKind::Device,
    }
}

/// The chain database backend the node runs on.
pub type FullBackend = sc_service::TFullBackend<Block>;

/// An identity's kind and status at block `at`, read from the identity pallet's storage:
/// a trie look-up, no runtime execution.
fn read_identity<C>(
    client: &C,
    at: Hash,
    key: &[u8; 32],
) -> sp_blockchain::Result<Option<(IdentityKind, IdentityStatus<BlockNumber>)>>
where
    C: StorageProvider<Block, FullBackend>,
{
    let storage_key =
        StorageKey(pallet_psp_identity::IdentityOf::<psp_runtime::Runtime>::hashed_key_for(key));
    let Some(data) = client.storage(at, &storage_key)? else {
        return Ok(None);
    };
    let record =
        pallet_psp_identity::IdentityRecord::<psp_runtime::Runtime>::decode(&mut &data.0[..])
            .map_err(|e| {
                sp_blockchain::Error::Backend(format!("identity record does not decode: {e}"))
            })?;
    Ok(Some((record.kind, record.status)))
}

impl<C> IdentityRegistry for ChainChecks<C>
where
    C: HeaderBackend<Block> + StorageProvider<Block, FullBackend>,
{
    fn status(&self, key: &[u8; 32]) -> NetStatus {
        let at = self.client.info().finalized_hash;
        {
            let snapshot = self.snapshot();
            // The feed swaps in a new snapshot as soon as finality moves; reading the one in
            // force keeps this check off the runtime for every node identity.
            if snapshot.at.is_some() && snapshot.nodes.contains_key(key) {
                return NetStatus::Active(NetKind::Node);
            }
        }
        if let Ok(mut cache) = self.cache.lock() {
            if cache.at != Some(at) {
                cache.at = Some(at);
                cache.statuses.clear();
            }
            if let Some(status) = cache.statuses.get(key) {
                return *status;
            }
        }
        let status = match read_identity(&*self.client, at, key) {
            Ok(Some((kind, status))) => match status {
                IdentityStatus::Active => NetStatus::Active(net_kind(kind)),
                IdentityStatus::Revoked { .. } => NetStatus::Revoked,
            },
            Ok(None) => NetStatus::Unknown,
            Err(e) => {
                // A failed look-up must not let anything through, and is not remembered.
                log::warn!(target: "psp-overlay", "identity look-up failed: {e}");
                return NetStatus::Unknown;
            }
        };
        if let Ok(mut cache) = self.cache.lock() {
            if cache.at == Some(at) && cache.statuses.len() < MAX_CACHED {
                cache.statuses.insert(*key, status);
            }
        }
        status
    }
}

/// The nodes elected to `role` for the current and the next epoch, at the latest finalized
/// block (a set changes at an epoch boundary; both are accepted around it). For the RPC,
/// which reads the chain directly; the overlay reads the elected sets of its [`ChainSnapshot`].
pub fn elected_nodes<C>(client: &C, role: Role) -> Result<Vec<[u8; 32]>, sp_api::ApiError>
where
    C: ProvideRuntimeApi<Block> + HeaderBackend<Block>,
    C::Api: PspStakingApi<Block, AccountId, Balance, BlockNumber>,
{
    let at = client.info().finalized_hash;
    let api = client.runtime_api();
    let current = api.epoch(at)?.current;
    let mut nodes = Vec::new();
    for epoch in [current, current.saturating_add(1)] {
        for elected in api.elected(at, role, epoch)?.unwrap_or_default() {
            if !nodes.contains(&elected.node) {
                nodes.push(elected.node);
            }
        }
    }
    Ok(nodes)
}

/// The chain's genesis hash.
pub fn genesis<C: HeaderBackend<Block>>(client: &C) -> Option<[u8; 32]> {
    client.hash(0).ok().flatten().map(|h| h.0)
}
