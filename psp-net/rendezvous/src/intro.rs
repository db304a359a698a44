//! The introduction: what Alice tells Bob through his presence node, sealed so that only Bob
//! can read it.
//!
//! Sealing (an ECIES): Alice draws an ephemeral X25519 key `e`, computes
//! `k = HKDF-SHA256(salt = "psp/rendezvous/intro/seal/v1", ikm = X25519(e, B) ‖ E ‖ B)`
//! for Bob's announcement key `B` (registered with his identity on chain, certified in his
//! access certificate) and `E = e·G`, and seals the plaintext with ChaCha20-Poly1305 under `k`
//! (nonce 0: the key is used once). The presence node carries the bytes and learns nothing of
//! Alice; anyone without `b` fails to open them.
//!
//! Sealed layout: version 1 · `E` 32 · ciphertext · tag 16.
//! Plaintext layout: introducer identity 32 · certificate (2 + ≤ 512) · rendezvous node 32 ·
//! cookie 32 · handshake key 32 · timestamp 8 · nonce 16 · signature 64.
//!
//! The signature is Alice's identity key over the tag `psp/rendezvous/intro/v1`, Bob's identity
//! and every field before it, so Bob knows who asks before he accepts, and an introduction
//! cannot be re-sealed to someone else. Opening yields an [`UncheckedIntroduction`]; only
//! [`UncheckedIntroduction::check`] (time window, signature, certificate, replay cache) yields
//! the usable [`VerifiedIntroduction`].

use psp_cert::VerifiedCertificate;
use psp_onion::bytes::Reader;
use psp_onion::crypto::{sr25519_verify, Sr25519Keypair, Sr25519Signature, SIGNATURE_LEN};

use crate::chain::{CertificateError, ChainView};
use crate::crypto::{self, AnnouncementSecret, KEY_LEN, TAG_LEN};
use crate::ids::Cookie;
use crate::record::MAX_CERTIFICATE_LEN;
use crate::replay::ReplayCache;
use crate::wire::{SealedIntroduction, WireError, MAX_SEALED_INTRODUCTION_LEN};

const SEAL_VERSION: u8 = 1;
const SEAL_SALT: &[u8] = b"psp/rendezvous/intro/seal/v1";
const SEAL_KEY_LABEL: &[u8] = b"psp/rendezvous/intro/key";
const SIGN_CONTEXT: &[u8] = b"psp/rendezvous/intro/v1";

/// Length of the random nonce that names an introduction in the replay cache: 128 bits.
pub const NONCE_LEN: usize = 16;
/// Plaintext without the certificate: introducer 32 + certificate length 2 + rendezvous node
/// 32 + cookie 32 + handshake key 32 + timestamp 8 + nonce 16 + signature 64 = 218 bytes.
const PLAINTEXT_FIXED_LEN: usize = 32 + 2 + 32 + 32 + KEY_LEN + 8 + NONCE_LEN + SIGNATURE_LEN;
/// Largest sealed introduction: version 1 + `E` 32 + (218 + 512) + tag 16 = 779 bytes.
pub const MAX_SEALED_LEN: usize = 1 + KEY_LEN + PLAINTEXT_FIXED_LEN + MAX_CERTIFICATE_LEN + TAG_LEN;
/// Smallest sealed introduction (empty certificate): 1 + 32 + 218 + 16 = 267 bytes.
const MIN_SEALED_LEN: usize = 1 + KEY_LEN + PLAINTEXT_FIXED_LEN + TAG_LEN;

const _: () = assert!(MAX_SEALED_LEN <= MAX_SEALED_INTRODUCTION_LEN);

/// Why an introduction could not be sealed, opened or accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum IntroError {
    /// Sealing with a key pair that is not the introduction's introducer.
    #[error("the signing key is not the introduction's introducer")]
    WrongIntroducerKey,
    /// The certificate is longer than an introduction carries.
    #[error("certificate of {len} bytes exceeds the limit of {MAX_CERTIFICATE_LEN}")]
    CertificateTooLong {
        /// Its length.
        len: usize,
    },
    /// The sealed bytes have an impossible length.
    #[error("sealed introduction of {len} bytes (must be {MIN_SEALED_LEN}..={MAX_SEALED_LEN})")]
    BadLength {
        /// Their length.
        len: usize,
    },
    /// Unknown seal version.
    #[error("unsupported introduction version {0}")]
    Version(u8),
    /// The recipient's or sender's X25519 key is a low-order point.
    #[error("non-contributory X25519 key in the introduction")]
    NonContributory,
    /// The seal did not open: sealed to another announcement key, or altered on the way.
    #[error(
        "introduction does not open with this announcement key (another recipient, or altered)"
    )]
    DoesNotOpen,
    /// The plaintext did not decode.
    #[error("introduction plaintext malformed: {0}")]
    Malformed(#[from] WireError),
    /// The timestamp is too old or too far in the future.
    #[error("introduction of time {timestamp} outside ±{window_secs} s of now ({now})")]
    OutsideWindow {
        /// The introduction's timestamp.
        timestamp: u64,
        /// Current time.
        now: u64,
        /// The accepted skew.
        window_secs: u64,
    },
    /// The introducer's signature does not verify.
    #[error("introducer signature does not verify")]
    Signature,
    /// The introducer's certificate was refused.
    #[error("introducer certificate: {0}")]
    Certificate(#[from] CertificateError),
    /// This introduction was seen before.
    #[error("replayed introduction")]
    Replayed,
    /// The replay cache is full of unexpired entries; refusing is safer than forgetting.
    #[error("replay cache full ({capacity} introductions inside the window)")]
    ReplayCacheFull {
        /// The cache's capacity.
        capacity: usize,
    },
}

/// What an introduction says.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Introduction {
    /// The introducer's identity key (sr25519).
    pub introducer: [u8; 32],
    /// The introducer's access certificate, encoded.
    pub certificate: Vec<u8>,
    /// The node where the introducer waits (its node identity).
    pub rendezvous_node: [u8; 32],
    /// The one-time cookie established there.
    pub cookie: Cookie,
    /// The introducer's ephemeral X25519 key for the end-to-end handshake.
    pub handshake_key: [u8; 32],
    /// Unix seconds when it was made.
    pub timestamp: u64,
    /// Random: names the introduction in the recipient's replay cache.
    pub nonce: [u8; NONCE_LEN],
}

