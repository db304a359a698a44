//! Equivocation: one discovery node signing two different directories for the same period.
//!
//! An [`Equivocation`] carries exactly what the chain's `EquivocationEvidence` needs: the
//! offender and two `SignedStatement`s `{ RoleStatement { role: Discovery, slot: period,
//! payload_hash }, signature }`. The chain verifies the same
//! [`statement_message`](super::statement::statement_message) bytes.

use super::signed::statement_valid;
use super::SignedDirectory;
use crate::crypto::{NodeId, Sr25519Signature};

/// Proof that `offender` signed two different directories for `period`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Equivocation {
    /// The discovery node that signed both.
    pub offender: NodeId,
    /// The period (the statements' slot).
    pub period: u64,
    /// The first directory's hash and the offender's signature on it.
    pub first: ([u8; 32], Sr25519Signature),
    /// The second directory's hash and the offender's signature on it.
    pub second: ([u8; 32], Sr25519Signature),
}

impl Equivocation {
    /// Whether this is real evidence under `genesis`: two different hashes, both signatures
    /// valid. What the chain will check before slashing.
    pub fn verify(&self, genesis: &[u8; 32]) -> bool {
        self.first.0 != self.second.0
            && statement_valid(
                genesis,
                self.period,
                &self.first.0,
                &self.offender,
                &self.first.1,
            )
            && statement_valid(
                genesis,
                self.period,
                &self.second.0,
                &self.offender,
                &self.second.1,
            )
    }
}

/// The signers with valid signatures on both `a` and `b`, when those are different directories
/// for the same period; sorted by offender, one each. `first` is from `a`, `second` from `b`.
pub fn find_equivocations(
    a: &SignedDirectory,
    b: &SignedDirectory,
    genesis: &[u8; 32],
) -> Vec<Equivocation> {
    let period = a.directory.period;
    if b.directory.period != period {
        return Vec::new();
    }
    let (hash_a, hash_b) = (a.directory.hash(), b.directory.hash());
    if hash_a == hash_b {
        return Vec::new();
    }
    let mut out: Vec<Equivocation> = Vec::new();
    for (signer, sig_a) in &a.signatures {
        if out.iter().any(|e| e.offender == *signer)
            || !statement_valid(genesis, period, &hash_a, signer, sig_a)
        {
            continue;
        }
        let second = b.signatures.iter().find(|(s, sig_b)| {
            s == signer && statement_valid(genesis, period, &hash_b, signer, sig_b)
        });
        if let Some((_, sig_b)) = second {
            out.push(Equivocation {
                offender: *signer,
                period,
                first: (hash_a, *sig_a),
                second: (hash_b, *sig_b),
            });
        }
    }
    out.sort_by_key(|e| e.offender);
    out
}
