//! FRAME v2 benchmarks of every call, each at its worst case (a node identity with the most
//! and longest addresses; signature checks included).

use super::*;
use crate::Pallet as Identity;
use alloc::{vec, vec::Vec};
use frame_benchmarking::v2::*;
use frame_support::traits::{fungible::Mutate, Get};
use frame_system::RawOrigin;
use psp_primitives::{
    registration_message, rotation_message, IdentityKind, NodeDetails, Registration, Rotation,
};
use sp_core::{crypto::KeyTypeId, sr25519};
use sp_runtime::traits::{Bounded, Zero};

const KEY_TYPE: KeyTypeId = KeyTypeId(*b"psid");

fn identity_key() -> sr25519::Public {
    sp_io::crypto::sr25519_generate(KEY_TYPE, None)
}

fn sign(key: &sr25519::Public, message: &[u8]) -> [u8; 64] {
    sp_io::crypto::sr25519_sign(KEY_TYPE, key, message)
        .map(|s| s.0)
        .unwrap_or([0; 64])
}

fn worst_case_node<T: Config>(key: &sr25519::Public) -> Registration {
    let addresses = (0..T::MaxAddresses::get())
        .map(|_| vec![7u8; T::MaxAddressLen::get() as usize])
        .collect::<Vec<_>>();
    Registration {
        kind: IdentityKind::Node,
        namespace: vec![b'n'; 32],
        app_namespace: vec![b'a'; 32],
        key: key.0,
        x25519: [1; 32],
        node: Some(NodeDetails {
            peer_id: vec![3; T::MaxPeerIdLen::get() as usize],
            addresses,
        }),
    }
}

fn funded<T: Config>() -> T::AccountId
where
    T::Currency: Mutate<T::AccountId>,
{
    let who: T::AccountId = whitelisted_caller();
    T::Currency::set_balance(&who, BalanceOf::<T>::max_value() / 2u32.into());
    who
}

fn registered<T: Config>() -> (T::AccountId, sr25519::Public)
where
    T::Currency: Mutate<T::AccountId>,
{
    let owner = funded::<T>();
    let key = identity_key();
    let registration = worst_case_node::<T>(&key);
    let proof = sign(
        &key,
        &registration_message(&Identity::<T>::genesis_hash(), &owner, &registration),
    );
    if Identity::<T>::do_register(owner.clone(), registration, proof).is_err() {
        panic!("benchmark setup: registration failed");
    }
    (owner, key)
}

#[benchmarks(where T::Currency: Mutate<T::AccountId>)]
mod benchmarks {
    use super::*;

    #[benchmark]
    fn register() {
        let owner = funded::<T>();
        let key = identity_key();
        let registration = worst_case_node::<T>(&key);
        let proof = sign(
            &key,
            &registration_message(&Identity::<T>::genesis_hash(), &owner, &registration),
        );

        #[extrinsic_call]
        _(RawOrigin::Signed(owner), registration, proof);

        assert!(IdentityOf::<T>::contains_key(key.0));
    }

    #[benchmark]
    fn rotate() {
        let (owner, key) = registered::<T>();
        let addresses = (0..T::MaxAddresses::get())
            .map(|_| vec![9u8; T::MaxAddressLen::get() as usize])
            .collect::<Vec<_>>();
        let rotation = Rotation {
            key: key.0,
            x25519: [2; 32],
            addresses: Some(addresses),
            nonce: 0,
        };
        let proof = sign(
            &key,
            &rotation_message(&Identity::<T>::genesis_hash(), &rotation),
        );

        #[extrinsic_call]
        _(RawOrigin::Signed(owner), rotation, proof);

        assert_eq!(IdentityOf::<T>::get(key.0).map(|r| r.rotations), Some(1));
    }

    #[benchmark]
    fn revoke() {
        let (owner, key) = registered::<T>();

        #[extrinsic_call]
        _(RawOrigin::Signed(owner), key.0);

        assert!(IdentityOf::<T>::get(key.0).is_some_and(|r| r.deposit.is_zero()));
    }

    #[benchmark]
    fn force_revoke() {
        let (_, key) = registered::<T>();

        #[extrinsic_call]
        _(RawOrigin::Root, key.0);

        assert!(IdentityOf::<T>::get(key.0).is_some_and(|r| r.deposit.is_zero()));
    }

    impl_benchmark_test_suite!(Identity, crate::mock::new_test_ext(), crate::mock::Test);
}
