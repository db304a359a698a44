//! The media service in one process, over loopback: one node that is both a stream's landing
//! node and its only access point, so a producer's frames go producer → WHIP (token) →
//! landing relay → WHIP fan-out (record + signature) to itself → distribution relay → WHEP
//! consumer, through the same code a network of nodes runs. Then the refusals.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use psp_net::{
    crypto::Sr25519Keypair,
    driver::streams::{CreatedStream, SharedLandingUpdates},
    receipts::{BitrateClass, StreamParams},
    registry::{IdentityKind, IdentityStatus, StaticRegistry},
    stream::{
        record::{StreamId, StreamRecord},
        wire::FormatFlags,
    },
};
use psp_webrtc::{ClientConfig, Error, WebRtcClient};

use super::fanout::fanout_config;
use super::{MediaConfig, MediaDeps, MediaService};
use crate::overlay::Observer;

struct Fixture {
    media: MediaService,
    url: String,
    key: Arc<Sr25519Keypair>,
    stream: [u8; 32],
    token: [u8; 32],
    record: Vec<u8>,
    observe: std::path::PathBuf,
    _dir: tempfile_dir::Dir,
}

/// A temporary directory without a new dependency.
mod tempfile_dir {
    pub struct Dir(pub std::path::PathBuf);
    impl Dir {
        pub fn new(name: &str) -> Self {
            let path = std::env::temp_dir().join(format!(
                "psp-media-test-{name}-{}-{:?}",
                std::process::id(),
                std::time::Instant::now()
            ));
            std::fs::create_dir_all(&path).expect("temp dir");
            Dir(path)
        }
    }
    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

/// Media services' addresses by node, as the chain would resolve them.
type Addresses = Arc<std::sync::Mutex<HashMap<[u8; 32], SocketAddr>>>;

/// A node's media service on loopback: `nodes` are the live node identities, `addresses`
/// where their media services are.
async fn start_node(
    key: Arc<Sr25519Keypair>,
    nodes: &[[u8; 32]],
    addresses: &Addresses,
    limits: super::state::MediaLimits,
    observer: Option<Arc<Observer>>,
) -> (MediaService, SharedLandingUpdates) {
    let registry = StaticRegistry(
        nodes
            .iter()
            .map(|n| (*n, IdentityStatus::Active(IdentityKind::Node)))
            .collect(),
    );
    let resolved = addresses.clone();
    let updates = SharedLandingUpdates::default();
    let media = MediaService::start(
        MediaConfig {
            bind: "127.0.0.1:0".parse().expect("addr"),
            public: "127.0.0.1:0".parse().expect("addr"),
            limits,
        },
        MediaDeps {
            key: key.clone(),
            registry: Arc::new(registry),
            resolve: Arc::new(move |n: &[u8; 32]| resolved.lock().ok()?.get(n).copied()),
            observer,
            metrics: None,
            landing_updates: updates.clone(),
            usage: None,
        },
    )
    .await
    .expect("media service starts");
    addresses
        .lock()
        .expect("addresses")
        .insert(key.public(), media.local_addr());
    (media, updates)
}

async fn fixture(name: &str) -> Fixture {
    let key = Arc::new(Sr25519Keypair::from_seed(&[7; 32]));
    let node = key.public();
    let dir = tempfile_dir::Dir::new(name);
    let observe = dir.0.join("observe");
    let observer = Observer::open(Some(&observe), true).expect("observer");
    let (media, _) = start_node(
        key.clone(),
        &[node],
        &Addresses::default(),
        Default::default(),
        observer,
    )
    .await;
    let stream = [0x5a; 32];
    let now = psp_net::driver::unix_now();
    let record = StreamRecord::sign(
        &key,
        StreamId(stream),
        FormatFlags::webrtc(),
        now,
        now + 600,
        vec![node],
    )
    .encode();
    Fixture {
        url: format!("http://{}", media.local_addr()),
        media,
        key,
        stream,
        token: [0x11; 32],
        record,
        observe,
        _dir: dir,
    }
}

impl Fixture {
    fn create(&self) {
        self.media.stream_created(&CreatedStream {
            stream_id: self.stream,
            publish_token: self.token,
            params: StreamParams {
                lifetime_secs: 600,
                bitrate: BitrateClass::Standard,
                distribution_nodes: 1,
            },
            record: self.record.clone(),
        });
    }

    fn id(&self) -> String {
        hex::encode(self.stream)
    }

