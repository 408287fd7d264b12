//! hbd on Corosync (cluster.toml `[membership] backend = "corosync"`): each
//! lab node runs its own corosync 3.1 with knet in its own network
//! namespace, hbd joins a CPG group there and takes node up/dead, its
//! quorum (votequorum) and the group reports from Corosync. The group
//! machine above is the same as with hbd's own membership.

mod common;

use common::corosync::{CorosyncLab, Totem};
use common::*;

const TOTEM: Totem = Totem { token_ms: 1000 };

/// A lab of `n` nodes on Corosync with `haresources` and the recorder
/// agent on every node; corosync and hbd started everywhere.
fn cluster(n: usize, qdevice: bool, haresources: &str) -> CorosyncLab {
    let mut c = CorosyncLab::new(n, TOTEM, qdevice);
    let names: Vec<String> = (1..=n).map(|i| format!("n{i}")).collect();
    let ha = format!(
        "keepalive 200ms\ndeadtime 2\ninitdead 2\nauto_failback off\nnode {}\n",
        names.join(" ")
    );
    for i in 1..=n {
        c.lab.write(i, "ha.cf", &ha);
        c.lab.write(i, "haresources", haresources);
        let toml = c.cluster_toml(i, "1s");
        c.lab.write(i, "cluster.toml", &toml);
        install_agent(&c.lab, i, "rec", &recorder(&c.lab, i, false));
    }
    if qdevice {
        c.start_qnetd();
    }
    for i in 1..=n {
        c.start_corosync(i);
    }
    let all: Vec<usize> = (1..=n).collect();
    c.wait_members(&all);
    c.lab.start_all();
    c
}

/// Node i's recorder says group `name` runs there.
fn runs(c: &CorosyncLab, i: usize, name: &str) -> bool {
    c.lab.node_dir(i).join("rec-state").join(name).exists()
}

/// hbd's nodes up as node i sees them, sorted.
fn hbd_up(c: &CorosyncLab, i: usize) -> Option<Vec<String>> {
    let s = c.lab.status(i)?;
    let mut up: Vec<String> = s["nodes"]
        .as_array()?
        .iter()
        .filter(|n| n["state"] == "up")
        .filter_map(|n| n["name"].as_str().map(String::from))
        .collect();
    up.sort();
    Some(up)
}

fn quorate(c: &CorosyncLab, i: usize) -> Option<bool> {
    c.lab.status(i)?["protection"]["quorum"]["has"].as_bool()
}

/// The lines of actions.log for group `name`.
fn actions_of(c: &CorosyncLab, name: &str) -> Vec<String> {
    actions(&c.lab)
        .into_iter()
        .filter(|l| l.split_whitespace().nth(1) == Some(name))
        .collect()
}

/// In the actions log, `name` never starts on a node while it runs on
/// another (a start only after the previous holder's stop, or after the
/// holder lost power: `off`).
fn never_on_two(c: &CorosyncLab, name: &str, off: &[&str]) {
    let mut holder: Option<String> = None;
    for l in actions_of(c, name) {
        let f: Vec<&str> = l.split_whitespace().collect();
        match f[2] {
            "start" => {
                assert!(
                    holder
                        .as_deref()
                        .is_none_or(|h| h == f[0] || off.contains(&h)),
                    "{name} started on {} while {holder:?} ran it: {:?}",
                    f[0],
                    actions_of(c, name)
                );
                holder = Some(f[0].to_string());
            }
            "stop" if holder.as_deref() == Some(f[0]) => holder = None,
            _ => {}
        }
    }
}

#[test]
fn three_nodes_membership_matches_corosync_and_a_crash_moves_the_group() {
    let mut c = cluster(3, false, "n1 rec::a\nn2 rec::b\n");
    c.lab.wait_all_up(&[1, 2, 3]);
    wait_started_on(&c.lab, &[1, 2, 3], "rec::a", "n1");
    wait_started_on(&c.lab, &[1, 2, 3], "rec::b", "n2");
    for i in 1..=3 {
        let (members, q) = c.members(i).expect("corosync-quorumtool answers");
        assert_eq!(
            hbd_up(&c, i).unwrap(),
            members,
            "n{i}: hbd and corosync agree"
        );
        assert!(q && quorate(&c, i) == Some(true));
        let s = c.lab.status(i).unwrap();
        assert_eq!(s["nodes"][0]["links"][0]["medium"], "corosync", "{s}");
    }
    // Power loss of n1: its corosync and hbd die at once.
    c.kill_corosync(1);
    c.lab.kill(1);
    c.lab.wait_for("corosync on n2 and n3 lists only them", || {
        c.members(2).is_some_and(|(m, q)| m == ["n2", "n3"] && q)
    });
    // Its group moves (n2 comes first in ha.cf's node list).
    wait_started_on(&c.lab, &[2, 3], "rec::a", "n2");
    assert_eq!(hbd_up(&c, 2).unwrap(), ["n2", "n3"]);
    let s = c.lab.status(2).unwrap();
    let n1 = node_entry(&s, "n1").unwrap();
    assert_eq!(n1["state"], "dead", "{s}");
    assert_eq!(n1["dead_reason"], "timeout", "{s}");
    // An orderly stop of n3's hbd: it leaves the group at once.
    assert_eq!(c.lab.stop(3).code(), Some(0));
    c.lab.wait_for("n2 sees n3 left", || {
        c.lab
            .status(2)
            .and_then(|s| node_entry(&s, "n3").map(|n| n["dead_reason"] == "left"))
            .unwrap_or(false)
    });
    // n2 alone is 1 of 3 votes: no quorum, it stops what it runs.
    c.kill_corosync(3);
    c.lab.wait_for("n2 without quorum stops its groups", || {
        quorate(&c, 2) == Some(false) && !runs(&c, 2, "a") && !runs(&c, 2, "b")
    });
    never_on_two(&c, "a", &["n1"]);
    never_on_two(&c, "b", &[]);
}

