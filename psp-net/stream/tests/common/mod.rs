//! Test support: a chain with real certificates, oracles with RSA tier keys, a landing node,
//! distribution nodes, and helpers that run the machines against each other in memory.

#![allow(dead_code)]

use std::collections::HashMap;
use std::sync::OnceLock;

use psp_cert::{CertRequest, CertificateAuthority};
use psp_onion::crypto::Sr25519Keypair;
use psp_onion::registry::{IdentityKind, StaticRegistry};
use psp_receipts::{
    BitrateClass, Issuer, IssuerConfig, KeySize, OracleId, PublishedKey, Receipt, SigningKey,
    StreamParams, Verifier, VerifierConfig,
};
use psp_rendezvous::{ChainView, StreamHandle};
use psp_stream::client::{CreatorEvent, ReceiptClient, ReceiptEvent, StreamCreator, Transmit};
use psp_stream::landing::{Landing, LandingConfig};
use psp_stream::oracle::{Oracle, OracleConfig, OracleContext, SubscriptionView};
use psp_stream::wire::FormatFlags;
use psp_stream::{Action, StreamError};

pub const NOW: u64 = 1_700_000_000;
pub const EPOCH: u64 = 42;
pub const KEY_EXPIRES: u64 = NOW + 7_200;
pub const GENESIS: [u8; 32] = [0x47; 32];
pub const CERT_LIFETIME: u64 = 3_600;
pub const TIMEOUT: u64 = 30;

/// The HD tier: an hour, 8 Mbit/s, four distribution nodes.
pub fn hd() -> StreamParams {
    StreamParams {
        lifetime_secs: 3_600,
        bitrate: BitrateClass::High,
        distribution_nodes: 4,
    }
}

/// The SD tier: half an hour, 2.5 Mbit/s, two distribution nodes.
pub fn sd() -> StreamParams {
    StreamParams {
        lifetime_secs: 1_800,
        bitrate: BitrateClass::Standard,
        distribution_nodes: 2,
    }
}

/// Index of the RSA key oracle A issues consumer tokens under ([`rsa_key`]).
pub const TOKEN_RSA: usize = 4;

/// 2048-bit RSA keys, generated once per test binary: 0..4 the oracles' tier keys,
/// [`TOKEN_RSA`] oracle A's consumer-token key.
pub fn rsa_key(i: usize) -> SigningKey {
    static KEYS: OnceLock<Vec<Vec<u8>>> = OnceLock::new();
    let ders = KEYS.get_or_init(|| {
        (0..5)
            .map(|_| {
                SigningKey::generate(KeySize::Rsa2048)
                    .and_then(|k| k.to_der())
                    .expect("key generation")
            })
            .collect()
    });
    SigningKey::from_der(&ders[i]).expect("cached key parses")
}

pub fn published(key: &SigningKey, tier: StreamParams) -> PublishedKey {
    PublishedKey {
        public: key.public_key().clone(),
        epoch: EPOCH,
        tier,
        expires_at: KEY_EXPIRES,
    }
}

/// Subscriptions on chain: identity → tier ceiling (any epoch).
#[derive(Default)]
pub struct Subscriptions(pub HashMap<[u8; 32], StreamParams>);

impl SubscriptionView for Subscriptions {
    fn allowance(&self, identity: &[u8; 32], _epoch: u64) -> Option<StreamParams> {
        self.0.get(identity).copied()
    }
}

/// A client identity and its certificate.
pub struct Client {
    pub key: Sr25519Keypair,
    pub certificate: Vec<u8>,
}

impl Client {
    pub fn id(&self) -> [u8; 32] {
        self.key.public()
    }
}

/// One oracle's keys: node key and the two tier keys (RSA keys 0/1 for A, 2/3 for B).
pub struct OracleKeys {
    pub node: Sr25519Keypair,
    pub hd: PublishedKey,
    pub sd: PublishedKey,
    first_rsa: usize,
}

pub struct World {
    pub registry: StaticRegistry,
    pub authorities: Vec<[u8; 32]>,
    pub authority: CertificateAuthority,
    pub subscriptions: Subscriptions,
    pub oracle_a: OracleKeys,
    pub oracle_b: OracleKeys,
    pub landing: Sr25519Keypair,
    pub distribution: Vec<Sr25519Keypair>,
    pub alice: Client,
}

