//! Issue 12, findings 4 and 6: the replicated device on a faulty backing
//! disk (a FUSE file served by this test process, [`FaultLab`]): local
//! write errors under each `on-io-error`, a metadata write error during a
//! promotion, and a Secondary whose disk writes hang (`timeout` ×
//! `ko-count`). Needs root, /dev/fuse and loop devices.

mod common;

use common::disk::*;
use common::TIMEOUT;
use hbd::disk::ctl::{DiskRequest, DiskResponse};
use std::fs;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const FORCE: DiskRequest = DiskRequest::Primary { force: true };
const PRIMARY: DiskRequest = DiskRequest::Primary { force: false };
/// The block the tests write (in the data area, 4 KiB aligned).
const OFF: u64 = 3 * MIB + 8192;
const BLOCK: u64 = 4096;

/// Both up, n1 forced Primary, the initial sync done.
fn primary_pair(f: &mut FaultLab) {
    f.d.start(1);
    f.d.start(2);
    f.d.wait_connected();
    f.d.ok(1, FORCE);
    f.d.wait_in_sync();
}

/// A 4 KiB block of random data in a file, for dd.
fn pattern(f: &FaultLab) -> std::path::PathBuf {
    let p = f.d.lab.dir.path().join("pattern");
    let out = Command::new("dd")
        .args(["if=/dev/urandom", "bs=4096", "count=1", "status=none"])
        .arg(format!("of={}", p.display()))
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    p
}

/// `dd` of the pattern to node i's device at OFF, O_DIRECT.
fn dd_command(f: &FaultLab, i: usize, pat: &std::path::Path) -> Command {
    let mut c = Command::new("dd");
    c.arg(format!("if={}", pat.display()))
        .arg(format!("of={}", f.d.device(i).display()))
        .args([
            "bs=4096",
            "count=1",
            "oflag=direct",
            "conv=notrunc",
            "status=none",
        ])
        .arg(format!("seek={}", OFF / BLOCK));
    c
}

fn logs(f: &FaultLab) -> String {
    format!("--- n1 ---\n{}\n--- n2 ---\n{}", f.d.log(1), f.d.log(2))
}

#[test]
fn detach_on_a_failed_local_write_keeps_the_acked_block_and_resyncs_it_from_the_peer() {
    let mut f = FaultLab::new(16 * MIB, "  disk { on-io-error detach; }\n", 1);
    primary_pair(&mut f);
    let pat = pattern(&f);
    f.disk.faults.fail_writes(OFF, OFF + BLOCK);
    let out = dd_command(&f, 1, &pat).output().unwrap();
    // The peer acked the write and has it: DRBD completes it and detaches.
    assert!(out.status.success(), "dd: {out:?}\n{}", logs(&f));
    let s = f.d.status(1);
    assert_eq!(s.disk.as_str(), "Diskless", "{s:?}\n{}", logs(&f));
    assert!(s.last_error.unwrap_or_default().contains("local I/O error"));
    f.d.wait_for("n2 sees n1 Diskless", |d| {
        d.try_status(2)
            .is_some_and(|s| s.peer_disk.as_str() == "Diskless")
    });

    // The disk is repaired; n1 demotes and attaches again: its metadata
    // says not consistent, so it resyncs the marked block from n2.
    f.disk.faults.release();
    f.d.ok(1, DiskRequest::Secondary);
    f.d.ok(1, DiskRequest::Attach);
    f.d.wait_in_sync();
    // (n1 was the source of the initial sync: this is its only resync.)
    let syncs = resyncs(&f.d.log(1));
    assert_eq!(syncs.len(), 1, "{}", logs(&f));
    let (full, bytes) = syncs[0];
    assert!(!full && bytes >= BLOCK, "{syncs:?}\n{}", logs(&f));
    assert_eq!(f.d.data_digest(1), f.d.data_digest(2));
    let mut got = vec![0u8; BLOCK as usize];
    use std::os::unix::fs::FileExt;
    fs::File::open(f.d.backing(1))
        .unwrap()
        .read_exact_at(&mut got, OFF)
        .unwrap();
    assert_eq!(got, fs::read(&pat).unwrap());
}

