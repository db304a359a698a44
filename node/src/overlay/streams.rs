//! Stream creation on this node (PSP overview §8.2): what the `oracle` and `landing`
//! services (psp-net's [`StreamSetup`]) check against, kept current from the chain.
//!
//! - [`ChainSubscriptions`]: the subscriptions pallet's storage at the latest finalized block
//!   (a trie look-up, no runtime execution, like the identity checks), with the plans of the
//!   latest [`ReceiptKeys::refresh`].
//! - [`ReceiptKeys`]: at each finalized block (from the chain feed's blocking task) reads the
//!   epoch, the plans and the receipt keys every oracle published for the current epoch and
//!   the two before it, and hands them to the landing service when they change. While this
//!   node is an elected oracle for the current or the next epoch and has published nothing
//!   for it, it makes one RSA-2048 key per plan and one consumer-token key (published under
//!   the reserved tier [`Tier::CONSUMER_TOKENS`], issue 14), and returns the signed
//!   publication for the feed to submit as an unsigned transaction (validated by the runtime
//!   like an im-online heartbeat: no account, no fee, the node key's signature). The issuing
//!   keys go to the oracle service once the chain shows them as this node's: receipt keys to
//!   its receipts issuer, the token key to its token issuer.
//! - Every oracle's consumer-token keys of the epochs read, as `psp-usage` [`TokenKey`]s
//!   ([`ReceiptKeys::token_keys`]), for the oracle's collector to check the tokens usage
//!   reports carry. The landing service never sees them (they are no receipt keys).
//!
//! Issuing keys live in memory only: a restarted oracle cannot issue under the keys it
//! published before the restart, and publishes new ones from the next epoch on.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, RwLock};

use codec::Decode;
use psp_net::crypto::{NodeId, Sr25519Keypair};
use psp_net::driver::streams::SharedKeyUpdates;
use psp_net::receipts::{KeySize, PublicKey, PublishedKey, SigningKey, StreamParams};
use psp_net::stream::oracle::SubscriptionView;
use psp_net::usage::token::TokenKey;
use psp_primitives::{
    api::{PspStakingApi, PspSubscriptionsApi},
    staking::{EpochIndex, Role},
    subscriptions::{receipt_keys_message, ReceiptKey, ReceiptKeyPublication, Subscription, Tier},
};
use psp_runtime::{opaque::Block, AccountId, Balance, BlockNumber};
use sc_client_api::StorageProvider;
use sp_api::ProvideRuntimeApi;
use sp_blockchain::HeaderBackend;
use sp_core::storage::StorageKey;

use crate::chain_checks::FullBackend;

/// Epochs of keys the landing service accepts: the current one and the two before it (what
/// the pallet keeps).
const KEPT_EPOCHS: u32 = 3;

/// A psp-receipts ceiling from the chain's tier, if it is a valid one.
pub fn stream_params(tier: &Tier) -> Option<StreamParams> {
    StreamParams::from_codes(
        tier.lifetime_secs,
        tier.bitrate_class,
        tier.distribution_nodes,
    )
    .ok()
}

/// Subscriptions at the latest finalized block.
pub struct ChainSubscriptions<C> {
    client: Arc<C>,
    tiers: RwLock<Vec<Tier>>,
}

impl<C> ChainSubscriptions<C> {
    /// Reads through `client`; no plan is known until [`Self::set_tiers`].
    pub fn new(client: Arc<C>) -> Self {
        Self {
            client,
            tiers: RwLock::new(Vec::new()),
        }
    }

    /// The plans' tiers, by plan index.
    pub fn set_tiers(&self, tiers: Vec<Tier>) {
        *self.tiers.write().unwrap_or_else(|e| e.into_inner()) = tiers;
    }
}

impl<C> SubscriptionView for ChainSubscriptions<C>
where
    C: HeaderBackend<Block> + StorageProvider<Block, FullBackend> + Send + Sync,
{
    fn allowance(&self, identity: &[u8; 32], epoch: u64) -> Option<StreamParams> {
        let at = self.client.info().finalized_hash;
        let key = StorageKey(pallet_psp_subscriptions::Subscriptions::<
            psp_runtime::Runtime,
        >::hashed_key_for(identity));
        let data = match self.client.storage(at, &key) {
            Ok(data) => data?,
            Err(e) => {
                log::warn!(target: "psp-overlay", "subscription look-up failed: {e}");
                return None;
            }
        };
        let subscription = Subscription::<AccountId>::decode(&mut &data.0[..])
            .map_err(|e| log::warn!(target: "psp-overlay", "subscription does not decode: {e}"))
            .ok()?;
        if !subscription.covers(EpochIndex::try_from(epoch).ok()?) {
            return None;
        }
        let tiers = self.tiers.read().unwrap_or_else(|e| e.into_inner());
        stream_params(tiers.get(usize::from(subscription.plan))?)
    }
}

/// Refreshes (finalized blocks) between two submissions of the same publication.
const RESUBMIT_EVERY: u32 = 10;

