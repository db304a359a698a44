//! The oracle's collector: verifies report halves, pairs them by (epoch, session), and hands
//! out batches of `UsageRecord`s for `pallet-psp-rewards::submit_reports(epoch, ...)`.
//!
//! The host tells the collector about each epoch with [`Collector::open_epoch`]: its elected
//! oracles and its consumer-token keys, both read from chain. Halves are accepted only for
//! epochs it was told about and still keeps ([`CollectorConfig::max_epochs`], oldest pruned
//! first); the report window on chain is the epoch after, so three epochs are plenty.
//!
//! A **relay half** is accepted when, cheap checks first: its epoch is kept; this relay has
//! not reported the session yet, its client half (if any) names this relay, and fewer than
//! [`MAX_RELAY_CLAIMS`] relays claim it; there is room; its
//! ticket is for this chain and this session, was signed by an oracle elected in *any epoch
//! the collector keeps* (tickets are issued in one epoch and used in the next), and covers the
//! traffic (issued no later than the traffic's end plus the skew, and not ended more than
//! [`CollectorConfig::max_session_secs`] before it began); the ticket's signature verifies;
//! the relay's signature over `relay_report_message` verifies under the relay it names (so the
//! signer *is* the relay the record credits). Any elected oracle's ticket counts, not only
//! this oracle's: a consumer asks one oracle for its ticket, but every oracle must pair its
//! session, and the quorum on chain needs two thirds of them.
//!
//! A **client half** is accepted when: its epoch is kept; the session (the hash of its key)
//! has no client half yet; there is room;
//! its consumer token is under a token key of that epoch, for that epoch and that session,
//! and its RSA-PSS signature verifies; the session key's signature over
//! `client_report_message` verifies. Naming the relay inside the client's signed message is
//! what refuses "a report from a node not serving that session": the client half pairs with
//! the claim of the relay it names and drops any other relay's claim, and a relay half
//! arriving after it must name the same relay. (Several claims are held because a relay that
//! learned a ticket could otherwise report the session first and block the honest relay.)
//!
//! When both halves are in, the session is *paired*: the [`UsageRecord`] — both signed
//! usages, unchanged — joins the epoch's ready queue, and the slot remembers only that the
//! session is done, so a later half for it is a [`UsageError::Duplicate`]. The collector does
//! not normalize: an inflated relay count is kept as signed, and the chain credits the smaller
//! count (or nothing, beyond the tolerance).
//!
//! Memory per epoch is bounded by [`CollectorConfig::max_pending_per_epoch`] unpaired halves
//! (~200 bytes each) and [`CollectorConfig::max_paired_per_epoch`] paired sessions (~300
//! bytes each, as many as the pallet accepts from one oracle per epoch): with the defaults,
//! about 2.3 MB per epoch and 7 MB for the three epochs kept. Past a bound, halves are refused
//! ([`UsageError::Full`]), never evicted: an attacker who fills the pending table with relay
//! halves needs a registered node and solved puzzles, and with client halves, paid tokens.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};

use psp_onion::crypto::{sr25519_verify, NodeId};
use psp_primitives::rewards::{
    client_report_message, relay_report_message, SessionId, SessionKey, SignedUsage, UsageRecord,
};
use psp_primitives::staking::EpochIndex;

use crate::error::short;
use crate::report::{ClientHalf, Half, RelayHalf};
use crate::token::{TokenKey, TokenKeys};
use crate::UsageError;

/// Elected oracles one epoch may have (the pallet's `MaxOracles` is at most 64).
pub const MAX_ELECTED: usize = 64;

/// Bounds of a [`Collector`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CollectorConfig {
    /// Epochs kept; opening a newer one prunes the oldest.
    pub max_epochs: usize,
    /// Unpaired halves held per epoch.
    pub max_pending_per_epoch: usize,
    /// Paired sessions per epoch: the pallet's `MaxSessionsPerOracle` (more could not be
    /// submitted).
    pub max_paired_per_epoch: usize,
    /// Records per batch: the pallet's `MaxBatchSize`.
    pub max_batch_size: usize,
    /// Clock skew tolerated between a ticket and the traffic, seconds.
    pub skew_secs: u64,
    /// How long a metered session may run past its ticket's window, seconds (a stream
    /// receipt allows at most seven days).
    pub max_session_secs: u64,
}

impl Default for CollectorConfig {
    /// The runtime's values: 2,048 sessions per oracle and epoch, batches of 128; four times
    /// as many pending halves as pairs; three epochs.
    fn default() -> Self {
        CollectorConfig {
            max_epochs: 3,
            max_pending_per_epoch: 8_192,
            max_paired_per_epoch: 2_048,
            max_batch_size: 128,
            skew_secs: 30,
            max_session_secs: 7 * 24 * 3600,
        }
    }
}

