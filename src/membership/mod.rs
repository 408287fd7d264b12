//! heartbeat membership as a state machine without I/O.
//!
//! Inputs: datagrams (with the medium they arrived on) and the passage of time,
//! always with `now`, a monotonic [`Duration`] since an epoch the caller picks.
//! Outputs: [`Output`]s queued inside the machine and drained with
//! [`Membership::take_outputs`]: datagrams to send on every medium, and events
//! to log and act on. The caller must call [`Membership::tick`] at (or soon after)
//! [`Membership::next_deadline`].
//!
//! Rules (heartbeat's, tightened):
//! - a keepalive goes out every `keepalive` on every medium at once;
//! - a node is up while any medium delivers valid datagrams from it; each
//!   (node, medium) link is up while that medium delivers them, dead after
//!   `deadtime` of silence on it;
//! - a node is dead after `deadtime` of silence on every medium, or at once when
//!   it says it is [`Body::Leaving`];
//! - before a node has ever been heard it is `unknown` and is declared dead only
//!   `initdead` after our start;
//! - a datagram that arrives more than `warntime` after the previous one from
//!   that node raises [`Event::LateHeartbeat`];
//! - datagrams are authenticated, then checked for cluster name, node list,
//!   incarnation and per-medium sequence; a failing one changes nothing but a
//!   counter;
//! - a higher incarnation means the node restarted (sequence numbers start
//!   over; [`Event::NodeRestarted`] if it was up); a lower one, or the one that
//!   said `Leaving`, is stale; within an incarnation each medium must bring
//!   increasing sequence numbers (the same datagram arrives once per medium);
//! - our own name with another incarnation raises [`Event::DuplicateNode`];
//! - deaths due at `now` are declared before a datagram is handled, so a late
//!   `tick` never hides one.

pub mod cpg;
pub mod engine;
#[cfg(test)]
mod sim;
#[cfg(test)]
mod tests;

use crate::wire::{AuthKeys, Body, DropReason, Keepalive, Message};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::time::Duration;

/// Index of a medium in [`MembershipConfig::media`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct MediumId(pub u16);

