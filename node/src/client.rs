//! The chain client type the node's services share: the runtime executed as wasm with
//! Substrate's host functions. Its own module so that everything that reads the chain (the
//! overlay, the chain checks) depends on it without depending on the service that builds it.

use psp_runtime::{apis::RuntimeApi, opaque::Block};

/// The full client.
pub type FullClient = sc_service::TFullClient<
    Block,
    RuntimeApi,
    sc_executor::WasmExecutor<sp_io::SubstrateHostFunctions>,
>;
