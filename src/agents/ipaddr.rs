//! Built-in `IPaddr` / `IPaddr2`: an IPv4 alias address added and removed
//! through rtnetlink, announced with gratuitous ARPs.
//!
//! heartbeat's two agents differ only in the tool they run (`ifconfig` alias
//! interfaces versus `ip addr`); here both add the address with its label, so
//! `ifconfig` still shows `eth0:0`. The agent runs in the node's network
//! namespace (the daemon is started under `ip netns exec`), so the sockets of
//! this process see the right interfaces; nothing here calls `setns`.
//!
//! Start, in order:
//! 1. read the interfaces and their addresses (one netlink dump each) and
//!    decide the interface, prefix and broadcast ([`plan_start`], no I/O);
//! 2. if the address is already there: nothing to add (start is idempotent);
//! 3. otherwise duplicate-address probes (RFC 5227, with a LAN's timing
//!    within `arp_probe` or RFC 5227's own): an answer from another host
//!    refuses the start rather than taking an address someone holds. The
//!    probing may have begun before the start ([`preprobe`]: the daemon
//!    begins it when the holder's heartbeats are late), then what counts is
//!    that the latest probes got no answer (see [`arp::Prober`]); it is
//!    skipped when the node that held the address released it
//!    ([`start_released`]);
//! 4. add the address (prefix, broadcast, label);
//! 5. gratuitous ARPs (RFC 5227 announcements) from the interface's MAC: the
//!    first before `start` returns, the other `arp_count - 1` every
//!    `arp_interval` from a background task, so failover does not wait on
//!    them.

use super::arp::{self, ArpSocket, Conflict, Mac};
use super::{AgentError, ArgsError, Options, PlanError, Running};
use futures::TryStreamExt;
use rtnetlink::packet_route::address::{AddressAttribute, AddressMessage};
use rtnetlink::packet_route::link::{LinkAttribute, LinkFlags, LinkMessage};
use rtnetlink::packet_route::AddressFamily;
use rtnetlink::LinkUnspec;
use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::{Arc, LazyLock, Mutex};

/// `IP[/BITS[/IFACE[/BROADCAST]]]`, heartbeat's IPaddr argument; IFACE may
/// carry a label (`eth1:0`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IpAddrArgs {
    pub addr: Ipv4Addr,
    pub prefix: Option<u8>,
    /// The interface (without the label).
    pub iface: Option<String>,
    /// The full label, `eth1:0`, when one was given.
    pub label: Option<String>,
    pub broadcast: Option<Ipv4Addr>,
}

/// Longest interface name or address label the kernel keeps (IFNAMSIZ - 1).
pub(super) const IFNAMSIZ_MAX: usize = 15;

pub(super) const USAGE: &str =
    "IPaddr takes one argument: IP[/BITS[/IFACE[/BROADCAST]]], e.g. IPaddr2::192.0.2.100/24/eth0:0";

/// Parses the `::` arguments of `IPaddr`/`IPaddr2` (or a bare address).
/// Empty fields mean "find it out" (`192.0.2.100//eth0`), as in heartbeat.
pub fn parse_args(args: &[&str]) -> Result<IpAddrArgs, ArgsError> {
    let arg = match args {
        [] => return Err(ArgsError::IpNoAddress),
        [a] => *a,
        _ => return Err(ArgsError::IpArgCount(args.len())),
    };
    let mut fields: Vec<&str> = arg.split('/').collect();
    let written = fields.iter().filter(|f| !f.is_empty()).count();
    if fields.len() > 4 && written > 4 {
        return Err(ArgsError::IpFields {
            arg: arg.into(),
            fields: fields.len(),
        });
    }
    if fields.len() > 4 || (written > 1 && fields[1..].contains(&"")) {
        fields = by_content(&fields);
    }
    let field = |i: usize| fields.get(i).copied().filter(|f| !f.is_empty());

    let addr: Ipv4Addr = fields[0]
        .parse()
        .map_err(|_| ArgsError::IpNotIpv4(fields[0].into()))?;
    if addr.is_unspecified() || addr.is_broadcast() || addr.is_multicast() || addr.is_loopback() {
        return Err(ArgsError::IpNotService(addr));
    }
    let prefix = field(1).map(parse_prefix).transpose()?;
    let (iface, label) = match field(2) {
        None => (None, None),
        Some(f) => {
            let (iface, label) = parse_iface(f)?;
            (Some(iface), label)
        }
    };
    let broadcast = field(3)
        .map(|b| {
            b.parse::<Ipv4Addr>()
                .map_err(|_| ArgsError::IpBroadcast(b.into()))
        })
        .transpose()?;
    if broadcast == Some(addr) {
        return Err(ArgsError::IpBroadcastIsAddress(addr));
    }
    Ok(IpAddrArgs {
        addr,
        prefix,
        iface,
        label,
        broadcast,
    })
}

