//! Command-line arguments of `psp-node`.

/// The PeerStream Protocol node.
#[derive(Debug, clap::Parser)]
pub struct Cli {
    /// A maintenance subcommand; without one the node runs.
    #[command(subcommand)]
    pub subcommand: Option<Subcommand>,

    /// Options of a running node (see `--help`): `--dev`, `--chain`, `--alice`, ports ...
    #[clap(flatten)]
    pub run: sc_cli::RunCmd,

    /// Options of the PSP overlay started beside the chain.
    #[clap(flatten)]
    pub overlay: crate::overlay::OverlayParams,
}

/// Maintenance subcommands.
#[derive(Debug, clap::Subcommand)]
#[allow(clippy::large_enum_variant)]
pub enum Subcommand {
    /// Key management utilities.
    #[command(subcommand)]
    Key(sc_cli::KeySubcommand),
    /// Build a chain specification.
    #[allow(deprecated)]
    BuildSpec(sc_cli::BuildSpecCmd),
    /// Validate blocks.
    CheckBlock(sc_cli::CheckBlockCmd),
    /// Export blocks.
    ExportBlocks(sc_cli::ExportBlocksCmd),
    /// Export the state of a given block into a chain spec.
    ExportState(sc_cli::ExportStateCmd),
    /// Import blocks.
    ImportBlocks(sc_cli::ImportBlocksCmd),
    /// Remove the whole chain.
    PurgeChain(sc_cli::PurgeChainCmd),
    /// Revert the chain to a previous state.
    Revert(sc_cli::RevertCmd),
    /// Runtime benchmarks (build with `--features runtime-benchmarks`).
    #[cfg(feature = "runtime-benchmarks")]
    #[command(subcommand)]
    Benchmark(frame_benchmarking_cli::BenchmarkCmd),
    /// Database column information.
    ChainInfo(sc_cli::ChainInfoCmd),
}
