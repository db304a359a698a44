//! One relay (`Relay`, node A) driven through real circuits: the harness plays the clients
//! (and a node C building through A), and node B, a registered next hop. Every input starts
//! from a circuit built with the real ntor handshake against A's onion key, so the fuzzed
//! operations reach relay-cell handling: fuzzed relay messages sealed under the circuit's real
//! layer keys, well-formed BEGIN / DATA / END / DROP / EXTEND, B's answers and backward cells,
//! raw garbage cells from every peer (on live circuit ids too), DESTROY, closed links, time.
//!
//! Shared by the `relay_state` fuzz target and `tests/fuzz_regressions.rs` (`#[path]` module).
//!
//! Checked, besides "never panics":
//! * every cell the relay writes decodes; a client or node before A only ever gets CREATED,
//!   RELAY or DESTROY;
//! * on a circuit nobody tampered with (no raw cell on its ids, no message sent while an
//!   extend is in flight, B answered honestly):
//!   - everything A sends back opens under the client's layer keys and is a valid message;
//!   - the EXTEND the client sent reaches B unchanged and B's reply completes the client's
//!     handshake;
//!   - every cell the client wraps for B arrives at B, in order, and opens to what was sent;
//!   - every cell B seals arrives at the client, in order, and opens to what B sealed, and
//!     every garbage cell B sends fails the client's check;
//!   - A never closes it for an integrity failure.

use std::collections::VecDeque;
use std::sync::OnceLock;

use psp_net::cell::{
    Cell, ChanMsg, CircId, DestroyReason, EndReason, RelayBody, RelayMsg, StreamId, BODY_LEN,
    CELL_LEN,
};
use psp_net::circuit::{
    CircuitError, Config, NodeRecord, Peer, Relay, RelayEvent, Services, StaticDirectory, Timestamp,
};
use psp_net::crypto::{
    client_unwrap_backward, client_wrap_forward, forward_capacity, ntor_client_finish,
    ntor_client_start, ntor_server, HopCrypto, NodeId, NtorClientMsg, NtorClientState,
    NtorServerMsg, OnionPublic, OnionSecret, PaddingStream, LAYER_PLAINTEXT_LEN,
};
use rand::rngs::StdRng;
use rand::SeedableRng;

/// The relay under test.
const A: NodeId = NodeId([1; 32]);
/// A registered node the relay may extend to, played by the harness.
const B: NodeId = NodeId([2; 32]);
/// An unregistered node: builds circuits through A, cannot be extended to.
const C: NodeId = NodeId([3; 32]);
const PREVS: [Peer; 3] = [Peer::Client(1), Peer::Client(2), Peer::Node(C)];
const MAX_CIRCUITS: usize = 8;
const MAX_OPS: usize = 256;

fn a_secret() -> OnionSecret {
    OnionSecret::from_bytes([0xa1; 32])
}

fn b_secret() -> &'static OnionSecret {
    static B_SECRET: OnceLock<OnionSecret> = OnceLock::new();
    B_SECRET.get_or_init(|| OnionSecret::from_bytes([0xb2; 32]))
}

/// A's onion key, computed once (a scalar multiplication per input is noticeable).
fn a_public() -> OnionPublic {
    static A_PUBLIC: OnceLock<OnionPublic> = OnceLock::new();
    *A_PUBLIC.get_or_init(|| a_secret().public())
}

/// Fuzzer bytes; zeros once they run out.
struct Input<'a>(&'a [u8]);

impl<'a> Input<'a> {
    fn u8(&mut self) -> u8 {
        match self.0.split_first() {
            Some((&b, rest)) => {
                self.0 = rest;
                b
            }
            None => 0,
        }
    }

    fn u16(&mut self) -> u16 {
        u16::from_be_bytes([self.u8(), self.u8()])
    }

    fn u32(&mut self) -> u32 {
        u32::from_be_bytes([self.u8(), self.u8(), self.u8(), self.u8()])
    }

