//! The wire format: strict, versioned, length-bounded encode and decode of every group packet.
//!
//! ```text
//! packet   = version u8 (=1) ‖ kind u8 ‖ group u64 ‖ rest
//! signed   = rest: sender [32] ‖ body ‖ sr25519 signature [64]          (kinds 1..=7)
//!            signature over: "psp/group/<kind>/v1" ‖ version ‖ kind ‖ group ‖ sender ‖ body
//! message  = rest: key epoch u64 ‖ nonce [12] ‖ len u32 ‖ ciphertext     (kind 8)
//! ```
//!
//! Integers are big-endian; every list has a `u16` count bounded by [`MAX_MEMBERS`]; nothing
//! may follow the last field (encodings are canonical, so a checked signature covers exactly
//! the bytes received). Decoding never checks signatures: signed packets decode into
//! [`Unchecked`], and only [`Unchecked::check`] yields a [`Verified`] packet. Group messages
//! carry no sender in the clear: the sender and its signature are inside the ciphertext
//! (see [`crate::message`]).

use psp_onion::bytes::Reader;
use psp_onion::crypto::{sr25519_verify, Sr25519Keypair, Sr25519Signature, SIGNATURE_LEN};

use crate::crypto::{NONCE_LEN, SEAL_OVERHEAD};
use crate::error::{Ctx, Error};
use crate::ids::{AgreementKey, GroupId, KeyEpoch, MemberId, ProposalId, MAX_MEMBERS};

/// The version byte of every packet.
pub const VERSION: u8 = 1;
/// Longest packet: 64 KiB. The largest signed packet, a rollout to [`MAX_MEMBERS`] members,
/// is 12 (header) + 32 (sender) + 8 + 2 + 2 + 256 × (32 + 80) + 64 ≈ 28.8 KiB; a group message
/// is 12 + 8 + 12 + 4 + [`crate::message::MAX_CONTENT_LEN`] + 108 of sealed framing.
pub const MAX_PACKET_LEN: usize = 64 * 1024;
/// Length of the common header: version (1) + kind (1) + group (8) = 10 bytes.
pub const HEADER_LEN: usize = 10;
/// A sealed group key in a rollout: the key (32) + seal overhead (48) = 80 bytes.
pub const SEALED_KEY_LEN: usize = 32 + SEAL_OVERHEAD;
/// Longest sealed welcome: the secret part (rules 14 + epoch 8 + key 32 + transcript 32 +
/// count 2 + [`MAX_MEMBERS`] × 64) plus the seal overhead (48).
pub const MAX_SEALED_WELCOME_LEN: usize = 14 + 8 + 32 + 32 + 2 + MAX_MEMBERS * 64 + SEAL_OVERHEAD;

/// The kind byte of each packet.
mod kind {
    pub const JOIN: u8 = 1;
    pub const PROPOSAL: u8 = 2;
    pub const BALLOT: u8 = 3;
    pub const HEARTBEAT: u8 = 4;
    pub const LEAVE: u8 = 5;
    pub const ROLLOUT: u8 = 6;
    pub const WELCOME: u8 = 7;
    pub const MESSAGE: u8 = 8;
}

/// A newcomer asks a member to be admitted. Signed by the newcomer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Join {
    /// The newcomer's X25519 key: the welcome is sealed to it, and later rollouts.
    pub agreement_key: AgreementKey,
    /// When it was sent (unix seconds): a JOIN is accepted within the clock skew only.
    pub sent_at: u64,
}

/// What a proposal asks the members to decide.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Admit a newcomer. Carries its signed JOIN, so every member checks that the newcomer
    /// owns the identity and chose the agreement key (the newcomer's key reaches every member).
    Admit {
        /// The newcomer.
        newcomer: MemberId,
        /// Its JOIN.
        join: Join,
        /// The newcomer's signature on the JOIN.
        join_signature: Sr25519Signature,
    },
    /// Expel a member; accepted, it ends in a rollout without that member.
    Expel {
        /// The member.
        member: MemberId,
    },
}

