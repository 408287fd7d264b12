//! Deterministic simulation of group ownership: several nodes, each a
//! [`Groups`] machine fed by a model of membership (keepalives, deadtime,
//! initdead, incarnations, Leaving), over a network with loss, delay,
//! reordering and partitions, with agents that take time and fail.
//!
//! Invariants, checked at every step:
//! - **no double start**: when a node starts a group, every other node where
//!   the group may be running is dead in that node's view (grant leases make
//!   this hold also when one side declares the other dead before the other
//!   notices: the claimant stops trusting a grant before the granter can
//!   withdraw it);
//! - **the machine agrees with the agents**: a node's local state is one in
//!   which its agents may be in.
//!
//! And at the end of every schedule, after the network heals and faults stop:
//! - **convergence**: every group runs on exactly one node, unless every node
//!   up has it failed (or stop-failed, which keeps it from running elsewhere),
//!   and nothing is starting or stopping.
//!
//! A failing seed is printed; `HBD_SIM_SEED=N cargo test groups::sim` replays it.

use super::*;
use std::collections::BTreeMap;

/// The shared splitmix64; seeds are mixed with a constant so that seed 0
/// is as good as any.
pub struct Rng(crate::rng::SplitMix64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(crate::rng::SplitMix64::new(seed ^ 0x9e37_79b9_7f4a_7c15))
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.0.below(n)
    }
    /// True with probability `per_mille` / 1000.
    pub fn chance(&mut self, per_mille: u64) -> bool {
        self.0.per_mille(per_mille)
    }
}

#[derive(Debug, Clone)]
enum Payload {
    Keepalive,
    Report(GroupReport),
    Leaving,
}

#[derive(Debug, Clone)]
struct Msg {
    at: Duration,
    from: usize,
    to: usize,
    inc: u64,
    seq: u64,
    payload: Payload,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SimLife {
    Unknown,
    Up(u64),
    Dead,
}

/// What a peer looks like to one node's membership model.
#[derive(Debug, Clone)]
struct PeerModel {
    life: SimLife,
    last_heard: Option<Duration>,
    inc: Option<u64>,
    left_inc: Option<u64>,
    delivered: Option<u64>,
}

#[derive(Debug, Clone, Copy)]
struct Op {
    at: Duration,
    group: usize,
    result: OpResult,
}

pub struct Node {
    pub name: String,
    /// `None` while the daemon is down.
    pub machine: Option<Groups>,
    inc: u64,
    seq: u64,
    started_at: Duration,
    next_keepalive: Duration,
    peers: Vec<PeerModel>,
    ops: Vec<Op>,
    /// Whether each group's resources may be running on this machine.
    pub physical: Vec<bool>,
    /// Shutting down: Leaving goes out once quiescent.
    stopping: bool,
}

/// Fault and agent behaviour of a run.
#[derive(Debug, Clone)]
pub struct Faults {
    pub loss: u64,
    pub start_fail: u64,
    pub stop_fail: u64,
    pub rollback_fail: u64,
    pub max_delay: Duration,
}

impl Faults {
    pub fn none() -> Faults {
        Faults {
            loss: 0,
            start_fail: 0,
            stop_fail: 0,
            rollback_fail: 0,
            max_delay: Duration::from_millis(2),
        }
    }
}

pub struct Cluster {
    pub now: Duration,
    pub nodes: Vec<Node>,
    pub cfg: GroupsConfig,
    pub keepalive: Duration,
    pub deadtime: Duration,
    pub initdead: Duration,
    /// `cut[a][b]`: datagrams from a to b are lost.
    pub cut: Vec<Vec<bool>>,
    pub faults: Faults,
    pub rng: Rng,
    msgs: Vec<Msg>,
    /// Starts each node made, for tests.
    pub starts: Vec<(String, String)>,
    /// A log of what happened, printed when an invariant fails.
    pub trace: Vec<String>,
}

pub const STEP: Duration = Duration::from_millis(10);

impl Cluster {
    pub fn new(nodes: usize, groups: &[(&str, usize)], auto_failback: bool, seed: u64) -> Cluster {
        let names: Vec<String> = (1..=nodes).map(|i| format!("n{i}")).collect();
        let cfg = GroupsConfig {
            node: String::new(),
            nodes: names.clone(),
            groups: groups
                .iter()
                .map(|(id, home)| GroupDef {
                    id: id.to_string(),
                    home: names[*home].clone(),
                })
                .collect(),
            auto_failback,
            resend: Duration::from_millis(100),
            deadtime: Duration::from_millis(500),
        };
        let mut c = Cluster {
            now: Duration::ZERO,
            nodes: names
                .iter()
                .map(|n| Node {
                    name: n.clone(),
                    machine: None,
                    inc: 0,
                    seq: 0,
                    started_at: Duration::ZERO,
                    next_keepalive: Duration::ZERO,
                    peers: Vec::new(),
                    ops: Vec::new(),
                    physical: vec![false; groups.len()],
                    stopping: false,
                })
                .collect(),
            cfg,
            keepalive: Duration::from_millis(100),
            deadtime: Duration::from_millis(500),
            initdead: Duration::from_millis(1000),
            cut: vec![vec![false; nodes]; nodes],
            faults: Faults::none(),
            rng: Rng::new(seed),
            msgs: Vec::new(),
            starts: Vec::new(),
            trace: Vec::new(),
        };
        for i in 0..nodes {
            c.boot(i);
        }
        c
    }

