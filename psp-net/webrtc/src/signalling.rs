//! WHEP-shaped signalling and the watch page, on a plain tokio `TcpListener`.
//!
//! Routes:
//! - `POST /whep/<stream-id>`, body an SDP offer (`application/sdp`) → `201 Created`, body the
//!   SDP answer, `Location: /whep/<stream-id>/<peer>`. Simplified WHEP (RFC 9725): no trickle
//!   (`PATCH`), no `DELETE` (the peer closes its DTLS session instead), no ETag.
//! - `GET /watch/<stream-id>` → the watch page (`static/watch.html`).
//!
//! Statuses: 400 malformed request, offer or stream id; 404 unknown route or a stream this
//! node does not serve; 405 wrong method; 408 request not read within the timeout; 411 no
//! Content-Length; 413 head or body too large; 415 not `application/sdp`; 501
//! Transfer-Encoding; 503 the server is full or stopped.

use std::sync::Arc;
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;

use crate::http::{self, HttpError, Limits};
use crate::{Error, PeerLabel, WebRtcServer};

/// The watch page served at `GET /watch/<stream-id>`.
pub const WATCH_PAGE: &str = include_str!("../static/watch.html");

/// Longest stream id accepted in a path.
pub const MAX_STREAM_ID: usize = 128;

/// Decides which streams this node serves to consumers.
pub trait StreamDirectory: Send + Sync + 'static {
    /// Whether `stream_id` is served here now; `false` answers 404.
    fn serves(&self, stream_id: &str) -> bool;
}

impl<F: Fn(&str) -> bool + Send + Sync + 'static> StreamDirectory for F {
    fn serves(&self, stream_id: &str) -> bool {
        self(stream_id)
    }
}

/// Bounds on the signalling endpoint.
#[derive(Clone, Debug)]
pub struct SignallingConfig {
    /// Largest request body (the SDP offer); also bounded by [`crate::ServerConfig`].
    pub max_body_bytes: usize,
    /// Largest request line plus headers.
    pub max_head_bytes: usize,
    /// Most headers in one request.
    pub max_headers: usize,
    /// Time to read a whole request; a slower client gets 408 and the connection closes.
    pub read_timeout: Duration,
    /// Connections handled at once; more are closed unanswered.
    pub max_connections: usize,
}

impl Default for SignallingConfig {
    fn default() -> Self {
        SignallingConfig {
            max_body_bytes: 64 * 1024,
            max_head_bytes: 8 * 1024,
            max_headers: 32,
            read_timeout: Duration::from_secs(10),
            max_connections: 64,
        }
    }
}

/// Serves signalling on `listener` until accepting fails.
pub async fn serve(
    listener: TcpListener,
    server: WebRtcServer,
    directory: Arc<dyn StreamDirectory>,
    config: SignallingConfig,
) -> std::io::Result<()> {
    let permits = Arc::new(Semaphore::new(config.max_connections));
    let config = Arc::new(config);
    loop {
        let (stream, remote) = match listener.accept().await {
            Ok(accepted) => accepted,
            // Out of file descriptors or a connection reset before accept: keep serving.
            Err(e) if is_per_connection(&e) => {
                tracing::debug!("signalling accept: {e}");
                continue;
            }
            Err(e) => return Err(e),
        };
        let Ok(permit) = permits.clone().try_acquire_owned() else {
            tracing::debug!(%remote, "signalling: too many connections; closing");
            continue;
        };
        let (server, directory, config) = (server.clone(), directory.clone(), config.clone());
        tokio::spawn(async move {
            handle(stream, &server, &*directory, &config).await;
            drop(permit);
        });
    }
}

fn is_per_connection(e: &std::io::Error) -> bool {
    use std::io::ErrorKind::*;
    matches!(e.kind(), ConnectionAborted | ConnectionReset | Interrupted)
        || e.raw_os_error() == Some(24)
}

async fn handle(
    mut stream: TcpStream,
    server: &WebRtcServer,
    directory: &dyn StreamDirectory,
    config: &SignallingConfig,
) {
    let reply = match tokio::time::timeout(
        config.read_timeout,
        respond(&mut stream, server, directory, config),
    )
    .await
    {
        Ok(Some(reply)) => reply,
        Ok(None) => return,
        Err(_) => plain(408, "Request Timeout", "request not read in time"),
    };
    let written = tokio::time::timeout(config.read_timeout, async {
        stream.write_all(&reply).await?;
        stream.shutdown().await
    })
    .await;
    if let Ok(Err(e)) = written {
        tracing::debug!("signalling write: {e}");
    }
}

