//! Channels (established sessions) and the inbox: sending, receiving into the bounded inbox,
//! `inbox --wait` waiters, closing.

use psp_net::rendezvous::client::{Session, SessionEvent};

use super::{Action, Core, Owner, Ticket};
use crate::hex0x;
use crate::messaging::error::MessagingError;
use crate::messaging::events::AgentEvent;
use crate::messaging::protocol::Reply;
use crate::messaging::views::{ChannelView, InboxView};

/// An established channel.
pub(super) struct Channel {
    pub(super) session: Session,
    initiated: bool,
    opened_at: u64,
    sent: u64,
    received: u64,
}

impl Channel {
    pub(super) fn view(&self, id: u64) -> ChannelView {
        ChannelView {
            channel: id,
            peer: hex0x(self.session.peer_identity()),
            initiated: self.initiated,
            opened_at: self.opened_at,
            sent: self.sent,
            received: self.received,
        }
    }
}

/// An `inbox --wait` request waiting for a message.
pub(super) struct InboxWaiter {
    ticket: Ticket,
    pub(super) deadline: u64,
    max: usize,
}

impl Core {
    /// Registers an established session as a channel; it becomes the channel `send` uses
    /// for its peer.
    pub(super) fn add_channel(&mut self, now: u64, session: Session, initiated: bool) -> u64 {
        let id = self.next_id();
        let peer = *session.peer_identity();
        self.owners.insert(session.stream(), Owner::Session(id));
        self.by_peer.insert(peer, id);
        self.channels.insert(
            id,
            Channel {
                session,
                initiated,
                opened_at: now,
                sent: 0,
                received: 0,
            },
        );
        self.emit(AgentEvent::ChannelOpened {
            channel: id,
            peer: hex0x(&peer),
            initiated,
        });
        id
    }

    /// Sends `bytes` on `channel`: its frames are queued for the stream in order.
    pub(super) fn send_on(
        &mut self,
        channel: u64,
        bytes: Vec<u8>,
    ) -> Result<Reply, MessagingError> {
        let Some(c) = self.channels.get_mut(&channel) else {
            return Err(MessagingError::UnknownChannel(channel));
        };
        match c.session.send(&bytes) {
            Ok(frames) => {
                c.sent += 1;
                let peer = hex0x(c.session.peer_identity());
                for frame in frames {
                    self.write(frame);
                }
                Ok(Reply::Sent {
                    channel,
                    peer,
                    bytes: bytes.len(),
                })
            }
            Err(e) => {
                if c.session.is_closed() {
                    self.remove_channel(channel, format!("sending failed: {e}"));
                }
                Err(e.into())
            }
        }
    }

    pub(super) fn session_data(&mut self, now: u64, channel: u64, bytes: &[u8]) {
        let Some(c) = self.channels.get_mut(&channel) else {
            return;
        };
        let out = c.session.handle_data(bytes);
        for event in self.apply(out) {
            self.session_event(now, channel, event);
        }
    }

    pub(super) fn session_closed(&mut self, now: u64, channel: u64) {
        let Some(c) = self.channels.get_mut(&channel) else {
            return;
        };
        let out = c.session.handle_stream_closed();
        for event in self.apply(out) {
            self.session_event(now, channel, event);
        }
    }

    pub(super) fn session_event(&mut self, now: u64, channel: u64, event: SessionEvent) {
        match event {
            SessionEvent::Message(bytes) => {
                let Some(c) = self.channels.get_mut(&channel) else {
                    return;
                };
                c.received += 1;
                let from = *c.session.peer_identity();
                if crate::groups::envelope::is_envelope(&bytes) {
                    self.actions.push_back(Action::GroupPacket { from, bytes });
                    return;
                }
                let len = bytes.len();
                let (seq, dropped) = self.inbox.push(channel, from, now, bytes);
                self.emit(AgentEvent::MessageReceived {
                    seq,
                    channel,
                    from: hex0x(&from),
                    len,
                });
                if dropped > 0 {
                    self.emit(AgentEvent::InboxDropped { count: dropped });
                }
                self.wake_waiters();
            }
            SessionEvent::Closed(e) => self.remove_channel(channel, e.to_string()),
            _ => {}
        }
    }

    /// `close`: ends the session and its stream.
    pub(super) fn close_channel(&mut self, ticket: Ticket, channel: u64) {
        let Some(c) = self.channels.get_mut(&channel) else {
            return self.reply(ticket, Err(MessagingError::UnknownChannel(channel)));
        };
        let out = c.session.close();
        let _ = self.apply(out);
        self.remove_channel(channel, "closed by this agent".into());
        self.reply(ticket, Ok(Reply::Closed { channel }));
    }

    fn remove_channel(&mut self, channel: u64, reason: String) {
        let Some(c) = self.channels.remove(&channel) else {
            return;
        };
        let peer = *c.session.peer_identity();
        if self.by_peer.get(&peer) == Some(&channel) {
            self.by_peer.remove(&peer);
            // Another channel with the same peer, if any, takes over for sending.
            let other = self
                .channels
                .iter()
                .rev()
                .find(|(_, c)| c.session.peer_identity() == &peer)
                .map(|(id, _)| *id);
            if let Some(other) = other {
                self.by_peer.insert(peer, other);
            }
        }
        self.close_stream(c.session.stream());
        self.emit(AgentEvent::ChannelClosed {
            channel,
            peer: hex0x(&peer),
            reason,
        });
    }

    /// `inbox`: answers at once when messages wait or no wait was asked, else waits.
    pub(super) fn take_inbox(
        &mut self,
        now: u64,
        ticket: Ticket,
        wait_secs: u64,
        max: Option<usize>,
    ) {
        let max = max.unwrap_or(usize::MAX).max(1);
        if !self.inbox.is_empty() || wait_secs == 0 {
            let view = self.inbox_view(max);
            return self.reply(ticket, Ok(Reply::Inbox(view)));
        }
        if self.inbox_waiters.len() >= self.config.max_inbox_waiters {
            let max = self.config.max_inbox_waiters;
            let what = "inbox waits";
            return self.reply(ticket, Err(MessagingError::TooMany { what, max }));
        }
        let deadline = now.saturating_add(wait_secs);
        self.inbox_waiters.push_back(InboxWaiter {
            ticket,
            deadline,
            max,
        });
    }

    fn inbox_view(&mut self, max: usize) -> InboxView {
        let messages = self.inbox.take(max).iter().map(|m| m.view()).collect();
        let stats = self.inbox.stats();
        InboxView {
            messages,
            remaining: stats.messages,
            dropped: stats.dropped,
        }
    }

    /// Messages arrived: the oldest waiters take them.
    fn wake_waiters(&mut self) {
        while !self.inbox.is_empty() {
            let Some(waiter) = self.inbox_waiters.pop_front() else {
                return;
            };
            let view = self.inbox_view(waiter.max);
            self.reply(waiter.ticket, Ok(Reply::Inbox(view)));
        }
    }

    pub(super) fn waiters_timeout(&mut self, now: u64) {
        while let Some(pos) = self.inbox_waiters.iter().position(|w| w.deadline <= now) {
            if let Some(waiter) = self.inbox_waiters.remove(pos) {
                let view = self.inbox_view(waiter.max);
                self.reply(waiter.ticket, Ok(Reply::Inbox(view)));
            }
        }
    }
}
