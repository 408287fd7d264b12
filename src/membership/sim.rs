//! A deterministic simulation of a cluster of [`Membership`] machines, in the
//! style of raft-rs's test harness: a simulated clock, an in-memory network
//! with per-(from, to, medium) faults, node kills, restarts and orderly
//! leaves, an adversary, and invariants checked after every step.
//!
//! The clock jumps to the next thing that happens: a machine's
//! `next_deadline`, a datagram delivery, or the instant an invariant's bound
//! falls due. Ticks are exact, so the harness's epsilon is zero.
//!
//! Replay a failing randomized run with `HBD_SIM_SEED=<seed> cargo test --lib
//! membership::sim::randomized`
//! (the seed is in every failure message).

use super::*;
use crate::wire::{self, AuthKeys, AuthMethod, Body, Keepalive, Message};
use std::collections::VecDeque;

/// The shared splitmix64, with what the fault schedules draw.
struct Rng(crate::rng::SplitMix64);

impl Rng {
    fn new(seed: u64) -> Self {
        Rng(crate::rng::SplitMix64::new(seed))
    }

    fn next_u64(&mut self) -> u64 {
        self.0.next_u64()
    }

    fn below(&mut self, n: u64) -> u64 {
        self.0.below(n)
    }

    fn index(&mut self, n: usize) -> usize {
        self.below(n as u64) as usize
    }

    fn chance(&mut self, p: f64) -> bool {
        ((self.next_u64() >> 11) as f64 / (1u64 << 53) as f64) < p
    }

    /// Uniform in `[0, max]` with microsecond granularity.
    fn duration_upto(&mut self, max: Duration) -> Duration {
        Duration::from_micros(self.below(max.as_micros() as u64 + 1))
    }
}

pub(super) fn ms(x: u64) -> Duration {
    Duration::from_millis(x)
}

/// How long the harness may be late when checking a bound. Ticks happen at
/// the exact deadlines, so none.
const EPSILON: Duration = Duration::ZERO;

#[derive(Debug, Clone)]
pub(super) struct Timing {
    pub keepalive: Duration,
    pub deadtime: Duration,
    pub warntime: Duration,
    pub initdead: Duration,
    /// Upper bound of every delivery delay (base + jitter).
    pub max_delay: Duration,
    /// The cluster's authkeys.
    pub keys: AuthKeys,
}

impl Default for Timing {
    fn default() -> Self {
        Timing {
            keepalive: ms(100),
            deadtime: ms(500),
            warntime: ms(300),
            initdead: ms(1000),
            max_delay: ms(20),
            keys: keys(),
        }
    }
}

pub(super) fn keys() -> AuthKeys {
    AuthKeys::single(1, AuthMethod::Sha256, b"cluster secret")
}

pub(super) fn config(node: &str, nodes: &[String], media: usize, t: &Timing) -> MembershipConfig {
    MembershipConfig {
        cluster: "sim".into(),
        node: node.into(),
        nodes: nodes.to_vec(),
        media: (0..media).map(|m| format!("m{m}")).collect(),
        keepalive: t.keepalive,
        deadtime: t.deadtime,
        warntime: t.warntime,
        initdead: t.initdead,
        keys: t.keys.clone(),
        accept_weaker_keys: false,
    }
}

/// One direction of one medium between two nodes.
#[derive(Debug, Clone)]
struct Chan {
    cut_since: Option<Duration>,
    drop: f64,
    /// Since when it is neither cut nor lossy.
    lossless_since: Option<Duration>,
    base: Duration,
    jitter: Duration,
}

impl Chan {
    fn update(&mut self, now: Duration) {
        if self.cut_since.is_none() && self.drop == 0.0 {
            self.lossless_since.get_or_insert(now);
        } else {
            self.lossless_since = None;
        }
    }
}

struct Node {
    config: MembershipConfig,
    machine: Membership,
    alive: bool,
    alive_since: Duration,
    /// Killed or left at.
    down_since: Option<Duration>,
    incarnation: u64,
    /// Shares the cluster name and key of the others (see `replace_config`).
    compatible: bool,
    /// Its outputs being drained are its `Leaving`.
    leaving: bool,
    /// `machine.next_deadline()`, refreshed after every call into the machine.
    deadline: Duration,
}

/// What the harness saw observer `a` accept from node `b`.
#[derive(Debug, Clone, Default)]
struct Obs {
    last_ok: Option<Duration>,
    last_ok_leaving: bool,
    last_ok_link: Vec<Option<Duration>>,
}

