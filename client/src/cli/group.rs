//! `psp group`: groups hosted by the messaging agent (issue 15). Most commands send one
//! `group` request to a running agent (`psp messaging agent`) over its control socket and
//! print the JSON answer; `register`, `publish` and `contacts` put the group on chain and in
//! the DHT: a group identity (kind `group`, application namespace `group-<group id>`) and its
//! signed `join` record listing the members that take JOINs.

use std::path::PathBuf;

use clap::Subcommand;
use psp_client::dht::{key_of, topic, Publication};
use psp_client::groups::protocol::{group_text, parse_group, GroupReply, GroupRequest};
use psp_client::messaging::{Reply, Request};
use psp_client::psp_primitives::{id_string::IdString, IdentityKind};
use psp_client::{hex0x, identity, parse_hex, Error, Result};
use serde::{Deserialize, Serialize};

use super::common::{print_json, NodeArgs, PassArgs, PayerArgs};
use super::messaging::SocketArgs;

/// The DHT topic of a group's join record.
pub const JOIN_TOPIC: &str = "join";
/// The network namespace of group identities.
const NAMESPACE: &str = "peerstream";

#[derive(Debug, Subcommand)]
pub enum GroupCommand {
    /// The groups this agent holds and the joins it waits on.
    List {
        #[command(flatten)]
        socket: SocketArgs,
    },
    /// Create a group with this agent as its only member; prints its id and rules.
    Create {
        /// Most members (default: the protocol's 256).
        #[arg(long)]
        member_limit: Option<u16>,
        /// Heartbeat period, seconds (default 60).
        #[arg(long, value_name = "SECS")]
        heartbeat: Option<u32>,
        /// Silence after which a member is rolled out, seconds (default 300).
        #[arg(long, value_name = "SECS")]
        member_timeout: Option<u32>,
        /// How long votes stay open, seconds (default 120).
        #[arg(long, value_name = "SECS")]
        vote: Option<u32>,
        #[command(flatten)]
        socket: SocketArgs,
    },
    /// Register the group's identity on chain: kind group, application namespace
    /// `group-<group id>`, key from --group-keystore (make one with `psp key generate`).
    Register {
        /// The group id (0x + 16 hex digits).
        #[arg(long)]
        group: String,
        /// The group identity's keystore.
        #[arg(long)]
        group_keystore: PathBuf,
        #[command(flatten)]
        pass: PassArgs,
        #[command(flatten)]
        payer: PayerArgs,
        #[command(flatten)]
        node: NodeArgs,
    },
    /// Publish the group's join record in the DHT (signed by the group identity): the
    /// members this agent knows, who take JOINs, and the group's rules. Renew it before
    /// --ttl ends.
    Publish {
        /// The group id.
        #[arg(long)]
        group: String,
        /// The group identity's keystore.
        #[arg(long)]
        group_keystore: PathBuf,
        #[command(flatten)]
        pass: PassArgs,
        /// Seconds the record lives.
        #[arg(long, default_value_t = 3_600)]
        ttl: u64,
        #[command(flatten)]
        node: NodeArgs,
        #[command(flatten)]
        socket: SocketArgs,
    },
    /// Read a group's join record: its id and the members that take JOINs (checked: the
    /// record is signed by the group identity, which is a live group on chain).
    Contacts {
        /// The group's id string.
        group_identity: String,
        #[command(flatten)]
        node: NodeArgs,
    },
    /// Send JOIN to a member; the members vote. With a group id string, the contact comes
    /// from the group's join record; or name it with --contact and --group.
    Join {
        /// The group's id string (reads its join record through --url).
        #[arg(required_unless_present = "group")]
        group_identity: Option<String>,
        /// The group id, with --contact.
        #[arg(long, requires = "contact", conflicts_with = "group_identity")]
        group: Option<String>,
        /// The member to send JOIN to (0x + 64 hex digits).
        #[arg(long)]
        contact: Option<String>,
        #[command(flatten)]
        node: NodeArgs,
        #[command(flatten)]
        socket: SocketArgs,
    },
    /// The open proposals to vote on.
    Proposals {
        /// The group id.
        group: String,
        #[command(flatten)]
        socket: SocketArgs,
    },
    /// A vote's tally with every signed ballot, recomputed by this member's agent.
    Tally {
        /// The group id.
        group: String,
        /// The proposal's number.
        proposal: u64,
        #[command(flatten)]
        socket: SocketArgs,
    },
    /// Vote on a proposal.
    Vote {
        /// The group id.
        group: String,
        /// The proposal's number.
        proposal: u64,
        /// Accept (default) or refuse with --refuse.
        #[arg(long)]
        refuse: bool,
        #[command(flatten)]
        socket: SocketArgs,
    },
    /// The member table, the key epoch and the key fingerprint.
    Members {
        /// The group id.
        group: String,
        #[command(flatten)]
        socket: SocketArgs,
    },
    /// Send a message under the group key to every member, or with --to to one member only
    /// (the others never receive it; relays see only channel cells).
    Send {
        /// The group id.
        group: String,
        /// One member (0x + 64 hex digits).
        #[arg(long)]
        to: Option<String>,
        /// The message.
        #[arg(long)]
        text: String,
        #[command(flatten)]
        socket: SocketArgs,
    },
    /// Take the received group messages.
    Read {
        /// The group id.
        group: String,
        /// Wait up to this many seconds for one.
        #[arg(long, value_name = "SECS", default_value_t = 0)]
        wait: u64,
        /// Take at most this many.
        #[arg(long)]
        max: Option<usize>,
        #[command(flatten)]
        socket: SocketArgs,
    },
    /// Leave the group (the members roll out a new key without this agent).
    Leave {
        /// The group id.
        group: String,
        #[command(flatten)]
        socket: SocketArgs,
    },
    /// Propose to expel a member; decided by vote, ends in a rollout.
    Expel {
        /// The group id.
        group: String,
        /// The member (0x + 64 hex digits).
        member: String,
        #[command(flatten)]
        socket: SocketArgs,
    },
}

