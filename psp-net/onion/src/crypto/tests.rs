//! Known-answer and behaviour tests of the crypto layer.

use super::*;

fn h(b: &[u8]) -> String {
    hex::encode(b)
}

fn keys_pair(seed: u8) -> (HopCrypto, HopCrypto) {
    let keys = HopKeys {
        forward: [seed; 32],
        backward: [seed.wrapping_add(1); 32],
    };
    (HopCrypto::new(keys.clone()), HopCrypto::new(keys))
}

/// Fixed keys and ephemerals → fixed bytes. The vectors were computed independently by
/// `psp-net/kat/ntor.py` (Python `cryptography` X25519 + stdlib HMAC), not by this crate.
#[test]
fn ntor_known_answer() {
    let id = NodeId([0x11; 32]);
    let b = OnionSecret::from_bytes([0x22; 32]);
    let (state, cmsg) = ntor_client_start(id, b.public(), [0x33; 32]);
    let (smsg, skeys) = ntor_server(&id, &b, &cmsg, [0x44; 32]).unwrap();
    let ckeys = ntor_client_finish(state, &smsg).unwrap();
    assert_eq!(ckeys, skeys);
    println!("B={}", h(&b.public().0));
    println!("X={}", h(&cmsg.client_pk));
    println!("Y={}", h(&smsg.server_pk));
    println!("AUTH={}", h(&smsg.auth));
    println!("KF={}", h(&ckeys.forward));
    println!("KB={}", h(&ckeys.backward));
    assert_eq!(h(&b.public().0), KAT_B);
    assert_eq!(h(&cmsg.client_pk), KAT_X);
    assert_eq!(h(&smsg.server_pk), KAT_Y);
    assert_eq!(h(&smsg.auth), KAT_AUTH);
    assert_eq!(h(&ckeys.forward), KAT_KF);
    assert_eq!(h(&ckeys.backward), KAT_KB);
}

const KAT_B: &str = "0faa684ed28867b97f4a6a2dee5df8ce974e76b7018e3f22a1c4cf2678570f20";
const KAT_X: &str = "7b0d47d93427f8311160781c7c733fd89f88970aef490d8aa0ee19a4cb8a1b14";
const KAT_Y: &str = "ff2ee45601ec1b67310c7790404585ae697331eee1c1f8cf2419731c1fff3e6b";
const KAT_AUTH: &str = "b51d845fc25a4ed7ab632ba60ee4eb526fccbbfa27692a23aaf65d084ea4d929";
const KAT_KF: &str = "04de163915eb7439c23e11f8c5ba4f5973d91470b9d04e834b5a7ae88a84a321";
const KAT_KB: &str = "7dfe4a4f9356b72daed446db1b1cef33ebfa767fdc36e06d02d713fc4a6f8de1";

