//! Rollouts inside [`Group`]: leading one when removals are due, checking a received one
//! (epoch, member lists, leader, reasons for each removal, the tie-break against a competing
//! rollout), keeping one whose removals we do not yet see as justified, and applying one.

use std::collections::{BTreeMap, BTreeSet};

use super::{Deferred, Event, Group, Member, Removal, Settle, Status, MAX_DEFERRED_ROLLOUTS};
use crate::crypto::GroupKey;
use crate::error::Error;
use crate::ids::{AgreementKey, KeyEpoch, MemberId};
use crate::rollout::{self, Rank};
use crate::wire::{self, Body, Packet, Rollout};

impl Group {
    /// A member may be dropped by someone else's rollout if we also mean to drop it, or if it
    /// has been silent for all but one heartbeat period of the timeout (views lag by about a
    /// heartbeat).
    pub(super) fn removal_justified(
        &self,
        member: &MemberId,
        members: &BTreeMap<MemberId, Member>,
        pending: &BTreeMap<MemberId, Removal>,
        now: u64,
    ) -> bool {
        if *member == self.me {
            return pending.get(member) == Some(&Removal::Expelled);
        }
        if pending.contains_key(member) {
            return true;
        }
        let grace = u64::from(
            self.rules
                .timeout_secs
                .saturating_sub(self.rules.heartbeat_secs),
        );
        members
            .get(member)
            .is_some_and(|m| now.saturating_sub(m.last_seen) >= grace)
    }

    pub(super) fn lead_rollout(&mut self, rng: &mut dyn rand_core::CryptoRngCore) {
        if self.pending.is_empty() || self.pending.contains_key(&self.me) {
            return;
        }
        // A member that has heard from fewer than half of the group within the timeout is more
        // likely the one cut off (back from a long absence) than the others all dead: it does
        // not drop them. Leaving and expelled members are dropped whatever the count.
        let timed_out = self
            .pending
            .values()
            .filter(|r| **r == Removal::TimedOut)
            .count();
        if (self.members.len() - timed_out) * 2 < self.members.len() {
            return;
        }
        let Some(epoch) = self.epoch.next() else {
            return;
        };
        let kept: Vec<MemberId> = self
            .members
            .keys()
            .filter(|m| !self.pending.contains_key(m))
            .copied()
            .collect();
        if rollout::leader(self.id, epoch, &self.transcript, &kept) != Some(self.me) {
            return;
        }
        let keep: Vec<(MemberId, AgreementKey)> = kept
            .iter()
            .filter_map(|m| self.members.get(m).map(|x| (*m, x.agreement_key)))
            .collect();
        let removed: Vec<MemberId> = self.pending.keys().copied().collect();
        let key = GroupKey::random(rng);
        // Agreement keys are checked usable on admission, so sealing does not fail.
        let Ok(bytes) = rollout::build(
            self.id,
            &self.keys,
            epoch,
            removed.clone(),
            &keep,
            &key,
            rng,
        ) else {
            return;
        };
        let recipients = self.others(&self.members);
        let rank = Rank {
            leader_hash: rollout::leader_hash(self.id, epoch, &self.transcript, &self.me),
            transcript: rollout::transcript(&bytes),
        };
        let kept: BTreeSet<MemberId> = kept.into_iter().collect();
        self.apply_rollout(false, epoch, self.me, rank, &kept, &removed, key);
        self.push_transmit(recipients, bytes);
    }

    pub(super) fn defer(&mut self, bytes: &[u8], now: u64) {
        if self.deferred.iter().any(|d| d.bytes == bytes) {
            return;
        }
        if self.deferred.len() >= MAX_DEFERRED_ROLLOUTS {
            self.deferred.pop_front();
        }
        self.deferred.push_back(Deferred {
            bytes: bytes.to_vec(),
            received_at: now,
        });
    }

    pub(super) fn retry_deferred(&mut self, now: u64) {
        let timeout = u64::from(self.rules.timeout_secs);
        let waiting = std::mem::take(&mut self.deferred);
        for d in waiting {
            if !self.is_active() || now >= d.received_at.saturating_add(timeout) {
                continue;
            }
            let Ok(Packet::Signed(unchecked)) = wire::decode(&d.bytes) else {
                continue;
            };
            let sender = unchecked.sender;
            let Body::Rollout(r) = &unchecked.body else {
                continue;
            };
            match self.on_rollout(now, sender, r, &d.bytes) {
                Ok(()) => self.touch(sender, now),
                Err(Error::UnjustifiedRemoval { .. }) => self.deferred.push_back(d),
                Err(_) => {}
            }
        }
    }

