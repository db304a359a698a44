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

/// An access certificate, as `psp_certRequest` and `psp_certVerify` return it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CertificateView {
    /// The encoded certificate, hex: what a client presents.
    pub certificate: String,
    /// Serial number (unique per authority).
    pub serial: u64,
    /// The identity key, hex.
    pub identity: String,
    /// Its kind.
    pub kind: IdentityKind,
    /// Its X25519 key, hex.
    pub x25519: String,
    /// Valid from (unix seconds).
    pub not_before: u64,
    /// Valid until (unix seconds, exclusive).
    pub not_after: u64,
    /// The issuing authority's node key, hex.
    pub authority: String,
}

/// The answer of `psp_dhtPut`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DhtPutView {
    /// The record's DHT key, hex.
    pub key: String,
    /// Other nodes known to have stored it (1 = at least one acknowledged; 0 = none did).
    pub replicas: u32,
}

/// A DHT record as `psp_dhtGet` returns it (validated by the node).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DhtRecordView {
    /// The DHT key, hex.
    pub key: String,
    /// `presence`, `stream` or `group`.
    pub kind: String,
    /// The owner's identity key, hex.
    pub owner: String,
    /// The topic, hex.
    pub topic: String,
    /// The publishing node's key, hex.
    pub publisher: String,
    /// Sequence number (the highest found wins).
    pub seq: u64,
    /// Issue time (unix seconds).
    pub issued_at: u64,
    /// Expiry (unix seconds).
    pub expires_at: u64,
    /// The value, hex.
    pub value: String,
    /// The whole signed record, hex.
    pub record: String,
    /// Valid answers the lookup met.
    pub found: u32,
    /// Answers the lookup refused (forged, expired, unregistered owner, ...).
    pub refused: u32,
}

/// One node in a directory.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DirectoryEntryView {
    /// Node key, hex.
    pub node: String,
    /// Flags: `relay`, `entry`, `discovery`, `authority`, `oracle`.
    pub flags: Vec<String>,
    /// Entry addresses.
    pub addresses: Vec<String>,
}

/// A discovery directory as `psp_directory` returns it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DirectoryView {
    /// The directory period.
    pub period: u64,
    /// Valid from (unix seconds).
    pub valid_after: u64,
    /// Valid until (unix seconds).
    pub valid_until: u64,
    /// The listed nodes.
    pub entries: Vec<DirectoryEntryView>,
    /// Discovery nodes whose signatures on it verify, hex.
    pub signers: Vec<String>,
    /// The discovery set it was checked against, hex.
    pub discovery_set: Vec<String>,
    /// Signatures needed.
    pub threshold: u32,
    /// The encoded signed directory, hex (for a client's own check).
    pub directory: String,
}

/// An equivocation a discovery node signed, as `psp_directoryEquivocations` returns it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EquivocationView {
    /// The offending node key, hex.
    pub offender: String,
    /// The directory period.
    pub period: u64,
    /// SCALE-encoded `EquivocationEvidence`, hex: the argument of
    /// `PspStaking::report_equivocation`.
    pub evidence: String,
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

/// A relay's reward for one epoch.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PendingRewardView {
    /// The epoch.
    pub epoch: u32,
    /// Bytes credited to the relay.
    pub credited_bytes: u64,
    /// What a claim pays now, in the smallest unit; `None` while reports still come in.
    pub amount: Option<String>,
}

/// A relay's standing, as `psp_rewardsRelay` returns it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RelayRewardsView {
    /// Sessions whose two sides disagreed, over the relay's lifetime.
    pub disputes: u32,
    /// Unclaimed epochs, sorted by epoch.
    pub pending: Vec<PendingRewardView>,
    /// What claiming every closed epoch of `pending` pays, in the smallest unit.
    pub claimable: String,
}

