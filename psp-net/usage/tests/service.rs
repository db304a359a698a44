//! The oracle's `usage` service over in-memory streams: tickets that a distribution node
//! admits, refusals with the code a client acts on, two halves over two streams paired into a
//! batch, malformed and misdirected frames, the stream bound, idle timeouts, frames split
//! anywhere, and random bytes that never panic.

mod common;

use std::sync::OnceLock;

use common::*;
use proptest::prelude::*;
use psp_rendezvous::StreamHandle;
use psp_usage::puzzle::{self, Challenge};
use psp_usage::report::Half;
use psp_usage::ticket::{Admission, SignedTicket};
use psp_usage::wire::{deliver, request_ticket, MAX_USAGE_BODY_LEN, USAGE_WIRE_VERSION};
use psp_usage::{
    Accepted, Action, AnswerReader, Handled, ServiceConfig, Solution, UsageError, UsageMsg,
    UsageRefusal, UsageService, USAGE_SERVICE,
};

const TIMEOUT: u64 = 30;

fn service_with(config: ServiceConfig) -> UsageService {
    UsageService::new(ticket_issuer(0), collector(), config)
}

fn service() -> UsageService {
    service_with(ServiceConfig::default())
}

fn drain(svc: &mut UsageService) -> Vec<Action> {
    std::iter::from_fn(|| svc.poll_action()).collect()
}

/// The stream's one answer: exactly a `Send` of a frame and a `Close`, both on `stream`.
fn answer(svc: &mut UsageService, stream: StreamHandle) -> UsageMsg {
    let actions = drain(svc);
    let [Action::Send {
        stream: sent,
        bytes,
    }, Action::Close { stream: closed }] = actions.as_slice()
    else {
        panic!("expected Send then Close, got {actions:?}");
    };
    assert_eq!((*sent, *closed), (stream, stream));
    AnswerReader::new()
        .feed(bytes)
        .expect("a valid answer")
        .expect("a whole answer")
}

