//! The groups host, sans IO: every [`Group`] and [`Joining`] this agent holds, what it
//! received, and what it still has to deliver to each member.
//!
//! Inputs: [`Host::command`] (a control request), [`Host::input`] (a group envelope from a
//! channel, with the channel's proven peer), [`Host::handle_timeout`] at
//! [`Host::poll_timeout`], [`Host::delivered`] (how a send ended). Outputs, drained after
//! every input: [`Host::take_outgoing`] (envelopes to send, one member each),
//! [`Host::take_events`] (for the agent's event stream) and [`Host::take_changed`] (groups
//! whose state must be saved, or removed). Time comes in as unix seconds.
//!
//! **Re-delivery** (issue 15, point 4): every packet to a member goes into that member's
//! lane, sent in order with one send in flight; a send that fails (the member is offline:
//! no presence record, no channel) is retried with backoff ([`RETRY_MIN_SECS`] doubling to
//! [`RETRY_MAX_SECS`]) until it is delivered, its [`REDELIVERY_SECS`] pass, or the member
//! is out of the table and [`NON_MEMBER_TRIES`] sends to it failed (a dropped member still
//! gets the rollout that drops it, if it is reachable). So a member that was offline receives, in order, what was sent while it
//! was away as soon as its presence points are back (if the group still holds it: past the
//! timeout a rollout drops it, and then it could not read anything newer anyway). Lanes live
//! in memory: a sender that restarts meanwhile forgets what it still owed.
//!
//! **Who may join through this agent**: a JOIN counts only when it arrives on a channel
//! whose proven peer is the JOIN's signer (so the newcomer is a live identity on chain, as
//! channels require); a JOIN this agent's group refuses (full, already a member) and an
//! admission refused by vote are told to the newcomer as a refusal envelope.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};

use psp_group::wire::{self, Action as ProposalAction, Body as PacketBody, Packet};
use psp_group::{
    AgreementSecret, Error as ProtocolError, Event, Group, GroupId, Joining, MemberId, Outcome,
    ProposalId, Removal, Rules, Sr25519Keypair, Tally,
};
use rand::rngs::OsRng;

use super::envelope::{self, Body};
use super::protocol::{
    group_text, parse_group, parse_member, BallotView, GroupReply, GroupRequest, GroupView,
    JoiningView, MemberView, MessageView, ProposalView, TallyView,
};
use super::GroupError;
use crate::hex0x;
use crate::messaging::events::AgentEvent;
use crate::messaging::protocol::message_bytes;

/// Groups and joins held at most.
pub const MAX_GROUPS: usize = 32;
/// Received messages kept per group for `read`; the oldest go first.
pub const INBOX_PER_GROUP: usize = 1_024;
/// Packets waiting per member; past it the oldest is dropped.
pub const LANE_LIMIT: usize = 512;
/// Failed sends after which what is owed to a member no longer in the table is dropped
/// (5 s + 10 s + 20 s + 40 s of retries).
pub const NON_MEMBER_TRIES: u32 = 5;
/// A packet not delivered within this long is dropped (the DHT record lifetime, an hour).
pub const REDELIVERY_SECS: u64 = 3_600;
/// First retry of a failed send, seconds.
pub const RETRY_MIN_SECS: u64 = 5;
/// Longest wait between retries, seconds.
pub const RETRY_MAX_SECS: u64 = 60;

/// An envelope to send to one member; report how it went with [`Host::delivered`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outgoing {
    /// Its number.
    pub id: u64,
    /// The member's identity key.
    pub to: [u8; 32],
    /// The channel message.
    pub bytes: Vec<u8>,
}

/// A state change to persist.
#[derive(Debug)]
pub enum Changed {
    /// The group's snapshot (secret: sealed at rest, zeroized when dropped).
    Saved(GroupId, zeroize::Zeroizing<Vec<u8>>),
    /// The group is gone (left, expelled).
    Removed(GroupId),
}

#[derive(Debug)]
struct Queued {
    bytes: Vec<u8>,
    expires_at: u64,
}

/// What is owed to one member.
#[derive(Debug, Default)]
struct Lane {
    queue: VecDeque<Queued>,
    in_flight: Option<u64>,
    retry_at: u64,
    failures: u32,
}

