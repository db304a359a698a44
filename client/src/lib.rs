//! # PSP client
//!
//! The client side of the PeerStream Protocol identity PKI, and the library behind the `psp`
//! command-line tool.
//!
//! - [`keystore`]: an identity's secrets (sr25519 identity seed, X25519 secret) in one
//!   passphrase-encrypted file (Argon2id + XChaCha20-Poly1305).
//! - [`chain`]: a connection to a PSP node: `register` / `rotate` / `revoke` with progress
//!   reports and finality, balances, and the `psp_identityByKey` / `psp_identityById` look-ups.
//! - [`overlay`]: onion routing: register relay nodes, choose hops from the chain's
//!   finalized node list, build circuits, echo bytes through them.
//! - [`identity`]: building checked registrations, identity look-ups by key or id string,
//!   and crash-safe staging of rotated keystores.
//! - [`staking`]: bond, unbond, withdraw, stand for roles, session keys, and the
//!   `psp_staking*` look-ups.
//! - [`rewards`]: bandwidth rewards: pending rewards and credits per relay, `claim`.
//! - [`stream`]: anonymous stream creation: subscriptions, receipts drawn from an oracle over
//!   a circuit, streams created at a landing node over a fresh one, stream records in the DHT.
//! - [`contacts`]: signed contact offers (`PSP CONTACT OFFER` blocks), the contact book and
//!   fingerprints to compare out of band.
//! - [`messaging`]: private messaging: the long-running agent (presence points, lookups,
//!   introductions, channels, inbox) and its control socket.
//! - [`error`]: the one error type, whose messages say what to do next, and the identity
//!   pallet's errors with hints.
//!
//! ```no_run
//! # async fn demo() -> psp_client::Result<()> {
//! use psp_client::{chain::{keypair_from_suri, Chain}, keystore::Keys};
//! use psp_primitives::{IdentityKind, Registration};
//!
//! let chain = Chain::connect("ws://127.0.0.1:9944").await?;
//! let keys = Keys::generate()?;
//! let alice = keypair_from_suri("//Alice", "--payer")?;
//! let registration = Registration {
//!     kind: IdentityKind::Client,
//!     namespace: b"peerstream".to_vec(),
//!     app_namespace: b"account".to_vec(),
//!     key: keys.identity_public(),
//!     x25519: keys.x25519_public(),
//!     node: None,
//! };
//! let outcome = chain
//!     .register(&alice, keys.identity_keypair(), registration, |p| eprintln!("{p}"))
//!     .await?;
//! println!("registered in block {}", psp_client::hex0x(&outcome.block_hash));
//! # Ok(()) }
//! ```

#![warn(missing_docs)]

pub mod cert;
pub mod chain;
pub mod contacts;
pub mod devices;
pub mod dht;
pub mod directory;
pub mod error;
pub mod groups;
pub mod identity;
pub mod keystore;
pub mod messaging;
pub mod overlay;
pub mod rewards;
pub mod staking;
pub mod stream;

pub use error::{DispatchFailure, Error, IdentityError, Result};
pub use psp_net;
pub use psp_primitives;
pub use subxt;
pub use subxt_signer::sr25519::Keypair;

/// `0x`-prefixed lowercase hex, the form keys and hashes take in PSP's JSON and output.
pub fn hex0x(bytes: &[u8]) -> String {
    format!("0x{}", hex::encode(bytes))
}

/// Parses `0x`-prefixed (or bare) hex of exactly `N` bytes; `what` names the value in errors.
pub fn parse_hex<const N: usize>(text: &str, what: &'static str) -> Result<[u8; N]> {
    let bytes = parse_hex_vec(text, what)?;
    bytes.try_into().map_err(|b: Vec<u8>| Error::InvalidInput {
        what,
        reason: format!(
            "{} bytes given, expected {N} (0x + {} hex digits)",
            b.len(),
            2 * N
        ),
    })
}