impl Action {
    /// The member the proposal is about.
    pub fn subject(&self) -> MemberId {
        match self {
            Self::Admit { newcomer, .. } => *newcomer,
            Self::Expel { member } => *member,
        }
    }
}

/// A member opens a vote. Signed by the proposer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Proposal {
    /// Random id chosen by the proposer.
    pub id: ProposalId,
    /// Ballots cast after this time (unix seconds) are not counted.
    pub deadline: u64,
    /// What is decided.
    pub action: Action,
}

/// A member's vote. Signed by the voter.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ballot {
    /// The proposal voted on.
    pub proposal: ProposalId,
    /// Accept (true) or refuse (false).
    pub accept: bool,
    /// When it was cast; counted only if not after the proposal's deadline.
    pub cast_at: u64,
}

/// A member is alive. Signed by the member.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Heartbeat {
    /// When it was sent.
    pub sent_at: u64,
    /// The key epoch the member holds (lets others see it missed a rollout).
    pub key_epoch: KeyEpoch,
}

/// A member leaves; the others drop it with a rollout. Signed by the member.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Leave {
    /// When it was sent.
    pub sent_at: u64,
}

/// One remaining member's copy of the new group key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SealedKey {
    /// The member.
    pub member: MemberId,
    /// The new key sealed to the member's agreement key.
    pub sealed: [u8; SEALED_KEY_LEN],
}

/// The leader hands out a new group key. Signed by the leader.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rollout {
    /// The new key epoch.
    pub epoch: KeyEpoch,
    /// Members dropped by this rollout.
    pub removed: Vec<MemberId>,
    /// The new key, once per remaining member (the leader included): the new member list.
    pub keys: Vec<SealedKey>,
}

/// The contact member admits a newcomer. Signed by the contact.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Welcome {
    /// The newcomer.
    pub newcomer: MemberId,
    /// The group's secrets sealed to the newcomer's agreement key ([`WelcomeSecret`]).
    pub sealed: Vec<u8>,
}

/// What a welcome seals: everything a newcomer needs to act as a member.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WelcomeSecret {
    /// The group's rules.
    pub rules: crate::ids::Rules,
    /// The current key epoch.
    pub epoch: KeyEpoch,
    /// The current group key.
    pub key: [u8; 32],
    /// The current epoch's transcript hash (the seed of the next leader draw).
    pub transcript: [u8; 32],
    /// The member table, the newcomer included.
    pub members: Vec<(MemberId, AgreementKey)>,
}

/// The body of a signed packet.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Body {
    /// [`Join`].
    Join(Join),
    /// [`Proposal`].
    Proposal(Proposal),
    /// [`Ballot`].
    Ballot(Ballot),
    /// [`Heartbeat`].
    Heartbeat(Heartbeat),
    /// [`Leave`].
    Leave(Leave),
    /// [`Rollout`].
    Rollout(Rollout),
    /// [`Welcome`].
    Welcome(Welcome),
}

impl Body {
    fn kind(&self) -> u8 {
        match self {
            Self::Join(_) => kind::JOIN,
            Self::Proposal(_) => kind::PROPOSAL,
            Self::Ballot(_) => kind::BALLOT,
            Self::Heartbeat(_) => kind::HEARTBEAT,
            Self::Leave(_) => kind::LEAVE,
            Self::Rollout(_) => kind::ROLLOUT,
            Self::Welcome(_) => kind::WELCOME,
        }
    }

