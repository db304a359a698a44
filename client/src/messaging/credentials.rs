//! The agent's credentials for the messaging machines: the keystore's keys and an access
//! certificate as a `psp_rendezvous` [`Identity`], and when to renew the certificate.
//!
//! The X25519 key registered with the identity (the keystore's) is the announcement key:
//! introductions are sealed to it, and the certificate certifies it.

use std::sync::Arc;

use psp_net::crypto::Sr25519Keypair;
use psp_net::rendezvous::client::Identity;
use psp_net::rendezvous::crypto::AnnouncementSecret;
use zeroize::Zeroizing;

use crate::keystore::Keys;

/// Renew this long before the end at the latest: 60 s, two keep-alive periods of a short
/// record, so a record never has to be cut short by the certificate.
pub const MIN_RENEW_MARGIN_SECS: u64 = 60;

/// The machines' identity: the keys and the encoded certificate.
pub fn identity(keys: &Keys, certificate: Vec<u8>) -> Arc<Identity> {
    let key = Sr25519Keypair::from_seed(keys.identity_seed());
    let secret = Zeroizing::new(keys.x25519_secret().to_bytes());
    let announcement = AnnouncementSecret::from_bytes(*secret);
    Arc::new(Identity::new(key, certificate, announcement))
}

/// When to ask for a new certificate: after three quarters of its life, and at least
/// [`MIN_RENEW_MARGIN_SECS`] before its end (at once if that has passed).
pub fn renew_at(not_before: u64, not_after: u64, now: u64) -> u64 {
    let life = not_after.saturating_sub(not_before);
    let margin = (life / 4).max(MIN_RENEW_MARGIN_SECS);
    not_after.saturating_sub(margin).max(now)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_machines_sign_with_the_keystore_identity() {
        let keys = Keys::from_secrets([3; 32], [4; 32]).expect("keys");
        let id = identity(&keys, vec![1, 2, 3]);
        assert_eq!(id.id(), keys.identity_public());
        assert_eq!(id.announcement().public(), keys.x25519_public());
        assert_eq!(id.certificate(), &[1, 2, 3]);
    }

    #[test]
    fn renewal_comes_at_three_quarters_with_a_minimum_margin() {
        assert_eq!(renew_at(1_000, 4_600, 1_000), 3_700);
        assert_eq!(renew_at(1_000, 1_200, 1_000), 1_140);
        assert_eq!(renew_at(1_000, 1_030, 1_010), 1_010, "due at once");
    }
}
