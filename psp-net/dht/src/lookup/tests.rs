//! Lookup state machine tests on a toy network with perfect routing knowledge.

use std::cell::Cell;
use std::net::{IpAddr, Ipv4Addr};

use super::*;

/// A toy record: 8 bytes of seq, then 1 = valid, anything else = forged.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Toy(u64);

impl Versioned for Toy {
    fn seq(&self) -> u64 {
        self.0
    }
}

fn toy_bytes(seq: u64, valid: bool) -> Vec<u8> {
    let mut b = seq.to_be_bytes().to_vec();
    b.push(u8::from(valid));
    b
}

fn toy_check(bytes: &[u8]) -> Option<Toy> {
    let (seq, flag) = bytes.split_at_checked(8)?;
    let seq = u64::from_be_bytes(seq.try_into().ok()?);
    (flag == [1]).then_some(Toy(seq))
}

fn ident(i: u32) -> [u8; 32] {
    let mut k = [0u8; 32];
    k[..4].copy_from_slice(&i.to_be_bytes());
    k
}

fn peer(i: u32) -> PeerInfo {
    PeerInfo::new(ident(i), IpAddr::V4(Ipv4Addr::from(0x0a00_0000 | i)))
}

/// A network of `n` peers where everyone knows everyone.
struct Toynet {
    peers: Vec<PeerInfo>,
    target: DhtId,
}

impl Toynet {
    fn new(n: u32) -> Self {
        Self {
            peers: (0..n).map(peer).collect(),
            target: DhtId([0x3c; 32]),
        }
    }

    fn closest(&self, n: usize) -> Vec<PeerInfo> {
        let mut all = self.peers.clone();
        all.sort_by_key(|p| self.target.distance(p.id()));
        all.truncate(n);
        all
    }

    /// Runs `lookup` to the end; `answer` gives each queried peer's response (`None`: silent).
    /// Returns every peer queried, in order.
    fn run(
        &self,
        lookup: &mut Lookup<Toy>,
        answer: impl Fn(&PeerInfo) -> Option<Response>,
        validator: &impl Validator<Record = Toy>,
    ) -> Vec<[u8; 32]> {
        let mut now = Timestamp(0);
        let mut queried = Vec::new();
        for _ in 0..10_000 {
            if lookup.is_finished() {
                return queried;
            }
            let queries = lookup.poll_queries(now);
            // Nothing overdue survives a poll, abandoned queries included.
            assert!(lookup.next_deadline().is_none_or(|d| d > now));
            let mut answered = false;
            for (p, _) in queries {
                queried.push(*p.identity());
                if let Some(r) = answer(&p) {
                    answered = true;
                    assert!(lookup.on_response(p.identity(), r, validator));
                }
            }
            if !answered {
                now = lookup.next_deadline().unwrap_or(Timestamp(now.0 + 1));
            }
        }
        panic!("lookup did not finish");
    }

    fn honest(&self, p: &PeerInfo, record: Option<Vec<u8>>) -> Response {
        let _ = p;
        Response {
            closer: self.closest(K),
            record,
        }
    }
}

fn seeds(net: &Toynet) -> Vec<PeerInfo> {
    // The farthest k: the lookup must walk in.
    let mut all = net.peers.clone();
    all.sort_by_key(|p| std::cmp::Reverse(net.target.distance(p.id())));
    all.truncate(K);
    all
}

#[test]
fn keeps_the_highest_valid_seq_and_does_not_stop_at_the_first_record() {
    let net = Toynet::new(300);
    let holders = net.closest(K);
    let mut lookup = Lookup::new(net.target, seeds(&net), LookupConfig::default());
    let answer = |p: &PeerInfo| {
        let rank = holders.iter().position(|h| h == p);
        let record = match rank {
            // The closest ones hold a stale copy, some forged a newer one; one has the current.
            Some(0..=5) => Some(toy_bytes(6, true)),
            Some(6..=9) => Some(toy_bytes(99, false)),
            Some(15) => Some(toy_bytes(7, true)),
            _ => None,
        };
        Some(net.honest(p, record))
    };
    net.run(&mut lookup, answer, &toy_check);
    let result = lookup.result();
    assert_eq!(result.record, Some(Toy(7)));
    // Seeds (depth 1) referred to the holders (depth 2).
    assert_eq!(result.record_depth, 2);
    assert!(result.hops >= result.record_depth);
    assert_eq!(result.closest.len(), K);
}

