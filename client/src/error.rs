//! The crate's one error type, [`Error`], and the `PspIdentity` pallet's errors as
//! [`IdentityError`], each with a hint that tells the user what to do next.
//!
//! Every message is written for the person at the terminal: it names the file, account or
//! call involved and ends with an action (`pass --payer`, `generate a new key`, ...).

use std::path::PathBuf;

/// Everything that can go wrong in `psp_client`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// No passphrase was supplied; `psp` never prompts.
    #[error("no passphrase given: pass --passphrase-file FILE or set PSP_PASSPHRASE (psp never prompts)")]
    NoPassphrase,

    /// The passphrase file could not be read.
    #[error("cannot read passphrase file {path}: {source}")]
    PassphraseFile {
        /// The file named by `--passphrase-file`.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },

    /// The supplied passphrase is empty (after removing a trailing newline).
    #[error(
        "the passphrase is empty: put a non-empty passphrase in the file or in PSP_PASSPHRASE"
    )]
    EmptyPassphrase,

    /// The keystore file exists and overwriting was not allowed.
    #[error("keystore {path} already exists: pass --force to overwrite it (its keys are then lost), or choose another --out")]
    KeystoreExists {
        /// The existing file.
        path: PathBuf,
    },

    /// Reading or writing a keystore file failed.
    #[error("cannot {action} keystore {path}: {source}")]
    KeystoreIo {
        /// The keystore file.
        path: PathBuf,
        /// What was attempted (`read`, `write`, ...).
        action: &'static str,
        /// The I/O error.
        source: std::io::Error,
    },

    /// Reading or writing a file (other than a keystore) failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },

    /// The file is not a well-formed PSP keystore.
    #[error("{path} is not a valid PSP keystore ({reason}); check the path, or restore the file from a backup")]
    KeystoreFormat {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },

    /// The keystore has a format version this build does not know.
    #[error("keystore {path} has format version {found}, this psp reads version {supported}: use a matching psp")]
    KeystoreVersion {
        /// The file.
        path: PathBuf,
        /// The version in the file.
        found: u32,
        /// The version this build reads and writes.
        supported: u32,
    },

    /// The passphrase does not open the keystore.
    #[error("wrong passphrase for keystore {path}: check --passphrase-file / PSP_PASSPHRASE")]
    WrongPassphrase {
        /// The keystore file.
        path: PathBuf,
    },

    /// The passphrase is right but the encrypted part or the public keys fail authentication.
    #[error("keystore {path} failed its integrity check: the file was modified or corrupted; restore it from a backup")]
    KeystoreTampered {
        /// The keystore file.
        path: PathBuf,
    },

    /// The key derivation function refused its parameters.
    #[error("key derivation (Argon2id) failed: {reason}")]
    Kdf {
        /// The reason argon2 gave.
        reason: String,
    },

    /// A secret URI (`//Alice`, a mnemonic, `0x` seed) did not parse.
    #[error("invalid secret URI for {what}: {reason} (expected e.g. //Alice, a mnemonic phrase, or 0x + 64 hex digits)")]
    BadSuri {
        /// Which option carried it (`--payer`, ...).
        what: &'static str,
        /// Why it was refused.
        reason: String,
    },

    /// A contact offer or the contact book was refused.
    #[error(transparent)]
    Contact(#[from] crate::contacts::ContactError),

    /// A user-supplied value is malformed.
    #[error("invalid {what}: {reason}")]
    InvalidInput {
        /// Which value (`--key`, `--peer-id`, `namespace`, ...).
        what: &'static str,
        /// Why it was refused and what is expected.
        reason: String,
    },

    /// The node could not be reached or did not behave like a PSP node.
    #[error(
        "cannot connect to the node at {url}: {reason}. Is psp-node running, and is --url right?"
    )]
    Connect {
        /// The URL given.
        url: String,
        /// The underlying error.
        reason: String,
    },

    /// A JSON-RPC call failed.
    #[error("RPC call {method} failed: {reason}")]
    Rpc {
        /// The method, e.g. `psp_identityByKey`.
        method: &'static str,
        /// The node's error or the transport error.
        reason: String,
    },

    /// The node refused the transaction before it reached a block (invalid, dropped, ...).
    #[error("the node rejected the {call} transaction: {reason}. {hint}")]
    TxRejected {
        /// The call, e.g. `PspIdentity.register`.
        call: &'static str,
        /// The node's reason.
        reason: String,
        /// What to do about it.
        hint: String,
    },

    /// The transaction was included in a block but its dispatch failed; the fee was paid.
    #[error("{0}")]
    Dispatch(Box<DispatchFailure>),

    /// The transaction did not reach a finalized block in time.
    #[error("{call} was not finalized within {waited_secs} s (last status: {last_status}); check that the node is producing and finalizing blocks")]
    Timeout {
        /// The call.
        call: &'static str,
        /// How long we waited.
        waited_secs: u64,
        /// The last status seen.
        last_status: String,
    },

    /// An earlier rotation whose outcome is unknown left its staged keystore behind.
    #[error("an earlier rotation left {pending} behind and its outcome is unknown: if `psp identity show --keystore` reports that file's x25519 key, move it over the keystore, otherwise delete it; then retry")]
    RotationPending {
        /// The staged keystore of the earlier rotation.
        pending: PathBuf,
    },

    /// Private messaging (the agent, its control socket, presence, channels) failed.
    #[error(transparent)]
    Messaging(#[from] crate::messaging::MessagingError),

    /// Stream creation or look-up failed (the message says where and why).
    #[error(transparent)]
    Stream(Box<crate::stream::StreamClientError>),

    /// No identity is registered under the key.
    #[error(
        "no identity is registered under key {key}; register it first with `psp identity register`"
    )]
    IdentityNotFound {
        /// The key, `0x` + hex.
        key: String,
    },

    /// A look-up found nothing (the message says what and where).
    #[error("{0}")]
    NotFound(String),

    /// The chain has no usable registered overlay node.
    #[error("no overlay nodes are registered on the chain at {url} ({unusable} node records at the finalized block, none usable): register relays with `psp identity register-node --node-url ws://NODE:RPC --payer SURI` and wait for finality")]
    NoRegisteredNodes {
        /// The chain's URL.
        url: String,
        /// Node records seen but unusable (bad address, ...).
        unusable: usize,
    },

    /// Fewer distinct registered nodes than the circuit needs.
    #[error("a {hops}-hop circuit needs {hops} distinct nodes but only {registered} are registered (finalized) and usable ({named} named with --via); lower --hops or register more relays")]
    NotEnoughNodes {
        /// Hops asked for.
        hops: usize,
        /// Usable registered nodes.
        registered: usize,
        /// Hops named with `--via`.
        named: usize,
    },

    /// A `--via` hop is not among the registered nodes.
    #[error("--via {hop} is not an active node registered at the latest finalized block ({registered} are): register it with `psp identity register-node`, wait for finality, or pass its RPC URL (ws://...) to use it unregistered")]
    UnknownHop {
        /// The node key asked for.
        hop: String,
        /// How many nodes are registered.
        registered: usize,
    },

    /// A node record (on chain or from a node's RPC) cannot be used as a hop.
    #[error("node {node} cannot be used as a hop: {reason}")]
    BadNodeRecord {
        /// The node's id string or key.
        node: String,
        /// What is wrong.
        reason: String,
    },

    /// A relay refused to extend the circuit (the chain check of the next hop).
    #[error("circuit build refused: hop {hop} ({by}) refused to extend the circuit to hop {next} ({target}): {reason}", next = hop + 1)]
    ExtendRefused {
        /// Position (1-based) of the refusing hop on the path.
        hop: usize,
        /// The refusing node.
        by: String,
        /// The node it refused to extend to.
        target: String,
        /// Why (from the chain's view of the target).
        reason: String,
    },

    /// An onion circuit operation failed.
    #[error("{what}: {source}")]
    Circuit {
        /// What was being done.
        what: String,
        /// The driver's error.
        #[source]
        source: psp_net::driver::DriverError,
    },

    /// An onion circuit operation took too long.
    #[error("{what}: no progress within {secs} s; check that the relays run and are reachable")]
    CircuitTimeout {
        /// What was being done.
        what: String,
        /// How long we waited.
        secs: u64,
    },

    /// The echo service sent back other bytes than were sent.
    #[error("echo check failed at byte {offset}: {detail}")]
    EchoMismatch {
        /// Offset of the first wrong byte.
        offset: usize,
        /// What differed.
        detail: String,
    },

    /// The echo stream ended before every byte came back.
    #[error("echo incomplete: {received} of {expected} bytes came back ({reason}); if the circuit closed with QueueOverflow, lower --rate below the relays' circuit rate")]
    EchoIncomplete {
        /// Bytes received.
        received: usize,
        /// Bytes sent.
        expected: usize,
        /// Why it ended.
        reason: String,
    },

    /// A lower-level subxt error (metadata, storage decoding, transport).
    #[error("{context}: {source}")]
    Subxt {
        /// What we were doing.
        context: String,
        /// The subxt error.
        #[source]
        source: Box<subxt::Error>,
    },
}

