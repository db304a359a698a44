//! Storage types of the identity pallet.

use crate::{BalanceOf, Config};
use frame_support::{pallet_prelude::*, CloneNoBound, DebugNoBound, EqNoBound, PartialEqNoBound};
use frame_system::pallet_prelude::BlockNumberFor;
use psp_primitives::{id_string::MAX_LABEL_LEN, IdentityKind, IdentityStatus, X25519Key};

/// A namespace label, bounded by the id-string grammar.
pub type Label = BoundedVec<u8, ConstU32<{ MAX_LABEL_LEN as u32 }>>;

/// Network details of a node identity, bounded.
#[derive(
    Encode, Decode, MaxEncodedLen, TypeInfo, CloneNoBound, PartialEqNoBound, EqNoBound, DebugNoBound,
)]
#[scale_info(skip_type_params(T))]
#[codec(mel_bound())]
pub struct NodeInfo<T: Config> {
    /// libp2p peer id (multihash bytes).
    pub peer_id: BoundedVec<u8, T::MaxPeerIdLen>,
    /// Listen addresses (multiaddr bytes).
    pub addresses: BoundedVec<BoundedVec<u8, T::MaxAddressLen>, T::MaxAddresses>,
}

/// A registered identity.
#[derive(
    Encode, Decode, MaxEncodedLen, TypeInfo, CloneNoBound, PartialEqNoBound, EqNoBound, DebugNoBound,
)]
#[scale_info(skip_type_params(T))]
#[codec(mel_bound())]
pub struct IdentityRecord<T: Config> {
    /// The account holding the deposit and controlling the identity.
    pub owner: T::AccountId,
    /// What the identity is.
    pub kind: IdentityKind,
    /// Network namespace.
    pub namespace: Label,
    /// Application namespace.
    pub app_namespace: Label,
    /// Current X25519 key.
    pub x25519: X25519Key,
    /// Node details (nodes only).
    pub node: Option<NodeInfo<T>>,
    /// Deposit currently held (zero once revoked).
    pub deposit: BalanceOf<T>,
    /// Block of registration.
    pub registered_at: BlockNumberFor<T>,
    /// Rotations so far; the next rotation must carry this as its nonce.
    pub rotations: u32,
    /// Active or revoked.
    pub status: IdentityStatus<BlockNumberFor<T>>,
}
