//! Resource groups end to end: two hbd daemons in the netns lab run
//! haresources groups (a real IPaddr2 VIP plus recording test agents), a
//! client namespace checks who answers for the VIP.

mod common;

use common::{actions, group, install_agent, recorder, wait_started_on, Lab, KEY};
use std::os::unix::fs::PermissionsExt;

const VIP: &str = "192.0.2.50";

fn ha_cf(keepalive: &str, deadtime: &str, auto_failback: &str) -> String {
    format!(
        "keepalive {keepalive}\ndeadtime {deadtime}\ninitdead {deadtime}\nudpport 694\n\
         bcast eth0\nbcast eth1\nauto_failback {auto_failback}\nnode n1 n2\n"
    )
}

/// A two-node lab with `haresources` and the recorder agent on both nodes.
fn lab(haresources: &str, auto_failback: &str, deadtime: &str) -> Lab {
    let lab = Lab::new(2, 2);
    lab.configure(&ha_cf("100ms", deadtime, auto_failback), KEY);
    for i in 1..=2 {
        lab.write(i, "haresources", haresources);
        lab.write(
            i,
            "cluster.toml",
            "[resource_defaults]\nstart_timeout = \"20s\"\nstop_timeout = \"20s\"\n",
        );
        install_agent(&lab, i, "rec", &recorder(&lab, i, false));
    }
    lab
}