/// Layer vectors computed independently by `psp-net/kat/layers.py` (Python `cryptography`).
const KAT_FORWARD3: &str = "06f054a8b770b9d6831e5b1578daeda0b8a7c84eae272c2f39877580f303a5cc2ed3c7abff68a57a5d8117faa65198f7269bb6f248d6411283392887cbf43388f48eec225b849bba9be082835f074721a6cf8294ab8f58c1025e1e747b3752bfd47a5bc8fb432a95274062ade7a68fc7dc80fe515e3642d6de319349bbc7b973d98e15a7cec55a57dac2e1a5367aa23907cc21c2be8259685f6d9abafe5d1544f67f58c6ee61a3fce5e90e6652e4f085a97b4a6d5f3718a6c446c3ea84b480b882034d26172f7e90d13115db79043d19010ad60007f2cf590239bca47c73dbcddf7ecd7dcc7b593b601bfcdb41f17c8b058aa630fb8635310c618cd2c1d83d780dae5a667f833f4ccd309079e2b3526b3754d455682cb13863e1c527f5d539b9729b660de5d4d24821a6e8a5be03ce7c7c5f37e554f8bc6a3705b9c72d8f0c4717930eba4ba93d83cfc6b245cedf810de8a1720141702f9d7770b786bc5c4b733d9e718db1f39d7c61b372f152c04bafaea1e887edf9f92f1e6b4cf9f284ceaff1ea321fd36f9fbc85bb0b3ccea185d0384801cb2dd5f5705e74e7b202d9fa96b4ede3f71fa4139ed634d9ce0fdc5dad859ae4a27724122b4b4cc8fd6f1f68af012f3cb01aaf617ca9f340b03008f5aaae2acc8e5247e625426a4f6e7d121585d840ad02a718d554a5ee7191ad517a771039a012c9f0c30103ee37";
const KAT_BACKWARD3: &str = "5b19d26615b1da30cbb10288d257a2ff543405be0f30498b3506300501da591156992c584b70bb87befc016ac8b1f661389328252ede529ee7c4fae9ff6df1f90563320f57b9d17ba82048748239dda747d7c3fe05af790eaf69918b0fc4aa8d30f722da9950b2bbb4d2b3e93bc3fcfd0cbcd5d2b9a1abe7c9900093f49b525126a63628d61297defab12d7ad55a995639cc7aaa7f20f55bb849e8eb14db7b8c77abb58c87aef0bf38b4c16318ad9c9371956b9ece7bf3ac7045ab6b4b4203db25d2f5cd2a744862dd2e4e38e7ec26684a3a656d1559275672c9524888041eec89bdbb26d05409c10b115781ca0142fd649925ca529d5688b3ef22c8569e4bf55215068c3c10101b4be5a8259e21c5a866e0086441842dbe885e116c00cbb339a7b1146e14707d92bb64e01cd28b8f5705f8da863dabf226c4c86707196098464be39baeffb013ba7af2a84685c0626ecec757602b0b210c23fada4ed68c0f8ad9444b440f9cb69a73449abed888c3658cc169292150656bbf9dbd40dc02e363357f1a82699f7afd8b3cb8db6e492301ee1355f69468f4102841fd3dbcd201e80ca0e430b2fada0d18eed5c7e4ea36ade16ca8f632664caa5163d28a3c75cc23226b744645db248b756b3d1fc17d9a1a75590579050a235876f4a7c7eda2542ab9e3f5f0da80421a8d89382fc326fb2c40d823f04c93c0ff29a61f";

fn kat_hops() -> Vec<HopCrypto> {
    (0..3u8)
        .map(|j| {
            HopCrypto::new(HopKeys {
                forward: [0xA1 + j; 32],
                backward: [0xB1 + j; 32],
            })
        })
        .collect()
}

#[test]
fn forward_layers_known_answer() {
    let mut client = kat_hops();
    let mut pad = PaddingStream::new([0x55; 32]);
    let cell = client_wrap_forward(&mut client, b"hello onion", &mut pad).unwrap();
    assert_eq!(h(&cell), KAT_FORWARD3);
    // And the relays peel it back to the message.
    let mut relays = kat_hops();
    let mut body = cell;
    for r in relays.iter_mut() {
        r.relay_open_forward(&mut body).unwrap();
    }
    assert_eq!(&body[..11], b"hello onion");
}

#[test]
fn backward_layers_known_answer() {
    let mut relays = kat_hops();
    let mut body = [0u8; LAYER_LEN];
    body[..4].copy_from_slice(b"pong");
    relays[2].relay_seal_backward(&mut body).unwrap();
    relays[1].mask_backward(&mut body).unwrap();
    relays[0].mask_backward(&mut body).unwrap();
    assert_eq!(h(&body), KAT_BACKWARD3);
    let mut client = kat_hops();
    let plain = client_unwrap_backward(&mut client, &mut body).unwrap();
    assert_eq!(&plain[..4], b"pong");
}

