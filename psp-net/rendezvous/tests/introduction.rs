//! Sealed introductions: only the recipient opens them, and only checked, fresh, unreplayed
//! ones are usable.

mod common;

use common::*;
use psp_rendezvous::chain::CertificateError;
use psp_rendezvous::crypto::AnnouncementSecret;
use psp_rendezvous::intro::{self, IntroError, Introduction, MAX_SEALED_LEN};
use psp_rendezvous::replay::{ReplayCache, ReplayConfig};
use psp_rendezvous::wire::SealedIntroduction;
use psp_rendezvous::Cookie;

struct Setup {
    world: World,
    alice: Client,
    bob: Client,
}

fn setup() -> Setup {
    let mut world = World::new();
    let alice = world.client(1);
    let bob = world.client(2);
    Setup { world, alice, bob }
}

fn introduction(s: &mut Setup, now: u64) -> Introduction {
    Introduction::new(
        s.alice.id(),
        s.alice.certificate.clone(),
        s.world.rendezvous_node.public(),
        Cookie([0x33; 32]),
        [0x44; 32],
        now,
        &mut s.world.rng,
    )
}

fn seal(s: &mut Setup, intro: &Introduction) -> SealedIntroduction {
    intro
        .seal(
            &s.alice.key,
            &s.bob.id(),
            &s.bob.announcement.public(),
            &mut s.world.rng,
        )
        .unwrap()
}

#[test]
fn the_recipient_opens_and_checks_an_introduction() {
    let mut s = setup();
    let intro = introduction(&mut s, NOW);
    let sealed = seal(&mut s, &intro);
    // version 1 + E 32 + fixed plaintext 218 + certificate + tag 16.
    assert_eq!(sealed.len(), 1 + 32 + 218 + psp_cert::CERTIFICATE_LEN + 16);
    assert!(sealed.len() <= MAX_SEALED_LEN);
    let mut replay = ReplayCache::default();
    let verified = intro::open(sealed.as_slice(), &s.bob.announcement)
        .unwrap()
        .check(NOW + 5, &s.bob.id(), &s.world.chain(), &mut replay)
        .unwrap();
    assert_eq!(verified.introduction(), &intro);
    assert_eq!(verified.introducer(), &s.alice.id());
    assert_eq!(
        verified.certificate().body().x25519,
        s.alice.announcement.public()
    );
    assert_eq!(replay.len(), 1);
}

#[test]
fn nobody_else_opens_it_and_altered_bytes_do_not_open() {
    let mut s = setup();
    let intro = introduction(&mut s, NOW);
    let sealed = seal(&mut s, &intro);
    // Alice's own key, a random key, the presence node's view: nothing opens.
    for key in [
        AnnouncementSecret::from_bytes([7; 32]),
        AnnouncementSecret::from_bytes([101; 32]),
    ] {
        assert_eq!(
            intro::open(sealed.as_slice(), &key),
            Err(IntroError::DoesNotOpen)
        );
    }
    for i in [0usize, 1, 40, 200, sealed.len() - 1] {
        let mut altered = sealed.as_slice().to_vec();
        altered[i] ^= 0x01;
        assert!(
            intro::open(&altered, &s.bob.announcement).is_err(),
            "byte {i}"
        );
    }
    assert!(matches!(
        intro::open(&sealed.as_slice()[..100], &s.bob.announcement),
        Err(IntroError::BadLength { len: 100 })
    ));
    // A low-order ephemeral key.
    let mut low_order = sealed.as_slice().to_vec();
    low_order[1..33].fill(0);
    assert_eq!(
        intro::open(&low_order, &s.bob.announcement),
        Err(IntroError::NonContributory)
    );
}

#[test]
fn a_replayed_or_stale_introduction_is_refused() {
    let mut s = setup();
    let intro = introduction(&mut s, NOW);
    let sealed = seal(&mut s, &intro);
    let mut replay = ReplayCache::new(ReplayConfig::default());
    let check = |replay: &mut ReplayCache, now: u64, s: &Setup| {
        intro::open(sealed.as_slice(), &s.bob.announcement)
            .unwrap()
            .check(now, &s.bob.id(), &s.world.chain(), replay)
    };
    check(&mut replay, NOW, &s).unwrap();
    assert_eq!(check(&mut replay, NOW + 1, &s), Err(IntroError::Replayed));
    // Re-sealing the same introduction (fresh ephemeral key) is still a replay.
    let resealed = seal(&mut s, &intro);
    assert_eq!(
        intro::open(resealed.as_slice(), &s.bob.announcement)
            .unwrap()
            .check(NOW + 2, &s.bob.id(), &s.world.chain(), &mut replay),
        Err(IntroError::Replayed)
    );
    assert!(matches!(
        check(&mut ReplayCache::default(), NOW + 121, &s),
        Err(IntroError::OutsideWindow { .. })
    ));
    assert!(matches!(
        check(&mut ReplayCache::default(), NOW - 121, &s),
        Err(IntroError::OutsideWindow { .. })
    ));
}

#[test]
fn an_introduction_for_someone_else_or_with_a_foreign_certificate_is_refused() {
    let mut s = setup();
    let carol = s.world.client(3);
    let intro = introduction(&mut s, NOW);
    // Sealed to Carol, then "forwarded" to Bob by Carol re-sealing the plaintext: Carol
    // cannot forge Alice's signature for Bob, and the signature names Carol.
    let to_carol = intro
        .seal(
            &s.alice.key,
            &carol.id(),
            &carol.announcement.public(),
            &mut s.world.rng,
        )
        .unwrap();
    let opened = intro::open(to_carol.as_slice(), &carol.announcement).unwrap();
    assert_eq!(
        opened.check(
            NOW,
            &s.bob.id(),
            &s.world.chain(),
            &mut ReplayCache::default()
        ),
        Err(IntroError::Signature)
    );
    // Alice presenting Carol's certificate.
    let mut wrong_cert = introduction(&mut s, NOW);
    wrong_cert.certificate = carol.certificate.clone();
    let sealed = seal(&mut s, &wrong_cert);
    let err = intro::open(sealed.as_slice(), &s.bob.announcement)
        .unwrap()
        .check(
            NOW,
            &s.bob.id(),
            &s.world.chain(),
            &mut ReplayCache::default(),
        )
        .unwrap_err();
    assert!(matches!(
        err,
        IntroError::Certificate(CertificateError::WrongIdentity { .. })
    ));
    // Alice revoked.
    let intro = introduction(&mut s, NOW);
    let sealed = seal(&mut s, &intro);
    s.world.registry.revoke(s.alice.id());
    let err = intro::open(sealed.as_slice(), &s.bob.announcement)
        .unwrap()
        .check(
            NOW,
            &s.bob.id(),
            &s.world.chain(),
            &mut ReplayCache::default(),
        )
        .unwrap_err();
    assert!(matches!(err, IntroError::Certificate(e) if e.identity_not_live()));
    // Sealing with a key that is not the introducer's.
    assert_eq!(
        intro.seal(
            &carol.key,
            &s.bob.id(),
            &s.bob.announcement.public(),
            &mut s.world.rng
        ),
        Err(IntroError::WrongIntroducerKey)
    );
}
