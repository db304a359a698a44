//! The chain check for signed data: is an identity key registered, of which kind, revoked?
//!
//! DHT records, status reports, directory votes and access certificates are only usable when
//! the keys that signed them belong to live identities on chain. The cores ask an
//! [`IdentityRegistry`]; the node binary implements it against chain state at the latest
//! finalized block, tests use [`StaticRegistry`].

use std::collections::HashMap;

/// What an identity stands for (the chain's `IdentityKind`).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum IdentityKind {
    /// An end-user application.
    Client,
    /// An overlay node.
    Node,
    /// A group with a shared key.
    Group,
    /// One device of a user.
    Device,
}

/// What the chain says about an identity key.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum IdentityStatus {
    /// Registered and live.
    Active(IdentityKind),
    /// Registered once, now revoked: nothing it signed is accepted any more.
    Revoked,
    /// Never registered.
    Unknown,
}

impl IdentityStatus {
    /// The kind, if the identity is live.
    pub fn active_kind(self) -> Option<IdentityKind> {
        match self {
            Self::Active(kind) => Some(kind),
            _ => None,
        }
    }
}

/// Read access to the identity registry.
pub trait IdentityRegistry {
    /// The status of the identity with this sr25519 key.
    fn status(&self, key: &[u8; 32]) -> IdentityStatus;
}

/// A fixed map, for tests and simulations. Keys not in the map are [`IdentityStatus::Unknown`].
#[derive(Clone, Default, Debug)]
pub struct StaticRegistry(pub HashMap<[u8; 32], IdentityStatus>);

impl StaticRegistry {
    /// Registers (or replaces) an identity.
    pub fn insert(&mut self, key: [u8; 32], kind: IdentityKind) {
        self.0.insert(key, IdentityStatus::Active(kind));
    }

    /// Marks an identity revoked.
    pub fn revoke(&mut self, key: [u8; 32]) {
        self.0.insert(key, IdentityStatus::Revoked);
    }
}

impl IdentityRegistry for StaticRegistry {
    fn status(&self, key: &[u8; 32]) -> IdentityStatus {
        self.0.get(key).copied().unwrap_or(IdentityStatus::Unknown)
    }
}

impl<R: IdentityRegistry + ?Sized> IdentityRegistry for &R {
    fn status(&self, key: &[u8; 32]) -> IdentityStatus {
        (**self).status(key)
    }
}
