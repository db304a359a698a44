//! RFC 9474 Appendix A, RSABSSA-SHA384-PSS-Randomized: byte-for-byte known answers.

use std::collections::HashMap;

use super::hex;
use crate::blind_rsa::{self, emsa_pss_encode, BlindSignature, SALT_LEN};
use crate::{KeySize, ReceiptError, SigningKey};

const VECTOR: &str = include_str!("../../testdata/rfc9474-rsabssa-sha384-pss-randomized.txt");

fn vector() -> HashMap<&'static str, Vec<u8>> {
    VECTOR
        .lines()
        .filter(|l| !l.trim_start().starts_with('#') && !l.trim().is_empty())
        .map(|l| {
            let (k, v) = l.split_once('=').expect("name = hex");
            (k.trim(), hex(v))
        })
        .collect()
}

fn key(v: &HashMap<&str, Vec<u8>>) -> SigningKey {
    SigningKey::from_components(&v["n"], &v["e"], &v["d"], &v["p"], &v["q"]).expect("vector key")
}

#[test]
fn rfc9474_vector_blind_sign_finalize_byte_for_byte() {
    let v = vector();
    let sk = key(&v);
    let pk = sk.public_key();
    assert_eq!(pk.size(), KeySize::Rsa4096);
    assert_eq!(v["salt_len"], [SALT_LEN as u8]);
    // Prepare (Randomized): the prefix, then the message.
    assert_eq!(
        v["input_msg"],
        [&v["msg_prefix"][..], &v["msg"][..]].concat()
    );
    let salt: [u8; SALT_LEN] = v["salt"].as_slice().try_into().expect("48-byte salt");

    let (blinded, secret) =
        blind_rsa::blind_with(pk, &v["input_msg"], &salt, &v["inv"]).expect("blind");
    assert_eq!(blinded.as_bytes(), &v["blinded_msg"][..], "blinded_msg");

    let blind_sig = sk.blind_sign(&blinded).expect("blind_sign");
    assert_eq!(blind_sig.as_bytes(), &v["blind_sig"][..], "blind_sig");

    let sig = blind_rsa::finalize(pk, &secret, &blind_sig, &v["input_msg"]).expect("finalize");
    assert_eq!(sig, v["sig"], "sig");
}

#[test]
fn rfc9474_vector_signature_verifies_with_openssl_pss_and_only_over_the_prefixed_message() {
    let v = vector();
    let pk = key(&v).public_key().clone();
    pk.verify(&v["input_msg"], &v["sig"])
        .expect("RSA-PSS verification");
    assert!(matches!(
        pk.verify(&v["msg"], &v["sig"]),
        Err(ReceiptError::BadSignature { .. })
    ));
    let mut flipped = v["sig"].clone();
    flipped[100] ^= 1;
    assert!(pk.verify(&v["input_msg"], &flipped).is_err());
}

#[test]
fn rfc9474_vector_encoded_message_is_what_the_signature_opens_to() {
    // s^e mod n must be our EMSA-PSS encoding of the prefixed message with the vector's salt:
    // checks the encoder on its own, independent of blinding.
    let v = vector();
    let salt: [u8; SALT_LEN] = v["salt"].as_slice().try_into().expect("salt");
    let encoded = emsa_pss_encode(&v["input_msg"], 4095, &salt).expect("encode");
    let rsa = openssl::rsa::Rsa::from_public_components(
        openssl::bn::BigNum::from_slice(&v["n"]).expect("n"),
        openssl::bn::BigNum::from_slice(&v["e"]).expect("e"),
    )
    .expect("key");
    let mut opened = vec![0u8; 512];
    let len = rsa
        .public_decrypt(&v["sig"], &mut opened, openssl::rsa::Padding::NONE)
        .expect("raw public op");
    assert_eq!(&opened[..len], &encoded[..]);
}

#[test]
fn finalize_refuses_a_blind_signature_that_does_not_unblind_to_a_valid_signature() {
    let v = vector();
    let sk = key(&v);
    let salt: [u8; SALT_LEN] = v["salt"].as_slice().try_into().expect("salt");
    let (_, secret) =
        blind_rsa::blind_with(sk.public_key(), &v["input_msg"], &salt, &v["inv"]).expect("blind");
    let mut forged = v["blind_sig"].clone();
    forged[7] ^= 0x40;
    let err = blind_rsa::finalize(
        sk.public_key(),
        &secret,
        &BlindSignature::from_bytes(forged),
        &v["input_msg"],
    );
    assert!(matches!(err, Err(ReceiptError::BadSignature { .. })));
    let short = BlindSignature::from_bytes(vec![1; 511]);
    assert!(matches!(
        blind_rsa::finalize(sk.public_key(), &secret, &short, &v["input_msg"]),
        Err(ReceiptError::WrongLength {
            expected: 512,
            got: 511,
            ..
        })
    ));
}

#[test]
fn random_blinding_round_trips_at_every_key_size() {
    for size in [KeySize::Rsa2048, KeySize::Rsa3072] {
        let sk = SigningKey::generate(size).expect("key");
        let pk = sk.public_key();
        assert_eq!(pk.modulus_len(), size.modulus_len());
        let prepared = blind_rsa::prepare(b"a message").expect("prepare");
        assert_eq!(prepared.len(), 32 + 9);
        let (blinded, secret) = blind_rsa::blind(pk, &prepared).expect("blind");
        let blind_sig = sk.blind_sign(&blinded).expect("sign");
        let sig = blind_rsa::finalize(pk, &secret, &blind_sig, &prepared).expect("finalize");
        pk.verify(&prepared, &sig).expect("verifies");
        // Keys survive their DER encodings, ids included.
        let again = crate::PublicKey::from_der(pk.to_der()).expect("public DER");
        assert_eq!(again.key_id(), pk.key_id());
        let sk2 = SigningKey::from_der(&sk.to_der().expect("der")).expect("private DER");
        assert_eq!(sk2.public_key(), pk);
    }
}

#[test]
fn keys_of_other_sizes_or_exponents_are_refused() {
    let small = openssl::rsa::Rsa::generate(1024).expect("1024-bit key");
    let der = small.public_key_to_der_pkcs1().expect("der");
    assert!(matches!(
        crate::PublicKey::from_der(&der),
        Err(ReceiptError::UnsupportedKeySize { bits: 1024 })
    ));
    let e3 =
        openssl::rsa::Rsa::generate_with_e(2048, &openssl::bn::BigNum::from_u32(3).expect("3"))
            .expect("e = 3 key");
    let der = e3.public_key_to_der_pkcs1().expect("der");
    assert!(matches!(
        crate::PublicKey::from_der(&der),
        Err(ReceiptError::UnsupportedExponent)
    ));
    assert!(crate::PublicKey::from_der(b"not a key").is_err());
}