/// What the machine needs from the configuration.
#[derive(Debug, Clone)]
pub struct MembershipConfig {
    pub cluster: String,
    /// This node.
    pub node: String,
    /// Every node of the cluster, this one included.
    pub nodes: Vec<String>,
    /// Medium names (`bcast eth0`...), indexed by [`MediumId`].
    pub media: Vec<String>,
    pub keepalive: Duration,
    pub deadtime: Duration,
    pub warntime: Duration,
    pub initdead: Duration,
    pub keys: AuthKeys,
    /// Accept datagrams signed with keys weaker than the signing key's
    /// method (cluster.toml `[cluster] accept_weaker_keys`); otherwise they
    /// are dropped as forged (see [`crate::config::receive_keys`]).
    pub accept_weaker_keys: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NodeState {
    /// Never heard, and `initdead` has not passed yet.
    Unknown,
    Up,
    Dead,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LinkState {
    Unknown,
    Up,
    Dead,
}

/// Why a node was declared dead.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeadReason {
    /// Silent for `deadtime` on every medium.
    Timeout,
    /// Never heard within `initdead` of our start.
    NeverHeard,
    /// It announced an orderly shutdown.
    Left,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    NodeUp {
        node: String,
        incarnation: u64,
    },
    NodeDead {
        node: String,
        reason: DeadReason,
        /// Time since the last valid datagram from it, if it was ever heard.
        silence: Option<Duration>,
    },
    /// A new incarnation while the node was up: it restarted faster than deadtime.
    NodeRestarted {
        node: String,
        old: u64,
        new: u64,
    },
    LinkUp {
        node: String,
        medium: MediumId,
    },
    LinkDead {
        node: String,
        medium: MediumId,
    },
    /// heartbeat's "Late heartbeat": the gap exceeded `warntime`.
    LateHeartbeat {
        node: String,
        medium: MediumId,
        gap: Duration,
    },
    /// A valid datagram under our own name with another incarnation: two
    /// daemons run as the same node.
    DuplicateNode {
        incarnation: u64,
    },
    /// A resource-group report from an up node, delivered once however many
    /// media carried it, and only if newer than the last one delivered.
    Report {
        node: String,
        incarnation: u64,
        report: crate::wire::GroupReport,
    },
    /// A built-in outdater message (request or answer) from `node`, one
    /// per medium that carried it: handling it is idempotent.
    Outdate {
        node: String,
        outdate: crate::wire::Outdate,
    },
    /// What this node must remember of `node` across its own restarts
    /// changed: its newest incarnation, and whether that one left. The
    /// runtime persists it (state dir) and gives it back with
    /// [`Membership::remember`] at the next start, so datagrams of older
    /// incarnations captured before are still stale then (issue 14,
    /// finding 8).
    PeerIncarnation {
        node: String,
        incarnation: u64,
        left: bool,
    },
    /// `node`'s keepalives announce the deadtime it declares peers dead
    /// with (first heard in this incarnation, or changed by a reload). The
    /// group machine's leases follow it (issue 14, finding 10).
    PeerDeadtime {
        node: String,
        incarnation: u64,
        deadtime: Duration,
    },
    /// The membership engine's quorum changed (Corosync's votequorum,
    /// [`cpg::CpgMembership`]); heartbeat membership never raises it.
    Quorum(crate::groups::EngineQuorum),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// Send these bytes on every medium (each medium to all its destinations).
    Send(Vec<u8>),
    Event(Event),
}

/// Counters for status.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counters {
    pub sent: u64,
    pub received: u64,
    pub dropped: BTreeMap<String, u64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinkStatus {
    pub medium: String,
    pub state: LinkState,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeStatus {
    pub name: String,
    pub state: NodeState,
    pub links: Vec<LinkStatus>,
    /// Its incarnation, once heard.
    pub incarnation: Option<u64>,
    /// Milliseconds since its last valid datagram.
    pub last_heard_ms: Option<u64>,
    /// Why it is dead, when it is.
    pub dead_reason: Option<DeadReason>,
}

/// A snapshot for `hbctl status`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MembershipStatus {
    pub node: String,
    pub incarnation: u64,
    /// Every node of the node list in configuration order, this one included
    /// (always up, its links up).
    pub nodes: Vec<NodeStatus>,
    pub counters: Counters,
}

/// How many foreign incarnations of our own name are remembered, so that
/// [`Event::DuplicateNode`] is raised once per incarnation without letting a
/// flood of them grow memory.
const MAX_DUPLICATES_REMEMBERED: usize = 64;

/// Shortest keepalive interval the machine schedules, whatever the
/// configuration says (a zero interval would make it spin).
const MIN_KEEPALIVE: Duration = Duration::from_millis(1);

/// How far [`Membership::next_deadline`] looks when nothing at all is pending
/// (after [`Membership::leave`], with every peer dead or unknown-forever).
const IDLE_DEADLINE: Duration = Duration::from_secs(3600);

/// One (node, medium) link as seen from here.
#[derive(Debug, Clone)]
struct Link {
    state: LinkState,
    /// Last valid datagram from the node on this medium.
    last_heard: Option<Duration>,
    /// Highest sequence number accepted on this medium in the node's current
    /// incarnation.
    last_seq: Option<u64>,
}

impl Link {
    fn new() -> Self {
        Link {
            state: LinkState::Unknown,
            last_heard: None,
            last_seq: None,
        }
    }
}

/// Everything known of one other node.
#[derive(Debug, Clone)]
struct Peer {
    name: String,
    state: NodeState,
    /// Highest incarnation heard from it.
    incarnation: Option<u64>,
    /// The incarnation that said `Leaving`: nothing more is accepted from it.
    left_incarnation: Option<u64>,
    /// Last valid datagram on any medium.
    last_heard: Option<Duration>,
    dead_reason: Option<DeadReason>,
    /// When we started waiting for it (our start, or the reconfiguration that
    /// added it): it is declared dead `initdead` later if still unknown.
    waiting_since: Duration,
    /// Indexed by [`MediumId`].
    links: Vec<Link>,
    /// Sequence number of the last report delivered (this incarnation).
    delivered: Option<u64>,
    /// The deadtime its keepalives announce (this incarnation).
    deadtime: Option<Duration>,
    /// Its newest incarnation before this node started (persisted by the
    /// runtime): older ones are stale from the first datagram on.
    remembered: Option<u64>,
}

impl Peer {
    /// What to remember of it across this node's restarts: its newest
    /// incarnation, and whether that one left.
    fn memory(&self) -> Option<(u64, bool)> {
        let newest = self.incarnation.max(self.remembered)?;
        Some((newest, self.left_incarnation == Some(newest)))
    }
}

impl Peer {
    fn new(name: String, media: usize, now: Duration) -> Self {
        Peer {
            name,
            state: NodeState::Unknown,
            incarnation: None,
            left_incarnation: None,
            last_heard: None,
            dead_reason: None,
            waiting_since: now,
            links: vec![Link::new(); media],
            delivered: None,
            deadtime: None,
            remembered: None,
        }
    }
}

/// The membership state machine; see the module documentation for its rules.
pub struct Membership {
    config: MembershipConfig,
    incarnation: u64,
    /// Sequence number of the last datagram sent.
    seq: u64,
    /// When the next keepalive is due.
    next_keepalive: Duration,
    /// `leave` was called: nothing more is sent.
    left: bool,
    /// Every node of `config.nodes` but this one, in configuration order.
    peers: Vec<Peer>,
    outputs: Vec<Output>,
    counters: Counters,
    /// Foreign incarnations of our own name already reported.
    duplicates: Vec<u64>,
    /// The latest `now` the machine was given.
    latest: Duration,
    /// The keys accepted on receive: `config.keys` filtered by strength.
    receive_keys: AuthKeys,
    /// The deadtime peers are declared dead with, and that keepalives
    /// announce: the longest configured in this incarnation. Peers trust
    /// grants and votes from this node for as long as the deadtime they
    /// heard announced, so a shorter one waits for the next start
    /// (see [`Membership::reconfigure`]).
    deadtime: Duration,
    /// Gaps between two keepalives of a peer on one medium, for the
    /// metrics ([`Membership::take_gaps`]); at most [`MAX_GAPS`] kept.
    gaps: Vec<(String, MediumId, Duration)>,
}

/// Gaps kept for [`Membership::take_gaps`] between two takes.
pub const MAX_GAPS: usize = 4096;

fn zeroed_counters() -> Counters {
    Counters {
        sent: 0,
        received: 0,
        dropped: DropReason::ALL
            .iter()
            .map(|r| (r.as_str().to_string(), 0))
            .collect(),
    }
}

fn millis_u32(d: Duration) -> u32 {
    u32::try_from(d.as_millis()).unwrap_or(u32::MAX)
}

fn build_peers(config: &MembershipConfig, now: Duration) -> Vec<Peer> {
    let mut peers: Vec<Peer> = Vec::with_capacity(config.nodes.len());
    for name in &config.nodes {
        if *name == config.node || peers.iter().any(|p| p.name == *name) {
            continue;
        }
        peers.push(Peer::new(name.clone(), config.media.len(), now));
    }
    peers
}

impl Membership {
    /// A machine for a daemon that started at `now` with `incarnation` (already
    /// persisted by the caller). The first keepalive is due at once.
    pub fn new(config: MembershipConfig, incarnation: u64, now: Duration) -> Self {
        let peers = build_peers(&config, now);
        Membership {
            deadtime: config.deadtime,
            receive_keys: crate::config::receive_keys(&config.keys, config.accept_weaker_keys),
            config,
            incarnation,
            seq: 0,
            next_keepalive: now,
            left: false,
            peers,
            outputs: Vec::new(),
            counters: zeroed_counters(),
            duplicates: Vec::new(),
            latest: now,
            gaps: Vec::new(),
        }
    }

