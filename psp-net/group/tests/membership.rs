//! The membership state machine, several members in one process with simulated time: joins
//! and votes, expulsion, timeouts, leaving, rollouts and their leader, group messages.

mod common;

use common::{id, keys, Net, GROUP, T0};
use psp_group::rollout;
use psp_group::wire::{self, Ballot, Body, Packet};
use psp_group::{AgreementSecret, Error, Event, GroupKey, KeyEpoch, Outcome, Removal, Rules};
use rand_core::OsRng;

fn decided(net: &Net, node: u8) -> Vec<psp_group::Tally> {
    net.events
        .get(&node)
        .into_iter()
        .flatten()
        .filter_map(|e| match e {
            Event::Decided(t) => Some((**t).clone()),
            _ => None,
        })
        .collect()
}

#[test]
fn join_accepted_by_vote_gives_the_newcomer_key_and_table() {
    let mut net = Net::with_members(2, Rules::default());
    net.assert_agree(&[0, 1]);
    // A third joins through member 1 (not the creator): 1 sends the welcome.
    let p = net.join(2, 1).expect("proposal");
    net.vote(0, p, true).expect("vote");
    assert!(
        !net.groups.contains_key(&2),
        "one of two ballots decides nothing yet"
    );
    net.vote(1, p, true).expect("vote");
    net.assert_agree(&[0, 1, 2]);
    assert!(net.saw(
        0,
        |e| matches!(e, Event::MemberAdded { member } if *member == id(2))
    ));
    // Every member's tally verifies from the signed ballots.
    for node in [0, 1] {
        let t = decided(&net, node).pop().expect("decided");
        assert_eq!((t.accepts, t.refuses, t.outcome), (2, 0, Outcome::Accepted));
        t.verify().expect("tally verifies");
    }
    // Messages reach every member byte-exact, sender authenticated.
    net.send(2, b"hello from the newcomer");
    for node in [0, 1] {
        assert_eq!(
            net.messages(node),
            vec![(id(2), b"hello from the newcomer".to_vec())]
        );
    }
}

#[test]
fn join_refused_by_vote_sends_no_welcome() {
    let mut net = Net::with_members(3, Rules::default());
    let p = net.join(3, 0).expect("proposal");
    net.vote(0, p, true).expect("vote");
    net.vote(1, p, false).expect("vote");
    net.vote(2, p, false).expect("vote");
    assert!(!net.groups.contains_key(&3));
    for node in 0..3 {
        let t = decided(&net, node).pop().expect("decided");
        assert_eq!((t.accepts, t.refuses, t.outcome), (1, 2, Outcome::Refused));
        assert_eq!(net.group(node).members().len(), 3);
    }
}

#[test]
fn a_tie_refuses() {
    let mut net = Net::with_members(4, Rules::default());
    let p = net.join(4, 0).expect("proposal");
    for (node, accept) in [(0, true), (1, true), (2, false), (3, false)] {
        net.vote(node, p, accept).expect("vote");
    }
    assert!(!net.groups.contains_key(&4));
    let t = decided(&net, 2).pop().expect("decided");
    assert_eq!((t.accepts, t.refuses, t.outcome), (2, 2, Outcome::Refused));
    t.verify().expect("tally verifies");
}

#[test]
fn only_ballots_cast_by_the_deadline_count() {
    let rules = Rules::default();
    let mut net = Net::with_members(3, rules);
    let p = net.join(3, 0).expect("proposal");
    let deadline = net.now + u64::from(rules.vote_secs);
    // Node 1 votes just before the deadline; its ballot is delivered just after: it counts.
    net.now = deadline - 1;
    net.vote_local(1, p, true).expect("vote");
    let held = net.drain();
    net.now = deadline + 5;
    net.deliver(held);
    // Node 2 votes after the deadline: refused, locally and by the others.
    let late = net.vote_local(2, p, false);
    assert!(matches!(late, Err(Error::LateBallot { .. })), "{late:?}");
    let forged_late = wire::encode_signed(
        GROUP,
        &keys(2),
        &Body::Ballot(Ballot {
            proposal: p,
            accept: false,
            cast_at: deadline + 5,
        }),
    );
    assert!(matches!(
        net.input(0, &forged_late),
        Err(Error::LateBallot { .. })
    ));
    // The tally closes at deadline + skew: one counted ballot, accepted.
    net.advance(60);
    assert!(
        net.groups.contains_key(&3),
        "admitted on 1 accept, 0 refuse"
    );
    let t = decided(&net, 0).pop().expect("decided");
    assert_eq!((t.accepts, t.refuses), (1, 0));
    // After closing, ballots are refused as closed.
    let after = net.vote_local(1, p, false);
    assert!(
        matches!(after, Err(Error::ProposalClosed { .. })),
        "{after:?}"
    );
}

