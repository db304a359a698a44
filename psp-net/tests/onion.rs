//! Multi-node tests: an in-memory network of relays and one client, deterministic, with time
//! jumping to the next deadline (quinn-proto style). Every cell crosses the "wire" as 512 bytes.

use std::collections::{BTreeMap, HashMap, VecDeque};

use psp_net::cell::{Cell, ChanMsg, DestroyReason, EndReason, CELL_LEN};
use psp_net::circuit::client::MAX_SEND_BACKLOG;
use psp_net::circuit::window::CIRCUIT_WINDOW;
use psp_net::circuit::{
    CircuitError, CircuitHandle, Client, ClientEvent, Config, NodeRecord, Peer, Rate, Relay,
    RelayEvent, Services, StaticDirectory, Timestamp,
};
use psp_net::crypto::{NodeId, OnionPublic, OnionSecret};
use rand::rngs::StdRng;
use rand::SeedableRng;

const CLIENT: u64 = 1;

/// A frame on the wire: from, to, bytes.
type Frame = (Peer, Peer, Vec<u8>);

struct Net {
    now: Timestamp,
    relays: BTreeMap<NodeId, Relay>,
    keys: HashMap<NodeId, OnionPublic>,
    client: Client,
    /// The client's entry node for `Peer::Client` addressing.
    entry_of_client: Option<NodeId>,
    /// Returns false to drop the frame; may modify it.
    filter: Box<dyn FnMut(&mut Frame) -> bool>,
    /// Frames to inject once (replays).
    inject: VecDeque<Frame>,
    relay_events: Vec<(NodeId, RelayEvent)>,
    client_events: Vec<ClientEvent>,
    cells_moved: usize,
}

fn node(i: u8) -> NodeId {
    NodeId([i; 32])
}

impl Net {
    /// `n` relays, of which `registered` are in the directory everyone uses.
    fn new(n: u8, config: Config) -> Self {
        Self::with_unregistered(n, 0, config)
    }

    fn with_unregistered(n: u8, unregistered: u8, config: Config) -> Self {
        let mut dir = StaticDirectory::default();
        let mut secrets = Vec::new();
        let mut keys = HashMap::new();
        for i in 1..=n + unregistered {
            let s = OnionSecret::from_bytes([i.wrapping_mul(37); 32]);
            keys.insert(node(i), s.public());
            if i <= n {
                dir.0.insert(
                    node(i),
                    NodeRecord {
                        onion_key: s.public(),
                        address: format!("/memory/{i}"),
                    },
                );
            }
            secrets.push((i, s));
        }
        let relays = secrets
            .into_iter()
            .map(|(i, s)| {
                let r = Relay::new(
                    node(i),
                    s,
                    config.clone(),
                    Box::new(dir.clone()),
                    Box::new(Services::default()),
                    Box::new(StdRng::seed_from_u64(u64::from(i))),
                );
                (node(i), r)
            })
            .collect();
        Self {
            now: Timestamp(0),
            relays,
            keys,
            client: Client::new(Box::new(StdRng::seed_from_u64(99))),
            entry_of_client: None,
            filter: Box::new(|_| true),
            inject: VecDeque::new(),
            relay_events: Vec::new(),
            client_events: Vec::new(),
            cells_moved: 0,
        }
    }

    fn deliver(&mut self, (from, to, bytes): Frame) {
        assert_eq!(bytes.len(), CELL_LEN, "every cell on the wire is 512 bytes");
        self.cells_moved += 1;
        match to {
            Peer::Node(id) => {
                if let Some(r) = self.relays.get_mut(&id) {
                    r.handle_cell(self.now, from, &bytes);
                }
            }
            Peer::Client(_) => {
                if let Peer::Node(from) = from {
                    self.client.handle_cell(from, &bytes);
                }
            }
        }
    }

