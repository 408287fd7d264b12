//! Resource-group ownership as a state machine without I/O.
//!
//! Inputs: membership events (a node up with its incarnation, a node dead),
//! group reports from peers, results of the runtime's work (probes, starts,
//! stops, fences), operator commands, how many ping nodes this node reaches,
//! how much data clients wrote here without a peer, and the passage of time.
//! Outputs: the report to broadcast, work for the runtime (probe, start or
//! stop a group, announce its addresses again, fence a node), quorum changes
//! and events to log.
//!
//! # Protocol
//!
//! Every node broadcasts a [`GroupReport`]: for each group its local state,
//! its claim, its grant, the operator's preference and the data it served;
//! for the node, the ping nodes it reaches and whether it is the witness.
//! Each node computes the *desired owner* of every group from the same
//! inputs (see [`Groups::desired`]), so nodes that hear each other agree on
//! it.
//!
//! Safety rests on claims and grants: a node starts a group only when
//! - it is the desired owner and claims the group (claim number `c`), and
//! - every other node that is not dead (the witness included) has reported,
//!   from its current incarnation, that it does not run the group and grants
//!   it to exactly this node, incarnation and claim `c`.
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
//! A grant counts only within its lease: while the granter provably heard
//! this node's claim less than its deadtime (less a keepalive) ago, with
//! the deadtime the granter announced ([`Groups::set_peer_deadtime`]), so
//! the granter cannot have declared this node dead, and withdrawn it, by
//! then. Nodes may run different deadtimes (issue 14, finding 10); a peer
//! whose deadtime is not known yet grants nothing.
//!
//! Without a witness or fencing, a node that is declared dead loses its
//! grants at once and the survivors take over (heartbeat's behaviour): in a
//! full partition both sides run the group. The protections below close
//! that gap (issue 13).
//!
//! # Quorum and the witness
//!
//! With a witness (cluster.toml `[quorum] witness`, a node running
//! `hbd --witness`) every node and the witness have one vote, and a node
//! needs a majority (2 of 3 in a two-node cluster). It counts itself, and
//! each peer and the witness whose latest report says it heard one of this
//! node's reports sent less than half a deadtime ago (the vote's lease, with
//! that peer's announced deadtime, never more than this node's own).
//! That peer declares this node dead no earlier than its deadtime after it
//! heard that report, so a node cut off loses quorum, and stops every group
//! it runs, half a deadtime before the other side may act on its death; the
//! other half is its time to stop them. A node starts (and claims) a group
//! only with quorum. The witness ([`GroupsConfig::is_witness`]) runs no
//! group and is never a desired owner; it grants each group to one claimant
//! at a time exactly as a peer does, so in a partition only the side it
//! grants to can start, and when only the link between the nodes fails
//! (both still hear it) it keeps granting to the node that runs the group.
//! With `wait_for_all` (votequorum's), nothing starts until every node has
//! been up once since this node started. Every change of quorum (has,
//! votes) is an [`Output::Quorum`]. Without a witness [`Groups::quorum`]
//! says the cluster is unprotected.
//!
//! # Ping tiebreaker (heartbeat's ipfail)
//!
//! With the tiebreaker on, each report carries how many ping nodes its
//! sender reaches (settled by the runtime, [`Groups::set_ping`]). Among the
//! nodes that could run a group, one that reaches fewer ping nodes than
//! another is not eligible: its groups move to the peer. Equal counts change
//! nothing (no ping-pong). A node that hears no peer and reaches none of its
//! ping nodes is *isolated*: the cut is on its side, so it takes nothing
//! over and stops what it runs.
//!
//! # Fencing
//!
//! With fencing configured, a peer declared dead by timeout (not one that
//! left cleanly) may still run what it ran, or have started something in a
//! partition: it is fenced ([`Output::Fence`], answered by
//! [`Groups::on_fenced`]) before anything starts here, and until the fence
//! succeeds its deadness does not count as agreement ("waiting for fencing
//! of n2" in status); a failed fence is asked again every 5 s. A peer that
//! reports a group stop-failed, or left with one, is fenced too (Pacemaker's
//! rule), and once it is off its groups are no longer blocked; so is one
//! that left while its last report still showed a group that may run (the
//! report saying it stopped may have been lost). A fenced
//! incarnation never counts as up again (what still arrives from it was
//! sent before the fence). With a witness, only a node with quorum fences.
//! A peer never heard at start-up (initdead) is fenced like a dead one.
//!
//! # After a partition
//!
//! When a partition heals and two nodes run a group, the *keeper* is the one
//! that served clients: the larger `served` ([`Groups::set_served`], bytes
//! written to the group's disks while they had no peer), since the other
//! side's writes are the ones a split-brain resolution discards; equal: the
//! group's home node if it is one of them, else the node first in ha.cf's
//! node list; the other stops it. A node that keeps a group another node
//! also ran, or starts one whose last holder was declared dead (and may
//! still have answered for its addresses), sends its gratuitous ARPs again
//! ([`Output::Reannounce`]) at once and a second later, and again when the
//! other holder has stopped it.
//!
//! # Failures
//!
//! A start that failed here (rolled back) keeps the group off this node
//! until `hbctl clear`, until `failure_timeout` has passed (Pacemaker's), or
//! until the node that ran the group before is gone (dead, left or fenced):
//! a start that failed because that node still held an address is retried
//! once the cause is gone.
//!
//! # Desired owner (in order)
//! 1. a node where the group is `stop-failed` (it may still run there:
//!    nobody else may start it), unless fenced;
//! 2. with two holders (a healed partition), the keeper;
//! 3. the node with the newest `hbctl takeover` for it;
//! 4. among the eligible nodes (up, ready, not leaving, not failed for the
//!    group, this node only with quorum and not isolated; healthy ones
//!    first; with the tiebreaker, those reaching the most ping nodes)
//!    preferring those without an `hbctl standby` for it: the home node
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
    /// The quorum witness's node name (cluster.toml `[quorum] witness`):
    /// with one, a node starts or keeps a group only while it has quorum
    /// (itself and a peer, or itself and the witness). `None`: heartbeat's
    /// behaviour, no quorum protection.
    pub witness: Option<String>,
    /// This machine is the witness (`hbd --witness`): it runs no group and
    /// grants each group to one claimant at a time, as a peer does.
    pub is_witness: bool,
    /// votequorum's wait_for_all: with a witness, no group starts until every
    /// node has been seen up once since this node started.
    pub wait_for_all: bool,
    /// The ping tiebreaker (ipfail's job) is on: reports carry how many ping
    /// nodes each node reaches (see [`Groups::set_ping`]).
    pub ping_tiebreak: bool,
    /// Fencing is configured: a peer declared dead by timeout must be fenced
    /// ([`Output::Fence`], [`Groups::on_fenced`]) before its groups start
    /// elsewhere, and a peer whose stop failed is fenced instead of blocking
    /// the group.
    pub fencing: bool,
    /// A group that failed to start here may be tried here again this long
    /// after the failure (Pacemaker's failure-timeout); `None`: only after
    /// `hbctl clear` (or when the cause changes: see the module docs).
    pub failure_timeout: Option<Duration>,
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
    /// Send the gratuitous ARPs of group `i`'s addresses again: this node
    /// keeps (or regained) a group that another node also ran, so clients may
    /// still have the other node's MAC address cached.
    Reannounce(usize),
    /// Fence `node` (run the fence agent: power it off or reboot it), then
    /// call [`Groups::on_fenced`].
    Fence(String),
    /// Quorum was gained or lost (for the log and the disks).
    Quorum(QuorumView),
    Event(GroupEvent),
}

