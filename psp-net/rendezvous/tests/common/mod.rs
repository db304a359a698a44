//! Test support: a chain with real certificates, identities, a deterministic RNG, and helpers
//! that read the services' actions.

#![allow(dead_code)]

pub mod net;

use psp_cert::{CertRequest, CertificateAuthority};
use psp_dht::{RecordContent, RecordKind};
use psp_onion::crypto::{blake2_256_parts, Sr25519Keypair};
use psp_onion::registry::{IdentityKind, StaticRegistry};
use psp_rendezvous::crypto::AnnouncementSecret;
use psp_rendezvous::lookup::{self, Lookup};
use psp_rendezvous::presence::{self, Presence};
use psp_rendezvous::record::PresenceValue;
use psp_rendezvous::rendezvous::{self, Rendezvous};
use psp_rendezvous::wire::{
    ChannelLimits, Deframer, LookupMsg, OwnerSignedRecord, PresenceMsg, Register, RendezvousMsg,
};
use psp_rendezvous::{ChainView, StreamHandle};

pub const NOW: u64 = 1_700_000_000;
pub const GENESIS: [u8; 32] = [0x47; 32];
/// Certificates live an hour; records at most five minutes.
pub const CERT_LIFETIME: u64 = 3_600;
pub const RECORD_LIFETIME: u64 = 120;

/// A deterministic RNG (BLAKE2b of a seed and a counter): tests replay exactly. Not for
/// production, which passes `rand_core::OsRng`.
pub struct TestRng {
    seed: [u8; 32],
    counter: u64,
}

impl TestRng {
    pub fn new(seed: u8) -> Self {
        Self {
            seed: [seed; 32],
            counter: 0,
        }
    }
}

impl rand_core::RngCore for TestRng {
    fn next_u32(&mut self) -> u32 {
        let mut b = [0u8; 4];
        self.fill_bytes(&mut b);
        u32::from_le_bytes(b)
    }

    fn next_u64(&mut self) -> u64 {
        let mut b = [0u8; 8];
        self.fill_bytes(&mut b);
        u64::from_le_bytes(b)
    }

    fn fill_bytes(&mut self, dest: &mut [u8]) {
        for chunk in dest.chunks_mut(32) {
            let block = blake2_256_parts(&[&self.seed, &self.counter.to_be_bytes()]);
            self.counter += 1;
            chunk.copy_from_slice(&block[..chunk.len()]);
        }
    }

    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rand_core::Error> {
        self.fill_bytes(dest);
        Ok(())
    }
}

impl rand_core::CryptoRng for TestRng {}

/// A client identity: its keys and a certificate from the world's authority.
pub struct Client {
    pub key: Sr25519Keypair,
    pub announcement: AnnouncementSecret,
    pub certificate: Vec<u8>,
}

impl Client {
    pub fn id(&self) -> [u8; 32] {
        self.key.public()
    }
}

/// The chain as the tests see it: one elected authority, a static registry.
pub struct World {
    pub registry: StaticRegistry,
    pub authorities: Vec<[u8; 32]>,
    pub authority: CertificateAuthority,
    pub presence_node: Sr25519Keypair,
    pub rendezvous_node: Sr25519Keypair,
    pub rng: TestRng,
}

impl World {
    pub fn new() -> Self {
        let authority_key = Sr25519Keypair::from_seed(&[0xa0; 32]);
        let presence_node = Sr25519Keypair::from_seed(&[0xb0; 32]);
        let rendezvous_node = Sr25519Keypair::from_seed(&[0xc0; 32]);
        let mut registry = StaticRegistry::default();
        for node in [&authority_key, &presence_node, &rendezvous_node] {
            registry.insert(node.public(), IdentityKind::Node);
        }
        let authorities = vec![authority_key.public()];
        Self {
            registry,
            authorities,
            authority: CertificateAuthority::new(authority_key, GENESIS, CERT_LIFETIME, 1),
            presence_node,
            rendezvous_node,
            rng: TestRng::new(0x42),
        }
    }

