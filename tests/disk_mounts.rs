//! The device process holds no mount it did not make (issue 12, finding
//! 1): `hbd-disk` runs in a private mount namespace of its own, which used
//! to keep a copy of every filesystem mounted when it started, for ever.
//! Here filesystems are mounted in the test's own mount namespace, as an
//! admin's `mount` on the host; needs root, /dev/fuse, loop devices.

mod common;

use common::disk::*;
use common::{alive, wait_gone};
use hbd::disk::ctl::{DiskRequest, DiskResponse};
use std::fs;

const FORCE: DiskRequest = DiskRequest::Primary { force: true };

/// The process state letter of `/proc/PID/stat` (D: uninterruptible).
fn proc_state(pid: i32) -> String {
    fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| s.rsplit_once(") ").map(|(_, r)| r[..1].to_string()))
        .unwrap_or_else(|| "gone".into())
}

/// Two lab nodes on one host: n2 Primary with its ext4 mounted on the host,
/// then n1's device starts. Unmounted on the host, the ext4 must be gone
/// from n1's device too, and n2 can demote.
#[test]
fn a_device_started_while_the_peers_filesystem_is_mounted_does_not_keep_it() {
    let mut d = DiskLab::new(32 * MIB, "");
    d.start(2);
    d.ok(2, FORCE);
    mkfs_ext4(&d.device(2));
    let loop2 = d.status(2).loop_device.expect("n2 exposed");
    let mut m = HostMount::new(&d.device(2), &d.lab.dir.path().join("mnt2"));
    fs::write(m.dir.join("f"), b"written on n2").unwrap();
    d.start(1);
    d.wait_in_sync();
    m.umount();
    let n1 = d.pid(1).expect("n1's device runs");
    let held = mounted_in(n1, &m.dir, &loop2);
    let demoted = d.request(2, DiskRequest::Secondary);
    assert!(
        held.is_empty() && matches!(demoted, Some(DiskResponse::Done { .. })),
        "after the host's umount n1's device still has {held:?}; n2 secondary: {demoted:?}\n--- n1 ---\n{}",
        d.log(1)
    );
}

/// One node, two resources: r0 Primary with ext4 mounted, `up r1`, then
/// r0's ext4 unmounted: r0 must demote (r1's device must not hold it).
#[test]
fn a_second_resource_started_on_one_node_does_not_pin_the_first_ones_filesystem() {
    let mut d = DiskLab::new(32 * MIB, "");
    let r1 = d.add_resource("r1", 7789);
    // The peer n2 never comes up: r0 waits in WFConnection.
    d.start(1);
    d.ok(1, FORCE);
    mkfs_ext4(&d.device(1));
    let loop0 = d.status(1).loop_device.expect("r0 exposed");
    let mut m = HostMount::new(&d.device(1), &d.lab.dir.path().join("mnt0"));
    fs::write(m.dir.join("f"), b"r0's data").unwrap();
    let out = d.hbctl_disk_ns(1, &["up", &r1.name]);
    assert!(out.status.success(), "up r1: {out:?}");
    m.umount();
    let r1_pid = d.res_pid(1, &r1.name).expect("r1's device runs");
    let held = mounted_in(r1_pid, &m.dir, &loop0);
    let out = d.hbctl_disk(1, &["secondary", RES]);
    assert!(
        held.is_empty() && out.status.success(),
        "r1's device still has {held:?}; secondary r0: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Why the namespace is private: a filesystem mounted on the device after
/// it started never enters it, even below a shared mount the device uses
/// (its run directory here; / on a systemd host), so the device is never
/// the last holder of its own filesystem and a crash ends the process
/// instead of hanging it in D state.
#[test]
fn a_filesystem_mounted_on_the_device_later_stays_out_and_a_killed_device_exits() {
    let mut d = DiskLab::new(32 * MIB, "");
    let _shared = SharedBind::new(d.lab.dir.path());
    d.start(1);
    d.ok(1, FORCE);
    mkfs_ext4(&d.device(1));
    let loop1 = d.status(1).loop_device.expect("n1 exposed");
    let m = HostMount::new(&d.device(1), &d.lab.dir.path().join("mnt"));
    fs::write(m.dir.join("f"), b"data").unwrap();
    let pid = d.pid(1).expect("n1's device runs");
    let held = mounted_in(pid, &m.dir, &loop1);
    assert!(held.is_empty(), "the device's namespace has {held:?}");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    assert!(
        wait_gone(pid),
        "the killed device did not exit (state {})",
        proc_state(pid)
    );
    assert!(!alive(pid));
    drop(m);
}

/// Children killed and reaped in `Drop`, also after a panic.
struct Kids(Vec<std::process::Child>);

impl Drop for Kids {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// The kernel behaviour that rules out `MS_SLAVE` for the device's
/// namespace (src/bin/hbd-disk.rs): a slave copy receives what is mounted
/// later below its shared master, and keeps it once the namespace it came
/// from is gone (namespace teardown propagates no unmount). A device with
/// a slave namespace would so become the last holder of the filesystem
/// hbd (under systemd: shared mounts) mounted on it. Shown with a tmpfs.
#[test]
fn a_slave_namespace_would_receive_a_later_mount_and_keep_it() {
    use std::process::Command;
    common::require_root();
    let dir = tempfile::tempdir().unwrap();
    let t = dir.path().canonicalize().unwrap();
    fs::create_dir(t.join("m")).unwrap();
    let wait_file = |name: &str| {
        let p = t.join(name);
        let start = std::time::Instant::now();
        while !p.exists() {
            assert!(start.elapsed() < common::TIMEOUT, "{name} never appeared");
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    };
    let mut kids = Kids(Vec::new());
    // A: hbd's namespace, its mounts shared.
    let mut a = Command::new("unshare");
    a.args(["--mount", "--propagation", "private", "sh", "-ec"])
        .arg(format!(
            "mount --bind {t} {t}; mount --make-shared {t}; touch {t}/a; exec sleep 600",
            t = t.display()
        ));
    common::die_with_test(&mut a);
    kids.0.push(a.spawn().unwrap());
    wait_file("a");
    let a_pid = kids.0[0].id().to_string();
    // B: a device started from A with MS_SLAVE|MS_REC.
    let mut b = Command::new("nsenter");
    b.args(["-t", &a_pid, "-m", "unshare", "--mount", "--propagation"])
        .args(["slave", "sh", "-ec"])
        .arg(format!("touch {}/b; exec sleep 600", t.display()));
    common::die_with_test(&mut b);
    kids.0.push(b.spawn().unwrap());
    wait_file("b");
    let b_pid = kids.0[1].id() as i32;
    let ns = |pid: &str| fs::read_link(format!("/proc/{pid}/ns/mnt")).unwrap();
    assert_ne!(
        ns(&a_pid),
        ns(&b_pid.to_string()),
        "B has a namespace of its own"
    );
    // A mounts something below its shared mount: B receives it.
    let m = t.join("m");
    let out = Command::new("nsenter")
        .args(["-t", &a_pid, "-m", "mount", "-t", "tmpfs", "probe"])
        .arg(&m)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let in_b = || {
        fs::read_to_string(format!("/proc/{b_pid}/mountinfo"))
            .unwrap_or_default()
            .lines()
            .any(|l| l.split(' ').nth(4) == Some(&*m.to_string_lossy()))
    };
    assert!(in_b(), "the later mount did not propagate to the slave");
    // A's namespace goes: B still has the mount.
    let _ = kids.0[0].kill();
    let _ = kids.0[0].wait();
    assert!(in_b(), "the slave lost the mount with its source namespace");
}
