//! The core on an in-memory network of real node services ([`testkit`]): presence points,
//! replacement, look-ups, introductions, accept and decline, channels both ways, the
//! inbox and its waits, the refusals, direct agents' paths, sends restricted to one presence
//! node and accept-all — deterministic, with time jumped by hand.

use std::collections::{HashMap, VecDeque};

use psp_net::rendezvous::StreamHandle;

use super::*;
use crate::messaging::credentials;
use crate::messaging::error::ErrorView;
use crate::messaging::testkit::{Delivery, World};
use crate::messaging::views::InboxMessageView;

const START: u64 = 1_700_000_000;

struct Client {
    core: Core,
    key: [u8; 32],
    replies: HashMap<Ticket, Response>,
    events: Vec<AgentEvent>,
    /// Keys the client had to fetch before feeding a presence stream.
    fetched: Vec<[u8; 32]>,
    /// Group envelopes handed to the groups host: (peer, bytes).
    group_packets: Vec<([u8; 32], Vec<u8>)>,
}

/// Clients on the world, and the test playing their driver.
struct Sim {
    world: World,
    now: u64,
    clients: Vec<Client>,
    /// Network stream → (client, its stream); and back.
    routes: HashMap<u64, (usize, StreamHandle)>,
    ids: HashMap<(usize, StreamHandle), u64>,
    next_ticket: u64,
    /// Every path opened: client, service, path.
    paths: Vec<(usize, &'static str, Vec<[u8; 32]>)>,
}

impl Sim {
    fn new(nodes: u8) -> Self {
        Self {
            world: World::new(nodes),
            now: START,
            clients: Vec::new(),
            routes: HashMap::new(),
            ids: HashMap::new(),
            next_ticket: 0,
            paths: Vec::new(),
        }
    }

    /// A registered client with a certificate and `config`, started.
    fn client(&mut self, seed: u8, config: CoreConfig) -> usize {
        let keys = self.world.client(seed);
        let cert = self.world.certificate(&keys, self.now);
        let identity = credentials::identity(&keys, cert.bytes);
        let mut core = Core::new(
            identity,
            format!("client-{seed}"),
            cert.not_after,
            self.world.chain_state(),
            config,
            [seed; 32],
        );
        core.set_nodes(self.world.node_keys());
        core.start(self.now);
        self.clients.push(Client {
            core,
            key: keys.identity_public(),
            replies: HashMap::new(),
            events: Vec::new(),
            fetched: Vec::new(),
            group_packets: Vec::new(),
        });
        let index = self.clients.len() - 1;
        self.pump();
        index
    }

    /// Sends a command as the driver would (a resolved peer's status is cached first).
    fn command(&mut self, client: usize, command: Command) -> Ticket {
        self.next_ticket += 1;
        let ticket = Ticket(self.next_ticket);
        if let Command::Send { peer, .. } | Command::Lookup { peer } = &command {
            let status = self.world.status(peer);
            let now = self.now;
            self.clients[client]
                .core
                .chain_mut()
                .registry
                .insert(*peer, status, now);
        }
        self.clients[client].core.command(self.now, ticket, command);
        self.pump();
        ticket
    }

    fn reply(&mut self, client: usize, ticket: Ticket) -> Option<Response> {
        self.clients[client].replies.remove(&ticket)
    }

    fn ok(&mut self, client: usize, ticket: Ticket) -> Reply {
        match self.reply(client, ticket) {
            Some(Response::Ok(reply)) => reply,
            other => panic!("client {client}: expected a reply, got {other:?}"),
        }
    }

    fn err(&mut self, client: usize, ticket: Ticket) -> String {
        self.error(client, ticket).code
    }

    fn error(&mut self, client: usize, ticket: Ticket) -> ErrorView {
        match self.reply(client, ticket) {
            Some(Response::Error(e)) => e,
            other => panic!("client {client}: expected an error, got {other:?}"),
        }
    }

    /// The paths `client` opened to `service`, as hex keys, entry first.
    fn paths_to(&self, client: usize, service: &str) -> Vec<Vec<String>> {
        self.paths
            .iter()
            .filter(|(c, s, _)| *c == client && *s == service)
            .map(|(_, _, path)| path.iter().map(|n| hex0x(n)).collect())
            .collect()
    }

    /// A `send` of `bytes` to `peer`, through its point at `presence_node` only if given.
    fn send(
        &mut self,
        client: usize,
        peer: [u8; 32],
        bytes: &[u8],
        presence_node: Option<[u8; 32]>,
    ) -> Ticket {
        let bytes = bytes.to_vec();
        let command = Command::Send {
            peer,
            bytes,
            presence_node,
        };
        self.command(client, command)
    }

    /// Runs every client's actions and the nodes' answers until nothing moves.
    fn pump(&mut self) {
        let mut deliveries: VecDeque<Delivery> = VecDeque::new();
        loop {
            let mut moved = false;
            for c in 0..self.clients.len() {
                for action in self.clients[c].core.take_actions() {
                    moved = true;
                    self.run(c, action, &mut deliveries);
                }
            }
            while let Some(delivery) = deliveries.pop_front() {
                moved = true;
                self.deliver(delivery);
            }
            if !moved {
                return;
            }
        }
    }

