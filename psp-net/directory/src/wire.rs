//! Shared pieces of the directory wire format: integers, address lists, entry lists, and the
//! checks a decoded (or about to be signed) value must pass.

use super::consensus::DirectoryEntry;
use super::{flags, DirectoryError, MAX_ADDRESSES, MAX_ADDRESS_LEN};
use crate::bytes::Reader;
use crate::crypto::NodeId;

/// Appends a big-endian `u64`.
pub(super) fn put_u64(out: &mut Vec<u8>, v: u64) {
    out.extend_from_slice(&v.to_be_bytes());
}

/// Appends a list length as `u32`. Lists are checked against limits far below `u32::MAX`
/// before signing; the clamp only keeps a hand-built oversized value from panicking.
pub(super) fn put_len_u32(out: &mut Vec<u8>, len: usize) {
    out.extend_from_slice(&u32::try_from(len).unwrap_or(u32::MAX).to_be_bytes());
}

/// Appends an address list: a `u8` count, then each address as a `u8` length and its bytes.
/// Values beyond the limits are clamped so encoding never panics; [`check_entry`] refuses them
/// before anything is signed.
pub(super) fn put_addresses(out: &mut Vec<u8>, addresses: &[String]) {
    out.push(u8::try_from(addresses.len()).unwrap_or(u8::MAX));
    for a in addresses.iter().take(usize::from(u8::MAX)) {
        let bytes = &a.as_bytes()[..a.len().min(usize::from(u8::MAX))];
        out.push(bytes.len() as u8); // at most u8::MAX, just clamped
        out.extend_from_slice(bytes);
    }
}

/// Reads an address list written by [`put_addresses`], within the limits.
pub(super) fn read_addresses(
    r: &mut Reader<'_>,
    node: NodeId,
    what: &'static str,
) -> Result<Vec<String>, DirectoryError> {
    let count = usize::from(r.u8().map_err(DirectoryError::truncated(what))?);
    if count > MAX_ADDRESSES {
        return Err(DirectoryError::TooMany {
            what: "addresses",
            count,
            max: MAX_ADDRESSES,
        });
    }
    let mut out = Vec::with_capacity(count);
    for _ in 0..count {
        let len = usize::from(r.u8().map_err(DirectoryError::truncated(what))?);
        if len > MAX_ADDRESS_LEN {
            return Err(DirectoryError::InvalidAddress {
                node,
                why: "longer than MAX_ADDRESS_LEN",
            });
        }
        let bytes = r.take(len).map_err(DirectoryError::truncated(what))?;
        let s = core::str::from_utf8(bytes).map_err(|_| DirectoryError::InvalidAddress {
            node,
            why: "not UTF-8",
        })?;
        out.push(s.to_owned());
    }
    Ok(out)
}

/// Checks one node's flags and addresses against the limits: what every decoder enforces and
/// what signing requires, so that everything signed can be decoded.
pub(super) fn check_entry(
    node: NodeId,
    node_flags: u8,
    addresses: &[String],
) -> Result<(), DirectoryError> {
    if node_flags & !flags::ALL != 0 {
        return Err(DirectoryError::UnknownFlags {
            node,
            flags: node_flags,
        });
    }
    if addresses.len() > MAX_ADDRESSES {
        return Err(DirectoryError::TooMany {
            what: "addresses",
            count: addresses.len(),
            max: MAX_ADDRESSES,
        });
    }
    for (i, a) in addresses.iter().enumerate() {
        let why = if a.is_empty() {
            "empty"
        } else if a.len() > MAX_ADDRESS_LEN {
            "longer than MAX_ADDRESS_LEN"
        } else if addresses[..i].contains(a) {
            "listed twice"
        } else {
            continue;
        };
        return Err(DirectoryError::InvalidAddress { node, why });
    }
    Ok(())
}

/// Appends an entry list: a `u32` count, then each entry as node id, flags, addresses.
pub(super) fn put_entries(out: &mut Vec<u8>, entries: &[DirectoryEntry]) {
    put_len_u32(out, entries.len());
    for e in entries {
        out.extend_from_slice(&e.node.0);
        out.push(e.flags);
        put_addresses(out, &e.addresses);
    }
}

/// Smallest encoded entry: node id, flags, an empty address list.
const MIN_ENTRY_LEN: usize = 32 + 1 + 1;

/// Reads an entry list written by [`put_entries`]: at most `max` entries, each valid, strictly
/// increasing by node id.
pub(super) fn read_entries(
    r: &mut Reader<'_>,
    max: usize,
    what: &'static str,
) -> Result<Vec<DirectoryEntry>, DirectoryError> {
    let count = r.u32().map_err(DirectoryError::truncated(what))? as usize;
    if count > max {
        return Err(DirectoryError::TooMany {
            what: "entries",
            count,
            max,
        });
    }
    // Never allocate for more entries than the bytes can hold.
    let mut out: Vec<DirectoryEntry> = Vec::with_capacity(count.min(r.remaining() / MIN_ENTRY_LEN));
    for _ in 0..count {
        let node = NodeId(r.array().map_err(DirectoryError::truncated(what))?);
        let node_flags = r.u8().map_err(DirectoryError::truncated(what))?;
        let addresses = read_addresses(r, node, what)?;
        check_entry(node, node_flags, &addresses)?;
        if out.last().is_some_and(|prev| prev.node >= node) {
            return Err(DirectoryError::Unsorted {
                what: "entries",
                node,
            });
        }
        out.push(DirectoryEntry {
            node,
            flags: node_flags,
            addresses,
        });
    }
    Ok(out)
}

/// Checks an entry list before signing: valid entries, strictly increasing by node id.
pub(super) fn check_entries(entries: &[DirectoryEntry], max: usize) -> Result<(), DirectoryError> {
    if entries.len() > max {
        return Err(DirectoryError::TooMany {
            what: "entries",
            count: entries.len(),
            max,
        });
    }
    for (i, e) in entries.iter().enumerate() {
        check_entry(e.node, e.flags, &e.addresses)?;
        if i > 0 && entries[i - 1].node >= e.node {
            return Err(DirectoryError::Unsorted {
                what: "entries",
                node: e.node,
            });
        }
    }
    Ok(())
}

/// Refuses bytes left after a complete value.
pub(super) fn finish(r: &Reader<'_>, what: &'static str) -> Result<(), DirectoryError> {
    match r.remaining() {
        0 => Ok(()),
        extra => Err(DirectoryError::TrailingBytes { what, extra }),
    }
}
