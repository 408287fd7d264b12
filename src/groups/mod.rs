//! Resource-group ownership as a state machine without I/O.
//!
//! Inputs: membership events (a node up with its incarnation, a node dead),
//! group reports from peers, results of the runtime's work (probes, starts,
//! stops), operator commands and the passage of time. Outputs: the report to
//! broadcast, work for the runtime (probe, start or stop a group) and events
//! to log.
//!
//! # Protocol
//!
//! Every node broadcasts a [`GroupReport`]: for each group its local state,
//! its claim, its grant and the operator's preference. Each node computes the
//! *desired owner* of every group from the same inputs (see
//! [`Groups::desired`]), so nodes that hear each other agree on it.
//!
//! Safety rests on claims and grants: a node starts a group only when
//! - it is the desired owner and claims the group (claim number `c`), and
//! - every other node that is not dead has reported, from its current
//!   incarnation, that it does not run the group and grants it to exactly this
//!   node, incarnation and claim `c`.
//!
//! A node grants a group to one node at a time and keeps that grant while the
//! grantee is up and still claims it (or runs it); it withdraws it only after
//! a report from the grantee shows the claim abandoned, or when the grantee
//! is dead. A node that runs a group (starting, started, stopping,
//! stop-failed) grants it to nobody else. A claim abandoned is never reused,
//! so an old grant can never start a group. Until a node has probed its
//! resources (`ready`) and until every peer is either up with a ready report
//! or dead (initdead), nothing starts: two nodes booting together never both
//! start a group.
//!
//! A node that is declared dead loses its grants at once: the survivors take
//! over (heartbeat's behaviour; fencing comes with the disk layer). When a
//! partition heals and two nodes run a group, the *keeper* is the group's home
//! node if it is one of them, else the node first in ha.cf's node list; the
//! other stops it.
//!
//! # Desired owner (in order)
//! 1. a node where the group is `stop-failed` (it may still run there:
//!    nobody else may start it);
//! 2. with two holders (a healed partition), the keeper;
//! 3. the node with the newest `hbctl takeover` for it;
//! 4. among the eligible nodes (up, ready, not leaving, not failed for the
//!    group) preferring those without an `hbctl standby` for it: the home node
//!    with `auto_failback on`; else the current holder; else the home node;
//!    else the first in node-list order.

#[cfg(test)]
mod sim;
#[cfg(test)]
mod tests;

pub use crate::wire::{Grant, GroupEntry, GroupReport, GroupState, Heard, Pref};
use serde::{Deserialize, Serialize};
use std::time::Duration;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupDef {
    pub id: String,
    /// The preferred node.
    pub home: String,
}

#[derive(Debug, Clone)]
pub struct GroupsConfig {
    /// This node.
    pub node: String,
    /// Every node, in ha.cf order.
    pub nodes: Vec<String>,
    pub groups: Vec<GroupDef>,
    /// `auto_failback on` (and `legacy`).
    pub auto_failback: bool,
    /// The report is sent again this often even when nothing changed.
    pub resend: Duration,
    /// Membership's deadtime: a peer that has not heard this node for this
    /// long may declare it dead and withdraw its grants.
    pub deadtime: Duration,
}

/// Which groups `hbctl standby` / `takeover` act on (hb_standby's words).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    All,
    /// Groups whose home is this node.
    Local,
    /// Groups whose home is another node.
    Foreign,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// Give the groups up to another node.
    Standby(Scope),
    /// Run the groups here.
    Takeover(Scope),
    /// Forget that the group failed here (or was stop-failed on a node that left).
    Clear(String),
}

/// What a probe of a group's resources found at start-up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Probe {
    /// Every resource runs.
    Running,
    /// None runs.
    Stopped,
    /// Some run: they are stopped before anything else.
    Partial,
}

/// How a start or stop the runtime ran ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpResult {
    Started,
    /// A resource failed to start; `rolled_back` when the ones before it were
    /// stopped again.
    StartFailed {
        rolled_back: bool,
    },
    Stopped,
    /// Still failing after the runtime's retries.
    StopFailed,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// Broadcast this report.
    Send(GroupReport),
    /// Ask every resource of group `i` for its status, then call
    /// [`Groups::on_probe`].
    Probe(usize),
    /// Start group `i` (left to right), then call [`Groups::on_done`].
    Start(usize),
    /// Stop group `i` (right to left), then call [`Groups::on_done`].
    Stop(usize),
    Event(GroupEvent),
}

