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

/// Layer vectors computed independently by `psp-net/kat/layers.py` (Python `cryptography`:
/// AESGCM, AES-CTR for the fillers and masks, ChaCha20 for the client padding).
const KAT_FORWARD3: &str = "38f88009ca940628691c5a819cc433ebb217ab47915ade207de532cc1f2fc3908456de1e82086abb41bce81fb2e38ed2f28132ad7f25e1ba283c4a7c56b792d7ca3265975fd25bece32ad7cd372bf7120b16b09555806f3f353560c1e233075bd377f25e7a9e6b15e7d0992aaa9b2a33346a66595b1ce3e538057780a466146ce9ee049fed6aa4248b6a2f7e90cb18a79e065378df6eddd102689f49720490e178450124887fdafff71a80b10b23ffd7a20f3bc77d4bf444527b08fdefaf2e904433688ee255708dbc80ca35de7f83757c4f83f5e8eab29f7520f13a72eb661850265e607164bfa19b61cafd2ea46f64d780af197c62eb5d4f0803215c53117bd462d1075d335850468bb62e19b9004b646dafd5b7702502d5226490a3e47ac85f3b4191c8b79fccba951d269a40187f7161c52345c318a40388ce8326a4cf7519fe0ff3af8e742f336b9390976d9da1f0869ce6d6b3983c50f53735acdddc99c7d1ea3dca92b7da4a72ca4a817248b95ff157ef8bd202e21207f616e432490422f44e391144c9f50e068a23954aa0633450c20d91233ab964b6f28eef2db416b44c84099192d3a26b752d6250244e3b073d28dffe3892ee49df960b3014f4605c8a54c88d3b9d42b6ca2dee75ecaa5e4a4da026ca0c5c35758e5176a66f524dfdf0728e1b4524bb6c23ce741dba8a53a923ae4273aff22c2dc0fd";
const KAT_BACKWARD3: &str = "b6a9ed7e67854f3c860a40398539e58e4193f67d47ea158cc29b08e5d87e31bd592a685a0a318100732d8b003ab9d06ee45300d27f22f6ffef1d10339a059a422320897d5a963bd5cc6363321daae8999c8ebc11d14debd907434380ecea1b527f80b2f32aa1c2c9523aeb3ff5b5ee5d71c7ca2296fc0e26727dd471e8b1ba13861646c136852c1f25e4b65a0dcb786b9047a6fb24c06e900283d9ca3c64aab69c9efe72b7eae000fb615d49127265845ab2d019c674654b4ffac6354f029f00ec4d0f24b3cf1d90eba015aea111c0067ac3a39631eb5f8195aa00c2f6594816c929d5a59d4b2f96ce32830e83f92b6052a603ba71ff06d25f7197cb7134d20cd0452c51756cb861473c7c27d868c7a4807a217bfef5902a889db7ad8cf5135c426d5a1c40bb757ce43aab3e99b44e75dc4eee91ee225741e39f5b05b7eb675eff0c2a148a60d499c916d642e2972a1f46ceb8d7f4bd6d9f91c256503a9eca9a8f809aeb1a13243fec0d7118ff599a7a48a00981278462f662a6829f270cb388a824de17b2593e8fd281310c6121e319fb31358927b61d20bcb0863f09278b157df8050a320c798daf8981e4c1ee270ea750c7e572d1ec0f61b8031258062995f5f6e24b44c86ad8e768d3d10f6a0996645051ef10a0b794240c7822b8b74a59e335f700ed7046f5e0b87c861bfdbb8cdc4cc842f44f7076410a05";
/// The second cell (counter 1) of each circuit.
const KAT_FORWARD3_CTR1: &str = "5c1986f4ffd5d03e70a5f0cc677ef9a529a9d731b1f85749412f5335478100d3fe2457532c40de72b4c8402e04f73e8c6d6612fc124b2051aa69b222316f451129ee8dc46b32094c7ff2006baa7a963fc53d23aa85f787e283f90505a8cee39c88f5e5de8b74577f3e6dc116243f3e5256dd958419a0ea98259e26a209a79fcb4151085fa2c1d63b196c31937c439405629e0547788f3944bc5ecf31292278ad123c000035987f9b8c95beeb749ea697ce8ced994be17fcd584238831c5f7e45462bf56b523c8604278bd37248622f5a7b091b9b5f17900ba7275a9279bc5f9a1305e44462a5e5ab31047b5109005fe26522d5d164108b24a59d6fcc2825f58870da0d163a29b24579a4a2a0173702ee8aa86b1133ac02c393c61dfc53263ebb1367223c37c6127492c91339a9af9f1757538085623662eb3d5f0de7b7837e60def4eaa36f9574f99aeb71be1362f9110c138ea845e54d9f82be61827741e8f12c47e59f20a38922b0a1342b2aeae408840b31ccf1fcf662498a282895df65750ed00cb8a05d0f7c12ef50b4f6cc5334b21b403aa3fc4d6a85ed2fc69282bf8133c415eabbf1f781a62738dc0035ac4d8a809382673145cb912875b3fc3be3edb2b28454e3239c25265fbbd50ae8c3389831803491ffe51f664447067d07939c4e2308c02720936ad3fc5cf1bbde56daac1b2dcd1bb3f7b942ca6b";
const KAT_BACKWARD3_CTR1: &str = "db0d1efeca915079f4d1e5dacec4981c35bcde1bdd190a5f7992fd269160a6e7cd1e38fe542a1ce6454d64c9aa1231cf0ad45717228d6b4c7180bf533351a4726cd8af03b6def47a88a55ccf1f00e05b3b3bdb53dcbeff8daf0beea32c9bab41c7e6b7b3ddf4f73c5e20e00064b9fe57165ed6bae7dbd00acbc5ac60ca15825c0ed1ca11746a9f99c89fd458cc60c75f7466faf181f89eda43b56ec2c2bf4a608100fff46df8e3918f5fcb3adac72fce6bae83080e849bac25b8f401affb7d703d20b47f7bab5828feff4d3dd5623b1d5b7c05d78fcdcdf7bec4e921bef03f313d1b2f6e818a8d6146dc3bf0be5bc945ee4b1fbeaebaf2f161ce29ce4ed80d0fa5a2b20ce5c1ef453b17435da41e97107b08fdf95896d9c066daae50cc885a856d49f3ba7c803950316fac6e24265c817264c8690405552d7addc1b36bcd0cd1bde666473a1a6ecced3e29ada84a0759674d038ed2726c8bd7786aafd13da63705c214a152c29f7c9300aae6497f9ef6ec7eeca825e3664b655dce5a7c9ff1c4c3b7d2bb331711ebdcb7f997eb353c73d55ecb8bbafff03219924dde2bf5eeaaef2ee98836a0758ad5c3baddac58d9302d76d9084994176432bbfccc1cb761139099092948c0a0956b4dd7ede53ae216adf332b4372927d7a5387dd2a024096918403e535cbf6863dcc24ba9a7481400195707f155f3b04d3da5d3";

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
    let mut relays = kat_hops();
    for (msg, kat) in [
        (&b"hello onion"[..], KAT_FORWARD3),
        (b"again", KAT_FORWARD3_CTR1),
    ] {
        let cell = client_wrap_forward(&mut client, msg, &mut pad).unwrap();
        assert_eq!(h(&cell), kat);
        // And the relays peel it back to the message.
        let mut body = cell;
        for r in relays.iter_mut() {
            r.relay_open_forward(&mut body).unwrap();
        }
        assert_eq!(&body[..msg.len()], msg);
    }
}

