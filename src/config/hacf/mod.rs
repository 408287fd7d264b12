//! `ha.cf` with heartbeat 3.0's syntax, defaults and checks.
//!
//! This file: the model ([`HaCf`]), the value parsers, the line loop
//! ([`parse_full`]) and the checks across lines. `directives.rs`: what
//! each directive says, one function per group of directives.

use super::time::fmt_duration;
use super::{parse_duration, ConfigError, ConfigWarning, Location};
use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::time::Duration;

mod directives;
#[cfg(test)]
pub(crate) mod tests;

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
    /// `pingd`: ping-node connectivity as a CRM attribute; hbd's ping
    /// nodes and tiebreaker do it without a CRM.
    Pingd,
    /// `ccm`: the consensus membership; hbd's membership is built in.
    Ccm,
    /// `ha_logd`: the log daemon; hbd logs itself (logfile, syslog).
    Logd,
    /// `hbagent`: the SNMP subagent; hbd has `hbctl status --json`.
    Hbagent,
    /// `mgmtd`: the GUI's management daemon; hbd has `hbctl`.
    Mgmtd,
}

impl BuiltinHelper {
    /// The helper of a `respawn` program path, by its file name.
    pub fn of_program(program: &str) -> Option<BuiltinHelper> {
        match program.rsplit('/').next()? {
            "ipfail" => Some(BuiltinHelper::Ipfail),
            "dopd" => Some(BuiltinHelper::Dopd),
            "ifcheckd" => Some(BuiltinHelper::Ifcheckd),
            "pingd" => Some(BuiltinHelper::Pingd),
            "ccm" => Some(BuiltinHelper::Ccm),
            "ha_logd" => Some(BuiltinHelper::Logd),
            "hbagent" => Some(BuiltinHelper::Hbagent),
            "mgmtd" => Some(BuiltinHelper::Mgmtd),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            BuiltinHelper::Ipfail => "ipfail",
            BuiltinHelper::Dopd => "dopd",
            BuiltinHelper::Ifcheckd => "ifcheckd",
            BuiltinHelper::Pingd => "pingd",
            BuiltinHelper::Ccm => "ccm",
            BuiltinHelper::Logd => "ha_logd",
            BuiltinHelper::Hbagent => "hbagent",
            BuiltinHelper::Mgmtd => "mgmtd",
        }
    }

    /// The helper an `apiauth CLIENT` line names.
    pub fn of_client(client: &str) -> Option<BuiltinHelper> {
        BuiltinHelper::of_program(client)
    }

    /// What hbd does instead, for `hbctl check`.
    pub fn instead(self) -> &'static str {
        match self {
            BuiltinHelper::Ipfail => {
                "built into hbd: the `ping` and `ping_group` nodes drive its ping \
                 tiebreaker (cluster.toml [tiebreaker])"
            }
            BuiltinHelper::Dopd => {
                "built into hbd: the disk's fence-peer (outdate-peer) handler, \
                 drbd-peer-outdater, is answered by hbd's own peer outdater"
            }
            BuiltinHelper::Ifcheckd => {
                "built into hbd: the link state of every medium is tracked \
                 (`hbctl links NODE`)"
            }
            BuiltinHelper::Pingd => {
                "built into hbd: `ping`/`ping_group` nodes are pinged by hbd itself and \
                 drive its tiebreaker; there is no CRM attribute to set"
            }
            BuiltinHelper::Ccm => "built into hbd: its membership is the ha.cf node list",
            BuiltinHelper::Logd => {
                "not needed: hbd writes its own log (logfile, debugfile, logfacility)"
            }
            BuiltinHelper::Hbagent => {
                "not needed: hbd has no SNMP subagent; `hbctl status --json` reports the \
                 same states"
            }
            BuiltinHelper::Mgmtd => "not needed: hbd is managed with `hbctl`",
        }
    }

    /// What hbd does instead, for the log.
    pub fn replacement(self) -> &'static str {
        match self {
            BuiltinHelper::Ipfail => "ping tiebreaker",
            BuiltinHelper::Dopd => "peer outdater",
            BuiltinHelper::Ifcheckd => "link tracking of every medium",
            BuiltinHelper::Pingd => "ping nodes",
            BuiltinHelper::Ccm => "membership",
            BuiltinHelper::Logd => "logging",
            BuiltinHelper::Hbagent => "hbctl status",
            BuiltinHelper::Mgmtd => "hbctl",
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

/// Why an ha.cf value is not an address or an interface name: the message of
/// its line's [`ConfigError`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum ValueError {
    #[error("`{0}`: IPv6 addresses are not supported; write an IPv4 address")]
    Ipv6(String),
    #[error(
        "`{0}` is a host name, not an IPv4 address: hbd does not resolve names at \
         start-up, so a DNS outage cannot block a failover; write the address"
    )]
    HostName(String),
    #[error("`{0}`: not an IPv4 address")]
    NotIpv4(String),
    #[error("`{0}`: not an interface name (at most 15 bytes, no `/`)")]
    NotIface(String),
}

