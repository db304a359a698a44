//! Test-only: an in-memory PSP network for the agent's tests. Every node runs the real
//! presence, rendezvous and lookup services (`psp_rendezvous`, sans IO) over a shared DHT
//! of co-signed records; a static registry and one certificate authority stand in for the
//! chain. Streams are numbered by the network; what the nodes send back comes out as
//! [`Delivery`]s for the test's driver to hand to its clients.

use std::collections::{BTreeMap, HashMap, HashSet};

use psp_net::cert::{CertRequest, CertificateAuthority};
use psp_net::crypto::{NodeId, OnionPublic, Sr25519Keypair};
use psp_net::dht::{RecordKey, SignedRecord};
use psp_net::driver::{Keypair, NodeDescriptor};
use psp_net::registry::{IdentityKind, IdentityRegistry, IdentityStatus, StaticRegistry};
use psp_net::rendezvous::lookup::{self, Lookup};
use psp_net::rendezvous::presence::{self, Presence};
use psp_net::rendezvous::rendezvous::{self, Rendezvous};
use psp_net::rendezvous::{ChainView, StreamHandle};

use super::chainview::ChainState;
use super::core::{LOOKUP_SERVICE, PRESENCE_SERVICE, RENDEZVOUS_SERVICE};
use super::source::IssuedCertificate;
use crate::keystore::Keys;
use crate::overlay::RelayNode;

pub const GENESIS: [u8; 32] = [0x47; 32];
/// Certificates live an hour.
pub const CERT_LIFETIME: u64 = 3_600;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Service {
    Presence,
    Rendezvous,
    Lookup,
}

/// What a node sent a client.
#[derive(Debug, PartialEq, Eq)]
pub enum Delivery {
    /// Bytes on the network stream `id`.
    Data(u64, Vec<u8>),
    /// The node closed the network stream `id`.
    Closed(u64),
}

pub struct TestNode {
    pub key: Sr25519Keypair,
    presence: Presence,
    rendezvous: Rendezvous,
    lookup: Lookup,
}

pub struct World {
    pub registry: StaticRegistry,
    pub authority: CertificateAuthority,
    pub authorities: Vec<[u8; 32]>,
    pub nodes: Vec<TestNode>,
    pub dht: BTreeMap<RecordKey, Vec<u8>>,
    /// Nodes no circuit reaches.
    pub unreachable: HashSet<[u8; 32]>,
    routes: HashMap<u64, (usize, Service)>,
    next: u64,
}

impl World {
    /// `nodes` nodes and an authority (a node too, not serving).
    pub fn new(nodes: u8) -> Self {
        let authority_key = Sr25519Keypair::from_seed(&[0xa0; 32]);
        let mut registry = StaticRegistry::default();
        registry.insert(authority_key.public(), IdentityKind::Node);
        let nodes: Vec<TestNode> = (1..=nodes)
            .map(|i| {
                let key = Sr25519Keypair::from_seed(&[i; 32]);
                registry.insert(key.public(), IdentityKind::Node);
                TestNode {
                    presence: Presence::new(key.public(), presence::PresenceConfig::default()),
                    rendezvous: Rendezvous::new(rendezvous::RendezvousConfig::default()),
                    lookup: Lookup::new(lookup::LookupConfig::default()),
                    key,
                }
            })
            .collect();
        let authorities = vec![authority_key.public()];
        Self {
            registry,
            authority: CertificateAuthority::new(authority_key, GENESIS, CERT_LIFETIME, 60),
            authorities,
            nodes,
            dht: BTreeMap::new(),
            unreachable: HashSet::new(),
            routes: HashMap::new(),
            next: 1_000_000,
        }
    }

    /// A client identity registered on chain.
    pub fn client(&mut self, seed: u8) -> Keys {
        let keys = Keys::from_secrets([seed; 32], [seed.wrapping_add(100); 32]).expect("keys");
        self.registry
            .insert(keys.identity_public(), IdentityKind::Client);
        keys
    }

