//! Presence points: one `Announcer` per slot on its own stream to a presence node; a point
//! that ends is replaced in its slot on a new path (at once, then with doubling backoff);
//! a point whose channel cap is reached gets a sibling in the next free slot.

use psp_net::rendezvous::client::{Announcer, AnnouncerConfig, AnnouncerEvent, Output};
use psp_net::rendezvous::intro;
use psp_net::rendezvous::replay::ReplayCache;
use psp_net::rendezvous::wire::{Deframer, PresenceMsg};
use psp_net::rendezvous::StreamHandle;

use super::{Core, CoreConfig, Owner, PRESENCE_SERVICE};
use crate::hex0x;
use crate::messaging::chainview::keys_asked;
use crate::messaging::events::AgentEvent;
use crate::messaging::views::PointView;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum PointState {
    /// The circuit is being built.
    Opening,
    /// `Register` sent.
    Registering,
    /// The node published the record.
    Registered,
    /// Ended; replaced at `retry_at`.
    Waiting { retry_at: u64 },
}

/// One presence point.
pub(super) struct Point {
    pub(super) slot: u8,
    pub(super) node: Option<[u8; 32]>,
    pub(super) stream: Option<StreamHandle>,
    pub(super) state: PointState,
    pub(super) announcer: Option<Announcer>,
    /// A copy of the presence stream's framing, to find introductions before the announcer
    /// checks them ([`Core::keys_to_fetch`]).
    peek: Deframer,
    failures: u32,
    cap_reached: bool,
}

impl Point {
    pub(super) fn poll_timeout(&self) -> Option<u64> {
        match self.state {
            PointState::Waiting { retry_at } => Some(retry_at),
            _ => self.announcer.as_ref()?.poll_timeout(),
        }
    }

    pub(super) fn view(&self, config: &CoreConfig) -> PointView {
        let state = match self.state {
            PointState::Opening => "opening",
            PointState::Registering => "registering",
            PointState::Registered => "registered",
            PointState::Waiting { .. } => "waiting",
        };
        let announcer = self.announcer.as_ref();
        PointView {
            slot: self.slot,
            node: self.node.map(|n| hex0x(&n)),
            state: state.into(),
            expires_at: announcer.and_then(Announcer::expires_at),
            pending: announcer.map(|a| a.pending().count()).unwrap_or(0),
            cap_reached: self.cap_reached,
            failures: self.failures,
            public: config.public,
        }
    }
}

impl Core {
    /// Opens (or reopens) the point in `slot` at a node no other point uses, if possible.
    pub(super) fn open_point(&mut self, now: u64, slot: u8) {
        // Neither another point's node nor the entry guard, nor — for an anonymous point — a
        // node that ever was an entry of this agent's circuits (see `paths`).
        let mut avoid: Vec<[u8; 32]> = self
            .points
            .values()
            .filter(|p| p.slot != slot)
            .filter_map(|p| p.node)
            .collect();
        avoid.extend(self.guard);
        if !self.config.public {
            avoid.extend(self.knows_address.iter().copied());
        }
        let failures = self.points.get(&slot).map(|p| p.failures).unwrap_or(0);
        let node = self.pick_node(&avoid).filter(|n| !avoid.contains(n));
        let Some(node) = node else {
            let reason = format!(
                "no node free for a presence point ({} nodes known, {} in use, the guard, or \
                 entries that saw this agent's address)",
                self.nodes.len(),
                avoid.len()
            );
            return self.point_waits(now, slot, failures, reason);
        };
        let hops = if self.config.public {
            1
        } else {
            // It will learn the identity: never an entry from now on.
            self.knows_identity.insert(node);
            self.config.hops
        };
        let stream = match self.open(Owner::Point(slot), node, PRESENCE_SERVICE, hops) {
            Ok(stream) => stream,
            Err(e) => return self.point_waits(now, slot, failures, e.to_string()),
        };
        self.points.insert(
            slot,
            Point {
                slot,
                node: Some(node),
                stream: Some(stream),
                state: PointState::Opening,
                announcer: None,
                peek: Deframer::default(),
                failures,
                cap_reached: false,
            },
        );
        let node = hex0x(&node);
        self.emit(AgentEvent::PointOpening { slot, node });
    }

