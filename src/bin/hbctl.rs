//! hbctl: the operator's command line for hbd (heartbeat's cl_status,
//! hb_standby and friends in one tool).
//!
//! Exit codes: 0 ok, 1 failure (daemon unreachable...), 2 invalid
//! configuration or usage, 3 refused by the daemon (unknown node...), 4
//! permission denied, 11 a replicated disk refused a state change
//! (`hbctl disk`, as drbdsetup). Two commands answer for scripts and
//! monitoring instead: `nodestatus NODE` exits 1 when the node is dead (as
//! cl_status), `status --check` exits 0 ok, 1 degraded, 2 failed (as a
//! Nagios plugin; 2 also when hbd does not answer).
//!
//! Every `--json` output carries `"schema": 1` (lists are wrapped in an
//! object: `{"schema": 1, "nodes": [...]}`).

use clap::{Parser, Subcommand};
use hbd::ctl::{self, render, ErrorKind, Request, Response};
use hbd::disk::admin::{self, AdminError, DiskAdmin, Op};
use hbd::disk::ctl::DiskRequest;
use hbd::{config, exit};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

/// Control and inspect the hbd cluster daemon.
#[derive(Debug, Parser)]
#[command(version)]
struct Cli {
    /// The daemon's run directory (holds hbd.sock).
    #[arg(long, global = true, value_name = "DIR", default_value = "/run/hbd")]
    run_dir: PathBuf,
    /// The control socket itself (overrides --run-dir).
    #[arg(long, global = true, value_name = "PATH")]
    socket: Option<PathBuf>,
    /// Longest wait for hbd's answer, in seconds [default: 10; standby and
    /// takeover wait their --timeout on top; fence: 600].
    #[arg(long, global = true, value_name = "SECONDS",
          value_parser = clap::value_parser!(u64).range(1..))]
    call_timeout: Option<u64>,
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
        /// One Nagios-style line; exit 0 ok, 1 degraded (a peer, link or
        /// ping node dead, a disk out of sync, a group unhealthy), 2
        /// failed (a group failed or running nowhere, split brain, hbd
        /// not answering).
        #[arg(long, conflicts_with = "json")]
        check: bool,
    },
    /// Print the Prometheus metrics (the text `[metrics] listen` serves).
    Metrics,
    /// Stream every state change, one line each, until interrupted (as
    /// drbdsetup events2): nodes, links, groups, resources, takeover
    /// phases with their durations, checks, disks, split brain.
    Events {
        /// One JSON object per line.
        #[arg(long)]
        json: bool,
        /// Print the current state first (`exists` lines, then `now`).
        #[arg(long)]
        now: bool,
    },
    /// Print one node's state: up, dead or unknown (cl_status nodestatus);
    /// exits 1 when it is dead.
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
        /// Check for the quorum witness (`hbd --witness`): the node is
        /// cluster.toml's `[quorum] witness`.
        #[arg(long)]
        witness: bool,
    },
    /// Give resource groups up to the other node (hb_standby); waits until
    /// they run there.
    Standby {
        /// all, local (groups whose home is this node), foreign, or the
        /// name of a VRRP instance of keepalived.conf (all: the groups and
        /// every instance; an instance gives up MASTER and does not preempt
        /// until takeover).
        #[arg(default_value = "all", value_name = "all|local|foreign|INSTANCE")]
        target: String,
        #[command(flatten)]
        wait: WaitArgs,
    },
    /// Take resource groups over from the other node (hb_takeover); waits
    /// until they run here. With a VRRP instance: it may preempt again (and
    /// does at once when its priority is higher).
    Takeover {
        #[arg(default_value = "all", value_name = "all|local|foreign|INSTANCE")]
        target: String,
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
    /// Fence NODE now with this node's stonith_host devices (power it off or
    /// reboot it, per cluster.toml [fencing] action); waits for the agent.
    Fence { node: String },
    /// The replicated disk, drbdadm's way (works without hbd running):
    /// `hbctl disk VERB RES|all`, and `hbctl disk proc`.
    Disk {
        #[command(flatten)]
        target: DiskTarget,
        /// Longest wait for the device to carry out a request (up, primary,
        /// secondary, down...), in seconds.
        #[arg(long, global = true, value_name = "SECONDS", default_value_t = 120)]
        timeout: u64,
        #[command(subcommand)]
        verb: DiskVerb,
    },
    /// List the replicated resources in split brain and what each side
    /// changed; `resolve RES --survivor NODE` recovers (both nodes, from
    /// either).
    SplitBrain {
        #[command(flatten)]
        target: DiskTarget,
        /// Print the list as JSON.
        #[arg(long)]
        json: bool,
        #[command(subcommand)]
        action: Option<SplitBrainAction>,
    },
    /// Run one resource agent here, without the daemon (heartbeat's
    /// ResourceManager): status exits 0 when running, 3 when stopped.
    Resource {
        /// Configuration directory (for resource.d and cluster.toml).
        #[arg(long, value_name = "DIR", default_value = "/etc/ha.d")]
        config: PathBuf,
        /// This node's name, for drbddisk [default: uname -n].
        #[arg(long, value_name = "NAME")]
        node: Option<String>,
        /// The resource as written in haresources, e.g. IPaddr2::192.0.2.100/24/eth0.
        spec: String,
        #[arg(value_enum)]
        action: ResourceAction,
    },
    /// Write the cluster's configuration for another cluster manager:
    /// `hbctl export pacemaker [--format cib|pcs|crmsh]` (to stdout; what has
    /// no equivalent is named in comments; see docs/MIGRATION.md).
    Export {
        #[arg(value_enum)]
        target: ExportTarget,
        /// cib: a CIB document (cibadmin --replace --xml-file); pcs: a pcs
        /// script; crmsh: crm configure text.
        #[arg(long, value_enum, default_value = "cib")]
        format: ExportFormat,
        /// Configuration directory.
        #[arg(long, value_name = "DIR", default_value = "/etc/ha.d")]
        config: PathBuf,
        /// The node whose view of the files is read [default: uname -n when
        /// it is an ha.cf node, else the first ha.cf node].
        #[arg(long, value_name = "NAME")]
        node: Option<String>,
    },
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum ExportTarget {
    Pacemaker,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum ExportFormat {
    Cib,
    Pcs,
    Crmsh,
}

/// Where `hbctl disk` finds its configuration.
#[derive(Debug, Clone, clap::Args)]
struct DiskTarget {
    /// Configuration directory (drbd.conf, or cluster.toml's [disk]
    /// drbd_conf) [default: the running hbd's (at --run-dir), else
    /// /etc/ha.d].
    #[arg(long, global = true, value_name = "DIR")]
    config: Option<PathBuf>,
    /// This node's name in drbd.conf's `on` sections [default: the running
    /// hbd's, else uname -n].
    #[arg(long, global = true, value_name = "NAME")]
    node: Option<String>,
}

/// The configuration directory `hbctl disk` uses when none is given.
const DEFAULT_CONFIG: &str = "/etc/ha.d";
/// How long `hbctl disk` asks the daemon where it runs from.
const DAEMON_ASK: Duration = Duration::from_secs(2);

impl DiskTarget {
    /// Fills in what was not given from the daemon at `socket` (its
    /// configuration directory and node name), else the defaults.
    fn resolve(self, socket: &Path) -> (PathBuf, Option<String>) {
        if let (Some(c), Some(n)) = (&self.config, &self.node) {
            return (c.clone(), Some(n.clone()));
        }
        let daemon = socket.exists().then(|| {
            runtime().ok().and_then(|rt| {
                match rt.block_on(ctl::call_within(socket, Request::Daemon, DAEMON_ASK)) {
                    Ok(Response::Daemon {
                        node, config_dir, ..
                    }) => Some((config_dir, node)),
                    _ => None,
                }
            })
        });
        match daemon.flatten() {
            // The node name goes with the daemon's directory, not with one given.
            Some((dir, node)) => match self.config {
                Some(c) => (c, self.node),
                None => (dir, self.node.or(Some(node))),
            },
            None => (
                self.config.unwrap_or_else(|| PathBuf::from(DEFAULT_CONFIG)),
                self.node,
            ),
        }
    }
}

#[derive(Debug, Clone, Subcommand)]
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
    /// Start RES's device process here (attach the backing disk, connect to
    /// the peer), as drbdadm up.
    Up { res: String },
    /// Demote, disconnect, detach, and end RES's device process.
    Down { res: String },
    /// Open the backing disk and its metadata.
    Attach { res: String },
    /// Close the backing disk (the device goes Diskless).
    Detach { res: String },
    /// Connect to the peer (from StandAlone).
    Connect {
        res: String,
        /// This node's changes since the split brain are thrown away: it
        /// becomes the resync target.
        #[arg(long)]
        discard_my_data: bool,
    },
    /// Drop the connection to the peer (StandAlone).
    Disconnect { res: String },
    /// Promote: the device becomes writable here.
    Primary {
        res: String,
        /// Promote even when the local disk is not UpToDate.
        #[arg(long)]
        force: bool,
    },
    /// Demote (waits until the device is released).
    Secondary { res: String },
    /// Print the roles, local/peer (Primary/Secondary).
    Role { res: String },
    /// Print the connection state (Connected).
    Cstate { res: String },
    /// Print the disk states, local/peer (UpToDate/UpToDate).
    Dstate { res: String },
    /// Show RES's state (all resources without RES).
    Status {
        res: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Mark the local data Outdated (Secondary only), as drbdadm outdate.
    Outdate { res: String },
    /// Online verify: compare both sides, mark differences out of sync and
    /// resync them from the Primary (from this node if both are Secondary).
    Verify { res: String },
    /// Resync the whole local disk from the peer.
    Invalidate { res: String },
    /// Resync the whole peer's disk from this node.
    InvalidateRemote { res: String },
    /// Pause a resync.
    PauseSync { res: String },
    /// Resume a paused resync.
    ResumeSync { res: String },
    /// Thaw I/O frozen by `fencing resource-and-stonith` (the peer was lost
    /// and the fence-peer handler has not fenced it), as drbdadm resume-io:
    /// only when you know the peer is down or outdated.
    ResumeIo { res: String },
    /// Apply drbd.conf's changes to a running device (starts it when down).
    Adjust { res: String },
    /// /proc/drbd-style lines for every device that is up.
    Proc,
}

impl DiskVerb {
    /// The resource argument (`all` for `proc`).
    fn res(&self) -> &str {
        match self {
            DiskVerb::CreateMd { res, .. }
            | DiskVerb::DumpMd { res }
            | DiskVerb::Up { res }
            | DiskVerb::Down { res }
            | DiskVerb::Attach { res }
            | DiskVerb::Detach { res }
            | DiskVerb::Connect { res, .. }
            | DiskVerb::Disconnect { res }
            | DiskVerb::Primary { res, .. }
            | DiskVerb::Secondary { res }
            | DiskVerb::Role { res }
            | DiskVerb::Cstate { res }
            | DiskVerb::Dstate { res }
            | DiskVerb::Verify { res }
            | DiskVerb::Outdate { res }
            | DiskVerb::Invalidate { res }
            | DiskVerb::InvalidateRemote { res }
            | DiskVerb::PauseSync { res }
            | DiskVerb::ResumeSync { res }
            | DiskVerb::ResumeIo { res }
            | DiskVerb::Adjust { res } => res,
            DiskVerb::Status { res, .. } => res.as_deref().unwrap_or("all"),
            DiskVerb::Proc => "all",
        }
    }

    /// The workflow of a verb on one resource (`None`: `proc`).
    fn op(&self) -> Option<Op> {
        let req = match self {
            DiskVerb::CreateMd { force, .. } => return Some(Op::CreateMd { force: *force }),
            DiskVerb::DumpMd { .. } => return Some(Op::DumpMd),
            DiskVerb::Up { .. } => return Some(Op::Up),
            DiskVerb::Down { .. } => return Some(Op::Down),
            DiskVerb::Role { .. } => return Some(Op::Role),
            DiskVerb::Cstate { .. } => return Some(Op::Cstate),
            DiskVerb::Dstate { .. } => return Some(Op::Dstate),
            DiskVerb::Status { .. } => return Some(Op::Status),
            DiskVerb::Adjust { .. } => return Some(Op::Adjust),
            DiskVerb::Proc => return None,
            DiskVerb::Attach { .. } => DiskRequest::Attach,
            DiskVerb::Detach { .. } => DiskRequest::Detach,
            DiskVerb::Connect {
                discard_my_data, ..
            } => DiskRequest::Connect {
                discard_my_data: *discard_my_data,
            },
            DiskVerb::Disconnect { .. } => DiskRequest::Disconnect,
            DiskVerb::Primary { force, .. } => DiskRequest::Primary { force: *force },
            DiskVerb::Secondary { .. } => DiskRequest::Secondary,
            DiskVerb::Verify { .. } => DiskRequest::Verify,
            DiskVerb::Outdate { .. } => DiskRequest::Outdate,
            DiskVerb::Invalidate { .. } => DiskRequest::Invalidate,
            DiskVerb::InvalidateRemote { .. } => DiskRequest::InvalidateRemote,
            DiskVerb::PauseSync { .. } => DiskRequest::PauseSync,
            DiskVerb::ResumeSync { .. } => DiskRequest::ResumeSync,
            DiskVerb::ResumeIo { .. } => DiskRequest::ResumeIo,
        };
        Some(Op::Request(req))
    }
}

#[derive(Debug, Clone, Subcommand)]
enum SplitBrainAction {
    /// Keep NODE's data: on the other node (the victim) secondary,
    /// disconnect, connect --discard-my-data; on NODE connect; then wait for
    /// the resync and report it.
    Resolve {
        res: String,
        /// The node whose changes are kept.
        #[arg(long, value_name = "NODE")]
        survivor: String,
        /// Longest wait for the resync to finish, in seconds.
        #[arg(long, value_name = "SECONDS", default_value_t = 3600)]
        timeout: u64,
    },
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

/// This node's name: `--node`, else `uname -n`, lower-cased.
fn node_name(node: Option<String>) -> Result<String, ExitCode> {
    match node
        .map(Ok)
        .unwrap_or_else(|| nix::unistd::gethostname().map(|n| n.to_string_lossy().into_owned()))
    {
        Ok(n) => Ok(n.to_lowercase()),
        Err(e) => {
            eprintln!("hbctl: cannot read the host name: {e}; use --node");
            Err(ExitCode::from(exit::FAILURE))
        }
    }
}

/// The disk workflows' configuration for `target`.
fn load_disks(
    target: DiskTarget,
    run_dir: PathBuf,
    socket: &Path,
    timeout: Duration,
) -> Result<DiskAdmin, ExitCode> {
    let (config, node) = target.resolve(socket);
    let node = node_name(node)?;
    DiskAdmin::load(&config, node, run_dir, timeout).map_err(|e| ExitCode::from(fail(&e)))
}

/// Prints a disk workflow's error (as drbdsetup) and returns its exit code.
fn fail(e: &AdminError) -> u8 {
    match e {
        AdminError::Config(errors) => eprintln!("{errors}"),
        e => eprintln!("hbctl: {e}"),
    }
    if let Some(advice) = e.advice() {
        eprintln!("hbctl: {advice}");
    }
    disk_code(e)
}

/// The exit code of a disk workflow's error.
fn disk_code(e: &AdminError) -> u8 {
    match e {
        AdminError::Config(_)
        | AdminError::NoDrbdConf { .. }
        | AdminError::KernelDriver { .. }
        | AdminError::NoPeer { .. } => exit::CONFIG,
        AdminError::NoResource { .. }
        | AdminError::NoHost { .. }
        | AdminError::MetaExists { .. }
        | AdminError::NotANode { .. } => exit::REFUSED,
        AdminError::Refused { .. } | AdminError::StepRefused { .. } => exit::DISK_REFUSED,
        AdminError::NotDemoted { source, .. } => disk_code(source),
        AdminError::Failed { .. }
        | AdminError::NotUp { .. }
        | AdminError::Device(_)
        | AdminError::Meta { .. }
        | AdminError::StepFailed { .. }
        | AdminError::NotUpHere { .. }
        | AdminError::StandAloneAgain { .. }
        | AdminError::NotInSync { .. }
        | AdminError::Output(_) => exit::FAILURE,
    }
}

/// `hbctl disk`: drbdadm's verbs on this node's devices.
fn disk(
    target: DiskTarget,
    run_dir: PathBuf,
    socket: &Path,
    timeout: u64,
    verb: DiskVerb,
) -> ExitCode {
    let admin = match load_disks(target, run_dir, socket, Duration::from_secs(timeout)) {
        Ok(a) => a,
        Err(code) => return code,
    };
    let chosen = match admin.chosen(verb.res()) {
        Ok(c) => c,
        Err(e) => return ExitCode::from(fail(&e)),
    };
    let Some(op) = verb.op() else {
        print!("{}", admin.proc_text());
        return ExitCode::from(exit::OK);
    };
    if let Err(e) = admin.check_driver(&op) {
        return ExitCode::from(fail(&e));
    }
    let mut code = exit::OK;
    if let DiskVerb::Status { json: true, .. } = verb {
        let mut out = Vec::new();
        for answer in admin.status_json(&chosen) {
            match answer {
                Ok(v) => out.push(v),
                Err(e) => code = code.max(fail(&e)),
            }
        }
        return match print_json("disks", &out) {
            c if code == exit::OK => c,
            _ => ExitCode::from(code),
        };
    }
    for r in chosen {
        match admin.run(r, &op) {
            Ok(text) => print!("{text}"),
            Err(e) => code = code.max(fail(&e)),
        }
    }
    ExitCode::from(code)
}

/// `hbctl split-brain [--json]` and `hbctl split-brain resolve`.
fn split_brain(
    target: DiskTarget,
    run_dir: PathBuf,
    socket: &Path,
    json: bool,
    action: Option<SplitBrainAction>,
) -> ExitCode {
    let admin = match load_disks(target, run_dir, socket, Duration::from_secs(120)) {
        Ok(a) => a,
        Err(code) => return code,
    };
    if let Some(SplitBrainAction::Resolve {
        res,
        survivor,
        timeout,
    }) = action
    {
        let done = admin.resolve(
            &res,
            &survivor.to_lowercase(),
            Duration::from_secs(timeout),
            &mut std::io::stdout(),
        );
        return ExitCode::from(done.map_or_else(|e| fail(&e), |()| exit::OK));
    }
    let mut found = Vec::new();
    let mut code = exit::OK;
    for answer in admin.split_brains() {
        match answer {
            Ok(s) => found.push(s),
            Err(e) => code = code.max(fail(&e)),
        }
    }
    if json {
        let c = print_json("split_brains", &admin::split_brain_entries(&found));
        return if code == exit::OK {
            c
        } else {
            ExitCode::from(code)
        };
    }
    if found.is_empty() && code == exit::OK {
        println!("no split brain");
    }
    print!("{}", admin::split_brain_text(&found));
    ExitCode::from(code)
}

/// `hbctl resource`: resolves SPEC as the daemon would and runs one action.
fn resource(
    dir: PathBuf,
    spec: &str,
    action: ResourceAction,
    node: &str,
    run_dir: &Path,
) -> ExitCode {
    use hbd::agents::{Action, Running};
    let mut r = match config::load_resource(&dir, spec) {
        Ok(r) => r,
        Err(e) => {
            match e {
                config::ResourceError::Config(errors) => eprintln!("{errors}"),
                e => eprintln!("hbctl: {e}"),
            }
            return ExitCode::from(exit::CONFIG);
        }
    };
    r.set_context(node, run_dir);
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
    let action = match action {
        ResourceAction::Start => Action::Start,
        ResourceAction::Stop => Action::Stop,
        ResourceAction::Status => Action::Status,
    };
    match (action, rt.block_on(r.run_once(action))) {
        (_, Err(e)) => {
            eprintln!("hbctl: {spec}: {e}");
            ExitCode::from(exit::FAILURE)
        }
        (Action::Status, Ok(Running::Stopped)) => {
            println!("stopped");
            ExitCode::from(exit::REFUSED)
        }
        (Action::Status, Ok(Running::Running)) => {
            println!("running");
            ExitCode::from(exit::OK)
        }
        (_, Ok(_)) => ExitCode::from(exit::OK),
    }
}

fn main() -> ExitCode {
    if let Some(code) = hbd::manual::generate_if_asked::<Cli>("hbctl") {
        return code;
    }
    let cli = Cli::parse();
    let socket = cli
        .socket
        .clone()
        .unwrap_or_else(|| ctl::socket_path(&cli.run_dir));
    let request = match cli.command {
        Command::Check {
            config,
            node,
            witness,
        } => return check(config, node, witness),
        Command::Export {
            target: ExportTarget::Pacemaker,
            format,
            config,
            node,
        } => return export_pacemaker(config, node, format),
        Command::Resource {
            config,
            node,
            spec,
            action,
        } => {
            let node = match node_name(node) {
                Ok(n) => n,
                Err(code) => return code,
            };
            return resource(config, &spec, action, &node, &cli.run_dir);
        }
        Command::Disk {
            target,
            timeout,
            verb,
        } => return disk(target, cli.run_dir, &socket, timeout, verb),
        Command::SplitBrain {
            target,
            json,
            action,
        } => return split_brain(target, cli.run_dir, &socket, json, action),
        Command::Events { json, now } => return events(&socket, json, now),
        Command::Status { check: true, .. } => return status_check(&socket, cli.call_timeout),
        Command::Status { .. } => Request::Status,
        Command::Metrics => Request::Metrics,
        Command::Nodestatus { ref node, .. } => Request::NodeStatus { node: node.clone() },
        Command::Listnodes { .. } => Request::ListNodes,
        Command::Links { ref node, .. } => Request::NodeStatus { node: node.clone() },
        Command::Standby {
            ref target,
            ref wait,
        } => {
            let (scope, instance) = target_of(target);
            Request::Standby {
                scope,
                wait_ms: wait.wait_ms(),
                instance,
            }
        }
        Command::Takeover {
            ref target,
            ref wait,
        } => {
            let (scope, instance) = target_of(target);
            Request::Takeover {
                scope,
                wait_ms: wait.wait_ms(),
                instance,
            }
        }
        Command::Jobs { .. } => Request::Status,
        Command::Clear { ref group } => Request::Clear {
            group: group.clone(),
        },
        Command::Fence { ref node } => Request::Fence { node: node.clone() },
    };
    let rt = match runtime() {
        Ok(rt) => rt,
        Err(code) => return code,
    };
    let limit = call_limit(cli.call_timeout, &cli.command);
    let response = match rt.block_on(ctl::call_within(&socket, request, limit)) {
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
            print!("{}", render::moves(&groups, &moves));
            ExitCode::from(exit::OK)
        }
        (Command::Fence { .. }, Response::Fenced { node, message }) => {
            println!("{node} fenced: {message}");
            ExitCode::from(exit::OK)
        }
        (Command::Jobs { json: true }, Response::Status(s)) => {
            let jobs: Vec<_> = s.groups.iter().flat_map(|g| g.jobs.iter()).collect();
            print_json("jobs", &jobs)
        }
        (Command::Jobs { json: false }, Response::Status(s)) => {
            print!("{}", render::jobs(&s));
            ExitCode::from(exit::OK)
        }
        (Command::Status { json: true, .. }, Response::Status(s)) => print_json("status", &s),
        (Command::Status { json: false, .. }, Response::Status(s)) => {
            print!("{}", render::status(&s));
            ExitCode::from(exit::OK)
        }
        (Command::Nodestatus { json, .. }, Response::NodeStatus(n)) => {
            let code = if json {
                print_json("node", &n)
            } else {
                println!("{}", render::node_state(n.state));
                ExitCode::from(exit::OK)
            };
            // cl_status nodestatus: a dead node is a non-zero exit.
            if n.state == hbd::membership::NodeState::Dead {
                ExitCode::from(exit::FAILURE)
            } else {
                code
            }
        }
        (Command::Metrics, Response::Metrics { text }) => {
            print!("{text}");
            ExitCode::from(exit::OK)
        }
        (Command::Listnodes { json: true }, Response::Nodes { nodes }) => {
            print_json("nodes", &nodes)
        }
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
                return print_json("links", &links);
            }
            for l in links {
                if medium.is_some() {
                    println!("{}", render::link_state(l.state));
                } else {
                    println!("{}\t{}", l.medium, render::link_state(l.state));
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

/// Prints `v` as JSON with its schema version ([`ctl::with_schema`]; a
/// list is wrapped under `key`).
fn print_json<T: serde::Serialize>(key: &str, v: &T) -> ExitCode {
    let doc = serde_json::to_value(v).map(|v| ctl::with_schema(key, v));
    match doc.and_then(|d| serde_json::to_string_pretty(&d)) {
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

/// `hbctl status --check`: one line and the verdict as the exit code.
fn status_check(socket: &Path, call_timeout: Option<u64>) -> ExitCode {
    let limit = call_timeout.map_or(CALL_TIMEOUT, Duration::from_secs);
    let answer = runtime()
        .map_err(|_| "no runtime".to_string())
        .and_then(|rt| {
            rt.block_on(ctl::call_within(socket, Request::Status, limit))
                .map_err(|e| e.to_string())
        });
    match answer {
        Ok(Response::Status(s)) => {
            let (health, line) = render::check(&s);
            println!("{line}");
            ExitCode::from(health.code())
        }
        Ok(Response::Error { message, .. }) => {
            println!("HBD CRITICAL - {message}");
            ExitCode::from(render::Health::Failed.code())
        }
        Ok(other) => {
            println!("HBD CRITICAL - unexpected answer {other:?}");
            ExitCode::from(render::Health::Failed.code())
        }
        Err(e) => {
            println!("HBD CRITICAL - {e}");
            ExitCode::from(render::Health::Failed.code())
        }
    }
}

/// `hbctl events`: prints each event as it comes, until the daemon goes or
/// the output is closed.
fn events(socket: &Path, json: bool, now: bool) -> ExitCode {
    use futures::StreamExt;
    use std::io::Write;
    let rt = match runtime() {
        Ok(rt) => rt,
        Err(code) => return code,
    };
    rt.block_on(async {
        let mut conn = match ctl::subscribe(socket, now).await {
            Ok(c) => c,
            Err(e) => {
                eprintln!("hbctl: {e}");
                return ExitCode::from(exit::FAILURE);
            }
        };
        let mut out = std::io::stdout().lock();
        while let Some(answer) = conn.next().await {
            let line = match answer {
                Ok(Response::Event(e)) if json => match serde_json::to_string(&e) {
                    Ok(l) => l,
                    Err(e) => {
                        eprintln!("hbctl: {e}");
                        return ExitCode::from(exit::FAILURE);
                    }
                },
                Ok(Response::Event(e)) => e.line(),
                Ok(Response::Error { kind, message }) => {
                    eprintln!("hbctl: {message}");
                    return ExitCode::from(match kind {
                        ErrorKind::PermissionDenied => exit::PERMISSION,
                        ErrorKind::Refused | ErrorKind::NotFound => exit::REFUSED,
                        _ => exit::FAILURE,
                    });
                }
                Ok(other) => {
                    eprintln!("hbctl: unexpected answer from the daemon: {other:?}");
                    return ExitCode::from(exit::FAILURE);
                }
                Err(e) => {
                    eprintln!("hbctl: {e}");
                    return ExitCode::from(exit::FAILURE);
                }
            };
            // Each line at once (a pipe to grep or a test reads them live);
            // a closed output ends the stream.
            if writeln!(out, "{line}").and_then(|()| out.flush()).is_err() {
                return ExitCode::from(exit::OK);
            }
        }
        eprintln!("hbctl: the daemon closed the event stream");
        ExitCode::from(exit::FAILURE)
    })
}

fn check(dir: PathBuf, node: Option<String>, witness: bool) -> ExitCode {
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
    let mut report = if witness {
        config::check_witness(&dir, &node)
    } else {
        config::check(&dir, &node)
    };
    // The agents' own validate-all (OCF agents, and the scripts that know
    // it), once the files are right; the witness runs no resource.
    if let (false, Some(c)) = (witness, &report.config) {
        if report.errors.is_empty() {
            let (errors, warnings) = config::validate_agents(&c.groups);
            report.errors.extend(errors);
            report.warnings.extend(warnings);
        }
    }
    for w in &report.warnings {
        println!("warning: {w}");
    }
    match report.config {
        Some(c) if report.errors.is_empty() => {
            println!("{}", c.summary(&dir));
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

/// `hbctl export pacemaker`: loads the configuration as `hbctl check` does
/// (errors: exit 2) and prints it in `format`.
fn export_pacemaker(dir: PathBuf, node: Option<String>, format: ExportFormat) -> ExitCode {
    // The export is the cluster's, not one node's: any ha.cf node reads the
    // same files, so a machine outside the cluster (an admin's laptop) may
    // export too.
    let node = match node {
        Some(n) => n.to_lowercase(),
        None => {
            let host = nix::unistd::gethostname()
                .map(|n| n.to_string_lossy().to_lowercase())
                .unwrap_or_default();
            let hacf = dir.join("ha.cf");
            let nodes = std::fs::read_to_string(&hacf)
                .map(|t| config::parse_ha_cf(&hacf, &t).0.nodes)
                .unwrap_or_default();
            if nodes.contains(&host) || nodes.is_empty() {
                host
            } else {
                nodes[0].clone()
            }
        }
    };
    let report = config::check(&dir, &node);
    for w in &report.warnings {
        eprintln!("warning: {w}");
    }
    let c = match report.config {
        Some(c) if report.errors.is_empty() => c,
        _ => {
            for e in &report.errors {
                eprintln!("{e}");
            }
            eprintln!(
                "{}: {} error(s); fix them first (hbctl check)",
                dir.display(),
                report.errors.len()
            );
            return ExitCode::from(exit::CONFIG);
        }
    };
    if c.vrrp_only {
        eprintln!(
            "{}: VRRP mode only (keepalived.conf, no ha.cf): nothing for Pacemaker; keep \
             keepalived",
            dir.display()
        );
        return ExitCode::from(exit::CONFIG);
    }
    let format = match format {
        ExportFormat::Cib => hbd::export::Format::Cib,
        ExportFormat::Pcs => hbd::export::Format::Pcs,
        ExportFormat::Crmsh => hbd::export::Format::Crmsh,
    };
    print!("{}", hbd::export::export(&c, format));
    ExitCode::from(exit::OK)
}

/// How long hbctl waits for hbd by default: it answers queries at once.
const CALL_TIMEOUT: Duration = Duration::from_secs(10);
/// `fence` waits for the fence agents (each up to `[fencing] timeout`).
const FENCE_CALL_TIMEOUT: Duration = Duration::from_secs(600);

/// `--call-timeout` (or its default) for `command`; standby and takeover
/// wait for the groups to move on top of it.
fn call_limit(seconds: Option<u64>, command: &Command) -> Duration {
    let given = seconds.map(Duration::from_secs);
    match command {
        Command::Standby { wait, .. } | Command::Takeover { wait, .. } => {
            given.unwrap_or(CALL_TIMEOUT) + Duration::from_millis(wait.wait_ms().unwrap_or(0))
        }
        Command::Fence { .. } => given.unwrap_or(FENCE_CALL_TIMEOUT),
        _ => given.unwrap_or(CALL_TIMEOUT),
    }
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

/// `all`, `local`, `foreign`: a group scope; anything else: a VRRP instance.
fn target_of(target: &str) -> (ctl::Scope, Option<String>) {
    match target {
        "all" => (ctl::Scope::All, None),
        "local" => (ctl::Scope::Local, None),
        "foreign" => (ctl::Scope::Foreign, None),
        name => (ctl::Scope::All, Some(name.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Cli {
        Cli::try_parse_from(std::iter::once("hbctl").chain(args.iter().copied())).unwrap()
    }

    fn verb(args: &[&str]) -> DiskVerb {
        match parse(args).command {
            Command::Disk { verb, .. } => verb,
            c => panic!("{c:?}"),
        }
    }

    #[test]
    fn call_timeouts() {
        let limit = |args: &[&str]| {
            let cli = parse(args);
            call_limit(cli.call_timeout, &cli.command)
        };
        let s = Duration::from_secs;
        assert_eq!(limit(&["status"]), CALL_TIMEOUT);
        assert_eq!(limit(&["status", "--call-timeout", "3"]), s(3));
        assert_eq!(limit(&["--call-timeout", "3", "listnodes"]), s(3));
        assert_eq!(limit(&["standby", "--timeout", "60"]), CALL_TIMEOUT + s(60));
        assert_eq!(limit(&["takeover", "--no-wait"]), CALL_TIMEOUT);
        assert_eq!(limit(&["fence", "n2"]), FENCE_CALL_TIMEOUT);
        assert_eq!(limit(&["fence", "n2", "--call-timeout", "30"]), s(30));
        assert!(Cli::try_parse_from(["hbctl", "--call-timeout", "0", "status"]).is_err());
    }

    #[test]
    fn disk_verbs_parse() {
        let cli = parse(&[
            "--run-dir",
            "/tmp/r",
            "disk",
            "--config",
            "/c",
            "--node",
            "a",
            "primary",
            "r0",
            "--force",
        ]);
        assert_eq!(cli.run_dir, PathBuf::from("/tmp/r"));
        match cli.command {
            Command::Disk {
                target,
                timeout,
                verb: DiskVerb::Primary { res, force: true },
            } => {
                assert_eq!(target.config, Some(PathBuf::from("/c")));
                assert_eq!(target.node.as_deref(), Some("a"));
                assert_eq!(timeout, 120);
                assert_eq!(res, "r0");
            }
            c => panic!("{c:?}"),
        }
        // The options after the verb too.
        let cli = parse(&[
            "disk",
            "up",
            "all",
            "--run-dir",
            "/x",
            "--node",
            "b",
            "--config",
            "/d",
            "--timeout",
            "5",
        ]);
        assert_eq!(cli.run_dir, PathBuf::from("/x"));
        match cli.command {
            Command::Disk {
                target, timeout, ..
            } => {
                assert_eq!(target.config, Some(PathBuf::from("/d")));
                assert_eq!(target.node.as_deref(), Some("b"));
                assert_eq!(timeout, 5);
            }
            c => panic!("{c:?}"),
        }
        match parse(&[
            "split-brain",
            "resolve",
            "r0",
            "--survivor",
            "a",
            "--node",
            "b",
        ])
        .command
        {
            Command::SplitBrain { target, .. } => assert_eq!(target.node.as_deref(), Some("b")),
            c => panic!("{c:?}"),
        }
        assert!(matches!(
            verb(&["disk", "connect", "--discard-my-data", "r0"]),
            DiskVerb::Connect {
                discard_my_data: true,
                ..
            }
        ));
        assert!(matches!(
            verb(&["disk", "connect", "r0"]),
            DiskVerb::Connect {
                discard_my_data: false,
                ..
            }
        ));
        assert!(matches!(
            verb(&["disk", "status", "--json"]),
            DiskVerb::Status {
                res: None,
                json: true
            }
        ));
        assert!(matches!(verb(&["disk", "proc"]), DiskVerb::Proc));
        for (words, op) in [
            ("attach", Op::Request(DiskRequest::Attach)),
            ("detach", Op::Request(DiskRequest::Detach)),
            ("disconnect", Op::Request(DiskRequest::Disconnect)),
            ("secondary", Op::Request(DiskRequest::Secondary)),
            ("verify", Op::Request(DiskRequest::Verify)),
            ("outdate", Op::Request(DiskRequest::Outdate)),
            ("invalidate", Op::Request(DiskRequest::Invalidate)),
            (
                "invalidate-remote",
                Op::Request(DiskRequest::InvalidateRemote),
            ),
            ("pause-sync", Op::Request(DiskRequest::PauseSync)),
            ("resume-sync", Op::Request(DiskRequest::ResumeSync)),
            ("resume-io", Op::Request(DiskRequest::ResumeIo)),
            ("adjust", Op::Adjust),
        ] {
            let v = verb(&["disk", words, "r0"]);
            assert_eq!(v.res(), "r0");
            assert_eq!(v.op(), Some(op), "{words}");
        }
        for (words, op) in [
            ("role", Op::Role),
            ("cstate", Op::Cstate),
            ("dstate", Op::Dstate),
            ("up", Op::Up),
            ("down", Op::Down),
            ("create-md", Op::CreateMd { force: false }),
            ("dump-md", Op::DumpMd),
        ] {
            let v = verb(&["disk", words, "all"]);
            assert_eq!(v.res(), "all");
            assert_eq!(v.op(), Some(op), "{words}");
        }
        assert_eq!(verb(&["disk", "proc"]).op(), None);
        assert!(Cli::try_parse_from(["hbctl", "disk", "primary"]).is_err());
        assert!(Cli::try_parse_from(["hbctl", "disk", "frob", "r0"]).is_err());
        match parse(&["split-brain", "resolve", "r0", "--survivor", "b"]).command {
            Command::SplitBrain {
                action: Some(SplitBrainAction::Resolve { res, survivor, .. }),
                json: false,
                ..
            } => assert_eq!((res.as_str(), survivor.as_str()), ("r0", "b")),
            c => panic!("{c:?}"),
        }
        assert!(matches!(
            parse(&["split-brain", "--json"]).command,
            Command::SplitBrain {
                action: None,
                json: true,
                ..
            }
        ));
        assert!(Cli::try_parse_from(["hbctl", "split-brain", "resolve", "r0"]).is_err());
    }
}
