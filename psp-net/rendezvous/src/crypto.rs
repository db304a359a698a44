//! The primitives of private messaging: the only module naming primitive crates.
//!
//! X25519 (x25519-dalek) for the sealed introduction and the end-to-end handshake,
//! HKDF-SHA256 for every key derivation, ChaCha20-Poly1305 for every seal. Signatures and
//! hashes come from `psp_onion::crypto` (sr25519, BLAKE2b-256), shared with the rest of the
//! overlay. Every secret here is zeroized when dropped.

use chacha20poly1305::aead::{Aead, Payload};
use chacha20poly1305::{ChaCha20Poly1305, KeyInit, Nonce};
use hkdf::Hkdf;
use sha2::Sha256;
use x25519_dalek::{PublicKey, StaticSecret};
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

/// Length of an X25519 key and of every symmetric key: 256 bits.
pub const KEY_LEN: usize = 32;
/// Length of a ChaCha20-Poly1305 tag: 128 bits.
pub const TAG_LEN: usize = 16;

/// A symmetric key, zeroized on drop.
pub(crate) type SymmetricKey = Zeroizing<[u8; KEY_LEN]>;

/// The Diffie-Hellman result was all zeros: the peer's key is a low-order point.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct NonContributory;

/// The seal did not open: wrong key, or the bytes were changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SealBroken;

/// A client's X25519 announcement secret: the private half of the key registered with its
/// identity on chain (and certified in its access certificate). Introductions are sealed to
/// the public half. Zeroized on drop.
#[derive(Zeroize, ZeroizeOnDrop)]
pub struct AnnouncementSecret([u8; KEY_LEN]);

impl AnnouncementSecret {
    /// The secret from its 32 bytes (clamped by X25519 when used).
    pub fn from_bytes(bytes: [u8; KEY_LEN]) -> Self {
        Self(bytes)
    }

    /// Draws a fresh secret.
    pub fn random(rng: &mut dyn rand_core::CryptoRngCore) -> Self {
        Self(*random_secret(rng))
    }

    /// The public announcement key, as registered on chain.
    pub fn public(&self) -> [u8; KEY_LEN] {
        x25519_public(&self.0)
    }

    pub(crate) fn bytes(&self) -> &[u8; KEY_LEN] {
        &self.0
    }
}

impl core::fmt::Debug for AnnouncementSecret {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(
            f,
            "AnnouncementSecret(public {:02x?}..)",
            &self.public()[..4]
        )
    }
}

/// 32 fresh secret bytes.
pub(crate) fn random_secret(rng: &mut dyn rand_core::CryptoRngCore) -> Zeroizing<[u8; KEY_LEN]> {
    let mut secret = Zeroizing::new([0u8; KEY_LEN]);
    rng.fill_bytes(secret.as_mut());
    secret
}

/// The X25519 public key of a secret.
pub(crate) fn x25519_public(secret: &[u8; KEY_LEN]) -> [u8; KEY_LEN] {
    PublicKey::from(&StaticSecret::from(*secret)).to_bytes()
}

/// X25519 of our secret and their public key; refuses a non-contributory result.
pub(crate) fn x25519(
    secret: &[u8; KEY_LEN],
    public: &[u8; KEY_LEN],
) -> Result<SymmetricKey, NonContributory> {
    let shared = StaticSecret::from(*secret).diffie_hellman(&PublicKey::from(*public));
    if !shared.was_contributory() {
        return Err(NonContributory);
    }
    Ok(Zeroizing::new(shared.to_bytes()))
}

/// HKDF-SHA256: extract with `salt` from `ikm`, expand one 32-byte key per label.
pub(crate) fn derive_keys<const N: usize>(
    salt: &[u8],
    ikm: &[u8],
    labels: [&[u8]; N],
) -> [SymmetricKey; N] {
    let hk = Hkdf::<Sha256>::new(Some(salt), ikm);
    labels.map(|label| {
        let mut key = Zeroizing::new([0u8; KEY_LEN]);
        // 32 bytes are far below HKDF-SHA256's limit of 255 × 32: expand cannot fail.
        let _ = hk.expand(label, key.as_mut());
        key
    })
}

/// The 96-bit nonce of message number `counter` under a key.
fn nonce(counter: u64) -> Nonce {
    let mut n = [0u8; 12];
    n[4..].copy_from_slice(&counter.to_be_bytes());
    n.into()
}

/// ChaCha20-Poly1305 seal: `ciphertext || tag`, `plaintext.len() + 16` bytes.
pub(crate) fn seal(key: &[u8; KEY_LEN], counter: u64, aad: &[u8], plaintext: &[u8]) -> Vec<u8> {
    let cipher = ChaCha20Poly1305::new(key.into());
    // Encryption fails only for plaintexts beyond 2^38 bytes, far above every bound here;
    // an empty result would fail to open, never leak.
    cipher
        .encrypt(
            &nonce(counter),
            Payload {
                msg: plaintext,
                aad,
            },
        )
        .unwrap_or_default()
}

/// Opens a [`seal`]: checks the tag first (constant time), then decrypts.
pub(crate) fn open(
    key: &[u8; KEY_LEN],
    counter: u64,
    aad: &[u8],
    sealed: &[u8],
) -> Result<Vec<u8>, SealBroken> {
    let cipher = ChaCha20Poly1305::new(key.into());
    cipher
        .decrypt(&nonce(counter), Payload { msg: sealed, aad })
        .map_err(|_| SealBroken)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_opens_only_with_the_same_key_counter_and_aad() {
        let key = [7u8; 32];
        let sealed = seal(&key, 3, b"aad", b"hello");
        assert_eq!(sealed.len(), 5 + TAG_LEN);
        assert_eq!(open(&key, 3, b"aad", &sealed).unwrap(), b"hello");
        assert_eq!(open(&key, 4, b"aad", &sealed), Err(SealBroken));
        assert_eq!(open(&key, 3, b"aaD", &sealed), Err(SealBroken));
        assert_eq!(open(&[8; 32], 3, b"aad", &sealed), Err(SealBroken));
        assert_eq!(open(&key, 3, b"aad", &sealed[..4]), Err(SealBroken));
    }

    #[test]
    fn x25519_agrees_and_refuses_low_order_points() {
        let (a, b) = ([1u8; 32], [2u8; 32]);
        let ab = x25519(&a, &x25519_public(&b)).unwrap();
        let ba = x25519(&b, &x25519_public(&a)).unwrap();
        assert_eq!(*ab, *ba);
        assert_eq!(x25519(&a, &[0u8; 32]), Err(NonContributory));
    }
}