/// This node's quorum, for status and the log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuorumView {
    /// A witness is configured: groups run only with quorum.
    pub protected: bool,
    /// This node has quorum now (always true without protection).
    pub has: bool,
    /// Votes this node counts now (itself, peers and witness it hears within
    /// their leases) and votes needed.
    pub votes: u32,
    pub needed: u32,
    /// Why (e.g. "peer n2 and witness w1 unreachable", "waiting for all nodes").
    pub why: String,
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
    /// It is the quorum witness: it votes and grants, it runs nothing.
    witness: bool,
    /// Seen up at least once since this node started (wait_for_all).
    ever_up: bool,
    /// Its latest incarnation heard (0 when never heard).
    last_inc: u64,
    /// It is dead because it said it was leaving (not by deadtime).
    left: bool,
    /// When it was last declared dead (read only with `left`: a node that
    /// left long enough ago may have booted again, declared this node dead
    /// unheard and started groups).
    left_at: Duration,
    /// It left, but its last report did not show every group stopped
    /// (that report may have been lost or overtaken by `Leaving`): with
    /// fencing it is fenced like a dead node.
    left_unclean: bool,
    /// A fence of it was asked for and has not answered yet.
    fence_asked: bool,
    /// A fence failed: it is asked again at this time.
    fence_retry: Option<Duration>,
    /// The incarnation a fence powered off: that incarnation is gone for
    /// good and never counts as up again.
    fenced: Option<u64>,
    /// Declared dead and heard again: its first report decides whether
    /// this node announces its groups' addresses (see `Groups::rejoined`).
    rejoined: bool,
    /// The deadtime the incarnation announced (membership's
    /// [`crate::membership::Event::PeerDeadtime`]): its grants and its
    /// vote last as long as it waits before declaring this node dead.
    deadtime: Option<(u64, Duration)>,
}

impl Peer {
    /// A fence powered its current (or last) incarnation off.
    fn fenced_off(&self) -> bool {
        self.fenced == Some(self.last_inc)
    }

    fn new(name: &str, witness: bool) -> Peer {
        Peer {
            name: name.to_string(),
            life: Life::Unknown,
            report: None,
            witness,
            ever_up: false,
            last_inc: 0,
            left: false,
            left_unclean: false,
            left_at: Duration::ZERO,
            fence_asked: false,
            fence_retry: None,
            fenced: None,
            rejoined: false,
            deadtime: None,
        }
    }
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
    /// This node's copy of the group's disks is catching up with the peer
    /// (see [`Groups::set_disk_wait`]): it counts as unhealthy.
    disk_wait: Option<String>,
    /// Bytes clients wrote to its disks here while they had no peer.
    served: u64,
    /// When its start failed here (for `failure_timeout`), and the node
    /// that had run it before (a start that failed because that node still
    /// held an address is tried again once that node is gone).
    failed_at: Option<Duration>,
    failed_holder: Option<String>,
    /// The last other node seen running it that has not been seen to stop
    /// it (a node declared dead may still hold its addresses).
    prev_holder: Option<String>,
    /// The last other node seen to stop it after running it (its report
    /// said so): it released the group's addresses (see
    /// [`Groups::released`]).
    released_by: Option<String>,
    /// This node keeps it while another node also runs it (a healed
    /// partition): the addresses are announced again when the other stops.
    two_holders: bool,
}

impl Local {
    /// The disks' "catching up" mark keeps the group from moving here,
    /// but not from staying where it started: a start that finished here
    /// promoted the disks (only an UpToDate copy is promoted), so the mark
    /// is stale until the next poll clears it. Counting it then gave a
    /// group that waited for its resync away at once and took it back.
    fn waits_for_disk(&self) -> bool {
        self.disk_wait.is_some() && self.state != GroupState::Started
    }
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

#[derive(Clone)]
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
    /// Ping nodes this node reaches (settled), `None` without ping nodes.
    ping: Option<u16>,
    /// Gratuitous ARPs to send again later: (group, when).
    reannounce: Vec<(usize, Duration)>,
    /// The quorum last announced with [`Output::Quorum`]: (has, votes).
    last_quorum: Option<(bool, u32)>,
}

