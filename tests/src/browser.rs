//! Headless Chromium for the watch page's end-to-end tests, and the server the page reports to.
//!
//! [`Browser::open`] runs `$PSP_CHROMIUM`, else `/usr/bin/chromium` (`scripts/setup.sh`
//! installs Debian's `chromium`), headless with a fresh profile, on one URL; the process is
//! killed when the `Browser` is dropped. A missing browser is a test failure saying how to
//! install it, never a skip.
//!
//! The watch page, opened with `#key=<hex>&report=<URL>`, POSTs `window.pspWatch` as JSON to
//! that URL once a second: [`ReportServer::bind`] is that URL, a tiny HTTP server on loopback
//! handing every report to a channel ([`next_report`] waits for one that satisfies a test).

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{bail, ensure, Context, Result};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

/// Where Chromium is looked for when `$PSP_CHROMIUM` is not set.
pub const CHROMIUM: &str = "/usr/bin/chromium";
/// Largest report body accepted: `window.pspWatch` is a few hundred bytes.
pub const MAX_REPORT_BYTES: usize = 64 * 1024;
/// Largest request head accepted.
const MAX_HEAD_BYTES: usize = 8 * 1024;
/// Reports queued for the test; more are dropped (the page sends one a second).
const REPORT_QUEUE: usize = 256;
/// Time for one report request.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// The Chromium binary: `$PSP_CHROMIUM`, else [`CHROMIUM`].
pub fn chromium_binary() -> Result<PathBuf> {
    let path = std::env::var_os("PSP_CHROMIUM")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(CHROMIUM));
    if !path.exists() {
        bail!(
            "no Chromium at {}: install it with `apt-get install -y chromium` (scripts/setup.sh \
             does), or point PSP_CHROMIUM at a Chromium or Chrome binary",
            path.display()
        );
    }
    Ok(path)
}

/// The switches every headless Chromium here runs with.
const HEADLESS: [&str; 10] = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    // Keep the page's timers running at full speed while nobody looks at it.
    "--disable-background-timer-throttling",
    "--disable-renderer-backgrounding",
];

/// Loads `url` in a one-shot headless Chromium and returns the DOM after `budget` of virtual
/// time (Chromium does not advance it while fetches are pending, so the page's requests
/// complete), with `extra` switches (e.g. `--screenshot=<file>` and `--window-size=W,H`).
pub async fn dump_dom(url: &str, budget: Duration, extra: &[&str]) -> Result<String> {
    let binary = chromium_binary()?;
    let profile = tempfile::tempdir().context("creating a Chromium profile directory")?;
    let output = tokio::process::Command::new(&binary)
        .args(HEADLESS)
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg(format!("--virtual-time-budget={}", budget.as_millis()))
        .arg("--dump-dom")
        .args(extra)
        .arg(url)
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(budget + Duration::from_secs(60), output)
        .await
        .context("Chromium did not finish loading the page")?
        .with_context(|| format!("running {}", binary.display()))?;
    ensure!(
        output.status.success(),
        "Chromium failed on {url}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

/// A headless Chromium showing one page; killed on drop.
pub struct Browser {
    child: Child,
    profile: tempfile::TempDir,
}

impl Browser {
    /// Opens `url` in a fresh headless Chromium.
    pub fn open(url: &str) -> Result<Browser> {
        Self::open_with(url, &[])
    }

    /// [`Browser::open`] with extra command-line switches, e.g.
    /// `--unsafely-treat-insecure-origin-as-secure=http://10.0.0.2:30445` so that WebCrypto
    /// works on a page served over plain HTTP from a non-loopback address.
    pub fn open_with(url: &str, extra: &[&str]) -> Result<Browser> {
        let binary = chromium_binary()?;
        let profile = tempfile::tempdir().context("creating a Chromium profile directory")?;
        let log = std::fs::File::create(profile.path().join("chromium.log"))
            .context("creating the Chromium log")?;
        let child = Command::new(&binary)
            .args(HEADLESS)
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .args(extra)
            .arg(url)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .with_context(|| format!("starting {}", binary.display()))?;
        Ok(Browser { child, profile })
    }

    /// The last `lines` lines of Chromium's stderr (for failure messages).
    pub fn log_tail(&self, lines: usize) -> String {
        let text =
            std::fs::read_to_string(self.profile.path().join("chromium.log")).unwrap_or_default();
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }

    /// Whether the browser process is still running.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The HTTP endpoint the watch page reports to.
pub struct ReportServer;

impl ReportServer {
    /// Binds a loopback port; returns its URL (`http://127.0.0.1:<port>/report`) and the
    /// reports, parsed as JSON. Any path and method is accepted; POST bodies up to
    /// [`MAX_REPORT_BYTES`] that parse as JSON are reports; every answer is `204` with
    /// `Access-Control-Allow-Origin: *`. The server stops when the receiver is dropped.
    pub async fn bind() -> Result<(String, mpsc::Receiver<Value>)> {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .context("binding the report server")?;
        let url = format!("http://{}/report", listener.local_addr()?);
        let (tx, rx) = mpsc::channel(REPORT_QUEUE);
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    accepted = listener.accept() => {
                        let Ok((tcp, _)) = accepted else { return };
                        let tx = tx.clone();
                        tokio::spawn(async move {
                            if let Ok(Some(report)) =
                                tokio::time::timeout(REQUEST_TIMEOUT, serve(tcp)).await
                            {
                                // A full queue drops the report: the page sends another.
                                let _ = tx.try_send(report);
                            }
                        });
                    }
                    _ = tx.closed() => return,
                }
            }
        });
        Ok((url, rx))
    }
}

