//! The agent: its configuration, [`Agent::spawn`] (from a keystore and a node URL) and
//! [`Agent::spawn_with`] (from parts: any [`ChainSource`] and [`Network`], for tests), and
//! the [`AgentHandle`] that talks to it in-process.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rand::RngCore;
use tokio::sync::{broadcast, mpsc, oneshot};
use tokio::task::JoinHandle;

use super::chainview::{describe_status, status_of, ChainState};
use super::control::{self, ControlRequest};
use super::core::{Core, CoreConfig};
use super::credentials;
use super::driver::{AgentCommand, Driver, DriverTiming};
use super::error::MessagingError;
use super::events::AgentEvent;
use super::groups::{GroupsTask, GROUP_INPUTS};
use super::net::{Network, OverlayNetwork, DEFAULT_STREAM_QUEUE};
use super::protocol::{Reply, Request};
use super::source::{ChainSource, RpcChain};
use crate::chain::Chain;
use crate::groups::{host::Host, store::Store};
use crate::hex0x;
use crate::keystore::{self, Keys};
use crate::overlay::CircuitOptions;

/// Control requests queued for the loop. Default 64.
const COMMANDS: usize = 64;
/// Events kept for slow subscribers; a subscriber further behind misses the oldest. 1 024.
const EVENTS: usize = 1_024;

/// Where the agent listens for control requests.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SocketChoice {
    /// `<keystore>.messaging.sock` beside the keystore.
    Default,
    /// This path.
    Path(PathBuf),
    /// No socket: in-process use only, through the [`AgentHandle`].
    None,
}

/// Everything [`Agent::spawn`] needs.
#[derive(Clone, Debug)]
pub struct AgentConfig {
    /// The identity's keystore.
    pub keystore: PathBuf,
    /// Its passphrase file (else `PSP_PASSPHRASE`).
    pub passphrase_file: Option<PathBuf>,
    /// The node for chain state (`ws://…`).
    pub url: String,
    /// Nodes to ask for certificates (elected authorities), in order. Empty: `url`.
    pub authority_urls: Vec<String>,
    /// The control socket.
    pub socket: SocketChoice,
    /// What the agent holds and does.
    pub core: CoreConfig,
    /// Circuit pacing and build timeout (must match the relays' rates).
    pub circuit: CircuitOptions,
    /// Transmits queued per stream. Default [`DEFAULT_STREAM_QUEUE`].
    pub stream_queue: usize,
    /// Chain refresh period (authorities, nodes, statuses). Default 30 s.
    pub refresh: Duration,
    /// A cached identity status is fetched again when older than this at a refresh (s).
    /// Default 60 s.
    pub status_max_age_secs: u64,
    /// Where the agent keeps its groups' state (sealed); `None`: no groups. Default
    /// `<keystore>.groups/` beside the keystore.
    pub groups_dir: Option<PathBuf>,
}

impl AgentConfig {
    /// The defaults for this keystore and node.
    pub fn new(keystore: impl Into<PathBuf>, url: impl Into<String>) -> Self {
        let keystore: PathBuf = keystore.into();
        let mut groups = keystore.clone().into_os_string();
        groups.push(".groups");
        Self {
            groups_dir: Some(groups.into()),
            keystore,
            passphrase_file: None,
            url: url.into(),
            authority_urls: Vec::new(),
            socket: SocketChoice::Default,
            core: CoreConfig::default(),
            circuit: CircuitOptions::default(),
            stream_queue: DEFAULT_STREAM_QUEUE,
            refresh: Duration::from_secs(30),
            status_max_age_secs: 60,
        }
    }

    /// The socket path this configuration listens on, if any.
    pub fn socket_path(&self) -> Option<PathBuf> {
        match &self.socket {
            SocketChoice::Default => Some(control::default_socket(&self.keystore)),
            SocketChoice::Path(p) => Some(p.clone()),
            SocketChoice::None => None,
        }
    }
}

