//! # PSP primitives
//!
//! `no_std` types shared by every part of the PeerStream Protocol node: the runtime, the
//! pallets, the overlay (`psp-net`) and the client. Anything that is signed on one side and
//! verified on another lives here, so both sides encode exactly the same bytes.
//!
//! - [`identity`]: identity kinds, keys, node info, and the payloads an identity key signs.
//! - [`id_string`]: the textual identity id (`peerstream.client.account.<key>`), parse and print.
//! - [`staking`]: roles, signed role statements, equivocation evidence, staking API views.
//! - [`rewards`]: bandwidth usage records, the messages relays and clients sign, normalization,
//!   the oracle quorum and median, and the oracle set the rewards pallet reads.
//! - [`subscriptions`]: stream subscription plans, subscriptions, oracles' receipt keys and
//!   the bytes an oracle signs to publish them.
//! - [`api`]: the `PspApi`, `PspStakingApi`, `PspRewardsApi` and `PspSubscriptionsApi` runtime
//!   APIs the node serves as `psp_*` JSON-RPC methods.
//! - `rpc` (std only): the JSON shape of those methods' answers, shared by node and client.
#![cfg_attr(not(feature = "std"), no_std)]

extern crate alloc;

pub mod api;
pub mod id_string;
pub mod identity;
pub mod rewards;
pub mod staking;
pub mod subscriptions;

pub use id_string::{IdString, IdStringError};
pub use identity::*;
#[cfg(feature = "std")]
pub mod rpc;
