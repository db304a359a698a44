//! The PSP overlay inside `psp-node`: starts a `psp_net` onion relay beside the chain and
//! checks every node it extends to against this node's chain state.
//!
//! The overlay identity (sr25519 node key, X25519 onion key, libp2p link key) is derived from
//! one 32-byte secret: from `--overlay-seed` for well-known dev identities, otherwise from a
//! file `overlay/secret` under the node's base path, created on first start (mode 0600).
//! Operators register that identity on chain with `psp identity register-node`, which fetches
//! the node's signed registration from the `psp_overlayRegistration` RPC.

use crate::chain_checks::ChainRegistry;
use crate::service::FullClient;
use clap::Args;
use psp_net::{
    cert::CertificateAuthority,
    circuit::{NodeDirectory, NodeRecord, RelayEvent},
    crypto::{NodeId, OnionPublic, OnionSecret},
    driver::{
        node_address, parse_node_address, DhtSetup, DirectorySetup, DiscoveryView, Keypair,
        Multiaddr, Node, NodeConfig, NodeEvent, NodeHandle, NodeSecrets, NodeServices, PeerId,
    },
};
use psp_primitives::{api::PspApi, IdentityKind, IdentityStatus, NodeDetails, Registration};
use sp_api::ProvideRuntimeApi;
use sp_blockchain::HeaderBackend;
use sp_core::{sr25519, Pair};
use std::{
    path::{Path, PathBuf},
    sync::{Arc, Mutex, OnceLock},
};

/// Overlay options of `psp-node`.
#[derive(Debug, Clone, Args)]
pub struct OverlayParams {
    /// Do not start the PSP overlay (onion relay) beside the chain.
    #[arg(long)]
    pub no_overlay: bool,

    /// TCP port of the overlay's libp2p links (onion cells).
    #[arg(long, value_name = "PORT", default_value_t = 30444)]
    pub overlay_port: u16,

    /// Address to listen on for overlay links; defaults to 127.0.0.1 and `--overlay-port`.
    #[arg(long, value_name = "MULTIADDR")]
    pub overlay_listen: Option<Multiaddr>,

    /// Address other nodes reach this node at (registered on chain); defaults to the listen
    /// address.
    #[arg(long, value_name = "MULTIADDR")]
    pub overlay_public_addr: Option<Multiaddr>,

    /// Onion cells per second each circuit may send through this node (the token bucket that
    /// keeps bulk media off the onion layer); psp-net's default when unset.
    #[arg(long, value_name = "CELLS")]
    pub overlay_circuit_rate: Option<u32>,

    /// Largest burst of cells per circuit; psp-net's default when unset.
    #[arg(long, value_name = "CELLS")]
    pub overlay_circuit_burst: Option<u32>,

    /// Lifetime of the access certificates this node issues while it is an elected
    /// authority, in seconds.
    #[arg(long, value_name = "SECS", default_value_t = 600)]
    pub cert_lifetime: u64,

    /// Length of a discovery directory period, in seconds: 900 (15 minutes) by default, 10 on
    /// the dev and local chains.
    #[arg(long, value_name = "SECS")]
    pub directory_period: Option<u64>,

    /// How long after a period's start discovery nodes collect votes before they sign the
    /// consensus, in seconds; a fifth of the period when unset.
    #[arg(long, value_name = "SECS")]
    pub directory_vote_window: Option<u64>,

    /// Derive the overlay identity from this string instead of the secret file (dev and tests
    /// only: anyone knowing the string has the keys).
    #[arg(long, value_name = "SEED")]
    pub overlay_seed: Option<String>,
}

impl OverlayParams {
    fn listen(&self) -> Multiaddr {
        self.overlay_listen.clone().unwrap_or_else(|| {
            format!("/ip4/127.0.0.1/tcp/{}", self.overlay_port)
                .parse()
                .unwrap_or_else(|_| Multiaddr::empty())
        })
    }
}

