//! Snapshots: a member's state of a group as bytes, so a host agent keeps it across restarts.
//!
//! [`Group::snapshot`] encodes everything a member needs to carry on; [`Group::restore`]
//! reads it back with the member's identity keys (which the snapshot does not hold: the host
//! keeps them anyway, and [`Group::restore`] checks they are the member's).
//!
//! ```text
//! snapshot = magic "psp/group/snapshot" [18] ‖ version u8 (=1) ‖ group u64 ‖ member [32] ‖
//!            limit u16 (0 = none) ‖ heartbeat u32 ‖ timeout u32 ‖ vote u32 ‖
//!            status u8 (1 active | 2 left | 3 removed) ‖ key epoch u64 ‖ transcript [32] ‖
//!            next heartbeat u64 ‖
//!            n u16 ‖ (id [32] ‖ x25519 [32] ‖ last seen u64 ‖ last signed time u64 ‖
//!                     key epoch u64)×n                              members, ascending ids
//!            n u16 ‖ (id [32] ‖ reason u8 (1 left | 2 expelled | 3 timed out))×n
//!                                                       pending removals, ascending ids
//!            n u16 ‖ vote×n                        open votes, ascending proposal ids
//!            n u16 ‖ vote×n                        decided tallies, oldest first
//!            n u16 ‖ digest [32]×n                 seen group messages, oldest first
//!            K_c [32] ‖ X25519 agreement secret [32]
//! vote     = len u16 ‖ signed proposal packet ‖ n u16 ‖ eligible voter [32]×n ‖
//!            n u16 ‖ (len u16 ‖ signed ballot packet)×n              ascending voters
//! ```
//!
//! As on the wire: integers are big-endian, every count has a bound (the member limit of the
//! rules, [`MAX_OPEN_PROPOSALS`], [`MAX_DECIDED_TALLIES`], [`MAX_SEEN_MESSAGES`]), and nothing
//! may follow the last field. Proposals and ballots are kept as the signed packets they
//! arrived as, read back by the strict packet decoder, so a restored [`crate::Tally`] still
//! verifies. [`Group::restore`] never panics, whatever the bytes. It checks the structure and
//! the invariants of the state: valid rules, ids in order and unique, this member in its table
//! under the agreement key of the stored secret, pending removals among the members, usable
//! agreement keys, ballots from eligible voters, once each, by the deadline. It does not check
//! the signatures of the stored proposals and ballots again: they were checked when received,
//! and a snapshot that someone could change could as well hold another group key. Keeping it
//! whole is the host's encryption's job.
//!
//! A snapshot takes about 200 bytes, plus 112 per member, 32 per remembered message, and per
//! kept vote about 260 bytes plus 32 per eligible voter and 125 per ballot: about 2 MB at
//! worst (256 members, 48 votes of 256 ballots).
//!
//! **Secrets.** A snapshot holds the group key `K_c` and the X25519 agreement secret. The host
//! must encrypt it at rest (an AEAD under a key of the agent's keystore) and zeroize the
//! plaintext once sealed, for instance by wrapping it in `zeroize::Zeroizing`. The secrets are
//! written last, into room reserved beforehand, so the buffer is never reallocated while it
//! holds them; the copies read back are zeroized.
//!
//! **Not kept** (transient):
//! * the queues of packets and events. The host drains [`Group::poll_transmit`] and
//!   [`Group::poll_event`] before it takes a snapshot: a packet still queued (a ballot, a
//!   welcome, a rollout this member led) is not in the snapshot;
//! * rollouts deferred because a removal was not yet justified here. One that was waiting is
//!   lost: if the others apply it, this member stays on the old key and must be admitted
//!   again, unless the host delivers the rollout again;
//! * the view before the last rollout, kept to settle a competing rollout to the same epoch.
//!   After a restore, a competing rollout to the current epoch is refused as
//!   [`Error::WrongEpoch`]: if the other members settle on it, this member must be admitted
//!   again.
//!
//! Times are kept as they were: after a restart longer than the timeout, this member sees the
//! others as silent (and they will have dropped it), as after any long absence.

use std::collections::{BTreeMap, BTreeSet, HashSet, VecDeque};

use psp_onion::bytes::Reader;
use psp_onion::crypto::Sr25519Keypair;
use zeroize::Zeroizing;