struct InFlight {
    at: Duration,
    order: u64,
    to: usize,
    from: usize,
    medium: usize,
    leaving: bool,
    bytes: Vec<u8>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Attack {
    Replay,
    Flip,
    Garbage,
    WrongKey,
    UnknownKeyId,
    OtherCluster,
    UnknownNode,
    OwnLoopback,
}

const ATTACKS: [Attack; 8] = [
    Attack::Replay,
    Attack::Flip,
    Attack::Garbage,
    Attack::WrongKey,
    Attack::UnknownKeyId,
    Attack::OtherCluster,
    Attack::UnknownNode,
    Attack::OwnLoopback,
];

pub(super) struct Sim {
    seed: u64,
    steps: u64,
    pub now: Duration,
    rng: Rng,
    pub t: Timing,
    names: Vec<String>,
    nodes: Vec<Node>,
    media: usize,
    chans: Vec<Chan>,
    dup: f64,
    flight: Vec<InFlight>,
    order: u64,
    /// Datagrams delivered, per (to, medium), for the adversary to replay.
    history: Vec<VecDeque<Vec<u8>>>,
    obs: Vec<Obs>,
    /// Every event: (time, observer, event).
    pub log: Vec<(Duration, usize, Event)>,
    pub attacks: u64,
    pub delivered: u64,
    /// (death bound, liveness bound) per (observer, node), until a control
    /// changes them.
    bounds: Option<Vec<(Option<Duration>, Option<Duration>)>>,
}

impl Sim {
    pub fn new(seed: u64, n: usize, media: usize, t: Timing) -> Self {
        let names: Vec<String> = (0..n).map(|i| format!("n{i}")).collect();
        let nodes = names
            .iter()
            .map(|name| {
                let config = config(name, &names, media, &t);
                Node {
                    machine: Membership::new(config.clone(), 1, Duration::ZERO),
                    config,
                    alive: true,
                    alive_since: Duration::ZERO,
                    down_since: None,
                    incarnation: 1,
                    compatible: true,
                    leaving: false,
                    deadline: Duration::ZERO,
                }
            })
            .collect();
        let chan = Chan {
            cut_since: None,
            drop: 0.0,
            lossless_since: Some(Duration::ZERO),
            base: Duration::ZERO,
            jitter: t.max_delay / 2,
        };
        Sim {
            seed,
            steps: 0,
            now: Duration::ZERO,
            rng: Rng::new(seed),
            names,
            nodes,
            media,
            chans: vec![chan; n * n * media],
            dup: 0.0,
            flight: Vec::new(),
            order: 0,
            history: vec![VecDeque::new(); n * media],
            obs: vec![
                Obs {
                    last_ok_link: vec![None; media],
                    ..Obs::default()
                };
                n * n
            ],
            log: Vec::new(),
            attacks: 0,
            delivered: 0,
            bounds: None,
            t,
        }
    }

    fn n(&self) -> usize {
        self.nodes.len()
    }

    fn ctx(&self) -> String {
        format!(
            "seed {} step {} at {:?} (replay: HBD_SIM_SEED={})",
            self.seed, self.steps, self.now, self.seed
        )
    }

    pub fn machine(&self, i: usize) -> &Membership {
        &self.nodes[i].machine
    }

    pub fn state(&self, a: usize, b: usize) -> Option<NodeState> {
        self.nodes[a].machine.node_state(&self.names[b])
    }

    pub fn link(&self, a: usize, b: usize, m: usize) -> Option<LinkState> {
        self.nodes[a]
            .machine
            .link_state(&self.names[b], MediumId(m as u16))
    }

    fn chan_index(&self, from: usize, to: usize, m: usize) -> usize {
        (from * self.n() + to) * self.media + m
    }

    fn obs_mut(&mut self, a: usize, b: usize) -> &mut Obs {
        let n = self.n();
        &mut self.obs[a * n + b]
    }

    fn obs(&self, a: usize, b: usize) -> &Obs {
        &self.obs[a * self.n() + b]
    }

    fn index_of(&self, name: &str) -> Option<usize> {
        self.names.iter().position(|n| n == name)
    }

    // ----- controls -----

    fn set_cut(&mut self, from: usize, to: usize, m: usize, cut: bool) {
        self.bounds = None;
        let now = self.now;
        let i = self.chan_index(from, to, m);
        let c = &mut self.chans[i];
        if cut {
            c.cut_since.get_or_insert(now);
        } else {
            c.cut_since = None;
        }
        c.update(now);
    }

    /// Cuts medium `m` between `a` and `b`, both ways.
    pub fn cut(&mut self, a: usize, b: usize, m: usize) {
        self.set_cut(a, b, m, true);
        self.set_cut(b, a, m, true);
    }

    /// Cuts one direction only.
    pub fn cut_oneway(&mut self, from: usize, to: usize, m: usize) {
        self.set_cut(from, to, m, true);
    }

    pub fn recover_link(&mut self, a: usize, b: usize, m: usize) {
        self.set_cut(a, b, m, false);
        self.set_cut(b, a, m, false);
    }

    pub fn isolate(&mut self, a: usize) {
        for b in 0..self.n() {
            for m in 0..self.media {
                if a != b {
                    self.cut(a, b, m);
                }
            }
        }
    }

    /// Heals every cut and loss.
    pub fn recover(&mut self) {
        self.bounds = None;
        let now = self.now;
        for c in &mut self.chans {
            c.cut_since = None;
            c.drop = 0.0;
            c.update(now);
        }
    }

    pub fn set_drop(&mut self, from: usize, to: usize, m: usize, p: f64) {
        self.bounds = None;
        let now = self.now;
        let i = self.chan_index(from, to, m);
        self.chans[i].drop = p;
        self.chans[i].update(now);
    }

    pub fn set_delay(
        &mut self,
        from: usize,
        to: usize,
        m: usize,
        base: Duration,
        jitter: Duration,
    ) {
        assert!(base + jitter <= self.t.max_delay);
        let i = self.chan_index(from, to, m);
        self.chans[i].base = base;
        self.chans[i].jitter = jitter;
    }

    pub fn kill(&mut self, i: usize) {
        self.bounds = None;
        let node = &mut self.nodes[i];
        if !node.alive {
            return;
        }
        node.alive = false;
        node.down_since = Some(self.now);
        node.machine.take_outputs();
    }

    pub fn restart(&mut self, i: usize) {
        self.bounds = None;
        let now = self.now;
        let node = &mut self.nodes[i];
        node.incarnation += 1;
        node.machine = Membership::new(node.config.clone(), node.incarnation, now);
        node.alive = true;
        node.alive_since = now;
        node.down_since = None;
        // A new machine knows nothing: forget what the old one accepted.
        let media = self.media;
        for b in 0..self.n() {
            *self.obs_mut(i, b) = Obs {
                last_ok_link: vec![None; media],
                ..Obs::default()
            };
        }
        for m in 0..media {
            self.history[i * media + m].clear();
        }
        self.nodes[i].deadline = self.nodes[i].machine.next_deadline();
    }

