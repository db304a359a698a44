//! The control protocol between `psp messaging ...` commands and the agent: one JSON object
//! per line each way over a Unix socket. A connection may carry any number of requests; each
//! gets exactly one response, in order.
//!
//! ```text
//! → {"op":"send","to":"peerstream.client.account.<key58>","text":"hello"}
//! ← {"ok":{"kind":"sent","channel":1,"peer":"0x…","bytes":5}}
//! → {"op":"accept","request":7}
//! ← {"error":{"code":"UnknownRequest","message":"no pending request 7; …"}}
//! ```
//!
//! Requests (`op`): `status`, `lookup {peer}`, `send {to, text | hex, presenceNode?}`,
//! `requests`, `accept {request}`, `decline {request}`, `inbox {waitSecs?, max?}`,
//! `close {channel}`, `group {request}` (see [`crate::groups::protocol`]).
//! A line is at most [`MAX_LINE_LEN`] bytes.

use serde::{de::DeserializeOwned, Deserialize, Serialize};

use super::error::{ErrorView, MessagingError};
use super::views::{InboxView, LookupView, RequestView, StatusView};
use crate::groups::protocol::{GroupReply, GroupRequest};
use crate::{hex0x, parse_hex};

/// Longest line either way: 4 MiB, room for a 1 MiB message as hex (2 MiB) and its JSON.
pub const MAX_LINE_LEN: usize = 4 << 20;

/// A request to the agent.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(
    tag = "op",
    rename_all = "kebab-case",
    rename_all_fields = "camelCase",
    deny_unknown_fields
)]
pub enum Request {
    /// The agent's identity, presence points, channels and queues.
    Status,
    /// Looks up an identity's presence records (id string or `0x` key).
    Lookup {
        /// Id string or `0x` + 64 hex digits.
        peer: String,
    },
    /// Sends a message, opening a channel first if there is none to `to`.
    Send {
        /// Id string or `0x` + 64 hex digits.
        to: String,
        /// The message as text; exactly one of `text` and `hex`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        text: Option<String>,
        /// The message as hex.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        hex: Option<String>,
        /// Open the channel only through the peer's presence point at this node (`0x` + 64
        /// hex digits, a node key as `lookup` lists it); absent: any. A channel already open
        /// to the peer is used whatever its point.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        presence_node: Option<String>,
    },
    /// The pending introductions.
    Requests,
    /// Accepts a pending introduction; answers once the channel is established.
    Accept {
        /// Its number.
        request: u64,
    },
    /// Declines a pending introduction (the introducer is told).
    Decline {
        /// Its number.
        request: u64,
    },
    /// Takes messages from the inbox, waiting up to `wait_secs` for one if it is empty.
    Inbox {
        /// Seconds to wait for a message when the inbox is empty (0: answer at once).
        #[serde(default)]
        wait_secs: u64,
        /// Most messages to take (default: all).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        max: Option<usize>,
    },
    /// Closes a channel.
    Close {
        /// Its number.
        channel: u64,
    },
    /// A group request, for the agent's groups host.
    Group {
        /// The request.
        request: GroupRequest,
    },
}

impl Request {
    /// A `send` of `bytes`: as text when they are UTF-8, else as hex.
    pub fn send(to: impl Into<String>, bytes: Vec<u8>) -> Self {
        Self::send_via(to, bytes, None)
    }

    /// A `send` of `bytes` that opens a channel only through the peer's presence point at
    /// `presence_node` (if given).
    pub fn send_via(
        to: impl Into<String>,
        bytes: Vec<u8>,
        presence_node: Option<[u8; 32]>,
    ) -> Self {
        let to = to.into();
        let presence_node = presence_node.map(|n| hex0x(&n));
        let (text, hex) = match String::from_utf8(bytes) {
            Ok(text) => (Some(text), None),
            Err(e) => (None, Some(hex::encode(e.into_bytes()))),
        };
        Self::Send {
            to,
            text,
            hex,
            presence_node,
        }
    }
}

/// The `presenceNode` of a `send`: a node key, `0x` + 64 hex digits.
pub fn presence_node_key(text: Option<&str>) -> Result<Option<[u8; 32]>, MessagingError> {
    let Some(text) = text else {
        return Ok(None);
    };
    let what = "presenceNode";
    parse_hex::<32>(text, what).map(Some).map_err(|e| {
        let reason = match e {
            crate::Error::InvalidInput { reason, .. } => reason,
            other => other.to_string(),
        };
        MessagingError::InvalidRequest {
            what,
            reason: format!("{reason}; expected a node key, 0x + 64 hex digits"),
        }
    })
}

