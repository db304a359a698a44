//! `psp`: keys, identities, onion circuits, staking, rewards and private messaging of the
//! PeerStream Protocol from the command line.
//!
//! Results go to stdout, progress and errors to stderr. Exit code 0 means success, 1 an error
//! whose message says what to do. `psp` never prompts: passphrases come from
//! `--passphrase-file FILE` or the `PSP_PASSPHRASE` environment variable.
//!
//! This file only parses the command line and dispatches; each command group lives in its own
//! module under [`cli`].

mod cli;

use clap::{Parser, Subcommand};
use cli::{
    cert::CertCommand, circuit::CircuitCommand, contact::ContactCommand, device::DeviceCommand,
    dht::DhtCommand, directory::DirectoryCommand, group::GroupCommand, identity::IdentityCommand,
    key::KeyCommand, messaging::MessagingCommand, rewards::RewardsCommand, stake::StakeCommand,
    stream::StreamCommand,
};
use psp_client::Result;
use std::process::ExitCode;

/// Keys and identities of the PeerStream Protocol.
#[derive(Debug, Parser)]
#[command(name = "psp", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Generate and inspect keystores.
    #[command(subcommand)]
    Key(KeyCommand),
    /// Register, show, rotate and revoke on-chain identities.
    #[command(subcommand)]
    Identity(IdentityCommand),
    /// Build onion circuits through registered relay nodes and echo bytes through them.
    #[command(subcommand)]
    Circuit(CircuitCommand),
    /// Bond stake, stand for authority, discovery or oracle, and see elections.
    #[command(subcommand)]
    Stake(StakeCommand),
    /// See and claim a relay's bandwidth rewards.
    #[command(subcommand)]
    Rewards(RewardsCommand),
    /// Realtime streams: subscription plans, subscribe, create a stream anonymously (a
    /// receipt from an oracle, then a landing node over a fresh circuit), show its record.
    #[command(subcommand)]
    Stream(StreamCommand),
    /// Get an access certificate from an elected authority node, and check certificates.
    #[command(subcommand)]
    Cert(CertCommand),
    /// Publish signed records in the DHT and look them up.
    #[command(subcommand)]
    Dht(DhtCommand),
    /// The discovery directory: show it (checked against the elected discovery set) and the
    /// equivocations a node has seen.
    #[command(subcommand)]
    Directory(DirectoryCommand),
    /// Private messaging: run an identity's agent (presence, channels, inbox) and drive it:
    /// look up, send, accept or decline requests, read the inbox, close channels.
    #[command(subcommand)]
    Messaging(MessagingCommand),
    /// Contacts: print a signed contact offer, add others' offers (checked on chain) to a
    /// contact book, list and remove contacts, compare fingerprints.
    #[command(subcommand)]
    Contact(ContactCommand),
    /// Groups hosted by the messaging agent: create, register and publish a group, join by
    /// vote, vote, list members, send and read group messages, leave, expel.
    #[command(subcommand)]
    Group(GroupCommand),
    /// Devices: sign an update for devices, and check one as a device would (the trusted
    /// publisher live on chain, its signature, the payload, a newer version).
    #[command(subcommand)]
    Device(DeviceCommand),
}

fn main() -> ExitCode {
    // Usage errors exit 1 like every other error (clap's default is 2); --help exits 0.
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() {
                ExitCode::FAILURE
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli.command)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(command: Command) -> Result<()> {
    match command {
        Command::Key(cmd) => cli::key::run(cmd),
        Command::Identity(cmd) => cli::identity::run(cmd).await,
        Command::Circuit(cmd) => cli::circuit::run(cmd).await,
        Command::Stake(cmd) => cli::stake::run(cmd).await,
        Command::Rewards(cmd) => cli::rewards::run(cmd).await,
        Command::Stream(cmd) => cli::stream::run(cmd).await,
        Command::Cert(cmd) => cli::cert::run(cmd).await,
        Command::Dht(cmd) => cli::dht::run(cmd).await,
        Command::Directory(cmd) => cli::directory::run(cmd).await,
        Command::Messaging(cmd) => cli::messaging::run(cmd).await,
        Command::Contact(cmd) => cli::contact::run(cmd).await,
        Command::Group(cmd) => cli::group::run(cmd).await,
        Command::Device(cmd) => cli::device::run(cmd).await,
    }
}

#[cfg(test)]
mod tests {
    use super::Cli;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_definition_is_consistent() {
        Cli::command().debug_assert();
    }
}
