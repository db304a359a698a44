//! Round-trip, bad-input and property tests of the cell codec.

use super::*;
use proptest::prelude::*;

fn cid(v: u32) -> CircId {
    CircId::new(v).unwrap()
}

fn sid(v: u16) -> StreamId {
    StreamId::new(v).unwrap()
}

fn all_chan_msgs() -> Vec<ChanMsg> {
    vec![
        ChanMsg::Create(NtorClientMsg {
            node_id: NodeId([1; 32]),
            onion_key: OnionPublic([2; 32]),
            client_pk: [3; 32],
        }),
        ChanMsg::Created(NtorServerMsg {
            server_pk: [4; 32],
            auth: [5; 32],
        }),
        ChanMsg::Relay(RelayBody(Box::new([6; BODY_LEN]))),
        ChanMsg::RelayEarly(RelayBody(Box::new([7; BODY_LEN]))),
        ChanMsg::Destroy(DestroyReason::Integrity),
        ChanMsg::Destroy(DestroyReason::Unknown(200)),
    ]
}

#[test]
fn size_arithmetic() {
    assert_eq!(CELL_HEADER_LEN + BODY_LEN, CELL_LEN);
    assert_eq!(BODY_LEN, 507);
    assert_eq!(RELAY_PLAINTEXT_LEN, 491);
    assert_eq!(MAX_BACKWARD_DATA, 486);
    assert_eq!(max_forward_data(1), 486);
    assert_eq!(max_forward_data(3), 454);
}

#[test]
fn every_chan_msg_round_trips_in_512_bytes() {
    for msg in all_chan_msgs() {
        let cell = Cell {
            circ_id: cid(0x8000_0001),
            msg,
        };
        let bytes = cell.encode();
        assert_eq!(bytes.len(), CELL_LEN);
        assert_eq!(Cell::decode(&bytes).unwrap(), cell);
    }
}

/// Wire layout, byte for byte.
#[test]
fn destroy_cell_known_bytes() {
    let bytes = Cell {
        circ_id: cid(0x01020304),
        msg: ChanMsg::Destroy(DestroyReason::Requested),
    }
    .encode();
    assert_eq!(&bytes[..6], &[1, 2, 3, 4, 5, 3]);
    assert!(bytes[6..].iter().all(|&b| b == 0));
}

#[test]
fn bad_cells_are_errors() {
    let good = Cell {
        circ_id: cid(9),
        msg: ChanMsg::Destroy(DestroyReason::None),
    }
    .encode();
    assert_eq!(Cell::decode(&good[..511]), Err(CellError::WrongLength(511)));
    assert_eq!(Cell::decode(&[0; 513]), Err(CellError::WrongLength(513)));
    assert_eq!(Cell::decode(&[]), Err(CellError::WrongLength(0)));
    let mut zero = good;
    zero[..4].fill(0);
    assert_eq!(Cell::decode(&zero), Err(CellError::ZeroCircId));
    let mut unknown = good;
    unknown[4] = 99;
    assert_eq!(Cell::decode(&unknown), Err(CellError::UnknownCommand(99)));
    let mut create = good;
    create[4] = 1; // CREATE with htype 0
    assert!(matches!(
        Cell::decode(&create),
        Err(CellError::BadHandshake { .. })
    ));
}

#[test]
fn relay_msgs_round_trip() {
    let msgs = vec![
        RelayMsg::Begin {
            stream: sid(1),
            service: "echo".into(),
        },
        RelayMsg::Connected { stream: sid(2) },
        RelayMsg::Data {
            stream: sid(3),
            data: vec![9; MAX_BACKWARD_DATA],
        },
        RelayMsg::End {
            stream: sid(4),
            reason: EndReason::UnknownService,
        },
        RelayMsg::Extend(NtorClientMsg {
            node_id: NodeId([1; 32]),
            onion_key: OnionPublic([2; 32]),
            client_pk: [3; 32],
        }),
        RelayMsg::Extended(NtorServerMsg {
            server_pk: [4; 32],
            auth: [5; 32],
        }),
        RelayMsg::Drop,
        RelayMsg::Sendme,
    ];
    for m in msgs {
        let mut buf = [0xee; RELAY_PLAINTEXT_LEN];
        let n = m.encode_into(&mut buf).unwrap();
        assert!(n <= RELAY_PLAINTEXT_LEN);
        assert_eq!(
            RelayMsg::decode(&buf).unwrap(),
            m,
            "padding after the message is ignored"
        );
    }
}

#[test]
fn bad_relay_msgs_are_errors() {
    assert!(RelayMsg::decode(&[]).is_err());
    assert_eq!(
        RelayMsg::decode(&[99, 0, 0, 0, 0]),
        Err(CellError::UnknownRelayCommand(99))
    );
    assert!(matches!(
        RelayMsg::decode(&[3, 0, 1, 0, 10, 1]),
        Err(CellError::BadLength { .. })
    ));
    assert!(matches!(
        RelayMsg::decode(&[3, 0, 0, 0, 0]),
        Err(CellError::BadStreamId { .. })
    ));
    assert_eq!(
        RelayMsg::decode(&[1, 0, 1, 0, 2, b'a', b' ']),
        Err(CellError::BadServiceName)
    );
    let too_big = RelayMsg::Data {
        stream: sid(1),
        data: vec![0; MAX_BACKWARD_DATA + 1],
    };
    assert!(matches!(
        too_big.encode_into(&mut [0; RELAY_PLAINTEXT_LEN]),
        Err(CellError::TooLong(_))
    ));
}

proptest! {
    #[test]
    fn cell_decoder_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        let _ = Cell::decode(&bytes);
    }

    #[test]
    fn cell_decoder_on_512_random_bytes_round_trips_when_ok(
        bytes in proptest::collection::vec(any::<u8>(), CELL_LEN..=CELL_LEN),
        cmd in 0u8..8,
    ) {
        let mut b = bytes;
        b[4] = cmd;
        if let Ok(cell) = Cell::decode(&b) {
            let again = Cell::decode(&cell.encode()).unwrap();
            prop_assert_eq!(again, cell);
        }
    }

    #[test]
    fn relay_decoder_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        if let Ok(m) = RelayMsg::decode(&bytes) {
            let mut buf = [0u8; 600];
            let n = m.encode_into(&mut buf).unwrap();
            prop_assert_eq!(RelayMsg::decode(&buf[..n]).unwrap(), m);
        }
    }

    #[test]
    fn handshake_decoders_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
        let _ = read_ntor_client(&mut Reader::new(&bytes));
        let _ = read_ntor_server(&mut Reader::new(&bytes));
    }
}
