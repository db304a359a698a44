//! The DHT under attack: 200 registered nodes, 20% of them malicious, in one process.
//!
//! Honest clients publish presence records through honest nodes to the k closest nodes (a put
//! after a lookup), renew half of them (so stale, validly signed versions exist, and some honest
//! holders keep serving them), then honest nodes look records up while the malicious nodes drop
//! queries, forge records, serve stale versions and try to eclipse lookups. Time is simulated
//! (message rounds with 20–80 ms delays), so every run is the same.
//!
//! Unoptimized sr25519 verification costs about 15 ms, so the runs memoize validation (see
//! `psp_net::dht::sim::Memo`); the main test checks the memo against plain validation.

use psp_net::dht::sim::{Behaviour, Network, SimConfig};
use psp_net::dht::{record_key, RecordError, RecordKey, RecordKind, StoreError};
use psp_net::registry::StaticRegistry;

/// Published keys (two topics per client).
const RECORDS: usize = 40;
/// Lookups measured.
const LOOKUPS: usize = 1_000;

fn config() -> SimConfig {
    SimConfig {
        memoize_validation: true,
        ..SimConfig::default()
    }
}

/// Publishes `records` records through random honest nodes and renews every other one.
fn publish(net: &mut Network, records: usize) -> Vec<RecordKey> {
    let honest = net.honest();
    let mut keys = Vec::new();
    for r in 0..records {
        let owner = r % net.clients.len();
        let publisher = honest[net.rng().below(honest.len() as u64) as usize];
        let (key, stored) = net.publish(owner, publisher, [r as u8; 32]);
        assert!(
            stored >= 10,
            "record {r} stored on only {stored} honest nodes"
        );
        keys.push(key);
    }
    for key in keys.iter().step_by(2) {
        let stored = net.renew(key);
        assert!(
            stored.is_some_and(|n| n >= 5),
            "renewal stored on {stored:?}"
        );
    }
    keys
}

fn random_honest(net: &mut Network, honest: &[usize]) -> usize {
    honest[net.rng().below(honest.len() as u64) as usize]
}

#[test]
fn lookups_return_the_current_record_despite_20_percent_malicious_nodes() {
    let mut net = Network::new(config());
    let honest = net.honest();
    assert_eq!(net.nodes.len() - honest.len(), 40);
    for b in [
        Behaviour::Drop,
        Behaviour::Forge,
        Behaviour::Stale,
        Behaviour::Eclipse,
    ] {
        assert_eq!(net.nodes.iter().filter(|n| n.behaviour == b).count(), 10);
    }
    net.bootstrap();
    let keys = publish(&mut net, RECORDS);

    let (mut current, mut hops) = (0, 0);
    for _ in 0..LOOKUPS {
        let origin = random_honest(&mut net, &honest);
        let key = keys[net.rng().below(keys.len() as u64) as usize];
        let stats = net.get(origin, key);
        hops += stats.result.hops;
        let published = &net.published[&key];
        let Some(got) = stats.result.record else {
            continue;
        };
        // Whatever a lookup returns is a validly signed version, never a forgery.
        assert!(
            published.versions.contains(got.signed()),
            "forged record returned"
        );
        if got.signed() == published.current() {
            current += 1;
        }
    }
    eprintln!(
        "{current}/{LOOKUPS} lookups returned the current record; mean hops {:.2}",
        hops as f64 / LOOKUPS as f64
    );
    assert!(
        current * 100 >= LOOKUPS * 99,
        "only {current}/{LOOKUPS} current"
    );

    memo_agrees_with_plain_validation(&mut net, &keys, &honest);
}

/// The memo gives what validation gives, for current, stale and forged records, and lookups
/// without it find the same records.
fn memo_agrees_with_plain_validation(net: &mut Network, keys: &[RecordKey], honest: &[usize]) {
    let mut checked = Vec::new();
    for key in keys.iter().take(4) {
        let p = &net.published[key];
        let all = p
            .versions
            .iter()
            .map(|v| v.encode())
            .chain(p.forged.clone());
        checked.extend(all.map(|bytes| (*key, bytes)));
    }
    let memoized: Vec<_> = checked.iter().map(|(k, b)| net.validate(k, b)).collect();
    net.set_memoize(false);
    for ((key, bytes), memo) in checked.iter().zip(memoized) {
        assert_eq!(net.validate(key, bytes), memo);
    }
    for _ in 0..10 {
        let origin = random_honest(net, honest);
        let key = keys[net.rng().below(keys.len() as u64) as usize];
        let got = net.get(origin, key).result.record;
        assert_eq!(
            got.as_ref().map(|r| r.signed()),
            Some(net.published[&key].current())
        );
    }
    net.set_memoize(true);
}

