//! The overlay's signed statements against the chain's own encoders: the bytes a discovery
//! node (psp-net) signs for a directory are the bytes `pallet-psp-staking` checks in an
//! equivocation report, so evidence gathered in the overlay slashes on chain.

use psp_net::crypto::{sr25519_verify, Sr25519Keypair};
use psp_net::directory::statement::{self, statement_message, STATEMENT_LEN};
use psp_net::directory::{find_equivocations, Directory, SignedDirectory};
use psp_primitives::staking::{self, EquivocationEvidence, Role, RoleStatement, SignedStatement};

const GENESIS: [u8; 32] = [0x47; 32];

#[test]
fn statement_bytes_equal_the_chains_for_every_role() {
    for role in Role::ALL {
        for (slot, hash) in [(0, [0u8; 32]), (7, [1; 32]), (u64::MAX, [0xab; 32])] {
            let ours = statement_message(&GENESIS, role as u8, slot, &hash);
            let chain = staking::statement_message(
                &GENESIS,
                &RoleStatement {
                    role,
                    slot,
                    payload_hash: hash,
                },
            );
            assert_eq!(ours, chain, "{role:?} slot {slot}");
            assert_eq!(ours.len(), STATEMENT_LEN);
        }
    }
    assert_eq!(statement::STATEMENT_CONTEXT, staking::STATEMENT_CONTEXT);
}

#[test]
fn an_overlay_equivocation_is_chain_evidence() {
    let key = Sr25519Keypair::from_seed(&[13; 32]);
    let first = Directory {
        period: 42,
        valid_after: 0,
        valid_until: 100,
        entries: Vec::new(),
    };
    let second = Directory {
        valid_until: 101,
        ..first.clone()
    };
    let signed = |d: &Directory| {
        let mut sd = SignedDirectory::new(d.clone());
        sd.sign(&key, &GENESIS);
        sd
    };
    let found = find_equivocations(&signed(&first), &signed(&second), &GENESIS);
    assert_eq!(found.len(), 1);
    let e = &found[0];
    let statement = |(payload_hash, signature): ([u8; 32], [u8; 64])| SignedStatement {
        statement: RoleStatement {
            role: Role::Discovery,
            slot: e.period,
            payload_hash,
        },
        signature,
    };
    let evidence = EquivocationEvidence {
        offender: e.offender.0,
        first: statement(e.first),
        second: statement(e.second),
    };
    assert!(evidence.conflicts());
    for s in [&evidence.first, &evidence.second] {
        let message = staking::statement_message(&GENESIS, &s.statement);
        assert!(sr25519_verify(&evidence.offender, &message, &s.signature));
    }
}