/// The fields of an argument with empty ones (`192.0.2.1//8/eth0`,
/// `192.0.2.1//eth0`) put in their places by what they look like: heartbeat
/// collapses doubled slashes, and an empty field also means "find it out",
/// so the position alone does not say which is which. A prefix or netmask
/// comes before the interface, an address after it is the broadcast.
fn by_content<'a>(fields: &[&'a str]) -> Vec<&'a str> {
    let mut out = vec![fields[0], "", "", ""];
    for f in fields[1..].iter().copied().filter(|f| !f.is_empty()) {
        let slot = if out[1].is_empty() && out[2].is_empty() && parse_prefix(f).is_ok() {
            1
        } else if out[2].is_empty() && out[3].is_empty() && f.parse::<Ipv4Addr>().is_err() {
            2
        } else {
            3
        };
        if !out[slot].is_empty() {
            // Two of a kind: read by position, which says what is wrong.
            return fields.to_vec();
        }
        out[slot] = f;
    }
    out
}

/// `24`, or a contiguous dotted netmask `255.255.255.0` (heartbeat's IPaddr
/// accepted both).
fn parse_prefix(s: &str) -> Result<u8, ArgsError> {
    if let Ok(n) = s.parse::<u8>() {
        if (1..=32).contains(&n) {
            return Ok(n);
        }
        return Err(ArgsError::IpPrefixRange(s.into()));
    }
    if let Ok(mask) = s.parse::<Ipv4Addr>() {
        let m = u32::from(mask);
        // Contiguous: the ones, then only zeros.
        if m != 0 && m.leading_ones() + m.trailing_zeros() == 32 {
            return Ok(m.leading_ones() as u8);
        }
        return Err(ArgsError::IpNetmask(s.into()));
    }
    Err(ArgsError::IpNotPrefix(s.into()))
}

/// `eth1` or `eth1:0` -> (`eth1`, label). The kernel's rules for names
/// (`dev_valid_name`): 1..=15 bytes, not `.`/`..`, no `/`, `:` or space.
fn parse_iface(f: &str) -> Result<(String, Option<String>), ArgsError> {
    let (iface, label) = match f.split_once(':') {
        Some((i, suffix)) => {
            if suffix.is_empty() {
                return Err(ArgsError::IpEmptyLabel(f.into()));
            }
            (i, Some(f))
        }
        None => (f, None),
    };
    let bad_char = |c: char| c == '/' || c.is_whitespace() || c.is_control();
    if iface.is_empty()
        || iface.len() > IFNAMSIZ_MAX
        || iface == "."
        || iface == ".."
        || iface.chars().any(|c| bad_char(c) || c == ':')
    {
        return Err(ArgsError::IpIface(iface.into()));
    }
    if let Some(l) = label {
        if l.len() > IFNAMSIZ_MAX || l.chars().any(bad_char) {
            return Err(ArgsError::IpLabel(l.into()));
        }
    }
    Ok((iface.to_string(), label.map(str::to_string)))
}

fn netmask(prefix: u8) -> u32 {
    match prefix {
        0 => 0,
        p => u32::MAX << (32 - u32::from(p.min(32))),
    }
}

/// Whether `ip` is in `net/prefix`.
pub fn in_subnet(ip: Ipv4Addr, net: Ipv4Addr, prefix: u8) -> bool {
    let m = netmask(prefix);
    u32::from(ip) & m == u32::from(net) & m
}

/// The directed broadcast of `addr/prefix`; none for /31 (RFC 3021) and /32.
pub fn default_broadcast(addr: Ipv4Addr, prefix: u8) -> Option<Ipv4Addr> {
    (prefix < 31).then(|| Ipv4Addr::from(u32::from(addr) | !netmask(prefix)))
}

/// One interface, as a netlink link dump shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    pub index: u32,
    pub name: String,
    /// The Ethernet address; `None` for links without one.
    pub mac: Option<Mac>,
    pub up: bool,
    /// Speaks ARP: has a MAC, is neither loopback nor `NOARP`.
    pub arp: bool,
}

/// One IPv4 address of the host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostAddr {
    pub index: u32,
    pub addr: Ipv4Addr,
    pub prefix: u8,
}

/// What [`start`] will do, decided from a snapshot of the host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StartPlan {
    pub link: Link,
    pub prefix: u8,
    pub broadcast: Option<Ipv4Addr>,
    pub label: Option<String>,
    /// The address is already on `link`: nothing to add.
    pub present: bool,
}

