//! The wire format: every kind round-trips, and truncated, extended, oversized or random
//! input is refused without a panic.

use proptest::prelude::*;
use psp_group::wire::{
    self, Action, Ballot, Body, Heartbeat, Join, Leave, Packet, Proposal, Rollout, SealedKey,
    Welcome, MAX_PACKET_LEN, SEALED_KEY_LEN,
};
use psp_group::{AgreementSecret, Error, GroupId, KeyEpoch, MemberId, ProposalId, Sr25519Keypair};
use rand_core::OsRng;

const GROUP: GroupId = GroupId(42);

fn keys(i: u8) -> Sr25519Keypair {
    Sr25519Keypair::from_seed(&[i; 32])
}

/// One valid packet of every kind.
fn samples() -> Vec<Vec<u8>> {
    let k = keys(1);
    let join = Join {
        agreement_key: AgreementSecret::random(&mut OsRng).public(),
        sent_at: 1_700_000_000,
    };
    let join_packet = wire::encode_signed(GROUP, &keys(2), &Body::Join(join.clone()));
    let Ok(Packet::Signed(signed_join)) = wire::decode(&join_packet) else {
        panic!("join decodes");
    };
    let bodies = [
        Body::Join(join.clone()),
        Body::Proposal(Proposal {
            id: ProposalId(7),
            deadline: 1_700_000_120,
            action: Action::Admit {
                newcomer: MemberId(keys(2).public()),
                join,
                join_signature: signed_join.signature,
            },
        }),
        Body::Proposal(Proposal {
            id: ProposalId(8),
            deadline: 1_700_000_120,
            action: Action::Expel {
                member: MemberId([3; 32]),
            },
        }),
        Body::Ballot(Ballot {
            proposal: ProposalId(7),
            accept: true,
            cast_at: 1_700_000_001,
        }),
        Body::Heartbeat(Heartbeat {
            sent_at: 1_700_000_002,
            key_epoch: KeyEpoch(3),
        }),
        Body::Leave(Leave {
            sent_at: 1_700_000_003,
        }),
        Body::Rollout(Rollout {
            epoch: KeyEpoch(4),
            removed: vec![MemberId([5; 32])],
            keys: vec![SealedKey {
                member: MemberId([6; 32]),
                sealed: [9; SEALED_KEY_LEN],
            }],
        }),
        Body::Welcome(Welcome {
            newcomer: MemberId([7; 32]),
            sealed: vec![1; 200],
        }),
    ];
    let mut out: Vec<Vec<u8>> = bodies
        .iter()
        .map(|b| wire::encode_signed(GROUP, &k, b))
        .collect();
    // A group message (its ciphertext is opaque to the wire layer).
    let m = wire::GroupMessage {
        group: GROUP,
        epoch: KeyEpoch(1),
        nonce: [4; 12],
        ciphertext: vec![5; 64],
    };
    out.push(m.encode());
    out
}

#[test]
fn every_kind_round_trips_and_signed_ones_verify() {
    for bytes in samples() {
        match wire::decode(&bytes).expect("decodes") {
            Packet::Signed(u) => {
                let v = u.check().expect("signature verifies");
                assert_eq!(v.encode(), bytes, "canonical re-encoding");
            }
            Packet::Message(m) => assert_eq!(m.encode(), bytes),
        }
    }
}

#[test]
fn every_truncation_and_any_trailing_byte_is_refused() {
    for bytes in samples() {
        for len in 0..bytes.len() {
            assert!(wire::decode(&bytes[..len]).is_err(), "prefix {len} refused");
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(wire::decode(&longer).is_err());
    }
}

#[test]
fn a_changed_signed_byte_fails_the_signature_check() {
    for bytes in samples().into_iter().filter(|b| b[1] != 8) {
        // Past the header and sender, before the signature: a body byte.
        let i = 10 + 32;
        let mut changed = bytes.clone();
        changed[i] ^= 0x01;
        if let Ok(Packet::Signed(u)) = wire::decode(&changed) {
            assert!(matches!(u.check(), Err(Error::BadSignature { .. })));
        }
    }
}

#[test]
fn oversized_input_and_lists_are_refused() {
    let big = vec![1u8; MAX_PACKET_LEN + 1];
    assert!(matches!(wire::decode(&big), Err(Error::TooLong { .. })));
    // A rollout claiming more removed members than a group can have.
    let mut r = vec![wire::VERSION, 6];
    r.extend_from_slice(&GROUP.0.to_be_bytes());
    r.extend_from_slice(&[0; 32]);
    r.extend_from_slice(&1u64.to_be_bytes());
    r.extend_from_slice(&u16::MAX.to_be_bytes());
    assert!(matches!(wire::decode(&r), Err(Error::TooLong { .. })));
    // A welcome claiming a huge sealed part.
    let mut w = vec![wire::VERSION, 7];
    w.extend_from_slice(&GROUP.0.to_be_bytes());
    w.extend_from_slice(&[0; 64]);
    w.extend_from_slice(&u32::MAX.to_be_bytes());
    assert!(matches!(wire::decode(&w), Err(Error::TooLong { .. })));
    // A group message whose length runs past the end.
    let mut m = wire::GroupMessage {
        group: GROUP,
        epoch: KeyEpoch(0),
        nonce: [0; 12],
        ciphertext: vec![0; 10],
    }
    .encode();
    m.truncate(m.len() - 1);
    assert!(matches!(wire::decode(&m), Err(Error::Truncated { .. })));
}

#[test]
fn unknown_versions_kinds_and_flags_are_refused() {
    let samples = samples();
    let mut v = samples[0].clone();
    v[0] = 2;
    assert!(matches!(
        wire::decode(&v),
        Err(Error::Version { found: 2, .. })
    ));
    let mut k = samples[0].clone();
    k[1] = 99;
    assert!(matches!(wire::decode(&k), Err(Error::BadTag { .. })));
    // The ballot's choice byte: only 0 or 1.
    let mut b = samples[3].clone();
    b[10 + 32 + 8] = 2;
    assert!(matches!(wire::decode(&b), Err(Error::BadTag { .. })));
    // The proposal's action byte: only 1 or 2.
    let mut p = samples[2].clone();
    p[10 + 32 + 16] = 3;
    assert!(matches!(wire::decode(&p), Err(Error::BadTag { .. })));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2048))]

    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
        let _ = wire::decode(&bytes);
    }

    #[test]
    fn random_bytes_behind_a_valid_header_never_panic(
        kind in 0u8..10,
        body in proptest::collection::vec(any::<u8>(), 0..1024),
    ) {
        let mut bytes = vec![wire::VERSION, kind];
        bytes.extend_from_slice(&GROUP.0.to_be_bytes());
        bytes.extend_from_slice(&body);
        if let Ok(Packet::Signed(u)) = wire::decode(&bytes) {
            prop_assert!(u.check().is_err(), "random bytes do not carry a valid signature");
        }
    }

    #[test]
    fn mutated_valid_packets_never_panic_a_group(
        which in 0usize..9,
        flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..4),
    ) {
        let mut bytes = samples()[which].clone();
        for (i, x) in flips {
            let n = bytes.len();
            bytes[i % n] ^= x | 1;
        }
        let mut g = psp_group::Group::create(
            GROUP,
            psp_group::Rules::default(),
            keys(1),
            AgreementSecret::random(&mut OsRng),
            1_700_000_000,
            &mut OsRng,
        ).expect("group");
        let _ = g.handle_input(1_700_000_000, &bytes, &mut OsRng);
    }
}
