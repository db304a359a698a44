//! Everything that must be refused, at the landing node and at the oracle.

use super::*;
use crate::blind_rsa::{self, BlindedMessage};
use crate::issuer::CountEntry;

fn alice_receipt(f: &mut Fixture) -> Receipt {
    obtain(&mut f.issuer, ALICE, &hd(), &f.hd_key, hd()).expect("issued")
}

// --- landing node

#[test]
fn forged_signatures_are_refused() {
    let mut f = fixture();
    let mut receipt = alice_receipt(&mut f);
    receipt.signature[10] ^= 0x01;
    assert!(matches!(
        f.verifier.verify(NOW, &receipt),
        Err(ReceiptError::BadSignature { .. })
    ));
    // Random bytes, and all ones (not below n).
    for forged in [vec![0x5a; 256], vec![0xff; 256]] {
        receipt.signature = forged;
        assert!(matches!(
            f.verifier.verify(NOW, &receipt),
            Err(ReceiptError::BadSignature { .. })
        ));
    }
    assert_eq!(f.verifier.spent_len(), 0);
}

#[test]
fn tampered_fields_are_refused() {
    let mut f = fixture();
    let modest = StreamParams {
        lifetime_secs: 1_800,
        distribution_nodes: 1,
        ..hd()
    };
    let receipt = obtain(&mut f.issuer, ALICE, &hd(), &f.hd_key, modest).expect("issued");
    // Raised within the tier: only the signature catches it.
    let mut more_nodes = receipt.clone();
    more_nodes.params.distribution_nodes = 4;
    let mut longer = receipt.clone();
    longer.params.lifetime_secs += 1;
    let mut other_spend_id = receipt.clone();
    other_spend_id.spend_id.0[0] ^= 1;
    let mut other_prefix = receipt.clone();
    other_prefix.prefix[31] ^= 1;
    // Moved to another landing node: the signature covers which one.
    let mut other_landing = receipt.clone();
    other_landing.landing[0] ^= 1;
    for tampered in [
        more_nodes,
        longer,
        other_spend_id,
        other_prefix,
        other_landing,
    ] {
        assert!(matches!(
            f.verifier.verify(NOW, &tampered),
            Err(ReceiptError::BadSignature { .. })
        ));
    }
    let mut other_epoch = receipt.clone();
    other_epoch.epoch += 1;
    assert!(matches!(
        f.verifier.verify(NOW, &other_epoch),
        Err(ReceiptError::WrongEpoch {
            receipt_epoch: 43,
            key_epoch: 42
        })
    ));
    f.verifier
        .verify(NOW, &receipt)
        .expect("the original still verifies");
}

#[test]
fn a_receipt_under_another_published_key_is_refused() {
    let mut f = fixture();
    let mut receipt = obtain(&mut f.issuer, ALICE, &hd(), &f.sd_key, sd()).expect("issued");
    // Claims the HD key (whose tier covers the params): the SD key's signature fails there.
    receipt.key_id = f.hd_key.key_id();
    assert!(matches!(
        f.verifier.verify(NOW, &receipt),
        Err(ReceiptError::BadSignature { .. })
    ));
    // The client blinded for the SD key but the oracle signed with the HD key: finalize
    // refuses rather than produce a receipt that would not verify.
    // The blinding is random: a blinded message at or above the HD modulus is refused
    // outright (BlindedMessageOutOfRange, a refusal too); take one below it to reach finalize.
    let (request, wrong) = (0..16)
        .find_map(|_| {
            let (request, blinded) =
                ReceiptRequest::new(&f.sd_key, sd(), [0x1a; 32]).expect("request");
            match f.issuer.issue(EPOCH, ALICE, &hd(), &hd(), &blinded) {
                Ok(wrong) => Some((request, wrong)),
                Err(ReceiptError::BlindedMessageOutOfRange) => None,
                Err(e) => panic!("the HD key refused for another reason: {e}"),
            }
        })
        .expect("a blinded message below the HD modulus in 16 tries");
    assert!(matches!(
        request.finalize(&wrong),
        Err(ReceiptError::BadSignature { .. })
    ));
}

#[test]
fn unknown_keys_are_refused() {
    let mut f = fixture();
    let receipt = alice_receipt(&mut f);
    let mut landing = Verifier::new(VerifierConfig::default());
    landing.insert_key(f.sd_key.clone()).expect("only SD");
    assert!(matches!(
        landing.verify(NOW, &receipt),
        Err(ReceiptError::UnknownKey { key_id }) if key_id == f.hd_key.key_id()
    ));
    // A key nobody published, even a valid one signing valid receipts.
    let rogue_signing = test_key(2);
    let rogue = published(&rogue_signing, hd());
    let mut rogue_issuer = Issuer::new(ORACLE_B, IssuerConfig::default());
    rogue_issuer
        .install_key(EPOCH, hd(), rogue_signing)
        .expect("rogue key");
    let rogue_receipt = obtain(&mut rogue_issuer, ALICE, &hd(), &rogue, hd()).expect("issued");
    assert!(matches!(
        f.verifier.verify(NOW, &rogue_receipt),
        Err(ReceiptError::UnknownKey { .. })
    ));
}

