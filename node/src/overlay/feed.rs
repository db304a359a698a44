//! Keeps the overlay in step with the chain: each time finality moves, a new
//! [`ChainSnapshot`] is read in a blocking task and put in force in [`ChainChecks`]; then the
//! DHT routing table is set to the active node identities (the only peers Kademlia may route
//! through: deregistered and revoked ones are evicted) and the directory learns the elected
//! discovery set and this node's flags, and the messaging services the elected authorities
//! (and that it is time to re-check registered identities); the stream services get the
//! plans and the published receipt keys, and this node's own receipt keys (while it is an
//! elected oracle) are submitted to the transaction pool.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use futures::{FutureExt, StreamExt};
use psp_net::{
    crypto::NodeId,
    directory::flags,
    driver::{messaging::MessagingChain, DiscoveryView, NodeHandle},
};
use sc_client_api::BlockchainEvents;

use super::streams::{ChainSubscriptions, ReceiptKeys};
use super::{OverlayIdentity, Pool};
use crate::chain_checks::{ChainChecks, ChainSnapshot};
use crate::client::FullClient;

/// What the feed keeps current for the stream services.
pub struct StreamFeed {
    /// Published keys for the landing service, own keys for the oracle service.
    pub keys: Arc<ReceiptKeys>,
    /// The plans the subscription checks map to tiers.
    pub subscriptions: Arc<ChainSubscriptions<FullClient>>,
    /// Where this oracle's key publications go.
    pub pool: Arc<Pool>,
    /// The elected oracles the stream services exchange receipt counts with.
    pub oracles: psp_net::driver::counts::SharedOracles,
    /// Epochs, oracles and recent blocks for the media service's gate and meter.
    pub facts: super::usage::SharedChainFacts,
    /// The oracle's settlement (with the usage service).
    pub settler: Option<super::usage::Settler>,
}

/// Runs until the overlay or the chain stops.
pub async fn feed_from_chain(
    client: Arc<FullClient>,
    checks: Arc<ChainChecks<FullClient>>,
    handle: NodeHandle,
    identity: Arc<OverlayIdentity>,
    messaging: Option<MessagingChain>,
    mut streams: Option<StreamFeed>,
    mut reporter: Option<super::slashing::EquivocationReporter>,
) {
    let mut finality = client.finality_notification_stream();
    let mut last_view = None;
    // Once at start (finality may not move for a while), then at every finalized block.
    loop {
        let reading = checks.clone();
        let snapshot = match tokio::task::spawn_blocking(move || reading.refresh()).await {
            Ok(Ok(Some(snapshot))) => Some(snapshot),
            Ok(Ok(None)) => None,
            Ok(Err(e)) => {
                log::warn!(target: "psp-overlay", "chain snapshot not read: {e}");
                None
            }
            Err(e) => {
                log::warn!(target: "psp-overlay", "chain snapshot task failed: {e}");
                None
            }
        };
        if let Some(snapshot) = snapshot {
            if let Some(chain) = &messaging {
                if let Ok(mut authorities) = chain.authorities.write() {
                    authorities.clone_from(&snapshot.authority.now_or_next);
                }
                chain.generation.fetch_add(1, Ordering::Relaxed);
            }
            if let Some(streams) = &streams {
                let oracles = snapshot
                    .oracle
                    .now_or_next
                    .iter()
                    .filter_map(|id| {
                        let (peer, addr) = snapshot.nodes.get(id)?.link.clone()?;
                        Some((NodeId(*id), peer, addr))
                    })
                    .collect();
                *streams.oracles.write().unwrap_or_else(|e| e.into_inner()) = oracles;
            }
            match handle.dht_set_peers(snapshot.links()).await {
                Ok((0, 0)) => {}
                Ok((added, removed)) => log::info!(
                    target: "psp-overlay",
                    "dht: {added} registered nodes added, {removed} no longer registered removed"
                ),
                Err(_) => return, // the overlay stopped
            }
            let view = discovery_view(&snapshot, &identity);
            if last_view.as_ref() != Some(&view) {
                log::info!(
                    target: "psp-overlay",
                    "directory: {} elected discovery nodes, our flags {:#04x}",
                    view.set.len(),
                    view.flags
                );
                if handle.directory_update(view.clone()).await.is_err() {
                    return;
                }
                last_view = Some(view);
            }
        }
        if let Some(streams) = &mut streams {
            // Usage first: the puzzle's and the gate's recent blocks must not wait for the
            // receipt keys an oracle makes at a new epoch (RSA key generation takes a while).
            refresh_usage(&client, streams).await;
            refresh_streams(&client, streams).await;
        }
        if let (Some(reporter), Some(view)) = (reporter.as_mut(), last_view.as_ref()) {
            // Elected to any role: the chain takes reports from elected nodes only.
            let elected = view.flags & (flags::DISCOVERY | flags::AUTHORITY | flags::ORACLE) != 0;
            reporter.report_new(&client, &handle, elected).await;
        }
        if finality.next().await.is_none() {
            return; // the chain stopped
        }
        // Several blocks finalized at once (a catching-up node): one snapshot, of the newest.
        while let Some(Some(_)) = finality.next().now_or_never() {}
    }
}