impl Error {
    /// The `PspIdentity` pallet error behind this error, if it is one.
    pub fn identity_error(&self) -> Option<IdentityError> {
        match self {
            Error::Dispatch(failure) => failure.identity_error,
            _ => None,
        }
    }

    pub(crate) fn subxt(context: impl Into<String>) -> impl FnOnce(subxt::Error) -> Error {
        let context = context.into();
        move |source| Error::Subxt {
            context,
            source: Box::new(source),
        }
    }
}

/// A transaction that reached a block but whose dispatch failed: which error, where, and what
/// to do about it.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{call} failed in block {block}: {error}. {hint}", block = crate::hex0x(block_hash), error = self.error_name())]
pub struct DispatchFailure {
    /// The call, e.g. `PspIdentity.register`.
    pub call: &'static str,
    /// The pallet that returned the error (empty for a system-level `DispatchError`).
    pub pallet: String,
    /// The error's name, e.g. `AlreadyRegistered`.
    pub name: String,
    /// The error as a typed `PspIdentity` error, if it is one.
    pub identity_error: Option<IdentityError>,
    /// What to do about it.
    pub hint: String,
    /// The block the failed transaction is in.
    pub block_hash: [u8; 32],
    /// The fee the signer was charged, if the block's events report it.
    pub fee_paid: Option<u128>,
}