    /// The name of the message kind, for errors and logs.
    pub fn name(&self) -> &'static str {
        kind_name(self.kind())
    }

    fn encode(&self, out: &mut Vec<u8>) {
        match self {
            Self::Join(j) => {
                out.extend_from_slice(&j.agreement_key.0);
                out.extend_from_slice(&j.sent_at.to_be_bytes());
            }
            Self::Proposal(p) => {
                out.extend_from_slice(&p.id.0.to_be_bytes());
                out.extend_from_slice(&p.deadline.to_be_bytes());
                match &p.action {
                    Action::Admit {
                        newcomer,
                        join,
                        join_signature,
                    } => {
                        out.push(1);
                        out.extend_from_slice(&newcomer.0);
                        out.extend_from_slice(&join.agreement_key.0);
                        out.extend_from_slice(&join.sent_at.to_be_bytes());
                        out.extend_from_slice(join_signature);
                    }
                    Action::Expel { member } => {
                        out.push(2);
                        out.extend_from_slice(&member.0);
                    }
                }
            }
            Self::Ballot(b) => {
                out.extend_from_slice(&b.proposal.0.to_be_bytes());
                out.push(u8::from(b.accept));
                out.extend_from_slice(&b.cast_at.to_be_bytes());
            }
            Self::Heartbeat(h) => {
                out.extend_from_slice(&h.sent_at.to_be_bytes());
                out.extend_from_slice(&h.key_epoch.0.to_be_bytes());
            }
            Self::Leave(l) => out.extend_from_slice(&l.sent_at.to_be_bytes()),
            Self::Rollout(r) => {
                out.extend_from_slice(&r.epoch.0.to_be_bytes());
                put_count(out, r.removed.len());
                for m in &r.removed {
                    out.extend_from_slice(&m.0);
                }
                put_count(out, r.keys.len());
                for k in &r.keys {
                    out.extend_from_slice(&k.member.0);
                    out.extend_from_slice(&k.sealed);
                }
            }
            Self::Welcome(w) => {
                out.extend_from_slice(&w.newcomer.0);
                // Bounded by MAX_SEALED_WELCOME_LEN when built and decoded.
                out.extend_from_slice(&(w.sealed.len() as u32).to_be_bytes());
                out.extend_from_slice(&w.sealed);
            }
        }
    }

    fn decode(kind: u8, r: &mut Reader<'_>) -> Result<Self, Error> {
        Ok(match kind {
            kind::JOIN => Self::Join(Join {
                agreement_key: AgreementKey(r.array().ctx("join agreement key")?),
                sent_at: r.u64().ctx("join time")?,
            }),
            kind::PROPOSAL => {
                let id = ProposalId(r.u64().ctx("proposal id")?);
                let deadline = r.u64().ctx("proposal deadline")?;
                let action = match r.u8().ctx("proposal action")? {
                    1 => Action::Admit {
                        newcomer: MemberId(r.array().ctx("admit newcomer")?),
                        join: Join {
                            agreement_key: AgreementKey(r.array().ctx("admit agreement key")?),
                            sent_at: r.u64().ctx("admit join time")?,
                        },
                        join_signature: r.array().ctx("admit join signature")?,
                    },
                    2 => Action::Expel {
                        member: MemberId(r.array().ctx("expel member")?),
                    },
                    value => {
                        return Err(Error::BadTag {
                            what: "proposal action",
                            value,
                        })
                    }
                };
                Self::Proposal(Proposal {
                    id,
                    deadline,
                    action,
                })
            }
            kind::BALLOT => Self::Ballot(Ballot {
                proposal: ProposalId(r.u64().ctx("ballot proposal")?),
                accept: match r.u8().ctx("ballot choice")? {
                    0 => false,
                    1 => true,
                    value => {
                        return Err(Error::BadTag {
                            what: "ballot choice",
                            value,
                        })
                    }
                },
                cast_at: r.u64().ctx("ballot time")?,
            }),
            kind::HEARTBEAT => Self::Heartbeat(Heartbeat {
                sent_at: r.u64().ctx("heartbeat time")?,
                key_epoch: KeyEpoch(r.u64().ctx("heartbeat epoch")?),
            }),
            kind::LEAVE => Self::Leave(Leave {
                sent_at: r.u64().ctx("leave time")?,
            }),
            kind::ROLLOUT => {
                let epoch = KeyEpoch(r.u64().ctx("rollout epoch")?);
                let n = get_count(r, "rollout removed count")?;
                let mut removed = Vec::with_capacity(n);
                for _ in 0..n {
                    removed.push(MemberId(r.array().ctx("rollout removed member")?));
                }
                let n = get_count(r, "rollout key count")?;
                let mut keys = Vec::with_capacity(n);
                for _ in 0..n {
                    keys.push(SealedKey {
                        member: MemberId(r.array().ctx("rollout key member")?),
                        sealed: r.array().ctx("rollout sealed key")?,
                    });
                }
                Self::Rollout(Rollout {
                    epoch,
                    removed,
                    keys,
                })
            }
            kind::WELCOME => {
                let newcomer = MemberId(r.array().ctx("welcome newcomer")?);
                let len = usize::try_from(r.u32().ctx("welcome length")?).unwrap_or(usize::MAX);
                if len > MAX_SEALED_WELCOME_LEN {
                    return Err(Error::TooLong {
                        what: "sealed welcome",
                        len,
                        max: MAX_SEALED_WELCOME_LEN,
                    });
                }
                Self::Welcome(Welcome {
                    newcomer,
                    sealed: r.take(len).ctx("sealed welcome")?.to_vec(),
                })
            }
            value => {
                return Err(Error::BadTag {
                    what: "signed packet kind",
                    value,
                })
            }
        })
    }
}

