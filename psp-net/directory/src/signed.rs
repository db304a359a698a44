//! Signatures on a directory: the single signature a discovery node broadcasts, the signed
//! directory clients fetch, and its check against the discovery set.
//!
//! Every signature is over [`statement_message`](super::statement::statement_message) for the
//! discovery role, slot = period, payload = [`Directory::hash`]: the bytes the chain verifies in
//! equivocation evidence.
//!
//! Wire of a [`SignedDirectory`]: the directory ‖ `count (u16)` ‖ `(signer (32) ‖ signature
//! (64))*`, signers strictly increasing. Wire of a [`DirectorySignature`]: `period (u64) ‖
//! payload_hash (32) ‖ signer (32) ‖ signature (64)`, 136 bytes.

use super::statement::directory_statement;
use super::wire::{finish, put_u64};
use super::{Directory, DirectoryError, MAX_SIGNATURES};
use crate::bytes::Reader;
use crate::crypto::{sr25519_verify, NodeId, Sr25519Keypair, Sr25519Signature};

/// Signatures a directory needs from a discovery set of `set_len` members: a strict majority,
/// so two different directories for one period cannot both reach it unless some member signed
/// both (and can be slashed for it).
pub fn default_threshold(set_len: usize) -> usize {
    set_len / 2 + 1
}

/// Whether `signature` by `signer` states `payload_hash` for `period` under `genesis`.
pub(super) fn statement_valid(
    genesis: &[u8; 32],
    period: u64,
    payload_hash: &[u8; 32],
    signer: &NodeId,
    signature: &Sr25519Signature,
) -> bool {
    sr25519_verify(
        &signer.0,
        &directory_statement(genesis, period, payload_hash),
        signature,
    )
}

/// Refuses `directory` at `now` outside `[valid_after, valid_until]`.
pub(super) fn check_time(d: &Directory, now: u64) -> Result<(), DirectoryError> {
    if now < d.valid_after {
        return Err(DirectoryError::NotYetValid {
            period: d.period,
            valid_after: d.valid_after,
            now,
        });
    }
    if now > d.valid_until {
        return Err(DirectoryError::Expired {
            period: d.period,
            valid_until: d.valid_until,
            now,
        });
    }
    Ok(())
}

/// One discovery node's signature on one directory, as broadcast to the other discovery nodes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DirectorySignature {
    /// The directory's period (the statement's slot).
    pub period: u64,
    /// The directory's hash (the statement's payload).
    pub payload_hash: [u8; 32],
    /// The discovery node signing.
    pub signer: NodeId,
    /// Its signature over the statement.
    pub signature: Sr25519Signature,
}

impl DirectorySignature {
    /// Length of the encoding.
    pub const LEN: usize = 8 + 32 + 32 + 64;

    /// Signs `directory` with `keypair`.
    pub fn sign(directory: &Directory, keypair: &Sr25519Keypair, genesis: &[u8; 32]) -> Self {
        let payload_hash = directory.hash();
        Self {
            period: directory.period,
            payload_hash,
            signer: NodeId(keypair.public()),
            signature: keypair.sign(&directory_statement(
                genesis,
                directory.period,
                &payload_hash,
            )),
        }
    }

    /// The wire bytes.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(Self::LEN);
        put_u64(&mut out, self.period);
        out.extend_from_slice(&self.payload_hash);
        out.extend_from_slice(&self.signer.0);
        out.extend_from_slice(&self.signature);
        out
    }

    /// Decodes the wire bytes without checking the signature.
    pub fn decode(bytes: &[u8]) -> Result<Self, DirectoryError> {
        const WHAT: &str = "directory signature";
        let t = DirectoryError::truncated;
        let mut r = Reader::new(bytes);
        let s = Self {
            period: r.u64().map_err(t(WHAT))?,
            payload_hash: r.array().map_err(t(WHAT))?,
            signer: NodeId(r.array().map_err(t(WHAT))?),
            signature: r.array().map_err(t(WHAT))?,
        };
        finish(&r, WHAT)?;
        Ok(s)
    }

    /// Checks that the signer is in `discovery_set` and signed the statement under `genesis`.
    pub fn verify(
        &self,
        genesis: &[u8; 32],
        discovery_set: &[NodeId],
    ) -> Result<(), DirectoryError> {
        if !discovery_set.contains(&self.signer) {
            return Err(DirectoryError::NotInDiscoverySet {
                what: "directory",
                signer: self.signer,
                period: self.period,
            });
        }
        if !statement_valid(
            genesis,
            self.period,
            &self.payload_hash,
            &self.signer,
            &self.signature,
        ) {
            return Err(DirectoryError::BadSignature {
                what: "directory",
                signer: self.signer,
                period: self.period,
            });
        }
        Ok(())
    }
}

