//! Any bytes into the ntor message decoders, and decoded client messages into the server
//! handshake (which must refuse cleanly unless addressed to this node's key).
#![no_main]
use libfuzzer_sys::fuzz_target;
use psp_net::bytes::Reader;
use psp_net::cell::{read_ntor_client, read_ntor_server};
use psp_net::crypto::{ntor_server, NodeId, OnionSecret};

fuzz_target!(|data: &[u8]| {
    let _ = read_ntor_server(&mut Reader::new(data));
    if let Ok(mut m) = read_ntor_client(&mut Reader::new(data)) {
        let id = NodeId([1; 32]);
        let b = OnionSecret::from_bytes([2; 32]);
        let _ = ntor_server(&id, &b, &m, [3; 32]);
        // Also with the right id and key, so the DH paths see fuzzed points.
        m.node_id = id;
        m.onion_key = b.public();
        let _ = ntor_server(&id, &b, &m, [3; 32]);
    }
});
