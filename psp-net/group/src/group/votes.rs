//! Votes inside [`Group`]: opening proposals (a JOIN opens one at its contact), checking
//! received ones, closing tallies and applying what they decide (admission and its welcome,
//! expulsion).

use std::collections::BTreeMap;

use super::{join, Event, Group, Member, Removal};
use crate::crypto;
use crate::error::Error;
use crate::ids::{
    AgreementKey, MemberId, ProposalId, CLOCK_SKEW_SECS, MAX_DECIDED_TALLIES, MAX_OPEN_PROPOSALS,
};
use crate::vote::{Outcome, Poll, Tally};
use crate::wire::{self, Action, Body, Join, Proposal, Unchecked, Welcome, WelcomeSecret};

impl Group {
    pub(super) fn open_proposal(
        &mut self,
        now: u64,
        action: Action,
        rng: &mut dyn rand_core::CryptoRngCore,
    ) -> Result<ProposalId, Error> {
        let mut id = ProposalId(rng.next_u64());
        while self.polls.contains_key(&id) || self.tally(id).is_some() {
            id = ProposalId(rng.next_u64());
        }
        let proposal = Proposal {
            id,
            deadline: now.saturating_add(u64::from(self.rules.vote_secs)),
            action,
        };
        self.check_proposal(now, &self.me.clone(), &proposal)?;
        let (bytes, signature) = wire::sign(self.id, &self.keys, &Body::Proposal(proposal.clone()));
        self.insert_poll(self.me, proposal, signature);
        self.broadcast(bytes);
        Ok(id)
    }

    /// The checks of a proposal, ours or received.
    pub(super) fn check_proposal(
        &self,
        now: u64,
        proposer: &MemberId,
        proposal: &Proposal,
    ) -> Result<(), Error> {
        let id = proposal.id;
        if !self.members.contains_key(proposer) {
            return Err(Error::NotAMember { who: *proposer });
        }
        if self.polls.contains_key(&id) || self.tally(id).is_some() {
            return Err(Error::DuplicateProposal { id });
        }
        let subject = proposal.action.subject();
        if self
            .polls
            .values()
            .any(|p| p.proposal.action.subject() == subject)
        {
            return Err(Error::DuplicateProposal { id });
        }
        if self.polls.len() >= MAX_OPEN_PROPOSALS {
            return Err(Error::TooManyProposals {
                max: MAX_OPEN_PROPOSALS,
            });
        }
        let latest = now
            .saturating_add(u64::from(self.rules.vote_secs))
            .saturating_add(CLOCK_SKEW_SECS);
        if proposal.deadline <= now || proposal.deadline > latest {
            return Err(Error::BadDeadline {
                deadline: proposal.deadline,
                now,
            });
        }
        match &proposal.action {
            Action::Admit {
                newcomer,
                join,
                join_signature,
            } => {
                if self.members.contains_key(newcomer) {
                    return Err(Error::AlreadyMember { who: *newcomer });
                }
                self.check_capacity()?;
                Unchecked {
                    group: self.id,
                    sender: *newcomer,
                    body: Body::Join(join.clone()),
                    signature: *join_signature,
                }
                .check()?;
                if !crypto::agreement_key_usable(&join.agreement_key) {
                    return Err(Error::BadAgreementKey { member: *newcomer });
                }
            }
            Action::Expel { member } => {
                if !self.members.contains_key(member) {
                    return Err(Error::NotAMember { who: *member });
                }
            }
        }
        Ok(())
    }

    pub(super) fn check_capacity(&self) -> Result<(), Error> {
        let limit = self.rules.limit();
        if self.members.len() >= limit {
            return Err(Error::GroupFull {
                members: self.members.len(),
                limit,
            });
        }
        Ok(())
    }

