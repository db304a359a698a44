//! Bandwidth rewards on this node (PSP overview §8.3, issue 14): the chain facts the usage
//! parts share, and the oracle's settlement without a person.
//!
//! - [`ChainFacts`]: read at each finalized block from storage (no runtime call): the rewards
//!   pallet's current epoch and, for it and the two before, the oracles elected and the
//!   chain time it started (`PspRewards::Snapshots`), plus the latest finalized block hashes.
//!   The media service reads them ([`SharedChainFacts`]): its ticket gate takes tickets of the
//!   current and previous epochs' oracles and challenges that are recent finalized blocks,
//!   and its meter cuts each epoch at the chain time the next one started.
//! - [`Settler`]: feeds the oracle's usage service (finalized blocks for the session puzzle,
//!   each kept epoch's oracles and consumer-token keys for the collector) and, while this
//!   node is an oracle of the previous epoch, submits what the collector paired as
//!   `PspRewards::submit_reports_by_node`, signed with the node key.
//!
//! **Why the node key and an unsigned transaction** (issue 14, point 4), as for equivocation
//! reports ([`super::slashing`]): the node holds no account key (an operator would have to
//! hand it one and keep it funded, a key that can spend); the pallet finds the oracle by its
//! node key in the epoch's snapshot, so only an elected oracle's batch passes the pool
//! (`validate_unsigned` runs the whole submission in a rolled-back transaction), each batch
//! is one transaction (tag: epoch, oracle, records' hash) with a priority and a longevity
//! like im-online heartbeats, and a batch the pool refuses goes back to the collector to be
//! tried at the next finalized block.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, RwLock};

use codec::Decode;
use psp_net::{
    crypto::{NodeId, Sr25519Keypair},
    driver::usage::SharedUsage,
    usage::{collect::EpochInfo, token::TokenKey},
};
use psp_primitives::{
    rewards::{node_batch_message, NodeUsageBatch},
    staking::EpochIndex,
};
use psp_runtime::Runtime;
use sc_client_api::StorageProvider;
use sc_transaction_pool_api::{TransactionPool, TransactionSource};
use sp_blockchain::HeaderBackend;
use sp_core::storage::StorageKey;

use super::{FullClient, Pool};
use crate::chain_checks::FullBackend;

/// Finalized block hashes kept: the puzzle's and the gate's window (~3 minutes).
pub const RECENT_BLOCKS: usize = 64;
/// Epochs read back from the current one (the collector keeps three).
const KEPT_EPOCHS: u32 = 3;
/// Batches submitted per finalized block (the pool takes each as one transaction).
const BATCHES_PER_BLOCK: usize = 4;
/// Pool refusals of one epoch's batches tolerated; past them a refused batch is dropped.
const MAX_REFUSALS: u32 = 10;

/// One epoch as the rewards pallet recorded it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EpochFacts {
    /// Its elected oracles' node keys.
    pub oracles: Vec<[u8; 32]>,
    /// The chain time it started, unix ms.
    pub started_at_ms: u64,
}

/// What the usage parts know of the chain; see the module docs.
#[derive(Clone, Debug, Default)]
pub struct ChainFacts {
    /// The current epoch, once the rewards pallet has seen one.
    pub current: Option<EpochIndex>,
    /// The current epoch and the two before it, where the pallet keeps them.
    pub epochs: BTreeMap<EpochIndex, EpochFacts>,
    /// The latest finalized block hashes, newest last.
    pub recent_blocks: VecDeque<[u8; 32]>,
}

impl ChainFacts {
    /// The oracles of the current and the previous epoch (whose tickets are in use).
    pub fn ticket_oracles(&self) -> Vec<NodeId> {
        let Some(current) = self.current else {
            return Vec::new();
        };
        let mut oracles: Vec<NodeId> = [current.saturating_sub(1), current]
            .iter()
            .filter_map(|e| self.epochs.get(e))
            .flat_map(|f| f.oracles.iter().map(|o| NodeId(*o)))
            .collect();
        oracles.sort_by_key(|o| o.0);
        oracles.dedup();
        oracles
    }
}

/// [`ChainFacts`], shared by the chain feed (writer) and the media service.
pub type SharedChainFacts = Arc<RwLock<ChainFacts>>;

