//! Snapshots: a member restored from its snapshot carries on (messages, heartbeats, votes, the
//! next rollout), duplicates stay refused, and wrong keys or damaged bytes are refused without
//! a panic.

mod common;

use std::sync::OnceLock;

use common::{id, keys, Net, GROUP, T0};
use proptest::prelude::*;
use psp_group::wire::{self, Body};
use psp_group::{Error, Event, Group, KeyEpoch, ProposalId, Rules};
use rand_core::OsRng;

/// Offsets in the snapshot layout (see `psp_group::group::snapshot`).
const VERSION_AT: usize = 18;
const HEARTBEAT_AT: usize = 61;
const LIMIT_AT: usize = 59;
const STATUS_AT: usize = 73;
const MEMBER_COUNT_AT: usize = 122;

/// A 4-member group after joins, a rollout (node 3 left, node 4 joined) and two messages.
/// Returns the network and the first message's packet.
fn mid_life() -> (Net, Vec<u8>) {
    let mut net = Net::with_members(4, Rules::default());
    net.now += 1;
    let now = net.now;
    net.group_mut(3).leave(now).expect("leave");
    net.run();
    net.assert_agree(&[0, 1, 2]);
    assert_eq!(net.group(1).epoch(), KeyEpoch(1));
    let p = net.join(4, 2).expect("proposal");
    for v in [0, 1, 2] {
        net.vote(v, p, true).expect("vote");
    }
    net.assert_agree(&[0, 1, 2, 4]);
    let before = net.send(0, b"before the restart");
    net.send(4, b"also before");
    assert_eq!(net.messages(1).len(), 2);
    (net, before)
}

/// Node `node` swaps its state for the one restored from its snapshot, which must match it.
fn restart(net: &mut Net, node: u8) {
    let snapshot = net.group(node).snapshot();
    let restored = Group::restore(&snapshot, keys(node)).expect("restores");
    assert_eq!(restored.snapshot(), snapshot, "the encoding is canonical");
    let old = net.group(node);
    assert_eq!(restored.id(), old.id());
    assert_eq!(restored.rules(), old.rules());
    assert_eq!(restored.epoch(), old.epoch());
    assert_eq!(restored.key_fingerprint(), old.key_fingerprint());
    assert_eq!(restored.members(), old.members());
    assert_eq!(restored.pending_removals(), old.pending_removals());
    assert_eq!(restored.poll_timeout(), old.poll_timeout());
    net.groups.insert(node, restored);
    net.clear();
}

/// A snapshot of node 1 with an open vote (two ballots of three), a decided one, members with
/// heartbeats, and seen messages: every part of the format is present.
fn rich_snapshot() -> &'static [u8] {
    static SNAPSHOT: OnceLock<Vec<u8>> = OnceLock::new();
    SNAPSHOT.get_or_init(|| {
        let (mut net, _) = mid_life();
        net.advance(70);
        let p = net.propose_expel(0, id(4));
        net.vote(0, p, true).expect("vote");
        net.vote(2, p, false).expect("vote");
        assert!(net.group(1).open_tally(p).is_some());
        net.group(1).snapshot()
    })
}

#[test]
fn a_member_restored_mid_life_carries_on() {
    let rules = Rules::default();
    let timeout = u64::from(rules.timeout_secs);
    let (mut net, before) = mid_life();
    restart(&mut net, 1);
    let restarted_at = net.now;

    // A message seen before the snapshot is still refused as a duplicate.
    assert!(matches!(
        net.input(1, &before),
        Err(Error::DuplicateMessage)
    ));
    net.clear();

    // Messages sent after the restore open.
    net.send(2, b"after the restart");
    assert_eq!(
        net.messages(1),
        vec![(id(2), b"after the restart".to_vec())]
    );

    // Its heartbeats are accepted: three timeouts pass and nobody is dropped.
    net.advance(3 * timeout);
    assert!(net.errors.is_empty(), "{:?}", net.errors);
    net.assert_agree(&[0, 1, 2, 4]);
    assert_eq!(net.group(1).epoch(), KeyEpoch(1));
    for node in [0, 2, 4] {
        assert!(net.group(node).members()[&id(1)].last_signed_time > restarted_at);
    }

    // The next rollout: node 4 dies and times out; node 1 receives the new key.
    net.dead.insert(4);
    net.advance(timeout + u64::from(rules.heartbeat_secs));
    net.assert_agree(&[0, 1, 2]);
    assert_eq!(net.group(1).epoch(), KeyEpoch(2));
    assert!(net.saw(1, |e| matches!(
        e,
        Event::RolledOut { epoch: KeyEpoch(2), removed, .. } if *removed == vec![id(4)]
    )));
    net.clear();
    net.send(0, b"after the next rollout");
    assert_eq!(
        net.messages(1),
        vec![(id(0), b"after the next rollout".to_vec())]
    );
}

