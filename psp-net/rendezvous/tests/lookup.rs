//! The lookup service and the looker: a request becomes a DHT fetch of the slots' keys and
//! the records come back bounded; the service's limits (concurrent fetches, requests per
//! stream, malformed input, fetch and idle timeouts, a stream closed mid-fetch); and the
//! looker against the real service with co-signed presence records from the presence nodes:
//! valid records found and ordered, forged, foreign, expired, badly certified, misplaced,
//! duplicated and revoked ones refused and counted.

mod common;

use std::sync::Arc;

use common::net::*;
use common::*;
use psp_dht::{record_key, RecordContent, RecordKey, RecordKind};
use psp_rendezvous::client::{
    presence_topic, AnnouncerConfig, ClientError, Identity, Looker, LookerConfig, LookerEvent,
};
use psp_rendezvous::lookup::{Action, Lookup, LookupConfig, LookupError};
use psp_rendezvous::record::PresenceValue;
use psp_rendezvous::replay::ReplayCache;
use psp_rendezvous::wire::{
    LookupMsg, LookupRefusal, WireError, MAX_LOOKUP_RECORD_LEN, MAX_LOOKUP_SLOTS,
};
use psp_rendezvous::StreamHandle;

const ALICE: StreamHandle = StreamHandle(100);

fn request(owner: [u8; 32], slots: u8) -> Vec<u8> {
    LookupMsg::Request { owner, slots }.encode()
}

fn slot_keys(owner: &[u8; 32], slots: u8) -> Vec<RecordKey> {
    (0..slots)
        .map(|slot| record_key(RecordKind::Presence, owner, &presence_topic(slot)))
        .collect()
}

/// The keys of the one `Fetch` among `actions`, for `stream`.
fn fetched_keys(actions: &[Action], stream: StreamHandle) -> Vec<RecordKey> {
    match actions {
        [Action::Fetch { stream: s, keys }] if *s == stream => keys.clone(),
        other => panic!("expected one fetch for {stream:?}: {other:?}"),
    }
}

fn small_config() -> LookupConfig {
    LookupConfig {
        max_streams: 4,
        max_concurrent_fetches: 2,
        max_requests_per_stream: 2,
        ..LookupConfig::default()
    }
}

// ---------------------------------------------------------------------------------------
// The service alone.

#[test]
fn a_request_fetches_the_slot_keys_and_never_gets_more_than_it_asked() {
    let mut lookup = Lookup::new(LookupConfig::default());
    let owner = [7; 32];
    lookup
        .handle_data(NOW, ALICE, &request(owner, 3))
        .expect("a request");
    let keys = fetched_keys(&drain_lookup(&mut lookup), ALICE);
    assert_eq!(keys, slot_keys(&owner, 3));
    assert_eq!((lookup.fetches(), lookup.streams()), (1, 1));
    assert_eq!(lookup.poll_timeout(), Some(NOW + 20));

    // Five answers: one too long to be a presence record; only the first three that fit go.
    let answer = vec![
        vec![1; 10],
        vec![2; MAX_LOOKUP_RECORD_LEN + 1],
        vec![3; MAX_LOOKUP_RECORD_LEN],
        vec![4; 1],
        vec![5; 2],
    ];
    lookup.handle_fetched(NOW + 1, ALICE, answer);
    let actions = drain_lookup(&mut lookup);
    assert_eq!(
        lookup_sent(&actions, ALICE),
        vec![LookupMsg::records(vec![
            vec![1; 10],
            vec![3; MAX_LOOKUP_RECORD_LEN],
            vec![4; 1]
        ])
        .unwrap()]
    );
    assert!(!lookup_closed(&actions, ALICE));
    assert_eq!(lookup.fetches(), 0);
    // The stream may ask again (it is idle until then).
    assert_eq!(lookup.poll_timeout(), Some(NOW + 1 + 60));
    lookup
        .handle_data(NOW + 2, ALICE, &request([8; 32], 1))
        .unwrap();
    assert_eq!(
        fetched_keys(&drain_lookup(&mut lookup), ALICE),
        slot_keys(&[8; 32], 1)
    );
    // Nothing found: an empty answer.
    lookup.handle_fetched(NOW + 2, ALICE, Vec::new());
    assert_eq!(
        lookup_sent(&drain_lookup(&mut lookup), ALICE),
        vec![LookupMsg::Records(Vec::new())]
    );
    // An answer nobody asked for is ignored.
    lookup.handle_fetched(NOW + 2, ALICE, vec![vec![1; 10]]);
    lookup.handle_fetched(NOW + 2, StreamHandle(9), vec![vec![1; 10]]);
    assert!(drain_lookup(&mut lookup).is_empty());
    lookup.handle_stream_closed(ALICE);
    assert_eq!((lookup.streams(), lookup.timers()), (0, 0));
}