/// A local state change, with why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupEvent {
    pub group: String,
    pub from: GroupState,
    pub to: GroupState,
    pub reason: String,
}

/// A peer as membership reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Life {
    /// Not heard yet, initdead not over.
    Unknown,
    Up(u64),
    Dead,
}

#[derive(Debug, Clone)]
struct Peer {
    name: String,
    life: Life,
    /// The latest report of its current incarnation.
    report: Option<GroupReport>,
}

#[derive(Debug, Clone)]
struct Local {
    state: GroupState,
    claim: u32,
    grant: Option<Grant>,
    pref: Pref,
    /// Stop-failed on this node that left: nobody may start it until cleared.
    blocked_by: Option<String>,
    /// A probe found it partly running: the stop under way is a clean-up.
    probe_pending: bool,
    /// Its checks failed here (why): it runs here only if no healthy node can.
    unhealthy: Option<String>,
}

/// The state of one group as seen from here, for status.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupView {
    pub id: String,
    pub home: String,
    /// The node that runs it (starting, started, stopping or stop-failed), if any.
    pub owner: Option<String>,
    /// The owner's state, or this node's when nobody runs it.
    pub state: GroupState,
    /// This node's state.
    pub local: GroupState,
    /// Every node's state as last reported, this one included (dead and
    /// not-yet-reported nodes left out).
    pub nodes: Vec<(String, GroupState)>,
    /// Where it should run now, when somewhere.
    pub desired: Option<String>,
    /// This node's operator preference: `standby` or `takeover`.
    pub pref: Option<String>,
    /// Why it runs nowhere, when that is known.
    pub note: Option<String>,
    /// Nodes where its checks failed (this one included).
    pub unhealthy_on: Vec<String>,
}

/// How a command stands (see [`Groups::progress`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Progress {
    Pending,
    Done(Vec<Move>),
    Failed(String),
}

/// One group that moved (or did not), for the answer to a command.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Move {
    pub group: String,
    pub from: Option<String>,
    pub to: Option<String>,
    pub state: GroupState,
}

pub struct Groups {
    cfg: GroupsConfig,
    incarnation: u64,
    peers: Vec<Peer>,
    local: Vec<Local>,
    probes_pending: usize,
    leaving: bool,
    last_claim: u32,
    outputs: Vec<Output>,
    last_sent: Option<GroupReport>,
    next_resend: Duration,
    marks: Vec<crate::wire::JobMark>,
    /// Number of the last report sent, and when recent ones were sent.
    report_no: u64,
    sent_at: std::collections::VecDeque<(u64, Duration)>,
    /// The latest `now` the machine was given.
    latest: Duration,
}

/// How many recent reports' send times are kept for leases.
const SENT_REMEMBERED: usize = 256;

impl Groups {
    /// A machine for a node that started at `now`. It asks for a probe of
    /// every group first and takes part once they are all answered.
    pub fn new(cfg: GroupsConfig, incarnation: u64, now: Duration) -> Groups {
        let peers = cfg
            .nodes
            .iter()
            .filter(|n| **n != cfg.node)
            .map(|n| Peer {
                name: n.clone(),
                life: Life::Unknown,
                report: None,
            })
            .collect();
        let local = cfg
            .groups
            .iter()
            .map(|_| Local {
                state: GroupState::Stopped,
                claim: 0,
                grant: None,
                pref: Pref::None,
                blocked_by: None,
                probe_pending: true,
                unhealthy: None,
            })
            .collect();
        let mut g = Groups {
            probes_pending: cfg.groups.len(),
            outputs: (0..cfg.groups.len()).map(Output::Probe).collect(),
            cfg,
            incarnation,
            peers,
            local,
            leaving: false,
            last_claim: 0,
            last_sent: None,
            next_resend: now,
            marks: Vec::new(),
            report_no: 0,
            sent_at: std::collections::VecDeque::new(),
            latest: now,
        };
        g.decide(now);
        g
    }

    /// Every probe answered.
    pub fn ready(&self) -> bool {
        self.probes_pending == 0
    }

    pub fn take_outputs(&mut self) -> Vec<Output> {
        std::mem::take(&mut self.outputs)
    }

    /// This node's state of group `i`.
    pub fn local_state(&self, i: usize) -> GroupState {
        self.local[i].state
    }

