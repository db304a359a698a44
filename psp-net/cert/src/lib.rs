//! Access certificates (PSP overview §4): short-lived proof that an identity is live on chain.
//!
//! An identity asks an elected authority node for a certificate with a [`CertRequest`] signed
//! by its identity key (proof of possession), naming that authority and the current time, so a
//! request cannot be replayed to another authority or much later. The authority checks chain
//! state (registered, not revoked, a kind that may hold certificates) and issues a
//! [`Certificate`]: identity, kind, X25519 key, validity window, authority, serial, signature.
//!
//! The authority signs the staking statement `(role = authority, slot = serial, payload =
//! blake2_256(certificate body))`, so two different certificates under one serial are an
//! equivocation the chain slashes. Nodes accept a certificate only from a member of the elected
//! authority set, inside its window, and only while the identity is live at the latest
//! finalized block — a revoked identity's certificate stops working at the next one.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

// The sans-IO onion crate's modules, under the paths this code had inside `psp-net`.
use psp_onion::{bytes, crypto, registry};

use crate::bytes::{BytesError, Reader};
use crate::crypto::{blake2_256, sr25519_verify, Sr25519Keypair, Sr25519Signature};
use crate::registry::{IdentityKind, IdentityRegistry, IdentityStatus};
use psp_directory::statement::statement_message;

/// Wire version of requests and certificates.
const VERSION: u8 = 1;
const REQUEST_CONTEXT: &[u8] = b"psp/cert/request/v1";
/// The authority role's index in the staking statement.
const AUTHORITY_ROLE: u8 = 0;
/// Encoded request length.
pub const REQUEST_LEN: usize = 1 + 32 + 32 + 32 + 8 + 64;
/// Encoded certificate length.
pub const CERTIFICATE_LEN: usize = 1 + 8 + 32 + 1 + 32 + 8 + 8 + 32 + 64;

