//! Both sides' signed byte counts per session and epoch, and their wire format to an oracle.
//!
//! A distribution (or landing) node runs one [`RelayMeter`]: it meters each admitted session
//! and, when an epoch ends, signs `psp_primitives::rewards::relay_report_message` for every
//! session that carried bytes with its node key, yielding [`RelayHalf`]s. A consumer runs one
//! [`ClientMeter`] per session: when the epoch ends it signs
//! `client_report_message` with its session key and attaches the epoch's consumer token,
//! yielding a [`ClientHalf`]. Both go to every elected oracle — the consumer's over a circuit,
//! so the oracle learns only the session key. The messages are the chain's own, byte for
//! byte, so what the oracle pairs is what `pallet-psp-rewards` verifies.
//!
//! Each side measures its own interval: `start_ms` is the first metered byte in the epoch,
//! `end_ms` one millisecond after the last. Bytes are kept in [`SLICE_MS`] slices until the
//! epoch is cut at its boundary's *chain time* (`end_epoch_at`: the time the next epoch
//! started, read from chain once it is known), so both sides cut at the same instant to
//! within one slice whenever each of them learns of the new epoch; the pallet's tolerance
//! absorbs the frames in flight across it.
//!
//! Wire format (big-endian). Common header: version (1) ‖ kind (1: relay, 2: client) ‖
//! epoch (4, the chain's `EpochIndex`).
//!
//! | kind | after the header | bytes |
//! |---|---|---|
//! | relay (335 bytes) | session id 32 ‖ relay node id 32 ‖ usage (bytes 8, start ms 8, end ms 8) ‖ relay signature 64 ‖ session ticket 177 | 329 |
//! | client (523..779 bytes) | session key 32 ‖ relay node id 32 ‖ usage 24 ‖ session-key signature 64 ‖ token length 2 ‖ consumer token (363..619) | 517..773 |
//!
//! Decoding checks no signature; [`crate::collect::Collector`] does.

use std::collections::HashMap;

use psp_onion::bytes::Reader;
use psp_onion::crypto::{NodeId, Sr25519Keypair};
use psp_primitives::rewards::{
    client_report_message, relay_report_message, session_id_of, SessionId, SessionKey, SignedUsage,
    Usage,
};
use psp_primitives::staking::EpochIndex;

use crate::error::short;
use crate::ticket::{finish, AdmittedSession, SignedTicket, TICKET_LEN};
use crate::token::{ConsumerToken, MAX_TOKEN_LEN, TOKEN_HEADER_LEN};
use crate::UsageError;

/// Wire version of report halves.
pub const HALF_VERSION: u8 = 1;
/// Kind byte of a relay half.
pub const KIND_RELAY: u8 = 1;
/// Kind byte of a client half.
pub const KIND_CLIENT: u8 = 2;
/// Header: version 1 + kind 1 + epoch 4 (the chain's `EpochIndex`).
pub const HALF_HEADER_LEN: usize = 1 + 1 + 4;
/// Usage on the wire: bytes 8 + start 8 + end 8.
const USAGE_LEN: usize = 8 + 8 + 8;
/// A relay half: header + session 32 + relay 32 + usage 24 + signature 64 + ticket.
pub const RELAY_HALF_LEN: usize = HALF_HEADER_LEN + 32 + 32 + USAGE_LEN + 64 + TICKET_LEN;
/// The longest client half: header + key 32 + relay 32 + usage 24 + signature 64 + token
/// length 2 + the longest token.
pub const MAX_CLIENT_HALF_LEN: usize =
    HALF_HEADER_LEN + 32 + 32 + USAGE_LEN + 64 + 2 + MAX_TOKEN_LEN;
/// The longest half of either kind: what a transport may bound a frame by.
pub const MAX_HALF_LEN: usize = MAX_CLIENT_HALF_LEN;

/// The relay's signed half of one session in one epoch, with the ticket it admitted the
/// consumer under.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RelayHalf {
    /// The epoch.
    pub epoch: EpochIndex,
    /// The session id.
    pub session: SessionId,
    /// The relay's node id (the signer).
    pub relay: NodeId,
    /// What it saw, signed over `relay_report_message`.
    pub report: SignedUsage,
    /// The ticket the consumer was admitted with.
    pub ticket: SignedTicket,
}

