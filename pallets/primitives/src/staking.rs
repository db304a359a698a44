//! Staking types: the roles nodes are elected to, the statements elected nodes sign, the
//! evidence that slashes them, and what the `PspStakingApi` runtime API returns.
//!
//! Elected nodes sign statements for *slots* of their role: a discovery node signs one
//! directory per directory period, an authority one certificate per serial number. Two
//! different statements for the same role and slot, both signed by the same node key, are
//! proof of misbehaviour ([`EquivocationEvidence`]) that anyone may submit. The overlay signs
//! [`statement_message`] and the chain verifies exactly those bytes.

use crate::identity::{IdentityKey, IdentitySignature};
use alloc::vec::Vec;
use codec::{Decode, DecodeWithMemTracking, Encode, MaxEncodedLen};
use scale_info::TypeInfo;

/// An epoch: one session of the chain, the span an elected set serves.
pub type EpochIndex = u32;

/// Domain separation tag of a role statement.
pub const STATEMENT_CONTEXT: &[u8] = b"psp/staking/statement/v1";

/// A role a staked node can be elected to.
#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Encode,
    Decode,
    DecodeWithMemTracking,
    MaxEncodedLen,
    TypeInfo,
)]
#[cfg_attr(feature = "std", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "std", serde(rename_all = "lowercase"))]
pub enum Role {
    /// Authors blocks (Aura) and votes on finality (GRANDPA); issues access certificates.
    Authority,
    /// Serves and signs the discovery directory; the most security-sensitive role.
    Discovery,
    /// Collects usage reports for bandwidth rewards.
    Oracle,
}

impl Role {
    /// Every role.
    pub const ALL: [Role; 3] = [Self::Authority, Self::Discovery, Self::Oracle];

    /// The role's name, as the CLI and JSON spell it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Authority => "authority",
            Self::Discovery => "discovery",
            Self::Oracle => "oracle",
        }
    }

    /// Parses a role name.
    pub fn from_label(label: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.as_str() == label)
    }

    fn bit(self) -> u8 {
        1 << (self as u8)
    }
}

/// A set of roles, one bit each.
#[derive(
    Clone,
    Copy,
    Debug,
    Default,
    PartialEq,
    Eq,
    Encode,
    Decode,
    DecodeWithMemTracking,
    MaxEncodedLen,
    TypeInfo,
)]
pub struct RoleSet(u8);

impl RoleSet {
    /// Whether `role` is in the set.
    pub fn contains(self, role: Role) -> bool {
        self.0 & role.bit() != 0
    }

    /// Adds `role`; returns whether it was new.
    pub fn insert(&mut self, role: Role) -> bool {
        let new = !self.contains(role);
        self.0 |= role.bit();
        new
    }

    /// Removes `role`; returns whether it was there.
    pub fn remove(&mut self, role: Role) -> bool {
        let had = self.contains(role);
        self.0 &= !role.bit();
        had
    }

    /// Whether no role is in the set.
    pub fn is_empty(self) -> bool {
        self.0 & 0b111 == 0
    }

    /// The roles in the set, in [`Role::ALL`] order.
    pub fn iter(self) -> impl Iterator<Item = Role> {
        Role::ALL.into_iter().filter(move |r| self.contains(*r))
    }
}

impl FromIterator<Role> for RoleSet {
    fn from_iter<I: IntoIterator<Item = Role>>(iter: I) -> Self {
        let mut set = RoleSet::default();
        for role in iter {
            set.insert(role);
        }
        set
    }
}

/// What an elected node vouches for in one slot of its role.
#[derive(
    Clone, Debug, PartialEq, Eq, Encode, Decode, DecodeWithMemTracking, MaxEncodedLen, TypeInfo,
)]
pub struct RoleStatement {
    /// The role the statement is made in.
    pub role: Role,
    /// The slot: a directory period for discovery, a certificate serial for authorities.
    pub slot: u64,
    /// BLAKE2-256 of the statement's content (the directory, the certificate).
    pub payload_hash: [u8; 32],
}

