//! Session tickets: the oracle's signed statement that a session id may consume streams for a
//! while, and the distribution node's admission check.
//!
//! An oracle that verified a puzzle ([`crate::puzzle`]) signs, with its node key, a
//! [`SessionTicket`]: the chain, the session id (the hash of the client's session key), its
//! own node id and a validity window in unix seconds. The ticket names nothing about the
//! client but its anonymous session key. A distribution node admits a consumer when
//! [`TicketGate::admit`] accepts its [`Admission`]: the ticket, the session key, and the key's
//! signature over a challenge that names this node, the stream and a fresh nonce of this
//! node's choosing — so a ticket seen on the wire is useless to anyone without the key.
//!
//! Ticket wire format (177 bytes, integers big-endian); the signature is the oracle's sr25519
//! signature over [`TICKET_CONTEXT`] ‖ the first 113 bytes:
//!
//! | offset | len | field |
//! |---|---|---|
//! | 0 | 1 | version (1) |
//! | 1 | 32 | genesis hash |
//! | 33 | 32 | session id |
//! | 65 | 32 | oracle node id |
//! | 97 | 8 | valid from, unix seconds |
//! | 105 | 8 | valid until, unix seconds (exclusive) |
//! | 113 | 64 | signature |
//!
//! Admission wire format (274 bytes): version (1) ‖ ticket (177) ‖ session key (32) ‖ key
//! proof (64), the proof being the session key's signature over [`key_proof_message`].
//!
//! Decoding checks no signature and no time: [`SignedTicket`] is unchecked, and only
//! [`TicketGate::admit`] yields an [`AdmittedSession`].

use std::collections::{BTreeSet, HashMap, HashSet};

use psp_onion::bytes::Reader;
use psp_onion::crypto::{sr25519_verify, NodeId, Sr25519Keypair, Sr25519Signature};
use psp_primitives::rewards::{session_id_of, SessionId, SessionKey};

use crate::error::short;
use crate::puzzle::{PuzzleVerifier, Solution, DEFAULT_DIFFICULTY, DEFAULT_RECENT_BLOCKS};
use crate::UsageError;

/// Domain separation of the ticket signature.
pub const TICKET_CONTEXT: &[u8] = b"psp/usage/ticket/v1";
/// Domain separation of the session key's proof of possession.
pub const KEY_PROOF_CONTEXT: &[u8] = b"psp/usage/key-proof/v1";
/// Wire version of tickets and admissions.
pub const TICKET_VERSION: u8 = 1;
/// The signed body: version 1 + genesis 32 + session 32 + oracle 32 + from 8 + until 8.
pub const TICKET_BODY_LEN: usize = 1 + 32 + 32 + 32 + 8 + 8;
/// A signed ticket: body + 64-byte signature.
pub const TICKET_LEN: usize = TICKET_BODY_LEN + 64;
/// An admission: version 1 + ticket + session key 32 + proof 64.
pub const ADMISSION_LEN: usize = 1 + TICKET_LEN + 32 + 64;
/// Longest validity window a ticket may have: one day. Admission happens within it; the
/// metered session may run on (see [`crate::collect`]).
pub const MAX_TICKET_SECS: u64 = 24 * 3600;

/// The oracle's statement that `session` may consume streams from `valid_from` until
/// `valid_until` (unix seconds, end exclusive).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SessionTicket {
    /// The chain's genesis hash.
    pub genesis: [u8; 32],
    /// The session id: BLAKE2-256 of the client's session key.
    pub session: SessionId,
    /// The issuing oracle's node id.
    pub oracle: NodeId,
    /// Start of validity, unix seconds.
    pub valid_from: u64,
    /// End of validity (exclusive), unix seconds.
    pub valid_until: u64,
}

impl SessionTicket {
    fn body(&self) -> [u8; TICKET_BODY_LEN] {
        let mut out = [0u8; TICKET_BODY_LEN];
        out[0] = TICKET_VERSION;
        out[1..33].copy_from_slice(&self.genesis);
        out[33..65].copy_from_slice(&self.session);
        out[65..97].copy_from_slice(&self.oracle.0);
        out[97..105].copy_from_slice(&self.valid_from.to_be_bytes());
        out[105..113].copy_from_slice(&self.valid_until.to_be_bytes());
        out
    }