/// Reads one request and computes the response; `None` when there is no one to answer.
async fn respond(
    stream: &mut TcpStream,
    server: &WebRtcServer,
    directory: &dyn StreamDirectory,
    config: &SignallingConfig,
) -> Option<Vec<u8>> {
    let limits = Limits {
        max_head: config.max_head_bytes,
        max_headers: config.max_headers,
        max_body: config.max_body_bytes,
    };
    let (head, rest) = match http::read_head(stream, &limits).await {
        Ok(read) => read,
        Err(e) => return http_error(e),
    };
    let mut start = head.start.split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (start.next(), start.next(), start.next(), start.next())
    else {
        return Some(plain(400, "Bad Request", "bad request line"));
    };
    if version != "HTTP/1.1" && version != "HTTP/1.0" {
        return Some(plain(400, "Bad Request", "only HTTP/1.x is served"));
    }
    let path = target.split(['?', '#']).next().unwrap_or_default();
    let (route, stream_id) = match path.strip_prefix("/whep/") {
        Some(id) => ("whep", id),
        None => match path.strip_prefix("/watch/") {
            Some(id) => ("watch", id),
            None => return Some(plain(404, "Not Found", "no such route")),
        },
    };
    if !valid_stream_id(stream_id) {
        return Some(plain(400, "Bad Request", "bad stream id"));
    }
    match (route, method) {
        ("watch", "GET") => Some(if directory.serves(stream_id) {
            http::response(
                200,
                "OK",
                &[
                    ("Content-Type", "text/html; charset=utf-8"),
                    ("Cache-Control", "no-store"),
                    ("Referrer-Policy", "no-referrer"),
                    (
                        "Content-Security-Policy",
                        "default-src 'none'; script-src 'unsafe-inline'; \
                         style-src 'unsafe-inline'; connect-src 'self'",
                    ),
                ],
                WATCH_PAGE.as_bytes(),
            )
        } else {
            plain(404, "Not Found", "stream not served here")
        }),
        ("whep", "POST") => {
            Some(whep(stream, &head, rest, stream_id, server, directory, &limits).await)
        }
        ("watch", _) => Some(not_allowed("GET")),
        _ => Some(not_allowed("POST")),
    }
}

async fn whep(
    stream: &mut TcpStream,
    head: &http::Head,
    rest: Vec<u8>,
    stream_id: &str,
    server: &WebRtcServer,
    directory: &dyn StreamDirectory,
    limits: &Limits,
) -> Vec<u8> {
    if head.header("transfer-encoding").is_some() {
        return plain(501, "Not Implemented", "Transfer-Encoding is not supported");
    }
    let is_sdp = head.header("content-type").is_some_and(|v| {
        v.split(';')
            .next()
            .is_some_and(|t| t.trim().eq_ignore_ascii_case("application/sdp"))
    });
    if !is_sdp {
        return plain(
            415,
            "Unsupported Media Type",
            "Content-Type must be application/sdp",
        );
    }
    let len = match head.content_length() {
        Ok(Some(len)) => len,
        Ok(None) => return plain(411, "Length Required", "Content-Length is required"),
        Err(e) => return http_error(e).unwrap_or_default(),
    };
    if len > limits.max_body {
        return plain(413, "Content Too Large", "SDP offer too large");
    }
    if !directory.serves(stream_id) {
        return plain(404, "Not Found", "stream not served here");
    }
    let body = match http::read_body(stream, rest, len, limits).await {
        Ok(body) => body,
        Err(e) => return http_error(e).unwrap_or_default(),
    };
    let Ok(offer) = String::from_utf8(body) else {
        return plain(400, "Bad Request", "SDP offer is not UTF-8");
    };
    match server
        .accept_offer(offer, PeerLabel(stream_id.to_owned()))
        .await
    {
        Ok((peer, answer)) => {
            let location = format!("/whep/{stream_id}/{}", peer.0);
            http::response(
                201,
                "Created",
                &[
                    ("Content-Type", "application/sdp"),
                    ("Location", &location),
                    ("Cache-Control", "no-store"),
                ],
                answer.as_bytes(),
            )
        }
        Err(e @ Error::OfferTooLarge { .. }) => plain(413, "Content Too Large", &e.to_string()),
        Err(e @ (Error::MalformedOffer(_) | Error::NoDataChannel)) => {
            plain(400, "Bad Request", &e.to_string())
        }
        Err(e @ (Error::TooManyPeers { .. } | Error::ServerStopped)) => {
            plain(503, "Service Unavailable", &e.to_string())
        }
        Err(e) => {
            tracing::warn!("accepting an offer: {e}");
            plain(500, "Internal Server Error", "internal error")
        }
    }
}

fn http_error(e: HttpError) -> Option<Vec<u8>> {
    Some(match e {
        HttpError::HeadTooLarge => plain(413, "Content Too Large", "request head too large"),
        HttpError::BodyTooLarge => plain(413, "Content Too Large", "body too large"),
        HttpError::Malformed(reason) => plain(400, "Bad Request", reason),
        HttpError::Eof | HttpError::Io(_) => return None,
    })
}

fn plain(status: u16, reason: &str, body: &str) -> Vec<u8> {
    http::response(
        status,
        reason,
        &[("Content-Type", "text/plain; charset=utf-8")],
        format!("{body}\n").as_bytes(),
    )
}

fn not_allowed(allow: &str) -> Vec<u8> {
    http::response(
        405,
        "Method Not Allowed",
        &[
            ("Allow", allow),
            ("Content-Type", "text/plain; charset=utf-8"),
        ],
        b"method not allowed\n",
    )
}

/// Stream ids are RFC 3986 unreserved characters only, so they need no decoding or escaping.
pub fn valid_stream_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= MAX_STREAM_ID
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_ids() {
        assert!(valid_stream_id("a1-B_2.c~"));
        for bad in ["", "a/b", "a%20b", "é", &"x".repeat(MAX_STREAM_ID + 1)] {
            assert!(!valid_stream_id(bad), "{bad:?}");
        }
    }

    #[test]
    fn watch_page_has_its_hooks() {
        for needle in [
            "pspWatch",
            "createDataChannel(\"media\")",
            "/whep/",
            "decrypt(",
            "#key=",
        ] {
            assert!(WATCH_PAGE.contains(needle), "{needle}");
        }
    }
}
