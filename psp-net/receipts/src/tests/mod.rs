//! Tests: RFC 9474 known answers, the issuance round trip and unlinkability, refusals,
//! strict decoding.

use std::sync::OnceLock;

use super::*;

mod decode;
mod flow;
mod kat;
mod refusals;

pub(crate) const EPOCH: u64 = 42;
pub(crate) const NOW: u64 = 1_700_000_000;
pub(crate) const EXPIRES: u64 = NOW + 3_600;
pub(crate) const ORACLE_A: OracleId = OracleId([0xa0; 32]);
pub(crate) const ORACLE_B: OracleId = OracleId([0xb0; 32]);
pub(crate) const ALICE: SubscriptionId = SubscriptionId([0x11; 32]);
pub(crate) const BOB: SubscriptionId = SubscriptionId([0x22; 32]);

pub(crate) fn hex(s: &str) -> Vec<u8> {
    let s = s.trim();
    assert!(s.len().is_multiple_of(2), "odd hex length");
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex digit"))
        .collect()
}

/// The HD tier: an hour, 8 Mbit/s, four distribution nodes.
pub(crate) fn hd() -> StreamParams {
    StreamParams {
        lifetime_secs: 3_600,
        bitrate: BitrateClass::High,
        distribution_nodes: 4,
    }
}

/// The SD tier: half an hour, 2.5 Mbit/s, two distribution nodes.
pub(crate) fn sd() -> StreamParams {
    StreamParams {
        lifetime_secs: 1_800,
        bitrate: BitrateClass::Standard,
        distribution_nodes: 2,
    }
}

/// 2048-bit keys, generated once per test binary (each test gets its own copies).
pub(crate) fn test_key(i: usize) -> SigningKey {
    static KEYS: OnceLock<Vec<Vec<u8>>> = OnceLock::new();
    let ders = KEYS.get_or_init(|| {
        (0..4)
            .map(|_| {
                SigningKey::generate(KeySize::Rsa2048)
                    .and_then(|k| k.to_der())
                    .expect("key generation")
            })
            .collect()
    });
    SigningKey::from_der(&ders[i]).expect("cached key parses")
}

/// One oracle (A) with the HD and SD tiers of [`EPOCH`], a landing node that knows them.
pub(crate) struct Fixture {
    pub issuer: Issuer,
    pub verifier: Verifier,
    pub hd_key: PublishedKey,
    pub sd_key: PublishedKey,
}

pub(crate) fn published(key: &SigningKey, tier: StreamParams) -> PublishedKey {
    PublishedKey {
        public: key.public_key().clone(),
        epoch: EPOCH,
        tier,
        expires_at: EXPIRES,
    }
}

pub(crate) fn fixture_with(config: IssuerConfig, verifier: VerifierConfig) -> Fixture {
    let mut issuer = Issuer::new(ORACLE_A, config);
    let (hd_signing, sd_signing) = (test_key(0), test_key(1));
    let hd_key = published(&hd_signing, hd());
    let sd_key = published(&sd_signing, sd());
    issuer.install_key(EPOCH, hd(), hd_signing).expect("HD key");
    issuer.install_key(EPOCH, sd(), sd_signing).expect("SD key");
    let mut verifier = Verifier::new(verifier);
    verifier.insert_key(hd_key.clone()).expect("HD published");
    verifier.insert_key(sd_key.clone()).expect("SD published");
    Fixture {
        issuer,
        verifier,
        hd_key,
        sd_key,
    }
}

pub(crate) fn fixture() -> Fixture {
    fixture_with(IssuerConfig::default(), VerifierConfig::default())
}

/// The whole client ↔ oracle exchange: blind for `key`'s tier, issue, finalize.
pub(crate) fn obtain(
    issuer: &mut Issuer,
    subscription: SubscriptionId,
    allowed: &StreamParams,
    key: &PublishedKey,
    params: StreamParams,
) -> Result<Receipt, ReceiptError> {
    let (request, blinded) = ReceiptRequest::new(key, params, [0x1a; 32])?;
    let blind_sig = issuer.issue(EPOCH, subscription, allowed, &key.tier, &blinded)?;
    request.finalize(&blind_sig)
}

/// Length of the longest run of bytes `a` and `b` have in common.
pub(crate) fn longest_common_run(a: &[u8], b: &[u8]) -> usize {
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