use super::{check_rules, Group, Member, Removal, Status, MAX_SEEN_MESSAGES};
use crate::crypto::{self, AgreementSecret, GroupKey, KEY_LEN};
use crate::error::{Error, SnapshotCtx};
use crate::ids::{
    AgreementKey, GroupId, KeyEpoch, MemberId, Rules, MAX_DECIDED_TALLIES, MAX_MEMBERS,
    MAX_OPEN_PROPOSALS,
};
use crate::vote::{CastBallot, Poll, Tally};
use crate::wire::{self, Body, Packet, Unchecked};

/// The first bytes of every snapshot.
const MAGIC: &[u8; 18] = b"psp/group/snapshot";
/// The version byte after the magic.
const VERSION: u8 = 1;

impl Group {
    /// Encodes this member's state of the group (see the [module docs](self) for the format
    /// and for what is not kept). Drain [`Group::poll_transmit`] and [`Group::poll_event`]
    /// first. The bytes hold the group key and the agreement secret: encrypt them at rest.
    pub fn snapshot(&self) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend_from_slice(MAGIC);
        out.push(VERSION);
        out.extend_from_slice(&self.id.0.to_be_bytes());
        out.extend_from_slice(&self.me.0);
        // No limit is 0, which is not a valid limit (`Rules::is_valid`), as in the welcome.
        out.extend_from_slice(&self.rules.member_limit.unwrap_or(0).to_be_bytes());
        out.extend_from_slice(&self.rules.heartbeat_secs.to_be_bytes());
        out.extend_from_slice(&self.rules.timeout_secs.to_be_bytes());
        out.extend_from_slice(&self.rules.vote_secs.to_be_bytes());
        out.push(match self.status {
            Status::Active => 1,
            Status::Left => 2,
            Status::Removed => 3,
        });
        out.extend_from_slice(&self.epoch.0.to_be_bytes());
        out.extend_from_slice(&self.transcript);
        out.extend_from_slice(&self.next_heartbeat.to_be_bytes());
        put_count(&mut out, self.members.len());
        for (id, m) in &self.members {
            out.extend_from_slice(&id.0);
            out.extend_from_slice(&m.agreement_key.0);
            out.extend_from_slice(&m.last_seen.to_be_bytes());
            out.extend_from_slice(&m.last_signed_time.to_be_bytes());
            out.extend_from_slice(&m.key_epoch.0.to_be_bytes());
        }
        put_count(&mut out, self.pending.len());
        for (id, reason) in &self.pending {
            out.extend_from_slice(&id.0);
            out.push(match reason {
                Removal::Left => 1,
                Removal::Expelled => 2,
                Removal::TimedOut => 3,
            });
        }
        put_count(&mut out, self.polls.len());
        for poll in self.polls.values() {
            put_vote(&mut out, &poll.tally(self.id));
        }
        put_count(&mut out, self.decided.len());
        for tally in &self.decided {
            put_vote(&mut out, tally);
        }
        put_count(&mut out, self.seen_order.len());
        for digest in &self.seen_order {
            out.extend_from_slice(digest);
        }
        // The secrets last, into reserved room: no reallocation leaves a copy behind.
        out.reserve_exact(2 * KEY_LEN);
        out.extend_from_slice(self.key.bytes());
        out.extend_from_slice(self.agreement.bytes());
        out
    }

    /// Reads back a [`Group::snapshot`] of the member whose identity keys are `keys`.
    ///
    /// Refuses bytes that are not a well-formed snapshot of this version, keys of another
    /// member ([`Error::SnapshotWrongKeys`]), and a state that breaks an invariant (see the
    /// [module docs](self)). Nothing is queued after a restore: the next
    /// [`Group::handle_timeout`] heartbeats if one is due.
    pub fn restore(bytes: &[u8], keys: Sr25519Keypair) -> Result<Group, Error> {
        let mut r = Reader::new(bytes);
        if r.take(MAGIC.len()).snap("magic")? != MAGIC {
            return Err(Error::BadSnapshot("not a group snapshot (wrong magic)"));
        }
        let version = r.u8().snap("version")?;
        if version != VERSION {
            return Err(Error::SnapshotVersion {
                found: version,
                expected: VERSION,
            });
        }
        let id = GroupId(r.u64().snap("group id")?);
        let me = MemberId(r.array().snap("member id")?);
        if me.0 != keys.public() {
            return Err(Error::SnapshotWrongKeys {
                snapshot: me,
                keys: MemberId(keys.public()),
            });
        }
        let limit = r.u16().snap("member limit")?;
        let rules = Rules {
            member_limit: (limit != 0).then_some(limit),
            heartbeat_secs: r.u32().snap("heartbeat period")?,
            timeout_secs: r.u32().snap("timeout")?,
            vote_secs: r.u32().snap("vote period")?,
        };
        check_rules(&rules)?;
        let status = match r.u8().snap("status")? {
            1 => Status::Active,
            2 => Status::Left,
            3 => Status::Removed,
            _ => return Err(Error::BadSnapshot("undefined status")),
        };
        let epoch = KeyEpoch(r.u64().snap("key epoch")?);
        let transcript = r.array().snap("transcript")?;
        let next_heartbeat = r.u64().snap("next heartbeat")?;

        let n = get_count(&mut r, "member count", rules.limit())?;
        let mut members = BTreeMap::new();
        let mut prev = None;
        for _ in 0..n {
            let member = MemberId(r.array().snap("member id")?);
            ascending(&mut prev, member, "members out of order or listed twice")?;
            let agreement_key = AgreementKey(r.array().snap("member agreement key")?);
            if !crypto::agreement_key_usable(&agreement_key) {
                return Err(Error::BadAgreementKey { member });
            }
            let m = Member {
                agreement_key,
                last_seen: r.u64().snap("member last seen")?,
                last_signed_time: r.u64().snap("member last signed time")?,
                key_epoch: KeyEpoch(r.u64().snap("member key epoch")?),
            };
            members.insert(member, m);
        }

        let n = get_count(&mut r, "pending removal count", members.len())?;
        let mut pending = BTreeMap::new();
        let mut prev = None;
        for _ in 0..n {
            let member = MemberId(r.array().snap("pending removal")?);
            ascending(
                &mut prev,
                member,
                "pending removals out of order or listed twice",
            )?;
            if !members.contains_key(&member) {
                return Err(Error::BadSnapshot("a pending removal is not a member"));
            }
            let reason = match r.u8().snap("pending removal reason")? {
                1 => Removal::Left,
                2 => Removal::Expelled,
                3 => Removal::TimedOut,
                _ => return Err(Error::BadSnapshot("undefined removal reason")),
            };
            pending.insert(member, reason);
        }

        let n = get_count(&mut r, "open vote count", MAX_OPEN_PROPOSALS)?;
        let mut polls = BTreeMap::new();
        let mut prev = None;
        for _ in 0..n {
            let poll = get_vote(&mut r, id)?;
            ascending(
                &mut prev,
                poll.proposal.id,
                "open votes out of order or twice",
            )?;
            polls.insert(poll.proposal.id, poll);
        }

        let n = get_count(&mut r, "decided vote count", MAX_DECIDED_TALLIES)?;
        let mut decided: VecDeque<Tally> = VecDeque::with_capacity(n);
        for _ in 0..n {
            decided.push_back(get_vote(&mut r, id)?.tally(id));
        }

        let n = get_count(&mut r, "seen message count", MAX_SEEN_MESSAGES)?;
        let mut seen = HashSet::with_capacity(n);
        let mut seen_order = VecDeque::with_capacity(n);
        for _ in 0..n {
            let digest: [u8; 32] = r.array().snap("seen message digest")?;
            if !seen.insert(digest) {
                return Err(Error::BadSnapshot("a seen message is listed twice"));
            }
            seen_order.push_back(digest);
        }

        let key = Zeroizing::new(r.array::<KEY_LEN>().snap("group key")?);
        let secret = Zeroizing::new(r.array::<KEY_LEN>().snap("agreement secret")?);
        let agreement = AgreementSecret::from_bytes(*secret);
        if r.remaining() != 0 {
            return Err(Error::BadSnapshot("bytes follow the last field"));
        }
        if members.get(&me).map(|m| m.agreement_key) != Some(agreement.public()) {
            return Err(Error::BadSnapshot(
                "this member is not in its member table under its agreement key",
            ));
        }
        Ok(Group {
            id,
            rules,
            keys,
            me,
            agreement,
            status,
            epoch,
            key: GroupKey::from_bytes(*key),
            transcript,
            members,
            pending,
            polls,
            decided,
            settle: None,
            deferred: VecDeque::new(),
            next_heartbeat,
            seen,
            seen_order,
            transmits: VecDeque::new(),
            events: VecDeque::new(),
        })
    }
}

