//! The primitives of groups: the only module naming primitive crates.
//!
//! * Pairwise seals ([`seal_to`], [`open_sealed`]): a fresh ephemeral X25519 key per seal,
//!   HKDF-SHA256 over the product, ChaCha20-Poly1305 under the derived single-use key. They
//!   carry a new group key to each member in a rollout and the welcome to a newcomer.
//! * The group key [`GroupKey`] and its AEAD ([`GroupKey::seal`], [`GroupKey::open`]) for
//!   group messages, with a random 96-bit nonce per message.
//! * Hashes: BLAKE2b-256 from `psp_onion::crypto`, the project's hash.
//!
//! Every secret is zeroized when dropped.

use chacha20poly1305::aead::{Aead, Payload};
use chacha20poly1305::{ChaCha20Poly1305, KeyInit, Nonce};
use hkdf::Hkdf;
use sha2::Sha256;
use x25519_dalek::{PublicKey, StaticSecret};
use zeroize::Zeroizing;

use crate::ids::AgreementKey;

/// Length of an X25519 key and of every symmetric key: 256 bits.
pub const KEY_LEN: usize = 32;
/// Length of a ChaCha20-Poly1305 tag: 128 bits.
pub const TAG_LEN: usize = 16;
/// Length of a ChaCha20-Poly1305 nonce: 96 bits.
pub const NONCE_LEN: usize = 12;
/// Overhead of a pairwise seal: the ephemeral public key (32) + the tag (16) = 48 bytes.
pub const SEAL_OVERHEAD: usize = KEY_LEN + TAG_LEN;

/// HKDF salt of every pairwise seal (the label of the scheme and its version).
const SEAL_SALT: &[u8] = b"psp/group/seal/v1";

/// The sealed or opened bytes did not authenticate: wrong key, wrong context, or changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SealBroken;

/// A member's X25519 key-agreement secret: rollout keys and welcomes are sealed to its public
/// half ([`AgreementKey`]). Zeroized on drop.
#[derive(Clone)]
pub struct AgreementSecret(Zeroizing<[u8; KEY_LEN]>);

impl AgreementSecret {
    /// The secret from its 32 bytes (clamped by X25519 when used).
    pub fn from_bytes(bytes: [u8; KEY_LEN]) -> Self {
        Self(Zeroizing::new(bytes))
    }

    /// Draws a fresh secret.
    pub fn random(rng: &mut dyn rand_core::CryptoRngCore) -> Self {
        Self(random_key(rng))
    }

    pub(crate) fn bytes(&self) -> &[u8; KEY_LEN] {
        &self.0
    }

    /// The public key the other members seal to.
    pub fn public(&self) -> AgreementKey {
        AgreementKey(PublicKey::from(&StaticSecret::from(*self.0)).to_bytes())
    }
}

impl core::fmt::Debug for AgreementSecret {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "AgreementSecret(public {:?})", self.public())
    }
}

/// The group key `K_c` of one key epoch. Zeroized on drop, so replacing it in a rollout
/// erases the old one.
#[derive(Clone)]
pub struct GroupKey(Zeroizing<[u8; KEY_LEN]>);

impl GroupKey {
    /// Draws a fresh group key.
    pub fn random(rng: &mut dyn rand_core::CryptoRngCore) -> Self {
        Self(random_key(rng))
    }

    pub(crate) fn from_bytes(bytes: [u8; KEY_LEN]) -> Self {
        Self(Zeroizing::new(bytes))
    }

    pub(crate) fn bytes(&self) -> &[u8; KEY_LEN] {
        &self.0
    }

    /// A public fingerprint of the key (BLAKE2b-256 of a label and the key): lets tests and
    /// operators compare keys across members without showing them.
    pub fn fingerprint(&self) -> [u8; 32] {
        psp_onion::crypto::blake2_256_parts(&[b"psp/group/key-fingerprint/v1", &self.0[..]])
    }