/// Answers one request; the report it carried, if any.
async fn serve(mut tcp: TcpStream) -> Option<Value> {
    let mut buf = Vec::new();
    let head_end = loop {
        if let Some(at) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
        if buf.len() > MAX_HEAD_BYTES {
            return None;
        }
        let mut chunk = [0u8; 2048];
        let n = tcp.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_ascii_lowercase();
    let len = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse::<usize>().ok())
        .unwrap_or(0);
    let too_large = len > MAX_REPORT_BYTES;
    let mut body = buf.split_off(head_end);
    while !too_large && body.len() < len {
        let mut chunk = vec![0u8; (len - body.len()).min(16 * 1024)];
        let n = tcp.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        body.extend_from_slice(&chunk[..n]);
    }
    let status = if too_large {
        "413 Content Too Large"
    } else {
        "204 No Content"
    };
    let response = format!(
        "HTTP/1.1 {status}\r\nAccess-Control-Allow-Origin: *\r\n\
         Access-Control-Allow-Methods: POST, OPTIONS\r\nAccess-Control-Allow-Headers: *\r\n\
         Content-Length: 0\r\nConnection: close\r\n\r\n"
    );
    let _ = tcp.write_all(response.as_bytes()).await;
    let _ = tcp.shutdown().await;
    if too_large || !head.starts_with("post ") {
        return None;
    }
    serde_json::from_slice(&body[..len.min(body.len())]).ok()
}

/// Waits up to `timeout` for a report that `accept` takes; fails with the last report seen.
pub async fn next_report(
    reports: &mut mpsc::Receiver<Value>,
    timeout: Duration,
    mut accept: impl FnMut(&Value) -> bool,
) -> Result<Value> {
    let deadline = tokio::time::Instant::now() + timeout;
    let mut last = None;
    loop {
        match tokio::time::timeout_at(deadline, reports.recv()).await {
            Ok(Some(report)) if accept(&report) => return Ok(report),
            Ok(Some(report)) => last = Some(report),
            Ok(None) => bail!("the report server stopped; last report: {last:?}"),
            Err(_) => bail!("no matching report within {timeout:?}; last report: {last:?}"),
        }
    }
}

/// `text` percent-encoded for a URL fragment or query value.
pub fn percent_encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests;
