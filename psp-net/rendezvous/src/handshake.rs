//! The end-to-end key exchange between Alice (initiator) and Bob (responder), SIGMA-I style,
//! over the two circuits the rendezvous node joined.
//!
//! 1. Alice draws an ephemeral X25519 key `a` and puts `A = a·G` in her sealed introduction
//!    (with her identity `IA` and the cookie `C`).
//! 2. Bob draws `b`, computes the transcript hash
//!    `th = BLAKE2b-256("psp/rendezvous/handshake/v1" ‖ C ‖ IA ‖ IB ‖ A ‖ B)` and
//!    `HKDF-SHA256(salt = th, ikm = X25519(b, A))` → four keys: one to seal each side's
//!    signature, one per direction for the channel. His reply, carried in `Join`:
//!    version 1 · `B` 32 · seal(responder key, signature of IB over
//!    "psp/rendezvous/handshake/responder/v1" ‖ th) 64 + 16 = 113 bytes.
//! 3. Alice derives the same keys, opens and checks Bob's signature, and sends her finish as
//!    the first relayed bytes: version 1 · seal(initiator key, signature of IA over
//!    "psp/rendezvous/handshake/initiator/v1" ‖ th) 64 + 16 = 81 bytes.
//! 4. Bob opens and checks it; both hold a [`Channel`].
//!
//! Each side proves its identity key over both ephemerals, both identities and the cookie;
//! the role tags keep a signature from being reflected. The signatures travel sealed, so the
//! rendezvous node (which sees `B` and the cookie, never `A`) cannot test identity guesses.
//! Forward secrecy comes from the ephemerals: the keys die with `a` and `b`.

use psp_onion::crypto::{blake2_256_parts, sr25519_verify, Sr25519Keypair, SIGNATURE_LEN};
use zeroize::Zeroizing;

use crate::channel::{Channel, ChannelConfig, Direction};
use crate::crypto::{self, KEY_LEN, TAG_LEN};
use crate::ids::Cookie;
use crate::intro::VerifiedIntroduction;
use crate::wire::HandshakeBytes;

const VERSION: u8 = 1;
const TRANSCRIPT_CONTEXT: &[u8] = b"psp/rendezvous/handshake/v1";
const RESPONDER_SIGN_CONTEXT: &[u8] = b"psp/rendezvous/handshake/responder/v1";
const INITIATOR_SIGN_CONTEXT: &[u8] = b"psp/rendezvous/handshake/initiator/v1";
const LABELS: [&[u8]; 4] = [
    b"psp/rendezvous/handshake/responder-seal",
    b"psp/rendezvous/handshake/initiator-seal",
    b"psp/rendezvous/channel/initiator-to-responder",
    b"psp/rendezvous/channel/responder-to-initiator",
];

/// Bob's reply: version 1 + `B` 32 + sealed signature (64 + 16) = 113 bytes.
pub const REPLY_LEN: usize = 1 + KEY_LEN + SIGNATURE_LEN + TAG_LEN;
/// Alice's finish: version 1 + sealed signature (64 + 16) = 81 bytes.
pub const FINISH_LEN: usize = 1 + SIGNATURE_LEN + TAG_LEN;

const _: () = assert!(REPLY_LEN <= crate::wire::MAX_HANDSHAKE_LEN);

/// Why the handshake failed. Any failure ends the attempt: close both circuits.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HandshakeError {
    /// A handshake message of the wrong length.
    #[error("handshake {message} of {len} bytes (expected {expected})")]
    BadLength {
        /// `reply` or `finish`.
        message: &'static str,
        /// Its length.
        len: usize,
        /// The expected length.
        expected: usize,
    },
    /// Unknown handshake version.
    #[error("unsupported handshake version {0}")]
    Version(u8),
    /// The peer's ephemeral key is a low-order point.
    #[error("non-contributory ephemeral key from the peer")]
    NonContributory,
    /// The sealed signature did not open: the peer holds other keys, or the bytes were changed.
    #[error("handshake {message} does not open (other keys, or altered)")]
    DoesNotOpen {
        /// `reply` or `finish`.
        message: &'static str,
    },
    /// The peer's signature over the transcript does not verify under the identity expected.
    #[error("the {role}'s signature over the transcript does not verify")]
    Signature {
        /// `responder` or `initiator`.
        role: &'static str,
    },
    /// The key pair passed in is not the identity the handshake was started for.
    #[error("identity key pair does not match the handshake's identity")]
    WrongIdentityKey,
}