/// The bytes a node key signs for a statement, bound to the chain by its genesis hash.
pub fn statement_message(genesis: &[u8; 32], statement: &RoleStatement) -> Vec<u8> {
    (STATEMENT_CONTEXT, genesis, statement).encode()
}

/// A statement with the node key's sr25519 signature over [`statement_message`].
#[derive(
    Clone, Debug, PartialEq, Eq, Encode, Decode, DecodeWithMemTracking, MaxEncodedLen, TypeInfo,
)]
pub struct SignedStatement {
    /// The statement.
    pub statement: RoleStatement,
    /// The node key's signature.
    pub signature: IdentitySignature,
}

/// Proof that `offender` signed two different statements for the same role and slot.
#[derive(
    Clone, Debug, PartialEq, Eq, Encode, Decode, DecodeWithMemTracking, MaxEncodedLen, TypeInfo,
)]
pub struct EquivocationEvidence {
    /// The node identity key that signed both statements.
    pub offender: IdentityKey,
    /// One statement.
    pub first: SignedStatement,
    /// A conflicting statement: same role and slot, different payload.
    pub second: SignedStatement,
}

impl EquivocationEvidence {
    /// Whether the two statements conflict: same role, same slot, different payloads. The
    /// signatures are checked separately (they need the chain's genesis hash).
    pub fn conflicts(&self) -> bool {
        let (a, b) = (&self.first.statement, &self.second.statement);
        a.role == b.role && a.slot == b.slot && a.payload_hash != b.payload_hash
    }
}

/// Domain tag of an elected node's signature over the equivocation evidence it reports itself.
pub const EQUIVOCATION_REPORT_CONTEXT: &[u8] = b"psp/staking/equivocation-report/v1";

/// Equivocation evidence an elected node reports with its own node key, as an unsigned
/// transaction: no account and no fee; the reporter's share of the slash goes to the
/// reporting node's owner. The signature is over [`equivocation_report_message`].
#[derive(
    Clone, Debug, PartialEq, Eq, Encode, Decode, DecodeWithMemTracking, MaxEncodedLen, TypeInfo,
)]
pub struct NodeEquivocationReport {
    /// The evidence.
    pub evidence: EquivocationEvidence,
    /// The reporting node's identity key (elected to a role for the current or next epoch).
    pub reporter: IdentityKey,
    /// Its sr25519 signature over [`equivocation_report_message`].
    pub signature: IdentitySignature,
}

/// The bytes a reporting node signs: the tag, the chain, the evidence and itself.
pub fn equivocation_report_message(
    genesis: &[u8; 32],
    evidence: &EquivocationEvidence,
    reporter: &IdentityKey,
) -> Vec<u8> {
    (EQUIVOCATION_REPORT_CONTEXT, genesis, evidence, reporter).encode()
}

/// A node elected to a role for an epoch.
#[derive(
    Clone, Debug, PartialEq, Eq, Encode, Decode, DecodeWithMemTracking, MaxEncodedLen, TypeInfo,
)]
#[cfg_attr(feature = "std", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "std", serde(rename_all = "camelCase"))]
pub struct ElectedNode<AccountId, Balance> {
    /// The node identity key.
    pub node: IdentityKey,
    /// The account whose bond backs it.
    pub owner: AccountId,
    /// The bond it was elected with.
    pub stake: Balance,
}

/// A chunk of stake on its way out.
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode, TypeInfo)]
#[cfg_attr(feature = "std", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "std", serde(rename_all = "camelCase"))]
pub struct UnlockingInfo<Balance, BlockNumber> {
    /// The amount.
    pub value: Balance,
    /// The first block at which it can be withdrawn.
    pub unlocks_at: BlockNumber,
}

