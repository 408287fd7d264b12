//! hbd and hbd-disk as systemd services (issue 17): sd_notify READY,
//! WATCHDOG and STOPPING over a NOTIFY_SOCKET the test binds; SIGUSR1 dumps
//! the state to the log and the daemon stays; SIGUSR2, SIGHUP and SIGPIPE
//! do not kill it; `logfile` is reopened after logrotate's rename; stderr
//! that is the journal (JOURNAL_STREAM) gets `<N>` priorities and no
//! timestamps; a device process logs to its --log-file, reopens it, and a
//! status poll adds no info line.

mod common;

use common::disk::*;
use common::*;
use hbd::disk::ctl::DiskRequest;
use nix::sys::signal::Signal;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::os::unix::net::UnixDatagram;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

const KA: &str = "200ms";
const DEAD: &str = "2";

/// The NOTIFY_SOCKET of the test: a datagram socket in the lab's dir
/// (a path, not an abstract name: those are per network namespace).
struct NotifySocket {
    sock: UnixDatagram,
    seen: Vec<String>,
}

impl NotifySocket {
    fn bind(path: &Path) -> NotifySocket {
        let sock = UnixDatagram::bind(path).unwrap();
        sock.set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        NotifySocket {
            sock,
            seen: Vec::new(),
        }
    }

    /// Reads messages until one has the line `line`; panics with what came
    /// after [`TIMEOUT`].
    fn wait_for(&mut self, line: &str) -> String {
        let start = Instant::now();
        let mut buf = vec![0u8; 4096];
        while start.elapsed() < TIMEOUT {
            if let Ok(n) = self.sock.recv(&mut buf) {
                let msg = String::from_utf8_lossy(&buf[..n]).into_owned();
                self.seen.push(msg.clone());
                if msg.lines().any(|l| l == line) {
                    return msg;
                }
            }
        }
        panic!("no {line} within {TIMEOUT:?}; got {:?}", self.seen);
    }
}

fn wait_log(lab: &Lab, i: usize, what: &str) {
    lab.wait_for(&format!("n{i}'s log has {what:?}"), || {
        lab.log(i).contains(what)
    });
}

#[test]
fn sd_notify_ready_watchdog_and_stopping() {
    let mut lab = Lab::new(1, 1);
    lab.configure(&ha_cf(1, "bcast eth0", KA, DEAD), KEY);
    let path = lab.dir.path().join("notify.sock");
    let mut notify = NotifySocket::bind(&path);
    lab.start_with_env(
        1,
        &[
            ("NOTIFY_SOCKET", path.to_str().unwrap()),
            // 1 s: a ping every 500 ms.
            ("WATCHDOG_USEC", "1000000"),
        ],
    );
    let ready = notify.wait_for("READY=1");
    assert!(ready.contains("STATUS=n1: "), "{ready}");
    // READY means the control socket answers.
    assert!(lab.status(1).is_some(), "READY=1 before the control socket");
    notify.wait_for("WATCHDOG=1");
    notify.wait_for("WATCHDOG=1");
    let status = lab.stop(1);
    assert!(status.success(), "{status:?}\n{}", lab.log(1));
    notify.wait_for("STOPPING=1");
}

#[test]
fn sigusr1_dumps_the_state_and_other_signals_do_not_kill() {
    let mut lab = Lab::new(2, 1);
    lab.configure(&ha_cf(2, "bcast eth0", KA, DEAD), KEY);
    lab.start_all();
    lab.wait_all_up(&[1, 2]);

    lab.signal(1, Signal::SIGUSR1);
    wait_log(&lab, 1, "state dump ends");
    let log = lab.log(1);
    let dump = &log[log.find("state dump begins").unwrap()..];
    assert!(dump.contains("Nodes:"), "{dump}");
    assert!(
        dump.lines().any(|l| l.contains("n2") && l.contains("up")),
        "{dump}"
    );

    for sig in [
        Signal::SIGUSR2,
        Signal::SIGPIPE,
        Signal::SIGHUP,
        Signal::SIGUSR1,
    ] {
        lab.signal(1, sig);
    }
    // The second dump comes after the other signals were handled.
    lab.wait_for("a second dump", || {
        lab.log(1).matches("state dump ends").count() == 2
    });
    assert_eq!(lab.exited(1), None, "{}", lab.log(1));
    assert_eq!(lab.node_state(2, "n1").as_deref(), Some("up"));
    assert!(lab.status(1).is_some());
    // It never left the cluster.
    assert!(!lab.log(2).contains("node dead"), "{}", lab.log(2));
}