/// The keys both sides derive from the ephemerals and the transcript.
struct Keys {
    transcript: [u8; 32],
    responder_seal: crypto::SymmetricKey,
    initiator_seal: crypto::SymmetricKey,
    initiator_to_responder: crypto::SymmetricKey,
    responder_to_initiator: crypto::SymmetricKey,
}

struct Transcript<'a> {
    cookie: &'a Cookie,
    initiator: &'a [u8; 32],
    responder: &'a [u8; 32],
    initiator_ephemeral: &'a [u8; 32],
    responder_ephemeral: &'a [u8; 32],
}

impl Transcript<'_> {
    fn keys(&self, shared: &[u8; KEY_LEN]) -> Keys {
        let transcript = blake2_256_parts(&[
            TRANSCRIPT_CONTEXT,
            &self.cookie.0,
            self.initiator,
            self.responder,
            self.initiator_ephemeral,
            self.responder_ephemeral,
        ]);
        let [responder_seal, initiator_seal, initiator_to_responder, responder_to_initiator] =
            crypto::derive_keys(&transcript, shared, LABELS);
        Keys {
            transcript,
            responder_seal,
            initiator_seal,
            initiator_to_responder,
            responder_to_initiator,
        }
    }
}

fn signed_message(context: &[u8], transcript: &[u8; 32]) -> Vec<u8> {
    [context, transcript].concat()
}

/// Alice's side, from before the introduction until Bob's reply.
pub struct InitiatorHandshake {
    identity: [u8; 32],
    responder: [u8; 32],
    cookie: Cookie,
    ephemeral: Zeroizing<[u8; KEY_LEN]>,
    ephemeral_public: [u8; KEY_LEN],
}

impl core::fmt::Debug for InitiatorHandshake {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("InitiatorHandshake")
            .field("cookie", &self.cookie)
            .finish_non_exhaustive()
    }
}

impl InitiatorHandshake {
    /// Starts a handshake from `identity` (our identity key) to `responder` (Bob's identity
    /// key, from his presence record) for the rendezvous `cookie`.
    pub fn new(
        identity: [u8; 32],
        responder: [u8; 32],
        cookie: Cookie,
        rng: &mut dyn rand_core::CryptoRngCore,
    ) -> Self {
        let ephemeral = crypto::random_secret(rng);
        let ephemeral_public = crypto::x25519_public(&ephemeral);
        Self {
            identity,
            responder,
            cookie,
            ephemeral,
            ephemeral_public,
        }
    }

    /// The ephemeral key to put in the introduction (`Introduction::handshake_key`).
    pub fn handshake_key(&self) -> [u8; 32] {
        self.ephemeral_public
    }

    /// The cookie this handshake is bound to.
    pub fn cookie(&self) -> &Cookie {
        &self.cookie
    }

