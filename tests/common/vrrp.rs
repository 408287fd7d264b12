//! VRRP tests: Debian's keepalived in a lab namespace, VIP and reachability
//! checks. keepalived runs in the foreground with its own pid files per
//! namespace and dies with the test process (PR_SET_PDEATHSIG); a crash is
//! SIGKILL of all its processes (killing only the parent makes its VRRP child
//! give up with priority 0, which is not a crash).

use super::Lab;
use std::fs;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Once;
use std::time::{Duration, Instant};

/// Waits for VRRP: generous, never asserted as a timing.
pub const VRRP_TIMEOUT: Duration = Duration::from_secs(60);

static INSTALL: Once = Once::new();

/// Installs Debian's keepalived when it is missing.
pub fn ensure_keepalived() {
    INSTALL.call_once(|| {
        let ok = Command::new("sh")
            .args([
                "-c",
                "which keepalived >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y keepalived >/dev/null",
            ])
            .status()
            .expect("sh");
        assert!(ok.success(), "cannot install keepalived");
    });
}

static INSTALL_NFT: Once = Once::new();

/// Installs Debian's nftables when `nft` is missing (for `no_accept`).
pub fn ensure_nft() {
    INSTALL_NFT.call_once(|| {
        let ok = Command::new("sh")
            .args([
                "-c",
                "command -v nft >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y nftables >/dev/null",
            ])
            .status()
            .expect("sh");
        assert!(ok.success(), "cannot install nftables");
    });
}

/// A keepalived (VRRP only) in one lab namespace.
pub struct Keepalived {
    pub ns: String,
    pub dir: PathBuf,
    child: Option<Child>,
}

impl Keepalived {
    /// Starts keepalived in `host`'s namespace with `conf`.
    pub fn start(lab: &Lab, host: &str, conf: &str) -> Keepalived {
        ensure_keepalived();
        let dir = lab.dir.path().join(format!("keepalived-{host}"));
        fs::create_dir_all(&dir).unwrap();
        let conf_path = dir.join("keepalived.conf");
        fs::write(&conf_path, conf).unwrap();
        let log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join("log"))
            .unwrap();
        let ns = lab.ns(host);
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &ns, "keepalived", "-n", "-l", "-D", "-P"])
            .arg("-f")
            .arg(&conf_path)
            .arg("-p")
            .arg(dir.join("keepalived.pid"))
            .arg("-r")
            .arg(dir.join("vrrp.pid"))
            .arg("-c")
            .arg(dir.join("checkers.pid"))
            .arg("-b")
            .arg(dir.join("bfd.pid"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log);
        super::die_with_test(&mut cmd);
        let child = cmd.spawn().expect("spawn keepalived");
        Keepalived {
            ns,
            dir,
            child: Some(child),
        }
    }

    pub fn log(&self) -> String {
        fs::read_to_string(self.dir.join("log")).unwrap_or_default()
    }

    /// Every keepalived process of the namespace.
    fn pids(&self) -> Vec<i32> {
        let mut pids: Vec<i32> = Vec::new();
        if let Some(c) = &self.child {
            pids.push(c.id() as i32);
        }
        for f in ["keepalived.pid", "vrrp.pid"] {
            if let Ok(s) = fs::read_to_string(self.dir.join(f)) {
                if let Ok(p) = s.trim().parse() {
                    pids.push(p);
                }
            }
        }
        if let Ok(out) = Command::new("ip")
            .args(["netns", "pids", &self.ns])
            .output()
        {
            for p in String::from_utf8_lossy(&out.stdout).split_whitespace() {
                if let Ok(p) = p.parse::<i32>() {
                    let comm = fs::read_to_string(format!("/proc/{p}/comm")).unwrap_or_default();
                    if comm.trim() == "keepalived" {
                        pids.push(p);
                    }
                }
            }
        }
        pids.sort();
        pids.dedup();
        pids
    }

    /// A crash: SIGKILL to the parent and its VRRP child at once.
    pub fn crash(&mut self) {
        if self.child.is_none() {
            return;
        }
        for p in self.pids() {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(p),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
        if let Some(mut c) = self.child.take() {
            let _ = c.wait();
        }
        let _ = fs::remove_file(self.dir.join("keepalived.pid"));
        let _ = fs::remove_file(self.dir.join("vrrp.pid"));
    }

    /// A clean stop (SIGTERM to the parent), waited for.
    pub fn stop(&mut self) {
        if let Some(c) = &self.child {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(c.id() as i32),
                nix::sys::signal::Signal::SIGTERM,
            );
        }
        if let Some(mut c) = self.child.take() {
            let _ = c.wait();
        }
    }
}