/// Writes a count; every list is bounded by [`MAX_SEEN_MESSAGES`] or less, so it fits.
fn put_count(out: &mut Vec<u8>, n: usize) {
    out.extend_from_slice(&u16::try_from(n).unwrap_or(u16::MAX).to_be_bytes());
}

fn get_count(r: &mut Reader<'_>, what: &'static str, max: usize) -> Result<usize, Error> {
    let n = usize::from(r.u16().snap(what)?);
    if n > max {
        return Err(Error::TooLong { what, len: n, max });
    }
    Ok(n)
}

/// Keeps lists canonical: each entry strictly after the one before.
fn ascending<T: Ord + Copy>(
    prev: &mut Option<T>,
    next: T,
    what: &'static str,
) -> Result<(), Error> {
    if prev.is_some_and(|p| p >= next) {
        return Err(Error::BadSnapshot(what));
    }
    *prev = Some(next);
    Ok(())
}

/// A signed packet (a proposal or a ballot, at most a few hundred bytes).
fn put_packet(out: &mut Vec<u8>, packet: &Unchecked) {
    let bytes = packet.encode();
    out.extend_from_slice(&u16::try_from(bytes.len()).unwrap_or(u16::MAX).to_be_bytes());
    out.extend_from_slice(&bytes);
}