    /// The bytes the oracle signs.
    pub fn signing_message(&self) -> Vec<u8> {
        [TICKET_CONTEXT, &self.body()[..]].concat()
    }

    /// Signs the ticket with the oracle's node key (which must be `self.oracle`'s).
    pub fn sign(self, oracle_key: &Sr25519Keypair) -> SignedTicket {
        let signature = oracle_key.sign(&self.signing_message());
        SignedTicket {
            ticket: self,
            signature,
        }
    }
}

/// A ticket with its signature, as decoded: *not checked*.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SignedTicket {
    /// The ticket.
    pub ticket: SessionTicket,
    /// The oracle's sr25519 signature over [`SessionTicket::signing_message`].
    pub signature: Sr25519Signature,
}

impl SignedTicket {
    /// Whether the signature verifies under the oracle the ticket names (checks nothing
    /// else).
    pub fn signature_valid(&self) -> bool {
        sr25519_verify(
            &self.ticket.oracle.0,
            &self.ticket.signing_message(),
            &self.signature,
        )
    }

    /// The wire encoding ([`TICKET_LEN`] bytes).
    pub fn encode(&self) -> [u8; TICKET_LEN] {
        let mut out = [0u8; TICKET_LEN];
        out[..TICKET_BODY_LEN].copy_from_slice(&self.ticket.body());
        out[TICKET_BODY_LEN..].copy_from_slice(&self.signature);
        out
    }

    /// Reads a ticket from `r` (version checked, nothing else).
    pub(crate) fn read(r: &mut Reader<'_>, what: &'static str) -> Result<Self, UsageError> {
        let t = UsageError::truncated(what);
        let version = r.u8().map_err(&t)?;
        if version != TICKET_VERSION {
            return Err(UsageError::UnsupportedVersion { what, version });
        }
        let ticket = SessionTicket {
            genesis: r.array().map_err(&t)?,
            session: r.array().map_err(&t)?,
            oracle: NodeId(r.array().map_err(&t)?),
            valid_from: r.u64().map_err(&t)?,
            valid_until: r.u64().map_err(&t)?,
        };
        let signature = r.array().map_err(&t)?;
        Ok(SignedTicket { ticket, signature })
    }

    /// Strict decoding: version, exact length. Checks no signature and no time.
    pub fn decode(bytes: &[u8]) -> Result<Self, UsageError> {
        const WHAT: &str = "session ticket";
        let mut r = Reader::new(bytes);
        let ticket = Self::read(&mut r, WHAT)?;
        finish(&r, WHAT)?;
        Ok(ticket)
    }
}

pub(crate) fn finish(r: &Reader<'_>, what: &'static str) -> Result<(), UsageError> {
    if r.remaining() != 0 {
        return Err(UsageError::TrailingBytes {
            what,
            extra: r.remaining(),
        });
    }
    Ok(())
}

/// Bounds and timing of a [`TicketIssuer`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IssuerConfig {
    /// Puzzle difficulty, leading zero bits.
    pub difficulty: u8,
    /// Recent finalized blocks accepted for puzzles.
    pub recent_blocks: usize,
    /// How long a ticket is valid, seconds (at most [`MAX_TICKET_SECS`]).
    pub validity_secs: u64,
    /// Unexpired tickets remembered, so one session key gets one ticket; further requests
    /// are refused with [`UsageError::Full`] until some expire (~80 bytes each).
    pub max_issued: usize,
}

impl Default for IssuerConfig {
    /// Default difficulty, 64 recent blocks, one-hour tickets, 100,000 remembered (~8 MB).
    fn default() -> Self {
        IssuerConfig {
            difficulty: DEFAULT_DIFFICULTY,
            recent_blocks: DEFAULT_RECENT_BLOCKS,
            validity_secs: 3_600,
            max_issued: 100_000,
        }
    }
}

/// A set of session ids remembered until an expiry, bounded; the replay set of both the
/// issuer and the gate.
#[derive(Debug, Default)]
struct ExpirySet {
    until: HashMap<SessionId, u64>,
    by_expiry: BTreeSet<(u64, SessionId)>,
}

