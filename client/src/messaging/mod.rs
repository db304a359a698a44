//! # Private messaging: the client agent
//!
//! A long-running agent for one identity (keystore + access certificate) that holds
//! presence points, pending introductions, channels and an inbox, and drives the
//! `psp_rendezvous` client machines over onion circuits built by `psp_net`'s driver. The
//! `psp messaging` commands talk to it over a Unix socket ([`control`], [`protocol`]).
//!
//! ## Overview
//! * **Presence** (Bob): [`CoreConfig::points`] presence points (default 2), each an
//!   `Announcer` on its own 3-hop circuit (1 hop with [`CoreConfig::public`]) ending at a
//!   presence node chosen from the chain's registered nodes. A point whose circuit dies is
//!   replaced in its slot on a new path; at its channel cap a point gets a sibling.
//! * **Requests**: introductions that passed their checks wait, numbered, for `accept`
//!   (join the introducer's rendezvous point: a channel) or `decline`. With
//!   [`CoreConfig::accept_all`] each is accepted as it arrives (the `introduction-received`
//!   event still comes first): for a public service or a benchmark.
//! * **Connect** (Alice): `send` to an id string or key resolves it on chain, looks up its
//!   presence records over a 3-hop circuit to a random node's `lookup` service (checking
//!   each record itself), then tries them, most recent first: a rendezvous circuit to a
//!   random node, a circuit to the presence node, an `Initiator`. A `send` to a peer with an
//!   open channel reuses it; messages queue while the channel opens. A `send` with a
//!   `presenceNode` tries only the records at that node, and fails with
//!   [`MessagingError::NoPresenceAt`] if there are none.
//! * **Direct** ([`CoreConfig::direct`]): an agent that does not hide its address builds its
//!   rendezvous circuits (as caller and to join a caller's point) and its introductions to
//!   public points (records flagged public) in one hop; anonymous points and look-ups are
//!   still reached over [`CoreConfig::hops`].
//! * **Inbox**: received messages, bounded ([`InboxLimits`]), oldest dropped when full.
//!
//! ## Modules
//! * [`core`]: every decision, sans IO (tested on in-memory node services).
//! * [`agent`]: [`Agent::spawn`] / [`Agent::spawn_with`] and the [`AgentHandle`];
//!   `driver` (private): the async loop that runs the core's actions.
//! * [`net`]: the stream layer ([`Network`], [`OverlayNetwork`]).
//! * [`source`]: the chain ([`ChainSource`], [`RpcChain`]); [`chainview`]: the cached
//!   chain state the machines check against; [`credentials`]: keys + certificate.
//! * [`control`], [`protocol`], [`views`]: the control socket and its JSON.
//! * [`inbox`], [`events`], [`error`].
//!
//! ```no_run
//! # async fn demo() -> Result<(), psp_client::messaging::MessagingError> {
//! use psp_client::messaging::{Agent, AgentConfig, Request, SocketChoice};
//!
//! let mut config = AgentConfig::new("alice.json", "ws://127.0.0.1:9944");
//! config.socket = SocketChoice::None;
//! let agent = Agent::spawn(config).await?;
//! let sent = agent
//!     .request(Request::send("peerstream.client.account.<key58>", b"hello".to_vec()))
//!     .await?;
//! println!("{sent:?}");
//! agent.shutdown().await;
//! # Ok(()) }
//! ```

pub mod agent;
pub mod chainview;
pub mod control;
pub mod core;
pub mod credentials;
mod driver;
pub mod error;
pub mod events;
mod groups;
pub mod inbox;
pub mod net;
pub mod protocol;
pub mod source;
#[cfg(test)]
mod testkit;
pub mod views;

pub use agent::{Agent, AgentConfig, AgentHandle, AgentParts, SocketChoice};
pub use core::{Core, CoreConfig};
pub use error::{ErrorView, MessagingError};
pub use events::AgentEvent;
pub use inbox::InboxLimits;
pub use net::{Network, OverlayNetwork};
pub use protocol::{Reply, Request, Response};
pub use source::{ChainSource, RpcChain};
