//! The contact offer: what an identity hands out so that others can add it as a contact.
//!
//! ## Wire form (version 1)
//! ```text
//! version   u8        = 1
//! id_len    u8        1..=MAX_ID_LEN
//! id        id_len    the id string, UTF-8
//! identity  32        sr25519 identity key
//! announce  32        X25519 announcement key
//! hint_tag  u8        0: no hint, 1: a presence hint follows
//! hint      0 or 32   a presence node's key
//! created   u64 BE    unix seconds
//! expires   u64 BE    unix seconds
//! signature 64        sr25519 by `identity` over SIGNING_DOMAIN || all of the above
//! ```
//! Decoding is strict: every length is bounded, unknown versions and tags are refused, and
//! nothing may follow the signature. The bytes are armored as base64 lines of 64 characters
//! between [`BEGIN`] and [`END`].

use base64::Engine;
use subxt_signer::sr25519::{self, Keypair};

use super::ContactError;
use crate::hex0x;
use psp_primitives::rpc::IdentityView;

/// The armor's first line.
pub const BEGIN: &str = "-----BEGIN PSP CONTACT OFFER-----";
/// The armor's last line.
pub const END: &str = "-----END PSP CONTACT OFFER-----";
/// The only version this build writes and reads.
pub const VERSION: u8 = 1;
/// Prefixed to the signed bytes so that no other PSP signature can pass for an offer.
pub const SIGNING_DOMAIN: &[u8] = b"psp/contact-offer/v1\0";
/// Longest id string accepted (it is length-prefixed by one byte).
pub const MAX_ID_LEN: usize = 255;
/// Largest encoded offer: 1 + 1 + 255 (id) + 32 + 32 + 1 + 32 (hint) + 8 + 8 + 64 = 434.
pub const MAX_ENCODED_LEN: usize = 1 + 1 + MAX_ID_LEN + 32 + 32 + 1 + 32 + 8 + 8 + 64;
/// Longest armored text read: base64 of the largest offer plus line breaks and armor.
pub const MAX_ARMORED_LEN: usize = 4096;
/// Longest validity accepted: one year.
pub const MAX_LIFETIME_SECS: u64 = 365 * 24 * 3600;
/// Clock difference tolerated for an offer created "in the future".
pub const CLOCK_SKEW_SECS: u64 = 300;
/// Base64 characters per armored line.
pub const LINE_LEN: usize = 64;

/// The offered facts, before or after checking.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OfferBody {
    /// The identity's id string.
    pub id: String,
    /// Its sr25519 identity key.
    pub identity_key: [u8; 32],
    /// Its X25519 announcement key.
    pub announcement_key: [u8; 32],
    /// A public presence node where it may be found (a node key), if the sender gave one.
    pub presence_hint: Option<[u8; 32]>,
    /// When it was made (unix seconds).
    pub created_at: u64,
    /// When it stops being valid (unix seconds).
    pub expires_at: u64,
}

impl OfferBody {
    /// The bytes the signature covers (without the domain tag).
    fn encode(&self) -> Result<Vec<u8>, ContactError> {
        let id = self.id.as_bytes();
        if id.is_empty() || id.len() > MAX_ID_LEN {
            return Err(ContactError::Malformed(format!(
                "id string of {} bytes (1 to {MAX_ID_LEN})",
                id.len()
            )));
        }
        let mut out = Vec::with_capacity(MAX_ENCODED_LEN);
        out.push(VERSION);
        out.push(id.len() as u8);
        out.extend_from_slice(id);
        out.extend_from_slice(&self.identity_key);
        out.extend_from_slice(&self.announcement_key);
        match self.presence_hint {
            None => out.push(0),
            Some(node) => {
                out.push(1);
                out.extend_from_slice(&node);
            }
        }
        out.extend_from_slice(&self.created_at.to_be_bytes());
        out.extend_from_slice(&self.expires_at.to_be_bytes());
        Ok(out)
    }
}

fn signed_message(body: &[u8]) -> Vec<u8> {
    [SIGNING_DOMAIN, body].concat()
}

/// A decoded offer whose signature and times are not yet checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UncheckedOffer {
    body: OfferBody,
    signed: Vec<u8>,
    signature: [u8; 64],
}

/// An offer whose signature verifies and which was valid when checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ContactOffer {
    body: OfferBody,
}

/// Signs `body` with the identity key and armors it. The key must be `body.identity_key`'s.
pub fn create(identity: &Keypair, body: OfferBody) -> Result<String, ContactError> {
    if identity.public_key().0 != body.identity_key {
        return Err(ContactError::Malformed(
            "the signing key is not the offered identity key".into(),
        ));
    }
    if body.expires_at <= body.created_at {
        return Err(ContactError::Expired(
            "would expire before it is created".into(),
        ));
    }
    let mut bytes = body.encode()?;
    let signature = identity.sign(&signed_message(&bytes));
    bytes.extend_from_slice(&signature.0);
    Ok(armor(&bytes))
}

