//! DHT records, as a peer sends them in a PUT or a lookup reply: any bytes into
//! `SignedRecord::decode` and `SignedRecord::decode_valid` (against a `StaticRegistry` in which
//! the record's own owner and publisher are marked active, so the checks run up to the two
//! signature verifications), and into a `RecordStore`.
//!
//! Shared by the `dht_record` fuzz target and `tests/fuzz_regressions.rs` (`#[path]` module).
//!
//! Checked:
//! * decoding never panics; what decodes re-encodes to exactly the input (the decoder is
//!   canonical) and decodes again to the same value;
//! * `decode_valid` refuses whatever `decode` refuses, with the same error, and refuses a
//!   record offered under another key than its own;
//! * with the record re-signed by real keys (one input in two, chosen by a byte of the topic),
//!   `decode_valid` accepts it exactly when the size, time and chain checks pass (an oracle
//!   written out below), never fails on a signature, and refuses it once a signature byte is
//!   flipped; an accepted record goes into a `RecordStore` and comes back out unchanged.

use std::sync::OnceLock;

use psp_net::crypto::Sr25519Keypair;
use psp_net::dht::record::MAX_VALUE_LEN;
use psp_net::dht::{RecordError, RecordKind, RecordLimits, RecordStore, SignedRecord, StoreLimits};
use psp_net::registry::{IdentityKind, StaticRegistry};

fn keys() -> &'static (Sr25519Keypair, Sr25519Keypair) {
    static KEYS: OnceLock<(Sr25519Keypair, Sr25519Keypair)> = OnceLock::new();
    KEYS.get_or_init(|| {
        (
            Sr25519Keypair::from_seed(&[0x11; 32]),
            Sr25519Keypair::from_seed(&[0x22; 32]),
        )
    })
}

const KINDS: [IdentityKind; 4] = [
    IdentityKind::Client,
    IdentityKind::Node,
    IdentityKind::Group,
    IdentityKind::Device,
];

/// The situation an input is checked in, from one control byte (the first byte of the topic).
struct Setup {
    registry: StaticRegistry,
    owner_kind: Option<IdentityKind>,
    publisher_is_node: bool,
    now: u64,
    limits: RecordLimits,
}

fn setup(control: u8, record: &SignedRecord) -> Setup {
    let c = &record.content;
    let owner_kind = (control & 4 == 0).then_some(KINDS[usize::from(control & 3)]);
    let publisher_is_node = control & 8 == 0;
    let mut registry = StaticRegistry::default();
    // The publisher first, so an owner that is its own publisher gets the owner's status.
    if publisher_is_node {
        registry.insert(c.publisher, IdentityKind::Node);
    } else {
        registry.insert(c.publisher, IdentityKind::Client);
    }
    match owner_kind {
        Some(kind) => registry.insert(c.owner, kind),
        None => registry.revoke(c.owner),
    }
    let now = match (control >> 4) & 3 {
        0 => c.issued_at,
        1 => c.expires_at.saturating_sub(1),
        2 => 1_000_000,
        _ => c.expires_at,
    };
    let limits = if control & 0x40 == 0 {
        RecordLimits::default()
    } else {
        RecordLimits {
            max_value_len: MAX_VALUE_LEN,
            max_lifetime_secs: u64::MAX,
            max_clock_skew_secs: u64::MAX,
        }
    };
    Setup {
        registry,
        owner_kind,
        publisher_is_node,
        now,
        limits,
    }
}

