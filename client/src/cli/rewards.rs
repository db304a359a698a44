//! `psp rewards`: a relay's bandwidth rewards. `status` shows the rewards pot and, for a
//! relay, what it has earned per epoch; `claim` pays every closed epoch's reward to the
//! relay's owner and prints what it claimed and the fee (JSON).

use clap::{Args, Subcommand};
use psp_client::{hex0x, overlay, Error, Result};

use super::common::{finalized, print_json, report, NodeArgs, StakerArgs};

#[derive(Debug, Subcommand)]
pub enum RewardsCommand {
    /// Show the rewards pot and, with a relay, its pending rewards (JSON on stdout).
    Status {
        #[command(flatten)]
        relay: RelayArgs,
        #[command(flatten)]
        node: NodeArgs,
    },
    /// Claim every closed epoch's reward of a relay the payer owns.
    Claim {
        #[command(flatten)]
        relay: RelayArgs,
        #[command(flatten)]
        staker: StakerArgs,
        #[command(flatten)]
        node: NodeArgs,
    },
}

// Which relay: by key, or by asking the relay itself.
#[derive(Debug, Args)]
pub struct RelayArgs {
    /// The relay's node identity key, 0x + 64 hex digits.
    #[arg(long = "relay", conflicts_with = "relay_url")]
    relay_key: Option<String>,
    /// Or: the relay's psp-node RPC endpoint (its overlay identity).
    #[arg(long, value_name = "URL")]
    relay_url: Option<String>,
}

impl RelayArgs {
    /// The relay's node key, if one was given.
    async fn key(&self) -> Result<Option<[u8; 32]>> {
        overlay::node_key(
            self.relay_key.as_deref(),
            self.relay_url.as_deref(),
            "--relay",
        )
        .await
    }
}

/// Runs a `psp rewards` command.
pub async fn run(cmd: RewardsCommand) -> Result<()> {
    match cmd {
        RewardsCommand::Status { relay, node } => {
            let relay = relay.key().await?;
            let chain = node.chain().await?;
            print_json(&chain.rewards_overview(relay.as_ref()).await?)
        }
        RewardsCommand::Claim {
            relay,
            staker,
            node,
        } => {
            let key = relay.key().await?.ok_or_else(|| Error::InvalidInput {
                what: "--relay / --relay-url",
                reason: "say which relay's rewards to claim".into(),
            })?;
            let owner = staker.keypair()?;
            let chain = node.chain().await?;
            let (epochs, amount, outcome) = chain.claim_all_rewards(&owner, key, report).await?;
            finalized(&format!("claimed epochs {epochs:?}"), &outcome);
            print_json(&serde_json::json!({
                "relay": hex0x(&key),
                "epochs": epochs,
                "claimed": amount.to_string(),
                "fee": outcome.fee_paid.map(|f| f.to_string()),
                "block": hex0x(&outcome.block_hash),
            }))
        }
    }
}
