//! `keepalived.conf` (keepalived 2.2.7 syntax) for hbd's VRRP mode.
//!
//! [`parse`] does no I/O: it takes the file's path (for messages) and text and
//! returns the model, every error at once (`file:line: key: message`, like the
//! rest of [`crate::config`]) and warnings for keepalived's known pitfalls and
//! for settings that are accepted but have no effect in hbd. [`load`] reads
//! the file; [`lint_scripts`] stats the scripts the configuration runs.
//!
//! The syntax is keepalived's: one statement per line, `{ }` blocks, `!` and
//! `#` comments, `"quoted strings"` (read by `config::syntax`, shared with
//! `drbd.conf`). Nothing is silently ignored: a keyword hbd
//! does not implement is an error unless it is a pure tuning knob (then a
//! warning). The model keeps what the file says; the methods of
//! [`VrrpInstance`] apply keepalived's rules (defaults derived from the state
//! and priority, strict mode, version) so the runtime behaves as keepalived.

use crate::config::syntax::{self, Opt, Parser, Stmt, Word};
use crate::config::{ConfigError, ConfigWarning, Location};
use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::path::Path;
use std::time::Duration;

/// A whole `keepalived.conf`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct KeepalivedConf {
    pub global: GlobalDefs,
    /// `vrrp_script`s, in file order.
    pub scripts: Vec<VrrpScript>,
    /// `vrrp_instance`s, in file order.
    pub instances: Vec<VrrpInstance>,
    /// `vrrp_sync_group`s, in file order.
    pub sync_groups: Vec<SyncGroup>,
}

/// `global_defs { }`.
#[derive(Debug, Clone, PartialEq)]
pub struct GlobalDefs {
    pub router_id: Option<String>,
    /// Accepted; hbd sends no mail.
    pub notification_email: Vec<String>,
    pub notification_email_from: Option<String>,
    pub smtp_server: Option<String>,
    pub smtp_connect_timeout: Option<Duration>,
    pub vrrp_skip_check_adv_addr: bool,
    pub vrrp_strict: bool,
    /// Delay between gratuitous ARPs on one interface (default 0).
    pub vrrp_garp_interval: Duration,
    /// Delay between unsolicited neighbour advertisements (default 0).
    pub vrrp_gna_interval: Duration,
    /// Delay before the second burst of gratuitous ARPs after becoming
    /// MASTER (default 5 s; zero means no second burst).
    pub vrrp_garp_master_delay: Duration,
    /// Gratuitous ARPs per burst (default 5).
    pub vrrp_garp_master_repeat: u32,
    /// Period of gratuitous ARPs while MASTER (default zero: none).
    pub vrrp_garp_master_refresh: Duration,
    /// Gratuitous ARPs per refresh (default 1).
    pub vrrp_garp_master_refresh_repeat: u32,
    /// Multicast group of the adverts (default 224.0.0.18).
    pub vrrp_mcast_group4: Ipv4Addr,
    pub enable_script_security: bool,
    /// `script_user USER [GROUP]`: the default user of scripts.
    pub script_user: Option<ScriptUser>,
    /// 2 (default) or 3.
    pub vrrp_version: u8,
    /// The `global_defs` line, when present.
    pub at: Option<Location>,
}

impl Default for GlobalDefs {
    fn default() -> Self {
        GlobalDefs {
            router_id: None,
            notification_email: Vec::new(),
            notification_email_from: None,
            smtp_server: None,
            smtp_connect_timeout: None,
            vrrp_skip_check_adv_addr: false,
            vrrp_strict: false,
            vrrp_garp_interval: Duration::ZERO,
            vrrp_gna_interval: Duration::ZERO,
            vrrp_garp_master_delay: DEFAULT_GARP_MASTER_DELAY,
            vrrp_garp_master_repeat: DEFAULT_GARP_MASTER_REPEAT,
            vrrp_garp_master_refresh: Duration::ZERO,
            vrrp_garp_master_refresh_repeat: 1,
            vrrp_mcast_group4: DEFAULT_MCAST_GROUP4,
            enable_script_security: false,
            script_user: None,
            vrrp_version: 2,
            at: None,
        }
    }
}

/// `USER [GROUP]` of `script_user`, `user`, and of notify scripts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScriptUser {
    pub user: String,
    pub group: Option<String>,
}

/// A command as keepalived runs it: no shell; the string is split into
/// words (single or double quotes group, a backslash escapes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Command {
    /// As written (without the outer double quotes).
    pub text: String,
    /// `argv`, never empty.
    pub argv: Vec<String>,
}

/// `vrrp_script NAME { }`.
#[derive(Debug, Clone, PartialEq)]
pub struct VrrpScript {
    pub name: String,
    pub command: Command,
    /// Between runs (default 1 s).
    pub interval: Duration,
    /// `None`: the interval (see [`VrrpScript::effective_timeout`]).
    pub timeout: Option<Duration>,
    /// -253..253 (default 0: a failure means FAULT).
    pub weight: i32,
    /// `weight W reverse`.
    pub weight_reverse: bool,
    /// Successes in a row to be up (default 1).
    pub rise: u32,
    /// Failures in a row to be down (default 1).
    pub fall: u32,
    /// Starts failed rather than up.
    pub init_fail: bool,
    pub user: Option<ScriptUser>,
    pub at: Location,
}

impl VrrpScript {
    /// The timeout, or the interval when none is given (as keepalived).
    pub fn effective_timeout(&self) -> Duration {
        self.timeout.unwrap_or(self.interval)
    }
}

/// `state`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InitialState {
    Master,
    Backup,
}

/// One line of `virtual_ipaddress { }`: `ADDR[/PREFIX] [brd X] [dev IF]
/// [scope S] [label L]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Vip {
    pub addr: Ipv4Addr,
    /// 32 when not given (as keepalived).
    pub prefix: u8,
    pub brd: Option<Ipv4Addr>,
    /// `None`: the instance's interface.
    pub dev: Option<String>,
    pub scope: Option<String>,
    pub label: Option<String>,
    pub at: Location,
}

/// One line of `track_script { }`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrackScript {
    pub name: String,
    /// Overrides the script's weight.
    pub weight: Option<i32>,
    pub reverse: bool,
    pub at: Location,
}

/// One line of `track_interface { }`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrackInterface {
    pub name: String,
    /// 0 (default): the interface down means FAULT.
    pub weight: i32,
    pub reverse: bool,
    pub at: Location,
}

/// `authentication { }`. Only PASS (AH is an error).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Auth {
    /// The password, cut to 8 bytes as keepalived does.
    Pass(String),
}

/// `notify*  "COMMAND" [USER [GROUP]]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notify {
    pub command: Command,
    pub user: Option<ScriptUser>,
    pub at: Location,
}

/// The notify scripts of an instance or a sync group.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Notifies {
    /// `notify`: gets `INSTANCE|GROUP NAME STATE PRIORITY`.
    pub notify: Option<Notify>,
    pub master: Option<Notify>,
    pub backup: Option<Notify>,
    pub fault: Option<Notify>,
    pub stop: Option<Notify>,
}

impl Notifies {
    /// Every script given, with its keyword.
    pub fn all(&self) -> Vec<(&'static str, &Notify)> {
        [
            ("notify", &self.notify),
            ("notify_master", &self.master),
            ("notify_backup", &self.backup),
            ("notify_fault", &self.fault),
            ("notify_stop", &self.stop),
        ]
        .into_iter()
        .filter_map(|(k, n)| n.as_ref().map(|n| (k, n)))
        .collect()
    }
}

/// `vrrp_instance NAME { }`, as written; the methods resolve defaults.
#[derive(Debug, Clone, PartialEq)]
pub struct VrrpInstance {
    pub name: String,
    /// `None`: derived from the priority (see [`VrrpInstance::initial_state`]).
    pub state: Option<InitialState>,
    pub interface: String,
    pub vrid: u8,
    /// `None`: 255 with `state MASTER`, else 100 (see [`VrrpInstance::base_priority`]).
    pub priority: Option<u8>,
    /// As written (default 1 s); see [`VrrpInstance::advert_interval`].
    pub advert_int: Duration,
    pub nopreempt: bool,
    pub preempt_delay: Duration,
    pub vips: Vec<Vip>,
    pub excluded_vips: Vec<Vip>,
    pub track_scripts: Vec<TrackScript>,
    pub track_interfaces: Vec<TrackInterface>,
    /// As written; see [`VrrpInstance::effective_auth`].
    pub auth: Option<Auth>,
    pub notify: Notifies,
    /// `unicast_src_ip` (or `mcast_src_ip`).
    pub unicast_src_ip: Option<Ipv4Addr>,
    pub unicast_peers: Vec<Ipv4Addr>,
    pub garp_master_delay: Option<Duration>,
    pub garp_master_repeat: Option<u32>,
    pub garp_master_refresh: Option<Duration>,
    pub garp_master_refresh_repeat: Option<u32>,
    pub use_vmac: bool,
    /// `use_vmac NAME`.
    pub vmac_name: Option<String>,
    pub vmac_xmit_base: bool,
    /// `version 2|3`; see [`VrrpInstance::effective_version`].
    pub version: Option<u8>,
    pub dont_track_primary: bool,
    /// `accept` (true) or `no_accept` (false).
    pub accept: Option<bool>,
    /// `strict_mode [BOOL]`; `None`: global `vrrp_strict`.
    pub strict_mode: Option<bool>,
    pub skip_check_adv_addr: Option<bool>,
    pub at: Location,
}

impl VrrpInstance {
    /// `version`, else the global `vrrp_version`.
    pub fn effective_version(&self, global: &GlobalDefs) -> u8 {
        self.version.unwrap_or(global.vrrp_version)
    }

    /// `strict_mode`, else the global `vrrp_strict`.
    pub fn strict(&self, global: &GlobalDefs) -> bool {
        self.strict_mode.unwrap_or(global.vrrp_strict)
    }

    /// The configured priority; without one, 255 for `state MASTER` and 100
    /// otherwise (keepalived 2.2.7).
    pub fn base_priority(&self) -> u8 {
        match (self.priority, self.state) {
            (Some(p), _) => p,
            (None, Some(InitialState::Master)) => PRIO_OWNER,
            (None, _) => DEFAULT_PRIORITY,
        }
    }

    /// The state the instance starts in. Without `state`, MASTER only for
    /// the address owner (priority 255). In strict mode keepalived makes the
    /// state match ownership (MASTER exactly at priority 255); so does hbd.
    pub fn initial_state(&self, global: &GlobalDefs) -> InitialState {
        let owner = self.base_priority() == PRIO_OWNER;
        match self.state {
            Some(s) if !self.strict(global) => s,
            _ if owner => InitialState::Master,
            _ => InitialState::Backup,
        }
    }

    /// The advertisement interval as the wire carries it: whole seconds
    /// (rounded, 1..255) for VRRPv2, centiseconds (rounded, 0.01..40.95) for v3.
    pub fn advert_interval(&self, global: &GlobalDefs) -> Duration {
        round_advert(self.advert_int, self.effective_version(global))
    }

    /// The authentication on the wire: none in strict mode and with VRRPv3
    /// (keepalived ignores it there).
    pub fn effective_auth(&self, global: &GlobalDefs) -> Option<&Auth> {
        if self.strict(global) || self.effective_version(global) == 3 {
            None
        } else {
            self.auth.as_ref()
        }
    }

    /// Whether a BACKUP preempts a lower-priority MASTER: `nopreempt` counts
    /// only with `state BACKUP` below priority 255 (keepalived clears it otherwise).
    pub fn preempt(&self, global: &GlobalDefs) -> bool {
        !(self.nopreempt
            && self.initial_state(global) == InitialState::Backup
            && self.base_priority() != PRIO_OWNER)
    }

    /// `preempt_delay`, zero where keepalived resets it (initial MASTER,
    /// `nopreempt`, strict mode).
    pub fn effective_preempt_delay(&self, global: &GlobalDefs) -> Duration {
        if self.initial_state(global) == InitialState::Master
            || !self.preempt(global)
            || self.strict(global)
        {
            Duration::ZERO
        } else {
            self.preempt_delay
        }
    }

    /// Whether the VIPs answer traffic. hbd keeps them reachable unless
    /// `no_accept` is given (keepalived 2.2.7 also drops traffic in strict
    /// mode below priority 255: hbd warns about that instead).
    pub fn accept(&self) -> bool {
        self.accept != Some(false)
    }

    pub fn garp_master_delay(&self, global: &GlobalDefs) -> Duration {
        self.garp_master_delay
            .unwrap_or(global.vrrp_garp_master_delay)
    }

    pub fn garp_master_repeat(&self, global: &GlobalDefs) -> u32 {
        self.garp_master_repeat
            .unwrap_or(global.vrrp_garp_master_repeat)
    }

    pub fn garp_master_refresh(&self, global: &GlobalDefs) -> Duration {
        self.garp_master_refresh
            .unwrap_or(global.vrrp_garp_master_refresh)
    }

    pub fn garp_master_refresh_repeat(&self, global: &GlobalDefs) -> u32 {
        self.garp_master_refresh_repeat
            .unwrap_or(global.vrrp_garp_master_refresh_repeat)
    }

    pub fn skip_check_adv_addr(&self, global: &GlobalDefs) -> bool {
        self.skip_check_adv_addr
            .unwrap_or(global.vrrp_skip_check_adv_addr)
    }
}

/// `vrrp_sync_group NAME { group { } notify* }`.
#[derive(Debug, Clone, PartialEq)]
pub struct SyncGroup {
    pub name: String,
    /// Instance names, each defined and in no other group.
    pub instances: Vec<String>,
    pub notify: Notifies,
    pub at: Location,
}

impl KeepalivedConf {
    pub fn script(&self, name: &str) -> Option<&VrrpScript> {
        self.scripts.iter().find(|s| s.name == name)
    }

    pub fn instance(&self, name: &str) -> Option<&VrrpInstance> {
        self.instances.iter().find(|i| i.name == name)
    }

    /// The sync group an instance belongs to.
    pub fn group_of(&self, instance: &str) -> Option<&SyncGroup> {
        self.sync_groups
            .iter()
            .find(|g| g.instances.iter().any(|i| i == instance))
    }
}

