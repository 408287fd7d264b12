//! Deterministic simulation of VRRP instances: 2–3 [`Instance`]s of one VRID
//! on a simulated clock and multicast network with loss, delay, reordering
//! (until the network heals; in order afterwards, as on a LAN),
//! one-way and two-way partitions, crashes (silent) and graceful shutdowns
//! with restarts, script results flipping, interface flaps, standby/takeover
//! and failback gate changes, all drawn from a seed.
//!
//! Invariants, checked after every step:
//! - **VIPs held iff MASTER**, for every running instance (which also means no
//!   MASTER in FAULT holds them, and FAULT/BACKUP/STOP never do);
//! - **silent unless MASTER**: an advert with a non-zero priority, VIPs added
//!   and gratuitous ARPs only come from an instance that is MASTER at that
//!   point of its outputs (following its `StateChanged` outputs, which must
//!   chain from the state before the step to the state after it, with every
//!   `Notify` naming the current state).
//!
//! At the end of every schedule, after the network heals, every node runs
//! again and faults stop for long enough (scripts settled, preempt delays
//! over, several `Master_Down_Interval`s), checked twice a few intervals
//! apart with the same master:
//! - **exactly one MASTER** among the instances not in FAULT (none when all
//!   are in FAULT);
//! - **the right one**: no other instance outside FAULT has a higher effective
//!   priority and preempts (preemption held back by nopreempt, standby or a
//!   closed failback gate keeps the current master). Equal priorities keep
//!   whichever is master: a BACKUP never preempts an equal priority, and two
//!   MASTERs of equal priority resolve by IP, which the "exactly one" check
//!   covers.
//!
//! Then the master crashes or shuts down: when another instance is up outside
//! FAULT, one is MASTER within `Master_Down_Interval` (crash) or the skew
//! (shutdown: priority 0) plus the network delay, and the end state above
//! holds again.
//!
//! `HBD_SIM_SEEDS=N` runs N seeds (default 300); `HBD_SIM_SEED=N cargo test
//! vrrp::sim` replays one and prints its trace.

use super::packet::Version;
use super::state::{Input, Instance, InstanceConfig, Output, State, TrackScript};
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::net::Ipv4Addr;
use std::time::Duration;

struct Rng(crate::rng::SplitMix64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(crate::rng::SplitMix64::new(seed ^ 0x5eed_0f00_d00d_0006))
    }
    fn below(&mut self, n: u64) -> u64 {
        self.0.below(n)
    }
    fn chance(&mut self, per_mille: u64) -> bool {
        self.0.per_mille(per_mille)
    }
}

/// An advert in flight: (delivery time, sequence, from, to, priority).
type Msg = (Duration, u64, usize, usize, u8);

struct Node {
    cfg: InstanceConfig,
    /// None: crashed.
    inst: Option<Instance>,
    /// VIPs on the interface, as the outputs left them (a crash leaves them).
    vips: bool,
    restart_at: Option<Duration>,
    /// What each tracked script would answer now.
    script_ok: Vec<bool>,
    iface_up: bool,
    /// The sim's own model of what holds preemption back (not the
    /// instance's word for it): standby since the last takeover, the gate.
    standby: bool,
    gate_open: bool,
}

impl Node {
    fn running(&self) -> Option<&Instance> {
        self.inst
            .as_ref()
            .filter(|i| !matches!(i.state(), State::Init | State::Stop))
    }
}

struct Sim {
    rng: Rng,
    now: Duration,
    interval: Duration,
    nodes: Vec<Node>,
    msgs: BinaryHeap<Reverse<Msg>>,
    seq: u64,
    /// cut[i][j]: adverts from i do not reach j.
    cut: Vec<Vec<bool>>,
    loss: u64,
    max_delay: Duration,
    /// After the heal, links deliver in order (a LAN); before, they reorder.
    fifo: bool,
    /// Per link, the latest delivery time scheduled.
    last_at: Vec<Vec<Duration>>,
    script_every: Duration,
    next_script: Duration,
    next_fault: Option<Duration>,
    trace: Vec<String>,
}

fn ip(i: usize) -> Ipv4Addr {
    Ipv4Addr::new(192, 0, 2, 1 + i as u8)
}