fn kind_name(kind: u8) -> &'static str {
    match kind {
        kind::JOIN => "join",
        kind::PROPOSAL => "proposal",
        kind::BALLOT => "ballot",
        kind::HEARTBEAT => "heartbeat",
        kind::LEAVE => "leave",
        kind::ROLLOUT => "rollout",
        kind::WELCOME => "welcome",
        kind::MESSAGE => "message",
        _ => "unknown",
    }
}

/// Writes a list count. Lists are bounded by [`MAX_MEMBERS`] before encoding, so the count
/// always fits a `u16`.
fn put_count(out: &mut Vec<u8>, n: usize) {
    out.extend_from_slice(&u16::try_from(n).unwrap_or(u16::MAX).to_be_bytes());
}

fn get_count(r: &mut Reader<'_>, what: &'static str) -> Result<usize, Error> {
    let n = usize::from(r.u16().ctx(what)?);
    if n > MAX_MEMBERS {
        return Err(Error::TooLong {
            what,
            len: n,
            max: MAX_MEMBERS,
        });
    }
    Ok(n)
}

/// The bytes a signed packet's signature covers: a per-kind context tag, then the header,
/// the sender and the body.
fn signing_bytes(group: GroupId, sender: &MemberId, body: &Body) -> Vec<u8> {
    let mut m = Vec::with_capacity(64);
    m.extend_from_slice(b"psp/group/");
    m.extend_from_slice(body.name().as_bytes());
    m.extend_from_slice(b"/v1");
    m.push(VERSION);
    m.push(body.kind());
    m.extend_from_slice(&group.0.to_be_bytes());
    m.extend_from_slice(&sender.0);
    body.encode(&mut m);
    m
}

/// Signs `body` with the sender's key and encodes the packet.
pub fn encode_signed(group: GroupId, sender: &Sr25519Keypair, body: &Body) -> Vec<u8> {
    sign(group, sender, body).0
}

/// Signs `body` and encodes the packet; also returns the signature.
pub(crate) fn sign(
    group: GroupId,
    sender: &Sr25519Keypair,
    body: &Body,
) -> (Vec<u8>, Sr25519Signature) {
    let sender_id = MemberId(sender.public());
    let signature = sender.sign(&signing_bytes(group, &sender_id, body));
    let packet = Verified(Unchecked {
        group,
        sender: sender_id,
        body: body.clone(),
        signature,
    })
    .encode();
    (packet, signature)
}

