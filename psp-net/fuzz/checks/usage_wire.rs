//! The wire of `psp-usage` (bandwidth rewards), as peers reach it: any bytes into the decoders
//! of `puzzle::Solution`, `ticket::SignedTicket`, `ticket::Admission`, `token::ConsumerToken`
//! and `report::Half`, and what decodes into the services that take it from the wire: the
//! oracle's `TicketIssuer` (solutions), a distribution node's `TicketGate` (admissions), the
//! oracle's `Collector` (halves). psp-usage has no `fuzz_decode_all`; this module is it.
//!
//! Shared by the `usage_wire` fuzz target and `tests/fuzz_regressions.rs` (`#[path]` module).
//!
//! Checked:
//! * no decoder panics; what decodes re-encodes to exactly the input;
//! * a solution is issued a ticket exactly when its puzzle hash has enough leading zero bits
//!   (at difficulty 4, so the fuzzer reaches both sides), and only once;
//! * an admission, as received, is refused with nothing remembered, or admitted once;
//!   rebuilt from its fuzzed window with a real oracle ticket and session-key proof, it is
//!   admitted exactly when the window is well-formed;
//! * a half, as received, leaves nothing in the collector when refused (a client half is
//!   always refused: no token key is installed); a relay half rebuilt from its fuzzed epoch,
//!   usage and ticket window through the real path (ticket, gate, `RelayMeter`) is accepted
//!   exactly when the ticket covers the traffic, then refused as a duplicate, and refused
//!   outright with a flipped signature byte.

use std::sync::OnceLock;

use psp_net::crypto::{NodeId, Sr25519Keypair};
use psp_usage::puzzle::{leading_zero_bits, Challenge, Solution};
use psp_usage::report::{Half, RelayHalf, RelayMeter};
use psp_usage::ticket::{
    Admission, GateConfig, IssuerConfig, SessionTicket, SignedTicket, TicketGate, TicketIssuer,
    MAX_TICKET_SECS,
};
use psp_usage::token::ConsumerToken;
use psp_usage::wire::UsageMsg;
use psp_usage::{Accepted, Collector, CollectorConfig, EpochInfo, UsageError};

/// The chain, stream and challenge of psp-usage's own tests, so their encodings decode here
/// as they did there.
const GENESIS: [u8; 32] = [0x9e; 32];
const STREAM: [u8; 32] = [0x5d; 32];
const CHALLENGE: [u8; 32] = [0xc4; 32];
const NOW: u64 = 1_800_000_000;
const DIFFICULTY: u8 = 4;

struct Keys {
    oracle: Sr25519Keypair,
    relay: Sr25519Keypair,
    session: Sr25519Keypair,
}

fn keys() -> &'static Keys {
    static KEYS: OnceLock<Keys> = OnceLock::new();
    KEYS.get_or_init(|| {
        // psp-usage's tests' oracle 0 and relay 1.
        let mut oracle = [0x0a; 32];
        oracle[31] = 0;
        let mut relay = [0x7e; 32];
        relay[31] = 1;
        Keys {
            oracle: Sr25519Keypair::from_seed(&oracle),
            relay: Sr25519Keypair::from_seed(&relay),
            session: Sr25519Keypair::from_seed(&[0x5e; 32]),
        }
    })
}

fn node(key: &Sr25519Keypair) -> NodeId {
    NodeId(key.public())
}

fn session_id(key: &Sr25519Keypair) -> [u8; 32] {
    Challenge {
        genesis: GENESIS,
        block: [0; 32],
        oracle: NodeId([0; 32]),
        session_key: key.public(),
    }
    .session()
}

fn gate() -> TicketGate {
    let mut gate = TicketGate::new(GENESIS, node(&keys().relay), GateConfig::default());
    gate.set_elected(&[node(&keys().oracle)])
        .expect("one oracle");
    gate
}

fn collector(epoch: u32) -> Collector {
    let mut c = Collector::new(GENESIS, CollectorConfig::default());
    c.open_epoch(EpochInfo {
        epoch,
        elected: vec![node(&keys().oracle)],
        token_keys: Vec::new(),
    })
    .expect("an epoch with one oracle");
    c
}

/// Whether the gate accepts a ticket window (see `TicketGate::admit`).
fn window_ok(t: &SessionTicket) -> bool {
    t.valid_until > t.valid_from && t.valid_until - t.valid_from <= MAX_TICKET_SECS
}

/// A real ticket for the harness's session key with the window of `t`, admitted by the gate at
/// its start; `None` if the gate refuses the window.
fn admitted_ticket(t: &SessionTicket) -> Option<psp_usage::AdmittedSession> {
    let k = keys();
    let ticket = SessionTicket {
        genesis: GENESIS,
        session: session_id(&k.session),
        oracle: node(&k.oracle),
        valid_from: t.valid_from,
        valid_until: t.valid_until,
    }
    .sign(&k.oracle);
    let admission = Admission::new(ticket, &k.session, &node(&k.relay), &STREAM, &CHALLENGE);
    let mut gate = gate();
    let result = gate.admit(t.valid_from, &STREAM, &CHALLENGE, &admission);
    assert_eq!(
        result.is_ok(),
        window_ok(t),
        "a real admission and the window check disagree: {result:?}"
    );
    let admitted = result.ok()?;
    assert_eq!(gate.admitted_len(), 1);
    assert!(matches!(
        gate.admit(t.valid_from, &STREAM, &CHALLENGE, &admission),
        Err(UsageError::Replayed { .. })
    ));
    Some(admitted)
}

