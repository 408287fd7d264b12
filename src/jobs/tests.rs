//! Scenario tests of the job scheduler on a simulated clock (a plain `i64`,
//! UTC wall clock), and a randomized two-node cluster that exchanges marks.

use super::cron::{days_from_civil, utc_civil, Schedule};
use super::*;
use std::collections::{BTreeMap, VecDeque};

/// 2026-11-22 (a Sunday) `h:m` UTC.
fn at(h: i64, m: i64) -> i64 {
    days_from_civil(2026, 11, 22) * 86_400 + h * 3600 + m * 60
}

fn when(t: i64) -> String {
    utc_civil(t).to_string()
}

fn def(name: &str, group: usize, schedule: &str, missed: Missed) -> JobDef {
    JobDef {
        name: name.to_string(),
        group,
        schedule: Schedule::parse(schedule).unwrap(),
        missed,
    }
}

fn one(schedule: &str, missed: Missed) -> Jobs {
    Jobs::new(vec![def("backup", 0, schedule, missed)], utc_civil)
}

fn runs(out: &[Output]) -> Vec<(usize, i64)> {
    out.iter()
        .filter_map(|o| match o {
            Output::Run { job, scheduled } => Some((*job, *scheduled)),
            Output::Event { .. } => None,
        })
        .collect()
}

fn events(out: &[Output]) -> Vec<String> {
    out.iter()
        .filter_map(|o| match o {
            Output::Event { message, .. } => Some(message.clone()),
            Output::Run { .. } => None,
        })
        .collect()
}

#[test]
fn runs_only_while_the_group_is_active() {
    let mut j = Jobs::new(
        vec![
            def("backup", 0, "*/5 * * * *", Missed::CatchUp),
            def("report", 1, "*/5 * * * *", Missed::CatchUp),
        ],
        utc_civil,
    );
    j.tick(at(10, 5));
    assert!(j.take_outputs().is_empty());
    assert_eq!(j.next_deadline(), None);

    // No mark yet: nothing is caught up at the start.
    j.set_group_active(0, true, at(10, 6));
    assert!(j.take_outputs().is_empty());
    assert_eq!(j.next_deadline(), Some(at(10, 10)));
    j.tick(at(10, 9) + 59);
    assert!(j.take_outputs().is_empty());
    j.tick(at(10, 10));
    assert_eq!(runs(&j.take_outputs()), vec![(0, at(10, 10))]);
    assert_eq!(j.marks(), vec![("backup".to_string(), at(10, 10))]);

    j.set_group_active(0, false, at(10, 12));
    assert_eq!(j.next_deadline(), None);
    j.on_done(0, true, "ok".into(), at(10, 13));
    j.tick(at(10, 15));
    j.tick(at(10, 20));
    assert!(j.take_outputs().is_empty());
    assert_eq!(j.marks(), vec![("backup".to_string(), at(10, 10))]);
}

#[test]
fn a_time_is_run_once() {
    let mut j = one("* * * * *", Missed::CatchUp);
    j.set_group_active(0, true, at(10, 0) - 30);
    let mut all = Vec::new();
    for now in (at(10, 0) - 30..at(10, 10)).step_by(7) {
        j.tick(now);
        j.tick(now);
        for (job, t) in runs(&j.take_outputs()) {
            j.on_done(job, true, String::new(), now);
            all.push(t);
        }
    }
    let expected: Vec<i64> = (0..10).map(|m| at(10, m)).collect();
    assert_eq!(all, expected);
}

#[test]
fn a_run_still_going_is_not_started_again() {
    let mut j = one("*/5 * * * *", Missed::CatchUp);
    j.set_group_active(0, true, at(10, 4));
    j.tick(at(10, 5));
    assert_eq!(runs(&j.take_outputs()), vec![(0, at(10, 5))]);
    j.tick(at(10, 10));
    let out = j.take_outputs();
    assert!(runs(&out).is_empty());
    assert_eq!(
        events(&out),
        vec![format!(
            "still running (since {}), skipped {}",
            when(at(10, 5)),
            when(at(10, 10))
        )]
    );
    // Recorded as done: a peer taking over does not run 10:10 either.
    assert_eq!(j.marks(), vec![("backup".to_string(), at(10, 10))]);
    j.on_done(0, false, "exit 1".into(), at(10, 11));
    j.tick(at(10, 15));
    assert_eq!(runs(&j.take_outputs()), vec![(0, at(10, 15))]);
    let s = &j.status(at(10, 15))[0];
    assert!(s.running);
    assert_eq!(
        (s.last_ok, s.last_finished),
        (Some(false), Some(at(10, 11)))
    );
}

