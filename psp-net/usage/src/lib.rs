//! # psp-usage: the off-chain core of bandwidth rewards (PSP overview §8.3, issue 14)
//!
//! ## Overview
//!
//! Before consuming a stream, a client makes a fresh sr25519 *session key*, solves a puzzle
//! bound to a recent finalized block ([`puzzle`]) and receives from an oracle a signed
//! [`ticket`] for the session id (the key's BLAKE2-256 hash). A distribution node admits the
//! consumer only with a valid, unexpired, unreplayed ticket and a proof that the consumer
//! holds the session key ([`ticket::TicketGate`]). Both ends meter the session and, after each
//! epoch, sign their byte counts with the chain's own messages ([`report`]); the consumer adds
//! a [`token`] drawn unlinkably from a paid subscription, without which the session does not
//! count. Each elected oracle pairs the two halves by (epoch, session) and hands out batches
//! of `UsageRecord`s for `pallet-psp-rewards::submit_reports` ([`collect`]).
//!
//! ## Terminology
//!
//! - *Session key / session id*: `psp_primitives::rewards::{SessionKey, SessionId}`; one
//!   per consumer and distribution node, unrelated to the consumer's identity.
//! - *Half*: one side's signed usage of one session in one epoch.
//! - *Consumer token*: a blind RSA signature (RFC 9474, via `psp-receipts`) over
//!   (epoch, session id) under an oracle's per-epoch token key.
//!
//! ## Interface
//!
//! - Client: [`puzzle::solve`], [`ticket::Admission::new`], [`token::TokenRequest`],
//!   [`report::ClientMeter`].
//! - Oracle: [`ticket::TicketIssuer`], [`token::TokenIssuer`], [`collect::Collector`].
//! - Distribution node: [`ticket::TicketGate`], [`report::RelayMeter`].
//! - Oracle node service: [`service::UsageService`], behind circuit streams with BEGIN name
//!   [`service::USAGE_SERVICE`]; its messages [`wire::UsageMsg`], and the client's side
//!   [`wire::request_ticket`], [`wire::deliver`], [`wire::AnswerReader`].
//! - Wire: [`puzzle::Solution`], [`ticket::SignedTicket`], [`ticket::Admission`],
//!   [`token::ConsumerToken`], [`report::Half`].
//!
//! Everything is sans IO: no sockets, no tasks, no clock, no chain access. Time comes in as
//! arguments (unix seconds for tickets, unix milliseconds for traffic), chain state (finalized
//! blocks, elected oracles, token keys) from the host, and every table is bounded.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod collect;
mod error;
pub mod puzzle;
pub mod report;
pub mod service;
pub mod ticket;
pub mod token;
pub mod wire;

pub use collect::{Accepted, Batch, Collector, CollectorConfig, EpochInfo, EpochStats};
pub use error::UsageError;
pub use puzzle::{Challenge, PuzzleVerifier, RecentBlocks, Solution};
pub use report::{ClientHalf, ClientMeter, Half, RelayHalf, RelayMeter};
pub use service::{Action, Handled, ServiceConfig, UsageService, USAGE_SERVICE};
pub use ticket::{
    Admission, AdmittedSession, GateConfig, IssuerConfig, SessionTicket, SignedTicket, TicketGate,
    TicketIssuer,
};
pub use token::{ConsumerToken, TokenIssuer, TokenKey, TokenKeys, TokenRequest};
pub use wire::{AnswerReader, UsageMsg, UsageRefusal};
