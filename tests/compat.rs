//! heartbeat's `cl_status`, `hb_standby` and `hb_takeover` (hbd-compat,
//! called by those names as the package links it) against two real hbd
//! daemons in the netns lab: heartbeat's words and exit codes.

mod common;

use common::{install_agent, recorder, wait_started_on, Lab, KEY};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const COMPAT: &str = env!("CARGO_BIN_EXE_hbd-compat");

/// `name` as a link to hbd-compat in `dir`, as the package installs it.
fn link(dir: &Path, name: &str) -> PathBuf {
    let p = dir.join(name);
    std::os::unix::fs::symlink(COMPAT, &p).unwrap();
    p
}

fn run(lab: &Lab, node: usize, cmd: &Path, args: &[&str]) -> (String, i32) {
    let out: Output = Command::new(cmd)
        .args(args)
        .env("HBD_RUN_DIR", lab.run_dir(node))
        .output()
        .expect("run compat command");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    eprintln!(
        "n{node}: {} {args:?} -> {:?}\n{text}{}",
        cmd.display(),
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
    );
    (text, out.status.code().unwrap_or(-1))
}

#[test]
fn cl_status_hb_standby_and_hb_takeover_answer_as_heartbeat() {
    let mut lab = Lab::new(2, 1);
    lab.configure(
        "keepalive 100ms\ndeadtime 1\ninitdead 1\nudpport 694\nbcast eth0\n\
         auto_failback off\nnode n1 n2\n",
        KEY,
    );
    for i in 1..=2 {
        lab.write(i, "haresources", "n1 rec::a\n");
        install_agent(&lab, i, "rec", &recorder(&lab, i, false));
    }
    let bin = tempfile::tempdir().unwrap();
    let cl_status = link(bin.path(), "cl_status");
    let hb_standby = link(bin.path(), "hb_standby");
    let hb_takeover = link(bin.path(), "hb_takeover");

    // Not running yet: heartbeat's sentence, exit 1.
    let (out, code) = run(&lab, 1, &cl_status, &["hbstatus"]);
    assert_eq!(
        (out.as_str(), code),
        ("Heartbeat is stopped on this machine.\n", 1)
    );

    lab.start_all();
    lab.wait_all_up(&[1, 2]);
    wait_started_on(&lab, &[1, 2], "rec::a", "n1");

    let (out, code) = run(&lab, 1, &cl_status, &["hbstatus"]);
    assert_eq!(
        (out.as_str(), code),
        ("Heartbeat is running on this machine.\n", 0)
    );
    let (out, code) = run(&lab, 1, &cl_status, &["listnodes"]);
    assert_eq!((out.as_str(), code), ("n1\nn2\n", 0));
    let (out, code) = run(&lab, 1, &cl_status, &["nodestatus", "n2"]);
    assert_eq!((out.as_str(), code), ("active\n", 0));
    let (out, code) = run(&lab, 1, &cl_status, &["nodestatus", "-m", "N2"]);
    assert_eq!((out.as_str(), code), ("The cluster node N2 is active\n", 0));
    let (_, code) = run(&lab, 1, &cl_status, &["nodestatus", "n9"]);
    assert_eq!(code, 11);
    let (out, code) = run(&lab, 1, &cl_status, &["listhblinks", "-v", "n2"]);
    assert_eq!((out.as_str(), code), ("\tbcast eth0\tup\n", 0));
    let (out, code) = run(&lab, 1, &cl_status, &["hblinkstatus", "n2", "eth0"]);
    assert_eq!((out.as_str(), code), ("up\n", 0));
    let (out, _) = run(&lab, 1, &cl_status, &["rscstatus"]);
    assert_eq!(out, "local\n");
    let (out, _) = run(&lab, 2, &cl_status, &["rscstatus"]);
    assert_eq!(out, "none\n");

    // hb_standby on n1: the group goes to n2 (returns once asked, as heartbeat).
    let (_, code) = run(&lab, 1, &hb_standby, &[]);
    assert_eq!(code, 0);
    wait_started_on(&lab, &[1, 2], "rec::a", "n2");
    lab.wait_for("n2 holds a foreign group", || {
        run(&lab, 2, &cl_status, &["rscstatus"]).0 == "foreign\n"
    });
    // hb_takeover on n1 brings it back; a scope heartbeat did not know is
    // refused with the usage, exit 1.
    let (_, code) = run(&lab, 1, &hb_takeover, &["all"]);
    assert_eq!(code, 0);
    wait_started_on(&lab, &[1, 2], "rec::a", "n1");
    let (_, code) = run(&lab, 1, &hb_takeover, &["sideways"]);
    assert_eq!(code, 1);

    // n2 crashes: dead, exit 1.
    lab.kill(2);
    lab.wait_for("n1 sees n2 dead", || {
        run(&lab, 1, &cl_status, &["nodestatus", "n2"]) == ("dead\n".to_string(), 1)
    });
    let (out, code) = run(&lab, 1, &cl_status, &["hblinkstatus", "n2", "bcast eth0"]);
    assert_eq!((out.as_str(), code), ("dead\n", 1));
}