impl Introduction {
    /// A fresh introduction at `now`, with a random nonce.
    pub fn new(
        introducer: [u8; 32],
        certificate: Vec<u8>,
        rendezvous_node: [u8; 32],
        cookie: Cookie,
        handshake_key: [u8; 32],
        now: u64,
        rng: &mut dyn rand_core::CryptoRngCore,
    ) -> Self {
        let mut nonce = [0u8; NONCE_LEN];
        rng.fill_bytes(&mut nonce);
        Self {
            introducer,
            certificate,
            rendezvous_node,
            cookie,
            handshake_key,
            timestamp: now,
            nonce,
        }
    }

    /// The fields the signature covers, in plaintext order.
    fn encode_fields(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.introducer);
        // `seal` bounds the certificate first.
        let len = u16::try_from(self.certificate.len()).unwrap_or(u16::MAX);
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(&self.certificate);
        out.extend_from_slice(&self.rendezvous_node);
        out.extend_from_slice(&self.cookie.0);
        out.extend_from_slice(&self.handshake_key);
        out.extend_from_slice(&self.timestamp.to_be_bytes());
        out.extend_from_slice(&self.nonce);
    }

    fn signing_message(&self, recipient: &[u8; 32]) -> Vec<u8> {
        let mut m = Vec::with_capacity(SIGN_CONTEXT.len() + 32 + PLAINTEXT_FIXED_LEN);
        m.extend_from_slice(SIGN_CONTEXT);
        m.extend_from_slice(recipient);
        self.encode_fields(&mut m);
        m
    }

    /// Signs with the introducer's key and seals to the recipient's announcement key.
    pub fn seal(
        &self,
        introducer_key: &Sr25519Keypair,
        recipient_identity: &[u8; 32],
        recipient_announcement_key: &[u8; 32],
        rng: &mut dyn rand_core::CryptoRngCore,
    ) -> Result<SealedIntroduction, IntroError> {
        if introducer_key.public() != self.introducer {
            return Err(IntroError::WrongIntroducerKey);
        }
        if self.certificate.len() > MAX_CERTIFICATE_LEN {
            return Err(IntroError::CertificateTooLong {
                len: self.certificate.len(),
            });
        }
        let signature = introducer_key.sign(&self.signing_message(recipient_identity));
        let mut plaintext = Vec::with_capacity(PLAINTEXT_FIXED_LEN + self.certificate.len());
        self.encode_fields(&mut plaintext);
        plaintext.extend_from_slice(&signature);

        let ephemeral = crypto::random_secret(rng);
        let ephemeral_public = crypto::x25519_public(&ephemeral);
        let key = seal_key(
            &ephemeral,
            recipient_announcement_key,
            &ephemeral_public,
            recipient_announcement_key,
        )?;
        let mut sealed = Vec::with_capacity(MAX_SEALED_LEN);
        sealed.push(SEAL_VERSION);
        sealed.extend_from_slice(&ephemeral_public);
        let aad = seal_aad(&ephemeral_public, recipient_announcement_key);
        sealed.extend_from_slice(&crypto::seal(&key, 0, &aad, &plaintext));
        Ok(SealedIntroduction::new("sealed introduction", sealed)?)
    }
}

/// `HKDF(salt, X25519(secret, peer) ‖ E ‖ B)`: the sender passes `(e, B)`, the recipient
/// `(b, E)`; both get the same key.
fn seal_key(
    secret: &[u8; KEY_LEN],
    peer: &[u8; KEY_LEN],
    ephemeral_public: &[u8; KEY_LEN],
    recipient_public: &[u8; KEY_LEN],
) -> Result<crypto::SymmetricKey, IntroError> {
    let shared = crypto::x25519(secret, peer).map_err(|_| IntroError::NonContributory)?;
    let mut ikm = zeroize::Zeroizing::new(Vec::with_capacity(3 * KEY_LEN));
    ikm.extend_from_slice(shared.as_ref());
    ikm.extend_from_slice(ephemeral_public);
    ikm.extend_from_slice(recipient_public);
    let [key] = crypto::derive_keys(SEAL_SALT, &ikm, [SEAL_KEY_LABEL]);
    Ok(key)
}

