//! The text of `hbctl status` and `hbctl jobs` (in the spirit of
//! `crm_mon -1`): pure functions from the status document to lines.

use super::{DiskSummary, Move, ProtectionStatus, Status};
use crate::disk::report;
use crate::membership::{LinkState, NodeState, NodeStatus};
use std::fmt::Write;

/// The human summary, in the spirit of `crm_mon -1`.
pub fn status(s: &Status) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "cluster {} — this node {} (hbd {}, pid {}, up {})",
        s.cluster,
        s.node,
        s.version,
        s.pid,
        ms(s.uptime_ms)
    );
    let _ = writeln!(
        out,
        "keepalive {}, deadtime {}",
        ms(s.keepalive_ms),
        ms(s.deadtime_ms)
    );
    let width = s
        .nodes
        .iter()
        .map(|n| n.name.len())
        .chain(s.ping_nodes.iter().map(|p| p.name.len()))
        .max()
        .unwrap_or(4);
    let _ = writeln!(out, "\nNodes:");
    for n in &s.nodes {
        let _ = writeln!(out, "  {}", node(n, &s.node, width));
    }
    if !s.ping_nodes.is_empty() {
        let _ = writeln!(out, "\nPing nodes:");
        for p in &s.ping_nodes {
            let state = match p.state {
                crate::ctl::PingState::Up => "up",
                crate::ctl::PingState::Dead => "dead",
                crate::ctl::PingState::Unknown => "unknown",
            };
            let members = if p.members.is_empty() {
                String::new()
            } else {
                let m: Vec<String> = p.members.iter().map(|a| a.to_string()).collect();
                format!("  ({})", m.join(", "))
            };
            let heard = p
                .last_reply_ms
                .map(|t| format!("  replied {} ago", ms(t)))
                .unwrap_or_default();
            let _ = writeln!(
                out,
                "  {:width$}  {:7}{heard}{members}",
                p.name,
                state,
                width = width
            );
        }
    }
    if let Some(p) = &s.protection {
        out.push_str(&protection(p, &s.nodes));
    }
    if !s.groups.is_empty() {
        let _ = writeln!(out, "\nResource groups:");
        for g in &s.groups {
            let place = match &g.owner {
                Some(o) => format!("{} on {o}", g.state.as_str()),
                None => g.state.as_str().to_string(),
            };
            let mut extra = Vec::new();
            extra.push(format!("home {}", g.home));
            if let Some(p) = &g.pref {
                extra.push(format!("{p} asked here"));
            }
            if let Some(n) = &g.note {
                extra.push(n.clone());
            }
            let failed: Vec<String> = g
                .nodes
                .iter()
                .filter(|(_, s)| {
                    matches!(
                        s,
                        crate::wire::GroupState::Failed | crate::wire::GroupState::StopFailed
                    )
                })
                .map(|(n, s)| format!("{} on {n}", s.as_str()))
                .collect();
            extra.extend(failed);
            if let Some(u) = &g.unhealthy {
                extra.push(format!("UNHEALTHY here: {u}"));
            }
            let others: Vec<&String> = g.unhealthy_on.iter().filter(|n| **n != s.node).collect();
            if !others.is_empty() {
                let list: Vec<&str> = others.iter().map(|n| n.as_str()).collect();
                extra.push(format!("unhealthy on {}", list.join(", ")));
            }
            let _ = writeln!(out, "  {}  {place}  ({})", g.id, extra.join("; "));
            for r in &g.resources {
                let err = labelled("error", &r.error);
                let _ = writeln!(
                    out,
                    "    {:11} {} [{}]{err}",
                    r.state.as_str(),
                    r.spec,
                    r.agent
                );
            }
            for c in &g.checks {
                let counts = match c.state {
                    crate::monitor::scheduler::Health::Idle => String::new(),
                    _ => format!("  ok {}× / failed {}×", c.successes, c.failures),
                };
                let err = labelled("last error", &c.last_error);
                let _ = writeln!(
                    out,
                    "    check {:8} {}{counts}{err}",
                    c.state.as_str(),
                    c.name
                );
            }
            for j in &g.jobs {
                let _ = writeln!(out, "    job   {}", job_line(j));
            }
            if let Some(e) = g.events.last() {
                let _ = writeln!(out, "    last event: {e}");
            }
        }
    }
    if !s.vrrp.is_empty() {
        let _ = writeln!(out, "\nVRRP instances:");
        for v in &s.vrrp {
            let prio = if v.effective_priority == v.priority {
                format!("priority {}", v.priority)
            } else {
                format!("priority {} (base {})", v.effective_priority, v.priority)
            };
            let master = v
                .master
                .as_deref()
                .map(|m| format!(", master {m}"))
                .unwrap_or_default();
            let vips = match (v.vips.is_empty(), v.state == "MASTER") {
                (true, _) => String::new(),
                (false, true) => format!(", holds {}", v.vips.join(" ")),
                (false, false) => format!(", VIPs {} (not here)", v.vips.join(" ")),
            };
            let _ = writeln!(
                out,
                "  {}  {}  vrid {} on {}, {prio}{master}{vips}",
                v.name, v.state, v.vrid, v.interface
            );
        }
    }
    if !s.disks.is_empty() {
        let _ = writeln!(out, "\nReplicated disks:");
        for d in &s.disks {
            let _ = writeln!(out, "  {}", disk(d));
        }
    }
    let dropped: Vec<String> = s
        .counters
        .dropped
        .iter()
        .filter(|(k, v)| **v > 0 && k.as_str() != "own")
        .map(|(k, v)| format!("{k} {v}"))
        .collect();
    if !dropped.is_empty() {
        let _ = writeln!(out, "\nDropped datagrams: {}", dropped.join(", "));
    }
    out
}

