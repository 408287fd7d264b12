//! hbd ↔ hbd in VRRP mode with seed 000's keepalived.conf pair (DB and
//! MEMCACHE instances, two VRIDs, a process check each, nopreempt, the
//! notify script writing the state into a file), only the placeholders
//! filled and the checks made quick (interval 1, rise 2, fall 2; the tracked
//! processes are `sleep`s of this test, checked through their pid files).

mod common;

use common::vrrp::{holders, stays, wait};
use common::Lab;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::Duration;

const DB_VIP: &str = "192.0.2.50";
const MC_VIP: &str = "192.0.2.51";

/// A tracked process: a `sleep` whose pid is in `pidfile`.
struct Tracked {
    pidfile: PathBuf,
    child: Option<Child>,
}

impl Tracked {
    fn new(pidfile: PathBuf) -> Tracked {
        let mut t = Tracked {
            pidfile,
            child: None,
        };
        t.start();
        t
    }

    fn start(&mut self) {
        let c = Command::new("sleep").arg("100000").spawn().expect("sleep");
        fs::write(&self.pidfile, format!("{}\n", c.id())).unwrap();
        self.child = Some(c);
    }

    fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Tracked {
    fn drop(&mut self) {
        self.kill();
    }
}

fn seed(file: &str) -> String {
    fs::read_to_string(common::repo().join("tests/data/keepalived").join(file)).unwrap()
}

/// Seed 000's keepalived_state.sh: `TYPE NAME STATE PRIORITY`; the state
/// into NAME.state, and every state into NAME.history for the test.
fn state_script(dir: &Path) -> PathBuf {
    let path = dir.join("keepalived_state.sh");
    fs::write(
        &path,
        format!(
            "#!/bin/sh\nTYPE=$1\nNAME=$2\nSTATE=$3\necho \"$STATE\" > {d}/$NAME.state\necho \"$STATE\" >> {d}/$NAME.history\n",
            d = dir.display()
        ),
    )
    .unwrap();
    fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).unwrap();
    path
}

/// Node `i`'s configuration: seed 000's file for smesql0`i`.
fn conf(i: usize, dir: &Path, script: &Path) -> String {
    let check = |name: &str| {
        format!(
            "/bin/sh -c 'kill -0 $(cat {})'",
            dir.join(format!("{name}.pid")).display()
        )
    };
    seed(&format!("seed000_smesql0{i}.conf"))
        .replace("<db VIP address - ex: '10.10.10.1'>", DB_VIP)
        .replace("<memcached VIP address - ex: '10.10.10.2'>", MC_VIP)
        .replace("<8 character password>", "pairpass")
        .replace("/sbin/pidof mysqld", &check("db"))
        .replace("/sbin/pidof memcached", &check("mc"))
        .replace("interval 2", "interval 1")
        .replace("rise 5", "rise 2")
        .replace("fall 5", "fall 2")
        .replace(
            "/usr/libexec/keepalived/keepalived_state.sh",
            &script.display().to_string(),
        )
}

fn read(dir: &Path, name: &str) -> String {
    fs::read_to_string(dir.join(name)).unwrap_or_default()
}

/// The states in order, repeats folded.
fn history(dir: &Path, instance: &str) -> Vec<String> {
    let mut v: Vec<String> = read(dir, &format!("{instance}.history"))
        .lines()
        .map(str::to_string)
        .collect();
    v.dedup();
    v
}

fn state(dir: &Path, instance: &str) -> String {
    read(dir, &format!("{instance}.state")).trim().to_string()
}

fn logs(lab: &Lab, dirs: &[PathBuf]) -> String {
    let mut s = String::new();
    for i in 1..=2 {
        s.push_str(&format!("--- hbd n{i} ---\n{}\n", lab.log(i)));
        for inst in ["DB", "MEMCACHE"] {
            s.push_str(&format!(
                "{inst} history n{i}: {:?}\n",
                history(&dirs[i - 1], inst)
            ));
        }
    }
    s
}

