//! The landing node's scaling machine for one stream: where consumers go, when more access
//! points are needed.
//!
//! * **Liveness**: an access point is live while its latest report is younger than
//!   `stale_after_ms` (by receipt time on the landing node's clock); a node added but not yet
//!   reporting is live for `stale_after_ms` from its addition.
//! * **Load** of a live node, in thousandths of its capacity: (reported bytes/s out +
//!   consumers assigned since that report × `per_consumer_bytes_per_sec`) / reported capacity;
//!   a node not yet reporting counts against `assumed_capacity_bytes_per_sec`.
//! * **Assign**: a consumer goes to the live node of least load among those it still fits on
//!   (load with it ≤ capacity) ([`Action::Assign`]); none → [`MediaError::NoAccessPoint`].
//! * **Need**: nodes wanted = silent nodes (to replace) + 1 if every live node is at or above
//!   `high_load_permille` (or none is live); capped by the receipt's allowance `max_nodes`
//!   less the live nodes. [`Action::NeedNodes`] is repeated only when the count grows or after
//!   `need_retry_ms`.
//! * **Add**: [`Scaling::add_nodes`] drops silent access points, adds the new ones (never above
//!   `max_nodes`) and queues [`Action::AccessPointsChanged`]: the caller re-signs and
//!   republishes the stream record.

use std::collections::VecDeque;

use psp_onion::crypto::NodeId;

use super::{permille, LoadReport, SignedLoadReport};
use crate::error::short;
use crate::{MediaError, StreamId};

/// Most access points a stream has: the stream record's bound (psp-stream, 32).
pub const MAX_ACCESS_POINTS: usize = 32;
/// Actions held for the driver; past it the oldest is dropped.
const MAX_PENDING_ACTIONS: usize = 1_024;

/// An opaque consumer id chosen by the driver.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub struct ConsumerId(pub u64);

/// Thresholds of the scaling machine.
#[derive(Clone, Debug)]
pub struct ScalingConfig {
    /// A node whose latest report is older than this is silent.
    pub stale_after_ms: u64,
    /// Load (thousandths of capacity) at or above which a node counts as hot.
    pub high_load_permille: u64,
    /// What one more consumer adds to a node's output: the stream's bitrate class.
    pub per_consumer_bytes_per_sec: u64,
    /// Capacity assumed for a node that has not reported yet.
    pub assumed_capacity_bytes_per_sec: u64,
    /// Repeat an unanswered [`Action::NeedNodes`] after this long.
    pub need_retry_ms: u64,
    /// Reports dated further ahead of the landing node's clock are refused.
    pub max_future_skew_ms: u64,
}

impl Default for ScalingConfig {
    /// 15 s staleness, 80 % high load, a 2.5 Mbit/s stream, 100 Mbit/s assumed capacity,
    /// 10 s retry, 5 s skew.
    fn default() -> Self {
        Self {
            stale_after_ms: 15_000,
            high_load_permille: 800,
            per_consumer_bytes_per_sec: 2_500_000 / 8,
            assumed_capacity_bytes_per_sec: 100_000_000 / 8,
            need_retry_ms: 10_000,
            max_future_skew_ms: 5_000,
        }
    }
}

/// What the driver does, from [`Scaling::poll_action`].
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum Action {
    /// Ask the producer for `count` more distribution nodes (wire `NeedNodes`).
    NeedNodes {
        /// Nodes wanted, within the receipt's allowance.
        count: u8,
    },
    /// Send `consumer` to access point `node`.
    Assign {
        /// The consumer.
        consumer: ConsumerId,
        /// Its access point.
        node: NodeId,
    },
    /// The access-point set changed: re-sign and republish the stream record with `nodes`.
    AccessPointsChanged {
        /// The new set, in order.
        nodes: Vec<NodeId>,
    },
}

/// One access point as the machine sees it, from [`Scaling::loads`].
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct NodeLoad {
    /// The node.
    pub node: NodeId,
    /// Whether it is live.
    pub live: bool,
    /// Its estimated load, thousandths of capacity.
    pub load_permille: u64,
    /// Consumers assigned to it since its latest report.
    pub assigned_since_report: u64,
}

struct AccessPoint {
    node: NodeId,
    added_ms: u64,
    /// The latest report and when it was received.
    report: Option<(LoadReport, u64)>,
    assigned_since_report: u64,
}

impl AccessPoint {
    fn new(node: NodeId, now_ms: u64) -> Self {
        Self {
            node,
            added_ms: now_ms,
            report: None,
            assigned_since_report: 0,
        }
    }

    fn live(&self, now_ms: u64, stale_after_ms: u64) -> bool {
        let since = self.report.map_or(self.added_ms, |(_, received)| received);
        now_ms.saturating_sub(since) < stale_after_ms
    }