#[test]
fn expired_receipts_are_refused() {
    let mut f = fixture();
    let receipt = alice_receipt(&mut f);
    f.verifier
        .verify(EXPIRES - 1, &receipt)
        .expect("last second");
    assert!(matches!(
        f.verifier.verify(EXPIRES, &receipt),
        Err(ReceiptError::Expired {
            expires_at: EXPIRES,
            now: EXPIRES
        })
    ));
    let verified = f.verifier.verify(EXPIRES - 1, &receipt).expect("verified");
    assert!(matches!(
        f.verifier.spend(EXPIRES + 5, &verified),
        Err(ReceiptError::Expired { .. })
    ));
    // Once pruned, the key is gone altogether.
    f.verifier.prune(EXPIRES);
    assert!(matches!(
        f.verifier.verify(EXPIRES, &receipt),
        Err(ReceiptError::UnknownKey { .. })
    ));
}

#[test]
fn replayed_receipts_are_refused() {
    let mut f = fixture();
    let receipt = alice_receipt(&mut f);
    let verified = f.verifier.verify(NOW, &receipt).expect("first time");
    // Two concurrent verifications: the second spend loses.
    let again = f.verifier.verify(NOW, &receipt).expect("not spent yet");
    f.verifier.spend(NOW, &verified).expect("spent");
    assert!(matches!(
        f.verifier.spend(NOW, &again),
        Err(ReceiptError::AlreadySpent { spend_id }) if spend_id == receipt.spend_id
    ));
    assert!(matches!(
        f.verifier.verify_and_spend(NOW + 60, &receipt),
        Err(ReceiptError::AlreadySpent { .. })
    ));
}

#[test]
fn the_spent_set_is_bounded_and_forgets_only_at_expiry() {
    let mut f = fixture_with(
        IssuerConfig::default(),
        VerifierConfig {
            max_spent: 2,
            ..VerifierConfig::default()
        },
    );
    let receipts: Vec<Receipt> = (0..3).map(|_| alice_receipt(&mut f)).collect();
    f.verifier.verify_and_spend(NOW, &receipts[0]).expect("1");
    f.verifier.verify_and_spend(NOW, &receipts[1]).expect("2");
    assert!(matches!(
        f.verifier.verify_and_spend(NOW, &receipts[2]),
        Err(ReceiptError::SpentSetFull { max: 2 })
    ));
    assert_eq!(f.verifier.spent_len(), 2);
    // A later key: once the first key's receipts expire, their spend ids go and room returns.
    let later = PublishedKey {
        epoch: EPOCH + 1,
        expires_at: EXPIRES + 3_600,
        ..published(&test_key(3), hd())
    };
    f.verifier.insert_key(later.clone()).expect("later key");
    f.issuer
        .install_key(EPOCH + 1, hd(), test_key(3))
        .expect("later key at the oracle");
    let (request, blinded) = ReceiptRequest::new(&later, hd(), [0x1a; 32]).expect("request");
    let sig = f
        .issuer
        .issue(EPOCH + 1, ALICE, &hd(), &hd(), &blinded)
        .expect("issued");
    let late = request.finalize(&sig).expect("finalized");
    f.verifier
        .verify_and_spend(EXPIRES, &late)
        .expect("room after expiry");
    assert_eq!(f.verifier.spent_len(), 1);
}

#[test]
fn receipts_beyond_their_keys_tier_are_refused() {
    // A cheating client blinds HD parameters but asks for (and is allowed) the SD tier only.
    let mut f = fixture();
    let cheat = Receipt {
        key_id: f.sd_key.key_id(),
        epoch: EPOCH,
        params: hd(),
        landing: [0x1a; 32],
        spend_id: SpendId([7; 32]),
        prefix: [0; 32],
        signature: Vec::new(),
    };
    let prepared = cheat.signed_message();
    let (blinded, secret) = blind_rsa::blind(&f.sd_key.public, &prepared).expect("blind");
    let blind_sig = f
        .issuer
        .issue(EPOCH, ALICE, &sd(), &sd(), &blinded)
        .expect("the oracle cannot see what it signs");
    let signature =
        blind_rsa::finalize(&f.sd_key.public, &secret, &blind_sig, &prepared).expect("valid");
    let cheat = Receipt { signature, ..cheat };
    assert!(matches!(
        f.verifier.verify(NOW, &cheat),
        Err(ReceiptError::BeyondTier { params, tier }) if params == hd() && tier == sd()
    ));
}

