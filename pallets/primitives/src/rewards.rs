//! Bandwidth-reward types: the usage record an oracle submits, the exact bytes a relay and a
//! client sign, and the pure rules the chain applies to them — normalization of one session,
//! the oracle quorum and median, and the pro-rata share of an epoch's pool.
//!
//! A stream session is keyed by an anonymous *session id*: the BLAKE2-256 hash of an sr25519
//! *session key* the client makes for that session only ([`session_id_of`]). After an epoch
//! both ends sign what they saw of the session during that epoch: the relay with its node
//! identity key over [`relay_report_message`], the client with its session key over
//! [`client_report_message`]. An oracle collects the two halves and submits them as one
//! [`UsageRecord`]. Decoding a record checks nothing; only [`UsageRecord::check`] verifies both
//! signatures and the session binding and yields a [`CheckedUsage`], so an oracle can neither
//! invent nor alter either side.
//!
//! Binding the session id to the client's key makes the session id *be* the client's key: one
//! session key signs for exactly one session id, so the chain's "once per oracle, session and
//! epoch" rule is also "once per client key" and a signed client report cannot be re-filed
//! under a fresh id. Both messages name the chain (genesis hash), the epoch, the session and
//! the relay, with distinct domain tags, so a signature is valid for one side of one session
//! of one relay in one epoch on one chain and nowhere else.

use crate::{
    identity::{IdentityKey, IdentitySignature},
    staking::EpochIndex,
};
use alloc::vec::Vec;
use codec::{Decode, DecodeWithMemTracking, Encode, MaxEncodedLen};
use scale_info::TypeInfo;
use sp_runtime::{helpers_128bit::multiply_by_rational_with_rounding, PerThing, Perbill, Rounding};

/// A session id: BLAKE2-256 of the client's session key.
pub type SessionId = [u8; 32];
/// The client's anonymous sr25519 session key (public part).
pub type SessionKey = [u8; 32];

/// Domain separation tag of a relay's usage report.
pub const RELAY_REPORT_CONTEXT: &[u8] = b"psp/rewards/relay-report/v1";
/// Domain separation tag of a client's usage report.
pub const CLIENT_REPORT_CONTEXT: &[u8] = b"psp/rewards/client-report/v1";
/// Domain separation tag of an oracle node's signature over a batch it submits itself.
pub const NODE_BATCH_CONTEXT: &[u8] = b"psp/rewards/oracle-batch/v1";

/// The session id a client session key stands for.
pub fn session_id_of(key: &SessionKey) -> SessionId {
    sp_crypto_hashing::blake2_256(key)
}

/// A span of time in unix milliseconds, `start_ms` included, `end_ms` excluded. A span whose
/// end is not after its start is empty.
#[derive(
    Clone,
    Copy,
    Debug,
    Default,
    PartialEq,
    Eq,
    Encode,
    Decode,
    DecodeWithMemTracking,
    MaxEncodedLen,
    TypeInfo,
)]
pub struct Interval {
    /// First millisecond.
    pub start_ms: u64,
    /// First millisecond after the span.
    pub end_ms: u64,
}

impl Interval {
    /// The span both `self` and `other` cover (empty if they do not overlap).
    pub fn intersect(self, other: Interval) -> Interval {
        let start_ms = self.start_ms.max(other.start_ms);
        let end_ms = self.end_ms.min(other.end_ms).max(start_ms);
        Interval { start_ms, end_ms }
    }

    /// Its length in milliseconds (zero when empty).
    pub fn duration_ms(self) -> u64 {
        self.end_ms.saturating_sub(self.start_ms)
    }
}

/// What one end of a session saw of it during one epoch.
#[derive(
    Clone,
    Copy,
    Debug,
    Default,
    PartialEq,
    Eq,
    Encode,
    Decode,
    DecodeWithMemTracking,
    MaxEncodedLen,
    TypeInfo,
)]
pub struct Usage {
    /// Stream bytes carried, both directions.
    pub bytes: u64,
    /// When the traffic started, unix milliseconds.
    pub start_ms: u64,
    /// When it ended, unix milliseconds.
    pub end_ms: u64,
}

