//! Resource groups end to end: two hbd daemons in the netns lab run
//! haresources groups (a real IPaddr2 VIP plus recording test agents), a
//! client namespace checks who answers for the VIP.

mod common;

use common::{Lab, KEY, TIMEOUT};
use serde_json::Value;
use std::os::unix::fs::PermissionsExt;
use std::time::Instant;

const VIP: &str = "192.0.2.100";

fn ha_cf(keepalive: &str, deadtime: &str, auto_failback: &str) -> String {
    format!(
        "keepalive {keepalive}\ndeadtime {deadtime}\ninitdead {deadtime}\nudpport 694\n\
         bcast eth0\nbcast eth1\nauto_failback {auto_failback}\nnode n1 n2\n"
    )
}

/// A heartbeat-style agent that records `NODE NAME ACTION` in the lab's
/// shared log and keeps its state in a per-node file. `fail_start` makes
/// start fail on that node.
fn recorder(lab: &Lab, node: usize, fail_start: bool) -> String {
    let log = lab.dir.path().join("actions.log");
    let state = lab.node_dir(node).join("rec-state");
    format!(
        "#!/bin/sh\n\
         name=\"$1\"; action=\"$2\"\n\
         mkdir -p {state}\n\
         case \"$action\" in\n\
         start) echo \"n{node} $name start\" >> {log}; {fail} touch {state}/\"$name\" ;;\n\
         stop) echo \"n{node} $name stop\" >> {log}; rm -f {state}/\"$name\" ;;\n\
         status) if [ -e {state}/\"$name\" ]; then echo running; else echo stopped; fi ;;\n\
         esac\n\
         exit 0\n",
        state = state.display(),
        log = log.display(),
        fail = if fail_start { "exit 1;" } else { "" },
    )
}

fn install_agent(lab: &Lab, node: usize, name: &str, text: &str) {
    let dir = lab.config_dir(node).join("resource.d");
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
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

fn actions(lab: &Lab) -> Vec<String> {
    std::fs::read_to_string(lab.dir.path().join("actions.log"))
        .unwrap_or_default()
        .lines()
        .map(String::from)
        .collect()
}

fn group<'a>(s: &'a Value, id: &str) -> Option<&'a Value> {
    s["groups"].as_array()?.iter().find(|g| g["id"] == id)
}

/// (owner, state) of group `id` as node i sees it.
fn owner(lab: &Lab, i: usize, id: &str) -> Option<(String, String)> {
    let s = lab.status(i)?;
    let g = group(&s, id)?;
    Some((
        g["owner"].as_str().unwrap_or("").to_string(),
        g["state"].as_str()?.to_string(),
    ))
}

fn wait_started_on(lab: &Lab, id: &str, node: &str) {
    lab.wait_for(&format!("{id} started on {node}"), || {
        (1..=2).all(|i| {
            // A node that is not running answers nothing: skip it.
            lab.status(i).is_none()
                || owner(lab, i, id) == Some((node.to_string(), "started".to_string()))
        })
    });
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
    lab.wait_for(&format!("{VIP} answers the client from {host} ({want})"), || {
        let _ = lab.exec("c", &["ip", "neigh", "flush", "dev", "eth0"]);
        let ping = lab.exec("c", &["ping", "-c", "1", "-W", "1", VIP]);
        if !ping.status.success() {
            return false;
        }
        let n = lab.exec("c", &["ip", "neigh", "show", VIP, "dev", "eth0"]);
        String::from_utf8_lossy(&n.stdout).contains(&want)
    });
}

#[test]
fn vip_moves_with_standby_and_takeover_and_answers_from_the_holder_only() {
    let id = format!("IPaddr2::{VIP}/24/eth0:0");
    let mut lab = lab(&format!("n1 {id} rec::a\n"), "off", "1");
    lab.start_all();
    wait_started_on(&lab, &id, "n1");
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
