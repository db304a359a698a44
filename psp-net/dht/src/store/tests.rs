//! The store: validation before storage, newest wins, quotas, expiry, revocation.

use super::*;
use crate::crypto::Sr25519Keypair;
use crate::record::tests::{content, fixture};

const NOW: u64 = 1_000_000;

fn put(
    store: &mut RecordStore,
    f: &crate::record::tests::Fixture,
    seq: u64,
) -> Result<PutOutcome, StoreError> {
    let record = content(f, seq).sign(&f.owner, &f.publisher);
    store.put(&record.content.key(), &record.encode(), NOW, &f.registry)
}

#[test]
fn newest_sequence_wins_and_stale_is_refused() {
    let f = fixture();
    let mut store = RecordStore::new(StoreLimits::default());
    assert_eq!(put(&mut store, &f, 2), Ok(PutOutcome::Inserted));
    assert_eq!(
        put(&mut store, &f, 1),
        Err(StoreError::Stale {
            offered: 1,
            stored: 2
        })
    );
    assert_eq!(
        put(&mut store, &f, 2),
        Err(StoreError::Stale {
            offered: 2,
            stored: 2
        })
    );
    assert_eq!(put(&mut store, &f, 3), Ok(PutOutcome::Replaced));
    let key = content(&f, 3).key();
    assert_eq!(store.get(&key, NOW).map(|r| r.content().seq), Some(3));
    assert_eq!(store.len(), 1);
}

#[test]
fn invalid_records_leave_the_store_untouched() {
    let f = fixture();
    let mut store = RecordStore::new(StoreLimits::default());
    let mut forged = content(&f, 1).sign(&f.owner, &f.publisher);
    forged.content.value.push(b'!');
    let err = store
        .put(&forged.content.key(), &forged.encode(), NOW, &f.registry)
        .unwrap_err();
    assert_eq!(err, StoreError::Invalid(RecordError::OwnerSignature));
    assert!(matches!(
        store.put(&[0; 32], &[1, 1, 0, 0], NOW, &f.registry),
        Err(StoreError::Invalid(RecordError::Malformed(_)))
    ));
    assert!(store.is_empty());
}

#[test]
fn a_flood_from_one_publisher_hits_its_quota() {
    let f = fixture();
    let limits = StoreLimits {
        max_per_publisher: 3,
        max_records: 4,
        ..StoreLimits::default()
    };
    let mut store = RecordStore::new(limits);
    let put_topic = |store: &mut RecordStore, topic: u8, publisher: &Sr25519Keypair| {
        let mut c = content(&f, 1);
        c.topic = [topic; 32];
        c.publisher = publisher.public();
        let r = c.sign(&f.owner, publisher);
        store.put(
            &r.content.key(),
            &r.encode(),
            NOW,
            &registry_with(&f, publisher),
        )
    };
    for topic in 0..3 {
        assert_eq!(
            put_topic(&mut store, topic, &f.publisher),
            Ok(PutOutcome::Inserted)
        );
    }
    assert_eq!(
        put_topic(&mut store, 3, &f.publisher),
        Err(StoreError::PublisherQuota { max: 3 })
    );
    let second = Sr25519Keypair::from_seed(&[9; 32]);
    assert_eq!(put_topic(&mut store, 4, &second), Ok(PutOutcome::Inserted));
    assert_eq!(
        put_topic(&mut store, 5, &second),
        Err(StoreError::Full { max: 4 })
    );
    // Renewing a held key is always possible, even when full.
    let mut renew = content(&f, 2);
    renew.topic = [0; 32];
    let r = renew.sign(&f.owner, &f.publisher);
    assert_eq!(
        store.put(&r.content.key(), &r.encode(), NOW, &f.registry),
        Ok(PutOutcome::Replaced)
    );
    assert_eq!(store.len(), 4);
}

fn registry_with(
    f: &crate::record::tests::Fixture,
    publisher: &Sr25519Keypair,
) -> crate::registry::StaticRegistry {
    let mut r = f.registry.clone();
    r.insert(publisher.public(), IdentityKind::Node);
    r
}

#[test]
fn expired_records_are_wiped_and_revoked_owners_purged() {
    let f = fixture();
    let mut store = RecordStore::new(StoreLimits::default());
    put(&mut store, &f, 1).expect("stored");
    let key = content(&f, 1).key();
    assert!(store.get(&key, NOW + 599).is_some());
    assert!(
        store.get(&key, NOW + 600).is_none(),
        "never served once expired"
    );
    assert_eq!(store.expire(NOW + 599), 0);
    assert_eq!(store.expire(NOW + 600), 1);
    assert!(store.is_empty());

    put(&mut store, &f, 2).expect("stored again");
    assert_eq!(store.purge_revoked(&f.registry), 0);
    let mut revoked = f.registry.clone();
    revoked.revoke(f.owner.public());
    assert_eq!(store.purge_revoked(&revoked), 1);
    assert!(store.is_empty());
    // The quota is released with the record.
    assert_eq!(put(&mut store, &f, 3), Ok(PutOutcome::Inserted));
}
