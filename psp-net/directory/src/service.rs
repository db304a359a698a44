//! The discovery node's state machine: collects status reports, votes, computes the consensus,
//! signs it, gathers the other discovery nodes' signatures, and spots equivocation.
//!
//! Sans-IO, after quinn-proto: the caller feeds received bytes with `on_*(now, ..)`, calls
//! [`DiscoveryService::poll`] whenever time passes, and sends what it returns. For the
//! directory of period `p`, starting at `t0 = p × period_secs`:
//!
//! * before `t0` (during period `p - 1`) and until the vote, nodes' status reports for `p`
//!   are collected;
//! * at the first poll at or after `t0` the service signs and broadcasts its vote;
//! * at the first poll at or after `t0 + vote_window_secs` holding votes from a majority of the
//!   discovery set, it computes the consensus, signs it and broadcasts its signature;
//! * once the directory holds the threshold of signatures it is [`DiscoveryService::latest`].
//!
//! Everything held is bounded: three periods (the previous, the current, the next), at most
//! `max_reports` reports per period, one vote and one remembered signature per member of the
//! discovery set. A node's report only replaces its held one when it is newer, and reports
//! may not be dated more than [`MAX_CLOCK_SKEW_SECS`](super::MAX_CLOCK_SKEW_SECS) ahead, so a
//! node cannot make the service verify more than a few of its reports per second.

use std::collections::{BTreeMap, BTreeSet};

use super::signed::{check_time, statement_valid};
use super::{
    consensus, default_threshold, DirectoryError, DirectorySignature, Equivocation,
    SignedDirectory, SignedStatus, SignedVote, StatusReport, Vote, MAX_VOTE_ENTRIES,
};
use crate::crypto::{NodeId, Sr25519Keypair, Sr25519Signature};
use crate::registry::IdentityRegistry;

/// Timing and limits of a [`DiscoveryService`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// Length of a directory period, in seconds (at least 1).
    pub period_secs: u64,
    /// How long after a period's start votes are collected before the consensus is computed.
    pub vote_window_secs: u64,
    /// Most status reports held per period (capped at [`MAX_VOTE_ENTRIES`], so that every vote
    /// can be decoded).
    pub max_reports: usize,
    /// Signatures a directory needs; `None` for [`default_threshold`] of the discovery set.
    pub threshold: Option<usize>,
}

impl Default for Config {
    /// One-hour periods, a five-minute vote window.
    fn default() -> Self {
        Self {
            period_secs: 3_600,
            vote_window_secs: 300,
            max_reports: MAX_VOTE_ENTRIES,
            threshold: None,
        }
    }
}

/// What the service asks its driver to do.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Output {
    /// Send this [`SignedVote`] to the other discovery nodes.
    BroadcastVote(Vec<u8>),
    /// Send this [`DirectorySignature`] to the other discovery nodes.
    BroadcastSignature(Vec<u8>),
    /// A discovery node signed two different directories: submit it to the chain.
    Equivocation(Equivocation),
    /// The directory of `period` reached the threshold: [`DiscoveryService::latest`] has it.
    DirectoryComplete {
        /// The period.
        period: u64,
        /// The directory's hash.
        hash: [u8; 32],
    },
}

/// What the service holds for one period.
#[derive(Debug, Default)]
struct Round {
    reports: BTreeMap<NodeId, StatusReport>,
    votes: BTreeMap<NodeId, Vote>,
    voted: bool,
    /// Our consensus, its hash, and the valid signatures on it.
    signed: Option<(SignedDirectory, [u8; 32])>,
    /// The first valid signature seen from each signer, whatever it signed.
    seen: BTreeMap<NodeId, ([u8; 32], Sr25519Signature)>,
    /// Signers already reported for equivocating in this period.
    reported: BTreeSet<NodeId>,
    complete: bool,
}

/// One discovery node's directory protocol.
#[derive(Debug)]
pub struct DiscoveryService {
    keypair: Sr25519Keypair,
    id: NodeId,
    genesis: [u8; 32],
    config: Config,
    rounds: BTreeMap<u64, Round>,
    pending: Vec<Output>,
    latest: Option<SignedDirectory>,
}

impl DiscoveryService {
    /// A service signing with `keypair` (the node's key, elected to the discovery role) for the
    /// chain of `genesis`.
    pub fn new(keypair: Sr25519Keypair, genesis: [u8; 32], mut config: Config) -> Self {
        config.period_secs = config.period_secs.max(1);
        config.max_reports = config.max_reports.min(MAX_VOTE_ENTRIES);
        Self {
            id: NodeId(keypair.public()),
            keypair,
            genesis,
            config,
            rounds: BTreeMap::new(),
            pending: Vec::new(),
            latest: None,
        }
    }

    /// This node's id.
    pub fn id(&self) -> NodeId {
        self.id
    }