/// A directory with the discovery nodes' signatures, as received: unchecked until
/// [`verify`](Self::verify).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignedDirectory {
    /// The directory.
    pub directory: Directory,
    /// `(signer, signature)` pairs; [`add_signature`](Self::add_signature) keeps them sorted by
    /// signer, one per signer, as the encoding requires.
    pub signatures: Vec<(NodeId, Sr25519Signature)>,
}

impl SignedDirectory {
    /// `directory` without signatures.
    pub fn new(directory: Directory) -> Self {
        Self {
            directory,
            signatures: Vec::new(),
        }
    }

    /// Adds a signature (checked by the caller, e.g. with [`DirectorySignature::verify`]);
    /// returns whether the signer is new. A signer's first signature is kept.
    pub fn add_signature(&mut self, signer: NodeId, signature: Sr25519Signature) -> bool {
        match self.signatures.binary_search_by(|(s, _)| s.cmp(&signer)) {
            Ok(_) => false,
            Err(i) => {
                self.signatures.insert(i, (signer, signature));
                true
            }
        }
    }

    /// Signs the directory with `keypair` and adds the signature.
    pub fn sign(&mut self, keypair: &Sr25519Keypair, genesis: &[u8; 32]) -> DirectorySignature {
        let s = DirectorySignature::sign(&self.directory, keypair, genesis);
        self.add_signature(s.signer, s.signature);
        s
    }

    /// The wire bytes.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.directory.encode_to(&mut out);
        let n = self.signatures.len().min(usize::from(u16::MAX));
        out.extend_from_slice(&(n as u16).to_be_bytes()); // clamped to u16::MAX just above
        for (signer, sig) in self.signatures.iter().take(n) {
            out.extend_from_slice(&signer.0);
            out.extend_from_slice(sig);
        }
        out
    }

    /// Decodes the wire bytes, checking limits and order but no signature.
    pub fn decode(bytes: &[u8]) -> Result<Self, DirectoryError> {
        const WHAT: &str = "signed directory";
        let t = DirectoryError::truncated;
        let mut r = Reader::new(bytes);
        let directory = Directory::read(&mut r)?;
        let count = usize::from(r.u16().map_err(t(WHAT))?);
        if count > MAX_SIGNATURES {
            return Err(DirectoryError::TooMany {
                what: "signatures",
                count,
                max: MAX_SIGNATURES,
            });
        }
        let mut signatures: Vec<(NodeId, Sr25519Signature)> =
            Vec::with_capacity(count.min(r.remaining() / 96));
        for _ in 0..count {
            let signer = NodeId(r.array().map_err(t(WHAT))?);
            let sig = r.array().map_err(t(WHAT))?;
            if signatures.last().is_some_and(|(prev, _)| *prev >= signer) {
                return Err(DirectoryError::Unsorted {
                    what: "signatures",
                    node: signer,
                });
            }
            signatures.push((signer, sig));
        }
        finish(&r, WHAT)?;
        Ok(Self {
            directory,
            signatures,
        })
    }

    /// The distinct members of `discovery_set` with a valid signature on the directory, sorted.
    /// Unknown signers and bad signatures are skipped; a signer counts once.
    pub fn valid_signers(&self, genesis: &[u8; 32], discovery_set: &[NodeId]) -> Vec<NodeId> {
        let d = &self.directory;
        let hash = d.hash();
        let mut signers: Vec<NodeId> = Vec::new();
        for (signer, sig) in &self.signatures {
            if discovery_set.contains(signer)
                && !signers.contains(signer)
                && statement_valid(genesis, d.period, &hash, signer, sig)
            {
                signers.push(*signer);
            }
        }
        signers.sort();
        signers
    }

    /// Checks the directory for use at `now`: within `[valid_after, valid_until]`, and signed
    /// under `genesis` by at least `threshold` distinct members of `discovery_set` (at least
    /// one, whatever `threshold` says). Signatures by others, and bad ones, are ignored.
    pub fn verify(
        &self,
        genesis: &[u8; 32],
        discovery_set: &[NodeId],
        threshold: usize,
        now: u64,
    ) -> Result<VerifiedDirectory, DirectoryError> {
        let d = &self.directory;
        check_time(d, now)?;
        let threshold = threshold.max(1);
        let signers = self.valid_signers(genesis, discovery_set);
        if signers.len() < threshold {
            return Err(DirectoryError::TooFewSignatures {
                period: d.period,
                valid: signers.len(),
                threshold,
            });
        }
        Ok(VerifiedDirectory {
            directory: d.clone(),
            signers,
        })
    }
}

/// A directory that passed [`SignedDirectory::verify`]: the only form a client should route by.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifiedDirectory {
    directory: Directory,
    signers: Vec<NodeId>,
}

impl VerifiedDirectory {
    /// The directory.
    pub fn directory(&self) -> &Directory {
        &self.directory
    }

    /// The discovery nodes whose valid signatures it carried, sorted.
    pub fn signers(&self) -> &[NodeId] {
        &self.signers
    }

    /// The directory, giving up the signer list.
    pub fn into_directory(self) -> Directory {
        self.directory
    }
}