impl Sim {
    fn new(seed: u64) -> Sim {
        let mut rng = Rng::new(seed);
        let n = 2 + rng.below(2) as usize;
        let (version, interval) = if rng.chance(500) {
            (Version::V2, Duration::from_secs(1))
        } else {
            (Version::V3, Duration::from_millis(100))
        };
        // `interval` below is the shortest one; the longest is twice it.
        let mut nodes = Vec::new();
        for i in 0..n {
            let priority = if i == 0 && rng.chance(50) {
                255
            } else {
                [50, 100, 100, 150, 200][rng.below(5) as usize]
            };
            // v3 instances may advertise at different intervals: backups
            // learn the master's.
            let own = if version == Version::V3 && rng.chance(300) {
                interval * 2
            } else {
                interval
            };
            let mut cfg = InstanceConfig::new("VI_1", version, 51, priority, own, ip(i), "eth0");
            cfg.nopreempt = rng.chance(250);
            if rng.chance(250) {
                cfg.preempt_delay = interval * rng.below(4) as u32;
            }
            cfg.failback_gate = rng.chance(200);
            cfg.garp_master_delay = interval * rng.below(6) as u32;
            if rng.chance(200) {
                cfg.garp_master_refresh = Some(interval * (1 + rng.below(10) as u32));
            }
            if rng.chance(500) {
                cfg.scripts.push(TrackScript {
                    name: "chk".into(),
                    weight: 0,
                    rise: 1 + rng.below(3) as u32,
                    fall: 1 + rng.below(3) as u32,
                    init_fail: rng.chance(200),
                });
            }
            if rng.chance(500) {
                let w = 1 + rng.below(60) as i32;
                cfg.scripts.push(TrackScript {
                    name: "w".into(),
                    weight: if rng.chance(500) { w } else { -w },
                    rise: 1 + rng.below(3) as u32,
                    fall: 1 + rng.below(3) as u32,
                    init_fail: rng.chance(200),
                });
            }
            let script_ok = vec![true; cfg.scripts.len()];
            let cfg_gate = cfg.failback_gate;
            nodes.push(Node {
                cfg,
                inst: None,
                vips: false,
                restart_at: Some(interval * rng.below(5) as u32),
                script_ok,
                iface_up: true,
                standby: false,
                gate_open: !cfg_gate,
            });
        }
        Sim {
            rng,
            now: Duration::ZERO,
            interval,
            nodes,
            msgs: BinaryHeap::new(),
            seq: 0,
            cut: vec![vec![false; n]; n],
            loss: 0,
            max_delay: interval / 20,
            fifo: false,
            last_at: vec![vec![Duration::ZERO; n]; n],
            script_every: interval,
            next_script: Duration::ZERO,
            next_fault: Some(interval),
            trace: Vec::new(),
        }
    }

    fn log(&mut self, s: String) {
        self.trace
            .push(format!("{:>10.3} {s}", self.now.as_secs_f64()));
    }

