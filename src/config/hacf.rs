//! `ha.cf` with heartbeat 3.0's syntax, defaults and checks.

use super::Location;
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AutoFailback {
    On,
    Off,
    /// heartbeat's default: `on` unless a peer runs with `off`.
    Legacy,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MediumKind {
    /// `bcast IF`: to the interface's broadcast address, port `udpport`.
    Bcast,
    /// `mcast IF GROUP PORT TTL LOOP`.
    Mcast {
        group: Ipv4Addr,
        ttl: u8,
        loop_: bool,
    },
    /// `ucast IF PEER`: one unicast destination. Several ucast lines on one
    /// interface make one medium (see [`HaCf::media`]).
    Ucast { peers: Vec<Ipv4Addr> },
}

/// One heartbeat medium: a way keepalives travel. Links are tracked per peer
/// per medium.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Medium {
    pub iface: String,
    pub port: u16,
    pub kind: MediumKind,
    /// The (first) line that declared it.
    pub at: Location,
}

impl Medium {
    /// The name used in logs and status: `bcast eth0`, `mcast eth0 239.0.0.1`, `ucast eth0`.
    pub fn name(&self) -> String {
        match &self.kind {
            MediumKind::Bcast => format!("bcast {}", self.iface),
            MediumKind::Mcast { group, .. } => format!("mcast {} {}", self.iface, group),
            MediumKind::Ucast { .. } => format!("ucast {}", self.iface),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PingGroup {
    pub name: String,
    pub addrs: Vec<Ipv4Addr>,
    pub at: Location,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Respawn {
    pub user: String,
    /// The program and its arguments, as written.
    pub command: String,
    pub at: Location,
}

/// The parsed `ha.cf`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HaCf {
    pub keepalive: Duration,
    pub deadtime: Duration,
    pub warntime: Duration,
    pub initdead: Duration,
    pub udpport: u16,
    /// In file order; ucast lines with the same interface and port are merged
    /// into the first one. Lines naming this node's own address are kept here
    /// and skipped by the runtime, which knows the local addresses.
    pub media: Vec<Medium>,
    /// `node` names in file order.
    pub nodes: Vec<String>,
    pub auto_failback: AutoFailback,
    pub logfile: Option<PathBuf>,
    pub debugfile: Option<PathBuf>,
    /// syslog facility name (`daemon`, `local0`...); `None` for `logfacility none`.
    pub logfacility: Option<String>,
    pub use_logd: bool,
    pub hopfudge: u32,
    pub ping: Vec<(Ipv4Addr, Location)>,
    pub ping_groups: Vec<PingGroup>,
    pub deadping: Duration,
    pub respawn: Vec<Respawn>,
    /// `debug N` level (0 = off).
    pub debug: u32,
}
