//! The configuration directory: heartbeat's `ha.cf`, `authkeys` and
//! `haresources`, plus hbd's optional `cluster.toml` for what heartbeat's files
//! cannot say.
//!
//! Everything is read exactly: an unknown directive, a bad value, a missing
//! file or this node missing from the node list is a [`ConfigError`] naming
//! `file:line` and the key. [`load`] collects every error it finds, so one run
//! of `hbctl check` shows them all.

mod authkeys;
mod check;
mod cluster_toml;
pub mod corosync;
mod device;
mod hacf;
mod haresources;
mod resource;
pub(crate) mod syntax;
pub(crate) mod text;
mod time;

pub use authkeys::{
    parse as parse_authkeys, receive_keys, strength as auth_strength, weaker_keys, MAX_KEY_ID,
    PLACEHOLDER_SECRET,
};
pub use check::{validate_agents, VALIDATE_TIMEOUT};
pub use cluster_toml::{
    parse as parse_cluster_toml, AgentsSection, CheckToml, ClusterSection, ClusterToml,
    ControlSection, FenceAction, GateResolved, GateToml, JobToml, NotifySection,
    ResourceOptionsToml, V3ChecksumToml, VrrpSection, DEFAULT_GATE_INTERVAL, DEFAULT_GATE_TIMEOUT,
    MAX_CLUSTER_NAME,
};
pub use cluster_toml::{MembershipBackend, MembershipSection, MAX_CPG_GROUP};
pub use device::{load_device, DeviceFiles};
pub use hacf::{
    parse as parse_ha_cf, syslog_facility_code, AutoFailback, BuiltinHelper, HaCf, Medium,
    MediumKind, PingGroup, Respawn, DEFAULT_DEADTIME, DEFAULT_HOPFUDGE, DEFAULT_KEEPALIVE,
    DEFAULT_UDPPORT, MAX_NODE_NAME, SYSLOG_FACILITIES,
};
pub use haresources::{parse as parse_haresources, Haresources, ResourceGroupLine};
pub use resource::{load_resource, ResourceError};
pub use time::{format_duration, parse_duration, DurationError};

use check::{
    corosync_agrees, report_fits, resolve_groups, resolve_monitoring, resolve_split_brain,
    unprotected_warning,
};
use std::path::{Path, PathBuf};

/// Where a value came from, for errors raised after parsing (an interface that
/// does not exist, a port in use...).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    pub file: PathBuf,
    pub line: usize,
}

impl std::fmt::Display for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.file.display(), self.line)
    }
}

/// One configuration problem.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// A line-level problem: unknown directive, bad value, failed cross-check.
    #[error("{}:{line}: {key}: {message}", file.display())]
    Line {
        file: PathBuf,
        line: usize,
        key: String,
        message: String,
    },
    /// A file-level problem: missing, unreadable, bad permissions.
    #[error("{}: {message}", file.display())]
    File { file: PathBuf, message: String },
}

/// All problems found in one load. Displays one per line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl std::fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

/// A warning: the configuration works, but probably not as the operator meant
/// (crc authentication, an inert directive...). Printed by `hbctl check` and logged at start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigWarning {
    pub file: PathBuf,
    pub line: usize,
    pub key: String,
    pub message: String,
}

impl std::fmt::Display for ConfigWarning {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}:{}: {}: {}",
            self.file.display(),
            self.line,
            self.key,
            self.message
        )
    }
}