struct Hosted {
    group: Group,
    inbox: VecDeque<MessageView>,
    next_seq: u64,
    proposals: BTreeMap<u64, ProposalView>,
    lanes: BTreeMap<[u8; 32], Lane>,
}

/// See the module docs.
pub struct Host {
    seed: zeroize::Zeroizing<[u8; 32]>,
    me: [u8; 32],
    groups: BTreeMap<GroupId, Hosted>,
    joining: BTreeMap<GroupId, Joining>,
    in_flight: HashMap<u64, (GroupId, [u8; 32])>,
    /// One-off sends (JOINs, refusals) outside the lanes.
    one_off: HashMap<u64, GroupId>,
    next_delivery: u64,
    outgoing: VecDeque<Outgoing>,
    events: VecDeque<AgentEvent>,
    changed: BTreeSet<GroupId>,
    removed: BTreeSet<GroupId>,
}

impl std::fmt::Debug for Host {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Host")
            .field("me", &hex0x(&self.me))
            .field("groups", &self.groups.len())
            .field("joining", &self.joining.len())
            .finish_non_exhaustive()
    }
}

impl Host {
    /// A host for the identity whose sr25519 seed is `seed`.
    pub fn new(seed: [u8; 32]) -> Self {
        let me = Sr25519Keypair::from_seed(&seed).public();
        Self {
            seed: zeroize::Zeroizing::new(seed),
            me,
            groups: BTreeMap::new(),
            joining: BTreeMap::new(),
            in_flight: HashMap::new(),
            one_off: HashMap::new(),
            next_delivery: 0,
            outgoing: VecDeque::new(),
            events: VecDeque::new(),
            changed: BTreeSet::new(),
            removed: BTreeSet::new(),
        }
    }

    fn keys(&self) -> Sr25519Keypair {
        Sr25519Keypair::from_seed(&self.seed)
    }

    /// Takes back a group from its snapshot (at the agent's start).
    pub fn restore(&mut self, snapshot: &[u8]) -> Result<GroupId, GroupError> {
        if self.groups.len() + self.joining.len() >= MAX_GROUPS {
            return Err(GroupError::TooMany {
                held: self.groups.len() + self.joining.len(),
            });
        }
        let group =
            Group::restore(snapshot, self.keys()).map_err(|source| GroupError::Protocol {
                group: "(snapshot)".into(),
                source,
            })?;
        let id = group.id();
        self.groups.insert(id, Hosted::new(group));
        Ok(id)
    }

