//! Promotion of the replicated device without its peer (issue 12, findings
//! 2 and 7): the drbddisk agent honours `wfc-timeout`/`degr-wfc-timeout` as
//! the drbd init script does and never promotes a device that may have
//! missed the peer's writes; `fencing resource-only` refuses a plain
//! promotion without a peer and takes `--force`, and `adjust` applies a
//! changed `fencing`. Two `hbd-disk` processes in the netns lab, the agent
//! run as hbd runs it (`hbctl resource drbddisk::r0 start` in the node's
//! namespace). Needs root, /dev/fuse and loop devices.

mod common;

use common::disk::*;
use common::HBCTL;
use hbd::disk::ctl::DiskRequest;
use std::fs;
use std::process::{Command, Output};

const FORCE: DiskRequest = DiskRequest::Primary { force: true };

/// The agent's start timeout in these tests (hbd's default is 120 s).
const AGENT_START_TIMEOUT: &str = "8s";

/// `hbctl resource drbddisk::r0 ACTION` in node i's namespace, as hbd runs
/// the agent (the device it starts lives in that namespace).
fn agent(d: &DiskLab, i: usize, action: &str) -> Output {
    Command::new("ip")
        .args(["netns", "exec", &d.lab.ns(&format!("n{i}")), HBCTL])
        .arg("--run-dir")
        .arg(d.lab.run_dir(i))
        .args(["resource", "--config"])
        .arg(d.lab.config_dir(i))
        .args([
            "--node",
            &format!("n{i}"),
            &format!("drbddisk::{RES}"),
            action,
        ])
        .output()
        .expect("run hbctl resource")
}