/// Keys made for an epoch and not yet seen on chain.
struct Pending {
    /// One per plan tier.
    keys: Vec<(Tier, SigningKey)>,
    /// The consumer-token key, published under [`Tier::CONSUMER_TOKENS`].
    token: SigningKey,
    publication: ReceiptKeyPublication,
    refreshes: u32,
}

/// Issuing keys the chain confirmed: receipt keys (epoch, tier, key) and consumer-token keys
/// (epoch, key).
type Confirmed = (Vec<(u64, StreamParams, SigningKey)>, Vec<(u64, SigningKey)>);

/// The receipt keys: every oracle's for the landing service, this node's own as an oracle.
pub struct ReceiptKeys {
    node_key: Sr25519Keypair,
    genesis: [u8; 32],
    updates: SharedKeyUpdates,
    /// What the landing service was last given.
    last_published: Mutex<Vec<(u64, Vec<u8>)>>,
    /// Own keys by epoch, until the chain shows them.
    pending: Mutex<HashMap<EpochIndex, Pending>>,
    /// Every oracle's consumer-token keys by epoch, as of the latest refresh.
    token_keys: RwLock<BTreeMap<EpochIndex, Vec<TokenKey>>>,
    /// How long a published key is valid, in seconds.
    key_lifetime_secs: u64,
}

impl ReceiptKeys {
    /// The keys of the node with `node_key` on the chain with `genesis`, handed to the
    /// services through `updates`; its own keys are valid for `key_lifetime_secs`.
    pub fn new(
        node_key: Sr25519Keypair,
        genesis: [u8; 32],
        updates: SharedKeyUpdates,
        key_lifetime_secs: u64,
    ) -> Self {
        Self {
            node_key,
            genesis,
            updates,
            last_published: Mutex::new(Vec::new()),
            pending: Mutex::new(HashMap::new()),
            token_keys: RwLock::new(BTreeMap::new()),
            key_lifetime_secs,
        }
    }

    /// Every oracle's consumer-token key of `epoch` as of the latest refresh (empty for an
    /// epoch not read: the refresh reads the current epoch, the two before it and the next),
    /// for a collector's `TokenKeys`.
    pub fn token_keys(&self, epoch: EpochIndex) -> Vec<TokenKey> {
        self.token_keys
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(&epoch)
            .cloned()
            .unwrap_or_default()
    }

    /// Reads the latest finalized block (executes the runtime: call it from a blocking
    /// task); updates the services; returns the publications to submit.
    pub fn refresh<C>(
        &self,
        client: &C,
        subscriptions: &ChainSubscriptions<C>,
    ) -> Result<Vec<ReceiptKeyPublication>, sp_api::ApiError>
    where
        C: ProvideRuntimeApi<Block> + HeaderBackend<Block>,
        C::Api: PspStakingApi<Block, AccountId, Balance, BlockNumber>,
        C::Api: PspSubscriptionsApi<Block, AccountId, Balance>,
    {
        let at = client.info().finalized_hash;
        let api = client.runtime_api();
        let status = api.subscriptions_status(at)?;
        let epoch = status.current_epoch;
        let tiers: Vec<Tier> = status.plans.iter().map(|p| p.tier).collect();
        subscriptions.set_tiers(tiers.clone());

        let me = self.node_key.public();
        let mut published = Vec::new();
        let mut own_on_chain = HashMap::new();
        let mut token_keys: BTreeMap<EpochIndex, Vec<TokenKey>> = BTreeMap::new();
        for e in epoch.saturating_sub(KEPT_EPOCHS - 1)..=epoch.saturating_add(1) {
            for oracle in api.receipt_keys(at, e)? {
                if oracle.oracle == me {
                    own_on_chain.insert(e, oracle.keys.clone());
                }
                // Consumer-token keys go to the collector, never to the landing service.
                let (tokens, receipts): (Vec<ReceiptKey>, Vec<ReceiptKey>) = oracle
                    .keys
                    .into_iter()
                    .partition(|k| k.tier.is_consumer_tokens());
                for key in tokens {
                    match PublicKey::from_der(&key.public_key) {
                        Ok(public) => token_keys.entry(e).or_default().push(TokenKey {
                            public,
                            epoch: u64::from(e),
                            oracle: NodeId(oracle.oracle),
                        }),
                        Err(err) => log::warn!(
                            target: "psp-overlay",
                            "consumer-token key of oracle 0x{} for epoch {e} is unusable: {err}",
                            hex::encode(&oracle.oracle[..4])
                        ),
                    }
                }
                if e > epoch {
                    continue; // next epoch's keys: accepted once it starts
                }
                for key in receipts {
                    match published_key(e, &key) {
                        Some(k) => published.push(k),
                        None => log::warn!(
                            target: "psp-overlay",
                            "receipt key of oracle 0x{} for epoch {e} is unusable",
                            hex::encode(&oracle.oracle[..4])
                        ),
                    }
                }
            }
        }
        // Keys of epochs that passed without reaching the chain are of no use.
        self.pending
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|e, _| *e >= epoch);
        *self.token_keys.write().unwrap_or_else(|e| e.into_inner()) = token_keys;
        let (mut issuing, mut token_issuing) = self.take_confirmed(&own_on_chain);