#[test]
fn forged_duplicate_and_ineligible_ballots_are_refused_and_change_nothing() {
    let mut net = Net::with_members(3, Rules::default());
    let p = net.propose_expel(0, id(2));
    net.vote(1, p, true).expect("vote");
    let before = net.group(0).open_tally(p).expect("open");

    // A ballot from a non-member.
    let outsider = wire::encode_signed(
        GROUP,
        &keys(9),
        &Body::Ballot(Ballot {
            proposal: p,
            accept: true,
            cast_at: net.now,
        }),
    );
    assert!(matches!(
        net.input(0, &outsider),
        Err(Error::NotAMember { .. })
    ));
    // A ballot with a broken signature (node 1's, flipped to refuse).
    let mut forged = wire::encode_signed(
        GROUP,
        &keys(1),
        &Body::Ballot(Ballot {
            proposal: p,
            accept: true,
            cast_at: net.now,
        }),
    );
    let choice = forged.len() - 64 - 8 - 1;
    forged[choice] = 0;
    assert!(matches!(
        net.input(0, &forged),
        Err(Error::BadSignature { .. })
    ));
    // Node 1 again: a duplicate.
    let again = wire::encode_signed(
        GROUP,
        &keys(1),
        &Body::Ballot(Ballot {
            proposal: p,
            accept: false,
            cast_at: net.now,
        }),
    );
    assert!(matches!(
        net.input(0, &again),
        Err(Error::DuplicateBallot { .. })
    ));
    // The subject of an expulsion does not vote on it.
    let subject = net.vote_local(2, p, false);
    assert!(
        matches!(subject, Err(Error::NotEligible { .. })),
        "{subject:?}"
    );
    // A ballot for another group.
    let other_group = wire::encode_signed(
        psp_group::GroupId(GROUP.0 + 1),
        &keys(1),
        &Body::Ballot(Ballot {
            proposal: p,
            accept: true,
            cast_at: net.now,
        }),
    );
    assert!(matches!(
        net.input(0, &other_group),
        Err(Error::WrongGroup { .. })
    ));
    assert_eq!(net.group(0).open_tally(p), Some(before));

    // A tally shown with a changed ballot does not verify.
    let mut t = net.group(0).open_tally(p).expect("open");
    t.ballots[0].ballot.accept = false;
    t.refuses = 1;
    t.accepts = 0;
    assert!(matches!(t.verify(), Err(Error::BadSignature { .. })));
}

#[test]
fn expel_ends_in_a_rollout_the_expelled_member_cannot_read() {
    let mut net = Net::with_members(5, Rules::default());
    // Node 4 learns nothing about its expulsion: it keeps the old key, as a member that
    // copied the key before being expelled would.
    for from in 0..4 {
        net.blocked.insert((from, 4));
    }
    let old = net.group(4).key_fingerprint();
    let p = net.propose_expel(0, id(4));
    for node in 0..4 {
        net.vote(node, p, true).expect("vote");
    }
    net.assert_agree(&[0, 1, 2, 3]);
    let g = net.group(0);
    assert_eq!(g.epoch(), KeyEpoch(1));
    assert_ne!(g.key_fingerprint(), old, "a new key");
    assert!(!g.members().contains_key(&id(4)));
    assert!(net.saw(
        1,
        |e| matches!(e, Event::RolledOut { removed, .. } if removed == &vec![id(4)])
    ));

    net.clear();
    let sent = net.send(1, b"after the expulsion");
    for node in [0, 2, 3] {
        assert_eq!(
            net.messages(node),
            vec![(id(1), b"after the expulsion".to_vec())]
        );
    }
    assert_stale_key_cannot_open(&mut net, 4, &sent);
}

