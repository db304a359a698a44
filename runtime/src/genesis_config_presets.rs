//! Genesis presets: `dev` (Alice alone authors and finalizes, dev accounts endowed) and `local`
//! (Alice, Bob and Charlie as authorities, for multi-node tests on loopback). The genesis
//! authorities are invulnerable; staked nodes join them when elected.

use crate::{
    configs::RewardsPalletId, AccountId, BalancesConfig, RuntimeGenesisConfig, SessionKeys,
    SudoConfig, REWARDS_POT_ENDOWMENT, UNIT,
};
use alloc::{string::String, vec, vec::Vec};
use frame_support::build_struct_json_patch;
use serde_json::Value;
use sp_consensus_aura::sr25519::AuthorityId as AuraId;
use sp_consensus_grandpa::AuthorityId as GrandpaId;
use sp_genesis_builder::{self, PresetId};
use sp_keyring::{Ed25519Keyring, Sr25519Keyring};
use sp_runtime::traits::AccountIdConversion;

/// What every endowed dev account starts with: one million tokens.
const ENDOWMENT: u128 = 1_000_000 * UNIT;

/// An authority's Aura (sr25519) and GRANDPA (ed25519) dev keys; its account is the Aura key's.
type Authority = (Sr25519Keyring, Ed25519Keyring);

/// The genesis authorities are the staking pallet's invulnerables, with their session keys set:
/// they author from block 1, and elected authorities join them from the epochs they win.
fn genesis(authorities: &[Authority], endowed: Vec<AccountId>, root: AccountId) -> Value {
    let accounts: Vec<AccountId> = authorities
        .iter()
        .map(|(aura, _)| aura.to_account_id())
        .collect();
    let keys: Vec<(AccountId, AccountId, SessionKeys)> = authorities
        .iter()
        .map(|(aura, grandpa)| {
            let account = aura.to_account_id();
            let keys = SessionKeys {
                aura: AuraId::from(aura.public()),
                grandpa: GrandpaId::from(grandpa.public()),
            };
            (account.clone(), account, keys)
        })
        .collect();
    build_struct_json_patch!(RuntimeGenesisConfig {
        balances: BalancesConfig {
            balances: endowed
                .into_iter()
                .map(|who| (who, ENDOWMENT))
                .chain([(rewards_pot(), REWARDS_POT_ENDOWMENT)])
                .collect::<Vec<_>>(),
        },
        psp_staking: pallet_psp_staking::GenesisConfig {
            invulnerables: accounts
        },
        session: pallet_session::GenesisConfig { keys: keys },
        sudo: SudoConfig { key: Some(root) },
    })
}

/// The account bandwidth rewards are paid from.
fn rewards_pot() -> AccountId {
    RewardsPalletId::get().into_account_truncating()
}

fn dev_accounts() -> Vec<AccountId> {
    Sr25519Keyring::iter()
        .filter(|k| k != &Sr25519Keyring::One && k != &Sr25519Keyring::Two)
        .map(|k| k.to_account_id())
        .collect()
}

/// `dev`: Alice alone authors and finalizes; every dev account is endowed.
pub fn development_config_genesis() -> Value {
    genesis(
        &[(Sr25519Keyring::Alice, Ed25519Keyring::Alice)],
        dev_accounts(),
        Sr25519Keyring::Alice.to_account_id(),
    )
}

/// `local`: Alice, Bob and Charlie author and finalize.
pub fn local_config_genesis() -> Value {
    genesis(
        &[
            (Sr25519Keyring::Alice, Ed25519Keyring::Alice),
            (Sr25519Keyring::Bob, Ed25519Keyring::Bob),
            (Sr25519Keyring::Charlie, Ed25519Keyring::Charlie),
        ],
        dev_accounts(),
        Sr25519Keyring::Alice.to_account_id(),
    )
}

/// The preset of a given id.
pub fn get_preset(id: &PresetId) -> Option<Vec<u8>> {
    let patch = match id.as_ref() {
        sp_genesis_builder::DEV_RUNTIME_PRESET => development_config_genesis(),
        sp_genesis_builder::LOCAL_TESTNET_RUNTIME_PRESET => local_config_genesis(),
        _ => return None,
    };
    serde_json::to_string(&patch).ok().map(String::into_bytes)
}

/// The ids of all presets.
pub fn preset_names() -> Vec<PresetId> {
    vec![
        PresetId::from(sp_genesis_builder::DEV_RUNTIME_PRESET),
        PresetId::from(sp_genesis_builder::LOCAL_TESTNET_RUNTIME_PRESET),
    ]
}
