//! hbctl: the operator's command line for hbd (heartbeat's cl_status,
//! hb_standby and friends in one tool).
//!
//! Exit codes: 0 ok, 1 failure (daemon unreachable...), 2 invalid
//! configuration or usage, 3 refused by the daemon (unknown node...), 4
//! permission denied.

use clap::{Parser, Subcommand};
use hbd::ctl::{self, ErrorKind, Request, Response, Status};
use hbd::membership::{LinkState, NodeState, NodeStatus};
use hbd::{config, exit};
use std::path::PathBuf;
use std::process::ExitCode;

/// Control and inspect the hbd cluster daemon.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Cli {
    /// The daemon's run directory (holds hbd.sock).
    #[arg(long, global = true, value_name = "DIR", default_value = "/run/hbd")]
    run_dir: PathBuf,
    /// The control socket itself (overrides --run-dir).
    #[arg(long, global = true, value_name = "PATH")]
    socket: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Show the cluster: every node, its state and its links.
    Status {
        /// Print the status document as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Print one node's state: up, dead or unknown (cl_status nodestatus).
    Nodestatus {
        node: String,
        #[arg(long)]
        json: bool,
    },
    /// List the nodes of the cluster (cl_status listnodes).
    Listnodes {
        #[arg(long)]
        json: bool,
    },
    /// Show the links to one node, one medium a line (cl_status listhblinks
    /// and hblinkstatus); with MEDIUM, print only that link's state.
    Links {
        node: String,
        /// A medium as status names it, e.g. "bcast eth0".
        medium: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Validate the configuration without starting anything (exit 0 or 2).
    Check {
        /// Configuration directory.
        #[arg(long, value_name = "DIR", default_value = "/etc/ha.d")]
        config: PathBuf,
        /// The node to check for [default: uname -n].
        #[arg(long, value_name = "NAME")]
        node: Option<String>,
    },
    /// Give resource groups up to the other node (hb_standby); waits until
    /// they run there.
    Standby {
        /// all, local (groups whose home is this node) or foreign.
        #[arg(value_enum, default_value = "all")]
        scope: ScopeArg,
        #[command(flatten)]
        wait: WaitArgs,
    },
    /// Take resource groups over from the other node (hb_takeover); waits
    /// until they run here.
    Takeover {
        #[arg(value_enum, default_value = "all")]
        scope: ScopeArg,
        #[command(flatten)]
        wait: WaitArgs,
    },
    /// List every job: its group, schedule, last run and result, next time.
    Jobs {
        #[arg(long)]
        json: bool,
    },
    /// Forget that GROUP failed on this node, so it may run here again.
    Clear {
        /// The group: its first resource as in haresources (see status).
        group: String,
    },
    /// The replicated disk, drbdadm's way (works without hbd running). So far:
    /// create-md and dump-md; the other verbs come with the device.
    Disk {
        /// Configuration directory (drbd.conf, or cluster.toml's [disk] drbd_conf).
        #[arg(long, value_name = "DIR", default_value = "/etc/ha.d")]
        config: PathBuf,
        /// This node's name in drbd.conf's `on` sections [default: uname -n].
        #[arg(long, value_name = "NAME")]
        node: Option<String>,
        #[command(subcommand)]
        verb: DiskVerb,
    },
    /// Run one resource agent here, without the daemon (heartbeat's
    /// ResourceManager): status exits 0 when running, 3 when stopped.
    Resource {
        /// Configuration directory (for resource.d and cluster.toml).
        #[arg(long, value_name = "DIR", default_value = "/etc/ha.d")]
        config: PathBuf,
        /// The resource as written in haresources, e.g. IPaddr2::192.0.2.100/24/eth0.
        spec: String,
        #[arg(value_enum)]
        action: ResourceAction,
    },
}

#[derive(Debug, Subcommand)]
enum DiskVerb {
    /// Write fresh metadata (meta-disk internal, at the end of the backing
    /// disk) for RES, or `all`.
    CreateMd {
        res: String,
        /// Overwrite valid metadata (its generation UUIDs and bitmap are lost).
        #[arg(long)]
        force: bool,
    },
    /// Print RES's metadata: sizes, generation UUIDs, flags, out-of-sync bytes.
    DumpMd { res: String },
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum ScopeArg {
    All,
    Local,
    Foreign,
}

impl From<ScopeArg> for ctl::Scope {
    fn from(s: ScopeArg) -> ctl::Scope {
        match s {
            ScopeArg::All => ctl::Scope::All,
            ScopeArg::Local => ctl::Scope::Local,
            ScopeArg::Foreign => ctl::Scope::Foreign,
        }
    }
}

#[derive(Debug, Clone, clap::Args)]
struct WaitArgs {
    /// Longest wait for the groups to move, in seconds.
    #[arg(long, value_name = "SECONDS", default_value_t = 120)]
    timeout: u64,
    /// Return once the daemon accepted the command.
    #[arg(long)]
    no_wait: bool,
}

impl WaitArgs {
    fn wait_ms(&self) -> Option<u64> {
        (!self.no_wait).then_some(self.timeout.saturating_mul(1000))
    }
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum ResourceAction {
    Start,
    Stop,
    Status,
}

/// `hbctl disk`: the metadata verbs, on this node's backing disks.
fn disk(dir: PathBuf, node: Option<String>, verb: DiskVerb) -> ExitCode {
    use hbd::disk::meta;
    let node = match node
        .map(Ok)
        .unwrap_or_else(|| nix::unistd::gethostname().map(|n| n.to_string_lossy().into_owned()))
    {
        Ok(n) => n.to_lowercase(),
        Err(e) => {
            eprintln!("hbctl: cannot read the host name: {e}; use --node");
            return ExitCode::from(exit::FAILURE);
        }
    };
    let c = match config::load(&dir, &node) {
        Ok(c) => c,
        Err(errors) => {
            eprintln!("{errors}");
            return ExitCode::from(exit::CONFIG);
        }
    };
    let Some(drbd) = c.drbd else {
        eprintln!(
            "hbctl: no drbd.conf in {} (nor [disk] drbd_conf in cluster.toml)",
            dir.display()
        );
        return ExitCode::from(exit::CONFIG);
    };
    let res = match &verb {
        DiskVerb::CreateMd { res, .. } | DiskVerb::DumpMd { res } => res.clone(),
    };
    let chosen: Vec<_> = drbd
        .resources
        .iter()
        .filter(|r| res == "all" || r.name == res)
        .collect();
    if chosen.is_empty() {
        let names: Vec<&str> = drbd.resources.iter().map(|r| r.name.as_str()).collect();
        eprintln!("hbctl: no resource {res} (resources: {})", names.join(", "));
        return ExitCode::from(exit::REFUSED);
    }
    let mut code = exit::OK;
    for r in chosen {
        let Some(host) = r.host(&node) else {
            eprintln!("hbctl: {}: no `on {node}` section", r.name);
            code = exit::REFUSED;
            continue;
        };
        let disk = host.disk.display();
        match &verb {
            DiskVerb::CreateMd { force, .. } => match meta::create(&host.disk, *force) {
                Ok(m) => println!(
                    "{}: metadata created on {disk}: data area {} bytes, metadata from byte {}",
                    r.name, m.layout.data_size, m.layout.al_offset
                ),
                Err(meta::MetaError::Exists) => {
                    eprintln!(
                        "hbctl: {}: {disk} already has valid metadata; --force overwrites it \
                         (its generation UUIDs and bitmap are lost)",
                        r.name
                    );
                    code = exit::REFUSED;
                }
                Err(e) => {
                    eprintln!("hbctl: {}: {disk}: {e}", r.name);
                    code = exit::FAILURE;
                }
            },
            DiskVerb::DumpMd { .. } => match meta::open(&host.disk) {
                Ok((m, f)) => {
                    let oos = meta::read_bitmap(&f, &m.layout)
                        .map(|b| b.out_of_sync_bytes().to_string())
                        .unwrap_or_else(|e| format!("unreadable: {e}"));
                    println!(
                        "{}: {disk}\n  device size {} bytes, data area {} bytes\n  \
                         uuids current {:016X} bitmap {:016X} history {:016X}:{:016X}\n  \
                         flags {:?}\n  out of sync {oos} bytes",
                        r.name,
                        m.layout.device_size,
                        m.layout.data_size,
                        m.uuids.current,
                        m.uuids.bitmap,
                        m.uuids.history[0],
                        m.uuids.history[1],
                        m.flags
                    );
                }
                Err(e) => {
                    eprintln!("hbctl: {}: {disk}: {e}", r.name);
                    code = exit::FAILURE;
                }
            },
        }
    }
    ExitCode::from(code)
}

/// `hbctl resource`: resolves SPEC as the daemon would and runs one action.
fn resource(dir: PathBuf, spec: &str, action: ResourceAction) -> ExitCode {
    use hbd::agents::{self, Action, Running};
    let cluster = match std::fs::read_to_string(dir.join("cluster.toml")) {
        Ok(text) => {
            let (c, errors) = config::parse_cluster_toml(&dir.join("cluster.toml"), &text);
            if !errors.is_empty() {
                for e in errors {
                    eprintln!("{e}");
                }
                return ExitCode::from(exit::CONFIG);
            }
            c
        }
        Err(_) => config::ClusterToml::default(),
    };
    let lookup = config::agent_lookup(&dir, &cluster);
    let kind = match agents::resolve(spec, &lookup) {
        Ok(k) => k,
        Err(e) => {
            eprintln!("hbctl: {spec}: {e}");
            return ExitCode::from(exit::CONFIG);
        }
    };
    let options = config::resource_options(&cluster, spec);
    let r = agents::Resource {
        spec: spec.to_string(),
        kind,
        options,
    };
    let _ = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("HBD_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .try_init();
    let rt = match runtime() {
        Ok(rt) => rt,
        Err(code) => return code,
    };
    let result = rt.block_on(async {
        match action {
            ResourceAction::Start => {
                let r = r.run(Action::Start).await.map(|_| Running::Running);
                // The rest of IPaddr's gratuitous ARPs go out in the background.
                agents::ipaddr::announcements_done().await;
                r
            }
            ResourceAction::Stop => r.run(Action::Stop).await.map(|_| Running::Stopped),
            ResourceAction::Status => r.status().await,
        }
    });
    match (action, result) {
        (_, Err(e)) => {
            eprintln!("hbctl: {spec}: {e}");
            ExitCode::from(exit::FAILURE)
        }
        (ResourceAction::Status, Ok(Running::Stopped)) => {
            println!("stopped");
            ExitCode::from(exit::REFUSED)
        }
        (ResourceAction::Status, Ok(Running::Running)) => {
            println!("running");
            ExitCode::from(exit::OK)
        }
        (_, Ok(_)) => ExitCode::from(exit::OK),
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let socket = cli
        .socket
        .clone()
        .unwrap_or_else(|| ctl::socket_path(&cli.run_dir));
    let request = match cli.command {
        Command::Check { config, node } => return check(config, node),
        Command::Resource {
            config,
            spec,
            action,
        } => return resource(config, &spec, action),
        Command::Disk { config, node, verb } => return disk(config, node, verb),
        Command::Status { .. } => Request::Status,
        Command::Nodestatus { ref node, .. } => Request::NodeStatus { node: node.clone() },
        Command::Listnodes { .. } => Request::ListNodes,
        Command::Links { ref node, .. } => Request::NodeStatus { node: node.clone() },
        Command::Standby { scope, ref wait } => Request::Standby {
            scope: scope.into(),
            wait_ms: wait.wait_ms(),
        },
        Command::Takeover { scope, ref wait } => Request::Takeover {
            scope: scope.into(),
            wait_ms: wait.wait_ms(),
        },
        Command::Jobs { .. } => Request::Status,
        Command::Clear { ref group } => Request::Clear {
            group: group.clone(),
        },
    };
    let rt = match runtime() {
        Ok(rt) => rt,
        Err(code) => return code,
    };
    let response = match rt.block_on(ctl::call(&socket, request)) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("hbctl: {e}");
            return ExitCode::from(exit::FAILURE);
        }
    };
    match (cli.command, response) {
        (_, Response::Error { kind, message }) => {
            eprintln!("hbctl: {message}");
            ExitCode::from(match kind {
                ErrorKind::PermissionDenied => exit::PERMISSION,
                ErrorKind::NotFound => exit::REFUSED,
                ErrorKind::BadRequest | ErrorKind::Timeout | ErrorKind::Failed => exit::FAILURE,
                ErrorKind::Refused => exit::REFUSED,
            })
        }
        (
            Command::Standby { .. } | Command::Takeover { .. } | Command::Clear { .. },
            Response::Done { groups, moves },
        ) => {
            if moves.is_empty() {
                println!("accepted: {}", groups.join(", "));
            }
            for m in moves {
                match (&m.from, &m.to) {
                    (_, Some(to)) if m.state == hbd::wire::GroupState::Started => {
                        println!("{}: now runs on {to}", m.group)
                    }
                    (_, None) => println!(
                        "{}: {} here; no other node can run it",
                        m.group,
                        m.state.as_str()
                    ),
                    (_, Some(to)) => println!("{}: {} on {to}", m.group, m.state.as_str()),
                }
            }
            ExitCode::from(exit::OK)
        }
        (Command::Jobs { json: true }, Response::Status(s)) => {
            let jobs: Vec<_> = s.groups.iter().flat_map(|g| g.jobs.iter()).collect();
            print_json(&jobs)
        }
        (Command::Jobs { json: false }, Response::Status(s)) => {
            print!("{}", render_jobs(&s));
            ExitCode::from(exit::OK)
        }
        (Command::Status { json: true }, Response::Status(s)) => print_json(&s),
        (Command::Status { json: false }, Response::Status(s)) => {
            print!("{}", render_status(&s));
            ExitCode::from(exit::OK)
        }
        (Command::Nodestatus { json: true, .. }, Response::NodeStatus(n)) => print_json(&n),
        (Command::Nodestatus { json: false, .. }, Response::NodeStatus(n)) => {
            println!("{}", node_state(n.state));
            ExitCode::from(exit::OK)
        }
        (Command::Listnodes { json: true }, Response::Nodes { nodes }) => print_json(&nodes),
        (Command::Listnodes { json: false }, Response::Nodes { nodes }) => {
            for n in nodes {
                println!("{n}");
            }
            ExitCode::from(exit::OK)
        }
        (Command::Links { medium, json, .. }, Response::NodeStatus(n)) => {
            let links: Vec<_> = n
                .links
                .iter()
                .filter(|l| medium.as_ref().is_none_or(|m| *m == l.medium))
                .collect();
            if links.is_empty() {
                eprintln!(
                    "hbctl: node {} has no medium {:?} (media: {})",
                    n.name,
                    medium.unwrap_or_default(),
                    n.links
                        .iter()
                        .map(|l| l.medium.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                );
                return ExitCode::from(exit::REFUSED);
            }
            if json {
                return print_json(&links);
            }
            for l in links {
                if medium.is_some() {
                    println!("{}", link_state(l.state));
                } else {
                    println!("{}\t{}", l.medium, link_state(l.state));
                }
            }
            ExitCode::from(exit::OK)
        }
        (_, other) => {
            eprintln!("hbctl: unexpected answer from the daemon: {other:?}");
            ExitCode::from(exit::FAILURE)
        }
    }
}

fn print_json<T: serde::Serialize>(v: &T) -> ExitCode {
    match serde_json::to_string_pretty(v) {
        Ok(s) => {
            println!("{s}");
            ExitCode::from(exit::OK)
        }
        Err(e) => {
            eprintln!("hbctl: {e}");
            ExitCode::from(exit::FAILURE)
        }
    }
}

fn check(dir: PathBuf, node: Option<String>) -> ExitCode {
    let node = match node {
        Some(n) => n,
        None => match nix::unistd::gethostname() {
            Ok(n) => n.to_string_lossy().into_owned(),
            Err(e) => {
                eprintln!("hbctl: cannot read the host name: {e}; use --node");
                return ExitCode::from(exit::FAILURE);
            }
        },
    };
    let report = config::check(&dir, &node);
    for w in &report.warnings {
        println!("warning: {w}");
    }
    match report.config {
        Some(c) if report.errors.is_empty() => {
            println!(
                "{}: valid for node {} ({} nodes: {}; media: {}; keepalive {:?}, deadtime {:?}; {} resource groups)",
                dir.display(),
                c.node,
                c.ha.nodes.len(),
                c.ha.nodes.join(", "),
                c.ha.media.iter().map(|m| m.name()).collect::<Vec<_>>().join(", "),
                c.ha.keepalive,
                c.ha.deadtime,
                c.haresources.groups.len(),
            );
            ExitCode::from(exit::OK)
        }
        _ => {
            for e in &report.errors {
                eprintln!("{e}");
            }
            eprintln!(
                "{}: {} error(s); hbd would not start",
                dir.display(),
                report.errors.len()
            );
            ExitCode::from(exit::CONFIG)
        }
    }
}

fn node_state(s: NodeState) -> &'static str {
    match s {
        NodeState::Up => "up",
        NodeState::Dead => "dead",
        NodeState::Unknown => "unknown",
    }
}

fn link_state(s: LinkState) -> &'static str {
    match s {
        LinkState::Up => "up",
        LinkState::Dead => "dead",
        LinkState::Unknown => "unknown",
    }
}

/// A unix time as the machine's local civil time.
fn when(t: i64) -> String {
    hbd::jobs::cron::local_civil(t).to_string()
}

fn job_line(j: &hbd::jobs::JobStatus) -> String {
    let last = match (j.last_scheduled, &j.last_summary, j.running) {
        (_, _, true) => "running now".to_string(),
        (Some(t), Some(sum), _) => format!("last {} ({sum})", when(t)),
        (Some(t), None, _) => format!("last {}", when(t)),
        (None, _, _) => "never ran".to_string(),
    };
    let next = match (j.next, j.active) {
        (Some(t), true) => format!("next {}", when(t)),
        (Some(t), false) => format!("next {} where the group runs", when(t)),
        (None, _) => "no next time".to_string(),
    };
    format!("{}  [{}]  {last}; {next}", j.name, j.schedule)
}

fn render_jobs(s: &Status) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    for g in s.groups.iter().filter(|g| !g.jobs.is_empty()) {
        let place = g.owner.as_deref().unwrap_or("no node");
        let _ = writeln!(out, "{} (runs on {place}):", g.id);
        for j in &g.jobs {
            let _ = writeln!(out, "  {}", job_line(j));
        }
    }
    if out.is_empty() {
        out.push_str("no jobs ([[job]] in cluster.toml)\n");
    }
    out
}

/// The single-threaded runtime hbctl's calls run on.
fn runtime() -> Result<tokio::runtime::Runtime, ExitCode> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| {
            eprintln!("hbctl: {e}");
            ExitCode::from(exit::FAILURE)
        })
}