/// heartbeat's findif: the interface with an address whose subnet contains
/// `ip` (the most specific subnet if several do), and that subnet's prefix.
/// The address itself is skipped, so a /32 copy of it does not count.
pub fn findif(ip: Ipv4Addr, addrs: &[HostAddr]) -> Option<&HostAddr> {
    addrs
        .iter()
        .filter(|h| h.addr != ip && in_subnet(ip, h.addr, h.prefix))
        .max_by_key(|h| (h.prefix, std::cmp::Reverse(h.index)))
}

/// Decides the interface, prefix and broadcast of `a` on a host with `links`
/// and `addrs`. Errors name the address and the interface.
pub fn plan_start(
    a: &IpAddrArgs,
    links: &[Link],
    addrs: &[HostAddr],
) -> Result<StartPlan, PlanError> {
    let ip = a.addr;
    let link_of = |index: u32| links.iter().find(|l| l.index == index);
    let holders: Vec<&HostAddr> = addrs.iter().filter(|h| h.addr == ip).collect();
    let (link, present, prefix) =
        match &a.iface {
            Some(name) => {
                let link = links.iter().find(|l| &l.name == name).ok_or_else(|| {
                    PlanError::NoInterface {
                        ip,
                        iface: name.clone(),
                    }
                })?;
                if let Some(h) = holders.iter().find(|h| h.index == link.index) {
                    (link, true, h.prefix)
                } else if let Some(other) = holders.first().and_then(|h| link_of(h.index)) {
                    return Err(PlanError::Elsewhere {
                        ip,
                        on: other.name.clone(),
                        iface: name.clone(),
                    });
                } else {
                    let subnet = addrs
                        .iter()
                        .filter(|h| h.index == link.index)
                        .filter(|h| h.addr != ip && in_subnet(ip, h.addr, h.prefix))
                        .map(|h| h.prefix)
                        .max();
                    let prefix = a.prefix.or(subnet).ok_or_else(|| PlanError::NoPrefix {
                        ip,
                        iface: name.clone(),
                    })?;
                    (link, false, prefix)
                }
            }
            None => {
                if let Some((h, link)) = holders.iter().find_map(|h| Some((h, link_of(h.index)?))) {
                    (link, true, h.prefix)
                } else {
                    let found = findif(ip, addrs).ok_or(PlanError::NoSubnet { ip })?;
                    let link = link_of(found.index).ok_or(PlanError::Vanished {
                        ip,
                        subnet: found.addr,
                    })?;
                    (link, false, a.prefix.unwrap_or(found.prefix))
                }
            }
        };
    Ok(StartPlan {
        link: link.clone(),
        prefix,
        broadcast: a.broadcast.or_else(|| default_broadcast(ip, prefix)),
        label: a.label.clone(),
        present,
    })
}

/// Whether `a` is configured: on its interface, or on any when none is given.
pub fn is_present(a: &IpAddrArgs, links: &[Link], addrs: &[HostAddr]) -> bool {
    addrs
        .iter()
        .filter(|h| h.addr == a.addr)
        .any(|h| match &a.iface {
            None => true,
            Some(name) => links.iter().any(|l| l.index == h.index && &l.name == name),
        })
}

/// Background gratuitous-ARP tasks, by address: `stop` (or a new `start`)
/// ends the one of its address.
static ANNOUNCERS: LazyLock<Mutex<HashMap<Ipv4Addr, tokio::task::AbortHandle>>> =
    LazyLock::new(|| Mutex::new(HashMap::new()));

fn replace_announcer(ip: Ipv4Addr, task: Option<tokio::task::AbortHandle>) {
    let mut map = ANNOUNCERS.lock().unwrap_or_else(|e| e.into_inner());
    let old = match task {
        Some(t) => map.insert(ip, t),
        None => map.remove(&ip),
    };
    if let Some(old) = old {
        old.abort();
    }
}

