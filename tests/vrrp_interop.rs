//! hbd's VRRP mode against Debian's keepalived, in the netns lab: keepalived
//! in n1, hbd (keepalived.conf only, no ha.cf) in n2, one VRID on eth0:
//! VRRPv2 with PASS over multicast and over unicast, VRRPv3 at 0.1 s.
//! The higher priority is MASTER whichever daemon has it, exactly one node
//! holds the VIP and the client reaches it there; a crash (SIGKILL of every
//! process) moves it to the other, and the higher priority returning
//! preempts. A crashed machine's addresses go with it: the tests remove the
//! VIP from a crashed node before checking the client.

mod common;

use common::vrrp::{
    client_reaches, del_addr, has_addr, holders, instance_conf, stays, wait, Keepalived,
};
use common::Lab;
use std::time::Duration;

const VIP: &str = "192.0.2.50";

fn logs(lab: &Lab, k: &Keepalived) -> String {
    format!(
        "--- keepalived (n1) ---\n{}\n--- hbd (n2) ---\n{}",
        k.log(),
        lab.log(2)
    )
}

/// v2 with PASS, advert_int 1.
fn v2(priority: u8, pass: &str) -> String {
    instance_conf(
        "VI_DB",
        51,
        priority,
        &format!("{VIP}/24"),
        &format!(
            "    advert_int 1\n    authentication {{\n        auth_type PASS\n        auth_pass {pass}\n    }}\n"
        ),
        "",
    )
}

/// v3, advert_int 0.1.
fn v3(priority: u8) -> String {
    instance_conf(
        "VI_DB",
        52,
        priority,
        &format!("{VIP}/24"),
        "    advert_int 0.1\n",
        "    vrrp_version 3\n",
    )
}

/// v2 with PASS to the other node's address (unicast_src_ip, unicast_peer).
fn v2_unicast(priority: u8, node: &str) -> String {
    let (me, peer) = if node == "n1" {
        ("192.0.2.11", "192.0.2.12")
    } else {
        ("192.0.2.12", "192.0.2.11")
    };
    instance_conf(
        "VI_DB",
        53,
        priority,
        &format!("{VIP}/24"),
        &format!(
            "    advert_int 1\n    authentication {{\n        auth_type PASS\n        auth_pass uni\n    }}\n    unicast_src_ip {me}\n    unicast_peer {{\n        {peer}\n    }}\n"
        ),
        "",
    )
}

/// `high` is on the node that should be MASTER first: keepalived (n1) when
/// `keepalived_high`, else hbd (n2).
fn failover_both_ways(conf: impl Fn(u8, &str) -> String, keepalived_high: bool) {
    let mut lab = Lab::new(2, 1);
    let (kp, hp) = if keepalived_high {
        (150, 100)
    } else {
        (100, 150)
    };
    let (master, backup) = if keepalived_high {
        ("n1", "n2")
    } else {
        ("n2", "n1")
    };
    let mut k = Keepalived::start(&lab, "n1", &conf(kp, "n1"));
    lab.write(2, "keepalived.conf", &conf(hp, "n2"));
    lab.start(2);

    wait(
        &format!("only {master} holds the VIP and the client reaches it there"),
        || holders(&lab, VIP) == [master] && client_reaches(&lab, VIP, master),
        || logs(&lab, &k),
    );
    stays(
        &format!("{master} alone holds the VIP"),
        Duration::from_secs(3),
        || holders(&lab, VIP) == [master],
        || logs(&lab, &k),
    );

    // Crash the master; the backup takes over.
    if keepalived_high {
        k.crash();
    } else {
        lab.kill(2);
    }
    wait(
        &format!("{backup} takes the VIP after the crash of {master}"),
        || has_addr(&lab, backup, VIP),
        || logs(&lab, &k),
    );
    del_addr(&lab, master, VIP, 24);
    wait(
        &format!("the client reaches the VIP on {backup}"),
        || client_reaches(&lab, VIP, backup),
        || logs(&lab, &k),
    );

    // The higher priority returns and preempts.
    if keepalived_high {
        k = Keepalived::start(&lab, "n1", &conf(kp, "n1"));
    } else {
        lab.start(2);
    }
    wait(
        &format!("{master} preempts: it alone holds the VIP again"),
        || holders(&lab, VIP) == [master] && client_reaches(&lab, VIP, master),
        || logs(&lab, &k),
    );

    // A crash of the lower priority one changes nothing.
    if keepalived_high {
        lab.kill(2);
    } else {
        k.crash();
    }
    stays(
        &format!("{master} keeps the VIP when {backup} crashes"),
        Duration::from_secs(3),
        || holders(&lab, VIP) == [master],
        || logs(&lab, &k),
    );
}

