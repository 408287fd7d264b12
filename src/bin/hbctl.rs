//! hbctl: the operator's command line for hbd (heartbeat's cl_status,
//! hb_standby and friends in one tool).
//!
//! Exit codes: 0 ok, 1 failure (daemon unreachable...), 2 invalid
//! configuration or usage, 3 refused by the daemon (unknown node...), 4
//! permission denied, 11 a replicated disk refused a state change
//! (`hbctl disk`, as drbdsetup).

use clap::{Parser, Subcommand};
use hbd::ctl::{self, render, ErrorKind, Request, Response};
use hbd::disk::client;
use hbd::disk::conf::ResourceConf;
use hbd::disk::ctl::{DiskRequest, DiskResponse, DiskStatus, SyncStatus};
use hbd::disk::report;
use hbd::disk::state::{ConnState, DiskState, Role};
use hbd::{config, exit};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

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
}

/// Where `hbctl disk` finds its configuration.
#[derive(Debug, Clone, clap::Args)]
struct DiskTarget {
    /// Configuration directory (drbd.conf, or cluster.toml's [disk] drbd_conf).
    #[arg(long, global = true, value_name = "DIR", default_value = "/etc/ha.d")]
    config: PathBuf,
    /// This node's name in drbd.conf's `on` sections [default: uname -n].
    #[arg(long, global = true, value_name = "NAME")]
    node: Option<String>,
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

