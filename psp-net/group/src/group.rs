//! The membership state machine: one [`Group`] per member, driven by packets and time.
//!
//! ```text
//!  JOIN ──▶ contact opens Admit proposal ──▶ ballots ──▶ tally ──▶ accepted: all add the
//!                                                          │      newcomer, contact sends WELCOME
//!  propose_expel ──▶ Expel proposal ──▶ ballots ──▶ tally ─┴─▶ accepted: member pending removal
//!  LEAVE received ─────────────────────────────────────────────▶ member pending removal
//!  silent > timeout ───────────────────────────────────────────▶ member pending removal
//!  pending removals ──▶ leader of the kept members seals a new K_c to each ──▶ ROLLOUT:
//!                       every member checks leader, lists and reasons, opens its copy,
//!                       erases the old K_c, and moves to the next key epoch
//! ```
//!
//! The host calls [`Group::handle_input`] with every packet for this group, calls
//! [`Group::handle_timeout`] when [`Group::poll_timeout`] says, and drains
//! [`Group::poll_transmit`] (packets and their recipients) and [`Group::poll_event`]. An
//! input that is refused returns an [`Error`] and leaves the state as it was; a rollout
//! refused only because this member does not yet see a removal as justified (its view
//! lags by a heartbeat or a ballot) is kept and retried as time passes.
//!
//! [`Group::snapshot`] and [`Group::restore`] keep the state across restarts ([`snapshot`]).
//!
//! Only the last key epoch is kept: a message under an older key does not open, and a member
//! that missed a rollout cannot open anything newer (it must be admitted again).

use std::collections::{BTreeMap, HashSet, VecDeque};

use psp_onion::crypto::Sr25519Keypair;

use crate::crypto::{self, AgreementSecret, GroupKey};
use crate::error::Error;
use crate::ids::{AgreementKey, GroupId, KeyEpoch, MemberId, ProposalId, Rules, CLOCK_SKEW_SECS};
use crate::message::{self, Delivered};
use crate::rollout::{self, Rank};
use crate::vote::{CastBallot, Poll, Tally};
use crate::wire::{self, Action, Ballot, Body, GroupMessage, Heartbeat, Leave, Packet, Unchecked};

mod join;
mod rollouts;
pub mod snapshot;
mod votes;
pub use join::Joining;

/// Most packets or events queued for the host; past it the oldest is dropped (the host is
/// expected to drain both queues after every call).
pub const MAX_QUEUE: usize = 1024;
/// Group messages remembered to refuse duplicates.
pub const MAX_SEEN_MESSAGES: usize = 1024;
/// Rollouts kept for a retry because a removal was not yet justified here.
pub const MAX_DEFERRED_ROLLOUTS: usize = 4;

/// A packet for the host to send, and to whom.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Transmit {
    /// The recipients (never this member).
    pub to: Vec<MemberId>,
    /// The packet.
    pub bytes: Vec<u8>,
}

/// Why a member is about to be dropped by a rollout.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Removal {
    /// It sent LEAVE.
    Left,
    /// A vote expelled it.
    Expelled,
    /// It was silent past the timeout.
    TimedOut,
}

/// What happened, for the host and the user.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// A proposal opened; members vote with [`Group::vote`].
    ProposalOpened {
        /// The proposal.
        id: ProposalId,
        /// Who proposed.
        proposer: MemberId,
        /// What it asks.
        action: Action,
        /// Ballots cast after it do not count.
        deadline: u64,
    },
    /// A vote closed.
    Decided(Box<Tally>),
    /// A newcomer was admitted.
    MemberAdded {
        /// The newcomer.
        member: MemberId,
    },
    /// An accepted admission could not be applied: the group filled up meanwhile.
    AdmissionDropped {
        /// The newcomer.
        member: MemberId,
        /// Members now.
        members: usize,
        /// The limit.
        limit: usize,
    },
    /// A member will be dropped by the next rollout.
    RemovalPending {
        /// The member.
        member: MemberId,
        /// Why.
        reason: Removal,
    },
    /// A rollout was applied: a new key epoch.
    RolledOut {
        /// The new epoch.
        epoch: KeyEpoch,
        /// Its leader.
        leader: MemberId,
        /// Members dropped.
        removed: Vec<MemberId>,
    },
    /// This member was dropped by a rollout (expelled); the group state is now read-only.
    Removed {
        /// The epoch that dropped it.
        epoch: KeyEpoch,
    },
    /// A group message.
    Message(Delivered),
}

