//! `psp`: keys, identities, onion circuits, staking and rewards of the PeerStream Protocol
//! from the command line.
//!
//! Results go to stdout, progress and errors to stderr. Exit code 0 means success, 1 an error
//! whose message says what to do. `psp` never prompts: passphrases come from
//! `--passphrase-file FILE` or the `PSP_PASSPHRASE` environment variable.

use clap::{Args, Parser, Subcommand, ValueEnum};
use psp_client::{
    chain::{keypair_from_suri, parse_ss58, ss58, Chain, Progress, TxOutcome},
    dht, directory, hex0x,
    keystore::{self, KdfParams, Keys, PublicKeys},
    overlay::{self, CircuitOptions, Hop, NodeRpc, OverlayClient, RelayNode},
    parse_hex, parse_hex_vec,
    psp_net::circuit::Rate,
    staking, Error, Keypair, Result,
};
use psp_primitives::{rpc::IdentityView, staking::Role, IdentityKind, NodeDetails, Registration};
use std::{
    path::{Path, PathBuf},
    process::ExitCode,
    time::Duration,
};

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
}

#[derive(Debug, Subcommand)]
enum DirectoryCommand {
    /// Fetch the latest directory from the node at `--url` and accept it only with the
    /// threshold of valid signatures from the discovery set elected for the current epoch (or
    /// the `--trust` set). JSON on stdout; exit code 1 with the reason if refused.
    Show {
        /// Trust these discovery node keys (hex) instead of the chain's elected set: the
        /// built-in bootstrap set of a client that cannot read the chain yet. Repeatable.
        #[arg(long = "trust")]
        trust: Vec<String>,
        #[command(flatten)]
        node: NodeArgs,
    },
    /// Equivocations (two directories signed for one period) the node at `--url` has seen,
    /// with the evidence `psp stake report-equivocation` takes. JSON on stdout.
    Equivocations {
        #[command(flatten)]
        node: NodeArgs,
    },
}

#[derive(Debug, Subcommand)]
enum DhtCommand {
    /// Sign a record with the keystore's identity and have the node at `--url` co-sign and
    /// publish it (or put a record signed elsewhere with `--record`). JSON on stdout.
    Put {
        /// The keystore holding the owner's identity key.
        #[arg(long, required_unless_present = "record", conflicts_with = "record")]
        keystore: Option<PathBuf>,
        #[command(flatten)]
        pass: PassArgs,
        /// Record kind: presence, stream or group.
        #[arg(long, default_value = "presence")]
        kind: String,
        /// Topic label (hashed to the record's 32-byte topic).
        #[arg(long, default_value = "default")]
        topic: String,
        /// The value, as text.
        #[arg(long, conflicts_with = "value_hex")]
        value: Option<String>,
        /// The value, as hex.
        #[arg(long)]
        value_hex: Option<String>,
        /// Seconds until the record expires.
        #[arg(long, default_value_t = 600)]
        ttl: u64,
        /// Sequence number (default: now in milliseconds, so renewals supersede).
        #[arg(long)]
        seq: Option<u64>,
        /// A complete signed record as hex, put as is.
        #[arg(long)]
        record: Option<String>,
        /// The publishing node's WebSocket RPC endpoint.
        #[command(flatten)]
        node: NodeArgs,
    },
    /// Look a record up (JSON on stdout; exit code 1 if no valid record is found).
    Get {
        /// The DHT key, 0x + 64 hex digits.
        #[arg(long, required_unless_present = "owner", conflicts_with = "owner")]
        key: Option<String>,
        /// The owner's identity key (with --kind and --topic instead of --key).
        #[arg(long)]
        owner: Option<String>,
        /// Record kind: presence, stream or group.
        #[arg(long, default_value = "presence")]
        kind: String,
        /// Topic label.
        #[arg(long, default_value = "default")]
        topic: String,
        #[command(flatten)]
        node: NodeArgs,
    },
}