    /// The group ids held.
    pub fn group_ids(&self) -> impl Iterator<Item = GroupId> + '_ {
        self.groups.keys().copied()
    }

    /// Envelopes to send.
    pub fn take_outgoing(&mut self) -> Vec<Outgoing> {
        self.outgoing.drain(..).collect()
    }

    /// Events for the agent's subscribers.
    pub fn take_events(&mut self) -> Vec<AgentEvent> {
        self.events.drain(..).collect()
    }

    /// Groups to save or remove.
    pub fn take_changed(&mut self) -> Vec<Changed> {
        let mut out: Vec<Changed> = self
            .removed
            .iter()
            .map(|id| Changed::Removed(*id))
            .collect();
        for id in std::mem::take(&mut self.changed) {
            if let Some(h) = self.groups.get(&id) {
                out.push(Changed::Saved(
                    id,
                    zeroize::Zeroizing::new(h.group.snapshot()),
                ));
            }
        }
        self.removed.clear();
        out
    }

    /// When [`Self::handle_timeout`] is next due.
    pub fn poll_timeout(&self) -> Option<u64> {
        self.groups
            .values()
            .flat_map(|h| {
                let lanes = h
                    .lanes
                    .values()
                    .filter(|l| l.in_flight.is_none() && !l.queue.is_empty())
                    .map(|l| l.retry_at);
                h.group.poll_timeout().into_iter().chain(lanes)
            })
            .min()
    }

    /// Advances time: heartbeats, timeouts, votes closing, rollouts, retries.
    pub fn handle_timeout(&mut self, now: u64) {
        let ids: Vec<GroupId> = self.groups.keys().copied().collect();
        for id in ids {
            if let Some(h) = self.groups.get_mut(&id) {
                h.group.handle_timeout(now, &mut OsRng);
            }
            self.flush(now, id);
        }
    }

    /// How the send of outgoing `id` ended.
    pub fn delivered(&mut self, now: u64, id: u64, result: Result<(), String>) {
        if let Some(group) = self.one_off.remove(&id) {
            // A JOIN that could not be sent ends the join: the user may try another contact.
            if let Err(reason) = result {
                if self.joining.remove(&group).is_some() {
                    self.notice(
                        group,
                        "join-failed",
                        format!("JOIN not delivered: {reason}"),
                    );
                }
            }
            return;
        }
        let Some((group, member)) = self.in_flight.remove(&id) else {
            return;
        };
        let Some(lane) = self
            .groups
            .get_mut(&group)
            .and_then(|h| h.lanes.get_mut(&member))
        else {
            return;
        };
        lane.in_flight = None;
        match result {
            Ok(()) => {
                lane.queue.pop_front();
                lane.failures = 0;
                lane.retry_at = now;
            }
            Err(reason) => {
                lane.failures = lane.failures.saturating_add(1);
                let backoff = RETRY_MIN_SECS
                    .saturating_mul(1 << lane.failures.min(8).saturating_sub(1))
                    .min(RETRY_MAX_SECS);
                lane.retry_at = now.saturating_add(backoff);
                if lane.failures == 1 {
                    self.events.push_back(AgentEvent::GroupNotice {
                        group: group_text(group),
                        what: "redelivery-pending".into(),
                        detail: format!(
                            "{} is not reachable ({reason}); retrying in {backoff} s",
                            hex0x(&member)
                        ),
                    });
                }
            }
        }
        self.flush(now, group);
    }

    /// A group envelope that arrived on a channel from `from` (its proven identity).
    pub fn input(&mut self, now: u64, from: [u8; 32], bytes: &[u8]) -> Result<(), GroupError> {
        let (id, body) = envelope::open(bytes)?;
        let result = match body {
            Body::Refusal(reason) => self.refused(id, from, reason),
            Body::Packet(packet) => self.packet(now, id, from, packet),
        };
        if let Err(e) = &result {
            self.notice(id, "refused", e.to_string());
        }
        self.flush(now, id);
        result
    }

    fn refused(&mut self, id: GroupId, from: [u8; 32], reason: String) -> Result<(), GroupError> {
        match self.joining.get(&id) {
            Some(j) if j.contact().0 == from => {
                self.joining.remove(&id);
                self.notice(id, "join-refused", reason);
                Ok(())
            }
            _ => Err(GroupError::NotHere(group_text(id))),
        }
    }

    fn packet(
        &mut self,
        now: u64,
        id: GroupId,
        from: [u8; 32],
        packet: &[u8],
    ) -> Result<(), GroupError> {
        let protocol = |source| GroupError::Protocol {
            group: group_text(id),
            source,
        };
        if let Some(joining) = self.joining.get(&id) {
            if joining.contact().0 != from {
                return Err(GroupError::NotHere(group_text(id)));
            }
            let group = joining.handle_welcome(now, packet).map_err(protocol)?;
            self.joining.remove(&id);
            self.groups.insert(id, Hosted::new(group));
            self.changed.insert(id);
            self.notice(id, "joined", format!("welcomed by {}", hex0x(&from)));
            return Ok(());
        }
        let h = self
            .groups
            .get_mut(&id)
            .ok_or_else(|| GroupError::NotHere(group_text(id)))?;
        let join = match wire::decode(packet) {
            Ok(Packet::Signed(u)) if matches!(u.body, PacketBody::Join(_)) => Some(u.sender),
            _ => None,
        };
        if let Some(signer) = join {
            if signer.0 != from {
                return Err(GroupError::Invalid {
                    what: "join",
                    reason: format!(
                        "signed by {} but sent by {}: a JOIN comes from the newcomer",
                        hex0x(&signer.0),
                        hex0x(&from)
                    ),
                });
            }
        }
        let result = h
            .group
            .handle_input(now, packet, &mut OsRng)
            .map_err(protocol);
        if let (Err(e), Some(newcomer)) = (&result, join) {
            let reason = e.to_string();
            self.send_refusal(id, newcomer.0, &reason);
        }
        self.changed.insert(id);
        result
    }

    /// A control request.
    pub fn command(&mut self, now: u64, request: GroupRequest) -> Result<GroupReply, GroupError> {
        let id = request.group().map(parse_group).transpose()?;
        let reply = self.run(now, request);
        if let Some(id) = id {
            self.flush(now, id);
        }
        reply
    }

    fn run(&mut self, now: u64, request: GroupRequest) -> Result<GroupReply, GroupError> {
        match request {
            GroupRequest::List => Ok(GroupReply::List {
                groups: self.groups.values().map(Hosted::view).collect(),
                joining: self
                    .joining
                    .iter()
                    .map(|(id, j)| joining_view(*id, j))
                    .collect(),
            }),
            GroupRequest::Create {
                member_limit,
                heartbeat_secs,
                timeout_secs,
                vote_secs,
            } => {
                self.room()?;
                let d = Rules::default();
                let rules = Rules {
                    member_limit,
                    heartbeat_secs: heartbeat_secs.unwrap_or(d.heartbeat_secs),
                    timeout_secs: timeout_secs.unwrap_or(d.timeout_secs),
                    vote_secs: vote_secs.unwrap_or(d.vote_secs),
                };
                let id = GroupId::random(&mut OsRng);
                let group = Group::create(
                    id,
                    rules,
                    self.keys(),
                    AgreementSecret::random(&mut OsRng),
                    now,
                    &mut OsRng,
                )
                .map_err(|source| GroupError::Protocol {
                    group: group_text(id),
                    source,
                })?;
                let hosted = Hosted::new(group);
                let view = hosted.view();
                self.groups.insert(id, hosted);
                self.changed.insert(id);
                self.flush(now, id);
                Ok(GroupReply::Created(view))
            }
            GroupRequest::Join { group, contact } => {
                let id = parse_group(&group)?;
                let contact = parse_member(&contact, "contact")?;
                if self.groups.contains_key(&id) || self.joining.contains_key(&id) {
                    return Err(GroupError::AlreadyIn(group));
                }
                if contact == self.me {
                    return Err(GroupError::Invalid {
                        what: "contact",
                        reason: "this agent itself; name a member of the group".into(),
                    });
                }
                self.room()?;
                let (joining, join) = Joining::new(
                    id,
                    MemberId(contact),
                    self.keys(),
                    AgreementSecret::random(&mut OsRng),
                    now,
                );
                // A join is not a member's lane: one send, its failure reported.
                self.push_one_off(id, contact, envelope::packet(id, &join));
                let view = joining_view(id, &joining);
                self.joining.insert(id, joining);
                Ok(GroupReply::JoinSent(view))
            }
            GroupRequest::Proposals { group } => {
                let h = self.hosted(&group)?;
                Ok(GroupReply::Proposals {
                    proposals: h.proposals.values().cloned().collect(),
                })
            }
            GroupRequest::Tally { group, proposal } => {
                let id = parse_group(&group)?;
                let g = &self.hosted(&group)?.group;
                let pid = ProposalId(proposal);
                let (tally, open) = match g.tally(pid) {
                    Some(t) => (t.clone(), false),
                    None => (
                        g.open_tally(pid).ok_or_else(|| GroupError::Invalid {
                            what: "proposal",
                            reason: format!(
                                "no vote {proposal} in group {group} (open or remembered)"
                            ),
                        })?,
                        true,
                    ),
                };
                Ok(GroupReply::Tally(tally_view(id, &tally, open)))
            }
            GroupRequest::Vote {
                group,
                proposal,
                accept,
            } => {
                let id = parse_group(&group)?;
                let h = self.hosted_mut(&group)?;
                h.group
                    .vote(now, ProposalId(proposal), accept, &mut OsRng)
                    .map_err(|source| protocol(id, source))?;
                self.changed.insert(id);
                Ok(GroupReply::Done { group })
            }
            GroupRequest::Members { group } => Ok(GroupReply::Members(self.hosted(&group)?.view())),
            GroupRequest::Send {
                group,
                to,
                text,
                hex,
            } => {
                let id = parse_group(&group)?;
                let content = message_bytes(text, hex).map_err(|e| GroupError::Invalid {
                    what: "send",
                    reason: e.to_string(),
                })?;
                let to = to.map(|m| parse_member(&m, "to")).transpose()?;
                let h = self.hosted_mut(&group)?;
                match to {
                    Some(member) => h.group.send_to(now, MemberId(member), &content, &mut OsRng),
                    None => h.group.send(now, &content, &mut OsRng),
                }
                .map_err(|source| protocol(id, source))?;
                Ok(GroupReply::Done { group })
            }
            GroupRequest::Read { group, max, .. } => {
                let h = self.hosted_mut(&group)?;
                let take = max.unwrap_or(usize::MAX).min(h.inbox.len());
                let messages = h.inbox.drain(..take).collect();
                Ok(GroupReply::Messages { group, messages })
            }
            GroupRequest::Leave { group } => {
                let id = parse_group(&group)?;
                let h = self.hosted_mut(&group)?;
                h.group.leave(now).map_err(|source| protocol(id, source))?;
                self.changed.insert(id);
                Ok(GroupReply::Done { group })
            }
            GroupRequest::Expel { group, member } => {
                let id = parse_group(&group)?;
                let member = parse_member(&member, "member")?;
                let h = self.hosted_mut(&group)?;
                let proposal = h
                    .group
                    .propose_expel(now, MemberId(member), &mut OsRng)
                    .map_err(|source| protocol(id, source))?;
                self.changed.insert(id);
                self.flush(now, id);
                let view = self
                    .groups
                    .get(&id)
                    .and_then(|h| h.proposals.get(&proposal.0).cloned())
                    .ok_or_else(|| GroupError::UnknownGroup(group_text(id)))?;
                Ok(GroupReply::ProposalOpened(view))
            }
        }
    }

    /// Whether `key` is a member of a group held here (its introductions are accepted at
    /// once: group traffic needs channels between members).
    pub fn is_member(&self, key: &[u8; 32]) -> bool {
        self.groups
            .values()
            .any(|h| h.group.members().contains_key(&MemberId(*key)))
    }

    /// Whether `read` of `group` would return something now.
    pub fn has_messages(&self, group: &str) -> bool {
        self.hosted(group).is_ok_and(|h| !h.inbox.is_empty())
    }

    fn room(&self) -> Result<(), GroupError> {
        let held = self.groups.len() + self.joining.len();
        if held >= MAX_GROUPS {
            return Err(GroupError::TooMany { held });
        }
        Ok(())
    }

    fn hosted(&self, group: &str) -> Result<&Hosted, GroupError> {
        let id = parse_group(group)?;
        self.groups
            .get(&id)
            .ok_or_else(|| GroupError::UnknownGroup(group.to_owned()))
    }

    fn hosted_mut(&mut self, group: &str) -> Result<&mut Hosted, GroupError> {
        let id = parse_group(group)?;
        self.groups
            .get_mut(&id)
            .ok_or_else(|| GroupError::UnknownGroup(group.to_owned()))
    }

    fn notice(&mut self, id: GroupId, what: &str, detail: String) {
        self.events.push_back(AgentEvent::GroupNotice {
            group: group_text(id),
            what: what.into(),
            detail,
        });
    }

    fn send_refusal(&mut self, id: GroupId, to: [u8; 32], reason: &str) {
        self.push_one_off(id, to, envelope::refusal(id, reason));
    }

    /// A one-off send outside the lanes (JOINs and refusals to non-members).
    fn push_one_off(&mut self, group: GroupId, to: [u8; 32], bytes: Vec<u8>) {
        let id = self.next_delivery;
        self.next_delivery += 1;
        self.one_off.insert(id, group);
        self.outgoing.push_back(Outgoing { id, to, bytes });
    }

    /// Moves the group's transmits into lanes and its events out, then sends what is due.
    fn flush(&mut self, now: u64, id: GroupId) {
        let Some(h) = self.groups.get_mut(&id) else {
            return;
        };
        while let Some(t) = h.group.poll_transmit() {
            let bytes = envelope::packet(id, &t.bytes);
            for member in t.to {
                let lane = h.lanes.entry(member.0).or_default();
                if lane.queue.len() >= LANE_LIMIT {
                    lane.queue.pop_front();
                }
                lane.queue.push_back(Queued {
                    bytes: bytes.clone(),
                    expires_at: now.saturating_add(REDELIVERY_SECS),
                });
            }
        }
        let mut events = Vec::new();
        while let Some(e) = h.group.poll_event() {
            events.push(e);
        }
        let mut refusals = Vec::new();
        for event in events {
            if let Some((to, reason)) = h.apply(id, event, &mut self.events) {
                refusals.push((to, reason));
            }
            self.changed.insert(id);
        }
        // A member just dropped is still owed what was addressed to it (the ballots before,
        // the rollout that tells it it was removed): its lane stays until drained, or until
        // [`NON_MEMBER_TRIES`] sends failed (it is gone: no hour of retries for it).
        let members = h.group.members();
        h.lanes.retain(|member, lane| {
            members.contains_key(&MemberId(*member))
                || lane.in_flight.is_some()
                || (!lane.queue.is_empty() && lane.failures < NON_MEMBER_TRIES)
        });
        let inactive = !h.group.is_active();
        let mut sends = Vec::new();
        for (member, lane) in h.lanes.iter_mut() {
            while lane.queue.front().is_some_and(|q| q.expires_at <= now) {
                lane.queue.pop_front();
            }
            if lane.in_flight.is_some() || lane.retry_at > now {
                continue;
            }
            if let Some(q) = lane.queue.front() {
                let delivery = self.next_delivery;
                self.next_delivery += 1;
                lane.in_flight = Some(delivery);
                sends.push(Outgoing {
                    id: delivery,
                    to: *member,
                    bytes: q.bytes.clone(),
                });
            }
        }
        for s in sends {
            self.in_flight.insert(s.id, (id, s.to));
            self.outgoing.push_back(s);
        }
        for (to, reason) in refusals {
            self.send_refusal(id, to, &reason);
        }
        // A group this member left or was expelled from is forgotten once its last
        // packets (the LEAVE) are on their way.
        let drained = self
            .groups
            .get(&id)
            .is_some_and(|h| h.lanes.values().all(|l| l.queue.is_empty()));
        if inactive && drained {
            self.groups.remove(&id);
            self.changed.remove(&id);
            self.removed.insert(id);
        }
    }
}

