//! The `group` requests of the agent's control protocol and their answers: one JSON object
//! inside the messaging protocol's `{"op":"group","request":{...}}`.
//!
//! ```text
//! → {"op":"group","request":{"action":"create","memberLimit":4}}
//! ← {"ok":{"kind":"group","reply":{"kind":"created","group":"0x5d1c0a93e2f4b871",...}}}
//! → {"op":"group","request":{"action":"send","group":"0x5d1c0a93e2f4b871","text":"hi"}}
//! ```
//!
//! Group ids are `0x` + 16 hex digits; member ids are identity keys, `0x` + 64 hex digits.

use psp_group::GroupId;
use serde::{Deserialize, Serialize};

use super::GroupError;
use crate::parse_hex;

/// A group request (`action`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(
    tag = "action",
    rename_all = "kebab-case",
    rename_all_fields = "camelCase",
    deny_unknown_fields
)]
pub enum GroupRequest {
    /// The groups held and the joins waiting.
    List,
    /// Creates a group with this agent as its only member.
    Create {
        /// Most members (default: no limit but the protocol's, 256).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        member_limit: Option<u16>,
        /// Heartbeat period, seconds (default 60).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        heartbeat_secs: Option<u32>,
        /// Silence after which a member is rolled out, seconds (default 300, the seed's).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        timeout_secs: Option<u32>,
        /// How long a vote stays open, seconds (default 120).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        vote_secs: Option<u32>,
    },
    /// Sends JOIN to a member (the contact) over a private channel.
    Join {
        /// The group id.
        group: String,
        /// The contact's identity key.
        contact: String,
    },
    /// The open proposals (admissions and expulsions to vote on).
    Proposals {
        /// The group id.
        group: String,
    },
    /// A vote's tally with every signed ballot, checked here (`verified`): open or decided.
    Tally {
        /// The group id.
        group: String,
        /// The proposal's number.
        proposal: u64,
    },
    /// Casts this member's ballot.
    Vote {
        /// The group id.
        group: String,
        /// The proposal's number.
        proposal: u64,
        /// Accept (true) or refuse.
        accept: bool,
    },
    /// The member table, the key epoch and pending removals.
    Members {
        /// The group id.
        group: String,
    },
    /// Sends a group message under the current group key, to every member or to one.
    Send {
        /// The group id.
        group: String,
        /// One member only (identity key): the others never receive it.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        to: Option<String>,
        /// The message as text; exactly one of `text` and `hex`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        text: Option<String>,
        /// The message as hex.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        hex: Option<String>,
    },
    /// Takes received group messages, waiting up to `waitSecs` for one.
    Read {
        /// The group id.
        group: String,
        /// Seconds to wait when there is none (0: answer at once).
        #[serde(default)]
        wait_secs: u64,
        /// Most to take (default all).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        max: Option<usize>,
    },
    /// Leaves the group (the members roll out without this agent).
    Leave {
        /// The group id.
        group: String,
    },
    /// Proposes to expel a member (decided by vote, ends in a rollout).
    Expel {
        /// The group id.
        group: String,
        /// The member's identity key.
        member: String,
    },
}

impl GroupRequest {
    /// The group the request names, if any.
    pub fn group(&self) -> Option<&str> {
        match self {
            Self::List | Self::Create { .. } => None,
            Self::Join { group, .. }
            | Self::Proposals { group }
            | Self::Tally { group, .. }
            | Self::Vote { group, .. }
            | Self::Members { group }
            | Self::Send { group, .. }
            | Self::Read { group, .. }
            | Self::Leave { group }
            | Self::Expel { group, .. } => Some(group),
        }
    }
}

/// What a group request produced.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(
    tag = "kind",
    rename_all = "kebab-case",
    rename_all_fields = "camelCase"
)]
pub enum GroupReply {
    /// For `list`.
    List {
        /// Groups held.
        groups: Vec<GroupView>,
        /// Joins waiting for a welcome: (group, contact).
        joining: Vec<JoiningView>,
    },
    /// For `create`.
    Created(GroupView),
    /// For `join`: JOIN is on its way; `member-added`/`join-refused` events tell the rest.
    JoinSent(JoiningView),
    /// For `proposals`.
    Proposals {
        /// Open proposals, oldest first.
        proposals: Vec<ProposalView>,
    },
    /// For `tally`.
    Tally(TallyView),
    /// For `vote`, `send`, `leave`: done.
    Done {
        /// The group.
        group: String,
    },
    /// For `expel`: the proposal opened.
    ProposalOpened(ProposalView),
    /// For `members`.
    Members(GroupView),
    /// For `read`.
    Messages {
        /// The group.
        group: String,
        /// Messages, oldest first.
        messages: Vec<MessageView>,
    },
}