/// The split-brain avoidance part of status: quorum, witness, ping
/// tiebreaker, failure timeout, fencing.
pub fn protection(p: &ProtectionStatus, nodes: &[NodeStatus]) -> String {
    let mut out = String::from("\nSplit-brain protection:\n");
    let q = &p.quorum;
    if q.protected {
        let _ = writeln!(
            out,
            "  quorum:          {} ({} of {} votes needed{}){}",
            if q.has { "yes" } else { "NO" },
            q.votes,
            q.needed,
            if p.wait_for_all { ", wait_for_all" } else { "" },
            if q.why.is_empty() {
                String::new()
            } else {
                format!(": {}", q.why)
            }
        );
    } else {
        let _ = writeln!(
            out,
            "  quorum:          no quorum protection: a partition can run groups on both nodes"
        );
    }
    if let Some(w) = &p.witness {
        let state = if p.is_witness {
            "this node".to_string()
        } else {
            nodes
                .iter()
                .find(|n| n.name == *w)
                .map_or("unknown", |n| match n.state {
                    NodeState::Up => "reachable",
                    NodeState::Dead => "UNREACHABLE",
                    NodeState::Unknown => "not heard yet",
                })
                .to_string()
        };
        let _ = writeln!(out, "  witness:         {w} ({state})");
    }
    match &p.tiebreaker {
        Some(t) => {
            let settled = t
                .settled
                .map_or("not settled yet".to_string(), |n| format!("settled {n}"));
            let _ = writeln!(
                out,
                "  ping tiebreaker: this node reaches {} of {} ping nodes ({settled}, settle {})",
                t.reached,
                t.ping_nodes,
                ms(t.settle_ms)
            );
            for (node, n) in &t.nodes {
                let _ = writeln!(out, "    {node}: reaches {n}");
            }
        }
        None if !p.is_witness => {
            let _ = writeln!(out, "  ping tiebreaker: off");
        }
        None => {}
    }
    if !p.is_witness {
        let _ = writeln!(
            out,
            "  failure timeout: {}",
            p.failure_timeout_ms
                .map_or("none (only hbctl clear)".to_string(), ms)
        );
        let _ = writeln!(
            out,
            "  fencing:         {}{}",
            if p.fencing { "stonith" } else { "none" },
            if p.builtin_outdater {
                "; peer outdater built in (dopd)"
            } else {
                ""
            }
        );
    }
    out
}

/// One replicated disk: `r0  Primary/Secondary  UpToDate/UpToDate  Connected`.
pub fn disk(d: &DiskSummary) -> String {
    let mut line = format!(
        "{}  {}/{}  {}/{}  {}",
        d.name, d.role, d.peer_role, d.disk, d.peer_disk, d.connection
    );
    if let Some(p) = d.sync_percent {
        line.push_str(&format!("  sync'ed {p:.1}%"));
    }
    if d.out_of_sync_bytes > 0 {
        line.push_str(&format!(
            "  out of sync {}",
            report::bytes(d.out_of_sync_bytes)
        ));
    }
    if d.split_brain {
        line.push_str("  SPLIT BRAIN (hbctl split-brain)");
    }
    if let Some(e) = &d.error {
        line.push_str(&format!("  ({e})"));
    }
    line
}