/// How much later a group's addresses are announced a second time.
const REANNOUNCE_AGAIN: Duration = Duration::from_secs(1);
/// How long after a failed fence it is tried again.
const FENCE_RETRY: Duration = Duration::from_secs(5);

/// How many recent reports' send times are kept for leases.
const SENT_REMEMBERED: usize = 256;

impl Groups {
    /// A machine for a node that started at `now`. It asks for a probe of
    /// every group first and takes part once they are all answered.
    pub fn new(cfg: GroupsConfig, incarnation: u64, now: Duration) -> Groups {
        let witness = cfg.witness.iter().filter(|w| !cfg.nodes.contains(w));
        let peers = cfg
            .nodes
            .iter()
            .chain(witness)
            .filter(|n| **n != cfg.node)
            .map(|n| Peer::new(n, cfg.witness.as_ref() == Some(n)))
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
                // The witness has no resources to probe.
                probe_pending: !cfg.is_witness,
                unhealthy: None,
                disk_wait: None,
                served: 0,
                failed_at: None,
                failed_holder: None,
                prev_holder: None,
                released_by: None,
                two_holders: false,
            })
            .collect();
        let probes = if cfg.is_witness { 0 } else { cfg.groups.len() };
        let mut g = Groups {
            probes_pending: probes,
            outputs: (0..probes).map(Output::Probe).collect(),
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
            ping: None,
            reannounce: Vec::new(),
            last_quorum: None,
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

    /// When [`Groups::tick`] next has work: the next periodic report, a
    /// quorum vote's lease running out, a fence to retry, a failure
    /// timeout, a second announcement of addresses.
    pub fn next_deadline(&self) -> Duration {
        let leases = self.peers.iter().filter_map(|p| self.vote_expiry(p));
        let fences = self.peers.iter().filter_map(|p| p.fence_retry);
        let failures = self.local.iter().filter_map(|l| self.failure_expiry(l));
        let again = self.reannounce.iter().map(|&(_, t)| t);
        leases
            .chain(fences)
            .chain(failures)
            .chain(again)
            .filter(|t| *t > self.latest)
            .fold(self.next_resend, Duration::min)
    }

    /// Time passes: resends the report when due.
    pub fn tick(&mut self, now: Duration) {
        self.decide(now);
    }

    /// Membership says `node` is up with `incarnation` (first heard, or restarted).
    /// An incarnation that a fence powered off is not believed: what still
    /// arrives from it was sent before the fence.
    pub fn on_node_up(&mut self, node: &str, incarnation: u64, now: Duration) {
        if let Some(p) = self.peers.iter_mut().find(|p| p.name == node) {
            if p.life != Life::Up(incarnation) && p.fenced != Some(incarnation) {
                p.rejoined |= p.life == Life::Dead;
                p.life = Life::Up(incarnation);
                p.report = None;
                p.ever_up = true;
                p.left = false;
                p.last_inc = incarnation;
                // Back before it was fenced: the grants decide again. A fence
                // already under way still reports (see `on_fenced`).
                p.fence_retry = None;
            }
        }
        self.decide(now);
    }

    /// Membership heard `node`'s `incarnation` announce the deadtime it
    /// declares peers dead with. Until its current incarnation has, its
    /// grants and its vote do not count: a claimant's lease and a node's
    /// quorum lease are measured against the granter's (the voter's)
    /// deadtime, which may differ from this node's when the ha.cf files
    /// differ or one node reloaded its own (issue 14, finding 10).
    pub fn set_peer_deadtime(
        &mut self,
        node: &str,
        incarnation: u64,
        deadtime: Duration,
        now: Duration,
    ) {
        if let Some(p) = self.peers.iter_mut().find(|p| p.name == node) {
            p.deadtime = Some((incarnation, deadtime));
        }
        self.decide(now);
    }

    /// SIGHUP: a new node list and timing (`deadtime`, `resend`); every
    /// other setting must be the running one (the runtime keeps those for
    /// the next start). Refused, changing nothing, when a node to remove
    /// is up here: it may run a group, and nothing would then keep this
    /// node from starting it too. A new node is unknown until membership
    /// hears it or declares it dead (initdead), and blocks every start
    /// meanwhile, as at boot.
    pub fn reconfigure(&mut self, cfg: GroupsConfig, now: Duration) -> Result<(), String> {
        let old = &self.cfg;
        if cfg.node != old.node
            || cfg.groups != old.groups
            || cfg.witness != old.witness
            || cfg.is_witness != old.is_witness
        {
            return Err(
                "the node name, the groups or the witness changed: restart hbd to apply them"
                    .into(),
            );
        }
        let stays = |n: &String| cfg.nodes.contains(n) || cfg.witness.as_ref() == Some(n);
        let removed_up: Vec<&str> = self
            .peers
            .iter()
            .filter(|p| !stays(&p.name) && matches!(p.life, Life::Up(_)))
            .map(|p| p.name.as_str())
            .collect();
        if !removed_up.is_empty() {
            return Err(format!(
                "{} would leave the node list but {} up here and may run groups: \
                 stop hbd there first",
                removed_up.join(", "),
                if removed_up.len() == 1 { "is" } else { "are" }
            ));
        }
        let mut old_peers = std::mem::take(&mut self.peers);
        let witness = cfg.witness.iter().filter(|w| !cfg.nodes.contains(w));
        self.peers = cfg
            .nodes
            .iter()
            .chain(witness)
            .filter(|n| **n != cfg.node)
            .map(|n| match old_peers.iter().position(|p| p.name == *n) {
                Some(i) => old_peers.swap_remove(i),
                None => Peer::new(n, cfg.witness.as_ref() == Some(n)),
            })
            .collect();
        self.cfg = cfg;
        self.decide(now);
        Ok(())
    }

    /// A node declared dead is back (its first report arrived): a
    /// partition may have healed, and clients on its side still send this
    /// node's addresses to it (it may have run our groups, and stopped them
    /// before any report of it reached us). Every group this node runs and
    /// keeps is announced again.
    fn rejoined(&mut self, now: Duration) {
        let me = self.cfg.node.clone();
        for i in 0..self.local.len() {
            if self.local[i].state == GroupState::Started
                && self.desired(i).0.as_deref() == Some(me.as_str())
            {
                self.announce(i, now);
            }
        }
    }

    /// Membership says `node` is dead; `left` when it said so itself.
    pub fn on_node_dead(&mut self, node: &str, left: bool, now: Duration) {
        let Some(pi) = self.peers.iter().position(|p| p.name == node) else {
            return;
        };
        let last = self.peers[pi].report.take();
        self.peers[pi].life = Life::Dead;
        self.peers[pi].left = left;
        self.peers[pi].left_at = now;
        self.peers[pi].left_unclean = left
            && last
                .as_ref()
                .is_none_or(|r| r.groups.iter().any(|e| e.state.may_run()));
        // The witness never starts a group, so it needs no block: the
        // nodes' own blocks keep the group from starting, and `hbctl clear`
        // on them is enough.
        if left && !self.cfg.is_witness {
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
        for i in 0..self.local.len() {
            // It stopped what it ran before it left.
            if left && self.local[i].prev_holder.as_deref() == Some(node) {
                self.local[i].prev_holder = None;
            }
            self.gone(i, node);
        }
        self.decide(now);
    }

    /// A report from `node`'s `incarnation`.
    pub fn on_report(&mut self, node: &str, incarnation: u64, report: GroupReport, now: Duration) {
        let Some(p) = self.peers.iter_mut().find(|p| p.name == node) else {
            return;
        };
        if p.fenced == Some(incarnation) {
            return;
        }
        p.rejoined |= p.life == Life::Dead;
        match p.life {
            Life::Up(i) if i == incarnation => {}
            Life::Up(i) if i > incarnation => return,
            _ => {
                p.life = Life::Up(incarnation);
                p.ever_up = true;
                p.left = false;
                p.last_inc = incarnation;
                p.fence_retry = None;
            }
        }
        p.report = Some(report);
        let rejoined = std::mem::take(&mut p.rejoined);
        self.decide(now);
        if rejoined {
            self.rejoined(now);
        }
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
                match self.cfg.failure_timeout.filter(|t| !t.is_zero()) {
                    Some(_) => {
                        "start failed and was rolled back: tried here again after \
                         failure_timeout, or at once with hbctl clear"
                    }
                    None => "start failed and was rolled back: hbctl clear to allow it here again",
                },
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
        if to == GroupState::Failed {
            self.local[i].failed_at = Some(now);
            self.local[i].failed_holder = self.local[i].prev_holder.clone();
        }
        if to != GroupState::Starting {
            self.local[i].released_by = None;
        }
        if to == GroupState::Started {
            // Another node ran it and may still answer for its addresses
            // (it was declared dead, not seen to stop it): clients learn the
            // new holder only from announcements sent after that.
            if self.local[i].prev_holder.take().is_some() {
                self.announce(i, now);
            }
        }
        self.transition(i, to, why.into());
        self.decide(now);
    }

    /// Sends group `i`'s gratuitous ARPs now and once more a little later.
    fn announce(&mut self, i: usize, now: Duration) {
        self.outputs.push(Output::Reannounce(i));
        self.reannounce.retain(|&(g, _)| g != i);
        self.reannounce
            .push((i, now.saturating_add(REANNOUNCE_AGAIN)));
    }

    /// `node` is gone (dead, left or fenced): a start of group `i` that
    /// failed here while it held the group is tried again at once (the
    /// likely cause, its address still up there, is gone with it).
    fn gone(&mut self, i: usize, node: &str) {
        let l = &self.local[i];
        if l.state == GroupState::Failed && l.failed_holder.as_deref() == Some(node) {
            self.local[i].failed_at = None;
            self.local[i].failed_holder = None;
            self.transition(
                i,
                GroupState::Stopped,
                format!("{node}, which held it when its start failed here, is gone: trying again"),
            );
        }
    }

    /// When a failure of group `l` here may be forgotten.
    fn failure_expiry(&self, l: &Local) -> Option<Duration> {
        let t = self.cfg.failure_timeout.filter(|t| !t.is_zero())?;
        if l.state != GroupState::Failed {
            return None;
        }
        l.failed_at.map(|f| f.saturating_add(t))
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

    /// How many ping nodes (ping lines and ping groups) this node reaches,
    /// already settled by the runtime; `None` without ping nodes. With the
    /// tiebreaker on, a node that reaches fewer than its peer gives its
    /// groups to the peer, and a node that reaches neither peer nor ping
    /// node stops its groups and takes none over.
    pub fn set_ping(&mut self, reachable: Option<u16>, now: Duration) {
        if self.ping != reachable {
            self.ping = reachable;
            self.decide(now);
        }
    }

    /// Ping nodes this node reaches, as last set.
    pub fn ping(&self) -> Option<u16> {
        self.ping
    }

    /// How much data clients wrote to group `i`'s disks here while the
    /// disks had no peer (the devices' writes since the split): after a
    /// healed partition the node with the data keeps the group.
    pub fn set_served(&mut self, i: usize, served: u64, now: Duration) {
        if let Some(l) = self.local.get_mut(i) {
            if l.served != served {
                l.served = served;
                self.decide(now);
            }
        }
    }

    /// Whether this node's copy of group `i`'s replicated disks is behind
    /// the peer's and catching up (a resync from the peer, or Outdated or
    /// Inconsistent data while connected to an UpToDate peer); `why` says
    /// which. Such a node counts as unhealthy: no group moves to it while a
    /// healthy node can run it (auto_failback waits for the resync), yet it
    /// still takes over when nothing else can (the disk then decides).
    pub fn set_disk_wait(&mut self, i: usize, why: Option<String>, now: Duration) {
        if let Some(l) = self.local.get_mut(i) {
            if l.disk_wait != why {
                l.disk_wait = why;
                self.decide(now);
            }
        }
    }

    /// The fence agent for `node` ended: `ok` when the node is off.
    /// A fence that answers after the node came back with a new
    /// incarnation changes nothing (that incarnation did not exist when the
    /// fence was asked for).
    pub fn on_fenced(&mut self, node: &str, ok: bool, now: Duration) {
        let Some(pi) = self.peers.iter().position(|p| p.name == node) else {
            return;
        };
        let p = &mut self.peers[pi];
        if !p.fence_asked {
            return;
        }
        p.fence_asked = false;
        if !ok {
            p.fence_retry = Some(now.saturating_add(FENCE_RETRY));
            self.decide(now);
            return;
        }
        p.fence_retry = None;
        p.fenced = Some(p.last_inc);
        // It is off: dead, whatever membership still believes.
        p.life = Life::Dead;
        p.report = None;
        for i in 0..self.local.len() {
            if self.local[i].blocked_by.as_deref() == Some(node) {
                self.local[i].blocked_by = None;
            }
            self.gone(i, node);
        }
        self.decide(now);
    }

    /// Whether `p` must be fenced before this node starts anything (see
    /// the module docs): it was declared dead by timeout (it may still run
    /// what it ran, or have started something in a partition), it left with
    /// a group stop-failed, or it reports a group stop-failed.
    fn needs_fence(&self, p: &Peer) -> bool {
        if !self.cfg.fencing
            || self.cfg.is_witness
            || p.witness
            || p.fenced_off()
            || self.cfg.groups.is_empty()
        {
            return false;
        }
        match p.life {
            Life::Unknown => false,
            Life::Dead if !p.left || p.left_unclean => true,
            Life::Dead => self
                .local
                .iter()
                .any(|l| l.blocked_by.as_deref() == Some(p.name.as_str())),
            Life::Up(_) => p
                .report
                .as_ref()
                .is_some_and(|r| r.groups.iter().any(|e| e.state == GroupState::StopFailed)),
        }
    }

    /// The peers whose fence a start here waits for.
    fn fence_waits(&self) -> Vec<String> {
        self.peers
            .iter()
            .filter(|p| matches!(p.life, Life::Dead) && self.needs_fence(p))
            .map(|p| p.name.clone())
            .collect()
    }

    /// When `p`'s vote runs out: the send time of this node's latest report
    /// that `p` says it heard, plus half a deadtime. `p` declares this node
    /// dead no earlier than a deadtime after it heard that report, so a
    /// node cut off loses quorum (and stops its groups) half a deadtime
    /// before the other side may act on its death.
    fn vote_expiry(&self, p: &Peer) -> Option<Duration> {
        if !matches!(p.life, Life::Up(_)) || p.fenced_off() {
            return None;
        }
        let r = p.report.as_ref()?;
        let h = r
            .heard
            .iter()
            .find(|h| h.node == self.cfg.node && h.incarnation == self.incarnation)?;
        let &(_, sent) = self.sent_at.iter().find(|(no, _)| *no == h.no)?;
        Some(sent.saturating_add(self.peer_deadtime(p)? / 2))
    }

    /// How long `p` waits before it declares this node dead: the deadtime
    /// its current incarnation announced (never more than this node's own,
    /// to stay on the safe side); `None` until it announced one.
    fn peer_deadtime(&self, p: &Peer) -> Option<Duration> {
        match (p.life, p.deadtime) {
            (Life::Up(inc), Some((announced, d))) if inc == announced => {
                Some(d.min(self.cfg.deadtime))
            }
            _ => None,
        }
    }

    /// Votes counted now (this node, and each peer and the witness within
    /// its lease) and the names of those that do not count.
    fn votes(&self) -> (u32, Vec<&str>) {
        let mut votes = 1;
        let mut missing = Vec::new();
        for p in &self.peers {
            if self.vote_expiry(p).is_some_and(|t| self.latest < t) {
                votes += 1;
            } else {
                missing.push(p.name.as_str());
            }
        }
        (votes, missing)
    }

    /// Quorum as this node sees it now.
    pub fn quorum(&self) -> QuorumView {
        if self.cfg.witness.is_none() {
            return QuorumView {
                protected: false,
                has: true,
                votes: 1,
                needed: 1,
                why: "no witness configured: no quorum protection".into(),
            };
        }
        // Every node and the witness have a vote: a majority of them is
        // needed (2 of 3 in a two-node cluster).
        let total = self.cfg.nodes.len() as u32 + 1;
        let needed = total / 2 + 1;
        let (votes, missing) = self.votes();
        let unseen: Vec<&str> = self
            .peers
            .iter()
            .filter(|p| !p.witness && !p.ever_up)
            .map(|p| p.name.as_str())
            .collect();
        let (has, why) = if votes < needed {
            (
                false,
                format!(
                    "{} unreachable: {votes} of {needed} votes",
                    missing.join(" and ")
                ),
            )
        } else if self.cfg.wait_for_all && !unseen.is_empty() {
            (
                false,
                format!(
                    "waiting for all nodes (wait_for_all): {} not seen yet",
                    unseen.join(", ")
                ),
            )
        } else {
            (true, format!("{votes} of {total} votes, {needed} needed"))
        };
        QuorumView {
            protected: true,
            has,
            votes,
            needed,
            why,
        }
    }

    /// Why this node may not run any group now (it stops what it runs):
    /// it is the witness, it lost its quorum votes, or the ping tiebreaker
    /// finds it isolated.
    fn hold_blocker(&self) -> Option<String> {
        if self.cfg.is_witness {
            return Some("this node is the quorum witness: it runs no group".into());
        }
        if self.cfg.witness.is_some() {
            let q = self.quorum();
            if q.votes < q.needed {
                return Some(format!("no quorum: {}", q.why));
            }
        }
        if self.isolated() {
            return Some(
                "isolated: no peer and none of the ping nodes reachable (ping tiebreaker)".into(),
            );
        }
        None
    }

    /// Why this node may not start a group now, when it may hold one: the
    /// blockers above, wait_for_all, fences still to be done.
    fn start_blocker(&self) -> Option<String> {
        if let Some(b) = self.hold_blocker() {
            return Some(b);
        }
        let q = self.quorum();
        if !q.has {
            return Some(q.why);
        }
        let fences = self.fence_waits();
        if !fences.is_empty() {
            return Some(format!("waiting for fencing of {}", fences.join(", ")));
        }
        None
    }

    /// The ping tiebreaker's isolated node: ping nodes configured, none
    /// reached, and no peer heard. It is the side cut off: it takes nothing
    /// over and stops what it runs.
    ///
    /// Peers that all left cleanly are no other side: the node alone is not
    /// isolated then (its ping nodes may simply be down; found by the
    /// protected group simulation, seed 1464: the peer shut down and the
    /// survivor, reaching no ping node, ran nothing).
    fn isolated(&self) -> bool {
        self.cfg.ping_tiebreak
            && self.ping == Some(0)
            && self.peers.iter().all(|p| !matches!(p.life, Life::Up(_)))
            && self.peers.iter().any(|p| !(p.life == Life::Dead && p.left))
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
            .filter(|p| matches!(p.life, Life::Up(_)) && !p.witness)
            .collect();
        if up.is_empty() {
            return Err(if self.peers.iter().all(|p| p.witness) {
                "no other node in the cluster".to_string()
            } else {
                format!(
                    "no other node is up ({}): nothing can move",
                    self.peers
                        .iter()
                        .filter(|p| !p.witness)
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
        l.failed_at = None;
        l.failed_holder = None;
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
                            Some(n) if self.cfg.fencing => {
                                format!(
                                    "stop failed on {n}, which left: waiting for fencing of {n}"
                                )
                            }
                            Some(n) => format!(
                                "stop failed on {n}, which left: hbctl clear when it is cleaned up"
                            ),
                            None => self.hold_blocker().unwrap_or_else(|| why.to_string()),
                        })
                    } else if owner.is_none() && desired.as_deref() == Some(self.cfg.node.as_str())
                    {
                        // It should start here: say what it waits for.
                        self.start_blocker().or_else(|| {
                            let l = &self.local[i];
                            let mine = Grant {
                                node: self.cfg.node.clone(),
                                incarnation: self.incarnation,
                                claim: l.claim,
                            };
                            let missing = self.missing_grants(i, &mine);
                            (l.state == GroupState::Stopped && !missing.is_empty()).then(|| {
                                format!("waiting for the agreement of {}", missing.join(", "))
                            })
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
                    unhealthy: self.local[i].unhealthy.is_some() || self.local[i].waits_for_disk(),
                    barred: self.hold_blocker().is_some(),
                    ping: self.ping,
                    served: self.local[i].served,
                });
                continue;
            }
            let Some(p) = self.peers.iter().find(|p| p.name == *name) else {
                continue;
            };
            if !matches!(p.life, Life::Up(_)) {
                continue;
            }
            // A witness never runs a group, whatever it reports.
            let Some(r) = p.report.as_ref().filter(|r| r.ready && !r.witness) else {
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
                    barred: false,
                    ping: r.ping,
                    served: e.served,
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
                    barred: false,
                    ping: r.ping,
                    served: 0,
                }),
            }
        }
        v
    }

    /// Whether group `i`'s previous holder released it: the last other node
    /// seen running it has since reported it stopped, and no other node
    /// was seen running it after. Its addresses then need no
    /// duplicate-address probe before they are added here (a planned
    /// switchover, a peer that stopped its groups before leaving). False
    /// when a holder was declared dead without saying so, or when nobody
    /// else was seen running it.
    ///
    /// Every other node must be accounted for too: up with a report that
    /// does not show the group running, gone cleanly (left after stopping
    /// its groups) or fenced. A node declared dead by timeout, or not heard
    /// yet, might hold the address (it may only look dead), so its start
    /// probes; so does a start while an up peer may have declared this node
    /// dead (found by the groups simulation at 1000 seeds: seeds 624 and
    /// deadtimes seed 922).
    pub fn released(&self, i: usize) -> bool {
        let Some(l) = self.local.get(i) else {
            return false;
        };
        let Some(by) = l.released_by.as_deref() else {
            return false;
        };
        l.prev_holder.is_none()
            && self.peers.iter().any(|p| p.name == by)
            && self.peers.iter().all(|p| match p.life {
                _ if p.witness || p.fenced_off() => true,
                // Its report must also show that it heard this node within
                // its deadtime: a peer that declared this node dead (a cut
                // one way, a partition) may be starting the group on its
                // own, and its report saying otherwise may be old.
                Life::Up(_) => p.report.as_ref().is_some_and(|r| {
                    self.lease_valid(p, r)
                        && self.peer_entry(p, i).is_none_or(|e| !e.state.may_run())
                }),
                // Left cleanly, and too recently to have booted again and
                // declared this node dead without hearing it (seed 624:
                // a node that left 5 s earlier had).
                Life::Dead => {
                    p.left
                        && !p.left_unclean
                        && self.latest < p.left_at.saturating_add(self.cfg.deadtime / 2)
                }
                Life::Unknown => false,
            })
    }

    /// The groups `node` runs (its latest report says so) that this node
    /// would run in its place if it were dead: the addresses worth probing
    /// for while `node`'s heartbeats are late, so that the answer is in
    /// when it is declared dead. Empty on the witness.
    pub fn takeover_from(&self, node: &str) -> Vec<usize> {
        let Some(p) = self.peers.iter().find(|p| p.name == node) else {
            return Vec::new();
        };
        if self.cfg.is_witness || !matches!(p.life, Life::Up(_)) {
            return Vec::new();
        }
        let runs: Vec<usize> = (0..self.local.len())
            .filter(|&i| {
                self.local[i].state == GroupState::Stopped
                    && self.peer_entry(p, i).is_some_and(|e| e.state.may_run())
            })
            .collect();
        if runs.is_empty() {
            return runs;
        }
        let mut without = self.clone();
        if let Some(q) = without.peers.iter_mut().find(|q| q.name == node) {
            q.life = Life::Dead;
            q.report = None;
        }
        runs.into_iter()
            .filter(|&i| without.desired(i).0.as_deref() == Some(self.cfg.node.as_str()))
            .collect()
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
            // The keeper follows the data: the holder whose disks clients
            // wrote to while they had no peer, the one that wrote more (the
            // other side's writes are the ones a split-brain resolution
            // discards). Equal: the home node, then node order.
            let keeper = holders
                .iter()
                .max_by_key(|v| (v.served, v.node == *home, std::cmp::Reverse(v.order)))
                .unwrap_or(&holders[0]);
            return (
                Some(keeper.node.clone()),
                if holders.iter().any(|v| v.served != keeper.served) {
                    "two nodes run it: the keeper is the one that served clients"
                } else {
                    "two nodes run it: the keeper"
                },
            );
        }
        let eligible: Vec<&View> = views
            .iter()
            .filter(|v| v.known && !v.leaving && !v.barred && v.state != GroupState::Failed)
            .collect();
        // Healthy nodes first; when every node is unhealthy the group stays
        // where it runs (no ping-pong between two sick nodes).
        let healthy: Vec<&View> = eligible.iter().copied().filter(|v| !v.unhealthy).collect();
        let all_sick = healthy.is_empty();
        let mut eligible = if all_sick { eligible } else { healthy };
        // The ping tiebreaker (ipfail): a node that reaches fewer ping nodes
        // than another eligible node is not eligible. Equal counts change
        // nothing (no ping-pong); a node whose count is not known yet is
        // not judged.
        if self.cfg.ping_tiebreak {
            if let Some(best) = eligible.iter().filter_map(|v| v.ping).max() {
                eligible.retain(|v| v.ping.is_none_or(|p| p >= best));
            }
        }
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
        let now = self.latest;
        self.decide_quorum();
        self.decide_fences(now);
        if self.ready() {
            for i in 0..self.local.len() {
                self.expire_failure(i, now);
                self.track_holders(i, now);
                self.decide_group(i);
            }
        }
        // Second announcements that are due, for groups still running here.
        let (due, later): (Vec<_>, Vec<_>) = self.reannounce.iter().partition(|&&(_, t)| t <= now);
        self.reannounce = later;
        for (i, _) in due {
            if self.local[i].state == GroupState::Started {
                self.outputs.push(Output::Reannounce(i));
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

    /// Announces a change of quorum (has, votes).
    fn decide_quorum(&mut self) {
        if self.cfg.witness.is_none() {
            return;
        }
        let q = self.quorum();
        if self.last_quorum != Some((q.has, q.votes)) {
            self.last_quorum = Some((q.has, q.votes));
            self.outputs.push(Output::Quorum(q));
        }
    }

    /// Asks for the fences needed (once each; again after a failure, every
    /// [`FENCE_RETRY`]). With a witness only a node with quorum fences (the
    /// side cut off never shoots the side that goes on).
    fn decide_fences(&mut self, now: Duration) {
        if !self.cfg.fencing {
            return;
        }
        if self.cfg.witness.is_some() {
            let q = self.quorum();
            if q.votes < q.needed {
                return;
            }
        }
        for pi in 0..self.peers.len() {
            let p = &self.peers[pi];
            if p.fence_asked || p.fence_retry.is_some_and(|t| t > now) || !self.needs_fence(p) {
                continue;
            }
            let p = &mut self.peers[pi];
            p.fence_asked = true;
            p.fence_retry = None;
            self.outputs.push(Output::Fence(p.name.clone()));
        }
    }

    /// Forgets a failure of group `i` here once `failure_timeout` passed.
    fn expire_failure(&mut self, i: usize, now: Duration) {
        if self
            .failure_expiry(&self.local[i])
            .is_some_and(|t| t <= now)
        {
            self.local[i].failed_at = None;
            self.local[i].failed_holder = None;
            self.transition(
                i,
                GroupState::Stopped,
                "failure_timeout passed: it may start here again".into(),
            );
        }
    }

    /// Follows who else runs group `i`, for the announcements: the last
    /// other holder, and two holders at once (this node the keeper).
    fn track_holders(&mut self, i: usize, now: Duration) {
        let me = self.cfg.node.clone();
        let views = self.views(i);
        for v in views.iter().filter(|v| v.node != me) {
            if v.state.may_run() {
                self.local[i].prev_holder = Some(v.node.clone());
                self.local[i].released_by = None;
            } else if self.local[i].prev_holder.as_ref() == Some(&v.node) {
                self.local[i].prev_holder = None;
                self.local[i].released_by = Some(v.node.clone());
            }
        }
        let others = views
            .iter()
            .any(|v| v.node != me && matches!(v.state, GroupState::Starting | GroupState::Started));
        let here = self.local[i].state == GroupState::Started;
        let keeper = self.desired(i).0.as_deref() == Some(me.as_str());
        if here && others && keeper && !self.local[i].two_holders {
            // A healed partition: this node keeps it. Announce now, and
            // again once the other node stopped it.
            self.local[i].two_holders = true;
            self.announce(i, now);
        } else if self.local[i].two_holders && (!here || !others) {
            self.local[i].two_holders = false;
            if here {
                self.announce(i, now);
            }
        }
    }

    /// Whether `p` heard this node recently enough that it cannot have
    /// declared it dead (and withdrawn its grants) by now, with a keepalive
    /// to spare: it heard report `no`, sent at `t`, so it declares this node
    /// dead no earlier than `t + deadtime`, `p`'s deadtime.
    fn lease_valid(&self, p: &Peer, r: &GroupReport) -> bool {
        let Some(deadtime) = self.peer_deadtime(p) else {
            return false;
        };
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
        let lease = deadtime.saturating_sub(self.cfg.resend);
        self.latest < sent.saturating_add(lease)
    }

    fn decide_group(&mut self, i: usize) {
        let me = self.cfg.node.clone();
        let (desired, why) = self.desired(i);
        let me_desired = desired.as_deref() == Some(me.as_str());
        let barred = self.hold_blocker();
        match self.local[i].state {
            GroupState::Started => {
                let elsewhere = desired.as_ref().is_some_and(|d| *d != me);
                if elsewhere || self.leaving || barred.is_some() {
                    let reason = if self.leaving {
                        "shutting down".to_string()
                    } else if let Some(b) = barred {
                        b
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
        // Without quorum (or all nodes seen once, with wait_for_all) this
        // node does not even claim: its claim could not be used.
        let claimable = me_desired
            && state == GroupState::Stopped
            && !self.leaving
            && barred.is_none()
            && self.quorum().has;
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
                // Never while another node this one hears may run it: the
                // claimant may believe that node dead, this one knows better
                // (the witness's whole point: found by the sim, a witness
                // that booted after the holder started granted a takeover
                // to the other side of a partition).
                let runs_elsewhere = |d: &str| {
                    self.peers.iter().any(|q| {
                        q.name != d
                            && matches!(q.life, Life::Up(_))
                            && self.peer_entry(q, i).is_some_and(|e| e.state.may_run())
                    })
                };
                // The witness does not place groups, it arbitrates: its own
                // configuration (a witness may run without haresources, or
                // with other settings) must never pick a node the nodes do
                // not want (campaign finding: a witness without the ping
                // tiebreaker granted only the home node, which did not
                // claim, and the node the tiebreaker chose never started).
                // It grants the claimant its own view prefers, else the
                // first claimant; never two (the grant is kept above).
                let target = if self.cfg.is_witness {
                    let claimants: Vec<&str> = self
                        .cfg
                        .nodes
                        .iter()
                        .filter(|n| {
                            self.peers.iter().any(|p| {
                                p.name == **n
                                    && matches!(p.life, Life::Up(_))
                                    && self
                                        .peer_entry(p, i)
                                        .is_some_and(|e| e.claim != 0 && !e.state.may_run())
                            })
                        })
                        .map(String::as_str)
                        .collect();
                    desired
                        .as_deref()
                        .filter(|d| claimants.contains(d))
                        .or(claimants.first().copied())
                        .map(str::to_string)
                } else {
                    desired.clone()
                };
                if let Some(d) = target.as_ref().filter(|d| **d != me && !runs_elsewhere(d)) {
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
        if self.missing_grants(i, &mine).is_empty() {
            // A standby ends when this node has to run the group after all
            // (its peer died): it does not push the group away again later.
            if matches!(self.local[i].pref, Pref::Refuse(_)) {
                self.local[i].pref = Pref::None;
            }
            let fenced: Vec<&str> = self
                .peers
                .iter()
                .filter(|p| p.fenced_off() && p.life == Life::Dead)
                .map(|p| p.name.as_str())
                .collect();
            let reason = if fenced.is_empty() {
                format!("starting here ({why})")
            } else {
                format!("starting here ({why}; fenced: {})", fenced.join(", "))
            };
            self.transition(i, GroupState::Starting, reason);
            self.outputs.push(Output::Start(i));
        }
    }

    /// The peers whose agreement to claim `mine` of group `i` is missing,
    /// each with why; empty: the group may start here.
    fn missing_grants(&self, i: usize, mine: &Grant) -> Vec<String> {
        let mut missing = Vec::new();
        for p in &self.peers {
            let why = match p.life {
                // A dead peer agrees only once fenced, when fencing is on.
                Life::Dead if self.needs_fence(p) => "dead, not fenced yet",
                Life::Dead => continue,
                Life::Unknown => "not heard yet",
                // A ready peer configured without the group never runs it.
                Life::Up(_) if p.fenced_off() => continue,
                Life::Up(_) => match p.report.as_ref() {
                    None => "no report yet",
                    Some(r) if !r.ready => "still probing",
                    Some(_) if self.peer_deadtime(p).is_none() => "its deadtime not heard yet",
                    // Its grant counts only within its lease (see `lease_valid`).
                    Some(r) if !self.lease_valid(p, r) => "its lease ran out",
                    Some(_) => match self.peer_entry(p, i) {
                        None => continue,
                        Some(e) if e.state.may_run() => "it may run the group",
                        Some(e) if e.grant.as_ref() == Some(mine) => continue,
                        Some(_) => "no grant",
                    },
                },
            };
            missing.push(format!("{} ({why})", p.name));
        }
        missing
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
                    unhealthy: l.unhealthy.is_some() || l.waits_for_disk(),
                    served: l.served,
                })
                .collect(),
            marks: self.marks.clone(),
            no: 0,
            heard: Vec::new(),
            witness: self.cfg.is_witness,
            ping: self.ping,
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
    /// This node may not hold groups now (no quorum, isolated, witness).
    barred: bool,
    ping: Option<u16>,
    served: u64,
}

fn scope_word(scope: Scope) -> &'static str {
    match scope {
        Scope::All => "resource",
        Scope::Local => "local",
        Scope::Foreign => "foreign",
    }
}
