//! The daemon's I/O around the state machines.
//!
//! ```text
//!   media sockets ──(Received, a bounded mpsc ┐
//!                    per medium, taken in turn)┤
//!   control socket ──(Call, bounded mpsc)─────┤
//!   signals (TERM, INT, HUP, USR1, USR2) ─────┤
//!   timer (Membership::next_deadline) ────────┤
//!                                             ▼
//!                                   daemon loop (one task)
//!                                   owns Membership, drains its
//!                                   Outputs: Send → every medium,
//!                                   Event → one log line each
//! ```
//!
//! Only this loop touches the state machines, so they need no locks; the
//! receive tasks and the control server only move bytes and requests.

mod calls;
pub mod control;
pub mod corosync;
mod dump;
pub mod fence;
pub mod groups;
pub mod jobs;
pub mod journal;
mod log_events;
pub mod logging;
mod modes;
pub mod monitor;
pub mod network;
pub mod outdate;
pub mod ping;
use ping::{AbortOnDrop, Ping};
pub mod observe;
mod preprobe;
mod publish;
mod reload;

use log_events::{log_event, log_group_event, log_ping_event, log_quorum};
pub use modes::run_daemon;
use reload::{load_off_loop, set_agent_context};
pub mod realtime;
pub mod respawn;
pub mod served;
pub mod state;
pub mod watchdog;

use crate::config::{self, Config, ConfigErrors, Medium};
use crate::ctl::{ErrorKind, GroupStatus, Request, Response, Scope, Status};
use crate::groups::{self as grp, Command, Groups, GroupsConfig, Progress};
use crate::membership::cpg::{CpgConfig, CpgMembership};
use crate::membership::engine::Engine;
use crate::membership::{DeadReason, Event, Membership, MembershipConfig, Output};
use crate::vrrp::runtime::VrrpHandle;
use crate::wire::{Body, GroupState};
use futures::StreamExt;
use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM, SIGUSR1, SIGUSR2};
use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::sync::mpsc;
use tokio::time::Instant;

/// Where the daemon keeps its files.
#[derive(Debug, Clone)]
pub struct Paths {
    pub config_dir: PathBuf,
    pub run_dir: PathBuf,
    pub state_dir: PathBuf,
}

