//! The check scheduler: a state machine without I/O, mon's job.
//!
//! Inputs: which groups run here ([`Monitor::set_active`]), check results,
//! restart results and the passage of time (`now`, a monotonic duration, as
//! for membership). Outputs: checks to run, resources to restart, groups to
//! mark unhealthy (the group machine then moves them to a healthy peer, if
//! there is one) or healthy again, and events to log and notify.
//!
//! Rules:
//! - a check runs every `interval` while its group is started here (the
//!   first run one interval after the start, so services may settle); a run
//!   still in flight is never doubled;
//! - `fall` consecutive failures make it `failed` (mon's alertafter), `rise`
//!   consecutive successes make it `ok` again;
//! - on `failed`, its action: `notify` only; `move` marks the group
//!   unhealthy here; `restart` restarts one resource in place, at most
//!   `restarts` times within `restart_window`, and then marks the group
//!   unhealthy;
//! - the group is healthy here again when none of its checks is `failed`.

use crate::monitor::checks::CheckError;
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;
use std::time::Duration;

/// What a failed check does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Only notify.
    Notify,
    /// Move the group to a healthy peer.
    Move,
    /// Restart resource `resource` (index in the group) in place, at most
    /// `max` times within `window`; then move.
    Restart {
        resource: usize,
        max: u32,
        window: Duration,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckDef {
    pub name: String,
    pub group: usize,
    pub interval: Duration,
    pub fall: u32,
    pub rise: u32,
    pub action: Action,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Health {
    /// Not run since the group started here, or not `rise` successes yet.
    Unknown,
    Ok,
    Failed,
    /// The group does not run here: the check does not run.
    Idle,
}

impl Health {
    pub fn as_str(self) -> &'static str {
        match self {
            Health::Unknown => "unknown",
            Health::Ok => "ok",
            Health::Failed => "failed",
            Health::Idle => "idle",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// Run check `i` now (within its timeout), then call [`Monitor::on_result`].
    Run(usize),
    /// Restart resource `resource` of `group` in place, then call
    /// [`Monitor::on_restarted`].
    Restart {
        check: usize,
        group: usize,
        resource: usize,
    },
    /// The group should leave this node: a check failed and its action
    /// says move (or restarts are used up).
    Unhealthy {
        group: usize,
        check: usize,
        reason: String,
    },
    /// No check of the group is failed any more.
    Healthy {
        group: usize,
    },
    Event(CheckEvent),
}

/// A check's state change or action, for the log and the notify hook.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckEvent {
    pub check: usize,
    pub from: Health,
    pub to: Health,
    pub reason: String,
}

#[derive(Debug, Clone)]
struct State {
    active: bool,
    health: Health,
    next_due: Duration,
    in_flight: bool,
    restarting: bool,
    successes: u32,
    failures: u32,
    last_error: Option<String>,
    last_run: Option<Duration>,
    /// When restarts were done, for the window.
    restarts: VecDeque<Duration>,
}

/// One check's status.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckStatus {
    pub name: String,
    pub group: usize,
    pub state: Health,
    /// Consecutive successes and failures.
    pub successes: u32,
    pub failures: u32,
    pub last_error: Option<String>,
    /// Milliseconds since its last result.
    pub last_run_ms: Option<u64>,
    /// Restarts within the current window.
    pub restarts: u32,
}

pub struct Monitor {
    defs: Vec<CheckDef>,
    states: Vec<State>,
    /// Groups marked unhealthy by us.
    unhealthy: Vec<bool>,
    outputs: Vec<Output>,
}

impl Monitor {
    pub fn new(defs: Vec<CheckDef>, groups: usize) -> Monitor {
        let states = defs
            .iter()
            .map(|_| State {
                active: false,
                health: Health::Idle,
                next_due: Duration::MAX,
                in_flight: false,
                restarting: false,
                successes: 0,
                failures: 0,
                last_error: None,
                last_run: None,
                restarts: VecDeque::new(),
            })
            .collect();
        Monitor {
            defs,
            states,
            unhealthy: vec![false; groups],
            outputs: Vec::new(),
        }
    }

    pub fn take_outputs(&mut self) -> Vec<Output> {
        std::mem::take(&mut self.outputs)
    }

    fn event(&mut self, i: usize, to: Health, reason: String) {
        let from = self.states[i].health;
        self.states[i].health = to;
        if from != to {
            self.outputs.push(Output::Event(CheckEvent {
                check: i,
                from,
                to,
                reason,
            }));
        }
    }

    /// Group `group` started (true) or stopped (false) here.
    pub fn set_active(&mut self, group: usize, active: bool, now: Duration) {
        for i in 0..self.defs.len() {
            if self.defs[i].group != group || self.states[i].active == active {
                continue;
            }
            let s = &mut self.states[i];
            s.active = active;
            s.successes = 0;
            s.failures = 0;
            s.restarting = false;
            if active {
                s.next_due = now.saturating_add(self.defs[i].interval);
                self.event(i, Health::Unknown, "the group started here".into());
            } else {
                s.next_due = Duration::MAX;
                self.event(i, Health::Idle, "the group stopped here".into());
            }
        }
    }

    /// An operator cleared the group: its checks start from scratch.
    pub fn clear(&mut self, group: usize) {
        if let Some(u) = self.unhealthy.get_mut(group) {
            *u = false;
        }
        for i in 0..self.defs.len() {
            if self.defs[i].group == group {
                self.states[i].restarts.clear();
            }
        }
    }

    /// Time passes: due checks are run.
    pub fn tick(&mut self, now: Duration) {
        for i in 0..self.defs.len() {
            let s = &mut self.states[i];
            if s.active && !s.in_flight && !s.restarting && now >= s.next_due {
                s.in_flight = true;
                // The next run is due one interval after this one starts; a
                // slow check delays it rather than piling up.
                s.next_due = now.saturating_add(self.defs[i].interval);
                self.outputs.push(Output::Run(i));
            }
        }
    }

    /// When [`Monitor::tick`] next has work.
    pub fn next_deadline(&self) -> Duration {
        self.states
            .iter()
            .filter(|s| s.active && !s.in_flight && !s.restarting)
            .map(|s| s.next_due)
            .min()
            .unwrap_or(Duration::MAX)
    }

    /// The result of a run of check `i`.
    pub fn on_result(&mut self, i: usize, result: Result<(), CheckError>, now: Duration) {
        let Some(s) = self.states.get_mut(i) else {
            return;
        };
        s.in_flight = false;
        if !s.active {
            return;
        }
        s.last_run = Some(now);
        let def = self.defs[i].clone();
        match result {
            Ok(()) => {
                s.successes = s.successes.saturating_add(1);
                s.failures = 0;
                s.last_error = None;
                if s.health != Health::Ok && s.successes >= def.rise.max(1) {
                    let n = s.successes;
                    self.event(i, Health::Ok, format!("{n} consecutive successes"));
                    self.maybe_healthy(def.group);
                }
            }
            Err(e) => {
                let e = e.to_string();
                s.failures = s.failures.saturating_add(1);
                s.successes = 0;
                s.last_error = Some(e.clone());
                if s.health != Health::Failed && s.failures >= def.fall.max(1) {
                    let n = s.failures;
                    self.event(i, Health::Failed, format!("{n} consecutive failures: {e}"));
                    self.act(i, now, e);
                }
            }
        }
    }

    fn act(&mut self, i: usize, now: Duration, error: String) {
        let def = self.defs[i].clone();
        match def.action {
            Action::Notify => {}
            Action::Move => self.mark_unhealthy(i, format!("check {} failed: {error}", def.name)),
            Action::Restart {
                resource,
                max,
                window,
            } => {
                let s = &mut self.states[i];
                while s
                    .restarts
                    .front()
                    .is_some_and(|t| now.saturating_sub(*t) >= window)
                {
                    s.restarts.pop_front();
                }
                if (s.restarts.len() as u32) < max {
                    s.restarts.push_back(now);
                    s.restarting = true;
                    self.outputs.push(Output::Restart {
                        check: i,
                        group: def.group,
                        resource,
                    });
                } else {
                    let n = s.restarts.len();
                    self.mark_unhealthy(
                        i,
                        format!(
                            "check {} failed: {error}; restarted {n} times within {}: moving",
                            def.name,
                            crate::config::format_duration(window)
                        ),
                    );
                }
            }
        }
    }

    fn mark_unhealthy(&mut self, i: usize, reason: String) {
        let group = self.defs[i].group;
        self.unhealthy[group] = true;
        self.outputs.push(Output::Unhealthy {
            group,
            check: i,
            reason,
        });
    }

    fn maybe_healthy(&mut self, group: usize) {
        if !self.unhealthy[group] {
            return;
        }
        let failed = (0..self.defs.len())
            .any(|j| self.defs[j].group == group && self.states[j].health == Health::Failed);
        if !failed {
            self.unhealthy[group] = false;
            self.outputs.push(Output::Healthy { group });
        }
    }

    /// A restart asked by check `i` ended.
    pub fn on_restarted(&mut self, i: usize, ok: bool, now: Duration) {
        let Some(s) = self.states.get_mut(i) else {
            return;
        };
        if !s.restarting {
            return;
        }
        s.restarting = false;
        if !s.active {
            return;
        }
        if ok {
            // Judge the restarted service afresh, one interval from now.
            s.successes = 0;
            s.failures = 0;
            s.next_due = now.saturating_add(self.defs[i].interval);
            self.event(i, Health::Unknown, "resource restarted".into());
        } else {
            let name = self.defs[i].name.clone();
            self.mark_unhealthy(i, format!("check {name} failed and the restart failed"));
        }
    }

    pub fn status(&self, now: Duration) -> Vec<CheckStatus> {
        self.defs
            .iter()
            .zip(&self.states)
            .map(|(d, s)| CheckStatus {
                name: d.name.clone(),
                group: d.group,
                state: s.health,
                successes: s.successes,
                failures: s.failures,
                last_error: s.last_error.clone(),
                last_run_ms: s.last_run.map(|t| now.saturating_sub(t).as_millis() as u64),
                restarts: s.restarts.len() as u32,
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(x: u64) -> Duration {
        Duration::from_secs(x)
    }

    /// A failed run.
    fn down() -> Result<(), CheckError> {
        Err(CheckError::NoProcess { name: "web".into() })
    }

    fn def(action: Action) -> CheckDef {
        CheckDef {
            name: "port".into(),
            group: 0,
            interval: s(1),
            fall: 2,
            rise: 2,
            action,
        }
    }

    /// Runs the machine on a simulated clock: `results(i, t)` answers each run
    /// at once. Returns the outputs other than Run, with their times.
    fn drive(
        m: &mut Monitor,
        until: u64,
        mut results: impl FnMut(usize, Duration) -> Result<(), CheckError>,
    ) -> Vec<(Duration, Output)> {
        let mut out = Vec::new();
        let mut now = Duration::ZERO;
        while now <= s(until) {
            m.tick(now);
            let mut queue = m.take_outputs();
            while let Some(o) = queue.pop() {
                match o {
                    Output::Run(i) => {
                        let r = results(i, now);
                        m.on_result(i, r, now);
                    }
                    Output::Restart { check, .. } => {
                        out.push((now, o.clone()));
                        m.on_restarted(check, true, now);
                    }
                    other => out.push((now, other)),
                }
                queue.extend(m.take_outputs());
            }
            now += Duration::from_millis(100);
        }
        out
    }

    #[test]
    fn runs_only_while_active_and_fails_after_fall() {
        let mut m = Monitor::new(vec![def(Action::Move)], 1);
        let mut runs = 0;
        drive(&mut m, 3, |_, _| {
            runs += 1;
            Ok(())
        });
        assert_eq!(runs, 0, "inactive: nothing runs");
        m.set_active(0, true, Duration::ZERO);
        let out = drive(&mut m, 10, |_, t| if t < s(5) { Ok(()) } else { down() });
        let unhealthy: Vec<_> = out
            .iter()
            .filter(|(_, o)| matches!(o, Output::Unhealthy { .. }))
            .collect();
        assert_eq!(unhealthy.len(), 1, "{out:?}");
        // Failures at 5 s and 6 s: fall 2 -> unhealthy at 6 s.
        assert_eq!(unhealthy[0].0, s(6));
        assert_eq!(m.status(s(10))[0].state, Health::Failed);
        m.set_active(0, false, s(11));
        assert_eq!(m.status(s(11))[0].state, Health::Idle);
        assert_eq!(m.next_deadline(), Duration::MAX);
    }

    #[test]
    fn restart_in_place_then_move() {
        let mut m = Monitor::new(
            vec![def(Action::Restart {
                resource: 1,
                max: 2,
                window: s(60),
            })],
            1,
        );
        m.set_active(0, true, Duration::ZERO);
        let out = drive(&mut m, 30, |_, _| down());
        let restarts = out
            .iter()
            .filter(|(_, o)| matches!(o, Output::Restart { resource: 1, .. }))
            .count();
        assert_eq!(restarts, 2, "{out:?}");
        let moves: Vec<_> = out
            .iter()
            .filter_map(|(_, o)| match o {
                Output::Unhealthy { reason, .. } => Some(reason.clone()),
                _ => None,
            })
            .collect();
        assert_eq!(moves.len(), 1, "{out:?}");
        assert!(moves[0].contains("restarted 2 times"), "{moves:?}");
        assert!(
            moves[0].starts_with("check port failed: no process named web;"),
            "{moves:?}"
        );
    }

    #[test]
    fn recovery_needs_rise_and_clears_unhealthy() {
        let mut m = Monitor::new(vec![def(Action::Move)], 1);
        m.set_active(0, true, Duration::ZERO);
        // Down from 2 s to 4 s, flapping does not count until rise successes.
        let out = drive(&mut m, 12, |_, t| {
            if (s(2)..s(5)).contains(&t) {
                down()
            } else {
                Ok(())
            }
        });
        let kinds: Vec<&str> = out
            .iter()
            .filter_map(|(_, o)| match o {
                Output::Unhealthy { .. } => Some("unhealthy"),
                Output::Healthy { .. } => Some("healthy"),
                _ => None,
            })
            .collect();
        assert_eq!(kinds, ["unhealthy", "healthy"]);
        assert_eq!(m.status(s(12))[0].state, Health::Ok);
    }

    #[test]
    fn a_hanging_check_is_not_doubled() {
        let mut m = Monitor::new(vec![def(Action::Notify)], 1);
        m.set_active(0, true, Duration::ZERO);
        m.take_outputs();
        m.tick(s(1));
        assert_eq!(m.take_outputs(), vec![Output::Run(0)]);
        m.tick(s(5));
        assert!(m.take_outputs().is_empty(), "in flight: not run again");
        m.on_result(0, Err(CheckError::TimedOut { timeout: s(2) }), s(5));
        assert_eq!(
            m.status(s(5))[0].last_error.as_deref(),
            Some("timed out after 2s")
        );
        m.tick(s(5));
        assert_eq!(m.take_outputs(), vec![Output::Run(0)]);
    }
}