fn solution(data: &[u8]) {
    let Ok(s) = Solution::decode(data) else {
        return;
    };
    assert_eq!(s.encode(), data, "solution decoder is canonical");
    let k = keys();
    let config = IssuerConfig {
        difficulty: DIFFICULTY,
        ..IssuerConfig::default()
    };
    let mut issuer = TicketIssuer::new(GENESIS, k.oracle.clone(), config).expect("issuer");
    assert!(
        matches!(issuer.issue(NOW, &s), Err(UsageError::StaleBlock { .. })),
        "a solution on a block not finalized is issued a ticket"
    );
    issuer.note_finalized(s.block);
    let challenge = Challenge {
        genesis: GENESIS,
        block: s.block,
        oracle: issuer.oracle(),
        session_key: s.session_key,
    };
    let solved = leading_zero_bits(&challenge.hash(s.nonce)) >= u32::from(DIFFICULTY);
    let result = issuer.issue(NOW, &s);
    assert_eq!(result.is_ok(), solved, "{result:?}");
    if let Ok(ticket) = result {
        assert!(ticket.signature_valid());
        assert_eq!(ticket.ticket.session, challenge.session());
        assert_eq!(SignedTicket::decode(&ticket.encode()), Ok(ticket));
        assert!(matches!(
            issuer.issue(NOW, &s),
            Err(UsageError::AlreadyIssued { .. })
        ));
    }
    assert_eq!(issuer.issued_len(), usize::from(solved));
}

fn admission(data: &[u8]) -> bool {
    let Ok(a) = Admission::decode(data) else {
        return false;
    };
    assert_eq!(a.encode(), data, "admission decoder is canonical");
    let t = &a.ticket.ticket;
    let mut gate = gate();
    if gate.admit(t.valid_from, &STREAM, &CHALLENGE, &a).is_ok() {
        assert_eq!(gate.admitted_len(), 1);
    } else {
        assert_eq!(gate.admitted_len(), 0, "a refused admission is remembered");
    }
    admitted_ticket(t).is_some()
}

fn half(data: &[u8]) -> bool {
    let Ok(h) = Half::decode(data) else {
        return false;
    };
    assert_eq!(h.encode(), data, "half decoder is canonical");
    let mut c = collector(h.epoch());
    let result = c.receive(&h);
    if matches!(h, Half::Client(_)) {
        assert!(
            result.is_err(),
            "a client half without a token key is accepted"
        );
    }
    assert_eq!(
        c.stats(h.epoch()).pending,
        usize::from(result.is_ok()),
        "{result:?}"
    );
    match &h {
        Half::Relay(r) => relay_half(r),
        Half::Client(_) => false,
    }
}

/// The relay half rebuilt through the real path from the fuzzed half's fields.
fn relay_half(fuzzed: &RelayHalf) -> bool {
    let Some(admitted) = admitted_ticket(&fuzzed.ticket.ticket) else {
        return false;
    };
    let usage = fuzzed.report.usage;
    let mut meter = RelayMeter::new(GENESIS, keys().relay.clone(), 4);
    meter.admit(&admitted).expect("room");
    let session = admitted.session();
    meter
        .record(&session, usage.bytes, usage.start_ms)
        .expect("metered");
    meter
        .record(&session, 0, usage.end_ms.saturating_sub(1))
        .expect("metered");
    let mut halves = meter.end_epoch(fuzzed.epoch);
    assert_eq!(halves.len(), 1);
    let half = halves.pop().expect("one half");
    let bytes = Half::Relay(half.clone()).encode();
    assert_eq!(
        Half::decode(&bytes),
        Ok(Half::Relay(half.clone())),
        "a metered half round-trips"
    );

    let config = CollectorConfig::default();
    let t = &half.ticket.ticket;
    let u = &half.report.usage;
    let covered = t.valid_from <= (u.end_ms / 1000).saturating_add(config.skew_secs)
        && u.start_ms / 1000
            <= t.valid_until
                .saturating_add(config.max_session_secs)
                .saturating_add(config.skew_secs);
    let mut c = collector(half.epoch);
    let result = c.receive_bytes(&bytes);
    if !covered {
        assert!(
            matches!(result, Err(UsageError::TicketDoesNotCover { .. })),
            "{result:?}"
        );
        return false;
    }
    assert_eq!(
        result,
        Ok(Accepted::Waiting),
        "a real relay half is refused"
    );
    assert_eq!(c.stats(half.epoch).pending, 1);
    assert!(matches!(
        c.receive_bytes(&bytes),
        Err(UsageError::Duplicate { .. })
    ));
    // The relay's signature ends at byte 6 + 32 + 32 + 24 + 64; the ticket's at the end.
    for pos in [6 + 32 + 32 + 24 + 63, bytes.len() - 1] {
        let mut bad = bytes.clone();
        bad[pos] ^= 0x10;
        let mut c = collector(half.epoch);
        assert!(
            c.receive_bytes(&bad).is_err(),
            "a flipped byte at {pos} is accepted"
        );
        assert_eq!(c.stats(half.epoch).pending, 0);
    }
    true
}

/// Runs every check on `data`; returns whether an admission or relay half rebuilt from it went
/// through the real path (the positive path).
pub fn check(data: &[u8]) -> bool {
    solution(data);
    if let Ok(t) = SignedTicket::decode(data) {
        assert_eq!(&t.encode()[..], data, "ticket decoder is canonical");
    }
    if let Ok(t) = ConsumerToken::decode(data) {
        assert_eq!(t.encode(), data, "token decoder is canonical");
    }
    if let Ok(msg) = UsageMsg::decode(data) {
        // `encode` writes the whole frame: a u16 length, then the body.
        assert_eq!(
            &msg.encode()[2..],
            data,
            "usage message decoder is canonical"
        );
    }
    admission(data) | half(data)
}