/// What the host knows of an epoch from chain.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EpochInfo {
    /// The epoch.
    pub epoch: EpochIndex,
    /// Its elected oracles' node ids (at most [`MAX_ELECTED`]).
    pub elected: Vec<NodeId>,
    /// Its consumer-token keys.
    pub token_keys: Vec<TokenKey>,
}

/// What happened to an accepted half.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Accepted {
    /// Held until the other half arrives.
    Waiting,
    /// The session is paired; its record is ready for a batch.
    Paired,
}

/// Records for one `submit_reports(epoch, records)` call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Batch {
    /// The epoch the records are for.
    pub epoch: EpochIndex,
    /// At most [`CollectorConfig::max_batch_size`] records.
    pub records: Vec<UsageRecord>,
}

/// Counts of one epoch.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EpochStats {
    /// Unpaired halves held.
    pub pending: usize,
    /// Sessions paired (ready or already handed out).
    pub paired: usize,
    /// Paired records not yet handed out in a batch.
    pub ready: usize,
}

#[derive(Clone, Debug)]
struct RelaySide {
    relay: NodeId,
    report: SignedUsage,
}

#[derive(Clone, Debug)]
struct ClientSide {
    client_key: SessionKey,
    relay: NodeId,
    report: SignedUsage,
}

/// Most relays that may claim one session before its client half arrives.
pub const MAX_RELAY_CLAIMS: usize = 4;

/// A session's halves. Several relays may claim a session before the consumer's half says
/// which one served it (a relay that learned a ticket could otherwise block the session by
/// reporting it first); the client's signed half decides, and the other claims are dropped.
#[derive(Clone, Debug)]
enum Slot {
    Open {
        relays: Vec<RelaySide>,
        client: Option<ClientSide>,
    },
    Paired,
}

#[derive(Clone, Debug)]
struct EpochState {
    elected: HashSet<NodeId>,
    tokens: TokenKeys,
    slots: HashMap<SessionId, Slot>,
    pending: usize,
    paired: usize,
    ready: VecDeque<UsageRecord>,
}

/// The oracle's pairing table; see the module docs.
#[derive(Clone, Debug)]
pub struct Collector {
    genesis: [u8; 32],
    config: CollectorConfig,
    epochs: BTreeMap<EpochIndex, EpochState>,
    /// Epochs below this were pruned and are refused as expired.
    horizon: EpochIndex,
}

impl Collector {
    /// An empty collector for the chain `genesis`.
    pub fn new(genesis: [u8; 32], config: CollectorConfig) -> Self {
        Collector {
            genesis,
            config,
            epochs: BTreeMap::new(),
            horizon: 0,
        }
    }

    /// The bounds in force.
    pub fn config(&self) -> &CollectorConfig {
        &self.config
    }

    /// Starts (or updates the chain view of) an epoch. Opening an epoch beyond
    /// [`CollectorConfig::max_epochs`] prunes the oldest, with whatever it still held.
    /// Refused: an epoch already pruned, more than [`MAX_ELECTED`] oracles, malformed token
    /// keys.
    pub fn open_epoch(&mut self, info: EpochInfo) -> Result<(), UsageError> {
        if info.epoch < self.horizon {
            return Err(UsageError::ExpiredEpoch {
                epoch: info.epoch.into(),
                oldest: self.horizon.into(),
            });
        }
        let elected: HashSet<NodeId> = info.elected.iter().copied().collect();
        if elected.len() > MAX_ELECTED {
            return Err(UsageError::Full {
                what: "elected oracle set",
                max: MAX_ELECTED,
            });
        }
        let tokens = TokenKeys::new(info.epoch.into(), info.token_keys)?;
        match self.epochs.get_mut(&info.epoch) {
            Some(state) => {
                state.elected = elected;
                state.tokens = tokens;
            }
            None => {
                self.epochs.insert(
                    info.epoch,
                    EpochState {
                        elected,
                        tokens,
                        slots: HashMap::new(),
                        pending: 0,
                        paired: 0,
                        ready: VecDeque::new(),
                    },
                );
            }
        }
        while self.epochs.len() > self.config.max_epochs.max(1) {
            self.epochs.pop_first();
        }
        if let Some((&oldest, _)) = self.epochs.first_key_value() {
            self.horizon = self.horizon.max(oldest);
        }
        Ok(())
    }

    /// The epochs kept, oldest first.
    pub fn epochs(&self) -> Vec<EpochIndex> {
        self.epochs.keys().copied().collect()
    }

    /// Counts of `epoch` (zeros if not kept).
    pub fn stats(&self, epoch: EpochIndex) -> EpochStats {
        self.epochs
            .get(&epoch)
            .map(|s| EpochStats {
                pending: s.pending,
                paired: s.paired,
                ready: s.ready.len(),
            })
            .unwrap_or_default()
    }