impl ExpirySet {
    /// Forgets entries whose expiry is at or before `now`.
    fn prune(&mut self, now: u64) {
        while let Some(&(expiry, session)) = self.by_expiry.first() {
            if expiry > now {
                break;
            }
            self.by_expiry.pop_first();
            self.until.remove(&session);
        }
    }

    fn contains(&self, session: &SessionId) -> bool {
        self.until.contains_key(session)
    }

    fn insert(&mut self, session: SessionId, expiry: u64) {
        if let Some(old) = self.until.insert(session, expiry) {
            self.by_expiry.remove(&(old, session));
        }
        self.by_expiry.insert((expiry, session));
    }

    fn len(&self) -> usize {
        self.until.len()
    }
}

/// The oracle's ticket service: puzzle check, one ticket per session key, signing.
#[derive(Debug)]
pub struct TicketIssuer {
    genesis: [u8; 32],
    key: Sr25519Keypair,
    config: IssuerConfig,
    puzzles: PuzzleVerifier,
    issued: ExpirySet,
}

impl TicketIssuer {
    /// An issuer signing with the oracle's node `key` on the chain `genesis`.
    pub fn new(
        genesis: [u8; 32],
        key: Sr25519Keypair,
        config: IssuerConfig,
    ) -> Result<Self, UsageError> {
        if config.validity_secs == 0 || config.validity_secs > MAX_TICKET_SECS {
            return Err(UsageError::OutOfBounds {
                field: "validity_secs",
                value: config.validity_secs,
                min: 1,
                max: MAX_TICKET_SECS,
            });
        }
        let puzzles = PuzzleVerifier::new(
            genesis,
            NodeId(key.public()),
            config.difficulty,
            config.recent_blocks,
        )?;
        Ok(TicketIssuer {
            genesis,
            key,
            config,
            puzzles,
            issued: ExpirySet::default(),
        })
    }

    /// This oracle's node id.
    pub fn oracle(&self) -> NodeId {
        NodeId(self.key.public())
    }

    /// The puzzle side (difficulty, latest block to announce).
    pub fn puzzles(&self) -> &PuzzleVerifier {
        &self.puzzles
    }

    /// Notes a newly finalized block (from the host's finality stream).
    pub fn note_finalized(&mut self, block: [u8; 32]) {
        self.puzzles.note_finalized(block);
    }

    /// Tickets remembered (unexpired).
    pub fn issued_len(&self) -> usize {
        self.issued.len()
    }

    /// Issues a ticket at `now` (unix seconds) for a solved puzzle. Refused: a stale block, a
    /// wrong solution, a session key that already has an unexpired ticket here, a full
    /// issued set.
    pub fn issue(&mut self, now: u64, solution: &Solution) -> Result<SignedTicket, UsageError> {
        self.issued.prune(now);
        let challenge = self.puzzles.verify(solution)?;
        let session = challenge.session();
        if self.issued.contains(&session) {
            return Err(UsageError::AlreadyIssued {
                session: short(&session),
            });
        }
        if self.issued.len() >= self.config.max_issued {
            return Err(UsageError::Full {
                what: "issued-ticket set",
                max: self.config.max_issued,
            });
        }
        let valid_until = now.saturating_add(self.config.validity_secs);
        let ticket = SessionTicket {
            genesis: self.genesis,
            session,
            oracle: self.oracle(),
            valid_from: now,
            valid_until,
        }
        .sign(&self.key);
        self.issued.insert(session, valid_until);
        Ok(ticket)
    }
}

/// The bytes a session key signs to prove possession to a distribution node: the chain, the
/// node, the stream, the node's fresh challenge and the session id.
pub fn key_proof_message(
    genesis: &[u8; 32],
    node: &NodeId,
    stream_id: &[u8; 32],
    challenge: &[u8; 32],
    session: &SessionId,
) -> Vec<u8> {
    [
        KEY_PROOF_CONTEXT,
        genesis,
        &node.0,
        stream_id,
        challenge,
        session,
    ]
    .concat()
}

/// What a consumer hands a distribution node: its ticket, its session key and the key's
/// signature over [`key_proof_message`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Admission {
    /// The oracle's ticket.
    pub ticket: SignedTicket,
    /// The session key whose hash is the ticket's session id.
    pub session_key: SessionKey,
    /// The session key's signature over the node's challenge.
    pub proof: Sr25519Signature,
}

