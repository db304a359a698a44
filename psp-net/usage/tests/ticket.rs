//! Session tickets at the oracle and the distribution node: issued once per session key,
//! forged, expired, not yet valid, replayed, unknown oracle, bad key proof.

mod common;

use common::*;
use psp_onion::crypto::Sr25519Keypair;
use psp_usage::ticket::{
    Admission, GateConfig, IssuerConfig, SessionTicket, SignedTicket, TicketGate, TicketIssuer,
    ADMISSION_LEN, TICKET_LEN,
};
use psp_usage::UsageError;

const RELAY: u8 = 1;

fn ticket_for(consumer: u32) -> (SignedTicket, Sr25519Keypair) {
    let key = session_key(consumer);
    let mut issuer = ticket_issuer(0);
    let ticket = issuer
        .issue(NOW, &solve(&issuer.oracle(), &key, BLOCK))
        .expect("ticket");
    (ticket, key)
}

fn admission(ticket: SignedTicket, key: &Sr25519Keypair) -> Admission {
    Admission::new(ticket, key, &node(&relay_key(RELAY)), &STREAM, &CHALLENGE)
}

fn admit(gate: &mut TicketGate, now: u64, a: &Admission) -> Result<[u8; 32], UsageError> {
    gate.admit(now, &STREAM, &CHALLENGE, a).map(|s| s.session())
}

#[test]
fn a_valid_ticket_is_admitted_once() {
    let (ticket, key) = ticket_for(1);
    assert_eq!(ticket.ticket.valid_until - ticket.ticket.valid_from, 3_600);
    assert!(ticket.signature_valid());
    let a = admission(ticket, &key);
    let mut gate = gate(&relay_key(RELAY));
    assert_eq!(admit(&mut gate, NOW + 5, &a), Ok(ticket.ticket.session));
    assert_eq!(gate.admitted_len(), 1);
    // The same ticket again, even with a fresh proof: replayed.
    assert_eq!(
        admit(&mut gate, NOW + 6, &a),
        Err(UsageError::Replayed {
            session: short(&ticket.ticket.session)
        })
    );
}

fn short(id: &[u8; 32]) -> [u8; 4] {
    [id[0], id[1], id[2], id[3]]
}

#[test]
fn the_oracle_issues_one_ticket_per_session_key_and_checks_the_puzzle() {
    let key = session_key(2);
    let mut issuer = ticket_issuer(0);
    let solution = solve(&issuer.oracle(), &key, BLOCK);
    issuer.issue(NOW, &solution).expect("first");
    let session = psp_primitives::rewards::session_id_of(&key.public());
    assert_eq!(
        issuer.issue(NOW + 1, &solution),
        Err(UsageError::AlreadyIssued {
            session: short(&session)
        })
    );
    // Once the first ticket expired, the key may get a new one.
    assert!(issuer.issue(NOW + 3_600, &solution).is_ok());
    // A stale block.
    let stale = solve(&issuer.oracle(), &session_key(3), [0x22; 32]);
    assert!(matches!(
        issuer.issue(NOW, &stale),
        Err(UsageError::StaleBlock { .. })
    ));
    // A full issued set refuses rather than forgets.
    let config = IssuerConfig {
        difficulty: TEST_DIFFICULTY,
        max_issued: 1,
        ..IssuerConfig::default()
    };
    let mut small = TicketIssuer::new(GENESIS, oracle_key(0), config).unwrap();
    small.note_finalized(BLOCK);
    small
        .issue(NOW, &solve(&small.oracle(), &session_key(4), BLOCK))
        .unwrap();
    assert_eq!(
        small.issue(NOW, &solve(&small.oracle(), &session_key(5), BLOCK)),
        Err(UsageError::Full {
            what: "issued-ticket set",
            max: 1
        })
    );
    assert_eq!(small.issued_len(), 1);
}