    pub fn leave(&mut self, i: usize) {
        if !self.nodes[i].alive {
            return;
        }
        let now = self.now;
        self.nodes[i].machine.leave(now);
        self.nodes[i].leaving = true;
        self.drain(i);
        self.nodes[i].leaving = false;
        self.kill(i);
    }

    /// Replaces node `i`'s configuration (its machine reconfigures in place).
    pub fn reconfigure(&mut self, i: usize, config: MembershipConfig) {
        let now = self.now;
        self.nodes[i].config = config.clone();
        self.nodes[i].machine.reconfigure(config, now);
        self.drain(i);
    }

    /// Starts node `i` with another configuration (another key, say).
    pub fn replace_config(&mut self, i: usize, config: MembershipConfig) {
        self.bounds = None;
        self.nodes[i].compatible = config.keys == self.t.keys && config.cluster == "sim";
        self.nodes[i].config = config;
        self.kill(i);
        self.restart(i);
    }

    // ----- the network -----

    fn drain(&mut self, i: usize) {
        self.nodes[i].deadline = self.nodes[i].machine.next_deadline();
        let outputs = self.nodes[i].machine.take_outputs();
        for out in outputs {
            match out {
                Output::Send(bytes) => self.broadcast(i, bytes),
                Output::Event(e) => self.on_event(i, e),
            }
        }
    }

    fn broadcast(&mut self, from: usize, bytes: Vec<u8>) {
        let leaving = self.nodes[from].leaving;
        for to in 0..self.n() {
            if to == from {
                continue;
            }
            for m in 0..self.media {
                let c = self.chans[self.chan_index(from, to, m)].clone();
                if c.cut_since.is_some() || self.rng.chance(c.drop) {
                    continue;
                }
                let copies = if self.rng.chance(self.dup) { 2 } else { 1 };
                for _ in 0..copies {
                    let at = self.now + c.base + self.rng.duration_upto(c.jitter);
                    self.order += 1;
                    self.flight.push(InFlight {
                        at,
                        order: self.order,
                        to,
                        from,
                        medium: m,
                        leaving,
                        bytes: bytes.clone(),
                    });
                }
            }
        }
    }

    fn deliver(&mut self, d: InFlight) {
        let to = d.to;
        if !self.nodes[to].alive {
            return;
        }
        self.delivered += 1;
        let now = self.now;
        let res = self.nodes[to]
            .machine
            .on_datagram(MediumId(d.medium as u16), &d.bytes, now);
        if res.is_ok() {
            let o = self.obs_mut(to, d.from);
            o.last_ok = Some(now);
            o.last_ok_leaving = d.leaving;
            o.last_ok_link[d.medium] = Some(now);
        }
        let h = &mut self.history[to * self.media + d.medium];
        if h.len() >= 32 {
            h.pop_front();
        }
        h.push_back(d.bytes);
        self.drain(to);
    }

    // ----- the adversary -----

    /// Injects one hostile datagram into node `to` and checks that nothing but
    /// a drop counter changed.
    pub fn attack(&mut self, to: usize, kind: Attack) {
        if !self.nodes[to].alive {
            return;
        }
        let m = self.rng.index(self.media);
        let victim_name = {
            let others: Vec<usize> = (0..self.n()).filter(|&b| b != to).collect();
            self.names[others[self.rng.index(others.len())]].clone()
        };
        let forged = |cluster: &str, from: &str, keys: &AuthKeys| {
            wire::encode(
                &Message {
                    cluster: cluster.into(),
                    from: from.into(),
                    incarnation: u64::MAX,
                    seq: u64::MAX,
                    body: Body::Keepalive(Keepalive {
                        keepalive_ms: 1,
                        deadtime_ms: 1,
                    }),
                },
                keys,
            )
            .unwrap()
        };
        let bytes = match kind {
            Attack::Replay | Attack::Flip => {
                let h = &self.history[to * self.media + m];
                if h.is_empty() {
                    return;
                }
                let mut b = h[self.rng.index(h.len())].clone();
                if kind == Attack::Flip {
                    for _ in 0..1 + self.rng.below(3) {
                        let i = self.rng.index(b.len());
                        b[i] ^= 1 + self.rng.below(255) as u8;
                    }
                }
                b
            }
            Attack::Garbage => {
                let len = self.rng.index(1600);
                let mut b: Vec<u8> = (0..len).map(|_| self.rng.next_u64() as u8).collect();
                if self.rng.chance(0.5) && len >= 8 {
                    b[..4].copy_from_slice(b"hbd\x01");
                    b[4] = self.t.keys.keys[0].id;
                    b[5] = self.t.keys.keys[0].method.wire_id();
                }
                b
            }
            Attack::WrongKey => {
                // Same key id and method, another secret (crc has none, so
                // there the impostor uses another method).
                let ours = &self.t.keys.keys[0];
                let method = match ours.method {
                    AuthMethod::Crc => AuthMethod::Sha256,
                    m => m,
                };
                forged(
                    "sim",
                    &victim_name,
                    &AuthKeys::single(ours.id, method, b"wrong"),
                )
            }
            Attack::UnknownKeyId => {
                let ours = &self.t.keys.keys[0];
                let keys = AuthKeys::single(ours.id.wrapping_add(1), ours.method, &ours.secret);
                forged("sim", &victim_name, &keys)
            }
            Attack::OtherCluster => forged("other", &victim_name, &self.t.keys),
            Attack::UnknownNode => forged("sim", "mallory", &self.t.keys),
            Attack::OwnLoopback => {
                let node = &self.nodes[to];
                wire::encode(
                    &Message {
                        cluster: "sim".into(),
                        from: self.names[to].clone(),
                        incarnation: node.incarnation,
                        seq: self.rng.next_u64(),
                        body: Body::Keepalive(Keepalive {
                            keepalive_ms: 1,
                            deadtime_ms: 1,
                        }),
                    },
                    &node.config.keys,
                )
                .unwrap()
            }
        };
        self.attacks += 1;
        let now = self.now;
        let machine = &mut self.nodes[to].machine;
        assert!(
            machine.take_outputs().is_empty(),
            "outputs left undrained; {}",
            self.ctx()
        );
        let before = machine.status(now);
        let res = machine.on_datagram(MediumId(m as u16), &bytes, now);
        let after = machine.status(now);
        let outputs = machine.take_outputs();
        let reason = res.expect_err(&format!("{kind:?} accepted; {}", self.ctx()));
        assert_eq!(
            before.nodes,
            after.nodes,
            "{kind:?} changed state; {}",
            self.ctx()
        );
        assert_eq!(before.counters.received, after.counters.received);
        assert_eq!(before.counters.sent, after.counters.sent);
        assert_eq!(
            after.counters.dropped[reason.as_str()],
            before.counters.dropped[reason.as_str()] + 1
        );
        assert!(
            outputs.is_empty(),
            "{kind:?} raised {outputs:?}; {}",
            self.ctx()
        );
        let expected: &[DropReason] = match kind {
            Attack::Replay => &[DropReason::Replay, DropReason::Stale],
            Attack::Flip => &[DropReason::Forged, DropReason::Malformed],
            Attack::Garbage => &[
                DropReason::Forged,
                DropReason::Malformed,
                DropReason::Oversize,
            ],
            Attack::WrongKey | Attack::UnknownKeyId => &[DropReason::Forged],
            Attack::OtherCluster => &[DropReason::OtherCluster],
            Attack::UnknownNode => &[DropReason::UnknownNode],
            Attack::OwnLoopback => &[DropReason::Own],
        };
        assert!(
            expected.contains(&reason),
            "{kind:?} dropped as {reason:?}; {}",
            self.ctx()
        );
    }

