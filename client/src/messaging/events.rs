//! What the agent reports as it runs: one [`AgentEvent`] per thing that happened, which
//! `psp messaging agent` prints as one JSON line each and an in-process user subscribes to
//! ([`AgentHandle::subscribe`](super::AgentHandle::subscribe)).

use serde::{Deserialize, Serialize};

/// Something that happened in the agent. Keys are `0x` + hex, times unix seconds.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(
    tag = "event",
    rename_all = "kebab-case",
    rename_all_fields = "camelCase"
)]
#[non_exhaustive]
pub enum AgentEvent {
    /// The agent runs: its identity and control socket.
    Started {
        /// Identity key.
        identity: String,
        /// Id string.
        id: String,
        /// Control socket, if it listens on one.
        socket: Option<String>,
        /// The certificate's end.
        certificate_not_after: u64,
        /// The libp2p peer id of its links (what its entry nodes see), if it has links.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        link_peer: Option<String>,
    },
    /// A presence point's circuit is being built.
    PointOpening {
        /// Its slot.
        slot: u8,
        /// The presence node.
        node: String,
    },
    /// The presence node published the point's record.
    PointRegistered {
        /// Its slot.
        slot: u8,
        /// The presence node.
        node: String,
        /// The record's expiry.
        expires_at: u64,
        /// Introductions per minute the node enforces.
        rate_per_minute: u16,
        /// Channel cap the node enforces.
        cap: u16,
    },
    /// A keep-alive renewed the point's record.
    PointRenewed {
        /// Its slot.
        slot: u8,
        /// The new expiry.
        expires_at: u64,
    },
    /// The point ended (circuit died, refused, lapsed); it is replaced at `retry_at`.
    PointLost {
        /// Its slot.
        slot: u8,
        /// The presence node.
        node: String,
        /// Why.
        reason: String,
        /// When a replacement is opened.
        retry_at: u64,
    },
    /// The point's channel cap is reached; another point is added if the limit allows.
    CapReached {
        /// Its slot.
        slot: u8,
        /// The presence node.
        node: String,
        /// The slot of the point added, if one was.
        added_slot: Option<u8>,
    },
    /// Someone asks for a channel: answer with `accept` or `decline`.
    IntroductionReceived {
        /// The request number.
        request: u64,
        /// The introducer's identity key (signature and certificate checked).
        from: String,
        /// The point it came through.
        slot: u8,
    },
    /// An introduction that failed its checks (or was one too many) was cancelled.
    IntroductionDropped {
        /// The point it came through.
        slot: u8,
        /// Why.
        reason: String,
    },
    /// A pending request is gone (the node withdrew it: timeout, the introducer left).
    RequestWithdrawn {
        /// The request number.
        request: u64,
    },
    /// Contact-only mode: an introduction from someone not in the contact book was declined
    /// on arrival (an ordinary decline for the presence node); it never became a request.
    IntroductionDeclinedNotAContact {
        /// The introducer's identity key.
        from: String,
        /// The presence point's slot.
        slot: u8,
    },
    /// This agent declined a request.
    RequestDeclined {
        /// The request number.
        request: u64,
        /// The introducer.
        from: String,
    },
    /// A connection to a peer made progress (`lookup`, `found`, `introduced`, `accepted`).
    ConnectProgress {
        /// The peer.
        peer: String,
        /// The step reached.
        step: String,
    },
    /// A connection attempt failed.
    ConnectFailed {
        /// The peer.
        peer: String,
        /// Why.
        reason: String,
    },
    /// A channel is established (both identities proven).
    ChannelOpened {
        /// Its number.
        channel: u64,
        /// The peer.
        peer: String,
        /// Whether this agent introduced itself.
        initiated: bool,
    },
    /// A channel ended.
    ChannelClosed {
        /// Its number.
        channel: u64,
        /// The peer.
        peer: String,
        /// Why.
        reason: String,
    },
    /// A message arrived and is in the inbox.
    MessageReceived {
        /// Its inbox number.
        seq: u64,
        /// The channel.
        channel: u64,
        /// The sender.
        from: String,
        /// Its length.
        len: usize,
    },
    /// The inbox was full: old messages were dropped.
    InboxDropped {
        /// How many.
        count: u64,
    },
    /// A new certificate is in use.
    CertificateRenewed {
        /// Its end.
        not_after: u64,
    },
    /// Something happened in a group (a proposal, a decision, a member added or dropped, a
    /// rollout, a message, a refused packet, a member not reachable yet).
    GroupNotice {
        /// The group id.
        group: String,
        /// What, kebab-case: `proposal-opened`, `decided`, `member-added`, `rolled-out`,
        /// `message`, `joined`, `join-refused`, `refused`, `redelivery-pending`, ...
        what: String,
        /// The details, for people.
        detail: String,
    },
    /// Something went wrong in the background (a chain refresh, a renewal); the agent goes on.
    Warning {
        /// What.
        message: String,
    },
}

impl AgentEvent {
    /// The event as one JSON line (without the newline).
    pub fn to_json_line(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|_| "{}".into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_are_tagged_json_lines() {
        let e = AgentEvent::ChannelOpened {
            channel: 2,
            peer: "0x01".into(),
            initiated: true,
        };
        assert_eq!(
            e.to_json_line(),
            r#"{"event":"channel-opened","channel":2,"peer":"0x01","initiated":true}"#
        );
        let back: AgentEvent = serde_json::from_str(&e.to_json_line()).expect("decodes");
        assert_eq!(back, e);
    }
}
