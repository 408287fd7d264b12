//! The replicated device end to end: two `hbd-disk` processes in the netns
//! lab, loop devices, real ext4. Needs root, /dev/fuse and loop devices.
//! ext4 is only mounted inside `unshare --mount` children.

mod common;

use common::disk::*;
use hbd::disk::ctl::DiskRequest;
use std::fs;
use std::process::Command;

const PRIMARY: DiskRequest = DiskRequest::Primary { force: false };
const FORCE: DiskRequest = DiskRequest::Primary { force: true };
const CONNECT: DiskRequest = DiskRequest::Connect {
    discard_my_data: false,
};

/// Both devices up, n1 forced Primary, initial full sync done, ext4 made.
fn synced_pair(size: u64) -> DiskLab {
    let mut d = DiskLab::new(size, "");
    d.start(1);
    d.start(2);
    d.wait_connected();
    let s = d.status(1);
    assert_eq!(s.disk.as_str(), "Inconsistent");
    assert_eq!(s.peer_disk.as_str(), "Inconsistent");
    assert!(d.refused(1, PRIMARY).contains("Inconsistent"));
    d.ok(1, FORCE);
    d.wait_in_sync();
    assert!(d.log(2).contains("full=true"), "{}", d.log(2));
    let out = Command::new("mkfs.ext4")
        .args(["-q", "-F"])
        .arg(d.device(1))
        .output()
        .unwrap();
    assert!(out.status.success(), "mkfs: {out:?}");
    d
}

/// Mount node i's device, run `body` (with $M the mount point), unmount.
fn with_mount(d: &DiskLab, i: usize, body: &str) -> String {
    let m = d.lab.node_dir(i).join("mnt");
    fs::create_dir_all(&m).unwrap();
    in_private_ns(&format!(
        "M={m}; mount {dev} $M; {body}; umount $M",
        m = m.display(),
        dev = d.device(i).display()
    ))
}

/// Sync-started lines of a device log: (full, bytes).
fn resyncs(log: &str) -> Vec<(bool, u64)> {
    log.lines()
        .filter(|l| l.contains("resync started"))
        .map(|l| {
            let field = |k: &str| {
                l.split_whitespace()
                    .find_map(|w| w.strip_prefix(k))
                    .unwrap_or_default()
                    .to_string()
            };
            (
                field("full=") == "true",
                field("bytes=").parse().unwrap_or(u64::MAX),
            )
        })
        .collect()
}

#[test]
fn failover_keeps_every_synced_file_and_the_old_primary_resyncs_only_changes() {
    let mut d = synced_pair(96 * MIB);
    let sums = with_mount(
        &d,
        1,
        "for k in 1 2 3 4 5 6; do dd if=/dev/urandom of=$M/f$k bs=1M count=2 status=none; done;
         sync; cd $M; sha256sum f*; cd /",
    );
    // The demotion refusal while the peer is Primary.
    assert_eq!(d.refused(2, PRIMARY), "peer is Primary");

    // Crash n1: its device process dies and its link is cut.
    d.crash(1);
    d.lab.link("n1", 0, false);
    d.wait_for("n2 promoted", |d| {
        matches!(
            d.request(2, PRIMARY),
            Some(hbd::disk::ctl::DiskResponse::Done { .. })
        )
    });
    let s = d.status(2);
    assert_eq!(s.role.as_str(), "Primary");
    assert_eq!(s.connection.as_str(), "WFConnection");
    fs::write(d.lab.node_dir(2).join("sums"), &sums).unwrap();
    let check = with_mount(
        &d,
        2,
        &format!(
            "cd $M; sha256sum -c {}; dd if=/dev/urandom of=$M/after bs=1M count=3 status=none; cd /",
            d.lab.node_dir(2).join("sums").display()
        ),
    );
    assert_eq!(check.matches(": OK").count(), 6, "{check}");
    let changed = d.status(2).out_of_sync_bytes;
    assert!(changed > 0);

    // n1 comes back: SyncTarget, bitmap resync of what changed (plus its
    // activity log's hot extents), not a full sync.
    d.lab.link("n1", 0, true);
    d.start(1);
    d.wait_in_sync();
    let syncs = resyncs(&d.log(1));
    assert_eq!(syncs.len(), 1, "{}", d.log(1));
    let (full, bytes) = syncs[0];
    assert!(!full, "{}", d.log(1));
    assert!(
        bytes >= changed && bytes < d.size / 2,
        "resynced {bytes} bytes"
    );
    assert!(d.log(1).contains("BitmapSyncTarget"), "{}", d.log(1));
    let s1 = d.status(1);
    assert_eq!(
        (s1.role.as_str(), s1.peer_role.as_str()),
        ("Secondary", "Primary")
    );
    // Every byte of the data areas is equal once n2 has flushed.
    d.ok(2, DiskRequest::Secondary);
    assert_eq!(d.data_digest(1), d.data_digest(2));
}

