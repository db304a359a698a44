//! Record format and validation: every refusal has its own reason.

use super::*;
use crate::registry::StaticRegistry;

const NOW: u64 = 1_000_000;

pub(crate) struct Fixture {
    pub owner: Sr25519Keypair,
    pub publisher: Sr25519Keypair,
    pub registry: StaticRegistry,
}

pub(crate) fn fixture() -> Fixture {
    let owner = Sr25519Keypair::from_seed(&[1; 32]);
    let publisher = Sr25519Keypair::from_seed(&[2; 32]);
    let mut registry = StaticRegistry::default();
    registry.insert(owner.public(), IdentityKind::Client);
    registry.insert(publisher.public(), IdentityKind::Node);
    Fixture {
        owner,
        publisher,
        registry,
    }
}

pub(crate) fn content(f: &Fixture, seq: u64) -> RecordContent {
    RecordContent {
        kind: RecordKind::Presence,
        owner: f.owner.public(),
        topic: [0; 32],
        publisher: f.publisher.public(),
        seq,
        issued_at: NOW,
        expires_at: NOW + 600,
        value: b"presence at node 2".to_vec(),
    }
}

fn check(f: &Fixture, record: SignedRecord) -> Result<ValidRecord, RecordError> {
    record.validate(NOW, &f.registry, &RecordLimits::default())
}

#[test]
fn a_signed_record_round_trips_and_validates() {
    let f = fixture();
    let record = content(&f, 1).sign(&f.owner, &f.publisher);
    let bytes = record.encode();
    assert_eq!(bytes.len(), HEADER_LEN + 18 + 128);
    let decoded = SignedRecord::decode(&bytes).expect("decodes");
    assert_eq!(decoded, record);
    let key = record.content.key();
    let valid =
        SignedRecord::decode_valid(&key, &bytes, NOW, &f.registry, &RecordLimits::default())
            .expect("valid");
    assert_eq!(valid.content().value, b"presence at node 2");
    assert_eq!(valid.key(), &key);
}

#[test]
fn forged_or_tampered_signatures_are_refused() {
    let f = fixture();
    let good = content(&f, 1).sign(&f.owner, &f.publisher);

    let mut tampered = good.clone();
    tampered.content.value = b"presence at node 666".to_vec();
    // The publisher co-signed the owner's signature, not the value: the owner check catches it.
    assert_eq!(check(&f, tampered), Err(RecordError::OwnerSignature));

    let mut forged_owner = good.clone();
    forged_owner.owner_sig = content(&f, 1).sign_as_owner(&f.publisher);
    assert_eq!(
        check(&f, forged_owner),
        Err(RecordError::PublisherSignature)
    );

    let mut forged_publisher = good.clone();
    forged_publisher.publisher_sig = f.owner.sign(b"anything");
    assert_eq!(
        check(&f, forged_publisher),
        Err(RecordError::PublisherSignature)
    );

    // Replayed under another publisher: the owner named the publisher it chose.
    let other = Sr25519Keypair::from_seed(&[3; 32]);
    let mut registry = f.registry.clone();
    registry.insert(other.public(), IdentityKind::Node);
    let mut replayed = SignedRecord::cosign(good.content.clone(), good.owner_sig, &other);
    replayed.content.publisher = other.public();
    assert_eq!(
        replayed.validate(NOW, &registry, &RecordLimits::default()),
        Err(RecordError::OwnerSignature)
    );
}

