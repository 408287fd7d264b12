//! Scenario 2 — master-master (seed 000), end to end with real software:
//! two nodes in the netns lab, each with a real MariaDB (seed 000's my.cnf:
//! server-id 1/2, log-bin, row format, bind-address 0.0.0.0 so that the
//! VIP reaches it; plus auto_increment_increment 2 / offset 1/2, the usual
//! master-master safeguard the seed leaves out) replicating to the
//! other as the seed sets it up (CHANGE MASTER TO the other node, START
//! SLAVE, both ways), Debian's memcached on each, and hbd in VRRP mode on
//! both with seed 000's keepalived.conf pair: instances DB (VIP
//! 192.0.2.50, VRID 51) and MEMCACHE (VIP 192.0.2.51, VRID 61), nopreempt,
//! PASS auth, the seed's notify state-file script, process checks (each
//! node's own pid files: `pidof` would see the other node's processes, all
//! run in the host's pid namespace), made quick (interval 1, rise 2, fall
//! 2), and a failback gate on DB in cluster.toml that opens only when the
//! node's replication has caught up.
//!
//! A client in the client namespace keeps writing rows through the DB VIP
//! (tests/fixtures/app.py there, one connection to the VIP per request) and
//! records which ids were acknowledged. Killing n1's mariadbd moves only
//! the DB VIP; the client keeps working; every acknowledged row is on n2;
//! n1's mariadbd back, nopreempt keeps the VIP on n2; `hbctl takeover DB`
//! on n1 does nothing while n1's replication lags (gate closed) and moves
//! the VIP back once it has caught up; the state files say what each node
//! is at each step.
//!
//! Needs root, MariaDB, memcached, python3-pymysql and curl (scripts/setup).
//! No timing is asserted; the client-side outages are printed
//! (`cargo test --test scenario_master_master -- --nocapture`).

mod common;

use common::scenario::{longest_gap, Client, Reaper};
use common::services::*;
use common::vrrp::{holders, stays};
use common::Lab;
use std::collections::BTreeSet;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

const DB_VIP: &str = "192.0.2.50";
const MC_VIP: &str = "192.0.2.51";
const ADDRS: [&str; 2] = ["192.0.2.11", "192.0.2.12"];
const APP_PORT: u16 = 8080;

fn prerequisites() {
    common::require_root();
    for p in [
        "/usr/sbin/mariadbd",
        "/usr/bin/mariadb",
        "/usr/bin/mariadb-install-db",
        "/usr/bin/memcached",
        "/usr/bin/curl",
    ] {
        assert!(
            Path::new(p).exists(),
            "{p} is missing: run scripts/setup (MariaDB, memcached, curl)"
        );
    }
    let ok = Command::new("/usr/bin/python3")
        .args(["-c", "import pymysql"])
        .status()
        .is_ok_and(|s| s.success());
    assert!(ok, "python3-pymysql is missing: run scripts/setup");
}

/// Seed 000's keepalived_state.sh (`echo ${3} > .../keepalived_${2}.state`),
/// its state file in `dir`, plus every state appended to a history for the
/// test.
fn state_script(dir: &Path) -> PathBuf {
    let path = dir.join("keepalived_state.sh");
    fs::write(
        &path,
        format!(
            "#!/bin/bash\necho ${{3}} > {d}/keepalived_${{2}}.state\necho ${{3}} >> {d}/keepalived_${{2}}.history\n",
            d = dir.display()
        ),
    )
    .unwrap();
    fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).unwrap();
    path
}

