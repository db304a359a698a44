//! Hosts of several members on an in-memory network: joins, votes, messages, re-delivery to
//! a member that was offline, a restart from the sealed state, refusals.

use std::collections::{BTreeMap, BTreeSet};

use super::host::{Changed, Host};
use super::protocol::{GroupReply, GroupRequest, GroupView};
use super::store::Store;
use crate::messaging::events::AgentEvent;

struct Net {
    now: u64,
    hosts: BTreeMap<[u8; 32], Host>,
    offline: BTreeSet<[u8; 32]>,
    notices: Vec<(usize, String, String)>,
    names: BTreeMap<[u8; 32], usize>,
    saved: BTreeMap<[u8; 32], Vec<Changed>>,
}

fn seed(n: u8) -> [u8; 32] {
    [n; 32]
}

impl Net {
    fn new(members: u8) -> (Self, Vec<[u8; 32]>) {
        let mut net = Self {
            now: 1_000,
            hosts: BTreeMap::new(),
            offline: BTreeSet::new(),
            notices: Vec::new(),
            names: BTreeMap::new(),
            saved: BTreeMap::new(),
        };
        let keys = (1..=members)
            .map(|n| {
                let host = Host::new(seed(n));
                let key = psp_group::Sr25519Keypair::from_seed(&seed(n)).public();
                net.names.insert(key, usize::from(n));
                net.hosts.insert(key, host);
                key
            })
            .collect();
        (net, keys)
    }

    fn host(&mut self, key: [u8; 32]) -> &mut Host {
        self.hosts.get_mut(&key).expect("a host")
    }

    fn command(&mut self, key: [u8; 32], request: GroupRequest) -> GroupReply {
        let now = self.now;
        let reply = self.host(key).command(now, request).expect("command works");
        self.pump();
        reply
    }

    /// Delivers everything until nothing moves: to an online host at once; a send to an
    /// offline one fails.
    fn pump(&mut self) {
        for _ in 0..10_000 {
            let mut moved = false;
            let keys: Vec<[u8; 32]> = self.hosts.keys().copied().collect();
            for from in keys {
                let now = self.now;
                let host = self.host(from);
                let out = host.take_outgoing();
                for event in host.take_events() {
                    if let AgentEvent::GroupNotice { what, detail, .. } = event {
                        let name = self.names[&from];
                        self.notices.push((name, what, detail));
                    }
                }
                let changed = self.host(from).take_changed();
                self.saved.entry(from).or_default().extend(changed);
                for o in out {
                    moved = true;
                    let result = if self.offline.contains(&o.to) || !self.hosts.contains_key(&o.to)
                    {
                        Err("no presence record".to_owned())
                    } else {
                        let _ = self.host(o.to).input(now, from, &o.bytes);
                        Ok(())
                    };
                    self.host(from).delivered(now, o.id, result);
                }
            }
            if !moved {
                return;
            }
        }
        panic!("the network never settles");
    }

    fn advance(&mut self, secs: u64) {
        for _ in 0..secs {
            self.now += 1;
            let now = self.now;
            for host in self.hosts.values_mut() {
                if host.poll_timeout().is_some_and(|t| t <= now) {
                    host.handle_timeout(now);
                }
            }
            self.pump();
        }
    }

    fn members(&mut self, key: [u8; 32], group: &str) -> GroupView {
        match self.command(
            key,
            GroupRequest::Members {
                group: group.into(),
            },
        ) {
            GroupReply::Members(view) => view,
            other => panic!("{other:?}"),
        }
    }

    fn read(&mut self, key: [u8; 32], group: &str) -> Vec<(String, String)> {
        match self.command(
            key,
            GroupRequest::Read {
                group: group.into(),
                wait_secs: 0,
                max: None,
            },
        ) {
            GroupReply::Messages { messages, .. } => messages
                .into_iter()
                .map(|m| (m.sender, m.text.unwrap_or_default()))
                .collect(),
            other => panic!("{other:?}"),
        }
    }

    fn vote_all(&mut self, voters: &[[u8; 32]], group: &str, accept: bool) {
        for &v in voters {
            let GroupReply::Proposals { proposals } = self.command(
                v,
                GroupRequest::Proposals {
                    group: group.into(),
                },
            ) else {
                panic!("proposals")
            };
            for p in proposals {
                self.command(
                    v,
                    GroupRequest::Vote {
                        group: group.into(),
                        proposal: p.proposal,
                        accept,
                    },
                );
            }
        }
    }

    fn join(&mut self, newcomer: [u8; 32], group: &str, contact: [u8; 32]) {
        self.command(
            newcomer,
            GroupRequest::Join {
                group: group.into(),
                contact: crate::hex0x(&contact),
            },
        );
    }