/// The whole configuration of one node.
#[derive(Debug, Clone)]
pub struct Config {
    /// The configuration directory (`--config`).
    pub dir: PathBuf,
    /// This node's name (`--node` or `uname -n`); always one of `ha.nodes`.
    pub node: String,
    /// With the corosync backend, `ha.media` is empty (ha.cf's media lines
    /// are ignored, a warning each).
    pub ha: HaCf,
    /// No key with the corosync backend and no authkeys file.
    pub authkeys: crate::wire::AuthKeys,
    /// Empty when the file is absent.
    pub haresources: Haresources,
    /// Defaults when the file is absent.
    pub cluster: ClusterToml,
    /// The resource groups of `haresources`, their agents resolved.
    pub groups: Vec<GroupConfig>,
    /// `[[check]]`s, resolved to their groups.
    pub checks: Vec<CheckConfig>,
    /// `[[job]]`s, resolved to their groups.
    pub jobs: Vec<JobConfig>,
    /// `[notify] command`.
    pub notify: Option<NotifyConfig>,
    /// drbd.conf (`CONFIG_DIR/drbd.conf` or cluster.toml `[disk] drbd_conf`), when present.
    pub drbd: Option<crate::disk::conf::DrbdConf>,
    /// `CONFIG_DIR/keepalived.conf`, when present (VRRP mode).
    pub keepalived: Option<crate::vrrp::conf::KeepalivedConf>,
    /// cluster.toml `[quorum]`, resolved.
    pub quorum: QuorumSettings,
    /// cluster.toml `[tiebreaker]` (and ha.cf's `respawn ... ipfail`), resolved.
    pub tiebreaker: TiebreakerSettings,
    /// cluster.toml `[groups] failure_timeout`; `None`: only `hbctl clear`.
    pub failure_timeout: Option<std::time::Duration>,
    /// cluster.toml `[fencing]`, resolved (the fence agents are ha.cf's
    /// `stonith_host` lines).
    pub fencing: FencingSettings,
    /// ha.cf has `respawn ... dopd`: drbd.conf's `fence-peer` handler is the
    /// built-in peer outdater.
    pub builtin_outdater: bool,
    /// This process is the quorum witness (`hbd --witness`): `node` is
    /// `quorum.witness`, not an ha.cf node.
    pub is_witness: bool,
    /// No `ha.cf`, only `keepalived.conf`: VRRP mode alone, no membership;
    /// `ha` holds heartbeat's defaults and `authkeys` no key.
    pub vrrp_only: bool,
    /// cluster.toml `[membership]`, resolved.
    pub membership: MembershipSettings,
    /// corosync.conf, read when `membership.backend` is
    /// [`MembershipBackend::Corosync`] (and then always `Some`).
    pub corosync: Option<corosync::CorosyncConf>,
    pub warnings: Vec<ConfigWarning>,
}

/// cluster.toml `[membership]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MembershipSettings {
    pub backend: MembershipBackend,
    /// Absolute (a relative `corosync_conf` is joined to the configuration
    /// directory); default `/etc/corosync/corosync.conf`.
    pub corosync_conf: PathBuf,
    /// The CPG group name (default [`DEFAULT_CPG_GROUP`]).
    pub cpg_group: String,
    /// `None`: the runtime waits Corosync's effective token.
    pub stop_margin: Option<std::time::Duration>,
}

/// `[membership] cpg_group` default.
pub const DEFAULT_CPG_GROUP: &str = "hbd";

impl MembershipSettings {
    /// `[membership]` of `cluster`, for the configuration in `dir`.
    pub fn resolve(dir: &Path, cluster: &ClusterToml) -> MembershipSettings {
        let m = &cluster.membership;
        MembershipSettings {
            backend: m.backend.unwrap_or_default(),
            corosync_conf: m
                .corosync_conf
                .as_ref()
                .map_or_else(|| PathBuf::from(corosync::DEFAULT_PATH), |p| dir.join(p)),
            cpg_group: m
                .cpg_group
                .clone()
                .unwrap_or_else(|| DEFAULT_CPG_GROUP.to_string()),
            stop_margin: m
                .stop_margin
                .as_deref()
                .and_then(|t| parse_duration(t).ok()),
        }
    }
}

/// cluster.toml `[quorum]`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct QuorumSettings {
    /// The witness's node name; `None`: no quorum protection (heartbeat's
    /// behaviour).
    pub witness: Option<String>,
    /// votequorum's wait_for_all (only with a witness; default true).
    pub wait_for_all: bool,
}

/// The ping tiebreaker (heartbeat's ipfail).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TiebreakerSettings {
    /// On: groups follow the node that reaches more ping nodes.
    pub ping: bool,
    /// The count of reached ping nodes counts once unchanged this long.
    pub settle: std::time::Duration,
}

/// cluster.toml `[fencing]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FencingSettings {
    pub action: FenceAction,
    /// A fence agent still running after this long failed.
    pub timeout: std::time::Duration,
}

/// `[groups] failure_timeout` default (Pacemaker has none; 60 s lets a
/// transient failure heal without an operator).
pub const DEFAULT_FAILURE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);
/// `[fencing] timeout` default.
pub const DEFAULT_FENCE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);

