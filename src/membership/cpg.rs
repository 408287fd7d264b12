//! Membership from Corosync (cluster.toml `[membership] backend =
//! "corosync"`) as a state machine without I/O.
//!
//! Inputs ([`CpgInput`]): what the runtime's Corosync thread
//! (`runtime/corosync.rs`) hears from libcpg and libvotequorum — the CPG
//! group's configuration changes, the messages delivered in the group
//! (totally ordered and virtually synchronous: every member delivers the
//! same messages in the same order between two configuration changes),
//! votequorum's quorum, the connection lost — and the passage of time.
//! Outputs: the same [`Output`]s as the heartbeat machine: bytes to send
//! (multicast to the group) and [`Event`]s, so the group, disk, monitor and
//! job machines above run unchanged; quorum comes as [`Event::Quorum`].
//!
//! Rules:
//! - a member of the group is a (nodeid, pid); its node name is the
//!   corosync.conf nodelist's name for the nodeid, and every message it
//!   sends names that node and its hbd incarnation, or it is dropped;
//! - a peer is up from its first message in the group (a hello, sent by
//!   every member when it joins and whenever another member joins);
//! - a peer that leaves the group cleanly (hbd's `Leaving`, or CPG's
//!   leave) is dead at once; one lost by failure (node down, process down)
//!   is declared dead `stop_margin` after Corosync's configuration change,
//!   so the side that lost quorum at the same change has that long to stop
//!   its groups before the other side may start them;
//! - a peer never heard is dead (never heard) `initdead` after this node
//!   connected to Corosync, as heartbeat's initdead after start: nodes
//!   whose hbd (or corosync) starts a little later than this one's must
//!   not lose their home groups to it at boot, and while Corosync is not
//!   there nothing is known of anyone;
//! - the connection to Corosync lost: no quorum at once, every peer is
//!   dying as if lost by failure;
//! - votequorum's quorum counts for the groups only once every node of the
//!   ring (Corosync's membership) is up in hbd's view, or has been in the
//!   ring for `initdead` without a word from its hbd: a node that regains
//!   quorum when a partition heals learns what the others ran in the
//!   meantime before it acts. Without this it saw them still dead (from
//!   the partition), needed no grant from them, and started its home group
//!   while another node of the majority ran it (found by
//!   tests/corosync.rs, five nodes split 2|3, under load).

use super::{
    Counters, DeadReason, Event, LinkStatus, MembershipConfig, MembershipStatus, NodeState,
    NodeStatus, Output,
};
use crate::groups::EngineQuorum;
use crate::wire::Body;
use bincode::Options;
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// The largest message accepted from the group (a group report is a few
/// KiB; Corosync itself fragments up to 1 MiB).
pub const MAX_MESSAGE: u64 = 1 << 20;

/// What the machine needs besides the heartbeat configuration.
#[derive(Debug, Clone)]
pub struct CpgConfig {
    /// ha.cf's node list, this node, timing (`keepalive`, `warntime` for
    /// status); `media` is empty.
    pub base: MembershipConfig,
    /// corosync.conf's nodelist: (nodeid, node name as in ha.cf).
    pub ids: Vec<(u32, String)>,
    /// How long after a failure's configuration change a lost peer is
    /// declared dead.
    pub stop_margin: Duration,
    /// What peers wait, at the least, after they last heard this node
    /// before they declare it dead: Corosync's token timeout plus the stop
    /// margin. Announced to the group machines (their grants' leases).
    pub deadtime: Duration,
    /// This process's pid (its own messages come back from the group).
    pub pid: u32,
}

/// What the runtime's Corosync thread hears.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CpgInput {
    /// Connected to Corosync and joined the group as node `local`.
    Connected { local: u32 },
    /// The group's membership changed: the members now, who left (with
    /// whether cleanly) and who joined, as (nodeid, pid).
    Confchg {
        members: Vec<(u32, u32)>,
        left: Vec<(u32, u32, bool)>,
        joined: Vec<(u32, u32)>,
    },
    /// A message delivered in the group.
    Message {
        nodeid: u32,
        pid: u32,
        bytes: Vec<u8>,
    },
    /// votequorum's view changed: the quorum and the nodeids of the ring
    /// (the nodes votequorum sees as members). The end of a sync.
    Quorum {
        quorum: EngineQuorum,
        ring: Vec<u32>,
    },
    /// votequorum started a sync on a new ring (its node list): the quorum
    /// is decided again, and until the `Quorum` that ends the sync the
    /// previous one is stale (with a quorum device for up to its
    /// sync_timeout: the campaign on Corosync found both sides of a full
    /// partition reading "quorate" there and fencing each other).
    Sync { ring: Vec<u32> },
    /// The connection to Corosync is gone (it stopped, or refused us).
    Disconnected { why: String },
}

