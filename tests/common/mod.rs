//! The netns lab for integration tests: the same `scripts/lab` the operators
//! use, a unique name per lab, daemons started under `ip netns exec` as
//! children (never `setns` in this multi-threaded process), and everything
//! removed in `Drop`, also after a panic. A test run that was killed outright
//! leaves labs whose owner pid is gone; the next run's `lab gc` removes them.
#![allow(dead_code)]

use serde_json::Value;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Once;
use std::time::{Duration, Instant};

pub const HBD: &str = env!("CARGO_BIN_EXE_hbd");
pub const HBCTL: &str = env!("CARGO_BIN_EXE_hbctl");

/// Generous: a loaded CI machine must stay green. Tests never assert timings.
pub const TIMEOUT: Duration = Duration::from_secs(30);

pub const KEY: &str = "auth 1\n1 sha256 0123456789abcdef0123456789abcdef\n";

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The child gets SIGKILL if this test process dies (a killed test run
/// leaves no daemon behind).
pub fn die_with_test(cmd: &mut Command) {
    // SAFETY: prctl is async-signal-safe.
    unsafe {
        cmd.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            Ok(())
        });
    }
}

pub fn require_root() {
    assert!(
        nix::unistd::geteuid().is_root(),
        "integration tests need root (network namespaces); run scripts/test as root"
    );
}

pub mod corosync;
pub mod disk;
pub mod partition;
pub mod scenario;
pub mod services;
pub mod vrrp;

static COUNTER: AtomicUsize = AtomicUsize::new(0);
static GC: Once = Once::new();