    fn load_permille(&self, config: &ScalingConfig) -> u64 {
        self.load_with(self.assigned_since_report, config)
    }

    fn load_after_one_more(&self, config: &ScalingConfig) -> u64 {
        self.load_with(self.assigned_since_report.saturating_add(1), config)
    }

    fn load_with(&self, assigned: u64, config: &ScalingConfig) -> u64 {
        let extra = assigned.saturating_mul(config.per_consumer_bytes_per_sec);
        match &self.report {
            Some((r, _)) => permille(
                r.bytes_per_sec_out.saturating_add(extra),
                r.capacity_bytes_per_sec,
            ),
            None => permille(extra, config.assumed_capacity_bytes_per_sec),
        }
    }
}

/// The scaling machine of one stream on its landing node. See the module docs.
pub struct Scaling {
    stream_id: StreamId,
    max_nodes: usize,
    config: ScalingConfig,
    points: Vec<AccessPoint>,
    /// The last NeedNodes sent: count and time.
    last_need: Option<(u8, u64)>,
    actions: VecDeque<Action>,
}

impl core::fmt::Debug for Scaling {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Scaling")
            .field("stream_id", &self.stream_id)
            .field("max_nodes", &self.max_nodes)
            .field("access_points", &self.points.len())
            .finish_non_exhaustive()
    }
}

impl Scaling {
    /// The machine of `stream_id`, whose record lists `access_points`; `max_nodes` is the
    /// receipt's allowance (at most [`MAX_ACCESS_POINTS`]).
    pub fn new(
        stream_id: StreamId,
        access_points: &[NodeId],
        max_nodes: usize,
        config: ScalingConfig,
        now_ms: u64,
    ) -> Result<Self, MediaError> {
        let max_nodes = max_nodes.min(MAX_ACCESS_POINTS);
        let mut this = Self {
            stream_id,
            max_nodes,
            config,
            points: Vec::new(),
            last_need: None,
            actions: VecDeque::new(),
        };
        this.check_new(access_points, access_points.len())?;
        this.points = access_points
            .iter()
            .map(|n| AccessPoint::new(*n, now_ms))
            .collect();
        Ok(this)
    }

    /// Refuses duplicates (within `nodes` or with the kept access points) and a total above
    /// the allowance.
    fn check_new(&self, nodes: &[NodeId], total: usize) -> Result<(), MediaError> {
        if total > self.max_nodes {
            return Err(MediaError::TooManyNodes {
                got: total,
                allowed: self.max_nodes,
            });
        }
        for (i, n) in nodes.iter().enumerate() {
            if nodes[..i].contains(n) || self.points.iter().any(|p| p.node == *n) {
                return Err(MediaError::DuplicateNode { node: short(&n.0) });
            }
        }
        Ok(())
    }

    /// The current access points, in order.
    pub fn access_points(&self) -> Vec<NodeId> {
        self.points.iter().map(|p| p.node).collect()
    }

    /// The receipt's allowance.
    pub fn max_nodes(&self) -> usize {
        self.max_nodes
    }

    /// Every access point's liveness and estimated load.
    pub fn loads(&self, now_ms: u64) -> Vec<NodeLoad> {
        self.points
            .iter()
            .map(|p| NodeLoad {
                node: p.node,
                live: p.live(now_ms, self.config.stale_after_ms),
                load_permille: p.load_permille(&self.config),
                assigned_since_report: p.assigned_since_report,
            })
            .collect()
    }

    /// Takes a report: verifies its signature, its stream, that its node is an access point,
    /// that it is newer than the one held and not dated ahead of `now_ms` by more than the
    /// skew. Then re-evaluates the need for nodes.
    pub fn on_report(&mut self, now_ms: u64, signed: &SignedLoadReport) -> Result<(), MediaError> {
        let report = signed.verify()?;
        if report.stream_id != self.stream_id {
            return Err(MediaError::WrongStream {
                got: short(&report.stream_id.0),
                expected: short(&self.stream_id.0),
            });
        }
        let skew = self.config.max_future_skew_ms;
        let point = self
            .points
            .iter_mut()
            .find(|p| p.node == report.node)
            .ok_or(MediaError::NotAnAccessPoint {
                node: short(&report.node.0),
            })?;
        let latest = point.report.map_or(0, |(r, _)| r.at);
        if (point.report.is_some() && report.at <= latest)
            || report.at > now_ms.saturating_add(skew)
        {
            return Err(MediaError::ReportOutOfOrder {
                at: report.at,
                latest,
                now: now_ms,
            });
        }
        point.report = Some((report, now_ms));
        point.assigned_since_report = 0;
        self.evaluate(now_ms);
        Ok(())
    }