// --- oracle

#[test]
fn params_beyond_the_allowance_or_without_a_tier_are_refused() {
    let mut f = fixture();
    let (_, blinded) = ReceiptRequest::new(&f.hd_key, hd(), [0x1a; 32]).expect("request");
    assert!(matches!(
        f.issuer.issue(EPOCH, ALICE, &sd(), &hd(), &blinded),
        Err(ReceiptError::BeyondAllowance { requested, allowed }) if requested == hd() && allowed == sd()
    ));
    let odd = StreamParams {
        lifetime_secs: 900,
        ..sd()
    };
    assert!(matches!(
        f.issuer.issue(EPOCH, ALICE, &hd(), &odd, &blinded),
        Err(ReceiptError::NoSuchTier { .. })
    ));
    let zero_nodes = StreamParams {
        distribution_nodes: 0,
        ..sd()
    };
    assert!(matches!(
        f.issuer.issue(EPOCH, ALICE, &hd(), &zero_nodes, &blinded),
        Err(ReceiptError::OutOfBounds {
            field: "distribution_nodes",
            ..
        })
    ));
    assert_eq!(f.issuer.issued(EPOCH, &ALICE), 0);
    assert!(matches!(
        f.issuer.issue(EPOCH + 1, ALICE, &hd(), &hd(), &blinded),
        Err(ReceiptError::NoKeyForEpoch { epoch: 43 })
    ));
}

#[test]
fn malformed_blinded_messages_are_refused_and_not_counted() {
    let mut f = fixture();
    let short = BlindedMessage::from_bytes(vec![1; 255]);
    assert!(matches!(
        f.issuer.issue(EPOCH, ALICE, &hd(), &hd(), &short),
        Err(ReceiptError::WrongLength {
            expected: 256,
            got: 255,
            ..
        })
    ));
    let too_big = BlindedMessage::from_bytes(vec![0xff; 256]);
    assert!(matches!(
        f.issuer.issue(EPOCH, ALICE, &hd(), &hd(), &too_big),
        Err(ReceiptError::BlindedMessageOutOfRange)
    ));
    assert_eq!(f.issuer.issued(EPOCH, &ALICE), 0);
}

#[test]
fn the_per_subscription_bound_counts_the_other_oracles_issues() {
    let config = IssuerConfig {
        receipts_per_subscription: 3,
        ..IssuerConfig::default()
    };
    let mut f = fixture_with(config.clone(), VerifierConfig::default());
    // Oracle B has its own keys and has already issued two receipts to Alice this epoch.
    let mut b = Issuer::new(ORACLE_B, config);
    let b_signing = test_key(2);
    let b_key = published(&b_signing, hd());
    b.install_key(EPOCH, hd(), b_signing).expect("B's key");
    obtain(&mut b, ALICE, &hd(), &b_key, hd()).expect("B 1");
    obtain(&mut b, ALICE, &hd(), &b_key, hd()).expect("B 2");
    obtain(&mut b, BOB, &hd(), &b_key, hd()).expect("B, Bob");

    // A hears of it: the pointwise max, idempotent.
    let counts = b.counts(EPOCH);
    assert_eq!(counts.len(), 1);
    let report = f.issuer.merge(EPOCH, &counts[0]);
    assert_eq!((report.raised, report.unchanged, report.dropped), (2, 0, 0));
    let report = f.issuer.merge(EPOCH, &counts[0]);
    assert_eq!((report.raised, report.unchanged), (0, 2));
    assert_eq!(f.issuer.issued(EPOCH, &ALICE), 2);

    obtain(&mut f.issuer, ALICE, &hd(), &f.hd_key, hd()).expect("A: the third");
    assert!(matches!(
        obtain(&mut f.issuer, ALICE, &hd(), &f.hd_key, hd()),
        Err(ReceiptError::SubscriptionExhausted { subscription, epoch: EPOCH, issued: 3, bound: 3 })
            if subscription == ALICE
    ));
    // Bob is unaffected; and B, hearing from A, refuses Alice too.
    obtain(&mut f.issuer, BOB, &hd(), &f.hd_key, hd()).expect("Bob");
    for c in f.issuer.counts(EPOCH) {
        b.merge(EPOCH, &c);
    }
    assert_eq!(b.issued(EPOCH, &ALICE), 3);
    assert!(matches!(
        obtain(&mut b, ALICE, &hd(), &b_key, hd()),
        Err(ReceiptError::SubscriptionExhausted { .. })
    ));
    // A stale (lower) count changes nothing: counters only grow.
    let stale = Counts {
        epoch: EPOCH,
        entries: vec![CountEntry {
            subscription: ALICE,
            oracle: ORACLE_B,
            issued: 1,
        }],
    };
    assert_eq!(f.issuer.merge(EPOCH, &stale).unchanged, 1);
    assert_eq!(f.issuer.issued(EPOCH, &ALICE), 3);
}