/// Why the overlay could not start.
#[derive(Debug, thiserror::Error)]
pub enum OverlayError {
    /// The secret file could not be read or created.
    #[error("overlay secret file {path}: {source}")]
    SecretFile {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The secret file exists but is not 32 bytes.
    #[error("overlay secret file {0} is not 32 bytes; delete it to create a new identity")]
    BadSecretFile(PathBuf),
    /// The libp2p link key could not be derived.
    #[error("overlay link key: {0}")]
    LinkKey(String),
}

/// The node's overlay identity: the keys it registers on chain and serves with.
pub struct OverlayIdentity {
    /// sr25519 identity key pair (its public key is the node id).
    pub id: sr25519::Pair,
    id_seed: [u8; 32],
    onion_secret: [u8; 32],
    /// X25519 onion public key.
    pub onion_public: [u8; 32],
    /// libp2p link key.
    pub link_key: Keypair,
    /// The address registered on chain (`.../p2p/<peer id>`).
    pub address: String,
}

fn derive(master: &[u8; 32], label: &[u8]) -> [u8; 32] {
    let mut input = Vec::with_capacity(label.len() + 32);
    input.extend_from_slice(label);
    input.extend_from_slice(master);
    sp_crypto_hashing::blake2_256(&input)
}

fn load_or_create_secret(dir: &Path) -> Result<[u8; 32], OverlayError> {
    let path = dir.join("overlay").join("secret");
    let io = |source| OverlayError::SecretFile {
        path: path.clone(),
        source,
    };
    match std::fs::read(&path) {
        Ok(bytes) => bytes
            .try_into()
            .map_err(|_| OverlayError::BadSecretFile(path.clone())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let mut secret = [0u8; 32];
            rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut secret);
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent).map_err(io)?;
            }
            write_private(&path, &secret).map_err(io)?;
            Ok(secret)
        }
        Err(e) => Err(io(e)),
    }
}

fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::{io::Write, os::unix::fs::OpenOptionsExt};
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(bytes)
}

impl OverlayIdentity {
    /// Derives the identity from `--overlay-seed` or the secret file under `base_path`.
    pub fn load(params: &OverlayParams, base_path: &Path) -> Result<Self, OverlayError> {
        let master = match &params.overlay_seed {
            Some(seed) => sp_crypto_hashing::blake2_256(
                &[b"psp/overlay/seed/".as_slice(), seed.as_bytes()].concat(),
            ),
            None => load_or_create_secret(base_path)?,
        };
        let id_seed = derive(&master, b"psp/overlay/id");
        let id = sr25519::Pair::from_seed(&id_seed);
        let onion_secret = derive(&master, b"psp/overlay/onion");
        let onion_public = OnionSecret::from_bytes(onion_secret).public().0;
        let link_key = Keypair::ed25519_from_bytes(derive(&master, b"psp/overlay/link"))
            .map_err(|e| OverlayError::LinkKey(e.to_string()))?;
        let public = params
            .overlay_public_addr
            .clone()
            .unwrap_or_else(|| params.listen());
        let address = node_address(&public, link_key.public().to_peer_id());
        Ok(Self {
            id,
            id_seed,
            onion_secret,
            onion_public,
            link_key,
            address,
        })
    }

    /// The node id (sr25519 public key).
    pub fn node_id(&self) -> [u8; 32] {
        self.id.public().0
    }

    /// The node key, for psp-net's signed data (certificates, directories, DHT records).
    pub fn signing_key(&self) -> psp_net::crypto::Sr25519Keypair {
        psp_net::crypto::Sr25519Keypair::from_seed(&self.id_seed)
    }

    /// The registration this node asks its operator to submit, and the identity key's proof
    /// of possession for `owner` on the chain with `genesis`.
    pub fn registration(
        &self,
        genesis: &[u8; 32],
        owner: &psp_runtime::AccountId,
        namespace: &str,
        app_namespace: &str,
    ) -> (Registration, [u8; 64]) {
        let registration = Registration {
            kind: IdentityKind::Node,
            namespace: namespace.as_bytes().to_vec(),
            app_namespace: app_namespace.as_bytes().to_vec(),
            key: self.node_id(),
            x25519: self.onion_public,
            node: Some(NodeDetails {
                peer_id: self.link_key.public().to_peer_id().to_bytes(),
                addresses: vec![self.address.clone().into_bytes()],
            }),
        };
        let message = psp_primitives::registration_message(genesis, owner, &registration);
        (registration, self.id.sign(&message).0)
    }
}

