//! The identity life cycle around the chain calls: building a checked [`Registration`] from
//! its parts, looking an identity up by key or id string, and staging a rotated keystore so
//! that no crash can lose the new X25519 secret.
//!
//! A rotation is crash-safe in three steps: [`StagedRotation::stage`] writes the rotated
//! keystore next to the current one (`<keystore>.rotating`) *before* the chain learns the new
//! public key; once the rotation is finalized, [`StagedRotation::commit`] moves it into place;
//! if the chain certainly refused it ([`rotation_refused`]), [`StagedRotation::discard`]
//! deletes it. Any other outcome leaves the staged file for the user to resolve.
//!
//! ```no_run
//! # async fn demo(keys: psp_client::keystore::Keys) -> psp_client::Result<()> {
//! use psp_client::{chain::Chain, identity};
//! use psp_primitives::IdentityKind;
//!
//! let chain = Chain::connect("ws://127.0.0.1:9944").await?;
//! let prepared =
//!     identity::registration(&keys, IdentityKind::Client, "peerstream", "account", None, &[])?;
//! chain
//!     .register(keys.identity_keypair(), keys.identity_keypair(), prepared.registration, |_| {})
//!     .await?;
//! println!("registered {}", prepared.id);
//! # Ok(()) }
//! ```

use std::path::{Path, PathBuf};

use psp_primitives::{rpc::IdentityView, IdString, IdentityKind, NodeDetails, Registration};

use crate::{
    chain::Chain,
    error::{Error, Result},
    hex0x,
    keystore::{self, KdfParams, Keys},
    parse_hex_vec,
};

/// A registration built from a keystore's keys, with the id string it registers.
#[derive(Clone, Debug)]
pub struct PreparedRegistration {
    /// The id string the identity will have.
    pub id: IdString,
    /// What to submit with [`Chain::register`].
    pub registration: Registration,
}

/// Builds the registration of `keys`' identity as `kind` under `namespace` / `app`.
///
/// The namespaces are checked first (so that bad ones fail before any fee is paid), then the
/// node details: `peer_id` (libp2p peer id bytes as hex) and `addresses` (multiaddr bytes as
/// hex), which only node identities carry; addresses without a peer id are refused.
pub fn registration(
    keys: &Keys,
    kind: IdentityKind,
    namespace: &str,
    app: &str,
    peer_id: Option<&str>,
    addresses: &[String],
) -> Result<PreparedRegistration> {
    let id = keys.public().id_string(namespace, kind, app)?;
    let node = match peer_id {
        Some(peer) => Some(NodeDetails {
            peer_id: parse_hex_vec(peer, "--peer-id")?,
            addresses: parse_addresses(addresses)?,
        }),
        None if addresses.is_empty() => None,
        None => {
            return Err(Error::InvalidInput {
                what: "--address",
                reason: "addresses belong to node identities; also pass --peer-id".into(),
            })
        }
    };
    Ok(PreparedRegistration {
        id,
        registration: Registration {
            kind,
            namespace: namespace.as_bytes().to_vec(),
            app_namespace: app.as_bytes().to_vec(),
            key: keys.identity_public(),
            x25519: keys.x25519_public(),
            node,
        },
    })
}

/// Parses listen addresses given as hex (multiaddr bytes); errors name `--address`.
pub fn parse_addresses(addresses: &[String]) -> Result<Vec<Vec<u8>>> {
    addresses
        .iter()
        .map(|a| parse_hex_vec(a, "--address"))
        .collect()
}

/// Which identity to look up.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum IdentityLookup {
    /// By its sr25519 identity key.
    Key([u8; 32]),
    /// By its id string, e.g. `peerstream.client.account.<key58>`.
    Id(String),
}

impl Chain {
    /// The identity `lookup` names, at the best block; [`Error::IdentityNotFound`] if none is
    /// registered (revoked identities are found).
    pub async fn find_identity(&self, lookup: &IdentityLookup) -> Result<IdentityView> {
        let (found, what) = match lookup {
            IdentityLookup::Key(key) => (self.identity_by_key(key, None).await?, hex0x(key)),
            IdentityLookup::Id(id) => (self.identity_by_id(id, None).await?, id.clone()),
        };
        found.ok_or(Error::IdentityNotFound { key: what })
    }
}

/// Where a rotation stages the new keystore: `path` with `.rotating` appended to its name.
pub fn pending_path(path: &Path) -> PathBuf {
    let mut name = path
        .file_name()
        .map(|n| n.to_os_string())
        .unwrap_or_default();
    name.push(".rotating");
    path.with_file_name(name)
}

/// A keystore with a new X25519 key, written to [`pending_path`] and waiting for the chain.
#[derive(Debug)]
pub struct StagedRotation {
    keystore: PathBuf,
    pending: PathBuf,
    rotated: Keys,
}

