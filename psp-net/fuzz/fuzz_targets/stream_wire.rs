//! See `checks/stream_wire.rs`: the checks are shared with `tests/fuzz_regressions.rs`.
#![no_main]
use libfuzzer_sys::fuzz_target;

#[path = "../checks/stream_wire.rs"]
mod checks;

fuzz_target!(|data: &[u8]| {
    checks::check(data);
});