    /// The gaps between consecutive keepalives (or group reports) of each
    /// peer on each medium since the last call: `(peer, medium, gap)`.
    pub fn take_gaps(&mut self) -> Vec<(String, MediumId, Duration)> {
        std::mem::take(&mut self.gaps)
    }

    /// Our own incarnation.
    pub fn incarnation(&self) -> u64 {
        self.incarnation
    }

    /// The deadtime peers are declared dead with and that keepalives
    /// announce: the longest configured since this incarnation started.
    pub fn deadtime(&self) -> Duration {
        self.deadtime
    }

    /// Whether [`Membership::leave`] was called.
    pub fn has_left(&self) -> bool {
        self.left
    }

    /// The counters as they stand.
    pub fn counters(&self) -> &Counters {
        &self.counters
    }

    /// State of the link to `node` on `medium`; `None` for ourselves, a node
    /// not in the list or a medium out of range.
    pub fn link_state(&self, node: &str, medium: MediumId) -> Option<LinkState> {
        self.peer(node)
            .and_then(|p| p.links.get(medium.0 as usize))
            .map(|l| l.state)
    }

    fn peer(&self, node: &str) -> Option<&Peer> {
        self.peers.iter().find(|p| p.name == node)
    }

    fn drop_datagram(&mut self, reason: DropReason) -> Result<(), DropReason> {
        *self
            .counters
            .dropped
            .entry(reason.as_str().to_string())
            .or_insert(0) += 1;
        Err(reason)
    }