#[test]
fn logfile_is_reopened_on_sigusr2_and_sighup_after_a_rename() {
    let mut lab = Lab::new(1, 1);
    let ha = lab.node_dir(1).join("ha-log");
    lab.configure(
        &format!(
            "{}logfile {}\n",
            ha_cf(1, "bcast eth0", KA, DEAD),
            ha.display()
        ),
        KEY,
    );
    lab.start(1);
    let read = |p: &Path| fs::read_to_string(p).unwrap_or_default();
    lab.wait_for("hbd started in the logfile", || {
        read(&ha).contains("hbd started")
    });

    // logrotate: rename, then the signal.
    let rotated1 = lab.node_dir(1).join("ha-log.1");
    fs::rename(&ha, &rotated1).unwrap();
    lab.signal(1, Signal::SIGUSR2);
    lab.wait_for("a new logfile after SIGUSR2", || {
        read(&ha).contains("log files reopened")
    });
    assert!(read(&rotated1).contains("hbd started"));
    assert!(!read(&rotated1).contains("log files reopened"));

    // SIGHUP reopens too, and still reloads the configuration.
    let rotated2 = lab.node_dir(1).join("ha-log.2");
    fs::rename(&ha, &rotated2).unwrap();
    lab.signal(1, Signal::SIGHUP);
    lab.wait_for("a new logfile after SIGHUP, and the reload", || {
        let t = read(&ha);
        t.contains("log files reopened") && t.contains("configuration reloaded")
    });
    assert!(!read(&rotated2).contains("configuration reloaded"));
    assert_eq!(lab.exited(1), None);
    assert!(lab.stop(1).success());
}

#[test]
fn stderr_that_is_the_journal_gets_priorities_and_no_timestamps() {
    let mut lab = Lab::new(1, 1);
    lab.configure(&ha_cf(1, "bcast eth0", KA, DEAD), KEY);
    // The file the lab gives hbd as stderr, made first for its inode.
    fs::create_dir_all(lab.node_dir(1)).unwrap();
    fs::File::create(lab.log_path(1)).unwrap();
    let m = fs::metadata(lab.log_path(1)).unwrap();
    let stream = format!("{}:{}", m.dev(), m.ino());
    // No journald socket: `<N>` lines on stderr.
    let absent = lab.dir.path().join("no-journal");
    lab.start_with_env(
        1,
        &[
            ("JOURNAL_STREAM", &stream),
            ("HBD_LOG", "info"),
            ("HBD_JOURNAL_SOCKET", absent.to_str().unwrap()),
        ],
    );
    wait_log(&lab, 1, "hbd started");
    let log = lab.log(1);
    let started = log.lines().find(|l| l.contains("hbd started")).unwrap();
    assert!(started.starts_with("<6>"), "{log}");
    // One node, no witness: the quorum warning, at warning priority.
    let warn = log
        .lines()
        .find(|l| l.contains("no quorum protection"))
        .unwrap();
    assert!(warn.starts_with("<4>"), "{log}");
    for l in log.lines().filter(|l| !l.starts_with("hbd:")) {
        assert!(
            l.len() > 3
                && l.starts_with('<')
                && l.as_bytes()[1].is_ascii_digit()
                && l.as_bytes()[2] == b'>',
            "line without a priority: {l:?}\n{log}"
        );
        // No timestamp (journald stamps the record).
        assert!(!l[3..].starts_with("20"), "{l:?}");
        assert!(!l.contains(" INFO ") && !l.contains(" WARN "), "{l:?}");
    }
    assert!(lab.stop(1).success());

    // The same variable naming another file: plain lines.
    let other = lab.node_dir(1).join("other");
    fs::File::create(&other).unwrap();
    let m = fs::metadata(&other).unwrap();
    let stream = format!("{}:{}", m.dev(), m.ino());
    fs::write(lab.log_path(1), "").unwrap();
    lab.start_with_env(
        1,
        &[
            ("JOURNAL_STREAM", &stream),
            ("HBD_LOG", "info"),
            ("HBD_JOURNAL_SOCKET", absent.to_str().unwrap()),
        ],
    );
    wait_log(&lab, 1, "hbd started");
    let log = lab.log(1);
    let started = log.lines().find(|l| l.contains("hbd started")).unwrap();
    assert!(
        !started.starts_with('<') && started.contains("INFO"),
        "{log}"
    );
    assert!(lab.stop(1).success());
}