#[test]
fn chain_state_is_checked_for_owner_and_publisher() {
    let f = fixture();
    let record = content(&f, 1).sign(&f.owner, &f.publisher);

    let mut revoked = f.registry.clone();
    revoked.revoke(f.owner.public());
    let err = record
        .clone()
        .validate(NOW, &revoked, &RecordLimits::default())
        .unwrap_err();
    assert!(
        matches!(
            err,
            RecordError::Owner {
                status: "revoked",
                ..
            }
        ),
        "{err}"
    );

    let mut unknown = StaticRegistry::default();
    unknown.insert(f.publisher.public(), IdentityKind::Node);
    let err = record
        .clone()
        .validate(NOW, &unknown, &RecordLimits::default())
        .unwrap_err();
    assert!(matches!(
        err,
        RecordError::Owner {
            status: "not registered",
            ..
        }
    ));

    // A client cannot publish: publishers are nodes.
    let mut client_publisher = f.registry.clone();
    client_publisher.insert(f.publisher.public(), IdentityKind::Client);
    let err = record
        .clone()
        .validate(NOW, &client_publisher, &RecordLimits::default())
        .unwrap_err();
    assert!(matches!(
        err,
        RecordError::Publisher {
            status: "of the wrong kind",
            ..
        }
    ));

    // Group records belong to group identities only.
    let mut group = content(&f, 1);
    group.kind = RecordKind::Group;
    let err = check(&f, group.sign(&f.owner, &f.publisher)).unwrap_err();
    assert!(matches!(
        err,
        RecordError::Owner {
            status: "of the wrong kind",
            ..
        }
    ));

    // Readings belong to device identities only.
    let mut reading = content(&f, 1);
    reading.kind = RecordKind::Reading;
    let err = check(&f, reading.sign(&f.owner, &f.publisher)).unwrap_err();
    assert!(matches!(
        err,
        RecordError::Owner {
            status: "of the wrong kind",
            ..
        }
    ));
}

#[test]
fn times_and_sizes_are_bounded() {
    let f = fixture();
    let with = |edit: &dyn Fn(&mut RecordContent)| {
        let mut c = content(&f, 1);
        edit(&mut c);
        check(&f, c.sign(&f.owner, &f.publisher))
    };
    assert!(matches!(
        with(&|c| {
            c.issued_at = NOW - 10;
            c.expires_at = NOW
        }),
        Err(RecordError::Expired { .. })
    ));
    assert!(matches!(
        with(&|c| c.expires_at = NOW + 3_601),
        Err(RecordError::LifetimeTooLong { .. })
    ));
    assert!(matches!(
        with(&|c| c.issued_at = NOW + 31),
        Err(RecordError::FromTheFuture { .. })
    ));
    assert!(matches!(
        with(&|c| c.issued_at = c.expires_at),
        Err(RecordError::BadValidity { .. })
    ));
    assert_eq!(
        with(&|c| c.value = vec![0; 1_025]),
        Err(RecordError::Oversized {
            len: 1_025,
            max: 1_024
        })
    );
    assert!(with(&|c| c.value = vec![0; 1_024]).is_ok());
}

#[test]
fn malformed_bytes_are_refused_without_panic() {
    let f = fixture();
    let bytes = content(&f, 1).sign(&f.owner, &f.publisher).encode();
    for cut in [0, 1, 2, 50, HEADER_LEN, bytes.len() - 1] {
        assert!(
            matches!(
                SignedRecord::decode(&bytes[..cut]),
                Err(RecordError::Malformed(_))
            ),
            "cut at {cut}"
        );
    }
    let mut long = bytes.clone();
    long.push(0);
    assert_eq!(
        SignedRecord::decode(&long),
        Err(RecordError::TrailingBytes(1))
    );
    let mut version = bytes.clone();
    version[0] = 9;
    assert_eq!(SignedRecord::decode(&version), Err(RecordError::Version(9)));
    let mut kind = bytes.clone();
    kind[1] = 0;
    assert_eq!(
        SignedRecord::decode(&kind),
        Err(RecordError::UnknownKind(0))
    );
    let mut huge = bytes[..HEADER_LEN].to_vec();
    huge[HEADER_LEN - 2..].copy_from_slice(&u16::MAX.to_be_bytes());
    assert!(matches!(
        SignedRecord::decode(&huge),
        Err(RecordError::Oversized { len: 65_535, .. })
    ));
    // Under someone else's key.
    let wrong = record_key(RecordKind::Presence, &f.publisher.public(), &[0; 32]);
    assert_eq!(
        SignedRecord::decode_valid(&wrong, &bytes, NOW, &f.registry, &RecordLimits::default()),
        Err(RecordError::WrongKey)
    );
}

#[test]
fn keys_separate_kinds_owners_and_topics() {
    let a = [1; 32];
    let b = [2; 32];
    let k = record_key(RecordKind::Presence, &a, &b);
    assert_ne!(k, record_key(RecordKind::Stream, &a, &b));
    assert_ne!(k, record_key(RecordKind::Presence, &b, &a));
    assert_ne!(k, record_key(RecordKind::Presence, &a, &a));
}
