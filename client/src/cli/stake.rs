//! `psp stake`: the staking account's side of elections. Bond, unbond and withdraw tokens,
//! stand for (or leave) the authority, discovery or oracle role with a node identity,
//! register a validator's session keys, report equivocations, and show the epoch, a bond and
//! the elected sets.

use clap::{Subcommand, ValueEnum};
use psp_client::{chain::parse_ss58, hex0x, overlay, parse_hex_vec, staking, Error, Result};
use psp_primitives::staking::Role;

use super::common::{finalized, payer_keypair, print_json, report, NodeArgs, StakerArgs};

#[derive(Debug, Subcommand)]
pub enum StakeCommand {
    /// Bond tokens from the staker's free balance (a first bond, or more).
    Bond {
        /// Tokens to bond, e.g. 1500 or 0.5.
        #[arg(long)]
        amount: String,
        #[command(flatten)]
        staker: StakerArgs,
        #[command(flatten)]
        node: NodeArgs,
    },
    /// Start unbonding tokens; they can be withdrawn after the unbonding period.
    Unbond {
        /// Tokens to unbond.
        #[arg(long)]
        amount: String,
        #[command(flatten)]
        staker: StakerArgs,
        #[command(flatten)]
        node: NodeArgs,
    },
    /// Withdraw every unbonding chunk that has matured.
    Withdraw {
        #[command(flatten)]
        staker: StakerArgs,
        #[command(flatten)]
        node: NodeArgs,
    },
    /// Stand for a role with a node identity the staker owns.
    Candidate {
        /// The role.
        #[arg(long, value_enum)]
        role: RoleArg,
        /// The node identity key, 0x + 64 hex digits.
        #[arg(
            long,
            conflicts_with = "node_url",
            required_unless_present = "node_url"
        )]
        node_key: Option<String>,
        /// Or: a psp-node's RPC endpoint, whose overlay identity stands.
        #[arg(long, value_name = "URL")]
        node_url: Option<String>,
        #[command(flatten)]
        staker: StakerArgs,
        #[command(flatten)]
        node: NodeArgs,
    },
    /// Report a node that signed two conflicting statements (e.g. two directories for one
    /// period): the chain slashes it and pays the reporter half.
    ReportEquivocation {
        /// SCALE-encoded evidence as hex (`psp directory equivocations` lists it).
        #[arg(long)]
        evidence: String,
        #[command(flatten)]
        staker: StakerArgs,
        #[command(flatten)]
        node: NodeArgs,
    },
    /// Stop standing for a role.
    Leave {
        /// The role.
        #[arg(long, value_enum)]
        role: RoleArg,
        #[command(flatten)]
        staker: StakerArgs,
        #[command(flatten)]
        node: NodeArgs,
    },
    /// Have a validator node generate session keys and register them for the staker, so the
    /// node authors blocks once elected authority.
    SessionKeys {
        /// The validator node's RPC endpoint (local: author_rotateKeysWithOwner is unsafe RPC).
        #[arg(long, value_name = "URL")]
        node_url: String,
        #[command(flatten)]
        staker: StakerArgs,
        #[command(flatten)]
        node: NodeArgs,
    },
    /// Show the epoch, a staker's bond and candidacy, and the elected sets (JSON on stdout).
    Status {
        /// The account to show (SS58); default: the staker's.
        #[arg(long)]
        account: Option<String>,
        /// The staker, as a secret URI (only its account is used).
        #[arg(long, env = "PSP_PAYER", hide_env_values = true)]
        payer: Option<String>,
        #[command(flatten)]
        node: NodeArgs,
    },
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum RoleArg {
    Authority,
    Discovery,
    Oracle,
}

impl From<RoleArg> for Role {
    fn from(role: RoleArg) -> Self {
        match role {
            RoleArg::Authority => Role::Authority,
            RoleArg::Discovery => Role::Discovery,
            RoleArg::Oracle => Role::Oracle,
        }
    }
}

/// Runs a `psp stake` command.
pub async fn run(cmd: StakeCommand) -> Result<()> {
    match cmd {
        StakeCommand::Bond {
            amount,
            staker,
            node,
        } => {
            let amount = staking::parse_tokens(&amount)?;
            let staker = staker.keypair()?;
            let chain = node.chain().await?;
            eprintln!("bonding {} tokens", staking::format_tokens(amount));
            finalized("bonded", &chain.bond(&staker, amount, report).await?);
        }
        StakeCommand::Unbond {
            amount,
            staker,
            node,
        } => {
            let amount = staking::parse_tokens(&amount)?;
            let staker = staker.keypair()?;
            let chain = node.chain().await?;
            eprintln!("unbonding {} tokens", staking::format_tokens(amount));
            finalized("unbonding", &chain.unbond(&staker, amount, report).await?);
        }
        StakeCommand::Withdraw { staker, node } => {
            let staker = staker.keypair()?;
            let chain = node.chain().await?;
            finalized(
                "withdrawn",
                &chain.withdraw_unbonded(&staker, report).await?,
            );
        }
        StakeCommand::Candidate {
            role,
            node_key,
            node_url,
            staker,
            node,
        } => {
            let staker = staker.keypair()?;
            let key = overlay::node_key(node_key.as_deref(), node_url.as_deref(), "--node-key")
                .await?
                .ok_or_else(|| Error::InvalidInput {
                    what: "--node-key / --node-url",
                    reason: "give the node identity key or the node's RPC endpoint".into(),
                })?;
            let chain = node.chain().await?;
            let role = Role::from(role);
            eprintln!("standing for {} with node {}", role.as_str(), hex0x(&key));
            finalized("standing", &chain.stand(&staker, key, role, report).await?);
        }
        StakeCommand::ReportEquivocation {
            evidence,
            staker,
            node,
        } => {
            let reporter = staker.keypair()?;
            let evidence = parse_hex_vec(&evidence, "--evidence")?;
            let chain = node.chain().await?;
            let outcome = chain
                .report_equivocation(&reporter, &evidence, report)
                .await?;
            finalized("reported", &outcome);
        }
        StakeCommand::Leave { role, staker, node } => {
            let staker = staker.keypair()?;
            let chain = node.chain().await?;
            finalized("left", &chain.leave(&staker, role.into(), report).await?);
        }
        StakeCommand::SessionKeys {
            node_url,
            staker,
            node,
        } => {
            let staker = staker.keypair()?;
            eprintln!("asking {node_url} for new session keys");
            let keys = overlay::NodeRpc::connect(&node_url)
                .await?
                .rotate_session_keys(&staker.public_key().0)
                .await?;
            eprintln!("session keys {}", hex0x(&keys.keys));
            let chain = node.chain().await?;
            let outcome = chain.set_session_keys(&staker, keys, report).await?;
            finalized("session keys set", &outcome);
        }
        StakeCommand::Status {
            account,
            payer,
            node,
        } => {
            let account = match (account, payer) {
                (Some(address), _) => parse_ss58(&address)?,
                (None, Some(suri)) => payer_keypair(&suri)?.public_key().0,
                (None, None) => {
                    return Err(Error::InvalidInput {
                        what: "--account / --payer",
                        reason: "say whose stake to show".into(),
                    })
                }
            };
            let chain = node.chain().await?;
            print_json(&chain.staking_status(&account).await?)?;
        }
    }
    Ok(())
}
