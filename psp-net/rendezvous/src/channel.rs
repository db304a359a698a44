//! The end-to-end channel between two identities: messages of any length (up to a bound),
//! encrypted, split into frames that each fit one onion cell, reassembled in order.
//!
//! Every frame is `ChaCha20-Poly1305(key of its direction, nonce = frame counter, plaintext)`;
//! the counter is never sent, so a frame that is altered, dropped, reordered or replayed fails
//! authentication. Frame plaintext: flags 1 (bit 0: first, bit 1: last) · on the first frame,
//! the message length 4 · a chunk of the message. A frame is at most
//! [`ChannelConfig::max_frame_len`] bytes including the 16-byte tag.
//!
//! Memory: one message is reassembled at a time and never beyond
//! [`ChannelConfig::max_message_len`] (default 1 MiB), whatever length the peer announces.
//! After any error the channel is broken for good (its counters are no longer in step): every
//! later call fails, and the caller closes the circuits.

use crate::crypto::{self, SymmetricKey, TAG_LEN};
use crate::wire::{MAX_RELAY_PAYLOAD_LEN, RELAY_OVERHEAD};

const FLAG_FIRST: u8 = 0x01;
const FLAG_LAST: u8 = 0x02;
/// Flags 1 + message length 4.
const FIRST_HEADER_LEN: usize = 1 + 4;
/// Smallest useful frame: tag 16 + first-frame header 5 + one byte of message = 22 bytes.
pub const MIN_FRAME_LEN: usize = TAG_LEN + FIRST_HEADER_LEN + 1;
/// Default message bound: 1 MiB (2 330 frames of 450 bytes).
pub const DEFAULT_MAX_MESSAGE_LEN: usize = 1 << 20;
/// Reassembly buffers grow as frames arrive; they start at most this large (64 KiB), so an
/// announced length costs nothing until the bytes come.
const INITIAL_REASSEMBLY_CAPACITY: usize = 64 * 1024;

/// Why a channel operation failed. Every error breaks the channel.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ChannelError {
    /// A configuration outside what frames allow.
    #[error("bad channel configuration: {0}")]
    BadConfig(&'static str),
    /// A message to send is longer than the bound.
    #[error("message of {len} bytes exceeds the limit of {max}")]
    MessageTooLong {
        /// Its length.
        len: usize,
        /// The bound.
        max: usize,
    },
    /// A received frame is longer than frames may be.
    #[error("frame of {len} bytes exceeds the limit of {max}")]
    FrameTooLong {
        /// Its length.
        len: usize,
        /// The bound.
        max: usize,
    },
    /// A received frame failed authentication.
    #[error("frame failed authentication (tampered, reordered, dropped or replayed)")]
    Integrity,
    /// An authenticated frame that breaks the framing rules (a peer bug, not an attacker).
    #[error("framing violation: {0}")]
    Framing(&'static str),
    /// The peer announced a message longer than the bound.
    #[error("peer announced a message of {len} bytes, limit {max}")]
    AnnouncedTooLong {
        /// The announced length.
        len: usize,
        /// The bound.
        max: usize,
    },
    /// A frame counter is exhausted; open a new channel.
    #[error("frame counter exhausted")]
    CounterExhausted,
    /// An earlier error broke the channel.
    #[error("channel broken by an earlier error")]
    Broken,
}

/// Frame and message bounds of a channel.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct ChannelConfig {
    max_frame_len: usize,
    max_message_len: usize,
}

impl ChannelConfig {
    /// Frames of at most `max_frame_len` bytes (at least [`MIN_FRAME_LEN`], at most a relay
    /// payload), messages of at most `max_message_len` bytes (at most `u32::MAX`).
    pub fn new(max_frame_len: usize, max_message_len: usize) -> Result<Self, ChannelError> {
        if max_frame_len < MIN_FRAME_LEN {
            return Err(ChannelError::BadConfig("frames shorter than MIN_FRAME_LEN"));
        }
        if max_frame_len > MAX_RELAY_PAYLOAD_LEN {
            return Err(ChannelError::BadConfig(
                "frames longer than a relay payload",
            ));
        }
        if u32::try_from(max_message_len).is_err() {
            return Err(ChannelError::BadConfig("messages longer than u32::MAX"));
        }
        Ok(Self {
            max_frame_len,
            max_message_len,
        })
    }

