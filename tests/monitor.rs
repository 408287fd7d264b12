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
    let s = lab.status(2).unwrap();
    let g = group(&s).unwrap();
    assert_eq!(g["unhealthy_on"], serde_json::json!(["n1", "n2"]), "{g}");
    assert!(
        g["events"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e.as_str().unwrap().contains("stay web")),
        "{g}"
    );
    let text = String::from_utf8_lossy(&lab.hbctl(2, &["status"]).stdout).to_string();
    assert!(
        text.contains("unhealthy on n1") && text.contains("last event:"),
        "{text}"
    );
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

/// (node, scheduled) lines of the jobs' shared log.
fn job_runs(lab: &Lab) -> Vec<(String, String)> {
    std::fs::read_to_string(lab.dir.path().join("jobs.log"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| {
            let (a, b) = l.split_once(' ')?;
            Some((a.to_string(), b.to_string()))
        })
        .collect()
}

#[test]
fn jobs_run_on_the_holder_once_per_time_and_follow_a_failover() {
    let log = "JOBLOG";
    let jobs = format!(
        "[[job]]\nname = \"tick\"\nschedule = \"* * * * *\"\n\
         command = \"echo \\\"$NODE $HBD_SCHEDULED\\\" >> {log}\"\n\n\
         [[job]]\nname = \"boot\"\nschedule = \"@reboot\"\n\
         command = \"echo \\\"$NODE boot\\\" >> {log}\"\n"
    );
    let mut lab = lab("off", "");
    let path = lab.dir.path().join("jobs.log").display().to_string();
    for i in 1..=2 {
        // Each node's copy names itself.
        let text = jobs
            .replace("JOBLOG", &path)
            .replace("$NODE", &format!("n{i}"));
        let base = std::fs::read_to_string(lab.config_dir(i).join("cluster.toml")).unwrap();
        lab.write(i, "cluster.toml", &format!("{base}\n{text}"));
    }
    lab.start_all();
    wait_started_on(&lab, &[1, 2], "n1");
    lab.wait_for("@reboot ran on n1", || {
        job_runs(&lab).contains(&("n1".into(), "boot".into()))
    });
    // Wait (up to a minute and a half) for a minute's run on n1.
    let t0 = std::time::Instant::now();
    while !job_runs(&lab).iter().any(|(n, s)| n == "n1" && s != "boot") {
        assert!(
            t0.elapsed() < Duration::from_secs(90),
            "no minute run on n1: {:?}",
            job_runs(&lab)
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let first: i64 = job_runs(&lab)
        .iter()
        .find(|(n, s)| n == "n1" && s != "boot")
        .unwrap()
        .1
        .parse()
        .unwrap();
    // Hand the group over right away, within that minute: n2 must not run
    // that minute again.
    let out = lab.hbctl(1, &["standby"]);
    assert!(out.status.success(), "{out:?}");
    wait_started_on(&lab, &[1, 2], "n2");
    lab.wait_for("@reboot ran on n2", || {
        job_runs(&lab).contains(&("n2".into(), "boot".into()))
    });
    let t0 = std::time::Instant::now();
    while !job_runs(&lab).iter().any(|(n, s)| n == "n2" && s != "boot") {
        assert!(
            t0.elapsed() < Duration::from_secs(90),
            "no minute run on n2: {:?}",
            job_runs(&lab)
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let runs = job_runs(&lab);
    let times: Vec<i64> = runs
        .iter()
        .filter(|(_, s)| s != "boot")
        .map(|(_, s)| s.parse().unwrap())
        .collect();
    let mut unique = times.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), times.len(), "a time ran twice: {runs:?}");
    assert!(times.iter().all(|t| t % 60 == 0 && *t >= first), "{runs:?}");
    let n2_first: i64 = runs
        .iter()
        .find(|(n, s)| n == "n2" && s != "boot")
        .unwrap()
        .1
        .parse()
        .unwrap();
    assert!(n2_first > first, "{runs:?}");
    // hbctl jobs lists both, with their last result and next time.
    let out = lab.hbctl(2, &["jobs"]);
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(out.status.success(), "{out:?}");
    assert!(
        text.contains("tick") && text.contains("boot") && text.contains("exit 0"),
        "{text}"
    );
    let s = lab.status(2).unwrap();
    let jobs = group(&s).unwrap()["jobs"].as_array().unwrap().clone();
    assert_eq!(jobs.len(), 2, "{jobs:?}");
}

/// SIGHUP with other checks keeps the running ones (they change at the next
/// start, as haresources does) and the daemon goes on answering.
#[test]
fn reload_with_other_checks_keeps_the_running_ones() {
    let mut lab = lab("off", WEB_CHECK);
    lab.start_all();
    wait_started_on(&lab, &[1, 2], "n1");
    let base = std::fs::read_to_string(lab.config_dir(1).join("cluster.toml")).unwrap();
    lab.write(1, "cluster.toml", &base.replace(WEB_CHECK, ""));
    lab.signal(1, nix::sys::signal::Signal::SIGHUP);
    lab.wait_for("the reload is logged", || {
        lab.log(1).contains("take effect at the next start")
    });
    lab.wait_for("check ok on n1", || {
        check_state(&lab, 1).as_deref() == Some("ok")
    });
    wait_started_on(&lab, &[1, 2], "n1");
}