/// The overlay's view of the chain: registered, active node identities at the latest
/// finalized block.
pub struct ChainDirectory {
    client: Arc<FullClient>,
}

impl NodeDirectory for ChainDirectory {
    fn onion_key(&self, node: &NodeId) -> Option<NodeRecord> {
        let at = self.client.info().finalized_hash;
        let info = match self.client.runtime_api().identity_by_key(at, node.0) {
            Ok(info) => info?,
            Err(e) => {
                log::warn!(target: "psp-overlay", "chain look-up of node {node:?} failed: {e}");
                return None;
            }
        };
        if info.kind != IdentityKind::Node || info.status != IdentityStatus::Active {
            log::info!(target: "psp-overlay", "node {node:?} is not an active node identity on chain");
            return None;
        }
        let address = info.node?.addresses.into_iter().next()?;
        Some(NodeRecord {
            onion_key: OnionPublic(info.x25519),
            address: String::from_utf8(address).ok()?,
        })
    }
}

/// The running overlay, shared with the RPC.
#[derive(Default)]
pub struct OverlayState {
    /// The identity, once loaded.
    pub identity: OnceLock<Arc<OverlayIdentity>>,
    /// The node handle, once started.
    pub handle: OnceLock<NodeHandle>,
    /// The certificate issuer (used while this node is an elected authority).
    pub cert_authority: OnceLock<Mutex<CertificateAuthority>>,
}

/// Starts the overlay on the node's tokio runtime.
pub fn start(
    params: &OverlayParams,
    identity: Arc<OverlayIdentity>,
    client: Arc<FullClient>,
    state: Arc<OverlayState>,
    spawn: &sc_service::SpawnTaskHandle,
    test_network: bool,
) {
    let mut config = NodeConfig {
        listen: params.listen(),
        ..NodeConfig::default()
    };
    if let Some(rate) = params.overlay_circuit_rate {
        config.limits.circuit_rate.cells_per_sec = rate;
    }
    if let Some(burst) = params.overlay_circuit_burst {
        config.limits.circuit_rate.burst = burst;
    }
    let directory = Arc::new(ChainDirectory {
        client: client.clone(),
    });
    let registry = Arc::new(ChainRegistry::new(client.clone()));
    let period = params
        .directory_period
        .unwrap_or(if test_network { 10 } else { 900 })
        .max(1);
    let node_services = NodeServices {
        dht: Some(DhtSetup::new(registry.clone())),
        directory: crate::chain_checks::genesis(&*client).map(|genesis| DirectorySetup {
            key: identity.signing_key(),
            genesis,
            config: psp_net::directory::Config {
                period_secs: period,
                vote_window_secs: params
                    .directory_vote_window
                    .unwrap_or(period / 5)
                    .min(period.saturating_sub(1)),
                ..psp_net::directory::Config::default()
            },
            registry,
        }),
    };
    let secrets = NodeSecrets {
        id: NodeId(identity.node_id()),
        onion: OnionSecret::from_bytes(identity.onion_secret),
        link_key: identity.link_key.clone(),
    };
    let spawn_inner = spawn.clone();
    spawn.spawn("psp-overlay", Some("overlay"), async move {
        let services = Box::new(psp_net::circuit::Services::default());
        let node =
            match Node::with_node_services(config, secrets, directory, services, node_services) {
                Ok(node) => node,
                Err(e) => {
                    log::error!(target: "psp-overlay", "overlay did not start: {e}");
                    return;
                }
            };
        let Node {
            handle,
            mut events,
            task,
        } = node;
        log::info!(
            target: "psp-overlay",
            "🧅 overlay node {} at {}",
            hex::encode(identity.node_id()),
            identity.address
        );
        let _ = state.handle.set(handle.clone());
        spawn_inner.spawn("psp-overlay-driver", Some("overlay"), task.run());
        spawn_inner.spawn(
            "psp-overlay-chain-feed",
            Some("overlay"),
            feed_from_chain(client, handle, identity.clone()),
        );
        while let Some(event) = events.recv().await {
            match event {
                NodeEvent::LinkRefused { .. } | NodeEvent::DialFailed { .. } => {
                    log::warn!(target: "psp-overlay", "{event:?}")
                }
                NodeEvent::Relay(RelayEvent::ExtendRefused { target, error }) => {
                    log::warn!(
                        target: "psp-overlay",
                        "refused: extend to {target:?}: {error} ({error:?})"
                    )
                }
                other => log::debug!(target: "psp-overlay", "{other:?}"),
            }
        }
    });
}