    /// Frames sized so that one `Relay` message fills one cell: the onion stream's data per
    /// cell (e.g. `psp_onion::cell::max_forward_data(3)` = 454) minus the relay overhead (4),
    /// and messages up to [`DEFAULT_MAX_MESSAGE_LEN`].
    pub fn for_cell_data(max_cell_data: usize) -> Result<Self, ChannelError> {
        Self::new(
            max_cell_data.saturating_sub(RELAY_OVERHEAD),
            DEFAULT_MAX_MESSAGE_LEN,
        )
    }

    /// Largest frame, tag included.
    pub fn max_frame_len(&self) -> usize {
        self.max_frame_len
    }

    /// Largest message.
    pub fn max_message_len(&self) -> usize {
        self.max_message_len
    }

    /// Message bytes a frame carries: the frame minus tag and flags (and the length on the
    /// first frame).
    fn chunk_len(&self, first: bool) -> usize {
        let header = if first { FIRST_HEADER_LEN } else { 1 };
        self.max_frame_len - TAG_LEN - header
    }

    /// Frames a message of `len` bytes takes.
    pub fn frames_for(&self, len: usize) -> usize {
        let first = self.chunk_len(true);
        1 + len.saturating_sub(first).div_ceil(self.chunk_len(false))
    }
}

impl Default for ChannelConfig {
    /// 450-byte frames (454 bytes of 3-hop forward cell data − 4 of relay overhead), 1 MiB
    /// messages.
    fn default() -> Self {
        Self {
            max_frame_len: psp_onion::cell::max_forward_data(3) - RELAY_OVERHEAD,
            max_message_len: DEFAULT_MAX_MESSAGE_LEN,
        }
    }
}

/// The keys of the two directions, from our point of view.
pub(crate) struct Direction {
    pub(crate) send: SymmetricKey,
    pub(crate) receive: SymmetricKey,
}

/// A message being reassembled.
struct Partial {
    announced: usize,
    bytes: Vec<u8>,
}

/// An established end-to-end channel.
pub struct Channel {
    peer: [u8; 32],
    keys: Direction,
    send_counter: u64,
    receive_counter: u64,
    config: ChannelConfig,
    partial: Option<Partial>,
    broken: bool,
}

impl core::fmt::Debug for Channel {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Channel")
            .field("sent_frames", &self.send_counter)
            .field("received_frames", &self.receive_counter)
            .field("broken", &self.broken)
            .finish_non_exhaustive()
    }
}

impl Channel {
    pub(crate) fn new(peer: [u8; 32], keys: Direction, config: ChannelConfig) -> Self {
        Self {
            peer,
            keys,
            send_counter: 0,
            receive_counter: 0,
            config,
            partial: None,
            broken: false,
        }
    }

    /// The peer's identity key, proven in the handshake.
    pub fn peer_identity(&self) -> &[u8; 32] {
        &self.peer
    }

    /// The bounds in force.
    pub fn config(&self) -> &ChannelConfig {
        &self.config
    }

    /// Whether an error broke the channel.
    pub fn is_broken(&self) -> bool {
        self.broken
    }

    /// Bytes held for a message being reassembled.
    pub fn reassembly_bytes(&self) -> usize {
        self.partial.as_ref().map_or(0, |p| p.bytes.len())
    }

    /// Encrypts `message` into frames to relay in order (each within `max_frame_len`).
    pub fn seal_message(&mut self, message: &[u8]) -> Result<Vec<Vec<u8>>, ChannelError> {
        if self.broken {
            return Err(ChannelError::Broken);
        }
        let max = self.config.max_message_len;
        if message.len() > max {
            return Err(ChannelError::MessageTooLong {
                len: message.len(),
                max,
            });
        }
        let frames = self.config.frames_for(message.len());
        let last_counter = u64::try_from(frames)
            .ok()
            .and_then(|n| self.send_counter.checked_add(n));
        if last_counter.is_none() {
            self.broken = true;
            return Err(ChannelError::CounterExhausted);
        }
        // `message.len()` ≤ max_message_len ≤ u32::MAX (checked by ChannelConfig::new).
        let announced = u32::try_from(message.len())
            .unwrap_or(u32::MAX)
            .to_be_bytes();
        let mut out = Vec::with_capacity(frames);
        let mut rest = message;
        let mut first = true;
        loop {
            let (chunk, tail) = rest.split_at(self.config.chunk_len(first).min(rest.len()));
            rest = tail;
            let mut flags = if first { FLAG_FIRST } else { 0 };
            if rest.is_empty() {
                flags |= FLAG_LAST;
            }
            let mut plaintext = Vec::with_capacity(FIRST_HEADER_LEN + chunk.len());
            plaintext.push(flags);
            if first {
                plaintext.extend_from_slice(&announced);
            }
            plaintext.extend_from_slice(chunk);
            out.push(crypto::seal(
                &self.keys.send,
                self.send_counter,
                &[],
                &plaintext,
            ));
            self.send_counter += 1;
            first = false;
            if rest.is_empty() {
                return Ok(out);
            }
        }
    }

