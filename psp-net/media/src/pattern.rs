//! The test pattern producers send when no media source is given (`psp stream publish`
//! without a file), and the check consumers run on what they decrypt: frame `i` is `i` as
//! 8 big-endian bytes followed by SHA-256([`PATTERN_CONTEXT`] ‖ `i`) repeated to the frame's
//! length. A consumer (Rust or the browser's watch page) recomputes every frame from its
//! first 8 bytes, so it can tell a frame that arrived intact from one that did not without
//! knowing the producer's settings.

use sha2::{Digest, Sha256};

/// Domain separation of the pattern's filler.
pub const PATTERN_CONTEXT: &[u8] = b"psp/stream/test-pattern/v1";
/// The shortest pattern frame: the index and one filler byte.
pub const MIN_PATTERN_LEN: usize = 9;

fn filler(index: u64) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(PATTERN_CONTEXT);
    h.update(index.to_be_bytes());
    h.finalize().into()
}

/// Frame `index` of the pattern, `len` bytes long (at least [`MIN_PATTERN_LEN`]).
pub fn test_pattern(index: u64, len: usize) -> Vec<u8> {
    let len = len.max(MIN_PATTERN_LEN);
    let fill = filler(index);
    let mut out = Vec::with_capacity(len);
    out.extend_from_slice(&index.to_be_bytes());
    while out.len() < len {
        let n = (len - out.len()).min(fill.len());
        out.extend_from_slice(&fill[..n]);
    }
    out
}

/// The index of `frame` if it is an intact pattern frame (of any length), else `None`.
pub fn check_test_pattern(frame: &[u8]) -> Option<u64> {
    if frame.len() < MIN_PATTERN_LEN {
        return None;
    }
    let mut index = [0u8; 8];
    index.copy_from_slice(&frame[..8]);
    let index = u64::from_be_bytes(index);
    (test_pattern(index, frame.len()) == frame).then_some(index)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pattern_frames_check_and_damaged_ones_do_not() {
        for (i, len) in [(0u64, 9usize), (1, 1_200), (u64::MAX, 65_536), (7, 33)] {
            let frame = test_pattern(i, len);
            assert_eq!(frame.len(), len);
            assert_eq!(check_test_pattern(&frame), Some(i));
            let mut flipped = frame.clone();
            let last = flipped.len() - 1;
            flipped[last] ^= 1;
            assert_eq!(check_test_pattern(&flipped), None);
            let mut other = frame;
            other[7] ^= 1;
            assert_eq!(check_test_pattern(&other), None);
        }
        assert_eq!(check_test_pattern(&[0; 8]), None);
        assert_eq!(test_pattern(3, 0).len(), MIN_PATTERN_LEN);
    }
}
