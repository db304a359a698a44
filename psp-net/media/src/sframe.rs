//! SFrame (RFC 9605) end-to-end frame encryption, cipher suite `AES_128_GCM_SHA256_128`
//! (0x0004).
//!
//! A stream's producer encrypts every media frame under a stream key that only she and her
//! consumers hold; landing and distribution nodes forward the result as opaque bytes. An SFrame
//! ciphertext is
//!
//! | field | bytes |
//! |---|---|
//! | header: config byte, KID, CTR ([`Header`], RFC 9605 §4.3) | 1 to [`MAX_HEADER_LEN`] = 1 + 8 + 8 |
//! | AES-128-GCM ciphertext of the frame | as the plaintext |
//! | GCM tag | [`TAG_LEN`] = 16 |
//!
//! Keys (§4.4.2): `sframe_secret = HKDF-Extract("", base_key)`, then
//! `sframe_key = HKDF-Expand(sframe_secret, "SFrame 1.0 Secret key " ‖ KID ‖ 0x0004, 16)` and
//! `sframe_salt = HKDF-Expand(sframe_secret, "SFrame 1.0 Secret salt " ‖ KID ‖ 0x0004, 12)`,
//! KID as 8 bytes big-endian, the suite as 2 (SHA-256). The nonce is `sframe_salt` XOR the CTR
//! as 12 bytes big-endian; the AAD is the encoded header followed by the application's
//! metadata (§4.4.3).
//!
//! **Browsers**: every step is in WebCrypto — `HKDF` (`deriveBits` with hash `SHA-256`, an empty
//! salt, the label as `info`) and `AES-GCM` (`iv` = the nonce, `additionalData` = the AAD,
//! `tagLength` 128) — so a consumer decrypts frames in any browser, and later inside an
//! `RTCRtpScriptTransform` worker (whose `SFrameTransform` implements this same RFC).
//!
//! Replay and ordering are not checked here (§7.5 leaves them to the application): a
//! [`Context`] authenticates each frame on its own. To rule out nonce reuse, a key added for
//! encryption takes only strictly increasing counters.

use std::collections::BTreeMap;

use aes_gcm::aead::AeadInPlace;
use aes_gcm::{Aes128Gcm, KeyInit, Nonce, Tag};
use hkdf::Hkdf;
use sha2::Sha256;
use zeroize::Zeroize;

use crate::MediaError;

/// The cipher suite: `AES_128_GCM_SHA256_128` in the IANA "SFrame Cipher Suites" registry.
pub const CIPHER_SUITE: u16 = 0x0004;
/// `AEAD.Nk`: AES-128 key length.
pub const KEY_LEN: usize = 16;
/// `AEAD.Nn`: GCM nonce length.
pub const NONCE_LEN: usize = 12;
/// `AEAD.Nt`: GCM tag length (128 bits).
pub const TAG_LEN: usize = 16;
/// Longest header: the config byte, an 8-byte KID and an 8-byte CTR.
pub const MAX_HEADER_LEN: usize = 1 + 8 + 8;
/// Shortest SFrame ciphertext: a one-byte header, an empty frame, the tag.
pub const MIN_FRAME_LEN: usize = 1 + TAG_LEN;
/// Longest SFrame ciphertext accepted or produced, header and tag included: 1 MiB, above any
/// single video frame of the bitrate classes served (a 20 Mbit/s key frame every 2 s is
/// ~5 MB over 60 frames, and a key frame itself stays well under 1 MiB).
pub const MAX_FRAME_LEN: usize = 1 << 20;
/// Longest metadata authenticated with a frame (§4.4.3; e.g. an RTP header).
pub const MAX_METADATA_LEN: usize = 1024;
/// Keys a [`Context`] holds at once: the current key of each sender and the next ones during
/// rotation.
pub const MAX_KEYS: usize = 16;
/// Shortest base key accepted: `AEAD.Nk`.
pub const MIN_BASE_KEY_LEN: usize = KEY_LEN;
/// Longest base key accepted: `Hash.Nh` × 2.
pub const MAX_BASE_KEY_LEN: usize = 64;

const KEY_LABEL: &[u8] = b"SFrame 1.0 Secret key ";
const SALT_LABEL: &[u8] = b"SFrame 1.0 Secret salt ";

