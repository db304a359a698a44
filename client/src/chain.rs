//! Talking to a PSP node: the `PspIdentity` calls, balances, and the `psp_*` look-ups.
//!
//! Calls are built dynamically by pallet and call *name*, and their arguments are the SCALE
//! encoding of the very `psp_primitives` types the runtime decodes (wrapped in
//! [`subxt::utils::Static`]), so the bytes match the runtime whatever its pallet and call
//! indices are. Every transaction is signed with the `PolkadotConfig` extensions (which cover
//! `CheckMetadataHash` in disabled mode; the runtime's other extensions carry no data),
//! submitted, followed through validated → in block → finalized with a [`Progress`] callback,
//! and judged by the events of its finalized block: a failed dispatch becomes
//! [`Error::Dispatch`] with the pallet error's name and a hint.

use crate::{
    error::{dispatch_hint, rejection_hint, DispatchFailure, Error, IdentityError, Result},
    hex0x,
};
use codec::Decode;
use psp_primitives::{
    registration_message, rotation_message, rpc::IdentityView, Registration, Rotation,
};
use std::time::Duration;
use subxt::{
    config::PolkadotExtrinsicParamsBuilder,
    dynamic::{At, Value},
    error::{DispatchError, TransactionEventsError},
    ext::scale_encode::EncodeAsFields,
    rpcs::{rpc_params, RpcClient},
    tx::{DynamicPayload, TransactionStatus},
    utils::{AccountId32, Static, H256},
    OnlineClient, PolkadotConfig,
};
use subxt_signer::{sr25519::Keypair, SecretUri};

/// The runtime's name of the identity pallet.
pub const PALLET: &str = "PspIdentity";
/// How long a transaction may take to reach a finalized block by default.
pub const DEFAULT_TX_TIMEOUT: Duration = Duration::from_secs(180);

/// A step in the life of a submitted transaction.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Progress {
    /// Signed and handed to the node.
    Submitted {
        /// The call, e.g. `PspIdentity.register`.
        call: &'static str,
        /// The transaction hash.
        tx_hash: [u8; 32],
    },
    /// The node's pool accepted it.
    Validated,
    /// Gossiped to peers.
    Broadcast,
    /// Included in a best block.
    InBlock {
        /// The block hash.
        block_hash: [u8; 32],
    },
    /// The block holding it left the best chain; it will be included again.
    Retracted,
    /// Included in a finalized block.
    Finalized {
        /// The block hash.
        block_hash: [u8; 32],
    },
}

impl std::fmt::Display for Progress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Progress::Submitted { call, tx_hash } => {
                write!(f, "submitted {call} (tx {})", hex0x(tx_hash))
            }
            Progress::Validated => f.write_str("validated by the node"),
            Progress::Broadcast => f.write_str("broadcast"),
            Progress::InBlock { block_hash } => write!(f, "in block {}", hex0x(block_hash)),
            Progress::Retracted => f.write_str("block retracted, waiting for re-inclusion"),
            Progress::Finalized { block_hash } => {
                write!(f, "finalized in block {}", hex0x(block_hash))
            }
        }
    }
}

/// A transaction that was finalized and dispatched successfully.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TxOutcome {
    /// The finalized block holding it.
    pub block_hash: [u8; 32],
    /// The transaction hash.
    pub tx_hash: [u8; 32],
    /// The fee charged to the signer, if the block's events report it.
    pub fee_paid: Option<u128>,
    /// The transaction's events, as `Pallet.Event` names.
    pub events: Vec<String>,
}

/// An account's balances.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AccountBalance {
    /// Free balance.
    pub free: u128,
    /// Reserved balance; held deposits (identity deposits among them) count here.
    pub reserved: u128,
    /// Frozen balance.
    pub frozen: u128,
}

/// Parses a secret URI (`//Alice`, a mnemonic with optional `//derivation`, `0x` seed) into an
/// sr25519 key pair; `what` names the option in errors.
pub fn keypair_from_suri(suri: &str, what: &'static str) -> Result<Keypair> {
    let uri: SecretUri =
        suri.parse()
            .map_err(|e: subxt_signer::SecretUriError| Error::BadSuri {
                what,
                reason: e.to_string(),
            })?;
    Keypair::from_uri(&uri).map_err(|e| Error::BadSuri {
        what,
        reason: e.to_string(),
    })
}

/// The SS58 (prefix 42) address of a 32-byte account id.
pub fn ss58(account: &[u8; 32]) -> String {
    AccountId32(*account).to_string()
}

/// Parses an SS58 address of any prefix into its 32 bytes.
pub fn parse_ss58(address: &str) -> Result<[u8; 32]> {
    address
        .parse::<AccountId32>()
        .map(|a| a.0)
        .map_err(|e| Error::InvalidInput {
            what: "SS58 address",
            reason: e.to_string(),
        })
}

