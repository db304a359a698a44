//! The core on an in-memory network of real node services ([`testkit`]): presence points,
//! replacement, look-ups, introductions, accept and decline, channels both ways, the
//! inbox and its waits, and the refusals — deterministic, with time jumped by hand.

use std::collections::{HashMap, VecDeque};

use psp_net::rendezvous::StreamHandle;

use super::*;
use crate::messaging::credentials;
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
    /// Every path opened, by client.
    paths: Vec<(usize, Vec<[u8; 32]>)>,
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
        match self.reply(client, ticket) {
            Some(Response::Error(e)) => e.code,
            other => panic!("client {client}: expected an error, got {other:?}"),
        }
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
                    self.paths.push((c, request.path.clone()));
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
    for (c, path) in sim.paths.iter().filter(|(c, _)| *c == client) {
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
        },
    );
    assert_eq!(sim.err(alice, t), "NoPresence");

    // Over the channel's bound: refused before anything is opened.
    let t = sim.command(
        alice,
        Command::Send {
            peer: dave,
            bytes: vec![0; (1 << 20) + 1],
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
