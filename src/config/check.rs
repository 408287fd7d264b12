//! The checks across files, once each file has parsed: haresources' groups
//! against the agents and cluster.toml's `[resource]` settings, cluster.toml's
//! `[[check]]`, `[[job]]` and `[notify]` against the groups, the split-brain
//! settings (`[quorum]`, `[tiebreaker]`, `[groups]`, `[fencing]`) against ha.cf,
//! `hbctl check`'s safe-defaults warning, and whether the groups' report fits
//! one datagram. `check_as` (in `mod.rs`) calls them in order.

use super::*;

/// Every node reports every group's state in one datagram: a configuration
/// whose worst-case report would not fit is refused.
pub(super) fn report_fits(
    groups: &[GroupConfig],
    jobs: &[JobConfig],
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
                    served: u64::MAX,
                })
                .collect(),
            marks: jobs
                .iter()
                .map(|j| crate::wire::JobMark {
                    job: j.name.clone(),
                    last: i64::MIN,
                })
                .collect(),
            no: u64::MAX,
            // Every member, the witness too.
            heard: ha
                .nodes
                .iter()
                .chain(cluster.quorum.witness.iter())
                .map(|_| crate::wire::Heard {
                    node: longest.clone(),
                    incarnation: u64::MAX,
                    no: u64::MAX,
                })
                .collect(),
            witness: true,
            ping: Some(u16::MAX),
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

/// Why a `group = "..."` of a check or job names no group (`groups`: the
/// groups' ids).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
enum GroupRefError {
    #[error("no resource groups in haresources")]
    NoGroups,
    /// Omitted while there are several groups.
    #[error("missing: which group? (groups: {})", groups.join(", "))]
    Missing { groups: Vec<String> },
    #[error("`{name}` is not a group of haresources (groups: {})", groups.join(", "))]
    Unknown { name: String, groups: Vec<String> },
}

/// Which group a `group = "..."` names: its id, or any of its resources as
/// written; may be omitted when there is exactly one group.
fn find_group(groups: &[GroupConfig], name: Option<&str>) -> Result<usize, GroupRefError> {
    let ids = || groups.iter().map(|g| g.id.clone()).collect::<Vec<_>>();
    match name {
        None if groups.len() == 1 => Ok(0),
        None if groups.is_empty() => Err(GroupRefError::NoGroups),
        None => Err(GroupRefError::Missing { groups: ids() }),
        Some(n) => groups
            .iter()
            .position(|g| g.id == n || g.resources.iter().any(|r| r.spec == n))
            .ok_or_else(|| GroupRefError::Unknown {
                name: n.to_string(),
                groups: ids(),
            }),
    }
}

