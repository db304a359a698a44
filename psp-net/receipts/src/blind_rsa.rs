//! RSA blind signatures per RFC 9474, variant RSABSSA-SHA384-PSS-Randomized.
//!
//! - Client: [`prepare`] puts a random 32-byte prefix before the message (the "Randomized"
//!   variant: the signer cannot choose or predict what it signs); [`blind`] encodes it with
//!   EMSA-PSS (SHA-384, MGF1-SHA-384, 48-byte salt; written here with `sha2`) and multiplies by
//!   `r^e mod n` for a random `r` coprime to `n`; [`finalize`] unblinds, `s = z · r⁻¹ mod n`,
//!   and verifies the result.
//! - Issuer: [`SigningKey::blind_sign`] is the raw RSA private operation on the blinded
//!   message (OpenSSL, with its CRT and its own base blinding against timing), after checking
//!   `z < n`, and checks `s^e = z` before returning anything (RFC 9474 §4.3: a faulty CRT
//!   result would give away a factor of `n`).
//! - Anyone: [`PublicKey::verify`] is RSASSA-PSS verification by OpenSSL's verifier, so the
//!   PSS encoding written here is checked against an independent implementation on every
//!   finalize and every verification.
//!
//! Keys are 2048 bits by default (fast enough for an oracle's every request; see the crate's
//! benchmark), 3072 and 4096 allowed; the public exponent is 65537.

use std::cmp::Ordering;
use std::fmt;

use openssl::bn::{BigNum, BigNumContext, BigNumRef};
use openssl::hash::MessageDigest;
use openssl::pkey::{PKey, Private, Public};
use openssl::rsa::{Padding, Rsa};
use openssl::sign::{RsaPssSaltlen, Verifier as PssVerifier};
use sha2::{Digest, Sha384};

use crate::receipt::KeyId;
use crate::ReceiptError;

/// SHA-384 output length.
pub const HASH_LEN: usize = 48;
/// PSS salt length: the hash length, as RFC 9474 fixes for this variant.
pub const SALT_LEN: usize = 48;
/// Length of the random message prefix of the Randomized variant.
pub const PREFIX_LEN: usize = 32;
/// The only public exponent accepted.
const PUBLIC_EXPONENT: [u8; 3] = [0x01, 0x00, 0x01];
/// Attempts at drawing an invertible `r`: a non-invertible one means having found a factor of
/// `n`, so a second failure is already beyond belief.
const BLIND_ATTEMPTS: usize = 8;

fn crypto(operation: &'static str) -> impl FnOnce(openssl::error::ErrorStack) -> ReceiptError {
    ReceiptError::crypto(operation)
}

/// RSA modulus sizes accepted for receipt keys.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, Hash)]
pub enum KeySize {
    /// 2048 bits, the default: the cheapest size still considered sound (NIST: to 2030).
    #[default]
    Rsa2048,
    /// 3072 bits.
    Rsa3072,
    /// 4096 bits (RFC 9474's test vectors use this size).
    Rsa4096,
}

impl KeySize {
    /// Modulus length in bits.
    pub const fn bits(self) -> u32 {
        match self {
            KeySize::Rsa2048 => 2048,
            KeySize::Rsa3072 => 3072,
            KeySize::Rsa4096 => 4096,
        }
    }

    /// Modulus length in bytes: the length of blinded messages and (blind) signatures.
    pub const fn modulus_len(self) -> usize {
        self.bits() as usize / 8
    }

    /// The size with this many modulus bits, if accepted.
    pub fn from_bits(bits: u32) -> Option<Self> {
        [KeySize::Rsa2048, KeySize::Rsa3072, KeySize::Rsa4096]
            .into_iter()
            .find(|s| s.bits() == bits)
    }

    /// The size whose signatures are this many bytes, if accepted.
    pub fn from_modulus_len(len: usize) -> Option<Self> {
        [KeySize::Rsa2048, KeySize::Rsa3072, KeySize::Rsa4096]
            .into_iter()
            .find(|s| s.modulus_len() == len)
    }
}

/// An RSA public key for receipts: 2048/3072/4096 bits, exponent 65537.
#[derive(Clone)]
pub struct PublicKey {
    rsa: Rsa<Public>,
    pkey: PKey<Public>,
    der: Vec<u8>,
    size: KeySize,
    key_id: KeyId,
}

