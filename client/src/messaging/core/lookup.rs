//! Look-ups: a `Looker` on a stream to a random node's `lookup` service fetches an
//! identity's presence records and checks each one; the result answers a `lookup` request or
//! starts a connect's attempts.

use std::collections::VecDeque;

use psp_net::rendezvous::client::{preferred_presence, Looker, LookerEvent, Output};
use psp_net::rendezvous::record::VerifiedPresence;
use psp_net::rendezvous::StreamHandle;

use super::{Core, Owner, Ticket, LOOKUP_SERVICE};
use crate::hex0x;
use crate::messaging::error::MessagingError;
use crate::messaging::protocol::Reply;
use crate::messaging::views::{LookupView, PresenceView};

/// What a look-up is for.
#[derive(Clone, Copy, Debug)]
pub(super) enum Purpose {
    /// `lookup`: answer the request with the records.
    Report(Ticket),
    /// The first step of a connect.
    Connect(u64),
}

/// One look-up.
pub(super) struct LookupRun {
    peer: [u8; 32],
    stream: StreamHandle,
    pub(super) looker: Option<Looker>,
    purpose: Purpose,
}

fn presence_view(p: &VerifiedPresence) -> PresenceView {
    PresenceView {
        presence_node: hex0x(&p.presence_node),
        topic: hex0x(&p.topic),
        public: p.public,
        seq: p.seq,
        issued_at: p.issued_at,
        expires_at: p.expires_at,
    }
}

impl Core {
    /// Starts a look-up of `peer`'s records for `purpose`.
    pub(super) fn start_lookup(
        &mut self,
        peer: [u8; 32],
        purpose: Purpose,
    ) -> Result<(), MessagingError> {
        if self.lookups.len() >= self.config.max_lookups {
            let max = self.config.max_lookups;
            return Err(MessagingError::TooMany {
                what: "look-ups",
                max,
            });
        }
        let node = self.pick_node(&[]).ok_or_else(|| MessagingError::NoNodes {
            reason: "no registered overlay node known to look up at".into(),
        })?;
        let id = self.next_id();
        let hops = self.config.hops;
        let stream = self.open(Owner::Lookup(id), node, LOOKUP_SERVICE, hops)?;
        self.lookups.insert(
            id,
            LookupRun {
                peer,
                stream,
                looker: None,
                purpose,
            },
        );
        Ok(())
    }

    pub(super) fn lookup_opened(&mut self, now: u64, id: u64) {
        let Some(run) = self.lookups.get_mut(&id) else {
            return;
        };
        let slots = self.config.lookup_slots;
        match Looker::new(run.stream, run.peer, slots, now, self.config.looker) {
            Ok((looker, request)) => {
                run.looker = Some(looker);
                self.write(request);
            }
            Err(e) => self.lookup_done(now, id, Err(e.to_string())),
        }
    }

    pub(super) fn lookup_data(&mut self, now: u64, id: u64, bytes: &[u8]) {
        let chain = self.chain.view();
        let Some(looker) = self.lookups.get_mut(&id).and_then(|l| l.looker.as_mut()) else {
            return;
        };
        let out = looker.handle_data(now, bytes, &chain);
        self.looker_output(now, id, out);
    }

    pub(super) fn lookup_closed(&mut self, now: u64, id: u64) {
        match self.lookups.get_mut(&id).and_then(|l| l.looker.as_mut()) {
            Some(looker) => {
                let out = looker.handle_stream_closed();
                self.looker_output(now, id, out);
            }
            None => self.lookup_done(now, id, Err("the lookup stream closed".into())),
        }
    }

    pub(super) fn lookups_timeout(&mut self, now: u64) {
        let due: Vec<u64> = self
            .lookups
            .iter()
            .filter(|(_, l)| {
                l.looker
                    .as_ref()
                    .and_then(Looker::poll_timeout)
                    .is_some_and(|t| t <= now)
            })
            .map(|(id, _)| *id)
            .collect();
        for id in due {
            if let Some(looker) = self.lookups.get_mut(&id).and_then(|l| l.looker.as_mut()) {
                let out = looker.handle_timeout(now);
                self.looker_output(now, id, out);
            }
        }
    }

    fn looker_output(&mut self, now: u64, id: u64, out: Output<LookerEvent>) {
        for event in self.apply(out) {
            match event {
                LookerEvent::Found {
                    presences,
                    rejected,
                } => self.lookup_done(now, id, Ok((presences, rejected))),
                LookerEvent::Failed(e) => self.lookup_done(now, id, Err(e.to_string())),
                _ => {}
            }
        }
    }

    /// A look-up ended: report it, or go on with its connect.
    pub(super) fn lookup_done(
        &mut self,
        now: u64,
        id: u64,
        result: Result<(Vec<VerifiedPresence>, usize), String>,
    ) {
        let Some(run) = self.lookups.remove(&id) else {
            return;
        };
        self.close_stream(run.stream);
        let peer = hex0x(&run.peer);
        match (run.purpose, result) {
            (Purpose::Report(ticket), Ok((presences, rejected))) => {
                let ordered = preferred_presence(&presences, now);
                let view = LookupView {
                    peer,
                    presences: ordered.into_iter().map(presence_view).collect(),
                    rejected,
                };
                self.reply(ticket, Ok(Reply::Lookup(view)));
            }
            (Purpose::Report(ticket), Err(reason)) => {
                self.reply(ticket, Err(MessagingError::LookupFailed { peer, reason }));
            }
            (Purpose::Connect(cid), Ok((presences, rejected))) => {
                let ordered: VecDeque<VerifiedPresence> = preferred_presence(&presences, now)
                    .into_iter()
                    .cloned()
                    .collect();
                self.connect_found(now, cid, ordered, rejected);
            }
            (Purpose::Connect(cid), Err(reason)) => {
                self.connect_failed(cid, MessagingError::LookupFailed { peer, reason })
            }
        }
    }
}
