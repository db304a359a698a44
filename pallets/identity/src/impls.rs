//! The logic behind the calls and the runtime API: verify first, write last.

use crate::{
    BalanceOf, Config, Error, Event, HoldReason, IdentityOf, IdentityRecord, Label, NodeInfo,
    Pallet,
};
use alloc::vec::Vec;
use frame_support::{
    pallet_prelude::*,
    traits::{
        fungible::{InspectHold, MutateHold},
        tokens::{Fortitude, Precision},
    },
};
use frame_system::pallet_prelude::BlockNumberFor;
use psp_primitives::{
    id_string::{is_valid_label, MAX_LABEL_LEN},
    registration_message, rotation_message, IdString, IdentityInfo, IdentityKey, IdentityKind,
    IdentitySignature, IdentityStatus, NodeDetails, Registration, Rotation,
};
use sp_runtime::traits::Zero;

/// The runtime API's view of an identity in this runtime.
pub type IdentityInfoOf<T> =
    IdentityInfo<<T as frame_system::Config>::AccountId, BalanceOf<T>, BlockNumberFor<T>>;

impl<T: Config> Pallet<T> {
    pub(crate) fn do_register(
        owner: T::AccountId,
        registration: Registration,
        proof: IdentitySignature,
    ) -> DispatchResult {
        let namespace = Self::label(&registration.namespace)?;
        let app_namespace = Self::label(&registration.app_namespace)?;
        let node = match (registration.kind, &registration.node) {
            (IdentityKind::Node, Some(details)) => Some(Self::node_info(details)?),
            (IdentityKind::Node, None) => return Err(Error::<T>::NodeDetailsRequired.into()),
            (_, Some(_)) => return Err(Error::<T>::NodeDetailsNotAllowed.into()),
            (_, None) => None,
        };
        if let Some(existing) = IdentityOf::<T>::get(registration.key) {
            return Err(match existing.status {
                IdentityStatus::Active => Error::<T>::AlreadyRegistered,
                IdentityStatus::Revoked { .. } => Error::<T>::IdentityRevoked,
            }
            .into());
        }
        let message = registration_message(&Self::genesis_hash(), &owner, &registration);
        Self::verify(&registration.key, &message, &proof)?;

        let deposit = T::IdentityDeposit::get();
        let reason = HoldReason::IdentityDeposit.into();
        ensure!(
            T::Currency::can_hold(&reason, &owner, deposit),
            Error::<T>::InsufficientBalance
        );
        T::Currency::hold(&reason, &owner, deposit)?;

        IdentityOf::<T>::insert(
            registration.key,
            IdentityRecord {
                owner: owner.clone(),
                kind: registration.kind,
                namespace,
                app_namespace,
                x25519: registration.x25519,
                node,
                deposit,
                registered_at: frame_system::Pallet::<T>::block_number(),
                rotations: 0,
                status: IdentityStatus::Active,
            },
        );
        Self::deposit_event(Event::IdentityRegistered {
            owner,
            key: registration.key,
            kind: registration.kind,
            deposit,
        });
        Ok(())
    }

    pub(crate) fn do_rotate(
        who: T::AccountId,
        rotation: Rotation,
        proof: IdentitySignature,
    ) -> DispatchResult {
        let mut record = Self::active_owned(&who, &rotation.key)?;
        ensure!(
            rotation.nonce == record.rotations,
            Error::<T>::StaleRotation
        );
        let node = match (&record.node, &rotation.addresses) {
            (Some(current), Some(addresses)) => Some(Self::node_info(&NodeDetails {
                peer_id: current.peer_id.to_vec(),
                addresses: addresses.clone(),
            })?),
            (None, Some(_)) => return Err(Error::<T>::NodeDetailsNotAllowed.into()),
            (current, None) => current.clone(),
        };
        Self::verify(
            &rotation.key,
            &rotation_message(&Self::genesis_hash(), &rotation),
            &proof,
        )?;

        record.x25519 = rotation.x25519;
        record.node = node;
        record.rotations = record.rotations.saturating_add(1);
        let rotations = record.rotations;
        IdentityOf::<T>::insert(rotation.key, record);
        Self::deposit_event(Event::KeysRotated {
            key: rotation.key,
            rotations,
        });
        Ok(())
    }