/// Node A runs 10:00 and dies at 10:03 (before 10:05); node B takes over at
/// 10:07 with A's marks. Returns B's runs and events up to 10:10.
fn failover(missed: Missed) -> (Vec<(usize, i64)>, Vec<String>, Jobs) {
    let mut a = one("*/5 * * * *", missed);
    let mut b = one("*/5 * * * *", missed);
    a.set_group_active(0, true, at(9, 58));
    a.tick(at(10, 0));
    assert_eq!(runs(&a.take_outputs()), vec![(0, at(10, 0))]);
    for (name, last) in a.marks() {
        b.on_peer_mark(&name, last);
    }
    // A is dead at 10:03; its run of 10:00 may or may not have finished.
    b.set_group_active(0, true, at(10, 7));
    let mut out = b.take_outputs();
    for (job, _) in runs(&out) {
        b.on_done(job, true, "ok".into(), at(10, 8));
    }
    b.tick(at(10, 8));
    b.tick(at(10, 10));
    out.extend(b.take_outputs());
    (runs(&out), events(&out), b)
}

#[test]
fn failover_catches_up_the_missed_time_once() {
    let (runs, events, b) = failover(Missed::CatchUp);
    // 10:00 is not run again; 10:05 once, late; 10:10 on time.
    assert_eq!(runs, vec![(0, at(10, 5)), (0, at(10, 10))]);
    assert_eq!(
        events,
        vec![format!("caught up missed {}", when(at(10, 5)))]
    );
    assert_eq!(b.marks(), vec![("backup".to_string(), at(10, 10))]);
}

#[test]
fn failover_skip_does_not_run_the_missed_time() {
    let (runs, events, b) = failover(Missed::Skip);
    assert_eq!(runs, vec![(0, at(10, 10))]);
    assert_eq!(events, vec![format!("missed {}, skipped", when(at(10, 5)))]);
    assert_eq!(b.marks(), vec![("backup".to_string(), at(10, 10))]);
}

#[test]
fn failover_does_not_rerun_a_time_started_before_the_crash() {
    // A starts 10:05 and crashes during the run; B takes over at 10:06.
    let mut a = one("*/5 * * * *", Missed::CatchUp);
    let mut b = one("*/5 * * * *", Missed::CatchUp);
    a.set_group_active(0, true, at(10, 1));
    a.tick(at(10, 5));
    assert_eq!(runs(&a.take_outputs()), vec![(0, at(10, 5))]);
    for (name, last) in a.marks() {
        b.on_peer_mark(&name, last);
    }
    b.set_group_active(0, true, at(10, 6));
    b.tick(at(10, 9));
    assert!(b.take_outputs().is_empty());
    b.tick(at(10, 10));
    assert_eq!(runs(&b.take_outputs()), vec![(0, at(10, 10))]);
}

#[test]
fn reboot_runs_once_per_group_start() {
    let mut j = Jobs::new(
        vec![
            def("warm", 0, "@reboot", Missed::CatchUp),
            def("other", 1, "@reboot", Missed::CatchUp),
        ],
        utc_civil,
    );
    j.set_group_active(0, true, at(10, 0) + 17);
    assert_eq!(runs(&j.take_outputs()), vec![(0, at(10, 0) + 17)]);
    j.set_group_active(0, true, at(10, 1));
    j.tick(at(11, 0));
    assert!(j.take_outputs().is_empty());
    assert_eq!(j.next_deadline(), None);
    // Restarted while the first run goes on: not a second copy.
    j.set_group_active(0, false, at(11, 0));
    j.set_group_active(0, true, at(11, 1));
    let out = j.take_outputs();
    assert!(runs(&out).is_empty());
    assert_eq!(
        events(&out),
        vec!["still running, @reboot run skipped".to_string()]
    );
    j.on_done(0, true, "ok".into(), at(11, 2));
    j.set_group_active(0, false, at(11, 3));
    j.set_group_active(0, true, at(11, 4));
    assert_eq!(runs(&j.take_outputs()), vec![(0, at(11, 4))]);
    // @reboot has no marks: every node runs it when it starts the group.
    assert!(j.marks().is_empty());
    j.on_peer_mark("warm", at(12, 0));
    assert!(j.marks().is_empty());
    let s = &j.status(at(11, 5))[0];
    assert_eq!(
        (s.last_scheduled, s.next, s.active),
        (Some(at(11, 4)), None, true)
    );
}