/// Base64 lines of [`LINE_LEN`] characters between [`BEGIN`] and [`END`], newline-terminated.
pub fn armor(bytes: &[u8]) -> String {
    let text = base64::engine::general_purpose::STANDARD.encode(bytes);
    let mut out = String::with_capacity(text.len() + text.len() / LINE_LEN + 80);
    out.push_str(BEGIN);
    out.push('\n');
    for line in text.as_bytes().chunks(LINE_LEN) {
        // Base64 output is ASCII, so every chunk is valid UTF-8.
        out.push_str(&String::from_utf8_lossy(line));
        out.push('\n');
    }
    out.push_str(END);
    out.push('\n');
    out
}

/// The bytes inside one armored block. Text around the block is not allowed except
/// surrounding whitespace; base64 must be canonical.
pub fn dearmor(text: &str) -> Result<Vec<u8>, ContactError> {
    if text.len() > MAX_ARMORED_LEN {
        return Err(ContactError::Armor(format!(
            "{} bytes of text, at most {MAX_ARMORED_LEN}",
            text.len()
        )));
    }
    let mut lines = text.trim().lines().map(str::trim);
    if lines.next() != Some(BEGIN) {
        return Err(ContactError::Armor(format!(
            "the first line is not {BEGIN}"
        )));
    }
    let mut body = String::new();
    let mut ended = false;
    for line in lines.by_ref() {
        if line == END {
            ended = true;
            break;
        }
        if line.len() > LINE_LEN {
            return Err(ContactError::Armor(format!(
                "a line of {} characters, at most {LINE_LEN}",
                line.len()
            )));
        }
        body.push_str(line);
    }
    if !ended {
        return Err(ContactError::Armor(format!("no {END} line (truncated?)")));
    }
    if lines.next().is_some() {
        return Err(ContactError::Armor(format!("text after {END}")));
    }
    base64::engine::general_purpose::STANDARD
        .decode(body.as_bytes())
        .map_err(|e| ContactError::Armor(format!("bad base64 ({e})")))
}

/// A cursor that refuses to read past the end.
struct Reader<'a> {
    bytes: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8], ContactError> {
        if self.bytes.len() < n {
            return Err(ContactError::Malformed(format!(
                "truncated: {what} needs {n} bytes, {} left",
                self.bytes.len()
            )));
        }
        let (head, tail) = self.bytes.split_at(n);
        self.bytes = tail;
        Ok(head)
    }

    fn array<const N: usize>(&mut self, what: &str) -> Result<[u8; N], ContactError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N, what)?);
        Ok(out)
    }

    fn u8(&mut self, what: &str) -> Result<u8, ContactError> {
        Ok(self.array::<1>(what)?[0])
    }

    fn u64(&mut self, what: &str) -> Result<u64, ContactError> {
        Ok(u64::from_be_bytes(self.array(what)?))
    }
}

impl UncheckedOffer {
    /// Decodes an armored offer (no signature or time check yet).
    pub fn from_armored(text: &str) -> Result<Self, ContactError> {
        Self::decode(&dearmor(text)?)
    }

    /// Decodes the binary form (no signature or time check yet).
    pub fn decode(bytes: &[u8]) -> Result<Self, ContactError> {
        if bytes.len() > MAX_ENCODED_LEN {
            return Err(ContactError::Malformed(format!(
                "{} bytes, at most {MAX_ENCODED_LEN}",
                bytes.len()
            )));
        }
        let mut r = Reader { bytes };
        let version = r.u8("the version")?;
        if version != VERSION {
            return Err(ContactError::Malformed(format!(
                "version {version}, this psp reads version {VERSION}"
            )));
        }
        let id_len = usize::from(r.u8("the id length")?);
        if id_len == 0 {
            return Err(ContactError::Malformed("empty id string".into()));
        }
        let id = std::str::from_utf8(r.take(id_len, "the id string")?)
            .map_err(|_| ContactError::Malformed("the id string is not UTF-8".into()))?
            .to_owned();
        let identity_key = r.array("the identity key")?;
        let announcement_key = r.array("the announcement key")?;
        let presence_hint = match r.u8("the presence hint tag")? {
            0 => None,
            1 => Some(r.array("the presence hint")?),
            tag => {
                return Err(ContactError::Malformed(format!(
                    "presence hint tag {tag} (0 or 1)"
                )))
            }
        };
        let created_at = r.u64("the creation time")?;
        let expires_at = r.u64("the expiry time")?;
        let signed_len = bytes.len() - r.bytes.len();
        let signature = r.array("the signature")?;
        if !r.bytes.is_empty() {
            return Err(ContactError::Malformed(format!(
                "{} bytes after the signature",
                r.bytes.len()
            )));
        }
        Ok(Self {
            body: OfferBody {
                id,
                identity_key,
                announcement_key,
                presence_hint,
                created_at,
                expires_at,
            },
            signed: bytes[..signed_len].to_vec(),
            signature,
        })
    }