fn protocol(id: GroupId, source: ProtocolError) -> GroupError {
    GroupError::Protocol {
        group: group_text(id),
        source,
    }
}

fn proposal_view(id: GroupId, proposer: MemberId, p: &wire::Proposal) -> ProposalView {
    let (action, subject) = match &p.action {
        ProposalAction::Admit { newcomer, .. } => ("admit", newcomer.0),
        ProposalAction::Expel { member } => ("expel", member.0),
    };
    ProposalView {
        group: group_text(id),
        proposal: p.id.0,
        proposer: hex0x(&proposer.0),
        action: action.into(),
        subject: hex0x(&subject),
        deadline: p.deadline,
    }
}

fn tally_view(id: GroupId, t: &Tally, open: bool) -> TallyView {
    TallyView {
        proposal: proposal_view(id, t.proposer, &t.proposal),
        outcome: match (open, t.outcome) {
            (true, _) => "open",
            (false, Outcome::Accepted) => "accepted",
            (false, Outcome::Refused) => "refused",
        }
        .into(),
        eligible: t.eligible.iter().map(|m| hex0x(&m.0)).collect(),
        ballots: t
            .ballots
            .iter()
            .map(|b| BallotView {
                voter: hex0x(&b.voter.0),
                accept: b.ballot.accept,
                cast_at: b.ballot.cast_at,
                signature: hex0x(&b.signature),
            })
            .collect(),
        accepts: t.accepts,
        refuses: t.refuses,
        verified: !open && t.verify().is_ok(),
    }
}