    /// Decodes and takes a half from the wire.
    pub fn receive_bytes(&mut self, bytes: &[u8]) -> Result<Accepted, UsageError> {
        let half = Half::decode(bytes)?;
        self.receive(&half)
    }

    /// Takes a half; see the module docs for what is checked.
    pub fn receive(&mut self, half: &Half) -> Result<Accepted, UsageError> {
        match half {
            Half::Relay(h) => self.receive_relay(h),
            Half::Client(h) => self.receive_client(h),
        }
    }

    fn epoch_mut(&mut self, epoch: EpochIndex) -> Result<&mut EpochState, UsageError> {
        let horizon = self.horizon;
        if epoch < horizon {
            return Err(UsageError::ExpiredEpoch {
                epoch: epoch.into(),
                oldest: horizon.into(),
            });
        }
        self.epochs.get_mut(&epoch).ok_or(UsageError::UnknownEpoch {
            epoch: epoch.into(),
        })
    }

    fn elected_in_any_epoch(&self, oracle: &NodeId) -> bool {
        self.epochs.values().any(|s| s.elected.contains(oracle))
    }

    /// Refuses a half when the table it would go to is full.
    fn room(config: &CollectorConfig, state: &EpochState, pairs: bool) -> Result<(), UsageError> {
        if pairs && state.paired >= config.max_paired_per_epoch {
            return Err(UsageError::Full {
                what: "paired sessions of the epoch",
                max: config.max_paired_per_epoch,
            });
        }
        if !pairs && state.pending >= config.max_pending_per_epoch {
            return Err(UsageError::Full {
                what: "pending halves of the epoch",
                max: config.max_pending_per_epoch,
            });
        }
        Ok(())
    }

    fn receive_relay(&mut self, h: &RelayHalf) -> Result<Accepted, UsageError> {
        let config = self.config.clone();
        let genesis = self.genesis;
        // Cheap checks on the epoch's table first.
        let state = self.epoch_mut(h.epoch)?;
        let pairs = match state.slots.get(&h.session) {
            None => false,
            Some(Slot::Paired) => {
                return Err(UsageError::Duplicate {
                    side: "relay",
                    session: short(&h.session),
                    epoch: h.epoch.into(),
                })
            }
            Some(Slot::Open {
                client: Some(c), ..
            }) if c.relay != h.relay => {
                return Err(UsageError::RelayMismatch {
                    expected: short(&c.relay.0),
                    got: short(&h.relay.0),
                })
            }
            Some(Slot::Open {
                client: Some(_), ..
            }) => true,
            Some(Slot::Open { relays, .. }) => {
                if relays.iter().any(|r| r.relay == h.relay) {
                    return Err(UsageError::Duplicate {
                        side: "relay",
                        session: short(&h.session),
                        epoch: h.epoch.into(),
                    });
                }
                if relays.len() >= MAX_RELAY_CLAIMS {
                    return Err(UsageError::Full {
                        what: "relay claims of the session",
                        max: MAX_RELAY_CLAIMS,
                    });
                }
                false
            }
        };
        Self::room(&config, state, pairs)?;
        // The ticket.
        let t = &h.ticket.ticket;
        if t.genesis != genesis {
            return Err(UsageError::WrongChain {
                expected: short(&genesis),
                got: short(&t.genesis),
            });
        }
        if t.session != h.session {
            return Err(UsageError::TicketForOtherSession {
                session: short(&h.session),
            });
        }
        if !self.elected_in_any_epoch(&t.oracle) {
            return Err(UsageError::UnknownOracle {
                oracle: short(&t.oracle.0),
            });
        }
        let usage = &h.report.usage;
        let issued_in_time = t.valid_from <= (usage.end_ms / 1000).saturating_add(config.skew_secs);
        let not_too_old = usage.start_ms / 1000
            <= t.valid_until
                .saturating_add(config.max_session_secs)
                .saturating_add(config.skew_secs);
        if !issued_in_time || !not_too_old {
            return Err(UsageError::TicketDoesNotCover {
                valid_from: t.valid_from,
                valid_until: t.valid_until,
                start_ms: usage.start_ms,
                end_ms: usage.end_ms,
            });
        }
        if !h.ticket.signature_valid() {
            return Err(UsageError::Forged {
                oracle: short(&t.oracle.0),
            });
        }
        // The relay's own signature: the signer is the relay the record credits.
        let message = relay_report_message(&genesis, h.epoch, &h.session, &h.relay.0, usage);
        if !sr25519_verify(&h.relay.0, &message, &h.report.signature) {
            return Err(UsageError::BadReportSignature {
                side: "relay",
                session: short(&h.session),
            });
        }
        let side = RelaySide {
            relay: h.relay,
            report: h.report.clone(),
        };
        let state = self.epoch_mut(h.epoch)?;
        Ok(Self::settle_relay(state, h.session, side))
    }

