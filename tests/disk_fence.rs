//! Resource-level fencing of the replicated disk (issue 13, heartbeat's
//! dopd built in): drbd.conf `fencing` and `handlers { fence-peer }`.
//!
//! - The scenario: heartbeat on eth0 and eth1, replication on eth1;
//!   eth1 is cut; the Primary's built-in outdater asks the peer's hbd over
//!   eth0 to outdate its disk; the Primary dies; the peer refuses to
//!   promote (Outdated, also after a restart); the Primary, restarted,
//!   remembers its peer outdated and promotes without asking.
//! - A custom fence-peer handler (a small sh script) with DRBD's
//!   environment: exit codes 4, 5, 6, 7 and a failure, as DRBD 8.4 reads
//!   them, when a node is promoted without its peer.
//! - `resource-and-stonith`: writes are held (not failed) after the loss of
//!   the peer until the handler fences it; a failing handler keeps them
//!   held until `hbctl disk resume-io`.
//!
//! Two `hbd-disk` processes (and two hbd where the built-in outdater is
//! used) in the netns lab. Needs root, /dev/fuse and loop devices.

mod common;

use common::disk::*;
use common::{ha_cf, Lab, HBCTL, KEY, TIMEOUT};
use hbd::disk::ctl::DiskRequest;
use std::fs;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const PRIMARY: DiskRequest = DiskRequest::Primary { force: false };
const FORCE: DiskRequest = DiskRequest::Primary { force: true };

/// Two nodes on two nets; drbd.conf's replication addresses on `net`
/// (0: 192.0.2.0/24 on eth0, 1: 198.51.100.0/24 on eth1), `extra` in the
/// resource; heartbeat on every net; hbd does not start the devices (the
/// test does).
fn fence_lab(size: u64, nets: usize, net: usize, extra: &str) -> DiskLab {
    let lab = Lab::new(2, nets);
    let media = (0..nets)
        .map(|n| format!("bcast eth{n}"))
        .collect::<Vec<_>>()
        .join("\n");
    lab.configure(&ha_cf(2, &media, "1", "4"), KEY);
    let prefix = if net == 0 { "192.0.2" } else { "198.51.100" };
    let mut hosts = String::new();
    for i in 1..=2 {
        hosts.push_str(&format!(
            "  on n{i} {{ device {dev}; disk {disk}; address {prefix}.{a}:7788; meta-disk internal; }}\n",
            dev = lab.node_dir(i).join("drbd0").display(),
            disk = lab.node_dir(i).join("backing.img").display(),
            a = 10 + i
        ));
    }
    let conf =
        format!("resource {RES} {{\n  protocol C;\n  syncer {{ rate 200M; }}\n{extra}{hosts}}}\n");
    for i in 1..=2 {
        lab.write(i, "haresources", "");
        lab.write(i, "drbd.conf", &conf);
        lab.write(
            i,
            "cluster.toml",
            &format!(
                "[disk]\ndriver = \"embedded\"\nup_at_start = false\n\n\
                 [resource.\"drbddisk::{RES}\"]\nstart_timeout = \"8s\"\n"
            ),
        );
        let f = fs::File::create(lab.node_dir(i).join("backing.img")).unwrap();
        f.set_len(size).unwrap();
    }
    let d = DiskLab { lab, size };
    for i in 1..=2 {
        let out = d.hbctl_disk(i, &["create-md", RES]);
        assert!(out.status.success(), "create-md: {out:?}");
    }
    d
}

/// Both devices up, n1 forced Primary, the initial sync done.
fn synced(d: &mut DiskLab) {
    d.start(1);
    d.start(2);
    d.wait_connected();
    d.ok(1, FORCE);
    d.wait_in_sync();
}

