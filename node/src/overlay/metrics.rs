//! The overlay's Prometheus metrics, registered in the node's registry beside Substrate's and
//! served with them at `/metrics` on `--prometheus-port` (every series carries the registry's
//! `chain` label).
//!
//! Two sources feed them:
//! - the overlay's event loop hands every [`NodeEvent`] to [`Metrics::record`]: circuits
//!   created and closed (by DESTROY reason), refused CREATEs and EXTENDs (by cause), links up,
//!   closed and refused, failed dials, undecodable cells, streams opened (by service);
//! - [`Metrics::refresh`] asks the driver every [`REFRESH_EVERY`] for its [`NodeStats`] (open
//!   links and circuits, queued cells, link frames and bytes, dropped events, denied dials)
//!   and for the newest signed directory it holds (its period and signature count).
//!
//! Events reach the loop through a bounded channel that drops events when full; those drops
//! are counted (`psp_overlay_events_dropped_total`), so the event counters undercount by at
//! most that much. Labels take values from fixed sets only (reason and service names, never
//! peer ids or free text), so no peer can grow the number of series.
//!
//! Not metrics yet, because psp-net or the RPC keep them where this module cannot count them
//! without changes there: DHT records stored and refused (psp-net logs them), certificates
//! issued (the `psp_certRequest` RPC holds the issuer), presence, rendezvous and lookup
//! requests.
//!
//! A registration failure (a name already taken, say) is logged and the node runs without
//! these metrics: they are never a reason to stop.

use psp_net::{
    cell::DestroyReason,
    circuit::{CircuitError, Peer, RelayEvent},
    directory::SignedDirectory,
    driver::{NodeEvent, NodeHandle, NodeStats},
};
use std::sync::Arc;
use std::time::Duration;
use substrate_prometheus_endpoint::{
    register, Counter, CounterVec, Gauge, Opts, PrometheusError, Registry, U64,
};

/// How often the gauges and the driver's totals are read.
pub const REFRESH_EVERY: Duration = Duration::from_secs(1);

/// The overlay's metrics.
pub struct Metrics {
    links: Gauge<U64>,
    circuits_open: Gauge<U64>,
    queued_cells: Gauge<U64>,
    circuits_created: Counter<U64>,
    circuits_closed: CounterVec<U64>,
    creates_refused: CounterVec<U64>,
    extends_refused: CounterVec<U64>,
    links_opened: CounterVec<U64>,
    links_closed: Counter<U64>,
    links_refused: Counter<U64>,
    dials_failed: Counter<U64>,
    bad_cells: Counter<U64>,
    unknown_circuit_cells: Counter<U64>,
    streams_opened: CounterVec<U64>,
    link_frames_in: Counter<U64>,
    link_frames_out: Counter<U64>,
    link_bytes_in: Counter<U64>,
    link_bytes_out: Counter<U64>,
    events_dropped: Counter<U64>,
    dials_denied: Counter<U64>,
    directory_period: Gauge<U64>,
    directory_signatures: Gauge<U64>,
    certificates_issued: Counter<U64>,
    media_frames_in: Counter<U64>,
    media_frames_out: Counter<U64>,
    media_consumers: Gauge<U64>,
}

impl Metrics {
    /// The metrics registered in `registry`; `None` without a registry (`--no-prometheus`)
    /// or when registering failed (logged).
    pub fn register(registry: Option<&Registry>) -> Option<Arc<Self>> {
        match Self::try_register(registry?) {
            Ok(metrics) => Some(Arc::new(metrics)),
            Err(e) => {
                log::warn!(
                    target: "psp-overlay",
                    "overlay metrics not registered, running without them: {e}"
                );
                None
            }
        }
    }

