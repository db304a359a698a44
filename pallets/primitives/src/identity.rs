//! Identity types and the exact bytes an identity key signs.
//!
//! An identity is `(namespace, application namespace, kind, sr25519 public key)` plus the keys
//! the overlay needs: an X25519 key (for nodes the onion handshake key, for clients the
//! announcement key of introductions) and, for nodes, the libp2p peer id and addresses.

use alloc::vec::Vec;
use codec::{Decode, DecodeWithMemTracking, Encode, MaxEncodedLen};
use scale_info::TypeInfo;

/// An sr25519 public key: the identity key, and the key part of an id string.
pub type IdentityKey = [u8; 32];
/// An X25519 public key (Curve25519 Diffie-Hellman).
pub type X25519Key = [u8; 32];
/// An sr25519 signature (64 bytes).
pub type IdentitySignature = [u8; 64];

/// Domain separation tag of a registration proof of possession.
pub const REGISTER_CONTEXT: &[u8] = b"psp/identity/register/v1";
/// Domain separation tag of a key rotation proof.
pub const ROTATE_CONTEXT: &[u8] = b"psp/identity/rotate/v1";

/// What an identity stands for.
#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    Encode,
    Decode,
    DecodeWithMemTracking,
    MaxEncodedLen,
    TypeInfo,
)]
#[cfg_attr(feature = "std", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "std", serde(rename_all = "lowercase"))]
pub enum IdentityKind {
    /// An end-user application.
    Client,
    /// An overlay node (relay, presence, discovery, authority, oracle ...).
    Node,
    /// A group with a shared key.
    Group,
    /// One device of a user.
    Device,
}

impl IdentityKind {
    /// Every kind, in id-string order.
    pub const ALL: [IdentityKind; 4] = [Self::Client, Self::Node, Self::Group, Self::Device];

    /// The kind's label in an id string.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Client => "client",
            Self::Node => "node",
            Self::Group => "group",
            Self::Device => "device",
        }
    }

    /// Parses a label of an id string.
    pub fn from_label(label: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == label)
    }
}

/// Network details of a node identity, as submitted (unbounded; the pallet bounds them).
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode, DecodeWithMemTracking, TypeInfo)]
pub struct NodeDetails {
    /// The node's libp2p peer id, as its multihash bytes.
    pub peer_id: Vec<u8>,
    /// The node's listen addresses, as multiaddr bytes.
    pub addresses: Vec<Vec<u8>>,
}

/// A registration request: everything the identity key vouches for.
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode, DecodeWithMemTracking, TypeInfo)]
pub struct Registration {
    /// What the identity is.
    pub kind: IdentityKind,
    /// The network namespace, e.g. `peerstream`.
    pub namespace: Vec<u8>,
    /// The application namespace, e.g. `account`.
    pub app_namespace: Vec<u8>,
    /// The sr25519 identity key.
    pub key: IdentityKey,
    /// The X25519 key of the identity.
    pub x25519: X25519Key,
    /// Required for nodes, refused for every other kind.
    pub node: Option<NodeDetails>,
}

/// The message an identity key signs to prove possession at registration.
///
/// It binds the chain (genesis hash) and the paying account, so a proof cannot be replayed on
/// another chain or front-run by another account.
pub fn registration_message<A: Encode>(
    genesis: &[u8; 32],
    owner: &A,
    registration: &Registration,
) -> Vec<u8> {
    (REGISTER_CONTEXT, genesis, owner, registration).encode()
}

/// A rotation of an identity's X25519 key and, for nodes, its addresses.
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode, DecodeWithMemTracking, TypeInfo)]
pub struct Rotation {
    /// The identity whose keys rotate.
    pub key: IdentityKey,
    /// The new X25519 key.
    pub x25519: X25519Key,
    /// New node addresses (nodes only); `None` keeps the current ones.
    pub addresses: Option<Vec<Vec<u8>>>,
    /// Must equal the identity's current rotation counter, which makes every proof single-use.
    pub nonce: u32,
}

/// The message an identity key signs to authorise a rotation.
pub fn rotation_message(genesis: &[u8; 32], rotation: &Rotation) -> Vec<u8> {
    (ROTATE_CONTEXT, genesis, rotation).encode()
}

/// Whether an identity may be used.
#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    Encode,
    Decode,
    DecodeWithMemTracking,
    MaxEncodedLen,
    TypeInfo,
)]
#[cfg_attr(feature = "std", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "std", serde(rename_all = "camelCase"))]
pub enum IdentityStatus<BlockNumber> {
    /// Registered and usable.
    Active,
    /// Revoked at the given block; the overlay refuses it from the next finalized block.
    Revoked {
        /// The block of revocation.
        at: BlockNumber,
        /// Whether root forced the revocation (the deposit was slashed).
        forced: bool,
    },
}

/// An identity as the runtime API returns it.
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode, TypeInfo)]
pub struct IdentityInfo<AccountId, Balance, BlockNumber> {
    /// The canonical id string.
    pub id: Vec<u8>,
    /// The account that holds the deposit and controls the identity.
    pub owner: AccountId,
    /// What the identity is.
    pub kind: IdentityKind,
    /// Network namespace.
    pub namespace: Vec<u8>,
    /// Application namespace.
    pub app_namespace: Vec<u8>,
    /// The sr25519 identity key.
    pub key: IdentityKey,
    /// The current X25519 key.
    pub x25519: X25519Key,
    /// Node details, for nodes.
    pub node: Option<NodeDetails>,
    /// Deposit held (zero after revocation).
    pub deposit: Balance,
    /// Block of registration.
    pub registered_at: BlockNumber,
    /// Number of rotations so far (the nonce the next rotation must carry).
    pub rotations: u32,
    /// Active or revoked.
    pub status: IdentityStatus<BlockNumber>,
}