impl Admission {
    /// The consumer's side: proves `session_key` holds the ticket's key for `node`, `stream_id`
    /// and the node's `challenge`.
    pub fn new(
        ticket: SignedTicket,
        session_key: &Sr25519Keypair,
        node: &NodeId,
        stream_id: &[u8; 32],
        challenge: &[u8; 32],
    ) -> Self {
        let message = key_proof_message(
            &ticket.ticket.genesis,
            node,
            stream_id,
            challenge,
            &ticket.ticket.session,
        );
        Admission {
            ticket,
            session_key: session_key.public(),
            proof: session_key.sign(&message),
        }
    }

    /// The wire encoding ([`ADMISSION_LEN`] bytes).
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(ADMISSION_LEN);
        out.push(TICKET_VERSION);
        out.extend_from_slice(&self.ticket.encode());
        out.extend_from_slice(&self.session_key);
        out.extend_from_slice(&self.proof);
        out
    }

    /// Strict decoding: versions, exact length. Checks no signature and no time.
    pub fn decode(bytes: &[u8]) -> Result<Self, UsageError> {
        const WHAT: &str = "admission";
        let mut r = Reader::new(bytes);
        let version = r.u8().map_err(UsageError::truncated(WHAT))?;
        if version != TICKET_VERSION {
            return Err(UsageError::UnsupportedVersion {
                what: WHAT,
                version,
            });
        }
        let ticket = SignedTicket::read(&mut r, WHAT)?;
        let session_key = r.array().map_err(UsageError::truncated(WHAT))?;
        let proof = r.array().map_err(UsageError::truncated(WHAT))?;
        finish(&r, WHAT)?;
        Ok(Admission {
            ticket,
            session_key,
            proof,
        })
    }
}

/// A consumer the gate admitted; only [`TicketGate::admit`] makes one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AdmittedSession {
    ticket: SignedTicket,
    session_key: SessionKey,
}

impl AdmittedSession {
    /// An admitted session without a gate (unit tests of the meters).
    #[cfg(test)]
    pub(crate) fn for_tests(ticket: SignedTicket, session_key: SessionKey) -> Self {
        AdmittedSession {
            ticket,
            session_key,
        }
    }

    /// The session id.
    pub fn session(&self) -> SessionId {
        self.ticket.ticket.session
    }

    /// The consumer's session key.
    pub fn session_key(&self) -> SessionKey {
        self.session_key
    }

    /// The ticket it was admitted with (the relay attaches it to its usage report).
    pub fn ticket(&self) -> &SignedTicket {
        &self.ticket
    }
}

/// Bounds and tolerances of a [`TicketGate`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GateConfig {
    /// Clock skew tolerated at either end of a ticket's window, seconds.
    pub skew_secs: u64,
    /// Longest ticket window accepted, seconds.
    pub max_window_secs: u64,
    /// Unexpired admitted sessions remembered against replay (~80 bytes each); further
    /// admissions are refused with [`UsageError::Full`] until some expire.
    pub max_replay: usize,
    /// Elected oracles accepted at once (current and previous epochs' sets together).
    pub max_oracles: usize,
}

impl Default for GateConfig {
    /// 30 s skew, one-day windows, 100,000 sessions (~8 MB), 128 oracles.
    fn default() -> Self {
        GateConfig {
            skew_secs: 30,
            max_window_secs: MAX_TICKET_SECS,
            max_replay: 100_000,
            max_oracles: 128,
        }
    }
}