    /// The device request of a plain state-change verb.
    fn request(&self) -> Option<DiskRequest> {
        Some(match self {
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
            DiskVerb::Adjust { .. } => DiskRequest::Adjust,
            _ => return None,
        })
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

/// What `hbctl disk` and `hbctl split-brain` work with.
struct DiskCtx {
    config_dir: PathBuf,
    node: String,
    run_dir: PathBuf,
    timeout: Duration,
    drbd: hbd::disk::conf::DrbdConf,
    /// cluster.toml's `[disk] driver` means the DRBD kernel module here.
    kernel: bool,
}

impl DiskCtx {
    fn load(target: DiskTarget, run_dir: PathBuf, timeout: Duration) -> Result<DiskCtx, ExitCode> {
        let node = node_name(target.node)?;
        let c = match config::load(&target.config, &node) {
            Ok(c) => c,
            Err(errors) => {
                eprintln!("{errors}");
                return Err(ExitCode::from(exit::CONFIG));
            }
        };
        let Some(drbd) = c.drbd else {
            eprintln!(
                "hbctl: no drbd.conf in {} (nor [disk] drbd_conf in cluster.toml)",
                target.config.display()
            );
            return Err(ExitCode::from(exit::CONFIG));
        };
        let kernel = c.cluster.disk.driver.unwrap_or_default().is_kernel();
        Ok(DiskCtx {
            config_dir: target.config,
            node,
            run_dir,
            timeout,
            drbd,
            kernel,
        })
    }

    /// The resources `res` names (`all`: every one), with their index in
    /// drbd.conf; an unknown name is reported.
    fn chosen(&self, res: &str) -> Result<Vec<(usize, &ResourceConf)>, ExitCode> {
        let chosen: Vec<_> = self
            .drbd
            .resources
            .iter()
            .enumerate()
            .filter(|(_, r)| res == "all" || r.name == res)
            .collect();
        if chosen.is_empty() {
            let names: Vec<&str> = self
                .drbd
                .resources
                .iter()
                .map(|r| r.name.as_str())
                .collect();
            eprintln!("hbctl: no resource {res} (resources: {})", names.join(", "));
            return Err(ExitCode::from(exit::REFUSED));
        }
        Ok(chosen)
    }

    /// How long a query (status, role...) may take.
    fn query_timeout(&self) -> Duration {
        self.timeout.min(QUERY_TIMEOUT)
    }

    fn ask(&self, res: &str, req: DiskRequest, timeout: Duration) -> Asked {
        match client::request_raw(&self.run_dir, res, req, timeout) {
            Ok(DiskResponse::Done { status, message }) => Asked::Done(status, message),
            Ok(DiskResponse::Refused { message, .. }) => Asked::Refused(message),
            Ok(DiskResponse::Failed { message }) => Asked::Failed(message),
            Err(client::RequestError::NotUp { .. }) => Asked::NotUp,
            Err(e) => Asked::Failed(e.to_string()),
        }
    }
}

/// Queries (status, role...) answer within this, or the device is reported
/// unresponsive.
const QUERY_TIMEOUT: Duration = Duration::from_secs(10);

/// A device's answer, as hbctl acts on it.
enum Asked {
    Done(Box<DiskStatus>, Option<String>),
    Refused(String),
    Failed(String),
    NotUp,
}

impl Asked {
    /// Prints what went wrong (as drbdsetup) and returns the exit code;
    /// `Done` prints its message, if any.
    fn report(self, res: &str) -> u8 {
        match self {
            Asked::Done(_, Some(m)) => {
                println!("{res}: {m}");
                exit::OK
            }
            Asked::Done(_, None) => exit::OK,
            Asked::Refused(m) => {
                eprintln!("hbctl: {res}: State change failed: {m}");
                exit::DISK_REFUSED
            }
            Asked::Failed(m) => {
                eprintln!("hbctl: {res}: {m}");
                exit::FAILURE
            }
            Asked::NotUp => {
                eprintln!("hbctl: {res}: not up (hbctl disk up {res})");
                exit::FAILURE
            }
        }
    }
}

/// `hbctl disk`: drbdadm's verbs on this node's devices.
fn disk(target: DiskTarget, run_dir: PathBuf, timeout: u64, verb: DiskVerb) -> ExitCode {
    let ctx = match DiskCtx::load(target, run_dir, Duration::from_secs(timeout)) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let chosen = match ctx.chosen(verb.res()) {
        Ok(c) => c,
        Err(code) => return code,
    };
    if let DiskVerb::Proc = verb {
        return disk_proc(&ctx);
    }
    if ctx.kernel && matches!(verb, DiskVerb::Up { .. } | DiskVerb::Adjust { .. }) {
        // Never start hbd's device on a disk the kernel module drives.
        eprintln!(
            "hbctl: cluster.toml [disk] driver is kernel{}: the DRBD module drives these \
             resources; use drbdadm (or set driver = \"embedded\")",
            if std::path::Path::new("/proc/drbd").exists() {
                " (or auto, and /proc/drbd exists)"
            } else {
                ""
            }
        );
        return ExitCode::from(exit::CONFIG);
    }
    if let DiskVerb::Status { json: true, .. } = verb {
        let mut out = Vec::new();
        let mut code = exit::OK;
        for (_, r) in &chosen {
            match ctx.ask(&r.name, DiskRequest::Status, ctx.query_timeout()) {
                Asked::Done(s, _) => out.push(serde_json::to_value(&*s).unwrap_or_default()),
                Asked::NotUp => out.push(serde_json::json!({
                    "name": r.name,
                    "connection": "Unconfigured",
                })),
                other => code = code.max(other.report(&r.name)),
            }
        }
        return match print_json(&out) {
            c if code == exit::OK => c,
            _ => ExitCode::from(code),
        };
    }
    let mut code = exit::OK;
    for (_, r) in chosen {
        let res = r.name.as_str();
        if r.host(&ctx.node).is_none() {
            eprintln!("hbctl: {res}: no `on {}` section", ctx.node);
            code = code.max(exit::REFUSED);
            continue;
        }
        let c = match &verb {
            DiskVerb::CreateMd { .. } | DiskVerb::DumpMd { .. } => disk_md(&ctx, r, &verb),
            DiskVerb::Up { .. } => {
                match client::up(&ctx.config_dir, &ctx.node, &ctx.run_dir, res, ctx.timeout) {
                    Ok(s) => {
                        println!(
                            "{res}: up: {}/{} {} {}/{}",
                            s.role, s.peer_role, s.connection, s.disk, s.peer_disk
                        );
                        exit::OK
                    }
                    Err(e) => {
                        eprintln!("hbctl: {e}");
                        exit::FAILURE
                    }
                }
            }
            DiskVerb::Down { .. } => match client::down(&ctx.run_dir, res, ctx.timeout) {
                Ok(None) | Ok(Some(DiskResponse::Done { .. })) => exit::OK,
                Ok(Some(DiskResponse::Refused { message, .. })) => {
                    Asked::Refused(message).report(res)
                }
                Ok(Some(DiskResponse::Failed { message })) => Asked::Failed(message).report(res),
                Err(e) => {
                    eprintln!("hbctl: {e}");
                    exit::FAILURE
                }
            },
            DiskVerb::Role { .. } | DiskVerb::Cstate { .. } | DiskVerb::Dstate { .. } => {
                match ctx.ask(res, DiskRequest::Status, ctx.query_timeout()) {
                    Asked::Done(s, _) => {
                        println!("{}", state_word(&verb, &s));
                        exit::OK
                    }
                    // drbdadm prints this for a resource that is down.
                    Asked::NotUp => {
                        println!("Unconfigured");
                        exit::OK
                    }
                    other => other.report(res),
                }
            }
            DiskVerb::Status { .. } => {
                match ctx.ask(res, DiskRequest::Status, ctx.query_timeout()) {
                    Asked::Done(s, _) => {
                        print!("{}", report::status_text(&s));
                        exit::OK
                    }
                    Asked::NotUp => {
                        println!("{res} Unconfigured");
                        exit::OK
                    }
                    other => other.report(res),
                }
            }
            DiskVerb::Adjust { .. } => match ctx.ask(res, DiskRequest::Adjust, ctx.timeout) {
                // drbdadm adjust brings a resource that is down up.
                Asked::NotUp => {
                    match client::up(&ctx.config_dir, &ctx.node, &ctx.run_dir, res, ctx.timeout) {
                        Ok(_) => exit::OK,
                        Err(e) => {
                            eprintln!("hbctl: {e}");
                            exit::FAILURE
                        }
                    }
                }
                other => other.report(res),
            },
            v => match v.request() {
                Some(req) => ctx.ask(res, req, ctx.timeout).report(res),
                None => exit::FAILURE,
            },
        };
        code = code.max(c);
    }
    ExitCode::from(code)
}

/// What `role`, `cstate` and `dstate` print, as drbdadm 8.4.
fn state_word(verb: &DiskVerb, s: &DiskStatus) -> String {
    match verb {
        DiskVerb::Role { .. } => format!("{}/{}", s.role, s.peer_role),
        DiskVerb::Dstate { .. } => format!("{}/{}", s.disk, s.peer_disk),
        _ => s.connection.to_string(),
    }
}

/// `hbctl disk proc`: /proc/drbd for every configured device that is up.
fn disk_proc(ctx: &DiskCtx) -> ExitCode {
    let mut statuses = Vec::new();
    for (i, r) in ctx.drbd.resources.iter().enumerate() {
        if let Ok(s) = client::status(&ctx.run_dir, &r.name, ctx.query_timeout()) {
            let minor = r
                .host(&ctx.node)
                .and_then(|h| h.minor)
                .unwrap_or_else(|| report::minor_of(&s.device, i as u32));
            statuses.push((minor, s));
        }
    }
    statuses.sort_by_key(|(m, _)| *m);
    let refs: Vec<(u32, Option<&DiskStatus>)> =
        statuses.iter().map(|(m, s)| (*m, Some(s))).collect();
    print!("{}", report::proc_lines_with_minors(&refs));
    ExitCode::from(exit::OK)
}

/// `create-md` and `dump-md` on this node's backing disk of `r`.
fn disk_md(ctx: &DiskCtx, r: &ResourceConf, verb: &DiskVerb) -> u8 {
    use hbd::disk::meta;
    let Some(host) = r.host(&ctx.node) else {
        return exit::REFUSED;
    };
    let disk = host.disk.display();
    match verb {
        DiskVerb::CreateMd { force, .. } => match meta::create(&host.disk, *force) {
            Ok(m) => {
                println!(
                    "{}: metadata created on {disk}: data area {} bytes, metadata from byte {}",
                    r.name, m.layout.data_size, m.layout.al_offset
                );
                exit::OK
            }
            Err(meta::MetaError::Exists) => {
                eprintln!(
                    "hbctl: {}: {disk} already has valid metadata; --force overwrites it \
                     (its generation UUIDs and bitmap are lost)",
                    r.name
                );
                exit::REFUSED
            }
            Err(e) => {
                eprintln!("hbctl: {}: {disk}: {e}", r.name);
                exit::FAILURE
            }
        },
        _ => match meta::open(&host.disk) {
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
                exit::OK
            }
            Err(e) => {
                eprintln!("hbctl: {}: {disk}: {e}", r.name);
                exit::FAILURE
            }
        },
    }
}

/// One resource in split brain, for `hbctl split-brain --json`.
#[derive(serde::Serialize)]
struct SplitBrainEntry<'a> {
    name: &'a str,
    node: &'a str,
    peer: &'a str,
    role: String,
    connection: String,
    split_brain: &'a hbd::disk::ctl::SplitBrainStatus,
}