/// An agent built from its parts.
pub struct AgentParts {
    /// The identity's keys.
    pub keys: Arc<Keys>,
    /// Its id string.
    pub id: String,
    /// The chain.
    pub source: Arc<dyn ChainSource>,
    /// The streams.
    pub network: Arc<dyn Network>,
    /// What the agent holds and does.
    pub core: CoreConfig,
    /// Where it listens, if anywhere.
    pub socket: Option<PathBuf>,
    /// Chain refresh period.
    pub refresh: Duration,
    /// Status age refetched at a refresh (s).
    pub status_max_age_secs: u64,
    /// The groups' state directory; `None`: no groups.
    pub groups_dir: Option<PathBuf>,
}

/// The messaging agent.
#[derive(Debug)]
pub struct Agent;

impl Agent {
    /// Opens the keystore, connects to the chain, checks the identity is live, gets a
    /// certificate, starts the onion client and the control socket, and runs the agent in
    /// a task. Call from inside a tokio runtime.
    pub async fn spawn(config: AgentConfig) -> Result<AgentHandle, MessagingError> {
        let keys = keystore::open(&config.keystore, config.passphrase_file.as_deref())
            .map_err(|e| MessagingError::chain("opening the keystore", e))?;
        let keys = Arc::new(keys);
        let chain = Chain::connect(&config.url)
            .await
            .map_err(|e| MessagingError::chain("connecting to the chain", e))?;
        let me = keys.identity_public();
        let view = chain
            .identity_by_key(&me, None)
            .await
            .map_err(|e| MessagingError::chain("reading this identity", e))?;
        let status = status_of(view.as_ref());
        let Some(view) =
            view.filter(|_| matches!(status, psp_net::registry::IdentityStatus::Active(_)))
        else {
            return Err(MessagingError::NotLive {
                peer: hex0x(&me),
                status: describe_status(status).into(),
            });
        };
        let authority_urls = if config.authority_urls.is_empty() {
            vec![config.url.clone()]
        } else {
            config.authority_urls.clone()
        };
        let source = Arc::new(RpcChain::new(chain, keys.clone(), authority_urls));
        let network = Arc::new(OverlayNetwork::new(
            config.circuit.clone(),
            config.stream_queue,
        )?);
        Self::spawn_with(AgentParts {
            keys,
            id: view.id,
            source,
            network,
            core: config.core.clone(),
            socket: config.socket_path(),
            refresh: config.refresh,
            status_max_age_secs: config.status_max_age_secs,
            groups_dir: config.groups_dir.clone(),
        })
        .await
    }

    /// Runs an agent on `parts`: gets a certificate and the chain's sets from the source,
    /// listens on the socket if one is given, and starts the loop.
    pub async fn spawn_with(parts: AgentParts) -> Result<AgentHandle, MessagingError> {
        let certificate = parts.source.certificate().await?;
        let snapshot = parts.source.snapshot().await?;
        let listener = match &parts.socket {
            Some(path) => Some(control::bind(path).await?),
            None => None,
        };
        let identity = credentials::identity(&parts.keys, certificate.bytes.clone());
        let mut chain = ChainState::new(parts.source.genesis());
        chain.authorities = snapshot.authorities;
        let mut seed = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut seed);
        let mut core = Core::new(
            identity,
            parts.id.clone(),
            certificate.not_after,
            chain,
            parts.core,
            seed,
        );
        core.set_nodes(snapshot.nodes.iter().map(|n| n.key()).collect());
        parts.network.set_nodes(snapshot.nodes);

