//! Meters and the oracle's collector: honest pairing into records the chain accepts, an
//! inflated relay report (paired, both counts kept, the chain credits the smaller),
//! duplicates, mismatches, unknown and expired epochs, refusals, batches and memory bounds.

mod common;

use common::*;
use proptest::prelude::*;
use psp_onion::crypto::{sr25519_verify, NodeId};
use psp_primitives::rewards::{session_id_of, Interval, Normalization, Verdict};
use psp_usage::report::{ClientMeter, Half, RelayMeter};
use psp_usage::ticket::Admission;
use psp_usage::{Accepted, Collector, CollectorConfig, UsageError};
use sp_runtime::Perbill;

fn verify(sig: &[u8; 64], msg: &[u8], key: &[u8; 32]) -> bool {
    sr25519_verify(key, msg, sig)
}

#[test]
fn both_halves_pair_into_a_record_the_chain_accepts() {
    let mut tokens = token_issuer(0);
    let relay = relay_key(1);
    let s = honest_session(&mut tokens, &relay, 1, 1_000_000, 990_000);
    let mut c = collector();
    assert_eq!(
        c.receive(&Half::Relay(s.relay.clone())),
        Ok(Accepted::Waiting)
    );
    assert_eq!(c.stats(EPOCH).pending, 1);
    assert_eq!(
        c.receive(&Half::Client(s.client.clone())),
        Ok(Accepted::Paired)
    );
    let stats = c.stats(EPOCH);
    assert_eq!((stats.pending, stats.paired, stats.ready), (0, 1, 1));
    let batch = c.take_batch(EPOCH).expect("one record");
    assert_eq!(batch.epoch, EPOCH);
    assert_eq!(batch.records.len(), 1);
    let record = &batch.records[0];
    // Exactly what pallet-psp-rewards checks, with the real sr25519 verifier.
    let checked = record.check(&GENESIS, EPOCH, verify).expect("chain check");
    assert_eq!(checked.relay(), &relay.public());
    assert_eq!(checked.relay_usage().bytes, 1_000_000);
    assert_eq!(checked.client_usage().bytes, 990_000);
    assert_eq!(record.session, session_id_of(&session_key(1).public()));
    assert!(c.take_batch(EPOCH).is_none());
    // The other order pairs too.
    let s2 = honest_session(&mut tokens, &relay, 2, 500, 500);
    assert_eq!(c.receive(&Half::Client(s2.client)), Ok(Accepted::Waiting));
    assert_eq!(c.receive(&Half::Relay(s2.relay)), Ok(Accepted::Paired));
}

#[test]
fn an_inflated_relay_report_pairs_and_the_chain_credits_no_more_than_the_honest_count() {
    let mut tokens = token_issuer(0);
    let relay = relay_key(1);
    // The relay claims ten times what the consumer received.
    let s = honest_session(&mut tokens, &relay, 3, 10_000_000, 1_000_000);
    let mut c = collector();
    c.receive(&Half::Relay(s.relay)).unwrap();
    assert_eq!(c.receive(&Half::Client(s.client)), Ok(Accepted::Paired));
    let record = c.take_batch(EPOCH).unwrap().records.remove(0);
    // Both signed counts travel unchanged.
    assert_eq!(record.relay_report.usage.bytes, 10_000_000);
    assert_eq!(record.client_report.usage.bytes, 1_000_000);
    let checked = record.check(&GENESIS, EPOCH, verify).unwrap();
    let rule = Normalization {
        tolerance: Perbill::from_percent(5),
        max_bytes_per_second: 12_500_000,
        max_session_bytes: u64::MAX,
    };
    let epoch = Interval {
        start_ms: NOW * 1000 - 60_000,
        end_ms: NOW * 1000 + 60_000,
    };
    // Beyond the tolerance: nothing is credited (and the dispute counts against the relay).
    assert_eq!(
        rule.normalize(checked.relay_usage(), checked.client_usage(), epoch),
        Verdict::Disputed
    );
    // Inflating within the tolerance credits the smaller, honest count.
    let s = honest_session(&mut tokens, &relay, 4, 1_040_000, 1_000_000);
    c.receive(&Half::Relay(s.relay)).unwrap();
    c.receive(&Half::Client(s.client)).unwrap();
    let record = c.take_batch(EPOCH).unwrap().records.remove(0);
    let checked = record.check(&GENESIS, EPOCH, verify).unwrap();
    assert_eq!(
        rule.normalize(checked.relay_usage(), checked.client_usage(), epoch),
        Verdict::Credit(1_000_000)
    );
}