fn oracle_keys(seed: u8, first_rsa: usize) -> OracleKeys {
    OracleKeys {
        node: Sr25519Keypair::from_seed(&[seed; 32]),
        hd: published(&rsa_key(first_rsa), hd()),
        sd: published(&rsa_key(first_rsa + 1), sd()),
        first_rsa,
    }
}

impl World {
    pub fn new() -> Self {
        let authority_key = Sr25519Keypair::from_seed(&[0xa0; 32]);
        let oracle_a = oracle_keys(0xa1, 0);
        let oracle_b = oracle_keys(0xa2, 2);
        let landing = Sr25519Keypair::from_seed(&[0xb0; 32]);
        let distribution: Vec<_> = (0..6u8)
            .map(|i| Sr25519Keypair::from_seed(&[0xd0 + i; 32]))
            .collect();
        let mut registry = StaticRegistry::default();
        for node in [&authority_key, &oracle_a.node, &oracle_b.node, &landing]
            .into_iter()
            .chain(distribution.iter())
        {
            registry.insert(node.public(), IdentityKind::Node);
        }
        let mut authority = CertificateAuthority::new(authority_key, GENESIS, CERT_LIFETIME, 1);
        let alice_key = Sr25519Keypair::from_seed(&[0x11; 32]);
        registry.insert(alice_key.public(), IdentityKind::Client);
        let alice = Client {
            certificate: certificate(&mut authority, &alice_key, &registry),
            key: alice_key,
        };
        let mut subscriptions = Subscriptions::default();
        subscriptions.0.insert(alice.id(), hd());
        Self {
            authorities: vec![authority.public()],
            registry,
            authority,
            subscriptions,
            oracle_a,
            oracle_b,
            landing,
            distribution,
            alice,
        }
    }

    pub fn chain(&self) -> ChainView<'_> {
        ChainView {
            genesis: &GENESIS,
            authorities: &self.authorities,
            registry: &self.registry,
        }
    }

    pub fn ctx(&self) -> OracleContext<'_> {
        OracleContext {
            chain: self.chain(),
            epoch: EPOCH,
            subscriptions: &self.subscriptions,
        }
    }

    /// A registered client with a certificate (and no subscription).
    pub fn client(&mut self, seed: u8) -> Client {
        let key = Sr25519Keypair::from_seed(&[seed; 32]);
        self.registry.insert(key.public(), IdentityKind::Client);
        Client {
            certificate: certificate(&mut self.authority, &key, &self.registry),
            key,
        }
    }

    pub fn oracle(&self, keys: &OracleKeys, config: IssuerConfig) -> Oracle {
        let mut issuer = Issuer::new(OracleId(keys.node.public()), config);
        issuer
            .install_key(EPOCH, hd(), rsa_key(keys.first_rsa))
            .expect("HD key");
        issuer
            .install_key(EPOCH, sd(), rsa_key(keys.first_rsa + 1))
            .expect("SD key");
        Oracle::new(keys.node.public(), issuer, OracleConfig::default())
    }

    /// A landing node that knows both oracles' keys.
    pub fn landing_node(&self) -> Landing {
        self.landing_node_with_key(self.landing.clone())
    }

    /// A landing node with `key` (another node than the one receipts are drawn for).
    pub fn landing_node_with_key(&self, key: Sr25519Keypair) -> Landing {
        let mut verifier = Verifier::new(VerifierConfig::default());
        for k in [
            &self.oracle_a.hd,
            &self.oracle_a.sd,
            &self.oracle_b.hd,
            &self.oracle_b.sd,
        ] {
            verifier.insert_key(k.clone()).expect("published key");
        }
        Landing::new(key, verifier, LandingConfig::default())
    }

    pub fn dist(&self, n: usize) -> Vec<[u8; 32]> {
        self.distribution[..n].iter().map(|k| k.public()).collect()
    }
}

pub fn certificate(
    authority: &mut CertificateAuthority,
    key: &Sr25519Keypair,
    registry: &StaticRegistry,
) -> Vec<u8> {
    let request = CertRequest::new(key, [0x55; 32], authority.public(), NOW).encode();
    authority
        .issue(&request, NOW, registry)
        .expect("certificate")
        .encode()
}

pub fn drain(actions: impl FnMut() -> Option<Action>) -> Vec<Action> {
    std::iter::from_fn(actions).collect()
}