#[test]
fn a_partition_gives_the_majority_quorum_and_the_minority_none() {
    let c = cluster(3, false, "n1 rec::a\nn3 rec::c\n");
    wait_started_on(&c.lab, &[1, 2, 3], "rec::a", "n1");
    wait_started_on(&c.lab, &[1, 2, 3], "rec::c", "n3");
    // n1 cut off: alone it has 1 of 3 votes.
    c.lab.link("n1", 0, false);
    c.lab
        .wait_for("n1 loses quorum and stops a; n2 runs a", || {
            quorate(&c, 1) == Some(false) && !runs(&c, 1, "a") && runs(&c, 2, "a")
        });
    assert!(c.members(1).is_some_and(|(m, q)| m == ["n1"] && !q));
    assert!(c.members(2).is_some_and(|(m, q)| m == ["n2", "n3"] && q));
    assert!(runs(&c, 3, "c"), "the majority keeps what it ran");
    let s = c.lab.status(1).unwrap();
    assert!(
        s["protection"]["quorum"]["why"]
            .as_str()
            .unwrap_or("")
            .contains("votequorum"),
        "{s}"
    );
    // Healed: one cluster again, a stays on n2, nothing runs twice.
    c.lab.link("n1", 0, true);
    c.wait_members(&[1, 2, 3]);
    c.lab.wait_all_up(&[1, 2, 3]);
    wait_started_on(&c.lab, &[1, 2, 3], "rec::a", "n2");
    assert!(!runs(&c, 1, "a"));
    never_on_two(&c, "a", &[]);
    never_on_two(&c, "c", &[]);
}

#[test]
fn five_nodes_split_two_three() {
    let c = cluster(5, false, "n1 rec::a\nn4 rec::d\n");
    wait_started_on(&c.lab, &[1, 2, 3, 4, 5], "rec::a", "n1");
    wait_started_on(&c.lab, &[1, 2, 3, 4, 5], "rec::d", "n4");
    // n1 and n2 on one side, n3..n5 on the other: the lab has one switch,
    // so cut n1 and n2 off and let them keep each other through a second
    // path? They cannot: cut each, the minority side is two singletons.
    c.lab.link("n1", 0, false);
    c.lab.link("n2", 0, false);
    c.lab
        .wait_for("n3..n5 are the quorate majority and run a and d", || {
            c.members(3)
                .is_some_and(|(m, q)| m == ["n3", "n4", "n5"] && q)
                && runs(&c, 3, "a")
                && runs(&c, 4, "d")
        });
    for i in [1, 2] {
        c.lab
            .wait_for(&format!("n{i} has no quorum and runs nothing"), || {
                quorate(&c, i) == Some(false) && !runs(&c, i, "a")
            });
    }
    c.lab.link("n1", 0, true);
    c.lab.link("n2", 0, true);
    c.wait_members(&[1, 2, 3, 4, 5]);
    c.lab.wait_all_up(&[1, 2, 3, 4, 5]);
    wait_started_on(&c.lab, &[1, 2, 3, 4, 5], "rec::a", "n3");
    never_on_two(&c, "a", &[]);
    never_on_two(&c, "d", &[]);
}

