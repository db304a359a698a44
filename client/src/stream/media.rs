//! A stream's media, the producer's and the consumer's side (issue 13, points 5, 7, 8):
//! publish SFrame-encrypted frames into a stream at its landing node, watch them at an access
//! point.
//!
//! - Where: every node lists its media service on chain as the *second* address of its
//!   identity, the UTF-8 text `/ip4/<ip>/tcp/<port>/http` ([`media_url`],
//!   [`Chain::media_url`]); signalling is HTTP at that address, WebRTC's UDP the same port.
//! - Publish: `POST /whip/<stream id>` with `Authorization: Bearer <publish token>` (the
//!   token [`publish_token_of`] the producer's receipt), then one SFrame frame per data-channel
//!   message ([`Publisher`], [`publish`]).
//! - Watch: `POST /whep/<stream id>` at an access point, then every message is one frame
//!   ([`Watcher`], [`watch`]).
//! - Frames: SFrame (RFC 9605, `psp-media`), KID [`KID`], CTR the frame's index from 0, no
//!   metadata, under a 16-byte stream key the producer made ([`generate_stream_key`]) and
//!   hands to her consumers herself (the nodes never see it). The test pattern
//!   (`psp_media::pattern`) lets a consumer check every frame it decrypts without knowing the
//!   producer's settings.
//!
//! Publishing and watching are written against [`FrameSink`] and [`FrameStream`], which
//! [`WebRtcClient`] implements, so the tests drive them through memory or an in-process
//! WebRTC server.

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The crates this module is built on, for callers that drive the media path without a
/// node (the browser tests serve frames from an in-process WebRTC server).
pub use {psp_media, psp_webrtc};

use psp_media::pattern::{check_test_pattern, test_pattern};
use psp_media::sframe::{self, Context, Header, KeyUsage};
use psp_net::receipts::Receipt;
use psp_net::stream::record::{publish_token, StreamId};
use psp_primitives::rpc::IdentityView;
use psp_webrtc::{ClientConfig, WebRtcClient};
use rand::RngCore;
use serde::Serialize;
use sha2::{Digest, Sha256};
use tokio::time::{Instant, MissedTickBehavior};
use zeroize::Zeroizing;

use super::StreamClientError;
use crate::chain::Chain;
use crate::{hex0x, parse_hex_vec, Error};

/// The SFrame key id every frame is sent under: one producer, one key per stream.
pub const KID: u64 = 0;
/// Bytes of a stream key the producer makes: AES-128's key length, SFrame's shortest base key.
pub const STREAM_KEY_LEN: usize = 16;
/// Largest data-channel message: what every WebRTC stack takes without `a=max-message-size`.
pub const MAX_MESSAGE_BYTES: usize = 64 * 1024;
/// Largest frame plaintext: a message less the longest SFrame header and the tag
/// (64 KiB − 17 − 16).
pub const MAX_FRAME_BYTES: usize = MAX_MESSAGE_BYTES - sframe::MAX_HEADER_LEN - sframe::TAG_LEN;
/// Bytes of a file sent per frame.
pub const FILE_CHUNK_BYTES: usize = 16 * 1024;
/// How long a publisher waits after its last frame before closing, so the data channel
/// drains what it buffered (a DTLS close drops what is still queued).
pub const LINGER: Duration = Duration::from_secs(1);

/// A fresh random stream key.
pub fn generate_stream_key() -> [u8; STREAM_KEY_LEN] {
    let mut key = [0u8; STREAM_KEY_LEN];
    rand::rngs::OsRng.fill_bytes(&mut key);
    key
}