    /// Revokes `key`: by its owner (`Some(who)`, deposit released) or by root (`None`, slashed).
    pub(crate) fn do_revoke(by: Option<T::AccountId>, key: IdentityKey) -> DispatchResult {
        let mut record = match &by {
            Some(who) => Self::active_owned(who, &key)?,
            None => Self::active(&key)?,
        };
        let reason = HoldReason::IdentityDeposit.into();
        let owner = record.owner.clone();
        let amount = record.deposit;
        let moved = match by {
            Some(_) => T::Currency::release(&reason, &owner, amount, Precision::BestEffort)?,
            None => T::Currency::burn_held(
                &reason,
                &owner,
                amount,
                Precision::BestEffort,
                Fortitude::Force,
            )?,
        };
        record.deposit = Zero::zero();
        record.status = IdentityStatus::Revoked {
            at: frame_system::Pallet::<T>::block_number(),
            forced: by.is_none(),
        };
        IdentityOf::<T>::insert(key, record);
        Self::deposit_event(match by {
            Some(_) => Event::IdentityRevoked {
                key,
                owner,
                released: moved,
            },
            None => Event::IdentityForceRevoked {
                key,
                owner,
                slashed: moved,
            },
        });
        Ok(())
    }

    /// The identity under `key`, as the runtime API returns it.
    pub fn identity_info(key: IdentityKey) -> Option<IdentityInfoOf<T>> {
        IdentityOf::<T>::get(key).map(|record| Self::to_info(key, record))
    }

    /// The identity an id string names, if it parses, its checksum holds, and it matches the
    /// registered kind and namespaces.
    pub fn identity_by_id(id: &[u8]) -> Option<IdentityInfoOf<T>> {
        let parsed = IdString::parse_bytes(id)
            .ok()
            .filter(IdString::checksum_ok)?;
        let record = IdentityOf::<T>::get(parsed.key)?;
        let matches = record.kind == parsed.kind
            && record.namespace.as_slice() == parsed.namespace.as_bytes()
            && record.app_namespace.as_slice() == parsed.app_namespace.as_bytes();
        matches.then(|| Self::to_info(parsed.key, record))
    }

    /// Active node identities after `start_after` in storage order, at most `limit` (capped at
    /// `MAX_NODES_PER_PAGE`). For the runtime API only: it iterates storage.
    pub fn nodes(start_after: Option<IdentityKey>, limit: u32) -> Vec<IdentityInfoOf<T>> {
        let limit = limit.min(psp_primitives::api::MAX_NODES_PER_PAGE) as usize;
        let iter = match start_after {
            Some(key) => IdentityOf::<T>::iter_from(IdentityOf::<T>::hashed_key_for(key)),
            None => IdentityOf::<T>::iter(),
        };
        iter.filter(|(_, r)| r.kind == IdentityKind::Node && r.status == IdentityStatus::Active)
            .take(limit)
            .map(|(key, record)| Self::to_info(key, record))
            .collect()
    }

    /// The genesis hash every proof binds to, so proofs cannot be replayed on another chain.
    pub fn genesis_hash() -> [u8; 32] {
        let hash = frame_system::Pallet::<T>::block_hash(BlockNumberFor::<T>::zero());
        let mut out = [0u8; 32];
        let bytes = hash.as_ref();
        let n = bytes.len().min(32);
        out[..n].copy_from_slice(&bytes[..n]);
        out
    }

    fn to_info(key: IdentityKey, record: IdentityRecord<T>) -> IdentityInfoOf<T> {
        let namespace = core::str::from_utf8(&record.namespace).unwrap_or_default();
        let app = core::str::from_utf8(&record.app_namespace).unwrap_or_default();
        let id = IdString::new(namespace, record.kind, app, key)
            .map(|id| alloc::format!("{id}").into_bytes())
            .unwrap_or_default();
        IdentityInfo {
            id,
            owner: record.owner,
            kind: record.kind,
            namespace: record.namespace.into_inner(),
            app_namespace: record.app_namespace.into_inner(),
            key,
            x25519: record.x25519,
            node: record.node.map(|node| NodeDetails {
                peer_id: node.peer_id.into_inner(),
                addresses: node.addresses.into_iter().map(|a| a.into_inner()).collect(),
            }),
            deposit: record.deposit,
            registered_at: record.registered_at,
            rotations: record.rotations,
            status: record.status,
        }
    }

