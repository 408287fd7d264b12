//! ha.cf `realtime` (issue 15): with it on (heartbeat's default) hbd's
//! keepalive path (the daemon loop's thread and the receive thread
//! `hbd-rt-net`) runs at SCHED_RR and every other thread at SCHED_OTHER;
//! what an agent starts never inherits the realtime policy. With it off no
//! thread is realtime. Policies only: no timing is asserted.

mod common;

use common::*;
use std::fs;
use std::path::Path;

/// Kills a pid at the end of the test (the agent's child outlives hbd).
struct KillPid(i32);

impl Drop for KillPid {
    fn drop(&mut self) {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(self.0),
            nix::sys::signal::Signal::SIGKILL,
        );
    }
}

/// The `policy` line of /proc/.../sched (0 OTHER, 1 FIFO, 2 RR).
fn policy_of(sched: &Path) -> Option<u32> {
    let text = fs::read_to_string(sched).ok()?;
    text.lines()
        .find(|l| l.starts_with("policy"))?
        .split(':')
        .nth(1)?
        .trim()
        .parse()
        .ok()
}

/// (thread id, name, policy) of every thread of `pid`.
fn threads(pid: i32) -> Vec<(i32, String, u32)> {
    let mut out = Vec::new();
    for e in fs::read_dir(format!("/proc/{pid}/task")).unwrap() {
        let e = e.unwrap();
        let tid: i32 = e.file_name().to_str().unwrap().parse().unwrap();
        let comm = fs::read_to_string(e.path().join("comm")).unwrap_or_default();
        if let Some(p) = policy_of(&e.path().join("sched")) {
            out.push((tid, comm.trim().to_string(), p));
        }
    }
    out
}

fn realtime(p: u32) -> bool {
    p == 1 || p == 2
}

/// One node running the group `rtprobe`, whose agent records its own
/// policy and leaves a `sleep` running; returns (lab, agent's policy line,
/// the sleep's pid).
fn run(realtime_line: &str) -> (Lab, String, KillPid) {
    let mut lab = Lab::new(1, 1);
    let state = lab.node_dir(1).join("probe");
    fs::create_dir_all(&state).unwrap();
    lab.configure(
        &format!("{}{realtime_line}", ha_cf(1, "bcast eth0", "100ms", "1")),
        KEY,
    );
    lab.write(1, "haresources", "n1 rtprobe\n");
    install_agent(
        &lab,
        1,
        "rtprobe",
        &format!(
            "#!/bin/sh\n\
             s={s}\n\
             case \"$1\" in\n\
             start) grep '^policy' /proc/$$/sched > $s/agent.new && mv $s/agent.new $s/agent\n\
             \x20      sleep 600 </dev/null >/dev/null 2>&1 &\n\
             \x20      echo $! > $s/child.new && mv $s/child.new $s/child ;;\n\
             stop) [ -f $s/child ] && kill $(cat $s/child); rm -f $s/child ;;\n\
             status) if [ -f $s/child ]; then echo running; else echo stopped; fi ;;\n\
             esac\n\
             exit 0\n",
            s = state.display()
        ),
    );
    lab.start(1);
    lab.wait_for("the agent's child", || state.join("child").exists());
    let child = read_pid(&state.join("child")).expect("child pid");
    let kill = KillPid(child);
    let agent = fs::read_to_string(state.join("agent")).unwrap();
    (lab, agent, kill)
}

#[test]
fn realtime_on_makes_the_keepalive_path_rr_and_nothing_else() {
    let (lab, agent, child) = run("");
    if lab.log(1).contains("realtime on, but not granted") {
        // A container without CAP_SYS_NICE or an RT budget: hbd warned and
        // runs normally, which the off test covers.
        eprintln!("SCHED_RR refused here: skipped\n{}", lab.log(1));
        return;
    }
    let pid = lab.pid(1);
    let ts = threads(pid);
    let main = ts.iter().find(|t| t.0 == pid).expect("main thread");
    assert_eq!(
        main.2,
        2,
        "the daemon loop's thread is not SCHED_RR: {ts:?}\n{}",
        lab.log(1)
    );
    let net = ts
        .iter()
        .find(|t| t.1 == "hbd-rt-net")
        .unwrap_or_else(|| panic!("no receive thread: {ts:?}"));
    assert_eq!(net.2, 2, "the receive thread is not SCHED_RR: {ts:?}");
    for t in &ts {
        if t.0 != pid && t.1 != "hbd-rt-net" {
            assert_eq!(t.2, 0, "thread {t:?} runs realtime: {ts:?}");
        }
    }
    assert_eq!(
        agent.split(':').nth(1).map(str::trim),
        Some("0"),
        "the agent runs at policy {agent:?}"
    );
    let p = policy_of(Path::new(&format!("/proc/{}/sched", child.0)));
    assert_eq!(p, Some(0), "the agent's child runs at policy {p:?}");
}

#[test]
fn realtime_off_leaves_every_thread_normal() {
    let (lab, agent, child) = run("realtime off\n");
    let pid = lab.pid(1);
    let ts = threads(pid);
    assert!(ts.iter().any(|t| t.1 == "hbd-rt-net"), "{ts:?}");
    for t in &ts {
        assert!(!realtime(t.2), "thread {t:?} runs realtime: {ts:?}");
    }
    assert_eq!(
        agent.split(':').nth(1).map(str::trim),
        Some("0"),
        "{agent:?}"
    );
    let p = policy_of(Path::new(&format!("/proc/{}/sched", child.0)));
    assert_eq!(p, Some(0));
}