/// `[[check]]`, `[[job]]` and `[notify]` of cluster.toml against the groups.
pub(super) fn resolve_monitoring(
    groups: &[GroupConfig],
    cluster: &ClusterToml,
    toml: Option<(&Path, &str)>,
    errors: &mut Vec<ConfigError>,
    warnings: &mut Vec<ConfigWarning>,
) -> (Vec<CheckConfig>, Vec<JobConfig>, Option<NotifyConfig>) {
    use crate::monitor::checks::CheckKind;
    use crate::monitor::scheduler::Action;
    let Some((path, text)) = toml else {
        return (Vec::new(), Vec::new(), None);
    };
    let at = |array: &str, n: usize, key: &str| Location {
        file: path.to_path_buf(),
        line: cluster_toml::array_table_key_line(text, array, n, key),
    };
    let mut checks = Vec::new();
    for (n, c) in cluster.check.iter().enumerate() {
        let reported = std::cell::Cell::new(0);
        let mut err = |key: &str, message: String| {
            reported.set(reported.get() + 1);
            let l = at("check", n, key);
            errors.push(ConfigError::Line {
                file: l.file,
                line: l.line,
                key: format!("check.{key}"),
                message,
            });
        };
        let group = match find_group(groups, c.group.as_deref()) {
            Ok(g) => Some(g),
            Err(m) => {
                err("group", m.to_string());
                None
            }
        };
        let need = |v: &Option<String>, key: &str, err: &mut dyn FnMut(&str, String)| {
            if v.is_none() {
                err(key, "missing".into());
            }
            v.clone().unwrap_or_default()
        };
        let kind = match c.kind.as_deref() {
            None => {
                err("type", "missing: tcp, http, process, exec or mysql".into());
                None
            }
            Some("tcp") => {
                if c.port.is_none() {
                    err("port", "missing".into());
                }
                Some(CheckKind::Tcp {
                    host: c.host.clone().unwrap_or_else(|| "127.0.0.1".into()),
                    port: c.port.unwrap_or(0),
                })
            }
            Some("http") => Some(CheckKind::Http {
                url: need(&c.url, "url", &mut err),
                expect: c.expect.unwrap_or(200),
                tls: crate::monitor::checks::HttpTls {
                    ca_file: c.ca_file.clone(),
                    insecure_skip_verify: c.insecure_skip_verify.unwrap_or(false),
                },
            }),
            Some("process") => {
                if c.pidfile.is_none() && c.process.is_none() {
                    err("process", "missing: a process name or a pidfile".into());
                }
                Some(CheckKind::Process {
                    pidfile: c.pidfile.clone(),
                    name: c.process.clone(),
                })
            }
            Some("exec") => Some(CheckKind::Exec {
                command: need(&c.command, "command", &mut err),
                user: c.user.clone(),
            }),
            Some("mysql") => Some(CheckKind::Mysql {
                host: c.host.clone(),
                port: c.port.unwrap_or(3306),
                socket: c.socket.clone(),
                user: c.user.clone(),
                password: c.password.clone(),
                option_file: c.option_file.clone(),
                query: c.query.clone().unwrap_or_else(|| "SELECT 1".into()),
            }),
            Some(other) => {
                err(
                    "type",
                    format!(
                        "unknown check type `{other}`: expected tcp, http, process, exec or mysql"
                    ),
                );
                None
            }
        };
        // What is missing was said already; validate what is there.
        if let (Some(k), 0) = (&kind, reported.get()) {
            if let Err(m) = crate::monitor::checks::validate(k) {
                err("type", m.to_string());
            }
        }
        let dur =
            |v: &Option<String>, key: &str, default, err: &mut dyn FnMut(&str, String)| match v
                .as_deref()
                .map(parse_duration)
            {
                None => default,
                Some(Ok(d)) if !d.is_zero() => d,
                Some(Ok(_)) => {
                    err(key, "must be more than 0".into());
                    default
                }
                Some(Err(m)) => {
                    err(key, m.to_string());
                    default
                }
            };
        let interval = dur(&c.interval, "interval", CHECK_INTERVAL, &mut err);
        let timeout = dur(&c.timeout, "timeout", CHECK_TIMEOUT.min(interval), &mut err);
        let fall = c.fall.unwrap_or(CHECK_FALL);
        let rise = c.rise.unwrap_or(CHECK_RISE);
        if fall == 0 {
            err("fall", "must be at least 1".into());
        }
        if rise == 0 {
            err("rise", "must be at least 1".into());
        }
        let action = match c.action.as_deref().unwrap_or("move") {
            "move" => Some(Action::Move),
            "notify" => Some(Action::Notify),
            "restart" => {
                let window = dur(
                    &c.restart_window,
                    "restart_window",
                    std::time::Duration::from_secs(600),
                    &mut err,
                );
                let resource = match (group, c.resource.as_deref()) {
                    (_, None) => {
                        err(
                            "resource",
                            "missing: action restart needs the resource to restart".into(),
                        );
                        None
                    }
                    (None, Some(_)) => None,
                    (Some(g), Some(r)) => {
                        let res = &groups[g].resources;
                        let found = res.iter().position(|x| x.spec == r).or_else(|| {
                            res.iter()
                                .position(|x| crate::agents::split_spec(&x.spec).0 == r)
                        });
                        if found.is_none() {
                            err(
                                "resource",
                                format!("`{r}` is not a resource of group {}", groups[g].id),
                            );
                        }
                        found
                    }
                };
                resource.map(|resource| Action::Restart {
                    resource,
                    max: c.restarts.unwrap_or(3),
                    window,
                })
            }
            other => {
                err(
                    "action",
                    format!("`{other}`: expected move, restart or notify"),
                );
                None
            }
        };
        let name = c.name.clone().unwrap_or_else(|| match &kind {
            Some(CheckKind::Tcp { host, port }) => format!("tcp {host}:{port}"),
            Some(CheckKind::Http { url, .. }) => format!("http {url}"),
            Some(CheckKind::Process { name: Some(p), .. }) => format!("process {p}"),
            Some(CheckKind::Process { pidfile, .. }) => format!(
                "process {}",
                pidfile
                    .as_deref()
                    .map(|p| p.display().to_string())
                    .unwrap_or_default()
            ),
            Some(CheckKind::Exec { command, .. }) => format!("exec {command}"),
            Some(CheckKind::Mysql { .. }) => "mysql".to_string(),
            None => format!("check {}", n + 1),
        });
        if checks.iter().any(|x: &CheckConfig| x.name == name) {
            err("name", format!("`{name}`: two checks with this name"));
        }
        if let (Some(group), Some(kind), Some(action)) = (group, kind, action) {
            if !groups[group]
                .resources
                .iter()
                .any(|r| r.kind == crate::agents::AgentKind::Mon)
            {
                let l = at("check", n, "group");
                warnings.push(ConfigWarning {
                    file: l.file,
                    line: l.line,
                    key: "check.group".into(),
                    message: format!(
                        "group {} has no `mon` resource in haresources: this check does not run",
                        groups[group].id
                    ),
                });
            }
            checks.push(CheckConfig {
                name,
                group,
                kind,
                interval,
                timeout,
                fall,
                rise,
                action,
                at: at("check", n, "type"),
            });
        }
    }
    let mut jobs = Vec::new();
    if cluster.job.len() > MAX_JOBS {
        let l = at("job", MAX_JOBS, "name");
        errors.push(ConfigError::Line {
            file: l.file,
            line: l.line,
            key: "job".into(),
            message: format!("more than {MAX_JOBS} jobs"),
        });
    }
    for (n, j) in cluster.job.iter().enumerate() {
        let mut err = |key: &str, message: String| {
            let l = at("job", n, key);
            errors.push(ConfigError::Line {
                file: l.file,
                line: l.line,
                key: format!("job.{key}"),
                message,
            });
        };
        let name = match &j.name {
            Some(n) if !n.is_empty() && n.len() <= 64 => Some(n.clone()),
            Some(_) => {
                err("name", "must be 1 to 64 bytes".into());
                None
            }
            None => {
                err("name", "missing".into());
                None
            }
        };
        if let Some(n) = &name {
            if jobs.iter().any(|x: &JobConfig| x.name == *n) {
                err("name", format!("`{n}`: two jobs with this name"));
            }
        }
        let group = find_group(groups, j.group.as_deref())
            .map_err(|m| err("group", m.to_string()))
            .ok();
        let schedule = match j.schedule.as_deref() {
            None => {
                err(
                    "schedule",
                    "missing: 5 cron fields or @hourly, @daily...".into(),
                );
                None
            }
            Some(s) => crate::jobs::cron::Schedule::parse(s)
                .map_err(|m| err("schedule", format!("`{s}`: {m}")))
                .ok(),
        };
        let command = match &j.command {
            Some(c) if !c.trim().is_empty() => Some(c.clone()),
            _ => {
                err("command", "missing".into());
                None
            }
        };
        if let Some(u) = &j.user {
            if !matches!(nix::unistd::User::from_name(u), Ok(Some(_))) {
                err("user", format!("no user `{u}`"));
            }
        }
        let timeout = match j.timeout.as_deref().map(parse_duration) {
            None => JOB_TIMEOUT,
            Some(Ok(d)) if !d.is_zero() => d,
            Some(Ok(_)) => {
                err("timeout", "must be more than 0".into());
                JOB_TIMEOUT
            }
            Some(Err(m)) => {
                err("timeout", m.to_string());
                JOB_TIMEOUT
            }
        };
        let missed = match j.missed.as_deref().unwrap_or("catch-up") {
            "catch-up" => Some(crate::jobs::Missed::CatchUp),
            "skip" => Some(crate::jobs::Missed::Skip),
            other => {
                err("missed", format!("`{other}`: expected catch-up or skip"));
                None
            }
        };
        if let (Some(name), Some(group), Some(schedule), Some(command), Some(missed)) =
            (name, group, schedule, command, missed)
        {
            jobs.push(JobConfig {
                name,
                group,
                schedule,
                command,
                user: j.user.clone(),
                timeout,
                missed,
                at: at("job", n, "name"),
            });
        }
    }
    (checks, jobs, notify_of(cluster))
}