impl Usage {
    /// The interval the usage covers.
    pub fn interval(&self) -> Interval {
        Interval {
            start_ms: self.start_ms,
            end_ms: self.end_ms,
        }
    }
}

/// A usage report with the signer's sr25519 signature.
#[derive(
    Clone, Debug, PartialEq, Eq, Encode, Decode, DecodeWithMemTracking, MaxEncodedLen, TypeInfo,
)]
pub struct SignedUsage {
    /// What the signer saw.
    pub usage: Usage,
    /// The signature over [`relay_report_message`] or [`client_report_message`].
    pub signature: IdentitySignature,
}

/// The bytes a relay's node identity key signs for its side of a session in an epoch.
pub fn relay_report_message(
    genesis: &[u8; 32],
    epoch: EpochIndex,
    session: &SessionId,
    relay: &IdentityKey,
    usage: &Usage,
) -> Vec<u8> {
    (RELAY_REPORT_CONTEXT, genesis, epoch, session, relay, usage).encode()
}

/// The bytes a client's session key signs for its side of a session in an epoch. It names the
/// relay, so a client's report cannot be attached to another relay.
pub fn client_report_message(
    genesis: &[u8; 32],
    epoch: EpochIndex,
    session: &SessionId,
    relay: &IdentityKey,
    usage: &Usage,
) -> Vec<u8> {
    (CLIENT_REPORT_CONTEXT, genesis, epoch, session, relay, usage).encode()
}

/// Both sides of one session in one epoch, as an oracle submits them. Unchecked: see
/// [`UsageRecord::check`].
#[derive(
    Clone, Debug, PartialEq, Eq, Encode, Decode, DecodeWithMemTracking, MaxEncodedLen, TypeInfo,
)]
pub struct UsageRecord {
    /// The session id; must be [`session_id_of`] `client_key`.
    pub session: SessionId,
    /// The relay's node identity key.
    pub relay: IdentityKey,
    /// The relay's report, signed by `relay`.
    pub relay_report: SignedUsage,
    /// The client's session key.
    pub client_key: SessionKey,
    /// The client's report, signed by `client_key`.
    pub client_report: SignedUsage,
}

/// A batch of usage records an elected oracle *node* submits itself, as an unsigned
/// transaction signed with its node key over [`node_batch_message`] (no account, no fee).
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode, DecodeWithMemTracking, TypeInfo)]
pub struct NodeUsageBatch {
    /// The epoch the records are for (the previous one).
    pub epoch: EpochIndex,
    /// The oracle's node identity key.
    pub oracle: IdentityKey,
    /// The records.
    pub reports: Vec<UsageRecord>,
    /// The oracle node's sr25519 signature over [`node_batch_message`].
    pub signature: IdentitySignature,
}

/// The bytes an oracle node signs for a batch: the tag, the chain, the epoch, itself and the
/// BLAKE2-256 hash of the SCALE-encoded records.
pub fn node_batch_message(
    genesis: &[u8; 32],
    epoch: EpochIndex,
    oracle: &IdentityKey,
    reports: &[UsageRecord],
) -> Vec<u8> {
    let digest = sp_crypto_hashing::blake2_256(&reports.encode());
    (NODE_BATCH_CONTEXT, genesis, epoch, oracle, digest).encode()
}

/// Why a [`UsageRecord`] does not check.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RecordError {
    /// The session id is not the hash of the client's session key.
    SessionKeyMismatch,
    /// The relay's signature does not verify.
    BadRelaySignature,
    /// The client's signature does not verify.
    BadClientSignature,
}

/// A record whose session binding and both signatures verified; only [`UsageRecord::check`]
/// makes one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CheckedUsage {
    session: SessionId,
    relay: IdentityKey,
    relay_usage: Usage,
    client_usage: Usage,
}

impl CheckedUsage {
    /// The session id.
    pub fn session(&self) -> &SessionId {
        &self.session
    }

    /// The relay's node identity key.
    pub fn relay(&self) -> &IdentityKey {
        &self.relay
    }

    /// What the relay signed.
    pub fn relay_usage(&self) -> &Usage {
        &self.relay_usage
    }

    /// What the client signed.
    pub fn client_usage(&self) -> &Usage {
        &self.client_usage
    }
}

