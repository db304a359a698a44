//! Messages on a stream to a node's `rendezvous` service.
//!
//! The introducer (Alice) establishes a cookie; the receiver (Bob) joins with it and his
//! handshake reply; from then on the node relays opaque bytes between the two streams.
//!
//! | message | direction | fields (after version and type) |
//! |---|---|---|
//! | `Establish` | Alice → node | cookie 32 |
//! | `Established` | node → Alice | — |
//! | `Join` | Bob → node | cookie 32 · handshake reply (2 + ≤ 256) |
//! | `Joined` | node → Alice | handshake reply (2 + ≤ 256) |
//! | `Linked` | node → Bob | — |
//! | `Relay` | both ways | the rest of the body (≤ 8 190) |
//! | `Refused` | node → either | reason 1 |

use psp_onion::bytes::Reader;

use super::codec::{
    expect_end, finish_frame, put_bytes, read_bytes, read_header, read_rest, start_frame,
};
use super::{BoundedBytes, WireError, BODY_HEADER_LEN, MAX_MESSAGE_LEN, VERSION};
use crate::ids::Cookie;

/// Largest handshake message carried by `Join`/`Joined`: 256 bytes. The reply is
/// 1 + 32 + 64 + 16 = 113 bytes today (see `handshake::REPLY_LEN`); the rest is headroom.
pub const MAX_HANDSHAKE_LEN: usize = 256;
/// Largest `Relay` payload: the body bound minus version and type, 8 192 − 2 = 8 190 bytes.
/// Channel frames are much smaller (one onion cell each).
pub const MAX_RELAY_PAYLOAD_LEN: usize = MAX_MESSAGE_LEN - BODY_HEADER_LEN;

/// A handshake message, as the rendezvous node carries it (it cannot read it).
pub type HandshakeBytes = BoundedBytes<MAX_HANDSHAKE_LEN>;
/// Opaque end-to-end bytes relayed between the joined streams.
pub type RelayPayload = BoundedBytes<MAX_RELAY_PAYLOAD_LEN>;

/// Why the rendezvous node refused.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
#[non_exhaustive]
pub enum RendezvousRefusal {
    /// `Establish` with a cookie already waiting here.
    DuplicateCookie,
    /// `Join` with a cookie nobody established here (or that was already used); the node
    /// closes the stream.
    UnknownCookie,
    /// The node holds as many rendezvous points or links as it allows.
    Busy,
    /// Nobody joined before the cookie expired; the node closes the stream.
    Expired,
    /// The message did not decode or was not expected; the node closes the stream.
    Malformed,
}

const REFUSALS: [RendezvousRefusal; 5] = [
    RendezvousRefusal::DuplicateCookie,
    RendezvousRefusal::UnknownCookie,
    RendezvousRefusal::Busy,
    RendezvousRefusal::Expired,
    RendezvousRefusal::Malformed,
];

/// Every message on a stream to the `rendezvous` service.
#[derive(Clone, PartialEq, Eq, Debug)]
#[non_exhaustive]
pub enum RendezvousMsg {
    /// Alice → node: wait for a join with this cookie.
    Establish(Cookie),
    /// Node → Alice: the cookie is waiting.
    Established,
    /// Bob → node: join the stream that established `cookie`, handing it `reply`.
    Join {
        /// The cookie from the introduction.
        cookie: Cookie,
        /// Bob's handshake reply, for Alice.
        reply: HandshakeBytes,
    },
    /// Node → Alice: Bob joined; his handshake reply.
    Joined {
        /// Bob's handshake reply.
        reply: HandshakeBytes,
    },
    /// Node → Bob: linked to Alice's stream.
    Linked,
    /// Either way, after the link: bytes for the other side.
    Relay(RelayPayload),
    /// Node → either: refused.
    Refused(RendezvousRefusal),
}

mod types {
    pub const ESTABLISH: u8 = 0x01;
    pub const ESTABLISHED: u8 = 0x02;
    pub const JOIN: u8 = 0x03;
    pub const JOINED: u8 = 0x04;
    pub const LINKED: u8 = 0x05;
    pub const RELAY: u8 = 0x06;
    pub const REFUSED: u8 = 0x07;
}

