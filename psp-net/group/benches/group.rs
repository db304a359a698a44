//! What membership costs in groups of 4, 16 and 64 members, all in one process: sans-IO
//! `Group`s whose packets are handed to their recipients in memory (no transport), with every
//! signature, seal and check done as on a real network.
//!
//! - **admit**: the newcomer's JOIN to the contact, the proposal to every member, every member
//!   votes accept (each ballot to every member), each member closes the tally and adds the
//!   newcomer, the contact sends the WELCOME and the newcomer opens it. Timed until the
//!   newcomer and every member hold the new member table.
//! - **rollout**: a member has been silent for the timeout (the others heartbeat); the clock
//!   jumps past it, every member notes the timeout, the leader seals a new key to each
//!   remaining member, and every one of them checks the rollout and opens its copy. Timed until
//!   all hold the new key.
//!
//! Before the measurements it prints the bytes each sends: the sum over every packet of its
//! length times its recipients (the JOIN, sent by the newcomer's host, included).
//!
//! `cargo bench -p psp-group --bench group` (a short configuration: about 35 s on two cores
//! once built; figures in the README). Each iteration starts from the same state, restored
//! from snapshots outside the timing.

use std::collections::{BTreeMap, VecDeque};
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BatchSize, BenchmarkId, Criterion, SamplingMode};
use psp_group::{AgreementSecret, Group, GroupId, Joining, MemberId, Rules, Sr25519Keypair};
use rand_core::OsRng;

const T0: u64 = 1_700_000_000;
const GROUP: GroupId = GroupId(0x5eed_0000_0000_0002);
const SIZES: [usize; 3] = [4, 16, 64];

fn keys(i: usize) -> Sr25519Keypair {
    let mut seed = [0x5a; 32];
    seed[..8].copy_from_slice(&(i as u64).to_be_bytes());
    Sr25519Keypair::from_seed(&seed)
}

fn id(i: usize) -> MemberId {
    MemberId(keys(i).public())
}

/// Members in memory: every packet goes to its recipients at once, and what it causes, until
/// nothing is left to send.
struct Sim {
    now: u64,
    members: BTreeMap<MemberId, Group>,
    joining: Option<(MemberId, Joining)>,
    /// Sum over the packets sent of bytes × recipients.
    sent: u64,
}

impl Sim {
    fn new(creator: &Sr25519Keypair) -> Self {
        let group = Group::create(
            GROUP,
            Rules::default(),
            creator.clone(),
            AgreementSecret::random(&mut OsRng),
            T0,
            &mut OsRng,
        )
        .expect("valid rules");
        Self {
            now: T0,
            members: BTreeMap::from([(group.me(), group)]),
            joining: None,
            sent: 0,
        }
    }

    fn snapshot(&self) -> Snapshot {
        Snapshot {
            now: self.now,
            members: self
                .members
                .values()
                .map(|g| (g.me(), g.snapshot()))
                .collect(),
        }
    }

    /// Queues what `who` has to send; drops its events (a host would hand them on).
    fn drain(&mut self, who: &MemberId, queue: &mut VecDeque<(MemberId, Vec<u8>)>) {
        let Some(g) = self.members.get_mut(who) else {
            return;
        };
        while let Some(t) = g.poll_transmit() {
            self.sent += (t.bytes.len() * t.to.len()) as u64;
            for to in t.to {
                queue.push_back((to, t.bytes.clone()));
            }
        }
        while g.poll_event().is_some() {}
    }

    /// Delivers `queue` and everything it causes. Packets to non-members (a dead member) are
    /// lost.
    fn deliver(&mut self, mut queue: VecDeque<(MemberId, Vec<u8>)>) {
        while let Some((to, bytes)) = queue.pop_front() {
            if let Some(g) = self.members.get_mut(&to) {
                g.handle_input(self.now, &bytes, &mut OsRng)
                    .expect("every packet is accepted");
                self.drain(&to, &mut queue);
            } else if self.joining.as_ref().is_some_and(|(j, _)| *j == to) {
                if let Some((_, joining)) = self.joining.take() {
                    let g = joining
                        .handle_welcome(self.now, &bytes)
                        .expect("the welcome opens");
                    self.members.insert(to, g);
                }
            }
        }
    }

    /// Runs what `who` queued.
    fn run(&mut self, who: MemberId) {
        let mut queue = VecDeque::new();
        self.drain(&who, &mut queue);
        self.deliver(queue);
    }