#[test]
fn clock_going_backwards_never_reruns_a_time() {
    let mut j = one("*/5 * * * *", Missed::CatchUp);
    j.set_group_active(0, true, at(10, 4));
    j.tick(at(10, 5));
    assert_eq!(runs(&j.take_outputs()), vec![(0, at(10, 5))]);
    j.on_done(0, true, "ok".into(), at(10, 5));
    for now in [at(10, 2), at(9, 0), at(10, 5), at(10, 9)] {
        j.tick(now);
        assert!(j.take_outputs().is_empty(), "{}", when(now));
    }
    // A restart of the group while the clock is behind does not either.
    j.set_group_active(0, false, at(10, 1));
    j.set_group_active(0, true, at(10, 1));
    j.tick(at(10, 5));
    assert!(j.take_outputs().is_empty());
    assert_eq!(j.next_deadline(), Some(at(10, 10)));
    j.tick(at(10, 10));
    assert_eq!(runs(&j.take_outputs()), vec![(0, at(10, 10))]);
}

#[test]
fn clock_jumping_forward_runs_only_the_latest() {
    for (missed, late, expect_runs, expect_event) in [
        (
            Missed::CatchUp,
            150,
            vec![(0, at(11, 0))],
            format!(
                "caught up missed {} (times from {} not run)",
                when(at(11, 0)),
                when(at(10, 5))
            ),
        ),
        (
            Missed::Skip,
            150,
            vec![],
            format!(
                "missed {}, skipped (times from {} not run)",
                when(at(11, 0)),
                when(at(10, 5))
            ),
        ),
        // Landing just after a time: that one is on time, for either policy.
        (
            Missed::Skip,
            20,
            vec![(0, at(11, 0))],
            format!(
                "running {} (times from {} not run)",
                when(at(11, 0)),
                when(at(10, 5))
            ),
        ),
    ] {
        let mut j = one("*/5 * * * *", missed);
        j.set_group_active(0, true, at(10, 0));
        assert_eq!(runs(&j.take_outputs()), vec![(0, at(10, 0))]);
        j.on_done(0, true, "ok".into(), at(10, 1));
        j.tick(at(11, 0) + late);
        let out = j.take_outputs();
        assert_eq!(runs(&out), expect_runs, "{missed:?} {late}");
        assert_eq!(events(&out), vec![expect_event]);
        assert_eq!(j.marks(), vec![("backup".to_string(), at(11, 0))]);
        assert_eq!(j.next_deadline(), Some(at(11, 5)));
    }
}

#[test]
fn a_tick_a_little_late_is_on_time_for_skip() {
    let mut j = one("*/5 * * * *", Missed::Skip);
    j.set_group_active(0, true, at(10, 1));
    j.tick(at(10, 5) + ON_TIME - 1);
    let out = j.take_outputs();
    assert_eq!((runs(&out), events(&out)), (vec![(0, at(10, 5))], vec![]));
    j.on_done(0, true, "ok".into(), at(10, 6));
    j.tick(at(10, 10) + ON_TIME);
    let out = j.take_outputs();
    assert!(runs(&out).is_empty());
    assert_eq!(
        events(&out),
        vec![format!("missed {}, skipped", when(at(10, 10)))]
    );
}