    pub fn group_index(&self, id: &str) -> Option<usize> {
        self.cfg.groups.iter().position(|g| g.id == id)
    }

    /// When [`Groups::tick`] next has work: the next periodic report.
    pub fn next_deadline(&self) -> Duration {
        self.next_resend
    }

    /// Time passes: resends the report when due.
    pub fn tick(&mut self, now: Duration) {
        self.decide(now);
    }

    /// Membership says `node` is up with `incarnation` (first heard, or restarted).
    pub fn on_node_up(&mut self, node: &str, incarnation: u64, now: Duration) {
        if let Some(p) = self.peers.iter_mut().find(|p| p.name == node) {
            if p.life != Life::Up(incarnation) {
                p.life = Life::Up(incarnation);
                p.report = None;
            }
        }
        self.decide(now);
    }

    /// Membership says `node` is dead; `left` when it said so itself.
    pub fn on_node_dead(&mut self, node: &str, left: bool, now: Duration) {
        let Some(pi) = self.peers.iter().position(|p| p.name == node) else {
            return;
        };
        let last = self.peers[pi].report.take();
        self.peers[pi].life = Life::Dead;
        if left {
            // It may have left with a group it could not stop.
            if let Some(r) = last {
                for e in r
                    .groups
                    .iter()
                    .filter(|e| e.state == GroupState::StopFailed)
                {
                    if let Some(i) = self.group_index(&e.id) {
                        self.local[i].blocked_by = Some(node.to_string());
                    }
                }
            }
        }
        self.decide(now);
    }

    /// A report from `node`'s `incarnation`.
    pub fn on_report(&mut self, node: &str, incarnation: u64, report: GroupReport, now: Duration) {
        let Some(p) = self.peers.iter_mut().find(|p| p.name == node) else {
            return;
        };
        match p.life {
            Life::Up(i) if i == incarnation => {}
            Life::Up(i) if i > incarnation => return,
            _ => {
                p.life = Life::Up(incarnation);
            }
        }
        p.report = Some(report);
        self.decide(now);
    }

    /// The probe of group `i` at start-up.
    pub fn on_probe(&mut self, i: usize, probe: Probe, now: Duration) {
        let Some(l) = self.local.get_mut(i) else {
            return;
        };
        if !l.probe_pending {
            return;
        }
        l.probe_pending = false;
        self.probes_pending -= 1;
        match probe {
            Probe::Stopped => {}
            Probe::Running => {
                self.transition(i, GroupState::Started, "found running at start-up".into())
            }
            Probe::Partial => {
                self.transition(
                    i,
                    GroupState::Stopping,
                    "found partly running at start-up: stopping what runs".into(),
                );
                self.outputs.push(Output::Stop(i));
            }
        }
        self.decide(now);
    }

    /// The start or stop of group `i` ended.
    pub fn on_done(&mut self, i: usize, result: OpResult, now: Duration) {
        let Some(l) = self.local.get(i) else {
            return;
        };
        let from = l.state;
        let (to, why) = match (from, result) {
            (GroupState::Starting, OpResult::Started) => (GroupState::Started, "started"),
            (GroupState::Starting, OpResult::StartFailed { rolled_back: true }) => (
                GroupState::Failed,
                "start failed and was rolled back: hbctl clear to allow it here again",
            ),
            (GroupState::Starting, OpResult::StartFailed { rolled_back: false }) => (
                GroupState::StopFailed,
                "start failed and the roll-back failed too: it may still run here",
            ),
            (GroupState::Stopping, OpResult::Stopped) => (GroupState::Stopped, "stopped"),
            (GroupState::Stopping, OpResult::StopFailed) => (
                GroupState::StopFailed,
                "stop failed: it may still run here, so it starts nowhere else",
            ),
            _ => return,
        };
        self.local[i].claim = 0;
        self.local[i].grant = None;
        self.transition(i, to, why.into());
        self.decide(now);
    }

    /// The group's checks failed here (`Some(why)`) or pass again (`None`).
    /// An unhealthy node gives the group to a healthy one when there is
    /// one; when every node is unhealthy the group stays where it runs.
    pub fn set_unhealthy(&mut self, i: usize, why: Option<String>, now: Duration) {
        if let Some(l) = self.local.get_mut(i) {
            if l.unhealthy != why {
                l.unhealthy = why;
                self.decide(now);
            }
        }
    }

    pub fn unhealthy(&self, i: usize) -> Option<&str> {
        self.local.get(i).and_then(|l| l.unhealthy.as_deref())
    }