/// Node `i`'s keepalived.conf: seed 000's file for smesql0`i`, placeholders
/// filled, the checks on this node's own pid files and made quick.
fn conf(i: usize, db_pid: &Path, mc_pid: &Path, script: &Path) -> String {
    let check = |p: &Path| format!("/bin/sh -c 'kill -0 $(cat {})'", p.display());
    let text = fs::read_to_string(
        common::repo().join(format!("tests/data/keepalived/seed000_smesql0{i}.conf")),
    )
    .unwrap();
    let out = text
        .replace("<db VIP address - ex: '10.10.10.1'>", DB_VIP)
        .replace("<memcached VIP address - ex: '10.10.10.2'>", MC_VIP)
        .replace("<8 character password>", "mmpass00")
        .replace("/sbin/pidof mysqld", &check(db_pid))
        .replace("/sbin/pidof memcached", &check(mc_pid))
        .replace("interval 2", "interval 1")
        .replace("rise 5", "rise 2")
        .replace("fall 5", "fall 2")
        .replace(
            "/usr/libexec/keepalived/keepalived_state.sh",
            &script.display().to_string(),
        );
    assert!(!out.contains('<'), "a placeholder left: {out}");
    out
}

fn state(dir: &Path, instance: &str) -> String {
    fs::read_to_string(dir.join(format!("keepalived_{instance}.state")))
        .unwrap_or_default()
        .trim()
        .to_string()
}

/// The states in order, repeats folded.
fn history(dir: &Path, instance: &str) -> Vec<String> {
    let mut v: Vec<String> = fs::read_to_string(dir.join(format!("keepalived_{instance}.history")))
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect();
    v.dedup();
    v
}

/// Fields drop in order: the servers are killed before the lab goes.
struct World {
    db: Vec<MariaNode>,
    lab: Lab,
    dirs: Vec<PathBuf>,
}

impl World {
    /// (DB, MEMCACHE) state file contents of node i.
    fn states(&self, i: usize) -> (String, String) {
        let d = &self.dirs[i - 1];
        (state(d, "DB"), state(d, "MEMCACHE"))
    }

    fn is(&self, i: usize, db: &str, mc: &str) -> bool {
        self.states(i) == (db.to_string(), mc.to_string())
    }

    fn logs(&self) -> String {
        let mut s = String::new();
        for i in 1..=2 {
            let log = self.lab.log(i);
            let lines: Vec<&str> = log.lines().collect();
            s.push_str(&format!(
                "--- hbd n{i} (last 80 lines) ---\n{}\n",
                lines[lines.len().saturating_sub(80)..].join("\n")
            ));
            for inst in ["DB", "MEMCACHE"] {
                s.push_str(&format!(
                    "{inst} states n{i}: {:?}\n",
                    history(&self.dirs[i - 1], inst)
                ));
            }
            s.push_str(&format!(
                "slave status n{i}: {:?}\n",
                self.db[i - 1].slave_status()
            ));
            s.push_str(&format!(
                "DB VIP on {:?}, MEMCACHE VIP on {:?}\n",
                holders(&self.lab, DB_VIP),
                holders(&self.lab, MC_VIP)
            ));
        }
        let app = fs::read_to_string(self.lab.dir.path().join("app.log")).unwrap_or_default();
        let lines: Vec<&str> = app.lines().collect();
        s.push_str(&format!(
            "--- app (last 20 lines) ---\n{}\n",
            lines[lines.len().saturating_sub(20)..].join("\n")
        ));
        s
    }

