//! A sequence of fuzzed cells from fuzzed peers into one relay state machine: never panics.
#![no_main]
use libfuzzer_sys::fuzz_target;
use psp_net::cell::CELL_LEN;
use psp_net::circuit::{Config, Peer, Relay, Services, StaticDirectory, Timestamp};
use psp_net::crypto::{NodeId, OnionSecret};
use rand::SeedableRng;

fuzz_target!(|data: &[u8]| {
    let mut relay = Relay::new(
        NodeId([1; 32]),
        OnionSecret::from_bytes([1; 32]),
        Config::default(),
        Box::new(StaticDirectory::default()),
        Box::new(Services::default()),
        Box::new(rand::rngs::StdRng::seed_from_u64(0)),
    );
    for (i, chunk) in data.chunks(CELL_LEN + 1).enumerate() {
        let Some((&who, cell)) = chunk.split_first() else {
            break;
        };
        let peer = if who & 1 == 0 {
            Peer::Client(u64::from(who >> 1))
        } else {
            Peer::Node(NodeId([who; 32]))
        };
        let now = Timestamp(i as u64 * 10);
        relay.handle_cell(now, peer, cell);
        while relay.poll_transmit(now).is_some() {}
        while relay.poll_event().is_some() {}
    }
});
