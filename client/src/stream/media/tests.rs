use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use psp_primitives::rpc::NodeView;
use psp_primitives::{IdentityKind, IdentityStatus};
use psp_webrtc::{PeerId, PeerLabel, ServerConfig, ServerEvent, WebRtcServer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::mpsc;

use super::*;

const KEY: [u8; 16] = [7; 16];

/// Frames through memory: a bounded channel stands for the data channel.
struct Memory(mpsc::Sender<Vec<u8>>);

impl FrameSink for Memory {
    fn send_frame(&mut self, frame: Vec<u8>) -> impl Future<Output = psp_webrtc::Result<()>> {
        let tx = self.0.clone();
        async move { tx.send(frame).await.map_err(|_| psp_webrtc::Error::Closed) }
    }

    async fn next_message(&mut self) -> Vec<u8> {
        std::future::pending().await
    }
}

impl FrameStream for mpsc::Receiver<Vec<u8>> {
    fn next_frame(&mut self) -> impl Future<Output = Option<Vec<u8>>> {
        self.recv()
    }
}

fn watch_all(key: Option<&[u8]>, frames: &[Vec<u8>]) -> WatchReport {
    let mut watcher = Watcher::new("ap".into(), key).expect("watcher");
    for f in frames {
        watcher.frame(f);
    }
    watcher.report().clone()
}

#[test]
fn media_pattern_frames_round_trip_and_are_never_clear() {
    let mut publisher = Publisher::new(&KEY, Source::Pattern { frame_bytes: 1_200 }).unwrap();
    let frames: Vec<Vec<u8>> = (0..50).map(|_| publisher.next_frame().unwrap()).collect();
    assert_eq!(publisher.frames(), 50);
    assert!(frames.iter().all(|f| (1_217..=1_218).contains(&f.len())));
    assert_eq!(frames[0].len(), 1 + 1_200 + 16);

    let report = watch_all(Some(&KEY), &frames);
    assert_eq!(
        (report.frames, report.decrypted, report.pattern_ok),
        (50, 50, 50)
    );
    assert_eq!((report.undecryptable, report.clear_pattern_frames), (0, 0));
    assert_eq!((report.first_index, report.last_index), (Some(0), Some(49)));
    assert_eq!(
        report.bytes,
        frames.iter().map(|f| f.len() as u64).sum::<u64>()
    );

    let wrong = watch_all(Some(&[8; 16]), &frames);
    assert_eq!((wrong.decrypted, wrong.undecryptable), (0, 50));
    assert_eq!(wrong.first_index, None);

    let keyless = watch_all(None, &frames);
    assert_eq!((keyless.decrypted, keyless.clear_pattern_frames), (0, 0));
    assert_eq!(
        (keyless.first_index, keyless.last_index),
        (Some(0), Some(49))
    );

    // A frame sent in clear is caught; a damaged one does not decrypt.
    let mut damaged = frames[3].clone();
    damaged[10] ^= 1;
    let report = watch_all(Some(&KEY), &[test_pattern(0, 100), damaged]);
    assert_eq!((report.clear_pattern_frames, report.undecryptable), (1, 2));

    let json = serde_json::to_value(watch_all(None, &frames[..1])).unwrap();
    for field in [
        "accessPoint",
        "frames",
        "bytes",
        "decrypted",
        "patternOk",
        "undecryptable",
        "clearPatternFrames",
        "firstIndex",
        "lastIndex",
    ] {
        assert!(json.get(field).is_some(), "{field} in {json}");
    }
}

#[test]
fn media_file_frames_are_chunks_and_sizes_are_bounded() {
    let data: Vec<u8> = (0..40_000u32).map(|i| i as u8).collect();
    let mut publisher = Publisher::new(&KEY, Source::File { data: data.clone() }).unwrap();
    let frames: Vec<Vec<u8>> = std::iter::from_fn(|| publisher.next_frame()).collect();
    assert_eq!(frames.len(), 3);
    let mut context = Context::new();
    context.add_key(KID, &KEY, KeyUsage::Decrypt).unwrap();
    let joined: Vec<u8> = frames
        .iter()
        .flat_map(|f| context.decrypt(f, &[]).unwrap().plaintext)
        .collect();
    assert_eq!(joined, data);

    for bad in [8, MAX_FRAME_BYTES + 1] {
        assert!(Publisher::new(&KEY, Source::Pattern { frame_bytes: bad }).is_err());
    }
    let mut biggest = Publisher::new(
        &KEY,
        Source::Pattern {
            frame_bytes: MAX_FRAME_BYTES,
        },
    )
    .unwrap();
    assert!(biggest.next_frame().unwrap().len() <= MAX_MESSAGE_BYTES);
    assert!(Publisher::new(&[1; 15], Source::Pattern { frame_bytes: 9 }).is_err());
}

#[test]
fn media_keys_and_tokens_parse() {
    let key = generate_stream_key();
    assert_ne!(key, generate_stream_key());
    let parsed = parse_stream_key(&hex0x(&key), "--key").unwrap();
    assert_eq!(&parsed[..], &key);
    assert_eq!(
        &parse_stream_key(&hex::encode(key), "--key").unwrap()[..],
        &key
    );
    let short = parse_stream_key("00ff", "--key").unwrap_err().to_string();
    assert!(short.contains("32 hex digits"), "{short}");
    assert!(parse_stream_key(&"ab".repeat(65), "--key").is_err());
    assert!(parse_stream_key("zz", "--key").is_err());

    let spend_id = psp_net::receipts::SpendId([3; 32]);
    let token = publish_token(&spend_id);
    assert_eq!(path_hex(&token).len(), 64);
    assert!(!path_hex(&token).starts_with("0x"));
}

fn node_view(addresses: &[&[u8]]) -> IdentityView {
    IdentityView {
        id: "n".into(),
        owner: "o".into(),
        kind: IdentityKind::Node,
        namespace: "peerstream".into(),
        app_namespace: "node".into(),
        key: hex0x(&[1; 32]),
        x25519: hex0x(&[2; 32]),
        node: Some(NodeView {
            peer_id: "0x00".into(),
            addresses: addresses.iter().map(|a| hex0x(a)).collect(),
        }),
        deposit: "0".into(),
        registered_at: 1,
        rotations: 0,
        status: IdentityStatus::Active,
    }
}

#[test]
fn media_urls_come_from_the_second_address() {
    let overlay: &[u8] = &[0x04, 127, 0, 0, 1, 0x06, 0x76, 0xac];
    let view = node_view(&[overlay, b"/ip4/10.0.0.2/tcp/30445/http"]);
    assert_eq!(media_url(&[1; 32], &view).unwrap(), "http://10.0.0.2:30445");
    for (view, needle) in [
        (node_view(&[overlay]), "second"),
        (node_view(&[overlay, &[0xff, 0xfe]]), "UTF-8"),
        (node_view(&[overlay, b"/ip4/1.2.3.4/tcp/1"]), "not /ip4"),
        (
            IdentityView {
                node: None,
                ..node_view(&[])
            },
            "not a node",
        ),
    ] {
        let e = media_url(&[1; 32], &view).unwrap_err();
        assert!(matches!(e, StreamClientError::NoMediaService { .. }));
        assert!(e.to_string().contains(needle), "{e}");
    }
}

// Real time (tokio's paused clock needs its `test-util` feature): about 4.5 s.
#[tokio::test]
async fn media_publish_paces_frames_and_watch_stops_at_its_limit() {
    let (tx, mut rx) = mpsc::channel(1_000);
    let mut publisher = Publisher::new(&KEY, Source::Pattern { frame_bytes: 100 }).unwrap();
    let options = PublishOptions {
        fps: 25,
        duration: Duration::from_secs(3),
    };
    let started = Instant::now();
    let mut lines = Vec::new();
    let sent = publish(&mut Memory(tx.clone()), &mut publisher, options, |p| {
        lines.push(p)
    })
    .await
    .unwrap();
    assert_eq!(sent.frames, 75);
    // Counters from 8 on take a byte of their own in the header.
    assert_eq!(sent.bytes, 75 * (1 + 100 + 16) + (75 - 8));
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(2_900) && took < Duration::from_millis(4_500),
        "{took:?}"
    );
    assert!((2..=3).contains(&lines.len()), "{lines:?}");
    assert!(lines.windows(2).all(|w| w[0].frames < w[1].frames));

    let mut watcher = Watcher::new("ap".into(), Some(&KEY)).unwrap();
    let limit = WatchLimit {
        frames: Some(40),
        duration: None,
    };
    watch(&mut rx, &mut watcher, limit, |_| {}).await;
    assert_eq!(watcher.report().frames, 40);
    assert_eq!(watcher.report().pattern_ok, 40);

    // The rest, then nothing: the duration ends the watch.
    let limit = WatchLimit {
        frames: None,
        duration: Some(Duration::from_millis(1_500)),
    };
    let mut reports = 0;
    let started = Instant::now();
    watch(&mut rx, &mut watcher, limit, |_| reports += 1).await;
    assert!(started.elapsed() >= Duration::from_millis(1_500));
    assert_eq!(watcher.report().frames, 75);
    assert_eq!(watcher.report().last_index, Some(74));
    assert_eq!(reports, 1);

    // A closed transport ends it too.
    drop(tx);
    watch(&mut rx, &mut watcher, WatchLimit::default(), |_| {}).await;
}