    /// ChaCha20-Poly1305 under the group key: `ciphertext ‖ tag`.
    pub(crate) fn seal(&self, nonce: &[u8; NONCE_LEN], aad: &[u8], plaintext: &[u8]) -> Vec<u8> {
        aead_seal(&self.0, nonce, aad, plaintext)
    }

    /// Opens a [`GroupKey::seal`].
    pub(crate) fn open(
        &self,
        nonce: &[u8; NONCE_LEN],
        aad: &[u8],
        sealed: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, SealBroken> {
        aead_open(&self.0, nonce, aad, sealed)
    }
}

impl core::fmt::Debug for GroupKey {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(
            f,
            "GroupKey(fingerprint {:02x?}..)",
            &self.fingerprint()[..4]
        )
    }
}

/// 32 fresh secret bytes.
fn random_key(rng: &mut dyn rand_core::CryptoRngCore) -> Zeroizing<[u8; KEY_LEN]> {
    let mut key = Zeroizing::new([0u8; KEY_LEN]);
    rng.fill_bytes(key.as_mut());
    key
}

/// A fresh random nonce.
pub(crate) fn random_nonce(rng: &mut dyn rand_core::CryptoRngCore) -> [u8; NONCE_LEN] {
    let mut nonce = [0u8; NONCE_LEN];
    rng.fill_bytes(&mut nonce);
    nonce
}

fn aead_seal(key: &[u8; KEY_LEN], nonce: &[u8; NONCE_LEN], aad: &[u8], msg: &[u8]) -> Vec<u8> {
    let cipher = ChaCha20Poly1305::new(key.into());
    // Encryption fails only for plaintexts beyond 2^38 bytes, far above every bound here;
    // an empty result would fail to open, never leak.
    cipher
        .encrypt(Nonce::from_slice(nonce), Payload { msg, aad })
        .unwrap_or_default()
}

fn aead_open(
    key: &[u8; KEY_LEN],
    nonce: &[u8; NONCE_LEN],
    aad: &[u8],
    msg: &[u8],
) -> Result<Zeroizing<Vec<u8>>, SealBroken> {
    let cipher = ChaCha20Poly1305::new(key.into());
    cipher
        .decrypt(Nonce::from_slice(nonce), Payload { msg, aad })
        .map(Zeroizing::new)
        .map_err(|_| SealBroken)
}

/// `HKDF-SHA256(salt, X25519(secret, peer) ‖ E ‖ R, info = context)`: the sender passes
/// `(e, R)`, the recipient `(r, E)`; both get the same single-use key.
fn seal_key(
    secret: &[u8; KEY_LEN],
    peer: &[u8; KEY_LEN],
    ephemeral_public: &[u8; KEY_LEN],
    recipient_public: &[u8; KEY_LEN],
    context: &[u8],
) -> Result<Zeroizing<[u8; KEY_LEN]>, SealBroken> {
    let shared = StaticSecret::from(*secret).diffie_hellman(&PublicKey::from(*peer));
    // A low-order peer key gives an all-zero product that anyone could compute.
    if !shared.was_contributory() {
        return Err(SealBroken);
    }
    let mut ikm = Zeroizing::new(Vec::with_capacity(3 * KEY_LEN));
    ikm.extend_from_slice(shared.as_bytes());
    ikm.extend_from_slice(ephemeral_public);
    ikm.extend_from_slice(recipient_public);
    let mut key = Zeroizing::new([0u8; KEY_LEN]);
    // 32 bytes are far below HKDF-SHA256's limit of 255 × 32: expand cannot fail.
    let _ = Hkdf::<Sha256>::new(Some(SEAL_SALT), &ikm).expand(context, key.as_mut());
    Ok(key)
}