#[test]
fn forged_tickets_are_refused() {
    let (ticket, key) = ticket_for(10);
    let mut gate = gate(&relay_key(RELAY));
    // A longer validity, signature unchanged.
    let mut stretched = ticket;
    stretched.ticket.valid_until += 1;
    assert_eq!(
        admit(&mut gate, NOW, &admission(stretched, &key)),
        Err(UsageError::Forged {
            oracle: short(&ticket.ticket.oracle.0)
        })
    );
    // A ticket signed by a relay that names an elected oracle.
    let fake = SessionTicket { ..ticket.ticket }.sign(&relay_key(9));
    assert!(matches!(
        admit(&mut gate, NOW, &admission(fake, &key)),
        Err(UsageError::Forged { .. })
    ));
    // Nothing was remembered: the genuine ticket still gets in.
    assert_eq!(gate.admitted_len(), 0);
    assert!(admit(&mut gate, NOW, &admission(ticket, &key)).is_ok());
}

#[test]
fn expired_and_not_yet_valid_tickets_are_refused_with_skew() {
    let (ticket, key) = ticket_for(11);
    let a = admission(ticket, &key);
    let t = ticket.ticket;
    let mut gate = gate(&relay_key(RELAY));
    // 30 s of skew either side.
    assert_eq!(
        admit(&mut gate, t.valid_from - 31, &a),
        Err(UsageError::NotYetValid {
            valid_from: t.valid_from,
            now: t.valid_from - 31,
            skew: 30
        })
    );
    assert_eq!(
        admit(&mut gate, t.valid_until + 30, &a),
        Err(UsageError::Expired {
            valid_until: t.valid_until,
            now: t.valid_until + 30,
            skew: 30
        })
    );
    assert!(admit(&mut gate, t.valid_until + 29, &a).is_ok());
    let (early, early_key) = ticket_for(12);
    assert!(admit(
        &mut gate,
        early.ticket.valid_from - 30,
        &admission(early, &early_key)
    )
    .is_ok());
}

#[test]
fn unknown_oracles_and_foreign_chains_are_refused() {
    let key = session_key(13);
    let stranger = relay_key(8);
    let config = IssuerConfig {
        difficulty: TEST_DIFFICULTY,
        ..IssuerConfig::default()
    };
    let mut rogue = TicketIssuer::new(GENESIS, stranger.clone(), config.clone()).unwrap();
    rogue.note_finalized(BLOCK);
    let ticket = rogue
        .issue(NOW, &solve(&rogue.oracle(), &key, BLOCK))
        .unwrap();
    let mut gate = gate(&relay_key(RELAY));
    assert_eq!(
        admit(&mut gate, NOW, &admission(ticket, &key)),
        Err(UsageError::UnknownOracle {
            oracle: short(&stranger.public())
        })
    );
    // An elected oracle of another chain.
    let mut foreign = TicketIssuer::new([1; 32], oracle_key(0), config).unwrap();
    foreign.note_finalized(BLOCK);
    let challenge = psp_usage::puzzle::Challenge {
        genesis: [1; 32],
        block: BLOCK,
        oracle: foreign.oracle(),
        session_key: key.public(),
    };
    let nonce = psp_usage::puzzle::solve(&challenge, TEST_DIFFICULTY, 0, 1 << 20)
        .unwrap()
        .unwrap();
    let ticket = foreign
        .issue(
            NOW,
            &psp_usage::Solution {
                block: BLOCK,
                session_key: key.public(),
                nonce,
            },
        )
        .unwrap();
    assert_eq!(
        admit(&mut gate, NOW, &admission(ticket, &key)),
        Err(UsageError::WrongChain {
            expected: [0x9e; 4],
            got: [1; 4]
        })
    );
    // The elected set is bounded.
    let mut small = TicketGate::new(
        GENESIS,
        node(&relay_key(RELAY)),
        GateConfig {
            max_oracles: 2,
            ..GateConfig::default()
        },
    );
    assert!(matches!(
        small.set_elected(&elected()),
        Err(UsageError::Full { .. })
    ));
}

