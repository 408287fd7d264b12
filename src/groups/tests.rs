//! Scenarios of group ownership on the simulated cluster, without faults.

use super::sim::{Cluster, Faults};
use super::*;

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

fn settle(c: &mut Cluster) {
    c.run_for(secs(5));
}

#[test]
fn two_nodes_booting_together_start_each_group_once() {
    for seed in 0..20 {
        let mut c = Cluster::new(2, &[("a", 0), ("b", 1)], false, seed);
        settle(&mut c);
        assert_eq!(c.holders(0), vec!["n1"]);
        assert_eq!(c.holders(1), vec!["n2"]);
        assert_eq!(c.starts.len(), 2, "{:?}", c.starts);
        c.check_converged();
    }
}

#[test]
fn nothing_starts_before_initdead_when_the_peer_is_silent() {
    let mut c = Cluster::new(2, &[("a", 0)], false, 1);
    c.crash(1, true);
    c.drop_in_flight();
    c.run_for(c.initdead - Duration::from_millis(50));
    assert!(c.starts.is_empty());
    settle(&mut c);
    assert_eq!(c.holders(0), vec!["n1"]);
}

#[test]
fn takeover_on_death_and_auto_failback() {
    for failback in [true, false] {
        let mut c = Cluster::new(2, &[("a", 0)], failback, 3);
        settle(&mut c);
        assert_eq!(c.holders(0), vec!["n1"]);
        c.crash(0, true);
        settle(&mut c);
        assert_eq!(c.holders(0), vec!["n2"]);
        c.boot(0);
        settle(&mut c);
        let expect = if failback { "n1" } else { "n2" };
        assert_eq!(c.holders(0), vec![expect], "auto_failback {failback}");
        c.check_converged();
    }
}

#[test]
fn shutdown_hands_over_without_deadtime() {
    let mut c = Cluster::new(2, &[("a", 0)], true, 4);
    settle(&mut c);
    c.shutdown(0);
    // Stop (<= 310 ms) plus delivery: well under deadtime (500 ms) after it.
    c.run_for(Duration::from_millis(400));
    let mut waited = Duration::from_millis(400);
    while c.holders(0).is_empty() {
        c.step();
        waited += super::sim::STEP;
    }
    assert_eq!(c.holders(0), vec!["n2"]);
    assert!(waited < Duration::from_millis(800), "{waited:?}");
}

#[test]
fn standby_and_takeover_move_groups() {
    let mut c = Cluster::new(2, &[("a", 0), ("b", 0)], false, 5);
    settle(&mut c);
    assert_eq!(c.holders(0), vec!["n1"]);
    let moved = c.command(0, Command::Standby(Scope::All)).unwrap();
    assert_eq!(moved, vec![0, 1]);
    settle(&mut c);
    assert_eq!(c.holders(0), vec!["n2"]);
    assert_eq!(c.holders(1), vec!["n2"]);
    let m = c.nodes[0].machine.as_ref().unwrap();
    assert!(
        matches!(m.progress(&Command::Standby(Scope::All), &moved), Progress::Done(v) if v.len() == 2)
    );
    // Taking over from n1 brings them back.
    c.command(0, Command::Takeover(Scope::Local)).unwrap();
    settle(&mut c);
    assert_eq!(c.holders(0), vec!["n1"]);
    assert_eq!(c.holders(1), vec!["n1"]);
    // Standby with the peer dead is refused, with the reason.
    c.crash(1, true);
    settle(&mut c);
    let e = c.command(0, Command::Standby(Scope::All)).unwrap_err();
    assert!(e.contains("no other node is up"), "{e}");
}

#[test]
fn a_start_failure_moves_the_group_and_stays_failed() {
    let mut c = Cluster::new(2, &[("a", 0)], true, 6);
    c.faults = Faults {
        start_fail: 1000,
        ..Faults::none()
    };
    while c.state(0, 0) != Some(GroupState::Failed) {
        c.step();
    }
    // n1 failed; now starts succeed: n2 gets it, and it does not go back to n1
    // even with auto_failback on.
    c.faults = Faults::none();
    settle(&mut c);
    assert_eq!(c.state(0, 0), Some(GroupState::Failed));
    assert_eq!(c.holders(0), vec!["n2"]);
    // Clearing it: auto_failback brings it home.
    c.command(0, Command::Clear("a".into())).unwrap();
    settle(&mut c);
    assert_eq!(c.holders(0), vec!["n1"]);
    c.check_converged();
}

