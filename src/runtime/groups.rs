//! Runs the work the group machine asks for: probing, starting and stopping
//! a group's resources, one task per group operation. Results, and each
//! resource's state as it changes, come back to the daemon loop through one
//! channel (in order); the loop keeps the per-resource states for status.
//!
//! - start: left to right; a resource whose status already says running is
//!   not started again; on a failure the resources started so far (and the
//!   failing one) are stopped right to left: the roll-back;
//! - stop: right to left; a failing stop is retried ([`STOP_ATTEMPTS`]) and
//!   the others are still stopped; the group is stop-failed if one resisted;
//! - probe: the status of every resource.
//!
//! Every agent call runs in a `resource` span naming the group, the resource
//! and the action, so a script's output lands in the log under it.

use crate::agents::{Action, AgentError, AgentKind, Running};
use crate::config::GroupConfig;
use crate::ctl::ResourceStatus;
use crate::groups::{OpResult, Probe};
use crate::wire::GroupState;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tracing::Instrument;

/// A stop is tried this many times before the group is stop-failed.
pub const STOP_ATTEMPTS: usize = 3;
/// Pause between stop attempts.
const STOP_RETRY_PAUSE: Duration = Duration::from_secs(1);

/// A finished operation, for the daemon loop.
#[derive(Debug)]
pub enum Done {
    Probe(usize, Probe),
    Op(usize, OpResult),
    /// A restart in place asked by check `.0` ended (`.1`: it worked).
    Restart(usize, bool),
    /// Resource `.1` of group `.0` is now in state `.2` (`.3`: its error),
    /// for status ([`Runner::set_resource`]).
    Resource(usize, usize, GroupState, Option<String>),
}

/// Owned by the daemon loop.
pub struct Runner {
    groups: Arc<Vec<GroupConfig>>,
    /// `[group][resource]`: state and last error, for status.
    states: Vec<Vec<(GroupState, Option<String>)>>,
    done: mpsc::UnboundedSender<Done>,
}

impl Runner {
    pub fn new(groups: Vec<GroupConfig>, done: mpsc::UnboundedSender<Done>) -> Runner {
        let states = groups
            .iter()
            .map(|g| vec![(GroupState::Stopped, None); g.resources.len()])
            .collect();
        Runner {
            groups: Arc::new(groups),
            states,
            done,
        }
    }

    /// A task's [`Done::Resource`] report.
    pub fn set_resource(&mut self, i: usize, r: usize, state: GroupState, error: Option<String>) {
        if let Some(s) = self.states.get_mut(i).and_then(|g| g.get_mut(r)) {
            *s = (state, error);
        }
    }

    pub fn resources(&self, i: usize) -> Vec<ResourceStatus> {
        self.groups[i]
            .resources
            .iter()
            .zip(&self.states[i])
            .map(|(r, (state, error))| ResourceStatus {
                spec: r.spec.clone(),
                agent: r.kind.class().to_string(),
                state: *state,
                error: error.clone(),
            })
            .collect()
    }

    fn task(&self, i: usize) -> Task {
        Task {
            group: self.groups[i].clone(),
            index: i,
            done: self.done.clone(),
            released: false,
        }
    }

    pub fn probe(&self, i: usize) {
        let (t, done) = (self.task(i), self.done.clone());
        tokio::spawn(async move {
            let p = t.probe().await;
            let _ = done.send(Done::Probe(t.index, p));
        });
    }

    /// Starts group `i`; `released`: the node that ran it before said it
    /// stopped it (its addresses need no duplicate-address probe).
    pub fn start(&self, i: usize, released: bool) {
        let (mut t, done) = (self.task(i), self.done.clone());
        t.released = released;
        tokio::spawn(async move {
            let r = t.start().await;
            let _ = done.send(Done::Op(t.index, r));
        });
    }

    /// Restarts resource `resource` of group `i` in place (stop, then
    /// start), for check `check`.
    pub fn restart(&self, i: usize, resource: usize, check: usize) {
        let (t, done) = (self.task(i), self.done.clone());
        tokio::spawn(async move {
            let ok = t.restart(resource).await;
            let _ = done.send(Done::Restart(check, ok));
        });
    }

