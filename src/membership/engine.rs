//! The membership engine the daemon runs: heartbeat's own (broadcast,
//! multicast, unicast keepalives, [`Membership`]) or Corosync's CPG and
//! votequorum ([`CpgMembership`]). Both produce the same [`Output`]s, so
//! the daemon loop and the group machine above do not know which one runs.

use super::cpg::{CpgInput, CpgMembership};
use super::{MediumId, Membership, MembershipConfig, MembershipStatus, Output};
use crate::wire::{Body, DropReason};
use std::time::Duration;

pub enum Engine {
    Heartbeat(Membership),
    Corosync(CpgMembership),
}

impl Engine {
    pub fn deadtime(&self) -> Duration {
        match self {
            Engine::Heartbeat(m) => m.deadtime(),
            Engine::Corosync(m) => m.deadtime(),
        }
    }

    pub fn config(&self) -> &MembershipConfig {
        match self {
            Engine::Heartbeat(m) => m.config(),
            Engine::Corosync(m) => m.config(),
        }
    }

    /// What the previous run saw of `node` (heartbeat's replay defence;
    /// CPG delivers only from current members, nothing to remember).
    pub fn remember(&mut self, node: &str, incarnation: u64, left: bool) {
        if let Engine::Heartbeat(m) = self {
            m.remember(node, incarnation, left);
        }
    }

    /// A datagram from a medium (heartbeat only: Corosync opens no media).
    pub fn on_datagram(
        &mut self,
        medium: MediumId,
        bytes: &[u8],
        now: Duration,
    ) -> Result<(), DropReason> {
        match self {
            Engine::Heartbeat(m) => m.on_datagram(medium, bytes, now),
            Engine::Corosync(_) => Ok(()),
        }
    }

    /// What Corosync said (Corosync only).
    pub fn on_cpg(&mut self, input: CpgInput, now: Duration) {
        if let Engine::Corosync(m) = self {
            m.on_input(input, now);
        }
    }

    pub fn broadcast(&mut self, body: Body) {
        match self {
            Engine::Heartbeat(m) => m.broadcast(body),
            Engine::Corosync(m) => m.broadcast(body),
        }
    }

    pub fn tick(&mut self, now: Duration) {
        match self {
            Engine::Heartbeat(m) => m.tick(now),
            Engine::Corosync(m) => m.tick(now),
        }
    }

    pub fn next_deadline(&self) -> Duration {
        match self {
            Engine::Heartbeat(m) => m.next_deadline(),
            Engine::Corosync(m) => m.next_deadline(),
        }
    }

    pub fn leave(&mut self, now: Duration) {
        match self {
            Engine::Heartbeat(m) => m.leave(now),
            Engine::Corosync(m) => m.leave(now),
        }
    }

    pub fn take_outputs(&mut self) -> Vec<Output> {
        match self {
            Engine::Heartbeat(m) => m.take_outputs(),
            Engine::Corosync(m) => m.take_outputs(),
        }
    }

    /// Keepalive gaps per (peer, medium): heartbeat only.
    pub fn take_gaps(&mut self) -> Vec<(String, MediumId, Duration)> {
        match self {
            Engine::Heartbeat(m) => m.take_gaps(),
            Engine::Corosync(_) => Vec::new(),
        }
    }

    pub fn status(&self, now: Duration) -> MembershipStatus {
        match self {
            Engine::Heartbeat(m) => m.status(now),
            Engine::Corosync(m) => m.status(now),
        }
    }

    /// Up peers silent for `after` (heartbeat's late keepalives); Corosync
    /// says nothing until its token timeout, so none are late there.
    pub fn late_peers(&self, now: Duration, after: Duration) -> (Vec<&str>, Option<Duration>) {
        match self {
            Engine::Heartbeat(m) => m.late_peers(now, after),
            Engine::Corosync(_) => (Vec::new(), None),
        }
    }
}