#[test]
fn pass_on_reports_eio_and_marks_the_block_out_of_sync() {
    let mut f = FaultLab::new(16 * MIB, "  disk { on-io-error pass_on; }\n", 1);
    primary_pair(&mut f);
    let pat = pattern(&f);
    f.disk.faults.fail_writes(OFF, OFF + BLOCK);
    let out = dd_command(&f, 1, &pat).output().unwrap();
    assert!(!out.status.success(), "dd succeeded: {out:?}");
    let s = f.d.status(1);
    // The peer acked, yet the local copy is stale: the bit is set.
    assert!(
        s.out_of_sync_bytes >= BLOCK,
        "no bit set after a failed local write: {s:?}\n{}",
        logs(&f)
    );
    assert_eq!(s.disk.as_str(), "UpToDate");
    assert_eq!(s.role.as_str(), "Primary");

    // Repaired; a reconnect resyncs the marked block (n1 is the source).
    f.disk.faults.release();
    f.d.ok(1, DiskRequest::Disconnect);
    f.d.ok(
        1,
        DiskRequest::Connect {
            discard_my_data: false,
        },
    );
    f.d.wait_for("the marked block resynced", |d| {
        d.try_status(1).is_some_and(|s| {
            s.connection.as_str() == "Connected"
                && s.peer_disk.as_str() == "UpToDate"
                && s.out_of_sync_bytes == 0
        })
    });
    let syncs = resyncs(&f.d.log(2));
    assert!(
        syncs.iter().skip(1).any(|&(full, b)| !full && b >= BLOCK),
        "{syncs:?}\n{}",
        logs(&f)
    );
    f.d.ok(1, DiskRequest::Secondary);
    assert_eq!(f.d.data_digest(1), f.d.data_digest(2));
}

#[test]
fn a_promotion_whose_metadata_cannot_be_written_fails_and_rotates_nothing() {
    let mut f = FaultLab::new(16 * MIB, "", 1);
    primary_pair(&mut f);
    f.d.ok(1, DiskRequest::Secondary);
    f.d.ok(1, DiskRequest::Disconnect);
    let before = f.d.status(1);
    assert_eq!(before.connection.as_str(), "StandAlone");
    // Every metadata write (past the data area) fails from now on.
    f.disk.faults.fail_writes(before.size_bytes, u64::MAX);
    // Promoting a disconnected node starts a new generation (a new current
    // UUID): that must not happen on metadata that was not written.
    match f.d.request(1, PRIMARY) {
        Some(DiskResponse::Failed { message }) => {
            assert!(message.contains("superblock"), "{message}")
        }
        other => panic!("promotion on unwritable metadata: {other:?}\n{}", logs(&f)),
    }
    let after = f.d.status(1);
    assert_eq!(after.role.as_str(), "Secondary");
    assert_eq!(after.uuids, before.uuids, "{}", logs(&f));
    // The metadata error is a local I/O error: detached (on-io-error detach).
    assert_eq!(after.disk.as_str(), "Diskless");
    assert!(!matches!(
        f.d.request(1, PRIMARY),
        Some(DiskResponse::Done { .. })
    ));
}