/// The consumer's signed half of one session in one epoch, with its consumer token.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientHalf {
    /// The epoch.
    pub epoch: EpochIndex,
    /// The session key (the session id is its hash).
    pub client_key: SessionKey,
    /// The relay that served the session.
    pub relay: NodeId,
    /// What it saw, signed over `client_report_message` with the session key.
    pub report: SignedUsage,
    /// The consumer token backing the session in this epoch.
    pub token: ConsumerToken,
}

impl ClientHalf {
    /// The session id.
    pub fn session(&self) -> SessionId {
        session_id_of(&self.client_key)
    }
}

/// A half of either kind, as delivered to an oracle.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Half {
    /// The relay's half.
    Relay(RelayHalf),
    /// The consumer's half.
    Client(ClientHalf),
}

fn put_usage(out: &mut Vec<u8>, usage: &Usage) {
    out.extend_from_slice(&usage.bytes.to_be_bytes());
    out.extend_from_slice(&usage.start_ms.to_be_bytes());
    out.extend_from_slice(&usage.end_ms.to_be_bytes());
}

fn read_signed_usage(r: &mut Reader<'_>, what: &'static str) -> Result<SignedUsage, UsageError> {
    let t = UsageError::truncated(what);
    let usage = Usage {
        bytes: r.u64().map_err(&t)?,
        start_ms: r.u64().map_err(&t)?,
        end_ms: r.u64().map_err(&t)?,
    };
    Ok(SignedUsage {
        usage,
        signature: r.array().map_err(&t)?,
    })
}

impl Half {
    /// The epoch the half reports.
    pub fn epoch(&self) -> EpochIndex {
        match self {
            Half::Relay(h) => h.epoch,
            Half::Client(h) => h.epoch,
        }
    }

    /// The wire encoding.
    pub fn encode(&self) -> Vec<u8> {
        match self {
            Half::Relay(h) => {
                let mut out = Vec::with_capacity(RELAY_HALF_LEN);
                out.push(HALF_VERSION);
                out.push(KIND_RELAY);
                out.extend_from_slice(&h.epoch.to_be_bytes());
                out.extend_from_slice(&h.session);
                out.extend_from_slice(&h.relay.0);
                put_usage(&mut out, &h.report.usage);
                out.extend_from_slice(&h.report.signature);
                out.extend_from_slice(&h.ticket.encode());
                out
            }
            Half::Client(h) => {
                let mut out = Vec::with_capacity(MAX_CLIENT_HALF_LEN);
                out.push(HALF_VERSION);
                out.push(KIND_CLIENT);
                out.extend_from_slice(&h.epoch.to_be_bytes());
                out.extend_from_slice(&h.client_key);
                out.extend_from_slice(&h.relay.0);
                put_usage(&mut out, &h.report.usage);
                out.extend_from_slice(&h.report.signature);
                // A token is at most MAX_TOKEN_LEN (< 65,536) bytes once decoded or finalized.
                let len = u16::try_from(h.token.encoded_len()).unwrap_or(u16::MAX);
                out.extend_from_slice(&len.to_be_bytes());
                h.token.encode_into(&mut out);
                out
            }
        }
    }

    /// Strict decoding: version, known kind, bounded length, a token whose declared length is
    /// exactly its encoding, no trailing bytes. Checks no signature. Never panics.
    pub fn decode(bytes: &[u8]) -> Result<Self, UsageError> {
        const WHAT: &str = "report half";
        if bytes.len() > MAX_HALF_LEN {
            return Err(UsageError::OutOfBounds {
                field: "report half length",
                value: bytes.len() as u64,
                min: RELAY_HALF_LEN as u64,
                max: MAX_HALF_LEN as u64,
            });
        }
        let t = UsageError::truncated(WHAT);
        let mut r = Reader::new(bytes);
        let version = r.u8().map_err(&t)?;
        if version != HALF_VERSION {
            return Err(UsageError::UnsupportedVersion {
                what: WHAT,
                version,
            });
        }
        let kind = r.u8().map_err(&t)?;
        let epoch = r.u32().map_err(&t)?;
        let half = match kind {
            KIND_RELAY => {
                let session = r.array().map_err(&t)?;
                let relay = NodeId(r.array().map_err(&t)?);
                let report = read_signed_usage(&mut r, WHAT)?;
                let ticket = SignedTicket::read(&mut r, WHAT)?;
                Half::Relay(RelayHalf {
                    epoch,
                    session,
                    relay,
                    report,
                    ticket,
                })
            }
            KIND_CLIENT => {
                let client_key = r.array().map_err(&t)?;
                let relay = NodeId(r.array().map_err(&t)?);
                let report = read_signed_usage(&mut r, WHAT)?;
                let len = usize::from(r.u16().map_err(&t)?);
                if !(TOKEN_HEADER_LEN..=MAX_TOKEN_LEN).contains(&len) {
                    return Err(UsageError::OutOfBounds {
                        field: "token length",
                        value: len as u64,
                        min: TOKEN_HEADER_LEN as u64,
                        max: MAX_TOKEN_LEN as u64,
                    });
                }
                let token = ConsumerToken::decode(r.take(len).map_err(&t)?)?;
                Half::Client(ClientHalf {
                    epoch,
                    client_key,
                    relay,
                    report,
                    token,
                })
            }
            kind => return Err(UsageError::UnknownKind { what: WHAT, kind }),
        };
        finish(&r, WHAT)?;
        Ok(half)
    }
}