    fn run(&mut self, c: usize, action: Action, deliveries: &mut VecDeque<Delivery>) {
        let now = self.now;
        match action {
            Action::Open(request) => match self
                .world
                .open(request.target().expect("a path"), request.service)
            {
                Ok(id) => {
                    self.paths.push((c, request.service, request.path.clone()));
                    self.routes.insert(id, (c, request.stream));
                    self.ids.insert((c, request.stream), id);
                    if !self.clients[c].core.stream_opened(now, request.stream) {
                        deliveries.extend(self.world.close(now, id));
                    }
                }
                Err(reason) => self.clients[c]
                    .core
                    .stream_failed(now, request.stream, &reason),
            },
            Action::Write(t) => {
                let id = *self
                    .ids
                    .get(&(c, t.stream))
                    .expect("write to an opened stream");
                deliveries.extend(self.world.write(now, id, &t.bytes));
            }
            Action::Close(stream) => {
                if let Some(id) = self.ids.remove(&(c, stream)) {
                    self.routes.remove(&id);
                    deliveries.extend(self.world.close(now, id));
                }
            }
            Action::Reply { ticket, response } => {
                self.clients[c].replies.insert(ticket, response);
            }
            Action::Event(event) => self.clients[c].events.push(event),
            Action::GroupPacket { from, bytes } => {
                self.clients[c].group_packets.push((from, bytes));
            }
        }
    }

    fn deliver(&mut self, delivery: Delivery) {
        let now = self.now;
        match delivery {
            Delivery::Data(id, bytes) => {
                let Some(&(c, stream)) = self.routes.get(&id) else {
                    return;
                };
                let missing = self.clients[c].core.keys_to_fetch(now, stream, &bytes);
                for key in missing {
                    let status = self.world.status(&key);
                    let client = &mut self.clients[c];
                    client.fetched.push(key);
                    client.core.chain_mut().registry.insert(key, status, now);
                }
                self.clients[c].core.stream_data(now, stream, &bytes);
            }
            Delivery::Closed(id) => {
                if let Some((c, stream)) = self.routes.remove(&id) {
                    self.ids.remove(&(c, stream));
                    self.clients[c]
                        .core
                        .stream_closed(now, stream, "closed by the node");
                }
            }
        }
    }

    /// Jumps time by `secs` and runs every timer.
    fn advance(&mut self, secs: u64) {
        self.now += secs;
        let now = self.now;
        let deliveries = self.world.tick(now);
        for d in deliveries {
            self.deliver(d);
        }
        for client in &mut self.clients {
            client.core.handle_timeout(now);
        }
        self.pump();
    }

    fn take_events(&mut self, client: usize) -> Vec<AgentEvent> {
        std::mem::take(&mut self.clients[client].events)
    }

    /// The requests announced to `client` so far (and forgets the events).
    fn introductions(&mut self, client: usize) -> Vec<(u64, String)> {
        self.take_events(client)
            .into_iter()
            .filter_map(|e| match e {
                AgentEvent::IntroductionReceived { request, from, .. } => Some((request, from)),
                _ => None,
            })
            .collect()
    }

