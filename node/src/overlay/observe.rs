//! A test-only record of what this overlay node learns (`--overlay-observe-file`), for the
//! end-to-end test that checks what each node of a real network saw.
//!
//! One line per observation, appended and flushed at once:
//! - `client-link <peer id>`: a client linked to this node (this node is its entry and sees
//!   its address);
//! - `service <name> <hex>`: bytes a client sent to this node's presence, rendezvous or
//!   lookup service (the plaintext this node gets at the end of a circuit);
//! - `traffic <frames in> <bytes in> <frames out> <bytes out>`: what crossed this node's link
//!   substreams so far, written every [`TRAFFIC_EVERY`].
//!
//! Only the dev and local chains accept the option: a production node has no business keeping
//! such a log.

use psp_net::driver::{NodeHandle, NodeStats, PeerId};
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How often the link traffic counters are written.
pub const TRAFFIC_EVERY: Duration = Duration::from_secs(1);

/// Why the observer could not start.
#[derive(Debug, thiserror::Error)]
pub enum ObserveError {
    /// The chain is not a test network.
    #[error("--overlay-observe-file is for test networks only (the dev and local chains)")]
    NotATestNetwork,
    /// The file could not be created.
    #[error("--overlay-observe-file {path}: {source}")]
    Create {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

/// Appends observations to the file.
#[derive(Debug)]
pub struct Observer {
    path: PathBuf,
    file: Mutex<BufWriter<File>>,
}

impl Observer {
    /// The observer asked for by `path`, if any; refused unless `test_network`.
    pub fn open(
        path: Option<&Path>,
        test_network: bool,
    ) -> Result<Option<Arc<Self>>, ObserveError> {
        let Some(path) = path else {
            return Ok(None);
        };
        if !test_network {
            return Err(ObserveError::NotATestNetwork);
        }
        let file = File::create(path).map_err(|source| ObserveError::Create {
            path: path.to_path_buf(),
            source,
        })?;
        Ok(Some(Arc::new(Self {
            path: path.to_path_buf(),
            file: Mutex::new(BufWriter::new(file)),
        })))
    }

    /// Bytes a client sent to `service`.
    pub fn service_bytes(&self, service: &str, bytes: &[u8]) {
        self.line(&format!("service {service} {}", hex::encode(bytes)));
    }

    /// A client linked to this node.
    pub fn client_link(&self, peer_id: &PeerId) {
        self.line(&format!("client-link {peer_id}"));
    }

    /// The link traffic so far.
    pub fn traffic(&self, stats: &NodeStats) {
        self.line(&format!(
            "traffic {} {} {} {}",
            stats.link_frames_in, stats.link_bytes_in, stats.link_frames_out, stats.link_bytes_out
        ));
    }

    /// Writes the traffic counters every [`TRAFFIC_EVERY`] until the node stops.
    pub async fn watch_traffic(self: Arc<Self>, handle: NodeHandle) {
        loop {
            tokio::time::sleep(TRAFFIC_EVERY).await;
            match handle.stats().await {
                Ok(stats) => self.traffic(&stats),
                Err(_) => return,
            }
        }
    }

    fn line(&self, line: &str) {
        // A poisoned lock only means another writer panicked between two whole lines.
        let mut file = self.file.lock().unwrap_or_else(|e| e.into_inner());
        let written = writeln!(file, "{line}").and_then(|()| file.flush());
        if let Err(e) = written {
            log::warn!(target: "psp-overlay", "observe file {}: {e}", self.path.display());
        }
    }
}
