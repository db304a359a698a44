//! Creating realtime streams anonymously, the producer's side (PSP overview §8.2): subscribe
//! on chain, draw a blind receipt from an elected oracle, hand it to a landing node over a
//! fresh anonymous circuit, and look stream records up in the DHT.
//!
//! - Chain: [`Chain::subscriptions_status`] (plans, epoch), [`Chain::subscription`],
//!   [`Chain::receipt_keys`] (every oracle's published keys of an epoch) and
//!   [`Chain::subscribe`] (`PspSubscriptions.subscribe`, any payer for an active client
//!   identity). [`published_key`] turns a [`ReceiptKeyView`] into the [`PublishedKey`] the
//!   receipt machines take, [`tier_params`] a plan's tier into [`StreamParams`].
//! - Overlay only (no chain): [`draw_receipt_at`] builds a 3-hop circuit ending at a given
//!   oracle, opens its `oracle` service and drives `psp_stream`'s [`ReceiptClient`] to a
//!   [`Receipt`]; [`create_stream`] builds a *fresh* 3-hop circuit (avoiding the oracle
//!   circuit's relays where the node list allows) to a landing node, opens `landing` and
//!   drives [`StreamCreator`] with the receipt, WebRTC and the distribution nodes, returning
//!   the record it checked. [`verify_dht_stream_record`] checks a stream's DHT record offline.
//! - With the chain: [`draw_receipt`] checks the subscription, reads the plan and the epoch's
//!   published keys, and tries the oracles holding a key of the plan's tier in random order
//!   until one issues (a refusal every oracle would repeat, like "not subscribed", stops at
//!   once); [`show_stream`] fetches a stream's record through a node's `psp_dhtGet` and checks
//!   it against the landing node's identity on chain.
//!
//! The oracle learns who asks (the certificate proves it) and for which tier, never the
//! receipt; the landing node learns the receipt and the distribution nodes, never who the
//! producer is. The two circuits are different so that no relay sees both exchanges on one
//! circuit.
//!
//! Consumer tokens (issue 14) come from the same oracles' `oracle` service, under the
//! consumer-token keys they publish beside their receipt keys: [`token::draw_token`]. The
//! receipt functions here leave those keys aside.
//!
//! The media itself (publishing into a stream, watching it) is [`media`]'s.
//!
//! Every failure is a [`StreamClientError`] naming the node and what to do: no subscription,
//! no oracle with keys this epoch, the oracle's or the landing node's refusal (with the reason
//! code its machine reports), timeouts.

pub mod ivf;
pub mod media;
pub mod scaling;
pub mod session;
pub mod token;

use std::time::Duration;

use psp_net::crypto::Sr25519Keypair;
use psp_net::dht::{record_key, RecordKey, RecordKind, RecordLimits, SignedRecord};
use psp_net::driver::{unix_now, CircuitStream};
use psp_net::receipts::{PublicKey, PublishedKey, Receipt, StreamParams};
use psp_net::registry::{IdentityRegistry, IdentityStatus};
use psp_net::rendezvous::client::Output;
use psp_net::rendezvous::StreamHandle;
use psp_net::stream::client::{CreatorEvent, ReceiptClient, ReceiptEvent, StreamCreator};
use psp_net::stream::record::{verify_stream_record, StreamId, VerifiedStreamRecord};
use psp_net::stream::StreamError;
use psp_primitives::rpc::{ReceiptKeyView, SubscriptionView, SubscriptionsStatusView};
use psp_primitives::subscriptions::Tier;
use rand::seq::SliceRandom;
use serde::Serialize;
use subxt::rpcs::rpc_params;
use subxt::utils::Static;
use subxt_signer::sr25519::Keypair;

use crate::chain::{Chain, Progress, TxOutcome};
use crate::keystore::Keys;
use crate::messaging::chainview::{status_of, StatusCache};
use crate::overlay::{describe, NodeRpc, OverlayClient, RelayNode};
use crate::{hex0x, parse_hex_vec, Error};

pub use psp_net::driver::streams::{LANDING_SERVICE, ORACLE_SERVICE};
pub use psp_net::stream::wire::{FormatFlags, LandingRefusal, OracleRefusal};

/// The runtime's name of the subscriptions pallet.
pub const PALLET: &str = "PspSubscriptions";
/// Hops of the circuits to the oracle and to the landing node.
pub const HOPS: usize = 3;
/// How long the oracle and the landing node may take to answer by default: 30 s.
pub const DEFAULT_ANSWER_TIMEOUT: Duration =
    Duration::from_secs(psp_net::stream::client::DEFAULT_TIMEOUT_SECS);

