//! `psp-node benchmark pallet ...`: runs the runtime's FRAME benchmarks (built only with
//! `--features runtime-benchmarks`) to generate pallet weights.

use crate::cli::Cli;
use frame_benchmarking_cli::BenchmarkCmd;
use psp_runtime::opaque::Block;
use sc_cli::SubstrateCli;

/// Runs a benchmark subcommand. Only pallet benchmarks are wired up.
pub fn run(cli: &Cli, cmd: &BenchmarkCmd) -> sc_cli::Result<()> {
    let runner = cli.create_runner(cmd)?;
    runner.sync_run(|config| match cmd {
        BenchmarkCmd::Pallet(cmd) => {
            cmd.run_with_spec::<sp_runtime::traits::HashingFor<Block>, ()>(Some(config.chain_spec))
        }
        _ => Err("only `benchmark pallet` is wired up in psp-node".into()),
    })
}