impl UsageRecord {
    /// Checks the session binding, then both signatures for `epoch` on the chain `genesis`.
    /// `verify(signature, message, public key)` is the sr25519 verifier (the runtime passes
    /// its host function).
    pub fn check(
        &self,
        genesis: &[u8; 32],
        epoch: EpochIndex,
        verify: impl Fn(&IdentitySignature, &[u8], &[u8; 32]) -> bool,
    ) -> Result<CheckedUsage, RecordError> {
        if session_id_of(&self.client_key) != self.session {
            return Err(RecordError::SessionKeyMismatch);
        }
        let relay_message = relay_report_message(
            genesis,
            epoch,
            &self.session,
            &self.relay,
            &self.relay_report.usage,
        );
        if !verify(&self.relay_report.signature, &relay_message, &self.relay) {
            return Err(RecordError::BadRelaySignature);
        }
        let client_message = client_report_message(
            genesis,
            epoch,
            &self.session,
            &self.relay,
            &self.client_report.usage,
        );
        if !verify(
            &self.client_report.signature,
            &client_message,
            &self.client_key,
        ) {
            return Err(RecordError::BadClientSignature);
        }
        Ok(CheckedUsage {
            session: self.session,
            relay: self.relay,
            relay_usage: self.relay_report.usage,
            client_usage: self.client_report.usage,
        })
    }
}

/// What normalization makes of one session.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// The sides agree: this many bytes are credited (possibly zero).
    Credit(u64),
    /// The sides disagree beyond the tolerance: nothing is credited, and the dispute counts
    /// against the relay.
    Disputed,
}

/// The normalization rule of one session (issue 4, point 3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Normalization {
    /// How far the two byte counts may differ, as a part of the larger one.
    pub tolerance: Perbill,
    /// The most bytes per second a session is credited for.
    pub max_bytes_per_second: u64,
    /// The most bytes one session is credited in one epoch, however long the epoch ran (a
    /// stalled chain makes an epoch longer in time): what bounds fabricated credit per
    /// consumer token.
    pub max_session_bytes: u64,
}

impl Normalization {
    /// Whether two byte counts agree: `|a - b| <= tolerance * max(a, b)`, exactly (no rounding).
    pub fn agree(&self, a: u64, b: u64) -> bool {
        let (low, high) = (a.min(b), a.max(b));
        let difference = u128::from(high - low);
        difference * u128::from(Perbill::ACCURACY)
            <= u128::from(self.tolerance.deconstruct()) * u128::from(high)
    }

    /// The most bytes credited for traffic over `interval`: the rate cap times its length,
    /// and never more than `max_session_bytes`.
    pub fn cap(&self, interval: Interval) -> u64 {
        let bytes =
            u128::from(self.max_bytes_per_second) * u128::from(interval.duration_ms()) / 1_000;
        u64::try_from(bytes)
            .unwrap_or(u64::MAX)
            .min(self.max_session_bytes)
    }

    /// Normalizes one session of an epoch whose span is `epoch`: when the byte counts agree
    /// within the tolerance, the smaller one, capped by the rate cap times the time both sides
    /// say the session ran within the epoch; otherwise [`Verdict::Disputed`].
    pub fn normalize(&self, relay: &Usage, client: &Usage, epoch: Interval) -> Verdict {
        if !self.agree(relay.bytes, client.bytes) {
            return Verdict::Disputed;
        }
        let ran = relay
            .interval()
            .intersect(client.interval())
            .intersect(epoch);
        Verdict::Credit(relay.bytes.min(client.bytes).min(self.cap(ran)))
    }
}

/// Whether `reporters` of `elected` oracles make a quorum: at least two thirds, and at least one.
pub fn meets_quorum(reporters: u32, elected: u32) -> bool {
    reporters > 0 && 3 * u64::from(reporters) >= 2 * u64::from(elected)
}

/// The fewest reporters of `elected` oracles that make a quorum: ⌈2·elected / 3⌉, at least 1.
pub fn quorum(elected: u32) -> u32 {
    let needed = (2 * u64::from(elected)).div_ceil(3).max(1);
    u32::try_from(needed).unwrap_or(u32::MAX)
}

