//! Group messages: content sealed under the current group key, the sender hidden inside.
//!
//! ```text
//! plaintext = sender [32] ‖ sent_at u64 ‖ len u32 ‖ content ‖ signature [64]
//! signature over "psp/group/message/v1" ‖ group ‖ key epoch ‖ sender ‖ sent_at ‖ content
//! packet    = header (version, kind 8, group, key epoch, nonce) ‖ len u32 ‖
//!             ChaCha20-Poly1305(K_c, nonce, aad = header, plaintext)
//! ```
//!
//! A relay or a non-member sees the group id, the key epoch and the length, nothing else: the
//! sender and its signature are inside the ciphertext. The signature inside lets members tell
//! which member wrote it (the group key alone would let any member forge any other). Nonces
//! are random: ChaCha20-Poly1305's 96-bit nonce keeps collisions negligible for far more
//! messages (≪ 2^32) than one key epoch of a small group carries.

use psp_onion::bytes::Reader;
use psp_onion::crypto::{sr25519_verify, Sr25519Keypair, SIGNATURE_LEN};

use crate::crypto::{random_nonce, GroupKey};
use crate::error::{Ctx, Error};
use crate::ids::{GroupId, KeyEpoch, MemberId};
use crate::wire::GroupMessage;

/// Longest content of one group message: 32 KiB (larger payloads are split by the host).
pub const MAX_CONTENT_LEN: usize = 32 * 1024;

/// A group message, opened and its signature checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Delivered {
    /// The member who wrote it.
    pub sender: MemberId,
    /// When the sender says it wrote it.
    pub sent_at: u64,
    /// The content.
    pub content: Vec<u8>,
}

fn signing_bytes(
    group: GroupId,
    epoch: KeyEpoch,
    sender: &MemberId,
    sent_at: u64,
    content: &[u8],
) -> Vec<u8> {
    let mut m = Vec::with_capacity(20 + 8 + 8 + 32 + 8 + content.len());
    m.extend_from_slice(b"psp/group/message/v1");
    m.extend_from_slice(&group.0.to_be_bytes());
    m.extend_from_slice(&epoch.0.to_be_bytes());
    m.extend_from_slice(&sender.0);
    m.extend_from_slice(&sent_at.to_be_bytes());
    m.extend_from_slice(content);
    m
}

/// Signs and seals `content` under `key`.
pub(crate) fn seal(
    group: GroupId,
    epoch: KeyEpoch,
    key: &GroupKey,
    sender: &Sr25519Keypair,
    sent_at: u64,
    content: &[u8],
    rng: &mut dyn rand_core::CryptoRngCore,
) -> Result<GroupMessage, Error> {
    if content.len() > MAX_CONTENT_LEN {
        return Err(Error::TooLong {
            what: "group message content",
            len: content.len(),
            max: MAX_CONTENT_LEN,
        });
    }
    let sender_id = MemberId(sender.public());
    let signature = sender.sign(&signing_bytes(group, epoch, &sender_id, sent_at, content));
    let mut plaintext = zeroize::Zeroizing::new(Vec::with_capacity(
        32 + 8 + 4 + content.len() + SIGNATURE_LEN,
    ));
    plaintext.extend_from_slice(&sender_id.0);
    plaintext.extend_from_slice(&sent_at.to_be_bytes());
    // Bounded by MAX_CONTENT_LEN above.
    plaintext.extend_from_slice(&(content.len() as u32).to_be_bytes());
    plaintext.extend_from_slice(content);
    plaintext.extend_from_slice(&signature);
    let nonce = random_nonce(rng);
    let ciphertext = key.seal(
        &nonce,
        &GroupMessage::header(group, epoch, &nonce),
        &plaintext,
    );
    Ok(GroupMessage {
        group,
        epoch,
        nonce,
        ciphertext,
    })
}

/// Opens a group message with `key` (the key of the message's epoch) and checks the sender's
/// signature. Whether the sender is a member is the caller's check.
pub(crate) fn open(message: &GroupMessage, key: &GroupKey) -> Result<Delivered, Error> {
    let header = GroupMessage::header(message.group, message.epoch, &message.nonce);
    let plaintext = key
        .open(&message.nonce, &header, &message.ciphertext)
        .map_err(|_| Error::DoesNotOpen {
            what: "group message",
        })?;
    let mut r = Reader::new(&plaintext);
    let sender = MemberId(r.array().ctx("message sender")?);
    let sent_at = r.u64().ctx("message time")?;
    let len = usize::try_from(r.u32().ctx("message content length")?).unwrap_or(usize::MAX);
    if len > MAX_CONTENT_LEN {
        return Err(Error::TooLong {
            what: "group message content",
            len,
            max: MAX_CONTENT_LEN,
        });
    }
    let content = r.take(len).ctx("message content")?.to_vec();
    let signature = r.array().ctx("message signature")?;
    if r.remaining() != 0 {
        return Err(Error::TrailingBytes {
            what: "group message plaintext",
            len: r.remaining(),
        });
    }
    let signed = signing_bytes(message.group, message.epoch, &sender, sent_at, &content);
    if !sr25519_verify(&sender.0, &signed, &signature) {
        return Err(Error::BadSignature {
            what: "group message",
            sender,
        });
    }
    Ok(Delivered {
        sender,
        sent_at,
        content,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_core::OsRng;

    #[test]
    fn sealed_message_opens_under_its_key_only_and_hides_the_sender() {
        let alice = Sr25519Keypair::from_seed(&[1; 32]);
        let key = GroupKey::random(&mut OsRng);
        let m = seal(
            GroupId(7),
            KeyEpoch(3),
            &key,
            &alice,
            100,
            b"hi all",
            &mut OsRng,
        )
        .expect("seals");
        let bytes = m.encode();
        assert!(!bytes.windows(32).any(|w| w == alice.public()));
        let d = open(&m, &key).expect("opens");
        assert_eq!(d.sender, MemberId(alice.public()));
        assert_eq!(d.content, b"hi all");
        assert!(open(&m, &GroupKey::random(&mut OsRng)).is_err());
        let mut moved = m.clone();
        moved.epoch = KeyEpoch(4);
        assert!(open(&moved, &key).is_err(), "the header is authenticated");
    }

    #[test]
    fn oversized_content_is_refused() {
        let alice = Sr25519Keypair::from_seed(&[1; 32]);
        let key = GroupKey::random(&mut OsRng);
        let big = vec![0; MAX_CONTENT_LEN + 1];
        assert!(matches!(
            seal(GroupId(7), KeyEpoch(0), &key, &alice, 0, &big, &mut OsRng),
            Err(Error::TooLong { .. })
        ));
    }
}