    fn log(&mut self, s: String) {
        self.trace
            .push(format!("{:>7}ms {s}", self.now.as_millis()));
    }

    /// Starts node `i`'s daemon (its resources stay as they are).
    pub fn boot(&mut self, i: usize) {
        let n = self.nodes.len();
        let node = &mut self.nodes[i];
        node.inc += 1;
        node.seq = 0;
        node.started_at = self.now;
        node.next_keepalive = self.now;
        node.stopping = false;
        node.ops.clear();
        node.peers = (0..n)
            .map(|_| PeerModel {
                life: SimLife::Unknown,
                last_heard: None,
                inc: None,
                left_inc: None,
                delivered: None,
            })
            .collect();
        let mut cfg = self.cfg.clone();
        cfg.node = node.name.clone();
        node.machine = Some(Groups::new(cfg, node.inc, self.now));
        let inc = node.inc;
        self.log(format!("n{} boots (incarnation {inc})", i + 1));
        self.drain(i);
    }

    /// The daemon dies (SIGKILL); with `machine`, the whole machine (its
    /// resources stop running).
    pub fn crash(&mut self, i: usize, machine: bool) {
        let node = &mut self.nodes[i];
        node.machine = None;
        node.ops.clear();
        node.stopping = false;
        if machine {
            node.physical.iter_mut().for_each(|p| *p = false);
        }
        self.log(format!("n{} crashes (machine: {machine})", i + 1));
    }

    /// SIGTERM: the node stops its groups, then leaves.
    pub fn shutdown(&mut self, i: usize) {
        let now = self.now;
        if let Some(m) = self.nodes[i].machine.as_mut() {
            m.leave(now);
            self.nodes[i].stopping = true;
            self.log(format!("n{} shuts down", i + 1));
            self.drain(i);
        }
    }

    pub fn command(&mut self, i: usize, cmd: Command) -> Result<Vec<usize>, String> {
        let now = self.now;
        let r = match self.nodes[i].machine.as_mut() {
            Some(m) => {
                let before: Vec<GroupState> = (0..self.cfg.groups.len())
                    .map(|g| m.local_state(g))
                    .collect();
                let r = m.command(&cmd, now);
                // Clearing a stop-failed group: the operator cleaned it up.
                if let (Command::Clear(_), Ok(gs)) = (&cmd, &r) {
                    for &g in gs {
                        if before[g] == GroupState::StopFailed {
                            self.nodes[i].physical[g] = false;
                        }
                    }
                }
                r
            }
            None => Err("down".into()),
        };
        self.log(format!("n{} {cmd:?} -> {r:?}", i + 1));
        self.drain(i);
        r
    }

