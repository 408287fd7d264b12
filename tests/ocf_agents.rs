//! The shipped agents `resources/mysqld` and `resources/daemon` as OCF
//! resource agents: Debian's `ocf-tester` (package resource-agents) passes on
//! both, `daemon` running real programs (sleep, memcached) and `mysqld` a
//! real MariaDB from Debian (in a network namespace of its own), and
//! `meta-data`, `validate-all` and `monitor` answer with OCF's exit codes.
//! The heartbeat form of both agents is tested in `agents_exec.rs`. Every
//! process a test starts is killed by pid in `Drop`, also after a panic.

mod common;
use common::{alive, pids_with_arg, read_pid, repo, require_root, wait_gone};
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

const OCF_TESTER: &str = "/usr/sbin/ocf-tester";
/// Generous: MariaDB initializes its data directory on the first start.
const TIMEOUT: Duration = Duration::from_secs(900);

/// A 0755 temporary directory holding copies of the agents: ocf-tester runs
/// `meta-data` as `nobody`, who must reach the agent.
struct Dir {
    dir: tempfile::TempDir,
}

impl Dir {
    fn new() -> Dir {
        require_root();
        assert!(
            Path::new(OCF_TESTER).exists() && Path::new("/usr/bin/xmllint").exists(),
            "ocf-tester or xmllint is not installed: run scripts/setup \
             (Debian packages resource-agents, libxml2-utils)"
        );
        let dir = tempfile::tempdir().unwrap();
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
        for a in ["mysqld", "daemon"] {
            let to = dir.path().join(a);
            fs::copy(repo().join("resources").join(a), &to).unwrap();
            fs::set_permissions(&to, fs::Permissions::from_mode(0o755)).unwrap();
        }
        Dir { dir }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn agent(&self, name: &str) -> PathBuf {
        self.path().join(name)
    }
}

/// Runs a command to its end within TIMEOUT (KILLed after), in `prefix`
/// when given (e.g. a fresh network namespace).
fn run(prefix: &[&str], argv: &[&str], env: &[(&str, &str)]) -> Output {
    let all: Vec<&str> = prefix.iter().chain(argv).copied().collect();
    let mut cmd = Command::new(all[0]);
    cmd.args(&all[1..])
        .env("OCF_ROOT", "/usr/lib/ocf")
        .envs(env.iter().copied())
        .current_dir("/")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let child = cmd.spawn().unwrap_or_else(|e| panic!("{all:?}: {e}"));
    let pid = child.id() as i32;
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(TIMEOUT) {
        Ok(out) => out.unwrap(),
        Err(_) => {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGKILL,
            );
            panic!("{all:?}: still running after {TIMEOUT:?}");
        }
    }
}

fn show(out: &Output) -> String {
    format!(
        "exit: {:?}\n--- stdout\n{}--- stderr\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// `ocf-tester -n NAME -o k=v... AGENT` passes ("passed all tests", exit 0).
fn ocf_tester(prefix: &[&str], agent: &Path, name: &str, params: &[(&str, String)]) {
    let mut argv: Vec<String> = vec![OCF_TESTER.into(), "-v".into(), "-n".into(), name.into()];
    for (k, v) in params {
        argv.push("-o".into());
        argv.push(format!("{k}={v}"));
    }
    argv.push(agent.display().to_string());
    let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
    let out = run(prefix, &argv, &[]);
    let text = show(&out);
    assert_eq!(out.status.code(), Some(0), "ocf-tester failed:\n{text}");
    assert!(text.contains("passed all tests"), "{text}");
}

/// `AGENT ACTION` in the OCF form, its exit code.
fn ocf_call(agent: &Path, action: &str, params: &[(&str, &str)]) -> (i32, String) {
    let env: Vec<(String, String)> = params
        .iter()
        .map(|(k, v)| (format!("OCF_RESKEY_{k}"), v.to_string()))
        .collect();
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let out = run(&[], &[&agent.display().to_string(), action], &env);
    (out.status.code().unwrap_or(-1), show(&out))
}

/// KILLs, in `Drop`, the processes whose pids the named files hold, and
/// the processes that have one of the arguments.
struct Cleanup {
    pidfiles: Vec<PathBuf>,
    args: Vec<String>,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        let mut pids: Vec<i32> = self.pidfiles.iter().filter_map(|f| read_pid(f)).collect();
        for a in &self.args {
            pids.extend(pids_with_arg(a));
        }
        for pid in pids {
            if alive(pid) {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(pid),
                    nix::sys::signal::Signal::SIGKILL,
                );
                wait_gone(pid);
            }
        }
    }
}

