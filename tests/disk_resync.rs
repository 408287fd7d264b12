//! Resync and online verify end to end (issue 12, findings 3 and 8): two
//! `hbd-disk` processes in the netns lab with real backing files. Needs
//! root, /dev/fuse and loop devices.

mod common;

use common::disk::*;
use hbd::disk::ctl::DiskRequest;
use std::fs;
use std::os::unix::fs::FileExt;
use std::process::Command;

/// Both devices up, n1 forced Primary, initial full sync done, and 8 MiB of
/// non-zero data written through n1's device (so a bad block is visible).
fn synced_pair_with_data(size: u64) -> DiskLab {
    let mut d = DiskLab::new(size, "");
    d.start(1);
    d.start(2);
    d.wait_connected();
    d.ok(1, DiskRequest::Primary { force: true });
    d.wait_in_sync();
    let out = Command::new("dd")
        .args(["if=/dev/urandom", "bs=1M", "count=8", "conv=fsync"])
        .arg(format!("of={}", d.device(1).display()))
        .output()
        .unwrap();
    assert!(out.status.success(), "dd: {out:?}");
    d.wait_in_sync();
    assert_eq!(d.data_digest(1), d.data_digest(2));
    d
}

/// Finding 3: `verify` run on the Secondary while the peer is Primary. The
/// Secondary's copy of one block is changed behind the device's back; the
/// resync that follows must go from the Primary (its data is the one the
/// application sees and acknowledged), never into it.
#[test]
fn verify_on_the_secondary_repairs_it_from_the_primary() {
    let mut d = synced_pair_with_data(32 * MIB);
    let primary_before = d.data_digest(1);
    // Bit rot on n2: 4 KiB at 5 MiB (the data area starts at offset 0 of
    // the backing file with meta-disk internal).
    {
        let f = fs::OpenOptions::new()
            .write(true)
            .open(d.backing(2))
            .unwrap();
        f.write_all_at(&[0x5a; 4096], 5 * MIB).unwrap();
        f.sync_all().unwrap();
    }
    assert_ne!(d.data_digest(1), d.data_digest(2));
    let out = d.hbctl_disk(2, &["verify", RES]);
    assert!(out.status.success(), "{out:?}");
    d.wait_for("verify done on n2", |d| {
        d.try_status(2)
            .and_then(|s| s.verify)
            .is_some_and(|v| !v.running)
    });
    let v = d.status(2).verify.unwrap();
    assert_eq!(v.mismatched_bytes, 4096, "{v:?}");
    d.wait_for("the repair resync done", |d| {
        let both = |i| d.try_status(i);
        match (both(1), both(2)) {
            (Some(a), Some(b)) => {
                a.connection.as_str() == "Connected"
                    && b.connection.as_str() == "Connected"
                    && b.disk.as_str() == "UpToDate"
                    && a.peer_disk.as_str() == "UpToDate"
                    && a.out_of_sync_bytes == 0
                    && b.out_of_sync_bytes == 0
            }
            _ => false,
        }
    });
    let s1 = d.status(1);
    assert_eq!(s1.role.as_str(), "Primary");
    assert_eq!(
        d.data_digest(1),
        primary_before,
        "the Primary's data changed\n--- n1 ---\n{}\n--- n2 ---\n{}",
        d.log(1),
        d.log(2)
    );
    assert_eq!(
        d.data_digest(2),
        primary_before,
        "the bad block was not repaired\n--- n1 ---\n{}\n--- n2 ---\n{}",
        d.log(1),
        d.log(2)
    );
    // n2 was the target of a 4 KiB bitmap resync; n1 never a target.
    assert!(resyncs(&d.log(2)).contains(&(false, 4096)), "{}", d.log(2));
    assert!(resyncs(&d.log(1)).is_empty(), "{}", d.log(1));
}

/// The resync machine end to end with application writes running: n2 is
/// away while n1 writes, comes back and resyncs (slowly) while n1 keeps
/// writing over the same and other blocks. Every acknowledged write ends
/// up on both nodes, and n1 is never a resync target.
#[test]
fn writes_during_a_resync_end_up_on_both_nodes() {
    let mut d = synced_pair_with_data(32 * MIB);
    d.ok(2, DiskRequest::Disconnect);
    let write = |d: &DiskLab, seek_mib: u64, count_mib: u64| {
        let out = Command::new("dd")
            .args(["if=/dev/urandom", "bs=1M", "oflag=direct", "conv=fsync"])
            .arg(format!("seek={seek_mib}"))
            .arg(format!("count={count_mib}"))
            .arg(format!("of={}", d.device(1).display()))
            .output()
            .unwrap();
        assert!(out.status.success(), "dd: {out:?}");
    };
    write(&d, 4, 12);
    assert!(d.status(1).out_of_sync_bytes >= 12 * MIB);
    // Slow resync, so the writes below overlap it (`adjust` on the
    // StandAlone n2 also connects it, as drbdadm adjust).
    let conf = fs::read_to_string(d.lab.config_dir(1).join("drbd.conf")).unwrap();
    for i in 1..=2 {
        d.lab
            .write(i, "drbd.conf", &conf.replace("rate 200M", "rate 4M"));
        let out = d.hbctl_disk(i, &["adjust", RES]);
        assert!(out.status.success(), "{out:?}");
    }
    d.wait_for("n2 SyncTarget", |d| {
        d.try_status(2)
            .is_some_and(|s| s.connection.as_str() == "SyncTarget")
    });
    // Over blocks being resynced, and over blocks already in sync.
    write(&d, 8, 6);
    write(&d, 20, 4);
    d.wait_in_sync();
    assert_eq!(d.status(1).out_of_sync_bytes, 0);
    assert_eq!(d.status(2).out_of_sync_bytes, 0);
    assert_eq!(
        d.data_digest(1),
        d.data_digest(2),
        "\n--- n1 ---\n{}\n--- n2 ---\n{}",
        d.log(1),
        d.log(2)
    );
    assert!(resyncs(&d.log(1)).is_empty(), "{}", d.log(1));
}
