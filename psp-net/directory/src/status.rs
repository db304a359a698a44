//! Status reports: a node's signed announcement of its flags and addresses for one period.
//!
//! Wire: `node (32) ‖ period (u64) ‖ flags (u8) ‖ addresses ‖ issued_at (u64) ‖ signature (64)`;
//! the signature covers [`STATUS_TAG`] followed by everything before it.

use super::wire::{check_entry, finish, put_addresses, put_u64, read_addresses};
use super::{DirectoryError, MAX_CLOCK_SKEW_SECS};
use crate::bytes::Reader;
use crate::crypto::{sr25519_verify, NodeId, Sr25519Keypair, Sr25519Signature};
use crate::registry::{IdentityKind, IdentityRegistry, IdentityStatus};

/// Domain separation tag of a status report signature.
pub const STATUS_TAG: &[u8] = b"psp/directory/status/v1";

/// What a node announces for one period.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StatusReport {
    /// The node (its registered sr25519 key, which signs the report).
    pub node: NodeId,
    /// The directory period the report is for.
    pub period: u64,
    /// The roles the node offers ([`flags`](super::flags)).
    pub flags: u8,
    /// Where to reach it: multiaddr strings, at most [`MAX_ADDRESSES`](super::MAX_ADDRESSES),
    /// each at most [`MAX_ADDRESS_LEN`](super::MAX_ADDRESS_LEN) bytes, no repeats, in the
    /// node's order of preference.
    pub addresses: Vec<String>,
    /// When the node signed it (unix seconds); a newer report replaces an older one.
    pub issued_at: u64,
}

impl StatusReport {
    /// The encoding without the signature.
    fn encode_body(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.node.0);
        put_u64(out, self.period);
        out.push(self.flags);
        put_addresses(out, &self.addresses);
        put_u64(out, self.issued_at);
    }

    /// The signed message: the tag, then the body.
    fn message(&self) -> Vec<u8> {
        let mut m = STATUS_TAG.to_vec();
        self.encode_body(&mut m);
        m
    }
}

/// A status report as received: decoded, not checked. Only [`SignedStatus::verify`] yields the
/// [`StatusReport`] to use.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignedStatus {
    report: StatusReport,
    signature: Sr25519Signature,
}

impl SignedStatus {
    /// Signs `report` with the node's key. Refuses a report the decoder would refuse, or one
    /// whose `node` is not `keypair`'s key.
    pub fn sign(report: StatusReport, keypair: &Sr25519Keypair) -> Result<Self, DirectoryError> {
        check_entry(report.node, report.flags, &report.addresses)?;
        if report.node.0 != keypair.public() {
            return Err(DirectoryError::BadSignature {
                what: "status",
                signer: report.node,
                period: report.period,
            });
        }
        let signature = keypair.sign(&report.message());
        Ok(Self { report, signature })
    }

    /// The report, unchecked: for routing and logging only.
    pub fn unverified(&self) -> &StatusReport {
        &self.report
    }

    /// The wire bytes.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(64 + 32 + 18 + 4 * 129 + 64);
        self.report.encode_body(&mut out);
        out.extend_from_slice(&self.signature);
        out
    }

    /// Decodes the wire bytes, checking limits but not the signature.
    pub fn decode(bytes: &[u8]) -> Result<Self, DirectoryError> {
        const WHAT: &str = "status report";
        let t = DirectoryError::truncated;
        let mut r = Reader::new(bytes);
        let node = NodeId(r.array().map_err(t(WHAT))?);
        let period = r.u64().map_err(t(WHAT))?;
        let flags = r.u8().map_err(t(WHAT))?;
        let addresses = read_addresses(&mut r, node, WHAT)?;
        let issued_at = r.u64().map_err(t(WHAT))?;
        let signature = r.array().map_err(t(WHAT))?;
        finish(&r, WHAT)?;
        check_entry(node, flags, &addresses)?;
        Ok(Self {
            report: StatusReport {
                node,
                period,
                flags,
                addresses,
                issued_at,
            },
            signature,
        })
    }

    /// Checks the report for `period` at time `now`: signed by its node, the node an active
    /// [`IdentityKind::Node`] on chain, the period the expected one (no replay of another
    /// period's report), and not issued more than [`MAX_CLOCK_SKEW_SECS`] in the future.
    pub fn verify(
        &self,
        now: u64,
        period: u64,
        registry: &dyn IdentityRegistry,
    ) -> Result<StatusReport, DirectoryError> {
        let r = &self.report;
        if r.period != period {
            return Err(DirectoryError::WrongPeriod {
                what: "status",
                node: r.node,
                expected: period,
                got: r.period,
            });
        }
        if r.issued_at > now.saturating_add(MAX_CLOCK_SKEW_SECS) {
            return Err(DirectoryError::FromTheFuture {
                node: r.node,
                issued_at: r.issued_at,
                now,
                max_skew: MAX_CLOCK_SKEW_SECS,
            });
        }
        check_node(registry, r.node)?;
        if !sr25519_verify(&r.node.0, &r.message(), &self.signature) {
            return Err(DirectoryError::BadSignature {
                what: "status",
                signer: r.node,
                period: r.period,
            });
        }
        Ok(r.clone())
    }
}

/// Checks that `node` is a live overlay node on chain.
fn check_node(registry: &dyn IdentityRegistry, node: NodeId) -> Result<(), DirectoryError> {
    match registry.status(&node.0) {
        IdentityStatus::Active(IdentityKind::Node) => Ok(()),
        IdentityStatus::Active(kind) => Err(DirectoryError::NotANode { node, kind }),
        IdentityStatus::Revoked => Err(DirectoryError::RevokedNode { node }),
        IdentityStatus::Unknown => Err(DirectoryError::UnknownNode { node }),
    }
}
