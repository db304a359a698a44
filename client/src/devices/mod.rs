//! # Devices (issue 16)
//!
//! * [`update`]: signed update bundles — a publisher identity signs a manifest of a payload,
//!   a device accepts it only from the publisher it trusts, live on chain, and newer than
//!   what it runs.
//! * [`data`]: readings a device publishes as signed DHT records, and a server's watch that
//!   accepts only the ones that validate.

pub mod data;
pub mod update;