/// Parses a stream key: hex (`0x` optional) of 16 to 64 bytes (SFrame's base key bounds).
pub fn parse_stream_key(text: &str, what: &'static str) -> crate::Result<Zeroizing<Vec<u8>>> {
    let key = Zeroizing::new(parse_hex_vec(text, what)?);
    if !(sframe::MIN_BASE_KEY_LEN..=sframe::MAX_BASE_KEY_LEN).contains(&key.len()) {
        return Err(Error::InvalidInput {
            what,
            reason: format!(
                "a stream key is {}..={} bytes ({} hex digits as `psp stream create` prints it), not {}",
                sframe::MIN_BASE_KEY_LEN,
                sframe::MAX_BASE_KEY_LEN,
                STREAM_KEY_LEN * 2,
                key.len()
            ),
        });
    }
    Ok(key)
}

/// The publish token of a receipt: what the landing node expects from its producer.
pub fn publish_token_of(receipt: &Receipt) -> [u8; 32] {
    publish_token(&receipt.spend_id)
}

/// A stream id or token as the media service's paths and headers take it: 64 hex digits,
/// lowercase, no `0x`.
pub fn path_hex(bytes: &[u8; 32]) -> String {
    hex::encode(bytes)
}

/// The signalling URL (`http://ip:port`) of the media service a node identity announces: the
/// UTF-8 text of its second address. `node` names the node in errors.
pub fn media_url(node: &[u8; 32], view: &IdentityView) -> Result<String, StreamClientError> {
    let none = |reason: String| StreamClientError::NoMediaService {
        node: hex0x(node),
        reason,
    };
    let details = view
        .node
        .as_ref()
        .ok_or_else(|| none("the identity is not a node's".into()))?;
    let second = details.addresses.get(1).ok_or_else(|| {
        none(format!(
            "it lists {} address(es), the media service is the second",
            details.addresses.len()
        ))
    })?;
    let bytes = parse_hex_vec(second, "identity address")
        .map_err(|e| none(format!("its second address: {e}")))?;
    let text = String::from_utf8(bytes)
        .map_err(|_| none("its second address is not UTF-8 text".into()))?;
    psp_webrtc::address::media_url(&text).ok_or_else(|| {
        none(format!(
            "its second address {text:?} is not /ip4|ip6/<ip>/tcp/<port>/http"
        ))
    })
}

impl Chain {
    /// The signalling URL of `node`'s media service, from its identity at the best block
    /// ([`media_url`]).
    pub async fn media_url(&self, node: &[u8; 32]) -> Result<String, StreamClientError> {
        let view = self.identity_by_key(node, None).await?.ok_or_else(|| {
            StreamClientError::NoMediaService {
                node: hex0x(node),
                reason: "no identity is registered under that key".into(),
            }
        })?;
        media_url(node, &view)
    }
}

/// Where frames go: a data channel to the landing node, or memory in tests.
pub trait FrameSink {
    /// Sends one frame; waits while the transport's buffer is full.
    fn send_frame(&mut self, frame: Vec<u8>) -> impl Future<Output = psp_webrtc::Result<()>>;

    /// The next message the landing node sends back (a request for distribution nodes);
    /// pending for ever when there is none (or the transport closed: sending says so).
    fn next_message(&mut self) -> impl Future<Output = Vec<u8>>;
}

/// Where frames come from: a data channel from an access point, or memory in tests.
pub trait FrameStream {
    /// The next frame; `None` once the transport closed.
    fn next_frame(&mut self) -> impl Future<Output = Option<Vec<u8>>>;
}

impl FrameSink for WebRtcClient {
    fn send_frame(&mut self, frame: Vec<u8>) -> impl Future<Output = psp_webrtc::Result<()>> {
        self.send(frame)
    }

    async fn next_message(&mut self) -> Vec<u8> {
        match self.recv().await {
            Some(message) => message,
            None => std::future::pending().await,
        }
    }
}

impl FrameStream for WebRtcClient {
    fn next_frame(&mut self) -> impl Future<Output = Option<Vec<u8>>> {
        self.recv()
    }
}