/// How often the overlay re-reads the chain (node list, elected sets).
const CHAIN_FEED_INTERVAL: std::time::Duration = std::time::Duration::from_secs(6);

/// Keeps the overlay in step with the chain at the latest finalized block: the DHT routing
/// table holds the registered node identities (the only peers Kademlia may route through), and
/// the directory knows the elected discovery set and this node's flags.
async fn feed_from_chain(
    client: Arc<FullClient>,
    handle: NodeHandle,
    identity: Arc<OverlayIdentity>,
) {
    let mut tick = tokio::time::interval(CHAIN_FEED_INTERVAL);
    let mut last_view = None;
    let mut last_finalized = None;
    loop {
        tick.tick().await;
        // Everything read here is finalized state: nothing to do until it moves.
        let finalized = client.info().finalized_hash;
        if last_finalized == Some(finalized) {
            continue;
        }
        last_finalized = Some(finalized);
        let nodes = registered_nodes(&client);
        let peers = nodes
            .iter()
            .map(|(_, peer, addr)| (*peer, addr.clone()))
            .collect();
        match handle.dht_add_peers(peers).await {
            Ok(0) => {}
            Ok(added) => log::info!(target: "psp-overlay", "dht: {added} registered nodes added"),
            Err(_) => return, // the overlay stopped
        }
        let view = discovery_view(&client, &nodes, &identity);
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
}

/// The elected discovery nodes (with their link addresses) and this node's flags.
fn discovery_view(
    client: &FullClient,
    nodes: &[([u8; 32], PeerId, Multiaddr)],
    identity: &OverlayIdentity,
) -> DiscoveryView {
    use psp_net::directory::flags;
    use psp_primitives::staking::Role;
    let me = identity.node_id();
    let elected = |role| crate::chain_checks::elected_now(client, role).unwrap_or_default();
    let discovery = elected(Role::Discovery);
    let mut own = flags::RELAY | flags::ENTRY;
    if discovery.contains(&me) {
        own |= flags::DISCOVERY;
    }
    if elected(Role::Authority).contains(&me) {
        own |= flags::AUTHORITY;
    }
    if elected(Role::Oracle).contains(&me) {
        own |= flags::ORACLE;
    }
    DiscoveryView {
        set: nodes
            .iter()
            .filter(|(id, _, _)| discovery.contains(id))
            .map(|(id, peer, addr)| (NodeId(*id), *peer, addr.clone()))
            .collect(),
        flags: own,
        addresses: vec![identity.address.clone()],
    }
}

/// Node keys, peer ids and addresses of the active node identities on chain.
fn registered_nodes(client: &FullClient) -> Vec<([u8; 32], PeerId, Multiaddr)> {
    let at = client.info().finalized_hash;
    let api = client.runtime_api();
    let mut nodes = Vec::new();
    let mut after = None;
    loop {
        let page = match api.nodes(at, after, psp_primitives::api::MAX_NODES_PER_PAGE) {
            Ok(page) => page,
            Err(e) => {
                log::warn!(target: "psp-overlay", "node list look-up failed: {e}");
                break;
            }
        };
        let Some(last) = page.last().map(|n| n.key) else {
            break;
        };
        for info in page {
            let address = info
                .node
                .and_then(|n| n.addresses.into_iter().next())
                .and_then(|a| String::from_utf8(a).ok());
            if let Some(Ok((peer, addr))) = address.as_deref().map(parse_node_address) {
                nodes.push((info.key, peer, addr));
            }
        }
        after = Some(last);
    }
    nodes
}
