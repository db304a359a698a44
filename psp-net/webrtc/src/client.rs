//! A WebRTC data-channel client (str0m), the Rust counterpart of the watch page: it offers a
//! channel `media`, posts the offer to a node's WHEP endpoint and receives the frames. `psp
//! stream watch` uses it; the tests use it to drive the server without a browser.

use std::collections::VecDeque;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::{Duration, Instant};

use str0m::change::SdpAnswer;
use str0m::channel::ChannelId;
use str0m::net::{Protocol, Receive};
use str0m::{Candidate, Event, IceConnectionState, Input, Output, Rtc};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpStream, UdpSocket};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use crate::http::{self, Limits};
use crate::signalling::{valid_stream_id, Route};
use crate::{Error, Result};

/// The label of the data channel the client (and the watch page) opens.
pub const CHANNEL_LABEL: &str = "media";

/// Bounds and timeouts of one client.
#[derive(Clone, Debug)]
pub struct ClientConfig {
    /// Time for the whole HTTP exchange with the signalling endpoint.
    pub http_timeout: Duration,
    /// Time from the answer to an open data channel.
    pub connect_timeout: Duration,
    /// Largest signalling response read (head plus SDP answer).
    pub max_answer_bytes: usize,
    /// Messages received and not yet taken by [`WebRtcClient::recv`]. When it is full the
    /// client stops driving the connection, so the server sees a stalled peer and drops it.
    pub receive_queue: usize,
    /// The signalling endpoint posted to, `<prefix>/<endpoint>/<stream-id>`: `whep` (the
    /// default) to watch, `whip` to publish ([`ClientConfig::publish`]).
    pub endpoint: &'static str,
    /// Extra request headers of the offer's POST, e.g. `("Authorization", "Bearer <token>")`
    /// to publish. Names and values may not contain CR or LF.
    pub headers: Vec<(String, String)>,
    /// Headers computed from the SDP offer's bytes, added after [`ClientConfig::headers`]:
    /// how a landing node signs its fan-out offer to a distribution node.
    pub offer_headers: Option<OfferHeaders>,
}

/// Computes request headers from the SDP offer's bytes (see [`ClientConfig::offer_headers`]).
#[derive(Clone)]
pub struct OfferHeaders(pub std::sync::Arc<HeadersOf>);

/// A function from the SDP offer's bytes to request headers.
pub type HeadersOf = dyn Fn(&[u8]) -> Vec<(String, String)> + Send + Sync;

impl std::fmt::Debug for OfferHeaders {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("OfferHeaders(..)")
    }
}

/// The endpoint a consumer posts its offer to (WHEP, draft-ietf-wish-whep).
const WHEP: &str = "whep";
/// The endpoint a producer posts its offer to (WHIP, RFC 9725).
const WHIP: &str = "whip";

impl ClientConfig {
    /// The default bounds, posting to `whip` with `Authorization: Bearer <token>`: how a
    /// producer publishes into a stream.
    pub fn publish(token: &str) -> Self {
        ClientConfig {
            endpoint: WHIP,
            headers: vec![("Authorization".into(), format!("Bearer {token}"))],
            ..ClientConfig::default()
        }
    }
}

impl Default for ClientConfig {
    fn default() -> Self {
        ClientConfig {
            http_timeout: Duration::from_secs(10),
            connect_timeout: Duration::from_secs(10),
            max_answer_bytes: 64 * 1024,
            receive_queue: 1024,
            endpoint: WHEP,
            headers: Vec::new(),
            offer_headers: None,
        }
    }
}

enum Command {
    Send(Vec<u8>),
    Close,
}

/// A connected data channel. Dropping it stops the connection without a goodbye (the server
/// notices by its timeouts); [`WebRtcClient::close`] says goodbye.
pub struct WebRtcClient {
    messages: mpsc::Receiver<Vec<u8>>,
    commands: mpsc::Sender<Command>,
    task: JoinHandle<()>,
    local_addr: SocketAddr,
    resource: Option<String>,
}

impl WebRtcClient {
    /// Connects to stream `stream_id` at `signalling_url` (`http://host:port[/prefix]`) and
    /// returns once the data channel is open.
    pub async fn connect(signalling_url: &str, stream_id: &str) -> Result<WebRtcClient> {
        Self::connect_with(ClientConfig::default(), signalling_url, stream_id).await
    }

