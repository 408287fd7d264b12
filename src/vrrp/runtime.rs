//! The VRRP daemon side: runs the [`Instance`] state machines of a
//! `keepalived.conf` on the real network, as keepalived 2.2.7 does.
//!
//! [`VrrpRuntime::start`] spawns, in the current tokio runtime:
//! - one socket per interface (raw IPv4, protocol 112, `SO_BINDTODEVICE`,
//!   224.0.0.18 joined on it, `IP_HDRINCL` to send [`Packet::encode`]'s
//!   header: TOS 0xc0, TTL 255, source the interface's primary address or
//!   `unicast_src_ip`, to the multicast group or to each `unicast_peer`) and
//!   a receive task that decodes every datagram and hands it to the instances
//!   of that interface with its VRID. Malformed datagrams, mismatched adverts
//!   (version, auth, interval, addresses, TTL for multicast, a source not in
//!   `unicast_peer`) and our own adverts are dropped and counted, never fatal;
//! - one task per instance, owning its state machine: it runs the timers,
//!   sends adverts, adds and removes the VIPs through rtnetlink (the IPaddr2
//!   agent's [`ipaddr::start`]/[`ipaddr::stop`], without its ARP probe), sends
//!   the gratuitous ARP bursts from the interface's MAC and queues the notify
//!   scripts;
//! - one notify task per instance: its scripts run one at a time, in the
//!   order of the transitions (keepalived may run them out of order);
//! - one task per tracked `vrrp_script`: runs it every `interval` (no shell,
//!   as keepalived), kills its process group at `timeout` (TERM, then KILL a
//!   second later: a failure), feeds the result to the instances tracking it;
//! - one link task for the instances' interfaces and `track_interface`s:
//!   woken by rtnetlink link events (RTNLGRP_LINK), it reads
//!   `/sys/class/net/IF/{operstate,carrier}`, and again every 100 ms for 2 s
//!   after an event while the kernel settles; nothing at idle.
//! - one task per `vrrp_sync_group`: the members report their state, the
//!   group ([`super::sync::SyncGroup`]) tells the others to follow and runs
//!   the group's notify scripts (`GROUP NAME STATE 0`, as keepalived);
//! - one task per failback gate check ([`VrrpOptions::gate_checks`]);
//! - with `no_accept`, the nftables table `inet hbd_vrrp` dropping traffic
//!   to the VIPs a `no_accept` MASTER holds ([`NFT_TABLE`]).
//!
//! Scripts run as their `user`, else `script_user`, else root, with a clean
//! environment (`PATH` only). `notify` gets keepalived's arguments
//! `INSTANCE NAME STATE PRIORITY` after its own; `notify_master` and the
//! others get only their own (the state-specific one runs first, as
//! keepalived does).
//!
//! [`VrrpHandle`] is the control side: [`VrrpHandle::status`] for `hbctl
//! status`, [`VrrpHandle::standby`] / [`VrrpHandle::takeover`],
//! [`VrrpHandle::failback_gate`] for a failback check run elsewhere, and
//! [`VrrpHandle::shutdown`] (priority 0 adverts, VIPs removed, notify STOP).

use super::conf::{self, KeepalivedConf, ScriptUser, VrrpInstance};
use super::instance::{Input, Instance, InstanceConfig, Output, State, TrackScript};
use super::packet::{self, Advert, Expected, Packet, V3Checksum, Version};
use crate::agents::arp::{self, ArpSocket, Mac};
use crate::agents::ipaddr::{self, HostAddr, IpAddrArgs, Link};
use crate::config::{ConfigError, Location};
use serde::{Deserialize, Serialize};
use socket2::{Domain, InterfaceIndexOrAddress, Protocol, SockAddr, Socket, Type};
use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::unix::AsyncFd;
use tokio::io::Interest;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// One instance as `hbctl status` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VrrpStatus {
    pub name: String,
    pub vrid: u8,
    pub interface: String,
    /// MASTER, BACKUP, FAULT, INIT or STOP.
    pub state: String,
    /// The configured priority.
    pub priority: u8,
    /// With the script weights.
    pub effective_priority: u8,
    /// The master's address: this node's when MASTER, else the master last
    /// heard (none when it went silent or gave up).
    pub master: Option<String>,
    /// The virtual addresses (`virtual_ipaddress`, then
    /// `virtual_ipaddress_excluded`).
    pub vips: Vec<String>,
    /// VRRP datagrams dropped, per reason: `malformed`, `checksum`, `ttl`,
    /// `version`, `auth_type` (undecodable on this instance's interface:
    /// counted on each instance of the interface), and for adverts with
    /// this VRID `vrid`, `auth_password`, `interval`, `addresses`,
    /// `unicast_peer`, as keepalived checks them.
    #[serde(default)]
    pub drops: BTreeMap<String, u64>,
}

/// What `keepalived.conf` does not say.
#[derive(Debug, Clone, Default)]
pub struct VrrpOptions {
    /// The v3 checksum form (keepalived 2.2.x: with the pseudo-header).
    pub v3_checksum: V3Checksum,
    /// Instances with a failback gate: they do not preempt until
    /// [`VrrpHandle::failback_gate`] reports it open.
    pub failback_gates: Vec<String>,
    /// Failback gates the runtime checks itself (cluster.toml
    /// `[vrrp.gate.INSTANCE]`): `argv` runs every `interval` (no shell, as
    /// root), exit 0 within `timeout` opens the gate, anything else closes
    /// it. The gate starts closed.
    pub gate_checks: Vec<crate::config::GateResolved>,
}

/// The PATH of scripts.
const PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
/// Between TERM and KILL of a script that timed out.
const KILL_GRACE: Duration = Duration::from_secs(1);
/// A notify script that runs longer is killed (keepalived never waits for
/// them; hbd runs them in order, so one must not hold the queue forever).
const NOTIFY_TIMEOUT: Duration = Duration::from_secs(60);
/// How long [`VrrpHandle::shutdown`] waits for an instance (its STOP notify
/// scripts included).
const SHUTDOWN_WAIT: Duration = Duration::from_secs(65);
const LINK_POLL: Duration = Duration::from_millis(100);

/// The VRRP runtime's entry point.
pub struct VrrpRuntime;

/// The running instances (`Send + Sync`: share it in an `Arc` with the
/// control server); dropping it aborts them without the shutdown adverts
/// (use [`VrrpHandle::shutdown`] first).
pub struct VrrpHandle {
    instances: Vec<InstanceHandle>,
    status: Arc<Mutex<Vec<VrrpStatus>>>,
    background: Vec<JoinHandle<()>>,
}

struct InstanceHandle {
    name: String,
    tx: mpsc::UnboundedSender<Event>,
    task: Mutex<Option<JoinHandle<()>>>,
}