    pub(super) fn point_opened(&mut self, now: u64, slot: u8, stream: StreamHandle) {
        let Some(point) = self.points.get_mut(&slot) else {
            return;
        };
        let Some(node) = point.node else {
            return;
        };
        let config = AnnouncerConfig {
            slot,
            public: self.config.public,
            limits: self.config.limits,
            ..self.config.announcer
        };
        let mut announcer = Announcer::new(self.identity.clone(), node, stream, config);
        match announcer.start(now) {
            Ok(register) => {
                point.announcer = Some(announcer);
                point.state = PointState::Registering;
                self.write(register);
            }
            Err(e) => self.point_lost(now, slot, format!("cannot register: {e}")),
        }
    }

    /// Keys whose statuses the checks of the introductions in `bytes` will ask for and the
    /// cache lacks: fetch them before [`Core::stream_data`] with the same bytes. Feed every
    /// chunk of a presence stream here first, in order.
    pub fn keys_to_fetch(&mut self, now: u64, stream: StreamHandle, bytes: &[u8]) -> Vec<[u8; 32]> {
        let Some(Owner::Point(slot)) = self.owners.get(&stream).copied() else {
            return Vec::new();
        };
        let Some(point) = self.points.get_mut(&slot) else {
            return Vec::new();
        };
        // Malformed bytes end the announcer anyway; nothing to fetch for them.
        let bodies = point.peek.feed(bytes).unwrap_or_default();
        let me = self.identity.id();
        let mut keys = Vec::new();
        for body in bodies {
            let Ok(PresenceMsg::Introduction { sealed, .. }) = PresenceMsg::decode(&body) else {
                continue;
            };
            let Ok(opened) = intro::open(sealed.as_slice(), self.identity.announcement()) else {
                continue;
            };
            // A dry run of the announcer's check, on a scratch replay cache: it asks the
            // registry about exactly the keys the real check will.
            let mut scratch = ReplayCache::new(self.config.replay);
            keys.extend(keys_asked(&self.chain, |view| {
                let _ = opened.check(now, &me, view, &mut scratch);
            }));
        }
        self.chain.registry.missing(&keys)
    }

    pub(super) fn point_data(&mut self, now: u64, slot: u8, bytes: &[u8]) {
        let chain = self.chain.view();
        let Some(announcer) = self
            .points
            .get_mut(&slot)
            .and_then(|p| p.announcer.as_mut())
        else {
            return;
        };
        let out = announcer.handle_data(now, bytes, &chain, &mut self.replay);
        self.announcer_output(now, slot, out);
    }

    pub(super) fn point_closed(&mut self, now: u64, slot: u8, reason: &str) {
        let out = match self
            .points
            .get_mut(&slot)
            .and_then(|p| p.announcer.as_mut())
        {
            Some(announcer) => announcer.handle_stream_closed(),
            None => return self.point_lost(now, slot, reason.to_string()),
        };
        self.announcer_output(now, slot, out);
    }

    pub(super) fn points_timeout(&mut self, now: u64) {
        let slots: Vec<u8> = self.points.keys().copied().collect();
        for slot in slots {
            let Some(point) = self.points.get_mut(&slot) else {
                continue;
            };
            if let PointState::Waiting { retry_at } = point.state {
                if retry_at <= now {
                    self.open_point(now, slot);
                }
                continue;
            }
            let Some(announcer) = point.announcer.as_mut() else {
                continue;
            };
            if announcer.poll_timeout().is_some_and(|t| t <= now) {
                let out = announcer.handle_timeout(now);
                self.announcer_output(now, slot, out);
            }
        }
    }

