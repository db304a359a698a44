//! Why the presence service refused an input: returned to the driver for its log, while the
//! queued actions tell the peer.

use crate::chain::CertificateError;
use crate::ids::IntroId;
use crate::wire::{RegisterRefusal, WireError};

/// Why an input was refused. What happened to the stream is in the queued actions: refused
/// registrations and keep-alives, malformed or unexpected messages close it; refused
/// introductions and unknown introduction ids only answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PresenceError {
    /// The bytes are not a presence message; the stream was closed.
    #[error("malformed presence message: {0}")]
    Malformed(#[from] WireError),
    /// A message this stream may not send in its state; the stream was closed.
    #[error("unexpected {message} on a {role} stream")]
    UnexpectedMessage {
        /// The message's name.
        message: &'static str,
        /// `new`, `registered client` or `introducer`.
        role: &'static str,
    },
    /// The service tracks as many streams as it allows; the new one was closed.
    #[error("too many streams (limit {max})")]
    TooManyStreams {
        /// The bound.
        max: usize,
    },
    /// The record names another publisher than this node.
    #[error("record published by another node")]
    WrongPublisher,
    /// The record's times are outside what this node accepts.
    #[error(
        "record issued at {issued_at}, expiring at {expires_at}: must be issued by now + {max_skew_secs} s and expire within (now, now + {max_lifetime_secs} s] (now {now})"
    )]
    BadValidity {
        /// Issue time.
        issued_at: u64,
        /// Expiry.
        expires_at: u64,
        /// Current time.
        now: u64,
        /// Accepted clock skew.
        max_skew_secs: u64,
        /// Longest record lifetime.
        max_lifetime_secs: u64,
    },
    /// The record would outlive the certificate it carries.
    #[error("record expires at {expires_at}, after its certificate ({not_after})")]
    OutlivesCertificate {
        /// Record expiry.
        expires_at: u64,
        /// Certificate end.
        not_after: u64,
    },
    /// The record value is not a presence value.
    #[error("record value: {0}")]
    BadValue(WireError),
    /// The certificate in the value was refused (forged, expired, revoked identity, another
    /// identity than the record's owner).
    #[error("certificate: {0}")]
    Certificate(#[from] CertificateError),
    /// The owner's signature over the record does not verify.
    #[error("owner signature over the record does not verify")]
    OwnerSignature,
    /// The identity already holds a presence point here.
    #[error("identity already registered at this node")]
    AlreadyRegistered,
    /// The node holds as many registrations as it allows.
    #[error("registrations full (limit {max})")]
    RegistrationsFull {
        /// The bound.
        max: usize,
    },
    /// A keep-alive that does not renew the registered record.
    #[error("keep-alive is not a renewal: {0}")]
    NotARenewal(&'static str),
    /// Channel limits of zero.
    #[error("channel cap and burst must be at least 1")]
    BadLimits,
    /// The owner lost its live status on chain; its registration ended.
    #[error("registered identity is no longer live on chain")]
    IdentityNotLive,
    /// Introduction to an identity not registered here.
    #[error("introduction target not registered here")]
    TargetNotRegistered,
    /// The target's channel cap is reached.
    #[error("target's channel cap of {cap} reached")]
    CapReached {
        /// The cap.
        cap: u16,
    },
    /// The target's introduction rate is exceeded.
    #[error("target's introduction rate exceeded")]
    RateLimited,
    /// The node holds as many pending introductions as it allows.
    #[error("pending introductions full (limit {max})")]
    PendingFull {
        /// The bound.
        max: usize,
    },
    /// An answer or cancel for an introduction that is not pending for this client.
    #[error("no pending introduction {0:?} for this client")]
    UnknownIntroduction(IntroId),
}

impl PresenceError {
    /// The reason sent to a client whose registration or keep-alive this refuses.
    pub(crate) fn register_refusal(&self) -> RegisterRefusal {
        match self {
            Self::WrongPublisher => RegisterRefusal::WrongPublisher,
            Self::BadValidity { .. } | Self::OutlivesCertificate { .. } => {
                RegisterRefusal::BadValidity
            }
            Self::BadValue(_) => RegisterRefusal::BadValue,
            Self::Certificate(CertificateError::WrongIdentity { .. }) => {
                RegisterRefusal::OwnerMismatch
            }
            Self::Certificate(e) if e.identity_not_live() => RegisterRefusal::IdentityNotLive,
            Self::IdentityNotLive => RegisterRefusal::IdentityNotLive,
            Self::Certificate(_) => RegisterRefusal::Certificate,
            Self::OwnerSignature => RegisterRefusal::OwnerSignature,
            Self::AlreadyRegistered => RegisterRefusal::AlreadyRegistered,
            Self::RegistrationsFull { .. } => RegisterRefusal::Busy,
            Self::NotARenewal(_) => RegisterRefusal::NotARenewal,
            Self::BadLimits => RegisterRefusal::BadLimits,
            _ => RegisterRefusal::Malformed,
        }
    }
}
