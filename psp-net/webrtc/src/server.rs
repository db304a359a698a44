//! The async driver: one tokio UDP socket, one task, the sans-IO [`crate::core`] inside.

use std::io::ErrorKind;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::net::UdpSocket;
use tokio::sync::{mpsc, oneshot};

use crate::core::Core;
use crate::{Error, PeerId, PeerLabel, Result, ServerConfig, ServerEvent};

/// Largest datagram read; str0m's MTU is at most 1500, so anything longer is not WebRTC.
const MAX_DATAGRAM: usize = 2048;

/// Without peers the task only waits for commands; this is how long it sleeps between looks.
const IDLE_WAKE: Duration = Duration::from_secs(3600);

enum Command {
    Accept {
        offer: String,
        label: PeerLabel,
        reply: oneshot::Sender<Result<(PeerId, String)>>,
    },
    Send {
        peer: PeerId,
        bytes: Arc<[u8]>,
    },
    Disconnect {
        peer: PeerId,
    },
}

/// A handle on a running data-channel server; cheap to clone. The server stops when every
/// handle is dropped.
#[derive(Clone)]
pub struct WebRtcServer {
    shared: Arc<Shared>,
}

struct Shared {
    commands: mpsc::Sender<Command>,
    events: Mutex<Option<mpsc::Receiver<ServerEvent>>>,
    local_addr: SocketAddr,
    candidate_addr: SocketAddr,
    max_message_bytes: usize,
}

/// The server's task: run it with `tokio::spawn(task.run())`.
pub struct ServerTask {
    core: Core,
    socket: UdpSocket,
    commands: mpsc::Receiver<Command>,
    events: mpsc::Sender<ServerEvent>,
    dropped_events: u64,
}

impl WebRtcServer {
    /// Binds the UDP socket all peers share.
    pub async fn bind(config: ServerConfig) -> Result<(WebRtcServer, ServerTask)> {
        config.validate()?;
        let socket = UdpSocket::bind(config.bind).await?;
        let local_addr = socket.local_addr()?;
        let candidate_addr = config.advertised_addr.unwrap_or(local_addr);
        let (command_tx, command_rx) = mpsc::channel(config.command_capacity);
        let (event_tx, event_rx) = mpsc::channel(config.event_capacity);
        let max_message_bytes = config.max_message_bytes;
        let core = Core::new(config, candidate_addr)?;
        let server = WebRtcServer {
            shared: Arc::new(Shared {
                commands: command_tx,
                events: Mutex::new(Some(event_rx)),
                local_addr,
                candidate_addr,
                max_message_bytes,
            }),
        };
        let task = ServerTask {
            core,
            socket,
            commands: command_rx,
            events: event_tx,
            dropped_events: 0,
        };
        Ok((server, task))
    }

    /// The bound UDP address.
    pub fn local_addr(&self) -> SocketAddr {
        self.shared.local_addr
    }

    /// The address announced to peers as the host candidate.
    pub fn candidate_addr(&self) -> SocketAddr {
        self.shared.candidate_addr
    }

    /// The event stream; `Some` once (the first caller owns it). Events that find the stream
    /// full are dropped (and logged): the task never waits on a slow reader.
    pub fn events(&self) -> Option<mpsc::Receiver<ServerEvent>> {
        self.shared
            .events
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .take()
    }

    /// Creates a peer for an SDP offer (the offerer opens the data channel) and returns the
    /// SDP answer to give back to it.
    pub async fn accept_offer(&self, offer: String, label: PeerLabel) -> Result<(PeerId, String)> {
        let (reply, answer) = oneshot::channel();
        self.command(Command::Accept {
            offer,
            label,
            reply,
        })
        .await?;
        answer.await.map_err(|_| Error::ServerStopped)?
    }

    /// Queues a binary message for `peer`. A peer that is gone is ignored (its
    /// [`ServerEvent::PeerGone`] says so); a peer whose queue is full is dropped.
    pub async fn send(&self, peer: PeerId, bytes: impl Into<Arc<[u8]>>) -> Result<()> {
        let bytes = bytes.into();
        let max = self.shared.max_message_bytes;
        if bytes.len() > max {
            return Err(Error::MessageTooLarge {
                len: bytes.len(),
                max,
            });
        }
        self.command(Command::Send { peer, bytes }).await
    }

    /// Drops `peer` (with a DTLS close, so it learns at once).
    pub async fn disconnect(&self, peer: PeerId) -> Result<()> {
        self.command(Command::Disconnect { peer }).await
    }

    async fn command(&self, command: Command) -> Result<()> {
        self.shared
            .commands
            .send(command)
            .await
            .map_err(|_| Error::ServerStopped)
    }
}

impl ServerTask {
    /// Serves until every [`WebRtcServer`] handle is dropped (`Ok`), or the socket fails.
    pub async fn run(mut self) -> Result<()> {
        let mut buf = vec![0u8; MAX_DATAGRAM];
        let result = loop {
            if let Err(e) = self.flush().await {
                break Err(e);
            }
            let now = Instant::now();
            let deadline = self.core.poll_timeout().unwrap_or(now + IDLE_WAKE);
            tokio::select! {
                command = self.commands.recv() => match command {
                    Some(command) => self.on_command(command),
                    None => break Ok(()),
                },
                received = self.socket.recv_from(&mut buf) => match received {
                    Ok((n, source)) => self.core.handle_datagram(Instant::now(), source, &buf[..n]),
                    // An ICMP error for an earlier send surfaces here on some systems.
                    Err(e) if is_transient(&e) => tracing::debug!("UDP receive: {e}"),
                    Err(e) => break Err(e.into()),
                },
                _ = tokio::time::sleep_until(deadline.into()) => {}
            }
            // Whatever woke us, peers whose time has come are run (a busy socket must not
            // starve the timers of quiet peers).
            let now = Instant::now();
            if self.core.poll_timeout().is_some_and(|t| t <= now) {
                self.core.handle_timeout(now);
            }
        };
        self.core.disconnect_all();
        let _ = self.flush().await;
        result
    }

    fn on_command(&mut self, command: Command) {
        let now = Instant::now();
        match command {
            Command::Accept {
                offer,
                label,
                reply,
            } => {
                let _ = reply.send(self.core.accept_offer(now, &offer, label));
            }
            Command::Send { peer, bytes } => {
                // The handle checked the size, so this cannot fail.
                let _ = self.core.send(now, peer, bytes);
            }
            Command::Disconnect { peer } => self.core.disconnect(peer),
        }
    }

    async fn flush(&mut self) -> Result<()> {
        while let Some(t) = self.core.poll_transmit() {
            if let Err(e) = self.socket.send_to(&t.contents, t.destination).await {
                if !is_transient(&e) {
                    return Err(e.into());
                }
                tracing::debug!(destination = %t.destination, "UDP send: {e}");
            }
        }
        while let Some(event) = self.core.poll_event() {
            match self.events.try_send(event) {
                Ok(()) | Err(mpsc::error::TrySendError::Closed(_)) => {}
                Err(mpsc::error::TrySendError::Full(_)) => {
                    self.dropped_events += 1;
                    if self.dropped_events.is_power_of_two() {
                        tracing::warn!(
                            dropped = self.dropped_events,
                            "WebRTC server events are not read fast enough; dropping"
                        );
                    }
                }
            }
        }
        Ok(())
    }
}

fn is_transient(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        ErrorKind::ConnectionRefused
            | ErrorKind::ConnectionReset
            | ErrorKind::Interrupted
            | ErrorKind::WouldBlock
            | ErrorKind::HostUnreachable
            | ErrorKind::NetworkUnreachable
    )
}
