//! A small world for the tests: a chain, three elected oracles with token keys, two relays,
//! and consumers that get tickets and tokens the way the real flow does.

#![allow(dead_code)]

use std::sync::OnceLock;

use psp_onion::crypto::{NodeId, Sr25519Keypair};
use psp_receipts::{KeySize, SigningKey, SubscriptionId};
use psp_usage::puzzle::{self, Challenge, Solution};
use psp_usage::report::{ClientHalf, ClientMeter, RelayHalf, RelayMeter};
use psp_usage::ticket::{Admission, GateConfig, IssuerConfig, TicketGate, TicketIssuer};
use psp_usage::token::{ConsumerToken, TokenIssuer, TokenKey, TokenRequest};
use psp_usage::{Collector, CollectorConfig, EpochInfo};

pub const GENESIS: [u8; 32] = [0x9e; 32];
pub const BLOCK: [u8; 32] = [0xb1; 32];
pub const STREAM: [u8; 32] = [0x5d; 32];
pub const CHALLENGE: [u8; 32] = [0xc4; 32];
/// The epoch the reports are for.
pub const EPOCH: u32 = 7;
/// Unix seconds at the start of the tests' story.
pub const NOW: u64 = 1_800_000_000;
/// Low difficulty so debug-build tests solve in microseconds.
pub const TEST_DIFFICULTY: u8 = 8;
pub const TOKENS: u32 = 4;

pub fn keypair(tag: u8, i: u8) -> Sr25519Keypair {
    let mut seed = [tag; 32];
    seed[31] = i;
    Sr25519Keypair::from_seed(&seed)
}

pub fn oracle_key(i: u8) -> Sr25519Keypair {
    keypair(0x0a, i)
}

pub fn relay_key(i: u8) -> Sr25519Keypair {
    keypair(0x7e, i)
}

pub fn session_key(i: u32) -> Sr25519Keypair {
    let mut seed = [0x5e; 32];
    seed[28..].copy_from_slice(&i.to_be_bytes());
    Sr25519Keypair::from_seed(&seed)
}

pub fn node(key: &Sr25519Keypair) -> NodeId {
    NodeId(key.public())
}

pub fn elected() -> Vec<NodeId> {
    (0..3).map(|i| node(&oracle_key(i))).collect()
}

/// RSA keys are slow to make: one per oracle for the whole test binary.
pub fn token_signing_key(i: u8) -> &'static SigningKey {
    static KEYS: OnceLock<Vec<SigningKey>> = OnceLock::new();
    let keys = KEYS.get_or_init(|| {
        (0..3)
            .map(|_| SigningKey::generate(KeySize::Rsa2048).expect("RSA key"))
            .collect()
    });
    &keys[usize::from(i)]
}

/// A copy of oracle `i`'s token key (`SigningKey` is not `Clone`: through its DER).
pub fn token_signing_key_copy(i: u8) -> SigningKey {
    let der = token_signing_key(i).to_der().expect("DER");
    SigningKey::from_der(&der).expect("parse DER")
}

pub fn token_key(i: u8) -> TokenKey {
    TokenKey {
        public: token_signing_key(i).public_key().clone(),
        epoch: u64::from(EPOCH),
        oracle: node(&oracle_key(i)),
    }
}

pub fn token_issuer(i: u8) -> TokenIssuer {
    let mut issuer = TokenIssuer::new(node(&oracle_key(i)), TOKENS, 1_000);
    issuer
        .install_key(u64::from(EPOCH), token_signing_key_copy(i))
        .expect("install token key");
    issuer
}

pub fn epoch_info(epoch: u32) -> EpochInfo {
    EpochInfo {
        epoch,
        elected: elected(),
        token_keys: if epoch == EPOCH {
            (0..3).map(token_key).collect()
        } else {
            Vec::new()
        },
    }
}

pub fn ticket_issuer(i: u8) -> TicketIssuer {
    let config = IssuerConfig {
        difficulty: TEST_DIFFICULTY,
        ..IssuerConfig::default()
    };
    let mut issuer = TicketIssuer::new(GENESIS, oracle_key(i), config).expect("issuer");
    issuer.note_finalized(BLOCK);
    issuer
}

pub fn solve(oracle: &NodeId, key: &Sr25519Keypair, block: [u8; 32]) -> Solution {
    let challenge = Challenge {
        genesis: GENESIS,
        block,
        oracle: *oracle,
        session_key: key.public(),
    };
    let nonce = puzzle::solve(&challenge, TEST_DIFFICULTY, 0, 1 << 20)
        .expect("difficulty")
        .expect("a nonce within 2^20 attempts");
    Solution {
        block,
        session_key: key.public(),
        nonce,
    }
}

pub fn gate(relay: &Sr25519Keypair) -> TicketGate {
    let mut gate = TicketGate::new(GENESIS, node(relay), GateConfig::default());
    gate.set_elected(&elected()).expect("elected");
    gate
}

/// A consumer's token for its session in `EPOCH`, from oracle 0's issuer.
pub fn token_for(
    issuer: &mut TokenIssuer,
    subscription: u8,
    key: &Sr25519Keypair,
) -> ConsumerToken {
    let session = psp_primitives::rewards::session_id_of(&key.public());
    let (request, blinded) = TokenRequest::new(&token_key(0), session).expect("blind");
    let signature = issuer
        .issue(
            u64::from(EPOCH),
            SubscriptionId([subscription; 32]),
            &blinded,
        )
        .expect("issue");
    request.finalize(&signature).expect("finalize")
}

/// One honest session end to end: ticket, admission, both meters; returns both halves.
pub struct Session {
    pub relay: RelayHalf,
    pub client: ClientHalf,
}

pub fn honest_session(
    tokens: &mut TokenIssuer,
    relay: &Sr25519Keypair,
    consumer: u32,
    relay_bytes: u64,
    client_bytes: u64,
) -> Session {
    let key = session_key(consumer);
    let mut tickets = ticket_issuer(0);
    let ticket = tickets
        .issue(NOW, &solve(&tickets.oracle(), &key, BLOCK))
        .expect("ticket");
    let admission = Admission::new(ticket, &key, &node(relay), &STREAM, &CHALLENGE);
    let admitted = gate(relay)
        .admit(NOW, &STREAM, &CHALLENGE, &admission)
        .expect("admitted");
    let mut relay_meter = RelayMeter::new(GENESIS, relay.clone(), 16);
    relay_meter.admit(&admitted).expect("metered");
    let mut client_meter = ClientMeter::new(GENESIS, key.clone(), node(relay));
    let start_ms = NOW * 1000;
    relay_meter
        .record(&admitted.session(), relay_bytes, start_ms)
        .expect("record");
    relay_meter
        .record(&admitted.session(), 0, start_ms + 10_000)
        .expect("record");
    client_meter.record(client_bytes, start_ms);
    client_meter.record(0, start_ms + 10_000);
    let mut relay_halves = relay_meter.end_epoch(EPOCH);
    let token = token_for(tokens, (consumer % 200) as u8, &key);
    let client = client_meter
        .end_epoch(EPOCH, token)
        .expect("token matches")
        .expect("traffic");
    Session {
        relay: relay_halves.pop().expect("one half"),
        client,
    }
}

pub fn collector() -> Collector {
    let mut c = Collector::new(GENESIS, CollectorConfig::default());
    c.open_epoch(epoch_info(EPOCH)).expect("open");
    c
}
