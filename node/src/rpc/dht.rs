//! The DHT methods (`psp_dhtPut`, `psp_dhtGet`): put a signed record through this node and
//! look records up over the overlay's Kademlia.
//!
//! A record names its publisher. When that is this node and the publisher signature is still
//! empty (all zeros), this node co-signs it — the owner chose it as publisher — after checking
//! nothing else; the record is then validated like any other before it is stored. Co-signing
//! signs with the node's key, so that path is unsafe ([`super::policy`]): a public endpoint
//! stores only records that arrive fully signed. Both methods start overlay traffic and draw
//! on the connection's network budget.

use jsonrpsee::{core::RpcResult, proc_macros::rpc, Extensions};
use psp_net::dht::{RecordKind, SignedRecord};
use psp_primitives::rpc::{DhtPutView, DhtRecordView};

use super::{from_hex, hex0x, internal_error, invalid_params, policy, Psp};

/// The DHT methods.
#[rpc(server)]
pub trait DhtRpc {
    /// Validates, stores and replicates a signed record (hex of `psp_net::dht::SignedRecord`).
    #[method(name = "psp_dhtPut", with_extensions)]
    async fn dht_put(&self, record: String) -> RpcResult<DhtPutView>;

    /// Looks a key (0x + 64 hex digits) up; `null` if no valid record was found.
    #[method(name = "psp_dhtGet", with_extensions)]
    async fn dht_get(&self, key: String) -> RpcResult<Option<DhtRecordView>>;
}

fn kind_name(kind: RecordKind) -> String {
    kind.as_str().to_owned()
}

#[jsonrpsee::core::async_trait]
impl<C: Send + Sync + 'static> DhtRpcServer for Psp<C> {
    async fn dht_put(&self, ext: &Extensions, record: String) -> RpcResult<DhtPutView> {
        self.budget.take(ext, "psp_dhtPut")?;
        let bytes = from_hex(&record, "record")?;
        let mut signed = SignedRecord::decode(&bytes)
            .map_err(|e| invalid_params(format!("record refused: {e}")))?;
        let identity = self.identity()?;
        if signed.content.publisher == identity.node_id() && signed.publisher_sig == [0; 64] {
            policy::ensure_unsafe_allowed(ext, "psp_dhtPut (co-signing as this node)")?;
            signed =
                SignedRecord::cosign(signed.content, signed.owner_sig, &identity.signing_key());
        }
        let report = self
            .handle()?
            .dht_put(signed.encode())
            .await
            .map_err(|e| invalid_params(e.to_string()))?;
        Ok(DhtPutView {
            key: hex0x(&report.key),
            replicas: report.replicas as u32,
        })
    }

    async fn dht_get(&self, ext: &Extensions, key: String) -> RpcResult<Option<DhtRecordView>> {
        self.budget.take(ext, "psp_dhtGet")?;
        let key: [u8; 32] = from_hex(&key, "key")?
            .try_into()
            .map_err(|_| invalid_params("key must be 32 bytes".into()))?;
        let report = self
            .handle()?
            .dht_get(key)
            .await
            .map_err(|e| internal_error(&e.to_string()))?;
        let Some(bytes) = report.record else {
            return Ok(None);
        };
        let record = SignedRecord::decode(&bytes)
            .map_err(|e| internal_error(&format!("stored record does not decode: {e}")))?;
        let c = &record.content;
        Ok(Some(DhtRecordView {
            key: hex0x(&key),
            kind: kind_name(c.kind),
            owner: hex0x(&c.owner),
            topic: hex0x(&c.topic),
            publisher: hex0x(&c.publisher),
            seq: c.seq,
            issued_at: c.issued_at,
            expires_at: c.expires_at,
            value: hex0x(&c.value),
            record: hex0x(&bytes),
            found: report.found as u32,
            refused: report.refused as u32,
        }))
    }
}