    fn send(&mut self, from: usize, payload: Payload) {
        let node = &mut self.nodes[from];
        node.seq += 1;
        let (inc, seq) = (node.inc, node.seq);
        for to in 0..self.nodes.len() {
            if to == from || self.cut[from][to] || self.rng.chance(self.faults.loss) {
                continue;
            }
            let delay = self.rng.below(self.faults.max_delay.as_millis() as u64 + 1);
            self.msgs.push(Msg {
                at: self.now + Duration::from_millis(delay),
                from,
                to,
                inc,
                seq,
                payload: payload.clone(),
            });
        }
    }

    /// Carries out node `i`'s outputs.
    fn drain(&mut self, i: usize) {
        loop {
            let Some(m) = self.nodes[i].machine.as_mut() else {
                return;
            };
            let outputs = m.take_outputs();
            if outputs.is_empty() {
                return;
            }
            for o in outputs {
                self.output(i, o);
            }
        }
    }

    fn output(&mut self, i: usize, o: Output) {
        let now = self.now;
        match o {
            Output::Send(r) => self.send(i, Payload::Report(r)),
            Output::Probe(g) => {
                let p = if self.nodes[i].physical[g] {
                    Probe::Running
                } else {
                    Probe::Stopped
                };
                if let Some(m) = self.nodes[i].machine.as_mut() {
                    m.on_probe(g, p, now);
                }
            }
            Output::Start(g) => {
                self.check_start(i, g);
                self.nodes[i].physical[g] = true;
                let id = self.cfg.groups[g].id.clone();
                self.starts.push((self.nodes[i].name.clone(), id));
                let result = if self.rng.chance(self.faults.start_fail) {
                    OpResult::StartFailed {
                        rolled_back: !self.rng.chance(self.faults.rollback_fail),
                    }
                } else {
                    OpResult::Started
                };
                let d = Duration::from_millis(10 + self.rng.below(300));
                self.nodes[i].ops.push(Op {
                    at: now + d,
                    group: g,
                    result,
                });
            }
            Output::Stop(g) => {
                let result = if self.rng.chance(self.faults.stop_fail) {
                    OpResult::StopFailed
                } else {
                    OpResult::Stopped
                };
                let d = Duration::from_millis(10 + self.rng.below(300));
                self.nodes[i].ops.push(Op {
                    at: now + d,
                    group: g,
                    result,
                });
            }
            Output::Event(e) => {
                self.log(format!(
                    "n{} {}: {} -> {} ({})",
                    i + 1,
                    e.group,
                    e.from.as_str(),
                    e.to.as_str(),
                    e.reason
                ));
            }
        }
    }

    /// The no-double-start invariant.
    fn check_start(&mut self, i: usize, g: usize) {
        for j in 0..self.nodes.len() {
            if j == i || !self.nodes[j].physical[g] {
                continue;
            }
            let life = self.nodes[i].peers[j].life;
            if life != SimLife::Dead {
                self.log(format!(
                    "VIOLATION: n{} starts {} while n{} may run it and is {:?} to it",
                    i + 1,
                    self.cfg.groups[g].id,
                    j + 1,
                    life
                ));
                panic!("{}", self.trace.join("\n"));
            }
        }
    }

