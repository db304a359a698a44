//! WHIP ingest through the signalling endpoint, with a directory that admits publishers by a
//! bearer token and one at a time: a publisher's messages reach the server as `Data`, the
//! refusals carry the directory's status and reason, and a directory without an ingest
//! policy refuses every publisher.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use psp_webrtc::signalling::{self, SignallingConfig};
use psp_webrtc::{
    ClientConfig, Error, PeerId, Refusal, Route, ServerConfig, ServerEvent, SignallingRequest,
    StreamDirectory, WebRtcClient, WebRtcServer,
};
use tokio::net::TcpListener;

const STREAM: &str = "live";
const TOKEN: &str = "s3cret";

#[derive(Default)]
struct Gate {
    publisher: Mutex<Option<Option<PeerId>>>,
    observed: Mutex<Vec<Vec<u8>>>,
}

impl StreamDirectory for Gate {
    fn serves(&self, stream_id: &str) -> bool {
        stream_id == STREAM
    }

    fn admit(&self, request: &SignallingRequest<'_>) -> Result<(), Refusal> {
        if request.stream_id != STREAM {
            return Err(Refusal::not_found("unknown stream"));
        }
        if request.route == Route::Whep {
            return Ok(());
        }
        if request.header("authorization") != Some(&format!("Bearer {TOKEN}")) {
            return Err(Refusal::unauthorized("wrong publish token"));
        }
        let mut publisher = self.publisher.lock().unwrap();
        if publisher.is_some() {
            return Err(Refusal::conflict("the stream already has its publisher"));
        }
        *publisher = Some(None);
        Ok(())
    }

    fn accepted(&self, request: &SignallingRequest<'_>, peer: PeerId) {
        if request.route == Route::Whip {
            *self.publisher.lock().unwrap() = Some(Some(peer));
        }
    }

    fn failed(&self, request: &SignallingRequest<'_>) {
        if request.route == Route::Whip {
            *self.publisher.lock().unwrap() = None;
        }
    }

    fn observe(&self, request: &SignallingRequest<'_>) {
        self.observed.lock().unwrap().push(request.to_bytes());
    }

    fn command(&self, request: &SignallingRequest<'_>) -> Result<String, Refusal> {
        if request.header("authorization") != Some(&format!("Bearer {TOKEN}")) {
            return Err(Refusal::unauthorized("wrong publish token"));
        }
        let body = std::str::from_utf8(request.body).unwrap_or_default();
        Ok(format!(
            "{} {}",
            request.route.as_str(),
            body.lines().count()
        ))
    }
}

async fn serve(directory: Arc<dyn StreamDirectory>) -> (WebRtcServer, String) {
    let (server, task) = WebRtcServer::bind(ServerConfig::default()).await.unwrap();
    tokio::spawn(task.run());
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(signalling::serve(
        listener,
        server.clone(),
        directory,
        SignallingConfig::default(),
    ));
    (server, url)
}

fn refused(result: Result<WebRtcClient, Error>) -> (u16, String) {
    match result {
        Err(Error::Signalling { status, reason }) => (status, reason),
        Err(e) => panic!("expected a refusal, got {e}"),
        Ok(_) => panic!("expected a refusal, got a connection"),
    }
}