#[test]
fn duplicates_are_refused_before_and_after_pairing() {
    let mut tokens = token_issuer(0);
    let s = honest_session(&mut tokens, &relay_key(1), 5, 100, 100);
    let mut c = collector();
    let session = [
        s.relay.session[0],
        s.relay.session[1],
        s.relay.session[2],
        s.relay.session[3],
    ];
    c.receive(&Half::Relay(s.relay.clone())).unwrap();
    assert_eq!(
        c.receive(&Half::Relay(s.relay.clone())),
        Err(UsageError::Duplicate {
            side: "relay",
            session,
            epoch: u64::from(EPOCH)
        })
    );
    c.receive(&Half::Client(s.client.clone())).unwrap();
    for half in [Half::Relay(s.relay), Half::Client(s.client)] {
        assert!(matches!(
            c.receive(&half),
            Err(UsageError::Duplicate { .. })
        ));
    }
    assert_eq!(c.stats(EPOCH).paired, 1);
    assert_eq!(c.ready(EPOCH), 1);
}

#[test]
fn a_half_from_a_relay_that_did_not_serve_the_session_is_refused() {
    let mut tokens = token_issuer(0);
    let s = honest_session(&mut tokens, &relay_key(1), 6, 100, 100);
    let mut c = collector();
    c.receive(&Half::Client(s.client.clone())).unwrap();
    // Relay 2 got hold of the ticket and reports the session as its own.
    let intruder = relay_key(2);
    let mut meter = RelayMeter::new(GENESIS, intruder.clone(), 4);
    let key = session_key(6);
    let admitted = gate(&intruder)
        .admit(
            NOW,
            &STREAM,
            &CHALLENGE,
            &Admission::new(s.relay.ticket, &key, &node(&intruder), &STREAM, &CHALLENGE),
        )
        .unwrap();
    meter.admit(&admitted).unwrap();
    meter.record(&admitted.session(), 100, NOW * 1000).unwrap();
    let forged = meter.end_epoch(EPOCH).pop().unwrap();
    assert!(matches!(
        c.receive(&Half::Relay(forged.clone())),
        Err(UsageError::RelayMismatch { .. })
    ));
    assert_eq!(
        c.receive(&Half::Relay(s.relay.clone())),
        Ok(Accepted::Paired)
    );

    // The intruder reports first: it cannot block the session. Both claims wait; the
    // consumer's half names the relay that served it, pairs with that claim and drops the
    // other.
    let mut c = collector();
    assert_eq!(
        c.receive(&Half::Relay(forged.clone())),
        Ok(Accepted::Waiting)
    );
    assert_eq!(
        c.receive(&Half::Relay(s.relay.clone())),
        Ok(Accepted::Waiting)
    );
    assert_eq!(c.stats(EPOCH).pending, 2);
    assert_eq!(
        c.receive(&Half::Client(s.client.clone())),
        Ok(Accepted::Paired)
    );
    assert_eq!(c.stats(EPOCH).pending, 0);
    let record = c.take_batch(EPOCH).unwrap().records.remove(0);
    assert_eq!(record.relay, relay_key(1).public());
    assert!(matches!(
        c.receive(&Half::Relay(forged)),
        Err(UsageError::Duplicate { .. })
    ));
}