#[test]
fn concurrent_fetches_are_bounded_over_all_streams() {
    let mut lookup = Lookup::new(small_config());
    for s in 1..=2 {
        lookup
            .handle_data(NOW, StreamHandle(s), &request([s as u8; 32], 2))
            .unwrap();
    }
    assert_eq!(drain_lookup(&mut lookup).len(), 2);
    assert_eq!(
        lookup.handle_data(NOW, StreamHandle(3), &request([3; 32], 2)),
        Err(LookupError::FetchesFull { max: 2 })
    );
    let actions = drain_lookup(&mut lookup);
    assert_eq!(
        lookup_sent(&actions, StreamHandle(3)),
        vec![LookupMsg::Refused(LookupRefusal::Busy)]
    );
    assert!(!lookup_closed(&actions, StreamHandle(3)));
    // One fetch answered: the refused stream's retry goes through.
    lookup.handle_fetched(NOW, StreamHandle(1), Vec::new());
    drain_lookup(&mut lookup);
    lookup
        .handle_data(NOW + 1, StreamHandle(3), &request([3; 32], 2))
        .unwrap();
    fetched_keys(&drain_lookup(&mut lookup), StreamHandle(3));
    assert_eq!(lookup.fetches(), 2);
}

#[test]
fn requests_per_stream_are_bounded_then_the_stream_is_closed() {
    let mut lookup = Lookup::new(small_config());
    for _ in 0..2 {
        lookup
            .handle_data(NOW, ALICE, &request([1; 32], 1))
            .unwrap();
        fetched_keys(&drain_lookup(&mut lookup), ALICE);
        lookup.handle_fetched(NOW, ALICE, Vec::new());
        drain_lookup(&mut lookup);
    }
    assert_eq!(
        lookup.handle_data(NOW, ALICE, &request([1; 32], 1)),
        Err(LookupError::TooManyRequests { max: 2 })
    );
    let actions = drain_lookup(&mut lookup);
    assert_eq!(
        lookup_sent(&actions, ALICE),
        vec![LookupMsg::Refused(LookupRefusal::TooManyRequests)]
    );
    assert!(lookup_closed(&actions, ALICE));
    assert_eq!(
        (lookup.streams(), lookup.fetches(), lookup.timers()),
        (0, 0, 0)
    );
}

#[test]
fn malformed_and_unexpected_messages_are_refused_and_the_stream_closed() {
    let mut lookup = Lookup::new(LookupConfig::default());
    let refused = |lookup: &mut Lookup, stream: StreamHandle| {
        let actions = drain_lookup(lookup);
        assert_eq!(
            lookup_sent(&actions, stream),
            vec![LookupMsg::Refused(LookupRefusal::Malformed)]
        );
        assert!(lookup_closed(&actions, stream));
    };
    // An unknown type, a bad slot count, a frame too short to hold a header.
    assert!(matches!(
        lookup.handle_data(NOW, StreamHandle(1), &[0, 2, 1, 0x7f]),
        Err(LookupError::Malformed(WireError::UnknownType { .. }))
    ));
    refused(&mut lookup, StreamHandle(1));
    let mut zero_slots = request([1; 32], 1);
    *zero_slots.last_mut().unwrap() = 0;
    assert!(lookup
        .handle_data(NOW, StreamHandle(2), &zero_slots)
        .is_err());
    refused(&mut lookup, StreamHandle(2));
    assert!(matches!(
        lookup.handle_data(NOW, StreamHandle(3), &[0, 1]),
        Err(LookupError::Malformed(WireError::FrameTooShort { .. }))
    ));
    refused(&mut lookup, StreamHandle(3));
    // A node's message from a looker.
    let records = LookupMsg::Records(Vec::new()).encode();
    assert_eq!(
        lookup.handle_data(NOW, StreamHandle(4), &records),
        Err(LookupError::UnexpectedMessage {
            message: "Records",
            state: "idle"
        })
    );
    refused(&mut lookup, StreamHandle(4));
    // A second request while the first is in flight (both in one chunk): the fetch is
    // forgotten with the stream.
    let mut two = request([1; 32], 1);
    two.extend(request([2; 32], 1));
    assert_eq!(
        lookup.handle_data(NOW, StreamHandle(5), &two),
        Err(LookupError::UnexpectedMessage {
            message: "Request",
            state: "fetching"
        })
    );
    let actions = drain_lookup(&mut lookup);
    assert!(matches!(actions[0], Action::Fetch { .. }));
    assert_eq!(
        lookup_sent(&actions[1..], StreamHandle(5)),
        vec![LookupMsg::Refused(LookupRefusal::Malformed)]
    );
    assert!(lookup_closed(&actions[1..], StreamHandle(5)));
    assert_eq!(
        (lookup.streams(), lookup.fetches(), lookup.timers()),
        (0, 0, 0)
    );
}

