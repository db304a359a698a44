//! Why a messaging operation failed: [`MessagingError`], and [`ErrorView`], the form an error
//! takes on the control socket (a stable `code` and the message).

use std::path::PathBuf;

use psp_net::rendezvous::client::ClientError;
use serde::{Deserialize, Serialize};

/// Everything that can go wrong in the messaging agent and its control interface. Every
/// message names what was being done and, where there is one, what to do about it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MessagingError {
    /// A chain or node call failed (RPC, keystore, identity look-up).
    #[error("{what}: {source}")]
    Chain {
        /// What the agent was doing.
        what: String,
        /// The client library's error.
        source: Box<crate::Error>,
    },
    /// No authority issued a certificate.
    #[error("no access certificate: {reason}; pass --authority-url with the RPC of a node elected as authority")]
    Certificate {
        /// What each authority said.
        reason: String,
    },
    /// The identity is not live on chain.
    #[error("identity {peer} is {status} on chain; it cannot be reached")]
    NotLive {
        /// The identity key or id string.
        peer: String,
        /// `revoked`, `not registered`, ...
        status: String,
    },
    /// A request's value is malformed.
    #[error("invalid {what}: {reason}")]
    InvalidRequest {
        /// Which field.
        what: &'static str,
        /// Why, and what is expected.
        reason: String,
    },
    /// No pending introduction has this number (answered, withdrawn or never received).
    #[error("no pending request {0}; `psp messaging requests` lists the pending ones")]
    UnknownRequest(u64),
    /// No open channel has this number.
    #[error("no open channel {0}; `psp messaging announce-status` lists the open ones")]
    UnknownChannel(u64),
    /// The channel's stream still has too much to send for this message.
    #[error("channel {channel} is backlogged ({room} frames of room, the message needs {needed}); wait and retry")]
    Backlogged {
        /// The channel.
        channel: u64,
        /// Frames the stream can still queue.
        room: usize,
        /// Frames the message needs.
        needed: usize,
    },
    /// The groups host refused or failed.
    #[error(transparent)]
    Group(#[from] crate::groups::GroupError),
    /// A bounded table is full.
    #[error("too many {what} (limit {max}); wait for some to finish")]
    TooMany {
        /// What is bounded.
        what: &'static str,
        /// The bound.
        max: usize,
    },
    /// Not enough registered nodes for a path.
    #[error("not enough registered overlay nodes: {reason}")]
    NoNodes {
        /// What was needed.
        reason: String,
    },
    /// A circuit or stream to a node service could not be opened.
    #[error("cannot open a stream to the {service} service of node {node}: {reason}")]
    Open {
        /// The service.
        service: &'static str,
        /// The node key.
        node: String,
        /// What the overlay said.
        reason: String,
    },
    /// A messaging state machine refused a command (e.g. a message over the channel's bound).
    #[error("{0}")]
    Protocol(#[from] ClientError),
    /// The presence look-up failed.
    #[error("looking up {peer}: {reason}")]
    LookupFailed {
        /// The identity looked up.
        peer: String,
        /// Why.
        reason: String,
    },
    /// The look-up found no live presence record.
    #[error(
        "{peer} has no live presence record ({rejected} records refused); is its agent running?"
    )]
    NoPresence {
        /// The identity looked up.
        peer: String,
        /// Records found but refused by the checks.
        rejected: usize,
    },
    /// The look-up found no live presence record at the presence node a send was restricted
    /// to.
    #[error(
        "{peer} has no live presence record at presence node {node} ({elsewhere} found at \
         other nodes, {rejected} refused); send without a presence node, or pick one that \
         `psp messaging lookup` lists"
    )]
    NoPresenceAt {
        /// The identity looked up.
        peer: String,
        /// The presence node asked for.
        node: String,
        /// Live records found at other presence nodes.
        elsewhere: usize,
        /// Records found but refused by the checks.
        rejected: usize,
    },
    /// A channel to the peer is already being opened, through other presence points than
    /// this send asks for.
    #[error(
        "a channel to {peer} is already being opened {through}; send again once it is open or \
         has failed"
    )]
    ConnectPending {
        /// The peer.
        peer: String,
        /// Which presence points the connect under way uses.
        through: String,
    },
    /// The peer declined the introduction.
    #[error("{peer} declined the request")]
    Declined {
        /// The peer.
        peer: String,
    },
    /// Every presence record was tried and none led to a channel.
    #[error("could not reach {peer} through any of its {attempts} presence points; last: {last}")]
    ConnectFailed {
        /// The peer.
        peer: String,
        /// Attempts made.
        attempts: usize,
        /// The last attempt's error.
        last: String,
    },
    /// Joining the introducer's rendezvous point failed.
    #[error("joining request {request}'s rendezvous point failed: {reason}")]
    JoinFailed {
        /// The request accepted.
        request: u64,
        /// Why.
        reason: String,
    },
    /// The control socket could not be used.
    #[error("control socket {socket}: {reason}")]
    Control {
        /// The socket path.
        socket: PathBuf,
        /// What failed.
        reason: String,
    },
    /// An agent is already listening on the socket.
    #[error("an agent is already listening on {socket}; stop it or pass another --socket")]
    AgentRunning {
        /// The socket path.
        socket: PathBuf,
    },
    /// The agent stopped before answering.
    #[error("the messaging agent stopped")]
    AgentStopped,
    /// The agent answered with an error.
    #[error("{message}")]
    Agent {
        /// The error's code (a variant name, e.g. `Declined`).
        code: String,
        /// The agent's message.
        message: String,
    },
    /// Something did not finish in time.
    #[error("timed out after {secs} s {what}")]
    Timeout {
        /// What was awaited.
        what: String,
        /// How long.
        secs: u64,
    },
}