/// What goes over CPG: who sends, and hbd's message body (none: hello).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Message {
    version: u8,
    node: String,
    incarnation: u64,
    deadtime_ms: u64,
    body: Option<Body>,
}

const VERSION: u8 = 1;

fn options() -> impl bincode::Options {
    bincode::DefaultOptions::new()
        .with_limit(MAX_MESSAGE)
        .reject_trailing_bytes()
}

#[derive(Debug, Clone)]
struct Peer {
    name: String,
    id: Option<u32>,
    state: NodeState,
    /// The member (pid) of the group for this node, while it is one.
    pid: Option<u32>,
    incarnation: Option<u64>,
    left: bool,
    dead_reason: Option<DeadReason>,
    /// Lost by failure: declared dead at this time.
    dying_at: Option<Duration>,
    last_heard: Option<Duration>,
    deadtime: Option<Duration>,
}

pub struct CpgMembership {
    cfg: CpgConfig,
    incarnation: u64,
    local: Option<u32>,
    connected: bool,
    left: bool,
    peers: Vec<Peer>,
    outputs: Vec<Output>,
    counters: Counters,
    /// The quorum last passed on (settling applied).
    quorum: Option<EngineQuorum>,
    /// votequorum's own, as it said it last.
    raw_quorum: Option<EngineQuorum>,
    /// The ring's nodeids and since when each is in it.
    ring: Vec<(u32, Duration)>,
    /// A sync after the ring lost a node is under way.
    syncing: bool,
    /// When peers never heard are declared dead: initdead after this node
    /// connected to Corosync (`None` while it is not connected).
    initdead_at: Option<Duration>,
}

impl CpgMembership {
    pub fn new(cfg: CpgConfig, incarnation: u64, _now: Duration) -> Self {
        let peers = peers_of(&cfg, &[]);
        CpgMembership {
            counters: super::zeroed_counters(),
            cfg,
            incarnation,
            local: None,
            connected: false,
            left: false,
            peers,
            outputs: Vec::new(),
            quorum: None,
            raw_quorum: None,
            ring: Vec::new(),
            syncing: false,
            initdead_at: None,
        }
    }

    fn name_of(&self, id: u32) -> Option<&str> {
        self.cfg
            .ids
            .iter()
            .find(|&&(i, _)| i == id)
            .map(|(_, n)| n.as_str())
    }

    fn drop_one(&mut self, reason: &'static str) {
        *self.counters.dropped.entry(reason.to_string()).or_default() += 1;
    }

    fn send(&mut self, body: Option<Body>) {
        let m = Message {
            version: VERSION,
            node: self.cfg.base.node.clone(),
            incarnation: self.incarnation,
            deadtime_ms: u64::try_from(self.cfg.deadtime.as_millis()).unwrap_or(u64::MAX),
            body,
        };
        if let Ok(bytes) = options().serialize(&m) {
            self.counters.sent += 1;
            self.outputs.push(Output::Send(bytes));
        }
    }

    pub fn incarnation(&self) -> u64 {
        self.incarnation
    }

    /// What peers wait before they declare this node dead (at the least).
    pub fn deadtime(&self) -> Duration {
        self.cfg.deadtime
    }

    pub fn has_left(&self) -> bool {
        self.left
    }

    pub fn counters(&self) -> &Counters {
        &self.counters
    }

    pub fn config(&self) -> &MembershipConfig {
        &self.cfg.base
    }

    /// Connected to Corosync and a member of the group.
    pub fn connected(&self) -> bool {
        self.connected
    }

    pub fn quorum(&self) -> Option<EngineQuorum> {
        self.quorum
    }

    pub fn take_outputs(&mut self) -> Vec<Output> {
        std::mem::take(&mut self.outputs)
    }

    /// Sends `body` to the group.
    pub fn broadcast(&mut self, body: Body) {
        if self.connected {
            self.send(Some(body));
        }
    }

    /// Orderly shutdown: peers declare this node dead at once.
    pub fn leave(&mut self, _now: Duration) {
        if !self.left {
            self.left = true;
            self.send(Some(Body::Leaving));
        }
    }

    /// SIGHUP: a new node list and timing.
    pub fn reconfigure(&mut self, cfg: CpgConfig, _now: Duration) {
        self.peers = peers_of(&cfg, &self.peers);
        self.cfg = cfg;
    }

    /// When [`Self::tick`] is due next.
    pub fn next_deadline(&self) -> Duration {
        let unknown = self
            .peers
            .iter()
            .any(|p| p.state == NodeState::Unknown)
            .then_some(self.initdead_at)
            .flatten();
        let settle = self
            .unheard_in_ring()
            .map(|(_, since)| since + self.cfg.base.initdead);
        self.peers
            .iter()
            .filter_map(|p| p.dying_at)
            .chain(unknown)
            .chain(settle)
            .min()
            .unwrap_or(Duration::from_secs(3600 * 24 * 365))
    }