        let mut publications = Vec::new();
        for e in [epoch, epoch.saturating_add(1)] {
            let elected = api
                .elected(at, Role::Oracle, e)?
                .unwrap_or_default()
                .iter()
                .any(|n| n.node == me);
            if !elected || own_on_chain.contains_key(&e) {
                continue;
            }
            match self.publication(e, &tiers) {
                Ok(Some(p)) => publications.push(p),
                Ok(None) => {}
                Err(e) => log::warn!(target: "psp-overlay", "receipt keys not made: {e}"),
            }
        }

        let fingerprint: Vec<(u64, Vec<u8>)> = published
            .iter()
            .map(|k| (k.epoch, k.public.to_der().to_vec()))
            .collect();
        let changed = {
            let mut last = self
                .last_published
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            let changed = *last != fingerprint;
            *last = fingerprint;
            changed
        };
        let mut updates = self.updates.lock().unwrap_or_else(|e| e.into_inner());
        updates.epoch = u64::from(epoch);
        updates.issuing.append(&mut issuing);
        updates.token_issuing.append(&mut token_issuing);
        if changed {
            updates.published = Some(published);
        }
        Ok(publications)
    }

    /// Own pending keys the chain now shows, as issuing keys (receipt keys, token keys);
    /// drops pending keys of epochs the chain shows other keys for (published before a
    /// restart).
    fn take_confirmed(&self, own_on_chain: &HashMap<EpochIndex, Vec<ReceiptKey>>) -> Confirmed {
        let mut pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        let mut issuing = Vec::new();
        let mut token_issuing = Vec::new();
        for (epoch, keys) in own_on_chain {
            let Some(mine) = pending.remove(epoch) else {
                continue;
            };
            if keys[..] != mine.publication.keys[..] {
                log::warn!(
                    target: "psp-overlay",
                    "the receipt keys on chain for epoch {epoch} are not the ones this node \
                     holds (published before a restart?): no receipts or tokens from this \
                     oracle in it"
                );
                continue;
            }
            for (tier, key) in mine.keys {
                if let Some(params) = stream_params(&tier) {
                    issuing.push((u64::from(*epoch), params, key));
                }
            }
            token_issuing.push((u64::from(*epoch), mine.token));
        }
        (issuing, token_issuing)
    }

    /// A signed publication of fresh keys for `epoch`, one per tier and the consumer-token
    /// key; the same one again every [`RESUBMIT_EVERY`] refreshes while the chain does not
    /// show it.
    fn publication(
        &self,
        epoch: EpochIndex,
        tiers: &[Tier],
    ) -> Result<Option<ReceiptKeyPublication>, String> {
        let mut pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(mine) = pending.get_mut(&epoch) {
            mine.refreshes = mine.refreshes.wrapping_add(1);
            let due = mine.refreshes % RESUBMIT_EVERY == 0;
            return Ok(due.then(|| mine.publication.clone()));
        }
        let expires_at = psp_net::driver::unix_now().saturating_add(self.key_lifetime_secs);
        let mut keys = Vec::new();
        let mut published = Vec::new();
        for tier in tiers.iter().filter(|t| stream_params(t).is_some()) {
            let key = SigningKey::generate(KeySize::Rsa2048).map_err(|e| e.to_string())?;
            published.push(receipt_key(*tier, &key, expires_at)?);
            keys.push((*tier, key));
        }
        let token = SigningKey::generate(KeySize::Rsa2048).map_err(|e| e.to_string())?;
        published.push(receipt_key(Tier::CONSUMER_TOKENS, &token, expires_at)?);
        let me = self.node_key.public();
        let signature =
            self.node_key
                .sign(&receipt_keys_message(&self.genesis, epoch, &me, &published));
        let publication = ReceiptKeyPublication {
            epoch,
            oracle: me,
            keys: published
                .try_into()
                .map_err(|_| "more keys than plans".to_string())?,
            signature,
        };
        log::info!(
            target: "psp-overlay",
            "🔑 oracle: {} receipt keys and a consumer-token key made for epoch {epoch}",
            keys.len()
        );
        pending.insert(
            epoch,
            Pending {
                keys,
                token,
                publication: publication.clone(),
                refreshes: 0,
            },
        );
        Ok(Some(publication))
    }
}

/// The chain's form of `key`'s public half for `tier`.
fn receipt_key(tier: Tier, key: &SigningKey, expires_at: u64) -> Result<ReceiptKey, String> {
    Ok(ReceiptKey {
        tier,
        public_key: key
            .public_key()
            .to_der()
            .to_vec()
            .try_into()
            .map_err(|_| "an RSA-2048 key longer than the chain allows".to_string())?,
        expires_at,
    })
}

/// A key as the landing service checks receipts against it (`None` for a key of no valid
/// stream tier, such as a consumer-token key).
fn published_key(epoch: EpochIndex, key: &ReceiptKey) -> Option<PublishedKey> {
    Some(PublishedKey {
        public: PublicKey::from_der(&key.public_key).ok()?,
        epoch: u64::from(epoch),
        tier: stream_params(&key.tier)?,
        expires_at: key.expires_at,
    })
}