    fn announcer_output(&mut self, now: u64, slot: u8, out: Output<AnnouncerEvent>) {
        for event in self.apply(out) {
            match event {
                AnnouncerEvent::Registered { expires_at, limits } => {
                    let Some(point) = self.points.get_mut(&slot) else {
                        continue;
                    };
                    point.state = PointState::Registered;
                    point.failures = 0;
                    let node = point.node.map(|n| hex0x(&n)).unwrap_or_default();
                    self.emit(AgentEvent::PointRegistered {
                        slot,
                        node,
                        expires_at,
                        rate_per_minute: limits.rate_per_minute,
                        cap: limits.cap,
                    });
                }
                AnnouncerEvent::Renewed { expires_at } => {
                    self.emit(AgentEvent::PointRenewed { slot, expires_at })
                }
                AnnouncerEvent::Refused(reason) => {
                    self.point_lost(now, slot, format!("the presence node refused: {reason:?}"))
                }
                AnnouncerEvent::Failed(e) => self.point_lost(now, slot, e.to_string()),
                AnnouncerEvent::IntroductionReceived { id, introduction } => {
                    self.introduction_received(now, slot, id, *introduction.introducer())
                }
                AnnouncerEvent::IntroductionDropped { reason, .. } => {
                    let reason = reason.to_string();
                    self.emit(AgentEvent::IntroductionDropped { slot, reason });
                }
                AnnouncerEvent::CapReached => self.cap_reached(now, slot),
                AnnouncerEvent::Withdrawn(id) => self.request_withdrawn(slot, id),
                _ => {}
            }
        }
    }

    fn cap_reached(&mut self, now: u64, slot: u8) {
        let Some(point) = self.points.get_mut(&slot) else {
            return;
        };
        point.cap_reached = true;
        let node = point.node.map(|n| hex0x(&n)).unwrap_or_default();
        let free = (0..self.config.max_points).find(|s| !self.points.contains_key(s));
        if let Some(added) = free {
            self.open_point(now, added);
        }
        self.emit(AgentEvent::CapReached {
            slot,
            node,
            added_slot: free,
        });
    }

    /// The point in `slot` ended: its requests go, its stream closes, a replacement is due.
    pub(super) fn point_lost(&mut self, now: u64, slot: u8, reason: String) {
        let Some(point) = self.points.get_mut(&slot) else {
            return;
        };
        let stream = point.stream.take();
        point.announcer = None;
        point.failures = point.failures.saturating_add(1);
        let delay = match point.failures {
            0 | 1 => 0,
            n => {
                let doubling = 1u64 << (n - 2).min(16);
                self.config
                    .retry_min_secs
                    .saturating_mul(doubling)
                    .min(self.config.retry_max_secs)
            }
        };
        let retry_at = now.saturating_add(delay);
        point.state = PointState::Waiting { retry_at };
        let node = point.node.map(|n| hex0x(&n)).unwrap_or_default();
        if let Some(stream) = stream {
            self.close_stream(stream);
        }
        self.drop_requests_of(slot);
        self.emit(AgentEvent::PointLost {
            slot,
            node,
            reason,
            retry_at,
        });
        if delay == 0 {
            self.open_point(now, slot);
        }
    }
}

impl Core {
    /// No path for the point now: it waits [`CoreConfig::retry_min_secs`] and tries again.
    fn point_waits(&mut self, now: u64, slot: u8, failures: u32, reason: String) {
        let retry_at = now.saturating_add(self.config.retry_min_secs.max(1));
        self.points
            .insert(slot, Point::waiting(slot, failures, retry_at));
        self.emit(AgentEvent::PointLost {
            slot,
            node: String::new(),
            reason,
            retry_at,
        });
    }
}

impl Point {
    fn waiting(slot: u8, failures: u32, retry_at: u64) -> Self {
        Self {
            slot,
            node: None,
            stream: None,
            state: PointState::Waiting { retry_at },
            announcer: None,
            peek: Deframer::default(),
            failures,
            cap_reached: false,
        }
    }
}
