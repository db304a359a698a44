//! The client puzzle an oracle asks for before it issues a session ticket (PSP overview §8.3).
//!
//! A client looking for a ticket makes a fresh sr25519 *session key* and searches for a
//! `nonce` such that
//!
//! ```text
//! BLAKE2b-256(PUZZLE_CONTEXT ‖ genesis ‖ block ‖ oracle ‖ session key ‖ nonce as u64 BE)
//! ```
//!
//! has at least `difficulty` leading zero bits. `block` is a recent *finalized* block hash:
//! the oracle accepts only blocks in its [`RecentBlocks`] (a bounded set its host fills from
//! finality notifications), so solutions cannot be computed before the block exists and go
//! stale once the block leaves the set. `oracle` is the node the ticket is asked of, so one
//! solution buys one ticket from one oracle, not one from each. The session key makes each
//! solution good for one session id only.
//!
//! ## Why a hash puzzle
//!
//! Tor's onion-service proof of work uses Equi-X, a memory-hard asymmetric puzzle that narrows
//! the gap between a GPU and a CPU; its reference implementation is LGPL-3.0, which this
//! Apache-2.0 project does not link. A hash puzzle needs no new code or licence (BLAKE2b is
//! the project's hash, already in the tree), verifies with one hash, and its cost is simple to
//! reason about: `2^difficulty` attempts on average, geometrically distributed. The price is
//! that it is *GPU-friendly*: a GPU does perhaps 100–1000× the attempts per second of one CPU
//! core, so an attacker with a GPU gets tickets that much cheaper than a phone. The puzzle is
//! therefore a rate limiter on ticket floods, not what makes sessions count: the consumer
//! token ([`crate::token`]) is what a relay cannot mint for free.
//!
//! The prefix (the 147 bytes before the nonce) is the same for every attempt, so [`solve`]
//! absorbs it once and clones the BLAKE2b state: each attempt then costs one compression.

use std::collections::VecDeque;

use blake2::digest::consts::U32;
use blake2::{Blake2b, Digest};
use psp_onion::bytes::Reader;
use psp_onion::crypto::NodeId;
use psp_primitives::rewards::{session_id_of, SessionId, SessionKey};

use crate::error::short;
use crate::UsageError;

/// Domain separation of the puzzle hash.
pub const PUZZLE_CONTEXT: &[u8] = b"psp/usage/puzzle/v1";

/// The default difficulty in leading zero bits: 2^20 ≈ 1.05 million attempts on average,
/// ≈ 150 ms on one core of the development machine in a release build (6.3–7.3 million
/// attempts per second; `cargo bench -p psp-usage --bench usage`, figures in the README). The solve
/// time is geometrically distributed: its standard deviation is about its mean, and one
/// client in ten waits more than 2.3 times the mean.
pub const DEFAULT_DIFFICULTY: u8 = 20;

/// The highest difficulty accepted: 2^32 attempts is about ten minutes on one core, far
/// beyond what a viewer waits for.
pub const MAX_DIFFICULTY: u8 = 32;

/// Recent finalized blocks an oracle accepts by default: 64 blocks of 3 s are about three
/// minutes, enough for a client to read a block, solve, and reach the oracle over a circuit.
pub const DEFAULT_RECENT_BLOCKS: usize = 64;

/// What a puzzle is bound to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Challenge {
    /// The chain's genesis hash.
    pub genesis: [u8; 32],
    /// A recent finalized block hash.
    pub block: [u8; 32],
    /// The oracle asked for the ticket.
    pub oracle: NodeId,
    /// The client's fresh session key.
    pub session_key: SessionKey,
}

impl Challenge {
    /// The hash state after the fixed prefix.
    fn prefix_state(&self) -> Blake2b<U32> {
        let mut h = Blake2b::<U32>::new();
        h.update(PUZZLE_CONTEXT);
        h.update(self.genesis);
        h.update(self.block);
        h.update(self.oracle.0);
        h.update(self.session_key);
        h
    }

    /// The puzzle hash of `nonce`.
    pub fn hash(&self, nonce: u64) -> [u8; 32] {
        let mut h = self.prefix_state();
        h.update(nonce.to_be_bytes());
        h.finalize().into()
    }

    /// The session id the solved puzzle buys a ticket for.
    pub fn session(&self) -> SessionId {
        session_id_of(&self.session_key)
    }
}

/// Leading zero bits of a hash (256 for all zeros).
pub fn leading_zero_bits(hash: &[u8; 32]) -> u32 {
    let mut bits = 0;
    for byte in hash {
        if *byte == 0 {
            bits += 8;
        } else {
            return bits + byte.leading_zeros();
        }
    }
    bits
}

fn check_difficulty(difficulty: u8) -> Result<(), UsageError> {
    if difficulty > MAX_DIFFICULTY {
        return Err(UsageError::DifficultyTooHigh(difficulty));
    }
    Ok(())
}

/// Searches nonces `start`, `start + 1`, ... for at most `max_attempts` attempts and returns
/// the first that solves the puzzle, or `None` (continue from `start + max_attempts`). Sans
/// IO: the caller bounds each slice of work and may spread slices over threads or ticks.
pub fn solve(
    challenge: &Challenge,
    difficulty: u8,
    start: u64,
    max_attempts: u64,
) -> Result<Option<u64>, UsageError> {
    check_difficulty(difficulty)?;
    let prefix = challenge.prefix_state();
    let required = u32::from(difficulty);
    let mut nonce = start;
    for _ in 0..max_attempts {
        let mut h = prefix.clone();
        h.update(nonce.to_be_bytes());
        let hash: [u8; 32] = h.finalize().into();
        if leading_zero_bits(&hash) >= required {
            return Ok(Some(nonce));
        }
        nonce = nonce.wrapping_add(1);
    }
    Ok(None)
}

