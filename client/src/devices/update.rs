//! Signed updates (issue 16, point 4), after The Update Framework's core rule: a device
//! installs a payload only when a manifest signed by the publisher it trusts names that exact
//! payload and a version newer than the one installed.
//!
//! A [`Manifest`] names the publisher (an identity key), the target (what the payload is
//! for, e.g. a firmware family), the version, the payload's SHA-256 digest and length, and
//! carries the publisher's sr25519 signature over all of it. [`check`] decides, sans IO,
//! whether a device installs a payload: the publisher is the one the device trusts and is
//! live on chain (its status is passed in: the caller reads it at a finalized block), the
//! signature verifies, the payload matches the digest and length, the target is the device's,
//! and the version is strictly newer than the installed one (a rollback or a replay of the
//! installed version is refused). Every refusal says why ([`UpdateRefused`]).
//!
//! Signed message: `"psp/update/v1" ‖ publisher (32) ‖ target length (u16 BE) ‖ target ‖
//! version (u64 BE) ‖ digest (32) ‖ length (u64 BE)`.

use psp_net::crypto::{sr25519_verify, Sr25519Keypair};
use psp_net::registry::IdentityStatus;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::keystore::Keys;
use crate::{hex0x, parse_hex};

/// The signing context tag.
const TAG: &[u8] = b"psp/update/v1";
/// Longest target name, bytes.
pub const MAX_TARGET: usize = 64;
/// Largest payload a manifest may name: 256 MiB.
pub const MAX_PAYLOAD: u64 = 256 << 20;

/// A signed update manifest (JSON beside the payload).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Manifest {
    /// The publisher's identity key, `0x` + 64 hex digits.
    pub publisher: String,
    /// What the payload is for (a firmware family, a model).
    pub target: String,
    /// The payload's version; a device installs only a newer one.
    pub version: u64,
    /// SHA-256 of the payload, `0x` hex.
    pub digest: String,
    /// The payload's length in bytes.
    pub length: u64,
    /// The publisher's sr25519 signature, `0x` hex.
    pub signature: String,
}

/// Why a device refuses an update.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UpdateRefused {
    /// The manifest's fields do not parse.
    #[error("malformed manifest: {0}")]
    Malformed(String),
    /// Signed by someone other than the publisher the device trusts.
    #[error("published by {found}, but this device trusts updates from {trusted} only")]
    WrongPublisher {
        /// The manifest's publisher.
        found: String,
        /// The trusted one.
        trusted: String,
    },
    /// The publisher is not live on chain.
    #[error("publisher {publisher} is {status} on chain")]
    PublisherNotLive {
        /// The publisher.
        publisher: String,
        /// `revoked`, `not registered`.
        status: &'static str,
    },
    /// The signature does not verify.
    #[error("the publisher's signature does not verify")]
    BadSignature,
    /// The payload is not the one signed.
    #[error("the payload does not match the manifest: {0}")]
    PayloadMismatch(String),
    /// For another target.
    #[error("the update is for {found}, this device runs {expected}")]
    WrongTarget {
        /// The manifest's target.
        found: String,
        /// The device's.
        expected: String,
    },
    /// Not newer than what is installed.
    #[error("version {offered} is not newer than the installed {installed} (rollback refused)")]
    NotNewer {
        /// The manifest's version.
        offered: u64,
        /// The installed version.
        installed: u64,
    },
}

fn signed_message(
    publisher: &[u8; 32],
    target: &str,
    version: u64,
    digest: &[u8; 32],
    length: u64,
) -> Vec<u8> {
    let mut m = Vec::with_capacity(TAG.len() + 32 + 2 + target.len() + 8 + 32 + 8);
    m.extend_from_slice(TAG);
    m.extend_from_slice(publisher);
    // Targets are at most MAX_TARGET bytes (checked before signing and verifying).
    m.extend_from_slice(&(target.len() as u16).to_be_bytes());
    m.extend_from_slice(target.as_bytes());
    m.extend_from_slice(&version.to_be_bytes());
    m.extend_from_slice(digest);
    m.extend_from_slice(&length.to_be_bytes());
    m
}

fn check_target(target: &str) -> Result<(), UpdateRefused> {
    if target.is_empty() || target.len() > MAX_TARGET {
        return Err(UpdateRefused::Malformed(format!(
            "target must be 1 to {MAX_TARGET} bytes"
        )));
    }
    Ok(())
}

/// Signs `payload` as version `version` of `target` with the publisher's keys.
pub fn sign(
    keys: &Keys,
    target: &str,
    version: u64,
    payload: &[u8],
) -> Result<Manifest, UpdateRefused> {
    check_target(target)?;
    let length = payload.len() as u64;
    if length > MAX_PAYLOAD {
        return Err(UpdateRefused::Malformed(format!(
            "payload of {length} bytes, limit {MAX_PAYLOAD}"
        )));
    }
    let digest: [u8; 32] = Sha256::digest(payload).into();
    let publisher = keys.identity_public();
    let message = signed_message(&publisher, target, version, &digest, length);
    let signature = Sr25519Keypair::from_seed(keys.identity_seed()).sign(&message);
    Ok(Manifest {
        publisher: hex0x(&publisher),
        target: target.to_owned(),
        version,
        digest: hex0x(&digest),
        length,
        signature: hex0x(&signature),
    })
}

/// What a device knows when it checks an update.
#[derive(Clone, Debug)]
pub struct Device<'a> {
    /// The publisher it trusts (identity key).
    pub trusted_publisher: [u8; 32],
    /// Its target.
    pub target: &'a str,
    /// The version it runs.
    pub installed: u64,
}