impl Drop for Keepalived {
    fn drop(&mut self) {
        self.crash();
    }
}

/// The cluster nodes (n1..) whose namespace holds `vip`.
pub fn holders(lab: &Lab, vip: &str) -> Vec<String> {
    (1..=lab.nodes)
        .map(|i| format!("n{i}"))
        .filter(|h| has_addr(lab, h, vip))
        .collect()
}

pub fn has_addr(lab: &Lab, host: &str, addr: &str) -> bool {
    let out = Command::new("ip")
        .args(["-n", &lab.ns(host), "-4", "-o", "addr", "show"])
        .output()
        .expect("ip addr");
    String::from_utf8_lossy(&out.stdout).contains(&format!(" {addr}/"))
}

/// Removes `vip` from `host` (a crashed machine's addresses go with it).
pub fn del_addr(lab: &Lab, host: &str, vip: &str, prefix: u8) {
    let _ = Command::new("ip")
        .args([
            "-n",
            &lab.ns(host),
            "addr",
            "del",
            &format!("{vip}/{prefix}"),
            "dev",
            "eth0",
        ])
        .output();
}

/// `host`'s eth0 MAC.
pub fn mac(lab: &Lab, host: &str) -> String {
    let out = lab.exec(host, &["cat", "/sys/class/net/eth0/address"]);
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// The client reaches `vip` (a TCP connection answered, accepted or
/// refused) and its neighbour entry is `host`'s MAC.
pub fn client_reaches(lab: &Lab, vip: &str, host: &str) -> bool {
    let py = format!(
        "import socket,sys\ns=socket.socket();s.settimeout(1)\ntry:\n s.connect(('{vip}',9))\nexcept ConnectionRefusedError:\n pass\nexcept OSError:\n sys.exit(1)\n"
    );
    let out = lab.exec("c", &["python3", "-c", &py]);
    if !out.status.success() {
        return false;
    }
    let neigh = lab.exec("c", &["ip", "neigh", "show", vip]);
    String::from_utf8_lossy(&neigh.stdout).contains(&mac(lab, host))
}

/// Waits until `f` holds; panics with `logs()` after [`VRRP_TIMEOUT`].
pub fn wait(what: &str, mut f: impl FnMut() -> bool, logs: impl Fn() -> String) {
    let start = Instant::now();
    while start.elapsed() < VRRP_TIMEOUT {
        if f() {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!(
        "timed out after {VRRP_TIMEOUT:?} waiting for: {what}\n{}",
        logs()
    );
}

/// `f` holds all the time for `d` (a steady state; not a timing check).
pub fn stays(what: &str, d: Duration, mut f: impl FnMut() -> bool, logs: impl Fn() -> String) {
    let start = Instant::now();
    while start.elapsed() < d {
        assert!(f(), "no longer true: {what}\n{}", logs());
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// A keepalived.conf with one instance on eth0, `extra` inside it.
pub fn instance_conf(
    name: &str,
    vrid: u8,
    priority: u8,
    vip: &str,
    extra: &str,
    global: &str,
) -> String {
    format!(
        "global_defs {{\n    router_id {name}_{priority}\n    script_user root\n    enable_script_security\n{global}}}\n\
vrrp_instance {name} {{\n    state BACKUP\n    interface eth0\n    virtual_router_id {vrid}\n    priority {priority}\n\
{extra}    virtual_ipaddress {{\n        {vip}\n    }}\n}}\n"
    )
}