/// Signs a registration with the identity key: the proof the `register` call carries.
pub fn registration_proof(
    genesis: &[u8; 32],
    owner: &[u8; 32],
    identity: &Keypair,
    registration: &Registration,
) -> [u8; 64] {
    identity
        .sign(&registration_message(genesis, owner, registration))
        .0
}

/// Signs a rotation with the identity key: the proof the `rotate` call carries.
pub fn rotation_proof(genesis: &[u8; 32], identity: &Keypair, rotation: &Rotation) -> [u8; 64] {
    identity.sign(&rotation_message(genesis, rotation)).0
}

/// A connection to a PSP node.
#[derive(Clone)]
pub struct Chain {
    url: String,
    rpc: RpcClient,
    client: OnlineClient<PolkadotConfig>,
    genesis: [u8; 32],
    tx_timeout: Duration,
}

impl std::fmt::Debug for Chain {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Chain")
            .field("url", &self.url)
            .field("genesis", &hex0x(&self.genesis))
            .finish_non_exhaustive()
    }
}

impl Chain {
    /// Connects to the node at `url` (`ws://` or `wss://`) and reads its genesis hash and metadata.
    pub async fn connect(url: &str) -> Result<Self> {
        let connect_err = |reason: String| Error::Connect {
            url: url.to_string(),
            reason,
        };
        let rpc = RpcClient::from_insecure_url(url)
            .await
            .map_err(|e| connect_err(e.to_string()))?;
        let client = OnlineClient::<PolkadotConfig>::from_rpc_client(rpc.clone())
            .await
            .map_err(|e| connect_err(e.to_string()))?;
        let chain = Self {
            url: url.to_string(),
            rpc,
            genesis: client.genesis_hash().0,
            client,
            tx_timeout: DEFAULT_TX_TIMEOUT,
        };
        // Fail early, with a clear message, against a node without the identity pallet.
        let at = chain
            .client
            .at_current_block()
            .await
            .map_err(|e| connect_err(e.to_string()))?;
        if at.metadata_ref().pallet_by_name(PALLET).is_none() {
            return Err(connect_err(format!(
                "the chain has no {PALLET} pallet; is this a PSP node?"
            )));
        }
        Ok(chain)
    }

    /// Sets how long [`Chain::register`] and friends wait for finality.
    pub fn with_tx_timeout(mut self, timeout: Duration) -> Self {
        self.tx_timeout = timeout;
        self
    }

    /// The URL this connection was made to.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The chain's genesis hash (block 0), which every identity proof binds.
    pub fn genesis_hash(&self) -> [u8; 32] {
        self.genesis
    }

    /// The underlying subxt client, for anything this crate does not wrap.
    pub fn client(&self) -> &OnlineClient<PolkadotConfig> {
        &self.client
    }

    /// The raw JSON-RPC client, for methods this crate does not wrap.
    pub fn rpc(&self) -> &RpcClient {
        &self.rpc
    }

    /// The number of the latest finalized block.
    pub async fn finalized_number(&self) -> Result<u64> {
        let at = self
            .client
            .at_current_block()
            .await
            .map_err(|e| Error::subxt("reading the finalized block")(e.into()))?;
        Ok(at.block_number())
    }

    /// The hash of block `number` (`chain_getBlockHash`).
    pub async fn block_hash(&self, number: u64) -> Result<[u8; 32]> {
        let hash: Option<String> = self
            .request("chain_getBlockHash", subxt::rpcs::rpc_params![number])
            .await?;
        let hash = hash.ok_or_else(|| Error::Rpc {
            method: "chain_getBlockHash",
            reason: format!("no block {number}"),
        })?;
        crate::parse_hex::<32>(&hash, "chain_getBlockHash")
    }

    /// Registers an identity: the identity key signs the registration for `payer`, who pays
    /// the fee and the deposit and becomes the owner.
    pub async fn register(
        &self,
        payer: &Keypair,
        identity: &Keypair,
        registration: Registration,
        progress: impl FnMut(Progress) + Send,
    ) -> Result<TxOutcome> {
        let proof = registration_proof(
            &self.genesis,
            &payer.public_key().0,
            identity,
            &registration,
        );
        self.register_with_proof(payer, registration, proof, progress)
            .await
    }

    /// Submits `register` with a caller-made proof (for tooling and tests of bad proofs).
    pub async fn register_with_proof(
        &self,
        payer: &Keypair,
        registration: Registration,
        proof: [u8; 64],
        progress: impl FnMut(Progress) + Send,
    ) -> Result<TxOutcome> {
        let payload = subxt::tx::dynamic(PALLET, "register", (Static(registration), Static(proof)));
        self.submit("PspIdentity.register", payload, payer, progress)
            .await
    }

