//! The server, its signalling endpoint and the Rust client, over loopback UDP and TCP in one
//! process: no browser.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use psp_webrtc::signalling::{self, SignallingConfig};
use psp_webrtc::{
    ClientConfig, Error, GoneReason, PeerId, ServerConfig, ServerEvent, WebRtcClient, WebRtcServer,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::time::timeout;

const STREAM: &str = "live";

struct Node {
    server: WebRtcServer,
    events: mpsc::Receiver<ServerEvent>,
    url: String,
    http: SocketAddr,
}

async fn node(config: ServerConfig, signalling: SignallingConfig) -> Node {
    let (server, task) = WebRtcServer::bind(config).await.unwrap();
    tokio::spawn(task.run());
    let events = server.events().unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let http = listener.local_addr().unwrap();
    let directory = Arc::new(|id: &str| id == STREAM);
    tokio::spawn(signalling::serve(
        listener,
        server.clone(),
        directory,
        signalling,
    ));
    Node {
        server,
        events,
        url: format!("http://{http}"),
        http,
    }
}

/// Roomy queues: the tests send faster than loopback SCTP drains.
fn roomy() -> ServerConfig {
    ServerConfig {
        peer_queue_messages: 1024,
        peer_queue_bytes: 32 * 1024 * 1024,
        ..ServerConfig::default()
    }
}

impl Node {
    /// Waits for the next event matching `f`, skipping others.
    async fn wait<T>(&mut self, mut f: impl FnMut(&ServerEvent) -> Option<T>) -> T {
        timeout(Duration::from_secs(20), async {
            loop {
                let event = self.events.recv().await.expect("server running");
                if let Some(t) = f(&event) {
                    return t;
                }
            }
        })
        .await
        .expect("event in time")
    }

    async fn connect(&mut self) -> (WebRtcClient, PeerId) {
        let client = WebRtcClient::connect(&self.url, STREAM).await.unwrap();
        let peer = self
            .wait(|e| match e {
                ServerEvent::ChannelOpen { peer, label } if label == "media" => Some(*peer),
                _ => None,
            })
            .await;
        (client, peer)
    }
}

/// Message `i` of the test stream: sizes from 1 byte to 64 KiB, contents depend on `i`.
fn message(i: usize) -> Vec<u8> {
    let len = match i {
        0 => 1,
        1 => 64 * 1024,
        _ => 1 + (i * 7919 * 331) % (64 * 1024),
    };
    (0..len).map(|j| ((i * 31 + j * 7) % 251) as u8).collect()
}

async fn recv(client: &mut WebRtcClient) -> Vec<u8> {
    timeout(Duration::from_secs(20), client.recv())
        .await
        .expect("message in time")
        .expect("connection open")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_clients_receive_every_message_byte_exact() {
    let mut node = node(roomy(), SignallingConfig::default()).await;
    let (mut a, peer_a) = node.connect().await;
    let (mut b, peer_b) = node.connect().await;
    assert_ne!(peer_a, peer_b);
    assert!(a.resource().unwrap().starts_with("/whep/live/"));

    for i in 0..200 {
        let m: Arc<[u8]> = message(i).into();
        node.server.send(peer_a, m.clone()).await.unwrap();
        node.server.send(peer_b, m).await.unwrap();
    }
    for i in 0..200 {
        assert_eq!(recv(&mut a).await, message(i), "client a, message {i}");
        assert_eq!(recv(&mut b).await, message(i), "client b, message {i}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_client_is_dropped_and_the_other_keeps_receiving() {
    let config = ServerConfig {
        stall_timeout: Duration::from_secs(1),
        ..roomy()
    };
    let mut node = node(config, SignallingConfig::default()).await;
    let (mut a, peer_a) = node.connect().await;
    let (b, peer_b) = node.connect().await;
    // B stops without a goodbye, like a crashed or frozen consumer.
    drop(b);

    let mut sent = 0;
    let mut b_gone = None;
    while b_gone.is_none() || sent < 400 {
        assert!(sent < 20_000, "B was never dropped");
        let m: Arc<[u8]> = vec![sent as u8; 16 * 1024].into();
        node.server.send(peer_a, m.clone()).await.unwrap();
        node.server.send(peer_b, m).await.unwrap();
        assert_eq!(recv(&mut a).await, vec![sent as u8; 16 * 1024]);
        sent += 1;
        while let Ok(event) = node.events.try_recv() {
            if let ServerEvent::PeerGone { peer, reason } = event {
                assert_eq!(peer, peer_b, "only B may go");
                b_gone = Some(reason);
            }
        }
    }
    let reason = b_gone.unwrap();
    assert!(
        matches!(reason, GoneReason::Stalled | GoneReason::QueueFull),
        "{reason:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_closing_client_is_reported_at_once() {
    let mut node = node(roomy(), SignallingConfig::default()).await;
    let (a, peer_a) = node.connect().await;
    a.close().await;
    let reason = node
        .wait(|e| match e {
            ServerEvent::PeerGone { peer, reason } if *peer == peer_a => Some(reason.clone()),
            _ => None,
        })
        .await;
    assert_eq!(reason, GoneReason::Closed);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_producer_can_publish_over_its_channel() {
    let mut node = node(roomy(), SignallingConfig::default()).await;
    let (a, peer_a) = node.connect().await;
    for i in 0..20 {
        a.send(message(i)).await.unwrap();
    }
    for i in 0..20 {
        let bytes = node
            .wait(|e| match e {
                ServerEvent::Data { peer, bytes } if *peer == peer_a => Some(bytes.clone()),
                _ => None,
            })
            .await;
        assert_eq!(bytes, message(i));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_server_answers_503_and_unknown_streams_404() {
    let config = ServerConfig {
        max_peers: 1,
        ..roomy()
    };
    let mut node = node(config, SignallingConfig::default()).await;
    let (_a, _) = node.connect().await;
    let full = WebRtcClient::connect(&node.url, STREAM)
        .await
        .err()
        .unwrap();
    assert!(
        matches!(full, Error::Signalling { status: 503, .. }),
        "{full}"
    );
    let unknown = WebRtcClient::connect(&node.url, "other")
        .await
        .err()
        .unwrap();
    assert!(
        matches!(unknown, Error::Signalling { status: 404, .. }),
        "{unknown}"
    );
    let config = ClientConfig::default();
    let bad = WebRtcClient::connect_with(config, &node.url, "a/b")
        .await
        .err()
        .unwrap();
    assert!(matches!(bad, Error::BadUrl { .. }), "{bad}");
}

/// Sends raw bytes, returns the status and the body.
async fn raw(addr: SocketAddr, request: &[u8]) -> (u16, String) {
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    // The server may answer (and close) before reading everything; a failed write is fine.
    let _ = tcp.write_all(request).await;
    let mut response = Vec::new();
    timeout(Duration::from_secs(10), tcp.read_to_end(&mut response))
        .await
        .expect("response in time")
        .expect("read");
    let text = String::from_utf8_lossy(&response).into_owned();
    let status = text[9..12].parse().unwrap();
    let body = text.split_once("\r\n\r\n").unwrap().1.to_owned();
    (status, body)
}

fn post(path: &str, content_type: &str, body: &str) -> Vec<u8> {
    format!(
        "POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: {content_type}\r\n\
         Content-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signalling_refuses_bad_requests_with_a_reason() {
    let signalling = SignallingConfig {
        read_timeout: Duration::from_millis(300),
        ..SignallingConfig::default()
    };
    let node = node(roomy(), signalling).await;
    let at = node.http;
    let sdp = "application/sdp";

    let (status, body) = raw(at, &post("/whep/live", sdp, "garbage")).await;
    assert_eq!(
        (status, body.trim()),
        (
            400,
            "SDP offer has no data channel (no m=application section)"
        )
    );
    let (status, body) = raw(at, &post("/whep/live", sdp, "v=0\r\nm=application 9 x\r\n")).await;
    assert_eq!(status, 400);
    assert!(body.starts_with("malformed SDP offer"), "{body}");
    assert_eq!(raw(at, &post("/whep/other", sdp, "v=0")).await.0, 404);
    assert_eq!(raw(at, &post("/whep/a%2Fb", sdp, "v=0")).await.0, 400);
    assert_eq!(
        raw(at, &post("/whep/live", "text/plain", "v=0")).await.0,
        415
    );
    let big = b"POST /whep/live HTTP/1.1\r\nContent-Type: application/sdp\r\nContent-Length: 70000\r\n\r\n";
    assert_eq!(raw(at, big).await.0, 413);
    let offer_too_big = "x".repeat(20 * 1024);
    assert_eq!(
        raw(at, &post("/whep/live", sdp, &offer_too_big)).await.0,
        413
    );
    let no_length = b"POST /whep/live HTTP/1.1\r\nContent-Type: application/sdp\r\n\r\n";
    assert_eq!(raw(at, no_length).await.0, 411);
    let chunked = b"POST /whep/live HTTP/1.1\r\nContent-Type: application/sdp\r\nTransfer-Encoding: chunked\r\n\r\n";
    assert_eq!(raw(at, chunked).await.0, 501);
    let huge_head = format!(
        "GET /watch/live HTTP/1.1\r\nX: {}\r\n\r\n",
        "y".repeat(9000)
    );
    assert_eq!(raw(at, huge_head.as_bytes()).await.0, 413);
    let many = format!("GET /watch/live HTTP/1.1\r\n{}\r\n", "A: b\r\n".repeat(40));
    assert_eq!(raw(at, many.as_bytes()).await.0, 413);
    assert_eq!(raw(at, b"GET /nothing HTTP/1.1\r\n\r\n").await.0, 404);
    assert_eq!(raw(at, b"DELETE /whep/live HTTP/1.1\r\n\r\n").await.0, 405);
    assert_eq!(raw(at, b"GET /watch/live HTTP/2\r\n\r\n").await.0, 400);
    assert_eq!(raw(at, b"\x00\xff\r\n\r\n").await.0, 400);
    // Half a request, then silence: answered 408 when the read timeout passes.
    assert_eq!(raw(at, b"POST /whep/live HTTP/1.1\r\n").await.0, 408);

    let (status, page) = raw(at, b"GET /watch/live HTTP/1.1\r\n\r\n").await;
    assert_eq!(status, 200);
    assert!(page.contains("window.pspWatch"));
    assert_eq!(raw(at, b"GET /watch/other HTTP/1.1\r\n\r\n").await.0, 404);
}

#[tokio::test]
async fn oversized_messages_are_refused() {
    let node = node(roomy(), SignallingConfig::default()).await;
    let err = node
        .server
        .send(PeerId(0), vec![0u8; 64 * 1024 + 1])
        .await
        .unwrap_err();
    assert!(matches!(err, Error::MessageTooLarge { .. }), "{err}");
}