        let (events, first_events) = broadcast::channel(EVENTS);
        let (commands, commands_rx) = mpsc::channel(COMMANDS);
        let (control_tx, mut control_rx) = mpsc::channel::<ControlRequest>(COMMANDS);
        let server = listener.map(|l| tokio::spawn(control::serve(l, control_tx)));
        // Control requests from the socket join the loop's commands.
        let forward = commands.clone();
        let forwarder = tokio::spawn(async move {
            while let Some(request) = control_rx.recv().await {
                if forward.send(AgentCommand::Control(request)).await.is_err() {
                    return;
                }
            }
        });
        let started = AgentEvent::Started {
            identity: hex0x(&parts.keys.identity_public()),
            id: parts.id.clone(),
            socket: parts.socket.as_ref().map(|p| p.display().to_string()),
            certificate_not_after: certificate.not_after,
            link_peer: parts.network.link_peer(),
        };
        let timing = DriverTiming {
            refresh: parts.refresh,
            status_max_age: parts.status_max_age_secs,
        };
        let groups = match &parts.groups_dir {
            Some(dir) => {
                let store = Store::open(dir, parts.keys.identity_seed())?;
                let host = Host::new(*parts.keys.identity_seed());
                let (tx, rx) = mpsc::channel(GROUP_INPUTS);
                let task = GroupsTask::new(host, store, commands.clone(), events.clone());
                Some((tx, tokio::spawn(task.run(rx))))
            }
            None => None,
        };
        let (groups_tx, groups_task) = groups.unzip();
        let driver = Driver::new(
            core,
            parts.source,
            parts.network,
            parts.keys.clone(),
            timing,
            events.clone(),
            (certificate.not_before, certificate.not_after),
            groups_tx,
        );
        let task = tokio::spawn(driver.run(commands_rx, started));
        Ok(AgentHandle {
            commands,
            events,
            first_events: Some(first_events),
            socket: parts.socket,
            identity: parts.keys.identity_public(),
            id: parts.id,
            task: Some(task),
            background: [server, Some(forwarder), groups_task]
                .into_iter()
                .flatten()
                .collect(),
        })
    }
}

/// A running agent.
#[derive(Debug)]
pub struct AgentHandle {
    commands: mpsc::Sender<AgentCommand>,
    events: broadcast::Sender<AgentEvent>,
    first_events: Option<broadcast::Receiver<AgentEvent>>,
    socket: Option<PathBuf>,
    identity: [u8; 32],
    id: String,
    /// The loop; `None` once it has been awaited to its end.
    task: Option<JoinHandle<()>>,
    background: Vec<JoinHandle<()>>,
}

impl AgentHandle {
    /// Sends a control request, as the socket would, and waits for the answer.
    pub async fn request(&self, request: Request) -> Result<Reply, MessagingError> {
        let (reply, answer) = oneshot::channel();
        self.commands
            .send(AgentCommand::Control(ControlRequest { request, reply }))
            .await
            .map_err(|_| MessagingError::AgentStopped)?;
        answer
            .await
            .map_err(|_| MessagingError::AgentStopped)?
            .into_result()
    }

    /// The agent's events: the first call sees every event since the start, later calls
    /// those from now on.
    pub fn events(&mut self) -> broadcast::Receiver<AgentEvent> {
        self.first_events
            .take()
            .unwrap_or_else(|| self.events.subscribe())
    }

    /// The control socket, if it listens on one.
    pub fn socket(&self) -> Option<&Path> {
        self.socket.as_deref()
    }

    /// The identity key.
    pub fn identity(&self) -> [u8; 32] {
        self.identity
    }

    /// The id string.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Whether the loop has stopped.
    pub fn is_finished(&self) -> bool {
        self.task.as_ref().is_none_or(JoinHandle::is_finished)
    }

    /// Waits until the loop stops (it runs until shut down, or a bug ends it).
    pub async fn stopped(&mut self) {
        if let Some(task) = self.task.as_mut() {
            let _ = task.await;
            self.task = None;
        }
    }

    /// Stops the agent: its streams and circuits close, the socket is removed.
    pub async fn shutdown(mut self) {
        let _ = self.commands.send(AgentCommand::Shutdown).await;
        self.stopped().await;
        self.stop_background();
    }

    /// Waits until the agent stops, then removes its socket.
    pub async fn wait(mut self) {
        self.stopped().await;
        self.stop_background();
    }

    fn stop_background(&mut self) {
        for task in self.background.drain(..) {
            task.abort();
        }
        if let Some(path) = &self.socket {
            let _ = std::fs::remove_file(path);
        }
    }
}

#[cfg(test)]
mod tests;