/// A member holding the previous key refuses a message of the new epoch, and cannot open it
/// either when its header is rewritten to name the old epoch.
fn assert_stale_key_cannot_open(net: &mut Net, node: u8, sent: &[u8]) {
    assert!(matches!(
        net.input(node, sent),
        Err(Error::UnknownEpoch { .. })
    ));
    let Ok(Packet::Message(mut m)) = wire::decode(sent) else {
        panic!("a group message");
    };
    m.epoch = net.group(node).epoch();
    assert!(matches!(
        net.input(node, &m.encode()),
        Err(Error::DoesNotOpen { .. })
    ));
    assert!(net.messages(node).is_empty());
}

#[test]
fn an_expelled_member_that_hears_the_vote_sees_its_removal() {
    let mut net = Net::with_members(3, Rules::default());
    let p = net.propose_expel(0, id(2));
    net.vote(0, p, true).expect("vote");
    net.vote(1, p, true).expect("vote");
    assert!(net.saw(
        2,
        |e| matches!(e, Event::Removed { epoch } if *epoch == KeyEpoch(1))
    ));
    assert!(!net.group(2).is_active());
    net.assert_agree(&[0, 1]);
}

#[test]
fn a_silent_member_is_dropped_by_a_rollout_after_the_timeout() {
    let rules = Rules::default();
    let mut net = Net::with_members(4, rules);
    net.dead.insert(3);
    net.advance(u64::from(rules.timeout_secs) - 10);
    assert_eq!(net.group(0).epoch(), KeyEpoch(0), "not yet");
    net.advance(20);
    net.assert_agree(&[0, 1, 2]);
    assert_eq!(net.group(0).epoch(), KeyEpoch(1));
    assert!(!net.group(0).members().contains_key(&id(3)));
    assert!(net.saw(0, |e| matches!(
        e,
        Event::RemovalPending {
            reason: Removal::TimedOut,
            ..
        }
    )));
    // Live members were never dropped: their heartbeats kept them.
    assert_eq!(net.group(0).members().len(), 3);
    net.advance(3 * u64::from(rules.timeout_secs));
    net.assert_agree(&[0, 1, 2]);
    assert_eq!(net.group(1).members().len(), 3);

    net.dead.remove(&3);
    net.clear();
    let sent = net.send(0, b"after the timeout");
    assert_stale_key_cannot_open(&mut net, 3, &sent);
}

#[test]
fn a_member_that_leaves_is_dropped_by_a_rollout() {
    let mut net = Net::with_members(4, Rules::default());
    let now = net.now + 1;
    net.now = now;
    net.group_mut(2).leave(now).expect("leave");
    assert!(!net.group(2).is_active());
    net.run();
    net.assert_agree(&[0, 1, 3]);
    assert_eq!(net.group(0).epoch(), KeyEpoch(1));
    assert!(!net.group(3).members().contains_key(&id(2)));
    assert!(net.saw(1, |e| matches!(
        e,
        Event::RemovalPending {
            reason: Removal::Left,
            ..
        }
    )));
}

#[test]
fn a_leave_in_the_same_second_as_a_heartbeat_still_counts() {
    let mut net = Net::with_members(3, Rules::default());
    // At the heartbeat time every member heartbeats; member 2 leaves in that same second.
    let heartbeat = net.group(2).poll_timeout().expect("a heartbeat is due");
    net.advance(heartbeat - net.now);
    let now = net.now;
    net.group_mut(2).leave(now).expect("leave");
    net.run();
    net.assert_agree(&[0, 1]);
    assert!(!net.group(0).members().contains_key(&id(2)));
}

