//! How group packets ride on private channels: a channel message that starts with
//! [`MAGIC`] is a group envelope, taken by the agent's groups host instead of the inbox.
//!
//! ```text
//! "PSPG" | kind (1) | group id (8, big-endian) | body
//! kind 1: a psp-group packet (JOIN, WELCOME, ballots, heartbeats, rollouts, messages)
//! kind 2: a refusal of a JOIN, the body a UTF-8 reason (told to the newcomer by its contact)
//! ```

use psp_group::GroupId;

use super::GroupError;

/// The first bytes of every group envelope.
pub const MAGIC: &[u8; 4] = b"PSPG";
/// Longest refusal reason carried.
pub const MAX_REASON: usize = 256;
const HEADER: usize = MAGIC.len() + 1 + 8;

/// What an envelope carries.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Body<'a> {
    /// A psp-group packet.
    Packet(&'a [u8]),
    /// The contact refused a JOIN, and why.
    Refusal(String),
}

/// Whether a channel message is a group envelope.
pub fn is_envelope(bytes: &[u8]) -> bool {
    bytes.starts_with(MAGIC)
}

/// An envelope around a psp-group packet.
pub fn packet(group: GroupId, packet: &[u8]) -> Vec<u8> {
    frame(1, group, packet)
}

/// An envelope refusing a JOIN (the reason cut to [`MAX_REASON`] bytes).
pub fn refusal(group: GroupId, reason: &str) -> Vec<u8> {
    let mut end = reason.len().min(MAX_REASON);
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    frame(2, group, &reason.as_bytes()[..end])
}

fn frame(kind: u8, group: GroupId, body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER + body.len());
    out.extend_from_slice(MAGIC);
    out.push(kind);
    out.extend_from_slice(&group.0.to_be_bytes());
    out.extend_from_slice(body);
    out
}

/// Opens an envelope: its group and body.
pub fn open(bytes: &[u8]) -> Result<(GroupId, Body<'_>), GroupError> {
    let malformed = |reason: &str| GroupError::Malformed(reason.to_owned());
    if bytes.len() < HEADER || !is_envelope(bytes) {
        return Err(malformed("shorter than a group envelope's header"));
    }
    let mut id = [0u8; 8];
    id.copy_from_slice(&bytes[MAGIC.len() + 1..HEADER]);
    let group = GroupId(u64::from_be_bytes(id));
    let body = &bytes[HEADER..];
    match bytes[MAGIC.len()] {
        1 => Ok((group, Body::Packet(body))),
        2 if body.len() <= MAX_REASON => Ok((
            group,
            Body::Refusal(String::from_utf8_lossy(body).into_owned()),
        )),
        2 => Err(malformed("refusal reason too long")),
        kind => Err(malformed(&format!("unknown envelope kind {kind}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelopes_round_trip_and_bad_ones_are_refused() {
        let g = GroupId(0x0102_0304_0506_0708);
        let p = packet(g, b"abc");
        assert!(is_envelope(&p));
        assert_eq!(open(&p).expect("opens"), (g, Body::Packet(b"abc")));
        let r = refusal(g, &"é".repeat(200));
        match open(&r).expect("opens") {
            (id, Body::Refusal(reason)) => {
                assert_eq!(id, g);
                assert!(reason.len() <= MAX_REASON && reason.starts_with('é'));
            }
            other => panic!("{other:?}"),
        }
        assert!(open(b"PSPG").is_err());
        assert!(open(b"hello, a plain message").is_err());
        let mut bad = p.clone();
        bad[4] = 9;
        assert!(open(&bad).is_err());
    }
}
