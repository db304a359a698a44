//! Tests of every call and every error path; each failing call is checked to change nothing.

use crate::{mock::*, Error, Event, HoldReason, IdentityOf};
use frame_support::{
    assert_noop, assert_ok,
    traits::fungible::{Inspect, InspectHold},
};
use psp_primitives::{
    registration_message, rotation_message, IdString, IdentityKind, IdentityStatus, NodeDetails,
    Registration, Rotation,
};
use sp_core::{sr25519, Pair};
use sp_runtime::{traits::BadOrigin, DispatchError};

fn pair(seed: u8) -> sr25519::Pair {
    sr25519::Pair::from_seed(&[seed; 32])
}

fn client(key: &sr25519::Pair) -> Registration {
    Registration {
        kind: IdentityKind::Client,
        namespace: b"peerstream".to_vec(),
        app_namespace: b"account".to_vec(),
        key: key.public().0,
        x25519: [9; 32],
        node: None,
    }
}

fn node(key: &sr25519::Pair, addresses: usize) -> Registration {
    Registration {
        kind: IdentityKind::Node,
        node: Some(NodeDetails {
            peer_id: vec![0x12; 38],
            addresses: (0..addresses)
                .map(|i| vec![4, 127, 0, 0, 1, i as u8])
                .collect(),
        }),
        ..client(key)
    }
}

fn prove(key: &sr25519::Pair, owner: u64, registration: &Registration) -> [u8; 64] {
    key.sign(&registration_message(
        &Identity::genesis_hash(),
        &owner,
        registration,
    ))
    .0
}

fn register(
    owner: u64,
    key: &sr25519::Pair,
    registration: Registration,
) -> Result<(), DispatchError> {
    let proof = prove(key, owner, &registration);
    Identity::register(RuntimeOrigin::signed(owner), registration, proof)
}

fn rotation(
    key: &sr25519::Pair,
    nonce: u32,
    addresses: Option<Vec<Vec<u8>>>,
) -> (Rotation, [u8; 64]) {
    let rotation = Rotation {
        key: key.public().0,
        x25519: [nonce as u8 + 50; 32],
        addresses,
        nonce,
    };
    let proof = key
        .sign(&rotation_message(&Identity::genesis_hash(), &rotation))
        .0;
    (rotation, proof)
}

fn held(who: u64) -> u64 {
    Balances::balance_on_hold(&HoldReason::IdentityDeposit.into(), &who)
}

#[test]
fn register_holds_deposit_and_stores_identity() {
    new_test_ext().execute_with(|| {
        let key = pair(1);
        assert_ok!(register(ALICE, &key, client(&key)));
        assert_eq!(held(ALICE), DEPOSIT);
        assert_eq!(Balances::balance(&ALICE), 10_000 - DEPOSIT);
        let record = IdentityOf::<Test>::get(key.public().0).unwrap();
        assert_eq!(record.owner, ALICE);
        assert_eq!(record.status, IdentityStatus::Active);
        System::assert_last_event(
            Event::IdentityRegistered {
                owner: ALICE,
                key: key.public().0,
                kind: IdentityKind::Client,
                deposit: DEPOSIT,
            }
            .into(),
        );
    });
}

#[test]
fn one_account_registers_identities_for_several_devices() {
    new_test_ext().execute_with(|| {
        for seed in 1..=3 {
            let key = pair(seed);
            let registration = Registration {
                kind: IdentityKind::Device,
                ..client(&key)
            };
            assert_ok!(register(ALICE, &key, registration));
        }
        assert_eq!(held(ALICE), 3 * DEPOSIT);
    });
}

#[test]
fn node_identity_keeps_peer_id_and_addresses() {
    new_test_ext().execute_with(|| {
        let key = pair(2);
        assert_ok!(register(BOB, &key, node(&key, 4)));
        let info = Identity::identity_info(key.public().0).unwrap();
        let details = info.node.unwrap();
        assert_eq!(details.addresses.len(), 4);
        assert_eq!(details.peer_id, vec![0x12; 38]);
    });
}