/// What a publisher sends.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    /// The test pattern, frames of this many bytes, for ever.
    Pattern {
        /// Plaintext bytes per frame (9 ..= [`MAX_FRAME_BYTES`]).
        frame_bytes: usize,
    },
    /// A file's bytes, [`FILE_CHUNK_BYTES`] per frame, once.
    File {
        /// The contents.
        data: Vec<u8>,
    },
    /// Encoded video frames (an IVF file's, [`super::ivf`]), one per stream frame, once.
    Video {
        /// The frames, each at most [`MAX_FRAME_BYTES`].
        frames: Vec<Vec<u8>>,
    },
}

impl Source {
    /// What `--file` sends: an IVF file's encoded frames (and its frame rate), or the bytes of
    /// any other file.
    pub fn from_file(data: Vec<u8>) -> crate::Result<(Self, Option<super::ivf::Ivf>)> {
        if !super::ivf::is_ivf(&data) {
            return Ok((Source::File { data }, None));
        }
        let ivf = super::ivf::Ivf::parse(&data, MAX_FRAME_BYTES)?;
        let frames = ivf.frames.clone();
        Ok((Source::Video { frames }, Some(ivf)))
    }
}

/// Makes a stream's encrypted frames, in order.
pub struct Publisher {
    context: Context,
    source: Source,
    next: u64,
}

impl Publisher {
    /// A publisher of `source` under the stream key `key`.
    pub fn new(key: &[u8], source: Source) -> crate::Result<Self> {
        if let Source::Pattern { frame_bytes } = source {
            let min = psp_media::pattern::MIN_PATTERN_LEN;
            if !(min..=MAX_FRAME_BYTES).contains(&frame_bytes) {
                return Err(Error::InvalidInput {
                    what: "--frame-bytes",
                    reason: format!("{frame_bytes} is not in {min}..={MAX_FRAME_BYTES}"),
                });
            }
        }
        let mut context = Context::new();
        context
            .add_key(KID, key, KeyUsage::Encrypt)
            .map_err(|e| Error::InvalidInput {
                what: "--key",
                reason: e.to_string(),
            })?;
        Ok(Self {
            context,
            source,
            next: 0,
        })
    }

    /// Frames made so far.
    pub fn frames(&self) -> u64 {
        self.next
    }

    /// The next SFrame ciphertext, `None` at the end of a file.
    pub fn next_frame(&mut self) -> Option<Vec<u8>> {
        let index = self.next;
        let plaintext = match &self.source {
            Source::Pattern { frame_bytes } => test_pattern(index, *frame_bytes),
            Source::File { data } => {
                let start = usize::try_from(index).ok()?.checked_mul(FILE_CHUNK_BYTES)?;
                if start >= data.len() {
                    return None;
                }
                data[start..(start + FILE_CHUNK_BYTES).min(data.len())].to_vec()
            }
            Source::Video { frames } => frames.get(usize::try_from(index).ok()?)?.clone(),
        };
        // The frame is within MAX_FRAME_BYTES and the counter strictly increases, so the only
        // refusal left is a counter at 2^64 − 1: the end of the stream.
        let frame = self.context.encrypt(KID, index, &[], &plaintext).ok()?;
        self.next += 1;
        Some(frame)
    }
}

/// A file of `<frame index> <unix microseconds>` lines, one per frame a producer sent or a
/// consumer decrypted (`--frame-log`): two of them give each frame's latency from the
/// producer to the consumer (on one machine, one clock).
pub struct FrameLog(std::io::BufWriter<std::fs::File>);

impl FrameLog {
    /// Creates (or truncates) the log at `path`.
    pub fn create(path: &std::path::Path) -> crate::Result<Self> {
        std::fs::File::create(path)
            .map(|f| Self(std::io::BufWriter::new(f)))
            .map_err(|e| Error::InvalidInput {
                what: "--frame-log",
                reason: format!("{}: {e}", path.display()),
            })
    }

    /// Records frame `index` now. A failed write is ignored (the log is a measurement aid).
    pub fn record(&mut self, index: u64) {
        use std::io::Write;
        let micros = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_micros())
            .unwrap_or(0);
        let _ = writeln!(self.0, "{index} {micros}");
    }
}

