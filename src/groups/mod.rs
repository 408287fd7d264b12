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

mod commands;
mod decide;
mod quorum;
mod status;

#[cfg(test)]
mod sim;
#[cfg(test)]
mod tests;

pub use crate::wire::{Grant, GroupEntry, GroupReport, GroupState, Heard, Pref};
pub use commands::CommandError;
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
    /// Quorum comes from the membership engine (Corosync's votequorum,
    /// [`Groups::set_engine_quorum`]) instead of the witness: a node starts
    /// or keeps a group only while the engine says it is quorate.
    pub engine_quorum: bool,
}

/// The membership engine's quorum (votequorum's view from this node).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EngineQuorum {
    pub quorate: bool,
    /// Votes present (the members' and a quorum device's).
    pub votes: u32,
    /// Votes needed for quorum.
    pub needed: u32,
    /// Expected votes (the whole cluster's).
    pub expected: u32,
    /// votequorum is quorate, but a node of the membership has not been
    /// heard by hbd yet (its report may show what it runs): not quorate
    /// for the groups until it is, or until initdead passed.
    pub settling: bool,
    /// Corosync's ring lost a node and votequorum is deciding again
    /// (`quorate` is the previous ring's word until it has): no start, no
    /// fence; without fencing this node also holds nothing meanwhile (the
    /// side that will lose may not know it for the whole sync).
    pub syncing: bool,
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

/// Why [`Groups::reconfigure`] refused a new configuration (nothing changed).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReconfigureError {
    /// A setting only a restart applies changed.
    #[error("the node name, the groups or the witness changed: restart hbd to apply them")]
    NeedsRestart,
    /// Nodes to remove are up here (they may run groups).
    #[error(
        "{} would leave the node list but {} up here and may run groups: stop hbd there first",
        .0.join(", "),
        if .0.len() == 1 { "is" } else { "are" }
    )]
    RemovedNodeUp(Vec<String>),
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
    /// The membership engine's quorum, once it gave one (with
    /// [`GroupsConfig::engine_quorum`]).
    engine_quorum: Option<EngineQuorum>,
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
            engine_quorum: None,
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
    pub fn reconfigure(
        &mut self,
        cfg: GroupsConfig,
        now: Duration,
    ) -> Result<(), ReconfigureError> {
        let old = &self.cfg;
        if cfg.node != old.node
            || cfg.groups != old.groups
            || cfg.witness != old.witness
            || cfg.is_witness != old.is_witness
        {
            return Err(ReconfigureError::NeedsRestart);
        }
        let stays = |n: &String| cfg.nodes.contains(n) || cfg.witness.as_ref() == Some(n);
        let removed_up: Vec<String> = self
            .peers
            .iter()
            .filter(|p| !stays(&p.name) && matches!(p.life, Life::Up(_)))
            .map(|p| p.name.clone())
            .collect();
        if !removed_up.is_empty() {
            return Err(ReconfigureError::RemovedNodeUp(removed_up));
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
}
