//! Property tests of issue 4, point 6: over random honest traffic, cheating never earns a relay
//! more than honest reporting of the same real traffic would.
//!
//! Each case runs the real pallet in the mock runtime with real sr25519 signatures: three
//! relays, 3 to 7 elected oracles, up to eight sessions of random size and interval in epoch 1,
//! reported during epoch 2; epoch 1 closes when epoch 3 starts and every credited relay claims.
//! The same traffic is run honestly and with the cheat, and the outcomes compared:
//!
//! - a relay that inflates its byte counts (by any factor) or its intervals earns at most its
//!   honest reward;
//! - clients that deflate their counts never raise any relay's credit, and the relay they
//!   deflate earns at most its honest reward (its lost share goes to the others: the pool is
//!   fixed and shared pro rata);
//! - fewer than a third of the oracles, lying in any way open to them (dropping records,
//!   adding sessions fabricated with a colluding relay), change no relay's credit;
//! - replayed and duplicated reports are refused and change nothing;
//! - a relay and client that collude earn at most the rate cap for each session the oracles
//!   report: `MaxBytesPerSecond` × the session's time within the epoch, so at most
//!   1 000 B/s × 15 s = 15 000 bytes per fabricated session per epoch in the mock;
//! - at any payout rate cap, fabricated credit `F` raises the colluding relay's payout by at
//!   most `rate × F + 2` (the rate cap bounds every relay's payout per byte; see
//!   `psp-net/usage/README.md` for why this makes fabricated consumers cost more than they
//!   earn);
//! - in every run, the epoch pays at most its pool.
//!
//! Signatures make debug-build cases slow, so each property runs [`CASES`] cases unless
//! `PROPTEST_CASES` asks for more or fewer.

use crate::{mock::*, Accrued, Error, Tallies};
use frame_support::{assert_noop, assert_ok, traits::fungible::Inspect};
use proptest::prelude::*;
use psp_primitives::{
    rewards::{rate_limited_pool, Interval, Normalization, UsageRecord},
    staking::EpochIndex,
};
use sp_runtime::Perbill;

/// Cases per property, unless `PROPTEST_CASES` is set.
const CASES: u32 = 24;

fn config() -> ProptestConfig {
    let mut config = ProptestConfig::default();
    if std::env::var_os("PROPTEST_CASES").is_none() {
        config.cases = CASES;
    }
    config
}
/// Relays in every case.
const RELAYS: u8 = 3;
/// The epoch the traffic is in.
const EPOCH: EpochIndex = 1;
/// The most bytes one session can be credited in an epoch: the rate cap over the epoch's
/// 15 s. The collusion bound, per fabricated session.
const SESSION_CAP: u64 = MAX_SESSION_BYTES;

/// One real session: its relay, its size and its time relative to the epoch's start (it may
/// begin up to 2.5 s before the epoch and end after it).
#[derive(Clone, Debug)]
struct Session {
    relay: u8,
    bytes: u64,
    start: u64,
    len: u64,
}

impl Session {
    fn usage(&self) -> psp_primitives::rewards::Usage {
        let start_ms = (epoch_span(EPOCH).start_ms + self.start).saturating_sub(2_500);
        usage(
            self.bytes,
            Interval {
                start_ms,
                end_ms: start_ms + self.len,
            },
        )
    }
}

fn session() -> impl Strategy<Value = Session> {
    (0..RELAYS, 0u64..40_000, 0u64..20_000, 0u64..20_000).prop_map(|(relay, bytes, start, len)| {
        Session {
            relay,
            bytes,
            start,
            len,
        }
    })
}

fn traffic() -> impl Strategy<Value = Vec<Session>> {
    prop::collection::vec(session(), 1..=8)
}

/// A session fabricated by a colluding relay and client: any size, any interval.
#[derive(Clone, Debug)]
struct Fake {
    bytes: u64,
    start_ms: u64,
    len_ms: u64,
}

fn fake() -> impl Strategy<Value = Fake> {
    (any::<u64>(), 0u64..1 << 40, 0u64..1 << 40).prop_map(|(bytes, start_ms, len_ms)| Fake {
        bytes,
        start_ms,
        len_ms,
    })
}

impl Fake {
    fn usage(&self) -> psp_primitives::rewards::Usage {
        usage(
            self.bytes,
            Interval {
                start_ms: self.start_ms,
                end_ms: self.start_ms + self.len_ms,
            },
        )
    }

