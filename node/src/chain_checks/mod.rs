//! Chain checks for the overlay's signed data (DHT records, certificates, directories):
//! identity status and elected sets at the latest finalized block, through the runtime API.
//!
//! Reading at the *finalized* block is what makes "a revoked identity's certificate stops
//! being accepted at the next finalized block" hold. [`ChainRegistry`] remembers answers only
//! for the finalized block they were read at: a new finalized block empties its cache.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use psp_net::registry::{IdentityKind as NetKind, IdentityRegistry, IdentityStatus as NetStatus};
use psp_primitives::{
    api::{PspApi, PspStakingApi},
    staking::Role,
    IdentityKind, IdentityStatus,
};
use psp_runtime::{opaque::Block, AccountId, Balance, BlockNumber};
use sp_api::ProvideRuntimeApi;
use sp_blockchain::HeaderBackend;

/// Most identity statuses remembered for one finalized block.
const MAX_CACHED: usize = 65_536;

type Hash = <Block as sp_runtime::traits::Block>::Hash;

/// Statuses read at one finalized block.
#[derive(Default)]
struct StatusCache {
    at: Option<Hash>,
    statuses: HashMap<[u8; 32], NetStatus>,
}

/// The identity registry as the chain has it at the latest finalized block.
pub struct ChainRegistry<C> {
    client: Arc<C>,
    cache: Mutex<StatusCache>,
}

impl<C> ChainRegistry<C> {
    /// Reads through `client`.
    pub fn new(client: Arc<C>) -> Self {
        Self {
            client,
            cache: Mutex::new(StatusCache::default()),
        }
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

impl<C> IdentityRegistry for ChainRegistry<C>
where
    C: ProvideRuntimeApi<Block> + HeaderBackend<Block>,
    C::Api: PspApi<Block, AccountId, Balance, BlockNumber>,
{
    fn status(&self, key: &[u8; 32]) -> NetStatus {
        let at = self.client.info().finalized_hash;
        if let Ok(mut cache) = self.cache.lock() {
            if cache.at != Some(at) {
                cache.at = Some(at);
                cache.statuses.clear();
            }
            if let Some(status) = cache.statuses.get(key) {
                return *status;
            }
        }
        let status = match self.client.runtime_api().identity_by_key(at, *key) {
            Ok(Some(info)) => match info.status {
                IdentityStatus::Active => NetStatus::Active(net_kind(info.kind)),
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
/// block (a set changes at an epoch boundary; both are accepted around it).
pub fn elected_nodes<C>(client: &C, role: Role) -> Result<Vec<[u8; 32]>, sp_api::ApiError>
where
    C: ProvideRuntimeApi<Block> + HeaderBackend<Block>,
    C::Api: PspStakingApi<Block, AccountId, Balance, BlockNumber>,
{
    elected_in(client, role, &[0, 1])
}

/// The nodes elected to `role` for the current epoch only, at the latest finalized block (the
/// discovery set a directory is checked against).
pub fn elected_now<C>(client: &C, role: Role) -> Result<Vec<[u8; 32]>, sp_api::ApiError>
where
    C: ProvideRuntimeApi<Block> + HeaderBackend<Block>,
    C::Api: PspStakingApi<Block, AccountId, Balance, BlockNumber>,
{
    elected_in(client, role, &[0])
}

fn elected_in<C>(client: &C, role: Role, offsets: &[u32]) -> Result<Vec<[u8; 32]>, sp_api::ApiError>
where
    C: ProvideRuntimeApi<Block> + HeaderBackend<Block>,
    C::Api: PspStakingApi<Block, AccountId, Balance, BlockNumber>,
{
    let at = client.info().finalized_hash;
    let api = client.runtime_api();
    let current = api.epoch(at)?.current;
    let mut nodes = Vec::new();
    for epoch in offsets.iter().map(|o| current.saturating_add(*o)) {
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
