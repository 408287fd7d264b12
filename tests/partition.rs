//! The partition campaign of issue 13 (the proof): seed 002's shared-disk
//! stack in the netns lab, a fault injected with seeded timing, healed,
//! measured (see tests/common/partition.rs).
//!
//! `protected_*` (in the default suite, one at a time): one run of each
//! scenario with the recommended
//! configuration (witness, ping tiebreaker, peer outdating, lab fencing);
//! they assert the invariants: never two Primaries, never the VIP on both
//! nodes, every acknowledged record present after the heal, no group
//! stop-failed. `campaign`: many runs, one result line each, driven by the
//! environment (scripts/campaign runs it and prints the table):
//!
//!   HBD_CAMPAIGN_RUNS=3 HBD_CAMPAIGN_PROTECT=both|on|off|corosync|all
//!   HBD_CAMPAIGN_SCENARIO=all|NAME[,NAME...] HBD_CAMPAIGN_SEED=N
//!   cargo test --test partition campaign -- --ignored --nocapture
//!
//! `corosync_*` (issue 18): the same invariants with the protected
//! configuration's disk protections on Corosync's membership (two knet
//! links, corosync-qnetd in n3 as the third vote); three in the default
//! suite, the others `--ignored` (CI time; partition_n1/n2, witness_loss:
//! known failures, docs/BENCHMARKS.md "On Corosync") and in the campaign
//! (HBD_CAMPAIGN_PROTECT=corosync).
//!
//! Needs root, /dev/fuse, loop devices, python3, curl, nftables and
//! corosync, corosync-qdevice, corosync-qnetd (scripts/setup). No timing is
//! asserted.

mod common;

use common::partition::{run, Outcome, Scenario, Setup};

fn prerequisites() {
    common::require_root();
    for p in ["/usr/bin/python3", "/usr/bin/curl", "/usr/bin/nsenter"] {
        assert!(
            std::path::Path::new(p).exists(),
            "{p} is missing: run scripts/setup"
        );
    }
}

/// A seed of its own for every test and every run, printed with the result
/// so that a failing run can be repeated (HBD_CAMPAIGN_SEED).
fn seed() -> u64 {
    std::env::var("HBD_CAMPAIGN_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(1, |d| d.as_nanos() as u64)
        })
}

/// One lab at a time: each run measures outages and takes every core
/// there is for its two nodes, witness, devices and client.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn protected(scenario: Scenario) {
    invariants_hold(scenario, Setup::Protected);
}

/// One run of `scenario` with `setup`; the protected invariants asserted.
fn invariants_hold(scenario: Scenario, setup: Setup) {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    prerequisites();
    if setup == Setup::Corosync {
        for p in [
            "/usr/sbin/corosync",
            "/usr/sbin/corosync-qdevice",
            "/usr/bin/corosync-qnetd",
        ] {
            assert!(
                std::path::Path::new(p).exists(),
                "{p} is missing: run scripts/setup"
            );
        }
    }
    let o: Outcome = run(scenario, setup, seed());
    eprintln!("{}", o.report());
    let v = o.violations();
    assert!(
        v.is_empty(),
        "{} ({}): invariants violated: {v:#?}\n{}",
        scenario.name(),
        setup.name(),
        o.report()
    );
}

#[test]
fn protected_crossover() {
    protected(Scenario::Crossover);
}

#[test]
fn protected_client_cut() {
    protected(Scenario::ClientCut);
}

#[test]
fn protected_partition_n1() {
    protected(Scenario::PartitionN1);
}

#[test]
fn protected_partition_n2() {
    protected(Scenario::PartitionN2);
}

#[test]
fn protected_flapping() {
    protected(Scenario::Flapping);
}

#[test]
fn protected_heartbeat_only() {
    protected(Scenario::HeartbeatOnly);
}

#[test]
fn protected_crash_after_repl_cut() {
    protected(Scenario::CrashAfterReplCut);
}

/// Seed 2201 once ended in a split brain here; fixed by the outdate
/// refusal of a copy with writes made without its peer.
#[test]
fn protected_witness_loss() {
    protected(Scenario::WitnessLoss);
}

// On Corosync (issue 18): the protected configuration's disk protections
// (fencing resource-only, the built-in outdater over CPG, the ping
// tiebreaker, lab fencing) with Corosync's membership and votequorum, the
// third vote from corosync-qnetd in n3. Three scenarios run in the default
// suite (crossover, client_cut, crash_after_repl_cut, ~40 s each); the
// others in the campaign and with `--ignored` (CI time, or a known failure).

#[test]
fn corosync_crossover() {
    invariants_hold(Scenario::Crossover, Setup::Corosync);
}

#[test]
fn corosync_client_cut() {
    invariants_hold(Scenario::ClientCut, Setup::Corosync);
}

