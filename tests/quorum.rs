//! The quorum witness end to end (issue 13): two nodes n1, n2 and an
//! `hbd --witness` named w1 in the lab's third namespace (n3), all on the
//! same ha.cf media (bcast on eth0 and eth1), with a recording test agent
//! as the group.
//!
//! The tests marked "needs the groups machine of issue 13" check behaviour
//! that the group machine's quorum rules provide (the lead runs them once
//! both branches are merged); the others check the runtime: the witness
//! starts, joins the membership, is shown in status and runs nothing.

mod common;

use common::{actions, group, install_agent, local, recorder, wait_started_on, Lab, KEY};
use std::process::Child;
use std::time::{Duration, Instant};

const HA_CF: &str =
    "keepalive 100ms\ndeadtime 1\ninitdead 1\nudpport 694\nbcast eth0\nbcast eth1\n\
                     auto_failback on\nnode n1 n2\n";

/// n1, n2 and the witness's machine (n3) with the same files; the agent is
/// installed on the nodes only (the witness needs none).
fn lab(haresources: &str, cluster_toml: &str) -> Lab {
    let lab = Lab::new(3, 2);
    lab.configure(HA_CF, KEY);
    for i in 1..=3 {
        lab.write(i, "haresources", haresources);
        lab.write(
            i,
            "cluster.toml",
            &format!(
                "[quorum]\nwitness = \"w1\"\n{cluster_toml}\n\
                 [resource_defaults]\nstart_timeout = \"20s\"\nstop_timeout = \"20s\"\n"
            ),
        );
    }
    for i in 1..=2 {
        install_agent(&lab, i, "rec", &recorder(&lab, i, false));
    }
    lab
}

/// `hbd --witness --node w1` in n3's namespace, with n3's directories; killed
/// on drop (and with the test process).
struct Witness(Option<Child>);

impl Witness {
    fn start(lab: &Lab) -> Witness {
        Witness(Some(lab.spawn_witness(3, "w1")))
    }