/// Reads the rewards pallet's record of `epoch` at `at`: `None` if it has not started or was
/// pruned.
pub fn epoch_facts<C>(
    client: &C,
    at: psp_runtime::opaque::Hash,
    epoch: EpochIndex,
) -> Result<Option<EpochFacts>, String>
where
    C: StorageProvider<psp_runtime::opaque::Block, FullBackend>,
{
    let key = pallet_psp_rewards::Snapshots::<Runtime>::hashed_key_for(epoch);
    let Some(data) = read(client, at, key)? else {
        return Ok(None);
    };
    let snapshot = pallet_psp_rewards::EpochSnapshot::<Runtime>::decode(&mut &data[..])
        .map_err(|e| format!("the snapshot of epoch {epoch} does not decode: {e}"))?;
    Ok(Some(EpochFacts {
        oracles: snapshot.oracles.iter().map(|o| o.node).collect(),
        started_at_ms: snapshot.started_at_ms,
    }))
}

fn read<C>(
    client: &C,
    at: psp_runtime::opaque::Hash,
    key: Vec<u8>,
) -> Result<Option<Vec<u8>>, String>
where
    C: StorageProvider<psp_runtime::opaque::Block, FullBackend>,
{
    client
        .storage(at, &StorageKey(key))
        .map(|data| data.map(|d| d.0))
        .map_err(|e| format!("storage read failed: {e}"))
}

/// Reads the rewards pallet's clock and the kept epochs' records at `at`.
fn read_epochs(
    client: &FullClient,
    at: psp_runtime::opaque::Hash,
) -> Result<(Option<EpochIndex>, BTreeMap<EpochIndex, EpochFacts>), String> {
    let clock = match read(
        client,
        at,
        pallet_psp_rewards::Clock::<Runtime>::hashed_key().to_vec(),
    )? {
        Some(data) => pallet_psp_rewards::EpochClock::decode(&mut &data[..])
            .map_err(|e| format!("the rewards clock does not decode: {e}"))?,
        None => return Ok((None, BTreeMap::new())),
    };
    let Some(current) = clock.current else {
        return Ok((None, BTreeMap::new()));
    };
    let mut epochs = BTreeMap::new();
    for epoch in current.saturating_sub(KEPT_EPOCHS - 1)..=current {
        if let Some(facts) = epoch_facts(client, at, epoch)? {
            epochs.insert(epoch, facts);
        }
    }
    Ok((Some(current), epochs))
}

/// Reads the latest finalized block into `facts` (storage reads: call it from a blocking
/// task).
pub fn refresh_facts(client: &FullClient, facts: &SharedChainFacts) -> Result<(), String> {
    let at = client.info().finalized_hash;
    let (current, epochs) = read_epochs(client, at)?;
    let known = facts
        .read()
        .unwrap_or_else(|e| e.into_inner())
        .recent_blocks
        .back()
        .copied();
    // Every block finalized since the last refresh (finality often moves several at once),
    // newest first, walking parent hashes back to the last one recorded.
    let mut new = Vec::new();
    let mut hash = at;
    while new.len() < RECENT_BLOCKS {
        let block: [u8; 32] = hash.into();
        if Some(block) == known {
            break;
        }
        new.push(block);
        match client.header(hash) {
            Ok(Some(header)) if header.number > 0 => hash = header.parent_hash,
            _ => break,
        }
    }
    let mut facts = facts.write().unwrap_or_else(|e| e.into_inner());
    facts.recent_blocks.extend(new.into_iter().rev());
    while facts.recent_blocks.len() > RECENT_BLOCKS {
        facts.recent_blocks.pop_front();
    }
    facts.current = current;
    facts.epochs = epochs;
    Ok(())
}

/// The oracle's settlement; see the module docs.
pub struct Settler {
    key: Sr25519Keypair,
    genesis: [u8; 32],
    pool: Arc<Pool>,
    usage: SharedUsage,
    /// What each epoch was opened with in the collector: (oracles, token keys).
    opened: HashMap<EpochIndex, (usize, usize)>,
    /// The newest block given to the ticket issuer.
    noted: Option<[u8; 32]>,
    /// Pool refusals per epoch.
    refusals: HashMap<EpochIndex, u32>,
}

impl Settler {
    /// A settler signing with the node `key` on the chain `genesis`, feeding `usage` and
    /// submitting to `pool`.
    pub fn new(
        key: Sr25519Keypair,
        genesis: [u8; 32],
        pool: Arc<Pool>,
        usage: SharedUsage,
    ) -> Self {
        Self {
            key,
            genesis,
            pool,
            usage,
            opened: HashMap::new(),
            noted: None,
            refusals: HashMap::new(),
        }
    }