/// Drops corosync's traffic (knet, UDP 5405) between node i and node j
/// inside i's namespace: the two nodes lose each other, both still reach
/// the quorum device.
fn cut_between(c: &CorosyncLab, i: usize, j: usize, cut: bool) {
    let ns = format!("n{i}");
    let peer = format!("192.0.2.{}", 10 + j);
    if cut {
        let rules = format!(
            "table inet hbdcut {{\n\
             chain in {{\ntype filter hook input priority 0;\nip saddr {peer} drop\n}}\n\
             chain out {{\ntype filter hook output priority 0;\nip daddr {peer} drop\n}}\n}}\n"
        );
        let f = c.lab.dir.path().join(format!("cut-{i}-{j}.nft"));
        std::fs::write(&f, rules).unwrap();
        let out = c.lab.exec(&ns, &["nft", "-f", f.to_str().unwrap()]);
        assert!(out.status.success(), "{out:?}");
    } else {
        let out = c
            .lab
            .exec(&ns, &["nft", "delete", "table", "inet", "hbdcut"]);
        assert!(out.status.success(), "{out:?}");
    }
}

#[test]
fn two_nodes_and_a_quorum_device_survive_either_loss_and_never_split() {
    let mut c = cluster(2, true, "n1 rec::a\n");
    wait_started_on(&c.lab, &[1, 2], "rec::a", "n1");
    c.lab
        .wait_for("both quorate with the device's vote (3 of 3)", || {
            [1, 2].iter().all(|&i| {
                c.lab.status(i).is_some_and(|s| {
                    s["protection"]["quorum"]["has"] == true
                        && s["protection"]["quorum"]["votes"] == 3
                })
            })
        });
    // The link between the nodes fails, both still reach qnetd: it gives
    // its vote to one side only (ffsplit), the group runs on that side.
    cut_between(&c, 1, 2, true);
    cut_between(&c, 2, 1, true);
    // Settled: one side quorate and running the group, the other neither
    // (while votequorum decides both may read not quorate, or the side
    // that reads first still "quorate": read both until it holds).
    let side = |w: usize, l: usize| {
        quorate(&c, w) == Some(true)
            && quorate(&c, l) == Some(false)
            && runs(&c, w, "a")
            && !runs(&c, l, "a")
    };
    let mut sides = None;
    c.lab
        .wait_for("the group runs on the one quorate side only", || {
            sides = [(1, 2), (2, 1)].into_iter().find(|&(w, l)| side(w, l));
            sides.is_some()
        });
    let (winner, loser) = sides.unwrap();
    cut_between(&c, 1, 2, false);
    cut_between(&c, 2, 1, false);
    c.wait_members(&[1, 2]);
    c.lab.wait_all_up(&[1, 2]);
    let holder = format!("n{winner}");
    wait_started_on(&c.lab, &[1, 2], "rec::a", &holder);
    // Power loss of the holder: the other node and the device are 2 of 3.
    c.kill_corosync(winner);
    c.lab.kill(winner);
    let other = format!("n{loser}");
    c.lab.wait_for("the survivor keeps quorum and runs a", || {
        quorate(&c, loser) == Some(true) && runs(&c, loser, "a")
    });
    assert_eq!(owner(&c.lab, loser, "rec::a").unwrap().0, other);
    // The other node back (its group's state gone with the power), then
    // lost again: the holder keeps quorum and the group.
    let _ = std::fs::remove_dir_all(c.lab.node_dir(winner).join("rec-state"));
    c.start_corosync(winner);
    c.wait_members(&[1, 2]);
    c.lab.start(winner);
    c.lab.wait_all_up(&[1, 2]);
    c.kill_corosync(winner);
    c.lab.kill(winner);
    c.lab.wait_for("the holder saw it go", || {
        c.lab
            .status(loser)
            .and_then(|s| node_entry(&s, &holder).map(|n| n["state"] == "dead"))
            .unwrap_or(false)
    });
    assert_eq!(quorate(&c, loser), Some(true));
    assert!(runs(&c, loser, "a"));
    never_on_two(&c, "a", &[holder.as_str()]);
}

#[test]
fn hbd_started_before_corosync_waits_for_it_and_says_why() {
    let mut c = CorosyncLab::new(2, TOTEM, false);
    let ha = "keepalive 200ms\ndeadtime 2\ninitdead 2\nauto_failback off\nnode n1 n2\n";
    for i in 1..=2 {
        c.lab.write(i, "ha.cf", ha);
        c.lab.write(i, "haresources", "n1 rec::a\n");
        let toml = c.cluster_toml(i, "1s");
        c.lab.write(i, "cluster.toml", &toml);
        install_agent(&c.lab, i, "rec", &recorder(&c.lab, i, false));
    }
    c.lab.start_all();
    c.lab.wait_for("hbd says corosync is not there", || {
        c.lab.log(1).contains("no connection to corosync")
    });
    assert_eq!(quorate(&c, 1), Some(false));
    std::thread::sleep(std::time::Duration::from_secs(3));
    assert!(!runs(&c, 1, "a"), "nothing runs without corosync's quorum");
    for i in 1..=2 {
        c.start_corosync(i);
    }
    wait_started_on(&c.lab, &[1, 2], "rec::a", "n1");
    assert!(c.lab.log(1).contains("joined the CPG group of corosync"));
}
