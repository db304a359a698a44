//! Builds the runtime's WebAssembly blob (only for the native `std` build).
fn main() {
    #[cfg(feature = "std")]
    {
        // The wasm build runs in $CARGO_TARGET_DIR, outside the clone: tell it where this
        // workspace (and its Cargo.lock) is, so the wasm runtime uses the same locked versions.
        // Set here, not globally: other crates' wasm builds (in the registry) must not see it.
        if std::env::var_os("WASM_BUILD_WORKSPACE_HINT").is_none() {
            let manifest_dir = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"));
            if let Some(workspace) = manifest_dir.parent() {
                std::env::set_var("WASM_BUILD_WORKSPACE_HINT", workspace);
            }
        }
        substrate_wasm_builder::WasmBuilder::build_using_defaults();
    }
}