impl Config {
    /// The members of the heartbeat membership: ha.cf's nodes, and the
    /// witness, which exchanges keepalives too.
    pub fn members(&self) -> Vec<String> {
        let mut v = self.ha.nodes.clone();
        if let Some(w) = &self.quorum.witness {
            v.push(w.clone());
        }
        v
    }

    /// What `hbctl check` says of this valid configuration of `dir`.
    pub fn summary(&self, dir: &Path) -> String {
        let c = self;
        if c.vrrp_only {
            let k = c.keepalived.as_ref();
            format!(
                "{}: valid for node {} (VRRP mode, keepalived.conf: {} instances: {})",
                dir.display(),
                c.node,
                k.map_or(0, |k| k.instances.len()),
                k.map(|k| k
                    .instances
                    .iter()
                    .map(|i| format!("{} (vrid {} on {})", i.name, i.vrid, i.interface))
                    .collect::<Vec<_>>()
                    .join(", "))
                    .unwrap_or_default(),
            )
        } else if c.is_witness {
            format!(
                "{}: valid for the quorum witness {} of nodes {} (media: {})",
                dir.display(),
                c.node,
                c.ha.nodes.join(", "),
                c.ha.media
                    .iter()
                    .map(|m| m.name())
                    .collect::<Vec<_>>()
                    .join(", "),
            )
        } else if let Some(cs) = &c.corosync {
            format!(
                "{}: valid for node {} ({} nodes: {}; membership: corosync ({}: nodeids {}; token {:?}, consensus {:?}); {} resource groups)",
                dir.display(),
                c.node,
                c.ha.nodes.len(),
                c.ha.nodes.join(", "),
                cs.path.display(),
                cs.nodes
                    .iter()
                    .map(|n| format!(
                        "{}={}",
                        n.name.as_deref().unwrap_or("?"),
                        n.nodeid.map_or("?".to_string(), |i| i.to_string())
                    ))
                    .collect::<Vec<_>>()
                    .join(", "),
                cs.effective_token(),
                cs.effective_consensus(),
                c.haresources.groups.len(),
            )
        } else {
            format!(
                "{}: valid for node {} ({} nodes: {}; media: {}; keepalive {:?}, deadtime {:?}; {} resource groups)",
                dir.display(),
                c.node,
                c.ha.nodes.len(),
                c.ha.nodes.join(", "),
                c.ha.media.iter().map(|m| m.name()).collect::<Vec<_>>().join(", "),
                c.ha.keepalive,
                c.ha.deadtime,
                c.haresources.groups.len(),
            )
        }
    }
}

/// One service check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckConfig {
    pub name: String,
    /// Index into [`Config::groups`].
    pub group: usize,
    pub kind: crate::monitor::checks::CheckKind,
    pub interval: std::time::Duration,
    pub timeout: std::time::Duration,
    pub fall: u32,
    pub rise: u32,
    pub action: crate::monitor::scheduler::Action,
    pub at: Location,
}

/// One scheduled job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobConfig {
    pub name: String,
    pub group: usize,
    pub schedule: crate::jobs::cron::Schedule,
    pub command: String,
    pub user: Option<String>,
    pub timeout: std::time::Duration,
    pub missed: crate::jobs::Missed,
    pub at: Location,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotifyConfig {
    pub command: String,
    pub timeout: std::time::Duration,
}

/// Check defaults (mon.cf users: `interval`, `alertafter` = fall).
pub const CHECK_INTERVAL: std::time::Duration = std::time::Duration::from_secs(10);
pub const CHECK_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);
pub const CHECK_FALL: u32 = 2;
pub const CHECK_RISE: u32 = 1;
/// Job and notify defaults.
pub const JOB_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(3600);
pub const NOTIFY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);
/// Most jobs (their marks share the group report's datagram).
pub const MAX_JOBS: usize = 16;

/// One resource group: a logical line of `haresources`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupConfig {
    /// The first resource as written: heartbeat names a group by it.
    pub id: String,
    /// The preferred node (the line's first word).
    pub home: String,
    /// Started in this order, stopped in reverse.
    pub resources: Vec<crate::agents::Resource>,
    pub at: Location,
}

/// Longest group id, in bytes (it travels in every group report).
pub const MAX_GROUP_ID: usize = 128;
/// Most resource groups in one cluster (their states share one datagram).
pub const MAX_GROUPS: usize = 8;

