//! `hbd-disk RES`: the device process of one replicated resource (started
//! by `hbctl disk up` or the `drbddisk` agent; one per resource per node, in
//! its own session, so that restarting hbd never takes storage down).
//!
//! Runs in the foreground; `hbctl disk` talks to it on
//! `RUN_DIR/disk/RES.sock`. Logs to stderr (under systemd: the journal,
//! with `<N>` priorities), or with `--log-file PATH` to that file, which
//! SIGHUP and SIGUSR2 reopen (logrotate). SIGUSR1 logs the device's state.
//! Under systemd: Type=notify (READY, STOPPING, WATCHDOG).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use hbd::disk::device::{Device, DeviceConfig};
use hbd::disk::mounts;
use hbd::exit;
use hbd::runtime::logging;

#[derive(Debug, Parser)]
#[command(
    name = "hbd-disk",
    version,
    about = "hbd's replicated block device process"
)]
struct Args {
    /// Configuration directory (drbd.conf, authkeys, cluster.toml).
    #[arg(long, value_name = "DIR", default_value = "/etc/ha.d")]
    config: PathBuf,
    /// This node's name in drbd.conf's `on` sections [default: uname -n].
    #[arg(long, value_name = "NAME")]
    node: Option<String>,
    /// Where the control socket, pid file and FUSE mount point go.
    #[arg(long, value_name = "DIR", default_value = "/run/hbd")]
    run_dir: PathBuf,
    /// Append the log (and any early error) to this file instead of
    /// stderr; SIGHUP or SIGUSR2 reopens it (logrotate). `hbctl disk up`,
    /// hbd and the drbddisk agent pass /var/log/hbd/disk-RES.log (with a
    /// non-default --run-dir: RUN_DIR/disk/RES.log).
    #[arg(long, value_name = "PATH")]
    log_file: Option<PathBuf>,
    /// The resource (drbd.conf `resource NAME`).
    resource: String,
}

fn main() -> ExitCode {
    if let Some(code) = hbd::manual::generate_if_asked::<Args>("hbd-disk") {
        return code;
    }
    let args = Args::parse();
    // Single-threaded still: takes NOTIFY_SOCKET out of the environment
    // of the handlers it runs.
    hbd::sd_notify::init_from_env();
    if let Some(p) = &args.log_file {
        if let Err(e) = logging::redirect_stderr(p) {
            eprintln!("hbd-disk: log file {e}");
            return ExitCode::from(exit::FAILURE);
        }
    }
    if let Err(e) = logging::init_stderr() {
        eprintln!("hbd-disk: logging: {e}");
        return ExitCode::from(exit::FAILURE);
    }
    let node = match args
        .node
        .map(Ok)
        .unwrap_or_else(|| nix::unistd::gethostname().map(|n| n.to_string_lossy().into_owned()))
    {
        Ok(n) => n.to_lowercase(),
        Err(e) => {
            eprintln!("hbd-disk: cannot read the host name: {e}; use --node");
            return ExitCode::from(exit::FAILURE);
        }
    };
    let cfg = match DeviceConfig::load(&args.config, &node, &args.run_dir, &args.resource) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("hbd-disk: {e}");
            return ExitCode::from(exit::CONFIG);
        }
    };
    // A mount namespace of its own, private propagation: the filesystem
    // that is mounted on this device elsewhere (hbd's Filesystem agent, an
    // admin's mount) never shows up here. Otherwise, when every process of
    // that namespace dies and this one is the last, its exit would unmount
    // that filesystem, whose final writes go to the loop device only this
    // dying process serves: stuck in D state for ever. Not MS_SLAVE: a
    // slave receives every mount made later below its masters, this
    // device's own filesystem included whenever the caller's mounts are
    // shared (hbd under systemd), and a mount propagated in stays when the
    // namespace it came from dies (namespace teardown does not propagate).
    // Done while the process is still single-threaded.
    //
    // The copy also holds every filesystem mounted when the device started,
    // and an unmount outside no longer reaches it: another resource's ext4,
    // a USB disk. So every inherited mount the device does not need is
    // detached here, in this namespace only (`disk::mounts`).
    match private_mounts() {
        Ok(()) => {
            let tried = mounts::detach_unneeded(&mounts::Needs::of(&cfg));
            for (at, r) in &tried {
                match r {
                    Ok(()) => tracing::debug!(at = %at.display(), "inherited mount detached"),
                    Err(e) => {
                        tracing::warn!(at = %at.display(), error = %e, "cannot detach an inherited mount")
                    }
                }
            }
            tracing::info!(
                detached = tried.iter().filter(|(_, r)| r.is_ok()).count(),
                "inherited mounts the device does not need detached"
            );
        }
        Err(e) => tracing::warn!("cannot get a mount namespace of its own: {e}"),
    }
    if let Err(e) = hbd::disk::expose::harden_process() {
        tracing::warn!(
            "{e} (continuing: memory reclaim could deadlock on this device under pressure)"
        );
    }
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("hbd-disk")
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("hbd-disk: starting the runtime: {e}");
            return ExitCode::from(exit::FAILURE);
        }
    };
    let dev = match Device::open(cfg, rt.handle().clone()) {
        Ok(d) => d,
        Err(e) => {
            eprintln!("hbd-disk: {}: {e}", args.resource);
            return ExitCode::from(exit::FAILURE);
        }
    };
    if let Err(e) = rt.block_on(async { other_signals(dev.clone()) }) {
        eprintln!("hbd-disk: signals: {e}");
        return ExitCode::from(exit::FAILURE);
    }
    let r = rt.block_on(dev.run());
    rt.shutdown_timeout(std::time::Duration::from_secs(2));
    match r {
        Ok(()) => ExitCode::from(exit::OK),
        Err(e) => {
            eprintln!("hbd-disk: {}: {e}", args.resource);
            ExitCode::from(exit::FAILURE)
        }
    }
}

/// SIGHUP and SIGUSR2 reopen the log file, SIGUSR1 logs the device's
/// state; none of them ends the process (their default action would, with
/// the device still exposed). SIGTERM and SIGINT are `Device::run`'s.
fn other_signals(dev: std::sync::Arc<Device>) -> std::io::Result<()> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut hup = signal(SignalKind::hangup())?;
    let mut usr1 = signal(SignalKind::user_defined1())?;
    let mut usr2 = signal(SignalKind::user_defined2())?;
    tokio::spawn(async move {
        loop {
            let name = tokio::select! {
                Some(()) = hup.recv() => "SIGHUP",
                Some(()) = usr2.recv() => "SIGUSR2",
                Some(()) = usr1.recv() => {
                    let d = dev.clone();
                    if let Ok(line) = tokio::task::spawn_blocking(move || d.status_line()).await {
                        tracing::info!(signal = "SIGUSR1", "state: {line}");
                    }
                    continue;
                }
                else => return,
            };
            let files = logging::reopen();
            if !files.is_empty() {
                tracing::info!(signal = name, files = ?files, "log file reopened");
            }
        }
    });
    Ok(())
}

fn private_mounts() -> nix::Result<()> {
    use nix::mount::{mount, MsFlags};
    nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNS)?;
    mount(
        None::<&str>,
        "/",
        None::<&str>,
        MsFlags::MS_REC | MsFlags::MS_PRIVATE,
        None::<&str>,
    )
}
