//! Builds the runtime's WebAssembly blob (only for the native `std` build).
fn main() {
    #[cfg(feature = "std")]
    substrate_wasm_builder::WasmBuilder::build_using_defaults();
}
