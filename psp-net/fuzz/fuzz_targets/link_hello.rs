//! Any bytes into the link hello decoder (the first frame on every overlay link, before the
//! peer is known): never panics, and a decoded hello round-trips (checked inside the hook).
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Err(reason) = psp_net::driver::decode_link_hello(data) {
        assert!(!reason.contains("round-trip"), "{reason}");
    }
});
