//! Consumer tokens at the oracle (issue 14): drawn with a subscription under the oracle's
//! token key, checked by `psp-usage`'s collector keys, bounded per subscription and epoch on
//! their own counters, and never mixed with receipts.

mod common;

use common::*;
use psp_onion::crypto::NodeId;
use psp_receipts::{IssuerConfig, StreamParams, SubscriptionId};
use psp_rendezvous::StreamHandle;
use psp_stream::client::{TokenClient, TokenEvent};
use psp_stream::oracle::Oracle;
use psp_stream::wire::{BoundedBytes, OracleMsg, OracleRefusal};
use psp_stream::StreamError;
use psp_usage::token::{ConsumerToken, TokenIssuer, TokenKey, TokenKeys};

const SESSION: [u8; 32] = [0x5e; 32];

/// Oracle A with its receipt keys and a token issuer holding its token key of [`EPOCH`],
/// `bound` tokens per subscription; and that key as the chain publishes it.
fn token_oracle(world: &World, bound: u32) -> (Oracle, TokenKey) {
    let mut oracle = world.oracle(&world.oracle_a, IssuerConfig::default());
    let node = NodeId(world.oracle_a.node.public());
    let mut tokens = TokenIssuer::new(node, bound, 1_024);
    let key = rsa_key(TOKEN_RSA);
    let public = key.public_key().clone();
    tokens.install_key(EPOCH, key).expect("token key");
    oracle.set_token_issuer(tokens);
    (
        oracle,
        TokenKey {
            public,
            epoch: EPOCH,
            oracle: node,
        },
    )
}

/// Runs a token client against `oracle`: (oracle's result, client's event).
fn request_token(
    world: &World,
    oracle: &mut Oracle,
    client: &Client,
    key: &TokenKey,
    session: [u8; 32],
) -> (Result<(), StreamError>, TokenEvent) {
    let stream = StreamHandle(5);
    let (mut machine, request) = TokenClient::new(
        stream,
        &client.key,
        &client.certificate,
        key,
        session,
        NOW,
        TIMEOUT,
    )
    .expect("request built");
    let result = oracle.handle_data(NOW, stream, &request.bytes, &world.ctx());
    let actions = drain(|| oracle.poll_action());
    assert!(
        closed(&actions, stream),
        "the oracle closes after answering"
    );
    let mut out = machine.handle_data(NOW, &sent(&actions, stream));
    assert_eq!(out.close, vec![stream]);
    assert_eq!(out.events.len(), 1);
    assert!(machine.is_closed());
    (result, out.events.remove(0))
}

fn token(event: TokenEvent) -> ConsumerToken {
    match event {
        TokenEvent::Issued(token) => token,
        TokenEvent::Failed(e) => panic!("token refused: {e}"),
        other => panic!("unexpected event {other:?}"),
    }
}