/// The value of a group's join record.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct JoinRecord {
    /// The group id.
    pub group: String,
    /// Members that take JOINs (their presence points are found by a messaging lookup).
    pub contacts: Vec<String>,
    /// Most members.
    pub member_limit: usize,
    /// Heartbeat period, s.
    pub heartbeat_secs: u32,
    /// Silence after which a member is rolled out, s.
    pub timeout_secs: u32,
    /// How long votes stay open, s.
    pub vote_secs: u32,
}

/// Runs a `psp group` command.
pub async fn run(cmd: GroupCommand) -> Result<()> {
    let (request, socket) = match cmd {
        GroupCommand::List { socket } => (GroupRequest::List, socket),
        GroupCommand::Create {
            member_limit,
            heartbeat,
            member_timeout,
            vote,
            socket,
        } => (
            GroupRequest::Create {
                member_limit,
                heartbeat_secs: heartbeat,
                timeout_secs: member_timeout,
                vote_secs: vote,
            },
            socket,
        ),
        GroupCommand::Register {
            group,
            group_keystore,
            pass,
            payer,
            node,
        } => return register(&group, &group_keystore, &pass, &payer, &node).await,
        GroupCommand::Publish {
            group,
            group_keystore,
            pass,
            ttl,
            node,
            socket,
        } => return publish(&group, &group_keystore, &pass, ttl, &node, &socket).await,
        GroupCommand::Contacts {
            group_identity,
            node,
        } => return print_json(&read_join_record(&group_identity, &node).await?),
        GroupCommand::Join {
            group_identity,
            group,
            contact,
            node,
            socket,
        } => {
            let (group, contact) = match (group_identity, group, contact) {
                (_, Some(group), Some(contact)) => (group, contact),
                (Some(identity), _, contact) => {
                    let record = read_join_record(&identity, &node).await?;
                    let contact = contact
                        .or_else(|| record.contacts.first().cloned())
                        .ok_or_else(|| Error::InvalidInput {
                            what: "group",
                            reason: "its join record lists no member taking JOINs".into(),
                        })?;
                    (record.group, contact)
                }
                _ => {
                    return Err(Error::InvalidInput {
                        what: "join",
                        reason: "give the group's id string, or --group and --contact".into(),
                    })
                }
            };
            (GroupRequest::Join { group, contact }, socket)
        }
        GroupCommand::Proposals { group, socket } => (GroupRequest::Proposals { group }, socket),
        GroupCommand::Tally {
            group,
            proposal,
            socket,
        } => (GroupRequest::Tally { group, proposal }, socket),
        GroupCommand::Vote {
            group,
            proposal,
            refuse,
            socket,
        } => (
            GroupRequest::Vote {
                group,
                proposal,
                accept: !refuse,
            },
            socket,
        ),
        GroupCommand::Members { group, socket } => (GroupRequest::Members { group }, socket),
        GroupCommand::Send {
            group,
            to,
            text,
            socket,
        } => (
            GroupRequest::Send {
                group,
                to,
                text: Some(text),
                hex: None,
            },
            socket,
        ),
        GroupCommand::Read {
            group,
            wait,
            max,
            socket,
        } => (
            GroupRequest::Read {
                group,
                wait_secs: wait,
                max,
            },
            socket,
        ),
        GroupCommand::Leave { group, socket } => (GroupRequest::Leave { group }, socket),
        GroupCommand::Expel {
            group,
            member,
            socket,
        } => (GroupRequest::Expel { group, member }, socket),
    };
    let reply = call(&socket, request).await?;
    print_json(&reply)
}