    /// Feed an input to node `i` and carry out its outputs.
    fn input(&mut self, i: usize, input: Input) -> Result<(), String> {
        let now = self.now;
        if self.nodes[i].inst.is_none() {
            return Ok(());
        }
        let quiet = matches!(
            input,
            Input::Tick | Input::Advert { .. } | Input::ScriptResult { .. }
        );
        match input {
            Input::Standby => self.nodes[i].standby = true,
            Input::Takeover => self.nodes[i].standby = false,
            Input::FailbackGate(open) => {
                self.nodes[i].gate_open = open || !self.nodes[i].cfg.failback_gate
            }
            _ => {}
        }
        let desc = format!("{input:?}");
        let Some(inst) = self.nodes[i].inst.as_mut() else {
            return Ok(());
        };
        let mut state = inst.state();
        inst.handle(now, input);
        let outputs = inst.take_outputs();
        let end_state = inst.state();
        if !quiet
            || outputs
                .iter()
                .any(|o| !matches!(o, Output::SendAdvert { .. }))
        {
            self.log(format!("n{i} {desc} -> {outputs:?}"));
        }
        for o in outputs {
            match o {
                Output::SendAdvert { priority } => {
                    if priority > 0 && state != State::Master {
                        return Err(format!("n{i} advertises {priority} in {state:?}"));
                    }
                    for j in 0..self.nodes.len() {
                        if j == i || self.cut[i][j] || self.rng.chance(self.loss) {
                            continue;
                        }
                        let delay = self.rng.below(self.max_delay.as_micros() as u64 + 1);
                        let mut at = now + Duration::from_micros(delay);
                        if self.fifo {
                            at = at.max(self.last_at[i][j]);
                        }
                        self.last_at[i][j] = self.last_at[i][j].max(at);
                        self.seq += 1;
                        self.msgs.push(Reverse((at, self.seq, i, j, priority)));
                    }
                }
                Output::AddVips | Output::SendGarps { .. } if state != State::Master => {
                    return Err(format!("n{i}: {o:?} in {state:?}"));
                }
                Output::AddVips => self.nodes[i].vips = true,
                Output::RemoveVips => self.nodes[i].vips = false,
                Output::StateChanged { from, to, .. } => {
                    if from != state {
                        return Err(format!("n{i}: change from {from:?} in {state:?}"));
                    }
                    state = to;
                }
                Output::Notify { state: s, .. } => {
                    if s != state {
                        return Err(format!("n{i}: notify {s:?} in {state:?}"));
                    }
                }
                Output::SendGarps { .. } => {}
            }
        }
        if state != end_state {
            return Err(format!(
                "n{i}: ends in {end_state:?}, changes say {state:?}"
            ));
        }
        Ok(())
    }

    fn start(&mut self, i: usize) -> Result<(), String> {
        let node = &mut self.nodes[i];
        node.restart_at = None;
        if node.inst.is_none() {
            node.inst = Some(Instance::new(node.cfg.clone()));
        }
        if !node.iface_up {
            let name = node.cfg.interface.clone();
            self.input(i, Input::InterfaceDown(name))?;
        }
        self.input(i, Input::Start)
    }

    fn check(&self) -> Result<(), String> {
        for (i, n) in self.nodes.iter().enumerate() {
            if let Some(inst) = n.running() {
                let master = inst.state() == State::Master;
                if n.vips != master || inst.status().vips_held != master {
                    return Err(format!(
                        "n{i} in {:?}: VIPs {} (status says {})",
                        inst.state(),
                        n.vips,
                        inst.status().vips_held
                    ));
                }
            }
        }
        Ok(())
    }

    /// The final property; the master's index when there is one.
    fn check_converged(&self) -> Result<Option<usize>, String> {
        let live: Vec<usize> = (0..self.nodes.len())
            .filter(|&i| {
                self.nodes[i]
                    .running()
                    .is_some_and(|x| x.state() != State::Fault)
            })
            .collect();
        let masters: Vec<usize> = live
            .iter()
            .copied()
            .filter(|&i| self.nodes[i].running().unwrap().state() == State::Master)
            .collect();
        if live.is_empty() {
            return Ok(None);
        }
        if masters.len() != 1 {
            return Err(format!("masters: {masters:?} among {live:?}"));
        }
        let m = masters[0];
        let mp = self.nodes[m].running().unwrap().effective_priority();
        for &c in &live {
            let n = &self.nodes[c];
            let inst = n.running().unwrap();
            let preempts = !n.cfg.nopreempt && !n.standby && n.gate_open;
            let st = inst.status();
            if (st.standby, st.gate_open) != (n.standby, n.gate_open) {
                return Err(format!(
                    "n{c}: standby/gate {:?} but {:?} were asked for",
                    (st.standby, st.gate_open),
                    (n.standby, n.gate_open)
                ));
            }
            if c != m && inst.effective_priority() > mp && preempts {
                return Err(format!(
                    "n{m} is master with {mp} but n{c} has {} and preempts",
                    inst.effective_priority()
                ));
            }
        }
        Ok(Some(m))
    }

