//! The control socket against local users (issue 14): a flood of idle
//! connections from a user who is not root never locks root out, hbctl
//! gives up on a daemon that does not answer (finding 6), and an account
//! lookup (NSS: getpwnam, getpwuid) that stalls never stops the loop that
//! sends keepalives (finding 7).
//!
//! The stall is real, not simulated: a FIFO bind-mounted over /etc/passwd
//! inside hbd's own mount namespace (`ip netns exec` gave it one), so glibc's
//! `files` backend blocks in open(2) as `ldap` or `sss` does on a hung
//! server. The host's /etc/passwd is never touched.

mod common;

use common::*;
use nix::sys::signal::Signal;
use std::fs;
use std::io::BufRead;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const KA: &str = "200ms";
const DEAD: &str = "2";
/// How long a stall is watched: a few deadtimes.
const WATCH: Duration = Duration::from_secs(8);

/// A child killed (and reaped) when the test ends, also after a panic.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `program` as user nobody (65534, group nogroup, no other groups).
fn as_nobody(program: &str) -> Command {
    let mut c = Command::new("setpriv");
    c.args(["--reuid=65534", "--regid=65534", "--clear-groups", program]);
    c
}

/// Runs `cmd` for at most [`TIMEOUT`]: a daemon that never answers fails
/// the test instead of hanging it. `None`: it was still running.
fn bounded(cmd: &mut Command) -> Option<Output> {
    let child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let mut child = Killed(child);
    let status = wait_child(&mut child.0, TIMEOUT)?;
    Some(Output {
        status,
        stdout: read_all(child.0.stdout.take()),
        stderr: read_all(child.0.stderr.take()),
    })
}

fn read_all(r: Option<impl std::io::Read>) -> Vec<u8> {
    let mut v = Vec::new();
    if let Some(mut r) = r {
        let _ = r.read_to_end(&mut v);
    }
    v
}

/// Root's `hbctl status --json` against node i, bounded.
fn root_status(lab: &Lab, i: usize) -> Option<serde_json::Value> {
    let out = bounded(
        Command::new(HBCTL)
            .arg("--run-dir")
            .arg(lab.run_dir(i))
            .args(["status", "--json"]),
    )?;
    if !out.status.success() {
        return None;
    }
    serde_json::from_slice(&out.stdout).ok()
}

#[test]
fn root_is_answered_while_a_local_user_floods_the_control_socket() {
    let mut lab = Lab::new(1, 1);
    lab.configure(&ha_cf(1, "bcast eth0", KA, DEAD), KEY);
    // nobody may use the socket: the flood comes from a user who is
    // allowed in, the harder case.
    lab.write(1, "cluster.toml", "[control]\ngroup = \"nogroup\"\n");
    lab.start(1);
    lab.wait_for("n1 answers", || lab.status(1).is_some());
    // As nobody: as many connections as the socket takes, none ever sending
    // a byte, each one the daemon closes replaced at once.
    let flood = r#"
import socket, sys, time
path, want = sys.argv[1], int(sys.argv[2])
held = []
def fill():
    while len(held) < want:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.setblocking(False)
        try:
            s.connect(path)
        except OSError:
            s.close()
            return
        held.append(s)
fill()
print(len(held), flush=True)
while True:
    alive = []
    for s in held:
        try:
            if s.recv(65536) == b'':
                s.close()
                continue
        except BlockingIOError:
            pass
        except OSError:
            s.close()
            continue
        alive.append(s)
    held[:] = alive
    fill()
    time.sleep(0.02)
"#;
    let sock = lab.run_dir(1).join("hbd.sock");
    let mut flooder = Killed(
        as_nobody("/usr/bin/python3")
            .args(["-c", flood])
            .arg(&sock)
            .arg("1500")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn the flood"),
    );
    let mut line = String::new();
    std::io::BufReader::new(flooder.0.stdout.take().unwrap())
        .read_line(&mut line)
        .expect("the flood reports");
    let held: usize = line.trim().parse().expect("a count");
    assert!(held >= 100, "the flood holds only {held} connections");
    for round in 0..3 {
        assert!(
            root_status(&lab, 1).is_some(),
            "round {round}: root got no answer while nobody held {held} connections\n{}",
            lab.log(1)
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    assert!(
        flooder.0.try_wait().unwrap().is_none(),
        "the flood ran throughout"
    );
}

#[test]
fn hbctl_gives_up_on_a_socket_that_never_answers() {
    let t = tempfile::tempdir().unwrap();
    // One socket never accepts (the connection waits in the backlog), the
    // other accepts and reads but never answers.
    let silent = t.path().join("backlog.sock");
    let _l1 = std::os::unix::net::UnixListener::bind(&silent).unwrap();
    let mute = t.path().join("mute.sock");
    let l2 = std::os::unix::net::UnixListener::bind(&mute).unwrap();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for s in l2.incoming().flatten() {
            held.push(s);
        }
    });
    for sock in [&silent, &mute] {
        let out = bounded(Command::new(HBCTL).arg("--socket").arg(sock).args([
            "--call-timeout",
            "1",
            "status",
        ]))
        .unwrap_or_else(|| panic!("hbctl against {} never gave up", sock.display()));
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{out:?}");
        assert!(err.contains("hbd did not answer within 1 s"), "{err}");
    }
}

/// Node i's account database stalls until dropped: a FIFO bind-mounted over
/// /etc/passwd in hbd's mount namespace, so every getpwnam/getpwuid there
/// blocks in open(2).
struct PasswdStall {
    pid: i32,
    fifo: PathBuf,
}

