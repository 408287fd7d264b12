//! The control API of the VRRP runtime (`VrrpHandle::status`, `standby`,
//! `takeover`, `shutdown`), which `hbctl` uses, against a real peer: this
//! test binary runs itself inside n1's namespace as a small driver (never
//! `setns` in the multi-threaded test process) and talks to it over
//! stdin/stdout, while hbd runs in n2.

mod common;

use common::vrrp::{holders, instance_conf, stays, wait};
use common::Lab;
use hbd::vrrp::runtime::{VrrpHandle, VrrpOptions, VrrpRuntime, VrrpStatus};
use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

const VIP: &str = "192.0.2.50";
const HELPER_ENV: &str = "HBD_VRRP_CONTROL_CONF";
/// The driver's answers start with this (the test harness prints too).
const TAG: &str = "@@ ";

/// The driver: runs when the test binary is started with [`HELPER_ENV`].
#[test]
fn driver() {
    let Ok(path) = std::env::var(HELPER_ENV) else {
        return;
    };
    let (conf, _) = hbd::vrrp::conf::load(std::path::Path::new(&path)).expect("valid conf");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        use tokio::io::AsyncBufReadExt;
        let h: VrrpHandle = VrrpRuntime::start(conf, VrrpOptions::default())
            .await
            .expect("start");
        let mut lines = tokio::io::BufReader::new(tokio::io::stdin()).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            let mut w = line.split_whitespace();
            let cmd = w.next().unwrap_or("");
            let arg = w.next();
            let answer = match cmd {
                "status" => serde_json::to_string(&h.status()).unwrap(),
                "standby" => {
                    serde_json::to_string(&h.standby(arg).map_err(|e| e.to_string())).unwrap()
                }
                "takeover" => {
                    serde_json::to_string(&h.takeover(arg).map_err(|e| e.to_string())).unwrap()
                }
                "shutdown" => {
                    h.shutdown().await;
                    serde_json::to_string(&h.status()).unwrap()
                }
                _ => "\"?\"".to_string(),
            };
            println!("{TAG}{answer}");
        }
    });
}

struct Driver {
    child: Child,
    stdin: ChildStdin,
    answers: mpsc::Receiver<String>,
}

