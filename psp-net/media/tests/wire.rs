//! The media link's messages: round trips, strict decoding, the deframer.

use psp_media::load::LoadReport;
use psp_media::sframe::MAX_FRAME_LEN;
use psp_media::wire::{frame_prefix, Deframer, ErrorCode, MediaMsg, MAX_MESSAGE_LEN};
use psp_media::{MediaError, StreamId};
use psp_onion::crypto::{NodeId, Sr25519Keypair};

fn all_messages() -> Vec<MediaMsg> {
    let key = Sr25519Keypair::from_seed(&[1; 32]);
    let report = LoadReport {
        node: NodeId(key.public()),
        stream_id: StreamId([2; 32]),
        subscribers: 7,
        bytes_per_sec_out: 1_000,
        capacity_bytes_per_sec: 10_000,
        at: 1_700_000_000_000,
    }
    .sign(&key);
    vec![
        MediaMsg::Publish {
            stream_id: StreamId([9; 32]),
            token: [8; 32],
        },
        MediaMsg::Frame(vec![0xaa; 1_200]),
        MediaMsg::Load(report),
        MediaMsg::NeedNodes { count: 3 },
        MediaMsg::AddNodes {
            nodes: vec![NodeId([1; 32]), NodeId([2; 32])],
        },
        MediaMsg::Error {
            code: ErrorCode::OverRate,
            reason: "over 2.5 Mbit/s for 10 s".into(),
        },
    ]
}

#[test]
fn every_message_round_trips_through_the_deframer() {
    let msgs = all_messages();
    let stream: Vec<u8> = msgs.iter().flat_map(MediaMsg::encode).collect();
    // Whole, and byte by byte.
    assert_eq!(Deframer::new().feed(&stream).unwrap(), msgs);
    let mut d = Deframer::new();
    let mut got = Vec::new();
    for b in &stream {
        got.extend(d.feed(std::slice::from_ref(b)).unwrap());
    }
    assert_eq!(got, msgs);
    assert_eq!(d.buffered(), 0);
}

#[test]
fn frame_prefix_matches_the_encoding() {
    let frame = vec![0x11; 100];
    let encoded = MediaMsg::Frame(frame.clone()).encode();
    assert_eq!(encoded[..5], frame_prefix(frame.len()));
    assert_eq!(encoded[5..], frame[..]);
}

#[test]
fn lengths_are_exact() {
    assert_eq!(
        MediaMsg::NeedNodes { count: 1 }.encode(),
        [0, 0, 0, 2, 4, 1]
    );
    let publish = MediaMsg::Publish {
        stream_id: StreamId([0; 32]),
        token: [0; 32],
    }
    .encode();
    assert_eq!(publish.len(), 4 + 1 + 64);
    assert_eq!(MAX_MESSAGE_LEN, 1 + MAX_FRAME_LEN);
}

#[test]
fn decoding_is_strict() {
    let bad: &[(&[u8], &str)] = &[
        (&[], "empty"),
        (&[0x00], "type 0"),
        (&[0x07], "type 7"),
        (&[0x01, 0], "short Publish"),
        (&[0x02, 1, 2, 3], "Frame below the SFrame minimum"),
        (&[0x03, 0], "short Load"),
        (&[0x04], "NeedNodes without count"),
        (&[0x04, 0], "NeedNodes 0"),
        (&[0x04, 33], "NeedNodes 33"),
        (&[0x04, 1, 0], "NeedNodes trailing"),
        (&[0x05, 0], "AddNodes 0"),
        (&[0x05, 1, 0], "AddNodes short"),
        (&[0x06], "Error without code"),
        (&[0x06, 0], "Error code 0"),
        (&[0x06, 8], "Error code 8"),
        (&[0x06, 1, 0xff], "Error reason not UTF-8"),
    ];
    for (bytes, what) in bad {
        assert!(MediaMsg::decode(bytes).is_err(), "{what} accepted");
    }
    let mut publish = MediaMsg::Publish {
        stream_id: StreamId([0; 32]),
        token: [0; 32],
    }
    .encode();
    publish.push(0);
    assert!(matches!(
        MediaMsg::decode(&publish[4..]),
        Err(MediaError::TrailingBytes { .. })
    ));
    let mut dup = vec![0x05, 2];
    dup.extend_from_slice(&[7; 64]);
    assert!(matches!(
        MediaMsg::decode(&dup),
        Err(MediaError::DuplicateNode { .. })
    ));
    let mut long_reason = vec![0x06, 1];
    long_reason.extend_from_slice(&[b'a'; 257]);
    assert!(matches!(
        MediaMsg::decode(&long_reason),
        Err(MediaError::TooLarge { .. })
    ));
}

#[test]
fn the_deframer_refuses_oversized_and_empty_frames_at_once() {
    let mut d = Deframer::new();
    let too_long = u32::try_from(MAX_MESSAGE_LEN + 1).unwrap().to_be_bytes();
    assert!(matches!(
        d.feed(&too_long),
        Err(MediaError::TooLarge { .. })
    ));
    let mut d = Deframer::new();
    assert!(matches!(
        d.feed(&[0, 0, 0, 0]),
        Err(MediaError::TooShort { .. })
    ));
    // The largest frame passes.
    let max = MediaMsg::Frame(vec![0; MAX_FRAME_LEN]).encode();
    assert_eq!(Deframer::new().feed(&max).unwrap().len(), 1);
}