/// The message bytes of a `send`: exactly one of `text` and `hex`.
pub fn message_bytes(text: Option<String>, hex: Option<String>) -> Result<Vec<u8>, MessagingError> {
    match (text, hex) {
        (Some(text), None) => Ok(text.into_bytes()),
        (None, Some(h)) => {
            let digits = h.strip_prefix("0x").unwrap_or(&h);
            hex::decode(digits).map_err(|e| MessagingError::InvalidRequest {
                what: "hex",
                reason: format!("not hex: {e}"),
            })
        }
        _ => Err(MessagingError::InvalidRequest {
            what: "send",
            reason: "give exactly one of text and hex".into(),
        }),
    }
}

/// What a request produced.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(
    tag = "kind",
    rename_all = "kebab-case",
    rename_all_fields = "camelCase"
)]
pub enum Reply {
    /// For `status`.
    Status(StatusView),
    /// For `lookup`.
    Lookup(LookupView),
    /// For `send`: the message is queued on the channel's stream, in order.
    Sent {
        /// The channel used (opened for it or reused).
        channel: u64,
        /// The peer's identity key.
        peer: String,
        /// The message's length.
        bytes: usize,
    },
    /// For `requests`.
    Requests {
        /// Pending introductions, oldest first.
        requests: Vec<RequestView>,
    },
    /// For `accept`: the channel is established.
    Accepted {
        /// The request.
        request: u64,
        /// The new channel.
        channel: u64,
        /// The introducer's identity key (proven in the handshake).
        peer: String,
    },
    /// For `decline`.
    Declined {
        /// The request.
        request: u64,
    },
    /// For `inbox`.
    Inbox(InboxView),
    /// For `close`.
    Closed {
        /// The channel.
        channel: u64,
    },
    /// For `group`.
    Group {
        /// The groups host's answer.
        reply: GroupReply,
    },
}

/// The agent's answer to one request.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Response {
    /// It worked.
    Ok(Reply),
    /// It failed.
    Error(ErrorView),
}

impl Response {
    /// The reply, or the agent's error.
    pub fn into_result(self) -> Result<Reply, MessagingError> {
        match self {
            Self::Ok(reply) => Ok(reply),
            Self::Error(e) => Err(e.into()),
        }
    }
}

impl From<Result<Reply, MessagingError>> for Response {
    fn from(result: Result<Reply, MessagingError>) -> Self {
        match result {
            Ok(reply) => Self::Ok(reply),
            Err(e) => Self::Error(e.into()),
        }
    }
}

/// One line: the JSON of `value` and a newline.
pub fn encode_line(value: &impl Serialize) -> Vec<u8> {
    // Serializing these types cannot fail (string keys, no non-finite floats); an empty
    // object keeps the stream in step if it ever did.
    let mut line = serde_json::to_vec(value).unwrap_or_else(|_| b"{}".to_vec());
    line.push(b'\n');
    line
}

