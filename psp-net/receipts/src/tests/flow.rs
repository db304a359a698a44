//! The issuance round trip, and what the issuer's view reveals about receipts (nothing).

use openssl::bn::{BigNum, BigNumContext};

use super::*;

#[test]
fn client_blinds_issuer_signs_client_finalizes_landing_node_accepts() {
    let mut f = fixture();
    let receipt = obtain(&mut f.issuer, ALICE, &hd(), &f.hd_key, hd()).expect("issued");
    assert_eq!(f.issuer.issued(EPOCH, &ALICE), 1);
    // Over the wire to a landing node.
    let bytes = receipt.encode();
    assert_eq!(bytes.len(), receipt::HEADER_LEN + 256);
    let decoded = Receipt::decode(&bytes).expect("decodes");
    assert_eq!(decoded, receipt);
    let verified = f
        .verifier
        .verify_and_spend(NOW, &decoded)
        .expect("accepted");
    assert_eq!(verified.params(), hd());
    assert_eq!(verified.epoch(), EPOCH);
    assert_eq!(verified.key_id(), f.hd_key.key_id());
    assert_eq!(verified.expires_at(), EXPIRES);
    assert_eq!(f.verifier.spent_len(), 1);
}

#[test]
fn a_receipt_may_ask_less_than_its_tier() {
    let mut f = fixture();
    let modest = StreamParams {
        lifetime_secs: 600,
        bitrate: BitrateClass::Low,
        distribution_nodes: 1,
    };
    let receipt = obtain(&mut f.issuer, ALICE, &hd(), &f.hd_key, modest).expect("issued");
    let verified = f
        .verifier
        .verify_and_spend(NOW, &receipt)
        .expect("accepted");
    assert_eq!(verified.params(), modest);
    // The client refuses up front to blind parameters beyond the tier.
    assert!(matches!(
        ReceiptRequest::new(&f.sd_key, hd(), [0x1a; 32]),
        Err(ReceiptError::BeyondTier { .. })
    ));
}

#[test]
fn nothing_of_the_requester_or_the_issuance_is_in_the_receipt() {
    let mut f = fixture();
    let (request, blinded) = ReceiptRequest::new(&f.hd_key, hd(), [0x1a; 32]).expect("request");
    let blind_sig = f
        .issuer
        .issue(EPOCH, ALICE, &hd(), &hd(), &blinded)
        .expect("issued");
    let receipt = request.finalize(&blind_sig).expect("finalized");
    let bytes = receipt.encode();
    // The issuer's view is (ALICE, blinded, blind_sig). None of it shows up in the receipt:
    // random 256-byte strings share runs of 2–3 bytes by chance, so 8 is far beyond chance.
    for seen in [&ALICE.0[..], blinded.as_bytes(), blind_sig.as_bytes()] {
        assert!(longest_common_run(seen, &bytes) < 8);
        assert!(longest_common_run(seen, &receipt.signature) < 8);
        assert!(longest_common_run(seen, &receipt.spend_id.0) < 8);
    }
    assert_ne!(blinded.as_bytes(), &receipt.signature[..]);
}

#[test]
fn two_issuances_of_the_same_params_give_unrelated_receipts() {
    let mut f = fixture();
    let a = obtain(&mut f.issuer, ALICE, &hd(), &f.hd_key, hd()).expect("first");
    let b = obtain(&mut f.issuer, ALICE, &hd(), &f.hd_key, hd()).expect("second");
    assert_eq!((a.params, a.key_id, a.epoch), (b.params, b.key_id, b.epoch));
    assert_ne!(a.spend_id, b.spend_id);
    assert_ne!(a.prefix, b.prefix);
    assert!(longest_common_run(&a.signature, &b.signature) < 8);
    assert!(longest_common_run(&a.spend_id.0, &b.spend_id.0) < 8);
    // Both spend, independently.
    f.verifier.verify_and_spend(NOW, &a).expect("a");
    f.verifier.verify_and_spend(NOW, &b).expect("b");
}

/// Perfect blindness, shown with the issuer's own private key: for two issuances, each
/// blinded message is consistent with *either* final receipt (there is an `r` mapping one to
/// the other, and unblinding the issuer's answer with it yields that receipt's signature).
/// So even the issuer, keeping everything it saw, cannot tell which receipt came from which
/// request.
#[test]
fn the_issuers_view_is_consistent_with_every_pairing_of_requests_and_receipts() {
    let mut f = fixture();
    let mut views = Vec::new();
    let mut receipts = Vec::new();
    for _ in 0..2 {
        let (request, blinded) = ReceiptRequest::new(&f.hd_key, hd(), [0x1a; 32]).expect("request");
        let blind_sig = f
            .issuer
            .issue(EPOCH, ALICE, &hd(), &hd(), &blinded)
            .expect("issued");
        receipts.push(request.finalize(&blind_sig).expect("finalized"));
        views.push((blinded, blind_sig));
    }
    let rsa = openssl::rsa::Rsa::private_key_from_der(&test_key(0).to_der().expect("der"))
        .expect("the HD key");
    let (n, e, d) = (rsa.n(), rsa.e(), rsa.d());
    let mut ctx = BigNumContext::new().expect("ctx");
    let bn = |b: &[u8]| BigNum::from_slice(b).expect("bignum");
    for (blinded, blind_sig) in &views {
        for receipt in &receipts {
            let (z, zs, s) = (
                bn(blinded.as_bytes()),
                bn(blind_sig.as_bytes()),
                bn(&receipt.signature),
            );
            // m = s^e: the receipt's encoded message; r = (z · m⁻¹)^d.
            let mut m = BigNum::new().expect("bn");
            m.mod_exp(&s, e, n, &mut ctx).expect("s^e");
            let mut m_inv = BigNum::new().expect("bn");
            m_inv.mod_inverse(&m, n, &mut ctx).expect("m invertible");
            let mut re = BigNum::new().expect("bn");
            re.mod_mul(&z, &m_inv, n, &mut ctx).expect("z/m");
            let mut r = BigNum::new().expect("bn");
            r.mod_exp(&re, d, n, &mut ctx).expect("r");
            // Unblinding the issuer's answer with that r gives this receipt's signature.
            let mut r_inv = BigNum::new().expect("bn");
            r_inv.mod_inverse(&r, n, &mut ctx).expect("r invertible");
            let mut unblinded = BigNum::new().expect("bn");
            unblinded
                .mod_mul(&zs, &r_inv, n, &mut ctx)
                .expect("unblind");
            assert_eq!(unblinded, s);
        }
    }
}