impl PublicKey {
    fn from_rsa(rsa: Rsa<Public>) -> Result<Self, ReceiptError> {
        let bits = u32::try_from(rsa.n().num_bits()).unwrap_or(0);
        let size = KeySize::from_bits(bits).ok_or(ReceiptError::UnsupportedKeySize { bits })?;
        if rsa.e().to_vec() != PUBLIC_EXPONENT {
            return Err(ReceiptError::UnsupportedExponent);
        }
        let der = rsa
            .public_key_to_der_pkcs1()
            .map_err(crypto("encoding a public key"))?;
        let pkey = PKey::from_rsa(rsa.clone()).map_err(crypto("wrapping a public key"))?;
        let key_id = KeyId::of_der(&der);
        Ok(PublicKey {
            rsa,
            pkey,
            der,
            size,
            key_id,
        })
    }

    /// Parses a PKCS#1 `RSAPublicKey` (DER), as published on chain.
    pub fn from_der(der: &[u8]) -> Result<Self, ReceiptError> {
        let rsa = Rsa::public_key_from_der_pkcs1(der).map_err(crypto("parsing a public key"))?;
        Self::from_rsa(rsa)
    }

    /// The PKCS#1 `RSAPublicKey` encoding (DER); the key id hashes these bytes.
    pub fn to_der(&self) -> &[u8] {
        &self.der
    }

    /// The modulus size.
    pub fn size(&self) -> KeySize {
        self.size
    }

    /// Modulus length in bytes.
    pub fn modulus_len(&self) -> usize {
        self.size.modulus_len()
    }

    /// The key's id (SHA-256 of its domain-separated DER encoding).
    pub fn key_id(&self) -> KeyId {
        self.key_id
    }

    /// RSASSA-PSS verification (SHA-384, MGF1-SHA-384, 48-byte salt) of `sig` over `msg`, by
    /// OpenSSL. For RFC 9474's Randomized variant `msg` is the prepared message (prefix first).
    pub fn verify(&self, msg: &[u8], sig: &[u8]) -> Result<(), ReceiptError> {
        if sig.len() != self.modulus_len() {
            return Err(ReceiptError::WrongLength {
                what: "signature",
                expected: self.modulus_len(),
                got: sig.len(),
            });
        }
        let setup = || -> Result<PssVerifier<'_>, openssl::error::ErrorStack> {
            let mut v = PssVerifier::new(MessageDigest::sha384(), &self.pkey)?;
            v.set_rsa_padding(Padding::PKCS1_PSS)?;
            v.set_rsa_pss_saltlen(RsaPssSaltlen::custom(SALT_LEN as i32))?;
            v.set_rsa_mgf1_md(MessageDigest::sha384())?;
            Ok(v)
        };
        let mut verifier = setup().map_err(crypto("setting up RSA-PSS verification"))?;
        verifier
            .update(msg)
            .map_err(crypto("hashing for RSA-PSS verification"))?;
        // An OpenSSL error here is a malformed signature (e.g. not below n): a bad signature.
        match verifier.verify(sig) {
            Ok(true) => Ok(()),
            Ok(false) | Err(_) => Err(ReceiptError::BadSignature {
                key_id: self.key_id,
            }),
        }
    }

    fn n(&self) -> &BigNumRef {
        self.rsa.n()
    }

    fn e(&self) -> &BigNumRef {
        self.rsa.e()
    }
}

impl PartialEq for PublicKey {
    fn eq(&self, other: &Self) -> bool {
        self.der == other.der
    }
}

impl Eq for PublicKey {}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey({} bits, {})", self.size.bits(), self.key_id)
    }
}

/// An issuer's RSA private key. `Debug` shows only the public half.
pub struct SigningKey {
    rsa: Rsa<Private>,
    public: PublicKey,
}

impl SigningKey {
    fn from_rsa(rsa: Rsa<Private>) -> Result<Self, ReceiptError> {
        let n = rsa.n().to_owned().map_err(crypto("copying a modulus"))?;
        let e = rsa.e().to_owned().map_err(crypto("copying an exponent"))?;
        let public = Rsa::from_public_components(n, e).map_err(crypto("building a public key"))?;
        let public = PublicKey::from_rsa(public)?;
        // OpenSSL checks p, q prime, n = pq, d·e ≡ 1 and the CRT values.
        match rsa.check_key() {
            Ok(true) => Ok(SigningKey { rsa, public }),
            _ => Err(ReceiptError::InvalidPrivateKey),
        }
    }

    /// A fresh key of this size, exponent 65537.
    pub fn generate(size: KeySize) -> Result<Self, ReceiptError> {
        let rsa = Rsa::generate(size.bits()).map_err(crypto("generating an RSA key"))?;
        Self::from_rsa(rsa)
    }