    /// What the offer claims, unchecked (for messages only).
    pub fn claimed(&self) -> &OfferBody {
        &self.body
    }

    /// Checks the signature, then that the offer is valid at `now` (unix seconds).
    pub fn check(self, now: u64) -> Result<ContactOffer, ContactError> {
        let ok = sr25519::verify(
            &sr25519::Signature(self.signature),
            signed_message(&self.signed),
            &sr25519::PublicKey(self.body.identity_key),
        );
        if !ok {
            return Err(ContactError::BadSignature);
        }
        let b = &self.body;
        if b.expires_at <= b.created_at || b.expires_at - b.created_at > MAX_LIFETIME_SECS {
            return Err(ContactError::Expired(format!(
                "has an invalid validity ({} to {}, at most {MAX_LIFETIME_SECS} s)",
                b.created_at, b.expires_at
            )));
        }
        if b.created_at > now.saturating_add(CLOCK_SKEW_SECS) {
            return Err(ContactError::Expired(format!(
                "was created in the future ({} > now {now}); check both clocks",
                b.created_at
            )));
        }
        if now >= b.expires_at {
            return Err(ContactError::Expired(format!(
                "expired at {} (now {now})",
                b.expires_at
            )));
        }
        Ok(ContactOffer { body: self.body })
    }
}

impl ContactOffer {
    /// The checked facts.
    pub fn body(&self) -> &OfferBody {
        &self.body
    }

