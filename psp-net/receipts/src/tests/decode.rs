//! Strict decoding of receipts and counts; malformed bytes never panic.

use proptest::prelude::*;

use super::*;
use crate::issuer::{CountEntry, MAX_COUNT_ENTRIES};
use crate::receipt::{HEADER_LEN, MAX_RECEIPT_LEN};

/// A well-formed receipt with a fake signature of `sig_len` bytes (decoding checks none).
fn sample(sig_len: usize) -> Receipt {
    Receipt {
        key_id: KeyId([3; 32]),
        epoch: 0x0102_0304_0506_0708,
        params: hd(),
        landing: [7; 32],
        spend_id: SpendId([4; 32]),
        prefix: [5; 32],
        signature: vec![6; sig_len],
    }
}

#[test]
fn receipts_round_trip_at_every_key_size() {
    for len in [256, 384, 512] {
        let r = sample(len);
        let bytes = r.encode();
        assert_eq!(bytes.len(), HEADER_LEN + len);
        assert_eq!(Receipt::decode(&bytes).expect("decodes"), r);
    }
    assert_eq!(MAX_RECEIPT_LEN, HEADER_LEN + 512);
}

#[test]
fn trailing_bytes_are_refused() {
    let mut bytes = sample(256).encode();
    bytes.push(0);
    assert!(matches!(
        Receipt::decode(&bytes),
        Err(ReceiptError::TrailingBytes { extra: 1, .. })
    ));
}

#[test]
fn every_truncation_is_refused() {
    let bytes = sample(256).encode();
    for len in 0..bytes.len() {
        assert!(
            matches!(
                Receipt::decode(&bytes[..len]),
                Err(ReceiptError::Truncated { .. })
            ),
            "length {len}"
        );
    }
}

#[test]
fn unknown_versions_classes_and_out_of_bounds_fields_are_refused() {
    let good = sample(256).encode();
    let with = |offset: usize, value: &[u8]| {
        let mut b = good.clone();
        b[offset..offset + value.len()].copy_from_slice(value);
        Receipt::decode(&b)
    };
    assert!(matches!(
        with(0, &[1]),
        Err(ReceiptError::UnsupportedVersion { version: 1, .. })
    ));
    for code in [0u8, 5, 0xff] {
        assert!(matches!(
            with(45, &[code]),
            Err(ReceiptError::UnknownBitrateClass(c)) if c == code
        ));
    }
    for nodes in [0u8, 33, 0xff] {
        assert!(matches!(
            with(46, &[nodes]),
            Err(ReceiptError::OutOfBounds {
                field: "distribution_nodes",
                ..
            })
        ));
    }
    for lifetime in [0u32, receipt::MAX_LIFETIME_SECS + 1, u32::MAX] {
        assert!(matches!(
            with(41, &lifetime.to_be_bytes()),
            Err(ReceiptError::OutOfBounds {
                field: "lifetime_secs",
                ..
            })
        ));
    }
    for sig_len in [0u16, 255, 300, 513, u16::MAX] {
        assert!(matches!(
            with(143, &sig_len.to_be_bytes()),
            Err(ReceiptError::OutOfBounds { .. })
        ));
    }
    let oversized = vec![1u8; MAX_RECEIPT_LEN + 1];
    assert!(matches!(
        Receipt::decode(&oversized),
        Err(ReceiptError::OutOfBounds {
            field: "receipt length",
            ..
        })
    ));
}

#[test]
fn counts_round_trip_and_are_bounded() {
    let counts = Counts {
        epoch: 9,
        entries: vec![
            CountEntry {
                subscription: ALICE,
                oracle: ORACLE_A,
                issued: 3,
            },
            CountEntry {
                subscription: BOB,
                oracle: ORACLE_B,
                issued: u32::MAX,
            },
        ],
    };
    let bytes = counts.encode();
    assert_eq!(bytes.len(), 13 + 2 * 68);
    assert_eq!(Counts::decode(&bytes).expect("decodes"), counts);
    let mut trailing = bytes.clone();
    trailing.push(0);
    assert!(matches!(
        Counts::decode(&trailing),
        Err(ReceiptError::TrailingBytes { .. })
    ));
    // A count claiming more entries than allowed is refused before anything is allocated.
    let mut huge = bytes[..9].to_vec();
    huge.extend_from_slice(&(MAX_COUNT_ENTRIES as u32 + 1).to_be_bytes());
    assert!(matches!(
        Counts::decode(&huge),
        Err(ReceiptError::OutOfBounds { .. })
    ));
    let mut lying = bytes[..9].to_vec();
    lying.extend_from_slice(&3u32.to_be_bytes());
    lying.extend_from_slice(&bytes[13..]);
    assert!(matches!(
        Counts::decode(&lying),
        Err(ReceiptError::Truncated { .. })
    ));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2_000))]

    #[test]
    fn arbitrary_bytes_never_panic_the_decoders(bytes in proptest::collection::vec(any::<u8>(), 0..800)) {
        let _ = Receipt::decode(&bytes);
        let _ = Counts::decode(&bytes);
    }

    #[test]
    fn a_mutated_receipt_decodes_only_to_its_own_encoding(
        edits in proptest::collection::vec((0usize..HEADER_LEN + 256, any::<u8>()), 1..6),
        cut in 0usize..8,
        extra in proptest::collection::vec(any::<u8>(), 0..4),
    ) {
        let mut bytes = sample(256).encode();
        for (i, b) in edits {
            bytes[i] = b;
        }
        bytes.truncate(bytes.len() - cut);
        bytes.extend_from_slice(&extra);
        if let Ok(r) = Receipt::decode(&bytes) {
            // Canonical: what decodes re-encodes to the same bytes.
            prop_assert_eq!(r.encode(), bytes);
        }
    }

    #[test]
    fn a_mutated_counts_message_decodes_only_to_its_own_encoding(
        edits in proptest::collection::vec((0usize..13 + 68, any::<u8>()), 1..4),
    ) {
        let counts = Counts {
            epoch: 1,
            entries: vec![CountEntry { subscription: ALICE, oracle: ORACLE_A, issued: 1 }],
        };
        let mut bytes = counts.encode();
        for (i, b) in edits {
            bytes[i] = b;
        }
        if let Ok(c) = Counts::decode(&bytes) {
            prop_assert_eq!(c.encode(), bytes);
        }
    }
}