/// RFC 8439 §2.8.2: the AEAD primitive is the standard one.
#[test]
fn raw_aead_matches_rfc8439_tag() {
    let key: Vec<u8> = (0x80u8..=0x9f).collect();
    let key: [u8; 32] = key.try_into().unwrap();
    let aead = ChaCha20Poly1305::new((&key).into());
    let nonce = hex::decode("070000004041424344454647").unwrap();
    let aad = hex::decode("50515253c0c1c2c3c4c5c6c7").unwrap();
    let mut msg = b"Ladies and Gentlemen of the class of '99: If I could offer you only one tip for the future, sunscreen would be it.".to_vec();
    let tag = aead
        .encrypt_in_place_detached(Nonce::from_slice(&nonce), &aad, &mut msg)
        .unwrap();
    assert_eq!(h(&tag), "1ae10b594f09e26a7e902ecbd0600691");
}

#[test]
fn ntor_rejects_wrong_node_and_key() {
    let id = NodeId([1; 32]);
    let b = OnionSecret::from_bytes([2; 32]);
    let other = OnionSecret::from_bytes([3; 32]);
    let (_, m) = ntor_client_start(NodeId([9; 32]), b.public(), [4; 32]);
    assert_eq!(
        ntor_server(&id, &b, &m, [5; 32]).unwrap_err(),
        CryptoError::WrongNode
    );
    let (_, m) = ntor_client_start(id, other.public(), [4; 32]);
    assert_eq!(
        ntor_server(&id, &b, &m, [5; 32]).unwrap_err(),
        CryptoError::WrongNode
    );
}

#[test]
fn ntor_detects_impostor_and_tampered_reply() {
    let id = NodeId([1; 32]);
    let b = OnionSecret::from_bytes([2; 32]);
    let impostor = OnionSecret::from_bytes([3; 32]);
    // The impostor answers a handshake meant for b, pretending to hold b's key.
    let (state, m) = ntor_client_start(id, b.public(), [4; 32]);
    let forged = NtorClientMsg {
        onion_key: impostor.public(),
        ..m
    };
    let (reply, _) = ntor_server(&id, &impostor, &forged, [5; 32]).unwrap();
    assert_eq!(
        ntor_client_finish(state, &reply).unwrap_err(),
        CryptoError::AuthFailed
    );
    // A genuine reply with one bit flipped.
    let (state, m) = ntor_client_start(id, b.public(), [4; 32]);
    let (mut reply, _) = ntor_server(&id, &b, &m, [5; 32]).unwrap();
    reply.auth[7] ^= 1;
    assert_eq!(
        ntor_client_finish(state, &reply).unwrap_err(),
        CryptoError::AuthFailed
    );
}

#[test]
fn ntor_rejects_low_order_point() {
    let id = NodeId([1; 32]);
    let b = OnionSecret::from_bytes([2; 32]);
    let m = NtorClientMsg {
        node_id: id,
        onion_key: b.public(),
        client_pk: [0; 32],
    };
    assert_eq!(
        ntor_server(&id, &b, &m, [5; 32]).unwrap_err(),
        CryptoError::NonContributory
    );
}

#[test]
fn every_depth_round_trips_and_any_flipped_bit_is_caught_at_the_next_hop() {
    for k in 1..=8usize {
        let mk = || (0..k as u8).map(|j| keys_pair(j * 2).0).collect::<Vec<_>>();
        let (mut client, mut relays) = (mk(), mk());
        let mut pad = PaddingStream::new([7; 32]);
        let msg = vec![0x5a; forward_capacity(k)];
        for round in 0..3 {
            let mut body = client_wrap_forward(&mut client, &msg, &mut pad).unwrap();
            for r in relays.iter_mut() {
                r.relay_open_forward(&mut body).unwrap();
            }
            assert_eq!(&body[..msg.len()], &msg[..], "depth {k} round {round}");
        }
        // Flip one bit as hop 1 forwards: hop 2 (or the last hop) must reject it.
        let mut body = client_wrap_forward(&mut client, &msg, &mut pad).unwrap();
        relays[0].relay_open_forward(&mut body).unwrap();
        if k > 1 {
            body[100] ^= 0x01;
            assert_eq!(
                relays[1].relay_open_forward(&mut body),
                Err(CryptoError::Integrity)
            );
        }
    }
    let (mut client, mut relay) = keys_pair(1);
    let mut pad = PaddingStream::new([7; 32]);
    let one = core::slice::from_mut(&mut client);
    let mut body = client_wrap_forward(one, b"x", &mut pad).unwrap();
    body[LAYER_LEN - 1] ^= 0x80;
    assert_eq!(
        relay.relay_open_forward(&mut body),
        Err(CryptoError::Integrity)
    );
}