/// The bytes the service sent on `stream`.
pub fn sent(actions: &[Action], stream: StreamHandle) -> Vec<u8> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Send { stream: s, bytes } if *s == stream => Some(bytes.clone()),
            _ => None,
        })
        .flatten()
        .collect()
}

pub fn closed(actions: &[Action], stream: StreamHandle) -> bool {
    actions
        .iter()
        .any(|a| matches!(a, Action::Close { stream: s } if *s == stream))
}

/// Alice's receipt client asking oracle A for the HD tier on `stream` at [`NOW`], and the
/// request to write.
pub fn alice_hd_client(world: &World, stream: StreamHandle) -> (ReceiptClient, Transmit) {
    ReceiptClient::new(
        stream,
        &world.alice.key,
        &world.alice.certificate,
        &world.oracle_a.node.public(),
        &world.oracle_a.hd,
        hd(),
        &world.landing.public(),
        NOW,
        TIMEOUT,
    )
    .expect("request")
}

/// Runs a receipt client against an oracle: (oracle's result, client's event).
pub fn request_receipt(
    world: &World,
    oracle: &mut Oracle,
    oracle_id: [u8; 32],
    client: &Client,
    key: &PublishedKey,
    params: StreamParams,
    now: u64,
) -> (Result<(), StreamError>, ReceiptEvent) {
    let stream = StreamHandle(1);
    let (mut machine, request) = ReceiptClient::new(
        stream,
        &client.key,
        &client.certificate,
        &oracle_id,
        key,
        params,
        &world.landing.public(),
        now,
        TIMEOUT,
    )
    .expect("request built");
    let result = oracle.handle_data(now, stream, &request.bytes, &world.ctx());
    let actions = drain(|| oracle.poll_action());
    assert!(
        closed(&actions, stream),
        "the oracle closes after answering"
    );
    let mut out = machine.handle_data(now, &sent(&actions, stream));
    assert_eq!(out.close, vec![stream]);
    assert_eq!(out.events.len(), 1);
    (result, out.events.remove(0))
}

pub fn issued(event: ReceiptEvent) -> Receipt {
    match event {
        ReceiptEvent::Issued(receipt) => receipt,
        ReceiptEvent::Failed(e) => panic!("receipt refused: {e}"),
        other => panic!("unexpected event {other:?}"),
    }
}

/// A receipt for the HD tier from oracle A, issued to Alice at [`NOW`].
pub fn hd_receipt(world: &World) -> Receipt {
    let mut oracle = world.oracle(&world.oracle_a, IssuerConfig::default());
    let (result, event) = request_receipt(
        world,
        &mut oracle,
        world.oracle_a.node.public(),
        &world.alice,
        &world.oracle_a.hd,
        hd(),
        NOW,
    );
    result.expect("issued");
    issued(event)
}

/// What a stream creation produced.
pub struct Creation {
    pub result: Result<(), StreamError>,
    pub event: CreatorEvent,
    pub actions: Vec<Action>,
    /// Every byte the landing node received.
    pub received: Vec<u8>,
}

/// Runs a stream creator against a landing node.
pub fn create_stream(
    world: &World,
    landing: &mut Landing,
    receipt: &Receipt,
    nodes: Vec<[u8; 32]>,
    format: FormatFlags,
    now: u64,
) -> Creation {
    let stream = StreamHandle(7);
    let (mut machine, request) = StreamCreator::new(
        stream,
        world.landing.public(),
        receipt,
        nodes,
        format,
        now,
        TIMEOUT,
    )
    .expect("creation built");
    let result = landing.handle_data(now, stream, &request.bytes, &world.registry);
    let actions = drain(|| landing.poll_action());
    assert!(
        closed(&actions, stream),
        "the landing node closes after answering"
    );
    let mut out = machine.handle_data(now, &sent(&actions, stream), &world.registry);
    assert_eq!(out.events.len(), 1);
    Creation {
        result,
        event: out.events.remove(0),
        actions,
        received: request.bytes,
    }
}

/// Length of the longest run of bytes `a` and `b` have in common.
pub fn longest_common_run(a: &[u8], b: &[u8]) -> usize {
    let mut best = 0;
    let mut prev = vec![0usize; b.len() + 1];
    for x in a {
        let mut cur = vec![0usize; b.len() + 1];
        for (j, y) in b.iter().enumerate() {
            if x == y {
                cur[j + 1] = prev[j] + 1;
                best = best.max(cur[j + 1]);
            }
        }
        prev = cur;
    }
    best
}
