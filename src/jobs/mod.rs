//! The job scheduler: cron on the node that holds a resource group, as a
//! state machine without I/O.
//!
//! Replaces heartbeat + "cron on the active node": each job belongs to a
//! resource group and runs only on the node where that group is active
//! ([`Jobs::set_group_active`]). Inputs are group starts and stops, peers'
//! marks, job results and the wall clock (`now`, unix seconds, passed in);
//! outputs are [`Output`]s: runs for the runtime to start, and events to log.
//!
//! # Marks: at most once per scheduled time
//!
//! Each job has a *mark*: the latest scheduled time that was run (or
//! explicitly skipped) anywhere in the cluster as far as this node knows — the
//! maximum of its own and its peers' ([`Jobs::marks`] goes into the group
//! report; [`Jobs::on_peer_mark`] takes a peer's). A scheduled time counts as
//! done **as soon as its run is started**, not when it finishes: if the node
//! fails during the run, the peer that takes over does not run that time again.
//! Jobs are therefore *at most once* per scheduled time, provided the old
//! holder's marks reach the new one before it starts the group (which the
//! group protocol's reports give on an orderly failover; after a crash, the
//! report sent when the run started). A run cut short by a crash is not
//! repeated; a job that must complete should be idempotent and use `CatchUp`
//! with its own check.
//!
//! # Due and missed times
//!
//! While the group is active, a scheduled time `t` is due at the first
//! [`Jobs::tick`] with `now >= t` (the runtime ticks at [`Jobs::next_deadline`]).
//! It is *on time* if `now - t <` [`ON_TIME`]; otherwise it was *missed* (the
//! group was not active anywhere, the machine slept, the clock jumped) and the
//! job's [`Missed`] policy decides: `CatchUp` runs it now, `Skip` records it as
//! done with an event. Of several times passed at once only the latest is
//! considered (anacron's "once, not once per missed time"). A job whose
//! previous run is still going is not started again (Vixie cron would start a
//! second copy; here the time is recorded as skipped, with an event).
//!
//! When the clock goes backwards nothing is re-run: times up to the mark stay
//! done, and the next time due is the first one after the mark.
//!
//! A job that has never run in the cluster (no mark) starts at the group start
//! with no catch-up.

pub mod cron;
#[cfg(test)]
mod tests;

use std::collections::BTreeSet;

/// A scheduled time reached at most this many seconds late runs as on time;
/// later, it was missed and the [`Missed`] policy applies.
pub const ON_TIME: i64 = 60;

/// What to do with a scheduled time that was missed (no node had the group, or
/// the clock jumped past it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Missed {
    /// Run it once, late (only the latest of several missed times).
    CatchUp,
    /// Record it as done without running it.
    Skip,
}

#[derive(Debug, Clone)]
pub struct JobDef {
    /// Unique in the cluster: marks are exchanged by name.
    pub name: String,
    /// The resource group (index in the configuration) the job runs with.
    pub group: usize,
    pub schedule: cron::Schedule,
    pub missed: Missed,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// Run job `job` for scheduled time `scheduled` (unix secs; for `@reboot`,
    /// the time the group started).
    Run { job: usize, scheduled: i64 },
    /// Something worth a log line (skipped because still running, caught up,
    /// skipped missed time...).
    Event { job: usize, message: String },
}

/// One job for `hbctl jobs` and the status document.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct JobStatus {
    pub name: String,
    pub group: usize,
    /// The schedule as written.
    pub schedule: String,
    /// The group is active on this node.
    pub active: bool,
    /// A run started here has not finished.
    pub running: bool,
    /// The mark: latest scheduled time done in the cluster (for `@reboot`, the
    /// last group start it ran for here).
    pub last_scheduled: Option<i64>,
    pub last_finished: Option<i64>,
    pub last_ok: Option<bool>,
    pub last_summary: Option<String>,
    /// The next scheduled time: when it runs here if `active`; otherwise the
    /// next time of the schedule after now and the mark, wherever the group is.
    pub next: Option<i64>,
}

