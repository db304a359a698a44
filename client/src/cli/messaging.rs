//! `psp messaging`: private messaging. `agent` runs the long-running agent of one identity
//! in the foreground (one JSON line per event on stdout); the other commands send one
//! request to it over its control socket and print the JSON answer. The work is done by
//! `psp_client::messaging`.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use clap::{Args, Subcommand};
use psp_client::contacts::book::Book;
use psp_client::groups::protocol::GroupRequest;
use psp_client::messaging::{
    control, Agent, AgentConfig, CoreConfig, MessagingError, Reply, Request, SocketChoice,
};
use psp_client::overlay::CircuitOptions;
use psp_client::psp_net::rendezvous::client::AnnouncerConfig;
use psp_client::psp_net::rendezvous::wire::ChannelLimits;
use psp_client::{parse_hex, Error, Result};
use tokio::sync::broadcast::error::RecvError;

use super::common::{print_json, NodeArgs, PassArgs};

#[derive(Debug, Subcommand)]
pub enum MessagingCommand {
    /// Run the messaging agent of an identity in the foreground until killed: presence
    /// points, introductions, channels, inbox. Prints one JSON line per event.
    Agent(AgentArgs),
    /// The agent's identity, presence points, channels and queues.
    AnnounceStatus {
        #[command(flatten)]
        socket: SocketArgs,
    },
    /// Look up an identity's presence records (each checked by the agent).
    Lookup {
        /// Id string or 0x + 64 hex digits.
        id: String,
        #[command(flatten)]
        socket: SocketArgs,
    },
    /// Send a message, opening a channel first if there is none (waits until it is sent).
    Send {
        /// Id string or 0x + 64 hex digits.
        id: String,
        /// The message as text.
        #[arg(long, conflicts_with = "file", required_unless_present = "file")]
        text: Option<String>,
        /// A file whose bytes are the message (up to 1 MiB).
        #[arg(long)]
        file: Option<PathBuf>,
        /// Open the channel only through the peer's presence point at this node (0x + 64
        /// hex digits, as `lookup` lists it); fails if the peer has none there. A channel
        /// already open to the peer is used whatever its point.
        #[arg(long, value_name = "NODE_KEY")]
        presence_node: Option<String>,
        #[command(flatten)]
        socket: SocketArgs,
    },
    /// The pending introductions (requests for a channel).
    Requests {
        #[command(flatten)]
        socket: SocketArgs,
    },
    /// Accept a pending request; waits until the channel is established.
    Accept {
        /// The request number.
        request: u64,
        #[command(flatten)]
        socket: SocketArgs,
    },
    /// Decline a pending request (the introducer is told).
    Decline {
        /// The request number.
        request: u64,
        #[command(flatten)]
        socket: SocketArgs,
    },
    /// Take the received messages out of the inbox.
    Inbox {
        /// Wait up to this many seconds for a message if the inbox is empty.
        #[arg(long, value_name = "SECS", default_value_t = 0)]
        wait: u64,
        /// Take at most this many messages.
        #[arg(long)]
        max: Option<usize>,
        #[command(flatten)]
        socket: SocketArgs,
    },
    /// Close a channel.
    Close {
        /// The channel number.
        channel: u64,
        #[command(flatten)]
        socket: SocketArgs,
    },
}

// Which agent to talk to.
#[derive(Debug, Args)]
pub struct SocketArgs {
    /// The agent's control socket (default: <KEYSTORE>.messaging.sock with --keystore).
    #[arg(long, env = "PSP_MESSAGING_SOCKET")]
    socket: Option<PathBuf>,
    /// The agent's keystore, to find its default socket.
    #[arg(long)]
    keystore: Option<PathBuf>,
    /// Seconds to wait for the agent's answer (a send or accept may set up a channel).
    #[arg(long, value_name = "SECS", default_value_t = 300)]
    timeout: u64,
}

impl SocketArgs {
    async fn call(&self, request: Request) -> Result<()> {
        let reply = self.request(request).await?;
        print_json(&reply)
    }

