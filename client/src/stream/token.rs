//! Drawing a consumer token (issue 14): the ticket to bandwidth rewards a consumer's usage
//! report must carry to count.
//!
//! Each elected oracle publishes, beside its receipt keys, one consumer-token key per epoch,
//! under the chain's reserved tier [`Tier::CONSUMER_TOKENS`] (`psp_receiptKeys` lists it with
//! the others). [`draw_token`] reads the epoch's token keys, and asks the registered oracles
//! holding one, in random order, until one issues: over a 3-hop circuit to the oracle's
//! `oracle` service ([`draw_token_at`]), the identity proved with its access certificate, the
//! token for one session blinded (`psp_stream`'s [`TokenClient`]). The oracle learns who asks,
//! never the session: the token it signs cannot be linked to the subscription.

use std::time::Duration;

use psp_net::crypto::{NodeId, Sr25519Keypair};
use psp_net::driver::unix_now;
use psp_net::rendezvous::client::Output;
use psp_net::rendezvous::StreamHandle;
use psp_net::stream::client::{TokenClient, TokenEvent};
use psp_net::stream::StreamError;
use psp_net::usage::token::{ConsumerToken, TokenKey};
use psp_primitives::rewards::SessionId;
use psp_primitives::rpc::ReceiptKeyView;
use psp_primitives::subscriptions::Tier;

use super::{
    ask_in_turn, ask_oracle, failure, oracle_and_public_key, oracle_hint, Machine, OracleRefusal,
    StreamClientError, StreamProgress, ORACLE_SERVICE,
};
use crate::chain::Chain;
use crate::keystore::Keys;
use crate::overlay::{OverlayClient, RelayNode};
use crate::{hex0x, Error};

super::impl_machine!(TokenClient, TokenEvent);

/// A published consumer-token key as the token machine takes it, from a `psp_receiptKeys`
/// entry of `epoch` (the epoch it was asked for). Refused: a key of another tier (a receipt
/// key), an oracle or key that does not parse.
pub fn token_key(view: &ReceiptKeyView, epoch: u64) -> Result<TokenKey, StreamClientError> {
    if !view.tier.is_consumer_tokens() {
        return Err(Error::InvalidInput {
            what: "psp_receiptKeys tier",
            reason: "a receipt key, not a consumer-token key".into(),
        }
        .into());
    }
    let (oracle, public) = oracle_and_public_key(view)?;
    Ok(TokenKey {
        public,
        epoch,
        oracle: NodeId(oracle),
    })
}

/// The consumer-token keys among `published` (`psp_receiptKeys` of `epoch`) that parse and
/// have not expired at `now`; receipt keys are left out.
pub fn token_keys(published: &[ReceiptKeyView], epoch: u64, now: u64) -> Vec<TokenKey> {
    published
        .iter()
        .filter(|view| view.tier == Tier::CONSUMER_TOKENS && view.expires_at > now)
        .filter_map(|view| token_key(view, epoch).ok())
        .collect()
}

/// What to do about an oracle's refusal of a token.
pub fn token_hint(reason: OracleRefusal) -> &'static str {
    match reason {
        OracleRefusal::Exhausted => {
            "the subscription drew every consumer token of this epoch: wait for the next epoch"
        }
        OracleRefusal::UnknownTier => {
            "the oracle does not hold that token key this epoch (the epoch may just have changed): retry"
        }
        other => oracle_hint(other),
    }
}

/// The error a token machine's failure stands for.
fn token_failure(oracle: &[u8; 32], timeout: Duration, e: StreamError) -> StreamClientError {
    match e {
        StreamError::OracleRefused(reason) => StreamClientError::TokenRefused {
            oracle: hex0x(oracle),
            reason,
        },
        e => failure(ORACLE_SERVICE, oracle, timeout, e),
    }
}

