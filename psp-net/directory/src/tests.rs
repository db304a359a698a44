//! Wire formats, checks, consensus, signatures and equivocation of the directory.

use super::*;
use crate::bytes::BytesError;
use crate::crypto::{NodeId, Sr25519Keypair};
use crate::registry::{IdentityKind, StaticRegistry};

pub(super) const GENESIS: [u8; 32] = [0x6e; 32];
pub(super) const PERIOD: u64 = 1_000;

pub(super) fn key(i: u8) -> Sr25519Keypair {
    Sr25519Keypair::from_seed(&[i; 32])
}

pub(super) fn node(i: u8) -> NodeId {
    NodeId(key(i).public())
}

/// Nodes `1..=n` registered as overlay nodes.
pub(super) fn registry(n: u8) -> StaticRegistry {
    let mut r = StaticRegistry::default();
    for i in 1..=n {
        r.insert(key(i).public(), IdentityKind::Node);
    }
    r
}

pub(super) fn report(i: u8, period: u64, issued_at: u64) -> StatusReport {
    StatusReport {
        node: node(i),
        period,
        flags: flags::RELAY | flags::ENTRY,
        addresses: vec![format!("/ip4/10.0.0.{i}/tcp/4001")],
        issued_at,
    }
}

pub(super) fn signed_report(i: u8, period: u64, issued_at: u64) -> SignedStatus {
    SignedStatus::sign(report(i, period, issued_at), &key(i)).unwrap()
}

fn entry(i: u8, flags: u8, addresses: &[&str]) -> DirectoryEntry {
    DirectoryEntry {
        node: node(i),
        flags,
        addresses: addresses.iter().map(|a| a.to_string()).collect(),
    }
}

fn vote(voter: u8, mut entries: Vec<DirectoryEntry>) -> Vote {
    entries.sort();
    Vote {
        period: PERIOD,
        voter: node(voter),
        entries,
    }
}

/// Every proper prefix of `bytes` is refused as truncated.
fn assert_prefixes_truncated<T: std::fmt::Debug>(
    bytes: &[u8],
    decode: impl Fn(&[u8]) -> Result<T, DirectoryError>,
) {
    for len in 0..bytes.len() {
        match decode(&bytes[..len]) {
            Err(DirectoryError::Truncated { .. }) => {}
            other => panic!("prefix of {len} bytes: {other:?}"),
        }
    }
}

// --- status reports

#[test]
fn status_round_trips_and_verifies() {
    let s = signed_report(1, PERIOD, 500);
    let bytes = s.encode();
    let back = SignedStatus::decode(&bytes).unwrap();
    assert_eq!(back, s);
    assert_eq!(back.encode(), bytes);
    let got = back.verify(500, PERIOD, &registry(3)).unwrap();
    assert_eq!(got, report(1, PERIOD, 500));
    // Exactly at the skew limit is still fine.
    assert!(back
        .verify(500 - MAX_CLOCK_SKEW_SECS, PERIOD, &registry(3))
        .is_ok());
}

#[test]
fn status_refuses_forged_tampered_replayed_and_future_reports() {
    let reg = registry(3);
    let bytes = signed_report(1, PERIOD, 500).encode();

    // Forged: node 2's id on node 1's signature.
    let mut forged = bytes.clone();
    forged[..32].copy_from_slice(&node(2).0);
    let err = SignedStatus::decode(&forged)
        .unwrap()
        .verify(500, PERIOD, &reg);
    assert!(matches!(err, Err(DirectoryError::BadSignature { signer, .. }) if signer == node(2)));

    // Tampered: the flags byte (after node id and period).
    let mut tampered = bytes.clone();
    tampered[40] = flags::ALL;
    let err = SignedStatus::decode(&tampered)
        .unwrap()
        .verify(500, PERIOD, &reg);
    assert!(matches!(err, Err(DirectoryError::BadSignature { .. })));

    // Replayed for another period.
    let s = SignedStatus::decode(&bytes).unwrap();
    assert_eq!(
        s.verify(500, PERIOD + 1, &reg),
        Err(DirectoryError::WrongPeriod {
            what: "status",
            node: node(1),
            expected: PERIOD + 1,
            got: PERIOD
        })
    );

    // Dated beyond the clock skew.
    assert!(matches!(
        s.verify(500 - MAX_CLOCK_SKEW_SECS - 1, PERIOD, &reg),
        Err(DirectoryError::FromTheFuture { issued_at: 500, .. })
    ));
}

