//! Script agents run through `hbctl resource`, as the daemon runs them:
//! heartbeat-style scripts, LSB init scripts, OCF agents (a test one and the
//! real `ocf:heartbeat:Dummy`), timeouts, and the shipped `resources/daemon`
//! and `resources/mysqld` agents with real programs (MariaDB from Debian, in
//! a network namespace of its own). Every process a test starts is killed by
//! pid in `Drop`, also after a panic. Timings are never asserted.

mod common;
use common::{alive, read_pid, repo, require_root, wait_gone};
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const HBCTL: &str = env!("CARGO_BIN_EXE_hbctl");

/// Generous: a loaded CI machine must stay green.
const TIMEOUT: Duration = Duration::from_secs(120);
/// MariaDB initializes its data directory and recovers from crashes.
const MARIADB_TIMEOUT: Duration = Duration::from_secs(900);

/// One `hbctl resource` run.
struct Out {
    cmd: String,
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

impl std::fmt::Display for Out {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "$ {}\nexit: {:?}\n--- stdout\n{}--- stderr\n{}",
            self.cmd, self.code, self.stdout, self.stderr
        )
    }
}

impl Out {
    fn expect(self, code: i32) -> Out {
        assert_eq!(self.code, Some(code), "unexpected exit code:\n{self}");
        self
    }
}

/// A configuration directory: `resource.d/`, `init.d/`, an OCF root and
/// `cluster.toml`.
struct Cfg {
    dir: tempfile::TempDir,
    env: Vec<(String, String)>,
}

impl Cfg {
    fn new(extra_toml: &str) -> Cfg {
        Cfg::with_ocf_root(extra_toml, None)
    }

    fn with_ocf_root(extra_toml: &str, ocf_root: Option<&Path>) -> Cfg {
        let dir = tempfile::tempdir().unwrap();
        // MariaDB runs as mysql: it must reach the data directory inside.
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
        for d in ["resource.d", "init.d", "ocf/resource.d/test"] {
            fs::create_dir_all(dir.path().join(d)).unwrap();
        }
        let ocf_root = ocf_root
            .map(Path::to_path_buf)
            .unwrap_or_else(|| dir.path().join("ocf"));
        let toml = format!(
            "[agents]\nresources_dir = {:?}\ninit_dir = {:?}\nocf_root = {:?}\n{extra_toml}",
            repo().join("resources"),
            dir.path().join("init.d"),
            ocf_root,
        );
        fs::write(dir.path().join("cluster.toml"), toml).unwrap();
        Cfg {
            dir,
            env: vec![("HBD_LOG".into(), "debug".into())],
        }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn script(&self, rel: &str, body: &str) -> PathBuf {
        let p = self.path().join(rel);
        fs::write(&p, format!("#!/bin/sh\n{body}\n")).unwrap();
        fs::set_permissions(&p, fs::Permissions::from_mode(0o755)).unwrap();
        p
    }

    fn hbctl(&self, spec: &str, action: &str) -> Out {
        self.run(None, spec, action, TIMEOUT)
    }

    /// Runs hbctl; `prefix` wraps it (e.g. in a fresh network namespace).
    fn run(&self, prefix: Option<&[&str]>, spec: &str, action: &str, limit: Duration) -> Out {
        let conf = self.path().display().to_string();
        let mut argv: Vec<String> = prefix
            .unwrap_or(&[])
            .iter()
            .map(|s| s.to_string())
            .collect();
        argv.extend(
            [HBCTL, "resource", "--config", &conf, spec, action]
                .iter()
                .map(|s| s.to_string()),
        );
        let mut cmd = Command::new(&argv[0]);
        cmd.args(&argv[1..])
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let cmd_text = argv.join(" ");
        let child = cmd.spawn().unwrap_or_else(|e| panic!("{cmd_text}: {e}"));
        let pid = child.id();
        // hbctl itself must finish: a hang is a failure, not a stuck test.
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let _ = tx.send(child.wait_with_output());
        });
        let out = match rx.recv_timeout(limit) {
            Ok(out) => out.unwrap(),
            Err(_) => {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(pid as i32),
                    nix::sys::signal::Signal::SIGKILL,
                );
                panic!("{cmd_text}: still running after {limit:?}");
            }
        };
        Out {
            cmd: cmd_text,
            code: out.status.code(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }
}

