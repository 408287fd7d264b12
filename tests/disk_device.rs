//! The replicated device end to end: two `hbd-disk` processes in the netns
//! lab, loop devices, real ext4. Needs root, /dev/fuse and loop devices.
//! ext4 is only mounted inside `unshare --mount` children.

mod common;

use common::{ha_cf, HBCTL};

use common::disk::*;
use hbd::disk::ctl::DiskRequest;
use std::fs;
use std::process::{Command, Output};

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
    // The notify hook (cluster.toml [notify]) must hear of the split brain.
    let events = d.lab.dir.path().join("events");
    for i in 1..=2 {
        d.lab.write(
            i,
            "cluster.toml",
            &format!(
                "[notify]\ncommand = \"echo $HBD_NODE $HBD_EVENT $HBD_RESOURCE >> {}\"\n",
                events.display()
            ),
        );
        // The devices read the configuration when they start.
        d.ok(i, DiskRequest::Secondary);
        d.ok(i, DiskRequest::Down);
        d.wait_exit(i);
    }
    d.start(1);
    d.start(2);
    d.wait_in_sync();
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
    d.wait_for("the notify hook ran on both", |_| {
        let e = fs::read_to_string(&events).unwrap_or_default();
        e.contains("n1 split-brain drbddisk::r0") && e.contains("n2 split-brain drbddisk::r0")
    });
    let sb = d.status(2).split_brain.unwrap();
    assert!(
        sb.my_changes_bytes > 0 && sb.peer_changes_bytes > 0,
        "{sb:?}"
    );
    assert_eq!(sb.peer, "n1");
    assert!(sb.my_last_write_unix_ms.is_some() && sb.peer_last_write_unix_ms.is_some());
    assert_ne!(d.data_digest(1), d.data_digest(2));

    // `hbctl split-brain` lists it, with both sides' changes.
    let out = Command::new(HBCTL)
        .args(["split-brain", "--json", "--node", "n2", "--config"])
        .arg(d.lab.config_dir(2))
        .arg("--run-dir")
        .arg(d.lab.run_dir(2))
        .output()
        .unwrap();
    let listing = String::from_utf8_lossy(&out.stdout);
    assert!(
        listing.contains("\"r0\"") && listing.contains("peer_changes_bytes"),
        "{listing}"
    );

    // The seed's recovery word for word, hbctl disk for drbdadm: on the
    // victim secondary, disconnect, connect --discard-my-data; on the
    // survivor connect.
    for (i, args) in [
        (2, &["secondary", RES][..]),
        (2, &["disconnect", RES]),
        (2, &["connect", "--discard-my-data", RES]),
        (1, &["connect", RES]),
    ] {
        let out = d.hbctl_disk(i, args);
        assert!(out.status.success(), "n{i} {args:?}: {out:?}");
    }
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
    // Outdated survives a restart (it is in the metadata; n1 stays away so
    // that a connect does not bring n2 UpToDate again).
    d.ok(1, DiskRequest::Disconnect);
    d.ok(2, DiskRequest::Down);
    d.wait_exit(2);
    d.start(2);
    assert_eq!(d.status(2).disk.as_str(), "Outdated");
    d.ok(2, DiskRequest::Disconnect);
    assert_eq!(d.refused(2, PRIMARY), "local disk Outdated");
    d.ok(2, FORCE);
    d.ok(2, DiskRequest::Secondary);

    // Corrupt metadata: the device refuses to start, dump-md says why.
    d.ok(2, DiskRequest::Down);
    d.wait_exit(2);
    let f = fs::OpenOptions::new()
        .write(true)
        .open(d.backing(2))
        .unwrap();
    use std::os::unix::fs::FileExt;
    let sb = (32 * MIB / 4096 - 1) * 4096;
    f.write_all_at(b"garbage!", sb + 40).unwrap();
    drop(f);
    let out = d.try_start(2);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("meta data corrupt"), "{err}");
    let out = d.hbctl_disk(2, &["dump-md", RES]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("corrupt"));
}