    /// Replaces the identity's X25519 key (and, for nodes, addresses if `addresses` is `Some`).
    /// `owner` signs the transaction; the identity key signs the rotation, whose nonce is read
    /// from the chain.
    pub async fn rotate(
        &self,
        owner: &Keypair,
        identity: &Keypair,
        x25519: [u8; 32],
        addresses: Option<Vec<Vec<u8>>>,
        progress: impl FnMut(Progress) + Send,
    ) -> Result<TxOutcome> {
        let key = identity.public_key().0;
        let current = self
            .identity_by_key(&key, None)
            .await?
            .ok_or_else(|| Error::IdentityNotFound { key: hex0x(&key) })?;
        let rotation = Rotation {
            key,
            x25519,
            addresses,
            nonce: current.rotations,
        };
        let proof = rotation_proof(&self.genesis, identity, &rotation);
        let payload = subxt::tx::dynamic(PALLET, "rotate", (Static(rotation), Static(proof)));
        self.submit("PspIdentity.rotate", payload, owner, progress)
            .await
    }

    /// Revokes the identity under `key`, releasing its deposit to `owner`.
    pub async fn revoke(
        &self,
        owner: &Keypair,
        key: [u8; 32],
        progress: impl FnMut(Progress) + Send,
    ) -> Result<TxOutcome> {
        let payload = subxt::tx::dynamic(PALLET, "revoke", (Static(key),));
        self.submit("PspIdentity.revoke", payload, owner, progress)
            .await
    }

    /// The balances of `account` at the latest finalized block, or at `at`.
    pub async fn balance(
        &self,
        account: &[u8; 32],
        at: Option<[u8; 32]>,
    ) -> Result<AccountBalance> {
        let context = || format!("reading the balance of {}", ss58(account));
        let block = match at {
            Some(hash) => self.client.at_block(H256(hash)).await,
            None => self.client.at_current_block().await,
        }
        .map_err(|e| Error::subxt(context())(e.into()))?;
        let address = subxt::dynamic::storage::<([u8; 32],), Value>("System", "Account");
        let value = block
            .storage()
            .fetch(address, (*account,))
            .await
            .map_err(|e| Error::subxt(context())(e.into()))?
            .decode()
            .map_err(|e| Error::subxt(context())(e.into()))?;
        let field = |name: &str| -> Result<u128> {
            value
                .at("data")
                .at(name)
                .and_then(|v| v.as_u128())
                .ok_or_else(|| Error::Rpc {
                    method: "state_getStorage",
                    reason: format!("System.Account has no numeric data.{name}"),
                })
        };
        Ok(AccountBalance {
            free: field("free")?,
            reserved: field("reserved")?,
            frozen: field("frozen")?,
        })
    }

    /// `psp_identityByKey`: the identity under `key` (revoked ones included) at the best block
    /// or at `at`.
    pub async fn identity_by_key(
        &self,
        key: &[u8; 32],
        at: Option<[u8; 32]>,
    ) -> Result<Option<IdentityView>> {
        let at = at.map(|h| hex0x(&h));
        self.rpc
            .request("psp_identityByKey", rpc_params![hex0x(key), at])
            .await
            .map_err(|e| Error::Rpc {
                method: "psp_identityByKey",
                reason: e.to_string(),
            })
    }

    /// `psp_identityById`: the identity an id string names, at the best block or at `at`.
    pub async fn identity_by_id(
        &self,
        id: &str,
        at: Option<[u8; 32]>,
    ) -> Result<Option<IdentityView>> {
        let at = at.map(|h| hex0x(&h));
        self.rpc
            .request("psp_identityById", rpc_params![id, at])
            .await
            .map_err(|e| Error::Rpc {
                method: "psp_identityById",
                reason: e.to_string(),
            })
    }

    /// A JSON-RPC request to the node, its failure named by `method`.
    pub(crate) async fn request<R: serde::de::DeserializeOwned>(
        &self,
        method: &'static str,
        params: subxt::rpcs::client::RpcParams,
    ) -> Result<R> {
        self.rpc
            .request(method, params)
            .await
            .map_err(|e| Error::Rpc {
                method,
                reason: e.to_string(),
            })
    }

    pub(crate) async fn submit<CD: EncodeAsFields>(
        &self,
        call: &'static str,
        payload: DynamicPayload<CD>,
        signer: &Keypair,
        progress: impl FnMut(Progress) + Send,
    ) -> Result<TxOutcome> {
        let mut last = String::from("not yet submitted");
        let waited = tokio::time::timeout(
            self.tx_timeout,
            self.submit_and_follow(call, payload, signer, progress, &mut last),
        )
        .await;
        match waited {
            Ok(result) => result,
            Err(_) => Err(Error::Timeout {
                call,
                waited_secs: self.tx_timeout.as_secs(),
                last_status: last,
            }),
        }
    }

