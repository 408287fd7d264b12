//! `ha.cf` with heartbeat 3.0's syntax, defaults and checks.

use super::time::fmt_duration;
use super::{parse_duration, ConfigError, ConfigWarning, Location};
use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
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
    /// A heartbeat helper whose job hbd does itself: not spawned.
    pub builtin: Option<BuiltinHelper>,
}

/// heartbeat helpers, usually started by `respawn` lines, that hbd has built
/// in: such lines keep working and start nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BuiltinHelper {
    /// `ipfail`: the ping tiebreaker (cluster.toml `[tiebreaker]`).
    Ipfail,
    /// `dopd`: the peer outdater for DRBD's `fence-peer` handler.
    Dopd,
    /// `ifcheckd`: interface watching; hbd's link tracking does it.
    Ifcheckd,
}

impl BuiltinHelper {
    /// The helper of a `respawn` program path, by its file name.
    pub fn of_program(program: &str) -> Option<BuiltinHelper> {
        match program.rsplit('/').next()? {
            "ipfail" => Some(BuiltinHelper::Ipfail),
            "dopd" => Some(BuiltinHelper::Dopd),
            "ifcheckd" => Some(BuiltinHelper::Ifcheckd),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            BuiltinHelper::Ipfail => "ipfail",
            BuiltinHelper::Dopd => "dopd",
            BuiltinHelper::Ifcheckd => "ifcheckd",
        }
    }

    /// What hbd does instead, for the log.
    pub fn replacement(self) -> &'static str {
        match self {
            BuiltinHelper::Ipfail => "ping tiebreaker",
            BuiltinHelper::Dopd => "peer outdater",
            BuiltinHelper::Ifcheckd => "link tracking of every medium",
        }
    }
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
    /// `stonith_host` lines, translated to fence-agents devices, in file order.
    pub stonith_hosts: Vec<(crate::fence::FenceDevice, Location)>,
    /// `watchdog DEVICE`: the kernel watchdog hbd feeds while its loop runs.
    pub watchdog: Option<(PathBuf, Location)>,
    /// `debug N` level (0 = off).
    pub debug: u32,
    /// `realtime BOOL` (heartbeat's default: on): the keepalive path runs
    /// at a realtime policy (SCHED_RR) with memory locked; see
    /// `runtime::realtime`.
    pub realtime: bool,
    /// `rtprio N`: the SCHED_RR priority (1 to 99); `None` is heartbeat's
    /// choice, the lowest (1).
    pub rtprio: Option<u32>,
}

/// heartbeat's `keepalive` default (config.c: `heartbeat_ms = 1000`).
pub const DEFAULT_KEEPALIVE: Duration = Duration::from_secs(1);
/// heartbeat's `deadtime` default (config.c: `deadtime_ms = 30000`).
pub const DEFAULT_DEADTIME: Duration = Duration::from_secs(30);
/// heartbeat's UDP port (`ha-cluster` in /etc/services).
pub const DEFAULT_UDPPORT: u16 = 694;
/// heartbeat's `hopfudge` default.
pub const DEFAULT_HOPFUDGE: u32 = 1;
/// Longest node name hbd accepts, in bytes.
pub const MAX_NODE_NAME: usize = 64;

/// syslog facilities `logfacility` accepts (besides `none`), with their
/// syslog(3) codes.
pub const SYSLOG_FACILITIES: &[(&str, u8)] = &[
    ("kern", 0),
    ("user", 1),
    ("mail", 2),
    ("daemon", 3),
    ("auth", 4),
    ("syslog", 5),
    ("lpr", 6),
    ("news", 7),
    ("uucp", 8),
    ("cron", 9),
    ("authpriv", 10),
    ("ftp", 11),
    ("local0", 16),
    ("local1", 17),
    ("local2", 18),
    ("local3", 19),
    ("local4", 20),
    ("local5", 21),
    ("local6", 22),
    ("local7", 23),
];

/// The syslog(3) code of a facility name `logfacility` accepts.
pub fn syslog_facility_code(name: &str) -> Option<u8> {
    SYSLOG_FACILITIES
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, c)| *c)
}

impl HaCf {
    /// heartbeat's `initdead` when the file does not set it: `deadtime` when
    /// over 10 s, 12 s when under 6 s, twice `deadtime` in between.
    pub fn default_initdead(deadtime: Duration) -> Duration {
        if deadtime > Duration::from_secs(10) {
            deadtime
        } else if deadtime < Duration::from_secs(6) {
            Duration::from_secs(12)
        } else {
            deadtime * 2
        }
    }

    /// heartbeat's `warntime` when the file does not set it: half of `deadtime`.
    pub fn default_warntime(deadtime: Duration) -> Duration {
        deadtime / 2
    }
}

/// heartbeat's booleans (`cl_str_to_boolean`): yes/no, on/off, true/false,
/// y/n, 1/0, in any case.
pub(crate) fn parse_bool(s: &str) -> Option<bool> {
    match s.to_ascii_lowercase().as_str() {
        "yes" | "on" | "true" | "y" | "1" => Some(true),
        "no" | "off" | "false" | "n" | "0" => Some(false),
        _ => None,
    }
}

const BOOL_HINT: &str = "expected yes or no (on/off, true/false, y/n, 1/0)";

/// An IPv4 literal. Host names are refused with the reason.
pub(crate) fn parse_ipv4(s: &str) -> Result<Ipv4Addr, String> {
    if let Ok(a) = s.parse::<Ipv4Addr>() {
        return Ok(a);
    }
    if s.parse::<std::net::Ipv6Addr>().is_ok() {
        return Err(format!(
            "`{s}`: IPv6 addresses are not supported; write an IPv4 address"
        ));
    }
    let hostname_like = s
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.' || c == '_')
        && s.chars().any(|c| c.is_ascii_alphabetic());
    if hostname_like {
        Err(format!(
            "`{s}` is a host name, not an IPv4 address: hbd does not resolve names at \
             start-up, so a DNS outage cannot block a failover; write the address"
        ))
    } else {
        Err(format!("`{s}`: not an IPv4 address"))
    }
}

fn check_iface(s: &str) -> Result<(), String> {
    if s.len() > 15 || s.contains('/') || s == "." || s == ".." {
        Err(format!(
            "`{s}`: not an interface name (at most 15 bytes, no `/`)"
        ))
    } else {
        Ok(())
    }
}

/// What [`parse_full`] returns: the best-effort value (defaults where a line
/// was wrong) and what `load` needs for its cross-checks.
pub(crate) struct Parsed {
    pub ha: HaCf,
    /// The first `node` line, where "this node is not listed" is reported.
    pub first_node_line: Option<usize>,
    pub errors: Vec<ConfigError>,
    pub warnings: Vec<ConfigWarning>,
}

/// Parses the text of an `ha.cf`. `path` is only used in messages. The
/// returned `HaCf` has defaults wherever a line was wrong; it is meaningful
/// only when the error list is empty.
pub fn parse(path: &Path, text: &str) -> (HaCf, Vec<ConfigError>, Vec<ConfigWarning>) {
    let p = parse_full(path, text);
    (p.ha, p.errors, p.warnings)
}

/// Directives heartbeat 3.0 knows that have no effect in hbd: accepted, with
/// a warning. (name, value check, why)
const INERT: &[(&str, ValueCheck, &str)] = &[
    (
        "coredumps",
        ValueCheck::Bool,
        "hbd leaves core dumps to the system's settings",
    ),
    (
        "coreroot",
        ValueCheck::Any,
        "hbd leaves core dumps to the system's settings",
    ),
    (
        "log_badpack",
        ValueCheck::Bool,
        "hbd's reporting of bad datagrams is not configurable",
    ),
    ("conn_logd_time", ValueCheck::Time, "hbd has no logd"),
    (
        "use_apphbd",
        ValueCheck::Bool,
        "hbd does not register with apphbd",
    ),
    (
        "memreserve",
        ValueCheck::Int,
        "hbd does not preallocate memory",
    ),
    (
        "max_rexmit_delay",
        ValueCheck::Int,
        "hbd does not retransmit messages",
    ),
    (
        "hbgenmethod",
        ValueCheck::Any,
        "hbd keeps its incarnation number in the state directory",
    ),
    ("normalpoll", ValueCheck::Bool, "hbd has its own event loop"),
    ("uuidfrom", ValueCheck::Any, "hbd identifies nodes by name"),
    (
        "record_config_changes",
        ValueCheck::Bool,
        "a CRM setting; hbd has no CRM",
    ),
    (
        "record_pengine_inputs",
        ValueCheck::Bool,
        "a CRM setting; hbd has no CRM",
    ),
    (
        "enable_config_writes",
        ValueCheck::Bool,
        "a CRM setting; hbd has no CRM",
    ),
];

