//! Paths: which nodes each circuit goes through.
//!
//! One rule protects the agent's identity: **no node sees both the agent's address and its
//! identity.** The entry of a circuit sees the agent's address; a presence node sees its
//! identity (the registration names it). So every anonymous circuit enters through one
//! *entry guard* (after Tor's guards), and presence nodes are never chosen among the guard
//! — nor any circuit's entry among the presence nodes. The guard is drawn at random when
//! the node list first arrives, and redrawn if it leaves the list or
//! [`GUARD_FAILURES`] circuits in a row fail to open. Public points register on the first
//! hop by design (their owner is not hiding).
//!
//! The rule holds over time, not only at one instant: the agent remembers every node that
//! learned its identity (the nodes its anonymous points were ever registered at) and every
//! node that learned its address (every entry of its circuits), and never gives a node of
//! one kind the other role — a replaced guard is never a former presence node, a replaced
//! point never lands on a former entry. When no node is left, the point waits or the circuit
//! is not built, with the reason.
//!
//! A direct agent ([`CoreConfig::direct`](super::CoreConfig::direct)) does not hide its
//! address either: its rendezvous circuits and its introductions to public points go
//! straight to the node (one hop). Neither kind of node learns its identity that way (the
//! rendezvous node relays a sealed handshake, an introduction is sealed to its target), and
//! a public point's owner announced itself anyway. Introductions to anonymous points keep
//! [`CoreConfig::hops`](super::CoreConfig::hops): an anonymous owner's presence node must
//! not learn the addresses of those who call it (whom it talks to is part of what it
//! hides). Nor does a direct agent link straight to one of its own anonymous presence
//! nodes (chosen as a rendezvous node, say): that node knows its identity.

use super::Core;
use crate::hex0x;
use crate::messaging::error::MessagingError;
use crate::messaging::events::AgentEvent;
use rand::seq::SliceRandom;

/// Circuits in a row that fail to open before the entry guard is replaced.
pub const GUARD_FAILURES: u32 = 3;

impl Core {
    /// The presence nodes of the agent's points.
    pub(super) fn presence_nodes(&self) -> Vec<[u8; 32]> {
        self.points.values().filter_map(|p| p.node).collect()
    }

    /// Hops of a rendezvous circuit to `node`: this agent's as caller, or its join of a
    /// caller's.
    pub(super) fn rendezvous_hops(&self, node: &[u8; 32]) -> usize {
        if self.direct_to(node) {
            1
        } else {
            self.config.hops
        }
    }

    /// Hops of an introduction to a presence point at `node` that is public or not.
    pub(super) fn introduction_hops(&self, node: &[u8; 32], public_point: bool) -> usize {
        if public_point && self.direct_to(node) {
            1
        } else {
            self.config.hops
        }
    }

    /// Whether a direct agent may link straight to `node`: never to one of its own anonymous
    /// presence nodes, which knows its identity and must not learn its address too.
    fn direct_to(&self, node: &[u8; 32]) -> bool {
        self.config.direct && (self.config.public || !self.identity_holders().contains(node))
    }

    /// Draws a guard if there is none, or if it left the node list.
    pub(super) fn ensure_guard(&mut self) {
        let known = self.guard.is_some_and(|g| self.nodes.contains(&g));
        if !known {
            self.redraw_guard();
        }
    }

    /// A new guard: any node but those that ever learned the agent's identity and the old
    /// guard (if others exist).
    fn redraw_guard(&mut self) {
        let mut avoid = self.identity_holders();
        avoid.extend(self.guard);
        self.guard = self
            .pick_node(&avoid)
            .filter(|g| !self.identity_holders().contains(g));
    }

    /// The nodes that must never see this agent's address: its presence nodes, now and
    /// before.
    fn identity_holders(&self) -> Vec<[u8; 32]> {
        let mut nodes = self.presence_nodes();
        nodes.extend(self.knows_identity.iter().copied());
        nodes
    }

    /// An open succeeded: the guard works.
    pub(super) fn circuit_opened(&mut self) {
        self.open_failures = 0;
    }

    /// An open failed; after [`GUARD_FAILURES`] in a row the guard is replaced.
    pub(super) fn circuit_failed(&mut self) {
        self.open_failures += 1;
        if self.open_failures >= GUARD_FAILURES && self.nodes.len() > 1 {
            self.open_failures = 0;
            let old = self.guard;
            self.redraw_guard();
            if self.guard != old {
                let message = format!(
                    "entry guard {} replaced by {} after {GUARD_FAILURES} failed circuits",
                    old.map(|g| hex0x(&g)).unwrap_or_default(),
                    self.guard.map(|g| hex0x(&g)).unwrap_or_default(),
                );
                self.emit(AgentEvent::Warning { message });
            }
        }
    }

    /// A path of `hops` distinct nodes to `target`, entry first: the guard (or, when the
    /// target is the guard, another node that is not a presence node), random middles,
    /// the target.
    pub(super) fn path_to(
        &mut self,
        target: [u8; 32],
        hops: usize,
    ) -> Result<Vec<[u8; 32]>, MessagingError> {
        if hops <= 1 {
            return Ok(vec![target]);
        }
        self.ensure_guard();
        let presence = self.identity_holders();
        let entry = match self.guard {
            Some(guard) if guard != target => Some(guard),
            _ => {
                let avoid: Vec<[u8; 32]> = presence.into_iter().chain([target]).collect();
                let free: Vec<[u8; 32]> = self
                    .nodes
                    .iter()
                    .filter(|n| !avoid.contains(n))
                    .copied()
                    .collect();
                free.choose(&mut self.rng).copied()
            }
        };
        let no_path = |reason: String| MessagingError::NoNodes { reason };
        let entry = entry.ok_or_else(|| {
            no_path(format!(
                "no entry node for a path to {} that is neither it nor a presence node of this \
                 agent ({} nodes known)",
                hex0x(&target),
                self.nodes.len()
            ))
        })?;
        let mut middles: Vec<[u8; 32]> = self
            .nodes
            .iter()
            .filter(|n| **n != target && **n != entry)
            .copied()
            .collect();
        middles.shuffle(&mut self.rng);
        if middles.len() < hops - 2 {
            return Err(no_path(format!(
                "a {hops}-hop path needs {hops} distinct nodes, {} are known",
                self.nodes.len()
            )));
        }
        let mut path = Vec::with_capacity(hops);
        path.push(entry);
        path.extend(middles.into_iter().take(hops - 2));
        path.push(target);
        Ok(path)
    }
}
