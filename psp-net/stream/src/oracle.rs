//! The oracle's `oracle` service, sans IO: anonymous stream-creation receipts (§8.2).
//!
//! Alice reaches an elected oracle over a circuit and sends one `ReceiptRequest`: her access
//! certificate, the key id of the tier she wants, her blinded receipt message and her
//! identity's signature over them. [`Oracle::handle_data`] checks, in order:
//!
//! 1. the message decodes and is a `ReceiptRequest` (one per stream);
//! 2. the certificate against the [`ChainView`]: from an elected authority, this chain, in its
//!    window, the identity live on chain;
//! 3. the signature: the certified identity itself is asking (a certificate is public);
//! 4. the subscription: [`SubscriptionView::allowance`] for the epoch;
//! 5. the tier: a key with that id at this oracle in the epoch;
//! 6. [`Issuer::issue`]: tier within the allowance, the per-subscription bound summed over
//!    every oracle heard from ([`Issuer::merge`]), the blind signature.
//!
//! It answers `ReceiptIssued` or `Refused` with a reason code, and closes the stream. Every
//! refusal also comes back as `Err` for the log.
//!
//! **Consumer tokens** (issue 14, `psp-usage`) ride the same request. An oracle that holds a
//! [`TokenIssuer`] ([`Oracle::set_token_issuer`]) publishes its token key beside its receipt
//! keys; a `ReceiptRequest` whose key id is the token key of the epoch is checked the same
//! way up to step 4 (certificate, signature, a subscription for the epoch), and then
//! [`TokenIssuer::issue`] blind-signs it under the token bound per subscription and epoch
//! (the token issuer's own counters, never the receipts'). The answer is the same
//! `ReceiptIssued` message. Receipt and token keys never mix: a request under the token key
//! only ever gets a token signature, whose message (`psp-usage`'s token context) is no
//! receipt, and no landing node accepts the token key's tier as a receipt tier.
//!
//! **What the oracle learns**: who asks (the certified identity), when, and which tier. By
//! RFC 9474 blindness it does not learn the receipt: the blinded message and its blind
//! signature are independent of the spend id and signature the landing node later sees, so
//! the oracle cannot link a stream to the issuance, even keeping everything it saw.
//!
//! Driving it: feed every stream's bytes to [`Oracle::handle_data`], report closed streams
//! with [`Oracle::handle_stream_closed`], call [`Oracle::handle_timeout`] at
//! [`Oracle::poll_timeout`], and after every call run [`Oracle::poll_action`]'s actions in
//! order. Install keys and exchange counts through [`Oracle::issuer_mut`] (receipts) and
//! [`Oracle::token_issuer_mut`] (consumer tokens).

use psp_cert::Certificate;
use psp_onion::crypto::sr25519_verify;
use psp_receipts::{BlindSignature, BlindedMessage, Issuer, KeyId, StreamParams, SubscriptionId};
use psp_rendezvous::chain::CertificateError;
use psp_rendezvous::{ChainView, StreamHandle};
use psp_usage::token::TokenIssuer;

use crate::error::{prefix, StreamError};
use crate::service::{Action, RequestService};
use crate::wire::{BoundedBytes, OracleMsg};

/// Read access to subscriptions on chain (implemented by the node against its latest
/// finalized block; tests use a map).
pub trait SubscriptionView {
    /// The tier ceiling `identity`'s subscription allows in `epoch`, if it holds one.
    fn allowance(&self, identity: &[u8; 32], epoch: u64) -> Option<StreamParams>;
}

/// What the oracle checks a request against: the chain at the latest finalized block, the
/// current epoch and the subscriptions.
#[derive(Clone, Copy)]
pub struct OracleContext<'a> {
    /// Authorities, genesis and identity registry.
    pub chain: ChainView<'a>,
    /// The current epoch (receipts are issued under its keys).
    pub epoch: u64,
    /// Subscriptions on chain.
    pub subscriptions: &'a dyn SubscriptionView,
}

/// Limits of the oracle service.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OracleConfig {
    /// Request streams held at once. Default 1 024; each holds at most one incomplete frame
    /// of ≤ 8 KiB, so buffers stay under 9 MiB.
    pub max_streams: usize,
    /// How long a stream may take to deliver its request. Default 30 s.
    pub request_timeout_secs: u64,
}

impl Default for OracleConfig {
    fn default() -> Self {
        Self {
            max_streams: 1_024,
            request_timeout_secs: 30,
        }
    }
}

/// The `oracle` service of one oracle node.
#[derive(Debug)]
pub struct Oracle {
    node_id: [u8; 32],
    issuer: Issuer,
    /// Consumer tokens, once the oracle issues them.
    tokens: Option<TokenIssuer>,
    requests: RequestService,
}