/// Directives heartbeat 3.0 knows that hbd refuses, and why.
const UNSUPPORTED: &[(&str, &str)] = &[
    ("serial", "serial links are not supported: hbd heartbeats over UDP only (bcast, mcast, ucast); use a crossover Ethernet link instead"),
    ("baud", "serial links are not supported: hbd heartbeats over UDP only (bcast, mcast, ucast); drop the line"),
    ("apiauth", "hbd has no heartbeat API clients; control-socket access is granted by `group` in cluster.toml's [control]"),
    ("compression", "hbd datagrams are small and never compressed; drop the line"),
    ("compression_threshold", "hbd datagrams are small and never compressed; drop the line"),
    ("traditional_compression", "hbd datagrams are small and never compressed; drop the line"),
    ("msgfmt", "hbd has its own datagram format, heartbeat's message formats do not apply; drop the line"),
    ("autojoin", "hbd's membership is the static node list; nodes cannot join at run time (only `autojoin none` is accepted)"),
    ("nice_failback", "obsolete since heartbeat 1.2; write `auto_failback on` or `auto_failback off`"),
    ("cluster", "set the cluster name as `name` in cluster.toml's [cluster]"),
    ("quorum_server", "hbd has no quorum server support; drop the line"),
    ("env", "hbd does not set environment variables for respawned programs; drop the line"),
    ("mcast6", "IPv6 media are not supported; use bcast, mcast or ucast"),
    ("hbaping", "Fibre Channel HBA ping is not supported; use ping"),
];

#[derive(Clone, Copy)]
enum ValueCheck {
    Bool,
    Int,
    Time,
    Any,
}

struct P<'a> {
    file: &'a Path,
    errors: Vec<ConfigError>,
    warnings: Vec<ConfigWarning>,
    /// Single-valued directives seen, with their first line.
    once: HashMap<String, usize>,
}

impl P<'_> {
    fn err(&mut self, line: usize, key: &str, message: impl Into<String>) {
        self.errors.push(ConfigError::Line {
            file: self.file.to_path_buf(),
            line,
            key: key.to_string(),
            message: message.into(),
        });
    }

    fn file_err(&mut self, message: impl Into<String>) {
        self.errors.push(ConfigError::File {
            file: self.file.to_path_buf(),
            message: message.into(),
        });
    }

    fn warn(&mut self, line: usize, key: &str, message: impl Into<String>) {
        self.warnings.push(ConfigWarning {
            file: self.file.to_path_buf(),
            line,
            key: key.to_string(),
            message: message.into(),
        });
    }

    fn loc(&self, line: usize) -> Location {
        Location {
            file: self.file.to_path_buf(),
            line,
        }
    }

    /// For directives heartbeat takes once: false (and an error) on a repeat.
    fn once(&mut self, line: usize, key: &str) -> bool {
        if let Some(first) = self.once.get(key) {
            let first = *first;
            self.err(
                line,
                key,
                format!("given twice (first at line {first}); it takes one value"),
            );
            false
        } else {
            self.once.insert(key.to_string(), line);
            true
        }
    }

    /// The single value of a directive.
    fn one<'t>(&mut self, line: usize, key: &str, args: &[&'t str]) -> Option<&'t str> {
        match args {
            [] => {
                self.err(line, key, "missing value");
                None
            }
            [v] => Some(v),
            _ => {
                self.err(
                    line,
                    key,
                    format!("takes one value, got {}: `{}`", args.len(), args.join(" ")),
                );
                None
            }
        }
    }

    /// A single-valued time directive.
    fn time(&mut self, line: usize, key: &str, args: &[&str]) -> Option<(Duration, usize)> {
        if !self.once(line, key) {
            return None;
        }
        let v = self.one(line, key, args)?;
        match parse_duration(v) {
            Ok(d) => Some((d, line)),
            Err(m) => {
                self.err(line, key, m);
                None
            }
        }
    }

    /// A single-valued integer directive in `0..=max`.
    fn int(&mut self, line: usize, key: &str, args: &[&str], max: u32) -> Option<u32> {
        if !self.once(line, key) {
            return None;
        }
        let v = self.one(line, key, args)?;
        match v.parse::<u32>() {
            Ok(n) if n <= max => Some(n),
            _ => {
                self.err(
                    line,
                    key,
                    format!("`{v}`: expected a number from 0 to {max}"),
                );
                None
            }
        }
    }

    fn bool(&mut self, line: usize, key: &str, args: &[&str]) -> Option<bool> {
        if !self.once(line, key) {
            return None;
        }
        let v = self.one(line, key, args)?;
        let b = parse_bool(v);
        if b.is_none() {
            self.err(line, key, format!("`{v}`: {BOOL_HINT}"));
        }
        b
    }

    fn path(&mut self, line: usize, key: &str, args: &[&str]) -> Option<PathBuf> {
        if !self.once(line, key) {
            return None;
        }
        let v = self.one(line, key, args)?;
        if v.starts_with('/') {
            Some(PathBuf::from(v))
        } else {
            self.err(line, key, format!("`{v}`: must be an absolute path"));
            None
        }
    }

    fn ipv4(&mut self, line: usize, key: &str, s: &str) -> Option<Ipv4Addr> {
        match parse_ipv4(s) {
            Ok(a) => Some(a),
            Err(m) => {
                self.err(line, key, m);
                None
            }
        }
    }

    fn iface(&mut self, line: usize, key: &str, s: &str) -> bool {
        match check_iface(s) {
            Ok(()) => true,
            Err(m) => {
                self.err(line, key, m);
                false
            }
        }
    }
}

