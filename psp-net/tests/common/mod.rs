//! Shared by the DHT driver tests: a real driver node with the DHT on 127.0.0.1, and presence
//! records signed by an owner and a publisher.
// Each test binary uses part of this module.
#![allow(dead_code)]

use std::sync::Arc;

use psp_net::circuit::{NodeDirectory, Services};
use psp_net::crypto::{NodeId, OnionSecret, Sr25519Keypair};
use psp_net::dht::{RecordContent, RecordKind, SignedRecord};
use psp_net::driver::{
    unix_now, DhtSetup, Keypair, Multiaddr, Node, NodeConfig, NodeHandle, NodeSecrets,
    NodeServices, PeerId,
};

/// A running driver node with the DHT.
pub struct DhtNode {
    pub handle: NodeHandle,
    /// Its node identity key (the publisher key of the records it co-signs).
    pub key: Sr25519Keypair,
    /// Its libp2p peer id and listen address, as the chain would list them.
    pub peer: (PeerId, Multiaddr),
}

/// Starts a node with identity `key` (onion secret from `onion_seed`) on a free loopback port.
pub async fn start_dht_node(
    key: Sr25519Keypair,
    onion_seed: u8,
    directory: Arc<dyn NodeDirectory + Send + Sync>,
    dht: DhtSetup,
) -> DhtNode {
    let link_key = Keypair::generate_ed25519();
    let peer_id = link_key.public().to_peer_id();
    let secrets = NodeSecrets {
        id: NodeId(key.public()),
        onion: OnionSecret::from_bytes([onion_seed; 32]),
        link_key,
    };
    let config = NodeConfig {
        listen: "/ip4/127.0.0.1/tcp/0".parse().expect("multiaddr"),
        ..NodeConfig::default()
    };
    let node = Node::with_node_services(
        config,
        secrets,
        directory,
        Box::new(Services::default()),
        NodeServices {
            dht: Some(dht),
            ..NodeServices::default()
        },
    )
    .expect("node starts");
    tokio::spawn(node.task.run());
    let addr = node.handle.listen_addrs().await.expect("listening")[0].clone();
    DhtNode {
        handle: node.handle,
        key,
        peer: (peer_id, addr),
    }
}

/// A presence record of `owner` under `topic`, published by `publisher`, valid for `ttl` s.
pub fn presence_record(
    owner: &Sr25519Keypair,
    publisher: &Sr25519Keypair,
    topic: [u8; 32],
    seq: u64,
    value: &[u8],
    ttl: u64,
) -> SignedRecord {
    let t = unix_now();
    RecordContent {
        kind: RecordKind::Presence,
        owner: owner.public(),
        topic,
        publisher: publisher.public(),
        seq,
        issued_at: t,
        expires_at: t + ttl,
        value: value.to_vec(),
    }
    .sign(owner, publisher)
}
