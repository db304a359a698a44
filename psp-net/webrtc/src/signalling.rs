//! WHIP- and WHEP-shaped signalling and the watch page, on a plain tokio `TcpListener`.
//!
//! Routes:
//! - `POST /whep/<stream-id>`, body an SDP offer (`application/sdp`) → `201 Created`, body the
//!   SDP answer, `Location: /whep/<stream-id>/<peer>`: a consumer. Simplified WHEP
//!   (draft-ietf-wish-whep): no trickle (`PATCH`), no `DELETE` (the peer closes its DTLS
//!   session instead), no ETag.
//! - `POST /whip/<stream-id>`, the same exchange (`Location: /whip/<stream-id>/<peer>`): a
//!   publisher (simplified WHIP, RFC 9725, with the same simplifications).
//!   The [`StreamDirectory`] decides from the request's headers and offer whether the peer may
//!   publish ([`StreamDirectory::admit`]); without an implementation every ingest is 404.
//! - `GET /watch/<stream-id>` → the watch page (`static/watch.html`).
//! - Producer commands, answered by [`StreamDirectory::command`] (`200 OK`, a text body):
//!   `POST /nodes/<stream-id>` (`text/plain` body, at most [`MAX_COMMAND_BODY`] bytes:
//!   distribution nodes to add, one per line) and `DELETE /whip/<stream-id>` (end the
//!   stream). Without an implementation both are 404.
//!
//! Statuses: 400 malformed request, offer or stream id; 401/403/409 refused by the directory
//! (its reason in the body); 404 unknown route or a stream this node does not serve; 405 wrong
//! method; 408 request not read within the timeout; 411 no Content-Length; 413 head or body
//! too large; 415 not `application/sdp`; 501 Transfer-Encoding; 503 the server is full or
//! stopped.

use std::sync::Arc;
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;

use crate::http::{self, HttpError, Limits};
use crate::{Error, PeerId, PeerLabel, WebRtcServer};

/// The watch page served at `GET /watch/<stream-id>`.
pub const WATCH_PAGE: &str = include_str!("../static/watch.html");

/// Longest stream id accepted in a path.
pub const MAX_STREAM_ID: usize = 128;

/// Which side of a stream a signalling request is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Route {
    /// `POST /whip/<stream-id>`: a publisher (ingest).
    Whip,
    /// `POST /whep/<stream-id>`: a consumer.
    Whep,
    /// `POST /nodes/<stream-id>`: the producer supplies distribution nodes (a command).
    Nodes,
    /// `DELETE /whip/<stream-id>`: the producer ends the stream (a command).
    End,
}

impl Route {
    /// The path segment: `whip` or `whep`.
    pub fn as_str(self) -> &'static str {
        match self {
            Route::Whip | Route::End => "whip",
            Route::Whep => "whep",
            Route::Nodes => "nodes",
        }
    }

    /// The request method: `DELETE` to end a stream, `POST` otherwise.
    pub fn method(self) -> &'static str {
        match self {
            Route::End => "DELETE",
            _ => "POST",
        }
    }

    /// Whether the request offers a WebRTC connection (WHIP or WHEP), rather than a command.
    pub fn is_offer(self) -> bool {
        matches!(self, Route::Whip | Route::Whep)
    }
}

/// Largest body of a command ([`Route::Nodes`]): 32 node ids of 66 characters and newlines.
pub const MAX_COMMAND_BODY: usize = 4 * 1024;

/// A WHIP or WHEP request as the directory sees it, body read in full.
#[derive(Debug)]
pub struct SignallingRequest<'a> {
    /// The route.
    pub route: Route,
    /// The stream id from the path (checked by [`valid_stream_id`]).
    pub stream_id: &'a str,
    /// The headers, in order, names as sent.
    pub headers: &'a [(String, String)],
    /// The body: the SDP offer, or a command's text.
    pub body: &'a [u8],
}

impl SignallingRequest<'_> {
    /// The value of header `name` (case-insensitive); the first one if repeated.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The request as text: `POST /<route>/<id>` (or `DELETE`), the headers and the body, in
    /// the order received (what a test observer records).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = format!(
            "{} /{}/{} HTTP/1.1\r\n",
            self.route.method(),
            self.route.as_str(),
            self.stream_id
        );
        for (name, value) in self.headers {
            out.push_str(name);
            out.push_str(": ");
            out.push_str(value);
            out.push_str("\r\n");
        }
        out.push_str("\r\n");
        let mut out = out.into_bytes();
        out.extend_from_slice(self.body);
        out
    }
}