#[test]
fn old_epochs_are_pruned_and_foreign_epochs_ignored() {
    let mut f = fixture();
    obtain(&mut f.issuer, ALICE, &hd(), &f.hd_key, hd()).expect("issued");
    let old = Counts {
        epoch: EPOCH - 1,
        entries: vec![CountEntry {
            subscription: ALICE,
            oracle: ORACLE_B,
            issued: 5,
        }],
    };
    assert_eq!(f.issuer.merge(EPOCH, &old).wrong_epoch, 1);
    let far = Counts {
        epoch: EPOCH + 2,
        ..old.clone()
    };
    assert_eq!(f.issuer.merge(EPOCH, &far).wrong_epoch, 1);
    let next = Counts {
        epoch: EPOCH + 1,
        ..old
    };
    assert_eq!(f.issuer.merge(EPOCH, &next).raised, 1);
    // The next epoch begins: this epoch's counters and keys go.
    f.issuer.prune(EPOCH + 1);
    assert_eq!(f.issuer.issued(EPOCH, &ALICE), 0);
    assert_eq!(f.issuer.issued(EPOCH + 1, &ALICE), 5);
    assert!(f.issuer.public_keys(EPOCH).is_empty());
    // A clock going back does not bring an epoch back.
    let (_, blinded) = ReceiptRequest::new(&f.hd_key, hd(), [0x1a; 32]).expect("request");
    assert!(matches!(
        f.issuer.issue(EPOCH, ALICE, &hd(), &hd(), &blinded),
        Err(ReceiptError::NoKeyForEpoch { .. })
    ));
}

#[test]
fn the_subscription_table_is_bounded() {
    let config = IssuerConfig {
        max_subscriptions_per_epoch: 1,
        max_oracles: 1,
        ..IssuerConfig::default()
    };
    let mut f = fixture_with(config, VerifierConfig::default());
    obtain(&mut f.issuer, ALICE, &hd(), &f.hd_key, hd()).expect("Alice");
    assert!(matches!(
        obtain(&mut f.issuer, BOB, &hd(), &f.hd_key, hd()),
        Err(ReceiptError::SubscriptionTableFull {
            epoch: EPOCH,
            max: 1
        })
    ));
    let entry = |subscription, oracle| CountEntry {
        subscription,
        oracle,
        issued: 1,
    };
    let counts = Counts {
        epoch: EPOCH,
        entries: vec![
            entry(BOB, ORACLE_B),
            entry(ALICE, ORACLE_B),
            entry(ALICE, OracleId([0xc0; 32])),
        ],
    };
    let report = f.issuer.merge(EPOCH, &counts);
    // Bob: no room; Alice's second foreign oracle: beyond max_oracles.
    assert_eq!((report.raised, report.dropped), (1, 2));
    assert_eq!(f.issuer.issued(EPOCH, &ALICE), 2);
}

#[test]
fn keys_and_tiers_are_installed_once() {
    let mut issuer = Issuer::new(
        ORACLE_A,
        IssuerConfig {
            max_tiers: 2,
            ..IssuerConfig::default()
        },
    );
    issuer.install_key(EPOCH, hd(), test_key(0)).expect("HD");
    assert!(matches!(
        issuer.install_key(EPOCH, sd(), test_key(0)),
        Err(ReceiptError::DuplicateKey)
    ));
    assert!(matches!(
        issuer.install_key(EPOCH, hd(), test_key(1)),
        Err(ReceiptError::DuplicateKey)
    ));
    issuer.install_key(EPOCH, sd(), test_key(1)).expect("SD");
    let third = StreamParams {
        bitrate: BitrateClass::Ultra,
        ..hd()
    };
    assert!(matches!(
        issuer.install_key(EPOCH, third, test_key(2)),
        Err(ReceiptError::TooManyKeys { max: 2 })
    ));
    assert_eq!(issuer.public_keys(EPOCH).len(), 2);

    let mut landing = Verifier::new(VerifierConfig {
        max_keys: 1,
        ..VerifierConfig::default()
    });
    landing
        .insert_key(published(&test_key(0), hd()))
        .expect("one");
    assert!(matches!(
        landing.insert_key(published(&test_key(1), sd())),
        Err(ReceiptError::TooManyKeys { max: 1 })
    ));
}
