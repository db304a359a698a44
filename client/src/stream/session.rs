//! A consumer's side of bandwidth rewards (PSP overview §8.3, issue 14): the session ticket
//! a distribution node asks for, and the usage reports that make the session count.
//!
//! - [`open_session`]: a fresh session key; a recent finalized block (a few blocks behind
//!   the head, so every node has it); the puzzle solved over (block, oracle, key) in a
//!   blocking task; the solution sent to an elected oracle's `usage` service over a 3-hop
//!   circuit, which answers with a [`SignedTicket`]. The oracle learns a random key, never an
//!   identity. Oracles are tried in random order until one issues.
//! - [`Session::headers`]: the WHEP headers that admit the session at one access point (the
//!   ticket, the key, the key's signature over the node, the stream and the block).
//! - [`Reporter`]: with a subscribed identity, a consumer token per epoch
//!   ([`super::token::draw_token`]) and, once an epoch has ended and the chain says when,
//!   the session's signed half of it ([`ClientMeter::end_epoch_at`]) delivered to each of the
//!   epoch's oracles over its own circuit.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use psp_net::crypto::{NodeId, Sr25519Keypair};
use psp_net::stream::record::StreamId;
use psp_net::usage::{
    puzzle::{self, Challenge, Solution},
    report::{ClientMeter, Half},
    service::USAGE_SERVICE,
    ticket::{Admission, SignedTicket},
    token::ConsumerToken,
    wire::{self, AnswerReader, UsageMsg, UsageRefusal},
};
use psp_primitives::rewards::SessionId;
use psp_primitives::staking::{EpochIndex, Role};
use rand::seq::SliceRandom;

use super::{open, StreamClientError, StreamProgress};
use crate::chain::Chain;
use crate::keystore::Keys;
use crate::overlay::{OverlayClient, RelayNode};
use crate::{hex0x, Error};

/// The WHEP header carrying the admission (hex), as distribution nodes read it.
pub const ADMISSION_HEADER: &str = "PSP-Admission";
/// The WHEP header naming the block the admission signs (hex).
pub const CHALLENGE_HEADER: &str = "PSP-Challenge";
/// How far behind the finalized head the puzzle's block is: every node has finalized it and
/// recorded it, even one whose chain feed lags (an oracle making its keys for a new epoch),
/// and it stays within the oracles' and the distribution nodes' window of 64 blocks.
const CHALLENGE_DEPTH: u64 = 10;
/// Puzzle attempts per slice of work between progress checks.
const SOLVE_SLICE: u64 = 1 << 16;

/// What to do about an oracle's refusal of a ticket or a report.
pub fn usage_hint(reason: UsageRefusal) -> &'static str {
    match reason {
        UsageRefusal::StalePuzzle => "the block solved against is no longer recent: retry",
        UsageRefusal::WrongSolution => {
            "the solution has too little work for this oracle: raise --puzzle-bits to the oracle's --usage-puzzle-bits"
        }
        UsageRefusal::Busy => "the oracle is at a limit: retry later or at another oracle",
        _ => "see the oracle's log for the reason",
    }
}

/// A session: its key and ticket, and the block its admissions sign.
pub struct Session {
    key: Sr25519Keypair,
    ticket: SignedTicket,
    block: [u8; 32],
}

impl Session {
    /// The session id (the hash of its key).
    pub fn id(&self) -> SessionId {
        self.ticket.ticket.session
    }

    /// The oracle that issued the ticket.
    pub fn oracle(&self) -> [u8; 32] {
        self.ticket.ticket.oracle.0
    }

    /// The WHEP request headers that admit this session at `node` for `stream`.
    pub fn headers(&self, node: &[u8; 32], stream: &StreamId) -> Vec<(String, String)> {
        let admission = Admission::new(
            self.ticket,
            &self.key,
            &NodeId(*node),
            &stream.0,
            &self.block,
        );
        vec![
            (ADMISSION_HEADER.into(), hex::encode(admission.encode())),
            (CHALLENGE_HEADER.into(), hex::encode(self.block)),
        ]
    }

    /// A meter of this session's bytes from `relay`, signing with the session key.
    pub fn meter(&self, genesis: [u8; 32], relay: &[u8; 32]) -> ClientMeter {
        ClientMeter::new(genesis, self.key.clone(), NodeId(*relay))
    }
}

/// The oracles elected for `epoch` (default: the current one) that are registered nodes.
async fn oracles(
    chain: &Chain,
    nodes: &[RelayNode],
    epoch: Option<u32>,
) -> Result<Vec<RelayNode>, StreamClientError> {
    let elected = chain.staking_elected(Role::Oracle, epoch).await?;
    Ok(elected
        .iter()
        .filter_map(|e| {
            let key = crate::parse_hex::<32>(&e.node, "elected oracle").ok()?;
            nodes.iter().find(|n| n.key() == key).cloned()
        })
        .collect())
}