    fn try_register(r: &Registry) -> Result<Self, PrometheusError> {
        Ok(Self {
            links: register(gauge("links", "Usable links to nodes and clients.")?, r)?,
            circuits_open: register(gauge("circuits_open", "Circuits open at this node.")?, r)?,
            queued_cells: register(gauge("queued_cells", "Cells queued in the relay core.")?, r)?,
            circuits_created: register(
                counter(
                    "circuits_created_total",
                    "CREATEs accepted: circuits opened.",
                )?,
                r,
            )?,
            circuits_closed: register(
                counter_vec(
                    "circuits_closed_total",
                    "Circuits closed, by the DESTROY reason sent or received.",
                    "reason",
                )?,
                r,
            )?,
            creates_refused: register(
                counter_vec(
                    "creates_refused_total",
                    "CREATEs refused before a circuit existed, by cause.",
                    "reason",
                )?,
                r,
            )?,
            extends_refused: register(
                counter_vec(
                    "extends_refused_total",
                    "EXTENDs refused (unregistered target, key mismatch, ...), by cause.",
                    "reason",
                )?,
                r,
            )?,
            links_opened: register(
                counter_vec(
                    "links_opened_total",
                    "Links that passed their hello, by the kind of peer (node or client).",
                    "peer",
                )?,
                r,
            )?,
            links_closed: register(counter("links_closed_total", "Links closed.")?, r)?,
            links_refused: register(
                counter(
                    "links_refused_total",
                    "Substreams refused before they became links (bad hello, unregistered \
                     node, ...).",
                )?,
                r,
            )?,
            dials_failed: register(
                counter("dials_failed_total", "Failed dials to a next hop.")?,
                r,
            )?,
            bad_cells: register(
                counter("bad_cells_total", "Cells that did not decode (dropped).")?,
                r,
            )?,
            unknown_circuit_cells: register(
                counter(
                    "unknown_circuit_cells_total",
                    "Cells for a circuit this node does not know (dropped).",
                )?,
                r,
            )?,
            streams_opened: register(
                counter_vec(
                    "streams_opened_total",
                    "Streams opened to a service of this node, by service.",
                    "service",
                )?,
                r,
            )?,
            link_frames_in: register(
                counter(
                    "link_frames_in_total",
                    "Frames (512-byte cells, hellos included) read from links.",
                )?,
                r,
            )?,
            link_frames_out: register(
                counter("link_frames_out_total", "Frames written to links.")?,
                r,
            )?,
            link_bytes_in: register(counter("link_bytes_in_total", "Bytes read from links.")?, r)?,
            link_bytes_out: register(
                counter("link_bytes_out_total", "Bytes written to links.")?,
                r,
            )?,
            events_dropped: register(
                counter(
                    "events_dropped_total",
                    "Overlay events dropped because their channel was full (the event \
                     counters miss these).",
                )?,
                r,
            )?,
            dials_denied: register(
                counter(
                    "dials_denied_total",
                    "Outbound connections refused because the peer is not a registered node.",
                )?,
                r,
            )?,
            certificates_issued: register(
                counter(
                    "certificates_issued_total",
                    "Access certificates this node issued as an elected authority.",
                )?,
                r,
            )?,
            media_frames_in: register(
                counter(
                    "media_frames_in_total",
                    "Media frames the media service took from publishers (producers, landing \
                     nodes) and relayed.",
                )?,
                r,
            )?,
            media_frames_out: register(
                counter(
                    "media_frames_out_total",
                    "Media frames the media service sent to consumers and distribution nodes.",
                )?,
                r,
            )?,
            media_consumers: register(
                gauge(
                    "media_consumers",
                    "Consumers the media service serves (WHEP peers with an open channel).",
                )?,
                r,
            )?,
            directory_period: register(
                gauge(
                    "directory_period",
                    "Period of the newest signed directory this node holds (0: none).",
                )?,
                r,
            )?,
            directory_signatures: register(
                gauge(
                    "directory_signatures",
                    "Signatures on the newest signed directory this node holds.",
                )?,
                r,
            )?,
        })
    }

    /// Counts one access certificate issued (`psp_certRequest`).
    pub fn certificate_issued(&self) {
        self.certificates_issued.inc();
    }

    /// Adds the media service's frames since the last call, and sets its consumer count.
    pub fn media(&self, frames_in: u64, frames_out: u64, consumers: u64) {
        self.media_frames_in.inc_by(frames_in);
        self.media_frames_out.inc_by(frames_out);
        self.media_consumers.set(consumers);
    }