/// KILLs, in `Drop`, the processes whose pids the named files hold.
struct KillPids(Vec<PathBuf>);

impl Drop for KillPids {
    fn drop(&mut self) {
        for f in &self.0 {
            if let Some(pid) = read_pid(f) {
                if alive(pid) {
                    let _ = nix::sys::signal::kill(
                        nix::unistd::Pid::from_raw(pid),
                        nix::sys::signal::Signal::SIGKILL,
                    );
                }
            }
        }
    }
}

#[test]
fn heartbeat_script_gets_exactly_its_args_and_action() {
    let cfg = Cfg::new("");
    let rec = cfg.path().join("rec.out");
    cfg.script(
        "resource.d/rec",
        &format!(
            "{{ echo \"argc=$#\"; for a in \"$@\"; do echo \"arg=$a\"; done; env | sort; }} > {}",
            rec.display()
        ),
    );
    let mut cfg = cfg;
    cfg.env.push(("SECRET_OF_CALLER".into(), "x".into()));
    cfg.env.push(("HBD_STOP_GRACE".into(), "3".into()));
    cfg.hbctl("rec::first arg::2", "start").expect(0);
    let got = fs::read_to_string(&rec).unwrap();
    assert!(
        got.starts_with("argc=3\narg=first arg\narg=2\narg=start\n"),
        "{got}"
    );
    // A clean environment: PATH and hbd's HBD_* settings, nothing else of ours.
    assert!(got.contains("\nPATH="), "{got}");
    assert!(got.contains("\nHBD_STOP_GRACE=3\n"), "{got}");
    assert!(
        !got.contains("SECRET_OF_CALLER") && !got.contains("\nHOME="),
        "{got}"
    );
    cfg.hbctl("rec::first arg::2", "stop").expect(0);
    assert!(fs::read_to_string(&rec).unwrap().contains("arg=stop\n"));
}

#[test]
fn heartbeat_status_is_judged_by_output() {
    let cfg = Cfg::new("");
    let say = cfg.path().join("say");
    // The exit code does not count for heartbeat-style status: the words do.
    cfg.script("resource.d/svc", &format!("cat {}\nexit 1", say.display()));
    for (text, code) in [
        ("svc is running", 0),
        ("Running (pid 7)", 0),
        ("OK", 0),
        ("ok", 3),
        ("stopped", 3),
        ("Stopped", 3),
        ("svc is not running", 3),
        ("", 3),
        ("unknown", 3),
    ] {
        fs::write(&say, text).unwrap();
        let out = cfg.hbctl("svc", "status").expect(code);
        let word = if code == 0 { "running" } else { "stopped" };
        assert_eq!(out.stdout.trim(), word, "{text:?}:\n{out}");
    }
}

#[test]
fn heartbeat_failure_reports_exit_code_and_last_lines() {
    let cfg = Cfg::new("");
    cfg.script(
        "resource.d/bad",
        "for i in $(seq 1 30); do echo \"step $i\"; done\necho 'cannot bind' >&2\nexit 4",
    );
    let out = cfg.hbctl("bad::x", "start").expect(1);
    assert!(out.stderr.contains("start exited with code 4"), "{out}");
    // The last lines, stderr's first of all (two pipes: no reliable order).
    let msg = out.stderr.lines().last().unwrap_or_default();
    assert!(
        msg.contains("step 30") && msg.contains("cannot bind"),
        "{out}"
    );
    assert!(!msg.contains("step 20;"), "{out}");
    // Every line is in the log, stderr lines at warn.
    assert!(out.stderr.contains("step 1\""), "{out}");
    assert!(
        out.stderr
            .lines()
            .any(|l| l.contains("WARN") && l.contains("cannot bind")),
        "{out}"
    );
}