#[test]
fn an_unanswered_fetch_is_refused_busy_and_a_late_answer_ignored() {
    let mut lookup = Lookup::new(LookupConfig::default());
    lookup
        .handle_data(NOW, ALICE, &request([1; 32], 2))
        .unwrap();
    drain_lookup(&mut lookup);
    assert_eq!(lookup.poll_timeout(), Some(NOW + 20));
    lookup.handle_timeout(NOW + 19);
    assert!(drain_lookup(&mut lookup).is_empty());
    lookup.handle_timeout(NOW + 20);
    let actions = drain_lookup(&mut lookup);
    assert_eq!(
        lookup_sent(&actions, ALICE),
        vec![LookupMsg::Refused(LookupRefusal::Busy)]
    );
    assert!(lookup_closed(&actions, ALICE));
    lookup.handle_fetched(NOW + 21, ALICE, vec![vec![1; 10]]);
    assert!(drain_lookup(&mut lookup).is_empty());
    assert_eq!(
        (lookup.streams(), lookup.fetches(), lookup.timers()),
        (0, 0, 0)
    );
    assert_eq!(lookup.poll_timeout(), None);
}

#[test]
fn closing_mid_fetch_forgets_it() {
    let mut lookup = Lookup::new(small_config());
    lookup
        .handle_data(NOW, ALICE, &request([1; 32], 2))
        .unwrap();
    drain_lookup(&mut lookup);
    assert_eq!(lookup.fetches(), 1);
    lookup.handle_stream_closed(ALICE);
    lookup.handle_stream_closed(ALICE);
    assert_eq!(
        (lookup.streams(), lookup.fetches(), lookup.timers()),
        (0, 0, 0)
    );
    lookup.handle_fetched(NOW + 1, ALICE, vec![vec![1; 10]]);
    lookup.handle_timeout(NOW + 100);
    assert!(drain_lookup(&mut lookup).is_empty());
}

#[test]
fn idle_and_surplus_streams_are_closed() {
    let mut lookup = Lookup::new(small_config());
    // A stream that sent half a frame and went quiet is closed at its idle timeout.
    lookup.handle_data(NOW, StreamHandle(1), &[0]).unwrap();
    for s in 2..=4 {
        lookup.handle_data(NOW + 5, StreamHandle(s), &[]).unwrap();
    }
    assert_eq!(
        lookup.handle_data(NOW + 5, StreamHandle(5), &request([1; 32], 1)),
        Err(LookupError::TooManyStreams { max: 4 })
    );
    let actions = drain_lookup(&mut lookup);
    assert_eq!(
        actions,
        vec![Action::Close {
            stream: StreamHandle(5)
        }]
    );
    assert_eq!(lookup.poll_timeout(), Some(NOW + 60));
    lookup.handle_timeout(NOW + 60);
    assert_eq!(
        drain_lookup(&mut lookup),
        vec![Action::Close {
            stream: StreamHandle(1)
        }]
    );
    lookup.handle_timeout(NOW + 65);
    assert_eq!(drain_lookup(&mut lookup).len(), 3);
    assert_eq!((lookup.streams(), lookup.timers()), (0, 0));
}

// ---------------------------------------------------------------------------------------
// The looker against the service, with real records.

/// Bob at presence node 0 (slot 0) and, five seconds later, at node 1 (slot 1); Carol at
/// node 1 (slot 0).
struct Setup {
    net: Net,
    bob: Arc<Identity>,
    carol: Arc<Identity>,
}

