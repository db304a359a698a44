//! The operator's status page (issue 17, point 6): a small read-only web page on
//! `--status-port`, bound to 127.0.0.1 only.
//!
//! - `GET /`: the page (`status.html`, embedded). Every five seconds its script reads the
//!   node's JSON-RPC through `/rpc` and the history from `/history.json`: the node's identity
//!   and roles, its owner's stake and its rewards, the current directory (nodes, flags,
//!   signatures), and open circuits and refusals over the last hour as a chart.
//! - `POST /rpc`: one JSON-RPC request, forwarded to the node's RPC server on loopback if its
//!   method is one of [`READ_METHODS`] (read-only, safe), refused with 403 otherwise. Same
//!   origin as the page, so the RPC's CORS settings do not matter, and no other web page can
//!   read the answers (no CORS headers are sent).
//! - `GET /history.json`: one [`Sample`] every [`SAMPLE_EVERY`], the last [`HISTORY_LEN`].
//! - anything else: 404, or 405 for another method; a request over [`MAX_REQUEST`] bytes or
//!   slower than [`READ_TIMEOUT`] is dropped; at most [`MAX_CONNECTIONS`] at once.
//!
//! Refusals are counted from the overlay's events ([`StatusPage::record`]): links refused,
//! CREATEs and EXTENDs refused. Nothing here changes the node's state.

use std::collections::VecDeque;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use psp_net::circuit::RelayEvent;
use psp_net::driver::{NodeEvent, NodeHandle};
use serde::Serialize;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;

/// How often the history takes a sample.
pub const SAMPLE_EVERY: Duration = Duration::from_secs(5);
/// Samples kept: one hour.
pub const HISTORY_LEN: usize = 720;
/// Longest request read, head and body.
pub const MAX_REQUEST: usize = 8 * 1024;
/// Longest RPC answer passed back.
pub const MAX_RPC_ANSWER: usize = 4 * 1024 * 1024;
/// The only methods `/rpc` forwards.
pub const READ_METHODS: [&str; 6] = [
    "psp_overlayInfo",
    "psp_stakingCandidate",
    "psp_stakingElected",
    "psp_stakingLedger",
    "psp_rewardsRelay",
    "psp_directory",
];
/// Time to send the request head.
pub const READ_TIMEOUT: Duration = Duration::from_secs(5);
/// Connections served at once.
pub const MAX_CONNECTIONS: usize = 16;

/// The page.
const PAGE: &str = include_str!("status.html");

/// One point of the chart.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Sample {
    /// Unix milliseconds.
    pub time_ms: u64,
    /// Usable links.
    pub links: u64,
    /// Circuits open through this node.
    pub circuits: u64,
    /// Refusals since the node started: links, CREATEs and EXTENDs.
    pub refusals: u64,
}

/// The page's state: refusal counters and the sampled history.
#[derive(Default)]
pub struct StatusPage {
    refusals: AtomicU64,
    history: Mutex<VecDeque<Sample>>,
}