#[test]
fn lsb_exit_codes() {
    let cfg = Cfg::new("");
    let code = cfg.path().join("code");
    let calls = cfg.path().join("calls");
    cfg.script(
        "init.d/svc",
        &format!(
            "echo \"$# $*\" >> {}\nexit $(cat {})",
            calls.display(),
            code.display()
        ),
    );
    let run = |action: &str, c: i32| {
        fs::write(&code, c.to_string()).unwrap();
        cfg.hbctl("svc", action)
    };
    run("status", 0).expect(0);
    run("status", 3).expect(3);
    let out = run("status", 1).expect(3);
    assert!(
        out.stderr.contains("pid file"),
        "dead with pid file is logged:\n{out}"
    );
    run("status", 2).expect(3);
    let out = run("status", 4).expect(1);
    assert!(out.stderr.contains("unknown"), "{out}");
    run("start", 0).expect(0);
    run("stop", 0).expect(0);
    let out = run("start", 6).expect(1);
    assert!(
        out.stderr.contains("code 6: program is not configured"),
        "{out}"
    );
    let out = run("stop", 1).expect(1);
    assert!(out.stderr.contains("stop exited with code 1"), "{out}");
    let calls = fs::read_to_string(&calls).unwrap();
    assert!(
        calls
            .lines()
            .all(|l| ["1 status", "1 start", "1 stop"].contains(&l)),
        "an LSB script gets only the action:\n{calls}"
    );
}

#[test]
fn ocf_agent_gets_its_environment() {
    let cfg = Cfg::new("");
    let rec = cfg.path().join("ocf.env");
    cfg.script(
        "ocf/resource.d/test/Rec",
        &format!(
            "echo \"$*\" >> {rec}\nenv | grep -E '^(OCF_|HA_)' | sort >> {rec}\ncase $1 in monitor) exit 7;; start|stop) exit 0;; *) exit 3;; esac",
            rec = rec.display()
        ),
    );
    cfg.hbctl("ocf:test:Rec::ip=192.0.2.1::name=a b", "start")
        .expect(0);
    let got = fs::read_to_string(&rec).unwrap();
    for want in [
        "start\n",
        &format!("OCF_ROOT={}\n", cfg.path().join("ocf").display()),
        "OCF_RA_VERSION_MAJOR=1\n",
        "OCF_RA_VERSION_MINOR=0\n",
        "OCF_RESKEY_ip=192.0.2.1\n",
        "OCF_RESKEY_name=a b\n",
        "OCF_RESOURCE_TYPE=Rec\n",
        "OCF_RESOURCE_PROVIDER=test\n",
        "OCF_RESOURCE_INSTANCE=Rec_ip_192.0.2.1_name_a_b\n",
    ] {
        assert!(got.contains(want), "missing {want:?} in:\n{got}");
    }
    // status is `monitor`; 7 is "not running". A bare name finds it too.
    cfg.hbctl("ocf:test:Rec::ip=192.0.2.1", "status").expect(3);
    cfg.hbctl("Rec::ip=192.0.2.1", "status").expect(3);
    assert!(fs::read_to_string(&rec).unwrap().contains("monitor\n"));
}

#[test]
fn real_ocf_dummy_from_resource_agents() {
    let root = Path::new("/usr/lib/ocf");
    assert!(
        root.join("resource.d/heartbeat/Dummy").exists(),
        "ocf:heartbeat:Dummy is not installed: run scripts/setup (Debian package resource-agents)"
    );
    let cfg = Cfg::with_ocf_root("", Some(root));
    let state = cfg.path().join("dummy.state");
    let spec = format!("ocf:heartbeat:Dummy::state={}", state.display());
    cfg.hbctl(&spec, "status").expect(3);
    cfg.hbctl(&spec, "start").expect(0);
    assert!(state.exists());
    cfg.hbctl(&spec, "status").expect(0);
    cfg.hbctl(&spec, "stop").expect(0);
    cfg.hbctl(&spec, "status").expect(3);
    cfg.hbctl(&spec, "stop").expect(0);
}