fn get_packet(r: &mut Reader<'_>, group: GroupId) -> Result<Unchecked, Error> {
    let len = usize::from(r.u16().snap("vote packet length")?);
    match wire::decode(r.take(len).snap("vote packet")?)? {
        Packet::Signed(u) if u.group == group => Ok(u),
        _ => Err(Error::BadSnapshot(
            "a vote packet is not a signed packet of this group",
        )),
    }
}

/// An open or decided vote, from its tally (an open vote's provisional one).
fn put_vote(out: &mut Vec<u8>, t: &Tally) {
    put_packet(
        out,
        &Unchecked {
            group: t.group,
            sender: t.proposer,
            body: Body::Proposal(t.proposal.clone()),
            signature: t.proposal_signature,
        },
    );
    put_count(out, t.eligible.len());
    for voter in &t.eligible {
        out.extend_from_slice(&voter.0);
    }
    put_count(out, t.ballots.len());
    for b in &t.ballots {
        put_packet(
            out,
            &Unchecked {
                group: t.group,
                sender: b.voter,
                body: Body::Ballot(b.ballot),
                signature: b.signature,
            },
        );
    }
}

fn get_vote(r: &mut Reader<'_>, group: GroupId) -> Result<Poll, Error> {
    let packet = get_packet(r, group)?;
    let Body::Proposal(proposal) = packet.body else {
        return Err(Error::BadSnapshot("a vote does not start with a proposal"));
    };
    let n = get_count(r, "eligible voter count", MAX_MEMBERS)?;
    let mut eligible = BTreeSet::new();
    let mut prev = None;
    for _ in 0..n {
        let voter = MemberId(r.array().snap("eligible voter")?);
        ascending(
            &mut prev,
            voter,
            "eligible voters out of order or listed twice",
        )?;
        eligible.insert(voter);
    }
    let mut poll = Poll {
        proposer: packet.sender,
        proposal,
        proposal_signature: packet.signature,
        eligible,
        ballots: BTreeMap::new(),
    };
    let n = get_count(r, "ballot count", poll.eligible.len())?;
    let mut prev = None;
    for _ in 0..n {
        let packet = get_packet(r, group)?;
        let Body::Ballot(ballot) = packet.body else {
            return Err(Error::BadSnapshot("a vote's ballot is not a ballot"));
        };
        ascending(&mut prev, packet.sender, "ballots out of order or twice")?;
        poll.restore(CastBallot {
            voter: packet.sender,
            ballot,
            signature: packet.signature,
        })?;
    }
    Ok(poll)
}
