//! The node's overlay identity (sr25519 node key, X25519 onion key, libp2p link key), derived
//! from one 32-byte secret: from `--overlay-seed` for well-known dev identities, otherwise
//! from a file `overlay/secret` under the node's base path, created on first start (mode
//! 0600).

use psp_net::{
    crypto::OnionSecret,
    driver::{node_address, Keypair},
};
use psp_primitives::{IdentityKind, NodeDetails, Registration};
use sp_core::{sr25519, Pair};
use std::path::{Path, PathBuf};

use super::OverlayParams;

/// Why the overlay could not start.
#[derive(Debug, thiserror::Error)]
pub enum OverlayError {
    /// The secret file could not be read or created.
    #[error("overlay secret file {path}: {source}")]
    SecretFile {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The secret file exists but is not 32 bytes.
    #[error("overlay secret file {0} is not 32 bytes; delete it to create a new identity")]
    BadSecretFile(PathBuf),
    /// The libp2p link key could not be derived.
    #[error("overlay link key: {0}")]
    LinkKey(String),
}

/// The node's overlay identity: the keys it registers on chain and serves with.
pub struct OverlayIdentity {
    /// sr25519 identity key pair (its public key is the node id).
    pub id: sr25519::Pair,
    id_seed: [u8; 32],
    pub(super) onion_secret: [u8; 32],
    /// X25519 onion public key.
    pub onion_public: [u8; 32],
    /// libp2p link key.
    pub link_key: Keypair,
    /// The address registered on chain (`.../p2p/<peer id>`).
    pub address: String,
    /// The media service's address, registered second
    /// ([`psp_webrtc::address::media_address`], `/ip4/<ip>/tcp/<port>/http`); `None` with
    /// `--no-media`.
    pub media_address: Option<String>,
}

fn derive(master: &[u8; 32], label: &[u8]) -> [u8; 32] {
    let mut input = Vec::with_capacity(label.len() + 32);
    input.extend_from_slice(label);
    input.extend_from_slice(master);
    sp_crypto_hashing::blake2_256(&input)
}

fn load_or_create_secret(dir: &Path) -> Result<[u8; 32], OverlayError> {
    let path = dir.join("overlay").join("secret");
    let io = |source| OverlayError::SecretFile {
        path: path.clone(),
        source,
    };
    match std::fs::read(&path) {
        Ok(bytes) => bytes
            .try_into()
            .map_err(|_| OverlayError::BadSecretFile(path.clone())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let mut secret = [0u8; 32];
            rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut secret);
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent).map_err(io)?;
            }
            write_private(&path, &secret).map_err(io)?;
            Ok(secret)
        }
        Err(e) => Err(io(e)),
    }
}

fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::{io::Write, os::unix::fs::OpenOptionsExt};
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(bytes)
}

impl OverlayIdentity {
    /// Derives the identity from `--overlay-seed` or the secret file under `base_path`.
    pub fn load(params: &OverlayParams, base_path: &Path) -> Result<Self, OverlayError> {
        let master = match &params.overlay_seed {
            Some(seed) => sp_crypto_hashing::blake2_256(
                &[b"psp/overlay/seed/".as_slice(), seed.as_bytes()].concat(),
            ),
            None => load_or_create_secret(base_path)?,
        };
        let id_seed = derive(&master, b"psp/overlay/id");
        let id = sr25519::Pair::from_seed(&id_seed);
        let onion_secret = derive(&master, b"psp/overlay/onion");
        let onion_public = OnionSecret::from_bytes(onion_secret).public().0;
        let link_key = Keypair::ed25519_from_bytes(derive(&master, b"psp/overlay/link"))
            .map_err(|e| OverlayError::LinkKey(e.to_string()))?;
        let public = params
            .overlay_public_addr
            .clone()
            .unwrap_or_else(|| params.listen());
        let address = node_address(&public, link_key.public().to_peer_id());
        let media_address = params
            .media_public()
            .map(psp_webrtc::address::media_address);
        Ok(Self {
            id,
            id_seed,
            onion_secret,
            onion_public,
            link_key,
            address,
            media_address,
        })
    }

    /// The node id (sr25519 public key).
    pub fn node_id(&self) -> [u8; 32] {
        self.id.public().0
    }

    /// The node key, for psp-net's signed data (certificates, directories, DHT records).
    pub fn signing_key(&self) -> psp_net::crypto::Sr25519Keypair {
        psp_net::crypto::Sr25519Keypair::from_seed(&self.id_seed)
    }

    /// The registration this node asks its operator to submit, and the identity key's proof
    /// of possession for `owner` on the chain with `genesis`. Its addresses are the overlay's
    /// multiaddr, then the media service's address (unless `--no-media`).
    pub fn registration(
        &self,
        genesis: &[u8; 32],
        owner: &psp_runtime::AccountId,
        namespace: &str,
        app_namespace: &str,
    ) -> (Registration, [u8; 64]) {
        let registration = Registration {
            kind: IdentityKind::Node,
            namespace: namespace.as_bytes().to_vec(),
            app_namespace: app_namespace.as_bytes().to_vec(),
            key: self.node_id(),
            x25519: self.onion_public,
            node: Some(NodeDetails {
                peer_id: self.link_key.public().to_peer_id().to_bytes(),
                addresses: std::iter::once(&self.address)
                    .chain(&self.media_address)
                    .map(|a| a.clone().into_bytes())
                    .collect(),
            }),
        };
        let message = psp_primitives::registration_message(genesis, owner, &registration);
        (registration, self.id.sign(&message).0)
    }
}