impl StatusPage {
    /// Counts `event` if it is a refusal.
    pub fn record(&self, event: &NodeEvent) {
        let refused = matches!(
            event,
            NodeEvent::LinkRefused { .. }
                | NodeEvent::Relay(RelayEvent::CreateRefused { .. })
                | NodeEvent::Relay(RelayEvent::ExtendRefused { .. })
        );
        if refused {
            self.refusals.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Appends a sample, forgetting the oldest beyond [`HISTORY_LEN`].
    fn push(&self, sample: Sample) {
        let mut history = self.history.lock().unwrap_or_else(|e| e.into_inner());
        if history.len() == HISTORY_LEN {
            history.pop_front();
        }
        history.push_back(sample);
    }

    /// The history as JSON.
    fn history_json(&self) -> String {
        let history = self.history.lock().unwrap_or_else(|e| e.into_inner());
        let samples: Vec<&Sample> = history.iter().collect();
        serde_json::to_string(&samples).unwrap_or_else(|_| "[]".into())
    }

    /// Samples the driver's counts every [`SAMPLE_EVERY`] until the node stops.
    pub async fn sample(self: Arc<Self>, handle: NodeHandle) {
        let mut tick = tokio::time::interval(SAMPLE_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let Ok(stats) = handle.stats().await else {
                return;
            };
            self.push(Sample {
                time_ms: now_ms(),
                links: stats.links as u64,
                circuits: stats.circuits as u64,
                refusals: self.refusals.load(Ordering::Relaxed),
            });
        }
    }

    /// Serves the page on 127.0.0.1:`port`, forwarding its RPC reads to 127.0.0.1:`rpc_port`.
    /// Logs and returns if the port cannot be bound.
    pub async fn serve(self: Arc<Self>, port: u16, rpc_port: u16) {
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
        let listener = match TcpListener::bind(addr).await {
            Ok(listener) => listener,
            Err(e) => {
                log::error!(target: "psp-status", "status page not served: binding {addr}: {e}");
                return;
            }
        };
        log::info!(target: "psp-status", "status page at http://{addr}/ (reading RPC on port {rpc_port})");
        let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let Ok(slot) = slots.clone().try_acquire_owned() else {
                log::debug!(target: "psp-status", "connection dropped: {MAX_CONNECTIONS} already open");
                continue;
            };
            let this = self.clone();
            tokio::spawn(async move {
                if let Err(e) = this.answer(stream, rpc_port).await {
                    log::debug!(target: "psp-status", "request not answered: {e}");
                }
                drop(slot);
            });
        }
    }

    async fn answer(&self, mut stream: TcpStream, rpc_port: u16) -> std::io::Result<()> {
        let (head, body) = tokio::time::timeout(READ_TIMEOUT, read_request(&mut stream))
            .await
            .map_err(|_| io_error(std::io::ErrorKind::TimedOut, "slow request"))??;
        let (status, kind, body) = match route(&head) {
            Route::Page => ("200 OK", "text/html; charset=utf-8", PAGE.to_string()),
            Route::History => ("200 OK", "application/json", self.history_json()),
            Route::Rpc => match read_method(&body) {
                Some(method) if READ_METHODS.contains(&method.as_str()) => {
                    match tokio::time::timeout(READ_TIMEOUT, forward(rpc_port, &body)).await {
                        Ok(Ok(answer)) => ("200 OK", "application/json", answer),
                        Ok(Err(e)) => ("502 Bad Gateway", "text/plain", format!("node RPC: {e}\n")),
                        Err(_) => (
                            "504 Gateway Timeout",
                            "text/plain",
                            "node RPC: no answer\n".into(),
                        ),
                    }
                }
                Some(method) => (
                    "403 Forbidden",
                    "text/plain",
                    format!("{method} is not a status read\n"),
                ),
                None => (
                    "400 Bad Request",
                    "text/plain",
                    "not a JSON-RPC request\n".into(),
                ),
            },
            Route::NotFound => ("404 Not Found", "text/plain", "not found\n".into()),
            Route::NotAllowed => (
                "405 Method Not Allowed",
                "text/plain",
                "read-only: GET only\n".into(),
            ),
        };
        let response = format!(
            "HTTP/1.1 {status}\r\nContent-Type: {kind}\r\nContent-Length: {}\r\n\
             Cache-Control: no-store\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        stream.write_all(response.as_bytes()).await?;
        stream.shutdown().await
    }
}

/// What a request asks for.
#[derive(Debug, PartialEq, Eq)]
enum Route {
    Page,
    History,
    Rpc,
    NotFound,
    NotAllowed,
}

/// Routes a request head by its first line.
fn route(head: &str) -> Route {
    let mut first = head.lines().next().unwrap_or_default().split(' ');
    let (method, path) = (
        first.next().unwrap_or_default(),
        first.next().unwrap_or_default(),
    );
    match (method, path.split('?').next().unwrap_or_default()) {
        ("GET", "/" | "/index.html") => Route::Page,
        ("GET", "/history.json") => Route::History,
        ("POST", "/rpc") => Route::Rpc,
        ("GET", _) => Route::NotFound,
        _ => Route::NotAllowed,
    }
}

fn io_error(kind: std::io::ErrorKind, what: impl Into<String>) -> std::io::Error {
    std::io::Error::new(kind, what.into())
}

/// Where the head ends (the blank line), if it has.
fn head_end(bytes: &[u8]) -> Option<usize> {
    bytes
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|at| at + 4)
}

/// The `Content-Length` of a request head, 0 without one.
fn content_length(head: &str) -> usize {
    head.lines()
        .filter_map(|line| line.split_once(':'))
        .find(|(name, _)| name.trim().eq_ignore_ascii_case("content-length"))
        .and_then(|(_, value)| value.trim().parse().ok())
        .unwrap_or(0)
}

/// Reads one request, at most [`MAX_REQUEST`] bytes: its head and its body.
async fn read_request<S: AsyncReadExt + Unpin>(
    stream: &mut S,
) -> std::io::Result<(String, Vec<u8>)> {
    let mut bytes = Vec::with_capacity(1024);
    let mut buf = [0u8; 1024];
    loop {
        if let Some(end) = head_end(&bytes) {
            let head = String::from_utf8_lossy(&bytes[..end]).into_owned();
            let wanted = end.saturating_add(content_length(&head));
            if wanted > MAX_REQUEST {
                return Err(io_error(
                    std::io::ErrorKind::InvalidData,
                    format!("request over {MAX_REQUEST} bytes"),
                ));
            }
            if bytes.len() >= wanted {
                let body = bytes[end..wanted].to_vec();
                return Ok((head, body));
            }
        } else if bytes.len() > MAX_REQUEST {
            return Err(io_error(
                std::io::ErrorKind::InvalidData,
                format!("request over {MAX_REQUEST} bytes"),
            ));
        }
        let n = stream.read(&mut buf).await?;
        if n == 0 {
            return Err(io_error(
                std::io::ErrorKind::UnexpectedEof,
                "request cut short",
            ));
        }
        bytes.extend_from_slice(&buf[..n]);
    }
}

/// The method of a JSON-RPC request body (a single call, not a batch).
fn read_method(body: &[u8]) -> Option<String> {
    let request: serde_json::Value = serde_json::from_slice(body).ok()?;
    request.get("method")?.as_str().map(str::to_owned)
}

/// Sends `body` to the node's RPC server at 127.0.0.1:`rpc_port` (HTTP/1.0, so the answer is
/// neither chunked nor kept alive) and returns the answer's body.
async fn forward(rpc_port: u16, body: &[u8]) -> std::io::Result<String> {
    let mut rpc = TcpStream::connect((Ipv4Addr::LOCALHOST, rpc_port)).await?;
    let head = format!(
        "POST / HTTP/1.0\r\nHost: 127.0.0.1:{rpc_port}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\n\r\n",
        body.len()
    );
    rpc.write_all(head.as_bytes()).await?;
    rpc.write_all(body).await?;
    let mut answer = Vec::new();
    (&mut rpc)
        .take(MAX_RPC_ANSWER as u64 + 1)
        .read_to_end(&mut answer)
        .await?;
    if answer.len() > MAX_RPC_ANSWER {
        return Err(io_error(std::io::ErrorKind::InvalidData, "answer too long"));
    }
    let end = head_end(&answer)
        .ok_or_else(|| io_error(std::io::ErrorKind::InvalidData, "no HTTP answer"))?;
    let status = String::from_utf8_lossy(&answer[..end]);
    if !status.starts_with("HTTP/1.0 200") && !status.starts_with("HTTP/1.1 200") {
        let line = status.lines().next().unwrap_or_default().to_owned();
        return Err(io_error(std::io::ErrorKind::Other, line));
    }
    Ok(String::from_utf8_lossy(&answer[end..]).into_owned())
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_page_history_and_rpc_reads_are_served() {
        assert_eq!(route("GET / HTTP/1.1\r\nHost: x\r\n\r\n"), Route::Page);
        assert_eq!(
            route("GET /history.json?t=1 HTTP/1.1\r\n\r\n"),
            Route::History
        );
        assert_eq!(route("POST /rpc HTTP/1.1\r\n\r\n"), Route::Rpc);
        assert_eq!(
            route("GET /../etc/passwd HTTP/1.1\r\n\r\n"),
            Route::NotFound
        );
        assert_eq!(route("POST / HTTP/1.1\r\n\r\n"), Route::NotAllowed);
        assert_eq!(route("DELETE /rpc HTTP/1.1\r\n\r\n"), Route::NotAllowed);
        assert_eq!(route(""), Route::NotAllowed);
        assert_eq!(route("\u{0}\u{1}garbage"), Route::NotAllowed);
    }

    #[tokio::test]
    async fn requests_are_read_whole_and_bounded() {
        let body = r#"{"jsonrpc":"2.0","id":1,"method":"psp_directory","params":[]}"#;
        let request = format!(
            "POST /rpc HTTP/1.1\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        let (head, read) = read_request(&mut request.as_bytes())
            .await
            .expect("request");
        assert!(head.starts_with("POST /rpc"));
        assert_eq!(read, body.as_bytes());
        assert_eq!(read_method(&read).as_deref(), Some("psp_directory"));
        assert_eq!(read_method(br#"[{"method":"x"}]"#), None);
        assert_eq!(read_method(b"\xff"), None);
        let huge = format!("POST /rpc HTTP/1.1\r\nContent-Length: {MAX_REQUEST}\r\n\r\n");
        assert!(read_request(&mut huge.as_bytes()).await.is_err());
        let endless = vec![b'a'; MAX_REQUEST + 10];
        assert!(read_request(&mut endless.as_slice()).await.is_err());
        assert!(read_request(&mut &b"GET / HTTP/1.1\r\n"[..]).await.is_err());
        // Nothing that signs or writes is forwarded.
        assert!(!READ_METHODS
            .iter()
            .any(|m| m.contains("Registration") || m.contains("Submit") || m.contains("Request")));
    }

    #[test]
    fn the_history_keeps_the_last_hour_and_counts_refusals() {
        let page = StatusPage::default();
        for i in 0..HISTORY_LEN as u64 + 5 {
            page.push(Sample {
                time_ms: i,
                ..Sample::default()
            });
        }
        let history: Vec<serde_json::Value> =
            serde_json::from_str(&page.history_json()).expect("json");
        assert_eq!(history.len(), HISTORY_LEN);
        assert_eq!(history[0]["timeMs"], 5);
        page.record(&NodeEvent::LinkRefused {
            peer_id: psp_net::driver::PeerId::random(),
            reason: String::new(),
        });
        assert_eq!(page.refusals.load(Ordering::Relaxed), 1);
    }
}