#[test]
fn a_lookup_of_an_unknown_key_finds_nothing() {
    let mut net = Network::new(config());
    net.bootstrap();
    // A few real records, which the attackers serve under the unknown keys.
    let keys = publish(&mut net, 4);
    let honest = net.honest();
    let owner = net.clients[0].public();
    for i in 0..20u8 {
        let key = record_key(RecordKind::Presence, &owner, &[0xe0 | i; 32]);
        assert!(!keys.contains(&key));
        let origin = random_honest(&mut net, &honest);
        let stats = net.get(origin, key);
        assert!(stats.result.record.is_none(), "lookup {i} found a record");
        assert!(stats.result.queried >= 20);
    }
}

#[test]
fn honest_stores_refuse_forged_expired_oversized_revoked_and_stale_records() {
    let mut net = Network::new(config());
    let honest = net.honest();
    let (holder, publisher) = (honest[0], honest[1]);
    let now = net.now_secs();
    let reg = net.registry().clone();
    let put = |net: &mut Network, bytes: &[u8], at: u64, reg: &StaticRegistry| {
        let key = psp_net::dht::SignedRecord::decode(bytes).map(|r| r.content.key());
        let key = key.unwrap_or([0; 32]);
        net.nodes[holder].store.put(&key, bytes, at, reg)
    };

    // Forged: newer content under the old signatures.
    let mut forged = net.make_record(1, publisher, [0xa0; 32], 1, b"honest".to_vec());
    forged.content.seq = 9;
    forged.content.value = b"forged".to_vec();
    let err = put(&mut net, &forged.encode(), now, &reg);
    assert_eq!(err, Err(StoreError::Invalid(RecordError::OwnerSignature)));

    // Expired: valid signatures, offered at its expiry.
    let fresh = net.make_record(2, publisher, [0xa1; 32], 1, b"soon gone".to_vec());
    let err = put(&mut net, &fresh.encode(), fresh.content.expires_at, &reg);
    assert!(matches!(
        err,
        Err(StoreError::Invalid(RecordError::Expired { .. }))
    ));

    // Oversized: one byte beyond the store's value limit.
    let max = net.config.store.record.max_value_len;
    let big = net.make_record(3, publisher, [0xa2; 32], 1, vec![7; max + 1]);
    let err = put(&mut net, &big.encode(), now, &reg);
    assert!(matches!(
        err,
        Err(StoreError::Invalid(RecordError::Oversized { len, .. })) if len == max + 1
    ));

    // Revoked owner: a well-signed record is refused once the chain revokes its owner.
    let rec = net.make_record(4, publisher, [0xa3; 32], 1, b"revoked".to_vec());
    let mut revoked = reg.clone();
    revoked.revoke(net.clients[4].public());
    let err = put(&mut net, &rec.encode(), now, &revoked);
    assert!(matches!(
        err,
        Err(StoreError::Invalid(RecordError::Owner {
            status: "revoked",
            ..
        }))
    ));

    // Stale: an older, validly signed version loses to the one held.
    let v1 = net.make_record(5, publisher, [0xa4; 32], 1, b"v1".to_vec());
    let v2 = net.make_record(5, publisher, [0xa4; 32], 2, b"v2".to_vec());
    assert!(put(&mut net, &v2.encode(), now, &reg).is_ok());
    let err = put(&mut net, &v1.encode(), now, &reg);
    assert_eq!(
        err,
        Err(StoreError::Stale {
            offered: 1,
            stored: 2
        })
    );
    let held = net.nodes[holder].store.get(&v2.content.key(), now);
    assert_eq!(held.map(|r| r.signed()), Some(&v2));
    assert_eq!(net.nodes[holder].store.len(), 1, "nothing else got in");
}
