//! One finalized block's worth of the chain state the overlay checks against: the active node
//! identities (onion key, link address) and the elected role sets.
//!
//! A snapshot is read in one go, off the overlay's async tasks (the reads execute the runtime),
//! and then only read: EXTEND checks, the DHT routing table and the directory's view all come
//! from the same block, and none of them calls the runtime.

use std::collections::HashMap;
use std::net::SocketAddr;

use psp_net::{
    circuit::NodeRecord,
    crypto::OnionPublic,
    driver::{parse_node_address, Multiaddr, PeerId},
};
use psp_primitives::{
    api::{PspApi, PspStakingApi, MAX_NODES_PER_PAGE},
    staking::Role,
};
use psp_runtime::{opaque::Block, AccountId, Balance, BlockNumber};
use sp_api::ProvideRuntimeApi;
use sp_blockchain::HeaderBackend;

/// An active node identity as the chain lists it.
#[derive(Clone, Debug)]
pub struct NodeEntry {
    /// What EXTEND needs: onion key and registered address.
    pub record: NodeRecord,
    /// The libp2p peer and address, if the registered address parses as one.
    pub link: Option<(PeerId, Multiaddr)>,
    /// The media service (WHIP/WHEP signalling and WebRTC), if the second registered address
    /// is a media address (`/ip4/<ip>/tcp/<port>/http`, [`psp_webrtc::address`]).
    pub media: Option<SocketAddr>,
}

/// The elected nodes of one role.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Elected {
    /// Elected for the current epoch.
    pub now: Vec<[u8; 32]>,
    /// Elected for the current or the next epoch (a set changes at an epoch boundary; both
    /// are accepted around it).
    pub now_or_next: Vec<[u8; 32]>,
}

/// The chain state the overlay checks against, at one finalized block.
#[derive(Clone, Debug, Default)]
pub struct ChainSnapshot {
    /// The finalized block it was read at; `None` before the first read.
    pub at: Option<[u8; 32]>,
    /// Active node identities by node key.
    pub nodes: HashMap<[u8; 32], NodeEntry>,
    /// Elected authorities.
    pub authority: Elected,
    /// Elected discovery nodes.
    pub discovery: Elected,
    /// Elected oracles.
    pub oracle: Elected,
}

impl ChainSnapshot {
    /// Reads the latest finalized block. Executes the runtime: call it off async tasks.
    pub fn read<C>(client: &C) -> Result<Self, sp_api::ApiError>
    where
        C: ProvideRuntimeApi<Block> + HeaderBackend<Block>,
        C::Api: PspApi<Block, AccountId, Balance, BlockNumber>,
        C::Api: PspStakingApi<Block, AccountId, Balance, BlockNumber>,
    {
        let at = client.info().finalized_hash;
        let api = client.runtime_api();
        let mut nodes = HashMap::new();
        let mut after = None;
        loop {
            let page = api.nodes(at, after, MAX_NODES_PER_PAGE)?;
            let Some(last) = page.last().map(|n| n.key) else {
                break;
            };
            for info in page {
                let mut addresses = info
                    .node
                    .map(|n| n.addresses.into_iter())
                    .into_iter()
                    .flatten();
                let Some(address) = addresses.next().and_then(|a| String::from_utf8(a).ok()) else {
                    continue;
                };
                let media = addresses
                    .next()
                    .and_then(|a| String::from_utf8(a).ok())
                    .and_then(|a| psp_webrtc::address::parse_media_address(&a));
                let link = parse_node_address(&address).ok();
                let record = NodeRecord {
                    onion_key: OnionPublic(info.x25519),
                    address,
                };
                nodes.insert(
                    info.key,
                    NodeEntry {
                        record,
                        link,
                        media,
                    },
                );
            }
            after = Some(last);
        }
        let current = api.epoch(at)?.current;
        let elected = |role| -> Result<Elected, sp_api::ApiError> {
            let now: Vec<[u8; 32]> = api
                .elected(at, role, current)?
                .unwrap_or_default()
                .into_iter()
                .map(|e| e.node)
                .collect();
            let mut now_or_next = now.clone();
            for e in api
                .elected(at, role, current.saturating_add(1))?
                .unwrap_or_default()
            {
                if !now_or_next.contains(&e.node) {
                    now_or_next.push(e.node);
                }
            }
            Ok(Elected { now, now_or_next })
        };
        Ok(Self {
            at: Some(at.0),
            authority: elected(Role::Authority)?,
            discovery: elected(Role::Discovery)?,
            oracle: elected(Role::Oracle)?,
            nodes,
        })
    }

    /// Peer ids and addresses of the active nodes, for the DHT routing table.
    pub fn links(&self) -> Vec<(PeerId, Multiaddr)> {
        self.nodes.values().filter_map(|n| n.link.clone()).collect()
    }
}
