//! Discovery services run in one process: messages moved in memory, time jumped.

use super::super::tests::{key, node, registry, signed_report, GENESIS};
use super::*;
use crate::registry::StaticRegistry;
use crate::{find_equivocations, Directory};

const PERIOD_SECS: u64 = 1_000;
const WINDOW: u64 = 100;
/// The period the tests build; it starts at `T0`.
const P: u64 = 5;
const T0: u64 = P * PERIOD_SECS;

fn config() -> Config {
    Config {
        period_secs: PERIOD_SECS,
        vote_window_secs: WINDOW,
        ..Config::default()
    }
}

/// Discovery node `i` (0-based) has key seed `101 + i`.
fn discovery_key(i: usize) -> Sr25519Keypair {
    key(101 + i as u8)
}

struct Net {
    services: Vec<DiscoveryService>,
    up: Vec<usize>,
    set: Vec<NodeId>,
    registry: StaticRegistry,
}

impl Net {
    /// `n` discovery services, of which only `up` are ever polled or sent anything.
    fn new(n: usize, up: &[usize]) -> Self {
        Self {
            services: (0..n)
                .map(|i| DiscoveryService::new(discovery_key(i), GENESIS, config()))
                .collect(),
            up: up.to_vec(),
            set: (0..n).map(|i| NodeId(discovery_key(i).public())).collect(),
            registry: registry(20),
        }
    }

    /// Nodes 1..=20 report for period `P` to every live service.
    fn report_all(&mut self, now: u64) {
        for i in 1..=20 {
            let bytes = signed_report(i, P, now).encode();
            for &s in &self.up {
                self.services[s]
                    .on_status(now, &bytes, &self.registry)
                    .unwrap();
            }
        }
    }

    /// Polls the live services in turn, delivering each one's broadcasts to the other live
    /// services at once; returns the other outputs, by service.
    fn step(&mut self, now: u64) -> Vec<(usize, Output)> {
        let mut events = Vec::new();
        for &i in &self.up.clone() {
            for out in self.services[i].poll(now, &self.set) {
                match out {
                    Output::BroadcastVote(b) => {
                        for &j in self.up.iter().filter(|&&j| j != i) {
                            self.services[j].on_vote(now, &b, &self.set).unwrap();
                        }
                    }
                    Output::BroadcastSignature(b) => {
                        for &j in self.up.iter().filter(|&&j| j != i) {
                            self.services[j].on_signature(now, &b, &self.set).unwrap();
                        }
                    }
                    other => events.push((i, other)),
                }
            }
        }
        events
    }

    /// Runs period `P` from the reports to the complete directory.
    fn run(&mut self) -> Vec<(usize, Output)> {
        self.report_all(T0 - 100);
        let mut events = self.step(T0);
        events.extend(self.step(T0 + WINDOW));
        events.extend(self.step(T0 + WINDOW + 1));
        events
    }
}

#[test]
fn five_services_with_two_down_still_form_the_directory() {
    let mut net = Net::new(5, &[0, 1, 2]);
    let events = net.run();
    let latest: Vec<&SignedDirectory> = (0..3)
        .map(|i| net.services[i].latest().expect("directory formed"))
        .collect();
    let hash = latest[0].directory.hash();
    let mut completed: Vec<usize> = events
        .iter()
        .filter_map(|(i, o)| match o {
            Output::DirectoryComplete { period: P, hash: h } if *h == hash => Some(*i),
            _ => None,
        })
        .collect();
    completed.sort();
    assert_eq!(completed, vec![0, 1, 2]);
    for sd in &latest {
        assert_eq!(
            sd.encode(),
            latest[0].encode(),
            "identical bytes everywhere"
        );
        let v = sd.verify(&GENESIS, &net.set, 3, T0 + WINDOW + 1).unwrap();
        assert_eq!(v.signers().len(), 3);
        assert_eq!(v.directory().entries.len(), 20);
        assert_eq!(v.directory().valid_after, T0);
        assert_eq!(v.directory().valid_until, T0 + 2 * PERIOD_SECS);
    }
    assert!(net.services[3].latest().is_none());

    // A service that was down catches up from a fetched directory.
    let bytes = latest[0].encode();
    net.services[3]
        .on_directory(T0 + 500, &bytes, &net.set)
        .unwrap();
    assert_eq!(net.services[3].latest().map(|d| d.encode()), Some(bytes));
}