#[test]
fn status_refuses_unknown_revoked_and_non_node_signers() {
    let s = signed_report(1, PERIOD, 500);
    let mut reg = StaticRegistry::default();
    assert_eq!(
        s.verify(500, PERIOD, &reg),
        Err(DirectoryError::UnknownNode { node: node(1) })
    );
    reg.insert(node(1).0, IdentityKind::Client);
    assert_eq!(
        s.verify(500, PERIOD, &reg),
        Err(DirectoryError::NotANode {
            node: node(1),
            kind: IdentityKind::Client
        })
    );
    reg.revoke(node(1).0);
    assert_eq!(
        s.verify(500, PERIOD, &reg),
        Err(DirectoryError::RevokedNode { node: node(1) })
    );
}

/// A status report's bytes with arbitrary flags and raw addresses (not signed).
fn raw_status(flags: u8, addresses: &[&[u8]]) -> Vec<u8> {
    let mut b = node(1).0.to_vec();
    b.extend_from_slice(&PERIOD.to_be_bytes());
    b.push(flags);
    b.push(addresses.len() as u8);
    for a in addresses {
        b.push(a.len() as u8);
        b.extend_from_slice(a);
    }
    b.extend_from_slice(&500u64.to_be_bytes());
    b.extend_from_slice(&[0x11; 64]);
    b
}

#[test]
fn status_decoder_refuses_malformed_inputs() {
    let good = signed_report(1, PERIOD, 500).encode();
    assert_prefixes_truncated(&good, SignedStatus::decode);
    let mut long = good.clone();
    long.push(0);
    assert_eq!(
        SignedStatus::decode(&long),
        Err(DirectoryError::TrailingBytes {
            what: "status report",
            extra: 1
        })
    );
    assert!(SignedStatus::decode(&raw_status(1, &[b"/a", b"/b", b"/c", b"/d"])).is_ok());
    assert!(matches!(
        SignedStatus::decode(&raw_status(1, &[b"/a", b"/b", b"/c", b"/d", b"/e"])),
        Err(DirectoryError::TooMany {
            what: "addresses",
            count: 5,
            max: 4
        })
    ));
    assert!(matches!(
        SignedStatus::decode(&raw_status(1, &[&[b'a'; 129]])),
        Err(DirectoryError::InvalidAddress { why, .. }) if why.contains("longer")
    ));
    assert!(SignedStatus::decode(&raw_status(1, &[&[b'a'; 128]])).is_ok());
    assert!(matches!(
        SignedStatus::decode(&raw_status(1, &[&[0xff, 0xfe]])),
        Err(DirectoryError::InvalidAddress {
            why: "not UTF-8",
            ..
        })
    ));
    assert!(matches!(
        SignedStatus::decode(&raw_status(1, &[b""])),
        Err(DirectoryError::InvalidAddress { why: "empty", .. })
    ));
    assert!(matches!(
        SignedStatus::decode(&raw_status(1, &[b"/a", b"/a"])),
        Err(DirectoryError::InvalidAddress {
            why: "listed twice",
            ..
        })
    ));
    assert!(matches!(
        SignedStatus::decode(&raw_status(0x20, &[b"/a"])),
        Err(DirectoryError::UnknownFlags { flags: 0x20, .. })
    ));
}

#[test]
fn status_signing_refuses_what_decoding_would() {
    let mut r = report(1, PERIOD, 500);
    r.addresses = (0..5).map(|i| format!("/a/{i}")).collect();
    assert!(matches!(
        SignedStatus::sign(r, &key(1)),
        Err(DirectoryError::TooMany { .. })
    ));
    assert!(matches!(
        SignedStatus::sign(report(1, PERIOD, 500), &key(2)),
        Err(DirectoryError::BadSignature { .. })
    ));
}

// --- votes