impl RelayRewardsView {
    /// Converts the runtime API's answer.
    pub fn from_info<B: ToString + Copy + Into<u128>>(
        info: crate::rewards::RelayRewards<B>,
    ) -> Self {
        let claimable = info
            .pending
            .iter()
            .filter_map(|p| p.amount)
            .fold(0u128, |sum, a| sum.saturating_add(a.into()));
        Self {
            disputes: info.disputes,
            pending: info
                .pending
                .into_iter()
                .map(|p| PendingRewardView {
                    epoch: p.epoch,
                    credited_bytes: p.credited_bytes,
                    amount: p.amount.map(|a| a.to_string()),
                })
                .collect(),
            claimable: claimable.to_string(),
        }
    }
}

/// One oracle's report on a relay.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OracleReportView {
    /// The oracle's node identity key, hex.
    pub oracle: String,
    /// The bytes it credited the relay.
    pub bytes: u64,
}

/// What the oracles reported for a relay in an epoch, as `psp_rewardsRelayEpoch` returns it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RelayEpochView {
    /// The relay's owner (SS58), who may claim.
    pub owner: String,
    /// Each reporting oracle's credit.
    pub reports: Vec<OracleReportView>,
    /// Oracles elected for the epoch.
    pub elected: u32,
    /// Reporters needed for a quorum.
    pub quorum: u32,
    /// The credit: the lower median of the reports, or zero without a quorum.
    pub credited_bytes: u64,
}

impl RelayEpochView {
    /// Converts the runtime API's answer; `owner` renders the account.
    pub fn from_info<A>(
        info: crate::rewards::RelayEpochInfo<A>,
        owner: impl Fn(&A) -> String,
    ) -> Self {
        Self {
            owner: owner(&info.owner),
            reports: info
                .reports
                .iter()
                .map(|(oracle, bytes)| OracleReportView {
                    oracle: hex0x(oracle),
                    bytes: *bytes,
                })
                .collect(),
            elected: info.elected,
            quorum: info.quorum,
            credited_bytes: info.credited_bytes,
        }
    }
}

/// An epoch's rewards, as `psp_rewardsEpoch` returns it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EpochRewardsView {
    /// The epoch.
    pub epoch: u32,
    /// Relays the oracles reported.
    pub relays: u32,
    /// Relays with a credit.
    pub credited_relays: u32,
    /// Credited relays that have not claimed yet.
    pub unclaimed_relays: u32,
    /// Total credited bytes (decimal string: it may exceed a JSON number).
    pub total_credit: String,
    /// The pool, in the smallest unit, once the epoch is closed.
    pub pool: Option<String>,
    /// Paid so far, in the smallest unit.
    pub paid: String,
}

impl EpochRewardsView {
    /// Converts the runtime API's answer.
    pub fn from_info<B: ToString>(info: crate::rewards::EpochRewards<B>) -> Self {
        Self {
            epoch: info.epoch,
            relays: info.relays,
            credited_relays: info.credited_relays,
            unclaimed_relays: info.unclaimed_relays,
            total_credit: info.total_credit.to_string(),
            pool: info.pool.map(|p| p.to_string()),
            paid: info.paid.to_string(),
        }
    }
}

/// The rewards pallet's state, as `psp_rewardsStatus` returns it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RewardsStatusView {
    /// The current epoch, as the rewards pallet last saw it.
    pub current_epoch: Option<u32>,
    /// The epoch whose reports are accepted now.
    pub reporting_epoch: Option<u32>,
    /// The pot account (SS58).
    pub pot: String,
    /// What the pot can pay out, in the smallest unit.
    pub pot_balance: String,
    /// Owed to relays and not yet claimed, in the smallest unit.
    pub committed: String,
    /// Each epoch's pool, in the smallest unit.
    pub reward_per_epoch: String,
    /// The most an epoch pays per gigabyte of credit, in the smallest unit.
    pub max_reward_per_gigabyte: String,
}

