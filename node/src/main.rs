//! # psp-node
//!
//! The PeerStream Protocol node: the PSP chain (the identity PKI and the economy of the
//! network, Aura + GRANDPA, ParityDB) and, as the overlay crates land, the PSP overlay in the
//! same process, which checks every identity it meets against this node's chain state.
//!
//! - [`cli`]: command-line arguments.
//! - [`command`]: what each subcommand does.
//! - [`chain_spec`]: the `dev` and `local` chains.
//! - [`service`]: assembling the chain's services.
//! - [`client`]: the chain client type shared by the services.
//! - [`chain_checks`]: the one component the overlay checks the chain through.
//! - [`overlay`]: the PSP overlay started beside the chain, checked against chain state.
//! - [`rpc`]: JSON-RPC, the standard methods plus `psp_*`.
#![warn(missing_docs)]
// `sc_cli::Error` and `sc_service::Error` are large by design; every Substrate node returns them.
#![allow(clippy::result_large_err)]

#[cfg(feature = "runtime-benchmarks")]
mod benchmarking;
mod chain_checks;
mod chain_spec;
mod cli;
mod client;
mod command;
mod overlay;
mod rpc;
mod service;

fn main() -> sc_cli::Result<()> {
    command::run()
}