/// Why a stream step failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StreamClientError {
    /// The chain offers no such plan.
    #[error("plan {plan} does not exist: the chain offers {count} plan(s), numbered from 0 (see `psp stream plans`)")]
    UnknownPlan {
        /// The plan asked for.
        plan: u8,
        /// Plans on offer.
        count: usize,
    },
    /// No registered oracle published a key of the plan's tier for the epoch.
    #[error("no oracle has a receipt key for plan {plan} (tier {tier}) in epoch {epoch} ({published} key(s) published this epoch, {unusable} unusable): wait for the elected oracles to publish their keys, or try another plan")]
    NoOracleKeys {
        /// The plan.
        plan: u8,
        /// Its tier.
        tier: String,
        /// The epoch.
        epoch: u32,
        /// Receipt keys published this epoch, every tier (consumer-token keys aside).
        published: usize,
        /// Keys of the tier skipped (undecodable, expired, oracle not a registered node).
        unusable: usize,
    },
    /// An oracle refused to issue.
    #[error("oracle {oracle} refused the receipt: {reason:?}. {hint}", hint = oracle_hint(*reason))]
    OracleRefused {
        /// The oracle's node key, hex.
        oracle: String,
        /// The reason code it answered with.
        reason: OracleRefusal,
    },
    /// The landing node refused to create the stream.
    #[error("landing node {landing} refused the stream: {reason:?}. {hint}", hint = landing_hint(*reason))]
    LandingRefused {
        /// The landing node's key, hex.
        landing: String,
        /// The reason code it answered with.
        reason: LandingRefusal,
    },
    /// A node did not answer in time.
    #[error("timed out {step} at {node} after {secs} s; the node may be overloaded or unreachable, retry or choose another")]
    TimedOut {
        /// The node, hex.
        node: String,
        /// What was awaited.
        step: String,
        /// How long we waited.
        secs: u64,
    },
    /// The exchange with the `oracle` or `landing` service failed otherwise: the stream
    /// closed, the answer was malformed, the receipt or the record did not verify or match.
    #[error("the {service} exchange with {node} failed: {source}")]
    Exchange {
        /// `oracle` or `landing`.
        service: &'static str,
        /// The node, hex.
        node: String,
        /// What the machine reported.
        #[source]
        source: StreamError,
    },
    /// No registered oracle published a usable consumer-token key for the epoch.
    #[error("no oracle has a consumer-token key in epoch {epoch} ({published} published, {usable} usable): wait for the elected oracles to publish their keys (they do at the start of each epoch)")]
    NoTokenKeys {
        /// The epoch.
        epoch: u32,
        /// Consumer-token keys published for it.
        published: usize,
        /// Of those, the ones that parse and have not expired.
        usable: usize,
    },
    /// An oracle refused to issue a consumer token.
    #[error("oracle {oracle} refused the consumer token: {reason:?}. {hint}", hint = token::token_hint(*reason))]
    TokenRefused {
        /// The oracle's node key, hex.
        oracle: String,
        /// The reason code it answered with.
        reason: OracleRefusal,
    },
    /// Every oracle holding a consumer-token key failed.
    #[error("no oracle issued a consumer token in epoch {epoch}: {}", attempts.join("; "))]
    TokenOraclesFailed {
        /// The epoch.
        epoch: u32,
        /// What each oracle tried did.
        attempts: Vec<String>,
    },
    /// Every oracle holding a key of the plan's tier failed.
    #[error("no oracle issued a receipt for plan {plan}: {}", attempts.join("; "))]
    OraclesFailed {
        /// The plan.
        plan: u8,
        /// What each oracle tried did.
        attempts: Vec<String>,
    },
    /// The DHT holds no record of the stream.
    #[error("no record of stream {stream_id} by landing node {landing} in the DHT: the stream id or landing node is wrong, the stream expired, or the record has not spread yet (retry in a few seconds)")]
    StreamNotFound {
        /// The landing node, hex.
        landing: String,
        /// The stream id, hex.
        stream_id: String,
    },
    /// A stream's DHT record does not check.
    #[error("the DHT record of stream {stream_id} is not valid: {reason}")]
    BadRecord {
        /// The stream id, hex.
        stream_id: String,
        /// What is wrong.
        reason: String,
    },
    /// A node announces no usable media service on chain.
    #[error("node {node} announces no media service on chain: {reason}. The node must run its media service and list `/ip4/<ip>/tcp/<port>/http` as the second address of its identity")]
    NoMediaService {
        /// The node, hex.
        node: String,
        /// What its identity lacks.
        reason: String,
    },
    /// Publishing into or watching a stream at a node's media service failed.
    #[error("{step} at node {node} ({url}) failed: {source}. {hint}")]
    Media {
        /// The node, hex.
        node: String,
        /// Its signalling URL.
        url: String,
        /// `publishing (WHIP)` or `watching (WHEP)`.
        step: &'static str,
        /// What to do ([`media::media_hint`]).
        hint: &'static str,
        /// What the WebRTC client reported.
        #[source]
        source: psp_webrtc::Error,
    },
    /// The stream's record says it ended (stopped by its producer, or expired).
    #[error("stream {stream_id} has ended (its record expired at unix time {expires_at})")]
    StreamEnded {
        /// The stream id, hex.
        stream_id: String,
        /// When it ended.
        expires_at: u64,
    },
    /// The landing node asked for distribution nodes and none is left to offer.
    #[error("stream {stream_id}: the landing node asks for more distribution nodes and none is left to offer: name spares with --spare, or register more nodes with a media service")]
    NoSpareNodes {
        /// The stream id, hex.
        stream_id: String,
    },
    /// The stream's record lists no access point to watch at.
    #[error("stream {stream_id} lists no access point: give one with --access-point")]
    NoAccessPoint {
        /// The stream id, hex.
        stream_id: String,
    },
    /// The exchange with an oracle's `usage` service failed.
    #[error("the usage exchange with oracle {oracle} failed: {reason}")]
    UsageExchange {
        /// The oracle, hex.
        oracle: String,
        /// What went wrong.
        reason: String,
    },
    /// No elected oracle is a registered node with an address.
    #[error("no elected oracle is reachable: the chain elects oracles at each epoch boundary; wait and retry")]
    NoOracle,
    /// Every elected oracle failed to issue a session ticket.
    #[error("no oracle issued a session ticket: {}", attempts.join("; "))]
    NoTicket {
        /// What each oracle did.
        attempts: Vec<String>,
    },
    /// Chain, RPC, keystore or circuit errors.
    #[error(transparent)]
    Client(#[from] Error),
}

/// What to do about an oracle's refusal.
pub fn oracle_hint(reason: OracleRefusal) -> &'static str {
    match reason {
        OracleRefusal::NotSubscribed => {
            "the identity holds no subscription this epoch: subscribe with `psp stream subscribe`"
        }
        OracleRefusal::BadCertificate => {
            "the access certificate was refused: get a fresh one from an elected authority (--authority-url)"
        }
        OracleRefusal::IdentityNotLive => "the identity is revoked or not (yet finalized) on chain",
        OracleRefusal::UnknownTier => {
            "the oracle does not hold that key this epoch (the epoch may just have changed): retry"
        }
        OracleRefusal::BeyondAllowance => {
            "the plan's tier is above the subscription's: choose the subscribed plan or a lower one"
        }
        OracleRefusal::Exhausted => {
            "the subscription drew every receipt of this epoch: wait for the next epoch"
        }
        OracleRefusal::Busy => "the oracle is at a limit: retry later or at another oracle",
        _ => "retry, or at another oracle",
    }
}