    // ----- time -----

    /// Node `b` can no longer reach `a` since: killed/left, or every medium
    /// `b → a` cut.
    fn silenced_since(&self, a: usize, b: usize) -> Option<Duration> {
        let killed = if self.nodes[b].alive {
            None
        } else {
            self.nodes[b].down_since
        };
        let mut cut = Some(Duration::ZERO);
        for m in 0..self.media {
            cut = match (cut, self.chans[self.chan_index(b, a, m)].cut_since) {
                (Some(x), Some(y)) => Some(x.max(y)),
                _ => None,
            };
        }
        match (killed, cut) {
            (Some(k), Some(c)) => Some(k.min(c)),
            (k, c) => k.or(c),
        }
    }

    /// By when `a` must hold `b` dead, if `b` went silent.
    fn death_bound(&self, a: usize, b: usize) -> Option<Duration> {
        let s = self.silenced_since(a, b)?;
        let by_timeout = s + self.t.max_delay + self.t.deadtime;
        let by_initdead = self.nodes[a].alive_since + self.t.initdead;
        Some(by_timeout.max(by_initdead) + EPSILON)
    }

    /// From when `a` must hold `b` up, if some medium `b → a` is lossless.
    fn liveness_bound(&self, a: usize, b: usize) -> Option<Duration> {
        if !self.nodes[b].alive || !self.nodes[a].compatible || !self.nodes[b].compatible {
            return None;
        }
        (0..self.media)
            .filter_map(|m| self.chans[self.chan_index(b, a, m)].lossless_since)
            .map(|since| {
                since
                    .max(self.nodes[a].alive_since)
                    .max(self.nodes[b].alive_since)
                    + self.t.keepalive
                    + self.t.max_delay
            })
            .min()
    }

    fn compute_bounds(&mut self) {
        if self.bounds.is_some() {
            return;
        }
        let n = self.n();
        let mut v = Vec::with_capacity(n * n);
        for a in 0..n {
            for b in 0..n {
                if a == b || !self.nodes[a].alive {
                    v.push((None, None));
                } else {
                    v.push((self.death_bound(a, b), self.liveness_bound(a, b)));
                }
            }
        }
        self.bounds = Some(v);
    }

    fn next_time(&mut self) -> Duration {
        self.compute_bounds();
        let mut next: Option<Duration> = None;
        let mut consider = |t: Duration| next = Some(next.map_or(t, |n: Duration| n.min(t)));
        for node in &self.nodes {
            if node.alive {
                consider(node.deadline);
            }
        }
        for d in &self.flight {
            consider(d.at);
        }
        for &(death, live) in self.bounds.as_deref().unwrap_or_default() {
            for bound in [death, live].into_iter().flatten() {
                if bound > self.now {
                    consider(bound);
                }
            }
        }
        let next = next.unwrap_or(self.now + self.t.keepalive);
        assert!(
            next >= self.now,
            "a deadline in the past ({next:?}); {}",
            self.ctx()
        );
        next
    }

    /// Runs everything due at `self.now`, then checks the invariants.
    fn process(&mut self) {
        loop {
            let mut progressed = false;
            for i in 0..self.n() {
                if self.nodes[i].alive && self.nodes[i].deadline <= self.now {
                    let now = self.now;
                    self.nodes[i].machine.tick(now);
                    self.drain(i);
                    assert!(
                        self.nodes[i].deadline > now,
                        "n{i}: next_deadline {:?} does not move past a tick; {}",
                        self.nodes[i].deadline,
                        self.ctx()
                    );
                    progressed = true;
                }
            }
            let now = self.now;
            let mut due: Vec<InFlight> = Vec::new();
            let mut i = 0;
            while i < self.flight.len() {
                if self.flight[i].at <= now {
                    due.push(self.flight.swap_remove(i));
                } else {
                    i += 1;
                }
            }
            due.sort_by_key(|d| (d.at, d.order));
            for d in due {
                self.deliver(d);
                progressed = true;
            }
            if !progressed {
                break;
            }
        }
        self.check();
    }