    /// Counts one event of the overlay's event loop.
    pub fn record(&self, event: &NodeEvent) {
        match event {
            NodeEvent::Relay(event) => self.record_relay(event),
            NodeEvent::LinkUp { peer, .. } => {
                let kind = match peer {
                    Peer::Node(_) => "node",
                    Peer::Client(_) => "client",
                };
                self.links_opened.with_label_values(&[kind]).inc();
            }
            NodeEvent::LinkClosed { .. } => self.links_closed.inc(),
            NodeEvent::LinkRefused { .. } => self.links_refused.inc(),
            NodeEvent::DialFailed { .. } => self.dials_failed.inc(),
            _ => {}
        }
    }

    fn record_relay(&self, event: &RelayEvent) {
        match event {
            RelayEvent::CircuitCreated { .. } => self.circuits_created.inc(),
            RelayEvent::CircuitClosed { reason, .. } => self
                .circuits_closed
                .with_label_values(&[destroy_reason(*reason)])
                .inc(),
            RelayEvent::CreateRefused { error, .. } => self
                .creates_refused
                .with_label_values(&[circuit_error(error)])
                .inc(),
            RelayEvent::ExtendRefused { error, .. } => self
                .extends_refused
                .with_label_values(&[circuit_error(error)])
                .inc(),
            RelayEvent::BadCell { .. } => self.bad_cells.inc(),
            RelayEvent::UnknownCircuit { .. } => self.unknown_circuit_cells.inc(),
            RelayEvent::StreamOpened { service } => self
                .streams_opened
                .with_label_values(&[service.as_str()])
                .inc(),
            // `Extending` and any newer psp-net event: no metric (yet).
            _ => {}
        }
    }

    /// Copies the driver's counters and the newest directory into the metrics every
    /// [`REFRESH_EVERY`], until the node stops.
    pub async fn refresh(self: Arc<Self>, handle: NodeHandle) {
        let mut tick = tokio::time::interval(REFRESH_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let Ok(stats) = handle.stats().await else {
                return;
            };
            self.set_stats(&stats);
            if let Ok(latest) = handle.directory_latest().await {
                self.set_directory(latest.as_ref().map(|(bytes, _)| bytes.as_slice()));
            }
        }
    }

    fn set_stats(&self, stats: &NodeStats) {
        self.links.set(stats.links as u64);
        self.circuits_open.set(stats.circuits as u64);
        self.queued_cells.set(stats.queued_cells as u64);
        // The driver keeps totals; the counters follow them (only this task adds to them).
        catch_up(&self.link_frames_in, stats.link_frames_in);
        catch_up(&self.link_frames_out, stats.link_frames_out);
        catch_up(&self.link_bytes_in, stats.link_bytes_in);
        catch_up(&self.link_bytes_out, stats.link_bytes_out);
        catch_up(&self.events_dropped, stats.events_dropped);
        catch_up(&self.dials_denied, stats.dials_denied);
    }

    fn set_directory(&self, latest: Option<&[u8]>) {
        // The driver encoded it itself, so it decodes; no signature is checked here (the
        // driver only keeps directories whose threshold of signatures it verified).
        let (period, signatures) = latest
            .and_then(|bytes| SignedDirectory::decode(bytes).ok())
            .map_or((0, 0), |d| (d.directory.period, d.signatures.len() as u64));
        self.directory_period.set(period);
        self.directory_signatures.set(signatures);
    }
}

/// `name` with the `psp_overlay_` prefix every overlay metric carries.
fn opts(name: &str, help: &str) -> Opts {
    Opts::new(format!("psp_overlay_{name}"), help)
}

fn gauge(name: &str, help: &str) -> Result<Gauge<U64>, PrometheusError> {
    Gauge::with_opts(opts(name, help))
}

fn counter(name: &str, help: &str) -> Result<Counter<U64>, PrometheusError> {
    Counter::with_opts(opts(name, help))
}

fn counter_vec(name: &str, help: &str, label: &str) -> Result<CounterVec<U64>, PrometheusError> {
    CounterVec::new(opts(name, help), &[label])
}

/// Raises `counter` to `total` (a total that only grows).
fn catch_up(counter: &Counter<U64>, total: u64) {
    counter.inc_by(total.saturating_sub(counter.get()));
}