/// Parses `0x`-prefixed (or bare) hex of any length; `what` names the value in errors.
pub fn parse_hex_vec(text: &str, what: &'static str) -> Result<Vec<u8>> {
    let digits = text.strip_prefix("0x").unwrap_or(text);
    hex::decode(digits).map_err(|e| Error::InvalidInput {
        what,
        reason: format!("not hex: {e}"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_helpers_round_trip_and_explain() {
        assert_eq!(hex0x(&[0xab, 0x01]), "0xab01");
        assert_eq!(parse_hex::<2>("0xab01", "--key").unwrap(), [0xab, 0x01]);
        assert_eq!(parse_hex::<2>("ab01", "--key").unwrap(), [0xab, 0x01]);
        let err = parse_hex::<32>("0xab01", "--key").unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid --key: 2 bytes given, expected 32 (0x + 64 hex digits)"
        );
        let err = parse_hex::<2>("0xzz", "--key").unwrap_err();
        assert!(
            err.to_string().starts_with("invalid --key: not hex"),
            "{err}"
        );
    }

    #[test]
    fn every_identity_error_has_a_name_and_an_actionable_hint() {
        let names = [
            "AlreadyRegistered",
            "NotRegistered",
            "IdentityRevoked",
            "NotOwner",
            "BadProof",
            "NamespaceTooLong",
            "InvalidNamespace",
            "NodeDetailsRequired",
            "NodeDetailsNotAllowed",
            "PeerIdTooLong",
            "TooManyAddresses",
            "BadAddress",
            "StaleRotation",
            "InsufficientBalance",
        ];
        assert_eq!(IdentityError::ALL.len(), names.len());
        for name in names {
            let err = IdentityError::from_name(name).unwrap_or_else(|| panic!("{name} unknown"));
            assert_eq!(err.name(), name);
            assert!(err.hint().len() > 20, "{name}: hint too short");
        }
        assert_eq!(IdentityError::from_name("Nope"), None);
        assert_eq!(
            IdentityError::AlreadyRegistered.hint(),
            "this key is already registered; generate a new key with `psp key generate` or rotate \
             the existing identity with `psp identity rotate`"
        );
    }

    #[test]
    fn dispatch_hints_prefer_ours_then_the_runtime_docs() {
        use error::dispatch_hint;
        assert_eq!(
            dispatch_hint("PspIdentity", "BadProof", "ignored"),
            IdentityError::BadProof.hint()
        );
        assert!(dispatch_hint("Balances", "InsufficientBalance", "").contains("--payer"));
        assert_eq!(
            dispatch_hint("Other", "Thing", " Explained. "),
            "The runtime says: Explained."
        );
        assert!(!dispatch_hint("Other", "Thing", "").is_empty());
    }

    #[test]
    fn dispatch_error_message_names_error_block_and_hint() {
        let err = Error::Dispatch(Box::new(error::DispatchFailure {
            call: "PspIdentity.register",
            pallet: "PspIdentity".into(),
            name: "AlreadyRegistered".into(),
            identity_error: Some(IdentityError::AlreadyRegistered),
            hint: IdentityError::AlreadyRegistered.hint().into(),
            block_hash: [0xab; 32],
            fee_paid: Some(1),
        }));
        let text = err.to_string();
        assert!(
            text.starts_with("PspIdentity.register failed in block 0xabab"),
            "{text}"
        );
        assert!(text.contains("PspIdentity::AlreadyRegistered. this key is already registered"));
        assert_eq!(err.identity_error(), Some(IdentityError::AlreadyRegistered));
        let system = error::DispatchFailure {
            call: "PspIdentity.force_revoke",
            pallet: String::new(),
            name: "BadOrigin".into(),
            identity_error: None,
            hint: "h".into(),
            block_hash: [0; 32],
            fee_paid: None,
        };
        assert!(system.to_string().contains(": BadOrigin. h"), "{system}");
    }

    #[test]
    fn progress_lines_show_block_hashes() {
        use chain::Progress;
        let lines = [
            Progress::Submitted {
                call: "PspIdentity.revoke",
                tx_hash: [1; 32],
            }
            .to_string(),
            Progress::Validated.to_string(),
            Progress::InBlock {
                block_hash: [2; 32],
            }
            .to_string(),
            Progress::Finalized {
                block_hash: [3; 32],
            }
            .to_string(),
        ];
        assert!(
            lines[0].starts_with("submitted PspIdentity.revoke (tx 0x0101"),
            "{}",
            lines[0]
        );
        assert_eq!(lines[1], "validated by the node");
        assert_eq!(lines[2], format!("in block 0x{}", "02".repeat(32)));
        assert_eq!(
            lines[3],
            format!("finalized in block 0x{}", "03".repeat(32))
        );
    }

    #[test]
    fn rejection_hints_match_the_node_reasons() {
        use error::rejection_hint;
        let fee = rejection_hint(
            "Invalid Transaction: Inability to pay some fees (e.g. account balance too low)",
            "5Grw",
        );
        assert!(
            fee.contains("5Grw cannot pay") && fee.contains("--payer"),
            "{fee}"
        );
        assert!(rejection_hint("Transaction is outdated", "x").contains("retry"));
        assert!(rejection_hint("Transaction has a stale nonce", "x").contains("in flight"));
        assert!(rejection_hint("something else", "x").contains("--url"));
    }
}