    fn kill(&mut self) {
        if let Some(mut c) = self.0.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Witness {
    fn drop(&mut self) {
        self.kill();
    }
}

fn has_quorum(lab: &Lab, i: usize) -> Option<bool> {
    lab.status(i)?["protection"]["quorum"]["has"].as_bool()
}

/// Cuts or restores both of n1's links.
fn isolate_n1(lab: &Lab, cut: bool) {
    for net in 0..2 {
        lab.link("n1", net, !cut);
    }
}

#[test]
fn witness_joins_the_membership_and_runs_nothing() {
    let mut lab = lab("n1 rec::a\n", "");
    let _w = Witness::start(&lab);
    lab.start_all_but_witness();
    for i in 1..=2 {
        lab.wait_for(&format!("n{i} sees the witness up"), || {
            lab.node_state(i, "w1").as_deref() == Some("up")
        });
        lab.wait_for(&format!("the witness sees n{i} up"), || {
            lab.node_state(3, &format!("n{i}")).as_deref() == Some("up")
        });
    }
    wait_started_on(&lab, &[1, 2], "rec::a", "n1");

    // Status: the nodes name the witness and see it reachable.
    let s = lab.status(1).unwrap();
    assert_eq!(s["protection"]["witness"], "w1", "{s}");
    assert_eq!(s["protection"]["is_witness"], false);
    assert_eq!(s["protection"]["quorum"]["protected"], true, "{s}");
    let text = lab.hbctl(1, &["status"]);
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(text.contains("witness:         w1 (reachable)"), "{text}");
    // The witness knows it is one, and runs no group.
    let w = lab.status(3).unwrap();
    assert_eq!(w["node"], "w1");
    assert_eq!(w["protection"]["is_witness"], true, "{w}");
    assert_eq!(group(&w, "rec::a").unwrap()["local"], "stopped", "{w}");
    assert!(
        actions(&lab).iter().all(|a| !a.starts_with("n3")),
        "{:?}",
        actions(&lab)
    );
    let log = lab.log(3);
    assert!(!log.contains("resource started"), "{log}");
    assert!(!log.contains("ICMP"), "the witness pings nothing:\n{log}");
}

// needs the groups machine of issue 13
#[test]
fn partitioned_node_stops_and_the_side_with_the_witness_takes_over() {
    let mut lab = lab("n1 rec::a\n", "");
    let _w = Witness::start(&lab);
    lab.start_all_but_witness();
    wait_started_on(&lab, &[1, 2], "rec::a", "n1");
    lab.wait_for("n1 and n2 have quorum", || {
        has_quorum(&lab, 1) == Some(true) && has_quorum(&lab, 2) == Some(true)
    });

    // n1 alone: no peer, no witness: no quorum, it stops the group; n2 and
    // the witness are two votes: n2 takes the group over.
    isolate_n1(&lab, true);
    lab.wait_for("n1 loses quorum", || has_quorum(&lab, 1) == Some(false));
    lab.wait_for("n1 stops its group", || {
        local(&lab, 1, "rec::a").as_deref() == Some("stopped")
    });
    wait_started_on(&lab, &[2], "rec::a", "n2");
    assert_eq!(has_quorum(&lab, 2), Some(true));

    // Healed: one node runs it.
    isolate_n1(&lab, false);
    lab.wait_all_up(&[1, 2]);
    lab.wait_for("the group runs on one node", || {
        let (a, b) = (local(&lab, 1, "rec::a"), local(&lab, 2, "rec::a"));
        [a, b]
            .iter()
            .filter(|s| s.as_deref() == Some("started"))
            .count()
            == 1
    });
}

// needs the groups machine of issue 13
#[test]
fn witness_down_both_nodes_keep_their_groups() {
    let mut lab = lab("n1 rec::a\nn2 rec::b\n", "");
    let mut w = Witness::start(&lab);
    lab.start_all_but_witness();
    wait_started_on(&lab, &[1, 2], "rec::a", "n1");
    wait_started_on(&lab, &[1, 2], "rec::b", "n2");
    w.kill();
    for i in 1..=2 {
        lab.wait_for(&format!("n{i} sees the witness dead"), || {
            lab.node_state(i, "w1").as_deref() == Some("dead")
        });
    }
    // Two nodes are still a majority: nothing stops. Watched for a while
    // (several deadtimes), not timed.
    let until = Instant::now() + Duration::from_secs(5);
    while Instant::now() < until {
        assert_eq!(local(&lab, 1, "rec::a").as_deref(), Some("started"));
        assert_eq!(local(&lab, 2, "rec::b").as_deref(), Some("started"));
        assert_eq!(has_quorum(&lab, 1), Some(true));
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(
        !actions(&lab).iter().any(|a| a.ends_with(" stop")),
        "{:?}",
        actions(&lab)
    );
}

// needs the groups machine of issue 13
#[test]
fn wait_for_all_starts_nothing_until_every_node_was_seen() {
    let mut lab = lab("n1 rec::a\n", "wait_for_all = true\n");
    let _w = Witness::start(&lab);
    lab.start(1);
    lab.wait_for("n1 sees the witness up", || {
        lab.node_state(1, "w1").as_deref() == Some("up")
    });
    // n1 and the witness are two votes, but n2 has not been seen since n1
    // started: nothing starts (votequorum's wait_for_all).
    lab.wait_for("n1 declares n2 dead (initdead over)", || {
        lab.node_state(1, "n2").as_deref() == Some("dead")
    });
    let until = Instant::now() + Duration::from_secs(3);
    while Instant::now() < until {
        assert_ne!(local(&lab, 1, "rec::a").as_deref(), Some("started"));
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(actions(&lab).is_empty(), "{:?}", actions(&lab));
    lab.start(2);
    wait_started_on(&lab, &[1, 2], "rec::a", "n1");
}

trait StartNodes {
    fn start_all_but_witness(&mut self);
}

impl StartNodes for Lab {
    /// n1 and n2 (n3 is the witness's machine).
    fn start_all_but_witness(&mut self) {
        self.start(1);
        self.start(2);
    }
}

const VIP: &str = "192.0.2.50";

fn has_vip(lab: &Lab, host: &str) -> bool {
    let out = lab.exec(host, &["ip", "-4", "-o", "addr", "show", "dev", "eth0"]);
    String::from_utf8_lossy(&out.stdout).contains(&format!("{VIP}/24"))
}

fn mac(lab: &Lab, host: &str) -> String {
    let out = lab.exec(host, &["cat", "/sys/class/net/eth0/address"]);
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// The client's ARP entry for the VIP names `host`'s MAC and the VIP
/// answers; with `flush` the client asks afresh, without it the entry must
/// have been corrected by the holder's gratuitous ARPs.
fn vip_answers_from(lab: &Lab, host: &str, flush: bool) {
    let want = mac(lab, host);
    lab.wait_for(&format!("{VIP} answers the client from {host}"), || {
        if flush {
            let _ = lab.exec("c", &["ip", "neigh", "flush", "dev", "eth0"]);
        }
        // Ping first: after a flush the entry exists only once asked for.
        let answered = lab
            .exec("c", &["ping", "-c", "1", "-W", "1", VIP])
            .status
            .success();
        let n = lab.exec("c", &["ip", "neigh", "show", VIP, "dev", "eth0"]);
        answered && String::from_utf8_lossy(&n.stdout).contains(&want)
    });
}

// needs the groups machine of issue 13
#[test]
fn keeper_after_a_healed_partition_announces_its_address_again() {
    let id = format!("IPaddr2::{VIP}/24/eth0:0");
    let mut lab = lab(&format!("n1 {id} rec::a\n"), "");
    // No witness here: the partition runs the group on both sides.
    for i in 1..=2 {
        lab.write(
            i,
            "cluster.toml",
            "[resource_defaults]\nstart_timeout = \"20s\"\nstop_timeout = \"20s\"\n",
        );
    }
    lab.start_all_but_witness();
    wait_started_on(&lab, &[1, 2], &id, "n1");
    isolate_n1(&lab, true);
    wait_started_on(&lab, &[2], &id, "n2");
    // The client (on n2's side) learns n2's MAC for the VIP.
    vip_answers_from(&lab, "n2", true);
    isolate_n1(&lab, false);
    lab.wait_all_up(&[1, 2]);
    lab.wait_for("the VIP on one node", || {
        has_vip(&lab, "n1") != has_vip(&lab, "n2")
    });
    let keeper = if has_vip(&lab, "n1") { "n1" } else { "n2" };
    // Without flushing its cache: the keeper announced the address again.
    vip_answers_from(&lab, keeper, false);
}