    /// Parses a PKCS#1 `RSAPrivateKey` (DER), e.g. from the oracle's keystore.
    pub fn from_der(der: &[u8]) -> Result<Self, ReceiptError> {
        let rsa = Rsa::private_key_from_der(der).map_err(crypto("parsing a private key"))?;
        Self::from_rsa(rsa)
    }

    /// The PKCS#1 `RSAPrivateKey` encoding (DER). Secret: for the keystore only.
    pub fn to_der(&self) -> Result<Vec<u8>, ReceiptError> {
        self.rsa
            .private_key_to_der()
            .map_err(crypto("encoding a private key"))
    }

    /// A key from its big-endian components; the CRT values are derived.
    pub fn from_components(
        n: &[u8],
        e: &[u8],
        d: &[u8],
        p: &[u8],
        q: &[u8],
    ) -> Result<Self, ReceiptError> {
        let bn = |b: &[u8]| BigNum::from_slice(b).map_err(crypto("reading a key component"));
        let (n, e, d, p, q) = (bn(n)?, bn(e)?, bn(d)?, bn(p)?, bn(q)?);
        let mut ctx = BigNumContext::new().map_err(crypto("allocating"))?;
        let crt = |ctx: &mut BigNumContext| -> Result<_, openssl::error::ErrorStack> {
            let one = BigNum::from_u32(1)?;
            let (mut p1, mut q1) = (BigNum::new()?, BigNum::new()?);
            p1.checked_sub(&p, &one)?;
            q1.checked_sub(&q, &one)?;
            let (mut dmp1, mut dmq1, mut iqmp) = (BigNum::new()?, BigNum::new()?, BigNum::new()?);
            dmp1.nnmod(&d, &p1, ctx)?;
            dmq1.nnmod(&d, &q1, ctx)?;
            iqmp.mod_inverse(&q, &p, ctx)?;
            Ok((dmp1, dmq1, iqmp))
        };
        let (dmp1, dmq1, iqmp) = crt(&mut ctx).map_err(|_| ReceiptError::InvalidPrivateKey)?;
        let rsa = Rsa::from_private_components(n, e, d, p, q, dmp1, dmq1, iqmp)
            .map_err(crypto("building a private key"))?;
        Self::from_rsa(rsa)
    }

    /// The public half.
    pub fn public_key(&self) -> &PublicKey {
        &self.public
    }

    /// RFC 9474 BlindSign: the raw RSA private operation on the blinded message, checked
    /// (`s^e mod n = z`) before it is returned.
    pub fn blind_sign(&self, blinded: &BlindedMessage) -> Result<BlindSignature, ReceiptError> {
        let len = self.public.modulus_len();
        let z_bytes = blinded.as_bytes();
        if z_bytes.len() != len {
            return Err(ReceiptError::WrongLength {
                what: "blinded message",
                expected: len,
                got: z_bytes.len(),
            });
        }
        let z = BigNum::from_slice(z_bytes).map_err(crypto("reading a blinded message"))?;
        if z.ucmp(self.public.n()) != Ordering::Less {
            return Err(ReceiptError::BlindedMessageOutOfRange);
        }
        let mut s = vec![0u8; len];
        let written = self
            .rsa
            .private_encrypt(z_bytes, &mut s, Padding::NONE)
            .map_err(crypto("the RSA private operation"))?;
        if written != len {
            return Err(ReceiptError::SigningFault);
        }
        let mut ctx = BigNumContext::new().map_err(crypto("allocating"))?;
        let mut check = || -> Result<BigNum, openssl::error::ErrorStack> {
            let s = BigNum::from_slice(&s)?;
            let mut m = BigNum::new()?;
            m.mod_exp(&s, self.public.e(), self.public.n(), &mut ctx)?;
            Ok(m)
        };
        match check() {
            Ok(m) if m == z => Ok(BlindSignature(s)),
            _ => Err(ReceiptError::SigningFault),
        }
    }
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SigningKey({:?})", self.public)
    }
}

/// What the client sends the issuer: `m · r^e mod n`, modulus length. Reveals nothing of the
/// message to anyone without `r`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BlindedMessage(Vec<u8>);

impl BlindedMessage {
    /// Wraps bytes received from a client; the length is checked when signing.
    pub fn from_bytes(bytes: Vec<u8>) -> Self {
        BlindedMessage(bytes)
    }