/// Parses `ha.cf` text, keeping what `load` needs for its cross-checks.
pub(crate) fn parse_full(path: &Path, text: &str) -> Parsed {
    let mut p = P {
        file: path,
        errors: Vec::new(),
        warnings: Vec::new(),
        once: HashMap::new(),
    };
    let mut keepalive = None;
    let mut deadtime = None;
    let mut warntime = None;
    let mut initdead = None;
    let mut deadping = None;
    let mut times_ok = true;
    let mut udpport = DEFAULT_UDPPORT;
    // The first bcast/ucast line: udpport must come before it.
    let mut first_udp_medium: Option<(usize, &'static str)> = None;
    let mut saw_media_line = false;
    let mut media: Vec<Medium> = Vec::new();
    let mut ucast_peer_lines: HashMap<(String, Ipv4Addr), usize> = HashMap::new();
    let mut nodes: Vec<String> = Vec::new();
    let mut node_lines: HashMap<String, usize> = HashMap::new();
    let mut first_node_line = None;
    let mut auto_failback = AutoFailback::Legacy;
    let mut logfile = None;
    let mut debugfile = None;
    let mut logfacility = None;
    let mut use_logd = false;
    let mut hopfudge = DEFAULT_HOPFUDGE;
    let mut ping: Vec<(Ipv4Addr, Location)> = Vec::new();
    let mut ping_groups: Vec<PingGroup> = Vec::new();
    let mut respawn = Vec::new();
    let mut stonith_hosts: Vec<(crate::fence::FenceDevice, Location)> = Vec::new();
    let mut watchdog = None;
    let mut debug = 0;
    let mut realtime = true;
    let mut rtprio = None;

    for (idx, raw) in text.lines().enumerate() {
        let line = idx + 1;
        let content = match raw.find('#') {
            Some(i) => &raw[..i],
            None => raw,
        };
        let mut toks = content.split_whitespace();
        let Some(mut key) = toks.next() else {
            continue;
        };
        let args: Vec<&str> = toks.collect();
        if key == "udp" {
            p.warn(line, key, "heartbeat's old name for bcast; write `bcast`");
            key = "bcast";
        }
        match key {
            "keepalive" => {
                keepalive = p.time(line, key, &args);
                if let Some((d, _)) = keepalive {
                    if d.is_zero() {
                        p.err(line, key, "must be greater than zero");
                        keepalive = None;
                    }
                }
                times_ok &= keepalive.is_some();
            }
            "deadtime" => {
                deadtime = p.time(line, key, &args);
                times_ok &= deadtime.is_some();
            }
            "warntime" => {
                warntime = p.time(line, key, &args);
                if let Some((d, _)) = warntime {
                    if d.is_zero() {
                        p.err(line, key, "must be greater than zero");
                        warntime = None;
                    }
                }
                times_ok &= warntime.is_some();
            }
            "initdead" => {
                initdead = p.time(line, key, &args);
                times_ok &= initdead.is_some();
            }
            "deadping" => {
                deadping = p.time(line, key, &args);
                times_ok &= deadping.is_some();
            }
            "udpport" => {
                if !p.once(line, key) {
                    continue;
                }
                let Some(v) = p.one(line, key, &args) else {
                    continue;
                };
                match v.parse::<u16>() {
                    Ok(n) if n > 0 => {
                        if let Some((l, what)) = first_udp_medium {
                            p.err(
                                line,
                                key,
                                format!(
                                    "must come before the bcast/ucast lines it applies to; \
                                     line {l} ({what}) comes first"
                                ),
                            );
                        } else {
                            udpport = n;
                        }
                    }
                    _ => p.err(line, key, format!("`{v}`: not a UDP port (1-65535)")),
                }
            }
            "bcast" => {
                saw_media_line = true;
                if args.is_empty() {
                    p.err(line, key, "missing value: expected `bcast IF [IF...]`");
                    continue;
                }
                first_udp_medium.get_or_insert((line, "bcast"));
                for iface in &args {
                    if !p.iface(line, key, iface) {
                        continue;
                    }
                    let dup = media
                        .iter()
                        .find(|m| m.kind == MediumKind::Bcast && m.iface == *iface)
                        .map(|m| m.at.line);
                    if let Some(first) = dup {
                        p.err(
                            line,
                            key,
                            format!("`{iface}` already has a bcast medium (line {first})"),
                        );
                        continue;
                    }
                    media.push(Medium {
                        iface: iface.to_string(),
                        port: udpport,
                        kind: MediumKind::Bcast,
                        at: p.loc(line),
                    });
                }
            }
            "mcast" => {
                saw_media_line = true;
                const SYNTAX: &str = "expected `mcast IF GROUP PORT TTL LOOP`";
                let [iface, group, port, ttl, lp] = args[..] else {
                    if args.len() < 5 {
                        p.err(line, key, format!("missing value: {SYNTAX}"));
                    } else {
                        p.err(line, key, format!("too many values: {SYNTAX}"));
                    }
                    continue;
                };
                let mut ok = p.iface(line, key, iface);
                let group = p.ipv4(line, key, group).and_then(|g| {
                    if g.is_multicast() {
                        Some(g)
                    } else {
                        p.err(
                            line,
                            key,
                            format!("`{g}` is not a multicast group (224.0.0.0/4)"),
                        );
                        None
                    }
                });
                let port = match port.parse::<u16>() {
                    Ok(n) if n > 0 => Some(n),
                    _ => {
                        p.err(line, key, format!("`{port}`: not a UDP port (1-65535)"));
                        None
                    }
                };
                let ttl = match ttl.parse::<u8>() {
                    Ok(n) if n > 0 => Some(n),
                    _ => {
                        p.err(line, key, format!("`{ttl}`: TTL must be from 1 to 255"));
                        None
                    }
                };
                let loop_ = match lp {
                    "0" => Some(false),
                    "1" => Some(true),
                    _ => {
                        p.err(line, key, format!("`{lp}`: loop must be 0 or 1"));
                        None
                    }
                };
                let (Some(group), Some(port), Some(ttl), Some(loop_)) = (group, port, ttl, loop_)
                else {
                    continue;
                };
                let dup = media
                    .iter()
                    .find(|m| {
                        m.iface == iface
                            && m.port == port
                            && matches!(m.kind, MediumKind::Mcast { group: g, .. } if g == group)
                    })
                    .map(|m| m.at.line);
                if let Some(first) = dup {
                    p.err(
                        line,
                        key,
                        format!("`{iface} {group} {port}` is already a medium (line {first})"),
                    );
                    ok = false;
                }
                if ok {
                    media.push(Medium {
                        iface: iface.to_string(),
                        port,
                        kind: MediumKind::Mcast { group, ttl, loop_ },
                        at: p.loc(line),
                    });
                }
            }
            "ucast" => {
                saw_media_line = true;
                const SYNTAX: &str = "expected `ucast IF PEER-ADDRESS`";
                let [iface, peer] = args[..] else {
                    if args.len() < 2 {
                        p.err(line, key, format!("missing value: {SYNTAX}"));
                    } else {
                        p.err(line, key, format!("too many values: {SYNTAX}"));
                    }
                    continue;
                };
                first_udp_medium.get_or_insert((line, "ucast"));
                let ok = p.iface(line, key, iface);
                let Some(peer) = p.ipv4(line, key, peer) else {
                    continue;
                };
                if !ok {
                    continue;
                }
                if let Some(first) = ucast_peer_lines.get(&(iface.to_string(), peer)) {
                    let first = *first;
                    p.err(
                        line,
                        key,
                        format!("`{iface} {peer}` is already listed (line {first})"),
                    );
                    continue;
                }
                ucast_peer_lines.insert((iface.to_string(), peer), line);
                let existing = media.iter_mut().find(|m| {
                    m.iface == iface
                        && m.port == udpport
                        && matches!(m.kind, MediumKind::Ucast { .. })
                });
                match existing {
                    Some(Medium {
                        kind: MediumKind::Ucast { peers },
                        ..
                    }) => peers.push(peer),
                    _ => media.push(Medium {
                        iface: iface.to_string(),
                        port: udpport,
                        kind: MediumKind::Ucast { peers: vec![peer] },
                        at: p.loc(line),
                    }),
                }
            }
            "node" => {
                if args.is_empty() {
                    p.err(line, key, "missing value: expected `node NAME [NAME...]`");
                    continue;
                }
                first_node_line.get_or_insert(line);
                for name in &args {
                    // heartbeat lowercases node names (add_node: g_strdown).
                    let name = name.to_lowercase();
                    if name.len() > MAX_NODE_NAME {
                        p.err(
                            line,
                            key,
                            format!("`{name}`: longer than {MAX_NODE_NAME} bytes"),
                        );
                        continue;
                    }
                    if let Some(first) = node_lines.get(&name) {
                        let first = *first;
                        p.err(
                            line,
                            key,
                            format!("`{name}` is listed twice (first at line {first})"),
                        );
                        continue;
                    }
                    node_lines.insert(name.clone(), line);
                    nodes.push(name);
                }
            }
            "auto_failback" => {
                if !p.once(line, key) {
                    continue;
                }
                let Some(v) = p.one(line, key, &args) else {
                    continue;
                };
                if v.eq_ignore_ascii_case("legacy") {
                    auto_failback = AutoFailback::Legacy;
                    p.warn(
                        line,
                        key,
                        "legacy is deprecated (heartbeat warns too): it fails back unless a \
                         peer runs with off; write on or off",
                    );
                } else {
                    match parse_bool(v) {
                        Some(true) => auto_failback = AutoFailback::On,
                        Some(false) => auto_failback = AutoFailback::Off,
                        None => p.err(line, key, format!("`{v}`: expected on, off or legacy")),
                    }
                }
            }
            "logfile" => logfile = p.path(line, key, &args).or(logfile),
            "debugfile" => debugfile = p.path(line, key, &args).or(debugfile),
            "logfacility" => {
                if !p.once(line, key) {
                    continue;
                }
                let Some(v) = p.one(line, key, &args) else {
                    continue;
                };
                let f = v.to_ascii_lowercase();
                if f == "none" {
                    logfacility = None;
                } else if syslog_facility_code(&f).is_some() {
                    logfacility = Some(f);
                } else {
                    p.err(
                        line,
                        key,
                        format!(
                            "`{v}`: not a syslog facility (auth, authpriv, cron, daemon, ftp, \
                             kern, lpr, mail, news, syslog, user, uucp, local0..local7, or none)"
                        ),
                    );
                }
            }
            "use_logd" => {
                if let Some(b) = p.bool(line, key, &args) {
                    use_logd = b;
                    if b {
                        p.warn(
                            line,
                            key,
                            "hbd has no logd; it logs to syslog (logfacility), logfile and \
                             debugfile instead",
                        );
                    }
                }
            }
            "hopfudge" => {
                if let Some(n) = p.int(line, key, &args, 255) {
                    hopfudge = n;
                    p.warn(
                        line,
                        key,
                        "no effect: hbd does not forward heartbeats between nodes \
                         (hopfudge only mattered for heartbeat's serial rings)",
                    );
                }
            }
            "debug" => {
                if let Some(n) = p.int(line, key, &args, 255) {
                    debug = n;
                }
            }
            "realtime" => {
                if let Some(b) = p.bool(line, key, &args) {
                    realtime = b;
                }
            }
            "rtprio" => {
                if let Some(n) = p.int(line, key, &args, 99) {
                    if n == 0 {
                        p.err(line, key, "expected a number from 1 to 99");
                    } else {
                        rtprio = Some(n);
                    }
                }
            }
            "ping" => {
                if args.is_empty() {
                    p.err(
                        line,
                        key,
                        "missing value: expected `ping ADDRESS [ADDRESS...]`",
                    );
                    continue;
                }
                for a in &args {
                    let Some(addr) = p.ipv4(line, key, a) else {
                        continue;
                    };
                    if let Some((_, at)) = ping.iter().find(|(x, _)| *x == addr) {
                        let first = at.line;
                        p.err(
                            line,
                            key,
                            format!("`{addr}` is listed twice (first at line {first})"),
                        );
                        continue;
                    }
                    ping.push((addr, p.loc(line)));
                }
            }
            "ping_group" => {
                let Some((name, addrs)) = args.split_first() else {
                    p.err(
                        line,
                        key,
                        "missing value: expected `ping_group NAME ADDRESS [ADDRESS...]`",
                    );
                    continue;
                };
                if addrs.is_empty() {
                    p.err(
                        line,
                        key,
                        format!("`{name}`: missing value: expected `ping_group NAME ADDRESS [ADDRESS...]`"),
                    );
                    continue;
                }
                if let Some(g) = ping_groups.iter().find(|g| g.name == *name) {
                    let first = g.at.line;
                    p.err(
                        line,
                        key,
                        format!("`{name}` is defined twice (first at line {first})"),
                    );
                    continue;
                }
                let mut list = Vec::new();
                let mut ok = true;
                for a in addrs {
                    match p.ipv4(line, key, a) {
                        Some(addr) if !list.contains(&addr) => list.push(addr),
                        Some(addr) => {
                            p.err(line, key, format!("`{addr}` is listed twice"));
                            ok = false;
                        }
                        None => ok = false,
                    }
                }
                if ok {
                    ping_groups.push(PingGroup {
                        name: name.to_string(),
                        addrs: list,
                        at: p.loc(line),
                    });
                }
            }
            "respawn" => {
                let [user, program, ..] = args[..] else {
                    p.err(
                        line,
                        key,
                        "missing value: expected `respawn USER /path/to/program [ARGS...]`",
                    );
                    continue;
                };
                // ipfail, dopd, ifcheckd: built in, never spawned, so neither
                // the user nor the program need exist on this machine.
                if let Some(builtin) = BuiltinHelper::of_program(program) {
                    let rest = content.trim_start()[key.len()..].trim_start();
                    respawn.push(Respawn {
                        user: user.to_string(),
                        command: rest[user.len()..].trim().to_string(),
                        at: p.loc(line),
                        builtin: Some(builtin),
                    });
                    continue;
                }
                let mut ok = true;
                match nix::unistd::User::from_name(user) {
                    Ok(Some(_)) => {}
                    Ok(None) => {
                        p.err(line, key, format!("user `{user}` does not exist"));
                        ok = false;
                    }
                    Err(e) => {
                        p.err(line, key, format!("cannot look up user `{user}`: {e}"));
                        ok = false;
                    }
                }
                if !program.starts_with('/') {
                    p.err(
                        line,
                        key,
                        format!("`{program}`: the program must be an absolute path"),
                    );
                    ok = false;
                } else if let Err(e) = nix::unistd::access(program, nix::unistd::AccessFlags::X_OK)
                {
                    // heartbeat checks this too (add_client_child).
                    p.err(
                        line,
                        key,
                        format!("`{program}` is not executable: {}", e.desc()),
                    );
                    ok = false;
                }
                if ok {
                    // The command as written: everything after the user.
                    let rest = content.trim_start()[key.len()..].trim_start();
                    let command = rest[user.len()..].trim().to_string();
                    respawn.push(Respawn {
                        user: user.to_string(),
                        command,
                        at: p.loc(line),
                        builtin: None,
                    });
                }
            }
            "stonith_host" => match crate::fence::parse_stonith_host(&args) {
                Ok(d) => {
                    let dirs =
                        crate::fence::run::agent_dirs(&crate::agents::default_resources_dirs());
                    if crate::fence::run::find_agent(&d.agent, &dirs).is_none() {
                        p.warn(
                            line,
                            key,
                            format!(
                                "`{}` not found (PATH, /usr/sbin, hbd's resources/fence): \
                                 install fence-agents; fencing through this line fails until then",
                                d.agent
                            ),
                        );
                    }
                    stonith_hosts.push((d, p.loc(line)));
                }
                Err(m) => p.err(line, key, m),
            },
            "stonith" => p.err(
                line,
                key,
                "heartbeat's device-file form is not supported: write the device on a \
                 `stonith_host` line (`stonith_host * TYPE PARAMS...`, TYPE a fence-agents \
                 program such as fence_ipmilan with key=value options)",
            ),
            "watchdog" => {
                watchdog = p
                    .path(line, key, &args)
                    .map(|d| (d, p.loc(line)))
                    .or(watchdog);
            }
            "crm" => {
                if !p.once(line, key) {
                    continue;
                }
                let Some(v) = p.one(line, key, &args) else {
                    continue;
                };
                let crm_on = "hbd runs haresources resource groups, not the CRM (Pacemaker); \
                              drop the line";
                match parse_bool(v) {
                    Some(false) => {}
                    Some(true) => p.err(line, key, format!("`{v}`: {crm_on}")),
                    None if ["respawn", "manual", "valgrind"]
                        .contains(&v.to_ascii_lowercase().as_str()) =>
                    {
                        p.err(line, key, format!("`{v}`: {crm_on}"))
                    }
                    None => p.err(line, key, format!("`{v}`: only `crm off` is accepted")),
                }
            }
            "autojoin" if args.len() == 1 && args[0].eq_ignore_ascii_case("none") => {
                if p.once(line, key) {
                    p.warn(line, key, "no effect: `none` is what hbd always does");
                }
            }
            _ => {
                if let Some((_, check, why)) = INERT.iter().find(|(n, _, _)| *n == key) {
                    if !p.once(line, key) {
                        continue;
                    }
                    let Some(v) = p.one(line, key, &args) else {
                        continue;
                    };
                    let bad = match check {
                        ValueCheck::Bool => parse_bool(v).is_none().then_some(BOOL_HINT),
                        ValueCheck::Int => v.parse::<i64>().is_err().then_some("expected a number"),
                        ValueCheck::Time => parse_duration(v).is_err().then_some("expected a time"),
                        ValueCheck::Any => None,
                    };
                    match bad {
                        Some(hint) => p.err(line, key, format!("`{v}`: {hint}")),
                        None => p.warn(line, key, format!("no effect: {why}")),
                    }
                } else if let Some((_, why)) = UNSUPPORTED.iter().find(|(n, _)| *n == key) {
                    p.err(line, key, format!("not supported: {why}"));
                } else {
                    p.err(line, key, "unknown directive");
                }
            }
        }
    }

    // Timings and heartbeat's checks on them (config.c, init_config).
    let ka = keepalive.map_or(DEFAULT_KEEPALIVE, |(d, _)| d);
    let dt = deadtime.map_or(DEFAULT_DEADTIME, |(d, _)| d);
    let wt = warntime.map_or(HaCf::default_warntime(dt), |(d, _)| d);
    let id = initdead.map_or(HaCf::default_initdead(dt), |(d, _)| d);
    let dp = deadping.map_or(dt, |(d, _)| d);
    if times_ok {
        if dt <= ka * 2 {
            let (ds, ks) = (fmt_duration(dt), fmt_duration(ka));
            match (deadtime, keepalive) {
                (Some((_, line)), _) => p.err(
                    line,
                    "deadtime",
                    format!("must be greater than twice keepalive: {ds} <= 2 x {ks}"),
                ),
                (None, Some((_, line))) => p.err(
                    line,
                    "keepalive",
                    format!(
                        "must be less than half of deadtime ({ds}, the default): 2 x {ks} >= {ds}"
                    ),
                ),
                (None, None) => {}
            }
        }
        if let Some((_, line)) = warntime {
            if wt >= dt {
                p.err(
                    line,
                    "warntime",
                    format!(
                        "must be less than deadtime: warntime {} >= deadtime {}",
                        fmt_duration(wt),
                        fmt_duration(dt)
                    ),
                );
            }
        }
        if let Some((_, line)) = initdead {
            if id < dt {
                p.err(
                    line,
                    "initdead",
                    format!(
                        "must be at least deadtime: initdead {} < deadtime {}",
                        fmt_duration(id),
                        fmt_duration(dt)
                    ),
                );
            } else if id < Duration::from_secs(10) {
                p.warn(
                    line,
                    "initdead",
                    format!(
                        "{} may be too small: it covers slow network start-up at boot; \
                         heartbeat recommends at least 10s",
                        fmt_duration(id)
                    ),
                );
            }
        }
        if let Some((_, line)) = deadping {
            if dp <= ka * 2 {
                p.err(
                    line,
                    "deadping",
                    format!(
                        "must be greater than twice keepalive: deadping {} <= 2 x keepalive {}",
                        fmt_duration(dp),
                        fmt_duration(ka)
                    ),
                );
            }
        }
    }
    if !saw_media_line {
        p.file_err("no heartbeat media: add a bcast, mcast or ucast line");
    }
    if first_node_line.is_none() {
        p.file_err("no `node` lines: list every cluster node, named as `uname -n` names it");
    }
    for g in &ping_groups {
        if let Some(l) = node_lines.get(&g.name.to_lowercase()) {
            p.errors.push(ConfigError::Line {
                file: path.to_path_buf(),
                line: g.at.line,
                key: "ping_group".to_string(),
                message: format!("`{}` is also a node name (line {l})", g.name),
            });
        }
    }

    // stonith_host FROM must be a node (node lines may come later).
    for (d, at) in &stonith_hosts {
        let unknown = d
            .from
            .iter()
            .chain(d.targets.iter().map(|t| &t.node))
            .find(|n| !node_lines.contains_key(*n));
        if let (Some(n), false) = (unknown, node_lines.is_empty()) {
            p.errors.push(ConfigError::Line {
                file: path.to_path_buf(),
                line: at.line,
                key: "stonith_host".to_string(),
                message: format!("`{n}` is not a node (node lines: {})", nodes.join(" ")),
            });
        }
    }

    p.errors.sort_by_key(|e| e.line());
    p.warnings.sort_by_key(|w| w.line);
    Parsed {
        ha: HaCf {
            keepalive: ka,
            deadtime: dt,
            warntime: wt,
            initdead: id,
            udpport,
            media,
            nodes,
            auto_failback,
            logfile,
            debugfile,
            logfacility,
            use_logd,
            hopfudge,
            ping,
            ping_groups,
            deadping: dp,
            respawn,
            stonith_hosts,
            watchdog,
            debug,
            realtime,
            rtprio,
        },
        first_node_line,
        errors: p.errors,
        warnings: p.warnings,
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Seed 002's ha.cf, as the guide prints it.
    pub(crate) const SEED_002: &str = "keepalive 1
deadtime 3
hopfudge 1
bcast        eth1
auto_failback on
debugfile /var/log/ha-debug
logfile        /var/log/ha-log
logfacility        local0
node        l0
node        l1 
";

    fn run(text: &str) -> (HaCf, Vec<String>, Vec<String>) {
        let (h, e, w) = parse(Path::new("ha.cf"), text);
        (
            h,
            e.iter().map(ToString::to_string).collect(),
            w.iter().map(ToString::to_string).collect(),
        )
    }

    /// Errors of a valid two-line base (`bcast eth0`, `node a b`) followed by
    /// `extra`, whose first line is line 3.
    fn errs(extra: &str) -> Vec<String> {
        run(&format!("bcast eth0\nnode a b\n{extra}")).1
    }

    fn warns(extra: &str) -> Vec<String> {
        let (_, e, w) = run(&format!("bcast eth0\nnode a b\n{extra}"));
        assert!(e.is_empty(), "{e:?}");
        w
    }

    fn ok(extra: &str) -> HaCf {
        let (h, e, _) = run(&format!("bcast eth0\nnode a b\n{extra}"));
        assert!(e.is_empty(), "{e:?}");
        h
    }

    fn one_err(extra: &str) -> String {
        let e = errs(extra);
        assert_eq!(e.len(), 1, "{e:?}");
        e[0].clone()
    }

    const S: fn(u64) -> Duration = Duration::from_secs;
    const MS: fn(u64) -> Duration = Duration::from_millis;

    #[test]
    fn seed_002() {
        let (h, e, w) = run(SEED_002);
        assert!(e.is_empty(), "{e:?}");
        assert_eq!(h.keepalive, S(1));
        assert_eq!(h.deadtime, S(3));
        assert_eq!(h.warntime, MS(1500));
        assert_eq!(h.initdead, S(12));
        assert_eq!(h.deadping, S(3));
        assert_eq!(h.udpport, 694);
        assert_eq!(
            h.media,
            vec![Medium {
                iface: "eth1".into(),
                port: 694,
                kind: MediumKind::Bcast,
                at: Location {
                    file: "ha.cf".into(),
                    line: 4
                },
            }]
        );
        assert_eq!(h.media[0].name(), "bcast eth1");
        assert_eq!(h.nodes, vec!["l0", "l1"]);
        assert_eq!(h.auto_failback, AutoFailback::On);
        assert_eq!(h.debugfile, Some(PathBuf::from("/var/log/ha-debug")));
        assert_eq!(h.logfile, Some(PathBuf::from("/var/log/ha-log")));
        assert_eq!(h.logfacility.as_deref(), Some("local0"));
        assert!(!h.use_logd);
        assert_eq!(h.hopfudge, 1);
        assert_eq!(h.debug, 0);
        assert_eq!(w.len(), 1, "{w:?}");
        assert!(w[0].starts_with("ha.cf:3: hopfudge: no effect"), "{w:?}");
    }

    #[test]
    fn defaults() {
        let (h, e, w) = run("bcast eth0\nnode a\n");
        assert!(e.is_empty() && w.is_empty(), "{e:?} {w:?}");
        assert_eq!(h.keepalive, S(1));
        assert_eq!(h.deadtime, S(30));
        assert_eq!(h.warntime, S(15));
        assert_eq!(h.initdead, S(30));
        assert_eq!(h.deadping, S(30));
        assert_eq!(h.udpport, 694);
        assert_eq!(h.auto_failback, AutoFailback::Legacy);
        assert_eq!(h.logfacility, None);
        assert_eq!(h.logfile, None);
        assert_eq!(h.debugfile, None);
        assert_eq!(h.hopfudge, 1);
        assert!(h.ping.is_empty() && h.ping_groups.is_empty() && h.respawn.is_empty());
    }

    #[test]
    fn initdead_default_follows_heartbeat() {
        for (dead, init) in [
            (S(30), S(30)),
            (S(11), S(11)),
            (S(10), S(20)),
            (S(8), S(16)),
            (S(6), S(12)),
            (MS(5999), S(12)),
            (S(1), S(12)),
        ] {
            assert_eq!(HaCf::default_initdead(dead), init, "{dead:?}");
        }
        assert_eq!(ok("deadtime 8\n").initdead, S(16));
    }

    #[test]
    fn comments_blank_lines_crlf() {
        let h = ok("# comment\n\n   \nkeepalive 500ms # trailing\r\ndeadtime 2\r\n\t# indented\n");
        assert_eq!(h.keepalive, MS(500));
        assert_eq!(h.deadtime, S(2));
    }

    #[test]
    fn unknown_directive() {
        assert_eq!(
            one_err("frobnicate 1\n"),
            "ha.cf:3: frobnicate: unknown directive"
        );
        // A comment does not hide the directive, nor does case fold.
        assert_eq!(
            one_err("KEEPALIVE 1\n"),
            "ha.cf:3: KEEPALIVE: unknown directive"
        );
    }

    #[test]
    fn unsupported_directives_say_why() {
        assert_eq!(
            one_err("serial /dev/ttyS0\n"),
            "ha.cf:3: serial: not supported: serial links are not supported: hbd heartbeats \
             over UDP only (bcast, mcast, ucast); use a crossover Ethernet link instead"
        );
        assert!(one_err("stonith_host * null n1\n")
            .starts_with("ha.cf:3: stonith_host: `null`: null reports success without fencing"));
        for (name, _) in UNSUPPORTED {
            let e = one_err(&format!("{name} x\n"));
            assert!(
                e.starts_with(&format!("ha.cf:3: {name}: not supported: ")),
                "{e}"
            );
        }
        assert!(one_err("autojoin any\n").contains("autojoin: not supported: "));
    }

    #[test]
    fn inert_directives_warn() {
        for (name, check, _) in INERT {
            let value = match check {
                ValueCheck::Bool => "on",
                ValueCheck::Int => "5",
                ValueCheck::Time => "60",
                ValueCheck::Any => "file",
            };
            let w = warns(&format!("{name} {value}\n"));
            assert_eq!(w.len(), 1, "{w:?}");
            assert!(
                w[0].starts_with(&format!("ha.cf:3: {name}: no effect: ")),
                "{w:?}"
            );
        }
        assert!(warns("realtime on\n").is_empty());
        assert!(ok("").realtime, "heartbeat's default is on");
        assert_eq!(ok("").rtprio, None);
        assert!(!ok("realtime off\n").realtime);
        assert!(ok("realtime yes\n").realtime);
        assert_eq!(ok("rtprio 5\n").rtprio, Some(5));
        assert_eq!(
            one_err("rtprio 0\n"),
            "ha.cf:3: rtprio: expected a number from 1 to 99"
        );
        assert_eq!(
            one_err("realtime maybe\n"),
            "ha.cf:3: realtime: `maybe`: expected yes or no (on/off, true/false, y/n, 1/0)"
        );
        assert_eq!(warns("autojoin none\n").len(), 1);
        assert_eq!(
            one_err("coredumps maybe\n"),
            "ha.cf:3: coredumps: `maybe`: expected yes or no (on/off, true/false, y/n, 1/0)"
        );
        assert_eq!(
            one_err("memreserve lots\n"),
            "ha.cf:3: memreserve: `lots`: expected a number"
        );
    }

    #[test]
    fn bad_and_missing_values() {
        assert_eq!(
            one_err("keepalive abc\n"),
            "ha.cf:3: keepalive: `abc`: not a time; expected seconds (`2`, `0.5`) or a value \
             with a unit (`500ms`, `200000us`, `2s`, `10m`, `1h`)"
        );
        assert_eq!(one_err("deadtime\n"), "ha.cf:3: deadtime: missing value");
        assert_eq!(
            one_err("deadtime 10 20\n"),
            "ha.cf:3: deadtime: takes one value, got 2: `10 20`"
        );
        assert_eq!(
            one_err("keepalive -1\n"),
            "ha.cf:3: keepalive: `-1`: negative time; expected seconds (`2`, `0.5`) or a value \
             with a unit (`500ms`, `200000us`, `2s`, `10m`, `1h`)"
        );
        assert_eq!(
            one_err("keepalive 0\n"),
            "ha.cf:3: keepalive: must be greater than zero"
        );
        assert_eq!(
            one_err("warntime 0ms\n"),
            "ha.cf:3: warntime: must be greater than zero"
        );
        assert_eq!(
            one_err("udpport 70000\n").as_str(),
            "ha.cf:3: udpport: `70000`: not a UDP port (1-65535)"
        );
        assert_eq!(
            one_err("udpport 0\n"),
            "ha.cf:3: udpport: `0`: not a UDP port (1-65535)"
        );
        assert_eq!(
            one_err("hopfudge 256\n"),
            "ha.cf:3: hopfudge: `256`: expected a number from 0 to 255"
        );
        assert_eq!(
            one_err("debug x\n"),
            "ha.cf:3: debug: `x`: expected a number from 0 to 255"
        );
        assert_eq!(ok("debug 3\n").debug, 3);
        assert_eq!(
            one_err("logfile ha-log\n"),
            "ha.cf:3: logfile: `ha-log`: must be an absolute path"
        );
        assert_eq!(
            one_err("node\n"),
            "ha.cf:3: node: missing value: expected `node NAME [NAME...]`"
        );
        assert_eq!(
            one_err("bcast\n"),
            "ha.cf:3: bcast: missing value: expected `bcast IF [IF...]`"
        );
    }

    #[test]
    fn given_twice() {
        assert_eq!(
            one_err("keepalive 1\nkeepalive 2\n"),
            "ha.cf:4: keepalive: given twice (first at line 3); it takes one value"
        );
        for d in [
            "deadtime 5",
            "auto_failback on",
            "logfacility daemon",
            "use_logd no",
            "crm off",
            "logfile /a",
        ] {
            let e = errs(&format!("{d}\n{d}\n"));
            assert_eq!(e.len(), 1, "{e:?}");
            assert!(e[0].contains("given twice (first at line 3)"), "{e:?}");
        }
    }

    #[test]
    fn udpport_twice() {
        let (_, e, _) = run("udpport 694\nudpport 695\nbcast eth0\nnode a\n");
        assert_eq!(
            e,
            vec!["ha.cf:2: udpport: given twice (first at line 1); it takes one value"]
        );
    }

    #[test]
    fn no_media_no_nodes() {
        let (_, e, _) = run("keepalive 1\n");
        assert_eq!(
            e,
            vec![
                "ha.cf: no heartbeat media: add a bcast, mcast or ucast line",
                "ha.cf: no `node` lines: list every cluster node, named as `uname -n` names it",
            ]
        );
        // A wrong media line is reported as itself, not as "no media".
        let (_, e, _) = run("bcast\nnode a\n");
        assert_eq!(
            e,
            vec!["ha.cf:1: bcast: missing value: expected `bcast IF [IF...]`"]
        );
    }

    #[test]
    fn nodes() {
        assert_eq!(
            ok("node c\nnode D e\n").nodes,
            vec!["a", "b", "c", "d", "e"]
        );
        assert_eq!(
            one_err("node a\n"),
            "ha.cf:3: node: `a` is listed twice (first at line 2)"
        );
        assert_eq!(
            one_err("node B\n"),
            "ha.cf:3: node: `b` is listed twice (first at line 2)"
        );
        let long = "x".repeat(65);
        assert_eq!(
            one_err(&format!("node {long}\n")),
            format!("ha.cf:3: node: `{long}`: longer than 64 bytes")
        );
        assert!(errs(&format!("node {}\n", "y".repeat(64))).is_empty());
    }

    #[test]
    fn timing_checks() {
        assert_eq!(
            one_err("keepalive 2\ndeadtime 4\n"),
            "ha.cf:4: deadtime: must be greater than twice keepalive: 4s <= 2 x 2s"
        );
        assert!(errs("keepalive 2\ndeadtime 4.1\n").is_empty());
        assert_eq!(
            one_err("keepalive 20\n"),
            "ha.cf:3: keepalive: must be less than half of deadtime (30s, the default): 2 x 20s >= 30s"
        );
        assert_eq!(
            one_err("deadtime 10\nwarntime 10\n"),
            "ha.cf:4: warntime: must be less than deadtime: warntime 10s >= deadtime 10s"
        );
        assert_eq!(ok("deadtime 10\nwarntime 5\n").warntime, S(5));
        assert_eq!(
            one_err("deadtime 20\ninitdead 15\n"),
            "ha.cf:4: initdead: must be at least deadtime: initdead 15s < deadtime 20s"
        );
        let w = warns("keepalive 200ms\ndeadtime 1\ninitdead 5\n");
        assert_eq!(w.len(), 1);
        assert!(
            w[0].starts_with("ha.cf:5: initdead: 5s may be too small"),
            "{w:?}"
        );
        assert_eq!(
            one_err("deadping 2\n"),
            "ha.cf:3: deadping: must be greater than twice keepalive: deadping 2s <= 2 x keepalive 1s"
        );
        assert_eq!(ok("deadping 5\n").deadping, S(5));
        // A bad time skips the cross-checks rather than piling on.
        assert_eq!(errs("keepalive x\ndeadtime 1\n").len(), 1);
        let h = ok("keepalive 200ms\ndeadtime 1\n");
        assert_eq!(
            (h.keepalive, h.deadtime, h.warntime, h.initdead),
            (MS(200), S(1), MS(500), S(12))
        );
    }

    #[test]
    fn udpport_must_come_first() {
        assert_eq!(
            one_err("udpport 695\n"),
            "ha.cf:3: udpport: must come before the bcast/ucast lines it applies to; line 1 \
             (bcast) comes first"
        );
        let (h, e, _) = run(
            "udpport 695\nbcast eth0\nucast eth1 10.0.0.2\nmcast eth2 239.1.1.1 700 1 0\nnode a\n",
        );
        assert!(e.is_empty(), "{e:?}");
        assert_eq!(h.udpport, 695);
        let ports: Vec<u16> = h.media.iter().map(|m| m.port).collect();
        assert_eq!(ports, vec![695, 695, 700]);
        // mcast carries its own port: udpport after it is fine.
        let (_, e, _) = run("mcast eth0 239.1.1.1 694 1 0\nudpport 695\nnode a\n");
        assert!(e.is_empty(), "{e:?}");
        let (_, e, _) = run("node a\nucast eth0 10.0.0.2\nudpport 695\n");
        assert_eq!(
            e,
            vec!["ha.cf:3: udpport: must come before the bcast/ucast lines it applies to; line 2 (ucast) comes first"]
        );
    }

    #[test]
    fn bcast_media() {
        let h = ok("bcast eth1 eth2\n");
        let names: Vec<String> = h.media.iter().map(Medium::name).collect();
        assert_eq!(names, vec!["bcast eth0", "bcast eth1", "bcast eth2"]);
        assert_eq!(h.media[2].at.line, 3);
        assert_eq!(
            one_err("bcast eth0\n"),
            "ha.cf:3: bcast: `eth0` already has a bcast medium (line 1)"
        );
        assert_eq!(
            one_err("bcast averyveryverylongname\n"),
            "ha.cf:3: bcast: `averyveryverylongname`: not an interface name (at most 15 bytes, no `/`)"
        );
        let w = warns("udp eth1\n");
        assert_eq!(
            w,
            vec!["ha.cf:3: udp: heartbeat's old name for bcast; write `bcast`"]
        );
    }

    #[test]
    fn mcast_media() {
        let h = ok("mcast eth1 239.0.0.1 694 1 0\n");
        assert_eq!(
            h.media[1].kind,
            MediumKind::Mcast {
                group: Ipv4Addr::new(239, 0, 0, 1),
                ttl: 1,
                loop_: false
            }
        );
        assert_eq!(h.media[1].name(), "mcast eth1 239.0.0.1");
        assert_eq!(
            one_err("mcast eth1 10.0.0.1 694 1 0\n"),
            "ha.cf:3: mcast: `10.0.0.1` is not a multicast group (224.0.0.0/4)"
        );
        assert_eq!(
            one_err("mcast eth1 239.0.0.1 694 0 0\n"),
            "ha.cf:3: mcast: `0`: TTL must be from 1 to 255"
        );
        assert_eq!(
            one_err("mcast eth1 239.0.0.1 694 256 0\n"),
            "ha.cf:3: mcast: `256`: TTL must be from 1 to 255"
        );
        assert_eq!(
            one_err("mcast eth1 239.0.0.1 694 1 2\n"),
            "ha.cf:3: mcast: `2`: loop must be 0 or 1"
        );
        assert_eq!(
            one_err("mcast eth1 239.0.0.1 0 1 1\n"),
            "ha.cf:3: mcast: `0`: not a UDP port (1-65535)"
        );
        assert_eq!(
            one_err("mcast eth1 239.0.0.1 694 1\n"),
            "ha.cf:3: mcast: missing value: expected `mcast IF GROUP PORT TTL LOOP`"
        );
        assert_eq!(
            one_err("mcast eth1 239.0.0.1 694 1 0 x\n"),
            "ha.cf:3: mcast: too many values: expected `mcast IF GROUP PORT TTL LOOP`"
        );
        // Several bad fields: every one is reported.
        assert_eq!(errs("mcast eth1 10.0.0.1 694 0 7\n").len(), 3);
        assert_eq!(
            one_err("mcast eth1 239.0.0.1 694 1 0\nmcast eth1 239.0.0.1 694 2 1\n"),
            "ha.cf:4: mcast: `eth1 239.0.0.1 694` is already a medium (line 3)"
        );
    }

    #[test]
    fn ucast_media_merge() {
        let (h, e, _) = run(
            "ucast eth1 10.0.0.1\nucast eth1 10.0.0.2\nucast eth2 10.0.0.1\nbcast eth0\nnode a b\n",
        );
        assert!(e.is_empty(), "{e:?}");
        assert_eq!(h.media.len(), 3);
        assert_eq!(h.media[0].name(), "ucast eth1");
        assert_eq!(
            h.media[0].kind,
            MediumKind::Ucast {
                peers: vec![Ipv4Addr::new(10, 0, 0, 1), Ipv4Addr::new(10, 0, 0, 2)]
            }
        );
        assert_eq!(h.media[0].at.line, 1);
        assert_eq!(
            h.media[1].kind,
            MediumKind::Ucast {
                peers: vec![Ipv4Addr::new(10, 0, 0, 1)]
            }
        );
        assert_eq!(h.media[2].kind, MediumKind::Bcast);
        assert_eq!(
            one_err("ucast eth1 10.0.0.1\nucast eth1 10.0.0.1\n"),
            "ha.cf:4: ucast: `eth1 10.0.0.1` is already listed (line 3)"
        );
    }

    #[test]
    fn ucast_refuses_host_names() {
        assert_eq!(
            one_err("ucast eth1 peer2\n"),
            "ha.cf:3: ucast: `peer2` is a host name, not an IPv4 address: hbd does not resolve \
             names at start-up, so a DNS outage cannot block a failover; write the address"
        );
        assert_eq!(
            one_err("ucast eth1 peer2.example.com\n"),
            "ha.cf:3: ucast: `peer2.example.com` is a host name, not an IPv4 address: hbd does \
             not resolve names at start-up, so a DNS outage cannot block a failover; write the address"
        );
        assert_eq!(
            one_err("ucast eth1 fe80::1\n"),
            "ha.cf:3: ucast: `fe80::1`: IPv6 addresses are not supported; write an IPv4 address"
        );
        assert_eq!(
            one_err("ucast eth1 10.0.0.300\n"),
            "ha.cf:3: ucast: `10.0.0.300`: not an IPv4 address"
        );
        assert_eq!(
            one_err("ucast eth1\n"),
            "ha.cf:3: ucast: missing value: expected `ucast IF PEER-ADDRESS`"
        );
    }

    #[test]
    fn auto_failback_values() {
        assert_eq!(ok("auto_failback on\n").auto_failback, AutoFailback::On);
        assert_eq!(ok("auto_failback yes\n").auto_failback, AutoFailback::On);
        assert_eq!(ok("auto_failback off\n").auto_failback, AutoFailback::Off);
        assert_eq!(
            ok("auto_failback legacy\n").auto_failback,
            AutoFailback::Legacy
        );
        assert!(warns("auto_failback legacy\n")[0]
            .starts_with("ha.cf:3: auto_failback: legacy is deprecated"));
        assert_eq!(
            one_err("auto_failback sometimes\n"),
            "ha.cf:3: auto_failback: `sometimes`: expected on, off or legacy"
        );
    }

    #[test]
    fn logging() {
        assert_eq!(ok("logfacility none\n").logfacility, None);
        assert_eq!(
            ok("logfacility LOCAL7\n").logfacility.as_deref(),
            Some("local7")
        );
        for (f, _) in SYSLOG_FACILITIES {
            assert_eq!(
                ok(&format!("logfacility {f}\n")).logfacility.as_deref(),
                Some(*f)
            );
        }
        assert!(one_err("logfacility local8\n")
            .starts_with("ha.cf:3: logfacility: `local8`: not a syslog facility"));
        assert_eq!(
            warns("use_logd yes\n"),
            vec!["ha.cf:3: use_logd: hbd has no logd; it logs to syslog (logfacility), logfile and debugfile instead"]
        );
        assert!(ok("use_logd true\n").use_logd);
        assert!(warns("use_logd off\n").is_empty());
        for b in [
            "yes", "no", "on", "off", "true", "false", "y", "n", "1", "0", "YES",
        ] {
            assert!(errs(&format!("use_logd {b}\n")).is_empty(), "{b}");
        }
        assert_eq!(
            one_err("use_logd maybe\n"),
            "ha.cf:3: use_logd: `maybe`: expected yes or no (on/off, true/false, y/n, 1/0)"
        );
    }

    #[test]
    fn ping_and_ping_group() {
        let h = ok("ping 10.0.0.254 10.0.0.253\nping_group gw 10.1.0.1 10.1.0.2\n");
        let addrs: Vec<Ipv4Addr> = h.ping.iter().map(|(a, _)| *a).collect();
        assert_eq!(
            addrs,
            vec![Ipv4Addr::new(10, 0, 0, 254), Ipv4Addr::new(10, 0, 0, 253)]
        );
        assert_eq!(h.ping[0].1.line, 3);
        assert_eq!(h.ping_groups.len(), 1);
        assert_eq!(h.ping_groups[0].name, "gw");
        assert_eq!(h.ping_groups[0].addrs.len(), 2);
        assert_eq!(h.ping_groups[0].at.line, 4);
        assert!(one_err("ping router\n").starts_with("ha.cf:3: ping: `router` is a host name"));
        assert_eq!(
            one_err("ping\n"),
            "ha.cf:3: ping: missing value: expected `ping ADDRESS [ADDRESS...]`"
        );
        assert_eq!(
            one_err("ping 10.0.0.1\nping 10.0.0.1\n"),
            "ha.cf:4: ping: `10.0.0.1` is listed twice (first at line 3)"
        );
        assert_eq!(
            one_err("ping_group gw\n"),
            "ha.cf:3: ping_group: `gw`: missing value: expected `ping_group NAME ADDRESS [ADDRESS...]`"
        );
        assert_eq!(
            one_err("ping_group a 10.0.0.1\n"),
            "ha.cf:3: ping_group: `a` is also a node name (line 2)"
        );
        assert_eq!(
            one_err("ping_group g 10.0.0.1\nping_group g 10.0.0.2\n"),
            "ha.cf:4: ping_group: `g` is defined twice (first at line 3)"
        );
    }

    #[test]
    fn respawn() {
        let h = ok("respawn root /bin/sh -c 'exit 0'   # comment\n");
        assert_eq!(
            h.respawn,
            vec![Respawn {
                user: "root".into(),
                command: "/bin/sh -c 'exit 0'".into(),
                at: Location {
                    file: "ha.cf".into(),
                    line: 3
                },
                builtin: None,
            }]
        );
        // heartbeat's helpers: built in, accepted even when not installed.
        let h = ok("respawn hacluster /usr/lib/heartbeat/ipfail\n\
                    respawn hacluster /usr/lib64/heartbeat/dopd\n\
                    respawn root /usr/lib/heartbeat/ifcheckd -x\n");
        let b: Vec<_> = h.respawn.iter().map(|r| r.builtin).collect();
        assert_eq!(
            b,
            [
                Some(BuiltinHelper::Ipfail),
                Some(BuiltinHelper::Dopd),
                Some(BuiltinHelper::Ifcheckd)
            ]
        );
        assert_eq!(h.respawn[2].command, "/usr/lib/heartbeat/ifcheckd -x");
        assert_eq!(
            one_err("respawn no_such_user_hbd /bin/sh\n"),
            "ha.cf:3: respawn: user `no_such_user_hbd` does not exist"
        );
        assert_eq!(
            one_err("respawn root bin/sh\n"),
            "ha.cf:3: respawn: `bin/sh`: the program must be an absolute path"
        );
        assert!(one_err("respawn root /etc/passwd\n")
            .starts_with("ha.cf:3: respawn: `/etc/passwd` is not executable"));
        assert_eq!(
            one_err("respawn root\n"),
            "ha.cf:3: respawn: missing value: expected `respawn USER /path/to/program [ARGS...]`"
        );
    }

    #[test]
    fn crm() {
        assert!(errs("crm off\n").is_empty());
        assert!(errs("crm no\n").is_empty());
        for v in ["on", "yes", "respawn", "true"] {
            assert_eq!(
                one_err(&format!("crm {v}\n")),
                format!("ha.cf:3: crm: `{v}`: hbd runs haresources resource groups, not the CRM (Pacemaker); drop the line")
            );
        }
        assert_eq!(
            one_err("crm bogus\n"),
            "ha.cf:3: crm: `bogus`: only `crm off` is accepted"
        );
    }

    #[test]
    fn every_error_is_collected() {
        let (_, e, _) = run(
            "keepalive x\nfrobnicate\nserial /dev/ttyS0\nucast eth0 peer\nnode a\nnode a\nauto_failback maybe\n",
        );
        let lines: Vec<&str> = e.iter().map(|s| &s[..s.find(": ").unwrap()]).collect();
        assert_eq!(
            lines,
            vec!["ha.cf:1", "ha.cf:2", "ha.cf:3", "ha.cf:4", "ha.cf:6", "ha.cf:7"]
        );
    }

    #[test]
    fn stonith_host_and_watchdog() {
        let h = ok("stonith_host * fence_hbd_lab lab=x\n\
                    stonith_host a external/ipmi b 192.0.2.12 admin pw lanplus\n\
                    watchdog /dev/watchdog\n");
        assert_eq!(h.stonith_hosts.len(), 2);
        assert_eq!(h.stonith_hosts[0].0.agent, "fence_hbd_lab");
        assert_eq!(h.stonith_hosts[0].1.line, 3);
        assert_eq!(h.stonith_hosts[1].0.agent, "fence_ipmilan");
        assert_eq!(h.stonith_hosts[1].0.from.as_deref(), Some("a"));
        let (dev, at) = h.watchdog.unwrap();
        assert_eq!(dev, PathBuf::from("/dev/watchdog"));
        assert_eq!(at.line, 5);
        assert_eq!(ok("").watchdog, None);
        let w = warns("stonith_host * fence_hbd_no_such_agent a=b\n");
        assert_eq!(w.len(), 1, "{w:?}");
        assert!(w[0].starts_with(
            "ha.cf:3: stonith_host: `fence_hbd_no_such_agent` not found (PATH, /usr/sbin, \
             hbd's resources/fence): install fence-agents"
        ));

        assert_eq!(
            one_err("stonith_host * external/ssh a b\n"),
            "ha.cf:3: stonith_host: `external/ssh`: ssh is not fencing: a hung or cut-off \
             node does not answer ssh, which is exactly when fencing is needed; use a power \
             or management-board agent (fence_ipmilan, fence_apc_snmp, fence_virsh...) or \
             the `watchdog` directive"
        );
        assert_eq!(
            one_err("stonith_host c fence_x a=b\n"),
            "ha.cf:3: stonith_host: `c` is not a node (node lines: a b)"
        );
        assert_eq!(
            one_err("stonith_host a external/ipmi z 192.0.2.1 u p\n"),
            "ha.cf:3: stonith_host: `z` is not a node (node lines: a b)"
        );
        assert!(one_err("stonith /etc/ha.d/stonith.cfg\n").starts_with(
            "ha.cf:3: stonith: heartbeat's device-file form is not supported: \
                          write the device on a `stonith_host` line"
        ));
        assert_eq!(
            one_err("watchdog dev/watchdog\n"),
            "ha.cf:3: watchdog: `dev/watchdog`: must be an absolute path"
        );
        assert!(one_err("watchdog /dev/a\nwatchdog /dev/b\n")
            .starts_with("ha.cf:4: watchdog: given twice"));
        // Exit 2 follows from any error (config::load); the full load is
        // tested in tests/config.rs.
    }
}
