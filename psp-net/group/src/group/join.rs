//! The newcomer's side of joining: send JOIN to a contact member, wait for its WELCOME.

use std::collections::BTreeMap;

use psp_onion::crypto::Sr25519Keypair;

use super::{check_rules, Group, Member};
use crate::crypto::{self, AgreementSecret, GroupKey};
use crate::error::Error;
use crate::ids::{GroupId, MemberId};
use crate::wire::{self, Body, Join, Packet};

/// What binds a welcome's seal to its group, contact and newcomer.
pub(super) fn welcome_context(group: GroupId, contact: &MemberId, newcomer: &MemberId) -> Vec<u8> {
    [
        &b"psp/group/welcome/v1"[..],
        &group.0.to_be_bytes(),
        &contact.0,
        &newcomer.0,
    ]
    .concat()
}

/// A newcomer waiting to be admitted.
#[derive(Debug)]
pub struct Joining {
    group: GroupId,
    keys: Sr25519Keypair,
    agreement: AgreementSecret,
    contact: MemberId,
}

impl Joining {
    /// Starts joining `group` through `contact`; returns the state and the JOIN packet for the
    /// host to send to the contact (over a private channel).
    pub fn new(
        group: GroupId,
        contact: MemberId,
        keys: Sr25519Keypair,
        agreement: AgreementSecret,
        now: u64,
    ) -> (Self, Vec<u8>) {
        let join = Join {
            agreement_key: agreement.public(),
            sent_at: now,
        };
        let bytes = wire::encode_signed(group, &keys, &Body::Join(join));
        (
            Self {
                group,
                keys,
                agreement,
                contact,
            },
            bytes,
        )
    }

    /// The member the JOIN went to.
    pub fn contact(&self) -> MemberId {
        self.contact
    }

    /// Handles a packet from the contact: a WELCOME makes this newcomer a member.
    pub fn handle_welcome(&self, now: u64, bytes: &[u8]) -> Result<Group, Error> {
        let Packet::Signed(unchecked) = wire::decode(bytes)? else {
            return Err(Error::BadWelcome("a group message, not a welcome"));
        };
        if unchecked.group != self.group {
            return Err(Error::WrongGroup {
                expected: self.group,
                found: unchecked.group,
            });
        }
        let packet = unchecked.check()?;
        let me = MemberId(self.keys.public());
        let sender = packet.sender();
        let Body::Welcome(welcome) = packet.body() else {
            return Err(Error::BadWelcome("another signed packet, not a welcome"));
        };
        if sender != self.contact || welcome.newcomer != me {
            return Err(Error::UnexpectedWelcome { sender });
        }
        let context = welcome_context(self.group, &sender, &me);
        let plaintext = crypto::open_sealed(&self.agreement, &context, &welcome.sealed)
            .map_err(|_| Error::DoesNotOpen { what: "welcome" })?;
        let secret = wire::decode_welcome_secret(&plaintext)?;
        check_rules(&secret.rules)?;
        if secret.members.len() > secret.rules.limit() {
            return Err(Error::GroupFull {
                members: secret.members.len(),
                limit: secret.rules.limit(),
            });
        }
        let mut members = BTreeMap::new();
        for (id, agreement_key) in &secret.members {
            let member = Member {
                agreement_key: *agreement_key,
                last_seen: now,
                last_signed_time: 0,
                key_epoch: secret.epoch,
            };
            if members.insert(*id, member).is_some() {
                return Err(Error::BadWelcome("it lists a member twice"));
            }
        }
        if members.get(&me).map(|m| m.agreement_key) != Some(self.agreement.public())
            || !members.contains_key(&sender)
        {
            return Err(Error::UnexpectedWelcome { sender });
        }
        Ok(Group::from_parts(
            self.group,
            secret.rules,
            self.keys.clone(),
            self.agreement.clone(),
            secret.epoch,
            GroupKey::from_bytes(secret.key),
            secret.transcript,
            members,
            now,
        ))
    }
}