    fn event(&mut self, event: Event) {
        self.outputs.push(Output::Event(event));
    }

    fn send(&mut self, body: Body) {
        let msg = Message {
            cluster: self.config.cluster.clone(),
            from: self.config.node.clone(),
            incarnation: self.incarnation,
            seq: self.seq.saturating_add(1),
            body,
        };
        // Encoding fails only for names longer than MAX_NAME, which config
        // validation rejects; such a machine stays silent rather than panic.
        if let Ok(bytes) = crate::wire::encode(&msg, &self.config.keys) {
            self.seq = msg.seq;
            self.counters.sent += 1;
            self.outputs.push(Output::Send(bytes));
        }
    }

    fn keepalive_interval(&self) -> Duration {
        self.config.keepalive.max(MIN_KEEPALIVE)
    }

    /// Declares dead the links and nodes silent for `deadtime`, and the
    /// unknown nodes whose `initdead` has passed.
    fn expire(&mut self, now: Duration) {
        let deadtime = self.deadtime;
        let initdead = self.config.initdead;
        let mut events = Vec::new();
        for peer in &mut self.peers {
            for (i, link) in peer.links.iter_mut().enumerate() {
                if link.state != LinkState::Up {
                    continue;
                }
                let last = link.last_heard.unwrap_or_default();
                if now >= last.saturating_add(deadtime) {
                    link.state = LinkState::Dead;
                    events.push(Event::LinkDead {
                        node: peer.name.clone(),
                        medium: MediumId(i as u16),
                    });
                }
            }
            match peer.state {
                NodeState::Up => {
                    let last = peer.last_heard.unwrap_or_default();
                    if now >= last.saturating_add(deadtime) {
                        peer.state = NodeState::Dead;
                        peer.dead_reason = Some(DeadReason::Timeout);
                        // Every link went silent at least as long ago.
                        for link in &mut peer.links {
                            if link.state == LinkState::Up {
                                link.state = LinkState::Dead;
                            }
                        }
                        events.push(Event::NodeDead {
                            node: peer.name.clone(),
                            reason: DeadReason::Timeout,
                            silence: Some(now.saturating_sub(last)),
                        });
                    }
                }
                NodeState::Unknown => {
                    if now >= peer.waiting_since.saturating_add(initdead) {
                        peer.state = NodeState::Dead;
                        peer.dead_reason = Some(DeadReason::NeverHeard);
                        events.push(Event::NodeDead {
                            node: peer.name.clone(),
                            reason: DeadReason::NeverHeard,
                            silence: None,
                        });
                    }
                }
                NodeState::Dead => {}
            }
        }
        self.outputs.extend(events.into_iter().map(Output::Event));
    }

