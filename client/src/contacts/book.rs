//! The contact book: named contacts in one JSON file.
//!
//! Every change is read–modify–write of the whole file, written to a temporary file in the
//! same directory (mode 0600), synced, then renamed over the book, so a crash leaves either
//! the old book or the new one. The file is bounded ([`MAX_BOOK_BYTES`], [`MAX_CONTACTS`]).
//! Two `psp` processes changing the book at once may lose one change; there is no lock.

use std::collections::BTreeSet;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::fingerprint::key_fingerprint;
use super::offer::ContactOffer;
use super::ContactError;
use crate::{hex0x, parse_hex};

/// Largest book file read.
pub const MAX_BOOK_BYTES: u64 = 4 << 20;
/// Most contacts in one book.
pub const MAX_CONTACTS: usize = 10_000;
/// Longest contact name, in characters.
pub const MAX_NAME_CHARS: usize = 64;
/// The book format written.
pub const BOOK_VERSION: u32 = 1;

/// One contact.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Contact {
    /// The name chosen locally.
    pub name: String,
    /// The id string.
    pub id: String,
    /// The sr25519 identity key, `0x` hex.
    pub identity_key: String,
    /// The X25519 announcement key at the time of adding, `0x` hex.
    pub announcement_key: String,
    /// The identity key's 30-digit fingerprint.
    pub fingerprint: String,
    /// The presence hint the offer carried, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub presence_hint: Option<String>,
    /// When it was added (unix seconds).
    pub added_at: u64,
}

impl Contact {
    /// The identity key as bytes.
    pub fn key(&self) -> Option<[u8; 32]> {
        parse_hex(&self.identity_key, "identity key").ok()
    }
}

/// The book as stored.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Book {
    /// Format version, [`BOOK_VERSION`].
    pub version: u32,
    /// The contacts, in the order added.
    pub contacts: Vec<Contact>,
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> ContactError + '_ {
    move |source| ContactError::BookIo {
        path: path.to_owned(),
        source,
    }
}

impl Book {
    /// Reads the book at `path`; a missing file is an empty book.
    pub fn load(path: &Path) -> Result<Self, ContactError> {
        let format = |reason: String| ContactError::BookFormat {
            path: path.to_owned(),
            reason,
        };
        let file = match std::fs::File::open(path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(Book {
                    version: BOOK_VERSION,
                    contacts: Vec::new(),
                })
            }
            Err(e) => return Err(io(path)(e)),
        };
        let len = file.metadata().map_err(io(path))?.len();
        if len > MAX_BOOK_BYTES {
            return Err(format(format!("{len} bytes, at most {MAX_BOOK_BYTES}")));
        }
        let book: Book = serde_json::from_reader(std::io::BufReader::new(file))
            .map_err(|e| format(e.to_string()))?;
        if book.version != BOOK_VERSION {
            return Err(format(format!(
                "version {}, this psp reads {BOOK_VERSION}",
                book.version
            )));
        }
        if book.contacts.len() > MAX_CONTACTS {
            return Err(format(format!("more than {MAX_CONTACTS} contacts")));
        }
        let mut names = BTreeSet::new();
        let mut keys = BTreeSet::new();
        for c in &book.contacts {
            let key = c
                .key()
                .ok_or_else(|| format(format!("contact {:?} has a bad identity key", c.name)))?;
            if !names.insert(c.name.as_str()) || !keys.insert(key) {
                return Err(format(format!("contact {:?} appears twice", c.name)));
            }
        }
        Ok(book)
    }

    /// Writes the book atomically (temp file in the same directory, 0600, fsync, rename).
    pub fn save(&self, path: &Path) -> Result<(), ContactError> {
        let text = serde_json::to_vec_pretty(self).map_err(|e| ContactError::BookFormat {
            path: path.to_owned(),
            reason: e.to_string(),
        })?;
        let tmp = temp_path(path);
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let written = (|| {
            let mut file = options.open(&tmp)?;
            file.write_all(&text)?;
            file.write_all(b"\n")?;
            file.sync_all()?;
            std::fs::rename(&tmp, path)
        })();
        if written.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        written.map_err(io(path))
    }

    /// The identity keys of all contacts.
    pub fn keys(&self) -> BTreeSet<[u8; 32]> {
        self.contacts.iter().filter_map(Contact::key).collect()
    }

    /// The contact named `name`.
    pub fn get(&self, name: &str) -> Result<&Contact, ContactError> {
        self.contacts
            .iter()
            .find(|c| c.name == name)
            .ok_or_else(|| ContactError::UnknownName(name.to_owned()))
    }

    /// Adds a checked offer under `name`; refuses a taken name or a known key.
    pub fn add(
        &mut self,
        name: &str,
        offer: &ContactOffer,
        now: u64,
    ) -> Result<&Contact, ContactError> {
        check_name(name)?;
        let b = offer.body();
        if self.contacts.iter().any(|c| c.name == name) {
            return Err(ContactError::Duplicate(format!(
                "a contact named {name:?} exists"
            )));
        }
        if let Some(c) = self
            .contacts
            .iter()
            .find(|c| c.key() == Some(b.identity_key))
        {
            return Err(ContactError::Duplicate(format!(
                "this identity is already in the book as {:?}",
                c.name
            )));
        }
        if self.contacts.len() >= MAX_CONTACTS {
            return Err(ContactError::Duplicate(format!(
                "the book holds {MAX_CONTACTS} contacts, the most allowed"
            )));
        }
        self.contacts.push(Contact {
            name: name.to_owned(),
            id: b.id.clone(),
            identity_key: hex0x(&b.identity_key),
            announcement_key: hex0x(&b.announcement_key),
            fingerprint: key_fingerprint(&b.identity_key),
            presence_hint: b.presence_hint.map(|k| hex0x(&k)),
            added_at: now,
        });
        Ok(&self.contacts[self.contacts.len() - 1])
    }

    /// Removes the contact named `name`.
    pub fn remove(&mut self, name: &str) -> Result<Contact, ContactError> {
        let at = self
            .contacts
            .iter()
            .position(|c| c.name == name)
            .ok_or_else(|| ContactError::UnknownName(name.to_owned()))?;
        Ok(self.contacts.remove(at))
    }
}