impl Driver {
    fn start(lab: &Lab, conf: &str) -> Driver {
        let path = lab.dir.path().join("driver-keepalived.conf");
        std::fs::write(&path, conf).unwrap();
        let exe = std::env::current_exe().unwrap();
        let mut child = Command::new("ip")
            .args(["netns", "exec", &lab.ns("n1")])
            .arg(exe)
            .args(["--exact", "driver", "--nocapture", "--test-threads=1"])
            .env(HELPER_ENV, &path)
            .env("HBD_LOG", "debug")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("driver");
        let stdin = child.stdin.take().unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, answers) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                // The harness's `test driver ... ` may precede the first.
                if let Some(i) = line.find(TAG) {
                    let _ = tx.send(line[i + TAG.len()..].to_string());
                }
            }
        });
        Driver {
            child,
            stdin,
            answers,
        }
    }

    fn ask(&mut self, cmd: &str) -> String {
        writeln!(self.stdin, "{cmd}").unwrap();
        self.stdin.flush().unwrap();
        self.answers
            .recv_timeout(Duration::from_secs(90))
            .expect("the driver answers")
    }

    fn status(&mut self) -> Vec<VrrpStatus> {
        serde_json::from_str(&self.ask("status")).unwrap()
    }

    fn state(&mut self) -> String {
        self.status()[0].state.clone()
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn standby_takeover_status_and_shutdown() {
    if std::env::var(HELPER_ENV).is_ok() {
        return;
    }
    let mut lab = Lab::new(2, 1);
    let conf = |prio| instance_conf("VI_1", 51, prio, &format!("{VIP}/24"), "", "");
    lab.write(2, "keepalived.conf", &conf(100));
    let mut d = Driver::start(&lab, &conf(150));
    lab.start(2);
    let logs = |lab: &Lab| lab.log(2);

    wait(
        "n1 (the driver) is MASTER with the VIP",
        || holders(&lab, VIP) == ["n1"],
        || logs(&lab),
    );
    let s = d.status();
    assert_eq!(s.len(), 1);
    assert_eq!(s[0].name, "VI_1");
    assert_eq!(s[0].vrid, 51);
    assert_eq!(s[0].interface, "eth0");
    assert_eq!(s[0].state, "MASTER");
    assert_eq!((s[0].priority, s[0].effective_priority), (150, 150));
    assert_eq!(s[0].master.as_deref(), Some("192.0.2.11"));
    assert_eq!(s[0].vips, [VIP]);

    // Standby: the VIP moves and stays away although n1 has the higher
    // priority.
    assert_eq!(d.ask("standby"), r#"{"Ok":["VI_1"]}"#);
    wait(
        "the VIP moves to n2",
        || holders(&lab, VIP) == ["n2"],
        || logs(&lab),
    );
    stays(
        "n1 in standby does not preempt",
        Duration::from_secs(4),
        || holders(&lab, VIP) == ["n2"],
        || logs(&lab),
    );
    let s = d.status();
    assert_eq!(s[0].state, "BACKUP");
    assert_eq!(s[0].master.as_deref(), Some("192.0.2.12"));

    // An unknown instance is an error naming the instances.
    let e = d.ask("standby nope");
    assert!(e.contains("Err") && e.contains("VI_1"), "{e}");

    // Takeover: back at once.
    assert_eq!(d.ask("takeover VI_1"), r#"{"Ok":["VI_1"]}"#);
    wait(
        "n1 takes the VIP back",
        || holders(&lab, VIP) == ["n1"],
        || logs(&lab),
    );
    wait("n1 is MASTER", || d.state() == "MASTER", || logs(&lab));

    // Shutdown: priority 0, VIP removed, STOP.
    let s: Vec<VrrpStatus> = serde_json::from_str(&d.ask("shutdown")).unwrap();
    assert_eq!(s[0].state, "STOP");
    wait(
        "n2 takes the VIP after the shutdown",
        || holders(&lab, VIP) == ["n2"],
        || logs(&lab),
    );
}

/// Dropped datagrams are counted per reason in the status: the peer's
/// wrong PASS password, and junk sent to the VRRP group.
#[test]
fn drops_are_counted_per_reason() {
    if std::env::var(HELPER_ENV).is_ok() {
        return;
    }
    let mut lab = Lab::new(2, 1);
    let auth = |p: &str| {
        format!("    authentication {{\n        auth_type PASS\n        auth_pass {p}\n    }}\n")
    };
    let conf = |prio, p: &str| instance_conf("VI_1", 51, prio, &format!("{VIP}/24"), &auth(p), "");
    lab.write(2, "keepalived.conf", &conf(100, "wrong"));
    let mut d = Driver::start(&lab, &conf(150, "right"));
    lab.start(2);
    let logs = |lab: &Lab| lab.log(2);
    // No adjacency: both MASTER, and n1 counts n2's adverts.
    wait(
        "both hold the VIP, n1 counts bad passwords",
        || {
            holders(&lab, VIP) == ["n1", "n2"]
                && d.status()[0]
                    .drops
                    .get("auth_password")
                    .copied()
                    .unwrap_or(0)
                    >= 2
        },
        || logs(&lab),
    );
    let py = "import socket\n\
s=socket.socket(socket.AF_INET,socket.SOCK_RAW,112)\n\
s.setsockopt(socket.SOL_SOCKET,25,b'eth0')\n\
s.setsockopt(socket.IPPROTO_IP,socket.IP_MULTICAST_TTL,255)\n\
for _ in range(3): s.sendto(b'junk',('224.0.0.18',0))\n";
    let out = lab.exec("n2", &["python3", "-c", py]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    wait(
        "n1 counts the junk as malformed",
        || d.status()[0].drops.get("malformed").copied().unwrap_or(0) >= 3,
        || logs(&lab),
    );
    let s = d.status();
    assert_eq!(s[0].state, "MASTER", "{s:?}");
    assert!(
        s[0].drops
            .keys()
            .all(|k| k == "auth_password" || k == "malformed"),
        "{s:?}"
    );
}
