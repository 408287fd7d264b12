//! Scenario 1 — shared storage (seed 002), end to end with real software:
//! two nodes in the netns lab, each hbd in its own mount namespace (`ip
//! netns exec`), one group `IPaddr2 drbddisk Filesystem(ext4) mysqld
//! (real MariaDB, datadir on the replicated disk) daemon(tests/fixtures/app.py)
//! mon` with checks on the MariaDB and app ports. A client in the client
//! namespace keeps writing rows through the VIP and records which commits
//! were acknowledged; after every move each acknowledged row must be there.
//!
//! Needs root, /dev/fuse, loop devices, MariaDB and python3-pymysql
//! (scripts/setup). No timing is asserted; the client-side outages are
//! printed (`cargo test --test scenario_shared -- --nocapture`).

mod common;

use common::disk::*;
use common::scenario::*;
use common::{ha_cf, repo};
use hbd::disk::ctl::DiskRequest;
use serde_json::Value;
use std::collections::BTreeSet;
use std::fs;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

const VIP: &str = "192.0.2.50";
const APP_PORT: u16 = 8080;
/// MariaDB's first start initializes the datadir; a takeover includes
/// crash recovery. Generous: the machine may be busy.
const LONG: Duration = Duration::from_secs(300);

fn prerequisites() {
    common::require_root();
    for p in [
        "/usr/sbin/mariadbd",
        "/usr/bin/mariadb-admin",
        "/usr/bin/mariadb-install-db",
        "/usr/bin/curl",
    ] {
        assert!(
            Path::new(p).exists(),
            "{p} is missing: run scripts/setup (MariaDB, curl)"
        );
    }
    let ok = Command::new("/usr/bin/python3")
        .args(["-c", "import pymysql"])
        .status()
        .is_ok_and(|s| s.success());
    assert!(ok, "python3-pymysql is missing: run scripts/setup");
}

/// The group's owner and state as node i reports them.
fn group(d: &DiskLab, i: usize) -> Option<(String, String)> {
    let s = d.lab.status(i)?;
    let g = &s["groups"][0];
    Some((
        g["owner"].as_str()?.to_string(),
        g["state"].as_str()?.to_string(),
    ))
}

fn started_on(d: &DiskLab, i: usize) -> bool {
    group(d, i).is_some_and(|(o, s)| o == format!("n{i}") && s == "started")
}