/// A media node in one process: a WebRTC server whose signalling takes `POST /whip/<id>` with
/// the right bearer token and `POST /whep/<id>`, relaying what the publisher sends to every
/// watcher, as a landing node and an access point in one.
async fn relay_node(stream: &str, token: &str) -> String {
    let (server, task) = WebRtcServer::bind(ServerConfig {
        bind: "127.0.0.1:0".parse().unwrap(),
        peer_queue_messages: 1_024,
        peer_queue_bytes: 32 << 20,
        ..ServerConfig::default()
    })
    .await
    .unwrap();
    tokio::spawn(task.run());
    let mut events = server.events().unwrap();
    let watchers: Arc<Mutex<HashSet<PeerId>>> = Arc::default();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let (whip, whep) = (format!("/whip/{stream}"), format!("/whep/{stream}"));
    let bearer = format!("authorization: bearer {token}");
    {
        let (server, watchers) = (server.clone(), watchers.clone());
        tokio::spawn(async move {
            while let Ok((mut tcp, _)) = listener.accept().await {
                let mut buf = Vec::new();
                let (head, body) = loop {
                    let mut chunk = [0u8; 4096];
                    let n = tcp.read(&mut chunk).await.unwrap();
                    buf.extend_from_slice(&chunk[..n]);
                    let text = String::from_utf8_lossy(&buf).to_string();
                    if let Some((head, body)) = text.split_once("\r\n\r\n") {
                        let len: usize = head
                            .lines()
                            .find_map(|l| {
                                l.to_ascii_lowercase()
                                    .strip_prefix("content-length: ")
                                    .map(|v| v.parse().unwrap())
                            })
                            .unwrap();
                        if body.len() >= len {
                            break (head.to_ascii_lowercase(), body.to_owned());
                        }
                    }
                };
                let path = head.split(' ').nth(1).unwrap_or("").to_owned();
                let status = if path == whip && !head.lines().any(|l| l == bearer) {
                    Some("401 Unauthorized")
                } else if path != whip && path != whep {
                    Some("404 Not Found")
                } else {
                    None
                };
                let (status, answer) = match status {
                    Some(status) => (status, "refused".to_owned()),
                    None => {
                        let (peer, answer) = server
                            .accept_offer(body, PeerLabel(path.clone()))
                            .await
                            .unwrap();
                        if path == whep {
                            watchers.lock().unwrap().insert(peer);
                        }
                        ("201 Created", answer)
                    }
                };
                let response = format!(
                    "HTTP/1.1 {status}\r\nContent-Type: application/sdp\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{answer}",
                    answer.len()
                );
                let _ = tcp.write_all(response.as_bytes()).await;
            }
        });
    }
    tokio::spawn(async move {
        while let Some(event) = events.recv().await {
            if let ServerEvent::Data { peer, bytes } = event {
                let to: Vec<PeerId> = watchers.lock().unwrap().iter().copied().collect();
                for w in to.into_iter().filter(|w| *w != peer) {
                    let _ = server.send(w, bytes.clone()).await;
                }
            }
        }
    });
    url
}

