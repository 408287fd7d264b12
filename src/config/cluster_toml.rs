//! `cluster.toml`: hbd's own settings, for what heartbeat's files cannot say.
//! Unknown keys are errors (`deny_unknown_fields`).

use serde::Deserialize;

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterToml {
    #[serde(default)]
    pub cluster: ClusterSection,
    #[serde(default)]
    pub control: ControlSection,
    #[serde(default)]
    pub agents: AgentsSection,
    /// Settings for every resource, under the per-resource ones.
    #[serde(default)]
    pub resource_defaults: ResourceOptionsToml,
    /// `[resource.NAME]` (an agent name: every resource of that agent) or
    /// `[resource."FULL::SPEC"]` (one resource as written in haresources).
    #[serde(default)]
    pub resource: BTreeMap<String, ResourceOptionsToml>,
    /// `[[check]]`: service checks run by a group's `mon` resource.
    #[serde(default)]
    pub check: Vec<CheckToml>,
    /// `[[job]]`: commands run on a schedule on the node that holds a group.
    #[serde(default)]
    pub job: Vec<JobToml>,
    #[serde(default)]
    pub notify: NotifySection,
    #[serde(default)]
    pub disk: DiskSection,
    #[serde(default)]
    pub vrrp: VrrpSection,
    #[serde(default)]
    pub quorum: QuorumSection,
    #[serde(default)]
    pub tiebreaker: TiebreakerSection,
    #[serde(default)]
    pub groups: GroupsSection,
    #[serde(default)]
    pub fencing: FencingSection,
    #[serde(default)]
    pub metrics: MetricsSection,
    #[serde(default)]
    pub membership: MembershipSection,
}

/// `[membership]`: which engine gives hbd its membership and quorum.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MembershipSection {
    /// `heartbeat` (default: hbd's own keepalives over ha.cf's media) or
    /// `corosync` (CPG and votequorum).
    pub backend: Option<MembershipBackend>,
    /// corosync.conf (default `/etc/corosync/corosync.conf`; a relative
    /// path is relative to the configuration directory).
    pub corosync_conf: Option<PathBuf>,
    /// The CPG group hbd's daemons join (default `hbd`).
    pub cpg_group: Option<String>,
    /// How long after a node leaves the membership its groups are taken
    /// over (default: Corosync's effective token).
    pub stop_margin: Option<String>,
}

/// `[membership] backend`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MembershipBackend {
    /// hbd's own membership (heartbeat's keepalives over ha.cf's media).
    #[default]
    Heartbeat,
    /// Corosync's CPG for membership and messages, votequorum for quorum.
    Corosync,
}

impl MembershipBackend {
    pub fn as_str(self) -> &'static str {
        match self {
            MembershipBackend::Heartbeat => "heartbeat",
            MembershipBackend::Corosync => "corosync",
        }
    }
}

/// Longest `[membership] cpg_group`, in bytes: corosync's
/// `CPG_MAX_NAME_LENGTH` (128) less the NUL rust-corosync keeps.
pub const MAX_CPG_GROUP: usize = 127;

/// `[metrics]`: the Prometheus endpoint (off unless `listen` is set).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricsSection {
    /// `ADDRESS:PORT` to serve `GET /metrics` on (e.g. `127.0.0.1:9810`).
    pub listen: Option<String>,
}

impl MetricsSection {
    /// The parsed `listen` address (checked by [`parse`]).
    pub fn listen_addr(&self) -> Option<std::net::SocketAddr> {
        self.listen.as_deref().and_then(|l| l.parse().ok())
    }
}

/// `[quorum]`: a witness (`hbd --witness`) as the third vote of a two-node
/// cluster (corosync-qnetd's, DRBD's diskless tiebreaker's job).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QuorumSection {
    /// The witness's node name; not an ha.cf `node`.
    pub witness: Option<String>,
    /// votequorum's wait_for_all (default true with a witness).
    pub wait_for_all: Option<bool>,
}

/// `[tiebreaker]`: the ping tiebreaker (heartbeat's ipfail, built in).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TiebreakerSection {
    /// Default: on when ha.cf has `ping` or `ping_group` nodes.
    pub ping: Option<bool>,
    /// How long the count of reached ping nodes must stay unchanged before
    /// it counts (default: deadtime).
    pub settle: Option<String>,
}

/// `[groups]`: resource group settings.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GroupsSection {
    /// Pacemaker's failure-timeout: a group that failed to start here may be
    /// tried here again this long after (default 60s; `0`: only after
    /// `hbctl clear`).
    pub failure_timeout: Option<String>,
}

/// `[fencing]`: what the fence agents of ha.cf's `stonith_host` lines do.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FencingSection {
    /// `reboot` (default) or `off`.
    pub action: Option<FenceAction>,
    /// A fence agent still running after this long failed (default 60s).
    pub timeout: Option<String>,
}

/// `[fencing] action`: the fence-agents `action=` word.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FenceAction {
    #[default]
    Reboot,
    Off,
}