    /// One received datagram on `medium`. `Err` tells why it was dropped (the
    /// counter is already counted); the caller may log it at trace level.
    ///
    /// Deaths due by `now` are declared first, as [`Membership::tick`] would,
    /// so a late tick never lets a datagram revive a node silently. A
    /// `medium` outside `config.media` is a caller bug; such datagrams are
    /// dropped as [`DropReason::Malformed`].
    pub fn on_datagram(
        &mut self,
        medium: MediumId,
        bytes: &[u8],
        now: Duration,
    ) -> Result<(), DropReason> {
        self.latest = self.latest.max(now);
        self.expire(now);
        let m = medium.0 as usize;
        if m >= self.config.media.len() {
            return self.drop_datagram(DropReason::Malformed);
        }
        let msg = match crate::wire::decode(bytes, &self.receive_keys) {
            Ok(msg) => msg,
            Err(e) => return self.drop_datagram(e.drop_reason()),
        };
        if msg.cluster != self.config.cluster {
            return self.drop_datagram(DropReason::OtherCluster);
        }
        if msg.from == self.config.node {
            if msg.incarnation != self.incarnation && !self.duplicates.contains(&msg.incarnation) {
                if self.duplicates.len() >= MAX_DUPLICATES_REMEMBERED {
                    self.duplicates.remove(0);
                }
                self.duplicates.push(msg.incarnation);
                self.event(Event::DuplicateNode {
                    incarnation: msg.incarnation,
                });
            }
            return self.drop_datagram(DropReason::Own);
        }
        let Some(idx) = self.peers.iter().position(|p| p.name == msg.from) else {
            return self.drop_datagram(DropReason::UnknownNode);
        };
        let warntime = self.config.warntime;
        let peer = &self.peers[idx];
        if peer
            .incarnation
            .max(peer.remembered)
            .is_some_and(|known| msg.incarnation < known)
            || peer.left_incarnation == Some(msg.incarnation)
        {
            return self.drop_datagram(DropReason::Stale);
        }
        let restarted = peer
            .incarnation
            .is_some_and(|known| msg.incarnation > known);
        if !restarted && peer.links[m].last_seq.is_some_and(|last| msg.seq <= last) {
            return self.drop_datagram(DropReason::Replay);
        }

        // Accepted.
        self.counters.received += 1;
        let mut events = Vec::new();
        let peer = &mut self.peers[idx];
        let memory = peer.memory();
        if restarted {
            peer.delivered = None;
            peer.deadtime = None;
            for link in &mut peer.links {
                link.last_seq = None;
            }
            if peer.state == NodeState::Up {
                events.push(Event::NodeRestarted {
                    node: peer.name.clone(),
                    old: peer.incarnation.unwrap_or_default(),
                    new: msg.incarnation,
                });
            }
        }
        let was_up = peer.state == NodeState::Up;
        let previous = peer.last_heard;
        let mut deadtime_event = None;
        let mut gap = None;
        peer.incarnation = Some(msg.incarnation);
        // `now` is when the datagram arrived; one of another medium may
        // have been taken first with a later arrival: never back.
        peer.last_heard = Some(previous.map_or(now, |p| p.max(now)));
        let link = &mut peer.links[m];
        let link_previous = link.last_heard;
        link.last_heard = Some(link.last_heard.map_or(now, |l| l.max(now)));
        link.last_seq = Some(msg.seq);

        if let Body::Keepalive(k) = &msg.body {
            let announced = Duration::from_millis(u64::from(k.deadtime_ms));
            if peer.deadtime != Some(announced) {
                peer.deadtime = Some(announced);
                // Queued after NodeUp/NodeRestarted: the group machine
                // knows the incarnation first.
                deadtime_event = Some(Event::PeerDeadtime {
                    node: peer.name.clone(),
                    incarnation: msg.incarnation,
                    deadtime: announced,
                });
            }
        }
        match msg.body {
            Body::Keepalive(_) | Body::Groups(_) => {
                if let (true, Some(prev)) = (was_up, link_previous) {
                    gap = Some((peer.name.clone(), medium, now.saturating_sub(prev)));
                }
                if let (true, Some(prev)) = (was_up, previous) {
                    let gap = now.saturating_sub(prev);
                    if gap > warntime {
                        events.push(Event::LateHeartbeat {
                            node: peer.name.clone(),
                            medium,
                            gap,
                        });
                    }
                }
                if link.state != LinkState::Up {
                    link.state = LinkState::Up;
                    events.push(Event::LinkUp {
                        node: peer.name.clone(),
                        medium,
                    });
                }
                if !was_up {
                    peer.state = NodeState::Up;
                    peer.dead_reason = None;
                    events.push(Event::NodeUp {
                        node: peer.name.clone(),
                        incarnation: msg.incarnation,
                    });
                }
                if let Body::Groups(report) = msg.body {
                    if peer.delivered.is_none_or(|d| msg.seq > d) {
                        peer.delivered = Some(msg.seq);
                        events.push(Event::Report {
                            node: peer.name.clone(),
                            incarnation: msg.incarnation,
                            report,
                        });
                    }
                }
            }
            Body::Outdate(outdate) => events.push(Event::Outdate {
                node: peer.name.clone(),
                outdate,
            }),
            Body::Leaving => {
                peer.left_incarnation = Some(msg.incarnation);
                for (i, link) in peer.links.iter_mut().enumerate() {
                    if link.state == LinkState::Up {
                        events.push(Event::LinkDead {
                            node: peer.name.clone(),
                            medium: MediumId(i as u16),
                        });
                    }
                    link.state = LinkState::Dead;
                }
                let was_dead = peer.state == NodeState::Dead;
                peer.state = NodeState::Dead;
                peer.dead_reason = Some(DeadReason::Left);
                if !was_dead {
                    events.push(Event::NodeDead {
                        node: peer.name.clone(),
                        reason: DeadReason::Left,
                        silence: Some(Duration::ZERO),
                    });
                }
            }
        }
        events.extend(deadtime_event);
        if let Some((incarnation, left)) = peer.memory().filter(|m| Some(*m) != memory) {
            events.push(Event::PeerIncarnation {
                node: peer.name.clone(),
                incarnation,
                left,
            });
        }
        self.outputs.extend(events.into_iter().map(Output::Event));
        if self.gaps.len() < MAX_GAPS {
            self.gaps.extend(gap);
        }
        Ok(())
    }