/// The `reason` label of a closed circuit.
fn destroy_reason(reason: DestroyReason) -> &'static str {
    match reason {
        DestroyReason::None => "none",
        DestroyReason::Protocol => "protocol",
        DestroyReason::Internal => "internal",
        DestroyReason::Requested => "requested",
        DestroyReason::Handshake => "handshake",
        DestroyReason::ExtendRefused => "extend_refused",
        DestroyReason::ResourceLimit => "resource_limit",
        DestroyReason::Integrity => "integrity",
        DestroyReason::QueueOverflow => "queue_overflow",
        DestroyReason::MemoryPressure => "memory_pressure",
        DestroyReason::LinkClosed => "link_closed",
        DestroyReason::ExtendLimit => "extend_limit",
        _ => "unknown",
    }
}

/// The `reason` label of a refused CREATE or EXTEND.
fn circuit_error(error: &CircuitError) -> &'static str {
    match error {
        CircuitError::NotRegistered(_) => "not_registered",
        CircuitError::OnionKeyMismatch(_) => "onion_key_mismatch",
        CircuitError::ExtendToSelf => "extend_to_self",
        CircuitError::ExtendNotEarly => "extend_not_early",
        CircuitError::CannotExtend => "cannot_extend",
        CircuitError::ExtendLimit => "extend_limit",
        CircuitError::Integrity(_) => "integrity",
        CircuitError::Handshake(_) => "handshake",
        CircuitError::Cell(_) => "bad_cell",
        CircuitError::Unexpected(_) => "unexpected",
        CircuitError::TooManyCircuits => "too_many_circuits",
        CircuitError::QueueOverflow => "queue_overflow",
        CircuitError::MemoryPressure => "memory_pressure",
        _ => "other",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use psp_net::crypto::NodeId;

    fn value(registry: &Registry, name: &str, label: Option<&str>) -> u64 {
        registry
            .gather()
            .iter()
            .filter(|family| family.get_name() == name)
            .flat_map(|family| family.get_metric())
            .filter(|m| {
                label.is_none_or(|l| m.get_label().iter().any(|pair| pair.get_value() == l))
            })
            // A counter's gauge part is 0 and the other way round.
            .map(|m| (m.get_counter().get_value() + m.get_gauge().get_value()) as u64)
            .sum()
    }

    #[test]
    fn events_and_stats_move_the_metrics() {
        let registry = Registry::new();
        let metrics = Metrics::register(Some(&registry)).expect("registered");
        let circ_id = psp_net::cell::CircId::new(7).expect("non-zero");
        let peer = Peer::Client(1);
        metrics.record(&NodeEvent::Relay(RelayEvent::CircuitCreated {
            peer,
            circ_id,
        }));
        metrics.record(&NodeEvent::Relay(RelayEvent::CircuitClosed {
            peer,
            circ_id,
            reason: DestroyReason::Integrity,
            cause: None,
        }));
        metrics.record(&NodeEvent::Relay(RelayEvent::ExtendRefused {
            target: NodeId([9; 32]),
            error: CircuitError::NotRegistered(NodeId([9; 32])),
        }));
        metrics.set_stats(&NodeStats {
            links: 2,
            link_bytes_in: 1024,
            ..NodeStats::default()
        });
        metrics.set_stats(&NodeStats {
            links: 1,
            link_bytes_in: 4096,
            ..NodeStats::default()
        });

        assert_eq!(
            value(&registry, "psp_overlay_circuits_created_total", None),
            1
        );
        assert_eq!(
            value(
                &registry,
                "psp_overlay_circuits_closed_total",
                Some("integrity")
            ),
            1
        );
        assert_eq!(
            value(
                &registry,
                "psp_overlay_extends_refused_total",
                Some("not_registered")
            ),
            1
        );
        assert_eq!(value(&registry, "psp_overlay_links", None), 1);
        assert_eq!(
            value(&registry, "psp_overlay_link_bytes_in_total", None),
            4096
        );
    }

    #[test]
    fn a_taken_name_leaves_the_node_without_metrics() {
        let registry = Registry::new();
        assert!(Metrics::register(Some(&registry)).is_some());
        assert!(Metrics::register(Some(&registry)).is_none());
        assert!(Metrics::register(None).is_none());
    }
}
