//! The I/O around the check scheduler: runs checks (one task each, bounded
//! by their timeout), and the `[notify] command` hook.

use crate::config::{CheckConfig, NotifyConfig};
use crate::monitor::checks::{self, CheckKind};
use crate::monitor::scheduler::{CheckDef, Monitor};
use std::time::Duration;
use tokio::sync::mpsc;
use tracing::Instrument;

/// A finished check run: (check, result).
pub type CheckResult = (usize, Result<(), String>);

pub struct MonitorRt {
    pub machine: Monitor,
    kinds: Vec<(CheckKind, Duration)>,
    /// Per group: its checks are on (the group is started here).
    active: Vec<bool>,
    /// Per group: it has a `mon` resource.
    has_mon: Vec<bool>,
    results: mpsc::UnboundedSender<CheckResult>,
}

impl MonitorRt {
    pub fn new(
        checks: &[CheckConfig],
        has_mon: Vec<bool>,
        results: mpsc::UnboundedSender<CheckResult>,
    ) -> MonitorRt {
        let defs = checks
            .iter()
            .map(|c| CheckDef {
                name: c.name.clone(),
                group: c.group,
                interval: c.interval,
                fall: c.fall,
                rise: c.rise,
                action: c.action.clone(),
            })
            .collect();
        MonitorRt {
            machine: Monitor::new(defs, has_mon.len()),
            kinds: checks.iter().map(|c| (c.kind.clone(), c.timeout)).collect(),
            active: vec![false; has_mon.len()],
            has_mon,
            results,
        }
    }

    /// Turns a group's checks on or off as it starts or stops here.
    /// Returns whether anything changed.
    pub fn sync(&mut self, group: usize, started: bool, now: Duration) -> bool {
        let on = started && self.has_mon.get(group).copied().unwrap_or(false);
        if self.active.get(group).copied() == Some(on) {
            return false;
        }
        self.active[group] = on;
        self.machine.set_active(group, on, now);
        true
    }

    /// Runs check `i` in its own task.
    pub fn run(&self, i: usize) {
        let (kind, timeout) = self.kinds[i].clone();
        let tx = self.results.clone();
        tokio::spawn(async move {
            // The check bounds itself; this is the belt to its braces.
            let r = match tokio::time::timeout(
                timeout + Duration::from_secs(1),
                checks::run(&kind, timeout),
            )
            .await
            {
                Ok(r) => r,
                Err(_) => Err(format!(
                    "timed out after {}",
                    crate::config::format_duration(timeout)
                )),
            };
            let _ = tx.send((i, r));
        });
    }
}

/// One event for the notify hook, as `HBD_*` environment variables.
#[derive(Debug, Clone, Default)]
pub struct Notice {
    /// check-failed, check-ok, restart, move, stay, healthy...
    pub event: String,
    pub group: String,
    pub resource: String,
    pub check: String,
    pub node: String,
    pub old_state: String,
    pub new_state: String,
    pub reason: String,
}

/// Runs the notify hook for `n` in the background (its output is logged).
pub fn notify(hook: Option<&NotifyConfig>, n: Notice) {
    tracing::info!(
        event = %n.event,
        group = %n.group,
        check = %n.check,
        resource = %n.resource,
        old = %n.old_state,
        new = %n.new_state,
        reason = %n.reason,
        "notice"
    );
    let Some(hook) = hook.cloned() else {
        return;
    };
    let env: Vec<(String, String)> = [
        ("HBD_EVENT", n.event),
        ("HBD_GROUP", n.group),
        ("HBD_RESOURCE", n.resource),
        ("HBD_CHECK", n.check),
        ("HBD_NODE", n.node),
        ("HBD_OLD_STATE", n.old_state),
        ("HBD_NEW_STATE", n.new_state),
        ("HBD_REASON", n.reason),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    tokio::spawn(
        async move {
            match crate::agents::exec::run_shell(&hook.command, None, &env, hook.timeout).await {
                Ok(0) => {}
                Ok(code) => tracing::warn!(code, "notify command failed"),
                Err(e) => tracing::warn!(error = %e, "notify command"),
            }
        }
        .instrument(tracing::info_span!("notify")),
    );
}
