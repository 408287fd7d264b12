//! The I/O around the job scheduler: wall-clock time, running a job's
//! command (as its user, with its timeout) and reporting back.

use crate::config::JobConfig;
use crate::jobs::{self, JobDef, Jobs};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::sync::mpsc;
use tracing::Instrument;

/// A finished run: (job, ok, summary).
pub type JobResult = (usize, bool, String);

pub fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

pub struct JobsRt {
    pub machine: Jobs,
    configs: Vec<JobConfig>,
    /// Per group: started here.
    active: Vec<bool>,
    done: mpsc::UnboundedSender<JobResult>,
}

impl JobsRt {
    pub fn new(
        configs: &[JobConfig],
        groups: usize,
        done: mpsc::UnboundedSender<JobResult>,
    ) -> JobsRt {
        let defs = configs
            .iter()
            .map(|j| JobDef {
                name: j.name.clone(),
                group: j.group,
                schedule: j.schedule.clone(),
                missed: j.missed,
            })
            .collect();
        JobsRt {
            machine: Jobs::new(defs, jobs::cron::local_civil),
            configs: configs.to_vec(),
            active: vec![false; groups],
            done,
        }
    }

    /// Follows a group starting or stopping here; true when it changed.
    pub fn sync(&mut self, group: usize, started: bool) -> bool {
        if self.active.get(group).copied() == Some(started) {
            return false;
        }
        self.active[group] = started;
        self.machine.set_group_active(group, started, unix_now());
        true
    }

    /// Monotonic time (the daemon's clock) at which `tick` is next due.
    pub fn next_deadline(&self, now: Duration) -> Duration {
        match self.machine.next_deadline() {
            None => Duration::MAX,
            Some(t) => {
                let wait = (t - unix_now()).max(0) as u64;
                now.saturating_add(Duration::from_secs(wait))
            }
        }
    }

    /// Runs job `job` for `scheduled` in its own task.
    pub fn run(&self, job: usize, scheduled: i64) {
        let j = self.configs[job].clone();
        let tx = self.done.clone();
        let env = vec![
            ("HBD_JOB".to_string(), j.name.clone()),
            ("HBD_SCHEDULED".to_string(), scheduled.to_string()),
        ];
        let span = tracing::info_span!("job", job = %j.name);
        tokio::spawn(
            async move {
                tracing::info!(scheduled, command = %j.command, "job starts");
                let t0 = std::time::Instant::now();
                let r =
                    crate::process::run_shell(&j.command, j.user.as_deref(), &env, j.timeout).await;
                let secs = t0.elapsed().as_secs_f64();
                let (ok, summary) = match r {
                    Ok(0) => (true, format!("exit 0 after {secs:.1}s")),
                    Ok(code) => (false, format!("exit {code} after {secs:.1}s")),
                    Err(e) => (false, e.to_string()),
                };
                if ok {
                    tracing::info!(%summary, "job done");
                } else {
                    tracing::warn!(%summary, "job failed");
                }
                let _ = tx.send((job, ok, summary));
            }
            .instrument(span),
        );
    }
}
