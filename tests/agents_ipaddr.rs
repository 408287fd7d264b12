//! The built-in IPaddr agent on real interfaces: two network namespaces per
//! test (the node `-a` and a peer `-b`) joined by a veth pair, addresses only
//! from 192.0.2.0/24 and 198.51.100.0/24, the agent run as
//! `ip netns exec NODE hbctl resource ...`. Nothing is sent from the root
//! namespace; both namespaces are removed in `Drop`, also after a panic, and
//! namespaces left by a killed run (owner pid gone) are removed by the next.

use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Once;
use std::time::{Duration, Instant};

const HBCTL: &str = env!("CARGO_BIN_EXE_hbctl");
/// Generous: a loaded CI machine must stay green. Tests never assert timings.
const TIMEOUT: Duration = Duration::from_secs(30);
const PREFIX: &str = "hbdip";
const VIP: &str = "192.0.2.100";

static COUNTER: AtomicUsize = AtomicUsize::new(0);
static GC: Once = Once::new();

fn run(cmd: &mut Command) -> Output {
    cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"))
}

fn show(cmd: &str, out: &Output) -> String {
    format!(
        "{cmd}: {}\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Runs `ip ARGS` and insists on success.
fn ip(args: &[&str]) -> String {
    let out = run(Command::new("ip").args(args));
    assert!(
        out.status.success(),
        "{}",
        show(&format!("ip {args:?}"), &out)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Removes namespaces of earlier runs whose test process is gone.
fn gc() {
    let out = run(Command::new("ip").args(["netns", "list"]));
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let name = line.split_whitespace().next().unwrap_or("");
        let Some(pid) = name
            .strip_prefix(PREFIX)
            .and_then(|r| r.split('x').next())
            .and_then(|p| p.parse::<u32>().ok())
        else {
            continue;
        };
        if !std::path::Path::new(&format!("/proc/{pid}")).exists() {
            let _ = run(Command::new("ip").args(["netns", "del", name]));
        }
    }
}

/// Node namespace `a` (veth0, 192.0.2.1/24 and 198.51.100.1/25) and peer
/// namespace `b` (veth1, 192.0.2.2/24), and a config directory for hbctl.
struct Net {
    a: String,
    b: String,
    dir: tempfile::TempDir,
}

impl Drop for Net {
    fn drop(&mut self) {
        for ns in [&self.a, &self.b] {
            let _ = Command::new("ip").args(["netns", "del", ns]).output();
        }
    }
}

impl Net {
    fn new() -> Net {
        assert!(
            nix::unistd::geteuid().is_root(),
            "integration tests need root (network namespaces); run scripts/test as root"
        );
        GC.call_once(gc);
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let base = format!("{PREFIX}{}x{n}", std::process::id());
        let net = Net {
            a: format!("{base}-a"),
            b: format!("{base}-b"),
            dir: tempfile::tempdir().unwrap(),
        };
        ip(&["netns", "add", &net.a]);
        ip(&["netns", "add", &net.b]);
        // Created inside the namespaces: no name is ever taken in the root one.
        ip(&[
            "-n", &net.a, "link", "add", "veth0", "type", "veth", "peer", "name", "veth1", "netns",
            &net.b,
        ]);
        ip(&["-n", &net.a, "addr", "add", "192.0.2.1/24", "dev", "veth0"]);
        ip(&[
            "-n",
            &net.a,
            "addr",
            "add",
            "198.51.100.1/25",
            "dev",
            "veth0",
        ]);
        ip(&["-n", &net.b, "addr", "add", "192.0.2.2/24", "dev", "veth1"]);
        for (ns, dev) in [(&net.a, "veth0"), (&net.b, "veth1")] {
            ip(&["-n", ns, "link", "set", "lo", "up"]);
            ip(&["-n", ns, "link", "set", dev, "up"]);
        }
        // The peer learns addresses from gratuitous ARP (off by default).
        for key in ["all", "veth1"] {
            net.sysctl_b(&format!("net.ipv4.conf.{key}.arp_accept=1"));
        }
        net.config("arp_probe = \"300ms\"\narp_count = 3\narp_interval = \"100ms\"\n");
        net
    }

    fn sysctl_b(&self, kv: &str) {
        let out = run(Command::new("ip").args(["netns", "exec", &self.b, "sysctl", "-qw", kv]));
        assert!(out.status.success(), "{}", show(kv, &out));
    }

    fn config(&self, defaults: &str) {
        std::fs::write(
            self.dir.path().join("cluster.toml"),
            format!("[resource_defaults]\n{defaults}"),
        )
        .unwrap();
    }

    /// `hbctl resource SPEC ACTION` in the node namespace.
    fn agent(&self, spec: &str, action: &str) -> Output {
        run(Command::new("ip").args([
            "netns",
            "exec",
            &self.a,
            HBCTL,
            "resource",
            "--config",
            self.dir.path().to_str().unwrap(),
            spec,
            action,
        ]))
    }

    /// Runs the agent and insists on exit code `code`; returns stderr.
    fn expect(&self, spec: &str, action: &str, code: i32) -> String {
        let out = self.agent(spec, action);
        assert_eq!(
            out.status.code(),
            Some(code),
            "{}",
            show(&format!("hbctl resource {spec} {action}"), &out)
        );
        String::from_utf8_lossy(&out.stderr).into_owned()
    }

    /// `ip -4 -o addr show` lines of `ns` that carry `addr`.
    fn addr_lines(&self, ns: &str, addr: &str) -> Vec<String> {
        let needle = format!(" {addr}/");
        ip(&["-n", ns, "-4", "-o", "addr", "show"])
            .lines()
            .filter(|l| l.contains(&needle))
            .map(str::to_string)
            .collect()
    }

    fn mac(&self, ns: &str, dev: &str) -> String {
        let out = ip(&["-n", ns, "-o", "link", "show", dev]);
        let mut it = out.split_whitespace();
        it.find(|w| *w == "link/ether");
        it.next().expect("link/ether in ip link output").to_string()
    }
}

/// Polls `f` until it is true or [`TIMEOUT`] passes.
fn wait_for(what: &str, mut f: impl FnMut() -> bool) {
    let start = Instant::now();
    while !f() {
        assert!(start.elapsed() < TIMEOUT, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn start_adds_labeled_address_announces_it_and_stop_removes_it() {
    let net = Net::new();
    let spec = format!("IPaddr2::{VIP}/24/veth0:0");
    net.expect(&spec, "status", 3);
    net.expect(&spec, "start", 0);

    let lines = net.addr_lines(&net.a, VIP);
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(
        lines[0].contains(&format!("inet {VIP}/24 brd 192.0.2.255 "))
            && lines[0].contains("veth0:0"),
        "{lines:?}"
    );
    net.expect(&spec, "status", 0);

    // The peer learnt the address from the gratuitous ARP alone (it never
    // asked for it yet), with the node's real MAC.
    let mac = net.mac(&net.a, "veth0");
    wait_for("the peer's neighbour entry from gratuitous ARP", || {
        ip(&["-n", &net.b, "neigh", "show", VIP, "dev", "veth1"]).contains(&mac)
    });
    let out =
        run(Command::new("ip").args(["netns", "exec", &net.b, "ping", "-c", "1", "-W", "30", VIP]));
    assert!(out.status.success(), "{}", show("ping", &out));

    // Idempotent: again, and nothing added twice.
    net.expect(&spec, "start", 0);
    assert_eq!(net.addr_lines(&net.a, VIP).len(), 1);

    net.expect(&spec, "stop", 0);
    assert!(net.addr_lines(&net.a, VIP).is_empty());
    net.expect(&spec, "status", 3);
    // The node's own addresses are untouched, and stop is idempotent.
    assert_eq!(net.addr_lines(&net.a, "192.0.2.1").len(), 1);
    net.expect(&spec, "stop", 0);
}

#[test]
fn findif_without_interface_and_bare_address() {
    let net = Net::new();
    net.expect(&format!("IPaddr2::{VIP}"), "start", 0);
    let lines = net.addr_lines(&net.a, VIP);
    assert!(
        lines.len() == 1
            && lines[0].contains("veth0")
            && lines[0].contains(&format!("inet {VIP}/24 brd 192.0.2.255 ")),
        "{lines:?}"
    );
    net.expect(&format!("IPaddr2::{VIP}"), "status", 0);
    // With its interface named, status finds it too.
    net.expect(&format!("IPaddr2::{VIP}/24/veth0"), "status", 0);
    net.expect(&format!("IPaddr2::{VIP}"), "stop", 0);
    net.expect(&format!("IPaddr2::{VIP}"), "status", 3);

    // A bare address is IPaddr; the second subnet of veth0 is found too.
    net.expect("198.51.100.7", "start", 0);
    let lines = net.addr_lines(&net.a, "198.51.100.7");
    assert!(
        lines.len() == 1 && lines[0].contains("198.51.100.7/25 brd 198.51.100.127 "),
        "{lines:?}"
    );
    net.expect("198.51.100.7", "stop", 0);
    assert!(net.addr_lines(&net.a, "198.51.100.7").is_empty());
}

#[test]
fn explicit_prefix_and_broadcast() {
    let net = Net::new();
    net.expect("IPaddr::192.0.2.50/26/veth0/192.0.2.60", "start", 0);
    let lines = net.addr_lines(&net.a, "192.0.2.50");
    assert!(
        lines.len() == 1 && lines[0].contains("192.0.2.50/26 brd 192.0.2.60 "),
        "{lines:?}"
    );
    // /32: no broadcast.
    net.expect("IPaddr::198.51.100.9/32/veth0", "start", 0);
    let lines = net.addr_lines(&net.a, "198.51.100.9");
    assert!(
        lines.len() == 1 && lines[0].contains("198.51.100.9/32 ") && !lines[0].contains(" brd "),
        "{lines:?}"
    );
    net.expect("IPaddr::198.51.100.9/32/veth0", "stop", 0);
    net.expect("IPaddr::192.0.2.50/26/veth0/192.0.2.60", "stop", 0);
    assert!(net.addr_lines(&net.a, "192.0.2.50").is_empty());
    assert!(net.addr_lines(&net.a, "198.51.100.9").is_empty());
}

#[test]
fn start_refused_when_another_host_answers_for_the_address() {
    let net = Net::new();
    ip(&[
        "-n",
        &net.b,
        "addr",
        "add",
        &format!("{VIP}/24"),
        "dev",
        "veth1",
    ]);
    let peer_mac = net.mac(&net.b, "veth1");
    let spec = format!("IPaddr2::{VIP}/24/veth0:0");
    let err = net.expect(&spec, "start", 1);
    assert!(
        err.contains(&format!(
            "{VIP} is already answered by {peer_mac} on veth0: another host holds it"
        )),
        "{err}"
    );
    assert!(net.addr_lines(&net.a, VIP).is_empty());
    net.expect(&spec, "status", 3);

    // Without probing (arp_probe = 0) the agent does as told.
    net.config("arp_probe = \"0s\"\narp_count = 1\n");
    net.expect(&spec, "start", 0);
    assert_eq!(net.addr_lines(&net.a, VIP).len(), 1);
    net.expect(&spec, "stop", 0);
}

#[test]
fn errors_name_the_interface_and_the_address() {
    let net = Net::new();
    let err = net.expect(&format!("IPaddr2::{VIP}/24/nosuch0"), "start", 1);
    assert!(err.contains("nosuch0") && err.contains(VIP), "{err}");
    // Stopping or asking about an address of a missing interface: it is not there.
    net.expect(&format!("IPaddr2::{VIP}/24/nosuch0"), "stop", 0);
    net.expect(&format!("IPaddr2::{VIP}/24/nosuch0"), "status", 3);

    let err = net.expect("IPaddr2::198.51.100.200", "start", 1);
    assert!(
        err.contains("no interface has an IPv4 subnet containing 198.51.100.200"),
        "{err}"
    );
    let err = net.expect("IPaddr2::198.51.100.200//veth0", "start", 1);
    assert!(err.contains("no prefix") && err.contains("veth0"), "{err}");

    // Argument errors are configuration errors (exit 2), caught before any I/O.
    let err = net.expect(&format!("IPaddr2::{VIP}/33"), "start", 2);
    assert!(err.contains("1..=32"), "{err}");
    let err = net.expect(&format!("IPaddr2::{VIP}::eth0"), "start", 2);
    assert!(err.contains("2 arguments"), "{err}");
}

/// Runs `f` on a thread inside network namespace `ns` (setns applies to the
/// calling thread only), with a tokio runtime of that thread: the agent's
/// netlink and packet sockets are opened there.
fn in_ns<T: Send + 'static>(
    ns: &str,
    f: impl FnOnce() -> std::pin::Pin<Box<dyn std::future::Future<Output = T>>> + Send + 'static,
) -> T {
    let path = format!("/run/netns/{ns}");
    std::thread::spawn(move || {
        let file = std::fs::File::open(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
        nix::sched::setns(&file, nix::sched::CloneFlags::CLONE_NEWNET)
            .unwrap_or_else(|e| panic!("setns {path}: {e}"));
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(f())
    })
    .join()
    .unwrap()
}

fn lan_options() -> hbd::agents::Options {
    hbd::agents::Options {
        arp_probe: Duration::from_millis(30),
        arp_count: 1,
        ..Default::default()
    }
}

/// Issue 15: probing begun while the holder is late (a pre-probe) does not
/// let a start take an address that another host still answers for.
#[test]
fn a_pre_probe_still_refuses_an_address_another_host_holds() {
    let net = Net::new();
    ip(&[
        "-n",
        &net.b,
        "addr",
        "add",
        &format!("{VIP}/24"),
        "dev",
        "veth1",
    ]);
    let peer_mac = net.mac(&net.b, "veth1");
    let err = in_ns(&net.a, || {
        Box::pin(async {
            let a = hbd::agents::ipaddr::parse_args(&["192.0.2.100/24/veth0"]).unwrap();
            let o = lan_options();
            assert!(
                hbd::agents::ipaddr::preprobe(&a, &o, Duration::from_secs(5))
                    .await
                    .unwrap()
            );
            // The holder answers every probe meanwhile.
            tokio::time::sleep(Duration::from_millis(100)).await;
            hbd::agents::ipaddr::start_released(&a, &o, false)
                .await
                .unwrap_err()
                .to_string()
        })
    });
    assert!(
        err.contains(&format!(
            "{VIP} is already answered by {peer_mac} on veth0: another host holds it"
        )),
        "{err}"
    );
    assert!(net.addr_lines(&net.a, VIP).is_empty());
}

/// Issue 15: the holder stops answering (its node died) while the pre-probe
/// runs: the start takes the address, judged on the latest probes only.
#[test]
fn a_pre_probe_takes_an_address_its_holder_gave_up_meanwhile() {
    let net = Net::new();
    ip(&[
        "-n",
        &net.b,
        "addr",
        "add",
        &format!("{VIP}/24"),
        "dev",
        "veth1",
    ]);
    let b = net.b.clone();
    in_ns(&net.a, move || {
        Box::pin(async move {
            let a = hbd::agents::ipaddr::parse_args(&["192.0.2.100/24/veth0"]).unwrap();
            let o = lan_options();
            assert!(
                hbd::agents::ipaddr::preprobe(&a, &o, Duration::from_secs(5))
                    .await
                    .unwrap()
            );
            // Answered for a while, then the holder lets go.
            tokio::time::sleep(Duration::from_millis(60)).await;
            ip(&["-n", &b, "addr", "del", "192.0.2.100/24", "dev", "veth1"]);
            tokio::time::sleep(Duration::from_millis(60)).await;
            hbd::agents::ipaddr::start_released(&a, &o, false)
                .await
                .unwrap();
        })
    });
    assert_eq!(net.addr_lines(&net.a, VIP).len(), 1);
}

/// Issue 15: a start told that the previous holder released the address
/// does not probe (a planned switchover does not wait): here another host
/// still answers, and the start does not notice, which shows no probe ran.
#[test]
fn a_released_address_is_added_without_a_probe() {
    let net = Net::new();
    ip(&[
        "-n",
        &net.b,
        "addr",
        "add",
        &format!("{VIP}/24"),
        "dev",
        "veth1",
    ]);
    in_ns(&net.a, || {
        Box::pin(async {
            let a = hbd::agents::ipaddr::parse_args(&["192.0.2.100/24/veth0"]).unwrap();
            let o = lan_options();
            hbd::agents::ipaddr::start_released(&a, &o, true)
                .await
                .unwrap();
            // Without the release the same start is refused.
            hbd::agents::ipaddr::stop(&a, &o).await.unwrap();
            assert!(hbd::agents::ipaddr::start_released(&a, &o, false)
                .await
                .is_err());
        })
    });
}