#[test]
fn no_consensus_without_votes_from_a_majority() {
    let mut net = Net::new(5, &[0, 1]);
    let events = net.run();
    assert!(events.is_empty());
    assert!(net.services[0].latest().is_none());
    assert!(net.services[0].building(P).is_none());
    // Even much later in the period.
    net.step(T0 + 900);
    assert!(net.services[0].building(P).is_none());
}

#[test]
fn an_equivocating_discovery_node_is_reported() {
    let mut net = Net::new(5, &[0, 1, 2]);
    net.run();
    let honest = net.services[0].latest().unwrap().clone();

    // Discovery node 2 also signs a directory without the last node.
    let mut forged: Directory = honest.directory.clone();
    forged.entries.pop();
    let mut forged_signed = SignedDirectory::new(forged.clone());
    let sig = forged_signed.sign(&discovery_key(2), &GENESIS);

    let found = find_equivocations(&honest, &forged_signed, &GENESIS);
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].offender, net.set[2]);
    assert_eq!(found[0].period, P);

    let now = T0 + WINDOW + 2;
    for i in [0, 1] {
        net.services[i]
            .on_signature(now, &sig.encode(), &net.set)
            .unwrap();
        // Twice: reported once.
        net.services[i]
            .on_signature(now, &sig.encode(), &net.set)
            .unwrap();
        let out = net.services[i].poll(now, &net.set);
        assert_eq!(out.len(), 1, "{out:?}");
        let Output::Equivocation(e) = &out[0] else {
            panic!("{out:?}")
        };
        assert_eq!(e.offender, net.set[2]);
        assert_eq!(e.period, P);
        assert_eq!(e.first.0, honest.directory.hash());
        assert_eq!(e.second.0, forged.hash());
        assert!(e.verify(&GENESIS));
        // The published directory is untouched.
        assert_eq!(net.services[i].latest(), Some(&honest));
    }

    // A service that was down sees it from two fetched directories.
    let s = &mut net.services[3];
    s.on_directory(now, &honest.encode(), &net.set).unwrap();
    assert!(matches!(
        s.on_directory(now, &forged_signed.encode(), &net.set),
        Err(DirectoryError::TooFewSignatures { valid: 1, .. })
    ));
    let out = s.poll(now, &net.set);
    assert!(out
        .iter()
        .any(|o| matches!(o, Output::Equivocation(e) if e.offender == net.set[2])));
}

