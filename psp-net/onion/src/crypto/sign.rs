//! Identity signatures (sr25519) and the hash (BLAKE2b-256) of the signed-data layer: DHT
//! records, status reports, directory votes and signatures, access certificates.
//!
//! Signatures are schnorrkel's with Substrate's signing context (`b"substrate"`), so a key held
//! by the client keystore, the node keystore or `sp_io::crypto::sr25519_verify` in the runtime
//! all agree on the bytes. Domain separation comes from the message: every signed message
//! starts with its own context tag (e.g. `psp/dht/record/owner/v1`).

use blake2::digest::consts::U32;
use blake2::{Blake2b, Digest};
use schnorrkel::{ExpansionMode, MiniSecretKey, PublicKey, Signature};

/// Length of an sr25519 signature.
pub const SIGNATURE_LEN: usize = 64;

/// Substrate's sr25519 signing context.
const SIGNING_CONTEXT: &[u8] = b"substrate";

/// An sr25519 signature.
pub type Sr25519Signature = [u8; SIGNATURE_LEN];

/// BLAKE2b with a 256-bit output (Substrate's `blake2_256`).
pub fn blake2_256(data: &[u8]) -> [u8; 32] {
    Blake2b::<U32>::digest(data).into()
}

/// BLAKE2b-256 over several parts, as if concatenated.
pub fn blake2_256_parts(parts: &[&[u8]]) -> [u8; 32] {
    let mut h = Blake2b::<U32>::new();
    for p in parts {
        h.update(p);
    }
    h.finalize().into()
}

/// An sr25519 key pair: a node's or an identity's signing key.
#[derive(Clone)]
pub struct Sr25519Keypair {
    pair: schnorrkel::Keypair,
    public: [u8; 32],
}

impl Sr25519Keypair {
    /// The key pair of a 32-byte seed (the mini secret key, expanded as Substrate's
    /// `sr25519::Pair::from_seed` and `subxt_signer` do).
    pub fn from_seed(seed: &[u8; 32]) -> Self {
        // A 32-byte slice is always a valid mini secret key.
        let mini = MiniSecretKey::from_bytes(seed).unwrap_or_else(|_| unreachable!("32 bytes"));
        let pair = mini.expand_to_keypair(ExpansionMode::Ed25519);
        let public = pair.public.to_bytes();
        Self { pair, public }
    }

    /// The public key: the identity key registered on chain.
    pub fn public(&self) -> [u8; 32] {
        self.public
    }

    /// Signs `message` (which starts with its own context tag).
    pub fn sign(&self, message: &[u8]) -> Sr25519Signature {
        self.pair.sign_simple(SIGNING_CONTEXT, message).to_bytes()
    }
}

impl core::fmt::Debug for Sr25519Keypair {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "Sr25519Keypair(public 0x")?;
        for b in &self.public[..4] {
            write!(f, "{b:02x}")?;
        }
        write!(f, "..)")
    }
}

/// Verifies an sr25519 signature. Malformed keys or signatures are simply invalid.
pub fn sr25519_verify(public: &[u8; 32], message: &[u8], signature: &Sr25519Signature) -> bool {
    let (Ok(public), Ok(signature)) = (
        PublicKey::from_bytes(public),
        Signature::from_bytes(signature),
    ) else {
        return false;
    };
    public
        .verify_simple(SIGNING_CONTEXT, message, &signature)
        .is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sign_and_verify_round_trip_and_refuse_changes() {
        let pair = Sr25519Keypair::from_seed(&[7; 32]);
        let sig = pair.sign(b"psp/test/v1 hello");
        assert!(sr25519_verify(&pair.public(), b"psp/test/v1 hello", &sig));
        assert!(!sr25519_verify(&pair.public(), b"psp/test/v1 hellO", &sig));
        let other = Sr25519Keypair::from_seed(&[8; 32]);
        assert!(!sr25519_verify(&other.public(), b"psp/test/v1 hello", &sig));
        let mut bad = sig;
        bad[63] ^= 0x80; // clears schnorrkel's marker bit: malformed, not a panic
        assert!(!sr25519_verify(&pair.public(), b"psp/test/v1 hello", &bad));
        assert!(!sr25519_verify(&[0xff; 32], b"x", &sig));
    }

    #[test]
    fn blake2_parts_equal_the_concatenation() {
        assert_eq!(blake2_256_parts(&[b"ab", b"cd"]), blake2_256(b"abcd"));
        // Substrate's blake2_256("") (known answer).
        assert_eq!(
            hex::encode(blake2_256(b"")),
            "0e5751c026e543b2e8ab2eb06099daa1d1e5df47778f7787faab45cdf12fe3a8"
        );
    }
}