fn refused(svc: &mut UsageService, stream: StreamHandle) -> UsageRefusal {
    match answer(svc, stream) {
        UsageMsg::Refused(reason) => reason,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

fn oracle() -> psp_onion::crypto::NodeId {
    node(&oracle_key(0))
}

/// Halves of one honest session, made once for the binary (tokens are RSA signatures).
fn halves() -> &'static Session {
    static HALVES: OnceLock<Session> = OnceLock::new();
    HALVES.get_or_init(|| honest_session(&mut token_issuer(0), &relay_key(1), 1, 10_000, 9_900))
}

#[test]
fn the_service_name_is_usage() {
    assert_eq!(USAGE_SERVICE, "usage");
}

#[test]
fn a_solved_puzzle_buys_a_ticket_that_a_distribution_node_admits() {
    let mut svc = service();
    let key = session_key(1);
    let stream = StreamHandle(1);
    let request = request_ticket(&solve(&oracle(), &key, BLOCK));
    assert_eq!(
        svc.handle_data(NOW, stream, &request),
        Ok(Handled::TicketIssued)
    );
    let UsageMsg::Ticket(ticket) = answer(&mut svc, stream) else {
        panic!("expected a ticket");
    };
    assert!(ticket.signature_valid());
    assert_eq!(ticket.ticket.oracle, oracle());
    assert_eq!(
        ticket.ticket.session,
        psp_primitives::rewards::session_id_of(&key.public())
    );
    let relay = relay_key(1);
    let admission = Admission::new(ticket, &key, &node(&relay), &STREAM, &CHALLENGE);
    let admitted = gate(&relay)
        .admit(NOW, &STREAM, &CHALLENGE, &admission)
        .expect("admitted");
    assert_eq!(admitted.session_key(), key.public());
    assert_eq!(svc.streams(), 0);
    assert_eq!(svc.issuer().issued_len(), 1);
}

#[test]
fn stale_wrong_and_repeated_puzzles_are_refused_with_their_codes() {
    let mut svc = service();
    let key = session_key(2);

    // A block the oracle does not know as recent.
    let stale = solve(&oracle(), &key, [0x01; 32]);
    let err = svc.handle_data(NOW, StreamHandle(1), &request_ticket(&stale));
    assert!(matches!(err, Err(UsageError::StaleBlock { .. })), "{err:?}");
    assert_eq!(
        refused(&mut svc, StreamHandle(1)),
        UsageRefusal::StalePuzzle
    );

    // A nonce that does not solve the puzzle.
    let challenge = Challenge {
        genesis: GENESIS,
        block: BLOCK,
        oracle: oracle(),
        session_key: key.public(),
    };
    let nonce = (0..)
        .find(|&n| puzzle::verify(&challenge, TEST_DIFFICULTY, n).is_err())
        .expect("a wrong nonce");
    let wrong = Solution {
        block: BLOCK,
        session_key: key.public(),
        nonce,
    };
    let err = svc.handle_data(NOW, StreamHandle(2), &request_ticket(&wrong));
    assert!(
        matches!(err, Err(UsageError::WrongSolution { .. })),
        "{err:?}"
    );
    assert_eq!(
        refused(&mut svc, StreamHandle(2)),
        UsageRefusal::WrongSolution
    );

    // The right solution once, then again for the same key.
    let right = request_ticket(&solve(&oracle(), &key, BLOCK));
    assert_eq!(
        svc.handle_data(NOW, StreamHandle(3), &right),
        Ok(Handled::TicketIssued)
    );
    assert!(matches!(
        answer(&mut svc, StreamHandle(3)),
        UsageMsg::Ticket(_)
    ));
    let err = svc.handle_data(NOW + 1, StreamHandle(4), &right);
    assert!(
        matches!(err, Err(UsageError::AlreadyIssued { .. })),
        "{err:?}"
    );
    assert_eq!(
        refused(&mut svc, StreamHandle(4)),
        UsageRefusal::AlreadyIssued
    );
    assert_eq!(svc.issuer().issued_len(), 1);
}

#[test]
fn a_relay_half_and_a_client_half_over_two_streams_pair_into_a_batch() {
    let mut svc = service();
    let s = halves();
    assert_eq!(
        svc.handle_data(
            NOW,
            StreamHandle(10),
            &deliver(&Half::Relay(s.relay.clone()))
        ),
        Ok(Handled::HalfAccepted(Accepted::Waiting))
    );
    assert_eq!(answer(&mut svc, StreamHandle(10)), UsageMsg::Accepted);
    assert_eq!(svc.collector().stats(EPOCH).pending, 1);
    assert_eq!(
        svc.handle_data(
            NOW,
            StreamHandle(11),
            &deliver(&Half::Client(s.client.clone()))
        ),
        Ok(Handled::HalfAccepted(Accepted::Paired))
    );
    assert_eq!(answer(&mut svc, StreamHandle(11)), UsageMsg::Accepted);

    let batch = svc.collector_mut().take_batch(EPOCH).expect("a batch");
    assert_eq!(batch.epoch, EPOCH);
    assert_eq!(batch.records.len(), 1);
    assert_eq!(batch.records[0].relay_report.usage.bytes, 10_000);
    assert_eq!(batch.records[0].client_report.usage.bytes, 9_900);

    // The same half again is a duplicate.
    let err = svc.handle_data(
        NOW,
        StreamHandle(12),
        &deliver(&Half::Client(s.client.clone())),
    );
    assert!(matches!(err, Err(UsageError::Duplicate { .. })), "{err:?}");
    assert_eq!(refused(&mut svc, StreamHandle(12)), UsageRefusal::Duplicate);
}

#[test]
fn a_half_for_an_unknown_epoch_is_refused_with_its_code() {
    let mut svc = service();
    let mut relay = halves().relay.clone();
    relay.epoch = EPOCH + 5;
    let err = svc.handle_data(NOW, StreamHandle(1), &deliver(&Half::Relay(relay)));
    assert!(
        matches!(err, Err(UsageError::UnknownEpoch { .. })),
        "{err:?}"
    );
    assert_eq!(
        refused(&mut svc, StreamHandle(1)),
        UsageRefusal::UnknownEpoch
    );
}

#[test]
fn garbage_frames_are_refused_malformed_and_closed() {
    // A whole frame whose body has an unknown version.
    let mut svc = service();
    let err = svc.handle_data(NOW, StreamHandle(1), &[0, 3, 9, 9, 9]);
    assert!(
        matches!(err, Err(UsageError::UnsupportedVersion { .. })),
        "{err:?}"
    );
    assert_eq!(refused(&mut svc, StreamHandle(1)), UsageRefusal::Malformed);

    // An unknown message type.
    let err = svc.handle_data(NOW, StreamHandle(2), &[0, 2, USAGE_WIRE_VERSION, 0x77]);
    assert!(
        matches!(err, Err(UsageError::UnknownKind { .. })),
        "{err:?}"
    );
    assert_eq!(refused(&mut svc, StreamHandle(2)), UsageRefusal::Malformed);

    // A length prefix shorter than a body header: framing lost.
    let err = svc.handle_data(NOW, StreamHandle(3), &[0, 1, 0]);
    assert!(matches!(err, Err(UsageError::Framing { .. })), "{err:?}");
    assert_eq!(refused(&mut svc, StreamHandle(3)), UsageRefusal::Malformed);

    // A truncated solution inside a whole frame.
    let mut frame = request_ticket(&solve(&oracle(), &session_key(3), BLOCK));
    frame.pop();
    frame[1] -= 1;
    let err = svc.handle_data(NOW, StreamHandle(4), &frame);
    assert!(matches!(err, Err(UsageError::Truncated { .. })), "{err:?}");
    assert_eq!(refused(&mut svc, StreamHandle(4)), UsageRefusal::Malformed);
    assert_eq!(svc.streams(), 0);
    assert_eq!(svc.issuer().issued_len(), 0);
}

#[test]
fn a_frame_longer_than_any_usage_message_is_refused_before_it_is_buffered() {
    let mut svc = service();
    // Announces 8 000 bytes (the shared deframer would hold up to 8 KiB).
    let mut start = vec![0x1f, 0x40, USAGE_WIRE_VERSION, 0x03];
    start.resize(400, 0);
    assert_eq!(
        svc.handle_data(NOW, StreamHandle(1), &start),
        Ok(Handled::Pending)
    );
    let err = svc.handle_data(NOW, StreamHandle(1), &[0; 400]);
    assert!(
        matches!(err, Err(UsageError::OutOfBounds { .. })),
        "{err:?}"
    );
    assert_eq!(refused(&mut svc, StreamHandle(1)), UsageRefusal::Malformed);
    assert_eq!(svc.streams(), 0);

    // The same body sent whole in one call is refused by the decoder.
    let mut whole = vec![0x03, 0x20, USAGE_WIRE_VERSION, 0x03];
    whole.resize(2 + 0x0320, 0);
    const { assert!(0x0320 > MAX_USAGE_BODY_LEN) };
    let err = svc.handle_data(NOW, StreamHandle(2), &whole);
    assert!(
        matches!(err, Err(UsageError::OutOfBounds { .. })),
        "{err:?}"
    );
    assert_eq!(refused(&mut svc, StreamHandle(2)), UsageRefusal::Malformed);
}

#[test]
fn an_answer_sent_as_a_request_is_refused() {
    let mut svc = service();
    let ticket = halves().relay.ticket;
    let answers = [
        UsageMsg::Accepted,
        UsageMsg::Refused(UsageRefusal::Busy),
        UsageMsg::Ticket(ticket),
    ];
    for (i, msg) in answers.into_iter().enumerate() {
        let stream = StreamHandle(i as u64);
        let err = svc.handle_data(NOW, stream, &msg.encode());
        assert!(
            matches!(err, Err(UsageError::UnexpectedMessage { .. })),
            "{err:?}"
        );
        assert_eq!(refused(&mut svc, stream), UsageRefusal::Malformed);
    }
}

#[test]
fn streams_beyond_the_bound_are_refused_busy_and_the_others_kept() {
    let mut svc = service_with(ServiceConfig {
        max_streams: 2,
        request_timeout_secs: TIMEOUT,
    });
    let request = request_ticket(&solve(&oracle(), &session_key(4), BLOCK));
    for i in 0..2 {
        assert_eq!(
            svc.handle_data(NOW, StreamHandle(i), &request[..5]),
            Ok(Handled::Pending)
        );
    }
    assert!(drain(&mut svc).is_empty());
    let err = svc.handle_data(NOW, StreamHandle(2), &request);
    assert_eq!(err, Err(UsageError::TooManyStreams { max: 2 }));
    assert_eq!(refused(&mut svc, StreamHandle(2)), UsageRefusal::Busy);
    assert_eq!(svc.streams(), 2);
    // The held streams still complete; then there is room again.
    assert_eq!(
        svc.handle_data(NOW, StreamHandle(0), &request[5..]),
        Ok(Handled::TicketIssued)
    );
    assert!(matches!(
        answer(&mut svc, StreamHandle(0)),
        UsageMsg::Ticket(_)
    ));
    assert_eq!(svc.streams(), 1);
    assert_eq!(
        svc.handle_data(NOW, StreamHandle(3), &request[..1]),
        Ok(Handled::Pending)
    );
    assert_eq!(svc.streams(), 2);
}

#[test]
fn an_idle_stream_is_closed_at_its_deadline() {
    let mut svc = service();
    assert_eq!(svc.poll_timeout(), None);
    assert_eq!(
        svc.handle_data(NOW, StreamHandle(1), &[0]),
        Ok(Handled::Pending)
    );
    assert_eq!(
        svc.handle_data(NOW + 10, StreamHandle(2), &[]),
        Ok(Handled::Pending)
    );
    // Later bytes do not move the deadline: a request must be whole within the timeout.
    assert_eq!(
        svc.handle_data(NOW + 20, StreamHandle(1), &[80]),
        Ok(Handled::Pending)
    );
    assert_eq!(svc.poll_timeout(), Some(NOW + TIMEOUT));
    svc.handle_timeout(NOW + TIMEOUT - 1);
    assert!(drain(&mut svc).is_empty());
    svc.handle_timeout(NOW + TIMEOUT);
    assert_eq!(
        drain(&mut svc),
        vec![Action::Close {
            stream: StreamHandle(1)
        }]
    );
    assert_eq!(svc.streams(), 1);
    assert_eq!(svc.poll_timeout(), Some(NOW + 10 + TIMEOUT));
    // A stream closed by the peer is forgotten with its deadline.
    svc.handle_stream_closed(StreamHandle(2));
    svc.handle_stream_closed(StreamHandle(2));
    assert_eq!(svc.streams(), 0);
    assert_eq!(svc.poll_timeout(), None);
    svc.handle_timeout(u64::MAX);
    assert!(drain(&mut svc).is_empty());
}

#[test]
fn a_request_split_at_every_position_is_answered() {
    let solution = solve(&oracle(), &session_key(5), BLOCK);
    let request = request_ticket(&solution);
    for cut in 0..=request.len() {
        let mut svc = service();
        let first = svc.handle_data(NOW, StreamHandle(1), &request[..cut]);
        if cut < request.len() {
            assert_eq!(first, Ok(Handled::Pending), "cut {cut}");
            assert!(drain(&mut svc).is_empty());
            assert_eq!(
                svc.handle_data(NOW, StreamHandle(1), &request[cut..]),
                Ok(Handled::TicketIssued),
                "cut {cut}"
            );
        } else {
            assert_eq!(first, Ok(Handled::TicketIssued));
        }
        let actions = drain(&mut svc);
        let Some(Action::Send { bytes, .. }) = actions.first() else {
            panic!("no answer at cut {cut}");
        };
        let whole = AnswerReader::new()
            .feed(bytes)
            .expect("valid")
            .expect("whole");
        assert!(matches!(&whole, UsageMsg::Ticket(t) if t.signature_valid()));
        // The answer split at every position comes out whole too.
        for answer_cut in 0..=bytes.len() {
            let mut reader = AnswerReader::new();
            let head = reader.feed(&bytes[..answer_cut]).expect("valid");
            let msg = match head {
                Some(msg) => msg,
                None => reader
                    .feed(&bytes[answer_cut..])
                    .expect("valid")
                    .expect("whole"),
            };
            assert_eq!(msg, whole, "answer cut {answer_cut}");
        }
    }
}

#[test]
fn a_half_delivered_one_byte_at_a_time_is_accepted() {
    let mut svc = service();
    let frame = deliver(&Half::Client(halves().client.clone()));
    let (last, head) = frame.split_last().expect("non-empty");
    for b in head {
        assert_eq!(
            svc.handle_data(NOW, StreamHandle(7), std::slice::from_ref(b)),
            Ok(Handled::Pending)
        );
    }
    assert_eq!(
        svc.handle_data(NOW, StreamHandle(7), &[*last]),
        Ok(Handled::HalfAccepted(Accepted::Waiting))
    );
    assert_eq!(answer(&mut svc, StreamHandle(7)), UsageMsg::Accepted);
}

#[test]
fn every_message_round_trips_and_decoding_is_strict() {
    let s = halves();
    let solution = solve(&oracle(), &session_key(6), BLOCK);
    let mut msgs = vec![
        UsageMsg::TicketRequest(solution),
        UsageMsg::Ticket(s.relay.ticket),
        UsageMsg::Report(Half::Relay(s.relay.clone())),
        UsageMsg::Report(Half::Client(s.client.clone())),
        UsageMsg::Accepted,
    ];
    for code in 0..=u8::MAX {
        if let Some(reason) = UsageRefusal::from_code(code) {
            assert_eq!(reason.code(), code);
            msgs.push(UsageMsg::Refused(reason));
        }
    }
    assert_eq!(msgs.len(), 5 + 14);
    for msg in msgs {
        let frame = msg.encode();
        let body = &frame[2..];
        assert_eq!(
            usize::from(u16::from_be_bytes([frame[0], frame[1]])),
            body.len()
        );
        assert!(body.len() <= MAX_USAGE_BODY_LEN);
        assert_eq!(UsageMsg::decode(body).as_ref(), Ok(&msg));
        // One byte more or less is refused.
        let mut longer = body.to_vec();
        longer.push(0);
        assert!(UsageMsg::decode(&longer).is_err(), "{}", msg.name());
        assert!(
            UsageMsg::decode(&body[..body.len() - 1]).is_err(),
            "{}",
            msg.name()
        );
    }
    // The documented layout of a refusal, and an unknown code.
    assert_eq!(
        UsageMsg::Refused(UsageRefusal::StalePuzzle).encode(),
        vec![0, 3, 1, 5, 2]
    );
    assert_eq!(UsageMsg::Accepted.encode(), vec![0, 2, 1, 4]);
    assert!(matches!(
        UsageMsg::decode(&[1, 5, 200]),
        Err(UsageError::UnknownKind { kind: 200, .. })
    ));
    assert_eq!(
        SignedTicket::decode(&s.relay.ticket.encode()),
        Ok(s.relay.ticket)
    );
}

#[test]
fn errors_map_to_the_refusal_a_client_acts_on() {
    let cases = [
        (
            UsageError::StaleBlock { block: [0; 4] },
            UsageRefusal::StalePuzzle,
        ),
        (
            UsageError::Expired {
                valid_until: 1,
                now: 2,
                skew: 0,
            },
            UsageRefusal::Expired,
        ),
        (UsageError::Full { what: "x", max: 1 }, UsageRefusal::Busy),
        (UsageError::Forged { oracle: [0; 4] }, UsageRefusal::Forged),
        (
            UsageError::UnknownOracle { oracle: [0; 4] },
            UsageRefusal::WrongOracle,
        ),
        (
            UsageError::ExpiredEpoch {
                epoch: 1,
                oldest: 2,
            },
            UsageRefusal::Expired,
        ),
        (UsageError::DifficultyTooHigh(99), UsageRefusal::Other),
    ];
    for (error, refusal) in cases {
        assert_eq!(error.refusal(), refusal, "{error}");
    }
}

#[test]
fn the_answer_reader_refuses_requests_and_lost_framing() {
    let request = request_ticket(&solve(&oracle(), &session_key(7), BLOCK));
    assert!(matches!(
        AnswerReader::new().feed(&request),
        Err(UsageError::UnexpectedMessage { .. })
    ));
    assert!(matches!(
        AnswerReader::new().feed(&[0, 0]),
        Err(UsageError::Framing { .. })
    ));
    assert_eq!(AnswerReader::new().feed(&[0]), Ok(None));
}

/// Frames the fuzzers mutate: every request and answer type.
fn valid_frames() -> &'static Vec<Vec<u8>> {
    static FRAMES: OnceLock<Vec<Vec<u8>>> = OnceLock::new();
    FRAMES.get_or_init(|| {
        let s = halves();
        vec![
            request_ticket(&solve(&oracle(), &session_key(8), BLOCK)),
            deliver(&Half::Relay(s.relay.clone())),
            deliver(&Half::Client(s.client.clone())),
            UsageMsg::Ticket(s.relay.ticket).encode(),
            UsageMsg::Accepted.encode(),
            UsageMsg::Refused(UsageRefusal::Other).encode(),
        ]
    })
}