/// One node: name, state, when it was heard, its links.
pub fn node(n: &NodeStatus, me: &str, width: usize) -> String {
    let mut detail = String::new();
    if n.name == me {
        detail.push_str("this node");
    } else if let Some(ms_ago) = n.last_heard_ms {
        detail.push_str(&format!("heard {} ago", ms(ms_ago)));
    } else {
        detail.push_str("never heard");
    }
    if let Some(r) = n.dead_reason {
        detail.push_str(&format!(
            ", {}",
            match r {
                crate::membership::DeadReason::Timeout => "deadtime passed",
                crate::membership::DeadReason::NeverHeard => "not heard within initdead",
                crate::membership::DeadReason::Left => "left the cluster",
            }
        ));
    }
    let links: Vec<String> = n
        .links
        .iter()
        .map(|l| format!("{}: {}", l.medium, link_state(l.state)))
        .collect();
    format!(
        "{:width$}  {:7}  {:28}  {}",
        n.name,
        node_state(n.state),
        detail,
        links.join(", "),
        width = width
    )
}

/// What `hbctl standby`, `takeover` and `clear` print: the groups
/// accepted, or where each one ended up.
pub fn moves(groups: &[String], moves: &[Move]) -> String {
    let mut out = String::new();
    if moves.is_empty() {
        let _ = writeln!(out, "accepted: {}", groups.join(", "));
    }
    for m in moves {
        match (&m.from, &m.to) {
            (_, Some(to)) if m.state == crate::wire::GroupState::Started => {
                let _ = writeln!(out, "{}: now runs on {to}", m.group);
            }
            (_, None) => {
                let _ = writeln!(
                    out,
                    "{}: {} here; no other node can run it",
                    m.group,
                    m.state.as_str()
                );
            }
            (_, Some(to)) => {
                let _ = writeln!(out, "{}: {} on {to}", m.group, m.state.as_str());
            }
        }
    }
    out
}

/// `hbctl jobs`: every group's jobs, one a line.
pub fn jobs(s: &Status) -> String {
    let mut out = String::new();
    for g in s.groups.iter().filter(|g| !g.jobs.is_empty()) {
        let place = g.owner.as_deref().unwrap_or("no node");
        let _ = writeln!(out, "{} (runs on {place}):", g.id);
        for j in &g.jobs {
            let _ = writeln!(out, "  {}", job_line(j));
        }
    }
    if out.is_empty() {
        out.push_str("no jobs ([[job]] in cluster.toml)\n");
    }
    out
}

/// One job: name, schedule, last run, next time.
pub fn job_line(j: &crate::jobs::JobStatus) -> String {
    let last = match (j.last_scheduled, &j.last_summary, j.running) {
        (_, _, true) => "running now".to_string(),
        (Some(t), Some(sum), _) => format!("last {} ({sum})", when(t)),
        (Some(t), None, _) => format!("last {}", when(t)),
        (None, _, _) => "never ran".to_string(),
    };
    let next = match (j.next, j.active) {
        (Some(t), true) => format!("next {}", when(t)),
        (Some(t), false) => format!("next {} where the group runs", when(t)),
        (None, _) => "no next time".to_string(),
    };
    format!("{}  [{}]  {last}; {next}", j.name, j.schedule)
}

/// A node's state as `hbctl nodestatus` prints it.
pub fn node_state(s: NodeState) -> &'static str {
    match s {
        NodeState::Up => "up",
        NodeState::Dead => "dead",
        NodeState::Unknown => "unknown",
    }
}

/// A link's state as `hbctl links` prints it.
pub fn link_state(s: LinkState) -> &'static str {
    match s {
        LinkState::Up => "up",
        LinkState::Dead => "dead",
        LinkState::Unknown => "unknown",
    }
}

/// A unix time as the machine's local civil time.
fn when(t: i64) -> String {
    crate::jobs::cron::local_civil(t).to_string()
}

/// `  LABEL: VALUE` when there is a value.
fn labelled(label: &str, value: &Option<String>) -> String {
    value
        .as_ref()
        .map(|v| format!("  {label}: {v}"))
        .unwrap_or_default()
}

fn ms(ms: u64) -> String {
    if ms < 10_000 {
        format!("{ms}ms")
    } else {
        format!("{:.1}s", ms as f64 / 1000.0)
    }
}