fn lab_script(args: &[&str]) -> Output {
    let out = Command::new(repo().join("scripts/lab"))
        .args(args)
        .output()
        .expect("run scripts/lab");
    assert!(
        out.status.success(),
        "scripts/lab {args:?} failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

pub struct Lab {
    pub name: String,
    pub nodes: usize,
    pub nets: usize,
    pub dir: tempfile::TempDir,
    daemons: Vec<Option<Child>>,
}

impl Lab {
    /// `nodes` cluster nodes n1..nN and a client c, on `nets` networks
    /// (eth0 192.0.2.0/24, eth1 198.51.100.0/24).
    pub fn new(nodes: usize, nets: usize) -> Lab {
        require_root();
        GC.call_once(|| {
            lab_script(&["gc"]);
        });
        let name = format!(
            "hbdt{}x{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::SeqCst)
        );
        let dir = tempfile::Builder::new()
            .prefix(&format!("{name}-"))
            .tempdir()
            .expect("tempdir");
        // Let non-root callers (the permission test) reach the sockets inside.
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
        let pid = std::process::id().to_string();
        lab_script(&[
            "up",
            &name,
            &nodes.to_string(),
            &nets.to_string(),
            "--owner",
            &pid,
        ]);
        Lab {
            name,
            nodes,
            nets,
            dir,
            daemons: (0..nodes).map(|_| None).collect(),
        }
    }

    pub fn ns(&self, host: &str) -> String {
        format!("{}-{}", self.name, host)
    }

    pub fn node_dir(&self, i: usize) -> PathBuf {
        self.dir.path().join(format!("n{i}"))
    }

    pub fn config_dir(&self, i: usize) -> PathBuf {
        self.node_dir(i).join("ha.d")
    }

    pub fn run_dir(&self, i: usize) -> PathBuf {
        self.node_dir(i).join("run")
    }

    pub fn log_path(&self, i: usize) -> PathBuf {
        self.node_dir(i).join("hbd.log")
    }

    /// Writes `name` into node i's configuration directory (authkeys mode 600).
    pub fn write(&self, i: usize, name: &str, text: &str) {
        let dir = self.config_dir(i);
        fs::create_dir_all(&dir).unwrap();
        let path = dir.join(name);
        fs::write(&path, text).unwrap();
        let mode = if name == "authkeys" { 0o600 } else { 0o644 };
        fs::set_permissions(&path, fs::Permissions::from_mode(mode)).unwrap();
    }

    /// The same ha.cf and authkeys on every node.
    pub fn configure(&self, ha_cf: &str, authkeys: &str) {
        for i in 1..=self.nodes {
            self.write(i, "ha.cf", ha_cf);
            self.write(i, "authkeys", authkeys);
        }
    }

    pub fn start(&mut self, i: usize) {
        self.start_with_env(i, &[]);
    }

    pub fn start_with_env(&mut self, i: usize, env: &[(&str, &str)]) {
        fs::create_dir_all(self.node_dir(i)).unwrap();
        fs::set_permissions(self.node_dir(i), fs::Permissions::from_mode(0o755)).unwrap();
        let log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path(i))
            .unwrap();
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.ns(&format!("n{i}")), HBD])
            .arg("--config")
            .arg(self.config_dir(i))
            .arg("--node")
            .arg(format!("n{i}"))
            .arg("--run-dir")
            .arg(self.run_dir(i))
            .arg("--state-dir")
            .arg(self.node_dir(i).join("state"))
            .env("HBD_LOG", "debug")
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log);
        // If this test process dies, the daemon dies with it.
        die_with_test(&mut cmd);
        let child = cmd.spawn().expect("spawn hbd");
        self.daemons[i - 1] = Some(child);
    }

    pub fn start_all(&mut self) {
        for i in 1..=self.nodes {
            self.start(i);
        }
    }

    pub fn pid(&self, i: usize) -> i32 {
        self.daemons[i - 1].as_ref().expect("daemon running").id() as i32
    }

    pub fn signal(&self, i: usize, sig: nix::sys::signal::Signal) {
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(self.pid(i)), sig).unwrap();
    }

    /// SIGKILL, as a crash.
    pub fn kill(&mut self, i: usize) {
        if let Some(mut c) = self.daemons[i - 1].take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// SIGTERM and wait for the exit status.
    pub fn stop(&mut self, i: usize) -> std::process::ExitStatus {
        self.signal(i, nix::sys::signal::Signal::SIGTERM);
        let mut c = self.daemons[i - 1].take().unwrap();
        wait_child(&mut c, TIMEOUT).expect("hbd did not exit after SIGTERM")
    }

    /// Whether the daemon has exited (reaps it).
    pub fn exited(&mut self, i: usize) -> Option<std::process::ExitStatus> {
        self.daemons[i - 1]
            .as_mut()
            .and_then(|c| c.try_wait().unwrap())
    }

    pub fn hbctl(&self, i: usize, args: &[&str]) -> Output {
        Command::new(HBCTL)
            .arg("--run-dir")
            .arg(self.run_dir(i))
            .args(args)
            .output()
            .expect("run hbctl")
    }

    /// `hbctl status --json` of node i, if it answers.
    pub fn status(&self, i: usize) -> Option<Value> {
        let out = self.hbctl(i, &["status", "--json"]);
        if !out.status.success() {
            return None;
        }
        serde_json::from_slice(&out.stdout).ok()
    }

    /// The state node `observer` holds for `node` ("up", "dead", "unknown").
    pub fn node_state(&self, observer: usize, node: &str) -> Option<String> {
        let s = self.status(observer)?;
        node_entry(&s, node)?["state"].as_str().map(String::from)
    }

    pub fn link_state(&self, observer: usize, node: &str, medium: &str) -> Option<String> {
        let s = self.status(observer)?;
        node_entry(&s, node)?["links"]
            .as_array()?
            .iter()
            .find(|l| l["medium"] == medium)?["state"]
            .as_str()
            .map(String::from)
    }

    pub fn log(&self, i: usize) -> String {
        fs::read_to_string(self.log_path(i)).unwrap_or_default()
    }

    /// Waits until `f` holds; on timeout panics with every node's log.
    pub fn wait_for(&self, what: &str, mut f: impl FnMut() -> bool) {
        let start = Instant::now();
        while start.elapsed() < TIMEOUT {
            if f() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let mut logs = String::new();
        for i in 1..=self.nodes {
            logs.push_str(&format!("\n--- n{i} ---\n{}", self.log(i)));
            if let Some(s) = self.status(i) {
                logs.push_str(&format!("status: {s}\n"));
            }
        }
        panic!("timed out after {TIMEOUT:?} waiting for: {what}{logs}");
    }

    /// Every running node holds every other running node up.
    pub fn wait_all_up(&self, nodes: &[usize]) {
        for &a in nodes {
            for &b in nodes {
                if a != b {
                    self.wait_for(&format!("n{a} sees n{b} up"), || {
                        self.node_state(a, &format!("n{b}")).as_deref() == Some("up")
                    });
                }
            }
        }
    }

    /// Cuts (false) or restores (true) host's link on net `net` at the switch.
    pub fn link(&self, host: &str, net: usize, up: bool) {
        lab_script(&[
            "link",
            &self.name,
            host,
            &net.to_string(),
            if up { "up" } else { "down" },
        ]);
    }

    /// Runs a command inside host's namespace and waits for it.
    pub fn exec(&self, host: &str, args: &[&str]) -> Output {
        Command::new("ip")
            .args(["netns", "exec", &self.ns(host)])
            .args(args)
            .output()
            .expect("ip netns exec")
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        for c in self.daemons.iter_mut().flatten() {
            let _ = c.kill();
            let _ = c.wait();
        }
        let _ = Command::new(repo().join("scripts/lab"))
            .args(["down", &self.name])
            .output();
    }
}

pub fn node_entry<'a>(status: &'a Value, node: &str) -> Option<&'a Value> {
    status["nodes"]
        .as_array()?
        .iter()
        .find(|n| n["name"] == node)
}