/// Draws a consumer token for `session` under `key` (the token key of the epoch the session
/// counts in) from `oracle`, which must hold it, over a fresh 3-hop circuit through `nodes`,
/// proving `keys`' identity with `certificate` (an access certificate from an elected
/// authority). The oracle has `timeout` to answer. The token is checked under `key`.
#[allow(clippy::too_many_arguments)]
pub async fn draw_token_at(
    overlay: &OverlayClient,
    nodes: &[RelayNode],
    keys: &Keys,
    certificate: &[u8],
    oracle: &RelayNode,
    key: &TokenKey,
    session: SessionId,
    timeout: Duration,
    mut progress: impl FnMut(StreamProgress),
) -> Result<ConsumerToken, StreamClientError> {
    let oracle_key = oracle.key();
    if key.oracle.0 != oracle_key {
        return Err(Error::InvalidInput {
            what: "token key",
            reason: format!(
                "the key is oracle {}'s, not {}'s",
                hex0x(&key.oracle.0),
                hex0x(&oracle_key)
            ),
        }
        .into());
    }
    let identity = Sr25519Keypair::from_seed(keys.identity_seed());
    let (mut machine, request) = TokenClient::new(
        StreamHandle(1),
        &identity,
        certificate,
        key,
        session,
        unix_now(),
        timeout.as_secs().max(1),
    )
    .map_err(|e| token_failure(&oracle_key, timeout, e))?;
    let (_, event) = ask_oracle(
        overlay,
        nodes,
        oracle,
        &mut machine,
        &request.bytes,
        &mut progress,
    )
    .await?;
    match event {
        Some(TokenEvent::Issued(token)) => {
            progress(StreamProgress::TokenIssued {
                oracle: hex0x(&oracle_key),
                epoch: token.epoch,
            });
            Ok(token)
        }
        Some(TokenEvent::Failed(e)) => Err(token_failure(&oracle_key, timeout, e)),
        Some(_) | None => Err(token_failure(
            &oracle_key,
            timeout,
            StreamError::Ended {
                machine: "token client",
            },
        )),
    }
}

/// Whether every oracle would refuse the token the same way (so trying others is pointless).
fn token_refused_everywhere(e: &StreamClientError) -> bool {
    matches!(
        e,
        StreamClientError::TokenRefused {
            reason: OracleRefusal::NotSubscribed
                | OracleRefusal::BadCertificate
                | OracleRefusal::IdentityNotLive
                | OracleRefusal::Exhausted,
            ..
        }
    )
}

/// Draws a consumer token for `session` in the current epoch for `keys`' identity (which
/// must hold a subscription covering it): asks the registered oracles (`nodes`, as
/// [`crate::overlay::registered_nodes`] lists them) that published a consumer-token key for
/// the epoch, in random order, until one issues ([`draw_token_at`]).
#[allow(clippy::too_many_arguments)]
pub async fn draw_token(
    chain: &Chain,
    overlay: &OverlayClient,
    nodes: &[RelayNode],
    keys: &Keys,
    certificate: &[u8],
    session: SessionId,
    timeout: Duration,
    mut progress: impl FnMut(StreamProgress),
) -> Result<ConsumerToken, StreamClientError> {
    let epoch = chain.subscriptions_status().await?.current_epoch;
    let published = chain.receipt_keys(epoch).await?;
    let tokens = token_keys(&published, u64::from(epoch), unix_now());
    let candidates: Vec<(RelayNode, TokenKey)> = tokens
        .iter()
        .filter_map(|key| {
            let node = nodes.iter().find(|n| n.key() == key.oracle.0)?;
            Some((node.clone(), key.clone()))
        })
        .collect();
    if candidates.is_empty() {
        return Err(StreamClientError::NoTokenKeys {
            epoch,
            published: published
                .iter()
                .filter(|k| k.tier.is_consumer_tokens())
                .count(),
            usable: tokens.len(),
        });
    }
    let ask =
        async |oracle: &RelayNode, key: &TokenKey, progress: &mut dyn FnMut(StreamProgress)| {
            draw_token_at(
                overlay,
                nodes,
                keys,
                certificate,
                oracle,
                key,
                session,
                timeout,
                progress,
            )
            .await
        };
    ask_in_turn(candidates, ask, token_refused_everywhere, &mut progress)
        .await?
        .map_err(|attempts| StreamClientError::TokenOraclesFailed { epoch, attempts })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view(tier: Tier, der: &str) -> ReceiptKeyView {
        ReceiptKeyView {
            oracle: hex0x(&[7; 32]),
            tier,
            public_key: der.into(),
            expires_at: 100,
        }
    }

    #[test]
    fn only_consumer_token_keys_are_token_keys() {
        let receipt_tier = Tier {
            lifetime_secs: 3_600,
            bitrate_class: 2,
            distribution_nodes: 4,
        };
        assert!(token_key(&view(receipt_tier, "0x30"), 5).is_err());
        // A token-tier entry whose key does not parse is refused, not a panic.
        assert!(token_key(&view(Tier::CONSUMER_TOKENS, "0x30"), 5).is_err());
        assert!(token_keys(
            &[
                view(receipt_tier, "0x30"),
                view(Tier::CONSUMER_TOKENS, "0x30")
            ],
            5,
            0
        )
        .is_empty());
    }
}