    fn take(&mut self, n: usize) -> &'a [u8] {
        let (head, rest) = self.0.split_at(n.min(self.0.len()));
        self.0 = rest;
        head
    }

    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// One circuit through A, as its client (and B, once extended) sees it.
struct Circ {
    prev: Peer,
    id: CircId,
    /// The client's layers (A, then B).
    hops: Vec<HopCrypto>,
    /// The handshake in flight (CREATE to A, or EXTEND to B).
    pending: Option<NtorClientState>,
    /// The EXTEND message the client sent.
    extend: Option<NtorClientMsg>,
    /// A's circuit id on the link to B.
    next_id: Option<CircId>,
    /// The CREATE B received and has not answered.
    b_create: Option<NtorClientMsg>,
    /// B's layer, once it answered.
    b_hop: Option<HopCrypto>,
    /// Messages the client wrapped for B, in order.
    forward: VecDeque<Vec<u8>>,
    /// What B sent back, in order: the sealed plaintext, or `None` for garbage.
    backward: VecDeque<Option<Vec<u8>>>,
    /// Nobody tampered with it: the checks above apply.
    clean: bool,
}

/// How far an input got: the regression tests check that the stored inputs reach relay-cell
/// handling, not just CREATE.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Reached {
    /// Relay messages from A opened by the client (A was the last hop).
    pub from_a: usize,
    /// Cells the client wrapped for B that B opened.
    pub at_b: usize,
    /// Cells B sealed that the client opened (through A's backward mask).
    pub from_b: usize,
    /// Most hops a circuit had.
    pub max_hops: usize,
}

struct Harness {
    reached: Reached,
    relay: Relay,
    now: Timestamp,
    circs: Vec<Circ>,
    padding: PaddingStream,
    /// Source of ephemeral keys and fresh circuit ids.
    counter: u32,
    /// The circuit the current operation is about (a CREATE to B belongs to it).
    current: Option<(Peer, CircId)>,
}

impl Harness {
    fn new() -> Self {
        let mut dir = StaticDirectory::default();
        dir.0.insert(
            B,
            NodeRecord {
                onion_key: b_secret().public(),
                address: "/memory/2".into(),
            },
        );
        let relay = Relay::new(
            A,
            a_secret(),
            Config::default(),
            Box::new(dir),
            Box::new(Services::default()),
            Box::new(StdRng::seed_from_u64(0)),
        );
        Self {
            reached: Reached::default(),
            relay,
            now: Timestamp(0),
            circs: Vec::new(),
            padding: PaddingStream::new([9; 32]),
            counter: 0,
            current: None,
        }
    }

    fn fresh(&mut self) -> [u8; 32] {
        self.counter = self.counter.wrapping_add(1);
        let mut x = [0u8; 32];
        x[..4].copy_from_slice(&self.counter.to_be_bytes());
        x[31] = 0x5a;
        x
    }

    fn find(&self, peer: Peer, id: CircId) -> Option<usize> {
        self.circs.iter().position(|c| {
            (c.prev == peer && c.id == id) || (peer == Peer::Node(B) && c.next_id == Some(id))
        })
    }

    fn send(&mut self, from: Peer, cell: &Cell) {
        let bytes = cell.encode();
        self.relay.handle_cell(self.now, from, &bytes);
        self.drain();
    }

    /// Moves everything A has to send at `now`, checking it on arrival.
    fn drain(&mut self) {
        // Events first: a circuit closed for integrity is still tracked until its DESTROY.
        self.events();
        while let Some(t) = self.relay.poll_transmit(self.now) {
            assert_eq!(t.cell.len(), CELL_LEN);
            let cell = Cell::decode(&t.cell[..]).expect("the relay writes cells that decode");
            if t.to == Peer::Node(B) {
                self.at_b(cell);
            } else {
                self.at_prev(t.to, cell);
            }
        }
    }

    fn events(&mut self) {
        while let Some(e) = self.relay.poll_event() {
            if let RelayEvent::CircuitClosed {
                peer,
                circ_id,
                cause: Some(CircuitError::Integrity(e)),
                ..
            } = &e
            {
                if let Some(i) = self
                    .circs
                    .iter()
                    .position(|c| c.prev == *peer && c.id == *circ_id)
                {
                    assert!(
                        !self.circs[i].clean,
                        "clean circuit closed for integrity: {e}"
                    );
                }
            }
        }
    }