/// What to do about a landing node's refusal.
pub fn landing_hint(reason: LandingRefusal) -> &'static str {
    match reason {
        LandingRefusal::AlreadySpent => "this receipt was spent already: draw a new one",
        LandingRefusal::UnknownKey => {
            "the landing node does not accept the receipt's key (not published on chain as it \
             sees it, or removed): retry in a moment or at another landing node"
        }
        LandingRefusal::WrongEpoch | LandingRefusal::Expired => {
            "the receipt's key is out of its epoch: draw a new receipt"
        }
        LandingRefusal::TooManyDistributionNodes => {
            "give fewer (and distinct) distribution nodes: at most the plan's allowance"
        }
        LandingRefusal::DistributionNodeNotLive => {
            "every distribution node must be an active registered node"
        }
        LandingRefusal::Busy => "the node is at a limit: retry later or at another landing node",
        LandingRefusal::WrongLanding => {
            "the receipt was drawn for another landing node: create the stream there, or draw a new one"
        }
        _ => "check the receipt and the arguments",
    }
}

/// A progress line of [`draw_receipt`] and [`create_stream`].
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum StreamProgress {
    /// Building the circuit to `service` at its last hop.
    Building {
        /// `oracle` or `landing`.
        service: &'static str,
        /// The path, as [`describe`] prints it.
        path: String,
    },
    /// The request is written; waiting for the answer.
    Asked {
        /// `oracle` or `landing`.
        service: &'static str,
        /// The node, hex.
        node: String,
    },
    /// One oracle failed; the next is tried.
    OracleFailed {
        /// The oracle, hex.
        oracle: String,
        /// Why.
        error: String,
    },
    /// The receipt was issued and verified.
    ReceiptIssued {
        /// The oracle, hex.
        oracle: String,
        /// Its tier.
        params: StreamParams,
    },
    /// A consumer token was issued and verified.
    TokenIssued {
        /// The oracle, hex.
        oracle: String,
        /// The epoch it counts in.
        epoch: u64,
    },
    /// A circuit could not be built; another path is tried.
    PathFailed {
        /// The path, as [`describe`] prints it.
        path: String,
        /// Why.
        error: String,
    },
    /// Solving the session puzzle.
    Solving {
        /// Its leading zero bits of work.
        bits: u8,
    },
    /// The stream exists.
    StreamCreated {
        /// The stream id, hex.
        stream_id: String,
    },
}

impl std::fmt::Display for StreamProgress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Building { service, path } => {
                write!(f, "building a {HOPS}-hop circuit to `{service}`: {path}")
            }
            Self::Asked { service, node } => write!(f, "asked {service} {node}; waiting"),
            Self::OracleFailed { oracle, error } => {
                write!(f, "oracle {oracle} failed ({error}); trying another")
            }
            Self::ReceiptIssued { oracle, params } => {
                write!(f, "receipt {params} issued by oracle {oracle}")
            }
            Self::TokenIssued { oracle, epoch } => {
                write!(
                    f,
                    "consumer token of epoch {epoch} issued by oracle {oracle}"
                )
            }
            Self::PathFailed { path, error } => {
                write!(f, "circuit {path} failed ({error}); trying another path")
            }
            Self::Solving { bits } => write!(f, "solving the session puzzle ({bits} bits)"),
            Self::StreamCreated { stream_id } => write!(f, "stream {stream_id} created"),
        }
    }
}

impl Chain {
    /// `psp_subscriptionsStatus`: the current epoch, the plans, receipts per epoch, the pot.
    pub async fn subscriptions_status(&self) -> crate::Result<SubscriptionsStatusView> {
        self.request("psp_subscriptionsStatus", rpc_params![]).await
    }

    /// `psp_subscription`: `identity`'s subscription, if it has one.
    pub async fn subscription(
        &self,
        identity: &[u8; 32],
    ) -> crate::Result<Option<SubscriptionView>> {
        self.request("psp_subscription", rpc_params![hex0x(identity)])
            .await
    }

    /// `psp_receiptKeys`: every oracle's published receipt keys for `epoch`, its
    /// consumer-token key among them (tier [`Tier::CONSUMER_TOKENS`]; [`token::token_keys`]
    /// picks those, the receipt functions skip them).
    pub async fn receipt_keys(&self, epoch: u32) -> crate::Result<Vec<ReceiptKeyView>> {
        self.request("psp_receiptKeys", rpc_params![epoch]).await
    }

    /// Subscribes `identity` (an active client identity) to `plan` for `epochs` epochs, paid
    /// in advance by `payer` (`PspSubscriptions.subscribe`).
    pub async fn subscribe(
        &self,
        payer: &Keypair,
        identity: [u8; 32],
        plan: u8,
        epochs: u32,
        progress: impl FnMut(Progress) + Send,
    ) -> crate::Result<TxOutcome> {
        let payload = subxt::tx::dynamic(
            PALLET,
            "subscribe",
            (Static(identity), Static(plan), Static(epochs)),
        );
        self.submit("PspSubscriptions.subscribe", payload, payer, progress)
            .await
    }
}

/// A plan's tier as receipt parameters.
pub fn tier_params(tier: &Tier) -> Result<StreamParams, StreamClientError> {
    StreamParams::from_codes(
        tier.lifetime_secs,
        tier.bitrate_class,
        tier.distribution_nodes,
    )
    .map_err(|e| {
        StreamClientError::Client(Error::InvalidInput {
            what: "tier",
            reason: e.to_string(),
        })
    })
}

/// A published key as the receipt machines take it: the oracle's node key and the key of
/// `epoch` (the epoch `psp_receiptKeys` was asked for). A consumer-token key is refused: it
/// is no receipt key ([`token::token_key`] takes it).
pub fn published_key(
    view: &ReceiptKeyView,
    epoch: u64,
) -> Result<([u8; 32], PublishedKey), StreamClientError> {
    if view.tier.is_consumer_tokens() {
        return Err(Error::InvalidInput {
            what: "psp_receiptKeys tier",
            reason: "a consumer-token key, not a receipt key".into(),
        }
        .into());
    }
    let (oracle, public) = oracle_and_public_key(view)?;
    Ok((
        oracle,
        PublishedKey {
            public,
            epoch,
            tier: tier_params(&view.tier)?,
            expires_at: view.expires_at,
        },
    ))
}