/// An IPv4 literal. Host names are refused with the reason.
pub(crate) fn parse_ipv4(s: &str) -> Result<Ipv4Addr, ValueError> {
    if let Ok(a) = s.parse::<Ipv4Addr>() {
        return Ok(a);
    }
    if s.parse::<std::net::Ipv6Addr>().is_ok() {
        return Err(ValueError::Ipv6(s.to_string()));
    }
    let hostname_like = s
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.' || c == '_')
        && s.chars().any(|c| c.is_ascii_alphabetic());
    if hostname_like {
        Err(ValueError::HostName(s.to_string()))
    } else {
        Err(ValueError::NotIpv4(s.to_string()))
    }
}

fn check_iface(s: &str) -> Result<(), ValueError> {
    if s.len() > 15 || s.contains('/') || s == "." || s == ".." {
        Err(ValueError::NotIface(s.to_string()))
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
    /// Each node's `node` line (names lowercased).
    pub node_lines: HashMap<String, usize>,
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

/// Where one file's errors and warnings collect while its lines are parsed.
struct Diagnostics<'a> {
    file: &'a Path,
    errors: Vec<ConfigError>,
    warnings: Vec<ConfigWarning>,
    /// Single-valued directives seen, with their first line.
    once: HashMap<String, usize>,
}

impl Diagnostics<'_> {
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
                self.err(line, key, m.to_string());
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
                self.err(line, key, m.to_string());
                None
            }
        }
    }

    fn iface(&mut self, line: usize, key: &str, s: &str) -> bool {
        match check_iface(s) {
            Ok(()) => true,
            Err(m) => {
                self.err(line, key, m.to_string());
                false
            }
        }
    }
}

/// What the lines said so far, with the errors and warnings: each
/// directive's function ([`Seen::directive`], in `directives.rs`) records
/// into it, and [`Seen::finish`] checks across lines and builds the result.
struct Seen<'a> {
    p: Diagnostics<'a>,
    keepalive: Option<(Duration, usize)>,
    deadtime: Option<(Duration, usize)>,
    warntime: Option<(Duration, usize)>,
    initdead: Option<(Duration, usize)>,
    deadping: Option<(Duration, usize)>,
    /// Every timing line was right: the checks between timings apply.
    times_ok: bool,
    udpport: u16,
    /// The first bcast/ucast line: udpport must come before it.
    first_udp_medium: Option<(usize, &'static str)>,
    saw_media_line: bool,
    /// A missing medium is an error (heartbeat backend).
    media_required: bool,
    media: Vec<Medium>,
    ucast_peer_lines: HashMap<(String, Ipv4Addr), usize>,
    nodes: Vec<String>,
    node_lines: HashMap<String, usize>,
    first_node_line: Option<usize>,
    auto_failback: AutoFailback,
    logfile: Option<PathBuf>,
    debugfile: Option<PathBuf>,
    logfacility: Option<String>,
    use_logd: bool,
    hopfudge: u32,
    ping: Vec<(Ipv4Addr, Location)>,
    ping_groups: Vec<PingGroup>,
    respawn: Vec<Respawn>,
    stonith_hosts: Vec<(crate::fence::FenceDevice, Location)>,
    watchdog: Option<(PathBuf, Location)>,
    debug: u32,
    realtime: bool,
    rtprio: Option<u32>,
}

/// Directives whose values heartbeat takes as the rest of the line
/// (config.c's WLdirectives): commas in them are not separators.
const WHOLE_LINE: &[&str] = &["stonith", "stonith_host", "respawn", "apiauth"];

/// Parses `ha.cf` text, keeping what `load` needs for its cross-checks.
pub(crate) fn parse_full(path: &Path, text: &str) -> Parsed {
    parse_full_as(path, text, true)
}

