//! Programs hbd starts get a clean start (issue 14, finding 9): a respawned
//! program (ha.cf `respawn`) sees none of hbd's environment, none of its
//! descriptors but 0, 1 and 2, and runs in its own process group, as the
//! user it names.

mod common;

use common::*;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::io::AsRawFd;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Instant;

/// A descriptor number hbd inherits without close-on-exec.
const INHERITED_FD: i32 = 9;

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Kills a pid at the end of the test (the respawned program outlives a
/// SIGKILLed hbd).
struct KillPid(i32);

impl Drop for KillPid {
    fn drop(&mut self) {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(self.0),
            nix::sys::signal::Signal::SIGKILL,
        );
    }
}

/// `/proc/PID/stat`'s process group.
fn pgrp(pid: i32) -> i32 {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let (_, rest) = stat.rsplit_once(") ").unwrap();
    rest.split(' ').nth(2).unwrap().parse().unwrap()
}

fn open_fds(pid: i32) -> Vec<i32> {
    let mut fds: Vec<i32> = fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse().ok())
        .collect();
    fds.sort();
    fds
}

fn env_of(pid: i32) -> Vec<String> {
    fs::read(format!("/proc/{pid}/environ"))
        .unwrap()
        .split(|&b| b == 0)
        .filter(|v| !v.is_empty())
        .map(|v| String::from_utf8_lossy(v).into_owned())
        .collect()
}

fn status_line(pid: i32, key: &str) -> String {
    fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix(key).map(|v| v.trim().to_string()))
        .unwrap_or_default()
}

#[test]
fn respawned_program_starts_clean() {
    let lab = Lab::new(1, 1);
    let dir = lab.dir.path().join("respawn");
    fs::create_dir_all(&dir).unwrap();
    fs::set_permissions(&dir, fs::Permissions::from_mode(0o777)).unwrap();
    let prog = dir.join("child");
    fs::write(
        &prog,
        format!(
            "#!/bin/sh\necho $$ > {d}/pid.new && mv {d}/pid.new {d}/pid\nexec sleep 600\n",
            d = dir.display()
        ),
    )
    .unwrap();
    fs::set_permissions(&prog, fs::Permissions::from_mode(0o755)).unwrap();
    lab.configure(
        &format!(
            "{}respawn nobody {}\n",
            ha_cf(1, "bcast eth0", "100ms", "1"),
            prog.display()
        ),
        KEY,
    );

    // hbd with a private variable in its environment and a descriptor it
    // inherited without close-on-exec (as from a careless parent).
    let held = fs::File::create(lab.dir.path().join("inherited")).unwrap();
    let held_fd = held.as_raw_fd();
    fs::create_dir_all(lab.node_dir(1)).unwrap();
    let log = fs::File::create(lab.log_path(1)).unwrap();
    let mut cmd = Command::new("ip");
    cmd.args(["netns", "exec", &lab.ns("n1"), HBD])
        .arg("--config")
        .arg(lab.config_dir(1))
        .args(["--node", "n1", "--run-dir"])
        .arg(lab.run_dir(1))
        .arg("--state-dir")
        .arg(lab.node_dir(1).join("state"))
        .env("HBD_LOG", "debug")
        .env("HBD_TEST_PRIVATE_SECRET", "leaked")
        .env("I14_PARENT_ONLY", "leaked")
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log);
    die_with_test(&mut cmd);
    // SAFETY: dup2 is async-signal-safe; it clears close-on-exec on the copy.
    unsafe {
        cmd.pre_exec(move || {
            if libc::dup2(held_fd, INHERITED_FD) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let hbd = Killed(cmd.spawn().expect("spawn hbd"));
    let hbd_pid = hbd.0.id() as i32;

    let pid_file = dir.join("pid");
    let start = Instant::now();
    let pid = loop {
        if let Some(pid) = read_pid(&pid_file) {
            // After the exec: the program itself, not its shell.
            if fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|c| c.trim() == "sleep") {
                break pid;
            }
        }
        assert!(
            start.elapsed() < TIMEOUT,
            "the respawned program never started\n{}",
            lab.log(1)
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    let _child = KillPid(pid);
    // The test means something: hbd itself holds the inherited descriptor.
    assert!(
        Path::new(&format!("/proc/{hbd_pid}/fd/{INHERITED_FD}")).exists(),
        "hbd did not inherit fd {INHERITED_FD}"
    );

    let env = env_of(pid);
    assert!(
        !env.iter().any(|v| v.contains("leaked")),
        "hbd's environment leaked: {env:?}"
    );
    for v in &env {
        let key = v.split('=').next().unwrap();
        // PWD is the shell's own, exported before it exec'd sleep.
        assert!(
            ["PATH", "HOME", "USER", "LOGNAME", "PWD"].contains(&key),
            "unexpected variable {v} in {env:?}"
        );
    }
    assert!(env.iter().any(|v| v == "USER=nobody"), "{env:?}");
    assert_eq!(pgrp(pid), pid, "not in a process group of its own");
    assert_ne!(pgrp(pid), pgrp(hbd_pid));
    // The loader of sleep holds its libraries on fd 3 for a moment after
    // the exec: a leak is a descriptor that stays.
    let start = Instant::now();
    while open_fds(pid) != vec![0, 1, 2] && start.elapsed() < TIMEOUT {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert_eq!(open_fds(pid), vec![0, 1, 2], "descriptors leaked");
    let uids = status_line(pid, "Uid:");
    assert!(uids.split_whitespace().all(|u| u == "65534"), "Uid: {uids}");
    assert_eq!(status_line(pid, "Groups:"), "", "supplementary groups kept");
    drop(held);
}
