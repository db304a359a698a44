//! The discovery directory, as peers send it: any bytes into every directory decoder
//! (`SignedStatus`, `SignedVote`, `Directory` (the consensus), `SignedDirectory`,
//! `DirectorySignature`), into their checks up to the signature verification, and into a
//! `DiscoveryService` (the discovery node's receiving side).
//!
//! Shared by the `directory` fuzz target and `tests/fuzz_regressions.rs` (`#[path]` module).
//!
//! Checked:
//! * decoding never panics; what decodes re-encodes to exactly the input (the decoders are
//!   canonical: the signed bytes are the encoded bytes) and decodes again to the same value;
//! * a decoded value's checks reach the signature check (registry, period, time and set set up
//!   from the value itself) and can fail only there (a forged signature), never before;
//! * re-signed by a real key (chosen by a bit of the value), whatever decoded can be signed,
//!   and the signed value encodes, decodes and verifies;
//! * the consensus of one decoded vote (twice, under two voters) lists exactly its entries, and
//!   the resulting directory encodes and decodes to itself.

use std::sync::OnceLock;

use psp_net::crypto::{NodeId, Sr25519Keypair};
use psp_net::directory::{
    consensus, Config, Directory, DirectoryError, DirectorySignature, DiscoveryService,
    SignedDirectory, SignedStatus, SignedVote, StatusReport, Vote,
};
use psp_net::registry::{IdentityKind, StaticRegistry};

const GENESIS: [u8; 32] = [0x47; 32];

fn keys() -> &'static [Sr25519Keypair; 2] {
    static KEYS: OnceLock<[Sr25519Keypair; 2]> = OnceLock::new();
    KEYS.get_or_init(|| {
        [
            Sr25519Keypair::from_seed(&[0x31; 32]),
            Sr25519Keypair::from_seed(&[0x32; 32]),
        ]
    })
}

/// Every check before the signature passed: the value verifies (a stored input may carry a
/// real signature) or its signature is refused, nothing else.
fn only_signature_refused<T>(result: &Result<T, DirectoryError>) -> bool {
    matches!(result, Ok(_) | Err(DirectoryError::BadSignature { .. }))
}

fn status(data: &[u8]) -> bool {
    let Ok(s) = SignedStatus::decode(data) else {
        return false;
    };
    assert_eq!(s.encode(), data, "status decoder is canonical");
    assert_eq!(SignedStatus::decode(data).as_ref(), Ok(&s));
    let r = s.unverified().clone();
    let mut registry = StaticRegistry::default();
    registry.insert(r.node.0, IdentityKind::Node);
    let result = s.verify(r.issued_at, r.period, &registry);
    assert!(only_signature_refused(&result), "{result:?}");
    if r.period & 1 == 0 {
        return false;
    }
    let kp = &keys()[0];
    let report = StatusReport {
        node: NodeId(kp.public()),
        ..r
    };
    let signed = SignedStatus::sign(report.clone(), kp).expect("what decoded can be signed");
    let bytes = signed.encode();
    assert_eq!(SignedStatus::decode(&bytes).as_ref(), Ok(&signed));
    registry.insert(kp.public(), IdentityKind::Node);
    assert_eq!(
        signed.verify(report.issued_at, report.period, &registry),
        Ok(report)
    );
    true
}

fn vote(data: &[u8]) -> bool {
    let Ok(s) = SignedVote::decode(data) else {
        return false;
    };
    assert_eq!(s.encode(), data, "vote decoder is canonical");
    assert_eq!(SignedVote::decode(data).as_ref(), Ok(&s));
    let v = s.unverified().clone();
    let result = s.verify(v.period, &[v.voter]);
    assert!(only_signature_refused(&result), "{result:?}");
    assert!(s.verify(v.period, &[]).is_err());

    // The consensus of this vote, cast twice by two voters, lists exactly its entries.
    let mut other = v.clone();
    other.voter.0[0] ^= 1;
    let votes = [v.clone(), other];
    let d = consensus(v.period, 10, 20, &votes);
    assert_eq!(d.entries, v.entries, "consensus of identical votes");
    let bytes = d.encode();
    assert_eq!(Directory::decode(&bytes).as_ref(), Ok(&d));

    if v.period & 1 == 0 {
        return false;
    }
    let kp = &keys()[0];
    let vote = Vote {
        voter: NodeId(kp.public()),
        ..v
    };
    let signed = SignedVote::sign(vote.clone(), kp).expect("what decoded can be signed");
    let bytes = signed.encode();
    assert_eq!(SignedVote::decode(&bytes).as_ref(), Ok(&signed));
    assert_eq!(signed.verify(vote.period, &[vote.voter]), Ok(vote));
    true
}

