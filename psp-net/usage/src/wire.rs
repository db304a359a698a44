//! The wire format of the oracle's `usage` service, and the client's side of it.
//!
//! On a circuit stream every message is one frame, framed as every node service frames
//! (`psp-rendezvous`'s codec and [`Deframer`], as `psp-stream` does):
//!
//! | field | bytes |
//! |---|---|
//! | body length `n` (big-endian) | 2 |
//! | version = [`USAGE_WIRE_VERSION`] | 1 |
//! | message type | 1 |
//! | fields | `n − 2` |
//!
//! | type | message | direction | fields |
//! |---|---|---|---|
//! | 1 | `TicketRequest` | client → oracle | [`Solution`] (73) |
//! | 2 | `Ticket` | oracle → client | [`SignedTicket`] (177) |
//! | 3 | `Report` | client or relay → oracle | [`Half`] (335 or 523..779) |
//! | 4 | `Accepted` | oracle → client | none |
//! | 5 | `Refused` | oracle → client | [`UsageRefusal`] code (1) |
//!
//! The fields are the pieces' own encodings, each with its own version byte, and run to the
//! end of the body, so no inner length is needed. Decoding is strict (known version and type,
//! exact lengths, no trailing bytes, at most [`MAX_USAGE_BODY_LEN`]), checks no signature and
//! never panics. An unknown refusal code is a decode error, not `Other`: as with the other
//! services' reason codes, a new code comes with a new wire version.
//!
//! The client side is [`request_ticket`] / [`deliver`] (the one frame to write) and
//! [`AnswerReader`] (bytes from the oracle until its one answer is whole).

use psp_onion::bytes::Reader;
use psp_rendezvous::wire::codec::{finish_frame, start_frame};
use psp_rendezvous::wire::{Deframer, BODY_HEADER_LEN, MAX_MESSAGE_LEN};

use crate::puzzle::Solution;
use crate::report::{Half, MAX_HALF_LEN};
use crate::ticket::SignedTicket;
use crate::UsageError;

/// Wire version of the `usage` service's messages, the first byte of every body.
pub const USAGE_WIRE_VERSION: u8 = 1;

/// Largest body: header 2 + the largest field, a client half of [`MAX_HALF_LEN`] = 779
/// bytes, = 781 bytes (a solution is 73, a ticket 177), well within the shared
/// [`MAX_MESSAGE_LEN`] of 8 KiB. The service refuses a stream buffering more than a frame of
/// this size, so a request stream holds at most 2 + 781 bytes.
pub const MAX_USAGE_BODY_LEN: usize = BODY_HEADER_LEN + MAX_HALF_LEN;
const _: () = assert!(MAX_USAGE_BODY_LEN <= MAX_MESSAGE_LEN);

/// Why the oracle refused a request: a reason the client can act on. The byte on the wire
/// is the discriminant.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
#[repr(u8)]
#[non_exhaustive]
pub enum UsageRefusal {
    /// The frame or message did not decode, or was not a request (one request per stream).
    Malformed = 1,
    /// The puzzle's block is not a recent finalized block here: solve again on a newer one.
    StalePuzzle = 2,
    /// The nonce does not solve the puzzle at this oracle's difficulty.
    WrongSolution = 3,
    /// This oracle already issued a ticket for the session key: use it, or a new key.
    AlreadyIssued = 4,
    /// A bounded table of the oracle is full (streams, issued tickets, pending halves):
    /// retry later.
    Busy = 5,
    /// Too late or too early: a ticket's validity does not cover its use, or the half's
    /// epoch is no longer collected.
    Expired = 6,
    /// A signature or binding does not verify: the ticket's, the report's, a key proof, or a
    /// ticket for another session.
    Forged = 7,
    /// This side of the session was already received (or the session is paired).
    Duplicate = 8,
    /// The oracle does not know the half's epoch (not opened yet, or never).
    UnknownEpoch = 9,
    /// The half's ticket names an oracle not elected in any epoch this oracle keeps.
    WrongOracle = 10,
    /// The consumer token is refused: not under a token key of the epoch, for another
    /// session or epoch, or its signature does not verify.
    BadToken = 11,
    /// The half names another relay than the session's other half.
    RelayMismatch = 12,
    /// The ticket is for another chain.
    WrongChain = 13,
    /// Anything else (the oracle's configuration, a state the requester cannot change).
    Other = 255,
}