impl Drop for FrameLog {
    fn drop(&mut self) {
        use std::io::Write;
        let _ = self.0.flush();
    }
}

/// How fast and how long [`publish`] sends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PublishOptions {
    /// Frames per second (at least 1).
    pub fps: u32,
    /// How long to send.
    pub duration: Duration,
}

/// Frames and bytes sent so far.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct PublishProgress {
    /// Frames sent.
    pub frames: u64,
    /// Their bytes, SFrame headers and tags included.
    pub bytes: u64,
}

/// Sends `publisher`'s frames into `sink` at `options.fps` for `options.duration` (or to the
/// end of a file); calls `progress` once a second. A frame the transport takes late is sent
/// late, never dropped: the next ones follow at the rate, without catching up in a burst.
pub async fn publish<S: FrameSink>(
    sink: &mut S,
    publisher: &mut Publisher,
    options: PublishOptions,
    progress: impl FnMut(PublishProgress),
) -> Result<PublishProgress, psp_webrtc::Error> {
    publish_logged(sink, publisher, options, None, progress, |_| {}).await
}

/// [`publish`], recording each frame's index and send time in `log`, and handing what the
/// landing node sends back to `on_message`.
pub async fn publish_logged<S: FrameSink>(
    sink: &mut S,
    publisher: &mut Publisher,
    options: PublishOptions,
    mut log: Option<&mut FrameLog>,
    mut progress: impl FnMut(PublishProgress),
    mut on_message: impl FnMut(Vec<u8>),
) -> Result<PublishProgress, psp_webrtc::Error> {
    let fps = options.fps.max(1);
    let total = options.duration.as_millis() * u128::from(fps) / 1000;
    let mut ticks = tokio::time::interval(Duration::from_secs(1) / fps);
    ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let start = Instant::now();
    let mut next_report = start + Duration::from_secs(1);
    let mut sent = PublishProgress::default();
    while u128::from(sent.frames) < total {
        tokio::select! {
            _ = ticks.tick() => {}
            message = sink.next_message() => {
                on_message(message);
                continue;
            }
        }
        let Some(frame) = publisher.next_frame() else {
            break;
        };
        let len = frame.len() as u64;
        sink.send_frame(frame).await?;
        if let Some(log) = log.as_deref_mut() {
            log.record(sent.frames);
        }
        sent.frames += 1;
        sent.bytes += len;
        if Instant::now() >= next_report {
            progress(sent);
            next_report += Duration::from_secs(1);
        }
    }
    Ok(sent)
}

/// What a consumer saw, as `psp stream watch` prints it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WatchReport {
    /// The access point watched, hex.
    pub access_point: String,
    /// Frames received.
    pub frames: u64,
    /// Their bytes.
    pub bytes: u64,
    /// Frames that decrypted under the stream key.
    pub decrypted: u64,
    /// Decrypted frames that are the test pattern's frame of their SFrame counter.
    pub pattern_ok: u64,
    /// Frames that did not decrypt (with a key) or whose header did not parse.
    pub undecryptable: u64,
    /// Frames that are a test-pattern frame as received, in clear: must stay 0, the media is
    /// encrypted end to end.
    pub clear_pattern_frames: u64,
    /// The SFrame counter (frame index) of the first frame counted (decrypted with a key,
    /// with a readable header without).
    pub first_index: Option<u64>,
    /// That of the last.
    pub last_index: Option<u64>,
    /// SHA-256 over the decrypted frames in arrival order ([`frames_digest`]), hex: two
    /// consumers, or a consumer and the source, compare what they got byte for byte.
    pub digest: String,
}

/// The digest of a run of decrypted frames: SHA-256 over, per frame, its index (8 bytes,
/// big-endian), its length (4 bytes, big-endian) and its plaintext; hex.
pub fn frames_digest<'a>(frames: impl IntoIterator<Item = (u64, &'a [u8])>) -> String {
    let mut hasher = Sha256::new();
    for (index, plaintext) in frames {
        digest_frame(&mut hasher, index, plaintext);
    }
    hex::encode(hasher.finalize())
}