#[test]
fn seed_000_pair_moves_only_the_failed_vip_and_does_not_preempt_back() {
    let mut lab = Lab::new(2, 1);
    let dirs: Vec<PathBuf> = (1..=2)
        .map(|i| {
            let d = lab.node_dir(i).join("vrrp");
            fs::create_dir_all(&d).unwrap();
            fs::set_permissions(&d, fs::Permissions::from_mode(0o755)).unwrap();
            d
        })
        .collect();
    let mut db: Vec<Tracked> = dirs
        .iter()
        .map(|d| Tracked::new(d.join("db.pid")))
        .collect();
    let _mc: Vec<Tracked> = dirs
        .iter()
        .map(|d| Tracked::new(d.join("mc.pid")))
        .collect();
    for i in 1..=2 {
        let script = state_script(&dirs[i - 1]);
        lab.write(i, "keepalived.conf", &conf(i, &dirs[i - 1], &script));
    }

    // hbctl check accepts the seed's file (warnings only).
    let out = Command::new(common::HBCTL)
        .args(["check", "--node", "n1", "--config"])
        .arg(lab.config_dir(1))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "hbctl check: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );

    // smesql01 first: it takes both VIPs; smesql02 then stays BACKUP.
    lab.start(1);
    wait(
        "n1 holds both VIPs",
        || holders(&lab, DB_VIP) == ["n1"] && holders(&lab, MC_VIP) == ["n1"],
        || logs(&lab, &dirs),
    );
    lab.start(2);
    wait(
        "the state files read MASTER on n1 and BACKUP on n2",
        || {
            ["DB", "MEMCACHE"]
                .iter()
                .all(|i| state(&dirs[0], i) == "MASTER" && state(&dirs[1], i) == "BACKUP")
        },
        || logs(&lab, &dirs),
    );
    stays(
        "n1 keeps both VIPs",
        Duration::from_secs(3),
        || holders(&lab, DB_VIP) == ["n1"] && holders(&lab, MC_VIP) == ["n1"],
        || logs(&lab, &dirs),
    );

    // The DB process dies on n1: only the DB VIP moves.
    db[0].kill();
    wait(
        "the DB VIP moves to n2, DB is FAULT on n1",
        || {
            holders(&lab, DB_VIP) == ["n2"]
                && state(&dirs[0], "DB") == "FAULT"
                && state(&dirs[1], "DB") == "MASTER"
        },
        || logs(&lab, &dirs),
    );
    assert_eq!(holders(&lab, MC_VIP), ["n1"], "{}", logs(&lab, &dirs));
    assert_eq!(
        state(&dirs[0], "MEMCACHE"),
        "MASTER",
        "{}",
        logs(&lab, &dirs)
    );

    // It comes back: n1's DB is BACKUP again and, nopreempt, the VIP stays.
    db[0].start();
    wait(
        "DB is BACKUP on n1 again",
        || state(&dirs[0], "DB") == "BACKUP",
        || logs(&lab, &dirs),
    );
    stays(
        "nopreempt: the DB VIP stays on n2, MEMCACHE on n1",
        Duration::from_secs(5),
        || holders(&lab, DB_VIP) == ["n2"] && holders(&lab, MC_VIP) == ["n1"],
        || logs(&lab, &dirs),
    );
    let h1 = history(&dirs[0], "DB");
    assert!(
        h1.ends_with(&["MASTER".into(), "FAULT".into(), "BACKUP".into()]),
        "n1 DB states in order: {h1:?}\n{}",
        logs(&lab, &dirs)
    );
    let h2 = history(&dirs[1], "DB");
    assert!(
        h2.ends_with(&["BACKUP".into(), "MASTER".into()]),
        "n2 DB states in order: {h2:?}\n{}",
        logs(&lab, &dirs)
    );
    // Scripts not reported yet: FAULT at start; MASTER since then.
    assert!(
        history(&dirs[0], "MEMCACHE").ends_with(&["BACKUP".into(), "MASTER".into()]),
        "{}",
        logs(&lab, &dirs)
    );

    // A clean stop of n1: MEMCACHE moves at once (priority 0), STOP notified,
    // no VIP left on n1.
    assert!(lab.stop(1).success(), "{}", logs(&lab, &dirs));
    assert_eq!(state(&dirs[0], "MEMCACHE"), "STOP", "{}", logs(&lab, &dirs));
    assert_eq!(state(&dirs[0], "DB"), "STOP", "{}", logs(&lab, &dirs));
    wait(
        "n2 holds both VIPs after n1 stopped",
        || holders(&lab, DB_VIP) == ["n2"] && holders(&lab, MC_VIP) == ["n2"],
        || logs(&lab, &dirs),
    );
}

/// The instance's interface losing its carrier means FAULT (VIP removed,
/// notify FAULT); the peer takes over; the link back means BACKUP, then the
/// higher priority preempts again.
#[test]
fn link_down_means_fault() {
    let mut lab = Lab::new(2, 1);
    let dirs: Vec<PathBuf> = (1..=2)
        .map(|i| {
            let d = lab.node_dir(i).join("vrrp");
            fs::create_dir_all(&d).unwrap();
            d
        })
        .collect();
    for i in 1..=2 {
        let script = state_script(&dirs[i - 1]);
        let prio = if i == 1 { 150 } else { 100 };
        let extra = format!("    notify {}\n", script.display());
        lab.write(
            i,
            "keepalived.conf",
            &common::vrrp::instance_conf("DB", 51, prio, DB_VIP, &extra, ""),
        );
    }
    lab.start_all();
    wait(
        "n1 holds the VIP",
        || holders(&lab, DB_VIP) == ["n1"] && state(&dirs[0], "DB") == "MASTER",
        || logs(&lab, &dirs),
    );
    lab.link("n1", 0, false);
    wait(
        "n1 is FAULT without the VIP, n2 MASTER",
        || {
            holders(&lab, DB_VIP) == ["n2"]
                && state(&dirs[0], "DB") == "FAULT"
                && state(&dirs[1], "DB") == "MASTER"
        },
        || logs(&lab, &dirs),
    );
    lab.link("n1", 0, true);
    wait(
        "n1 preempts once its link is back",
        || holders(&lab, DB_VIP) == ["n1"] && state(&dirs[1], "DB") == "BACKUP",
        || logs(&lab, &dirs),
    );
    let h = history(&dirs[0], "DB");
    assert!(
        h.ends_with(&[
            "MASTER".into(),
            "FAULT".into(),
            "BACKUP".into(),
            "MASTER".into()
        ]),
        "n1 states in order: {h:?}\n{}",
        logs(&lab, &dirs)
    );
}
