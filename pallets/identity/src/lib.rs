//! # Identity Pallet
//!
//! The public-key infrastructure of the PeerStream Protocol: crypto identities of clients, nodes,
//! groups and devices, which every overlay service checks against chain state.
//!
//! ## Overview
//!
//! An identity is `(namespace, application namespace, kind, sr25519 public key)` plus an X25519
//! key (for nodes the onion handshake key, for clients the announcement key of introductions)
//! and, for nodes, the libp2p peer id and listen addresses. The identity key proves possession
//! by signing the registration, so one funded account can register identities for all its
//! devices; registering oneself is the same call. Each registration holds a deposit from the
//! paying account (the *owner*), released when the owner revokes the identity and slashed when
//! root force-revokes it.
//!
//! ## Terminology
//!
//! - **Identity key**: the sr25519 public key an identity is known by; the map key of storage.
//! - **Owner**: the account that registered the identity, holds its deposit and may rotate or
//!   revoke it.
//! - **Id string**: `namespace.kind.app-namespace.key58`, see [`psp_primitives::id_string`].
//! - **Proof of possession**: an sr25519 signature of the identity key over
//!   [`psp_primitives::registration_message`] (or [`psp_primitives::rotation_message`]).
//!
//! ## Interface
//!
//! Signed origin (the owner):
//! - [`Pallet::register`]: register an identity, holding [`Config::IdentityDeposit`].
//! - [`Pallet::rotate`]: replace the X25519 key and, for nodes, the addresses.
//! - [`Pallet::revoke`]: revoke an identity and release its deposit.
//!
//! [`Config::ForceOrigin`] (root):
//! - [`Pallet::force_revoke`]: revoke any identity and slash its deposit.
//!
//! Revoked identities stay in storage as tombstones: their key can never be registered again,
//! and the overlay sees the revocation at the next finalized block.
//!
//! ## Usage
//!
//! Clients build a [`psp_primitives::Registration`], sign
//! [`psp_primitives::registration_message`] with the identity key, and submit `register`. The
//! runtime API [`psp_primitives::api::PspApi`] answers look-ups by key or id string, through
//! [`Pallet::identity_info`] and [`Pallet::identity_by_id`].
#![cfg_attr(not(feature = "std"), no_std)]

extern crate alloc;

pub use pallet::*;

#[cfg(feature = "runtime-benchmarks")]
mod benchmarking;
mod impls;
#[cfg(test)]
mod mock;
#[cfg(test)]
mod tests;
pub mod types;
pub mod weights;

pub use types::*;
pub use weights::WeightInfo;

#[frame_support::pallet]
pub mod pallet {
    use super::*;
    use frame_support::{
        pallet_prelude::*,
        traits::fungible::{Inspect, InspectHold, MutateHold},
    };
    use frame_system::pallet_prelude::*;
    use psp_primitives::{IdentityKey, IdentitySignature, Registration, Rotation};

    /// The balance type of the deposit currency.
    pub type BalanceOf<T> =
        <<T as Config>::Currency as Inspect<<T as frame_system::Config>::AccountId>>::Balance;

    #[pallet::pallet]
    pub struct Pallet<T>(_);

    /// Why this pallet holds funds.
    #[pallet::composite_enum]
    pub enum HoldReason {
        /// The deposit of a registered identity.
        IdentityDeposit,
    }

    #[pallet::config]
    pub trait Config: frame_system::Config<RuntimeEvent: From<Event<Self>>> {
        /// The currency that holds deposits.
        type Currency: MutateHold<Self::AccountId, Reason = Self::RuntimeHoldReason>
            + InspectHold<Self::AccountId>;
        /// The overarching hold reason.
        type RuntimeHoldReason: From<HoldReason>;
        /// The deposit held for each registered identity.
        #[pallet::constant]
        type IdentityDeposit: Get<BalanceOf<Self>>;
        /// Longest libp2p peer id, in bytes.
        #[pallet::constant]
        type MaxPeerIdLen: Get<u32>;
        /// Most addresses a node identity may list.
        #[pallet::constant]
        type MaxAddresses: Get<u32>;
        /// Longest address (multiaddr bytes).
        #[pallet::constant]
        type MaxAddressLen: Get<u32>;
        /// Who may force-revoke an identity (slashing its deposit).
        type ForceOrigin: EnsureOrigin<Self::RuntimeOrigin>;
        /// Weights of this pallet's calls.
        type WeightInfo: WeightInfo;
    }

    /// Every identity ever registered, by identity key; revoked ones stay as tombstones.
    #[pallet::storage]
    pub type IdentityOf<T: Config> =
        StorageMap<_, Blake2_128Concat, IdentityKey, IdentityRecord<T>, OptionQuery>;