/// cluster.toml's `[notify]` hook, when it has a command (its timeout is
/// checked by `cluster_toml::parse`).
pub(super) fn notify_of(cluster: &ClusterToml) -> Option<NotifyConfig> {
    cluster.notify.command.as_ref().map(|command| NotifyConfig {
        command: command.clone(),
        timeout: cluster
            .notify
            .timeout
            .as_deref()
            .and_then(|t| parse_duration(t).ok())
            .unwrap_or(NOTIFY_TIMEOUT),
    })
}

/// Resolves every resource of `haresources`: unknown agents and bad arguments
/// are errors at the line of their group.
pub(super) fn resolve_groups(
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
                Err(m) => errors.push(err(spec, m.to_string())),
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

/// The `[quorum]`, `[tiebreaker]`, `[groups]` and `[fencing]` settings
/// against ha.cf (and, for the witness, this node's name).
pub(super) struct SplitBrain {
    pub(super) quorum: QuorumSettings,
    pub(super) tiebreaker: TiebreakerSettings,
    pub(super) failure_timeout: Option<std::time::Duration>,
    pub(super) fencing: FencingSettings,
    pub(super) builtin_outdater: bool,
}

#[allow(clippy::too_many_arguments)]
pub(super) fn resolve_split_brain(
    cluster: &ClusterToml,
    ha: Option<&HaCf>,
    toml: Option<(&Path, &str)>,
    node: &str,
    is_witness: bool,
    errors: &mut Vec<ConfigError>,
    warnings: &mut Vec<ConfigWarning>,
) -> SplitBrain {
    let (toml_path, toml_text) = toml.unwrap_or((Path::new("cluster.toml"), ""));
    let at = |table: &str, key: &str| cluster_toml::find_key_line(toml_text, table, key);
    let line_err = |table: &str, key: &str, message: String| ConfigError::Line {
        file: toml_path.to_path_buf(),
        line: at(table, key),
        key: format!("{table}.{key}"),
        message,
    };
    let dur = |v: &Option<String>| v.as_deref().and_then(|t| parse_duration(t).ok());
    let nodes: &[String] = ha.map_or(&[], |h| &h.nodes);
    let deadtime = ha.map_or(DEFAULT_DEADTIME, |h| h.deadtime);
    let builtin =
        |b: BuiltinHelper| ha.and_then(|h| h.respawn.iter().find(|r| r.builtin == Some(b)));

    // [quorum]
    let witness = cluster.quorum.witness.clone().map(|w| w.to_lowercase());
    if let Some(w) = &witness {
        if nodes.contains(w) {
            errors.push(line_err(
                "quorum",
                "witness",
                format!(
                    "`{w}` is an ha.cf node: the witness is a third machine running `hbd --witness`, \
                     not a node of the cluster"
                ),
            ));
        }
    }
    if is_witness {
        match &witness {
            None => errors.push(ConfigError::File {
                file: toml_path.to_path_buf(),
                message: "no `[quorum] witness`: name the witness there to run `hbd --witness`"
                    .into(),
            }),
            Some(w) if w != node => errors.push(line_err(
                "quorum",
                "witness",
                format!(
                    "the witness is `{w}`, but this witness runs as `{node}` (--node or `uname -n`)"
                ),
            )),
            Some(_) => {}
        }
    }
    if witness.is_none() && cluster.quorum.wait_for_all.is_some() {
        warnings.push(ConfigWarning {
            file: toml_path.to_path_buf(),
            line: at("quorum", "wait_for_all"),
            key: "quorum.wait_for_all".into(),
            message: "no effect without `witness`".into(),
        });
    }
    let quorum = QuorumSettings {
        wait_for_all: witness.is_some() && cluster.quorum.wait_for_all.unwrap_or(true),
        witness,
    };

    // [tiebreaker]
    let has_ping = ha.is_some_and(|h| !h.ping.is_empty() || !h.ping_groups.is_empty());
    let ipfail = builtin(BuiltinHelper::Ipfail);
    if let Some(r) = ipfail {
        if !has_ping {
            warnings.push(ConfigWarning {
                file: r.at.file.clone(),
                line: r.at.line,
                key: "respawn".into(),
                message:
                    "ipfail is built into hbd (the ping tiebreaker), but there are no `ping` or \
                          `ping_group` nodes: it does nothing"
                        .into(),
            });
        } else if cluster.tiebreaker.ping == Some(false) {
            warnings.push(ConfigWarning {
                file: r.at.file.clone(),
                line: r.at.line,
                key: "respawn".into(),
                message:
                    "ipfail: the ping tiebreaker is off (cluster.toml `[tiebreaker] ping = false`)"
                        .into(),
            });
        }
    }
    if cluster.tiebreaker.ping == Some(true) && !has_ping && ha.is_some() {
        errors.push(line_err(
            "tiebreaker",
            "ping",
            "no `ping` or `ping_group` nodes in ha.cf: the tiebreaker needs addresses to \
             reach (a router both nodes use)"
                .into(),
        ));
    }
    let tiebreaker = TiebreakerSettings {
        ping: has_ping && cluster.tiebreaker.ping.unwrap_or(true),
        settle: dur(&cluster.tiebreaker.settle).unwrap_or(deadtime),
    };

    // [groups]
    let failure_timeout = match dur(&cluster.groups.failure_timeout) {
        None => Some(DEFAULT_FAILURE_TIMEOUT),
        Some(d) if d.is_zero() => None,
        Some(d) => Some(d),
    };
    let fencing = FencingSettings {
        action: cluster.fencing.action.unwrap_or_default(),
        timeout: dur(&cluster.fencing.timeout).unwrap_or(DEFAULT_FENCE_TIMEOUT),
    };
    SplitBrain {
        quorum,
        tiebreaker,
        failure_timeout,
        fencing,
        builtin_outdater: builtin(BuiltinHelper::Dopd).is_some(),
    }
}

/// `hbctl check`'s safe-defaults warning: a two-node cluster with a
/// replicated disk in its groups and nothing that keeps a partition from
/// running the group on both nodes (issue 13: the seeds' "both masters
/// active").
pub(super) fn unprotected_warning(
    ha: &HaCf,
    groups: &[GroupConfig],
    drbd: Option<&crate::disk::conf::DrbdConf>,
    sb: &SplitBrain,
    fencing_configured: bool,
    corosync: Option<&corosync::CorosyncConf>,
) -> Option<ConfigWarning> {
    use crate::disk::conf::Fencing;
    if ha.nodes.len() != 2 {
        return None;
    }
    let disk = groups.iter().flat_map(|g| {
        g.resources
            .iter()
            .filter(|r| matches!(r.kind, crate::agents::AgentKind::Drbddisk(_)))
            .map(move |r| (g, r))
    });
    let (group, _) = disk.clone().next()?;
    let resource_fencing = drbd.is_some_and(|d| {
        d.resources.iter().all(|r| {
            r.fencing != Fencing::DontCare
                && (r.handlers.contains_key("fence-peer") || sb.builtin_outdater)
        }) && !d.resources.is_empty()
    });
    // With Corosync, a quorum device is the third vote (the witness's job).
    let qdevice = corosync.is_some_and(|c| c.quorum.device.is_some());
    if resource_fencing
        || sb.tiebreaker.ping
        || sb.quorum.witness.is_some()
        || qdevice
        || fencing_configured
    {
        return None;
    }
    let third_vote = if corosync.is_some() {
        "a quorum device in corosync.conf (corosync-qnetd)"
    } else {
        "a cluster.toml `[quorum] witness`"
    };
    Some(ConfigWarning {
        file: group.at.file.clone(),
        line: group.at.line,
        key: group.id.clone(),
        message: format!(
            "two nodes share a replicated disk with no split-brain protection: a partition \
             can run this group on both nodes, and one side's writes are discarded later. Add \
             one or more of: drbd.conf `fencing resource-only` with the built-in outdater, \
             ha.cf `ping` nodes (the ping tiebreaker), {third_vote}, \
             ha.cf `stonith_host` (see docs/CONFIG.md, Split-brain avoidance)"
        ),
    })
}

/// How long one agent's `validate-all` may take at `hbctl check`.
pub const VALIDATE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(20);

/// `hbctl check`: asks every script agent of haresources that knows it
/// `validate-all` ([`crate::agents::exec::validate_all`], all at once). An
/// answer of OCF_ERR_ARGS (2), OCF_ERR_INSTALLED (5) or OCF_ERR_CONFIGURED
/// (6) is an error at the group's haresources line; an agent that cannot
/// tell (another code, a timeout) is a warning; OCF_ERR_UNIMPLEMENTED (3)
/// is fine. Runs the agents on a runtime of its own, in a thread of its
/// own, so it may be called from anywhere.
pub fn validate_agents(groups: &[GroupConfig]) -> (Vec<ConfigError>, Vec<ConfigWarning>) {
    use crate::agents::exec::{validate_all, Validation};
    use crate::agents::AgentKind;
    let jobs: Vec<(Location, String, AgentKind)> = groups
        .iter()
        .flat_map(|g| {
            g.resources
                .iter()
                .map(|r| (g.at.clone(), r.spec.clone(), r.kind.clone()))
        })
        .collect();
    let kinds: Vec<AgentKind> = jobs.iter().map(|(_, _, k)| k.clone()).collect();
    let answers = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        Ok::<_, std::io::Error>(rt.block_on(futures::future::join_all(
            kinds.iter().map(|k| validate_all(k, VALIDATE_TIMEOUT)),
        )))
    })
    .join();
    let mut errors = Vec::new();
    let mut warnings = Vec::new();
    let answers = match answers {
        Ok(Ok(a)) => a,
        Ok(Err(e)) => {
            if let Some((at, spec, _)) = jobs.first() {
                warnings.push(ConfigWarning {
                    file: at.file.clone(),
                    line: at.line,
                    key: spec.clone(),
                    message: format!("agents not validated: {e}"),
                });
            }
            return (errors, warnings);
        }
        Err(_) => return (errors, warnings),
    };
    for ((at, spec, kind), answer) in jobs.iter().zip(answers) {
        let agent = match kind {
            AgentKind::Ocf { provider, kind, .. } => format!("ocf:{provider}:{kind}"),
            AgentKind::Heartbeat { path, .. } => path.display().to_string(),
            other => other.class().to_string(),
        };
        match answer {
            Validation::Valid | Validation::NotAsked => {}
            Validation::Invalid { code, message } => errors.push(ConfigError::Line {
                file: at.file.clone(),
                line: at.line,
                key: spec.clone(),
                message: format!("agent {agent}: validate-all exited with code {code} ({message})"),
            }),
            Validation::Unknown { message } => warnings.push(ConfigWarning {
                file: at.file.clone(),
                line: at.line,
                key: spec.clone(),
                message: format!("agent {agent}: validate-all could not tell: {message}"),
            }),
        }
    }
    (errors, warnings)
}