/// Waits up to `timeout` for `f`; on timeout panics with the logs.
fn wait(d: &DiskLab, what: &str, timeout: Duration, mut f: impl FnMut(&DiskLab) -> bool) {
    let start = Instant::now();
    while start.elapsed() < timeout {
        if f(d) {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let mut logs = String::new();
    for i in 1..=2 {
        logs.push_str(&format!(
            "\n--- hbd n{i} ---\n{}\n--- device n{i} ---\n{}",
            tail(&d.lab.log(i), 150),
            tail(&d.log(i), 40)
        ));
        if let Some(s) = d.lab.status(i) {
            logs.push_str(&format!("\nstatus n{i}: {s}\n"));
        }
    }
    panic!("timed out after {timeout:?} waiting for: {what}{logs}");
}

fn tail(s: &str, n: usize) -> String {
    let lines: Vec<&str> = s.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// `sh -c script` in node i's hbd mount namespace (where the group's
/// filesystem is mounted).
fn in_node_mounts(d: &DiskLab, i: usize, script: &str) -> String {
    let out = Command::new("nsenter")
        .args(["-t", &d.lab.pid(i).to_string(), "-m", "sh", "-c", script])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The ids stored, read through the VIP from the client namespace.
fn stored_ids(d: &DiskLab) -> BTreeSet<u64> {
    let url = format!("http://{VIP}:{APP_PORT}/rows");
    for _ in 0..50 {
        if let Some((200, body)) = curl(&d.lab.ns("c"), &[&url], 20) {
            let v: Value = serde_json::from_str(&body).expect("GET /rows is JSON");
            return v
                .as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_u64().unwrap())
                .collect();
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    panic!("GET {url} does not answer 200");
}

/// Every acknowledged id is stored.
fn assert_all_present(d: &DiskLab, acked: &[(u64, Instant)], when: &str) {
    let stored = stored_ids(d);
    let lost: Vec<u64> = acked
        .iter()
        .map(|a| a.0)
        .filter(|id| !stored.contains(id))
        .collect();
    assert!(
        lost.is_empty(),
        "{when}: {} of {} acknowledged rows lost: {lost:?}",
        lost.len(),
        acked.len()
    );
}

/// Both nodes configured with the seed's stack; the disk synced, ext4 made,
/// n1's device Secondary again, the devices up.
fn scenario() -> DiskLab {
    let mut d = DiskLab::with(256 * MIB, "", true);
    d.start(1);
    d.start(2);
    d.wait_connected();
    d.ok(1, DiskRequest::Primary { force: true });
    d.wait_in_sync();
    let out = Command::new("mkfs.ext4")
        .args(["-q", "-F"])
        .arg(d.device(1))
        .output()
        .unwrap();
    assert!(out.status.success(), "mkfs: {out:?}");
    d.ok(1, DiskRequest::Secondary);

    let mnt = d.lab.dir.path().join("mnt");
    fs::create_dir_all(&mnt).unwrap();
    let m = mnt.display().to_string();
    let dev = d.device(1).display().to_string();
    // The app's pid file and log live on the replicated disk: one path
    // for both nodes, and only the holder has it mounted.
    let app = format!(
        "daemon::{m}/app/app.pid::/usr/bin/python3::{}::--port::{APP_PORT}::--socket::{m}/mysql/mysqld.sock",
        repo().join("tests/fixtures/app.py").display()
    );
    let haresources = format!(
        "n1 IPaddr2::{VIP}/24/eth0 drbddisk::{RES} Filesystem::{dev}::{m}::ext4 \\\n   mysqld::{m}/mysql {app} mon\n"
    );
    let cluster = r#"
[[check]]
name = "mariadb"
type = "tcp"
port = 3306
interval = "1s"
timeout = "1s"
fall = 2

[[check]]
name = "app"
type = "http"
url = "http://127.0.0.1:8080/health"
interval = "1s"
timeout = "1s"
fall = 2
"#;
    let ha = ha_cf(2, "bcast eth0", "200ms", "2").replace("auto_failback on", "auto_failback off");
    for i in 1..=2 {
        d.lab.write(i, "ha.cf", &ha);
        d.lab.write(i, "haresources", &haresources);
        d.lab.write(i, "cluster.toml", cluster);
        let out = Command::new(common::HBCTL)
            .arg("check")
            .arg("--config")
            .arg(d.lab.config_dir(i))
            .args(["--node", &format!("n{i}")])
            .output()
            .unwrap();
        assert!(out.status.success(), "hbctl check n{i}: {out:?}");
    }
    d
}

/// n1 dies whole: every process of the node (hbd, its device, MariaDB,
/// the app) is killed and its link cut; n2 takes over with MariaDB's crash
/// recovery and every acknowledged row is there. n1 comes back and resyncs
/// only what changed; `hbctl standby` moves the group back without losing a
/// row; killing mariadbd on the holder makes mon move the group, which
/// does not go back to n1 (even asked to leave n2) until `hbctl clear`.
#[test]
fn shared_storage_failover_keeps_every_acknowledged_row() {
    prerequisites();
    let t0 = Instant::now();
    let mut d = scenario();
    let _reaper = Reaper(vec![d.lab.ns("n1"), d.lab.ns("n2"), d.lab.ns("c")]);
    d.lab.start_all();
    wait(
        &d,
        "the group started on n1 (MariaDB initialized)",
        LONG,
        |d| started_on(d, 1),
    );
    eprintln!("group started on n1 after {:?}", t0.elapsed());

    let client = Client::start(d.lab.ns("c"), format!("http://{VIP}:{APP_PORT}"));
    assert!(
        client.wait_more(30, LONG),
        "the client gets no acknowledgements through the VIP\n{}",
        tail(&d.lab.log(1), 100)
    );

    // --- The holder dies: every process of n1, and its link.
    let loop_dev = d.try_status(1).and_then(|s| s.loop_device);
    let before = client.acked();
    let crash = Instant::now();
    kill_netns(&d.lab.ns("n1"));
    d.lab.kill(1);
    d.lab.link("n1", 0, false);
    if let Some(dev) = loop_dev {
        detach_loop(&dev, &d.lab.run_dir(1));
    }
    wait(&d, "the group started on n2 after n1's crash", LONG, |d| {
        started_on(d, 2)
    });
    eprintln!("n2 took over {:?} after the crash", crash.elapsed());
    assert!(
        client.wait_more(30, LONG),
        "the client does not get through the VIP after the takeover"
    );
    let acked_now: Vec<(u64, Instant)> = client.record.lock().unwrap().acked.clone();
    assert_all_present(&d, &acked_now, "after n1's crash");
    let outage = acked_now[before..]
        .first()
        .map(|a| a.1 - crash)
        .unwrap_or_default();
    eprintln!(
        "crash: client served again {outage:?} after the crash; {} rows acknowledged so far",
        acked_now.len()
    );
    // n1's MariaDB was killed, so n2's started from a crashed datadir.
    let err_log = in_node_mounts(
        &d,
        2,
        &format!("cat {}/mnt/mysql/mysqld.err", d.lab.dir.path().display()),
    );
    // This start's part of the log (each start logs "... as process N").
    let this_start = err_log.rsplit_once("as process").map_or(&*err_log, |p| p.1);
    assert!(
        this_start.contains("crash recovery"),
        "n2's MariaDB should have run InnoDB crash recovery:\n{}",
        tail(&err_log, 60)
    );

    // --- n1 comes back: its device resyncs as SyncTarget, from the bitmap.
    d.lab.link("n1", 0, true);
    d.lab.start(1);
    wait(&d, "n1's device back in sync", LONG, |d| {
        d.try_status(1).is_some_and(|s| {
            s.connection.as_str() == "Connected"
                && s.disk.as_str() == "UpToDate"
                && s.peer_disk.as_str() == "UpToDate"
        })
    });
    let syncs = resyncs(&d.log(1));
    assert!(
        syncs.last().is_some_and(|s| !s.0 && s.1 < d.size),
        "n1 should resync only what changed: {syncs:?}\n{}",
        d.log(1)
    );
    eprintln!(
        "rejoin: n1 resynced {} bytes (bitmap)",
        syncs.last().unwrap().1
    );
    assert!(
        started_on(&d, 2),
        "the group stays on n2 (auto_failback off)"
    );

    // --- Planned switchover back to n1.
    let before = client.acked();
    let out = d.lab.hbctl(2, &["standby", "--timeout", "300"]);
    assert!(
        out.status.success(),
        "hbctl standby: {out:?}\n{}",
        tail(&d.lab.log(2), 100)
    );
    wait(&d, "the group started on n1 after standby", LONG, |d| {
        started_on(d, 1)
    });
    assert!(
        client.wait_more(30, LONG),
        "the client does not get through after the switchover"
    );
    let acked_now: Vec<(u64, Instant)> = client.record.lock().unwrap().acked.clone();
    assert_all_present(&d, &acked_now, "after hbctl standby");
    eprintln!(
        "standby: longest client outage {:?}",
        longest_gap(&acked_now[before.saturating_sub(1)..])
    );

    // --- mariadbd dies on the holder: mon moves the group to n2.
    let before = client.acked();
    let servers = netns_pids_named(&d.lab.ns("n1"), "mariadbd");
    assert_eq!(servers.len(), 1, "one MariaDB on n1: {servers:?}");
    let killed = Instant::now();
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(servers[0]),
        nix::sys::signal::Signal::SIGKILL,
    );
    wait(&d, "mon moved the group to n2", LONG, |d| started_on(d, 2));
    assert!(
        client.wait_more(30, LONG),
        "the client does not get through after mon moved the group"
    );
    let acked_now: Vec<(u64, Instant)> = client.record.lock().unwrap().acked.clone();
    assert_all_present(&d, &acked_now, "after mon moved the group");
    eprintln!(
        "mon: group on n2 {:?} after mariadbd was killed; longest client outage {:?}",
        killed.elapsed(),
        longest_gap(&acked_now[before.saturating_sub(1)..])
    );
    let s = d.lab.status(1).unwrap();
    assert!(
        s["groups"][0]["unhealthy"].is_string(),
        "n1 should say the group is unhealthy there: {s}"
    );

    // The group does not go back to n1 until its checks pass there: asked
    // to leave n2, it stays (n1 is the only other node, and unhealthy).
    let out = d.lab.hbctl(2, &["standby", "--no-wait"]);
    assert!(out.status.success(), "hbctl standby --no-wait: {out:?}");
    std::thread::sleep(Duration::from_secs(3));
    assert!(
        started_on(&d, 2),
        "the group must not go to n1 while it is unhealthy there: {}",
        d.lab.status(2).unwrap()
    );
    let before = client.acked();
    let name = format!("IPaddr2::{VIP}/24/eth0");
    let out = d.lab.hbctl(1, &["clear", &name]);
    assert!(out.status.success(), "hbctl clear: {out:?}");
    // n2's standby still stands: now that n1 may run it, the group moves.
    wait(&d, "the group back on n1 after hbctl clear", LONG, |d| {
        started_on(d, 1)
    });
    assert!(
        client.wait_more(30, LONG),
        "the client does not get through after the group came back"
    );
    let acked = client.finish();
    assert_all_present(&d, &acked, "after hbctl clear");
    eprintln!(
        "clear: back on n1; longest client outage {:?}",
        longest_gap(&acked[before.saturating_sub(1)..])
    );
    eprintln!(
        "{} rows acknowledged, all present; scenario took {:?}",
        acked.len(),
        t0.elapsed()
    );
}