#[derive(Debug)]
struct Job {
    def: JobDef,
    /// The mark: latest scheduled time run or skipped, here or by a peer.
    /// Never set for `@reboot` jobs, which run on every group start.
    done: Option<i64>,
    /// While the group is active here: every scheduled time `<= cursor` has
    /// been handled (or came before the first activation of a job without a
    /// mark). `None` while inactive.
    cursor: Option<i64>,
    /// `schedule.next_after(cursor)`, cached for `tick` and `next_deadline`.
    next: Option<i64>,
    /// Scheduled time of the run started here and not finished.
    running: Option<i64>,
    /// `@reboot`: the group start it last ran for.
    last_reboot: Option<i64>,
    last_finished: Option<i64>,
    last_ok: Option<bool>,
    last_summary: Option<String>,
}

pub struct Jobs {
    jobs: Vec<Job>,
    active: BTreeSet<usize>,
    civil: fn(i64) -> cron::Civil,
    outputs: Vec<Output>,
}

impl Jobs {
    /// `civil` turns unix seconds into wall-clock time: [`cron::local_civil`]
    /// in the daemon (cron's behaviour), [`cron::utc_civil`] in tests.
    pub fn new(defs: Vec<JobDef>, civil: fn(i64) -> cron::Civil) -> Jobs {
        let jobs = defs
            .into_iter()
            .map(|def| Job {
                def,
                done: None,
                cursor: None,
                next: None,
                running: None,
                last_reboot: None,
                last_finished: None,
                last_ok: None,
                last_summary: None,
            })
            .collect();
        Jobs {
            jobs,
            active: BTreeSet::new(),
            civil,
            outputs: Vec::new(),
        }
    }

    /// The group started (`true`) or stopped (`false`) on this node at `now`.
    ///
    /// On start, for each job of the group: a missed scheduled time `t` with
    /// `mark < t <= now` is run once (`CatchUp`, the latest only) or recorded
    /// as done (`Skip`); `@reboot` jobs run (once per start: a repeated `true`
    /// is ignored). On stop nothing new starts; runs in progress are the
    /// runtime's business and still report [`Jobs::on_done`].
    pub fn set_group_active(&mut self, group: usize, active: bool, now: i64) {
        if !active {
            if self.active.remove(&group) {
                for job in self.jobs.iter_mut().filter(|j| j.def.group == group) {
                    job.cursor = None;
                    job.next = None;
                }
            }
            return;
        }
        if !self.active.insert(group) {
            return;
        }
        for i in 0..self.jobs.len() {
            let job = &mut self.jobs[i];
            if job.def.group != group {
                continue;
            }
            if job.def.schedule.is_reboot() {
                if job.running.is_some() {
                    self.event(i, "still running, @reboot run skipped".to_string());
                } else {
                    job.running = Some(now);
                    job.last_reboot = Some(now);
                    self.outputs.push(Output::Run {
                        job: i,
                        scheduled: now,
                    });
                }
                continue;
            }
            // Without a mark, the job starts fresh: a time equal to `now` is
            // due, nothing earlier is caught up.
            job.cursor = Some(job.done.unwrap_or(now - 1));
            self.advance(i, now);
        }
    }

    /// A peer's gossip: job `name` last ran (or was skipped) for scheduled
    /// time `last`. Unknown names and `@reboot` jobs are ignored.
    pub fn on_peer_mark(&mut self, name: &str, last: i64) {
        let civil = self.civil;
        for job in self.jobs.iter_mut() {
            if job.def.name != name || job.def.schedule.is_reboot() {
                continue;
            }
            job.done = job.done.max(Some(last));
            if let Some(cursor) = job.cursor {
                if last > cursor {
                    job.cursor = Some(last);
                    job.next = job.def.schedule.next_after(last, &civil);
                }
            }
        }
    }