    /// The job marks to carry in the report (see [`crate::wire::JobMark`]).
    pub fn set_marks(&mut self, marks: Vec<crate::wire::JobMark>, now: Duration) {
        if self.marks != marks {
            self.marks = marks;
            self.decide(now);
        }
    }

    /// Orderly shutdown: every group is stopped and offered to the peers.
    /// [`Groups::quiescent`] says when the runtime may leave.
    pub fn leave(&mut self, now: Duration) {
        self.leaving = true;
        self.decide(now);
    }

    /// Nothing runs here and no work is under way (after [`Groups::leave`]:
    /// time to go).
    pub fn quiescent(&self) -> bool {
        self.local.iter().all(|l| {
            !matches!(
                l.state,
                GroupState::Starting | GroupState::Started | GroupState::Stopping
            )
        })
    }

    /// An operator command. `Ok` names the groups it acts on; `Err` says why
    /// nothing can be done (and nothing was changed).
    pub fn command(&mut self, cmd: &Command, now: Duration) -> Result<Vec<usize>, String> {
        if !self.ready() {
            return Err("this node is still probing its resources; try again in a moment".into());
        }
        if self.leaving {
            return Err("this node is shutting down".into());
        }
        let r = match cmd {
            Command::Standby(scope) => self.standby(*scope),
            Command::Takeover(scope) => self.takeover(*scope),
            Command::Clear(id) => self.clear(id),
        };
        self.decide(now);
        r
    }

    fn in_scope(&self, scope: Scope) -> Vec<usize> {
        (0..self.cfg.groups.len())
            .filter(|&i| {
                let home = self.cfg.groups[i].home == self.cfg.node;
                match scope {
                    Scope::All => true,
                    Scope::Local => home,
                    Scope::Foreign => !home,
                }
            })
            .collect()
    }

    fn next_version(&self, i: usize) -> u32 {
        let id = &self.cfg.groups[i].id;
        let peers = self
            .peers
            .iter()
            .filter_map(|p| p.report.as_ref())
            .filter_map(|r| r.groups.iter().find(|e| e.id == *id))
            .map(|e| e.pref.version());
        peers
            .chain(std::iter::once(self.local[i].pref.version()))
            .max()
            .unwrap_or(0)
            .saturating_add(1)
    }