    /// Node `newcomer` joins through `contact`; every member votes accept.
    fn admit(&mut self, newcomer: usize, contact: MemberId) {
        let keys = keys(newcomer);
        let me = MemberId(keys.public());
        let (joining, join) = Joining::new(
            GROUP,
            contact,
            keys,
            AgreementSecret::random(&mut OsRng),
            self.now,
        );
        self.joining = Some((me, joining));
        self.sent += join.len() as u64;
        self.deliver(VecDeque::from([(contact, join)]));
        let proposal = self.members[&contact]
            .open_proposals()
            .next()
            .expect("the JOIN opened a proposal");
        let voters: Vec<MemberId> = self.members.keys().copied().collect();
        for v in voters {
            if let Some(g) = self.members.get_mut(&v) {
                g.vote(self.now, proposal, true, &mut OsRng).expect("vote");
            }
            self.run(v);
        }
        let n = self.members.len();
        assert!(
            self.members.values().all(|g| g.members().len() == n),
            "the newcomer and every member hold the new table"
        );
    }

    /// Every member's timers at the current time, each followed by what it sends.
    fn tick(&mut self) {
        let ids: Vec<MemberId> = self.members.keys().copied().collect();
        for m in ids {
            if let Some(g) = self.members.get_mut(&m) {
                g.handle_timeout(self.now, &mut OsRng);
            }
            self.run(m);
        }
    }
}

/// Every member's snapshot, to start each iteration from the same state.
struct Snapshot {
    now: u64,
    members: Vec<(MemberId, Vec<u8>)>,
}

impl Snapshot {
    fn restore(&self, keys: &BTreeMap<MemberId, Sr25519Keypair>) -> Sim {
        Sim {
            now: self.now,
            members: self
                .members
                .iter()
                .map(|(m, bytes)| {
                    let g = Group::restore(bytes, keys[m].clone()).expect("restores");
                    (*m, g)
                })
                .collect(),
            joining: None,
            sent: 0,
        }
    }
}

/// A group of `n` members in two states: just built (for an admission), and with one member
/// silent for exactly the timeout while the others heartbeat (for a rollout).
struct Setup {
    n: usize,
    keys: BTreeMap<MemberId, Sr25519Keypair>,
    built: Snapshot,
    silent: Snapshot,
}

impl Setup {
    fn new(n: usize) -> Self {
        let mut sim = Sim::new(&keys(0));
        for i in 1..n {
            sim.admit(i, id(0));
        }
        let built = sim.snapshot();
        // The last member dies; at the timeout the others heartbeat (it is not yet past).
        sim.members.remove(&id(n - 1));
        sim.now = T0 + u64::from(Rules::default().timeout_secs);
        sim.tick();
        assert!(sim
            .members
            .values()
            .all(|g| g.pending_removals().is_empty()));
        let silent = sim.snapshot();
        Self {
            n,
            keys: (0..=n).map(|i| (id(i), keys(i))).collect(),
            built,
            silent,
        }
    }

    /// The timed part of an admission: node `n` joins through node 0.
    fn admit(&self, mut sim: Sim) -> Sim {
        sim.admit(self.n, id(0));
        sim
    }

    /// The timed part of a rollout: the clock passes the timeout of the silent member.
    fn rollout(&self, mut sim: Sim) -> Sim {
        sim.now += 1;
        sim.tick();
        let first = sim.members.values().next().map(|g| g.key_fingerprint());
        assert!(
            sim.members.values().all(|g| g.epoch().0 == 1
                && Some(g.key_fingerprint()) == first
                && g.members().len() == self.n - 1),
            "every remaining member holds the new key"
        );
        sim
    }
}

fn membership(c: &mut Criterion) {
    let setups: Vec<Setup> = SIZES.into_iter().map(Setup::new).collect();
    println!("bytes sent (sum over packets of bytes × recipients):");
    println!("{:>8} {:>12} {:>12}", "members", "admission", "rollout");
    for s in &setups {
        let admission = s.admit(s.built.restore(&s.keys)).sent;
        let rollout = s.rollout(s.silent.restore(&s.keys)).sent;
        println!("{:>8} {admission:>12} {rollout:>12}", s.n);
    }

    let mut g = c.benchmark_group("group");
    g.sampling_mode(SamplingMode::Flat);
    for s in &setups {
        g.bench_with_input(BenchmarkId::new("admit", s.n), s, |b, s| {
            b.iter_batched(
                || s.built.restore(&s.keys),
                |sim| s.admit(sim),
                BatchSize::PerIteration,
            )
        });
        g.bench_with_input(BenchmarkId::new("rollout", s.n), s, |b, s| {
            b.iter_batched(
                || s.silent.restore(&s.keys),
                |sim| s.rollout(sim),
                BatchSize::PerIteration,
            )
        });
    }
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3));
    targets = membership
}
criterion_main!(benches);