fn mac(lab: &Lab, host: &str) -> String {
    let out = lab.exec(host, &["cat", "/sys/class/net/eth0/address"]);
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn has_vip(lab: &Lab, host: &str) -> bool {
    let out = lab.exec(host, &["ip", "-4", "-o", "addr", "show", "dev", "eth0"]);
    String::from_utf8_lossy(&out.stdout).contains(&format!("{VIP}/24"))
}

/// The client reaches the VIP and its ARP entry names `host`'s MAC.
fn vip_answers_from(lab: &Lab, host: &str) {
    let want = mac(lab, host);
    lab.wait_for(
        &format!("{VIP} answers the client from {host} ({want})"),
        || {
            let _ = lab.exec("c", &["ip", "neigh", "flush", "dev", "eth0"]);
            let ping = lab.exec("c", &["ping", "-c", "1", "-W", "1", VIP]);
            if !ping.status.success() {
                return false;
            }
            let n = lab.exec("c", &["ip", "neigh", "show", VIP, "dev", "eth0"]);
            String::from_utf8_lossy(&n.stdout).contains(&want)
        },
    );
}

#[test]
fn vip_moves_with_standby_and_takeover_and_answers_from_the_holder_only() {
    let id = format!("IPaddr2::{VIP}/24/eth0:0");
    let mut lab = lab(&format!("n1 {id} rec::a\n"), "off", "1");
    lab.start_all();
    wait_started_on(&lab, &[1, 2], &id, "n1");
    assert!(has_vip(&lab, "n1") && !has_vip(&lab, "n2"));
    vip_answers_from(&lab, "n1");
    let s = lab.status(1).unwrap();
    let g = group(&s, &id).unwrap();
    assert_eq!(g["home"], "n1");
    assert_eq!(g["resources"][0]["spec"], id.as_str());
    assert_eq!(g["resources"][0]["state"], "started");
    assert_eq!(g["resources"][1]["agent"], "heartbeat");

    // standby: synchronous, reports what moved.
    let out = lab.hbctl(1, &["standby", "all"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{out:?}");
    assert!(text.contains("now runs on n2"), "{text}");
    assert!(!has_vip(&lab, "n1") && has_vip(&lab, "n2"));
    vip_answers_from(&lab, "n2");

    // takeover from n1 brings it back.
    let out = lab.hbctl(1, &["takeover", "all", "--timeout", "60"]);
    assert!(out.status.success(), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("now runs on n1"));
    assert!(has_vip(&lab, "n1") && !has_vip(&lab, "n2"));
    vip_answers_from(&lab, "n1");

    // With the peer gone, standby is refused with the reason, exit 3.
    assert!(lab.stop(2).success());
    lab.wait_for("n1 sees n2 dead", || {
        lab.node_state(1, "n2").as_deref() == Some("dead")
    });
    let out = lab.hbctl(1, &["standby"]);
    assert_eq!(out.status.code(), Some(3), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("no other node is up"));
    assert!(has_vip(&lab, "n1"));
}

#[test]
fn start_and_stop_order_and_a_failing_agent_rolls_back() {
    let mut lab = lab(
        "n1 rec::a rec::b rec::c\nn1 rec::x flaky::y rec::z\n",
        "off",
        "1",
    );
    // flaky fails to start on n1 only.
    install_agent(&lab, 1, "flaky", &recorder(&lab, 1, true));
    install_agent(&lab, 2, "flaky", &recorder(&lab, 2, false));
    lab.start_all();
    wait_started_on(&lab, &[1, 2], "rec::a", "n1");
    wait_started_on(&lab, &[1, 2], "rec::x", "n2");
    let a = actions(&lab);
    let of = |node: &str, names: &[&str]| -> Vec<String> {
        a.iter()
            .filter(|l| l.starts_with(node) && names.iter().any(|n| l.split(' ').nth(1) == Some(n)))
            .cloned()
            .collect()
    };
    // Left to right, once.
    assert_eq!(
        of("n1", &["a", "b", "c"]),
        ["n1 a start", "n1 b start", "n1 c start"]
    );
    assert!(of("n2", &["a", "b", "c"]).is_empty(), "{a:?}");
    // The failure in the middle is rolled back right to left, then the
    // group runs on n2.
    assert_eq!(
        of("n1", &["x", "y", "z"]),
        ["n1 x start", "n1 y start", "n1 y stop", "n1 x stop"]
    );
    assert_eq!(
        of("n2", &["x", "y", "z"]),
        ["n2 x start", "n2 y start", "n2 z start"]
    );
    let s = lab.status(1).unwrap();
    let g = group(&s, "rec::x").unwrap();
    assert_eq!(g["local"], "failed");
    assert_eq!(g["resources"][1]["state"], "failed");
    assert!(
        g["resources"][1]["error"]
            .as_str()
            .unwrap()
            .contains("code 1"),
        "{g}"
    );
    let text = String::from_utf8_lossy(&lab.hbctl(1, &["status"]).stdout).to_string();
    assert!(text.contains("rec::x  started on n2"), "{text}");
    assert!(text.contains("failed on n1"), "{text}");

    // takeover of a group that failed here is refused until cleared.
    let out = lab.hbctl(1, &["takeover", "foreign"]);
    assert_eq!(out.status.code(), Some(3), "{out:?}");
    let out = lab.hbctl(1, &["takeover", "local"]);
    // rec::a is already here, rec::x failed here: what can move, moves.
    assert!(
        out.status.success() || out.status.code() == Some(1),
        "{out:?}"
    );
    install_agent(&lab, 1, "flaky", &recorder(&lab, 1, false));
    let out = lab.hbctl(1, &["clear", "rec::x"]);
    assert!(out.status.success(), "{out:?}");
    // The takeover asked for it here: once cleared, it comes.
    wait_started_on(&lab, &[1, 2], "rec::x", "n1");

    // standby: right to left here, left to right there.
    std::fs::remove_file(lab.dir.path().join("actions.log")).unwrap();
    let out = lab.hbctl(1, &["standby", "local", "--timeout", "60"]);
    assert!(out.status.success(), "{out:?}");
    wait_started_on(&lab, &[1, 2], "rec::a", "n2");
    let a = actions(&lab);
    let n1: Vec<&String> = a
        .iter()
        .filter(|l| {
            l.starts_with("n1 ") && !l.contains(" x ") && !l.contains(" y ") && !l.contains(" z ")
        })
        .collect();
    assert_eq!(n1, ["n1 c stop", "n1 b stop", "n1 a stop"]);
    lab.stop(1);
    lab.stop(2);
}

/// The holder's machine dies: its daemon is killed, its links go down and
/// its resources vanish with it.
fn crash_machine(lab: &mut Lab, i: usize) {
    lab.kill(i);
    lab.link(&format!("n{i}"), 0, false);
    lab.link(&format!("n{i}"), 1, false);
    let _ = lab.exec(
        &format!("n{i}"),
        &["ip", "addr", "del", &format!("{VIP}/24"), "dev", "eth0"],
    );
    let _ = std::fs::remove_dir_all(lab.node_dir(i).join("rec-state"));
}

#[test]
fn holder_death_moves_the_group_and_auto_failback_decides_the_return() {
    for failback in ["on", "off"] {
        let id = format!("IPaddr2::{VIP}/24/eth0:0");
        let mut lab = lab(&format!("n1 {id} rec::a\n"), failback, "1");
        lab.start_all();
        wait_started_on(&lab, &[1, 2], &id, "n1");
        crash_machine(&mut lab, 1);
        wait_started_on(&lab, &[2], &id, "n2");
        vip_answers_from(&lab, "n2");
        let s = lab.status(2).unwrap();
        let n1 = common::node_entry(&s, "n1").unwrap();
        assert_eq!(n1["dead_reason"], "timeout");
        // The machine comes back.
        lab.link("n1", 0, true);
        lab.link("n1", 1, true);
        lab.start(1);
        lab.wait_all_up(&[1, 2]);
        let home = if failback == "on" { "n1" } else { "n2" };
        wait_started_on(&lab, &[1, 2], &id, home);
        vip_answers_from(&lab, home);
        // And it stays there.
        std::thread::sleep(std::time::Duration::from_secs(2));
        wait_started_on(&lab, &[1, 2], &id, home);
        assert_eq!(
            has_vip(&lab, "n1"),
            home == "n1",
            "auto_failback {failback}"
        );
        assert_eq!(
            has_vip(&lab, "n2"),
            home == "n2",
            "auto_failback {failback}"
        );
    }
}

#[test]
fn sigterm_hands_the_group_over_without_waiting_for_deadtime() {
    let id = format!("IPaddr2::{VIP}/24/eth0:0");
    // deadtime 20 s; the peer's dead_reason says whether it was the Leaving
    // handoff or a timeout.
    let mut lab = lab(&format!("n1 {id} rec::a\n"), "on", "20");
    lab.start_all();
    wait_started_on(&lab, &[1, 2], &id, "n1");
    assert!(lab.stop(1).success());
    assert!(!has_vip(&lab, "n1"), "n1 stopped its groups before exiting");
    wait_started_on(&lab, &[2], &id, "n2");
    let s = lab.status(2).unwrap();
    assert_eq!(common::node_entry(&s, "n1").unwrap()["dead_reason"], "left");
    vip_answers_from(&lab, "n2");
    let a = actions(&lab);
    let stop = a
        .iter()
        .position(|l| l == "n1 a stop")
        .expect("n1 stopped a");
    let start = a
        .iter()
        .position(|l| l == "n2 a start")
        .expect("n2 started a");
    assert!(stop < start, "{a:?}");
}

#[test]
fn a_healed_partition_leaves_the_group_on_one_node() {
    let id = format!("IPaddr2::{VIP}/24/eth0:0");
    let mut lab = lab(&format!("n2 {id} rec::a\n"), "off", "1");
    lab.start_all();
    wait_started_on(&lab, &[1, 2], &id, "n2");
    // n1 loses both links: each side believes the other dead.
    lab.link("n1", 0, false);
    lab.link("n1", 1, false);
    wait_started_on(&lab, &[1], &id, "n1");
    wait_started_on(&lab, &[2], &id, "n2");
    lab.link("n1", 0, true);
    lab.link("n1", 1, true);
    // The home node (n2) keeps it; n1 stops it, no daemon restarts.
    wait_started_on(&lab, &[1, 2], &id, "n2");
    assert!(!has_vip(&lab, "n1") && has_vip(&lab, "n2"));
    vip_answers_from(&lab, "n2");
    assert!(lab.exited(1).is_none() && lab.exited(2).is_none());
    // Fire-and-forget standby: accepted at once, the group moves anyway.
    let out = lab.hbctl(2, &["standby", "--no-wait"]);
    assert!(out.status.success(), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stdout).starts_with("accepted: "),
        "{out:?}"
    );
    wait_started_on(&lab, &[1, 2], &id, "n1");
    vip_answers_from(&lab, "n1");
}

#[test]
fn lsb_and_real_ocf_agents_in_a_group() {
    let mut lab = Lab::new(2, 2);
    lab.configure(&ha_cf("100ms", "1", "off"), KEY);
    let state = lab.dir.path().join("dummy.state");
    for i in 1..=2 {
        let init = lab.node_dir(i).join("init.d");
        std::fs::create_dir_all(&init).unwrap();
        let record = lab.node_dir(i).join("lsb.log");
        let flag = lab.node_dir(i).join("lsb.on");
        let script = format!(
            "#!/bin/sh\necho \"$0 $*|PATH=$PATH|HOME=${{HOME:-}}\" >> {record}\n\
             case \"$1\" in start) touch {flag};; stop) rm -f {flag};; \
             status) [ -e {flag} ] && exit 0; exit 3;; esac\nexit 0\n",
            record = record.display(),
            flag = flag.display()
        );
        std::fs::write(init.join("svc"), script).unwrap();
        std::fs::set_permissions(init.join("svc"), std::fs::Permissions::from_mode(0o755)).unwrap();
        lab.write(
            i,
            "haresources",
            &format!("n1 ocf:heartbeat:Dummy::state={} svc\n", state.display()),
        );
        lab.write(
            i,
            "cluster.toml",
            &format!("[agents]\ninit_dir = \"{}\"\n", init.display()),
        );
    }
    let id = format!("ocf:heartbeat:Dummy::state={}", state.display());
    lab.start_all();
    wait_started_on(&lab, &[1, 2], &id, "n1");
    assert!(state.exists(), "Dummy created its state file");
    let s = lab.status(1).unwrap();
    let g = group(&s, &id).unwrap();
    assert_eq!(g["resources"][0]["agent"], "ocf");
    assert_eq!(g["resources"][1]["agent"], "lsb");
    let rec = std::fs::read_to_string(lab.node_dir(1).join("lsb.log")).unwrap();
    assert!(
        rec.lines().any(|l| l.ends_with(
            "svc start|PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin|HOME="
        ) || l.contains("svc start|")),
        "{rec}"
    );
    assert!(rec.lines().any(|l| l.contains("svc status|")), "{rec}");
    let out = lab.hbctl(1, &["standby"]);
    assert!(out.status.success(), "{out:?}");
    wait_started_on(&lab, &[1, 2], &id, "n2");
    let rec = std::fs::read_to_string(lab.node_dir(1).join("lsb.log")).unwrap();
    assert!(rec.lines().any(|l| l.contains("svc stop|")), "{rec}");
    let _ = std::fs::remove_file(&state);
}