    fn standby(&mut self, scope: Scope) -> Result<Vec<usize>, String> {
        let groups = self.in_scope(scope);
        if groups.is_empty() {
            return Err(format!("no {} groups", scope_word(scope)));
        }
        let up: Vec<&Peer> = self
            .peers
            .iter()
            .filter(|p| matches!(p.life, Life::Up(_)))
            .collect();
        if up.is_empty() {
            return Err(if self.peers.is_empty() {
                "no other node in the cluster".to_string()
            } else {
                format!(
                    "no other node is up ({}): nothing can move",
                    self.peers
                        .iter()
                        .map(|p| p.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            });
        }
        let mut busy = Vec::new();
        let mut nowhere = Vec::new();
        for &i in &groups {
            let id = &self.cfg.groups[i].id;
            match self.local[i].state {
                GroupState::Starting | GroupState::Stopping => busy.push(id.clone()),
                GroupState::Started => {
                    let takers = up.iter().any(|p| {
                        p.report.as_ref().is_some_and(|r| {
                            r.ready
                                && !r.leaving
                                && r.groups
                                    .iter()
                                    .any(|e| e.id == *id && matches!(e.state, GroupState::Stopped))
                        })
                    });
                    if !takers {
                        nowhere.push(id.clone());
                    }
                }
                _ => {}
            }
        }
        if !busy.is_empty() {
            return Err(format!("a transition is in progress: {}", busy.join(", ")));
        }
        let held = groups
            .iter()
            .filter(|&&i| self.local[i].state == GroupState::Started)
            .count();
        if held > 0 && nowhere.len() == held {
            return Err(format!(
                "no other node can run {}: failed or unhealthy there, or not ready",
                nowhere.join(", ")
            ));
        }
        for &i in &groups {
            let v = self.next_version(i);
            self.local[i].pref = Pref::Refuse(v);
        }
        Ok(groups)
    }

    fn takeover(&mut self, scope: Scope) -> Result<Vec<usize>, String> {
        let groups = self.in_scope(scope);
        if groups.is_empty() {
            return Err(format!("no {} groups", scope_word(scope)));
        }
        let mut failed = Vec::new();
        let mut busy = Vec::new();
        for &i in &groups {
            let id = &self.cfg.groups[i].id;
            match self.local[i].state {
                GroupState::Failed | GroupState::StopFailed => failed.push(id.clone()),
                GroupState::Starting | GroupState::Stopping => busy.push(id.clone()),
                _ => {}
            }
            for p in &self.peers {
                if let Some(e) = p
                    .report
                    .as_ref()
                    .and_then(|r| r.groups.iter().find(|e| e.id == *id))
                {
                    if matches!(e.state, GroupState::Starting | GroupState::Stopping) {
                        busy.push(format!("{id} on {}", p.name));
                    }
                }
            }
        }
        if !failed.is_empty() && failed.len() == groups.len() {
            return Err(format!(
                "failed on this node: {} (hbctl clear GROUP first)",
                failed.join(", ")
            ));
        }
        if !busy.is_empty() {
            return Err(format!("a transition is in progress: {}", busy.join(", ")));
        }
        for &i in &groups {
            let v = self.next_version(i);
            self.local[i].pref = Pref::Want(v);
        }
        Ok(groups)
    }

    fn clear(&mut self, id: &str) -> Result<Vec<usize>, String> {
        let Some(i) = self.group_index(id) else {
            return Err(format!(
                "no group {id} (groups: {})",
                self.cfg
                    .groups
                    .iter()
                    .map(|g| g.id.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        };
        let l = &mut self.local[i];
        let was_blocked = l.blocked_by.take().is_some();
        let was_unhealthy = l.unhealthy.take().is_some();
        match l.state {
            GroupState::Failed | GroupState::StopFailed => {
                self.transition(i, GroupState::Stopped, "cleared by the operator".into());
                Ok(vec![i])
            }
            _ if was_blocked || was_unhealthy => Ok(vec![i]),
            s => Err(format!("{id} is {} here: nothing to clear", s.as_str())),
        }
    }

    /// How a command that acted on `groups` stands.
    pub fn progress(&self, cmd: &Command, groups: &[usize]) -> Progress {
        let mut moves = Vec::new();
        for &i in groups {
            let id = &self.cfg.groups[i].id;
            let l = &self.local[i];
            let owner = self.owner(i);
            match cmd {
                Command::Standby(_) => match l.state {
                    GroupState::StopFailed => {
                        return Progress::Failed(format!("{id}: stop failed here"))
                    }
                    GroupState::Stopped | GroupState::Failed => match owner {
                        Some((o, GroupState::Started)) => moves.push(Move {
                            group: id.clone(),
                            from: Some(self.cfg.node.clone()),
                            to: Some(o),
                            state: GroupState::Started,
                        }),
                        Some(_) => return Progress::Pending,
                        None if self.desired(i).0.is_some() => return Progress::Pending,
                        None => moves.push(Move {
                            group: id.clone(),
                            from: Some(self.cfg.node.clone()),
                            to: None,
                            state: GroupState::Stopped,
                        }),
                    },
                    _ => return Progress::Pending,
                },
                Command::Takeover(_) => match l.state {
                    GroupState::Started => moves.push(Move {
                        group: id.clone(),
                        from: None,
                        to: Some(self.cfg.node.clone()),
                        state: GroupState::Started,
                    }),
                    GroupState::Failed | GroupState::StopFailed if groups.len() == 1 => {
                        return Progress::Failed(format!("{id}: start failed here"))
                    }
                    GroupState::Failed | GroupState::StopFailed => moves.push(Move {
                        group: id.clone(),
                        from: None,
                        to: None,
                        state: l.state,
                    }),
                    _ => return Progress::Pending,
                },
                Command::Clear(_) => {}
            }
        }
        Progress::Done(moves)
    }

    /// The node that runs group `i`, and its state there.
    fn owner(&self, i: usize) -> Option<(String, GroupState)> {
        self.views(i)
            .into_iter()
            .find(|v| v.state.may_run())
            .map(|v| (v.node, v.state))
    }

    pub fn status(&self) -> Vec<GroupView> {
        (0..self.cfg.groups.len())
            .map(|i| {
                let views = self.views(i);
                let owner = views.iter().find(|v| v.state.may_run());
                let (desired, why) = if self.ready() {
                    self.desired(i)
                } else {
                    (None, "probing")
                };
                GroupView {
                    id: self.cfg.groups[i].id.clone(),
                    home: self.cfg.groups[i].home.clone(),
                    owner: owner.map(|o| o.node.clone()),
                    state: owner.map_or(self.local[i].state, |o| o.state),
                    local: self.local[i].state,
                    nodes: views.iter().map(|v| (v.node.clone(), v.state)).collect(),
                    desired: desired.clone(),
                    pref: match self.local[i].pref {
                        Pref::None => None,
                        Pref::Refuse(_) => Some("standby".into()),
                        Pref::Want(_) => Some("takeover".into()),
                    },
                    unhealthy_on: views
                        .iter()
                        .filter(|v| v.unhealthy)
                        .map(|v| v.node.clone())
                        .collect(),
                    note: if owner.is_none() && desired.is_none() {
                        Some(match &self.local[i].blocked_by {
                            Some(n) => format!(
                                "stop failed on {n}, which left: hbctl clear when it is cleaned up"
                            ),
                            None => why.to_string(),
                        })
                    } else {
                        None
                    },
                }
            })
            .collect()
    }

    fn transition(&mut self, i: usize, to: GroupState, reason: String) {
        let from = self.local[i].state;
        if from == to {
            return;
        }
        self.local[i].state = to;
        self.outputs.push(Output::Event(GroupEvent {
            group: self.cfg.groups[i].id.clone(),
            from,
            to,
            reason,
        }));
    }

    /// This node's and every ready peer's view of group `i`, in node-list order.
    fn views(&self, i: usize) -> Vec<View> {
        let id = &self.cfg.groups[i].id;
        let mut v = Vec::new();
        for (order, name) in self.cfg.nodes.iter().enumerate() {
            if *name == self.cfg.node {
                v.push(View {
                    node: name.clone(),
                    order,
                    state: self.local[i].state,
                    pref: self.local[i].pref,
                    leaving: self.leaving,
                    known: true,
                    unhealthy: self.local[i].unhealthy.is_some(),
                });
                continue;
            }
            let Some(p) = self.peers.iter().find(|p| p.name == *name) else {
                continue;
            };
            if !matches!(p.life, Life::Up(_)) {
                continue;
            }
            let Some(r) = p.report.as_ref().filter(|r| r.ready) else {
                continue;
            };
            match r.groups.iter().find(|e| e.id == *id) {
                Some(e) => v.push(View {
                    node: name.clone(),
                    order,
                    state: e.state,
                    pref: e.pref,
                    leaving: r.leaving,
                    known: true,
                    unhealthy: e.unhealthy,
                }),
                // A peer configured without this group never runs it.
                None => v.push(View {
                    node: name.clone(),
                    order,
                    state: GroupState::Stopped,
                    pref: Pref::None,
                    leaving: r.leaving,
                    known: false,
                    unhealthy: false,
                }),
            }
        }
        v
    }

    /// Where group `i` should run, from this node's view, and which rule said so.
    pub fn desired(&self, i: usize) -> (Option<String>, &'static str) {
        let views = self.views(i);
        if let Some(v) = views.iter().find(|v| v.state == GroupState::StopFailed) {
            return (Some(v.node.clone()), "stop failed there");
        }
        if self.local[i].blocked_by.is_some() {
            return (None, "blocked: stop failed on a node that left");
        }
        let home = &self.cfg.groups[i].home;
        let holders: Vec<&View> = views
            .iter()
            .filter(|v| matches!(v.state, GroupState::Starting | GroupState::Started))
            .collect();
        if holders.len() > 1 {
            let keeper = holders
                .iter()
                .find(|v| v.node == *home)
                .unwrap_or(&holders[0]);
            return (Some(keeper.node.clone()), "two nodes run it: the keeper");
        }
        let eligible: Vec<&View> = views
            .iter()
            .filter(|v| v.known && !v.leaving && v.state != GroupState::Failed)
            .collect();
        // Healthy nodes first; when every node is unhealthy the group stays
        // where it runs (no ping-pong between two sick nodes).
        let healthy: Vec<&View> = eligible.iter().copied().filter(|v| !v.unhealthy).collect();
        let all_sick = healthy.is_empty();
        let eligible = if all_sick { eligible } else { healthy };
        // The newest operator command wins (its version is one more than any
        // seen): a takeover names the node, a standby the node to avoid.
        // Older preferences on other nodes no longer count.
        let newest = views
            .iter()
            .filter(|v| v.pref != Pref::None)
            .max_by_key(|v| (v.pref.version(), std::cmp::Reverse(v.order)));
        if let Some(w) = newest.filter(|w| matches!(w.pref, Pref::Want(_))) {
            if eligible.iter().any(|v| v.node == w.node) {
                return (Some(w.node.clone()), "takeover asked");
            }
        }
        let refused = newest
            .filter(|w| matches!(w.pref, Pref::Refuse(_)))
            .map(|w| w.node.clone());
        let mut s: Vec<&View> = eligible
            .iter()
            .copied()
            .filter(|v| Some(&v.node) != refused.as_ref())
            .collect();
        if s.is_empty() {
            s = eligible.clone();
        }
        if s.is_empty() {
            return (
                None,
                if views.iter().any(|v| v.state == GroupState::Failed) {
                    "failed on every node that is up: hbctl clear GROUP"
                } else {
                    "no node can run it"
                },
            );
        }
        if all_sick {
            if let [h] = holders[..] {
                if s.iter().any(|v| v.node == h.node) {
                    return (Some(h.node.clone()), "unhealthy on every node: it stays");
                }
            }
        }
        if self.cfg.auto_failback {
            if let Some(h) = s.iter().find(|v| v.node == *home) {
                return (Some(h.node.clone()), "home node (auto_failback on)");
            }
        }
        if let [h] = holders[..] {
            if s.iter().any(|v| v.node == h.node) {
                return (Some(h.node.clone()), "runs there");
            }
        }
        if let Some(h) = s.iter().find(|v| v.node == *home) {
            return (Some(h.node.clone()), "home node");
        }
        (Some(s[0].node.clone()), "first node that can run it")
    }

    fn peer_entry<'a>(&'a self, p: &'a Peer, i: usize) -> Option<&'a GroupEntry> {
        let id = &self.cfg.groups[i].id;
        p.report
            .as_ref()
            .and_then(|r| r.groups.iter().find(|e| e.id == *id))
    }

    /// Recomputes everything after an input: stops, grants, claims, starts,
    /// and the report when it changed or is due.
    fn decide(&mut self, now: Duration) {
        self.latest = self.latest.max(now);
        if self.ready() {
            for i in 0..self.local.len() {
                self.decide_group(i);
            }
        }
        // `no` and `heard` change with every report: they are refreshed on
        // every send but never cause one.
        let report = self.report();
        let changed = self.last_sent.as_ref() != Some(&report);
        if changed || now >= self.next_resend {
            self.last_sent = Some(report.clone());
            let mut report = report;
            self.report_no += 1;
            report.no = self.report_no;
            report.heard = self
                .peers
                .iter()
                .filter_map(|p| match (p.life, &p.report) {
                    (Life::Up(inc), Some(r)) => Some(Heard {
                        node: p.name.clone(),
                        incarnation: inc,
                        no: r.no,
                    }),
                    _ => None,
                })
                .collect();
            if self.sent_at.len() == SENT_REMEMBERED {
                self.sent_at.pop_front();
            }
            self.sent_at.push_back((self.report_no, now));
            self.outputs.push(Output::Send(report));
            self.next_resend = now.saturating_add(self.cfg.resend.max(Duration::from_millis(1)));
        }
    }

    /// Whether `p` heard this node recently enough that it cannot have
    /// declared it dead (and withdrawn its grants) by now, with a keepalive
    /// to spare: it heard report `no`, sent at `t`, so it declares this node
    /// dead no earlier than `t + deadtime`.
    fn lease_valid(&self, r: &GroupReport) -> bool {
        let Some(h) = r
            .heard
            .iter()
            .find(|h| h.node == self.cfg.node && h.incarnation == self.incarnation)
        else {
            return false;
        };
        let Some(&(_, sent)) = self.sent_at.iter().find(|(no, _)| *no == h.no) else {
            return false;
        };
        let lease = self.cfg.deadtime.saturating_sub(self.cfg.resend);
        self.latest < sent.saturating_add(lease)
    }

    fn decide_group(&mut self, i: usize) {
        let me = self.cfg.node.clone();
        let (desired, why) = self.desired(i);
        let me_desired = desired.as_deref() == Some(me.as_str());
        match self.local[i].state {
            GroupState::Started => {
                let elsewhere = desired.as_ref().is_some_and(|d| *d != me);
                if elsewhere || self.leaving {
                    let reason = if self.leaving {
                        "shutting down".to_string()
                    } else {
                        format!(
                            "it should run on {} ({why})",
                            desired.as_deref().unwrap_or("?")
                        )
                    };
                    self.transition(i, GroupState::Stopping, reason);
                    self.local[i].grant = None;
                    self.outputs.push(Output::Stop(i));
                }
                return;
            }
            GroupState::Starting | GroupState::Stopping | GroupState::StopFailed => return,
            GroupState::Stopped | GroupState::Failed => {}
        }
        let state = self.local[i].state;
        let claimable = me_desired && state == GroupState::Stopped && !self.leaving;
        // Keep or withdraw the grant.
        let keep = match &self.local[i].grant {
            Some(g) if g.node == me => claimable && g.claim == self.local[i].claim && g.claim != 0,
            Some(g) => self
                .peers
                .iter()
                .find(|p| p.name == g.node)
                .is_some_and(|p| {
                    p.life == Life::Up(g.incarnation)
                        && self
                            .peer_entry(p, i)
                            .is_some_and(|e| e.claim == g.claim || e.state.may_run())
                }),
            None => false,
        };
        if !keep {
            self.local[i].grant = None;
            if claimable {
                if self.local[i].claim == 0 {
                    self.last_claim += 1;
                    self.local[i].claim = self.last_claim;
                }
                self.local[i].grant = Some(Grant {
                    node: me.clone(),
                    incarnation: self.incarnation,
                    claim: self.local[i].claim,
                });
            } else {
                self.local[i].claim = 0;
                if let Some(d) = desired.as_ref().filter(|d| **d != me) {
                    if let Some(p) = self.peers.iter().find(|p| p.name == *d) {
                        if let (Life::Up(inc), Some(e)) = (p.life, self.peer_entry(p, i)) {
                            if e.claim != 0 && !e.state.may_run() {
                                self.local[i].grant = Some(Grant {
                                    node: d.clone(),
                                    incarnation: inc,
                                    claim: e.claim,
                                });
                            }
                        }
                    }
                }
            }
        }
        // Start when every peer that is not dead grants our claim.
        if !claimable || self.local[i].claim == 0 {
            return;
        }
        let mine = Grant {
            node: me.clone(),
            incarnation: self.incarnation,
            claim: self.local[i].claim,
        };
        let all_granted = self.peers.iter().all(|p| match p.life {
            Life::Dead => true,
            Life::Unknown => false,
            // A ready peer configured without the group never runs it.
            // Its grant counts only within its lease (see `lease_valid`).
            Life::Up(_) => {
                p.report
                    .as_ref()
                    .is_some_and(|r| r.ready && self.lease_valid(r))
                    && self
                        .peer_entry(p, i)
                        .is_none_or(|e| e.grant.as_ref() == Some(&mine) && !e.state.may_run())
            }
        });
        if all_granted {
            // A standby ends when this node has to run the group after all
            // (its peer died): it does not push the group away again later.
            if matches!(self.local[i].pref, Pref::Refuse(_)) {
                self.local[i].pref = Pref::None;
            }
            self.transition(i, GroupState::Starting, format!("starting here ({why})"));
            self.outputs.push(Output::Start(i));
        }
    }

    /// The report as it stands.
    pub fn report(&self) -> GroupReport {
        GroupReport {
            ready: self.ready(),
            leaving: self.leaving,
            groups: self
                .cfg
                .groups
                .iter()
                .zip(&self.local)
                .map(|(g, l)| GroupEntry {
                    id: g.id.clone(),
                    state: l.state,
                    claim: if l.state == GroupState::Stopped {
                        l.claim
                    } else {
                        0
                    },
                    grant: l.grant.clone(),
                    pref: l.pref,
                    unhealthy: l.unhealthy.is_some(),
                })
                .collect(),
            marks: self.marks.clone(),
            no: 0,
            heard: Vec::new(),
        }
    }
}

#[derive(Debug, Clone)]
struct View {
    node: String,
    /// Position in the node list.
    order: usize,
    state: GroupState,
    pref: Pref,
    leaving: bool,
    /// The node has this group in its configuration.
    known: bool,
    unhealthy: bool,
}

fn scope_word(scope: Scope) -> &'static str {
    match scope {
        Scope::All => "resource",
        Scope::Local => "local",
        Scope::Foreign => "foreign",
    }
}
