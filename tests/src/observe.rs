//! What a node observed about the clients it served, read back from the file it writes with
//! `--overlay-observe-file` ([`crate::OverlayOptions::observe`]): the clients linked to it,
//! the bytes its messaging services received, and its link traffic.

use anyhow::{bail, Context, Result};
use std::collections::{HashMap, HashSet};
use std::path::Path;

/// One node's observations.
#[derive(Clone, Debug, Default)]
pub struct Observed {
    /// Peer ids of the clients linked to this node (it saw their addresses).
    pub client_links: HashSet<String>,
    /// Every byte clients sent to each of this node's services (`presence`, `rendezvous`,
    /// `lookup`), in arrival order.
    pub service_bytes: HashMap<String, Vec<u8>>,
    /// The last link traffic line: frames in, bytes in, frames out, bytes out.
    pub traffic: Option<[u64; 4]>,
}

impl Observed {
    /// Reads the file (missing: nothing observed yet).
    pub fn read(path: &Path) -> Result<Self> {
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
        };
        let mut seen = Self::default();
        // The last line may be half written while the node runs: only whole lines count.
        let whole = text.rfind('\n').map_or("", |end| &text[..end]);
        for line in whole.lines() {
            let mut parts = line.split(' ');
            match (parts.next(), parts.next(), parts.next()) {
                (Some("client-link"), Some(peer), None) => {
                    seen.client_links.insert(peer.to_owned());
                }
                (Some("service"), Some(service), Some(hex)) => {
                    let bytes = psp_client::parse_hex_vec(hex, "service bytes")
                        .with_context(|| format!("{}: a service line", path.display()))?;
                    seen.service_bytes
                        .entry(service.to_owned())
                        .or_default()
                        .extend(bytes);
                }
                (Some("traffic"), Some(first), Some(second)) => {
                    let numbers: Vec<u64> = [first, second]
                        .into_iter()
                        .chain(parts)
                        .map(str::parse)
                        .collect::<Result<_, _>>()
                        .with_context(|| format!("{}: traffic line {line}", path.display()))?;
                    match <[u64; 4]>::try_from(numbers) {
                        Ok(numbers) => seen.traffic = Some(numbers),
                        Err(_) => bail!("{}: traffic line {line}", path.display()),
                    }
                }
                _ => bail!("{}: unknown line {line:?}", path.display()),
            }
        }
        Ok(seen)
    }

    /// Whether a client with this link peer id was linked to this node.
    pub fn saw_address(&self, peer_id: &str) -> bool {
        self.client_links.contains(peer_id)
    }

    /// Whether `key` (`0x` hex) appeared in what this node's `service` received (`None`:
    /// any service).
    pub fn saw_key(&self, service: Option<&str>, key_hex: &str) -> bool {
        let Ok(key) = psp_client::parse_hex_vec(key_hex, "identity key") else {
            return false;
        };
        !key.is_empty()
            && self
                .service_bytes
                .iter()
                .filter(|(name, _)| service.is_none_or(|s| s == name.as_str()))
                .any(|(_, bytes)| bytes.windows(key.len()).any(|w| w == key))
    }

    /// Whether this node's `service` received anything.
    pub fn served(&self, service: &str) -> bool {
        self.service_bytes
            .get(service)
            .is_some_and(|b| !b.is_empty())
    }
}
