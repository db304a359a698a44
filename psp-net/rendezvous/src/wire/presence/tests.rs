//! Presence messages: round trips, and refusal of truncated, padded and nonsensical bodies.

use super::*;
use crate::wire::Deframer;

fn record() -> OwnerSignedRecord {
    let content = RecordContent {
        kind: RecordKind::Presence,
        owner: [1; 32],
        topic: [2; 32],
        publisher: [3; 32],
        seq: 4,
        issued_at: 5,
        expires_at: 6,
        value: vec![7; 221],
    };
    OwnerSignedRecord::new(content, [8; 64]).unwrap()
}

fn sealed() -> SealedIntroduction {
    SealedIntroduction::new("sealed", vec![9; 453]).unwrap()
}

fn all_messages() -> Vec<PresenceMsg> {
    let mut all = vec![
        PresenceMsg::Register(Register {
            record: record(),
            limits: ChannelLimits::default(),
        }),
        PresenceMsg::KeepAlive(record()),
        PresenceMsg::Registered(Registered {
            expires_at: 77,
            limits: ChannelLimits {
                rate_per_minute: 1,
                burst: 2,
                cap: 3,
            },
        }),
        PresenceMsg::Introduction {
            id: IntroId(42),
            sealed: sealed(),
        },
        PresenceMsg::Accept(IntroId(1)),
        PresenceMsg::Decline(IntroId(2)),
        PresenceMsg::Cancel(IntroId(3)),
        PresenceMsg::CapReached,
        PresenceMsg::Withdrawn(IntroId(4)),
        PresenceMsg::Introduce {
            target: [5; 32],
            sealed: sealed(),
        },
        PresenceMsg::IntroAccepted,
        PresenceMsg::IntroDeclined,
    ];
    all.extend(REGISTER_REFUSALS.map(PresenceMsg::Refused));
    all.extend(INTRO_REFUSALS.map(PresenceMsg::IntroRefused));
    all
}

#[test]
fn every_message_round_trips_through_a_stream() {
    let messages = all_messages();
    let stream: Vec<u8> = messages.iter().flat_map(PresenceMsg::encode).collect();
    let mut deframer = Deframer::default();
    // Cell-sized chunks that do not line up with the frames.
    let bodies: Vec<Vec<u8>> = stream
        .chunks(450)
        .flat_map(|chunk| deframer.feed(chunk).unwrap())
        .collect();
    let decoded: Vec<PresenceMsg> = bodies
        .iter()
        .map(|b| PresenceMsg::decode(b).unwrap())
        .collect();
    assert_eq!(decoded, messages);
}

#[test]
fn truncated_and_padded_bodies_are_refused() {
    for msg in all_messages() {
        let frame = msg.encode();
        let body = &frame[2..];
        for cut in 0..body.len() {
            assert!(PresenceMsg::decode(&body[..cut]).is_err(), "{}", msg.name());
        }
        let mut padded = body.to_vec();
        padded.push(0);
        assert!(matches!(
            PresenceMsg::decode(&padded),
            Err(WireError::TrailingBytes { count: 1, .. })
        ));
    }
}

#[test]
fn nonsense_values_are_refused() {
    assert!(matches!(
        PresenceMsg::decode(&[1, types::REFUSED, 0]),
        Err(WireError::InvalidValue { value: 0, .. })
    ));
    assert!(matches!(
        PresenceMsg::decode(&[1, types::INTRO_REFUSED, 99]),
        Err(WireError::InvalidValue { value: 99, .. })
    ));
    assert!(matches!(
        PresenceMsg::decode(&[1, 0xee]),
        Err(WireError::UnknownType { got: 0xee, .. })
    ));
    // A sealed introduction announcing more than the bound.
    let mut body = vec![1, types::INTRODUCE];
    body.extend_from_slice(&[0; 32]);
    body.extend_from_slice(&(MAX_SEALED_INTRODUCTION_LEN as u16 + 1).to_be_bytes());
    assert!(matches!(
        PresenceMsg::decode(&body),
        Err(WireError::FieldTooLong { .. })
    ));
}

#[test]
fn only_presence_records_of_bounded_size_are_carried() {
    let (mut content, sig) = record().into_parts();
    content.kind = RecordKind::Stream;
    assert!(OwnerSignedRecord::new(content.clone(), sig).is_err());
    content.kind = RecordKind::Presence;
    content.value = vec![0; MAX_VALUE_LEN + 1];
    assert!(OwnerSignedRecord::new(content, sig).is_err());
}

#[test]
fn the_largest_register_fits_a_frame() {
    let (mut content, sig) = record().into_parts();
    content.value = vec![0; MAX_VALUE_LEN];
    let msg = PresenceMsg::Register(Register {
        record: OwnerSignedRecord::new(content, sig).unwrap(),
        limits: ChannelLimits::default(),
    });
    let frame = msg.encode();
    assert_eq!(frame.len(), 2 + 4_290);
    assert_eq!(Deframer::default().feed(&frame).unwrap().len(), 1);
}

#[test]
fn known_answers() {
    assert_eq!(
        PresenceMsg::Accept(IntroId(5)).encode(),
        [0, 10, 1, 0x06, 0, 0, 0, 0, 0, 0, 0, 5]
    );
    assert_eq!(PresenceMsg::CapReached.encode(), [0, 2, 1, 0x09]);
    assert_eq!(
        PresenceMsg::IntroRefused(IntroRefusal::RateLimited).encode(),
        [0, 3, 1, 0x13, 3]
    );
    let mut introduce = vec![0, 39, 1, 0x10];
    introduce.extend_from_slice(&[0x22; 32]);
    introduce.extend_from_slice(&[0, 3, 7, 8, 9]);
    let sealed = SealedIntroduction::new("sealed", vec![7, 8, 9]).unwrap();
    assert_eq!(
        PresenceMsg::Introduce {
            target: [0x22; 32],
            sealed
        }
        .encode(),
        introduce
    );
}
