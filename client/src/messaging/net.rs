//! The stream layer under the agent: open a stream to a node's service at the end of a fresh
//! circuit, and turn it into two channels — bytes to write, and [`NetEvent`]s back.
//!
//! [`Network`] is what the agent needs; [`OverlayNetwork`] implements it over `psp_net`'s
//! driver (one circuit per stream, path: random registered nodes, then the target node), and
//! tests implement it in memory. Closing is by dropping the writer: whatever was queued is
//! written, then the stream ends and the circuit is destroyed.

use std::sync::{Arc, RwLock};

use psp_net::driver::{Circuit, ClientConfig, ClientHandle, StreamReader, StreamWriter};
use psp_net::rendezvous::StreamHandle;
use tokio::sync::{mpsc, oneshot};

use super::error::MessagingError;
use crate::hex0x;
use crate::overlay::{describe, CircuitOptions, RelayNode};

/// Bytes queued per stream, as transmits (one or more frames each) waiting for the circuit's
/// pace. Default 8 192: three 1 MiB messages of 2 330 frames.
pub const DEFAULT_STREAM_QUEUE: usize = 8_192;

/// A stream the agent wants.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OpenRequest {
    /// The agent's name for it.
    pub stream: StreamHandle,
    /// The circuit's nodes, entry first; the last one's service is reached. The agent
    /// chooses them (entry guard, see `core::paths`).
    pub path: Vec<[u8; 32]>,
    /// The service (`presence`, `rendezvous`, `lookup`).
    pub service: &'static str,
}

impl OpenRequest {
    /// The node whose service the stream reaches.
    pub fn target(&self) -> Option<&[u8; 32]> {
        self.path.last()
    }
}

/// What the stream layer reports, for one stream at a time.
#[derive(Debug)]
pub enum NetEvent {
    /// The stream is open; write to it through `writer` (drop it to close the stream).
    Opened {
        /// The stream.
        stream: StreamHandle,
        /// Its writer.
        writer: mpsc::Sender<Vec<u8>>,
    },
    /// The stream could not be opened. Last event of the stream.
    OpenFailed {
        /// The stream.
        stream: StreamHandle,
        /// Why.
        reason: String,
    },
    /// Bytes arrived.
    Data {
        /// The stream.
        stream: StreamHandle,
        /// The bytes.
        bytes: Vec<u8>,
    },
    /// The stream ended (the node closed it, or the circuit died). Last event of the stream.
    Closed {
        /// The stream.
        stream: StreamHandle,
        /// Why.
        reason: String,
    },
}

/// Opens streams to node services.
pub trait Network: Send + Sync + 'static {
    /// Starts opening `request`'s stream; its events (first `Opened` or `OpenFailed`) go to
    /// `events`. Must not block: the work happens in a task.
    fn open(&self, request: OpenRequest, events: mpsc::Sender<NetEvent>);

    /// The registered nodes to build paths from, after a chain refresh.
    fn set_nodes(&self, nodes: Vec<RelayNode>);

    /// The libp2p peer id this network's links show the nodes (what an entry node sees of
    /// this client), if it has one.
    fn link_peer(&self) -> Option<String> {
        None
    }
}

/// The registered nodes named by `path`, in order.
pub fn resolve_path(
    nodes: &[RelayNode],
    path: &[[u8; 32]],
) -> Result<Vec<RelayNode>, MessagingError> {
    if path.is_empty() {
        return Err(MessagingError::NoNodes {
            reason: "an empty path".into(),
        });
    }
    path.iter()
        .map(|key| {
            nodes
                .iter()
                .find(|n| &n.key() == key)
                .cloned()
                .ok_or_else(|| MessagingError::NoNodes {
                    reason: format!(
                        "node {} is not among the {} registered nodes",
                        hex0x(key),
                        nodes.len()
                    ),
                })
        })
        .collect()
}

/// [`Network`] over `psp_net`'s onion client: every stream on its own circuit.
#[derive(Debug)]
pub struct OverlayNetwork {
    client: ClientHandle,
    nodes: Arc<RwLock<Vec<RelayNode>>>,
    options: CircuitOptions,
    queue: usize,
}

impl OverlayNetwork {
    /// Starts an onion client (on the current tokio runtime) pacing each circuit at
    /// `options.send_rate`, queueing at most `queue` transmits per stream.
    pub fn new(options: CircuitOptions, queue: usize) -> Result<Self, MessagingError> {
        let config = ClientConfig {
            send_rate: options.send_rate,
            build_timeout: options.build_timeout,
            stream_buffer: 4_096,
            ..ClientConfig::default()
        };
        let (client, task) = ClientHandle::new(config).map_err(|source| {
            MessagingError::chain(
                "starting the onion client",
                crate::Error::Circuit {
                    what: "starting the onion client".into(),
                    source,
                },
            )
        })?;
        tokio::spawn(task.run());
        Ok(Self {
            client,
            nodes: Arc::new(RwLock::new(Vec::new())),
            options,
            queue: queue.max(1),
        })
    }

    /// Stops the onion client: every circuit closes.
    pub async fn shutdown(&self) {
        self.client.shutdown().await;
    }
}