    /// The most this session can be credited: the rate cap over its time within the epoch.
    fn cap(&self) -> u64 {
        let rule = Normalization {
            tolerance: Perbill::from_percent(5),
            max_bytes_per_second: MAX_BPS,
            max_session_bytes: MAX_SESSION_BYTES,
        };
        rule.cap(self.usage().interval().intersect(epoch_span(EPOCH)))
    }
}

/// Client keys of fabricated sessions, apart from the real clients'.
const FAKE_CLIENTS: u32 = 1_000;

/// Records signed in a fresh genesis (the genesis hash is the same in every one).
fn sign(build: impl FnOnce() -> Vec<UsageRecord>) -> Vec<UsageRecord> {
    new_test_ext().execute_with(build)
}

/// The honest records of `traffic`: both sides sign what happened.
fn honest_records(traffic: &[Session]) -> Vec<UsageRecord> {
    sign(|| {
        traffic
            .iter()
            .enumerate()
            .map(|(i, s)| {
                let u = s.usage();
                signed_record(EPOCH, &relay_pair(s.relay), &client_pair(i as u32), u, u)
            })
            .collect()
    })
}

/// Fabricated sessions of `relay`, signed by it and colluding clients.
fn fake_records(relay: u8, fakes: &[Fake]) -> Vec<UsageRecord> {
    sign(|| {
        fakes
            .iter()
            .enumerate()
            .map(|(j, f)| {
                let u = f.usage();
                let client = client_pair(FAKE_CLIENTS + j as u32);
                signed_record(EPOCH, &relay_pair(relay), &client, u, u)
            })
            .collect()
    })
}

/// What a run credited and paid each relay.
#[derive(Debug, PartialEq, Eq)]
struct Outcome {
    credit: Vec<u64>,
    paid: Vec<u64>,
}

/// Sets up `oracles` oracles for epoch 1 and runs to epoch 2.
fn start(oracles: usize) {
    for relay in 0..RELAYS {
        register_relay(relay);
    }
    elect(EPOCH, &ORACLES[..oracles]);
    run_to_epoch(EPOCH + 1);
}

/// Oracle `index` submits `records` in full batches.
fn submit_all(index: usize, records: &[UsageRecord]) {
    for batch in records.chunks(MAX_BATCH as usize) {
        assert_ok!(Rewards::submit_reports(
            RuntimeOrigin::signed(ORACLES[index]),
            EPOCH,
            batch.to_vec()
        ));
    }
}

/// Closes epoch 1, lets every credited relay claim, checks the epoch paid at most its pool.
fn finish() -> Outcome {
    let credit = (0..RELAYS)
        .map(|r| Tallies::<Test>::get(EPOCH, relay_key(r)).map_or(0, |t| t.credit))
        .collect();
    run_to_epoch(EPOCH + 2);
    let paid: Vec<u64> = (0..RELAYS)
        .map(|r| {
            if !Accrued::<Test>::contains_key(relay_key(r), EPOCH) {
                return 0;
            }
            let owner = relay_owner(r);
            let before = Balances::balance(&owner);
            assert_ok!(Rewards::claim(
                RuntimeOrigin::signed(owner),
                relay_key(r),
                vec![EPOCH]
            ));
            Balances::balance(&owner) - before
        })
        .collect();
    assert!(
        paid.iter().sum::<u64>() <= REWARD,
        "paid more than the pool"
    );
    assert_eq!(
        Balances::balance(&pot()),
        POT_FUNDS - paid.iter().sum::<u64>()
    );
    check_all();
    Outcome { credit, paid }
}

/// One epoch in which oracle `i` submits `batches[i]`.
fn run(batches: &[Vec<UsageRecord>]) -> Outcome {
    run_at(RATE_PER_GIGABYTE, batches)
}

/// [`run`] with the payout rate capped at `rate` per gigabyte.
fn run_at(rate: u64, batches: &[Vec<UsageRecord>]) -> Outcome {
    new_test_ext().execute_with(|| {
        MaxRewardPerGigabyte::set(&rate);
        start(batches.len());
        for (index, records) in batches.iter().enumerate() {
            submit_all(index, records);
        }
        finish()
    })
}

/// Every one of `oracles` oracles submits `records`.
fn everyone(oracles: usize, records: &[UsageRecord]) -> Vec<Vec<UsageRecord>> {
    vec![records.to_vec(); oracles]
}