    fn inbox(&mut self, client: usize) -> Vec<InboxMessageView> {
        let ticket = self.command(
            client,
            Command::Inbox {
                wait_secs: 0,
                max: None,
            },
        );
        match self.ok(client, ticket) {
            Reply::Inbox(view) => view.messages,
            other => panic!("not an inbox: {other:?}"),
        }
    }
}

/// No circuit of `client` entered through a node that was ever one of its presence nodes,
/// and every circuit has three distinct hops.
fn assert_no_entry_is_a_presence_node(sim: &Sim, client: usize, presence: &[String]) {
    for (c, _, path) in sim.paths.iter().filter(|(c, _, _)| *c == client) {
        assert_eq!(path.len(), 3, "client {c}: {path:?}");
        assert!(path[0] != path[1] && path[1] != path[2] && path[0] != path[2]);
        assert!(
            !presence.contains(&hex0x(&path[0])),
            "client {c} entered through its presence node {}",
            hex0x(&path[0])
        );
    }
}

fn presence_nodes(events: &[AgentEvent]) -> Vec<String> {
    events
        .iter()
        .filter_map(|e| match e {
            AgentEvent::PointOpening { node, .. } => Some(node.clone()),
            _ => None,
        })
        .collect()
}

fn registered_slots(events: &[AgentEvent]) -> Vec<u8> {
    let mut slots: Vec<u8> = events
        .iter()
        .filter_map(|e| match e {
            AgentEvent::PointRegistered { slot, .. } => Some(*slot),
            _ => None,
        })
        .collect();
    slots.sort();
    slots
}

#[test]
fn bob_announces_alice_connects_they_talk_and_carol_is_declined() {
    let mut sim = Sim::new(6);
    let bob = sim.client(0x0b, CoreConfig::default());
    let bob_events = sim.take_events(bob);
    assert_eq!(registered_slots(&bob_events), [0, 1], "{bob_events:?}");
    let bob_presence = presence_nodes(&bob_events);
    assert_eq!(sim.world.dht.len(), 2, "two co-signed records published");
    let status = sim.clients[bob].core.status();
    assert!(status.points.iter().all(|p| p.state == "registered"));
    assert_ne!(
        status.points[0].node, status.points[1].node,
        "distinct presence nodes"
    );

    let alice = sim.client(
        0x0a,
        CoreConfig {
            points: 0,
            ..CoreConfig::default()
        },
    );
    let bob_key = sim.clients[bob].key;
    let alice_key = sim.clients[alice].key;

    // A lookup finds both points, checked by Alice herself.
    let t = sim.command(alice, Command::Lookup { peer: bob_key });
    let Reply::Lookup(found) = sim.ok(alice, t) else {
        panic!("not a lookup")
    };
    assert_eq!(found.presences.len(), 2);
    assert_eq!(found.rejected, 0);

    // Alice sends; Bob is introduced, accepts; the message arrives.
    let sent = sim.command(
        alice,
        Command::Send {
            peer: bob_key,
            bytes: b"hello Bob".to_vec(),
            presence_node: None,
        },
    );
    assert!(
        sim.reply(alice, sent).is_none(),
        "answered once the channel is up"
    );
    let intros = sim.introductions(bob);
    assert_eq!(intros.len(), 1);
    assert_eq!(intros[0].1, hex0x(&alice_key));
    assert!(
        sim.clients[bob].fetched.contains(&alice_key),
        "Bob fetched Alice's status before checking her introduction"
    );
    let t = sim.command(bob, Command::Requests);
    let Reply::Requests { requests } = sim.ok(bob, t) else {
        panic!("not requests")
    };
    assert_eq!(requests.len(), 1);
    let accept = sim.command(bob, Command::Accept(intros[0].0));
    let Reply::Accepted { channel, peer, .. } = sim.ok(bob, accept) else {
        panic!("not accepted")
    };
    assert_eq!(peer, hex0x(&alice_key));
    let Reply::Sent {
        channel: alice_channel,
        ..
    } = sim.ok(alice, sent)
    else {
        panic!("not sent")
    };
    let got = sim.inbox(bob);
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].text.as_deref(), Some("hello Bob"));
    assert_eq!(got[0].channel, channel);
    assert_eq!(got[0].from, hex0x(&alice_key));

    // Bob answers on the same channel with 70 000 bytes; byte-exact.
    let big: Vec<u8> = (0..70_000u32).map(|i| (i % 251) as u8).collect();
    let t = sim.command(
        bob,
        Command::Send {
            peer: alice_key,
            bytes: big.clone(),
            presence_node: None,
        },
    );
    let Reply::Sent { channel: used, .. } = sim.ok(bob, t) else {
        panic!("not sent")
    };
    assert_eq!(used, channel, "the open channel is reused");
    let got = sim.inbox(alice);
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].bytes().expect("hex"), big);
    assert_eq!(got[0].channel, alice_channel);

    // A second send from Alice reuses her channel: no new introduction.
    let t = sim.command(
        alice,
        Command::Send {
            peer: bob_key,
            bytes: b"again".to_vec(),
            presence_node: None,
        },
    );
    assert!(matches!(sim.ok(alice, t), Reply::Sent { channel, .. } if channel == alice_channel));
    assert!(sim.introductions(bob).is_empty());
    assert_eq!(sim.inbox(bob)[0].text.as_deref(), Some("again"));

    // Carol is declined and told so.
    let carol = sim.client(
        0x0c,
        CoreConfig {
            points: 0,
            ..CoreConfig::default()
        },
    );
    let carol_send = sim.command(
        carol,
        Command::Send {
            peer: bob_key,
            bytes: b"let me in".to_vec(),
            presence_node: None,
        },
    );
    let intros = sim.introductions(bob);
    assert_eq!(intros.len(), 1);
    let t = sim.command(bob, Command::Decline(intros[0].0));
    assert!(matches!(sim.ok(bob, t), Reply::Declined { .. }));
    assert_eq!(sim.err(carol, carol_send), "Declined");

    // Closing the channel tells the other side.
    let t = sim.command(alice, Command::Close(alice_channel));
    assert!(matches!(sim.ok(alice, t), Reply::Closed { .. }));
    assert!(sim
        .take_events(bob)
        .iter()
        .any(|e| matches!(e, AgentEvent::ChannelClosed { channel: c, .. } if *c == channel)));
    assert!(sim.clients[bob].core.status().channels.is_empty());

    // Bob's entry guard never saw his identity: no circuit of his entered at a presence node.
    assert_no_entry_is_a_presence_node(&sim, bob, &bob_presence);
    let guard = sim.clients[bob].core.status().guard.expect("a guard");
    assert!(!bob_presence.contains(&guard));
}