/// What a member knows about another.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Member {
    /// Its X25519 key: rollout keys are sealed to it.
    pub agreement_key: AgreementKey,
    /// When we last heard from it (our clock).
    pub last_seen: u64,
    /// The newest signed time it sent (join, heartbeat, leave): older ones are replays.
    pub last_signed_time: u64,
    /// The key epoch its last heartbeat named.
    pub key_epoch: KeyEpoch,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Status {
    Active,
    Left,
    Removed,
}

/// The epoch before the applied rollout, kept so a competing rollout to the same epoch can be
/// checked against the view both were built on.
#[derive(Clone, Debug)]
struct Settle {
    rank: Rank,
    prev_members: BTreeMap<MemberId, Member>,
    prev_pending: BTreeMap<MemberId, Removal>,
    prev_transcript: [u8; 32],
}

/// A rollout refused for an unjustified removal, retried as our view catches up.
#[derive(Clone, Debug)]
struct Deferred {
    bytes: Vec<u8>,
    received_at: u64,
}

/// One member's state of one group.
pub struct Group {
    id: GroupId,
    rules: Rules,
    keys: Sr25519Keypair,
    me: MemberId,
    agreement: AgreementSecret,
    status: Status,
    epoch: KeyEpoch,
    key: GroupKey,
    transcript: [u8; 32],
    /// Bounded by the member limit (admissions check it).
    members: BTreeMap<MemberId, Member>,
    /// A subset of `members`.
    pending: BTreeMap<MemberId, Removal>,
    /// At most MAX_OPEN_PROPOSALS.
    polls: BTreeMap<ProposalId, Poll>,
    /// At most MAX_DECIDED_TALLIES, oldest first.
    decided: VecDeque<Tally>,
    settle: Option<Settle>,
    /// At most MAX_DEFERRED_ROLLOUTS.
    deferred: VecDeque<Deferred>,
    next_heartbeat: u64,
    /// At most MAX_SEEN_MESSAGES, with `seen_order` giving the eviction order.
    seen: HashSet<[u8; 32]>,
    seen_order: VecDeque<[u8; 32]>,
    transmits: VecDeque<Transmit>,
    events: VecDeque<Event>,
}

impl core::fmt::Debug for Group {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Group")
            .field("id", &self.id)
            .field("me", &self.me)
            .field("status", &self.status)
            .field("epoch", &self.epoch)
            .field("members", &self.members.len())
            .field("pending", &self.pending)
            .finish_non_exhaustive()
    }
}

impl Group {
    /// Creates a group with this member as its only member, at key epoch 0.
    pub fn create(
        id: GroupId,
        rules: Rules,
        keys: Sr25519Keypair,
        agreement: AgreementSecret,
        now: u64,
        rng: &mut dyn rand_core::CryptoRngCore,
    ) -> Result<Self, Error> {
        check_rules(&rules)?;
        let me = MemberId(keys.public());
        let members = BTreeMap::from([(
            me,
            Member {
                agreement_key: agreement.public(),
                last_seen: now,
                last_signed_time: now,
                key_epoch: KeyEpoch(0),
            },
        )]);
        let transcript = rollout::genesis_transcript(id, &me);
        Ok(Self::from_parts(
            id,
            rules,
            keys,
            agreement,
            KeyEpoch(0),
            GroupKey::random(rng),
            transcript,
            members,
            now,
        ))
    }

    #[allow(clippy::too_many_arguments)]
    fn from_parts(
        id: GroupId,
        rules: Rules,
        keys: Sr25519Keypair,
        agreement: AgreementSecret,
        epoch: KeyEpoch,
        key: GroupKey,
        transcript: [u8; 32],
        members: BTreeMap<MemberId, Member>,
        now: u64,
    ) -> Self {
        Self {
            id,
            rules,
            me: MemberId(keys.public()),
            keys,
            agreement,
            status: Status::Active,
            epoch,
            key,
            transcript,
            members,
            pending: BTreeMap::new(),
            polls: BTreeMap::new(),
            decided: VecDeque::new(),
            settle: None,
            deferred: VecDeque::new(),
            next_heartbeat: now.saturating_add(u64::from(rules.heartbeat_secs)),
            seen: HashSet::new(),
            seen_order: VecDeque::new(),
            transmits: VecDeque::new(),
            events: VecDeque::new(),
        }
    }

    // --- reading

