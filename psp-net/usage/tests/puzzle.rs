//! The session puzzle: solve and verify, wrong nonces, stale blocks, wrong keys and
//! oracles, difficulty.

mod common;

use common::*;
use psp_usage::puzzle::{
    self, leading_zero_bits, Challenge, PuzzleVerifier, RecentBlocks, Solution, MAX_DIFFICULTY,
};
use psp_usage::UsageError;

fn challenge(session: u32) -> Challenge {
    Challenge {
        genesis: GENESIS,
        block: BLOCK,
        oracle: node(&oracle_key(0)),
        session_key: session_key(session).public(),
    }
}

fn verifier() -> PuzzleVerifier {
    let mut v = PuzzleVerifier::new(GENESIS, node(&oracle_key(0)), TEST_DIFFICULTY, 4).unwrap();
    v.note_finalized(BLOCK);
    v
}

#[test]
fn a_solution_verifies_and_has_the_difficulty() {
    let c = challenge(1);
    let nonce = puzzle::solve(&c, 12, 0, 1 << 24).unwrap().expect("found");
    assert!(leading_zero_bits(&c.hash(nonce)) >= 12);
    assert_eq!(puzzle::verify(&c, 12, nonce), Ok(()));
    // The verifier the oracle runs agrees and names the session the ticket is for.
    let solution = Solution {
        block: BLOCK,
        session_key: c.session_key,
        nonce: puzzle::solve(&c, TEST_DIFFICULTY, 0, 1 << 20)
            .unwrap()
            .unwrap(),
    };
    let solved = verifier().verify(&solution).expect("valid");
    assert_eq!(
        solved.session(),
        psp_primitives::rewards::session_id_of(&c.session_key)
    );
}

#[test]
fn solving_is_resumable_and_bounded() {
    let c = challenge(2);
    let nonce = puzzle::solve(&c, 10, 0, 1 << 24).unwrap().unwrap();
    // A slice that ends before the first solution finds nothing; the next slice finds it.
    if nonce > 0 {
        assert_eq!(puzzle::solve(&c, 10, 0, nonce).unwrap(), None);
    }
    assert_eq!(puzzle::solve(&c, 10, nonce, 1).unwrap(), Some(nonce));
    assert_eq!(puzzle::solve(&c, 10, 0, 0).unwrap(), None);
}

#[test]
fn a_wrong_nonce_is_refused() {
    let c = challenge(3);
    let d = 12;
    // The first nonce below the difficulty, found by the hash itself.
    let wrong = (0..)
        .find(|n| leading_zero_bits(&c.hash(*n)) < u32::from(d))
        .unwrap();
    let got = leading_zero_bits(&c.hash(wrong));
    assert_eq!(
        puzzle::verify(&c, d, wrong),
        Err(UsageError::WrongSolution { got, required: d })
    );
}

#[test]
fn difficulty_is_exact_and_bounded() {
    let c = challenge(4);
    let nonce = puzzle::solve(&c, 8, 0, 1 << 20).unwrap().unwrap();
    let bits = leading_zero_bits(&c.hash(nonce));
    let bits_u8 = u8::try_from(bits).unwrap();
    assert_eq!(puzzle::verify(&c, bits_u8, nonce), Ok(()));
    assert_eq!(
        puzzle::verify(&c, bits_u8 + 1, nonce),
        Err(UsageError::WrongSolution {
            got: bits,
            required: bits_u8 + 1
        })
    );
    assert_eq!(
        puzzle::verify(&c, MAX_DIFFICULTY + 1, nonce),
        Err(UsageError::DifficultyTooHigh(MAX_DIFFICULTY + 1))
    );
    assert!(puzzle::solve(&c, MAX_DIFFICULTY + 1, 0, 1).is_err());
    assert!(PuzzleVerifier::new(GENESIS, node(&oracle_key(0)), MAX_DIFFICULTY + 1, 4).is_err());
    assert_eq!(leading_zero_bits(&[0; 32]), 256);
    let mut h = [0u8; 32];
    h[1] = 0b0001_0000;
    assert_eq!(leading_zero_bits(&h), 11);
}