fn digest_frame(hasher: &mut Sha256, index: u64, plaintext: &[u8]) {
    hasher.update(index.to_be_bytes());
    hasher.update((plaintext.len() as u32).to_be_bytes());
    hasher.update(plaintext);
}

/// Checks the frames a consumer receives.
pub struct Watcher {
    context: Option<Context>,
    report: WatchReport,
    digest: Sha256,
    log: Option<FrameLog>,
    meter: Option<Arc<Mutex<psp_net::usage::ClientMeter>>>,
}

impl Watcher {
    /// A watcher of `access_point`'s frames, decrypting with `key` if given.
    pub fn new(access_point: String, key: Option<&[u8]>) -> crate::Result<Self> {
        let context = match key {
            Some(key) => {
                let mut context = Context::new();
                context
                    .add_key(KID, key, KeyUsage::Decrypt)
                    .map_err(|e| Error::InvalidInput {
                        what: "--key",
                        reason: e.to_string(),
                    })?;
                Some(context)
            }
            None => None,
        };
        Ok(Self {
            context,
            report: WatchReport {
                access_point,
                digest: frames_digest([]),
                ..WatchReport::default()
            },
            digest: Sha256::new(),
            log: None,
            meter: None,
        })
    }

    /// Also meters every frame's bytes in `meter` (the session's usage report).
    pub fn with_meter(mut self, meter: Arc<Mutex<psp_net::usage::ClientMeter>>) -> Self {
        self.meter = Some(meter);
        self
    }

    /// Also records each decrypted frame's index and arrival time in `log`.
    pub fn with_log(mut self, log: FrameLog) -> Self {
        self.log = Some(log);
        self
    }

    /// Counts and checks one received frame.
    pub fn frame(&mut self, frame: &[u8]) {
        if let Some(meter) = &self.meter {
            let now_ms = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as u64);
            // A poisoned lock only means a panic between two whole updates.
            meter
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .record(frame.len() as u64, now_ms);
        }
        let r = &mut self.report;
        r.frames += 1;
        r.bytes += frame.len() as u64;
        if check_test_pattern(frame).is_some() {
            r.clear_pattern_frames += 1;
        }
        let index = match &self.context {
            Some(context) => match context.decrypt(frame, &[]) {
                Ok(decrypted) => {
                    r.decrypted += 1;
                    let ctr = decrypted.header.ctr;
                    if check_test_pattern(&decrypted.plaintext) == Some(ctr) {
                        r.pattern_ok += 1;
                    }
                    digest_frame(&mut self.digest, ctr, &decrypted.plaintext);
                    r.digest = hex::encode(self.digest.clone().finalize());
                    if let Some(log) = self.log.as_mut() {
                        log.record(ctr);
                    }
                    Some(ctr)
                }
                Err(_) => None,
            },
            None => Header::decode(frame).ok().map(|(h, _)| h.ctr),
        };
        match index {
            Some(index) => {
                r.first_index.get_or_insert(index);
                r.last_index = Some(index);
            }
            None => r.undecryptable += 1,
        }
    }

    /// What was seen so far.
    pub fn report(&self) -> &WatchReport {
        &self.report
    }
}

/// When [`watch`] stops (besides the transport closing).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WatchLimit {
    /// After this many frames.
    pub frames: Option<u64>,
    /// After this long.
    pub duration: Option<Duration>,
}