/// An SFrame header: the key id and the counter (RFC 9605 §4.3).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct Header {
    /// Key id: selects the base key.
    pub kid: u64,
    /// Counter: unique per frame under a key, forms the nonce.
    pub ctr: u64,
}

/// Bytes of the shortest big-endian encoding of `v` (at least one).
fn min_len(v: u64) -> usize {
    let bits = 64 - v.leading_zeros() as usize;
    bits.div_ceil(8).max(1)
}

impl Header {
    /// Length of the encoded header.
    pub fn encoded_len(&self) -> usize {
        let field = |v: u64| if v < 8 { 0 } else { min_len(v) };
        1 + field(self.kid) + field(self.ctr)
    }

    /// Appends the encoded header: values 0–7 in the config byte, larger ones in the fewest
    /// big-endian bytes after it, KID first.
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        let (mut config, mut tail) = (0u8, [0u8; 16]);
        let mut n = 0;
        for (v, shift) in [(self.kid, 4), (self.ctr, 0)] {
            if v < 8 {
                config |= (v as u8) << shift;
            } else {
                let len = min_len(v);
                config |= (0x08 | (len as u8 - 1)) << shift;
                tail[n..n + len].copy_from_slice(&v.to_be_bytes()[8 - len..]);
                n += len;
            }
        }
        out.push(config);
        out.extend_from_slice(&tail[..n]);
    }

    /// The encoded header.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(MAX_HEADER_LEN);
        self.encode_into(&mut out);
        out
    }

    /// Decodes the header at the start of `bytes`; returns it and its length. Refuses a
    /// truncated header and any field not in its shortest form.
    pub fn decode(bytes: &[u8]) -> Result<(Self, usize), MediaError> {
        let truncated = |needed: usize| MediaError::Truncated {
            what: "SFrame header",
            needed,
            remaining: bytes.len(),
        };
        let config = *bytes.first().ok_or_else(|| truncated(1))?;
        let mut pos = 1;
        let mut field = |nibble: u8, name: &'static str| -> Result<u64, MediaError> {
            if nibble & 0x08 == 0 {
                return Ok(u64::from(nibble));
            }
            let len = usize::from(nibble & 0x07) + 1;
            let raw = bytes
                .get(pos..pos + len)
                .ok_or_else(|| truncated(pos + len))?;
            pos += len;
            let v = raw.iter().fold(0u64, |acc, b| (acc << 8) | u64::from(*b));
            if v < 8 || min_len(v) != len {
                return Err(MediaError::NonMinimalHeader { field: name });
            }
            Ok(v)
        };
        let kid = field(config >> 4, "KID")?;
        let ctr = field(config & 0x0f, "CTR")?;
        Ok((Self { kid, ctr }, pos))
    }
}

/// The `sframe_key` and `sframe_salt` of `base_key` under `kid` (RFC 9605 §4.4.2). Public for
/// interoperability tests (a browser's WebCrypto derivation must give the same bytes).
pub fn derive_key_salt(kid: u64, base_key: &[u8]) -> ([u8; KEY_LEN], [u8; NONCE_LEN]) {
    let hk = Hkdf::<Sha256>::new(Some(&[]), base_key);
    let mut label = [0u8; 23 + 8 + 2];
    let mut expand = |prefix: &[u8], out: &mut [u8]| {
        let n = prefix.len();
        label[..n].copy_from_slice(prefix);
        label[n..n + 8].copy_from_slice(&kid.to_be_bytes());
        label[n + 8..n + 10].copy_from_slice(&CIPHER_SUITE.to_be_bytes());
        // Nk and Nn are far below HKDF-SHA256's 255 × 32-byte limit.
        hk.expand(&label[..n + 10], out)
            .unwrap_or_else(|_| unreachable!("HKDF output length in range"));
    };
    let (mut key, mut salt) = ([0u8; KEY_LEN], [0u8; NONCE_LEN]);
    expand(KEY_LABEL, &mut key);
    expand(SALT_LABEL, &mut salt);
    (key, salt)
}

/// What a key may do (RFC 9605 §4.4.1: never both, so two senders never share a key).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum KeyUsage {
    /// The producer's key: encrypts.
    Encrypt,
    /// A consumer's copy: decrypts.
    Decrypt,
}