fn setup() -> Setup {
    let mut net = Net::new();
    let bob = net.identity(2);
    let carol = net.identity(3);
    let mut replay = ReplayCache::default();
    let slot = |slot| AnnouncerConfig {
        slot,
        ..AnnouncerConfig::default()
    };
    net.announce(&bob, &mut replay, 0, StreamHandle(1), slot(0));
    net.now += 5;
    net.announce(&bob, &mut replay, 1, StreamHandle(2), slot(1));
    net.announce(
        &carol,
        &mut ReplayCache::default(),
        1,
        StreamHandle(3),
        slot(0),
    );
    net.now += 1;
    Setup { net, bob, carol }
}

impl Setup {
    /// Bob's record in the DHT for `slot`.
    fn dht_record(&self, owner: &Identity, slot: u8) -> Vec<u8> {
        let key = record_key(RecordKind::Presence, &owner.id(), &presence_topic(slot));
        self.net.dht.get(&key).expect("a published record").clone()
    }

    /// A record of `owner` co-signed by presence node 0, built by hand.
    fn record(
        &self,
        owner: &Identity,
        certificate: &[u8],
        slot: u8,
        seq: u64,
        issued_at: u64,
        expires_at: u64,
    ) -> Vec<u8> {
        RecordContent {
            kind: RecordKind::Presence,
            owner: owner.id(),
            topic: presence_topic(slot),
            publisher: self.net.presence_id(0),
            seq,
            issued_at,
            expires_at,
            value: PresenceValue {
                public: false,
                certificate: certificate.to_vec(),
            }
            .encode(),
        }
        .sign(owner.key(), &self.net.presence[0].key)
        .encode()
    }

    /// One lookup of `owner`'s `slots` through `lookup`, the fetch answered by `answer`:
    /// returns the looker's events (it always ends and closes its stream).
    fn look_up(
        &self,
        lookup: &mut Lookup,
        stream: StreamHandle,
        owner: [u8; 32],
        slots: u8,
        answer: impl FnOnce(&[RecordKey]) -> Vec<Vec<u8>>,
    ) -> Vec<LookerEvent> {
        let now = self.net.now;
        let (mut looker, request) =
            Looker::new(stream, owner, slots, now, LookerConfig::default()).unwrap();
        assert_eq!(request.stream, stream);
        lookup.handle_data(now, stream, &request.bytes).unwrap();
        let keys = fetched_keys(&drain_lookup(lookup), stream);
        assert_eq!(keys, slot_keys(&owner, slots));
        lookup.handle_fetched(now, stream, answer(&keys));
        let reply = match &drain_lookup(lookup)[..] {
            [Action::Send { stream: s, bytes }] if *s == stream => bytes.clone(),
            other => panic!("expected the records: {other:?}"),
        };
        // Cell by cell, as a circuit delivers them.
        let mut events = Vec::new();
        for chunk in reply.chunks(498) {
            let out = looker.handle_data(now, chunk, &self.net.world.chain());
            if !out.events.is_empty() {
                assert_eq!(out.close, vec![stream]);
            }
            events.extend(out.events);
        }
        assert!(looker.is_closed() && looker.poll_timeout().is_none());
        lookup.handle_stream_closed(stream);
        events
    }

    /// The records in the DHT under `keys`, as a node's driver answers.
    fn in_dht(&self, keys: &[RecordKey]) -> Vec<Vec<u8>> {
        keys.iter()
            .filter_map(|k| self.net.dht.get(k).cloned())
            .collect()
    }
}

fn found(events: Vec<LookerEvent>) -> (Vec<psp_rendezvous::record::VerifiedPresence>, usize) {
    match &events[..] {
        [LookerEvent::Found {
            presences,
            rejected,
        }] => (presences.clone(), *rejected),
        other => panic!("expected Found: {other:?}"),
    }
}