#[test]
fn start_after_a_long_stop_catches_up_once() {
    let mut j = one("0 * * * *", Missed::CatchUp);
    j.on_peer_mark("backup", at(10, 0) - 3 * 86_400);
    j.on_peer_mark("unknown", at(10, 0));
    j.set_group_active(0, true, at(10, 30));
    let out = j.take_outputs();
    assert_eq!(runs(&out), vec![(0, at(10, 0))]);
    assert_eq!(
        events(&out),
        vec![format!(
            "caught up missed {} (times from {} not run)",
            when(at(10, 0)),
            when(at(10, 0) - 3 * 86_400 + 3600)
        )]
    );
    // A time exactly at the start is on time, not missed.
    let mut j = one("0 * * * *", Missed::Skip);
    j.on_peer_mark("backup", at(9, 0));
    j.set_group_active(0, true, at(10, 0));
    let out = j.take_outputs();
    assert_eq!((runs(&out), events(&out)), (vec![(0, at(10, 0))], vec![]));
}

#[test]
fn a_peer_mark_moves_an_active_job_on() {
    // Both nodes run the group (a partition that healed): the first to run a
    // time tells the other, which then does not.
    let mut j = one("*/5 * * * *", Missed::CatchUp);
    j.set_group_active(0, true, at(10, 1));
    assert_eq!(j.next_deadline(), Some(at(10, 5)));
    j.on_peer_mark("backup", at(10, 5));
    assert_eq!(j.next_deadline(), Some(at(10, 10)));
    j.tick(at(10, 5));
    assert!(j.take_outputs().is_empty());
    // An older mark changes nothing.
    j.on_peer_mark("backup", at(9, 0));
    assert_eq!(j.marks(), vec![("backup".to_string(), at(10, 5))]);
}

#[test]
fn status_describes_each_job() {
    let mut j = Jobs::new(
        vec![
            def("backup", 0, "*/5  * * * *", Missed::CatchUp),
            def("report", 1, "0 12 * * *", Missed::Skip),
        ],
        utc_civil,
    );
    j.set_group_active(0, true, at(10, 1));
    j.tick(at(10, 5));
    j.on_done(0, true, "3 files".into(), at(10, 6));
    let s = j.status(at(10, 7));
    assert_eq!(
        s[0],
        JobStatus {
            name: "backup".into(),
            group: 0,
            schedule: "*/5  * * * *".into(),
            active: true,
            running: false,
            last_scheduled: Some(at(10, 5)),
            last_finished: Some(at(10, 6)),
            last_ok: Some(true),
            last_summary: Some("3 files".into()),
            next: Some(at(10, 10)),
        }
    );
    assert_eq!(
        (s[1].active, s[1].running, s[1].last_scheduled, s[1].next),
        (false, false, None, Some(at(12, 0)))
    );
    let json = serde_json::to_string(&s[1]).unwrap();
    assert_eq!(serde_json::from_str::<JobStatus>(&json).unwrap(), s[1]);
    assert_eq!(
        serde_json::to_string(&Missed::CatchUp).unwrap(),
        "\"catch-up\""
    );
}

/// The shared splitmix64, drawing what the schedules need.
struct Rng(crate::rng::SplitMix64);

impl Rng {
    fn below(&mut self, n: u64) -> i64 {
        self.0.below(n) as i64
    }
    fn chance(&mut self, per_mille: u64) -> bool {
        self.0.per_mille(per_mille)
    }
}

struct Node {
    jobs: Jobs,
    /// Runs started here and not finished: (job, finishes at).
    running: Vec<(usize, i64)>,
    /// Since when the group is active here.
    active_since: Option<i64>,
    /// Scheduled times run or explicitly skipped here, per job.
    handled: BTreeMap<usize, Vec<i64>>,
}