impl RendezvousMsg {
    /// The message's name, for logs and errors.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Establish(_) => "Establish",
            Self::Established => "Established",
            Self::Join { .. } => "Join",
            Self::Joined { .. } => "Joined",
            Self::Linked => "Linked",
            Self::Relay(_) => "Relay",
            Self::Refused(_) => "Refused",
        }
    }

    /// Wraps `bytes` in a `Relay` message, or says they are too long.
    pub fn relay(bytes: Vec<u8>) -> Result<Self, WireError> {
        Ok(Self::Relay(BoundedBytes::new("relay payload", bytes)?))
    }

    /// The frame to write on the stream: length prefix and body.
    pub fn encode(&self) -> Vec<u8> {
        use types::*;
        let out = match self {
            Self::Establish(cookie) => {
                let mut out = start_frame(VERSION, ESTABLISH);
                out.extend_from_slice(&cookie.0);
                out
            }
            Self::Established => start_frame(VERSION, ESTABLISHED),
            Self::Join { cookie, reply } => {
                let mut out = start_frame(VERSION, JOIN);
                out.extend_from_slice(&cookie.0);
                put_bytes(&mut out, reply);
                out
            }
            Self::Joined { reply } => {
                let mut out = start_frame(VERSION, JOINED);
                put_bytes(&mut out, reply);
                out
            }
            Self::Linked => start_frame(VERSION, LINKED),
            Self::Relay(payload) => {
                let mut out = start_frame(VERSION, RELAY);
                out.extend_from_slice(payload.as_slice());
                out
            }
            Self::Refused(reason) => {
                let mut out = start_frame(VERSION, REFUSED);
                // 1-based position; REFUSALS lists every variant.
                let code = REFUSALS.iter().position(|r| r == reason).unwrap_or(0) + 1;
                out.push(u8::try_from(code).unwrap_or(0));
                out
            }
        };
        finish_frame(out)
    }

    /// Decodes one body (as the [`super::Deframer`] yields it, without the length prefix).
    pub fn decode(body: &[u8]) -> Result<Self, WireError> {
        use types::*;
        let mut r = Reader::new(body);
        let msg = match read_header(&mut r, VERSION)? {
            ESTABLISH => Self::Establish(Cookie(r.array()?)),
            ESTABLISHED => Self::Established,
            JOIN => Self::Join {
                cookie: Cookie(r.array()?),
                reply: read_bytes(&mut r, "handshake reply")?,
            },
            JOINED => Self::Joined {
                reply: read_bytes(&mut r, "handshake reply")?,
            },
            LINKED => Self::Linked,
            RELAY => Self::Relay(read_rest(&mut r, "relay payload")?),
            REFUSED => {
                let code = r.u8()?;
                let reason = usize::from(code)
                    .checked_sub(1)
                    .and_then(|i| REFUSALS.get(i))
                    .copied()
                    .ok_or(WireError::InvalidValue {
                        field: "rendezvous refusal reason",
                        value: u64::from(code),
                    })?;
                Self::Refused(reason)
            }
            got => {
                return Err(WireError::UnknownType {
                    service: "rendezvous",
                    got,
                })
            }
        };
        expect_end(&r, msg.name())?;
        Ok(msg)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::Deframer;

    fn round_trip(msg: RendezvousMsg) {
        let frame = msg.encode();
        let bodies = Deframer::default().feed(&frame).unwrap();
        assert_eq!(bodies.len(), 1);
        assert_eq!(RendezvousMsg::decode(&bodies[0]).unwrap(), msg);
        // Every strict prefix of a body is refused, never a panic.
        for cut in 0..bodies[0].len() {
            assert!(RendezvousMsg::decode(&bodies[0][..cut]).is_err() || msg.name() == "Relay");
        }
    }

    #[test]
    fn every_message_round_trips() {
        let reply = HandshakeBytes::new("reply", vec![7; 113]).unwrap();
        round_trip(RendezvousMsg::Establish(Cookie([1; 32])));
        round_trip(RendezvousMsg::Established);
        round_trip(RendezvousMsg::Join {
            cookie: Cookie([2; 32]),
            reply: reply.clone(),
        });
        round_trip(RendezvousMsg::Joined { reply });
        round_trip(RendezvousMsg::Linked);
        round_trip(RendezvousMsg::relay(vec![9; 450]).unwrap());
        round_trip(RendezvousMsg::relay(Vec::new()).unwrap());
        for reason in REFUSALS {
            round_trip(RendezvousMsg::Refused(reason));
        }
    }

    #[test]
    fn known_answers() {
        let mut establish = vec![0, 34, 1, 0x01];
        establish.extend_from_slice(&[0x11; 32]);
        assert_eq!(
            RendezvousMsg::Establish(Cookie([0x11; 32])).encode(),
            establish
        );
        assert_eq!(
            RendezvousMsg::relay(vec![0xaa, 0xbb]).unwrap().encode(),
            [0, 4, 1, 0x06, 0xaa, 0xbb]
        );
        assert_eq!(
            RendezvousMsg::Refused(RendezvousRefusal::UnknownCookie).encode(),
            [0, 3, 1, 0x07, 2]
        );
    }

    #[test]
    fn relay_overhead_is_what_the_constant_says() {
        let frame = RendezvousMsg::relay(vec![0; 100]).unwrap().encode();
        assert_eq!(frame.len(), 100 + crate::wire::RELAY_OVERHEAD);
        assert!(RendezvousMsg::relay(vec![0; MAX_RELAY_PAYLOAD_LEN + 1]).is_err());
        let biggest = RendezvousMsg::relay(vec![0; MAX_RELAY_PAYLOAD_LEN]).unwrap();
        assert_eq!(
            Deframer::default().feed(&biggest.encode()).unwrap().len(),
            1
        );
    }

    #[test]
    fn bad_bytes_are_refused() {
        assert_eq!(
            RendezvousMsg::decode(&[2, 1]),
            Err(WireError::Version { got: 2 })
        );
        assert!(matches!(
            RendezvousMsg::decode(&[1, 0x7f]),
            Err(WireError::UnknownType { got: 0x7f, .. })
        ));
        assert!(matches!(
            RendezvousMsg::decode(&[1, types::ESTABLISHED, 0]),
            Err(WireError::TrailingBytes { count: 1, .. })
        ));
        assert!(matches!(
            RendezvousMsg::decode(&[1, types::REFUSED, 0]),
            Err(WireError::InvalidValue { value: 0, .. })
        ));
        assert!(matches!(
            RendezvousMsg::decode(&[1, types::JOINED, 0xff, 0xff]),
            Err(WireError::FieldTooLong { .. })
        ));
    }
}