#[test]
fn valid_records_are_found_most_recent_first() {
    let s = setup();
    let mut lookup = Lookup::new(LookupConfig::default());
    let bob = s.bob.id();
    let (presences, rejected) = found(s.look_up(&mut lookup, ALICE, bob, 2, |keys| s.in_dht(keys)));
    assert_eq!(rejected, 0);
    assert_eq!(presences.len(), 2);
    // Slot 1 was registered five seconds later: it comes first.
    assert_eq!(presences[0].topic, presence_topic(1));
    assert_eq!(presences[0].presence_node, s.net.presence_id(1));
    assert_eq!(presences[1].topic, presence_topic(0));
    assert_eq!(presences[1].presence_node, s.net.presence_id(0));
    for p in &presences {
        assert_eq!(p.owner, bob);
        assert_eq!(p.announcement_key, s.bob.announcement().public());
    }
    assert_eq!(presences, {
        let mut direct = s.net.lookup(&bob);
        direct.sort_by_key(|p| std::cmp::Reverse(p.issued_at));
        direct
    });

    // Asking for every slot finds the same two; asking for one finds slot 0 only.
    let (all, rejected) = found(s.look_up(
        &mut lookup,
        StreamHandle(101),
        bob,
        MAX_LOOKUP_SLOTS,
        |keys| s.in_dht(keys),
    ));
    assert_eq!((all, rejected), (presences.clone(), 0));
    let (one, _) = found(s.look_up(&mut lookup, StreamHandle(102), bob, 1, |keys| {
        s.in_dht(keys)
    }));
    assert_eq!(one, vec![presences[1].clone()]);
    // Nobody there: found nothing, refused nothing.
    let (none, rejected) = found(
        s.look_up(&mut lookup, StreamHandle(103), [9; 32], 2, |keys| {
            s.in_dht(keys)
        }),
    );
    assert!(none.is_empty() && rejected == 0);
    assert_eq!(
        (lookup.streams(), lookup.fetches(), lookup.timers()),
        (0, 0, 0)
    );
}

#[test]
fn forged_foreign_expired_badly_certified_misplaced_and_duplicated_records_are_rejected() {
    let s = setup();
    let now = s.net.now;
    let bob = &s.bob;
    let valid = s.dht_record(bob, 0);
    // A flipped bit in the publisher's co-signature; a record "of Bob's" signed by Carol.
    let mut forged_cosignature = valid.clone();
    *forged_cosignature.last_mut().unwrap() ^= 1;
    let forged_owner = {
        let record = psp_dht::SignedRecord::decode(&valid).unwrap();
        let resigned = record
            .content
            .clone()
            .sign(s.carol.key(), &s.net.presence[0].key);
        resigned.encode()
    };
    // Carol's own (valid) record, served for Bob.
    let foreign = s.dht_record(&s.carol, 0);
    // Expired ten seconds ago.
    let expired = s.record(bob, bob.certificate(), 1, 1, now - 200, now - 10);
    // Carol's certificate in Bob's record; a certificate that is not one.
    let wrong_certificate = s.record(bob, s.carol.certificate(), 1, 2, now, now + 100);
    let garbage_certificate = s.record(bob, &[0x55; 186], 1, 3, now, now + 100);
    // Bob's record under a slot nobody asked for.
    let misplaced = s.record(bob, bob.certificate(), 200, 1, now, now + 100);

    let mut lookup = Lookup::new(LookupConfig::default());
    let answer = vec![
        forged_cosignature,
        valid.clone(),
        forged_owner,
        foreign,
        expired,
        wrong_certificate,
        garbage_certificate,
        misplaced,
    ];
    let (presences, rejected) =
        found(s.look_up(&mut lookup, ALICE, bob.id(), MAX_LOOKUP_SLOTS, |_| answer));
    assert_eq!(rejected, 7);
    assert_eq!(presences.len(), 1);
    assert_eq!(presences[0].topic, presence_topic(0));

    // Duplicates: the same record twice, and an older and a newer record for one slot.
    let older = s.record(bob, bob.certificate(), 1, 5, now - 3, now + 100);
    let newer = s.record(bob, bob.certificate(), 1, 6, now - 2, now + 100);
    let answer = vec![valid.clone(), older, valid.clone(), newer, vec![0xff; 40]];
    let (presences, rejected) =
        found(s.look_up(&mut lookup, StreamHandle(101), bob.id(), 2, |_| answer));
    // The node forwards two (as many as asked); the looker keeps both slots once.
    assert_eq!(rejected, 0);
    assert_eq!(presences.len(), 2);
    let answer = vec![
        valid.clone(),
        s.record(bob, bob.certificate(), 1, 5, now - 3, now + 100),
        valid.clone(),
        s.record(bob, bob.certificate(), 1, 6, now - 2, now + 100),
        vec![0xff; 40],
    ];
    let (presences, rejected) = found(s.look_up(
        &mut lookup,
        StreamHandle(102),
        bob.id(),
        MAX_LOOKUP_SLOTS,
        |_| answer,
    ));
    assert_eq!(rejected, 3);
    assert_eq!(presences.len(), 2);
    assert_eq!(
        (presences[0].topic, presences[0].seq),
        (presence_topic(1), 6)
    );
    assert_eq!(presences[1].topic, presence_topic(0));
}