    /// Sends one request to the agent and returns its answer.
    pub async fn request(&self, request: Request) -> Result<Reply> {
        let socket = match (&self.socket, &self.keystore) {
            (Some(socket), _) => socket.clone(),
            (None, Some(keystore)) => control::default_socket(keystore),
            (None, None) => {
                return Err(Error::InvalidInput {
                    what: "--socket",
                    reason: "give the agent's --socket (or its --keystore)".into(),
                })
            }
        };
        let mut timeout = Duration::from_secs(self.timeout.max(1));
        match &request {
            Request::Inbox { wait_secs, .. }
            | Request::Group {
                request: GroupRequest::Read { wait_secs, .. },
            } => timeout += Duration::from_secs(*wait_secs),
            _ => {}
        }
        Ok(control::call(&socket, &request, timeout).await?)
    }
}

#[derive(Debug, Args)]
pub struct AgentArgs {
    /// The identity's keystore.
    #[arg(long)]
    keystore: PathBuf,
    #[command(flatten)]
    pass: PassArgs,
    #[command(flatten)]
    node: NodeArgs,
    /// An elected authority node to get certificates from (repeat; default: --url).
    #[arg(long = "authority-url", value_name = "URL")]
    authority_urls: Vec<String>,
    /// The control socket (default: <KEYSTORE>.messaging.sock).
    #[arg(long, env = "PSP_MESSAGING_SOCKET")]
    socket: Option<PathBuf>,
    /// Presence points to hold, 0 to 4 (0: reach others only; lookups fetch 4 slots).
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u8).range(0..=4))]
    points: u8,
    /// Register public presence points (on the first hop) instead of anonymous ones.
    #[arg(long)]
    public: bool,
    /// This agent does not hide its address: its rendezvous circuits (as caller and to
    /// join a caller's rendezvous point) take one hop, and so do its introductions to
    /// public presence points. Anonymous points and look-ups still take three hops.
    #[arg(long)]
    direct: bool,
    /// Accept every introduction that passes its checks at once (the introduction-received
    /// event is still printed, then the channel opens): for a public service or a benchmark.
    #[arg(long)]
    accept_all: bool,
    /// Contact-only mode: decline every introduction whose introducer is not in --book, at
    /// this agent (the presence node sees an ordinary decline). With --accept-all, only
    /// contacts are accepted. The book is read once, at start.
    #[arg(long, requires = "book")]
    contacts_only: bool,
    /// The contact book for --contacts-only.
    #[arg(long, requires = "contacts_only")]
    book: Option<PathBuf>,
    /// Introductions per minute each presence node lets through.
    #[arg(long, value_name = "N", default_value_t = ChannelLimits::default().rate_per_minute)]
    rate: u16,
    /// Introductions in one burst.
    #[arg(long, value_name = "N", default_value_t = ChannelLimits::default().burst)]
    burst: u16,
    /// Channels per presence point, ever (at the cap another point is added).
    #[arg(long, value_name = "N", default_value_t = ChannelLimits::default().cap)]
    cap: u16,
    /// Cells per second sent per circuit (must not exceed the relays' circuit rate).
    #[arg(long, value_name = "CELLS_PER_SEC", default_value_t = 10)]
    cell_rate: u32,
    /// Largest burst of cells per circuit.
    #[arg(long, value_name = "CELLS", default_value_t = 100)]
    cell_burst: u32,
    /// Seconds to build a circuit.
    #[arg(long, value_name = "SECS", default_value_t = 30)]
    build_timeout: u64,
    /// Lifetime of each presence record, renewed at half of it (presence nodes accept at
    /// most 300 s). A stopped agent's records lapse within it.
    #[arg(long, value_name = "SECS", default_value_t = AnnouncerConfig::default().record_lifetime_secs)]
    record_lifetime: u64,
    /// Where the agent keeps its groups' state, sealed under the identity's key (default:
    /// <KEYSTORE>.groups/ beside the keystore).
    #[arg(long, value_name = "DIR", conflicts_with = "no_groups")]
    groups_dir: Option<PathBuf>,
    /// Run without groups (group packets are dropped with a warning).
    #[arg(long)]
    no_groups: bool,
}