/// Seals `plaintext` to `recipient`: `E ‖ ChaCha20-Poly1305(k, nonce 0, aad = context,
/// plaintext)`, [`SEAL_OVERHEAD`] bytes longer than the plaintext. The nonce can be fixed
/// because `k` comes from a fresh ephemeral key and seals exactly once. `context` binds the
/// seal to its use (message kind, group, epoch, sender, recipient).
pub(crate) fn seal_to(
    recipient: &AgreementKey,
    context: &[u8],
    plaintext: &[u8],
    rng: &mut dyn rand_core::CryptoRngCore,
) -> Result<Vec<u8>, SealBroken> {
    let ephemeral = random_key(rng);
    let ephemeral_public = PublicKey::from(&StaticSecret::from(*ephemeral)).to_bytes();
    let key = seal_key(
        &ephemeral,
        &recipient.0,
        &ephemeral_public,
        &recipient.0,
        context,
    )?;
    let mut out = Vec::with_capacity(SEAL_OVERHEAD + plaintext.len());
    out.extend_from_slice(&ephemeral_public);
    out.extend_from_slice(&aead_seal(&key, &[0; NONCE_LEN], context, plaintext));
    Ok(out)
}

/// Opens a [`seal_to`] with the recipient's secret and the same `context`.
pub(crate) fn open_sealed(
    recipient: &AgreementSecret,
    context: &[u8],
    sealed: &[u8],
) -> Result<Zeroizing<Vec<u8>>, SealBroken> {
    if sealed.len() < SEAL_OVERHEAD {
        return Err(SealBroken);
    }
    let (ephemeral_public, ciphertext) = sealed.split_at(KEY_LEN);
    let mut eph = [0u8; KEY_LEN];
    eph.copy_from_slice(ephemeral_public);
    let key = seal_key(&recipient.0, &eph, &eph, &recipient.public().0, context)?;
    aead_open(&key, &[0; NONCE_LEN], context, ciphertext)
}

/// Whether anything can be sealed to `key`: a low-order point (which X25519 maps to zero
/// whatever the secret, clamping making every scalar a multiple of the cofactor) cannot.
pub(crate) fn agreement_key_usable(key: &AgreementKey) -> bool {
    StaticSecret::from([0x42; KEY_LEN])
        .diffie_hellman(&PublicKey::from(key.0))
        .was_contributory()
}

/// BLAKE2b-256 over parts, as if concatenated.
pub(crate) fn hash(parts: &[&[u8]]) -> [u8; 32] {
    psp_onion::crypto::blake2_256_parts(parts)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_core::OsRng;

    #[test]
    fn seal_opens_only_for_the_recipient_and_context() {
        let alice = AgreementSecret::random(&mut OsRng);
        let bob = AgreementSecret::random(&mut OsRng);
        let sealed = seal_to(&alice.public(), b"ctx", b"hello", &mut OsRng).expect("seal");
        assert_eq!(sealed.len(), 5 + SEAL_OVERHEAD);
        assert_eq!(
            open_sealed(&alice, b"ctx", &sealed)
                .expect("opens")
                .as_slice(),
            b"hello"
        );
        assert!(open_sealed(&bob, b"ctx", &sealed).is_err());
        assert!(open_sealed(&alice, b"other", &sealed).is_err());
        let mut changed = sealed.clone();
        changed[40] ^= 1;
        assert!(open_sealed(&alice, b"ctx", &changed).is_err());
        assert!(open_sealed(&alice, b"ctx", &sealed[..20]).is_err());
    }

    #[test]
    fn low_order_recipient_is_refused() {
        // The all-zero point has order 1: X25519 gives zero, which must not be used as a key.
        assert!(seal_to(&AgreementKey([0; 32]), b"ctx", b"x", &mut OsRng).is_err());
    }

    #[test]
    fn group_key_seal_round_trips_and_other_keys_fail() {
        let k = GroupKey::random(&mut OsRng);
        let other = GroupKey::random(&mut OsRng);
        let nonce = random_nonce(&mut OsRng);
        let sealed = k.seal(&nonce, b"aad", b"message");
        assert_eq!(
            k.open(&nonce, b"aad", &sealed).expect("opens").as_slice(),
            b"message"
        );
        assert!(other.open(&nonce, b"aad", &sealed).is_err());
        assert!(k.open(&nonce, b"aaD", &sealed).is_err());
        assert_ne!(k.fingerprint(), other.fingerprint());
    }
}