#[tokio::test]
async fn publisher_to_consumer_through_one_server() {
    let gate = Arc::new(Gate::default());
    let (server, url) = serve(gate.clone()).await;
    let mut events = server.events().unwrap();

    let (status, reason) =
        refused(WebRtcClient::connect_with(ClientConfig::publish("nope"), &url, STREAM).await);
    assert_eq!((status, reason.as_str()), (401, "wrong publish token"));
    let (status, _) =
        refused(WebRtcClient::connect_with(ClientConfig::publish(TOKEN), &url, "other").await);
    assert_eq!(status, 404);

    let publisher = WebRtcClient::connect_with(ClientConfig::publish(TOKEN), &url, STREAM)
        .await
        .unwrap();
    let (status, reason) =
        refused(WebRtcClient::connect_with(ClientConfig::publish(TOKEN), &url, STREAM).await);
    assert_eq!(
        (status, reason.as_str()),
        (409, "the stream already has its publisher")
    );
    let publisher_peer = gate.publisher.lock().unwrap().flatten().unwrap();

    let mut consumer = WebRtcClient::connect(&url, STREAM).await.unwrap();
    // The consumer's channel is open once the server says so; then relay what the
    // publisher sends, as a distribution node does.
    let consumer_peer = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            if let Some(ServerEvent::ChannelOpen { peer, .. }) = events.recv().await {
                if peer != publisher_peer {
                    return peer;
                }
            }
        }
    })
    .await
    .unwrap();
    for i in 0..10u8 {
        publisher.send(vec![i; 100 + usize::from(i)]).await.unwrap();
    }
    tokio::time::timeout(Duration::from_secs(10), async {
        let mut relayed = 0;
        while relayed < 10 {
            if let Some(ServerEvent::Data { peer, bytes }) = events.recv().await {
                assert_eq!(peer, publisher_peer);
                server.send(consumer_peer, bytes).await.unwrap();
                relayed += 1;
            }
        }
    })
    .await
    .unwrap();
    for i in 0..10u8 {
        let message = tokio::time::timeout(Duration::from_secs(10), consumer.recv())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(message, vec![i; 100 + usize::from(i)]);
    }

    let observed = gate.observed.lock().unwrap();
    assert!(observed
        .iter()
        .any(|r| r.starts_with(b"POST /whip/live") && r.windows(6).any(|w| w == b"s3cret")));
    assert!(observed.iter().any(|r| r.starts_with(b"POST /whep/live")));
}

#[tokio::test]
async fn a_directory_without_ingest_refuses_publishers() {
    let (_server, url) = serve(Arc::new(|id: &str| id == STREAM)).await;
    let (status, reason) =
        refused(WebRtcClient::connect_with(ClientConfig::publish(TOKEN), &url, STREAM).await);
    assert_eq!(
        (status, reason.as_str()),
        (404, "this node takes no ingest")
    );
}

#[tokio::test]
async fn producer_commands_reach_the_directory_with_their_refusals() {
    let gate = Arc::new(Gate::default());
    let (_server, url) = serve(gate.clone()).await;
    let answer = psp_webrtc::command(&url, Route::Nodes, STREAM, TOKEN, "0xaa\n0xbb\n")
        .await
        .unwrap();
    assert_eq!(answer, "nodes 2");
    let answer = psp_webrtc::command(&url, Route::End, STREAM, TOKEN, "")
        .await
        .unwrap();
    assert_eq!(answer, "whip 0");
    match psp_webrtc::command(&url, Route::End, STREAM, "nope", "").await {
        Err(Error::Signalling { status, reason }) => {
            assert_eq!((status, reason.as_str()), (401, "wrong publish token"))
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    let oversized = "x".repeat(psp_webrtc::MAX_COMMAND_BODY + 1);
    match psp_webrtc::command(&url, Route::Nodes, STREAM, TOKEN, &oversized).await {
        Err(Error::Signalling { status, .. }) => assert_eq!(status, 413),
        other => panic!("expected 413, got {other:?}"),
    }
    assert!(psp_webrtc::command(&url, Route::Whip, STREAM, TOKEN, "")
        .await
        .is_err());
    let ended_observed = gate
        .observed
        .lock()
        .unwrap()
        .iter()
        .any(|r| r.starts_with(b"DELETE /whip/live HTTP/1.1"));
    assert!(ended_observed);

    // A directory without commands refuses them.
    let (_server, url) = serve(Arc::new(|id: &str| id == STREAM)).await;
    match psp_webrtc::command(&url, Route::End, STREAM, TOKEN, "").await {
        Err(Error::Signalling { status, .. }) => assert_eq!(status, 404),
        other => panic!("expected 404, got {other:?}"),
    }
}