#[test]
fn split_brain_resolve_from_the_victim_and_drbdadm_style_verbs() {
    let mut d = synced_pair(48 * MIB);
    let text = |out: Output| {
        assert!(out.status.success(), "{out:?}");
        String::from_utf8(out.stdout).unwrap()
    };
    assert_eq!(
        text(d.hbctl_disk(1, &["role", RES])).trim(),
        "Primary/Secondary"
    );
    assert_eq!(text(d.hbctl_disk(2, &["cstate", RES])).trim(), "Connected");
    assert_eq!(
        text(d.hbctl_disk(2, &["dstate", RES])).trim(),
        "UpToDate/UpToDate"
    );
    let proc = text(d.hbctl_disk(1, &["proc"]));
    assert!(
        proc.contains("cs:Connected ro:Primary/Secondary ds:UpToDate/UpToDate C"),
        "{proc}"
    );
    // A refusal: exit 11 and DRBD's words.
    let out = d.hbctl_disk(2, &["primary", RES]);
    assert_eq!(out.status.code(), Some(11), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("peer is Primary"));

    // The split: cut the link; n2 is forced Primary and writes; so does n1.
    d.lab.link("n2", 0, false);
    d.wait_for("both WFConnection", |d| {
        (1..=2).all(|i| {
            d.try_status(i)
                .is_some_and(|s| s.connection.as_str() == "WFConnection")
        })
    });
    text(d.hbctl_disk(2, &["primary", RES]));
    with_mount(
        &d,
        2,
        "dd if=/dev/urandom of=$M/n2file bs=1M count=2 status=none",
    );
    with_mount(
        &d,
        1,
        "dd if=/dev/urandom of=$M/n1file bs=1M count=1 status=none",
    );
    text(d.hbctl_disk(2, &["secondary", RES]));
    d.lab.link("n2", 0, true);
    d.wait_for("split brain detected", |d| {
        (1..=2).all(|i| d.try_status(i).is_some_and(|s| s.split_brain.is_some()))
    });
    // Resolved from n1, keeping n2's data: n1 (Primary, unmounted) is the
    // victim, n2 is driven through n1's device.
    text(d.hbctl_disk(1, &["secondary", RES]));
    let out = Command::new(HBCTL)
        .args([
            "split-brain",
            "resolve",
            RES,
            "--survivor",
            "n2",
            "--node",
            "n1",
            "--config",
        ])
        .arg(d.lab.config_dir(1))
        .arg("--run-dir")
        .arg(d.lab.run_dir(1))
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}\n{}\n{}", d.log(1), d.log(2));
    d.wait_in_sync();
    let syncs = resyncs(&d.log(1));
    assert!(!syncs.last().unwrap().0, "{}", d.log(1));
    assert_eq!(d.data_digest(1), d.data_digest(2));
    text(d.hbctl_disk(1, &["primary", RES]));
    let files = with_mount(&d, 1, "ls $M");
    assert!(
        files.contains("n2file") && !files.contains("n1file"),
        "{files}"
    );
    text(d.hbctl_disk(1, &["secondary", RES]));
    text(d.hbctl_disk(1, &["down", RES]));
    text(d.hbctl_disk(2, &["down", RES]));
    d.wait_exit(1);
    d.wait_exit(2);
}

/// hbd runs `drbddisk::r0 Filesystem::DEV::MNT::ext4`: the holder's death
/// moves the disk and the filesystem to the peer with every synced file
/// intact; the old holder's hbd, restarted, brings its device up and it
/// resyncs.
#[test]
fn hbd_fails_over_drbddisk_and_filesystem() {
    let mut d = DiskLab::with(64 * MIB, "", true);
    d.start(1);
    d.start(2);
    d.wait_connected();
    d.ok(1, FORCE);
    d.wait_in_sync();
    let out = Command::new("mkfs.ext4")
        .args(["-q", "-F"])
        .arg(d.device(1))
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    d.ok(1, DiskRequest::Secondary);

    let mnt = d.lab.dir.path().join("mnt");
    fs::create_dir_all(&mnt).unwrap();
    let line = format!(
        "n1 drbddisk::{RES} Filesystem::{}::{}::ext4\n",
        d.device(1).display(),
        mnt.display()
    );
    for i in 1..=2 {
        d.lab.write(i, "haresources", &line);
        d.lab
            .write(i, "ha.cf", &ha_cf(2, "bcast eth0", "200ms", "2"));
    }
    d.lab.start_all();
    let started_on = |d: &DiskLab, i: usize, node: &str| {
        d.lab.status(i).is_some_and(|s| {
            s["groups"][0]["owner"] == node && s["groups"][0]["state"] == "started"
        })
    };
    d.wait_for("the group started on n1", |d| started_on(d, 1, "n1"));
    // Write through the mount, which lives in n1's hbd's mount namespace.
    let in_hbd = |d: &DiskLab, i: usize, script: &str| {
        let out = Command::new("nsenter")
            .args(["-t", &d.lab.pid(i).to_string(), "-m", "sh", "-ec", script])
            .output()
            .unwrap();
        assert!(out.status.success(), "{script}: {out:?}");
        String::from_utf8(out.stdout).unwrap()
    };
    let m = mnt.display().to_string();
    let sums = in_hbd(
        &d,
        1,
        &format!(
            "for k in 1 2 3; do dd if=/dev/urandom of={m}/f$k bs=1M count=2 status=none; done; \
             sync; cd {m}; sha256sum f*"
        ),
    );
    let st = d.lab.status(1).unwrap();
    let disk = &st["disks"][0];
    assert_eq!(disk["name"], RES, "{st}");
    assert_eq!(disk["role"], "Primary", "{st}");

    // n1 dies: hbd and its device killed, link cut.
    d.lab.kill(1);
    d.crash(1);
    d.lab.link("n1", 0, false);
    d.wait_for("the group started on n2", |d| started_on(d, 2, "n2"));
    fs::write(d.lab.node_dir(2).join("sums"), &sums).unwrap();
    let check = in_hbd(
        &d,
        2,
        &format!(
            "cd {m}; sha256sum -c {}",
            d.lab.node_dir(2).join("sums").display()
        ),
    );
    assert_eq!(check.matches(": OK").count(), 3, "{check}");

    // n1 comes back: its hbd brings the device up, which resyncs as target.
    d.lab.link("n1", 0, true);
    d.lab.start(1);
    d.wait_for("n1's device back in sync", |d| {
        d.try_status(1)
            .is_some_and(|s| s.connection.as_str() == "Connected" && s.disk.as_str() == "UpToDate")
    });
    assert!(!resyncs(&d.log(1)).last().unwrap().0, "{}", d.log(1));
}