    /// Authenticates and decrypts the next frame; returns a message when this frame completes
    /// one.
    pub fn open_frame(&mut self, frame: &[u8]) -> Result<Option<Vec<u8>>, ChannelError> {
        if self.broken {
            return Err(ChannelError::Broken);
        }
        let result = self.open_frame_inner(frame);
        if result.is_err() {
            self.broken = true;
            self.partial = None;
        }
        result
    }

    fn open_frame_inner(&mut self, frame: &[u8]) -> Result<Option<Vec<u8>>, ChannelError> {
        if frame.len() > self.config.max_frame_len {
            return Err(ChannelError::FrameTooLong {
                len: frame.len(),
                max: self.config.max_frame_len,
            });
        }
        let counter = self.receive_counter;
        let next = counter
            .checked_add(1)
            .ok_or(ChannelError::CounterExhausted)?;
        let plaintext = crypto::open(&self.keys.receive, counter, &[], frame)
            .map_err(|_| ChannelError::Integrity)?;
        self.receive_counter = next;
        let (flags, chunk) = parse_plaintext(&plaintext)?;
        if let Some(announced) = flags.announced {
            if self.partial.is_some() {
                return Err(ChannelError::Framing("first frame inside a message"));
            }
            if announced > self.config.max_message_len {
                return Err(ChannelError::AnnouncedTooLong {
                    len: announced,
                    max: self.config.max_message_len,
                });
            }
            self.partial = Some(Partial {
                announced,
                bytes: Vec::with_capacity(announced.min(INITIAL_REASSEMBLY_CAPACITY)),
            });
        }
        let partial = self
            .partial
            .as_mut()
            .ok_or(ChannelError::Framing("continuation without a first frame"))?;
        if partial.bytes.len() + chunk.len() > partial.announced {
            return Err(ChannelError::Framing(
                "more bytes than the message announced",
            ));
        }
        partial.bytes.extend_from_slice(chunk);
        if !flags.last {
            return Ok(None);
        }
        let complete = self
            .partial
            .take()
            .ok_or(ChannelError::Framing("continuation without a first frame"))?;
        if complete.bytes.len() != complete.announced {
            return Err(ChannelError::Framing(
                "last frame before the message was complete",
            ));
        }
        Ok(Some(complete.bytes))
    }
}

struct Flags {
    /// On a first frame: the announced message length.
    announced: Option<usize>,
    last: bool,
}

fn parse_plaintext(plaintext: &[u8]) -> Result<(Flags, &[u8]), ChannelError> {
    let (&flags, rest) = plaintext
        .split_first()
        .ok_or(ChannelError::Framing("empty frame"))?;
    if flags & !(FLAG_FIRST | FLAG_LAST) != 0 {
        return Err(ChannelError::Framing("unknown frame flags"));
    }
    let last = flags & FLAG_LAST != 0;
    if flags & FLAG_FIRST == 0 {
        return Ok((
            Flags {
                announced: None,
                last,
            },
            rest,
        ));
    }
    let (len, chunk) = rest
        .split_first_chunk::<4>()
        .ok_or(ChannelError::Framing("first frame without a length"))?;
    let announced = usize::try_from(u32::from_be_bytes(*len)).unwrap_or(usize::MAX);
    Ok((
        Flags {
            announced: Some(announced),
            last,
        },
        chunk,
    ))
}

/// The frame plaintext parser, for the fuzz target.
pub(crate) fn fuzz_decode_plaintext(data: &[u8]) -> Result<(), ChannelError> {
    parse_plaintext(data).map(|_| ())
}

#[cfg(test)]
mod tests;