    /// Checks a rollout (signature already checked) and applies it. See the module docs of
    /// [`crate::rollout`] for the leader draw and the tie-break.
    pub(super) fn on_rollout(
        &mut self,
        now: u64,
        sender: MemberId,
        r: &Rollout,
        bytes: &[u8],
    ) -> Result<(), Error> {
        let compete = if Some(r.epoch) == self.epoch.next() {
            false
        } else if r.epoch == self.epoch && self.settle.is_some() {
            true
        } else {
            return Err(Error::WrongEpoch {
                found: r.epoch,
                current: self.epoch,
            });
        };
        let (members, pending, seed) = match (&self.settle, compete) {
            (Some(s), true) => (&s.prev_members, &s.prev_pending, &s.prev_transcript),
            _ => (&self.members, &self.pending, &self.transcript),
        };
        let kept: BTreeSet<MemberId> = r.keys.iter().map(|k| k.member).collect();
        let removed: BTreeSet<MemberId> = r.removed.iter().copied().collect();
        if kept.len() != r.keys.len() || removed.len() != r.removed.len() {
            return Err(Error::BadRollout("a member is listed twice"));
        }
        if !kept.is_disjoint(&removed) {
            return Err(Error::BadRollout("a member is both kept and removed"));
        }
        if kept.len() + removed.len() != members.len()
            || !kept.iter().chain(&removed).all(|m| members.contains_key(m))
        {
            return Err(Error::BadRollout(
                "its member list differs from this member's",
            ));
        }
        let leader = rollout::leader(self.id, r.epoch, seed, &kept)
            .ok_or(Error::BadRollout("it keeps no member"))?;
        if sender != leader {
            return Err(Error::NotLeader { sender, leader });
        }
        let rank = Rank {
            leader_hash: rollout::leader_hash(self.id, r.epoch, seed, &sender),
            transcript: rollout::transcript(bytes),
        };
        if let (Some(s), true) = (&self.settle, compete) {
            if rank >= s.rank {
                return Err(Error::Superseded {
                    epoch: r.epoch,
                    sender,
                });
            }
        }
        if let Some(m) = removed
            .iter()
            .find(|m| !self.removal_justified(m, members, pending, now))
        {
            return Err(Error::UnjustifiedRemoval { member: *m });
        }
        if !kept.contains(&self.me) {
            self.deactivate(Status::Removed);
            self.push_event(Event::Removed { epoch: r.epoch });
            return Ok(());
        }
        let key = rollout::open_key(self.id, &sender, r, &self.me, &self.agreement)?;
        let removed: Vec<MemberId> = r.removed.clone();
        self.apply_rollout(compete, r.epoch, sender, rank, &kept, &removed, key);
        Ok(())
    }

    /// Moves to the rollout's epoch: the new key replaces (and so erases) the old one.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn apply_rollout(
        &mut self,
        compete: bool,
        epoch: KeyEpoch,
        leader: MemberId,
        rank: Rank,
        kept: &BTreeSet<MemberId>,
        removed: &[MemberId],
        key: GroupKey,
    ) {
        let (prev_members, prev_pending, prev_transcript) = match self.settle.take() {
            Some(s) if compete => (s.prev_members, s.prev_pending, s.prev_transcript),
            _ => (
                std::mem::take(&mut self.members),
                std::mem::take(&mut self.pending),
                self.transcript,
            ),
        };
        let members: BTreeMap<MemberId, Member> = prev_members
            .iter()
            .filter(|(id, _)| kept.contains(id))
            .map(|(id, m)| (*id, m.clone()))
            .collect();
        // Removals still owed: those of the base view and any noted since, minus the dropped.
        let pending: BTreeMap<MemberId, Removal> = prev_pending
            .iter()
            .chain(self.pending.iter())
            .filter(|(id, _)| kept.contains(id))
            .map(|(id, r)| (*id, *r))
            .collect();
        self.epoch = epoch;
        self.key = key;
        self.transcript = rank.transcript;
        self.members = members;
        self.pending = pending;
        self.settle = Some(Settle {
            rank,
            prev_members,
            prev_pending,
            prev_transcript,
        });
        self.push_event(Event::RolledOut {
            epoch,
            leader,
            removed: removed.to_vec(),
        });
    }
}