/// The oracle and the RSA public key of a `psp_receiptKeys` entry, parsed.
fn oracle_and_public_key(view: &ReceiptKeyView) -> Result<([u8; 32], PublicKey), Error> {
    let oracle = crate::parse_hex::<32>(&view.oracle, "psp_receiptKeys oracle")?;
    let der = parse_hex_vec(&view.public_key, "psp_receiptKeys publicKey")?;
    let public = PublicKey::from_der(&der).map_err(|e| Error::InvalidInput {
        what: "psp_receiptKeys publicKey",
        reason: e.to_string(),
    })?;
    Ok((oracle, public))
}

/// A receipt drawn from an oracle.
#[derive(Clone, Debug)]
pub struct DrawnReceipt {
    /// The receipt (secret: whoever holds it can create the stream).
    pub receipt: Receipt,
    /// The oracle that issued it.
    pub oracle: [u8; 32],
    /// The relays of the circuit it came over, entry first (the oracle last): the landing
    /// circuit avoids them.
    pub path: Vec<[u8; 32]>,
}

/// A stream a landing node created.
#[derive(Clone, Debug)]
pub struct CreatedStream {
    /// The record, checked against what was asked and the landing node's identity.
    pub record: VerifiedStreamRecord,
    /// Its bytes, as published.
    pub record_bytes: Vec<u8>,
    /// The relays of the landing circuit, entry first (the landing node last).
    pub path: Vec<[u8; 32]>,
}

impl CreatedStream {
    /// The stream id.
    pub fn stream_id(&self) -> StreamId {
        self.record.stream_id()
    }

    /// What `psp stream create` prints.
    pub fn view(&self) -> StreamView {
        StreamView::new(&self.record, &self.record_bytes)
    }
}

/// A stream record as `psp stream create` and `show` print it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StreamView {
    /// The stream id, hex.
    pub stream_id: String,
    /// The landing node, hex.
    pub landing: String,
    /// The distribution nodes consumers connect to, hex.
    pub access_points: Vec<String>,
    /// Transports (`webrtc`, ...).
    pub formats: Vec<&'static str>,
    /// Created, unix seconds.
    pub created_at: u64,
    /// Expires, unix seconds.
    pub expires_at: u64,
    /// The DHT key of the record, hex.
    pub dht_key: String,
    /// The signed record, hex.
    pub record: String,
}

impl StreamView {
    /// The view of a checked record and its bytes.
    pub fn new(record: &VerifiedStreamRecord, bytes: &[u8]) -> Self {
        let r = record.record();
        let formats = [
            (FormatFlags::WEBRTC, "webrtc"),
            (FormatFlags::RTMP, "rtmp"),
            (FormatFlags::RTMPE, "rtmpe"),
        ]
        .into_iter()
        .filter(|(bit, _)| r.format.contains(*bit))
        .map(|(_, name)| name)
        .collect();
        Self {
            stream_id: hex0x(&r.stream_id.0),
            landing: hex0x(&r.landing),
            access_points: r.access_points.iter().map(|n| hex0x(n)).collect(),
            formats,
            created_at: r.created_at,
            expires_at: r.expires_at,
            dht_key: hex0x(&stream_record_key(&r.landing, &r.stream_id)),
            record: hex0x(bytes),
        }
    }
}

/// A 3-hop path ending at `target`: two other nodes of `nodes`, avoiding `avoid` (and
/// `target`) when enough remain, else any two others.
pub fn path_to(
    nodes: &[RelayNode],
    target: &RelayNode,
    avoid: &[[u8; 32]],
    rng: &mut impl rand::Rng,
) -> crate::Result<Vec<RelayNode>> {
    let others: Vec<&RelayNode> = nodes.iter().filter(|n| n.key() != target.key()).collect();
    let fresh: Vec<&RelayNode> = others
        .iter()
        .copied()
        .filter(|n| !avoid.contains(&n.key()))
        .collect();
    let pool = if fresh.len() >= HOPS - 1 {
        fresh
    } else {
        others
    };
    if pool.len() < HOPS - 1 {
        return Err(Error::NotEnoughNodes {
            hops: HOPS,
            registered: nodes.len(),
            named: 1,
        });
    }
    let mut path: Vec<RelayNode> = pool
        .choose_multiple(rng, HOPS - 1)
        .map(|n| (*n).clone())
        .collect();
    path.push(target.clone());
    Ok(path)
}

/// One of the two producer machines, as [`exchange`] drives it.
trait Machine {
    type Event;
    fn data(&mut self, now: u64, bytes: &[u8]) -> Output<Self::Event>;
    fn timeout(&mut self, now: u64) -> Output<Self::Event>;
    fn closed(&mut self) -> Output<Self::Event>;
    fn deadline(&self) -> Option<u64>;
}

/// [`Machine`] for a psp-stream client machine with the usual `handle_*` methods.
macro_rules! impl_machine {
    ($machine:ty, $event:ty) => {
        impl Machine for $machine {
            type Event = $event;
            fn data(&mut self, now: u64, bytes: &[u8]) -> Output<$event> {
                self.handle_data(now, bytes)
            }
            fn timeout(&mut self, now: u64) -> Output<$event> {
                self.handle_timeout(now)
            }
            fn closed(&mut self) -> Output<$event> {
                self.handle_stream_closed()
            }
            fn deadline(&self) -> Option<u64> {
                self.poll_timeout()
            }
        }
    };
}
use impl_machine;

impl_machine!(ReceiptClient, ReceiptEvent);

struct Creator<'a> {
    machine: StreamCreator,
    registry: &'a dyn IdentityRegistry,
}

impl Machine for Creator<'_> {
    type Event = CreatorEvent;
    fn data(&mut self, now: u64, bytes: &[u8]) -> Output<CreatorEvent> {
        self.machine.handle_data(now, bytes, self.registry)
    }
    fn timeout(&mut self, now: u64) -> Output<CreatorEvent> {
        self.machine.handle_timeout(now)
    }
    fn closed(&mut self) -> Output<CreatorEvent> {
        self.machine.handle_stream_closed()
    }
    fn deadline(&self) -> Option<u64> {
        self.machine.poll_timeout()
    }
}