impl PasswdStall {
    fn new(lab: &Lab, i: usize) -> PasswdStall {
        let pid = lab.pid(i);
        let ns = |p: &str| fs::read_link(format!("/proc/{p}/ns/mnt")).expect("mount namespace");
        // In this process's namespace it would stall the host's lookups.
        assert_ne!(
            ns("self"),
            ns(&pid.to_string()),
            "hbd shares the test's mount namespace: not stalling its /etc/passwd"
        );
        let fifo = lab.dir.path().join("passwd.fifo");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o644))
            .expect("mkfifo");
        let out = Command::new("nsenter")
            .args(["-t", &pid.to_string(), "-m", "--", "mount", "--bind"])
            .arg(&fifo)
            .arg("/etc/passwd")
            .output()
            .expect("nsenter");
        assert!(out.status.success(), "bind mount: {out:?}");
        PasswdStall { pid, fifo }
    }
}

impl Drop for PasswdStall {
    fn drop(&mut self) {
        let _ = Command::new("nsenter")
            .args([
                "-t",
                &self.pid.to_string(),
                "-m",
                "--",
                "umount",
                "/etc/passwd",
            ])
            .output();
        // Lookups blocked in open(2) get a writer, then EOF: "no such user".
        let _ = fs::OpenOptions::new()
            .write(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(&self.fifo);
    }
}

/// Two nodes up; n1 with `ha_cf_extra` in its ha.cf and `cluster_toml`.
fn pair(ha_cf_extra: &str, cluster_toml: &str) -> Lab {
    let mut lab = Lab::new(2, 1);
    let ha = ha_cf(2, "bcast eth0", KA, DEAD);
    lab.configure(&ha, KEY);
    lab.write(1, "ha.cf", &format!("{ha}{ha_cf_extra}"));
    if !cluster_toml.is_empty() {
        lab.write(1, "cluster.toml", cluster_toml);
    }
    lab.start_all();
    lab.wait_all_up(&[1, 2]);
    lab
}

/// n2 holds n1 up and n1 answers root, at every look until `done` (or for
/// [`WATCH`] without one).
fn n1_keeps_running(lab: &Lab, what: &str, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    loop {
        let seen = lab.node_state(2, "n1");
        assert_eq!(
            seen.as_deref(),
            Some("up"),
            "{what}: n2 lost n1 while n1's account lookups hang\n--- n1 ---\n{}\n--- n2 ---\n{}",
            lab.log(1),
            lab.log(2)
        );
        assert!(
            root_status(lab, 1).is_some(),
            "{what}: n1 does not answer root\n{}",
            lab.log(1)
        );
        if done() && start.elapsed() >= WATCH {
            break;
        }
        assert!(
            start.elapsed() < TIMEOUT * 2,
            "{what}: not done\n{}",
            lab.log(1)
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(!lab.log(2).contains("node dead"), "{}", lab.log(2));
}

#[test]
fn stalled_lookup_for_a_control_caller_does_not_stop_keepalives() {
    // nobody is not in group daemon: only getpwuid(65534) can tell.
    let lab = pair("", "[control]\ngroup = \"daemon\"\n");
    let _stall = PasswdStall::new(&lab, 1);
    let mut caller = Killed(
        as_nobody(HBCTL)
            .arg("--run-dir")
            .arg(lab.run_dir(1))
            .arg("status")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn hbctl as nobody"),
    );
    let mut answered = None;
    n1_keeps_running(&lab, "a caller's group lookup", || {
        if answered.is_none() {
            answered = caller.0.try_wait().unwrap();
        }
        answered.is_some()
    });
    // The caller was refused when the lookup gave up, not left hanging.
    let err = String::from_utf8_lossy(&read_all(caller.0.stderr.take())).into_owned();
    assert_eq!(answered.unwrap().code(), Some(4), "{err}");
    assert!(err.contains("no answer within"), "{err}");
}

#[test]
fn stalled_lookup_for_a_respawn_does_not_stop_keepalives() {
    let t = tempfile::Builder::new()
        .prefix("hbd-respawn-")
        .tempdir()
        .unwrap();
    fs::set_permissions(
        t.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let prog = script(t.path(), "fails", "exit 1");
    let lab = pair(&format!("respawn daemon {}\n", prog.display()), "");
    let _stall = PasswdStall::new(&lab, 1);
    // Each start looks the user up; with the lookup hanging, it gives up.
    n1_keeps_running(&lab, "a respawn's user lookup", || {
        lab.log(1).contains("cannot start respawned program")
    });
}

#[test]
fn stalled_lookup_during_a_reload_does_not_stop_keepalives() {
    let t = tempfile::Builder::new()
        .prefix("hbd-respawn-")
        .tempdir()
        .unwrap();
    fs::set_permissions(
        t.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    // Started once (100: not again); loading ha.cf looks its user up.
    let prog = script(t.path(), "once", "exit 100");
    let lab = pair(&format!("respawn daemon {}\n", prog.display()), "");
    let stall = PasswdStall::new(&lab, 1);
    lab.signal(1, Signal::SIGHUP);
    n1_keeps_running(&lab, "reloading ha.cf", || true);
    // Once the lookup returns (nothing: the FIFO is empty), the reload ends.
    drop(stall);
    lab.wait_for("the reload ends", || {
        let log = lab.log(1);
        log.contains("reload refused") || log.contains("configuration reloaded")
    });
}

fn script(dir: &Path, name: &str, body: &str) -> PathBuf {
    let p = dir.join(name);
    fs::write(&p, format!("#!/bin/sh\n{body}\n")).unwrap();
    fs::set_permissions(&p, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    p
}