/// `hbctl split-brain [--json]` and `hbctl split-brain resolve`.
fn split_brain(
    target: DiskTarget,
    run_dir: PathBuf,
    json: bool,
    action: Option<SplitBrainAction>,
) -> ExitCode {
    let ctx = match DiskCtx::load(target, run_dir, Duration::from_secs(120)) {
        Ok(c) => c,
        Err(code) => return code,
    };
    if let Some(SplitBrainAction::Resolve {
        res,
        survivor,
        timeout,
    }) = action
    {
        return resolve(
            &ctx,
            &res,
            &survivor.to_lowercase(),
            Duration::from_secs(timeout),
        );
    }
    let mut found = Vec::new();
    let mut code = exit::OK;
    for r in &ctx.drbd.resources {
        match ctx.ask(&r.name, DiskRequest::Status, ctx.query_timeout()) {
            Asked::Done(s, _) if s.split_brain.is_some() => found.push(s),
            Asked::Done(..) | Asked::NotUp => {}
            other => code = code.max(other.report(&r.name)),
        }
    }
    if json {
        let entries: Vec<SplitBrainEntry> = found
            .iter()
            .filter_map(|s| {
                s.split_brain.as_ref().map(|sb| SplitBrainEntry {
                    name: &s.name,
                    node: &s.node,
                    peer: &s.peer,
                    role: s.role.to_string(),
                    connection: s.connection.to_string(),
                    split_brain: sb,
                })
            })
            .collect();
        let c = print_json(&entries);
        return if code == exit::OK {
            c
        } else {
            ExitCode::from(code)
        };
    }
    if found.is_empty() && code == exit::OK {
        println!("no split brain");
    }
    for s in &found {
        if let Some(sb) = &s.split_brain {
            print!("{}", report::split_brain_text(s, sb));
        }
    }
    ExitCode::from(code)
}