/// Width of a metering slice: bytes are kept per slice until an epoch boundary falls
/// behind them, so both ends cut an epoch at the same chain time to within one slice.
pub const SLICE_MS: u64 = 250;
/// Slices kept per session before the two oldest merge (~4 minutes at [`SLICE_MS`]): far
/// more than an epoch boundary takes to become known (its block's finality).
pub const MAX_SLICES: usize = 1_024;

/// Bytes and times metered in one slice (or, after merging, a run of slices).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Slice {
    bytes: u64,
    first_ms: u64,
    last_ms: u64,
}

/// Bytes and times metered for one session and not yet reported, in time slices, so that
/// an epoch can be cut at its boundary's chain time ([`Tally::take_before`]) whenever that
/// time becomes known, not when this side happens to notice the new epoch.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct Tally {
    slices: std::collections::VecDeque<Slice>,
}

impl Tally {
    fn add(&mut self, bytes: u64, now_ms: u64) {
        let slot = now_ms / SLICE_MS;
        match self
            .slices
            .iter_mut()
            .rev()
            .find(|s| s.first_ms / SLICE_MS == slot)
        {
            Some(slice) => {
                slice.bytes = slice.bytes.saturating_add(bytes);
                slice.first_ms = slice.first_ms.min(now_ms);
                slice.last_ms = slice.last_ms.max(now_ms);
            }
            None => {
                let at = self
                    .slices
                    .iter()
                    .rposition(|s| s.first_ms / SLICE_MS < slot)
                    .map_or(0, |i| i + 1);
                self.slices.insert(
                    at,
                    Slice {
                        bytes,
                        first_ms: now_ms,
                        last_ms: now_ms,
                    },
                );
                if self.slices.len() > MAX_SLICES {
                    // Merge the two oldest: old bytes lose their slice, never their count.
                    if let (Some(a), Some(b)) = (self.slices.pop_front(), self.slices.pop_front()) {
                        self.slices.push_front(Slice {
                            bytes: a.bytes.saturating_add(b.bytes),
                            first_ms: a.first_ms.min(b.first_ms),
                            last_ms: a.last_ms.max(b.last_ms),
                        });
                    }
                }
            }
        }
    }

    /// Removes and sums the slices that began before `boundary_ms`: the usage of the epoch
    /// that ended at `boundary_ms`, if any byte was metered in it.
    fn take_before(&mut self, boundary_ms: u64) -> Option<Usage> {
        let mut usage: Option<Usage> = None;
        while let Some(slice) = self.slices.front().copied() {
            if slice.first_ms >= boundary_ms {
                break;
            }
            self.slices.pop_front();
            let u = usage.get_or_insert(Usage {
                bytes: 0,
                start_ms: slice.first_ms,
                end_ms: 0,
            });
            u.bytes = u.bytes.saturating_add(slice.bytes);
            u.start_ms = u.start_ms.min(slice.first_ms);
            u.end_ms = u.end_ms.max(slice.last_ms.saturating_add(1));
        }
        usage
    }

    fn is_empty(&self) -> bool {
        self.slices.is_empty()
    }
}

struct Metered {
    ticket: SignedTicket,
    tally: Tally,
    closed: bool,
}

/// A relay's per-session byte counts for the current epoch.
pub struct RelayMeter {
    genesis: [u8; 32],
    key: Sr25519Keypair,
    max_sessions: usize,
    sessions: HashMap<SessionId, Metered>,
}

impl std::fmt::Debug for RelayMeter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RelayMeter")
            .field("relay", &NodeId(self.key.public()))
            .field("sessions", &self.sessions.len())
            .finish()
    }
}