    /// Picks the access point for `consumer`: the live one of least load that it fits on. Queues
    /// [`Action::Assign`] and returns the node; re-evaluates the need for nodes either way.
    pub fn assign(&mut self, now_ms: u64, consumer: ConsumerId) -> Result<NodeId, MediaError> {
        let stale = self.config.stale_after_ms;
        let config = &self.config;
        // Least loaded among those the consumer still fits on (load after ≤ capacity).
        let best = self
            .points
            .iter_mut()
            .filter(|p| p.live(now_ms, stale) && p.load_after_one_more(config) <= 1000)
            .map(|p| (p.load_permille(config), p))
            .min_by_key(|(load, _)| *load);
        let Some((_, point)) = best else {
            let access_points = self.points.len();
            self.evaluate(now_ms);
            return Err(MediaError::NoAccessPoint { access_points });
        };
        point.assigned_since_report = point.assigned_since_report.saturating_add(1);
        let node = point.node;
        self.push(Action::Assign { consumer, node });
        self.evaluate(now_ms);
        Ok(node)
    }

    /// Adds distribution nodes the producer supplied: drops silent access points, then adds
    /// `nodes` (duplicates and a total above `max_nodes` are refused, nothing changed). Queues
    /// [`Action::AccessPointsChanged`].
    pub fn add_nodes(&mut self, now_ms: u64, nodes: &[NodeId]) -> Result<(), MediaError> {
        let stale = self.config.stale_after_ms;
        let live: Vec<usize> = (0..self.points.len())
            .filter(|i| self.points[*i].live(now_ms, stale))
            .collect();
        let total = live.len().saturating_add(nodes.len());
        if total > self.max_nodes {
            return Err(MediaError::TooManyNodes {
                got: total,
                allowed: self.max_nodes,
            });
        }
        for (i, n) in nodes.iter().enumerate() {
            let kept = live.iter().any(|j| self.points[*j].node == *n);
            if nodes[..i].contains(n) || kept {
                return Err(MediaError::DuplicateNode { node: short(&n.0) });
            }
        }
        self.points.retain(|p| p.live(now_ms, stale));
        self.points
            .extend(nodes.iter().map(|n| AccessPoint::new(*n, now_ms)));
        self.last_need = None;
        self.push(Action::AccessPointsChanged {
            nodes: self.access_points(),
        });
        self.evaluate(now_ms);
        Ok(())
    }

    /// Re-evaluates at `now_ms` (nodes fall silent with time).
    pub fn handle_timeout(&mut self, now_ms: u64) {
        self.evaluate(now_ms);
    }

    /// When [`Scaling::handle_timeout`] should next run: the next node to fall silent, or the
    /// retry of an unanswered need.
    pub fn poll_timeout(&self, now_ms: u64) -> Option<u64> {
        let stale = self.config.stale_after_ms;
        let silence = self
            .points
            .iter()
            .filter(|p| p.live(now_ms, stale))
            .map(|p| {
                p.report
                    .map_or(p.added_ms, |(_, t)| t)
                    .saturating_add(stale)
            })
            .min();
        let retry = self
            .last_need
            .map(|(_, at)| at.saturating_add(self.config.need_retry_ms));
        match (silence, retry) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// The next action, oldest first.
    pub fn poll_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }

    /// Nodes wanted now, within the allowance.
    pub fn nodes_needed(&self, now_ms: u64) -> u8 {
        let stale = self.config.stale_after_ms;
        let live: Vec<&AccessPoint> = self
            .points
            .iter()
            .filter(|p| p.live(now_ms, stale))
            .collect();
        let silent = self.points.len() - live.len();
        let all_hot = live
            .iter()
            .all(|p| p.load_permille(&self.config) >= self.config.high_load_permille);
        let want = silent + usize::from(all_hot);
        let room = self.max_nodes.saturating_sub(live.len());
        // Both are ≤ MAX_ACCESS_POINTS + 1.
        u8::try_from(want.min(room)).unwrap_or(u8::MAX)
    }

    fn evaluate(&mut self, now_ms: u64) {
        let count = self.nodes_needed(now_ms);
        if count == 0 {
            self.last_need = None;
            return;
        }
        let due = match self.last_need {
            None => true,
            Some((last, at)) => {
                count > last || now_ms.saturating_sub(at) >= self.config.need_retry_ms
            }
        };
        if due {
            self.last_need = Some((count, now_ms));
            self.push(Action::NeedNodes { count });
        }
    }

    fn push(&mut self, action: Action) {
        if self.actions.len() >= MAX_PENDING_ACTIONS {
            self.actions.pop_front();
        }
        self.actions.push_back(action);
    }
}
