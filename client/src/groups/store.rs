//! Group state at rest: one file per group, `<dir>/<group id>.group`, holding the group's
//! snapshot (its key, the member table, this member's agreement secret) sealed with
//! ChaCha20-Poly1305 under a key derived from the identity's secret seed, so the file is
//! as safe as the keystore. Written as the keystore is (a private temporary file renamed into
//! place).

use std::path::{Path, PathBuf};

use chacha20poly1305::aead::{Aead, KeyInit};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use psp_group::GroupId;
use rand::RngCore;
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use super::protocol::group_text;
use super::GroupError;

const DOMAIN: &[u8] = b"psp/groups/state/v1";
const NONCE_LEN: usize = 12;
/// Largest state file read (a 256-member snapshot is far below it).
pub const MAX_FILE: u64 = 4 << 20;
const SUFFIX: &str = "group";

/// The state directory of one identity.
pub struct Store {
    dir: PathBuf,
    key: Zeroizing<[u8; 32]>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("dir", &self.dir).finish()
    }
}

impl Store {
    /// The store in `dir` (created if missing) for the identity with this sr25519 seed.
    pub fn open(dir: impl Into<PathBuf>, seed: &[u8; 32]) -> Result<Self, GroupError> {
        let dir = dir.into();
        std::fs::create_dir_all(&dir).map_err(|e| store_error(&dir, e))?;
        let mut h = Sha256::new();
        h.update(DOMAIN);
        h.update(seed);
        Ok(Self {
            dir,
            key: Zeroizing::new(h.finalize().into()),
        })
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn path(&self, id: GroupId) -> PathBuf {
        self.dir.join(format!("{}.{SUFFIX}", group_text(id)))
    }

    fn cipher(&self) -> ChaCha20Poly1305 {
        ChaCha20Poly1305::new(Key::from_slice(self.key.as_slice()))
    }

    /// Seals and writes a group's snapshot.
    pub fn save(&self, id: GroupId, snapshot: &[u8]) -> Result<(), GroupError> {
        let path = self.path(id);
        let mut nonce = [0u8; NONCE_LEN];
        rand::rngs::OsRng.fill_bytes(&mut nonce);
        let sealed = self
            .cipher()
            .encrypt(Nonce::from_slice(&nonce), snapshot)
            .map_err(|_| store_error(&path, "sealing failed"))?;
        let mut bytes = nonce.to_vec();
        bytes.extend_from_slice(&sealed);
        crate::keystore::write_private(&path, &bytes, true).map_err(|e| store_error(&path, e))
    }

    /// Removes a group's file (gone already is fine).
    pub fn remove(&self, id: GroupId) -> Result<(), GroupError> {
        let path = self.path(id);
        match std::fs::remove_file(&path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(store_error(&path, e)),
            _ => Ok(()),
        }
    }

    /// Every saved snapshot, opened; a file that does not open is reported, not fatal.
    pub fn load_all(&self) -> Vec<Result<Zeroizing<Vec<u8>>, GroupError>> {
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            return Vec::new();
        };
        let mut paths: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == SUFFIX))
            .collect();
        paths.sort();
        paths.iter().map(|p| self.load(p)).collect()
    }

    fn load(&self, path: &Path) -> Result<Zeroizing<Vec<u8>>, GroupError> {
        let len = std::fs::metadata(path)
            .map_err(|e| store_error(path, e))?
            .len();
        if len > MAX_FILE {
            return Err(store_error(path, format!("{len} bytes, limit {MAX_FILE}")));
        }
        let bytes = std::fs::read(path).map_err(|e| store_error(path, e))?;
        if bytes.len() < NONCE_LEN {
            return Err(store_error(path, "truncated"));
        }
        let (nonce, sealed) = bytes.split_at(NONCE_LEN);
        self.cipher()
            .decrypt(Nonce::from_slice(nonce), sealed)
            .map(Zeroizing::new)
            .map_err(|_| {
                store_error(
                    path,
                    "does not open with this identity's key (another identity's, or damaged)",
                )
            })
    }
}

fn store_error(path: &Path, reason: impl std::fmt::Display) -> GroupError {
    GroupError::Store {
        path: path.display().to_string(),
        reason: reason.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapshots_round_trip_sealed_and_other_keys_fail() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(dir.path(), &[7; 32]).expect("store");
        store.save(GroupId(5), b"secret state").expect("save");
        let raw = std::fs::read(store.path(GroupId(5))).expect("file");
        assert!(!raw.windows(6).any(|w| w == b"secret"), "sealed at rest");
        let loaded = store.load_all();
        assert_eq!(loaded.len(), 1);
        assert_eq!(
            loaded[0].as_ref().expect("opens").as_slice(),
            b"secret state"
        );

        let other = Store::open(dir.path(), &[8; 32]).expect("store");
        assert!(matches!(other.load_all()[0], Err(GroupError::Store { .. })));
        store.remove(GroupId(5)).expect("remove");
        store.remove(GroupId(5)).expect("removing twice is fine");
        assert!(store.load_all().is_empty());
    }
}
