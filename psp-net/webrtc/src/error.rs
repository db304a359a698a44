//! The crate's one error type.

use std::net::SocketAddr;

/// Everything that can go wrong in this crate.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The SDP offer is longer than [`crate::ServerConfig::max_offer_bytes`]; a browser's data
    /// channel offer is 1–2 KiB.
    #[error("SDP offer is {len} bytes, more than the limit of {max}")]
    OfferTooLarge {
        /// Length of the offer.
        len: usize,
        /// The configured limit.
        max: usize,
    },
    /// The SDP text did not parse, or str0m refused it; the reason is str0m's.
    #[error("malformed SDP offer: {0}")]
    MalformedOffer(String),
    /// The offer has no `m=application` section, so no data channel could ever open.
    #[error("SDP offer has no data channel (no m=application section)")]
    NoDataChannel,
    /// The server already serves [`crate::ServerConfig::max_peers`] peers; try another node.
    #[error("server is full ({max} peers)")]
    TooManyPeers {
        /// The configured limit.
        max: usize,
    },
    /// A message is larger than [`crate::ServerConfig::max_message_bytes`]; the caller must
    /// split it into frames.
    #[error("message is {len} bytes, more than the limit of {max}")]
    MessageTooLarge {
        /// Length of the message.
        len: usize,
        /// The configured limit.
        max: usize,
    },
    /// The configuration cannot work (the reason says which field).
    #[error("invalid configuration: {0}")]
    Config(String),
    /// The bound address cannot be a WebRTC host candidate (unspecified, broadcast...); bind to
    /// a concrete address or set [`crate::ServerConfig::advertised_addr`].
    #[error("{0} cannot be announced as a WebRTC host candidate")]
    BadCandidate(SocketAddr),
    /// The crypto provider (OpenSSL) could not generate a DTLS certificate.
    #[error("could not generate a DTLS certificate")]
    Certificate,
    /// The server task has stopped (it was dropped or its socket failed).
    #[error("the WebRTC server task has stopped")]
    ServerStopped,
    /// A socket operation failed.
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
    /// The signalling URL is not `http://host:port[/prefix]`.
    #[error("bad signalling URL {url:?}: {reason}")]
    BadUrl {
        /// The URL given.
        url: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The signalling server answered with an error status; `reason` is its body.
    #[error("signalling server answered {status}: {reason}")]
    Signalling {
        /// HTTP status code.
        status: u16,
        /// The response body (truncated), which says why.
        reason: String,
    },
    /// The signalling server's response is not HTTP/1.1 as this crate writes it.
    #[error("malformed signalling response: {0}")]
    BadResponse(&'static str),
    /// The SDP answer did not parse or did not match the offer.
    #[error("malformed SDP answer: {0}")]
    MalformedAnswer(String),
    /// The peer connection did not open its data channel in time.
    #[error("timed out after {0:?} waiting for the data channel to open")]
    ConnectTimeout(std::time::Duration),
    /// The peer connection closed (by the server, a timeout, or a protocol error).
    #[error("the peer connection closed")]
    Closed,
}

/// Result with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
