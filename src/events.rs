//! The state-change event stream (`hbctl events`), drbdsetup events2's
//! counterpart: one [`Event`] per change of a node, link, group, check,
//! disk or VRRP instance, and the phases of a takeover with their
//! durations.
//!
//! The daemon publishes on a [`Bus`] (a bounded `tokio::sync::broadcast`
//! channel): publishing never waits, and a subscriber that falls more than
//! [`CAPACITY`] events behind loses the oldest ones and is told how many
//! (see `runtime::control`), so a slow reader can never hold the daemon.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use tokio::sync::broadcast;

/// Version of the JSON shape of every `hbctl ... --json` output and event
/// (the `schema` field); raised when a field changes meaning or goes.
pub const SCHEMA: u32 = 1;

/// Events a subscriber may fall behind before it loses some.
pub const CAPACITY: usize = 1024;

/// Whether an event reports a change or, in the initial dump of
/// `hbctl events --now`, a state that already held (drbdsetup's `exists`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum What {
    Exists,
    Change,
    /// The end of the initial dump.
    Now,
    /// Events were lost: the reader was too slow.
    Lost,
}

impl What {
    pub fn as_str(self) -> &'static str {
        match self {
            What::Exists => "exists",
            What::Change => "change",
            What::Now => "now",
            What::Lost => "lost",
        }
    }
}

/// One event of the stream.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// [`SCHEMA`].
    pub schema: u32,
    /// Increases by one per published event (0 in the initial dump).
    pub seq: u64,
    /// Unix time in milliseconds.
    pub time_ms: u64,
    pub what: What,
    /// node, link, group, resource, takeover, check, disk, split-brain,
    /// vrrp, fence, outdate.
    pub kind: String,
    /// The object: a node, a group's id, a check's or a disk's name.
    pub name: String,
    /// A takeover's phase: detect, fence, outdate, promote, mount, start,
    /// started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<String>,
    /// How long the phase (or the change) took.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<u64>,
    /// The rest, e.g. `state`, `from`, `to`, `reason`, `medium`, `peer`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub attrs: BTreeMap<String, String>,
}

impl Event {
    /// A change of `kind` `name`, stamped now (`seq` is set by the bus).
    pub fn change(kind: &str, name: &str) -> Event {
        Event {
            schema: SCHEMA,
            seq: 0,
            time_ms: unix_ms(),
            what: What::Change,
            kind: kind.to_string(),
            name: name.to_string(),
            phase: None,
            duration_ms: None,
            attrs: BTreeMap::new(),
        }
    }

    /// A state that already holds (the initial dump).
    pub fn exists(kind: &str, name: &str) -> Event {
        Event {
            what: What::Exists,
            ..Event::change(kind, name)
        }
    }

    pub fn with(mut self, key: &str, value: impl ToString) -> Event {
        self.attrs.insert(key.to_string(), value.to_string());
        self
    }

    pub fn phase(mut self, phase: &str, duration: std::time::Duration) -> Event {
        self.phase = Some(phase.to_string());
        self.duration_ms = Some(duration.as_millis() as u64);
        self
    }

    /// One line, as drbdsetup events2 prints: the time, what, the kind,
    /// then `key:value` words (values with spaces quoted).
    pub fn line(&self) -> String {
        let mut out = format!(
            "{}.{:03} {} {}",
            crate::jobs::cron::local_civil((self.time_ms / 1000) as i64),
            self.time_ms % 1000,
            self.what.as_str(),
            self.kind
        );
        let mut word = |k: &str, v: &str| {
            if v.is_empty() || v.contains(char::is_whitespace) || v.contains('"') {
                out.push_str(&format!(" {k}:{v:?}"));
            } else {
                out.push_str(&format!(" {k}:{v}"));
            }
        };
        if !self.name.is_empty() {
            word("name", &self.name);
        }
        if let Some(p) = &self.phase {
            word("phase", p);
        }
        if let Some(d) = self.duration_ms {
            word("duration_ms", &d.to_string());
        }
        for (k, v) in &self.attrs {
            word(k, v);
        }
        out
    }
}

