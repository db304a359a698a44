//! Slashing without a person (issue 14, point 4): the equivocations this node's directory
//! service catches (a discovery node signing two directories for one period) go to the chain
//! by themselves, as `PspStaking::report_equivocation_by_node` — an unsigned transaction the
//! node signs with its node key, the same mechanism as the oracles' receipt-key publications.
//!
//! Why the node key and not an operator account: the node holds no account key (an operator
//! would have to hand it one and keep it funded), and the pallet can check the key against
//! the election: only a node elected to a role for the current or next epoch may report, the
//! pool keeps one transaction per offence, and the reporter's share of the slash goes to the
//! reporting node's owner. A report is submitted once; one the pool refuses is tried again at
//! the next finalized block, unless the chain already punished the offence.

use std::collections::HashSet;
use std::sync::Arc;

use psp_net::{crypto::Sr25519Keypair, directory::Equivocation, driver::NodeHandle};
use psp_primitives::staking::{
    equivocation_report_message, EquivocationEvidence, NodeEquivocationReport, Role, RoleStatement,
    SignedStatement,
};
use sc_transaction_pool_api::{TransactionPool, TransactionSource};
use sp_blockchain::HeaderBackend;

use super::{FullClient, Pool};

/// Offences remembered as reported; past it the set is cleared (the chain refuses repeats).
const MAX_REMEMBERED: usize = 4_096;

/// The chain's evidence for an equivocation the directory caught: two statements of the
/// discovery role for the period, each with the offender's signature.
pub fn evidence(e: &Equivocation) -> EquivocationEvidence {
    let statement = |(hash, sig): ([u8; 32], [u8; 64])| SignedStatement {
        statement: RoleStatement {
            role: Role::Discovery,
            slot: e.period,
            payload_hash: hash,
        },
        signature: sig,
    };
    EquivocationEvidence {
        offender: e.offender.0,
        first: statement(e.first),
        second: statement(e.second),
    }
}

/// Submits the equivocations the directory caught, signed with the node key.
pub struct EquivocationReporter {
    key: Sr25519Keypair,
    genesis: [u8; 32],
    pool: Arc<Pool>,
    /// Offences submitted: (offender, period).
    reported: HashSet<([u8; 32], u64)>,
}

impl EquivocationReporter {
    /// A reporter signing with `key` for the chain of `genesis`, submitting to `pool`.
    pub fn new(key: Sr25519Keypair, genesis: [u8; 32], pool: Arc<Pool>) -> Self {
        Self {
            key,
            genesis,
            pool,
            reported: HashSet::new(),
        }
    }

    /// Submits every equivocation the directory holds that was not submitted yet, if this
    /// node is `elected` (otherwise the chain would refuse its reports).
    pub async fn report_new(&mut self, client: &FullClient, handle: &NodeHandle, elected: bool) {
        if !elected {
            return;
        }
        let Ok(caught) = handle.directory_equivocations().await else {
            return;
        };
        for equivocation in caught {
            let offence = (equivocation.offender.0, equivocation.period);
            if self.reported.contains(&offence) {
                continue;
            }
            let evidence = evidence(&equivocation);
            let reporter = self.key.public();
            let message = equivocation_report_message(&self.genesis, &evidence, &reporter);
            let report = NodeEquivocationReport {
                evidence,
                reporter,
                signature: self.key.sign(&message),
            };
            let call = psp_runtime::RuntimeCall::PspStaking(
                pallet_psp_staking::Call::report_equivocation_by_node {
                    report: Box::new(report),
                },
            );
            let xt = psp_runtime::UncheckedExtrinsic::new_bare(call);
            let best = client.info().best_hash;
            let offender = hex::encode(&offence.0[..4]);
            match self
                .pool
                .submit_one(best, TransactionSource::Local, xt.into())
                .await
            {
                Ok(_) => {
                    log::info!(
                        target: "psp-overlay",
                        "⚖️ equivocation of discovery node {offender} in period {} reported to the chain",
                        offence.1
                    );
                    self.remember(offence);
                }
                Err(e) => {
                    let error = e.to_string();
                    if is_settled(&error) {
                        // Punished already (by another reporter) or known to the pool: done.
                        self.remember(offence);
                    } else {
                        log::warn!(
                            target: "psp-overlay",
                            "equivocation of {offender} not reported (retried at the next block): {error}"
                        );
                    }
                }
            }
        }
    }

    fn remember(&mut self, offence: ([u8; 32], u64)) {
        if self.reported.len() >= MAX_REMEMBERED {
            self.reported.clear();
        }
        self.reported.insert(offence);
    }
}

/// Whether a pool refusal means the report is not needed any more.
fn is_settled(error: &str) -> bool {
    ["Stale", "AlreadyImported", "already imported", "Outdated"]
        .iter()
        .any(|s| error.contains(s))
}
