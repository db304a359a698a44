//! # Devices (issue 16)
//!
//! * [`update`]: signed update bundles — a publisher identity signs a manifest of a payload,
//!   a device accepts it only from the publisher it trusts, live on chain, and newer than
//!   what it runs.

pub mod update;
