//! The client side of PSP onion routing: registering relay nodes, choosing hops from the
//! chain, building circuits through `psp_net`'s driver, and echo checks.
//!
//! - [`NodeRpc`]: a relay node's own RPC (`psp_overlayInfo`, `psp_overlayRegistration`), and
//!   [`register_node`], which fetches the node's signed registration and submits it with
//!   [`Chain::register_with_proof`].
//! - [`registered_nodes`]: every active node identity at the chain's latest finalized block
//!   (`psp_nodes`, paged), as [`RelayNode`]s ready to be dialled.
//! - [`select_path`]: N distinct hops, the `--via` ones first (in order), the rest at random.
//! - [`Via`] and [`choose_path`]: `--via` values (node keys, id strings, node URLs) resolved
//!   and completed into a path from the chain's registered nodes.
//! - [`OverlayClient`]: builds circuits ([`OverlayClient::build`] times it, and a refused
//!   EXTEND is traced to the hop that refused and the node it refused), and
//!   [`echo`] pushes bytes through the `echo` service on the last hop and checks every one.
//!
//! Relays extend only to nodes registered at their latest *finalized* block, so a node is
//! usable as a hop once its registration is finalized everywhere; `psp_nodes` reports exactly
//! the finalized view.
//!
//! ```no_run
//! # async fn demo() -> psp_client::Result<()> {
//! use psp_client::{chain::Chain, overlay::{self, CircuitOptions, OverlayClient}};
//!
//! let chain = Chain::connect("ws://127.0.0.1:9944").await?;
//! let nodes = overlay::registered_nodes(&chain).await?;
//! let path = overlay::select_path(&nodes, Vec::new(), 3, &mut rand::thread_rng())?;
//! let client = OverlayClient::new(CircuitOptions::default())?;
//! let built = client.build(&path, Some(&chain)).await?;
//! let report = overlay::echo(&built.circuit, 64 * 1024, CircuitOptions::default().idle_timeout).await?;
//! println!("{} B/s", report.throughput());
//! built.circuit.destroy().await.ok();
//! # Ok(()) }
//! ```

use crate::{
    chain::{ss58, Chain, Progress, TxOutcome},
    error::{Error, Result},
    hex0x, parse_hex, parse_hex_vec, Keypair,
};
use codec::Decode;
use psp_net::{
    cell::DestroyReason,
    circuit::Rate,
    crypto::{NodeId, OnionPublic},
    driver::{
        parse_node_address, Circuit, ClientConfig, ClientHandle, DriverError, NodeDescriptor,
        PeerId,
    },
};
use psp_primitives::{rpc::IdentityView, IdString, IdentityKind, IdentityStatus, Registration};
use rand::{seq::SliceRandom, Rng, RngCore};
use std::time::{Duration, Instant};
use subxt::rpcs::{rpc_params, RpcClient};

/// The overlay service every relay runs that sends back what it receives.
pub const ECHO_SERVICE: &str = "echo";
/// Default network namespace of node identities (as `psp_overlayRegistration` defaults it).
pub const DEFAULT_NODE_NAMESPACE: &str = "peerstream";
/// Default application namespace of relay node identities.
pub const DEFAULT_NODE_APP: &str = "relay";
/// Nodes asked for per `psp_nodes` page (the node's maximum).
const NODES_PAGE: u32 = 256;

/// `psp_overlayInfo`: a node's overlay identity and addresses (the node's own JSON type).
pub use psp_primitives::rpc::OverlayView as OverlayInfo;

/// A node as a hop, from what it says about itself in `psp_overlayInfo` (not checked against
/// the chain: relays refuse to extend to it unless it is registered).
pub fn overlay_descriptor(info: &OverlayInfo) -> Result<NodeDescriptor> {
    let id = parse_hex::<32>(&info.node_id, "psp_overlayInfo nodeId")?;
    let onion = parse_hex::<32>(&info.onion_key, "psp_overlayInfo onionKey")?;
    let (peer_id, address) =
        parse_node_address(&info.address).map_err(|e| Error::BadNodeRecord {
            node: hex0x(&id),
            reason: e.to_string(),
        })?;
    if peer_id.to_string() != info.peer_id {
        return Err(Error::BadNodeRecord {
            node: hex0x(&id),
            reason: format!(
                "its address names peer id {peer_id} but its peerId is {}",
                info.peer_id
            ),
        });
    }
    Ok(NodeDescriptor {
        id: NodeId(id),
        onion_key: OnionPublic(onion),
        peer_id,
        address,
    })
}

/// A registration signed by a node's identity key (`psp_overlayRegistration`), decoded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignedRegistration {
    /// The registration, as the runtime decodes it.
    pub registration: Registration,
    /// The identity key's proof of possession for the owner it was requested for.
    pub proof: [u8; 64],
}

#[derive(serde::Deserialize)]
struct SignedRegistrationJson {
    registration: String,
    proof: String,
}

/// The RPC of one `psp-node`, for its overlay methods.
#[derive(Clone)]
pub struct NodeRpc {
    url: String,
    rpc: RpcClient,
}

