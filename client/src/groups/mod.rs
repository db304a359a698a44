//! # Groups on the messaging agent (issue 15)
//!
//! The messaging agent hosts [`psp_group`] groups: every member-to-member packet (JOIN,
//! WELCOME, ballots, heartbeats, rollouts, group messages) travels as a channel message on
//! the private channels of the messaging layer, wrapped in a group [`envelope`], so no node
//! on the way sees a group packet in clear (and group messages are sealed under the group key
//! inside that). The agent keeps each group's state sealed on disk and takes it back at
//! start, so a member that restarts keeps its membership and key.
//!
//! * [`envelope`]: the framing that tells group packets from inbox messages.
//! * [`host`]: the sans-IO host — groups, joins, per-member re-delivery lanes, received
//!   messages, proposals.
//! * [`store`]: sealed state files.
//! * [`protocol`]: the `group` control requests and their JSON.
//!
//! The async side (a task beside the agent's loop) is `messaging::groups`; the `psp group`
//! commands drive it over the agent's control socket.

pub mod envelope;
pub mod error;
pub mod host;
pub mod protocol;
pub mod store;
#[cfg(test)]
mod tests;

pub use error::GroupError;