/// Whether every check but the signatures passes, written out independently of psp-net.
fn should_pass(s: &Setup, record: &SignedRecord) -> bool {
    let c = &record.content;
    // When the owner is its own publisher, the registry holds the owner's status for both.
    let (owner_kind, publisher_is_node) = if c.owner == c.publisher {
        (s.owner_kind, s.owner_kind == Some(IdentityKind::Node))
    } else {
        (s.owner_kind, s.publisher_is_node)
    };
    let owner_ok = match (c.kind, owner_kind) {
        (_, None) => false,
        (RecordKind::Presence, Some(k)) => k != IdentityKind::Group,
        (RecordKind::Stream, Some(_)) => true,
        (RecordKind::Group, Some(k)) => k == IdentityKind::Group,
        (RecordKind::Reading, Some(k)) => k == IdentityKind::Device,
    };
    c.value.len() <= s.limits.max_value_len.min(MAX_VALUE_LEN)
        && c.expires_at > c.issued_at
        && c.expires_at > s.now
        && c.issued_at <= s.now.saturating_add(s.limits.max_clock_skew_secs)
        && c.expires_at - s.now <= s.limits.max_lifetime_secs
        && owner_ok
        && publisher_is_node
}

/// Runs every check on `data`; returns whether a record re-signed from it validated (the
/// positive path).
pub fn check(data: &[u8]) -> bool {
    let record = match SignedRecord::decode(data) {
        Ok(r) => r,
        Err(e) => {
            let registry = StaticRegistry::default();
            let limits = RecordLimits::default();
            let again = SignedRecord::decode_valid(&[0; 32], data, 0, &registry, &limits);
            assert_eq!(again.err(), Some(e), "decode_valid refuses like decode");
            return false;
        }
    };
    let bytes = record.encode();
    assert_eq!(bytes, data, "the record decoder is canonical");
    assert_eq!(SignedRecord::decode(&bytes).as_ref(), Ok(&record));

    let control = record.content.topic[0];
    let key = record.content.key();
    let s = setup(control, &record);

    // As received: the signatures are the fuzzer's.
    let mut wrong_key = key;
    wrong_key[0] ^= 1;
    assert_eq!(
        SignedRecord::decode_valid(&wrong_key, data, s.now, &s.registry, &s.limits).err(),
        Some(RecordError::WrongKey)
    );
    let as_received = SignedRecord::decode_valid(&key, data, s.now, &s.registry, &s.limits);
    if let Ok(v) = &as_received {
        assert_eq!(v.signed(), &record);
        assert_eq!(v.key(), &key);
    } else if !should_pass(&s, &record) {
        // Refused before the signatures: never blamed on them.
        assert!(!matches!(
            as_received,
            Err(RecordError::OwnerSignature | RecordError::PublisherSignature)
        ));
    }

    if control & 0x80 == 0 {
        return false;
    }
    // Re-signed by real keys, so the positive path runs on fuzzed content.
    let (owner, publisher) = keys();
    let mut content = record.content.clone();
    content.owner = owner.public();
    content.publisher = publisher.public();
    let signed = content.sign(owner, publisher);
    let key = signed.content.key();
    let s = setup(control, &signed);
    let bytes = signed.encode();
    let result = SignedRecord::decode_valid(&key, &bytes, s.now, &s.registry, &s.limits);
    assert!(
        !matches!(
            result,
            Err(RecordError::OwnerSignature | RecordError::PublisherSignature)
        ),
        "valid signatures refused: {result:?}"
    );
    assert_eq!(
        result.is_ok(),
        should_pass(&s, &signed),
        "checks disagree with the oracle: {result:?}"
    );
    let Ok(valid) = result else {
        return false;
    };
    assert_eq!(valid.signed(), &signed);
    assert!(!valid.expired(s.now));
    // One flipped bit in either signature, or in the value, and it is refused.
    for pos in [bytes.len() - 1, bytes.len() - 65, bytes.len() - 129] {
        let mut bad = bytes.clone();
        bad[pos] ^= 0x10;
        assert!(
            SignedRecord::decode_valid(&key, &bad, s.now, &s.registry, &s.limits).is_err(),
            "a flipped byte at {pos} still validates"
        );
    }
    let mut store = RecordStore::new(StoreLimits {
        record: s.limits,
        ..StoreLimits::default()
    });
    assert!(store.put(&key, &bytes, s.now, &s.registry).is_ok());
    assert_eq!(store.get(&key, s.now), Some(&valid));
    // The same sequence number again is stale.
    assert!(store.put(&key, &bytes, s.now, &s.registry).is_err());
    true
}