#[test]
fn backward_layers_known_answer() {
    let mut relays = kat_hops();
    let mut client = kat_hops();
    for (msg, kat) in [
        (&b"pong"[..], KAT_BACKWARD3),
        (b"pong again", KAT_BACKWARD3_CTR1),
    ] {
        let mut body = [0u8; LAYER_LEN];
        body[..msg.len()].copy_from_slice(msg);
        relays[2].relay_seal_backward(&mut body).unwrap();
        relays[1].mask_backward(&mut body).unwrap();
        relays[0].mask_backward(&mut body).unwrap();
        assert_eq!(h(&body), kat);
        let plain = client_unwrap_backward(&mut client, &mut body).unwrap();
        assert_eq!(&plain[..msg.len()], msg);
        assert!(plain[msg.len()..].iter().all(|&b| b == 0));
    }
}

/// The GCM specification's test case 14 (AES-256, zero key, zero IV, one zero block): the
/// layers' primitive is the standard one. (`RawAead`'s nonce for counter 0 is the zero IV.)
#[test]
fn raw_aead_is_standard_aes_256_gcm() {
    let mut block = [0u8; 16];
    let tag = RawAead::aes_256_gcm(&[0; 32]).seal(0, &mut block);
    assert_eq!(h(&block), "cea7403d4d606b6e074ec5d3baf39d18");
    assert_eq!(h(&tag), "d0d1c8a799996bf0265b98b5d48ab919");
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

/// A layer opens exactly what it sealed; any flipped bit, in the tag or the ciphertext, fails
/// and leaves no plaintext behind; so does the wrong counter. The mask is an involution that
/// changes every cell.
#[test]
fn layer_round_trips_and_refuses_any_flipped_bit() {
    use proptest::prelude::*;
    let cfg = proptest::test_runner::Config::with_cases(64);
    proptest!(cfg, |(key in any::<[u8; 32]>(), ctr in 0u64..u64::MAX, domain in 1u8..4,
                     seed in any::<u64>())| {
        let mut plain = [0u8; LAYER_LEN];
        let mut s = seed;
        for b in plain[..LAYER_PLAINTEXT_LEN].iter_mut() {
            s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            *b = (s >> 56) as u8;
        }
        let layer = LayerKey::new(&key);
        type Op = fn(&LayerKey, Nonce, &mut [u8; LAYER_LEN]) -> Result<(), CryptoError>;
        let both: [(Op, Op); 2] = [
            (LayerKey::seal_forward, LayerKey::open_forward),
            (LayerKey::seal_backward, LayerKey::open_backward),
        ];
        for (seal, open) in both {
            let mut body = plain;
            seal(&layer, nonce(domain, ctr), &mut body).unwrap();
            let sealed = body;
            open(&layer, nonce(domain, ctr), &mut body).unwrap();
            prop_assert_eq!(&body[..LAYER_PLAINTEXT_LEN], &plain[..LAYER_PLAINTEXT_LEN]);
            let bit = (seed % (LAYER_LEN as u64 * 8)) as usize;
            let mut tampered = sealed;
            tampered[bit / 8] ^= 1 << (bit % 8);
            prop_assert_eq!(open(&layer, nonce(domain, ctr), &mut tampered), Err(CryptoError::Integrity));
            prop_assert!(tampered[..LAYER_PLAINTEXT_LEN].iter().all(|&b| b == 0));
            let mut replayed = sealed;
            prop_assert_eq!(open(&layer, nonce(domain, ctr + 1), &mut replayed), Err(CryptoError::Integrity));
        }
        // Masking twice under the same counter is the identity.
        let mut hop = HopCrypto::new(HopKeys { forward: [0; 32], backward: key });
        hop.backward_counter = ctr;
        let mut masked = plain;
        hop.mask_backward(&mut masked).unwrap();
        prop_assert_ne!(masked, plain);
        hop.backward_counter = ctr;
        hop.mask_backward(&mut masked).unwrap();
        prop_assert_eq!(masked, plain);
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
