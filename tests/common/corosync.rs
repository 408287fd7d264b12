//! Corosync in the netns lab: each node runs its own corosync 3 (knet) in
//! its own network namespace (Corosync's IPC is per network namespace) and
//! in a mount namespace of its own with a private /run (its pid file is
//! /run/corosync.pid on every node); its state dir and log are the node's.
//! Optionally corosync-qdevice beside it and corosync-qnetd on the client
//! host. Everything is killed by pid when the lab is dropped.

use super::*;

/// corosync.conf totem settings for the lab.
#[derive(Clone, Copy)]
pub struct Totem {
    pub token_ms: u32,
}

pub struct CorosyncLab {
    pub lab: Lab,
    procs: Vec<Option<Child>>,
    pub qnetd: Option<Child>,
    pub totem: Totem,
    pub qdevice: bool,
}

impl CorosyncLab {
    /// A lab of `nodes` on one net, with corosync configured (not started).
    /// `qdevice`: a quorum device (corosync-qnetd on the client host,
    /// 192.0.2.100) and no `two_node`.
    pub fn new(nodes: usize, totem: Totem, qdevice: bool) -> CorosyncLab {
        let lab = Lab::new(nodes, 1);
        let c = CorosyncLab {
            procs: (0..nodes).map(|_| None).collect(),
            lab,
            qnetd: None,
            totem,
            qdevice,
        };
        for i in 1..=nodes {
            fs::create_dir_all(c.cs_dir(i).join("state")).unwrap();
            c.lab.write(i, "corosync.conf", &c.conf(i));
        }
        c
    }

    pub fn cs_dir(&self, i: usize) -> PathBuf {
        self.lab.node_dir(i).join("corosync")
    }

    /// Node i's corosync.conf.
    pub fn conf(&self, i: usize) -> String {
        conf_text(
            i,
            self.lab.nodes,
            1,
            self.totem.token_ms,
            self.qdevice.then_some("192.0.2.100"),
            &self.cs_dir(i),
        )
    }

    /// Starts corosync (and corosync-qdevice with a quorum device) on node i.
    pub fn start_corosync(&mut self, i: usize) {
        let conf = self.lab.config_dir(i).join("corosync.conf");
        self.procs[i - 1] = Some(spawn_corosync(
            &self.lab,
            i,
            &conf,
            &self.cs_dir(i),
            self.qdevice,
        ));
    }

    /// corosync-qnetd on the client host (192.0.2.100), without TLS.
    pub fn start_qnetd(&mut self) {
        let dir = self.lab.dir.path().join("qnetd");
        self.qnetd = Some(spawn_qnetd(&self.lab, "c", &dir));
    }

