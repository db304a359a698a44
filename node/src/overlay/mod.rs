//! The PSP overlay inside `psp-node`: starts a `psp_net` node beside the chain and checks
//! every node, record, certificate and directory against this node's chain state.
//!
//! - [`params`]: the command-line options;
//! - [`identity`]: the overlay identity and the registration operators submit (fetched with
//!   `psp identity register-node` from the `psp_overlayRegistration` RPC);
//! - [`feed`]: the task that keeps the overlay in step with the chain;
//! - [`observe`]: the test-only record of what this node learns (`--overlay-observe-file`);
//! - [`metrics`]: the `psp_overlay_*` metrics in the node's Prometheus registry;
//! - [`streams`]: subscriptions and receipt keys for the oracle and landing services, and
//!   this node's own receipt keys while it is an elected oracle;
//! - [`usage`]: bandwidth rewards: the chain facts the media service meters by, and the
//!   oracle's settlement of its collected usage on chain;
//! - [`status`]: the operator's read-only status page (`--status-port`);
//! - [`media`]: the media service (WHIP/WHEP signalling and WebRTC on `--media-port`): a
//!   landing node's producers publish into it and it fans their frames out to the streams'
//!   distribution nodes, whose consumers watch from it;
//! - this module: [`start`], which wires them to the psp-net driver, and the state the RPC
//!   reads.
//!
//! Imports flow one way: `service` → `overlay` → `chain_checks` → `client`; the RPC reads
//! [`OverlayState`] and never starts anything.

mod feed;
mod identity;
pub mod media;
mod metrics;
pub mod observe;
mod params;
pub mod slashing;
pub mod status;
mod streams;
pub mod usage;

pub use identity::OverlayIdentity;
pub use metrics::Metrics;
pub use observe::Observer;
pub use params::OverlayParams;

use crate::chain_checks::ChainChecks;
use crate::client::FullClient;
use psp_net::{
    cert::CertificateAuthority,
    circuit::{Peer, RelayEvent},
    crypto::{NodeId, OnionSecret},
    driver::{
        messaging::{MessagingChain, MessagingSetup},
        streams::StreamSetup,
        DhtSetup, DirectorySetup, Node, NodeConfig, NodeEvent, NodeHandle, NodeSecrets,
        NodeServices,
    },
};
use std::sync::{Arc, Mutex, OnceLock};

/// The running overlay, shared with the RPC.
#[derive(Default)]
pub struct OverlayState {
    /// The identity, once loaded.
    pub identity: OnceLock<Arc<OverlayIdentity>>,
    /// The node handle, once started.
    pub handle: OnceLock<NodeHandle>,
    /// The certificate issuer (used while this node is an elected authority).
    pub cert_authority: OnceLock<Mutex<CertificateAuthority>>,
    /// The overlay's metrics, when the node has a Prometheus registry.
    pub metrics: OnceLock<Arc<Metrics>>,
}

/// The node's transaction pool (the overlay submits its oracle's receipt keys to it).
pub type Pool = sc_transaction_pool::TransactionPoolHandle<psp_runtime::opaque::Block, FullClient>;

/// How long this node's receipt keys are valid once published: four epochs, at least two
/// minutes (receipts drawn late in an epoch must still be redeemable after it).
fn receipt_key_lifetime_secs() -> u64 {
    let epoch_secs =
        u64::from(psp_runtime::EPOCH_LENGTH) * psp_runtime::MILLI_SECS_PER_BLOCK / 1_000;
    (4 * epoch_secs).max(120)
}

/// The oracle's usage service: tickets at `puzzle_bits` of work, the collector's defaults.
fn usage_service(
    genesis: [u8; 32],
    key: psp_net::crypto::Sr25519Keypair,
    puzzle_bits: u8,
) -> Result<psp_net::driver::usage::SharedUsage, psp_net::usage::UsageError> {
    use psp_net::usage::{collect, service, ticket};
    let issuer = ticket::TicketIssuer::new(
        genesis,
        key,
        ticket::IssuerConfig {
            difficulty: puzzle_bits,
            ..ticket::IssuerConfig::default()
        },
    )?;
    let collector = collect::Collector::new(genesis, collect::CollectorConfig::default());
    Ok(psp_net::driver::usage::SharedUsage::new(
        service::UsageService::new(issuer, collector, service::ServiceConfig::default()),
    ))
}

