//! DHT records from the client side: sign a record as its owner and have a node publish it
//! (`psp_dhtPut`), look records up (`psp_dhtGet`).
//!
//! The owner (the keystore's identity) signs the whole record, naming the node it asks to
//! publish; that node co-signs and puts it into the DHT. The sequence number defaults to the
//! current time in milliseconds, so a renewal always supersedes the previous record.

use psp_net::crypto::blake2_256;
use psp_net::dht::{record_key, RecordContent, RecordKey, RecordKind, SignedRecord};
use psp_net::driver::unix_now;
use psp_primitives::rpc::{DhtPutView, DhtRecordView};
use subxt::rpcs::rpc_params;

use crate::error::{Error, Result};
use crate::keystore::Keys;
use crate::overlay::NodeRpc;
use crate::{hex0x, parse_hex};

/// What to publish.
#[derive(Clone, Debug)]
pub struct Publication {
    /// The record kind.
    pub kind: RecordKind,
    /// The topic (see [`topic`]).
    pub topic: [u8; 32],
    /// The value.
    pub value: Vec<u8>,
    /// Seconds until it expires (the node refuses more than its maximum lifetime).
    pub ttl_secs: u64,
    /// Sequence number; `None` takes the current time in milliseconds.
    pub seq: Option<u64>,
}

impl Publication {
    /// A publication of `value` under a record kind name (`presence`, `stream` or `group`) and
    /// a topic label (hashed with [`topic`]).
    pub fn labelled(
        kind: &str,
        topic_label: &str,
        value: Vec<u8>,
        ttl_secs: u64,
        seq: Option<u64>,
    ) -> Result<Self> {
        Ok(Self {
            kind: parse_kind(kind)?,
            topic: topic(topic_label),
            value,
            ttl_secs,
            seq,
        })
    }
}

/// The 32-byte topic of a text label (BLAKE2-256 of it).
pub fn topic(label: &str) -> [u8; 32] {
    blake2_256(label.as_bytes())
}

/// The DHT key of an owner's record.
pub fn key_of(kind: RecordKind, owner: &[u8; 32], topic: &[u8; 32]) -> RecordKey {
    record_key(kind, owner, topic)
}

/// The DHT key of an owner's record from a record kind name, the owner's identity key as hex
/// (errors name `--owner`) and a topic label.
pub fn owner_key(kind: &str, owner: &str, topic_label: &str) -> Result<RecordKey> {
    let kind = parse_kind(kind)?;
    let owner = parse_hex::<32>(owner, "--owner")?;
    Ok(key_of(kind, &owner, &topic(topic_label)))
}

/// Parses a record kind name.
pub fn parse_kind(name: &str) -> Result<RecordKind> {
    RecordKind::from_name(name).ok_or_else(|| Error::InvalidInput {
        what: "--kind",
        reason: format!("{name:?} is not presence, stream, group or reading"),
    })
}

/// The default sequence number: now in milliseconds, so a renewal supersedes.
fn unix_millis() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or_default()
}

impl NodeRpc {
    /// Signs `publication` with `keys` as owner, naming this node as publisher, and has the
    /// node co-sign and put it.
    pub async fn dht_publish(&self, keys: &Keys, publication: &Publication) -> Result<DhtPutView> {
        let info = self.overlay_info().await?;
        let publisher = parse_hex::<32>(&info.node_id, "psp_overlayInfo nodeId")?;
        let now = unix_now();
        let content = RecordContent {
            kind: publication.kind,
            owner: keys.identity_public(),
            topic: publication.topic,
            publisher,
            seq: publication.seq.unwrap_or_else(unix_millis),
            issued_at: now,
            expires_at: now.saturating_add(publication.ttl_secs),
            value: publication.value.clone(),
        };
        let owner_sig = keys.identity_keypair().sign(&content.owner_message()).0;
        let record = SignedRecord {
            content,
            owner_sig,
            // Left empty: the publishing node co-signs.
            publisher_sig: [0; 64],
        };
        self.dht_put_raw(&hex0x(&record.encode())).await
    }

    /// Puts an already signed record (hex) through this node.
    pub async fn dht_put_raw(&self, record: &str) -> Result<DhtPutView> {
        self.request("psp_dhtPut", rpc_params![record.trim()]).await
    }

    /// Looks `key` up through this node's DHT.
    pub async fn dht_get(&self, key: &RecordKey) -> Result<Option<DhtRecordView>> {
        self.request("psp_dhtGet", rpc_params![hex0x(key)]).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_become_kinds_topics_and_keys() -> Result<()> {
        let owner = [7u8; 32];
        let key = owner_key("stream", &hex0x(&owner), "news")?;
        assert_eq!(key, key_of(parse_kind("stream")?, &owner, &topic("news")));
        assert!(owner_key("nope", &hex0x(&owner), "news")
            .expect_err("kind")
            .to_string()
            .contains("--kind"));
        assert!(owner_key("presence", "0x12", "news")
            .expect_err("owner")
            .to_string()
            .contains("--owner"));
        let publication = Publication::labelled("group", "t", vec![1], 60, Some(3))?;
        assert_eq!(publication.topic, topic("t"));
        assert_eq!(publication.kind, parse_kind("group")?);
        assert_eq!((publication.ttl_secs, publication.seq), (60, Some(3)));
        Ok(())
    }
}