#[test]
fn vote_round_trips_and_verifies() {
    let reports: Vec<StatusReport> = (1..=5).rev().map(|i| report(i, PERIOD, 500)).collect();
    let v = Vote::from_reports(PERIOD, node(9), &reports);
    assert!(v.entries.windows(2).all(|w| w[0].node < w[1].node));
    let s = SignedVote::sign(v.clone(), &key(9)).unwrap();
    let bytes = s.encode();
    let back = SignedVote::decode(&bytes).unwrap();
    assert_eq!(back.encode(), bytes);
    let set = [node(8), node(9)];
    assert_eq!(back.verify(PERIOD, &set), Ok(v));
    assert_eq!(
        back.verify(PERIOD, &[node(8)]),
        Err(DirectoryError::NotInDiscoverySet {
            what: "vote",
            signer: node(9),
            period: PERIOD
        })
    );
    assert!(matches!(
        back.verify(PERIOD + 1, &set),
        Err(DirectoryError::WrongPeriod { .. })
    ));
    let mut tampered = bytes.clone();
    let last_flags = bytes.len() - 64 - 1 - 1 - 22 - 1; // flags of the last entry
    tampered[last_flags] ^= flags::ORACLE;
    assert!(matches!(
        SignedVote::decode(&tampered).unwrap().verify(PERIOD, &set),
        Err(DirectoryError::BadSignature { what: "vote", .. })
    ));
    assert_prefixes_truncated(&bytes, SignedVote::decode);
}

/// A vote's bytes with raw entries (unsigned).
fn raw_vote(count: u32, entries: &[DirectoryEntry]) -> Vec<u8> {
    let mut b = PERIOD.to_be_bytes().to_vec();
    b.extend_from_slice(&node(9).0);
    b.extend_from_slice(&count.to_be_bytes());
    for e in entries {
        b.extend_from_slice(&e.node.0);
        b.push(e.flags);
        b.push(e.addresses.len() as u8);
        for a in &e.addresses {
            b.push(a.len() as u8);
            b.extend_from_slice(a.as_bytes());
        }
    }
    b.extend_from_slice(&[0x11; 64]);
    b
}

#[test]
fn vote_decoder_refuses_unsorted_duplicate_and_oversized_lists() {
    let mut es = vec![entry(1, 1, &["/a"]), entry(2, 1, &["/b"])];
    es.sort();
    assert!(SignedVote::decode(&raw_vote(2, &es)).is_ok());
    let swapped = [es[1].clone(), es[0].clone()];
    assert!(matches!(
        SignedVote::decode(&raw_vote(2, &swapped)),
        Err(DirectoryError::Unsorted {
            what: "entries",
            ..
        })
    ));
    let dup = [es[0].clone(), es[0].clone()];
    assert!(matches!(
        SignedVote::decode(&raw_vote(2, &dup)),
        Err(DirectoryError::Unsorted { .. })
    ));
    // A huge count is refused before anything is allocated or read.
    assert_eq!(
        SignedVote::decode(&raw_vote(u32::MAX, &[])),
        Err(DirectoryError::TooMany {
            what: "entries",
            count: u32::MAX as usize,
            max: MAX_VOTE_ENTRIES
        })
    );
    // A count within limits but beyond the bytes is truncated, not a panic.
    let mut short = raw_vote(MAX_VOTE_ENTRIES as u32, &es);
    short.truncate(short.len() - 64);
    assert!(matches!(
        SignedVote::decode(&short),
        Err(DirectoryError::Truncated { .. })
    ));
    // Signing refuses an unsorted vote.
    let bad = Vote {
        period: PERIOD,
        voter: node(9),
        entries: swapped.to_vec(),
    };
    assert!(matches!(
        SignedVote::sign(bad, &key(9)),
        Err(DirectoryError::Unsorted { .. })
    ));
}

// --- consensus

fn five_votes() -> Vec<Vote> {
    use flags::*;
    vec![
        vote(
            11,
            vec![
                entry(1, RELAY | ENTRY, &["/x"]),
                entry(2, RELAY, &["/b"]),
                entry(3, RELAY, &["/c"]),
            ],
        ),
        vote(
            12,
            vec![
                entry(1, RELAY | ENTRY, &["/x"]),
                entry(2, RELAY | ORACLE, &["/a"]),
                entry(3, RELAY, &["/c"]),
            ],
        ),
        vote(
            13,
            vec![entry(1, RELAY, &["/y"]), entry(2, RELAY | ORACLE, &["/b"])],
        ),
        vote(14, vec![entry(1, RELAY, &["/y"]), entry(4, RELAY, &["/d"])]),
        vote(15, vec![entry(1, ENTRY, &["/x"])]),
    ]
}

