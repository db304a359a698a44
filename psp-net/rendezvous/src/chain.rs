//! What the chain says, as the state machines need it: the elected authorities, the genesis
//! hash and the identity registry, at the node's (or client's) latest finalized block.

use psp_cert::{CertError, Certificate, VerifiedCertificate};
use psp_onion::registry::IdentityRegistry;

/// The chain state a certificate is checked against. The driver builds one per call from its
/// latest finalized block, so an identity revoked there is refused from the next call on.
#[derive(Clone, Copy)]
pub struct ChainView<'a> {
    /// The chain's genesis hash (certificates are bound to one chain).
    pub genesis: &'a [u8; 32],
    /// The authority nodes elected for the current epoch.
    pub authorities: &'a [[u8; 32]],
    /// Identity status: live, revoked or unknown.
    pub registry: &'a dyn IdentityRegistry,
}

impl core::fmt::Debug for ChainView<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("ChainView")
            .field("authorities", &self.authorities.len())
            .finish_non_exhaustive()
    }
}

/// Why a certificate was not accepted for an identity.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CertificateError {
    /// The bytes are not a certificate.
    #[error("certificate does not decode: {0}")]
    Malformed(CertError),
    /// It decoded but did not verify: forged, expired, not from an elected authority, or its
    /// identity is not live on chain.
    #[error("certificate refused: {0}")]
    Refused(CertError),
    /// It verified, but certifies another identity than the one that presented it.
    #[error("certificate is for identity {got:02x?}.., presented by {expected:02x?}..")]
    WrongIdentity {
        /// First bytes of the identity that presented it.
        expected: [u8; 4],
        /// First bytes of the identity it certifies.
        got: [u8; 4],
    },
}

impl CertificateError {
    /// Whether the refusal is because the identity is revoked, unknown or changed kind on
    /// chain (rather than a bad certificate).
    pub fn identity_not_live(&self) -> bool {
        matches!(self, Self::Refused(CertError::Identity(_)))
    }
}

fn prefix(key: &[u8; 32]) -> [u8; 4] {
    let mut p = [0u8; 4];
    p.copy_from_slice(&key[..4]);
    p
}

impl ChainView<'_> {
    /// Decodes and verifies `certificate` at `now`, and checks it certifies `identity`.
    pub fn verify_certificate(
        &self,
        certificate: &[u8],
        now: u64,
        identity: &[u8; 32],
    ) -> Result<VerifiedCertificate, CertificateError> {
        let cert = Certificate::decode(certificate).map_err(CertificateError::Malformed)?;
        let verified = cert
            .verify(now, self.genesis, self.authorities, &self.registry)
            .map_err(CertificateError::Refused)?;
        if &verified.body().identity != identity {
            return Err(CertificateError::WrongIdentity {
                expected: prefix(identity),
                got: prefix(&verified.body().identity),
            });
        }
        Ok(verified)
    }
}
