//! Why a group operation failed.

/// Everything the groups host refuses or fails at; each message says what to do.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GroupError {
    /// The agent runs without groups (no state directory).
    #[error("this agent runs without groups; start it with a groups directory")]
    Disabled,
    /// No group with this id here.
    #[error("no group {0} in this agent; `psp group list` lists them")]
    UnknownGroup(String),
    /// A join of this group is already waiting, or this agent is a member.
    #[error("group {0}: already a member or joining")]
    AlreadyIn(String),
    /// Too many groups held.
    #[error("this agent holds {held} groups and joins, the most it keeps")]
    TooMany {
        /// Groups and joins held.
        held: usize,
    },
    /// A request's value is malformed.
    #[error("invalid {what}: {reason}")]
    Invalid {
        /// Which field.
        what: &'static str,
        /// Why, and what is expected.
        reason: String,
    },
    /// A group envelope that does not parse.
    #[error("malformed group envelope: {0}")]
    Malformed(String),
    /// A packet for a group this agent neither holds nor joins.
    #[error("a packet for group {0}, which this agent neither holds nor joins")]
    NotHere(String),
    /// The group protocol refused (a bad signature, a stale key, not the leader, full, ...).
    #[error("group {group}: {source}")]
    Protocol {
        /// The group.
        group: String,
        /// psp-group's reason.
        source: psp_group::Error,
    },
    /// The state file could not be read or written.
    #[error("group state {path}: {reason}")]
    Store {
        /// The file.
        path: String,
        /// Why.
        reason: String,
    },
}

impl GroupError {
    /// A stable name for the control protocol.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Disabled => "GroupsDisabled",
            Self::UnknownGroup(_) => "UnknownGroup",
            Self::AlreadyIn(_) => "AlreadyInGroup",
            Self::TooMany { .. } => "TooManyGroups",
            Self::Invalid { .. } => "InvalidRequest",
            Self::Malformed(_) => "MalformedGroupPacket",
            Self::NotHere(_) => "NotInGroup",
            Self::Protocol { .. } => "GroupProtocol",
            Self::Store { .. } => "GroupStore",
        }
    }
}