const REFUSALS: [UsageRefusal; 14] = [
    UsageRefusal::Malformed,
    UsageRefusal::StalePuzzle,
    UsageRefusal::WrongSolution,
    UsageRefusal::AlreadyIssued,
    UsageRefusal::Busy,
    UsageRefusal::Expired,
    UsageRefusal::Forged,
    UsageRefusal::Duplicate,
    UsageRefusal::UnknownEpoch,
    UsageRefusal::WrongOracle,
    UsageRefusal::BadToken,
    UsageRefusal::RelayMismatch,
    UsageRefusal::WrongChain,
    UsageRefusal::Other,
];

impl UsageRefusal {
    /// The byte on the wire.
    pub const fn code(self) -> u8 {
        self as u8
    }

    /// The refusal of a wire byte, if it has one.
    pub fn from_code(code: u8) -> Option<Self> {
        REFUSALS.into_iter().find(|r| r.code() == code)
    }
}

impl UsageError {
    /// The reason code the `usage` service answers this error with.
    pub fn refusal(&self) -> UsageRefusal {
        use UsageError as E;
        use UsageRefusal as R;
        match self {
            E::Truncated { .. }
            | E::TrailingBytes { .. }
            | E::UnsupportedVersion { .. }
            | E::UnknownKind { .. }
            | E::OutOfBounds { .. }
            | E::Framing { .. }
            | E::UnexpectedMessage { .. } => R::Malformed,
            E::StaleBlock { .. } => R::StalePuzzle,
            E::WrongSolution { .. } => R::WrongSolution,
            E::AlreadyIssued { .. } => R::AlreadyIssued,
            E::Full { .. } | E::MeterFull { .. } | E::TooManyStreams { .. } => R::Busy,
            E::Expired { .. }
            | E::NotYetValid { .. }
            | E::BadWindow { .. }
            | E::TicketDoesNotCover { .. }
            | E::ExpiredEpoch { .. } => R::Expired,
            E::Forged { .. }
            | E::SessionKeyMismatch { .. }
            | E::WrongKeyProof { .. }
            | E::BadReportSignature { .. }
            | E::TicketForOtherSession { .. } => R::Forged,
            E::Duplicate { .. } | E::Replayed { .. } => R::Duplicate,
            E::UnknownEpoch { .. } => R::UnknownEpoch,
            E::UnknownOracle { .. } => R::WrongOracle,
            E::Token(_) | E::UnknownTokenKey { .. } | E::TokenMismatch { .. } => R::BadToken,
            E::RelayMismatch { .. } => R::RelayMismatch,
            E::WrongChain { .. } => R::WrongChain,
            E::DifficultyTooHigh(_) | E::UnknownSession { .. } => R::Other,
        }
    }
}

/// Every message on a stream to the `usage` service; see the module docs for the layout.
#[derive(Clone, PartialEq, Eq, Debug)]
#[non_exhaustive]
pub enum UsageMsg {
    /// Client → oracle: a solved puzzle, for a session ticket.
    TicketRequest(Solution),
    /// Oracle → client: the ticket.
    Ticket(SignedTicket),
    /// Client or relay → oracle: one side's usage of a session in an epoch.
    Report(Half),
    /// Oracle → client: the half was taken (held, or paired with the other side).
    Accepted,
    /// Oracle → client: refused, and why.
    Refused(UsageRefusal),
}

mod types {
    pub const TICKET_REQUEST: u8 = 0x01;
    pub const TICKET: u8 = 0x02;
    pub const REPORT: u8 = 0x03;
    pub const ACCEPTED: u8 = 0x04;
    pub const REFUSED: u8 = 0x05;
}

