//! Shared helpers of the end-to-end tests: starting and stopping real `psp-node` processes.
//!
//! [`DevNode::start`] runs `psp-node --dev --tmp` on free loopback ports (`--rpc-port`, and
//! `--listen-addr /ip4/127.0.0.1/tcp/P` for p2p), with its log in a
//! temporary file, waits until its RPC answers and a first block is finalized, and kills the
//! process when dropped. If a test panics while the node is alive, the tail of the node's log
//! is printed, because that is usually where the reason is.
//!
//! The binary is `$PSP_NODE_BIN`, else `$CARGO_TARGET_DIR/debug/psp-node`, else
//! `$HOME/.cache/psp-target/debug/psp-node`. A missing binary is a test failure with a message
//! saying how to build it, never a skip.

#![warn(missing_docs)]

use anyhow::{bail, Context, Result};
use psp_client::chain::Chain;
use std::{
    fs::File,
    io::{Read, Seek, SeekFrom},
    net::TcpListener,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

/// How long a fresh dev node may take to answer RPC and finalize a block (a debug build on
/// two busy cores needs about two minutes).
pub const STARTUP_TIMEOUT: Duration = Duration::from_secs(300);
/// Lines of node log printed when a test fails.
pub const LOG_TAIL_LINES: usize = 60;

/// Where the `psp-node` binary is looked for, in order; the first that exists wins.
pub fn node_binary_candidates() -> Vec<PathBuf> {
    if let Some(bin) = std::env::var_os("PSP_NODE_BIN") {
        return vec![PathBuf::from(bin)];
    }
    let mut out = Vec::new();
    if let Some(dir) = std::env::var_os("CARGO_TARGET_DIR") {
        out.push(PathBuf::from(dir).join("debug/psp-node"));
    }
    if let Some(home) = std::env::var_os("HOME") {
        out.push(PathBuf::from(home).join(".cache/psp-target/debug/psp-node"));
    }
    out
}

/// The `psp-node` binary, or an error that says how to build it.
pub fn node_binary() -> Result<PathBuf> {
    let candidates = node_binary_candidates();
    if let Some(found) = candidates.iter().find(|p| p.is_file()) {
        return Ok(found.clone());
    }
    let tried: Vec<String> = candidates.iter().map(|p| p.display().to_string()).collect();
    bail!(
        "psp-node binary not found (tried: {}). Build it first: \
         `CARGO_TARGET_DIR=$HOME/.cache/psp-target cargo build -p psp-node`, \
         or point PSP_NODE_BIN at an existing binary",
        if tried.is_empty() {
            "nothing: set PSP_NODE_BIN".to_string()
        } else {
            tried.join(", ")
        }
    )
}

/// A free TCP port on 127.0.0.1 (free when asked; the node binds it a moment later).
pub fn free_port() -> Result<u16> {
    let listener = TcpListener::bind("127.0.0.1:0").context("binding 127.0.0.1:0")?;
    Ok(listener.local_addr()?.port())
}

/// A running `psp-node --dev --tmp`, killed on drop.
pub struct DevNode {
    child: Child,
    rpc_port: u16,
    log_path: PathBuf,
    _log_dir: tempfile::TempDir,
}

impl DevNode {
    /// Starts a dev node and waits until its RPC answers and block 1 is finalized.
    pub async fn start() -> Result<Self> {
        let bin = node_binary()?;
        let rpc_port = free_port()?;
        let mut p2p_port = free_port()?;
        while p2p_port == rpc_port {
            p2p_port = free_port()?;
        }
        let log_dir = tempfile::tempdir().context("creating a temp dir for the node log")?;
        let log_path = log_dir.path().join("psp-node.log");
        let log = File::create(&log_path).context("creating the node log")?;
        let log_err = log.try_clone().context("duplicating the node log handle")?;
        let child = Command::new(&bin)
            .args([
                "--dev",
                "--tmp",
                "--no-prometheus",
                "--no-telemetry",
                "--no-mdns",
            ])
            .args(["--rpc-port", &rpc_port.to_string()])
            // `--listen-addr` replaces `--port` (the node refuses both) and keeps p2p on loopback.
            .args(["--listen-addr", &format!("/ip4/127.0.0.1/tcp/{p2p_port}")])
            .stdin(Stdio::null())
            .stdout(Stdio::from(log))
            .stderr(Stdio::from(log_err))
            .spawn()
            .with_context(|| format!("starting {}", bin.display()))?;
        let mut node = DevNode {
            child,
            rpc_port,
            log_path,
            _log_dir: log_dir,
        };
        if let Err(e) = node.wait_ready().await {
            let tail = node.log_tail(LOG_TAIL_LINES);
            bail!("{e:#}\n--- last {LOG_TAIL_LINES} lines of the psp-node log ---\n{tail}");
        }
        Ok(node)
    }

    async fn wait_ready(&mut self) -> Result<()> {
        let deadline = Instant::now() + STARTUP_TIMEOUT;
        let url = self.url();
        let mut last_error = String::from("no attempt yet");
        loop {
            if let Some(status) = self.child.try_wait().context("polling psp-node")? {
                bail!("psp-node exited during startup with {status}");
            }
            if Instant::now() > deadline {
                bail!(
                    "psp-node did not answer RPC at {url} with a finalized block within {} s \
                     (last error: {last_error})",
                    STARTUP_TIMEOUT.as_secs()
                );
            }
            match Chain::connect(&url).await {
                Ok(chain) => match chain.finalized_number().await {
                    Ok(n) if n >= 1 => return Ok(()),
                    Ok(n) => last_error = format!("finalized block is #{n}"),
                    Err(e) => last_error = e.to_string(),
                },
                Err(e) => last_error = e.to_string(),
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    /// The node's WebSocket RPC URL.
    pub fn url(&self) -> String {
        format!("ws://127.0.0.1:{}", self.rpc_port)
    }

    /// The node's log file.
    pub fn log_path(&self) -> &Path {
        &self.log_path
    }

    /// The last `lines` lines of the node's log.
    pub fn log_tail(&self, lines: usize) -> String {
        read_tail(&self.log_path, lines)
    }
}

fn read_tail(path: &Path, lines: usize) -> String {
    let Ok(mut file) = File::open(path) else {
        return format!("(cannot open {})", path.display());
    };
    // The tail is all we want; 256 KiB covers many lines of Substrate output.
    let len = file.metadata().map(|m| m.len()).unwrap_or(0);
    let _ = file.seek(SeekFrom::Start(len.saturating_sub(256 * 1024)));
    let mut text = String::new();
    let mut bytes = Vec::new();
    if file.read_to_end(&mut bytes).is_ok() {
        text = String::from_utf8_lossy(&bytes).into_owned();
    }
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

impl Drop for DevNode {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "--- last {LOG_TAIL_LINES} lines of the psp-node log ({}) ---\n{}",
                self.log_path.display(),
                self.log_tail(LOG_TAIL_LINES)
            );
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn free_ports_are_nonzero() {
        assert_ne!(free_port().unwrap(), 0);
    }

    #[test]
    fn tail_keeps_the_last_lines() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log");
        std::fs::write(&path, "a\nb\nc\nd\n").unwrap();
        assert_eq!(read_tail(&path, 2), "c\nd");
        assert_eq!(read_tail(&path, 10), "a\nb\nc\nd");
    }
}
