//! The configuration directory: heartbeat's `ha.cf`, `authkeys` and
//! `haresources`, plus hbd's optional `cluster.toml` for what heartbeat's files
//! cannot say.
//!
//! Everything is read exactly: an unknown directive, a bad value, a missing
//! file or this node missing from the node list is a [`ConfigError`] naming
//! `file:line` and the key. [`load`] collects every error it finds, so one run
//! of `hbctl check` shows them all.

mod authkeys;
mod cluster_toml;
mod hacf;
mod haresources;
mod time;

pub use authkeys::{parse as parse_authkeys, MAX_KEY_ID, PLACEHOLDER_SECRET};
pub use cluster_toml::{
    parse as parse_cluster_toml, AgentsSection, ClusterSection, ClusterToml, ControlSection,
    ResourceOptionsToml, MAX_CLUSTER_NAME,
};
pub use hacf::{
    parse as parse_ha_cf, syslog_facility_code, AutoFailback, HaCf, Medium, MediumKind, PingGroup,
    Respawn, DEFAULT_DEADTIME, DEFAULT_HOPFUDGE, DEFAULT_KEEPALIVE, DEFAULT_UDPPORT, MAX_NODE_NAME,
    SYSLOG_FACILITIES,
};
pub use haresources::{parse as parse_haresources, Haresources, ResourceGroupLine};
pub use time::{format_duration, parse_duration};

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
    pub ha: HaCf,
    pub authkeys: crate::wire::AuthKeys,
    /// Empty when the file is absent.
    pub haresources: Haresources,
    /// Defaults when the file is absent.
    pub cluster: ClusterToml,
    /// The resource groups of `haresources`, their agents resolved.
    pub groups: Vec<GroupConfig>,
    pub warnings: Vec<ConfigWarning>,
}

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

/// Every node reports every group's state in one datagram: a configuration
/// whose worst-case report would not fit is refused.
fn report_fits(
    groups: &[GroupConfig],
    ha: &HaCf,
    keys: &crate::wire::AuthKeys,
    cluster: &ClusterToml,
    last: &GroupConfig,
) -> Option<ConfigError> {
    use crate::wire::{Body, Grant, GroupEntry, GroupReport, GroupState, Message, Pref};
    let longest = ha
        .nodes
        .iter()
        .max_by_key(|n| n.len())
        .cloned()
        .unwrap_or_default();
    let msg = Message {
        cluster: cluster.cluster.name.clone(),
        from: longest.clone(),
        incarnation: u64::MAX,
        seq: u64::MAX,
        body: Body::Groups(GroupReport {
            ready: true,
            leaving: true,
            groups: groups
                .iter()
                .map(|g| GroupEntry {
                    id: g.id.clone(),
                    state: GroupState::StopFailed,
                    claim: u32::MAX,
                    grant: Some(Grant {
                        node: longest.clone(),
                        incarnation: u64::MAX,
                        claim: u32::MAX,
                    }),
                    pref: Pref::Want(u32::MAX),
                    unhealthy: true,
                })
                .collect(),
            marks: Vec::new(),
        }),
    };
    match crate::wire::encode(&msg, keys) {
        Err(crate::wire::WireError::Oversize { len, max }) => Some(ConfigError::Line {
            file: last.at.file.clone(),
            line: last.at.line,
            key: last.id.clone(),
            message: format!(
                "the groups' state report would take {len} bytes, more than one datagram \
                 ({max}): use fewer groups or shorter first resources (they name the groups)"
            ),
        }),
        _ => None,
    }
}

