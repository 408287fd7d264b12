//! The partition campaign of issue 13: seed 002's shared-disk stack (VIP →
//! drbddisk → ext4 → an app that fsyncs every record before it answers)
//! on `scripts/lab up NAME 3 2`, a fault injected with timing drawn from a
//! seed, the links healed, and what happened measured:
//!
//! - a client in the client namespace writes numbered records through the
//!   VIP; a record counts as acknowledged only when the app answered 200,
//!   which it does after `fsync` (the answer names the node that wrote it);
//! - a sampler polls every ~100 ms the disk role of n1 and n2 (the device's
//!   control socket) and whether the VIP is configured on their eth0, and
//!   keeps the longest stretch with two Primaries and with the VIP on both;
//! - after healing and settling: a split brain is resolved by ONE `hbctl
//!   split-brain resolve` (the node holding the group survives), every
//!   acknowledged record must be in the file read through the final
//!   holder's mount, and no group may be stop-failed.
//!
//! Layout of the lab: n1 and n2 are the cluster, n3 the witness namespace
//! (`hbd --witness --node n3`, protected runs only), c the client (and the
//! ping node, 192.0.2.100). Net 0 (eth0, 192.0.2.0/24) is the client side,
//! net 1 (eth1, 198.51.100.0/24) the crossover; heartbeat goes over both
//! (`bcast eth0 eth1`), replication over eth1.
//!
//! On Corosync ([`Setup::Corosync`], issue 18) n1 and n2 run corosync with
//! two knet links (ring0 on eth0, ring1 on eth1: heartbeat's `bcast eth0
//! eth1`) and corosync-qdevice; n3 runs corosync-qnetd instead of the
//! witness. corosync-qdevice takes one qnetd address: n3's eth0
//! (192.0.2.13), so a crossover cut (eth1) leaves both the membership
//! (link 0) and the third vote untouched, while a cut of a node's eth0
//! costs it the device's vote but not the membership (link 1).
//!
//! A node with no process left in its namespace is powered off (a crash,
//! or fenced): its disk is not Primary and an address still configured on
//! its interface does not count as "the VIP on both" (its links are cut, as
//! a dead machine's are silent). Restarting it is a reboot: the VIP is
//! removed from its interface first.
//!
//! Cleanup: everything the lab holds (processes in its namespaces, the
//! devices' loop devices, the namespaces) goes in `Drop`, also after a
//! panic; the lab is registered with `--owner` so a killed test run is
//! cleaned by the next one.
#![allow(dead_code)]

use super::corosync;
use super::disk::*;
use super::scenario::{curl, kill_netns, netns_pids, netns_pids_named, Reaper};
use super::*;
use hbd::disk::ctl::DiskRequest;
use hbd::disk::state::{ConnState, DiskState, Role};
use hbd::rng::SplitMix64;
use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};

pub const VIP: &str = "192.0.2.50";
pub const APP_PORT: u16 = 8080;
/// The ping node of protected runs: the client namespace.
pub const PING_NODE: &str = "192.0.2.100";
/// The replicated disk: small, so that the initial sync and mkfs are quick.
pub const DISK_SIZE: u64 = 64 * MIB;
/// The nft table the campaign adds inside a node's namespace.
const NFT_TABLE: &str = "hbdcampaign";
/// Setup steps (MariaDB-free, but the machine may be busy).
const SETUP: Duration = Duration::from_secs(120);
/// How long the cluster gets to settle after the heal.
const SETTLE: Duration = Duration::from_secs(45);

/// The app: `POST /rows?id=N` appends "N NODE" to DIR/records and fsyncs
/// before answering 200 with the node's name; `GET /rows` lists the ids.
/// It learns its node by which of the nodes' eth0 addresses it can bind.
const APP: &str = r#"import os, socket, sys
from http.server import BaseHTTPRequestHandler, HTTPServer
from urllib.parse import parse_qs, urlsplit

DIR, PORT = sys.argv[1], int(sys.argv[2])


def node():
    for name, addr in (("n1", "192.0.2.11"), ("n2", "192.0.2.12")):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            s.bind((addr, 0))
            return name
        except OSError:
            pass
        finally:
            s.close()
    return "unknown"


NODE = node()
PATH = os.path.join(DIR, "records")
FD = os.open(PATH, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
os.fsync(FD)


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def reply(self, code, body):
        data = body.encode()
        self.send_response(code)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self):
        url = urlsplit(self.path)
        if url.path != "/rows":
            return self.reply(404, "")
        try:
            n = int(parse_qs(url.query)["id"][0])
        except (KeyError, ValueError):
            return self.reply(400, "")
        try:
            os.write(FD, ("%d %s\n" % (n, NODE)).encode())
            os.fsync(FD)
        except OSError as e:
            return self.reply(503, str(e))
        self.reply(200, NODE)

    def do_GET(self):
        if self.path == "/health":
            return self.reply(200, NODE)
        if self.path == "/rows":
            with open(PATH) as f:
                ids = sorted({int(l.split()[0]) for l in f if l.strip()})
            return self.reply(200, "[" + ",".join(map(str, ids)) + "]")
        self.reply(404, "")


HTTPServer(("0.0.0.0", PORT), Handler).serve_forever()
"#;

/// The fault schedules of the campaign (issue 13, "Proof").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scenario {
    /// eth1 of both nodes cut: heartbeat goes on over eth0, replication stops.
    Crossover,
    /// eth0 of the holder cut: the client (and the ping node) lose it.
    ClientCut,
    /// Both links of n1 (the holder) cut.
    PartitionN1,
    /// Both links of n2 cut.
    PartitionN2,
    /// Both links of the holder cut and restored every 1–2 s for ~10 s.
    Flapping,
    /// UDP 694 dropped inside the holder's namespace: heartbeat lost,
    /// replication (TCP) alive.
    HeartbeatOnly,
    /// Replication (TCP 7788) dropped inside the holder's namespace, the
    /// client writes on, then every process of the holder is killed.
    CrashAfterReplCut,
    /// The witness dies, then both links of the holder are cut.
    WitnessLoss,
}