pub fn wait_child(c: &mut Child, timeout: Duration) -> Option<std::process::ExitStatus> {
    let start = Instant::now();
    while start.elapsed() < timeout {
        if let Some(s) = c.try_wait().unwrap() {
            return Some(s);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    None
}

/// An ha.cf for n nodes with the given media lines.
pub fn ha_cf(nodes: usize, media: &str, keepalive: &str, deadtime: &str) -> String {
    let names: Vec<String> = (1..=nodes).map(|i| format!("n{i}")).collect();
    format!(
        "keepalive {keepalive}\ndeadtime {deadtime}\ninitdead {deadtime}\n\
         udpport 694\n{media}\nauto_failback on\nnode {}\n",
        names.join(" ")
    )
}

/// `ucast eth0 ADDR` lines for every node (each node skips its own address).
pub fn ucast_lines(nodes: usize, iface: &str, prefix: &str) -> String {
    (1..=nodes)
        .map(|i| format!("ucast {iface} {prefix}.{}\n", 10 + i))
        .collect()
}

pub fn assert_path_absent(p: &Path) {
    assert!(!p.exists(), "{} should not exist", p.display());
}

/// Whether `pid` is alive; a zombie is dead (its parent just has not reaped it).
pub fn alive(pid: i32) -> bool {
    fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
        s.rsplit_once(") ")
            .is_some_and(|(_, rest)| !rest.starts_with('Z'))
    })
}

/// Waits up to [`TIMEOUT`] (×4) for `pid` to die.
pub fn wait_gone(pid: i32) -> bool {
    let deadline = Instant::now() + TIMEOUT * 4;
    while alive(pid) {
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    true
}

/// The pid in a pid file.
pub fn read_pid(p: &Path) -> Option<i32> {
    fs::read_to_string(p).ok()?.trim().parse().ok()
}

/// Live processes with `arg` as one of their command-line arguments.
pub fn pids_with_arg(arg: &str) -> Vec<i32> {
    let mut pids = Vec::new();
    for e in fs::read_dir("/proc").unwrap().flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
            continue;
        };
        if let Ok(cmd) = fs::read(format!("/proc/{pid}/cmdline")) {
            if cmd.split(|&b| b == 0).any(|a| a == arg.as_bytes()) && alive(pid) {
                pids.push(pid);
            }
        }
    }
    pids
}