/// Solves the puzzle of `challenge` at `bits` in a blocking task.
async fn solve(challenge: Challenge, bits: u8) -> Result<u64, StreamClientError> {
    tokio::task::spawn_blocking(move || {
        let mut start = 0u64;
        loop {
            match puzzle::solve(&challenge, bits, start, SOLVE_SLICE) {
                Ok(Some(nonce)) => return Ok(nonce),
                Ok(None) => start = start.saturating_add(SOLVE_SLICE),
                Err(e) => {
                    return Err(StreamClientError::Client(Error::InvalidInput {
                        what: "--puzzle-bits",
                        reason: e.to_string(),
                    }))
                }
            }
        }
    })
    .await
    .map_err(|e| {
        StreamClientError::Client(Error::InvalidInput {
            what: "session puzzle",
            reason: format!("the solving task failed: {e}"),
        })
    })?
}

/// Sends `request` on a fresh circuit to `oracle`'s `usage` service and reads its answer.
async fn ask(
    overlay: &OverlayClient,
    nodes: &[RelayNode],
    oracle: &RelayNode,
    request: &[u8],
    timeout: Duration,
    progress: &mut impl FnMut(StreamProgress),
) -> Result<UsageMsg, StreamClientError> {
    let (_, circuit, mut stream) =
        open(overlay, nodes, oracle, &[], USAGE_SERVICE, progress).await?;
    let node = hex0x(&oracle.key());
    let exchange = async {
        stream.send(request).await.map_err(|e| e.to_string())?;
        let mut reader = AnswerReader::new();
        loop {
            let Some(bytes) = stream.recv().await else {
                return Err("the oracle closed the stream without answering".to_string());
            };
            if let Some(msg) = reader.feed(&bytes).map_err(|e| e.to_string())? {
                return Ok(msg);
            }
        }
    };
    let answer = tokio::time::timeout(timeout, exchange).await;
    drop(stream);
    let _ = circuit.destroy().await;
    match answer {
        Ok(Ok(msg)) => Ok(msg),
        Ok(Err(reason)) => Err(StreamClientError::UsageExchange {
            oracle: node,
            reason,
        }),
        Err(_) => Err(StreamClientError::TimedOut {
            node,
            step: "the usage service's answer".into(),
            secs: timeout.as_secs(),
        }),
    }
}

/// Opens a session: a ticket from an elected oracle for a fresh key, at `bits` of work.
pub async fn open_session(
    chain: &Chain,
    overlay: &OverlayClient,
    nodes: &[RelayNode],
    bits: u8,
    timeout: Duration,
    mut progress: impl FnMut(StreamProgress),
) -> Result<Session, StreamClientError> {
    let mut candidates = oracles(chain, nodes, None).await?;
    if candidates.is_empty() {
        return Err(StreamClientError::NoOracle);
    }
    candidates.shuffle(&mut rand::thread_rng());
    let finalized = chain.finalized_number().await?;
    let block = chain
        .block_hash(finalized.saturating_sub(CHALLENGE_DEPTH))
        .await?;
    let genesis = chain.genesis_hash();
    let mut attempts = Vec::new();
    for oracle in &candidates {
        let key = Sr25519Keypair::from_seed(&rand::random::<[u8; 32]>());
        let challenge = Challenge {
            genesis,
            block,
            oracle: NodeId(oracle.key()),
            session_key: key.public(),
        };
        progress(StreamProgress::Solving { bits });
        let nonce = solve(challenge, bits).await?;
        let solution = Solution {
            block,
            session_key: key.public(),
            nonce,
        };
        let request = wire::request_ticket(&solution);
        match ask(overlay, nodes, oracle, &request, timeout, &mut progress).await {
            Ok(UsageMsg::Ticket(ticket)) if ticket.ticket.session == challenge.session() => {
                return Ok(Session { key, ticket, block })
            }
            Ok(UsageMsg::Refused(reason)) => attempts.push(format!(
                "{}: refused ({reason:?}): {}",
                hex0x(&oracle.key()),
                usage_hint(reason)
            )),
            Ok(other) => attempts.push(format!(
                "{}: answered {} instead of the ticket",
                hex0x(&oracle.key()),
                other.name()
            )),
            Err(e) => attempts.push(e.to_string()),
        }
    }
    Err(StreamClientError::NoTicket { attempts })
}

/// One epoch's token and the oracles to report it to.
struct EpochReport {
    token: ConsumerToken,
    oracles: Vec<RelayNode>,
}

/// A consumer's usage reports for one session; see the module docs.
pub struct Reporter {
    chain: Chain,
    overlay: Arc<OverlayClient>,
    nodes: Vec<RelayNode>,
    keys: Keys,
    certificate: Vec<u8>,
    session: SessionId,
    meter: Arc<Mutex<ClientMeter>>,
    epochs: BTreeMap<EpochIndex, EpochReport>,
    timeout: Duration,
}

/// What a [`Reporter`] did with one epoch.
#[derive(Clone, Debug, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EpochReported {
    /// The epoch.
    pub epoch: EpochIndex,
    /// Bytes reported.
    pub bytes: u64,
    /// Oracles that took the report.
    pub accepted: usize,
    /// Oracles asked.
    pub oracles: usize,
}