    /// Feeds the usage service what `facts` say, with each epoch's consumer-token keys from
    /// `token_keys`, and submits the previous epoch's paired records if this node was one of
    /// its oracles.
    pub async fn on_finalized(
        &mut self,
        client: &FullClient,
        facts: &ChainFacts,
        token_keys: impl Fn(EpochIndex) -> Vec<TokenKey>,
    ) {
        let Some(current) = facts.current else {
            return;
        };
        let me = self.key.public();
        {
            let mut usage = self.usage.lock();
            // The blocks after the last one noted, oldest first.
            let skip = self
                .noted
                .and_then(|n| facts.recent_blocks.iter().position(|b| *b == n))
                .map_or(0, |i| i + 1);
            for block in facts.recent_blocks.iter().skip(skip) {
                usage.issuer_mut().note_finalized(*block);
                self.noted = Some(*block);
            }
            for (&epoch, epoch_facts) in &facts.epochs {
                let keys = token_keys(epoch);
                let shape = (epoch_facts.oracles.len(), keys.len());
                if self.opened.get(&epoch) == Some(&shape) {
                    continue;
                }
                let info = EpochInfo {
                    epoch,
                    elected: epoch_facts.oracles.iter().map(|o| NodeId(*o)).collect(),
                    token_keys: keys,
                };
                match usage.collector_mut().open_epoch(info) {
                    Ok(()) => {
                        log::debug!(target: "psp-usage", "collector: epoch {epoch} open with {} oracles and {} token keys", shape.0, shape.1);
                        self.opened.insert(epoch, shape);
                    }
                    Err(e) => {
                        log::warn!(target: "psp-usage", "collector: epoch {epoch} not opened: {e}")
                    }
                }
            }
            self.opened.retain(|e, _| facts.epochs.contains_key(e));
            self.refusals.retain(|e, _| facts.epochs.contains_key(e));
        }
        let Some(previous) = current.checked_sub(1) else {
            return;
        };
        let elected = facts
            .epochs
            .get(&previous)
            .is_some_and(|f| f.oracles.contains(&me));
        if elected {
            self.submit_ready(client, previous).await;
        }
    }

    /// Submits up to [`BATCHES_PER_BLOCK`] batches of `epoch`'s paired records.
    async fn submit_ready(&mut self, client: &FullClient, epoch: EpochIndex) {
        for _ in 0..BATCHES_PER_BLOCK {
            let Some(batch) = self.usage.lock().collector_mut().take_batch(epoch) else {
                return;
            };
            let oracle = self.key.public();
            let message = node_batch_message(&self.genesis, epoch, &oracle, &batch.records);
            let records = batch.records.len();
            let call = psp_runtime::RuntimeCall::PspRewards(
                pallet_psp_rewards::Call::submit_reports_by_node {
                    batch: NodeUsageBatch {
                        epoch,
                        oracle,
                        reports: batch.records.clone(),
                        signature: self.key.sign(&message),
                    },
                },
            );
            let xt = psp_runtime::UncheckedExtrinsic::new_bare(call);
            let best = client.info().best_hash;
            match self
                .pool
                .submit_one(best, TransactionSource::Local, xt.into())
                .await
            {
                Ok(_) => log::info!(
                    target: "psp-usage",
                    "📊 oracle: {records} usage records of epoch {epoch} submitted to the chain"
                ),
                Err(e) => {
                    let refusals = self.refusals.entry(epoch).or_default();
                    *refusals += 1;
                    if *refusals > MAX_REFUSALS {
                        log::error!(
                            target: "psp-usage",
                            "oracle: a batch of {records} usage records of epoch {epoch} refused by the pool {MAX_REFUSALS} times; dropped: {e}"
                        );
                    } else {
                        log::warn!(
                            target: "psp-usage",
                            "oracle: a batch of {records} usage records of epoch {epoch} refused by the pool (retried at the next block): {e}"
                        );
                        self.usage.lock().collector_mut().requeue(batch);
                    }
                    return;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    /// The runtime's fabrication bound counts the tokens the oracles actually issue.
    #[test]
    fn oracles_issue_the_tokens_per_subscription_the_runtime_bounds() {
        assert_eq!(
            psp_net::usage::token::DEFAULT_TOKENS_PER_SUBSCRIPTION,
            psp_runtime::CONSUMER_TOKENS_PER_EPOCH
        );
    }
}