/// Errors of requests, issuance and verification.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CertError {
    /// The bytes are not a request or certificate.
    #[error("malformed: {0}")]
    Malformed(#[from] BytesError),
    /// Wrong length or version.
    #[error("bad encoding: {0}")]
    Encoding(&'static str),
    /// The request's proof of possession does not verify.
    #[error("request signature does not verify")]
    RequestSignature,
    /// The request names another authority.
    #[error("request addressed to another authority")]
    WrongAuthority,
    /// The request is too old or from the future.
    #[error("request time {requested_at} outside ±{window} s of now ({now})")]
    StaleRequest {
        /// Time in the request.
        requested_at: u64,
        /// Current time.
        now: u64,
        /// Allowed skew.
        window: u64,
    },
    /// The identity is not live on chain, or of a kind that gets no certificates.
    #[error("identity is {0}")]
    Identity(&'static str),
    /// The certificate's issuer is not in the elected authority set.
    #[error("issuer is not an elected authority")]
    NotAnAuthority,
    /// The certificate's signature does not verify.
    #[error("certificate signature does not verify")]
    Signature,
    /// Not valid at this time.
    #[error("certificate valid from {not_before} to {not_after}, now is {now}")]
    OutsideValidity {
        /// Start.
        not_before: u64,
        /// End.
        not_after: u64,
        /// Current time.
        now: u64,
    },
}

fn kind_byte(kind: IdentityKind) -> u8 {
    match kind {
        IdentityKind::Client => 0,
        IdentityKind::Node => 1,
        IdentityKind::Group => 2,
        IdentityKind::Device => 3,
    }
}

fn kind_from_byte(b: u8) -> Option<IdentityKind> {
    [
        IdentityKind::Client,
        IdentityKind::Node,
        IdentityKind::Group,
        IdentityKind::Device,
    ]
    .into_iter()
    .find(|k| kind_byte(*k) == b)
}

/// Checks the identity is live and may hold a certificate (groups share keys: none).
fn live_kind(
    registry: &impl IdentityRegistry,
    identity: &[u8; 32],
) -> Result<IdentityKind, CertError> {
    match registry.status(identity) {
        IdentityStatus::Active(IdentityKind::Group) => Err(CertError::Identity("a group")),
        IdentityStatus::Active(kind) => Ok(kind),
        IdentityStatus::Revoked => Err(CertError::Identity("revoked")),
        IdentityStatus::Unknown => Err(CertError::Identity("not registered")),
    }
}

/// A request for a certificate, signed by the identity key.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct CertRequest {
    /// The identity (sr25519 key).
    pub identity: [u8; 32],
    /// Its X25519 key, to be certified with it.
    pub x25519: [u8; 32],
    /// The authority node asked.
    pub authority: [u8; 32],
    /// Unix seconds.
    pub requested_at: u64,
    /// Proof of possession of the identity key.
    pub signature: Sr25519Signature,
}

impl CertRequest {
    /// The bytes the identity key signs (for signers outside psp-net, e.g. a keystore).
    pub fn signing_message(
        identity: &[u8; 32],
        x25519: &[u8; 32],
        authority: &[u8; 32],
        at: u64,
    ) -> Vec<u8> {
        [
            REQUEST_CONTEXT,
            identity,
            x25519,
            authority,
            &at.to_be_bytes(),
        ]
        .concat()
    }

    /// Builds and signs a request.
    pub fn new(identity: &Sr25519Keypair, x25519: [u8; 32], authority: [u8; 32], now: u64) -> Self {
        let public = identity.public();
        let signature = identity.sign(&Self::signing_message(&public, &x25519, &authority, now));
        Self {
            identity: public,
            x25519,
            authority,
            requested_at: now,
            signature,
        }
    }

    /// Wire bytes.
    pub fn encode(&self) -> Vec<u8> {
        [
            &[VERSION][..],
            &self.identity,
            &self.x25519,
            &self.authority,
            &self.requested_at.to_be_bytes(),
            &self.signature,
        ]
        .concat()
    }

    /// Decodes wire bytes (nothing checked yet).
    pub fn decode(bytes: &[u8]) -> Result<Self, CertError> {
        if bytes.len() != REQUEST_LEN {
            return Err(CertError::Encoding("request length"));
        }
        let mut r = Reader::new(bytes);
        if r.u8()? != VERSION {
            return Err(CertError::Encoding("request version"));
        }
        Ok(Self {
            identity: r.array()?,
            x25519: r.array()?,
            authority: r.array()?,
            requested_at: r.u64()?,
            signature: r.array()?,
        })
    }
}

/// What a certificate states.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct CertBody {
    /// Unique per authority.
    pub serial: u64,
    /// The identity.
    pub identity: [u8; 32],
    /// Its kind on chain at issue time.
    pub kind: IdentityKind,
    /// Its X25519 key.
    pub x25519: [u8; 32],
    /// Unix seconds.
    pub not_before: u64,
    /// Unix seconds.
    pub not_after: u64,
    /// The issuing authority node.
    pub authority: [u8; 32],
}

impl CertBody {
    fn encode_into(&self, out: &mut Vec<u8>) {
        out.push(VERSION);
        out.extend_from_slice(&self.serial.to_be_bytes());
        out.extend_from_slice(&self.identity);
        out.push(kind_byte(self.kind));
        out.extend_from_slice(&self.x25519);
        out.extend_from_slice(&self.not_before.to_be_bytes());
        out.extend_from_slice(&self.not_after.to_be_bytes());
        out.extend_from_slice(&self.authority);
    }

    /// BLAKE2-256 of the encoded body: the statement's payload.
    pub fn hash(&self) -> [u8; 32] {
        let mut out = Vec::with_capacity(CERTIFICATE_LEN);
        self.encode_into(&mut out);
        blake2_256(&out)
    }

    fn statement(&self, genesis: &[u8; 32]) -> Vec<u8> {
        statement_message(genesis, AUTHORITY_ROLE, self.serial, &self.hash())
    }
}

/// A certificate as received: decoded, not yet verified.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Certificate {
    /// What it states.
    pub body: CertBody,
    /// The authority's signature over the staking statement of the body.
    pub signature: Sr25519Signature,
}