    /// [`WebRtcClient::connect`] with explicit bounds.
    pub async fn connect_with(
        config: ClientConfig,
        signalling_url: &str,
        stream_id: &str,
    ) -> Result<WebRtcClient> {
        let (authority, prefix, server) = endpoint(signalling_url, stream_id).await?;
        let socket = UdpSocket::bind((route_to(server.ip())?, 0)).await?;
        let local_addr = socket.local_addr()?;

        let mut rtc = Rtc::new(Instant::now());
        let candidate =
            Candidate::host(local_addr, "udp").map_err(|_| Error::BadCandidate(local_addr))?;
        rtc.add_local_candidate(candidate);
        let mut change = rtc.sdp_api();
        change.add_channel(CHANNEL_LABEL.to_owned());
        let (offer, pending) = change
            .apply()
            .ok_or(Error::MalformedAnswer("str0m made no offer".into()))?;

        if !valid_endpoint(config.endpoint) {
            return Err(Error::BadUrl {
                url: config.endpoint.to_owned(),
                reason: "endpoint must be 1-32 characters of a-z 0-9 - _",
            });
        }
        let offer = offer.to_sdp_string();
        let mut headers = config.headers.clone();
        if let Some(OfferHeaders(compute)) = &config.offer_headers {
            headers.extend(compute(offer.as_bytes()));
        }
        let extra = extra_headers(&headers)?;
        let path = format!("{prefix}/{}/{stream_id}", config.endpoint);
        let (answer, resource) = tokio::time::timeout(
            config.http_timeout,
            post_offer(&authority, server, &path, &extra, &offer, &config),
        )
        .await
        .map_err(|_| Error::BadResponse("signalling timed out"))??;
        let answer = SdpAnswer::from_sdp_string(&answer)
            .map_err(|e| Error::MalformedAnswer(e.to_string()))?;
        rtc.sdp_api()
            .accept_answer(pending, answer)
            .map_err(|e| Error::MalformedAnswer(e.to_string()))?;

        let (message_tx, messages) = mpsc::channel(config.receive_queue.max(1));
        let (commands, command_rx) = mpsc::channel(16);
        let (open_tx, open_rx) = oneshot::channel();
        let driver = Driver {
            rtc,
            socket,
            local_addr,
            channel: None,
            outgoing: VecDeque::new(),
            messages: message_tx,
            opened: Some(open_tx),
        };
        let task = tokio::spawn(driver.run(command_rx));
        let client = WebRtcClient {
            messages,
            commands,
            task,
            local_addr,
            resource,
        };
        match tokio::time::timeout(config.connect_timeout, open_rx).await {
            Ok(Ok(())) => Ok(client),
            Ok(Err(_)) => Err(Error::Closed),
            Err(_) => Err(Error::ConnectTimeout(config.connect_timeout)),
        }
    }

    /// The next message, byte-exact; `None` once the connection has closed.
    pub async fn recv(&mut self) -> Option<Vec<u8>> {
        self.messages.recv().await
    }

    /// Sends a binary message to the server (ingest: publishing over WebRTC). Waits while
    /// str0m's send buffer is full.
    pub async fn send(&self, bytes: Vec<u8>) -> Result<()> {
        self.commands
            .send(Command::Send(bytes))
            .await
            .map_err(|_| Error::Closed)
    }

    /// The local UDP address (the client's host candidate).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The WHEP resource (`Location`) the server named for this session, if any.
    pub fn resource(&self) -> Option<&str> {
        self.resource.as_deref()
    }

    /// Closes the connection with a DTLS close, so the server learns at once.
    pub async fn close(mut self) {
        let _ = self.commands.send(Command::Close).await;
        let _ = tokio::time::timeout(Duration::from_secs(2), &mut self.task).await;
    }
}

