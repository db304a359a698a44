//! The end-to-end handshake: both identities proven, keys agree, impostors and altered
//! messages refused.

mod common;

use common::*;
use psp_onion::crypto::Sr25519Keypair;
use psp_rendezvous::channel::ChannelConfig;
use psp_rendezvous::handshake::{
    HandshakeError, InitiatorHandshake, ResponderHandshake, FINISH_LEN, REPLY_LEN,
};
use psp_rendezvous::Cookie;

const COOKIE: Cookie = Cookie([0x33; 32]);

fn keys() -> (Sr25519Keypair, Sr25519Keypair, TestRng) {
    (
        Sr25519Keypair::from_seed(&[1; 32]),
        Sr25519Keypair::from_seed(&[2; 32]),
        TestRng::new(7),
    )
}

#[test]
fn both_sides_prove_their_identity_and_agree_on_keys() {
    let (alice, bob, mut rng) = keys();
    let initiator = InitiatorHandshake::new(alice.public(), bob.public(), COOKIE, &mut rng);
    let (reply, responder) = ResponderHandshake::respond_to(
        &bob,
        &alice.public(),
        &initiator.handshake_key(),
        &COOKIE,
        &mut rng,
    )
    .unwrap();
    assert_eq!(reply.len(), REPLY_LEN);
    let config = ChannelConfig::default();
    let (finish, mut alice_channel) = initiator.finish(&alice, reply.as_slice(), config).unwrap();
    assert_eq!(finish.len(), FINISH_LEN);
    let mut bob_channel = responder.finish(&finish, config).unwrap();
    assert_eq!(alice_channel.peer_identity(), &bob.public());
    assert_eq!(bob_channel.peer_identity(), &alice.public());
    let frames = alice_channel.seal_message(b"hello bob").unwrap();
    assert_eq!(
        bob_channel.open_frame(&frames[0]).unwrap().unwrap(),
        b"hello bob"
    );
    let frames = bob_channel.seal_message(b"hello alice").unwrap();
    assert_eq!(
        alice_channel.open_frame(&frames[0]).unwrap().unwrap(),
        b"hello alice"
    );
}

#[test]
fn an_impostor_answering_for_bob_is_refused() {
    let (alice, bob, mut rng) = keys();
    let mallory = Sr25519Keypair::from_seed(&[3; 32]);
    let initiator = InitiatorHandshake::new(alice.public(), bob.public(), COOKIE, &mut rng);
    let (reply, _) = ResponderHandshake::respond_to(
        &mallory,
        &alice.public(),
        &initiator.handshake_key(),
        &COOKIE,
        &mut rng,
    )
    .unwrap();
    assert_eq!(
        initiator
            .finish(&alice, reply.as_slice(), ChannelConfig::default())
            .unwrap_err(),
        // Mallory's transcript names her, so even the seal does not open for Alice (the
        // signature check behind it is tested in the handshake module's unit tests).
        HandshakeError::DoesNotOpen { message: "reply" }
    );
}

#[test]
fn an_impostor_finishing_for_alice_is_refused() {
    let (alice, bob, mut rng) = keys();
    let mallory = Sr25519Keypair::from_seed(&[3; 32]);
    // Mallory holds Alice's ephemeral secret side but signs with her own identity key: Bob
    // expects Alice, whose identity came in the checked introduction.
    let initiator = InitiatorHandshake::new(mallory.public(), bob.public(), COOKIE, &mut rng);
    let (reply, responder) = ResponderHandshake::respond_to(
        &bob,
        &alice.public(),
        &initiator.handshake_key(),
        &COOKIE,
        &mut rng,
    )
    .unwrap();
    // Mallory's transcript names herself, so Bob's signature does not verify for her...
    assert!(initiator
        .finish(&mallory, reply.as_slice(), ChannelConfig::default())
        .is_err());
    // ...and a finish made for another transcript does not open at Bob.
    let other = InitiatorHandshake::new(alice.public(), bob.public(), COOKIE, &mut rng);
    let (other_reply, _) = ResponderHandshake::respond_to(
        &bob,
        &alice.public(),
        &other.handshake_key(),
        &COOKIE,
        &mut rng,
    )
    .unwrap();
    let (finish, _) = other
        .finish(&alice, other_reply.as_slice(), ChannelConfig::default())
        .unwrap();
    assert_eq!(
        responder
            .finish(&finish, ChannelConfig::default())
            .unwrap_err(),
        HandshakeError::DoesNotOpen { message: "finish" }
    );
}

#[test]
fn altered_and_malformed_handshake_messages_are_refused() {
    let (alice, bob, mut rng) = keys();
    let config = ChannelConfig::default();
    for i in 0..REPLY_LEN {
        let initiator = InitiatorHandshake::new(alice.public(), bob.public(), COOKIE, &mut rng);
        let (reply, _) = ResponderHandshake::respond_to(
            &bob,
            &alice.public(),
            &initiator.handshake_key(),
            &COOKIE,
            &mut rng,
        )
        .unwrap();
        let mut altered = reply.as_slice().to_vec();
        altered[i] ^= 0x80;
        assert!(
            initiator.finish(&alice, &altered, config).is_err(),
            "byte {i}"
        );
    }
    let initiator = InitiatorHandshake::new(alice.public(), bob.public(), COOKIE, &mut rng);
    let (reply, responder) = ResponderHandshake::respond_to(
        &bob,
        &alice.public(),
        &initiator.handshake_key(),
        &COOKIE,
        &mut rng,
    )
    .unwrap();
    let (mut finish, _) = initiator.finish(&alice, reply.as_slice(), config).unwrap();
    finish[40] ^= 1;
    assert_eq!(
        responder.finish(&finish, config).unwrap_err(),
        HandshakeError::DoesNotOpen { message: "finish" }
    );
    // Wrong lengths, a wrong key pair, a low-order ephemeral.
    let initiator = InitiatorHandshake::new(alice.public(), bob.public(), COOKIE, &mut rng);
    assert!(matches!(
        initiator.finish(&bob, &[1; REPLY_LEN], config),
        Err(HandshakeError::WrongIdentityKey)
    ));
    let initiator = InitiatorHandshake::new(alice.public(), bob.public(), COOKIE, &mut rng);
    assert!(matches!(
        initiator.finish(&alice, &[1; 12], config),
        Err(HandshakeError::BadLength { .. })
    ));
    let initiator = InitiatorHandshake::new(alice.public(), bob.public(), COOKIE, &mut rng);
    let mut low_order = [0u8; REPLY_LEN];
    low_order[0] = 1;
    assert_eq!(
        initiator.finish(&alice, &low_order, config).unwrap_err(),
        HandshakeError::NonContributory
    );
    assert!(matches!(
        ResponderHandshake::respond_to(&bob, &alice.public(), &[0; 32], &COOKIE, &mut rng),
        Err(HandshakeError::NonContributory)
    ));
}