    /// Checks the offer against the chain's view of its identity key (`None`: not
    /// registered): the identity must be active, under the same id string, with the same
    /// announcement key.
    pub fn check_on_chain(&self, view: Option<&IdentityView>) -> Result<(), ContactError> {
        let b = &self.body;
        let not_live = |reason: String| ContactError::NotLive {
            id: b.id.clone(),
            reason,
        };
        let Some(view) = view else {
            return Err(not_live(format!(
                "is not registered on chain (key {})",
                hex0x(&b.identity_key)
            )));
        };
        if !matches!(view.status, psp_primitives::IdentityStatus::Active) {
            return Err(not_live("is revoked on chain".into()));
        }
        if !view.key.eq_ignore_ascii_case(&hex0x(&b.identity_key)) {
            return Err(not_live(format!(
                "is registered under another key ({})",
                view.key
            )));
        }
        if view.id != b.id {
            return Err(not_live(format!(
                "has id string {} on chain, not the offered one",
                view.id
            )));
        }
        if !view
            .x25519
            .eq_ignore_ascii_case(&hex0x(&b.announcement_key))
        {
            return Err(not_live(format!(
                "announces with {} on chain, not the offered {} (rotated? ask for a fresh offer)",
                view.x25519,
                hex0x(&b.announcement_key)
            )));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn keypair(seed: u8) -> Keypair {
        Keypair::from_secret_key([seed; 32]).expect("a valid seed")
    }

    fn body(kp: &Keypair, hint: Option<[u8; 32]>) -> OfferBody {
        OfferBody {
            id: "peerstream:client:account:example".into(),
            identity_key: kp.public_key().0,
            announcement_key: [7; 32],
            presence_hint: hint,
            created_at: 1_000,
            expires_at: 1_000 + 7 * 24 * 3600,
        }
    }

    fn raw(text: &str) -> Vec<u8> {
        dearmor(text).unwrap()
    }

    #[test]
    fn an_offer_round_trips_with_and_without_a_hint() {
        let kp = keypair(1);
        for hint in [None, Some([9; 32])] {
            let text = create(&kp, body(&kp, hint)).unwrap();
            assert!(text.starts_with(BEGIN) && text.trim_end().ends_with(END));
            assert!(text
                .lines()
                .all(|l| l.len() <= LINE_LEN || l.starts_with("-----")));
            let offer = UncheckedOffer::from_armored(&text)
                .unwrap()
                .check(2_000)
                .unwrap();
            assert_eq!(offer.body(), &body(&kp, hint));
        }
    }

    #[test]
    fn every_flipped_byte_is_refused() {
        let kp = keypair(1);
        let bytes = raw(&create(&kp, body(&kp, Some([9; 32]))).unwrap());
        for i in 0..bytes.len() {
            for bit in [0x01u8, 0x80] {
                let mut b = bytes.clone();
                b[i] ^= bit;
                let checked = UncheckedOffer::decode(&b).and_then(|o| o.check(2_000));
                assert!(checked.is_err(), "byte {i} bit {bit:#x} accepted");
                // Refused by the armor path too.
                assert!(UncheckedOffer::from_armored(&armor(&b))
                    .and_then(|o| o.check(2_000))
                    .is_err());
            }
        }
    }

    #[test]
    fn every_truncation_and_extension_is_refused() {
        let kp = keypair(1);
        let bytes = raw(&create(&kp, body(&kp, None)).unwrap());
        for n in 0..bytes.len() {
            let err = UncheckedOffer::decode(&bytes[..n]).unwrap_err();
            assert!(matches!(err, ContactError::Malformed(_)), "{n}: {err}");
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(UncheckedOffer::decode(&longer)
            .unwrap_err()
            .to_string()
            .contains("after the signature"));
    }

    #[test]
    fn wrong_armor_is_refused() {
        let kp = keypair(1);
        let text = create(&kp, body(&kp, None)).unwrap();
        let cases = [
            text.replace(BEGIN, "-----BEGIN PGP MESSAGE-----"),
            text.replace(END, "-----END PSP CONTACT OFFERS-----"),
            text.lines().take(2).collect::<Vec<_>>().join("\n"),
            format!("{text}trailing words"),
            text.replacen('\n', "\n!", 2),
            "x".repeat(MAX_ARMORED_LEN + 1),
            String::new(),
        ];
        for case in cases {
            let err = UncheckedOffer::from_armored(&case).unwrap_err();
            assert!(matches!(err, ContactError::Armor(_)), "{err}");
            assert!(err.to_string().contains("BEGIN PSP CONTACT OFFER"), "{err}");
        }
    }

    #[test]
    fn a_forged_offer_is_refused() {
        // Mallory signs Alice's keys with her own key: the signature fails under Alice's key.
        let (alice, mallory) = (keypair(1), keypair(2));
        let mut bytes = raw(&create(&mallory, body(&mallory, None)).unwrap());
        let alice_key = alice.public_key().0;
        let start = 2 + body(&mallory, None).id.len();
        bytes[start..start + 32].copy_from_slice(&alice_key);
        let err = UncheckedOffer::decode(&bytes)
            .unwrap()
            .check(2_000)
            .unwrap_err();
        assert!(matches!(err, ContactError::BadSignature), "{err}");
        // Signing with a key other than the offered one is refused up front.
        assert!(create(&mallory, body(&alice, None)).is_err());
    }

    #[test]
    fn expired_future_and_overlong_offers_are_refused() {
        let kp = keypair(1);
        let ok = body(&kp, None);
        let text = create(&kp, ok.clone()).unwrap();
        let at = |now| UncheckedOffer::from_armored(&text).unwrap().check(now);
        assert!(at(ok.expires_at - 1).is_ok());
        assert!(matches!(at(ok.expires_at), Err(ContactError::Expired(_))));
        assert!(matches!(
            at(ok.created_at - CLOCK_SKEW_SECS - 1),
            Err(ContactError::Expired(_))
        ));
        let long = OfferBody {
            expires_at: ok.created_at + MAX_LIFETIME_SECS + 1,
            ..ok
        };
        let text = create(&kp, long).unwrap();
        let err = UncheckedOffer::from_armored(&text)
            .unwrap()
            .check(2_000)
            .unwrap_err();
        assert!(err.to_string().contains("invalid validity"), "{err}");
    }

    fn view(kp: &Keypair, x25519: [u8; 32], revoked: bool) -> IdentityView {
        IdentityView {
            id: "peerstream:client:account:example".into(),
            owner: String::new(),
            kind: psp_primitives::IdentityKind::Client,
            namespace: "peerstream".into(),
            app_namespace: "account".into(),
            key: hex0x(&kp.public_key().0),
            x25519: hex0x(&x25519),
            node: None,
            deposit: "0".into(),
            registered_at: 1,
            rotations: 0,
            status: if revoked {
                psp_primitives::IdentityStatus::Revoked {
                    at: 5,
                    forced: false,
                }
            } else {
                psp_primitives::IdentityStatus::Active
            },
        }
    }

    #[test]
    fn the_chain_must_show_the_identity_live_with_the_same_keys() {
        let kp = keypair(1);
        let text = create(&kp, body(&kp, None)).unwrap();
        let offer = UncheckedOffer::from_armored(&text)
            .unwrap()
            .check(2_000)
            .unwrap();
        assert!(offer
            .check_on_chain(Some(&view(&kp, [7; 32], false)))
            .is_ok());
        for (v, words) in [
            (None, "not registered"),
            (Some(view(&kp, [7; 32], true)), "revoked"),
            (Some(view(&kp, [8; 32], false)), "announces with"),
        ] {
            let err = offer.check_on_chain(v.as_ref()).unwrap_err();
            assert!(err.to_string().contains(words), "{err}");
        }
    }
}