    /// Checks Bob's reply (from `Joined`) and answers: returns the finish bytes to relay
    /// first, and the channel. `identity_key` must be the key pair of our identity.
    pub fn finish(
        self,
        identity_key: &Sr25519Keypair,
        reply: &[u8],
        config: ChannelConfig,
    ) -> Result<(Vec<u8>, Channel), HandshakeError> {
        if identity_key.public() != self.identity {
            return Err(HandshakeError::WrongIdentityKey);
        }
        if reply.len() != REPLY_LEN {
            return Err(HandshakeError::BadLength {
                message: "reply",
                len: reply.len(),
                expected: REPLY_LEN,
            });
        }
        let (version, rest) = reply.split_at(1);
        if version != [VERSION] {
            return Err(HandshakeError::Version(
                version.first().copied().unwrap_or(0),
            ));
        }
        let (responder_ephemeral, sealed_signature) = rest.split_at(KEY_LEN);
        let mut responder_ephemeral_key = [0u8; KEY_LEN];
        responder_ephemeral_key.copy_from_slice(responder_ephemeral);
        let shared = crypto::x25519(&self.ephemeral, &responder_ephemeral_key)
            .map_err(|_| HandshakeError::NonContributory)?;
        let keys = Transcript {
            cookie: &self.cookie,
            initiator: &self.identity,
            responder: &self.responder,
            initiator_ephemeral: &self.ephemeral_public,
            responder_ephemeral: &responder_ephemeral_key,
        }
        .keys(&shared);
        let aad = [&[VERSION][..], &responder_ephemeral_key].concat();
        let signature = crypto::open(&keys.responder_seal, 0, &aad, sealed_signature)
            .map_err(|_| HandshakeError::DoesNotOpen { message: "reply" })?;
        let signature: [u8; SIGNATURE_LEN] = signature
            .try_into()
            .map_err(|_| HandshakeError::DoesNotOpen { message: "reply" })?;
        let message = signed_message(RESPONDER_SIGN_CONTEXT, &keys.transcript);
        if !sr25519_verify(&self.responder, &message, &signature) {
            return Err(HandshakeError::Signature { role: "responder" });
        }
        let our_signature =
            identity_key.sign(&signed_message(INITIATOR_SIGN_CONTEXT, &keys.transcript));
        let mut finish = Vec::with_capacity(FINISH_LEN);
        finish.push(VERSION);
        finish.extend_from_slice(&crypto::seal(
            &keys.initiator_seal,
            0,
            &[VERSION],
            &our_signature,
        ));
        let channel = Channel::new(
            self.responder,
            Direction {
                send: keys.initiator_to_responder,
                receive: keys.responder_to_initiator,
            },
            config,
        );
        Ok((finish, channel))
    }
}

/// Bob's side, after his reply, waiting for Alice's finish. A client drops it if no finish
/// arrives in its own deadline (the rendezvous node closes idle links too).
pub struct ResponderHandshake {
    initiator: [u8; 32],
    keys: Keys,
}

impl core::fmt::Debug for ResponderHandshake {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("ResponderHandshake").finish_non_exhaustive()
    }
}

impl ResponderHandshake {
    /// Answers a checked introduction: returns the reply for `Join` and the state waiting for
    /// the finish. `identity_key` is our (Bob's) identity key pair.
    pub fn respond(
        identity_key: &Sr25519Keypair,
        introduction: &VerifiedIntroduction,
        rng: &mut dyn rand_core::CryptoRngCore,
    ) -> Result<(HandshakeBytes, Self), HandshakeError> {
        let intro = introduction.introduction();
        Self::respond_to(
            identity_key,
            &intro.introducer,
            &intro.handshake_key,
            &intro.cookie,
            rng,
        )
    }

    /// [`Self::respond`] from the parts: the initiator's identity and ephemeral key, and the
    /// cookie, all from a checked introduction.
    pub fn respond_to(
        identity_key: &Sr25519Keypair,
        initiator: &[u8; 32],
        initiator_ephemeral: &[u8; 32],
        cookie: &Cookie,
        rng: &mut dyn rand_core::CryptoRngCore,
    ) -> Result<(HandshakeBytes, Self), HandshakeError> {
        let ephemeral = crypto::random_secret(rng);
        let ephemeral_public = crypto::x25519_public(&ephemeral);
        let shared = crypto::x25519(&ephemeral, initiator_ephemeral)
            .map_err(|_| HandshakeError::NonContributory)?;
        let identity = identity_key.public();
        let keys = Transcript {
            cookie,
            initiator,
            responder: &identity,
            initiator_ephemeral,
            responder_ephemeral: &ephemeral_public,
        }
        .keys(&shared);
        let signature =
            identity_key.sign(&signed_message(RESPONDER_SIGN_CONTEXT, &keys.transcript));
        let aad = [&[VERSION][..], &ephemeral_public].concat();
        let mut reply = Vec::with_capacity(REPLY_LEN);
        reply.push(VERSION);
        reply.extend_from_slice(&ephemeral_public);
        reply.extend_from_slice(&crypto::seal(&keys.responder_seal, 0, &aad, &signature));
        // REPLY_LEN ≤ MAX_HANDSHAKE_LEN (checked at compile time above).
        let reply = HandshakeBytes::new("handshake reply", reply).map_err(|_| {
            HandshakeError::BadLength {
                message: "reply",
                len: REPLY_LEN,
                expected: REPLY_LEN,
            }
        })?;
        Ok((
            reply,
            Self {
                initiator: *initiator,
                keys,
            },
        ))
    }

