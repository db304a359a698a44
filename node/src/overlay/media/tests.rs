//! The media service in one process, over loopback: one node that is both a stream's landing
//! node and its only access point, so a producer's frames go producer → WHIP (token) →
//! landing relay → WHIP fan-out (record + signature) to itself → distribution relay → WHEP
//! consumer, through the same code a network of nodes runs. Then the refusals.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use psp_net::{
    crypto::Sr25519Keypair,
    driver::streams::CreatedStream,
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

async fn fixture(name: &str) -> Fixture {
    let key = Arc::new(Sr25519Keypair::from_seed(&[7; 32]));
    let node = key.public();
    let registry = StaticRegistry(HashMap::from([(
        node,
        IdentityStatus::Active(IdentityKind::Node),
    )]));
    let addr: Arc<OnceLock<SocketAddr>> = Arc::default();
    let resolved = addr.clone();
    let dir = tempfile_dir::Dir::new(name);
    let observe = dir.0.join("observe");
    let observer = Observer::open(Some(&observe), true).expect("observer");
    let media = MediaService::start(
        MediaConfig {
            bind: "127.0.0.1:0".parse().expect("addr"),
            public: "127.0.0.1:0".parse().expect("addr"),
            limits: Default::default(),
        },
        MediaDeps {
            key: key.clone(),
            registry: Arc::new(registry),
            resolve: Arc::new(move |n: &[u8; 32]| resolved.get().copied().filter(|_| *n == node)),
            observer,
            metrics: None,
        },
    )
    .await
    .expect("media service starts");
    let _ = addr.set(media.local_addr());
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
