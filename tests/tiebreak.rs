//! The ping tiebreaker end to end (issue 13; heartbeat's ipfail, built in):
//! two nodes on two nets (heartbeat bcast on eth0 and eth1), the lab's
//! client (192.0.2.100, on eth0's net) as the ping node, a recording test
//! agent as the group. ha.cf keeps heartbeat's `respawn ... ipfail` line.
//!
//! The tests marked "needs the groups machine of issue 13" check what the
//! group machine does with the counts (the lead runs them once both branches
//! are merged); the others check the runtime: the ipfail line is taken as
//! the built-in tiebreaker, and the settled counts follow reachability.

mod common;

use common::{install_agent, local, recorder, wait_started_on, Lab, KEY};

/// The lab's client namespace answers pings: the ping node.
const PING_NODE: &str = "192.0.2.100";

fn ha_cf() -> String {
    format!(
        "keepalive 100ms\ndeadtime 1\ninitdead 1\nudpport 694\nbcast eth0\nbcast eth1\n\
         auto_failback off\nnode n1 n2\nping {PING_NODE}\ndeadping 1\n\
         respawn hacluster /usr/lib/heartbeat/ipfail\n"
    )
}

fn lab(haresources: &str) -> Lab {
    let lab = Lab::new(2, 2);
    lab.configure(&ha_cf(), KEY);
    for i in 1..=2 {
        lab.write(i, "haresources", haresources);
        lab.write(
            i,
            "cluster.toml",
            "[tiebreaker]\nsettle = \"1s\"\n\n\
             [resource_defaults]\nstart_timeout = \"20s\"\nstop_timeout = \"20s\"\n",
        );
        install_agent(&lab, i, "rec", &recorder(&lab, i, false));
    }
    lab
}

/// Node i's settled count of reached ping nodes.
fn settled(lab: &Lab, i: usize) -> Option<u64> {
    lab.status(i)?["protection"]["tiebreaker"]["settled"].as_u64()
}

#[test]
fn ipfail_line_selects_the_builtin_tiebreaker_and_counts_settle() {
    let mut lab = lab("n1 rec::a\n");
    lab.start_all();
    lab.wait_all_up(&[1, 2]);
    for i in 1..=2 {
        lab.wait_for(&format!("n{i} reaches the ping node (settled)"), || {
            settled(&lab, i) == Some(1)
        });
        let log = lab.log(i);
        assert!(
            log.contains("ipfail: built into hbd: ping tiebreaker"),
            "{log}"
        );
        assert!(!log.contains("respawned program started"), "{log}");
    }
    let s = lab.status(1).unwrap();
    assert_eq!(s["protection"]["tiebreaker"]["ping_nodes"], 1, "{s}");
    assert_eq!(s["protection"]["tiebreaker"]["settle_ms"], 1000, "{s}");
    let text = lab.hbctl(1, &["status"]);
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(
        text.contains("ping tiebreaker: this node reaches 1 of 1 ping nodes (settled 1"),
        "{text}"
    );
    assert!(
        text.contains("no quorum protection: a partition can run groups on both nodes"),
        "{text}"
    );

    // n1 loses the ping node (eth0 cut; heartbeat goes on over eth1): its
    // settled count drops, n2's does not; restored, it comes back.
    lab.link("n1", 0, false);
    lab.wait_for("n1's settled count drops to 0", || {
        settled(&lab, 1) == Some(0)
    });
    assert_eq!(settled(&lab, 2), Some(1));
    assert_eq!(lab.node_state(1, "n2").as_deref(), Some("up"));
    lab.link("n1", 0, true);
    lab.wait_for("n1's settled count is 1 again", || {
        settled(&lab, 1) == Some(1)
    });
}

// needs the groups machine of issue 13
#[test]
fn node_losing_its_ping_node_hands_the_group_to_the_peer() {
    let mut lab = lab("n1 rec::a\n");
    lab.start_all();
    wait_started_on(&lab, &[1, 2], "rec::a", "n1");
    lab.wait_for("both reach the ping node", || {
        settled(&lab, 1) == Some(1) && settled(&lab, 2) == Some(1)
    });
    // heartbeat's ipfail case: the nodes still talk (eth1), n1 no longer
    // reaches the ping node, n2 does: the group moves to n2.
    lab.link("n1", 0, false);
    wait_started_on(&lab, &[1, 2], "rec::a", "n2");
    assert_eq!(local(&lab, 1, "rec::a").as_deref(), Some("stopped"));
}

// needs the groups machine of issue 13
#[test]
fn isolated_node_stops_its_group_and_takes_none_over() {
    let mut lab = lab("n1 rec::a\nn2 rec::b\n");
    lab.start_all();
    wait_started_on(&lab, &[1, 2], "rec::a", "n1");
    wait_started_on(&lab, &[1, 2], "rec::b", "n2");
    // n1 reaches neither its peer nor the ping node: it is the isolated
    // side; it stops rec::a and does not take rec::b over. n2 runs both.
    lab.link("n1", 0, false);
    lab.link("n1", 1, false);
    lab.wait_for("n1 stops rec::a", || {
        local(&lab, 1, "rec::a").as_deref() == Some("stopped")
    });
    wait_started_on(&lab, &[2], "rec::a", "n2");
    assert_eq!(local(&lab, 1, "rec::b").as_deref(), Some("stopped"));
    assert_eq!(local(&lab, 2, "rec::b").as_deref(), Some("started"));
}