/// A signed packet whose signature has not been checked yet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Unchecked {
    /// The group it names.
    pub group: GroupId,
    /// The claimed sender.
    pub sender: MemberId,
    /// The body.
    pub body: Body,
    /// The claimed signature.
    pub signature: Sr25519Signature,
}

impl Unchecked {
    /// Encodes the packet as it travels (snapshots keep checked proposals and ballots so).
    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(HEADER_LEN + 32 + SIGNATURE_LEN + 64);
        out.push(VERSION);
        out.push(self.body.kind());
        out.extend_from_slice(&self.group.0.to_be_bytes());
        out.extend_from_slice(&self.sender.0);
        self.body.encode(&mut out);
        out.extend_from_slice(&self.signature);
        out
    }

    /// Checks the signature against the sender's key.
    pub fn check(self) -> Result<Verified, Error> {
        let message = signing_bytes(self.group, &self.sender, &self.body);
        if !sr25519_verify(&self.sender.0, &message, &self.signature) {
            return Err(Error::BadSignature {
                what: self.body.name(),
                sender: self.sender,
            });
        }
        Ok(Verified(self))
    }
}

/// A signed packet whose signature verified: the sender really sent this body for this group.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verified(Unchecked);

impl Verified {
    /// The group.
    pub fn group(&self) -> GroupId {
        self.0.group
    }
    /// The sender, whose key signed the packet.
    pub fn sender(&self) -> MemberId {
        self.0.sender
    }
    /// The body.
    pub fn body(&self) -> &Body {
        &self.0.body
    }
    /// The signature (kept so ballots can be re-checked by anyone).
    pub fn signature(&self) -> &Sr25519Signature {
        &self.0.signature
    }
    /// Encodes the packet again, byte for byte as received.
    pub fn encode(&self) -> Vec<u8> {
        self.0.encode()
    }
}

/// A group message: ciphertext under the group key of `epoch`. See [`crate::message`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupMessage {
    /// The group.
    pub group: GroupId,
    /// The key epoch it is sealed under.
    pub epoch: KeyEpoch,
    /// The AEAD nonce, random per message.
    pub nonce: [u8; NONCE_LEN],
    /// `ChaCha20-Poly1305(K_c, nonce, aad = header, sender ‖ time ‖ content ‖ signature)`.
    pub ciphertext: Vec<u8>,
}

impl GroupMessage {
    /// The bytes before the ciphertext: the AEAD's associated data.
    pub(crate) fn header(group: GroupId, epoch: KeyEpoch, nonce: &[u8; NONCE_LEN]) -> Vec<u8> {
        let mut h = Vec::with_capacity(HEADER_LEN + 8 + NONCE_LEN);
        h.push(VERSION);
        h.push(kind::MESSAGE);
        h.extend_from_slice(&group.0.to_be_bytes());
        h.extend_from_slice(&epoch.0.to_be_bytes());
        h.extend_from_slice(nonce);
        h
    }

    /// Encodes the packet.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Self::header(self.group, self.epoch, &self.nonce);
        // Bounded by MAX_PACKET_LEN when sealed and decoded.
        out.extend_from_slice(&(self.ciphertext.len() as u32).to_be_bytes());
        out.extend_from_slice(&self.ciphertext);
        out
    }
}

/// Any group packet, as decoded.
// Packets are decoded one at a time and handled at once: the size of the larger variant
// costs nothing worth a box.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Packet {
    /// A signed packet (kinds 1..=7), not yet checked.
    Signed(Unchecked),
    /// A group message (kind 8), not yet opened.
    Message(GroupMessage),
}