#[test]
fn a_dead_point_is_replaced_in_its_slot_and_records_are_renewed() {
    let mut sim = Sim::new(6);
    let bob = sim.client(0x0b, CoreConfig::default());
    sim.take_events(bob);
    let slot0 = sim.clients[bob].core.status().points[0].clone();
    let node = sim
        .world
        .nodes
        .iter()
        .position(|n| Some(hex0x(&n.key.public())) == slot0.node)
        .expect("slot 0's node");
    let stream = sim.world.streams_at(node, PRESENCE_SERVICE)[0];
    let now = sim.now;
    for d in sim.world.kill(now, stream) {
        sim.deliver(d);
    }
    sim.pump();
    let events = sim.take_events(bob);
    assert!(
        events.iter().any(
            |e| matches!(e, AgentEvent::PointLost { slot: 0, retry_at, .. } if *retry_at == now)
        ),
        "{events:?}"
    );
    assert_eq!(
        registered_slots(&events),
        [0],
        "replaced at once in the same slot"
    );

    // Keep-alives at half the record's life (240 s) renew both points.
    sim.advance(121);
    let events = sim.take_events(bob);
    let renewed = events
        .iter()
        .filter(|e| matches!(e, AgentEvent::PointRenewed { .. }))
        .count();
    assert_eq!(renewed, 2, "{events:?}");
    assert!(sim.clients[bob]
        .core
        .status()
        .points
        .iter()
        .all(|p| p.state == "registered"));
}

#[test]
fn unreachable_nodes_are_retried_with_backoff() {
    let mut sim = Sim::new(3);
    for key in sim.world.node_keys() {
        sim.world.unreachable.insert(key);
    }
    let bob = sim.client(
        0x0b,
        CoreConfig {
            points: 1,
            ..CoreConfig::default()
        },
    );
    let retries = |events: &[AgentEvent]| -> Vec<u64> {
        events
            .iter()
            .filter_map(|e| match e {
                AgentEvent::PointLost { retry_at, .. } => Some(*retry_at),
                _ => None,
            })
            .collect()
    };
    let events = sim.take_events(bob);
    // The first failure is replaced at once; that one fails too and waits 2 s.
    assert_eq!(retries(&events), [START, START + 2], "{events:?}");
    sim.advance(2);
    assert_eq!(retries(&sim.take_events(bob)), [START + 2 + 4]);
    sim.world.unreachable.clear();
    sim.advance(4);
    assert_eq!(registered_slots(&sim.take_events(bob)), [0]);
    assert_eq!(sim.clients[bob].core.status().points[0].failures, 0);
}

#[test]
fn refusals_are_clear_and_change_nothing() {
    let mut sim = Sim::new(4);
    let alice = sim.client(
        0x0a,
        CoreConfig {
            points: 0,
            ..CoreConfig::default()
        },
    );
    let dave = sim.world.client(0x0d).identity_public();

    // Nobody announces for Dave: no presence.
    let t = sim.command(
        alice,
        Command::Send {
            peer: dave,
            bytes: b"hi".to_vec(),
            presence_node: None,
        },
    );
    assert_eq!(sim.err(alice, t), "NoPresence");

    // Over the channel's bound: refused before anything is opened.
    let t = sim.command(
        alice,
        Command::Send {
            peer: dave,
            bytes: vec![0; (1 << 20) + 1],
            presence_node: None,
        },
    );
    assert_eq!(sim.err(alice, t), "Protocol");

    for (command, code) in [
        (Command::Accept(99), "UnknownRequest"),
        (Command::Decline(99), "UnknownRequest"),
        (Command::Close(99), "UnknownChannel"),
    ] {
        let t = sim.command(alice, command);
        assert_eq!(sim.err(alice, t), code);
    }

    // An inbox wait ends empty at its deadline.
    let t = sim.command(
        alice,
        Command::Inbox {
            wait_secs: 5,
            max: None,
        },
    );
    assert!(sim.reply(alice, t).is_none());
    sim.advance(5);
    let Reply::Inbox(view) = sim.ok(alice, t) else {
        panic!("not an inbox")
    };
    assert!(view.messages.is_empty());
    assert!(sim.clients[alice].core.status().connects == 0);
}

#[test]
fn a_waiting_inbox_read_gets_the_next_message_and_full_caps_add_points() {
    let mut sim = Sim::new(6);
    let config = CoreConfig {
        points: 1,
        limits: ChannelLimits {
            rate_per_minute: 60,
            burst: 10,
            cap: 1,
        },
        ..CoreConfig::default()
    };
    let bob = sim.client(0x0b, config);
    sim.take_events(bob);
    let alice = sim.client(
        0x0a,
        CoreConfig {
            points: 0,
            ..CoreConfig::default()
        },
    );
    let bob_key = sim.clients[bob].key;
    let wait = sim.command(
        bob,
        Command::Inbox {
            wait_secs: 30,
            max: None,
        },
    );
    let sent = sim.command(
        alice,
        Command::Send {
            peer: bob_key,
            bytes: b"first".to_vec(),
            presence_node: None,
        },
    );
    let (request, _) = sim.introductions(bob)[0].clone();
    let t = sim.command(bob, Command::Accept(request));
    assert!(matches!(sim.ok(bob, t), Reply::Accepted { .. }));
    assert!(matches!(sim.ok(alice, sent), Reply::Sent { .. }));
    let Reply::Inbox(view) = sim.ok(bob, wait) else {
        panic!("not an inbox")
    };
    assert_eq!(view.messages[0].text.as_deref(), Some("first"));

    // The cap of one channel is reached: Bob is told and adds a point in slot 1.
    let events = sim.take_events(bob);
    assert!(
        events.iter().any(|e| matches!(
            e,
            AgentEvent::CapReached {
                slot: 0,
                added_slot: Some(1),
                ..
            }
        )),
        "{events:?}"
    );
    assert_eq!(registered_slots(&events), [1]);
}