impl std::fmt::Debug for NodeRpc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodeRpc")
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

impl NodeRpc {
    /// Connects to a node's WebSocket RPC.
    pub async fn connect(url: &str) -> Result<Self> {
        let rpc = RpcClient::from_insecure_url(url)
            .await
            .map_err(|e| Error::Connect {
                url: url.to_string(),
                reason: e.to_string(),
            })?;
        Ok(Self {
            url: url.to_string(),
            rpc,
        })
    }

    /// The URL this connection was made to.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// A JSON-RPC request to this node; a failure names `method` and the node.
    pub(crate) async fn request<R: serde::de::DeserializeOwned>(
        &self,
        method: &'static str,
        params: subxt::rpcs::client::RpcParams,
    ) -> Result<R> {
        self.rpc
            .request(method, params)
            .await
            .map_err(|e| Error::Rpc {
                method,
                reason: format!("{e} (node {})", self.url),
            })
    }

    /// `psp_overlayInfo`: the node's overlay identity (fails if it runs `--no-overlay`).
    pub async fn overlay_info(&self) -> Result<OverlayInfo> {
        self.request("psp_overlayInfo", rpc_params![]).await
    }

    /// The node's genesis hash (`chain_getBlockHash(0)`), to check it is on the right chain.
    pub async fn genesis_hash(&self) -> Result<[u8; 32]> {
        let hash: String = self
            .request("chain_getBlockHash", rpc_params![0u32])
            .await?;
        parse_hex::<32>(&hash, "genesis hash")
    }

    /// `psp_overlayRegistration`: the node's registration signed for `owner` to submit.
    pub async fn overlay_registration(
        &self,
        owner: &[u8; 32],
        namespace: &str,
        app: &str,
    ) -> Result<SignedRegistration> {
        let raw: SignedRegistrationJson = self
            .request(
                "psp_overlayRegistration",
                rpc_params![ss58(owner), namespace, app],
            )
            .await?;
        let bytes = parse_hex_vec(&raw.registration, "psp_overlayRegistration registration")?;
        let registration =
            Registration::decode(&mut &bytes[..]).map_err(|e| Error::InvalidInput {
                what: "psp_overlayRegistration registration",
                reason: format!("not a SCALE Registration: {e}"),
            })?;
        let proof = parse_hex::<64>(&raw.proof, "psp_overlayRegistration proof")?;
        Ok(SignedRegistration {
            registration,
            proof,
        })
    }
}

/// A relay node registered by [`register_node`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RegisteredNode {
    /// Its id string, e.g. `peerstream.node.relay.<key58>`.
    pub id: String,
    /// Its node id (sr25519 key).
    pub key: [u8; 32],
    /// The address it registered.
    pub address: String,
    /// The finalized registration transaction.
    pub outcome: TxOutcome,
}

/// Registers the overlay identity of the node at `node` on `chain`, paid (fee and deposit) and
/// owned by `payer`; returns once the registration is finalized.
///
/// The node signs the registration for the payer's account on its own chain; a node on
/// another chain (different genesis) is refused before anything is paid.
pub async fn register_node(
    chain: &Chain,
    node: &NodeRpc,
    payer: &Keypair,
    namespace: &str,
    app: &str,
    progress: impl FnMut(Progress) + Send,
) -> Result<RegisteredNode> {
    // Fail on bad namespaces here rather than after paying a fee.
    for label in [namespace, app] {
        if !psp_primitives::id_string::is_valid_label(label.as_bytes()) {
            return Err(Error::InvalidInput {
                what: "--namespace / --app",
                reason: format!(
                    "{label:?}: namespaces use only a-z, 0-9 and '-', at most 32 characters, \
                     and do not start with '-'"
                ),
            });
        }
    }
    let node_genesis = node.genesis_hash().await?;
    if node_genesis != chain.genesis_hash() {
        return Err(Error::InvalidInput {
            what: "--node-url",
            reason: format!(
                "the node at {} is on chain {} but --url {} is chain {}; point both at the same \
                 network",
                node.url(),
                hex0x(&node_genesis),
                chain.url(),
                hex0x(&chain.genesis_hash())
            ),
        });
    }
    let info = node.overlay_info().await?;
    let owner = payer.public_key().0;
    let signed = node.overlay_registration(&owner, namespace, app).await?;
    let reg = &signed.registration;
    let expected_key = parse_hex::<32>(&info.node_id, "psp_overlayInfo nodeId")?;
    if reg.kind != IdentityKind::Node || reg.key != expected_key || reg.node.is_none() {
        return Err(Error::InvalidInput {
            what: "psp_overlayRegistration registration",
            reason: format!(
                "the node returned a registration for {:?} {} that is not its node identity {}",
                reg.kind,
                hex0x(&reg.key),
                info.node_id
            ),
        });
    }
    let id = IdString::new(namespace, IdentityKind::Node, app, reg.key)
        .map_err(|e| Error::InvalidInput {
            what: "--namespace / --app",
            reason: format!("{e:?}"),
        })?
        .to_string();
    let outcome = chain
        .register_with_proof(payer, signed.registration.clone(), signed.proof, progress)
        .await?;
    Ok(RegisteredNode {
        id,
        key: expected_key,
        address: info.address,
        outcome,
    })
}

