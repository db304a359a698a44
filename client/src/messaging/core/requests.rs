//! Pending introductions (requests) and joins: `accept` answers the presence node and joins
//! the introducer's rendezvous point with a `Responder`; `decline` tells the introducer no.
//! With [`CoreConfig::accept_all`](super::CoreConfig::accept_all) every request is accepted
//! as it arrives, with no one to answer. In contact-only mode
//! ([`CoreConfig::contacts`](super::CoreConfig::contacts)) an introduction from anyone not in
//! the set is declined on arrival and never becomes a request. A direct agent joins in one
//! hop.

use psp_net::rendezvous::client::{Output, Responder, ResponderEvent};
use psp_net::rendezvous::intro::VerifiedIntroduction;
use psp_net::rendezvous::{IntroId, StreamHandle};

use super::{Core, Owner, Ticket, RENDEZVOUS_SERVICE};
use crate::hex0x;
use crate::messaging::error::MessagingError;
use crate::messaging::events::AgentEvent;
use crate::messaging::protocol::Reply;
use crate::messaging::views::RequestView;

/// An introduction waiting for `accept` or `decline`.
pub(super) struct PendingRequest {
    slot: u8,
    intro: IntroId,
    from: [u8; 32],
    received_at: u64,
}

/// An accepted introduction, joining its rendezvous point.
pub(super) struct Join {
    /// The `accept` to answer (`None`: accepted by `accept_all`).
    ticket: Option<Ticket>,
    stream: StreamHandle,
    introduction: VerifiedIntroduction,
    pub(super) responder: Option<Responder>,
}

impl Core {
    pub(super) fn introduction_received(
        &mut self,
        now: u64,
        slot: u8,
        intro: IntroId,
        from: [u8; 32],
    ) {
        if let Some(contacts) = &self.config.contacts {
            if !contacts.contains(&from) {
                return self.decline_stranger(slot, intro, from);
            }
        }
        let request = self.next_id();
        self.requests.insert(
            request,
            PendingRequest {
                slot,
                intro,
                from,
                received_at: now,
            },
        );
        let from = hex0x(&from);
        self.emit(AgentEvent::IntroductionReceived {
            request,
            from,
            slot,
        });
        if self.config.accept_all {
            if let Err(e) = self.join(None, request) {
                // Still pending if it could not be taken (e.g. too many channels): a manual
                // `accept` or `decline` can answer it.
                let pending = if self.requests.contains_key(&request) {
                    "; it waits for accept or decline"
                } else {
                    ""
                };
                let message = format!("request {request} not accepted automatically: {e}{pending}");
                self.emit(AgentEvent::Warning { message });
            }
        }
    }

    /// Declines a non-contact's introduction as `decline` would, so that the presence node
    /// sees the same answer as for any decline.
    fn decline_stranger(&mut self, slot: u8, intro: IntroId, from: [u8; 32]) {
        let declined = self
            .points
            .get_mut(&slot)
            .and_then(|p| p.announcer.as_mut())
            .map(|announcer| announcer.decline(intro));
        let from = hex0x(&from);
        match declined {
            Some(Ok(answer)) => {
                self.write(answer);
                self.emit(AgentEvent::IntroductionDeclinedNotAContact { from, slot });
            }
            Some(Err(e)) => {
                let message = format!("cannot decline {from} (not a contact): {e}");
                self.emit(AgentEvent::Warning { message });
            }
            None => {}
        }
    }

    pub(super) fn request_withdrawn(&mut self, slot: u8, intro: IntroId) {
        let found = self
            .requests
            .iter()
            .find(|(_, r)| r.slot == slot && r.intro == intro)
            .map(|(id, _)| *id);
        if let Some(request) = found {
            self.requests.remove(&request);
            self.emit(AgentEvent::RequestWithdrawn { request });
        }
    }

    /// The point in `slot` ended: its pending introductions are gone with it.
    pub(super) fn drop_requests_of(&mut self, slot: u8) {
        let gone: Vec<u64> = self
            .requests
            .iter()
            .filter(|(_, r)| r.slot == slot)
            .map(|(id, _)| *id)
            .collect();
        for request in gone {
            self.requests.remove(&request);
            self.emit(AgentEvent::RequestWithdrawn { request });
        }
    }

    pub(super) fn request_views(&self) -> Vec<RequestView> {
        self.requests
            .iter()
            .map(|(id, r)| RequestView {
                request: *id,
                from: hex0x(&r.from),
                slot: r.slot,
                received_at: r.received_at,
            })
            .collect()
    }

    pub(super) fn accept(&mut self, ticket: Ticket, request: u64) {
        if let Err(e) = self.join(Some(ticket), request) {
            self.reply(ticket, Err(e));
        }
    }

