//! `hbctl status`, `standby INSTANCE` and `takeover INSTANCE` against hbd
//! in VRRP mode (keepalived.conf only), hbd on both nodes.

mod common;

use common::vrrp::{holders, instance_conf, stays, wait};
use common::Lab;
use std::time::Duration;

const VIP: &str = "192.0.2.50";

#[test]
fn hbctl_shows_and_moves_vrrp_instances() {
    let mut lab = Lab::new(2, 1);
    for (i, prio) in [(1, 150), (2, 100)] {
        lab.write(
            i,
            "keepalived.conf",
            &instance_conf("DB", 51, prio, VIP, "    advert_int 1\n", ""),
        );
    }
    lab.start_all();
    let logs = || format!("--- n1 ---\n{}\n--- n2 ---\n{}", lab.log(1), lab.log(2));
    wait("n1 holds the VIP", || holders(&lab, VIP) == ["n1"], logs);

    let s = lab.status(1).expect("status");
    let v = &s["vrrp"][0];
    assert_eq!(v["name"], "DB", "{s}");
    assert_eq!(v["state"], "MASTER", "{s}");
    assert_eq!(v["vrid"], 51, "{s}");
    assert_eq!(v["priority"], 150, "{s}");
    let text = lab.hbctl(1, &["status"]);
    let text = String::from_utf8_lossy(&text.stdout).into_owned();
    assert!(text.contains("VRRP instances:"), "{text}");
    assert!(text.contains("DB  MASTER  vrid 51 on eth0"), "{text}");

    // standby: n1 gives MASTER up and does not preempt back.
    let out = lab.hbctl(1, &["standby", "DB"]);
    assert!(out.status.success(), "{out:?}");
    wait("n2 holds the VIP", || holders(&lab, VIP) == ["n2"], logs);
    stays(
        "n2 keeps the VIP (n1 in standby)",
        Duration::from_secs(4),
        || holders(&lab, VIP) == ["n2"],
        logs,
    );
    assert_eq!(lab.status(2).unwrap()["vrrp"][0]["state"], "MASTER");

    // takeover: n1 (higher priority) preempts at once.
    let out = lab.hbctl(1, &["takeover", "DB"]);
    assert!(out.status.success(), "{out:?}");
    wait(
        "n1 holds the VIP again",
        || holders(&lab, VIP) == ["n1"],
        logs,
    );

    // An unknown instance is a clear refusal.
    let out = lab.hbctl(1, &["standby", "nope"]);
    assert_eq!(out.status.code(), Some(3), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("no vrrp_instance `nope`"));
    // Groups do not exist in VRRP mode: standby all still moves the instances.
    let out = lab.hbctl(1, &["standby"]);
    assert!(out.status.success(), "{out:?}");
    wait(
        "n2 holds the VIP after standby all",
        || holders(&lab, VIP) == ["n2"],
        logs,
    );
}