impl Scenario {
    pub const ALL: [Scenario; 8] = [
        Scenario::Crossover,
        Scenario::ClientCut,
        Scenario::PartitionN1,
        Scenario::PartitionN2,
        Scenario::Flapping,
        Scenario::HeartbeatOnly,
        Scenario::CrashAfterReplCut,
        Scenario::WitnessLoss,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Scenario::Crossover => "crossover",
            Scenario::ClientCut => "client_cut",
            Scenario::PartitionN1 => "partition_n1",
            Scenario::PartitionN2 => "partition_n2",
            Scenario::Flapping => "flapping",
            Scenario::HeartbeatOnly => "heartbeat_only",
            Scenario::CrashAfterReplCut => "crash_after_repl_cut",
            Scenario::WitnessLoss => "witness_loss",
        }
    }

    pub fn parse(s: &str) -> Option<Scenario> {
        Scenario::ALL.into_iter().find(|x| x.name() == s)
    }
}

/// The configuration a run uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Setup {
    /// Heartbeat's membership, no protections (issue 13's "before").
    Unprotected,
    /// The recommended configuration: witness (`hbd --witness` in n3), ping
    /// tiebreaker, peer outdating, lab fencing.
    Protected,
    /// The protected configuration's disk protections (fencing
    /// resource-only, the built-in outdater over CPG, ping tiebreaker, lab
    /// fencing) with membership and quorum from Corosync (issue 18):
    /// corosync with two knet links (eth0 and eth1) on n1 and n2,
    /// corosync-qdevice beside it, corosync-qnetd in n3 (192.0.2.13, on
    /// eth0's net only) as the third vote.
    Corosync,
}

impl Setup {
    pub const ALL: [Setup; 3] = [Setup::Unprotected, Setup::Protected, Setup::Corosync];

    /// Whether the invariants of the protected configuration apply.
    pub fn protected(self) -> bool {
        self != Setup::Unprotected
    }

    /// Its name on result lines (`protect=`) and in HBD_CAMPAIGN_PROTECT.
    pub fn name(self) -> &'static str {
        match self {
            Setup::Unprotected => "off",
            Setup::Protected => "on",
            Setup::Corosync => "corosync",
        }
    }
}

/// corosync's totem token in the Corosync configuration: with the 1 s stop
/// margin a lost node is dead after 2 s, as with heartbeat's deadtime 2.
pub const COROSYNC_TOKEN_MS: u32 = 1000;
/// The qnetd host: n3's eth0 address (corosync-qdevice takes one address).
pub const QNETD: &str = "192.0.2.13";
/// The UDP ports of corosync's knet links: 5405 for link 0 (eth0), 5406
/// for link 1 (eth1) — corosync 3.1 gives link k port 5405 + k unless
/// `totem.interface.mcastport` says otherwise (`ss -uapn` in a lab node).
pub const KNET_PORTS: &[u16] = &[5405, 5406];

/// One acknowledged record: its id, the node whose app wrote it, when.
#[derive(Clone, Debug)]
pub struct Ack {
    pub id: u64,
    pub node: String,
    pub at: Instant,
}