fn directory(data: &[u8]) {
    let Ok(d) = Directory::decode(data) else {
        return;
    };
    assert_eq!(d.encode(), data, "directory decoder is canonical");
    for e in &d.entries {
        assert_eq!(d.get(&e.node), Some(e));
    }
}

fn signed_directory(data: &[u8]) -> bool {
    let Ok(sd) = SignedDirectory::decode(data) else {
        return false;
    };
    assert_eq!(sd.encode(), data, "signed directory decoder is canonical");
    assert_eq!(SignedDirectory::decode(data).as_ref(), Ok(&sd));
    let d = &sd.directory;
    let set: Vec<NodeId> = sd.signatures.iter().take(4).map(|(n, _)| *n).collect();
    if sd.signatures.len() <= 8 {
        let valid = sd.valid_signers(&GENESIS, &set);
        match sd.verify(&GENESIS, &set, 1, d.valid_after) {
            Ok(v) => assert_eq!(v.signers(), &valid[..]),
            Err(DirectoryError::TooFewSignatures { valid: 0, .. }) => assert!(valid.is_empty()),
            Err(e) => panic!("refused before the signatures: {e:?}"),
        }
    }
    if let Some(late) = d.valid_until.checked_add(1) {
        assert!(matches!(
            sd.verify(&GENESIS, &set, 1, late),
            Err(DirectoryError::Expired { .. })
        ));
    }
    if d.period & 1 == 0 {
        return false;
    }
    let [a, b] = keys();
    let mut fresh = SignedDirectory::new(d.clone());
    let sig = fresh.sign(a, &GENESIS);
    fresh.sign(b, &GENESIS);
    let set = [NodeId(a.public()), NodeId(b.public())];
    assert_eq!(sig.verify(&GENESIS, &set), Ok(()));
    assert_eq!(DirectorySignature::decode(&sig.encode()).as_ref(), Ok(&sig));
    let bytes = fresh.encode();
    let back = SignedDirectory::decode(&bytes).expect("a signed directory decodes");
    assert_eq!(back, fresh);
    let verified = back
        .verify(&GENESIS, &set, 2, d.valid_until)
        .expect("two valid signatures verify");
    assert_eq!(verified.directory(), d);
    true
}

fn signature(data: &[u8]) {
    let Ok(s) = DirectorySignature::decode(data) else {
        return;
    };
    assert_eq!(s.encode(), data, "directory signature decoder is canonical");
    let result = s.verify(&GENESIS, &[s.signer]);
    assert!(only_signature_refused(&result), "{result:?}");
}

/// The discovery node's receiving side: everything refused or taken, nothing panics.
fn service(data: &[u8]) {
    let kp = keys()[1].clone();
    let me = NodeId(kp.public());
    let mut svc = DiscoveryService::new(kp, GENESIS, Config::default());
    let set = [me];
    let registry = StaticRegistry::default();
    // `now` from the bytes, so the period checks pass as often as the fuzzer likes.
    let now = data
        .get(..8)
        .and_then(|b| <[u8; 8]>::try_from(b).ok())
        .map_or(0, u64::from_be_bytes);
    let taken = [
        svc.on_status(now, data, &registry).is_ok(),
        svc.on_vote(now, data, &set).is_ok(),
        svc.on_signature(now, data, &set).is_ok(),
        svc.on_directory(now, data, &set).is_ok(),
    ];
    // Polling signs a vote (slow): only when something was taken.
    if taken.contains(&true) {
        let _ = svc.poll(now, &set);
    }
}

/// Runs every check on `data`; returns whether a value re-signed from it verified (the
/// positive path).
pub fn check(data: &[u8]) -> bool {
    let signed = [status(data), vote(data), signed_directory(data)];
    directory(data);
    signature(data);
    service(data);
    signed.contains(&true)
}