/// Why the directory refused a request: the HTTP status and a reason sent in the body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refusal {
    /// One of 400, 401, 403, 404, 409, 503 (others are sent as 400).
    pub status: u16,
    /// What is wrong, for the requester (sent as the body).
    pub reason: String,
}

impl Refusal {
    /// 400: the credentials are malformed.
    pub fn bad_request(reason: impl Into<String>) -> Self {
        Self::new(400, reason)
    }
    /// 401: missing or wrong credentials (publish token, fan-out signature).
    pub fn unauthorized(reason: impl Into<String>) -> Self {
        Self::new(401, reason)
    }
    /// 403: valid credentials that do not allow this here.
    pub fn forbidden(reason: impl Into<String>) -> Self {
        Self::new(403, reason)
    }
    /// 404: the stream is not known or not served here.
    pub fn not_found(reason: impl Into<String>) -> Self {
        Self::new(404, reason)
    }
    /// 409: the stream already has its publisher.
    pub fn conflict(reason: impl Into<String>) -> Self {
        Self::new(409, reason)
    }
    /// 503: a bound is reached (streams, consumers).
    pub fn unavailable(reason: impl Into<String>) -> Self {
        Self::new(503, reason)
    }

    fn new(status: u16, reason: impl Into<String>) -> Self {
        Self {
            status,
            reason: reason.into(),
        }
    }

    fn response(&self) -> Vec<u8> {
        let status_text = match self.status {
            401 => "Unauthorized",
            403 => "Forbidden",
            404 => "Not Found",
            409 => "Conflict",
            503 => "Service Unavailable",
            _ => "Bad Request",
        };
        let status = match self.status {
            401 | 403 | 404 | 409 | 503 => self.status,
            _ => 400,
        };
        plain(status, status_text, &self.reason)
    }
}

/// Decides which streams this node serves, and who may publish or watch. Any
/// `Fn(&str) -> bool` is one that serves consumers of the streams it accepts and takes no
/// ingest.
///
/// For each WHIP/WHEP request the endpoint calls [`Self::observe`], then [`Self::admit`];
/// if admitted and the server accepts the offer, [`Self::accepted`] with the new peer (before
/// the answer is sent, so before the peer can connect), otherwise [`Self::failed`].
pub trait StreamDirectory: Send + Sync + 'static {
    /// Whether `stream_id` is served to consumers here now; `false` answers 404.
    fn serves(&self, stream_id: &str) -> bool;

    /// Whether the request may go on to the WebRTC server. By default consumers of the
    /// streams [`Self::serves`] are admitted and publishers never are (404).
    fn admit(&self, request: &SignallingRequest<'_>) -> Result<(), Refusal> {
        match request.route {
            Route::Whep if self.serves(request.stream_id) => Ok(()),
            Route::Whep => Err(Refusal::not_found("stream not served here")),
            Route::Whip => Err(Refusal::not_found("this node takes no ingest")),
            Route::Nodes | Route::End => Err(Refusal::not_found("this node lands no stream")),
        }
    }

    /// Runs a producer's command ([`Route::Nodes`], [`Route::End`]); the text answered with
    /// `200 OK`. By default there are none (404).
    fn command(&self, _request: &SignallingRequest<'_>) -> Result<String, Refusal> {
        Err(Refusal::not_found("this node lands no stream"))
    }

    /// An admitted request became `peer`.
    fn accepted(&self, _request: &SignallingRequest<'_>, _peer: PeerId) {}

    /// An admitted request's offer was refused by the server (what [`Self::admit`] reserved
    /// can be released).
    fn failed(&self, _request: &SignallingRequest<'_>) {}

    /// Sees every WHIP/WHEP request whose body was read, before admission (test observers).
    fn observe(&self, _request: &SignallingRequest<'_>) {}
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
    let (route, stream_id) = if let Some(id) = path.strip_prefix("/whep/") {
        ("whep", id)
    } else if let Some(id) = path.strip_prefix("/nodes/") {
        ("nodes", id)
    } else if let Some(id) = path.strip_prefix("/whip/") {
        ("whip", id)
    } else if let Some(id) = path.strip_prefix("/watch/") {
        ("watch", id)
    } else {
        return Some(plain(404, "Not Found", "no such route"));
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
                        // The page talks to this node only, and may post its counts
                        // (never the key) to a loopback `#report=` URL (the tests' hook).
                        "default-src 'none'; script-src 'unsafe-inline'; \
                         style-src 'unsafe-inline'; connect-src 'self' \
                         http://127.0.0.1:* http://localhost:*",
                    ),
                ],
                WATCH_PAGE.as_bytes(),
            )
        } else {
            plain(404, "Not Found", "stream not served here")
        }),
        ("whep", "POST") => Some(
            offer(
                stream,
                &head,
                rest,
                Route::Whep,
                stream_id,
                server,
                directory,
                &limits,
            )
            .await,
        ),
        ("whip", "POST") => Some(
            offer(
                stream,
                &head,
                rest,
                Route::Whip,
                stream_id,
                server,
                directory,
                &limits,
            )
            .await,
        ),
        ("nodes", "POST") => {
            Some(command(stream, &head, rest, Route::Nodes, stream_id, directory).await)
        }
        ("whip", "DELETE") => {
            Some(command(stream, &head, rest, Route::End, stream_id, directory).await)
        }
        ("watch", _) => Some(not_allowed("GET")),
        ("whip", _) => Some(not_allowed("POST, DELETE")),
        _ => Some(not_allowed("POST")),
    }
}