#[test]
fn a_stop_failure_keeps_the_group_from_other_nodes() {
    let mut c = Cluster::new(2, &[("a", 0)], false, 7);
    settle(&mut c);
    c.faults = Faults {
        stop_fail: 1000,
        ..Faults::none()
    };
    c.command(0, Command::Standby(Scope::All)).unwrap();
    settle(&mut c);
    assert_eq!(c.state(0, 0), Some(GroupState::StopFailed));
    assert!(c.holders(0).is_empty());
    assert_eq!(c.state(1, 0), Some(GroupState::Stopped));
    let v = &c.nodes[1].machine.as_ref().unwrap().status()[0];
    assert_eq!(v.owner.as_deref(), Some("n1"));
    assert_eq!(v.state, GroupState::StopFailed);
}

#[test]
fn a_healed_partition_keeps_the_group_on_one_node() {
    let mut c = Cluster::new(2, &[("a", 1)], false, 8);
    settle(&mut c);
    assert_eq!(c.holders(0), vec!["n2"]);
    c.cut[0][1] = true;
    c.cut[1][0] = true;
    settle(&mut c);
    assert_eq!(c.holders(0), vec!["n1", "n2"]);
    c.cut[0][1] = false;
    c.cut[1][0] = false;
    settle(&mut c);
    // The home node keeps it.
    assert_eq!(c.holders(0), vec!["n2"]);
    c.check_converged();
}

#[test]
fn a_daemon_restart_keeps_running_resources() {
    let mut c = Cluster::new(2, &[("a", 0)], false, 9);
    settle(&mut c);
    let starts = c.starts.len();
    c.crash(0, false);
    c.boot(0);
    settle(&mut c);
    assert_eq!(c.holders(0), vec!["n1"]);
    assert_eq!(c.starts.len(), starts, "nothing started again");
}

#[test]
fn an_unhealthy_holder_hands_over_to_a_healthy_peer_only() {
    let mut c = Cluster::new(2, &[("a", 0)], true, 10);
    settle(&mut c);
    assert_eq!(c.holders(0), vec!["n1"]);
    c.set_unhealthy(0, 0, true);
    settle(&mut c);
    assert_eq!(c.holders(0), vec!["n2"]);
    // auto_failback does not bring it back to the unhealthy home node.
    settle(&mut c);
    assert_eq!(c.holders(0), vec!["n2"]);
    // Both unhealthy: it stays where it runs, no ping-pong.
    c.set_unhealthy(1, 0, true);
    settle(&mut c);
    assert_eq!(c.holders(0), vec!["n2"]);
    let v = &c.nodes[1].machine.as_ref().unwrap().status()[0];
    assert_eq!(v.desired.as_deref(), Some("n2"));
    // n1 cleared by the operator: the group goes home.
    c.command(0, Command::Clear("a".into())).unwrap();
    settle(&mut c);
    assert_eq!(c.holders(0), vec!["n1"]);
    let starts = c.starts.len();
    assert_eq!(starts, 3, "{:?}", c.starts);
}

/// The newest standby wins: standby on each node in turn moves the group
/// every time (a bench found the third one stuck when refusals piled up).
#[test]
fn standby_back_and_forth_moves_every_time() {
    for failback in [true, false] {
        let mut c = Cluster::new(2, &[("a", 0)], failback, 12);
        settle(&mut c);
        let mut holder = 0;
        for _ in 0..5 {
            let moved = c.command(holder, Command::Standby(Scope::All)).unwrap();
            settle(&mut c);
            let other = 1 - holder;
            assert_eq!(
                c.holders(0),
                vec![format!("n{}", other + 1)],
                "auto_failback {failback}"
            );
            let m = c.nodes[holder].machine.as_ref().unwrap();
            assert!(matches!(
                m.progress(&Command::Standby(Scope::All), &moved),
                Progress::Done(_)
            ));
            holder = other;
        }
        // A takeover after all that still wins.
        c.command(holder, Command::Standby(Scope::All)).unwrap();
        settle(&mut c);
        c.command(holder, Command::Takeover(Scope::All)).unwrap();
        settle(&mut c);
        assert_eq!(c.holders(0), vec![format!("n{}", holder + 1)]);
    }
}