/// A registered node as a hop: its descriptor and its id string.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RelayNode {
    /// Its id string.
    pub id: String,
    /// Everything needed to dial it and run the handshake.
    pub descriptor: NodeDescriptor,
}

impl RelayNode {
    /// Reads an identity as the chain reports it; fails unless it is an active node identity
    /// with a usable address (`<multiaddr>/p2p/<peer id>`, matching its peer id).
    pub fn from_view(view: &IdentityView) -> Result<Self> {
        let bad = |reason: String| Error::BadNodeRecord {
            node: view.id.clone(),
            reason,
        };
        if view.kind != IdentityKind::Node {
            return Err(bad(format!("kind is {:?}, not node", view.kind)));
        }
        if view.status != IdentityStatus::Active {
            return Err(bad("revoked".into()));
        }
        let key = parse_hex::<32>(&view.key, "node key")?;
        let onion = parse_hex::<32>(&view.x25519, "node x25519 key")?;
        let details = view
            .node
            .as_ref()
            .ok_or_else(|| bad("no node details".into()))?;
        let first = details
            .addresses
            .first()
            .ok_or_else(|| bad("no address".into()))?;
        let address_bytes = parse_hex_vec(first, "node address")?;
        let address = String::from_utf8(address_bytes)
            .map_err(|_| bad("its first address is not UTF-8 text".into()))?;
        let (peer_id, multiaddr) = parse_node_address(&address).map_err(|e| bad(e.to_string()))?;
        let peer_bytes = parse_hex_vec(&details.peer_id, "node peer id")?;
        let registered_peer = PeerId::from_bytes(&peer_bytes)
            .map_err(|e| bad(format!("peer id bytes do not decode: {e}")))?;
        if registered_peer != peer_id {
            return Err(bad(format!(
                "address names peer id {peer_id} but the registered peer id is {registered_peer}"
            )));
        }
        Ok(Self {
            id: view.id.clone(),
            descriptor: NodeDescriptor {
                id: NodeId(key),
                onion_key: OnionPublic(onion),
                peer_id,
                address: multiaddr,
            },
        })
    }

    /// The node id (sr25519 key).
    pub fn key(&self) -> [u8; 32] {
        self.descriptor.id.0
    }
}

/// `psp_nodes`, every page: the active node identities at the latest finalized block.
pub async fn node_views(chain: &Chain) -> Result<Vec<IdentityView>> {
    let mut out: Vec<IdentityView> = Vec::new();
    loop {
        let after = out.last().map(|v| v.key.clone());
        let page: Vec<IdentityView> = chain
            .rpc()
            .request("psp_nodes", rpc_params![after, NODES_PAGE])
            .await
            .map_err(|e| Error::Rpc {
                method: "psp_nodes",
                reason: e.to_string(),
            })?;
        let full = page.len() >= NODES_PAGE as usize;
        out.extend(page);
        if !full {
            return Ok(out);
        }
    }
}

/// The registered relays usable as hops. Records that cannot be used (bad address, ...) are
/// skipped and reported through `skipped`; fails with [`Error::NoRegisteredNodes`] if none
/// is left.
pub async fn registered_nodes_with(
    chain: &Chain,
    mut skipped: impl FnMut(&Error),
) -> Result<Vec<RelayNode>> {
    let views = node_views(chain).await?;
    let mut nodes = Vec::with_capacity(views.len());
    for view in &views {
        match RelayNode::from_view(view) {
            Ok(n) => nodes.push(n),
            Err(e) => skipped(&e),
        }
    }
    if nodes.is_empty() {
        return Err(Error::NoRegisteredNodes {
            url: chain.url().to_string(),
            unusable: views.len(),
        });
    }
    Ok(nodes)
}

/// [`registered_nodes_with`], silently skipping unusable records.
pub async fn registered_nodes(chain: &Chain) -> Result<Vec<RelayNode>> {
    registered_nodes_with(chain, |_| {}).await
}

/// A hop the user asked for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Hop {
    /// A registered node, by its node key (an id string resolves to its key).
    Registered([u8; 32]),
    /// A node described directly (e.g. from its own `psp_overlayInfo`), registered or not.
    Described(RelayNode),
}

impl Hop {
    /// Parses `--via`: `0x` + 64 hex digits (node key) or an id string. A `ws://` / `wss://`
    /// URL is not handled here (see [`Hop::from_node_url`]).
    pub fn parse(text: &str) -> Result<Self> {
        let text = text.trim();
        let looks_hex = text.starts_with("0x")
            || (text.len() == 64 && text.bytes().all(|b| b.is_ascii_hexdigit()));
        if looks_hex {
            return Ok(Hop::Registered(parse_hex::<32>(text, "--via")?));
        }
        let id = IdString::parse(text).map_err(|e| Error::InvalidInput {
            what: "--via",
            reason: format!(
                "{text:?} is neither a node key (0x + 64 hex digits), an id string \
                 (peerstream.node.relay.<key58>) nor a ws:// URL ({e:?})"
            ),
        })?;
        if !id.checksum_ok() {
            return Err(Error::InvalidInput {
                what: "--via",
                reason: format!("{text:?}: the id string's check bytes do not match (typo?)"),
            });
        }
        if id.kind != IdentityKind::Node {
            return Err(Error::InvalidInput {
                what: "--via",
                reason: format!("{text:?} is a {:?} identity, not a node", id.kind),
            });
        }
        Ok(Hop::Registered(id.key))
    }