/// Writes `request` on `stream` and feeds the machine what comes back until it ends; its
/// last event, `None` if it ended without one.
async fn exchange<M: Machine>(
    stream: &mut CircuitStream,
    machine: &mut M,
    request: &[u8],
) -> Option<M::Event> {
    let mut out = match stream.send(request).await {
        Ok(()) => Output::default(),
        Err(_) => machine.closed(),
    };
    loop {
        if let Some(event) = out.events.into_iter().next() {
            return Some(event);
        }
        for t in out.transmits {
            if stream.send(&t.bytes).await.is_err() {
                break;
            }
        }
        let deadline = machine.deadline()?;
        let now = unix_now();
        // Deadlines are whole seconds: wake at the next one at the earliest.
        let wait =
            Duration::from_secs(deadline.saturating_sub(now)).max(Duration::from_millis(250));
        out = match tokio::time::timeout(wait, stream.recv()).await {
            Ok(Some(bytes)) => machine.data(unix_now(), &bytes),
            Ok(None) => machine.closed(),
            Err(_) => machine.timeout(unix_now()),
        };
    }
}

/// Circuits tried to reach one node before giving up (a relay on the way may be down).
const PATH_ATTEMPTS: usize = 3;

/// Builds a circuit to `target` through `nodes` (a fresh random path, avoiding `avoid` where
/// possible) and opens `service` at it. A failed build is tried again, up to
/// [`PATH_ATTEMPTS`] paths, each also avoiding the relays of the paths that failed. Returns
/// the path that worked, the circuit and the stream.
/// Opens a fresh circuit to `oracle`'s oracle service, runs `machine` over it from `request`
/// until its first event, and closes the circuit; returns the path and the event (`None`:
/// the stream ended without one).
async fn ask_oracle<M: Machine>(
    overlay: &OverlayClient,
    nodes: &[RelayNode],
    oracle: &RelayNode,
    machine: &mut M,
    request: &[u8],
    progress: &mut impl FnMut(StreamProgress),
) -> Result<(Vec<RelayNode>, Option<M::Event>), StreamClientError> {
    let (path, circuit, mut stream) =
        open(overlay, nodes, oracle, &[], ORACLE_SERVICE, progress).await?;
    progress(StreamProgress::Asked {
        service: ORACLE_SERVICE,
        node: hex0x(&oracle.key()),
    });
    let event = exchange(&mut stream, machine, request).await;
    drop(stream);
    let _ = circuit.destroy().await;
    Ok((path, event))
}

async fn open(
    overlay: &OverlayClient,
    nodes: &[RelayNode],
    target: &RelayNode,
    avoid: &[[u8; 32]],
    service: &'static str,
    progress: &mut impl FnMut(StreamProgress),
) -> Result<(Vec<RelayNode>, psp_net::driver::Circuit, CircuitStream), StreamClientError> {
    let mut avoid = avoid.to_vec();
    let mut attempt = 1;
    loop {
        let path = path_to(nodes, target, &avoid, &mut rand::thread_rng())?;
        match open_path(overlay, &path, service, progress).await {
            Ok((circuit, stream)) => return Ok((path, circuit, stream)),
            Err(e) if attempt < PATH_ATTEMPTS => {
                progress(StreamProgress::PathFailed {
                    path: describe(&path),
                    error: e.to_string(),
                });
                let relays = path
                    .iter()
                    .map(RelayNode::key)
                    .filter(|k| *k != target.key());
                avoid.extend(relays);
                attempt += 1;
            }
            Err(e) => return Err(e),
        }
    }
}

/// Builds a circuit through `path` and opens `service` at its last hop.
async fn open_path(
    overlay: &OverlayClient,
    path: &[RelayNode],
    service: &'static str,
    progress: &mut impl FnMut(StreamProgress),
) -> Result<(psp_net::driver::Circuit, CircuitStream), StreamClientError> {
    progress(StreamProgress::Building {
        service,
        path: describe(path),
    });
    let built = overlay.build(path, None).await?;
    let node = hex0x(&path.last().map(RelayNode::key).unwrap_or_default());
    let limit = overlay.options().build_timeout;
    let opened = tokio::time::timeout(limit, built.circuit.open_stream(service)).await;
    match opened {
        Ok(Ok(stream)) => Ok((built.circuit, stream)),
        Ok(Err(source)) => {
            let _ = built.circuit.destroy().await;
            Err(Error::Circuit {
                what: format!("opening `{service}` at {node}"),
                source,
            }
            .into())
        }
        Err(_) => {
            let _ = built.circuit.destroy().await;
            Err(StreamClientError::TimedOut {
                node,
                step: format!("opening `{service}`"),
                secs: limit.as_secs(),
            })
        }
    }
}

/// The error a machine's failure stands for.
fn failure(
    service: &'static str,
    node: &[u8; 32],
    timeout: Duration,
    e: StreamError,
) -> StreamClientError {
    let node = hex0x(node);
    match e {
        StreamError::OracleRefused(reason) => StreamClientError::OracleRefused {
            oracle: node,
            reason,
        },
        StreamError::LandingRefused(reason) => StreamClientError::LandingRefused {
            landing: node,
            reason,
        },
        StreamError::TimedOut { step, .. } => StreamClientError::TimedOut {
            node,
            step: step.to_string(),
            secs: timeout.as_secs(),
        },
        source => StreamClientError::Exchange {
            service,
            node,
            source,
        },
    }
}