    fn fault(&mut self) -> Result<(), String> {
        let n = self.nodes.len();
        let i = self.rng.below(n as u64) as usize;
        match self.rng.below(11) {
            0 => {
                let j = (i + 1 + self.rng.below(n as u64 - 1) as usize) % n;
                let both = self.rng.chance(600);
                let v = !self.cut[i][j];
                self.cut[i][j] = v;
                if both {
                    self.cut[j][i] = v;
                }
                self.log(format!("cut n{i}->n{j} {v} both {both}"));
            }
            1 => {
                self.loss = [0, 0, 50, 300, 1000][self.rng.below(5) as usize];
                self.max_delay = self.interval * self.rng.below(3) as u32 / 2;
                self.log(format!("loss {} delay {:?}", self.loss, self.max_delay));
            }
            2 => {
                if self.nodes[i].inst.is_some() {
                    self.nodes[i].inst = None;
                    self.nodes[i].standby = false;
                    self.nodes[i].gate_open = !self.nodes[i].cfg.failback_gate;
                    self.nodes[i].restart_at =
                        Some(self.now + self.interval * (1 + self.rng.below(10) as u32));
                    self.log(format!("crash n{i}"));
                }
            }
            3 => {
                if self.nodes[i].running().is_some() {
                    self.input(i, Input::Shutdown)?;
                    self.nodes[i].restart_at =
                        Some(self.now + self.interval * (1 + self.rng.below(10) as u32));
                }
            }
            4 | 5 => {
                let k = self.nodes[i].script_ok.len();
                if k > 0 {
                    let s = self.rng.below(k as u64) as usize;
                    self.nodes[i].script_ok[s] = !self.nodes[i].script_ok[s];
                    self.log(format!("n{i} script {s} -> {}", self.nodes[i].script_ok[s]));
                }
            }
            6 => {
                let up = !self.nodes[i].iface_up;
                self.nodes[i].iface_up = up;
                let name = self.nodes[i].cfg.interface.clone();
                self.input(
                    i,
                    if up {
                        Input::InterfaceUp(name)
                    } else {
                        Input::InterfaceDown(name)
                    },
                )?;
            }
            7 => self.input(i, Input::Standby)?,
            8 => self.input(i, Input::Takeover)?,
            _ => {
                let open = self.rng.chance(600);
                self.input(i, Input::FailbackGate(open))?;
            }
        }
        Ok(())
    }

    fn heal(&mut self) -> Result<(), String> {
        self.log("heal".into());
        self.next_fault = None;
        for row in &mut self.cut {
            row.iter_mut().for_each(|c| *c = false);
        }
        self.loss = 0;
        self.max_delay = self.interval / 20;
        self.fifo = true;
        for i in 0..self.nodes.len() {
            if !self.nodes[i].iface_up {
                self.nodes[i].iface_up = true;
                let name = self.nodes[i].cfg.interface.clone();
                self.input(i, Input::InterfaceUp(name))?;
            }
            if self.nodes[i].running().is_none() {
                self.start(i)?;
            }
        }
        Ok(())
    }

    fn run_until(&mut self, end: Duration) -> Result<(), String> {
        loop {
            let mut next = end.min(self.next_script);
            if let Some(Reverse((at, ..))) = self.msgs.peek() {
                next = next.min(*at);
            }
            if let Some(f) = self.next_fault {
                next = next.min(f);
            }
            for n in &self.nodes {
                if let Some(d) = n.inst.as_ref().and_then(|x| x.next_deadline()) {
                    next = next.min(d);
                }
                if let Some(r) = n.restart_at {
                    next = next.min(r);
                }
            }
            self.now = self.now.max(next);
            while let Some(Reverse((at, _, from, to, priority))) = self.msgs.peek().copied() {
                if at > self.now {
                    break;
                }
                self.msgs.pop();
                let interval = self.nodes[from].cfg.advert_interval;
                self.input(
                    to,
                    Input::Advert {
                        from: ip(from),
                        priority,
                        interval,
                    },
                )?;
                self.check()?;
            }
            for i in 0..self.nodes.len() {
                let due = self.nodes[i]
                    .inst
                    .as_ref()
                    .and_then(|x| x.next_deadline())
                    .is_some_and(|d| d <= self.now);
                if due {
                    self.input(i, Input::Tick)?;
                    self.check()?;
                }
                if self.nodes[i].restart_at.is_some_and(|r| r <= self.now) {
                    self.start(i)?;
                    self.check()?;
                }
            }
            if self.next_script <= self.now {
                self.next_script = self.now + self.script_every;
                for i in 0..self.nodes.len() {
                    for s in 0..self.nodes[i].script_ok.len() {
                        let name = self.nodes[i].cfg.scripts[s].name.clone();
                        let ok = self.nodes[i].script_ok[s];
                        self.input(i, Input::ScriptResult { name, ok })?;
                        self.check()?;
                    }
                }
            }
            if self.next_fault.is_some_and(|f| f <= self.now) {
                self.fault()?;
                self.check()?;
                let gap = self.interval * (1 + self.rng.below(30) as u32) / 10;
                self.next_fault = Some(self.now + gap);
            }
            if self.now >= end {
                return Ok(());
            }
        }
    }

