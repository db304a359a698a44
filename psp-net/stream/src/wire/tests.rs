//! Round trips and strict decoding of every message.

use super::*;
use psp_receipts::KeyId;

use crate::record::StreamId;

fn body(frame: &[u8]) -> &[u8] {
    &frame[2..]
}

fn samples() -> (Vec<OracleMsg>, Vec<LandingMsg>) {
    let oracle = vec![
        OracleMsg::ReceiptRequest {
            certificate: BoundedBytes::new("c", vec![7; MAX_CERTIFICATE_LEN_FOR_TEST]).unwrap(),
            tier: KeyId([3; 32]),
            blinded: BoundedBytes::new("b", vec![9; MAX_BLIND_LEN]).unwrap(),
            signature: [5; 64],
        },
        OracleMsg::ReceiptIssued {
            blind_signature: BoundedBytes::new("s", vec![1; 256]).unwrap(),
        },
        OracleMsg::Refused(OracleRefusal::Exhausted),
        OracleMsg::Refused(OracleRefusal::Internal),
    ];
    let landing = vec![
        LandingMsg::CreateStream {
            receipt: BoundedBytes::new("r", vec![4; 369]).unwrap(),
            distribution_nodes: (0..32u8).map(|i| [i; 32]).collect(),
            format: FormatFlags::webrtc(),
        },
        LandingMsg::StreamCreated {
            stream_id: StreamId([8; 32]),
            record: BoundedBytes::new("rec", vec![2; 300]).unwrap(),
        },
        LandingMsg::Refused(LandingRefusal::Malformed),
        LandingMsg::Refused(LandingRefusal::Busy),
        LandingMsg::Refused(LandingRefusal::WrongLanding),
    ];
    (oracle, landing)
}

const MAX_CERTIFICATE_LEN_FOR_TEST: usize = psp_cert::CERTIFICATE_LEN;

#[test]
fn every_message_round_trips_and_frames_once() {
    let (oracle, landing) = samples();
    for msg in oracle {
        let frame = msg.encode();
        assert_eq!(OracleMsg::decode(body(&frame)), Ok(msg.clone()));
        let bodies = Deframer::default().feed(&frame).unwrap();
        assert_eq!(bodies, vec![body(&frame).to_vec()]);
    }
    for msg in landing {
        let frame = msg.encode();
        assert_eq!(LandingMsg::decode(body(&frame)), Ok(msg.clone()));
    }
}

#[test]
fn the_largest_messages_fit_their_stated_bounds() {
    let (oracle, landing) = samples();
    assert_eq!(
        body(&oracle[0].encode()).len(),
        MAX_RECEIPT_REQUEST_BODY_LEN
    );
    let create = LandingMsg::CreateStream {
        receipt: BoundedBytes::new("r", vec![4; psp_receipts::receipt::MAX_RECEIPT_LEN]).unwrap(),
        distribution_nodes: (0..32u8).map(|i| [i; 32]).collect(),
        format: FormatFlags::webrtc(),
    };
    assert_eq!(body(&create.encode()).len(), MAX_CREATE_STREAM_BODY_LEN);
    assert!(body(&landing[0].encode()).len() <= MAX_MESSAGE_LEN);
}

#[test]
fn trailing_bytes_unknown_types_versions_and_codes_are_refused() {
    let (oracle, landing) = samples();
    for frame in oracle.iter().map(OracleMsg::encode) {
        let mut b = body(&frame).to_vec();
        b.push(0);
        assert!(matches!(
            OracleMsg::decode(&b),
            Err(WireError::TrailingBytes { .. })
        ));
        assert!(OracleMsg::decode(&b[..b.len() - 2]).is_err());
    }
    for frame in landing.iter().map(LandingMsg::encode) {
        let mut b = body(&frame).to_vec();
        b.push(0);
        assert!(matches!(
            LandingMsg::decode(&b),
            Err(WireError::TrailingBytes { .. })
        ));
    }
    assert!(matches!(
        OracleMsg::decode(&[VERSION, 0x7f]),
        Err(WireError::UnknownType { .. })
    ));
    assert!(matches!(
        LandingMsg::decode(&[VERSION, 0x00]),
        Err(WireError::UnknownType { .. })
    ));
    assert_eq!(
        OracleMsg::decode(&[2, 3, 1]),
        Err(WireError::Version { got: 2 })
    );
    for code in [0u8, 10, 255] {
        assert!(matches!(
            OracleMsg::decode(&[VERSION, 3, code]),
            Err(WireError::InvalidValue { .. })
        ));
    }
    for code in [0u8, 13, 255] {
        assert!(matches!(
            LandingMsg::decode(&[VERSION, 3, code]),
            Err(WireError::InvalidValue { .. })
        ));
    }
}

#[test]
fn create_stream_refuses_unknown_flag_bits_and_bad_node_counts() {
    let (_, landing) = samples();
    let frame = landing[0].encode();
    let b = body(&frame).to_vec();
    // Flags sit after header 2 + receipt 2 + 369.
    let flags_at = 2 + 2 + 369;
    for bad in [0x08u8, 0x80, 0xff] {
        let mut m = b.clone();
        m[flags_at] = bad;
        assert!(matches!(
            LandingMsg::decode(&m),
            Err(WireError::InvalidValue {
                field: "format flags",
                ..
            })
        ));
    }
    for bad_count in [0u8, 33] {
        let mut m = b.clone();
        m[flags_at + 1] = bad_count;
        assert!(LandingMsg::decode(&m).is_err());
    }
    // Named reserved bits decode (the landing node refuses them, not the decoder).
    let mut m = b.clone();
    m[flags_at] = FormatFlags::WEBRTC | FormatFlags::RTMP | FormatFlags::RTMPE;
    assert!(LandingMsg::decode(&m).is_ok());
}

#[test]
fn oversized_fields_are_refused() {
    let mut b = vec![VERSION, 2];
    b.extend_from_slice(&((MAX_BLIND_LEN + 1) as u16).to_be_bytes());
    b.extend(vec![0; MAX_BLIND_LEN + 1]);
    assert!(matches!(
        OracleMsg::decode(&b),
        Err(WireError::FieldTooLong { .. })
    ));
}