#[test]
fn replayed_or_reordered_cells_fail() {
    let (mut client, mut relay) = keys_pair(3);
    let mut pad = PaddingStream::new([7; 32]);
    let hops = core::slice::from_mut(&mut client);
    let first = client_wrap_forward(hops, b"a", &mut pad).unwrap();
    let second = client_wrap_forward(hops, b"b", &mut pad).unwrap();
    let mut b = first;
    relay.relay_open_forward(&mut b).unwrap();
    let mut replay = first;
    assert_eq!(
        relay.relay_open_forward(&mut replay),
        Err(CryptoError::Integrity)
    );
    let (_, mut relay) = keys_pair(3);
    let mut skipped = second;
    assert_eq!(
        relay.relay_open_forward(&mut skipped),
        Err(CryptoError::Integrity)
    );
    // Backward: a replayed cell fails at the client.
    let (mut client, mut relay) = keys_pair(4);
    let mut body = [0u8; LAYER_LEN];
    relay.relay_seal_backward(&mut body).unwrap();
    let copy = body;
    let hops = core::slice::from_mut(&mut client);
    assert!(client_unwrap_backward(hops, &mut body).is_ok());
    let mut again = copy;
    assert!(client_unwrap_backward(hops, &mut again).is_err());
}

#[test]
fn oversized_message_and_empty_path_are_errors() {
    let mut pad = PaddingStream::new([7; 32]);
    assert_eq!(
        client_wrap_forward(&mut [], b"x", &mut pad).unwrap_err(),
        CryptoError::NoHops
    );
    let (mut c, _) = keys_pair(1);
    let hops = core::slice::from_mut(&mut c);
    let big = vec![0; LAYER_PLAINTEXT_LEN + 1];
    assert!(matches!(
        client_wrap_forward(hops, &big, &mut pad),
        Err(CryptoError::TooLong { .. })
    ));
}

/// The layer code composes RFC 8439 from ChaCha20 and Poly1305 itself (for speed); it must give
/// byte for byte what the `chacha20poly1305` crate gives for the same key, nonce and 491 bytes,
/// and the mask what plain ChaCha20 gives. (The vectors above, from `psp-net/kat/layers.py`,
/// did not change when this replaced the crate's AEAD.)
#[test]
fn layer_aead_matches_chacha20poly1305_crate() {
    use proptest::prelude::*;
    let cfg = proptest::test_runner::Config::with_cases(64);
    proptest!(cfg, |(key in any::<[u8; 32]>(), ctr in any::<u64>(), domain in 1u8..4,
                     seed in any::<u64>())| {
        let mut plain = [0u8; LAYER_LEN];
        let mut s = seed;
        for b in plain[..LAYER_PLAINTEXT_LEN].iter_mut() {
            s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            *b = (s >> 56) as u8;
        }
        let n = nonce(domain, ctr);
        let mut expected = plain;
        let tag = ChaCha20Poly1305::new((&key).into())
            .encrypt_in_place_detached(Nonce::from_slice(&n), b"", &mut expected[..LAYER_PLAINTEXT_LEN])
            .unwrap();
        let mut body = plain;
        seal_layer(&key, &n, &mut body);
        prop_assert_eq!(&body[..TAG_LEN], &tag[..]);
        prop_assert_eq!(&body[TAG_LEN..], &expected[..LAYER_PLAINTEXT_LEN]);
        open_layer(&key, &n, &mut body).unwrap();
        prop_assert_eq!(&body[..LAYER_PLAINTEXT_LEN], &plain[..LAYER_PLAINTEXT_LEN]);
        // Any flipped bit, in the tag or the ciphertext, fails and leaves the body as it was.
        let mut sealed = plain;
        seal_layer(&key, &n, &mut sealed);
        let bit = (seed % (LAYER_LEN as u64 * 8)) as usize;
        sealed[bit / 8] ^= 1 << (bit % 8);
        let tampered = sealed;
        prop_assert_eq!(open_layer(&key, &n, &mut sealed), Err(CryptoError::Integrity));
        prop_assert_eq!(sealed, tampered);
        // The mask is ChaCha20 from block 0 over the whole body.
        let mut masked = plain;
        let mut hop = HopCrypto::new(HopKeys { forward: [0; 32], backward: key });
        hop.backward_counter = ctr;
        hop.mask_backward(&mut masked).unwrap();
        let mut expected = plain;
        ChaCha20::new((&key).into(), (&nonce(DOMAIN_BACKWARD_MASK, ctr)).into())
            .apply_keystream(&mut expected);
        prop_assert_eq!(masked, expected);
    });
}

