//! The keystore: one JSON file holding an identity's secrets, encrypted under a passphrase.
//!
//! # What is in it
//!
//! The secrets are the 32-byte sr25519 *seed* of the identity key (the mini secret key that
//! Substrate's `Pair::from_seed` and `subxt_signer::sr25519::Keypair::from_secret_key` expand)
//! and the 32-byte X25519 static secret. The two public keys are stored in clear too, so that
//! `psp key show` and `psp identity show --keystore` work without the passphrase; they are
//! authenticated (as AEAD associated data) whenever the file is opened.
//!
//! # Format (version 1)
//!
//! ```json
//! {
//!   "version": 1,
//!   "public": { "sr25519": "0x…32 bytes", "x25519": "0x…32 bytes" },
//!   "kdf": { "algorithm": "argon2id", "argon2Version": 19,
//!            "memoryKib": 65536, "iterations": 3, "parallelism": 1, "salt": "…16 bytes" },
//!   "passphraseCheck": "…32 bytes",
//!   "cipher": { "algorithm": "xchacha20poly1305", "nonce": "…24 bytes", "ciphertext": "…80 bytes" }
//! }
//! ```
//!
//! Byte strings are hex. Argon2id (v1.3) turns the passphrase and salt into 64 bytes: the first
//! 32 are the XChaCha20-Poly1305 key, the second 32 are stored as `passphraseCheck`. The check
//! lets a wrong passphrase ([`Error::WrongPassphrase`]) be told apart from a modified file
//! ([`Error::KeystoreTampered`]); it costs an attacker nothing extra, as every guess already
//! costs one Argon2id run. The plaintext is `sr25519 seed ‖ x25519 secret` (64 bytes); the
//! associated data binds the version, both public keys, the KDF parameters and the salt.
//!
//! # KDF parameters
//!
//! [`KdfParams::RECOMMENDED`] is 64 MiB of memory, 3 passes, 1 lane: RFC 9106's
//! memory-constrained profile with one more pass, about a third of a second on a laptop core.
//! Tests may set `PSP_KEYSTORE_TEST_KDF=1` (or pass `--insecure-test-kdf`) to get
//! [`KdfParams::INSECURE_TEST`] (64 KiB, 1 pass) for files that are thrown away. The parameters
//! are stored in the file, so either kind opens with any build; absurd stored parameters (above
//! [`KdfParams::MAX_MEMORY_KIB`] etc.) are refused rather than run.
//!
//! # Writing
//!
//! Files are created with mode 0600, written to a temporary file in the same directory and then
//! moved into place, so a crash never leaves half a keystore; without `overwrite` an existing
//! file is never replaced.

use crate::error::{Error, Result};
use argon2::{Algorithm, Argon2, Params, Version};
use chacha20poly1305::{
    aead::{Aead, Payload},
    KeyInit, XChaCha20Poly1305, XNonce,
};
use psp_primitives::{IdString, IdentityKind};
use rand::{rngs::OsRng, RngCore};
use serde::{Deserialize, Serialize};
use std::{
    fs,
    io::Write,
    path::{Path, PathBuf},
};
use subxt_signer::sr25519::Keypair;
use x25519_dalek::{PublicKey as X25519Public, StaticSecret};
use zeroize::Zeroizing;

/// The format version this build reads and writes.
pub const KEYSTORE_VERSION: u32 = 1;
/// Environment variable holding the passphrase when no `--passphrase-file` is given.
pub const PASSPHRASE_ENV: &str = "PSP_PASSPHRASE";
/// Environment variable that selects [`KdfParams::INSECURE_TEST`] when set to `1`.
pub const TEST_KDF_ENV: &str = "PSP_KEYSTORE_TEST_KDF";

const KDF_NAME: &str = "argon2id";
const CIPHER_NAME: &str = "xchacha20poly1305";
const SALT_LEN: usize = 16;
const NONCE_LEN: usize = 24;
/// Plaintext: sr25519 seed (32) + X25519 secret (32).
const PLAINTEXT_LEN: usize = 64;
/// Ciphertext: plaintext + 16-byte Poly1305 tag.
const CIPHERTEXT_LEN: usize = PLAINTEXT_LEN + 16;
const AAD_TAG: &[u8] = b"psp-keystore/v1\0";