    /// A certificate for `keys` issued at `now`.
    pub fn certificate(&mut self, keys: &Keys, now: u64) -> IssuedCertificate {
        let key = Sr25519Keypair::from_seed(keys.identity_seed());
        let request = CertRequest::new(&key, keys.x25519_public(), self.authority.public(), now);
        let cert = self
            .authority
            .issue(&request.encode(), now, &self.registry)
            .expect("issued");
        IssuedCertificate {
            not_before: cert.body.not_before,
            not_after: cert.body.not_after,
            bytes: cert.encode(),
        }
    }

    pub fn node_keys(&self) -> Vec<[u8; 32]> {
        self.nodes.iter().map(|n| n.key.public()).collect()
    }

    /// The nodes as hops (descriptors that are never dialled).
    pub fn relay_nodes(&self) -> Vec<RelayNode> {
        self.nodes
            .iter()
            .enumerate()
            .map(|(i, n)| {
                let peer_id = Keypair::ed25519_from_bytes([i as u8 + 1; 32])
                    .expect("key")
                    .public()
                    .to_peer_id();
                RelayNode {
                    id: format!("node-{i}"),
                    descriptor: NodeDescriptor {
                        id: NodeId(n.key.public()),
                        onion_key: OnionPublic([i as u8; 32]),
                        peer_id,
                        address: "/ip4/127.0.0.1/tcp/1".parse().expect("address"),
                    },
                }
            })
            .collect()
    }

    /// The chain as a client sees it at start: authorities and nodes, no identities.
    pub fn chain_state(&self) -> ChainState {
        let mut chain = ChainState::new(GENESIS);
        chain.authorities = self.authorities.clone();
        chain.registry.set_nodes(self.node_keys());
        chain
    }

    pub fn status(&self, key: &[u8; 32]) -> IdentityStatus {
        self.registry.status(key)
    }

    /// Opens a stream to `service` at `node`.
    pub fn open(&mut self, node: &[u8; 32], service: &str) -> Result<u64, String> {
        if self.unreachable.contains(node) {
            return Err("node unreachable".into());
        }
        let index = self
            .nodes
            .iter()
            .position(|n| &n.key.public() == node)
            .ok_or_else(|| "unknown node".to_string())?;
        let service = match service {
            PRESENCE_SERVICE => Service::Presence,
            RENDEZVOUS_SERVICE => Service::Rendezvous,
            LOOKUP_SERVICE => Service::Lookup,
            other => return Err(format!("no service {other}")),
        };
        self.next += 1;
        self.routes.insert(self.next, (index, service));
        Ok(self.next)
    }

    /// A client wrote on stream `id`.
    pub fn write(&mut self, now: u64, id: u64, bytes: &[u8]) -> Vec<Delivery> {
        let Some(&(index, service)) = self.routes.get(&id) else {
            return Vec::new();
        };
        let chain = ChainView {
            genesis: &GENESIS,
            authorities: &self.authorities,
            registry: &self.registry,
        };
        let node = &mut self.nodes[index];
        let stream = StreamHandle(id);
        // Refusals come back as actions (a refusal message, a close); the error is the log.
        let _ = match service {
            Service::Presence => node
                .presence
                .handle_data(now, stream, bytes, &chain)
                .map_err(|_| ()),
            Service::Rendezvous => node
                .rendezvous
                .handle_data(now, stream, bytes)
                .map_err(|_| ()),
            Service::Lookup => node.lookup.handle_data(now, stream, bytes).map_err(|_| ()),
        };
        self.drain(now)
    }

    /// A client closed stream `id`.
    pub fn close(&mut self, now: u64, id: u64) -> Vec<Delivery> {
        let Some((index, service)) = self.routes.remove(&id) else {
            return Vec::new();
        };
        let node = &mut self.nodes[index];
        let stream = StreamHandle(id);
        match service {
            Service::Presence => node.presence.handle_stream_closed(stream),
            Service::Rendezvous => node.rendezvous.handle_stream_closed(stream),
            Service::Lookup => node.lookup.handle_stream_closed(stream),
        }
        self.drain(now)
    }