/// One group as this member sees it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GroupView {
    /// `0x` + 16 hex digits.
    pub group: String,
    /// This member.
    pub me: String,
    /// Whether this member is active (not left, not expelled).
    pub active: bool,
    /// The key epoch.
    pub epoch: u64,
    /// A fingerprint of the group key, to compare between members.
    pub key_fingerprint: String,
    /// Most members.
    pub member_limit: usize,
    /// Heartbeat period, s.
    pub heartbeat_secs: u32,
    /// Silence before a rollout drops a member, s.
    pub timeout_secs: u32,
    /// How long votes stay open, s.
    pub vote_secs: u32,
    /// The members.
    pub members: Vec<MemberView>,
}

/// A member in the table.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MemberView {
    /// Identity key.
    pub id: String,
    /// When this agent last heard from it.
    pub last_seen: u64,
    /// Why the next rollout drops it, if it does.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pending_removal: Option<String>,
    /// Packets waiting for re-delivery to it.
    pub undelivered: usize,
}

/// A join waiting for its welcome.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct JoiningView {
    /// The group.
    pub group: String,
    /// The member asked.
    pub contact: String,
}

/// An open proposal.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProposalView {
    /// The group.
    pub group: String,
    /// Its number, for `vote`.
    pub proposal: u64,
    /// Who proposed.
    pub proposer: String,
    /// `admit` or `expel`.
    pub action: String,
    /// The newcomer or the member to expel.
    pub subject: String,
    /// Ballots cast after this do not count (unix s).
    pub deadline: u64,
}

/// A vote's tally: the signed proposal's terms, who could vote, every counted ballot with
/// its signature, and whether this member recomputed it from them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TallyView {
    /// The proposal.
    pub proposal: ProposalView,
    /// `open`, `accepted` or `refused`.
    pub outcome: String,
    /// Members who could vote.
    pub eligible: Vec<String>,
    /// Counted ballots.
    pub ballots: Vec<BallotView>,
    /// Accepting ballots.
    pub accepts: usize,
    /// Refusing ballots.
    pub refuses: usize,
    /// Every signature checked and the counts and outcome recomputed (decided votes).
    pub verified: bool,
}

/// One signed ballot.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BallotView {
    /// The voter.
    pub voter: String,
    /// Its choice.
    pub accept: bool,
    /// When it says it voted.
    pub cast_at: u64,
    /// Its sr25519 signature on the ballot packet.
    pub signature: String,
}

/// A received group message.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MessageView {
    /// Its number here.
    pub seq: u64,
    /// The member who wrote it (its signature checked inside the ciphertext).
    pub sender: String,
    /// When the sender says it wrote it.
    pub sent_at: u64,
    /// The content as text, when it is UTF-8.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// The content as hex, otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hex: Option<String>,
}

/// A group id: `0x` + 16 hex digits.
pub fn parse_group(text: &str) -> Result<GroupId, GroupError> {
    let digits = text.strip_prefix("0x").unwrap_or(text);
    if digits.len() != 16 {
        return Err(GroupError::Invalid {
            what: "group",
            reason: format!("{text:?}: expected 0x + 16 hex digits"),
        });
    }
    u64::from_str_radix(digits, 16)
        .map(GroupId)
        .map_err(|e| GroupError::Invalid {
            what: "group",
            reason: format!("{text:?}: {e}"),
        })
}

/// A group id as text.
pub fn group_text(id: GroupId) -> String {
    format!("0x{:016x}", id.0)
}

/// An identity key: `0x` + 64 hex digits.
pub fn parse_member(text: &str, what: &'static str) -> Result<[u8; 32], GroupError> {
    parse_hex::<32>(text, what).map_err(|e| GroupError::Invalid {
        what,
        reason: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_tagged_json() {
        let r: GroupRequest = serde_json::from_str(
            r#"{"action":"vote","group":"0x0000000000000001","proposal":3,"accept":true}"#,
        )
        .expect("decodes");
        assert_eq!(
            r,
            GroupRequest::Vote {
                group: "0x0000000000000001".into(),
                proposal: 3,
                accept: true
            }
        );
        assert!(serde_json::from_str::<GroupRequest>(
            r#"{"action":"members","group":"0x0000000000000001","x":1}"#
        )
        .is_err());
        assert_eq!(parse_group("0x00000000000000ff").expect("id"), GroupId(255));
        assert!(parse_group("0xff").is_err());
        assert!(parse_group("0xzz00000000000000").is_err());
        assert_eq!(group_text(GroupId(255)), "0x00000000000000ff");
    }
}
