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
//!   it says it is [`Body::Leaving`](crate::wire::Body::Leaving);
//! - before a node has ever been heard it is `unknown` and is declared dead only
//!   `initdead` after our start;
//! - a datagram that arrives more than `warntime` after the previous one from
//!   that node raises [`Event::LateHeartbeat`];
//! - datagrams are authenticated, then checked for cluster name, node list,
//!   incarnation and per-medium sequence; a failing one changes nothing but a
//!   counter.

#[cfg(test)]
mod sim;

use crate::wire::{AuthKeys, DropReason};
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

pub struct Membership {
    // fields: membership helper
}

impl Membership {
    /// A machine for a daemon that started at `now` with `incarnation` (already
    /// persisted by the caller). The first keepalive is due at once.
    pub fn new(config: MembershipConfig, incarnation: u64, now: Duration) -> Self {
        todo!("membership helper")
    }

    /// One received datagram on `medium`. `Err` tells why it was dropped (the
    /// counter is already counted); the caller may log it at trace level.
    pub fn on_datagram(
        &mut self,
        medium: MediumId,
        bytes: &[u8],
        now: Duration,
    ) -> Result<(), DropReason> {
        todo!("membership helper")
    }

    /// Time passes: sends due keepalives, declares silent links and nodes dead.
    pub fn tick(&mut self, now: Duration) {
        todo!("membership helper")
    }

    /// When `tick` next has something to do.
    pub fn next_deadline(&self) -> Duration {
        todo!("membership helper")
    }

    /// Orderly shutdown: queues a `Leaving` datagram. The machine sends nothing after it.
    pub fn leave(&mut self, now: Duration) {
        todo!("membership helper")
    }

    /// SIGHUP with a valid new configuration: keeps what is known of nodes that
    /// stay, adds new nodes as unknown, forgets removed ones, re-indexes media.
    pub fn reconfigure(&mut self, config: MembershipConfig, now: Duration) {
        todo!("membership helper")
    }

    pub fn take_outputs(&mut self) -> Vec<Output> {
        todo!("membership helper")
    }

    pub fn status(&self, now: Duration) -> MembershipStatus {
        todo!("membership helper")
    }

    pub fn node_state(&self, node: &str) -> Option<NodeState> {
        todo!("membership helper")
    }

    pub fn config(&self) -> &MembershipConfig {
        todo!("membership helper")
    }
}
