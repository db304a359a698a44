//! The names and settings of a group: ids as newtypes, the rules, and the crate's bounds.

use core::fmt;

/// Most members a group may ever have, whatever its [`Rules::member_limit`]. Groups here are
/// small (see the README): 256 members keep a rollout (256 × 112 bytes ≈ 28 KiB) and a welcome
/// (256 × 64 bytes ≈ 16 KiB) well inside [`crate::wire::MAX_PACKET_LEN`].
pub const MAX_MEMBERS: usize = 256;
/// Most proposals open at once: a bound on what a flood of JOINs can make members track.
pub const MAX_OPEN_PROPOSALS: usize = 16;
/// Decided tallies kept for inspection, newest first out last.
pub const MAX_DECIDED_TALLIES: usize = 32;
/// Clock skew tolerated between members, in seconds: how far a signed time may be ahead of
/// our clock, how stale a JOIN may be, and how long after a ballot deadline a ballot cast
/// before it is still accepted.
pub const CLOCK_SKEW_SECS: u64 = 30;

/// A group's id: a random 64-bit number (collisions are negligible at this scale, as in the
/// seed). It also names the group's identity on chain.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub struct GroupId(pub u64);

impl GroupId {
    /// Draws a fresh id.
    pub fn random(rng: &mut dyn rand_core::CryptoRngCore) -> Self {
        Self(rng.next_u64())
    }
}

/// A member: its sr25519 identity key (the key registered on chain).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct MemberId(pub [u8; 32]);

impl fmt::Debug for MemberId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MemberId(")?;
        for b in &self.0[..4] {
            write!(f, "{b:02x}")?;
        }
        write!(f, "..)")
    }
}

impl fmt::Display for MemberId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in &self.0[..8] {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

/// A member's X25519 key-agreement public key: what rollout keys and welcomes are sealed to.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct AgreementKey(pub [u8; 32]);

impl fmt::Debug for AgreementKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "AgreementKey({:02x?}..)", &self.0[..4])
    }
}

/// A proposal's id, drawn at random by its proposer.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub struct ProposalId(pub u64);

/// The number of the group key: 0 at creation, one more at each rollout.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub struct KeyEpoch(pub u64);

impl KeyEpoch {
    /// The epoch after this one; `None` at `u64::MAX` (never reached in practice).
    pub fn next(self) -> Option<Self> {
        self.0.checked_add(1).map(Self)
    }
}

/// A group's rules, fixed at creation and handed to newcomers in the welcome.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Rules {
    /// Most members; `None` means [`MAX_MEMBERS`].
    pub member_limit: Option<u16>,
    /// Period of a member's heartbeat, seconds.
    pub heartbeat_secs: u32,
    /// Silence after which a member is dropped by a rollout, seconds (5 minutes in the seed).
    pub timeout_secs: u32,
    /// How long a proposal stays open for ballots, seconds.
    pub vote_secs: u32,
}

impl Default for Rules {
    fn default() -> Self {
        Self {
            member_limit: None,
            heartbeat_secs: 60,
            timeout_secs: 300,
            vote_secs: 120,
        }
    }
}

impl Rules {
    /// The effective member limit.
    pub fn limit(&self) -> usize {
        self.member_limit
            .map_or(MAX_MEMBERS, |l| usize::from(l).min(MAX_MEMBERS))
    }

    /// Whether the rules make sense: a heartbeat period shorter than the timeout, and nonzero
    /// periods.
    pub fn is_valid(&self) -> bool {
        self.heartbeat_secs > 0
            && self.vote_secs > 0
            && self.timeout_secs > self.heartbeat_secs
            && self.member_limit != Some(0)
    }
}