    fn at_b(&mut self, cell: Cell) {
        match cell.msg {
            ChanMsg::Create(m) => {
                let Some(i) = self.current.and_then(|(p, id)| self.find(p, id)) else {
                    return;
                };
                let c = &mut self.circs[i];
                if c.clean {
                    assert_eq!(c.extend, Some(m), "EXTEND reaches B unchanged");
                }
                c.next_id = Some(cell.circ_id);
                c.b_create = Some(m);
            }
            ChanMsg::Relay(mut body) | ChanMsg::RelayEarly(mut body) => {
                let Some(i) = self.find(Peer::Node(B), cell.circ_id) else {
                    return;
                };
                let c = &mut self.circs[i];
                let opened = c.b_hop.as_mut().map(|h| h.relay_open_forward(&mut body.0));
                if !c.clean {
                    return;
                }
                let sent = c
                    .forward
                    .pop_front()
                    .expect("B gets only what the client sent");
                let opened = opened.expect("B answered before cells came");
                assert_eq!(opened, Ok(()), "a cell wrapped for B opens at B");
                assert_eq!(&body.0[..sent.len()], &sent[..], "B reads what was sent");
                self.reached.at_b += 1;
            }
            ChanMsg::Destroy(_) => {
                if let Some(i) = self.find(Peer::Node(B), cell.circ_id) {
                    let c = &mut self.circs[i];
                    c.next_id = None;
                    c.b_create = None;
                    c.b_hop = None;
                }
            }
            ChanMsg::Created(_) => {}
            _ => {}
        }
    }

    fn at_prev(&mut self, to: Peer, cell: Cell) {
        let i = self
            .circs
            .iter()
            .position(|c| c.prev == to && c.id == cell.circ_id);
        match cell.msg {
            ChanMsg::Created(reply) => {
                let Some(i) = i else { return };
                let c = &mut self.circs[i];
                let Some(state) = c.pending.take().filter(|_| c.hops.is_empty()) else {
                    c.clean = false;
                    return;
                };
                let keys = ntor_client_finish(state, &reply);
                if c.clean {
                    assert!(keys.is_ok(), "A's CREATED completes the handshake");
                }
                match keys {
                    Ok(k) => {
                        c.hops.push(HopCrypto::new(k));
                        self.reached.max_hops = self.reached.max_hops.max(1);
                    }
                    Err(_) => c.clean = false,
                }
            }
            ChanMsg::Relay(mut body) => {
                let Some(i) = i else { return };
                let c = &mut self.circs[i];
                if !c.clean {
                    return;
                }
                assert!(!c.hops.is_empty(), "RELAY before CREATED");
                if c.hops.len() >= 2 {
                    let expected = c.backward.pop_front().expect("A originates nothing past B");
                    let plain =
                        client_unwrap_backward(&mut c.hops, &mut body.0).map(<[u8]>::to_vec);
                    match expected {
                        Some(sealed) => {
                            assert_eq!(plain, Ok(sealed), "B's cell reaches the client");
                            self.reached.from_b += 1;
                        }
                        None => assert!(plain.is_err(), "garbage from B must not open"),
                    }
                    return;
                }
                let plain = client_unwrap_backward(&mut c.hops, &mut body.0)
                    .expect("A's cells open under the client's keys");
                let msg = RelayMsg::decode(plain).expect("A sends valid messages");
                self.reached.from_a += 1;
                if let RelayMsg::Extended(reply) = msg {
                    let state = c.pending.take().expect("EXTENDED answers an EXTEND");
                    let keys = ntor_client_finish(state, &reply).expect("B's reply completes");
                    c.hops.push(HopCrypto::new(keys));
                    self.reached.max_hops = self.reached.max_hops.max(2);
                } else {
                    assert!(
                        matches!(
                            msg,
                            RelayMsg::Connected { .. }
                                | RelayMsg::Data { .. }
                                | RelayMsg::End { .. }
                                | RelayMsg::Sendme
                        ),
                        "A sends {msg:?}"
                    );
                }
            }
            ChanMsg::Destroy(_) => {
                if let Some(i) = i {
                    self.circs.remove(i);
                }
            }
            other => panic!("A sent {other:?} towards the client"),
        }
    }