fn joining_view(id: GroupId, j: &Joining) -> JoiningView {
    JoiningView {
        group: group_text(id),
        contact: hex0x(&j.contact().0),
    }
}

fn removal_text(r: Removal) -> &'static str {
    match r {
        Removal::Left => "left",
        Removal::Expelled => "expelled",
        Removal::TimedOut => "timed out",
    }
}

impl Hosted {
    fn new(group: Group) -> Self {
        Self {
            group,
            inbox: VecDeque::new(),
            next_seq: 0,
            proposals: BTreeMap::new(),
            lanes: BTreeMap::new(),
        }
    }

    fn view(&self) -> GroupView {
        let g = &self.group;
        let pending = g.pending_removals();
        GroupView {
            group: group_text(g.id()),
            me: hex0x(&g.me().0),
            active: g.is_active(),
            epoch: g.epoch().0,
            key_fingerprint: hex0x(&g.key_fingerprint()),
            member_limit: g.rules().limit(),
            heartbeat_secs: g.rules().heartbeat_secs,
            timeout_secs: g.rules().timeout_secs,
            vote_secs: g.rules().vote_secs,
            members: g
                .members()
                .iter()
                .map(|(id, m)| MemberView {
                    id: hex0x(&id.0),
                    last_seen: m.last_seen,
                    pending_removal: pending.get(id).map(|r| removal_text(*r).to_owned()),
                    undelivered: self.lanes.get(&id.0).map_or(0, |l| l.queue.len()),
                })
                .collect(),
        }
    }