#[test]
fn v2_pass_keepalived_higher() {
    failover_both_ways(|p, _| v2(p, "s3cret"), true);
}

#[test]
fn v2_pass_hbd_higher() {
    failover_both_ways(|p, _| v2(p, "s3cret"), false);
}

#[test]
fn v3_fast_adverts_keepalived_higher() {
    failover_both_ways(|p, _| v3(p), true);
}

#[test]
fn v3_fast_adverts_hbd_higher() {
    failover_both_ways(|p, _| v3(p), false);
}

#[test]
fn v2_unicast_keepalived_higher() {
    failover_both_ways(v2_unicast, true);
}

#[test]
fn v2_unicast_hbd_higher() {
    failover_both_ways(v2_unicast, false);
}

/// Different PASS passwords: no adjacency, so each one is MASTER and holds
/// the VIP (as two keepalived would).
#[test]
fn pass_mismatch_means_no_adjacency() {
    let mut lab = Lab::new(2, 1);
    let k = Keepalived::start(&lab, "n1", &v2(150, "one"));
    lab.write(2, "keepalived.conf", &v2(100, "two"));
    lab.start(2);
    wait(
        "both nodes hold the VIP",
        || holders(&lab, VIP) == ["n1", "n2"],
        || logs(&lab, &k),
    );
    stays(
        "both stay MASTER",
        Duration::from_secs(3),
        || holders(&lab, VIP) == ["n1", "n2"],
        || logs(&lab, &k),
    );
    assert!(
        lab.log(2).contains("advert dropped"),
        "hbd logs the adverts with the wrong password:\n{}",
        lab.log(2)
    );
}

/// Seed 004's weighted check on hbd's side (priority 101, weight 50):
/// while its process runs hbd advertises 151 and is MASTER over keepalived's
/// 120; when it dies hbd falls to 101 and keepalived preempts; back up, hbd
/// preempts again.
#[test]
fn weighted_script_moves_the_master() {
    let mut lab = Lab::new(2, 1);
    let pidfile = lab.dir.path().join("httpd.pid");
    // Killed on drop, also when the test fails.
    struct Tracked(std::process::Child);
    impl Drop for Tracked {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let spawn = || {
        let c = std::process::Command::new("sleep")
            .arg("100000")
            .spawn()
            .unwrap();
        std::fs::write(&pidfile, c.id().to_string()).unwrap();
        Tracked(c)
    };
    let tracked = spawn();
    let script = format!(
        "vrrp_script chk_httpd {{\n    script \"/bin/sh -c 'kill -0 $(cat {})'\"\n    interval 1\n    weight 50\n}}\n",
        pidfile.display()
    );
    let k = Keepalived::start(&lab, "n1", &v2(120, "s3cret"));
    let hbd_conf = v2(101, "s3cret").replace(
        "    advert_int 1\n",
        "    advert_int 1\n    track_script {\n        chk_httpd\n    }\n",
    );
    lab.write(2, "keepalived.conf", &format!("{script}{hbd_conf}"));
    lab.start(2);
    wait(
        "hbd (151) is MASTER over keepalived (120)",
        || holders(&lab, VIP) == ["n2"] && client_reaches(&lab, VIP, "n2"),
        || logs(&lab, &k),
    );
    drop(tracked);
    wait(
        "keepalived preempts hbd at 101",
        || holders(&lab, VIP) == ["n1"] && client_reaches(&lab, VIP, "n1"),
        || logs(&lab, &k),
    );
    let _tracked = spawn();
    wait(
        "hbd preempts again at 151",
        || holders(&lab, VIP) == ["n2"] && client_reaches(&lab, VIP, "n2"),
        || logs(&lab, &k),
    );
}