#[test]
fn consensus_lists_majority_nodes_with_majority_flags_and_addresses() {
    use flags::*;
    let d = consensus(PERIOD, 10, 20, &five_votes());
    assert_eq!((d.period, d.valid_after, d.valid_until), (PERIOD, 10, 20));
    // Node 1: 5/5 votes; RELAY 4/5, ENTRY 3/5; "/x" 3 votes.
    // Node 2: 3/5 votes; RELAY 3/3, ORACLE 2/3; "/b" 2 votes, "/a" 1.
    // Node 3: 2/5, node 4: 1/5: not listed.
    assert_eq!(
        d.entries,
        vec![
            entry(1, RELAY | ENTRY, &["/x"]),
            entry(2, RELAY | ORACLE, &["/b"])
        ]
    );
    assert!(d.get(&node(1)).is_some());
    assert!(d.get(&node(3)).is_none());

    // Exactly half is not a majority: node 1 in 2 of 4 votes.
    let four = vec![
        vote(11, vec![entry(1, RELAY, &["/a"])]),
        vote(12, vec![entry(1, RELAY, &["/a"])]),
        vote(13, vec![]),
        vote(14, vec![]),
    ];
    assert!(consensus(PERIOD, 0, 1, &four).entries.is_empty());

    // An address tie goes to the smallest list; a flag at exactly half is not set.
    let tie = vec![
        vote(11, vec![entry(1, RELAY, &["/z"])]),
        vote(12, vec![entry(1, RELAY | ENTRY, &["/b"])]),
        vote(13, vec![entry(1, ENTRY, &["/b"])]),
        vote(14, vec![entry(1, 0, &["/z"])]),
    ];
    let d = consensus(PERIOD, 0, 1, &tie);
    assert_eq!(d.entries, vec![entry(1, 0, &["/b"])]);
}

#[test]
fn consensus_is_deterministic_whatever_the_order() {
    let votes = five_votes();
    let reference = consensus(PERIOD, 10, 20, &votes).encode();
    // Every rotation and the reverse of every rotation.
    for k in 0..votes.len() {
        let mut v = votes.clone();
        v.rotate_left(k);
        assert_eq!(consensus(PERIOD, 10, 20, &v).encode(), reference);
        v.reverse();
        assert_eq!(consensus(PERIOD, 10, 20, &v).encode(), reference);
    }
    // A voter counted twice, or a vote for another period, changes nothing.
    let mut v = votes.clone();
    v.push(votes[0].clone());
    let mut other = votes[3].clone();
    other.period += 1;
    other.voter = node(99);
    v.push(other);
    assert_eq!(consensus(PERIOD, 10, 20, &v).encode(), reference);
}

// --- directories

fn directory() -> Directory {
    consensus(PERIOD, 100, 200, &five_votes())
}

#[test]
fn directory_round_trips_and_decoder_refuses_bad_input() {
    let d = directory();
    let bytes = d.encode();
    assert_eq!(Directory::decode(&bytes), Ok(d.clone()));
    assert_eq!(d.hash(), crate::crypto::blake2_256(&bytes));
    assert_prefixes_truncated(&bytes, Directory::decode);
    let mut wrong = bytes.clone();
    wrong[0] ^= 1;
    assert_eq!(
        Directory::decode(&wrong),
        Err(DirectoryError::WrongTag { what: "directory" })
    );
    let mut inverted = d.clone();
    inverted.valid_after = 300;
    assert!(matches!(
        Directory::decode(&inverted.encode()),
        Err(DirectoryError::InvalidValidity { .. })
    ));
    let mut long = bytes;
    long.push(7);
    assert!(matches!(
        Directory::decode(&long),
        Err(DirectoryError::TrailingBytes { extra: 1, .. })
    ));
}

/// The directory signed by discovery nodes `signers`.
fn signed_by(d: &Directory, signers: &[u8]) -> SignedDirectory {
    let mut sd = SignedDirectory::new(d.clone());
    for &i in signers {
        sd.sign(&key(i), &GENESIS);
    }
    sd
}

fn set() -> Vec<NodeId> {
    (11..=15).map(node).collect()
}