impl Oracle {
    /// The service of the oracle with node id `node_id` (what requests are signed for),
    /// issuing with `issuer` (its keys installed per epoch and tier).
    pub fn new(node_id: [u8; 32], issuer: Issuer, config: OracleConfig) -> Self {
        Self {
            node_id,
            issuer,
            tokens: None,
            requests: RequestService::new(config.max_streams, config.request_timeout_secs),
        }
    }

    /// Issues consumer tokens with `tokens` too (replacing any token issuer held, with its
    /// keys and counts).
    pub fn set_token_issuer(&mut self, tokens: TokenIssuer) {
        self.tokens = Some(tokens);
    }

    /// The consumer-token issuer, if the oracle issues tokens.
    pub fn token_issuer(&self) -> Option<&TokenIssuer> {
        self.tokens.as_ref()
    }

    /// The consumer-token issuer, to install its keys and merge counts; `None` until
    /// [`Self::set_token_issuer`].
    pub fn token_issuer_mut(&mut self) -> Option<&mut TokenIssuer> {
        self.tokens.as_mut()
    }

    /// The issuer (counts, keys).
    pub fn issuer(&self) -> &Issuer {
        &self.issuer
    }

    /// The issuer, to install keys and merge other oracles' counts.
    pub fn issuer_mut(&mut self) -> &mut Issuer {
        &mut self.issuer
    }

    /// Bytes arrived on `stream` at `now` (unix seconds). `Err` says what was refused, for the
    /// log; the queued actions say what the requester is told.
    pub fn handle_data(
        &mut self,
        now: u64,
        stream: StreamHandle,
        bytes: &[u8],
        ctx: &OracleContext<'_>,
    ) -> Result<(), StreamError> {
        let Some(body) = self
            .requests
            .feed::<OracleMsg>(now, stream, bytes, "oracle frame")?
        else {
            return Ok(());
        };
        let result = self.check_and_issue(now, &body, ctx);
        self.requests.reply(stream, result)
    }

    crate::service::request_lifecycle!();

    fn check_and_issue(
        &mut self,
        now: u64,
        body: &[u8],
        ctx: &OracleContext<'_>,
    ) -> Result<OracleMsg, StreamError> {
        let (certificate, tier, blinded, signature) =
            match OracleMsg::decode(body).map_err(StreamError::malformed("oracle message"))? {
                OracleMsg::ReceiptRequest {
                    certificate,
                    tier,
                    blinded,
                    signature,
                } => (certificate, tier, blinded, signature),
                other => {
                    return Err(StreamError::UnexpectedMessage {
                        message: other.name(),
                        state: "awaiting a receipt request",
                    })
                }
            };
        let identity = Certificate::decode(certificate.as_slice())
            .map_err(CertificateError::Malformed)?
            .body
            .identity;
        ctx.chain
            .verify_certificate(certificate.as_slice(), now, &identity)?;
        let message = OracleMsg::possession_message(&self.node_id, &tier, blinded.as_slice());
        if !sr25519_verify(&identity, &message, &signature) {
            return Err(StreamError::PossessionSignature);
        }
        let epoch = ctx.epoch;
        let allowed =
            ctx.subscriptions
                .allowance(&identity, epoch)
                .ok_or(StreamError::NotSubscribed {
                    identity: prefix(&identity),
                    epoch,
                })?;
        let blinded = BlindedMessage::from_bytes(blinded.into_vec());
        // A request under this epoch's token key is for a consumer token: its bound is the
        // token issuer's, and the allowance's tier means nothing to it.
        let tokens = self.tokens.as_mut().filter(|tokens| {
            tokens
                .public_key(epoch)
                .is_some_and(|key| key.key_id() == tier)
        });
        let blind = match tokens {
            Some(tokens) => tokens.issue(epoch, SubscriptionId(identity), &blinded)?,
            None => self.issue_receipt(epoch, identity, &allowed, &tier, &blinded)?,
        };
        let blind_signature = BoundedBytes::new("blind signature", blind.as_bytes().to_vec())
            .map_err(StreamError::malformed("blind signature"))?;
        Ok(OracleMsg::ReceiptIssued { blind_signature })
    }

    /// Steps 5 and 6 for a receipt: the tier's key, then the receipts issuer.
    fn issue_receipt(
        &mut self,
        epoch: u64,
        identity: [u8; 32],
        allowed: &StreamParams,
        tier: &KeyId,
        blinded: &BlindedMessage,
    ) -> Result<BlindSignature, StreamError> {
        let requested = self
            .issuer
            .public_keys(epoch)
            .into_iter()
            .find(|(_, key)| key.key_id() == *tier)
            .map(|(params, _)| params)
            .ok_or(StreamError::UnknownTier {
                key_id: prefix(&tier.0),
                epoch,
            })?;
        Ok(self.issuer.issue(
            epoch,
            SubscriptionId(identity),
            allowed,
            &requested,
            blinded,
        )?)
    }
}
