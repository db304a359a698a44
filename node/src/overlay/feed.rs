//! Keeps the overlay in step with the chain: each time finality moves, a new
//! [`ChainSnapshot`] is read in a blocking task and put in force in [`ChainChecks`]; then the
//! DHT routing table is set to the active node identities (the only peers Kademlia may route
//! through: deregistered and revoked ones are evicted) and the directory learns the elected
//! discovery set and this node's flags, and the messaging services the elected authorities
//! (and that it is time to re-check registered identities).

use std::sync::atomic::Ordering;
use std::sync::Arc;

use futures::{FutureExt, StreamExt};
use psp_net::{
    crypto::NodeId,
    directory::flags,
    driver::{messaging::MessagingChain, DiscoveryView, NodeHandle},
};
use sc_client_api::BlockchainEvents;

use super::OverlayIdentity;
use crate::chain_checks::{ChainChecks, ChainSnapshot};
use crate::client::FullClient;

/// Runs until the overlay or the chain stops.
pub async fn feed_from_chain(
    client: Arc<FullClient>,
    checks: Arc<ChainChecks<FullClient>>,
    handle: NodeHandle,
    identity: Arc<OverlayIdentity>,
    messaging: Option<MessagingChain>,
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
