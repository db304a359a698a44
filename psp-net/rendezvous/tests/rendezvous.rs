//! The rendezvous service: establish, join once, relay both ways, refusals, closing and
//! expiry.

mod common;

use common::*;
use psp_rendezvous::rendezvous::{Rendezvous, RendezvousConfig, RendezvousError};
use psp_rendezvous::wire::{HandshakeBytes, RendezvousMsg, RendezvousRefusal};
use psp_rendezvous::{Cookie, StreamHandle};

const ALICE: StreamHandle = StreamHandle(1);
const BOB: StreamHandle = StreamHandle(2);
const COOKIE: Cookie = Cookie([0x33; 32]);

fn reply() -> HandshakeBytes {
    HandshakeBytes::new("reply", vec![0x5a; 113]).unwrap()
}

fn join(cookie: Cookie) -> Vec<u8> {
    RendezvousMsg::Join {
        cookie,
        reply: reply(),
    }
    .encode()
}

fn linked() -> Rendezvous {
    let mut r = rendezvous_service();
    r.handle_data(NOW, ALICE, &RendezvousMsg::Establish(COOKIE).encode())
        .unwrap();
    r.handle_data(NOW + 1, BOB, &join(COOKIE)).unwrap();
    drain_rendezvous(&mut r);
    r
}

#[test]
fn a_join_links_the_streams_and_bytes_flow_both_ways() {
    let mut r = rendezvous_service();
    r.handle_data(NOW, ALICE, &RendezvousMsg::Establish(COOKIE).encode())
        .unwrap();
    let actions = drain_rendezvous(&mut r);
    assert_eq!(
        rendezvous_sent(&actions, ALICE),
        vec![RendezvousMsg::Established]
    );
    assert_eq!(r.waiting(), 1);

    r.handle_data(NOW + 1, BOB, &join(COOKIE)).unwrap();
    let actions = drain_rendezvous(&mut r);
    assert_eq!(
        rendezvous_sent(&actions, ALICE),
        vec![RendezvousMsg::Joined { reply: reply() }]
    );
    assert_eq!(rendezvous_sent(&actions, BOB), vec![RendezvousMsg::Linked]);
    assert_eq!((r.waiting(), r.links()), (0, 1));

    let to_bob = RendezvousMsg::relay(vec![1; 450]).unwrap();
    let to_alice = RendezvousMsg::relay(vec![2; 10]).unwrap();
    // Two frames in one chunk, split across two deliveries.
    let mut both = to_bob.encode();
    both.extend(to_bob.encode());
    r.handle_data(NOW + 2, ALICE, &both[..300]).unwrap();
    r.handle_data(NOW + 2, ALICE, &both[300..]).unwrap();
    r.handle_data(NOW + 2, BOB, &to_alice.encode()).unwrap();
    let actions = drain_rendezvous(&mut r);
    assert_eq!(rendezvous_sent(&actions, BOB), vec![to_bob.clone(), to_bob]);
    assert_eq!(rendezvous_sent(&actions, ALICE), vec![to_alice]);
}

#[test]
fn a_wrong_cookie_is_refused_and_the_joiner_closed() {
    let mut r = rendezvous_service();
    r.handle_data(NOW, ALICE, &RendezvousMsg::Establish(COOKIE).encode())
        .unwrap();
    drain_rendezvous(&mut r);
    let err = r
        .handle_data(NOW, BOB, &join(Cookie([0x34; 32])))
        .unwrap_err();
    assert_eq!(err, RendezvousError::UnknownCookie);
    let actions = drain_rendezvous(&mut r);
    assert_eq!(
        rendezvous_sent(&actions, BOB),
        vec![RendezvousMsg::Refused(RendezvousRefusal::UnknownCookie)]
    );
    assert!(rendezvous_closed(&actions, BOB));
    assert!(rendezvous_sent(&actions, ALICE).is_empty());
    assert_eq!((r.waiting(), r.links()), (1, 0));
}

#[test]
fn a_cookie_is_consumed_by_its_first_join() {
    let mut r = linked();
    let err = r
        .handle_data(NOW, StreamHandle(3), &join(COOKIE))
        .unwrap_err();
    assert_eq!(err, RendezvousError::UnknownCookie);
    assert!(rendezvous_closed(
        &drain_rendezvous(&mut r),
        StreamHandle(3)
    ));
    assert_eq!(r.links(), 1);
}