impl DispatchFailure {
    /// `Pallet::Error`, or just the error for system-level dispatch errors.
    pub fn error_name(&self) -> String {
        if self.pallet.is_empty() {
            self.name.clone()
        } else {
            format!("{}::{}", self.pallet, self.name)
        }
    }
}

/// A shorthand for results with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

macro_rules! identity_errors {
    ($($(#[$doc:meta])* $name:ident => $hint:expr,)+) => {
        /// The errors of the `PspIdentity` pallet, by name as the chain's metadata reports them.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        #[non_exhaustive]
        pub enum IdentityError {
            $($(#[$doc])* $name,)+
        }

        impl IdentityError {
            /// Every error, in the pallet's order.
            pub const ALL: &'static [IdentityError] = &[$(IdentityError::$name,)+];

            /// The error's name in the runtime metadata.
            pub fn name(self) -> &'static str {
                match self { $(IdentityError::$name => stringify!($name),)+ }
            }

            /// What the user should do about it.
            pub fn hint(self) -> &'static str {
                match self { $(IdentityError::$name => $hint,)+ }
            }
        }
    };
}

identity_errors! {
    /// The identity key is already registered.
    AlreadyRegistered => "this key is already registered; generate a new key with `psp key generate` or rotate the existing identity with `psp identity rotate`",
    /// No identity under this key.
    NotRegistered => "no identity is registered under this key; register it first with `psp identity register`",
    /// The identity was revoked; its key is dead for good.
    IdentityRevoked => "this identity was revoked and its key can never be used or registered again; generate a new key with `psp key generate` and register that",
    /// The signer is not the identity's owner.
    NotOwner => "only the account that registered (paid for) the identity may change it; pass that account with --payer SURI",
    /// The identity key's signature did not verify.
    BadProof => "the identity key's signature did not verify: make sure the keystore holds the key being registered and that --url is the chain the proof was made for (the proof binds the genesis hash and the paying account)",
    /// A namespace is longer than 32 bytes.
    NamespaceTooLong => "namespaces are at most 32 characters; shorten --namespace / --app",
    /// A namespace has invalid characters.
    InvalidNamespace => "namespaces use only a-z, 0-9 and '-' and do not start with '-'; fix --namespace / --app",
    /// A node identity lacks its peer id.
    NodeDetailsRequired => "a node identity needs --peer-id HEX (and normally one or more --address HEX)",
    /// Peer id or addresses given for a non-node identity.
    NodeDetailsNotAllowed => "only --kind node takes --peer-id / --address; drop them or use --kind node",
    /// The peer id is too long.
    PeerIdTooLong => "the peer id is longer than the chain allows; pass the libp2p peer id's multihash bytes as hex",
    /// Too many addresses.
    TooManyAddresses => "too many --address values for the chain's limit; pass fewer",
    /// An address is empty or too long.
    BadAddress => "an --address is empty or too long; pass each multiaddr as the hex of its bytes",
    /// The rotation nonce is stale.
    StaleRotation => "another rotation landed first; run `psp identity rotate` again to use the current rotation count",
    /// The payer cannot cover the deposit.
    InsufficientBalance => "the paying account cannot cover the identity deposit; fund it, or pass --payer SURI with a funded account",
}

impl IdentityError {
    /// Looks an error up by its metadata name.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|e| e.name() == name)
    }
}

impl std::fmt::Display for IdentityError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// The hint for a dispatch error reported by the chain: ours for `PspIdentity` errors, else the
/// runtime's own documentation of the error, else a generic one.
pub fn dispatch_hint(pallet: &str, name: &str, docs: &str) -> String {
    if pallet == "PspIdentity" {
        if let Some(err) = IdentityError::from_name(name) {
            return err.hint().to_string();
        }
    }
    match (pallet, name) {
        ("Balances", "InsufficientBalance") | ("", "Token(FundsUnavailable)") => {
            "the paying account lacks funds; fund it, or pass --payer SURI with a funded account"
                .to_string()
        }
        ("", "BadOrigin") => {
            "this call needs another origin (force_revoke is root only)".to_string()
        }
        _ if !docs.trim().is_empty() => format!("The runtime says: {}", docs.trim()),
        _ => "see the runtime's documentation of this error".to_string(),
    }
}

/// The hint for a transaction the node refused before inclusion, from the node's reason.
pub fn rejection_hint(reason: &str, payer: &str) -> String {
    let lower = reason.to_ascii_lowercase();
    if lower.contains("pay") || lower.contains("balance too low") {
        format!(
            "the paying account {payer} cannot pay the transaction fee: fund it, or pass --payer SURI \
             with a funded account (on a dev chain, //Alice)"
        )
    } else if lower.contains("stale") || lower.contains("future") || lower.contains("priority") {
        format!(
            "another transaction from {payer} is in flight or its nonce is out of date; wait for it and retry"
        )
    } else if lower.contains("ancient") || lower.contains("outdated") || lower.contains("bad proof")
    {
        "the transaction was built against an old block; retry".to_string()
    } else if lower.contains("exhausts the resources") || lower.contains("too large") {
        "the transaction is too large for a block; shorten its inputs".to_string()
    } else {
        "check that --url points at a PSP node and that the paying account is funded".to_string()
    }
}