impl Certificate {
    /// Wire bytes.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(CERTIFICATE_LEN);
        self.body.encode_into(&mut out);
        out.extend_from_slice(&self.signature);
        out
    }

    /// Decodes wire bytes (nothing checked yet).
    pub fn decode(bytes: &[u8]) -> Result<Self, CertError> {
        if bytes.len() != CERTIFICATE_LEN {
            return Err(CertError::Encoding("certificate length"));
        }
        let mut r = Reader::new(bytes);
        if r.u8()? != VERSION {
            return Err(CertError::Encoding("certificate version"));
        }
        let serial = r.u64()?;
        let identity = r.array()?;
        let kind = kind_from_byte(r.u8()?).ok_or(CertError::Encoding("identity kind"))?;
        Ok(Self {
            body: CertBody {
                serial,
                identity,
                kind,
                x25519: r.array()?,
                not_before: r.u64()?,
                not_after: r.u64()?,
                authority: r.array()?,
            },
            signature: r.array()?,
        })
    }

    /// Verifies against the elected authority set and the chain: the only way to a
    /// [`VerifiedCertificate`].
    pub fn verify(
        &self,
        now: u64,
        genesis: &[u8; 32],
        authorities: &[[u8; 32]],
        registry: &impl IdentityRegistry,
    ) -> Result<VerifiedCertificate, CertError> {
        let b = &self.body;
        if now < b.not_before || now >= b.not_after {
            return Err(CertError::OutsideValidity {
                not_before: b.not_before,
                not_after: b.not_after,
                now,
            });
        }
        if !authorities.contains(&b.authority) {
            return Err(CertError::NotAnAuthority);
        }
        if live_kind(registry, &b.identity)? != b.kind {
            return Err(CertError::Identity("of another kind now"));
        }
        if !sr25519_verify(&b.authority, &b.statement(genesis), &self.signature) {
            return Err(CertError::Signature);
        }
        Ok(VerifiedCertificate(self.clone()))
    }
}

/// A certificate that verified.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct VerifiedCertificate(Certificate);

impl VerifiedCertificate {
    /// The checked statement.
    pub fn body(&self) -> &CertBody {
        &self.0.body
    }
}

/// The issuing side, run by an elected authority node.
#[derive(Debug)]
pub struct CertificateAuthority {
    key: Sr25519Keypair,
    genesis: [u8; 32],
    lifetime_secs: u64,
    request_window_secs: u64,
    next_serial: u64,
}

impl CertificateAuthority {
    /// An authority signing with its node key. `first_serial` should differ across restarts
    /// (the node uses the start time in milliseconds), so a serial is never signed twice.
    pub fn new(
        key: Sr25519Keypair,
        genesis: [u8; 32],
        lifetime_secs: u64,
        first_serial: u64,
    ) -> Self {
        Self {
            key,
            genesis,
            lifetime_secs,
            request_window_secs: 120,
            next_serial: first_serial,
        }
    }

    /// The authority's node key.
    pub fn public(&self) -> [u8; 32] {
        self.key.public()
    }

    /// Checks a request against chain state and issues a certificate.
    pub fn issue(
        &mut self,
        request: &[u8],
        now: u64,
        registry: &impl IdentityRegistry,
    ) -> Result<Certificate, CertError> {
        let req = CertRequest::decode(request)?;
        if req.authority != self.key.public() {
            return Err(CertError::WrongAuthority);
        }
        if req.requested_at.abs_diff(now) > self.request_window_secs {
            return Err(CertError::StaleRequest {
                requested_at: req.requested_at,
                now,
                window: self.request_window_secs,
            });
        }
        let message = CertRequest::signing_message(
            &req.identity,
            &req.x25519,
            &req.authority,
            req.requested_at,
        );
        if !sr25519_verify(&req.identity, &message, &req.signature) {
            return Err(CertError::RequestSignature);
        }
        let kind = live_kind(registry, &req.identity)?;
        let body = CertBody {
            serial: self.next_serial,
            identity: req.identity,
            kind,
            x25519: req.x25519,
            not_before: now,
            not_after: now.saturating_add(self.lifetime_secs),
            authority: self.key.public(),
        };
        self.next_serial = self.next_serial.wrapping_add(1);
        let signature = self.key.sign(&body.statement(&self.genesis));
        Ok(Certificate { body, signature })
    }
}

#[cfg(test)]
mod tests;