    /// The bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

/// What the issuer returns: `(m · r^e)^d mod n`, modulus length.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BlindSignature(Vec<u8>);

impl BlindSignature {
    /// Wraps bytes received from an issuer; the length is checked when finalizing.
    pub fn from_bytes(bytes: Vec<u8>) -> Self {
        BlindSignature(bytes)
    }

    /// The bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

/// The client's unblinding secret `r⁻¹ mod n`. Whoever learns it can link the blinded message
/// to the signature, so it is neither `Clone` nor shown by `Debug`.
pub struct BlindingSecret {
    inv: BigNum,
}

impl fmt::Debug for BlindingSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("BlindingSecret(..)")
    }
}

/// RFC 9474 Prepare, Randomized variant: a fresh random 32-byte prefix, then the message.
pub fn prepare(msg: &[u8]) -> Result<Vec<u8>, ReceiptError> {
    let mut prefix = [0u8; PREFIX_LEN];
    openssl::rand::rand_bytes(&mut prefix).map_err(crypto("drawing a message prefix"))?;
    Ok([&prefix[..], msg].concat())
}

/// RFC 9474 Blind: EMSA-PSS-encodes the prepared message with a fresh salt and blinds it with
/// a fresh `r`. Returns what to send the issuer and the secret to keep for [`finalize`].
///
/// RFC 9474 checks `gcd(m, n) = 1` and then inverts `r`; here one inversion of `m · r` does
/// both (it exists iff `m` and `r` are both units) and `r⁻¹ = (m·r)⁻¹ · m`. Same outputs, but
/// OpenSSL's constant-time gcd alone costs more than the rest of blinding together.
pub fn blind(
    pk: &PublicKey,
    prepared: &[u8],
) -> Result<(BlindedMessage, BlindingSecret), ReceiptError> {
    let mut salt = [0u8; SALT_LEN];
    openssl::rand::rand_bytes(&mut salt).map_err(crypto("drawing a PSS salt"))?;
    let m = encode(pk, prepared, &salt)?;
    let mut ctx = BigNumContext::new().map_err(crypto("allocating"))?;
    for _ in 0..BLIND_ATTEMPTS {
        let mut draw = || -> Result<Option<(BigNum, BigNum)>, openssl::error::ErrorStack> {
            let mut r = BigNum::new()?;
            pk.n().rand_range(&mut r)?;
            r.set_const_time();
            let mut mr = BigNum::new()?;
            mr.mod_mul(&m, &r, pk.n(), &mut ctx)?;
            mr.set_const_time();
            let mut mr_inv = BigNum::new()?;
            // Fails only when m or r shares a factor with n (r = 0 included).
            if mr_inv.mod_inverse(&mr, pk.n(), &mut ctx).is_err() {
                return Ok(None);
            }
            let mut inv = BigNum::new()?;
            inv.mod_mul(&mr_inv, &m, pk.n(), &mut ctx)?;
            Ok(Some((r, inv)))
        };
        match draw().map_err(crypto("drawing r"))? {
            Some((r, inv)) => return blind_encoded(pk, &m, &r, inv, &mut ctx),
            None if !coprime(pk, &m, &mut ctx)? => return Err(ReceiptError::NotCoprime),
            None => continue,
        }
    }
    Err(ReceiptError::NotCoprime)
}

/// [`blind`] with the salt and `r⁻¹` given: the known-answer test's entry point.
#[cfg(test)]
pub(crate) fn blind_with(
    pk: &PublicKey,
    prepared: &[u8],
    salt: &[u8; SALT_LEN],
    inv: &[u8],
) -> Result<(BlindedMessage, BlindingSecret), ReceiptError> {
    let m = encode(pk, prepared, salt)?;
    let mut ctx = BigNumContext::new().map_err(crypto("allocating"))?;
    if !coprime(pk, &m, &mut ctx)? {
        return Err(ReceiptError::NotCoprime);
    }
    let inv = BigNum::from_slice(inv).map_err(crypto("reading r⁻¹"))?;
    let mut r = BigNum::new().map_err(crypto("allocating"))?;
    r.mod_inverse(&inv, pk.n(), &mut ctx)
        .map_err(|_| ReceiptError::NotCoprime)?;
    blind_encoded(pk, &m, &r, inv, &mut ctx)
}

/// EMSA-PSS encoding of the prepared message, as an integer.
fn encode(pk: &PublicKey, prepared: &[u8], salt: &[u8; SALT_LEN]) -> Result<BigNum, ReceiptError> {
    let encoded = emsa_pss_encode(prepared, pk.size.bits() as usize - 1, salt)?;
    BigNum::from_slice(&encoded).map_err(crypto("reading an encoded message"))
}

