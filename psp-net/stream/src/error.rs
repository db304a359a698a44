//! The crate's one error type: why a service refused an input, why a client machine ended,
//! why a stream record was refused.

use psp_receipts::ReceiptError;
use psp_rendezvous::chain::CertificateError;
use psp_rendezvous::wire::WireError;
use psp_usage::UsageError;

use crate::wire::{LandingRefusal, OracleRefusal};

/// Why an input was refused. The services return it for the log while their queued actions
/// say what the peer was told; the client machines end with it in their `Failed` event.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum StreamError {
    /// The bytes are not a message of the service (or not a stream record); a service closes
    /// the stream.
    #[error("malformed {what}: {source}")]
    Malformed {
        /// What was being decoded.
        what: &'static str,
        /// What the decoder said.
        source: WireError,
    },
    /// A message the peer may not send now (a second request, an answer sent to a service).
    #[error("unexpected {message} while {state}")]
    UnexpectedMessage {
        /// The message's name.
        message: &'static str,
        /// The receiver's state.
        state: &'static str,
    },
    /// The service tracks as many streams as it allows; the new one was closed.
    #[error("too many streams (limit {max})")]
    TooManyStreams {
        /// The bound.
        max: usize,
    },
    /// The requester's certificate was refused (forged, expired, foreign chain, not from an
    /// elected authority, identity revoked or unknown).
    #[error("certificate: {0}")]
    Certificate(#[from] CertificateError),
    /// The requester's signature over the request does not verify under the certified
    /// identity: someone presented a certificate that is not theirs.
    #[error("request signature does not verify under the certified identity")]
    PossessionSignature,
    /// The identity holds no subscription for the epoch.
    #[error("identity {identity:02x?}.. holds no subscription in epoch {epoch}")]
    NotSubscribed {
        /// First bytes of the identity.
        identity: [u8; 4],
        /// The epoch.
        epoch: u64,
    },
    /// The oracle has no key with this id in the current epoch.
    #[error("no receipt key {key_id:02x?}.. at this oracle in epoch {epoch}")]
    UnknownTier {
        /// First bytes of the key id asked for.
        key_id: [u8; 4],
        /// The epoch.
        epoch: u64,
    },
    /// Issuing or verifying the receipt failed (beyond allowance, bound reached, unknown key,
    /// expired, spent, bad signature, ...).
    #[error("receipt: {0}")]
    Receipt(#[from] ReceiptError),
    /// Issuing or finalizing a consumer token failed (the subscription drew its tokens for
    /// the epoch, the table is full, a malformed blinded message, a signature that does not
    /// verify, ...).
    #[error("consumer token: {0}")]
    Token(#[from] UsageError),
    /// More distribution nodes than the receipt allows.
    #[error("{got} distribution nodes, the receipt allows {allowed}")]
    TooManyDistributionNodes {
        /// Nodes asked for.
        got: usize,
        /// The receipt's allowance.
        allowed: u8,
    },
    /// A distribution node appears twice.
    #[error("distribution node {node:02x?}.. listed twice")]
    DuplicateDistributionNode {
        /// First bytes of its id.
        node: [u8; 4],
    },
    /// A distribution node is not a live node identity on chain.
    #[error("distribution node {node:02x?}.. is not a live node identity")]
    DistributionNodeNotLive {
        /// First bytes of its id.
        node: [u8; 4],
    },
    /// The receipt names another landing node (receipts are bound to one, so that one
    /// node's spent set covers them).
    #[error("the receipt is for landing node {landing:02x?}.., not this one")]
    WrongLanding {
        /// First bytes of the node it names.
        landing: [u8; 4],
    },
    /// Format flags without WebRTC, or with a transport this node does not serve yet.
    #[error("unsupported stream format flags 0x{flags:02x} (WebRTC only for now)")]
    UnsupportedFormat {
        /// The flags asked for.
        flags: u8,
    },
    /// A stream record's signature does not verify under its landing node.
    #[error("stream record signature does not verify")]
    RecordSignature,
    /// A stream record outside its validity.
    #[error("stream record valid from {created_at} (±{skew_secs} s) to {expires_at}, now {now}")]
    RecordOutsideValidity {
        /// Creation.
        created_at: u64,
        /// Expiry.
        expires_at: u64,
        /// Current time.
        now: u64,
        /// Clock skew accepted on the creation time.
        skew_secs: u64,
    },
    /// The record's landing node is not a live node identity on chain (revoked, unknown, or
    /// of another kind).
    #[error("landing node {node:02x?}.. is not a live node identity")]
    LandingNotLive {
        /// First bytes of its id.
        node: [u8; 4],
    },
    /// The landing node's record does not match what was asked (another stream id, access
    /// points, format or landing node).
    #[error("stream record does not match the request: {0}")]
    RecordMismatch(&'static str),
    /// The oracle refused the request.
    #[error("oracle refused: {0:?}")]
    OracleRefused(OracleRefusal),
    /// The landing node refused the request.
    #[error("landing node refused: {0:?}")]
    LandingRefused(LandingRefusal),
    /// A step did not complete by its deadline.
    #[error("timed out {step} (deadline {deadline})")]
    TimedOut {
        /// The step that was waiting.
        step: &'static str,
        /// The deadline, unix seconds.
        deadline: u64,
    },
    /// The stream closed while the machine still needed it.
    #[error("the {service} stream closed while {state}")]
    StreamClosed {
        /// `oracle` or `landing`.
        service: &'static str,
        /// The machine's state.
        state: &'static str,
    },
    /// A client command or input to a machine that already ended.
    #[error("the {machine} has ended")]
    Ended {
        /// The machine.
        machine: &'static str,
    },
}

/// The reason code of a refusal by the receipts (or tokens') issuer.
fn issuing_refusal(e: &ReceiptError) -> OracleRefusal {
    match e {
        ReceiptError::BeyondAllowance { .. } => OracleRefusal::BeyondAllowance,
        ReceiptError::SubscriptionExhausted { .. } => OracleRefusal::Exhausted,
        ReceiptError::SubscriptionTableFull { .. } => OracleRefusal::Busy,
        ReceiptError::WrongLength { .. } | ReceiptError::BlindedMessageOutOfRange => {
            OracleRefusal::Malformed
        }
        ReceiptError::NoKeyForEpoch { .. } | ReceiptError::NoSuchTier { .. } => {
            OracleRefusal::UnknownTier
        }
        _ => OracleRefusal::Internal,
    }
}

pub(crate) fn prefix(bytes: &[u8; 32]) -> [u8; 4] {
    [bytes[0], bytes[1], bytes[2], bytes[3]]
}

impl StreamError {
    pub(crate) fn malformed(what: &'static str) -> impl FnOnce(WireError) -> Self {
        move |source| Self::Malformed { what, source }
    }

    /// The reason code the oracle answers with.
    pub fn oracle_refusal(&self) -> OracleRefusal {
        match self {
            Self::Malformed { .. } | Self::UnexpectedMessage { .. } => OracleRefusal::Malformed,
            Self::TooManyStreams { .. } => OracleRefusal::Busy,
            Self::Certificate(e) if e.identity_not_live() => OracleRefusal::IdentityNotLive,
            Self::Certificate(_) | Self::PossessionSignature => OracleRefusal::BadCertificate,
            Self::NotSubscribed { .. } => OracleRefusal::NotSubscribed,
            Self::UnknownTier { .. } => OracleRefusal::UnknownTier,
            Self::Receipt(e) | Self::Token(UsageError::Token(e)) => issuing_refusal(e),
            _ => OracleRefusal::Internal,
        }
    }

    /// The reason code the landing node answers with.
    pub fn landing_refusal(&self) -> LandingRefusal {
        match self {
            Self::TooManyStreams { .. } | Self::Receipt(ReceiptError::SpentSetFull { .. }) => {
                LandingRefusal::Busy
            }
            Self::Receipt(ReceiptError::UnknownKey { .. }) => LandingRefusal::UnknownKey,
            Self::Receipt(ReceiptError::WrongEpoch { .. }) => LandingRefusal::WrongEpoch,
            Self::Receipt(ReceiptError::Expired { .. }) => LandingRefusal::Expired,
            Self::Receipt(ReceiptError::AlreadySpent { .. }) => LandingRefusal::AlreadySpent,
            Self::Receipt(ReceiptError::BeyondTier { .. }) => LandingRefusal::BeyondTier,
            Self::Receipt(ReceiptError::BadSignature { .. }) => LandingRefusal::BadSignature,
            Self::TooManyDistributionNodes { .. } | Self::DuplicateDistributionNode { .. } => {
                LandingRefusal::TooManyDistributionNodes
            }
            Self::DistributionNodeNotLive { .. } => LandingRefusal::DistributionNodeNotLive,
            Self::UnsupportedFormat { .. } => LandingRefusal::UnsupportedFormat,
            Self::WrongLanding { .. } => LandingRefusal::WrongLanding,
            _ => LandingRefusal::Malformed,
        }
    }
}
