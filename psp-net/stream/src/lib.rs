//! # psp-stream: creating realtime streams anonymously, sans IO (PSP overview §8.1–8.2)
//!
//! ## Overview
//!
//! Issue 13, points 2 and 3, as state machines with no sockets, tasks, clock or chain code:
//!
//! 1. **Receipt** ([`oracle::Oracle`], [`client::ReceiptClient`]): Alice reaches an elected
//!    oracle over a circuit, proves her identity (access certificate and a signature) and
//!    sends a blinded receipt request for one tier; the oracle checks the certificate against
//!    the chain, her subscription, the tier and the per-subscription bound shared with the
//!    other oracles, and blind-signs (RFC 9474, `psp-receipts`).
//!    The same exchange issues *consumer tokens* (issue 14, `psp-usage`) under the oracle's
//!    token key of the epoch ([`client::TokenClient`]).
//! 2. **Landing** ([`landing::Landing`], [`client::StreamCreator`]): over a fresh anonymous
//!    circuit she hands any node the receipt and her distribution nodes; the landing node
//!    verifies and spends the receipt, checks the nodes, and publishes a signed
//!    [`record::StreamRecord`] under [`record::dht_key`].
//!
//! ## Modules
//! * [`wire`]: the `oracle` and `landing` services' messages, framing, bounds, reason codes.
//! * [`record`]: the stream record, stream ids, DHT key, [`record::verify_stream_record`].
//! * [`oracle`], [`landing`]: the node services; they answer through [`Action`]s the driver
//!   polls, like `psp-rendezvous`'s services.
//! * [`client`]: the producer's machines, returning `Output`s like `psp-rendezvous`'s.
//!
//! ## What each node learns
//! The oracle learns who asks and which tier, never the receipt (blindness). The landing node
//! learns a receipt (oracle, tier, epoch, random spend id), the distribution nodes and the
//! circuit's last hop, never who the producer is. Time comes in as `now` (unix seconds),
//! chain state as views the driver builds from its latest finalized block.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod client;
mod error;
pub mod landing;
pub mod oracle;
pub mod record;
mod service;
pub mod wire;

pub use error::StreamError;
pub use service::Action;
pub use wire::fuzz_decode_all;