    /// What a previous run of this node last saw of `node` (see
    /// [`Event::PeerIncarnation`]): datagrams of older incarnations are
    /// stale, and of `incarnation` too when it had left. Nothing else
    /// changes: the node stays unknown until heard. Ignored for a node not
    /// in the list; never lowers what is known.
    pub fn remember(&mut self, node: &str, incarnation: u64, left: bool) {
        let Some(peer) = self.peers.iter_mut().find(|p| p.name == node) else {
            return;
        };
        if peer.memory().is_some_and(|(known, _)| known > incarnation) {
            return;
        }
        peer.remembered = Some(incarnation);
        if left {
            peer.left_incarnation = Some(incarnation);
        }
    }

    /// Sends `body` (a group report) on every medium now, as the next datagram
    /// of this incarnation. Nothing is sent after [`Membership::leave`].
    pub fn broadcast(&mut self, body: Body) {
        if !self.left {
            self.send(body);
        }
    }

    /// Time passes: sends due keepalives, declares silent links and nodes dead.
    pub fn tick(&mut self, now: Duration) {
        self.latest = self.latest.max(now);
        self.expire(now);
        if self.left || now < self.next_keepalive {
            return;
        }
        let body = Body::Keepalive(Keepalive {
            keepalive_ms: millis_u32(self.config.keepalive),
            deadtime_ms: millis_u32(self.deadtime),
        });
        self.send(body);
        // Next slot on the original grid, skipping the ones already missed.
        let interval = self.keepalive_interval().as_nanos();
        let behind = now.saturating_sub(self.next_keepalive).as_nanos();
        let step = (behind / interval + 1).saturating_mul(interval);
        let step = Duration::from_nanos(u64::try_from(step).unwrap_or(u64::MAX));
        self.next_keepalive = self.next_keepalive.saturating_add(step);
    }

