//! Where the agent gets what the chain says: the elected authorities and registered nodes,
//! identity statuses, id resolution, and access certificates. [`ChainSource`] is what the
//! agent needs; [`RpcChain`] implements it over a node's RPC (and authority nodes'
//! `psp_certRequest`), tests implement it in memory.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use psp_net::registry::IdentityStatus;
use psp_primitives::staking::Role;
use subxt::rpcs::rpc_params;

use super::chainview::status_of;
use super::error::MessagingError;
use crate::chain::Chain;
use crate::identity::IdentityLookup;
use crate::keystore::Keys;
use crate::overlay::{registered_nodes, NodeRpc, RelayNode};
use crate::{parse_hex, parse_hex_vec};

/// A boxed future, as [`ChainSource`] returns them.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Identity keys and what the chain says about each.
pub type Statuses = Vec<([u8; 32], IdentityStatus)>;

/// The chain's current sets.
#[derive(Clone, Debug)]
pub struct Snapshot {
    /// The authorities elected for the current epoch (certificate issuers).
    pub authorities: Vec<[u8; 32]>,
    /// The registered nodes at the latest finalized block, usable as hops.
    pub nodes: Vec<RelayNode>,
}

/// An identity resolved from an id string or key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Peer {
    /// Its identity key.
    pub key: [u8; 32],
    /// Its id string.
    pub id: String,
    /// Its status on chain.
    pub status: IdentityStatus,
}

/// A certificate issued by an authority.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IssuedCertificate {
    /// The encoded certificate.
    pub bytes: Vec<u8>,
    /// Its start.
    pub not_before: u64,
    /// Its end.
    pub not_after: u64,
}

/// What the agent asks of the chain.
pub trait ChainSource: Send + Sync + 'static {
    /// The chain's genesis hash.
    fn genesis(&self) -> [u8; 32];
    /// The current authorities and registered nodes.
    fn snapshot(&self) -> BoxFuture<'_, Result<Snapshot, MessagingError>>;
    /// The statuses of these identity keys.
    fn statuses(&self, keys: Vec<[u8; 32]>) -> BoxFuture<'_, Result<Statuses, MessagingError>>;
    /// The identity an id string or `0x` key names.
    fn resolve(&self, who: String) -> BoxFuture<'_, Result<Peer, MessagingError>>;
    /// A fresh access certificate for the agent's identity.
    fn certificate(&self) -> BoxFuture<'_, Result<IssuedCertificate, MessagingError>>;
}

/// [`ChainSource`] over RPC: the node at `--url` for chain state, the authority nodes for
/// certificates.
pub struct RpcChain {
    chain: Chain,
    keys: Arc<Keys>,
    authority_urls: Vec<String>,
}

impl std::fmt::Debug for RpcChain {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RpcChain")
            .field("chain", &self.chain)
            .field("authority_urls", &self.authority_urls)
            .finish_non_exhaustive()
    }
}

impl RpcChain {
    /// Chain state from `chain`, certificates for `keys` from the nodes at `authority_urls`
    /// (tried in order; each must be an elected authority).
    pub fn new(chain: Chain, keys: Arc<Keys>, authority_urls: Vec<String>) -> Self {
        Self {
            chain,
            keys,
            authority_urls,
        }
    }

    /// The chain connection.
    pub fn chain(&self) -> &Chain {
        &self.chain
    }

    async fn snapshot_now(&self) -> Result<Snapshot, MessagingError> {
        let elected = self
            .chain
            .staking_elected(Role::Authority, None)
            .await
            .map_err(|e| MessagingError::chain("reading the elected authorities", e))?;
        let authorities = elected
            .iter()
            .map(|e| parse_hex::<32>(&e.node, "psp_stakingElected node"))
            .collect::<crate::Result<Vec<_>>>()
            .map_err(|e| MessagingError::chain("reading the elected authorities", e))?;
        let nodes = registered_nodes(&self.chain)
            .await
            .map_err(|e| MessagingError::chain("reading the registered nodes", e))?;
        Ok(Snapshot { authorities, nodes })
    }