    fn active(key: &IdentityKey) -> Result<IdentityRecord<T>, DispatchError> {
        let record = IdentityOf::<T>::get(key).ok_or(Error::<T>::NotRegistered)?;
        ensure!(
            record.status == IdentityStatus::Active,
            Error::<T>::IdentityRevoked
        );
        Ok(record)
    }

    fn active_owned(
        who: &T::AccountId,
        key: &IdentityKey,
    ) -> Result<IdentityRecord<T>, DispatchError> {
        let record = Self::active(key)?;
        ensure!(&record.owner == who, Error::<T>::NotOwner);
        Ok(record)
    }

    fn label(raw: &[u8]) -> Result<Label, DispatchError> {
        ensure!(raw.len() <= MAX_LABEL_LEN, Error::<T>::NamespaceTooLong);
        ensure!(is_valid_label(raw), Error::<T>::InvalidNamespace);
        Label::try_from(raw.to_vec()).map_err(|_| Error::<T>::NamespaceTooLong.into())
    }

    fn node_info(details: &NodeDetails) -> Result<NodeInfo<T>, DispatchError> {
        ensure!(!details.peer_id.is_empty(), Error::<T>::NodeDetailsRequired);
        let peer_id =
            BoundedVec::try_from(details.peer_id.clone()).map_err(|_| Error::<T>::PeerIdTooLong)?;
        ensure!(
            details.addresses.len() <= T::MaxAddresses::get() as usize,
            Error::<T>::TooManyAddresses
        );
        let addresses = details
            .addresses
            .iter()
            .map(|a| {
                ensure!(!a.is_empty(), Error::<T>::BadAddress);
                BoundedVec::try_from(a.clone()).map_err(|_| Error::<T>::BadAddress)
            })
            .collect::<Result<Vec<_>, _>>()?;
        let addresses =
            BoundedVec::try_from(addresses).map_err(|_| Error::<T>::TooManyAddresses)?;
        Ok(NodeInfo { peer_id, addresses })
    }

    fn verify(key: &IdentityKey, message: &[u8], proof: &IdentitySignature) -> DispatchResult {
        let public = sp_core::sr25519::Public::from_raw(*key);
        let signature = sp_core::sr25519::Signature::from_raw(*proof);
        ensure!(
            sp_io::crypto::sr25519_verify(&signature, message, &public),
            Error::<T>::BadProof
        );
        Ok(())
    }
}

impl<T: Config> psp_primitives::staking::NodeRegistry<T::AccountId> for Pallet<T> {
    fn active_node_owner(key: &IdentityKey) -> Option<T::AccountId> {
        IdentityOf::<T>::get(key)
            .filter(|r| r.kind == IdentityKind::Node && r.status == IdentityStatus::Active)
            .map(|r| r.owner)
    }

    fn genesis_hash() -> [u8; 32] {
        Self::genesis_hash()
    }

    fn insert_node_unchecked(owner: &T::AccountId, key: IdentityKey) {
        IdentityOf::<T>::insert(
            key,
            IdentityRecord {
                owner: owner.clone(),
                kind: IdentityKind::Node,
                namespace: Label::default(),
                app_namespace: Label::default(),
                x25519: [0; 32],
                node: Some(NodeInfo {
                    peer_id: BoundedVec::default(),
                    addresses: BoundedVec::default(),
                }),
                deposit: Zero::zero(),
                registered_at: frame_system::Pallet::<T>::block_number(),
                rotations: 0,
                status: IdentityStatus::Active,
            },
        );
    }
}

impl<T: Config> psp_primitives::subscriptions::SubscriberRegistry<T::AccountId> for Pallet<T> {
    fn is_active_client(key: &IdentityKey) -> bool {
        IdentityOf::<T>::get(key)
            .is_some_and(|r| r.kind == IdentityKind::Client && r.status == IdentityStatus::Active)
    }

    fn insert_client_unchecked(owner: &T::AccountId, key: IdentityKey) {
        IdentityOf::<T>::insert(
            key,
            IdentityRecord {
                owner: owner.clone(),
                kind: IdentityKind::Client,
                namespace: Label::default(),
                app_namespace: Label::default(),
                x25519: [0; 32],
                node: None,
                deposit: Zero::zero(),
                registered_at: frame_system::Pallet::<T>::block_number(),
                rotations: 0,
                status: IdentityStatus::Active,
            },
        );
    }
}