    /// One step: the clock jumps to the next thing that happens.
    pub fn step(&mut self) {
        self.steps += 1;
        self.now = self.next_time();
        self.process();
    }

    pub fn run_until(&mut self, t: Duration) {
        while self.next_time() <= t {
            self.step();
        }
        self.now = t;
        self.process();
    }

    pub fn run_for(&mut self, d: Duration) {
        let t = self.now + d;
        self.run_until(t);
    }

    // ----- invariants -----

    fn on_event(&mut self, a: usize, e: Event) {
        let now = self.now;
        let deadtime = self.t.deadtime;
        match &e {
            Event::NodeDead {
                node,
                reason,
                silence,
            } => {
                // Nodes only a reconfiguration knows are not simulated.
                let Some(b) = self.index_of(node) else {
                    self.log.push((now, a, e));
                    return;
                };
                let o = self.obs(a, b);
                match reason {
                    DeadReason::Timeout => {
                        let last = o.last_ok.unwrap_or_else(|| {
                            panic!("{a} timed out {node} never heard; {}", self.ctx())
                        });
                        assert!(
                            now - last >= deadtime,
                            "false death: n{a} declared {node} dead {:?} after a datagram; {}",
                            now - last,
                            self.ctx()
                        );
                        assert_eq!(*silence, Some(now - last), "{}", self.ctx());
                    }
                    DeadReason::Left => {
                        assert!(
                            o.last_ok == Some(now) && o.last_ok_leaving,
                            "n{a}: {node} left without a Leaving; {}",
                            self.ctx()
                        );
                    }
                    DeadReason::NeverHeard => {
                        assert!(o.last_ok.is_none(), "{}", self.ctx());
                        assert!(silence.is_none());
                    }
                }
            }
            Event::LinkDead { node, medium } => {
                let Some(b) = self.index_of(node) else {
                    self.log.push((now, a, e));
                    return;
                };
                let o = self.obs(a, b);
                let by_leave = o.last_ok == Some(now) && o.last_ok_leaving;
                let last = o.last_ok_link[medium.0 as usize];
                assert!(
                    by_leave || last.is_some_and(|l| now - l >= deadtime),
                    "n{a}: link to {node} on {medium:?} dead early (last {last:?}); {}",
                    self.ctx()
                );
            }
            _ => {}
        }
        self.log.push((now, a, e));
    }

    fn check(&mut self) {
        self.compute_bounds();
        let now = self.now;
        let deadtime = self.t.deadtime;
        for a in 0..self.n() {
            if !self.nodes[a].alive {
                continue;
            }
            let m_a = &self.nodes[a].machine;
            for b in 0..self.n() {
                if a == b || !m_a.config().nodes.contains(&self.names[b]) {
                    continue;
                }
                let state = self.state(a, b).expect("listed node");
                let o = self.obs(a, b);
                // 1. No false death.
                if let Some(last) = o.last_ok {
                    if now - last < deadtime && !o.last_ok_leaving {
                        assert_ne!(
                            state,
                            NodeState::Dead,
                            "false death: n{a} holds n{b} dead {:?} after a datagram; {}",
                            now - last,
                            self.ctx()
                        );
                    }
                }
                let (death, live) = self.bounds.as_ref().expect("computed")[a * self.n() + b];
                // 2. Timely death.
                if let Some(bound) = death {
                    if now >= bound {
                        assert_eq!(
                            state,
                            NodeState::Dead,
                            "late death: n{a} still holds n{b} {state:?}, silent since {:?}; {}",
                            self.silenced_since(a, b),
                            self.ctx()
                        );
                    }
                }
                // 3. Liveness.
                if let Some(bound) = live {
                    if now >= bound {
                        assert_eq!(
                            state,
                            NodeState::Up,
                            "liveness: n{a} holds n{b} {state:?} over a clean medium; {}",
                            self.ctx()
                        );
                    }
                }
                // 4. Node up needs a link up; a link up needs a recent delivery.
                let mut any_up = false;
                for m in 0..self.media {
                    if self.link(a, b, m) == Some(LinkState::Up) {
                        any_up = true;
                        let last = o.last_ok_link[m];
                        assert!(
                            last.is_some_and(|l| now - l < deadtime),
                            "n{a}: link to n{b} on m{m} up, last delivery {last:?}; {}",
                            self.ctx()
                        );
                    }
                }
                if state == NodeState::Up {
                    assert!(any_up, "n{a}: n{b} up with no link up; {}", self.ctx());
                }
            }
        }
    }

    // ----- random faults -----

    fn random_fault(&mut self) {
        let n = self.n();
        let a = self.rng.index(n);
        let b = (a + 1 + self.rng.index(n - 1)) % n;
        let m = self.rng.index(self.media);
        match self.rng.below(100) {
            0..=11 => self.cut(a, b, m),
            12..=15 => self.cut_oneway(a, b, m),
            16..=29 => self.recover_link(a, b, m),
            30..=31 => self.isolate(a),
            32..=36 => self.recover(),
            37..=44 => {
                let p = [0.0, 0.0, 0.1, 0.5, 0.9][self.rng.index(5)];
                self.set_drop(a, b, m, p);
            }
            45..=52 => {
                let max = self.t.max_delay;
                let base = self.rng.duration_upto(max);
                let jitter = self.rng.duration_upto(max - base);
                self.set_delay(a, b, m, base, jitter);
            }
            53..=55 => self.dup = [0.0, 0.1, 0.5][self.rng.index(3)],
            56..=58 => self.kill(a),
            59..=60 => self.leave(a),
            61..=69 => {
                if let Some(i) = (0..n).find(|&i| !self.nodes[(a + i) % n].alive) {
                    self.restart((a + i) % n);
                }
            }
            _ => {
                let kind = ATTACKS[self.rng.index(ATTACKS.len())];
                self.attack(a, kind);
            }
        }
    }