impl Drop for WebRtcClient {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Drives the client's one `Rtc` over its own UDP socket.
struct Driver {
    rtc: Rtc,
    socket: UdpSocket,
    local_addr: SocketAddr,
    channel: Option<ChannelId>,
    outgoing: VecDeque<Vec<u8>>,
    messages: mpsc::Sender<Vec<u8>>,
    opened: Option<oneshot::Sender<()>>,
}

impl Driver {
    async fn run(mut self, mut commands: mpsc::Receiver<Command>) {
        let mut buf = vec![0u8; 2048];
        loop {
            let Some(deadline) = self.drain().await else {
                return;
            };
            // Take new messages only when str0m has taken the previous ones.
            let accepting = self.outgoing.is_empty();
            tokio::select! {
                received = self.socket.recv_from(&mut buf) => {
                    let Ok((n, source)) = received else { return };
                    if let Ok(r) = Receive::new(Protocol::Udp, source, self.local_addr, &buf[..n]) {
                        if self.rtc.handle_input(Input::Receive(Instant::now(), r)).is_err() {
                            return;
                        }
                    }
                }
                command = commands.recv(), if accepting => match command {
                    Some(Command::Send(bytes)) => self.outgoing.push_back(bytes),
                    Some(Command::Close) => {
                        self.close().await;
                        return;
                    }
                    // The handle was dropped: stop without a goodbye, as documented (a
                    // crashed consumer looks the same to the server).
                    None => return,
                },
                _ = tokio::time::sleep_until(deadline.into()) => {
                    if self.rtc.handle_input(Input::Timeout(Instant::now())).is_err() {
                        return;
                    }
                }
            }
        }
    }

    /// Writes what str0m takes, then transmits and handles events until str0m asks for a
    /// timeout, which it returns; `None` when the connection is over.
    async fn drain(&mut self) -> Option<Instant> {
        loop {
            if let Some(mut channel) = self.channel.and_then(|id| self.rtc.channel(id)) {
                while let Some(bytes) = self.outgoing.front() {
                    match channel.write(true, bytes) {
                        Ok(true) => drop(self.outgoing.pop_front()),
                        Ok(false) => break,
                        Err(_) => return None,
                    }
                }
            }
            match self.rtc.poll_output().ok()? {
                Output::Timeout(t) => return self.rtc.is_alive().then_some(t),
                Output::Transmit(t) => {
                    let _ = self.socket.send_to(&t.contents, t.destination).await;
                }
                Output::Event(Event::ChannelOpen(id, _)) => {
                    self.channel.get_or_insert(id);
                    if let Some(opened) = self.opened.take() {
                        let _ = opened.send(());
                    }
                }
                // Waiting here, not driving the connection, is the back-pressure: a reader
                // that stops makes the server see a stalled peer.
                Output::Event(Event::ChannelData(d)) => self.messages.send(d.data).await.ok()?,
                Output::Event(Event::ChannelClose(_) | Event::Closed)
                | Output::Event(Event::IceConnectionStateChange(
                    IceConnectionState::Disconnected,
                )) => return None,
                Output::Event(_) => {}
            }
        }
    }

    async fn close(&mut self) {
        if self.rtc.close().is_err() {
            return;
        }
        for _ in 0..32 {
            match self.rtc.poll_output() {
                Ok(Output::Transmit(t)) => {
                    let _ = self.socket.send_to(&t.contents, t.destination).await;
                }
                Ok(Output::Event(_)) => {}
                Ok(Output::Timeout(_)) | Err(_) => return,
            }
        }
    }
}

/// Posts the offer; returns the answer and the `Location` header.
async fn post_offer(
    authority: &str,
    server: SocketAddr,
    path: &str,
    extra: &str,
    offer: &str,
    config: &ClientConfig,
) -> Result<(String, Option<String>)> {
    let request = Request {
        method: "POST",
        path,
        content_type: "application/sdp",
        extra,
        body: offer,
        expect: 201,
    };
    exchange(authority, server, &request, config.max_answer_bytes).await
}

/// One HTTP/1.1 request to the signalling endpoint.
struct Request<'a> {
    method: &'a str,
    path: &'a str,
    content_type: &'a str,
    /// Extra header lines, each ending in CRLF.
    extra: &'a str,
    body: &'a str,
    /// The success status; any other is [`Error::Signalling`] with the body as the reason.
    expect: u16,
}