#[test]
fn hanging_script_is_killed_at_its_timeout() {
    let cfg = Cfg::new("[resource_defaults]\nstart_timeout = \"3s\"\n");
    let (script_pid, child_pid) = (cfg.path().join("script.pid"), cfg.path().join("child.pid"));
    let _kill = KillPids(vec![script_pid.clone(), child_pid.clone()]);
    cfg.script(
        "resource.d/hang",
        &format!(
            "echo $$ > {}\nsleep 1000 &\necho $! > {}\necho waiting\nwait",
            script_pid.display(),
            child_pid.display()
        ),
    );
    let out = cfg.hbctl("hang", "start").expect(1);
    assert!(out.stderr.contains("start timed out after 3s"), "{out}");
    for f in [&script_pid, &child_pid] {
        let pid = read_pid(f).unwrap_or_else(|| panic!("no {}:\n{out}", f.display()));
        assert!(
            wait_gone(pid),
            "pid {pid} of the script's group survived:\n{out}"
        );
    }
}

#[test]
fn background_child_does_not_make_start_hang() {
    let cfg = Cfg::new("[resource_defaults]\nstart_timeout = \"60s\"\n");
    let child_pid = cfg.path().join("child.pid");
    let _kill = KillPids(vec![child_pid.clone()]);
    // The child keeps the script's stdout and stderr open.
    cfg.script(
        "resource.d/bg",
        &format!(
            "sleep 1000 &\necho $! > {}\necho started",
            child_pid.display()
        ),
    );
    let out = cfg.hbctl("bg", "start").expect(0);
    assert!(out.stderr.contains("started"), "{out}");
    // It was not killed either: it left the group only by our hand.
    let pid = read_pid(&child_pid).unwrap();
    assert!(alive(pid), "the script's child was killed:\n{out}");
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn wait_for(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + TIMEOUT;
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn daemon_agent_runs_a_real_server() {
    let cfg = Cfg::new("");
    let pidfile = cfg.path().join("run/web.pid");
    let _kill = KillPids(vec![pidfile.clone()]);
    let port = free_port();
    let www = cfg.path().join("www");
    fs::create_dir_all(&www).unwrap();
    fs::write(www.join("hello.txt"), "hello").unwrap();
    let spec = format!(
        "daemon::{}::python3::-m::http.server::--bind::127.0.0.1::--directory::{}::{port}",
        pidfile.display(),
        www.display()
    );
    cfg.hbctl(&spec, "status").expect(3);
    let out = cfg.hbctl(&spec, "start").expect(0);
    let pid = read_pid(&pidfile).unwrap_or_else(|| panic!("no pid file:\n{out}"));
    cfg.hbctl(&spec, "status").expect(0);
    // Starting a running program does nothing.
    cfg.hbctl(&spec, "start").expect(0);
    assert_eq!(read_pid(&pidfile), Some(pid));
    wait_for("the http server", || {
        use std::io::{Read, Write};
        let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) else {
            return false;
        };
        let _ = s.write_all(b"GET /hello.txt HTTP/1.0\r\n\r\n");
        let mut body = String::new();
        let _ = s.read_to_string(&mut body);
        body.ends_with("hello")
    });
    assert!(cfg.path().join("run/web.log").exists());
    cfg.hbctl(&spec, "stop").expect(0);
    assert!(wait_gone(pid));
    assert!(!pidfile.exists());
    cfg.hbctl(&spec, "status").expect(3);
    cfg.hbctl(&spec, "stop").expect(0);
}

#[test]
fn daemon_agent_kills_a_program_that_ignores_term() {
    let mut cfg = Cfg::new("");
    cfg.env.push(("HBD_STOP_GRACE".into(), "1".into()));
    let pidfile = cfg.path().join("stubborn.pid");
    let _kill = KillPids(vec![pidfile.clone()]);
    let spec = format!(
        "daemon::{}::sh::-c::trap '' TERM; while true; do sleep 1; done",
        pidfile.display()
    );
    cfg.hbctl(&spec, "start").expect(0);
    let pid = read_pid(&pidfile).unwrap();
    cfg.hbctl(&spec, "status").expect(0);
    let out = cfg.hbctl(&spec, "stop").expect(0);
    assert!(out.stderr.contains("KILL"), "{out}");
    assert!(wait_gone(pid), "{out}");
    cfg.hbctl(&spec, "status").expect(3);
}

#[test]
fn daemon_agent_reports_a_program_that_dies_at_once() {
    let cfg = Cfg::new("");
    let pidfile = cfg.path().join("bad.pid");
    let spec = format!(
        "daemon::{}::sh::-c::echo no config file >&2; exit 1",
        pidfile.display()
    );
    let out = cfg.hbctl(&spec, "start").expect(1);
    assert!(out.stderr.contains("no config file"), "{out}");
    cfg.hbctl(&spec, "status").expect(3);
}

/// Issue 15: with `--port`, the start returns once the port answers (the
/// server is ready, not after a fixed second); a program that exits at
/// once, or never answers within HBD_START_WAIT, still fails the start and
/// leaves nothing running.
#[test]
fn daemon_agent_waits_for_its_port_and_still_catches_failures() {
    let mut cfg = Cfg::new("");
    cfg.env.push(("HBD_START_WAIT".into(), "2".into()));
    let pidfile = cfg.path().join("run/web.pid");
    let _kill = KillPids(vec![pidfile.clone()]);
    let port = free_port();
    let spec = format!(
        "daemon::--port={port}::{}::python3::-m::http.server::--bind::127.0.0.1::{port}",
        pidfile.display()
    );
    let out = cfg.hbctl(&spec, "start").expect(0);
    assert!(out.stderr.contains("answers"), "{out}");
    // Ready means the port takes connections now.
    std::net::TcpStream::connect(("127.0.0.1", port))
        .unwrap_or_else(|e| panic!("port {port} after the start: {e}\n{out}"));
    cfg.hbctl(&spec, "status").expect(0);
    cfg.hbctl(&spec, "stop").expect(0);
    cfg.hbctl(&spec, "status").expect(3);

    let bad = cfg.path().join("bad.pid");
    let spec = format!(
        "daemon::--port={port}::{}::sh::-c::echo no config file >&2; exit 1",
        bad.display()
    );
    let out = cfg.hbctl(&spec, "start").expect(1);
    assert!(out.stderr.contains("no config file"), "{out}");
    cfg.hbctl(&spec, "status").expect(3);

    let silent = cfg.path().join("silent.pid");
    let _kill2 = KillPids(vec![silent.clone()]);
    let spec = format!("daemon::--port={port}::{}::sleep::1000", silent.display());
    let out = cfg.hbctl(&spec, "start").expect(1);
    assert!(out.stderr.contains("does not answer"), "{out}");
    assert!(!silent.exists(), "{out}");
    cfg.hbctl(&spec, "status").expect(3);
}

/// KILLs every server of one data directory in `Drop` (found by its
/// `--datadir=` argument, killed by pid).
struct MariaDb {
    datadir: PathBuf,
}

impl MariaDb {
    fn pids(&self) -> Vec<i32> {
        common::pids_with_arg(&format!("--datadir={}", self.datadir.display()))
    }
}

impl Drop for MariaDb {
    fn drop(&mut self) {
        for pid in self.pids() {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            );
            wait_gone(pid);
        }
    }
}

