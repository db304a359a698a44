//! An in-memory network of group members with simulated time: packets move between
//! [`Group`]s in one process, links can be cut, members can die, time jumps to the next
//! deadline.

#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use psp_group::{
    AgreementSecret, Error, Event, Group, GroupId, Joining, MemberId, ProposalId, Rules,
    Sr25519Keypair,
};
use rand_core::OsRng;

/// A plausible start time.
pub const T0: u64 = 1_700_000_000;
/// The group id of every test.
pub const GROUP: GroupId = GroupId(0x5eed_0000_0000_0001);

/// Node `i`'s identity keys.
pub fn keys(i: u8) -> Sr25519Keypair {
    Sr25519Keypair::from_seed(&[i.wrapping_add(1); 32])
}

/// Node `i`'s member id.
pub fn id(i: u8) -> MemberId {
    MemberId(keys(i).public())
}

/// A packet in flight.
pub type Packet = (u8, u8, Vec<u8>);

/// The simulated network.
pub struct Net {
    pub now: u64,
    pub groups: BTreeMap<u8, Group>,
    pub joining: BTreeMap<u8, Joining>,
    pub events: BTreeMap<u8, Vec<Event>>,
    /// Refusals, by recipient.
    pub errors: Vec<(u8, Error)>,
    /// Nodes that receive nothing and never run (killed).
    pub dead: BTreeSet<u8>,
    /// Cut links (from, to).
    pub blocked: BTreeSet<(u8, u8)>,
    index: BTreeMap<MemberId, u8>,
}

impl Net {
    /// Node 0 creates the group.
    pub fn new(rules: Rules) -> Self {
        let group = Group::create(
            GROUP,
            rules,
            keys(0),
            AgreementSecret::random(&mut OsRng),
            T0,
            &mut OsRng,
        )
        .expect("valid rules");
        let mut net = Self {
            now: T0,
            groups: BTreeMap::from([(0, group)]),
            joining: BTreeMap::new(),
            events: BTreeMap::new(),
            errors: Vec::new(),
            dead: BTreeSet::new(),
            blocked: BTreeSet::new(),
            index: BTreeMap::new(),
        };
        net.index.insert(id(0), 0);
        net
    }

    /// A group of `n` members (0..n), each admitted by unanimous vote through node 0.
    pub fn with_members(n: u8, rules: Rules) -> Self {
        let mut net = Self::new(rules);
        for i in 1..n {
            let proposal = net.join(i, 0).expect("join opens a proposal");
            let voters: Vec<u8> = net.active();
            for v in voters {
                net.vote(v, proposal, true).expect("vote");
            }
            net.run();
            assert!(net.groups.contains_key(&i), "node {i} was welcomed");
        }
        net.clear();
        net
    }

    /// Active members' node numbers.
    pub fn active(&self) -> Vec<u8> {
        self.groups
            .iter()
            .filter(|(i, g)| g.is_active() && !self.dead.contains(i))
            .map(|(i, _)| *i)
            .collect()
    }

    pub fn group(&self, i: u8) -> &Group {
        &self.groups[&i]
    }

    pub fn group_mut(&mut self, i: u8) -> &mut Group {
        self.groups.get_mut(&i).expect("a member")
    }

    /// Forgets events and errors seen so far.
    pub fn clear(&mut self) {
        self.events.clear();
        self.errors.clear();
    }

    /// Takes every queued packet (and event) from every group, without delivering.
    pub fn drain(&mut self) -> Vec<Packet> {
        let mut out = Vec::new();
        for (i, g) in self.groups.iter_mut() {
            while let Some(t) = g.poll_transmit() {
                for to in t.to {
                    let to = self.index.get(&to).copied().unwrap_or(u8::MAX);
                    out.push((*i, to, t.bytes.clone()));
                }
            }
            while let Some(e) = g.poll_event() {
                self.events.entry(*i).or_default().push(e);
            }
        }
        out
    }

    /// Delivers packets in order, and everything they cause, until quiet.
    pub fn deliver(&mut self, packets: Vec<Packet>) {
        let mut queue: VecDeque<Packet> = packets.into();
        while let Some((from, to, bytes)) = queue.pop_front() {
            if self.dead.contains(&to) || self.blocked.contains(&(from, to)) {
                continue;
            }
            let _ = self.input(to, &bytes);
            queue.extend(self.drain());
        }
    }

    /// Delivers everything queued until quiet.
    pub fn run(&mut self) {
        let p = self.drain();
        self.deliver(p);
    }

    /// Hands one packet to node `to`; refusals are also recorded in `errors`.
    pub fn input(&mut self, to: u8, bytes: &[u8]) -> Result<(), Error> {
        let now = self.now;
        let result = if let Some(g) = self.groups.get_mut(&to) {
            g.handle_input(now, bytes, &mut OsRng)
        } else if let Some(j) = self.joining.get(&to) {
            j.handle_welcome(now, bytes).map(|g| {
                self.joining.remove(&to);
                self.groups.insert(to, g);
            })
        } else {
            Ok(())
        };
        if let Err(e) = &result {
            self.errors.push((to, e.clone()));
        }
        result
    }