/// `hbctl status --check`'s verdict (Nagios plugin exit codes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Health {
    /// 0: every node and link up, every group running, every disk in sync.
    Ok = 0,
    /// 1: still serving, with less redundancy: a peer or a link dead, a
    /// group unhealthy, a disk not connected or not up to date, a ping
    /// node dead, no quorum.
    Degraded = 1,
    /// 2: not serving as configured: a group failed or running nowhere, a
    /// disk in split brain (or hbd not running).
    Failed = 2,
}

impl Health {
    pub fn code(self) -> u8 {
        self as u8
    }

    pub fn word(self) -> &'static str {
        match self {
            Health::Ok => "OK",
            Health::Degraded => "WARNING",
            Health::Failed => "CRITICAL",
        }
    }
}

/// The verdict and a one-line summary, as a Nagios plugin prints it
/// (`HBD WARNING - node n2 dead; ...`).
pub fn check(s: &Status) -> (Health, String) {
    use crate::wire::GroupState;
    let mut worst = Health::Ok;
    let mut why: Vec<String> = Vec::new();
    let mut note = |h: Health, w: String, why: &mut Vec<String>| {
        worst = worst.max(h);
        why.push(w);
    };
    for g in &s.groups {
        match g.state {
            GroupState::Failed | GroupState::StopFailed => note(
                Health::Failed,
                format!("group {} {}", g.id, g.state.as_str()),
                &mut why,
            ),
            _ if g.owner.is_none() && g.desired.is_some() => note(
                Health::Failed,
                format!("group {} runs nowhere", g.id),
                &mut why,
            ),
            _ => {}
        }
        if let Some(u) = &g.unhealthy {
            note(
                Health::Degraded,
                format!("group {} unhealthy: {u}", g.id),
                &mut why,
            );
        }
    }
    for d in &s.disks {
        if d.split_brain {
            note(
                Health::Failed,
                format!("disk {} split brain", d.name),
                &mut why,
            );
        } else if d.error.is_some() {
            note(
                Health::Degraded,
                format!("disk {} not up", d.name),
                &mut why,
            );
        } else if d.connection != "Connected" || d.disk != "UpToDate" || d.peer_disk != "UpToDate" {
            note(
                Health::Degraded,
                format!(
                    "disk {} {} {}/{}",
                    d.name, d.connection, d.disk, d.peer_disk
                ),
                &mut why,
            );
        }
    }
    for n in s.nodes.iter().filter(|n| n.name != s.node) {
        if n.state != NodeState::Up {
            note(
                Health::Degraded,
                format!("node {} {}", n.name, node_state(n.state)),
                &mut why,
            );
            continue;
        }
        for l in n.links.iter().filter(|l| l.state != LinkState::Up) {
            note(
                Health::Degraded,
                format!("link {} {} {}", n.name, l.medium, link_state(l.state)),
                &mut why,
            );
        }
    }
    for v in s.vrrp.iter().filter(|v| v.state == "FAULT") {
        note(Health::Degraded, format!("VRRP {} FAULT", v.name), &mut why);
    }
    for p in &s.ping_nodes {
        if p.state == super::PingState::Dead {
            note(
                Health::Degraded,
                format!("ping node {} dead", p.name),
                &mut why,
            );
        }
    }
    if let Some(p) = &s.protection {
        if p.quorum.protected && !p.quorum.has {
            note(
                Health::Degraded,
                format!("no quorum: {}", p.quorum.why),
                &mut why,
            );
        }
    }
    let line = if why.is_empty() {
        let up = s.nodes.iter().filter(|n| n.state == NodeState::Up).count();
        let started = s
            .groups
            .iter()
            .filter(|g| g.state == GroupState::Started)
            .count();
        format!(
            "HBD OK - {up}/{} nodes up, {started}/{} groups started, {} disks in sync",
            s.nodes.len(),
            s.groups.len(),
            s.disks.len()
        )
    } else {
        format!("HBD {} - {}", worst.word(), why.join("; "))
    };
    (worst, line)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ctl::{GroupStatus, ResourceStatus, TiebreakerStatus};
    use crate::membership::{Counters, LinkStatus};
    use crate::wire::GroupState;

    fn two_nodes() -> Status {
        Status {
            node: "a".into(),
            cluster: "c1".into(),
            version: "0.1.0".into(),
            pid: 42,
            incarnation: 1,
            uptime_ms: 12_500,
            keepalive_ms: 200,
            deadtime_ms: 1000,
            nodes: vec![
                NodeStatus {
                    name: "a".into(),
                    state: NodeState::Up,
                    links: vec![LinkStatus {
                        medium: "bcast eth0".into(),
                        state: LinkState::Up,
                    }],
                    incarnation: Some(1),
                    last_heard_ms: None,
                    dead_reason: None,
                },
                NodeStatus {
                    name: "b".into(),
                    state: NodeState::Dead,
                    links: vec![LinkStatus {
                        medium: "bcast eth0".into(),
                        state: LinkState::Dead,
                    }],
                    incarnation: Some(7),
                    last_heard_ms: Some(1500),
                    dead_reason: Some(crate::membership::DeadReason::Timeout),
                },
            ],
            ping_nodes: Vec::new(),
            groups: Vec::new(),
            disks: Vec::new(),
            vrrp: Vec::new(),
            counters: Counters::default(),
            protection: None,
        }
    }

    /// `hbctl status --check`: 0 with everything up, 1 with a peer dead
    /// but the groups served, 2 with a group failed or a split brain.
    #[test]
    fn check_verdicts() {
        let mut s = two_nodes();
        let g = GroupStatus {
            id: "g1".into(),
            home: "a".into(),
            owner: Some("a".into()),
            state: GroupState::Started,
            local: GroupState::Started,
            nodes: Default::default(),
            desired: Some("a".into()),
            pref: None,
            note: None,
            resources: Vec::new(),
            unhealthy: None,
            unhealthy_on: Vec::new(),
            events: Vec::new(),
            checks: Vec::new(),
            jobs: Vec::new(),
        };
        s.groups.push(g.clone());
        let (h, line) = check(&s);
        assert_eq!((h, h.code()), (Health::Degraded, 1));
        assert_eq!(line, "HBD WARNING - node b dead");
        s.nodes[1].state = NodeState::Up;
        let (h, line) = check(&s);
        assert_eq!((h, h.code()), (Health::Degraded, 1), "{line}");
        assert_eq!(line, "HBD WARNING - link b bcast eth0 dead");
        s.nodes[1].links[0].state = LinkState::Up;
        let (h, line) = check(&s);
        assert_eq!((h, h.code()), (Health::Ok, 0));
        assert_eq!(
            line,
            "HBD OK - 2/2 nodes up, 1/1 groups started, 0 disks in sync"
        );
        s.disks.push(DiskSummary::unanswered("r0", "not up".into()));
        assert_eq!(check(&s).0, Health::Degraded);
        s.disks[0].split_brain = true;
        assert_eq!(check(&s).0, Health::Failed);
        s.disks.clear();
        s.groups[0].state = GroupState::Failed;
        s.nodes[1].state = NodeState::Dead;
        let (h, line) = check(&s);
        assert_eq!((h, h.code()), (Health::Failed, 2));
        assert_eq!(line, "HBD CRITICAL - group g1 failed; node b dead");
        s.groups[0] = GroupStatus {
            owner: None,
            state: GroupState::Stopped,
            ..g
        };
        assert_eq!(
            check(&s).1,
            "HBD CRITICAL - group g1 runs nowhere; node b dead"
        );
    }

    #[test]
    fn status_text() {
        let mut s = two_nodes();
        s.groups.push(GroupStatus {
            id: "IPaddr::192.0.2.100".into(),
            home: "a".into(),
            owner: Some("a".into()),
            state: GroupState::Started,
            local: GroupState::Started,
            nodes: Default::default(),
            desired: Some("a".into()),
            pref: None,
            note: None,
            resources: vec![ResourceStatus {
                spec: "IPaddr::192.0.2.100".into(),
                agent: "builtin".into(),
                state: GroupState::Started,
                error: None,
            }],
            unhealthy: None,
            unhealthy_on: vec!["b".into()],
            events: Vec::new(),
            checks: Vec::new(),
            jobs: Vec::new(),
        });
        s.counters.dropped.insert("auth".into(), 3);
        s.counters.dropped.insert("own".into(), 9);
        let text = status(&s);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines[..5],
            [
                "cluster c1 — this node a (hbd 0.1.0, pid 42, up 12.5s)",
                "keepalive 200ms, deadtime 1000ms",
                "",
                "Nodes:",
                "  a  up       this node                     bcast eth0: up",
            ],
            "{text}"
        );
        assert_eq!(
            lines[5],
            "  b  dead     heard 1500ms ago, deadtime passed  bcast eth0: dead"
        );
        assert!(
            text.contains(
                "\nResource groups:\n  IPaddr::192.0.2.100  started on a  \
                 (home a; unhealthy on b)\n    started     IPaddr::192.0.2.100 [builtin]\n"
            ),
            "{text}"
        );
        assert!(text.ends_with("\nDropped datagrams: auth 3\n"), "{text}");
        assert!(!text.contains("Split-brain protection"), "{text}");
        assert_eq!(jobs(&s), "no jobs ([[job]] in cluster.toml)\n");
    }

    #[test]
    fn moves_lines() {
        let groups = vec!["g1".to_string(), "g2".to_string()];
        assert_eq!(moves(&groups, &[]), "accepted: g1, g2\n");
        let m = |group: &str, to: Option<&str>, state| Move {
            group: group.into(),
            from: Some("a".into()),
            to: to.map(Into::into),
            state,
        };
        assert_eq!(
            moves(
                &groups,
                &[
                    m("g1", Some("b"), GroupState::Started),
                    m("g2", None, GroupState::Failed),
                    m("g3", Some("b"), GroupState::Starting),
                ]
            ),
            format!(
                "g1: now runs on b\ng2: {} here; no other node can run it\ng3: {} on b\n",
                GroupState::Failed.as_str(),
                GroupState::Starting.as_str()
            )
        );
    }

    #[test]
    fn status_lists_disks() {
        let mut d = DiskSummary {
            name: "r0".into(),
            role: "Primary".into(),
            peer_role: "Secondary".into(),
            disk: "UpToDate".into(),
            peer_disk: "UpToDate".into(),
            connection: "SyncSource".into(),
            out_of_sync_bytes: 0,
            sync_percent: None,
            split_brain: false,
            error: None,
        };
        d.sync_percent = Some(31.44);
        d.out_of_sync_bytes = 3 << 20;
        assert_eq!(
            disk(&d),
            "r0  Primary/Secondary  UpToDate/UpToDate  SyncSource  sync'ed 31.4%  out of sync 3.0MiB"
        );
        let mut s = two_nodes();
        s.disks = vec![d, DiskSummary::unanswered("r1", "not up".into())];
        assert!(
            status(&s).ends_with(
                "\nReplicated disks:\n  r0  Primary/Secondary  UpToDate/UpToDate  SyncSource  \
                 sync'ed 31.4%  out of sync 3.0MiB\n  \
                 r1  Unknown/Unknown  DUnknown/DUnknown  Unconfigured  (not up)\n"
            ),
            "{}",
            status(&s)
        );
    }

    #[test]
    fn protection_lines() {
        let mut p = ProtectionStatus {
            is_witness: false,
            witness: None,
            wait_for_all: false,
            quorum: crate::groups::QuorumView {
                protected: false,
                has: true,
                votes: 1,
                needed: 1,
                why: String::new(),
            },
            tiebreaker: None,
            failure_timeout_ms: Some(60_000),
            fencing: false,
            builtin_outdater: true,
        };
        assert_eq!(
            protection(&p, &[]),
            "\nSplit-brain protection:\n\
             \x20 quorum:          no quorum protection: a partition can run groups on both nodes\n\
             \x20 ping tiebreaker: off\n\
             \x20 failure timeout: 60.0s\n\
             \x20 fencing:         none; peer outdater built in (dopd)\n"
        );
        p.witness = Some("w1".into());
        p.wait_for_all = true;
        p.quorum = crate::groups::QuorumView {
            protected: true,
            has: false,
            votes: 1,
            needed: 2,
            why: "peer n2 and witness w1 unreachable".into(),
        };
        p.tiebreaker = Some(TiebreakerStatus {
            settle_ms: 3000,
            ping_nodes: 2,
            reached: 1,
            settled: None,
            nodes: Default::default(),
        });
        p.failure_timeout_ms = None;
        let out = protection(&p, &[]);
        assert!(out.contains("  quorum:          NO (1 of 2 votes needed, wait_for_all): peer n2 and witness w1 unreachable\n"), "{out}");
        assert!(out.contains("  witness:         w1 (unknown)\n"), "{out}");
        assert!(out.contains("  ping tiebreaker: this node reaches 1 of 2 ping nodes (not settled yet, settle 3000ms)\n"), "{out}");
        assert!(
            out.contains("  failure timeout: none (only hbctl clear)\n"),
            "{out}"
        );
    }
}