pub const DEFAULT_PRIORITY: u8 = 100;
/// The address owner's priority.
pub const PRIO_OWNER: u8 = 255;
pub const DEFAULT_ADVERT_INT: Duration = Duration::from_secs(1);
pub const DEFAULT_SCRIPT_INTERVAL: Duration = Duration::from_secs(1);
pub const DEFAULT_GARP_MASTER_DELAY: Duration = Duration::from_secs(5);
pub const DEFAULT_GARP_MASTER_REPEAT: u32 = 5;
pub const DEFAULT_MCAST_GROUP4: Ipv4Addr = Ipv4Addr::new(224, 0, 0, 18);
/// keepalived's weight range.
pub const MAX_WEIGHT: i32 = 253;
/// keepalived truncates `auth_pass` to this many bytes.
pub const AUTH_PASS_LEN: usize = 8;

fn round_advert(d: Duration, version: u8) -> Duration {
    let us = d.as_micros();
    if version == 3 {
        let cs = ((us + 5_000) / 10_000).clamp(1, 4095);
        Duration::from_millis(cs as u64 * 10)
    } else {
        let s = ((us + 500_000) / 1_000_000).clamp(1, 255);
        Duration::from_secs(s as u64)
    }
}

const NO_EFFECT: &str = "accepted, no effect in hbd";
const NO_MAIL: &str = "accepted, no effect: hbd sends no mail";
const NO_FIREWALL: &str = "accepted, no effect: hbd installs no firewall rules";
const NO_LVS: &str = "hbd does not do LVS (virtual servers): only VRRP";
const MAX_IFNAME: usize = 15;
/// Longest vrrp_script interval or timeout, in seconds.
const MAX_SCRIPT_SECS: i64 = 86_400;

/// Global tuning knobs hbd accepts with a warning.
const GLOBAL_KNOBS: &[&str] = &[
    "smtp_helo_name",
    "smtp_alert",
    "smtp_alert_vrrp",
    "smtp_alert_checker",
    "vrrp_garp_lower_prio_delay",
    "vrrp_garp_lower_prio_repeat",
    "vrrp_garp_extra_if",
    "vrrp_priority",
    "vrrp_no_swap",
    "vrrp_rt_priority",
    "vrrp_rlimit_rttime",
    "vrrp_cpu_affinity",
    "checker_priority",
    "checker_no_swap",
    "checker_rt_priority",
    "checker_rlimit_rttime",
    "checker_cpu_affinity",
    "bfd_priority",
    "bfd_no_swap",
    "bfd_rt_priority",
    "bfd_rlimit_rttime",
    "bfd_cpu_affinity",
    "max_auto_priority",
    "min_auto_priority_delay",
    "lvs_id",
    "lvs_timeouts",
    "lvs_flush",
    "lvs_flush_on_stop",
    "lvs_sync_daemon",
    "vrrp_netlink_cmd_rcv_bufs",
    "vrrp_netlink_cmd_rcv_bufs_force",
    "vrrp_netlink_monitor_rcv_bufs",
    "vrrp_netlink_monitor_rcv_bufs_force",
    "vrrp_rx_bufs_policy",
    "vrrp_rx_bufs_multiplier",
    "process_names",
    "process_name",
    "vrrp_process_name",
    "checker_process_name",
    "bfd_process_name",
    "enable_traps",
    "enable_snmp_vrrp",
    "enable_snmp_keepalived",
    "enable_snmp_rfcv2",
    "enable_snmp_rfcv3",
    "enable_snmp_checker",
    "enable_dbus",
    "snmp_socket",
    "default_interface",
    "dynamic_interfaces",
    "vrrp_startup_delay",
    "vrrp_log_unknown_vrids",
    "vrrp_notify_priority_changes",
    "random_seed",
    "reload_time_file",
    "reload_repeat",
    "reload_file",
    "use_pid_dir",
    "vrrp_min_garp",
    "vmac_prefix",
    "vmac_addr_prefix",
];

/// Global firewall settings (hbd installs none).
const GLOBAL_FIREWALL: &[&str] = &[
    "vrrp_iptables",
    "vrrp_ipsets",
    "nftables",
    "nftables_priority",
    "nftables_ifindex",
    "nftables_counters",
];

/// Instance tuning knobs hbd accepts with a warning.
const INSTANCE_KNOBS: &[&str] = &[
    "garp_lower_prio_delay",
    "garp_lower_prio_repeat",
    "smtp_alert",
    "debug",
    "kernel_rx_buf_size",
    "notify_priority_changes",
    "linkbeat_use_polling",
    "promote_secondaries",
];

// ---------------------------------------------------------------- model building

/// Marks [`Parser`]'s methods for keepalived.conf: its values and lists.
struct Keepalived;

type P = Parser<Keepalived>;

impl P {
    fn unsupported(&mut self, w: &Word, within: &str) {
        let msg = format!("`{}`: not supported by hbd (in `{within}`)", w.text);
        self.err(w.line, &w.text, msg);
    }

    /// A template's `<placeholder>` among `words`: an error, true.
    fn placeholder(&mut self, key: &Word, words: &[Word]) -> bool {
        let Some(start) = words
            .iter()
            .position(|w| !w.quoted && w.text.starts_with('<'))
        else {
            return false;
        };
        let end = words[start..]
            .iter()
            .position(|w| w.text.ends_with('>'))
            .map_or(words.len(), |e| start + e + 1);
        let text: Vec<&str> = words[start..end].iter().map(|w| w.text.as_str()).collect();
        let msg = format!(
            "`{}` is a template placeholder: put the real value here",
            text.join(" ")
        );
        self.err(words[start].line, &key.text, msg);
        true
    }

    /// The values of a `key v1 .. vn` line (`min..=max` of them), or an error.
    fn values<'a>(&mut self, st: &'a Stmt, min: usize, max: usize) -> Option<&'a [Word]> {
        let key = st.key();
        let vals = &st.words[1..];
        if st.block.is_some() {
            let msg = format!("`{}` takes values, not a `{{ }}` block", key.text);
            self.err(key.line, &key.text, msg);
            return None;
        }
        if self.placeholder(key, vals) {
            return None;
        }
        if vals.len() < min {
            let msg = if min == 1 {
                "missing value".to_string()
            } else {
                format!("expected {min} values, found {}", vals.len())
            };
            self.err(key.line, &key.text, msg);
            return None;
        }
        if vals.len() > max {
            let msg = format!("unexpected `{}`", vals[max].text);
            self.err(vals[max].line, &key.text, msg);
            return None;
        }
        Some(vals)
    }

    fn value<'a>(&mut self, st: &'a Stmt) -> Option<&'a Word> {
        self.values(st, 1, 1).map(|v| &v[0])
    }

    /// A keyword without values.
    fn flag(&mut self, st: &Stmt) -> bool {
        self.values(st, 0, 0).is_some()
    }

    /// The lines of a list block (`virtual_ipaddress { }`...): nested blocks
    /// are errors.
    fn list<'a>(&mut self, st: &'a Stmt) -> Vec<&'a Stmt> {
        let Some((_, block)) = self.section(st, 0) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for s in block {
            if s.block.is_some() {
                let msg = format!("unexpected block in `{}`", st.key().text);
                self.err(s.key().line, &s.key().text, msg);
            } else if !self.placeholder(st.key(), &s.words) {
                out.push(s);
            }
        }
        out
    }

    fn int(&mut self, key: &str, w: &Word, min: i64, max: i64) -> Option<i64> {
        match w.text.parse::<i64>() {
            Ok(n) if (min..=max).contains(&n) => Some(n),
            _ => {
                let msg = format!("`{}`: expected a whole number from {min} to {max}", w.text);
                self.err(w.line, key, msg);
                None
            }
        }
    }

    /// `key N` with `min..=max`.
    fn int_value(&mut self, st: &Stmt, min: i64, max: i64) -> Option<i64> {
        let v = self.value(st)?;
        self.int(&st.key().text, v, min, max)
    }

    /// `key N` in whole seconds within `min..=max` (keepalived reads these
    /// as integers).
    fn whole_secs(&mut self, st: &Stmt, min: i64, max: i64) -> Option<Duration> {
        self.int_value(st, min, max)
            .map(|n| Duration::from_secs(n as u64))
    }

    /// `key SECONDS` (fractions allowed) within `min..=max` seconds.
    fn secs_value(&mut self, st: &Stmt, min: Duration, max: Duration) -> Option<Duration> {
        let v = self.value(st)?;
        match parse_seconds(&v.text) {
            Ok(d) if d >= min && d <= max => Some(d),
            Ok(_) => {
                let msg = format!(
                    "`{}`: must be from {} to {} seconds",
                    v.text,
                    fmt_secs(min),
                    fmt_secs(max)
                );
                self.err(v.line, &st.key().text, msg);
                None
            }
            Err(m) => {
                self.err(v.line, &st.key().text, format!("`{}`: {m}", v.text));
                None
            }
        }
    }

    fn ipv4(&mut self, key: &str, w: &Word) -> Option<Ipv4Addr> {
        match w.text.parse::<Ipv4Addr>() {
            Ok(a) => Some(a),
            Err(_) => {
                let msg = if w.text.contains(':') {
                    format!("`{}`: IPv6 is not supported by hbd: IPv4 only", w.text)
                } else {
                    format!("`{}`: expected an IPv4 address", w.text)
                };
                self.err(w.line, key, msg);
                None
            }
        }
    }

    fn ifname(&mut self, key: &str, w: &Word) -> Option<String> {
        let t = &w.text;
        if t.is_empty() || t.len() > MAX_IFNAME || t.contains(['/', ' ']) {
            let msg = format!("`{t}`: not an interface name (1 to {MAX_IFNAME} bytes, no `/`)");
            self.err(w.line, key, msg);
            None
        } else {
            Some(t.clone())
        }
    }

    /// `USER [GROUP]`.
    fn user(&mut self, st: &Stmt) -> Option<ScriptUser> {
        let v = self.values(st, 1, 2)?;
        Some(ScriptUser {
            user: v[0].text.clone(),
            group: v.get(1).map(|g| g.text.clone()),
        })
    }

    fn command(&mut self, key: &str, w: &Word) -> Option<Command> {
        match split_command(&w.text) {
            Ok(argv) => Some(Command {
                text: w.text.clone(),
                argv,
            }),
            Err(m) => {
                self.err(w.line, key, m);
                None
            }
        }
    }

    /// `notify* "COMMAND ARGS" [USER [GROUP]]`.
    fn notify(&mut self, st: &Stmt, slot: &mut Option<Notify>) {
        let key = st.key();
        let Some(v) = self.values(st, 1, 3) else {
            return;
        };
        let Some(command) = self.command(&key.text, &v[0]) else {
            return;
        };
        if v.len() > 1 && !v[0].quoted {
            let msg = format!(
                "`{}` is the user the script runs as (keepalived's syntax: COMMAND [USER [GROUP]]); to pass arguments, quote the command",
                v[1].text
            );
            self.warn(v[1].line, &key.text, msg);
        }
        let user = v.get(1).map(|u| ScriptUser {
            user: u.text.clone(),
            group: v.get(2).map(|g| g.text.clone()),
        });
        if let Some(first) = slot {
            let msg = format!("given twice (first on line {})", first.at.line);
            self.err(key.line, &key.text, msg);
            return;
        }
        *slot = Some(Notify {
            command,
            user,
            at: self.at(key.line),
        });
    }

    /// `NAME [weight W [reverse]]` of track_script / track_interface.
    fn tracked(&mut self, key: &str, st: &Stmt) -> Option<(Option<i32>, bool)> {
        let w = &st.words[1..];
        match w {
            [] => Some((None, false)),
            [kw, n] | [kw, n, _] if kw.text == "weight" => {
                let reverse = match w.get(2) {
                    None => false,
                    Some(r) if r.text == "reverse" => true,
                    Some(r) => {
                        let msg = format!("unexpected `{}`: expected `reverse`", r.text);
                        self.err(r.line, key, msg);
                        return None;
                    }
                };
                let n = self.int(key, n, -(MAX_WEIGHT as i64), MAX_WEIGHT as i64)?;
                Some((Some(n as i32), reverse))
            }
            _ => {
                let msg = format!("unexpected `{}`: expected `weight W`", w[0].text);
                self.err(w[0].line, key, msg);
                None
            }
        }
    }

    fn vip(&mut self, st: &Stmt) -> Option<Vip> {
        let key = "virtual_ipaddress";
        let a = st.key();
        let (addr, prefix) = match a.text.split_once('/') {
            Some((ad, pf)) => (ad, Some(pf)),
            None => (a.text.as_str(), None),
        };
        let w = Word {
            text: addr.to_string(),
            ..a.clone()
        };
        let addr = self.ipv4(key, &w);
        let prefix = match prefix {
            None => Some(32),
            Some(pf) => match pf.parse::<u8>() {
                Ok(n) if n <= 32 => Some(n),
                _ => {
                    let msg = format!("`{}`: the prefix length must be 0 to 32", a.text);
                    self.err(a.line, key, msg);
                    None
                }
            },
        };
        let mut vip = Vip {
            addr: addr?,
            prefix: prefix?,
            brd: None,
            dev: None,
            scope: None,
            label: None,
            at: self.at(a.line),
        };
        let mut rest = st.words[1..].iter();
        let mut ok = true;
        while let Some(opt) = rest.next() {
            let o = opt.text.as_str();
            if !matches!(o, "brd" | "dev" | "scope" | "label") {
                let msg = format!(
                    "`{o}`: not supported by hbd; expected `brd`, `dev`, `scope` or `label`"
                );
                self.err(opt.line, key, msg);
                ok = false;
                break;
            }
            let Some(val) = rest.next() else {
                self.err(opt.line, key, format!("`{o}` needs a value"));
                ok = false;
                break;
            };
            match o {
                "brd" => vip.brd = self.ipv4(key, val),
                "dev" => vip.dev = self.ifname(key, val),
                "scope" => {
                    const SCOPES: &[&str] = &["global", "site", "link", "host", "nowhere"];
                    if SCOPES.contains(&val.text.as_str()) || val.text.parse::<u8>().is_ok() {
                        vip.scope = Some(val.text.clone());
                    } else {
                        let msg = format!(
                            "`{}`: expected global, site, link, host, nowhere or 0..255",
                            val.text
                        );
                        self.err(val.line, key, msg);
                    }
                }
                _ => {
                    if val.text.len() > MAX_IFNAME {
                        let msg = format!("`{}`: a label is at most {MAX_IFNAME} bytes", val.text);
                        self.err(val.line, key, msg);
                    } else {
                        vip.label = Some(val.text.clone());
                    }
                }
            }
        }
        ok.then_some(vip)
    }
}