/// A service that is cheap to make for every case (no epochs: halves are refused before any
/// signature check, tickets are issued).
fn fuzz_service() -> UsageService {
    UsageService::new(
        ticket_issuer(0),
        psp_usage::Collector::new(GENESIS, psp_usage::CollectorConfig::default()),
        ServiceConfig {
            max_streams: 4,
            request_timeout_secs: TIMEOUT,
        },
    )
}

/// Runs every action; each stream gets at most one answer and every answer decodes.
fn check_actions(svc: &mut UsageService) {
    let mut answered = std::collections::HashSet::new();
    for action in drain(svc) {
        if let Action::Send { stream, bytes } = action {
            assert!(answered.insert(stream), "two answers on {stream:?}");
            let msg = AnswerReader::new().feed(&bytes).expect("valid answer");
            assert!(msg.is_some());
        }
    }
    assert!(svc.streams() <= 4);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1_000))]

    #[test]
    fn random_bytes_never_panic(
        chunks in proptest::collection::vec(
            (0u64..6, proptest::collection::vec(any::<u8>(), 0..900)),
            1..8,
        ),
        tick in 0u64..60,
    ) {
        let mut svc = fuzz_service();
        let mut now = NOW;
        for (stream, bytes) in &chunks {
            let _ = svc.handle_data(now, StreamHandle(*stream), bytes);
            check_actions(&mut svc);
            now += tick;
            svc.handle_timeout(now);
            check_actions(&mut svc);
        }
        for (stream, bytes) in &chunks {
            if let Ok(msg) = UsageMsg::decode(bytes) {
                prop_assert_eq!(&msg.encode()[2..], &bytes[..]);
            }
            let _ = AnswerReader::new().feed(bytes);
            svc.handle_stream_closed(StreamHandle(*stream));
        }
        prop_assert_eq!(svc.streams(), 0);
        prop_assert_eq!(svc.poll_timeout(), None);
    }

    #[test]
    fn mutated_frames_never_panic_and_decode_only_to_what_they_encode(
        which in 0usize..6,
        flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..4),
        cut in any::<usize>(),
    ) {
        let mut frame = valid_frames()[which].clone();
        for (at, xor) in flips {
            let i = at % frame.len();
            frame[i] ^= xor;
        }
        let cut = cut % (frame.len() + 1);
        if let Ok(msg) = UsageMsg::decode(&frame[2..]) {
            prop_assert_eq!(&msg.encode()[2..], &frame[2..]);
        }
        let mut svc = fuzz_service();
        // The driver feeds a stream only until the service closes it.
        if svc.handle_data(NOW, StreamHandle(1), &frame[..cut]) == Ok(Handled::Pending) {
            prop_assert!(drain(&mut svc).is_empty());
            let _ = svc.handle_data(NOW, StreamHandle(1), &frame[cut..]);
        }
        check_actions(&mut svc);
        let mut reader = AnswerReader::new();
        let _ = reader.feed(&frame[..cut]);
        let _ = reader.feed(&frame[cut..]);
    }
}