    /// Power loss of node i's corosync (and qdevice): SIGKILL.
    pub fn kill_corosync(&mut self, i: usize) {
        self.kill_procs(i);
        // Wait until the node's corosync is gone (its IPC no longer answers).
        let start = Instant::now();
        while start.elapsed() < TIMEOUT
            && self.quorumtool(i, &["-s"]).status.code() != Some(1)
            && self.quorumtool(i, &["-s"]).status.code() != Some(2)
        {
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// SIGKILL to node i's corosync and qdevice (by the pids its shell
    /// wrote), then to the shell.
    fn kill_procs(&mut self, i: usize) {
        kill_corosync_pids(&self.cs_dir(i));
        if let Some(mut c) = self.procs[i - 1].take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// `corosync-quorumtool ARGS` in node i's namespace.
    pub fn quorumtool(&self, i: usize, args: &[&str]) -> std::process::Output {
        quorumtool(&self.lab, i, args)
    }

    /// The member names corosync-quorumtool lists on node i, and whether
    /// it is quorate.
    pub fn members(&self, i: usize) -> Option<(Vec<String>, bool)> {
        members(&self.lab, i)
    }

    /// Waits until every node of `nodes` has corosync up with exactly
    /// `nodes` as members.
    pub fn wait_members(&self, nodes: &[usize]) {
        let want: Vec<String> = nodes.iter().map(|k| format!("n{k}")).collect();
        for &i in nodes {
            self.lab
                .wait_for(&format!("corosync on n{i} lists {want:?}"), || {
                    self.members(i).is_some_and(|(m, _)| m == want)
                });
        }
    }

    /// The cluster.toml of the lab's nodes (Corosync backend).
    pub fn cluster_toml(&self, i: usize, stop_margin: &str) -> String {
        format!(
            "[membership]\nbackend = \"corosync\"\ncorosync_conf = \"{}\"\ncpg_group = \"hbdlab\"\n\
             stop_margin = \"{stop_margin}\"\n\n[resource_defaults]\nstart_timeout = \"20s\"\n\
             stop_timeout = \"20s\"\n",
            self.lab.config_dir(i).join("corosync.conf").display()
        )
    }
}

impl Drop for CorosyncLab {
    fn drop(&mut self) {
        for i in 1..=self.procs.len() {
            self.kill_procs(i);
        }
        if let Some(c) = self.qnetd.as_mut() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// corosync.conf of lab node i (of `nodes`): knet with `links` links (link
/// k on the lab's net k: ring0_addr 192.0.2.1N, ring1_addr 198.51.100.1N),
/// a quorum device at `qdevice` (corosync-qnetd: model net, ffsplit, no
/// TLS) or, without one, `two_node` for two nodes; its log and state dir
/// under `dir`. With two links knet sends on both at once (`link_mode:
/// active`, as heartbeat's `bcast eth0 eth1` does): in the default passive
/// mode the loss of the link in use costs the token before knet fails over
/// (token 1000 ms), and that membership change stalls CPG until the quorum
/// device answers.
pub fn conf_text(
    i: usize,
    nodes: usize,
    links: usize,
    token_ms: u32,
    qdevice: Option<&str>,
    dir: &Path,
) -> String {
    const NETS: [&str; 2] = ["192.0.2", "198.51.100"];
    assert!((1..=NETS.len()).contains(&links), "1 or 2 links");
    let nodelist: String = (1..=nodes)
        .map(|k| {
            let rings: String = (0..links)
                .map(|l| format!("    ring{l}_addr: {}.{}\n", NETS[l], 10 + k))
                .collect();
            format!("  node {{\n{rings}    name: n{k}\n    nodeid: {k}\n  }}\n")
        })
        .collect();
    let link_mode = if links > 1 {
        "  link_mode: active\n"
    } else {
        ""
    };
    let quorum = match qdevice {
        Some(host) => format!(
            "  device {{\n    model: net\n    votes: 1\n    net {{\n      host: {host}\n      \
             algorithm: ffsplit\n      tls: off\n    }}\n  }}\n"
        ),
        None if nodes == 2 => "  two_node: 1\n".to_string(),
        None => String::new(),
    };
    format!(
        "# node n{i} of the hbd test lab\n\
         totem {{\n  version: 2\n  cluster_name: hbdlab\n  transport: knet\n  \
         token: {token_ms}\n{link_mode}  crypto_cipher: none\n  crypto_hash: none\n}}\n\
         nodelist {{\n{nodelist}}}\n\
         quorum {{\n  provider: corosync_votequorum\n{quorum}}}\n\
         logging {{\n  to_logfile: yes\n  logfile: {dir}/corosync.log\n  to_syslog: no\n  \
         to_stderr: no\n  timestamp: on\n}}\n\
         system {{\n  state_dir: {dir}/state\n}}\n",
        dir = dir.display(),
    )
}

/// Starts corosync (and corosync-qdevice when `qdevice`) in lab node i's
/// namespace, in a mount namespace of its own with a private /run; their
/// pids go to DIR/pids, their output to DIR/out.log. The child is the
/// shell that waits for them.
pub fn spawn_corosync(lab: &Lab, i: usize, conf: &Path, dir: &Path, qdevice: bool) -> Child {
    fs::create_dir_all(dir.join("state")).unwrap();
    let pids = dir.join("pids");
    let mut script = format!(
        "set -e\nmount -t tmpfs hbd-lab-run /run\nmkdir -p /run/corosync-qdevice\n\
         corosync -f -c {} &\necho $! > {pids}\n",
        conf.display(),
        pids = pids.display()
    );
    if qdevice {
        script.push_str(&format!(
            "sleep 1\ncorosync-qdevice -f -d &\necho $! >> {}\n",
            pids.display()
        ));
    }
    script.push_str("wait\n");
    let log = fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("out.log"))
        .unwrap();
    let mut cmd = Command::new("ip");
    cmd.args(["netns", "exec", &lab.ns(&format!("n{i}"))])
        .args(["unshare", "--mount", "--propagation", "private"])
        .args(["sh", "-c", &script])
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log);
    die_with_test(&mut cmd);
    cmd.spawn().expect("start corosync")
}

/// corosync-qnetd (no TLS, debug log) in lab host `host`'s namespace, output to
/// DIR/out.log; the child is qnetd itself (exec'd).
pub fn spawn_qnetd(lab: &Lab, host: &str, dir: &Path) -> Child {
    fs::create_dir_all(dir).unwrap();
    let log = fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("out.log"))
        .unwrap();
    let mut cmd = Command::new("ip");
    cmd.args(["netns", "exec", &lab.ns(host)])
        .args(["unshare", "--mount", "--propagation", "private"])
        .args([
            "sh",
            "-c",
            "set -e\nmount -t tmpfs hbd-lab-run /run\nmkdir -p /run/corosync-qnetd\n\
             exec corosync-qnetd -f -d -s off",
        ])
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log);
    die_with_test(&mut cmd);
    cmd.spawn().expect("start corosync-qnetd")
}

/// SIGKILL to the corosync and qdevice that [`spawn_corosync`] started
/// with DIR (by the pids its shell wrote).
pub fn kill_corosync_pids(dir: &Path) {
    let pids = fs::read_to_string(dir.join("pids")).unwrap_or_default();
    for p in pids
        .split_whitespace()
        .filter_map(|p| p.parse::<i32>().ok())
    {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(p),
            nix::sys::signal::Signal::SIGKILL,
        );
    }
    let _ = fs::remove_file(dir.join("pids"));
}

/// `corosync-quorumtool ARGS` in lab node i's namespace.
pub fn quorumtool(lab: &Lab, i: usize, args: &[&str]) -> std::process::Output {
    let mut a = vec!["corosync-quorumtool"];
    a.extend_from_slice(args);
    lab.exec(&format!("n{i}"), &a)
}

/// The member names corosync-quorumtool lists on lab node i, and whether
/// it is quorate.
pub fn members(lab: &Lab, i: usize) -> Option<(Vec<String>, bool)> {
    let out = quorumtool(lab, i, &["-s"]);
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    if !text.contains("Membership information") {
        return None;
    }
    let quorate = text
        .lines()
        .any(|l| l.starts_with("Quorate:") && l.contains("Yes"));
    let mut names: Vec<String> = text
        .split("Membership information")
        .nth(1)?
        .lines()
        .filter_map(|l| {
            // "Nodeid Votes [Qdevice flags] Name [(local)]"
            let f: Vec<&str> = l.split_whitespace().filter(|w| *w != "(local)").collect();
            (f.len() >= 3 && f[0].parse::<u32>().is_ok()).then(|| f[f.len() - 1].to_string())
        })
        .filter(|n| n != "Qdevice")
        .collect();
    names.sort();
    Some((names, quorate))
}