/// Known failure (issue 18, docs/BENCHMARKS.md "On Corosync"). The mutual
/// fencing the campaign found is fixed (quorum only from votequorum's
/// quorum notification, a sync after a loss holds starts and fences): only
/// n2 fences n1 now, and never two Primaries. What is left: with fencing,
/// the isolated holder n1 keeps its group until the ping tiebreaker stops
/// it (~5 s: Corosync tells it nothing before its token, consensus and the
/// quorum device's sync), and ext4 writes its journal meanwhile: a split
/// brain at the heal (no acknowledged write lost; one command resolves it).
#[test]
#[ignore = "known failure on Corosync: the isolated holder's disk diverges before it stops (issue 18)"]
fn corosync_partition_n1() {
    invariants_hold(Scenario::PartitionN1, Setup::Corosync);
}

/// The isolated node is n2: the holder n1 keeps the quorum device's vote
/// and its group, fences n2.
#[test]
fn corosync_partition_n2() {
    invariants_hold(Scenario::PartitionN2, Setup::Corosync);
}

#[test]
#[ignore = "CI time: scripts/campaign --protect corosync runs it"]
fn corosync_flapping() {
    invariants_hold(Scenario::Flapping, Setup::Corosync);
}

#[test]
#[ignore = "CI time: scripts/campaign --protect corosync runs it"]
fn corosync_heartbeat_only() {
    invariants_hold(Scenario::HeartbeatOnly, Setup::Corosync);
}

#[test]
fn corosync_crash_after_repl_cut() {
    invariants_hold(Scenario::CrashAfterReplCut, Setup::Corosync);
}

/// qnetd killed, then n1 cut: both lose quorum and stop; at the heal
/// neither fences the other (the campaign's finding: both did, when the
/// merge's quorum came before the peer's rejoin).
#[test]
fn corosync_witness_loss() {
    invariants_hold(Scenario::WitnessLoss, Setup::Corosync);
}

/// The campaign: HBD_CAMPAIGN_RUNS runs (default 1) of each scenario of
/// HBD_CAMPAIGN_SCENARIO (default all), protected, unprotected or both
/// (HBD_CAMPAIGN_PROTECT, default both); one `campaign-result` line per
/// run. A run whose setup fails prints `campaign-error` and the next goes
/// on. Asserts nothing: scripts/campaign reads the lines.
#[test]
#[ignore = "the campaign: scripts/campaign"]
fn campaign() {
    prerequisites();
    let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    let runs: u64 = env("HBD_CAMPAIGN_RUNS")
        .and_then(|s| s.parse().ok())
        .unwrap_or(1);
    let setups: Vec<Setup> = match env("HBD_CAMPAIGN_PROTECT").as_deref() {
        Some("on") => vec![Setup::Protected],
        Some("off") => vec![Setup::Unprotected],
        Some("corosync") => vec![Setup::Corosync],
        None | Some("both") => vec![Setup::Unprotected, Setup::Protected],
        Some("all") => Setup::ALL.to_vec(),
        Some(other) => panic!("HBD_CAMPAIGN_PROTECT={other}: on, off, corosync, both or all"),
    };
    let scenarios: Vec<Scenario> = match env("HBD_CAMPAIGN_SCENARIO").as_deref() {
        None | Some("all") => Scenario::ALL.to_vec(),
        Some(list) => list
            .split(',')
            .map(|s| {
                Scenario::parse(s.trim()).unwrap_or_else(|| {
                    panic!(
                        "HBD_CAMPAIGN_SCENARIO: unknown scenario {s}; one of {:?}",
                        Scenario::ALL.map(|s| s.name())
                    )
                })
            })
            .collect(),
    };
    let base = seed();
    eprintln!("campaign: base seed {base}");
    for &setup in &setups {
        for &scenario in &scenarios {
            for k in 0..runs {
                let seed = base.wrapping_add(k);
                let result = std::panic::catch_unwind(|| run(scenario, setup, seed));
                match result {
                    Ok(o) => {
                        println!("{}", o.line());
                        let v = o.violations();
                        if !v.is_empty() {
                            eprintln!("campaign-violations {v:?}\n{}", o.report());
                        } else if setup.protected() {
                            // What the protections did, for the record.
                            eprintln!("{}", o.report());
                        }
                    }
                    Err(e) => {
                        let msg = e
                            .downcast_ref::<String>()
                            .cloned()
                            .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
                            .unwrap_or_default();
                        println!(
                            "campaign-error scenario={} protect={} seed={seed} error={}",
                            scenario.name(),
                            setup.name(),
                            msg.lines().next().unwrap_or("panic")
                        );
                        eprintln!("{msg}");
                    }
                }
            }
        }
    }
}