    /// The circuit of stream `id` dies: both ends see it closed.
    pub fn kill(&mut self, now: u64, id: u64) -> Vec<Delivery> {
        let mut out = self.close(now, id);
        out.push(Delivery::Closed(id));
        out
    }

    /// The streams open to `service` at node `index`.
    pub fn streams_at(&self, index: usize, service: &str) -> Vec<u64> {
        let mut ids: Vec<u64> = self
            .routes
            .iter()
            .filter(|(_, (i, s))| {
                *i == index
                    && match s {
                        Service::Presence => service == PRESENCE_SERVICE,
                        Service::Rendezvous => service == RENDEZVOUS_SERVICE,
                        Service::Lookup => service == LOOKUP_SERVICE,
                    }
            })
            .map(|(id, _)| *id)
            .collect();
        ids.sort();
        ids
    }

    /// The nodes' timers at `now`.
    pub fn tick(&mut self, now: u64) -> Vec<Delivery> {
        for node in &mut self.nodes {
            node.presence.handle_timeout(now);
            node.rendezvous.handle_timeout(now);
            node.lookup.handle_timeout(now);
        }
        self.drain(now)
    }

    /// Runs every node's actions until none is left.
    fn drain(&mut self, now: u64) -> Vec<Delivery> {
        let mut out = Vec::new();
        loop {
            let before = out.len();
            let mut fetches = Vec::new();
            for index in 0..self.nodes.len() {
                while let Some(action) = self.nodes[index].presence.poll_action() {
                    match action {
                        presence::Action::Send { stream, bytes } => {
                            out.push(Delivery::Data(stream.0, bytes))
                        }
                        presence::Action::Close { stream }
                        | presence::Action::Teardown { stream } => {
                            self.node_closed(stream.0, &mut out)
                        }
                        presence::Action::Publish {
                            content,
                            owner_signature,
                        } => {
                            let key = content.key();
                            let node_key = &self.nodes[index].key;
                            let record = SignedRecord::cosign(content, owner_signature, node_key);
                            self.dht.insert(key, record.encode());
                        }
                        presence::Action::Unpublish { key, .. } => {
                            self.dht.remove(&key);
                        }
                        _ => {}
                    }
                }
                while let Some(action) = self.nodes[index].rendezvous.poll_action() {
                    match action {
                        rendezvous::Action::Send { stream, bytes } => {
                            out.push(Delivery::Data(stream.0, bytes))
                        }
                        rendezvous::Action::Close { stream } => {
                            self.node_closed(stream.0, &mut out)
                        }
                        _ => {}
                    }
                }
                while let Some(action) = self.nodes[index].lookup.poll_action() {
                    match action {
                        lookup::Action::Send { stream, bytes } => {
                            out.push(Delivery::Data(stream.0, bytes))
                        }
                        lookup::Action::Close { stream } => self.node_closed(stream.0, &mut out),
                        lookup::Action::Fetch { stream, keys } => {
                            let found: Vec<Vec<u8>> = keys
                                .iter()
                                .filter_map(|k| self.dht.get(k).cloned())
                                .collect();
                            fetches.push((index, stream, found));
                        }
                        _ => {}
                    }
                }
            }
            let fetched = !fetches.is_empty();
            for (index, stream, found) in fetches {
                self.nodes[index].lookup.handle_fetched(now, stream, found);
            }
            if out.len() == before && !fetched {
                return out;
            }
        }
    }

    fn node_closed(&mut self, id: u64, out: &mut Vec<Delivery>) {
        if self.routes.remove(&id).is_some() {
            out.push(Delivery::Closed(id));
        }
    }
}