#[test]
fn a_session_holds_a_bounded_number_of_relay_claims() {
    let mut tokens = token_issuer(0);
    let s = honest_session(&mut tokens, &relay_key(1), 60, 100, 100);
    let key = session_key(60);
    let mut c = collector();
    for r in 2..=6u8 {
        let intruder = relay_key(r);
        let admitted = gate(&intruder)
            .admit(
                NOW,
                &STREAM,
                &CHALLENGE,
                &Admission::new(s.relay.ticket, &key, &node(&intruder), &STREAM, &CHALLENGE),
            )
            .unwrap();
        let mut meter = RelayMeter::new(GENESIS, intruder, 1);
        meter.admit(&admitted).unwrap();
        meter.record(&admitted.session(), 100, NOW * 1000).unwrap();
        let claim = meter.end_epoch(EPOCH).pop().unwrap();
        let result = c.receive(&Half::Relay(claim));
        if r <= 5 {
            assert_eq!(result, Ok(Accepted::Waiting));
        } else {
            assert_eq!(
                result,
                Err(UsageError::Full {
                    what: "relay claims of the session",
                    max: psp_usage::collect::MAX_RELAY_CLAIMS
                })
            );
        }
    }
    // The client's half drops every claim of a relay it does not name.
    assert_eq!(c.receive(&Half::Client(s.client)), Ok(Accepted::Waiting));
    assert_eq!(c.stats(EPOCH).pending, 1);
}

#[test]
fn bad_signatures_tickets_and_tokens_are_refused() {
    let mut tokens = token_issuer(0);
    let s = honest_session(&mut tokens, &relay_key(1), 7, 100, 100);
    let mut c = collector();
    // Altered counts after signing.
    let mut relay = s.relay.clone();
    relay.report.usage.bytes += 1;
    assert!(matches!(
        c.receive(&Half::Relay(relay)),
        Err(UsageError::BadReportSignature { side: "relay", .. })
    ));
    let mut client = s.client.clone();
    client.report.usage.bytes += 1;
    assert!(matches!(
        c.receive(&Half::Client(client)),
        Err(UsageError::BadReportSignature { side: "client", .. })
    ));
    // A relay naming another node than the signer.
    let mut other = s.relay.clone();
    other.relay = NodeId(relay_key(3).public());
    assert!(matches!(
        c.receive(&Half::Relay(other)),
        Err(UsageError::BadReportSignature { .. })
    ));
    // A ticket for another session, a forged ticket, a ticket from a non-elected oracle.
    let s2 = honest_session(&mut tokens, &relay_key(1), 8, 100, 100);
    let mut swapped = s.relay.clone();
    swapped.ticket = s2.relay.ticket;
    assert!(matches!(
        c.receive(&Half::Relay(swapped)),
        Err(UsageError::TicketForOtherSession { .. })
    ));
    let mut forged = s.relay.clone();
    forged.ticket.ticket.valid_from -= 1;
    assert!(matches!(
        c.receive(&Half::Relay(forged)),
        Err(UsageError::Forged { .. })
    ));
    let mut lonely = Collector::new(GENESIS, CollectorConfig::default());
    let mut info = epoch_info(EPOCH);
    info.elected = vec![node(&oracle_key(2))];
    lonely.open_epoch(info).unwrap();
    assert!(matches!(
        lonely.receive(&Half::Relay(s.relay.clone())),
        Err(UsageError::UnknownOracle { .. })
    ));
    // A ticket issued after the traffic it would cover.
    let mut late = s.relay.clone();
    late.report.usage.end_ms = (late.ticket.ticket.valid_from - 60) * 1000;
    late.report.usage.start_ms = late.report.usage.end_ms - 1;
    assert!(matches!(
        c.receive(&Half::Relay(late)),
        Err(UsageError::TicketDoesNotCover { .. })
    ));
    // A client half whose token backs another session.
    let mut borrowed = s.client.clone();
    borrowed.token = s2.client.token.clone();
    assert!(matches!(
        c.receive(&Half::Client(borrowed)),
        Err(UsageError::TokenMismatch { .. })
    ));
    // Nothing was stored by any refusal; the genuine halves still pair.
    assert_eq!(c.stats(EPOCH).pending, 0);
    c.receive(&Half::Relay(s.relay)).unwrap();
    assert_eq!(c.receive(&Half::Client(s.client)), Ok(Accepted::Paired));
}