/// A request to one side of `res`: this node's device, or the peer's
/// through it.
fn side_request(here: bool, req: DiskRequest) -> DiskRequest {
    if here {
        req
    } else {
        DiskRequest::Remote {
            forward: Box::new(req),
        }
    }
}

/// `hbctl split-brain resolve RES --survivor NODE`: the seed's recovery
/// (victim: secondary, disconnect, connect --discard-my-data; survivor:
/// connect), then the resync, watched to its end.
fn resolve(ctx: &DiskCtx, res: &str, survivor: &str, timeout: Duration) -> ExitCode {
    let Some(conf) = ctx.drbd.resource(res) else {
        let _ = ctx.chosen(res);
        return ExitCode::from(exit::REFUSED);
    };
    let Some(peer) = conf.peer(&ctx.node) else {
        eprintln!("hbctl: {res}: no peer of {} in drbd.conf", ctx.node);
        return ExitCode::from(exit::CONFIG);
    };
    let peer = peer.name.clone();
    if survivor != ctx.node && survivor != peer {
        eprintln!(
            "hbctl: {res}: --survivor {survivor}: the nodes of {res} are {} and {peer}",
            ctx.node
        );
        return ExitCode::from(exit::REFUSED);
    }
    let victim_here = survivor != ctx.node;
    let victim = if victim_here {
        ctx.node.as_str()
    } else {
        peer.as_str()
    };
    let local = match ctx.ask(res, DiskRequest::Status, ctx.query_timeout()) {
        Asked::Done(s, _) => s,
        other => return ExitCode::from(other.report(res)),
    };
    if local.split_brain.is_none() && local.connection >= ConnState::Connected {
        println!(
            "{res}: {} and connected ({}/{}): no split brain to resolve",
            local.connection, local.disk, local.peer_disk
        );
        return ExitCode::from(exit::OK);
    }
    let changes = local.split_brain.as_ref().map(|sb| {
        if victim_here {
            sb.my_changes_bytes
        } else {
            sb.peer_changes_bytes
        }
    });
    println!(
        "{res}: keeping {survivor}'s data; {victim}'s changes since the split{} are discarded",
        changes
            .map(|b| format!(" ({})", report::bytes(b)))
            .unwrap_or_default()
    );
    let step =
        |here: bool, node: &str, what: &str, req: DiskRequest| -> Result<Box<DiskStatus>, u8> {
            if !matches!(req, DiskRequest::Status) {
                println!("{res}: {node}: {what}");
            }
            match ctx.ask(res, side_request(here, req), ctx.timeout) {
                Asked::Done(s, _) => Ok(s),
                Asked::Refused(m) => {
                    eprintln!("hbctl: {res}: {node}: {what}: State change failed: {m}");
                    Err(exit::DISK_REFUSED)
                }
                Asked::Failed(m) => {
                    eprintln!("hbctl: {res}: {node}: {what}: {m}");
                    Err(exit::FAILURE)
                }
                Asked::NotUp => {
                    eprintln!("hbctl: {res}: not up here (hbctl disk up {res})");
                    Err(exit::FAILURE)
                }
            }
        };
    let victim_status = match step(victim_here, victim, "status", DiskRequest::Status) {
        Ok(s) => s,
        Err(c) => return ExitCode::from(c),
    };
    if victim_status.role == Role::Primary {
        if let Err(c) = step(victim_here, victim, "secondary", DiskRequest::Secondary) {
            eprintln!(
                "hbctl: {res}: {victim} is Primary and cannot be demoted: stop what uses the \
                 device there first (unmount it, or move its resource group: hbctl standby)"
            );
            return ExitCode::from(c);
        }
    }
    let before = local.counters.clone();
    for (what, req) in [
        ("disconnect", DiskRequest::Disconnect),
        (
            "connect --discard-my-data",
            DiskRequest::Connect {
                discard_my_data: true,
            },
        ),
    ] {
        if let Err(c) = step(victim_here, victim, what, req) {
            return ExitCode::from(c);
        }
    }
    let survivor_status = match step(!victim_here, survivor, "status", DiskRequest::Status) {
        Ok(s) => s,
        Err(c) => return ExitCode::from(c),
    };
    if survivor_status.connection == ConnState::StandAlone {
        if let Err(c) = step(
            !victim_here,
            survivor,
            "connect",
            DiskRequest::Connect {
                discard_my_data: false,
            },
        ) {
            return ExitCode::from(c);
        }
    }
    watch_resync(ctx, res, timeout, victim_here, &before)
}