/// Whether `device` installs `payload` under `manifest`, the publisher's status on chain
/// being `publisher_status`. See the module docs.
pub fn check(
    device: &Device<'_>,
    manifest: &Manifest,
    payload: &[u8],
    publisher_status: IdentityStatus,
) -> Result<(), UpdateRefused> {
    let malformed = |e: crate::Error| UpdateRefused::Malformed(e.to_string());
    let publisher = parse_hex::<32>(&manifest.publisher, "publisher").map_err(malformed)?;
    let digest = parse_hex::<32>(&manifest.digest, "digest").map_err(malformed)?;
    let signature = parse_hex::<64>(&manifest.signature, "signature").map_err(malformed)?;
    check_target(&manifest.target)?;
    if publisher != device.trusted_publisher {
        return Err(UpdateRefused::WrongPublisher {
            found: manifest.publisher.clone(),
            trusted: hex0x(&device.trusted_publisher),
        });
    }
    match publisher_status {
        IdentityStatus::Active(_) => {}
        IdentityStatus::Revoked => {
            return Err(UpdateRefused::PublisherNotLive {
                publisher: manifest.publisher.clone(),
                status: "revoked",
            })
        }
        _ => {
            return Err(UpdateRefused::PublisherNotLive {
                publisher: manifest.publisher.clone(),
                status: "not registered",
            })
        }
    }
    let message = signed_message(
        &publisher,
        &manifest.target,
        manifest.version,
        &digest,
        manifest.length,
    );
    if !sr25519_verify(&publisher, &message, &signature) {
        return Err(UpdateRefused::BadSignature);
    }
    if payload.len() as u64 != manifest.length {
        return Err(UpdateRefused::PayloadMismatch(format!(
            "{} bytes, the manifest says {}",
            payload.len(),
            manifest.length
        )));
    }
    let actual: [u8; 32] = Sha256::digest(payload).into();
    if actual != digest {
        return Err(UpdateRefused::PayloadMismatch(format!(
            "SHA-256 {}, the manifest says {}",
            hex0x(&actual),
            manifest.digest
        )));
    }
    if manifest.target != device.target {
        return Err(UpdateRefused::WrongTarget {
            found: manifest.target.clone(),
            expected: device.target.to_owned(),
        });
    }
    if manifest.version <= device.installed {
        return Err(UpdateRefused::NotNewer {
            offered: manifest.version,
            installed: device.installed,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use psp_net::registry::IdentityKind;

    const LIVE: IdentityStatus = IdentityStatus::Active(IdentityKind::Client);

    fn publisher() -> Keys {
        Keys::from_secrets([3; 32], [4; 32]).expect("keys")
    }

    #[test]
    fn a_newer_signed_update_is_accepted_and_everything_else_refused_with_its_reason() {
        let keys = publisher();
        let payload = b"firmware v3".to_vec();
        let m = sign(&keys, "thermo-fw", 3, &payload).expect("signs");
        let device = Device {
            trusted_publisher: keys.identity_public(),
            target: "thermo-fw",
            installed: 2,
        };
        assert_eq!(check(&device, &m, &payload, LIVE), Ok(()));

        // Rollback and replay of the installed version.
        for installed in [3, 4] {
            let d = Device {
                installed,
                ..device.clone()
            };
            assert!(matches!(
                check(&d, &m, &payload, LIVE),
                Err(UpdateRefused::NotNewer { offered: 3, .. })
            ));
        }
        // A revoked or unknown publisher.
        assert!(matches!(
            check(&device, &m, &payload, IdentityStatus::Revoked),
            Err(UpdateRefused::PublisherNotLive {
                status: "revoked",
                ..
            })
        ));
        assert!(matches!(
            check(&device, &m, &payload, IdentityStatus::Unknown),
            Err(UpdateRefused::PublisherNotLive { .. })
        ));
        // Another payload, a cut payload, another target.
        assert!(matches!(
            check(&device, &m, b"firmware v4", LIVE),
            Err(UpdateRefused::PayloadMismatch(_))
        ));
        assert!(matches!(
            check(&device, &m, &payload[1..], LIVE),
            Err(UpdateRefused::PayloadMismatch(_))
        ));
        let other = Device {
            target: "lamp-fw",
            ..device.clone()
        };
        assert!(matches!(
            check(&other, &m, &payload, LIVE),
            Err(UpdateRefused::WrongTarget { .. })
        ));
        // A version bumped after signing, a signature flipped: the signature no longer holds.
        let bumped = Manifest {
            version: 9,
            ..m.clone()
        };
        assert_eq!(
            check(&device, &bumped, &payload, LIVE),
            Err(UpdateRefused::BadSignature)
        );
        let mut forged = m.clone();
        forged.signature = format!("0x{}", "11".repeat(64));
        assert_eq!(
            check(&device, &forged, &payload, LIVE),
            Err(UpdateRefused::BadSignature)
        );
        // Someone else's key, even if live and validly signed.
        let mallory = Keys::from_secrets([5; 32], [6; 32]).expect("keys");
        let theirs = sign(&mallory, "thermo-fw", 9, &payload).expect("signs");
        assert!(matches!(
            check(&device, &theirs, &payload, LIVE),
            Err(UpdateRefused::WrongPublisher { .. })
        ));
        // Garbage fields.
        let mut bad = m.clone();
        bad.digest = "0x12".into();
        assert!(matches!(
            check(&device, &bad, &payload, LIVE),
            Err(UpdateRefused::Malformed(_))
        ));
        assert!(sign(&keys, "", 1, &payload).is_err());
        assert!(sign(&keys, &"x".repeat(MAX_TARGET + 1), 1, &payload).is_err());
        assert!(serde_json::from_str::<Manifest>(r#"{"publisher":"0x00"}"#).is_err());
    }
}