/// The lower median: the middle value, or the smaller of the two middle values. Lying
/// oracles cannot move it above every honest value while they are at most half of the
/// reporters (and not below every honest value while they are fewer than half).
pub fn lower_median(values: impl IntoIterator<Item = u64>) -> Option<u64> {
    let mut values: Vec<u64> = values.into_iter().collect();
    if values.is_empty() {
        return None;
    }
    values.sort_unstable();
    values.get((values.len() - 1) / 2).copied()
}

/// A relay's credit for an epoch (issue 4, point 4): the lower median of what the reporting
/// oracles credited it, if they are a quorum of the `elected` oracles; otherwise zero.
pub fn relay_credit(reports: &[u64], elected: u32) -> u64 {
    let reporters = u32::try_from(reports.len()).unwrap_or(u32::MAX);
    if !meets_quorum(reporters, elected) {
        return 0;
    }
    lower_median(reports.iter().copied()).unwrap_or(0)
}

/// `pool * credit / total`, rounded down, so the shares of all credits never add up to more
/// than `pool`. Zero when `total` is zero; `credit` above `total` counts as `total`.
pub fn pro_rata(pool: u128, credit: u128, total: u128) -> u128 {
    if total == 0 {
        return 0;
    }
    multiply_by_rational_with_rounding(pool, credit.min(total), total, Rounding::Down).unwrap_or(0)
}

/// Bytes in a gigabyte, the unit of the reward rate cap.
pub const GIGABYTE: u128 = 1_000_000_000;

/// The most an epoch pays for `credit` bytes at `rate_per_gigabyte`: `rate × credit / 10⁹`,
/// rounded down, saturating. The pallet's pool is never more than this, so no relay earns
/// more than the rate per byte of its credit.
pub fn rate_limited_pool(rate_per_gigabyte: u128, credit: u128) -> u128 {
    multiply_by_rational_with_rounding(rate_per_gigabyte, credit, GIGABYTE, Rounding::Down)
        .unwrap_or(u128::MAX)
}

/// The oracle nodes elected for each epoch, as the rewards pallet needs them; implemented by
/// the staking pallet, whose elected sets are known for the current and the next epoch only
/// (the rewards pallet keeps its own copy of each epoch's set).
pub trait OracleSet<AccountId> {
    /// The current epoch.
    fn current_epoch() -> EpochIndex;

    /// The oracles elected for `epoch`, as (node identity key, owner account), if the set is
    /// known.
    fn oracles(epoch: EpochIndex) -> Option<Vec<(IdentityKey, AccountId)>>;

    /// Puts `oracles` in place as the set of `epoch`. For benchmarks and tests of pallets that
    /// depend on the set; never call it from a dispatchable.
    fn set_oracles_unchecked(epoch: EpochIndex, oracles: Vec<(IdentityKey, AccountId)>);
}

/// A relay's reward for one epoch, as the runtime API returns it.
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode, TypeInfo)]
pub struct PendingReward<Balance> {
    /// The epoch.
    pub epoch: EpochIndex,
    /// Bytes credited to the relay (final once the epoch is closed).
    pub credited_bytes: u64,
    /// What a claim pays now; `None` while the epoch's reports are still coming in.
    pub amount: Option<Balance>,
}

/// A relay's standing, as the runtime API returns it.
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode, TypeInfo)]
pub struct RelayRewards<Balance> {
    /// Sessions whose two sides disagreed beyond the tolerance, over the relay's lifetime.
    pub disputes: u32,
    /// Epochs with a credit not yet claimed, sorted by epoch (at most
    /// [`crate::api::MAX_PENDING_EPOCHS`]).
    pub pending: Vec<PendingReward<Balance>>,
}

/// What the oracles reported for a relay in an epoch whose reports are still kept (until the
/// epoch is closed and pruned), as the runtime API returns it.
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode, TypeInfo)]
pub struct RelayEpochInfo<AccountId> {
    /// The relay's owner, who may claim.
    pub owner: AccountId,
    /// The bytes each reporting oracle credited, by oracle node key.
    pub reports: Vec<(IdentityKey, u64)>,
    /// Oracles elected for the epoch.
    pub elected: u32,
    /// Reporters needed for a quorum.
    pub quorum: u32,
    /// The credit: the lower median of the reports, or zero without a quorum.
    pub credited_bytes: u64,
}