/// Feeds `watcher` the frames of `stream` until `limit` or the stream closes; calls
/// `progress` once a second.
pub async fn watch<S: FrameStream>(
    stream: &mut S,
    watcher: &mut Watcher,
    limit: WatchLimit,
    mut progress: impl FnMut(&WatchReport),
) {
    let start = Instant::now();
    let end = limit.duration.map(|d| start + d);
    let mut next_report = start + Duration::from_secs(1);
    loop {
        if limit.frames.is_some_and(|n| watcher.report.frames >= n) {
            return;
        }
        let wake = end.map_or(next_report, |end| end.min(next_report));
        tokio::select! {
            frame = stream.next_frame() => match frame {
                Some(frame) => watcher.frame(&frame),
                None => return,
            },
            _ = tokio::time::sleep_until(wake) => {}
        }
        let now = Instant::now();
        if end.is_some_and(|end| now >= end) {
            return;
        }
        if now >= next_report {
            progress(&watcher.report);
            next_report += Duration::from_secs(1);
        }
    }
}

/// Which media endpoint a connection is for, as errors name it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// `whip`, at the landing node.
    Publish,
    /// `whep`, at an access point.
    Watch,
}

impl Role {
    fn step(self) -> &'static str {
        match self {
            Role::Publish => "publishing (WHIP)",
            Role::Watch => "watching (WHEP)",
        }
    }
}

/// What to do about a failed media connection.
pub fn media_hint(role: Role, error: &psp_webrtc::Error) -> &'static str {
    use psp_webrtc::Error as E;
    match (role, error) {
        (Role::Publish, E::Signalling { status: 401, .. }) => {
            "the publish token is wrong: give the `publishToken` `psp stream create` printed for \
             this stream (it is derived from the stream's receipt)"
        }
        (Role::Publish, E::Signalling { status: 404, .. }) => {
            "the landing node does not know this stream: check --stream and --landing (the node \
             that created it), or the stream expired"
        }
        (Role::Publish, E::Signalling { status: 409, .. }) => {
            "someone is already publishing into this stream: one producer at a time; stop the \
             other publisher or wait until the node drops it"
        }
        (Role::Watch, E::Signalling { status: 401, .. }) => {
            "the access point refused the session ticket (see the reason): buy a new one by \
             watching again"
        }
        (Role::Watch, E::Signalling { status: 404, .. }) => {
            "this access point does not serve the stream: check --stream, choose another \
             --access-point, or wait until the producer publishes"
        }
        (_, E::Signalling { status: 503, .. }) => {
            "the node is full: retry later or at another node"
        }
        (_, E::Signalling { .. }) => "check the stream id and the node",
        (_, E::ConnectTimeout(_)) => {
            "the node answered but its data channel never opened: its UDP port (the media \
             port number) is not reachable from here, or the address it announces is wrong"
        }
        (_, E::Io(_)) => {
            "could not reach the node's media service: is it running, and is the address it \
             announces on chain reachable from here?"
        }
        _ => "retry, or try another node",
    }
}

/// What a connection shows the node: the publish token (WHIP), or a consumer's admission
/// headers (WHEP, [`super::session::Session::headers`]).
#[derive(Clone, Debug)]
pub enum Credentials<'a> {
    /// Publish with the stream's publish token.
    Publish(&'a [u8; 32]),
    /// Watch with these request headers.
    Watch(Vec<(String, String)>),
}

/// Connects to `stream_id`'s media at `url` (a node's signalling URL) to publish or to
/// watch, as `credentials` say; errors name the node and say what to do.
pub async fn connect(
    node: &[u8; 32],
    url: &str,
    stream_id: &StreamId,
    credentials: Credentials<'_>,
) -> Result<WebRtcClient, StreamClientError> {
    let (role, config) = match credentials {
        Credentials::Publish(token) => (Role::Publish, ClientConfig::publish(&path_hex(token))),
        Credentials::Watch(headers) => (
            Role::Watch,
            ClientConfig {
                headers,
                ..ClientConfig::default()
            },
        ),
    };
    WebRtcClient::connect_with(config, url, &path_hex(&stream_id.0))
        .await
        .map_err(|source| StreamClientError::Media {
            node: hex0x(node),
            url: url.to_owned(),
            step: role.step(),
            hint: media_hint(role, &source),
            source,
        })
}

#[cfg(test)]
mod tests;