#[test]
fn open_votes_and_decided_tallies_survive_a_restore() {
    let mut net = Net::with_members(3, Rules::default());
    let p = net.join(3, 0).expect("proposal");
    net.vote(0, p, true).expect("vote");
    net.vote(1, p, true).expect("vote");
    let open = net.group(2).open_tally(p).expect("open");
    assert_eq!((open.accepts, open.refuses), (2, 0));
    restart(&mut net, 2);
    assert_eq!(net.group(2).open_tally(p), Some(open));

    // The restored member casts the last ballot: the vote closes everywhere, node 3 is in.
    net.vote(2, p, true).expect("vote");
    net.assert_agree(&[0, 1, 2, 3]);
    let tally = net.group(2).tally(p).expect("decided").clone();
    tally.verify().expect("the restored ballots verify");

    // The decided tally survives too: the proposal, sent again, is a duplicate.
    restart(&mut net, 2);
    assert_eq!(net.group(2).tally(p), Some(&tally));
    let again = wire::encode_signed(GROUP, &keys(0), &Body::Proposal(tally.proposal.clone()));
    assert!(matches!(
        net.input(2, &again),
        Err(Error::DuplicateProposal { id }) if id == p
    ));
}

#[test]
fn a_snapshot_is_refused_with_another_members_keys() {
    let snapshot = rich_snapshot();
    assert_eq!(
        Group::restore(snapshot, keys(2)).map(|_| ()),
        Err(Error::SnapshotWrongKeys {
            snapshot: id(1),
            keys: id(2),
        })
    );
    Group::restore(snapshot, keys(1)).expect("its own keys");
}

#[test]
fn every_truncation_and_any_trailing_byte_is_refused() {
    let snapshot = rich_snapshot();
    for len in 0..snapshot.len() {
        assert!(
            Group::restore(&snapshot[..len], keys(1)).is_err(),
            "prefix {len} refused"
        );
    }
    let mut longer = snapshot.to_vec();
    longer.push(0);
    assert!(matches!(
        Group::restore(&longer, keys(1)),
        Err(Error::BadSnapshot(_))
    ));
}

#[test]
fn broken_headers_and_invariants_are_refused() {
    let snapshot = rich_snapshot();
    let changed = |at: usize, bytes: &[u8]| {
        let mut s = snapshot.to_vec();
        s[at..at + bytes.len()].copy_from_slice(bytes);
        Group::restore(&s, keys(1)).map(|_| ())
    };
    assert!(matches!(changed(0, b"P"), Err(Error::BadSnapshot(_))));
    assert_eq!(
        changed(VERSION_AT, &[2]),
        Err(Error::SnapshotVersion {
            found: 2,
            expected: 1
        })
    );
    assert!(matches!(
        changed(HEARTBEAT_AT, &0u32.to_be_bytes()),
        Err(Error::BadRules(_))
    ));
    assert!(matches!(
        changed(STATUS_AT, &[9]),
        Err(Error::BadSnapshot(_))
    ));
    assert!(matches!(
        changed(MEMBER_COUNT_AT, &257u16.to_be_bytes()),
        Err(Error::TooLong { len: 257, .. })
    ));
    // Four members, a limit of three.
    assert!(matches!(
        changed(LIMIT_AT, &3u16.to_be_bytes()),
        Err(Error::TooLong { len: 4, max: 3, .. })
    ));
    // Another agreement secret: this member is no longer in its table under its key.
    assert!(matches!(
        changed(snapshot.len() - 32, &[7; 32]),
        Err(Error::BadSnapshot(_))
    ));
}

#[test]
fn an_inactive_member_restores_inactive() {
    let mut net = Net::with_members(2, Rules::default());
    let now = net.now + 1;
    net.group_mut(1).leave(now).expect("leave");
    let g = Group::restore(&net.group(1).snapshot(), keys(1)).expect("restores");
    assert!(!g.is_active());
    assert_eq!(g.poll_timeout(), None);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1024))]

    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..4096)) {
        let _ = Group::restore(&bytes, keys(1));
    }

    #[test]
    fn random_bytes_behind_a_valid_header_never_panic(
        body in proptest::collection::vec(any::<u8>(), 0..2048),
    ) {
        let mut bytes = rich_snapshot()[..MEMBER_COUNT_AT].to_vec();
        bytes.extend_from_slice(&body);
        let _ = Group::restore(&bytes, keys(1));
    }

    /// A changed snapshot is refused, or restores to a state that encodes back to the same
    /// bytes and runs.
    #[test]
    fn mutated_snapshots_never_panic(
        flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..4),
    ) {
        let mut bytes = rich_snapshot().to_vec();
        for (i, x) in flips {
            let n = bytes.len();
            bytes[i % n] ^= x | 1;
        }
        if let Ok(mut g) = Group::restore(&bytes, keys(1)) {
            prop_assert_eq!(g.snapshot(), bytes);
            g.handle_timeout(T0 + 1_000, &mut OsRng);
            while g.poll_transmit().is_some() {}
        }
    }
}

#[test]
fn an_open_vote_with_both_kinds_of_ballot_restores() {
    // An accepting and a refusing ballot come back, signatures intact.
    let g = Group::restore(rich_snapshot(), keys(1)).expect("restores");
    let open: Vec<ProposalId> = g.open_proposals().collect();
    assert_eq!(open.len(), 1);
    let t = g.open_tally(open[0]).expect("open");
    assert_eq!((t.accepts, t.refuses), (1, 1));
    t.verify().expect("verifies");
}
