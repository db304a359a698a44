//! Random and mutated bytes into every decoder and into the collector: nothing panics,
//! whatever decodes re-encodes to the same bytes, and refused input leaves no state behind.

mod common;

use std::sync::OnceLock;

use common::*;
use proptest::prelude::*;
use psp_usage::report::{Half, MAX_HALF_LEN};
use psp_usage::ticket::{Admission, SignedTicket};
use psp_usage::token::ConsumerToken;
use psp_usage::{Collector, CollectorConfig, Solution};

struct Fixture {
    solution: Vec<u8>,
    ticket: Vec<u8>,
    admission: Vec<u8>,
    token: Vec<u8>,
    relay: Vec<u8>,
    client: Vec<u8>,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let mut tokens = token_issuer(0);
        let s = honest_session(&mut tokens, &relay_key(1), 1, 1_000, 1_000);
        let key = session_key(1);
        let solution = solve(&node(&oracle_key(0)), &key, BLOCK);
        Fixture {
            solution: solution.encode(),
            ticket: s.relay.ticket.encode().to_vec(),
            admission: Admission::new(
                s.relay.ticket,
                &key,
                &node(&relay_key(1)),
                &STREAM,
                &CHALLENGE,
            )
            .encode(),
            token: s.client.token.encode(),
            relay: Half::Relay(s.relay).encode(),
            client: Half::Client(s.client).encode(),
        }
    })
}

/// Every decoder on `bytes`; each successful decode must re-encode to the same bytes.
fn decode_all(bytes: &[u8]) -> Result<(), TestCaseError> {
    if let Ok(s) = Solution::decode(bytes) {
        prop_assert_eq!(s.encode(), bytes);
    }
    if let Ok(t) = SignedTicket::decode(bytes) {
        prop_assert_eq!(t.encode().to_vec(), bytes);
    }
    if let Ok(a) = Admission::decode(bytes) {
        prop_assert_eq!(a.encode(), bytes);
    }
    if let Ok(t) = ConsumerToken::decode(bytes) {
        prop_assert_eq!(t.encode(), bytes);
    }
    if let Ok(h) = Half::decode(bytes) {
        prop_assert_eq!(h.encode(), bytes);
    }
    Ok(())
}

fn mutate(base: &[u8], edits: &[(usize, u8)], cut: usize) -> Vec<u8> {
    let mut bytes = base.to_vec();
    for (at, value) in edits {
        if !bytes.is_empty() {
            let i = at % bytes.len();
            bytes[i] = *value;
        }
    }
    bytes.truncate(bytes.len().saturating_sub(cut));
    bytes
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2_000))]

    #[test]
    fn random_bytes_never_panic_a_decoder(bytes in proptest::collection::vec(any::<u8>(), 0..1_200)) {
        decode_all(&bytes)?;
    }

    #[test]
    fn mutated_messages_never_panic_a_decoder(
        which in 0usize..6,
        edits in proptest::collection::vec((any::<usize>(), any::<u8>()), 0..4),
        cut in 0usize..3,
        extra in proptest::collection::vec(any::<u8>(), 0..3),
    ) {
        let f = fixture();
        let base = [&f.solution, &f.ticket, &f.admission, &f.token, &f.relay, &f.client][which];
        let mut bytes = mutate(base, &edits, cut);
        bytes.extend_from_slice(&extra);
        decode_all(&bytes)?;
    }
}

proptest! {
    // Signature checks are slow in debug builds: fewer cases through the collector.
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn mutated_halves_into_the_collector_never_panic_or_store_garbage(
        client in any::<bool>(),
        edits in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..4),
    ) {
        let f = fixture();
        let base = if client { &f.client } else { &f.relay };
        let bytes = mutate(base, &edits, 0);
        let mut c = Collector::new(GENESIS, CollectorConfig::default());
        c.open_epoch(epoch_info(EPOCH)).unwrap();
        let accepted = c.receive_bytes(&bytes).is_ok();
        let stats = c.stats(EPOCH);
        // Accepted only if the edits left the message as it was; refused input stores nothing.
        prop_assert_eq!(accepted, bytes == *base);
        prop_assert_eq!(stats.pending, usize::from(accepted));
    }

    #[test]
    fn random_bytes_into_the_collector_are_refused(bytes in proptest::collection::vec(any::<u8>(), 0..MAX_HALF_LEN + 8)) {
        let mut c = Collector::new(GENESIS, CollectorConfig::default());
        c.open_epoch(epoch_info(EPOCH)).unwrap();
        prop_assert!(c.receive_bytes(&bytes).is_err());
        prop_assert_eq!(c.stats(EPOCH).pending, 0);
    }
}
