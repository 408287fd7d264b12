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
//! `drbd.conf`). Nothing is silently ignored: a keyword hbd does not
//! implement is an error unless it is a pure tuning knob (then a warning).
//! The model keeps what the file says; the methods of [`VrrpInstance`] apply
//! keepalived's rules (defaults derived from the state and priority, strict
//! mode, version) so the runtime behaves as keepalived.
//!
//! This file holds the model and [`parse`]'s top level (the file's sections,
//! then the checks across instances); `values.rs` reads a statement's values,
//! `parse.rs` each section into the model, `check.rs` checks an instance
//! once the file is read, `lint.rs` checks the scripts on disk.

mod check;
mod lint;
mod parse;
#[cfg(test)]
mod tests;
mod values;

pub use lint::lint_scripts;
pub use values::{parse_seconds, split_command, ValueError};

use crate::config::syntax::{self, Stmt, Word};
use crate::config::{ConfigError, ConfigWarning, Location};
use check::check_instance;
pub use check::unsupported;
use parse::{global_defs, sync_group, vrrp_instance, vrrp_script};
use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::path::Path;
use std::time::Duration;
use values::KeepalivedParser;

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

const NO_LVS: &str = "hbd does not do LVS (virtual servers): only VRRP";

/// Parses `keepalived.conf` text; `path` is only used in messages and locations.
pub fn parse(path: &Path, text: &str) -> (KeepalivedConf, Vec<ConfigError>, Vec<ConfigWarning>) {
    let mut p = KeepalivedParser::new(path, &syntax::KEEPALIVED);
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
        // Against the other instances only: within one, a repeat was
        // already ignored as keepalived ignores it (an excluded VIP may
        // repeat an address on another interface).
        for v in inst.vips.iter().chain(&inst.excluded_vips) {
            if let Some((other, ol)) = vip_owner.get(&v.addr).filter(|(o, _)| *o != inst.name) {
                let msg = format!(
                    "`{}` is already a VIP of vrrp_instance `{other}` (line {ol})",
                    v.addr
                );
                p.err(v.at.line, "virtual_ipaddress", msg);
            } else {
                vip_owner
                    .entry(v.addr)
                    .or_insert((inst.name.clone(), v.at.line));
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
    let bytes = std::fs::read(path).map_err(|e| {
        vec![ConfigError::File {
            file: path.to_path_buf(),
            message: format!("cannot read: {e}"),
        }]
    })?;
    // Comments in Latin-1 or GBK are read, as keepalived reads them.
    let (text, mut errors) =
        crate::config::text::decode(path, &bytes, crate::config::text::Comments::HashOrBang);
    let (conf, mut e, warnings) = parse(path, &text);
    errors.append(&mut e);
    if errors.is_empty() {
        Ok((conf, warnings))
    } else {
        Err(errors)
    }
}