    pub fn random_step(&mut self, fault_rate: f64) {
        if self.rng.chance(fault_rate) {
            self.random_fault();
            // Faults change the bounds: check at once.
            self.process();
        }
        self.step();
    }
}

// ---------------------------------------------------------------------------
// Scenarios
// ---------------------------------------------------------------------------

/// The liveness events `observer` logged ([`Event::PeerDeadtime`] and
/// [`Event::PeerIncarnation`] left out).
fn events_of(sim: &Sim, observer: usize) -> Vec<(Duration, Event)> {
    sim.log
        .iter()
        .filter(|(_, a, e)| {
            *a == observer
                && !matches!(
                    e,
                    Event::PeerDeadtime { .. } | Event::PeerIncarnation { .. }
                )
        })
        .map(|(t, _, e)| (*t, e.clone()))
        .collect()
}

fn deaths_of(sim: &Sim, node: &str) -> Vec<(Duration, usize, DeadReason)> {
    sim.log
        .iter()
        .filter_map(|(t, a, e)| match e {
            Event::NodeDead {
                node: n, reason, ..
            } if n == node => Some((*t, *a, *reason)),
            _ => None,
        })
        .collect()
}

fn all_up(sim: &Sim) -> bool {
    (0..sim.n()).all(|a| (0..sim.n()).all(|b| a == b || sim.state(a, b) == Some(NodeState::Up)))
}

#[test]
fn two_nodes_see_each_other_up() {
    let mut sim = Sim::new(1, 2, 1, Timing::default());
    sim.run_until(ms(50));
    assert!(all_up(&sim));
    sim.run_until(ms(5000));
    assert!(all_up(&sim));
    for a in 0..2 {
        let ev = events_of(&sim, a);
        assert!(matches!(ev[0].1, Event::LinkUp { .. }));
        assert!(matches!(ev[1].1, Event::NodeUp { incarnation: 1, .. }));
        assert_eq!(ev.len(), 2, "{ev:?}");
        let c = sim.machine(a).counters();
        assert_eq!(c.sent, 51); // t = 0, 100, ..., 5000
        assert!(c.received >= 50);
        assert!(c.dropped.values().all(|&v| v == 0));
    }
}

#[test]
fn five_nodes_kill_one() {
    let t = Timing::default();
    let mut sim = Sim::new(2, 5, 2, t.clone());
    sim.run_until(ms(1000));
    assert!(all_up(&sim));
    sim.run_until(ms(1234));
    let killed_at = sim.now;
    sim.kill(4);
    sim.run_until(killed_at + t.deadtime + t.max_delay);
    let deaths = deaths_of(&sim, "n4");
    assert_eq!(deaths.len(), 4, "{deaths:?}");
    for (at, _, reason) in deaths {
        assert_eq!(reason, DeadReason::Timeout);
        // The last keepalive left at 1200, delivered within max_delay.
        assert!(at >= ms(1200) + t.deadtime && at <= ms(1200) + t.max_delay + t.deadtime);
    }
    for a in 0..4 {
        assert_eq!(sim.state(a, 4), Some(NodeState::Dead));
        for m in 0..2 {
            assert_eq!(sim.link(a, 4, m), Some(LinkState::Dead));
        }
        for b in 0..4 {
            if a != b {
                assert_eq!(sim.state(a, b), Some(NodeState::Up));
            }
        }
        let st = sim.machine(a).status(sim.now);
        assert_eq!(st.nodes[4].dead_reason, Some(DeadReason::Timeout));
    }
}

#[test]
fn detection_is_exact_without_jitter() {
    let t = Timing::default();
    let mut sim = Sim::new(3, 2, 1, t.clone());
    for (a, b) in [(0, 1), (1, 0)] {
        sim.set_delay(a, b, 0, ms(5), Duration::ZERO);
    }
    sim.run_until(ms(1050));
    sim.kill(1);
    sim.run_until(ms(3000));
    // Last keepalive sent at 1000, delivered at 1005: dead at 1505 sharp.
    let deaths = deaths_of(&sim, "n1");
    assert_eq!(deaths, vec![(ms(1505), 0, DeadReason::Timeout)]);
    let ev = events_of(&sim, 0);
    assert!(ev.contains(&(
        ms(1505),
        Event::NodeDead {
            node: "n1".into(),
            reason: DeadReason::Timeout,
            silence: Some(t.deadtime)
        }
    )));
}

#[test]
fn cut_one_of_two_media() {
    let t = Timing::default();
    let mut sim = Sim::new(4, 2, 2, t.clone());
    sim.run_until(ms(1000));
    sim.cut(0, 1, 1);
    sim.run_until(ms(2000));
    assert!(all_up(&sim));
    for (a, b) in [(0, 1), (1, 0)] {
        assert_eq!(sim.link(a, b, 0), Some(LinkState::Up));
        assert_eq!(sim.link(a, b, 1), Some(LinkState::Dead));
        let st = sim.machine(a).status(sim.now);
        assert_eq!(st.nodes[b].links[1].state, LinkState::Dead);
        assert_eq!(st.nodes[b].links[1].medium, "m1");
    }
    assert!(deaths_of(&sim, "n0").is_empty() && deaths_of(&sim, "n1").is_empty());
    let link_deaths = sim
        .log
        .iter()
        .filter(|(_, _, e)| {
            matches!(
                e,
                Event::LinkDead {
                    medium: MediumId(1),
                    ..
                }
            )
        })
        .count();
    assert_eq!(link_deaths, 2);
    sim.recover_link(0, 1, 1);
    sim.run_for(ms(200));
    for (a, b) in [(0, 1), (1, 0)] {
        assert_eq!(sim.link(a, b, 1), Some(LinkState::Up));
    }
    let link_ups = sim
        .log
        .iter()
        .filter(|(_, _, e)| {
            matches!(
                e,
                Event::LinkUp {
                    medium: MediumId(1),
                    ..
                }
            )
        })
        .count();
    assert_eq!(link_ups, 4);
    // Now both media: isolate → dead.
    sim.isolate(1);
    sim.run_for(ms(1000));
    assert_eq!(sim.state(0, 1), Some(NodeState::Dead));
    assert_eq!(sim.state(1, 0), Some(NodeState::Dead));
    sim.recover();
    sim.run_for(ms(200));
    assert!(all_up(&sim));
}

#[test]
fn wrong_key_node_is_never_up() {
    let t = Timing::default();
    let mut sim = Sim::new(5, 3, 1, t.clone());
    let mut bad = config("n2", &sim.names.clone(), 1, &t);
    bad.keys = AuthKeys::single(1, AuthMethod::Sha256, b"not the cluster secret");
    sim.replace_config(2, bad);
    sim.run_until(ms(3000));
    for a in 0..2 {
        assert_eq!(sim.state(a, 2), Some(NodeState::Dead));
        assert_eq!(sim.state(a, 1 - a), Some(NodeState::Up));
        let st = sim.machine(a).status(sim.now);
        assert_eq!(st.nodes[2].dead_reason, Some(DeadReason::NeverHeard));
        assert!(st.counters.dropped["forged"] >= 25);
        assert!(!sim
            .log
            .iter()
            .any(|(_, o, e)| *o == a && matches!(e, Event::NodeUp { node, .. } if node == "n2")));
    }
    assert_eq!(sim.state(2, 0), Some(NodeState::Dead));
    assert_eq!(sim.state(2, 1), Some(NodeState::Dead));
}

#[test]
fn restart_faster_than_deadtime() {
    let t = Timing::default();
    let mut sim = Sim::new(6, 2, 2, t.clone());
    sim.run_until(ms(1000));
    sim.kill(1);
    sim.run_for(ms(250));
    sim.restart(1);
    sim.run_for(ms(1000));
    assert!(all_up(&sim));
    assert!(deaths_of(&sim, "n1").is_empty());
    let restarted: Vec<_> = events_of(&sim, 0)
        .into_iter()
        .filter(|(_, e)| matches!(e, Event::NodeRestarted { .. }))
        .collect();
    assert_eq!(
        restarted,
        vec![(
            restarted[0].0,
            Event::NodeRestarted {
                node: "n1".into(),
                old: 1,
                new: 2
            }
        )]
    );
    // n1's new machine sees n0 come up once.
    let st = sim.machine(0).status(sim.now);
    assert_eq!(st.nodes[1].incarnation, Some(2));
}

#[test]
fn leave_is_seen_at_once() {
    let t = Timing::default();
    let mut sim = Sim::new(7, 3, 2, t.clone());
    for a in 0..3 {
        for b in 0..3 {
            for m in 0..2 {
                if a != b {
                    sim.set_delay(a, b, m, ms(3), Duration::ZERO);
                }
            }
        }
    }
    sim.run_until(ms(1050));
    sim.leave(2);
    sim.run_for(ms(3));
    for a in 0..2 {
        assert_eq!(sim.state(a, 2), Some(NodeState::Dead));
        let st = sim.machine(a).status(sim.now);
        assert_eq!(st.nodes[2].dead_reason, Some(DeadReason::Left));
        assert!(st.nodes[2].links.iter().all(|l| l.state == LinkState::Dead));
        // The copy on the second medium is stale.
        assert_eq!(st.counters.dropped["stale"], 1);
    }
    assert_eq!(
        deaths_of(&sim, "n2"),
        vec![
            (ms(1053), 0, DeadReason::Left),
            (ms(1053), 1, DeadReason::Left)
        ]
    );
    // A later start comes back as a new incarnation.
    sim.run_for(ms(1000));
    sim.restart(2);
    sim.run_for(ms(100));
    assert!(all_up(&sim));
}

#[test]
fn warntime_raises_late_heartbeat() {
    let t = Timing::default();
    let mut sim = Sim::new(8, 2, 1, t.clone());
    sim.set_delay(1, 0, 0, Duration::ZERO, Duration::ZERO);
    sim.run_until(ms(1001));
    sim.cut_oneway(1, 0, 0);
    sim.run_until(ms(1350));
    sim.recover_link(1, 0, 0);
    sim.run_until(ms(2000));
    let late: Vec<_> = events_of(&sim, 0)
        .into_iter()
        .filter(|(_, e)| matches!(e, Event::LateHeartbeat { .. }))
        .collect();
    // Heard at 1000, then at 1400 (1100..1300 were cut).
    assert_eq!(
        late,
        vec![(
            ms(1400),
            Event::LateHeartbeat {
                node: "n1".into(),
                medium: MediumId(0),
                gap: ms(400)
            }
        )]
    );
    assert!(all_up(&sim));
    assert!(deaths_of(&sim, "n1").is_empty());
}

#[test]
fn initdead_declares_never_heard() {
    let t = Timing::default();
    let mut sim = Sim::new(9, 3, 1, t.clone());
    sim.kill(2);
    sim.run_until(ms(999));
    assert_eq!(sim.state(0, 2), Some(NodeState::Unknown));
    assert_eq!(sim.link(0, 2, 0), Some(LinkState::Unknown));
    sim.run_until(ms(1000));
    assert_eq!(sim.state(0, 2), Some(NodeState::Dead));
    assert_eq!(sim.state(1, 2), Some(NodeState::Dead));
    assert_eq!(
        deaths_of(&sim, "n2"),
        vec![
            (ms(1000), 0, DeadReason::NeverHeard),
            (ms(1000), 1, DeadReason::NeverHeard)
        ]
    );
    assert!(sim.log.iter().any(|(_, _, e)| *e
        == Event::NodeDead {
            node: "n2".into(),
            reason: DeadReason::NeverHeard,
            silence: None
        }));
    let st = sim.machine(0).status(sim.now);
    assert_eq!(st.nodes[2].last_heard_ms, None);
    assert_eq!(st.nodes[2].incarnation, None);
    // Late start: it comes up.
    sim.restart(2);
    sim.run_for(ms(100));
    assert!(all_up(&sim));
}

#[test]
fn reconfigure_adds_and_removes_nodes_and_media() {
    let t = Timing::default();
    let mut sim = Sim::new(10, 3, 2, t.clone());
    sim.run_until(ms(1000));
    assert!(all_up(&sim));
    // n0 drops n2, adds n9 (never started), drops m0, keeps m1, adds m2.
    let mut c = config("n0", &["n9".into(), "n0".into(), "n1".into()], 2, &t);
    c.media = vec!["m1".into(), "m2".into()];
    sim.reconfigure(0, c);
    let m0 = sim.machine(0);
    assert_eq!(m0.node_state("n2"), None);
    assert_eq!(m0.node_state("n9"), Some(NodeState::Unknown));
    assert_eq!(m0.node_state("n1"), Some(NodeState::Up));
    // m1 is now index 0 and keeps its state; m2 is new.
    assert_eq!(m0.link_state("n1", MediumId(0)), Some(LinkState::Up));
    assert_eq!(m0.link_state("n1", MediumId(1)), Some(LinkState::Unknown));
    let st = m0.status(sim.now);
    let names: Vec<_> = st.nodes.iter().map(|n| n.name.as_str()).collect();
    assert_eq!(names, ["n9", "n0", "n1"]);
    assert_eq!(st.nodes[1].state, NodeState::Up);
    assert_eq!(st.nodes[1].links.len(), 2);
    // n9 gets its own initdead, from the reconfiguration.
    let reconf_at = sim.now;
    assert_eq!(
        sim.machine(0).next_deadline().min(reconf_at + t.initdead),
        sim.machine(0).next_deadline()
    );
    // The harness keeps delivering on indexes 0 and 1, now named m1 and m2.
    sim.run_until(reconf_at + t.initdead - ms(1));
    assert_eq!(sim.machine(0).node_state("n9"), Some(NodeState::Unknown));
    sim.run_until(reconf_at + t.initdead);
    assert_eq!(sim.machine(0).node_state("n9"), Some(NodeState::Dead));
    assert_eq!(sim.machine(0).node_state("n1"), Some(NodeState::Up));
    // Datagrams from the removed n2 are now from an unknown node.
    assert!(sim.machine(0).counters().dropped["unknown_node"] > 0);
}

// ---------------------------------------------------------------------------
// Randomized fault schedules
// ---------------------------------------------------------------------------

fn random_timing(rng: &mut Rng) -> Timing {
    let keepalive = ms([50, 100, 200][rng.index(3)]) + Duration::from_micros(rng.below(1000));
    let deadtime = keepalive * (3 + rng.below(4) as u32) + Duration::from_micros(rng.below(5000));
    let max_delay = keepalive / (2 + rng.below(3) as u32);
    let method = [
        AuthMethod::Crc,
        AuthMethod::Md5,
        AuthMethod::Sha1,
        AuthMethod::Sha256,
    ][rng.index(4)];
    Timing {
        keepalive,
        deadtime,
        warntime: deadtime * 3 / 4,
        initdead: deadtime * 2,
        max_delay,
        keys: AuthKeys::single(1 + rng.below(255) as u8, method, b"randomized secret"),
    }
}

fn run_seed(seed: u64, steps: u64) -> Sim {
    let mut rng = Rng::new(seed.wrapping_mul(31).wrapping_add(7));
    let n = 2 + rng.index(4);
    let media = 1 + rng.index(3);
    let t = random_timing(&mut rng);
    let mut sim = Sim::new(seed, n, media, t);
    for _ in 0..steps {
        sim.random_step(0.05);
    }
    sim
}

/// Runs `seeds`, or only `HBD_SIM_SEED` when set (for replaying a failure).
fn randomized(seeds: std::ops::Range<u64>) {
    const STEPS: u64 = 3000;
    let seeds: Vec<u64> = match std::env::var("HBD_SIM_SEED") {
        Ok(s) => {
            let seed = s.parse().expect("HBD_SIM_SEED is a number");
            if !seeds.contains(&seed) {
                return;
            }
            vec![seed]
        }
        Err(_) => seeds.collect(),
    };
    let replaying = seeds.len() == 1;
    let (mut attacks, mut delivered, mut deaths, mut ups) = (0, 0, 0, 0);
    for seed in seeds {
        let sim = run_seed(seed, STEPS);
        attacks += sim.attacks;
        delivered += sim.delivered;
        for (_, _, e) in &sim.log {
            match e {
                Event::NodeDead { .. } => deaths += 1,
                Event::NodeUp { .. } => ups += 1,
                _ => {}
            }
        }
    }
    println!("randomized: {delivered} deliveries, {attacks} attacks, {deaths} deaths, {ups} ups");
    if !replaying {
        // The schedules must actually exercise the machine.
        assert!(attacks > 250, "{attacks}");
        assert!(deaths > 125 && ups > 250, "{deaths} {ups}");
    }
}

// 200 seeds × 3000 steps, in four tests so they run in parallel.
#[test]
fn randomized_0() {
    randomized(0..50);
}

#[test]
fn randomized_1() {
    randomized(50..100);
}

#[test]
fn randomized_2() {
    randomized(100..150);
}

#[test]
fn randomized_3() {
    randomized(150..200);
}