#[test]
fn a_hung_peer_disk_is_dropped_after_timeout_times_ko_count() {
    // timeout 0.5 s × ko-count 2: the peer is dropped after 1 s.
    let mut f = FaultLab::new(16 * MIB, "  net { timeout 5; ko-count 2; }\n", 2);
    primary_pair(&mut f);
    let pat = pattern(&f);
    let size = f.d.status(2).size_bytes;
    f.disk.faults.hang_writes_below(size);
    let mut dd = dd_command(&f, 1, &pat)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    let mut status = None;
    while start.elapsed() < TIMEOUT * 2 {
        if let Some(s) = dd.try_wait().unwrap() {
            status = Some(s);
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let hung = f.disk.faults.hung();
    let log1 = f.d.log(1);
    let s1 = f.d.try_status(1);
    // Let the hung writes go on (also on failure: dd then finishes too).
    f.disk.faults.release();
    let _ = dd.wait();
    let status = status.unwrap_or_else(|| {
        panic!("the Primary's write hung with its peer's disk (hung writes: {hung})\n{log1}")
    });
    assert!(status.success(), "dd: {status:?}");
    assert!(hung > 0, "no write hung on n2");
    assert!(
        log1.contains("timeout × ko-count"),
        "the peer was not dropped:\n{log1}"
    );
    let s1 = s1.expect("n1 answers");
    assert!(
        s1.out_of_sync_bytes >= BLOCK,
        "the dropped peer's write is not marked: {s1:?}"
    );
    // Released, the peer comes back and gets the block.
    f.d.wait_in_sync();
    f.d.ok(1, DiskRequest::Secondary);
    assert_eq!(f.d.data_digest(1), f.d.data_digest(2));
}

#[test]
fn call_local_io_error_on_a_secondary_runs_the_handler_detaches_and_the_primary_marks_the_block() {
    let out = std::env::temp_dir().join(format!("hbd-lioe-{}", std::process::id()));
    let _ = fs::remove_file(&out);
    let conf = format!(
        "  disk {{ on-io-error call-local-io-error; }}\n  handlers {{ local-io-error \"echo $DRBD_RESOURCE > {}\"; }}\n",
        out.display()
    );
    let mut f = FaultLab::new(16 * MIB, &conf, 2);
    primary_pair(&mut f);
    let pat = pattern(&f);
    f.disk.faults.fail_writes(OFF, OFF + BLOCK);
    let dd = dd_command(&f, 1, &pat).output().unwrap();
    // The Primary has the block: the write completes there.
    assert!(dd.status.success(), "dd: {dd:?}\n{}", logs(&f));
    f.d.wait_for("n2 Diskless", |d| {
        d.try_status(2)
            .is_some_and(|s| s.disk.as_str() == "Diskless")
    });
    let s1 = f.d.status(1);
    assert!(
        s1.out_of_sync_bytes >= BLOCK,
        "n1 did not mark n2's failed write: {s1:?}\n{}",
        logs(&f)
    );
    f.d.wait_for("the local-io-error handler", |_| out.exists());
    let handler_out = fs::read_to_string(&out).unwrap();
    let _ = fs::remove_file(&out);
    assert_eq!(handler_out.trim(), RES);
    // Repaired and attached again, n2 gets the block from n1.
    f.disk.faults.release();
    f.d.ok(2, DiskRequest::Attach);
    f.d.wait_in_sync();
    f.d.ok(1, DiskRequest::Secondary);
    assert_eq!(f.d.data_digest(1), f.d.data_digest(2));
}

/// Finding 5: the Secondary acknowledges writes from a volatile cache; the
/// Primary's activity log must keep their extent until the Secondary
/// flushed it, so after a power cut of both nodes the block is resynced.
#[test]
fn an_extent_stays_in_the_activity_log_until_the_peer_flushed_it() {
    let mut f = FaultLab::new(16 * MIB, "", 2);
    primary_pair(&mut f);
    let pat = pattern(&f);
    // n2's disk now has a volatile write cache whose flushes never finish.
    f.disk.faults.start_volatile();
    f.disk.faults.hang_flushes();
    let out = dd_command(&f, 1, &pat).output().unwrap();
    assert!(out.status.success(), "dd: {out:?}\n{}", logs(&f));
    // Several activity-log aging rounds (one a second) pass on n1.
    std::thread::sleep(Duration::from_secs(4));
    // Power cut of both: n1 stops, n2's cache is lost, n2 stops.
    f.d.crash(1);
    f.disk.faults.power_cut();
    f.disk.faults.release();
    f.d.crash(2);
    f.d.start(1);
    f.d.start(2);
    f.d.wait_in_sync();
    f.disk.faults.stop_volatile();
    assert_eq!(
        f.d.data_digest(1),
        f.d.data_digest(2),
        "the block n2 acked but never flushed differs, with no bit set\n{}",
        logs(&f)
    );
}
