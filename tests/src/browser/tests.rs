use std::time::Duration;

use psp_client::stream::media::psp_webrtc::{PeerLabel, ServerConfig, ServerEvent, WebRtcServer};
use psp_client::stream::media::{Publisher, Source, STREAM_KEY_LEN};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use super::*;

/// The page every distribution node serves at `/watch/<stream-id>`.
const WATCH_PAGE: &str = include_str!("../../../psp-net/webrtc/static/watch.html");

async fn raw(url: &str, request: String) -> String {
    let authority = url
        .strip_prefix("http://")
        .and_then(|r| r.split('/').next())
        .unwrap();
    let mut tcp = TcpStream::connect(authority).await.unwrap();
    tcp.write_all(request.as_bytes()).await.unwrap();
    let mut answer = String::new();
    tcp.read_to_string(&mut answer).await.unwrap();
    answer
}

#[tokio::test]
async fn report_server_takes_posted_json() {
    let (url, mut reports) = ReportServer::bind().await.unwrap();
    let body = r#"{"frames":3,"state":"open"}"#;
    let answer = raw(
        &url,
        format!(
            "POST /report HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\n\
             Content-Length: {}\r\n\r\n{body}",
            body.len()
        ),
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 204"), "{answer}");
    assert!(
        answer.contains("Access-Control-Allow-Origin: *"),
        "{answer}"
    );
    let report = next_report(&mut reports, Duration::from_secs(5), |_| true)
        .await
        .unwrap();
    assert_eq!(report, json!({"frames": 3, "state": "open"}));

    // Too large, not JSON, not a POST: answered, never reported.
    let big = raw(
        &url,
        format!(
            "POST / HTTP/1.1\r\nContent-Length: {}\r\n\r\n",
            MAX_REPORT_BYTES + 1
        ),
    )
    .await;
    assert!(big.starts_with("HTTP/1.1 413"), "{big}");
    let junk = raw(
        &url,
        "POST / HTTP/1.1\r\nContent-Length: 3\r\n\r\n{{{".into(),
    )
    .await;
    assert!(junk.starts_with("HTTP/1.1 204"), "{junk}");
    let options = raw(&url, "OPTIONS /report HTTP/1.1\r\n\r\n".into()).await;
    assert!(options.starts_with("HTTP/1.1 204"), "{options}");
    let body = r#"{"n":2}"#;
    raw(
        &url,
        format!("POST /x HTTP/1.1\r\nContent-Length: 7\r\n\r\n{body}"),
    )
    .await;
    let next = next_report(&mut reports, Duration::from_secs(5), |_| true)
        .await
        .unwrap();
    assert_eq!(next, json!({"n": 2}));
    assert!(
        next_report(&mut reports, Duration::from_millis(200), |_| true)
            .await
            .is_err()
    );
    assert_eq!(percent_encode("http://a:1/r"), "http%3A%2F%2Fa%3A1%2Fr");
}

/// Headless Chromium runs here and reaches the report server (fails when Chromium is missing:
/// `scripts/setup.sh` installs it). The page comes from loopback too: Chromium refuses
/// requests from a `data:` page (a public, opaque origin) to loopback (Local Network Access).
#[tokio::test]
async fn chromium_runs_headless_and_reports() {
    let (url, mut reports) = ReportServer::bind().await.unwrap();
    let page = format!(
        "<!doctype html><script>fetch({url:?}, {{method: 'POST', mode: 'no-cors', \
         headers: {{'Content-Type': 'text/plain'}}, \
         body: JSON.stringify({{ua: navigator.userAgent, rtc: typeof RTCPeerConnection, \
         subtle: typeof crypto.subtle}})}})</script>"
    );
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let page_url = format!("http://{}/", listener.local_addr().unwrap());
    tokio::spawn(async move {
        while let Ok((mut tcp, _)) = listener.accept().await {
            let mut head = [0u8; 4096];
            let _ = tcp.read(&mut head).await;
            let response = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: {}\r\n\
                 Connection: close\r\n\r\n{page}",
                page.len()
            );
            let _ = tcp.write_all(response.as_bytes()).await;
        }
    });
    let mut browser = Browser::open(&page_url).unwrap();
    let report = next_report(&mut reports, Duration::from_secs(60), |_| true).await;
    let report = report.unwrap_or_else(|e| panic!("{e}\nchromium:\n{}", browser.log_tail(30)));
    assert!(
        report["ua"].as_str().unwrap_or("").contains("Chrome"),
        "{report}"
    );
    assert_eq!(report["rtc"], "function", "{report}");
    // Loopback pages are secure contexts: WebCrypto is there.
    assert_eq!(report["subtle"], "object", "{report}");
    assert!(browser.is_running());
}

