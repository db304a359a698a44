//! The textual id of an identity.
//!
//! Grammar (ABNF):
//!
//! ```text
//! id-string = namespace "." kind "." app-namespace "." key58
//! namespace = label                 ; network namespace, e.g. "peerstream"
//! app-namespace = label             ; application namespace, e.g. "account"
//! label     = 1*32( %x61-7A / DIGIT / "-" )   ; lowercase a-z, 0-9, "-"; not starting with "-"
//! kind      = "client" / "node" / "group" / "device"
//! key58     = base58( key32 || check4 )       ; Bitcoin alphabet, exactly 36 bytes decoded
//! ```
//!
//! `key32` is the sr25519 identity key. `check4` is the first four bytes of
//! `blake2b-256("psp-id" || namespace "." kind "." app-namespace || key32)`: it catches typos
//! and a key pasted under the wrong name. Parsing checks the grammar only, so any well-formed id
//! (such as the seed example) prints back unchanged; [`IdString::checksum_ok`] says whether the
//! check bytes match, and the chain only answers lookups for ids whose checksum matches.

use crate::identity::{IdentityKey, IdentityKind};
use alloc::{string::String, vec::Vec};
use core::fmt;

/// Longest namespace or application namespace label, in bytes.
pub const MAX_LABEL_LEN: usize = 32;
/// Decoded length of the key part: 32-byte key + 4 check bytes.
pub const KEY_PART_LEN: usize = 36;
/// Longest id string: two labels, the kind, three dots and at most 50 base58 characters.
pub const MAX_ID_STRING_LEN: usize = 2 * MAX_LABEL_LEN + 6 + 3 + 50;

/// Why a string is not an id string.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum IdStringError {
    /// Not four dot-separated parts.
    WrongPartCount,
    /// Longer than [`MAX_ID_STRING_LEN`].
    TooLong,
    /// A label is empty, too long, or has a character outside `a-z 0-9 -`.
    BadLabel,
    /// The kind is not one of client, node, group, device.
    UnknownKind,
    /// The key part is not base58 or does not decode to 36 bytes.
    BadKey,
}

impl fmt::Display for IdStringError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::WrongPartCount => {
                "an id string has four dot-separated parts: namespace.kind.app-namespace.key"
            }
            Self::TooLong => "the id string is longer than any valid id",
            Self::BadLabel => {
                "namespaces are 1-32 characters of a-z, 0-9 and '-', not starting with '-'"
            }
            Self::UnknownKind => "the kind must be one of client, node, group, device",
            Self::BadKey => {
                "the key part must be base58 of exactly 36 bytes (32-byte key + 4 check bytes)"
            }
        })
    }
}

#[cfg(feature = "std")]
impl std::error::Error for IdStringError {}

/// A parsed id string.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IdString {
    /// Network namespace.
    pub namespace: String,
    /// Identity kind.
    pub kind: IdentityKind,
    /// Application namespace.
    pub app_namespace: String,
    /// The sr25519 identity key.
    pub key: IdentityKey,
    /// The four check bytes as written.
    pub check: [u8; 4],
}

/// Whether `label` is a valid namespace label.
pub fn is_valid_label(label: &[u8]) -> bool {
    !label.is_empty()
        && label.len() <= MAX_LABEL_LEN
        && label[0] != b'-'
        && label
            .iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
}

/// The four check bytes of an identity.
pub fn checksum(
    namespace: &str,
    kind: IdentityKind,
    app_namespace: &str,
    key: &IdentityKey,
) -> [u8; 4] {
    let mut input = Vec::with_capacity(6 + namespace.len() + app_namespace.len() + 8 + 32);
    input.extend_from_slice(b"psp-id");
    input.extend_from_slice(namespace.as_bytes());
    input.push(b'.');
    input.extend_from_slice(kind.as_str().as_bytes());
    input.push(b'.');
    input.extend_from_slice(app_namespace.as_bytes());
    input.extend_from_slice(key);
    let hash = sp_crypto_hashing::blake2_256(&input);
    [hash[0], hash[1], hash[2], hash[3]]
}

impl IdString {
    /// Builds the canonical id of an identity (with correct check bytes).
    ///
    /// Fails with [`IdStringError::BadLabel`] if a namespace is not a valid label.
    pub fn new(
        namespace: &str,
        kind: IdentityKind,
        app_namespace: &str,
        key: IdentityKey,
    ) -> Result<Self, IdStringError> {
        if !is_valid_label(namespace.as_bytes()) || !is_valid_label(app_namespace.as_bytes()) {
            return Err(IdStringError::BadLabel);
        }
        Ok(Self {
            check: checksum(namespace, kind, app_namespace, &key),
            namespace: namespace.into(),
            kind,
            app_namespace: app_namespace.into(),
            key,
        })
    }

