//! The landing node's `landing` service, sans IO: stream creation from an anonymous receipt
//! (§8.2).
//!
//! The producer, over a fresh anonymous circuit, sends one `CreateStream`: a receipt, the
//! format flags and the distribution nodes she chose. [`Landing::handle_data`] checks, in
//! order (cheap first, the receipt spent last so a request refused for its nodes or format
//! does not burn it):
//!
//! 1. the message decodes and is a `CreateStream` (one per stream); the receipt decodes and
//!    names this landing node (a receipt is bound to one, chosen before it is drawn, so this
//!    node's spent set is the only one that can have seen it);
//! 2. [`Verifier::verify`]: key published on chain, the receipt's epoch its key's, not
//!    expired, parameters within the key's tier, not spent, RSA-PSS signature;
//! 3. format: WebRTC, and no reserved transport (RTMP, RTMPE) yet;
//! 4. distribution nodes: at most the receipt's allowance, distinct, each a live *node*
//!    identity on chain;
//! 5. [`Verifier::spend`].
//!
//! Then it derives the stream id from the spend id ([`stream_id_for`]; why in
//! [`crate::record`]), signs the [`StreamRecord`] with its node key (expiry = now + the
//! receipt's lifetime), queues [`Action::Created`] (for the media path: the producer's
//! publish token and the receipt's parameters) and [`Action::Publish`], answers
//! `StreamCreated` and closes the stream. Refusals answer `Refused` with a reason code, close, and return `Err` for the log.
//!
//! **What the landing node learns**: a receipt (its oracle, tier and epoch — shared by every
//! receipt of that key — and a random spend id), the chosen distribution nodes and flags, and
//! the circuit's last hop. Nothing in the messages names the producer: no identity, no
//! certificate, no key of hers.

use psp_onion::crypto::Sr25519Keypair;
use psp_onion::registry::{IdentityKind, IdentityRegistry, IdentityStatus};
use psp_receipts::{Receipt, Verifier};
use psp_rendezvous::StreamHandle;

use crate::error::{prefix, StreamError};
use crate::record::{publish_token, stream_id_for, StreamId, StreamRecord};
use crate::service::{Action, RequestService};
use crate::wire::{BoundedBytes, FormatFlags, LandingMsg};

/// Limits of the landing service.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LandingConfig {
    /// Request streams held at once. Default 1 024 (≤ 9 MiB of frame buffers).
    pub max_streams: usize,
    /// How long a stream may take to deliver its request. Default 30 s.
    pub request_timeout_secs: u64,
}

impl Default for LandingConfig {
    fn default() -> Self {
        Self {
            max_streams: 1_024,
            request_timeout_secs: 30,
        }
    }
}

/// The `landing` service of one node.
#[derive(Debug)]
pub struct Landing {
    key: Sr25519Keypair,
    verifier: Verifier,
    requests: RequestService,
}

impl Landing {
    /// The service of the node with key `key` (which signs the records), checking receipts
    /// with `verifier` (the oracle keys published on chain, the spent set).
    pub fn new(key: Sr25519Keypair, verifier: Verifier, config: LandingConfig) -> Self {
        Self {
            key,
            verifier,
            requests: RequestService::new(config.max_streams, config.request_timeout_secs),
        }
    }

    /// The node id (the records' signer).
    pub fn node_id(&self) -> [u8; 32] {
        self.key.public()
    }

    /// The receipt verifier.
    pub fn verifier(&self) -> &Verifier {
        &self.verifier
    }

    /// The receipt verifier, to insert keys read from chain and prune.
    pub fn verifier_mut(&mut self) -> &mut Verifier {
        &mut self.verifier
    }

    /// Bytes arrived on `stream` at `now` (unix seconds). Distribution nodes are checked
    /// against `registry` (the latest finalized block). `Err` says what was refused, for the
    /// log; the queued actions say what the producer is told.
    pub fn handle_data(
        &mut self,
        now: u64,
        stream: StreamHandle,
        bytes: &[u8],
        registry: &dyn IdentityRegistry,
    ) -> Result<(), StreamError> {
        let Some(body) = self
            .requests
            .feed::<LandingMsg>(now, stream, bytes, "landing frame")?
        else {
            return Ok(());
        };
        let result = self
            .create(now, &body, registry)
            .map(|(record, created, msg)| {
                self.requests.push(created);
                self.requests.push(Action::Publish {
                    key: record.dht_key(),
                    record: record.encode(),
                });
                msg
            });
        self.requests.reply(stream, result)
    }

    crate::service::request_lifecycle!();

    fn create(
        &mut self,
        now: u64,
        body: &[u8],
        registry: &dyn IdentityRegistry,
    ) -> Result<(StreamRecord, Action, LandingMsg), StreamError> {
        let (receipt, distribution_nodes, format) =
            match LandingMsg::decode(body).map_err(StreamError::malformed("landing message"))? {
                LandingMsg::CreateStream {
                    receipt,
                    distribution_nodes,
                    format,
                } => (receipt, distribution_nodes, format),
                other => {
                    return Err(StreamError::UnexpectedMessage {
                        message: other.name(),
                        state: "awaiting a stream creation",
                    })
                }
            };
        let receipt = Receipt::decode(receipt.as_slice())?;
        if receipt.landing != self.key.public() {
            return Err(StreamError::WrongLanding {
                landing: prefix(&receipt.landing),
            });
        }
        let verified = self.verifier.verify(now, &receipt)?;
        if !format.contains(FormatFlags::WEBRTC)
            || format.bits() & (FormatFlags::RTMP | FormatFlags::RTMPE) != 0
        {
            return Err(StreamError::UnsupportedFormat {
                flags: format.bits(),
            });
        }
        let params = verified.params();
        if distribution_nodes.len() > usize::from(params.distribution_nodes) {
            return Err(StreamError::TooManyDistributionNodes {
                got: distribution_nodes.len(),
                allowed: params.distribution_nodes,
            });
        }
        for (i, node) in distribution_nodes.iter().enumerate() {
            if distribution_nodes[..i].contains(node) {
                return Err(StreamError::DuplicateDistributionNode { node: prefix(node) });
            }
            if registry.status(node) != IdentityStatus::Active(IdentityKind::Node) {
                return Err(StreamError::DistributionNodeNotLive { node: prefix(node) });
            }
        }
        let spend_id = self.verifier.spend(now, &verified)?;
        let stream_id: StreamId = stream_id_for(&spend_id);
        let expires_at = now.saturating_add(u64::from(params.lifetime_secs));
        let record = StreamRecord::sign(
            &self.key,
            stream_id,
            format,
            now,
            expires_at,
            distribution_nodes,
        );
        let record_bytes = BoundedBytes::new("stream record", record.encode())
            .map_err(StreamError::malformed("stream record"))?;
        let created = Action::Created {
            stream_id,
            publish_token: publish_token(&spend_id),
            params,
            record: record_bytes.as_slice().to_vec(),
        };
        let msg = LandingMsg::StreamCreated {
            stream_id,
            record: record_bytes,
        };
        Ok((record, created, msg))
    }
}
