//! See `checks/dht_record.rs`: the checks are shared with `tests/fuzz_regressions.rs`.
#![no_main]
use libfuzzer_sys::fuzz_target;

#[path = "../checks/dht_record.rs"]
mod checks;

fuzz_target!(|data: &[u8]| {
    checks::check(data);
});