    /// Builds a circuit from `prev` with the real handshake.
    fn build(&mut self, prev: Peer, id: CircId) {
        if self.circs.len() >= MAX_CIRCUITS {
            return;
        }
        let clash = self.find(prev, id);
        if let Some(i) = clash {
            // A second CREATE on a live id: A closes the first; neither is predictable.
            self.circs[i].clean = false;
        }
        let x = self.fresh();
        let (state, msg) = ntor_client_start(A, a_public(), x);
        self.circs.push(Circ {
            prev,
            id,
            hops: Vec::new(),
            pending: Some(state),
            extend: None,
            next_id: None,
            b_create: None,
            b_hop: None,
            forward: VecDeque::new(),
            backward: VecDeque::new(),
            clean: clash.is_none(),
        });
        self.current = Some((prev, id));
        self.send(
            prev,
            &Cell {
                circ_id: id,
                msg: ChanMsg::Create(msg),
            },
        );
    }

    /// The client wraps `plain` for its last hop and sends it.
    fn client_send(&mut self, i: usize, plain: &[u8], early: bool) {
        let c = &mut self.circs[i];
        if c.pending.is_some() || (c.b_hop.is_some() && c.hops.len() < 2) {
            // Sent while an extend is in flight: A closes it or B cannot open it.
            c.clean = false;
        }
        if c.hops.len() < 2 && matches!(RelayMsg::decode(plain), Ok(RelayMsg::Extend(_))) {
            // An EXTEND the harness did not make: its handshake is not tracked.
            c.clean = false;
        }
        self.wrap_and_send(i, plain, early);
    }

    fn wrap_and_send(&mut self, i: usize, plain: &[u8], early: bool) {
        let c = &mut self.circs[i];
        if c.hops.is_empty() {
            return;
        }
        let plain = &plain[..plain.len().min(forward_capacity(c.hops.len()))];
        let Ok(body) = client_wrap_forward(&mut c.hops, plain, &mut self.padding) else {
            return;
        };
        if c.hops.len() >= 2 {
            c.forward.push_back(plain.to_vec());
        }
        let body = RelayBody(Box::new(body));
        let msg = if early {
            ChanMsg::RelayEarly(body)
        } else {
            ChanMsg::Relay(body)
        };
        let (prev, id) = (c.prev, c.id);
        self.current = Some((prev, id));
        self.send(prev, &Cell { circ_id: id, msg });
    }

    fn client_msg(&mut self, i: usize, msg: &RelayMsg, early: bool) {
        let mut buf = [0u8; LAYER_PLAINTEXT_LEN];
        if let Ok(n) = msg.encode_into(&mut buf) {
            self.client_send(i, &buf[..n], early);
        }
    }

    fn extend(&mut self, i: usize, target: u8, early: bool) {
        let (node, key) = match target % 4 {
            0 => (B, b_secret().public()),
            1 => (B, OnionPublic([7; 32])),
            2 => (A, a_public()),
            _ => (C, OnionPublic([8; 32])),
        };
        let x = self.fresh();
        let (state, msg) = ntor_client_start(node, key, x);
        let mut buf = [0u8; LAYER_PLAINTEXT_LEN];
        let Ok(n) = RelayMsg::Extend(msg).encode_into(&mut buf) else {
            return;
        };
        let c = &mut self.circs[i];
        if c.hops.is_empty() {
            return;
        }
        if c.hops.len() < 2 {
            if c.pending.is_some() || c.b_hop.is_some() {
                c.clean = false;
            }
            c.pending = Some(state);
            c.extend = Some(msg);
        }
        // Past B it is only a message for B (which does not extend here).
        self.wrap_and_send(i, &buf[..n], early);
    }