enum Event {
    Packet(Arc<Packet>),
    Script {
        name: String,
        ok: bool,
    },
    Link {
        name: String,
        up: bool,
    },
    Standby,
    Takeover,
    Gate(bool),
    /// From the instance's `vrrp_sync_group`.
    Sync(Input),
    Shutdown,
}

/// A raw protocol-112 socket bound to one interface.
struct VrrpSocket {
    fd: AsyncFd<Socket>,
    iface: String,
}

impl VrrpSocket {
    fn open(iface: &str, ifindex: u32, group: Ipv4Addr) -> std::io::Result<VrrpSocket> {
        let sock = Socket::new(
            Domain::IPV4,
            Type::RAW,
            Some(Protocol::from(i32::from(packet::IPPROTO_VRRP))),
        )?;
        sock.set_nonblocking(true)?;
        sock.set_cloexec(true)?;
        sock.bind_device(Some(iface.as_bytes()))?;
        sock.set_header_included_v4(true)?;
        sock.set_multicast_loop_v4(false)?;
        sock.join_multicast_v4_n(&group, &InterfaceIndexOrAddress::Index(ifindex))?;
        // SAFETY: the socket's fd stays open and owned by the AsyncFd until
        // it is dropped.
        let fd = unsafe { AsyncFd::register_with_interest(sock, Interest::READABLE) }
            .map_err(|e| e.into_parts().1)?;
        Ok(VrrpSocket {
            fd,
            iface: iface.to_string(),
        })
    }

    fn send(&self, bytes: &[u8], dst: Ipv4Addr) -> std::io::Result<()> {
        let to = SockAddr::from(SocketAddrV4::new(dst, 0));
        self.fd.get_ref().send_to(bytes, &to).map(|_| ())
    }

    async fn recv(&self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.fd
            .async_io(Interest::READABLE, |s| {
                let mut s: &Socket = s;
                s.read(buf)
            })
            .await
    }
}

/// To a sync group's task: (member, state, own fault).
type GroupTx = mpsc::UnboundedSender<(usize, State, bool)>;

/// Instance index → channel, per VRID, for one interface's receive task.
type Routes = BTreeMap<u8, Vec<mpsc::UnboundedSender<Event>>>;

