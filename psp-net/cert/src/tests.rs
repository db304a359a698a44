//! Certificates: issuance checks, verification against the authority set and the chain.

use super::*;
use crate::registry::StaticRegistry;

const NOW: u64 = 2_000_000;
const GENESIS: [u8; 32] = [0x47; 32];

struct Fixture {
    client: Sr25519Keypair,
    authority: CertificateAuthority,
    registry: StaticRegistry,
}

fn fixture() -> Fixture {
    let client = Sr25519Keypair::from_seed(&[1; 32]);
    let node = Sr25519Keypair::from_seed(&[2; 32]);
    let mut registry = StaticRegistry::default();
    registry.insert(client.public(), IdentityKind::Client);
    registry.insert(node.public(), IdentityKind::Node);
    Fixture {
        client,
        authority: CertificateAuthority::new(node, GENESIS, 300, 7),
        registry,
    }
}

fn request(f: &Fixture, at: u64) -> Vec<u8> {
    CertRequest::new(&f.client, [9; 32], f.authority.public(), at).encode()
}

#[test]
fn an_issued_certificate_verifies_and_round_trips() {
    let mut f = fixture();
    let cert = f
        .authority
        .issue(&request(&f, NOW), NOW, &f.registry)
        .expect("issued");
    assert_eq!(cert.body.serial, 7);
    assert_eq!(cert.body.kind, IdentityKind::Client);
    assert_eq!(cert.body.not_after, NOW + 300);
    let bytes = cert.encode();
    assert_eq!(bytes.len(), CERTIFICATE_LEN);
    let decoded = Certificate::decode(&bytes).expect("decodes");
    let set = [f.authority.public()];
    let verified = decoded
        .verify(NOW + 10, &GENESIS, &set, &f.registry)
        .expect("verifies");
    assert_eq!(verified.body().identity, f.client.public());
    assert_eq!(verified.body().x25519, [9; 32]);
    // Serials never repeat.
    let next = f
        .authority
        .issue(&request(&f, NOW), NOW, &f.registry)
        .expect("issued");
    assert_eq!(next.body.serial, 8);
}

#[test]
fn bad_requests_are_refused() {
    let mut f = fixture();
    let mut forged = CertRequest::decode(&request(&f, NOW)).expect("decodes");
    forged.x25519 = [8; 32];
    assert_eq!(
        f.authority.issue(&forged.encode(), NOW, &f.registry),
        Err(CertError::RequestSignature)
    );
    let elsewhere = CertRequest::new(&f.client, [9; 32], [5; 32], NOW).encode();
    assert_eq!(
        f.authority.issue(&elsewhere, NOW, &f.registry),
        Err(CertError::WrongAuthority)
    );
    assert!(matches!(
        f.authority.issue(&request(&f, NOW - 121), NOW, &f.registry),
        Err(CertError::StaleRequest { .. })
    ));
    assert!(matches!(
        f.authority.issue(&request(&f, NOW)[..50], NOW, &f.registry),
        Err(CertError::Encoding(_))
    ));
    let mut revoked = f.registry.clone();
    revoked.revoke(f.client.public());
    assert_eq!(
        f.authority.issue(&request(&f, NOW), NOW, &revoked),
        Err(CertError::Identity("revoked"))
    );
    let stranger = Sr25519Keypair::from_seed(&[3; 32]);
    let unknown = CertRequest::new(&stranger, [9; 32], f.authority.public(), NOW).encode();
    assert_eq!(
        f.authority.issue(&unknown, NOW, &f.registry),
        Err(CertError::Identity("not registered"))
    );
}

#[test]
fn verification_needs_an_elected_authority_a_live_identity_and_the_window() {
    let mut f = fixture();
    let cert = f
        .authority
        .issue(&request(&f, NOW), NOW, &f.registry)
        .expect("issued");
    let set = [f.authority.public()];
    assert_eq!(
        cert.verify(NOW, &GENESIS, &[[4; 32]], &f.registry),
        Err(CertError::NotAnAuthority)
    );
    assert!(matches!(
        cert.verify(NOW + 300, &GENESIS, &set, &f.registry),
        Err(CertError::OutsideValidity { .. })
    ));
    assert!(matches!(
        cert.verify(NOW - 1, &GENESIS, &set, &f.registry),
        Err(CertError::OutsideValidity { .. })
    ));
    // Revoked at the next finalized block: refused from then on.
    let mut revoked = f.registry.clone();
    revoked.revoke(f.client.public());
    assert_eq!(
        cert.verify(NOW + 1, &GENESIS, &set, &revoked),
        Err(CertError::Identity("revoked"))
    );
    // Another chain, a tampered body, a self-made certificate.
    assert_eq!(
        cert.verify(NOW, &[0; 32], &set, &f.registry),
        Err(CertError::Signature)
    );
    let mut tampered = cert.clone();
    tampered.body.not_after += 3_600;
    assert_eq!(
        tampered.verify(NOW, &GENESIS, &set, &f.registry),
        Err(CertError::Signature)
    );
    let mut self_made = cert.clone();
    self_made.signature = f.client.sign(&cert.body.statement(&GENESIS));
    assert_eq!(
        self_made.verify(NOW, &GENESIS, &set, &f.registry),
        Err(CertError::Signature)
    );
}

#[test]
fn malformed_certificates_are_refused() {
    let mut f = fixture();
    let bytes = f
        .authority
        .issue(&request(&f, NOW), NOW, &f.registry)
        .expect("issued")
        .encode();
    assert!(Certificate::decode(&bytes[..bytes.len() - 1]).is_err());
    let mut kind = bytes.clone();
    kind[41] = 9;
    assert_eq!(
        Certificate::decode(&kind),
        Err(CertError::Encoding("identity kind"))
    );
    let mut version = bytes;
    version[0] = 2;
    assert_eq!(
        Certificate::decode(&version),
        Err(CertError::Encoding("certificate version"))
    );
}