fn seal_aad(ephemeral_public: &[u8; KEY_LEN], recipient_public: &[u8; KEY_LEN]) -> Vec<u8> {
    [&[SEAL_VERSION][..], ephemeral_public, recipient_public].concat()
}

/// Opens a sealed introduction with the recipient's announcement secret. Nothing in it is
/// trusted yet.
pub fn open(
    sealed: &[u8],
    recipient: &AnnouncementSecret,
) -> Result<UncheckedIntroduction, IntroError> {
    if !(MIN_SEALED_LEN..=MAX_SEALED_LEN).contains(&sealed.len()) {
        return Err(IntroError::BadLength { len: sealed.len() });
    }
    let mut r = Reader::new(sealed);
    let version = r.u8().map_err(WireError::from)?;
    if version != SEAL_VERSION {
        return Err(IntroError::Version(version));
    }
    let ephemeral_public: [u8; KEY_LEN] = r.array().map_err(WireError::from)?;
    let ciphertext = r.take(r.remaining()).map_err(WireError::from)?;
    let recipient_public = recipient.public();
    let key = seal_key(
        recipient.bytes(),
        &ephemeral_public,
        &ephemeral_public,
        &recipient_public,
    )?;
    let aad = seal_aad(&ephemeral_public, &recipient_public);
    let plaintext = zeroize::Zeroizing::new(
        crypto::open(&key, 0, &aad, ciphertext).map_err(|_| IntroError::DoesNotOpen)?,
    );
    decode_plaintext(&plaintext)
}

fn decode_plaintext(plaintext: &[u8]) -> Result<UncheckedIntroduction, IntroError> {
    let mut r = Reader::new(plaintext);
    let introducer = r.array().map_err(WireError::from)?;
    let cert_len = usize::from(r.u16().map_err(WireError::from)?);
    if cert_len > MAX_CERTIFICATE_LEN {
        return Err(IntroError::CertificateTooLong { len: cert_len });
    }
    let certificate = r.take(cert_len).map_err(WireError::from)?.to_vec();
    let introduction = Introduction {
        introducer,
        certificate,
        rendezvous_node: r.array().map_err(WireError::from)?,
        cookie: Cookie(r.array().map_err(WireError::from)?),
        handshake_key: r.array().map_err(WireError::from)?,
        timestamp: r.u64().map_err(WireError::from)?,
        nonce: r.array().map_err(WireError::from)?,
    };
    let signature = r.array().map_err(WireError::from)?;
    if r.remaining() != 0 {
        return Err(IntroError::Malformed(WireError::TrailingBytes {
            message: "introduction",
            count: r.remaining(),
        }));
    }
    Ok(UncheckedIntroduction {
        introduction,
        signature,
    })
}

/// The plaintext decoder, for the fuzz target.
pub(crate) fn fuzz_decode_plaintext(data: &[u8]) -> Result<(), IntroError> {
    decode_plaintext(data).map(|_| ())
}

/// An opened introduction, not checked yet: unusable until [`UncheckedIntroduction::check`].
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct UncheckedIntroduction {
    introduction: Introduction,
    signature: Sr25519Signature,
}

impl UncheckedIntroduction {
    /// Checks, cheapest first: the time window, the introducer's signature (addressed to
    /// `recipient_identity`, ours), the certificate against `chain` (live, from an elected
    /// authority, for the introducer), and last the replay cache, which remembers it.
    pub fn check(
        self,
        now: u64,
        recipient_identity: &[u8; 32],
        chain: &ChainView<'_>,
        replay: &mut ReplayCache,
    ) -> Result<VerifiedIntroduction, IntroError> {
        let intro = self.introduction;
        replay.check_window(now, intro.timestamp)?;
        let message = intro.signing_message(recipient_identity);
        if !sr25519_verify(&intro.introducer, &message, &self.signature) {
            return Err(IntroError::Signature);
        }
        let certificate = chain.verify_certificate(&intro.certificate, now, &intro.introducer)?;
        replay.insert(now, intro.timestamp, intro.nonce)?;
        Ok(VerifiedIntroduction {
            introduction: intro,
            certificate,
        })
    }
}

/// An introduction whose signature, certificate, time and freshness were checked.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct VerifiedIntroduction {
    introduction: Introduction,
    certificate: VerifiedCertificate,
}

impl VerifiedIntroduction {
    /// What it says.
    pub fn introduction(&self) -> &Introduction {
        &self.introduction
    }

    /// The introducer's checked certificate.
    pub fn certificate(&self) -> &VerifiedCertificate {
        &self.certificate
    }

    /// The introducer's identity key.
    pub fn introducer(&self) -> &[u8; 32] {
        &self.introduction.introducer
    }
}