/// An account's bond and candidacy, as the runtime API returns it.
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode, TypeInfo)]
pub struct LedgerInfo<Balance, BlockNumber> {
    /// Bonded and counting towards elections.
    pub active: Balance,
    /// Unbonding chunks.
    pub unlocking: Vec<UnlockingInfo<Balance, BlockNumber>>,
    /// The node identity the account stands with, if any.
    pub node: Option<IdentityKey>,
    /// The roles it stands for.
    pub roles: Vec<Role>,
}

/// The epoch schedule, as the runtime API returns it.
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode, TypeInfo)]
#[cfg_attr(feature = "std", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "std", serde(rename_all = "camelCase"))]
pub struct EpochSchedule<BlockNumber> {
    /// The current epoch.
    pub current: EpochIndex,
    /// The block the current epoch started at.
    pub started_at: BlockNumber,
    /// Blocks per epoch.
    pub length: BlockNumber,
    /// The block at which the next epoch starts (its first block).
    pub next_starts_at: BlockNumber,
}

/// The active node identities a pallet can look up: implemented by the identity registry.
pub trait NodeRegistry<AccountId> {
    /// The owner of `key` if it is an active (not revoked) node identity.
    fn active_node_owner(key: &IdentityKey) -> Option<AccountId>;

    /// The genesis hash the chain's signed messages bind to (see [`statement_message`]).
    fn genesis_hash() -> [u8; 32];

    /// Puts an active node identity owned by `owner` in place without a proof or deposit.
    /// For benchmarks and tests of pallets that depend on the registry; never call it from a
    /// dispatchable.
    fn insert_node_unchecked(owner: &AccountId, key: IdentityKey);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn role_labels_round_trip() {
        for role in Role::ALL {
            assert_eq!(Role::from_label(role.as_str()), Some(role));
        }
        assert_eq!(Role::from_label("relay"), None);
    }

    #[test]
    fn role_set_insert_remove() {
        let mut set = RoleSet::default();
        assert!(set.is_empty());
        assert!(set.insert(Role::Oracle));
        assert!(!set.insert(Role::Oracle));
        assert!(set.insert(Role::Authority));
        assert_eq!(
            set.iter().collect::<Vec<_>>(),
            vec![Role::Authority, Role::Oracle]
        );
        assert!(set.remove(Role::Oracle));
        assert!(!set.remove(Role::Oracle));
        assert!(!set.contains(Role::Discovery));
        assert_eq!(set.encode(), vec![0b001]);
    }

    #[test]
    fn evidence_conflicts_only_on_same_slot_different_payload() {
        let statement = |slot, byte| SignedStatement {
            statement: RoleStatement {
                role: Role::Discovery,
                slot,
                payload_hash: [byte; 32],
            },
            signature: [0; 64],
        };
        let evidence = |a, b| EquivocationEvidence {
            offender: [1; 32],
            first: a,
            second: b,
        };
        assert!(evidence(statement(7, 1), statement(7, 2)).conflicts());
        assert!(!evidence(statement(7, 1), statement(7, 1)).conflicts());
        assert!(!evidence(statement(7, 1), statement(8, 2)).conflicts());
        let mut other_role = statement(7, 2);
        other_role.statement.role = Role::Authority;
        assert!(!evidence(statement(7, 1), other_role).conflicts());
    }

    #[test]
    fn statement_message_binds_genesis() {
        let statement = RoleStatement {
            role: Role::Authority,
            slot: 1,
            payload_hash: [9; 32],
        };
        assert_ne!(
            statement_message(&[0; 32], &statement),
            statement_message(&[1; 32], &statement)
        );
        // SCALE: the context's compact length, then its bytes.
        let message = statement_message(&[0; 32], &statement);
        assert_eq!(usize::from(message[0] >> 2), STATEMENT_CONTEXT.len());
        assert!(message[1..].starts_with(STATEMENT_CONTEXT));
    }
}