#[test]
fn a_revoked_owner_is_found_nowhere() {
    let mut s = setup();
    s.net.world.registry.revoke(s.bob.id());
    let mut lookup = Lookup::new(LookupConfig::default());
    let bob = s.bob.id();
    let (presences, rejected) = found(s.look_up(&mut lookup, ALICE, bob, 2, |keys| s.in_dht(keys)));
    assert!(presences.is_empty());
    assert_eq!(rejected, 2);
}

#[test]
fn a_refusal_silence_a_closed_stream_or_garbage_fail_the_looker() {
    let s = setup();
    let chain = s.net.world.chain();
    let now = s.net.now;
    let owner = s.bob.id();
    let new = || {
        Looker::new(ALICE, owner, 2, now, LookerConfig::default())
            .unwrap()
            .0
    };

    // The service refuses (fetches full); the looker fails with the reason and closes.
    let mut lookup = Lookup::new(LookupConfig {
        max_concurrent_fetches: 0,
        ..LookupConfig::default()
    });
    let (mut looker, request) = Looker::new(ALICE, owner, 2, now, LookerConfig::default()).unwrap();
    let _ = lookup.handle_data(now, ALICE, &request.bytes);
    let reply: Vec<u8> = drain_lookup(&mut lookup)
        .into_iter()
        .flat_map(|a| match a {
            Action::Send { bytes, .. } => bytes,
            _ => Vec::new(),
        })
        .collect();
    let out = looker.handle_data(now, &reply, &chain);
    assert_eq!(out.close, vec![ALICE]);
    assert_eq!(
        out.events,
        vec![LookerEvent::Failed(ClientError::LookupRefused(
            LookupRefusal::Busy
        ))]
    );
    // Ended: silent from now on.
    assert!(looker.handle_data(now, &reply, &chain).is_empty());
    assert!(looker.handle_timeout(now + 1_000).is_empty());
    assert!(looker.handle_stream_closed().is_empty());

    // Silence: the deadline (30 s by default).
    let mut looker = new();
    assert_eq!(looker.poll_timeout(), Some(now + 30));
    assert!(looker.handle_timeout(now + 29).is_empty());
    let out = looker.handle_timeout(now + 30);
    assert!(matches!(
        out.events[..],
        [LookerEvent::Failed(ClientError::TimedOut { deadline, .. })] if deadline == now + 30
    ));
    // Records arriving past the deadline are not read.
    let mut looker = new();
    let late = LookupMsg::Records(Vec::new()).encode();
    assert!(matches!(
        looker.handle_data(now + 30, &late, &chain).events[..],
        [LookerEvent::Failed(ClientError::TimedOut { .. })]
    ));

    // The stream closes first.
    let mut looker = new();
    let out = looker.handle_stream_closed();
    assert_eq!(out.close, vec![ALICE]);
    assert!(matches!(
        out.events[..],
        [LookerEvent::Failed(ClientError::StreamClosed {
            service: "lookup",
            ..
        })]
    ));

    // Garbage, a bad frame, a request from the node.
    for bytes in [
        vec![0, 2, 1, 0x7f],
        vec![0xff, 0xff],
        LookupMsg::Request { owner, slots: 1 }.encode(),
        vec![0, 3, 1, 0x03, 0],
    ] {
        let mut looker = new();
        let out = looker.handle_data(now, &bytes, &chain);
        assert!(
            matches!(
                out.events[..],
                [LookerEvent::Failed(
                    ClientError::Malformed {
                        service: "lookup",
                        ..
                    } | ClientError::Unexpected {
                        service: "lookup",
                        ..
                    }
                )]
            ),
            "{:?}",
            out.events
        );
        assert!(looker.is_closed());
    }
    // Half a frame waits for the rest.
    let mut looker = new();
    assert!(looker.handle_data(now, &late[..3], &chain).is_empty());
    assert!(matches!(
        looker.handle_data(now, &late[3..], &chain).events[..],
        [LookerEvent::Found { rejected: 0, .. }]
    ));

    // Slots outside 1..=8 are refused at construction.
    for slots in [0, MAX_LOOKUP_SLOTS + 1] {
        assert_eq!(
            Looker::new(ALICE, owner, slots, now, LookerConfig::default()).unwrap_err(),
            ClientError::LookupSlots {
                slots,
                max: MAX_LOOKUP_SLOTS
            }
        );
    }
}