/// Alice's client config: no points of her own, direct or not.
fn caller(direct: bool) -> CoreConfig {
    CoreConfig {
        points: 0,
        direct,
        ..CoreConfig::default()
    }
}

fn text_of(messages: &[InboxMessageView]) -> Vec<&str> {
    messages.iter().filter_map(|m| m.text.as_deref()).collect()
}

#[test]
fn a_direct_caller_takes_one_hop_to_its_rendezvous_point_and_to_public_points() {
    let mut sim = Sim::new(6);
    let public = CoreConfig {
        points: 1,
        public: true,
        ..CoreConfig::default()
    };
    let bob = sim.client(0x0b, public);
    let bob_node = presence_nodes(&sim.take_events(bob))[0].clone();
    let alice = sim.client(0x0a, caller(true));
    let (bob_key, alice_key) = (sim.clients[bob].key, sim.clients[alice].key);

    let sent = sim.send(alice, bob_key, b"hello Bob", None);
    // The look-up stays anonymous; the introduction to the public point and the
    // rendezvous circuit go straight to their nodes.
    let lookups = sim.paths_to(alice, LOOKUP_SERVICE);
    assert_eq!(lookups.len(), 1);
    assert_eq!(lookups[0].len(), 3, "{lookups:?}");
    assert_eq!(sim.paths_to(alice, PRESENCE_SERVICE), [[bob_node.clone()]]);
    let rendezvous = sim.paths_to(alice, RENDEZVOUS_SERVICE);
    assert_eq!(rendezvous.len(), 1);
    assert_eq!(rendezvous[0].len(), 1, "{rendezvous:?}");
    let rendezvous_node = rendezvous[0][0].clone();
    assert_ne!(rendezvous_node, bob_node);

    // Bob is not direct: his join of Alice's rendezvous point takes three hops.
    let intros = sim.introductions(bob);
    assert_eq!(intros.len(), 1);
    assert_eq!(intros[0].1, hex0x(&alice_key));
    let t = sim.command(bob, Command::Accept(intros[0].0));
    assert!(matches!(sim.ok(bob, t), Reply::Accepted { .. }));
    let joins = sim.paths_to(bob, RENDEZVOUS_SERVICE);
    assert_eq!(joins.len(), 1);
    assert_eq!(joins[0].len(), 3, "{joins:?}");
    assert_eq!(joins[0][2], rendezvous_node);

    assert!(matches!(sim.ok(alice, sent), Reply::Sent { bytes: 9, .. }));
    assert_eq!(text_of(&sim.inbox(bob)), ["hello Bob"]);
}

#[test]
fn a_direct_caller_reaches_anonymous_points_over_three_hops_and_a_direct_callee_joins_in_one() {
    let mut sim = Sim::new(6);
    // Bob is direct too, but his points stay anonymous: `direct` is not `public`.
    let bob = sim.client(
        0x0b,
        CoreConfig {
            points: 1,
            direct: true,
            ..CoreConfig::default()
        },
    );
    let bob_node = presence_nodes(&sim.take_events(bob))[0].clone();
    let registrations = sim.paths_to(bob, PRESENCE_SERVICE);
    assert_eq!(registrations.len(), 1);
    assert_eq!(registrations[0].len(), 3, "{registrations:?}");
    let alice = sim.client(0x0a, caller(true));
    let (bob_key, alice_key) = (sim.clients[bob].key, sim.clients[alice].key);

    let sent = sim.send(alice, bob_key, b"through three hops", None);
    let intro = sim.paths_to(alice, PRESENCE_SERVICE);
    assert_eq!(intro.len(), 1);
    let path = &intro[0];
    assert_eq!(path.len(), 3, "{path:?}");
    assert!(path[0] != path[1] && path[1] != path[2] && path[0] != path[2]);
    assert_eq!(path[2], bob_node);
    let rendezvous = sim.paths_to(alice, RENDEZVOUS_SERVICE);
    assert_eq!(rendezvous.len(), 1);
    assert_eq!(rendezvous[0].len(), 1, "{rendezvous:?}");

    // Direct Bob joins Alice's rendezvous point in one hop.
    let intros = sim.introductions(bob);
    assert_eq!(intros.len(), 1);
    let t = sim.command(bob, Command::Accept(intros[0].0));
    let Reply::Accepted { peer, .. } = sim.ok(bob, t) else {
        panic!("not accepted")
    };
    assert_eq!(peer, hex0x(&alice_key));
    assert_eq!(sim.paths_to(bob, RENDEZVOUS_SERVICE), rendezvous);

    assert!(matches!(sim.ok(alice, sent), Reply::Sent { .. }));
    assert_eq!(text_of(&sim.inbox(bob)), ["through three hops"]);
    let t = sim.send(bob, alice_key, b"and back", None);
    assert!(matches!(sim.ok(bob, t), Reply::Sent { .. }));
    assert_eq!(text_of(&sim.inbox(alice)), ["and back"]);
}