    /// Sends the gratuitous ARPs of group `i`'s addresses again (off the
    /// loop): clients that cached another node's MAC for them learn ours.
    pub fn reannounce(&self, i: usize) {
        let group = self.groups[i].clone();
        tokio::spawn(async move {
            for r in &group.resources {
                if let AgentKind::IpAddr(a) = &r.kind {
                    match crate::agents::ipaddr::reannounce(a, &r.options).await {
                        Ok(true) => {
                            tracing::info!(group = %group.id, ip = %a.addr, "announcing the address again (gratuitous ARPs)")
                        }
                        Ok(false) => {}
                        Err(e) => {
                            tracing::warn!(group = %group.id, ip = %a.addr, error = %e, "gratuitous ARPs not sent")
                        }
                    }
                }
            }
        });
    }

    /// Probes for group `i`'s addresses ahead of a takeover (their holder
    /// is late), for `keep` more (see [`crate::agents::ipaddr::preprobe`]).
    pub fn preprobe(&self, i: usize, keep: Duration) {
        let group = self.groups[i].clone();
        tokio::spawn(async move {
            for r in &group.resources {
                if let AgentKind::IpAddr(a) = &r.kind {
                    if let Err(e) = crate::agents::ipaddr::preprobe(a, &r.options, keep).await {
                        tracing::warn!(group = %group.id, ip = %a.addr, error = %e, "duplicate-address pre-probe not begun");
                    }
                }
            }
        });
    }

    pub fn stop(&self, i: usize) {
        let (t, done) = (self.task(i), self.done.clone());
        tokio::spawn(async move {
            let r = t.stop().await;
            let _ = done.send(Done::Op(t.index, r));
        });
    }
}

struct Task {
    group: GroupConfig,
    index: usize,
    /// Resource states go to the loop on the channel results take.
    done: mpsc::UnboundedSender<Done>,
    /// The group's previous holder released it (see [`Runner::start`]).
    released: bool,
}

impl Task {
    fn set(&self, r: usize, state: GroupState, error: Option<String>) {
        let _ = self.done.send(Done::Resource(self.index, r, state, error));
    }

    fn span(&self, r: usize, action: Action) -> tracing::Span {
        tracing::info_span!(
            "resource",
            group = %self.group.id,
            resource = %self.group.resources[r].spec,
            action = action.as_str()
        )
    }

    async fn status(&self, r: usize) -> Result<Running, AgentError> {
        self.group.resources[r]
            .status()
            .instrument(self.span(r, Action::Status))
            .await
    }

    async fn probe(&self) -> Probe {
        let mut running = 0;
        // `mon` is stateless: it runs when the rest does.
        let real: Vec<usize> = (0..self.group.resources.len())
            .filter(|&r| self.group.resources[r].kind != crate::agents::AgentKind::Mon)
            .collect();
        let n = real.len();
        for r in real {
            match self.status(r).await {
                Ok(Running::Running) => {
                    running += 1;
                    self.set(r, GroupState::Started, None);
                }
                Ok(Running::Stopped) => self.set(r, GroupState::Stopped, None),
                Err(e) => {
                    // Unknown counts as running: it gets stopped, never doubled.
                    tracing::warn!(group = %self.group.id, resource = %self.group.resources[r].spec, error = %e, "status failed at start-up");
                    running += 1;
                    self.set(r, GroupState::Started, Some(e.to_string()));
                }
            }
        }
        let p = match running {
            0 => Probe::Stopped,
            x if x == n => Probe::Running,
            _ => Probe::Partial,
        };
        tracing::info!(group = %self.group.id, running, of = n, "probed");
        p
    }