impl FenceAction {
    /// The word fence agents read (`action=reboot`).
    pub fn as_str(self) -> &'static str {
        match self {
            FenceAction::Reboot => "reboot",
            FenceAction::Off => "off",
        }
    }
}

/// `[vrrp]`: the keepalived-compatible VRRP mode.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VrrpSection {
    /// keepalived.conf to read instead of `CONFIG_DIR/keepalived.conf`
    /// (e.g. `/etc/keepalived/keepalived.conf`).
    pub keepalived_conf: Option<PathBuf>,
    /// `[vrrp.gate.INSTANCE]`: the failback gate of a `vrrp_instance`.
    #[serde(default)]
    pub gate: BTreeMap<String, GateToml>,
    /// VRRPv3's IPv4 checksum: `pseudo-header` (default, keepalived 2.2.x)
    /// or `rfc9568` (the VRRP message only, for routers that use it).
    pub v3_checksum: Option<V3ChecksumToml>,
}

/// `[vrrp] v3_checksum`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum V3ChecksumToml {
    #[default]
    PseudoHeader,
    Rfc9568,
}

/// One `[vrrp.gate.INSTANCE]` table as written.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GateToml {
    /// Run without a shell (keepalived's quoting); exit 0 opens the gate.
    pub command: Option<String>,
    /// Default 2s.
    pub interval: Option<String>,
    /// Default 5s; a command still running then is killed (gate closed).
    pub timeout: Option<String>,
}

/// A `[vrrp.gate.INSTANCE]` resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GateResolved {
    pub instance: String,
    pub argv: Vec<String>,
    pub interval: Duration,
    pub timeout: Duration,
}

pub const DEFAULT_GATE_INTERVAL: Duration = Duration::from_secs(2);
pub const DEFAULT_GATE_TIMEOUT: Duration = Duration::from_secs(5);

impl GateToml {
    /// The gate of `instance`, or the key and message of its first problem.
    pub fn resolve(&self, instance: &str) -> Result<GateResolved, (&'static str, String)> {
        let command = self.command.as_deref().ok_or((
            "command",
            "missing: the check that opens the gate".to_string(),
        ))?;
        let argv =
            crate::vrrp::conf::split_command(command).map_err(|e| ("command", e.to_string()))?;
        let dur = |key: &'static str, v: &Option<String>, default| match v {
            None => Ok(default),
            Some(t) => match parse_duration(t) {
                Ok(d) if d.is_zero() => Err((key, "must be more than 0".to_string())),
                Ok(d) => Ok(d),
                Err(e) => Err((key, e.to_string())),
            },
        };
        Ok(GateResolved {
            instance: instance.to_string(),
            argv,
            interval: dur("interval", &self.interval, DEFAULT_GATE_INTERVAL)?,
            timeout: dur("timeout", &self.timeout, DEFAULT_GATE_TIMEOUT)?,
        })
    }
}

/// The replicated disk's configuration.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DiskSection {
    /// drbd.conf to read instead of `CONFIG_DIR/drbd.conf` (e.g. `/etc/drbd.conf`).
    pub drbd_conf: Option<PathBuf>,
    /// Which replicated device the `drbddisk` agent drives (default `auto`).
    pub driver: Option<DiskDriver>,
    /// Bring hbd's own devices up when hbd starts, as the drbd init script
    /// does at boot (default true).
    pub up_at_start: Option<bool>,
}

/// `[disk] driver`: hbd's own device, or the DRBD kernel module through
/// drbdadm.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DiskDriver {
    /// `kernel` when `/proc/drbd` exists (the module is loaded), else `embedded`.
    #[default]
    Auto,
    /// hbd's device processes (`hbd-disk`, `hbctl disk`).
    Embedded,
    /// The DRBD kernel module: `drbdadm primary|secondary|role`.
    Kernel,
}

impl DiskDriver {
    /// Whether this means the kernel module here (`auto`: `/proc/drbd`
    /// exists).
    pub fn is_kernel(self) -> bool {
        match self {
            DiskDriver::Kernel => true,
            DiskDriver::Embedded => false,
            DiskDriver::Auto => Path::new("/proc/drbd").exists(),
        }
    }
}

/// One `[[check]]` table as written.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckToml {
    /// The group (its id, or any of its resources as written); optional
    /// when there is one group.
    pub group: Option<String>,
    pub name: Option<String>,
    /// tcp, http, process, exec or mysql.
    #[serde(rename = "type")]
    pub kind: Option<String>,
    pub host: Option<String>,
    pub port: Option<u16>,
    pub url: Option<String>,
    pub expect: Option<u16>,
    /// https: trust the CAs of this PEM file instead of the system's.
    pub ca_file: Option<PathBuf>,
    /// https: accept any certificate.
    pub insecure_skip_verify: Option<bool>,
    pub pidfile: Option<PathBuf>,
    pub process: Option<String>,
    pub command: Option<String>,
    pub user: Option<String>,
    pub password: Option<String>,
    pub socket: Option<PathBuf>,
    pub option_file: Option<PathBuf>,
    pub query: Option<String>,
    pub interval: Option<String>,
    pub timeout: Option<String>,
    pub fall: Option<u32>,
    pub rise: Option<u32>,
    /// move (default), restart or notify.
    pub action: Option<String>,
    /// For `action = "restart"`: the resource to restart (as written, or its agent name).
    pub resource: Option<String>,
    pub restarts: Option<u32>,
    pub restart_window: Option<String>,
}