#[tokio::test]
async fn media_published_frames_reach_a_watcher_over_webrtc() {
    let stream_id = StreamId([5; 32]);
    let token = publish_token(&psp_net::receipts::SpendId([6; 32]));
    let url = relay_node(&path_hex(&stream_id.0), &path_hex(&token)).await;
    let node = [9; 32];

    let refused = connect(&node, &url, &stream_id, Credentials::Publish(&[0; 32]))
        .await
        .err()
        .expect("a wrong token is refused");
    let text = refused.to_string();
    assert!(
        text.contains("401") && text.contains("publishToken") && text.contains(&url),
        "{text}"
    );
    let unknown = connect(
        &node,
        &url,
        &StreamId([1; 32]),
        Credentials::Watch(Vec::new()),
    )
    .await
    .err()
    .expect("another stream is unknown");
    assert!(unknown.to_string().contains("--access-point"), "{unknown}");

    let mut viewer = connect(&node, &url, &stream_id, Credentials::Watch(Vec::new()))
        .await
        .unwrap();
    let mut producer = connect(&node, &url, &stream_id, Credentials::Publish(&token))
        .await
        .unwrap();
    let mut publisher = Publisher::new(&KEY, Source::Pattern { frame_bytes: 1_200 }).unwrap();
    let options = PublishOptions {
        fps: 50,
        duration: Duration::from_secs(1),
    };
    let sent = publish(&mut producer, &mut publisher, options, |_| {})
        .await
        .unwrap();
    assert_eq!(sent.frames, 50);

    let mut watcher = Watcher::new(hex0x(&node), Some(&KEY)).unwrap();
    let limit = WatchLimit {
        frames: Some(50),
        duration: Some(Duration::from_secs(20)),
    };
    watch(&mut viewer, &mut watcher, limit, |_| {}).await;
    let report = watcher.report();
    assert_eq!(
        (report.frames, report.decrypted, report.pattern_ok),
        (50, 50, 50),
        "{report:?}"
    );
    assert_eq!((report.first_index, report.last_index), (Some(0), Some(49)));
    assert_eq!(report.bytes, sent.bytes);
    producer.close().await;
    viewer.close().await;
}