    /// Checks Alice's finish (the first relayed bytes) and opens the channel.
    pub fn finish(self, finish: &[u8], config: ChannelConfig) -> Result<Channel, HandshakeError> {
        if finish.len() != FINISH_LEN {
            return Err(HandshakeError::BadLength {
                message: "finish",
                len: finish.len(),
                expected: FINISH_LEN,
            });
        }
        let (version, sealed_signature) = finish.split_at(1);
        if version != [VERSION] {
            return Err(HandshakeError::Version(
                version.first().copied().unwrap_or(0),
            ));
        }
        let signature = crypto::open(&self.keys.initiator_seal, 0, &[VERSION], sealed_signature)
            .map_err(|_| HandshakeError::DoesNotOpen { message: "finish" })?;
        let signature: [u8; SIGNATURE_LEN] = signature
            .try_into()
            .map_err(|_| HandshakeError::DoesNotOpen { message: "finish" })?;
        let message = signed_message(INITIATOR_SIGN_CONTEXT, &self.keys.transcript);
        if !sr25519_verify(&self.initiator, &message, &signature) {
            return Err(HandshakeError::Signature { role: "initiator" });
        }
        Ok(Channel::new(
            self.initiator,
            Direction {
                send: self.keys.responder_to_initiator,
                receive: self.keys.initiator_to_responder,
            },
            config,
        ))
    }
}

/// The handshake message decoders, for the fuzz target: a finish against fixed keys.
pub(crate) fn fuzz_decode(data: &[u8]) -> Result<(), HandshakeError> {
    let keys = Transcript {
        cookie: &Cookie([0; 32]),
        initiator: &[0; 32],
        responder: &[0; 32],
        initiator_ephemeral: &[0; 32],
        responder_ephemeral: &[0; 32],
    }
    .keys(&[1; KEY_LEN]);
    let responder = ResponderHandshake {
        initiator: [0; 32],
        keys,
    };
    responder.finish(data, ChannelConfig::default()).map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A reply whose transcript names Bob, sealed under the right keys, but signed by
    /// Mallory: only the signature check catches it.
    #[test]
    fn a_reply_signed_by_another_key_fails_the_signature_check() {
        let alice = Sr25519Keypair::from_seed(&[1; 32]);
        let bob = Sr25519Keypair::from_seed(&[2; 32]);
        let mallory = Sr25519Keypair::from_seed(&[3; 32]);
        let cookie = Cookie([5; 32]);
        let initiator = InitiatorHandshake {
            identity: alice.public(),
            responder: bob.public(),
            cookie,
            ephemeral: Zeroizing::new([6; 32]),
            ephemeral_public: crypto::x25519_public(&[6; 32]),
        };
        let ephemeral = [7u8; 32];
        let ephemeral_public = crypto::x25519_public(&ephemeral);
        let shared = crypto::x25519(&ephemeral, &initiator.ephemeral_public).unwrap();
        let keys = Transcript {
            cookie: &cookie,
            initiator: &alice.public(),
            responder: &bob.public(),
            initiator_ephemeral: &initiator.ephemeral_public,
            responder_ephemeral: &ephemeral_public,
        }
        .keys(&shared);
        let forged = mallory.sign(&signed_message(RESPONDER_SIGN_CONTEXT, &keys.transcript));
        let aad = [&[VERSION][..], &ephemeral_public].concat();
        let mut reply = vec![VERSION];
        reply.extend_from_slice(&ephemeral_public);
        reply.extend_from_slice(&crypto::seal(&keys.responder_seal, 0, &aad, &forged));
        assert_eq!(
            initiator
                .finish(&alice, &reply, ChannelConfig::default())
                .unwrap_err(),
            HandshakeError::Signature { role: "responder" }
        );

        // The same on Bob's side: a finish sealed right but signed by Mallory.
        let responder = ResponderHandshake {
            initiator: alice.public(),
            keys,
        };
        let forged = mallory.sign(&signed_message(
            INITIATOR_SIGN_CONTEXT,
            &responder.keys.transcript,
        ));
        let mut finish = vec![VERSION];
        finish.extend_from_slice(&crypto::seal(
            &responder.keys.initiator_seal,
            0,
            &[VERSION],
            &forged,
        ));
        assert_eq!(
            responder
                .finish(&finish, ChannelConfig::default())
                .unwrap_err(),
            HandshakeError::Signature { role: "initiator" }
        );
    }
}