fn coprime(pk: &PublicKey, m: &BigNumRef, ctx: &mut BigNumContext) -> Result<bool, ReceiptError> {
    let mut gcd = || -> Result<bool, openssl::error::ErrorStack> {
        let mut g = BigNum::new()?;
        g.gcd(m, pk.n(), ctx)?;
        Ok(g == BigNum::from_u32(1)?)
    };
    gcd().map_err(crypto("gcd"))
}

/// `z = m · r^e mod n`, serialized to the modulus length.
fn blind_encoded(
    pk: &PublicKey,
    m: &BigNumRef,
    r: &BigNumRef,
    inv: BigNum,
    ctx: &mut BigNumContext,
) -> Result<(BlindedMessage, BlindingSecret), ReceiptError> {
    let mut math = || -> Result<Vec<u8>, openssl::error::ErrorStack> {
        let mut x = BigNum::new()?;
        x.mod_exp(r, pk.e(), pk.n(), ctx)?;
        let mut z = BigNum::new()?;
        z.mod_mul(m, &x, pk.n(), ctx)?;
        z.to_vec_padded(pk.modulus_len() as i32)
    };
    let blinded = math().map_err(crypto("blinding"))?;
    Ok((BlindedMessage(blinded), BlindingSecret { inv }))
}

/// RFC 9474 Finalize: `s = z · r⁻¹ mod n`, then RSA-PSS verification of `s` over the prepared
/// message (a signature that does not verify is never returned).
pub fn finalize(
    pk: &PublicKey,
    secret: &BlindingSecret,
    blind_sig: &BlindSignature,
    prepared: &[u8],
) -> Result<Vec<u8>, ReceiptError> {
    let len = pk.modulus_len();
    if blind_sig.0.len() != len {
        return Err(ReceiptError::WrongLength {
            what: "blind signature",
            expected: len,
            got: blind_sig.0.len(),
        });
    }
    let unblind = || -> Result<Vec<u8>, openssl::error::ErrorStack> {
        let mut ctx = BigNumContext::new()?;
        let z = BigNum::from_slice(&blind_sig.0)?;
        let mut s = BigNum::new()?;
        s.mod_mul(&z, &secret.inv, pk.n(), &mut ctx)?;
        s.to_vec_padded(len as i32)
    };
    let sig = unblind().map_err(crypto("unblinding"))?;
    pk.verify(prepared, &sig)?;
    Ok(sig)
}

/// MGF1 with SHA-384 (RFC 8017 B.2.1).
fn mgf1_sha384(seed: &[u8], len: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(len + HASH_LEN);
    let mut counter = 0u32;
    while out.len() < len {
        let mut h = Sha384::new();
        h.update(seed);
        h.update(counter.to_be_bytes());
        out.extend_from_slice(&h.finalize());
        counter = counter.wrapping_add(1);
    }
    out.truncate(len);
    out
}

/// EMSA-PSS-ENCODE (RFC 8017 §9.1.1) with SHA-384, MGF1-SHA-384 and the given 48-byte salt,
/// for an `em_bits`-bit encoded message (modulus bits − 1).
pub(crate) fn emsa_pss_encode(
    msg: &[u8],
    em_bits: usize,
    salt: &[u8; SALT_LEN],
) -> Result<Vec<u8>, ReceiptError> {
    let em_len = em_bits.div_ceil(8);
    if em_len < HASH_LEN + SALT_LEN + 2 {
        return Err(ReceiptError::WrongLength {
            what: "EMSA-PSS encoded message",
            expected: HASH_LEN + SALT_LEN + 2,
            got: em_len,
        });
    }
    let m_hash = Sha384::digest(msg);
    let mut h = Sha384::new();
    h.update([0u8; 8]);
    h.update(m_hash);
    h.update(salt);
    let h = h.finalize();
    // DB = PS (zeros) || 0x01 || salt.
    let db_len = em_len - HASH_LEN - 1;
    let mut db = vec![0u8; db_len];
    db[db_len - SALT_LEN - 1] = 0x01;
    db[db_len - SALT_LEN..].copy_from_slice(salt);
    for (d, m) in db.iter_mut().zip(mgf1_sha384(&h, db_len)) {
        *d ^= m;
    }
    // Clear the leftmost 8·emLen − emBits bits so the encoding is below the modulus.
    db[0] &= 0xff >> (8 * em_len - em_bits);
    db.extend_from_slice(&h);
    db.push(0xbc);
    Ok(db)
}
