//! SFrame: RFC 9605 Appendix C known answers for suite 0x0004, and refusals.

use hkdf::Hkdf;
use psp_media::sframe::{
    derive_key_salt, Context, Header, KeyUsage, MAX_FRAME_LEN, MAX_HEADER_LEN, MAX_KEYS,
    MAX_METADATA_LEN, TAG_LEN,
};
use psp_media::MediaError;
use sha2::Sha256;

fn h(s: &str) -> Vec<u8> {
    hex::decode(s.split_whitespace().collect::<String>()).unwrap()
}

/// RFC 9605 Appendix C.1: all 289 header vectors, encoded and decoded byte for byte.
#[test]
fn rfc9605_c1_header_vectors() {
    let text = include_str!("vectors/rfc9605-c1-header.txt");
    let mut count = 0;
    for line in text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
    {
        let f: Vec<&str> = line.split(' ').collect();
        let kid = u64::from_str_radix(f[0], 16).unwrap();
        let ctr = u64::from_str_radix(f[1], 16).unwrap();
        let encoded = h(f[2]);
        let header = Header { kid, ctr };
        assert_eq!(
            header.to_bytes(),
            encoded,
            "encode kid {kid:#x} ctr {ctr:#x}"
        );
        assert_eq!(header.encoded_len(), encoded.len());
        assert_eq!(Header::decode(&encoded), Ok((header, encoded.len())));
        // Decoding reads the header only, whatever follows.
        let mut longer = encoded.clone();
        longer.extend_from_slice(&[0xff; 5]);
        assert_eq!(Header::decode(&longer), Ok((header, encoded.len())));
        // Every strict prefix is truncated.
        for cut in 0..encoded.len() {
            assert!(matches!(
                Header::decode(&encoded[..cut]),
                Err(MediaError::Truncated { .. })
            ));
        }
        count += 1;
    }
    assert_eq!(count, 289);
}

// RFC 9605 Appendix C.3, the AES_128_GCM_SHA256_128 (0x0004) case.
const BASE_KEY: &str = "000102030405060708090a0b0c0d0e0f";
const KID: u64 = 0x123;
const CTR: u64 = 0x4567;
const SFRAME_KEY_LABEL: &str = "534672616d6520312e3020536563726574206b65792000000000000001230004";
const SFRAME_SALT_LABEL: &str =
    "534672616d6520312e30205365637265742073616c742000000000000001230004";
const SFRAME_SECRET: &str = "d926952ca8b7ec4a95941d1ada3a5203ceff8cceee34f574d23909eb314c40c0";
const SFRAME_KEY: &str = "d34f547f4ca4f9a7447006fe7fcbf768";
const SFRAME_SALT: &str = "75234edefe07819026751816";
const METADATA: &str = "4945544620534672616d65205747";
const NONCE: &str = "75234edefe07819026755d71";
const AAD: &str = "99012345674945544620534672616d65205747";
const PT: &str = "64726166742d696574662d736672616d652d656e63";
const CT: &str =
    "9901234567b7412c2513a1b66dbb48841bbaf17f598751176ad847681a69c6d0b091c07018ce4adb34eb";

#[test]
fn rfc9605_c3_key_derivation_0x0004() {
    let (prk, _) = Hkdf::<Sha256>::extract(Some(&[]), &h(BASE_KEY));
    assert_eq!(prk.to_vec(), h(SFRAME_SECRET));
    // The labels as the RFC lists them: "SFrame 1.0 Secret key " ‖ KID (8, BE) ‖ suite (2, BE).
    let mut key_label = b"SFrame 1.0 Secret key ".to_vec();
    key_label.extend_from_slice(&KID.to_be_bytes());
    key_label.extend_from_slice(&0x0004u16.to_be_bytes());
    assert_eq!(key_label, h(SFRAME_KEY_LABEL));
    let mut salt_label = b"SFrame 1.0 Secret salt ".to_vec();
    salt_label.extend_from_slice(&KID.to_be_bytes());
    salt_label.extend_from_slice(&0x0004u16.to_be_bytes());
    assert_eq!(salt_label, h(SFRAME_SALT_LABEL));

    let (key, salt) = derive_key_salt(KID, &h(BASE_KEY));
    assert_eq!(key.to_vec(), h(SFRAME_KEY));
    assert_eq!(salt.to_vec(), h(SFRAME_SALT));
    // nonce = salt XOR CTR (12 bytes, big-endian).
    let mut nonce = salt;
    for (n, c) in nonce[4..].iter_mut().zip(CTR.to_be_bytes()) {
        *n ^= c;
    }
    assert_eq!(nonce.to_vec(), h(NONCE));
    // AAD = header ‖ metadata.
    let mut aad = Header { kid: KID, ctr: CTR }.to_bytes();
    aad.extend_from_slice(&h(METADATA));
    assert_eq!(aad, h(AAD));
}

