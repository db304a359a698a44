//! Device data for a server (issue 16, point 5): a device publishes readings as signed DHT
//! records (kind `reading`, owned by the device identity, one record per topic, the newest
//! sequence number winning), and a server watches them.
//!
//! [`Watch`] is the server's side, sans IO: it is given what a node answered for the
//! reading's key and accepts only a record that validates here, whatever the node says —
//! decoded strictly, under the watched key, owned by the device (a live device identity),
//! co-signed by a registered node, both signatures checked, not expired — and that is newer
//! than the last one accepted (a replayed or stale record is skipped, not reported twice).

use psp_net::dht::{record_key, RecordKey, RecordKind, RecordLimits, SignedRecord};
use psp_net::registry::IdentityRegistry;
use serde::Serialize;

use crate::dht::topic;
use crate::hex0x;

/// One accepted reading.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Reading {
    /// The device's identity key.
    pub device: String,
    /// The record's sequence number (the device's clock in ms by default).
    pub seq: u64,
    /// When the device signed it (unix seconds).
    pub issued_at: u64,
    /// When it expires.
    pub expires_at: u64,
    /// The node that co-signed and stored it.
    pub publisher: String,
    /// The value, as text when it is UTF-8.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// The value as hex otherwise.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hex: Option<String>,
}

/// A server's watch of one device's readings under one topic.
#[derive(Debug)]
pub struct Watch {
    device: [u8; 32],
    key: RecordKey,
    limits: RecordLimits,
    last_seq: Option<u64>,
}

impl Watch {
    /// Watches `device`'s readings under the topic label `topic_label`.
    pub fn new(device: [u8; 32], topic_label: &str) -> Self {
        Self {
            device,
            key: record_key(RecordKind::Reading, &device, &topic(topic_label)),
            limits: RecordLimits::default(),
            last_seq: None,
        }
    }

    /// The DHT key to look up.
    pub fn key(&self) -> &RecordKey {
        &self.key
    }

    /// A record a node returned (its encoding): the reading if it validates here and is
    /// newer than the last one accepted, `None` if it is the same or older, an error saying
    /// why it is refused otherwise. `registry` holds the device's and the publisher's
    /// statuses on chain.
    pub fn accept(
        &mut self,
        encoded: &[u8],
        now: u64,
        registry: &impl IdentityRegistry,
    ) -> Result<Option<Reading>, psp_net::dht::RecordError> {
        let valid = SignedRecord::decode_valid(&self.key, encoded, now, registry, &self.limits)?;
        let c = valid.content();
        // The key binds kind, owner and topic, so a valid record here is the device's.
        debug_assert_eq!(c.owner, self.device);
        if self.last_seq.is_some_and(|last| c.seq <= last) {
            return Ok(None);
        }
        self.last_seq = Some(c.seq);
        let (text, hex) = match String::from_utf8(c.value.clone()) {
            Ok(t) => (Some(t), None),
            Err(e) => (None, Some(hex::encode(e.into_bytes()))),
        };
        Ok(Some(Reading {
            device: hex0x(&c.owner),
            seq: c.seq,
            issued_at: c.issued_at,
            expires_at: c.expires_at,
            publisher: hex0x(&c.publisher),
            text,
            hex,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use psp_net::crypto::Sr25519Keypair;
    use psp_net::dht::RecordContent;
    use psp_net::registry::{IdentityKind, StaticRegistry};

    fn record(owner: &Sr25519Keypair, node: &Sr25519Keypair, label: &str, seq: u64) -> Vec<u8> {
        RecordContent {
            kind: RecordKind::Reading,
            owner: owner.public(),
            topic: topic(label),
            publisher: node.public(),
            seq,
            issued_at: 1_000,
            expires_at: 1_600,
            value: format!("21.{seq} C").into_bytes(),
        }
        .sign(owner, node)
        .encode()
    }

    #[test]
    fn only_validated_newer_readings_of_the_device_are_accepted() {
        let device = Sr25519Keypair::from_seed(&[1; 32]);
        let node = Sr25519Keypair::from_seed(&[2; 32]);
        let stranger = Sr25519Keypair::from_seed(&[3; 32]);
        let mut registry = StaticRegistry::default();
        registry.insert(device.public(), IdentityKind::Device);
        registry.insert(node.public(), IdentityKind::Node);
        registry.insert(stranger.public(), IdentityKind::Device);
        let mut watch = Watch::new(device.public(), "temperature");

        let first = watch
            .accept(&record(&device, &node, "temperature", 1), 1_100, &registry)
            .expect("valid")
            .expect("new");
        assert_eq!((first.seq, first.text.as_deref()), (1, Some("21.1 C")));
        // The same record again, and an older one: nothing new.
        let again = record(&device, &node, "temperature", 1);
        assert_eq!(watch.accept(&again, 1_101, &registry).expect("valid"), None);
        let newer = record(&device, &node, "temperature", 2);
        assert_eq!(
            watch
                .accept(&newer, 1_102, &registry)
                .expect("valid")
                .map(|r| r.seq),
            Some(2)
        );

        // Another device's record, another topic: not under this key.
        let theirs = record(&stranger, &node, "temperature", 9);
        assert!(watch.accept(&theirs, 1_103, &registry).is_err());
        let other_topic = record(&device, &node, "humidity", 9);
        assert!(watch.accept(&other_topic, 1_103, &registry).is_err());
        // A flipped byte in the value: a signature fails.
        let mut tampered = record(&device, &node, "temperature", 3);
        let at = tampered.len() - 2 * 64 - 1;
        tampered[at] ^= 1;
        assert!(watch.accept(&tampered, 1_104, &registry).is_err());
        // Expired, and a revoked device.
        assert!(watch
            .accept(&record(&device, &node, "temperature", 4), 1_700, &registry)
            .is_err());
        registry.revoke(device.public());
        assert!(watch
            .accept(&record(&device, &node, "temperature", 5), 1_105, &registry)
            .is_err());
        // Garbage.
        assert!(watch.accept(b"not a record", 1_105, &registry).is_err());
    }
}