#[test]
fn a_send_restricted_to_a_presence_node_tries_only_the_point_there() {
    let mut sim = Sim::new(6);
    // Two points that take one channel each, and no third point at the cap.
    let bob = sim.client(
        0x0b,
        CoreConfig {
            points: 2,
            max_points: 2,
            limits: ChannelLimits {
                rate_per_minute: 60,
                burst: 10,
                cap: 1,
            },
            ..CoreConfig::default()
        },
    );
    sim.take_events(bob);
    let status = sim.clients[bob].core.status();
    let node_of = |slot: usize| -> [u8; 32] {
        let hex = status.points[slot].node.as_deref().expect("a node");
        crate::parse_hex::<32>(hex, "node").expect("a key")
    };
    let (point_a, point_b) = (node_of(0), node_of(1));
    let bob_key = sim.clients[bob].key;
    let alice = sim.client(0x0a, caller(false));
    let carol = sim.client(0x0c, caller(false));

    // Alice's channel goes through point A, which reaches its cap.
    let sent = sim.send(alice, bob_key, b"via A", Some(point_a));
    let intro = sim.paths_to(alice, PRESENCE_SERVICE);
    assert_eq!(intro.len(), 1);
    assert_eq!(intro[0].last(), Some(&hex0x(&point_a)));
    let intros = sim.introductions(bob);
    assert_eq!(intros.len(), 1);
    let t = sim.command(bob, Command::Accept(intros[0].0));
    assert!(matches!(sim.ok(bob, t), Reply::Accepted { .. }));
    assert!(matches!(sim.ok(alice, sent), Reply::Sent { .. }));
    let events = sim.take_events(bob);
    assert!(
        events.iter().any(|e| matches!(
            e,
            AgentEvent::CapReached {
                slot: 0,
                added_slot: None,
                ..
            }
        )),
        "{events:?}"
    );

    // Carol, restricted to A, is refused there, and told why.
    let t = sim.send(carol, bob_key, b"via A too", Some(point_a));
    let error = sim.error(carol, t);
    assert_eq!(error.code, "ConnectFailed", "{error:?}");
    assert!(
        error.message.contains(&hex0x(&point_a))
            && error
                .message
                .contains("channel cap at that presence point is reached"),
        "{}",
        error.message
    );
    assert!(sim.introductions(bob).is_empty());
    assert!(sim
        .paths_to(carol, PRESENCE_SERVICE)
        .iter()
        .all(|p| p.last() == Some(&hex0x(&point_a))));

    // Restricted to a node where Bob has no point: nothing is tried, the error says so.
    let elsewhere = sim
        .world
        .node_keys()
        .into_iter()
        .find(|n| *n != point_a && *n != point_b)
        .expect("a third node");
    let t = sim.send(carol, bob_key, b"via nowhere", Some(elsewhere));
    let error = sim.error(carol, t);
    assert_eq!(error.code, "NoPresenceAt", "{error:?}");
    assert!(
        error.message.contains(&hex0x(&elsewhere))
            && error.message.contains("2 found at other nodes"),
        "{}",
        error.message
    );

    // The same send without the restriction reaches Bob as a request (through B).
    let tries = sim.paths_to(carol, PRESENCE_SERVICE).len();
    let unrestricted = sim.send(carol, bob_key, b"any point", None);
    assert!(sim.reply(carol, unrestricted).is_none(), "waits for Bob");
    let intros = sim.introductions(bob);
    assert_eq!(intros.len(), 1);
    assert_eq!(intros[0].1, hex0x(&sim.clients[carol].key));
    let last = sim.paths_to(carol, PRESENCE_SERVICE);
    assert_eq!(last.last().and_then(|p| p.last()), Some(&hex0x(&point_b)));
    assert!(last.len() > tries);

    // While it is under way, a send restricted to another point cannot ride it.
    let t = sim.send(carol, bob_key, b"via B only", Some(point_b));
    assert_eq!(sim.err(carol, t), "ConnectPending");
    let t = sim.command(bob, Command::Accept(intros[0].0));
    assert!(matches!(sim.ok(bob, t), Reply::Accepted { .. }));
    assert!(matches!(sim.ok(carol, unrestricted), Reply::Sent { .. }));
    assert_eq!(text_of(&sim.inbox(bob)), ["via A", "any point"]);
}