impl VrrpRuntime {
    /// Starts every `vrrp_instance` of `conf` in the current tokio runtime
    /// (its network namespace is this process's). Errors: an interface or
    /// its address is missing, a socket cannot be opened, or the
    /// configuration uses something the runtime does not do yet.
    pub async fn start(conf: KeepalivedConf, opts: VrrpOptions) -> Result<VrrpHandle, String> {
        let problems = unsupported(&conf);
        if !problems.is_empty() {
            return Err(problems
                .iter()
                .map(|e| e.to_string())
                .collect::<Vec<_>>()
                .join("; "));
        }
        let firewall = if conf.instances.iter().any(|i| !i.accept()) {
            let nft = find_nft().ok_or_else(|| {
                "no_accept needs nftables' `nft` (apt-get install nftables), or remove `no_accept`"
                    .to_string()
            })?;
            Some(Arc::new(Firewall::new(nft)))
        } else {
            None
        };
        let (links, addrs) = ipaddr::snapshot().await.map_err(|e| e.to_string())?;
        let link = |name: &str| -> Result<&Link, String> {
            links
                .iter()
                .find(|l| l.name == name)
                .ok_or_else(|| format!("interface {name} not found"))
        };
        let all_vips: BTreeSet<Ipv4Addr> = conf
            .instances
            .iter()
            .flat_map(|i| i.vips.iter().chain(&i.excluded_vips).map(|v| v.addr))
            .collect();

        // One socket per interface.
        let mut sockets: BTreeMap<String, Arc<VrrpSocket>> = BTreeMap::new();
        for i in &conf.instances {
            if !sockets.contains_key(&i.interface) {
                let l = link(&i.interface)?;
                let s = VrrpSocket::open(&i.interface, l.index, conf.global.vrrp_mcast_group4)
                    .map_err(|e| format!("VRRP socket on {}: {e}", i.interface))?;
                sockets.insert(i.interface.clone(), Arc::new(s));
            }
        }

        // Link states now, so that an instance starts in FAULT rather than
        // taking over while its interface is down.
        let mut watched: BTreeSet<String> = BTreeSet::new();
        for i in &conf.instances {
            watched.insert(i.interface.clone());
            watched.extend(i.track_interfaces.iter().map(|t| t.name.clone()));
        }
        let link_states: BTreeMap<String, bool> =
            watched.iter().map(|n| (n.clone(), link_up(n))).collect();

        let status = Arc::new(Mutex::new(Vec::new()));
        let mut instances = Vec::new();
        let mut routes: BTreeMap<String, Routes> = BTreeMap::new();
        let mut script_subscribers: BTreeMap<String, Vec<mpsc::UnboundedSender<Event>>> =
            BTreeMap::new();
        let epoch = Instant::now();
        let mut pending = Vec::new();
        for (index, i) in conf.instances.iter().enumerate() {
            let l = link(&i.interface)?;
            let src = match i.unicast_src_ip {
                Some(a) => a,
                None => primary_address(l, &addrs, &all_vips).ok_or_else(|| {
                    format!(
                        "vrrp_instance {}: interface {} has no IPv4 address to send from",
                        i.name, i.interface
                    )
                })?,
            };
            let cfg = instance_config(&conf, i, src, &opts);
            let mut vip_args = Vec::new();
            let mut garp = Vec::new();
            for v in i.vips.iter().chain(&i.excluded_vips) {
                let dev = v.dev.clone().unwrap_or_else(|| i.interface.clone());
                let dl = link(&dev)?;
                if let (true, Some(mac)) = (dl.arp, dl.mac) {
                    garp.push((dl.index, mac, v.addr));
                }
                vip_args.push(IpAddrArgs {
                    addr: v.addr,
                    prefix: Some(v.prefix),
                    iface: Some(dev),
                    label: v.label.clone(),
                    broadcast: v.brd,
                });
            }
            let version = cfg.version;
            let adver_int = match version {
                Version::V2 => cfg.advert_interval.as_secs() as u16,
                Version::V3 => (cfg.advert_interval.as_millis() / 10) as u16,
            };
            let auth = match i.effective_auth(&conf.global) {
                Some(conf::Auth::Pass(p)) => packet::Auth::pass(p),
                None => packet::Auth::None,
            };
            let dsts = if i.unicast_peers.is_empty() {
                vec![conf.global.vrrp_mcast_group4]
            } else {
                i.unicast_peers.clone()
            };
            let (tx, rx) = mpsc::unbounded_channel();
            let (notify_tx, notify_rx) = mpsc::unbounded_channel();
            for t in &i.track_scripts {
                script_subscribers
                    .entry(t.name.clone())
                    .or_default()
                    .push(tx.clone());
            }
            routes
                .entry(i.interface.clone())
                .or_default()
                .entry(i.vrid)
                .or_default()
                .push(tx.clone());
            status
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(VrrpStatus {
                    name: i.name.clone(),
                    vrid: i.vrid,
                    interface: i.interface.clone(),
                    state: State::Init.as_str().to_string(),
                    priority: cfg.priority,
                    effective_priority: cfg.priority,
                    master: None,
                    vips: vip_args.iter().map(|a| a.addr.to_string()).collect(),
                    drops: BTreeMap::new(),
                });
            let mut machine = Instance::new(cfg);
            // dont_track_primary: the instance's own interface does not
            // count (a track_interface naming it still does).
            let ignored_link = (i.dont_track_primary
                && !i.track_interfaces.iter().any(|t| t.name == i.interface))
            .then(|| i.interface.clone());
            for (name, up) in &link_states {
                if !up && ignored_link.as_ref() != Some(name) {
                    machine.handle(Duration::ZERO, Input::InterfaceDown(name.clone()));
                }
            }
            let task = InstanceTask {
                name: i.name.clone(),
                index,
                machine,
                epoch,
                sock: sockets[&i.interface].clone(),
                src,
                dsts,
                check_ttl: i.unicast_peers.is_empty(),
                peers: i.unicast_peers.clone(),
                version,
                vrid: i.vrid,
                adver_int,
                auth,
                addrs: i.vips.iter().map(|v| v.addr).collect(),
                skip_addr_check: i.skip_check_adv_addr(&conf.global),
                v3: opts.v3_checksum,
                ip_id: 0,
                vip_args,
                garp,
                garp_interval: conf.global.vrrp_garp_interval,
                notify_tx: Some(notify_tx),
                notifier: None,
                status: status.clone(),
                ignored_link,
                dropped: 0,
                send_errors: 0,
                group: None,
                reported: None,
                firewall: firewall.clone().filter(|_| !i.accept()),
            };
            // Spawned once every instance is known to start: a failed start
            // leaves nothing running.
            pending.push((task, rx, notify_rx, i.notify.clone(), tx));
        }
        // Sync groups: one task each, between its members.
        let mut background = Vec::new();
        for g in &conf.sync_groups {
            let (gtx, grx) = mpsc::unbounded_channel();
            let mut members = Vec::new();
            for (m, name) in g.instances.iter().enumerate() {
                if let Some(p) = pending.iter_mut().find(|p| &p.0.name == name) {
                    p.0.group = Some((m, gtx.clone()));
                    members.push(p.4.clone());
                }
            }
            let (ntx, nrx) = mpsc::unbounded_channel();
            background.push(tokio::spawn(notifier(
                Kind::Group,
                g.name.clone(),
                g.notify.clone(),
                conf.global.script_user.clone(),
                nrx,
            )));
            background.push(tokio::spawn(sync_group(g.name.clone(), members, grx, ntx)));
        }
        // Failback gates checked here.
        for gate in &opts.gate_checks {
            match pending.iter().find(|p| p.0.name == gate.instance) {
                Some(p) => background.push(tokio::spawn(run_gate(gate.clone(), p.4.clone()))),
                None => {
                    for t in background {
                        t.abort();
                    }
                    return Err(format!(
                        "failback gate for `{}`: no such vrrp_instance",
                        gate.instance
                    ));
                }
            }
        }
        for (mut task, rx, notify_rx, notifies, tx) in pending {
            task.notifier = Some(tokio::spawn(notifier(
                Kind::Instance,
                task.name.clone(),
                notifies,
                conf.global.script_user.clone(),
                notify_rx,
            )));
            instances.push(InstanceHandle {
                name: task.name.clone(),
                tx,
                task: Mutex::new(Some(tokio::spawn(task.run(rx)))),
            });
        }

        for (iface, sock) in sockets {
            let r = routes.remove(&iface).unwrap_or_default();
            let on_iface: Vec<usize> = conf
                .instances
                .iter()
                .enumerate()
                .filter(|(_, i)| i.interface == iface)
                .map(|(n, _)| n)
                .collect();
            background.push(tokio::spawn(receive(
                sock,
                r,
                opts.v3_checksum,
                status.clone(),
                on_iface,
            )));
        }
        for s in &conf.scripts {
            if let Some(subs) = script_subscribers.remove(&s.name) {
                let user = s.user.clone().or_else(|| conf.global.script_user.clone());
                background.push(tokio::spawn(run_script(s.clone(), user, subs)));
            }
        }
        let all: Vec<_> = instances.iter().map(|h| h.tx.clone()).collect();
        background.push(tokio::spawn(watch_links(link_states, all)));
        tracing::info!(
            instances = ?conf.instances.iter().map(|i| i.name.as_str()).collect::<Vec<_>>(),
            "VRRP started"
        );
        Ok(VrrpHandle {
            instances,
            status,
            background,
        })
    }
}