#[test]
fn lookup_by_id_string_requires_matching_checksum_and_names() {
    new_test_ext().execute_with(|| {
        let key = pair(1);
        assert_ok!(register(ALICE, &key, client(&key)));
        let info = Identity::identity_info(key.public().0).unwrap();
        let id = core::str::from_utf8(&info.id).unwrap().to_string();
        assert!(id.starts_with("peerstream.client.account."));
        assert_eq!(
            Identity::identity_by_id(id.as_bytes()).unwrap().key,
            key.public().0
        );
        // Same key under another kind: grammatical, checksum computed, but not registered so.
        let other =
            IdString::new("peerstream", IdentityKind::Node, "account", key.public().0).unwrap();
        assert!(Identity::identity_by_id(other.to_string().as_bytes()).is_none());
        // A typo in the key part breaks the checksum or the grammar.
        assert!(
            Identity::identity_by_id(id.replace("peerstream", "peerstreem").as_bytes()).is_none()
        );
        assert!(Identity::identity_by_id(b"not an id").is_none());
    });
}

#[test]
fn registering_twice_is_refused() {
    new_test_ext().execute_with(|| {
        let key = pair(1);
        assert_ok!(register(ALICE, &key, client(&key)));
        let proof = prove(&key, BOB, &client(&key));
        assert_noop!(
            Identity::register(RuntimeOrigin::signed(BOB), client(&key), proof),
            Error::<Test>::AlreadyRegistered
        );
    });
}

#[test]
fn proof_must_verify_for_this_owner_and_registration() {
    new_test_ext().execute_with(|| {
        let key = pair(1);
        // Signed by another key.
        let forged = prove(&pair(7), ALICE, &client(&key));
        assert_noop!(
            Identity::register(RuntimeOrigin::signed(ALICE), client(&key), forged),
            Error::<Test>::BadProof
        );
        // A proof made for ALICE cannot be used by BOB (front-running).
        let for_alice = prove(&key, ALICE, &client(&key));
        assert_noop!(
            Identity::register(RuntimeOrigin::signed(BOB), client(&key), for_alice),
            Error::<Test>::BadProof
        );
        // A proof over other contents does not cover changed contents.
        let mut changed = client(&key);
        changed.x25519 = [1; 32];
        assert_noop!(
            Identity::register(RuntimeOrigin::signed(ALICE), changed, for_alice),
            Error::<Test>::BadProof
        );
    });
}

#[test]
fn namespaces_are_validated() {
    new_test_ext().execute_with(|| {
        let key = pair(1);
        let long = Registration {
            namespace: vec![b'a'; 33],
            ..client(&key)
        };
        assert_noop!(register(ALICE, &key, long), Error::<Test>::NamespaceTooLong);
        let long_app = Registration {
            app_namespace: vec![b'a'; 33],
            ..client(&key)
        };
        assert_noop!(
            register(ALICE, &key, long_app),
            Error::<Test>::NamespaceTooLong
        );
        for bad in [&b""[..], b"Upper", b"-dash", b"dot.ted", b"sp ace"] {
            let registration = Registration {
                namespace: bad.to_vec(),
                ..client(&key)
            };
            assert_noop!(
                register(ALICE, &key, registration),
                Error::<Test>::InvalidNamespace
            );
        }
    });
}

#[test]
fn node_details_are_bounded_and_only_for_nodes() {
    new_test_ext().execute_with(|| {
        let key = pair(2);
        assert_noop!(
            register(BOB, &key, node(&key, 5)),
            Error::<Test>::TooManyAddresses
        );
        let mut long_peer = node(&key, 1);
        long_peer.node.as_mut().unwrap().peer_id = vec![1; 65];
        assert_noop!(register(BOB, &key, long_peer), Error::<Test>::PeerIdTooLong);
        let mut long_addr = node(&key, 1);
        long_addr.node.as_mut().unwrap().addresses = vec![vec![1; 65]];
        assert_noop!(register(BOB, &key, long_addr), Error::<Test>::BadAddress);
        let mut empty_addr = node(&key, 1);
        empty_addr.node.as_mut().unwrap().addresses = vec![vec![]];
        assert_noop!(register(BOB, &key, empty_addr), Error::<Test>::BadAddress);
        let bare = Registration {
            node: None,
            ..node(&key, 1)
        };
        assert_noop!(
            register(BOB, &key, bare),
            Error::<Test>::NodeDetailsRequired
        );
        let client_with_node = Registration {
            kind: IdentityKind::Client,
            ..node(&key, 1)
        };
        assert_noop!(
            register(BOB, &key, client_with_node),
            Error::<Test>::NodeDetailsNotAllowed
        );
    });
}