/// Sends `request` and reads the response: its body and `Location` header.
async fn exchange(
    authority: &str,
    server: SocketAddr,
    request: &Request<'_>,
    max_body: usize,
) -> Result<(String, Option<String>)> {
    let mut tcp = TcpStream::connect(server).await?;
    let text = format!(
        "{} {} HTTP/1.1\r\nHost: {authority}\r\nContent-Type: {}\r\n\
         {}Content-Length: {}\r\nConnection: close\r\n\r\n{}",
        request.method,
        request.path,
        request.content_type,
        request.extra,
        request.body.len(),
        request.body
    );
    tcp.write_all(text.as_bytes()).await?;
    let limits = Limits {
        max_head: 8 * 1024,
        max_headers: 32,
        max_body,
    };
    let (head, rest) = http::read_head(&mut tcp, &limits)
        .await
        .map_err(response_error)?;
    let status = head
        .start
        .strip_prefix("HTTP/1.1 ")
        .or_else(|| head.start.strip_prefix("HTTP/1.0 "))
        .and_then(|s| s.get(..3))
        .and_then(|s| s.parse::<u16>().ok())
        .ok_or(Error::BadResponse("bad status line"))?;
    let len = head
        .content_length()
        .map_err(response_error)?
        .ok_or(Error::BadResponse("no Content-Length"))?;
    let body = http::read_body(&mut tcp, rest, len, &limits)
        .await
        .map_err(response_error)?;
    let body = String::from_utf8(body).map_err(|_| Error::BadResponse("body is not UTF-8"))?;
    if status != request.expect {
        let mut reason = body.trim().to_owned();
        reason.truncate(reason.floor_char_boundary_compat(512));
        return Err(Error::Signalling { status, reason });
    }
    Ok((body, head.header("location").map(str::to_owned)))
}

/// Sends a producer's command about `stream_id` to the signalling endpoint at
/// `signalling_url` with `Authorization: Bearer <token>`: [`Route::Nodes`] with `body` (node
/// ids, one per line) or [`Route::End`]. Returns the endpoint's answer (text); a refusal is
/// [`Error::Signalling`] with its status and reason.
pub async fn command(
    signalling_url: &str,
    route: Route,
    stream_id: &str,
    token: &str,
    body: &str,
) -> Result<String> {
    if route.is_offer() {
        return Err(Error::BadUrl {
            url: route.as_str().to_owned(),
            reason: "a command is Route::Nodes or Route::End",
        });
    }
    let (authority, prefix, server) = endpoint(signalling_url, stream_id).await?;
    let extra = extra_headers(&[("Authorization".into(), format!("Bearer {token}"))])?;
    let path = format!("{prefix}/{}/{stream_id}", route.as_str());
    let request = Request {
        method: route.method(),
        path: &path,
        content_type: "text/plain; charset=utf-8",
        extra: &extra,
        body,
        expect: 200,
    };
    let timeout = ClientConfig::default().http_timeout;
    let (answer, _) =
        tokio::time::timeout(timeout, exchange(&authority, server, &request, 64 * 1024))
            .await
            .map_err(|_| Error::BadResponse("signalling timed out"))??;
    Ok(answer.trim_end().to_owned())
}

/// The signalling endpoint of `signalling_url` for `stream_id`: its authority, path prefix
/// and resolved address.
async fn endpoint(signalling_url: &str, stream_id: &str) -> Result<(String, String, SocketAddr)> {
    let (authority, prefix) = parse_url(signalling_url)?;
    if !valid_stream_id(stream_id) {
        return Err(Error::BadUrl {
            url: stream_id.to_owned(),
            reason: "stream id must be 1-128 characters of A-Z a-z 0-9 - . _ ~",
        });
    }
    let server = tokio::net::lookup_host(&authority)
        .await?
        .next()
        .ok_or(Error::BadUrl {
            url: signalling_url.to_owned(),
            reason: "host does not resolve",
        })?;
    Ok((authority, prefix, server))
}

/// Whether `endpoint` is a plain path segment.
fn valid_endpoint(endpoint: &str) -> bool {
    (1..=32).contains(&endpoint.len())
        && endpoint
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
}

