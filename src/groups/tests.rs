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

/// Issue 15: after a standby or a clean shutdown the new holder knows the
/// old one released the group (no duplicate-address probe); after a crash
/// it does not; and the groups a late peer runs are the ones to probe for.
#[test]
fn a_released_group_is_known_as_released_and_a_dead_holders_is_not() {
    let mut c = Cluster::new(2, &[("a", 0)], false, 5);
    settle(&mut c);
    assert_eq!(c.holders(0), vec!["n1"]);
    assert_eq!(c.released_starts, 0, "the first start, at boot, probes");
    let n2 = c.nodes[1].machine.as_ref().unwrap();
    assert_eq!(n2.takeover_from("n1"), vec![0]);
    assert!(n2.takeover_from("n2").is_empty());
    c.command(0, Command::Standby(Scope::All)).unwrap();
    settle(&mut c);
    assert_eq!(c.holders(0), vec!["n2"]);
    assert_eq!(c.released_starts, 1, "{:?}", c.trace);
    let n1 = c.nodes[0].machine.as_ref().unwrap();
    assert_eq!(n1.takeover_from("n2"), vec![0]);
    // A clean shutdown hands over without a probe too.
    c.shutdown(1);
    settle(&mut c);
    assert_eq!(c.holders(0), vec!["n1"]);
    assert_eq!(c.released_starts, 2, "{:?}", c.trace);
    // A crash: the survivor probes.
    c.boot(1);
    settle(&mut c);
    c.crash(0, true);
    settle(&mut c);
    assert_eq!(c.holders(0), vec!["n2"]);
    assert_eq!(c.released_starts, 2, "{:?}", c.trace);
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

// Issue 13: never two holders. Each test below is a finding of the
// partition campaign, on the simulated cluster (see `sim`).

use super::sim::Protect;

fn witness() -> Protect {
    Protect {
        witness: true,
        ..Protect::default()
    }
}

/// Campaign finding: after a healed full partition the keeper rule gave the
/// group back to the home node, whose data was stale, and nobody announced
/// the address again. The keeper must be the side that served clients, and
/// it re-announces (at once and again a second later).
#[test]
fn after_a_healed_partition_the_node_that_served_clients_keeps_the_group() {
    let mut c = Cluster::new(2, &[("a", 0)], false, 20);
    settle(&mut c);
    assert_eq!(c.holders(0), vec!["n1"]);
    c.isolate(0, true);
    settle(&mut c);
    assert_eq!(c.holders(0), vec!["n1", "n2"]);
    // Clients were on n2's side: its disks took the writes.
    c.set_served(1, 0, 4096);
    let healed = c.now;
    c.isolate(0, false);
    settle(&mut c);
    assert_eq!(c.holders(0), vec!["n2"], "the data's side keeps it");
    let again: Vec<Duration> = c
        .reannounces
        .iter()
        .filter(|(n, g, t)| n == "n2" && g == "a" && *t >= healed)
        .map(|&(_, _, t)| t)
        .collect();
    assert!(again.len() >= 2, "{:?}", c.reannounces);
    assert!(again[again.len() - 1] >= again[0] + Duration::from_secs(1));
    assert!(c.reannounces.iter().all(|(n, _, _)| n == "n2"));
    c.check_converged();
}

/// CI finding: after a heal the old holder may be seen only once it has
/// stopped the group (its stop is quick, its reports are a keepalive
/// apart): the keeper must announce anyway, because clients on the other
/// side still hold that node's MAC for the address.
#[test]
fn the_keeper_announces_after_a_heal_whatever_it_saw_of_the_other_holder() {
    for seed in 0..40 {
        let mut c = Cluster::new(2, &[("a", 0)], false, 300 + seed);
        settle(&mut c);
        c.isolate(0, true);
        settle(&mut c);
        assert_eq!(c.holders(0), vec!["n1", "n2"]);
        let healed = c.now;
        c.isolate(0, false);
        // n2 stops at once; n1 hears nothing of n2 until it has stopped.
        c.cut[1][0] = true;
        c.run_for(Duration::from_millis(1500));
        assert_eq!(c.holders(0), vec!["n1"], "seed {seed}");
        c.cut[1][0] = false;
        settle(&mut c);
        let n1: Vec<Duration> = c
            .reannounces
            .iter()
            .filter(|(n, g, t)| n == "n1" && g == "a" && *t >= healed)
            .map(|&(_, _, t)| t)
            .collect();
        assert!(n1.len() >= 2, "seed {seed}: {:?}", c.reannounces);
        assert!(n1[n1.len() - 1] >= n1[0] + Duration::from_secs(1));
        c.check_converged();
    }
}

#[test]
fn equal_served_data_keeps_the_old_rule() {
    let mut c = Cluster::new(2, &[("a", 1)], false, 21);
    settle(&mut c);
    c.isolate(0, true);
    settle(&mut c);
    c.set_served(0, 0, 10);
    c.set_served(1, 0, 10);
    c.isolate(0, false);
    settle(&mut c);
    assert_eq!(c.holders(0), vec!["n2"], "the home node");
}

/// A node that took a group over from a node declared dead (which may
/// still hold the address) announces it again a second later.
#[test]
fn a_takeover_from_a_dead_holder_is_announced_again() {
    let mut c = Cluster::new(2, &[("a", 0)], false, 22);
    settle(&mut c);
    c.crash(0, true);
    settle(&mut c);
    assert_eq!(c.holders(0), vec!["n2"]);
    let n2: Vec<Duration> = c
        .reannounces
        .iter()
        .filter(|(n, _, _)| n == "n2")
        .map(|&(_, _, t)| t)
        .collect();
    assert_eq!(n2.len(), 2, "{:?}", c.reannounces);
    assert_eq!(n2[1] - n2[0], Duration::from_secs(1));
}

/// With a witness, the node cut off from peer and witness stops its group
/// (it lost quorum) before the other side takes it over.
#[test]
fn a_node_without_quorum_stops_its_group() {
    let mut c = Cluster::with(2, &[("a", 0)], false, 23, witness());
    settle(&mut c);
    assert_eq!(c.holders(0), vec!["n1"]);
    let q = c.nodes[0].machine.as_ref().unwrap().quorum();
    assert!(
        q.protected && q.has && q.votes == 3 && q.needed == 2,
        "{q:?}"
    );
    c.isolate(0, true);
    settle(&mut c);
    // The strict invariant (checked at every start) held; n2 took over.
    assert_eq!(c.holders(0), vec!["n2"]);
    assert_eq!(c.state(0, 0), Some(GroupState::Stopped));
    let q = c.nodes[0].machine.as_ref().unwrap().quorum();
    assert!(!q.has && q.votes == 1, "{q:?}");
    assert!(q.why.contains("n2") && q.why.contains("w1"), "{}", q.why);
    assert!(c
        .trace
        .iter()
        .any(|l| l.contains("n1 a: started -> stopping (no quorum")));
    assert!(c.quorums.iter().any(|(n, q)| n == "n1" && !q.has));
    // Healed: n1 has quorum again, the group stays on n2.
    c.isolate(0, false);
    settle(&mut c);
    assert_eq!(c.holders(0), vec!["n2"]);
    assert!(c.nodes[0].machine.as_ref().unwrap().quorum().has);
    c.check_converged();
}

/// Only the replication/heartbeat link between the nodes is cut, both
/// still hear the witness: both have quorum, but the witness keeps
/// granting the group to the node that runs it, so the other cannot start.
#[test]
fn the_witness_grants_to_one_side_only() {
    let mut c = Cluster::with(2, &[("a", 0)], false, 24, witness());
    settle(&mut c);
    c.cut[0][1] = true;
    c.cut[1][0] = true;
    settle(&mut c);
    assert_eq!(c.holders(0), vec!["n1"]);
    assert_eq!(c.state(1, 0), Some(GroupState::Stopped));
    let w = c.witness.unwrap();
    assert_eq!(c.nodes[w].name, "w1");
    assert_eq!(c.state(w, 0), Some(GroupState::Stopped), "it runs nothing");
    // The witness sided with n2 (n1 isolated from both): n2 runs it.
    c.isolate(0, true);
    settle(&mut c);
    assert_eq!(c.holders(0), vec!["n2"]);
}

/// Witness lost, then a partition: nobody has quorum, nothing runs
/// (rather than two holders); the group comes back once the nodes hear
/// each other again.
#[test]
fn witness_loss_then_partition_stops_both_sides() {
    let mut c = Cluster::with(2, &[("a", 0)], false, 25, witness());
    settle(&mut c);
    let w = c.witness.unwrap();
    c.crash(w, true);
    settle(&mut c);
    assert_eq!(c.holders(0), vec!["n1"], "2 of 3 votes: it goes on");
    c.cut[0][1] = true;
    c.cut[1][0] = true;
    settle(&mut c);
    assert!(c.holders(0).is_empty());
    let v = &c.nodes[1].machine.as_ref().unwrap().status()[0];
    assert!(
        v.note.as_deref().is_some_and(|n| n.contains("no quorum")),
        "{v:?}"
    );
    c.cut[0][1] = false;
    c.cut[1][0] = false;
    settle(&mut c);
    assert_eq!(c.holders(0).len(), 1);
}

/// votequorum's wait_for_all: with a witness, nothing starts until every
/// node has been up once, even with the witness's vote.
#[test]
fn wait_for_all_holds_starts_until_every_node_was_seen() {
    let p = Protect {
        wait_for_all: true,
        ..witness()
    };
    let mut c = Cluster::with(2, &[("a", 0)], false, 26, p);
    c.crash(1, true);
    c.drop_in_flight();
    c.run_for(secs(10));
    assert!(c.holders(0).is_empty());
    let q = c.nodes[0].machine.as_ref().unwrap().quorum();
    assert!(!q.has && q.votes == 2, "{q:?}");
    assert!(q.why.contains("wait_for_all"), "{}", q.why);
    c.boot(1);
    settle(&mut c);
    assert_eq!(c.holders(0), vec!["n1"]);
    // Seen once is enough: n2 crashing later does not stop n1.
    c.crash(1, true);
    settle(&mut c);
    assert_eq!(c.holders(0), vec!["n1"]);
}

/// Campaign finding: n1 lost its ping node and kept the group while n2
/// still reached it. With the tiebreaker the node reaching fewer ping
/// nodes hands over; equal counts move nothing.
#[test]
fn the_node_with_fewer_ping_nodes_hands_over() {
    let p = Protect {
        ping: true,
        ..Protect::default()
    };
    let mut c = Cluster::with(2, &[("a", 0)], true, 27, p);
    settle(&mut c);
    assert_eq!(c.holders(0), vec!["n1"]);
    c.set_reach(0, Some(1));
    settle(&mut c);
    assert_eq!(c.holders(0), vec!["n2"], "auto_failback does not beat ping");
    // n1 reaches as many as n2 again: back home (auto_failback on).
    c.set_reach(0, Some(2));
    settle(&mut c);
    assert_eq!(c.holders(0), vec!["n1"]);
    // Both lose one, n2 first (had n1 lost it first, the group would have
    // moved: n2 reached more then): equal, nothing moves.
    let starts = c.starts.len();
    c.set_reach(1, Some(1));
    c.run_for(secs(1));
    c.set_reach(0, Some(1));
    settle(&mut c);
    assert_eq!(c.holders(0), vec!["n1"]);
    assert_eq!(c.starts.len(), starts);
    c.check_converged();
}

/// Campaign finding (client_cut, protected): with the witness as well, the
/// node that lost its ping node stopped ("it should run on n2") and n2
/// never started.
#[test]
fn the_ping_tiebreaker_hands_over_with_a_witness_and_fencing() {
    for seed in 0..10 {
        let p = Protect {
            ping: true,
            witness: true,
            wait_for_all: true,
            fencing: true,
            ..Protect::default()
        };
        let mut c = Cluster::with(2, &[("a", 0)], true, 400 + seed, p);
        settle(&mut c);
        assert_eq!(c.holders(0), vec!["n1"]);
        c.set_reach(0, Some(0));
        settle(&mut c);
        assert_eq!(c.holders(0), vec!["n2"], "seed {seed}");
        c.set_reach(0, Some(2));
        settle(&mut c);
        assert_eq!(c.holders(0), vec!["n1"], "seed {seed}");
        c.check_converged();
    }
}

/// Campaign finding (issue 13): auto_failback handed the group back to the
/// rebooted home node while its disk was still resyncing from the peer
/// (its promotion is refused until then). The hand-back waits for the
/// resync; with no other node, the catching-up node still takes over.
#[test]
fn auto_failback_waits_until_the_home_nodes_disk_caught_up() {
    let mut c = Cluster::new(2, &[("a", 0)], true, 41);
    settle(&mut c);
    c.crash(0, true);
    settle(&mut c);
    assert_eq!(c.holders(0), vec!["n2"]);
    c.boot(0);
    c.set_disk_wait(0, 0, Some("disk r0 is Inconsistent (10% synced from n2)"));
    settle(&mut c);
    assert_eq!(c.holders(0), vec!["n2"], "no hand-back during the resync");
    c.set_disk_wait(0, 0, None);
    settle(&mut c);
    assert_eq!(c.holders(0), vec!["n1"], "home again once caught up");
    // Catching up, but the only node left: it takes over (the disk decides).
    c.crash(0, true);
    settle(&mut c);
    c.boot(0);
    c.set_disk_wait(0, 0, Some("disk r0 is Outdated"));
    settle(&mut c);
    assert_eq!(c.holders(0), vec!["n2"]);
    c.crash(1, true);
    settle(&mut c);
    assert_eq!(c.holders(0), vec!["n1"]);
    c.check_converged();
}

/// Partition-test finding (2026-12-04): the home node's group started
/// after waiting in drbddisk for the resync, but the "catching up" mark set
/// meanwhile was still there when the start finished: the node judged
/// itself unhealthy, gave the group to the peer and took it back a moment
/// later (two needless switchovers). A group that started here promoted
/// its disks, so the mark no longer keeps it away from here.
#[test]
fn a_start_that_waited_for_the_resync_keeps_the_group() {
    for seed in 0..20 {
        let mut c = Cluster::new(2, &[("a", 0)], true, 300 + seed);
        settle(&mut c);
        c.crash(0, true);
        settle(&mut c);
        assert_eq!(c.holders(0), vec!["n2"]);
        c.boot(0);
        let mut steps = 0;
        while c.state(0, 0) != Some(GroupState::Starting) {
            c.step();
            steps += 1;
            assert!(steps < 100_000, "seed {seed}: n1 never started the group");
        }
        c.set_disk_wait(0, 0, Some("disk r0 is Inconsistent (10% synced from n2)"));
        let before = c.starts.len();
        settle(&mut c);
        assert_eq!(c.holders(0), vec!["n1"], "seed {seed}");
        assert_eq!(
            c.starts.len(),
            before,
            "seed {seed}: no start after n1's: {:?}",
            &c.starts[before..]
        );
        c.check_converged();
    }
}

/// A node that hears no peer and no ping node is the isolated side: it
/// stops what it runs and takes nothing over.
#[test]
fn an_isolated_node_stops_and_takes_nothing_over() {
    let p = Protect {
        ping: true,
        ..Protect::default()
    };
    let mut c = Cluster::with(2, &[("a", 0), ("b", 1)], false, 28, p);
    settle(&mut c);
    c.isolate(0, true);
    // Once n1 hears no peer, its ping nodes go too: the cut is on its side.
    c.run_for(secs(1));
    assert_eq!(c.holders(1), vec!["n1", "n2"]);
    c.set_reach(0, Some(0));
    settle(&mut c);
    assert_eq!(c.holders(0), vec!["n2"]);
    assert_eq!(c.holders(1), vec!["n2"]);
    assert_eq!(c.state(0, 0), Some(GroupState::Stopped));
    assert!(
        c.trace
            .iter()
            .any(|l| l.contains("n1 a: started -> stopping (isolated")),
        "{}",
        c.trace.join("\n")
    );
    // Still reaching a ping node: not isolated (heartbeat's behaviour).
    let mut c = Cluster::with(2, &[("a", 0)], false, 29, p);
    settle(&mut c);
    c.isolate(0, true);
    c.set_reach(0, Some(1));
    settle(&mut c);
    assert_eq!(c.holders(0), vec!["n1", "n2"]);
    // The peer shut down cleanly: no other side, so reaching no ping node
    // (they may simply be down) isolates nothing (sim seed 1464).
    let mut c = Cluster::with(2, &[("a", 1)], false, 30, p);
    settle(&mut c);
    c.shutdown(1);
    c.set_reach(0, Some(0));
    settle(&mut c);
    assert_eq!(c.holders(0), vec!["n1"]);
}

/// Campaign finding: n2's start failed while n1 (cut off) still held the
/// address, and n2 stayed `failed`: a real crash of n1 later did not fail
/// over. The failure clears when the node that held the group is gone.
#[test]
fn a_failed_start_is_retried_when_the_old_holder_dies() {
    let mut c = Cluster::new(2, &[("a", 0)], false, 30);
    settle(&mut c);
    c.faults.start_fail = 1000;
    c.isolate(0, true);
    settle(&mut c);
    assert_eq!(c.state(1, 0), Some(GroupState::Failed));
    c.faults = Faults::none();
    c.isolate(0, false);
    settle(&mut c);
    assert_eq!(c.holders(0), vec!["n1"]);
    assert_eq!(c.state(1, 0), Some(GroupState::Failed));
    c.crash(0, true);
    settle(&mut c);
    assert_eq!(c.holders(0), vec!["n2"]);
    assert!(c.trace.iter().any(|l| l.contains("is gone: trying again")));
}

/// Pacemaker's failure-timeout: a failed start here may be tried here
/// again after it; without one only `hbctl clear` does.
#[test]
fn a_failed_start_is_retried_after_failure_timeout() {
    for timeout in [Some(secs(3)), None] {
        let p = Protect {
            failure_timeout: timeout,
            ..Protect::default()
        };
        let mut c = Cluster::with(2, &[("a", 0)], false, 31, p);
        c.faults.start_fail = 1000;
        while c.state(0, 0) != Some(GroupState::Failed) {
            c.step();
        }
        c.faults = Faults::none();
        settle(&mut c);
        assert_eq!(c.holders(0), vec!["n2"]);
        let expect = if timeout.is_some() {
            GroupState::Stopped
        } else {
            GroupState::Failed
        };
        assert_eq!(c.state(0, 0), Some(expect), "{timeout:?}");
        c.crash(1, true);
        settle(&mut c);
        let expect: Vec<&str> = if timeout.is_some() {
            vec!["n1"]
        } else {
            vec![]
        };
        assert_eq!(c.holders(0), expect, "{timeout:?}");
    }
}

fn fencing() -> Protect {
    Protect {
        fencing: true,
        ..Protect::default()
    }
}

/// A peer declared dead is fenced before its groups start here; while the
/// fence fails nothing starts (retried every 5 s), and the status says why.
#[test]
fn a_dead_peer_is_fenced_before_its_groups_start_and_a_failed_fence_blocks() {
    let mut c = Cluster::with(2, &[("a", 0)], false, 32, fencing());
    settle(&mut c);
    assert_eq!(c.holders(0), vec!["n1"]);
    c.faults.fence_fail = 1000;
    // The daemon hangs or dies; the resources still run on the machine.
    c.crash(0, false);
    c.run_for(secs(12));
    assert!(c.holders(0).is_empty());
    assert!(c.nodes[0].physical[0], "still running on n1");
    let asked = c
        .fences
        .iter()
        .filter(|(f, t)| f == "n2" && t == "n1")
        .count();
    assert!(asked >= 2, "retried: {:?}", c.fences);
    let v = &c.nodes[1].machine.as_ref().unwrap().status()[0];
    assert_eq!(
        v.note.as_deref(),
        Some("waiting for fencing of n1"),
        "{v:?}"
    );
    c.faults.fence_fail = 0;
    c.run_for(secs(8));
    assert!(!c.nodes[0].physical[0], "fenced: off");
    assert_eq!(c.holders(0), vec!["n2"]);
    assert!(c
        .trace
        .iter()
        .any(|l| l.contains("starting here") && l.contains("fenced: n1")));
}

/// A clean leave needs no fence.
#[test]
fn a_peer_that_left_cleanly_is_not_fenced() {
    let mut c = Cluster::with(2, &[("a", 0)], false, 33, fencing());
    settle(&mut c);
    c.shutdown(0);
    settle(&mut c);
    assert_eq!(c.holders(0), vec!["n2"]);
    assert!(c.fences.is_empty(), "{:?}", c.fences);
}

/// Pacemaker's rule: a failed stop fences the node rather than blocking
/// the group forever.
#[test]
fn a_stop_failed_peer_is_fenced_and_the_group_moves() {
    let mut c = Cluster::with(2, &[("a", 0)], false, 34, fencing());
    settle(&mut c);
    c.faults.stop_fail = 1000;
    c.command(0, Command::Standby(Scope::All)).unwrap();
    c.run_for(secs(2));
    c.faults = Faults::none();
    settle(&mut c);
    assert!(c.fences.iter().any(|(f, t)| f == "n2" && t == "n1"));
    assert_eq!(c.holders(0), vec!["n2"]);
    // n1 was powered off; it comes back clean and does not take it back.
    c.boot(0);
    settle(&mut c);
    assert_eq!(c.holders(0), vec!["n2"]);
    c.check_converged();
}

/// A node that left with a stop-failed group is fenced too, and then the
/// group is no longer blocked.
#[test]
fn a_peer_that_left_stop_failed_is_fenced() {
    let mut c = Cluster::with(2, &[("a", 0)], false, 35, fencing());
    settle(&mut c);
    c.faults.stop_fail = 1000;
    c.shutdown(0);
    c.run_for(secs(2));
    c.faults = Faults::none();
    settle(&mut c);
    assert!(c.fences.iter().any(|(f, t)| f == "n2" && t == "n1"));
    assert_eq!(c.holders(0), vec!["n2"]);
}

/// Sim seed 426: a witness that booted after the holder had started (so it
/// never granted anything to it) granted a takeover to the other side of a
/// partition. A node never grants a group while another node it hears runs
/// it.
#[test]
fn a_witness_that_booted_late_does_not_grant_a_running_group_away() {
    let mut c = Cluster::with(2, &[("a", 0)], false, 36, witness());
    let w = c.witness.unwrap();
    c.crash(w, true);
    c.drop_in_flight();
    settle(&mut c);
    assert_eq!(c.holders(0), vec!["n1"], "n1 and n2: 2 of 3 votes");
    c.boot(w);
    settle(&mut c);
    c.cut[0][1] = true;
    c.cut[1][0] = true;
    settle(&mut c);
    c.command(1, Command::Takeover(Scope::All)).unwrap();
    settle(&mut c);
    assert_eq!(c.holders(0), vec!["n1"]);
    assert_eq!(c.state(1, 0), Some(GroupState::Stopped));
}

/// Issue 14, finding 10: the holder runs a long deadtime, its peer and the
/// witness a short one (ha.cf differs, or one node reloaded it). Cut off,
/// the holder must lose quorum and stop before the other side, which
/// declares it dead after its own short deadtime, starts the group: the
/// quorum lease follows the voter's deadtime, not the holder's.
#[test]
fn a_longer_deadtime_on_the_holder_still_stops_it_in_time() {
    let ms = Duration::from_millis;
    let mut c = Cluster::with_deadtimes(
        2,
        &[("a", 0)],
        false,
        23,
        witness(),
        &[ms(2400), ms(600), ms(600)],
    );
    settle(&mut c);
    assert_eq!(c.holders(0), vec!["n1"]);
    c.isolate(0, true);
    // The strict invariant is checked at every start.
    settle(&mut c);
    assert_eq!(c.holders(0), vec!["n2"]);
}

/// Issue 14, finding 10: a reload that removes a node this node hears up
/// is refused (it may run a group nothing would then keep from starting
/// here too), and changes nothing; once that node is dead it is allowed.
#[test]
fn a_reload_may_not_remove_a_node_that_is_up() {
    let mut c = Cluster::new(2, &[("a", 1)], false, 35);
    settle(&mut c);
    assert_eq!(c.holders(0), vec!["n2"]);
    let now = c.now;
    let m = c.nodes[0].machine.as_mut().unwrap();
    let mut cfg = m.cfg.clone();
    cfg.nodes = vec!["n1".into()];
    let e = m.reconfigure(cfg.clone(), now).unwrap_err();
    assert_eq!(e, ReconfigureError::RemovedNodeUp(vec!["n2".into()]));
    assert_eq!(
        e.to_string(),
        "n2 would leave the node list but is up here and may run groups: stop hbd there first"
    );
    assert_eq!(m.cfg.nodes, ["n1", "n2"], "nothing changed");
    c.shutdown(1);
    settle(&mut c);
    assert_eq!(c.holders(0), vec!["n1"]);
    let now = c.now;
    let m = c.nodes[0].machine.as_mut().unwrap();
    m.reconfigure(cfg, now).unwrap();
    assert_eq!(m.status()[0].local, GroupState::Started);
}

/// Issue 14, finding 10: a node added by a reload is unknown, and blocks
/// every start until membership hears it or declares it dead, as at boot.
#[test]
fn a_node_added_by_a_reload_blocks_starts_until_known() {
    let mut c = Cluster::new(2, &[("a", 1)], false, 36);
    settle(&mut c);
    assert_eq!(c.holders(0), vec!["n2"]);
    let now = c.now;
    let m = c.nodes[0].machine.as_mut().unwrap();
    let mut cfg = m.cfg.clone();
    cfg.nodes.push("n3".into());
    m.reconfigure(cfg, now).unwrap();
    c.crash(1, true);
    settle(&mut c);
    assert!(c.holders(0).is_empty(), "n3 is not known yet");
    let now = c.now;
    c.nodes[0]
        .machine
        .as_mut()
        .unwrap()
        .on_node_dead("n3", false, now);
    settle(&mut c);
    assert_eq!(c.holders(0), vec!["n1"]);
}

/// Issue 16: the refusals' texts are the ones hbctl printed before they
/// were typed.
#[test]
fn command_refusals_say_what_they_always_said() {
    let names = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    for (e, text) in [
        (
            CommandError::NotReady,
            "this node is still probing its resources; try again in a moment",
        ),
        (CommandError::ShuttingDown, "this node is shutting down"),
        (CommandError::NoGroups(Scope::All), "no resource groups"),
        (CommandError::NoGroups(Scope::Local), "no local groups"),
        (CommandError::NoGroups(Scope::Foreign), "no foreign groups"),
        (CommandError::Alone, "no other node in the cluster"),
        (
            CommandError::NoPeerUp {
                peers: names(&["n2", "n3"]),
            },
            "no other node is up (n2, n3): nothing can move",
        ),
        (
            CommandError::InTransition(names(&["a", "b on n2"])),
            "a transition is in progress: a, b on n2",
        ),
        (
            CommandError::NowhereToGo(names(&["a"])),
            "no other node can run a: failed or unhealthy there, or not ready",
        ),
        (
            CommandError::FailedHere(names(&["a", "b"])),
            "failed on this node: a, b (hbctl clear GROUP first)",
        ),
        (
            CommandError::NoGroup {
                id: "x".into(),
                groups: names(&["a", "b"]),
            },
            "no group x (groups: a, b)",
        ),
        (
            CommandError::NothingToClear {
                id: "a".into(),
                state: GroupState::Started,
            },
            "a is started here: nothing to clear",
        ),
    ] {
        assert_eq!(e.to_string(), text, "{e:?}");
    }
    assert_eq!(
        ReconfigureError::NeedsRestart.to_string(),
        "the node name, the groups or the witness changed: restart hbd to apply them"
    );
    assert_eq!(
        ReconfigureError::RemovedNodeUp(names(&["n2", "n3"])).to_string(),
        "n2, n3 would leave the node list but are up here and may run groups: stop hbd there first"
    );
}

/// With the membership engine's quorum (Corosync's votequorum), a node
/// starts a group only while the engine says it is quorate, and stops it
/// when quorum goes; nothing starts before the engine answered at all.
#[test]
fn engine_quorum_gates_starting_and_holding() {
    let ms = Duration::from_millis;
    let cfg = GroupsConfig {
        node: "n1".into(),
        nodes: vec!["n1".into(), "n2".into(), "n3".into()],
        groups: vec![GroupDef {
            id: "a".into(),
            home: "n1".into(),
        }],
        auto_failback: false,
        resend: ms(100),
        deadtime: ms(1000),
        witness: None,
        is_witness: false,
        wait_for_all: false,
        ping_tiebreak: false,
        fencing: false,
        failure_timeout: None,
        engine_quorum: true,
    };
    let mut g = Groups::new(cfg, 7, Duration::ZERO);
    let starts = |g: &mut Groups| {
        g.take_outputs()
            .into_iter()
            .filter(|o| matches!(o, Output::Start(0) | Output::Stop(0)))
            .collect::<Vec<_>>()
    };
    g.on_probe(0, Probe::Stopped, ms(10));
    // The peers are gone (a partition: this side is all there is).
    g.on_node_dead("n2", false, ms(20));
    g.on_node_dead("n3", false, ms(20));
    g.tick(ms(500));
    assert!(
        starts(&mut g).is_empty(),
        "started before the engine answered"
    );
    let q = g.quorum();
    assert!(q.protected && !q.has, "{q:?}");
    // Not quorate: still nothing.
    let minority = EngineQuorum {
        quorate: false,
        votes: 1,
        needed: 2,
        expected: 3,
        settling: false,
        syncing: false,
    };
    g.set_engine_quorum(minority, ms(600));
    g.tick(ms(700));
    assert!(starts(&mut g).is_empty());
    assert!(g.quorum().why.contains("not quorate"), "{}", g.quorum().why);
    // Quorate (the others are this node's side): it starts.
    let majority = EngineQuorum {
        quorate: true,
        votes: 2,
        needed: 2,
        expected: 3,
        settling: false,
        syncing: false,
    };
    g.set_engine_quorum(majority, ms(800));
    g.tick(ms(900));
    assert_eq!(starts(&mut g), vec![Output::Start(0)]);
    g.on_done(0, OpResult::Started, ms(1000));
    assert_eq!(g.local_state(0), GroupState::Started);
    // Settling (a node of the membership not heard yet): it keeps what
    // it runs, it starts nothing.
    g.set_engine_quorum(
        EngineQuorum {
            settling: true,
            ..majority
        },
        ms(1050),
    );
    assert!(starts(&mut g).is_empty());
    assert!(!g.quorum().has);
    assert_eq!(g.local_state(0), GroupState::Started);
    // votequorum deciding again after a loss, no fencing: this node may
    // be the side that loses without knowing it yet: it stops.
    g.set_engine_quorum(
        EngineQuorum {
            syncing: true,
            ..majority
        },
        ms(1100),
    );
    assert_eq!(starts(&mut g), vec![Output::Stop(0)]);
    assert!(g.quorum().why.contains("deciding"), "{}", g.quorum().why);
}

/// With fencing, a node keeps its groups while votequorum decides after a
/// loss (the winner fences the loser before it starts anything), but it
/// neither starts nor fences meanwhile.
#[test]
fn engine_quorum_syncing_with_fencing_keeps_running_groups() {
    let ms = Duration::from_millis;
    let cfg = GroupsConfig {
        node: "n1".into(),
        nodes: vec!["n1".into(), "n2".into()],
        groups: vec![
            GroupDef {
                id: "a".into(),
                home: "n1".into(),
            },
            GroupDef {
                id: "b".into(),
                home: "n2".into(),
            },
        ],
        auto_failback: false,
        resend: ms(100),
        deadtime: ms(1000),
        witness: None,
        is_witness: false,
        wait_for_all: false,
        ping_tiebreak: false,
        fencing: true,
        failure_timeout: None,
        engine_quorum: true,
    };
    let mut g = Groups::new(cfg, 7, Duration::ZERO);
    let q = EngineQuorum {
        quorate: true,
        votes: 2,
        needed: 2,
        expected: 3,
        settling: false,
        syncing: false,
    };
    g.on_probe(0, Probe::Stopped, ms(10));
    g.on_probe(1, Probe::Stopped, ms(10));
    g.set_engine_quorum(q, ms(20));
    // n2 never heard: fenced before anything starts here.
    g.on_node_dead("n2", false, ms(30));
    g.tick(ms(40));
    let out = g.take_outputs();
    assert!(out.contains(&Output::Fence("n2".into())), "{out:?}");
    g.on_fenced("n2", true, ms(50));
    g.tick(ms(100));
    let out = g.take_outputs();
    assert!(out.contains(&Output::Start(0)), "{out:?}");
    g.on_done(0, OpResult::Started, ms(200));
    if out.contains(&Output::Start(1)) {
        g.on_done(1, OpResult::Started, ms(200));
    }
    g.take_outputs();
    // A loss while votequorum decides: it keeps what it runs, and starts
    // and fences nothing.
    g.set_engine_quorum(EngineQuorum { syncing: true, ..q }, ms(300));
    g.tick(ms(400));
    let out = g.take_outputs();
    assert!(
        !out.iter()
            .any(|o| matches!(o, Output::Stop(_) | Output::Start(_) | Output::Fence(_))),
        "{out:?}"
    );
    assert_eq!(g.local_state(0), GroupState::Started);
}