#[test]
fn rfc9605_c3_encrypt_decrypt_0x0004() {
    let mut sender = Context::new();
    sender
        .add_key(KID, &h(BASE_KEY), KeyUsage::Encrypt)
        .unwrap();
    let ct = sender.encrypt(KID, CTR, &h(METADATA), &h(PT)).unwrap();
    assert_eq!(hex::encode(&ct), CT);

    let mut receiver = Context::new();
    receiver
        .add_key(KID, &h(BASE_KEY), KeyUsage::Decrypt)
        .unwrap();
    let out = receiver.decrypt(&h(CT), &h(METADATA)).unwrap();
    assert_eq!(out.header, Header { kid: KID, ctr: CTR });
    assert_eq!(out.plaintext, h(PT));
}

fn pair() -> (Context, Context) {
    let mut s = Context::new();
    s.add_key(9, &[1; 32], KeyUsage::Encrypt).unwrap();
    let mut r = Context::new();
    r.add_key(9, &[1; 32], KeyUsage::Decrypt).unwrap();
    (s, r)
}

#[test]
fn every_tampered_byte_is_refused() {
    let (mut s, r) = pair();
    let frame = s.encrypt(9, 300, b"meta", b"a media frame").unwrap();
    for i in 0..frame.len() {
        for bit in [0x01u8, 0x80] {
            let mut bad = frame.clone();
            bad[i] ^= bit;
            // A flipped header byte may change the KID, the CTR, or the header's shape: all
            // refused one way or another, never accepted.
            assert!(r.decrypt(&bad, b"meta").is_err(), "byte {i} bit {bit:#x}");
        }
    }
    assert_eq!(
        r.decrypt(&frame, b"other metadata"),
        Err(MediaError::Authentication { kid: 9, ctr: 300 })
    );
    assert_eq!(
        r.decrypt(&frame, b"meta").unwrap().plaintext,
        b"a media frame"
    );
}

#[test]
fn truncated_frames_are_refused() {
    let (mut s, r) = pair();
    let frame = s.encrypt(9, 8, b"", b"").unwrap();
    // config byte, KID 9 (1 byte), CTR 8 (1 byte), tag.
    assert_eq!(frame.len(), 3 + TAG_LEN);
    for cut in 0..frame.len() {
        let err = r.decrypt(&frame[..cut], b"").unwrap_err();
        assert!(
            matches!(
                err,
                MediaError::Truncated { .. } | MediaError::TooShort { .. }
            ),
            "cut {cut}: {err:?}"
        );
    }
    assert!(r.decrypt(&frame, b"").unwrap().plaintext.is_empty());
}

