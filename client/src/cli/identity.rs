//! `psp identity`: an identity's life on chain. `register` submits the keystore's identity
//! (the payer holds the deposit), `register-node` submits a psp-node's self-signed overlay
//! registration, `show` prints what the chain has, `rotate` replaces the X25519 key without
//! ever losing the new secret, and `revoke` ends the identity and releases its deposit.

use std::path::PathBuf;

use clap::{Args, Subcommand, ValueEnum};
use psp_client::{
    hex0x,
    identity::{self, IdentityLookup, PreparedRegistration, StagedRotation},
    keystore::{self, KdfParams, Keys},
    overlay, parse_hex, Error, Result,
};

use super::common::{
    account, finalized, payer_keypair, print_json, report, Kind, NodeArgs, PassArgs, PayerArgs,
};

#[derive(Debug, Subcommand)]
pub enum IdentityCommand {
    /// Register the keystore's identity on chain (holds a deposit from the payer).
    Register {
        /// The keystore holding the identity key.
        #[arg(long)]
        keystore: PathBuf,
        #[command(flatten)]
        pass: PassArgs,
        /// What the identity is.
        #[arg(long, value_enum)]
        kind: Kind,
        /// Network namespace.
        #[arg(long)]
        namespace: String,
        /// Application namespace.
        #[arg(long)]
        app: String,
        /// libp2p peer id bytes as hex (node identities only).
        #[arg(long)]
        peer_id: Option<String>,
        /// A listen address (multiaddr bytes) as hex; repeat for several (node identities only).
        #[arg(long = "address")]
        addresses: Vec<String>,
        #[command(flatten)]
        payer: PayerArgs,
        #[command(flatten)]
        node: NodeArgs,
    },
    /// Register a psp-node's overlay (relay) identity: the node signs its registration for the
    /// payer, who submits it and pays the deposit. Prints the node's id string.
    RegisterNode {
        /// The node's WebSocket RPC endpoint (it must run with the overlay on).
        #[arg(long, value_name = "URL")]
        node_url: String,
        /// Network namespace.
        #[arg(long, default_value = overlay::DEFAULT_NODE_NAMESPACE)]
        namespace: String,
        /// Application namespace.
        #[arg(long, default_value = overlay::DEFAULT_NODE_APP)]
        app: String,
        /// The account that signs, pays the fee and deposit, and owns the node identity, as a
        /// secret URI such as //Alice.
        #[arg(long, env = "PSP_PAYER", hide_env_values = true)]
        payer: String,
        #[command(flatten)]
        node: NodeArgs,
    },
    /// Show an identity as the chain has it (JSON on stdout).
    Show {
        #[command(flatten)]
        which: WhichIdentity,
        #[command(flatten)]
        node: NodeArgs,
    },
    /// Rotate the identity's X25519 key and write the new secret back to the keystore.
    Rotate {
        /// The keystore holding the identity key.
        #[arg(long)]
        keystore: PathBuf,
        #[command(flatten)]
        pass: PassArgs,
        /// Where the new X25519 key comes from; `auto` generates it.
        #[arg(long, value_enum, default_value_t = NewX25519::Auto)]
        new_x25519: NewX25519,
        /// New listen addresses as hex (node identities only); omit to keep the current ones.
        #[arg(long = "address")]
        addresses: Vec<String>,
        #[command(flatten)]
        payer: PayerArgs,
        #[command(flatten)]
        node: NodeArgs,
    },
    /// Revoke the identity for good and release its deposit to the owner.
    Revoke {
        /// The keystore holding the identity key.
        #[arg(long)]
        keystore: PathBuf,
        #[command(flatten)]
        pass: PassArgs,
        #[command(flatten)]
        payer: PayerArgs,
        #[command(flatten)]
        node: NodeArgs,
    },
}

// Exactly one way of naming the identity to show.
#[derive(Debug, Args)]
#[group(required = true, multiple = false)]
pub struct WhichIdentity {
    /// The sr25519 identity key, 0x + 64 hex digits.
    #[arg(long)]
    key: Option<String>,
    /// The id string, e.g. peerstream.client.account.<key58>.
    #[arg(long)]
    id: Option<String>,
    /// A keystore whose identity key to look up (no passphrase needed).
    #[arg(long)]
    keystore: Option<PathBuf>,
}

