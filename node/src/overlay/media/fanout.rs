//! A landing node's fan-out: one WebRTC connection per access point, to the distribution
//! node's `POST /whip/<stream-id>`, authorised by the signed stream record and the landing
//! node's signature over the offer.
//!
//! | header | value |
//! |---|---|
//! | [`RECORD_HEADER`] | hex of the signed stream record (`psp_stream::record`) |
//! | [`SIGNATURE_HEADER`] | hex of the landing node's sr25519 signature over [`fanout_message`] |
//!
//! The signature binds the offer (its SHA-256) to the stream: a copy of the headers is worth
//! nothing with another offer, whose DTLS fingerprint the copier would not hold the key of.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use psp_net::crypto::Sr25519Keypair;
use psp_webrtc::{ClientConfig, OfferHeaders, WebRtcClient};
use tokio::sync::mpsc;

use super::state::NewUpstream;

/// The header carrying the stream record.
pub const RECORD_HEADER: &str = "X-Psp-Record";
/// The header carrying the landing node's signature.
pub const SIGNATURE_HEADER: &str = "X-Psp-Signature";
/// Domain separation of the fan-out signature.
pub const FANOUT_CONTEXT: &[u8] = b"psp/stream/fanout/v1";

/// First wait before a failed fan-out connection is retried; doubled up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_secs(1);
/// Longest wait between two fan-out attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// What the landing node signs: [`FANOUT_CONTEXT`] ‖ stream id (32 bytes) ‖ SHA-256(offer).
pub fn fanout_message(stream_id: &[u8; 32], offer_sha256: &[u8; 32]) -> Vec<u8> {
    [FANOUT_CONTEXT, stream_id, offer_sha256].concat()
}

/// Finds a node's media service (its registered media address).
pub type Resolve = Arc<dyn Fn(&[u8; 32]) -> Option<SocketAddr> + Send + Sync>;

/// The client configuration of one fan-out connection: `whip`, the record, and a signature
/// over each offer.
pub fn fanout_config(stream_id: [u8; 32], record: &[u8], key: Arc<Sr25519Keypair>) -> ClientConfig {
    let sign = move |offer: &[u8]| {
        let message = fanout_message(&stream_id, &sp_crypto_hashing::sha2_256(offer));
        vec![(SIGNATURE_HEADER.to_owned(), hex::encode(key.sign(&message)))]
    };
    ClientConfig {
        endpoint: "whip",
        headers: vec![(RECORD_HEADER.to_owned(), hex::encode(record))],
        offer_headers: Some(OfferHeaders(Arc::new(sign))),
        ..ClientConfig::default()
    }
}

/// Keeps one fan-out connection up until its frames channel closes (the stream expired,
/// ended or was replaced, or the node is no longer an access point): connects, sends every
/// frame, hands what the distribution node sends back (its load reports) to `messages`,
/// reconnects with backoff when the connection fails or closes. Frames that arrive while
/// there is no connection are dropped.
pub async fn run_upstream(
    upstream: NewUpstream,
    key: Arc<Sr25519Keypair>,
    resolve: Resolve,
    messages: mpsc::Sender<([u8; 32], Vec<u8>)>,
) {
    let NewUpstream {
        stream_id,
        node,
        record,
        mut frames,
    } = upstream;
    let stream_hex = hex::encode(stream_id);
    let who = format!(
        "stream {}: fan-out to {}",
        &stream_hex[..8],
        hex::encode(&node[..4])
    );
    let mut backoff = FIRST_BACKOFF;
    loop {
        let Some(addr) = resolve(&node) else {
            log::info!(target: "psp-media", "{who}: no media address on chain; retry in {backoff:?}");
            if !idle(&mut frames, backoff).await {
                return;
            }
            backoff = (backoff * 2).min(MAX_BACKOFF);
            continue;
        };
        let url = format!("http://{addr}");
        let config = fanout_config(stream_id, &record, key.clone());
        let connect = WebRtcClient::connect_with(config, &url, &stream_hex);
        tokio::pin!(connect);
        let connected = loop {
            tokio::select! {
                result = &mut connect => break result,
                frame = frames.recv() => if frame.is_none() { return },
            }
        };
        let mut client = match connected {
            Ok(client) => client,
            Err(e) => {
                log::warn!(target: "psp-media", "{who} at {url}: {e}; retry in {backoff:?}");
                if !idle(&mut frames, backoff).await {
                    return;
                }
                backoff = (backoff * 2).min(MAX_BACKOFF);
                continue;
            }
        };
        log::info!(target: "psp-media", "{who} at {url}: connected");
        backoff = FIRST_BACKOFF;
        loop {
            tokio::select! {
                frame = frames.recv() => match frame {
                    Some(frame) => {
                        if client.send(frame.to_vec()).await.is_err() {
                            break;
                        }
                    }
                    None => {
                        client.close().await;
                        return;
                    }
                },
                // The distribution node sends its load reports; a full queue drops one.
                message = client.recv() => match message {
                    Some(message) => {
                        let _ = messages.try_send((stream_id, message));
                    }
                    None => break,
                },
            }
        }
        log::warn!(target: "psp-media", "{who} at {url}: connection closed; reconnecting");
    }
}

/// Waits `wait`, dropping frames; `false` if the frames channel closed.
async fn idle(frames: &mut mpsc::Receiver<Arc<[u8]>>, wait: Duration) -> bool {
    let sleep = tokio::time::sleep(wait);
    tokio::pin!(sleep);
    loop {
        tokio::select! {
            _ = &mut sleep => return true,
            frame = frames.recv() => if frame.is_none() { return false },
        }
    }
}
