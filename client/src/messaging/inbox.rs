//! The inbox: received messages waiting to be read, bounded in count and bytes.
//!
//! A peer cannot be slowed down once its message has arrived (the channel has no flow
//! control back to the sender), so when the inbox is full the *oldest* messages are dropped
//! and counted: a reader that stops reading loses old messages, never memory. Reading takes
//! messages out (a mailbox, not a log).

use std::collections::VecDeque;

use super::views::{InboxMessageView, InboxStats};
use crate::hex0x;

/// Bounds of the inbox.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct InboxLimits {
    /// Messages kept at most. Default 1 024.
    pub max_messages: usize,
    /// Bytes kept at most. Default 64 MiB: 64 messages of the channel's 1 MiB maximum.
    pub max_bytes: usize,
}

impl Default for InboxLimits {
    fn default() -> Self {
        Self {
            max_messages: 1_024,
            max_bytes: 64 << 20,
        }
    }
}

/// A received message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InboxMessage {
    /// Arrival number (starts at 1; gaps are dropped messages).
    pub seq: u64,
    /// The channel it came on.
    pub channel: u64,
    /// The sender's identity key.
    pub from: [u8; 32],
    /// Unix seconds.
    pub received_at: u64,
    /// The message.
    pub bytes: Vec<u8>,
}

impl InboxMessage {
    /// As JSON for the control socket.
    pub fn view(&self) -> InboxMessageView {
        InboxMessageView {
            seq: self.seq,
            channel: self.channel,
            from: hex0x(&self.from),
            received_at: self.received_at,
            len: self.bytes.len(),
            text: std::str::from_utf8(&self.bytes).ok().map(str::to_owned),
            hex: hex::encode(&self.bytes),
        }
    }
}

/// The bounded inbox.
#[derive(Debug, Default)]
pub struct Inbox {
    limits: InboxLimits,
    messages: VecDeque<InboxMessage>,
    bytes: usize,
    dropped: u64,
    next_seq: u64,
}

impl Inbox {
    /// An empty inbox with these bounds.
    pub fn new(limits: InboxLimits) -> Self {
        Self {
            limits,
            ..Self::default()
        }
    }

    /// Stores a message, dropping the oldest ones to stay within the bounds (a message larger
    /// than the byte bound itself is dropped). Returns its number and how many were dropped.
    pub fn push(
        &mut self,
        channel: u64,
        from: [u8; 32],
        received_at: u64,
        bytes: Vec<u8>,
    ) -> (u64, u64) {
        self.next_seq += 1;
        let seq = self.next_seq;
        if bytes.len() > self.limits.max_bytes || self.limits.max_messages == 0 {
            self.dropped += 1;
            return (seq, 1);
        }
        let mut dropped = 0;
        while self.messages.len() >= self.limits.max_messages
            || self.bytes + bytes.len() > self.limits.max_bytes
        {
            match self.messages.pop_front() {
                Some(old) => {
                    self.bytes -= old.bytes.len();
                    dropped += 1;
                }
                None => break,
            }
        }
        self.dropped += dropped;
        self.bytes += bytes.len();
        self.messages.push_back(InboxMessage {
            seq,
            channel,
            from,
            received_at,
            bytes,
        });
        (seq, dropped)
    }

    /// Takes up to `max` messages, oldest first.
    pub fn take(&mut self, max: usize) -> Vec<InboxMessage> {
        let n = max.min(self.messages.len());
        let taken: Vec<InboxMessage> = self.messages.drain(..n).collect();
        self.bytes -= taken.iter().map(|m| m.bytes.len()).sum::<usize>();
        taken
    }

    /// Messages waiting.
    pub fn len(&self) -> usize {
        self.messages.len()
    }

    /// Whether no message waits.
    pub fn is_empty(&self) -> bool {
        self.messages.is_empty()
    }

    /// Counts for the status.
    pub fn stats(&self) -> InboxStats {
        InboxStats {
            messages: self.messages.len(),
            bytes: self.bytes,
            dropped: self.dropped,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_oldest_messages_go_when_the_count_bound_is_reached() {
        let mut inbox = Inbox::new(InboxLimits {
            max_messages: 3,
            max_bytes: 1_000,
        });
        for i in 0..5u8 {
            inbox.push(1, [i; 32], 10, vec![i; 10]);
        }
        assert_eq!(inbox.len(), 3);
        assert_eq!(inbox.stats().dropped, 2);
        assert_eq!(inbox.stats().bytes, 30);
        let got = inbox.take(2);
        assert_eq!(got.iter().map(|m| m.seq).collect::<Vec<_>>(), [3, 4]);
        assert_eq!(got[0].bytes, vec![2; 10]);
        assert_eq!(inbox.stats().bytes, 10);
        assert_eq!(inbox.take(usize::MAX).len(), 1);
        assert!(inbox.is_empty());
        assert_eq!(inbox.stats().bytes, 0);
    }

    #[test]
    fn the_byte_bound_holds_and_an_oversized_message_is_dropped_alone() {
        let mut inbox = Inbox::new(InboxLimits {
            max_messages: 100,
            max_bytes: 100,
        });
        inbox.push(1, [1; 32], 1, vec![0; 60]);
        inbox.push(1, [1; 32], 1, vec![0; 30]);
        let (_, dropped) = inbox.push(1, [1; 32], 1, vec![0; 50]);
        assert_eq!(dropped, 1, "the 60-byte message made room");
        assert_eq!(inbox.stats().bytes, 80);
        let (seq, dropped) = inbox.push(1, [1; 32], 1, vec![0; 101]);
        assert_eq!((seq, dropped), (4, 1));
        assert_eq!(inbox.len(), 2, "older messages stay");
        assert_eq!(inbox.stats().dropped, 2);
    }

    #[test]
    fn views_show_text_when_it_is_utf8() {
        let mut inbox = Inbox::new(InboxLimits::default());
        inbox.push(7, [2; 32], 5, b"hello".to_vec());
        inbox.push(7, [2; 32], 6, vec![0xff, 0x00]);
        let views: Vec<_> = inbox.take(10).iter().map(InboxMessage::view).collect();
        assert_eq!(views[0].text.as_deref(), Some("hello"));
        assert_eq!(views[0].hex, "68656c6c6f");
        assert_eq!(views[1].text, None);
        assert_eq!(views[1].bytes(), Some(vec![0xff, 0x00]));
        assert_eq!(views[1].channel, 7);
    }
}