/// Sessions a relay meters at once by default: far above one node's consumers.
pub const DEFAULT_MAX_METERED: usize = 65_536;

impl RelayMeter {
    /// A meter signing with the relay's node `key` on the chain `genesis`, tracking at most
    /// `max_sessions` sessions.
    pub fn new(genesis: [u8; 32], key: Sr25519Keypair, max_sessions: usize) -> Self {
        RelayMeter {
            genesis,
            key,
            max_sessions,
            sessions: HashMap::new(),
        }
    }

    /// The relay's node id.
    pub fn relay(&self) -> NodeId {
        NodeId(self.key.public())
    }

    /// Sessions tracked.
    pub fn len(&self) -> usize {
        self.sessions.len()
    }

    /// Whether no session is tracked.
    pub fn is_empty(&self) -> bool {
        self.sessions.is_empty()
    }

    /// Starts metering a session the ticket gate admitted. Admitting it again is a no-op.
    pub fn admit(&mut self, admitted: &AdmittedSession) -> Result<(), UsageError> {
        let session = admitted.session();
        if self.sessions.contains_key(&session) {
            return Ok(());
        }
        if self.sessions.len() >= self.max_sessions {
            return Err(UsageError::MeterFull {
                max: self.max_sessions,
            });
        }
        self.sessions.insert(
            session,
            Metered {
                ticket: *admitted.ticket(),
                tally: Tally::default(),
                closed: false,
            },
        );
        Ok(())
    }

    /// Counts `bytes` carried for `session` at `now_ms` (unix ms), either direction.
    pub fn record(
        &mut self,
        session: &SessionId,
        bytes: u64,
        now_ms: u64,
    ) -> Result<(), UsageError> {
        let metered = self
            .sessions
            .get_mut(session)
            .ok_or(UsageError::UnknownSession {
                session: short(session),
            })?;
        metered.tally.add(bytes, now_ms);
        Ok(())
    }

    /// The consumer left: the session is reported at the end of the epoch, then forgotten.
    pub fn close(&mut self, session: &SessionId) {
        if let Some(m) = self.sessions.get_mut(session) {
            m.closed = true;
        }
    }

    /// Ends `epoch` with everything metered so far: [`Self::end_epoch_at`] with no
    /// boundary.
    pub fn end_epoch(&mut self, epoch: EpochIndex) -> Vec<RelayHalf> {
        self.end_epoch_at(epoch, u64::MAX)
    }

    /// Ends `epoch` at `boundary_ms`, the chain time (unix ms) the next epoch started: signs
    /// a half for every session that carried bytes before it, keeps what came after for the
    /// next epoch, and forgets closed sessions with nothing left to report.
    pub fn end_epoch_at(&mut self, epoch: EpochIndex, boundary_ms: u64) -> Vec<RelayHalf> {
        let relay = self.relay();
        let mut halves = Vec::new();
        for (session, metered) in &mut self.sessions {
            let Some(usage) = metered.tally.take_before(boundary_ms) else {
                continue;
            };
            let message = relay_report_message(&self.genesis, epoch, session, &relay.0, &usage);
            halves.push(RelayHalf {
                epoch,
                session: *session,
                relay,
                report: SignedUsage {
                    usage,
                    signature: self.key.sign(&message),
                },
                ticket: metered.ticket,
            });
        }
        self.sessions
            .retain(|_, m| !(m.closed && m.tally.is_empty()));
        halves
    }
}

/// A consumer's byte count for one session (one session key, one relay).
pub struct ClientMeter {
    genesis: [u8; 32],
    key: Sr25519Keypair,
    relay: NodeId,
    tally: Tally,
}

impl std::fmt::Debug for ClientMeter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientMeter")
            .field("relay", &self.relay)
            .field("tally", &self.tally)
            .finish()
    }
}

impl ClientMeter {
    /// A meter for the session of `session_key` served by `relay`.
    pub fn new(genesis: [u8; 32], session_key: Sr25519Keypair, relay: NodeId) -> Self {
        ClientMeter {
            genesis,
            key: session_key,
            relay,
            tally: Tally::default(),
        }
    }

    /// The session id.
    pub fn session(&self) -> SessionId {
        session_id_of(&self.key.public())
    }

    /// Counts `bytes` received (or sent) at `now_ms` (unix ms).
    pub fn record(&mut self, bytes: u64, now_ms: u64) {
        self.tally.add(bytes, now_ms);
    }