/// A keepalived TIMER: seconds with an optional fraction (to microseconds).
pub fn parse_seconds(s: &str) -> Result<Duration, String> {
    const HINT: &str = "expected seconds like `1` or `0.5`";
    let (int, frac) = s.split_once('.').unwrap_or((s, ""));
    if int.is_empty() && frac.is_empty()
        || !int.bytes().all(|b| b.is_ascii_digit())
        || !frac.bytes().all(|b| b.is_ascii_digit())
        || frac.len() > 6
        || int.len() > 9
    {
        return Err(HINT.into());
    }
    let secs: u64 = if int.is_empty() {
        0
    } else {
        int.parse().map_err(|_| HINT.to_string())?
    };
    let micros: u32 = if frac.is_empty() {
        0
    } else {
        format!("{frac:0<6}")
            .parse()
            .map_err(|_| HINT.to_string())?
    };
    Ok(Duration::from_secs(secs) + Duration::from_micros(micros.into()))
}

fn fmt_secs(d: Duration) -> String {
    let s = d.as_secs_f64();
    format!("{s}")
}

/// Splits a command as keepalived does (no shell): blanks separate words;
/// single or double quotes group; a backslash escapes the next character.
pub fn split_command(s: &str) -> Result<Vec<String>, String> {
    let mut argv = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut quote: Option<char> = None;
    let mut it = s.chars();
    while let Some(c) = it.next() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (_, '\\') => {
                if let Some(e) = it.next() {
                    cur.push(e);
                }
                in_word = true;
            }
            (Some(_), c) => cur.push(c),
            (None, '\'' | '"') => {
                quote = Some(c);
                in_word = true;
            }
            (None, c) if c.is_whitespace() => {
                if in_word {
                    argv.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            (None, c) => {
                cur.push(c);
                in_word = true;
            }
        }
    }
    if quote.is_some() {
        return Err(format!("`{s}`: quote not closed"));
    }
    if in_word {
        argv.push(cur);
    }
    if argv.is_empty() || argv[0].is_empty() {
        return Err("empty command".into());
    }
    Ok(argv)
}

fn bool_word(w: &str) -> Option<bool> {
    match w {
        "on" | "true" | "yes" => Some(true),
        "off" | "false" | "no" => Some(false),
        _ => None,
    }
}

// ---------------------------------------------------------------- sections

fn global_defs(p: &mut P, block: &[Stmt], g: &mut GlobalDefs) {
    let mut router_id: Opt<String> = None;
    let mut version: Opt<u8> = None;
    let mut script_user: Opt<ScriptUser> = None;
    for st in block {
        let key = st.key();
        let k = key.text.as_str();
        match k {
            "router_id" => {
                let v = p.value(st).map(|w| w.text.clone());
                p.set(&mut router_id, key, v);
            }
            "notification_email" => {
                let lines = p.list(st);
                for l in lines {
                    g.notification_email
                        .extend(l.words.iter().map(|w| w.text.clone()));
                }
                if !g.notification_email.is_empty() {
                    p.warn(key.line, k, NO_MAIL.into());
                }
            }
            "notification_email_from" => {
                if let Some(v) = p.value(st) {
                    g.notification_email_from = Some(v.text.clone());
                    p.warn(key.line, k, NO_MAIL.into());
                }
            }
            "smtp_server" => {
                if let Some(v) = p.values(st, 1, 2) {
                    let t: Vec<&str> = v.iter().map(|w| w.text.as_str()).collect();
                    g.smtp_server = Some(t.join(" "));
                    p.warn(key.line, k, NO_MAIL.into());
                }
            }
            "smtp_connect_timeout" => {
                if let Some(d) = p.secs_value(st, Duration::ZERO, Duration::from_secs(86_400)) {
                    g.smtp_connect_timeout = Some(d);
                    p.warn(key.line, k, NO_MAIL.into());
                }
            }
            "vrrp_skip_check_adv_addr" => g.vrrp_skip_check_adv_addr |= p.flag(st),
            "vrrp_strict" => g.vrrp_strict |= p.flag(st),
            "enable_script_security" => g.enable_script_security |= p.flag(st),
            "vrrp_garp_interval" | "vrrp_gna_interval" => {
                if let Some(d) = p.secs_value(st, Duration::ZERO, Duration::from_secs(3600)) {
                    if k == "vrrp_garp_interval" {
                        g.vrrp_garp_interval = d;
                    } else {
                        g.vrrp_gna_interval = d;
                    }
                }
            }
            "vrrp_garp_master_delay" => {
                if let Some(d) = p.whole_secs(st, 0, 3600) {
                    g.vrrp_garp_master_delay = d;
                }
            }
            "vrrp_garp_master_refresh" => {
                if let Some(d) = p.whole_secs(st, 0, 86_400) {
                    g.vrrp_garp_master_refresh = d;
                }
            }
            "vrrp_garp_master_repeat" => {
                if let Some(n) = p.int_value(st, 0, 1000) {
                    g.vrrp_garp_master_repeat = n as u32;
                }
            }
            "vrrp_garp_master_refresh_repeat" => {
                if let Some(n) = p.int_value(st, 0, 1000) {
                    g.vrrp_garp_master_refresh_repeat = n as u32;
                }
            }
            "vrrp_mcast_group4" => {
                if let Some(v) = p.value(st) {
                    match p.ipv4(k, v) {
                        Some(a) if a.is_multicast() => g.vrrp_mcast_group4 = a,
                        Some(_) => {
                            let msg = format!("`{}`: not a multicast address", v.text);
                            p.err(v.line, k, msg);
                        }
                        None => {}
                    }
                }
            }
            "script_user" => {
                let u = p.user(st);
                p.set(&mut script_user, key, u);
            }
            "vrrp_version" => {
                let v = p.int_value(st, 2, 3).map(|n| n as u8);
                p.set(&mut version, key, v);
            }
            knob if GLOBAL_KNOBS.contains(&knob) => p.warn(key.line, k, NO_EFFECT.into()),
            fw if GLOBAL_FIREWALL.contains(&fw) => p.warn(key.line, k, NO_FIREWALL.into()),
            _ => p.unsupported(key, "global_defs"),
        }
    }
    g.router_id = router_id.map(|v| v.0);
    g.script_user = script_user.map(|v| v.0);
    if let Some((v, _)) = version {
        g.vrrp_version = v;
    }
}

fn vrrp_script(p: &mut P, name: &Word, block: &[Stmt]) -> Option<VrrpScript> {
    let mut command: Opt<Command> = None;
    let mut interval: Opt<Duration> = None;
    let mut timeout: Opt<Duration> = None;
    let mut weight: Opt<(i32, bool)> = None;
    let mut rise: Opt<u32> = None;
    let mut fall: Opt<u32> = None;
    let mut user: Opt<ScriptUser> = None;
    let mut init_fail = false;
    for st in block {
        let key = st.key();
        let k = key.text.as_str();
        match k {
            "script" => {
                let words = &st.words[1..];
                let c = if words.len() > 1 && !words[0].quoted && st.block.is_none() {
                    let msg = format!(
                        "unexpected `{}`: quote the whole command, e.g. `script \"{} {}\"` (keepalived would run `{}` alone)",
                        words[1].text, words[0].text, words[1].text, words[0].text
                    );
                    p.err(words[1].line, k, msg);
                    None
                } else {
                    match p.values(st, 1, 1) {
                        Some(v) => p.command(k, &v[0]),
                        None => None,
                    }
                };
                p.set(&mut command, key, c);
            }
            "interval" => {
                let d = p.whole_secs(st, 1, MAX_SCRIPT_SECS);
                p.set(&mut interval, key, d);
            }
            "timeout" => {
                let d = p.whole_secs(st, 1, MAX_SCRIPT_SECS);
                p.set(&mut timeout, key, d);
            }
            "weight" => {
                let w = p.values(st, 1, 2).and_then(|v| {
                    let reverse = match v.get(1) {
                        None => false,
                        Some(r) if r.text == "reverse" => true,
                        Some(r) => {
                            let msg = format!("unexpected `{}`: expected `reverse`", r.text);
                            p.err(r.line, k, msg);
                            return None;
                        }
                    };
                    let n = p.int(k, &v[0], -(MAX_WEIGHT as i64), MAX_WEIGHT as i64)?;
                    Some((n as i32, reverse))
                });
                p.set(&mut weight, key, w);
            }
            "rise" => {
                let n = p.int_value(st, 1, 1_000_000).map(|n| n as u32);
                p.set(&mut rise, key, n);
            }
            "fall" => {
                let n = p.int_value(st, 1, 1_000_000).map(|n| n as u32);
                p.set(&mut fall, key, n);
            }
            "init_fail" => init_fail |= p.flag(st),
            "user" => {
                let u = p.user(st);
                p.set(&mut user, key, u);
            }
            _ => p.unsupported(key, "vrrp_script"),
        }
    }
    let Some((command, _)) = command else {
        let msg = format!("vrrp_script `{}` has no `script`", name.text);
        p.err(name.line, "vrrp_script", msg);
        return None;
    };
    let (weight, weight_reverse) = weight.map(|w| w.0).unwrap_or((0, false));
    Some(VrrpScript {
        name: name.text.clone(),
        command,
        interval: interval.map_or(DEFAULT_SCRIPT_INTERVAL, |v| v.0),
        timeout: timeout.map(|v| v.0),
        weight,
        weight_reverse,
        rise: rise.map_or(1, |v| v.0),
        fall: fall.map_or(1, |v| v.0),
        init_fail,
        user: user.map(|v| v.0),
        at: p.at(name.line),
    })
}

/// Lines of an instance kept for the checks after parsing.
#[derive(Default)]
struct InstanceLines {
    state: Option<usize>,
    priority: Option<usize>,
    vrid: Option<usize>,
    nopreempt: Option<usize>,
    preempt_delay: Option<usize>,
    auth: Option<usize>,
    auth_pass: Option<(usize, usize)>,
    advert_int: Option<usize>,
    unicast_src_ip: Option<usize>,
    unicast_peer: Option<usize>,
    no_accept: Option<usize>,
    vip_errors: bool,
}