/// The client: `POST /rows?id=N` through the VIP, ids 1, 2, 3... each
/// tried once, until stopped.
pub struct Writer {
    stop: Arc<AtomicBool>,
    acks: Arc<Mutex<Vec<Ack>>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Writer {
    pub fn start(ns: String) -> Writer {
        let stop = Arc::new(AtomicBool::new(false));
        let acks = Arc::new(Mutex::new(Vec::new()));
        let (s, a) = (stop.clone(), acks.clone());
        let url = format!("http://{VIP}:{APP_PORT}/rows");
        let thread = std::thread::spawn(move || {
            let mut id = 0u64;
            while !s.load(Ordering::SeqCst) {
                id += 1;
                match curl(&ns, &["-X", "POST", &format!("{url}?id={id}")], 3) {
                    Some((200, body)) => a.lock().unwrap().push(Ack {
                        id,
                        node: body.trim().to_string(),
                        at: Instant::now(),
                    }),
                    _ => std::thread::sleep(Duration::from_millis(50)),
                }
            }
        });
        Writer {
            stop,
            acks,
            thread: Some(thread),
        }
    }

    pub fn acked(&self) -> usize {
        self.acks.lock().unwrap().len()
    }

    /// The acknowledgements after `t`.
    pub fn acked_since(&self, t: Instant) -> usize {
        self.acks
            .lock()
            .unwrap()
            .iter()
            .filter(|a| a.at > t)
            .count()
    }

    /// Waits up to `timeout` until `n` more records than now are acknowledged.
    pub fn wait_more(&self, n: usize, timeout: Duration) -> bool {
        let want = self.acked() + n;
        let start = Instant::now();
        while start.elapsed() < timeout {
            if self.acked() >= want {
                return true;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        false
    }

    /// Stops the client; the acknowledged records in order.
    pub fn finish(mut self) -> Vec<Ack> {
        self.halt();
        std::mem::take(&mut self.acks.lock().unwrap())
    }

    fn halt(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        self.halt();
    }
}

/// What the sampler saw of n1 and n2 at one instant.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Sample {
    pub primary: [bool; 2],
    pub vip: [bool; 2],
}

/// The sampler's findings: longest and total stretches with two Primaries
/// and with the VIP on both nodes, and a timeline of every change.
#[derive(Clone, Debug, Default)]
pub struct Watched {
    pub samples: u64,
    pub dual_primary_samples: u64,
    pub dual_primary_longest: Duration,
    pub vip_both_samples: u64,
    pub vip_both_longest: Duration,
    pub timeline: Vec<String>,
}

/// Polls the nodes every ~100 ms on a thread of its own.
pub struct Sampler {
    stop: Arc<AtomicBool>,
    state: Arc<Mutex<Watched>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

/// What the sampler needs to look at one node.
#[derive(Clone)]
struct Probe {
    ns: String,
    run_dir: PathBuf,
}

impl Probe {
    /// Whether the node runs anything (else it is off): a process in its
    /// namespace other than the lab's own short-lived tools (`ip`, `nft`
    /// that the test or a fence agent run there).
    fn powered(&self) -> bool {
        netns_pids(&self.ns).into_iter().any(|p| {
            fs::read_to_string(format!("/proc/{p}/comm"))
                .is_ok_and(|c| !matches!(c.trim(), "ip" | "nft"))
        })
    }

    /// The disk's role: Some(true) Primary, Some(false) not (or not up),
    /// None when the device did not answer in time (keep the last value).
    fn primary(&self) -> Option<bool> {
        use hbd::disk::client::ClientError;
        match hbd::disk::client::status(&self.run_dir, RES, Duration::from_millis(400)) {
            Ok(s) => Some(s.role == Role::Primary),
            Err(ClientError::NotUp { .. }) => Some(false),
            Err(_) => None,
        }
    }

    fn vip(&self) -> bool {
        let out = Command::new("ip")
            .args(["-n", &self.ns, "-o", "addr", "show", "dev", "eth0"])
            .output();
        out.is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains(&format!(" {VIP}/")))
    }
}

impl Sampler {
    pub fn start(lab: &Lab, t0: Instant) -> Sampler {
        let probes: Vec<Probe> = (1..=2)
            .map(|i| Probe {
                ns: lab.ns(&format!("n{i}")),
                run_dir: lab.run_dir(i),
            })
            .collect();
        let stop = Arc::new(AtomicBool::new(false));
        let state = Arc::new(Mutex::new(Watched::default()));
        let (s, w) = (stop.clone(), state.clone());
        let thread = std::thread::spawn(move || {
            let mut last = Sample::default();
            let mut dual_since: Option<Instant> = None;
            let mut vip_since: Option<Instant> = None;
            while !s.load(Ordering::SeqCst) {
                let started = Instant::now();
                let mut now = Sample::default();
                for (k, p) in probes.iter().enumerate() {
                    now.primary[k] = p.primary().unwrap_or(last.primary[k]);
                    now.vip[k] = p.vip() && p.powered();
                }
                // n1 and n2 are read one after the other, tens of ms apart:
                // a clean handover n1 -> n2 inside that gap reads as "both"
                // (n1 before it let go, n2 after it took over). Both
                // counts only when n1 still holds it after n2 was seen
                // holding it: n1 at t1, n2 at t2 > t1, n1 again at t3 > t2
                // (a handover n2 -> n1 cannot show n1 at t1 either).
                if now.primary == [true, true] {
                    now.primary[0] = probes[0].primary().unwrap_or(true);
                }
                if now.vip == [true, true] {
                    now.vip[0] = probes[0].vip() && probes[0].powered();
                }
                let at = Instant::now();
                let mut guard = w.lock().unwrap();
                let st = &mut *guard;
                st.samples += 1;
                if now != last {
                    let t = at - t0;
                    let line = format!(
                        "{:>7.1}s primary n1={} n2={} vip n1={} n2={}",
                        t.as_secs_f64(),
                        now.primary[0],
                        now.primary[1],
                        now.vip[0],
                        now.vip[1]
                    );
                    st.timeline.push(line);
                }
                track(
                    now.primary[0] && now.primary[1],
                    at,
                    &mut dual_since,
                    &mut st.dual_primary_samples,
                    &mut st.dual_primary_longest,
                );
                track(
                    now.vip[0] && now.vip[1],
                    at,
                    &mut vip_since,
                    &mut st.vip_both_samples,
                    &mut st.vip_both_longest,
                );
                drop(guard);
                last = now;
                let spent = started.elapsed();
                if spent < Duration::from_millis(100) {
                    std::thread::sleep(Duration::from_millis(100) - spent);
                }
            }
        });
        Sampler {
            stop,
            state,
            thread: Some(thread),
        }
    }

    /// Adds a line to the timeline (the scenario's steps).
    pub fn note(&self, t0: Instant, what: &str) {
        let t = t0.elapsed().as_secs_f64();
        self.state
            .lock()
            .unwrap()
            .timeline
            .push(format!("{t:>7.1}s -- {what}"));
    }

    pub fn finish(mut self) -> Watched {
        self.halt();
        self.state.lock().unwrap().clone()
    }

    fn halt(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Sampler {
    fn drop(&mut self) {
        self.halt();
    }
}

/// One condition's stretch: starts at the first sample that shows it, ends
/// at the first that does not (so a single sample counts ~100 ms).
fn track(
    on: bool,
    at: Instant,
    since: &mut Option<Instant>,
    samples: &mut u64,
    longest: &mut Duration,
) {
    if on {
        *samples += 1;
        let start = *since.get_or_insert(at);
        // Counted while it lasts, so a run that ends inside it still shows it.
        *longest = (*longest).max(at - start + Duration::from_millis(100));
    } else {
        *since = None;
    }
}

/// The lab and its cluster. Field order is drop order: the reaper kills
/// every process of the lab's namespaces first, then the devices' loop
/// devices are detached, then the lab is removed.
pub struct Cluster {
    reaper: Reaper,
    /// `hbd --witness` (Protected) or corosync-qnetd (Corosync) in n3.
    witness: Option<Child>,
    /// The shells of n1's and n2's corosync and corosync-qdevice.
    corosync: [Option<Child>; 2],
    pub d: DiskLab,
    pub setup: Setup,
    pub protect: bool,
    pub t0: Instant,
    pub mnt: PathBuf,
}

impl Cluster {
    /// The lab, both devices synced, ext4 made, the configuration written
    /// (protected: the recommended configuration of issue 13; Corosync: its
    /// disk protections with Corosync's membership).
    pub fn build(setup: Setup) -> Cluster {
        let protect = setup.protected();
        let t0 = Instant::now();
        let lab = Lab::new(3, 2);
        let reaper = Reaper(["n1", "n2", "n3", "c"].iter().map(|h| lab.ns(h)).collect());
        let mut hosts = String::new();
        for i in 1..=2 {
            hosts.push_str(&format!(
                "  on n{i} {{ device {dev}; disk {disk}; address 198.51.100.{a}:7788; meta-disk internal; }}\n",
                dev = lab.node_dir(i).join("drbd0").display(),
                disk = lab.node_dir(i).join("backing.img").display(),
                a = 10 + i
            ));
        }
        let fencing = if protect {
            "  disk { fencing resource-only; }\n  handlers { fence-peer \"/usr/lib/heartbeat/drbd-peer-outdater -t 5\"; }\n"
        } else {
            ""
        };
        let conf = format!(
            "resource {RES} {{\n  protocol C;\n  syncer {{ rate 200M; }}\n{fencing}{hosts}}}\n"
        );
        for i in 1..=3 {
            lab.write(i, "drbd.conf", &conf);
        }
        for i in 1..=2 {
            let f = fs::File::create(lab.node_dir(i).join("backing.img")).unwrap();
            f.set_len(DISK_SIZE).unwrap();
        }
        let mnt = lab.dir.path().join("mnt");
        fs::create_dir_all(&mnt).unwrap();
        let app = lab.dir.path().join("campaign_app.py");
        fs::write(&app, APP).unwrap();
        let mut c = Cluster {
            reaper,
            witness: None,
            corosync: [None, None],
            d: DiskLab {
                lab,
                size: DISK_SIZE,
            },
            setup,
            protect,
            t0,
            mnt,
        };
        c.write_config(&app);
        for i in 1..=2 {
            let out = c.d.hbctl_disk(i, &["create-md", RES]);
            assert!(out.status.success(), "create-md: {out:?}");
        }
        c.d.start(1);
        c.d.start(2);
        c.d.wait_connected();
        c.d.ok(1, DiskRequest::Primary { force: true });
        c.d.wait_in_sync();
        mkfs_ext4(&c.d.device(1));
        c.d.ok(1, DiskRequest::Secondary);
        c
    }

    fn write_config(&self, app: &Path) {
        let lab = &self.d.lab;
        let corosync = self.setup == Setup::Corosync;
        // On Corosync, corosync's links carry the membership: no media.
        let media = if corosync { "" } else { "bcast eth0 eth1" };
        let mut ha = ha_cf(2, media, "200ms", "2");
        let mut cluster = String::new();
        if corosync {
            ha = ha.replace("udpport 694\n", "");
        }
        if self.protect {
            ha.push_str(&format!(
                "ping {PING_NODE}\n\
                 respawn hacluster /usr/lib/heartbeat/ipfail\n\
                 respawn hacluster /usr/lib/heartbeat/dopd\n\
                 stonith_host * fence_hbd_lab lab={}\n",
                lab.name
            ));
            if !corosync {
                cluster.push_str("[quorum]\nwitness = \"n3\"\n");
            }
        }
        let m = self.mnt.display();
        for i in 1..=3 {
            // Each node's Filesystem names its own device link (two
            // machines' /dev/drbd0): one shared path would let a node mount
            // the other's loop device.
            let dev = lab.node_dir(i.min(2)).join("drbd0");
            let haresources = format!(
                "n1 IPaddr2::{VIP}/24/eth0 drbddisk::{RES} Filesystem::{dev}::{m}::ext4 \\\n   daemon::{m}/app.pid::/usr/bin/python3::{app}::{m}::{APP_PORT}\n",
                dev = dev.display(),
                app = app.display(),
            );
            lab.write(i, "ha.cf", &ha);
            lab.write(i, "authkeys", KEY);
            lab.write(i, "haresources", &haresources);
            if corosync && i <= 2 {
                lab.write(i, "corosync.conf", &self.corosync_conf(i));
                let toml = format!(
                    "[membership]\nbackend = \"corosync\"\ncorosync_conf = \"{}\"\n\
                     cpg_group = \"hbdcampaign\"\nstop_margin = \"1s\"\n{cluster}",
                    lab.config_dir(i).join("corosync.conf").display()
                );
                lab.write(i, "cluster.toml", &toml);
            } else {
                lab.write(i, "cluster.toml", &cluster);
            }
        }
    }

    /// Node i's corosync.conf (Corosync): two knet links, the quorum
    /// device at n3's eth0 address.
    fn corosync_conf(&self, i: usize) -> String {
        corosync::conf_text(i, 2, 2, COROSYNC_TOKEN_MS, Some(QNETD), &self.cs_dir(i))
    }

    /// Node i's corosync directory: its log, state dir, pids.
    pub fn cs_dir(&self, i: usize) -> PathBuf {
        self.d.lab.node_dir(i).join("corosync")
    }

    /// Starts corosync and corosync-qdevice on node i (Corosync).
    fn start_corosync(&mut self, i: usize) {
        self.stop_corosync(i);
        let conf = self.d.lab.config_dir(i).join("corosync.conf");
        self.corosync[i - 1] = Some(corosync::spawn_corosync(
            &self.d.lab,
            i,
            &conf,
            &self.cs_dir(i),
            true,
        ));
    }

    /// SIGKILL to node i's corosync and qdevice (by pid), the shell reaped.
    fn stop_corosync(&mut self, i: usize) {
        corosync::kill_corosync_pids(&self.cs_dir(i));
        if let Some(mut c) = self.corosync[i - 1].take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    fn corosync_alive(&self, i: usize) -> bool {
        !netns_pids_named(&self.d.lab.ns(&format!("n{i}")), "corosync").is_empty()
    }

    pub fn lab(&self) -> &Lab {
        &self.d.lab
    }

    /// Starts the witness (protected) and both nodes' hbd; waits until the
    /// group runs on n1 and the client is served through the VIP.
    pub fn start(&mut self) {
        if self.protect {
            self.start_witness();
        }
        if self.setup == Setup::Corosync {
            for i in 1..=2 {
                self.start_corosync(i);
            }
            self.wait("corosync on n1 and n2 lists both, quorate", SETUP, |c| {
                (1..=2).all(|i| {
                    corosync::members(&c.d.lab, i).is_some_and(|(m, q)| q && m == ["n1", "n2"])
                })
            });
        }
        self.d.lab.start(1);
        self.d.lab.start(2);
        // A daemon that refuses the configuration exits at once (2): say so
        // then rather than after the whole wait.
        let start = Instant::now();
        while !self.started_on(1) {
            for i in 1..=2 {
                if let Some(status) = self.d.lab.exited(i) {
                    panic!(
                        "hbd n{i} exited at start ({status}):\n{}",
                        tail(&self.d.lab.log(i), 30)
                    );
                }
            }
            if self.protect && !self.witness_alive() {
                panic!(
                    "the witness (hbd --witness or corosync-qnetd) exited at start:\n{}",
                    self.logs(30)
                );
            }
            if start.elapsed() > SETUP {
                panic!(
                    "timed out after {SETUP:?} waiting for the group to start on n1\n{}",
                    self.logs(150)
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// `hbd --witness` in n3, or on Corosync corosync-qnetd there.
    pub fn start_witness(&mut self) {
        self.witness = Some(if self.setup == Setup::Corosync {
            corosync::spawn_qnetd(&self.d.lab, "n3", &self.qnetd_dir())
        } else {
            self.d.lab.spawn_witness(3, "n3")
        });
    }

    fn qnetd_dir(&self) -> PathBuf {
        self.d.lab.dir.path().join("qnetd")
    }

    pub fn witness_alive(&mut self) -> bool {
        self.witness
            .as_mut()
            .is_some_and(|c| c.try_wait().ok().flatten().is_none())
    }

    pub fn kill_witness(&mut self) {
        if let Some(mut c) = self.witness.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// The group's (owner, state) as node i reports it.
    pub fn group(&self, i: usize) -> Option<(String, String)> {
        let s = self.d.lab.status(i)?;
        let g = &s["groups"][0];
        Some((
            g["owner"].as_str().unwrap_or("").to_string(),
            g["state"].as_str()?.to_string(),
        ))
    }

    pub fn started_on(&self, i: usize) -> bool {
        self.group(i)
            .is_some_and(|(o, s)| o == format!("n{i}") && s == "started")
    }

    /// Waits up to `timeout` for `f`; on timeout panics with the logs.
    pub fn wait(&self, what: &str, timeout: Duration, mut f: impl FnMut(&Cluster) -> bool) {
        let start = Instant::now();
        while start.elapsed() < timeout {
            if f(self) {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!(
            "timed out after {timeout:?} waiting for: {what}\n{}",
            self.logs(150)
        );
    }

    /// The tails of every log (hbd of n1..n3, the devices of n1 and n2).
    pub fn logs(&self, lines: usize) -> String {
        let mut out = String::new();
        for i in 1..=3 {
            let _ = write!(
                out,
                "\n--- hbd n{i} ---\n{}",
                tail(&self.d.lab.log(i), lines)
            );
        }
        for i in 1..=2 {
            let _ = write!(out, "\n--- device n{i} ---\n{}", tail(&self.d.log(i), 40));
        }
        if self.setup == Setup::Corosync {
            for i in 1..=2 {
                let _ = write!(
                    out,
                    "\n--- corosync n{i} ---\n{}\n--- corosync/qdevice output n{i} ---\n{}",
                    tail(
                        &read_or_empty(&self.cs_dir(i).join("corosync.log")),
                        lines.min(60)
                    ),
                    tail(&read_or_empty(&self.cs_dir(i).join("out.log")), 20)
                );
            }
            let _ = write!(
                out,
                "\n--- corosync-qnetd n3 ---\n{}",
                tail(&read_or_empty(&self.qnetd_dir().join("out.log")), 20)
            );
        }
        out
    }

    /// The lines of every hbd log (and the devices') that tell what the
    /// protections did: quorum, witness, ping, fencing, outdating, split
    /// brain, refusals and failures.
    pub fn key_lines(&self, max: usize) -> String {
        const WORDS: [&str; 19] = [
            "quorum",
            "witness",
            "ping",
            "fence",
            "outdate",
            "Outdated",
            "split",
            "keeper",
            "refus",
            "failed",
            "dead",
            "reannounce",
            "tiebreak",
            "isolated",
            "built in",
            "ERROR",
            "group group=",
            "waiting",
            "grant",
        ];
        let mut out = String::new();
        let pick = |log: String| -> String {
            let lines: Vec<&str> = log
                .lines()
                .filter(|l| WORDS.iter().any(|w| l.contains(w)))
                .collect();
            lines[lines.len().saturating_sub(max)..].join("\n")
        };
        for i in 1..=3 {
            let _ = write!(
                out,
                "\n--- hbd n{i} (key lines) ---\n{}",
                pick(self.d.lab.log(i))
            );
        }
        for i in 1..=2 {
            let _ = write!(
                out,
                "\n--- device n{i} (key lines) ---\n{}",
                pick(self.d.log(i))
            );
        }
        if self.setup == Setup::Corosync {
            // Corosync's view: membership and quorum changes, links.
            const CS: [&str; 5] = ["Members", "QUORUM", "link:", "Quorate", "quorum"];
            for i in 1..=2 {
                let log = read_or_empty(&self.cs_dir(i).join("corosync.log"));
                let lines: Vec<&str> = log
                    .lines()
                    .filter(|l| CS.iter().any(|w| l.contains(w)))
                    .collect();
                let _ = write!(
                    out,
                    "\n--- corosync n{i} (key lines) ---\n{}",
                    lines[lines.len().saturating_sub(max / 2)..].join("\n")
                );
            }
        }
        out
    }

    /// Drops one kind of traffic inside node i's namespace with nft:
    /// `what` (udp, tcp) to or from `ports`: UDP 694 (heartbeat), the knet
    /// ports (corosync) or TCP 7788 (replication). [`Cluster::nft_clear`]
    /// restores it.
    pub fn nft_drop(&self, i: usize, what: &str, ports: &[u16]) {
        ensure_nft();
        let p = format!(
            "{{ {} }}",
            ports
                .iter()
                .map(|p| p.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        );
        let rules = format!(
            "table inet {NFT_TABLE} {{\n\
             chain in {{ type filter hook input priority 0; {what} dport {p} drop; {what} sport {p} drop; }}\n\
             chain out {{ type filter hook output priority 0; {what} dport {p} drop; {what} sport {p} drop; }}\n\
             }}\n",
        );
        let file = self.d.lab.dir.path().join(format!("nft-n{i}-{what}"));
        fs::write(&file, rules).unwrap();
        let out = self.d.lab.exec(
            &format!("n{i}"),
            &["nft", "-f", &file.display().to_string()],
        );
        assert!(out.status.success(), "nft in n{i}: {out:?}");
    }

    pub fn nft_clear(&self, i: usize) {
        if nft_path().is_some() {
            let _ = self.d.lab.exec(
                &format!("n{i}"),
                &["nft", "delete", "table", "inet", NFT_TABLE],
            );
        }
    }

    /// Cuts or restores both links of node i.
    pub fn links(&self, i: usize, up: bool) {
        for net in 0..2 {
            self.d.lab.link(&format!("n{i}"), net, up);
        }
    }

    /// Node i's hbd, if it runs.
    fn hbd_pid(&self, i: usize) -> Option<i32> {
        netns_pids_named(&self.d.lab.ns(&format!("n{i}")), "hbd")
            .into_iter()
            .next()
    }

    fn hbd_alive(&self, i: usize) -> bool {
        self.hbd_pid(i).is_some()
    }

    fn device_alive(&self, i: usize) -> bool {
        self.d.pid(i).is_some_and(alive)
    }

    /// The node crashes: every process of its namespace dies, its links go
    /// silent (a dead machine answers nothing, not even ARP for the VIP it
    /// had), its loop device is detached.
    pub fn crash(&mut self, i: usize) {
        kill_netns(&self.d.lab.ns(&format!("n{i}")));
        self.d.lab.kill(i);
        self.links(i, false);
        self.detach_loop(i);
    }

    fn detach_loop(&self, i: usize) {
        let run = self.d.lab.run_dir(i);
        let record = hbd::disk::ctl::loop_record_path(&run, RES);
        if let Ok(dev) = fs::read_to_string(record) {
            detach_loop(Path::new(dev.trim()), &run);
        }
    }

    /// A reboot of a node that died (crash or fence): what is left of it
    /// is killed, the VIP is no longer on its interface, its links come
    /// back, its device and hbd start again.
    pub fn reboot(&mut self, i: usize) {
        // A machine is powered on after its fence agent reported it off;
        // in the lab the agent's kill loop may still be running and would
        // kill what the reboot starts.
        self.wait_fence_agents();
        kill_netns(&self.d.lab.ns(&format!("n{i}")));
        self.d.lab.kill(i);
        self.detach_loop(i);
        self.links(i, false);
        let _ = self.d.lab.exec(
            &format!("n{i}"),
            &["ip", "addr", "del", &format!("{VIP}/24"), "dev", "eth0"],
        );
        self.nft_clear(i);
        self.links(i, true);
        if self.setup == Setup::Corosync {
            self.start_corosync(i);
        }
        self.d.start(i);
        self.d.lab.start(i);
    }

    /// With HBD_CAMPAIGN_LOGS=DIR: every log of the lab (hbd, devices,
    /// corosync, qdevice, qnetd) copied to DIR/SCENARIO-SETUP-SEED/ before
    /// the lab goes.
    pub fn keep_logs(&self, scenario: Scenario, seed: u64) {
        let Some(to) = std::env::var_os("HBD_CAMPAIGN_LOGS") else {
            return;
        };
        let to =
            PathBuf::from(to).join(format!("{}-{}-{seed}", scenario.name(), self.setup.name()));
        fn copy_logs(from: &Path, to: &Path) {
            for e in fs::read_dir(from).into_iter().flatten().flatten() {
                let p = e.path();
                if p.is_dir() {
                    copy_logs(&p, &to.join(e.file_name()));
                } else if p.extension().is_some_and(|x| x == "log") {
                    let _ = fs::create_dir_all(to);
                    let _ = fs::copy(&p, to.join(e.file_name()));
                }
            }
        }
        copy_logs(self.d.lab.dir.path(), &to);
    }

    /// Waits (up to [`SETTLE`]) until no fence agent runs in the lab.
    fn wait_fence_agents(&self) {
        let start = Instant::now();
        let running = || {
            (1..=3).any(|k| {
                !netns_pids_named(&self.d.lab.ns(&format!("n{k}")), "fence_hbd_lab").is_empty()
            })
        };
        while running() {
            assert!(
                start.elapsed() < SETTLE,
                "a fence agent still runs after {SETTLE:?}\n{}",
                self.logs(40)
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Every link up, every nft rule gone, every dead node rebooted, the
    /// witness back.
    pub fn heal(&mut self) {
        // A dead node is rebooted first: its links must not come back
        // while its interface still has the VIP.
        for i in 1..=2 {
            let corosync_dead = self.setup == Setup::Corosync && !self.corosync_alive(i);
            if !self.hbd_alive(i) || !self.device_alive(i) || corosync_dead {
                self.reboot(i);
            }
        }
        for i in 1..=2 {
            self.links(i, true);
            self.nft_clear(i);
        }
        if self.protect && !self.witness_alive() {
            self.kill_witness();
            self.start_witness();
        }
    }

    /// The node that holds the group: it says so, and its disk is Primary.
    pub fn holders(&self) -> Vec<usize> {
        (1..=2)
            .filter(|&i| {
                self.started_on(i)
                    && self
                        .d
                        .try_status(i)
                        .is_some_and(|s| s.role == Role::Primary)
            })
            .collect()
    }

    /// Whether any node reports the group stop-failed.
    pub fn stop_failed(&self) -> bool {
        (1..=2).any(|i| self.group(i).is_some_and(|(_, s)| s == "stop-failed"))
    }

    /// Waits (up to [`SETTLE`]) until one node holds the group and the
    /// disks are either back in sync or in a detected split brain.
    pub fn settle(&self) -> Settled {
        let start = Instant::now();
        let mut last = String::new();
        while start.elapsed() < SETTLE {
            let holders = self.holders();
            let s: Vec<_> = (1..=2).map(|i| self.d.try_status(i)).collect();
            let split = s.iter().flatten().any(|s| s.split_brain.is_some());
            let in_sync = s.iter().all(|s| {
                s.as_ref().is_some_and(|s| {
                    s.connection == ConnState::Connected
                        && s.disk == DiskState::UpToDate
                        && s.peer_disk == DiskState::UpToDate
                })
            });
            let other_primary = s
                .iter()
                .flatten()
                .filter(|s| s.role == Role::Primary)
                .count();
            last = format!(
                "holders={holders:?} split_brain={split} in_sync={in_sync} primaries={other_primary} groups={:?} disks={:?}",
                (1..=2).map(|i| self.group(i)).collect::<Vec<_>>(),
                s.iter()
                    .map(|s| s.as_ref().map(|s| format!(
                        "{}/{} {}/{} {}",
                        s.role, s.peer_role, s.disk, s.peer_disk, s.connection
                    )))
                    .collect::<Vec<_>>()
            );
            if holders.len() == 1 && other_primary == 1 && (split || in_sync) {
                return Settled {
                    holder: Some(holders[0]),
                    split_brain: split,
                    state: last,
                };
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        Settled {
            holder: self.holders().first().copied(),
            split_brain: false,
            state: format!("not settled after {SETTLE:?}: {last}"),
        }
    }

    /// `hbctl split-brain resolve r0 --survivor nH`, run once on the
    /// holder; (exit ok, output).
    pub fn resolve_split_brain(&self, survivor: usize) -> (bool, String) {
        let lab = &self.d.lab;
        let out = Command::new(HBCTL)
            .arg("--run-dir")
            .arg(lab.run_dir(survivor))
            .arg("split-brain")
            .arg("--config")
            .arg(lab.config_dir(survivor))
            .args(["--node", &format!("n{survivor}")])
            .args(["resolve", RES, "--survivor", &format!("n{survivor}")])
            .args(["--timeout", "60"])
            .output()
            .expect("run hbctl split-brain");
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.success(), text)
    }

    /// Waits until both disks are Connected and UpToDate.
    pub fn wait_in_sync(&self, timeout: Duration) -> bool {
        let start = Instant::now();
        while start.elapsed() < timeout {
            let ok = (1..=2).all(|i| {
                self.d.try_status(i).is_some_and(|s| {
                    s.connection == ConnState::Connected
                        && s.disk == DiskState::UpToDate
                        && s.peer_disk == DiskState::UpToDate
                })
            });
            if ok {
                return true;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        false
    }

    /// The record ids in the file, read through node i's mount (its hbd's
    /// mount namespace, where the group's Filesystem mounted the disk).
    pub fn stored_ids(&self, i: usize) -> Option<BTreeSet<u64>> {
        let pid = self.hbd_pid(i)?;
        let out = Command::new("nsenter")
            .args(["-t", &pid.to_string(), "-m", "cat"])
            .arg(self.mnt.join("records"))
            .output()
            .ok()?;
        if !out.status.success() {
            return None;
        }
        Some(
            String::from_utf8_lossy(&out.stdout)
                .lines()
                .filter_map(|l| l.split_whitespace().next()?.parse().ok())
                .collect(),
        )
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        // The reaper (first field) runs after this: the witness (or qnetd)
        // and corosync's shells are its children, reaped here so that they
        // leave no zombie.
        self.kill_witness();
        for i in 1..=2 {
            self.stop_corosync(i);
        }
    }
}

/// How the cluster ended up after the heal.
#[derive(Clone, Debug)]
pub struct Settled {
    pub holder: Option<usize>,
    pub split_brain: bool,
    pub state: String,
}

fn read_or_empty(p: &Path) -> String {
    fs::read(p)
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default()
}

fn tail(s: &str, n: usize) -> String {
    let lines: Vec<&str> = s.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

fn nft_path() -> Option<PathBuf> {
    ["/usr/sbin/nft", "/sbin/nft", "/usr/bin/nft"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
}

/// nftables is needed to drop one protocol inside a namespace; installed
/// with apt when missing (scripts/setup installs it too).
fn ensure_nft() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        if nft_path().is_none() {
            let out = Command::new("apt-get")
                .args([
                    "install",
                    "-y",
                    "-qq",
                    "--no-install-recommends",
                    "nftables",
                ])
                .env("DEBIAN_FRONTEND", "noninteractive")
                .output();
            eprintln!("installing nftables: {out:?}");
        }
    });
    assert!(
        nft_path().is_some(),
        "nft is missing: run scripts/setup (nftables)"
    );
}

/// What one run of the campaign measured.
#[derive(Clone, Debug)]
pub struct Outcome {
    pub scenario: Scenario,
    pub setup: Setup,
    pub seed: u64,
    pub watched: Watched,
    pub acked: usize,
    /// Acknowledged records missing from the final holder's file (None: no
    /// node holds the group at the end, nothing to read).
    pub lost: Option<Vec<u64>>,
    /// Which node acknowledged each lost record, counted.
    pub lost_by: Vec<(String, usize)>,
    pub settled: Settled,
    /// The output of the one `hbctl split-brain resolve`, and whether the
    /// disks were back in sync after it.
    pub split_brain: Option<(bool, String)>,
    pub stop_failed: bool,
    /// The client was served again after the heal.
    pub served_after_heal: bool,
    /// The longest time between two acknowledgements: the service's outage
    /// as the client saw it.
    pub outage: Duration,
    pub timeline: Vec<String>,
    pub key_lines: String,
}

impl Outcome {
    /// The invariants of the protected configuration (and, protected, no
    /// split brain to resolve by hand); empty when all hold.
    pub fn violations(&self) -> Vec<String> {
        let mut v = Vec::new();
        if self.watched.dual_primary_samples > 0 {
            v.push(format!(
                "two Primaries for up to {} ms ({} samples)",
                self.watched.dual_primary_longest.as_millis(),
                self.watched.dual_primary_samples
            ));
        }
        if self.watched.vip_both_samples > 0 {
            v.push(format!(
                "the VIP on both nodes for up to {} ms ({} samples)",
                self.watched.vip_both_longest.as_millis(),
                self.watched.vip_both_samples
            ));
        }
        match &self.lost {
            None => v.push(format!(
                "no node holds the group after the heal: {}",
                self.settled.state
            )),
            Some(l) if !l.is_empty() => v.push(format!(
                "{} of {} acknowledged records lost (acked by {:?}), first {:?}",
                l.len(),
                self.acked,
                self.lost_by,
                &l[..l.len().min(10)]
            )),
            Some(_) => {}
        }
        if self.stop_failed {
            v.push("the group is stop-failed".into());
        }
        if self.setup.protected() && self.split_brain.is_some() {
            v.push(format!(
                "split brain after the heal (resolved by hand: {})",
                self.split_brain_mark()
            ));
        }
        v
    }

    /// The split brain's result: "-" none, "y" resolved by the one
    /// command, "n" detected but not resolved by it.
    pub fn split_brain_mark(&self) -> &'static str {
        match &self.split_brain {
            None => "-",
            Some((true, _)) => "y",
            Some((false, _)) => "n",
        }
    }

    /// The one result line the campaign script reads.
    pub fn line(&self) -> String {
        let discarded = self
            .split_brain
            .as_ref()
            .and_then(|(_, o)| {
                o.lines()
                    .find(|l| l.contains("are discarded"))
                    .and_then(|l| l.rsplit_once('('))
                    .map(|(_, b)| {
                        b.trim_end_matches(" are discarded")
                            .trim_end_matches(')')
                            .to_string()
                    })
            })
            .unwrap_or_else(|| "-".into());
        format!(
            "campaign-result scenario={} protect={} seed={} dual_primary_ms={} vip_both_ms={} acked={} lost={} split_brain={} discarded={} holder={} stop_failed={} served_after_heal={} outage_ms={}",
            self.scenario.name(),
            self.setup.name(),
            self.seed,
            self.watched.dual_primary_longest.as_millis(),
            self.watched.vip_both_longest.as_millis(),
            self.acked,
            self.lost
                .as_ref()
                .map_or("unknown".to_string(), |l| l.len().to_string()),
            self.split_brain_mark(),
            discarded.replace(' ', ""),
            self.settled
                .holder
                .map_or("none".to_string(), |h| format!("n{h}")),
            if self.stop_failed { "yes" } else { "no" },
            if self.served_after_heal { "yes" } else { "no" },
            self.outage.as_millis(),
        )
    }

    /// Everything to read when a run went wrong.
    pub fn report(&self) -> String {
        let mut s = self.line().replacen("campaign-result", "run:", 1);
        let _ = write!(s, "\nsettled: {}", self.settled.state);
        if let Some((_, o)) = &self.split_brain {
            let _ = write!(s, "\nhbctl split-brain resolve:\n{o}");
        }
        let _ = write!(s, "\ntimeline:\n{}", self.timeline.join("\n"));
        s.push_str(&self.key_lines);
        s
    }
}

/// A seeded draw in `[lo, hi)` milliseconds.
fn between(rng: &mut SplitMix64, lo: u64, hi: u64) -> Duration {
    Duration::from_millis(lo + rng.below(hi - lo))
}

/// One run: build, start, warm up, inject the scenario's fault, heal,
/// settle, resolve a split brain, check the records.
pub fn run(scenario: Scenario, setup: Setup, seed: u64) -> Outcome {
    let mut rng = SplitMix64::new(seed ^ 0x1313_1313);
    let mut c = Cluster::build(setup);
    c.start();
    let t0 = c.t0;
    let writer = Writer::start(c.lab().ns("c"));
    let sampler = Sampler::start(c.lab(), t0);
    sampler.note(t0, "client started");
    assert!(
        writer.wait_more(20, SETUP),
        "the client gets no acknowledgements through the VIP\n{}",
        c.logs(100)
    );
    std::thread::sleep(between(&mut rng, 500, 2500));
    inject(&mut c, scenario, &mut rng, &sampler, t0);
    // What each node thought of the group at the end of the fault (the
    // log only: why a node did not take over).
    for i in 1..=2 {
        if let Some(st) = c.d.lab.status(i) {
            for g in st["groups"].as_array().into_iter().flatten() {
                println!(
                    "before heal n{i}: local={} desired={} note={} nodes={} quorum={} ping={}",
                    g["local"],
                    g["desired"],
                    g["note"],
                    g["nodes"],
                    st["protection"]["quorum"],
                    st["ping_nodes"]
                );
            }
        }
    }
    sampler.note(t0, "heal");
    c.heal();
    let settled = c.settle();
    sampler.note(t0, &format!("settled: {}", settled.state));
    let mut split_brain = None;
    if let (true, Some(h)) = (settled.split_brain, settled.holder) {
        let (ok, out) = c.resolve_split_brain(h);
        let synced = ok && c.wait_in_sync(Duration::from_secs(60));
        sampler.note(
            t0,
            &format!("split brain resolved with n{h} surviving: {synced}"),
        );
        split_brain = Some((synced, out));
    }
    // Give the client a moment on the healed cluster.
    let healed = Instant::now();
    writer.wait_more(10, Duration::from_secs(5));
    let served_after_heal = writer.acked_since(healed) > 0;
    let acks = writer.finish();
    let watched = sampler.finish();
    // The group may be moving again (auto_failback after a resync): read
    // the records once one node holds it with the disks in sync.
    let last = c.settle();
    let holder = last.holder.or(settled.holder);
    let lost = holder.and_then(|h| c.stored_ids(h)).map(|stored| {
        acks.iter()
            .filter(|a| !stored.contains(&a.id))
            .map(|a| a.id)
            .collect::<Vec<u64>>()
    });
    let mut lost_by: Vec<(String, usize)> = Vec::new();
    if let Some(l) = &lost {
        let set: BTreeSet<u64> = l.iter().copied().collect();
        for a in acks.iter().filter(|a| set.contains(&a.id)) {
            match lost_by.iter_mut().find(|(n, _)| *n == a.node) {
                Some(e) => e.1 += 1,
                None => lost_by.push((a.node.clone(), 1)),
            }
        }
    }
    c.keep_logs(scenario, seed);
    let timeline = watched.timeline.clone();
    let outage = acks
        .windows(2)
        .map(|w| w[1].at - w[0].at)
        .max()
        .unwrap_or_default();
    Outcome {
        scenario,
        setup,
        seed,
        watched,
        acked: acks.len(),
        lost,
        lost_by,
        settled: Settled { holder, ..settled },
        split_brain,
        stop_failed: c.stop_failed(),
        served_after_heal,
        outage,
        timeline,
        key_lines: c.key_lines(60),
    }
}

/// The scenario's fault, with durations drawn from `rng`. The group runs
/// on n1 when it starts.
fn inject(c: &mut Cluster, scenario: Scenario, rng: &mut SplitMix64, s: &Sampler, t0: Instant) {
    let lab_link = |c: &Cluster, host: &str, net: usize, up: bool| c.d.lab.link(host, net, up);
    match scenario {
        Scenario::Crossover => {
            s.note(t0, "cut eth1 of n1 and n2");
            lab_link(c, "n1", 1, false);
            lab_link(c, "n2", 1, false);
            std::thread::sleep(between(rng, 8000, 14000));
        }
        Scenario::ClientCut => {
            s.note(t0, "cut eth0 of n1");
            lab_link(c, "n1", 0, false);
            std::thread::sleep(between(rng, 8000, 14000));
        }
        Scenario::PartitionN1 | Scenario::PartitionN2 => {
            let i = if scenario == Scenario::PartitionN1 {
                1
            } else {
                2
            };
            s.note(t0, &format!("cut both links of n{i}"));
            c.links(i, false);
            std::thread::sleep(between(rng, 8000, 14000));
        }
        Scenario::Flapping => {
            let start = Instant::now();
            while start.elapsed() < Duration::from_secs(10) {
                s.note(t0, "cut both links of n1");
                c.links(1, false);
                std::thread::sleep(between(rng, 1000, 2000));
                // A node fenced meanwhile is off: its links stay cut (the
                // fence agent cut them) until the heal reboots it.
                if !c.hbd_alive(1) {
                    s.note(t0, "n1 is off (fenced): its links stay cut");
                    break;
                }
                s.note(t0, "restore both links of n1");
                c.links(1, true);
                std::thread::sleep(between(rng, 1000, 2000));
            }
        }
        Scenario::HeartbeatOnly if c.setup == Setup::Corosync => {
            s.note(
                t0,
                &format!("drop corosync's knet traffic (UDP {KNET_PORTS:?}) in n1"),
            );
            c.nft_drop(1, "udp", KNET_PORTS);
            std::thread::sleep(between(rng, 8000, 14000));
        }
        Scenario::HeartbeatOnly => {
            s.note(t0, "drop UDP 694 in n1");
            c.nft_drop(1, "udp", &[694]);
            std::thread::sleep(between(rng, 8000, 14000));
        }
        Scenario::CrashAfterReplCut => {
            s.note(t0, "drop TCP 7788 in n1");
            c.nft_drop(1, "tcp", &[7788]);
            std::thread::sleep(between(rng, 2000, 4000));
            s.note(t0, "crash n1");
            c.crash(1);
            std::thread::sleep(between(rng, 8000, 12000));
        }
        Scenario::WitnessLoss => {
            if c.protect {
                s.note(
                    t0,
                    if c.setup == Setup::Corosync {
                        "kill corosync-qnetd"
                    } else {
                        "kill the witness"
                    },
                );
                c.kill_witness();
            }
            std::thread::sleep(between(rng, 2000, 4000));
            s.note(t0, "cut both links of n1");
            c.links(1, false);
            std::thread::sleep(between(rng, 8000, 14000));
        }
    }
}