/// Resolves every resource of `haresources`: unknown agents and bad arguments
/// are errors at the line of their group.
fn resolve_groups(
    dir: &Path,
    h: &Haresources,
    cluster: &ClusterToml,
    errors: &mut Vec<ConfigError>,
) -> Vec<GroupConfig> {
    let lookup = agent_lookup(dir, cluster);
    let mut groups: Vec<GroupConfig> = Vec::new();
    for line in &h.groups {
        let err = |key: &str, message: String| ConfigError::Line {
            file: line.at.file.clone(),
            line: line.at.line,
            key: key.to_string(),
            message,
        };
        let id = line.resources[0].clone();
        if id.len() > MAX_GROUP_ID {
            errors.push(err(&id, format!("longer than {MAX_GROUP_ID} bytes")));
        }
        if let Some(other) = groups.iter().find(|g| g.id == id) {
            errors.push(err(
                &id,
                format!("a group of this name is already defined at {}", other.at),
            ));
        }
        let mut resources = Vec::new();
        for spec in &line.resources {
            if let Some(g) = groups
                .iter()
                .find(|g| g.resources.iter().any(|r| r.spec == *spec))
            {
                errors.push(err(
                    spec,
                    format!(
                        "already in group {} ({}): a resource belongs to one group",
                        g.id, g.at
                    ),
                ));
            }
            let options = resource_options(cluster, spec);
            match crate::agents::resolve(spec, &lookup) {
                Ok(kind) => resources.push(crate::agents::Resource {
                    spec: spec.clone(),
                    kind,
                    options,
                }),
                Err(m) => errors.push(err(spec, m)),
            }
        }
        groups.push(GroupConfig {
            id,
            home: line.node.clone(),
            resources,
            at: line.at.clone(),
        });
    }
    if groups.len() > MAX_GROUPS {
        let g = &groups[MAX_GROUPS];
        errors.push(ConfigError::Line {
            file: g.at.file.clone(),
            line: g.at.line,
            key: g.id.clone(),
            message: format!(
                "more than {MAX_GROUPS} resource groups: put resources of one service on one line"
            ),
        });
    }
    groups
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
fn read(path: &Path, required: &str, errors: &mut Vec<ConfigError>) -> Option<String> {
    match std::fs::read_to_string(path) {
        Ok(t) => Some(t),
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

/// Like [`load`], but returns the warnings too, and every error and warning
/// even when the configuration is invalid.
pub fn check(dir: &Path, node: &str) -> Report {
    let mut errors = Vec::new();
    let mut warnings = Vec::new();

    // ha.cf
    let hacf_path = dir.join("ha.cf");
    let ha = read(
        &hacf_path,
        "heartbeat's ha.cf: the nodes, the media and the timings",
        &mut errors,
    )
    .map(|text| {
        let mut p = hacf::parse_full(&hacf_path, &text);
        errors.append(&mut p.errors);
        warnings.append(&mut p.warnings);
        (p.ha, p.first_node_line)
    });

    // authkeys: the permission check is heartbeat's (it refuses a keyfile
    // group or other can read); hbd refuses any group/other bit.
    let auth_path = dir.join("authkeys");
    let authkeys = read(
        &auth_path,
        "heartbeat's authkeys: the keys that sign and check every datagram",
        &mut errors,
    )
    .and_then(|text| {
        use std::os::unix::fs::PermissionsExt;
        if let Ok(meta) = std::fs::metadata(&auth_path) {
            let mode = meta.permissions().mode() & 0o7777;
            if mode & 0o077 != 0 {
                errors.push(ConfigError::File {
                    file: auth_path.clone(),
                    message: format!("readable by group/other (mode {mode:04o}); chmod 600 it"),
                });
            }
        }
        let (keys, mut e, mut w) = authkeys::parse(&auth_path, &text);
        errors.append(&mut e);
        warnings.append(&mut w);
        keys
    });

    // This node must be listed (heartbeat: "Current node [x] not in
    // configuration!"); names compare ignoring case, as heartbeat lowercases them.
    let node = node.to_lowercase();
    if let Some((ha, Some(first_node_line))) = &ha {
        if !ha.nodes.contains(&node) {
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

    // cluster.toml: optional.
    let toml_path = dir.join("cluster.toml");
    let cluster = read(&toml_path, "", &mut errors)
        .map(|text| {
            let (c, mut e) = cluster_toml::parse(&toml_path, &text);
            errors.append(&mut e);
            c
        })
        .unwrap_or_default();

    let groups = resolve_groups(dir, &haresources, &cluster, &mut errors);
    if let (Some((ha, _)), Some(keys), Some(last)) = (&ha, &authkeys, groups.last()) {
        if let Some(e) = report_fits(&groups, ha, keys, &cluster, last) {
            errors.push(e);
        }
    }

    errors.sort_by(|a, b| (a.file(), a.line()).cmp(&(b.file(), b.line())));
    warnings.sort_by(|a, b| (&a.file, a.line).cmp(&(&b.file, b.line)));

    let config = match (errors.is_empty(), ha, authkeys) {
        (true, Some((ha, _)), Some(authkeys)) => Some(Config {
            dir: dir.to_path_buf(),
            node,
            ha,
            authkeys,
            haresources,
            cluster,
            groups,
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
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    use super::hacf::tests::SEED_002 as SEED_002_HA_CF;
    const SECRET: &str = "0123456789abcdef0123456789abcdef";

    fn write(dir: &Path, name: &str, text: &str, mode: u32) {
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
    }

    /// A valid seed-002 directory.
    fn seed_dir() -> tempfile::TempDir {
        let d = tempfile::tempdir().unwrap();
        write(d.path(), "ha.cf", SEED_002_HA_CF, 0o644);
        write(
            d.path(),
            "authkeys",
            &format!("auth 1\n1 sha256 {SECRET}\n"),
            0o600,
        );
        write(d.path(), "haresources", SEED_002_HARESOURCES, 0o644);
        // The seed machine's own scripts (drbd-utils' drbddisk, its init
        // scripts, mon) as heartbeat-style agents.
        std::fs::create_dir(d.path().join("resource.d")).unwrap();
        for name in SEED_002_SCRIPTS {
            write(
                &d.path().join("resource.d"),
                name,
                "#!/bin/sh\nexit 0\n",
                0o755,
            );
        }
        d
    }

    const SEED_002_HARESOURCES: &str = "l0 IPaddr2::192.168.1.100/24/eth1:0 drbddisk::r0 Filesystem::/dev/drbd0::/mnt/drbd::ext3 mysqld-max linkserv mon\n";
    const SEED_002_SCRIPTS: [&str; 4] = ["drbddisk", "mysqld-max", "linkserv", "mon"];

    /// Without the seed machine's scripts, each missing agent is an error at
    /// the group's line; the built-in ones resolve.
    #[test]
    fn seed_002_unknown_agents() {
        let d = seed_dir();
        std::fs::remove_dir_all(d.path().join("resource.d")).unwrap();
        let e = errors(d.path(), "l0");
        assert_eq!(e.len(), 4, "{e:?}");
        for (e, name) in e.iter().zip(SEED_002_SCRIPTS) {
            assert!(
                e.starts_with(&format!(
                    "haresources:1: {}",
                    if name == "drbddisk" {
                        "drbddisk::r0"
                    } else {
                        name
                    }
                )) && e.contains(&format!("unknown resource agent {name}")),
                "{e}"
            );
        }
    }

    fn errors(dir: &Path, node: &str) -> Vec<String> {
        load(dir, node)
            .unwrap_err()
            .0
            .iter()
            .map(|e| e.to_string().replace(&format!("{}/", dir.display()), ""))
            .collect()
    }

    #[test]
    fn group_reports_must_fit_in_a_datagram() {
        let d = seed_dir();
        // A long node name travels in every grant.
        let long = "n".repeat(60);
        let ha = SEED_002_HA_CF.replace("node        l1", &format!("node {long}"));
        assert_ne!(ha, SEED_002_HA_CF);
        write(d.path(), "ha.cf", &ha, 0o644);
        let lines: String = (0..8)
            .map(|i| {
                format!(
                    "l0 Filesystem::/dev/{}{i}::/mnt/x{i}::ext4\n",
                    "d".repeat(90)
                )
            })
            .collect();
        write(d.path(), "haresources", &lines, 0o644);
        let e = errors(d.path(), "l0");
        assert_eq!(e.len(), 1, "{e:?}");
        assert!(
            e[0].starts_with("haresources:8: ") && e[0].contains("more than one datagram"),
            "{e:?}"
        );
        let lines: String = (0..8)
            .map(|i| format!("l0 IPaddr2::192.0.2.{}/24/eth1:{i}\n", 50 + i))
            .collect();
        write(d.path(), "haresources", &lines, 0o644);
        assert_eq!(load(d.path(), "l0").unwrap().groups.len(), 8);
    }

    #[test]
    fn loads_seed_002() {
        let d = seed_dir();
        let c = load(d.path(), "l0").unwrap();
        assert_eq!(c.dir, d.path());
        assert_eq!(c.node, "l0");
        assert_eq!(c.ha.nodes, vec!["l0", "l1"]);
        assert_eq!(c.authkeys.active, 1);
        assert_eq!(c.authkeys.keys[0].secret, SECRET.as_bytes());
        assert_eq!(c.haresources.groups.len(), 1);
        assert_eq!(c.haresources.groups[0].resources.len(), 6);
        assert_eq!(c.groups.len(), 1);
        assert_eq!(c.groups[0].id, "IPaddr2::192.168.1.100/24/eth1:0");
        assert_eq!(c.groups[0].home, "l0");
        assert!(matches!(
            c.groups[0].resources[2].kind,
            crate::agents::AgentKind::Filesystem(_)
        ));
        assert!(matches!(
            c.groups[0].resources[1].kind,
            crate::agents::AgentKind::Heartbeat { .. }
        ));
        assert_eq!(c.cluster, ClusterToml::default());
        assert_eq!(c.warnings.len(), 1, "{:?}", c.warnings);
        assert_eq!(c.warnings[0].key, "hopfudge");
        // Node names compare ignoring case, as in heartbeat.
        assert_eq!(load(d.path(), "L1").unwrap().node, "l1");
    }

    #[test]
    fn optional_files() {
        let d = seed_dir();
        std::fs::remove_file(d.path().join("haresources")).unwrap();
        let c = load(d.path(), "l1").unwrap();
        assert!(c.haresources.groups.is_empty());
        write(
            d.path(),
            "cluster.toml",
            "[cluster]\nname = \"db\"\n",
            0o644,
        );
        assert_eq!(load(d.path(), "l1").unwrap().cluster.cluster.name, "db");
    }

    #[test]
    fn refuses_readable_authkeys() {
        let d = seed_dir();
        std::fs::set_permissions(
            d.path().join("authkeys"),
            std::fs::Permissions::from_mode(0o644),
        )
        .unwrap();
        assert_eq!(
            errors(d.path(), "l0"),
            vec!["authkeys: readable by group/other (mode 0644); chmod 600 it"]
        );
        std::fs::set_permissions(
            d.path().join("authkeys"),
            std::fs::Permissions::from_mode(0o400),
        )
        .unwrap();
        assert!(load(d.path(), "l0").is_ok());
    }

    /// The example configuration in etc/ha.d loads, once its placeholder
    /// secret is replaced and authkeys is chmod 600 (git keeps no modes).
    #[test]
    fn example_configuration_loads() {
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("etc/ha.d");
        let d = tempfile::tempdir().unwrap();
        for name in ["ha.cf", "haresources", "cluster.toml"] {
            let text = std::fs::read_to_string(src.join(name)).unwrap();
            write(d.path(), name, &text, 0o644);
        }
        let keys = std::fs::read_to_string(src.join("authkeys")).unwrap();
        write(d.path(), "authkeys", &keys, 0o600);
        assert_eq!(
            errors(d.path(), "n1"),
            vec!["authkeys:13: key 1: the example's placeholder secret: generate one with `openssl rand -hex 32`"]
        );
        let keys = keys.replace(authkeys::PLACEHOLDER_SECRET, SECRET);
        write(d.path(), "authkeys", &keys, 0o600);
        let c = load(d.path(), "n2").unwrap();
        assert!(c.warnings.is_empty(), "{:?}", c.warnings);
        assert_eq!(c.ha.keepalive, std::time::Duration::from_millis(200));
        assert_eq!(c.ha.nodes, vec!["n1", "n2"]);
        assert_eq!(c.ha.auto_failback, AutoFailback::On);
        assert_eq!(c.haresources.groups[0].resources.len(), 3);
        assert_eq!(c.cluster, ClusterToml::default());
    }

    #[test]
    fn node_must_be_listed() {
        let d = seed_dir();
        assert_eq!(
            errors(d.path(), "zz"),
            vec!["ha.cf:9: node: this node `zz` is not in the node list (l0, l1); hbd names this node by --node or `uname -n`"]
        );
    }

    #[test]
    fn missing_files() {
        let d = tempfile::tempdir().unwrap();
        assert_eq!(
            errors(d.path(), "l0"),
            vec![
                "authkeys: missing: hbd needs it (heartbeat's authkeys: the keys that sign and check every datagram)",
                "ha.cf: missing: hbd needs it (heartbeat's ha.cf: the nodes, the media and the timings)",
            ]
        );
    }

    #[test]
    fn every_error_sorted_by_file_then_line() {
        let d = seed_dir();
        write(
            d.path(),
            "ha.cf",
            &format!("frobnicate\n{SEED_002_HA_CF}serial /dev/ttyS0\n"),
            0o644,
        );
        write(d.path(), "authkeys", "auth 2\n1 sha256 x\n", 0o640);
        write(d.path(), "haresources", "l0 192.0.2.5\nl7 b\n", 0o644);
        write(d.path(), "cluster.toml", "[cluster]\nnom = 1\n", 0o644);
        assert_eq!(
            errors(d.path(), "l0"),
            vec![
                "authkeys: readable by group/other (mode 0640); chmod 600 it",
                "authkeys:1: auth: key 2 is not listed in this file (keys: 1)",
                "cluster.toml:2: cluster.nom: unknown field `nom`, expected `name`",
                "ha.cf:1: frobnicate: unknown directive",
                "ha.cf:12: serial: not supported: serial links are not supported: hbd heartbeats over UDP only (bcast, mcast, ucast); use a crossover Ethernet link instead",
                "haresources:2: l7: not a node of ha.cf (nodes: l0, l1); a line starts with its preferred node",
            ]
        );
        let r = check(d.path(), "l0");
        assert!(r.config.is_none());
        assert_eq!(r.errors.len(), 6);
        // Warnings are still reported: hopfudge, and the short secret.
        assert_eq!(r.warnings.len(), 2, "{:?}", r.warnings);
    }
}
