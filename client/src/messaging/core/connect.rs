//! Reaching a peer: a look-up of its presence records at a random node's `lookup` service,
//! then one attempt per record (most recent first): a stream to a random rendezvous node and
//! one to the record's presence node, an `Initiator` on the two. The first attempt that
//! establishes a session opens the channel and flushes the messages queued for it. A decline
//! ends the connect (the peer said no); a refusal or failure moves on to the next record.
//! A send restricted to one presence node tries only the records published there. A direct
//! agent builds the rendezvous stream, and the presence stream of a public record, in one
//! hop ([`paths`](super::paths)).

use std::collections::VecDeque;

use psp_net::rendezvous::channel::ChannelError;
use psp_net::rendezvous::client::{
    ClientError, Initiator, InitiatorEvent, InitiatorStreams, Output, Session,
};
use psp_net::rendezvous::record::VerifiedPresence;
use psp_net::rendezvous::wire::presence::IntroRefusal;
use psp_net::rendezvous::StreamHandle;

use super::lookup::Purpose;
use super::{Core, Owner, Ticket, PRESENCE_SERVICE, RENDEZVOUS_SERVICE};
use crate::hex0x;
use crate::messaging::error::{ErrorView, MessagingError};
use crate::messaging::events::AgentEvent;
use crate::messaging::protocol::Response;

/// One connect.
pub(super) struct Connect {
    peer: [u8; 32],
    /// Only records at this presence node are tried (`None`: any).
    presence_node: Option<[u8; 32]>,
    /// The presence node of the current attempt.
    trying: Option<[u8; 32]>,
    /// Messages to send once the channel is open, each answered then.
    queued: Vec<(Ticket, Vec<u8>)>,
    queued_bytes: usize,
    records: VecDeque<VerifiedPresence>,
    attempts: usize,
    last_error: Option<String>,
    stage: Stage,
}

enum Stage {
    LookingUp,
    /// Both streams of an attempt are being opened.
    Opening {
        streams: InitiatorStreams,
        rendezvous_node: [u8; 32],
        target: Box<VerifiedPresence>,
        opened: usize,
    },
    Attempt(Box<Initiator>),
}

impl Connect {
    pub(super) fn poll_timeout(&self) -> Option<u64> {
        match &self.stage {
            Stage::Attempt(initiator) => initiator.poll_timeout(),
            _ => None,
        }
    }

    fn streams(&self) -> Vec<StreamHandle> {
        match &self.stage {
            Stage::LookingUp => Vec::new(),
            Stage::Opening { streams, .. } => vec![streams.rendezvous, streams.presence],
            Stage::Attempt(initiator) => {
                let s = initiator.streams();
                vec![s.rendezvous, s.presence]
            }
        }
    }
}

impl Core {
    /// `send`: on the open channel to `peer`, else queued on a connect (started if needed)
    /// that tries only the records at `presence_node` if one is given.
    pub(super) fn send(
        &mut self,
        ticket: Ticket,
        peer: [u8; 32],
        bytes: Vec<u8>,
        presence_node: Option<[u8; 32]>,
    ) {
        let max = self.config.initiator.channel.max_message_len();
        if bytes.len() > max {
            let too_long = ChannelError::MessageTooLong {
                len: bytes.len(),
                max,
            };
            let error = MessagingError::Protocol(ClientError::Channel(too_long));
            return self.reply(ticket, Err(error));
        }
        if let Some((channel, _)) = self.channel_to(&peer) {
            let result = self.send_on(channel, bytes);
            return self.reply(ticket, result);
        }
        let pending = self.connects.iter_mut().find(|(_, c)| c.peer == peer);
        if let Some((_, connect)) = pending {
            // An unrestricted send may ride any connect; a restricted one only its own kind.
            if presence_node.is_some() && presence_node != connect.presence_node {
                let error = MessagingError::ConnectPending {
                    peer: hex0x(&peer),
                    through: through(connect.presence_node),
                };
                return self.reply(ticket, Err(error));
            }
            let full = connect.queued.len() >= self.config.max_queued_messages
                || connect.queued_bytes + bytes.len() > self.config.max_queued_bytes;
            if full {
                let what = "messages queued for a channel being opened";
                let max = self.config.max_queued_messages;
                return self.reply(ticket, Err(MessagingError::TooMany { what, max }));
            }
            connect.queued_bytes += bytes.len();
            connect.queued.push((ticket, bytes));
            return;
        }
        if self.connects.len() >= self.config.max_connects
            || self.channels.len() + self.joins.len() >= self.config.max_channels
        {
            let (what, max) = ("connections being opened or open", self.config.max_connects);
            return self.reply(ticket, Err(MessagingError::TooMany { what, max }));
        }
        let id = self.next_id();
        if let Err(e) = self.start_lookup(peer, Purpose::Connect(id)) {
            return self.reply(ticket, Err(e));
        }
        let queued_bytes = bytes.len();
        self.connects.insert(
            id,
            Connect {
                peer,
                presence_node,
                trying: None,
                queued: vec![(ticket, bytes)],
                queued_bytes,
                records: VecDeque::new(),
                attempts: 0,
                last_error: None,
                stage: Stage::LookingUp,
            },
        );
        self.progress(peer, "lookup");
    }