#[test]
fn split_brain_is_detected_not_merged_and_resolved_by_bitmap() {
    let mut d = synced_pair(64 * MIB);
    d.ok(1, DiskRequest::Secondary);
    // The split: both disconnect, both become Primary and write.
    d.ok(1, DiskRequest::Disconnect);
    d.ok(2, DiskRequest::Disconnect);
    for i in 1..=2 {
        d.ok(i, PRIMARY);
        with_mount(
            &d,
            i,
            &format!("dd if=/dev/urandom of=$M/only{i} bs=1M count={i} status=none"),
        );
        d.ok(i, DiskRequest::Secondary);
    }
    d.ok(1, CONNECT);
    d.ok(2, CONNECT);
    d.wait_for("split brain on both", |d| {
        (1..=2).all(|i| {
            d.try_status(i)
                .is_some_and(|s| s.connection.as_str() == "StandAlone" && s.split_brain.is_some())
        })
    });
    let sb = d.status(2).split_brain.unwrap();
    assert!(
        sb.my_changes_bytes > 0 && sb.peer_changes_bytes > 0,
        "{sb:?}"
    );
    assert_eq!(sb.peer, "n1");
    assert!(sb.my_last_write_unix_ms.is_some() && sb.peer_last_write_unix_ms.is_some());
    assert_ne!(d.data_digest(1), d.data_digest(2));

    // The seed's recovery: on the victim secondary, disconnect,
    // connect --discard-my-data; on the survivor connect.
    d.ok(2, DiskRequest::Secondary);
    d.ok(2, DiskRequest::Disconnect);
    d.ok(
        2,
        DiskRequest::Connect {
            discard_my_data: true,
        },
    );
    d.ok(1, CONNECT);
    d.wait_in_sync();
    let syncs = resyncs(&d.log(2));
    assert_eq!(syncs.len(), 2, "{}", d.log(2));
    assert!(!syncs[1].0, "a bitmap resync, not a full one: {}", d.log(2));
    assert!(syncs[1].1 < d.size / 4);
    assert_eq!(d.data_digest(1), d.data_digest(2));
    d.ok(2, PRIMARY);
    let files = with_mount(&d, 2, "ls $M");
    assert!(
        files.contains("only1") && !files.contains("only2"),
        "{files}"
    );
}

#[test]
fn refusals_outdated_data_and_corrupt_metadata() {
    let mut d = synced_pair(32 * MIB);
    assert_eq!(d.refused(2, PRIMARY), "peer is Primary");
    // Outdated data: only with --force.
    d.ok(2, DiskRequest::Disconnect);
    d.ok(2, DiskRequest::Outdate);
    d.ok(1, DiskRequest::Secondary);
    assert_eq!(d.refused(2, PRIMARY), "local disk Outdated");
    // Outdated survives a restart (it is in the metadata).
    d.ok(2, DiskRequest::Down);
    assert_eq!(d.exit_code(2), Some(0));
    d.start(2);
    assert_eq!(d.status(2).disk.as_str(), "Outdated");
    d.ok(2, DiskRequest::Disconnect);
    assert_eq!(d.refused(2, PRIMARY), "local disk Outdated");
    d.ok(2, FORCE);
    d.ok(2, DiskRequest::Secondary);

    // Corrupt metadata: the device refuses to start, dump-md says why.
    d.ok(2, DiskRequest::Down);
    d.exit_code(2);
    let f = fs::OpenOptions::new()
        .write(true)
        .open(d.backing(2))
        .unwrap();
    use std::os::unix::fs::FileExt;
    let sb = (32 * MIB / 4096 - 1) * 4096;
    f.write_all_at(b"garbage!", sb + 40).unwrap();
    drop(f);
    d.start(2);
    assert_eq!(d.exit_code(2), Some(1));
    assert!(d.log(2).contains("meta data corrupt"), "{}", d.log(2));
    let out = d.hbctl_disk(2, &["dump-md", RES]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("corrupt"));
}