    pub fn chain(&self) -> ChainView<'_> {
        ChainView {
            genesis: &GENESIS,
            authorities: &self.authorities,
            registry: &self.registry,
        }
    }

    /// Registers a client identity on chain and issues its certificate at `NOW`.
    pub fn client(&mut self, seed: u8) -> Client {
        let key = Sr25519Keypair::from_seed(&[seed; 32]);
        let announcement = AnnouncementSecret::from_bytes([seed.wrapping_add(100); 32]);
        self.registry.insert(key.public(), IdentityKind::Client);
        let request = CertRequest::new(&key, announcement.public(), self.authority.public(), NOW);
        let certificate = self
            .authority
            .issue(&request.encode(), NOW, &self.registry)
            .expect("certificate issued")
            .encode();
        Client {
            key,
            announcement,
            certificate,
        }
    }

    /// Presence record content for `client` at the world's presence node.
    pub fn presence_content(&self, client: &Client, seq: u64, now: u64) -> RecordContent {
        RecordContent {
            kind: RecordKind::Presence,
            owner: client.id(),
            topic: [1; 32],
            publisher: self.presence_node.public(),
            seq,
            issued_at: now,
            expires_at: now + RECORD_LIFETIME,
            value: PresenceValue {
                public: false,
                certificate: client.certificate.clone(),
            }
            .encode(),
        }
    }

    /// A `Register` frame, signed by the client.
    pub fn register(&self, client: &Client, limits: ChannelLimits) -> Vec<u8> {
        let record =
            OwnerSignedRecord::sign(self.presence_content(client, 1, NOW), &client.key).unwrap();
        PresenceMsg::Register(Register { record, limits }).encode()
    }

    pub fn presence(&self) -> Presence {
        Presence::new(
            self.presence_node.public(),
            presence::PresenceConfig::default(),
        )
    }
}

pub fn rendezvous_service() -> Rendezvous {
    Rendezvous::new(rendezvous::RendezvousConfig::default())
}

/// Everything the presence service asked for since the last drain.
pub fn drain_presence(p: &mut Presence) -> Vec<presence::Action> {
    std::iter::from_fn(|| p.poll_action()).collect()
}

/// Everything the rendezvous service asked for since the last drain.
pub fn drain_rendezvous(r: &mut Rendezvous) -> Vec<rendezvous::Action> {
    std::iter::from_fn(|| r.poll_action()).collect()
}

fn decode_frames<T>(bytes: &[u8], decode: impl Fn(&[u8]) -> T) -> Vec<T> {
    Deframer::default()
        .feed(bytes)
        .expect("whole frames")
        .iter()
        .map(|body| decode(body))
        .collect()
}

/// The presence messages sent to `stream`, in order.
pub fn presence_sent(actions: &[presence::Action], stream: StreamHandle) -> Vec<PresenceMsg> {
    actions
        .iter()
        .filter_map(|a| match a {
            presence::Action::Send { stream: s, bytes } if *s == stream => {
                Some(decode_frames(bytes, |b| PresenceMsg::decode(b).unwrap()))
            }
            _ => None,
        })
        .flatten()
        .collect()
}

/// Whether the presence service closed `stream`.
pub fn presence_closed(actions: &[presence::Action], stream: StreamHandle) -> bool {
    actions
        .iter()
        .any(|a| matches!(a, presence::Action::Close { stream: s } if *s == stream))
}

/// Whether the presence service tore down the circuit of `stream`.
pub fn presence_torn_down(actions: &[presence::Action], stream: StreamHandle) -> bool {
    actions
        .iter()
        .any(|a| matches!(a, presence::Action::Teardown { stream: s } if *s == stream))
}

/// The rendezvous messages sent to `stream`, in order.
pub fn rendezvous_sent(actions: &[rendezvous::Action], stream: StreamHandle) -> Vec<RendezvousMsg> {
    actions
        .iter()
        .filter_map(|a| match a {
            rendezvous::Action::Send { stream: s, bytes } if *s == stream => {
                Some(decode_frames(bytes, |b| RendezvousMsg::decode(b).unwrap()))
            }
            _ => None,
        })
        .flatten()
        .collect()
}

/// Whether the rendezvous service closed `stream`.
pub fn rendezvous_closed(actions: &[rendezvous::Action], stream: StreamHandle) -> bool {
    actions
        .iter()
        .any(|a| matches!(a, rendezvous::Action::Close { stream: s } if *s == stream))
}

/// Everything the lookup service asked for since the last drain.
pub fn drain_lookup(l: &mut Lookup) -> Vec<lookup::Action> {
    std::iter::from_fn(|| l.poll_action()).collect()
}

/// The lookup messages sent to `stream`, in order.
pub fn lookup_sent(actions: &[lookup::Action], stream: StreamHandle) -> Vec<LookupMsg> {
    actions
        .iter()
        .filter_map(|a| match a {
            lookup::Action::Send { stream: s, bytes } if *s == stream => {
                Some(decode_frames(bytes, |b| LookupMsg::decode(b).unwrap()))
            }
            _ => None,
        })
        .flatten()
        .collect()
}

/// Whether the lookup service closed `stream`.
pub fn lookup_closed(actions: &[lookup::Action], stream: StreamHandle) -> bool {
    actions
        .iter()
        .any(|a| matches!(a, lookup::Action::Close { stream: s } if *s == stream))
}