/// Waits until `res` is Connected and UpToDate on both sides, printing the
/// resync's progress, then reports it.
fn watch_resync(
    ctx: &DiskCtx,
    res: &str,
    timeout: Duration,
    victim_here: bool,
    before: &hbd::disk::ctl::Counters,
) -> ExitCode {
    let started = Instant::now();
    let deadline = started + timeout;
    let mut seen: Option<(Instant, SyncStatus)> = None;
    let mut last_print: Option<Instant> = None;
    let mut standalone_since: Option<Instant> = None;
    loop {
        let s = match ctx.ask(res, DiskRequest::Status, ctx.query_timeout()) {
            Asked::Done(s, _) => s,
            other => return ExitCode::from(other.report(res)),
        };
        if let Some(y) = &s.sync {
            let first = seen.as_ref().map(|(t, _)| *t).unwrap_or_else(Instant::now);
            let mut keep = y.clone();
            if let Some((_, old)) = &seen {
                keep.total_bytes = keep.total_bytes.max(old.total_bytes);
                keep.full |= old.full;
            }
            if seen.is_none() {
                println!(
                    "{res}: resync started: {} {} ({}{})",
                    if y.source { "SyncSource" } else { "SyncTarget" },
                    report::bytes(y.total_bytes),
                    if y.full { "full sync" } else { "bitmap resync" },
                    if y.paused { ", paused" } else { "" }
                );
            }
            seen = Some((first, keep));
            if last_print.is_none_or(|t| t.elapsed() >= Duration::from_secs(1)) {
                last_print = Some(Instant::now());
                println!(
                    "{res}: {} {:.1}% ({} of {}), eta {}",
                    s.connection,
                    y.percent,
                    report::bytes(y.done_bytes),
                    report::bytes(y.total_bytes),
                    y.eta_secs.map(report::hms).unwrap_or_else(|| "?".into())
                );
            }
        }
        let synced = s.connection == ConnState::Connected
            && s.disk == DiskState::UpToDate
            && s.peer_disk == DiskState::UpToDate;
        if synced {
            let secs = seen
                .as_ref()
                .map(|(t, _)| t.elapsed())
                .unwrap_or_else(|| started.elapsed())
                .as_secs_f64();
            let moved_kib = if victim_here {
                s.counters.nr.saturating_sub(before.nr)
            } else {
                s.counters.ns.saturating_sub(before.ns)
            };
            let (bytes, kind) = match &seen {
                Some((_, y)) => (
                    y.total_bytes,
                    if y.full {
                        "full sync"
                    } else {
                        "bitmap resync, not a full sync"
                    },
                ),
                None => (moved_kib * 1024, "bitmap resync (too short to watch)"),
            };
            println!(
                "{res}: resolved: Connected {}/{} {}/{}; resynced {} ({bytes} bytes) in {secs:.1}s, {kind}",
                s.role, s.peer_role, s.disk, s.peer_disk,
                report::bytes(bytes)
            );
            return ExitCode::from(exit::OK);
        }
        if s.connection == ConnState::StandAlone {
            let since = *standalone_since.get_or_insert_with(Instant::now);
            if since.elapsed() >= Duration::from_secs(10) {
                eprintln!(
                    "hbctl: {res}: StandAlone again{}: see hbctl disk status {res}",
                    s.last_error
                        .as_ref()
                        .map(|e| format!(" ({e})"))
                        .unwrap_or_default()
                );
                return ExitCode::from(exit::FAILURE);
            }
        } else {
            standalone_since = None;
        }
        if Instant::now() >= deadline {
            eprintln!(
                "hbctl: {res}: not in sync after {}s ({} {}/{}); the resync goes on",
                timeout.as_secs(),
                s.connection,
                s.disk,
                s.peer_disk
            );
            return ExitCode::from(exit::FAILURE);
        }
        std::thread::sleep(Duration::from_millis(200));
    }
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
        Command::Check {
            config,
            node,
            witness,
        } => return check(config, node, witness),
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
            hbd::agents::drbddisk::set_context(&node, &cli.run_dir);
            return resource(config, &spec, action);
        }
        Command::Disk {
            target,
            timeout,
            verb,
        } => return disk(target, cli.run_dir, timeout, verb),
        Command::SplitBrain {
            target,
            json,
            action,
        } => return split_brain(target, cli.run_dir, json, action),
        Command::Status { .. } => Request::Status,
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
        (Command::Fence { .. }, Response::Fenced { node, message }) => {
            println!("{node} fenced: {message}");
            ExitCode::from(exit::OK)
        }
        (Command::Jobs { json: true }, Response::Status(s)) => {
            let jobs: Vec<_> = s.groups.iter().flat_map(|g| g.jobs.iter()).collect();
            print_json(&jobs)
        }
        (Command::Jobs { json: false }, Response::Status(s)) => {
            print!("{}", render::jobs(&s));
            ExitCode::from(exit::OK)
        }
        (Command::Status { json: true }, Response::Status(s)) => print_json(&s),
        (Command::Status { json: false }, Response::Status(s)) => {
            print!("{}", render::status(&s));
            ExitCode::from(exit::OK)
        }
        (Command::Nodestatus { json: true, .. }, Response::NodeStatus(n)) => print_json(&n),
        (Command::Nodestatus { json: false, .. }, Response::NodeStatus(n)) => {
            println!("{}", render::node_state(n.state));
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
    let report = if witness {
        config::check_witness(&dir, &node)
    } else {
        config::check(&dir, &node)
    };
    for w in &report.warnings {
        println!("warning: {w}");
    }
    match report.config {
        Some(c) if report.errors.is_empty() && c.vrrp_only => {
            let k = c.keepalived.as_ref();
            println!(
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
            );
            ExitCode::from(exit::OK)
        }
        Some(c) if report.errors.is_empty() && c.is_witness => {
            println!(
                "{}: valid for the quorum witness {} of nodes {} (media: {})",
                dir.display(),
                c.node,
                c.ha.nodes.join(", "),
                c.ha.media
                    .iter()
                    .map(|m| m.name())
                    .collect::<Vec<_>>()
                    .join(", "),
            );
            ExitCode::from(exit::OK)
        }
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
    use futures::{SinkExt, StreamExt};
    use hbd::disk::ctl::{Counters, SplitBrainStatus};
    use std::path::Path;
    use std::sync::{Arc, Mutex};

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
                assert_eq!(target.config, PathBuf::from("/c"));
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
                assert_eq!(target.config, PathBuf::from("/d"));
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
        for (words, req) in [
            ("attach", DiskRequest::Attach),
            ("detach", DiskRequest::Detach),
            ("disconnect", DiskRequest::Disconnect),
            ("secondary", DiskRequest::Secondary),
            ("verify", DiskRequest::Verify),
            ("outdate", DiskRequest::Outdate),
            ("invalidate", DiskRequest::Invalidate),
            ("invalidate-remote", DiskRequest::InvalidateRemote),
            ("pause-sync", DiskRequest::PauseSync),
            ("resume-sync", DiskRequest::ResumeSync),
            ("resume-io", DiskRequest::ResumeIo),
            ("adjust", DiskRequest::Adjust),
        ] {
            let v = verb(&["disk", words, "r0"]);
            assert_eq!(v.res(), "r0");
            assert_eq!(v.request(), Some(req), "{words}");
        }
        for words in [
            "role",
            "cstate",
            "dstate",
            "up",
            "down",
            "create-md",
            "dump-md",
        ] {
            assert_eq!(verb(&["disk", words, "all"]).res(), "all");
        }
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

    fn status(role: Role, peer_role: Role, conn: ConnState) -> DiskStatus {
        DiskStatus {
            name: "r0".into(),
            node: "a".into(),
            peer: "b".into(),
            pid: std::process::id(),
            role,
            peer_role,
            disk: DiskState::UpToDate,
            peer_disk: DiskState::UpToDate,
            connection: conn,
            device: PathBuf::from("/dev/drbd0"),
            loop_device: None,
            backing: PathBuf::from("/tmp/backing"),
            size_bytes: 1 << 26,
            out_of_sync_bytes: 0,
            sync: None,
            verify: None,
            split_brain: None,
            uuids: Default::default(),
            local_address: "192.0.2.11:7789".into(),
            peer_address: "192.0.2.12:7789".into(),
            counters: Counters::default(),
            last_write_unix_ms: None,
            last_error: None,
            ever_connected: true,
            degr_wfc: false,
            suspended: false,
            fence_peer: None,
        }
    }

    #[test]
    fn role_cstate_dstate_words() {
        let s = status(Role::Primary, Role::Secondary, ConnState::Connected);
        assert_eq!(
            state_word(&verb(&["disk", "role", "r0"]), &s),
            "Primary/Secondary"
        );
        assert_eq!(
            state_word(&verb(&["disk", "cstate", "r0"]), &s),
            "Connected"
        );
        assert_eq!(
            state_word(&verb(&["disk", "dstate", "r0"]), &s),
            "UpToDate/UpToDate"
        );
    }

    /// A configuration directory with r0 between nodes a and b.
    fn conf_dir() -> tempfile::TempDir {
        let d = tempfile::tempdir().unwrap();
        let w = |name: &str, text: &str, mode: u32| {
            use std::os::unix::fs::PermissionsExt;
            let p = d.path().join(name);
            std::fs::write(&p, text).unwrap();
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
        };
        w(
            "ha.cf",
            "keepalive 200ms\ndeadtime 1\nbcast eth0\nnode a b\n",
            0o644,
        );
        w(
            "authkeys",
            "auth 1\n1 sha256 0123456789abcdef0123456789abcdef\n",
            0o600,
        );
        w(
            "drbd.conf",
            "resource r0 {\n  protocol C;\n  meta-disk internal;\n  device /dev/drbd0;\n  \
             disk /tmp/nonexistent-backing;\n  on a { address 192.0.2.11:7789; }\n  \
             on b { address 192.0.2.12:7789; }\n}\n",
            0o644,
        );
        d
    }

    type Handler = Box<dyn FnMut(DiskRequest) -> DiskResponse + Send>;

    /// A stand-in device on `run_dir`'s socket for r0, answering with
    /// `handler`; it records every request.
    fn fake_device(run_dir: &Path, mut handler: Handler) -> Arc<Mutex<Vec<DiskRequest>>> {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let path = hbd::disk::ctl::socket_path(run_dir, "r0");
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        let listener = std::os::unix::net::UnixListener::bind(&path).unwrap();
        listener.set_nonblocking(true).unwrap();
        let log = seen.clone();
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let listener = tokio::net::UnixListener::from_std(listener).unwrap();
                while let Ok((stream, _)) = listener.accept().await {
                    let mut conn: ctl::Connection<DiskRequest, DiskResponse> = ctl::frame(stream);
                    if let Some(Ok(req)) = conn.next().await {
                        log.lock().unwrap().push(req.clone());
                        let _ = conn.send(handler(req)).await;
                    }
                }
            });
        });
        seen
    }

    fn target(d: &Path) -> DiskTarget {
        DiskTarget {
            config: d.to_path_buf(),
            node: Some("a".into()),
        }
    }

    #[test]
    fn down_device_and_refusals() {
        let d = conf_dir();
        let run = d.path().join("run");
        let run_verb = |args: &[&str]| disk(target(d.path()), run.clone(), 5, verb(args));
        // Not up: the queries say Unconfigured, state changes fail.
        assert_eq!(run_verb(&["disk", "role", "r0"]), ExitCode::from(exit::OK));
        assert_eq!(
            run_verb(&["disk", "status", "all"]),
            ExitCode::from(exit::OK)
        );
        assert_eq!(
            run_verb(&["disk", "primary", "r0"]),
            ExitCode::from(exit::FAILURE)
        );
        assert_eq!(run_verb(&["disk", "down", "r0"]), ExitCode::from(exit::OK));
        assert_eq!(run_verb(&["disk", "proc"]), ExitCode::from(exit::OK));
        assert_eq!(
            run_verb(&["disk", "primary", "r9"]),
            ExitCode::from(exit::REFUSED)
        );
        // Up: a refusal is drbdsetup's exit code 11.
        let s = status(Role::Secondary, Role::Primary, ConnState::Connected);
        let seen = fake_device(
            &run,
            Box::new(move |req| match req {
                DiskRequest::Primary { .. } => DiskResponse::Refused {
                    message: "peer is Primary".into(),
                    status: Box::new(s.clone()),
                },
                DiskRequest::Verify => DiskResponse::Failed {
                    message: "not connected".into(),
                },
                _ => DiskResponse::Done {
                    status: Box::new(s.clone()),
                    message: None,
                },
            }),
        );
        assert_eq!(
            run_verb(&["disk", "primary", "r0"]),
            ExitCode::from(exit::DISK_REFUSED)
        );
        assert_eq!(
            run_verb(&["disk", "verify", "all"]),
            ExitCode::from(exit::FAILURE)
        );
        assert_eq!(
            run_verb(&["disk", "connect", "--discard-my-data", "r0"]),
            ExitCode::from(exit::OK)
        );
        assert_eq!(
            run_verb(&["disk", "status", "--json"]),
            ExitCode::from(exit::OK)
        );
        assert_eq!(run_verb(&["disk", "proc"]), ExitCode::from(exit::OK));
        assert_eq!(
            seen.lock().unwrap().as_slice(),
            &[
                DiskRequest::Primary { force: false },
                DiskRequest::Verify,
                DiskRequest::Connect {
                    discard_my_data: true
                },
                DiskRequest::Status,
                DiskRequest::Status,
            ]
        );
    }

    #[test]
    fn kernel_driver_never_starts_the_device() {
        let d = conf_dir();
        std::fs::write(
            d.path().join("cluster.toml"),
            "[disk]\ndriver = \"kernel\"\n",
        )
        .unwrap();
        let run = d.path().join("run");
        let code = disk(
            target(d.path()),
            run.clone(),
            5,
            verb(&["disk", "up", "r0"]),
        );
        assert_eq!(code, ExitCode::from(exit::CONFIG));
        assert!(!hbd::disk::ctl::log_path(&run, "r0").exists());
    }

    /// `resolve` with this node as the survivor: the victim's steps go
    /// through Remote, then this node connects and the resync is watched.
    #[test]
    fn resolve_drives_both_sides() {
        let d = conf_dir();
        let run = d.path().join("run");
        let mut local = status(Role::Primary, Role::Unknown, ConnState::StandAlone);
        local.peer_disk = DiskState::DUnknown;
        local.split_brain = Some(SplitBrainStatus {
            detected_unix_ms: 0,
            peer: "b".into(),
            my_changes_bytes: 8192,
            peer_changes_bytes: 4096,
            my_last_write_unix_ms: None,
            peer_last_write_unix_ms: None,
        });
        let mut peer = status(Role::Primary, Role::Unknown, ConnState::StandAlone);
        peer.node = "b".into();
        let mut polls = 0;
        let seen = fake_device(
            &run,
            Box::new(move |req| {
                let s = match req {
                    DiskRequest::Remote { forward } => {
                        match *forward {
                            DiskRequest::Secondary => peer.role = Role::Secondary,
                            DiskRequest::Connect { .. } => {
                                peer.connection = ConnState::WFConnection
                            }
                            _ => {}
                        }
                        peer.clone()
                    }
                    DiskRequest::Connect { .. } => {
                        local.connection = ConnState::WFConnection;
                        local.clone()
                    }
                    _ => {
                        if local.connection != ConnState::StandAlone {
                            polls += 1;
                            local.split_brain = None;
                            local.peer_role = Role::Secondary;
                            if polls < 3 {
                                local.connection = ConnState::SyncSource;
                                local.peer_disk = DiskState::Inconsistent;
                                local.sync = Some(SyncStatus {
                                    source: true,
                                    full: false,
                                    paused: false,
                                    total_bytes: 12288,
                                    done_bytes: 4096,
                                    percent: 33.3,
                                    rate_bytes_per_sec: 4096,
                                    limit_bytes_per_sec: 0,
                                    eta_secs: Some(2),
                                });
                            } else {
                                local.connection = ConnState::Connected;
                                local.peer_disk = DiskState::UpToDate;
                                local.sync = None;
                            }
                        }
                        local.clone()
                    }
                };
                DiskResponse::Done {
                    status: Box::new(s),
                    message: None,
                }
            }),
        );
        let code = split_brain(
            target(d.path()),
            run.clone(),
            false,
            Some(SplitBrainAction::Resolve {
                res: "r0".into(),
                survivor: "a".into(),
                timeout: 30,
            }),
        );
        assert_eq!(code, ExitCode::from(exit::OK));
        let seen = seen.lock().unwrap();
        let remote = |r: DiskRequest| DiskRequest::Remote {
            forward: Box::new(r),
        };
        assert_eq!(
            &seen[..6],
            &[
                DiskRequest::Status,
                remote(DiskRequest::Status),
                remote(DiskRequest::Secondary),
                remote(DiskRequest::Disconnect),
                remote(DiskRequest::Connect {
                    discard_my_data: true
                }),
                DiskRequest::Status,
            ]
        );
        assert_eq!(
            seen[6],
            DiskRequest::Connect {
                discard_my_data: false
            }
        );
        // An unknown survivor is refused before anything is asked.
        let code = split_brain(
            target(d.path()),
            run,
            false,
            Some(SplitBrainAction::Resolve {
                res: "r0".into(),
                survivor: "c".into(),
                timeout: 30,
            }),
        );
        assert_eq!(code, ExitCode::from(exit::REFUSED));
    }
}
