//! How hbd picks its mode from the configuration directory, and `hbctl
//! check` on keepalived.conf: alone it is a valid configuration (VRRP mode),
//! its errors are `file:line` with exit 2, and next to ha.cf both run.

mod common;

use common::vrrp::{holders, instance_conf, wait};
use common::{ha_cf, Lab, HBCTL, KEY};
use std::fs;
use std::process::{Command, Output};

fn check(dir: &std::path::Path) -> Output {
    Command::new(HBCTL)
        .args(["check", "--node", "n1", "--config"])
        .arg(dir)
        .output()
        .unwrap()
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

const CONF: &str = "vrrp_instance VI_1 {\n    interface eth0\n    virtual_router_id 51\n    priority 100\n    virtual_ipaddress {\n        192.0.2.50\n    }\n}\n";

#[test]
fn check_accepts_keepalived_conf_alone() {
    let d = tempfile::tempdir().unwrap();
    fs::write(d.path().join("keepalived.conf"), CONF).unwrap();
    let o = check(d.path());
    assert!(o.status.success(), "{}", text(&o));
}

#[test]
fn check_reports_keepalived_errors_with_file_and_line() {
    let d = tempfile::tempdir().unwrap();
    fs::write(
        d.path().join("keepalived.conf"),
        CONF.replace("priority 100", "priority 100\n    frobnicate yes"),
    )
    .unwrap();
    let o = check(d.path());
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        text(&o).contains("keepalived.conf:5:"),
        "error with its line: {}",
        text(&o)
    );
}

#[test]
fn check_without_any_configuration_still_wants_ha_cf() {
    let d = tempfile::tempdir().unwrap();
    let o = check(d.path());
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("ha.cf"), "{}", text(&o));
}

/// ha.cf and keepalived.conf: membership and the VRRP instance both run.
#[test]
fn heartbeat_and_vrrp_together() {
    let mut lab = Lab::new(2, 1);
    lab.configure(&ha_cf(2, "bcast eth0", "200ms", "2"), KEY);
    for i in 1..=2 {
        let prio = if i == 1 { 150 } else { 100 };
        lab.write(
            i,
            "keepalived.conf",
            &instance_conf("VI_1", 51, prio, "192.0.2.50/24", "", ""),
        );
    }
    lab.start_all();
    lab.wait_all_up(&[1, 2]);
    wait(
        "n1 holds the VIP",
        || holders(&lab, "192.0.2.50") == ["n1"],
        || format!("{}\n{}", lab.log(1), lab.log(2)),
    );
    // SIGTERM: the groups stop, then VRRP hands over with priority 0.
    assert!(lab.stop(1).success());
    wait(
        "n2 takes the VIP after n1 left",
        || holders(&lab, "192.0.2.50") == ["n2"],
        || format!("{}\n{}", lab.log(1), lab.log(2)),
    );
}