impl AgentArgs {
    fn config(self) -> Result<AgentConfig> {
        let circuit = CircuitOptions::with_limits(
            self.cell_rate,
            self.cell_burst,
            Duration::from_secs(self.build_timeout),
        )?;
        let contacts = match (&self.book, self.contacts_only) {
            (Some(book), true) => Some(Arc::new(Book::load(book)?.keys())),
            _ => None,
        };
        let mut config = AgentConfig::new(self.keystore, self.node.url);
        config.passphrase_file = self.pass.passphrase_file;
        if self.no_groups {
            config.groups_dir = None;
        } else if let Some(dir) = self.groups_dir {
            config.groups_dir = Some(dir);
        }
        config.authority_urls = self.authority_urls;
        config.socket = self
            .socket
            .map_or(SocketChoice::Default, SocketChoice::Path);
        config.circuit = circuit;
        config.core = CoreConfig {
            points: self.points,
            public: self.public,
            direct: self.direct,
            accept_all: self.accept_all,
            contacts,
            limits: ChannelLimits {
                rate_per_minute: self.rate,
                burst: self.burst,
                cap: self.cap,
            },
            announcer: AnnouncerConfig {
                record_lifetime_secs: self.record_lifetime,
                ..AnnouncerConfig::default()
            },
            ..CoreConfig::default()
        };
        Ok(config)
    }
}

/// Runs a `psp messaging` command.
pub async fn run(cmd: MessagingCommand) -> Result<()> {
    match cmd {
        MessagingCommand::Agent(args) => run_agent(args).await,
        MessagingCommand::AnnounceStatus { socket } => socket.call(Request::Status).await,
        MessagingCommand::Lookup { id, socket } => socket.call(Request::Lookup { peer: id }).await,
        MessagingCommand::Send {
            id,
            text,
            file,
            presence_node,
            socket,
        } => {
            let bytes = match (text, file) {
                (Some(text), _) => text.into_bytes(),
                (None, Some(file)) => std::fs::read(&file).map_err(|source| Error::Io {
                    path: file.clone(),
                    source,
                })?,
                (None, None) => Vec::new(),
            };
            let presence_node = presence_node
                .map(|node| parse_hex::<32>(&node, "--presence-node"))
                .transpose()?;
            socket
                .call(Request::send_via(id, bytes, presence_node))
                .await
        }
        MessagingCommand::Requests { socket } => socket.call(Request::Requests).await,
        MessagingCommand::Accept { request, socket } => {
            socket.call(Request::Accept { request }).await
        }
        MessagingCommand::Decline { request, socket } => {
            socket.call(Request::Decline { request }).await
        }
        MessagingCommand::Inbox { wait, max, socket } => {
            let request = Request::Inbox {
                wait_secs: wait,
                max,
            };
            socket.call(request).await
        }
        MessagingCommand::Close { channel, socket } => {
            socket.call(Request::Close { channel }).await
        }
    }
}

/// Starts the agent and prints its events until it stops.
async fn run_agent(args: AgentArgs) -> Result<()> {
    let config = args.config()?;
    eprintln!("starting the messaging agent ({})", config.url);
    let mut agent = Agent::spawn(config).await?;
    let mut events = agent.events();
    loop {
        tokio::select! {
            event = events.recv() => match event {
                Ok(event) => println!("{}", event.to_json_line()),
                Err(RecvError::Lagged(n)) => {
                    eprintln!("warning: {n} events not shown (stdout too slow)")
                }
                Err(RecvError::Closed) => break,
            },
            _ = agent.stopped() => break,
        }
    }
    agent.wait().await;
    Err(MessagingError::AgentStopped.into())
}