    /// Moves cells until nothing moves, jumping time to the next deadline up to `until`.
    fn run_until(&mut self, until: Timestamp) {
        for _ in 0..10_000_000 {
            let mut frames: Vec<Frame> = Vec::new();
            while let Some(t) = self.client.poll_transmit() {
                if let Peer::Node(entry) = t.to {
                    self.entry_of_client = Some(entry);
                }
                frames.push((Peer::Client(CLIENT), t.to, t.cell.to_vec()));
            }
            let now = self.now;
            for (id, r) in self.relays.iter_mut() {
                while let Some(t) = r.poll_transmit(now) {
                    frames.push((Peer::Node(*id), t.to, t.cell.to_vec()));
                }
                while let Some(e) = r.poll_event() {
                    self.relay_events.push((*id, e));
                }
            }
            if let Some(f) = self.inject.pop_front() {
                frames.push(f);
            }
            while let Some(e) = self.client.poll_event() {
                self.client_events.push(e);
            }
            if frames.is_empty() {
                let next = self.relays.values().filter_map(|r| r.poll_timeout()).min();
                match next {
                    Some(t) if t > self.now && t <= until => self.now = t,
                    _ => return,
                }
                continue;
            }
            for mut f in frames {
                if (self.filter)(&mut f) {
                    self.deliver(f);
                }
            }
        }
        panic!("network did not settle");
    }

    fn run(&mut self) {
        self.run_until(Timestamp(u64::MAX));
    }

    fn build(&mut self, path: &[u8]) -> CircuitHandle {
        let entry = node(path[0]);
        let h = self.client.build(entry, self.keys[&entry]).unwrap();
        self.run();
        for &i in &path[1..] {
            self.client.extend(h, node(i), self.keys[&node(i)]).unwrap();
            self.run();
        }
        h
    }

    fn take_client_events(&mut self) -> Vec<ClientEvent> {
        std::mem::take(&mut self.client_events)
    }

    fn closed_reason(&self, h: CircuitHandle) -> Option<DestroyReason> {
        self.client_events.iter().find_map(|e| match e {
            ClientEvent::Closed {
                circuit, reason, ..
            } if *circuit == h => Some(*reason),
            _ => None,
        })
    }

    fn relay_closes(&self) -> Vec<(NodeId, DestroyReason)> {
        self.relay_events
            .iter()
            .filter_map(|(id, e)| match e {
                RelayEvent::CircuitClosed { reason, .. } => Some((*id, *reason)),
                _ => None,
            })
            .collect()
    }

    fn total_circuits(&self) -> usize {
        self.relays.values().map(|r| r.circuit_count()).sum()
    }
}

fn fast() -> Config {
    Config {
        circuit_rate: Rate {
            cells_per_sec: 100_000,
            burst: 100_000,
        },
        peer_rate: Rate {
            cells_per_sec: 100_000,
            burst: 100_000,
        },
        ..Config::default()
    }
}

fn is_relay(f: &Frame) -> bool {
    matches!(f.2.get(4), Some(3) | Some(4))
}

#[test]
fn three_hop_circuit_builds_and_authenticates_every_hop() {
    let mut net = Net::new(3, fast());
    let h = net.build(&[1, 2, 3]);
    let hops: Vec<usize> = net
        .take_client_events()
        .iter()
        .filter_map(|e| match e {
            ClientEvent::Extended { hops, .. } => Some(*hops),
            _ => None,
        })
        .collect();
    assert_eq!(hops, vec![1, 2, 3]);
    assert_eq!(net.client.path(h).unwrap(), &[node(1), node(2), node(3)]);
    assert_eq!(net.total_circuits(), 3);
}