fn refused(event: TokenEvent) -> OracleRefusal {
    match event {
        TokenEvent::Failed(StreamError::OracleRefused(r)) => r,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[test]
fn a_subscriber_draws_a_token_the_collector_accepts() {
    let world = World::new();
    let (mut oracle, key) = token_oracle(&world, 4);
    let (result, event) = request_token(&world, &mut oracle, &world.alice, &key, SESSION);
    result.expect("issued");
    let token = token(event);
    assert_eq!((token.epoch, token.session), (EPOCH, SESSION));
    let keys = TokenKeys::new(EPOCH, vec![key.clone()]).expect("one key");
    keys.verify(EPOCH, &SESSION, &token)
        .expect("the token verifies");
    // It backs that session in that epoch only; it decodes as it encodes.
    assert!(keys.verify(EPOCH, &[0x5f; 32], &token).is_err());
    assert!(keys.verify(EPOCH + 1, &SESSION, &token).is_err());
    assert_eq!(ConsumerToken::decode(&token.encode()), Ok(token));
    // Counted on the token issuer, not the receipts issuer.
    let sub = SubscriptionId(world.alice.id());
    let tokens = oracle.token_issuer().expect("token issuer");
    assert_eq!(tokens.issued(EPOCH, &sub), 1);
    assert_eq!(oracle.issuer().issued(EPOCH, &sub), 0);
}

#[test]
fn an_identity_without_a_subscription_gets_no_token() {
    let mut world = World::new();
    let bob = world.client(0x22);
    let (mut oracle, key) = token_oracle(&world, 4);
    let (result, event) = request_token(&world, &mut oracle, &bob, &key, SESSION);
    assert!(matches!(result, Err(StreamError::NotSubscribed { .. })));
    assert_eq!(refused(event), OracleRefusal::NotSubscribed);
}

#[test]
fn someone_elses_certificate_gets_no_token() {
    let world = World::new();
    let (mut oracle, key) = token_oracle(&world, 4);
    let mallory = Client {
        key: psp_onion::crypto::Sr25519Keypair::from_seed(&[0x66; 32]),
        certificate: world.alice.certificate.clone(),
    };
    let (result, event) = request_token(&world, &mut oracle, &mallory, &key, SESSION);
    assert_eq!(result, Err(StreamError::PossessionSignature));
    assert_eq!(refused(event), OracleRefusal::BadCertificate);
}

#[test]
fn tokens_past_the_bound_are_refused_and_receipts_still_issue() {
    let world = World::new();
    let (mut oracle, key) = token_oracle(&world, 2);
    for i in 0..2u8 {
        let (result, event) = request_token(&world, &mut oracle, &world.alice, &key, [i; 32]);
        result.expect("within the bound");
        token(event);
    }
    let (result, event) = request_token(&world, &mut oracle, &world.alice, &key, [9; 32]);
    assert!(matches!(result, Err(StreamError::Token(_))), "{result:?}");
    assert_eq!(refused(event), OracleRefusal::Exhausted);
    // The receipts bound is counted apart: an HD receipt still issues.
    let (result, event) = request_receipt(
        &world,
        &mut oracle,
        world.oracle_a.node.public(),
        &world.alice,
        &world.oracle_a.hd,
        hd(),
        NOW,
    );
    result.expect("receipt issued");
    issued(event);
    let sub = SubscriptionId(world.alice.id());
    assert_eq!(oracle.issuer().issued(EPOCH, &sub), 1);
    assert_eq!(
        oracle.token_issuer().map(|t| t.issued(EPOCH, &sub)),
        Some(2)
    );
}

#[test]
fn the_bound_counts_tokens_drawn_at_other_oracles_once_merged() {
    let world = World::new();
    let (mut a, key) = token_oracle(&world, 1);
    let (result, event) = request_token(&world, &mut a, &world.alice, &key, SESSION);
    result.expect("issued");
    token(event);
    // Oracle B learns A's token counts and refuses the next one.
    let b_node = NodeId(world.oracle_b.node.public());
    let mut b_tokens = TokenIssuer::new(b_node, 1, 1_024);
    for counts in a.token_issuer().expect("tokens").counts(EPOCH) {
        b_tokens.merge(EPOCH, &counts);
    }
    let b_key = rsa_key(3);
    let b_public = b_key.public_key().clone();
    b_tokens.install_key(EPOCH, b_key).expect("B's token key");
    let mut b = world.oracle(&world.oracle_b, IssuerConfig::default());
    b.set_token_issuer(b_tokens);
    let key = TokenKey {
        public: b_public,
        epoch: EPOCH,
        oracle: b_node,
    };
    let (result, event) = request_token(&world, &mut b, &world.alice, &key, [2; 32]);
    assert!(matches!(result, Err(StreamError::Token(_))), "{result:?}");
    assert_eq!(refused(event), OracleRefusal::Exhausted);
}

#[test]
fn a_token_key_the_oracle_does_not_hold_is_refused() {
    let world = World::new();
    // An oracle without a token issuer.
    let mut oracle = world.oracle(&world.oracle_a, IssuerConfig::default());
    let (_, key) = token_oracle(&world, 4);
    let (result, event) = request_token(&world, &mut oracle, &world.alice, &key, SESSION);
    assert!(
        matches!(result, Err(StreamError::UnknownTier { .. })),
        "{result:?}"
    );
    assert_eq!(refused(event), OracleRefusal::UnknownTier);
    // A token key installed for the next epoch only: not used in this one.
    let node = NodeId(world.oracle_a.node.public());
    let mut tokens = TokenIssuer::new(node, 4, 1_024);
    tokens
        .install_key(EPOCH + 1, rsa_key(TOKEN_RSA))
        .expect("next epoch's key");
    let mut oracle = world.oracle(&world.oracle_a, IssuerConfig::default());
    oracle.set_token_issuer(tokens);
    let (result, event) = request_token(&world, &mut oracle, &world.alice, &key, SESSION);
    assert!(
        matches!(result, Err(StreamError::UnknownTier { .. })),
        "{result:?}"
    );
    assert_eq!(refused(event), OracleRefusal::UnknownTier);
}

#[test]
fn a_receipt_key_yields_no_token_and_the_token_tier_is_no_stream_tier() {
    let world = World::new();
    let (mut oracle, _) = token_oracle(&world, 4);
    // A token request under a receipt key: the oracle cannot tell (blindness) and signs it
    // under the receipt key and the receipts bound; no collector holds that key as a token
    // key, so it counts for nothing.
    let receipt_key = TokenKey {
        public: world.oracle_a.hd.public.clone(),
        epoch: EPOCH,
        oracle: NodeId(world.oracle_a.node.public()),
    };
    let (result, event) = request_token(&world, &mut oracle, &world.alice, &receipt_key, SESSION);
    result.expect("signed as a receipt");
    let token = token(event);
    let (_, token_key) = token_oracle(&world, 4);
    let keys = TokenKeys::new(EPOCH, vec![token_key]).expect("keys");
    assert!(keys.verify(EPOCH, &SESSION, &token).is_err());
    // The all-zero tier the chain publishes token keys under is no stream tier, so landing
    // nodes never install a token key as a receipt key.
    assert!(StreamParams::from_codes(0, 0, 0).is_err());
}

#[test]
fn a_bad_answer_or_silence_ends_the_token_client() {
    let world = World::new();
    let (_, key) = token_oracle(&world, 4);
    let stream = StreamHandle(1);
    let (mut machine, _) = TokenClient::new(
        stream,
        &world.alice.key,
        &world.alice.certificate,
        &key,
        SESSION,
        NOW,
        TIMEOUT,
    )
    .expect("request");
    let forged = OracleMsg::ReceiptIssued {
        blind_signature: BoundedBytes::new("s", vec![1; 256]).expect("bounded"),
    }
    .encode();
    let mut out = machine.handle_data(NOW, &forged);
    assert!(
        matches!(
            out.events.remove(0),
            TokenEvent::Failed(StreamError::Token(_))
        ),
        "a signature that does not verify is refused"
    );
    assert!(machine.is_closed());

    let (mut machine, _) = TokenClient::new(
        stream,
        &world.alice.key,
        &world.alice.certificate,
        &key,
        SESSION,
        NOW,
        TIMEOUT,
    )
    .expect("request");
    assert_eq!(machine.poll_timeout(), Some(NOW + TIMEOUT));
    let mut out = machine.handle_timeout(NOW + TIMEOUT);
    assert!(matches!(
        out.events.remove(0),
        TokenEvent::Failed(StreamError::TimedOut { .. })
    ));
    assert!(machine.handle_stream_closed().is_empty());
}
