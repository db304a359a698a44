//! The built-in chains: `dev` (Alice alone) and `local` (Alice, Bob, Charlie).

use psp_runtime::WASM_BINARY;
use sc_service::ChainType;

/// The chain specification type of this node.
pub type ChainSpec = sc_service::GenericChainSpec;

fn build(name: &str, id: &str, chain_type: ChainType, preset: &str) -> Result<ChainSpec, String> {
    let wasm =
        WASM_BINARY.ok_or("the runtime wasm was not built (build without SKIP_WASM_BUILD)")?;
    let mut properties = sc_service::Properties::new();
    properties.insert("tokenSymbol".into(), "PSP".into());
    properties.insert("tokenDecimals".into(), 12.into());
    properties.insert("ss58Format".into(), 42.into());
    Ok(ChainSpec::builder(wasm, None)
        .with_name(name)
        .with_id(id)
        .with_chain_type(chain_type)
        .with_properties(properties)
        .with_genesis_config_preset_name(preset)
        .build())
}

/// A one-node development chain: Alice authors and finalizes; dev accounts are endowed.
pub fn development_chain_spec() -> Result<ChainSpec, String> {
    build(
        "PSP Development",
        "psp_dev",
        ChainType::Development,
        sp_genesis_builder::DEV_RUNTIME_PRESET,
    )
}

/// A three-authority local network (Alice, Bob, Charlie) for multi-node tests on loopback.
pub fn local_chain_spec() -> Result<ChainSpec, String> {
    build(
        "PSP Local Testnet",
        "psp_local",
        ChainType::Local,
        sp_genesis_builder::LOCAL_TESTNET_RUNTIME_PRESET,
    )
}