/// One `[[job]]` table as written.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JobToml {
    pub name: Option<String>,
    pub group: Option<String>,
    pub schedule: Option<String>,
    pub command: Option<String>,
    pub user: Option<String>,
    pub timeout: Option<String>,
    /// catch-up (default) or skip.
    pub missed: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NotifySection {
    /// Run (`/bin/sh -c`) at every check and move event, the event in
    /// `HBD_*` environment variables.
    pub command: Option<String>,
    pub timeout: Option<String>,
}

/// Where resource agents are looked up.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentsSection {
    /// The project's `resources/` folder (default: `/usr/lib/hbd/resources`,
    /// or the source tree's for a cargo build).
    pub resources_dir: Option<PathBuf>,
    /// LSB init scripts (default `/etc/init.d`).
    pub init_dir: Option<PathBuf>,
    /// OCF_ROOT (default `/usr/lib/ocf`).
    pub ocf_root: Option<PathBuf>,
}

/// Per-resource settings as written; durations are strings (`30s`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResourceOptionsToml {
    pub start_timeout: Option<String>,
    pub stop_timeout: Option<String>,
    pub status_timeout: Option<String>,
    pub arp_count: Option<u32>,
    pub arp_interval: Option<String>,
    pub arp_probe: Option<String>,
    pub fsck: Option<String>,
    pub kill_grace: Option<String>,
}