/// Where agents are looked up for a configuration in `dir`.
pub fn agent_lookup(dir: &Path, cluster: &ClusterToml) -> crate::agents::Lookup {
    let a = &cluster.agents;
    crate::agents::Lookup {
        resource_d: dir.join("resource.d"),
        resources_dirs: match &a.resources_dir {
            Some(d) => vec![d.clone()],
            None => crate::agents::default_resources_dirs(),
        },
        init_dir: a
            .init_dir
            .clone()
            .unwrap_or_else(|| PathBuf::from("/etc/init.d")),
        ocf_root: a
            .ocf_root
            .clone()
            .unwrap_or_else(|| PathBuf::from("/usr/lib/ocf")),
    }
}

/// The settings of one resource: the agent's defaults, then cluster.toml's
/// `[resource_defaults]`, `[resource.NAME]` and `[resource."SPEC"]`.
pub fn resource_options(cluster: &ClusterToml, spec: &str) -> crate::agents::Options {
    let (name, _) = crate::agents::split_spec(spec);
    let mut options = crate::agents::Options::for_agent(name);
    for o in [
        Some(&cluster.resource_defaults),
        cluster.resource.get(name),
        cluster.resource.get(spec),
    ]
    .into_iter()
    .flatten()
    {
        options = o.apply(&options).unwrap_or(options);
    }
    options
}

impl ConfigError {
    /// The file the problem is in.
    pub fn file(&self) -> &Path {
        match self {
            ConfigError::Line { file, .. } | ConfigError::File { file, .. } => file,
        }
    }

    /// The line, 0 for a file-level problem.
    pub fn line(&self) -> usize {
        match self {
            ConfigError::Line { line, .. } => *line,
            ConfigError::File { .. } => 0,
        }
    }
}

/// Everything one check of a configuration directory found: the
/// configuration when there is no error, every error, every warning. For
/// `hbctl check`, which prints warnings even when there are errors.
#[derive(Debug, Clone)]
pub struct Report {
    pub config: Option<Config>,
    /// Sorted by file, then line (file-level problems first).
    pub errors: Vec<ConfigError>,
    /// Sorted by file, then line.
    pub warnings: Vec<ConfigWarning>,
}

/// Reads and cross-checks `dir/ha.cf`, `dir/authkeys`, `dir/haresources`
/// (optional) and `dir/cluster.toml` (optional) for node `node`.
pub fn load(dir: &Path, node: &str) -> Result<Config, ConfigErrors> {
    let report = check(dir, node);
    match report.config {
        Some(c) => Ok(c),
        None => Err(ConfigErrors(report.errors)),
    }
}

/// Reads a file; `None` with no error when it is optional and absent.
/// Bytes that are not UTF-8 are read in comments and an error elsewhere
/// ([`text::decode`]).
fn read(path: &Path, required: &str, errors: &mut Vec<ConfigError>) -> Option<String> {
    read_as(path, required, text::Comments::Hash, errors)
}

/// [`read`] for a file whose comments start as `comments` says.
fn read_as(
    path: &Path,
    required: &str,
    comments: text::Comments,
    errors: &mut Vec<ConfigError>,
) -> Option<String> {
    match std::fs::read(path) {
        Ok(bytes) => {
            let (t, mut e) = text::decode(path, &bytes, comments);
            errors.append(&mut e);
            Some(t)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            if !required.is_empty() {
                errors.push(ConfigError::File {
                    file: path.to_path_buf(),
                    message: format!("missing: hbd needs it ({required})"),
                });
            }
            None
        }
        Err(e) => {
            errors.push(ConfigError::File {
                file: path.to_path_buf(),
                message: format!("cannot read: {e}"),
            });
            None
        }
    }
}

/// The mode of `path` when group or other may read or write it.
fn open_mode(path: &Path) -> Option<u32> {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(path).ok()?.permissions().mode() & 0o7777;
    (mode & 0o077 != 0).then_some(mode)
}

/// authkeys at `path` (`required`: see [`read`]). The permission check is
/// heartbeat's (it refuses a keyfile group or other can read); hbd refuses
/// any group/other bit.
fn read_authkeys(
    path: &Path,
    required: &str,
    errors: &mut Vec<ConfigError>,
    warnings: &mut Vec<ConfigWarning>,
) -> Option<crate::wire::AuthKeys> {
    let text = read(path, required, errors)?;
    if let Some(mode) = open_mode(path) {
        errors.push(ConfigError::File {
            file: path.to_path_buf(),
            message: format!("readable by group/other (mode {mode:04o}); chmod 600 it"),
        });
    }
    let (keys, mut e, mut w) = authkeys::parse(path, &text);
    errors.append(&mut e);
    warnings.append(&mut w);
    keys
}

