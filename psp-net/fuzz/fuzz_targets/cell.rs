//! Any bytes into the cell decoder; decoded cells must re-encode to 512 bytes and round-trip.
#![no_main]
use libfuzzer_sys::fuzz_target;
use psp_net::cell::{Cell, CELL_LEN};

fuzz_target!(|data: &[u8]| {
    if let Ok(cell) = Cell::decode(data) {
        let bytes = cell.encode();
        assert_eq!(bytes.len(), CELL_LEN);
        assert_eq!(Cell::decode(&bytes).ok(), Some(cell));
    }
});