#[derive(Debug, Subcommand)]
enum CertCommand {
    /// Prove possession of the keystore's identity key to an elected authority node and get a
    /// short-lived certificate (JSON on stdout; the `certificate` field is what you present).
    Request {
        /// The keystore holding the identity key.
        #[arg(long)]
        keystore: PathBuf,
        #[command(flatten)]
        pass: PassArgs,
        /// Also write the certificate (hex) to this file.
        #[arg(long)]
        out: Option<PathBuf>,
        /// The authority node's WebSocket RPC endpoint.
        #[command(flatten)]
        node: NodeArgs,
    },
    /// Verify a certificate against the elected authorities and the chain as the node at
    /// `--url` sees them now (JSON on stdout; exit code 1 with the reason if it is refused).
    Show {
        /// The certificate as hex, or `@FILE` to read it from a file.
        certificate: String,
        #[command(flatten)]
        node: NodeArgs,
    },
}

#[derive(Debug, Subcommand)]
enum RewardsCommand {
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

#[derive(Debug, Args)]
struct RelayArgs {
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
        node_key(
            self.relay_key.as_deref(),
            self.relay_url.as_deref(),
            "--relay",
        )
        .await
    }
}

#[derive(Debug, Subcommand)]
enum StakeCommand {
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

#[derive(Debug, Args)]
struct StakerArgs {
    /// The staking account that signs and pays, as a secret URI such as //Alice.
    #[arg(long, env = "PSP_PAYER", hide_env_values = true)]
    payer: String,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum RoleArg {
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

#[derive(Debug, Subcommand)]
enum CircuitCommand {
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

#[derive(Debug, Args)]
struct PathArgs {
    /// Number of hops.
    #[arg(long, default_value_t = 3)]
    hops: usize,
    /// A hop to use, in path order before the randomly chosen ones: a node key (0x + 64 hex),
    /// a node id string, or a node's RPC URL (ws://...; the node describes itself, registered
    /// or not). Repeat for several.
    #[arg(long = "via", value_name = "ID_OR_KEY_OR_URL")]
    via: Vec<String>,
}

#[derive(Debug, Args)]
struct ClientArgs {
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

#[derive(Debug, Subcommand)]
enum KeyCommand {
    /// Generate a fresh identity key and X25519 key into a new keystore file.
    Generate {
        /// The keystore file to create (mode 0600).
        #[arg(long)]
        out: PathBuf,
        #[command(flatten)]
        pass: PassArgs,
        /// Overwrite an existing keystore (its keys are lost).
        #[arg(long)]
        force: bool,
        #[command(flatten)]
        id: IdArgs,
        /// Cheap key derivation for throwaway test keystores (also: PSP_KEYSTORE_TEST_KDF=1).
        #[arg(long, hide = true)]
        insecure_test_kdf: bool,
    },
    /// Print a keystore's public keys and id string (the passphrase, if given, verifies them).
    Show {
        /// The keystore file.
        #[arg(long)]
        keystore: PathBuf,
        /// A file holding the passphrase; with it (or PSP_PASSPHRASE) the file is also decrypted
        /// and checked.
        #[arg(long)]
        passphrase_file: Option<PathBuf>,
        #[command(flatten)]
        id: IdArgs,
    },
}

#[derive(Debug, Subcommand)]
enum IdentityCommand {
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

#[derive(Debug, Args)]
struct PassArgs {
    /// A file holding the keystore passphrase (else PSP_PASSPHRASE is used; psp never prompts).
    #[arg(long)]
    passphrase_file: Option<PathBuf>,
}

#[derive(Debug, Args)]
struct PayerArgs {
    /// The account that signs and pays (and owns the identity), as a secret URI such as //Alice.
    /// Default: the identity key itself.
    #[arg(long, env = "PSP_PAYER", hide_env_values = true)]
    payer: Option<String>,
}

#[derive(Debug, Args)]
struct NodeArgs {
    /// The node's WebSocket RPC endpoint.
    #[arg(long, env = "PSP_URL", default_value = "ws://127.0.0.1:9944")]
    url: String,
}

#[derive(Debug, Args)]
struct IdArgs {
    /// Network namespace of the printed id string.
    #[arg(long, default_value = "peerstream")]
    namespace: String,
    /// Application namespace of the printed id string.
    #[arg(long, default_value = "account")]
    app: String,
    /// Kind of the printed id string.
    #[arg(long, value_enum, default_value_t = Kind::Client)]
    kind: Kind,
}

#[derive(Debug, Args)]
#[group(required = true, multiple = false)]
struct WhichIdentity {
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

#[derive(Clone, Copy, Debug, ValueEnum)]
enum Kind {
    Client,
    Node,
    Group,
    Device,
}

impl From<Kind> for IdentityKind {
    fn from(kind: Kind) -> Self {
        match kind {
            Kind::Client => IdentityKind::Client,
            Kind::Node => IdentityKind::Node,
            Kind::Group => IdentityKind::Group,
            Kind::Device => IdentityKind::Device,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum NewX25519 {
    /// Generate a fresh random X25519 key.
    Auto,
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
        Command::Key(KeyCommand::Generate {
            out,
            pass,
            force,
            id,
            insecure_test_kdf,
        }) => {
            let passphrase = keystore::read_passphrase(pass.passphrase_file.as_deref())?;
            let params = if insecure_test_kdf {
                KdfParams::INSECURE_TEST
            } else {
                KdfParams::from_env()
            };
            // Validate the printed id's namespaces before writing anything.
            let keys = Keys::generate()?;
            let id_string = keys
                .public()
                .id_string(&id.namespace, id.kind.into(), &id.app)?;
            keystore::save(&out, &keys, &passphrase, params, force)?;
            eprintln!("wrote keystore {}", out.display());
            print_public(&keys.public(), &id_string.to_string());
            Ok(())
        }
        Command::Key(KeyCommand::Show {
            keystore: path,
            passphrase_file,
            id,
        }) => {
            let public = keystore::load_public(&path)?;
            let passphrase = match keystore::read_passphrase(passphrase_file.as_deref()) {
                Ok(p) => Some(p),
                Err(Error::NoPassphrase) => None,
                Err(e) => return Err(e),
            };
            match passphrase {
                Some(p) => {
                    keystore::load(&path, &p)?;
                    eprintln!("keystore {} opened and verified", path.display());
                }
                None => eprintln!(
                    "public keys read without decrypting (give a passphrase to verify the file)"
                ),
            }
            let id_string = public.id_string(&id.namespace, id.kind.into(), &id.app)?;
            print_public(&public, &id_string.to_string());
            Ok(())
        }
        Command::Identity(cmd) => identity(cmd).await,
        Command::Circuit(cmd) => circuit(cmd).await,
        Command::Stake(cmd) => stake(cmd).await,
        Command::Rewards(cmd) => rewards(cmd).await,
        Command::Cert(cmd) => cert(cmd).await,
        Command::Dht(cmd) => dht_command(cmd).await,
        Command::Directory(cmd) => directory_command(cmd).await,
    }
}

async fn directory_command(cmd: DirectoryCommand) -> Result<()> {
    match cmd {
        DirectoryCommand::Show { trust, node } => {
            let rpc = NodeRpc::connect(&node.url).await?;
            let trusted = trust
                .iter()
                .map(|k| parse_hex::<32>(k, "--trust"))
                .collect::<Result<Vec<_>>>()?;
            let chain = connect(&node.url).await?;
            let checked = directory::fetch_checked(&rpc, &chain, &trusted).await?;
            print_json(&checked)
        }
        DirectoryCommand::Equivocations { node } => {
            let rpc = NodeRpc::connect(&node.url).await?;
            print_json(&rpc.directory_equivocations().await?)
        }
    }
}

async fn dht_command(cmd: DhtCommand) -> Result<()> {
    match cmd {
        DhtCommand::Put {
            keystore: path,
            pass,
            kind,
            topic,
            value,
            value_hex,
            ttl,
            seq,
            record,
            node,
        } => {
            let rpc = NodeRpc::connect(&node.url).await?;
            let view = match (record, path) {
                (Some(record), _) => rpc.dht_put_raw(&record).await?,
                (None, Some(path)) => {
                    let keys = load_keys(&path, &pass)?;
                    let value = match (value, value_hex) {
                        (Some(text), _) => text.into_bytes(),
                        (None, Some(hex)) => parse_hex_vec(&hex, "--value-hex")?,
                        (None, None) => Vec::new(),
                    };
                    let publication = dht::Publication {
                        kind: dht::parse_kind(&kind)?,
                        topic: dht::topic(&topic),
                        value,
                        ttl_secs: ttl,
                        seq,
                    };
                    rpc.dht_publish(&keys, &publication).await?
                }
                (None, None) => {
                    return Err(Error::InvalidInput {
                        what: "dht put",
                        reason: "give --keystore or --record".into(),
                    })
                }
            };
            print_json(&view)
        }
        DhtCommand::Get {
            key,
            owner,
            kind,
            topic,
            node,
        } => {
            let key = match (key, owner) {
                (Some(key), _) => parse_hex::<32>(&key, "--key")?,
                (None, Some(owner)) => dht::key_of(
                    dht::parse_kind(&kind)?,
                    &parse_hex::<32>(&owner, "--owner")?,
                    &dht::topic(&topic),
                ),
                (None, None) => {
                    return Err(Error::InvalidInput {
                        what: "dht get",
                        reason: "give --key or --owner".into(),
                    })
                }
            };
            let rpc = NodeRpc::connect(&node.url).await?;
            match rpc.dht_get(&key).await? {
                Some(view) => print_json(&view),
                None => Err(Error::NotFound(format!(
                    "no valid record found for key {} (through {})",
                    hex0x(&key),
                    node.url
                ))),
            }
        }
    }
}

async fn cert(cmd: CertCommand) -> Result<()> {
    match cmd {
        CertCommand::Request {
            keystore: path,
            pass,
            out,
            node,
        } => {
            let keys = load_keys(&path, &pass)?;
            let rpc = NodeRpc::connect(&node.url).await?;
            let view = rpc.request_certificate(&keys).await?;
            if let Some(out) = out {
                std::fs::write(&out, &view.certificate).map_err(|e| Error::Io {
                    path: out.clone(),
                    source: e,
                })?;
                eprintln!("wrote certificate {}", out.display());
            }
            print_json(&view)
        }
        CertCommand::Show { certificate, node } => {
            let text = match certificate.strip_prefix('@') {
                Some(file) => std::fs::read_to_string(file).map_err(|e| Error::Io {
                    path: file.into(),
                    source: e,
                })?,
                None => certificate,
            };
            let rpc = NodeRpc::connect(&node.url).await?;
            print_json(&rpc.verify_certificate(&text).await?)
        }
    }
}

/// A node identity key, given as hex or read from the node's `psp_overlayInfo`.
async fn node_key(
    key: Option<&str>,
    url: Option<&str>,
    what: &'static str,
) -> Result<Option<[u8; 32]>> {
    match (key, url) {
        (Some(key), _) => parse_hex::<32>(key, what).map(Some),
        (None, Some(url)) => {
            let info = NodeRpc::connect(url).await?.overlay_info().await?;
            parse_hex::<32>(&info.node_id, "psp_overlayInfo node id").map(Some)
        }
        (None, None) => Ok(None),
    }
}

async fn rewards(cmd: RewardsCommand) -> Result<()> {
    match cmd {
        RewardsCommand::Status { relay, node } => {
            let relay = relay.key().await?;
            let chain = connect(&node.url).await?;
            let mut status = serde_json::json!({ "pot": chain.rewards_status().await? });
            if let Some(key) = relay {
                status["relay"] = serde_json::json!({
                    "node": hex0x(&key),
                    "rewards": chain.relay_rewards(&key).await?,
                });
            }
            print_json(&status)
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
            let owner = keypair_from_suri(&staker.payer, "--payer")?;
            let chain = connect(&node.url).await?;
            let (epochs, outcome) = chain.claim_all_rewards(&owner, key, report).await?;
            eprintln!(
                "claimed epochs {epochs:?} in finalized block {}",
                hex0x(&outcome.block_hash)
            );
            Ok(())
        }
    }
}

fn print_json(value: &impl serde::Serialize) -> Result<()> {
    let text = serde_json::to_string_pretty(value).map_err(|e| Error::InvalidInput {
        what: "output",
        reason: format!("cannot print as JSON: {e}"),
    })?;
    println!("{text}");
    Ok(())
}

async fn stake(cmd: StakeCommand) -> Result<()> {
    let signer = |args: &StakerArgs| keypair_from_suri(&args.payer, "--payer");
    let done = |what: &str, outcome: TxOutcome| {
        eprintln!("{what} in finalized block {}", hex0x(&outcome.block_hash));
    };
    match cmd {
        StakeCommand::Bond {
            amount,
            staker,
            node,
        } => {
            let amount = staking::parse_tokens(&amount)?;
            let staker = signer(&staker)?;
            let chain = connect(&node.url).await?;
            eprintln!("bonding {} tokens", staking::format_tokens(amount));
            done("bonded", chain.bond(&staker, amount, report).await?);
            Ok(())
        }
        StakeCommand::Unbond {
            amount,
            staker,
            node,
        } => {
            let amount = staking::parse_tokens(&amount)?;
            let staker = signer(&staker)?;
            let chain = connect(&node.url).await?;
            eprintln!("unbonding {} tokens", staking::format_tokens(amount));
            done("unbonding", chain.unbond(&staker, amount, report).await?);
            Ok(())
        }
        StakeCommand::Withdraw { staker, node } => {
            let staker = signer(&staker)?;
            let chain = connect(&node.url).await?;
            done("withdrawn", chain.withdraw_unbonded(&staker, report).await?);
            Ok(())
        }
        StakeCommand::Candidate {
            role,
            node_key: node_key_arg,
            node_url,
            staker,
            node,
        } => {
            let staker = signer(&staker)?;
            let key = node_key(node_key_arg.as_deref(), node_url.as_deref(), "--node-key")
                .await?
                .ok_or_else(|| Error::InvalidInput {
                    what: "--node-key / --node-url",
                    reason: "give the node identity key or the node's RPC endpoint".into(),
                })?;
            let chain = connect(&node.url).await?;
            let role = Role::from(role);
            eprintln!("standing for {} with node {}", role.as_str(), hex0x(&key));
            done("standing", chain.stand(&staker, key, role, report).await?);
            Ok(())
        }
        StakeCommand::ReportEquivocation {
            evidence,
            staker,
            node,
        } => {
            let reporter = signer(&staker)?;
            let evidence = parse_hex_vec(&evidence, "--evidence")?;
            let chain = connect(&node.url).await?;
            done(
                "reported",
                chain
                    .report_equivocation(&reporter, &evidence, report)
                    .await?,
            );
            Ok(())
        }
        StakeCommand::Leave { role, staker, node } => {
            let staker = signer(&staker)?;
            let chain = connect(&node.url).await?;
            done("left", chain.leave(&staker, role.into(), report).await?);
            Ok(())
        }
        StakeCommand::SessionKeys {
            node_url,
            staker,
            node,
        } => {
            let staker = signer(&staker)?;
            eprintln!("asking {node_url} for new session keys");
            let keys = NodeRpc::connect(&node_url)
                .await?
                .rotate_session_keys(&staker.public_key().0)
                .await?;
            eprintln!("session keys {}", hex0x(&keys.keys));
            let chain = connect(&node.url).await?;
            done(
                "session keys set",
                chain.set_session_keys(&staker, keys, report).await?,
            );
            Ok(())
        }
        StakeCommand::Status {
            account,
            payer,
            node,
        } => {
            let account = match (account, payer) {
                (Some(address), _) => parse_ss58(&address)?,
                (None, Some(suri)) => keypair_from_suri(&suri, "--payer")?.public_key().0,
                (None, None) => {
                    return Err(Error::InvalidInput {
                        what: "--account / --payer",
                        reason: "say whose stake to show".into(),
                    })
                }
            };
            let chain = connect(&node.url).await?;
            let epoch = chain.staking_epoch().await?;
            let mut elected = serde_json::Map::new();
            for role in Role::ALL {
                let set = chain.staking_elected(role, Some(epoch.current)).await?;
                elected.insert(role.as_str().into(), serde_json::json!(set));
            }
            let status = serde_json::json!({
                "account": ss58(&account),
                "epoch": epoch,
                "ledger": chain.staking_ledger(&account).await?,
                "elected": elected,
            });
            print_json(&status)
        }
    }
}

fn circuit_options(args: &ClientArgs) -> Result<CircuitOptions> {
    if args.rate == 0 || args.burst == 0 {
        return Err(Error::InvalidInput {
            what: "--rate / --burst",
            reason: "must be at least 1".into(),
        });
    }
    if args.timeout == 0 {
        return Err(Error::InvalidInput {
            what: "--timeout",
            reason: "must be at least 1 second".into(),
        });
    }
    Ok(CircuitOptions {
        send_rate: Rate {
            cells_per_sec: args.rate,
            burst: args.burst,
        },
        build_timeout: Duration::from_secs(args.timeout),
        idle_timeout: Duration::from_secs(args.timeout),
    })
}

/// A `--via` value, parsed before anything touches the network.
enum ViaArg {
    Hop(Hop),
    NodeUrl(String),
}

fn parse_via(args: &PathArgs) -> Result<Vec<ViaArg>> {
    args.via
        .iter()
        .map(|text| {
            if text.starts_with("ws://") || text.starts_with("wss://") {
                Ok(ViaArg::NodeUrl(text.clone()))
            } else {
                Hop::parse(text).map(ViaArg::Hop)
            }
        })
        .collect()
}

/// Resolves `--via` and chooses the rest of the path from the chain's registered nodes.
async fn choose_path(chain: &Chain, via: Vec<ViaArg>, hops: usize) -> Result<Vec<RelayNode>> {
    let mut resolved = Vec::with_capacity(via.len());
    for v in via {
        resolved.push(match v {
            ViaArg::Hop(hop) => hop,
            ViaArg::NodeUrl(url) => Hop::from_node_url(&url).await?,
        });
    }
    let needs_chain_nodes =
        resolved.iter().any(|h| matches!(h, Hop::Registered(_))) || resolved.len() < hops;
    let registered = if needs_chain_nodes {
        overlay::registered_nodes_with(chain, |e| eprintln!("skipping: {e}")).await?
    } else {
        Vec::new()
    };
    overlay::select_path(&registered, resolved, hops, &mut rand::thread_rng())
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

async fn circuit(cmd: CircuitCommand) -> Result<()> {
    let (path_args, client_args, node, bytes) = match &cmd {
        CircuitCommand::Build { path, client, node } => (path, client, node, None),
        CircuitCommand::Echo {
            path,
            bytes,
            client,
            node,
        } => (path, client, node, Some(*bytes)),
    };
    let options = circuit_options(client_args)?;
    let via = parse_via(path_args)?;
    let chain = connect(&node.url).await?;
    let path = choose_path(&chain, via, path_args.hops).await?;
    let client = OverlayClient::new(options.clone())?;
    eprintln!(
        "building a {}-hop circuit {}",
        path.len(),
        overlay::describe(&path)
    );
    let built = client.build(&path, Some(&chain)).await?;
    print_path(&built.path);
    println!("built in {}", millis(built.build_time));
    let result = match bytes {
        None => Ok(()),
        Some(n) => {
            eprintln!(
                "echoing {n} bytes at {} cells/s (burst {})",
                options.send_rate.cells_per_sec, options.send_rate.burst
            );
            overlay::echo(&built.circuit, n, options.idle_timeout)
                .await
                .map(|r| {
                    println!(
                        "echoed {} bytes ({} cells) in {:.3} s, every byte checked: {:.1} KiB/s each way (stream opened in {})",
                        r.bytes,
                        r.cells,
                        r.elapsed.as_secs_f64(),
                        r.throughput() / 1024.0,
                        millis(r.open_time)
                    );
                })
        }
    };
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

fn print_public(public: &PublicKeys, id: &str) {
    println!("sr25519 public key: {}", hex0x(&public.sr25519));
    println!("sr25519 account:    {}", ss58(&public.sr25519));
    println!("x25519 public key:  {}", hex0x(&public.x25519));
    println!("id:                 {id}");
}

fn load_keys(path: &Path, pass: &PassArgs) -> Result<Keys> {
    let passphrase = keystore::read_passphrase(pass.passphrase_file.as_deref())?;
    keystore::load(path, &passphrase)
}

fn payer_or(payer: &PayerArgs, keys: &Keys) -> Result<Keypair> {
    match &payer.payer {
        Some(suri) => keypair_from_suri(suri, "--payer"),
        None => Ok(keys.identity_keypair().clone()),
    }
}

fn report(p: Progress) {
    eprintln!("  {p}");
}

async fn connect(url: &str) -> Result<Chain> {
    eprintln!("connecting to {url}");
    Chain::connect(url).await
}

async fn identity(cmd: IdentityCommand) -> Result<()> {
    match cmd {
        IdentityCommand::Register {
            keystore: path,
            pass,
            kind,
            namespace,
            app,
            peer_id,
            addresses,
            payer,
            node,
        } => {
            let keys = load_keys(&path, &pass)?;
            let kind: IdentityKind = kind.into();
            // Fail on bad namespaces here rather than after paying a fee.
            let id_string = keys.public().id_string(&namespace, kind, &app)?;
            let node_details = match (peer_id, addresses.is_empty()) {
                (Some(peer), _) => Some(NodeDetails {
                    peer_id: parse_hex_vec(&peer, "--peer-id")?,
                    addresses: addresses
                        .iter()
                        .map(|a| parse_hex_vec(a, "--address"))
                        .collect::<Result<_>>()?,
                }),
                (None, false) => {
                    return Err(Error::InvalidInput {
                        what: "--address",
                        reason: "addresses belong to node identities; also pass --peer-id".into(),
                    })
                }
                (None, true) => None,
            };
            let payer = payer_or(&payer, &keys)?;
            let chain = connect(&node.url).await?;
            let registration = Registration {
                kind,
                namespace: namespace.into_bytes(),
                app_namespace: app.into_bytes(),
                key: keys.identity_public(),
                x25519: keys.x25519_public(),
                node: node_details,
            };
            eprintln!(
                "registering {id_string}, paid by {}",
                ss58(&payer.public_key().0)
            );
            let outcome = chain
                .register(&payer, keys.identity_keypair(), registration, report)
                .await?;
            eprintln!(
                "registered in finalized block {}",
                hex0x(&outcome.block_hash)
            );
            println!("{id_string}");
            Ok(())
        }
        IdentityCommand::RegisterNode {
            node_url,
            namespace,
            app,
            payer,
            node,
        } => {
            let payer = keypair_from_suri(&payer, "--payer")?;
            let chain = connect(&node.url).await?;
            eprintln!("asking {node_url} for its signed overlay registration");
            let relay = NodeRpc::connect(&node_url).await?;
            eprintln!(
                "registering the node at {node_url}, paid by {}",
                ss58(&payer.public_key().0)
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
            // Check the input before touching the network.
            let lookup = match (which.key, which.id, which.keystore) {
                (Some(key), _, _) => Ok(parse_hex::<32>(&key, "--key")?),
                (None, Some(id), _) => Err(id),
                (None, None, Some(path)) => Ok(keystore::load_public(&path)?.sr25519),
                (None, None, None) => {
                    return Err(Error::InvalidInput {
                        what: "identity",
                        reason: "pass one of --key, --id, --keystore".into(),
                    })
                }
            };
            let chain = connect(&node.url).await?;
            let (found, what) = match lookup {
                Ok(key) => (chain.identity_by_key(&key, None).await?, hex0x(&key)),
                Err(id) => (chain.identity_by_id(&id, None).await?, id),
            };
            let view = found.ok_or(Error::IdentityNotFound { key: what })?;
            print_view(&view)
        }
        IdentityCommand::Rotate {
            keystore: path,
            pass,
            new_x25519,
            addresses,
            payer,
            node,
        } => {
            let passphrase = keystore::read_passphrase(pass.passphrase_file.as_deref())?;
            let keys = keystore::load(&path, &passphrase)?;
            let NewX25519::Auto = new_x25519;
            let rotated = keys.with_new_x25519();
            let addresses = if addresses.is_empty() {
                None
            } else {
                Some(
                    addresses
                        .iter()
                        .map(|a| parse_hex_vec(a, "--address"))
                        .collect::<Result<_>>()?,
                )
            };
            let payer = payer_or(&payer, &keys)?;
            let chain = connect(&node.url).await?;
            // Keep the new secret on disk before the chain learns its public key, so a crash
            // after finalization cannot lose it.
            let pending = pending_path(&path);
            keystore::save(
                &pending,
                &rotated,
                &passphrase,
                KdfParams::from_env(),
                false,
            )
            .map_err(|e| match e {
                Error::KeystoreExists { path } => Error::RotationPending { pending: path },
                other => other,
            })?;
            eprintln!(
                "rotating X25519 key to {} (new keystore staged at {})",
                hex0x(&rotated.x25519_public()),
                pending.display()
            );
            let result = chain
                .rotate(
                    &payer,
                    keys.identity_keypair(),
                    rotated.x25519_public(),
                    addresses,
                    report,
                )
                .await;
            match result {
                Ok(outcome) => {
                    std::fs::rename(&pending, &path).map_err(|source| Error::KeystoreIo {
                        path: path.clone(),
                        action: "replace (the rotated keystore is in the .rotating file; move it into place)",
                        source,
                    })?;
                    eprintln!(
                        "rotated in finalized block {}; keystore {} updated",
                        hex0x(&outcome.block_hash),
                        path.display()
                    );
                    println!("x25519 public key: {}", hex0x(&rotated.x25519_public()));
                    Ok(())
                }
                // These say for sure that the chain does not have the new key.
                Err(
                    e @ (Error::Dispatch(_)
                    | Error::TxRejected { .. }
                    | Error::IdentityNotFound { .. }),
                ) => {
                    let _ = std::fs::remove_file(&pending);
                    Err(e)
                }
                Err(e) => {
                    eprintln!(
                        "the rotation's outcome is unknown: if `psp identity show` reports x25519 {}, move {} over {}; otherwise delete it",
                        hex0x(&rotated.x25519_public()),
                        pending.display(),
                        path.display()
                    );
                    Err(e)
                }
            }
        }
        IdentityCommand::Revoke {
            keystore: path,
            pass,
            payer,
            node,
        } => {
            // With --payer the identity key is not needed, so neither is the passphrase.
            let (key, payer) = match &payer.payer {
                Some(suri) => (
                    keystore::load_public(&path)?.sr25519,
                    keypair_from_suri(suri, "--payer")?,
                ),
                None => {
                    let keys = load_keys(&path, &pass)?;
                    (keys.identity_public(), keys.identity_keypair().clone())
                }
            };
            let chain = connect(&node.url).await?;
            eprintln!("revoking identity {}", hex0x(&key));
            let outcome = chain.revoke(&payer, key, report).await?;
            eprintln!("revoked in finalized block {}", hex0x(&outcome.block_hash));
            Ok(())
        }
    }
}

fn pending_path(path: &Path) -> PathBuf {
    let mut name = path
        .file_name()
        .map(|n| n.to_os_string())
        .unwrap_or_default();
    name.push(".rotating");
    path.with_file_name(name)
}

fn print_view(view: &IdentityView) -> Result<()> {
    let text = serde_json::to_string_pretty(view).map_err(|e| Error::InvalidInput {
        what: "identity",
        reason: format!("cannot print as JSON: {e}"),
    })?;
    println!("{text}");
    Ok(())
}