/// An epoch's rewards, as the runtime API returns it.
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode, TypeInfo)]
pub struct EpochRewards<Balance> {
    /// The epoch.
    pub epoch: EpochIndex,
    /// Relays the oracles reported.
    pub relays: u32,
    /// Relays with a credit.
    pub credited_relays: u32,
    /// Relays with a credit they have not claimed yet.
    pub unclaimed_relays: u32,
    /// Total credited bytes.
    pub total_credit: u128,
    /// The epoch's pool, once closed (`None` while reports come in).
    pub pool: Option<Balance>,
    /// Paid from the pool so far.
    pub paid: Balance,
}

/// The pallet's state, as the runtime API returns it.
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode, TypeInfo)]
pub struct RewardsStatus<AccountId, Balance> {
    /// The current epoch, as the rewards pallet last saw it.
    pub current_epoch: Option<EpochIndex>,
    /// The epoch whose reports are accepted now (the previous one).
    pub reporting_epoch: Option<EpochIndex>,
    /// The pot rewards are paid from.
    pub pot: AccountId,
    /// What the pot can pay out (its balance above the existential deposit).
    pub pot_balance: Balance,
    /// Promised to relays and not yet claimed.
    pub committed: Balance,
    /// The pool of each epoch, if the pot can cover it.
    pub reward_per_epoch: Balance,
    /// The most an epoch pays per gigabyte of credit (the pool is at most this rate times
    /// the epoch's total credit).
    pub max_reward_per_gigabyte: Balance,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn usage(bytes: u64, start_ms: u64, end_ms: u64) -> Usage {
        Usage {
            bytes,
            start_ms,
            end_ms,
        }
    }

    /// 5% tolerance, 1 000 bytes per second, at most 10 MB per session.
    const RULE: Normalization = Normalization {
        tolerance: Perbill::from_percent(5),
        max_bytes_per_second: 1_000,
        max_session_bytes: 10_000_000,
    };
    const EPOCH: Interval = Interval {
        start_ms: 0,
        end_ms: 1_000_000,
    };

    #[test]
    fn intervals_intersect_and_empty_ones_last_nothing() {
        let a = Interval {
            start_ms: 10,
            end_ms: 20,
        };
        let b = Interval {
            start_ms: 15,
            end_ms: 30,
        };
        assert_eq!(a.intersect(b).duration_ms(), 5);
        let disjoint = Interval {
            start_ms: 40,
            end_ms: 50,
        };
        assert_eq!(a.intersect(disjoint).duration_ms(), 0);
        let backwards = Interval {
            start_ms: 50,
            end_ms: 40,
        };
        assert_eq!(backwards.duration_ms(), 0);
        assert_eq!(backwards.intersect(a).duration_ms(), 0);
    }

    #[test]
    fn agreement_is_relative_to_the_larger_count_and_exact() {
        assert!(RULE.agree(0, 0));
        assert!(RULE.agree(100, 95));
        assert!(RULE.agree(95, 100));
        assert!(!RULE.agree(100, 94));
        assert!(!RULE.agree(0, 1));
        assert!(RULE.agree(u64::MAX, u64::MAX - u64::MAX / 20));
        let zero = Normalization {
            tolerance: Perbill::zero(),
            ..RULE
        };
        assert!(zero.agree(7, 7));
        assert!(!zero.agree(7, 8));
    }

    #[test]
    fn agreeing_sides_credit_the_smaller_count() {
        let verdict = RULE.normalize(&usage(100, 0, 10_000), &usage(96, 0, 10_000), EPOCH);
        assert_eq!(verdict, Verdict::Credit(96));
        let verdict = RULE.normalize(&usage(96, 0, 10_000), &usage(100, 0, 10_000), EPOCH);
        assert_eq!(verdict, Verdict::Credit(96));
    }

    #[test]
    fn disagreeing_sides_are_disputed() {
        let verdict = RULE.normalize(&usage(1_000, 0, 10_000), &usage(10, 0, 10_000), EPOCH);
        assert_eq!(verdict, Verdict::Disputed);
    }

