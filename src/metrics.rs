//! Prometheus metrics: `GET /metrics` on cluster.toml's `[metrics] listen`
//! (`runtime::metrics_http`) and `hbctl metrics` (the control socket), in
//! the OpenMetrics text format written by the prometheus-client crate.
//!
//! Two sources make a scrape:
//! - [`Metrics`]: the families counted where things happen (heartbeat gaps,
//!   group transitions, check runs and latencies, job runs), kept by the
//!   daemon for its lifetime;
//! - the states, read at scrape time from the status document
//!   ([`crate::ctl::Status`]: nodes, links, datagram counters, groups, VRRP
//!   instances) and from each replicated disk's device
//!   ([`crate::disk::ctl::DiskStatus`]: role, states, out-of-sync bytes,
//!   resync rate, bytes moved, and the write and acknowledgement latency
//!   histograms the device process counts).
//!
//! States are exported as one series per possible state with value 1 for
//! the current one (`hbd_node_state{node="n2",state="dead"} 1`), the
//! usual shape for enums.

use crate::ctl::Status;
use crate::disk::ctl::{DiskStatus, LatencyHistogram};
use prometheus_client::encoding::{EncodeMetric, MetricEncoder, NoLabelSet};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::metrics::{MetricType, TypedMetric};
use prometheus_client::registry::Registry;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A series' labels.
pub type Labels = Vec<(String, String)>;
type Histograms = Family<Labels, Histogram, fn() -> Histogram>;

/// The content type of a scrape.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

fn labels(pairs: &[(&str, &str)]) -> Labels {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// Heartbeat gaps: 10 ms to about 40 s.
fn gap_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.01, 2.0, 13))
}

/// Check run times: 1 ms to about 33 s.
fn latency_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.001, 2.0, 16))
}

/// The families counted where things happen; shared (`Arc`) by the daemon
/// loop, the check and job tasks and the scrapers.
#[derive(Debug)]
pub struct Metrics {
    heartbeat_gap: Histograms,
    group_transitions: Family<Labels, Counter>,
    check_runs: Family<Labels, Counter>,
    check_latency: Histograms,
    job_runs: Family<Labels, Counter>,
    events: Family<Labels, Counter>,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics {
            heartbeat_gap: Family::new_with_constructor(gap_histogram),
            group_transitions: Family::default(),
            check_runs: Family::default(),
            check_latency: Family::new_with_constructor(latency_histogram),
            job_runs: Family::default(),
            events: Family::default(),
        }
    }
}

impl Metrics {
    pub fn new() -> Arc<Metrics> {
        Arc::new(Metrics::default())
    }

    /// The time between two datagrams of `node` on `medium`.
    pub fn heartbeat_gap(&self, node: &str, medium: &str, gap: Duration) {
        self.heartbeat_gap
            .get_or_create(&labels(&[("node", node), ("medium", medium)]))
            .observe(gap.as_secs_f64());
    }

    /// A group changed state on this node.
    pub fn group_transition(&self, group: &str, from: &str, to: &str) {
        self.group_transitions
            .get_or_create(&labels(&[("group", group), ("from", from), ("to", to)]))
            .inc();
    }

    /// A check finished after `took`.
    pub fn check_run(&self, check: &str, ok: bool, took: Duration) {
        let result = if ok { "ok" } else { "failed" };
        self.check_runs
            .get_or_create(&labels(&[("check", check), ("result", result)]))
            .inc();
        self.check_latency
            .get_or_create(&labels(&[("check", check)]))
            .observe(took.as_secs_f64());
    }

    /// A job finished.
    pub fn job_run(&self, job: &str, ok: bool) {
        let result = if ok { "ok" } else { "failed" };
        self.job_runs
            .get_or_create(&labels(&[("job", job), ("result", result)]))
            .inc();
    }

    /// An event was published (`hbctl events`), by kind.
    pub fn event(&self, kind: &str) {
        self.events.get_or_create(&labels(&[("kind", kind)])).inc();
    }