#[test]
fn unknown_kid_and_wrong_usage_are_refused() {
    let (mut s, r) = pair();
    let mut other = Context::new();
    other.add_key(10, &[1; 32], KeyUsage::Encrypt).unwrap();
    let frame = other.encrypt(10, 0, b"", b"x").unwrap();
    assert_eq!(
        r.decrypt(&frame, b""),
        Err(MediaError::UnknownKid { kid: 10 })
    );
    assert_eq!(
        s.encrypt(11, 0, b"", b"x"),
        Err(MediaError::UnknownKid { kid: 11 })
    );
    let own = s.encrypt(9, 0, b"", b"x").unwrap();
    assert_eq!(
        s.decrypt(&own, b""),
        Err(MediaError::WrongKeyUsage {
            kid: 9,
            usage: KeyUsage::Encrypt
        })
    );
    let mut r = r;
    assert_eq!(
        r.encrypt(9, 0, b"", b"x"),
        Err(MediaError::WrongKeyUsage {
            kid: 9,
            usage: KeyUsage::Decrypt
        })
    );
    // Same KID, different base key: does not authenticate.
    let mut wrong = Context::new();
    wrong.add_key(9, &[2; 32], KeyUsage::Decrypt).unwrap();
    assert_eq!(
        wrong.decrypt(&own, b""),
        Err(MediaError::Authentication { kid: 9, ctr: 0 })
    );
}

#[test]
fn counters_never_repeat() {
    let (mut s, _) = pair();
    s.encrypt(9, 5, b"", b"x").unwrap();
    assert_eq!(
        s.encrypt(9, 5, b"", b"x"),
        Err(MediaError::CounterReused {
            kid: 9,
            ctr: 5,
            next: 6
        })
    );
    assert!(s.encrypt(9, 3, b"", b"x").is_err());
    s.encrypt(9, 6, b"", b"x").unwrap();
    s.encrypt(9, u64::MAX, b"", b"x").unwrap();
    assert_eq!(
        s.encrypt(9, u64::MAX, b"", b"x"),
        Err(MediaError::KeyExhausted { kid: 9 })
    );
}

#[test]
fn sizes_are_bounded() {
    let (mut s, r) = pair();
    // Header of KID 9 / CTR 1: 2 bytes; the largest plaintext fills MAX_FRAME_LEN exactly.
    let max_pt = MAX_FRAME_LEN - 2 - TAG_LEN;
    let frame = s.encrypt(9, 1, b"", &vec![0; max_pt]).unwrap();
    assert_eq!(frame.len(), MAX_FRAME_LEN);
    assert_eq!(r.decrypt(&frame, b"").unwrap().plaintext.len(), max_pt);
    assert!(matches!(
        s.encrypt(9, 2, b"", &vec![0; max_pt + 1]),
        Err(MediaError::TooLarge { .. })
    ));
    let mut big = frame.clone();
    big.push(0);
    assert!(matches!(
        r.decrypt(&big, b""),
        Err(MediaError::TooLarge { .. })
    ));
    let meta = vec![0; MAX_METADATA_LEN + 1];
    assert!(matches!(
        s.encrypt(9, 3, &meta, b"x"),
        Err(MediaError::TooLarge { .. })
    ));
    assert!(matches!(
        r.decrypt(&frame, &meta),
        Err(MediaError::TooLarge { .. })
    ));
    assert_eq!(MAX_HEADER_LEN, 17);
}

#[test]
fn key_store_is_bounded() {
    let mut c = Context::new();
    assert_eq!(
        c.add_key(1, &[0; 15], KeyUsage::Decrypt),
        Err(MediaError::BaseKeyLength { len: 15 })
    );
    assert_eq!(
        c.add_key(1, &[0; 65], KeyUsage::Decrypt),
        Err(MediaError::BaseKeyLength { len: 65 })
    );
    for kid in 0..MAX_KEYS as u64 {
        c.add_key(kid, &[0; 16], KeyUsage::Decrypt).unwrap();
    }
    assert_eq!(
        c.add_key(0, &[0; 16], KeyUsage::Decrypt),
        Err(MediaError::DuplicateKid { kid: 0 })
    );
    assert_eq!(
        c.add_key(99, &[0; 16], KeyUsage::Decrypt),
        Err(MediaError::TooManyKeys { max: MAX_KEYS })
    );
    assert!(c.remove_key(3));
    assert!(!c.remove_key(3));
    c.add_key(99, &[0; 16], KeyUsage::Decrypt).unwrap();
    assert_eq!(c.len(), MAX_KEYS);
}