impl MessagingError {
    /// Wraps a client library error with what the agent was doing.
    pub fn chain(what: impl Into<String>, source: crate::Error) -> Self {
        Self::Chain {
            what: what.into(),
            source: Box::new(source),
        }
    }

    /// The variant's name: the `code` of the error on the control socket.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Chain { .. } => "Chain",
            Self::Group(e) => e.code(),
            Self::Certificate { .. } => "Certificate",
            Self::NotLive { .. } => "NotLive",
            Self::InvalidRequest { .. } => "InvalidRequest",
            Self::UnknownRequest(_) => "UnknownRequest",
            Self::UnknownChannel(_) => "UnknownChannel",
            Self::Backlogged { .. } => "Backlogged",
            Self::TooMany { .. } => "TooMany",
            Self::NoNodes { .. } => "NoNodes",
            Self::Open { .. } => "Open",
            Self::Protocol(_) => "Protocol",
            Self::LookupFailed { .. } => "LookupFailed",
            Self::NoPresence { .. } => "NoPresence",
            Self::NoPresenceAt { .. } => "NoPresenceAt",
            Self::ConnectPending { .. } => "ConnectPending",
            Self::Declined { .. } => "Declined",
            Self::ConnectFailed { .. } => "ConnectFailed",
            Self::JoinFailed { .. } => "JoinFailed",
            Self::Control { .. } => "Control",
            Self::AgentRunning { .. } => "AgentRunning",
            Self::AgentStopped => "AgentStopped",
            Self::Agent { .. } => "Agent",
            Self::Timeout { .. } => "Timeout",
        }
    }
}

/// An error as the control socket carries it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorView {
    /// The [`MessagingError`] variant's name (stable, for scripts).
    pub code: String,
    /// The message, for people.
    pub message: String,
}

impl From<&MessagingError> for ErrorView {
    fn from(e: &MessagingError) -> Self {
        match e {
            // An agent's error passed on keeps its original code.
            MessagingError::Agent { code, message } => Self {
                code: code.clone(),
                message: message.clone(),
            },
            e => Self {
                code: e.code().into(),
                message: e.to_string(),
            },
        }
    }
}

impl From<MessagingError> for ErrorView {
    fn from(e: MessagingError) -> Self {
        Self::from(&e)
    }
}

impl From<ErrorView> for MessagingError {
    fn from(view: ErrorView) -> Self {
        Self::Agent {
            code: view.code,
            message: view.message,
        }
    }
}