    pub(super) fn insert_poll(
        &mut self,
        proposer: MemberId,
        proposal: Proposal,
        signature: psp_onion::crypto::Sr25519Signature,
    ) {
        let subject = proposal.action.subject();
        let eligible = self
            .members
            .keys()
            .filter(|m| **m != subject)
            .copied()
            .collect();
        self.push_event(Event::ProposalOpened {
            id: proposal.id,
            proposer,
            action: proposal.action.clone(),
            deadline: proposal.deadline,
        });
        self.polls.insert(
            proposal.id,
            Poll {
                proposer,
                proposal,
                proposal_signature: signature,
                eligible,
                ballots: BTreeMap::new(),
            },
        );
    }

    pub(super) fn close_polls(&mut self, now: u64, rng: &mut dyn rand_core::CryptoRngCore) {
        let closing: Vec<ProposalId> = self
            .polls
            .iter()
            .filter(|(_, p)| now >= p.closes_at() || p.complete())
            .map(|(id, _)| *id)
            .collect();
        for id in closing {
            let Some(poll) = self.polls.remove(&id) else {
                continue;
            };
            let tally = poll.tally(self.id);
            if self.decided.len() >= MAX_DECIDED_TALLIES {
                self.decided.pop_front();
            }
            self.decided.push_back(tally.clone());
            self.push_event(Event::Decided(Box::new(tally.clone())));
            if tally.outcome == Outcome::Accepted {
                self.apply_decision(now, &tally, rng);
            }
        }
    }

    pub(super) fn apply_decision(
        &mut self,
        now: u64,
        tally: &Tally,
        rng: &mut dyn rand_core::CryptoRngCore,
    ) {
        match &tally.proposal.action {
            Action::Admit { newcomer, join, .. } => {
                if self.members.contains_key(newcomer) {
                    return;
                }
                if self.check_capacity().is_err() {
                    self.push_event(Event::AdmissionDropped {
                        member: *newcomer,
                        members: self.members.len(),
                        limit: self.rules.limit(),
                    });
                    return;
                }
                self.members.insert(
                    *newcomer,
                    Member {
                        agreement_key: join.agreement_key,
                        last_seen: now,
                        last_signed_time: join.sent_at,
                        key_epoch: self.epoch,
                    },
                );
                // A competing rollout would not know the newcomer: the epoch is settled.
                self.settle = None;
                self.push_event(Event::MemberAdded { member: *newcomer });
                if tally.proposer == self.me {
                    self.send_welcome(*newcomer, &join.agreement_key, rng);
                }
            }
            Action::Expel { member } => self.mark_for_removal(*member, Removal::Expelled),
        }
    }

    pub(super) fn send_welcome(
        &mut self,
        newcomer: MemberId,
        agreement_key: &AgreementKey,
        rng: &mut dyn rand_core::CryptoRngCore,
    ) {
        let secret = WelcomeSecret {
            rules: self.rules,
            epoch: self.epoch,
            key: *self.key.bytes(),
            transcript: self.transcript,
            members: self
                .members
                .iter()
                .map(|(id, m)| (*id, m.agreement_key))
                .collect(),
        };
        let plaintext = wire::encode_welcome_secret(&secret);
        let context = join::welcome_context(self.id, &self.me, &newcomer);
        // The key was checked usable when the proposal was; a failure only loses the welcome.
        let Ok(sealed) = crypto::seal_to(agreement_key, &context, &plaintext, rng) else {
            return;
        };
        let body = Body::Welcome(Welcome { newcomer, sealed });
        let (bytes, _) = wire::sign(self.id, &self.keys, &body);
        self.push_transmit(vec![newcomer], bytes);
    }

    pub(super) fn on_join(
        &mut self,
        now: u64,
        newcomer: MemberId,
        join: &Join,
        signature: &psp_onion::crypto::Sr25519Signature,
        rng: &mut dyn rand_core::CryptoRngCore,
    ) -> Result<(), Error> {
        if join.sent_at.abs_diff(now) > CLOCK_SKEW_SECS {
            return Err(Error::StaleTime {
                what: "join",
                time: join.sent_at,
                now,
            });
        }
        self.open_proposal(
            now,
            Action::Admit {
                newcomer,
                join: join.clone(),
                join_signature: *signature,
            },
            rng,
        )
        .map(|_| ())
    }
}