/// Decodes one line (with or without its newline).
pub fn decode_line<T: DeserializeOwned>(line: &[u8]) -> Result<T, MessagingError> {
    if line.len() > MAX_LINE_LEN {
        return Err(MessagingError::InvalidRequest {
            what: "line",
            reason: format!("{} bytes, limit {MAX_LINE_LEN}", line.len()),
        });
    }
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    serde_json::from_slice(line).map_err(|e| MessagingError::InvalidRequest {
        what: "line",
        reason: format!("not a valid JSON message: {e}"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::messaging::views::InboxStats;

    fn round_trip<T: Serialize + DeserializeOwned + PartialEq + std::fmt::Debug>(value: T) {
        let line = encode_line(&value);
        assert_eq!(line.last(), Some(&b'\n'));
        assert_eq!(line.iter().filter(|&&b| b == b'\n').count(), 1, "one line");
        let back: T = decode_line(&line).expect("decodes");
        assert_eq!(back, value);
    }

    #[test]
    fn every_request_round_trips() {
        for request in [
            Request::Status,
            Request::Lookup {
                peer: "0xab".into(),
            },
            Request::send("peerstream.client.account.x", b"hi\nthere".to_vec()),
            Request::send("0x01", vec![0xff, 0x00]),
            Request::send_via("0x01", b"via".to_vec(), Some([7; 32])),
            Request::Requests,
            Request::Accept { request: 3 },
            Request::Decline { request: 4 },
            Request::Inbox {
                wait_secs: 5,
                max: Some(2),
            },
            Request::Inbox {
                wait_secs: 0,
                max: None,
            },
            Request::Close { channel: 9 },
        ] {
            round_trip(request);
        }
    }

    #[test]
    fn requests_have_the_documented_shape() {
        let r: Request = decode_line(br#"{"op":"inbox","waitSecs":3}"#).expect("inbox");
        assert_eq!(
            r,
            Request::Inbox {
                wait_secs: 3,
                max: None
            }
        );
        let r: Request = decode_line(br#"{"op":"inbox"}"#).expect("defaults");
        assert_eq!(
            r,
            Request::Inbox {
                wait_secs: 0,
                max: None
            }
        );
        let line =
            String::from_utf8(encode_line(&Request::send("0x01", b"hey".to_vec()))).expect("utf-8");
        assert_eq!(line, "{\"op\":\"send\",\"to\":\"0x01\",\"text\":\"hey\"}\n");
        let binary = encode_line(&Request::send("0x01", vec![0xff]));
        assert!(String::from_utf8_lossy(&binary).contains("\"hex\":\"ff\""));
        let node = format!("0x{}", "ab".repeat(32));
        let line = format!(r#"{{"op":"send","to":"0x01","text":"hey","presenceNode":"{node}"}}"#);
        let r: Request = decode_line(line.as_bytes()).expect("send via a node");
        assert_eq!(
            r,
            Request::send_via("0x01", b"hey".to_vec(), Some([0xab; 32]))
        );
    }

    #[test]
    fn presence_nodes_are_node_keys() {
        assert_eq!(presence_node_key(None).expect("absent"), None);
        let key = format!("0x{}", "01".repeat(32));
        assert_eq!(presence_node_key(Some(&key)).expect("a key"), Some([1; 32]));
        for bad in ["0x01", "zz", ""] {
            let err = presence_node_key(Some(bad)).expect_err("refused");
            assert_eq!(err.code(), "InvalidRequest");
            assert!(err.to_string().contains("64 hex digits"), "{err}");
        }
    }

    #[test]
    fn bad_lines_are_refused_with_a_reason() {
        for bad in [
            &b"not json"[..],
            br#"{"op":"launch"}"#,
            br#"{"op":"accept"}"#,
            br#"{"op":"accept","request":-1}"#,
            br#"{"op":"close","channel":1,"extra":true}"#,
            br#"{"request":1}"#,
        ] {
            let err = decode_line::<Request>(bad).expect_err("refused");
            assert_eq!(err.code(), "InvalidRequest", "{err}");
        }
        let long = vec![b' '; MAX_LINE_LEN + 1];
        let err = decode_line::<Request>(&long).expect_err("too long");
        assert!(err.to_string().contains("limit"), "{err}");
    }

    #[test]
    fn message_bodies_take_exactly_one_form() {
        assert_eq!(message_bytes(Some("a".into()), None).expect("text"), b"a");
        assert_eq!(
            message_bytes(None, Some("0x0aff".into())).expect("hex"),
            [0x0a, 0xff]
        );
        assert!(message_bytes(None, Some("zz".into())).is_err());
        assert!(message_bytes(None, None).is_err());
        assert!(message_bytes(Some("a".into()), Some("00".into())).is_err());
    }

    #[test]
    fn responses_round_trip_and_errors_keep_their_code() {
        round_trip(Response::Ok(Reply::Sent {
            channel: 1,
            peer: "0x02".into(),
            bytes: 70_000,
        }));
        round_trip(Response::Ok(Reply::Inbox(InboxView {
            messages: vec![],
            remaining: 0,
            dropped: 1,
        })));
        round_trip(Response::Ok(Reply::Status(StatusView {
            identity: "0x01".into(),
            id: "id".into(),
            certificate_not_after: 9,
            points: vec![],
            channels: vec![],
            guard: None,
            requests: 0,
            connects: 0,
            inbox: InboxStats::default(),
            nodes: 6,
        })));
        let response: Response = Err(MessagingError::Declined {
            peer: "0x03".into(),
        })
        .into();
        let line = encode_line(&response);
        assert!(String::from_utf8_lossy(&line).starts_with("{\"error\":{\"code\":\"Declined\""));
        let err = decode_line::<Response>(&line)
            .expect("decodes")
            .into_result()
            .expect_err("an error");
        assert_eq!(ErrorView::from(&err).code, "Declined");
        assert_eq!(err.to_string(), "0x03 declined the request");
    }
}