/// Checks a nonce against the puzzle: one hash. Does not check that the block is recent
/// (see [`PuzzleVerifier`]).
pub fn verify(challenge: &Challenge, difficulty: u8, nonce: u64) -> Result<(), UsageError> {
    check_difficulty(difficulty)?;
    let got = leading_zero_bits(&challenge.hash(nonce));
    if got < u32::from(difficulty) {
        return Err(UsageError::WrongSolution {
            got,
            required: difficulty,
        });
    }
    Ok(())
}

/// What a client sends an oracle to ask for a ticket: the block it solved against, its
/// session key and the nonce. The genesis and the oracle are implied by the channel.
///
/// Wire format (73 bytes): version (1) ‖ block (32) ‖ session key (32) ‖ nonce (8, BE).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Solution {
    /// The recent finalized block solved against.
    pub block: [u8; 32],
    /// The client's session key.
    pub session_key: SessionKey,
    /// The nonce found.
    pub nonce: u64,
}

/// Wire version of [`Solution`].
pub const SOLUTION_VERSION: u8 = 1;
/// Length of an encoded [`Solution`]: version 1 + block 32 + key 32 + nonce 8.
pub const SOLUTION_LEN: usize = 1 + 32 + 32 + 8;

impl Solution {
    /// The wire encoding.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(SOLUTION_LEN);
        out.push(SOLUTION_VERSION);
        out.extend_from_slice(&self.block);
        out.extend_from_slice(&self.session_key);
        out.extend_from_slice(&self.nonce.to_be_bytes());
        out
    }

    /// Strict decoding: version, exact length. Checks nothing else.
    pub fn decode(bytes: &[u8]) -> Result<Self, UsageError> {
        const WHAT: &str = "puzzle solution";
        let mut r = Reader::new(bytes);
        let version = r.u8().map_err(UsageError::truncated(WHAT))?;
        if version != SOLUTION_VERSION {
            return Err(UsageError::UnsupportedVersion {
                what: WHAT,
                version,
            });
        }
        let block = r.array().map_err(UsageError::truncated(WHAT))?;
        let session_key = r.array().map_err(UsageError::truncated(WHAT))?;
        let nonce = r.u64().map_err(UsageError::truncated(WHAT))?;
        if r.remaining() != 0 {
            return Err(UsageError::TrailingBytes {
                what: WHAT,
                extra: r.remaining(),
            });
        }
        Ok(Solution {
            block,
            session_key,
            nonce,
        })
    }
}

/// The recent finalized block hashes an oracle accepts puzzles against: a bounded FIFO that
/// the host feeds from finality notifications.
#[derive(Clone, Debug)]
pub struct RecentBlocks {
    blocks: VecDeque<[u8; 32]>,
    max: usize,
}

impl RecentBlocks {
    /// An empty set keeping at most `max` blocks (at least one).
    pub fn new(max: usize) -> Self {
        let max = max.max(1);
        RecentBlocks {
            blocks: VecDeque::with_capacity(max),
            max,
        }
    }

    /// Adds a newly finalized block; the oldest leaves once `max` are held. A block already
    /// held is not added twice.
    pub fn push(&mut self, block: [u8; 32]) {
        if self.blocks.contains(&block) {
            return;
        }
        if self.blocks.len() >= self.max {
            self.blocks.pop_front();
        }
        self.blocks.push_back(block);
    }

    /// Whether `block` is accepted.
    pub fn contains(&self, block: &[u8; 32]) -> bool {
        self.blocks.contains(block)
    }

    /// The newest block, to tell clients what to solve against.
    pub fn latest(&self) -> Option<[u8; 32]> {
        self.blocks.back().copied()
    }

    /// Blocks held.
    pub fn len(&self) -> usize {
        self.blocks.len()
    }

    /// Whether no block is held.
    pub fn is_empty(&self) -> bool {
        self.blocks.is_empty()
    }
}

/// An oracle's puzzle check: chain, own id, difficulty and the recent blocks.
#[derive(Clone, Debug)]
pub struct PuzzleVerifier {
    genesis: [u8; 32],
    oracle: NodeId,
    difficulty: u8,
    recent: RecentBlocks,
}

impl PuzzleVerifier {
    /// A verifier for puzzles addressed to `oracle` on the chain `genesis`.
    pub fn new(
        genesis: [u8; 32],
        oracle: NodeId,
        difficulty: u8,
        recent_blocks: usize,
    ) -> Result<Self, UsageError> {
        check_difficulty(difficulty)?;
        Ok(PuzzleVerifier {
            genesis,
            oracle,
            difficulty,
            recent: RecentBlocks::new(recent_blocks),
        })
    }

    /// The difficulty asked for.
    pub fn difficulty(&self) -> u8 {
        self.difficulty
    }

    /// The recent blocks (to tell clients the latest).
    pub fn recent(&self) -> &RecentBlocks {
        &self.recent
    }

    /// Notes a newly finalized block.
    pub fn note_finalized(&mut self, block: [u8; 32]) {
        self.recent.push(block);
    }

    /// Checks a solution: the block is recent, then the hash. Returns the challenge it solves.
    pub fn verify(&self, solution: &Solution) -> Result<Challenge, UsageError> {
        if !self.recent.contains(&solution.block) {
            return Err(UsageError::StaleBlock {
                block: short(&solution.block),
            });
        }
        let challenge = Challenge {
            genesis: self.genesis,
            block: solution.block,
            oracle: self.oracle,
            session_key: solution.session_key,
        };
        verify(&challenge, self.difficulty, solution.nonce)?;
        Ok(challenge)
    }
}
