//! Fencing in the netns lab: the lab's fence agent (resources/fence/
//! fence_hbd_lab) kills a node's processes and cuts its links; hbd runs
//! agents for `hbctl fence NODE` and reports the outcome; the watchdog is fed
//! only while hbd's loop turns (a regular file stands in for the device).
//! End to end: a hung holder is fenced before its group moves, and a failing
//! fence agent keeps the survivor from starting the group.

mod common;

use common::*;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

fn agent() -> PathBuf {
    repo().join("resources/fence/fence_hbd_lab")
}

/// Runs fence_hbd_lab (in the root namespace, as an operator would) with
/// `stdin` lines.
fn run_agent(stdin: &str) -> Output {
    let mut c = Command::new(agent())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run fence_hbd_lab");
    c.stdin.take().unwrap().write_all(stdin.as_bytes()).unwrap();
    c.wait_with_output().unwrap()
}

/// A long sleep inside host's namespace, reaped by a thread of its own so
/// that a SIGKILL leaves no zombie behind.
fn sleeper(lab: &Lab, host: &str) -> i32 {
    let mut cmd = Command::new("ip");
    cmd.args(["netns", "exec", &lab.ns(host), "sleep", "600"]);
    die_with_test(&mut cmd);
    let mut child: Child = cmd.spawn().expect("spawn sleep");
    let pid = child.id() as i32;
    std::thread::spawn(move || {
        let _ = child.wait();
    });
    pid
}

/// Whether host's link on `net` is up at the switch.
fn link_up(lab: &Lab, host: &str, net: usize) -> bool {
    let out = Command::new("ip")
        .args([
            "-n",
            &lab.ns("sw"),
            "-o",
            "link",
            "show",
            &format!("{host}e{net}"),
        ])
        .output()
        .unwrap();
    let s = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "ip link show: {s}");
    // The flags of an interface set down lose UP: <BROADCAST,MULTICAST>.
    s.split_once('<')
        .and_then(|(_, r)| r.split_once('>'))
        .is_some_and(|(flags, _)| flags.split(',').any(|f| f == "UP"))
}

fn show(what: &str, out: &Output) -> String {
    format!(
        "{what}: {}\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn lab_agent_kills_a_node_and_cuts_its_links() {
    let lab = Lab::new(2, 2);
    let victim = sleeper(&lab, "n2");
    let bystander = sleeper(&lab, "n1");
    let status = |plug: &str| run_agent(&format!("lab={}\nplug={plug}\naction=status\n", lab.name));
    lab.wait_for("the sleeper runs in n2", || {
        status("n2").status.code() == Some(0)
    });

    let meta = run_agent("action=metadata\n");
    assert!(meta.status.success(), "{}", show("metadata", &meta));
    assert!(
        String::from_utf8_lossy(&meta.stdout).contains("<resource-agent name=\"fence_hbd_lab\"")
    );

    let off = run_agent(&format!("action=off\nplug=n2\nlab={}\n", lab.name));
    assert!(off.status.success(), "{}", show("off", &off));
    assert!(wait_gone(victim), "n2's process survived the fencing");
    assert!(!link_up(&lab, "n2", 0) && !link_up(&lab, "n2", 1));
    // Only n2 was touched.
    assert!(alive(bystander));
    assert!(link_up(&lab, "n1", 0) && link_up(&lab, "n1", 1));
    let st = status("n2");
    assert_eq!(st.status.code(), Some(2), "{}", show("status", &st));

    let on = run_agent(&format!("action=on\nplug=n2\nlab={}\n", lab.name));
    assert!(on.status.success(), "{}", show("on", &on));
    assert!(link_up(&lab, "n2", 0) && link_up(&lab, "n2", 1));

    // A lab that does not exist is a failure, never a success.
    let bad = run_agent("action=off\nplug=n2\nlab=hbdt-no-such-lab\n");
    assert_eq!(bad.status.code(), Some(1), "{}", show("bad lab", &bad));
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(bystander),
        nix::sys::signal::Signal::SIGKILL,
    );
}

fn ha_cf(extra: &str) -> String {
    format!(
        "keepalive 100ms\ndeadtime 1\ninitdead 1\nudpport 694\nbcast eth0\nbcast eth1\n\
         auto_failback on\nnode n1 n2\n{extra}"
    )
}