impl Network for OverlayNetwork {
    fn link_peer(&self) -> Option<String> {
        Some(self.client.peer_id().to_string())
    }

    fn open(&self, request: OpenRequest, events: mpsc::Sender<NetEvent>) {
        let nodes = self.nodes.read().map(|n| n.clone()).unwrap_or_default();
        let client = self.client.clone();
        let timeout = self.options.build_timeout + std::time::Duration::from_secs(5);
        let queue = self.queue;
        tokio::spawn(async move {
            let stream = request.stream;
            let opened = tokio::time::timeout(timeout, open_stream(&client, &nodes, &request))
                .await
                .unwrap_or_else(|_| Err(format!("no stream within {} s", timeout.as_secs())));
            match opened {
                Ok((circuit, writer, reader)) => {
                    let (tx, rx) = mpsc::channel(queue);
                    if events
                        .send(NetEvent::Opened { stream, writer: tx })
                        .await
                        .is_err()
                    {
                        let _ = circuit.destroy().await;
                        return;
                    }
                    pump(stream, circuit, writer, reader, rx, events).await;
                }
                Err(reason) => {
                    let _ = events.send(NetEvent::OpenFailed { stream, reason }).await;
                }
            }
        });
    }

    fn set_nodes(&self, nodes: Vec<RelayNode>) {
        if let Ok(mut n) = self.nodes.write() {
            *n = nodes;
        }
    }
}

async fn open_stream(
    client: &ClientHandle,
    nodes: &[RelayNode],
    request: &OpenRequest,
) -> Result<(Circuit, StreamWriter, StreamReader), String> {
    let path = resolve_path(nodes, &request.path).map_err(|e| e.to_string())?;
    let descriptors: Vec<_> = path.iter().map(|n| n.descriptor.clone()).collect();
    let circuit = client
        .build_circuit(&descriptors)
        .await
        .map_err(|e| format!("building {}: {e}", describe(&path)))?;
    match circuit.open_stream(request.service).await {
        Ok(stream) => {
            let (writer, reader) = stream.into_split();
            Ok((circuit, writer, reader))
        }
        Err(e) => {
            let _ = circuit.destroy().await;
            Err(format!("opening the stream: {e}"))
        }
    }
}

/// Moves one stream's bytes both ways until either side ends, then destroys its circuit.
async fn pump(
    stream: StreamHandle,
    circuit: Circuit,
    writer: StreamWriter,
    mut reader: StreamReader,
    mut outgoing: mpsc::Receiver<Vec<u8>>,
    events: mpsc::Sender<NetEvent>,
) {
    let (ended_tx, mut ended_rx) = oneshot::channel::<()>();
    // The reader reports bytes until the stream ends; the writer side below notices.
    let reader_events = events.clone();
    let reading = tokio::spawn(async move {
        while let Some(bytes) = reader.recv().await {
            if reader_events
                .send(NetEvent::Data { stream, bytes })
                .await
                .is_err()
            {
                break;
            }
        }
        let _ = ended_tx.send(());
    });
    let mut closed_by_us = false;
    loop {
        tokio::select! {
            next = outgoing.recv() => match next {
                Some(bytes) => {
                    if writer.send(&bytes).await.is_err() {
                        break;
                    }
                }
                None => {
                    closed_by_us = true;
                    let _ = writer.close().await;
                    break;
                }
            },
            _ = &mut ended_rx => break,
        }
    }
    let reason = circuit
        .close_reason()
        .map(|c| format!("circuit closed: {c:?}"))
        .unwrap_or_else(|| "the node ended the stream".into());
    let _ = circuit.destroy().await;
    reading.abort();
    if !closed_by_us {
        let _ = events.send(NetEvent::Closed { stream, reason }).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use psp_net::crypto::{NodeId, OnionPublic};
    use psp_net::driver::{Keypair, NodeDescriptor};

    fn relay(i: u8) -> RelayNode {
        let peer_id = Keypair::ed25519_from_bytes([i; 32])
            .expect("key")
            .public()
            .to_peer_id();
        RelayNode {
            id: format!("n{i}"),
            descriptor: NodeDescriptor {
                id: NodeId([i; 32]),
                onion_key: OnionPublic([i; 32]),
                peer_id,
                address: "/ip4/127.0.0.1/tcp/1".parse().expect("addr"),
            },
        }
    }

    #[test]
    fn paths_resolve_to_registered_nodes_in_order() {
        let nodes: Vec<RelayNode> = (1..=5).map(relay).collect();
        let path = resolve_path(&nodes, &[[3; 32], [1; 32], [5; 32]]).expect("path");
        let keys: Vec<[u8; 32]> = path.iter().map(RelayNode::key).collect();
        assert_eq!(keys, [[3; 32], [1; 32], [5; 32]]);
        let err = resolve_path(&nodes, &[[3; 32], [9; 32]]).expect_err("unknown");
        assert!(err.to_string().contains(&hex0x(&[9; 32])), "{err}");
        assert!(resolve_path(&nodes, &[]).is_err());
    }
}
