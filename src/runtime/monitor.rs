//! The I/O around the check scheduler: runs checks (one task each, bounded
//! by their timeout). The `[notify] command` hook is [`crate::notify`]'s.

use crate::config::CheckConfig;
use crate::monitor::checks::{self, CheckError, CheckKind};
use crate::monitor::scheduler::{CheckDef, Monitor};
use std::time::Duration;
use tokio::sync::mpsc;

/// A finished check run: (check, result).
pub type CheckResult = (usize, Result<(), CheckError>);

pub struct MonitorRt {
    pub machine: Monitor,
    kinds: Vec<(CheckKind, Duration)>,
    /// Per group: its checks are on (the group is started here).
    active: Vec<bool>,
    /// Per group: it has a `mon` resource.
    has_mon: Vec<bool>,
    results: mpsc::UnboundedSender<CheckResult>,
    /// Where check runs and their latencies are counted.
    pub metrics: Option<std::sync::Arc<crate::metrics::Metrics>>,
    names: Vec<String>,
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
            metrics: None,
            names: checks.iter().map(|c| c.name.clone()).collect(),
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
        let metrics = self.metrics.clone();
        let name = self.names[i].clone();
        tokio::spawn(async move {
            let t0 = std::time::Instant::now();
            // The check bounds itself; this is the belt to its braces.
            let r = match tokio::time::timeout(
                timeout + Duration::from_secs(1),
                checks::run(&kind, timeout),
            )
            .await
            {
                Ok(r) => r,
                Err(_) => Err(CheckError::TimedOut { timeout }),
            };
            if let Some(m) = metrics {
                m.check_run(&name, r.is_ok(), t0.elapsed());
            }
            let _ = tx.send((i, r));
        });
    }
}

pub use crate::notify::{notify, Notice};