#[test]
fn balance_below_deposit_is_refused() {
    new_test_ext().execute_with(|| {
        let key = pair(3);
        assert_noop!(
            register(POOR, &key, client(&key)),
            Error::<Test>::InsufficientBalance
        );
        assert_eq!(Balances::balance(&POOR), 50);
    });
}

#[test]
fn rotate_replaces_keys_once_per_nonce() {
    new_test_ext().execute_with(|| {
        let key = pair(2);
        assert_ok!(register(BOB, &key, node(&key, 1)));
        let new_addresses = vec![vec![4, 10, 0, 0, 1], vec![4, 10, 0, 0, 2]];
        let (r0, p0) = rotation(&key, 0, Some(new_addresses.clone()));
        assert_ok!(Identity::rotate(RuntimeOrigin::signed(BOB), r0.clone(), p0));
        let info = Identity::identity_info(key.public().0).unwrap();
        assert_eq!(info.x25519, [50; 32]);
        assert_eq!(info.node.unwrap().addresses, new_addresses);
        assert_eq!(info.rotations, 1);
        System::assert_last_event(
            Event::KeysRotated {
                key: key.public().0,
                rotations: 1,
            }
            .into(),
        );
        // Replaying the same rotation is refused.
        assert_noop!(
            Identity::rotate(RuntimeOrigin::signed(BOB), r0, p0),
            Error::<Test>::StaleRotation
        );
        // The next nonce works.
        let (r1, p1) = rotation(&key, 1, None);
        assert_ok!(Identity::rotate(RuntimeOrigin::signed(BOB), r1, p1));
    });
}

#[test]
fn rotate_error_paths() {
    new_test_ext().execute_with(|| {
        let key = pair(1);
        let (r, p) = rotation(&key, 0, None);
        assert_noop!(
            Identity::rotate(RuntimeOrigin::signed(ALICE), r.clone(), p),
            Error::<Test>::NotRegistered
        );
        assert_ok!(register(ALICE, &key, client(&key)));
        assert_noop!(
            Identity::rotate(RuntimeOrigin::signed(BOB), r.clone(), p),
            Error::<Test>::NotOwner
        );
        let forged = pair(9)
            .sign(&rotation_message(&Identity::genesis_hash(), &r))
            .0;
        assert_noop!(
            Identity::rotate(RuntimeOrigin::signed(ALICE), r, forged),
            Error::<Test>::BadProof
        );
        let (with_addresses, p) = rotation(&key, 0, Some(vec![vec![1]]));
        assert_noop!(
            Identity::rotate(RuntimeOrigin::signed(ALICE), with_addresses, p),
            Error::<Test>::NodeDetailsNotAllowed
        );
        let node_key = pair(2);
        assert_ok!(register(BOB, &node_key, node(&node_key, 1)));
        let (too_many, p) = rotation(&node_key, 0, Some(vec![vec![1]; 5]));
        assert_noop!(
            Identity::rotate(RuntimeOrigin::signed(BOB), too_many, p),
            Error::<Test>::TooManyAddresses
        );
    });
}

#[test]
fn revoke_releases_deposit_and_leaves_a_tombstone() {
    new_test_ext().execute_with(|| {
        let key = pair(1);
        assert_ok!(register(ALICE, &key, client(&key)));
        assert_noop!(
            Identity::revoke(RuntimeOrigin::signed(BOB), key.public().0),
            Error::<Test>::NotOwner
        );
        assert_ok!(Identity::revoke(
            RuntimeOrigin::signed(ALICE),
            key.public().0
        ));
        assert_eq!(held(ALICE), 0);
        assert_eq!(Balances::balance(&ALICE), 10_000);
        System::assert_last_event(
            Event::IdentityRevoked {
                key: key.public().0,
                owner: ALICE,
                released: DEPOSIT,
            }
            .into(),
        );
        let info = Identity::identity_info(key.public().0).unwrap();
        assert_eq!(
            info.status,
            IdentityStatus::Revoked {
                at: 1,
                forced: false
            }
        );
        assert_eq!(info.deposit, 0);
    });
}

