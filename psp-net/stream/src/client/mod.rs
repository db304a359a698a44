//! # Client: the producer's side of stream creation, sans IO
//!
//! Two state machines, each owning one onion stream the driver opened and named with a
//! [`StreamHandle`](psp_rendezvous::StreamHandle), shaped like `psp-rendezvous`'s client
//! machines:
//!
//! * [`ReceiptClient`]: over a circuit to an elected oracle's `oracle` service, proves the
//!   identity (certificate and a signature), sends the blinded request for one tier, and
//!   unblinds the answer into a [`Receipt`](psp_receipts::Receipt) (refusing a signature that
//!   does not verify).
//! * [`StreamCreator`]: over a *fresh* anonymous circuit to any node's `landing` service,
//!   hands over the receipt and the distribution nodes and checks the signed stream record it
//!   gets back (signature, landing node live, the stream id derived from the receipt, the
//!   access points and format asked for).
//!
//! `new` returns the machine and the request to write; `handle_data`, `handle_timeout` and
//! `handle_stream_closed` return an [`Output`]: transmits (none after the request), streams to
//! close, and one last event. Peer faults never come back as `Err`: they end the machine with
//! a `Failed` event. Use a different circuit for the two machines: the oracle knows who
//! asks, the landing node must not.

mod creator;
mod receipt;

pub use creator::{CreatorEvent, StreamCreator};
pub use psp_rendezvous::client::{Output, Transmit};
pub use receipt::{ReceiptClient, ReceiptEvent};

/// How long a machine waits for its answer by default: 30 s.
pub const DEFAULT_TIMEOUT_SECS: u64 = 30;