/// Online verify finds a block changed behind the device's back, marks it
/// out of sync, and exactly that block is resynced from the verifying node.
#[test]
fn verify_finds_a_changed_block_and_a_reconnect_repairs_it() {
    let mut d = synced_pair(32 * MIB);
    d.ok(1, DiskRequest::Secondary);
    // Change 4 KiB of n2's backing file directly (as bit rot would).
    {
        use std::os::unix::fs::FileExt;
        let f = fs::OpenOptions::new()
            .write(true)
            .open(d.backing(2))
            .unwrap();
        f.write_all_at(&[0x5a; 4096], 5 * MIB).unwrap();
    }
    let out = d.hbctl_disk(1, &["verify", RES]);
    assert!(out.status.success(), "{out:?}");
    d.wait_for("verify done", |d| {
        d.try_status(1)
            .and_then(|s| s.verify)
            .is_some_and(|v| !v.running)
    });
    let v = d.status(1).verify.unwrap();
    assert_eq!(v.mismatched_bytes, 4096, "{v:?}");
    assert_eq!(v.done_bytes, d.status(1).size_bytes);
    // What verify found is resynced from n1 (it ran verify) at once.
    d.wait_in_sync();
    assert!(
        d.log(2).contains("source=false full=false bytes=4096"),
        "{}",
        d.log(2)
    );
    assert_eq!(d.data_digest(1), d.data_digest(2));
}

/// A resync cut short resumes where it stopped: the second one is a bitmap
/// resync of what was left, not a new full sync.
#[test]
fn an_interrupted_resync_resumes() {
    /// The SyncTarget acknowledges resync data in batches of this size
    /// (device.rs `RS_ACK_BATCH`); the source clears its bits on the ack.
    const ACK_BATCH: u64 = 8 * MIB;
    let mut d = DiskLab::new(64 * MIB, "  syncer { rate 8M; }\n");
    d.start(1);
    d.start(2);
    d.wait_connected();
    d.ok(1, FORCE);
    // Half, so that what may be re-sent (below) stays well under the whole.
    d.wait_for("half synced", |d| {
        d.try_status(2)
            .and_then(|s| s.sync)
            .is_some_and(|s| s.percent >= 50.0)
    });
    d.ok(2, DiskRequest::Disconnect);
    // The source's bitmap (what it will send again) settles only once its
    // link task has ended: until then it still clears bits on the acks n2
    // flushed on its way out. n2's own count settles with it (its link
    // task may still write a block received before the disconnect).
    d.wait_for("n1 saw the link go", |d| {
        d.try_status(1)
            .is_some_and(|s| s.connection.as_str() == "WFConnection")
    });
    let left = d.status(2).out_of_sync_bytes;
    let source_left = d.status(1).out_of_sync_bytes;
    assert!(left > 0 && left < d.size, "{left}");
    // n1 re-sends what it saw no ack for: n2's unacknowledged remainder
    // (less than a batch) and at most one acknowledged batch whose RsAck
    // was still on the way (n1's link task ends on its write error without
    // reading what n2 sent last; a cut link loses it as well).
    assert!(
        source_left >= left && source_left <= left + 2 * ACK_BATCH,
        "n1 has {source_left} bytes out of sync, n2 {left}"
    );
    let before = resyncs(&d.log(2)).len();
    // Full speed for the rest.
    let conf = fs::read_to_string(d.lab.config_dir(2).join("drbd.conf")).unwrap();
    for i in 1..=2 {
        d.lab
            .write(i, "drbd.conf", &conf.replace("rate 8M", "rate 200M"));
        let out = d.hbctl_disk(i, &["adjust", RES]);
        assert!(out.status.success(), "{out:?}");
    }
    d.wait_in_sync();
    let syncs = resyncs(&d.log(2));
    // One resync, then one more after the reconnect; a further one only
    // after a link lost on its own (the 3 s link timeout on a loaded
    // machine), which n2 logs (its own disconnect it does not).
    let lost = d.log(2).matches("connection to the peer lost").count();
    assert!(
        before >= 1 && syncs.len() > before && (syncs.len() == 2 || lost > 0),
        "{syncs:?} ({before} before the disconnect)\n{}",
        d.log(2)
    );
    assert!(syncs[0].0, "{syncs:?}");
    assert!(syncs[before..].iter().all(|s| !s.0), "{syncs:?}");
    // The resumed resync: the union of both bitmaps, i.e. the source's.
    assert!(
        syncs[before].1 <= source_left && syncs[before].1 >= left,
        "{syncs:?}: n2 left {left}, n1 {source_left}"
    );
    assert_eq!(d.data_digest(1), d.data_digest(2));
}