fn text(out: &Output) -> String {
    format!(
        "exit {:?}\n--- stdout ---\n{}\n--- stderr ---\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// A direct, synced write of `len` bytes of `byte` at `offset` of node i's
/// device, started in the background.
fn spawn_write(d: &DiskLab, i: usize, offset: u64, len: u64, byte: u8) -> Child {
    let src = d.lab.node_dir(i).join(format!("pattern{byte}"));
    fs::write(&src, vec![byte; len as usize]).unwrap();
    let mut cmd = Command::new("dd");
    cmd.arg(format!("if={}", src.display()))
        .arg(format!("of={}", d.device(i).display()))
        .args([
            "bs=64K",
            "oflag=direct,seek_bytes",
            "conv=fsync,notrunc",
            "status=none",
        ])
        .arg(format!("seek={offset}"))
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    common::die_with_test(&mut cmd);
    cmd.spawn().unwrap()
}

fn write(d: &DiskLab, i: usize, offset: u64, len: u64, byte: u8) {
    let mut c = spawn_write(d, i, offset, len, byte);
    let st = common::wait_child(&mut c, TIMEOUT).expect("dd finishes");
    assert!(st.success(), "dd on n{i}: {st:?}");
}

fn backing_bytes(d: &DiskLab, i: usize, offset: u64, len: u64) -> Vec<u8> {
    use std::os::unix::fs::FileExt;
    let f = fs::File::open(d.backing(i)).unwrap();
    let mut buf = vec![0; len as usize];
    f.read_exact_at(&mut buf, offset).unwrap();
    buf
}

fn restart_device(d: &mut DiskLab, i: usize) {
    d.crash(i);
    d.start(i);
}

/// The lab finding, with the built-in outdater: heartbeat on eth0
/// and eth1, replication on eth1, eth1 cut while n1 is Primary.
#[test]
fn replication_cut_outdates_the_peer_which_then_never_promotes() {
    let mut d = fence_lab(
        16 * MIB,
        2,
        1,
        "  disk { fencing resource-and-stonith; }\n  \
         handlers { fence-peer \"/usr/lib/heartbeat/drbd-peer-outdater -t 5\"; }\n",
    );
    synced(&mut d);
    d.lab.start(1);
    d.lab.start(2);
    d.lab.wait_all_up(&[1, 2]);

    // The replication link (eth1) goes; heartbeat keeps eth0.
    d.lab.link("n1", 1, false);
    d.wait_for("n2 outdated by n1's fence-peer handler", |d| {
        d.try_status(2)
            .is_some_and(|s| s.disk.as_str() == "Outdated")
            && d.try_status(1).is_some_and(|s| {
                s.peer_disk.as_str() == "Outdated" && !s.suspended && s.fence_peer.is_some()
            })
    });
    let s1 = d.status(1);
    assert!(
        s1.fence_peer
            .as_deref()
            .is_some_and(|f| f.contains("exit code 4")),
        "{s1:?}"
    );
    let log1 = d.log(1);
    assert!(log1.contains("built-in outdater"), "{log1}");
    assert!(
        d.lab
            .log(2)
            .contains("the peer asks to outdate this node's disk"),
        "{}",
        d.lab.log(2)
    );
    // The Primary writes on alone (its peer is fenced: I/O thawed).
    write(&d, 1, 0, 256 << 10, 0x5a);
    assert_eq!(backing_bytes(&d, 1, 0, 4096), vec![0x5a; 4096]);

    // The Primary dies (device and hbd).
    d.crash(1);
    d.lab.kill(1);
    // n2 must not promote: its data lacks n1's writes.
    let m = d.refused(2, PRIMARY);
    assert!(m.starts_with("local disk Outdated"), "{m}");
    assert!(m.contains("the peer outdated this copy"), "{m}");
    // The drbddisk agent's start (hbd's failover) fails, saying why.
    let out = Command::new("ip")
        .args(["netns", "exec", &d.lab.ns("n2"), HBCTL])
        .arg("--run-dir")
        .arg(d.lab.run_dir(2))
        .args(["resource", "--config"])
        .arg(d.lab.config_dir(2))
        .args(["--node", "n2", &format!("drbddisk::{RES}"), "start"])
        .output()
        .unwrap();
    assert!(!out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains("local disk Outdated"),
        "the agent says why: {}",
        text(&out)
    );
    assert_eq!(d.status(2).role.as_str(), "Secondary");
    // Also after a restart of n2's device: Outdated is in the metadata.
    restart_device(&mut d, 2);
    assert_eq!(d.status(2).disk.as_str(), "Outdated");
    assert!(d.refused(2, PRIMARY).starts_with("local disk Outdated"));

    // n1 comes back (a crash): it knows its peer is outdated, so it is
    // promoted without a handler (its hbd is down: none could run).
    d.start(1);
    let s1 = d.status(1);
    assert_eq!(s1.peer_disk.as_str(), "Outdated", "{s1:?}");
    d.ok(1, PRIMARY);
    assert_eq!(backing_bytes(&d, 1, 0, 4096), vec![0x5a; 4096]);

    // The link heals: n2 resyncs from n1 and has the writes.
    d.lab.link("n1", 1, true);
    d.wait_in_sync();
    assert_eq!(backing_bytes(&d, 2, 0, 4096), vec![0x5a; 4096]);
}

/// A handler script: records DRBD's environment, exits with the code in
/// `code` (a file).
fn handler(d: &DiskLab) -> (std::path::PathBuf, std::path::PathBuf) {
    let dir = d.lab.dir.path();
    let code = dir.join("fence-code");
    let env = dir.join("fence-env");
    let script = dir.join("fence.sh");
    fs::write(
        &script,
        format!(
            "#!/bin/sh\necho \"$DRBD_RESOURCE $DRBD_PEER $DRBD_MINOR\" >> {env}\nexit $(cat {code})\n",
            env = env.display(),
            code = code.display()
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(&script, fs::Permissions::from_mode(0o755)).unwrap();
    (script, code)
}

fn set_code(code_file: &Path, code: u8) {
    fs::write(code_file, format!("{code}\n")).unwrap();
}

/// `fencing resource-only` with a custom handler: a node promoted without
/// its peer runs it first (drbd_set_role), and its exit code decides, as
/// DRBD 8.4's conn_try_outdate_peer.
#[test]
fn handler_exit_codes_decide_a_lone_promotion() {
    for (code, promoted, disk_after) in [
        (4, true, "UpToDate"),
        (5, true, "UpToDate"), // unreachable, UpToDate here: assumed dead
        (7, true, "UpToDate"),
        (6, false, "Outdated"), // the peer is Primary: outdate myself
        (1, false, "UpToDate"), // broken handler: refused
    ] {
        let mut d = fence_lab(8 * MIB, 1, 0, "");
        let (script, code_file) = handler(&d);
        let conf = fs::read_to_string(d.lab.config_dir(2).join("drbd.conf")).unwrap();
        let conf = conf.replacen(
            "  syncer",
            &format!(
                "  disk {{ fencing resource-only; }}\n  handlers {{ fence-peer \"{}\"; }}\n  syncer",
                script.display()
            ),
            1,
        );
        for i in 1..=2 {
            d.lab.write(i, "drbd.conf", &conf);
        }
        set_code(&code_file, code);
        synced(&mut d);
        d.ok(1, DiskRequest::Secondary);
        d.ok(1, DiskRequest::Disconnect);
        d.ok(2, DiskRequest::Disconnect);
        match d.request(2, PRIMARY) {
            Some(hbd::disk::ctl::DiskResponse::Done { status, .. }) => {
                assert!(promoted, "code {code}: promoted");
                assert_eq!(status.peer_disk.as_str(), "Outdated", "code {code}");
            }
            Some(hbd::disk::ctl::DiskResponse::Refused { message, status }) => {
                assert!(!promoted, "code {code}: refused: {message}");
                if code == 6 {
                    assert!(message.contains("Outdated"), "{message}");
                } else {
                    assert!(
                        message.contains("the fence-peer handler returned 1"),
                        "{message}"
                    );
                    assert!(message.contains("--force"), "{message}");
                }
                assert_eq!(status.role.as_str(), "Secondary");
            }
            other => panic!("code {code}: {other:?}\n{}", d.log(2)),
        }
        assert_eq!(d.status(2).disk.as_str(), disk_after, "code {code}");
        let env = fs::read_to_string(d.lab.dir.path().join("fence-env")).unwrap();
        assert_eq!(env.trim(), format!("{RES} n1 0"), "code {code}");
        let log = d.log(2);
        assert!(log.contains("fence-peer"), "{log}");
    }
}

/// `fencing resource-and-stonith`: after the peer is lost, writes are held
/// (not failed) while the handler has not fenced it; a handler that fails
/// keeps them held until `hbctl disk resume-io`.
#[test]
fn resource_and_stonith_holds_writes_until_resume_io() {
    let mut d = fence_lab(8 * MIB, 1, 0, "");
    let (script, code_file) = handler(&d);
    let conf = fs::read_to_string(d.lab.config_dir(1).join("drbd.conf")).unwrap();
    let conf = conf.replacen(
        "  syncer",
        &format!(
            "  disk {{ fencing resource-and-stonith; }}\n  handlers {{ fence-peer \"{}\"; }}\n  syncer",
            script.display()
        ),
        1,
    );
    for i in 1..=2 {
        d.lab.write(i, "drbd.conf", &conf);
    }
    set_code(&code_file, 1);
    synced(&mut d);
    // The replication link goes.
    d.lab.link("n1", 0, false);
    d.wait_for("n1 frozen, its handler failed", |d| {
        d.try_status(1).is_some_and(|s| {
            s.suspended
                && s.connection.as_str() != "Connected"
                && s.fence_peer
                    .as_deref()
                    .is_some_and(|f| f.contains("exit code 1"))
        })
    });
    let out = d.hbctl_disk(1, &["status", RES]);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("I/O SUSPENDED"),
        "{}",
        text(&out)
    );
    // A write now is held: still running while the device stays frozen.
    let mut dd = spawn_write(&d, 1, 1 << 20, 64 << 10, 0x77);
    let until = Instant::now() + Duration::from_secs(2);
    while Instant::now() < until {
        assert!(dd.try_wait().unwrap().is_none(), "the write was not held");
        assert!(d.status(1).suspended);
        std::thread::sleep(Duration::from_millis(100));
    }
    // The operator knows the peer is down: resume-io thaws, the write ends
    // well (not failed).
    let out = d.hbctl_disk(1, &["resume-io", RES]);
    assert!(out.status.success(), "{}", text(&out));
    let st = common::wait_child(&mut dd, TIMEOUT).expect("the write finishes");
    assert!(st.success(), "the held write failed: {st:?}");
    assert!(!d.status(1).suspended);
    assert_eq!(backing_bytes(&d, 1, 1 << 20, 4096), vec![0x77; 4096]);
    assert!(d.log(1).contains("resume-io"), "{}", d.log(1));
    d.lab.link("n1", 0, true);
    d.wait_in_sync();
    assert_eq!(backing_bytes(&d, 2, 1 << 20, 4096), vec![0x77; 4096]);
}