struct KeyEntry {
    usage: KeyUsage,
    cipher: Aes128Gcm,
    salt: [u8; NONCE_LEN],
    /// Lowest counter not yet used for encryption; `None` once 2^64 − 1 was used.
    next_ctr: Option<u64>,
}

impl Drop for KeyEntry {
    fn drop(&mut self) {
        self.salt.zeroize();
    }
}

impl KeyEntry {
    fn nonce(&self, ctr: u64) -> [u8; NONCE_LEN] {
        let mut nonce = self.salt;
        for (n, c) in nonce[NONCE_LEN - 8..].iter_mut().zip(ctr.to_be_bytes()) {
            *n ^= c;
        }
        nonce
    }
}

/// A decrypted frame.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Decrypted {
    /// The frame's header.
    pub header: Header,
    /// The media frame.
    pub plaintext: Vec<u8>,
}

/// An SFrame key store with encryption and decryption (RFC 9605 §4.4). Holds at most
/// [`MAX_KEYS`] keys; frames and metadata are bounded by [`MAX_FRAME_LEN`] and
/// [`MAX_METADATA_LEN`].
#[derive(Default)]
pub struct Context {
    keys: BTreeMap<u64, KeyEntry>,
}

impl core::fmt::Debug for Context {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let kids: Vec<(u64, KeyUsage)> = self.keys.iter().map(|(k, e)| (*k, e.usage)).collect();
        f.debug_struct("Context").field("keys", &kids).finish()
    }
}

impl Context {
    /// An empty key store.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds the base key of `kid` for `usage`: derives its key and salt.
    pub fn add_key(
        &mut self,
        kid: u64,
        base_key: &[u8],
        usage: KeyUsage,
    ) -> Result<(), MediaError> {
        if !(MIN_BASE_KEY_LEN..=MAX_BASE_KEY_LEN).contains(&base_key.len()) {
            return Err(MediaError::BaseKeyLength {
                len: base_key.len(),
            });
        }
        if self.keys.contains_key(&kid) {
            return Err(MediaError::DuplicateKid { kid });
        }
        if self.keys.len() >= MAX_KEYS {
            return Err(MediaError::TooManyKeys { max: MAX_KEYS });
        }
        let (mut key, salt) = derive_key_salt(kid, base_key);
        let cipher = Aes128Gcm::new(&key.into());
        key.zeroize();
        let entry = KeyEntry {
            usage,
            cipher,
            salt,
            next_ctr: Some(0),
        };
        self.keys.insert(kid, entry);
        Ok(())
    }

    /// Removes the key of `kid`; whether there was one.
    pub fn remove_key(&mut self, kid: u64) -> bool {
        self.keys.remove(&kid).is_some()
    }

    /// Keys held.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether no key is held.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Encrypts `plaintext` under the encryption key `kid` with counter `ctr`, authenticating
    /// `metadata` with it; returns the SFrame ciphertext (header ‖ ciphertext ‖ tag).
    ///
    /// `ctr` must be above every counter used before under this key (`CounterReused`
    /// otherwise): a repeated (KID, CTR) would repeat the GCM nonce.
    pub fn encrypt(
        &mut self,
        kid: u64,
        ctr: u64,
        metadata: &[u8],
        plaintext: &[u8],
    ) -> Result<Vec<u8>, MediaError> {
        check_metadata(metadata)?;
        let entry = self
            .keys
            .get_mut(&kid)
            .ok_or(MediaError::UnknownKid { kid })?;
        if entry.usage != KeyUsage::Encrypt {
            return Err(MediaError::WrongKeyUsage {
                kid,
                usage: entry.usage,
            });
        }
        let next = entry.next_ctr.ok_or(MediaError::KeyExhausted { kid })?;
        if ctr < next {
            return Err(MediaError::CounterReused { kid, ctr, next });
        }
        let header = Header { kid, ctr };
        let header_len = header.encoded_len();
        let len = header_len + plaintext.len() + TAG_LEN;
        if len > MAX_FRAME_LEN {
            return Err(MediaError::TooLarge {
                what: "SFrame ciphertext",
                len,
                max: MAX_FRAME_LEN,
            });
        }
        let mut out = Vec::with_capacity(len);
        header.encode_into(&mut out);
        let aad = aad(&out, metadata);
        out.extend_from_slice(plaintext);
        let nonce = entry.nonce(ctr);
        let tag = entry
            .cipher
            .encrypt_in_place_detached(Nonce::from_slice(&nonce), &aad, &mut out[header_len..])
            // aes-gcm refuses only plaintexts beyond 2^36 bytes; MAX_FRAME_LEN is far below.
            .map_err(|_| MediaError::TooLarge {
                what: "SFrame plaintext",
                len: plaintext.len(),
                max: MAX_FRAME_LEN,
            })?;
        out.extend_from_slice(&tag);
        entry.next_ctr = ctr.checked_add(1);
        Ok(out)
    }