    /// One step of `STEP`.
    pub fn step(&mut self) {
        self.now += STEP;
        let now = self.now;
        // Deliveries due, in time order.
        let mut due: Vec<Msg> = Vec::new();
        let mut later = Vec::new();
        for m in self.msgs.drain(..) {
            if m.at <= now {
                due.push(m);
            } else {
                later.push(m);
            }
        }
        self.msgs = later;
        due.sort_by_key(|m| (m.at, m.from, m.seq));
        for m in due {
            self.deliver(m);
        }
        for i in 0..self.nodes.len() {
            if self.nodes[i].machine.is_none() {
                continue;
            }
            // Agent work finished.
            let (done, pending): (Vec<Op>, Vec<Op>) =
                self.nodes[i].ops.iter().partition(|o| o.at <= now);
            self.nodes[i].ops = pending;
            for op in done {
                match op.result {
                    OpResult::Stopped | OpResult::StartFailed { rolled_back: true } => {
                        self.nodes[i].physical[op.group] = false
                    }
                    _ => {}
                }
                if let Some(m) = self.nodes[i].machine.as_mut() {
                    m.on_done(op.group, op.result, now);
                }
                self.drain(i);
            }
            self.expire(i);
            if now >= self.nodes[i].next_keepalive {
                self.nodes[i].next_keepalive = now + self.keepalive;
                self.send(i, Payload::Keepalive);
            }
            if let Some(m) = self.nodes[i].machine.as_mut() {
                if now >= m.next_deadline() {
                    m.tick(now);
                }
            }
            self.drain(i);
            // A node shutting down leaves once nothing runs.
            let quiet = self.nodes[i]
                .machine
                .as_ref()
                .is_some_and(|m| m.quiescent());
            if self.nodes[i].stopping && quiet {
                self.send(i, Payload::Leaving);
                self.nodes[i].machine = None;
                self.nodes[i].stopping = false;
                self.log(format!("n{} left", i + 1));
            }
            self.check_agreement(i);
        }
    }

    /// The local state matches what the agents may be doing.
    fn check_agreement(&mut self, i: usize) {
        let Some(m) = self.nodes[i].machine.as_ref() else {
            return;
        };
        for g in 0..self.cfg.groups.len() {
            let s = m.local_state(g);
            if !s.may_run() && self.nodes[i].physical[g] {
                self.log(format!(
                    "VIOLATION: n{} says {} is {} but its resources may run",
                    i + 1,
                    self.cfg.groups[g].id,
                    s.as_str()
                ));
                panic!("{}", self.trace.join("\n"));
            }
        }
    }

    /// Membership model: deadtime and initdead.
    fn expire(&mut self, i: usize) {
        let now = self.now;
        let mut dead = Vec::new();
        let started = self.nodes[i].started_at;
        for (j, p) in self.nodes[i].peers.iter_mut().enumerate() {
            if j == i {
                continue;
            }
            match p.life {
                SimLife::Up(_) => {
                    if now >= p.last_heard.unwrap_or_default() + self.deadtime {
                        p.life = SimLife::Dead;
                        dead.push(j);
                    }
                }
                SimLife::Unknown => {
                    if now >= started + self.initdead {
                        p.life = SimLife::Dead;
                        dead.push(j);
                    }
                }
                SimLife::Dead => {}
            }
        }
        for j in dead {
            let name = self.nodes[j].name.clone();
            self.log(format!("n{} declares {name} dead", i + 1));
            if let Some(m) = self.nodes[i].machine.as_mut() {
                m.on_node_dead(&name, false, now);
            }
            self.drain(i);
        }
    }