impl VrrpHandle {
    /// Every instance, in configuration order.
    pub fn status(&self) -> Vec<VrrpStatus> {
        self.status
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// The instances `instance` names: one by name, or all for `None` or
    /// `"all"`.
    fn select(&self, instance: Option<&str>) -> Result<Vec<&InstanceHandle>, String> {
        match instance {
            None | Some("all") => Ok(self.instances.iter().collect()),
            Some(name) => match self.instances.iter().find(|h| h.name == name) {
                Some(h) => Ok(vec![h]),
                None => Err(format!(
                    "no vrrp_instance `{name}` (instances: {})",
                    self.instances
                        .iter()
                        .map(|h| h.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                )),
            },
        }
    }

    fn send(&self, instance: Option<&str>, ev: fn() -> Event) -> Result<Vec<String>, String> {
        let chosen = self.select(instance)?;
        Ok(chosen
            .into_iter()
            .filter(|h| h.tx.send(ev()).is_ok())
            .map(|h| h.name.clone())
            .collect())
    }

    /// `hbctl standby [INSTANCE|all]`: a MASTER advertises priority 0,
    /// removes its VIPs and goes BACKUP; the instances do not preempt until
    /// [`VrrpHandle::takeover`]. Returns the instances told.
    pub fn standby(&self, instance: Option<&str>) -> Result<Vec<String>, String> {
        self.send(instance, || Event::Standby)
    }

    /// `hbctl takeover [INSTANCE|all]`: lifts standby and preempts a lower
    /// priority master at once (nopreempt notwithstanding). Returns the
    /// instances told.
    pub fn takeover(&self, instance: Option<&str>) -> Result<Vec<String>, String> {
        self.send(instance, || Event::Takeover)
    }

    /// The failback gate's check result for an instance configured with one
    /// ([`VrrpOptions::failback_gates`]).
    pub fn failback_gate(&self, instance: &str, open: bool) -> Result<(), String> {
        for h in self.select(Some(instance))? {
            let _ = h.tx.send(Event::Gate(open));
        }
        Ok(())
    }

    /// Stops every instance: a MASTER advertises priority 0, the VIPs are
    /// removed, the STOP notify scripts run; returns when they are done.
    /// Idempotent; the handle answers [`VrrpHandle::status`] (STOP) after it.
    pub async fn shutdown(&self) {
        for h in &self.instances {
            let _ = h.tx.send(Event::Shutdown);
        }
        for h in &self.instances {
            let task = h.task.lock().unwrap_or_else(|e| e.into_inner()).take();
            if let Some(t) = task {
                if tokio::time::timeout(SHUTDOWN_WAIT, t).await.is_err() {
                    tracing::warn!(instance = %h.name, "instance did not stop in time");
                }
            }
        }
        tracing::info!("VRRP stopped");
    }
}

impl Drop for VrrpHandle {
    fn drop(&mut self) {
        for t in self.background.drain(..) {
            t.abort();
        }
        for h in &self.instances {
            if let Some(t) = h.task.lock().unwrap_or_else(|e| e.into_inner()).take() {
                t.abort();
            }
        }
    }
}

/// What the runtime does not do yet, as `file:line` errors (for `hbctl
/// check` too): an error rather than a silently different behaviour.
pub fn unsupported(conf: &KeepalivedConf) -> Vec<ConfigError> {
    let err = |at: &Location, key: &str, message: String| ConfigError::Line {
        file: at.file.clone(),
        line: at.line,
        key: key.to_string(),
        message,
    };
    let mut problems = Vec::new();
    for i in &conf.instances {
        if i.use_vmac {
            problems.push(err(
                &i.at,
                "use_vmac",
                format!("vrrp_instance `{}`: use_vmac is not supported yet", i.name),
            ));
        }
        for v in i.vips.iter().chain(&i.excluded_vips) {
            if let Some(scope) = v.scope.as_deref().filter(|s| *s != "global") {
                problems.push(err(
                    &v.at,
                    "scope",
                    format!(
                        "{}: scope {scope} is not supported yet (VIPs are added with scope global)",
                        v.addr
                    ),
                ));
            }
        }
        for t in &i.track_interfaces {
            if t.weight != 0 || t.reverse {
                problems.push(err(
                    &t.at,
                    "track_interface",
                    format!(
                        "`{}`: weights are not supported yet (without one, the interface down means FAULT)",
                        t.name
                    ),
                ));
            }
        }
        for t in &i.track_scripts {
            if t.reverse || conf.script(&t.name).is_some_and(|s| s.weight_reverse) {
                problems.push(err(
                    &t.at,
                    "track_script",
                    format!("`{}`: `reverse` weights are not supported yet", t.name),
                ));
            }
        }
    }
    problems
}

/// The state machine's configuration for `i`, keepalived's defaults applied.
pub fn instance_config(
    conf: &KeepalivedConf,
    i: &VrrpInstance,
    src: Ipv4Addr,
    opts: &VrrpOptions,
) -> InstanceConfig {
    let g = &conf.global;
    let version = if i.effective_version(g) == 3 {
        Version::V3
    } else {
        Version::V2
    };
    let mut c = InstanceConfig::new(
        &i.name,
        version,
        i.vrid,
        i.base_priority(),
        i.advert_interval(g),
        src,
        &i.interface,
    );
    c.track_interfaces = i.track_interfaces.iter().map(|t| t.name.clone()).collect();
    c.scripts = i
        .track_scripts
        .iter()
        .filter_map(|t| {
            let s = conf.script(&t.name)?;
            Some(TrackScript {
                name: t.name.clone(),
                weight: t.weight.unwrap_or(s.weight),
                rise: s.rise,
                fall: s.fall,
                init_fail: s.init_fail,
            })
        })
        .collect();
    c.nopreempt = !i.preempt(g);
    c.preempt_delay = i.effective_preempt_delay(g);
    c.garp_master_delay = i.garp_master_delay(g);
    c.garp_master_repeat = i.garp_master_repeat(g);
    let refresh = i.garp_master_refresh(g);
    c.garp_master_refresh = (!refresh.is_zero()).then_some(refresh);
    c.garp_master_refresh_repeat = i.garp_master_refresh_repeat(g);
    c.failback_gate = opts.failback_gates.iter().any(|n| n == &i.name)
        || opts.gate_checks.iter().any(|g| g.instance == i.name);
    c
}

/// The interface's first IPv4 address that is not a VIP of this
/// configuration (the kernel lists the primary address first).
fn primary_address(l: &Link, addrs: &[HostAddr], vips: &BTreeSet<Ipv4Addr>) -> Option<Ipv4Addr> {
    addrs
        .iter()
        .filter(|h| h.index == l.index && !vips.contains(&h.addr))
        .map(|h| h.addr)
        .next()
}

struct InstanceTask {
    name: String,
    index: usize,
    machine: Instance,
    epoch: Instant,
    sock: Arc<VrrpSocket>,
    src: Ipv4Addr,
    dsts: Vec<Ipv4Addr>,
    /// Multicast: TTL 255 required.
    check_ttl: bool,
    /// Unicast: adverts only from these.
    peers: Vec<Ipv4Addr>,
    version: Version,
    vrid: u8,
    adver_int: u16,
    auth: packet::Auth,
    /// The advertised addresses (`virtual_ipaddress`).
    addrs: Vec<Ipv4Addr>,
    skip_addr_check: bool,
    v3: V3Checksum,
    ip_id: u16,
    /// Every VIP, excluded ones too.
    vip_args: Vec<IpAddrArgs>,
    /// (ifindex, MAC, address) of each VIP on an ARP interface.
    garp: Vec<(u32, Mac, Ipv4Addr)>,
    garp_interval: Duration,
    notify_tx: Option<mpsc::UnboundedSender<(State, u8)>>,
    notifier: Option<JoinHandle<()>>,
    status: Arc<Mutex<Vec<VrrpStatus>>>,
    /// `dont_track_primary`: link events of this interface are ignored.
    ignored_link: Option<String>,
    dropped: u64,
    send_errors: u64,
    /// Its `vrrp_sync_group`'s task and its index there.
    group: Option<(usize, GroupTx)>,
    /// The (state, own fault) last told to the group.
    reported: Option<(State, bool)>,
    /// `no_accept`: the VIPs it holds are dropped by nftables.
    firewall: Option<Arc<Firewall>>,
}

impl InstanceTask {
    fn now(&self) -> Duration {
        self.epoch.elapsed()
    }

    async fn run(mut self, mut rx: mpsc::UnboundedReceiver<Event>) {
        // VIPs left behind by a crash: a BACKUP holds none.
        self.remove_vips().await;
        let now = self.now();
        self.machine.handle(now, Input::Start);
        self.flush().await;
        loop {
            let deadline = self.machine.next_deadline().map(|d| self.epoch + d);
            let ev = tokio::select! {
                _ = sleep_until_opt(deadline) => None,
                ev = rx.recv() => match ev {
                    Some(ev) => Some(ev),
                    None => Some(Event::Shutdown),
                },
            };
            let now = self.now();
            let stop = matches!(ev, Some(Event::Shutdown));
            match ev {
                None => self.machine.handle(now, Input::Tick),
                Some(Event::Packet(p)) => {
                    if let Some(input) = self.accept(&p) {
                        self.machine.handle(now, input);
                    }
                }
                Some(Event::Script { name, ok }) => {
                    self.machine.handle(now, Input::ScriptResult { name, ok })
                }
                Some(Event::Link { name, .. }) if self.ignored_link.as_ref() == Some(&name) => {}
                Some(Event::Link { name, up }) => self.machine.handle(
                    now,
                    if up {
                        Input::InterfaceUp(name)
                    } else {
                        Input::InterfaceDown(name)
                    },
                ),
                Some(Event::Standby) => self.machine.handle(now, Input::Standby),
                Some(Event::Takeover) => self.machine.handle(now, Input::Takeover),
                Some(Event::Gate(open)) => self.machine.handle(now, Input::FailbackGate(open)),
                Some(Event::Sync(input)) => self.machine.handle(now, input),
                Some(Event::Shutdown) => self.machine.handle(now, Input::Shutdown),
            }
            self.flush().await;
            if stop {
                break;
            }
        }
        // The STOP notify scripts, and any still queued, run to the end.
        self.notify_tx = None;
        if let Some(n) = self.notifier.take() {
            let _ = n.await;
        }
    }

    /// The advert as input for the machine, or None (dropped and counted).
    fn accept(&mut self, p: &Packet) -> Option<Input> {
        let from = p.ip.src;
        if from == self.src {
            return None;
        }
        let why = if self.check_ttl && p.ip.ttl != packet::VRRP_TTL {
            Some(("ttl", format!("TTL {}", p.ip.ttl)))
        } else if !self.peers.is_empty() && !self.peers.contains(&from) {
            Some(("unicast_peer", "not from a unicast_peer".to_string()))
        } else {
            let want = Expected {
                version: self.version,
                vrid: self.vrid,
                auth: self.auth,
                adver_int: self.adver_int,
                addrs: &self.addrs,
                skip_addr_check: self.skip_addr_check && self.machine.status().master == Some(from),
            };
            p.advert
                .check(&want)
                .err()
                .map(|m| (m.reason(), m.to_string()))
        };
        if let Some((reason, why)) = why {
            self.dropped += 1;
            {
                let mut all = self.status.lock().unwrap_or_else(|e| e.into_inner());
                if let Some(s) = all.get_mut(self.index) {
                    *s.drops.entry(reason.to_string()).or_default() += 1;
                }
            }
            // The first of each run at warn, as keepalived logs them.
            if self.dropped.is_power_of_two() {
                tracing::warn!(instance = %self.name, %from, reason = %why, dropped = self.dropped, "advert dropped");
            } else {
                tracing::debug!(instance = %self.name, %from, reason = %why, "advert dropped");
            }
            return None;
        }
        Some(Input::Advert {
            from,
            priority: p.advert.priority,
            interval: p.advert.interval(),
        })
    }

    async fn flush(&mut self) {
        for o in self.machine.take_outputs() {
            match o {
                Output::SendAdvert { priority } => self.send_advert(priority),
                Output::AddVips => self.add_vips().await,
                Output::RemoveVips => self.remove_vips().await,
                Output::SendGarps { repeat } => self.send_garps(repeat),
                Output::Notify { state, priority } => {
                    if let Some(tx) = &self.notify_tx {
                        let _ = tx.send((state, priority));
                    }
                }
                Output::StateChanged { from, to, why } => {
                    tracing::info!(
                        instance = %self.name,
                        from = from.as_str(),
                        to = to.as_str(),
                        why,
                        "({}) Entering {} STATE",
                        self.name,
                        to.as_str()
                    );
                }
            }
        }
        let st = self.machine.status();
        if let Some((member, tx)) = &self.group {
            let now = (st.state, st.own_fault);
            if self.reported != Some(now) {
                self.reported = Some(now);
                let _ = tx.send((*member, st.state, st.own_fault));
            }
        }
        let mut all = self.status.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(s) = all.get_mut(self.index) {
            s.state = st.state.as_str().to_string();
            s.effective_priority = st.effective_priority;
            s.master = st.master.map(|m| m.to_string());
        }
    }

    fn send_advert(&mut self, priority: u8) {
        let advert = Advert {
            version: self.version,
            vrid: self.vrid,
            priority,
            adver_int: self.adver_int,
            addrs: self.addrs.clone(),
            auth: self.auth,
        };
        for dst in &self.dsts {
            self.ip_id = self.ip_id.wrapping_add(1);
            let bytes = match Packet::new(self.src, *dst, self.ip_id, advert.clone())
                .encode(self.v3)
            {
                Ok(b) => b,
                Err(e) => {
                    tracing::error!(instance = %self.name, error = %e, "cannot encode the advert");
                    return;
                }
            };
            if let Err(e) = self.sock.send(&bytes, *dst) {
                self.send_errors += 1;
                if self.send_errors.is_power_of_two() {
                    tracing::warn!(instance = %self.name, iface = %self.sock.iface, %dst, error = %e, errors = self.send_errors, "sending the advert failed");
                }
            }
        }
    }

    fn agent_options() -> crate::agents::Options {
        crate::agents::Options {
            arp_count: 0,
            arp_probe: Duration::ZERO,
            ..Default::default()
        }
    }

    async fn add_vips(&mut self) {
        if let Some(f) = &self.firewall {
            // Before the addresses: never a moment where they answer.
            let vips = self.vip_args.iter().map(|a| a.addr).collect();
            if let Err(e) = f.set(&self.name, vips).await {
                tracing::error!(instance = %self.name, error = %e, "no_accept: cannot install the nftables rule");
            }
        }
        let o = Self::agent_options();
        for a in &self.vip_args {
            if let Err(e) = ipaddr::start(a, &o).await {
                tracing::error!(instance = %self.name, vip = %a.addr, error = %e, "cannot add the VIP");
            }
        }
    }

    async fn remove_vips(&mut self) {
        let o = Self::agent_options();
        for a in &self.vip_args {
            if let Err(e) = ipaddr::stop(a, &o).await {
                tracing::error!(instance = %self.name, vip = %a.addr, error = %e, "cannot remove the VIP");
            }
        }
        if let Some(f) = &self.firewall {
            if let Err(e) = f.set(&self.name, Vec::new()).await {
                tracing::error!(instance = %self.name, error = %e, "no_accept: cannot remove the nftables rule");
            }
        }
    }

    /// A burst of `repeat` gratuitous ARPs per VIP, `vrrp_garp_interval`
    /// apart, in the background.
    fn send_garps(&self, repeat: u32) {
        if repeat == 0 || self.garp.is_empty() {
            return;
        }
        let garp = self.garp.clone();
        let interval = self.garp_interval;
        let name = self.name.clone();
        tokio::spawn(async move {
            let mut socks: BTreeMap<u32, ArpSocket> = BTreeMap::new();
            for n in 0..repeat {
                for (index, mac, ip) in &garp {
                    if !socks.contains_key(index) {
                        match ArpSocket::open(*index) {
                            Ok(s) => {
                                socks.insert(*index, s);
                            }
                            Err(e) => {
                                tracing::warn!(instance = %name, error = %e, "gratuitous ARP socket");
                                continue;
                            }
                        }
                    }
                    if let Err(e) = arp::announce(&socks[index], *mac, *ip) {
                        tracing::debug!(instance = %name, %ip, error = %e, "gratuitous ARP failed");
                    }
                    if !interval.is_zero() {
                        tokio::time::sleep(interval).await;
                    }
                }
                if n + 1 < repeat && interval.is_zero() {
                    tokio::task::yield_now().await;
                }
            }
        });
    }
}

/// The nftables table of `no_accept` (as keepalived's firewall rules):
/// `table inet hbd_vrrp` whose input chain drops every datagram to a VIP
/// held by a `no_accept` MASTER of this daemon (its network namespace). The
/// table is rewritten in one transaction on each change and deleted when no
/// VIP is held.
pub const NFT_TABLE: &str = "hbd_vrrp";

struct Firewall {
    nft: std::path::PathBuf,
    /// Instance → the VIPs it holds.
    held: tokio::sync::Mutex<BTreeMap<String, Vec<Ipv4Addr>>>,
}

impl Firewall {
    fn new(nft: std::path::PathBuf) -> Firewall {
        Firewall {
            nft,
            held: tokio::sync::Mutex::new(BTreeMap::new()),
        }
    }

    async fn set(&self, instance: &str, vips: Vec<Ipv4Addr>) -> Result<(), String> {
        let mut held = self.held.lock().await;
        if vips.is_empty() {
            held.remove(instance);
        } else {
            held.insert(instance.to_string(), vips);
        }
        let all: BTreeSet<Ipv4Addr> = held.values().flatten().copied().collect();
        let script = nft_script(&all);
        let mut child = crate::agents::exec::clean_command(&self.nft, None)
            .args(["-f", "-"])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| format!("{}: {e}", self.nft.display()))?;
        if let Some(mut stdin) = child.stdin.take() {
            use tokio::io::AsyncWriteExt;
            stdin
                .write_all(script.as_bytes())
                .await
                .map_err(|e| format!("nft: {e}"))?;
        }
        let out = tokio::time::timeout(Duration::from_secs(10), child.wait_with_output())
            .await
            .map_err(|_| "nft: timed out".to_string())?
            .map_err(|e| format!("nft: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "nft: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        Ok(())
    }
}

/// The `nft -f` input that makes the table drop `vips` (none: no table).
fn nft_script(vips: &BTreeSet<Ipv4Addr>) -> String {
    // Declaring the table first makes the delete succeed when it is absent.
    let mut s = format!("table inet {NFT_TABLE} {{}}\ndelete table inet {NFT_TABLE}\n");
    if !vips.is_empty() {
        let list: Vec<String> = vips.iter().map(|v| v.to_string()).collect();
        s.push_str(&format!(
            "table inet {NFT_TABLE} {{\n  chain input {{\n    type filter hook input priority 0; policy accept;\n    ip daddr {{ {} }} drop\n  }}\n}}\n",
            list.join(", ")
        ));
    }
    s
}

fn find_nft() -> Option<std::path::PathBuf> {
    PATH.split(':')
        .map(|d| std::path::Path::new(d).join("nft"))
        .find(|p| p.is_file())
}

async fn sleep_until_opt(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// Receives on one interface and routes adverts by VRID.
async fn receive(
    sock: Arc<VrrpSocket>,
    routes: Routes,
    v3: V3Checksum,
    status: Arc<Mutex<Vec<VrrpStatus>>>,
    on_iface: Vec<usize>,
) {
    let mut buf = vec![0u8; 65536];
    let mut bad: u64 = 0;
    loop {
        let n = match sock.recv(&mut buf).await {
            Ok(n) => n,
            Err(e) => {
                tracing::warn!(iface = %sock.iface, error = %e, "VRRP receive failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        // TTL is checked per instance (not for unicast ones).
        match Packet::decode_with(&buf[..n], v3, false) {
            Ok(p) => match routes.get(&p.advert.vrid) {
                Some(txs) => {
                    let p = Arc::new(p);
                    for tx in txs {
                        let _ = tx.send(Event::Packet(p.clone()));
                    }
                }
                None => {
                    tracing::trace!(iface = %sock.iface, vrid = p.advert.vrid, from = %p.ip.src, "advert for another VRID");
                }
            },
            Err(e) => {
                bad += 1;
                {
                    let mut all = status.lock().unwrap_or_else(|e| e.into_inner());
                    for &i in &on_iface {
                        if let Some(s) = all.get_mut(i) {
                            *s.drops.entry(e.reason().to_string()).or_default() += 1;
                        }
                    }
                }
                if bad.is_power_of_two() {
                    tracing::warn!(iface = %sock.iface, error = %e, dropped = bad, "malformed VRRP datagram dropped");
                } else {
                    tracing::debug!(iface = %sock.iface, error = %e, "malformed VRRP datagram dropped");
                }
            }
        }
    }
}

/// `operstate` up (or unknown, for devices that do not report it) and
/// carrier present; a missing interface is down.
fn link_up(name: &str) -> bool {
    let dir = std::path::Path::new("/sys/class/net").join(name);
    let oper = std::fs::read_to_string(dir.join("operstate")).unwrap_or_default();
    let carrier = std::fs::read_to_string(dir.join("carrier")).unwrap_or_default();
    matches!(oper.trim(), "up" | "unknown") && carrier.trim() == "1"
}

/// Re-reads every watched link's state; tells the instances of each change.
fn check_links(states: &mut BTreeMap<String, bool>, txs: &[mpsc::UnboundedSender<Event>]) {
    for (name, was) in states.iter_mut() {
        let up = link_up(name);
        if up != *was {
            *was = up;
            tracing::info!(iface = %name, up, "link state changed");
            for tx in txs {
                let _ = tx.send(Event::Link {
                    name: name.clone(),
                    up,
                });
            }
        }
    }
}

/// A netlink route socket subscribed to link changes (RTNLGRP_LINK):
/// readable when a link is added, removed or changes flags, carrier or
/// operstate.
fn link_events() -> std::io::Result<AsyncFd<std::os::fd::OwnedFd>> {
    use std::os::fd::FromRawFd;
    // SAFETY: plain syscalls; the descriptor is owned from here on.
    let fd = unsafe {
        let fd = libc::socket(
            libc::AF_NETLINK,
            libc::SOCK_RAW | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
            libc::NETLINK_ROUTE,
        );
        if fd < 0 {
            return Err(std::io::Error::last_os_error());
        }
        std::os::fd::OwnedFd::from_raw_fd(fd)
    };
    // SAFETY: a zeroed sockaddr_nl is valid; bind gets its exact size.
    let r = unsafe {
        use std::os::fd::AsRawFd;
        let mut sa: libc::sockaddr_nl = std::mem::zeroed();
        sa.nl_family = libc::AF_NETLINK as libc::sa_family_t;
        sa.nl_groups = libc::RTMGRP_LINK as u32;
        libc::bind(
            fd.as_raw_fd(),
            std::ptr::addr_of!(sa).cast(),
            std::mem::size_of::<libc::sockaddr_nl>() as libc::socklen_t,
        )
    };
    if r < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: the descriptor stays open and owned by the AsyncFd until it
    // is dropped.
    unsafe { AsyncFd::register_with_interest(fd, Interest::READABLE) }.map_err(|e| e.into_parts().1)
}

/// Reads every queued notification; `Err` when the socket failed (other
/// than an overflow, which only means "look again").
fn drain_link_events(fd: &AsyncFd<std::os::fd::OwnedFd>) -> std::io::Result<()> {
    use std::os::fd::AsRawFd;
    let mut buf = [0u8; 8192];
    loop {
        // SAFETY: reads into a buffer of its stated length.
        let n = unsafe {
            libc::recv(
                fd.get_ref().as_raw_fd(),
                buf.as_mut_ptr().cast(),
                buf.len(),
                libc::MSG_DONTWAIT,
            )
        };
        if n > 0 {
            continue;
        }
        if n == 0 {
            return Ok(());
        }
        let e = std::io::Error::last_os_error();
        return match e.raw_os_error() {
            Some(libc::EAGAIN) => Ok(()),
            Some(libc::EINTR) | Some(libc::ENOBUFS) => continue,
            _ => Err(e),
        };
    }
}

/// After a link event, links are read again every [`LINK_POLL`] for this
/// long: the kernel may settle operstate after the event that announced
/// the change (linkwatch runs up to a second later).
const LINK_SETTLE: Duration = Duration::from_secs(2);

/// Link states from rtnetlink events: nothing runs while no link changes
/// (keepalived's idle cost). Falls back to reading the links every
/// [`LINK_POLL`] if the netlink socket cannot be had.
async fn watch_links(mut states: BTreeMap<String, bool>, txs: Vec<mpsc::UnboundedSender<Event>>) {
    let events = match link_events() {
        Ok(fd) => Some(fd),
        Err(e) => {
            tracing::warn!(error = %e, "no rtnetlink link events: reading link states every 100 ms");
            None
        }
    };
    // A change between the states taken at start and the subscription.
    check_links(&mut states, &txs);
    let Some(events) = events else {
        let mut tick = tokio::time::interval(LINK_POLL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            check_links(&mut states, &txs);
        }
    };
    // Until when links are read every LINK_POLL after an event.
    let mut settle: Option<tokio::time::Instant> = None;
    loop {
        let poll = settle.map(|until| (until, tokio::time::Instant::now() + LINK_POLL));
        tokio::select! {
            ready = events.readable() => {
                let mut guard = match ready {
                    Ok(g) => g,
                    Err(e) => {
                        tracing::warn!(error = %e, "rtnetlink link events failed: reading link states every 100 ms");
                        break;
                    }
                };
                guard.clear_ready();
                if let Err(e) = drain_link_events(&events) {
                    tracing::warn!(error = %e, "rtnetlink link events failed: reading link states every 100 ms");
                    break;
                }
                settle = Some(tokio::time::Instant::now() + LINK_SETTLE);
            }
            _ = sleep_until_opt(poll.map(|(_, next)| next)) => {
                if poll.is_some_and(|(until, _)| tokio::time::Instant::now() >= until) {
                    settle = None;
                }
            }
        }
        check_links(&mut states, &txs);
    }
    let mut tick = tokio::time::interval(LINK_POLL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        check_links(&mut states, &txs);
    }
}

/// Runs a `vrrp_script` every `interval`, feeding its result to `subs`.
async fn run_script(
    s: conf::VrrpScript,
    user: Option<ScriptUser>,
    subs: Vec<mpsc::UnboundedSender<Event>>,
) {
    let interval = s.interval.max(Duration::from_millis(10));
    let timeout = s.effective_timeout().max(Duration::from_millis(10));
    let mut next = Instant::now();
    loop {
        tokio::time::sleep_until(next).await;
        next += interval;
        let ok = match run_command(&s.command.argv, user.as_ref(), timeout).await {
            Ok(0) => true,
            Ok(code) => {
                tracing::debug!(script = %s.name, code, "check failed");
                false
            }
            Err(e) => {
                tracing::info!(script = %s.name, error = %e, "check failed");
                false
            }
        };
        for tx in &subs {
            let _ = tx.send(Event::Script {
                name: s.name.clone(),
                ok,
            });
        }
        let now = Instant::now();
        if next < now {
            next = now;
        }
    }
}

/// Whose notify scripts: keepalived passes `INSTANCE NAME STATE PRIORITY`
/// to an instance's `notify`, `GROUP NAME STATE 0` to a sync group's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Instance,
    Group,
}

/// Runs the notify scripts of one instance or sync group, one at a time,
/// in order.
async fn notifier(
    kind: Kind,
    name: String,
    n: conf::Notifies,
    script_user: Option<ScriptUser>,
    mut rx: mpsc::UnboundedReceiver<(State, u8)>,
) {
    while let Some((state, priority)) = rx.recv().await {
        let specific = match state {
            State::Master => n.master.as_ref(),
            State::Backup => n.backup.as_ref(),
            State::Fault => n.fault.as_ref(),
            State::Stop => n.stop.as_ref(),
            State::Init => None,
        };
        let user = |s: &conf::Notify| s.user.clone().or_else(|| script_user.clone());
        if let Some(s) = specific {
            notify_one(&name, &s.command.argv, user(s).as_ref()).await;
        }
        if let Some(s) = &n.notify {
            let mut argv = s.command.argv.clone();
            match kind {
                Kind::Instance => argv.extend([
                    "INSTANCE".to_string(),
                    name.clone(),
                    state.as_str().to_string(),
                    priority.to_string(),
                ]),
                // keepalived 2.2.7 passes priority 0 for a group.
                Kind::Group => argv.extend([
                    "GROUP".to_string(),
                    name.clone(),
                    state.as_str().to_string(),
                    "0".to_string(),
                ]),
            }
            notify_one(&name, &argv, user(s).as_ref()).await;
        }
    }
}

/// A `vrrp_sync_group` between its members: their state changes in,
/// [`Event::Sync`] out, the group's own transitions to its notifier.
async fn sync_group(
    name: String,
    members: Vec<mpsc::UnboundedSender<Event>>,
    mut rx: mpsc::UnboundedReceiver<(usize, State, bool)>,
    notify: mpsc::UnboundedSender<(State, u8)>,
) {
    let mut g = super::sync::SyncGroup::new(members.len());
    while let Some((member, state, own_fault)) = rx.recv().await {
        for a in g.update(member, state, own_fault) {
            match a {
                super::sync::SyncAction::Member(i, input) => {
                    if let Some(tx) = members.get(i) {
                        let _ = tx.send(Event::Sync(input));
                    }
                }
                super::sync::SyncAction::Notify(state) => {
                    tracing::info!(group = %name, state = state.as_str(), "({name}) Sync group entering {} state", state.as_str());
                    let _ = notify.send((state, 0));
                }
            }
        }
    }
}

/// Runs a failback gate's command every `interval`, telling the instance
/// whether the gate is open (exit 0 in time).
async fn run_gate(gate: crate::config::GateResolved, tx: mpsc::UnboundedSender<Event>) {
    let mut next = Instant::now();
    let mut was: Option<bool> = None;
    loop {
        tokio::time::sleep_until(next).await;
        next += gate.interval;
        let open = match run_command(&gate.argv, None, gate.timeout).await {
            Ok(0) => true,
            Ok(code) => {
                tracing::debug!(instance = %gate.instance, code, "failback gate check failed");
                false
            }
            Err(e) => {
                tracing::debug!(instance = %gate.instance, error = %e, "failback gate check failed");
                false
            }
        };
        if was != Some(open) {
            tracing::info!(instance = %gate.instance, open, "failback gate {}", if open { "open" } else { "closed" });
            was = Some(open);
        }
        if tx.send(Event::Gate(open)).is_err() {
            return;
        }
        let now = Instant::now();
        if next < now {
            next = now;
        }
    }
}

async fn notify_one(instance: &str, argv: &[String], user: Option<&ScriptUser>) {
    match run_command(argv, user, NOTIFY_TIMEOUT).await {
        Ok(0) => tracing::debug!(instance, script = ?argv, "notify script done"),
        Ok(code) => tracing::warn!(instance, script = ?argv, code, "notify script failed"),
        Err(e) => tracing::warn!(instance, script = ?argv, error = %e, "notify script failed"),
    }
}

/// Runs `argv` (no shell) as `user` (root when none) in its own process
/// group with a clean environment; at `timeout` the group gets TERM, then
/// KILL [`KILL_GRACE`] later. `Ok`: the exit code.
pub async fn run_command(
    argv: &[String],
    user: Option<&ScriptUser>,
    timeout: Duration,
) -> Result<i32, String> {
    use nix::sys::signal::{killpg, Signal};
    use nix::unistd::Pid;
    let Some(prog) = argv.first() else {
        return Err("empty command".into());
    };
    // Looked up off the loop: a stalled NSS must not stop the adverts.
    let account = match user {
        Some(u) => {
            let (name, group) = (u.user.clone(), u.group.clone());
            let what = format!("looking up user `{}`", u.user);
            Some(
                crate::agents::exec::lookup(&what, move || account(&name, group.as_deref()))
                    .await??,
            )
        }
        None => None,
    };
    let mut cmd = crate::agents::exec::clean_command(prog, account.as_ref().map(|(u, _)| u));
    if let Some((_, gid)) = &account {
        cmd.gid(gid.as_raw());
    }
    cmd.args(&argv[1..])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true);
    let mut child = cmd.spawn().map_err(|e| format!("{prog}: {e}"))?;
    let pgid = child.id().map(|id| Pid::from_raw(id as i32));
    let status = match tokio::time::timeout(timeout, child.wait()).await {
        Ok(st) => st.map_err(|e| format!("{prog}: wait: {e}"))?,
        Err(_) => {
            if let Some(g) = pgid {
                let _ = killpg(g, Signal::SIGTERM);
            }
            if tokio::time::timeout(KILL_GRACE, child.wait())
                .await
                .is_err()
            {
                if let Some(g) = pgid {
                    let _ = killpg(g, Signal::SIGKILL);
                }
                let _ = tokio::time::timeout(Duration::from_secs(5), child.wait()).await;
            } else if let Some(g) = pgid {
                // The leader is gone; its children may not be.
                let _ = killpg(g, Signal::SIGKILL);
            }
            return Err(format!(
                "{prog}: timed out after {}: killed",
                crate::config::format_duration(timeout)
            ));
        }
    };
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(c), _) => Ok(c),
        (None, Some(s)) => Err(format!("{prog}: killed by signal {s}")),
        _ => Err(format!("{prog}: ended without a status")),
    }
}

/// The account a script runs as: `user`, with `group`'s gid when given
/// (else the user's own). NSS: call it only through
/// [`crate::agents::exec::lookup`].
fn account(
    user: &str,
    group: Option<&str>,
) -> Result<(nix::unistd::User, nix::unistd::Gid), String> {
    use nix::unistd::{Group, User};
    let pw = User::from_name(user)
        .map_err(|e| format!("cannot look up user `{user}`: {e}"))?
        .ok_or_else(|| format!("no user `{user}`"))?;
    let gid = match group {
        Some(g) => {
            Group::from_name(g)
                .map_err(|e| format!("cannot look up group `{g}`: {e}"))?
                .ok_or_else(|| format!("no group `{g}`"))?
                .gid
        }
        None => pw.gid,
    };
    Ok((pw, gid))
}

#[cfg(test)]
mod tests;
