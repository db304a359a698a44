//! What the agent reports, as JSON: its status, presence points, channels, pending requests,
//! look-up results and inbox messages. Keys are `0x` + hex; times are unix seconds.

use serde::{Deserialize, Serialize};

/// `announce-status`: the agent's identity, presence points, channels and queues.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StatusView {
    /// The agent's identity key.
    pub identity: String,
    /// Its id string, as the chain reports it.
    pub id: String,
    /// The end of its current access certificate.
    pub certificate_not_after: u64,
    /// Its presence points, by slot.
    pub points: Vec<PointView>,
    /// Open channels.
    pub channels: Vec<ChannelView>,
    /// The entry node of every anonymous circuit (never a presence node of this agent).
    pub guard: Option<String>,
    /// Pending introductions (see `requests`).
    pub requests: usize,
    /// Connections being set up (look-up, introduction, rendezvous).
    pub connects: usize,
    /// The inbox.
    pub inbox: InboxStats,
    /// Registered overlay nodes the agent builds paths from.
    pub nodes: usize,
}

/// One presence point.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PointView {
    /// Its slot (the DHT topic of its record).
    pub slot: u8,
    /// The presence node, once chosen.
    pub node: Option<String>,
    /// `opening` (building the circuit), `registering`, `registered` or `waiting` (to be
    /// replaced after a failure).
    pub state: String,
    /// The expiry of the record the node confirmed.
    pub expires_at: Option<u64>,
    /// Introductions pending at this point.
    pub pending: usize,
    /// Whether the node said the channel cap is reached.
    pub cap_reached: bool,
    /// Failures since the point was last registered.
    pub failures: u32,
    /// Public (one hop) or anonymous (three hops).
    pub public: bool,
}

/// One open channel.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ChannelView {
    /// The channel number, for `send` / `close`.
    pub channel: u64,
    /// The peer's identity key (proven in the handshake).
    pub peer: String,
    /// Whether this agent introduced itself (else it accepted).
    pub initiated: bool,
    /// When it was established.
    pub opened_at: u64,
    /// Messages sent.
    pub sent: u64,
    /// Messages received.
    pub received: u64,
}

/// A pending introduction: someone asks for a channel.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RequestView {
    /// The request number, for `accept` / `decline`.
    pub request: u64,
    /// The introducer's identity key (its signature and certificate were checked).
    pub from: String,
    /// The presence point it came through.
    pub slot: u8,
    /// When it arrived.
    pub received_at: u64,
}

/// A checked presence record found by a look-up.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PresenceView {
    /// The presence node (the record's co-signer).
    pub presence_node: String,
    /// The record's topic (its slot).
    pub topic: String,
    /// Public or anonymous.
    pub public: bool,
    /// The record's renewal counter.
    pub seq: u64,
    /// When it was issued.
    pub issued_at: u64,
    /// When it expires.
    pub expires_at: u64,
}

/// `lookup`: the records found, in the order a connection tries them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LookupView {
    /// The identity looked up.
    pub peer: String,
    /// Live, checked records, most recent first.
    pub presences: Vec<PresenceView>,
    /// Records found but refused by the checks (forged, expired, revoked ...).
    pub rejected: usize,
}

/// The inbox's size.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InboxStats {
    /// Messages waiting.
    pub messages: usize,
    /// Their bytes.
    pub bytes: usize,
    /// Messages dropped (oldest first) because the inbox was full, since the agent started.
    pub dropped: u64,
}

/// A received message.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InboxMessageView {
    /// Its number in arrival order (gaps are dropped messages).
    pub seq: u64,
    /// The channel it came on.
    pub channel: u64,
    /// The sender's identity key (proven in the channel's handshake).
    pub from: String,
    /// When it arrived.
    pub received_at: u64,
    /// Its length.
    pub len: usize,
    /// The bytes as text, when they are UTF-8.
    pub text: Option<String>,
    /// The bytes as hex.
    pub hex: String,
}

impl InboxMessageView {
    /// The message bytes (from `hex`).
    pub fn bytes(&self) -> Option<Vec<u8>> {
        hex::decode(&self.hex).ok()
    }
}

/// `inbox`: the messages taken from the inbox.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InboxView {
    /// Messages, oldest first; they are removed from the inbox.
    pub messages: Vec<InboxMessageView>,
    /// Messages still waiting (beyond `max`).
    pub remaining: usize,
    /// Messages dropped because the inbox was full, since the agent started.
    pub dropped: u64,
}