/// With `[membership] backend = "corosync"`, corosync.conf and hbd's files
/// describe one cluster: each disagreement is an error at one file's line
/// naming the other's. hbd maps Corosync's nodeids to its node names through
/// the nodelist's `name`s, so they must be ha.cf's `node`s (ignoring case),
/// and it takes its quorum from votequorum.
#[allow(clippy::too_many_arguments)]
pub(super) fn corosync_agrees(
    cs: &corosync::CorosyncConf,
    ha: &HaCf,
    hacf_path: &Path,
    node_lines: &std::collections::HashMap<String, usize>,
    first_node_line: Option<usize>,
    drbd: Option<&crate::disk::conf::DrbdConf>,
    this_node: Option<&str>,
    errors: &mut Vec<ConfigError>,
    warnings: &mut Vec<ConfigWarning>,
) {
    let cs_file = &cs.path;
    let at_cs = |line: usize| format!("{}:{line}", cs_file.display());
    let hacf_line = |n: &str| {
        node_lines
            .get(&n.to_lowercase())
            .copied()
            .or(first_node_line)
            .unwrap_or(1)
    };
    let at_ha = |n: &str| format!("{}:{}", hacf_path.display(), hacf_line(n));
    let cs_err = |line: usize, key: &str, message: String| {
        if line == 0 {
            ConfigError::File {
                file: cs_file.clone(),
                message: format!("{key}: {message}"),
            }
        } else {
            ConfigError::Line {
                file: cs_file.clone(),
                line,
                key: key.to_string(),
                message,
            }
        }
    };
    let names: Vec<String> = cs.nodes.iter().filter_map(|n| n.name.clone()).collect();
    let nodelist_line = cs.nodes.first().map_or(0, |n| n.line);

    // This node (--node or uname -n) is in the nodelist.
    if let Some(me) = this_node {
        if cs.node_by_name(me).is_none() {
            errors.push(cs_err(
                nodelist_line,
                "nodelist.node.name",
                format!(
                    "this node `{me}` (--node or `uname -n`; ha.cf's node at {}) has no node in \
                     the nodelist (names: {}); corosync would not find its local node either",
                    at_ha(me),
                    names.join(", ")
                ),
            ));
        }
    }
    // ha.cf's nodes are the nodelist's names...
    for n in &ha.nodes {
        if Some(n.as_str()) == this_node.map(str::to_lowercase).as_deref() {
            continue; // reported above
        }
        if cs.node_by_name(n).is_none() {
            errors.push(ConfigError::Line {
                file: hacf_path.to_path_buf(),
                line: hacf_line(n),
                key: "node".into(),
                message: format!(
                    "`{n}` is not a node of corosync.conf's nodelist ({}: names: {}): with the \
                     corosync backend the nodelist's `name`s are ha.cf's nodes",
                    at_cs(nodelist_line),
                    names.join(", ")
                ),
            });
        }
    }
    // ... and the other way round.
    for c in &cs.nodes {
        match &c.name {
            None => errors.push(cs_err(
                c.line,
                "nodelist.node.name",
                format!(
                    "missing: hbd names Corosync's nodes by `name` (nodeid {}); give it the \
                     ha.cf node name ({}: {})",
                    c.nodeid.map_or("?".into(), |i| i.to_string()),
                    hacf_path.display(),
                    ha.nodes.join(", ")
                ),
            )),
            Some(name) if !ha.nodes.iter().any(|n| n.eq_ignore_ascii_case(name)) => {
                errors.push(cs_err(
                    c.line,
                    "nodelist.node.name",
                    format!(
                        "`{name}` is not an ha.cf node ({}: node {}): every Corosync node runs \
                         hbd under its ha.cf name",
                        at_ha(name),
                        ha.nodes.join(" ")
                    ),
                ))
            }
            Some(_) => {}
        }
    }

    // drbd.conf's hosts are nodelist names; an `on` address that is another
    // node's ring address means the sections' addresses are swapped.
    if let Some(d) = drbd {
        for r in &d.resources {
            for h in &r.hosts {
                let Some(owner) = cs.node_by_name(&h.name) else {
                    errors.push(ConfigError::Line {
                        file: h.at.file.clone(),
                        line: h.at.line,
                        key: format!("resource {} on {}", r.name, h.name),
                        message: format!(
                            "`{}` is not a node of corosync.conf's nodelist ({}: names: {})",
                            h.name,
                            at_cs(nodelist_line),
                            names.join(", ")
                        ),
                    });
                    continue;
                };
                let ip = std::net::IpAddr::V4(*h.address.ip());
                for other in cs.nodes.iter().filter(|o| !std::ptr::eq(*o, owner)) {
                    let hit = other
                        .addrs
                        .iter()
                        .find(|(_, a)| a.parse::<std::net::IpAddr>().ok() == Some(ip));
                    if let Some((ring, a)) = hit {
                        errors.push(ConfigError::Line {
                            file: h.at.file.clone(),
                            line: h.at.line,
                            key: format!("resource {} on {}", r.name, h.name),
                            message: format!(
                                "address {a} is ring{ring}_addr of node `{}` in corosync.conf \
                                 ({}), not of `{}` ({}): are the `on` sections' addresses \
                                 swapped?",
                                other.name.as_deref().unwrap_or("?"),
                                at_cs(other.line),
                                h.name,
                                at_cs(owner.line)
                            ),
                        });
                    }
                }
            }
        }
    }

    // Quorum: votequorum's, which hbd follows.
    let q = &cs.quorum;
    if q.provider.as_deref() != Some("corosync_votequorum") {
        errors.push(cs_err(
            q.line,
            "quorum.provider",
            format!(
                "{}: hbd takes its quorum from votequorum; set `provider: corosync_votequorum` \
                 in quorum {{ }}",
                match &q.provider {
                    Some(p) => format!("`{p}`"),
                    None => "missing".into(),
                }
            ),
        ));
    }
    if cs.nodes.len() == 2 && q.device.is_none() && !q.two_node {
        errors.push(cs_err(
            q.line,
            "quorum.two_node",
            format!(
                "two nodes in the nodelist ({}; ha.cf's at {}) and no quorum device, but no \
                 `two_node: 1`: the survivor of a 2-node cluster never has quorum (1 vote of 2) \
                 and would stop every group; add `two_node: 1` to quorum {{ }} (votequorum(5): \
                 it also sets wait_for_all), or a quorum device (corosync-qnetd) as the third \
                 vote",
                names.join(", "),
                at_ha(ha.nodes.first().map_or("", String::as_str)),
            ),
        ));
    }

    // This node's ring0_addr, when an IP literal, is one of its own.
    if let Some(me) = this_node.and_then(|n| cs.node_by_name(n)) {
        if let Some(ip) = me.addr(0).and_then(|a| a.parse::<std::net::IpAddr>().ok()) {
            let local = nix::ifaddrs::getifaddrs().is_ok_and(|mut ifs| {
                ifs.any(|i| {
                    i.address.is_some_and(|a| {
                        a.as_sockaddr_in().map(|s| std::net::IpAddr::V4(s.ip())) == Some(ip)
                            || a.as_sockaddr_in6().map(|s| std::net::IpAddr::V6(s.ip())) == Some(ip)
                    })
                })
            });
            if !local {
                warnings.push(ConfigWarning {
                    file: cs_file.clone(),
                    line: me.line,
                    key: "nodelist.node.ring0_addr".into(),
                    message: format!(
                        "{ip}, this node's ring0_addr, is not an address of any local \
                         interface: corosync would not find this node by it"
                    ),
                });
            }
        }
    }
}