    /// Decrypts an SFrame ciphertext with the decryption key its header names, authenticating
    /// `metadata` with it. Refuses frames beyond [`MAX_FRAME_LEN`], truncated frames, unknown
    /// KIDs, and anything that does not authenticate.
    pub fn decrypt(&self, frame: &[u8], metadata: &[u8]) -> Result<Decrypted, MediaError> {
        if frame.len() > MAX_FRAME_LEN {
            return Err(MediaError::TooLarge {
                what: "SFrame ciphertext",
                len: frame.len(),
                max: MAX_FRAME_LEN,
            });
        }
        check_metadata(metadata)?;
        let (header, header_len) = Header::decode(frame)?;
        let body = &frame[header_len..];
        if body.len() < TAG_LEN {
            return Err(MediaError::TooShort {
                what: "SFrame ciphertext",
                len: frame.len(),
                min: header_len + TAG_LEN,
            });
        }
        let kid = header.kid;
        let entry = self.keys.get(&kid).ok_or(MediaError::UnknownKid { kid })?;
        if entry.usage != KeyUsage::Decrypt {
            return Err(MediaError::WrongKeyUsage {
                kid,
                usage: entry.usage,
            });
        }
        let (ciphertext, tag) = body.split_at(body.len() - TAG_LEN);
        let aad = aad(&frame[..header_len], metadata);
        let mut plaintext = ciphertext.to_vec();
        let nonce = entry.nonce(header.ctr);
        entry
            .cipher
            .decrypt_in_place_detached(
                Nonce::from_slice(&nonce),
                &aad,
                &mut plaintext,
                Tag::from_slice(tag),
            )
            .map_err(|_| MediaError::Authentication {
                kid,
                ctr: header.ctr,
            })?;
        Ok(Decrypted { header, plaintext })
    }
}

fn check_metadata(metadata: &[u8]) -> Result<(), MediaError> {
    if metadata.len() > MAX_METADATA_LEN {
        return Err(MediaError::TooLarge {
            what: "SFrame metadata",
            len: metadata.len(),
            max: MAX_METADATA_LEN,
        });
    }
    Ok(())
}

/// The AAD: encoded header ‖ metadata (both bounded, so small).
fn aad(header: &[u8], metadata: &[u8]) -> Vec<u8> {
    let mut aad = Vec::with_capacity(header.len() + metadata.len());
    aad.extend_from_slice(header);
    aad.extend_from_slice(metadata);
    aad
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shortest_form_is_required() {
        // KID 5 written in the extended form (X=1, one byte 0x05).
        assert_eq!(
            Header::decode(&[0x80, 0x05]),
            Err(MediaError::NonMinimalHeader { field: "KID" })
        );
        // CTR 0x0100 written on three bytes.
        assert_eq!(
            Header::decode(&[0x0a, 0x00, 0x01, 0x00]),
            Err(MediaError::NonMinimalHeader { field: "CTR" })
        );
        assert_eq!(
            Header::decode(&[0x09, 0x01, 0x00]),
            Ok((Header { kid: 0, ctr: 256 }, 3))
        );
    }

    #[test]
    fn nonce_is_salt_xor_counter() {
        let mut ctx = Context::new();
        ctx.add_key(1, &[7; 16], KeyUsage::Decrypt).unwrap();
        let entry = &ctx.keys[&1];
        let n = entry.nonce(0x0102);
        assert_eq!(n[..10], entry.salt[..10]);
        assert_eq!(n[10], entry.salt[10] ^ 0x01);
        assert_eq!(n[11], entry.salt[11] ^ 0x02);
    }
}