#[test]
fn accept_all_opens_every_checked_introduction_at_once() {
    let mut sim = Sim::new(6);
    let bob = sim.client(
        0x0b,
        CoreConfig {
            points: 1,
            accept_all: true,
            max_channels: 1,
            ..CoreConfig::default()
        },
    );
    sim.take_events(bob);
    let alice = sim.client(0x0a, caller(false));
    let carol = sim.client(0x0c, caller(false));
    let (bob_key, alice_key) = (sim.clients[bob].key, sim.clients[alice].key);

    // No accept: the introduction is reported, then the channel opens.
    let sent = sim.send(alice, bob_key, b"no questions asked", None);
    let Reply::Sent { bytes: 18, .. } = sim.ok(alice, sent) else {
        panic!("not sent")
    };
    let events = sim.take_events(bob);
    let alice_hex = hex0x(&alice_key);
    let introduced = events.iter().position(
        |e| matches!(e, AgentEvent::IntroductionReceived { from, .. } if *from == alice_hex),
    );
    let opened = events.iter().position(|e| {
        matches!(e, AgentEvent::ChannelOpened { peer, initiated: false, .. } if *peer == alice_hex)
    });
    assert!(
        matches!((introduced, opened), (Some(i), Some(o)) if i < o),
        "{events:?}"
    );
    assert_eq!(text_of(&sim.inbox(bob)), ["no questions asked"]);
    let t = sim.command(bob, Command::Requests);
    assert!(matches!(sim.ok(bob, t), Reply::Requests { requests } if requests.is_empty()));

    // At the channel bound the next one is not taken: it waits for a person, who declines.
    let carol_send = sim.send(carol, bob_key, b"one too many", None);
    let events = sim.take_events(bob);
    let request = events
        .iter()
        .find_map(|e| match e {
            AgentEvent::IntroductionReceived { request, .. } => Some(*request),
            _ => None,
        })
        .expect("introduced");
    assert!(
        events.iter().any(|e| matches!(
            e,
            AgentEvent::Warning { message }
                if message.contains("not accepted automatically")
                    && message.contains("waits for accept or decline")
        )),
        "{events:?}"
    );
    let t = sim.command(bob, Command::Decline(request));
    assert!(matches!(sim.ok(bob, t), Reply::Declined { .. }));
    assert_eq!(sim.err(carol, carol_send), "Declined");
}

#[test]
fn group_envelopes_go_to_the_groups_host_and_not_the_inbox() {
    let mut sim = Sim::new(6);
    let bob = sim.client(
        0x0b,
        CoreConfig {
            points: 1,
            accept_all: true,
            ..CoreConfig::default()
        },
    );
    let alice = sim.client(0x0a, caller(false));
    let (bob_key, alice_key) = (sim.clients[bob].key, sim.clients[alice].key);
    let envelope = crate::groups::envelope::packet(psp_group::GroupId(7), b"a group packet");
    let t = sim.send(alice, bob_key, b"plain", None);
    sim.ok(alice, t);
    let t = sim.send(alice, bob_key, &envelope, None);
    sim.ok(alice, t);
    assert_eq!(text_of(&sim.inbox(bob)), ["plain"]);
    assert_eq!(sim.clients[bob].group_packets, [(alice_key, envelope)]);
}

#[test]
fn a_direct_agent_never_links_straight_to_its_own_anonymous_presence_node() {
    // Three nodes: Bob's public point at one, Alice's anonymous point at another (over three
    // hops), so Alice's rendezvous node is one of the two others: sometimes her own presence
    // node, which must then be reached over three hops, never one.
    let mut sim = Sim::new(3);
    let public = CoreConfig {
        points: 1,
        public: true,
        limits: ChannelLimits {
            rate_per_minute: 60,
            burst: 10,
            cap: 64,
        },
        ..CoreConfig::default()
    };
    let bob = sim.client(0x0b, public);
    let bob_node = presence_nodes(&sim.take_events(bob))[0].clone();
    let alice = sim.client(
        0x0a,
        CoreConfig {
            points: 1,
            direct: true,
            ..CoreConfig::default()
        },
    );
    let alice_node = presence_nodes(&sim.take_events(alice))[0].clone();
    assert_ne!(alice_node, bob_node);
    let bob_key = sim.clients[bob].key;
    let mut at_own_node = 0;
    for round in 0..10 {
        let sent = sim.send(alice, bob_key, b"hi", None);
        let intros = sim.introductions(bob);
        let t = sim.command(bob, Command::Accept(intros[0].0));
        assert!(matches!(sim.ok(bob, t), Reply::Accepted { .. }));
        let Reply::Sent { channel, .. } = sim.ok(alice, sent) else {
            panic!("round {round}: not sent")
        };
        let rendezvous = sim.paths_to(alice, RENDEZVOUS_SERVICE);
        let path = rendezvous.last().expect("a rendezvous path");
        let node = path.last().expect("a node");
        if *node == alice_node {
            at_own_node += 1;
            assert_eq!(path.len(), 3, "round {round}: {path:?}");
        } else {
            assert_eq!(path.len(), 1, "round {round}: {path:?}");
        }
        let t = sim.command(alice, Command::Close(channel));
        assert!(matches!(sim.ok(alice, t), Reply::Closed { .. }));
        sim.take_events(alice);
        sim.take_events(bob);
    }
    assert!(
        at_own_node > 0,
        "the rendezvous node was never Alice's presence node"
    );
}