#[test]
fn media_an_ivf_file_is_sent_frame_by_frame_and_the_digest_matches_the_source() {
    let clip = include_bytes!("../../../../tests/fixtures/vp8-160x120-100f.ivf").to_vec();
    let (source, video) = Source::from_file(clip).expect("an IVF file");
    let video = video.expect("recognised as video");
    let mut publisher = Publisher::new(&KEY, source).expect("publisher");
    let mut sent = Vec::new();
    while let Some(frame) = publisher.next_frame() {
        sent.push(frame);
    }
    assert_eq!(
        sent.len(),
        video.frames.len(),
        "one stream frame per video frame, once"
    );
    let report = watch_all(Some(&KEY), &sent[10..]);
    assert_eq!(report.decrypted, 90);
    let expected = frames_digest((10u64..).zip(video.frames[10..].iter().map(Vec::as_slice)));
    assert_eq!(report.digest, expected, "byte-exact from a late join on");
    assert_ne!(report.digest, frames_digest([]));
    // Any other file is sent in chunks.
    let (source, video) = Source::from_file(vec![7; 40_000]).expect("a file");
    assert!(video.is_none());
    assert!(matches!(source, Source::File { .. }));
    // A broken IVF file is refused, not sent as bytes.
    let mut broken = include_bytes!("../../../../tests/fixtures/vp8-160x120-100f.ivf").to_vec();
    broken.truncate(100);
    assert!(Source::from_file(broken).is_err());
}
