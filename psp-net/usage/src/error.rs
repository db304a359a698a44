//! The crate's one error type: why a puzzle, ticket, token, report half or decoder refused
//! its input. Every variant says what a log reader needs to act on it.

use psp_onion::bytes::BytesError;
use psp_receipts::ReceiptError;
use psp_rendezvous::wire::WireError;

/// Short hex of the first bytes of an id, for error messages.
pub(crate) fn short(id: &[u8; 32]) -> [u8; 4] {
    [id[0], id[1], id[2], id[3]]
}

/// Why an input was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum UsageError {
    // --- decoding
    /// The bytes end before a field is complete.
    #[error("malformed {what}: {source}")]
    Truncated {
        /// What was being decoded.
        what: &'static str,
        /// What the reader said.
        source: BytesError,
    },
    /// Bytes left after a complete message.
    #[error("{extra} trailing bytes after {what}")]
    TrailingBytes {
        /// What was decoded.
        what: &'static str,
        /// How many bytes were left.
        extra: usize,
    },
    /// A wire version this code does not know.
    #[error("unsupported {what} version {version}")]
    UnsupportedVersion {
        /// What was decoded.
        what: &'static str,
        /// The version byte found.
        version: u8,
    },
    /// A message kind byte this code does not know.
    #[error("unknown {what} kind {kind}")]
    UnknownKind {
        /// What was decoded.
        what: &'static str,
        /// The kind byte found.
        kind: u8,
    },
    /// A field outside its bounds (also: a message longer than its maximum).
    #[error("{field} = {value} is outside {min}..={max}")]
    OutOfBounds {
        /// The field.
        field: &'static str,
        /// Its value.
        value: u64,
        /// Smallest allowed.
        min: u64,
        /// Largest allowed.
        max: u64,
    },

    // --- puzzle
    /// The puzzle is bound to a block the verifier does not know as recent (stale, from
    /// another fork, or made up).
    #[error("puzzle block {block:02x?}.. is not a recent finalized block")]
    StaleBlock {
        /// First bytes of the block hash.
        block: [u8; 4],
    },
    /// The solution's hash has too few leading zero bits.
    #[error("puzzle solution has {got} leading zero bits, {required} required")]
    WrongSolution {
        /// Leading zero bits of the solution's hash.
        got: u32,
        /// Difficulty required.
        required: u8,
    },
    /// A difficulty the puzzle does not support.
    #[error("puzzle difficulty {0} is above the maximum {max}", max = crate::puzzle::MAX_DIFFICULTY)]
    DifficultyTooHigh(u8),

    // --- tickets
    /// The ticket is for another chain.
    #[error("ticket is for chain {got:02x?}.., this is {expected:02x?}..")]
    WrongChain {
        /// First bytes of the genesis hash expected.
        expected: [u8; 4],
        /// First bytes of the ticket's genesis hash.
        got: [u8; 4],
    },
    /// The ticket's signature does not verify under its oracle's node key.
    #[error("ticket signature does not verify under oracle {oracle:02x?}..")]
    Forged {
        /// First bytes of the oracle named in the ticket.
        oracle: [u8; 4],
    },
    /// The ticket names an oracle that is not in the elected set the host gave.
    #[error("ticket issued by {oracle:02x?}.., not an elected oracle")]
    UnknownOracle {
        /// First bytes of the oracle named in the ticket.
        oracle: [u8; 4],
    },
    /// The ticket's validity ended (past the allowed clock skew).
    #[error("ticket expired at {valid_until} (now {now}, skew {skew} s)")]
    Expired {
        /// End of validity, unix seconds.
        valid_until: u64,
        /// The verifier's time, unix seconds.
        now: u64,
        /// Clock skew allowed, seconds.
        skew: u64,
    },
    /// The ticket's validity has not begun (beyond the allowed clock skew).
    #[error("ticket valid from {valid_from} (now {now}, skew {skew} s)")]
    NotYetValid {
        /// Start of validity, unix seconds.
        valid_from: u64,
        /// The verifier's time, unix seconds.
        now: u64,
        /// Clock skew allowed, seconds.
        skew: u64,
    },
    /// The ticket's window is empty or longer than allowed.
    #[error("ticket window {valid_from}..{valid_until} is empty or longer than {max_secs} s")]
    BadWindow {
        /// Start, unix seconds.
        valid_from: u64,
        /// End, unix seconds.
        valid_until: u64,
        /// Longest window allowed.
        max_secs: u64,
    },
    /// This node already admitted a consumer with this session id.
    #[error("session {session:02x?}.. was already admitted here")]
    Replayed {
        /// First bytes of the session id.
        session: [u8; 4],
    },
    /// The session key presented does not hash to the ticket's session id.
    #[error("session key does not hash to the session id {session:02x?}..")]
    SessionKeyMismatch {
        /// First bytes of the session id.
        session: [u8; 4],
    },
    /// The consumer's signature over this node's challenge does not verify under the session
    /// key: it does not hold the key the ticket was issued for.
    #[error("key proof for session {session:02x?}.. does not verify")]
    WrongKeyProof {
        /// First bytes of the session id.
        session: [u8; 4],
    },
    /// The oracle already issued a ticket for this session key.
    #[error("a ticket was already issued for session {session:02x?}..")]
    AlreadyIssued {
        /// First bytes of the session id.
        session: [u8; 4],
    },
    /// A bounded table (replay set, issued set, elected set) is full of unexpired entries;
    /// the input is refused rather than an entry forgotten early.
    #[error("{what} is full ({max} entries)")]
    Full {
        /// Which table.
        what: &'static str,
        /// Its bound.
        max: usize,
    },

    // --- tokens
    /// A blind RSA or issuing failure from psp-receipts (bad signature, exhausted
    /// subscription, no key for the epoch...).
    #[error("consumer token: {0}")]
    Token(#[from] ReceiptError),
    /// The token is under a key that is not a consumer-token key of that epoch.
    #[error("token key {key_id:02x?}.. is not a consumer-token key of epoch {epoch}")]
    UnknownTokenKey {
        /// First bytes of the key id.
        key_id: [u8; 4],
        /// The epoch asked for.
        epoch: u64,
    },
    /// The token is for another session or epoch than the half it came with.
    #[error("token is for session {token_session:02x?}.. in epoch {token_epoch}, not this one")]
    TokenMismatch {
        /// First bytes of the token's session id.
        token_session: [u8; 4],
        /// The token's epoch.
        token_epoch: u64,
    },

    // --- reports and the collector
    /// A report signature does not verify (the relay's node key, or the client's session
    /// key).
    #[error("{side} report signature for session {session:02x?}.. does not verify")]
    BadReportSignature {
        /// `"relay"` or `"client"`.
        side: &'static str,
        /// First bytes of the session id.
        session: [u8; 4],
    },
    /// The collector was not told about this epoch (no elected set, no token keys).
    #[error("epoch {epoch} is unknown here")]
    UnknownEpoch {
        /// The epoch of the half.
        epoch: u64,
    },
    /// The epoch's halves are no longer collected (pruned, or before the report window).
    #[error("epoch {epoch} has expired (oldest kept {oldest})")]
    ExpiredEpoch {
        /// The epoch of the half.
        epoch: u64,
        /// The oldest epoch still collected.
        oldest: u64,
    },
    /// The same side of this session was already received for the epoch.
    #[error("duplicate {side} half for session {session:02x?}.. in epoch {epoch}")]
    Duplicate {
        /// `"relay"` or `"client"`.
        side: &'static str,
        /// First bytes of the session id.
        session: [u8; 4],
        /// The epoch.
        epoch: u64,
    },
    /// The two halves of a session name different relays.
    #[error("half names relay {got:02x?}.., the session's other half relay {expected:02x?}..")]
    RelayMismatch {
        /// First bytes of the relay already recorded for the session.
        expected: [u8; 4],
        /// First bytes of the relay this half names.
        got: [u8; 4],
    },
    /// The relay's ticket does not cover the reported traffic (issued after it ended, or
    /// ended too long before it started).
    #[error(
        "ticket window {valid_from}..{valid_until} does not cover traffic {start_ms}..{end_ms} ms"
    )]
    TicketDoesNotCover {
        /// Ticket start, unix seconds.
        valid_from: u64,
        /// Ticket end, unix seconds.
        valid_until: u64,
        /// Traffic start, unix ms.
        start_ms: u64,
        /// Traffic end, unix ms.
        end_ms: u64,
    },
    /// The relay's ticket is for another session than its report.
    #[error("relay half for session {session:02x?}.. carries a ticket for another session")]
    TicketForOtherSession {
        /// First bytes of the report's session id.
        session: [u8; 4],
    },
    /// The meter tracks as many sessions as it allows.
    #[error("meter tracks {max} sessions already")]
    MeterFull {
        /// The bound.
        max: usize,
    },
    /// The meter does not know this session (never admitted).
    #[error("session {session:02x?}.. is not metered here")]
    UnknownSession {
        /// First bytes of the session id.
        session: [u8; 4],
    },

    // --- the usage service
    /// A usage stream's framing is lost: a length prefix outside the frame bounds (shorter than
    /// a body header, or longer than the largest usage message).
    #[error("malformed {what}: {source}")]
    Framing {
        /// What was being read.
        what: &'static str,
        /// What the deframer said.
        source: WireError,
    },
    /// A message the peer may not send here: an answer sent to the service, or a request
    /// where an answer was expected.
    #[error("unexpected {message} while {state}")]
    UnexpectedMessage {
        /// The message's name.
        message: &'static str,
        /// What the receiver was waiting for.
        state: &'static str,
    },
    /// The usage service holds as many request streams as it allows; retry later.
    #[error("the usage service holds {max} request streams already")]
    TooManyStreams {
        /// The bound.
        max: usize,
    },
}

impl UsageError {
    /// Maps a reader error for `what`.
    pub(crate) fn truncated(what: &'static str) -> impl Fn(BytesError) -> UsageError {
        move |source| UsageError::Truncated { what, source }
    }
}
