//! The presence record an announcer signs: its topic (the presence slot), times and value.

use psp_cert::Certificate;
use psp_dht::{RecordContent, RecordKind};
use psp_onion::crypto::blake2_256_parts;

use crate::client::error::ClientError;
use crate::client::Identity;
use crate::record::PresenceValue;
use crate::wire::OwnerSignedRecord;

const TOPIC_CONTEXT: &[u8] = b"psp/rendezvous/presence-slot/v1";

/// The DHT topic of presence slot `slot`: `BLAKE2b-256("psp/rendezvous/presence-slot/v1" ‖
/// slot)`. Each of a client's presence points uses its own slot, so their records live
/// under different DHT keys; a looker fetches the keys of slots `0..n`.
pub fn presence_topic(slot: u8) -> [u8; 32] {
    blake2_256_parts(&[TOPIC_CONTEXT, &[slot]])
}

/// The end of a certificate's validity, read without checking it (the presence node
/// checks it; a record must not outlive it). `None` if it does not decode.
pub(super) fn certificate_end(certificate: &[u8]) -> Option<u64> {
    Certificate::decode(certificate)
        .ok()
        .map(|c| c.body.not_after)
}

/// What a record says besides the owner's identity.
pub(super) struct RecordTerms<'a> {
    pub(super) presence_node: &'a [u8; 32],
    pub(super) slot: u8,
    pub(super) public: bool,
    pub(super) certificate: &'a [u8],
    pub(super) seq: u64,
    pub(super) lifetime_secs: u64,
}

/// Signs a record issued at `now`, expiring after the lifetime or at the certificate's end,
/// whichever is first. Refuses when the certificate ends by `now`.
pub(super) fn sign_record(
    identity: &Identity,
    terms: &RecordTerms<'_>,
    now: u64,
) -> Result<OwnerSignedRecord, ClientError> {
    let mut expires_at = now.saturating_add(terms.lifetime_secs);
    if let Some(not_after) = certificate_end(terms.certificate) {
        if not_after <= now {
            return Err(ClientError::CertificateEnding { not_after, now });
        }
        expires_at = expires_at.min(not_after);
    }
    let content = RecordContent {
        kind: RecordKind::Presence,
        owner: identity.id(),
        topic: presence_topic(terms.slot),
        publisher: *terms.presence_node,
        seq: terms.seq,
        issued_at: now,
        expires_at,
        value: PresenceValue {
            public: terms.public,
            certificate: terms.certificate.to_vec(),
        }
        .encode(),
    };
    OwnerSignedRecord::sign(content, identity.key()).map_err(ClientError::Record)
}

/// When to renew a record issued at `issued_at` that expires at `expires_at`: at half its
/// life, and at least a second after issue (so a short record cannot spin).
pub(super) fn keep_alive_at(issued_at: u64, expires_at: u64) -> u64 {
    let half = expires_at.saturating_sub(issued_at) / 2;
    issued_at.saturating_add(half.max(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_have_distinct_topics_and_keep_alives_come_at_half_life() {
        assert_ne!(presence_topic(0), presence_topic(1));
        assert_eq!(keep_alive_at(1_000, 1_240), 1_120);
        assert_eq!(keep_alive_at(1_000, 1_001), 1_001);
        assert_eq!(keep_alive_at(1_000, 1_000), 1_001);
    }
}