#[test]
fn meta_data_is_valid_ocf_xml() {
    let d = Dir::new();
    for a in ["mysqld", "daemon"] {
        let out = run(&[], &[&d.agent(a).display().to_string(), "meta-data"], &[]);
        assert_eq!(out.status.code(), Some(0), "{a}:\n{}", show(&out));
        let xml = String::from_utf8_lossy(&out.stdout).into_owned();
        // Valid against the OCF DTD that resource-agents ships.
        let lint = Command::new("sh")
            .arg("-c")
            .arg("cd /usr/share/resource-agents && xmllint --noout --valid -")
            .stdin(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        use std::io::Write;
        lint.stdin
            .as_ref()
            .unwrap()
            .write_all(xml.as_bytes())
            .unwrap();
        let lint = lint.wait_with_output().unwrap();
        assert!(
            lint.status.success(),
            "{a} meta-data: {}\n{xml}",
            String::from_utf8_lossy(&lint.stderr)
        );
        for want in [
            &format!("<resource-agent name=\"{a}\""),
            "<content type=",
            "<action name=\"monitor\" timeout=",
            "<action name=\"validate-all\" timeout=",
        ] {
            assert!(xml.contains(want), "{a}: no {want:?} in\n{xml}");
        }
        // usage and help answer 0; an unknown OCF action is "unimplemented".
        for (action, code) in [("usage", 0), ("help", 0), ("notify", 3), ("promote", 3)] {
            let (c, text) = ocf_call(&d.agent(a), action, &[]);
            assert_eq!(c, code, "{a} {action}:\n{text}");
        }
    }
}

#[test]
fn validate_all_and_monitor_exit_codes() {
    let d = Dir::new();
    let daemon = d.agent("daemon");
    let pid = d.path().join("p.pid");
    let pid = pid.to_str().unwrap();
    for (params, want) in [
        (vec![("pidfile", pid), ("command", "sleep 1000")], 0),
        // OCF_ERR_CONFIGURED: missing or nonsense parameters.
        (vec![("pidfile", pid)], 6),
        (vec![("pidfile", "rel.pid"), ("command", "sleep 1")], 6),
        (vec![("pidfile", pid), ("command", "sleep 'a")], 6),
        (
            vec![("pidfile", pid), ("command", "sleep 1"), ("port", "x")],
            6,
        ),
        // OCF_ERR_INSTALLED: the program is not there.
        (vec![("pidfile", pid), ("command", "/nonexistent/prog")], 5),
    ] {
        let (c, text) = ocf_call(&daemon, "validate-all", &params);
        assert_eq!(c, want, "daemon validate-all {params:?}:\n{text}");
    }
    // Stopped: monitor 7, stop 0, even without parameters.
    let p = [("pidfile", pid), ("command", "sleep 1000")];
    assert_eq!(ocf_call(&daemon, "monitor", &p).0, 7);
    assert_eq!(ocf_call(&daemon, "monitor", &[]).0, 7);
    assert_eq!(ocf_call(&daemon, "stop", &[]).0, 0);

    let mysqld = d.agent("mysqld");
    let data = d.path().join("data");
    let data = data.to_str().unwrap();
    for (params, want) in [
        (vec![("datadir", data)], 0),
        (vec![], 6),
        (vec![("datadir", "relative")], 6),
        (vec![("datadir", data), ("port", "x")], 6),
        (vec![("datadir", data), ("user", "no-such-user-hbd")], 6),
        (
            vec![("datadir", data), ("binary", "/nonexistent/mariadbd")],
            5,
        ),
    ] {
        let (c, text) = ocf_call(&mysqld, "validate-all", &params);
        assert_eq!(c, want, "mysqld validate-all {params:?}:\n{text}");
    }
    assert_eq!(ocf_call(&mysqld, "monitor", &[("datadir", data)]).0, 7);
    assert_eq!(ocf_call(&mysqld, "stop", &[("datadir", data)]).0, 0);
    // The heartbeat form is still there: status says the word.
    let out = run(&[], &[mysqld.to_str().unwrap(), data, "status"], &[]);
    assert_eq!(out.status.code(), Some(3), "{}", show(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "stopped");
}

#[test]
fn ocf_tester_passes_on_daemon_with_sleep_and_memcached() {
    let d = Dir::new();
    let sleep_pid = d.path().join("sleep.pid");
    let mc_pid = d.path().join("mc.pid");
    let _cleanup = Cleanup {
        pidfiles: vec![sleep_pid.clone(), mc_pid.clone()],
        args: Vec::new(),
    };
    ocf_tester(
        &[],
        &d.agent("daemon"),
        "sleeper",
        &[
            ("pidfile", sleep_pid.display().to_string()),
            ("command", "sleep 100000".into()),
        ],
    );
    assert!(!sleep_pid.exists(), "stopped at the end: no pid file");
    // memcached answers on its port: start waits for it, monitor checks it.
    // In a network namespace of its own: the port cannot collide.
    let netns: &[&str] = &[
        "unshare",
        "--net",
        "sh",
        "-c",
        "ip link set lo up && exec \"$0\" \"$@\"",
    ];
    ocf_tester(
        netns,
        &d.agent("daemon"),
        "cache",
        &[
            ("pidfile", mc_pid.display().to_string()),
            (
                "command",
                "memcached -u nobody -l 127.0.0.1 -p 11211 -U 0".into(),
            ),
            ("port", "127.0.0.1:11211".into()),
        ],
    );
    assert!(!mc_pid.exists());
}

#[test]
fn ocf_tester_passes_on_mysqld_with_real_mariadb() {
    let d = Dir::new();
    assert!(
        Path::new("/usr/sbin/mariadbd").exists() && Path::new("/usr/bin/mariadb-admin").exists(),
        "MariaDB is not installed: run scripts/setup (Debian packages mariadb-server, mariadb-client)"
    );
    let data = d.path().join("data");
    fs::create_dir_all(&data).unwrap();
    nix::unistd::chown(
        &data,
        Some(nix::unistd::User::from_name("mysql").unwrap().unwrap().uid),
        None,
    )
    .unwrap();
    let _cleanup = Cleanup {
        pidfiles: Vec::new(),
        args: vec![format!("--datadir={}", data.display())],
    };
    // In a fresh network namespace: port 3306 cannot collide with anything;
    // the agent reaches the server through its unix socket.
    let netns: &[&str] = &[
        "unshare",
        "--net",
        "sh",
        "-c",
        "ip link set lo up && exec \"$0\" \"$@\"",
    ];
    ocf_tester(
        netns,
        &d.agent("mysqld"),
        "db",
        &[("datadir", data.display().to_string())],
    );
    assert!(
        pids_with_arg(&format!("--datadir={}", data.display())).is_empty(),
        "the server still runs after ocf-tester's last stop"
    );
    // It did run: the data directory was initialized.
    assert!(data.join("mysql").is_dir());
}

/// A configuration directory for `hbctl check`: ha.cf, authkeys, the given
/// haresources, and cluster.toml's `[agents]` with the real OCF root and
/// the project's resources.
fn check_dir(haresources: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, text: &str, mode: u32| {
        let p = dir.path().join(name);
        fs::write(&p, text).unwrap();
        fs::set_permissions(&p, fs::Permissions::from_mode(mode)).unwrap();
    };
    write(
        "ha.cf",
        "keepalive 200ms\ndeadtime 1\nbcast eth0\nnode n1 n2\nauto_failback on\n",
        0o644,
    );
    write("authkeys", common::KEY, 0o600);
    write("haresources", haresources, 0o644);
    write(
        "cluster.toml",
        &format!(
            "[agents]\nresources_dir = {:?}\nocf_root = \"/usr/lib/ocf\"\n",
            repo().join("resources")
        ),
        0o644,
    );
    dir
}

fn hbctl_check(dir: &Path) -> (i32, String) {
    let out = run(
        &[],
        &[
            common::HBCTL,
            "check",
            "--config",
            dir.to_str().unwrap(),
            "--node",
            "n1",
        ],
        &[],
    );
    (out.status.code().unwrap_or(-1), show(&out))
}

/// `hbctl check` asks the agents' validate-all: the real ocf:heartbeat:Dummy
/// and the project's agents pass with good parameters; given wrong ones,
/// check fails with exit 2, naming haresources:LINE, the resource and the
/// agent.
#[test]
fn hbctl_check_runs_validate_all() {
    assert!(
        Path::new("/usr/lib/ocf/resource.d/heartbeat/Dummy").exists(),
        "ocf:heartbeat:Dummy is not installed: run scripts/setup (Debian package resource-agents)"
    );
    let state = tempfile::tempdir().unwrap();
    let good = format!(
        "n1 ocf:heartbeat:Dummy::state={}/d.state\n\
         n2 daemon::{}/s.pid::sleep::1000 mysqld::{}/data::port=3307\n",
        state.path().display(),
        state.path().display(),
        state.path().display(),
    );
    let dir = check_dir(&good);
    let (code, text) = hbctl_check(dir.path());
    assert_eq!(code, 0, "{text}");
    assert!(!text.contains("validate-all"), "{text}");
    // Nothing was started by a check.
    assert!(!state.path().join("d.state").exists());
    assert!(!state.path().join("s.pid").exists());

    // Dummy: a state file in a directory that does not exist is
    // OCF_ERR_ARGS; daemon: a program that is not installed is
    // OCF_ERR_INSTALLED; mysqld: a port that is no number is refused.
    let bad = format!(
        "n1 ocf:heartbeat:Dummy::state=/nonexistent-hbd-dir/d.state\n\
         n2 daemon::{}/s.pid::/nonexistent/prog\n\
         n1 192.0.2.10 mysqld::{}/data::port=x\n",
        state.path().display(),
        state.path().display(),
    );
    let dir = check_dir(&bad);
    let (code, text) = hbctl_check(dir.path());
    assert_eq!(code, 2, "{text}");
    let h = dir.path().join("haresources");
    for want in [
        format!(
            "{}:1: ocf:heartbeat:Dummy::state=/nonexistent-hbd-dir/d.state: agent ocf:heartbeat:Dummy: validate-all exited with code 2",
            h.display()
        ),
        format!("{}:2: daemon::", h.display()),
        format!("{}:3: mysqld::", h.display()),
    ] {
        assert!(text.contains(&want), "no {want:?} in:\n{text}");
    }
    assert!(text.contains("code 5 (program is not installed"), "{text}");
    assert!(text.contains("bad port x"), "{text}");
    assert!(text.contains("3 error(s)"), "{text}");
}