/// One random schedule of group moves between two nodes. `safe`: a node
/// starts the group only after the old holder's marks have reached it.
/// `backwards`: the clock sometimes steps back (then only safety is checked).
fn simulate(seed: u64, safe: bool, backwards: bool) {
    let mut rng = Rng(crate::rng::SplitMix64::new(seed));
    let pool = [
        "*/5 * * * *",
        "*/7 * * * *",
        "0,20,40 * * * *",
        "13 * * * *",
        "*/10 8-18 * * *",
    ];
    let mut defs = Vec::new();
    for k in 0..3 {
        let s = pool[rng.below(pool.len() as u64) as usize];
        let missed = if rng.chance(500) {
            Missed::CatchUp
        } else {
            Missed::Skip
        };
        defs.push(def(&format!("job{k}"), 0, s, missed));
    }
    defs.push(def("warm", 0, "@reboot", Missed::CatchUp));
    let reboot = defs.len() - 1;
    let mut nodes: Vec<Node> = (0..2)
        .map(|_| Node {
            jobs: Jobs::new(defs.clone(), utc_civil),
            running: Vec::new(),
            active_since: None,
            handled: BTreeMap::new(),
        })
        .collect();
    let max_delay = rng.below(300);
    let max_run = 1 + rng.below(900);
    // In flight: (delivered at, sent at, from, to, marks).
    type Msg = (i64, i64, usize, usize, Vec<(String, i64)>);
    let mut wire: VecDeque<Msg> = VecDeque::new();
    // Who starts the group next, not before when, and when the holder stopped.
    let mut pending: Option<(usize, i64, i64)> = Some((rng.below(2) as usize, 0, i64::MIN));
    // Active intervals, for the liveness check: (node, from, to).
    let mut intervals: Vec<(usize, i64, i64)> = Vec::new();
    // Every scheduled time run anywhere: (job, t) -> runs.
    let mut cluster_runs: BTreeMap<(usize, i64), u32> = BTreeMap::new();
    let mut now = at(7, 0) + rng.below(3600);
    let start = now;

    for step in 0..1500 {
        // Steps shorter than the shortest interval between two scheduled times
        // (4 min for */7): a tick passes at most one time.
        now += 1 + rng.below(120);
        if backwards && rng.chance(30) {
            now -= rng.below(900);
        }
        let ctx = format!("seed {seed} safe {safe} step {step} at {}", when(now));

        // Deliver marks.
        let mut keep = VecDeque::new();
        for (due, sent, from, to, marks) in wire.drain(..) {
            if due <= now {
                for (name, last) in marks {
                    nodes[to].jobs.on_peer_mark(&name, last);
                }
            } else {
                keep.push_back((due, sent, from, to, marks));
            }
        }
        wire = keep;

        // Finish runs.
        for n in nodes.iter_mut() {
            let (done, going): (Vec<_>, Vec<_>) = n.running.iter().partition(|r| r.1 <= now);
            n.running = going;
            for (job, _) in done {
                n.jobs.on_done(job, true, String::new(), now);
            }
        }

        // Start the group if it is time.
        if let Some((to, not_before, stopped_at)) = pending {
            let marks_in = !wire
                .iter()
                .any(|m| m.2 != to && m.3 == to && m.1 <= stopped_at);
            if now >= not_before && (!safe || marks_in) {
                pending = None;
                nodes[to].jobs.set_group_active(0, true, now);
                nodes[to].active_since = Some(now);
                let out = nodes[to].jobs.take_outputs();
                let rebooted = runs(&out).iter().filter(|r| r.0 == reboot).count()
                    + events(&out)
                        .iter()
                        .filter(|e| e.contains("@reboot"))
                        .count();
                assert_eq!(rebooted, 1, "{ctx}: @reboot once per start");
                collect(
                    &mut nodes[to],
                    to,
                    out,
                    now,
                    max_run,
                    &mut rng,
                    &mut cluster_runs,
                    reboot,
                );
            }
        }

        for (i, n) in nodes.iter_mut().enumerate() {
            n.jobs.tick(now);
            let out = n.jobs.take_outputs();
            if n.active_since.is_none() {
                assert!(runs(&out).is_empty(), "{ctx}: node {i} runs while inactive");
            }
            collect(n, i, out, now, max_run, &mut rng, &mut cluster_runs, reboot);
            if let Some(d) = n.jobs.next_deadline() {
                assert!(n.active_since.is_some(), "{ctx}: deadline while inactive");
                assert!(backwards || d > now, "{ctx}: deadline {} passed", when(d));
            }
        }

        // At most once per scheduled time: in the cluster if marks arrive
        // before the switch, on each node always.
        for n in &nodes {
            for (job, ts) in &n.handled {
                let mut sorted = ts.clone();
                sorted.dedup();
                assert_eq!(
                    sorted.len(),
                    ts.len(),
                    "{ctx}: job {job} handled twice: {ts:?}"
                );
            }
        }
        if safe {
            if let Some(((job, t), k)) = cluster_runs.iter().find(|(_, &k)| k > 1) {
                panic!("{ctx}: job {job} ran {k} times for {}", when(*t));
            }
        }

        // Gossip marks.
        for (from, n) in nodes.iter().enumerate() {
            let delay = rng.below(max_delay as u64 + 1);
            wire.push_back((now + delay, now, from, 1 - from, n.jobs.marks()));
        }

        // Move the group sometimes.
        if pending.is_none() && rng.chance(15) {
            let holder = (0..2).find(|&i| nodes[i].active_since.is_some()).unwrap();
            nodes[holder].jobs.set_group_active(0, false, now);
            intervals.push((holder, nodes[holder].active_since.take().unwrap(), now));
            let to = if rng.chance(800) { 1 - holder } else { holder };
            let gap = if rng.chance(300) { 0 } else { rng.below(1800) };
            pending = Some((to, now + gap, now));
        }
    }
    for (i, n) in nodes.iter().enumerate() {
        if let Some(since) = n.active_since {
            intervals.push((i, since, now));
        }
    }
    if backwards {
        return;
    }

    // Liveness: every scheduled time while a node had the group was run there
    // or explicitly skipped there.
    for (job, d) in defs.iter().enumerate() {
        if d.schedule.is_reboot() {
            continue;
        }
        for &(node, from, to) in &intervals {
            let mut t = d.schedule.next_after(from - 1, &utc_civil).unwrap();
            while t <= to {
                let handled = nodes[node]
                    .handled
                    .get(&job)
                    .is_some_and(|v| v.contains(&t));
                assert!(
                    handled,
                    "seed {seed} safe {safe}: {} at {} not run or skipped by node {node} \
                     (active {} - {})",
                    d.name,
                    when(t),
                    when(from),
                    when(to)
                );
                t = d.schedule.next_after(t, &utc_civil).unwrap();
            }
        }
    }
    assert!(now > start);
}