    /// The newest directory holding the threshold of signatures.
    pub fn latest(&self) -> Option<&SignedDirectory> {
        self.latest.as_ref()
    }

    /// Our consensus for `period`, with the signatures gathered so far (maybe fewer than the
    /// threshold).
    pub fn building(&self, period: u64) -> Option<&SignedDirectory> {
        self.rounds.get(&period)?.signed.as_ref().map(|(d, _)| d)
    }

    /// The period at `now`.
    pub fn period_at(&self, now: u64) -> u64 {
        now / self.config.period_secs
    }

    /// Takes a node's [`SignedStatus`] for the current or the next period, before this
    /// service voted on it. Keeps the newest report of each node.
    pub fn on_status(
        &mut self,
        now: u64,
        bytes: &[u8],
        registry: &dyn IdentityRegistry,
    ) -> Result<(), DirectoryError> {
        let signed = SignedStatus::decode(bytes)?;
        let period = signed.unverified().period;
        let max = self.config.max_reports;
        let current = self.period_at(now);
        let round = self.round(now, "status", period, 0)?;
        if round.voted {
            return Err(closed("status", period, current));
        }
        let held = round.reports.get(&signed.unverified().node);
        if let Some(held) = held.filter(|h| h.issued_at >= signed.unverified().issued_at) {
            return Err(DirectoryError::StaleStatus {
                node: held.node,
                period,
                issued_at: signed.unverified().issued_at,
                held: held.issued_at,
            });
        }
        if held.is_none() && round.reports.len() >= max {
            return Err(DirectoryError::TooManyReports {
                node: signed.unverified().node,
                period,
                max,
            });
        }
        let report = signed.verify(now, period, registry)?;
        round.reports.insert(report.node, report);
        Ok(())
    }

    /// Takes a [`SignedVote`] for the current or the next period, before this service computed
    /// its consensus. The same vote again is accepted; a different one from the same voter is
    /// refused.
    pub fn on_vote(
        &mut self,
        now: u64,
        bytes: &[u8],
        discovery_set: &[NodeId],
    ) -> Result<(), DirectoryError> {
        let signed = SignedVote::decode(bytes)?;
        let period = signed.unverified().period;
        let current = self.period_at(now);
        let round = self.round(now, "vote", period, 0)?;
        if round.signed.is_some() {
            return Err(closed("vote", period, current));
        }
        let vote = signed.verify(period, discovery_set)?;
        match round.votes.get(&vote.voter) {
            Some(held) if *held == vote => Ok(()),
            Some(_) => Err(DirectoryError::ConflictingVote {
                voter: vote.voter,
                period,
            }),
            None => {
                round.votes.insert(vote.voter, vote);
                Ok(())
            }
        }
    }

    /// Takes another discovery node's [`DirectorySignature`] (previous, current or next
    /// period). A signature on our directory is added to it; one on a different directory
    /// than the signer signed before is an equivocation, output at the next poll.
    pub fn on_signature(
        &mut self,
        now: u64,
        bytes: &[u8],
        discovery_set: &[NodeId],
    ) -> Result<(), DirectoryError> {
        let s = DirectorySignature::decode(bytes)?;
        self.round(now, "directory signature", s.period, 1)?;
        s.verify(&self.genesis, discovery_set)?;
        let threshold = self.threshold(discovery_set);
        self.record(s.period, s.signer, s.payload_hash, s.signature, threshold);
        Ok(())
    }

    /// Takes a whole [`SignedDirectory`] (previous, current or next period), e.g. fetched from
    /// another discovery node. Its valid signatures are recorded as by
    /// [`on_signature`](Self::on_signature); if it is valid at `now` with the threshold of
    /// signatures and newer than [`latest`](Self::latest), it becomes the latest.
    pub fn on_directory(
        &mut self,
        now: u64,
        bytes: &[u8],
        discovery_set: &[NodeId],
    ) -> Result<(), DirectoryError> {
        let sd = SignedDirectory::decode(bytes)?;
        let period = sd.directory.period;
        self.round(now, "directory", period, 1)?;
        let hash = sd.directory.hash();
        let threshold = self.threshold(discovery_set);
        let mut valid = 0;
        for (signer, sig) in &sd.signatures {
            if discovery_set.contains(signer)
                && statement_valid(&self.genesis, period, &hash, signer, sig)
            {
                valid += 1;
                self.record(period, *signer, hash, *sig, threshold);
            }
        }
        check_time(&sd.directory, now)?;
        if valid < threshold.max(1) {
            return Err(DirectoryError::TooFewSignatures {
                period,
                valid,
                threshold: threshold.max(1),
            });
        }
        if self
            .latest
            .as_ref()
            .is_none_or(|l| l.directory.period < period)
        {
            self.latest = Some(sd);
            self.pending
                .push(Output::DirectoryComplete { period, hash });
        }
        Ok(())
    }