/// Argon2id cost parameters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KdfParams {
    /// Memory in KiB.
    pub memory_kib: u32,
    /// Number of passes.
    pub iterations: u32,
    /// Number of lanes.
    pub parallelism: u32,
}

impl KdfParams {
    /// The default: 64 MiB, 3 passes, 1 lane.
    pub const RECOMMENDED: KdfParams = KdfParams {
        memory_kib: 64 * 1024,
        iterations: 3,
        parallelism: 1,
    };
    /// For tests only: 64 KiB, 1 pass, 1 lane. Offers no protection against guessing.
    pub const INSECURE_TEST: KdfParams = KdfParams {
        memory_kib: 64,
        iterations: 1,
        parallelism: 1,
    };
    /// Largest memory cost a file may ask for (1 GiB): a crafted file must not exhaust memory.
    pub const MAX_MEMORY_KIB: u32 = 1024 * 1024;
    /// Largest pass count a file may ask for.
    pub const MAX_ITERATIONS: u32 = 64;
    /// Largest lane count a file may ask for.
    pub const MAX_PARALLELISM: u32 = 16;

    /// [`Self::INSECURE_TEST`] if `PSP_KEYSTORE_TEST_KDF=1`, else [`Self::RECOMMENDED`].
    pub fn from_env() -> Self {
        match std::env::var(TEST_KDF_ENV) {
            Ok(v) if v == "1" => Self::INSECURE_TEST,
            _ => Self::RECOMMENDED,
        }
    }

    fn within_limits(&self) -> bool {
        self.memory_kib <= Self::MAX_MEMORY_KIB
            && (1..=Self::MAX_ITERATIONS).contains(&self.iterations)
            && (1..=Self::MAX_PARALLELISM).contains(&self.parallelism)
    }
}

/// An identity's secrets: the sr25519 identity seed and the X25519 static secret.
pub struct Keys {
    seed: Zeroizing<[u8; 32]>,
    keypair: Keypair,
    x25519: StaticSecret,
}

impl std::fmt::Debug for Keys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keys")
            .field("sr25519", &crate::hex0x(&self.identity_public()))
            .field("x25519", &crate::hex0x(&self.x25519_public()))
            .finish_non_exhaustive()
    }
}

impl Keys {
    /// Fresh random keys from the operating system's RNG.
    pub fn generate() -> Result<Self> {
        let mut seed = Zeroizing::new([0u8; 32]);
        OsRng.fill_bytes(&mut seed[..]);
        Self::build(seed, random_x25519())
    }

    /// Keys from raw secrets (the sr25519 seed and the X25519 secret).
    pub fn from_secrets(seed: [u8; 32], x25519_secret: [u8; 32]) -> Result<Self> {
        Self::build(Zeroizing::new(seed), StaticSecret::from(x25519_secret))
    }

    fn build(seed: Zeroizing<[u8; 32]>, x25519: StaticSecret) -> Result<Self> {
        let keypair = Keypair::from_secret_key(*seed).map_err(|e| Error::InvalidInput {
            what: "sr25519 seed",
            reason: e.to_string(),
        })?;
        Ok(Self {
            seed,
            keypair,
            x25519,
        })
    }

    /// The sr25519 identity key pair.
    pub fn identity_keypair(&self) -> &Keypair {
        &self.keypair
    }

    /// The sr25519 identity seed (mini secret key), for the overlay's own signer
    /// (`psp_net::crypto::Sr25519Keypair::from_seed` expands it the same way).
    pub fn identity_seed(&self) -> &[u8; 32] {
        &self.seed
    }

    /// The sr25519 identity public key.
    pub fn identity_public(&self) -> [u8; 32] {
        self.identity_keypair().public_key().0
    }

    /// The X25519 public key.
    pub fn x25519_public(&self) -> [u8; 32] {
        X25519Public::from(&self.x25519).to_bytes()
    }

    /// The X25519 static secret.
    pub fn x25519_secret(&self) -> &StaticSecret {
        &self.x25519
    }