impl Reporter {
    /// A reporter of `session`'s `meter`, drawing tokens with the identity in `keys` (its
    /// `certificate` proves it to the oracles).
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        chain: Chain,
        overlay: Arc<OverlayClient>,
        nodes: Vec<RelayNode>,
        keys: Keys,
        certificate: Vec<u8>,
        session: SessionId,
        meter: Arc<Mutex<ClientMeter>>,
        timeout: Duration,
    ) -> Self {
        Self {
            chain,
            overlay,
            nodes,
            keys,
            certificate,
            session,
            meter,
            epochs: BTreeMap::new(),
            timeout,
        }
    }

    fn meter(&self) -> std::sync::MutexGuard<'_, ClientMeter> {
        // A poisoned lock only means a panic between two whole updates.
        self.meter.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Draws the token of the current epoch if not drawn yet; reports every earlier epoch
    /// whose end the chain shows. Returns what was reported.
    pub async fn step(&mut self) -> Result<Vec<EpochReported>, StreamClientError> {
        let current = self
            .chain
            .rewards_status()
            .await?
            .current_epoch
            .ok_or(StreamClientError::NoOracle)?;
        if !self.epochs.contains_key(&current) {
            let token = super::token::draw_token(
                &self.chain,
                &self.overlay,
                &self.nodes,
                &self.keys,
                &self.certificate,
                self.session,
                self.timeout,
                |p| eprintln!("  {p}"),
            )
            .await?;
            let oracles = oracles(&self.chain, &self.nodes, Some(current)).await?;
            self.epochs.insert(current, EpochReport { token, oracles });
        }
        let mut reported = Vec::new();
        let ended: Vec<EpochIndex> = self.epochs.range(..current).map(|(e, _)| *e).collect();
        for epoch in ended {
            let Some(boundary) = self.chain.rewards_epoch_start(epoch + 1).await? else {
                continue;
            };
            if let Some(report) = self.epochs.remove(&epoch) {
                reported.extend(self.report(epoch, report, boundary).await?);
            }
        }
        Ok(reported)
    }

    /// Waits (polling every `poll`) until the current epoch has ended and everything metered
    /// is reported.
    pub async fn finish(
        &mut self,
        poll: Duration,
    ) -> Result<Vec<EpochReported>, StreamClientError> {
        let mut reported = Vec::new();
        let Some(&last) = self.epochs.keys().next_back() else {
            return Ok(reported);
        };
        loop {
            let current = self.chain.rewards_status().await?.current_epoch;
            if current.is_some_and(|c| c > last) {
                if let Some(boundary) = self.chain.rewards_epoch_start(last + 1).await? {
                    let earlier: Vec<EpochIndex> = self.epochs.keys().copied().collect();
                    for epoch in earlier {
                        let start = self.chain.rewards_epoch_start(epoch + 1).await?;
                        if let Some(report) = self.epochs.remove(&epoch) {
                            let at = start.unwrap_or(boundary);
                            reported.extend(self.report(epoch, report, at).await?);
                        }
                    }
                    return Ok(reported);
                }
            }
            tokio::time::sleep(poll).await;
        }
    }

    /// Cuts `epoch` at `boundary_ms` and delivers the half to each of its oracles.
    async fn report(
        &self,
        epoch: EpochIndex,
        report: EpochReport,
        boundary_ms: u64,
    ) -> Result<Option<EpochReported>, StreamClientError> {
        // Bytes from before this epoch belong to one this session holds no token for.
        if let Some(start) = self.chain.rewards_epoch_start(epoch).await? {
            self.meter().discard_before(start);
        }
        let half = self
            .meter()
            .end_epoch_at(epoch, report.token, boundary_ms)
            .map_err(|e| {
                StreamClientError::Client(Error::InvalidInput {
                    what: "consumer token",
                    reason: e.to_string(),
                })
            })?;
        let Some(half) = half else {
            return Ok(None);
        };
        let bytes = half.report.usage.bytes;
        let request = wire::deliver(&Half::Client(half));
        let mut accepted = 0;
        for oracle in &report.oracles {
            let mut quiet = |_: StreamProgress| {};
            match ask(
                &self.overlay,
                &self.nodes,
                oracle,
                &request,
                self.timeout,
                &mut quiet,
            )
            .await
            {
                Ok(UsageMsg::Accepted) => accepted += 1,
                Ok(UsageMsg::Refused(reason)) => eprintln!(
                    "warning: oracle {} refused the usage report of epoch {epoch}: {reason:?}. {}",
                    hex0x(&oracle.key()),
                    usage_hint(reason)
                ),
                Ok(other) => eprintln!(
                    "warning: oracle {} answered {} to the usage report",
                    hex0x(&oracle.key()),
                    other.name()
                ),
                Err(e) => eprintln!("warning: usage report of epoch {epoch} not delivered: {e}"),
            }
        }
        eprintln!(
            "usage of epoch {epoch}: {bytes} bytes reported to {accepted} of {} oracles",
            report.oracles.len()
        );
        Ok(Some(EpochReported {
            epoch,
            bytes,
            accepted,
            oracles: report.oracles.len(),
        }))
    }
}