    fn deliver(&mut self, m: Msg) {
        let now = self.now;
        let to = m.to;
        if self.nodes[to].machine.is_none() {
            return;
        }
        self.expire(to);
        let from_name = self.nodes[m.from].name.clone();
        let p = &mut self.nodes[to].peers[m.from];
        if p.inc.is_some_and(|k| m.inc < k) || p.left_inc == Some(m.inc) {
            return;
        }
        let restarted = p.inc.is_some_and(|k| m.inc > k);
        if restarted {
            p.delivered = None;
        }
        p.inc = Some(m.inc);
        p.last_heard = Some(now);
        let mut up = None;
        let mut dead_left = false;
        let mut report = None;
        match m.payload {
            Payload::Leaving => {
                p.left_inc = Some(m.inc);
                if p.life != SimLife::Dead {
                    p.life = SimLife::Dead;
                    dead_left = true;
                }
            }
            other => {
                if p.life != SimLife::Up(m.inc) {
                    p.life = SimLife::Up(m.inc);
                    up = Some(m.inc);
                }
                if let Payload::Report(r) = other {
                    if p.delivered.is_none_or(|d| m.seq > d) {
                        p.delivered = Some(m.seq);
                        report = Some(r);
                    }
                }
            }
        }
        let machine = self.nodes[to].machine.as_mut().expect("checked above");
        if let Some(inc) = up {
            machine.on_node_up(&from_name, inc, now);
        }
        if dead_left {
            machine.on_node_dead(&from_name, true, now);
        }
        if let Some(r) = report {
            machine.on_report(&from_name, m.inc, r, now);
        }
        if up.is_some() || dead_left {
            self.log(format!(
                "n{} sees {from_name} {}",
                to + 1,
                if dead_left { "leave" } else { "up" }
            ));
        }
        self.drain(to);
    }

    /// Node `i`'s checks of group `g` failed (or pass again).
    pub fn set_unhealthy(&mut self, i: usize, g: usize, unhealthy: bool) {
        let now = self.now;
        if let Some(m) = self.nodes[i].machine.as_mut() {
            m.set_unhealthy(g, unhealthy.then(|| "check failed".to_string()), now);
            self.log(format!(
                "n{} {} unhealthy: {unhealthy}",
                i + 1,
                self.cfg.groups[g].id
            ));
            self.drain(i);
        }
    }

    /// Loses every datagram in flight.
    pub fn drop_in_flight(&mut self) {
        self.msgs.clear();
    }

    pub fn run_for(&mut self, d: Duration) {
        let end = self.now + d;
        while self.now < end {
            self.step();
        }
    }

    /// Where each group runs (started), by node name.
    pub fn holders(&self, g: usize) -> Vec<String> {
        self.nodes
            .iter()
            .filter(|n| {
                n.machine
                    .as_ref()
                    .is_some_and(|m| m.local_state(g) == GroupState::Started)
            })
            .map(|n| n.name.clone())
            .collect()
    }

    pub fn state(&self, node: usize, g: usize) -> Option<GroupState> {
        self.nodes[node].machine.as_ref().map(|m| m.local_state(g))
    }

    /// The convergence invariant (call after healing and a quiet period).
    pub fn check_converged(&mut self) {
        for g in 0..self.cfg.groups.len() {
            let states: BTreeMap<String, GroupState> = self
                .nodes
                .iter()
                .filter_map(|n| {
                    n.machine
                        .as_ref()
                        .map(|m| (n.name.clone(), m.local_state(g)))
                })
                .collect();
            let started = states
                .values()
                .filter(|s| **s == GroupState::Started)
                .count();
            let busy = states
                .values()
                .any(|s| matches!(s, GroupState::Starting | GroupState::Stopping));
            let blocked = states.values().any(|s| *s == GroupState::StopFailed)
                || self.nodes.iter().any(|n| {
                    n.machine
                        .as_ref()
                        .is_some_and(|m| m.local[g].blocked_by.is_some())
                });
            let all_failed = states
                .values()
                .all(|s| matches!(s, GroupState::Failed | GroupState::StopFailed));
            let ok = !busy
                && (started == 1 || (started == 0 && (blocked || all_failed || states.is_empty())));
            if !ok {
                for n in &self.nodes {
                    if let Some(m) = &n.machine {
                        let r = m.report();
                        self.trace.push(format!(
                            "{}: desired {:?} report {:?}",
                            n.name,
                            m.desired(g),
                            r.groups[g]
                        ));
                    }
                }
                self.log(format!(
                    "VIOLATION: {} did not converge: {states:?}",
                    self.cfg.groups[g].id
                ));
                panic!("{}", self.trace.join("\n"));
            }
        }
    }