/// Draws a receipt for `key`'s whole tier from `oracle` (which must hold `key` this epoch)
/// over a fresh 3-hop circuit through `nodes`, proving `keys`' identity with `certificate`
/// (an access certificate from an elected authority). The oracle has `timeout` to answer.
#[allow(clippy::too_many_arguments)]
pub async fn draw_receipt_at(
    overlay: &OverlayClient,
    nodes: &[RelayNode],
    keys: &Keys,
    certificate: &[u8],
    oracle: &RelayNode,
    key: &PublishedKey,
    landing: &[u8; 32],
    timeout: Duration,
    mut progress: impl FnMut(StreamProgress),
) -> Result<DrawnReceipt, StreamClientError> {
    let oracle_key = oracle.key();
    let identity = Sr25519Keypair::from_seed(keys.identity_seed());
    let handle = StreamHandle(1);
    let (mut machine, request) = ReceiptClient::new(
        handle,
        &identity,
        certificate,
        &oracle_key,
        key,
        key.tier,
        landing,
        unix_now(),
        timeout.as_secs().max(1),
    )
    .map_err(|e| failure(ORACLE_SERVICE, &oracle_key, timeout, e))?;
    let (path, event) = ask_oracle(
        overlay,
        nodes,
        oracle,
        &mut machine,
        &request.bytes,
        &mut progress,
    )
    .await?;
    match event {
        Some(ReceiptEvent::Issued(receipt)) => {
            progress(StreamProgress::ReceiptIssued {
                oracle: hex0x(&oracle_key),
                params: receipt.params,
            });
            Ok(DrawnReceipt {
                receipt,
                oracle: oracle_key,
                path: path.iter().map(RelayNode::key).collect(),
            })
        }
        Some(ReceiptEvent::Failed(e)) => Err(failure(ORACLE_SERVICE, &oracle_key, timeout, e)),
        Some(_) | None => Err(failure(
            ORACLE_SERVICE,
            &oracle_key,
            timeout,
            StreamError::Ended {
                machine: "receipt client",
            },
        )),
    }
}

/// Whether every oracle would refuse the same way (so trying the others is pointless).
fn refused_everywhere(e: &StreamClientError) -> bool {
    matches!(
        e,
        StreamClientError::OracleRefused {
            reason: OracleRefusal::NotSubscribed
                | OracleRefusal::BadCertificate
                | OracleRefusal::IdentityNotLive
                | OracleRefusal::BeyondAllowance
                | OracleRefusal::Exhausted,
            ..
        }
    )
}

/// Asks `candidates` (an oracle and its key each) in random order until one answers with
/// `ask`; stops at a refusal `everywhere` says every oracle would repeat. The error of each
/// oracle that failed otherwise, as `oracle: error`, if none answered.
async fn ask_in_turn<K, T>(
    mut candidates: Vec<(RelayNode, K)>,
    mut ask: impl AsyncFnMut(
        &RelayNode,
        &K,
        &mut dyn FnMut(StreamProgress),
    ) -> Result<T, StreamClientError>,
    everywhere: impl Fn(&StreamClientError) -> bool,
    progress: &mut dyn FnMut(StreamProgress),
) -> Result<Result<T, Vec<String>>, StreamClientError> {
    candidates.shuffle(&mut rand::thread_rng());
    let mut attempts = Vec::new();
    for (oracle, key) in &candidates {
        match ask(oracle, key, &mut *progress).await {
            Ok(answer) => return Ok(Ok(answer)),
            Err(e) if everywhere(&e) => return Err(e),
            Err(e) => {
                progress(StreamProgress::OracleFailed {
                    oracle: hex0x(&oracle.key()),
                    error: e.to_string(),
                });
                attempts.push(format!("{}: {e}", hex0x(&oracle.key())));
            }
        }
    }
    Ok(Err(attempts))
}

/// Draws a receipt of `plan` for `keys`' identity: asks the registered oracles (`nodes`, as [`crate::overlay::registered_nodes`]
/// lists them) holding a published key of the plan's tier this epoch, in random order, until
/// one issues ([`draw_receipt_at`]).
#[allow(clippy::too_many_arguments)]
pub async fn draw_receipt(
    chain: &Chain,
    overlay: &OverlayClient,
    nodes: &[RelayNode],
    keys: &Keys,
    certificate: &[u8],
    plan: u8,
    landing: &[u8; 32],
    timeout: Duration,
    mut progress: impl FnMut(StreamProgress),
) -> Result<DrawnReceipt, StreamClientError> {
    let status = chain.subscriptions_status().await?;
    let epoch = status.current_epoch;
    let tier = status
        .plans
        .iter()
        .find(|p| p.plan == plan)
        .map(|p| p.tier)
        .ok_or(StreamClientError::UnknownPlan {
            plan,
            count: status.plans.len(),
        })?;
    // Consumer-token keys are no receipt keys: neither candidates nor counted.
    let published: Vec<ReceiptKeyView> = chain
        .receipt_keys(epoch)
        .await?
        .into_iter()
        .filter(|k| !k.tier.is_consumer_tokens())
        .collect();
    let now = unix_now();
    let of_tier: Vec<&ReceiptKeyView> = published.iter().filter(|k| k.tier == tier).collect();
    let candidates: Vec<(RelayNode, PublishedKey)> = of_tier
        .iter()
        .filter_map(|view| {
            let (oracle, key) = published_key(view, u64::from(epoch)).ok()?;
            let node = nodes.iter().find(|n| n.key() == oracle)?;
            (key.expires_at > now).then(|| (node.clone(), key))
        })
        .collect();
    if candidates.is_empty() {
        return Err(StreamClientError::NoOracleKeys {
            plan,
            tier: format!(
                "{} s, bitrate class {}, {} nodes",
                tier.lifetime_secs, tier.bitrate_class, tier.distribution_nodes
            ),
            epoch,
            published: published.len(),
            unusable: of_tier.len(),
        });
    }
    let ask =
        async |oracle: &RelayNode, key: &PublishedKey, progress: &mut dyn FnMut(StreamProgress)| {
            draw_receipt_at(
                overlay,
                nodes,
                keys,
                certificate,
                oracle,
                key,
                landing,
                timeout,
                progress,
            )
            .await
        };
    ask_in_turn(candidates, ask, refused_everywhere, &mut progress)
        .await?
        .map_err(|attempts| StreamClientError::OraclesFailed { plan, attempts })
}

