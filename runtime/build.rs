//! Builds the runtime's WebAssembly blob (only for the native `std` build).
fn main() {
    #[cfg(feature = "std")]
    {
        // The wasm build runs in $CARGO_TARGET_DIR, outside the clone: tell it where this
        // workspace (and its Cargo.lock) is, so the wasm runtime uses the same locked versions.
        // Set here, not globally: other crates' wasm builds (in the registry) must not see it.
        // Read CARGO_MANIFEST_DIR when the script runs, not when it is compiled: cargo reuses a
        // compiled build script across clones of the workspace at other paths.
        if std::env::var_os("WASM_BUILD_WORKSPACE_HINT").is_none() {
            if let Some(manifest_dir) = std::env::var_os("CARGO_MANIFEST_DIR") {
                if let Some(workspace) = std::path::Path::new(&manifest_dir).parent() {
                    std::env::set_var("WASM_BUILD_WORKSPACE_HINT", workspace);
                }
            }
        }
        substrate_wasm_builder::WasmBuilder::build_using_defaults();
    }
}