fn vrrp_instance(p: &mut P, name: &Word, block: &[Stmt]) -> (VrrpInstance, InstanceLines) {
    let mut ln = InstanceLines::default();
    let mut state: Opt<InitialState> = None;
    let mut interface: Opt<String> = None;
    let mut vrid: Opt<u8> = None;
    let mut priority: Opt<u8> = None;
    let mut advert: Opt<Duration> = None;
    let mut preempt_delay: Opt<Duration> = None;
    let mut version: Opt<u8> = None;
    let mut src: Opt<Ipv4Addr> = None;
    let mut accept: Opt<bool> = None;
    let mut strict: Opt<bool> = None;
    let mut garp_delay: Opt<Duration> = None;
    let mut garp_repeat: Opt<u32> = None;
    let mut garp_refresh: Opt<Duration> = None;
    let mut garp_refresh_repeat: Opt<u32> = None;
    let mut auth: Opt<Auth> = None;
    let mut vips_seen: Opt<()> = None;
    let mut evips_seen: Opt<()> = None;
    let mut inst = VrrpInstance {
        name: name.text.clone(),
        state: None,
        interface: String::new(),
        vrid: 0,
        priority: None,
        advert_int: DEFAULT_ADVERT_INT,
        nopreempt: false,
        preempt_delay: Duration::ZERO,
        vips: Vec::new(),
        excluded_vips: Vec::new(),
        track_scripts: Vec::new(),
        track_interfaces: Vec::new(),
        auth: None,
        notify: Notifies::default(),
        unicast_src_ip: None,
        unicast_peers: Vec::new(),
        garp_master_delay: None,
        garp_master_repeat: None,
        garp_master_refresh: None,
        garp_master_refresh_repeat: None,
        use_vmac: false,
        vmac_name: None,
        vmac_xmit_base: false,
        version: None,
        dont_track_primary: false,
        accept: None,
        strict_mode: None,
        skip_check_adv_addr: None,
        at: p.at(name.line),
    };
    for st in block {
        let key = st.key();
        let k = key.text.as_str();
        match k {
            "state" => {
                let s = p.value(st).and_then(|v| match v.text.as_str() {
                    "MASTER" => Some(InitialState::Master),
                    "BACKUP" => Some(InitialState::Backup),
                    t => {
                        let msg = format!("`{t}`: expected MASTER or BACKUP");
                        p.err(v.line, k, msg);
                        None
                    }
                });
                p.set(&mut state, key, s);
            }
            "interface" => {
                let i = p.value(st).and_then(|v| p.ifname(k, v));
                p.set(&mut interface, key, i);
            }
            "virtual_router_id" => {
                let n = p.int_value(st, 1, 255).map(|n| n as u8);
                p.set(&mut vrid, key, n);
            }
            "priority" => {
                let n = p.int_value(st, 1, 255).map(|n| n as u8);
                p.set(&mut priority, key, n);
            }
            "advert_int" => {
                let d = p.secs_value(st, Duration::from_millis(1), Duration::from_secs(255));
                p.set(&mut advert, key, d);
            }
            "nopreempt" => {
                if p.flag(st) {
                    inst.nopreempt = true;
                    ln.nopreempt.get_or_insert(key.line);
                }
            }
            "preempt" => {
                if p.flag(st) {
                    inst.nopreempt = false;
                    ln.nopreempt = None;
                }
            }
            "preempt_delay" => {
                let d = p.secs_value(st, Duration::ZERO, Duration::from_secs(1000));
                p.set(&mut preempt_delay, key, d);
            }
            "virtual_ipaddress" | "virtual_ipaddress_excluded" => {
                let seen = if k == "virtual_ipaddress" {
                    &mut vips_seen
                } else {
                    &mut evips_seen
                };
                p.set(seen, key, Some(()));
                let before = p.errors.len();
                for l in p.list(st) {
                    if let Some(v) = p.vip(l) {
                        if k == "virtual_ipaddress" {
                            inst.vips.push(v);
                        } else {
                            inst.excluded_vips.push(v);
                        }
                    }
                }
                ln.vip_errors |= k == "virtual_ipaddress" && p.errors.len() > before;
            }
            "track_script" => {
                for l in p.list(st) {
                    if let Some((weight, reverse)) = p.tracked(k, l) {
                        inst.track_scripts.push(TrackScript {
                            name: l.key().text.clone(),
                            weight,
                            reverse,
                            at: p.at(l.key().line),
                        });
                    }
                }
            }
            "track_interface" => {
                for l in p.list(st) {
                    let Some(ifname) = p.ifname(k, l.key()) else {
                        continue;
                    };
                    if let Some((weight, reverse)) = p.tracked(k, l) {
                        inst.track_interfaces.push(TrackInterface {
                            name: ifname,
                            weight: weight.unwrap_or(0),
                            reverse,
                            at: p.at(l.key().line),
                        });
                    }
                }
            }
            "authentication" => {
                let a = authentication(p, st, &mut ln);
                if a.is_some() {
                    ln.auth = Some(key.line);
                }
                p.set(&mut auth, key, a);
            }
            "notify" => p.notify(st, &mut inst.notify.notify),
            "notify_master" => p.notify(st, &mut inst.notify.master),
            "notify_backup" => p.notify(st, &mut inst.notify.backup),
            "notify_fault" => p.notify(st, &mut inst.notify.fault),
            "notify_stop" => p.notify(st, &mut inst.notify.stop),
            "unicast_src_ip" | "mcast_src_ip" => {
                let a = p.value(st).and_then(|v| p.ipv4(k, v));
                if a.is_some() && k == "unicast_src_ip" {
                    ln.unicast_src_ip = Some(key.line);
                }
                p.set(&mut src, key, a);
            }
            "unicast_peer" => {
                ln.unicast_peer = Some(key.line);
                for l in p.list(st) {
                    if let Some(extra) = l.words.get(1) {
                        let msg = format!(
                            "`{}`: not supported by hbd: one address per line",
                            extra.text
                        );
                        p.err(extra.line, k, msg);
                        continue;
                    }
                    if let Some(a) = p.ipv4(k, l.key()) {
                        if inst.unicast_peers.contains(&a) {
                            p.err(l.key().line, k, format!("`{a}` listed twice"));
                        } else {
                            inst.unicast_peers.push(a);
                        }
                    }
                }
            }
            "garp_master_delay" => {
                let d = p.whole_secs(st, 0, 3600);
                p.set(&mut garp_delay, key, d);
            }
            "garp_master_refresh" => {
                let d = p.whole_secs(st, 0, 86_400);
                p.set(&mut garp_refresh, key, d);
            }
            "garp_master_repeat" => {
                let n = p.int_value(st, 0, 1000).map(|n| n as u32);
                p.set(&mut garp_repeat, key, n);
            }
            "garp_master_refresh_repeat" => {
                let n = p.int_value(st, 0, 1000).map(|n| n as u32);
                p.set(&mut garp_refresh_repeat, key, n);
            }
            "use_vmac" => {
                if let Some(v) = p.values(st, 0, 1) {
                    inst.use_vmac = true;
                    inst.vmac_name = match v.first() {
                        Some(w) => p.ifname(k, w),
                        None => None,
                    };
                }
            }
            "vmac_xmit_base" => inst.vmac_xmit_base |= p.flag(st),
            "version" => {
                let v = p.int_value(st, 2, 3).map(|n| n as u8);
                p.set(&mut version, key, v);
            }
            "vrrp_version" => {
                let msg = "inside `vrrp_instance` the keyword is `version` (keepalived ignores `vrrp_version` here)";
                p.err(key.line, k, msg.into());
            }
            "dont_track_primary" => inst.dont_track_primary |= p.flag(st),
            "accept" | "no_accept" => {
                if p.flag(st) {
                    if k == "no_accept" {
                        ln.no_accept = Some(key.line);
                    }
                    p.set(&mut accept, key, Some(k == "accept"));
                }
            }
            "strict_mode" | "skip_check_adv_addr" => {
                let b = p.values(st, 0, 1).and_then(|v| match v.first() {
                    None => Some(true),
                    Some(w) => bool_word(&w.text).or_else(|| {
                        let msg = format!("`{}`: expected on/off, true/false or yes/no", w.text);
                        p.err(w.line, k, msg);
                        None
                    }),
                });
                if k == "strict_mode" {
                    p.set(&mut strict, key, b);
                } else if let Some(b) = b {
                    inst.skip_check_adv_addr = Some(b);
                }
            }
            knob if INSTANCE_KNOBS.contains(&knob) => p.warn(key.line, k, NO_EFFECT.into()),
            _ => p.unsupported(key, "vrrp_instance"),
        }
    }
    ln.state = state.as_ref().map(|v| v.1);
    ln.priority = priority.as_ref().map(|v| v.1);
    ln.vrid = vrid.as_ref().map(|v| v.1);
    ln.preempt_delay = preempt_delay.as_ref().map(|v| v.1);
    ln.advert_int = advert.as_ref().map(|v| v.1);
    inst.state = state.map(|v| v.0);
    inst.interface = interface.map(|v| v.0).unwrap_or_default();
    inst.vrid = vrid.map_or(0, |v| v.0);
    inst.priority = priority.map(|v| v.0);
    inst.advert_int = advert.map_or(DEFAULT_ADVERT_INT, |v| v.0);
    inst.preempt_delay = preempt_delay.map_or(Duration::ZERO, |v| v.0);
    inst.version = version.map(|v| v.0);
    inst.unicast_src_ip = src.map(|v| v.0);
    inst.accept = accept.map(|v| v.0);
    inst.strict_mode = strict.map(|v| v.0);
    inst.garp_master_delay = garp_delay.map(|v| v.0);
    inst.garp_master_repeat = garp_repeat.map(|v| v.0);
    inst.garp_master_refresh = garp_refresh.map(|v| v.0);
    inst.garp_master_refresh_repeat = garp_refresh_repeat.map(|v| v.0);
    inst.auth = auth.map(|v| v.0);
    (inst, ln)
}

fn authentication(p: &mut P, st: &Stmt, ln: &mut InstanceLines) -> Option<Auth> {
    let (_, block) = p.section(st, 0)?;
    let mut kind: Opt<()> = None;
    let mut pass: Opt<String> = None;
    let mut ok = true;
    for s in block {
        let key = s.key();
        match key.text.as_str() {
            "auth_type" => {
                let t = p.value(s).and_then(|v| match v.text.as_str() {
                    "PASS" => Some(()),
                    "AH" => {
                        p.err(v.line, "auth_type", "`AH`: IPsec AH authentication is not supported by hbd; use `PASS` or none".into());
                        None
                    }
                    t => {
                        p.err(v.line, "auth_type", format!("`{t}`: expected PASS"));
                        None
                    }
                });
                if t.is_none() {
                    ok = false;
                }
                p.set(&mut kind, key, t);
            }
            "auth_pass" => {
                let v = p.value(s).map(|v| v.text.clone());
                match &v {
                    Some(t) if t.is_empty() => {
                        p.err(key.line, "auth_pass", "empty password".into());
                        ok = false;
                        continue;
                    }
                    None => ok = false,
                    Some(t) => ln.auth_pass = Some((key.line, t.len())),
                }
                p.set(&mut pass, key, v);
            }
            _ => {
                p.unsupported(key, "authentication");
                ok = false;
            }
        }
    }
    if !ok {
        return None;
    }
    match (kind, pass) {
        (Some(_), Some((pw, _))) => {
            let mut end = pw.len().min(AUTH_PASS_LEN);
            while !pw.is_char_boundary(end) {
                end -= 1;
            }
            Some(Auth::Pass(pw[..end].to_string()))
        }
        (Some(_), None) => {
            p.err(
                st.key().line,
                "authentication",
                "`auth_type PASS` without `auth_pass`".into(),
            );
            None
        }
        (None, Some(_)) => {
            p.err(
                st.key().line,
                "authentication",
                "`auth_pass` without `auth_type PASS`".into(),
            );
            None
        }
        (None, None) => None,
    }
}

fn sync_group(p: &mut P, name: &Word, block: &[Stmt]) -> SyncGroup {
    let mut g = SyncGroup {
        name: name.text.clone(),
        instances: Vec::new(),
        notify: Notifies::default(),
        at: p.at(name.line),
    };
    let mut group_seen: Opt<()> = None;
    for st in block {
        let key = st.key();
        match key.text.as_str() {
            "group" => {
                p.set(&mut group_seen, key, Some(()));
                for l in p.list(st) {
                    for w in &l.words {
                        if g.instances.contains(&w.text) {
                            p.err(w.line, "group", format!("`{}` listed twice", w.text));
                        } else {
                            g.instances.push(w.text.clone());
                        }
                    }
                }
            }
            "notify" => p.notify(st, &mut g.notify.notify),
            "notify_master" => p.notify(st, &mut g.notify.master),
            "notify_backup" => p.notify(st, &mut g.notify.backup),
            "notify_fault" => p.notify(st, &mut g.notify.fault),
            "notify_stop" => p.notify(st, &mut g.notify.stop),
            "smtp_alert" | "notify_priority_changes" => {
                p.warn(key.line, &key.text, NO_EFFECT.into())
            }
            _ => p.unsupported(key, "vrrp_sync_group"),
        }
    }
    if group_seen.is_none() {
        let msg = format!("vrrp_sync_group `{}` has no `group {{ }}`", name.text);
        p.err(name.line, "vrrp_sync_group", msg);
    }
    g
}

/// Checks of one instance after the file is read: required settings and
/// keepalived's pitfalls.
fn check_instance(p: &mut P, i: &VrrpInstance, ln: &InstanceLines, g: &GlobalDefs) {
    let line = i.at.line;
    if i.interface.is_empty() {
        let msg = format!("vrrp_instance `{}` has no `interface`", i.name);
        p.err(line, "vrrp_instance", msg);
    }
    if ln.vrid.is_none() {
        let msg = format!("vrrp_instance `{}` has no `virtual_router_id`", i.name);
        p.err(line, "vrrp_instance", msg);
    }
    let strict = i.strict(g);
    let version = i.effective_version(g);
    let prio = i.base_priority();
    if i.vips.is_empty() && !ln.vip_errors {
        if strict || version == 3 {
            let msg = format!(
                "vrrp_instance `{}` has no `virtual_ipaddress` (keepalived refuses it in strict mode and with VRRPv3)",
                i.name
            );
            p.err(line, "vrrp_instance", msg);
        } else {
            let msg = format!("vrrp_instance `{}` has no `virtual_ipaddress`", i.name);
            p.warn(line, "vrrp_instance", msg);
        }
    }
    if strict && !i.unicast_peers.is_empty() {
        p.err(
            ln.unicast_peer.unwrap_or(line),
            "unicast_peer",
            "unicast peers are not allowed in strict mode (keepalived refuses the instance)".into(),
        );
    }
    if let Some(l) = ln.unicast_src_ip {
        if i.unicast_peers.is_empty() {
            let msg = "`unicast_src_ip` without unicast peers: adverts go to multicast; list the peers in `unicast_peer { }`".to_string();
            p.warn(ln.unicast_peer.unwrap_or(l), "unicast_peer", msg);
        }
    }
    // State and priority.
    if strict && i.state == Some(InitialState::Master) && prio != PRIO_OWNER {
        let msg = format!(
            "`state MASTER` with priority {prio} in strict mode: keepalived starts as BACKUP (MASTER requires priority 255); so does hbd"
        );
        p.warn(ln.state.unwrap_or(line), "state", msg);
    }
    if strict && i.state == Some(InitialState::Backup) && prio == PRIO_OWNER {
        let msg = "`state BACKUP` with priority 255 in strict mode: keepalived starts the address owner as MASTER; so does hbd".to_string();
        p.warn(ln.state.unwrap_or(line), "state", msg);
    }
    if strict && prio < PRIO_OWNER && i.accept != Some(false) {
        let msg = format!(
            "`vrrp_strict` with priority {prio} < 255: keepalived 2.2.7 installs no_accept firewall rules and the VIP stops answering; hbd keeps the VIP reachable unless `no_accept` is set explicitly"
        );
        p.warn(ln.priority.unwrap_or(line), "priority", msg);
    }
    if let Some(l) = ln.nopreempt {
        if prio == PRIO_OWNER {
            let msg = "`nopreempt` has no effect with priority 255 (keepalived clears it)".into();
            p.warn(l, "nopreempt", msg);
        } else if i.state == Some(InitialState::Master) {
            let msg = if i.initial_state(g) == InitialState::Backup {
                "`nopreempt` with `state MASTER`: keepalived ignores nopreempt unless the instance starts as BACKUP; here strict mode starts it as BACKUP, so nopreempt holds: write `state BACKUP` to say so".to_string()
            } else {
                "`nopreempt` with `state MASTER`: keepalived ignores nopreempt unless `state BACKUP`, so this node preempts; write `state BACKUP` on both nodes".to_string()
            };
            p.warn(l, "nopreempt", msg);
        }
    }
    if let Some(l) = ln.preempt_delay {
        if !i.preempt_delay.is_zero() && i.effective_preempt_delay(g).is_zero() {
            let msg = "`preempt_delay` has no effect with `state MASTER`, `nopreempt` or strict mode (keepalived resets it)".into();
            p.warn(l, "preempt_delay", msg);
        }
    }
    // Authentication.
    if i.auth.is_some() {
        let l = ln.auth.unwrap_or(line);
        if strict {
            p.warn(l, "authentication", "keepalived ignores authentication in strict mode: adverts carry none, and neither do hbd's".into());
        } else if version == 3 {
            p.warn(
                l,
                "authentication",
                "VRRPv3 has no authentication: keepalived ignores it, and so does hbd".into(),
            );
        }
    }
    if let Some((l, len)) = ln.auth_pass {
        if len > AUTH_PASS_LEN {
            let msg = format!("the password is {len} bytes: keepalived (and hbd) use only the first {AUTH_PASS_LEN}");
            p.warn(l, "auth_pass", msg);
        }
    }
    // Advertisement interval.
    let l = ln.advert_int.unwrap_or(line);
    let rounded = i.advert_interval(g);
    if version == 2 && i.advert_int >= Duration::from_secs(256) {
        p.err(
            l,
            "advert_int",
            "VRRPv2 advert_int must be less than 256 seconds".into(),
        );
    } else if version == 3 && i.advert_int >= Duration::from_millis(40_960) {
        p.err(
            l,
            "advert_int",
            "VRRPv3 advert_int must be less than 40.96 seconds".into(),
        );
    } else if rounded != i.advert_int {
        let unit = if version == 2 {
            "whole seconds"
        } else {
            "units of 10 ms"
        };
        let msg = format!(
            "VRRPv{version} carries {unit}: {} s is rounded to {} s (as keepalived)",
            fmt_secs(i.advert_int),
            fmt_secs(rounded)
        );
        p.warn(l, "advert_int", msg);
    }
}

