//! Staking from the client: bond, unbond, withdraw, stand for and leave roles, register a
//! validator's session keys, and the `psp_staking*` look-ups.
//!
//! Amounts are in the chain's smallest unit; [`parse_tokens`] and [`format_tokens`] convert
//! from and to whole tokens (12 decimals) for people.

use crate::{
    chain::{ss58, Chain, Progress, TxOutcome},
    error::{Error, Result},
    hex0x,
    overlay::NodeRpc,
    parse_hex_vec,
};
use codec::{Decode, Encode, Output};
use psp_primitives::{
    rpc::{CandidateView, ElectedView, EpochView, LedgerView},
    staking::Role,
};
use subxt::{rpcs::rpc_params, utils::Static};
use subxt_signer::sr25519::Keypair;

/// The runtime's name of the staking pallet.
pub const PALLET: &str = "PspStaking";
/// Decimals of the PSP token.
pub const DECIMALS: u32 = 12;

/// Parses a token amount such as `1500` or `0.25` into the smallest unit.
pub fn parse_tokens(text: &str) -> Result<u128> {
    let invalid = |reason: &str| Error::InvalidInput {
        what: "amount",
        reason: format!("{text:?} {reason}; write tokens like 1500 or 0.25"),
    };
    let (whole, fraction) = text.trim().split_once('.').unwrap_or((text.trim(), ""));
    if whole.is_empty() && fraction.is_empty() {
        return Err(invalid("is empty"));
    }
    if fraction.len() > DECIMALS as usize {
        return Err(invalid("has more than 12 decimals"));
    }
    let digits = |s: &str| s.chars().all(|c| c.is_ascii_digit());
    if !digits(whole) || !digits(fraction) {
        return Err(invalid("is not a decimal number"));
    }
    let unit = 10u128.pow(DECIMALS);
    let whole: u128 = if whole.is_empty() {
        0
    } else {
        whole.parse().map_err(|_| invalid("is too large"))?
    };
    let fraction: u128 = if fraction.is_empty() {
        0
    } else {
        let scale = 10u128.pow(DECIMALS - fraction.len() as u32);
        fraction
            .parse::<u128>()
            .map_err(|_| invalid("is too large"))?
            * scale
    };
    whole
        .checked_mul(unit)
        .and_then(|w| w.checked_add(fraction))
        .ok_or_else(|| invalid("is too large"))
}

/// Formats an amount in the smallest unit as tokens, e.g. `1500` or `0.25`.
pub fn format_tokens(amount: u128) -> String {
    let unit = 10u128.pow(DECIMALS);
    let (whole, fraction) = (amount / unit, amount % unit);
    if fraction == 0 {
        return whole.to_string();
    }
    let fraction = format!("{fraction:012}");
    format!("{whole}.{}", fraction.trim_end_matches('0'))
}

/// SCALE bytes passed through as they are (the runtime's opaque `SessionKeys`).
struct RawEncoded(Vec<u8>);

impl Encode for RawEncoded {
    fn size_hint(&self) -> usize {
        self.0.len()
    }

    fn encode_to<O: Output + ?Sized>(&self, dest: &mut O) {
        dest.write(&self.0);
    }
}

/// Session keys a validator node generated, with the proof that the owner account may use them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionKeys {
    /// The runtime's SCALE-encoded `SessionKeys` (Aura and GRANDPA public keys).
    pub keys: Vec<u8>,
    /// The keys' signatures over the owner account.
    pub proof: Vec<u8>,
}

#[derive(serde::Deserialize)]
struct GeneratedKeysJson {
    keys: String,
    proof: Option<String>,
}

impl NodeRpc {
    /// Asks this validator node (`author_rotateKeysWithOwner`, an unsafe RPC method a node
    /// serves on its local interface) to generate session keys in its keystore for `owner`.
    pub async fn rotate_session_keys(&self, owner: &[u8; 32]) -> Result<SessionKeys> {
        let method = "author_rotateKeysWithOwner";
        let raw: GeneratedKeysJson = self
            .request(method, rpc_params![hex0x(&owner.encode())])
            .await
            .map_err(|e| match e {
                Error::Rpc { method, reason } => Error::Rpc {
                    method,
                    reason: format!("{reason}; it must be a validator serving unsafe RPC locally"),
                },
                other => other,
            })?;
        let proof = raw.proof.ok_or_else(|| Error::Rpc {
            method,
            reason: "the node returned no ownership proof".into(),
        })?;
        Ok(SessionKeys {
            keys: parse_hex_vec(&raw.keys, "session keys")?,
            proof: parse_hex_vec(&proof, "session keys proof")?,
        })
    }
}

impl Chain {
    /// Bonds `amount` (smallest unit): a first bond, or more on an existing one.
    pub async fn bond(
        &self,
        staker: &Keypair,
        amount: u128,
        progress: impl FnMut(Progress) + Send,
    ) -> Result<TxOutcome> {
        let account = staker.public_key().0;
        let (call, name) = match self.staking_ledger(&account).await? {
            None => ("bond", "PspStaking.bond"),
            Some(_) => ("bond_extra", "PspStaking.bond_extra"),
        };
        let payload = subxt::tx::dynamic(PALLET, call, (Static(codec::Compact(amount)),));
        self.submit(name, payload, staker, progress).await
    }

    /// Starts unbonding `amount` of the active bond.
    pub async fn unbond(
        &self,
        staker: &Keypair,
        amount: u128,
        progress: impl FnMut(Progress) + Send,
    ) -> Result<TxOutcome> {
        let payload = subxt::tx::dynamic(PALLET, "unbond", (Static(codec::Compact(amount)),));
        self.submit("PspStaking.unbond", payload, staker, progress)
            .await
    }