/// Where drbd.conf is: cluster.toml's `[disk] drbd_conf`, else
/// `CONFIG_DIR/drbd.conf`.
fn drbd_conf_path(dir: &Path, cluster: &ClusterToml) -> PathBuf {
    cluster
        .disk
        .drbd_conf
        .clone()
        .unwrap_or_else(|| dir.join("drbd.conf"))
}

/// drbd.conf at `path` (`required`: see [`read`]): parsed, its
/// shared-secret kept private, and (but for the witness) every
/// two-host resource naming `node`.
fn read_drbd(
    drbd_path: &Path,
    required: &str,
    node: &str,
    is_witness: bool,
    errors: &mut Vec<ConfigError>,
    warnings: &mut Vec<ConfigWarning>,
) -> Option<crate::disk::conf::DrbdConf> {
    let text = read(drbd_path, required, errors)?;
    let (c, mut e, mut w) =
        crate::disk::conf::parse_files(drbd_path, &text, &mut crate::disk::conf::FsFiles);
    errors.append(&mut e);
    warnings.append(&mut w);
    // A shared-secret is a key, as authkeys' are: its file must not be
    // readable by group or other (issue 14, finding 3).
    // (The file that holds it: drbd.conf or one it includes.)
    if let Some(at) = c.resources.iter().find_map(|r| r.shared_secret_at.as_ref()) {
        if let Some(mode) = open_mode(&at.file) {
            errors.push(ConfigError::Line {
                file: at.file.clone(),
                line: at.line,
                key: "shared-secret".into(),
                message: format!(
                    "{} is readable by group/other (mode {mode:04o}) and holds the \
                     replication link's secret; chmod 600 it",
                    at.file.display()
                ),
            });
        }
    }
    for r in &c.resources {
        if !is_witness && r.hosts.len() == 2 && r.host(node).is_none() {
            errors.push(ConfigError::Line {
                file: r.at.file.clone(),
                line: r.at.line,
                key: format!("resource {}", r.name),
                message: format!(
                    "no `on {node}` section for this node (hosts: {})",
                    r.hosts
                        .iter()
                        .map(|h| h.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            });
        }
    }
    Some(c)
}

/// Like [`load`], but returns the warnings too, and every error and warning
/// even when the configuration is invalid.
pub fn check(dir: &Path, node: &str) -> Report {
    check_as(dir, node, false)
}

/// [`load`] for the quorum witness (`hbd --witness`): the same files, and
/// `node` must be cluster.toml's `[quorum] witness` instead of an ha.cf node.
pub fn load_witness(dir: &Path, node: &str) -> Result<Config, ConfigErrors> {
    let report = check_witness(dir, node);
    match report.config {
        Some(c) => Ok(c),
        None => Err(ConfigErrors(report.errors)),
    }
}

/// [`check`] for the quorum witness.
pub fn check_witness(dir: &Path, node: &str) -> Report {
    check_as(dir, node, true)
}

/// Whether ha.cf configures fence agents (`stonith_host` lines).
pub fn fencing_configured(ha: &HaCf) -> bool {
    !ha.stonith_hosts.is_empty()
}

fn check_as(dir: &Path, node: &str, is_witness: bool) -> Report {
    let mut errors = Vec::new();
    let mut warnings = Vec::new();

    // cluster.toml: optional.
    let toml_path = dir.join("cluster.toml");
    let toml_text = read(&toml_path, "", &mut errors);
    let cluster = toml_text
        .as_ref()
        .map(|text| {
            let (c, mut e) = cluster_toml::parse(&toml_path, text);
            errors.append(&mut e);
            // A check's password is a secret: its file must be private
            // (issue 14, finding 3).
            if c.check.iter().any(|k| k.password.is_some()) {
                if let Some(mode) = open_mode(&toml_path) {
                    errors.push(ConfigError::Line {
                        file: toml_path.clone(),
                        line: cluster_toml::find_key_line(text, "check", "password"),
                        key: "check.password".into(),
                        message: format!(
                            "cluster.toml is readable by group/other (mode {mode:04o}) and \
                             holds a check's password; chmod 600 it"
                        ),
                    });
                }
            }
            c
        })
        .unwrap_or_default();

    // [membership]: with Corosync, corosync.conf carries the membership and
    // the quorum; ha.cf's media and authkeys are not needed.
    let membership = MembershipSettings::resolve(dir, &cluster);
    let on_corosync = membership.backend == MembershipBackend::Corosync;
    let toml_line = |key: &str| {
        toml_text
            .as_deref()
            .map_or(1, |t| cluster_toml::find_key_line(t, "membership", key))
    };
    if on_corosync {
        if is_witness {
            errors.push(ConfigError::Line {
                file: toml_path.clone(),
                line: toml_line("backend"),
                key: "membership.backend".into(),
                message: "`hbd --witness` runs only with the heartbeat backend: with corosync, \
                          votequorum gives the quorum (`two_node: 1`, or corosync-qdevice with \
                          corosync-qnetd on a third machine as the third vote)"
                    .into(),
            });
        }
        if cluster.quorum.witness.is_some() {
            errors.push(ConfigError::Line {
                file: toml_path.clone(),
                line: toml_text
                    .as_deref()
                    .map_or(1, |t| cluster_toml::find_key_line(t, "quorum", "witness")),
                key: "quorum.witness".into(),
                message: format!(
                    "no witness with `[membership] backend = \"corosync\"` (line {}): \
                     votequorum and corosync-qdevice give the quorum; drop the witness and, \
                     for a third vote, add a quorum device (corosync-qnetd) to corosync.conf",
                    toml_line("backend")
                ),
            });
        }
    }

    // keepalived.conf: optional (CONFIG_DIR/keepalived.conf, or cluster.toml
    // `[vrrp] keepalived_conf`, then required); with it, ha.cf and authkeys
    // are too (VRRP mode alone).
    let (keepalived_path, keepalived_needed) = match &cluster.vrrp.keepalived_conf {
        Some(p) => (
            dir.join(p),
            "keepalived.conf named by cluster.toml's [vrrp] keepalived_conf",
        ),
        None => (dir.join("keepalived.conf"), ""),
    };
    let keepalived = read_as(
        &keepalived_path,
        keepalived_needed,
        text::Comments::HashOrBang,
        &mut errors,
    )
    .map(|text| {
        let (k, mut e, mut w) = crate::vrrp::conf::parse(&keepalived_path, &text);
        errors.append(&mut e);
        warnings.append(&mut w);
        warnings.append(&mut crate::vrrp::conf::lint_scripts(&k));
        errors.append(&mut crate::vrrp::conf::unsupported(&k));
        k
    });
    // [vrrp.gate.NAME]: NAME must be a vrrp_instance.
    for name in cluster.vrrp.gate.keys() {
        let known = keepalived
            .as_ref()
            .is_some_and(|k| k.instance(name).is_some());
        if !known {
            let line = toml_text
                .as_deref()
                .map_or(1, |t| cluster_toml::vrrp_gate_line(t, name, "command"));
            errors.push(ConfigError::Line {
                file: toml_path.clone(),
                line,
                key: format!("vrrp.gate.{name}"),
                message: match &keepalived {
                    Some(k) => format!(
                        "no vrrp_instance `{name}` in {} (instances: {})",
                        keepalived_path.display(),
                        k.instances
                            .iter()
                            .map(|i| i.name.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                    None => format!("no keepalived.conf: there is no vrrp_instance `{name}`"),
                },
            });
        }
    }
    let vrrp_only = keepalived.is_some() && !dir.join("ha.cf").exists();
    let needed = |what: &'static str| if vrrp_only { "" } else { what };

    // ha.cf
    let hacf_path = dir.join("ha.cf");
    let mut ha_node_lines = std::collections::HashMap::new();
    let ha = read(
        &hacf_path,
        needed("heartbeat's ha.cf: the nodes, the media and the timings"),
        &mut errors,
    )
    .map(|text| {
        let mut p = hacf::parse_full_as(&hacf_path, &text, !on_corosync);
        if on_corosync {
            // Corosync's links carry the membership: ha.cf's media are
            // ignored (and not opened), serial ones too.
            for m in &p.ha.media {
                warnings.push(ConfigWarning {
                    file: m.at.file.clone(),
                    line: m.at.line,
                    key: m.name().split(' ').next().unwrap_or_default().to_string(),
                    message: "ignored with `[membership] backend = \"corosync\"`: corosync's \
                              links (corosync.conf's ring addresses) carry the membership"
                        .into(),
                });
            }
            p.ha.media.clear();
            let (serial, rest): (Vec<_>, Vec<_>) = p.errors.into_iter().partition(
                |e| matches!(e, ConfigError::Line { key, .. } if key == "serial" || key == "baud"),
            );
            p.errors = rest;
            for e in serial {
                if let ConfigError::Line {
                    file, line, key, ..
                } = e
                {
                    warnings.push(ConfigWarning {
                        file,
                        line,
                        key,
                        message: "ignored with `[membership] backend = \"corosync\"`: \
                                  corosync's links carry the membership"
                            .into(),
                    });
                }
            }
        }
        ha_node_lines = p.node_lines;
        errors.append(&mut p.errors);
        warnings.append(&mut p.warnings);
        // A fence device's password in a readable ha.cf (issue 14, finding
        // 3): a warning, not an error, because heartbeat's ha.cf is
        // world-readable by convention and refusing it would stop a
        // cutover; the fix is one chmod.
        let secret =
            |k: &str| matches!(k, "password" | "passwd" | "community") || k.ends_with("_passwd");
        if let Some((_, at)) =
            p.ha.stonith_hosts
                .iter()
                .find(|(d, _)| d.options.iter().any(|(k, _)| secret(k)))
        {
            if let Some(mode) = open_mode(&hacf_path) {
                warnings.push(ConfigWarning {
                    file: at.file.clone(),
                    line: at.line,
                    key: "stonith_host".into(),
                    message: format!(
                        "ha.cf is readable by group/other (mode {mode:04o}) and holds a fence \
                         device's password: any local user can power nodes off; chmod 600 it"
                    ),
                });
            }
        }
        (p.ha, p.first_node_line)
    });

    // With Corosync, its own crypto (totem.crypto_*, its authkey) protects
    // the CPG: authkeys is optional, and checked when present.
    let authkeys = read_authkeys(
        &dir.join("authkeys"),
        if on_corosync {
            ""
        } else {
            needed("heartbeat's authkeys: the keys that sign and check every datagram")
        },
        &mut errors,
        &mut warnings,
    );
    if cluster.cluster.accept_weaker_keys {
        let weaker: Vec<String> = authkeys
            .as_ref()
            .map(|k| {
                authkeys::weaker_keys(k)
                    .iter()
                    .map(|k| format!("{} ({})", k.id, k.method.as_str()))
                    .collect()
            })
            .unwrap_or_default();
        warnings.push(ConfigWarning {
            file: toml_path.clone(),
            line: toml_text.as_deref().map_or(1, |t| {
                cluster_toml::find_key_line(t, "cluster", "accept_weaker_keys")
            }),
            key: "cluster.accept_weaker_keys".into(),
            message: if weaker.is_empty() {
                "no effect: no authkeys key is weaker than the signing key".into()
            } else {
                format!(
                    "datagrams signed with keys weaker than the signing key are accepted \
                     (key {}): keep this only for a rollover",
                    weaker.join(", key ")
                )
            },
        });
    }

    // This node must be listed (heartbeat: "Current node [x] not in
    // configuration!"); names compare ignoring case, as heartbeat lowercases them.
    let node = node.to_lowercase();
    if let Some((ha, Some(first_node_line))) = &ha {
        if !is_witness && !ha.nodes.contains(&node) {
            errors.push(ConfigError::Line {
                file: hacf_path.clone(),
                line: *first_node_line,
                key: "node".into(),
                message: format!(
                    "this node `{node}` is not in the node list ({}); hbd names this node by \
                     --node or `uname -n`",
                    ha.nodes.join(", ")
                ),
            });
        }
    }

    // haresources: optional.
    let hares_path = dir.join("haresources");
    let nodes: &[String] = ha.as_ref().map_or(&[], |(h, _)| &h.nodes);
    let haresources = read(&hares_path, "", &mut errors)
        .map(|text| {
            let (h, mut e) = haresources::parse(&hares_path, &text, nodes);
            errors.append(&mut e);
            h
        })
        .unwrap_or_default();

    // The witness runs no resource: their agents (init scripts, OCF agents)
    // need not be installed on its machine, and the nodes check them.
    let groups = if is_witness {
        resolve_groups(dir, &haresources, &cluster, &mut Vec::new())
    } else {
        resolve_groups(dir, &haresources, &cluster, &mut errors)
    };
    let (checks, jobs, notify) = resolve_monitoring(
        &groups,
        &cluster,
        toml_text.as_deref().map(|t| (toml_path.as_path(), t)),
        &mut errors,
        &mut warnings,
    );
    // drbd.conf: optional; every resource must name this node.
    let drbd_path = drbd_conf_path(dir, &cluster);
    let drbd = read_drbd(
        &drbd_path,
        "",
        &node,
        is_witness,
        &mut errors,
        &mut warnings,
    );
    let corosync = if on_corosync {
        let path = &membership.corosync_conf;
        match std::fs::read(path) {
            Ok(bytes) => {
                let (c, mut e, mut w) = corosync::parse_full(path, &bytes);
                errors.append(&mut e);
                warnings.append(&mut w);
                c
            }
            Err(e) => {
                let key = if cluster.membership.corosync_conf.is_some() {
                    "corosync_conf"
                } else {
                    "backend"
                };
                errors.push(ConfigError::Line {
                    file: toml_path.clone(),
                    line: toml_line(key),
                    key: format!("membership.{key}"),
                    message: format!(
                        "{}: {}: the corosync backend reads the nodelist and the quorum \
                         settings from it",
                        path.display(),
                        if e.kind() == std::io::ErrorKind::NotFound {
                            "missing".to_string()
                        } else {
                            format!("cannot read: {e}")
                        }
                    ),
                });
                None
            }
        }
    } else {
        None
    };
    if let (Some(cs), Some((ha, first_node_line))) = (&corosync, &ha) {
        corosync_agrees(
            cs,
            ha,
            &hacf_path,
            &ha_node_lines,
            *first_node_line,
            drbd.as_ref(),
            (!is_witness).then_some(node.as_str()),
            &mut errors,
            &mut warnings,
        );
    }
    let split_brain = resolve_split_brain(
        &cluster,
        ha.as_ref().map(|(h, _)| h),
        toml_text.as_deref().map(|t| (toml_path.as_path(), t)),
        &node,
        is_witness,
        &mut errors,
        &mut warnings,
    );
    if let Some((ha, _)) = &ha {
        warnings.extend(unprotected_warning(
            ha,
            &groups,
            drbd.as_ref(),
            &split_brain,
            fencing_configured(ha),
            corosync.as_ref(),
        ));
    }
    if let (Some((ha, _)), Some(keys), Some(last)) = (&ha, &authkeys, groups.last()) {
        if let Some(e) = report_fits(&groups, &jobs, ha, keys, &cluster, last) {
            errors.push(e);
        }
    }

    errors.sort_by(|a, b| (a.file(), a.line()).cmp(&(b.file(), b.line())));
    warnings.sort_by(|a, b| (&a.file, a.line).cmp(&(&b.file, b.line)));

    let (ha, authkeys) = match (ha, authkeys) {
        (None, _) if vrrp_only => (
            Some((hacf::parse_full(&hacf_path, "").ha, None)),
            Some(crate::wire::AuthKeys {
                active: 0,
                keys: Vec::new(),
            }),
        ),
        (ha, None) if on_corosync => (
            ha,
            Some(crate::wire::AuthKeys {
                active: 0,
                keys: Vec::new(),
            }),
        ),
        other => other,
    };
    let config = match (errors.is_empty(), ha, authkeys) {
        (true, Some((ha, _)), Some(authkeys)) => Some(Config {
            dir: dir.to_path_buf(),
            node,
            ha,
            authkeys,
            haresources,
            cluster,
            groups,
            checks,
            jobs,
            notify,
            drbd,
            keepalived,
            vrrp_only,
            quorum: split_brain.quorum,
            tiebreaker: split_brain.tiebreaker,
            failure_timeout: split_brain.failure_timeout,
            fencing: split_brain.fencing,
            builtin_outdater: split_brain.builtin_outdater,
            is_witness,
            membership,
            corosync,
            warnings: warnings.clone(),
        }),
        _ => None,
    };
    Report {
        config,
        errors,
        warnings,
    }
}

#[cfg(test)]
mod tests;