    /// Advances the protocol to `now`: votes, computes and signs the consensus when due, and
    /// returns what to send and report. A service whose key is not in `discovery_set` only
    /// reports.
    pub fn poll(&mut self, now: u64, discovery_set: &[NodeId]) -> Vec<Output> {
        let current = self.period_at(now);
        self.prune(current);
        if discovery_set.contains(&self.id) {
            self.vote(current);
            self.sign_consensus(now, current, discovery_set);
        }
        std::mem::take(&mut self.pending)
    }

    fn vote(&mut self, period: u64) {
        let round = self.rounds.entry(period).or_default();
        if round.voted {
            return;
        }
        round.voted = true;
        let vote = Vote::from_reports(period, self.id, round.reports.values());
        // Reports were checked on arrival and are at most MAX_VOTE_ENTRIES: signing cannot fail.
        if let Ok(signed) = SignedVote::sign(vote.clone(), &self.keypair) {
            round.votes.insert(self.id, vote);
            self.pending.push(Output::BroadcastVote(signed.encode()));
        }
    }

    fn sign_consensus(&mut self, now: u64, period: u64, discovery_set: &[NodeId]) {
        let t0 = period.saturating_mul(self.config.period_secs);
        if now < t0.saturating_add(self.config.vote_window_secs) {
            return;
        }
        let threshold = self.threshold(discovery_set);
        let round = self.rounds.entry(period).or_default();
        if round.signed.is_some() {
            return;
        }
        let votes: Vec<Vote> = round
            .votes
            .values()
            .filter(|v| discovery_set.contains(&v.voter))
            .cloned()
            .collect();
        if votes.len() < default_threshold(discovery_set.len()) {
            return;
        }
        let valid_until = t0.saturating_add(self.config.period_secs.saturating_mul(2));
        let mut sd = SignedDirectory::new(consensus(period, t0, valid_until, &votes));
        let hash = sd.directory.hash();
        let mine = sd.sign(&self.keypair, &self.genesis);
        // Signatures that arrived before we had the directory.
        for (signer, (h, sig)) in &round.seen {
            if *h == hash {
                sd.add_signature(*signer, *sig);
            }
        }
        round.signed = Some((sd, hash));
        self.pending.push(Output::BroadcastSignature(mine.encode()));
        self.record(period, self.id, hash, mine.signature, threshold);
    }

    /// Records a checked signature: remembers the signer's first statement, reports a second,
    /// different one, adds it to our directory when it is on it.
    fn record(
        &mut self,
        period: u64,
        signer: NodeId,
        hash: [u8; 32],
        sig: Sr25519Signature,
        threshold: usize,
    ) {
        let round = self.rounds.entry(period).or_default();
        match round.seen.get(&signer) {
            None => {
                round.seen.insert(signer, (hash, sig));
            }
            Some(&(first_hash, first_sig)) => {
                if first_hash != hash && round.reported.insert(signer) {
                    self.pending.push(Output::Equivocation(Equivocation {
                        offender: signer,
                        period,
                        first: (first_hash, first_sig),
                        second: (hash, sig),
                    }));
                }
            }
        }
        let Some((sd, ours)) = round.signed.as_mut() else {
            return;
        };
        if *ours != hash {
            return;
        }
        sd.add_signature(signer, sig);
        if !round.complete && sd.signatures.len() >= threshold.max(1) {
            round.complete = true;
            if self
                .latest
                .as_ref()
                .is_none_or(|l| l.directory.period <= period)
            {
                self.latest = Some(sd.clone());
            }
            self.pending
                .push(Output::DirectoryComplete { period, hash });
        } else if round.complete
            && self
                .latest
                .as_ref()
                .is_some_and(|l| l.directory.period == period && l.directory == sd.directory)
        {
            // Late signatures make the published directory more robust: keep them.
            self.latest = Some(sd.clone());
        }
    }

    fn threshold(&self, discovery_set: &[NodeId]) -> usize {
        self.config
            .threshold
            .unwrap_or_else(|| default_threshold(discovery_set.len()))
    }

    /// The round of `period` if it is open at `now`: from `behind` periods ago to the next.
    fn round(
        &mut self,
        now: u64,
        what: &'static str,
        period: u64,
        behind: u64,
    ) -> Result<&mut Round, DirectoryError> {
        let current = self.period_at(now);
        if period < current.saturating_sub(behind) || period > current.saturating_add(1) {
            return Err(closed(what, period, current));
        }
        self.prune(current);
        Ok(self.rounds.entry(period).or_default())
    }

    /// Forgets the periods before the previous one.
    fn prune(&mut self, current: u64) {
        self.rounds = self.rounds.split_off(&current.saturating_sub(1));
    }
}

fn closed(what: &'static str, period: u64, current: u64) -> DirectoryError {
    DirectoryError::RoundClosed {
        what,
        period,
        current,
    }
}

#[cfg(test)]
mod tests;