#[test]
fn signed_directory_round_trips_and_verifies_at_threshold() {
    let sd = signed_by(&directory(), &[13, 11, 12]);
    assert!(sd.signatures.windows(2).all(|w| w[0].0 < w[1].0));
    let bytes = sd.encode();
    let back = SignedDirectory::decode(&bytes).unwrap();
    assert_eq!(back, sd);
    let v = back.verify(&GENESIS, &set(), 3, 150).unwrap();
    let mut expected = [node(11), node(12), node(13)];
    expected.sort();
    assert_eq!(v.signers(), &expected[..]);
    assert_eq!(v.directory(), &directory());
    assert_eq!(default_threshold(5), 3);
    assert_eq!(default_threshold(4), 3);
    assert_eq!(default_threshold(1), 1);
    assert_eq!(
        back.verify(&GENESIS, &set(), 4, 150),
        Err(DirectoryError::TooFewSignatures {
            period: PERIOD,
            valid: 3,
            threshold: 4
        })
    );
    assert_prefixes_truncated(&bytes, SignedDirectory::decode);
}

#[test]
fn signed_directory_ignores_unknown_bad_and_duplicate_signatures() {
    let d = directory();
    // Two members, one outsider, one member's signature corrupted, one member twice.
    let mut sd = signed_by(&d, &[11, 12, 99]);
    let bad = DirectorySignature::sign(&d, &key(13), &GENESIS);
    let mut corrupt = bad.signature;
    corrupt[0] ^= 1;
    assert!(sd.add_signature(node(13), corrupt));
    sd.signatures.push((node(11), sd.signatures[0].1)); // hand-built duplicate
    assert_eq!(sd.valid_signers(&GENESIS, &set()), vec![node(11), node(12)]);
    assert!(matches!(
        sd.verify(&GENESIS, &set(), 3, 150),
        Err(DirectoryError::TooFewSignatures { valid: 2, .. })
    ));
    // A signer's first signature is kept.
    assert!(!sd.add_signature(node(13), bad.signature));
}

#[test]
fn signed_directory_refuses_wrong_genesis_other_period_and_time() {
    let d = directory();
    let sd = signed_by(&d, &[11, 12, 13]);
    assert!(matches!(
        sd.verify(&[0; 32], &set(), 3, 150),
        Err(DirectoryError::TooFewSignatures { valid: 0, .. })
    ));
    // Signatures replayed onto the same entries for another period.
    let mut replay = sd.clone();
    replay.directory.period += 1;
    assert!(matches!(
        replay.verify(&GENESIS, &set(), 3, 150),
        Err(DirectoryError::TooFewSignatures { valid: 0, .. })
    ));
    assert_eq!(
        sd.verify(&GENESIS, &set(), 3, 99),
        Err(DirectoryError::NotYetValid {
            period: PERIOD,
            valid_after: 100,
            now: 99
        })
    );
    assert!(sd.verify(&GENESIS, &set(), 3, 100).is_ok());
    assert!(sd.verify(&GENESIS, &set(), 3, 200).is_ok());
    assert!(matches!(
        sd.verify(&GENESIS, &set(), 3, 201),
        Err(DirectoryError::Expired { .. })
    ));
    // A threshold of zero still needs one signature.
    assert!(matches!(
        SignedDirectory::new(d).verify(&GENESIS, &set(), 0, 150),
        Err(DirectoryError::TooFewSignatures { threshold: 1, .. })
    ));
}

#[test]
fn signed_directory_decoder_refuses_unsorted_and_too_many_signatures() {
    let sd = signed_by(&directory(), &[11, 12]);
    let mut swapped = sd.clone();
    swapped.signatures.reverse();
    assert!(matches!(
        SignedDirectory::decode(&swapped.encode()),
        Err(DirectoryError::Unsorted {
            what: "signatures",
            ..
        })
    ));
    let mut bytes = directory().encode();
    bytes.extend_from_slice(&u16::MAX.to_be_bytes());
    assert!(matches!(
        SignedDirectory::decode(&bytes),
        Err(DirectoryError::TooMany {
            what: "signatures",
            ..
        })
    ));
}

