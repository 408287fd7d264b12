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
use super::packet::{self, Advert, Expected, Packet, V3Checksum, Version};
use super::state::{Input, Instance, InstanceConfig, Output, State, TrackScript};
use crate::agents::arp::{self, ArpSocket, Mac};
use crate::agents::ipaddr::{self, HostAddr, IpAddrArgs, Link};
use socket2::{Domain, InterfaceIndexOrAddress, Protocol, SockAddr, Socket, Type};
use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::unix::AsyncFd;
use tokio::io::Interest;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;

mod error;
mod network;
mod nft;
mod scripts;
mod task;

pub use error::{NftError, NoSuchInstance, ScriptError, StartError};
use network::{link_up, receive, watch_links, VrrpSocket};
pub use nft::NFT_TABLE;
use nft::{find_nft, Firewall};
pub use scripts::run_command;
use scripts::{notifier, run_gate, run_script, Kind};
use task::{sync_group, InstanceTask};

pub use crate::ctl::VrrpStatus;

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
/// How long [`VrrpHandle::shutdown`] waits for an instance (its STOP notify
/// scripts included).
const SHUTDOWN_WAIT: Duration = Duration::from_secs(65);

/// The VRRP runtime's entry point.
pub struct VrrpRuntime;

/// The running instances (`Send + Sync`: share it in an `Arc` with the
/// control server); dropping it aborts them without the shutdown adverts
/// (use [`VrrpHandle::shutdown`] first).
pub struct VrrpHandle {
    instances: Vec<InstanceHandle>,
    background: Vec<JoinHandle<()>>,
}

struct InstanceHandle {
    name: String,
    tx: mpsc::UnboundedSender<Event>,
    /// What the instance's task last published (it owns the status; the
    /// last value stays readable after the task ended).
    status: watch::Receiver<VrrpStatus>,
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
    /// A datagram on the instance's interface that is no VRRP packet
    /// (counted in its status by this reason).
    Malformed(&'static str),
    Shutdown,
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
    pub async fn start(conf: KeepalivedConf, opts: VrrpOptions) -> Result<VrrpHandle, StartError> {
        let problems = conf::unsupported(&conf);
        if !problems.is_empty() {
            return Err(StartError::Unsupported(problems));
        }
        let firewall = if conf.instances.iter().any(|i| !i.accept()) {
            let nft = find_nft().ok_or(StartError::NoNft)?;
            Some(Arc::new(Firewall::new(nft)))
        } else {
            None
        };
        let (links, addrs) = ipaddr::snapshot().await?;
        let link = |name: &str| -> Result<&Link, StartError> {
            links
                .iter()
                .find(|l| l.name == name)
                .ok_or_else(|| StartError::NoInterface {
                    name: name.to_string(),
                })
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
                    .map_err(|source| StartError::Socket {
                        interface: i.interface.clone(),
                        source,
                    })?;
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

        let mut instances = Vec::new();
        let mut routes: BTreeMap<String, Routes> = BTreeMap::new();
        let mut script_subscribers: BTreeMap<String, Vec<mpsc::UnboundedSender<Event>>> =
            BTreeMap::new();
        let epoch = Instant::now();
        let mut pending = Vec::new();
        for i in &conf.instances {
            let l = link(&i.interface)?;
            let src = match i.unicast_src_ip {
                Some(a) => a,
                None => primary_address(l, &addrs, &all_vips).ok_or_else(|| {
                    StartError::NoSourceAddress {
                        instance: i.name.clone(),
                        interface: i.interface.clone(),
                    }
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
            let status = VrrpStatus {
                name: i.name.clone(),
                vrid: i.vrid,
                interface: i.interface.clone(),
                state: State::Init.as_str().to_string(),
                priority: cfg.priority,
                effective_priority: cfg.priority,
                master: None,
                vips: vip_args.iter().map(|a| a.addr.to_string()).collect(),
                drops: BTreeMap::new(),
            };
            let (status_tx, status_rx) = watch::channel(status);
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
                status: status_tx,
                ignored_link,
                dropped: 0,
                send_errors: 0,
                group: None,
                reported: None,
                firewall: firewall.clone().filter(|_| !i.accept()),
            };
            // Spawned once every instance is known to start: a failed start
            // leaves nothing running.
            pending.push((task, rx, notify_rx, i.notify.clone(), tx, status_rx));
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
                    return Err(StartError::NoGateInstance {
                        instance: gate.instance.clone(),
                    });
                }
            }
        }
        for (mut task, rx, notify_rx, notifies, tx, status) in pending {
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
                status,
                task: Mutex::new(Some(tokio::spawn(task.run(rx)))),
            });
        }

        for (iface, sock) in sockets {
            let r = routes.remove(&iface).unwrap_or_default();
            let on_iface: Vec<_> = conf
                .instances
                .iter()
                .zip(&instances)
                .filter(|(i, _)| i.interface == iface)
                .map(|(_, h)| h.tx.clone())
                .collect();
            background.push(tokio::spawn(receive(sock, r, opts.v3_checksum, on_iface)));
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
            background,
        })
    }
}

impl VrrpHandle {
    /// Every instance, in configuration order.
    pub fn status(&self) -> Vec<VrrpStatus> {
        self.instances
            .iter()
            .map(|h| h.status.borrow().clone())
            .collect()
    }

    /// The instances `instance` names: one by name, or all for `None` or
    /// `"all"`.
    fn select(&self, instance: Option<&str>) -> Result<Vec<&InstanceHandle>, NoSuchInstance> {
        match instance {
            None | Some("all") => Ok(self.instances.iter().collect()),
            Some(name) => match self.instances.iter().find(|h| h.name == name) {
                Some(h) => Ok(vec![h]),
                None => Err(NoSuchInstance {
                    name: name.to_string(),
                    instances: self.instances.iter().map(|h| h.name.clone()).collect(),
                }),
            },
        }
    }

    fn send(
        &self,
        instance: Option<&str>,
        ev: fn() -> Event,
    ) -> Result<Vec<String>, NoSuchInstance> {
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
    pub fn standby(&self, instance: Option<&str>) -> Result<Vec<String>, NoSuchInstance> {
        self.send(instance, || Event::Standby)
    }

    /// `hbctl takeover [INSTANCE|all]`: lifts standby and preempts a lower
    /// priority master at once (nopreempt notwithstanding). Returns the
    /// instances told.
    pub fn takeover(&self, instance: Option<&str>) -> Result<Vec<String>, NoSuchInstance> {
        self.send(instance, || Event::Takeover)
    }

    /// The failback gate's check result for an instance configured with one
    /// ([`VrrpOptions::failback_gates`]).
    pub fn failback_gate(&self, instance: &str, open: bool) -> Result<(), NoSuchInstance> {
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

async fn sleep_until_opt(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests;