fn text(out: &Output) -> String {
    format!(
        "exit {:?}\n--- stdout ---\n{}\n--- stderr ---\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// The embedded device and a short agent start timeout on every node.
fn cluster_toml(d: &DiskLab) {
    for i in 1..=2 {
        d.lab.write(
            i,
            "cluster.toml",
            &format!(
                "[disk]\ndriver = \"embedded\"\n\n[resource.\"drbddisk::{RES}\"]\n\
                 start_timeout = \"{AGENT_START_TIMEOUT}\"\n"
            ),
        );
    }
}

/// Both up, n1 forced Primary, the initial full sync done.
fn synced(d: &mut DiskLab) {
    d.start(1);
    d.start(2);
    d.wait_connected();
    d.ok(1, FORCE);
    d.wait_in_sync();
}

/// `len` bytes of `byte` at `offset` of the Primary's device, written
/// through to the backing disk.
fn write_pattern(d: &DiskLab, i: usize, offset: u64, len: u64, byte: u8) {
    let src = d.lab.node_dir(i).join("pattern");
    fs::write(&src, vec![byte; len as usize]).unwrap();
    let out = Command::new("dd")
        .arg(format!("if={}", src.display()))
        .arg(format!("of={}", d.device(i).display()))
        .args([
            "bs=1M",
            "oflag=direct,seek_bytes",
            "conv=fsync,notrunc",
            "status=none",
        ])
        .arg(format!("seek={offset}"))
        .output()
        .unwrap();
    assert!(out.status.success(), "dd: {}", text(&out));
}

/// `len` bytes at `offset` of node i's backing disk (the data area starts
/// at 0).
fn backing_bytes(d: &DiskLab, i: usize, offset: u64, len: u64) -> Vec<u8> {
    use std::os::unix::fs::FileExt;
    let f = fs::File::open(d.backing(i)).unwrap();
    let mut buf = vec![0; len as usize];
    f.read_exact_at(&mut buf, offset).unwrap();
    buf
}

/// Finding 2, the lab's sequence with seed 002's `wfc-timeout 0;
/// degr-wfc-timeout N`: n2 down, n1 writes, n1 dies, n2 boots alone. The
/// agent's start on n2 must fail (wfc-timeout 0 waits for the peer until
/// the start timeout; StandAlone fails at once) with what is missing and
/// what to do; n1, the degraded Primary that crashed, waits only
/// degr-wfc-timeout and is promoted alone, as DRBD; n2 then resyncs from
/// it and has n1's write.
#[test]
fn a_stale_node_booting_alone_is_not_promoted_by_drbddisk() {
    let mut d = DiskLab::new(
        32 * MIB,
        "  startup { wfc-timeout 0; degr-wfc-timeout 3; }\n",
    );
    cluster_toml(&d);
    synced(&mut d);

    // n2 goes down (a crash, its link cut): n1 writes alone.
    d.crash(2);
    d.lab.link("n2", 0, false);
    d.wait_for("n1 WFConnection", |d| {
        d.try_status(1)
            .is_some_and(|s| s.connection.as_str() == "WFConnection")
    });
    const AT: u64 = 8 * MIB;
    const LEN: u64 = MIB;
    write_pattern(&d, 1, AT, LEN, 0xa5);
    assert!(d.status(1).out_of_sync_bytes >= LEN);
    // n1 dies too.
    d.crash(1);
    d.lab.link("n1", 0, false);

    // n2 boots alone: the agent starts its device and must not promote it.
    d.lab.link("n2", 0, true);
    let out = agent(&d, 2, "start");
    let err = text(&out);
    assert!(!out.status.success(), "n2 promoted stale data: {err}");
    assert!(err.contains("not promoting"), "{err}");
    assert!(err.contains("wfc-timeout 0"), "{err}");
    assert!(err.contains("hbctl disk primary --force r0"), "{err}");
    assert!(!err.contains("promoting without it"), "{err}");
    let s = d.status(2);
    assert_eq!(s.role.as_str(), "Secondary", "{err}");
    assert!(!s.ever_connected && !s.degr_wfc, "{s:?}");

    // StandAlone (as a split-brain handshake leaves it) is no reason to
    // promote either: the start fails at once.
    d.ok(2, DiskRequest::Disconnect);
    let out = agent(&d, 2, "start");
    let err = text(&out);
    assert!(!out.status.success(), "n2 promoted stale data: {err}");
    assert!(err.contains("StandAlone"), "{err}");
    assert!(err.contains("hbctl disk primary --force r0"), "{err}");
    assert_eq!(d.status(2).role.as_str(), "Secondary");
    d.ok(2, DiskRequest::Down);
    d.wait_exit(2);

    // n1, the Primary of a degraded cluster when it crashed, boots alone:
    // degr-wfc-timeout applies and ends in a promotion.
    d.lab.link("n1", 0, true);
    let out = agent(&d, 1, "start");
    let log = text(&out);
    assert!(out.status.success(), "{log}\n--- n1 ---\n{}", d.log(1));
    assert!(log.contains("degr-wfc-timeout"), "{log}");
    assert!(log.contains("promoting without it"), "{log}");
    let s = d.status(1);
    assert_eq!(s.role.as_str(), "Primary");

    // n2 comes back: it resyncs from n1 and has n1's write.
    d.start(2);
    d.wait_in_sync();
    assert_eq!(backing_bytes(&d, 2, AT, LEN), vec![0xa5; LEN as usize]);
    let out = agent(&d, 1, "stop");
    assert!(out.status.success(), "{}", text(&out));
}

/// Finding 7: with `fencing resource-only` and the Primary dead, the
/// survivor refuses a plain promotion saying what is missing, also when
/// StandAlone; `adjust` after removing the option lets it through as DRBD
/// would; with the option back, `primary --force` is accepted.
#[test]
fn fencing_resource_only_refuses_plain_primary_and_takes_force() {
    let fencing = "  disk { fencing resource-only; }\n";
    let mut d = DiskLab::new(32 * MIB, fencing);
    synced(&mut d);
    let conf = fs::read_to_string(d.lab.config_dir(2).join("drbd.conf")).unwrap();
    assert!(conf.contains("fencing resource-only"), "{conf}");

    // The Primary dies.
    d.crash(1);
    d.lab.link("n1", 0, false);
    d.wait_for("n2 WFConnection", |d| {
        d.try_status(2)
            .is_some_and(|s| s.connection.as_str() == "WFConnection")
    });
    let refused = |d: &DiskLab| {
        let out = d.hbctl_disk(2, &["primary", RES]);
        let err = text(&out);
        assert_eq!(out.status.code(), Some(11), "{err}");
        assert!(
            err.contains("Refusing to be Primary while peer is not outdated"),
            "{err}"
        );
        assert!(err.contains("no fence-peer handler ran"), "{err}");
        assert!(err.contains("--force"), "{err}");
        assert_eq!(d.status(2).role.as_str(), "Secondary");
    };
    refused(&d);
    let out = d.hbctl_disk(2, &["disconnect", RES]);
    assert!(out.status.success(), "{}", text(&out));
    refused(&d);

    // adjust after removing the option: plain primary goes through.
    d.lab.write(2, "drbd.conf", &conf.replace(fencing, ""));
    let out = d.hbctl_disk_ns(2, &["adjust", RES]);
    assert!(out.status.success(), "{}", text(&out));
    let out = d.hbctl_disk(2, &["primary", RES]);
    assert!(out.status.success(), "{}\n{}", text(&out), d.log(2));
    let out = d.hbctl_disk(2, &["secondary", RES]);
    assert!(out.status.success(), "{}", text(&out));

    // The option back: refused again; --force is accepted (DRBD: "Forced
    // into split brain situation!", the peer is then taken as Outdated).
    d.lab.write(2, "drbd.conf", &conf);
    let out = d.hbctl_disk_ns(2, &["adjust", RES]);
    assert!(out.status.success(), "{}", text(&out));
    refused(&d);
    let out = d.hbctl_disk(2, &["primary", "--force", RES]);
    assert!(out.status.success(), "{}\n{}", text(&out), d.log(2));
    let s = d.status(2);
    assert_eq!(s.role.as_str(), "Primary");
    assert_eq!(s.disk.as_str(), "UpToDate");
    assert_eq!(s.peer_disk.as_str(), "Outdated");
    assert!(d.log(2).contains("Forced into split brain"), "{}", d.log(2));
    let out = d.hbctl_disk(2, &["secondary", RES]);
    assert!(out.status.success(), "{}", text(&out));

    // n1 comes back and resyncs; after both devices restart (attached
    // Consistent, the peer not known Outdated), meeting the peer makes the
    // data UpToDate again, so a connected plain primary works with fencing.
    d.lab.link("n1", 0, true);
    d.start(1);
    d.wait_in_sync();
    for i in 1..=2 {
        d.ok(i, DiskRequest::Down);
        d.wait_exit(i);
    }
    d.start(1);
    assert_eq!(d.status(1).disk.as_str(), "Consistent");
    d.start(2);
    d.wait_in_sync();
    let out = d.hbctl_disk(1, &["primary", RES]);
    assert!(
        out.status.success(),
        "{}
{}",
        text(&out),
        d.log(1)
    );
}