proptest! {
    #![proptest_config(config())]

    /// A relay that signs more bytes than it carried (by any factor up to 1 000×), or a longer
    /// interval, earns at most what honest reports would have earned it.
    #[test]
    fn an_inflating_relay_earns_no_more_than_an_honest_one(
        traffic in traffic(),
        cheat in 0..RELAYS,
        inflation in prop::collection::vec((100u64..=100_000, any::<bool>()), 8),
        oracles in 3usize..=5,
    ) {
        let honest = honest_records(&traffic);
        let cheating = sign(|| {
            traffic
                .iter()
                .enumerate()
                .map(|(i, s)| {
                    let real = s.usage();
                    let mut claimed = real;
                    if s.relay == cheat {
                        let (percent, stretch) = inflation[i];
                        let bytes = u128::from(real.bytes) * u128::from(percent) / 100;
                        claimed.bytes = u64::try_from(bytes).unwrap_or(u64::MAX);
                        if stretch {
                            claimed.start_ms = claimed.start_ms.saturating_sub(60_000);
                            claimed.end_ms += 60_000;
                        }
                    }
                    signed_record(EPOCH, &relay_pair(s.relay), &client_pair(i as u32), claimed, real)
                })
                .collect()
        });
        let fair = run(&everyone(oracles, &honest));
        let cheated = run(&everyone(oracles, &cheating));
        prop_assert!(cheated.credit[cheat as usize] <= fair.credit[cheat as usize]);
        prop_assert!(cheated.paid[cheat as usize] <= fair.paid[cheat as usize]);
    }

    /// The clients of one relay sign fewer bytes than they received: no relay's credit
    /// rises, and the relay they deflate earns at most its honest reward. (Its lost share goes
    /// to the other relays, pro rata: a fixed pool is shared by whoever is credited.)
    #[test]
    fn deflating_clients_raise_no_credit(
        traffic in traffic(),
        victim in 0..RELAYS,
        deflation in prop::collection::vec(prop::option::of(0u64..100), 8),
        oracles in 3usize..=5,
    ) {
        let honest = honest_records(&traffic);
        let deflated = sign(|| {
            traffic
                .iter()
                .enumerate()
                .map(|(i, s)| {
                    let real = s.usage();
                    let mut claimed = real;
                    if let (true, Some(percent)) = (s.relay == victim, deflation[i]) {
                        claimed.bytes = real.bytes * percent / 100;
                    }
                    signed_record(EPOCH, &relay_pair(s.relay), &client_pair(i as u32), real, claimed)
                })
                .collect()
        });
        let fair = run(&everyone(oracles, &honest));
        let cheated = run(&everyone(oracles, &deflated));
        for relay in 0..RELAYS as usize {
            prop_assert!(cheated.credit[relay] <= fair.credit[relay]);
        }
        prop_assert!(cheated.paid[victim as usize] <= fair.paid[victim as usize]);
    }

    /// Fewer than a third of the oracles lie: each drops any of the real records and adds
    /// sessions fabricated with a colluding relay. Every relay's credit, and so every payout,
    /// is exactly the honest one.
    #[test]
    fn a_lying_oracle_minority_changes_no_credit(
        traffic in traffic(),
        oracles in 4usize..=7,
        accomplice in 0..RELAYS,
        fakes in prop::collection::vec(fake(), 0..=4),
        kept in prop::collection::vec(prop::collection::vec(any::<bool>(), 8), 2),
    ) {
        let liars = (oracles - 1) / 3;
        prop_assert!(3 * liars < oracles);
        let honest = honest_records(&traffic);
        let fabricated = fake_records(accomplice, &fakes);
        let mut batches = everyone(oracles, &honest);
        for (liar, keep) in kept.iter().enumerate().take(liars) {
            let mut lies: Vec<UsageRecord> = honest
                .iter()
                .zip(keep)
                .filter(|(_, keep)| **keep)
                .map(|(r, _)| r.clone())
                .collect();
            lies.extend(fabricated.iter().cloned());
            batches[liar] = lies;
        }
        let fair = run(&everyone(oracles, &honest));
        let lied = run(&batches);
        prop_assert_eq!(lied, fair);
    }

    /// Replays are refused: a second submission of the same session by the same oracle, a
    /// session twice in a batch, a record of one epoch filed for another, a report after its
    /// window. The outcome is the honest one.
    #[test]
    fn replayed_and_duplicated_reports_change_nothing(
        traffic in traffic(),
        oracles in 3usize..=4,
        replay in any::<prop::sample::Index>(),
    ) {
        let honest = honest_records(&traffic);
        let fair = run(&everyone(oracles, &honest));
        let replayed = new_test_ext().execute_with(|| {
            start(oracles);
            for index in 0..oracles {
                submit_all(index, &honest);
            }
            let again = replay.get(&honest).clone();
            for oracle in &ORACLES[..oracles] {
                assert_noop!(
                    Rewards::submit_reports(RuntimeOrigin::signed(*oracle), EPOCH, vec![again.clone()]),
                    Error::<Test>::AlreadyReported
                );
                assert_noop!(
                    Rewards::submit_reports(
                        RuntimeOrigin::signed(*oracle),
                        EPOCH,
                        vec![again.clone(), again.clone()]
                    ),
                    Error::<Test>::DuplicateSession
                );
            }
            let outcome = finish();
            // In epoch 3: epoch 1's window is over, and its records do not verify as epoch 2's.
            assert_noop!(
                Rewards::submit_reports(RuntimeOrigin::signed(ORACLES[0]), EPOCH, vec![again.clone()]),
                Error::<Test>::ReportWindowClosed
            );
            assert_noop!(
                Rewards::submit_reports(RuntimeOrigin::signed(ORACLES[0]), EPOCH + 1, vec![again]),
                Error::<Test>::BadRelaySignature
            );
            outcome
        });
        prop_assert_eq!(replayed, fair);
    }

    /// A relay and clients that collude fabricate sessions of any size and interval, and every
    /// oracle reports them (they are validly signed). The relay gains at most the rate cap
    /// for each fabricated session — `MaxBytesPerSecond` × its time within the epoch, at most
    /// `SESSION_CAP` = 15 000 bytes — and no other relay's credit changes.
    #[test]
    fn collusion_earns_at_most_the_rate_cap_per_session(
        traffic in traffic(),
        oracles in 3usize..=5,
        colluder in 0..RELAYS,
        fakes in prop::collection::vec(fake(), 1..=4),
    ) {
        let honest = honest_records(&traffic);
        let mut all = honest.clone();
        all.extend(fake_records(colluder, &fakes));
        let fair = run(&everyone(oracles, &honest));
        let colluded = run(&everyone(oracles, &all));
        let bound: u64 = fakes.iter().map(Fake::cap).sum();
        prop_assert!(fakes.iter().all(|f| f.cap() <= SESSION_CAP));
        let gain = colluded.credit[colluder as usize].saturating_sub(fair.credit[colluder as usize]);
        prop_assert!(gain <= bound, "gained {} bytes, bound {}", gain, bound);
        for relay in (0..RELAYS).filter(|r| *r != colluder) {
            prop_assert_eq!(colluded.credit[relay as usize], fair.credit[relay as usize]);
        }
    }

    /// Fabricated credit `F` raises the colluding relay's payout by at most the payout rate
    /// cap times `F`, plus two units of rounding, at any rate: rates from 10⁶ to 10⁸ per
    /// gigabyte make the epoch's pool rate-limited in some cases and the full `REWARD` in
    /// others (the mock's epochs carry tens of kilobytes).
    #[test]
    fn fabricated_credit_earns_at_most_the_rate_cap_per_byte(
        traffic in traffic(),
        colluder in 0..RELAYS,
        fakes in prop::collection::vec(fake(), 1..=4),
        rate in 1_000_000u64..=100_000_000,
    ) {
        let honest = honest_records(&traffic);
        let mut all = honest.clone();
        all.extend(fake_records(colluder, &fakes));
        let fair = run_at(rate, &everyone(3, &honest));
        let colluded = run_at(rate, &everyone(3, &all));
        let colluder = colluder as usize;
        let fabricated = colluded.credit[colluder] - fair.credit[colluder];
        let gain = colluded.paid[colluder].saturating_sub(fair.paid[colluder]);
        let bound = rate_limited_pool(u128::from(rate), u128::from(fabricated)) + 2;
        prop_assert!(
            u128::from(gain) <= bound,
            "gained {} for {} fabricated bytes at {}/GB, bound {}", gain, fabricated, rate, bound
        );
        let total: u64 = colluded.paid.iter().sum();
        let total_credit: u64 = colluded.credit.iter().sum();
        prop_assert!(u128::from(total) <= rate_limited_pool(u128::from(rate), u128::from(total_credit)));
    }
}