#[test]
fn device_process_logs_to_its_file_reopens_it_and_polls_quietly() {
    let d = DiskLab::new(8 * MIB, "");
    let path = d.lab.dir.path().join("notify.sock");
    let mut notify = NotifySocket::bind(&path);
    // hbctl disk up passes its environment to the device process.
    let out = Command::new("ip")
        .args(["netns", "exec", &d.lab.ns("n1"), HBCTL])
        .args([
            "disk",
            "--config",
            d.lab.config_dir(1).to_str().unwrap(),
            "--node",
            "n1",
            "--run-dir",
            d.lab.run_dir(1).to_str().unwrap(),
            "up",
            RES,
        ])
        .env("NOTIFY_SOCKET", &path)
        .env("WATCHDOG_USEC", "1000000")
        .env_remove("HBD_LOG")
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}\n{}", d.log(1));
    let ready = notify.wait_for("READY=1");
    assert!(ready.contains("STATUS=r0"), "{ready}");
    notify.wait_for("WATCHDOG=1");

    let log_path = d.device_log(1);
    assert_eq!(log_path, d.lab.run_dir(1).join("disk/r0.log"));
    let pid = d.pid(1).expect("device pid");
    let args = fs::read(format!("/proc/{pid}/cmdline")).unwrap();
    assert!(
        String::from_utf8_lossy(&args).contains("--log-file"),
        "{args:?}"
    );

    // Status polls (hbd asks every second) add no info line.
    let before = d.log(1);
    for _ in 0..5 {
        d.ok(1, DiskRequest::Status);
    }
    let after = d.log(1);
    assert_eq!(
        before.lines().filter(|l| l.contains(" INFO ")).count(),
        after.lines().filter(|l| l.contains(" INFO ")).count(),
        "{after}"
    );
    assert!(!after.contains("Status"), "{after}");

    // logrotate: rename, SIGUSR2; then SIGHUP after another rename.
    let sig = |s: Signal| nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), s).unwrap();
    let wait = |p: &Path, what: &str| {
        let start = Instant::now();
        while start.elapsed() < TIMEOUT {
            if fs::read_to_string(p).unwrap_or_default().contains(what) {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!(
            "{} has no {what:?}: {}",
            p.display(),
            fs::read_to_string(p).unwrap_or_default()
        );
    };
    let rotated = log_path.with_extension("log.1");
    fs::rename(&log_path, &rotated).unwrap();
    sig(Signal::SIGUSR2);
    wait(&log_path, "log file reopened");
    fs::rename(&log_path, log_path.with_extension("log.2")).unwrap();
    sig(Signal::SIGHUP);
    wait(&log_path, "log file reopened");
    // A request that changes something is still logged, in the new file.
    d.ok(1, DiskRequest::Disconnect);
    wait(&log_path, "Disconnect");
    sig(Signal::SIGUSR1);
    wait(&log_path, "state: r0");
    assert!(alive(pid), "{}", d.log(1));
    assert!(!fs::read_to_string(&rotated)
        .unwrap()
        .contains("log file reopened"));

    let out = d.hbctl_disk(1, &["down", RES]);
    assert!(out.status.success(), "{out:?}");
    notify.wait_for("STOPPING=1");
}

/// One native journal record: its `NAME=value` lines (values with a newline,
/// in the binary framing, are skipped).
fn record_fields(rec: &[u8]) -> Vec<String> {
    String::from_utf8_lossy(rec)
        .lines()
        .filter(|l| l.contains('='))
        .map(String::from)
        .collect()
}

#[test]
fn stderr_that_is_the_journal_gets_native_records_when_journald_listens() {
    let mut lab = Lab::new(1, 1);
    lab.configure(&ha_cf(1, "bcast eth0", KA, DEAD), KEY);
    fs::create_dir_all(lab.node_dir(1)).unwrap();
    fs::File::create(lab.log_path(1)).unwrap();
    let m = fs::metadata(lab.log_path(1)).unwrap();
    let stream = format!("{}:{}", m.dev(), m.ino());
    let path = lab.dir.path().join("journal.sock");
    let journal = UnixDatagram::bind(&path).unwrap();
    journal
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    lab.start_with_env(
        1,
        &[
            ("JOURNAL_STREAM", &stream),
            ("HBD_LOG", "info"),
            ("HBD_JOURNAL_SOCKET", path.to_str().unwrap()),
        ],
    );
    let start = Instant::now();
    let mut buf = vec![0u8; 65536];
    let mut seen = Vec::new();
    let (mut started, mut warned) = (None, None);
    while start.elapsed() < TIMEOUT && (started.is_none() || warned.is_none()) {
        if let Ok(n) = journal.recv(&mut buf) {
            let f = record_fields(&buf[..n]);
            if f.iter().any(|l| l.starts_with("MESSAGE=hbd started")) {
                started = Some(f.clone());
            }
            if f.iter()
                .any(|l| l.starts_with("MESSAGE=no quorum protection"))
            {
                warned = Some(f.clone());
            }
            seen.push(f);
        }
    }
    let started =
        started.unwrap_or_else(|| panic!("no hbd started record: {seen:?}\n{}", lab.log(1)));
    for want in [
        "PRIORITY=6",
        "SYSLOG_IDENTIFIER=hbd",
        "NODE=n1",
        "WITNESS=false",
    ] {
        assert!(started.iter().any(|l| l == want), "{want}: {started:?}");
    }
    assert!(
        started
            .iter()
            .any(|l| l.starts_with("MESSAGE=hbd started node=n1")),
        "{started:?}"
    );
    let warned = warned.unwrap_or_else(|| panic!("no quorum warning record: {seen:?}"));
    assert!(warned.iter().any(|l| l == "PRIORITY=4"), "{warned:?}");
    assert!(lab.stop(1).success());
    // Nothing of tracing's went to stderr.
    let log = lab.log(1);
    assert!(!log.contains("hbd started"), "{log}");
}