#[test]
fn hbctl_fence_runs_the_agent_and_reports() {
    let mut lab = Lab::new(2, 2);
    // n1 fences with the lab's agent; n2's line names a lab that does not
    // exist, so its fencing fails.
    lab.configure(
        &ha_cf(&format!(
            "stonith_host n1 fence_hbd_lab lab={}\nstonith_host n2 fence_hbd_lab lab=hbdt-nolab\n",
            lab.name
        )),
        KEY,
    );
    lab.start_all();
    lab.wait_all_up(&[1, 2]);
    let victim = sleeper(&lab, "n2");

    let out = lab.hbctl(2, &["fence", "n1"]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        show("fence from n2", &out)
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("fencing n1 failed: fence_hbd_lab exited with code 1"),
        "{err}"
    );
    assert!(lab.exited(1).is_none(), "n1 must survive a failed fencing");
    assert!(lab.log(2).contains("FENCING FAILED"));

    let out = lab.hbctl(1, &["fence", "n1"]);
    assert_eq!(out.status.code(), Some(1), "{}", show("fence self", &out));
    assert!(String::from_utf8_lossy(&out.stderr).contains("does not fence itself"));
    let out = lab.hbctl(1, &["fence", "n9"]);
    assert_eq!(out.status.code(), Some(3), "{}", show("fence n9", &out));

    let out = lab.hbctl(1, &["fence", "n2"]);
    assert!(out.status.success(), "{}", show("fence n2", &out));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "n2 fenced: fence_hbd_lab (reboot) succeeded"
    );
    assert!(wait_gone(victim));
    let hbd2 = lab.pid(2);
    assert!(wait_gone(hbd2), "n2's hbd survived the fencing");
    lab.wait_for("n1 sees n2 dead", || {
        lab.node_state(1, "n2").as_deref() == Some("dead")
    });
    let log = lab.log(1);
    assert!(log.contains("node fenced"), "{log}");
    assert!(
        log.contains("fence_hbd_lab: n2 is off"),
        "agent output logged: {log}"
    );
}

fn feeds(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap_or_default()
}

fn one_node_watchdog(lab: &mut Lab, wd: &Path, env: &[(&str, &str)]) {
    std::fs::write(wd, "").unwrap();
    lab.write(
        1,
        "ha.cf",
        &format!(
            "keepalive 100ms\ndeadtime 1\ninitdead 1\nbcast eth0\nnode n1\nwatchdog {}\n",
            wd.display()
        ),
    );
    lab.write(1, "authkeys", KEY);
    lab.start_with_env(1, env);
    lab.wait_for("the watchdog is fed", || feeds(wd).len() >= 3);
}

#[test]
fn watchdog_is_disarmed_at_orderly_exit() {
    let mut lab = Lab::new(1, 1);
    let wd = lab.dir.path().join("watchdog");
    one_node_watchdog(&mut lab, &wd, &[]);
    assert!(lab.stop(1).success());
    let s = feeds(&wd);
    assert!(s.ends_with('V'), "magic close: {s:?}");
    assert!(s[..s.len() - 1].chars().all(|c| c == '.'), "{s:?}");
    assert!(lab.log(1).contains("watchdog disarmed"));
}

#[test]
fn watchdog_starves_when_the_loop_stalls() {
    let mut lab = Lab::new(1, 1);
    let wd = lab.dir.path().join("watchdog");
    let stall = lab.dir.path().join("stall");
    let stall_s = stall.display().to_string();
    one_node_watchdog(&mut lab, &wd, &[("HBD_TEST_LOOP_STALL", &stall_s)]);
    std::fs::write(&stall, "").unwrap();
    wait_logs(&lab, "the feeder notices the stall", || {
        lab.log(1).contains("DAEMON LOOP STALLED")
    });
    let starved = feeds(&wd);
    // Several feed intervals (deadtime/4) go by without a feed.
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(feeds(&wd), starved, "fed after the stall");
    // The loop comes back: feeding does not resume, and the exit leaves the
    // device armed (the machine resets, as it must once peers took over).
    std::fs::remove_file(&stall).unwrap();
    assert!(lab.stop(1).success());
    let s = feeds(&wd);
    assert_eq!(s, starved);
    assert!(!s.contains('V'), "{s:?}");
    assert!(lab.log(1).contains("watchdog left armed"));
}

// ---- end to end, with the groups machine of issue 13 ----

/// A heartbeat-style agent recording `NODE NAME start|stop` in actions.log.
fn recorder(lab: &Lab, node: usize) -> String {
    let log = lab.dir.path().join("actions.log");
    let state = lab.node_dir(node).join("rec-state");
    format!(
        "#!/bin/sh\nname=\"$1\"; action=\"$2\"\nmkdir -p {state}\n\
         case \"$action\" in\n\
         start) echo \"n{node} $name start\" >> {log}; touch {state}/\"$name\" ;;\n\
         stop) echo \"n{node} $name stop\" >> {log}; rm -f {state}/\"$name\" ;;\n\
         status) if [ -e {state}/\"$name\" ]; then echo running; else echo stopped; fi ;;\n\
         esac\nexit 0\n",
        state = state.display(),
        log = log.display(),
    )
}