    /// Applies one event; returns a refusal to tell a newcomer, if the event is one.
    fn apply(
        &mut self,
        id: GroupId,
        event: Event,
        events: &mut VecDeque<AgentEvent>,
    ) -> Option<([u8; 32], String)> {
        let group = group_text(id);
        let notice = |what: &str, detail: String| AgentEvent::GroupNotice {
            group: group.clone(),
            what: what.into(),
            detail,
        };
        let mut refusal = None;
        let e = match event {
            Event::ProposalOpened {
                id: proposal,
                proposer,
                action,
                deadline,
            } => {
                let view = proposal_view(
                    id,
                    proposer,
                    &wire::Proposal {
                        id: proposal,
                        deadline,
                        action,
                    },
                );
                let detail = format!(
                    "proposal {} by {}: {} {} (vote before {deadline})",
                    view.proposal, view.proposer, view.action, view.subject
                );
                self.proposals.insert(proposal.0, view);
                notice("proposal-opened", detail)
            }
            Event::Decided(tally) => {
                self.proposals.remove(&tally.proposal.id.0);
                let accepted = tally.outcome == Outcome::Accepted;
                if let ProposalAction::Admit { newcomer, .. } = &tally.proposal.action {
                    if !accepted && tally.proposer == self.group.me() {
                        refusal = Some((newcomer.0, "refused by the members' vote".to_owned()));
                    }
                }
                notice(
                    "decided",
                    format!(
                        "proposal {}: {} ({} accept, {} refuse, {} eligible)",
                        tally.proposal.id.0,
                        if accepted { "accepted" } else { "refused" },
                        tally.accepts,
                        tally.refuses,
                        tally.eligible.len()
                    ),
                )
            }
            Event::MemberAdded { member } => notice("member-added", hex0x(&member.0)),
            Event::AdmissionDropped {
                member,
                members,
                limit,
            } => {
                if self.group.is_active() {
                    refusal = Some((
                        member.0,
                        format!("the group is full ({members} of {limit})"),
                    ));
                }
                notice(
                    "admission-dropped",
                    format!(
                        "{}: the group is full ({members} of {limit})",
                        hex0x(&member.0)
                    ),
                )
            }
            Event::RemovalPending { member, reason } => notice(
                "removal-pending",
                format!("{} ({})", hex0x(&member.0), removal_text(reason)),
            ),
            Event::RolledOut {
                epoch,
                leader,
                removed,
            } => notice(
                "rolled-out",
                format!(
                    "key epoch {} led by {}, removed [{}]",
                    epoch.0,
                    hex0x(&leader.0),
                    removed
                        .iter()
                        .map(|m| hex0x(&m.0))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ),
            Event::Removed { epoch } => notice(
                "removed",
                format!("this member was dropped at key epoch {}", epoch.0),
            ),
            Event::Message(m) => {
                let seq = self.next_seq;
                self.next_seq += 1;
                let (text, hex) = match String::from_utf8(m.content) {
                    Ok(t) => (Some(t), None),
                    Err(e) => (None, Some(hex::encode(e.into_bytes()))),
                };
                if self.inbox.len() >= INBOX_PER_GROUP {
                    self.inbox.pop_front();
                }
                self.inbox.push_back(MessageView {
                    seq,
                    sender: hex0x(&m.sender.0),
                    sent_at: m.sent_at,
                    text,
                    hex,
                });
                notice("message", format!("{seq} from {}", hex0x(&m.sender.0)))
            }
            other => notice("other", format!("{other:?}")),
        };
        events.push_back(e);
        refusal
    }
}