#[test]
fn contact_only_mode_declines_strangers_at_the_client_and_lets_contacts_through() {
    let mut sim = Sim::new(6);
    let bob = sim.client(
        0x0b,
        CoreConfig {
            points: 1,
            ..CoreConfig::default()
        },
    );
    sim.take_events(bob);
    let alice = sim.client(0x0a, caller(false));
    let carol = sim.client(0x0c, caller(false));
    let (bob_key, alice_key, carol_key) = (
        sim.clients[bob].key,
        sim.clients[alice].key,
        sim.clients[carol].key,
    );
    // The agent loads its book at start; the set is set here, before any introduction.
    sim.clients[bob].core.config.contacts = Some(Arc::new([alice_key].into_iter().collect()));

    // Carol is not a contact: declined on arrival. The presence node relayed an ordinary
    // decline (Carol's send fails with `Declined`), and Bob has no request to answer.
    let carol_send = sim.send(carol, bob_key, b"let me in", None);
    assert_eq!(sim.err(carol, carol_send), "Declined");
    let events = sim.take_events(bob);
    let carol_hex = hex0x(&carol_key);
    assert!(
        events.iter().any(|e| matches!(
            e,
            AgentEvent::IntroductionDeclinedNotAContact { from, .. } if *from == carol_hex
        )),
        "{events:?}"
    );
    assert!(
        !events
            .iter()
            .any(|e| matches!(e, AgentEvent::IntroductionReceived { .. })),
        "{events:?}"
    );
    let t = sim.command(bob, Command::Requests);
    assert!(matches!(sim.ok(bob, t), Reply::Requests { requests } if requests.is_empty()));
    assert!(sim.inbox(bob).is_empty());

    // Alice is a contact: her introduction waits for accept as before, then messages flow.
    let alice_send = sim.send(alice, bob_key, b"hello, contact", None);
    let intros = sim.introductions(bob);
    assert_eq!(intros.len(), 1);
    assert_eq!(intros[0].1, hex0x(&alice_key));
    let t = sim.command(bob, Command::Accept(intros[0].0));
    assert!(matches!(sim.ok(bob, t), Reply::Accepted { .. }));
    assert!(matches!(sim.ok(alice, alice_send), Reply::Sent { .. }));
    assert_eq!(text_of(&sim.inbox(bob)), ["hello, contact"]);
}

#[test]
fn accept_all_with_contacts_accepts_only_contacts() {
    let mut sim = Sim::new(6);
    let bob = sim.client(
        0x0b,
        CoreConfig {
            points: 1,
            accept_all: true,
            ..CoreConfig::default()
        },
    );
    sim.take_events(bob);
    let alice = sim.client(0x0a, caller(false));
    let carol = sim.client(0x0c, caller(false));
    let (bob_key, alice_key) = (sim.clients[bob].key, sim.clients[alice].key);
    sim.clients[bob].core.config.contacts = Some(Arc::new([alice_key].into_iter().collect()));

    let sent = sim.send(alice, bob_key, b"no questions asked", None);
    assert!(matches!(sim.ok(alice, sent), Reply::Sent { .. }));
    let carol_send = sim.send(carol, bob_key, b"me too?", None);
    assert_eq!(sim.err(carol, carol_send), "Declined");
    assert_eq!(text_of(&sim.inbox(bob)), ["no questions asked"]);
    let t = sim.command(bob, Command::Requests);
    assert!(matches!(sim.ok(bob, t), Reply::Requests { requests } if requests.is_empty()));
}

#[test]
fn no_node_ever_learns_both_the_address_and_the_identity_across_replacements() {
    let mut sim = Sim::new(6);
    let bob = sim.client(0x0b, CoreConfig::default());
    sim.take_events(bob);
    let mut holders = BTreeSet::new();
    for round in 0..12 {
        // Slot 0's point dies (it is replaced at once), then the guard fails three circuits
        // in a row (it is replaced).
        if let Some(node) = sim.clients[bob].core.status().points[0].node.clone() {
            let index = sim
                .world
                .nodes
                .iter()
                .position(|n| hex0x(&n.key.public()) == node)
                .expect("slot 0's node");
            if let Some(&stream) = sim.world.streams_at(index, PRESENCE_SERVICE).first() {
                let now = sim.now;
                for d in sim.world.kill(now, stream) {
                    sim.deliver(d);
                }
                sim.pump();
            }
        }
        let core = &mut sim.clients[bob].core;
        for _ in 0..super::paths::GUARD_FAILURES {
            core.circuit_failed();
        }
        holders.extend(core.knows_identity.iter().copied());
        assert!(
            core.knows_identity.is_disjoint(&core.knows_address),
            "round {round}: a node saw both"
        );
        if let Some(guard) = core.guard {
            assert!(
                !holders.contains(&guard),
                "round {round}: guard was a presence node"
            );
        }
        sim.take_events(bob);
    }
    assert!(holders.len() >= 2, "points moved: {holders:?}");
}