/// Takes a node's outputs: starts runs, records handled times.
#[allow(clippy::too_many_arguments)]
fn collect(
    n: &mut Node,
    node: usize,
    out: Vec<Output>,
    now: i64,
    max_run: i64,
    rng: &mut Rng,
    cluster_runs: &mut BTreeMap<(usize, i64), u32>,
    reboot: usize,
) {
    for o in out {
        match o {
            Output::Run { job, scheduled } => {
                assert!(
                    !n.running.iter().any(|r| r.0 == job),
                    "node {node}: job {job} started while running"
                );
                n.running.push((job, now + rng.below(max_run as u64)));
                if job != reboot {
                    *cluster_runs.entry((job, scheduled)).or_default() += 1;
                    n.handled.entry(job).or_default().push(scheduled);
                }
            }
            Output::Event { job, message } => {
                // "... skipped <time>" or "missed <time>, skipped": the time
                // is explicitly skipped (not the "times from" note).
                let head = message.split(" (times from").next().unwrap_or("");
                let t = if message.starts_with("still running (since") {
                    head.rsplit_once("skipped ").map(|t| t.1)
                } else if let Some(rest) = head.strip_prefix("missed ") {
                    rest.strip_suffix(", skipped")
                } else {
                    None
                };
                if let Some(t) = t {
                    n.handled.entry(job).or_default().push(parse_when(t));
                }
            }
        }
    }
}

/// The inverse of `when` for the simulation's dates.
fn parse_when(s: &str) -> i64 {
    let num = |r: std::ops::Range<usize>| s[r].parse::<i64>().unwrap();
    days_from_civil(num(0..4), num(5..7) as u8, num(8..10) as u8) * 86_400
        + num(11..13) * 3600
        + num(14..16) * 60
}

fn seeds() -> Vec<u64> {
    match std::env::var("HBD_SIM_SEED") {
        Ok(s) => vec![s.parse().expect("HBD_SIM_SEED")],
        Err(_) => (0..150).collect(),
    }
}

#[test]
fn random_failovers_run_each_time_at_most_once() {
    for seed in seeds() {
        simulate(seed, true, false);
    }
}

#[test]
fn random_failovers_with_late_marks_still_run_every_time() {
    for seed in seeds() {
        simulate(seed, false, false);
    }
}

#[test]
fn random_failovers_with_clock_going_backwards() {
    for seed in seeds() {
        simulate(seed, true, true);
    }
}