    /// A hop described by the node at `url` itself (`psp_overlayInfo`).
    pub async fn from_node_url(url: &str) -> Result<Self> {
        let info = NodeRpc::connect(url).await?.overlay_info().await?;
        let descriptor = overlay_descriptor(&info)?;
        Ok(Hop::Described(RelayNode {
            id: format!("{} (as {url} describes itself)", info.node_id),
            descriptor,
        }))
    }

    fn key(&self) -> [u8; 32] {
        match self {
            Hop::Registered(k) => *k,
            Hop::Described(n) => n.key(),
        }
    }
}

/// Chooses `hops` distinct nodes: the `via` hops first, in order, then random registered
/// nodes not already on the path.
pub fn select_path(
    registered: &[RelayNode],
    via: Vec<Hop>,
    hops: usize,
    rng: &mut impl Rng,
) -> Result<Vec<RelayNode>> {
    if hops == 0 || hops > psp_net::circuit::client::MAX_HOPS {
        return Err(Error::InvalidInput {
            what: "--hops",
            reason: format!(
                "{hops} hops asked; a circuit has 1 to {}",
                psp_net::circuit::client::MAX_HOPS
            ),
        });
    }
    if via.len() > hops {
        return Err(Error::InvalidInput {
            what: "--via",
            reason: format!(
                "{} hops named with --via but --hops is {hops}; raise --hops",
                via.len()
            ),
        });
    }
    let mut path: Vec<RelayNode> = Vec::with_capacity(hops);
    for hop in via {
        let key = hop.key();
        if path.iter().any(|n| n.key() == key) {
            return Err(Error::InvalidInput {
                what: "--via",
                reason: format!("node {} is named twice; hops must be distinct", hex0x(&key)),
            });
        }
        let node = match hop {
            Hop::Described(n) => n,
            Hop::Registered(key) => registered
                .iter()
                .find(|n| n.key() == key)
                .cloned()
                .ok_or_else(|| Error::UnknownHop {
                    hop: hex0x(&key),
                    registered: registered.len(),
                })?,
        };
        path.push(node);
    }
    let mut rest: Vec<&RelayNode> = registered
        .iter()
        .filter(|n| !path.iter().any(|p| p.key() == n.key()))
        .collect();
    let missing = hops - path.len();
    if rest.len() < missing {
        return Err(Error::NotEnoughNodes {
            hops,
            registered: registered.len(),
            named: path.len(),
        });
    }
    rest.shuffle(rng);
    path.extend(rest.into_iter().take(missing).cloned());
    Ok(path)
}

/// A `--via` value: a hop to parse now, or a node to ask for its own description later.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Via {
    /// A node key or id string ([`Hop::parse`]).
    Hop(Hop),
    /// A node's RPC URL (`ws://` / `wss://`), resolved with [`Hop::from_node_url`].
    NodeUrl(String),
}

impl Via {
    /// Parses a `--via` value without touching the network: a `ws://` / `wss://` URL is kept
    /// for later, anything else must be a node key or id string.
    pub fn parse(text: &str) -> Result<Self> {
        if text.starts_with("ws://") || text.starts_with("wss://") {
            Ok(Via::NodeUrl(text.to_string()))
        } else {
            Hop::parse(text).map(Via::Hop)
        }
    }

    /// The hop: node URLs are asked to describe themselves.
    pub async fn resolve(self) -> Result<Hop> {
        match self {
            Via::Hop(hop) => Ok(hop),
            Via::NodeUrl(url) => Hop::from_node_url(&url).await,
        }
    }
}

/// Resolves the `via` hops (in order) and completes the path to `hops` nodes with random
/// registered nodes from `chain` ([`select_path`]). The chain's node list is read only when
/// needed (a registered hop was named, or hops are missing); unusable records are reported
/// through `skipped`.
pub async fn choose_path(
    chain: &Chain,
    via: Vec<Via>,
    hops: usize,
    skipped: impl FnMut(&Error),
) -> Result<Vec<RelayNode>> {
    let mut resolved = Vec::with_capacity(via.len());
    for v in via {
        resolved.push(v.resolve().await?);
    }
    let needs_chain_nodes =
        resolved.iter().any(|h| matches!(h, Hop::Registered(_))) || resolved.len() < hops;
    let registered = if needs_chain_nodes {
        registered_nodes_with(chain, skipped).await?
    } else {
        Vec::new()
    };
    select_path(&registered, resolved, hops, &mut rand::thread_rng())
}