#[test]
fn a_rollout_from_a_member_that_does_not_lead_is_refused() {
    let mut net = Net::with_members(4, Rules::default());
    net.now += 1;
    let now = net.now;
    net.group_mut(3).leave(now).expect("leave");
    // Deliver the leave but hold what it causes: the real leader's rollout.
    let mut held = Vec::new();
    for (_, to, bytes) in net.drain() {
        let _ = net.input(to, &bytes);
        held.extend(net.drain());
    }
    let leader = leader_of(&[0, 1, 2]);
    let impostor = (0..3u8).find(|n| *n != leader).expect("impostor");
    let keep: Vec<_> = (0..3u8)
        .map(|n| (id(n), net.group(0).members()[&id(n)].agreement_key))
        .collect();
    let forged = rollout::build(
        GROUP,
        &keys(impostor),
        KeyEpoch(1),
        vec![id(3)],
        &keep,
        &GroupKey::random(&mut OsRng),
        &mut OsRng,
    )
    .expect("build");
    for n in (0..3u8).filter(|n| *n != impostor && *n != leader) {
        let before = net.group(n).key_fingerprint();
        let r = net.input(n, &forged);
        assert!(matches!(r, Err(Error::NotLeader { .. })), "{r:?}");
        assert_eq!(net.group(n).key_fingerprint(), before, "state unchanged");
        assert_eq!(net.group(n).epoch(), KeyEpoch(0));
    }
    // The real leader's rollout is then accepted.
    net.deliver(held);
    net.assert_agree(&[0, 1, 2]);
    assert_eq!(net.group(0).epoch(), KeyEpoch(1));
    assert!(net.saw(
        impostor,
        |e| matches!(e, Event::RolledOut { leader: l, .. } if *l == id(leader))
    ));
}

#[test]
fn a_rollout_removing_a_live_member_is_refused() {
    let mut net = Net::with_members(4, Rules::default());
    // Each of 0, 1, 2 in turn "removes" 3, who is alive and in good standing.
    let epoch0 = net.group(0).key_fingerprint();
    for leader in 0..3u8 {
        let keep: Vec<_> = (0..3u8)
            .map(|n| (id(n), net.group(0).members()[&id(n)].agreement_key))
            .collect();
        let bytes = rollout::build(
            GROUP,
            &keys(leader),
            KeyEpoch(1),
            vec![id(3)],
            &keep,
            &GroupKey::random(&mut OsRng),
            &mut OsRng,
        )
        .expect("build");
        for n in (0..4u8).filter(|n| *n != leader) {
            let r = net.input(n, &bytes);
            assert!(
                matches!(
                    r,
                    Err(Error::UnjustifiedRemoval { .. }) | Err(Error::NotLeader { .. })
                ),
                "{r:?}"
            );
        }
    }
    for n in 0..4 {
        assert_eq!(net.group(n).key_fingerprint(), epoch0);
        assert_eq!(net.group(n).epoch(), KeyEpoch(0));
    }
}

/// Five members; 4 dies. Node X leads {0..3}; node P leads {0..3} without X. X's heartbeats
/// are lost on the way to P only, so at the timeout P thinks X is silent too: P and X each
/// lead a rollout to epoch 1. Everyone ends on X's key (the leader of the larger view ranks
/// lower), in either delivery order.
#[test]
fn concurrent_rollouts_settle_on_one_key_across_four_members() {
    for p_first in [true, false] {
        let rules = Rules::default();
        let mut net = Net::with_members(5, rules);
        let (x, p) = leaders_for_the_next_epoch(&net);
        net.dead.insert(4);
        // X's heartbeat at T0 + 60 reaches everyone but P; then X's heartbeats are lost
        // everywhere for a while. At T0 + 301 everyone times 4 out; P also times X out (silent
        // 301 s), the others see X silent 241 s: past the grace, not yet timed out.
        net.blocked.insert((x, p));
        net.advance(70);
        for n in 0..4 {
            net.blocked.insert((x, n));
        }
        // Run to just past node 4's timeout (as seen by everyone) and P's timeout of X.
        let mut rollouts = Vec::new();
        while rollouts.len() < 2 && net.now < T0 + 2 * u64::from(rules.timeout_secs) {
            net.now += 1;
            let now = net.now;
            for n in 0..4u8 {
                net.group_mut(n).handle_timeout(now, &mut OsRng);
            }
            for (from, to, bytes) in net.drain() {
                if matches!(wire::decode(&bytes), Ok(Packet::Signed(ref u)) if matches!(u.body, Body::Rollout(_)))
                {
                    if !rollouts
                        .iter()
                        .any(|(f, _, b): &(u8, u8, Vec<u8>)| *f == from && *b == bytes)
                    {
                        rollouts.push((from, to, bytes));
                    }
                } else if !net.blocked.contains(&(from, to)) && !net.dead.contains(&to) {
                    let _ = net.input(to, &bytes);
                }
            }
        }
        let leaders: Vec<u8> = rollouts.iter().map(|(f, _, _)| *f).collect();
        assert!(
            leaders.contains(&x) && leaders.contains(&p),
            "two leaders: {leaders:?}"
        );
        net.blocked.clear();
        // Deliver each rollout to all four, P's or X's first.
        let mut order: Vec<(u8, Vec<u8>)> = rollouts.into_iter().map(|(f, _, b)| (f, b)).collect();
        order.sort_by_key(|(f, _)| (*f == x) == p_first);
        for (from, bytes) in order {
            for to in (0..4u8).filter(|t| *t != from) {
                let _ = net.input(to, &bytes);
            }
            net.run();
        }
        net.tick();
        net.assert_agree(&[0, 1, 2, 3]);
        // P applied its own rollout first, then switched to X's.
        let p_rollouts = net.events[&p]
            .iter()
            .filter(|e| matches!(e, Event::RolledOut { .. }))
            .count();
        assert_eq!(p_rollouts, 2, "P switched");
        let g = net.group(0);
        assert_eq!(g.epoch(), KeyEpoch(1), "p_first {p_first}");
        assert_eq!(g.members().len(), 4);
        assert!(!g.members().contains_key(&id(4)));
        // The settled key works for everyone.
        net.clear();
        net.send(p, b"settled");
        for n in (0..4u8).filter(|n| *n != p) {
            assert_eq!(
                net.messages(n),
                vec![(id(p), b"settled".to_vec())],
                "node {n}"
            );
        }
    }
}