/// The request as the directory sees it, once shown to its observer.
fn observed<'a>(
    directory: &dyn StreamDirectory,
    route: Route,
    stream_id: &'a str,
    head: &'a http::Head,
    body: &'a [u8],
) -> SignallingRequest<'a> {
    let request = SignallingRequest {
        route,
        stream_id,
        headers: &head.headers,
        body,
    };
    directory.observe(&request);
    request
}

/// A producer's command: reads its (small) body and asks the directory.
async fn command(
    stream: &mut TcpStream,
    head: &http::Head,
    rest: Vec<u8>,
    route: Route,
    stream_id: &str,
    directory: &dyn StreamDirectory,
) -> Vec<u8> {
    if head.header("transfer-encoding").is_some() {
        return plain(501, "Not Implemented", "Transfer-Encoding is not supported");
    }
    let len = match head.content_length() {
        Ok(len) => len.unwrap_or(0),
        Err(e) => return http_error(e).unwrap_or_default(),
    };
    let limits = Limits {
        max_head: 0,
        max_headers: 0,
        max_body: MAX_COMMAND_BODY,
    };
    if len > MAX_COMMAND_BODY {
        return plain(413, "Content Too Large", "command body too large");
    }
    let body = match http::read_body(stream, rest, len, &limits).await {
        Ok(body) => body,
        Err(e) => return http_error(e).unwrap_or_default(),
    };
    let request = observed(directory, route, stream_id, head, &body);
    match directory.command(&request) {
        Ok(text) => plain(200, "OK", &text),
        Err(refusal) => refusal.response(),
    }
}

/// A WHIP or WHEP offer: checks the request, reads the body, asks the directory, then the
/// server.
#[allow(clippy::too_many_arguments)]
async fn offer(
    stream: &mut TcpStream,
    head: &http::Head,
    rest: Vec<u8>,
    route: Route,
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
    // A consumer of a stream not served here is refused before its body is read (the
    // common mistake costs no reading); an ingest needs the body for its signature.
    if route == Route::Whep && !directory.serves(stream_id) {
        return plain(404, "Not Found", "stream not served here");
    }
    let body = match http::read_body(stream, rest, len, limits).await {
        Ok(body) => body,
        Err(e) => return http_error(e).unwrap_or_default(),
    };
    let request = observed(directory, route, stream_id, head, &body);
    let Ok(offer) = std::str::from_utf8(&body) else {
        return plain(400, "Bad Request", "SDP offer is not UTF-8");
    };
    if let Err(refusal) = directory.admit(&request) {
        return refusal.response();
    }
    match server
        .accept_offer(offer.to_owned(), PeerLabel(stream_id.to_owned()))
        .await
    {
        Ok((peer, answer)) => {
            directory.accepted(&request, peer);
            let location = format!("/{}/{stream_id}/{}", route.as_str(), peer.0);
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
        Err(e) => {
            directory.failed(&request);
            match e {
                Error::OfferTooLarge { .. } => plain(413, "Content Too Large", &e.to_string()),
                Error::MalformedOffer(_) | Error::NoDataChannel => {
                    plain(400, "Bad Request", &e.to_string())
                }
                Error::TooManyPeers { .. } | Error::ServerStopped => {
                    plain(503, "Service Unavailable", &e.to_string())
                }
                e => {
                    tracing::warn!("accepting an offer: {e}");
                    plain(500, "Internal Server Error", "internal error")
                }
            }
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