impl UsageMsg {
    /// The message's name, for logs and errors.
    pub fn name(&self) -> &'static str {
        match self {
            Self::TicketRequest(_) => "TicketRequest",
            Self::Ticket(_) => "Ticket",
            Self::Report(_) => "Report",
            Self::Accepted => "Accepted",
            Self::Refused(_) => "Refused",
        }
    }

    /// Whether the message is a request (sent to the oracle), not an answer.
    pub fn is_request(&self) -> bool {
        matches!(self, Self::TicketRequest(_) | Self::Report(_))
    }

    /// The frame to write on the stream: length prefix and body.
    pub fn encode(&self) -> Vec<u8> {
        use types::*;
        let out = match self {
            Self::TicketRequest(solution) => {
                let mut out = start_frame(USAGE_WIRE_VERSION, TICKET_REQUEST);
                out.extend_from_slice(&solution.encode());
                out
            }
            Self::Ticket(ticket) => {
                let mut out = start_frame(USAGE_WIRE_VERSION, TICKET);
                out.extend_from_slice(&ticket.encode());
                out
            }
            Self::Report(half) => {
                let mut out = start_frame(USAGE_WIRE_VERSION, REPORT);
                out.extend_from_slice(&half.encode());
                out
            }
            Self::Accepted => start_frame(USAGE_WIRE_VERSION, ACCEPTED),
            Self::Refused(reason) => {
                let mut out = start_frame(USAGE_WIRE_VERSION, REFUSED);
                out.push(reason.code());
                out
            }
        };
        finish_frame(out)
    }

    /// Decodes one body (as the [`Deframer`] yields it, without the length prefix). Strict;
    /// checks no signature.
    pub fn decode(body: &[u8]) -> Result<Self, UsageError> {
        use types::*;
        const WHAT: &str = "usage message";
        if body.len() > MAX_USAGE_BODY_LEN {
            return Err(UsageError::OutOfBounds {
                field: "usage message length",
                value: body.len() as u64,
                min: BODY_HEADER_LEN as u64,
                max: MAX_USAGE_BODY_LEN as u64,
            });
        }
        let mut r = Reader::new(body);
        let t = UsageError::truncated(WHAT);
        let version = r.u8().map_err(&t)?;
        if version != USAGE_WIRE_VERSION {
            return Err(UsageError::UnsupportedVersion {
                what: WHAT,
                version,
            });
        }
        let kind = r.u8().map_err(&t)?;
        let fields = r.take(r.remaining()).map_err(&t)?;
        Ok(match kind {
            TICKET_REQUEST => Self::TicketRequest(Solution::decode(fields)?),
            TICKET => Self::Ticket(SignedTicket::decode(fields)?),
            REPORT => Self::Report(Half::decode(fields)?),
            ACCEPTED => {
                no_more("Accepted", fields)?;
                Self::Accepted
            }
            REFUSED => {
                let (&code, rest) = fields.split_first().ok_or(UsageError::OutOfBounds {
                    field: "Refused body length",
                    value: 0,
                    min: 1,
                    max: 1,
                })?;
                no_more("Refused", rest)?;
                let reason = UsageRefusal::from_code(code).ok_or(UsageError::UnknownKind {
                    what: "usage refusal code",
                    kind: code,
                })?;
                Self::Refused(reason)
            }
            kind => return Err(UsageError::UnknownKind { what: WHAT, kind }),
        })
    }
}

fn no_more(what: &'static str, rest: &[u8]) -> Result<(), UsageError> {
    match rest.len() {
        0 => Ok(()),
        extra => Err(UsageError::TrailingBytes { what, extra }),
    }
}

/// The frame a client writes to ask for a ticket (the stream's only request).
pub fn request_ticket(solution: &Solution) -> Vec<u8> {
    UsageMsg::TicketRequest(*solution).encode()
}

/// The frame a client (or relay) writes to deliver a report half (the stream's only request).
pub fn deliver(half: &Half) -> Vec<u8> {
    UsageMsg::Report(half.clone()).encode()
}

/// Reads the oracle's one answer from the bytes of a request stream: feed it what arrives
/// until it yields the answer, then close the stream. Holds at most one incomplete frame
/// (≤ 2 + 8 192 bytes).
#[derive(Debug, Default, Clone)]
pub struct AnswerReader {
    deframer: Deframer,
}

impl AnswerReader {
    /// A reader for a fresh stream.
    pub fn new() -> Self {
        Self::default()
    }

    /// Feeds bytes the oracle sent. `Ok(Some(_))` once the first whole message arrived (an
    /// answer: `Ticket`, `Accepted` or `Refused`); `Ok(None)` while it is incomplete. Refused:
    /// lost framing ([`UsageError::Framing`]), a message that does not decode, a request
    /// ([`UsageError::UnexpectedMessage`]). The oracle sends one answer and closes: stop
    /// feeding once it came (later frames of the same call are dropped).
    pub fn feed(&mut self, bytes: &[u8]) -> Result<Option<UsageMsg>, UsageError> {
        let bodies = self
            .deframer
            .feed(bytes)
            .map_err(|source| UsageError::Framing {
                what: "usage answer frame",
                source,
            })?;
        let Some(body) = bodies.into_iter().next() else {
            return Ok(None);
        };
        let msg = UsageMsg::decode(&body)?;
        if msg.is_request() {
            return Err(UsageError::UnexpectedMessage {
                message: msg.name(),
                state: "awaiting the oracle's answer",
            });
        }
        Ok(Some(msg))
    }
}