fn unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// Where the daemon publishes its events; cheap to clone.
#[derive(Clone)]
pub struct Bus {
    tx: broadcast::Sender<Event>,
    seq: Arc<AtomicU64>,
}

impl Default for Bus {
    fn default() -> Self {
        Bus::new()
    }
}

impl std::fmt::Debug for Bus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bus")
            .field("subscribers", &self.tx.receiver_count())
            .finish()
    }
}

impl Bus {
    pub fn new() -> Bus {
        Bus {
            tx: broadcast::channel(CAPACITY).0,
            seq: Arc::new(AtomicU64::new(0)),
        }
    }

    /// Publishes `e` to every subscriber; never waits (without subscribers
    /// it is dropped).
    pub fn publish(&self, mut e: Event) {
        e.seq = self.seq.fetch_add(1, Ordering::Relaxed) + 1;
        let _ = self.tx.send(e);
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.tx.subscribe()
    }
}

/// The initial dump of `hbctl events --now`: one `exists` event per node,
/// link, group, disk and VRRP instance of the status document.
pub fn exists_of(s: &crate::ctl::Status) -> Vec<Event> {
    let mut out = Vec::new();
    for n in &s.nodes {
        out.push(
            Event::exists("node", &n.name).with("state", crate::ctl::render::node_state(n.state)),
        );
        if n.name != s.node {
            for l in &n.links {
                out.push(
                    Event::exists("link", &n.name)
                        .with("medium", &l.medium)
                        .with("state", crate::ctl::render::link_state(l.state)),
                );
            }
        }
    }
    for g in &s.groups {
        let mut e = Event::exists("group", &g.id).with("state", g.state.as_str());
        if let Some(o) = &g.owner {
            e = e.with("owner", o);
        }
        out.push(e.with("local", g.local.as_str()));
    }
    for d in &s.disks {
        out.push(
            Event::exists("disk", &d.name)
                .with("role", &d.role)
                .with("disk", &d.disk)
                .with("connection", &d.connection),
        );
    }
    for v in &s.vrrp {
        out.push(
            Event::exists("vrrp", &v.name)
                .with("state", &v.state)
                .with("priority", v.effective_priority),
        );
    }
    out.push(Event {
        what: What::Now,
        ..Event::change("now", "")
    });
    out
}

/// What a resource's start does in a failover's timeline.
pub fn phase_of(kind: &crate::agents::AgentKind) -> &'static str {
    use crate::agents::AgentKind;
    match kind {
        AgentKind::Drbddisk(_) => "promote",
        AgentKind::Filesystem(_) => "mount",
        _ => "start",
    }
}

/// A failover's timeline on the node that takes over, as events with
/// phases and durations: `detect` (the peer's silence until it was
/// declared dead), `fence` and `outdate` (the peer fenced, its disk
/// outdated), then each resource's start (`promote` a replicated disk,
/// `mount` a filesystem, `start` the others) and `started` (the whole
/// group: from the peer's last datagram when it follows a peer's death,
/// else from the group's start). No I/O: the loop feeds it with `now`.
#[derive(Debug, Default)]
pub struct Timeline {
    /// The peer whose death began a failover.
    failover: Option<Failover>,
    fencing: BTreeMap<String, std::time::Duration>,
    groups: BTreeMap<usize, Started>,
}

#[derive(Debug)]
struct Failover {
    peer: String,
    /// When it was last heard.
    heard: std::time::Duration,
    /// `detect` and `fence`, for the notify hook's summary.
    phases: Vec<String>,
}

#[derive(Debug, Default)]
struct Started {
    at: std::time::Duration,
    resources: BTreeMap<usize, std::time::Duration>,
    /// `phase duration_ms` so far, for the notify hook's summary.
    phases: Vec<String>,
}