#[test]
fn a_stale_or_unknown_block_is_refused() {
    let key = session_key(5);
    let mut v = verifier();
    let good = solve(&node(&oracle_key(0)), &key, BLOCK);
    assert!(v.verify(&good).is_ok());
    // A block the oracle never saw finalized: refused before any hashing.
    let made_up = solve(&node(&oracle_key(0)), &key, [0x11; 32]);
    assert_eq!(
        v.verify(&made_up),
        Err(UsageError::StaleBlock { block: [0x11; 4] })
    );
    // Four newer blocks push BLOCK out of the bounded set: the solution is stale now.
    for i in 0..4u8 {
        v.note_finalized([i; 32]);
    }
    assert_eq!(v.recent().len(), 4);
    assert_eq!(
        v.verify(&good),
        Err(UsageError::StaleBlock { block: [0xb1; 4] })
    );
}

#[test]
fn a_solution_is_bound_to_the_session_key_and_the_oracle() {
    let v = verifier();
    let good = solve(&node(&oracle_key(0)), &session_key(6), BLOCK);
    // Another session key with the same nonce: the hash changes, the solution fails.
    let other_key = Solution {
        session_key: session_key(7).public(),
        ..good
    };
    assert!(matches!(
        v.verify(&other_key),
        Err(UsageError::WrongSolution { .. })
    ));
    // Solved for oracle 1, presented to oracle 0.
    let for_other_oracle = solve(&node(&oracle_key(1)), &session_key(6), BLOCK);
    assert!(matches!(
        v.verify(&for_other_oracle),
        Err(UsageError::WrongSolution { .. })
    ));
}

#[test]
fn recent_blocks_are_a_bounded_fifo_without_duplicates() {
    let mut r = RecentBlocks::new(3);
    assert!(r.is_empty());
    for b in [[1; 32], [2; 32], [2; 32], [3; 32], [4; 32]] {
        r.push(b);
    }
    assert_eq!(r.len(), 3);
    assert!(!r.contains(&[1; 32]));
    assert!(r.contains(&[2; 32]) && r.contains(&[4; 32]));
    assert_eq!(r.latest(), Some([4; 32]));
}

#[test]
fn solutions_round_trip_and_decode_strictly() {
    let s = solve(&node(&oracle_key(0)), &session_key(8), BLOCK);
    let bytes = s.encode();
    assert_eq!(bytes.len(), puzzle::SOLUTION_LEN);
    assert_eq!(Solution::decode(&bytes), Ok(s));
    assert!(matches!(
        Solution::decode(&bytes[..72]),
        Err(UsageError::Truncated { .. })
    ));
    let mut long = bytes.clone();
    long.push(0);
    assert_eq!(
        Solution::decode(&long),
        Err(UsageError::TrailingBytes {
            what: "puzzle solution",
            extra: 1
        })
    );
    let mut v2 = bytes;
    v2[0] = 2;
    assert!(matches!(
        Solution::decode(&v2),
        Err(UsageError::UnsupportedVersion { version: 2, .. })
    ));
}

#[test]
fn the_hash_is_the_documented_layout_hashed_in_one_go() {
    // The solver's cloned-state hashing against a one-shot BLAKE2b-256 of the documented
    // bytes (psp-onion's, an independent code path).
    let c = challenge(9);
    for nonce in [0u64, 1, 0xdead_beef, u64::MAX] {
        let bytes = [
            puzzle::PUZZLE_CONTEXT,
            &c.genesis,
            &c.block,
            &c.oracle.0,
            &c.session_key,
            &nonce.to_be_bytes(),
        ]
        .concat();
        assert_eq!(bytes.len(), 155);
        assert_eq!(c.hash(nonce), psp_onion::crypto::blake2_256(&bytes));
    }
}