    /// The look-up of connect `cid` found `records` (in the order to try them).
    pub(super) fn connect_found(
        &mut self,
        now: u64,
        cid: u64,
        records: VecDeque<VerifiedPresence>,
        rejected: usize,
    ) {
        let Some(connect) = self.connects.get_mut(&cid) else {
            return;
        };
        let (peer, restriction) = (connect.peer, connect.presence_node);
        let found = records.len();
        if found == 0 {
            let peer = hex0x(&peer);
            return self.connect_failed(cid, MessagingError::NoPresence { peer, rejected });
        }
        let mut step = format!("found {found} presence points");
        let records = match restriction {
            None => records,
            Some(node) => {
                let there: VecDeque<VerifiedPresence> = records
                    .into_iter()
                    .filter(|r| r.presence_node == node)
                    .collect();
                if there.is_empty() {
                    let error = MessagingError::NoPresenceAt {
                        peer: hex0x(&peer),
                        node: hex0x(&node),
                        elsewhere: found,
                        rejected,
                    };
                    return self.connect_failed(cid, error);
                }
                step = format!("{step}, {} at {}", there.len(), hex0x(&node));
                there
            }
        };
        connect.records = records;
        self.progress(peer, &step);
        self.next_attempt(now, cid);
    }

    /// Starts an attempt with the next record, or ends the connect if none is left.
    fn next_attempt(&mut self, now: u64, cid: u64) {
        let Some(connect) = self.connects.get_mut(&cid) else {
            return;
        };
        let target = loop {
            match connect.records.pop_front() {
                Some(record) if record.expires_at > now => break Some(record),
                Some(_) => continue,
                None => break None,
            }
        };
        connect.trying = target.as_ref().map(|t| t.presence_node);
        let Some(target) = target else {
            let peer = hex0x(&connect.peer);
            let error = MessagingError::ConnectFailed {
                peer,
                attempts: connect.attempts,
                last: connect
                    .last_error
                    .clone()
                    .unwrap_or_else(|| "every record expired".into()),
            };
            return self.connect_failed(cid, error);
        };
        connect.attempts += 1;
        let Some(rendezvous_node) = self.pick_node(&[target.presence_node]) else {
            let reason = "no registered overlay node known for a rendezvous point".into();
            return self.connect_failed(cid, MessagingError::NoNodes { reason });
        };
        let (rendezvous_hops, presence_hops) = (
            self.rendezvous_hops(&rendezvous_node),
            self.introduction_hops(&target.presence_node, target.public),
        );
        let paths = self
            .path_to(rendezvous_node, rendezvous_hops)
            .and_then(|r| Ok((r, self.path_to(target.presence_node, presence_hops)?)));
        let (rendezvous_path, presence_path) = match paths {
            Ok(paths) => paths,
            Err(e) => return self.connect_failed(cid, e),
        };
        let rendezvous = self.open_path(Owner::Attempt(cid), rendezvous_path, RENDEZVOUS_SERVICE);
        let presence = self.open_path(Owner::Attempt(cid), presence_path, PRESENCE_SERVICE);
        if let Some(connect) = self.connects.get_mut(&cid) {
            connect.stage = Stage::Opening {
                streams: InitiatorStreams {
                    rendezvous,
                    presence,
                },
                rendezvous_node,
                target: Box::new(target),
                opened: 0,
            };
        }
    }

    pub(super) fn attempt_opened(&mut self, now: u64, cid: u64) {
        let Some(connect) = self.connects.get_mut(&cid) else {
            return;
        };
        let Stage::Opening {
            streams,
            rendezvous_node,
            target,
            opened,
        } = &mut connect.stage
        else {
            return;
        };
        *opened += 1;
        if *opened < 2 {
            return;
        }
        let built = Initiator::new(
            self.identity.clone(),
            target,
            *rendezvous_node,
            *streams,
            now,
            &mut self.rng,
            self.config.initiator,
        );
        match built {
            Ok((initiator, establish)) => {
                connect.stage = Stage::Attempt(Box::new(initiator));
                self.write(establish);
            }
            Err(e) => self.attempt_failed(now, cid, e.to_string()),
        }
    }

    pub(super) fn attempt_data(&mut self, now: u64, cid: u64, stream: StreamHandle, bytes: &[u8]) {
        let Some(Stage::Attempt(initiator)) = self.connects.get_mut(&cid).map(|c| &mut c.stage)
        else {
            return;
        };
        let out = initiator.handle_data(now, stream, bytes);
        self.initiator_output(now, cid, out);
    }

