//! Random and mutated bytes into every decoder and machine: nothing panics, refusals answer
//! and close, and no state is left behind.

mod common;

use std::sync::OnceLock;

use common::*;
use proptest::prelude::*;
use psp_receipts::{IssuerConfig, Receipt};
use psp_rendezvous::StreamHandle;
use psp_stream::client::StreamCreator;
use psp_stream::record::{verify_stream_record, StreamRecord};
use psp_stream::wire::{FormatFlags, LandingMsg, OracleMsg};
use psp_stream::{fuzz_decode_all, Action};

struct Fixture {
    world: World,
    receipt: Receipt,
    request: Vec<u8>,
    create: Vec<u8>,
    record: Vec<u8>,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let world = World::new();
        let receipt = hd_receipt(&world);
        let (_, request) = alice_hd_client(&world, StreamHandle(1));
        let (_, create) = StreamCreator::new(
            StreamHandle(2),
            world.landing.public(),
            &receipt,
            world.dist(2),
            FormatFlags::webrtc(),
            NOW,
            TIMEOUT,
        )
        .expect("create");
        let record = StreamRecord::sign(
            &world.landing,
            psp_stream::record::StreamId([1; 32]),
            FormatFlags::webrtc(),
            NOW,
            NOW + 60,
            world.dist(2),
        )
        .encode();
        Fixture {
            world,
            receipt,
            request: request.bytes,
            create: create.bytes,
            record,
        }
    })
}

fn mutate(base: &[u8], at: usize, byte: u8, cut: usize) -> Vec<u8> {
    let mut m = base.to_vec();
    if !m.is_empty() {
        let i = at % m.len();
        m[i] ^= byte | 1;
    }
    m.truncate(m.len().saturating_sub(cut));
    m
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn decoders_never_panic(data in proptest::collection::vec(any::<u8>(), 0..2_048)) {
        fuzz_decode_all(&data);
        let f = fixture();
        let _ = verify_stream_record(&data, NOW, &f.world.registry);
    }

    /// Whatever decodes re-encodes to the same bytes.
    #[test]
    fn decoding_is_canonical(at in any::<usize>(), byte in any::<u8>(), cut in 0usize..4) {
        let f = fixture();
        for base in [&f.request, &f.create] {
            let m = mutate(&base[2..], at, byte, cut);
            if let Ok(msg) = OracleMsg::decode(&m) {
                prop_assert_eq!(&msg.encode()[2..], &m[..]);
            }
            if let Ok(msg) = LandingMsg::decode(&m) {
                prop_assert_eq!(&msg.encode()[2..], &m[..]);
            }
        }
        let m = mutate(&f.record, at, byte, cut);
        if let Ok(r) = StreamRecord::decode(&m) {
            prop_assert_eq!(r.encode(), m);
        }
    }

    /// Mutated requests into the services: at most one answer, the stream closed or waiting,
    /// nothing published unless a stream was really created.
    #[test]
    fn services_answer_mutated_requests_and_keep_no_state(
        at in any::<usize>(), byte in any::<u8>(), cut in 0usize..3,
    ) {
        let f = fixture();
        let stream = StreamHandle(4);
        let mut oracle = f.world.oracle(&f.world.oracle_a, IssuerConfig::default());
        let m = mutate(&f.request, at, byte, cut);
        let result = oracle.handle_data(NOW, stream, &m, &f.world.ctx());
        let actions = drain(|| oracle.poll_action());
        if actions.is_empty() {
            prop_assert!(result.is_ok());
            prop_assert_eq!(oracle.streams(), 1);
        } else {
            prop_assert!(closed(&actions, stream));
            prop_assert_eq!(oracle.streams(), 0);
            prop_assert!(OracleMsg::decode(&sent(&actions, stream)[2..]).is_ok());
        }
        let mut landing = f.world.landing_node();
        let m = mutate(&f.create, at, byte, cut);
        let result = landing.handle_data(NOW, stream, &m, &f.world.registry);
        let actions = drain(|| landing.poll_action());
        let published = actions.iter().filter(|a| matches!(a, Action::Publish { .. })).count();
        prop_assert!(published <= 1);
        prop_assert_eq!(published == 1, result.is_ok() && !actions.is_empty());
        prop_assert_eq!(landing.verifier().spent_len(), published);
    }

    /// Random bytes into the client machines: they end with one event at most, never panic.
    #[test]
    fn client_machines_survive_any_answer(data in proptest::collection::vec(any::<u8>(), 0..1_500)) {
        let f = fixture();
        let (mut creator, _) = StreamCreator::new(
            StreamHandle(2),
            f.world.landing.public(),
            &f.receipt,
            f.world.dist(2),
            FormatFlags::webrtc(),
            NOW,
            TIMEOUT,
        ).expect("creator");
        let out = creator.handle_data(NOW, &data, &f.world.registry);
        prop_assert!(out.events.len() <= 1);
        let mut framed = (data.len() as u16).to_be_bytes().to_vec();
        framed.extend_from_slice(&data);
        let out = creator.handle_data(NOW, &framed, &f.world.registry);
        prop_assert!(out.events.len() <= 1);
    }
}

#[test]
fn a_receipt_client_refuses_a_blind_signature_that_does_not_verify() {
    let f = fixture();
    let (mut client, _) = alice_hd_client(&f.world, StreamHandle(1));
    let bogus = OracleMsg::ReceiptIssued {
        blind_signature: psp_stream::wire::BoundedBytes::new("s", vec![3; 256]).expect("bounded"),
    };
    let mut out = client.handle_data(NOW, &bogus.encode());
    assert!(matches!(
        out.events.remove(0),
        psp_stream::client::ReceiptEvent::Failed(psp_stream::StreamError::Receipt(_))
    ));
    assert!(client.is_closed());
}