    /// B answers the CREATE of circuit `i`.
    fn b_answer(&mut self, i: usize, mode: u8, input: &mut Input<'_>) {
        let Some(m) = self.circs[i].b_create.take() else {
            return;
        };
        let Some(next) = self.circs[i].next_id else {
            return;
        };
        let y = self.fresh();
        let msg = match mode % 3 {
            0 => match ntor_server(&B, b_secret(), &m, y) {
                Ok((reply, keys)) => {
                    self.circs[i].b_hop = Some(HopCrypto::new(keys));
                    ChanMsg::Created(reply)
                }
                Err(e) => {
                    assert!(!self.circs[i].clean, "B refuses the client's EXTEND: {e}");
                    return;
                }
            },
            1 => {
                self.circs[i].clean = false;
                let mut server_pk = [0u8; 32];
                let mut auth = [0u8; 32];
                server_pk.copy_from_slice(&pad::<32>(input.take(32)));
                auth.copy_from_slice(&pad::<32>(input.take(32)));
                ChanMsg::Created(NtorServerMsg { server_pk, auth })
            }
            _ => ChanMsg::Destroy(DestroyReason::from_u8(input.u8())),
        };
        self.current = Some((self.circs[i].prev, self.circs[i].id));
        self.send(Peer::Node(B), &Cell { circ_id: next, msg });
    }

    /// B sends a cell back on circuit `i`: sealed, or garbage.
    fn b_backward(&mut self, i: usize, garbage: bool, input: &mut Input<'_>) {
        let c = &mut self.circs[i];
        let Some(next) = c.next_id else { return };
        let mut body = pad::<BODY_LEN>(input.take(if garbage {
            BODY_LEN
        } else {
            LAYER_PLAINTEXT_LEN
        }));
        match c.b_hop.as_mut() {
            Some(h) if garbage => {
                // Keep B's counter in step with the client's, which will try to open it.
                let mut scratch = [0u8; BODY_LEN];
                let _ = h.relay_seal_backward(&mut scratch);
                c.backward.push_back(None);
            }
            Some(h) => {
                body[LAYER_PLAINTEXT_LEN..].fill(0);
                let plain = body[..LAYER_PLAINTEXT_LEN].to_vec();
                if h.relay_seal_backward(&mut body).is_err() {
                    return;
                }
                c.backward.push_back(Some(plain));
            }
            None => c.clean = false,
        }
        let msg = ChanMsg::Relay(RelayBody(Box::new(body)));
        self.current = Some((c.prev, c.id));
        self.send(Peer::Node(B), &Cell { circ_id: next, msg });
    }

    /// Lets time pass until nothing is queued (at most `max_ms`), delivering as it goes.
    fn settle(&mut self, max_ms: u64) {
        let until = self.now.0.saturating_add(max_ms);
        for _ in 0..10_000 {
            self.drain();
            match self.relay.poll_timeout() {
                Some(t) if t.0 <= until => self.now = Timestamp(t.0.max(self.now.0 + 1)),
                _ => return,
            }
        }
    }
}

fn pad<const N: usize>(bytes: &[u8]) -> [u8; N] {
    let mut out = [0u8; N];
    let n = bytes.len().min(N);
    out[..n].copy_from_slice(&bytes[..n]);
    out
}