/// The lines of the lab's `actions.log` (the recording agents write it).
pub fn actions(lab: &Lab) -> Vec<String> {
    std::fs::read_to_string(lab.dir.path().join("actions.log"))
        .unwrap_or_default()
        .lines()
        .map(String::from)
        .collect()
}

/// Group `id` in a status document.
pub fn group<'a>(s: &'a Value, id: &str) -> Option<&'a Value> {
    s["groups"].as_array()?.iter().find(|g| g["id"] == id)
}

/// (owner, state) of group `id` as node i sees it.
pub fn owner(lab: &Lab, i: usize, id: &str) -> Option<(String, String)> {
    let s = lab.status(i)?;
    let g = group(&s, id)?;
    Some((
        g["owner"].as_str().unwrap_or("").to_string(),
        g["state"].as_str()?.to_string(),
    ))
}

/// Node i's own state of group `id`.
pub fn local(lab: &Lab, i: usize, id: &str) -> Option<String> {
    let s = lab.status(i)?;
    group(&s, id)?["local"].as_str().map(String::from)
}

/// Waits until every node of `observers` sees group `id` started on `node`.
pub fn wait_started_on(lab: &Lab, observers: &[usize], id: &str, node: &str) {
    lab.wait_for(&format!("{id} started on {node}"), || {
        observers
            .iter()
            .all(|&i| owner(lab, i, id) == Some((node.to_string(), "started".to_string())))
    });
}

impl Lab {
    /// `hbd --witness --node NAME` in node i's namespace, with node i's
    /// directories, logging to its log; dies with the test process.
    pub fn spawn_witness(&self, i: usize, name: &str) -> Child {
        fs::create_dir_all(self.node_dir(i)).unwrap();
        let log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path(i))
            .unwrap();
        let mut cmd = Command::new("ip");
        cmd.args([
            "netns",
            "exec",
            &self.ns(&format!("n{i}")),
            HBD,
            "--witness",
        ])
        .arg("--config")
        .arg(self.config_dir(i))
        .args(["--node", name])
        .arg("--run-dir")
        .arg(self.run_dir(i))
        .arg("--state-dir")
        .arg(self.node_dir(i).join("state"))
        .env("HBD_LOG", "debug")
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log);
        die_with_test(&mut cmd);
        cmd.spawn().expect("spawn hbd --witness")
    }
}

/// A heartbeat-style agent that records `NODE NAME ACTION` in the lab's
/// shared log and keeps its state in a per-node file. `fail_start` makes
/// start fail on that node.
pub fn recorder(lab: &Lab, node: usize, fail_start: bool) -> String {
    let log = lab.dir.path().join("actions.log");
    let state = lab.node_dir(node).join("rec-state");
    format!(
        "#!/bin/sh\n\
         name=\"$1\"; action=\"$2\"\n\
         mkdir -p {state}\n\
         case \"$action\" in\n\
         start) echo \"n{node} $name start\" >> {log}; {fail} touch {state}/\"$name\" ;;\n\
         stop) echo \"n{node} $name stop\" >> {log}; rm -f {state}/\"$name\" ;;\n\
         status) if [ -e {state}/\"$name\" ]; then echo running; else echo stopped; fi ;;\n\
         esac\n\
         exit 0\n",
        state = state.display(),
        log = log.display(),
        fail = if fail_start { "exit 1;" } else { "" },
    )
}

/// Installs agent `name` (text `text`, executable) in node i's resource.d.
pub fn install_agent(lab: &Lab, node: usize, name: &str, text: &str) {
    let dir = lab.config_dir(node).join("resource.d");
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
}