    #[test]
    fn credit_is_capped_by_the_rate_over_the_common_interval_within_the_epoch() {
        // Both claim 1 MB; they agree on 2 s of overlap: 2 000 bytes at 1 000 B/s.
        let verdict = RULE.normalize(
            &usage(1_000_000, 0, 3_000),
            &usage(1_000_000, 1_000, 10_000),
            EPOCH,
        );
        assert_eq!(verdict, Verdict::Credit(2_000));
        // Clipped to the epoch: only 500 ms of the session fall in it.
        let verdict = RULE.normalize(
            &usage(1_000_000, 999_500, 2_000_000),
            &usage(1_000_000, 999_500, 2_000_000),
            EPOCH,
        );
        assert_eq!(verdict, Verdict::Credit(500));
        // No common time at all: nothing, but no dispute either.
        let verdict = RULE.normalize(&usage(10, 0, 1_000), &usage(10, 5_000, 6_000), EPOCH);
        assert_eq!(verdict, Verdict::Credit(0));
    }

    #[test]
    fn cap_saturates() {
        let rule = Normalization {
            max_bytes_per_second: u64::MAX,
            max_session_bytes: u64::MAX,
            ..RULE
        };
        let all = Interval {
            start_ms: 0,
            end_ms: u64::MAX,
        };
        assert_eq!(rule.cap(all), u64::MAX);
    }

    #[test]
    fn a_session_is_credited_at_most_its_per_epoch_cap_however_long_the_epoch() {
        // 20 000 s at 1 000 B/s would be 20 MB; the session cap is 10 MB.
        let long = Interval {
            start_ms: 0,
            end_ms: 20_000_000,
        };
        let verdict = RULE.normalize(
            &usage(u64::MAX / 2, 0, 20_000_000),
            &usage(u64::MAX / 2, 0, 20_000_000),
            long,
        );
        assert_eq!(verdict, Verdict::Credit(10_000_000));
    }

    #[test]
    fn the_rate_limited_pool_is_the_rate_per_gigabyte_rounded_down() {
        assert_eq!(rate_limited_pool(500, GIGABYTE), 500);
        assert_eq!(rate_limited_pool(500, 2 * GIGABYTE + 1), 1_000);
        assert_eq!(rate_limited_pool(500, GIGABYTE / 500 - 1), 0);
        assert_eq!(rate_limited_pool(0, u128::MAX), 0);
        assert_eq!(rate_limited_pool(u128::MAX, u128::MAX), u128::MAX);
    }

    #[test]
    fn quorum_is_two_thirds_rounded_up() {
        for (elected, needed) in [(1, 1), (2, 2), (3, 2), (4, 3), (5, 4), (6, 4), (16, 11)] {
            assert_eq!(quorum(elected), needed, "elected {elected}");
            assert!(meets_quorum(needed, elected));
            assert!(!meets_quorum(needed - 1, elected));
        }
        assert!(!meets_quorum(0, 0));
        assert_eq!(quorum(0), 1);
    }

    #[test]
    fn lower_median_takes_the_smaller_middle() {
        assert_eq!(lower_median([]), None);
        assert_eq!(lower_median([7]), Some(7));
        assert_eq!(lower_median([9, 1]), Some(1));
        assert_eq!(lower_median([5, 1, 9]), Some(5));
        assert_eq!(lower_median([4, 1, 9, 7]), Some(4));
        // Two inflating liars out of four cannot lift it above the honest value.
        assert_eq!(lower_median([10, 10, u64::MAX, u64::MAX]), Some(10));
    }

    #[test]
    fn relay_credit_needs_a_quorum() {
        assert_eq!(relay_credit(&[10], 3), 0);
        assert_eq!(relay_credit(&[10, 20], 3), 10);
        assert_eq!(relay_credit(&[10, 20, 30], 3), 20);
        assert_eq!(relay_credit(&[], 0), 0);
    }