#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error(transparent)]
    Net(#[from] network::NetError),
    #[error("cannot start the corosync thread: {0}")]
    Corosync(std::io::Error),
    #[error(transparent)]
    PidFile(#[from] state::PidFileError),
    #[error("state dir {}: {source}", path.display())]
    State {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("control socket in {}: {source}", path.display())]
    Control {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("signals: {0}")]
    Signals(std::io::Error),
    #[error("ping nodes: cannot open an ICMP socket: {0}")]
    Ping(std::io::Error),
    #[error(transparent)]
    Watchdog(#[from] watchdog::WatchdogError),
    #[error("VRRP: {0}")]
    Vrrp(String),
    #[error("[metrics] listen {addr}: {source}")]
    Metrics {
        addr: std::net::SocketAddr,
        source: std::io::Error,
    },
}

/// Ping replies waiting for the loop; beyond this they are dropped.
const RECEIVE_QUEUE: usize = 1024;
/// A Leaving datagram is sent this many times, this far apart: a lost one
/// would make peers wait for deadtime. Copies after the first are dropped as
/// replays by peers that got it.
const LEAVE_COPIES: usize = 3;
const LEAVE_SPACING: Duration = Duration::from_millis(20);

pub fn membership_config(c: &Config) -> MembershipConfig {
    MembershipConfig {
        cluster: c.cluster.cluster.name.clone(),
        node: c.node.clone(),
        // The witness exchanges keepalives like a node.
        nodes: c.members(),
        media: c.ha.media.iter().map(Medium::name).collect(),
        keepalive: c.ha.keepalive,
        deadtime: c.ha.deadtime,
        warntime: c.ha.warntime,
        initdead: c.ha.initdead,
        keys: c.authkeys.clone(),
        accept_weaker_keys: c.cluster.cluster.accept_weaker_keys,
    }
}

/// The keys accepted on receive: authkeys' keys at least as strong as the
/// signing key's method, unless `[cluster] accept_weaker_keys`.
fn receive_keys_of(c: &Config) -> crate::wire::AuthKeys {
    config::receive_keys(&c.authkeys, c.cluster.cluster.accept_weaker_keys)
}

/// Runs on Corosync (cluster.toml `[membership] backend = "corosync"`).
pub fn on_corosync(c: &Config) -> bool {
    c.membership.backend == config::MembershipBackend::Corosync && !c.is_witness
}

/// The Corosync membership machine's configuration, with the Corosync
/// backend: corosync.conf's nodeids for ha.cf's node names, the stop margin
/// (`[membership] stop_margin`, default Corosync's token timeout) and what
/// peers wait at the least before they declare this node dead.
pub fn cpg_config(c: &Config) -> Option<CpgConfig> {
    if !on_corosync(c) {
        return None;
    }
    let cc = c.corosync.as_ref()?;
    let token = cc.effective_token();
    let stop_margin = c.membership.stop_margin.unwrap_or(token);
    let mut base = membership_config(c);
    base.media.clear();
    Some(CpgConfig {
        ids: c
            .ha
            .nodes
            .iter()
            .filter_map(|n| cc.nodeid(n).map(|id| (id, n.clone())))
            .collect(),
        base,
        stop_margin,
        deadtime: token + stop_margin,
        pid: std::process::id(),
    })
}

pub fn groups_config(c: &Config) -> GroupsConfig {
    let cpg = cpg_config(c);
    GroupsConfig {
        node: c.node.clone(),
        nodes: c.ha.nodes.clone(),
        groups: c
            .groups
            .iter()
            .map(|g| grp::GroupDef {
                id: g.id.clone(),
                home: g.home.clone(),
            })
            .collect(),
        auto_failback: c.ha.auto_failback != config::AutoFailback::Off,
        resend: c.ha.keepalive,
        deadtime: cpg.as_ref().map_or(c.ha.deadtime, |p| p.deadtime),
        witness: c.quorum.witness.clone(),
        is_witness: c.is_witness,
        wait_for_all: c.quorum.wait_for_all,
        ping_tiebreak: c.tiebreaker.ping && !c.is_witness,
        fencing: fence::FenceRt::configured(c),
        failure_timeout: c.failure_timeout,
        engine_quorum: cpg.is_some(),
    }
}

/// cluster.toml `[fencing]` for the fence runtime.
fn fence_settings(f: &config::FencingSettings) -> crate::fence::FencingSettings {
    crate::fence::FencingSettings {
        action: f.action,
        timeout: f.timeout,
    }
}

/// A `standby`/`takeover` waiting for its groups to move.
struct Waiting {
    command: Command,
    groups: Vec<usize>,
    deadline: Instant,
    reply: tokio::sync::oneshot::Sender<Response>,
}

struct Daemon {
    paths: Paths,
    config: Config,
    membership: Engine,
    /// The Corosync thread, with the Corosync backend.
    cpg: Option<corosync::CorosyncLink>,
    groups: Groups,
    runner: groups::Runner,
    waiting: Vec<Waiting>,
    /// SIGTERM received: groups are being stopped before leaving.
    leaving: bool,
    monitor: monitor::MonitorRt,
    jobs: jobs::JobsRt,
    /// Per group: the latest monitoring notices, for status.
    events: Vec<std::collections::VecDeque<String>>,
    media: Vec<network::OpenMedium>,
    /// The keys the media's receive tasks accept (see
    /// [`config::receive_keys`]); a reload sends new ones.
    receive_keys: tokio::sync::watch::Sender<crate::wire::AuthKeys>,
    /// What media replaced by a reload had dropped, for status.
    retired_drops: std::collections::BTreeMap<&'static str, u64>,
    access: Arc<RwLock<Access>>,
    epoch: Instant,
    incarnation: u64,
    /// Rate limit for send-error logs.
    last_send_error_log: Option<Instant>,
    ping: Ping,
    /// What the served-data poller last reported, per group.
    served: Vec<served::GroupDisks>,
    /// keepalived.conf's instances, when hbd runs them too.
    vrrp: Option<Arc<VrrpHandle>>,
    /// stonith_host devices and the fencings in flight.
    fence: fence::FenceRt,
    /// The built-in peer outdater (heartbeat's dopd).
    outdater: outdate::Outdater,
    /// The newest incarnation seen of each peer, as in the state dir.
    peers_seen: std::collections::BTreeMap<String, state::PeerSeen>,
    /// Duplicate-address probing while a peer is late (issue 15).
    preprobe: preprobe::PreProbing,
    /// The event bus and the metrics families (`hbctl events`, `hbctl
    /// metrics`, `[metrics] listen`).
    observe: observe::Observe,
    /// The phases of a failover, for the events and the notify hook.
    timeline: crate::events::Timeline,
    /// Which media have heard a peer since start, for the one warning
    /// about a medium that never did.
    silent: SilentMedia,
}

/// The media that heard no peer at all in the first `deadtime` after start:
/// a broadcast to nowhere, a firewalled port, keys that differ. heartbeat
/// says nothing and the nodes each run alone; hbd warns once per medium.
#[derive(Debug, Default)]
struct SilentMedia {
    heard: Vec<bool>,
    checked: bool,
}

impl SilentMedia {
    fn heard(&mut self, medium: crate::membership::MediumId) {
        let i = usize::from(medium.0);
        if self.heard.len() <= i {
            self.heard.resize(i + 1, false);
        }
        self.heard[i] = true;
    }

    /// The media (by index) to warn about, once, when `deadtime` has passed.
    fn due(&mut self, media: usize, now: Duration, deadtime: Duration) -> Vec<usize> {
        if self.checked || now < deadtime {
            return Vec::new();
        }
        self.checked = true;
        (0..media)
            .filter(|&i| !self.heard.get(i).copied().unwrap_or(false))
            .collect()
    }
}

use control::Access;

/// As the drbd init script at boot: start the device process of every
/// replicated resource of this node that is not up yet (in the background;
/// a failure is logged, and the drbddisk agent tries again when it starts).
fn bring_disks_up(config: &Config, run_dir: &std::path::Path) {
    let Some(drbd) = &config.drbd else { return };
    let disk = &config.cluster.disk;
    if disk.driver.unwrap_or_default().is_kernel() || disk.up_at_start == Some(false) {
        return;
    }
    for r in drbd
        .resources
        .iter()
        .filter(|r| r.host(&config.node).is_some())
    {
        let (dir, node, run, res) = (
            config.dir.clone(),
            config.node.clone(),
            run_dir.to_path_buf(),
            r.name.clone(),
        );
        tokio::spawn(async move {
            match crate::disk::client::up_async(&dir, &node, &run, &res, Duration::from_secs(60))
                .await
            {
                Ok(s) => {
                    tracing::info!(resource = %res, role = %s.role, connection = %s.connection, "replicated disk up")
                }
                Err(e) => tracing::error!(resource = %res, "bringing the replicated disk up: {e}"),
            }
        });
    }
}

/// The control server of a daemon loop, and what the loop keeps of it.
struct ControlInputs {
    /// Stops the server when dropped.
    server: control::ControlServer,
    /// The access rules, kept for SIGHUP to change.
    access: Arc<RwLock<Access>>,
    /// The requests, each with its reply channel.
    calls: mpsc::Receiver<control::Call>,
    /// The event bus and the metrics families the server reads.
    observe: observe::Observe,
}

/// The control server, started in `paths.run_dir` with the access rules of
/// `config`.
fn control_server(paths: &Paths, config: &Config) -> Result<ControlInputs, RuntimeError> {
    let access = Arc::new(RwLock::new(Access::from_group(
        config.cluster.control.group.as_deref(),
    )));
    let (call_tx, calls) = mpsc::channel(64);
    let observe = observe::Observe::new(paths.run_dir.clone());
    let mut server = control::ControlServer::start_observed(
        &paths.run_dir,
        access.clone(),
        call_tx.clone(),
        observe.clone(),
    )
    .map_err(|source| RuntimeError::Control {
        path: paths.run_dir.clone(),
        source,
    })?;
    if let Some(addr) = config.cluster.metrics.listen_addr() {
        let m = observe::MetricsServer::start(addr, observe.clone(), call_tx)
            .map_err(|source| RuntimeError::Metrics { addr, source })?;
        server.attach_metrics(m);
    }
    Ok(ControlInputs {
        server,
        access,
        calls,
        observe,
    })
}

/// The signals a daemon loop takes: TERM and INT (leave), HUP (reload and
/// reopen the log files), USR1 (dump the state to the log), USR2 (reopen
/// the log files). Taking USR1 and USR2 also keeps their default action
/// (terminate, without leaving the cluster) from killing hbd. SIGPIPE is
/// ignored by the Rust runtime before `main`.
fn signals() -> Result<signal_hook_tokio::Signals, RuntimeError> {
    signal_hook_tokio::Signals::new([SIGTERM, SIGINT, SIGHUP, SIGUSR1, SIGUSR2])
        .map_err(RuntimeError::Signals)
}

/// SIGHUP and SIGUSR2: the log files again at their configured paths
/// (logrotate renamed them); said in the new file.
fn reopen_logs(signal: &'static str) {
    let files = logging::reopen();
    if !files.is_empty() {
        tracing::info!(signal, files = ?files, "log files reopened");
    }
}

/// Runs the daemon until SIGTERM or SIGINT. Returns after telling the peers
/// it leaves.
pub async fn run(paths: Paths, config: Config) -> Result<(), RuntimeError> {
    run_with_vrrp(paths, config, None).await
}

/// [`run`], with the VRRP instances of keepalived.conf (already started)
/// answered through the control socket: status, standby and takeover.
pub async fn run_with_vrrp(
    paths: Paths,
    mut config: Config,
    vrrp: Option<Arc<VrrpHandle>>,
) -> Result<(), RuntimeError> {
    let epoch = Instant::now();
    let _pid = state::PidFile::create(&paths.run_dir)?;
    set_agent_context(&mut config, &paths.run_dir);
    if !config.is_witness {
        bring_disks_up(&config, &paths.run_dir);
    }
    let unix = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let incarnation =
        state::next_incarnation(&paths.state_dir, unix).map_err(|source| RuntimeError::State {
            path: paths.state_dir.clone(),
            source,
        })?;

    let (receive_keys, keys_rx) = tokio::sync::watch::channel(receive_keys_of(&config));
    // With Corosync, Corosync carries everything: no media of hbd's own.
    let media_specs = if on_corosync(&config) {
        &[][..]
    } else {
        &config.ha.media[..]
    };
    let (media, mut inbox) = network::open_media(media_specs, &keys_rx)?;
    let ControlInputs {
        server: _control,
        access,
        mut calls,
        observe,
    } = control_server(&paths, &config)?;
    let mut signals = signals()?;
    let _respawn = respawn::start(if config.is_witness {
        &[]
    } else {
        &config.ha.respawn
    });

    let (ping_tx, mut ping_replies) = mpsc::channel(RECEIVE_QUEUE);
    // SIGHUP's configuration, loaded off the loop (see load_off_loop).
    let (loaded_tx, mut loaded) = mpsc::channel(1);
    let mut loading = false;
    let ping = Ping::new(&config, Duration::ZERO, &ping_tx)?;
    let (cpg_tx, mut cpg_rx) = mpsc::channel(RECEIVE_QUEUE);
    let (mut membership, cpg) = match cpg_config(&config) {
        Some(cfg) => {
            let ids = cfg.ids.iter().map(|&(id, _)| id).collect();
            let link =
                corosync::CorosyncLink::start(config.membership.cpg_group.clone(), ids, cpg_tx)
                    .map_err(RuntimeError::Corosync)?;
            (
                Engine::Corosync(CpgMembership::new(cfg, incarnation, Duration::ZERO)),
                Some(link),
            )
        }
        None => {
            drop(cpg_tx);
            (
                Engine::Heartbeat(Membership::new(
                    membership_config(&config),
                    incarnation,
                    Duration::ZERO,
                )),
                None,
            )
        }
    };
    // What the previous run saw of each peer: replays of their older
    // incarnations stay stale (issue 14, finding 8).
    let peers_seen = state::load_peers(&paths.state_dir).map_err(|source| RuntimeError::State {
        path: paths.state_dir.clone(),
        source,
    })?;
    for (node, p) in &peers_seen {
        membership.remember(node, p.incarnation, p.left);
    }
    let (done_tx, mut done) = mpsc::unbounded_channel();
    let runner = groups::Runner::new(config.groups.clone(), done_tx);
    let mut groups = Groups::new(groups_config(&config), incarnation, Duration::ZERO);
    // Without the tiebreaker the machine sees no ping count at all.
    if ping.settle.is_none() {
        groups.set_ping(None, Duration::ZERO);
    }
    let (served_tx, mut served_rx) = mpsc::channel(1);
    let _served = (!config.is_witness)
        .then(|| {
            served::start(
                served::disks_of(&config.groups),
                paths.run_dir.clone(),
                config.cluster.disk.driver.unwrap_or_default().is_kernel(),
                served_tx,
            )
        })
        .flatten()
        .map(AbortOnDrop);
    let (check_tx, mut check_results) = mpsc::unbounded_channel();
    let has_mon = config
        .groups
        .iter()
        .map(|g| {
            g.resources
                .iter()
                .any(|r| r.kind == crate::agents::AgentKind::Mon)
        })
        .collect();
    // The witness runs no checks and no jobs.
    let (checks, job_list) = if config.is_witness {
        (Vec::new(), Vec::new())
    } else {
        (config.checks.clone(), config.jobs.clone())
    };
    let mut monitor = monitor::MonitorRt::new(&checks, has_mon, check_tx);
    monitor.metrics = Some(observe.metrics.clone());
    let (job_tx, mut job_results) = mpsc::unbounded_channel();
    let jobs = jobs::JobsRt::new(&job_list, config.groups.len(), job_tx);
    let (fence_tx, mut fence_results) = mpsc::channel(fence::RESULT_QUEUE);
    let fence = fence::FenceRt::new(&config, fence_settings(&config.fencing), fence_tx);
    // Self-fencing: fed while this loop turns (see runtime::watchdog).
    let watchdog = match &config.ha.watchdog {
        Some((device, _)) => Some(watchdog::Watchdog::open(
            device,
            config.ha.deadtime + Duration::from_secs(1),
            config.ha.deadtime,
        )?),
        None => None,
    };
    // Test hook: while this file exists the loop hangs (the thread blocks),
    // as a stuck hbd would; tests/fencing.rs checks the watchdog stops.
    let stall_hook = std::env::var_os("HBD_TEST_LOOP_STALL").map(PathBuf::from);
    let (outdate_tx, mut outdate_done) = mpsc::unbounded_channel();
    let outdater = outdate::Outdater::new(
        &config.node,
        paths.run_dir.clone(),
        paths.config_dir.clone(),
        outdate_tx,
    );
    let mut d = Daemon {
        fence,
        events: vec![Default::default(); config.groups.len()],
        monitor,
        jobs,
        paths,
        config,
        membership,
        cpg,
        groups,
        runner,
        waiting: Vec::new(),
        leaving: false,
        media,
        receive_keys,
        retired_drops: Default::default(),
        access,
        epoch,
        incarnation,
        last_send_error_log: None,
        ping,
        served: Vec::new(),
        vrrp,
        outdater,
        peers_seen,
        preprobe: preprobe::PreProbing::new(),
        observe,
        timeline: Default::default(),
        silent: SilentMedia::default(),
    };
    // The replicated disks' state changes, as events.
    let _disk_watch = observe::watch_disks(
        if d.config.is_witness {
            Vec::new()
        } else {
            d.disk_names()
        },
        d.observe.clone(),
    )
    .map(AbortOnDrop);
    for w in &d.config.warnings {
        tracing::warn!(warning = %w, "configuration warning");
    }
    tracing::info!(
        node = %d.config.node,
        incarnation,
        media = ?d.media.iter().map(|m| m.name.as_str()).collect::<Vec<_>>(),
        keepalive_ms = d.config.ha.keepalive.as_millis() as u64,
        deadtime_ms = d.config.ha.deadtime.as_millis() as u64,
        witness = d.config.is_witness,
        "hbd started"
    );
    let q = d.groups.quorum();
    if q.protected {
        tracing::info!(witness = ?d.config.quorum.witness, wait_for_all = d.config.quorum.wait_for_all, "quorum protection: groups run only with quorum");
    } else {
        tracing::warn!("no quorum protection: a partition can run groups on both nodes (cluster.toml [quorum] witness)");
    }
    if d.ping.settle.is_some() {
        tracing::info!(
            settle_ms = d.config.tiebreaker.settle.as_millis() as u64,
            "ping tiebreaker on"
        );
    }
    // Configuration read, media, control socket and pid file open: ready
    // for systemd (Type=notify); WATCHDOG=1 from this loop only.
    crate::sd_notify::ready(&d.summary());
    let mut sd_watchdog = crate::sd_notify::WatchdogPacer::new();
    let mut sd_status = String::new();

    loop {
        if let Some(w) = &watchdog {
            w.alive();
        }
        if sd_watchdog.tick() {
            let s = d.summary();
            if s != sd_status {
                crate::sd_notify::status(&s);
                sd_status = s;
            }
        }
        if let Some(p) = &stall_hook {
            while p.exists() {
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        let mut deadline = d.epoch + d.next_deadline().min(d.preprobe.next_check);
        if let Some(w) = &watchdog {
            deadline = deadline.min(Instant::now() + w.interval);
        }
        if let Some(t) = sd_watchdog.due() {
            deadline = deadline.min(t);
        }
        tokio::select! {
            _ = tokio::time::sleep_until(deadline) => {}
            Some(r) = inbox.recv() => d.on_received(r),
            Some(input) = cpg_rx.recv() => {
                let now = d.now();
                d.membership.on_cpg(input, now);
            }
            Some(from) = ping_replies.recv() => {
                let now = d.now();
                for e in d.ping.tracker.on_reply(from, now) {
                    log_ping_event(&e);
                }
            }
            Some(served) = served_rx.recv() => {
                d.on_served(served);
            }
            Some(done) = done.recv() => {
                let now = d.now();
                match done {
                    groups::Done::Probe(i, p) => d.groups.on_probe(i, p, now),
                    groups::Done::Op(i, r) => d.groups.on_done(i, r, now),
                    groups::Done::Restart(check, ok) => {
                        d.monitor.machine.on_restarted(check, ok, now)
                    }
                    groups::Done::Resource(i, r, state, error) => {
                        d.resource_changed(i, r, state, error.as_deref());
                        d.runner.set_resource(i, r, state, error)
                    }
                }
            }
            Some((check, result)) = check_results.recv() => {
                let now = d.now();
                d.monitor.machine.on_result(check, result, now);
            }
            Some(o) = fence_results.recv() => {
                let now = d.now();
                d.fence.done(&o);
                d.fenced(&o, now);
                d.groups.on_fenced(&o.node, o.ok, now);
            }
            Some((job, ok, summary)) = job_results.recv() => {
                if let Some(j) = d.config.jobs.get(job) {
                    d.observe.metrics.job_run(&j.name, ok);
                }
                d.jobs.machine.on_done(job, ok, summary, jobs::unix_now());
            }
            Some((request, reply)) = calls.recv() => {
                d.call(request, reply);
            }
            Some(done) = outdate_done.recv() => {
                let body = d.outdater.on_done(done);
                d.membership.broadcast(body);
            }
            Some(new) = loaded.recv() => {
                loading = false;
                if let Some(new) = d.reload(new, &ping_tx) {
                    inbox = new;
                }
            }
            Some(sig) = signals.next() => match sig {
                SIGUSR1 => d.dump_state(),
                SIGUSR2 => reopen_logs("SIGUSR2"),
                SIGHUP if loading => {
                    reopen_logs("SIGHUP");
                    tracing::warn!("SIGHUP ignored: the configuration is still loading (a stalled user or group lookup?)");
                }
                SIGHUP => {
                    reopen_logs("SIGHUP");
                    loading = load_off_loop(&d.paths, &d.config, &loaded_tx);
                }
                _ if d.leaving => {
                    tracing::warn!(signal = sig, "second signal: leaving now, without waiting for the groups to stop");
                    break;
                }
                _ => {
                    tracing::info!(signal = sig, "shutting down: stopping the resource groups first");
                    crate::sd_notify::stopping("leaving: stopping the resource groups");
                    d.leaving = true;
                    let now = d.now();
                    d.groups.leave(now);
                }
            },
        }
        // Everything received so far counts before any deadline is checked
        // (runtime::realtime).
        while let Some(r) = inbox.try_recv() {
            d.on_received(r);
        }
        d.tick();
        d.preprobe_sync();
        d.flush();
        d.answer_waiting();
        if d.leaving && d.groups.quiescent() {
            break;
        }
    }
    for w in d.waiting.drain(..) {
        let _ = w.reply.send(Response::Error {
            kind: ErrorKind::Failed,
            message: "hbd is shutting down".into(),
        });
    }

    // Orderly shutdown: tell the peers, so they need not wait for deadtime.
    d.membership.leave(d.now());
    let leaving: Vec<Vec<u8>> = d
        .membership
        .take_outputs()
        .into_iter()
        .filter_map(|o| match o {
            Output::Send(b) => Some(b),
            Output::Event(e) => {
                log_event(&d.media, &e);
                None
            }
        })
        .collect();
    if let Some(mut link) = d.cpg.take() {
        // Corosync delivers it (or the peers see this process leave).
        for b in leaving {
            link.send(b);
        }
        // The loop is done: waiting here holds nothing up.
        link.leave(Duration::from_secs(2));
    } else {
        for copy in 0..LEAVE_COPIES {
            if copy > 0 {
                tokio::time::sleep(LEAVE_SPACING).await;
            }
            for b in &leaving {
                d.send(b);
            }
        }
    }
    if let Some(w) = watchdog {
        w.close();
    }
    tracing::info!("hbd stopped");
    Ok(())
}

impl Daemon {
    fn now(&self) -> Duration {
        Instant::now().saturating_duration_since(self.epoch)
    }

    /// systemd's STATUS= line: nodes up and groups started here.
    fn summary(&self) -> String {
        let now = self.now();
        let nodes = self.membership.status(now).nodes;
        let up = nodes
            .iter()
            .filter(|n| n.state == crate::membership::NodeState::Up)
            .count();
        let groups = self.config.groups.len();
        let here = (0..groups)
            .filter(|&i| self.groups.local_state(i) == GroupState::Started)
            .count();
        format!(
            "{}{}: {up} of {} nodes up, {here} of {groups} groups started here",
            self.config.node,
            if self.config.is_witness {
                " (witness)"
            } else {
                ""
            },
            nodes.len()
        )
    }

    /// A datagram from a receive task, heard when it arrived (its stamp),
    /// not when the loop got to it.
    fn on_received(&mut self, r: network::Received) {
        let at = r.at.saturating_duration_since(self.epoch);
        if let Err(reason) = self.membership.on_datagram(r.medium, &r.bytes, at) {
            tracing::trace!(from = %r.from, medium = r.medium.0, reason = reason.as_str(), "datagram dropped");
        }
    }

    fn next_deadline(&self) -> Duration {
        let waits = self
            .waiting
            .iter()
            .map(|w| w.deadline.saturating_duration_since(self.epoch))
            .min()
            .unwrap_or(Duration::MAX);
        self.membership
            .next_deadline()
            .min(self.ping.next_deadline())
            .min(self.groups.next_deadline())
            .min(self.monitor.machine.next_deadline())
            .min(self.jobs.next_deadline(self.now()))
            .min(waits)
            .min(
                self.outdater
                    .next_deadline()
                    .map_or(Duration::MAX, |t| t.saturating_duration_since(self.epoch)),
            )
    }

    fn tick(&mut self) {
        let now = self.now();
        if now >= self.membership.next_deadline() {
            self.membership.tick(now);
        }
        if now >= self.ping.next_send {
            if let Some(s) = &self.ping.socket {
                for (addr, e) in s.send(&self.ping.tracker.addresses()) {
                    tracing::debug!(ping_node = %addr, error = %e, "echo request not sent");
                }
            }
            self.ping.next_send = now + self.config.ha.keepalive;
        }
        for e in self.ping.tracker.tick(now) {
            log_ping_event(&e);
        }
        if let Some(n) = self.ping.settled_change(now) {
            tracing::info!(
                reached = n,
                of = self.ping.tracker.status(now).len(),
                "ping tiebreaker: settled count of reached ping nodes"
            );
            self.groups.set_ping(Some(n), now);
        }
        if now >= self.groups.next_deadline() {
            self.groups.tick(now);
        }
        if now >= self.monitor.machine.next_deadline() {
            self.monitor.machine.tick(now);
        }
        if now >= self.jobs.next_deadline(now) {
            self.jobs.machine.tick(jobs::unix_now());
        }
        for body in self.outdater.tick(self.config.ha.keepalive) {
            self.membership.broadcast(body);
        }
        // The witness and a one-node list have no peer to hear.
        if self.config.ha.nodes.len() > 1 || self.config.quorum.witness.is_some() {
            let deadtime = self.config.ha.deadtime;
            for i in self.silent.due(self.media.len(), now, deadtime) {
                let m = &self.media[i];
                let iface = self.config.ha.media.get(i).map_or("", |c| c.iface.as_str());
                tracing::warn!(
                    medium = %m.name,
                    iface,
                    destinations = ?m.destinations,
                    deadtime_ms = deadtime.as_millis() as u64,
                    "no peer heard on this medium since start: check that the peers use \
                     the same medium and port, that its destination reaches them (the \
                     interface's broadcast address, routes, a firewall on the UDP port) \
                     and that authkeys match"
                );
            }
        }
    }

    /// Moves outputs between the machines and out to the world until both
    /// are quiet: membership events feed the group machine, its reports go
    /// out through membership, its work goes to the runner.
    fn flush(&mut self) {
        // Job marks change only with peers' marks and our own job runs.
        let mut marks_dirty = false;
        loop {
            let mut idle = true;
            for out in self.membership.take_outputs() {
                idle = false;
                match out {
                    Output::Send(bytes) => self.send(&bytes),
                    Output::Event(e) => {
                        log_event(&self.media, &e);
                        let now = self.now();
                        self.membership_event(&e, now);
                        match e {
                            Event::NodeUp { node, incarnation } => {
                                self.groups.on_node_up(&node, incarnation, now)
                            }
                            Event::LinkUp { medium, .. } => self.silent.heard(medium),
                            Event::NodeRestarted { node, new, .. } => {
                                self.groups.on_node_up(&node, new, now)
                            }
                            Event::PeerDeadtime {
                                node,
                                incarnation,
                                deadtime,
                            } => self
                                .groups
                                .set_peer_deadtime(&node, incarnation, deadtime, now),
                            Event::PeerIncarnation {
                                node,
                                incarnation,
                                left,
                            } => self.remember_peer(node, incarnation, left),
                            Event::Quorum(q) => self.groups.set_engine_quorum(q, now),
                            Event::NodeDead { node, reason, .. } => {
                                self.outdater.peer_dead(&node);
                                self.groups
                                    .on_node_dead(&node, reason == DeadReason::Left, now)
                            }
                            Event::Outdate { node, outdate } => {
                                let drbd = self.config.drbd.as_ref();
                                let me = self.config.node.as_str();
                                let mine = |res: &str| {
                                    drbd.and_then(|d| d.resource(res))
                                        .and_then(|r| r.peer(me))
                                        .is_some_and(|p| p.name == node)
                                };
                                if let Some(body) = self.outdater.on_message(&node, outdate, mine) {
                                    self.membership.broadcast(body);
                                }
                            }
                            Event::Report {
                                node,
                                incarnation,
                                report,
                            } => {
                                // Marks first: a group this report hands over
                                // must know what its jobs ran.
                                for m in &report.marks {
                                    self.jobs.machine.on_peer_mark(&m.job, m.last);
                                    marks_dirty = true;
                                }
                                self.groups.on_report(&node, incarnation, report, now)
                            }
                            _ => {}
                        }
                    }
                }
            }
            for (node, medium, gap) in self.membership.take_gaps() {
                if let Some(m) = self.media.get(medium.0 as usize) {
                    self.observe.metrics.heartbeat_gap(&node, &m.name, gap);
                }
            }
            for out in self.groups.take_outputs() {
                idle = false;
                match out {
                    grp::Output::Send(report) => self.membership.broadcast(Body::Groups(report)),
                    // The witness runs nothing: every group is stopped there.
                    grp::Output::Probe(i) if self.config.is_witness => {
                        let now = self.now();
                        self.groups.on_probe(i, grp::Probe::Stopped, now)
                    }
                    grp::Output::Start(i) if self.config.is_witness => {
                        tracing::error!(group = %self.config.groups[i].id, "the witness runs no resources: start refused");
                        let now = self.now();
                        self.groups.on_done(
                            i,
                            grp::OpResult::StartFailed { rolled_back: true },
                            now,
                        )
                    }
                    grp::Output::Stop(i) if self.config.is_witness => {
                        let now = self.now();
                        self.groups.on_done(i, grp::OpResult::Stopped, now)
                    }
                    grp::Output::Probe(i) => self.runner.probe(i),
                    grp::Output::Start(i) => self.runner.start(i, self.groups.released(i)),
                    grp::Output::Stop(i) => self.runner.stop(i),
                    grp::Output::Event(e) => {
                        log_group_event(&e);
                        self.group_event(&e);
                    }
                    grp::Output::Reannounce(i) => {
                        tracing::info!(group = %self.config.groups[i].id, "announcing the group's addresses again");
                        if !self.config.is_witness {
                            self.runner.reannounce(i);
                        }
                    }
                    grp::Output::Fence(node) => self.fence(node),
                    grp::Output::Quorum(q) => log_quorum(&q),
                }
            }
            let now = self.now();
            for i in 0..self.config.groups.len() {
                let started = self.groups.local_state(i) == GroupState::Started;
                if self.monitor.sync(i, started, now) {
                    idle = false;
                }
            }
            for out in self.monitor.machine.take_outputs() {
                idle = false;
                self.monitor_output(out);
            }
            for i in 0..self.config.groups.len() {
                let started = self.groups.local_state(i) == GroupState::Started;
                if self.jobs.sync(i, started) {
                    idle = false;
                    marks_dirty = true;
                }
            }
            for out in self.jobs.machine.take_outputs() {
                idle = false;
                marks_dirty = true;
                match out {
                    crate::jobs::Output::Run { job, scheduled } => self.jobs.run(job, scheduled),
                    crate::jobs::Output::Event { job, message } => {
                        tracing::info!(job = %self.config.jobs[job].name, %message, "job")
                    }
                }
            }
            if std::mem::take(&mut marks_dirty) {
                let marks = self
                    .jobs
                    .machine
                    .marks()
                    .into_iter()
                    .map(|(job, last)| crate::wire::JobMark { job, last })
                    .collect();
                self.groups.set_marks(marks, now);
            }
            if idle {
                return;
            }
        }
    }

    /// Persists what membership must remember of a peer across this
    /// node's restarts ([`Event::PeerIncarnation`]). An incarnation more
    /// than a day ahead of this node's clock is not kept: incarnations
    /// follow their node's clock, and one so far ahead would, written
    /// down, make every later datagram of that peer stale until the file
    /// is deleted.
    fn remember_peer(&mut self, node: String, incarnation: u64, left: bool) {
        const AHEAD: u64 = 24 * 3600;
        let unix = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        if incarnation > unix.saturating_add(AHEAD) {
            tracing::warn!(peer = %node, incarnation, "peer incarnation more than a day ahead of this clock: not remembered across restarts");
            return;
        }
        self.peers_seen
            .insert(node.clone(), state::PeerSeen { incarnation, left });
        if let Err(e) = state::save_peers(&self.paths.state_dir, &self.peers_seen) {
            tracing::warn!(peer = %node, error = %e, "cannot save the peers file in the state dir: a replay of an older incarnation may be accepted after a restart");
        }
    }

    /// What the served-data poller found: each group's bytes written here
    /// while its disks had no peer; changes go to the group machine.
    fn on_served(&mut self, served: Vec<served::GroupDisks>) {
        let now = self.now();
        for (i, g) in served.iter().enumerate() {
            let old = self.served.get(i).cloned().unwrap_or_default();
            if old.served != g.served {
                if g.served > 0 || old.served > 0 {
                    tracing::info!(group = %self.config.groups[i].id, bytes = g.served, "served without a peer");
                }
                self.groups.set_served(i, g.served, now);
            }
            if old.catching_up != g.catching_up {
                match &g.catching_up {
                    Some(why) => {
                        tracing::info!(group = %self.config.groups[i].id, why, "disk catching up here: the group does not move here meanwhile")
                    }
                    None => tracing::info!(group = %self.config.groups[i].id, "disk caught up"),
                }
                self.groups.set_disk_wait(i, g.catching_up.clone(), now);
            }
        }
        self.served = served;
    }

    /// Fences `node` (the fence agents of ha.cf's `stonith_host` lines);
    /// the fencing work of issue 13 fills this in.
    fn fence(&mut self, node: String) {
        let now = self.now();
        self.timeline.fence_started(&node, now);
        self.fence.fence(&node, None);
    }

    /// Logs a monitoring notice, keeps it for status and runs the notify hook.
    fn notice(&mut self, n: monitor::Notice) {
        const KEEP: usize = 5;
        if let Some(i) = self.groups.group_index(&n.group) {
            let stamp = crate::jobs::cron::local_civil(jobs::unix_now());
            let subject = if n.check.is_empty() {
                String::new()
            } else {
                format!(" {}", n.check)
            };
            let q = &mut self.events[i];
            if q.len() == KEEP {
                q.pop_front();
            }
            q.push_back(format!("{stamp} {}{subject}: {}", n.event, n.reason));
        }
        monitor::notify(self.config.notify.as_ref(), n);
    }

    fn monitor_output(&mut self, out: crate::monitor::scheduler::Output) {
        use crate::monitor::scheduler::Output as M;
        let now = self.now();
        let group_id = |g: usize| self.config.groups[g].id.clone();
        match out {
            M::Run(i) => self.monitor.run(i),
            M::Restart {
                check,
                group,
                resource,
            } => {
                self.notice(monitor::Notice {
                    event: "restart".into(),
                    group: group_id(group),
                    resource: self.config.groups[group].resources[resource].spec.clone(),
                    check: self.config.checks[check].name.clone(),
                    node: self.config.node.clone(),
                    reason: "check failed: restarting in place".into(),
                    ..Default::default()
                });
                self.runner.restart(group, resource, check);
            }
            M::Unhealthy {
                group,
                check,
                reason,
            } => {
                self.groups.set_unhealthy(group, Some(reason.clone()), now);
                let (desired, _) = self.groups.desired(group);
                let stays = desired.as_deref() == Some(self.config.node.as_str());
                tracing::error!(group = %group_id(group), %reason, stays, "group unhealthy here");
                self.notice(monitor::Notice {
                    event: if stays { "stay" } else { "move" }.into(),
                    group: group_id(group),
                    check: self.config.checks[check].name.clone(),
                    node: self.config.node.clone(),
                    old_state: "healthy".into(),
                    new_state: "unhealthy".into(),
                    reason: if stays {
                        format!("{reason}; no healthy node can take it: it stays here")
                    } else {
                        format!(
                            "{reason}; moving to {}",
                            desired.as_deref().unwrap_or("another node")
                        )
                    },
                    ..Default::default()
                });
            }
            M::Healthy { group } => {
                self.groups.set_unhealthy(group, None, now);
                self.notice(monitor::Notice {
                    event: "healthy".into(),
                    group: group_id(group),
                    node: self.config.node.clone(),
                    old_state: "unhealthy".into(),
                    new_state: "healthy".into(),
                    reason: "every check passes again".into(),
                    ..Default::default()
                });
            }
            M::Event(e) => {
                let c = &self.config.checks[e.check];
                self.observe.publish(
                    crate::events::Event::change("check", &c.name)
                        .with("group", group_id(c.group))
                        .with("from", e.from.as_str())
                        .with("to", e.to.as_str())
                        .with("reason", &e.reason),
                );
                let interesting = matches!(e.to, crate::monitor::scheduler::Health::Failed)
                    || (e.from == crate::monitor::scheduler::Health::Failed);
                if interesting {
                    self.notice(monitor::Notice {
                        event: format!("check-{}", e.to.as_str()),
                        group: group_id(c.group),
                        check: c.name.clone(),
                        node: self.config.node.clone(),
                        old_state: e.from.as_str().into(),
                        new_state: e.to.as_str().into(),
                        reason: e.reason.clone(),
                        ..Default::default()
                    });
                } else {
                    tracing::info!(check = %c.name, group = %group_id(c.group), from = e.from.as_str(), to = e.to.as_str(), reason = %e.reason, "check");
                }
            }
        }
    }

    fn send(&mut self, bytes: &[u8]) {
        if let Some(link) = &self.cpg {
            link.send(bytes.to_vec());
            return;
        }
        for m in &self.media {
            for (dest, e) in m.send(bytes) {
                let quiet = self
                    .last_send_error_log
                    .is_some_and(|t| t.elapsed() < Duration::from_secs(10));
                if !quiet {
                    self.last_send_error_log = Some(Instant::now());
                    tracing::warn!(medium = %m.name, %dest, error = %e, "send failed (logged at most every 10 s)");
                }
            }
        }
    }
}

#[cfg(test)]
mod silent_media_tests {
    use super::SilentMedia;
    use crate::membership::MediumId;
    use std::time::Duration;

    const DEADTIME: Duration = Duration::from_secs(10);

    fn s(secs: u64) -> Duration {
        Duration::from_secs(secs)
    }

    #[test]
    fn nothing_before_deadtime() {
        let mut m = SilentMedia::default();
        assert!(m.due(2, s(0), DEADTIME).is_empty());
        assert!(m.due(2, s(9), DEADTIME).is_empty());
        // Not spent by the early checks: both are due at deadtime.
        assert_eq!(m.due(2, s(10), DEADTIME), vec![0, 1]);
    }

    #[test]
    fn only_the_media_that_heard_nobody_once() {
        let mut m = SilentMedia::default();
        m.heard(MediumId(1));
        m.heard(MediumId(1));
        assert_eq!(m.due(3, s(11), DEADTIME), vec![0, 2]);
        // Once per medium: not at the next ticks, heard or not.
        assert!(m.due(3, s(12), DEADTIME).is_empty());
        m.heard(MediumId(0));
        assert!(m.due(3, s(100), DEADTIME).is_empty());
    }

    #[test]
    fn every_medium_heard_warns_nothing() {
        let mut m = SilentMedia::default();
        m.heard(MediumId(0));
        m.heard(MediumId(1));
        assert!(m.due(2, s(10), DEADTIME).is_empty());
        // A medium index it never saw (a caller bug) does not panic.
        m.heard(MediumId(7));
        assert!(m.due(2, s(20), DEADTIME).is_empty());
    }
}