    /// Time passes: peers lost by failure are declared dead once the stop
    /// margin passed.
    pub fn tick(&mut self, now: Duration) {
        self.expire(now);
        self.pass_quorum(now);
    }

    /// The ring's nodes that are peers not up in hbd's view, with since
    /// when they are in the ring.
    fn unheard_in_ring(&self) -> impl Iterator<Item = (u32, Duration)> + '_ {
        self.ring.iter().copied().filter(move |&(id, _)| {
            Some(id) != self.local
                && self
                    .peers
                    .iter()
                    .any(|p| p.id == Some(id) && p.state != NodeState::Up)
        })
    }

    /// Passes votequorum's quorum on to the groups, held (settling) while
    /// a node of the ring is not heard yet, for at most initdead.
    fn pass_quorum(&mut self, now: Duration) {
        let Some(mut q) = self.raw_quorum else {
            return;
        };
        let initdead = self.cfg.base.initdead;
        q.settling = q.quorate
            && self
                .unheard_in_ring()
                .any(|(_, since)| now < since.saturating_add(initdead));
        q.syncing = self.syncing;
        if self.quorum != Some(q) {
            self.quorum = Some(q);
            self.outputs.push(Output::Event(Event::Quorum(q)));
        }
    }

    fn expire(&mut self, now: Duration) {
        for i in 0..self.peers.len() {
            if self.peers[i].state == NodeState::Unknown
                && self.initdead_at.is_some_and(|t| now >= t)
            {
                self.dead(i, DeadReason::NeverHeard, now);
            }
            if self.peers[i].dying_at.is_some_and(|t| t <= now) {
                self.peers[i].dying_at = None;
                self.dead(i, DeadReason::Timeout, now);
            }
        }
    }

    fn dead(&mut self, i: usize, reason: DeadReason, now: Duration) {
        let p = &mut self.peers[i];
        p.dying_at = None;
        if p.state == NodeState::Dead {
            return;
        }
        p.state = NodeState::Dead;
        p.dead_reason = Some(reason);
        let silence = p.last_heard.map(|t| now.saturating_sub(t));
        let node = p.name.clone();
        if reason == DeadReason::Left {
            if let Some(inc) = p.incarnation {
                p.left = true;
                self.outputs.push(Output::Event(Event::PeerIncarnation {
                    node: node.clone(),
                    incarnation: inc,
                    left: true,
                }));
            }
        }
        self.outputs.push(Output::Event(Event::NodeDead {
            node,
            reason,
            silence,
        }));
    }

    /// A peer lost by failure: dead after the stop margin (unless it is
    /// back as a member by then).
    fn dying(&mut self, i: usize, now: Duration) {
        let margin = self.cfg.stop_margin;
        let p = &mut self.peers[i];
        p.pid = None;
        match p.state {
            NodeState::Up if p.dying_at.is_none() => p.dying_at = Some(now.saturating_add(margin)),
            NodeState::Up => {}
            // Never heard: dead at initdead.
            NodeState::Unknown | NodeState::Dead => {}
        }
    }

    pub fn on_input(&mut self, input: CpgInput, now: Duration) {
        self.expire(now);
        self.handle(input, now);
        self.pass_quorum(now);
    }

    fn handle(&mut self, input: CpgInput, now: Duration) {
        match input {
            CpgInput::Connected { local } => {
                self.local = Some(local);
                self.connected = true;
                if self.initdead_at.is_none() {
                    self.initdead_at = Some(now.saturating_add(self.cfg.base.initdead));
                }
            }
            CpgInput::Confchg {
                members,
                left,
                joined,
            } => self.on_confchg(&members, &left, &joined, now),
            CpgInput::Message { nodeid, pid, bytes } => self.on_message(nodeid, pid, &bytes, now),
            CpgInput::Sync { ring } => {
                if self.ring.iter().any(|(id, _)| !ring.contains(id)) {
                    self.syncing = true;
                }
                self.set_ring(ring, now);
            }
            CpgInput::Quorum { quorum, ring } => {
                let gained = quorum.quorate && !self.raw_quorum.is_some_and(|q| q.quorate);
                self.raw_quorum = Some(quorum);
                self.syncing = false;
                self.set_ring(ring, now);
                if gained {
                    // Quorum (re)gained, e.g. a partition healed: every node
                    // of the ring gets initdead from now to be heard before
                    // this node starts or fences anything (the campaign's
                    // witness_loss heal: a stale ring kept n2's old entry
                    // time, and n1 fenced n2 as it rejoined).
                    for (_, since) in &mut self.ring {
                        *since = now;
                    }
                }
            }
            CpgInput::Disconnected { .. } => {
                self.connected = false;
                self.local = None;
                self.initdead_at = None;
                self.raw_quorum = Some(EngineQuorum {
                    quorate: false,
                    votes: 0,
                    needed: self.quorum.map_or(0, |q| q.needed),
                    expected: self.quorum.map_or(0, |q| q.expected),
                    settling: false,
                    syncing: false,
                });
                self.ring.clear();
                self.syncing = false;
                for i in 0..self.peers.len() {
                    if self.peers[i].pid.is_some() || self.peers[i].state != NodeState::Dead {
                        self.dying(i, now);
                    }
                }
            }
        }
    }

    /// The ring now, keeping since when each node already in it was.
    fn set_ring(&mut self, ring: Vec<u32>, now: Duration) {
        let old = std::mem::take(&mut self.ring);
        self.ring = ring
            .into_iter()
            .map(|id| {
                let since = old.iter().find(|&&(o, _)| o == id).map_or(now, |&(_, t)| t);
                (id, since)
            })
            .collect();
    }

    fn on_confchg(
        &mut self,
        members: &[(u32, u32)],
        left: &[(u32, u32, bool)],
        joined: &[(u32, u32)],
        now: Duration,
    ) {
        let me = (self.local, self.cfg.pid);
        for &(id, pid, clean) in left {
            let Some(i) = self.peers.iter().position(|p| p.id == Some(id)) else {
                continue;
            };
            if self.peers[i].pid.is_some_and(|p| p != pid) {
                // An older process of that node, already replaced.
                continue;
            }
            if clean {
                self.peers[i].pid = None;
                self.dead(i, DeadReason::Left, now);
            } else {
                self.dying(i, now);
            }
        }
        for &(id, pid) in members {
            if Some(id) == me.0 {
                continue;
            }
            if let Some(i) = self.peers.iter().position(|p| p.id == Some(id)) {
                if self.peers[i].pid != Some(pid) {
                    self.peers[i].pid = Some(pid);
                }
            }
        }
        // Whoever joined (this node included) learns everyone's incarnation.
        if !joined.is_empty() && self.connected && !self.left {
            self.send(None);
        }
    }

    fn on_message(&mut self, nodeid: u32, pid: u32, bytes: &[u8], now: Duration) {
        if Some(nodeid) == self.local && pid == self.cfg.pid {
            return;
        }
        self.counters.received += 1;
        let m: Message = match options().deserialize(bytes) {
            Ok(m) => m,
            Err(_) => return self.drop_one("garbage"),
        };
        if m.version != VERSION {
            return self.drop_one("version");
        }
        if Some(nodeid) == self.local {
            if m.incarnation != self.incarnation {
                self.outputs.push(Output::Event(Event::DuplicateNode {
                    incarnation: m.incarnation,
                }));
            }
            return self.drop_one("own_name");
        }
        // The sender is who Corosync says it is.
        let Some(name) = self.name_of(nodeid).map(str::to_string) else {
            return self.drop_one("unknown_node");
        };
        if !name.eq_ignore_ascii_case(&m.node) {
            return self.drop_one("unknown_node");
        }
        let Some(i) = self.peers.iter().position(|p| p.name == name) else {
            return self.drop_one("unknown_node");
        };
        if self.peers[i].pid.is_some_and(|p| p != pid) {
            // Not the member this node knows for that name.
            return self.drop_one("stale");
        }
        let p = &mut self.peers[i];
        if p.left && p.incarnation == Some(m.incarnation) {
            return self.drop_one("stale");
        }
        if p.incarnation.is_some_and(|inc| m.incarnation < inc) {
            return self.drop_one("stale");
        }
        p.pid = Some(pid);
        p.last_heard = Some(now);
        p.dying_at = None;
        let deadtime = Duration::from_millis(m.deadtime_ms);
        let node = p.name.clone();
        if p.state != NodeState::Up || p.incarnation != Some(m.incarnation) {
            let old = p.incarnation.filter(|_| p.state == NodeState::Up);
            p.state = NodeState::Up;
            p.dead_reason = None;
            p.incarnation = Some(m.incarnation);
            p.left = false;
            p.deadtime = Some(deadtime);
            let ev = match old {
                Some(old) if old != m.incarnation => Event::NodeRestarted {
                    node: node.clone(),
                    old,
                    new: m.incarnation,
                },
                _ => Event::NodeUp {
                    node: node.clone(),
                    incarnation: m.incarnation,
                },
            };
            self.outputs.push(Output::Event(ev));
            self.outputs.push(Output::Event(Event::PeerIncarnation {
                node: node.clone(),
                incarnation: m.incarnation,
                left: false,
            }));
            self.outputs.push(Output::Event(Event::PeerDeadtime {
                node: node.clone(),
                incarnation: m.incarnation,
                deadtime,
            }));
        } else if p.deadtime != Some(deadtime) {
            p.deadtime = Some(deadtime);
            self.outputs.push(Output::Event(Event::PeerDeadtime {
                node: node.clone(),
                incarnation: m.incarnation,
                deadtime,
            }));
        }
        let incarnation = m.incarnation;
        match m.body {
            None | Some(Body::Keepalive(_)) => {}
            Some(Body::Leaving) => self.dead(i, DeadReason::Left, now),
            Some(Body::Groups(report)) => self.outputs.push(Output::Event(Event::Report {
                node,
                incarnation,
                report,
            })),
            Some(Body::Outdate(outdate)) => self
                .outputs
                .push(Output::Event(Event::Outdate { node, outdate })),
        }
    }

    pub fn status(&self, now: Duration) -> MembershipStatus {
        let link = |up: bool| {
            vec![LinkStatus {
                medium: "corosync".into(),
                state: if up {
                    super::LinkState::Up
                } else {
                    super::LinkState::Dead
                },
            }]
        };
        let mut nodes = Vec::with_capacity(self.peers.len() + 1);
        for name in &self.cfg.base.nodes {
            if nodes.iter().any(|n: &NodeStatus| n.name == *name) {
                continue;
            }
            if *name == self.cfg.base.node {
                nodes.push(NodeStatus {
                    name: name.clone(),
                    state: NodeState::Up,
                    links: link(self.connected),
                    incarnation: Some(self.incarnation),
                    last_heard_ms: None,
                    dead_reason: None,
                });
                continue;
            }
            let Some(p) = self.peers.iter().find(|p| p.name == *name) else {
                continue;
            };
            nodes.push(NodeStatus {
                name: p.name.clone(),
                state: p.state,
                links: link(p.pid.is_some()),
                incarnation: p.incarnation,
                last_heard_ms: p
                    .last_heard
                    .map(|t| u64::try_from(now.saturating_sub(t).as_millis()).unwrap_or(u64::MAX)),
                dead_reason: (p.state == NodeState::Dead)
                    .then_some(p.dead_reason)
                    .flatten(),
            });
        }
        MembershipStatus {
            node: self.cfg.base.node.clone(),
            incarnation: self.incarnation,
            nodes,
            counters: self.counters.clone(),
        }
    }

    /// State of `node`; `Up` for ourselves.
    pub fn node_state(&self, node: &str) -> Option<NodeState> {
        if node == self.cfg.base.node {
            return Some(NodeState::Up);
        }
        self.peers.iter().find(|p| p.name == node).map(|p| p.state)
    }
}