    fn run(&mut self) -> Result<(), String> {
        let faults_until = self.interval * 100;
        self.run_until(faults_until)?;
        self.heal()?;
        self.check()?;
        // Scripts: rise ≤ 3 reports; preempt_delay ≤ 3 intervals; a
        // Master_Down_Interval < 8 of the shortest intervals; several of them.
        let settle = faults_until + self.interval * 120;
        self.run_until(settle)?;
        let first = self.check_converged()?;
        self.run_until(settle + self.interval * 24)?;
        let second = self.check_converged()?;
        if first != second {
            return Err(format!("master moved from {first:?} to {second:?}"));
        }
        if let Some(m) = second {
            self.lose_master(m)?;
        }
        Ok(())
    }

    /// Liveness: the converged master crashes or shuts down; when another
    /// instance is up outside FAULT, one takes over within
    /// `Master_Down_Interval` (crash) or the skew (shutdown, priority 0),
    /// plus the network delay, and all converges again.
    fn lose_master(&mut self, m: usize) -> Result<(), String> {
        let others = (0..self.nodes.len()).any(|i| {
            i != m
                && self.nodes[i]
                    .running()
                    .is_some_and(|x| x.state() != State::Fault)
        });
        if !others {
            return Ok(());
        }
        let t0 = self.now;
        let graceful = self.rng.chance(500);
        // Intervals are at most 2 × `interval`: the skew is below one of
        // them, the Master_Down_Interval below four.
        let bound = if graceful {
            self.log(format!("shutdown of master n{m}"));
            self.input(m, Input::Shutdown)?;
            self.interval * 2
        } else {
            self.log(format!("crash of master n{m}"));
            self.nodes[m].inst = None;
            self.interval * 8
        } + self.max_delay
            + Duration::from_millis(1);
        self.run_until(t0 + bound)?;
        let took_over = (0..self.nodes.len())
            .any(|i| self.nodes[i].running().map(|x| x.state()) == Some(State::Master));
        if !took_over {
            let states: Vec<_> = self
                .nodes
                .iter()
                .map(|n| n.inst.as_ref().map(|x| (x.status(), x.next_deadline())))
                .collect();
            return Err(format!(
                "nobody took over within {bound:?} of the {} of n{m}: {states:?}",
                if graceful { "shutdown" } else { "crash" }
            ));
        }
        self.run_until(t0 + self.interval * 120)?;
        self.check_converged().map(|_| ())
    }
}

fn run_seed(seed: u64) -> Result<(), (String, Vec<String>, Vec<InstanceConfig>)> {
    let mut sim = Sim::new(seed);
    sim.run().map_err(|e| {
        let cfgs = sim.nodes.iter().map(|n| n.cfg.clone()).collect();
        (e, std::mem::take(&mut sim.trace), cfgs)
    })
}

#[test]
fn vrrp_simulation() {
    if let Ok(seed) = std::env::var("HBD_SIM_SEED") {
        let seed: u64 = seed.parse().expect("HBD_SIM_SEED");
        let mut sim = Sim::new(seed);
        let r = sim.run();
        for l in &sim.trace {
            println!("{l}");
        }
        r.unwrap();
        return;
    }
    let seeds: u64 = std::env::var("HBD_SIM_SEEDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(300);
    for seed in 0..seeds {
        if let Err((e, trace, cfgs)) = run_seed(seed) {
            let tail = &trace[trace.len().saturating_sub(40)..];
            panic!(
                "seed {seed}: {e}\nconfigs: {cfgs:#?}\nlast events:\n{}\nreplay: HBD_SIM_SEED={seed} cargo test --lib vrrp::sim -- --nocapture",
                tail.join("\n")
            );
        }
    }
}