    pub(super) fn attempt_closed(&mut self, now: u64, cid: u64, stream: StreamHandle) {
        match self.connects.get_mut(&cid).map(|c| &mut c.stage) {
            Some(Stage::Attempt(initiator)) => {
                let out = initiator.handle_stream_closed(stream);
                self.initiator_output(now, cid, out);
            }
            Some(_) => self.attempt_failed(now, cid, "a stream closed while opening".into()),
            None => {}
        }
    }

    pub(super) fn connects_timeout(&mut self, now: u64) {
        let due: Vec<u64> = self
            .connects
            .iter()
            .filter(|(_, c)| c.poll_timeout().is_some_and(|t| t <= now))
            .map(|(id, _)| *id)
            .collect();
        for cid in due {
            if let Some(Stage::Attempt(initiator)) =
                self.connects.get_mut(&cid).map(|c| &mut c.stage)
            {
                let out = initiator.handle_timeout(now);
                self.initiator_output(now, cid, out);
            }
        }
    }

    fn initiator_output(&mut self, now: u64, cid: u64, out: Output<InitiatorEvent>) {
        let Some((peer, trying)) = self.connects.get(&cid).map(|c| (c.peer, c.trying)) else {
            let _ = self.apply(out);
            return;
        };
        let mut channel = None;
        for event in self.apply(out) {
            match event {
                InitiatorEvent::Introduced => self.progress(peer, "introduced"),
                InitiatorEvent::Accepted => self.progress(peer, "accepted"),
                InitiatorEvent::Declined => {
                    let error = MessagingError::Declined { peer: hex0x(&peer) };
                    self.connect_failed(cid, error);
                }
                InitiatorEvent::Refused(reason) => {
                    let node = trying.map(|n| hex0x(&n)).unwrap_or_default();
                    let reason = format!(
                        "presence node {node} refused the introduction: {}",
                        refusal_text(reason)
                    );
                    self.attempt_failed(now, cid, reason)
                }
                InitiatorEvent::Established(session) => {
                    channel = Some(self.connect_established(now, cid, session));
                }
                InitiatorEvent::Session(event) => {
                    if let Some(id) = channel {
                        self.session_event(now, id, event);
                    }
                }
                InitiatorEvent::Failed(e) => self.attempt_failed(now, cid, e.to_string()),
                _ => {}
            }
        }
    }

    /// The attempt's session is up: open the channel, send what was queued, answer.
    fn connect_established(&mut self, now: u64, cid: u64, session: Session) -> u64 {
        let connect = self.connects.remove(&cid);
        let channel = self.add_channel(now, session, true);
        for (ticket, bytes) in connect.map(|c| c.queued).unwrap_or_default() {
            let result = self.send_on(channel, bytes);
            self.reply(ticket, result);
        }
        channel
    }

    /// The current attempt failed: close its streams, try the next record.
    pub(super) fn attempt_failed(&mut self, now: u64, cid: u64, reason: String) {
        let Some(connect) = self.connects.get_mut(&cid) else {
            return;
        };
        let streams = connect.streams();
        connect.stage = Stage::LookingUp;
        connect.last_error = Some(reason.clone());
        let peer = connect.peer;
        for stream in streams {
            self.close_stream(stream);
        }
        self.progress(peer, &format!("attempt failed: {reason}"));
        self.next_attempt(now, cid);
    }

    /// The connect ends without a channel: every queued message is answered with `error`.
    pub(super) fn connect_failed(&mut self, cid: u64, error: MessagingError) {
        let Some(connect) = self.connects.remove(&cid) else {
            return;
        };
        for stream in connect.streams() {
            self.close_stream(stream);
        }
        let view = ErrorView::from(&error);
        for (ticket, _) in connect.queued {
            self.actions.push_back(super::Action::Reply {
                ticket,
                response: Response::Error(view.clone()),
            });
        }
        self.emit(AgentEvent::ConnectFailed {
            peer: hex0x(&connect.peer),
            reason: view.message,
        });
    }

    fn progress(&mut self, peer: [u8; 32], step: &str) {
        self.emit(AgentEvent::ConnectProgress {
            peer: hex0x(&peer),
            step: step.into(),
        });
    }
}

/// How a connect restricted to `presence_node` (or not) reads in an error.
fn through(presence_node: Option<[u8; 32]>) -> String {
    match presence_node {
        Some(node) => format!("through presence node {}", hex0x(&node)),
        None => "through any presence node".into(),
    }
}

/// A presence node's refusal of an introduction, for people.
fn refusal_text(reason: IntroRefusal) -> String {
    let text = match reason {
        IntroRefusal::NotRegistered => "the peer has no presence point there (any more)",
        IntroRefusal::CapReached => {
            "the peer's channel cap at that presence point is reached (it opens no more \
             channels there)"
        }
        IntroRefusal::RateLimited => {
            "the peer's introduction rate at that presence point is exceeded; retry later"
        }
        IntroRefusal::Busy => "the node holds too many pending introductions; retry later",
        IntroRefusal::TimedOut => "the peer did not answer in time",
        IntroRefusal::TargetGone => "the peer's presence point ended while the introduction waited",
        other => return format!("{other:?}"),
    };
    text.into()
}