async fn call(socket: &SocketArgs, request: GroupRequest) -> Result<GroupReply> {
    match socket.request(Request::Group { request }).await? {
        Reply::Group { reply } => Ok(reply),
        other => Err(Error::InvalidInput {
            what: "agent answer",
            reason: format!("not a group reply: {other:?}"),
        }),
    }
}

fn group_app(group: &str) -> Result<String> {
    let id = parse_group(group).map_err(|e| Error::InvalidInput {
        what: "--group",
        reason: e.to_string(),
    })?;
    Ok(format!("group-{}", &group_text(id)[2..]))
}

async fn register(
    group: &str,
    keystore: &std::path::Path,
    pass: &PassArgs,
    payer: &PayerArgs,
    node: &NodeArgs,
) -> Result<()> {
    let keys = pass.open(keystore)?;
    let app = group_app(group)?;
    let prepared = identity::registration(&keys, IdentityKind::Group, NAMESPACE, &app, None, &[])?;
    super::identity::submit_registration(&keys, prepared, payer, node).await
}

async fn publish(
    group: &str,
    keystore: &std::path::Path,
    pass: &PassArgs,
    ttl: u64,
    node: &NodeArgs,
    socket: &SocketArgs,
) -> Result<()> {
    let keys = pass.open(keystore)?;
    group_app(group)?;
    let GroupReply::Members(view) = call(
        socket,
        GroupRequest::Members {
            group: group.to_owned(),
        },
    )
    .await?
    else {
        return Err(Error::InvalidInput {
            what: "agent answer",
            reason: "not a member table".into(),
        });
    };
    let record = JoinRecord {
        group: view.group,
        contacts: view.members.into_iter().map(|m| m.id).collect(),
        member_limit: view.member_limit,
        heartbeat_secs: view.heartbeat_secs,
        timeout_secs: view.timeout_secs,
        vote_secs: view.vote_secs,
    };
    let value = serde_json::to_vec(&record).map_err(|e| Error::InvalidInput {
        what: "join record",
        reason: e.to_string(),
    })?;
    let publication = Publication::labelled("group", JOIN_TOPIC, value, ttl, None)?;
    let put = node.rpc().await?.dht_publish(&keys, &publication).await?;
    print_json(&put)
}

/// Reads and checks a group's join record: the id string's kind is `group`, its application
/// namespace names the group id the record carries, and the identity is live on chain.
async fn read_join_record(group_identity: &str, node: &NodeArgs) -> Result<JoinRecord> {
    let bad = |reason: String| Error::InvalidInput {
        what: "group identity",
        reason,
    };
    let id = IdString::parse(group_identity).map_err(|e| bad(e.to_string()))?;
    if id.kind != IdentityKind::Group {
        return Err(bad(format!("{group_identity} is not a group identity")));
    }
    let view = node
        .chain()
        .await?
        .identity_by_key(&id.key, None)
        .await?
        .ok_or_else(|| bad(format!("{group_identity} is not registered on chain")))?;
    if !matches!(
        view.status,
        psp_client::psp_primitives::IdentityStatus::Active
    ) {
        return Err(bad(format!("{group_identity} is not active on chain")));
    }
    let key = key_of(
        psp_client::dht::parse_kind("group")?,
        &id.key,
        &topic(JOIN_TOPIC),
    );
    let record = node
        .rpc()
        .await?
        .dht_get(&key)
        .await?
        .ok_or_else(|| bad(format!("no join record of {group_identity} in the DHT")))?;
    let value = psp_client::parse_hex_vec(&record.value, "record value")?;
    let join: JoinRecord = serde_json::from_slice(&value)
        .map_err(|e| bad(format!("its join record does not parse: {e}")))?;
    if group_app(&join.group)? != id.app_namespace {
        return Err(bad(format!(
            "its join record names group {}, its id string {}",
            join.group, id.app_namespace
        )));
    }
    for contact in &join.contacts {
        parse_hex::<32>(contact, "join record contact")?;
    }
    eprintln!("group {} through {}", join.group, hex0x(&id.key));
    Ok(join)
}