    #[pallet::event]
    #[pallet::generate_deposit(pub(super) fn deposit_event)]
    pub enum Event<T: Config> {
        /// An identity was registered and its deposit held.
        IdentityRegistered {
            /// The paying and controlling account.
            owner: T::AccountId,
            /// The identity key.
            key: IdentityKey,
            /// What the identity is.
            kind: psp_primitives::IdentityKind,
            /// The deposit held.
            deposit: BalanceOf<T>,
        },
        /// An identity's X25519 key (and for nodes, addresses) was replaced.
        KeysRotated {
            /// The identity key.
            key: IdentityKey,
            /// The new rotation count.
            rotations: u32,
        },
        /// An identity was revoked by its owner and the deposit released.
        IdentityRevoked {
            /// The identity key.
            key: IdentityKey,
            /// The owner that got its deposit back.
            owner: T::AccountId,
            /// The deposit released.
            released: BalanceOf<T>,
        },
        /// Root revoked an identity and slashed its deposit.
        IdentityForceRevoked {
            /// The identity key.
            key: IdentityKey,
            /// The owner whose deposit was slashed.
            owner: T::AccountId,
            /// The amount slashed.
            slashed: BalanceOf<T>,
        },
    }

    #[pallet::error]
    pub enum Error<T> {
        /// This identity key is already registered. Use a fresh key, or rotate the existing
        /// identity instead.
        AlreadyRegistered,
        /// No identity is registered under this key.
        NotRegistered,
        /// The identity was revoked; a revoked key can never be used or registered again.
        IdentityRevoked,
        /// Only the identity's owner (the account that registered it) may do this.
        NotOwner,
        /// The signature of the identity key does not verify over the expected message.
        BadProof,
        /// A namespace or application namespace is longer than 32 bytes.
        NamespaceTooLong,
        /// A namespace is empty, starts with '-', or has characters outside a-z, 0-9, '-'.
        InvalidNamespace,
        /// A node identity needs its peer id and addresses.
        NodeDetailsRequired,
        /// Only node identities carry a peer id and addresses.
        NodeDetailsNotAllowed,
        /// The peer id is longer than `MaxPeerIdLen`.
        PeerIdTooLong,
        /// More addresses than `MaxAddresses`.
        TooManyAddresses,
        /// An address is longer than `MaxAddressLen`, or empty.
        BadAddress,
        /// The rotation nonce is not the identity's current rotation count (replayed or stale).
        StaleRotation,
        /// The owner's free balance cannot cover the identity deposit.
        InsufficientBalance,
    }

    #[pallet::call]
    impl<T: Config> Pallet<T> {
        /// Register an identity.
        ///
        /// - `origin`: signed; the account pays the deposit and becomes the owner.
        /// - `registration`: kind, namespaces, identity key, X25519 key, and for nodes the peer
        ///   id and addresses.
        /// - `proof`: the identity key's sr25519 signature over
        ///   [`psp_primitives::registration_message`] (genesis hash, owner, registration).
        ///
        /// Emits [`Event::IdentityRegistered`].
        #[pallet::call_index(0)]
        #[pallet::weight(T::WeightInfo::register())]
        pub fn register(
            origin: OriginFor<T>,
            registration: Registration,
            proof: IdentitySignature,
        ) -> DispatchResult {
            let owner = ensure_signed(origin)?;
            Self::do_register(owner, registration, proof)
        }

        /// Replace an identity's X25519 key and, for nodes, its addresses.
        ///
        /// - `origin`: signed by the identity's owner.
        /// - `rotation`: the new keys, with `nonce` equal to the identity's rotation count.
        /// - `proof`: the identity key's signature over [`psp_primitives::rotation_message`].
        ///
        /// Emits [`Event::KeysRotated`].
        #[pallet::call_index(1)]
        #[pallet::weight(T::WeightInfo::rotate())]
        pub fn rotate(
            origin: OriginFor<T>,
            rotation: Rotation,
            proof: IdentitySignature,
        ) -> DispatchResult {
            let who = ensure_signed(origin)?;
            Self::do_rotate(who, rotation, proof)
        }

        /// Revoke an identity and release its deposit to the owner.
        ///
        /// - `origin`: signed by the identity's owner.
        /// - `key`: the identity key.
        ///
        /// Emits [`Event::IdentityRevoked`].
        #[pallet::call_index(2)]
        #[pallet::weight(T::WeightInfo::revoke())]
        pub fn revoke(origin: OriginFor<T>, key: IdentityKey) -> DispatchResult {
            let who = ensure_signed(origin)?;
            Self::do_revoke(Some(who), key)
        }

        /// Revoke any identity and slash its deposit.
        ///
        /// - `origin`: [`Config::ForceOrigin`] (root).
        /// - `key`: the identity key.
        ///
        /// Emits [`Event::IdentityForceRevoked`].
        #[pallet::call_index(3)]
        #[pallet::weight(T::WeightInfo::force_revoke())]
        pub fn force_revoke(origin: OriginFor<T>, key: IdentityKey) -> DispatchResult {
            T::ForceOrigin::ensure_origin(origin)?;
            Self::do_revoke(None, key)
        }
    }
}
