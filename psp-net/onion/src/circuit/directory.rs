//! The chain check: which node ids are registered, and with which onion key.
//!
//! The relay asks [`NodeDirectory::onion_key`] before it extends a circuit; the node binary
//! implements it against chain state at the latest finalized block.

use std::collections::HashMap;

use crate::crypto::{NodeId, OnionPublic};

/// What the chain says about a registered node.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct NodeRecord {
    /// The X25519 onion key registered for the node.
    pub onion_key: OnionPublic,
    /// Where to reach it: opaque to the core. The libp2p driver reads it as a multiaddr that
    /// ends in the node's libp2p peer id, e.g. `/ip4/192.0.2.7/tcp/30444/p2p/12D3KooW...`
    /// (build one with `driver::node_address`). The peer id is what the link layer
    /// authenticates (Noise), so a node id maps to (onion key, peer id, address).
    pub address: String,
}

/// Read access to the registered nodes.
pub trait NodeDirectory: Send {
    /// The record of `node`, or `None` if it is not registered (or revoked).
    fn onion_key(&self, node: &NodeId) -> Option<NodeRecord>;
}

/// A fixed map, for tests and bootstrap.
#[derive(Clone, Default, Debug)]
pub struct StaticDirectory(pub HashMap<NodeId, NodeRecord>);

impl NodeDirectory for StaticDirectory {
    fn onion_key(&self, node: &NodeId) -> Option<NodeRecord> {
        self.0.get(node).cloned()
    }
}