/// Parses `keepalived.conf` text; `path` is only used in messages and locations.
pub fn parse(path: &Path, text: &str) -> (KeepalivedConf, Vec<ConfigError>, Vec<ConfigWarning>) {
    let mut p = P::new(path, &syntax::KEEPALIVED);
    let stmts = p.statements(text);

    let mut conf = KeepalivedConf::default();
    let mut global_seen: Option<usize> = None;
    let mut instances: Vec<(&Stmt, &Word, &[Stmt])> = Vec::new();
    let mut groups: Vec<(&Word, &[Stmt])> = Vec::new();
    for st in &stmts {
        let key = st.key();
        let k = key.text.as_str();
        match k {
            "global_defs" => {
                if let Some(first) = global_seen {
                    p.err(key.line, k, format!("given twice (first on line {first})"));
                    continue;
                }
                global_seen = Some(key.line);
                if let Some((_, block)) = p.section(st, 0) {
                    global_defs(&mut p, block, &mut conf.global);
                    conf.global.at = Some(p.at(key.line));
                }
            }
            "vrrp_script" => {
                let Some((names, block)) = p.section(st, 1) else {
                    continue;
                };
                if let Some(s) = conf.script(&names[0].text) {
                    let msg = format!(
                        "vrrp_script `{}` defined twice (first on line {})",
                        names[0].text, s.at.line
                    );
                    p.err(key.line, k, msg);
                    continue;
                }
                if let Some(s) = vrrp_script(&mut p, &names[0], block) {
                    conf.scripts.push(s);
                }
            }
            "vrrp_instance" => {
                if let Some((names, block)) = p.section(st, 1) {
                    instances.push((st, &names[0], block));
                }
            }
            "vrrp_sync_group" => {
                if let Some((names, block)) = p.section(st, 1) {
                    groups.push((&names[0], block));
                }
            }
            "virtual_server" | "virtual_server_group" | "real_server" => {
                p.err(key.line, k, NO_LVS.into());
            }
            "include" => p.err(
                key.line,
                k,
                "`include`: not supported by hbd: put the whole configuration in one file".into(),
            ),
            _ => p.unsupported(key, "keepalived.conf"),
        }
    }

    // Instances, after the scripts and global_defs wherever they are.
    let mut by_vrid: BTreeMap<(String, u8), (String, usize)> = BTreeMap::new();
    let mut vip_owner: BTreeMap<Ipv4Addr, (String, usize)> = BTreeMap::new();
    for (st, name, block) in instances {
        if let Some(other) = conf.instance(&name.text) {
            let msg = format!(
                "vrrp_instance `{}` defined twice (first on line {})",
                name.text, other.at.line
            );
            p.err(st.key().line, "vrrp_instance", msg);
            continue;
        }
        let (inst, ln) = vrrp_instance(&mut p, name, block);
        check_instance(&mut p, &inst, &ln, &conf.global);
        for t in &inst.track_scripts {
            if conf.script(&t.name).is_none() {
                let msg = format!("`{}`: no vrrp_script of that name", t.name);
                p.err(t.at.line, "track_script", msg);
            }
        }
        if let Some(l) = ln.vrid {
            if !inst.interface.is_empty() {
                let k = (inst.interface.clone(), inst.vrid);
                if let Some((other, ol)) = by_vrid.get(&k) {
                    let msg = format!(
                        "virtual_router_id {} on {} is already used by vrrp_instance `{other}` (line {ol})",
                        inst.vrid, inst.interface
                    );
                    p.err(l, "virtual_router_id", msg);
                } else {
                    by_vrid.insert(k, (inst.name.clone(), l));
                }
            }
        }
        for v in inst.vips.iter().chain(&inst.excluded_vips) {
            if let Some((other, ol)) = vip_owner.get(&v.addr) {
                let msg = format!(
                    "`{}` is already a VIP of vrrp_instance `{other}` (line {ol})",
                    v.addr
                );
                p.err(v.at.line, "virtual_ipaddress", msg);
            } else {
                vip_owner.insert(v.addr, (inst.name.clone(), v.at.line));
            }
        }
        conf.instances.push(inst);
    }

    for (name, block) in groups {
        if let Some(other) = conf.sync_groups.iter().find(|g| g.name == name.text) {
            let msg = format!(
                "vrrp_sync_group `{}` defined twice (first on line {})",
                name.text, other.at.line
            );
            p.err(name.line, "vrrp_sync_group", msg);
            continue;
        }
        let g = sync_group(&mut p, name, block);
        for m in &g.instances {
            if conf.instance(m).is_none() {
                let msg = format!("`{m}`: no vrrp_instance of that name");
                p.err(g.at.line, "group", msg);
            } else if let Some(other) = conf.group_of(m) {
                let msg = format!(
                    "`{m}` is already in vrrp_sync_group `{}` (line {})",
                    other.name, other.at.line
                );
                p.err(g.at.line, "group", msg);
            }
        }
        conf.sync_groups.push(g);
    }
    (conf, p.errors, p.warnings)
}

/// Reads and parses a `keepalived.conf`.
pub fn load(path: &Path) -> Result<(KeepalivedConf, Vec<ConfigWarning>), Vec<ConfigError>> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        vec![ConfigError::File {
            file: path.to_path_buf(),
            message: format!("cannot read: {e}"),
        }]
    })?;
    let (conf, errors, warnings) = parse(path, &text);
    if errors.is_empty() {
        Ok((conf, warnings))
    } else {
        Err(errors)
    }
}

/// Warnings about the scripts the configuration runs (notify scripts and
/// vrrp_script commands given by absolute path): a file or directory on the
/// path that is writable by group or other, or not owned by root, lets
/// someone else run code as the scripts' user (keepalived's
/// `enable_script_security` refuses these). Missing files are left to the
/// runtime.
pub fn lint_scripts(conf: &KeepalivedConf) -> Vec<ConfigWarning> {
    let mut out = Vec::new();
    let mut check = |key: &str, cmd: &Command, at: &Location| {
        if let Some(problem) = unsafe_path(Path::new(&cmd.argv[0])) {
            out.push(ConfigWarning {
                file: at.file.clone(),
                line: at.line,
                key: key.to_string(),
                message: problem,
            });
        }
    };
    for s in &conf.scripts {
        check("script", &s.command, &s.at);
    }
    for n in conf
        .instances
        .iter()
        .map(|i| &i.notify)
        .chain(conf.sync_groups.iter().map(|g| &g.notify))
    {
        for (k, n) in n.all() {
            check(k, &n.command, &n.at);
        }
    }
    out
}