/// A fence agent that records `fenced PLUG` (or `fence-failed PLUG`) in
/// actions.log around the lab agent (`ok`) or a failure.
fn fence_wrapper(lab: &Lab, ok: bool) -> PathBuf {
    let p = lab.dir.path().join("fence_rec");
    let log = lab.dir.path().join("actions.log");
    let body = if ok {
        format!(
            "in=$(cat)\nplug=$(printf '%s\\n' \"$in\" | sed -n 's/^plug=//p')\n\
             printf '%s\\n' \"$in\" | {agent} || exit 1\n\
             echo \"fenced $plug\" >> {log}\nexit 0\n",
            agent = agent().display(),
            log = log.display()
        )
    } else {
        format!(
            "in=$(cat)\nplug=$(printf '%s\\n' \"$in\" | sed -n 's/^plug=//p')\n\
             echo \"fence-failed $plug\" >> {log}\necho 'no power switch answers' >&2\nexit 1\n",
            log = log.display()
        )
    };
    std::fs::write(&p, format!("#!/bin/sh\n{body}")).unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    p
}

fn actions(lab: &Lab) -> Vec<String> {
    std::fs::read_to_string(lab.dir.path().join("actions.log"))
        .unwrap_or_default()
        .lines()
        .map(String::from)
        .collect()
}

/// Waits until `f` holds, then panics with the logs. Unlike
/// `Lab::wait_for` it never asks a daemon for its status: a stopped
/// (SIGSTOP) hbd would never answer.
fn wait_logs(lab: &Lab, what: &str, mut f: impl FnMut() -> bool) {
    let start = Instant::now();
    while start.elapsed() < TIMEOUT {
        if f() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!(
        "timed out waiting for: {what}\nactions: {:?}\n--- n1 ---\n{}\n--- n2 ---\n{}",
        actions(lab),
        lab.log(1),
        lab.log(2)
    );
}

fn fenced_lab(ok: bool) -> Lab {
    let mut lab = Lab::new(2, 2);
    let wrapper = fence_wrapper(&lab, ok);
    lab.configure(
        &ha_cf(&format!(
            "stonith_host * {} lab={}\n",
            wrapper.display(),
            lab.name
        )),
        KEY,
    );
    for i in 1..=2 {
        lab.write(i, "haresources", "n1 rec::a\n");
        let dir = lab.config_dir(i).join("resource.d");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("rec"), recorder(&lab, i)).unwrap();
        std::fs::set_permissions(dir.join("rec"), std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    lab.start_all();
    lab.wait_all_up(&[1, 2]);
    lab.wait_for("n1 runs the group", || {
        actions(&lab).contains(&"n1 a start".to_string())
    });
    lab
}

#[test]
fn a_hung_holder_is_fenced_before_the_group_moves() {
    let lab = fenced_lab(true);
    // hbd on n1 hangs: no heartbeats, no stop of its group.
    lab.signal(1, nix::sys::signal::Signal::SIGSTOP);
    wait_logs(&lab, "n2 takes the group over", || {
        actions(&lab).contains(&"n2 a start".to_string())
    });
    let a = actions(&lab);
    let fenced = a.iter().position(|l| l == "fenced n1");
    let started = a.iter().position(|l| l == "n2 a start");
    assert!(
        fenced.is_some() && fenced < started,
        "n1 must be fenced before n2 starts the group: {a:?}"
    );
}

#[test]
fn a_failing_fence_agent_keeps_the_survivor_from_starting_the_group() {
    let lab = fenced_lab(false);
    lab.signal(1, nix::sys::signal::Signal::SIGSTOP);
    wait_logs(&lab, "n2 tries to fence n1", || {
        actions(&lab).contains(&"fence-failed n1".to_string())
    });
    wait_logs(&lab, "n2 reports the failed fencing", || {
        lab.log(2).contains("FENCING FAILED")
    });
    // Several deadtimes later the group still has not started on n2.
    let until = Instant::now() + Duration::from_secs(5);
    while Instant::now() < until {
        assert!(
            !actions(&lab).contains(&"n2 a start".to_string()),
            "n2 started the group without fencing n1: {:?}",
            actions(&lab)
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    lab.signal(1, nix::sys::signal::Signal::SIGCONT);
}
