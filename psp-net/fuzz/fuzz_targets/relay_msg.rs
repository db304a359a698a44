//! Any bytes into the relay message decoder; decoded messages must round-trip.
#![no_main]
use libfuzzer_sys::fuzz_target;
use psp_net::cell::RelayMsg;

fuzz_target!(|data: &[u8]| {
    if let Ok(msg) = RelayMsg::decode(data) {
        let mut buf = vec![0u8; data.len().max(8)];
        let n = msg
            .encode_into(&mut buf)
            .expect("a decoded message fits where it came from");
        assert_eq!(RelayMsg::decode(&buf[..n]).ok(), Some(msg));
    }
});