/// `--test-inflate-usage`, honoured on test networks only.
fn inflate_percent(asked: Option<u32>, test_network: bool) -> u32 {
    match asked {
        Some(percent) if test_network => {
            log::warn!(target: "psp-usage", "test network: this relay inflates its usage reports by {percent} %");
            percent
        }
        Some(_) => {
            log::error!(target: "psp-usage", "--test-inflate-usage is for test networks only; ignored");
            0
        }
        None => 0,
    }
}

/// Starts the overlay on the node's tokio runtime.
#[allow(clippy::too_many_arguments)]
pub fn start(
    params: &OverlayParams,
    identity: Arc<OverlayIdentity>,
    client: Arc<FullClient>,
    pool: Arc<Pool>,
    state: Arc<OverlayState>,
    spawn: &sc_service::SpawnTaskHandle,
    test_network: bool,
    observer: Option<Arc<Observer>>,
    rpc_port: u16,
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
    let checks = Arc::new(ChainChecks::new(client.clone()));
    let period = params
        .directory_period
        .unwrap_or(if test_network { 10 } else { 900 })
        .max(1);
    let genesis = crate::chain_checks::genesis(&*client);
    // Presence and rendezvous check certificates against the authorities the chain feed
    // keeps current, and identities through the chain checks.
    let messaging_chain = genesis.map(|genesis| MessagingChain {
        genesis,
        authorities: Default::default(),
        registry: checks.clone(),
        generation: Default::default(),
    });
    let observer_fn = observer.clone().map(|o| {
        Arc::new(move |service: &'static str, bytes: &[u8]| o.service_bytes(service, bytes))
            as psp_net::driver::messaging::ServiceObserver
    });
    let key_updates = psp_net::driver::streams::SharedKeyUpdates::default();
    let landing_updates = psp_net::driver::streams::SharedLandingUpdates::default();
    let oracles = psp_net::driver::counts::SharedOracles::default();
    let subscriptions = Arc::new(streams::ChainSubscriptions::new(client.clone()));
    let reporter = genesis.map(|genesis| {
        slashing::EquivocationReporter::new(identity.signing_key(), genesis, pool.clone())
    });
    let chain_facts = usage::SharedChainFacts::default();
    let usage_service = genesis.and_then(|genesis| {
        match usage_service(genesis, identity.signing_key(), params.usage_puzzle_bits) {
            Ok(service) => Some(service),
            Err(e) => {
                log::error!(target: "psp-usage", "usage service not started: {e}");
                None
            }
        }
    });
    let settler = genesis
        .zip(usage_service.clone())
        .map(|(genesis, service)| {
            usage::Settler::new(identity.signing_key(), genesis, pool.clone(), service)
        });
    let stream_feed = genesis.map(|genesis| feed::StreamFeed {
        keys: Arc::new(streams::ReceiptKeys::new(
            identity.signing_key(),
            genesis,
            key_updates.clone(),
            receipt_key_lifetime_secs(),
        )),
        subscriptions: subscriptions.clone(),
        pool,
        oracles: oracles.clone(),
        facts: chain_facts.clone(),
        settler,
    });
    let node_services = NodeServices {
        dht: Some(DhtSetup::new(checks.clone())),
        messaging: messaging_chain.clone().map(|chain| MessagingSetup {
            node_key: Arc::new(identity.signing_key()),
            chain,
            presence: Default::default(),
            rendezvous: Default::default(),
            lookup: Default::default(),
            observer: observer_fn.clone(),
        }),
        streams: messaging_chain.clone().map(|chain| StreamSetup {
            observer: observer_fn,
            oracles,
            landing_updates: landing_updates.clone(),
            ..StreamSetup::new(
                Arc::new(identity.signing_key()),
                chain,
                subscriptions,
                key_updates,
            )
        }),
        directory: genesis.map(|genesis| DirectorySetup {
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
            registry: checks.clone(),
        }),
        usage: usage_service,
    };
    let secrets = NodeSecrets {
        id: NodeId(identity.node_id()),
        onion: OnionSecret::from_bytes(identity.onion_secret),
        link_key: identity.link_key.clone(),
    };
    let spawn_inner = spawn.clone();
    let media_addrs = params.media_bind().zip(params.media_public());
    let media_limits = params.media_limits();
    let media_inflate = params.test_inflate_usage;
    let status_port = params.status_port;
    spawn.spawn("psp-overlay", Some("overlay"), async move {
        let services = Box::new(psp_net::circuit::Services::default());
        let node = match Node::with_node_services(
            config,
            secrets,
            checks.clone(),
            services,
            node_services,
        ) {
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
            feed::feed_from_chain(
                client,
                checks.clone(),
                handle.clone(),
                identity.clone(),
                messaging_chain,
                stream_feed,
                reporter,
            ),
        );
        let metrics = state.metrics.get().cloned();
        let media = match media_addrs {
            Some((bind, public)) => {
                let resolver = checks.clone();
                let deps = media::MediaDeps {
                    key: Arc::new(identity.signing_key()),
                    registry: checks.clone(),
                    resolve: Arc::new(move |node: &[u8; 32]| {
                        resolver.snapshot().nodes.get(node)?.media
                    }),
                    observer: observer.clone(),
                    metrics: metrics.clone(),
                    landing_updates,
                    usage: genesis.map(|genesis| {
                        let links = checks.clone();
                        media::MediaUsage {
                            genesis,
                            inflate_percent: inflate_percent(media_inflate, test_network),
                            facts: chain_facts.clone(),
                            handle: handle.clone(),
                            links: Arc::new(move |node: &[u8; 32]| {
                                links.snapshot().nodes.get(node)?.link.clone()
                            }),
                        }
                    }),
                };
                let config = media::MediaConfig {
                    bind,
                    public,
                    limits: media_limits,
                };
                match media::MediaService::start(config, deps).await {
                    Ok(media) => {
                        log::debug!(target: "psp-media", "media bound at {}", media.local_addr());
                        Some(media)
                    }
                    Err(e) => {
                        log::error!(
                            target: "psp-media",
                            "media service did not start on {bind}: {e}; streams cannot be \
                             published or watched at this node"
                        );
                        None
                    }
                }
            }
            None => None,
        };
        if let Some(metrics) = &metrics {
            spawn_inner.spawn(
                "psp-overlay-metrics",
                Some("overlay"),
                metrics.clone().refresh(handle.clone()),
            );
        }
        let status_page = status_port.map(|port| {
            let page = Arc::new(status::StatusPage::default());
            spawn_inner.spawn(
                "psp-status-sample",
                Some("overlay"),
                page.clone().sample(handle.clone()),
            );
            spawn_inner.spawn(
                "psp-status-page",
                Some("overlay"),
                page.clone().serve(port, rpc_port),
            );
            page
        });
        if let Some(observer) = &observer {
            spawn_inner.spawn(
                "psp-overlay-observe",
                Some("overlay"),
                observer.clone().watch_traffic(handle),
            );
        }
        while let Some(event) = events.recv().await {
            if let Some(metrics) = &metrics {
                metrics.record(&event);
            }
            if let Some(page) = &status_page {
                page.record(&event);
            }
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
                NodeEvent::StreamCreated(created) => {
                    log::debug!(
                        target: "psp-overlay",
                        "stream created: {}",
                        hex::encode(created.stream_id)
                    );
                    if let Some(media) = &media {
                        media.stream_created(&created);
                    }
                }
                NodeEvent::ReceiptCounts(received) => {
                    log::debug!(target: "psp-overlay", "oracle: receipt counts taken: {received:?}")
                }
                NodeEvent::LinkUp {
                    peer: Peer::Client(_),
                    peer_id,
                } => {
                    if let Some(observer) = &observer {
                        observer.client_link(&peer_id);
                    }
                    log::debug!(target: "psp-overlay", "client link up: {peer_id}")
                }
                other => log::debug!(target: "psp-overlay", "{other:?}"),
            }
        }
    });
}