    /// Accepts `request` and starts joining its rendezvous point; `ticket` (the `accept`, if
    /// any) is answered when the channel is up or the join fails.
    fn join(&mut self, ticket: Option<Ticket>, request: u64) -> Result<(), MessagingError> {
        if self.channels.len() + self.joins.len() >= self.config.max_channels {
            let max = self.config.max_channels;
            return Err(MessagingError::TooMany {
                what: "channels",
                max,
            });
        }
        let Some(pending) = self.requests.get(&request) else {
            return Err(MessagingError::UnknownRequest(request));
        };
        let (slot, intro) = (pending.slot, pending.intro);
        // The path first: a request accepted without one would leave the introducer waiting.
        let node = self
            .points
            .get(&slot)
            .and_then(|p| p.announcer.as_ref())
            .and_then(|a| a.pending().find(|(id, _)| *id == intro))
            .map(|(_, introduction)| introduction.introduction().rendezvous_node);
        let Some(node) = node else {
            self.requests.remove(&request);
            return Err(MessagingError::UnknownRequest(request));
        };
        let path = self.path_to(node, self.rendezvous_hops(&node))?;
        self.requests.remove(&request);
        let (answer, introduction) = self
            .points
            .get_mut(&slot)
            .and_then(|p| p.announcer.as_mut())
            .ok_or(MessagingError::UnknownRequest(request))?
            .accept(intro)?;
        self.write(answer);
        let stream = self.open_path(Owner::Join(request), path, RENDEZVOUS_SERVICE);
        self.joins.insert(
            request,
            Join {
                ticket,
                stream,
                introduction,
                responder: None,
            },
        );
        Ok(())
    }

    pub(super) fn decline(&mut self, ticket: Ticket, request: u64) {
        let Some(pending) = self.requests.remove(&request) else {
            return self.reply(ticket, Err(MessagingError::UnknownRequest(request)));
        };
        let declined = match self
            .points
            .get_mut(&pending.slot)
            .and_then(|p| p.announcer.as_mut())
        {
            Some(announcer) => announcer.decline(pending.intro),
            None => return self.reply(ticket, Err(MessagingError::UnknownRequest(request))),
        };
        match declined {
            Ok(answer) => {
                self.write(answer);
                let from = hex0x(&pending.from);
                self.emit(AgentEvent::RequestDeclined { request, from });
                self.reply(ticket, Ok(Reply::Declined { request }));
            }
            Err(e) => self.reply(ticket, Err(e.into())),
        }
    }

    pub(super) fn join_opened(&mut self, now: u64, request: u64) {
        let Some(join) = self.joins.get_mut(&request) else {
            return;
        };
        let config = self.config.responder;
        let built = Responder::new(
            &self.identity,
            &join.introduction,
            join.stream,
            now,
            &mut self.rng,
            config,
        );
        match built {
            Ok((responder, join_msg)) => {
                join.responder = Some(responder);
                self.write(join_msg);
            }
            Err(e) => self.join_failed(request, e.to_string()),
        }
    }

    pub(super) fn join_data(&mut self, now: u64, request: u64, bytes: &[u8]) {
        let Some(responder) = self
            .joins
            .get_mut(&request)
            .and_then(|j| j.responder.as_mut())
        else {
            return;
        };
        let out = responder.handle_data(now, bytes);
        self.responder_output(now, request, out);
    }

    pub(super) fn join_closed(&mut self, now: u64, request: u64) {
        match self
            .joins
            .get_mut(&request)
            .and_then(|j| j.responder.as_mut())
        {
            Some(responder) => {
                let out = responder.handle_stream_closed();
                self.responder_output(now, request, out);
            }
            None => self.join_failed(request, "the rendezvous stream closed".into()),
        }
    }

    pub(super) fn joins_timeout(&mut self, now: u64) {
        let due: Vec<u64> = self
            .joins
            .iter()
            .filter(|(_, j)| {
                j.responder
                    .as_ref()
                    .and_then(Responder::poll_timeout)
                    .is_some_and(|t| t <= now)
            })
            .map(|(id, _)| *id)
            .collect();
        for request in due {
            if let Some(responder) = self
                .joins
                .get_mut(&request)
                .and_then(|j| j.responder.as_mut())
            {
                let out = responder.handle_timeout(now);
                self.responder_output(now, request, out);
            }
        }
    }

    fn responder_output(&mut self, now: u64, request: u64, out: Output<ResponderEvent>) {
        let mut channel = None;
        for event in self.apply(out) {
            match event {
                ResponderEvent::Established(session) => {
                    let Some(join) = self.joins.remove(&request) else {
                        continue;
                    };
                    let peer = *session.peer_identity();
                    let id = self.add_channel(now, session, false);
                    channel = Some(id);
                    let reply = Reply::Accepted {
                        request,
                        channel: id,
                        peer: hex0x(&peer),
                    };
                    if let Some(ticket) = join.ticket {
                        self.reply(ticket, Ok(reply));
                    }
                }
                ResponderEvent::Session(event) => {
                    if let Some(id) = channel {
                        self.session_event(now, id, event);
                    }
                }
                ResponderEvent::Failed(e) => self.join_failed(request, e.to_string()),
                _ => {}
            }
        }
    }

    pub(super) fn join_failed(&mut self, request: u64, reason: String) {
        let Some(join) = self.joins.remove(&request) else {
            return;
        };
        self.close_stream(join.stream);
        let from = hex0x(join.introduction.introducer());
        self.emit(AgentEvent::ConnectFailed {
            peer: from,
            reason: format!("joining request {request}: {reason}"),
        });
        if let Some(ticket) = join.ticket {
            let error = MessagingError::JoinFailed { request, reason };
            self.reply(ticket, Err(error));
        }
    }
}