#[test]
fn status_reports_are_bounded_and_refused_when_stale_or_out_of_round() {
    let reg = registry(20);
    let mut s = DiscoveryService::new(
        discovery_key(0),
        GENESIS,
        Config {
            max_reports: 3,
            ..config()
        },
    );
    let now = T0 - 100;
    for i in 1..=3 {
        s.on_status(now, &signed_report(i, P, now).encode(), &reg)
            .unwrap();
    }
    assert_eq!(
        s.on_status(now, &signed_report(4, P, now).encode(), &reg),
        Err(DirectoryError::TooManyReports {
            node: node(4),
            period: P,
            max: 3
        })
    );
    // The same report again (a replay or a flood) is stale; a newer one replaces it.
    assert!(matches!(
        s.on_status(now, &signed_report(1, P, now).encode(), &reg),
        Err(DirectoryError::StaleStatus { held, .. }) if held == now
    ));
    s.on_status(now + 1, &signed_report(1, P, now + 1).encode(), &reg)
        .unwrap();
    // Two periods ahead, or already past: not collected.
    assert!(matches!(
        s.on_status(now, &signed_report(5, P + 1, now).encode(), &reg),
        Err(DirectoryError::RoundClosed { what: "status", .. })
    ));
    assert!(matches!(
        s.on_status(now, &signed_report(5, P - 2, now).encode(), &reg),
        Err(DirectoryError::RoundClosed { .. })
    ));
    // Unknown nodes and malformed bytes.
    let mut fresh = DiscoveryService::new(discovery_key(1), GENESIS, config());
    assert_eq!(
        fresh.on_status(now, &signed_report(21, P, now).encode(), &reg),
        Err(DirectoryError::UnknownNode { node: node(21) })
    );
    assert!(matches!(
        s.on_status(now, &[1, 2, 3], &reg),
        Err(DirectoryError::Truncated { .. })
    ));
    // Once the service voted for P, reports for P are refused; those for P + 1 are taken.
    let set = [s.id()];
    let out = s.poll(T0, &set);
    let [Output::BroadcastVote(vote)] = &out[..] else {
        panic!("{out:?}")
    };
    let vote = SignedVote::decode(vote).unwrap().verify(P, &set).unwrap();
    assert_eq!(vote.entries.len(), 3);
    assert!(matches!(
        s.on_status(T0, &signed_report(2, P, T0).encode(), &reg),
        Err(DirectoryError::RoundClosed { .. })
    ));
    s.on_status(T0, &signed_report(2, P + 1, T0).encode(), &reg)
        .unwrap();
}

#[test]
fn votes_are_checked_and_conflicting_votes_refused() {
    let set: Vec<NodeId> = (0..3).map(|i| NodeId(discovery_key(i).public())).collect();
    let mut s = DiscoveryService::new(discovery_key(0), GENESIS, config());
    let vote = |entries: &[u8]| {
        let reports: Vec<_> = entries.iter().map(|&i| signed_report(i, P, T0)).collect();
        let v = Vote::from_reports(P, set[1], reports.iter().map(|r| r.unverified()));
        SignedVote::sign(v, &discovery_key(1)).unwrap().encode()
    };
    s.on_vote(T0, &vote(&[1, 2]), &set).unwrap();
    s.on_vote(T0, &vote(&[1, 2]), &set).unwrap();
    assert_eq!(
        s.on_vote(T0, &vote(&[1]), &set),
        Err(DirectoryError::ConflictingVote {
            voter: set[1],
            period: P
        })
    );
    assert!(matches!(
        s.on_vote(T0, &vote(&[1]), &set[..1]),
        Err(DirectoryError::NotInDiscoverySet { .. })
    ));
    let mut truncated = vote(&[1]);
    truncated.pop();
    assert!(matches!(
        s.on_vote(T0, &truncated, &set),
        Err(DirectoryError::Truncated { .. })
    ));
    // With its own vote, 2 of 3: the consensus forms after the window, then votes are late.
    s.poll(T0, &set);
    let out = s.poll(T0 + WINDOW, &set);
    assert!(
        matches!(&out[..], [Output::BroadcastSignature(_)]),
        "{out:?}"
    );
    let building = s.building(P).unwrap();
    assert_eq!(building.signatures.len(), 1);
    assert!(matches!(
        s.on_vote(T0 + WINDOW, &vote(&[1, 2]), &set),
        Err(DirectoryError::RoundClosed { what: "vote", .. })
    ));
}

#[test]
fn late_signatures_are_refused_and_bad_ones_reported() {
    let mut net = Net::new(3, &[0, 1, 2]);
    net.run();
    let honest = net.services[0].latest().unwrap().clone();
    let sig = DirectorySignature::sign(&honest.directory, &discovery_key(1), &GENESIS);
    // Two periods later the round is gone.
    let later = T0 + 2 * PERIOD_SECS;
    assert!(matches!(
        net.services[0].on_signature(later, &sig.encode(), &net.set),
        Err(DirectoryError::RoundClosed { .. })
    ));
    let mut bad = sig.clone();
    bad.signature[5] ^= 1;
    assert!(matches!(
        net.services[0].on_signature(T0 + WINDOW + 5, &bad.encode(), &net.set),
        Err(DirectoryError::BadSignature { .. })
    ));
}