/// [`parse_full`]; `media_required`: false when another engine carries the
/// membership (cluster.toml `[membership] backend = "corosync"`), so that
/// ha.cf without a medium is right.
pub(crate) fn parse_full_as(path: &Path, text: &str, media_required: bool) -> Parsed {
    let mut seen = Seen {
        media_required,
        p: Diagnostics {
            file: path,
            errors: Vec::new(),
            warnings: Vec::new(),
            once: HashMap::new(),
        },
        keepalive: None,
        deadtime: None,
        warntime: None,
        initdead: None,
        deadping: None,
        times_ok: true,
        udpport: DEFAULT_UDPPORT,
        first_udp_medium: None,
        saw_media_line: false,
        media: Vec::new(),
        ucast_peer_lines: HashMap::new(),
        nodes: Vec::new(),
        node_lines: HashMap::new(),
        first_node_line: None,
        auto_failback: AutoFailback::Legacy,
        logfile: None,
        debugfile: None,
        logfacility: None,
        use_logd: false,
        hopfudge: DEFAULT_HOPFUDGE,
        ping: Vec::new(),
        ping_groups: Vec::new(),
        respawn: Vec::new(),
        stonith_hosts: Vec::new(),
        watchdog: None,
        debug: 0,
        realtime: true,
        rtprio: None,
    };
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
        // heartbeat separates values by blanks or commas (config.c:
        // `bcast eth0, eth1`), but for the directives it hands the whole
        // line (stonith_host's parameters, a respawn command).
        let args: Vec<&str> = if WHOLE_LINE.contains(&key) {
            toks.collect()
        } else {
            toks.flat_map(|t| t.split(','))
                .filter(|t| !t.is_empty())
                .collect()
        };
        if key == "udp" {
            seen.p
                .warn(line, key, "heartbeat's old name for bcast; write `bcast`");
            key = "bcast";
        }
        seen.directive(line, key, &args, content);
    }
    seen.finish()
}

impl Seen<'_> {
    /// The checks across lines, then the result.
    fn finish(mut self) -> Parsed {
        // Timings and heartbeat's checks on them (config.c, init_config).
        let ka = self.keepalive.map_or(DEFAULT_KEEPALIVE, |(d, _)| d);
        let dt = self.deadtime.map_or(DEFAULT_DEADTIME, |(d, _)| d);
        let wt = self.warntime.map_or(HaCf::default_warntime(dt), |(d, _)| d);
        let id = self.initdead.map_or(HaCf::default_initdead(dt), |(d, _)| d);
        let dp = self.deadping.map_or(dt, |(d, _)| d);
        if self.times_ok {
            self.check_times(ka, dt, wt, id, dp);
        }
        self.check_across();
        let mut p = self.p;
        p.errors.sort_by_key(|e| e.line());
        p.warnings.sort_by_key(|w| w.line);
        Parsed {
            ha: HaCf {
                keepalive: ka,
                deadtime: dt,
                warntime: wt,
                initdead: id,
                udpport: self.udpport,
                media: self.media,
                nodes: self.nodes,
                auto_failback: self.auto_failback,
                logfile: self.logfile,
                debugfile: self.debugfile,
                logfacility: self.logfacility,
                use_logd: self.use_logd,
                hopfudge: self.hopfudge,
                ping: self.ping,
                ping_groups: self.ping_groups,
                deadping: dp,
                respawn: self.respawn,
                stonith_hosts: self.stonith_hosts,
                watchdog: self.watchdog,
                debug: self.debug,
                realtime: self.realtime,
                rtprio: self.rtprio,
            },
            first_node_line: self.first_node_line,
            node_lines: self.node_lines,
            errors: p.errors,
            warnings: p.warnings,
        }
    }

    /// heartbeat's checks between the timings (config.c, init_config), on
    /// the values in force: keepalive, deadtime, warntime, initdead and
    /// deadping.
    fn check_times(
        &mut self,
        ka: Duration,
        dt: Duration,
        wt: Duration,
        id: Duration,
        dp: Duration,
    ) {
        let p = &mut self.p;
        if dt <= ka * 2 {
            let (ds, ks) = (fmt_duration(dt), fmt_duration(ka));
            match (self.deadtime, self.keepalive) {
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
        if let Some((_, line)) = self.warntime {
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
        if let Some((_, line)) = self.initdead {
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
        if let Some((_, line)) = self.deadping {
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

    /// Media and nodes present; ping groups not named like nodes;
    /// stonith_host names only nodes (node lines may come after it).
    fn check_across(&mut self) {
        let p = &mut self.p;
        let path = p.file;
        if !self.saw_media_line && self.media_required {
            p.file_err("no heartbeat media: add a bcast, mcast or ucast line");
        }
        if self.first_node_line.is_none() {
            p.file_err("no `node` lines: list every cluster node, named as `uname -n` names it");
        }
        for g in &self.ping_groups {
            if let Some(l) = self.node_lines.get(&g.name.to_lowercase()) {
                p.errors.push(ConfigError::Line {
                    file: path.to_path_buf(),
                    line: g.at.line,
                    key: "ping_group".to_string(),
                    message: format!("`{}` is also a node name (line {l})", g.name),
                });
            }
        }

        // stonith_host FROM must be a node (node lines may come later).
        for (d, at) in &self.stonith_hosts {
            let unknown = d
                .from
                .iter()
                .chain(d.targets.iter().map(|t| &t.node))
                .find(|n| !self.node_lines.contains_key(*n));
            if let (Some(n), false) = (unknown, self.node_lines.is_empty()) {
                p.errors.push(ConfigError::Line {
                    file: path.to_path_buf(),
                    line: at.line,
                    key: "stonith_host".to_string(),
                    message: format!("`{n}` is not a node (node lines: {})", self.nodes.join(" ")),
                });
            }
        }
    }
}