/// The first problem on an existing absolute path: the file, then its
/// directories up to `/` (a sticky directory's other-write is fine).
fn unsafe_path(path: &Path) -> Option<String> {
    use std::os::unix::fs::MetadataExt;
    if !path.is_absolute() {
        return None;
    }
    let md = std::fs::metadata(path).ok()?;
    let mut cur = Some(path);
    let mut first = true;
    while let Some(p) = cur {
        let m = if first {
            md.clone()
        } else {
            std::fs::metadata(p).ok()?
        };
        let what = if first { "script" } else { "directory" };
        let mode = m.mode() & 0o7777;
        let sticky = !first && mode & 0o1000 != 0;
        if m.uid() != 0 {
            return Some(format!(
                "{what} `{}` is owned by uid {}, not root: that user can change what runs as root",
                p.display(),
                m.uid()
            ));
        }
        if mode & 0o022 != 0 && !sticky {
            return Some(format!(
                "{what} `{}` is writable by group or other (mode {mode:04o}): they can change what runs as root",
                p.display()
            ));
        }
        first = false;
        cur = p.parent();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::path::PathBuf;

    /// Seed 000's two files, verbatim (with the guide's `<...>` placeholders).
    const SEED_000_SMESQL01: &str =
        include_str!("../../tests/data/keepalived/seed000_smesql01.conf");
    const SEED_000_SMESQL02: &str =
        include_str!("../../tests/data/keepalived/seed000_smesql02.conf");
    /// Seed 001's revision of the same files: the page lost every `}`.
    const SEED_001_SMESQL01: &str =
        include_str!("../../tests/data/keepalived/seed001_smesql01.conf");
    const SEED_001_SMESQL02: &str =
        include_str!("../../tests/data/keepalived/seed001_smesql02.conf");
    /// Seed 004's two files (U+00A0 indentation), verbatim.
    const SEED_004_SCRIPTS: &str = include_str!("../../tests/data/keepalived/seed004_scripts.conf");
    const SEED_004_BASIC: &str = include_str!("../../tests/data/keepalived/seed004_basic.conf");
    const EXAMPLE_NODE1: &str = include_str!("../../etc/keepalived/node1/keepalived.conf");
    const EXAMPLE_NODE2: &str = include_str!("../../etc/keepalived/node2/keepalived.conf");

    /// Seed 000 with its placeholders filled with the guide's own examples.
    fn filled(text: &str) -> String {
        text.replace("<db VIP address - ex: '10.10.10.1'>", "10.10.10.1")
            .replace("<memcached VIP address - ex: '10.10.10.2'>", "10.10.10.2")
            .replace("<8 character password>", "s3cr3t!x")
    }

    fn run(text: &str) -> (KeepalivedConf, Vec<String>, Vec<String>) {
        let (c, e, w) = parse(Path::new("keepalived.conf"), text);
        (
            c,
            e.iter().map(|e| e.to_string()).collect(),
            w.iter().map(|w| w.to_string()).collect(),
        )
    }

    fn errs(text: &str) -> Vec<String> {
        run(text).1
    }

    fn warns(text: &str) -> Vec<String> {
        let (_, e, w) = run(text);
        assert_eq!(e, Vec::<String>::new());
        w
    }

    fn loc(line: usize) -> Location {
        Location {
            file: PathBuf::from("keepalived.conf"),
            line,
        }
    }

    fn strings(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    const PLACEHOLDER: &str = "is a template placeholder: put the real value here";
    const STRICT_PRIO: &str = "< 255: keepalived 2.2.7 installs no_accept firewall rules and the VIP stops answering; hbd keeps the VIP reachable unless `no_accept` is set explicitly";
    const STRICT_AUTH: &str = "authentication: keepalived ignores authentication in strict mode: adverts carry none, and neither do hbd's";
    const STRICT_MASTER: &str =
        "in strict mode: keepalived starts as BACKUP (MASTER requires priority 255); so does hbd";
    const NOPREEMPT_STRICT_MASTER: &str = "nopreempt: `nopreempt` with `state MASTER`: keepalived ignores nopreempt unless the instance starts as BACKUP; here strict mode starts it as BACKUP, so nopreempt holds: write `state BACKUP` to say so";

    #[test]
    fn seed_000_verbatim_only_the_placeholders_are_errors() {
        let (_, e, w) = run(SEED_000_SMESQL01);
        assert_eq!(
            e,
            strings(&[
                &format!("keepalived.conf:34: virtual_ipaddress: `<db VIP address - ex: '10.10.10.1'>` {PLACEHOLDER}"),
                &format!("keepalived.conf:41: auth_pass: `<8 character password>` {PLACEHOLDER}"),
                &format!("keepalived.conf:53: virtual_ipaddress: `<memcached VIP address - ex: '10.10.10.2'>` {PLACEHOLDER}"),
                &format!("keepalived.conf:60: auth_pass: `<8 character password>` {PLACEHOLDER}"),
            ])
        );
        assert_eq!(w.len(), 6, "{w:#?}");
        let (_, e, _) = run(SEED_000_SMESQL02);
        assert_eq!(
            e,
            strings(&[
                &format!("keepalived.conf:34: virtual_ipaddress: `<db VIP address - ex: '10.10.10.1'>` {PLACEHOLDER}"),
                &format!("keepalived.conf:41: auth_pass: `<8 character password>` {PLACEHOLDER}"),
                &format!("keepalived.conf:52: virtual_ipaddress: `<memcached VIP address - ex: '10.10.10.2'>` {PLACEHOLDER}"),
                &format!("keepalived.conf:59: auth_pass: `<8 character password>` {PLACEHOLDER}"),
            ])
        );
    }

    #[test]
    fn seed_000_smesql01_filled() {
        let (c, e, w) = run(&filled(SEED_000_SMESQL01));
        assert_eq!(e, Vec::<String>::new());
        assert_eq!(
            w,
            strings(&[
                &format!(
                    "keepalived.conf:28: state: `state MASTER` with priority 105 {STRICT_MASTER}"
                ),
                &format!(
                    "keepalived.conf:31: priority: `vrrp_strict` with priority 105 {STRICT_PRIO}"
                ),
                &format!("keepalived.conf:32: {NOPREEMPT_STRICT_MASTER}"),
                &format!("keepalived.conf:39: {STRICT_AUTH}"),
                &format!(
                    "keepalived.conf:47: state: `state MASTER` with priority 105 {STRICT_MASTER}"
                ),
                &format!(
                    "keepalived.conf:50: priority: `vrrp_strict` with priority 105 {STRICT_PRIO}"
                ),
                &format!("keepalived.conf:51: {NOPREEMPT_STRICT_MASTER}"),
                &format!("keepalived.conf:58: {STRICT_AUTH}"),
            ])
        );
        let g = &c.global;
        assert!(g.vrrp_strict && g.vrrp_skip_check_adv_addr && g.enable_script_security);
        assert!(g.notification_email.is_empty());
        assert_eq!(g.vrrp_garp_interval, Duration::ZERO);
        assert_eq!(g.vrrp_gna_interval, Duration::ZERO);
        assert_eq!(g.vrrp_version, 2);
        assert_eq!(g.at, Some(loc(3)));
        let s = c.script("chk_mariadb").unwrap();
        assert_eq!(
            *s,
            VrrpScript {
                name: "chk_mariadb".into(),
                command: Command {
                    text: "/sbin/pidof mysqld".into(),
                    argv: strings(&["/sbin/pidof", "mysqld"]),
                },
                interval: Duration::from_secs(2),
                timeout: None,
                weight: 0,
                weight_reverse: false,
                rise: 5,
                fall: 5,
                init_fail: false,
                user: None,
                at: loc(13),
            }
        );
        assert_eq!(s.effective_timeout(), Duration::from_secs(2));
        assert_eq!(
            c.script("chk_memcache").unwrap().command.argv[1],
            "memcached"
        );
        let db = c.instance("DB").unwrap();
        assert_eq!(db.state, Some(InitialState::Master));
        assert_eq!(db.interface, "eth0");
        assert_eq!((db.vrid, db.priority), (51, Some(105)));
        assert!(db.nopreempt);
        assert_eq!(
            db.vips,
            vec![Vip {
                addr: Ipv4Addr::new(10, 10, 10, 1),
                prefix: 32,
                brd: None,
                dev: None,
                scope: None,
                label: None,
                at: loc(34),
            }]
        );
        assert_eq!(db.track_scripts[0].name, "chk_mariadb");
        assert_eq!(db.track_scripts[0].weight, None);
        assert_eq!(db.auth, Some(Auth::Pass("s3cr3t!x".into())));
        let n = db.notify.notify.as_ref().unwrap();
        assert_eq!(
            n.command.argv,
            strings(&["/usr/libexec/keepalived/keepalived_state.sh"])
        );
        assert_eq!(
            n.user,
            Some(ScriptUser {
                user: "root".into(),
                group: None
            })
        );
        assert_eq!(n.at, loc(43));
        // What keepalived 2.2.7 makes of it in strict mode: BACKUP, nopreempt
        // holds, no authentication on the wire; hbd keeps the VIP reachable.
        assert_eq!(db.initial_state(g), InitialState::Backup);
        assert!(!db.preempt(g));
        assert_eq!(db.effective_auth(g), None);
        assert!(db.accept());
        assert_eq!(db.effective_version(g), 2);
        assert_eq!(db.advert_interval(g), Duration::from_secs(1));
        assert_eq!(db.garp_master_delay(g), Duration::from_secs(5));
        assert_eq!(db.garp_master_repeat(g), 5);
        let mc = c.instance("MEMCACHE").unwrap();
        assert_eq!(
            (mc.vrid, mc.vips[0].addr),
            (61, Ipv4Addr::new(10, 10, 10, 2))
        );
        assert!(c.sync_groups.is_empty());
    }

    #[test]
    fn seed_000_smesql02_filled() {
        let (c, e, w) = run(&filled(SEED_000_SMESQL02));
        assert_eq!(e, Vec::<String>::new());
        assert_eq!(
            w,
            strings(&[
                &format!(
                    "keepalived.conf:31: priority: `vrrp_strict` with priority 100 {STRICT_PRIO}"
                ),
                &format!("keepalived.conf:39: {STRICT_AUTH}"),
                &format!(
                    "keepalived.conf:49: priority: `vrrp_strict` with priority 100 {STRICT_PRIO}"
                ),
                &format!("keepalived.conf:57: {STRICT_AUTH}"),
            ])
        );
        let db = c.instance("DB").unwrap();
        assert_eq!(db.initial_state(&c.global), InitialState::Backup);
        assert_eq!(db.base_priority(), 100);
        assert!(!db.preempt(&c.global));
        // The tab-indented notify line.
        assert_eq!(db.notify.notify.as_ref().unwrap().at, loc(43));
    }

    #[test]
    fn seed_001_as_published_lost_its_closing_braces() {
        for text in [SEED_001_SMESQL01, SEED_001_SMESQL02] {
            let e = errs(text);
            assert!(
                e.contains(
                    &"keepalived.conf:3: global_defs: `{` is never closed: missing `}`".to_string()
                ),
                "{e:#?}"
            );
            assert!(e.iter().filter(|e| e.contains("is never closed")).count() >= 12);
        }
    }

    #[test]
    fn seed_004_verbatim() {
        let (c, e, w) = run(SEED_004_SCRIPTS);
        assert_eq!(e, Vec::<String>::new());
        assert_eq!(
            w,
            strings(&["keepalived.conf:23: auth_pass: the password is 36 bytes: keepalived (and hbd) use only the first 8"])
        );
        let h = c.script("chk_httpd").unwrap();
        assert_eq!(h.command.argv, strings(&["killall", "-0", "httpd"]));
        assert_eq!(
            (h.interval, h.weight, h.rise, h.fall),
            (Duration::from_secs(2), 50, 1, 1)
        );
        let i = c.instance("VI_1").unwrap();
        assert_eq!(
            (i.vrid, i.priority, i.state),
            (1, Some(101), Some(InitialState::Master))
        );
        assert_eq!(i.advert_int, Duration::from_secs(1));
        assert_eq!(i.auth, Some(Auth::Pass("319e49e4".into())));
        assert_eq!(i.effective_auth(&c.global), i.auth.as_ref());
        assert_eq!(i.vips[0].addr, Ipv4Addr::new(1, 2, 3, 4));
        let names: Vec<&str> = i.track_scripts.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(names, ["chk_httpd", "chk_mysqld"]);
        assert_eq!(i.initial_state(&c.global), InitialState::Master);
        assert!(i.preempt(&c.global));

        let (c, e, w) = run(SEED_004_BASIC);
        assert_eq!(e, Vec::<String>::new());
        assert_eq!(
            w,
            strings(&["keepalived.conf:9: auth_pass: the password is 36 bytes: keepalived (and hbd) use only the first 8"])
        );
        assert_eq!(c.instances.len(), 1);
        assert!(c.scripts.is_empty());
    }

    #[test]
    fn examples_are_clean_and_differ_only_in_priority() {
        let (a, e, w) = run(EXAMPLE_NODE1);
        assert!(e.is_empty() && w.is_empty(), "{e:#?} {w:#?}");
        let (b, e, w) = run(EXAMPLE_NODE2);
        assert!(e.is_empty() && w.is_empty(), "{e:#?} {w:#?}");
        for (x, y) in a.instances.iter().zip(&b.instances) {
            assert_eq!(
                (x.vrid, x.base_priority(), y.base_priority()),
                (x.vrid, 105, 100)
            );
            assert_eq!(x.vips, y.vips);
            assert_eq!(x.initial_state(&a.global), InitialState::Backup);
            assert!(!x.preempt(&a.global));
            assert_eq!(
                x.effective_auth(&a.global),
                Some(&Auth::Pass("Xq7rT2pw".into()))
            );
            assert!(x.vips[0].addr.octets()[..3] == [192, 0, 2]);
        }
        assert_eq!(a.instances.len(), 2);
    }

    /// A valid instance around `extra` (line 10); `vrrp_script chk` on line 1.
    fn base(extra: &str) -> String {
        format!(
            "vrrp_script chk {{\n script \"/bin/true\"\n}}\nvrrp_instance VI {{\n interface eth0\n virtual_router_id 7\n virtual_ipaddress {{\n  192.0.2.10/24\n }}\n{extra}\n}}\n"
        )
    }

    fn one(text: &str, want: &str) {
        let e = errs(text);
        assert!(
            e.iter().any(|e| e.starts_with(want)),
            "want `{want}...` in {e:#?}"
        );
    }

    fn warned(text: &str, want: &str) {
        let w = warns(text);
        assert!(
            w.iter().any(|w| w.starts_with(want)),
            "want `{want}...` in {w:#?}"
        );
    }

    #[test]
    fn defaults() {
        let (c, e, w) = run(&base(""));
        assert!(e.is_empty() && w.is_empty(), "{e:?} {w:?}");
        let g = &c.global;
        assert_eq!(*g, GlobalDefs::default());
        let i = &c.instances[0];
        assert_eq!(i.state, None);
        assert_eq!(i.base_priority(), 100);
        assert_eq!(i.initial_state(g), InitialState::Backup);
        assert_eq!(i.advert_interval(g), Duration::from_secs(1));
        assert!(i.preempt(g) && i.accept() && !i.strict(g));
        assert_eq!(i.effective_version(g), 2);
        assert_eq!(
            i.vips[0],
            Vip {
                addr: Ipv4Addr::new(192, 0, 2, 10),
                prefix: 24,
                brd: None,
                dev: None,
                scope: None,
                label: None,
                at: loc(8),
            }
        );
        assert_eq!(i.at, loc(4));
        let s = &c.scripts[0];
        assert_eq!(
            (s.interval, s.weight, s.rise, s.fall),
            (Duration::from_secs(1), 0, 1, 1)
        );
        assert_eq!(s.effective_timeout(), Duration::from_secs(1));
        assert_eq!(g.vrrp_mcast_group4, Ipv4Addr::new(224, 0, 0, 18));
        assert_eq!(g.vrrp_garp_master_refresh, Duration::ZERO);
        assert_eq!(g.vrrp_garp_master_refresh_repeat, 1);
        // Without a priority, `state MASTER` means the address owner.
        let (c, _, _) = run(&base("state MASTER"));
        assert_eq!(c.instances[0].base_priority(), 255);
        assert_eq!(
            c.instances[0].initial_state(&c.global),
            InitialState::Master
        );
        // Without a state, priority 255 starts as MASTER.
        let (c, _, _) = run(&base("priority 255"));
        assert_eq!(
            c.instances[0].initial_state(&c.global),
            InitialState::Master
        );
    }

    #[test]
    fn full_instance() {
        let text = base(
            "state BACKUP\npriority 90\nadvert_int 0.1\nversion 3\npreempt_delay 30\n\
             virtual_ipaddress_excluded {\n 192.0.2.20/24 brd 192.0.2.255 dev eth1 scope global label eth1:vip\n}\n\
             track_script {\n chk weight -20 reverse\n}\ntrack_interface {\n eth1 weight 10\n eth2\n}\n\
             notify_master \"/etc/hbd/m.sh 'two words' x\\ y\" nobody nogroup\nnotify_backup /etc/hbd/b.sh\n\
             notify_fault /etc/hbd/f.sh\nnotify_stop /etc/hbd/s.sh\n\
             unicast_src_ip 192.0.2.1\nunicast_peer {\n 192.0.2.2\n 192.0.2.3\n}\n\
             garp_master_delay 1\ngarp_master_repeat 3\ngarp_master_refresh 60\ngarp_master_refresh_repeat 2\n\
             use_vmac vrrp.7\nvmac_xmit_base\ndont_track_primary\nno_accept\nskip_check_adv_addr off",
        );
        let (c, e, w) = run(&text);
        assert!(e.is_empty() && w.is_empty(), "{e:#?} {w:#?}");
        let g = &c.global;
        let i = &c.instances[0];
        assert_eq!(i.effective_version(g), 3);
        assert_eq!(i.advert_interval(g), Duration::from_millis(100));
        assert_eq!(i.effective_preempt_delay(g), Duration::from_secs(30));
        assert_eq!(
            i.excluded_vips[0],
            Vip {
                addr: Ipv4Addr::new(192, 0, 2, 20),
                prefix: 24,
                brd: Some(Ipv4Addr::new(192, 0, 2, 255)),
                dev: Some("eth1".into()),
                scope: Some("global".into()),
                label: Some("eth1:vip".into()),
                at: loc(16),
            }
        );
        assert_eq!(
            i.track_scripts[0],
            TrackScript {
                name: "chk".into(),
                weight: Some(-20),
                reverse: true,
                at: loc(19),
            }
        );
        assert_eq!(i.track_interfaces.len(), 2);
        assert_eq!(
            (i.track_interfaces[0].weight, i.track_interfaces[1].weight),
            (10, 0)
        );
        let m = i.notify.master.as_ref().unwrap();
        assert_eq!(
            m.command.argv,
            strings(&["/etc/hbd/m.sh", "two words", "x y"])
        );
        assert_eq!(
            m.user,
            Some(ScriptUser {
                user: "nobody".into(),
                group: Some("nogroup".into())
            })
        );
        assert_eq!(i.notify.all().len(), 4);
        assert_eq!(i.unicast_src_ip, Some(Ipv4Addr::new(192, 0, 2, 1)));
        assert_eq!(i.unicast_peers.len(), 2);
        assert_eq!(i.garp_master_delay(g), Duration::from_secs(1));
        assert_eq!(i.garp_master_repeat(g), 3);
        assert_eq!(i.garp_master_refresh(g), Duration::from_secs(60));
        assert_eq!(i.garp_master_refresh_repeat(g), 2);
        assert!(i.use_vmac && i.vmac_xmit_base && i.dont_track_primary);
        assert_eq!(i.vmac_name.as_deref(), Some("vrrp.7"));
        assert!(!i.accept());
        assert!(!i.skip_check_adv_addr(g));
    }

    #[test]
    fn global_defs_and_sync_group() {
        let text = format!(
            "global_defs {{\n router_id lb1\n vrrp_version 3\n script_user keepalived_script users\n\
             vrrp_garp_master_delay 2\n vrrp_garp_master_repeat 1\n vrrp_garp_master_refresh 30\n\
             vrrp_garp_master_refresh_repeat 4\n vrrp_garp_interval 0.001\n vrrp_mcast_group4 224.0.0.19\n}}\n{}\
             vrrp_sync_group G {{\n group {{\n  VI\n }}\n notify \"/bin/g\"\n}}\n",
            base("")
        );
        let (c, e, w) = run(&text);
        assert!(e.is_empty() && w.is_empty(), "{e:#?} {w:#?}");
        let g = &c.global;
        assert_eq!(g.router_id.as_deref(), Some("lb1"));
        assert_eq!(
            g.script_user,
            Some(ScriptUser {
                user: "keepalived_script".into(),
                group: Some("users".into())
            })
        );
        assert_eq!(g.vrrp_garp_interval, Duration::from_millis(1));
        assert_eq!(g.vrrp_mcast_group4, Ipv4Addr::new(224, 0, 0, 19));
        let i = &c.instances[0];
        assert_eq!(i.effective_version(g), 3);
        assert_eq!(i.garp_master_delay(g), Duration::from_secs(2));
        assert_eq!(i.garp_master_repeat(g), 1);
        assert_eq!(i.garp_master_refresh(g), Duration::from_secs(30));
        assert_eq!(i.garp_master_refresh_repeat(g), 4);
        assert_eq!(c.sync_groups[0].instances, strings(&["VI"]));
        assert_eq!(c.group_of("VI").unwrap().name, "G");
        assert!(c.sync_groups[0].notify.notify.is_some());
    }

    #[test]
    fn syntax_variants() {
        // `{` on the next line, one-line blocks, `#` and `!` comments, CRLF.
        let text = "vrrp_script chk\n{\n script /bin/true # comment\n}\r\nvrrp_instance VI { ! c\n interface eth0\r\n virtual_router_id 7\n virtual_ipaddress { 192.0.2.10 }\n track_script { chk }\n}\n";
        let (c, e, w) = run(text);
        assert!(e.is_empty() && w.is_empty(), "{e:#?} {w:#?}");
        assert_eq!(c.instances[0].vips[0].prefix, 32);
        assert_eq!(c.instances[0].track_scripts[0].name, "chk");
        assert_eq!(c.scripts[0].command.argv, strings(&["/bin/true"]));
    }

    #[test]
    fn error_cases() {
        let k = "keepalived.conf";
        // unknown and unsupported
        one(
            "bogus 1\n",
            &format!("{k}:1: bogus: `bogus`: not supported by hbd (in `keepalived.conf`)"),
        );
        one(
            "virtual_server 192.0.2.1 80 {\n}\n",
            &format!("{k}:1: virtual_server: hbd does not do LVS"),
        );
        one(
            "virtual_server_group G {\n}\n",
            &format!("{k}:1: virtual_server_group: hbd does not do LVS"),
        );
        one(
            "include /etc/keepalived/*.conf\n",
            &format!("{k}:1: include: `include`: not supported by hbd"),
        );
        one(
            "global_defs {\n notify_fifo /run/f\n}\n",
            &format!("{k}:2: notify_fifo: `notify_fifo`: not supported by hbd (in `global_defs`)"),
        );
        one(
            &base("track_file {\n f\n}"),
            &format!("{k}:10: track_file: `track_file`: not supported by hbd (in `vrrp_instance`)"),
        );
        one(
            &base("virtual_routes {\n}"),
            &format!("{k}:10: virtual_routes: `virtual_routes`: not supported"),
        );
        one(
            "vrrp_script s {\n script /bin/true\n foo 1\n}\n",
            &format!("{k}:3: foo: `foo`: not supported by hbd (in `vrrp_script`)"),
        );
        one(
            &base("vrrp_version 3"),
            &format!("{k}:10: vrrp_version: inside `vrrp_instance` the keyword is `version`"),
        );
        // authentication
        one(
            &base("authentication {\n auth_type AH\n auth_pass secret\n}"),
            &format!("{k}:11: auth_type: `AH`: IPsec AH authentication is not supported by hbd"),
        );
        one(
            &base("authentication {\n auth_type XX\n}"),
            &format!("{k}:11: auth_type: `XX`: expected PASS"),
        );
        one(
            &base("authentication {\n auth_pass secret\n}"),
            &format!("{k}:10: authentication: `auth_pass` without `auth_type PASS`"),
        );
        one(
            &base("authentication {\n auth_type PASS\n}"),
            &format!("{k}:10: authentication: `auth_type PASS` without `auth_pass`"),
        );
        one(
            &base("authentication {\n auth_type PASS\n auth_pass \"\"\n}"),
            &format!("{k}:12: auth_pass: empty password"),
        );
        one(
            &base("authentication {\n auth_type PASS\n auth_pass a b\n}"),
            &format!("{k}:12: auth_pass: unexpected `b`"),
        );
        // required settings
        let no_vrid = base("").replace(" virtual_router_id 7\n", "");
        one(
            &no_vrid,
            &format!("{k}:4: vrrp_instance: vrrp_instance `VI` has no `virtual_router_id`"),
        );
        let no_if = base("").replace(" interface eth0\n", "");
        one(
            &no_if,
            &format!("{k}:4: vrrp_instance: vrrp_instance `VI` has no `interface`"),
        );
        let no_vip = base("strict_mode").replace("  192.0.2.10/24\n", "");
        one(&no_vip, &format!("{k}:4: vrrp_instance: vrrp_instance `VI` has no `virtual_ipaddress` (keepalived refuses it in strict mode and with VRRPv3)"));
        one(
            "vrrp_script s {\n interval 1\n}\n",
            &format!("{k}:1: vrrp_script: vrrp_script `s` has no `script`"),
        );
        // references and duplicates
        one(
            &base("track_script {\n nope\n}"),
            &format!("{k}:11: track_script: `nope`: no vrrp_script of that name"),
        );
        let two = format!(
            "{}{}",
            base(""),
            base("")
                .replace("vrrp_script chk", "vrrp_script chk2")
                .replace("VI ", "VJ ")
                .replace(".10/", ".11/")
        );
        one(&two, &format!("{k}:17: virtual_router_id: virtual_router_id 7 on eth0 is already used by vrrp_instance `VI` (line 6)"));
        let same_vip = format!(
            "{}{}",
            base(""),
            base("")
                .replace("vrrp_script chk", "vrrp_script chk2")
                .replace("VI ", "VJ ")
                .replace("id 7", "id 8")
        );
        one(&same_vip, &format!("{k}:19: virtual_ipaddress: `192.0.2.10` is already a VIP of vrrp_instance `VI` (line 8)"));
        let other_if = two.replace(
            "interface eth0\n virtual_router_id 7\n virtual_ipaddress {\n  192.0.2.11",
            "interface eth1\n virtual_router_id 7\n virtual_ipaddress {\n  192.0.2.11",
        );
        assert_eq!(errs(&other_if), Vec::<String>::new());
        let twice = format!(
            "{}{}",
            base(""),
            base("").replace("vrrp_script chk", "vrrp_script chk2")
        );
        one(
            &twice,
            &format!("{k}:15: vrrp_instance: vrrp_instance `VI` defined twice (first on line 4)"),
        );
        one(
            &format!("{}vrrp_script chk {{\n script /bin/x\n}}\n", base("")),
            &format!("{k}:12: vrrp_script: vrrp_script `chk` defined twice (first on line 1)"),
        );
        one(
            "global_defs {\n}\nglobal_defs {\n}\n",
            &format!("{k}:3: global_defs: given twice (first on line 1)"),
        );
        one(
            &base("priority 100\npriority 101"),
            &format!("{k}:11: priority: given twice (first on line 10)"),
        );
        one(
            &base("notify /a\nnotify /b"),
            &format!("{k}:11: notify: given twice (first on line 10)"),
        );
        one(
            &base("unicast_peer {\n 192.0.2.2\n 192.0.2.2\n}"),
            &format!("{k}:12: unicast_peer: `192.0.2.2` listed twice"),
        );
        // sync groups
        one(
            &format!(
                "{}vrrp_sync_group G {{\n group {{\n  VI\n  VX\n }}\n}}\n",
                base("")
            ),
            &format!("{k}:12: group: `VX`: no vrrp_instance of that name"),
        );
        one(
            &format!("{}vrrp_sync_group G {{\n}}\n", base("")),
            &format!("{k}:12: vrrp_sync_group: vrrp_sync_group `G` has no `group {{ }}`"),
        );
        one(&format!("{}vrrp_sync_group G {{\n group {{\n  VI\n }}\n}}\nvrrp_sync_group H {{\n group {{\n  VI\n }}\n}}\n", base("")), &format!("{k}:17: group: `VI` is already in vrrp_sync_group `G` (line 12)"));
        one(
            &format!(
                "{}vrrp_sync_group G {{\n group {{\n  VI VI\n }}\n}}\n",
                base("")
            ),
            &format!("{k}:14: group: `VI` listed twice"),
        );
        one(&format!("{}vrrp_sync_group G {{\n global_tracking\n group {{\n  VI\n }}\n}}\n", base("")), &format!("{k}:13: global_tracking: `global_tracking`: not supported by hbd (in `vrrp_sync_group`)"));
        // bad values
        one(
            &base("state MAIN"),
            &format!("{k}:10: state: `MAIN`: expected MASTER or BACKUP"),
        );
        one(
            &base("priority 0"),
            &format!("{k}:10: priority: `0`: expected a whole number from 1 to 255"),
        );
        one(
            &base("priority 256"),
            &format!("{k}:10: priority: `256`: expected a whole number from 1 to 255"),
        );
        one(
            &base("").replace("id 7", "id 0"),
            &format!("{k}:6: virtual_router_id: `0`: expected a whole number from 1 to 255"),
        );
        one(
            &base("advert_int 1s"),
            &format!("{k}:10: advert_int: `1s`: expected seconds like `1` or `0.5`"),
        );
        one(
            &base("advert_int -1"),
            &format!("{k}:10: advert_int: `-1`: expected seconds"),
        );
        one(
            &base("advert_int 0"),
            &format!("{k}:10: advert_int: `0`: must be from 0.001 to 255 seconds"),
        );
        one(
            &base("advert_int 255.5"),
            &format!("{k}:10: advert_int: `255.5`: must be from 0.001 to 255 seconds"),
        );
        one(
            &base("version 3\nadvert_int 41"),
            &format!("{k}:11: advert_int: VRRPv3 advert_int must be less than 40.96 seconds"),
        );
        one(
            &base("version 4"),
            &format!("{k}:10: version: `4`: expected a whole number from 2 to 3"),
        );
        one(
            &base("preempt_delay 1001"),
            &format!("{k}:10: preempt_delay: `1001`: must be from 0 to 1000 seconds"),
        );
        one(
            &base("interface eth1"),
            &format!("{k}:10: interface: given twice (first on line 5)"),
        );
        one(
            &base("").replace("interface eth0", "interface eth0.very-long-name"),
            &format!("{k}:5: interface: `eth0.very-long-name`: not an interface name"),
        );
        one(
            &base("unicast_src_ip 192.0.2.999"),
            &format!("{k}:10: unicast_src_ip: `192.0.2.999`: expected an IPv4 address"),
        );
        one(
            &base("unicast_src_ip fe80::1"),
            &format!("{k}:10: unicast_src_ip: `fe80::1`: IPv6 is not supported by hbd: IPv4 only"),
        );
        one(
            &base("unicast_peer {\n 192.0.2.2 min_ttl 1\n}"),
            &format!("{k}:11: unicast_peer: `min_ttl`: not supported by hbd: one address per line"),
        );
        one(
            &base("strict_mode\nunicast_peer {\n 192.0.2.2\n}"),
            &format!("{k}:11: unicast_peer: unicast peers are not allowed in strict mode"),
        );
        one(
            &base("strict_mode maybe"),
            &format!("{k}:10: strict_mode: `maybe`: expected on/off, true/false or yes/no"),
        );
        one(
            "vrrp_script s {\n script /bin/true\n weight 254\n}\n",
            &format!("{k}:3: weight: `254`: expected a whole number from -253 to 253"),
        );
        one(
            "vrrp_script s {\n script /bin/true\n weight -5 sideways\n}\n",
            &format!("{k}:3: weight: unexpected `sideways`: expected `reverse`"),
        );
        one(
            "vrrp_script s {\n script /bin/true\n rise 0\n}\n",
            &format!("{k}:3: rise: `0`: expected a whole number from 1 to 1000000"),
        );
        one(
            "vrrp_script s {\n script /bin/true\n interval 0\n}\n",
            &format!("{k}:3: interval: `0`: expected a whole number from 1 to 86400"),
        );
        one(
            "vrrp_script s {\n script /bin/true\n timeout 0.5\n}\n",
            &format!("{k}:3: timeout: `0.5`: expected a whole number from 1 to 86400"),
        );
        one(
            "vrrp_script s {\n script \"/bin/x 'unclosed\"\n}\n",
            &format!("{k}:2: script: `/bin/x 'unclosed`: quote not closed"),
        );
        one(
            "vrrp_script s {\n script \"\"\n}\n",
            &format!("{k}:2: script: empty command"),
        );
        one(
            "vrrp_script s {\n script killall -0 httpd\n}\n",
            &format!("{k}:2: script: unexpected `-0`: quote the whole command, e.g. `script \"killall -0\"` (keepalived would run `killall` alone)"),
        );
        one(
            &base("track_script {\n chk weight 300\n}"),
            &format!("{k}:11: track_script: `300`: expected a whole number from -253 to 253"),
        );
        one(
            &base("track_script {\n chk 5\n}"),
            &format!("{k}:11: track_script: unexpected `5`: expected `weight W`"),
        );
        one(
            &base("track_interface {\n eth1 weight\n}"),
            &format!("{k}:11: track_interface: unexpected `weight`: expected `weight W`"),
        );
        one(
            &base("notify /a u g extra"),
            &format!("{k}:10: notify: unexpected `extra`"),
        );
        one(
            "global_defs {\n vrrp_version 1\n}\n",
            &format!("{k}:2: vrrp_version: `1`: expected a whole number from 2 to 3"),
        );
        one(
            "global_defs {\n vrrp_mcast_group4 192.0.2.1\n}\n",
            &format!("{k}:2: vrrp_mcast_group4: `192.0.2.1`: not a multicast address"),
        );
        one(
            "global_defs {\n vrrp_gna_interval 3601\n}\n",
            &format!("{k}:2: vrrp_gna_interval: `3601`: must be from 0 to 3600 seconds"),
        );
        one(
            "global_defs {\n vrrp_strict yes\n}\n",
            &format!("{k}:2: vrrp_strict: unexpected `yes`"),
        );
        // VIPs
        let vip = |line: &str| base("").replace("192.0.2.10/24", line);
        one(
            &vip("192.0.2.300"),
            &format!("{k}:8: virtual_ipaddress: `192.0.2.300`: expected an IPv4 address"),
        );
        one(
            &vip("192.0.2.1/33"),
            &format!("{k}:8: virtual_ipaddress: `192.0.2.1/33`: the prefix length must be 0 to 32"),
        );
        one(
            &vip("fe80::1/64"),
            &format!("{k}:8: virtual_ipaddress: `fe80::1`: IPv6 is not supported"),
        );
        one(
            &vip("192.0.2.1 dev"),
            &format!("{k}:8: virtual_ipaddress: `dev` needs a value"),
        );
        one(&vip("192.0.2.1 no_track"), &format!("{k}:8: virtual_ipaddress: `no_track`: not supported by hbd; expected `brd`, `dev`, `scope` or `label`"));
        one(&vip("192.0.2.1 scope galaxy"), &format!("{k}:8: virtual_ipaddress: `galaxy`: expected global, site, link, host, nowhere or 0..255"));
        one(
            &vip("192.0.2.1 label a-label-that-is-too-long"),
            &format!(
                "{k}:8: virtual_ipaddress: `a-label-that-is-too-long`: a label is at most 15 bytes"
            ),
        );
        one(
            &vip("192.0.2.1 brd 192.0.2"),
            &format!("{k}:8: virtual_ipaddress: `192.0.2`: expected an IPv4 address"),
        );
        one(
            &vip("<your VIP>"),
            &format!("{k}:8: virtual_ipaddress: `<your VIP>` is a template placeholder"),
        );
        one(
            &vip("192.0.2.1 {\n}"),
            &format!("{k}:8: 192.0.2.1: unexpected block in `virtual_ipaddress`"),
        );
        // syntax
        one(
            "global_defs {\n router_id x\n",
            &format!("{k}:1: global_defs: `{{` is never closed: missing `}}`"),
        );
        one("}\n", &format!("{k}:1: }}: `}}` without a matching `{{`"));
        one(
            "{\n}\n",
            &format!("{k}:1: {{: unexpected `{{`: a block starts with its keyword"),
        );
        one(
            "global_defs {\n router_id \"abc\n}\n",
            &format!("{k}:2: \": string not closed on this line"),
        );
        one(
            &base("priority {\n}"),
            &format!("{k}:10: priority: `priority` takes values, not a `{{ }}` block"),
        );
        one(&base("virtual_ipaddress_excluded 192.0.2.9"), &format!("{k}:10: virtual_ipaddress_excluded: `virtual_ipaddress_excluded` is a block: expected `{{`"));
        one(
            "vrrp_instance {\n}\n",
            &format!("{k}:1: vrrp_instance: missing name before `{{`"),
        );
        one(
            "vrrp_instance A B {\n}\n",
            &format!("{k}:1: vrrp_instance: unexpected `B`: expected `{{`"),
        );
        one(
            &base("priority"),
            &format!("{k}:10: priority: missing value"),
        );
        one(
            &base("nopreempt now"),
            &format!("{k}:10: nopreempt: unexpected `now`"),
        );
    }

    #[test]
    fn all_errors_at_once() {
        let e = errs(&base(
            "priority 0\nstate X\nbogus\ntrack_script {\n none\n}",
        ));
        assert_eq!(e.len(), 4, "{e:#?}");
    }

    #[test]
    fn warnings() {
        let k = "keepalived.conf";
        // keepalived's pitfalls
        warned(&base("state MASTER\npriority 100\nnopreempt"), &format!("{k}:12: nopreempt: `nopreempt` with `state MASTER`: keepalived ignores nopreempt unless `state BACKUP`, so this node preempts"));
        warned(
            &base("priority 255\nnopreempt"),
            &format!("{k}:11: nopreempt: `nopreempt` has no effect with priority 255"),
        );
        warned(
            &base("unicast_src_ip 192.0.2.1"),
            &format!("{k}:10: unicast_peer: `unicast_src_ip` without unicast peers"),
        );
        warned(
            &base("unicast_src_ip 192.0.2.1\nunicast_peer {\n}"),
            &format!("{k}:11: unicast_peer: `unicast_src_ip` without unicast peers"),
        );
        warned(
            &base("strict_mode\npriority 90"),
            &format!("{k}:11: priority: `vrrp_strict` with priority 90 {STRICT_PRIO}"),
        );
        warned(
            &base("strict_mode"),
            &format!("{k}:4: priority: `vrrp_strict` with priority 100 < 255"),
        );
        warned(
            &base("strict_mode\naccept"),
            &format!("{k}:4: priority: `vrrp_strict` with priority 100 < 255"),
        );
        assert_eq!(warns(&base("strict_mode\nno_accept")), Vec::<String>::new());
        let (c, _, w) = run(&base("strict_mode\nstate BACKUP\npriority 255"));
        assert_eq!(
            w,
            strings(&["keepalived.conf:11: state: `state BACKUP` with priority 255 in strict mode: keepalived starts the address owner as MASTER; so does hbd"])
        );
        assert_eq!(
            c.instances[0].initial_state(&c.global),
            InitialState::Master
        );
        let (c, _, _) = run(&base("state BACKUP\npriority 255"));
        assert_eq!(
            c.instances[0].initial_state(&c.global),
            InitialState::Backup
        );
        assert_eq!(
            warns(&base("strict_mode\npriority 255")),
            Vec::<String>::new()
        );
        // `mcast_src_ip` sets the source of multicast adverts: no peers needed.
        let (c, e, w) = run(&base("mcast_src_ip 192.0.2.1"));
        assert!(e.is_empty() && w.is_empty(), "{e:?} {w:?}");
        assert_eq!(
            c.instances[0].unicast_src_ip,
            Some(Ipv4Addr::new(192, 0, 2, 1))
        );
        warned(&base("authentication {\n auth_type PASS\n auth_pass 123456789\n}"), &format!("{k}:12: auth_pass: the password is 9 bytes: keepalived (and hbd) use only the first 8"));
        warned(
            &base("version 3\nauthentication {\n auth_type PASS\n auth_pass 1234\n}"),
            &format!("{k}:11: authentication: VRRPv3 has no authentication"),
        );
        warned(&base("advert_int 1.4"), &format!("{k}:10: advert_int: VRRPv2 carries whole seconds: 1.4 s is rounded to 1 s (as keepalived)"));
        warned(
            &base("version 3\nadvert_int 0.015"),
            &format!(
                "{k}:11: advert_int: VRRPv3 carries units of 10 ms: 0.015 s is rounded to 0.02 s"
            ),
        );
        warned(
            &base("state MASTER\npriority 100\npreempt_delay 5"),
            &format!("{k}:12: preempt_delay: `preempt_delay` has no effect"),
        );
        warned(
            &base("").replace("  192.0.2.10/24\n", ""),
            &format!("{k}:4: vrrp_instance: vrrp_instance `VI` has no `virtual_ipaddress`"),
        );
        // knobs and inert settings
        let w = warns("global_defs {\n notification_email {\n  root@example.org\n }\n notification_email_from a@example.org\n smtp_server 192.0.2.25 25\n smtp_connect_timeout 30\n vrrp_garp_lower_prio_repeat 1\n max_auto_priority 10\n lvs_flush\n vrrp_iptables\n}\n");
        assert_eq!(
            w,
            strings(&[
                "keepalived.conf:2: notification_email: accepted, no effect: hbd sends no mail",
                "keepalived.conf:5: notification_email_from: accepted, no effect: hbd sends no mail",
                "keepalived.conf:6: smtp_server: accepted, no effect: hbd sends no mail",
                "keepalived.conf:7: smtp_connect_timeout: accepted, no effect: hbd sends no mail",
                "keepalived.conf:8: vrrp_garp_lower_prio_repeat: accepted, no effect in hbd",
                "keepalived.conf:9: max_auto_priority: accepted, no effect in hbd",
                "keepalived.conf:10: lvs_flush: accepted, no effect in hbd",
                "keepalived.conf:11: vrrp_iptables: accepted, no effect: hbd installs no firewall rules",
            ])
        );
        let (c, _, _) = run("global_defs {\n notification_email {\n  a@example.org\n  b@example.org\n }\n smtp_connect_timeout 30\n}\n");
        assert_eq!(c.global.notification_email.len(), 2);
        assert_eq!(c.global.smtp_connect_timeout, Some(Duration::from_secs(30)));
        warned(
            &base("notify_master /etc/hbd/m.sh MASTER"),
            &format!("{k}:10: notify_master: `MASTER` is the user the script runs as (keepalived's syntax: COMMAND [USER [GROUP]]); to pass arguments, quote the command"),
        );
        warned(
            &base("garp_lower_prio_repeat 2"),
            &format!("{k}:10: garp_lower_prio_repeat: accepted, no effect in hbd"),
        );
    }

    #[test]
    fn strict_mode_and_versions_resolve_like_keepalived() {
        let g = GlobalDefs::default();
        let (c, _, _) = run(&base("state MASTER\npriority 150\nstrict_mode\nauthentication {\n auth_type PASS\n auth_pass pw\n}"));
        let i = &c.instances[0];
        assert!(i.strict(&g));
        assert_eq!(i.initial_state(&g), InitialState::Backup);
        assert_eq!(i.effective_auth(&g), None);
        assert!(i.accept());
        let (c, _, _) = run(&base("version 2\nadvert_int 2.6"));
        assert_eq!(c.instances[0].advert_interval(&g), Duration::from_secs(3));
        let v3 = GlobalDefs {
            vrrp_version: 3,
            ..GlobalDefs::default()
        };
        let (c, _, _) = run(&base("advert_int 0.01"));
        assert_eq!(c.instances[0].effective_version(&v3), 3);
        assert_eq!(
            c.instances[0].advert_interval(&v3),
            Duration::from_millis(10)
        );
        assert_eq!(c.instances[0].advert_interval(&g), Duration::from_secs(1));
        assert_eq!(
            round_advert(Duration::from_millis(1), 3),
            Duration::from_millis(10)
        );
        assert_eq!(
            round_advert(Duration::from_millis(40_950), 3),
            Duration::from_millis(40_950)
        );
        assert_eq!(
            round_advert(Duration::from_millis(100), 2),
            Duration::from_secs(1)
        );
    }

    #[test]
    fn seconds_and_commands() {
        assert_eq!(parse_seconds("1"), Ok(Duration::from_secs(1)));
        assert_eq!(parse_seconds("0.01"), Ok(Duration::from_millis(10)));
        assert_eq!(parse_seconds(".5"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_seconds("2."), Ok(Duration::from_secs(2)));
        assert_eq!(parse_seconds("0.000001"), Ok(Duration::from_micros(1)));
        for bad in [
            "",
            ".",
            "-1",
            "1e3",
            "1s",
            "0.0000001",
            "1.2.3",
            "9999999999",
            "+1",
        ] {
            assert!(parse_seconds(bad).is_err(), "{bad}");
        }
        assert_eq!(split_command("a  b\tc"), Ok(strings(&["a", "b", "c"])));
        assert_eq!(
            split_command("a 'b c' \"d e\" f\\ g"),
            Ok(strings(&["a", "b c", "d e", "f g"]))
        );
        assert_eq!(split_command("a ''"), Ok(strings(&["a", ""])));
        assert!(split_command("  ").is_err());
        assert!(split_command("a 'b").is_err());
    }

    #[test]
    fn load_reads_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keepalived.conf");
        std::fs::write(&path, base("")).unwrap();
        let (c, w) = load(&path).unwrap();
        assert!(w.is_empty());
        assert_eq!(c.instances[0].at.file, path);
        std::fs::write(&path, base("priority 0")).unwrap();
        let e = load(&path).unwrap_err();
        assert!(e[0]
            .to_string()
            .starts_with(&format!("{}:10: priority:", path.display())));
        let e = load(&dir.path().join("missing.conf")).unwrap_err();
        assert!(matches!(e[0], ConfigError::File { .. }), "{e:?}");
    }

    #[test]
    fn lint_scripts_flags_unsafe_paths() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let script = dir.path().join("state.sh");
        std::fs::write(&script, "#!/bin/sh\n").unwrap();
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o775)).unwrap();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let text = base(&format!(
            "notify \"{}\" root\nnotify_master /nonexistent/x.sh",
            script.display()
        ));
        let (c, e, _) = run(&text);
        assert!(e.is_empty(), "{e:?}");
        let w: Vec<String> = lint_scripts(&c).iter().map(|w| w.to_string()).collect();
        // vrrp_script `chk` runs /bin/true: root's, not writable by others.
        let root = nix::unistd::geteuid().is_root();
        if root {
            assert_eq!(
                w,
                vec![format!(
                    "keepalived.conf:10: notify: script `{}` is writable by group or other (mode 0775): they can change what runs as root",
                    script.display()
                )]
            );
            std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
            assert_eq!(lint_scripts(&c), Vec::new());
            std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
            let w = lint_scripts(&c);
            assert_eq!(w.len(), 1);
            assert!(w[0].message.starts_with("directory `"), "{w:?}");
        } else {
            assert_eq!(w.len(), 1, "{w:?}");
            assert!(w[0].contains("not root"), "{w:?}");
        }
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_crash() {
        let text = "a {\n".repeat(100_000);
        let e = errs(&text);
        assert!(e.iter().any(|e| e.contains("nested too deep")), "{e:?}");
    }

    proptest! {
        #[test]
        fn garbage_never_panics(s in "\\PC{0,300}") {
            let _ = parse(Path::new("x"), &s);
        }

        #[test]
        fn token_soup_never_panics(toks in prop::collection::vec(prop::sample::select(vec![
            "{", "}", "\"", "#", "!", "\n", "\u{a0}", " ", "'", "\\", "<", ">", "global_defs",
            "vrrp_strict", "vrrp_version", "3", "vrrp_script", "chk", "script", "/bin/true",
            "weight", "-2", "reverse", "vrrp_instance", "VI", "state", "MASTER", "BACKUP",
            "interface", "eth0", "virtual_router_id", "51", "priority", "255", "advert_int",
            "0.01", "nopreempt", "virtual_ipaddress", "192.0.2.1/24", "dev", "brd", "label",
            "track_script", "authentication", "auth_type", "PASS", "auth_pass", "notify",
            "unicast_src_ip", "unicast_peer", "vrrp_sync_group", "group", "version",
        ]), 0..150)) {
            let text: String = toks.join(" ");
            let (c, errors, warnings) = parse(Path::new("x"), &text);
            for e in errors {
                prop_assert!(e.to_string().starts_with("x:"));
            }
            for w in warnings {
                prop_assert!(w.to_string().starts_with("x:"));
            }
            for i in &c.instances {
                let d = i.advert_interval(&c.global);
                prop_assert!(d >= Duration::from_millis(10) && d <= Duration::from_secs(255));
            }
        }
    }
}