fn check_name(name: &str) -> Result<(), ContactError> {
    let chars = name.chars().count();
    if chars == 0 || chars > MAX_NAME_CHARS || name.chars().any(char::is_control) {
        return Err(ContactError::BadName(name.to_owned()));
    }
    Ok(())
}

fn temp_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(format!(".tmp.{}", std::process::id()));
    path.with_file_name(name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::contacts::offer::{create, OfferBody, UncheckedOffer};
    use subxt_signer::sr25519::Keypair;

    fn offer(seed: u8) -> ContactOffer {
        let kp = Keypair::from_secret_key([seed; 32]).unwrap();
        let body = OfferBody {
            id: format!("peerstream:client:account:{seed}"),
            identity_key: kp.public_key().0,
            announcement_key: [seed; 32],
            presence_hint: None,
            created_at: 10,
            expires_at: 100,
        };
        UncheckedOffer::from_armored(&create(&kp, body).unwrap())
            .unwrap()
            .check(50)
            .unwrap()
    }

    #[test]
    fn the_book_is_written_atomically_private_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("book.json");
        let mut book = Book::load(&path).unwrap();
        assert!(book.contacts.is_empty());
        book.add("alice", &offer(1), 60).unwrap();
        book.add("bob", &offer(2), 61).unwrap();
        book.save(&path).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let back = Book::load(&path).unwrap();
        assert_eq!(back, book);
        assert_eq!(back.keys().len(), 2);
        // No temporary file is left behind.
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn duplicates_and_bad_names_are_refused_and_change_nothing() {
        let mut book = Book {
            version: BOOK_VERSION,
            contacts: Vec::new(),
        };
        book.add("alice", &offer(1), 60).unwrap();
        let before = book.clone();
        let err = book.add("alice", &offer(2), 61).unwrap_err();
        assert!(err.to_string().contains("named \"alice\" exists"), "{err}");
        let err = book.add("alice2", &offer(1), 61).unwrap_err();
        assert!(err.to_string().contains("already in the book"), "{err}");
        for bad in ["", "a\nb", &"x".repeat(65)] {
            assert!(matches!(
                book.add(bad, &offer(3), 61),
                Err(ContactError::BadName(_))
            ));
        }
        assert_eq!(book, before);
        assert!(matches!(
            book.remove("carol"),
            Err(ContactError::UnknownName(_))
        ));
        assert_eq!(book.remove("alice").unwrap().name, "alice");
    }

    #[test]
    fn a_damaged_book_is_refused_with_its_path() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("book.json");
        for text in [
            "not json",
            r#"{"version":2,"contacts":[]}"#,
            r#"{"version":1,"contacts":[],"extra":1}"#,
        ] {
            std::fs::write(&path, text).unwrap();
            let err = Book::load(&path).unwrap_err();
            assert!(err.to_string().contains("book.json"), "{err}");
        }
    }
}