    /// When `tick` next has something to do: the next keepalive, the moment an
    /// up link or node has been silent for `deadtime`, or `initdead` for a node
    /// still unknown. Exact, so deaths are declared at `deadtime` and not at the
    /// next keepalive. When nothing is pending (after `leave`, every peer
    /// dead) it is an hour past the latest `now` the machine was given.
    pub fn next_deadline(&self) -> Duration {
        let deadtime = self.deadtime;
        let mut next: Option<Duration> = (!self.left).then_some(self.next_keepalive);
        let mut consider = |t: Duration| {
            next = Some(next.map_or(t, |n| n.min(t)));
        };
        for peer in &self.peers {
            for link in &peer.links {
                if link.state == LinkState::Up {
                    consider(link.last_heard.unwrap_or_default().saturating_add(deadtime));
                }
            }
            match peer.state {
                NodeState::Up => {
                    consider(peer.last_heard.unwrap_or_default().saturating_add(deadtime))
                }
                NodeState::Unknown => {
                    consider(peer.waiting_since.saturating_add(self.config.initdead))
                }
                NodeState::Dead => {}
            }
        }
        next.unwrap_or_else(|| self.latest.saturating_add(IDLE_DEADLINE))
    }

    /// Orderly shutdown: queues a `Leaving` datagram. The machine sends nothing after it.
    pub fn leave(&mut self, now: Duration) {
        self.latest = self.latest.max(now);
        if self.left {
            return;
        }
        self.send(Body::Leaving);
        self.left = true;
    }

    /// SIGHUP with a valid new configuration: keeps what is known of nodes that
    /// stay, adds new nodes as unknown, forgets removed ones, re-indexes media.
    ///
    /// Nodes that stay keep their state, incarnation and links on the media
    /// that stay (matched by name); new media start unknown. New nodes wait
    /// `initdead` from `now`. The new timing applies at once: deadlines are
    /// recomputed from the last datagrams with the new `deadtime`, and the
    /// next keepalive goes out no later than `now + keepalive`.
    ///
    /// A longer deadtime applies at once; a shorter one only from the next
    /// start: peers may still count on the longer one it announced (their
    /// grant and quorum leases do), and may not hear the new one before
    /// they act on it. [`Membership::deadtime`] tells which one runs.
    pub fn reconfigure(&mut self, config: MembershipConfig, now: Duration) {
        self.deadtime = self.deadtime.max(config.deadtime);
        self.receive_keys = crate::config::receive_keys(&config.keys, config.accept_weaker_keys);
        self.latest = self.latest.max(now);
        let mut old = std::mem::take(&mut self.peers);
        let mut peers = build_peers(&config, now);
        for peer in &mut peers {
            let Some(pos) = old.iter().position(|p| p.name == peer.name) else {
                continue;
            };
            let mut kept = old.swap_remove(pos);
            let links = config
                .media
                .iter()
                .map(|name| {
                    self.config
                        .media
                        .iter()
                        .position(|m| m == name)
                        .and_then(|i| kept.links.get(i).cloned())
                        .unwrap_or_else(Link::new)
                })
                .collect();
            kept.links = links;
            *peer = kept;
        }
        self.peers = peers;
        let interval = config.keepalive.max(MIN_KEEPALIVE);
        self.next_keepalive = self.next_keepalive.min(now.saturating_add(interval));
        self.config = config;
    }