#[test]
fn echo_one_mebibyte_byte_exact_through_three_hops() {
    let mut net = Net::new(3, fast());
    let h = net.build(&[1, 2, 3]);
    let s = net.client.open_stream(h, "echo").unwrap();
    net.run();
    assert!(net
        .take_client_events()
        .contains(&ClientEvent::StreamOpened {
            circuit: h,
            stream: s
        }));
    let data: Vec<u8> = (0..1u32 << 20)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    // All of it at once: the circuit window paces it (the backlog holds the rest).
    net.client.send(h, s, &data).unwrap();
    net.run();
    let mut echoed = Vec::with_capacity(data.len());
    for e in net.take_client_events() {
        match e {
            ClientEvent::Data { data, .. } => echoed.extend_from_slice(&data),
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(echoed.len(), data.len());
    assert!(echoed == data, "every byte echoed in order");
}

#[test]
fn unknown_service_ends_the_stream_not_the_circuit() {
    let mut net = Net::new(1, fast());
    let h = net.build(&[1]);
    let s = net.client.open_stream(h, "presence").unwrap();
    net.run();
    assert!(net
        .take_client_events()
        .contains(&ClientEvent::StreamClosed {
            circuit: h,
            stream: s,
            reason: EndReason::UnknownService
        }));
    assert_eq!(net.total_circuits(), 1);
}

#[test]
fn client_destroy_propagates_forward_to_every_hop() {
    let mut net = Net::new(3, fast());
    let h = net.build(&[1, 2, 3]);
    net.client.destroy(h).unwrap();
    net.run();
    assert_eq!(net.total_circuits(), 0);
    assert_eq!(net.relay_closes().len(), 3);
    assert!(net
        .relay_closes()
        .iter()
        .all(|(_, r)| *r == DestroyReason::Requested));
}

#[test]
fn link_loss_at_the_last_hop_propagates_backward_to_the_client() {
    let mut net = Net::new(3, fast());
    let h = net.build(&[1, 2, 3]);
    let now = net.now;
    net.relays
        .get_mut(&node(2))
        .unwrap()
        .handle_link_closed(now, Peer::Node(node(3)));
    net.run();
    assert_eq!(net.closed_reason(h), Some(DestroyReason::LinkClosed));
    // Hop 3 still holds its half until its own link notices; hops 1 and 2 are gone.
    assert_eq!(net.relays[&node(1)].circuit_count(), 0);
    assert_eq!(net.relays[&node(2)].circuit_count(), 0);
}

#[test]
fn tampered_cell_kills_the_circuit_at_the_next_honest_hop() {
    let mut net = Net::new(3, fast());
    let h = net.build(&[1, 2, 3]);
    let s = net.client.open_stream(h, "echo").unwrap();
    net.run();
    // Hop 1 flips one bit of the next relay cell it forwards to hop 2 (a tagging attempt).
    let mut armed = true;
    net.filter = Box::new(move |f| {
        if armed && f.0 == Peer::Node(node(1)) && f.1 == Peer::Node(node(2)) && is_relay(f) {
            f.2[300] ^= 0x04;
            armed = false;
        }
        true
    });
    net.client.send(h, s, b"hello").unwrap();
    net.run();
    assert!(net
        .relay_closes()
        .contains(&(node(2), DestroyReason::Integrity)));
    assert_eq!(net.closed_reason(h), Some(DestroyReason::Integrity));
    assert_eq!(net.total_circuits(), 0, "torn down both ways");
}

#[test]
fn tampered_backward_cell_is_caught_by_the_client() {
    let mut net = Net::new(3, fast());
    let h = net.build(&[1, 2, 3]);
    let s = net.client.open_stream(h, "echo").unwrap();
    net.run();
    let mut armed = true;
    net.filter = Box::new(move |f| {
        if armed && f.0 == Peer::Node(node(2)) && f.1 == Peer::Node(node(1)) && is_relay(f) {
            f.2[20] ^= 0x01;
            armed = false;
        }
        true
    });
    net.client.send(h, s, b"hello").unwrap();
    net.run();
    assert_eq!(net.closed_reason(h), Some(DestroyReason::Integrity));
    assert_eq!(net.total_circuits(), 0);
}

#[test]
fn replayed_cell_kills_the_circuit() {
    let mut net = Net::new(3, fast());
    let h = net.build(&[1, 2, 3]);
    let s = net.client.open_stream(h, "echo").unwrap();
    net.run();
    let captured = std::rc::Rc::new(std::cell::RefCell::new(None));
    let cap = captured.clone();
    net.filter = Box::new(move |f| {
        if f.0 == Peer::Client(CLIENT) && is_relay(f) && cap.borrow().is_none() {
            *cap.borrow_mut() = Some(f.clone());
        }
        true
    });
    net.client.send(h, s, b"once").unwrap();
    net.run();
    assert!(net
        .take_client_events()
        .iter()
        .any(|e| matches!(e, ClientEvent::Data { data, .. } if data == b"once")));
    let replay = captured.borrow_mut().take().unwrap();
    net.inject.push_back(replay);
    net.run();
    assert!(net
        .relay_closes()
        .contains(&(node(1), DestroyReason::Integrity)));
    assert_eq!(net.closed_reason(h), Some(DestroyReason::Integrity));
    assert_eq!(net.total_circuits(), 0);
}

#[test]
fn extend_to_unregistered_node_is_refused_with_a_reason() {
    let mut net = Net::with_unregistered(2, 1, fast());
    let h = net.build(&[1, 2]);
    net.client.extend(h, node(3), net.keys[&node(3)]).unwrap();
    net.run();
    assert!(net.relay_events.iter().any(|(id, e)| *id == node(2)
        && matches!(e, RelayEvent::ExtendRefused { error: CircuitError::NotRegistered(n), .. } if *n == node(3))));
    assert_eq!(net.closed_reason(h), Some(DestroyReason::ExtendRefused));
    assert_eq!(net.relays[&node(3)].circuit_count(), 0, "never contacted");
}

#[test]
fn extend_with_a_key_other_than_the_chains_is_refused() {
    let mut net = Net::new(3, fast());
    let h = net.build(&[1, 2]);
    let wrong = OnionSecret::from_bytes([0xaa; 32]).public();
    net.client.extend(h, node(3), wrong).unwrap();
    net.run();
    assert!(net.relay_events.iter().any(|(_, e)| matches!(
        e,
        RelayEvent::ExtendRefused {
            error: CircuitError::OnionKeyMismatch(_),
            ..
        }
    )));
    assert_eq!(net.closed_reason(h), Some(DestroyReason::ExtendRefused));
}

#[test]
fn create_with_the_wrong_onion_key_is_refused() {
    let mut net = Net::new(1, fast());
    let wrong = OnionSecret::from_bytes([0xab; 32]).public();
    let h = net.client.build(node(1), wrong).unwrap();
    net.run();
    assert_eq!(net.closed_reason(h), Some(DestroyReason::Handshake));
    assert!(net.relay_events.iter().any(|(_, e)| matches!(
        e,
        RelayEvent::CreateRefused {
            error: CircuitError::Handshake(_),
            ..
        }
    )));
    assert_eq!(net.total_circuits(), 0);
}

#[test]
fn extend_limit_bounds_circuit_length() {
    let config = Config {
        max_relay_early: 2,
        ..fast()
    };
    let mut net = Net::new(4, config);
    let h = net.build(&[1, 2, 3]);
    assert_eq!(net.client.path(h).unwrap().len(), 3, "two extends pass");
    net.client.extend(h, node(4), net.keys[&node(4)]).unwrap();
    net.run();
    assert!(net
        .relay_closes()
        .contains(&(node(1), DestroyReason::ExtendLimit)));
    assert_eq!(net.closed_reason(h), Some(DestroyReason::ExtendLimit));
    assert_eq!(net.total_circuits(), 0);
}

#[test]
fn rate_limit_spaces_cells_at_the_configured_rate() {
    let config = Config {
        circuit_rate: Rate {
            cells_per_sec: 10,
            burst: 5,
        },
        ..Config::default()
    };
    let mut net = Net::new(1, config);
    let h = net.build(&[1]);
    let s = net.client.open_stream(h, "echo").unwrap();
    net.run();
    net.take_client_events();
    // CREATED is a control cell; CONNECTED took one token: 4 left in the burst.
    let start = net.now;
    let n = 24;
    net.client
        .send(h, s, &vec![7u8; n * net.client.max_data(h)])
        .unwrap();
    net.run_until(Timestamp(start.0 + 1_000));
    let in_first_second = net
        .take_client_events()
        .iter()
        .filter(|e| matches!(e, ClientEvent::Data { .. }))
        .count();
    // 4 from the burst + 10 refilled in one second.
    assert_eq!(in_first_second, 14);
    net.run();
    let rest = net
        .take_client_events()
        .iter()
        .filter(|e| matches!(e, ClientEvent::Data { .. }))
        .count();
    assert_eq!(in_first_second + rest, n);
    assert_eq!(
        net.now.0 - start.0,
        2_000,
        "24 cells = 4 burst + 20 at 10/s"
    );
}

#[test]
fn a_fast_sender_is_paced_by_the_circuit_window_not_torn_down() {
    // Default limits: 10 cells/s per circuit, 128 cells queued per circuit. 600 cells at
    // once used to overflow the entry's queue; now the window keeps at most 50 DATA cells
    // in flight each way and the rest waits at the sender.
    let mut net = Net::new(3, Config::default());
    let h = net.build(&[1, 2, 3]);
    let s = net.client.open_stream(h, "echo").unwrap();
    net.run();
    net.take_client_events();
    let cells = 600;
    let data: Vec<u8> = (0..cells * net.client.max_data(h))
        .map(|i| (i % 251) as u8)
        .collect();
    net.client.send(h, s, &data).unwrap();
    assert!(net.client.backlog(h) >= cells - usize::from(CIRCUIT_WINDOW));
    let mut echoed = Vec::new();
    let mut peak_queue = 0;
    while echoed.len() < data.len() {
        let before = net.now;
        net.run_until(Timestamp(net.now.0 + 100));
        for e in net.take_client_events() {
            match e {
                ClientEvent::Data { data, .. } => echoed.extend_from_slice(&data),
                other => panic!("unexpected {other:?}"),
            }
        }
        peak_queue = net
            .relays
            .values()
            .map(Relay::queued_cells)
            .max()
            .unwrap_or(0)
            .max(peak_queue);
        assert!(net.now > before || echoed.len() == data.len(), "stalled");
    }
    assert!(echoed == data, "every byte echoed in order");
    assert_eq!(net.closed_reason(h), None, "the circuit stayed open");
    assert!(net.relay_closes().is_empty());
    assert!(
        peak_queue <= 2 * usize::from(CIRCUIT_WINDOW) + 4,
        "a relay queued {peak_queue} cells of one circuit"
    );
    assert_eq!(net.client.backlog(h), 0);
}

#[test]
fn the_send_backlog_is_bounded_and_refuses_whole_messages() {
    let mut net = Net::new(1, fast());
    let h = net.build(&[1]);
    let s = net.client.open_stream(h, "echo").unwrap();
    net.run();
    let cell = net.client.max_data(h);
    // Nothing moves between the calls: the window takes 50 cells, the backlog the rest.
    net.client
        .send(
            h,
            s,
            &vec![1; (MAX_SEND_BACKLOG + usize::from(CIRCUIT_WINDOW) - 1) * cell],
        )
        .unwrap();
    let full = net.client.send(h, s, &vec![1; 2 * cell]);
    assert_eq!(
        full,
        Err(CircuitError::SendBacklogFull {
            queued: MAX_SEND_BACKLOG - 1,
            max: MAX_SEND_BACKLOG
        })
    );
    assert_eq!(
        net.client.backlog(h),
        MAX_SEND_BACKLOG - 1,
        "nothing of it queued"
    );
    net.client.send(h, s, &vec![1; cell]).unwrap();
}

#[test]
fn a_queue_smaller_than_the_window_overflows_and_loses_the_circuit() {
    let config = Config {
        circuit_rate: Rate {
            cells_per_sec: 10,
            burst: 1,
        },
        max_queue_per_circuit: 8,
        ..Config::default()
    };
    let mut net = Net::new(2, config);
    let h = net.build(&[1, 2]);
    let s = net.client.open_stream(h, "echo").unwrap();
    net.run();
    net.client
        .send(h, s, &vec![1u8; 40 * net.client.max_data(h)])
        .unwrap();
    net.run();
    assert!(net
        .relay_closes()
        .iter()
        .any(|(_, r)| *r == DestroyReason::QueueOverflow));
    assert_eq!(net.closed_reason(h), Some(DestroyReason::QueueOverflow));
}

#[test]
fn circuits_per_client_are_capped() {
    let config = Config {
        max_circuits_per_client: 3,
        ..fast()
    };
    let mut net = Net::new(1, config);
    let hs: Vec<_> = (0..4).map(|_| net.build(&[1])).collect();
    assert_eq!(net.relays[&node(1)].circuit_count(), 3);
    assert_eq!(net.closed_reason(hs[3]), Some(DestroyReason::ResourceLimit));
    assert!(net.relay_events.iter().any(|(_, e)| matches!(
        e,
        RelayEvent::CreateRefused {
            error: CircuitError::TooManyCircuits,
            ..
        }
    )));
    // Closing one frees a slot.
    net.client.destroy(hs[0]).unwrap();
    net.run();
    let again = net.build(&[1]);
    assert!(net.client.path(again).is_some());
    assert_eq!(net.relays[&node(1)].circuit_count(), 3);
}

#[test]
fn memory_pressure_closes_the_circuit_with_the_oldest_queued_data_first() {
    // Hop 1 can send almost nothing to hop 2 (peer rate), so cells queue at hop 1.
    let config = Config {
        peer_rate: Rate {
            cells_per_sec: 1,
            burst: 1,
        },
        circuit_rate: Rate {
            cells_per_sec: 100_000,
            burst: 100_000,
        },
        max_queued_cells: 20,
        ..Config::default()
    };
    let mut net = Net::new(2, config);
    let old = net.build(&[1, 2]);
    let young = net.build(&[1, 2]);
    let so = net.client.open_stream(old, "echo").unwrap();
    let sy = net.client.open_stream(young, "echo").unwrap();
    net.run_until(net.now);
    net.run_until(Timestamp(net.now.0 + 10_000));
    net.take_client_events();
    // The old circuit queues 10 cells at t, the young one 10 cells at t + 1 s; one more tips it.
    net.client
        .send(old, so, &vec![0u8; 10 * net.client.max_data(old)])
        .unwrap();
    net.run_until(net.now);
    net.now = Timestamp(net.now.0 + 1_000);
    net.client
        .send(young, sy, &vec![0u8; 11 * net.client.max_data(young)])
        .unwrap();
    net.run_until(net.now);
    assert!(net
        .relay_closes()
        .contains(&(node(1), DestroyReason::MemoryPressure)));
    assert_eq!(net.closed_reason(old), Some(DestroyReason::MemoryPressure));
    assert_eq!(net.closed_reason(young), None, "the younger queue survives");
    assert!(net.relays[&node(1)].queued_cells() <= 20);
}

#[test]
fn a_flood_from_many_circuits_stays_under_the_memory_cap_and_a_quiet_circuit_still_flows() {
    // Hop 1 forwards to hop 2 at 50 cells/s in all, so every flooding circuit queues at hop 1.
    const CAP: usize = 120;
    let config = Config {
        peer_rate: Rate {
            cells_per_sec: 50,
            burst: 1,
        },
        circuit_rate: Rate {
            cells_per_sec: 100_000,
            burst: 100_000,
        },
        max_queued_cells: CAP,
        ..Config::default()
    };
    let mut net = Net::new(2, config);
    let floods: Vec<_> = (0..15).map(|_| net.build(&[1, 2])).collect();
    let quiet = net.build(&[1, 2]);
    let streams: Vec<_> = floods
        .iter()
        .map(|&h| net.client.open_stream(h, "echo").unwrap())
        .collect();
    let quiet_stream = net.client.open_stream(quiet, "echo").unwrap();
    net.run();
    net.take_client_events();
    // Each flooding circuit pushes 40 cells at once, one circuit per simulated 100 ms.
    let mut peak = 0;
    for (&h, &st) in floods.iter().zip(&streams) {
        let bytes = vec![0xaa; 40 * net.client.max_data(h)];
        if net.client.send(h, st, &bytes).is_err() {
            continue; // already closed by the relay
        }
        net.run_until(net.now);
        peak = peak.max(net.relays[&node(1)].queued_cells());
        net.now = Timestamp(net.now.0 + 100);
    }
    assert!(peak <= CAP, "hop 1 held {peak} cells, cap {CAP}");
    let pressure = net
        .relay_closes()
        .iter()
        .filter(|(n, r)| *n == node(1) && *r == DestroyReason::MemoryPressure)
        .count();
    assert!(pressure > 0, "600 cells against a cap of 120 must evict");
    // The quiet circuit queued nothing, so nothing of it was evicted, and it still echoes.
    assert_eq!(net.closed_reason(quiet), None);
    net.client.send(quiet, quiet_stream, b"still here").unwrap();
    net.run();
    let echoed: Vec<u8> = net
        .take_client_events()
        .into_iter()
        .filter_map(|e| match e {
            ClientEvent::Data { circuit, data, .. } if circuit == quiet => Some(data),
            _ => None,
        })
        .flatten()
        .collect();
    assert_eq!(echoed, b"still here");
    assert!(net.relays[&node(1)].queued_cells() <= CAP);
}

#[test]
fn garbage_and_unknown_circuits_never_panic_a_relay() {
    let mut net = Net::new(2, fast());
    let h = net.build(&[1, 2]);
    let r = net.relays.get_mut(&node(1)).unwrap();
    let from = Peer::Client(CLIENT);
    for len in [0usize, 1, 4, 5, 511, 513, 4096] {
        r.handle_cell(Timestamp(0), from, &vec![0xff; len]);
    }
    // A relay cell for a circuit that does not exist.
    let stray = Cell {
        circ_id: psp_net::cell::CircId::new(777).unwrap(),
        msg: ChanMsg::Relay(psp_net::cell::RelayBody(Box::new([1; 507]))),
    };
    r.handle_cell(Timestamp(0), from, &stray.encode());
    let mut seen_unknown = false;
    let mut bad = 0;
    while let Some(e) = r.poll_event() {
        match e {
            RelayEvent::UnknownCircuit { .. } => seen_unknown = true,
            RelayEvent::BadCell { .. } => bad += 1,
            _ => {}
        }
    }
    assert!(seen_unknown);
    assert_eq!(bad, 7);
    // Unknown command on a known circuit closes that circuit with Protocol.
    let mut cell = Cell {
        circ_id: h.id,
        msg: ChanMsg::Destroy(DestroyReason::None),
    }
    .encode();
    cell[4] = 42;
    r.handle_cell(Timestamp(0), from, &cell);
    net.run();
    assert_eq!(net.closed_reason(h), Some(DestroyReason::Protocol));
    assert_eq!(net.total_circuits(), 0);
}

#[test]
fn random_cells_into_relays_and_client_never_panic() {
    use rand::RngCore;
    let mut net = Net::new(3, fast());
    let h = net.build(&[1, 2, 3]);
    let mut rng = StdRng::seed_from_u64(5);
    for i in 0..20_000u32 {
        let mut b = vec![0u8; CELL_LEN];
        rng.fill_bytes(&mut b);
        // Aim at live circuit ids and valid commands half of the time.
        if i % 2 == 0 {
            b[..4].copy_from_slice(&h.id.get().to_be_bytes());
            b[4] = (i % 6) as u8;
        }
        let target = node((i % 3) as u8 + 1);
        let now = net.now;
        if let Some(r) = net.relays.get_mut(&target) {
            r.handle_cell(now, Peer::Client(CLIENT), &b);
        }
        net.client.handle_cell(node(1), &b);
    }
    net.run();
}