/// `  LABEL: VALUE` when there is a value.
fn labelled(label: &str, value: &Option<String>) -> String {
    value
        .as_ref()
        .map(|v| format!("  {label}: {v}"))
        .unwrap_or_default()
}

fn ms(ms: u64) -> String {
    if ms < 10_000 {
        format!("{ms}ms")
    } else {
        format!("{:.1}s", ms as f64 / 1000.0)
    }
}

/// The human summary, in the spirit of `crm_mon -1`.
fn render_status(s: &Status) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "cluster {} — this node {} (hbd {}, pid {}, up {})",
        s.cluster,
        s.node,
        s.version,
        s.pid,
        ms(s.uptime_ms)
    );
    let _ = writeln!(
        out,
        "keepalive {}, deadtime {}",
        ms(s.keepalive_ms),
        ms(s.deadtime_ms)
    );
    let width = s
        .nodes
        .iter()
        .map(|n| n.name.len())
        .chain(s.ping_nodes.iter().map(|p| p.name.len()))
        .max()
        .unwrap_or(4);
    let _ = writeln!(out, "\nNodes:");
    for n in &s.nodes {
        let _ = writeln!(out, "  {}", render_node(n, &s.node, width));
    }
    if !s.ping_nodes.is_empty() {
        let _ = writeln!(out, "\nPing nodes:");
        for p in &s.ping_nodes {
            let state = match p.state {
                hbd::runtime::ping::PingState::Up => "up",
                hbd::runtime::ping::PingState::Dead => "dead",
                hbd::runtime::ping::PingState::Unknown => "unknown",
            };
            let members = if p.members.is_empty() {
                String::new()
            } else {
                let m: Vec<String> = p.members.iter().map(|a| a.to_string()).collect();
                format!("  ({})", m.join(", "))
            };
            let heard = p
                .last_reply_ms
                .map(|t| format!("  replied {} ago", ms(t)))
                .unwrap_or_default();
            let _ = writeln!(
                out,
                "  {:width$}  {:7}{heard}{members}",
                p.name,
                state,
                width = width
            );
        }
    }
    if !s.groups.is_empty() {
        let _ = writeln!(out, "\nResource groups:");
        for g in &s.groups {
            let place = match &g.owner {
                Some(o) => format!("{} on {o}", g.state.as_str()),
                None => g.state.as_str().to_string(),
            };
            let mut extra = Vec::new();
            extra.push(format!("home {}", g.home));
            if let Some(p) = &g.pref {
                extra.push(format!("{p} asked here"));
            }
            if let Some(n) = &g.note {
                extra.push(n.clone());
            }
            let failed: Vec<String> = g
                .nodes
                .iter()
                .filter(|(_, s)| {
                    matches!(
                        s,
                        hbd::wire::GroupState::Failed | hbd::wire::GroupState::StopFailed
                    )
                })
                .map(|(n, s)| format!("{} on {n}", s.as_str()))
                .collect();
            extra.extend(failed);
            if let Some(u) = &g.unhealthy {
                extra.push(format!("UNHEALTHY here: {u}"));
            }
            let others: Vec<&String> = g.unhealthy_on.iter().filter(|n| **n != s.node).collect();
            if !others.is_empty() {
                let list: Vec<&str> = others.iter().map(|n| n.as_str()).collect();
                extra.push(format!("unhealthy on {}", list.join(", ")));
            }
            let _ = writeln!(out, "  {}  {place}  ({})", g.id, extra.join("; "));
            for r in &g.resources {
                let err = labelled("error", &r.error);
                let _ = writeln!(
                    out,
                    "    {:11} {} [{}]{err}",
                    r.state.as_str(),
                    r.spec,
                    r.agent
                );
            }
            for c in &g.checks {
                let counts = match c.state {
                    hbd::monitor::scheduler::Health::Idle => String::new(),
                    _ => format!("  ok {}× / failed {}×", c.successes, c.failures),
                };
                let err = labelled("last error", &c.last_error);
                let _ = writeln!(
                    out,
                    "    check {:8} {}{counts}{err}",
                    c.state.as_str(),
                    c.name
                );
            }
            for j in &g.jobs {
                let _ = writeln!(out, "    job   {}", job_line(j));
            }
            if let Some(e) = g.events.last() {
                let _ = writeln!(out, "    last event: {e}");
            }
        }
    }
    let dropped: Vec<String> = s
        .counters
        .dropped
        .iter()
        .filter(|(k, v)| **v > 0 && k.as_str() != "own")
        .map(|(k, v)| format!("{k} {v}"))
        .collect();
    if !dropped.is_empty() {
        let _ = writeln!(out, "\nDropped datagrams: {}", dropped.join(", "));
    }
    out
}

fn render_node(n: &NodeStatus, me: &str, width: usize) -> String {
    let mut detail = String::new();
    if n.name == me {
        detail.push_str("this node");
    } else if let Some(ms_ago) = n.last_heard_ms {
        detail.push_str(&format!("heard {} ago", ms(ms_ago)));
    } else {
        detail.push_str("never heard");
    }
    if let Some(r) = n.dead_reason {
        detail.push_str(&format!(
            ", {}",
            match r {
                hbd::membership::DeadReason::Timeout => "deadtime passed",
                hbd::membership::DeadReason::NeverHeard => "not heard within initdead",
                hbd::membership::DeadReason::Left => "left the cluster",
            }
        ));
    }
    let links: Vec<String> = n
        .links
        .iter()
        .map(|l| format!("{}: {}", l.medium, link_state(l.state)))
        .collect();
    format!(
        "{:width$}  {:7}  {:28}  {}",
        n.name,
        node_state(n.state),
        detail,
        links.join(", "),
        width = width
    )
}