    fn register_into(&self, r: &mut Registry) {
        r.register(
            "hbd_heartbeat_gap_seconds",
            "Time between two datagrams of a peer on one medium",
            self.heartbeat_gap.clone(),
        );
        r.register(
            "hbd_group_transitions",
            "Resource group state changes on this node, by old and new state",
            self.group_transitions.clone(),
        );
        r.register(
            "hbd_check_runs",
            "Service check runs, by result",
            self.check_runs.clone(),
        );
        r.register(
            "hbd_check_duration_seconds",
            "How long a service check run took",
            self.check_latency.clone(),
        );
        r.register("hbd_job_runs", "Job runs, by result", self.job_runs.clone());
        r.register(
            "hbd_events",
            "State-change events published (hbctl events), by kind",
            self.events.clone(),
        );
    }
}

/// A histogram counted elsewhere (the device process) and carried in its
/// status: encoded as it is.
#[derive(Debug, Default)]
struct Carried(Mutex<LatencyHistogram>);

impl TypedMetric for Carried {
    const TYPE: MetricType = MetricType::Histogram;
}

impl EncodeMetric for Carried {
    fn encode(&self, mut encoder: MetricEncoder) -> Result<(), std::fmt::Error> {
        let h = self.0.lock().unwrap_or_else(|p| p.into_inner());
        encoder.encode_histogram::<NoLabelSet>(h.sum_seconds, h.count, &h.per_bucket(), None)
    }

    fn metric_type(&self) -> MetricType {
        MetricType::Histogram
    }
}

/// One gauge family set from the status; each call adds a series.
struct Gauges(Family<Labels, Gauge>);

impl Gauges {
    fn new() -> Gauges {
        Gauges(Family::default())
    }
    fn set(&self, pairs: &[(&str, &str)], v: i64) {
        self.0.get_or_create(&labels(pairs)).set(v);
    }
    /// One series per state of `states`, 1 for `current`.
    fn states(&self, pairs: &[(&str, &str)], states: &[&str], current: &str) {
        for s in states {
            let mut p = pairs.to_vec();
            p.push(("state", s));
            self.set(&p, i64::from(*s == current));
        }
    }
}

struct Counters(Family<Labels, Counter>);

impl Counters {
    fn new() -> Counters {
        Counters(Family::default())
    }
    fn set(&self, pairs: &[(&str, &str)], v: u64) {
        self.0.get_or_create(&labels(pairs)).inc_by(v);
    }
}

const NODE_STATES: [&str; 3] = ["up", "dead", "unknown"];
const GROUP_STATES: [&str; 6] = [
    "stopped",
    "starting",
    "started",
    "stopping",
    "failed",
    "stop-failed",
];
const VRRP_STATES: [&str; 5] = ["INIT", "BACKUP", "MASTER", "FAULT", "STOP"];
const ROLES: [&str; 3] = ["Primary", "Secondary", "Unknown"];
const DISK_STATES: [&str; 9] = [
    "Diskless",
    "Attaching",
    "Failed",
    "Negotiating",
    "Inconsistent",
    "Outdated",
    "DUnknown",
    "Consistent",
    "UpToDate",
];