    /// Runs every live group's timers at the current time and delivers what they send.
    pub fn tick(&mut self) {
        let now = self.now;
        for (i, g) in self.groups.iter_mut() {
            if !self.dead.contains(i) {
                g.handle_timeout(now, &mut OsRng);
            }
        }
        self.run();
    }

    /// Advances time by `secs`, stopping at every deadline a live group asks for.
    pub fn advance(&mut self, secs: u64) {
        let target = self.now + secs;
        loop {
            let next = self
                .groups
                .iter()
                .filter(|(i, _)| !self.dead.contains(i))
                .filter_map(|(_, g)| g.poll_timeout())
                .min();
            match next {
                Some(t) if t <= target => {
                    self.now = t.max(self.now + 1).min(target);
                    self.tick();
                    if self.now == target {
                        return;
                    }
                }
                _ => break,
            }
        }
        self.now = target;
        self.tick();
    }

    /// Node `newcomer` sends JOIN to `contact`; returns the proposal the contact opened.
    pub fn join(&mut self, newcomer: u8, contact: u8) -> Result<ProposalId, Error> {
        self.index.insert(id(newcomer), newcomer);
        let (joining, bytes) = Joining::new(
            GROUP,
            id(contact),
            keys(newcomer),
            AgreementSecret::random(&mut OsRng),
            self.now,
        );
        self.joining.insert(newcomer, joining);
        self.input(contact, &bytes)?;
        let opened = self.drain();
        let id = self.events[&contact]
            .iter()
            .rev()
            .find_map(|e| match e {
                Event::ProposalOpened { id, .. } => Some(*id),
                _ => None,
            })
            .expect("a proposal was opened");
        self.deliver(opened);
        Ok(id)
    }

    /// Node `who` votes, and its ballot is delivered.
    pub fn vote(&mut self, who: u8, proposal: ProposalId, accept: bool) -> Result<(), Error> {
        let now = self.now;
        self.group_mut(who)
            .vote(now, proposal, accept, &mut OsRng)?;
        self.run();
        Ok(())
    }

    /// Node `who` votes; the ballot stays queued.
    pub fn vote_local(&mut self, who: u8, proposal: ProposalId, accept: bool) -> Result<(), Error> {
        let now = self.now;
        self.group_mut(who).vote(now, proposal, accept, &mut OsRng)
    }

    /// Node `who` proposes to expel `member`; the proposal is delivered.
    pub fn propose_expel(&mut self, who: u8, member: MemberId) -> ProposalId {
        let now = self.now;
        let id = self
            .group_mut(who)
            .propose_expel(now, member, &mut OsRng)
            .expect("propose");
        self.run();
        id
    }

    /// Node `who` sends a group message; returns the packet (also delivered).
    pub fn send(&mut self, who: u8, content: &[u8]) -> Vec<u8> {
        let now = self.now;
        self.group_mut(who)
            .send(now, content, &mut OsRng)
            .expect("send");
        let packets = self.drain();
        let bytes = packets.first().map(|p| p.2.clone()).expect("sent");
        self.deliver(packets);
        bytes
    }

    /// Messages node `i` received.
    pub fn messages(&self, i: u8) -> Vec<(MemberId, Vec<u8>)> {
        self.events
            .get(&i)
            .into_iter()
            .flatten()
            .filter_map(|e| match e {
                Event::Message(d) => Some((d.sender, d.content.clone())),
                _ => None,
            })
            .collect()
    }

    /// Whether node `i` saw an event matching `f`.
    pub fn saw(&self, i: u8, f: impl Fn(&Event) -> bool) -> bool {
        self.events.get(&i).into_iter().flatten().any(f)
    }

    /// The errors node `i` returned.
    pub fn errors_of(&self, i: u8) -> Vec<Error> {
        self.errors
            .iter()
            .filter(|(to, _)| *to == i)
            .map(|(_, e)| e.clone())
            .collect()
    }

    /// Asserts that every node in `nodes` holds the same epoch, key and member table.
    pub fn assert_agree(&self, nodes: &[u8]) {
        let first = self.group(nodes[0]);
        for i in nodes {
            let g = self.group(*i);
            assert!(g.is_active(), "node {i} active");
            assert_eq!(g.epoch(), first.epoch(), "node {i} epoch");
            assert_eq!(g.key_fingerprint(), first.key_fingerprint(), "node {i} key");
            let ids: Vec<_> = g.members().keys().collect();
            let first_ids: Vec<_> = first.members().keys().collect();
            assert_eq!(ids, first_ids, "node {i} members");
        }
    }
}