    /// Time passes: due jobs of active groups run (or are skipped: see the
    /// module doc).
    pub fn tick(&mut self, now: i64) {
        for i in 0..self.jobs.len() {
            if self.jobs[i].next.is_some_and(|t| t <= now) {
                self.advance(i, now);
            }
        }
    }

    /// Job `job` finished (`ok`, with a short summary for status).
    pub fn on_done(&mut self, job: usize, ok: bool, summary: String, now: i64) {
        let Some(job) = self.jobs.get_mut(job) else {
            return;
        };
        job.running = None;
        job.last_finished = Some(now);
        job.last_ok = Some(ok);
        job.last_summary = Some(summary);
    }

    /// When [`Jobs::tick`] next has something to do (unix seconds), or None.
    pub fn next_deadline(&self) -> Option<i64> {
        self.jobs.iter().filter_map(|j| j.next).min()
    }

    pub fn take_outputs(&mut self) -> Vec<Output> {
        std::mem::take(&mut self.outputs)
    }

    /// `(job name, mark)` for every job that has a mark: goes into the group
    /// report so that a peer taking over does not run these times again.
    pub fn marks(&self) -> Vec<(String, i64)> {
        self.jobs
            .iter()
            .filter_map(|j| Some((j.def.name.clone(), j.done?)))
            .collect()
    }

    /// For `hbctl jobs` and the status document.
    pub fn status(&self, now: i64) -> Vec<JobStatus> {
        let civil = self.civil;
        self.jobs
            .iter()
            .map(|j| {
                let active = self.active.contains(&j.def.group);
                let reboot = j.def.schedule.is_reboot();
                let next = if active {
                    j.next
                } else {
                    let from = j.done.map_or(now, |d| d.max(now));
                    j.def.schedule.next_after(from, &civil)
                };
                JobStatus {
                    name: j.def.name.clone(),
                    group: j.def.group,
                    schedule: j.def.schedule.as_str().to_string(),
                    active,
                    running: j.running.is_some(),
                    last_scheduled: if reboot { j.last_reboot } else { j.done },
                    last_finished: j.last_finished,
                    last_ok: j.last_ok,
                    last_summary: j.last_summary.clone(),
                    next,
                }
            })
            .collect()
    }

    /// Handles the latest scheduled time in `(cursor, now]` of an active job,
    /// if any, and moves the cursor (and the mark) to it.
    fn advance(&mut self, i: usize, now: i64) {
        let civil = self.civil;
        let job = &mut self.jobs[i];
        let Some(cursor) = job.cursor else {
            return;
        };
        let schedule = &job.def.schedule;
        let Some(t) = schedule.latest_in(cursor, now, &civil) else {
            job.next = schedule.next_after(cursor, &civil);
            return;
        };
        // Earlier times in (cursor, t) get no run of their own: the clock
        // jumped, or the group was not active anywhere.
        let first = schedule.next_after(cursor, &civil).filter(|&f| f < t);
        job.cursor = Some(t);
        job.done = job.done.max(Some(t));
        job.next = schedule.next_after(t, &civil);
        let on_time = now - t < ON_TIME;
        let run = on_time || job.def.missed == Missed::CatchUp;
        let when = civil(t);
        let earlier = match first {
            Some(f) => format!(" (times from {} not run)", civil(f)),
            None => String::new(),
        };
        let message = if !run {
            Some(format!("missed {when}, skipped{earlier}"))
        } else if let Some(r) = job.running {
            Some(format!(
                "still running (since {}), skipped {when}{earlier}",
                civil(r)
            ))
        } else {
            job.running = Some(t);
            self.outputs.push(Output::Run {
                job: i,
                scheduled: t,
            });
            match (on_time, first) {
                (true, None) => None,
                (true, Some(_)) => Some(format!("running {when}{earlier}")),
                (false, _) => Some(format!("caught up missed {when}{earlier}")),
            }
        };
        if let Some(message) = message {
            self.event(i, message);
        }
    }

    fn event(&mut self, job: usize, message: String) {
        self.outputs.push(Output::Event { job, message });
    }
}