#[test]
fn unknown_and_expired_epochs_are_refused_and_old_epochs_pruned() {
    let mut tokens = token_issuer(0);
    let s = honest_session(&mut tokens, &relay_key(1), 9, 100, 100);
    let mut c = Collector::new(GENESIS, CollectorConfig::default());
    assert_eq!(
        c.receive(&Half::Relay(s.relay.clone())),
        Err(UsageError::UnknownEpoch {
            epoch: u64::from(EPOCH)
        })
    );
    c.open_epoch(epoch_info(EPOCH)).unwrap();
    c.receive(&Half::Relay(s.relay.clone())).unwrap();
    for e in EPOCH + 1..=EPOCH + 3 {
        c.open_epoch(epoch_info(e)).unwrap();
    }
    assert_eq!(c.epochs(), vec![EPOCH + 1, EPOCH + 2, EPOCH + 3]);
    assert_eq!(c.stats(EPOCH).pending, 0);
    assert_eq!(
        c.receive(&Half::Client(s.client)),
        Err(UsageError::ExpiredEpoch {
            epoch: u64::from(EPOCH),
            oldest: u64::from(EPOCH + 1)
        })
    );
    assert!(matches!(
        c.open_epoch(epoch_info(EPOCH)),
        Err(UsageError::ExpiredEpoch { .. })
    ));
}

#[test]
fn batches_are_bounded_and_can_be_requeued() {
    let mut tokens = token_issuer(0);
    let config = CollectorConfig {
        max_batch_size: 3,
        ..CollectorConfig::default()
    };
    let mut c = Collector::new(GENESIS, config);
    c.open_epoch(epoch_info(EPOCH)).unwrap();
    for i in 0..7 {
        let s = honest_session(&mut tokens, &relay_key(1), 20 + i, 100, 100);
        c.receive(&Half::Relay(s.relay)).unwrap();
        c.receive(&Half::Client(s.client)).unwrap();
    }
    let first = c.take_batch(EPOCH).unwrap();
    assert_eq!(first.records.len(), 3);
    c.requeue(first.clone());
    let again = c.take_batch(EPOCH).unwrap();
    assert_eq!(again, first);
    let sizes: Vec<usize> = std::iter::from_fn(|| c.take_batch(EPOCH))
        .map(|b| b.records.len())
        .collect();
    assert_eq!(sizes, vec![3, 1]);
    assert!(c.take_batch(EPOCH + 1).is_none());
}

#[test]
fn meters_count_per_session_and_reset_each_epoch() {
    let relay = relay_key(1);
    let key = session_key(40);
    let mut tickets = ticket_issuer(0);
    let ticket = tickets
        .issue(NOW, &solve(&tickets.oracle(), &key, BLOCK))
        .unwrap();
    let admitted = gate(&relay)
        .admit(
            NOW,
            &STREAM,
            &CHALLENGE,
            &Admission::new(ticket, &key, &node(&relay), &STREAM, &CHALLENGE),
        )
        .unwrap();
    let mut meter = RelayMeter::new(GENESIS, relay.clone(), 1);
    meter.admit(&admitted).unwrap();
    meter.admit(&admitted).unwrap();
    assert_eq!(meter.len(), 1);
    let stranger = session_id_of(&session_key(41).public());
    assert!(matches!(
        meter.record(&stranger, 1, NOW * 1000),
        Err(UsageError::UnknownSession { .. })
    ));
    meter
        .record(&admitted.session(), 700, NOW * 1000 + 5)
        .unwrap();
    meter
        .record(&admitted.session(), 300, NOW * 1000 + 2)
        .unwrap();
    let halves = meter.end_epoch(EPOCH);
    assert_eq!(halves.len(), 1);
    let usage = halves[0].report.usage;
    assert_eq!(
        (usage.bytes, usage.start_ms, usage.end_ms),
        (1_000, NOW * 1000 + 2, NOW * 1000 + 6)
    );
    // Nothing metered in the next epoch: no half. Closed sessions go after their last half.
    assert!(meter.end_epoch(EPOCH + 1).is_empty());
    meter
        .record(&admitted.session(), 1, NOW * 1000 + 40_000)
        .unwrap();
    meter.close(&admitted.session());
    assert_eq!(meter.end_epoch(EPOCH + 2).len(), 1);
    assert!(meter.is_empty());

    let mut client = ClientMeter::new(GENESIS, key.clone(), node(&relay));
    let mut tokens = token_issuer(0);
    let token = token_for(&mut tokens, 40, &key);
    assert_eq!(client.end_epoch(EPOCH, token.clone()), Ok(None));
    client.record(5, NOW * 1000);
    // A token for another epoch is refused, and the count kept.
    assert!(matches!(
        client.end_epoch(EPOCH + 1, token.clone()),
        Err(UsageError::TokenMismatch { .. })
    ));
    let half = client.end_epoch(EPOCH, token).unwrap().unwrap();
    assert_eq!(half.report.usage.bytes, 5);
    assert_eq!(half.session(), admitted.session());
}