fn mariadb_installed() -> bool {
    [
        "/usr/sbin/mariadbd",
        "/usr/bin/mariadb",
        "/usr/bin/mariadb-admin",
    ]
    .iter()
    .all(|p| Path::new(p).exists())
}

#[test]
fn mysqld_agent_with_real_mariadb() {
    require_root();
    assert!(
        mariadb_installed(),
        "MariaDB is not installed: run scripts/setup (Debian packages mariadb-server, mariadb-client)"
    );
    let cfg = Cfg::new("[resource_defaults]\nstart_timeout = \"900s\"\nstop_timeout = \"300s\"\n");
    let datadir = cfg.path().join("data");
    fs::create_dir_all(&datadir).unwrap();
    nix::unistd::chown(
        &datadir,
        Some(nix::unistd::User::from_name("mysql").unwrap().unwrap().uid),
        None,
    )
    .unwrap();
    let server = MariaDb {
        datadir: datadir.clone(),
    };
    let socket = datadir.join("mysqld.sock");
    let spec = format!("mysqld::{}", datadir.display());
    // Each call in a fresh network namespace: port 3306 cannot collide with
    // anything; the server is reached through its unix socket.
    let netns: &[&str] = &[
        "unshare",
        "--net",
        "sh",
        "-c",
        "ip link set lo up && exec \"$0\" \"$@\"",
    ];
    let hbctl = |action: &str| cfg.run(Some(netns), &spec, action, MARIADB_TIMEOUT);
    let sql = |q: &str| {
        let out = Command::new("mariadb")
            .arg(format!("--socket={}", socket.display()))
            .args(["--batch", "--skip-column-names", "-e", q])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "mariadb -e {q:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };

    hbctl("status").expect(3);
    let out = hbctl("start").expect(0);
    assert!(out.stderr.contains("initializing"), "{out}");
    hbctl("status").expect(0);
    sql("CREATE DATABASE t; CREATE TABLE t.x (i INT) ENGINE=InnoDB; INSERT INTO t.x VALUES (42)");
    hbctl("stop").expect(0);
    assert!(server.pids().is_empty(), "the server still runs after stop");
    hbctl("status").expect(3);

    // Started again: the data is still there, no second initialization.
    let out = hbctl("start").expect(0);
    assert!(!out.stderr.contains("initializing"), "{out}");
    assert_eq!(sql("SELECT i FROM t.x").trim(), "42");
    sql("INSERT INTO t.x VALUES (43)");

    // A crash: KILL the server, then start recovers.
    let pids = server.pids();
    assert_eq!(pids.len(), 1, "one server: {pids:?}");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pids[0]),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    assert!(wait_gone(pids[0]));
    hbctl("status").expect(3);
    hbctl("start").expect(0);
    hbctl("status").expect(0);
    assert_eq!(sql("SELECT i FROM t.x ORDER BY i").trim(), "42\n43");
    hbctl("stop").expect(0);
    hbctl("status").expect(3);
    hbctl("stop").expect(0);
}

/// The OCF runner passes the operation's timeout in milliseconds, as
/// Pacemaker does (`OCF_RESKEY_CRM_meta_timeout`): the start's for start,
/// the status's for monitor.
#[test]
fn ocf_agent_gets_the_operation_timeout() {
    let cfg = Cfg::new("[resource_defaults]\nstart_timeout = \"42s\"\nstatus_timeout = \"7s\"\n");
    let rec = cfg.path().join("ocf.env");
    cfg.script(
        "ocf/resource.d/test/Rec",
        &format!(
            "echo \"$1 $OCF_RESKEY_CRM_meta_timeout\" >> {rec}\ncase $1 in monitor) exit 7;; start|stop) exit 0;; *) exit 3;; esac",
            rec = rec.display()
        ),
    );
    cfg.hbctl("ocf:test:Rec::a=1", "start").expect(0);
    cfg.hbctl("ocf:test:Rec::a=1", "status").expect(3);
    let got = fs::read_to_string(&rec).unwrap();
    assert_eq!(got, "start 42000\nmonitor 7000\n");
}