    /// Heals the network, brings every node back, and waits until quiet.
    pub fn heal_and_settle(&mut self) {
        for row in &mut self.cut {
            row.iter_mut().for_each(|c| *c = false);
        }
        self.faults = Faults::none();
        for i in 0..self.nodes.len() {
            if self.nodes[i].machine.is_none() && !self.nodes[i].stopping {
                self.boot(i);
            }
        }
        self.run_for(self.initdead + self.deadtime * 10 + Duration::from_secs(5));
    }
}

/// One random schedule.
fn run_seed(seed: u64, steps: usize) {
    let mut rng = Rng::new(seed.wrapping_mul(7919));
    let nodes = 2 + rng.below(2) as usize;
    let ngroups = 1 + rng.below(3) as usize;
    let ids = ["ip-a", "ip-b", "ip-c"];
    let groups: Vec<(&str, usize)> = (0..ngroups)
        .map(|g| (ids[g], rng.below(nodes as u64) as usize))
        .collect();
    let auto_failback = rng.chance(500);
    let mut c = Cluster::new(nodes, &groups, auto_failback, seed);
    c.faults = Faults {
        loss: rng.below(200),
        start_fail: rng.below(100),
        stop_fail: rng.below(30),
        rollback_fail: rng.below(200),
        max_delay: Duration::from_millis(1 + rng.below(80)),
    };
    c.trace.push(format!(
        "seed {seed}: {nodes} nodes, groups {groups:?}, auto_failback {auto_failback}, {:?}",
        c.faults
    ));
    for _ in 0..steps {
        let r = rng.below(1000);
        let i = rng.below(nodes as u64) as usize;
        let j = rng.below(nodes as u64) as usize;
        match r {
            0..=3 => c.crash(i, rng.chance(500)),
            4..=7 if c.nodes[i].machine.is_none() && !c.nodes[i].stopping => c.boot(i),
            8..=9 => c.shutdown(i),
            10..=17 if i != j => {
                let v = !c.cut[i][j];
                c.cut[i][j] = v;
                if rng.chance(700) {
                    c.cut[j][i] = v;
                }
                c.log(format!("link n{}->n{} cut: {v}", i + 1, j + 1));
            }
            18..=23 => {
                let scope = [Scope::All, Scope::Local, Scope::Foreign][rng.below(3) as usize];
                let cmd = if rng.chance(500) {
                    Command::Standby(scope)
                } else {
                    Command::Takeover(scope)
                };
                let _ = c.command(i, cmd);
            }
            24..=26 => {
                let g = rng.below(ngroups as u64) as usize;
                let _ = c.command(i, Command::Clear(ids[g].to_string()));
            }
            27..=30 => {
                let g = rng.below(ngroups as u64) as usize;
                c.set_unhealthy(i, g, rng.chance(600));
            }
            _ => {}
        }
        c.step();
    }
    // Operators clean up failed groups, then everything settles.
    c.heal_and_settle();
    for i in 0..nodes {
        for g in ids.iter().take(ngroups) {
            let _ = c.command(i, Command::Clear(g.to_string()));
        }
    }
    c.run_for(Duration::from_secs(10));
    c.check_converged();
}

#[test]
fn random_schedules() {
    if let Ok(seed) = std::env::var("HBD_SIM_SEED") {
        run_seed(seed.parse().expect("HBD_SIM_SEED is a number"), 3000);
        return;
    }
    let seeds: u64 = std::env::var("HBD_SIM_SEEDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(200);
    for seed in 0..seeds {
        let r = std::panic::catch_unwind(|| run_seed(seed, 3000));
        if let Err(e) = r {
            eprintln!("failing seed: HBD_SIM_SEED={seed} cargo test --lib groups::sim");
            std::panic::resume_unwind(e);
        }
    }
}