    /// Waits up to [`LONG`] for `f`; on timeout panics with the logs.
    fn wait(&self, what: &str, mut f: impl FnMut(&World) -> bool) {
        let start = Instant::now();
        while start.elapsed() < LONG {
            if f(self) {
                return;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        panic!(
            "timed out after {LONG:?} waiting for: {what}\n{}",
            self.logs()
        );
    }

    fn stays(&self, what: &str, d: Duration, f: impl Fn(&World) -> bool) {
        stays(what, d, || f(self), || self.logs());
    }

    fn vips(&self, db: &str, mc: &str) -> bool {
        holders(&self.lab, DB_VIP) == [db] && holders(&self.lab, MC_VIP) == [mc]
    }

    /// Waits until node i's server holds every id in `ids`.
    fn wait_rows(&self, i: usize, ids: &[u64], when: &str) {
        let start = Instant::now();
        loop {
            let stored = self.db[i - 1].ids();
            let lost: Vec<u64> = ids
                .iter()
                .copied()
                .filter(|id| !stored.contains(id))
                .collect();
            if lost.is_empty() {
                return;
            }
            if start.elapsed() > LONG {
                panic!(
                    "{when}: {} of {} acknowledged rows missing on n{i}: {lost:?}\n{}",
                    lost.len(),
                    ids.len(),
                    self.logs()
                );
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

fn acked(client: &Client) -> Vec<u64> {
    client
        .record
        .lock()
        .unwrap()
        .acked
        .iter()
        .map(|a| a.0)
        .collect()
}

/// The rows acknowledged at or after `t`.
fn acked_since(client: &Client, t: Instant) -> Vec<u64> {
    client
        .record
        .lock()
        .unwrap()
        .acked
        .iter()
        .filter(|a| a.1 >= t)
        .map(|a| a.0)
        .collect()
}

fn more(w: &World, client: &Client, n: usize, what: &str) {
    assert!(
        client.wait_more(n, LONG),
        "the client does not get {n} more rows acknowledged {what}\n{}",
        w.logs()
    );
}

#[test]
fn seed_000_master_master_with_real_mariadb_and_memcached() {
    prerequisites();
    let t0 = Instant::now();
    let lab = Lab::new(2, 1);
    let namespaces = vec![lab.ns("n1"), lab.ns("n2"), lab.ns("c")];
    let dirs: Vec<PathBuf> = (1..=2)
        .map(|i| {
            let d = lab.node_dir(i).join("run-keepalived");
            fs::create_dir_all(&d).unwrap();
            fs::set_permissions(lab.node_dir(i), fs::Permissions::from_mode(0o755)).unwrap();
            d
        })
        .collect();

    // MariaDB on both nodes, master-master as the seed sets it up.
    let mut db: Vec<MariaNode> = (1..=2)
        .map(|i| {
            MariaNode::new(
                lab.ns(&format!("n{i}")),
                i as u32,
                lab.node_dir(i).join("db"),
            )
        })
        .collect();
    for m in db.iter_mut() {
        m.start();
    }
    for m in db.iter_mut() {
        m.wait_ready();
    }
    master_master(&db[0], &db[1], ADDRS);
    // The application's user, created on n1, replicated to n2.
    db[0].sql(
        "CREATE USER 'app'@'%' IDENTIFIED BY 'apppass'; \
         GRANT ALL PRIVILEGES ON *.* TO 'app'@'%'; FLUSH PRIVILEGES",
    );
    let mc: Vec<Memcached> = (1..=2)
        .map(|i| Memcached::start(&lab.ns(&format!("n{i}")), &dirs[i - 1]))
        .collect();
    eprintln!(
        "[{:>6.1?}] MariaDB master-master and memcached up",
        t0.elapsed()
    );

    let mut w = World { db, lab, dirs };
    // Dropped before the world: every process left in the lab's namespaces
    // is killed while they still exist.
    let _reaper = Reaper(namespaces);
    w.wait("the app user replicated to n2", |w| {
        w.db[1]
            .try_sql("SELECT user FROM mysql.user WHERE user='app'")
            .is_ok_and(|s| s.trim() == "app")
    });

    for i in 1..=2 {
        let script = state_script(&w.dirs[i - 1]);
        let text = conf(i, &w.db[i - 1].pidfile(), &mc[i - 1].pidfile, &script);
        w.lab.write(i, "keepalived.conf", &text);
        w.lab.write(
            i,
            "cluster.toml",
            &format!(
                "[vrrp.gate.DB]\ncommand = \"{}\"\ninterval = \"1s\"\ntimeout = \"5s\"\n",
                w.db[i - 1].gate_script().display()
            ),
        );
        let out = Command::new(common::HBCTL)
            .args(["check", "--node", &format!("n{i}"), "--config"])
            .arg(w.lab.config_dir(i))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "hbctl check n{i}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    // smesql01 first: it takes both VIPs (priority 105); smesql02 (100)
    // then stays BACKUP for both.
    w.lab.start(1);
    w.wait("n1 holds both VIPs, MASTER in its state files", |w| {
        w.vips("n1", "n1") && w.is(1, "MASTER", "MASTER")
    });
    w.lab.start(2);
    w.wait("n2 is BACKUP for both", |w| w.is(2, "BACKUP", "BACKUP"));
    w.stays("n1 keeps both VIPs", Duration::from_secs(3), |w| {
        w.vips("n1", "n1") && w.is(1, "MASTER", "MASTER")
    });
    assert!(
        memcached_answers(&w.lab, "c", MC_VIP),
        "memcached through its VIP\n{}",
        w.logs()
    );
    eprintln!(
        "[{:>6.1?}] hbd up: n1 MASTER for DB and MEMCACHE",
        t0.elapsed()
    );

    // The client writes rows through the DB VIP.
    let _app = App::start(&w.lab, DB_VIP, APP_PORT);
    let client = Client::start(w.lab.ns("c"), format!("http://127.0.0.1:{APP_PORT}"));
    more(&w, &client, 20, "through the DB VIP on n1");
    // Replication is asynchronous: let n2 have what was acknowledged so far,
    // so that what n1 acknowledges in the instant of its crash is the only
    // tail at risk (it is n2's once n1 is back, checked at the end).
    w.wait_rows(2, &acked(&client), "replicated to n2 before the crash");

    // mariadbd dies on n1: only the DB VIP moves.
    let before_kill = acked(&client);
    let crash = Instant::now();
    w.db[0].kill();
    w.wait("the DB VIP on n2: DB FAULT on n1, MASTER on n2", |w| {
        holders(&w.lab, DB_VIP) == ["n2"]
            && state(&w.dirs[0], "DB") == "FAULT"
            && state(&w.dirs[1], "DB") == "MASTER"
    });
    // From here on every acknowledgement is n2's (the VIP is there).
    let moved = Instant::now();
    assert_eq!(holders(&w.lab, MC_VIP), ["n1"], "{}", w.logs());
    assert!(w.is(1, "FAULT", "MASTER"), "{}", w.logs());
    assert!(w.is(2, "MASTER", "BACKUP"), "{}", w.logs());
    assert!(
        memcached_answers(&w.lab, "c", MC_VIP),
        "memcached through its VIP on n1\n{}",
        w.logs()
    );
    more(&w, &client, 20, "through the DB VIP on n2");
    eprintln!(
        "[{:>6.1?}] DB moved to n2; client served again {:.1?} after the crash",
        t0.elapsed(),
        client
            .record
            .lock()
            .unwrap()
            .acked
            .iter()
            .find(|a| a.1 > crash)
            .map(|a| a.1 - crash)
            .unwrap_or_default()
    );
    w.wait_rows(2, &before_kill, "on n2 after the failover");
    // Only what n2 acknowledged: a row n1 acknowledged in the instant
    // between `before_kill` and its crash may not have reached n2 yet
    // (asynchronous replication); it is n2's once n1 is back, checked at
    // the end.
    w.wait_rows(2, &acked_since(&client, moved), "on n2 (written there)");

    // n1's mariadbd back (crash recovery): DB BACKUP on n1, and nopreempt
    // keeps the VIP on n2.
    w.db[0].start();
    w.db[0].wait_ready();
    w.wait("DB BACKUP on n1 again", |w| w.is(1, "BACKUP", "MASTER"));
    w.stays(
        "nopreempt: the DB VIP stays on n2",
        Duration::from_secs(5),
        |w| w.vips("n2", "n1") && w.is(2, "MASTER", "BACKUP"),
    );
    eprintln!(
        "[{:>6.1?}] n1's mariadbd back, DB stays on n2",
        t0.elapsed()
    );

    // n1's replication held back (its SQL thread stopped while the client
    // writes through n2): the gate closes and `hbctl takeover DB` on n1
    // does not move the VIP.
    w.db[0].sql("STOP SLAVE SQL_THREAD");
    w.wait("n1's failback gate closed", |w| {
        last_gate(&w.lab.log(1)) == Some(false)
    });
    more(&w, &client, 10, "through n2 while n1 lags");
    let out = w.lab.hbctl(1, &["takeover", "DB"]);
    assert!(out.status.success(), "hbctl takeover DB: {out:?}");
    w.stays(
        "the gate is closed: the DB VIP stays on n2",
        Duration::from_secs(5),
        |w| w.vips("n2", "n1") && w.is(1, "BACKUP", "MASTER") && w.is(2, "MASTER", "BACKUP"),
    );

    assert_eq!(
        last_gate(&w.lab.log(1)),
        Some(false),
        "the gate stayed closed\n{}",
        w.logs()
    );
    eprintln!(
        "[{:>6.1?}] n1 lags (SQL thread stopped): takeover held by the gate",
        t0.elapsed()
    );

    // Replication resumes and catches up: the gate opens, and takeover
    // moves the DB VIP back to n1, which has every acknowledged row.
    w.db[0].sql("START SLAVE SQL_THREAD");
    w.wait("n1's replication caught up", |w| w.db[0].caught_up());
    w.wait("n1's failback gate open", |w| {
        last_gate(&w.lab.log(1)) == Some(true)
    });
    let before_failback = acked(&client);
    w.wait_rows(1, &before_failback, "on n1 when its gate opened");
    let out = w.lab.hbctl(1, &["takeover", "DB"]);
    assert!(out.status.success(), "hbctl takeover DB: {out:?}");
    w.wait("the DB VIP back on n1", |w| {
        w.vips("n1", "n1") && w.is(1, "MASTER", "MASTER") && w.is(2, "BACKUP", "BACKUP")
    });
    more(&w, &client, 20, "through the DB VIP back on n1");
    eprintln!("[{:>6.1?}] DB back on n1", t0.elapsed());

    // Every acknowledged row on both servers (n2 gets n1's rows again now
    // that n1 is back: any tail n1 acknowledged as it crashed included).
    let all = client.finish();
    let ids: Vec<u64> = all.iter().map(|a| a.0).collect();
    let unique: BTreeSet<u64> = ids.iter().copied().collect();
    assert_eq!(unique.len(), ids.len(), "ids acknowledged twice");
    w.wait_rows(1, &ids, "on n1 at the end");
    w.wait_rows(2, &ids, "on n2 at the end");

    // The state files, in order.
    let h = |i: usize, inst: &str| history(&w.dirs[i - 1], inst);
    let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    assert!(
        h(1, "DB").ends_with(&s(&["MASTER", "FAULT", "BACKUP", "MASTER"])),
        "n1 DB: {:?}\n{}",
        h(1, "DB"),
        w.logs()
    );
    assert!(
        h(2, "DB").ends_with(&s(&["BACKUP", "MASTER", "BACKUP"])),
        "n2 DB: {:?}\n{}",
        h(2, "DB"),
        w.logs()
    );
    assert_eq!(h(1, "MEMCACHE").last().map(String::as_str), Some("MASTER"));
    assert_eq!(
        h(1, "MEMCACHE").iter().filter(|x| *x == "MASTER").count(),
        1,
        "n1 MEMCACHE was MASTER once, throughout: {:?}",
        h(1, "MEMCACHE")
    );
    assert!(
        !h(2, "MEMCACHE").contains(&"MASTER".to_string()),
        "n2 MEMCACHE never MASTER: {:?}",
        h(2, "MEMCACHE")
    );
    eprintln!(
        "[{:>6.1?}] done: {} rows acknowledged, longest client gap {:.1?}",
        t0.elapsed(),
        ids.len(),
        longest_gap(&all)
    );
    drop(mc);
}