/// The node that leads the rollout to epoch 1 among `kept`. Admissions keep the genesis
/// transcript, so the seed of that draw is the genesis transcript of node 0's group.
fn leader_of(kept: &[u8]) -> u8 {
    let seed = rollout::genesis_transcript(GROUP, &id(0));
    let ids: Vec<_> = kept.iter().map(|n| id(*n)).collect();
    let leader = rollout::leader(GROUP, KeyEpoch(1), &seed, &ids).expect("leader");
    kept.iter()
        .copied()
        .find(|n| id(*n) == leader)
        .expect("member")
}

/// The leader X of {0..3} for epoch 1 and the leader P of {0..3} without X.
fn leaders_for_the_next_epoch(net: &Net) -> (u8, u8) {
    assert_eq!(
        net.group(0).epoch(),
        KeyEpoch(0),
        "still at the genesis epoch"
    );
    let x = leader_of(&[0, 1, 2, 3]);
    let rest: Vec<u8> = (0..4u8).filter(|n| *n != x).collect();
    (x, leader_of(&rest))
}

#[test]
fn the_member_limit_refuses_admissions_beyond_it() {
    let rules = Rules {
        member_limit: Some(3),
        ..Rules::default()
    };
    let mut net = Net::with_members(3, rules);
    let r = net.join(3, 0);
    assert!(
        matches!(
            r,
            Err(Error::GroupFull {
                members: 3,
                limit: 3
            })
        ),
        "{r:?}"
    );
    assert!(net.group(0).open_proposals().next().is_none());
    assert!(!net.groups.contains_key(&3));
}

#[test]
fn join_floods_are_bounded() {
    let mut net = Net::with_members(2, Rules::default());
    let mut refused = 0;
    for newcomer in 10..40u8 {
        let (_, bytes) = psp_group::Joining::new(
            GROUP,
            id(0),
            keys(newcomer),
            AgreementSecret::random(&mut OsRng),
            net.now,
        );
        match net.input(0, &bytes) {
            Ok(()) => {}
            Err(Error::TooManyProposals { .. }) => refused += 1,
            Err(e) => panic!("{e:?}"),
        }
        // The same JOIN again: one proposal per newcomer.
        if refused == 0 {
            assert!(matches!(
                net.input(0, &bytes),
                Err(Error::DuplicateProposal { .. })
            ));
        }
    }
    assert_eq!(refused, 30 - psp_group::ids::MAX_OPEN_PROPOSALS);
    assert_eq!(
        net.group(0).open_proposals().count(),
        psp_group::ids::MAX_OPEN_PROPOSALS
    );
}