/// Waits until every background gratuitous-ARP burst has been sent (for a
/// short-lived caller such as `hbctl resource ... start`, whose runtime would
/// otherwise end them).
pub async fn announcements_done() {
    loop {
        let pending = ANNOUNCERS
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .any(|t| !t.is_finished());
        if !pending {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

/// The interfaces and IPv4 addresses of this network namespace (one netlink
/// dump each), as [`plan_start`] sees them.
pub async fn snapshot() -> Result<(Vec<Link>, Vec<HostAddr>), AgentError> {
    Netlink::open()?.snapshot().await
}

/// Sends the gratuitous ARPs of a started address again (`arp_count`,
/// `arp_interval` apart), when the address is on an interface here: after a
/// healed partition, clients may still have another node's MAC cached.
/// Returns false when the address is not here. The burst is registered like
/// `start`'s, so `stop` ends it, and each ARP goes out only while the
/// address is still here: a node that gives the address up never announces
/// it afterwards (the next holder's duplicate-address probe would see it).
pub async fn reannounce(a: &IpAddrArgs, o: &Options) -> Result<bool, AgentError> {
    let (links, addrs) = snapshot().await?;
    let Ok(plan) = plan_start(a, &links, &addrs) else {
        return Ok(false);
    };
    let (true, true, Some(mac)) = (plan.present, plan.link.arp, plan.link.mac) else {
        return Ok(false);
    };
    let sock = ArpSocket::open(plan.link.index)
        .map_err(|e| AgentError::Failed(format!("announcing {}: {e}", a.addr)))?;
    let ip = a.addr;
    let (a, count, interval) = (a.clone(), o.arp_count.max(1), o.arp_interval);
    let task = tokio::spawn(async move {
        for n in 0..count {
            if n > 0 {
                tokio::time::sleep(interval).await;
            }
            let still_here = match snapshot().await {
                Ok((links, addrs)) => plan_start(&a, &links, &addrs).is_ok_and(|p| p.present),
                Err(_) => false,
            };
            if !still_here {
                return;
            }
            if let Err(e) = arp::announce(&sock, mac, a.addr) {
                tracing::warn!(ip = %a.addr, error = %e, "gratuitous ARP failed");
            }
        }
    });
    replace_announcer(ip, Some(task.abort_handle()));
    Ok(true)
}

pub async fn start(a: &IpAddrArgs, o: &Options) -> Result<(), AgentError> {
    start_released(a, o, false).await
}

/// A pre-probe under way for an address (see [`preprobe`]).
struct PreProbe {
    shared: Arc<arp::SharedProber>,
    ifindex: u32,
    mac: Mac,
    task: tokio::task::AbortHandle,
}

impl Drop for PreProbe {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Pre-probes by address.
static PREPROBES: LazyLock<Mutex<HashMap<Ipv4Addr, PreProbe>>> =
    LazyLock::new(|| Mutex::new(HashMap::new()));

/// The pre-probe of `ip` if one still runs on interface `ifindex` with
/// `mac`; it is removed from the registry either way.
fn take_preprobe(ip: Ipv4Addr, ifindex: u32, mac: Option<Mac>) -> Option<PreProbe> {
    let pre = PREPROBES
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .remove(&ip)?;
    if pre.task.is_finished() || pre.ifindex != ifindex || Some(pre.mac) != mac {
        return None;
    }
    Some(pre)
}

/// Starts (or keeps going for `keep` more) duplicate-address probing for
/// `a` before its start is asked for: while the node holding it is late,
/// so that when it is declared dead the answer is already in (see
/// [`arp::Prober`] for what counts). A later [`start_released`] of the
/// address uses it; without a start it ends `keep` after the last call.
/// Returns false when there is nothing to probe (the address is here, the
/// interface speaks no ARP, or probing is off).
pub async fn preprobe(
    a: &IpAddrArgs,
    o: &Options,
    keep: std::time::Duration,
) -> Result<bool, AgentError> {
    let Some(timing) = o.probe_timing() else {
        return Ok(false);
    };
    let until = tokio::time::Instant::now() + keep;
    if let Some(pre) = PREPROBES
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .get(&a.addr)
        .filter(|p| !p.task.is_finished())
    {
        pre.shared.keep_until(until);
        return Ok(true);
    }
    let (links, addrs) = snapshot().await?;
    let Ok(plan) = plan_start(a, &links, &addrs) else {
        return Ok(false);
    };
    let (false, true, Some(mac)) = (plan.present, plan.link.arp, plan.link.mac) else {
        return Ok(false);
    };
    let sock = ArpSocket::open(plan.link.index)
        .map_err(|e| AgentError::Failed(format!("probing for {}: {e}", a.addr)))?;
    let shared = Arc::new(arp::SharedProber::new(timing, until));
    let ip = a.addr;
    let task = {
        let shared = shared.clone();
        tokio::spawn(async move {
            if let Err(e) = shared.run(&sock, mac, ip).await {
                tracing::warn!(%ip, error = %e, "duplicate-address pre-probe failed");
            }
        })
    };
    let old = PREPROBES.lock().unwrap_or_else(|e| e.into_inner()).insert(
        ip,
        PreProbe {
            shared,
            ifindex: plan.link.index,
            mac,
            task: task.abort_handle(),
        },
    );
    drop(old);
    tracing::info!(%ip, iface = %plan.link.name, "duplicate-address probing begun: its holder is late");
    Ok(true)
}

/// [`start`]; `released`: the node that held the address said it released
/// it (its report shows the group stopped), so no other host should answer
/// for it and the duplicate-address probe is skipped.
pub async fn start_released(a: &IpAddrArgs, o: &Options, released: bool) -> Result<(), AgentError> {
    let ip = a.addr;
    let nl = Netlink::open()?;
    let (links, addrs) = nl.snapshot().await?;
    let plan = plan_start(a, &links, &addrs)?;
    let iface = plan.link.name.as_str();
    let failed = |what: &str, e: &dyn std::fmt::Display| {
        AgentError::Failed(format!("{what} {ip} on {iface}: {e}"))
    };

    if !plan.link.up {
        // IPaddr2 does `ip link set IFACE up` after adding the address.
        tracing::info!(iface, "bringing the interface up");
        nl.handle
            .link()
            .set(LinkUnspec::new_with_index(plan.link.index).up().build())
            .execute()
            .await
            .map_err(|e| failed("bringing up the interface for", &NlError(e)))?;
    }

    if plan.present {
        tracing::info!(%ip, iface, "address already present");
    } else {
        let timing = o.probe_timing();
        let pre = take_preprobe(ip, plan.link.index, plan.link.mac);
        match (timing, plan.link.arp, plan.link.mac) {
            _ if released => {
                tracing::info!(%ip, iface, "no duplicate-address probe: the node that held the address released it");
            }
            (Some(timing), true, Some(mac)) => {
                let found = match pre {
                    Some(pre) => {
                        // Keep its task alive for a full probe at most.
                        let bound =
                            timing.wait + timing.interval_max * (timing.probes + 1) + timing.listen;
                        pre.shared.keep_until(tokio::time::Instant::now() + bound);
                        let v = pre.shared.verdict().await;
                        tracing::info!(%ip, iface, verdict = ?v, "duplicate-address probe (begun before the start)");
                        Ok(match v {
                            arp::Verdict::Start => None,
                            arp::Verdict::Conflict(c) => Some(c),
                        })
                    }
                    None => arp::probe(plan.link.index, mac, ip, timing).await,
                };
                match found {
                    Ok(None) => {}
                    Ok(Some(Conflict::Answered(other))) => {
                        return Err(AgentError::Failed(format!(
                            "{ip} is already answered by {other} on {iface}: another host holds it"
                        )))
                    }
                    Ok(Some(Conflict::Probing(other))) => {
                        return Err(AgentError::Failed(format!(
                            "{other} is probing for {ip} on {iface} too: another host is taking it"
                        )))
                    }
                    Err(e) => return Err(failed("probing for", &e)),
                }
            }
            _ => {}
        }
        match nl.add(ip, &plan).await {
            Ok(()) => {}
            // Added by someone else since the dump: it is there, as asked.
            Err(e) if e.errno() == Some(libc::EEXIST) => {}
            Err(e) => return Err(failed("adding", &e)),
        }
        tracing::info!(
            %ip,
            iface,
            prefix = plan.prefix,
            broadcast = %plan.broadcast.map_or("none".into(), |b| b.to_string()),
            label = plan.label.as_deref().unwrap_or(""),
            "address added"
        );
    }

    let (true, Some(mac), 1..) = (plan.link.arp, plan.link.mac, o.arp_count) else {
        return Ok(());
    };
    let sock = ArpSocket::open(plan.link.index).map_err(|e| failed("announcing", &e))?;
    arp::announce(&sock, mac, ip).map_err(|e| failed("announcing", &e))?;
    let rest = o.arp_count - 1;
    if rest > 0 {
        let interval = o.arp_interval;
        let iface = iface.to_string();
        let task = tokio::spawn(async move {
            for _ in 0..rest {
                tokio::time::sleep(interval).await;
                if let Err(e) = arp::announce(&sock, mac, ip) {
                    tracing::warn!(%ip, iface, error = %e, "gratuitous ARP failed");
                }
            }
        });
        replace_announcer(ip, Some(task.abort_handle()));
    }
    Ok(())
}

pub async fn stop(a: &IpAddrArgs, _o: &Options) -> Result<(), AgentError> {
    replace_announcer(a.addr, None);
    let nl = Netlink::open()?;
    let links = nl.links().await?;
    for (h, msg) in nl.addr_messages().await? {
        if !is_present(a, &links, std::slice::from_ref(&h)) {
            continue;
        }
        let iface = links
            .iter()
            .find(|l| l.index == h.index)
            .map_or_else(|| format!("ifindex {}", h.index), |l| l.name.clone());
        match nl
            .handle
            .address()
            .del(msg)
            .execute()
            .await
            .map_err(NlError)
        {
            Ok(()) => tracing::info!(ip = %a.addr, iface, "address removed"),
            // Already gone (removed with its primary, or by someone else).
            Err(e) if e.errno() == Some(libc::EADDRNOTAVAIL) => {}
            Err(e) => {
                return Err(AgentError::Failed(format!(
                    "removing {} from {iface}: {e}",
                    a.addr
                )))
            }
        }
    }
    Ok(())
}

pub async fn status(a: &IpAddrArgs) -> Result<Running, AgentError> {
    let nl = Netlink::open()?;
    let (links, addrs) = nl.snapshot().await?;
    Ok(if is_present(a, &links, &addrs) {
        Running::Running
    } else {
        Running::Stopped
    })
}

/// An rtnetlink error shown as the errno it carries.
struct NlError(rtnetlink::Error);

impl NlError {
    fn errno(&self) -> Option<i32> {
        match &self.0 {
            rtnetlink::Error::NetlinkError(m) => Some(-m.raw_code()),
            _ => None,
        }
    }
}

impl std::fmt::Display for NlError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.0 {
            rtnetlink::Error::NetlinkError(m) => write!(f, "{}", m.to_io()),
            e => write!(f, "{e}"),
        }
    }
}

/// An rtnetlink connection of this process's network namespace, closed on
/// drop.
struct Netlink {
    handle: rtnetlink::Handle,
    conn: tokio::task::JoinHandle<()>,
}

impl Drop for Netlink {
    fn drop(&mut self) {
        self.conn.abort();
    }
}

impl Netlink {
    fn open() -> Result<Netlink, AgentError> {
        let (conn, handle, _) = rtnetlink::new_connection()
            .map_err(|e| AgentError::Failed(format!("opening a netlink socket: {e}")))?;
        Ok(Netlink {
            handle,
            conn: tokio::spawn(conn),
        })
    }

    async fn snapshot(&self) -> Result<(Vec<Link>, Vec<HostAddr>), AgentError> {
        let links = self.links().await?;
        let addrs = self.addr_messages().await?;
        Ok((links, addrs.into_iter().map(|(h, _)| h).collect()))
    }

    async fn links(&self) -> Result<Vec<Link>, AgentError> {
        let msgs: Vec<LinkMessage> = self
            .handle
            .link()
            .get()
            .execute()
            .try_collect()
            .await
            .map_err(|e| AgentError::Failed(format!("listing interfaces: {}", NlError(e))))?;
        Ok(msgs.iter().filter_map(link_of).collect())
    }

    /// The IPv4 addresses, with the message that deletes each.
    async fn addr_messages(&self) -> Result<Vec<(HostAddr, AddressMessage)>, AgentError> {
        let msgs: Vec<AddressMessage> =
            self.handle
                .address()
                .get()
                .execute()
                .try_collect()
                .await
                .map_err(|e| AgentError::Failed(format!("listing addresses: {}", NlError(e))))?;
        Ok(msgs
            .into_iter()
            .filter_map(|m| Some((host_addr_of(&m)?, m)))
            .collect())
    }

    async fn add(&self, ip: Ipv4Addr, plan: &StartPlan) -> Result<(), NlError> {
        let mut req = self
            .handle
            .address()
            .add(plan.link.index, IpAddr::V4(ip), plan.prefix);
        // The builder computes its own broadcast; ours (given, or none for
        // /31 and /32) replaces it.
        let attrs = &mut req.message_mut().attributes;
        attrs.retain(|a| !matches!(a, AddressAttribute::Broadcast(_)));
        if let Some(b) = plan.broadcast {
            attrs.push(AddressAttribute::Broadcast(b));
        }
        if let Some(l) = &plan.label {
            attrs.push(AddressAttribute::Label(l.clone()));
        }
        req.execute().await.map_err(NlError)
    }
}

fn link_of(m: &LinkMessage) -> Option<Link> {
    let mut name = None;
    let mut mac = None;
    for a in &m.attributes {
        match a {
            LinkAttribute::IfName(n) => name = Some(n.clone()),
            LinkAttribute::Address(b) => mac = Mac::from_slice(b),
            _ => {}
        }
    }
    let flags = m.header.flags;
    let mac = mac.filter(|m| *m != Mac::ZERO);
    Some(Link {
        index: m.header.index,
        name: name?,
        mac,
        up: flags.contains(LinkFlags::Up),
        arp: mac.is_some() && !flags.intersects(LinkFlags::Noarp | LinkFlags::Loopback),
    })
}

fn host_addr_of(m: &AddressMessage) -> Option<HostAddr> {
    if m.header.family != AddressFamily::Inet {
        return None;
    }
    // IFA_LOCAL is the interface's own address; IFA_ADDRESS is the peer's
    // on point-to-point links and equal to it otherwise.
    let mut local = None;
    let mut address = None;
    for a in &m.attributes {
        match a {
            AddressAttribute::Local(IpAddr::V4(ip)) => local = Some(*ip),
            AddressAttribute::Address(IpAddr::V4(ip)) => address = Some(*ip),
            _ => {}
        }
    }
    Some(HostAddr {
        index: m.header.index,
        addr: local.or(address)?,
        prefix: m.header.prefix_len,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Result<IpAddrArgs, ArgsError> {
        parse_args(&[s])
    }

    #[test]
    fn futures_are_send() {
        // The daemon spawns agent calls on its multi-threaded runtime.
        fn send<T: Send>(_: &T) {}
        let a = p("192.0.2.100").unwrap();
        let o = Options::default();
        send(&start(&a, &o));
        send(&stop(&a, &o));
        send(&status(&a));
    }

    #[test]
    fn parses_heartbeats_forms() {
        let a = p("192.0.2.100").unwrap();
        assert_eq!(a.addr, Ipv4Addr::new(192, 0, 2, 100));
        assert_eq!(
            (a.prefix, a.iface, a.label, a.broadcast),
            (None, None, None, None)
        );

        let a = p("192.0.2.100/24/eth1:0/192.0.2.255").unwrap();
        assert_eq!(a.prefix, Some(24));
        assert_eq!(a.iface.as_deref(), Some("eth1"));
        assert_eq!(a.label.as_deref(), Some("eth1:0"));
        assert_eq!(a.broadcast, Some(Ipv4Addr::new(192, 0, 2, 255)));

        let a = p("192.0.2.100/255.255.255.128/eth0").unwrap();
        assert_eq!((a.prefix, a.label), (Some(25), None));
        // Empty fields: found at start.
        let a = p("192.0.2.100//eth0").unwrap();
        assert_eq!((a.prefix, a.iface.as_deref()), (None, Some("eth0")));
        assert_eq!(p("198.51.100.9/32").unwrap().prefix, Some(32));
        // Doubled slashes collapse: each field goes where its form says.
        let a = p("10.0.0.1//8/eth0").unwrap();
        assert_eq!((a.prefix, a.iface.as_deref()), (Some(8), Some("eth0")));
        let a = p("192.0.2.100//24//eth0:1").unwrap();
        assert_eq!((a.prefix, a.label.as_deref()), (Some(24), Some("eth0:1")));
        let a = p("192.0.2.100/24//192.0.2.255").unwrap();
        assert_eq!(
            (a.prefix, a.iface, a.broadcast),
            (Some(24), None, Some(Ipv4Addr::new(192, 0, 2, 255)))
        );
        let a = p("192.0.2.100///192.0.2.127").unwrap();
        assert_eq!(
            (a.prefix, a.broadcast),
            (None, Some(Ipv4Addr::new(192, 0, 2, 127)))
        );
        assert!(p("192.0.2.100//eth0/eth1").is_err());
    }

    #[test]
    fn rejects_with_a_reason() {
        let err = |s: &str| p(s).unwrap_err().to_string();
        assert!(parse_args(&[])
            .unwrap_err()
            .to_string()
            .contains("no address"));
        assert!(parse_args(&["192.0.2.1", "eth0"])
            .unwrap_err()
            .to_string()
            .contains("2 arguments"));
        assert!(err("192.0.2.1000").contains("not an IPv4 address"));
        assert!(err("eth0").contains("not an IPv4 address"));
        assert!(err("0.0.0.0").contains("cannot be a service address"));
        assert!(err("224.0.0.18").contains("cannot be a service address"));
        assert!(err("127.0.0.2").contains("cannot be a service address"));
        assert!(err("192.0.2.1/0").contains("1..=32"));
        assert!(err("192.0.2.1/33").contains("1..=32"));
        assert!(err("192.0.2.1/abc").contains("neither"));
        assert!(err("192.0.2.1/255.0.255.0").contains("not contiguous"));
        assert!(err("192.0.2.1/24/eth0/192.0.2").contains("broadcast"));
        assert!(err("192.0.2.1/24/eth0/192.0.2.1").contains("itself"));
        assert!(err("192.0.2.1/24/eth0/192.0.2.255/x").contains("fields"));
        assert!(err("192.0.2.1/24/averyveryverylongname").contains("not an interface name"));
        assert!(err("192.0.2.1/24/eth 0").contains("not an interface name"));
        assert!(err("192.0.2.1/24/..").contains("not an interface name"));
        assert!(err("192.0.2.1/24/:0").contains("not an interface name"));
        assert!(err("192.0.2.1/24/eth0:").contains("nothing after"));
        assert!(err("192.0.2.1/24/eth0123456:01234").contains("label"));
        assert!(p("192.0.2.1/24/eth012345:01234").is_ok()); // exactly 15 bytes
    }

    #[test]
    fn broadcast_and_subnets() {
        let ip = Ipv4Addr::new(192, 0, 2, 100);
        assert_eq!(
            default_broadcast(ip, 24),
            Some(Ipv4Addr::new(192, 0, 2, 255))
        );
        assert_eq!(
            default_broadcast(ip, 26),
            Some(Ipv4Addr::new(192, 0, 2, 127))
        );
        assert_eq!(
            default_broadcast(ip, 1),
            Some(Ipv4Addr::new(255, 255, 255, 255))
        );
        assert_eq!(default_broadcast(ip, 31), None);
        assert_eq!(default_broadcast(ip, 32), None);
        assert!(in_subnet(ip, Ipv4Addr::new(192, 0, 2, 1), 24));
        assert!(!in_subnet(ip, Ipv4Addr::new(192, 0, 2, 1), 26));
        assert!(in_subnet(ip, Ipv4Addr::new(10, 0, 0, 1), 0));
    }

    fn link(index: u32, name: &str) -> Link {
        Link {
            index,
            name: name.into(),
            mac: Some(Mac([2, 0, 0, 0, 0, index as u8])),
            up: true,
            arp: true,
        }
    }

    fn host(index: u32, addr: [u8; 4], prefix: u8) -> HostAddr {
        HostAddr {
            index,
            addr: addr.into(),
            prefix,
        }
    }

    fn host_net() -> (Vec<Link>, Vec<HostAddr>) {
        (
            vec![link(1, "lo"), link(2, "eth0"), link(3, "eth1")],
            vec![
                host(1, [127, 0, 0, 1], 8),
                host(2, [192, 0, 2, 1], 24),
                host(3, [198, 51, 100, 1], 24),
                host(3, [192, 0, 2, 129], 25),
            ],
        )
    }

    #[test]
    fn findif_picks_the_most_specific_subnet() {
        let (links, addrs) = host_net();
        let plan = plan_start(&p("192.0.2.100").unwrap(), &links, &addrs).unwrap();
        assert_eq!((plan.link.name.as_str(), plan.prefix), ("eth0", 24));
        assert_eq!(plan.broadcast, Some(Ipv4Addr::new(192, 0, 2, 255)));
        assert!(!plan.present);
        let plan = plan_start(&p("192.0.2.200").unwrap(), &links, &addrs).unwrap();
        assert_eq!((plan.link.name.as_str(), plan.prefix), ("eth1", 25));
        // A prefix given without an interface is kept.
        let plan = plan_start(&p("198.51.100.7/32").unwrap(), &links, &addrs).unwrap();
        assert_eq!(
            (plan.link.name.as_str(), plan.prefix, plan.broadcast),
            ("eth1", 32, None)
        );
        let e = plan_start(&p("203.0.113.5").unwrap(), &links, &addrs)
            .unwrap_err()
            .to_string();
        assert!(e.contains("203.0.113.5"), "{e}");
    }

    #[test]
    fn interface_given() {
        let (links, addrs) = host_net();
        let plan = plan_start(&p("192.0.2.100//eth0:0").unwrap(), &links, &addrs).unwrap();
        assert_eq!((plan.prefix, plan.label.as_deref()), (24, Some("eth0:0")));
        let plan = plan_start(
            &p("192.0.2.100/28/eth0/192.0.2.111").unwrap(),
            &links,
            &addrs,
        )
        .unwrap();
        assert_eq!(
            (plan.prefix, plan.broadcast),
            (28, Some(Ipv4Addr::new(192, 0, 2, 111)))
        );
        let e = plan_start(&p("192.0.2.100/24/eth9").unwrap(), &links, &addrs)
            .unwrap_err()
            .to_string();
        assert!(e.contains("eth9") && e.contains("192.0.2.100"), "{e}");
        let e = plan_start(&p("203.0.113.5//eth0").unwrap(), &links, &addrs)
            .unwrap_err()
            .to_string();
        assert!(e.contains("no prefix") && e.contains("eth0"), "{e}");
    }

    #[test]
    fn already_present() {
        let (links, mut addrs) = host_net();
        addrs.push(host(2, [192, 0, 2, 100], 24));
        for spec in ["192.0.2.100", "192.0.2.100/24/eth0:0"] {
            let a = p(spec).unwrap();
            let plan = plan_start(&a, &links, &addrs).unwrap();
            assert!(plan.present && plan.link.name == "eth0", "{spec}");
            assert!(is_present(&a, &links, &addrs));
        }
        let a = p("192.0.2.100/24/eth1").unwrap();
        assert!(!is_present(&a, &links, &addrs));
        let e = plan_start(&a, &links, &addrs).unwrap_err().to_string();
        assert!(e.contains("already on eth0"), "{e}");
        assert!(!is_present(&p("192.0.2.101").unwrap(), &links, &addrs));
    }
}
