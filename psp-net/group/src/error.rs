//! The crate's one error type. Every refusal leaves the group state unchanged; the host logs
//! the error (it names what was wrong) and drops the input.

use crate::ids::{GroupId, KeyEpoch, MemberId, ProposalId};

/// Why an input, a call or a packet was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    // --- wire
    /// A field ended early.
    #[error("malformed packet: {what}: {source}")]
    Truncated {
        /// The field being read.
        what: &'static str,
        /// Bytes needed and left.
        source: psp_onion::bytes::BytesError,
    },
    /// Bytes were left after the last field: packets are canonical, nothing may follow.
    #[error("malformed packet: {len} bytes after the end of a {what}")]
    TrailingBytes {
        /// The message or field that should have ended.
        what: &'static str,
        /// How many bytes followed it.
        len: usize,
    },
    /// The packet is longer than [`crate::wire::MAX_PACKET_LEN`], or a length field exceeds
    /// its bound.
    #[error("oversized {what}: {len} exceeds the limit {max}")]
    TooLong {
        /// What was too long.
        what: &'static str,
        /// Its length (bytes or entries).
        len: usize,
        /// The bound.
        max: usize,
    },
    /// The version byte is not one this crate speaks.
    #[error("unsupported packet version {found} (this node speaks {expected})")]
    Version {
        /// The version received.
        found: u8,
        /// The version spoken here.
        expected: u8,
    },
    /// A tag byte (message kind, flag, proposal action) has no meaning.
    #[error("malformed packet: {what} {value} is not defined")]
    BadTag {
        /// The field.
        what: &'static str,
        /// The value received.
        value: u8,
    },
    /// The sr25519 signature does not verify against the sender's key.
    #[error("bad signature on a {what} from {sender}")]
    BadSignature {
        /// The message kind.
        what: &'static str,
        /// The claimed sender.
        sender: MemberId,
    },
    /// The packet belongs to another group.
    #[error("packet for group {found:?}, this is group {expected:?}")]
    WrongGroup {
        /// Our group.
        expected: GroupId,
        /// The group named in the packet.
        found: GroupId,
    },
    /// A seal did not open: wrong key, not for us, or changed in transit.
    #[error("{what} does not decrypt (not sealed to this member, or tampered)")]
    DoesNotOpen {
        /// What was sealed.
        what: &'static str,
    },
    /// A peer's X25519 key is a low-order point: nothing can be sealed to it.
    #[error("the agreement key of {member} is unusable (low-order point)")]
    BadAgreementKey {
        /// Whose key.
        member: MemberId,
    },

    // --- membership
    /// The sender is not a member of the group (or no longer).
    #[error("{who} is not a member of the group")]
    NotAMember {
        /// The sender or subject.
        who: MemberId,
    },
    /// The newcomer is already a member.
    #[error("{who} is already a member")]
    AlreadyMember {
        /// The newcomer.
        who: MemberId,
    },
    /// Admitting one more member would exceed the member limit.
    #[error("the group is full: {members} members, limit {limit}")]
    GroupFull {
        /// Members now.
        members: usize,
        /// The limit of the rules.
        limit: usize,
    },
    /// A signed time is too far from our clock.
    #[error("{what} time {time} is outside the accepted window around now ({now})")]
    StaleTime {
        /// The message kind.
        what: &'static str,
        /// The signed time.
        time: u64,
        /// Our clock.
        now: u64,
    },
    /// A heartbeat, leave or join is not newer than the last one accepted from its sender.
    #[error("replayed {what} from {sender}")]
    Replayed {
        /// The message kind.
        what: &'static str,
        /// Its sender.
        sender: MemberId,
    },
    /// This member left or was removed; the group state is read-only.
    #[error("this member is no longer in the group")]
    Inactive,
    /// The rules are inconsistent (zero periods, heartbeat not shorter than the timeout, limit 0).
    #[error("invalid rules: {0}")]
    BadRules(&'static str),

    // --- votes
    /// Too many proposals are open; new ones are refused until some close.
    #[error("too many open proposals (limit {max})")]
    TooManyProposals {
        /// The bound.
        max: usize,
    },
    /// A proposal with this id, or one about the same member, is already open or decided.
    #[error("duplicate proposal {id:?}")]
    DuplicateProposal {
        /// The proposal.
        id: ProposalId,
    },
    /// A proposal deadline is in the past or further ahead than the rules allow.
    #[error("proposal deadline {deadline} is outside (now {now}, now + vote period + skew]")]
    BadDeadline {
        /// The deadline.
        deadline: u64,
        /// Our clock.
        now: u64,
    },
    /// No open proposal has this id (never seen, or decided and forgotten).
    #[error("unknown proposal {id:?}")]
    UnknownProposal {
        /// The proposal.
        id: ProposalId,
    },
    /// The proposal's tally is closed.
    #[error("proposal {id:?} is already decided")]
    ProposalClosed {
        /// The proposal.
        id: ProposalId,
    },
    /// The voter was not a member when the proposal opened, or is its subject.
    #[error("{voter} may not vote on proposal {id:?}")]
    NotEligible {
        /// The voter.
        voter: MemberId,
        /// The proposal.
        id: ProposalId,
    },
    /// The voter already cast a ballot on this proposal.
    #[error("{voter} already voted on proposal {id:?}")]
    DuplicateBallot {
        /// The voter.
        voter: MemberId,
        /// The proposal.
        id: ProposalId,
    },
    /// The ballot was cast after the proposal's deadline.
    #[error("late ballot on {id:?}: cast at {cast_at}, deadline {deadline}")]
    LateBallot {
        /// The proposal.
        id: ProposalId,
        /// When it was cast.
        cast_at: u64,
        /// The deadline.
        deadline: u64,
    },
    /// A tally's counts or outcome do not follow from its ballots.
    #[error("tally does not match its ballots, which give {accepts} accept / {refuses} refuse")]
    TallyMismatch {
        /// Accepting ballots counted from the signed ballots.
        accepts: usize,
        /// Refusing ballots counted from the signed ballots.
        refuses: usize,
    },

    // --- rollouts
    /// The rollout's epoch is not the next one (or the current one, when settling).
    #[error("rollout for epoch {found:?}, this member is at {current:?}")]
    WrongEpoch {
        /// The rollout's epoch.
        found: KeyEpoch,
        /// Our epoch.
        current: KeyEpoch,
    },
    /// The rollout's sender is not the leader its member list elects.
    #[error("rollout from {sender}, but the leader for that epoch is {leader}")]
    NotLeader {
        /// Who sent it.
        sender: MemberId,
        /// Who should have.
        leader: MemberId,
    },
    /// The rollout removes a member we have no reason to remove (alive, not expelled, not left).
    #[error("rollout removes {member}, who is still a member in good standing here")]
    UnjustifiedRemoval {
        /// The member.
        member: MemberId,
    },
    /// The rollout's lists are inconsistent (duplicates, a removed member also keyed, a
    /// member of ours neither keyed nor removed, an unknown member).
    #[error("inconsistent rollout: {0}")]
    BadRollout(&'static str),
    /// A rollout for the current epoch that loses the tie-break against the one applied.
    #[error("rollout for {epoch:?} from {sender} loses to the one already applied")]
    Superseded {
        /// The epoch.
        epoch: KeyEpoch,
        /// Its leader.
        sender: MemberId,
    },

    // --- welcome and messages
    /// A welcome from someone other than the contact we joined through, or for someone else.
    #[error("unexpected welcome from {sender}")]
    UnexpectedWelcome {
        /// Who sent it.
        sender: MemberId,
    },
    /// A newcomer got something other than a well-formed welcome for it.
    #[error("bad welcome: {0}")]
    BadWelcome(&'static str),
    /// A group message under a key epoch we do not hold (we missed a rollout, or it is old).
    #[error("message under key epoch {found:?}, this member holds {current:?}")]
    UnknownEpoch {
        /// The message's epoch.
        found: KeyEpoch,
        /// Ours.
        current: KeyEpoch,
    },
    /// The same group message was already delivered.
    #[error("duplicate group message")]
    DuplicateMessage,

    // --- snapshots
    /// A snapshot ended before a field was complete.
    #[error("malformed group snapshot: {what}: {source}")]
    SnapshotTruncated {
        /// The field being read.
        what: &'static str,
        /// Bytes needed and left.
        source: psp_onion::bytes::BytesError,
    },
    /// The bytes are not a group snapshot, or a field breaks an invariant of the state.
    #[error("invalid group snapshot: {0}")]
    BadSnapshot(&'static str),
    /// A snapshot version this build cannot read.
    #[error("unsupported group snapshot version {found} (this build reads {expected})")]
    SnapshotVersion {
        /// The version in the snapshot.
        found: u8,
        /// The version read here.
        expected: u8,
    },
    /// The keys given to restore a snapshot are not those of the member that took it.
    #[error("the snapshot is member {snapshot}'s, but the keys given are {keys}'s")]
    SnapshotWrongKeys {
        /// The member the snapshot belongs to.
        snapshot: MemberId,
        /// The member of the keys given.
        keys: MemberId,
    },
}

/// Maps a byte-layer error to [`Error::Truncated`] naming the field.
pub(crate) trait Ctx<T> {
    fn ctx(self, what: &'static str) -> Result<T, Error>;
}

impl<T> Ctx<T> for Result<T, psp_onion::bytes::BytesError> {
    fn ctx(self, what: &'static str) -> Result<T, Error> {
        self.map_err(|source| Error::Truncated { what, source })
    }
}

/// Maps a byte-layer error to [`Error::SnapshotTruncated`] naming the field.
pub(crate) trait SnapshotCtx<T> {
    fn snap(self, what: &'static str) -> Result<T, Error>;
}

impl<T> SnapshotCtx<T> for Result<T, psp_onion::bytes::BytesError> {
    fn snap(self, what: &'static str) -> Result<T, Error> {
        self.map_err(|source| Error::SnapshotTruncated { what, source })
    }
}
