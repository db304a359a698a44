//! The `psp` command groups, one module each: the group's clap definitions and the handler
//! that runs them. What they share (the `--url`, `--passphrase-file` and `--payer` arguments,
//! JSON and progress output) is in [`common`]; the work itself is done by the `psp_client`
//! library.

pub mod cert;
pub mod circuit;
pub mod common;
pub mod contact;
pub mod device;
pub mod dht;
pub mod directory;
pub mod group;
pub mod identity;
pub mod key;
pub mod messaging;
pub mod rewards;
pub mod stake;
pub mod stream;