impl StagedRotation {
    /// Gives `keys` (opened from `keystore`) a fresh X25519 key and writes the result, encrypted
    /// under `passphrase`, to [`pending_path`]. Fails with [`Error::RotationPending`] if an
    /// earlier rotation left that file behind.
    pub fn stage(
        keystore: &Path,
        keys: &Keys,
        passphrase: &str,
        params: KdfParams,
    ) -> Result<Self> {
        let rotated = keys.with_new_x25519();
        let pending = pending_path(keystore);
        keystore::save(&pending, &rotated, passphrase, params, false).map_err(|e| match e {
            Error::KeystoreExists { path } => Error::RotationPending { pending: path },
            other => other,
        })?;
        Ok(Self {
            keystore: keystore.to_path_buf(),
            pending,
            rotated,
        })
    }

    /// The rotated keys (identity key unchanged, new X25519 key).
    pub fn keys(&self) -> &Keys {
        &self.rotated
    }

    /// The new X25519 public key, the one to submit with [`Chain::rotate`].
    pub fn x25519_public(&self) -> [u8; 32] {
        self.rotated.x25519_public()
    }

    /// The keystore being rotated.
    pub fn keystore(&self) -> &Path {
        &self.keystore
    }

    /// The staged keystore.
    pub fn pending(&self) -> &Path {
        &self.pending
    }

    /// Moves the staged keystore over the current one; call it once the rotation is finalized.
    pub fn commit(self) -> Result<()> {
        std::fs::rename(&self.pending, &self.keystore).map_err(|source| Error::KeystoreIo {
            path: self.keystore,
            action: "replace (the rotated keystore is in the .rotating file; move it into place)",
            source,
        })
    }

    /// Deletes the staged keystore; call it when the chain certainly does not have the new key
    /// ([`rotation_refused`]).
    pub fn discard(self) {
        let _ = std::fs::remove_file(&self.pending);
    }
}

/// Whether `error`, returned by [`Chain::rotate`], says for sure that the chain does not have
/// the new key (the dispatch failed, the node rejected the transaction, or the identity is
/// unknown). Any other error leaves the rotation's outcome unknown.
pub fn rotation_refused(error: &Error) -> bool {
    matches!(
        error,
        Error::Dispatch(_) | Error::TxRejected { .. } | Error::IdentityNotFound { .. }
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pending_path_appends_rotating_to_the_file_name() {
        assert_eq!(
            pending_path(Path::new("/k/id.json")),
            PathBuf::from("/k/id.json.rotating")
        );
        assert_eq!(pending_path(Path::new("id")), PathBuf::from("id.rotating"));
    }

    #[test]
    fn registration_checks_namespaces_then_node_details() -> Result<()> {
        let keys = Keys::generate()?;
        let bad_ns = registration(&keys, IdentityKind::Client, "Bad!", "a", None, &[]);
        assert!(matches!(
            bad_ns,
            Err(Error::InvalidInput {
                what: "namespace",
                ..
            })
        ));
        let no_peer = registration(
            &keys,
            IdentityKind::Node,
            "peerstream",
            "relay",
            None,
            &["0x00".into()],
        );
        assert!(matches!(
            no_peer,
            Err(Error::InvalidInput {
                what: "--address",
                ..
            })
        ));
        let node = registration(
            &keys,
            IdentityKind::Node,
            "peerstream",
            "relay",
            Some("0x0102"),
            &["0x03".into()],
        )?;
        let details = node.registration.node.expect("node details");
        assert_eq!(details.peer_id, vec![1, 2]);
        assert_eq!(details.addresses, vec![vec![3]]);
        assert_eq!(node.registration.namespace, b"peerstream".to_vec());
        assert_eq!(node.registration.key, keys.identity_public());
        Ok(())
    }

    #[test]
    fn staging_refuses_a_leftover_and_commit_moves_into_place() -> Result<()> {
        let dir = tempfile::tempdir().map_err(|source| Error::Io {
            path: std::env::temp_dir(),
            source,
        })?;
        let path = dir.path().join("id.json");
        let keys = Keys::generate()?;
        keystore::save(&path, &keys, "pw", KdfParams::INSECURE_TEST, false)?;
        let staged = StagedRotation::stage(&path, &keys, "pw", KdfParams::INSECURE_TEST)?;
        assert_ne!(staged.x25519_public(), keys.x25519_public());
        assert!(staged.pending().exists());
        let again = StagedRotation::stage(&path, &keys, "pw", KdfParams::INSECURE_TEST);
        assert!(matches!(again, Err(Error::RotationPending { .. })));
        let new_x25519 = staged.x25519_public();
        staged.commit()?;
        assert_eq!(keystore::load(&path, "pw")?.x25519_public(), new_x25519);
        assert!(!pending_path(&path).exists());

        let staged = StagedRotation::stage(&path, &keys, "pw", KdfParams::INSECURE_TEST)?;
        staged.discard();
        assert!(!pending_path(&path).exists());
        Ok(())
    }

    #[test]
    fn only_definite_refusals_count_as_refused() {
        assert!(rotation_refused(&Error::IdentityNotFound {
            key: "0x".into()
        }));
        assert!(!rotation_refused(&Error::NoPassphrase));
    }
}