/// The watch page's WebCrypto SFrame decryption against psp-media's encryption: an
/// in-process WebRTC server serves the page and, once the page's data channel opens, sends it
/// 60 test-pattern frames encrypted by `psp stream publish`'s code, then one forged frame.
#[tokio::test]
async fn watch_page_decrypts_sframe_in_chromium() {
    const FRAMES: u64 = 60;
    let stream = "0505050505050505050505050505050505050505050505050505050505050505";
    let key = [0x42u8; STREAM_KEY_LEN];
    let (server, task) = WebRtcServer::bind(ServerConfig::default()).await.unwrap();
    tokio::spawn(task.run());
    let mut events = server.events().unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let whep = format!("/whep/{stream}");
    let offers = server.clone();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            tokio::spawn(signal(tcp, offers.clone(), whep.clone()));
        }
    });
    let frames = server.clone();
    tokio::spawn(async move {
        while let Some(event) = events.recv().await {
            if let ServerEvent::ChannelOpen { peer, .. } = event {
                let mut publisher =
                    Publisher::new(&key, Source::Pattern { frame_bytes: 1_000 }).unwrap();
                for _ in 0..FRAMES {
                    let frame = publisher.next_frame().unwrap();
                    frames.send(peer, frame).await.unwrap();
                }
                let mut forged = publisher.next_frame().unwrap();
                forged[5] ^= 1;
                frames.send(peer, forged).await.unwrap();
            }
        }
    });

    let (report_url, mut reports) = ReportServer::bind().await.unwrap();
    let page = format!(
        "{base}/watch/{stream}#key={}&report={}",
        hex_of(&key),
        percent_encode(&report_url)
    );
    let browser = Browser::open(&page).unwrap();
    let report = next_report(&mut reports, Duration::from_secs(60), |r| {
        r["frames"] == FRAMES + 1 || r["state"] == "failed"
    })
    .await
    .unwrap_or_else(|e| panic!("{e}\nchromium:\n{}", browser.log_tail(30)));
    assert_eq!(report["state"], "open", "{report}");
    assert_eq!(report["decrypted"], FRAMES, "{report}");
    assert_eq!(report["patternOk"], FRAMES, "{report}");
    assert_eq!(report["undecryptable"], 1, "{report}");
    assert_eq!(
        (report["firstIndex"].clone(), report["lastIndex"].clone()),
        (json!(0), json!(FRAMES - 1)),
        "{report}"
    );
}

fn hex_of(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// One signalling request: `GET /watch/...` gets the page, `POST <whep>` an SDP answer.
async fn signal(mut tcp: TcpStream, server: WebRtcServer, whep: String) {
    let mut buf = Vec::new();
    let (head, body) = loop {
        let mut chunk = [0u8; 4096];
        let Ok(n) = tcp.read(&mut chunk).await else {
            return;
        };
        if n == 0 {
            return;
        }
        buf.extend_from_slice(&chunk[..n]);
        let text = String::from_utf8_lossy(&buf).to_string();
        if let Some((head, body)) = text.split_once("\r\n\r\n") {
            let len = head
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase()
                        .strip_prefix("content-length:")
                        .map(|v| v.trim().parse::<usize>().unwrap_or(0))
                })
                .unwrap_or(0);
            if body.len() >= len {
                break (head.to_owned(), body.to_owned());
            }
        }
    };
    let mut words = head.split(' ');
    let (method, path) = (words.next().unwrap_or(""), words.next().unwrap_or(""));
    let (status, kind, content) = if method == "GET" && path.starts_with("/watch/") {
        ("200 OK", "text/html; charset=utf-8", WATCH_PAGE.to_owned())
    } else if method == "POST" && path == whep {
        match server.accept_offer(body, PeerLabel(path.into())).await {
            Ok((_, answer)) => ("201 Created", "application/sdp", answer),
            Err(e) => ("400 Bad Request", "text/plain", e.to_string()),
        }
    } else {
        ("404 Not Found", "text/plain", "no such route".into())
    };
    let response = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {kind}\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n{content}",
        content.len()
    );
    let _ = tcp.write_all(response.as_bytes()).await;
}