    /// Parses an id string (grammar only; see [`IdString::checksum_ok`]).
    pub fn parse(s: &str) -> Result<Self, IdStringError> {
        if s.len() > MAX_ID_STRING_LEN {
            return Err(IdStringError::TooLong);
        }
        let mut parts = s.split('.');
        let (Some(ns), Some(kind), Some(app), Some(key58), None) = (
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
        ) else {
            return Err(IdStringError::WrongPartCount);
        };
        if !is_valid_label(ns.as_bytes()) || !is_valid_label(app.as_bytes()) {
            return Err(IdStringError::BadLabel);
        }
        let kind = IdentityKind::from_label(kind).ok_or(IdStringError::UnknownKind)?;
        let mut raw = [0u8; KEY_PART_LEN];
        match bs58::decode(key58).onto(&mut raw[..]) {
            Ok(KEY_PART_LEN) => {}
            _ => return Err(IdStringError::BadKey),
        }
        let mut key = [0u8; 32];
        key.copy_from_slice(&raw[..32]);
        let mut check = [0u8; 4];
        check.copy_from_slice(&raw[32..]);
        let parsed = Self {
            namespace: ns.into(),
            kind,
            app_namespace: app.into(),
            key,
            check,
        };
        // base58 has several spellings with leading '1's; only the canonical one is an id.
        if parsed.key58() != key58 {
            return Err(IdStringError::BadKey);
        }
        Ok(parsed)
    }

    /// Parses an id string given as bytes.
    pub fn parse_bytes(s: &[u8]) -> Result<Self, IdStringError> {
        core::str::from_utf8(s)
            .map_err(|_| IdStringError::BadLabel)
            .and_then(Self::parse)
    }

    /// Whether the check bytes match the rest of the id.
    pub fn checksum_ok(&self) -> bool {
        self.check == checksum(&self.namespace, self.kind, &self.app_namespace, &self.key)
    }

    fn key58(&self) -> String {
        let mut raw = [0u8; KEY_PART_LEN];
        raw[..32].copy_from_slice(&self.key);
        raw[32..].copy_from_slice(&self.check);
        bs58::encode(raw).into_string()
    }
}

impl fmt::Display for IdString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}.{}.{}.{}",
            self.namespace,
            self.kind.as_str(),
            self.app_namespace,
            self.key58()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::ToString;

    const SEED_EXAMPLE: &str =
        "peerstream.client.account.2Kny61ghn2upK8ttFwVoeHmicHEA6SfQjXC1HDUtuTGVdea2FF";

    #[test]
    fn seed_example_round_trips() {
        let id = IdString::parse(SEED_EXAMPLE).expect("seed example parses");
        assert_eq!(id.namespace, "peerstream");
        assert_eq!(id.kind, IdentityKind::Client);
        assert_eq!(id.app_namespace, "account");
        assert_eq!(id.to_string(), SEED_EXAMPLE);
    }

    #[test]
    fn new_ids_round_trip_with_valid_checksum() {
        for (i, kind) in IdentityKind::ALL.into_iter().enumerate() {
            let key = [i as u8 * 37 + 1; 32];
            let id = IdString::new("peerstream", kind, "chat-app", key).unwrap();
            let text = id.to_string();
            let back = IdString::parse(&text).unwrap();
            assert_eq!(back, id);
            assert!(back.checksum_ok());
        }
        // A zero key has leading '1's in base58: still canonical, still round-trips.
        let id = IdString::new("p", IdentityKind::Node, "a", [0; 32]).unwrap();
        assert_eq!(IdString::parse(&id.to_string()).unwrap(), id);
    }

    #[test]
    fn checksum_catches_a_renamed_id() {
        let id = IdString::new("peerstream", IdentityKind::Client, "account", [7; 32]).unwrap();
        let renamed = id.to_string().replacen("account", "accounts", 1);
        let parsed = IdString::parse(&renamed).unwrap();
        assert!(!parsed.checksum_ok());
    }

    #[test]
    fn malformed_ids_are_refused_with_reasons() {
        let key58 = SEED_EXAMPLE.rsplit('.').next().unwrap();
        let cases = [
            (
                "peerstream.client.account".to_string(),
                IdStringError::WrongPartCount,
            ),
            (
                format!("a.client.b.{key58}.x"),
                IdStringError::WrongPartCount,
            ),
            (
                format!("Peer.client.account.{key58}"),
                IdStringError::BadLabel,
            ),
            (format!(".client.account.{key58}"), IdStringError::BadLabel),
            (
                format!("-p.client.account.{key58}"),
                IdStringError::BadLabel,
            ),
            (
                format!("{}.client.account.{key58}", "a".repeat(33)),
                IdStringError::BadLabel,
            ),
            (
                format!("peerstream.robot.account.{key58}"),
                IdStringError::UnknownKind,
            ),
            (
                "peerstream.client.account.0OIl".to_string(),
                IdStringError::BadKey,
            ),
            (
                "peerstream.client.account.2Kny61".to_string(),
                IdStringError::BadKey,
            ),
            (
                format!("peerstream.client.account.1{key58}"),
                IdStringError::BadKey,
            ),
            ("x".repeat(MAX_ID_STRING_LEN + 1), IdStringError::TooLong),
        ];
        for (input, want) in cases {
            assert_eq!(
                IdString::parse(&input),
                Err(want.clone()),
                "input {input:?}"
            );
        }
        assert_eq!(
            IdString::parse_bytes(&[0xff, 0xfe]),
            Err(IdStringError::BadLabel)
        );
    }
}