    /// The same identity key with a fresh random X25519 secret.
    pub fn with_new_x25519(&self) -> Keys {
        Keys {
            seed: self.seed.clone(),
            keypair: self.keypair.clone(),
            x25519: random_x25519(),
        }
    }

    /// The public half.
    pub fn public(&self) -> PublicKeys {
        PublicKeys {
            sr25519: self.identity_public(),
            x25519: self.x25519_public(),
        }
    }
}

fn random_x25519() -> StaticSecret {
    let mut bytes = Zeroizing::new([0u8; 32]);
    OsRng.fill_bytes(&mut bytes[..]);
    StaticSecret::from(*bytes)
}

/// The public keys of an identity.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PublicKeys {
    /// The sr25519 identity key.
    pub sr25519: [u8; 32],
    /// The X25519 key.
    pub x25519: [u8; 32],
}

impl PublicKeys {
    /// The id string this key has under the given namespaces and kind.
    pub fn id_string(&self, namespace: &str, kind: IdentityKind, app: &str) -> Result<IdString> {
        IdString::new(namespace, kind, app, self.sr25519).map_err(|e| Error::InvalidInput {
            what: "namespace",
            reason: e.to_string(),
        })
    }
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct FileV1 {
    version: u32,
    public: PublicJson,
    kdf: KdfJson,
    passphrase_check: String,
    cipher: CipherJson,
}

#[derive(Serialize, Deserialize)]
struct PublicJson {
    sr25519: String,
    x25519: String,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct KdfJson {
    algorithm: String,
    argon2_version: u32,
    memory_kib: u32,
    iterations: u32,
    parallelism: u32,
    salt: String,
}

#[derive(Serialize, Deserialize)]
struct CipherJson {
    algorithm: String,
    nonce: String,
    ciphertext: String,
}

#[derive(Deserialize)]
struct VersionOnly {
    version: u32,
}

/// Reads the passphrase from `file` (one trailing newline removed) or else from
/// `PSP_PASSPHRASE`. Never prompts.
pub fn read_passphrase(file: Option<&Path>) -> Result<Zeroizing<String>> {
    let mut pass =
        match file {
            Some(path) => Zeroizing::new(fs::read_to_string(path).map_err(|source| {
                Error::PassphraseFile {
                    path: path.to_path_buf(),
                    source,
                }
            })?),
            None => match std::env::var(PASSPHRASE_ENV) {
                Ok(v) => Zeroizing::new(v),
                Err(_) => return Err(Error::NoPassphrase),
            },
        };
    while pass.ends_with('\n') || pass.ends_with('\r') {
        pass.pop();
    }
    if pass.is_empty() {
        return Err(Error::EmptyPassphrase);
    }
    Ok(pass)
}

/// [`read_passphrase`], but `None` instead of [`Error::NoPassphrase`] when neither `file` nor
/// `PSP_PASSPHRASE` gives one (for commands that work without decrypting).
pub fn read_passphrase_if_given(file: Option<&Path>) -> Result<Option<Zeroizing<String>>> {
    match read_passphrase(file) {
        Ok(passphrase) => Ok(Some(passphrase)),
        Err(Error::NoPassphrase) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Reads the passphrase ([`read_passphrase`]) and opens the keystore at `path` with it.
pub fn open(path: &Path, passphrase_file: Option<&Path>) -> Result<Keys> {
    let passphrase = read_passphrase(passphrase_file)?;
    load(path, &passphrase)
}

fn derive(
    passphrase: &str,
    salt: &[u8],
    params: KdfParams,
) -> Result<(Zeroizing<[u8; 32]>, [u8; 32])> {
    let p = Params::new(
        params.memory_kib,
        params.iterations,
        params.parallelism,
        Some(64),
    )
    .map_err(|e| Error::Kdf {
        reason: e.to_string(),
    })?;
    let mut out = Zeroizing::new([0u8; 64]);
    Argon2::new(Algorithm::Argon2id, Version::V0x13, p)
        .hash_password_into(passphrase.as_bytes(), salt, &mut out[..])
        .map_err(|e| Error::Kdf {
            reason: e.to_string(),
        })?;
    let mut key = Zeroizing::new([0u8; 32]);
    key.copy_from_slice(&out[..32]);
    let mut check = [0u8; 32];
    check.copy_from_slice(&out[32..]);
    Ok((key, check))
}

fn aad(public: &PublicKeys, params: KdfParams, salt: &[u8]) -> Vec<u8> {
    let mut aad = Vec::with_capacity(AAD_TAG.len() + 4 + 64 + 12 + salt.len());
    aad.extend_from_slice(AAD_TAG);
    aad.extend_from_slice(&KEYSTORE_VERSION.to_le_bytes());
    aad.extend_from_slice(&public.sr25519);
    aad.extend_from_slice(&public.x25519);
    aad.extend_from_slice(&params.memory_kib.to_le_bytes());
    aad.extend_from_slice(&params.iterations.to_le_bytes());
    aad.extend_from_slice(&params.parallelism.to_le_bytes());
    aad.extend_from_slice(salt);
    aad
}

/// Encrypts `keys` under `passphrase` into the keystore's JSON text.
pub fn encrypt(keys: &Keys, passphrase: &str, params: KdfParams) -> Result<String> {
    let mut salt = [0u8; SALT_LEN];
    OsRng.fill_bytes(&mut salt);
    let mut nonce = [0u8; NONCE_LEN];
    OsRng.fill_bytes(&mut nonce);
    let (key, check) = derive(passphrase, &salt, params)?;
    let public = keys.public();
    let mut plaintext = Zeroizing::new([0u8; PLAINTEXT_LEN]);
    plaintext[..32].copy_from_slice(&keys.seed[..]);
    plaintext[32..].copy_from_slice(keys.x25519.as_bytes());
    let cipher = XChaCha20Poly1305::new((&*key).into());
    let ciphertext = cipher
        .encrypt(
            XNonce::from_slice(&nonce),
            Payload {
                msg: &plaintext[..],
                aad: &aad(&public, params, &salt),
            },
        )
        .map_err(|_| Error::Kdf {
            reason: "encryption failed".into(),
        })?;
    let file = FileV1 {
        version: KEYSTORE_VERSION,
        public: PublicJson {
            sr25519: crate::hex0x(&public.sr25519),
            x25519: crate::hex0x(&public.x25519),
        },
        kdf: KdfJson {
            algorithm: KDF_NAME.into(),
            argon2_version: 0x13,
            memory_kib: params.memory_kib,
            iterations: params.iterations,
            parallelism: params.parallelism,
            salt: hex::encode(salt),
        },
        passphrase_check: hex::encode(check),
        cipher: CipherJson {
            algorithm: CIPHER_NAME.into(),
            nonce: hex::encode(nonce),
            ciphertext: hex::encode(ciphertext),
        },
    };
    serde_json::to_string_pretty(&file)
        .map(|mut s| {
            s.push('\n');
            s
        })
        .map_err(|e| Error::Kdf {
            reason: format!("cannot serialise keystore: {e}"),
        })
}

fn bytes<const N: usize>(path: &Path, field: &str, text: &str) -> Result<[u8; N]> {
    let digits = text.strip_prefix("0x").unwrap_or(text);
    let v = hex::decode(digits).map_err(|e| Error::KeystoreFormat {
        path: path.to_path_buf(),
        reason: format!("{field} is not hex: {e}"),
    })?;
    v.try_into().map_err(|v: Vec<u8>| Error::KeystoreFormat {
        path: path.to_path_buf(),
        reason: format!("{field} has {} bytes, expected {N}", v.len()),
    })
}

fn parse(path: &Path, text: &str) -> Result<FileV1> {
    let format_err = |e: serde_json::Error| Error::KeystoreFormat {
        path: path.to_path_buf(),
        reason: e.to_string(),
    };
    let version: VersionOnly = serde_json::from_str(text).map_err(format_err)?;
    if version.version != KEYSTORE_VERSION {
        return Err(Error::KeystoreVersion {
            path: path.to_path_buf(),
            found: version.version,
            supported: KEYSTORE_VERSION,
        });
    }
    let file: FileV1 = serde_json::from_str(text).map_err(format_err)?;
    if file.kdf.algorithm != KDF_NAME || file.kdf.argon2_version != 0x13 {
        return Err(Error::KeystoreFormat {
            path: path.to_path_buf(),
            reason: format!(
                "unsupported KDF {} v{}",
                file.kdf.algorithm, file.kdf.argon2_version
            ),
        });
    }
    if file.cipher.algorithm != CIPHER_NAME {
        return Err(Error::KeystoreFormat {
            path: path.to_path_buf(),
            reason: format!("unsupported cipher {}", file.cipher.algorithm),
        });
    }
    Ok(file)
}

fn public_of(path: &Path, file: &FileV1) -> Result<PublicKeys> {
    Ok(PublicKeys {
        sr25519: bytes(path, "public.sr25519", &file.public.sr25519)?,
        x25519: bytes(path, "public.x25519", &file.public.x25519)?,
    })
}

/// Decrypts keystore JSON text; `path` only names the file in errors.
pub fn decrypt(path: &Path, text: &str, passphrase: &str) -> Result<Keys> {
    let file = parse(path, text)?;
    let public = public_of(path, &file)?;
    let params = KdfParams {
        memory_kib: file.kdf.memory_kib,
        iterations: file.kdf.iterations,
        parallelism: file.kdf.parallelism,
    };
    if !params.within_limits() {
        return Err(Error::KeystoreFormat {
            path: path.to_path_buf(),
            reason: format!("KDF parameters {params:?} are outside the accepted limits"),
        });
    }
    let salt: [u8; SALT_LEN] = bytes(path, "kdf.salt", &file.kdf.salt)?;
    let stored_check: [u8; 32] = bytes(path, "passphraseCheck", &file.passphrase_check)?;
    let nonce: [u8; NONCE_LEN] = bytes(path, "cipher.nonce", &file.cipher.nonce)?;
    let ciphertext: [u8; CIPHERTEXT_LEN] =
        bytes(path, "cipher.ciphertext", &file.cipher.ciphertext)?;

    let (key, check) = derive(passphrase, &salt, params)?;
    if check != stored_check {
        return Err(Error::WrongPassphrase {
            path: path.to_path_buf(),
        });
    }
    let tampered = || Error::KeystoreTampered {
        path: path.to_path_buf(),
    };
    let plaintext = Zeroizing::new(
        XChaCha20Poly1305::new((&*key).into())
            .decrypt(
                XNonce::from_slice(&nonce),
                Payload {
                    msg: &ciphertext[..],
                    aad: &aad(&public, params, &salt),
                },
            )
            .map_err(|_| tampered())?,
    );
    if plaintext.len() != PLAINTEXT_LEN {
        return Err(tampered());
    }
    let mut seed = [0u8; 32];
    seed.copy_from_slice(&plaintext[..32]);
    let mut x = Zeroizing::new([0u8; 32]);
    x.copy_from_slice(&plaintext[32..]);
    let keys = Keys::from_secrets(seed, *x);
    seed.fill(0);
    let keys = keys?;
    // The AEAD already binds the public keys; this catches a file built with mismatching ones.
    if keys.public() != public {
        return Err(tampered());
    }
    Ok(keys)
}

/// Reads and decrypts the keystore at `path`.
pub fn load(path: &Path, passphrase: &str) -> Result<Keys> {
    decrypt(path, &read(path)?, passphrase)
}

/// Reads the public keys of the keystore at `path` without decrypting it. They are
/// authenticated only when the file is opened with its passphrase.
pub fn load_public(path: &Path) -> Result<PublicKeys> {
    let text = read(path)?;
    public_of(path, &parse(path, &text)?)
}

fn read(path: &Path) -> Result<String> {
    fs::read_to_string(path).map_err(|source| Error::KeystoreIo {
        path: path.to_path_buf(),
        action: "read",
        source,
    })
}

/// Encrypts `keys` and writes them to `path` (mode 0600, atomically). Without `overwrite`, an
/// existing file is an error ([`Error::KeystoreExists`]).
pub fn save(
    path: &Path,
    keys: &Keys,
    passphrase: &str,
    params: KdfParams,
    overwrite: bool,
) -> Result<()> {
    if !overwrite && path.exists() {
        return Err(Error::KeystoreExists {
            path: path.to_path_buf(),
        });
    }
    let text = encrypt(keys, passphrase, params)?;
    write_private(path, text.as_bytes(), overwrite)
}

/// Writes `contents` to `path` with mode 0600 through a temporary file in the same directory
/// (secrets: keystores, receipts).
pub fn write_private(path: &Path, contents: &[u8], overwrite: bool) -> Result<()> {
    let io = |action: &'static str| {
        move |source| Error::KeystoreIo {
            path: path.to_path_buf(),
            action,
            source,
        }
    };
    let tmp = temp_sibling(path);
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let result = (|| {
        let mut f = options
            .open(&tmp)
            .map_err(io("create a temporary file for"))?;
        f.write_all(contents).map_err(io("write"))?;
        f.sync_all().map_err(io("sync"))?;
        drop(f);
        if overwrite {
            fs::rename(&tmp, path).map_err(io("replace"))
        } else {
            // A hard link fails if the target exists: no window in which another file is
            // silently replaced.
            fs::hard_link(&tmp, path).map_err(|source| {
                if source.kind() == std::io::ErrorKind::AlreadyExists {
                    Error::KeystoreExists {
                        path: path.to_path_buf(),
                    }
                } else {
                    Error::KeystoreIo {
                        path: path.to_path_buf(),
                        action: "create",
                        source,
                    }
                }
            })
        }
    })();
    let _ = fs::remove_file(&tmp);
    result
}

fn temp_sibling(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    path.with_file_name(format!(".{name}.tmp-{:016x}", OsRng.next_u64()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const PASS: &str = "correct horse battery staple";

    fn temp() -> tempfile::TempDir {
        tempfile::tempdir().expect("temp dir")
    }

    #[test]
    fn round_trip_keeps_both_secrets() {
        let dir = temp();
        let path = dir.path().join("id.json");
        let keys = Keys::generate().unwrap();
        save(&path, &keys, PASS, KdfParams::INSECURE_TEST, false).unwrap();
        let back = load(&path, PASS).unwrap();
        assert_eq!(back.public(), keys.public());
        assert_eq!(
            back.x25519_secret().to_bytes(),
            keys.x25519_secret().to_bytes()
        );
        assert_eq!(*back.seed, *keys.seed);
        assert_eq!(load_public(&path).unwrap(), keys.public());
        // The identity key signs like the original.
        let msg = b"psp";
        let sig = back.identity_keypair().sign(msg);
        assert!(subxt_signer::sr25519::verify(
            &sig,
            msg,
            &keys.identity_keypair().public_key()
        ));
    }

    #[test]
    fn recommended_params_round_trip() {
        let keys = Keys::generate().unwrap();
        let text = encrypt(&keys, PASS, KdfParams::RECOMMENDED).unwrap();
        assert!(text.contains("\"memoryKib\": 65536"));
        let back = decrypt(Path::new("mem"), &text, PASS).unwrap();
        assert_eq!(back.public(), keys.public());
    }

    #[test]
    fn wrong_passphrase_is_reported_as_such() {
        let keys = Keys::generate().unwrap();
        let text = encrypt(&keys, PASS, KdfParams::INSECURE_TEST).unwrap();
        let err = decrypt(Path::new("k.json"), &text, "wrong").unwrap_err();
        assert!(matches!(err, Error::WrongPassphrase { .. }), "{err}");
        assert!(err
            .to_string()
            .contains("wrong passphrase for keystore k.json"));
    }

    fn edit(text: &str, f: impl FnOnce(&mut serde_json::Value)) -> String {
        let mut v: serde_json::Value = serde_json::from_str(text).unwrap();
        f(&mut v);
        v.to_string()
    }

    fn flip_hex(s: &str) -> String {
        let mut chars: Vec<char> = s.chars().collect();
        let last = chars.len() - 1;
        chars[last] = if chars[last] == '0' { '1' } else { '0' };
        chars.into_iter().collect()
    }

    #[test]
    fn tampering_is_detected() {
        let keys = Keys::generate().unwrap();
        let other = Keys::generate().unwrap();
        let text = encrypt(&keys, PASS, KdfParams::INSECURE_TEST).unwrap();
        let path = Path::new("k.json");

        let ct = edit(&text, |v| {
            let c = v["cipher"]["ciphertext"].as_str().unwrap().to_string();
            v["cipher"]["ciphertext"] = flip_hex(&c).into();
        });
        assert!(matches!(
            decrypt(path, &ct, PASS),
            Err(Error::KeystoreTampered { .. })
        ));

        let public = edit(&text, |v| {
            v["public"]["sr25519"] = crate::hex0x(&other.identity_public()).into();
        });
        assert!(matches!(
            decrypt(path, &public, PASS),
            Err(Error::KeystoreTampered { .. })
        ));

        let nonce = edit(&text, |v| {
            let n = v["cipher"]["nonce"].as_str().unwrap().to_string();
            v["cipher"]["nonce"] = flip_hex(&n).into();
        });
        assert!(matches!(
            decrypt(path, &nonce, PASS),
            Err(Error::KeystoreTampered { .. })
        ));

        let short = edit(&text, |v| v["cipher"]["ciphertext"] = "00".into());
        assert!(matches!(
            decrypt(path, &short, PASS),
            Err(Error::KeystoreFormat { .. })
        ));

        let version = edit(&text, |v| v["version"] = 7.into());
        assert!(matches!(
            decrypt(path, &version, PASS),
            Err(Error::KeystoreVersion {
                found: 7,
                supported: 1,
                ..
            })
        ));

        let greedy = edit(&text, |v| v["kdf"]["memoryKib"] = u32::MAX.into());
        assert!(matches!(
            decrypt(path, &greedy, PASS),
            Err(Error::KeystoreFormat { .. })
        ));

        assert!(matches!(
            decrypt(path, "not json", PASS),
            Err(Error::KeystoreFormat { .. })
        ));
    }

    #[cfg(unix)]
    #[test]
    fn file_is_private_and_not_overwritten_without_force() {
        use std::os::unix::fs::PermissionsExt;
        let dir = temp();
        let path = dir.path().join("id.json");
        let first = Keys::generate().unwrap();
        save(&path, &first, PASS, KdfParams::INSECURE_TEST, false).unwrap();
        let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);

        let second = Keys::generate().unwrap();
        let err = save(&path, &second, PASS, KdfParams::INSECURE_TEST, false).unwrap_err();
        assert!(matches!(err, Error::KeystoreExists { .. }), "{err}");
        assert!(err.to_string().contains("--force"));
        assert_eq!(load_public(&path).unwrap(), first.public());

        save(&path, &second, PASS, KdfParams::INSECURE_TEST, true).unwrap();
        assert_eq!(load_public(&path).unwrap(), second.public());
        let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        // No temporary files are left behind.
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn passphrase_file_drops_one_trailing_newline_and_refuses_empty() {
        let dir = temp();
        let file = dir.path().join("pass");
        fs::write(&file, "  secret \n").unwrap();
        assert_eq!(&*read_passphrase(Some(&file)).unwrap(), "  secret ");
        fs::write(&file, "\n").unwrap();
        assert!(matches!(
            read_passphrase(Some(&file)),
            Err(Error::EmptyPassphrase)
        ));
        let missing = dir.path().join("missing");
        assert!(matches!(
            read_passphrase(Some(&missing)),
            Err(Error::PassphraseFile { .. })
        ));
    }

    #[test]
    fn rotation_keeps_identity_key_and_changes_x25519() {
        let keys = Keys::generate().unwrap();
        let rotated = keys.with_new_x25519();
        assert_eq!(rotated.identity_public(), keys.identity_public());
        assert_ne!(rotated.x25519_public(), keys.x25519_public());
    }

    #[test]
    fn id_string_of_public_keys() {
        let keys = Keys::from_secrets([1; 32], [2; 32]).unwrap();
        let public = keys.public();
        let id = public
            .id_string("peerstream", IdentityKind::Client, "account")
            .unwrap();
        let text = id.to_string();
        assert!(text.starts_with("peerstream.client.account."), "{text}");
        let parsed = IdString::parse(&text).unwrap();
        assert!(parsed.checksum_ok());
        assert_eq!(parsed.key, public.sr25519);
        assert!(matches!(
            public.id_string("Bad", IdentityKind::Client, "account"),
            Err(Error::InvalidInput {
                what: "namespace",
                ..
            })
        ));
    }
}