    async fn statuses_now(&self, keys: Vec<[u8; 32]>) -> Result<Statuses, MessagingError> {
        let what = "reading identity statuses at the finalized block";
        let head: String = self
            .chain
            .rpc()
            .request("chain_getFinalizedHead", rpc_params![])
            .await
            .map_err(|e| {
                let reason = e.to_string();
                let method = "chain_getFinalizedHead";
                MessagingError::chain(what, crate::Error::Rpc { method, reason })
            })?;
        let at =
            parse_hex::<32>(&head, "finalized head").map_err(|e| MessagingError::chain(what, e))?;
        let mut out = Vec::with_capacity(keys.len());
        for key in keys {
            let view = self
                .chain
                .identity_by_key(&key, Some(at))
                .await
                .map_err(|e| MessagingError::chain(what, e))?;
            out.push((key, status_of(view.as_ref())));
        }
        Ok(out)
    }

    async fn resolve_now(&self, who: String) -> Result<Peer, MessagingError> {
        let lookup = parse_peer(&who)?;
        let view = self
            .chain
            .find_identity(&lookup)
            .await
            .map_err(|e| MessagingError::chain(format!("resolving {who}"), e))?;
        let key = parse_hex::<32>(&view.key, "identity key")
            .map_err(|e| MessagingError::chain(format!("resolving {who}"), e))?;
        Ok(Peer {
            key,
            id: view.id.clone(),
            status: status_of(Some(&view)),
        })
    }

    async fn certificate_now(&self) -> Result<IssuedCertificate, MessagingError> {
        let mut reasons = Vec::new();
        for url in &self.authority_urls {
            let issued = async {
                let view = NodeRpc::connect(url)
                    .await?
                    .request_certificate(&self.keys)
                    .await?;
                let bytes = parse_hex_vec(&view.certificate, "certificate")?;
                Ok::<_, crate::Error>(IssuedCertificate {
                    bytes,
                    not_before: view.not_before,
                    not_after: view.not_after,
                })
            }
            .await;
            match issued {
                Ok(cert) => return Ok(cert),
                Err(e) => reasons.push(format!("{url}: {e}")),
            }
        }
        if reasons.is_empty() {
            reasons.push("no authority URL given".into());
        }
        Err(MessagingError::Certificate {
            reason: reasons.join("; "),
        })
    }
}

impl ChainSource for RpcChain {
    fn genesis(&self) -> [u8; 32] {
        self.chain.genesis_hash()
    }

    fn snapshot(&self) -> BoxFuture<'_, Result<Snapshot, MessagingError>> {
        Box::pin(self.snapshot_now())
    }

    fn statuses(&self, keys: Vec<[u8; 32]>) -> BoxFuture<'_, Result<Statuses, MessagingError>> {
        Box::pin(self.statuses_now(keys))
    }

    fn resolve(&self, who: String) -> BoxFuture<'_, Result<Peer, MessagingError>> {
        Box::pin(self.resolve_now(who))
    }

    fn certificate(&self) -> BoxFuture<'_, Result<IssuedCertificate, MessagingError>> {
        Box::pin(self.certificate_now())
    }
}

/// Parses whom to reach: `0x` + 64 hex digits (or 64 bare hex digits) is a key, anything
/// else an id string.
pub fn parse_peer(who: &str) -> Result<IdentityLookup, MessagingError> {
    let who = who.trim();
    let looks_hex =
        who.starts_with("0x") || (who.len() == 64 && who.bytes().all(|b| b.is_ascii_hexdigit()));
    if looks_hex {
        let key =
            parse_hex::<32>(who, "identity key").map_err(|e| MessagingError::InvalidRequest {
                what: "peer",
                reason: e.to_string(),
            })?;
        return Ok(IdentityLookup::Key(key));
    }
    if who.is_empty() {
        return Err(MessagingError::InvalidRequest {
            what: "peer",
            reason: "empty; give an id string or 0x + 64 hex digits".into(),
        });
    }
    Ok(IdentityLookup::Id(who.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peers_are_keys_or_id_strings() {
        let key = [7u8; 32];
        assert_eq!(
            parse_peer(&crate::hex0x(&key)).expect("key"),
            IdentityLookup::Key(key)
        );
        assert_eq!(
            parse_peer(&hex::encode(key)).expect("bare"),
            IdentityLookup::Key(key)
        );
        assert_eq!(
            parse_peer(" peerstream.client.account.x ").expect("id"),
            IdentityLookup::Id("peerstream.client.account.x".into())
        );
        assert!(parse_peer("0x1234").is_err());
        assert!(parse_peer("").is_err());
    }
}
