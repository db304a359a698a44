//! The JSON shape of the `psp_*` RPC answers, shared by the node (which writes it) and the
//! client (which reads it). Keys and bytes are `0x`-prefixed hex; balances are decimal strings
//! (u128 does not fit a JSON number).

use crate::{IdentityInfo, IdentityKind, IdentityStatus};
use serde::{Deserialize, Serialize};

/// A node identity's network details.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NodeView {
    /// libp2p peer id bytes, hex.
    pub peer_id: String,
    /// Listen addresses (multiaddr bytes), hex.
    pub addresses: Vec<String>,
}

/// An identity as `psp_identityByKey` / `psp_identityById` return it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IdentityView {
    /// Canonical id string.
    pub id: String,
    /// Owner account, as SS58 (or hex if the account type has no SS58 form).
    pub owner: String,
    /// Identity kind.
    pub kind: IdentityKind,
    /// Network namespace.
    pub namespace: String,
    /// Application namespace.
    pub app_namespace: String,
    /// sr25519 identity key, hex.
    pub key: String,
    /// X25519 key, hex.
    pub x25519: String,
    /// Node details (nodes only).
    pub node: Option<NodeView>,
    /// Deposit held, in the chain's smallest unit.
    pub deposit: String,
    /// Block of registration.
    pub registered_at: u64,
    /// Rotations so far.
    pub rotations: u32,
    /// Active or revoked.
    pub status: IdentityStatus<u64>,
}

/// A node's overlay identity and addresses, as `psp_overlayInfo` returns it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OverlayView {
    /// Node id (sr25519 identity key), `0x` hex.
    pub node_id: String,
    /// X25519 onion key, `0x` hex.
    pub onion_key: String,
    /// libp2p peer id of the overlay links.
    pub peer_id: String,
    /// The address the node registers on chain (a multiaddr ending in `/p2p/<peer id>`).
    pub address: String,
    /// Addresses the overlay listens on (empty until it has started).
    #[serde(default)]
    pub listen_addrs: Vec<String>,
}

fn hex0x(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(2 + bytes.len() * 2);
    out.push_str("0x");
    for b in bytes {
        out.push_str(&format!("{b:02x}"));
    }
    out
}

impl IdentityView {
    /// Converts the runtime API's answer; `owner` renders the account.
    pub fn from_info<A, B: ToString, N: Into<u64> + Copy>(
        info: IdentityInfo<A, B, N>,
        owner: impl Fn(&A) -> String,
    ) -> Self {
        let status = match info.status {
            IdentityStatus::Active => IdentityStatus::Active,
            IdentityStatus::Revoked { at, forced } => IdentityStatus::Revoked {
                at: at.into(),
                forced,
            },
        };
        Self {
            id: String::from_utf8_lossy(&info.id).into_owned(),
            owner: owner(&info.owner),
            kind: info.kind,
            namespace: String::from_utf8_lossy(&info.namespace).into_owned(),
            app_namespace: String::from_utf8_lossy(&info.app_namespace).into_owned(),
            key: hex0x(&info.key),
            x25519: hex0x(&info.x25519),
            node: info.node.map(|n| NodeView {
                peer_id: hex0x(&n.peer_id),
                addresses: n.addresses.iter().map(|a| hex0x(a)).collect(),
            }),
            deposit: info.deposit.to_string(),
            registered_at: info.registered_at.into(),
            rotations: info.rotations,
            status,
        }
    }
}

/// A node elected to a role, as `psp_stakingElected` returns it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ElectedView {
    /// Node identity key, hex.
    pub node: String,
    /// The account backing it (SS58).
    pub owner: String,
    /// The bond it was elected with, in the smallest unit.
    pub stake: String,
}

impl ElectedView {
    /// Converts the runtime API's answer; `owner` renders the account.
    pub fn from_elected<A, B: ToString>(
        elected: crate::staking::ElectedNode<A, B>,
        owner: impl Fn(&A) -> String,
    ) -> Self {
        Self {
            node: hex0x(&elected.node),
            owner: owner(&elected.owner),
            stake: elected.stake.to_string(),
        }
    }
}

/// An unbonding chunk.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UnlockingView {
    /// The amount, in the smallest unit.
    pub value: String,
    /// The first block it can be withdrawn at.
    pub unlocks_at: u64,
}

/// An account's bond and candidacy, as `psp_stakingLedger` returns it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LedgerView {
    /// Active bond, in the smallest unit.
    pub active: String,
    /// Unbonding chunks.
    pub unlocking: Vec<UnlockingView>,
    /// The node identity it stands with, hex.
    pub node: Option<String>,
    /// The roles it stands for.
    pub roles: Vec<crate::staking::Role>,
}

impl LedgerView {
    /// Converts the runtime API's answer.
    pub fn from_info<B: ToString, N: Into<u64>>(info: crate::staking::LedgerInfo<B, N>) -> Self {
        Self {
            active: info.active.to_string(),
            unlocking: info
                .unlocking
                .into_iter()
                .map(|c| UnlockingView {
                    value: c.value.to_string(),
                    unlocks_at: c.unlocks_at.into(),
                })
                .collect(),
            node: info.node.map(|n| hex0x(&n)),
            roles: info.roles,
        }
    }
}

/// A candidate node, as `psp_stakingCandidate` returns it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CandidateView {
    /// The account backing it (SS58).
    pub owner: String,
    /// The roles it stands for.
    pub roles: Vec<crate::staking::Role>,
}

/// The epoch schedule, as `psp_stakingEpoch` returns it.
pub type EpochView = crate::staking::EpochSchedule<u64>;