    async fn publish(&self, token: &[u8; 32]) -> Result<WebRtcClient, Error> {
        WebRtcClient::connect_with(
            ClientConfig::publish(&hex::encode(token)),
            &self.url,
            &self.id(),
        )
        .await
    }

    /// A consumer, once the fan-out connection is up (the node serves the stream only then).
    async fn watch(&self) -> WebRtcClient {
        for _ in 0..100 {
            match WebRtcClient::connect(&self.url, &self.id()).await {
                Ok(client) => return client,
                Err(Error::Signalling { status: 404, .. }) => {
                    tokio::time::sleep(Duration::from_millis(200)).await
                }
                Err(e) => panic!("watching: {e}"),
            }
        }
        panic!("the stream was never served");
    }
}

fn status(result: Result<WebRtcClient, Error>) -> (u16, String) {
    match result {
        Err(Error::Signalling { status, reason }) => (status, reason),
        Err(e) => panic!("expected a refusal, got {e}"),
        Ok(_) => panic!("expected a refusal, got a connection"),
    }
}

fn frame(i: u32) -> Vec<u8> {
    let mut frame = vec![0xa5; 40 + (i as usize % 7) * 1000];
    frame[..4].copy_from_slice(&i.to_be_bytes());
    frame
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn producer_to_consumer_through_landing_and_distribution() {
    let f = fixture("path").await;
    f.create();
    let mut consumer = f.watch().await;
    let producer = f.publish(&f.token).await.expect("producer connects");
    // Frames sent before the consumer's channel is subscribed are not for it: send until
    // it has some, then check they arrive whole and in order.
    let received = tokio::time::timeout(Duration::from_secs(30), async {
        let mut got = Vec::new();
        let mut i = 0u32;
        while got.len() < 20 {
            producer.send(frame(i)).await.expect("send");
            i += 1;
            if let Ok(Some(m)) =
                tokio::time::timeout(Duration::from_millis(50), consumer.recv()).await
            {
                got.push(m);
            }
        }
        got
    })
    .await
    .expect("frames arrive");
    let mut last = None;
    for m in &received {
        let i = u32::from_be_bytes(m[..4].try_into().expect("4 bytes"));
        assert_eq!(*m, frame(i), "byte-exact");
        assert!(last.is_none_or(|l| i > l), "in order");
        last = Some(i);
    }

    // A second producer is refused while the first is connected.
    let (code, reason) = status(f.publish(&f.token).await);
    assert_eq!(code, 409, "{reason}");

    let observed = std::fs::read_to_string(&f.observe).expect("observe file");
    assert!(observed.contains("service media-whip "), "{observed}");
    assert!(observed.contains("service media-whep "), "{observed}");
    producer.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals() {
    let f = fixture("refusals").await;
    // Before the stream is created here: unknown.
    let (code, reason) = status(f.publish(&f.token).await);
    assert_eq!(code, 404, "{reason}");
    f.create();
    let (code, reason) = status(f.publish(&[0x22; 32]).await);
    assert_eq!(code, 401, "wrong token: {reason}");
    let (code, reason) =
        status(WebRtcClient::connect_with(ClientConfig::publish("not-hex"), &f.url, &f.id()).await);
    assert_eq!(code, 401, "malformed token: {reason}");
    let (code, reason) = status(
        WebRtcClient::connect_with(
            ClientConfig {
                endpoint: "whip",
                ..ClientConfig::default()
            },
            &f.url,
            &f.id(),
        )
        .await,
    );
    assert_eq!(code, 401, "no credentials: {reason}");
    let (code, reason) = status(WebRtcClient::connect(&f.url, &hex::encode([9u8; 32])).await);
    assert_eq!(code, 404, "unknown stream to watch: {reason}");

    // Fan-out: the record is right, the signature is another key's.
    let other = Arc::new(Sr25519Keypair::from_seed(&[8; 32]));
    let bad = fanout_config(f.stream, &f.record, other.clone());
    let (code, reason) = status(WebRtcClient::connect_with(bad, &f.url, &f.id()).await);
    assert_eq!(code, 401, "bad fan-out signature: {reason}");
    // A record for another stream id than the path's.
    let wrong_stream = fanout_config([0x77; 32], &f.record, f.key.clone());
    let (code, reason) =
        status(WebRtcClient::connect_with(wrong_stream, &f.url, &hex::encode([0x77; 32])).await);
    assert_eq!(code, 400, "record for another stream: {reason}");
    // A record that names other access points.
    let now = psp_net::driver::unix_now();
    let elsewhere = StreamRecord::sign(
        &f.key,
        StreamId(f.stream),
        FormatFlags::webrtc(),
        now,
        now + 600,
        vec![other.public()],
    )
    .encode();
    let config = fanout_config(f.stream, &elsewhere, f.key.clone());
    let (code, reason) = status(WebRtcClient::connect_with(config, &f.url, &f.id()).await);
    assert_eq!(code, 403, "not an access point: {reason}");
    // A record signed by an unregistered landing node.
    let stranger = StreamRecord::sign(
        &other,
        StreamId(f.stream),
        FormatFlags::webrtc(),
        now,
        now + 600,
        vec![f.key.public()],
    )
    .encode();
    let config = fanout_config(f.stream, &stranger, other);
    let (code, reason) = status(WebRtcClient::connect_with(config, &f.url, &f.id()).await);
    assert_eq!(code, 401, "landing node not live: {reason}");
}

/// Waits up to 30 s for `client`'s next message (`None`: closed).
async fn next_message(client: &mut WebRtcClient) -> Option<Vec<u8>> {
    tokio::time::timeout(Duration::from_secs(30), client.recv())
        .await
        .expect("a message or the close in time")
}

/// A consumer at `url`, once that node serves the stream.
async fn watch_at(url: &str, id: &str) -> WebRtcClient {
    for _ in 0..150 {
        match WebRtcClient::connect(url, id).await {
            Ok(client) => return client,
            Err(Error::Signalling { status: 404, .. }) => {
                tokio::time::sleep(Duration::from_millis(200)).await
            }
            Err(e) => panic!("watching: {e}"),
        }
    }
    panic!("the stream was never served at {url}");
}

/// The re-signed records the landing node handed to its stream hub, waiting up to 10 s.
async fn republished(updates: &SharedLandingUpdates) -> Vec<StreamRecord> {
    for _ in 0..100 {
        let taken = updates.take();
        if !taken.is_empty() {
            return taken
                .iter()
                .map(|bytes| StreamRecord::decode(bytes).expect("record decodes"))
                .collect();
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("no record was republished");
}

/// Distribution scaling between two nodes: A lands the stream and is its only access point,
/// with a capacity the stream exceeds; its load reports make it ask the producer for more
/// nodes over the producer's link; the producer adds B with a command; A re-signs the record
/// with both, fans out to B, and a consumer at B gets the frames byte-exact. Then the
/// refusals of commands, and the producer ends the stream: its link and B's consumer close,
/// and the re-signed record has expired.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hot_access_point_gets_a_second_and_the_producer_ends_the_stream() {
    use psp_media::wire::{Deframer, MediaMsg};
    use psp_webrtc::Route;

    let a = Arc::new(Sr25519Keypair::from_seed(&[7; 32]));
    let b = Arc::new(Sr25519Keypair::from_seed(&[8; 32]));
    let nodes = [a.public(), b.public()];
    let addresses = Addresses::default();
    let fast = super::state::MediaLimits {
        load_report_ms: 200,
        ..Default::default()
    };
    let hot = super::state::MediaLimits {
        capacity_bytes_per_sec: 2_000,
        ..fast.clone()
    };
    let (landing, updates) = start_node(a.clone(), &nodes, &addresses, hot, None).await;
    let (other, _) = start_node(b.clone(), &nodes, &addresses, fast, None).await;
    let (url_a, url_b) = (
        format!("http://{}", landing.local_addr()),
        format!("http://{}", other.local_addr()),
    );
    let stream = [0x6b; 32];
    let id = hex::encode(stream);
    let token = hex::encode([0x33; 32]);
    let now = psp_net::driver::unix_now();
    let record = StreamRecord::sign(
        &a,
        StreamId(stream),
        FormatFlags::webrtc(),
        now,
        now + 600,
        vec![a.public()],
    );
    landing.stream_created(&CreatedStream {
        stream_id: stream,
        publish_token: [0x33; 32],
        params: StreamParams {
            lifetime_secs: 600,
            bitrate: BitrateClass::Standard,
            distribution_nodes: 3,
        },
        record: record.encode(),
    });

    let mut at_a = watch_at(&url_a, &id).await;
    let mut producer = WebRtcClient::connect_with(ClientConfig::publish(&token), &url_a, &id)
        .await
        .expect("producer connects");
    // Publish until the landing node asks for nodes (A sends more than 80 % of 2 kB/s).
    let count = tokio::time::timeout(Duration::from_secs(30), async {
        let mut i = 0u32;
        loop {
            producer.send(frame(i)).await.expect("send");
            i += 1;
            let _ = tokio::time::timeout(Duration::from_millis(5), at_a.recv()).await;
            if let Ok(Some(message)) =
                tokio::time::timeout(Duration::from_millis(20), producer.recv()).await
            {
                let decoded = Deframer::new()
                    .feed(&message)
                    .expect("a media-link message");
                match decoded.as_slice() {
                    [MediaMsg::NeedNodes { count }] => return *count,
                    other => panic!("unexpected message to the producer: {other:?}"),
                }
            }
        }
    })
    .await
    .expect("the landing node asks the producer for nodes");
    assert!(
        (1..=2).contains(&count),
        "within the allowance of 3: {count}"
    );

    // Commands need the token, live node identities, and no duplicates.
    let unknown = Sr25519Keypair::from_seed(&[9; 32]).public();
    let refused = |r: psp_webrtc::Result<String>| match r {
        Err(Error::Signalling { status, reason }) => (status, reason),
        other => panic!("expected a refusal, got {other:?}"),
    };
    let b_line = format!("0x{}\n", hex::encode(b.public()));
    let (code, reason) = refused(
        psp_webrtc::command(&url_a, Route::Nodes, &id, &hex::encode([1u8; 32]), &b_line).await,
    );
    assert_eq!(code, 401, "{reason}");
    let (code, reason) = refused(
        psp_webrtc::command(&url_a, Route::Nodes, &id, &token, &hex::encode(unknown)).await,
    );
    assert_eq!(code, 400, "{reason}");
    assert!(reason.contains("not a live node identity"), "{reason}");
    let (code, reason) =
        refused(psp_webrtc::command(&url_a, Route::Nodes, &id, &token, "0xzz").await);
    assert_eq!(code, 400, "{reason}");

    let answer = psp_webrtc::command(&url_a, Route::Nodes, &id, &token, &b_line)
        .await
        .expect("B is added");
    assert_eq!(answer, "access points: 2");
    let (code, reason) =
        refused(psp_webrtc::command(&url_a, Route::Nodes, &id, &token, &b_line).await);
    assert_eq!(code, 409, "duplicate: {reason}");

    // The record is re-signed by A with both access points, for the DHT.
    let records = republished(&updates).await;
    let latest = records.last().expect("a record");
    assert_eq!(latest.access_points, nodes.to_vec());
    assert_eq!(latest.landing, a.public());
    assert!(psp_net::crypto::sr25519_verify(
        &a.public(),
        &latest.signing_message(),
        &latest.signature
    ));

    // B now serves the stream: its consumer gets the producer's frames byte-exact.
    let mut at_b = watch_at(&url_b, &id).await;
    let got = tokio::time::timeout(Duration::from_secs(30), async {
        let mut got = Vec::new();
        let mut i = 1_000_000u32;
        while got.len() < 10 {
            producer.send(frame(i)).await.expect("send");
            i += 1;
            let _ = tokio::time::timeout(Duration::from_millis(5), at_a.recv()).await;
            if let Ok(Some(m)) = tokio::time::timeout(Duration::from_millis(20), at_b.recv()).await
            {
                got.push(m);
            }
        }
        got
    })
    .await
    .expect("frames reach the consumer at B");
    for m in &got {
        let i = u32::from_be_bytes(m[..4].try_into().expect("4 bytes"));
        assert_eq!(*m, frame(i), "byte-exact at B");
    }

    // The producer ends the stream.
    let answer = psp_webrtc::command(&url_a, Route::End, &id, &token, "")
        .await
        .expect("the stream ends");
    assert_eq!(answer, "stream ended");
    let ended = republished(&updates).await;
    let ended = ended.last().expect("the ended record");
    assert!(
        ended.expires_at <= psp_net::driver::unix_now() + 1,
        "{ended:?}"
    );
    loop {
        if next_message(&mut producer).await.is_none() {
            break;
        }
    }
    loop {
        if next_message(&mut at_b).await.is_none() {
            break;
        }
    }
    let (code, reason) =
        status(WebRtcClient::connect_with(ClientConfig::publish(&token), &url_a, &id).await);
    assert_eq!(code, 404, "an ended stream takes no producer: {reason}");
    let (code, _) = refused(psp_webrtc::command(&url_a, Route::End, &id, &token, "").await);
    assert_eq!(code, 404);
}