    async fn submit_and_follow<CD: EncodeAsFields>(
        &self,
        call: &'static str,
        payload: DynamicPayload<CD>,
        signer: &Keypair,
        mut progress: impl FnMut(Progress) + Send,
        last: &mut String,
    ) -> Result<TxOutcome> {
        let payer = ss58(&signer.public_key().0);
        let rejected = |reason: String| Error::TxRejected {
            call,
            hint: rejection_hint(&reason, &payer),
            reason,
        };
        let mut tx = self
            .client
            .tx()
            .await
            .map_err(|e| Error::subxt(format!("preparing {call}"))(e.into()))?;
        // The pool's view of the next nonce: it counts transactions still in the pool, and it
        // does not lag behind a block we just saw finalized (the client's own finalized-block
        // view can, which would make back-to-back transactions reuse a nonce).
        let nonce: u64 = self
            .rpc
            .request("system_accountNextIndex", rpc_params![payer.clone()])
            .await
            .map_err(|e| Error::Rpc {
                method: "system_accountNextIndex",
                reason: e.to_string(),
            })?;
        let params = PolkadotExtrinsicParamsBuilder::<PolkadotConfig>::new()
            .nonce(nonce)
            .build();
        let mut watch = tx
            .sign_and_submit_then_watch(&payload, signer, params)
            .await
            .map_err(|e| rejected(e.to_string()))?;
        let tx_hash = watch.extrinsic_hash().0;
        let mut emit = |p: Progress, last: &mut String| {
            *last = p.to_string();
            progress(p);
        };
        emit(Progress::Submitted { call, tx_hash }, last);
        while let Some(status) = watch.next().await {
            let status = status.map_err(|e| Error::subxt(format!("following {call}"))(e.into()))?;
            match status {
                TransactionStatus::Validated => emit(Progress::Validated, last),
                TransactionStatus::Broadcasted => emit(Progress::Broadcast, last),
                TransactionStatus::NoLongerInBestBlock => emit(Progress::Retracted, last),
                TransactionStatus::InBestBlock(b) => emit(
                    Progress::InBlock {
                        block_hash: b.block_hash().0,
                    },
                    last,
                ),
                TransactionStatus::InFinalizedBlock(b) => {
                    let block_hash = b.block_hash().0;
                    emit(Progress::Finalized { block_hash }, last);
                    let events = b.fetch_events().await.map_err(|e| {
                        Error::subxt(format!("fetching the events of {call}"))(e.into())
                    })?;
                    let mut names = Vec::new();
                    let mut fee_paid = None;
                    for ev in events.iter().flatten() {
                        names.push(format!("{}.{}", ev.pallet_name(), ev.event_name()));
                        if ev.pallet_name() == "TransactionPayment"
                            && ev.event_name() == "TransactionFeePaid"
                        {
                            if let Ok((_who, fee, tip)) =
                                <([u8; 32], u128, u128)>::decode(&mut ev.field_bytes())
                            {
                                fee_paid = Some(fee.saturating_add(tip));
                            }
                        }
                    }
                    return match b.wait_for_success().await {
                        Ok(_) => Ok(TxOutcome {
                            block_hash,
                            tx_hash,
                            fee_paid,
                            events: names,
                        }),
                        Err(TransactionEventsError::ExtrinsicFailed(err)) => {
                            Err(dispatch_failure(call, &err, block_hash, fee_paid))
                        }
                        Err(e) => Err(Error::subxt(format!("checking the result of {call}"))(
                            e.into(),
                        )),
                    };
                }
                TransactionStatus::Error { message }
                | TransactionStatus::Invalid { message }
                | TransactionStatus::Dropped { message } => return Err(rejected(message)),
            }
        }
        Err(rejected(
            "the node closed the transaction's status stream".into(),
        ))
    }
}

fn dispatch_failure(
    call: &'static str,
    err: &DispatchError,
    block_hash: [u8; 32],
    fee_paid: Option<u128>,
) -> Error {
    let (pallet, name, docs) = match err {
        DispatchError::Module(module) => match module.details() {
            Ok(d) => (
                d.pallet.name().to_string(),
                d.variant.name.clone(),
                d.variant.docs.join(" "),
            ),
            Err(_) => (String::new(), module.to_string(), String::new()),
        },
        other => (String::new(), format!("{other:?}"), other.to_string()),
    };
    let identity_error = if pallet == PALLET {
        IdentityError::from_name(&name)
    } else {
        None
    };
    Error::Dispatch(Box::new(DispatchFailure {
        call,
        hint: dispatch_hint(&pallet, &name, &docs),
        pallet,
        name,
        identity_error,
        block_hash,
        fee_paid,
    }))
}