#[test]
fn too_many_hops_is_an_error() {
    let mut pad = PaddingStream::new([7; 32]);
    let mut hops: Vec<_> = (0..=MAX_LAYERS as u8).map(|j| keys_pair(j).0).collect();
    assert_eq!(
        client_wrap_forward(&mut hops, b"", &mut pad).unwrap_err(),
        CryptoError::TooManyHops {
            hops: MAX_LAYERS + 1,
            max: MAX_LAYERS
        }
    );
    // The deepest circuit that fits still round-trips.
    let mut client: Vec<_> = (0..MAX_LAYERS as u8).map(|j| keys_pair(j).0).collect();
    let mut relays: Vec<_> = (0..MAX_LAYERS as u8).map(|j| keys_pair(j).1).collect();
    let msg = vec![0xa5; forward_capacity(MAX_LAYERS)];
    let mut body = client_wrap_forward(&mut client, &msg, &mut pad).unwrap();
    for r in relays.iter_mut() {
        r.relay_open_forward(&mut body).unwrap();
    }
    assert_eq!(&body[..msg.len()], &msg[..]);
}

#[test]
fn dh_pair_matches_two_montgomery_ladders() {
    use proptest::prelude::*;
    let cfg = proptest::test_runner::Config::with_cases(256);
    // Random u-coordinates: about half lie on the twist and take the ladder path.
    proptest!(cfg, |(a in any::<[u8; 32]>(), b in any::<[u8; 32]>(), public in any::<[u8; 32]>())| {
        let (a, b) = (StaticSecret::from(a), StaticSecret::from(b));
        let expected = (dh(&a, &public), dh(&b, &public));
        let got = dh_pair(&a, &b, &public);
        match (expected, got) {
            ((Ok(ea), Ok(eb)), Ok((ga, gb))) => {
                prop_assert_eq!(ea, ga);
                prop_assert_eq!(eb, gb);
            }
            (_, Err(e)) => prop_assert_eq!(e, CryptoError::NonContributory),
            (_, Ok(_)) => prop_assert!(false, "dh_pair accepted what dh refused"),
        }
    });
    // Real public keys (always on the curve) take the Edwards path.
    for seed in 0u8..32 {
        let peer = PublicKey::from(&StaticSecret::from([seed; 32])).to_bytes();
        let (a, b) = (
            StaticSecret::from([seed ^ 0x55; 32]),
            StaticSecret::from([7; 32]),
        );
        assert_eq!(
            dh_pair(&a, &b, &peer).unwrap(),
            (dh(&a, &peer).unwrap(), dh(&b, &peer).unwrap())
        );
    }
    // Small-order points are refused on both paths.
    let mut one = [0u8; 32];
    one[0] = 1;
    for low in [[0u8; 32], one] {
        let s = StaticSecret::from([9; 32]);
        assert_eq!(dh(&s, &low).unwrap_err(), CryptoError::NonContributory);
        assert_eq!(
            dh_pair(&s, &s, &low).unwrap_err(),
            CryptoError::NonContributory
        );
    }
}