/// The extra headers as request lines (each ending in CRLF); refuses names that are not
/// tokens and values with control characters, which would split the request.
fn extra_headers(headers: &[(String, String)]) -> Result<String> {
    let mut out = String::new();
    for (name, value) in headers {
        let token = !name.is_empty()
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b));
        if !token || value.chars().any(|c| c.is_control() && c != '\t') {
            return Err(Error::BadUrl {
                url: name.clone(),
                reason: "request header name or value is not allowed",
            });
        }
        out.push_str(&format!("{name}: {value}\r\n"));
    }
    Ok(out)
}

fn response_error(e: http::HttpError) -> Error {
    match e {
        http::HttpError::Io(e) => Error::Io(e),
        http::HttpError::Eof => Error::BadResponse("connection closed early"),
        http::HttpError::HeadTooLarge => Error::BadResponse("response head too large"),
        http::HttpError::BodyTooLarge => Error::BadResponse("response too large"),
        http::HttpError::Malformed(reason) => Error::BadResponse(reason),
    }
}

/// The local address the system routes to `server` from, so the host candidate is one the
/// server can reach (loopback for loopback, the LAN or public address otherwise).
fn route_to(server: IpAddr) -> Result<IpAddr> {
    let any: IpAddr = match server {
        IpAddr::V4(_) => Ipv4Addr::UNSPECIFIED.into(),
        IpAddr::V6(_) => Ipv6Addr::UNSPECIFIED.into(),
    };
    let probe = std::net::UdpSocket::bind((any, 0))?;
    // Connecting a UDP socket sends nothing; it only picks the route.
    probe.connect((server, 9))?;
    Ok(probe.local_addr()?.ip())
}

/// Splits `http://host:port/prefix` into `host:port` and `/prefix` (without a trailing `/`).
fn parse_url(url: &str) -> Result<(String, String)> {
    let bad = |reason| Error::BadUrl {
        url: url.to_owned(),
        reason,
    };
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| bad("only http:// is supported"))?;
    let (authority, prefix) = match rest.find('/') {
        Some(at) => rest.split_at(at),
        None => (rest, ""),
    };
    if authority.is_empty() || authority.contains('@') {
        return Err(bad("missing host"));
    }
    let has_port = match authority.rfind(']') {
        Some(end) => authority[end..].contains(':'),
        None => authority.contains(':'),
    };
    let authority = if has_port {
        authority.to_owned()
    } else {
        format!("{authority}:80")
    };
    Ok((authority, prefix.trim_end_matches('/').to_owned()))
}

trait FloorCharBoundary {
    fn floor_char_boundary_compat(&self, at: usize) -> usize;
}

impl FloorCharBoundary for String {
    fn floor_char_boundary_compat(&self, at: usize) -> usize {
        let mut at = at.min(self.len());
        while !self.is_char_boundary(at) {
            at -= 1;
        }
        at
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let p = |u| parse_url(u).map_err(|_| ());
        assert_eq!(
            p("http://127.0.0.1:8080"),
            Ok(("127.0.0.1:8080".into(), "".into()))
        );
        assert_eq!(
            p("http://node.example/psp/"),
            Ok(("node.example:80".into(), "/psp".into()))
        );
        assert_eq!(p("http://[::1]:9/"), Ok(("[::1]:9".into(), "".into())));
        assert_eq!(p("http://[::1]/"), Ok(("[::1]:80".into(), "".into())));
        assert!(p("https://x").is_err() && p("http://").is_err() && p("http://u@h").is_err());
    }

    #[test]
    fn extra_headers_are_checked() {
        let h = |n: &str, v: &str| extra_headers(&[(n.into(), v.into())]).map_err(|_| ());
        assert_eq!(
            h("Authorization", "Bearer ab12"),
            Ok("Authorization: Bearer ab12\r\n".into())
        );
        assert!(h("Bad Name", "x").is_err() && h("X", "a\r\nInjected: 1").is_err());
        assert!(h("", "x").is_err());
        assert!(valid_endpoint(WHIP) && valid_endpoint(WHEP));
        assert!(!valid_endpoint("a/b") && !valid_endpoint(""));
        let config = ClientConfig::publish("00ff");
        assert_eq!(config.endpoint, WHIP);
        assert_eq!(config.headers[0].1, "Bearer 00ff");
    }
}