    async fn start(&self) -> OpResult {
        let n = self.group.resources.len();
        // Resources that can know they will not start are asked first, so
        // that no earlier resource (the address) starts for a start that
        // would roll back (issue 13: the VIP on both nodes for 10 s while
        // drbddisk was refused because the peer was Primary).
        for r in 0..n {
            let res = &self.group.resources[r];
            if let Err(e) = res
                .preflight()
                .instrument(self.span(r, Action::Start))
                .await
            {
                tracing::error!(group = %self.group.id, resource = %res.spec, error = %e, "resource will not start: nothing started");
                self.set(r, GroupState::Failed, Some(e.to_string()));
                return OpResult::StartFailed { rolled_back: true };
            }
        }
        for r in 0..n {
            let res = &self.group.resources[r];
            if let Ok(Running::Running) = self.status(r).await {
                tracing::info!(group = %self.group.id, resource = %res.spec, "already running: not started again");
                self.set(r, GroupState::Started, None);
                continue;
            }
            self.set(r, GroupState::Starting, None);
            let span = self.span(r, Action::Start);
            let t0 = std::time::Instant::now();
            match res.start(self.released).instrument(span).await {
                Ok(()) => {
                    tracing::info!(group = %self.group.id, resource = %res.spec, ms = t0.elapsed().as_millis() as u64, "resource started");
                    self.set(r, GroupState::Started, None);
                }
                Err(e) => {
                    tracing::error!(group = %self.group.id, resource = %res.spec, error = %e, "resource failed to start: rolling back");
                    self.set(r, GroupState::Failed, Some(e.to_string()));
                    // Roll back: the failing one too, it may be half-started.
                    let mut clean = true;
                    for back in (0..=r).rev() {
                        if !self.stop_one(back, back == r).await {
                            clean = false;
                        }
                    }
                    return OpResult::StartFailed { rolled_back: clean };
                }
            }
        }
        OpResult::Started
    }

    /// Stops resource `r` with retries; true when it stopped. `keep_failed`
    /// leaves a start failure's state visible when the stop succeeds.
    async fn stop_one(&self, r: usize, keep_failed: bool) -> bool {
        let res = &self.group.resources[r];
        let mut last = None;
        for attempt in 1..=STOP_ATTEMPTS {
            if !keep_failed {
                self.set(r, GroupState::Stopping, None);
            }
            let span = self.span(r, Action::Stop);
            match res.run(Action::Stop).instrument(span).await {
                Ok(()) => {
                    if !keep_failed {
                        self.set(r, GroupState::Stopped, None);
                    }
                    tracing::info!(group = %self.group.id, resource = %res.spec, "resource stopped");
                    return true;
                }
                Err(e) => {
                    tracing::warn!(group = %self.group.id, resource = %res.spec, attempt, of = STOP_ATTEMPTS, error = %e, "stop failed");
                    last = Some(e.to_string());
                    if attempt < STOP_ATTEMPTS {
                        tokio::time::sleep(STOP_RETRY_PAUSE).await;
                    }
                }
            }
        }
        tracing::error!(group = %self.group.id, resource = %res.spec, "RESOURCE STOP FAILED: it may still run here; the group will not start on another node while this node is up");
        self.set(r, GroupState::StopFailed, last);
        false
    }

    async fn restart(&self, r: usize) -> bool {
        let res = &self.group.resources[r];
        tracing::warn!(group = %self.group.id, resource = %res.spec, "restarting in place");
        if !self.stop_one(r, false).await {
            return false;
        }
        self.set(r, GroupState::Starting, None);
        match res
            .run(Action::Start)
            .instrument(self.span(r, Action::Start))
            .await
        {
            Ok(()) => {
                self.set(r, GroupState::Started, None);
                tracing::info!(group = %self.group.id, resource = %res.spec, "restarted");
                true
            }
            Err(e) => {
                tracing::error!(group = %self.group.id, resource = %res.spec, error = %e, "restart failed");
                self.set(r, GroupState::Failed, Some(e.to_string()));
                false
            }
        }
    }

    async fn stop(&self) -> OpResult {
        let mut clean = true;
        for r in (0..self.group.resources.len()).rev() {
            if !self.stop_one(r, false).await {
                clean = false;
            }
        }
        if clean {
            OpResult::Stopped
        } else {
            OpResult::StopFailed
        }
    }
}