    #[test]
    fn pro_rata_rounds_down_and_never_exceeds_the_pool() {
        assert_eq!(pro_rata(100, 1, 3), 33);
        assert_eq!(pro_rata(100, 2, 3), 66);
        assert_eq!(pro_rata(100, 5, 0), 0);
        assert_eq!(pro_rata(100, 7, 3), 100);
        assert_eq!(pro_rata(u128::MAX, u128::MAX, u128::MAX), u128::MAX);
        let shares: u128 = [1u128, 1, 1].iter().map(|c| pro_rata(100, *c, 3)).sum();
        assert_eq!(shares, 99);
    }

    #[test]
    fn messages_are_domain_separated_and_bound_to_chain_epoch_session_and_relay() {
        let u = usage(1, 2, 3);
        let base = relay_report_message(&[0; 32], 1, &[2; 32], &[3; 32], &u);
        assert!(base.starts_with(&RELAY_REPORT_CONTEXT.encode()));
        assert_ne!(
            base,
            client_report_message(&[0; 32], 1, &[2; 32], &[3; 32], &u)
        );
        for other in [
            relay_report_message(&[1; 32], 1, &[2; 32], &[3; 32], &u),
            relay_report_message(&[0; 32], 2, &[2; 32], &[3; 32], &u),
            relay_report_message(&[0; 32], 1, &[9; 32], &[3; 32], &u),
            relay_report_message(&[0; 32], 1, &[2; 32], &[9; 32], &u),
            relay_report_message(&[0; 32], 1, &[2; 32], &[3; 32], &usage(2, 2, 3)),
        ] {
            assert_ne!(base, other);
        }
    }

    /// A stand-in verifier: a "signature" is the key followed by the first 32 bytes of the
    /// message's BLAKE2-256.
    fn fake_sign(key: &[u8; 32], message: &[u8]) -> IdentitySignature {
        let mut signature = [0; 64];
        signature[..32].copy_from_slice(key);
        signature[32..].copy_from_slice(&sp_crypto_hashing::blake2_256(message));
        signature
    }

    fn fake_verify(signature: &IdentitySignature, message: &[u8], key: &[u8; 32]) -> bool {
        *signature == fake_sign(key, message)
    }

    fn record(genesis: &[u8; 32], epoch: EpochIndex) -> UsageRecord {
        let client_key = [7; 32];
        let session = session_id_of(&client_key);
        let relay = [3; 32];
        let relay_usage = usage(100, 0, 10);
        let client_usage = usage(99, 0, 10);
        UsageRecord {
            session,
            relay,
            relay_report: SignedUsage {
                usage: relay_usage,
                signature: fake_sign(
                    &relay,
                    &relay_report_message(genesis, epoch, &session, &relay, &relay_usage),
                ),
            },
            client_key,
            client_report: SignedUsage {
                usage: client_usage,
                signature: fake_sign(
                    &client_key,
                    &client_report_message(genesis, epoch, &session, &relay, &client_usage),
                ),
            },
        }
    }

    #[test]
    fn check_verifies_binding_and_both_signatures() {
        let good = record(&[0; 32], 4);
        let checked = good
            .check(&[0; 32], 4, fake_verify)
            .expect("a valid record");
        assert_eq!(checked.relay_usage().bytes, 100);
        assert_eq!(checked.client_usage().bytes, 99);
        assert_eq!(checked.relay(), &[3; 32]);
        assert_eq!(checked.session(), &good.session);

        let mut unbound = good.clone();
        unbound.session = [1; 32];
        assert_eq!(
            unbound.check(&[0; 32], 4, fake_verify),
            Err(RecordError::SessionKeyMismatch)
        );
        let mut inflated = good.clone();
        inflated.relay_report.usage.bytes = 1_000;
        assert_eq!(
            inflated.check(&[0; 32], 4, fake_verify),
            Err(RecordError::BadRelaySignature)
        );
        let mut deflated = good.clone();
        deflated.client_report.usage.bytes = 1;
        assert_eq!(
            deflated.check(&[0; 32], 4, fake_verify),
            Err(RecordError::BadClientSignature)
        );
        // Another epoch or another chain: the relay's signature fails first.
        assert_eq!(
            good.check(&[0; 32], 5, fake_verify),
            Err(RecordError::BadRelaySignature)
        );
        assert_eq!(
            good.check(&[1; 32], 4, fake_verify),
            Err(RecordError::BadRelaySignature)
        );
    }
}
