//! Access certificates and certificate requests, as peers send them: any bytes into
//! `CertRequest::decode` and `Certificate::decode`, into `Certificate::verify` (the identity
//! marked live, its issuer elected, the time inside the window, so the signature check runs),
//! and into `CertificateAuthority::issue`.
//!
//! Shared by the `cert` fuzz target and `tests/fuzz_regressions.rs` (`#[path]` module).
//!
//! Checked:
//! * decoding never panics; what decodes re-encodes to exactly the input and decodes again to
//!   the same value;
//! * a fuzzed certificate or request, with every other check set up to pass, is refused for its
//!   signature and nothing else (or, carrying a real signature, accepted);
//! * a request rebuilt from the fuzzed fields and signed by a real identity key is issued a
//!   certificate exactly when the identity may hold one, and that certificate verifies at its
//!   issue time, round-trips, and no longer verifies once its window has passed.

use std::sync::OnceLock;

use psp_net::cert::{CertError, CertRequest, Certificate, CertificateAuthority};
use psp_net::crypto::Sr25519Keypair;
use psp_net::registry::{IdentityKind, StaticRegistry};

const GENESIS: [u8; 32] = [0x47; 32];
const LIFETIME: u64 = 3_600;

fn keys() -> &'static (Sr25519Keypair, Sr25519Keypair) {
    static KEYS: OnceLock<(Sr25519Keypair, Sr25519Keypair)> = OnceLock::new();
    KEYS.get_or_init(|| {
        (
            Sr25519Keypair::from_seed(&[0x41; 32]),
            Sr25519Keypair::from_seed(&[0x42; 32]),
        )
    })
}

const KINDS: [IdentityKind; 4] = [
    IdentityKind::Client,
    IdentityKind::Node,
    IdentityKind::Group,
    IdentityKind::Device,
];

fn certificate(data: &[u8]) {
    let Ok(c) = Certificate::decode(data) else {
        return;
    };
    assert_eq!(c.encode(), data, "certificate decoder is canonical");
    assert_eq!(Certificate::decode(data).as_ref(), Ok(&c));
    let b = &c.body;
    let mut registry = StaticRegistry::default();
    registry.insert(b.identity, b.kind);
    let result = c.verify(b.not_before, &GENESIS, &[b.authority], &registry);
    if b.not_before >= b.not_after {
        assert!(matches!(result, Err(CertError::OutsideValidity { .. })));
    } else if b.kind == IdentityKind::Group {
        assert!(matches!(result, Err(CertError::Identity(_))));
    } else {
        // Refused for its signature, or (a stored input may carry a real one) verified.
        match result {
            Ok(v) => assert_eq!(v.body(), b),
            Err(e) => assert_eq!(e, CertError::Signature),
        }
    }
    assert_eq!(
        c.verify(b.not_after, &GENESIS, &[b.authority], &registry)
            .err()
            .map(|e| matches!(e, CertError::OutsideValidity { .. })),
        Some(true)
    );
}

fn request(data: &[u8]) -> bool {
    let Ok(r) = CertRequest::decode(data) else {
        return false;
    };
    assert_eq!(r.encode(), data, "request decoder is canonical");
    assert_eq!(CertRequest::decode(data).as_ref(), Ok(&r));
    let (identity, authority) = keys();

    // As received, at an authority the request names: refused, never issued.
    let mut registry = StaticRegistry::default();
    let kind = KINDS[usize::from(r.x25519[0] & 3)];
    registry.insert(r.identity, kind);
    let mut ca = CertificateAuthority::new(authority.clone(), GENESIS, LIFETIME, r.requested_at);
    let as_received = ca.issue(data, r.requested_at, &registry);
    if r.authority != authority.public() {
        assert_eq!(as_received.err(), Some(CertError::WrongAuthority));
    }
    // The same, re-addressed to this authority: everything up to the signature passes.
    let mut readdressed = r.clone();
    readdressed.authority = authority.public();
    match ca.issue(&readdressed.encode(), r.requested_at, &registry) {
        Err(CertError::RequestSignature) => {}
        // Only a request really signed for this authority gets past its signature check.
        Ok(_) | Err(CertError::Identity(_)) => assert_eq!(r.authority, authority.public()),
        Err(e) => panic!("refused before the signature: {e:?}"),
    }

    if r.x25519[0] & 4 == 0 {
        return false;
    }
    // Signed by a real identity key: issued iff the identity may hold a certificate.
    let now = r.requested_at;
    let req = CertRequest::new(identity, r.x25519, authority.public(), now);
    let bytes = req.encode();
    assert_eq!(CertRequest::decode(&bytes).as_ref(), Ok(&req));
    let revoked = r.x25519[0] & 8 != 0;
    if revoked {
        registry.revoke(identity.public());
    } else {
        registry.insert(identity.public(), kind);
    }
    let issued = ca.issue(&bytes, now, &registry);
    if revoked || kind == IdentityKind::Group {
        assert!(matches!(issued, Err(CertError::Identity(_))), "{issued:?}");
        return false;
    }
    let cert = issued.expect("a live identity's signed request is issued");
    assert_eq!(cert.body.identity, identity.public());
    assert_eq!(cert.body.kind, kind);
    assert_eq!(cert.body.x25519, r.x25519);
    assert_eq!(Certificate::decode(&cert.encode()).as_ref(), Ok(&cert));
    let authorities = [authority.public()];
    let verified = cert.verify(now, &GENESIS, &authorities, &registry);
    if cert.body.not_after > now {
        assert_eq!(
            verified.expect("an issued certificate verifies").body(),
            &cert.body
        );
    } else {
        // Issued at the end of time: an empty window.
        assert!(verified.is_err());
    }
    assert!(cert
        .verify(cert.body.not_after, &GENESIS, &authorities, &registry)
        .is_err());
    // Another chain's genesis, or one flipped byte, and it no longer verifies.
    assert!(cert.verify(now, &[0; 32], &authorities, &registry).is_err());
    let mut bad = cert.encode();
    let last = bad.len() - 1;
    bad[last] ^= 0x10;
    if let Ok(bad) = Certificate::decode(&bad) {
        assert!(bad.verify(now, &GENESIS, &authorities, &registry).is_err());
    }
    cert.body.not_after > now
}

/// Runs every check on `data`; returns whether a request re-signed from it was issued a
/// certificate that verified (the positive path).
pub fn check(data: &[u8]) -> bool {
    certificate(data);
    request(data)
}