#[test]
fn halves_round_trip_on_the_wire() {
    let mut tokens = token_issuer(0);
    let s = honest_session(&mut tokens, &relay_key(1), 50, 100, 100);
    let relay = Half::Relay(s.relay);
    let client = Half::Client(s.client);
    let r = relay.encode();
    assert_eq!(r.len(), psp_usage::report::RELAY_HALF_LEN);
    assert_eq!(Half::decode(&r), Ok(relay));
    let cl = client.encode();
    assert!(cl.len() <= psp_usage::report::MAX_CLIENT_HALF_LEN);
    assert_eq!(Half::decode(&cl), Ok(client));
    let mut kind = r.clone();
    kind[1] = 3;
    assert!(matches!(
        Half::decode(&kind),
        Err(UsageError::UnknownKind { kind: 3, .. })
    ));
    let mut c = collector();
    assert_eq!(c.receive_bytes(&r), Ok(Accepted::Waiting));
    assert_eq!(c.receive_bytes(&cl), Ok(Accepted::Paired));
}

/// Pre-made sessions for the memory property (signing is slow in debug builds).
fn pool() -> &'static Vec<(Half, Half)> {
    static POOL: std::sync::OnceLock<Vec<(Half, Half)>> = std::sync::OnceLock::new();
    POOL.get_or_init(|| {
        let mut tokens = token_issuer(0);
        (0..24)
            .map(|i| {
                let s = honest_session(&mut tokens, &relay_key(1), 100 + i, 100, 100);
                (Half::Relay(s.relay), Half::Client(s.client))
            })
            .collect()
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// Any sequence of halves, epoch openings and batch takes keeps every table within its
    /// bound, never pairs a session twice, and pairs exactly the sessions whose two halves
    /// were both accepted.
    #[test]
    fn memory_stays_bounded_and_nothing_is_counted_twice(
        ops in proptest::collection::vec((0u8..6, 0usize..24, 0u32..3), 1..80),
        max_pending in 1usize..6,
        max_paired in 1usize..6,
    ) {
        let config = CollectorConfig {
            max_epochs: 2,
            max_pending_per_epoch: max_pending,
            max_paired_per_epoch: max_paired,
            max_batch_size: 2,
            ..CollectorConfig::default()
        };
        let mut c = Collector::new(GENESIS, config);
        c.open_epoch(epoch_info(EPOCH)).unwrap();
        let mut handed_out = std::collections::HashSet::new();
        for (op, i, e) in ops {
            let (relay, client) = &pool()[i];
            match op {
                0 | 1 => { let _ = c.receive(relay); }
                2 | 3 => { let _ = c.receive(client); }
                4 => { let _ = c.open_epoch(epoch_info(EPOCH + e)); }
                _ => {
                    if let Some(b) = c.take_batch(EPOCH) {
                        prop_assert!(b.records.len() <= 2);
                        for r in b.records {
                            prop_assert!(handed_out.insert(r.session), "paired twice");
                        }
                    }
                }
            }
            prop_assert!(c.epochs().len() <= 2);
            for epoch in c.epochs() {
                let s = c.stats(epoch);
                prop_assert!(s.pending <= max_pending);
                prop_assert!(s.paired <= max_paired);
                prop_assert!(s.ready <= s.paired);
            }
        }
    }
}