/// The peers of `cfg`, keeping what `old` knew of those still listed.
fn peers_of(cfg: &CpgConfig, old: &[Peer]) -> Vec<Peer> {
    let mut peers: Vec<Peer> = Vec::new();
    for name in &cfg.base.nodes {
        if *name == cfg.base.node || peers.iter().any(|p| p.name == *name) {
            continue;
        }
        let id = cfg
            .ids
            .iter()
            .find(|(_, n)| n.eq_ignore_ascii_case(name))
            .map(|&(id, _)| id);
        let p = old.iter().find(|p| p.name == *name).cloned();
        peers.push(match p {
            Some(mut p) => {
                p.id = id;
                p
            }
            None => Peer {
                name: name.clone(),
                id,
                state: NodeState::Unknown,
                pid: None,
                incarnation: None,
                left: false,
                dead_reason: None,
                dying_at: None,
                last_heard: None,
                deadtime: None,
            },
        });
    }
    peers
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn cfg(me: &str) -> CpgConfig {
        let nodes: Vec<String> = ["n1", "n2", "n3"].iter().map(|s| s.to_string()).collect();
        CpgConfig {
            base: MembershipConfig {
                cluster: "c".into(),
                node: me.into(),
                nodes: nodes.clone(),
                media: Vec::new(),
                keepalive: ms(200),
                deadtime: ms(2000),
                warntime: ms(1000),
                initdead: ms(4000),
                keys: crate::wire::AuthKeys {
                    active: 1,
                    keys: Vec::new(),
                },
                accept_weaker_keys: false,
            },
            ids: vec![(1, "n1".into()), (2, "n2".into()), (3, "n3".into())],
            stop_margin: ms(1000),
            deadtime: ms(2000),
            pid: 100,
        }
    }

    fn events(m: &mut CpgMembership) -> Vec<Event> {
        m.take_outputs()
            .into_iter()
            .filter_map(|o| match o {
                Output::Event(e) => Some(e),
                Output::Send(_) => None,
            })
            .collect()
    }

    /// The bytes sent (the events stay).
    fn sent(m: &mut CpgMembership) -> Vec<Vec<u8>> {
        let (sends, events): (Vec<Output>, Vec<Output>) = m
            .take_outputs()
            .into_iter()
            .partition(|o| matches!(o, Output::Send(_)));
        m.outputs = events;
        sends
            .into_iter()
            .filter_map(|o| match o {
                Output::Send(b) => Some(b),
                Output::Event(_) => None,
            })
            .collect()
    }

    /// Delivers `msgs` to `to` as sent by member `from` (nodeid, pid).
    fn deliver(to: &mut CpgMembership, msgs: Vec<Vec<u8>>, from: (u32, u32), at: Duration) {
        for bytes in msgs {
            to.on_input(
                CpgInput::Message {
                    nodeid: from.0,
                    pid: from.1,
                    bytes,
                },
                at,
            );
        }
    }

    /// Two machines of one group: n1 (pid 100) and n2 (pid 200).
    fn pair() -> (CpgMembership, CpgMembership) {
        let mut a = CpgMembership::new(cfg("n1"), 11, ms(0));
        let mut c2 = cfg("n2");
        c2.pid = 200;
        let mut b = CpgMembership::new(c2, 22, ms(0));
        a.on_input(CpgInput::Connected { local: 1 }, ms(0));
        b.on_input(CpgInput::Connected { local: 2 }, ms(0));
        let both = vec![(1, 100), (2, 200)];
        for m in [&mut a, &mut b] {
            m.on_input(
                CpgInput::Confchg {
                    members: both.clone(),
                    left: vec![],
                    joined: both.clone(),
                },
                ms(10),
            );
        }
        let from_a = sent(&mut a);
        let from_b = sent(&mut b);
        assert_eq!(from_a.len(), 1);
        deliver(&mut b, from_a, (1, 100), ms(20));
        deliver(&mut a, from_b, (2, 200), ms(20));
        (a, b)
    }

    #[test]
    fn hello_brings_peers_up_and_absent_ones_are_never_heard() {
        let (mut a, _b) = pair();
        let ev = events(&mut a);
        assert!(!ev.iter().any(|e| matches!(e, Event::NodeDead { .. })));
        assert_eq!(a.node_state("n3"), Some(NodeState::Unknown));
        assert_eq!(a.next_deadline(), ms(4000));
        a.tick(ms(4000));
        assert!(events(&mut a).contains(&Event::NodeDead {
            node: "n3".into(),
            reason: DeadReason::NeverHeard,
            silence: None
        }));
        assert!(ev.contains(&Event::NodeUp {
            node: "n2".into(),
            incarnation: 22
        }));
        assert!(ev.contains(&Event::PeerDeadtime {
            node: "n2".into(),
            incarnation: 22,
            deadtime: ms(2000)
        }));
        assert_eq!(a.node_state("n2"), Some(NodeState::Up));
        let st = a.status(ms(30));
        assert_eq!(st.nodes.len(), 3);
        assert_eq!(st.nodes[1].state, NodeState::Up);
    }

    #[test]
    fn reports_are_delivered_and_a_clean_leave_is_dead_at_once() {
        let (mut a, mut b) = pair();
        events(&mut a);
        let report = crate::wire::GroupReport::default();
        b.broadcast(Body::Groups(report.clone()));
        deliver(&mut a, sent(&mut b), (2, 200), ms(30));
        assert_eq!(
            events(&mut a),
            vec![Event::Report {
                node: "n2".into(),
                incarnation: 22,
                report
            }]
        );
        b.leave(ms(40));
        deliver(&mut a, sent(&mut b), (2, 200), ms(40));
        let ev = events(&mut a);
        assert!(ev.contains(&Event::NodeDead {
            node: "n2".into(),
            reason: DeadReason::Left,
            silence: Some(ms(0))
        }));
    }

    #[test]
    fn a_failure_is_dead_after_the_stop_margin_unless_it_comes_back() {
        let (mut a, _b) = pair();
        events(&mut a);
        let lost = CpgInput::Confchg {
            members: vec![(1, 100)],
            left: vec![(2, 200, false)],
            joined: vec![],
        };
        a.on_input(lost.clone(), ms(100));
        assert!(events(&mut a).is_empty());
        assert_eq!(a.next_deadline(), ms(1100));
        a.tick(ms(1099));
        assert!(events(&mut a).is_empty());
        a.tick(ms(1100));
        assert_eq!(
            events(&mut a),
            vec![Event::NodeDead {
                node: "n2".into(),
                reason: DeadReason::Timeout,
                silence: Some(ms(1080))
            }]
        );
        // Back within the margin (a partition that healed at once): never dead.
        let (mut a, mut b) = pair();
        events(&mut a);
        a.on_input(lost, ms(100));
        let back = vec![(1, 100), (2, 200)];
        a.on_input(
            CpgInput::Confchg {
                members: back.clone(),
                left: vec![],
                joined: vec![(2, 200)],
            },
            ms(500),
        );
        b.on_input(
            CpgInput::Confchg {
                members: back,
                left: vec![],
                joined: vec![(1, 100)],
            },
            ms(500),
        );
        deliver(&mut a, sent(&mut b), (2, 200), ms(510));
        a.tick(ms(5000));
        assert!(!events(&mut a)
            .iter()
            .any(|e| matches!(e, Event::NodeDead { node, .. } if node == "n2")));
        assert_eq!(a.node_state("n2"), Some(NodeState::Up));
    }

    #[test]
    fn forged_names_garbage_and_own_echo_are_dropped() {
        let (mut a, mut b) = pair();
        events(&mut a);
        b.broadcast(Body::Leaving);
        let bytes = sent(&mut b).remove(0);
        // n3's nodeid carrying n2's name: dropped.
        a.on_input(
            CpgInput::Message {
                nodeid: 3,
                pid: 300,
                bytes: bytes.clone(),
            },
            ms(30),
        );
        a.on_input(
            CpgInput::Message {
                nodeid: 2,
                pid: 200,
                bytes: vec![0xff; 40],
            },
            ms(30),
        );
        assert!(events(&mut a).is_empty());
        assert_eq!(a.counters().dropped["unknown_node"], 1);
        assert_eq!(a.counters().dropped["garbage"], 1);
        assert_eq!(a.node_state("n2"), Some(NodeState::Up));
        // Its own messages come back from the group: ignored.
        a.broadcast(Body::Leaving);
        let own = sent(&mut a);
        deliver(&mut a, own, (1, 100), ms(40));
        assert!(events(&mut a).is_empty());
        // Another hbd under this node's id: a duplicate.
        let mut c1 = cfg("n1");
        c1.pid = 101;
        let mut twin = CpgMembership::new(c1, 12, ms(0));
        twin.on_input(CpgInput::Connected { local: 1 }, ms(0));
        twin.broadcast(Body::Leaving);
        deliver(&mut a, sent(&mut twin), (1, 101), ms(50));
        assert_eq!(
            events(&mut a),
            vec![Event::DuplicateNode { incarnation: 12 }]
        );
    }

    #[test]
    fn quorum_and_a_lost_connection() {
        let (mut a, _b) = pair();
        events(&mut a);
        let q = EngineQuorum {
            quorate: true,
            votes: 2,
            needed: 2,
            expected: 3,
            settling: false,
            syncing: false,
        };
        let ring = || CpgInput::Quorum {
            quorum: q,
            ring: vec![1, 2],
        };
        a.on_input(ring(), ms(50));
        a.on_input(ring(), ms(60));
        assert_eq!(events(&mut a), vec![Event::Quorum(q)]);
        a.on_input(
            CpgInput::Disconnected {
                why: "corosync stopped".into(),
            },
            ms(100),
        );
        let ev = events(&mut a);
        assert!(
            matches!(ev[..], [Event::Quorum(EngineQuorum { quorate: false, .. })]),
            "{ev:?}"
        );
        a.tick(ms(1100));
        assert!(events(&mut a).contains(&Event::NodeDead {
            node: "n2".into(),
            reason: DeadReason::Timeout,
            silence: Some(ms(1080))
        }));
        assert!(!a.connected());
    }

    /// Quorum regained with a node of the ring still dead in hbd's view
    /// (from the partition): held until its hello arrives, or initdead.
    #[test]
    fn quorum_waits_for_every_node_of_the_ring() {
        let (mut a, mut b) = pair();
        events(&mut a);
        let q = |quorate| EngineQuorum {
            quorate,
            votes: if quorate { 2 } else { 1 },
            needed: 2,
            expected: 3,
            settling: false,
            syncing: false,
        };
        // Partition: n2 lost, dead after the margin, no quorum.
        a.on_input(
            CpgInput::Confchg {
                members: vec![(1, 100)],
                left: vec![(2, 200, false)],
                joined: vec![],
            },
            ms(100),
        );
        a.on_input(
            CpgInput::Quorum {
                quorum: q(false),
                ring: vec![1],
            },
            ms(100),
        );
        a.tick(ms(1100));
        assert_eq!(a.node_state("n2"), Some(NodeState::Dead));
        events(&mut a);
        // Healed: votequorum says quorate before n2's hello arrived.
        a.on_input(
            CpgInput::Quorum {
                quorum: q(true),
                ring: vec![1, 2],
            },
            ms(2000),
        );
        let ev = events(&mut a);
        assert!(
            matches!(
                ev[..],
                [Event::Quorum(EngineQuorum {
                    quorate: true,
                    settling: true,
                    ..
                })]
            ),
            "{ev:?}"
        );
        assert!(a.next_deadline() <= ms(6000));
        let back = vec![(1, 100), (2, 200)];
        a.on_input(
            CpgInput::Confchg {
                members: back.clone(),
                left: vec![],
                joined: vec![(1, 100)],
            },
            ms(2010),
        );
        b.on_input(
            CpgInput::Confchg {
                members: back,
                left: vec![],
                joined: vec![(1, 100)],
            },
            ms(2010),
        );
        deliver(&mut a, sent(&mut b), (2, 200), ms(2020));
        let ev = events(&mut a);
        let up = ev
            .iter()
            .position(|e| matches!(e, Event::NodeUp { .. }))
            .unwrap();
        let quorate = ev
            .iter()
            .position(|e| {
                matches!(
                    e,
                    Event::Quorum(EngineQuorum {
                        settling: false,
                        syncing: false,
                        ..
                    })
                )
            })
            .unwrap();
        assert!(up < quorate, "{ev:?}");
        // A node of the ring whose hbd never speaks: quorate after initdead.
        let (mut a, _b) = pair();
        a.on_input(
            CpgInput::Quorum {
                quorum: q(true),
                ring: vec![1, 2, 3],
            },
            ms(100),
        );
        assert!(a.quorum().is_some_and(|q| q.settling));
        a.tick(ms(4100));
        assert!(a.quorum().is_some_and(|q| q.quorate && !q.settling));
    }

    /// votequorum's sync after the ring lost a node: the quorum it said
    /// before is stale until the sync ends (a quorum device may take its
    /// whole sync_timeout): passed on as syncing, then as decided.
    #[test]
    fn a_sync_after_a_loss_marks_the_quorum_stale_until_it_ends() {
        let (mut a, _b) = pair();
        let q = |quorate, votes| EngineQuorum {
            quorate,
            votes,
            needed: 2,
            expected: 3,
            settling: false,
            syncing: false,
        };
        a.on_input(
            CpgInput::Quorum {
                quorum: q(true, 3),
                ring: vec![1, 2],
            },
            ms(50),
        );
        events(&mut a);
        a.on_input(CpgInput::Sync { ring: vec![1] }, ms(100));
        let ev = events(&mut a);
        assert!(
            matches!(
                ev[..],
                [Event::Quorum(EngineQuorum {
                    quorate: true,
                    syncing: true,
                    ..
                })]
            ),
            "{ev:?}"
        );
        a.on_input(
            CpgInput::Quorum {
                quorum: q(false, 1),
                ring: vec![1],
            },
            ms(12_000),
        );
        let ev: Vec<Event> = events(&mut a)
            .into_iter()
            .filter(|e| matches!(e, Event::Quorum(_)))
            .collect();
        assert!(
            matches!(
                ev[..],
                [Event::Quorum(EngineQuorum {
                    quorate: false,
                    syncing: false,
                    ..
                })]
            ),
            "{ev:?}"
        );
        // A ring that only grows is no loss: nothing stale to hold.
        a.on_input(CpgInput::Sync { ring: vec![1, 2] }, ms(13_000));
        assert!(a.quorum().is_some_and(|q| !q.syncing));
    }

    /// Quorum regained while a node of the ring (listed all along, the
    /// ring being stale) is dead in hbd's view: held until it is heard,
    /// initdead counted from the regain (the campaign's witness_loss heal).
    #[test]
    fn regained_quorum_waits_for_a_dead_node_the_ring_listed_all_along() {
        let (mut a, _b) = pair();
        let q = |quorate| EngineQuorum {
            quorate,
            votes: 2,
            needed: 2,
            expected: 3,
            settling: false,
            syncing: false,
        };
        let input = |quorate| CpgInput::Quorum {
            quorum: q(quorate),
            ring: vec![1, 2],
        };
        a.on_input(input(true), ms(50));
        a.on_input(input(false), ms(100));
        a.on_input(
            CpgInput::Confchg {
                members: vec![(1, 100)],
                left: vec![(2, 200, false)],
                joined: vec![],
            },
            ms(100),
        );
        a.tick(ms(9000));
        assert_eq!(a.node_state("n2"), Some(NodeState::Dead));
        a.on_input(input(true), ms(10_000));
        assert!(a.quorum().is_some_and(|q| q.quorate && q.settling));
        a.tick(ms(14_000));
        assert!(a.quorum().is_some_and(|q| !q.settling));
    }
}