/// A node identity key: `key` as hex (errors name `what`), else the overlay identity the node
/// at `url` reports (`psp_overlayInfo`), else `None`.
pub async fn node_key(
    key: Option<&str>,
    url: Option<&str>,
    what: &'static str,
) -> Result<Option<[u8; 32]>> {
    match (key, url) {
        (Some(key), _) => parse_hex::<32>(key, what).map(Some),
        (None, Some(url)) => {
            let info = NodeRpc::connect(url).await?.overlay_info().await?;
            parse_hex::<32>(&info.node_id, "psp_overlayInfo node id").map(Some)
        }
        (None, None) => Ok(None),
    }
}

/// Client settings of circuits and echo checks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CircuitOptions {
    /// What the client sends per circuit. It must not exceed the relays' circuit rate (10
    /// cells/s, burst 100 by default, `--overlay-circuit-rate` / `-burst` on psp-node):
    /// relays have no flow control and destroy a circuit whose queue overflows.
    pub send_rate: Rate,
    /// Time to build a whole circuit.
    pub build_timeout: Duration,
    /// Longest wait for the next echoed bytes before giving up.
    pub idle_timeout: Duration,
}

impl Default for CircuitOptions {
    fn default() -> Self {
        Self {
            send_rate: psp_net::circuit::Config::default().circuit_rate,
            build_timeout: Duration::from_secs(30),
            idle_timeout: Duration::from_secs(30),
        }
    }
}

impl CircuitOptions {
    /// Options sending at most `cells_per_sec` cells per second in bursts of at most `burst`,
    /// with `timeout` for the build and for each echoed reply. Refuses a zero rate or burst
    /// (errors name `--rate / --burst`) and a timeout under a second (`--timeout`).
    pub fn with_limits(cells_per_sec: u32, burst: u32, timeout: Duration) -> Result<Self> {
        if cells_per_sec == 0 || burst == 0 {
            return Err(Error::InvalidInput {
                what: "--rate / --burst",
                reason: "must be at least 1".into(),
            });
        }
        if timeout < Duration::from_secs(1) {
            return Err(Error::InvalidInput {
                what: "--timeout",
                reason: "must be at least 1 second".into(),
            });
        }
        Ok(Self {
            send_rate: Rate {
                cells_per_sec,
                burst,
            },
            build_timeout: timeout,
            idle_timeout: timeout,
        })
    }
}

/// A built circuit, its path and how long building it took.
#[derive(Debug)]
pub struct BuiltCircuit {
    /// The circuit; destroy it with [`Circuit::destroy`] when done.
    pub circuit: Circuit,
    /// The hops, entry first.
    pub path: Vec<RelayNode>,
    /// From the build request to the last hop's EXTENDED.
    pub build_time: Duration,
}

/// An onion-routing client (a `psp_net` driver task on the current tokio runtime).
#[derive(Debug)]
pub struct OverlayClient {
    handle: ClientHandle,
    options: CircuitOptions,
}

impl OverlayClient {
    /// Starts a client with a fresh link key; call from inside a tokio runtime.
    pub fn new(options: CircuitOptions) -> Result<Self> {
        let config = ClientConfig {
            send_rate: options.send_rate,
            build_timeout: options.build_timeout,
            stream_buffer: 4_096,
            ..ClientConfig::default()
        };
        let (handle, task) = ClientHandle::new(config).map_err(|source| Error::Circuit {
            what: "starting the onion client".into(),
            source,
        })?;
        tokio::spawn(task.run());
        Ok(Self { handle, options })
    }

    /// The options this client was made with.
    pub fn options(&self) -> &CircuitOptions {
        &self.options
    }

    /// Builds a circuit through `path` (entry first) and times it.
    ///
    /// If a relay refuses an EXTEND, the hop that refused and the node it refused are found
    /// (by building the shorter prefixes of the path) and named in
    /// [`Error::ExtendRefused`]; with `chain`, the error also says why, from the chain's view
    /// of the refused node.
    ///
    /// A build that fails because a link on the path closed under it (a relay's idle link
    /// timing out just as the EXTEND crossed it) is tried once more: the relays dial again.
    pub async fn build(&self, path: &[RelayNode], chain: Option<&Chain>) -> Result<BuiltCircuit> {
        let descriptors: Vec<NodeDescriptor> = path.iter().map(|n| n.descriptor.clone()).collect();
        let start = Instant::now();
        let first = match self.build_raw(&descriptors).await {
            Err(e) if is_link_closed(&e) => self.build_raw(&descriptors).await,
            other => other,
        };
        match first {
            Ok(circuit) => Ok(BuiltCircuit {
                circuit,
                path: path.to_vec(),
                build_time: start.elapsed(),
            }),
            Err(source @ DriverError::CircuitClosed(_)) if is_extend_refused(&source) => {
                Err(self.explain_refusal(path, chain, source).await)
            }
            Err(source) => Err(self.build_error(path, source)),
        }
    }

    async fn build_raw(&self, path: &[NodeDescriptor]) -> Result<Circuit, DriverError> {
        // The driver has its own build timeout; this one also covers a stuck task.
        let limit = self.options.build_timeout + Duration::from_secs(5);
        match tokio::time::timeout(limit, self.handle.build_circuit(path)).await {
            Ok(r) => r,
            Err(_) => Err(DriverError::Timeout {
                what: "circuit build",
                after: limit,
            }),
        }
    }