/// Creates a stream at `landing` with `receipt`, served over WebRTC by `distribution` (1 to
/// the receipt's allowance, distinct, active nodes): over a fresh 3-hop circuit through
/// `nodes` avoiding the relays the receipt came over where possible, opens `landing`, and
/// checks the record it gets back against what was asked and against `registry` (the landing
/// node must be an active node identity there). The landing node has `timeout` to answer.
#[allow(clippy::too_many_arguments)]
pub async fn create_stream(
    overlay: &OverlayClient,
    nodes: &[RelayNode],
    landing: &RelayNode,
    receipt: &DrawnReceipt,
    distribution: Vec<[u8; 32]>,
    registry: &dyn IdentityRegistry,
    timeout: Duration,
    mut progress: impl FnMut(StreamProgress),
) -> Result<CreatedStream, StreamClientError> {
    let landing_key = landing.key();
    let (machine, request) = StreamCreator::new(
        StreamHandle(1),
        landing_key,
        &receipt.receipt,
        distribution,
        FormatFlags::webrtc(),
        unix_now(),
        timeout.as_secs().max(1),
    )
    .map_err(|e| failure(LANDING_SERVICE, &landing_key, timeout, e))?;
    let mut machine = Creator { machine, registry };
    let (path, circuit, mut stream) = open(
        overlay,
        nodes,
        landing,
        &receipt.path,
        LANDING_SERVICE,
        &mut progress,
    )
    .await?;
    progress(StreamProgress::Asked {
        service: LANDING_SERVICE,
        node: hex0x(&landing_key),
    });
    let event = exchange(&mut stream, &mut machine, &request.bytes).await;
    drop(stream);
    let _ = circuit.destroy().await;
    match event {
        Some(CreatorEvent::Created {
            record,
            record_bytes,
            ..
        }) => {
            progress(StreamProgress::StreamCreated {
                stream_id: hex0x(&record.stream_id().0),
            });
            Ok(CreatedStream {
                record,
                record_bytes,
                path: path.iter().map(RelayNode::key).collect(),
            })
        }
        Some(CreatorEvent::Failed(e)) => Err(failure(LANDING_SERVICE, &landing_key, timeout, e)),
        Some(_) | None => Err(failure(
            LANDING_SERVICE,
            &landing_key,
            timeout,
            StreamError::Ended {
                machine: "stream creator",
            },
        )),
    }
}

/// The registry to check records against: the registered nodes, all active nodes.
pub fn node_registry(nodes: &[RelayNode]) -> StatusCache {
    let mut cache = StatusCache::default();
    cache.set_nodes(nodes.iter().map(RelayNode::key));
    cache
}

/// The DHT key under which `landing` publishes the record of `stream_id`.
pub fn stream_record_key(landing: &[u8; 32], stream_id: &StreamId) -> RecordKey {
    record_key(RecordKind::Stream, landing, &stream_id.0)
}

/// `&dyn IdentityRegistry` as a sized registry.
struct Registry<'a>(&'a dyn IdentityRegistry);

impl IdentityRegistry for Registry<'_> {
    fn status(&self, key: &[u8; 32]) -> IdentityStatus {
        self.0.status(key)
    }
}

/// Checks a stream's DHT record at `now`: a valid DHT record (signatures, times, owner and
/// publisher active in `registry`) under [`stream_record_key`], owned and published by
/// `landing`, whose value is a stream record of `stream_id` by `landing` that
/// [`verify_stream_record`] accepts.
pub fn verify_dht_stream_record(
    landing: &[u8; 32],
    stream_id: &StreamId,
    signed: &[u8],
    now: u64,
    registry: &dyn IdentityRegistry,
) -> Result<(VerifiedStreamRecord, Vec<u8>), StreamClientError> {
    let bad = |reason: String| StreamClientError::BadRecord {
        stream_id: hex0x(&stream_id.0),
        reason,
    };
    let key = stream_record_key(landing, stream_id);
    let limits = RecordLimits {
        max_value_len: psp_net::stream::record::MAX_RECORD_LEN,
        ..RecordLimits::default()
    };
    let valid = SignedRecord::decode_valid(&key, signed, now, &Registry(registry), &limits)
        .map_err(|e| bad(format!("DHT record: {e}")))?;
    let content = valid.content();
    if content.publisher != *landing {
        return Err(bad(format!(
            "published by {} instead of the landing node",
            hex0x(&content.publisher)
        )));
    }
    let record = verify_stream_record(&content.value, now, registry).map_err(|e| match e {
        psp_net::stream::StreamError::RecordOutsideValidity { expires_at, .. }
            if now >= expires_at =>
        {
            StreamClientError::StreamEnded {
                stream_id: hex0x(&stream_id.0),
                expires_at,
            }
        }
        e => bad(format!("stream record: {e}")),
    })?;
    let r = record.record();
    if r.stream_id != *stream_id || r.landing != *landing {
        return Err(bad(
            "the stream record names another stream or landing node".into(),
        ));
    }
    Ok((record, content.value.clone()))
}

/// Fetches the record of `stream_id` by `landing` through `rpc`'s `psp_dhtGet` and checks it
/// ([`verify_dht_stream_record`]) with the landing node's identity as `chain` has it now.
pub async fn show_stream(
    rpc: &NodeRpc,
    chain: &Chain,
    landing: &[u8; 32],
    stream_id: &StreamId,
) -> Result<StreamView, StreamClientError> {
    let key = stream_record_key(landing, stream_id);
    let found = rpc
        .dht_get(&key)
        .await?
        .ok_or_else(|| StreamClientError::StreamNotFound {
            landing: hex0x(landing),
            stream_id: hex0x(&stream_id.0),
        })?;
    let signed = parse_hex_vec(&found.record, "psp_dhtGet record")?;
    let view = chain.identity_by_key(landing, None).await?;
    let mut registry = StatusCache::default();
    registry.insert(*landing, status_of(view.as_ref()), unix_now());
    let (record, bytes) =
        verify_dht_stream_record(landing, stream_id, &signed, unix_now(), &registry)?;
    Ok(StreamView::new(&record, &bytes))
}

/// Parses a stream id (`0x` + 64 hex digits); errors name `what`.
pub fn parse_stream_id(text: &str, what: &'static str) -> crate::Result<StreamId> {
    crate::parse_hex::<32>(text, what).map(StreamId)
}

#[cfg(test)]
mod tests {
    use super::*;
    use psp_net::crypto::{NodeId, OnionPublic};
    use psp_net::driver::{Keypair as LinkKey, NodeDescriptor};
    use psp_net::receipts::BitrateClass;
    use psp_net::receipts::{KeySize, SigningKey};
    use psp_net::registry::IdentityKind;
    use psp_net::stream::record::{stream_id_for, StreamRecord};

