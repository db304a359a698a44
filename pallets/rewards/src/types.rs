//! Storage types of the rewards pallet.

use crate::{BalanceOf, Config};
use frame_support::{pallet_prelude::*, CloneNoBound, DebugNoBound, EqNoBound, PartialEqNoBound};
use psp_primitives::{rewards::Interval, staking::EpochIndex, IdentityKey};

/// The longest storage key a pruning cursor holds: the pallet and map prefixes (32 bytes), a
/// `Twox64Concat` epoch (8 + 4) and a `Blake2_128Concat` 32-byte key (16 + 32) make 92.
pub const MAX_CURSOR_LEN: u32 = 128;

/// An oracle of an epoch, as the pallet recorded it when the epoch started.
#[derive(Clone, PartialEq, Eq, Debug, Encode, Decode, MaxEncodedLen, TypeInfo)]
pub struct Oracle<AccountId> {
    /// Its node identity key.
    pub node: IdentityKey,
    /// The account that submits its reports.
    pub owner: AccountId,
    /// Sessions it has reported for the epoch so far (bounded by `MaxSessionsPerOracle`).
    pub sessions: u32,
}

/// What the pallet keeps of an epoch while its reports come in: the oracles elected for it
/// (the staking pallet forgets them once the epoch is over) and its time span.
#[derive(
    Encode, Decode, MaxEncodedLen, TypeInfo, CloneNoBound, PartialEqNoBound, EqNoBound, DebugNoBound,
)]
#[scale_info(skip_type_params(T))]
#[codec(mel_bound())]
pub struct EpochSnapshot<T: Config> {
    /// The elected oracles, one per owner account; an oracle's position is its index in
    /// [`SessionMark::oracles`] and [`RelayTally::reports`].
    pub oracles: BoundedVec<Oracle<T::AccountId>, T::MaxOracles>,
    /// The chain time the epoch started at, unix milliseconds.
    pub started_at_ms: u64,
    /// The chain time the next epoch started at, once it has.
    pub ended_at_ms: Option<u64>,
}

impl<T: Config> EpochSnapshot<T> {
    /// The epoch's span: sessions are credited for their time within it only.
    pub fn span(&self) -> Interval {
        Interval {
            start_ms: self.started_at_ms,
            end_ms: self.ended_at_ms.unwrap_or(u64::MAX),
        }
    }

    /// How many oracles were elected.
    pub fn elected(&self) -> u32 {
        self.oracles.len() as u32
    }
}

/// Which oracles reported a session in an epoch.
#[derive(Clone, PartialEq, Eq, Debug, Encode, Decode, MaxEncodedLen, TypeInfo)]
pub struct SessionMark {
    /// The relay the session was reported for (a session has one relay).
    pub relay: IdentityKey,
    /// One bit per oracle, by its position in the epoch's snapshot (at most 64 oracles).
    pub oracles: u64,
    /// Whether a report of it was disputed (counted against the relay once).
    pub disputed: bool,
}

/// What the oracles credited a relay in an epoch.
#[derive(
    Encode, Decode, MaxEncodedLen, TypeInfo, CloneNoBound, PartialEqNoBound, EqNoBound, DebugNoBound,
)]
#[scale_info(skip_type_params(T))]
#[codec(mel_bound())]
pub struct RelayTally<T: Config> {
    /// The relay's owner when it was first reported: who may claim.
    pub owner: T::AccountId,
    /// (oracle position, bytes it credited the relay over all its sessions), one per
    /// reporting oracle.
    pub reports: BoundedVec<(u8, u64), T::MaxOracles>,
    /// The lower median of the reports with a quorum, else zero.
    pub credit: u64,
}

/// A relay's credit in an epoch, claimable once the epoch is closed.
#[derive(
    Encode, Decode, MaxEncodedLen, TypeInfo, CloneNoBound, PartialEqNoBound, EqNoBound, DebugNoBound,
)]
#[scale_info(skip_type_params(T))]
#[codec(mel_bound())]
pub struct Accrual<T: Config> {
    /// Who may claim it.
    pub owner: T::AccountId,
    /// Credited bytes (never zero).
    pub credit: u64,
}

/// Running totals of an epoch while its reports come in.
#[derive(Clone, Default, PartialEq, Eq, Debug, Encode, Decode, MaxEncodedLen, TypeInfo)]
pub struct EpochTotals {
    /// Relays reported (bounded by `MaxRelaysPerEpoch`).
    pub relays: u32,
    /// Relays with a credit.
    pub credited: u32,
    /// Sum of the relays' credits.
    pub credit: u128,
}

/// A closed epoch's pool and what has been paid from it.
#[derive(
    Encode, Decode, MaxEncodedLen, TypeInfo, CloneNoBound, PartialEqNoBound, EqNoBound, DebugNoBound,
)]
#[scale_info(skip_type_params(T))]
#[codec(mel_bound())]
pub struct Payout<T: Config> {
    /// What the epoch's credited relays share.
    pub pool: BalanceOf<T>,
    /// Paid so far; never more than `pool`.
    pub paid: BalanceOf<T>,
    /// The sum of the relays' credits, the denominator of every share.
    pub total_credit: u128,
    /// Relays reported in the epoch.
    pub relays: u32,
    /// Relays with a credit.
    pub credited: u32,
    /// Credited relays that have not claimed yet; the payout goes when it reaches zero.
    pub unclaimed: u32,
}

/// Where the pallet is in the sequence of epochs.
#[derive(Clone, Default, PartialEq, Eq, Debug, Encode, Decode, MaxEncodedLen, TypeInfo)]
pub struct EpochClock {
    /// The current epoch, as last seen at a block's start.
    pub current: Option<EpochIndex>,
    /// The oldest epoch not closed yet. Epoch `e` closes once epoch `e + 2` has started.
    pub next_to_close: EpochIndex,
}

/// Which of a closed epoch's maps pruning is clearing.
#[derive(Clone, Copy, Default, PartialEq, Eq, Debug, Encode, Decode, MaxEncodedLen, TypeInfo)]
pub enum PruneStage {
    /// The session marks.
    #[default]
    Sessions,
    /// The relay tallies (then the snapshot).
    Tallies,
}

/// Where pruning of closed epochs stands.
#[derive(Clone, Default, PartialEq, Eq, Debug, Encode, Decode, MaxEncodedLen, TypeInfo)]
pub struct PruneState {
    /// The oldest epoch whose reports are still stored.
    pub epoch: EpochIndex,
    /// The map being cleared.
    pub stage: PruneStage,
    /// Where the last removal stopped.
    pub cursor: Option<BoundedVec<u8, ConstU32<MAX_CURSOR_LEN>>>,
}