/// The distribution node's admission check.
///
/// [`TicketGate::admit`] refuses, cheap checks first: a ticket for another chain
/// ([`UsageError::WrongChain`]), an empty or overlong window ([`UsageError::BadWindow`]), a
/// window not yet begun or already over beyond the skew ([`UsageError::NotYetValid`],
/// [`UsageError::Expired`]), an oracle not in the elected set ([`UsageError::UnknownOracle`]),
/// a session key that does not hash to the ticket's session
/// ([`UsageError::SessionKeyMismatch`]), a session already admitted here
/// ([`UsageError::Replayed`]), a bad oracle signature ([`UsageError::Forged`]), a bad key
/// proof ([`UsageError::WrongKeyProof`]) and a full replay set ([`UsageError::Full`]).
///
/// The replay set is keyed by session id and forgets an entry only once its ticket would be
/// refused as expired anyway (`valid_until + skew`), so forgetting never re-opens a replay.
#[derive(Debug)]
pub struct TicketGate {
    genesis: [u8; 32],
    node: NodeId,
    config: GateConfig,
    elected: HashSet<NodeId>,
    admitted: ExpirySet,
}

impl TicketGate {
    /// A gate for the distribution node `node` on the chain `genesis`, with no elected
    /// oracles yet.
    pub fn new(genesis: [u8; 32], node: NodeId, config: GateConfig) -> Self {
        TicketGate {
            genesis,
            node,
            config,
            elected: HashSet::new(),
            admitted: ExpirySet::default(),
        }
    }

    /// Replaces the oracles whose tickets are accepted: the host passes the elected sets of
    /// the current and the previous epoch (a ticket outlives an epoch boundary). Refused when
    /// more than [`GateConfig::max_oracles`].
    pub fn set_elected(&mut self, oracles: &[NodeId]) -> Result<(), UsageError> {
        let set: HashSet<NodeId> = oracles.iter().copied().collect();
        if set.len() > self.config.max_oracles {
            return Err(UsageError::Full {
                what: "elected oracle set",
                max: self.config.max_oracles,
            });
        }
        self.elected = set;
        Ok(())
    }

    /// Sessions remembered against replay.
    pub fn admitted_len(&self) -> usize {
        self.admitted.len()
    }

    /// Checks an admission at `now` (unix seconds) for `stream_id`, against the `challenge`
    /// this node sent the consumer; see the type's docs for the refusals. Remembers the
    /// session on success.
    pub fn admit(
        &mut self,
        now: u64,
        stream_id: &[u8; 32],
        challenge: &[u8; 32],
        admission: &Admission,
    ) -> Result<AdmittedSession, UsageError> {
        let skew = self.config.skew_secs;
        self.admitted.prune(now);
        let t = &admission.ticket.ticket;
        if t.genesis != self.genesis {
            return Err(UsageError::WrongChain {
                expected: short(&self.genesis),
                got: short(&t.genesis),
            });
        }
        if t.valid_until <= t.valid_from
            || t.valid_until - t.valid_from > self.config.max_window_secs
        {
            return Err(UsageError::BadWindow {
                valid_from: t.valid_from,
                valid_until: t.valid_until,
                max_secs: self.config.max_window_secs,
            });
        }
        if now.saturating_add(skew) < t.valid_from {
            return Err(UsageError::NotYetValid {
                valid_from: t.valid_from,
                now,
                skew,
            });
        }
        if now >= t.valid_until.saturating_add(skew) {
            return Err(UsageError::Expired {
                valid_until: t.valid_until,
                now,
                skew,
            });
        }
        if !self.elected.contains(&t.oracle) {
            return Err(UsageError::UnknownOracle {
                oracle: short(&t.oracle.0),
            });
        }
        if session_id_of(&admission.session_key) != t.session {
            return Err(UsageError::SessionKeyMismatch {
                session: short(&t.session),
            });
        }
        if self.admitted.contains(&t.session) {
            return Err(UsageError::Replayed {
                session: short(&t.session),
            });
        }
        if !admission.ticket.signature_valid() {
            return Err(UsageError::Forged {
                oracle: short(&t.oracle.0),
            });
        }
        let message =
            key_proof_message(&self.genesis, &self.node, stream_id, challenge, &t.session);
        if !sr25519_verify(&admission.session_key, &message, &admission.proof) {
            return Err(UsageError::WrongKeyProof {
                session: short(&t.session),
            });
        }
        if self.admitted.len() >= self.config.max_replay {
            return Err(UsageError::Full {
                what: "replay set",
                max: self.config.max_replay,
            });
        }
        self.admitted
            .insert(t.session, t.valid_until.saturating_add(skew));
        Ok(AdmittedSession {
            ticket: admission.ticket,
            session_key: admission.session_key,
        })
    }
}