    fn receive_client(&mut self, h: &ClientHalf) -> Result<Accepted, UsageError> {
        let config = self.config.clone();
        let genesis = self.genesis;
        let session = h.session();
        let state = self.epoch_mut(h.epoch)?;
        let pairs = match state.slots.get(&session) {
            None => false,
            Some(Slot::Paired)
            | Some(Slot::Open {
                client: Some(_), ..
            }) => {
                return Err(UsageError::Duplicate {
                    side: "client",
                    session: short(&session),
                    epoch: h.epoch.into(),
                })
            }
            Some(Slot::Open { relays, .. }) => relays.iter().any(|r| r.relay == h.relay),
        };
        Self::room(&config, state, pairs)?;
        state.tokens.verify(h.epoch.into(), &session, &h.token)?;
        let message =
            client_report_message(&genesis, h.epoch, &session, &h.relay.0, &h.report.usage);
        if !sr25519_verify(&h.client_key, &message, &h.report.signature) {
            return Err(UsageError::BadReportSignature {
                side: "client",
                session: short(&session),
            });
        }
        let side = ClientSide {
            client_key: h.client_key,
            relay: h.relay,
            report: h.report.clone(),
        };
        Ok(Self::settle_client(state, session, side))
    }

    /// Stores a verified relay half, pairing it with the client half if present (the callers
    /// checked that a present client half names this relay).
    fn settle_relay(state: &mut EpochState, session: SessionId, side: RelaySide) -> Accepted {
        match state.slots.remove(&session) {
            Some(Slot::Open {
                client: Some(c), ..
            }) => {
                // The client half was the only pending half of the session.
                state.pending = state.pending.saturating_sub(1);
                Self::pair(state, session, side, c)
            }
            previous => {
                let mut relays = match previous {
                    Some(Slot::Open { relays, .. }) => relays,
                    _ => Vec::new(),
                };
                relays.push(side);
                state.pending += 1;
                state.slots.insert(
                    session,
                    Slot::Open {
                        relays,
                        client: None,
                    },
                );
                Accepted::Waiting
            }
        }
    }

    /// Stores a verified client half. It names the relay that served the session: the claim
    /// of that relay pairs with it, every other relay's claim is dropped.
    fn settle_client(state: &mut EpochState, session: SessionId, side: ClientSide) -> Accepted {
        let relays = match state.slots.remove(&session) {
            Some(Slot::Open { relays, .. }) => relays,
            _ => Vec::new(),
        };
        state.pending = state.pending.saturating_sub(relays.len());
        match relays.into_iter().find(|r| r.relay == side.relay) {
            Some(r) => Self::pair(state, session, r, side),
            None => {
                state.pending += 1;
                state.slots.insert(
                    session,
                    Slot::Open {
                        relays: Vec::new(),
                        client: Some(side),
                    },
                );
                Accepted::Waiting
            }
        }
    }

    fn pair(state: &mut EpochState, session: SessionId, r: RelaySide, c: ClientSide) -> Accepted {
        state.slots.insert(session, Slot::Paired);
        state.paired += 1;
        state.ready.push_back(UsageRecord {
            session,
            relay: r.relay.0,
            relay_report: r.report,
            client_key: c.client_key,
            client_report: c.report,
        });
        Accepted::Paired
    }

    /// Paired records of `epoch` not yet handed out.
    pub fn ready(&self, epoch: EpochIndex) -> usize {
        self.epochs.get(&epoch).map_or(0, |s| s.ready.len())
    }

    /// Takes the next batch of `epoch`: at most [`CollectorConfig::max_batch_size`] records,
    /// oldest pairs first; `None` when none is ready.
    pub fn take_batch(&mut self, epoch: EpochIndex) -> Option<Batch> {
        let max = self.config.max_batch_size.max(1);
        let state = self.epochs.get_mut(&epoch)?;
        if state.ready.is_empty() {
            return None;
        }
        let n = state.ready.len().min(max);
        Some(Batch {
            epoch,
            records: state.ready.drain(..n).collect(),
        })
    }

    /// Puts back a batch whose submission failed (e.g. the transaction was dropped), ahead of
    /// the records not yet handed out. Ignored if its epoch was pruned meanwhile; the ready
    /// queue never grows beyond [`CollectorConfig::max_paired_per_epoch`].
    pub fn requeue(&mut self, batch: Batch) {
        let max = self.config.max_paired_per_epoch;
        if let Some(state) = self.epochs.get_mut(&batch.epoch) {
            for record in batch.records.into_iter().rev() {
                if state.ready.len() >= max {
                    break;
                }
                state.ready.push_front(record);
            }
        }
    }
}
