//! Votes: an open proposal collects signed ballots until its deadline, then its [`Tally`]
//! decides. The tally keeps the proposal and every counted ballot with their signatures, so
//! any member can recompute it ([`Tally::verify`]) instead of trusting whoever reports it.
//!
//! Rules: one ballot per eligible voter (the members when the proposal opened, the subject of
//! an expulsion excepted); a ballot counts if it was cast no later than the deadline; ballots
//! are accepted until the deadline plus [`CLOCK_SKEW_SECS`] (so one cast in time but delivered
//! a little late still counts), then the tally closes. It also closes as soon as every
//! eligible voter has voted. The majority of the counted ballots decides; a tie, or no ballot
//! at all, refuses.

use std::collections::{BTreeMap, BTreeSet};

use psp_onion::crypto::Sr25519Signature;

use crate::error::Error;
use crate::ids::{GroupId, MemberId, CLOCK_SKEW_SECS};
use crate::wire::{Ballot, Body, Proposal, Unchecked};

/// What a tally decided.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// More accepting than refusing ballots.
    Accepted,
    /// As many or more refusing ballots (ties refuse).
    Refused,
}

/// One ballot as cast: the voter, its choice and its signature.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CastBallot {
    /// The voter.
    pub voter: MemberId,
    /// The ballot.
    pub ballot: Ballot,
    /// The voter's signature on the ballot packet.
    pub signature: Sr25519Signature,
}

impl CastBallot {
    fn verify(&self, group: GroupId) -> Result<(), Error> {
        Unchecked {
            group,
            sender: self.voter,
            body: Body::Ballot(self.ballot),
            signature: self.signature,
        }
        .check()
        .map(|_| ())
    }
}

/// A closed vote: the signed proposal, the eligible voters, the counted ballots, the result.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tally {
    /// The group.
    pub group: GroupId,
    /// Who proposed.
    pub proposer: MemberId,
    /// The proposal.
    pub proposal: Proposal,
    /// The proposer's signature on it.
    pub proposal_signature: Sr25519Signature,
    /// Who could vote.
    pub eligible: Vec<MemberId>,
    /// The counted ballots, by voter.
    pub ballots: Vec<CastBallot>,
    /// Accepting ballots.
    pub accepts: usize,
    /// Refusing ballots.
    pub refuses: usize,
    /// The result.
    pub outcome: Outcome,
}

impl Tally {
    /// Recomputes the tally from the signed proposal and ballots: checks every signature,
    /// that each voter is eligible and votes once, that each ballot was cast by the deadline,
    /// and that the counts and the outcome follow. A member runs this on a tally it is shown.
    pub fn verify(&self) -> Result<(), Error> {
        Unchecked {
            group: self.group,
            sender: self.proposer,
            body: Body::Proposal(self.proposal.clone()),
            signature: self.proposal_signature,
        }
        .check()?;
        let eligible: BTreeSet<MemberId> = self.eligible.iter().copied().collect();
        let mut seen = BTreeSet::new();
        let (mut accepts, mut refuses) = (0, 0);
        for b in &self.ballots {
            b.verify(self.group)?;
            check_ballot(&self.proposal, &eligible, &seen, b)?;
            seen.insert(b.voter);
            if b.ballot.accept {
                accepts += 1;
            } else {
                refuses += 1;
            }
        }
        if (accepts, refuses, outcome(accepts, refuses))
            != (self.accepts, self.refuses, self.outcome)
        {
            return Err(Error::TallyMismatch { accepts, refuses });
        }
        Ok(())
    }
}

fn outcome(accepts: usize, refuses: usize) -> Outcome {
    if accepts > refuses {
        Outcome::Accepted
    } else {
        Outcome::Refused
    }
}

/// The checks every ballot passes, signature apart.
fn check_ballot(
    proposal: &Proposal,
    eligible: &BTreeSet<MemberId>,
    voted: &BTreeSet<MemberId>,
    b: &CastBallot,
) -> Result<(), Error> {
    let id = proposal.id;
    if b.ballot.proposal != id {
        return Err(Error::UnknownProposal {
            id: b.ballot.proposal,
        });
    }
    if !eligible.contains(&b.voter) {
        return Err(Error::NotEligible { voter: b.voter, id });
    }
    if voted.contains(&b.voter) {
        return Err(Error::DuplicateBallot { voter: b.voter, id });
    }
    if b.ballot.cast_at > proposal.deadline {
        return Err(Error::LateBallot {
            id,
            cast_at: b.ballot.cast_at,
            deadline: proposal.deadline,
        });
    }
    Ok(())
}

/// An open vote.
#[derive(Clone, Debug)]
pub(crate) struct Poll {
    pub proposer: MemberId,
    pub proposal: Proposal,
    pub proposal_signature: Sr25519Signature,
    pub eligible: BTreeSet<MemberId>,
    /// Bounded by `eligible` (one per voter).
    pub ballots: BTreeMap<MemberId, CastBallot>,
}

impl Poll {
    /// When ballots stop being accepted and the tally closes.
    pub fn closes_at(&self) -> u64 {
        self.proposal.deadline.saturating_add(CLOCK_SKEW_SECS)
    }

    /// Whether every eligible voter has voted.
    pub fn complete(&self) -> bool {
        self.ballots.len() == self.eligible.len()
    }

    /// Adds a ballot whose signature was checked. `now` bounds how far in the future its
    /// cast time may be.
    pub fn add(&mut self, b: CastBallot, now: u64) -> Result<(), Error> {
        let voted: BTreeSet<MemberId> = self.ballots.keys().copied().collect();
        check_ballot(&self.proposal, &self.eligible, &voted, &b)?;
        if b.ballot.cast_at > now.saturating_add(CLOCK_SKEW_SECS) {
            return Err(Error::StaleTime {
                what: "ballot",
                time: b.ballot.cast_at,
                now,
            });
        }
        self.ballots.insert(b.voter, b);
        Ok(())
    }

    /// Adds a ballot read back from a snapshot: the checks of [`Poll::add`] but the clock's,
    /// which the ballot passed when it was received.
    pub fn restore(&mut self, b: CastBallot) -> Result<(), Error> {
        let voted: BTreeSet<MemberId> = self.ballots.keys().copied().collect();
        check_ballot(&self.proposal, &self.eligible, &voted, &b)?;
        self.ballots.insert(b.voter, b);
        Ok(())
    }

    /// The tally of the ballots in hand.
    pub fn tally(&self, group: GroupId) -> Tally {
        let accepts = self.ballots.values().filter(|b| b.ballot.accept).count();
        let refuses = self.ballots.len() - accepts;
        Tally {
            group,
            proposer: self.proposer,
            proposal: self.proposal.clone(),
            proposal_signature: self.proposal_signature,
            eligible: self.eligible.iter().copied().collect(),
            ballots: self.ballots.values().cloned().collect(),
            accepts,
            refuses,
            outcome: outcome(accepts, refuses),
        }
    }
}