    fn relay(i: u8) -> RelayNode {
        let peer_id = LinkKey::ed25519_from_bytes([i; 32])
            .expect("key")
            .public()
            .to_peer_id();
        RelayNode {
            id: format!("n{i}"),
            descriptor: NodeDescriptor {
                id: NodeId([i; 32]),
                onion_key: OnionPublic([i; 32]),
                peer_id,
                address: "/ip4/127.0.0.1/tcp/1".parse().expect("addr"),
            },
        }
    }

    #[test]
    fn stream_tiers_and_views_convert() {
        let tier = Tier {
            lifetime_secs: 3_600,
            bitrate_class: 2,
            distribution_nodes: 4,
        };
        let params = tier_params(&tier).expect("tier");
        assert_eq!(params.bitrate, BitrateClass::Standard);
        assert_eq!(
            (params.lifetime_secs, params.distribution_nodes),
            (3_600, 4)
        );
        let bad = Tier {
            bitrate_class: 9,
            ..tier
        };
        assert!(tier_params(&bad).is_err());

        let signing = SigningKey::generate(KeySize::Rsa2048).expect("rsa");
        let view = ReceiptKeyView {
            oracle: hex0x(&[7; 32]),
            tier,
            public_key: hex0x(signing.public_key().to_der()),
            expires_at: 99,
        };
        let (oracle, key) = published_key(&view, 5).expect("key");
        assert_eq!(oracle, [7; 32]);
        assert_eq!((key.epoch, key.expires_at, key.tier), (5, 99, params));
        assert_eq!(key.key_id(), signing.public_key().key_id());
        let broken = ReceiptKeyView {
            public_key: "0x3082".into(),
            ..view
        };
        assert!(published_key(&broken, 5).is_err());
    }

    #[test]
    fn stream_paths_end_at_the_target_and_avoid_when_they_can() {
        let nodes: Vec<RelayNode> = (1..=6).map(relay).collect();
        let mut rng = rand::thread_rng();
        for _ in 0..20 {
            let path = path_to(&nodes, &nodes[0], &[[2; 32], [3; 32]], &mut rng).expect("path");
            let keys: Vec<[u8; 32]> = path.iter().map(RelayNode::key).collect();
            assert_eq!(keys.len(), HOPS);
            assert_eq!(keys[2], [1; 32]);
            assert!(keys[..2]
                .iter()
                .all(|k| ![[1; 32], [2; 32], [3; 32]].contains(k)));
            assert_ne!(keys[0], keys[1]);
        }
        // Too few fresh nodes: any others.
        let path = path_to(&nodes[..3], &nodes[0], &[[2; 32]], &mut rng).expect("path");
        assert_eq!(path.len(), HOPS);
        assert!(path_to(&nodes[..2], &nodes[0], &[], &mut rng).is_err());
    }

    #[test]
    fn stream_dht_records_are_checked() {
        use psp_net::dht::RecordContent;
        let landing = Sr25519Keypair::from_seed(&[9; 32]);
        let now = unix_now();
        let stream_id = stream_id_for(&psp_net::receipts::SpendId([4; 32]));
        let record = StreamRecord::sign(
            &landing,
            stream_id,
            FormatFlags::webrtc(),
            now,
            now + 600,
            vec![[1; 32], [2; 32]],
        );
        let content = RecordContent {
            kind: RecordKind::Stream,
            owner: landing.public(),
            topic: stream_id.0,
            publisher: landing.public(),
            seq: now,
            issued_at: now,
            expires_at: now + 300,
            value: record.encode(),
        };
        let signed = content.sign(&landing, &landing).encode();
        let mut registry = StatusCache::default();
        registry.set_nodes([landing.public()]);
        let (checked, bytes) =
            verify_dht_stream_record(&landing.public(), &stream_id, &signed, now, &registry)
                .expect("valid");
        assert_eq!(checked.access_points(), &[[1; 32], [2; 32]]);
        assert_eq!(bytes, record.encode());
        let view = StreamView::new(&checked, &bytes);
        assert_eq!(view.formats, ["webrtc"]);
        assert_eq!(view.access_points.len(), 2);

        let other = StreamId([5; 32]);
        let err = verify_dht_stream_record(&landing.public(), &other, &signed, now, &registry)
            .expect_err("wrong key");
        assert!(matches!(err, StreamClientError::BadRecord { .. }), "{err}");
        let mut revoked = StaticRegistryLike::default();
        revoked.0.push(landing.public());
        let err = verify_dht_stream_record(&landing.public(), &stream_id, &signed, now, &revoked)
            .expect_err("landing unknown");
        assert!(err.to_string().contains("not valid"), "{err}");
    }

    /// Knows only clients.
    #[derive(Default)]
    struct StaticRegistryLike(Vec<[u8; 32]>);

    impl IdentityRegistry for StaticRegistryLike {
        fn status(&self, key: &[u8; 32]) -> IdentityStatus {
            if self.0.contains(key) {
                IdentityStatus::Active(IdentityKind::Client)
            } else {
                IdentityStatus::Unknown
            }
        }
    }

    #[test]
    fn stream_refusals_name_the_node_and_a_hint() {
        let e = failure(
            ORACLE_SERVICE,
            &[1; 32],
            DEFAULT_ANSWER_TIMEOUT,
            StreamError::OracleRefused(OracleRefusal::NotSubscribed),
        );
        assert!(refused_everywhere(&e));
        let text = e.to_string();
        assert!(
            text.contains("NotSubscribed") && text.contains("psp stream subscribe"),
            "{text}"
        );
        let e = failure(
            LANDING_SERVICE,
            &[2; 32],
            DEFAULT_ANSWER_TIMEOUT,
            StreamError::LandingRefused(LandingRefusal::AlreadySpent),
        );
        assert!(e.to_string().contains("spent already"), "{e}");
        let e = failure(
            LANDING_SERVICE,
            &[2; 32],
            Duration::from_secs(7),
            StreamError::TimedOut {
                step: "waiting",
                deadline: 1,
            },
        );
        assert!(
            matches!(e, StreamClientError::TimedOut { secs: 7, .. }),
            "{e}"
        );
        assert!(!refused_everywhere(&e));
    }
}