impl WhichIdentity {
    /// The look-up, checked before anything touches the network.
    fn lookup(self) -> Result<IdentityLookup> {
        match (self.key, self.id, self.keystore) {
            (Some(key), _, _) => Ok(IdentityLookup::Key(parse_hex::<32>(&key, "--key")?)),
            (None, Some(id), _) => Ok(IdentityLookup::Id(id)),
            (None, None, Some(path)) => {
                Ok(IdentityLookup::Key(keystore::load_public(&path)?.sr25519))
            }
            (None, None, None) => Err(Error::InvalidInput {
                what: "identity",
                reason: "pass one of --key, --id, --keystore".into(),
            }),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum NewX25519 {
    /// Generate a fresh random X25519 key.
    Auto,
}

/// Submits `keys`' prepared registration, paid by `payer` (else the identity's own
/// account), reports progress on stderr and prints the id string once finalized.
pub async fn submit_registration(
    keys: &Keys,
    prepared: PreparedRegistration,
    payer: &PayerArgs,
    node: &NodeArgs,
) -> Result<()> {
    let payer = payer.keypair_or(keys)?;
    let chain = node.chain().await?;
    eprintln!("registering {}, paid by {}", prepared.id, account(&payer));
    let outcome = chain
        .register(
            &payer,
            keys.identity_keypair(),
            prepared.registration,
            report,
        )
        .await?;
    finalized("registered", &outcome);
    println!("{}", prepared.id);
    Ok(())
}

/// Runs a `psp identity` command.
pub async fn run(cmd: IdentityCommand) -> Result<()> {
    match cmd {
        IdentityCommand::Register {
            keystore,
            pass,
            kind,
            namespace,
            app,
            peer_id,
            addresses,
            payer,
            node,
        } => {
            let keys = pass.open(&keystore)?;
            // Fails on bad namespaces here rather than after paying a fee.
            let prepared = identity::registration(
                &keys,
                kind.into(),
                &namespace,
                &app,
                peer_id.as_deref(),
                &addresses,
            )?;
            submit_registration(&keys, prepared, &payer, &node).await
        }
        IdentityCommand::RegisterNode {
            node_url,
            namespace,
            app,
            payer,
            node,
        } => {
            let payer = payer_keypair(&payer)?;
            let chain = node.chain().await?;
            eprintln!("asking {node_url} for its signed overlay registration");
            let relay = overlay::NodeRpc::connect(&node_url).await?;
            eprintln!(
                "registering the node at {node_url}, paid by {}",
                account(&payer)
            );
            let registered =
                overlay::register_node(&chain, &relay, &payer, &namespace, &app, report).await?;
            eprintln!(
                "registered node {} ({}) in finalized block {}",
                hex0x(&registered.key),
                registered.address,
                hex0x(&registered.outcome.block_hash)
            );
            println!("{}", registered.id);
            Ok(())
        }
        IdentityCommand::Show { which, node } => {
            let lookup = which.lookup()?;
            let chain = node.chain().await?;
            print_json(&chain.find_identity(&lookup).await?)
        }
        IdentityCommand::Rotate {
            keystore,
            pass,
            new_x25519: NewX25519::Auto,
            addresses,
            payer,
            node,
        } => rotate(keystore, pass, addresses, payer, node).await,
        IdentityCommand::Revoke {
            keystore,
            pass,
            payer,
            node,
        } => {
            // With --payer the identity key is not needed, so neither is the passphrase.
            let (key, payer) = match &payer.payer {
                Some(suri) => (
                    keystore::load_public(&keystore)?.sr25519,
                    payer_keypair(suri)?,
                ),
                None => {
                    let keys = pass.open(&keystore)?;
                    (keys.identity_public(), keys.identity_keypair().clone())
                }
            };
            let chain = node.chain().await?;
            eprintln!("revoking identity {}", hex0x(&key));
            finalized("revoked", &chain.revoke(&payer, key, report).await?);
            Ok(())
        }
    }
}

/// `psp identity rotate`: stages the rotated keystore before submitting, then moves it into
/// place, deletes it, or leaves it for the user, as the outcome says.
async fn rotate(
    path: PathBuf,
    pass: PassArgs,
    addresses: Vec<String>,
    payer: PayerArgs,
    node: NodeArgs,
) -> Result<()> {
    let passphrase = pass.passphrase()?;
    let keys = keystore::load(&path, &passphrase)?;
    let addresses = if addresses.is_empty() {
        None
    } else {
        Some(identity::parse_addresses(&addresses)?)
    };
    let payer = payer.keypair_or(&keys)?;
    let chain = node.chain().await?;
    // Keep the new secret on disk before the chain learns its public key, so a crash after
    // finalization cannot lose it.
    let staged = StagedRotation::stage(&path, &keys, &passphrase, KdfParams::from_env())?;
    let x25519 = hex0x(&staged.x25519_public());
    eprintln!(
        "rotating X25519 key to {x25519} (new keystore staged at {})",
        staged.pending().display()
    );
    let result = chain
        .rotate(
            &payer,
            keys.identity_keypair(),
            staged.x25519_public(),
            addresses,
            report,
        )
        .await;
    match result {
        Ok(outcome) => {
            staged.commit()?;
            eprintln!(
                "rotated in finalized block {}; keystore {} updated",
                hex0x(&outcome.block_hash),
                path.display()
            );
            println!("x25519 public key: {x25519}");
            Ok(())
        }
        Err(e) if identity::rotation_refused(&e) => {
            staged.discard();
            Err(e)
        }
        Err(e) => {
            eprintln!(
                "the rotation's outcome is unknown: if `psp identity show` reports x25519 {x25519}, move {} over {}; otherwise delete it",
                staged.pending().display(),
                path.display()
            );
            Err(e)
        }
    }
}