/// The elected discovery nodes (with their link addresses) and this node's flags.
fn discovery_view(snapshot: &ChainSnapshot, identity: &OverlayIdentity) -> DiscoveryView {
    let me = identity.node_id();
    let discovery = &snapshot.discovery.now;
    let mut own = flags::RELAY | flags::ENTRY;
    if discovery.contains(&me) {
        own |= flags::DISCOVERY;
    }
    if snapshot.authority.now.contains(&me) {
        own |= flags::AUTHORITY;
    }
    if snapshot.oracle.now.contains(&me) {
        own |= flags::ORACLE;
    }
    let mut set: Vec<_> = discovery
        .iter()
        .filter_map(|id| {
            let (peer, addr) = snapshot.nodes.get(id)?.link.clone()?;
            Some((NodeId(*id), peer, addr))
        })
        .collect();
    // The chain lists nodes by key; keep that order so an unchanged set compares equal.
    set.sort_by_key(|(id, _, _)| id.0);
    DiscoveryView {
        set,
        flags: own,
        addresses: vec![identity.address.clone()],
    }
}

/// Reads the usage facts at the latest finalized block (in a blocking task), then lets the
/// settler feed the usage service and submit what it paired.
async fn refresh_usage(client: &Arc<FullClient>, streams: &mut StreamFeed) {
    let (reading, facts) = (client.clone(), streams.facts.clone());
    match tokio::task::spawn_blocking(move || super::usage::refresh_facts(&reading, &facts)).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => {
            log::warn!(target: "psp-usage", "usage facts not read: {e}");
            return;
        }
        Err(e) => {
            log::warn!(target: "psp-usage", "usage facts task failed: {e}");
            return;
        }
    }
    let Some(settler) = streams.settler.as_mut() else {
        return;
    };
    let facts = streams
        .facts
        .read()
        .unwrap_or_else(|e| e.into_inner())
        .clone();
    let keys = streams.keys.clone();
    settler
        .on_finalized(client, &facts, |epoch| keys.token_keys(epoch))
        .await;
}

/// Reads plans and receipt keys at the latest finalized block (in a blocking task) and
/// submits this oracle's key publications, if any, as unsigned transactions.
async fn refresh_streams(client: &Arc<FullClient>, streams: &StreamFeed) {
    use sc_transaction_pool_api::{TransactionPool, TransactionSource};
    use sp_blockchain::HeaderBackend;

    let (reading, keys, subscriptions) = (
        client.clone(),
        streams.keys.clone(),
        streams.subscriptions.clone(),
    );
    let publications =
        match tokio::task::spawn_blocking(move || keys.refresh(&*reading, &subscriptions)).await {
            Ok(Ok(publications)) => publications,
            Ok(Err(e)) => {
                log::warn!(target: "psp-overlay", "receipt keys not read: {e}");
                return;
            }
            Err(e) => {
                log::warn!(target: "psp-overlay", "receipt keys task failed: {e}");
                return;
            }
        };
    for publication in publications {
        let epoch = publication.epoch;
        let call = psp_runtime::RuntimeCall::PspSubscriptions(
            pallet_psp_subscriptions::Call::publish_receipt_keys { publication },
        );
        let xt = psp_runtime::UncheckedExtrinsic::new_bare(call);
        let best = client.info().best_hash;
        match streams
            .pool
            .submit_one(best, TransactionSource::Local, xt.into())
            .await
        {
            Ok(_) => log::info!(
                target: "psp-overlay",
                "🔑 oracle: receipt keys for epoch {epoch} submitted"
            ),
            Err(e) => log::warn!(
                target: "psp-overlay",
                "oracle: receipt keys for epoch {epoch} refused by the pool: {e}"
            ),
        }
    }
}
