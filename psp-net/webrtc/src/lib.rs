//! # psp-webrtc
//!
//! WebRTC data-channel serving for PSP distribution nodes: consumers (a browser's watch page,
//! or `psp stream watch` through [`WebRtcClient`]) receive a stream's frames as opaque binary
//! messages on one data channel.
//!
//! - [`WebRtcServer`]: one UDP socket for every peer; one str0m `Rtc` per peer (ice-lite, the
//!   socket's address as host candidate); datagrams go to the peer whose `Rtc::accepts` them.
//!   Every peer has a bounded send queue; a peer that falls behind is dropped, never waited for.
//! - [`signalling`]: `POST /whep/<stream-id>` (SDP offer in, SDP answer out) and
//!   `GET /watch/<stream-id>` (the watch page), hand-written HTTP/1.1 with bounded requests.
//! - [`WebRtcClient`]: the Rust offerer, for `psp stream watch` and for tests.
//! - [`address`]: the media address a node registers on chain, and its signalling URL.
//!
//! The protocol state lives in a sans-IO core (no tokio, no clock) that the server's task
//! drives, so the limits are the same code in tests and in production.
//!
//! str0m is the version and feature set sc-network's litep2p uses (0.23.1, OpenSSL), so the
//! node builds one WebRTC stack.

pub mod address;
mod client;
mod core;
mod error;
mod http;
mod server;
pub mod signalling;

pub use crate::client::{command, ClientConfig, OfferHeaders, WebRtcClient, CHANNEL_LABEL};
pub use crate::core::{GoneReason, PeerId, PeerLabel, ServerConfig, ServerEvent, SCTP_SEND_BUFFER};
pub use crate::error::{Error, Result};
pub use crate::server::{ServerTask, WebRtcServer};
pub use crate::signalling::{
    Refusal, Route, SignallingConfig, SignallingRequest, StreamDirectory, MAX_COMMAND_BODY,
};