/// Runs one input; returns how far it got.
pub fn check(data: &[u8]) -> Reached {
    let mut h = Harness::new();
    let mut input = Input(data);
    // Start from a built circuit.
    h.build(Peer::Client(1), CircId::new(1).expect("nonzero"));
    assert_eq!(h.circs.len(), 1);
    assert_eq!(h.circs[0].hops.len(), 1, "the first circuit is built");
    for _ in 0..MAX_OPS {
        if input.is_empty() {
            break;
        }
        let op = input.u8();
        let early = op & 0x80 != 0;
        let pick = usize::from(input.u8());
        let target = if h.circs.is_empty() {
            None
        } else {
            Some(pick % h.circs.len())
        };
        match (op & 0x7f) % 10 {
            0 => {
                let Some(i) = target else { continue };
                let len = usize::from(input.u16()) % (LAYER_PLAINTEXT_LEN + 1);
                let plain = input.take(len).to_vec();
                h.client_send(i, &plain, early);
            }
            1 => {
                let Some(i) = target else { continue };
                let stream = StreamId::new(input.u16().max(1)).expect("nonzero");
                let msg = match input.u8() % 7 {
                    0 => RelayMsg::Begin {
                        stream,
                        service: "echo".into(),
                    },
                    1 => {
                        let n = usize::from(input.u8() % 70);
                        let name = String::from_utf8_lossy(input.take(n)).into_owned();
                        RelayMsg::Begin {
                            stream,
                            service: name,
                        }
                    }
                    2 => {
                        let n = usize::from(input.u16()) % 500;
                        RelayMsg::Data {
                            stream,
                            data: input.take(n).to_vec(),
                        }
                    }
                    3 => RelayMsg::End {
                        stream,
                        reason: EndReason::from_u8(input.u8()),
                    },
                    4 => RelayMsg::Drop,
                    5 => RelayMsg::Sendme,
                    _ => {
                        h.extend(i, input.u8(), !early);
                        continue;
                    }
                };
                h.client_msg(i, &msg, early);
            }
            2 => {
                let Some(i) = target else { continue };
                let mode = input.u8();
                h.b_answer(i, mode, &mut input);
            }
            3 => {
                let Some(i) = target else { continue };
                h.b_backward(i, early, &mut input);
            }
            4 => {
                // A raw cell from any peer, on a live circuit id or a fuzzed one.
                let from = match pick % 4 {
                    3 => Peer::Node(B),
                    p => PREVS[p],
                };
                let mut cell = pad::<CELL_LEN>(input.take(CELL_LEN));
                if early {
                    if let Some(c) = target.and_then(|i| h.circs.get(i)) {
                        let id = if from == Peer::Node(B) {
                            c.next_id.unwrap_or(c.id)
                        } else {
                            c.id
                        };
                        cell[..4].copy_from_slice(&id.get().to_be_bytes());
                    }
                }
                if let Some(id) =
                    CircId::new(u32::from_be_bytes([cell[0], cell[1], cell[2], cell[3]]))
                {
                    if let Some(i) = h.find(from, id) {
                        h.circs[i].clean = false;
                    }
                }
                h.current = None;
                h.relay.handle_cell(h.now, from, &cell);
                h.drain();
            }
            5 => {
                let Some(i) = target else { continue };
                let c = h.circs.remove(i);
                let reason = DestroyReason::from_u8(input.u8());
                h.current = None;
                h.send(
                    c.prev,
                    &Cell {
                        circ_id: c.id,
                        msg: ChanMsg::Destroy(reason),
                    },
                );
            }
            6 => {
                let peer = match pick % 4 {
                    3 => Peer::Node(B),
                    p => PREVS[p],
                };
                h.circs.retain(|c| c.prev != peer);
                h.relay.handle_link_closed(h.now, peer);
                h.drain();
            }
            7 => {
                let dt = u64::from(input.u16()) * if early { 100 } else { 1 };
                h.now = Timestamp(h.now.0 + dt);
                h.drain();
            }
            8 => {
                let prev = PREVS[pick % 3];
                let id = if early {
                    CircId::new(input.u32()).unwrap_or(CircId::new(1).expect("nonzero"))
                } else {
                    h.counter = h.counter.wrapping_add(1);
                    CircId::new(0x1000 + (h.counter & 0xfff)).expect("nonzero")
                };
                h.build(prev, id);
            }
            _ => {
                // A whole extend to B with an honest answer: the way to two hops.
                let Some(i) = target else { continue };
                h.extend(i, 0, true);
                if i < h.circs.len() {
                    h.b_answer(i, 0, &mut input);
                }
            }
        }
    }
    // Deliver everything still queued, so the in-order checks see it.
    h.settle(3_600_000);
    h.reached
}