impl Timeline {
    fn kind(&self) -> &'static str {
        if self.failover.is_some() {
            "takeover"
        } else {
            "start"
        }
    }

    /// Whether a failover (a peer's death) is under way.
    pub fn in_failover(&self) -> bool {
        self.failover.is_some()
    }

    /// `node` was declared dead after `silence`; `takes_over`: this node
    /// would run some of its groups.
    pub fn node_dead(
        &mut self,
        node: &str,
        silence: Option<std::time::Duration>,
        takes_over: bool,
        now: std::time::Duration,
    ) -> Option<Event> {
        if !takes_over {
            return None;
        }
        let silence = silence.unwrap_or_default();
        self.failover = Some(Failover {
            peer: node.to_string(),
            heard: now.saturating_sub(silence),
            phases: vec![format!("detect {} ms ({node})", silence.as_millis())],
        });
        Some(
            Event::change("takeover", node)
                .phase("detect", silence)
                .with("peer", node),
        )
    }

    /// `node` is up again: its failover is over.
    pub fn node_up(&mut self, node: &str) {
        if self.failover.as_ref().is_some_and(|f| f.peer == node) {
            self.failover = None;
        }
    }

    pub fn fence_started(&mut self, node: &str, now: std::time::Duration) {
        self.fencing.insert(node.to_string(), now);
    }

    pub fn fenced(&mut self, node: &str, ok: bool, now: std::time::Duration) -> Option<Event> {
        let at = self.fencing.remove(node)?;
        let took = now.saturating_sub(at);
        if let Some(f) = &mut self.failover {
            f.phases
                .push(format!("fence {} ms ({node})", took.as_millis()));
        }
        Some(
            Event::change(
                if self.in_failover() {
                    "takeover"
                } else {
                    "fence"
                },
                node,
            )
            .phase("fence", took)
            .with("peer", node)
            .with("result", if ok { "ok" } else { "failed" }),
        )
    }

    /// Group `i` changed state here; returns the `started` event (and the
    /// summary of its phases, for the notify hook) when it started.
    pub fn group(
        &mut self,
        i: usize,
        id: &str,
        to: crate::wire::GroupState,
        now: std::time::Duration,
    ) -> Option<(Event, String)> {
        use crate::wire::GroupState;
        match to {
            GroupState::Starting => {
                let phases = self
                    .failover
                    .as_ref()
                    .map(|f| f.phases.clone())
                    .unwrap_or_default();
                self.groups.insert(
                    i,
                    Started {
                        at: now,
                        resources: BTreeMap::new(),
                        phases,
                    },
                );
                None
            }
            GroupState::Started => {
                let g = self.groups.remove(&i)?;
                let from = self.failover.as_ref().map_or(g.at, |f| f.heard);
                let mut e =
                    Event::change(self.kind(), id).phase("started", now.saturating_sub(from));
                if let Some(f) = &self.failover {
                    e = e.with("peer", &f.peer);
                }
                let summary = g.phases.join(", ");
                Some((e.with("phases", &summary), summary))
            }
            _ => {
                self.groups.remove(&i);
                None
            }
        }
    }

    /// Resource `r` (`spec`, `phase` from [`phase_of`]) of group `i`
    /// changed state while the group starts.
    #[allow(clippy::too_many_arguments)]
    pub fn resource(
        &mut self,
        i: usize,
        id: &str,
        r: usize,
        spec: &str,
        phase: &str,
        to: crate::wire::GroupState,
        now: std::time::Duration,
    ) -> Option<Event> {
        use crate::wire::GroupState;
        let kind = self.kind();
        let g = self.groups.get_mut(&i)?;
        match to {
            GroupState::Starting => {
                g.resources.insert(r, now);
                None
            }
            GroupState::Started | GroupState::Failed => {
                let took = now.saturating_sub(g.resources.remove(&r)?);
                g.phases
                    .push(format!("{phase} {} ms ({spec})", took.as_millis()));
                let mut e = Event::change(kind, id)
                    .phase(phase, took)
                    .with("resource", spec);
                if to == GroupState::Failed {
                    e = e.with("result", "failed");
                }
                Some(e)
            }
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn lines_and_json_carry_the_phase_and_schema() {
        let e = Event::change("takeover", "IPaddr2::192.0.2.50")
            .phase("start", Duration::from_millis(42))
            .with("resource", "rec::a b");
        let line = e.line();
        assert!(
            line.ends_with(
                " change takeover name:IPaddr2::192.0.2.50 phase:start duration_ms:42 resource:\"rec::a b\""
            ),
            "{line}"
        );
        let v = serde_json::to_value(&e).unwrap();
        assert_eq!(v["schema"], SCHEMA);
        assert_eq!(v["phase"], "start");
        assert_eq!(v["duration_ms"], 42);
        assert_eq!(v["what"], "change");
        let back: Event = serde_json::from_value(v).unwrap();
        assert_eq!(back, e);
    }

    #[tokio::test]
    async fn a_slow_subscriber_loses_the_oldest_and_never_blocks() {
        let bus = Bus::new();
        let mut rx = bus.subscribe();
        for i in 0..(CAPACITY + 10) {
            bus.publish(Event::change("node", &i.to_string()));
        }
        match rx.recv().await {
            Err(broadcast::error::RecvError::Lagged(n)) => assert_eq!(n, 10),
            other => panic!("{other:?}"),
        }
        assert_eq!(rx.recv().await.unwrap().seq, 11);
    }

    /// A peer dies, this node fences it and starts the group: every phase
    /// in order, with its duration, and `started` counted from the
    /// peer's last datagram.
    #[test]
    fn a_failover_timeline() {
        use crate::wire::GroupState::*;
        let ms = Duration::from_millis;
        let mut t = Timeline::default();
        let mut phases = Vec::new();
        let mut push = |e: Option<Event>| {
            if let Some(e) = e {
                phases.push((
                    e.kind.clone(),
                    e.phase.clone().unwrap(),
                    e.duration_ms.unwrap(),
                ));
            }
        };
        assert!(t.node_dead("n1", Some(ms(1000)), false, ms(5000)).is_none());
        push(t.node_dead("n1", Some(ms(1000)), true, ms(5000)));
        t.fence_started("n1", ms(5000));
        push(t.fenced("n1", true, ms(5200)));
        assert!(t.group(0, "g", Starting, ms(5300)).is_none());
        push(t.resource(0, "g", 0, "drbddisk::r0", "promote", Starting, ms(5300)));
        push(t.resource(0, "g", 0, "drbddisk::r0", "promote", Started, ms(5400)));
        push(t.resource(
            0,
            "g",
            1,
            "Filesystem::/dev/drbd0::/x",
            "mount",
            Starting,
            ms(5400),
        ));
        push(t.resource(
            0,
            "g",
            1,
            "Filesystem::/dev/drbd0::/x",
            "mount",
            Started,
            ms(5450),
        ));
        let (started, summary) = t.group(0, "g", Started, ms(5500)).unwrap();
        push(Some(started));
        let want: Vec<(String, String, u64)> = [
            ("detect", 1000),
            ("fence", 200),
            ("promote", 100),
            ("mount", 50),
            ("started", 1500),
        ]
        .iter()
        .map(|(p, d)| ("takeover".to_string(), p.to_string(), *d))
        .collect();
        assert_eq!(phases, want);
        assert_eq!(
            summary,
            "detect 1000 ms (n1), fence 200 ms (n1), promote 100 ms (drbddisk::r0), mount 50 ms (Filesystem::/dev/drbd0::/x)"
        );
        // Back up: a later start is no takeover.
        t.node_up("n1");
        t.group(0, "g", Starting, ms(9000));
        let (e, _) = t.group(0, "g", Started, ms(9100)).unwrap();
        assert_eq!((e.kind.as_str(), e.duration_ms), ("start", Some(100)));
    }
}