/// The text of one scrape: `m`'s families, and the states of `status` and
/// of the devices that answered (`disks`).
pub fn render(m: &Metrics, status: &Status, disks: &[DiskStatus]) -> String {
    let mut r = Registry::default();
    m.register_into(&mut r);

    let info = Gauges::new();
    info.set(
        &[
            ("node", &status.node),
            ("cluster", &status.cluster),
            ("version", &status.version),
        ],
        1,
    );
    r.register("hbd_info", "This daemon: node, cluster, version", info.0);
    let uptime = Gauges::new();
    uptime.set(&[], (status.uptime_ms / 1000) as i64);
    r.register("hbd_uptime_seconds", "Since the daemon started", uptime.0);

    let nodes = Gauges::new();
    let links = Gauges::new();
    let last_heard = Gauges::new();
    for n in &status.nodes {
        nodes.states(
            &[("node", &n.name)],
            &NODE_STATES,
            crate::ctl::render::node_state(n.state),
        );
        if n.name == status.node {
            continue;
        }
        for l in &n.links {
            let up = crate::ctl::render::link_state(l.state) == "up";
            links.set(&[("node", &n.name), ("medium", &l.medium)], i64::from(up));
        }
        if let Some(ms) = n.last_heard_ms {
            last_heard.set(&[("node", &n.name)], ms as i64);
        }
    }
    r.register(
        "hbd_node_state",
        "Node state (1 for the current one)",
        nodes.0,
    );
    r.register("hbd_link_up", "A peer's link on one medium is up", links.0);
    r.register(
        "hbd_node_last_heard_milliseconds",
        "Since the last valid datagram of a peer",
        last_heard.0,
    );

    let sent = Counters::new();
    sent.set(&[], status.counters.sent);
    r.register("hbd_datagrams_sent", "Datagrams sent", sent.0);
    let received = Counters::new();
    received.set(&[], status.counters.received);
    r.register(
        "hbd_datagrams_received",
        "Valid datagrams received",
        received.0,
    );
    let dropped = Counters::new();
    for (reason, n) in &status.counters.dropped {
        dropped.set(&[("reason", reason)], *n);
    }
    r.register(
        "hbd_datagrams_dropped",
        "Datagrams dropped, by reason",
        dropped.0,
    );

    let groups = Gauges::new();
    let local = Gauges::new();
    let checks = Gauges::new();
    for g in &status.groups {
        groups.states(&[("group", &g.id)], &GROUP_STATES, g.state.as_str());
        let here = g.owner.as_deref() == Some(status.node.as_str());
        local.set(&[("group", &g.id)], i64::from(here));
        for c in &g.checks {
            let healthy = c.state.as_str() != "failed";
            checks.set(&[("group", &g.id), ("check", &c.name)], i64::from(healthy));
        }
    }
    r.register(
        "hbd_group_state",
        "Resource group state, as its owner reports it (1 for the current one)",
        groups.0,
    );
    r.register(
        "hbd_group_owned_here",
        "The group runs on this node",
        local.0,
    );
    r.register(
        "hbd_check_healthy",
        "A service check is not failed",
        checks.0,
    );

    let vrrp = Gauges::new();
    let prio = Gauges::new();
    let eprio = Gauges::new();
    let vdrops = Counters::new();
    for v in &status.vrrp {
        vrrp.states(&[("instance", &v.name)], &VRRP_STATES, &v.state);
        prio.set(&[("instance", &v.name)], i64::from(v.priority));
        eprio.set(&[("instance", &v.name)], i64::from(v.effective_priority));
        for (reason, n) in &v.drops {
            vdrops.set(&[("instance", &v.name), ("reason", reason)], *n);
        }
    }
    r.register(
        "hbd_vrrp_state",
        "VRRP instance state (1 for the current one)",
        vrrp.0,
    );
    r.register("hbd_vrrp_priority", "Configured VRRP priority", prio.0);
    r.register(
        "hbd_vrrp_effective_priority",
        "VRRP priority with the track scripts' weights",
        eprio.0,
    );
    r.register(
        "hbd_vrrp_dropped",
        "VRRP datagrams dropped, by reason",
        vdrops.0,
    );

    let role = Gauges::new();
    let dstate = Gauges::new();
    let cstate = Gauges::new();
    let oos = Gauges::new();
    let rate = Gauges::new();
    let split = Gauges::new();
    let ns = Counters::new();
    let nr = Counters::new();
    let write_lat: Family<Labels, Carried> = Family::default();
    let ack_lat: Family<Labels, Carried> = Family::default();
    for d in disks {
        let l = [("disk", d.name.as_str())];
        role.states(&l, &ROLES, &d.role.to_string());
        dstate.states(&l, &DISK_STATES, &d.disk.to_string());
        cstate.set(
            &[("disk", &d.name), ("state", &d.connection.to_string())],
            1,
        );
        oos.set(&l, d.out_of_sync_bytes as i64);
        rate.set(
            &l,
            d.sync.as_ref().map_or(0, |s| s.rate_bytes_per_sec) as i64,
        );
        split.set(&l, i64::from(d.split_brain.is_some()));
        ns.set(&l, d.counters.ns.saturating_mul(1024));
        nr.set(&l, d.counters.nr.saturating_mul(1024));
        if let Some(lat) = &d.latency {
            *write_lat
                .get_or_create(&labels(&l))
                .0
                .lock()
                .unwrap_or_else(|p| p.into_inner()) = lat.write.clone();
            *ack_lat
                .get_or_create(&labels(&l))
                .0
                .lock()
                .unwrap_or_else(|p| p.into_inner()) = lat.ack.clone();
        }
    }
    r.register(
        "hbd_disk_role",
        "Replicated disk role (1 for the current one)",
        role.0,
    );
    r.register(
        "hbd_disk_state",
        "Local disk state (1 for the current one)",
        dstate.0,
    );
    r.register(
        "hbd_disk_connection_state",
        "Connection state of the replicated disk (the current one)",
        cstate.0,
    );
    r.register(
        "hbd_disk_out_of_sync_bytes",
        "Bytes marked out of sync",
        oos.0,
    );
    r.register(
        "hbd_disk_resync_rate_bytes_per_second",
        "Resync rate over the last seconds (0 when none runs)",
        rate.0,
    );
    r.register(
        "hbd_disk_split_brain",
        "Split brain detected and not resolved",
        split.0,
    );
    r.register(
        "hbd_disk_sent_bytes",
        "Sent to the peer (replication and resync)",
        ns.0,
    );
    r.register("hbd_disk_received_bytes", "Received from the peer", nr.0);
    r.register(
        "hbd_disk_write_latency_seconds",
        "Application write, call to completion",
        write_lat,
    );
    r.register(
        "hbd_disk_replication_ack_latency_seconds",
        "Replicated write, sent to acknowledged by the peer",
        ack_lat,
    );

    let mut out = String::new();
    // Writing to a String does not fail.
    let _ = prometheus_client::encoding::text::encode(&mut out, &r);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status() -> Status {
        serde_json::from_value(serde_json::json!({
            "node": "n1", "cluster": "hbd", "version": "0", "pid": 1, "incarnation": 1,
            "uptime_ms": 5000, "keepalive_ms": 100, "deadtime_ms": 1000,
            "nodes": [
                {"name": "n1", "state": "up", "links": [], "incarnation": 1,
                 "last_heard_ms": null, "dead_reason": null},
                {"name": "n2", "state": "dead", "links": [{"medium": "bcast eth0", "state": "dead"}],
                 "incarnation": 1, "last_heard_ms": 1200, "dead_reason": "timeout"}
            ],
            "ping_nodes": [],
            "counters": {"sent": 10, "received": 7, "dropped": {"replay": 2}}
        }))
        .unwrap()
    }

    #[test]
    fn a_scrape_has_the_families_and_the_states() {
        let m = Metrics::new();
        m.heartbeat_gap("n2", "bcast eth0", Duration::from_millis(100));
        m.check_run("web", true, Duration::from_millis(3));
        m.job_run("backup", false);
        m.group_transition("g", "stopped", "starting");
        let mut disk = crate::disk::report::tests::status();
        let mut lat = crate::disk::ctl::DiskLatency::default();
        lat.write.observe(Duration::from_micros(300));
        lat.ack.observe(Duration::from_millis(2));
        disk.latency = Some(lat);
        let text = render(&m, &status(), &[disk]);
        for want in [
            "hbd_node_state{node=\"n2\",state=\"dead\"} 1",
            "hbd_node_state{node=\"n2\",state=\"up\"} 0",
            "hbd_link_up{node=\"n2\",medium=\"bcast eth0\"} 0",
            "hbd_datagrams_dropped_total{reason=\"replay\"} 2",
            "hbd_heartbeat_gap_seconds_count{node=\"n2\",medium=\"bcast eth0\"} 1",
            "hbd_check_runs_total{check=\"web\",result=\"ok\"} 1",
            "hbd_job_runs_total{job=\"backup\",result=\"failed\"} 1",
            "hbd_group_transitions_total{group=\"g\",from=\"stopped\",to=\"starting\"} 1",
            "hbd_disk_role{disk=\"r0\",state=\"Primary\"}",
            "hbd_disk_write_latency_seconds_count{disk=\"r0\"} 1",
            "hbd_disk_write_latency_seconds_bucket{le=\"0.0004\",disk=\"r0\"} 1",
            "hbd_disk_replication_ack_latency_seconds_sum{disk=\"r0\"} 0.002",
            "# TYPE hbd_disk_write_latency_seconds histogram",
            "# EOF",
        ] {
            assert!(text.contains(want), "{want} missing from\n{text}");
        }
        // One descriptor per family, whatever the number of series.
        assert_eq!(text.matches("# TYPE hbd_node_state ").count(), 1);
    }
}