#[test]
fn stale_tampered_and_duplicate_group_messages_are_refused() {
    let mut net = Net::with_members(3, Rules::default());
    let sent = net.send(0, b"once");
    assert_eq!(net.messages(1).len(), 1);
    assert!(matches!(net.input(1, &sent), Err(Error::DuplicateMessage)));
    let mut tampered = sent.clone();
    let last = tampered.len() - 1;
    tampered[last] ^= 1;
    assert!(matches!(
        net.input(1, &tampered),
        Err(Error::DoesNotOpen { .. })
    ));
    // After a rollout the old epoch's messages are refused (only the last key is kept).
    net.now += 1;
    let now = net.now;
    net.group_mut(2).leave(now).expect("leave");
    net.run();
    assert_eq!(net.group(1).epoch(), KeyEpoch(1));
    let mut fresh = sent.clone();
    fresh[20] ^= 1; // another nonce: not a duplicate, still epoch 0
    assert!(matches!(
        net.input(1, &fresh),
        Err(Error::UnknownEpoch { .. })
    ));
    assert_eq!(net.messages(1).len(), 1);
}

#[test]
fn a_welcome_is_only_taken_from_the_contact() {
    let mut net = Net::with_members(2, Rules::default());
    // Node 5 joins through 0, but the welcome is forged by 1 with junk inside.
    let (joining, _) = psp_group::Joining::new(
        GROUP,
        id(0),
        keys(5),
        AgreementSecret::random(&mut OsRng),
        net.now,
    );
    let forged = wire::encode_signed(
        GROUP,
        &keys(1),
        &Body::Welcome(wire::Welcome {
            newcomer: id(5),
            sealed: vec![0; 100],
        }),
    );
    assert!(matches!(
        joining.handle_welcome(net.now, &forged),
        Err(Error::UnexpectedWelcome { .. })
    ));
    let junk = wire::encode_signed(
        GROUP,
        &keys(0),
        &Body::Welcome(wire::Welcome {
            newcomer: id(5),
            sealed: vec![0; 100],
        }),
    );
    assert!(matches!(
        joining.handle_welcome(net.now, &junk),
        Err(Error::DoesNotOpen { .. })
    ));
    // A member refuses welcomes altogether.
    assert!(matches!(
        net.input(1, &junk),
        Err(Error::UnexpectedWelcome { .. })
    ));
}

#[test]
fn heartbeats_keep_members_and_replays_are_refused() {
    let rules = Rules::default();
    let mut net = Net::with_members(3, rules);
    net.advance(10 * u64::from(rules.timeout_secs));
    net.assert_agree(&[0, 1, 2]);
    assert_eq!(
        net.group(0).epoch(),
        KeyEpoch(0),
        "no rollout while all heartbeat"
    );
    net.now += 1;
    let hb = wire::encode_signed(
        GROUP,
        &keys(1),
        &Body::Heartbeat(wire::Heartbeat {
            sent_at: net.now,
            key_epoch: KeyEpoch(0),
        }),
    );
    net.input(0, &hb).expect("fresh heartbeat");
    assert!(matches!(net.input(0, &hb), Err(Error::Replayed { .. })));
    let old = wire::encode_signed(
        GROUP,
        &keys(1),
        &Body::Heartbeat(wire::Heartbeat {
            sent_at: net.now - 3600,
            key_epoch: KeyEpoch(0),
        }),
    );
    assert!(matches!(net.input(0, &old), Err(Error::StaleTime { .. })));
}

#[test]
fn a_message_to_one_member_reaches_only_that_member() {
    let mut net = Net::with_members(3, Rules::default());
    let now = net.now;
    net.group_mut(0)
        .send_to(now, id(2), b"only for two", &mut rand_core::OsRng)
        .expect("send_to");
    net.run();
    assert_eq!(net.messages(2), [(id(0), b"only for two".to_vec())]);
    assert!(net.messages(1).is_empty(), "member 1 never received it");
    let err = net
        .group_mut(0)
        .send_to(now, id(9), b"x", &mut rand_core::OsRng)
        .expect_err("not a member");
    assert!(matches!(err, Error::NotAMember { .. }), "{err}");
}