    pub fn take_outputs(&mut self) -> Vec<Output> {
        std::mem::take(&mut self.outputs)
    }

    pub fn status(&self, now: Duration) -> MembershipStatus {
        let own_links = || {
            self.config
                .media
                .iter()
                .map(|m| LinkStatus {
                    medium: m.clone(),
                    state: LinkState::Up,
                })
                .collect::<Vec<_>>()
        };
        let own = || NodeStatus {
            name: self.config.node.clone(),
            state: NodeState::Up,
            links: own_links(),
            incarnation: Some(self.incarnation),
            last_heard_ms: None,
            dead_reason: None,
        };
        let mut nodes = Vec::with_capacity(self.peers.len() + 1);
        if !self.config.nodes.contains(&self.config.node) {
            nodes.push(own());
        }
        let mut listed_self = false;
        for name in &self.config.nodes {
            if *name == self.config.node {
                if !listed_self {
                    nodes.push(own());
                    listed_self = true;
                }
                continue;
            }
            // Duplicated names appear once.
            if nodes.iter().any(|n: &NodeStatus| n.name == *name) {
                continue;
            }
            let Some(peer) = self.peer(name) else {
                continue;
            };
            nodes.push(NodeStatus {
                name: peer.name.clone(),
                state: peer.state,
                links: peer
                    .links
                    .iter()
                    .zip(&self.config.media)
                    .map(|(l, m)| LinkStatus {
                        medium: m.clone(),
                        state: l.state,
                    })
                    .collect(),
                incarnation: peer.incarnation,
                last_heard_ms: peer
                    .last_heard
                    .map(|t| u64::try_from(now.saturating_sub(t).as_millis()).unwrap_or(u64::MAX)),
                dead_reason: if peer.state == NodeState::Dead {
                    peer.dead_reason
                } else {
                    None
                },
            });
        }
        MembershipStatus {
            node: self.config.node.clone(),
            incarnation: self.incarnation,
            nodes,
            counters: self.counters.clone(),
        }
    }

    /// The up peers silent for at least `after` at `now` (heartbeat's
    /// "late" for `after` = warntime), and the next time one that is not
    /// late yet becomes so (if none arrives from it before).
    pub fn late_peers(&self, now: Duration, after: Duration) -> (Vec<&str>, Option<Duration>) {
        let mut late = Vec::new();
        let mut next: Option<Duration> = None;
        for p in self.peers.iter().filter(|p| p.state == NodeState::Up) {
            let Some(heard) = p.last_heard else {
                continue;
            };
            let at = heard.saturating_add(after);
            if at <= now {
                late.push(p.name.as_str());
            } else {
                next = Some(next.map_or(at, |n| n.min(at)));
            }
        }
        (late, next)
    }

    /// State of `node`; `Up` for ourselves, `None` for a node not in the list.
    pub fn node_state(&self, node: &str) -> Option<NodeState> {
        if node == self.config.node {
            return Some(NodeState::Up);
        }
        self.peer(node).map(|p| p.state)
    }

    pub fn config(&self) -> &MembershipConfig {
        &self.config
    }
}
