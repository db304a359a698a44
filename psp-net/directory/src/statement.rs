//! The staking statement: the bytes an elected node signs for one slot of its role, and the
//! chain verifies when equivocation is reported.
//!
//! [`statement_message`] must equal `psp_primitives::staking::statement_message` byte for byte
//! (checked in `tests/tests/chain_formats.rs`, which sees both crates); it is written out here so that the overlay does not depend on the
//! runtime's SCALE crates. The SCALE encoding of
//! `(STATEMENT_CONTEXT, genesis, RoleStatement { role, slot, payload_hash })` is:
//!
//! | bytes | field |
//! |---|---|
//! | 1 | compact length of the context: `len << 2` (one byte, since `len < 64`) |
//! | 24 | [`STATEMENT_CONTEXT`] |
//! | 32 | genesis hash |
//! | 1 | role index ([`ROLE_AUTHORITY`], [`ROLE_DISCOVERY`], [`ROLE_ORACLE`]) |
//! | 8 | slot, `u64` little-endian |
//! | 32 | payload hash |
//!
//! 98 bytes in all ([`STATEMENT_LEN`]).

/// Domain separation tag of a role statement (the chain's `STATEMENT_CONTEXT`).
pub const STATEMENT_CONTEXT: &[u8] = b"psp/staking/statement/v1";

/// The chain's `Role::Authority` index.
pub const ROLE_AUTHORITY: u8 = 0;
/// The chain's `Role::Discovery` index: the role directory signatures are made in.
pub const ROLE_DISCOVERY: u8 = 1;
/// The chain's `Role::Oracle` index.
pub const ROLE_ORACLE: u8 = 2;

/// Length of a statement message: 1 + 24 + 32 + 1 + 8 + 32.
pub const STATEMENT_LEN: usize = 1 + STATEMENT_CONTEXT.len() + 32 + 1 + 8 + 32;

// SCALE's single-byte compact form holds lengths below 64.
const _: () = assert!(STATEMENT_CONTEXT.len() < 64);

/// The bytes a node key signs to state `payload_hash` for `slot` of the role `role_index`,
/// bound to the chain by its genesis hash. Equal to `psp_primitives::staking::statement_message`.
pub fn statement_message(
    genesis: &[u8; 32],
    role_index: u8,
    slot: u64,
    payload_hash: &[u8; 32],
) -> Vec<u8> {
    let mut m = Vec::with_capacity(STATEMENT_LEN);
    m.push((STATEMENT_CONTEXT.len() as u8) << 2); // < 64, asserted above
    m.extend_from_slice(STATEMENT_CONTEXT);
    m.extend_from_slice(genesis);
    m.push(role_index);
    m.extend_from_slice(&slot.to_le_bytes());
    m.extend_from_slice(payload_hash);
    m
}

/// The statement a discovery node signs for the directory of `period` hashing to `hash`.
pub(super) fn directory_statement(genesis: &[u8; 32], period: u64, hash: &[u8; 32]) -> Vec<u8> {
    statement_message(genesis, ROLE_DISCOVERY, period, hash)
}