    /// Releases every matured unbonding chunk.
    pub async fn withdraw_unbonded(
        &self,
        staker: &Keypair,
        progress: impl FnMut(Progress) + Send,
    ) -> Result<TxOutcome> {
        let payload = subxt::tx::dynamic(PALLET, "withdraw_unbonded", ());
        self.submit("PspStaking.withdraw_unbonded", payload, staker, progress)
            .await
    }

    /// Stands for `role` with the node identity `node`, which `staker` must own.
    pub async fn stand(
        &self,
        staker: &Keypair,
        node: [u8; 32],
        role: Role,
        progress: impl FnMut(Progress) + Send,
    ) -> Result<TxOutcome> {
        let payload = subxt::tx::dynamic(PALLET, "stand", (Static(node), Static(role)));
        self.submit("PspStaking.stand", payload, staker, progress)
            .await
    }

    /// Reports a node that signed two conflicting statements (SCALE-encoded
    /// `EquivocationEvidence`, as `psp_directoryEquivocations` returns it): the chain checks
    /// it, slashes the offender and pays the reporter.
    pub async fn report_equivocation(
        &self,
        reporter: &Keypair,
        evidence: &[u8],
        progress: impl FnMut(Progress) + Send,
    ) -> Result<TxOutcome> {
        let evidence = psp_primitives::staking::EquivocationEvidence::decode(&mut &evidence[..])
            .map_err(|e| Error::InvalidInput {
                what: "--evidence",
                reason: format!("not SCALE-encoded equivocation evidence: {e}"),
            })?;
        let payload = subxt::tx::dynamic(PALLET, "report_equivocation", (Static(evidence),));
        self.submit(
            "PspStaking.report_equivocation",
            payload,
            reporter,
            progress,
        )
        .await
    }

    /// Stops standing for `role`.
    pub async fn leave(
        &self,
        staker: &Keypair,
        role: Role,
        progress: impl FnMut(Progress) + Send,
    ) -> Result<TxOutcome> {
        let payload = subxt::tx::dynamic(PALLET, "leave", (Static(role),));
        self.submit("PspStaking.leave", payload, staker, progress)
            .await
    }

    /// Registers a validator's session keys for `owner` (`Session.set_keys`), so the node
    /// authors and votes when `owner`'s authority candidacy is elected.
    pub async fn set_session_keys(
        &self,
        owner: &Keypair,
        keys: SessionKeys,
        progress: impl FnMut(Progress) + Send,
    ) -> Result<TxOutcome> {
        let payload = subxt::tx::dynamic(
            "Session",
            "set_keys",
            (Static(RawEncoded(keys.keys)), Static(keys.proof)),
        );
        self.submit("Session.set_keys", payload, owner, progress)
            .await
    }

    /// `psp_stakingLedger`: the bond and candidacy of `account` at the best block.
    pub async fn staking_ledger(&self, account: &[u8; 32]) -> Result<Option<LedgerView>> {
        self.request("psp_stakingLedger", rpc_params![ss58(account)])
            .await
    }

    /// `psp_stakingEpoch`: the epoch schedule at the best block.
    pub async fn staking_epoch(&self) -> Result<EpochView> {
        self.request("psp_stakingEpoch", rpc_params![]).await
    }

    /// `psp_stakingElected`: the nodes elected to `role` for `epoch` (default: current).
    pub async fn staking_elected(
        &self,
        role: Role,
        epoch: Option<u32>,
    ) -> Result<Vec<ElectedView>> {
        self.request("psp_stakingElected", rpc_params![role.as_str(), epoch])
            .await
    }

    /// What `psp stake status` shows as JSON: `account` (SS58), the `epoch` schedule, the
    /// account's `ledger` (bond and candidacy) and the sets `elected` per role for the current
    /// epoch.
    pub async fn staking_status(&self, account: &[u8; 32]) -> Result<serde_json::Value> {
        let epoch = self.staking_epoch().await?;
        let mut elected = serde_json::Map::new();
        for role in Role::ALL {
            let set = self.staking_elected(role, Some(epoch.current)).await?;
            elected.insert(role.as_str().into(), serde_json::json!(set));
        }
        Ok(serde_json::json!({
            "account": ss58(account),
            "epoch": epoch,
            "ledger": self.staking_ledger(account).await?,
            "elected": elected,
        }))
    }

    /// `psp_stakingCandidate`: the backing account and roles of a candidate node.
    pub async fn staking_candidate(&self, node: &[u8; 32]) -> Result<Option<CandidateView>> {
        self.request("psp_stakingCandidate", rpc_params![hex0x(node)])
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_parse_and_format() {
        let unit = 10u128.pow(DECIMALS);
        assert_eq!(parse_tokens("1500").ok(), Some(1500 * unit));
        assert_eq!(parse_tokens("0.25").ok(), Some(unit / 4));
        assert_eq!(parse_tokens(".5").ok(), Some(unit / 2));
        assert_eq!(parse_tokens("0.000000000001").ok(), Some(1));
        for bad in ["", ".", "1.0000000000001", "-1", "1e3", "abc", "1.2.3"] {
            assert!(parse_tokens(bad).is_err(), "{bad:?} should be refused");
        }
        assert!(parse_tokens("999999999999999999999999999999").is_err());
        assert_eq!(format_tokens(1500 * unit), "1500");
        assert_eq!(format_tokens(unit / 4), "0.25");
        assert_eq!(format_tokens(1), "0.000000000001");
    }

    #[test]
    fn raw_encoded_passes_bytes_through() {
        assert_eq!(RawEncoded(vec![1, 2, 3]).encode(), vec![1, 2, 3]);
    }
}
