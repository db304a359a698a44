//! Every decoder of the messaging services (presence and rendezvous messages, the stream
//! deframer, presence record values, sealed introductions): errors, never panics.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    psp_net::rendezvous::fuzz_decode_all(data);
});