    fn build_error(&self, path: &[RelayNode], source: DriverError) -> Error {
        match source {
            DriverError::Timeout { after, .. } => Error::CircuitTimeout {
                what: format!("building the {}-hop circuit {}", path.len(), describe(path)),
                secs: after.as_secs(),
            },
            source => Error::Circuit {
                what: format!("building the {}-hop circuit {}", path.len(), describe(path)),
                source,
            },
        }
    }

    /// Finds the first prefix of `path` whose build is refused: its last node is the target
    /// the hop before it refused.
    async fn explain_refusal(
        &self,
        path: &[RelayNode],
        chain: Option<&Chain>,
        source: DriverError,
    ) -> Error {
        let mut at = None;
        for len in 2..=path.len() {
            let prefix: Vec<NodeDescriptor> =
                path[..len].iter().map(|n| n.descriptor.clone()).collect();
            match self.build_raw(&prefix).await {
                Ok(c) => {
                    let _ = c.destroy().await;
                }
                Err(e) if is_extend_refused(&e) => {
                    at = Some(len - 1);
                    break;
                }
                Err(_) => break,
            }
        }
        let Some(target) = at else {
            // Not reproducible hop by hop (the chain changed meanwhile?): report it as it came.
            return self.build_error(path, source);
        };
        let reason = match chain {
            Some(chain) => refusal_reason(chain, &path[target]).await,
            None => "the relay only extends to nodes registered (and active, with this onion \
                     key) at its latest finalized block"
                .into(),
        };
        Error::ExtendRefused {
            hop: target,
            by: path[target - 1].id.clone(),
            target: path[target].id.clone(),
            reason,
        }
    }

    /// Stops the client: its circuits and links close.
    pub async fn shutdown(&self) {
        self.handle.shutdown().await;
    }
}

fn is_link_closed(e: &DriverError) -> bool {
    matches!(e, DriverError::CircuitClosed(c) if c.reason == DestroyReason::LinkClosed)
}

fn is_extend_refused(e: &DriverError) -> bool {
    matches!(e, DriverError::CircuitClosed(c) if c.reason == DestroyReason::ExtendRefused)
}

/// Why a relay would refuse to extend to `node`, from the chain's view of it.
async fn refusal_reason(chain: &Chain, node: &RelayNode) -> String {
    let key = node.key();
    match chain.identity_by_key(&key, None).await {
        Ok(None) => "it is not registered on chain; register it with `psp identity \
                     register-node --node-url <its RPC>`"
            .into(),
        Ok(Some(view)) if view.status != IdentityStatus::Active => {
            "its identity was revoked on chain".into()
        }
        Ok(Some(view)) if view.kind != IdentityKind::Node => {
            format!(
                "its key is registered as a {:?} identity, not a node",
                view.kind
            )
        }
        Ok(Some(view)) if view.x25519 != hex0x(&node.descriptor.onion_key.0) => format!(
            "its onion key {} differs from the one on chain {}",
            hex0x(&node.descriptor.onion_key.0),
            view.x25519
        ),
        Ok(Some(_)) => "it is registered at the best block but perhaps not yet finalized at the \
                        refusing relay; wait for finality and retry"
            .into(),
        Err(e) => format!("the relay's chain check failed it (looking it up here failed too: {e})"),
    }
}

/// `1:0xab..` style one-line path, for messages.
pub fn describe(path: &[RelayNode]) -> String {
    let hops: Vec<String> = path.iter().map(|n| hex0x(&n.key())).collect();
    format!("[{}]", hops.join(" -> "))
}

/// What an echo check measured.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EchoReport {
    /// Bytes sent and received back (every one checked).
    pub bytes: usize,
    /// DATA cells sent.
    pub cells: usize,
    /// Opening the stream to the echo service (BEGIN → CONNECTED).
    pub open_time: Duration,
    /// From the first byte sent to the last byte received.
    pub elapsed: Duration,
}