    /// Ends `epoch` with everything metered so far: [`Self::end_epoch_at`] with no
    /// boundary.
    pub fn end_epoch(
        &mut self,
        epoch: EpochIndex,
        token: ConsumerToken,
    ) -> Result<Option<ClientHalf>, UsageError> {
        self.end_epoch_at(epoch, token, u64::MAX)
    }

    /// Drops what was metered before `start_ms` (an epoch this consumer holds no token for,
    /// so cannot report); returns the bytes dropped.
    pub fn discard_before(&mut self, start_ms: u64) -> u64 {
        self.tally.take_before(start_ms).map_or(0, |u| u.bytes)
    }

    /// Ends `epoch` at `boundary_ms` (the chain time the next epoch started; bytes after it
    /// stay for the next epoch): signs the half with the session key and attaches `token`
    /// (the epoch's consumer token for this session). `None` when nothing was metered
    /// before the boundary; refused when the token is for another session or epoch.
    pub fn end_epoch_at(
        &mut self,
        epoch: EpochIndex,
        token: ConsumerToken,
        boundary_ms: u64,
    ) -> Result<Option<ClientHalf>, UsageError> {
        let session = self.session();
        if token.session != session || token.epoch != u64::from(epoch) {
            return Err(UsageError::TokenMismatch {
                token_session: short(&token.session),
                token_epoch: token.epoch,
            });
        }
        let Some(usage) = self.tally.take_before(boundary_ms) else {
            return Ok(None);
        };
        let message = client_report_message(&self.genesis, epoch, &session, &self.relay.0, &usage);
        Ok(Some(ClientHalf {
            epoch,
            client_key: self.key.public(),
            relay: self.relay,
            report: SignedUsage {
                usage,
                signature: self.key.sign(&message),
            },
            token,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_epoch_is_cut_at_its_boundary_time_not_when_the_cut_is_made() {
        let mut tally = Tally::default();
        for t in (1_000..3_000).step_by(100) {
            tally.add(10, t);
        }
        // Out of order (a late frame) still lands in its slice.
        tally.add(5, 1_050);
        let before = tally.take_before(2_000).expect("bytes before the boundary");
        assert_eq!(before.bytes, 10 * 10 + 5);
        assert_eq!((before.start_ms, before.end_ms), (1_000, 1_901));
        assert_eq!(tally.take_before(2_000), None, "nothing twice");
        let after = tally.take_before(u64::MAX).expect("the rest");
        assert_eq!(after.bytes, 10 * 10);
        assert_eq!((after.start_ms, after.end_ms), (2_000, 2_901));
        assert!(tally.is_empty());
    }

    #[test]
    fn merging_old_slices_keeps_every_byte() {
        let mut tally = Tally::default();
        let n = MAX_SLICES as u64 + 100;
        for i in 0..n {
            tally.add(1, i * SLICE_MS);
        }
        assert!(tally.slices.len() <= MAX_SLICES);
        let all = tally.take_before(u64::MAX).expect("bytes");
        assert_eq!(all.bytes, n);
        assert_eq!(all.start_ms, 0);
    }

    #[test]
    fn a_closed_session_is_kept_until_its_last_bytes_are_reported() {
        let relay = Sr25519Keypair::from_seed(&[1; 32]);
        let oracle = Sr25519Keypair::from_seed(&[2; 32]);
        let session_key = Sr25519Keypair::from_seed(&[3; 32]);
        let session = session_id_of(&session_key.public());
        let ticket = crate::ticket::SessionTicket {
            genesis: [0; 32],
            session,
            oracle: NodeId(oracle.public()),
            valid_from: 0,
            valid_until: 100,
        }
        .sign(&oracle);
        let admitted = AdmittedSession::for_tests(ticket, session_key.public());
        let mut meter = RelayMeter::new([0; 32], relay, 4);
        meter.admit(&admitted).expect("room");
        meter.record(&session, 100, 1_000).expect("admitted");
        meter.record(&session, 50, 5_000).expect("admitted");
        meter.close(&session);
        let first = meter.end_epoch_at(7, 3_000);
        assert_eq!(first.len(), 1);
        assert_eq!(first[0].report.usage.bytes, 100);
        assert_eq!(meter.len(), 1, "bytes after the boundary still to report");
        let second = meter.end_epoch_at(8, 9_000);
        assert_eq!(second[0].report.usage.bytes, 50);
        assert!(meter.is_empty());
    }
}