    fn noticed(&self, who: usize, what: &str) -> bool {
        self.notices.iter().any(|(n, w, _)| *n == who && w == what)
    }
}

fn create(net: &mut Net, creator: [u8; 32], member_limit: Option<u16>) -> String {
    let reply = net.command(
        creator,
        GroupRequest::Create {
            member_limit,
            heartbeat_secs: Some(10),
            timeout_secs: Some(60),
            vote_secs: Some(30),
        },
    );
    let GroupReply::Created(view) = reply else {
        panic!("{reply:?}")
    };
    view.group
}

fn send(net: &mut Net, from: [u8; 32], group: &str, text: &str) {
    net.command(
        from,
        GroupRequest::Send {
            group: group.into(),
            to: None,
            text: Some(text.into()),
            hex: None,
        },
    );
}

#[test]
fn members_join_by_vote_talk_and_an_offline_member_gets_what_it_missed() {
    let (mut net, k) = Net::new(4);
    let (alice, bob, carol, dave) = (k[0], k[1], k[2], k[3]);
    let g = create(&mut net, alice, Some(3));

    // Bob joins through Alice: she is the only voter.
    net.join(bob, &g, alice);
    assert!(net.noticed(1, "proposal-opened"));
    net.vote_all(&[alice], &g, true);
    assert!(net.noticed(2, "joined"), "{:?}", net.notices);
    // Carol joins through Bob: Alice and Bob vote; either can show the signed tally.
    net.join(carol, &g, bob);
    let GroupReply::Proposals { proposals } =
        net.command(alice, GroupRequest::Proposals { group: g.clone() })
    else {
        panic!("proposals")
    };
    net.vote_all(&[alice, bob], &g, true);
    assert!(net.noticed(3, "joined"), "{:?}", net.notices);
    let GroupReply::Tally(tally) = net.command(
        bob,
        GroupRequest::Tally {
            group: g.clone(),
            proposal: proposals[0].proposal,
        },
    ) else {
        panic!("tally")
    };
    assert!(tally.verified && tally.outcome == "accepted", "{tally:?}");
    assert_eq!((tally.accepts, tally.ballots.len()), (2, 2));
    assert_eq!(tally.proposal.subject, crate::hex0x(&carol));
    let fingerprints: BTreeSet<String> = [alice, bob, carol]
        .iter()
        .map(|&m| net.members(m, &g).key_fingerprint)
        .collect();
    assert_eq!(fingerprints.len(), 1, "one group key");
    assert_eq!(net.members(carol, &g).members.len(), 3);

    // Every member reads every other's message, byte-exact.
    send(&mut net, alice, &g, "from alice");
    send(&mut net, carol, &g, "from carol");
    assert_eq!(
        net.read(bob, &g),
        [
            (crate::hex0x(&alice), "from alice".to_owned()),
            (crate::hex0x(&carol), "from carol".to_owned())
        ]
    );
    assert_eq!(net.read(carol, &g).len(), 1);

    // The group is full: Dave's JOIN is refused back to him.
    net.join(dave, &g, carol);
    assert!(net.noticed(4, "join-refused"), "{:?}", net.notices);

    // Carol goes offline for 20 s (under the 60 s timeout): what is sent meanwhile waits in
    // the senders' lanes and reaches her, in order, when she is back.
    net.offline.insert(carol);
    send(&mut net, alice, &g, "while you were away 1");
    send(&mut net, bob, &g, "while you were away 2");
    assert!(net.noticed(1, "redelivery-pending"));
    assert!(net
        .members(alice, &g)
        .members
        .iter()
        .any(|m| m.undelivered > 0));
    net.advance(20);
    net.offline.remove(&carol);
    net.advance(70);
    let texts: Vec<String> = net.read(carol, &g).into_iter().map(|(_, t)| t).collect();
    assert_eq!(texts, ["while you were away 1", "while you were away 2"]);
    assert!(net
        .members(alice, &g)
        .members
        .iter()
        .all(|m| m.undelivered == 0));
    assert_eq!(net.members(alice, &g).members.len(), 3, "nobody timed out");

    // Carol is expelled by vote: the rollout that drops her reaches her, and her host lets
    // the group go.
    let reply = net.command(
        alice,
        GroupRequest::Expel {
            group: g.clone(),
            member: crate::hex0x(&carol),
        },
    );
    assert!(matches!(reply, GroupReply::ProposalOpened(ref p) if p.action == "expel"));
    net.vote_all(&[alice, bob], &g, true);
    assert!(net.noticed(3, "removed"), "{:?}", net.notices);
    assert_eq!(net.members(bob, &g).members.len(), 2);
    assert!(matches!(
        net.command(carol, GroupRequest::List),
        GroupReply::List { groups, .. } if groups.is_empty()
    ));
}