impl RewardsStatusView {
    /// Converts the runtime API's answer; `account` renders the pot.
    pub fn from_info<A, B: ToString>(
        info: crate::rewards::RewardsStatus<A, B>,
        account: impl Fn(&A) -> String,
    ) -> Self {
        Self {
            current_epoch: info.current_epoch,
            reporting_epoch: info.reporting_epoch,
            pot: account(&info.pot),
            pot_balance: info.pot_balance.to_string(),
            committed: info.committed.to_string(),
            reward_per_epoch: info.reward_per_epoch.to_string(),
            max_reward_per_gigabyte: info.max_reward_per_gigabyte.to_string(),
        }
    }
}

/// A plan, as `psp_subscriptionsStatus` returns it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PlanView {
    /// Its index (what `subscribe` takes).
    pub plan: u8,
    /// What each receipt of the plan may allow.
    pub tier: crate::subscriptions::Tier,
    /// Price of one epoch, in the smallest unit.
    pub price_per_epoch: String,
}

impl PlanView {
    fn from_plan<B: ToString>(plan: u8, info: &crate::subscriptions::Plan<B>) -> Self {
        Self {
            plan,
            tier: info.tier,
            price_per_epoch: info.price_per_epoch.to_string(),
        }
    }
}

/// The plans and rules, as `psp_subscriptionsStatus` returns them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SubscriptionsStatusView {
    /// The current epoch.
    pub current_epoch: u32,
    /// The plans.
    pub plans: Vec<PlanView>,
    /// Receipts one subscription may draw per epoch, over all oracles.
    pub receipts_per_epoch: u32,
    /// Where payments go (the rewards pot), SS58.
    pub pot: String,
}

impl SubscriptionsStatusView {
    /// Converts the runtime API's answer; `account` renders the pot.
    pub fn from_info<A, B: ToString>(
        info: crate::subscriptions::SubscriptionsStatus<A, B>,
        account: impl Fn(&A) -> String,
    ) -> Self {
        Self {
            current_epoch: info.current_epoch,
            plans: info
                .plans
                .iter()
                .enumerate()
                .map(|(i, p)| PlanView::from_plan(u8::try_from(i).unwrap_or(u8::MAX), p))
                .collect(),
            receipts_per_epoch: info.receipts_per_epoch,
            pot: account(&info.pot),
        }
    }
}

/// An identity's subscription, as `psp_subscription` returns it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SubscriptionView {
    /// The plan.
    pub plan: PlanView,
    /// First epoch covered.
    pub from: u32,
    /// First epoch no longer covered.
    pub until: u32,
    /// Who paid last, SS58.
    pub payer: String,
    /// Whether it covers the current epoch.
    pub active: bool,
}

impl SubscriptionView {
    /// Converts the runtime API's answer; `account` renders the payer.
    pub fn from_info<A, B: ToString>(
        info: crate::subscriptions::SubscriptionInfo<A, B>,
        account: impl Fn(&A) -> String,
    ) -> Self {
        Self {
            plan: PlanView::from_plan(info.subscription.plan, &info.plan),
            from: info.subscription.from,
            until: info.subscription.until,
            payer: account(&info.subscription.payer),
            active: info.active,
        }
    }
}

/// One receipt key, as `psp_receiptKeys` returns it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReceiptKeyView {
    /// The oracle's node key, hex.
    pub oracle: String,
    /// The tier its receipts stand for.
    pub tier: crate::subscriptions::Tier,
    /// The RSA public key (DER SubjectPublicKeyInfo), hex.
    pub public_key: String,
    /// Unix seconds from which receipts under it are refused.
    pub expires_at: u64,
}

impl ReceiptKeyView {
    /// Flattens the runtime API's answer: every key of every oracle.
    pub fn from_info(info: &[crate::subscriptions::OracleReceiptKeys]) -> Vec<Self> {
        info.iter()
            .flat_map(|o| {
                o.keys.iter().map(|k| Self {
                    oracle: hex0x(&o.oracle),
                    tier: k.tier,
                    public_key: hex0x(&k.public_key),
                    expires_at: k.expires_at,
                })
            })
            .collect()
    }
}