impl ResourceOptionsToml {
    /// `base` with these settings applied; an error names the key.
    pub fn apply(&self, base: &Options) -> Result<Options, (&'static str, String)> {
        let mut o = base.clone();
        let dur = |key: &'static str, v: &Option<String>, min: Duration, into: &mut Duration| {
            if let Some(v) = v {
                let d = parse_duration(v).map_err(|e| (key, e.to_string()))?;
                if d < min {
                    return Err((
                        key,
                        format!("`{v}`: must be at least {}", format_duration(min)),
                    ));
                }
                *into = d;
            }
            Ok(())
        };
        let ms = Duration::from_millis(1);
        dur(
            "start_timeout",
            &self.start_timeout,
            ms,
            &mut o.start_timeout,
        )?;
        dur("stop_timeout", &self.stop_timeout, ms, &mut o.stop_timeout)?;
        dur(
            "status_timeout",
            &self.status_timeout,
            ms,
            &mut o.status_timeout,
        )?;
        dur(
            "arp_interval",
            &self.arp_interval,
            Duration::ZERO,
            &mut o.arp_interval,
        )?;
        match self.arp_probe.as_deref() {
            Some("rfc5227") => {
                o.arp_probe_rfc5227 = true;
                if o.arp_probe.is_zero() {
                    o.arp_probe = Options::default().arp_probe;
                }
            }
            Some(_) => {
                dur(
                    "arp_probe",
                    &self.arp_probe,
                    Duration::ZERO,
                    &mut o.arp_probe,
                )?;
                o.arp_probe_rfc5227 = false;
            }
            None => {}
        }
        dur(
            "kill_grace",
            &self.kill_grace,
            Duration::ZERO,
            &mut o.kill_grace,
        )?;
        if let Some(n) = self.arp_count {
            if n > 100 {
                return Err(("arp_count", format!("{n}: at most 100")));
            }
            o.arp_count = n;
        }
        if let Some(f) = &self.fsck {
            o.fsck = match f.as_str() {
                "auto" => Fsck::Auto,
                "force" => Fsck::Force,
                "never" => Fsck::Never,
                _ => return Err(("fsck", format!("`{f}`: expected auto, force or never"))),
            };
        }
        Ok(o)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterSection {
    /// Carried in every datagram; traffic of another cluster name is dropped.
    #[serde(default = "default_cluster_name")]
    pub name: String,
    /// Accept datagrams signed with an authkeys key weaker than the signing
    /// key's method (crc < md5 < sha1 < sha256); default: dropped. For a
    /// rollover to a stronger method, one node at a time.
    #[serde(default)]
    pub accept_weaker_keys: bool,
}

impl Default for ClusterSection {
    fn default() -> Self {
        ClusterSection {
            name: default_cluster_name(),
            accept_weaker_keys: false,
        }
    }
}

fn default_cluster_name() -> String {
    "hbd".to_string()
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ControlSection {
    /// Members of this group may use the control socket besides root
    /// (heartbeat's `haclient`).
    #[serde(default)]
    pub group: Option<String>,
}

use super::{format_duration, parse_duration, ConfigError};
use crate::agents::{Fsck, Options};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Longest cluster name, in bytes.
pub const MAX_CLUSTER_NAME: usize = 64;

/// Parses and validates the text of `cluster.toml` (`path` is only used in
/// messages). Returns the defaults where the text is wrong.
pub fn parse(path: &Path, text: &str) -> (ClusterToml, Vec<ConfigError>) {
    let err = |line: usize, key: String, message: String| ConfigError::Line {
        file: path.to_path_buf(),
        line,
        key,
        message,
    };
    let ct = match toml::from_str::<ClusterToml>(text) {
        Ok(ct) => ct,
        Err(e) => {
            let offset = e.span().map_or(0, |s| s.start);
            let line = line_of(text, offset);
            let message = e.message().lines().next().unwrap_or("").trim().to_string();
            let here = text.lines().nth(line - 1).unwrap_or("").trim();
            let key = match unknown_field(&message) {
                // `[foo]` is reported at its header.
                Some(_) if header(here).is_some() => header(here).unwrap_or_default(),
                Some(field) => qualify(&table_at(text, line), &field),
                None => match (header(here), assigned_key(here)) {
                    (Some(h), _) => h,
                    (None, Some(k)) => qualify(&table_at(text, line), &k),
                    (None, None) => {
                        let t = table_at(text, line);
                        if t.is_empty() {
                            "cluster.toml".to_string()
                        } else {
                            t
                        }
                    }
                },
            };
            return (ClusterToml::default(), vec![err(line, key, message)]);
        }
    };

    let mut errors = Vec::new();
    let name = &ct.cluster.name;
    let name_problem = if name.is_empty() {
        Some("must not be empty".to_string())
    } else if name.len() > MAX_CLUSTER_NAME {
        Some(format!("longer than {MAX_CLUSTER_NAME} bytes"))
    } else if name.chars().any(char::is_whitespace) {
        Some(format!("`{name}`: must not contain white space"))
    } else {
        None
    };
    if let Some(m) = name_problem {
        let line = find_key_line(text, "cluster", "name");
        errors.push(err(line, "cluster.name".into(), m));
    }
    if let Some(group) = &ct.control.group {
        let problem = match nix::unistd::Group::from_name(group) {
            Ok(Some(_)) => None,
            Ok(None) => Some(format!("group `{group}` does not exist")),
            Err(e) => Some(format!("cannot look up group `{group}`: {}", e.desc())),
        };
        if let Some(m) = problem {
            let line = find_key_line(text, "control", "group");
            errors.push(err(line, "control.group".into(), m));
        }
    }
    let defaults = Options::default();
    if let Err((key, m)) = ct.resource_defaults.apply(&defaults) {
        let line = find_key_line(text, "resource_defaults", key);
        errors.push(err(line, format!("resource_defaults.{key}"), m));
    }
    for (name, o) in &ct.resource {
        if let Err((key, m)) = o.apply(&defaults) {
            let line = find_table_key_line(text, name, key);
            errors.push(err(line, format!("resource.{name}.{key}"), m));
        }
    }
    // Durations of the split-brain sections and of the notify hook; "0" is
    // meaningful only for failure_timeout (never retry by itself).
    let durations: [(&str, &str, &Option<String>, bool); 4] = [
        ("tiebreaker", "settle", &ct.tiebreaker.settle, true),
        (
            "groups",
            "failure_timeout",
            &ct.groups.failure_timeout,
            true,
        ),
        ("fencing", "timeout", &ct.fencing.timeout, false),
        ("notify", "timeout", &ct.notify.timeout, false),
    ];
    for (table, key, value, zero_ok) in durations {
        let Some(v) = value else { continue };
        let problem = match parse_duration(v) {
            Err(m) => Some(m.to_string()),
            Ok(d) if d.is_zero() && !zero_ok => Some("must be more than 0".to_string()),
            Ok(_) => None,
        };
        if let Some(m) = problem {
            let line = find_key_line(text, table, key);
            errors.push(err(line, format!("{table}.{key}"), m));
        }
    }
    if let Some(w) = &ct.quorum.witness {
        let problem = if w.is_empty() {
            Some("must not be empty".to_string())
        } else if w.len() > super::MAX_NODE_NAME {
            Some(format!("longer than {} bytes", super::MAX_NODE_NAME))
        } else if w.chars().any(char::is_whitespace) {
            Some(format!("`{w}`: must not contain white space"))
        } else {
            None
        };
        if let Some(m) = problem {
            let line = find_key_line(text, "quorum", "witness");
            errors.push(err(line, "quorum.witness".into(), m));
        }
    }
    if let Some(l) = &ct.metrics.listen {
        if l.parse::<std::net::SocketAddr>().is_err() {
            let line = find_key_line(text, "metrics", "listen");
            errors.push(err(
                line,
                "metrics.listen".into(),
                format!("`{l}`: expected ADDRESS:PORT, e.g. 127.0.0.1:9810"),
            ));
        }
    }
    if let Some(g) = &ct.membership.cpg_group {
        let problem = if g.is_empty() {
            Some("must not be empty".to_string())
        } else if g.len() > MAX_CPG_GROUP {
            Some(format!(
                "longer than {MAX_CPG_GROUP} bytes (corosync's CPG group names are at most 128 \
                 bytes with their NUL)"
            ))
        } else if g.contains('\0') {
            Some("must not contain a NUL".to_string())
        } else {
            None
        };
        if let Some(m) = problem {
            let line = find_key_line(text, "membership", "cpg_group");
            errors.push(err(line, "membership.cpg_group".into(), m));
        }
    }
    if let Some(p) = &ct.membership.corosync_conf {
        if p.as_os_str().is_empty() {
            let line = find_key_line(text, "membership", "corosync_conf");
            errors.push(err(
                line,
                "membership.corosync_conf".into(),
                "must not be empty".into(),
            ));
        }
    }
    if let Some(v) = &ct.membership.stop_margin {
        if let Err(m) = parse_duration(v) {
            let line = find_key_line(text, "membership", "stop_margin");
            errors.push(err(line, "membership.stop_margin".into(), m.to_string()));
        }
    }
    for (name, g) in &ct.vrrp.gate {
        if let Err((key, m)) = g.resolve(name) {
            let line = vrrp_gate_line(text, name, key);
            errors.push(err(line, format!("vrrp.gate.{name}.{key}"), m));
        }
    }
    (ct, errors)
}

/// The line of `key` in the `n`-th (0-based) `[[array]]` table; the table's
/// header line when the key is absent; 1 if there is no such table.
pub fn array_table_key_line(text: &str, array: &str, n: usize, key: &str) -> usize {
    let mut seen = 0;
    let mut header_line = None;
    for (idx, l) in text.lines().enumerate() {
        let t = l.trim();
        if t.starts_with('[') {
            if header_line.is_some() {
                break;
            }
            if strip_comment(t).trim() == format!("[[{array}]]") {
                if seen == n {
                    header_line = Some(idx + 1);
                }
                seen += 1;
            }
            continue;
        }
        if header_line.is_some() && assigned_key(t).as_deref() == Some(key) {
            return idx + 1;
        }
    }
    header_line.unwrap_or(1)
}

/// The line of `key` in the first `[resource...]` table whose header names
/// `name`; 1 if not found.
fn find_table_key_line(text: &str, name: &str, key: &str) -> usize {
    let mut inside = false;
    for (idx, l) in text.lines().enumerate() {
        let l = l.trim();
        if let Some(h) = header(l) {
            inside = h.starts_with("resource") && h.contains(name);
            continue;
        }
        if inside && assigned_key(l).as_deref() == Some(key) {
            return idx + 1;
        }
    }
    1
}

/// The line of `key` in `[vrrp.gate.NAME]` (its header when the key is
/// absent); 1 if not found.
pub fn vrrp_gate_line(text: &str, name: &str, key: &str) -> usize {
    let mut inside = false;
    let mut header_line = None;
    for (idx, l) in text.lines().enumerate() {
        let l = l.trim();
        if let Some(h) = header(l) {
            let h: String = h.chars().filter(|c| !matches!(c, '"' | ' ')).collect();
            inside = h == format!("vrrp.gate.{name}");
            if inside && header_line.is_none() {
                header_line = Some(idx + 1);
            }
            continue;
        }
        if inside && assigned_key(l).as_deref() == Some(key) {
            return idx + 1;
        }
    }
    header_line.unwrap_or(1)
}

/// 1-based line of a byte offset.
fn line_of(text: &str, offset: usize) -> usize {
    let offset = offset.min(text.len());
    text.as_bytes()[..offset]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

/// `foo` from serde's "unknown field `foo`, expected ...".
fn unknown_field(message: &str) -> Option<String> {
    let rest = message.strip_prefix("unknown field `")?;
    Some(rest[..rest.find('`')?].to_string())
}

/// The table name of a `[table]` header line.
fn header(line: &str) -> Option<String> {
    let line = strip_comment(line).trim();
    let inner = line.strip_prefix('[')?.strip_suffix(']')?;
    Some(
        inner
            .trim_matches(|c| c == '[' || c == ']')
            .trim()
            .to_string(),
    )
}

/// The key of a `key = value` line.
fn assigned_key(line: &str) -> Option<String> {
    let (k, _) = line.split_once('=')?;
    let k = k.trim().trim_matches('"');
    (!k.is_empty() && !k.contains(char::is_whitespace)).then(|| k.to_string())
}

/// Drops a `#` comment (good enough for header lines).
fn strip_comment(line: &str) -> &str {
    match line.find('#') {
        Some(i) => &line[..i],
        None => line,
    }
}

/// The table whose body holds 1-based `line` ("" for the root table).
fn table_at(text: &str, line: usize) -> String {
    text.lines()
        .take(line)
        .filter_map(|l| header(l.trim()))
        .last()
        .unwrap_or_default()
}

fn qualify(table: &str, key: &str) -> String {
    if table.is_empty() {
        key.to_string()
    } else {
        format!("{table}.{key}")
    }
}

/// The line setting `table.key` (`key = ` under `[table]`, or a dotted
/// `table.key = ` at the root); 1 if not found.
pub fn find_key_line(text: &str, table: &str, key: &str) -> usize {
    let mut current = String::new();
    for (idx, l) in text.lines().enumerate() {
        let l = l.trim();
        if let Some(h) = header(l) {
            current = h;
            continue;
        }
        if let Some(k) = assigned_key(l) {
            if qualify(&current, &k) == qualify(table, key) {
                return idx + 1;
            }
        }
    }
    1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vrrp_v3_checksum() {
        let (c, e) = run("[vrrp]\nv3_checksum = \"rfc9568\"\n");
        assert!(e.is_empty(), "{e:?}");
        assert_eq!(c.vrrp.v3_checksum, Some(V3ChecksumToml::Rfc9568));
        let (c, _) = run("[vrrp]\nv3_checksum = \"pseudo-header\"\n");
        assert_eq!(c.vrrp.v3_checksum, Some(V3ChecksumToml::PseudoHeader));
        let (_, e) = run("[vrrp]\nv3_checksum = \"rfc5798\"\n");
        assert!(
            e[0].starts_with("cluster.toml:2: vrrp.v3_checksum: unknown variant"),
            "{e:?}"
        );
    }

    #[test]
    fn vrrp_section() {
        let text = "[vrrp]\nkeepalived_conf = \"/etc/keepalived/keepalived.conf\"\n\n[vrrp.gate.DB]\ncommand = \"sh -c 'mysql -E -e \\\"SHOW SLAVE STATUS\\\" | grep -q \\\"Seconds_Behind_Master: 0\\\"'\"\ninterval = \"1s\"\n";
        let (c, e) = run(text);
        assert!(e.is_empty(), "{e:?}");
        assert_eq!(
            c.vrrp.keepalived_conf.as_deref(),
            Some(Path::new("/etc/keepalived/keepalived.conf"))
        );
        let g = c.vrrp.gate["DB"].resolve("DB").unwrap();
        assert_eq!(
            g.argv,
            [
                "sh",
                "-c",
                "mysql -E -e \"SHOW SLAVE STATUS\" | grep -q \"Seconds_Behind_Master: 0\""
            ]
        );
        assert_eq!(g.interval, Duration::from_secs(1));
        assert_eq!(g.timeout, DEFAULT_GATE_TIMEOUT);

        let (_, e) = run("[vrrp.gate.DB]\ninterval = \"2s\"\n\n[vrrp.gate.MC]\ncommand = \"x\"\ntimeout = \"0s\"\n");
        assert_eq!(e.len(), 2, "{e:?}");
        assert!(
            e[0].starts_with("cluster.toml:1: vrrp.gate.DB.command: missing"),
            "{e:?}"
        );
        assert!(
            e[1].starts_with("cluster.toml:6: vrrp.gate.MC.timeout:"),
            "{e:?}"
        );
        let (_, e) = run("[vrrp]\nfoo = 1\n");
        assert_eq!(e.len(), 1, "{e:?}");
    }

    #[test]
    fn split_brain_sections() {
        let (c, e) = run("[quorum]\nwitness = \"w1\"\nwait_for_all = false\n\n[tiebreaker]\nping = true\nsettle = \"3s\"\n\n[groups]\nfailure_timeout = \"0\"\n\n[fencing]\naction = \"off\"\ntimeout = \"30s\"\n");
        assert!(e.is_empty(), "{e:?}");
        assert_eq!(c.quorum.witness.as_deref(), Some("w1"));
        assert_eq!(c.quorum.wait_for_all, Some(false));
        assert_eq!(c.tiebreaker.ping, Some(true));
        assert_eq!(c.tiebreaker.settle.as_deref(), Some("3s"));
        assert_eq!(c.groups.failure_timeout.as_deref(), Some("0"));
        assert_eq!(c.fencing.action, Some(FenceAction::Off));
        assert_eq!(FenceAction::Off.as_str(), "off");
        assert_eq!(
            run("[tiebreaker]\nsettle = \"soon\"\n").1[0],
            "cluster.toml:2: tiebreaker.settle: `soon`: not a time; expected seconds (`2`, `0.5`) \
             or a value with a unit (`500ms`, `200000us`, `2s`, `10m`, `1h`)"
        );
        assert_eq!(
            run("[fencing]\n\ntimeout = \"0s\"\n").1,
            vec!["cluster.toml:3: fencing.timeout: must be more than 0"]
        );
        assert!(run("[fencing]\naction = \"cycle\"\n").1[0]
            .starts_with("cluster.toml:2: fencing.action: unknown variant `cycle`"));
        assert_eq!(
            run("[quorum]\nwitness = \"w 1\"\n").1,
            vec!["cluster.toml:2: quorum.witness: `w 1`: must not contain white space"]
        );
        assert!(run("[quorum]\nvotes = 3\n").1[0]
            .starts_with("cluster.toml:2: quorum.votes: unknown field `votes`"));
        assert!(run("[groups]\nfailure_timeout = \"-1\"\n").1[0]
            .starts_with("cluster.toml:2: groups.failure_timeout: `-1`: negative time"));
    }

    fn run(text: &str) -> (ClusterToml, Vec<String>) {
        let (c, e) = parse(Path::new("cluster.toml"), text);
        (c, e.iter().map(ToString::to_string).collect())
    }

    #[test]
    fn defaults_and_values() {
        let (c, e) = run("");
        assert!(e.is_empty(), "{e:?}");
        assert_eq!(c, ClusterToml::default());
        assert_eq!(c.cluster.name, "hbd");
        assert_eq!(c.control.group, None);
        let (c, e) =
            run("# comment\n[cluster]\nname = \"prod-db\"\n\n[control]\ngroup = \"root\"\n");
        assert!(e.is_empty(), "{e:?}");
        assert_eq!(c.cluster.name, "prod-db");
        assert_eq!(c.control.group.as_deref(), Some("root"));
        let (c, e) = run("cluster.name = \"dotted\"\n");
        assert!(e.is_empty(), "{e:?}");
        assert_eq!(c.cluster.name, "dotted");
    }

    #[test]
    fn membership_section() {
        let (c, e) = run("");
        assert!(e.is_empty(), "{e:?}");
        assert_eq!(c.membership, MembershipSection::default());
        let (c, e) = run("[membership]\nbackend = \"corosync\"\ncorosync_conf = \"cs/corosync.conf\"\ncpg_group = \"prod-db\"\nstop_margin = \"3s\"\n");
        assert!(e.is_empty(), "{e:?}");
        assert_eq!(c.membership.backend, Some(MembershipBackend::Corosync));
        assert_eq!(MembershipBackend::Corosync.as_str(), "corosync");
        assert_eq!(
            c.membership.corosync_conf.as_deref(),
            Some(Path::new("cs/corosync.conf"))
        );
        assert_eq!(c.membership.cpg_group.as_deref(), Some("prod-db"));
        assert_eq!(c.membership.stop_margin.as_deref(), Some("3s"));
        assert_eq!(
            run("[membership]\nbackend = \"heartbeat\"\n")
                .0
                .membership
                .backend,
            Some(MembershipBackend::Heartbeat)
        );
        let e = run("[membership]\n\nbackend = \"pacemaker\"\n").1;
        assert_eq!(e.len(), 1, "{e:?}");
        assert!(
            e[0].starts_with(
                "cluster.toml:3: membership.backend: unknown variant `pacemaker`, expected `heartbeat` or `corosync`"
            ),
            "{e:?}"
        );
        assert_eq!(
            run("[membership]\nstop_margin = \"soon\"\n").1,
            vec!["cluster.toml:2: membership.stop_margin: `soon`: not a time; expected seconds (`2`, `0.5`) \
                  or a value with a unit (`500ms`, `200000us`, `2s`, `10m`, `1h`)"]
        );
        assert_eq!(
            run("[membership]\ncpg_group = \"\"\n").1,
            vec!["cluster.toml:2: membership.cpg_group: must not be empty"]
        );
        assert!(run(&format!(
            "[membership]\ncpg_group = \"{}\"\n",
            "g".repeat(127)
        ))
        .1
        .is_empty());
        assert!(run(&format!(
            "[membership]\ncpg_group = \"{}\"\n",
            "g".repeat(128)
        ))
        .1[0]
            .starts_with("cluster.toml:2: membership.cpg_group: longer than 127 bytes"));
        assert_eq!(
            run("[membership]\ncorosync_conf = \"\"\n").1,
            vec!["cluster.toml:2: membership.corosync_conf: must not be empty"]
        );
        assert!(run("[membership]\nring = 1\n").1[0]
            .starts_with("cluster.toml:2: membership.ring: unknown field `ring`"));
    }

    #[test]
    fn disk_driver() {
        let (c, e) = run("[disk]\ndriver = \"kernel\"\n");
        assert!(e.is_empty(), "{e:?}");
        assert_eq!(c.disk.driver, Some(DiskDriver::Kernel));
        assert!(DiskDriver::Kernel.is_kernel());
        assert!(!DiskDriver::Embedded.is_kernel());
        assert_eq!(
            run("[disk]\ndriver = \"auto\"\n").0.disk.driver,
            Some(DiskDriver::Auto)
        );
        assert_eq!(
            run("[disk]\ndriver = \"embedded\"\n").0.disk.driver,
            Some(DiskDriver::Embedded)
        );
        let e = run("[disk]\n\ndriver = \"drbd9\"\n").1;
        assert_eq!(e.len(), 1);
        assert!(
            e[0].starts_with("cluster.toml:3: disk.driver: unknown variant `drbd9`"),
            "{e:?}"
        );
    }

    /// `[notify] timeout` is checked as every other duration is: before,
    /// "soon" was taken silently as the default 30 s.
    #[test]
    fn notify_timeout_is_checked() {
        let e = run("[notify]\ncommand = \"true\"\ntimeout = \"soon\"\n").1;
        assert_eq!(e.len(), 1, "{e:?}");
        assert!(
            e[0].starts_with("cluster.toml:3: notify.timeout: "),
            "{e:?}"
        );
        let e = run("[notify]\ncommand = \"true\"\ntimeout = \"0\"\n").1;
        assert_eq!(
            e,
            vec!["cluster.toml:3: notify.timeout: must be more than 0"]
        );
        assert!(run("[notify]\ncommand = \"true\"\ntimeout = \"2s\"\n")
            .1
            .is_empty());
    }

    #[test]
    fn metrics_listen_is_an_address() {
        assert_eq!(run("").0.metrics.listen_addr(), None);
        let (c, e) = run("[metrics]\nlisten = \"127.0.0.1:9810\"\n");
        assert!(e.is_empty(), "{e:?}");
        assert_eq!(
            c.metrics.listen_addr(),
            Some("127.0.0.1:9810".parse().unwrap())
        );
        assert_eq!(
            run("[cluster]\nname = \"a\"\n[metrics]\nlisten = \"localhost\"\n").1,
            vec!["cluster.toml:4: metrics.listen: `localhost`: expected ADDRESS:PORT, e.g. 127.0.0.1:9810"]
        );
        assert_eq!(
            run("[metrics]\nport = 1\n").1,
            vec!["cluster.toml:2: metrics.port: unknown field `port`, expected `listen`"]
        );
    }

    #[test]
    fn toml_errors_have_line_and_key() {
        assert_eq!(
            run("[cluster]\nname = \"a\"\nfoo = 1\n").1,
            vec!["cluster.toml:3: cluster.foo: unknown field `foo`, expected `name` or `accept_weaker_keys`"]
        );
        assert_eq!(
            run("[cluster]\nname = \"a\"\n\n[frob]\nx = 1\n").1,
            vec!["cluster.toml:4: frob: unknown field `frob`, expected one of `cluster`, `control`, `agents`, `resource_defaults`, `resource`, `check`, `job`, `notify`, `disk`, `vrrp`, `quorum`, `tiebreaker`, `groups`, `fencing`, `metrics`, `membership`"]
        );
        assert_eq!(
            run("[cluster]\nname = 5\n").1,
            vec!["cluster.toml:2: cluster.name: invalid type: integer `5`, expected a string"]
        );
        let e = run("[cluster]\nname = \"a\"\n[control\n").1;
        assert_eq!(e.len(), 1);
        assert!(e[0].starts_with("cluster.toml:3: "), "{e:?}");
    }

    #[test]
    fn validation() {
        assert_eq!(
            run("\n[cluster]\nname = \"\"\n").1,
            vec!["cluster.toml:3: cluster.name: must not be empty"]
        );
        assert_eq!(
            run("[cluster]\nname = \"my cluster\"\n").1,
            vec!["cluster.toml:2: cluster.name: `my cluster`: must not contain white space"]
        );
        assert_eq!(
            run(&format!("[cluster]\nname = \"{}\"\n", "x".repeat(65))).1,
            vec!["cluster.toml:2: cluster.name: longer than 64 bytes"]
        );
        assert!(run(&format!("[cluster]\nname = \"{}\"\n", "x".repeat(64)))
            .1
            .is_empty());
        assert_eq!(
            run("[cluster]\nname = \"a\"\n[control]\n# who\ngroup = \"no_such_group_hbd\"\n").1,
            vec!["cluster.toml:5: control.group: group `no_such_group_hbd` does not exist"]
        );
        assert_eq!(
            run("[resource_defaults]\nstart_timeout = \"soon\"\n")
                .1
                .len(),
            1
        );
        assert_eq!(
            run("[resource.mysqld]\nstop_timeout = \"10s\"\n\n[resource.\"IPaddr2::192.0.2.5\"]\narp_count = 3\nfsck = \"maybe\"\n").1,
            vec!["cluster.toml:6: resource.IPaddr2::192.0.2.5.fsck: `maybe`: expected auto, force or never"]
        );
        let (c, e) = run("[resource.mysqld]\nstart_timeout = \"300s\"\n");
        assert!(e.is_empty(), "{e:?}");
        assert_eq!(
            c.resource["mysqld"]
                .apply(&Options::default())
                .unwrap()
                .start_timeout,
            Duration::from_secs(300)
        );
    }

    #[test]
    fn arp_probe_takes_a_duration_or_rfc5227() {
        use crate::agents::arp::ProbeTiming;
        let apply = |v: &str| {
            ResourceOptionsToml {
                arp_probe: Some(v.into()),
                ..Default::default()
            }
            .apply(&Options::default())
        };
        let d = Options::default();
        assert_eq!(
            d.probe_timing(),
            Some(ProbeTiming::lan(Duration::from_millis(30)))
        );
        let rfc = apply("rfc5227").unwrap();
        assert_eq!(rfc.probe_timing(), Some(ProbeTiming::RFC5227));
        let off = apply("0s").unwrap();
        assert_eq!(off.probe_timing(), None);
        // A resource may turn RFC 5227 timing on over a default of 0s.
        let back = ResourceOptionsToml {
            arp_probe: Some("rfc5227".into()),
            ..Default::default()
        }
        .apply(&off)
        .unwrap();
        assert_eq!(back.probe_timing(), Some(ProbeTiming::RFC5227));
        let lan = apply("200ms").unwrap();
        assert_eq!(
            lan.probe_timing(),
            Some(ProbeTiming::lan(Duration::from_millis(200)))
        );
        assert_eq!(apply("soon").unwrap_err().0, "arp_probe");
    }
}