#[test]
fn a_refused_vote_is_told_to_the_newcomer_and_a_forwarded_join_is_refused() {
    let (mut net, k) = Net::new(3);
    let (alice, bob, carol) = (k[0], k[1], k[2]);
    let g = create(&mut net, alice, None);
    net.join(bob, &g, alice);
    net.vote_all(&[alice], &g, false);
    assert!(net.noticed(2, "join-refused"), "{:?}", net.notices);
    assert!(matches!(
        net.command(bob, GroupRequest::List),
        GroupReply::List { groups, joining } if groups.is_empty() && joining.is_empty()
    ));

    // Carol relays Bob's JOIN as her own packet: refused (the JOIN's signer is not the peer).
    let now = net.now;
    net.host(bob)
        .command(
            now,
            GroupRequest::Join {
                group: g.clone(),
                contact: crate::hex0x(&alice),
            },
        )
        .expect("join");
    let join = net.host(bob).take_outgoing().remove(0);
    let refused = net
        .host(alice)
        .input(now, carol, &join.bytes)
        .expect_err("refused");
    assert!(
        refused.to_string().contains("comes from the newcomer"),
        "{refused}"
    );
    assert_eq!(net.members(alice, &g).members.len(), 1);
    // Malformed envelopes and packets for unknown groups are refused too.
    assert!(net.host(alice).input(now, bob, b"PSPG\x01").is_err());
    let stray = super::envelope::packet(psp_group::GroupId(1), b"x");
    assert!(net.host(alice).input(now, bob, &stray).is_err());
}

#[test]
fn a_member_restarted_from_its_sealed_state_keeps_its_membership_and_key() {
    let (mut net, k) = Net::new(2);
    let (alice, bob) = (k[0], k[1]);
    let g = create(&mut net, alice, None);
    net.join(bob, &g, alice);
    net.vote_all(&[alice], &g, true);
    send(&mut net, alice, &g, "before the restart");
    assert_eq!(net.read(bob, &g).len(), 1);

    // Bob's last saved state goes through a sealed store and into a fresh host.
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(dir.path(), &seed(2)).expect("store");
    for change in net.saved.remove(&bob).expect("bob saved") {
        match change {
            Changed::Saved(id, snapshot) => store.save(id, &snapshot).expect("save"),
            Changed::Removed(id) => store.remove(id).expect("remove"),
        }
    }
    let mut restarted = Host::new(seed(2));
    for snapshot in store.load_all() {
        restarted
            .restore(&snapshot.expect("opens"))
            .expect("restores");
    }
    net.hosts.insert(bob, restarted);
    let view = net.members(bob, &g);
    assert_eq!(view.members.len(), 2);
    assert_eq!(view.key_fingerprint, net.members(alice, &g).key_fingerprint);

    send(&mut net, alice, &g, "after the restart");
    let texts: Vec<String> = net.read(bob, &g).into_iter().map(|(_, t)| t).collect();
    assert_eq!(texts, ["after the restart"]);
    // Heartbeats keep flowing: nobody is timed out after two timeouts.
    net.advance(130);
    assert_eq!(net.members(alice, &g).members.len(), 2);

    // Bob leaves: Alice rolls out a new key; Bob's host forgets the group and its file.
    net.command(bob, GroupRequest::Leave { group: g.clone() });
    net.advance(15);
    assert_eq!(
        net.members(alice, &g).members.len(),
        1,
        "{:?}",
        &net.notices[net.notices.len().saturating_sub(8)..]
    );
    assert!(net.noticed(1, "rolled-out"), "{:?}", net.notices);
    assert!(net
        .saved
        .get(&bob)
        .is_some_and(|c| c.iter().any(|c| matches!(c, Changed::Removed(_)))));
}

#[test]
fn a_member_silent_past_the_timeout_is_rolled_out() {
    let (mut net, k) = Net::new(3);
    let (alice, bob, carol) = (k[0], k[1], k[2]);
    let g = create(&mut net, alice, None);
    net.join(bob, &g, alice);
    net.vote_all(&[alice], &g, true);
    net.join(carol, &g, bob);
    net.vote_all(&[alice, bob], &g, true);
    assert_eq!(net.members(alice, &g).members.len(), 3);
    net.hosts.remove(&carol);
    net.advance(75);
    assert!(net.noticed(1, "removal-pending"), "{:?}", net.notices);
    assert_eq!(net.members(alice, &g).members.len(), 2, "{:?}", net.notices);
    assert_eq!(net.members(bob, &g).members.len(), 2);
}