#[test]
fn a_revoked_identity_cannot_be_used_again() {
    new_test_ext().execute_with(|| {
        let key = pair(1);
        assert_ok!(register(ALICE, &key, client(&key)));
        assert_ok!(Identity::revoke(
            RuntimeOrigin::signed(ALICE),
            key.public().0
        ));
        assert_noop!(
            Identity::revoke(RuntimeOrigin::signed(ALICE), key.public().0),
            Error::<Test>::IdentityRevoked
        );
        let (r, p) = rotation(&key, 0, None);
        assert_noop!(
            Identity::rotate(RuntimeOrigin::signed(ALICE), r, p),
            Error::<Test>::IdentityRevoked
        );
        assert_noop!(
            register(ALICE, &key, client(&key)),
            Error::<Test>::IdentityRevoked
        );
        assert_noop!(
            Identity::force_revoke(RuntimeOrigin::root(), key.public().0),
            Error::<Test>::IdentityRevoked
        );
    });
}

#[test]
fn force_revoke_slashes_the_deposit() {
    new_test_ext().execute_with(|| {
        let key = pair(1);
        assert_ok!(register(ALICE, &key, client(&key)));
        let issuance = Balances::total_issuance();
        assert_noop!(
            Identity::force_revoke(RuntimeOrigin::signed(ALICE), key.public().0),
            BadOrigin
        );
        assert_ok!(Identity::force_revoke(
            RuntimeOrigin::root(),
            key.public().0
        ));
        assert_eq!(held(ALICE), 0);
        assert_eq!(Balances::balance(&ALICE), 10_000 - DEPOSIT);
        assert_eq!(Balances::total_issuance(), issuance - DEPOSIT);
        System::assert_last_event(
            Event::IdentityForceRevoked {
                key: key.public().0,
                owner: ALICE,
                slashed: DEPOSIT,
            }
            .into(),
        );
        assert_eq!(
            Identity::identity_info(key.public().0).unwrap().status,
            IdentityStatus::Revoked {
                at: 1,
                forced: true
            }
        );
        assert_noop!(
            Identity::force_revoke(RuntimeOrigin::root(), [0; 32]),
            Error::<Test>::NotRegistered
        );
    });
}

#[test]
fn unsigned_origins_are_refused() {
    new_test_ext().execute_with(|| {
        let key = pair(1);
        let proof = prove(&key, ALICE, &client(&key));
        assert_noop!(
            Identity::register(RuntimeOrigin::none(), client(&key), proof),
            BadOrigin
        );
        assert_noop!(
            Identity::revoke(RuntimeOrigin::root(), key.public().0),
            BadOrigin
        );
    });
}

#[test]
fn nodes_lists_active_nodes_page_by_page() {
    new_test_ext().execute_with(|| {
        for seed in 1..=5 {
            let key = pair(seed);
            assert_ok!(register(ALICE, &key, node(&key, 1)));
        }
        let client_key = pair(9);
        assert_ok!(register(ALICE, &client_key, client(&client_key)));
        assert_ok!(Identity::revoke(
            RuntimeOrigin::signed(ALICE),
            pair(3).public().0
        ));

        let first = Identity::nodes(None, 2);
        assert_eq!(first.len(), 2);
        let rest = Identity::nodes(Some(first[1].key), 10);
        let mut all: Vec<_> = first.iter().chain(rest.iter()).map(|i| i.key).collect();
        all.sort();
        let mut want: Vec<_> = [1u8, 2, 4, 5].iter().map(|s| pair(*s).public().0).collect();
        want.sort();
        assert_eq!(
            all, want,
            "active nodes only, each once, no clients, no revoked"
        );
    });
}
