//! Built-in monitoring and jobs end to end: two hbd daemons in the netns lab
//! run a group with a VIP, a real web server (hbd's `daemon` agent running
//! python3's http.server) and `mon`, with `[[check]]`s and `[[job]]`s in
//! cluster.toml.

mod common;

use common::{Lab, KEY};
use serde_json::Value;
use std::time::Duration;

const VIP: &str = "192.0.2.60";

fn ha_cf(auto_failback: &str) -> String {
    format!(
        "keepalive 100ms\ndeadtime 1\ninitdead 1\nudpport 694\nbcast eth0\nbcast eth1\n\
         auto_failback {auto_failback}\nnode n1 n2\n"
    )
}

fn id() -> String {
    format!("IPaddr2::{VIP}/24/eth0:0")
}

/// A lab whose group is VIP + web server + mon, with `extra` appended to
/// both nodes' cluster.toml.
fn lab(auto_failback: &str, extra: &str) -> Lab {
    let lab = Lab::new(2, 2);
    lab.configure(&ha_cf(auto_failback), KEY);
    for i in 1..=2 {
        let www = lab.node_dir(i).join("www");
        std::fs::create_dir_all(&www).unwrap();
        std::fs::write(www.join("index.html"), format!("n{i}\n")).unwrap();
        lab.write(
            i,
            "haresources",
            &format!(
                "n1 {} daemon::{}::/usr/bin/python3::-m::http.server::8080::--directory::{} mon\n",
                id(),
                pidfile(&lab, i),
                www.display()
            ),
        );
        lab.write(
            i,
            "cluster.toml",
            &format!(
                "[resource_defaults]\narp_probe = \"0s\"\n\n[resource.daemon]\nstop_timeout = \"20s\"\n\n\
                 [notify]\ncommand = \"echo \\\"$HBD_EVENT $HBD_NODE $HBD_CHECK\\\" >> {}\"\n\n{extra}",
                lab.dir.path().join("notices.log").display()
            ),
        );
    }
    lab
}

fn pidfile(lab: &Lab, i: usize) -> String {
    lab.node_dir(i).join("web.pid").display().to_string()
}

const WEB_CHECK: &str =
    "[[check]]\nname = \"web\"\ntype = \"http\"\nurl = \"http://127.0.0.1:8080/\"\n\
                         interval = \"500ms\"\ntimeout = \"400ms\"\nfall = 2\nrise = 1\n";

fn group(s: &Value) -> Option<&Value> {
    s["groups"].as_array()?.first()
}

fn owner(lab: &Lab, i: usize) -> Option<(String, String)> {
    let s = lab.status(i)?;
    let g = group(&s)?;
    Some((
        g["owner"].as_str().unwrap_or("").to_string(),
        g["state"].as_str()?.to_string(),
    ))
}

fn wait_started_on(lab: &Lab, observers: &[usize], node: &str) {
    lab.wait_for(&format!("group started on {node}"), || {
        observers
            .iter()
            .all(|&i| owner(lab, i) == Some((node.to_string(), "started".to_string())))
    });
}

fn check_state(lab: &Lab, i: usize) -> Option<String> {
    let s = lab.status(i)?;
    group(&s)?["checks"][0]["state"].as_str().map(String::from)
}

/// Kills node i's web server (the service dies under hbd's feet).
fn kill_web(lab: &Lab, i: usize) {
    let pid: i32 = std::fs::read_to_string(pidfile(lab, i))
        .expect("web pid file")
        .trim()
        .parse()
        .unwrap();
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGKILL,
    );
}

/// What the client gets from the VIP's web server.
fn served_by(lab: &Lab) -> String {
    let out = lab.exec(
        "c",
        &[
            "python3",
            "-c",
            &format!(
                "import urllib.request; print(urllib.request.urlopen('http://{VIP}:8080/', timeout=1).read().decode().strip())"
            ),
        ],
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn notices(lab: &Lab) -> String {
    std::fs::read_to_string(lab.dir.path().join("notices.log")).unwrap_or_default()
}

#[test]
fn a_dead_service_moves_its_group_and_the_node_does_not_get_it_back() {
    let mut lab = lab("on", WEB_CHECK);
    lab.start_all();
    wait_started_on(&lab, &[1, 2], "n1");
    lab.wait_for("check ok on n1", || {
        check_state(&lab, 1).as_deref() == Some("ok")
    });
    assert_eq!(check_state(&lab, 2).as_deref(), Some("idle"));
    assert_eq!(served_by(&lab), "n1");

    kill_web(&lab, 1);
    wait_started_on(&lab, &[1, 2], "n2");
    lab.wait_for("the client is served by n2", || served_by(&lab) == "n2");
    let s = lab.status(1).unwrap();
    let g = group(&s).unwrap();
    assert!(
        g["unhealthy"]
            .as_str()
            .unwrap()
            .contains("check web failed"),
        "{g}"
    );
    lab.wait_for("notices of the failure", || {
        let n = notices(&lab);
        n.contains("check-failed n1 web") && n.contains("move n1 web")
    });
    // auto_failback on, but n1 is unhealthy: the group stays on n2.
    std::thread::sleep(Duration::from_secs(3));
    wait_started_on(&lab, &[1, 2], "n2");
    // Now it fails on n2 too: both unhealthy, it stays (no ping-pong).
    kill_web(&lab, 2);
    lab.wait_for("n2 unhealthy", || {
        lab.status(2)
            .and_then(|s| group(&s).map(|g| !g["unhealthy"].is_null()))
            .unwrap_or(false)
    });
    std::thread::sleep(Duration::from_secs(3));
    wait_started_on(&lab, &[1, 2], "n2");
    lab.wait_for("a stay notice", || notices(&lab).contains("stay n2 web"));
    // The operator fixed n1: clear brings the group home (auto_failback).
    let out = lab.hbctl(1, &["clear", &id()]);
    assert!(out.status.success(), "{out:?}");
    wait_started_on(&lab, &[1, 2], "n1");
    lab.wait_for("the client is served by n1", || served_by(&lab) == "n1");
    let text = String::from_utf8_lossy(&lab.hbctl(2, &["status"]).stdout).to_string();
    assert!(text.contains("UNHEALTHY here"), "{text}");
    assert!(text.contains("check idle"), "{text}");
}

#[test]
fn restart_in_place_is_tried_first() {
    let check = WEB_CHECK.replace(
        "rise = 1\n",
        "rise = 1\naction = \"restart\"\nresource = \"daemon\"\nrestarts = 1\nrestart_window = \"10m\"\n",
    );
    let mut lab = lab("off", &check);
    lab.start_all();
    wait_started_on(&lab, &[1, 2], "n1");
    lab.wait_for("check ok on n1", || {
        check_state(&lab, 1).as_deref() == Some("ok")
    });
    let first = std::fs::read_to_string(pidfile(&lab, 1)).unwrap();
    kill_web(&lab, 1);
    // Restarted in place: a new server on n1, the group did not move.
    lab.wait_for("the web server restarted on n1", || {
        std::fs::read_to_string(pidfile(&lab, 1)).is_ok_and(|p| p != first)
            && check_state(&lab, 1).as_deref() == Some("ok")
    });
    wait_started_on(&lab, &[1, 2], "n1");
    assert!(
        notices(&lab).contains("restart n1 web"),
        "{}",
        notices(&lab)
    );
    // Restarts used up: the next failure moves the group.
    kill_web(&lab, 1);
    wait_started_on(&lab, &[1, 2], "n2");
    lab.wait_for("the client is served by n2", || served_by(&lab) == "n2");
}