#[test]
fn the_consumer_must_hold_the_session_key() {
    let (ticket, key) = ticket_for(14);
    let session = short(&ticket.ticket.session);
    let mut gate = gate(&relay_key(RELAY));
    // Someone who copied the ticket signs with their own key, claiming the right public key.
    let thief = session_key(99);
    let mut stolen = admission(ticket, &thief);
    stolen.session_key = key.public();
    assert_eq!(
        admit(&mut gate, NOW, &stolen),
        Err(UsageError::WrongKeyProof { session })
    );
    // ...or presents their own key, which does not hash to the session.
    let own = admission(ticket, &thief);
    assert_eq!(
        admit(&mut gate, NOW, &own),
        Err(UsageError::SessionKeyMismatch { session })
    );
    // A proof made for another node, stream or challenge does not carry over.
    let for_other_node = Admission::new(ticket, &key, &node(&relay_key(2)), &STREAM, &CHALLENGE);
    let for_other_stream =
        Admission::new(ticket, &key, &node(&relay_key(RELAY)), &[0; 32], &CHALLENGE);
    let for_old_challenge =
        Admission::new(ticket, &key, &node(&relay_key(RELAY)), &STREAM, &[0; 32]);
    for a in [for_other_node, for_other_stream, for_old_challenge] {
        assert_eq!(
            admit(&mut gate, NOW, &a),
            Err(UsageError::WrongKeyProof { session })
        );
    }
    assert_eq!(gate.admitted_len(), 0);
    assert!(admit(&mut gate, NOW, &admission(ticket, &key)).is_ok());
}

#[test]
fn the_replay_set_forgets_only_expired_tickets_and_refuses_when_full() {
    let mut gate = TicketGate::new(
        GENESIS,
        node(&relay_key(RELAY)),
        GateConfig {
            max_replay: 2,
            ..GateConfig::default()
        },
    );
    gate.set_elected(&elected()).unwrap();
    let tickets: Vec<_> = (20..23).map(ticket_for).collect();
    let a: Vec<_> = tickets.iter().map(|(t, k)| admission(*t, k)).collect();
    assert!(admit(&mut gate, NOW, &a[0]).is_ok());
    assert!(admit(&mut gate, NOW, &a[1]).is_ok());
    assert_eq!(
        admit(&mut gate, NOW, &a[2]),
        Err(UsageError::Full {
            what: "replay set",
            max: 2
        })
    );
    // Still within validity + skew: nothing forgotten, the replay is still caught.
    let until = tickets[0].0.ticket.valid_until;
    assert!(matches!(
        admit(&mut gate, until + 29, &a[0]),
        Err(UsageError::Replayed { .. })
    ));
    assert_eq!(gate.admitted_len(), 2);
    // Past it, the entries go (and the ticket itself is refused as expired).
    assert!(matches!(
        admit(&mut gate, until + 30, &a[0]),
        Err(UsageError::Expired { .. })
    ));
    assert_eq!(gate.admitted_len(), 0);
}

#[test]
fn tickets_and_admissions_round_trip_and_decode_strictly() {
    let (ticket, key) = ticket_for(30);
    let bytes = ticket.encode();
    assert_eq!(bytes.len(), TICKET_LEN);
    assert_eq!(SignedTicket::decode(&bytes), Ok(ticket));
    assert!(SignedTicket::decode(&bytes[..TICKET_LEN - 1]).is_err());
    let a = admission(ticket, &key);
    let encoded = a.encode();
    assert_eq!(encoded.len(), ADMISSION_LEN);
    assert_eq!(Admission::decode(&encoded), Ok(a));
    let mut trailing = encoded.clone();
    trailing.push(1);
    assert!(matches!(
        Admission::decode(&trailing),
        Err(UsageError::TrailingBytes { extra: 1, .. })
    ));
    let mut bad_version = encoded;
    bad_version[1] = 9;
    assert!(matches!(
        Admission::decode(&bad_version),
        Err(UsageError::UnsupportedVersion { version: 9, .. })
    ));
}

#[test]
fn the_ticket_is_the_documented_layout() {
    let (ticket, _) = ticket_for(31);
    let t = ticket.ticket;
    let bytes = ticket.encode();
    assert_eq!(bytes[0], 1);
    assert_eq!(&bytes[1..33], &GENESIS);
    assert_eq!(&bytes[33..65], &t.session);
    assert_eq!(&bytes[65..97], &node(&oracle_key(0)).0);
    assert_eq!(&bytes[97..105], &NOW.to_be_bytes());
    assert_eq!(&bytes[105..113], &(NOW + 3_600).to_be_bytes());
    assert_eq!(&bytes[113..], &ticket.signature);
    // The signature covers the context and the first 113 bytes, under the oracle's key.
    let message = [psp_usage::ticket::TICKET_CONTEXT, &bytes[..113]].concat();
    assert_eq!(t.signing_message(), message);
    assert!(psp_onion::crypto::sr25519_verify(
        &t.oracle.0,
        &message,
        &ticket.signature
    ));
}