#[test]
fn paths_are_disjoint_and_bounded_by_alpha() {
    let net = Toynet::new(500);
    let config = LookupConfig::default();
    let mut lookup: Lookup<Toy> = Lookup::new(net.target, seeds(&net), config);
    let first = lookup.poll_queries(Timestamp(0));
    assert_eq!(first.len(), config.alpha * config.paths);
    let again = lookup.poll_queries(Timestamp(0));
    assert!(again.is_empty(), "α per path in flight");
    for (p, _) in first {
        lookup.on_response(p.identity(), net.honest(&p, None), &toy_check);
    }
    let queried = net.run(&mut lookup, |p| Some(net.honest(p, None)), &toy_check);
    let mut unique = queried.clone();
    unique.sort_unstable();
    unique.dedup();
    assert_eq!(unique.len(), queried.len(), "no peer queried twice");
    let result = lookup.result();
    assert_eq!(result.record, None);
    // Every one of the k closest was found by some path.
    assert_eq!(result.closest, net.closest(K));
}

#[test]
fn silent_peers_time_out_and_the_lookup_still_ends() {
    let net = Toynet::new(200);
    let holders = net.closest(K);
    let silent = |p: &PeerInfo| p.identity()[3].is_multiple_of(3);
    let mut lookup = Lookup::new(net.target, seeds(&net), LookupConfig::default());
    let answer = |p: &PeerInfo| {
        if silent(p) {
            return None;
        }
        let record = holders.contains(p).then(|| toy_bytes(1, true));
        Some(net.honest(p, record))
    };
    net.run(&mut lookup, answer, &toy_check);
    let result = lookup.result();
    assert_eq!(result.record, Some(Toy(1)));
    assert!(result.closest.iter().all(|p| !silent(p)));
}

#[test]
fn explicit_timeout_fails_the_peer_and_late_answers_are_ignored() {
    let net = Toynet::new(50);
    let config = LookupConfig {
        paths: 1,
        alpha: 1,
        k: 2,
        ..LookupConfig::default()
    };
    let mut lookup: Lookup<Toy> = Lookup::new(net.target, net.closest(2), config);
    let q = lookup.poll_queries(Timestamp(0));
    assert_eq!(q.len(), 1);
    let first = q[0].0;
    lookup.on_timeout(first.identity());
    assert!(!lookup.on_response(first.identity(), Response::default(), &toy_check));
    assert!(!lookup.on_response(&ident(9_999), Response::default(), &toy_check));
    let q = lookup.poll_queries(Timestamp(1));
    assert_eq!(q.len(), 1);
    assert_ne!(q[0].0, first);
    // Past its deadline, the second counts as failed too: nothing is left, the lookup ends.
    assert_eq!(
        lookup.next_deadline(),
        Some(Timestamp(1 + config.query_timeout_ms))
    );
    assert!(lookup.poll_queries(Timestamp(5_000)).is_empty());
    assert!(lookup.is_finished());
    assert_eq!(lookup.result().queried, 2);
    assert!(lookup.result().closest.is_empty());
}

#[test]
fn records_that_cannot_win_skip_validation() {
    struct Counting<'a>(&'a Cell<usize>);
    impl Validator for Counting<'_> {
        type Record = Toy;
        fn validate(&self, bytes: &[u8]) -> Option<Toy> {
            self.0.set(self.0.get() + 1);
            toy_check(bytes)
        }
        fn claimed_seq(&self, bytes: &[u8]) -> Option<u64> {
            Some(u64::from_be_bytes(bytes.get(..8)?.try_into().ok()?))
        }
    }
    let net = Toynet::new(200);
    let checks = Cell::new(0);
    let mut lookup = Lookup::new(net.target, seeds(&net), LookupConfig::default());
    net.run(
        &mut lookup,
        |p| Some(net.honest(p, Some(toy_bytes(3, true)))),
        &Counting(&checks),
    );
    assert_eq!(lookup.result().record, Some(Toy(3)));
    assert_eq!(checks.get(), 1, "the same seq is checked once");
}

#[test]
fn excluded_and_disallowed_peers_are_never_queried() {
    struct OnlyEven;
    impl Validator for OnlyEven {
        type Record = Toy;
        fn validate(&self, bytes: &[u8]) -> Option<Toy> {
            toy_check(bytes)
        }
        fn peer_allowed(&self, p: &PeerInfo) -> bool {
            p.identity()[3].is_multiple_of(2)
        }
    }
    let net = Toynet::new(100);
    let me = net.closest(1)[0];
    let mut lookup = Lookup::new(net.target, vec![peer(2), me], LookupConfig::default());
    lookup.exclude(*me.identity());
    let queried = net.run(&mut lookup, |p| Some(net.honest(p, None)), &OnlyEven);
    assert!(!queried.contains(me.identity()));
    assert!(queried.iter().all(|id| id[3].is_multiple_of(2)));
    assert!(queried.len() > 1);
}

#[test]
fn no_seeds_means_finished_and_empty() {
    let lookup: Lookup<Toy> = Lookup::new(DhtId([0; 32]), Vec::new(), LookupConfig::default());
    assert!(lookup.is_finished());
    let r = lookup.result();
    assert!(r.record.is_none() && r.queried == 0 && r.hops == 0 && r.record_depth == 0);
}
