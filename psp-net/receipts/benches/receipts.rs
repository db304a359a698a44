//! Receipt costs at 2048 bits: client blind, oracle blind-sign, client finalize, landing-node
//! verify, each through the crate's public API as the nodes call it.
//!
//! - blind: `ReceiptRequest::new` (spend id, prefix, EMSA-PSS encoding, `m · r^e mod n`);
//! - blind_sign: `SigningKey::blind_sign` (raw private op with CRT and OpenSSL's blinding,
//!   then the `s^e = z` check), and `Issuer::issue` around it (allowance, tier, counters);
//! - finalize: `ReceiptRequest::finalize` (`z · r⁻¹ mod n`, then OpenSSL's RSA-PSS verify);
//! - verify: `Receipt::decode` + `Verifier::verify` (key, epoch, expiry, tier, spent set,
//!   OpenSSL's RSA-PSS verify).
//!
//! Rounds alternate the operations so that machine load hits all alike; medians are printed.
//!
//! `cargo bench -p psp-receipts --bench receipts`

use std::hint::black_box;
use std::time::Instant;

use psp_receipts::{
    BitrateClass, Issuer, IssuerConfig, KeySize, OracleId, PublishedKey, Receipt, ReceiptRequest,
    SigningKey, StreamParams, SubscriptionId, Verifier, VerifierConfig,
};

const ROUNDS: usize = 15;
const PER_ROUND: usize = 40;
const EPOCH: u64 = 7;
const NOW: u64 = 1_700_000_000;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn micros<T>(samples: &mut Vec<f64>, n: usize, mut f: impl FnMut(usize) -> T) {
    let t = Instant::now();
    for i in 0..n {
        black_box(f(i));
    }
    samples.push(t.elapsed().as_secs_f64() * 1e6 / n as f64);
}

fn main() {
    let tier = StreamParams {
        lifetime_secs: 3_600,
        bitrate: BitrateClass::High,
        distribution_nodes: 4,
    };
    let key = SigningKey::generate(KeySize::Rsa2048).expect("key");
    let published = PublishedKey {
        public: key.public_key().clone(),
        epoch: EPOCH,
        tier,
        expires_at: NOW + 3_600,
    };
    let raw_key = SigningKey::from_der(&key.to_der().expect("der")).expect("copy");
    let mut issuer = Issuer::new(
        OracleId([1; 32]),
        IssuerConfig {
            receipts_per_subscription: u32::MAX,
            ..IssuerConfig::default()
        },
    );
    issuer.install_key(EPOCH, tier, key).expect("install");
    let mut verifier = Verifier::new(VerifierConfig::default());
    verifier.insert_key(published.clone()).expect("publish");
    let subscription = SubscriptionId([2; 32]);

    let (mut blind, mut sign, mut issue, mut finalize, mut verify) =
        (vec![], vec![], vec![], vec![], vec![]);
    for _ in 0..ROUNDS {
        let mut requests = Vec::with_capacity(PER_ROUND);
        micros(&mut blind, PER_ROUND, |_| {
            requests.push(ReceiptRequest::new(&published, tier, [0x1a; 32]).expect("blind"));
        });
        micros(&mut sign, PER_ROUND, |i| {
            raw_key.blind_sign(&requests[i].1).expect("blind_sign")
        });
        let mut answers = Vec::with_capacity(PER_ROUND);
        micros(&mut issue, PER_ROUND, |i| {
            answers.push(
                issuer
                    .issue(EPOCH, subscription, &tier, &tier, &requests[i].1)
                    .expect("issue"),
            );
        });
        let mut receipts = Vec::with_capacity(PER_ROUND);
        let mut pending = requests.into_iter().map(|(r, _)| r);
        micros(&mut finalize, PER_ROUND, |i| {
            let request = pending.next().expect("one request per answer");
            receipts.push(request.finalize(&answers[i]).expect("finalize").encode());
        });
        micros(&mut verify, PER_ROUND, |i| {
            let receipt = Receipt::decode(&receipts[i]).expect("decode");
            verifier.verify(NOW, &receipt).expect("verify")
        });
    }
    let (blind, sign, issue, finalize, verify) = (
        median(blind),
        median(sign),
        median(issue),
        median(finalize),
        median(verify),
    );
    println!("{:<44} {:>10}", "operation (2048-bit RSA, median)", "µs/op");
    println!(
        "{:<44} {:>10.1}",
        "blind     client  ReceiptRequest::new", blind
    );
    println!(
        "{:<44} {:>10.1}",
        "blind_sign oracle SigningKey::blind_sign", sign
    );
    println!("{:<44} {:>10.1}", "issue     oracle  Issuer::issue", issue);
    println!(
        "{:<44} {:>10.1}",
        "finalize  client  ReceiptRequest::finalize", finalize
    );
    println!(
        "{:<44} {:>10.1}",
        "verify    landing decode + Verifier::verify", verify
    );
    println!(
        "receipts 2048-bit: blind {blind:.0} µs, blind_sign {sign:.0} µs (issue {issue:.0} µs), \
         finalize {finalize:.0} µs, verify {verify:.0} µs ({ROUNDS}×{PER_ROUND} each, medians)"
    );
}
