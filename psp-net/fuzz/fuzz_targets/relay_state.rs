//! One relay driven through real circuits (built with the ntor handshake against its onion
//! key), then fuzzed relay messages under the circuits' layer keys, a next hop's answers,
//! raw cells from every peer, DESTROY, closed links and time. See `checks/relay_state.rs`:
//! the checks are shared with `tests/fuzz_regressions.rs`.
#![no_main]
use libfuzzer_sys::fuzz_target;

#[path = "../checks/relay_state.rs"]
mod checks;

fuzz_target!(|data: &[u8]| {
    checks::check(data);
});