#[test]
fn directory_signature_round_trips_and_verifies() {
    let d = directory();
    let s = DirectorySignature::sign(&d, &key(11), &GENESIS);
    let bytes = s.encode();
    assert_eq!(bytes.len(), DirectorySignature::LEN);
    let back = DirectorySignature::decode(&bytes).unwrap();
    assert_eq!(back, s);
    assert_eq!(back.verify(&GENESIS, &set()), Ok(()));
    assert!(matches!(
        back.verify(&[1; 32], &set()),
        Err(DirectoryError::BadSignature { .. })
    ));
    assert!(matches!(
        back.verify(&GENESIS, &[node(12)]),
        Err(DirectoryError::NotInDiscoverySet { .. })
    ));
    let mut other_period = back.clone();
    other_period.period += 1;
    assert!(matches!(
        other_period.verify(&GENESIS, &set()),
        Err(DirectoryError::BadSignature { .. })
    ));
    assert_prefixes_truncated(&bytes, DirectorySignature::decode);
    let mut long = bytes;
    long.push(0);
    assert!(matches!(
        DirectorySignature::decode(&long),
        Err(DirectoryError::TrailingBytes { .. })
    ));
}

// --- equivocation

#[test]
fn find_equivocations_returns_signers_of_both_directories() {
    let a = directory();
    let mut b = a.clone();
    b.entries.pop();
    let sa = signed_by(&a, &[11, 12, 13]);
    let mut sb = signed_by(&b, &[13, 14]);
    // 12's signature on b is corrupt: not evidence.
    let mut corrupt = DirectorySignature::sign(&b, &key(12), &GENESIS).signature;
    corrupt[1] ^= 1;
    sb.add_signature(node(12), corrupt);

    let found = find_equivocations(&sa, &sb, &GENESIS);
    assert_eq!(found.len(), 1);
    let e = &found[0];
    assert_eq!((e.offender, e.period), (node(13), PERIOD));
    assert_eq!((e.first.0, e.second.0), (a.hash(), b.hash()));
    assert!(e.verify(&GENESIS));
    assert!(!e.verify(&[0; 32]));

    // Same directory, or different periods: nothing.
    assert!(find_equivocations(&sa, &sa, &GENESIS).is_empty());
    let mut later = b.clone();
    later.period += 1;
    assert!(find_equivocations(&sa, &signed_by(&later, &[13]), &GENESIS).is_empty());
    // Under another genesis the signatures are not valid.
    assert!(find_equivocations(&sa, &sb, &[0; 32]).is_empty());
}

#[test]
fn error_messages_carry_context() {
    let e = DirectoryError::TooFewSignatures {
        period: 7,
        valid: 2,
        threshold: 3,
    };
    assert_eq!(
        e.to_string(),
        "directory of period 7: 2 valid signatures, 3 needed"
    );
    let e = DirectoryError::Truncated {
        what: "vote",
        source: BytesError::Truncated {
            needed: 8,
            remaining: 1,
        },
    };
    assert!(e.to_string().contains("vote"));
}

// --- arbitrary input

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(256))]

    /// Decoders refuse garbage without panicking, and whatever they accept re-encodes to the
    /// same bytes.
    #[test]
    fn decoders_never_panic_and_are_canonical(
        bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..600),
    ) {
        if let Ok(s) = SignedStatus::decode(&bytes) {
            proptest::prop_assert_eq!(s.encode(), bytes.clone());
        }
        if let Ok(v) = SignedVote::decode(&bytes) {
            proptest::prop_assert_eq!(v.encode(), bytes.clone());
        }
        if let Ok(d) = SignedDirectory::decode(&bytes) {
            proptest::prop_assert_eq!(d.encode(), bytes.clone());
        }
        if let Ok(s) = DirectorySignature::decode(&bytes) {
            proptest::prop_assert_eq!(s.encode(), bytes.clone());
        }
    }
}

proptest::proptest! {
    // Each case signs and verifies three signatures (slow in debug builds).
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(48))]

    /// One flipped byte of a valid signed directory is either refused by the decoder, or fails
    /// verification, or leaves the directory unchanged (a byte of an ignored signature).
    #[test]
    fn flipped_bytes_never_verify_as_another_directory(pos in 0usize..10_000, bit in 0u8..8) {
        let sd = signed_by(&directory(), &[11, 12, 13]);
        let mut bytes = sd.encode();
        let pos = pos % bytes.len();
        bytes[pos] ^= 1 << bit;
        if let Ok(back) = SignedDirectory::decode(&bytes) {
            if let Ok(v) = back.verify(&GENESIS, &set(), 3, 150) {
                proptest::prop_assert_eq!(v.directory(), &sd.directory);
            }
        }
    }
}