    /// The group's id.
    pub fn id(&self) -> GroupId {
        self.id
    }
    /// The group's rules.
    pub fn rules(&self) -> &Rules {
        &self.rules
    }
    /// This member.
    pub fn me(&self) -> MemberId {
        self.me
    }
    /// Whether this member is still in the group (it has not left or been removed).
    pub fn is_active(&self) -> bool {
        self.status == Status::Active
    }
    /// The current key epoch.
    pub fn epoch(&self) -> KeyEpoch {
        self.epoch
    }
    /// The fingerprint of the current group key (compare keys without showing them).
    pub fn key_fingerprint(&self) -> [u8; 32] {
        self.key.fingerprint()
    }
    /// The member table, this member included.
    pub fn members(&self) -> &BTreeMap<MemberId, Member> {
        &self.members
    }
    /// Members a rollout is due to drop, and why.
    pub fn pending_removals(&self) -> &BTreeMap<MemberId, Removal> {
        &self.pending
    }
    /// The tally of a closed vote, if still remembered.
    pub fn tally(&self, id: ProposalId) -> Option<&Tally> {
        self.decided.iter().find(|t| t.proposal.id == id)
    }
    /// The provisional tally of an open vote.
    pub fn open_tally(&self, id: ProposalId) -> Option<Tally> {
        self.polls.get(&id).map(|p| p.tally(self.id))
    }
    /// The ids of the open votes.
    pub fn open_proposals(&self) -> impl Iterator<Item = ProposalId> + '_ {
        self.polls.keys().copied()
    }

    // --- driving (sans IO)

    /// The next packet to send.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmits.pop_front()
    }

    /// The next event.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// When [`Group::handle_timeout`] should run next (unix seconds); `None` once inactive.
    pub fn poll_timeout(&self) -> Option<u64> {
        if !self.is_active() {
            return None;
        }
        let timeout = u64::from(self.rules.timeout_secs);
        let silences = self
            .members
            .iter()
            .filter(|(id, _)| **id != self.me && !self.pending.contains_key(id))
            .map(|(_, m)| m.last_seen.saturating_add(timeout).saturating_add(1));
        let polls = self.polls.values().map(Poll::closes_at);
        let deferred = self
            .deferred
            .iter()
            .map(|d| d.received_at.saturating_add(timeout));
        silences
            .chain(polls)
            .chain(deferred)
            .chain([self.next_heartbeat])
            .min()
    }

    /// Advances time: heartbeats, timeouts, closing votes, leading a due rollout.
    pub fn handle_timeout(&mut self, now: u64, rng: &mut dyn rand_core::CryptoRngCore) {
        if self.is_active() {
            self.step(now, rng);
        }
    }

    /// Handles one packet for this group. On error nothing changed; the error says why.
    pub fn handle_input(
        &mut self,
        now: u64,
        bytes: &[u8],
        rng: &mut dyn rand_core::CryptoRngCore,
    ) -> Result<(), Error> {
        self.active()?;
        self.step(now, rng);
        let result = match wire::decode(bytes)? {
            Packet::Signed(unchecked) => self.handle_signed(now, unchecked, bytes, rng),
            Packet::Message(m) => self.handle_message(&m),
        };
        if let Err(Error::UnjustifiedRemoval { .. }) = result {
            self.defer(bytes, now);
        }
        if self.is_active() {
            self.step(now, rng);
        }
        result
    }

    // --- a member's own actions

    /// Proposes to expel `member`; returns the proposal's id.
    pub fn propose_expel(
        &mut self,
        now: u64,
        member: MemberId,
        rng: &mut dyn rand_core::CryptoRngCore,
    ) -> Result<ProposalId, Error> {
        self.active()?;
        if !self.members.contains_key(&member) {
            return Err(Error::NotAMember { who: member });
        }
        self.open_proposal(now, Action::Expel { member }, rng)
    }

    /// Casts this member's ballot on an open proposal.
    pub fn vote(
        &mut self,
        now: u64,
        id: ProposalId,
        accept: bool,
        rng: &mut dyn rand_core::CryptoRngCore,
    ) -> Result<(), Error> {
        self.active()?;
        self.step(now, rng);
        let ballot = Ballot {
            proposal: id,
            accept,
            cast_at: now,
        };
        let (bytes, signature) = wire::sign(self.id, &self.keys, &Body::Ballot(ballot));
        let voter = self.me;
        let poll = self.poll_mut(id)?;
        poll.add(
            CastBallot {
                voter,
                ballot,
                signature,
            },
            now,
        )?;
        self.broadcast(bytes);
        self.step(now, rng);
        Ok(())
    }

    /// Seals `content` under the current group key for every member.
    pub fn send(
        &mut self,
        now: u64,
        content: &[u8],
        rng: &mut dyn rand_core::CryptoRngCore,
    ) -> Result<(), Error> {
        self.active()?;
        let m = message::seal(
            self.id, self.epoch, &self.key, &self.keys, now, content, rng,
        )?;
        self.broadcast(m.encode());
        Ok(())
    }

    /// Seals `content` under the current group key for one member only: the others never
    /// receive it, and relays see only the channel's cells. The recipient opens it like any
    /// group message (the sender's signature is inside).
    pub fn send_to(
        &mut self,
        now: u64,
        member: MemberId,
        content: &[u8],
        rng: &mut dyn rand_core::CryptoRngCore,
    ) -> Result<(), Error> {
        self.active()?;
        if member == self.me || !self.members.contains_key(&member) {
            return Err(Error::NotAMember { who: member });
        }
        let m = message::seal(
            self.id, self.epoch, &self.key, &self.keys, now, content, rng,
        )?;
        self.push_transmit(vec![member], m.encode());
        Ok(())
    }

    /// Leaves the group: tells the members (they drop this member with a rollout) and erases
    /// the group key here.
    pub fn leave(&mut self, now: u64) -> Result<(), Error> {
        self.active()?;
        let sent_at = self.next_signed_time(now);
        let (bytes, _) = wire::sign(self.id, &self.keys, &Body::Leave(Leave { sent_at }));
        self.broadcast(bytes);
        self.deactivate(Status::Left);
        Ok(())
    }

    // --- internals

    fn active(&self) -> Result<(), Error> {
        if self.is_active() {
            Ok(())
        } else {
            Err(Error::Inactive)
        }
    }

    fn deactivate(&mut self, status: Status) {
        self.status = status;
        // Dropping the old key zeroizes it.
        self.key = GroupKey::from_bytes([0; 32]);
        self.polls.clear();
        self.deferred.clear();
        self.settle = None;
    }

    fn push_event(&mut self, event: Event) {
        if self.events.len() >= MAX_QUEUE {
            self.events.pop_front();
        }
        self.events.push_back(event);
    }

    fn push_transmit(&mut self, to: Vec<MemberId>, bytes: Vec<u8>) {
        if to.is_empty() {
            return;
        }
        if self.transmits.len() >= MAX_QUEUE {
            self.transmits.pop_front();
        }
        self.transmits.push_back(Transmit { to, bytes });
    }

    /// Sends to every other member.
    fn broadcast(&mut self, bytes: Vec<u8>) {
        let to = self.others(&self.members);
        self.push_transmit(to, bytes);
    }

    fn others(&self, members: &BTreeMap<MemberId, Member>) -> Vec<MemberId> {
        members.keys().filter(|m| **m != self.me).copied().collect()
    }

    fn poll_mut(&mut self, id: ProposalId) -> Result<&mut Poll, Error> {
        if self.tally(id).is_some() {
            return Err(Error::ProposalClosed { id });
        }
        self.polls.get_mut(&id).ok_or(Error::UnknownProposal { id })
    }

    /// Something authenticated and fresh came from `member`: it is alive, and no longer due
    /// to be dropped for silence.
    fn touch(&mut self, member: MemberId, now: u64) {
        if let Some(m) = self.members.get_mut(&member) {
            m.last_seen = m.last_seen.max(now);
        }
        if self.pending.get(&member) == Some(&Removal::TimedOut) {
            self.pending.remove(&member);
        }
        if let Some(m) = self
            .settle
            .as_mut()
            .and_then(|s| s.prev_members.get_mut(&member))
        {
            m.last_seen = m.last_seen.max(now);
        }
    }

    /// Everything time drives, in order: timeouts, votes, deferred rollouts, leading a
    /// rollout, the heartbeat.
    fn step(&mut self, now: u64, rng: &mut dyn rand_core::CryptoRngCore) {
        self.detect_timeouts(now);
        self.close_polls(now, rng);
        self.retry_deferred(now);
        if self.is_active() {
            self.lead_rollout(rng);
        }
        if self.is_active() && now >= self.next_heartbeat {
            let hb = Heartbeat {
                sent_at: self.next_signed_time(now),
                key_epoch: self.epoch,
            };
            let (bytes, _) = wire::sign(self.id, &self.keys, &Body::Heartbeat(hb));
            self.broadcast(bytes);
            self.next_heartbeat = now.saturating_add(u64::from(self.rules.heartbeat_secs));
        }
    }

    /// The time to sign into this member's next heartbeat or LEAVE: `now`, or one second
    /// past the last one sent if that was this same second (members refuse a signed time
    /// that is not newer than the last, as a replay).
    fn next_signed_time(&mut self, now: u64) -> u64 {
        let me = self.me;
        match self.members.get_mut(&me) {
            Some(m) => {
                m.last_signed_time = now.max(m.last_signed_time.saturating_add(1));
                m.last_signed_time
            }
            None => now,
        }
    }

    fn detect_timeouts(&mut self, now: u64) {
        let timeout = u64::from(self.rules.timeout_secs);
        let silent: Vec<MemberId> = self
            .members
            .iter()
            .filter(|(id, m)| {
                **id != self.me
                    && !self.pending.contains_key(id)
                    && now > m.last_seen.saturating_add(timeout)
            })
            .map(|(id, _)| *id)
            .collect();
        for member in silent {
            self.mark_for_removal(member, Removal::TimedOut);
        }
    }

    fn mark_for_removal(&mut self, member: MemberId, reason: Removal) {
        if self.members.contains_key(&member) && !self.pending.contains_key(&member) {
            self.pending.insert(member, reason);
            self.push_event(Event::RemovalPending { member, reason });
        }
    }

    fn handle_signed(
        &mut self,
        now: u64,
        unchecked: Unchecked,
        bytes: &[u8],
        rng: &mut dyn rand_core::CryptoRngCore,
    ) -> Result<(), Error> {
        if unchecked.group != self.id {
            return Err(Error::WrongGroup {
                expected: self.id,
                found: unchecked.group,
            });
        }
        let packet = unchecked.check()?;
        let sender = packet.sender();
        match packet.body() {
            Body::Join(join) => return self.on_join(now, sender, join, packet.signature(), rng),
            Body::Welcome(_) => return Err(Error::UnexpectedWelcome { sender }),
            Body::Rollout(r) => self.on_rollout(now, sender, r, bytes)?,
            Body::Proposal(p) => {
                self.check_proposal(now, &sender, p)?;
                self.insert_poll(sender, p.clone(), *packet.signature());
            }
            Body::Ballot(b) => {
                if !self.members.contains_key(&sender) {
                    return Err(Error::NotAMember { who: sender });
                }
                let poll = self.poll_mut(b.proposal)?;
                poll.add(
                    CastBallot {
                        voter: sender,
                        ballot: *b,
                        signature: *packet.signature(),
                    },
                    now,
                )?;
            }
            Body::Heartbeat(hb) => {
                self.check_signed_time(now, sender, "heartbeat", hb.sent_at)?;
                if let Some(m) = self.members.get_mut(&sender) {
                    m.last_signed_time = hb.sent_at;
                    m.key_epoch = hb.key_epoch;
                }
            }
            Body::Leave(l) => {
                self.check_signed_time(now, sender, "leave", l.sent_at)?;
                if let Some(m) = self.members.get_mut(&sender) {
                    m.last_signed_time = l.sent_at;
                }
                self.mark_for_removal(sender, Removal::Left);
                return Ok(());
            }
        }
        self.touch(sender, now);
        Ok(())
    }

    /// A heartbeat's or leave's time: from a member, near our clock, newer than the last.
    fn check_signed_time(
        &self,
        now: u64,
        sender: MemberId,
        what: &'static str,
        time: u64,
    ) -> Result<(), Error> {
        let member = self
            .members
            .get(&sender)
            .ok_or(Error::NotAMember { who: sender })?;
        if time.abs_diff(now) > CLOCK_SKEW_SECS {
            return Err(Error::StaleTime { what, time, now });
        }
        if time <= member.last_signed_time {
            return Err(Error::Replayed { what, sender });
        }
        Ok(())
    }

    fn handle_message(&mut self, m: &GroupMessage) -> Result<(), Error> {
        if m.group != self.id {
            return Err(Error::WrongGroup {
                expected: self.id,
                found: m.group,
            });
        }
        if m.epoch != self.epoch {
            return Err(Error::UnknownEpoch {
                found: m.epoch,
                current: self.epoch,
            });
        }
        let digest = crypto::hash(&[&m.nonce, &m.ciphertext]);
        if self.seen.contains(&digest) {
            return Err(Error::DuplicateMessage);
        }
        let delivered = message::open(m, &self.key)?;
        if !self.members.contains_key(&delivered.sender) {
            return Err(Error::NotAMember {
                who: delivered.sender,
            });
        }
        if self.seen_order.len() >= MAX_SEEN_MESSAGES {
            if let Some(old) = self.seen_order.pop_front() {
                self.seen.remove(&old);
            }
        }
        self.seen.insert(digest);
        self.seen_order.push_back(digest);
        self.push_event(Event::Message(delivered));
        Ok(())
    }
}

fn check_rules(rules: &Rules) -> Result<(), Error> {
    if rules.is_valid() {
        Ok(())
    } else {
        Err(Error::BadRules(
            "periods must be nonzero, the heartbeat shorter than the timeout, the limit nonzero",
        ))
    }
}