impl EchoReport {
    /// Bytes per second each way.
    pub fn throughput(&self) -> f64 {
        self.bytes as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

/// Opens a stream to the `echo` service at the circuit's last hop, sends `bytes` random bytes
/// (paced at the client's send rate) and checks that exactly those bytes come back, in order.
/// Gives up if nothing arrives for `idle_timeout`.
pub async fn echo(circuit: &Circuit, bytes: usize, idle_timeout: Duration) -> Result<EchoReport> {
    let opened = Instant::now();
    let stream = tokio::time::timeout(idle_timeout, circuit.open_stream(ECHO_SERVICE))
        .await
        .map_err(|_| Error::CircuitTimeout {
            what: format!("opening a stream to the {ECHO_SERVICE} service"),
            secs: idle_timeout.as_secs(),
        })?
        .map_err(|source| Error::Circuit {
            what: format!("opening a stream to the {ECHO_SERVICE} service"),
            source,
        })?;
    let open_time = opened.elapsed();
    let mut data = vec![0u8; bytes];
    rand::thread_rng().fill_bytes(&mut data);
    let cells = bytes.div_ceil(circuit.max_data().max(1));
    let (writer, mut reader) = stream.into_split();
    let start = Instant::now();
    let to_send = data.clone();
    let sender = tokio::spawn(async move { writer.send(&to_send).await });
    let mut got = 0usize;
    let outcome = loop {
        if got == bytes {
            break Ok(());
        }
        match tokio::time::timeout(idle_timeout, reader.recv()).await {
            Err(_) => {
                break Err(Error::CircuitTimeout {
                    what: format!(
                        "waiting for echoed bytes ({got} of {bytes} back; is --rate above \
                         the relays' circuit rate?)"
                    ),
                    secs: idle_timeout.as_secs(),
                })
            }
            Ok(None) => {
                let why = circuit
                    .close_reason()
                    .map(|c| c.to_string())
                    .unwrap_or_else(|| "the stream ended".into());
                break Err(Error::EchoIncomplete {
                    received: got,
                    expected: bytes,
                    reason: why,
                });
            }
            Ok(Some(chunk)) => {
                let end = got + chunk.len();
                if end > bytes {
                    break Err(Error::EchoMismatch {
                        offset: bytes,
                        detail: format!("{} bytes more than were sent came back", end - bytes),
                    });
                }
                if let Some(i) = chunk.iter().zip(&data[got..end]).position(|(a, b)| a != b) {
                    break Err(Error::EchoMismatch {
                        offset: got + i,
                        detail: format!("sent 0x{:02x}, got 0x{:02x}", data[got + i], chunk[i]),
                    });
                }
                got = end;
            }
        }
    };
    let elapsed = start.elapsed();
    if outcome.is_err() {
        sender.abort();
    }
    outcome?;
    match sender.await {
        Ok(Ok(())) => {}
        Ok(Err(source)) => {
            return Err(Error::Circuit {
                what: "sending to the echo service".into(),
                source,
            })
        }
        Err(e) => {
            return Err(Error::EchoIncomplete {
                received: got,
                expected: bytes,
                reason: format!("the sending task failed: {e}"),
            })
        }
    }
    Ok(EchoReport {
        bytes,
        cells,
        open_time,
        elapsed,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use psp_net::driver::{node_address, Keypair, Multiaddr};
    use psp_primitives::rpc::NodeView;
    use rand::SeedableRng;

    fn relay(i: u8) -> RelayNode {
        let peer = Keypair::ed25519_from_bytes([i; 32])
            .expect("ed25519 key")
            .public()
            .to_peer_id();
        let address: Multiaddr = format!("/ip4/127.0.0.1/tcp/{}", 4000 + u16::from(i))
            .parse()
            .expect("multiaddr");
        RelayNode {
            id: format!("node-{i}"),
            descriptor: NodeDescriptor {
                id: NodeId([i; 32]),
                onion_key: OnionPublic([i ^ 0xff; 32]),
                peer_id: peer,
                address,
            },
        }
    }

    fn view_of(n: &RelayNode) -> IdentityView {
        let key = n.key();
        IdentityView {
            id: IdString::new("peerstream", IdentityKind::Node, "relay", key)
                .expect("id")
                .to_string(),
            owner: "5Grw".into(),
            kind: IdentityKind::Node,
            namespace: "peerstream".into(),
            app_namespace: "relay".into(),
            key: hex0x(&key),
            x25519: hex0x(&n.descriptor.onion_key.0),
            node: Some(NodeView {
                peer_id: hex0x(&n.descriptor.peer_id.to_bytes()),
                addresses: vec![hex0x(
                    node_address(&n.descriptor.address, n.descriptor.peer_id).as_bytes(),
                )],
            }),
            deposit: "1".into(),
            registered_at: 3,
            rotations: 0,
            status: IdentityStatus::Active,
        }
    }

    #[test]
    fn chain_views_become_descriptors_and_bad_ones_are_explained() {
        let n = relay(1);
        let view = view_of(&n);
        let got = RelayNode::from_view(&view).expect("usable");
        assert_eq!(got.descriptor, n.descriptor);
        assert_eq!(got.id, view.id);

        let mut other_peer = view.clone();
        other_peer.node = Some(NodeView {
            peer_id: hex0x(&relay(2).descriptor.peer_id.to_bytes()),
            ..view.node.clone().expect("node")
        });
        let err = RelayNode::from_view(&other_peer).expect_err("peer mismatch");
        assert!(err.to_string().contains("registered peer id"), "{err}");

        let mut no_p2p = view.clone();
        no_p2p.node = Some(NodeView {
            addresses: vec![hex0x(b"/ip4/127.0.0.1/tcp/1")],
            ..view.node.clone().expect("node")
        });
        let err = RelayNode::from_view(&no_p2p).expect_err("no /p2p/");
        assert!(err.to_string().contains("/p2p/"), "{err}");

        let mut client = view.clone();
        client.kind = IdentityKind::Client;
        assert!(RelayNode::from_view(&client).is_err());
        let mut revoked = view;
        revoked.status = IdentityStatus::Revoked {
            at: 9,
            forced: false,
        };
        assert!(RelayNode::from_view(&revoked).is_err());
    }

    #[test]
    fn overlay_info_becomes_a_descriptor() {
        let n = relay(3);
        let info = OverlayInfo {
            node_id: hex0x(&n.key()),
            onion_key: hex0x(&n.descriptor.onion_key.0),
            peer_id: n.descriptor.peer_id.to_string(),
            address: node_address(&n.descriptor.address, n.descriptor.peer_id),
            listen_addrs: vec![],
        };
        assert_eq!(overlay_descriptor(&info).expect("descriptor"), n.descriptor);
        let wrong = OverlayInfo {
            peer_id: relay(4).descriptor.peer_id.to_string(),
            ..info
        };
        assert!(overlay_descriptor(&wrong).is_err());
    }

    #[test]
    fn paths_are_distinct_honour_via_and_explain_shortfalls() {
        let nodes: Vec<RelayNode> = (1..=4).map(relay).collect();
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        for _ in 0..20 {
            let p = select_path(&nodes, vec![], 3, &mut rng).expect("path");
            assert_eq!(p.len(), 3);
            let mut keys: Vec<_> = p.iter().map(RelayNode::key).collect();
            keys.sort();
            keys.dedup();
            assert_eq!(keys.len(), 3, "hops must be distinct");
        }
        let via = vec![Hop::Registered([4; 32]), Hop::Described(relay(9))];
        let p = select_path(&nodes, via, 3, &mut rng).expect("path");
        assert_eq!(p[0].key(), [4; 32]);
        assert_eq!(p[1].key(), [9; 32]);
        assert_ne!(p[2].key(), [4; 32]);

        let err = select_path(&nodes, vec![], 5, &mut rng).expect_err("too few");
        assert!(
            matches!(
                err,
                Error::NotEnoughNodes {
                    hops: 5,
                    registered: 4,
                    ..
                }
            ),
            "{err}"
        );
        let err =
            select_path(&nodes, vec![Hop::Registered([7; 32])], 3, &mut rng).expect_err("unknown");
        assert!(err.to_string().contains(&hex0x(&[7; 32])), "{err}");
        let err = select_path(
            &nodes,
            vec![Hop::Registered([1; 32]), Hop::Registered([1; 32])],
            3,
            &mut rng,
        )
        .expect_err("duplicate");
        assert!(err.to_string().contains("twice"), "{err}");
        assert!(select_path(&nodes, vec![], 0, &mut rng).is_err());
        assert!(select_path(&nodes, vec![], 9, &mut rng).is_err());
    }

    #[test]
    fn via_accepts_keys_and_node_id_strings_only() {
        let key = [5u8; 32];
        assert_eq!(Hop::parse(&hex0x(&key)).expect("key"), Hop::Registered(key));
        assert_eq!(
            Hop::parse(&hex::encode(key)).expect("bare key"),
            Hop::Registered(key)
        );
        let id = IdString::new("peerstream", IdentityKind::Node, "relay", key)
            .expect("id")
            .to_string();
        assert_eq!(Hop::parse(&id).expect("id"), Hop::Registered(key));
        let client = IdString::new("peerstream", IdentityKind::Client, "account", key)
            .expect("id")
            .to_string();
        assert!(Hop::parse(&client).is_err());
        assert!(Hop::parse("alice").is_err());
        assert!(Hop::parse("0x1234").is_err());
    }

    #[test]
    fn via_keeps_node_urls_for_later_and_parses_the_rest_now() {
        assert_eq!(
            Via::parse("ws://127.0.0.1:9944").expect("url"),
            Via::NodeUrl("ws://127.0.0.1:9944".into())
        );
        assert_eq!(
            Via::parse("wss://relay.example").expect("url"),
            Via::NodeUrl("wss://relay.example".into())
        );
        let key = [6u8; 32];
        assert_eq!(
            Via::parse(&hex0x(&key)).expect("key"),
            Via::Hop(Hop::Registered(key))
        );
        let err = Via::parse("alice").expect_err("not a hop");
        assert!(err.to_string().starts_with("invalid --via"), "{err}");
    }

    #[test]
    fn circuit_limits_refuse_zero_rate_burst_and_timeout() {
        let ok = CircuitOptions::with_limits(10, 100, Duration::from_secs(30)).expect("valid");
        assert_eq!(ok.send_rate.cells_per_sec, 10);
        assert_eq!(ok.send_rate.burst, 100);
        assert_eq!(ok.build_timeout, Duration::from_secs(30));
        assert_eq!(ok.idle_timeout, Duration::from_secs(30));
        let rate = CircuitOptions::with_limits(0, 100, Duration::from_secs(30));
        assert!(rate.expect_err("rate").to_string().contains("--rate"));
        let burst = CircuitOptions::with_limits(10, 0, Duration::from_secs(30));
        assert!(burst.expect_err("burst").to_string().contains("--burst"));
        let timeout = CircuitOptions::with_limits(10, 100, Duration::ZERO);
        assert!(timeout
            .expect_err("timeout")
            .to_string()
            .contains("--timeout"));
    }
}