#[test]
fn a_duplicate_cookie_is_refused() {
    let mut r = rendezvous_service();
    r.handle_data(NOW, ALICE, &RendezvousMsg::Establish(COOKIE).encode())
        .unwrap();
    let err = r
        .handle_data(
            NOW,
            StreamHandle(3),
            &RendezvousMsg::Establish(COOKIE).encode(),
        )
        .unwrap_err();
    assert_eq!(err, RendezvousError::DuplicateCookie);
    let actions = drain_rendezvous(&mut r);
    assert_eq!(
        rendezvous_sent(&actions, StreamHandle(3)),
        vec![RendezvousMsg::Refused(RendezvousRefusal::DuplicateCookie)]
    );
    // The join goes to the first establisher.
    r.handle_data(NOW, BOB, &join(COOKIE)).unwrap();
    assert!(!rendezvous_sent(&drain_rendezvous(&mut r), ALICE).is_empty());
}

#[test]
fn one_side_closing_closes_the_other() {
    for closing in [ALICE, BOB] {
        let mut r = linked();
        r.handle_stream_closed(closing);
        let other = if closing == ALICE { BOB } else { ALICE };
        let actions = drain_rendezvous(&mut r);
        assert!(rendezvous_closed(&actions, other));
        assert_eq!((r.links(), r.streams(), r.timers()), (0, 0, 0));
        r.handle_stream_closed(other); // idempotent
    }
}

#[test]
fn unjoined_cookies_expire_and_idle_links_close() {
    let mut r = rendezvous_service();
    r.handle_data(NOW, ALICE, &RendezvousMsg::Establish(COOKIE).encode())
        .unwrap();
    drain_rendezvous(&mut r);
    assert_eq!(r.poll_timeout(), Some(NOW + 120));
    r.handle_timeout(NOW + 120);
    let actions = drain_rendezvous(&mut r);
    assert_eq!(
        rendezvous_sent(&actions, ALICE),
        vec![RendezvousMsg::Refused(RendezvousRefusal::Expired)]
    );
    assert!(rendezvous_closed(&actions, ALICE));
    assert_eq!((r.waiting(), r.streams(), r.timers()), (0, 0, 0));

    // A linked pair that relays keeps its link; silence closes both sides.
    let mut r = linked();
    r.handle_data(
        NOW + 200,
        ALICE,
        &RendezvousMsg::relay(vec![1]).unwrap().encode(),
    )
    .unwrap();
    r.handle_timeout(NOW + 301);
    assert_eq!(r.links(), 1);
    r.handle_timeout(NOW + 500);
    let actions = drain_rendezvous(&mut r);
    assert!(rendezvous_closed(&actions, ALICE) && rendezvous_closed(&actions, BOB));
    assert_eq!(
        (r.links(), r.streams(), r.timers(), r.poll_timeout()),
        (0, 0, 0, None)
    );
}

#[test]
fn relaying_before_the_link_and_garbage_close_the_stream() {
    let mut r = rendezvous_service();
    let err = r
        .handle_data(NOW, ALICE, &RendezvousMsg::relay(vec![1]).unwrap().encode())
        .unwrap_err();
    assert!(matches!(err, RendezvousError::UnexpectedMessage { .. }));
    assert!(rendezvous_closed(&drain_rendezvous(&mut r), ALICE));

    let err = r.handle_data(NOW, BOB, &[0, 3, 9, 9, 9]).unwrap_err();
    assert!(matches!(err, RendezvousError::Malformed(_)));
    let actions = drain_rendezvous(&mut r);
    assert_eq!(
        rendezvous_sent(&actions, BOB),
        vec![RendezvousMsg::Refused(RendezvousRefusal::Malformed)]
    );
    assert_eq!(r.streams(), 0);
}

#[test]
fn tables_are_bounded() {
    let config = RendezvousConfig {
        max_waiting: 1,
        max_links: 1,
        max_streams: 4,
        ..RendezvousConfig::default()
    };
    let mut r = Rendezvous::new(config);
    r.handle_data(NOW, ALICE, &RendezvousMsg::Establish(COOKIE).encode())
        .unwrap();
    assert_eq!(
        r.handle_data(
            NOW,
            StreamHandle(3),
            &RendezvousMsg::Establish(Cookie([1; 32])).encode()
        ),
        Err(RendezvousError::WaitingFull { max: 1 })
    );
    r.handle_data(NOW, BOB, &join(COOKIE)).unwrap();
    r.handle_data(
        NOW,
        StreamHandle(3),
        &RendezvousMsg::Establish(Cookie([1; 32])).encode(),
    )
    .unwrap();
    assert_eq!(
        r.handle_data(NOW, StreamHandle(4), &join(Cookie([1; 32]))),
        Err(RendezvousError::LinksFull { max: 1 })
    );
    // Stream 4 was closed; 1, 2, 3 remain; a fifth stream fits, a sixth does not.
    r.handle_data(NOW, StreamHandle(5), &[0]).unwrap();
    assert_eq!(
        r.handle_data(NOW, StreamHandle(6), &[0]),
        Err(RendezvousError::TooManyStreams { max: 4 })
    );
}
