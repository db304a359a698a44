//! `psp circuit`: onion circuits through registered relay nodes. `build` builds one (the
//! `--via` hops first, the rest chosen at random from the chain), prints its path and build
//! time and destroys it; `echo` also pushes bytes through the `echo` service on the last hop,
//! checks every one, and prints the throughput.

use std::time::Duration;

use clap::{Args, Subcommand};
use psp_client::{
    hex0x,
    overlay::{self, BuiltCircuit, CircuitOptions, OverlayClient, RelayNode, Via},
    Error, Result,
};

use super::common::NodeArgs;

#[derive(Debug, Subcommand)]
pub enum CircuitCommand {
    /// Build a circuit, print its path and build time, then destroy it.
    Build {
        #[command(flatten)]
        path: PathArgs,
        #[command(flatten)]
        client: ClientArgs,
        #[command(flatten)]
        node: NodeArgs,
    },
    /// Build a circuit and echo bytes through the `echo` service on its last hop, checking
    /// every byte; print the throughput.
    Echo {
        #[command(flatten)]
        path: PathArgs,
        /// How many bytes to echo.
        #[arg(long, default_value_t = 4096)]
        bytes: usize,
        #[command(flatten)]
        client: ClientArgs,
        #[command(flatten)]
        node: NodeArgs,
    },
}

// Which nodes the circuit goes through.
#[derive(Debug, Args)]
pub struct PathArgs {
    /// Number of hops.
    #[arg(long, default_value_t = 3)]
    hops: usize,
    /// A hop to use, in path order before the randomly chosen ones: a node key (0x + 64 hex),
    /// a node id string, or a node's RPC URL (ws://...; the node describes itself, registered
    /// or not). Repeat for several.
    #[arg(long = "via", value_name = "ID_OR_KEY_OR_URL")]
    via: Vec<String>,
}

impl PathArgs {
    /// The `--via` values, parsed before anything touches the network.
    fn via(&self) -> Result<Vec<Via>> {
        self.via.iter().map(|text| Via::parse(text)).collect()
    }
}

// How this client drives the circuit.
#[derive(Debug, Args)]
pub struct ClientArgs {
    /// Cells per second this client sends on the circuit; must not exceed the relays'
    /// circuit rate (psp-node --overlay-circuit-rate, default 10).
    #[arg(long, value_name = "CELLS_PER_SEC", default_value_t = 10)]
    rate: u32,
    /// Largest burst of cells (must not exceed the relays' --overlay-circuit-burst, default 100).
    #[arg(long, value_name = "CELLS", default_value_t = 100)]
    burst: u32,
    /// Seconds to wait for the circuit build, and for each echoed reply.
    #[arg(long, value_name = "SECS", default_value_t = 30)]
    timeout: u64,
}

impl ClientArgs {
    fn options(&self) -> Result<CircuitOptions> {
        CircuitOptions::with_limits(self.rate, self.burst, Duration::from_secs(self.timeout))
    }
}

/// Runs a `psp circuit` command.
pub async fn run(cmd: CircuitCommand) -> Result<()> {
    let (path_args, client_args, node, echo_bytes) = match &cmd {
        CircuitCommand::Build { path, client, node } => (path, client, node, None),
        CircuitCommand::Echo {
            path,
            bytes,
            client,
            node,
        } => (path, client, node, Some(*bytes)),
    };
    let options = client_args.options()?;
    let via = path_args.via()?;
    let chain = node.chain().await?;
    let path =
        overlay::choose_path(&chain, via, path_args.hops, |e| eprintln!("skipping: {e}")).await?;
    let client = OverlayClient::new(options.clone())?;
    eprintln!(
        "building a {}-hop circuit {}",
        path.len(),
        overlay::describe(&path)
    );
    let built = client.build(&path, Some(&chain)).await?;
    print_path(&built.path);
    println!("built in {}", millis(built.build_time));
    let result = match echo_bytes {
        None => Ok(()),
        Some(bytes) => echo(&built, bytes, &options).await,
    };
    // Tear down whatever the echo did, then report the first failure.
    let destroyed = built.circuit.destroy().await;
    client.shutdown().await;
    result?;
    destroyed.map_err(|source| Error::Circuit {
        what: "destroying the circuit".into(),
        source,
    })?;
    eprintln!("circuit destroyed");
    Ok(())
}

/// Echoes `bytes` through the circuit and prints the throughput.
async fn echo(built: &BuiltCircuit, bytes: usize, options: &CircuitOptions) -> Result<()> {
    eprintln!(
        "echoing {bytes} bytes at {} cells/s (burst {})",
        options.send_rate.cells_per_sec, options.send_rate.burst
    );
    let r = overlay::echo(&built.circuit, bytes, options.idle_timeout).await?;
    println!(
        "echoed {} bytes ({} cells) in {:.3} s, every byte checked: {:.1} KiB/s each way (stream opened in {})",
        r.bytes,
        r.cells,
        r.elapsed.as_secs_f64(),
        r.throughput() / 1024.0,
        millis(r.open_time)
    );
    Ok(())
}

fn print_path(path: &[RelayNode]) {
    println!("path ({} hops):", path.len());
    for (i, n) in path.iter().enumerate() {
        println!(
            "  {}. {} {} {}",
            i + 1,
            n.id,
            hex0x(&n.key()),
            n.descriptor.address
        );
    }
}

fn millis(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}