/// Decodes a packet: bounds, version, kind and every field; nothing may follow the end.
/// Never checks a signature and never panics, whatever the bytes.
pub fn decode(bytes: &[u8]) -> Result<Packet, Error> {
    if bytes.len() > MAX_PACKET_LEN {
        return Err(Error::TooLong {
            what: "packet",
            len: bytes.len(),
            max: MAX_PACKET_LEN,
        });
    }
    let mut r = Reader::new(bytes);
    let version = r.u8().ctx("version")?;
    if version != VERSION {
        return Err(Error::Version {
            found: version,
            expected: VERSION,
        });
    }
    let kind = r.u8().ctx("kind")?;
    let group = GroupId(r.u64().ctx("group id")?);
    let packet = if kind == kind::MESSAGE {
        let epoch = KeyEpoch(r.u64().ctx("message epoch")?);
        let nonce = r.array().ctx("message nonce")?;
        let len = usize::try_from(r.u32().ctx("message length")?).unwrap_or(usize::MAX);
        Packet::Message(GroupMessage {
            group,
            epoch,
            nonce,
            ciphertext: r.take(len).ctx("message ciphertext")?.to_vec(),
        })
    } else {
        let sender = MemberId(r.array().ctx("sender")?);
        let body = Body::decode(kind, &mut r)?;
        let signature = r.array().ctx("signature")?;
        Packet::Signed(Unchecked {
            group,
            sender,
            body,
            signature,
        })
    };
    if r.remaining() != 0 {
        return Err(Error::TrailingBytes {
            what: kind_name(kind),
            len: r.remaining(),
        });
    }
    Ok(packet)
}

/// Encodes the secret part of a welcome (sealed before it goes on the wire).
pub(crate) fn encode_welcome_secret(w: &WelcomeSecret) -> zeroize::Zeroizing<Vec<u8>> {
    let mut out = zeroize::Zeroizing::new(Vec::with_capacity(88 + w.members.len() * 64));
    // No limit is 0, which is not a valid limit (`Rules::is_valid`).
    out.extend_from_slice(&w.rules.member_limit.unwrap_or(0).to_be_bytes());
    out.extend_from_slice(&w.rules.heartbeat_secs.to_be_bytes());
    out.extend_from_slice(&w.rules.timeout_secs.to_be_bytes());
    out.extend_from_slice(&w.rules.vote_secs.to_be_bytes());
    out.extend_from_slice(&w.epoch.0.to_be_bytes());
    out.extend_from_slice(&w.key);
    out.extend_from_slice(&w.transcript);
    put_count(&mut out, w.members.len());
    for (id, key) in &w.members {
        out.extend_from_slice(&id.0);
        out.extend_from_slice(&key.0);
    }
    out
}

/// Decodes the secret part of a welcome, once opened.
pub(crate) fn decode_welcome_secret(bytes: &[u8]) -> Result<WelcomeSecret, Error> {
    let mut r = Reader::new(bytes);
    let limit = r.u16().ctx("welcome limit")?;
    let rules = crate::ids::Rules {
        member_limit: (limit != 0).then_some(limit),
        heartbeat_secs: r.u32().ctx("welcome heartbeat period")?,
        timeout_secs: r.u32().ctx("welcome timeout")?,
        vote_secs: r.u32().ctx("welcome vote period")?,
    };
    let epoch = KeyEpoch(r.u64().ctx("welcome epoch")?);
    let key = r.array().ctx("welcome key")?;
    let transcript = r.array().ctx("welcome transcript")?;
    let n = get_count(&mut r, "welcome member count")?;
    let mut members = Vec::with_capacity(n);
    for _ in 0..n {
        members.push((
            MemberId(r.array().ctx("welcome member")?),
            AgreementKey(r.array().ctx("welcome member key")?),
        ));
    }
    if r.remaining() != 0 {
        return Err(Error::TrailingBytes {
            what: "welcome secret",
            len: r.remaining(),
        });
    }
    Ok(WelcomeSecret {
        rules,
        epoch,
        key,
        transcript,
        members,
    })
}
