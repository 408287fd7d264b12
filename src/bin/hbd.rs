//! hbd: the cluster daemon. Runs in the foreground; `systemd` or the lab
//! scripts supervise it.

use anyhow::Context;
use clap::Parser;
use hbd::{config, exit, runtime};
use std::path::PathBuf;
use std::process::ExitCode;

/// hbd: heartbeat-compatible cluster membership and failover daemon.
///
/// Reads heartbeat's ha.cf, authkeys and haresources (plus an optional
/// cluster.toml) from the configuration directory, exchanges authenticated
/// keepalives with the other nodes and answers hbctl on a control socket.
/// SIGTERM: leave the cluster in order. SIGHUP: reload the configuration
/// and reopen the log files. SIGUSR1: write the state to the log. SIGUSR2:
/// reopen the log files. Under systemd: Type=notify (READY, STOPPING,
/// WATCHDOG at half of WatchdogSec), and journal priorities on stderr.
///
/// With a keepalived.conf in the configuration directory hbd also runs its
/// VRRP instances; without ha.cf it runs them alone (VRRP mode, no
/// membership).
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// Configuration directory holding ha.cf, authkeys, haresources, cluster.toml, keepalived.conf.
    #[arg(long, value_name = "DIR", default_value = "/etc/ha.d")]
    config: PathBuf,
    /// This node's name as in ha.cf's node lines [default: uname -n].
    #[arg(long, value_name = "NAME")]
    node: Option<String>,
    /// Directory for the control socket (hbd.sock) and the pid file (hbd.pid).
    #[arg(long, value_name = "DIR", default_value = "/run/hbd")]
    run_dir: PathBuf,
    /// Directory for persisted state (the incarnation number).
    #[arg(long, value_name = "DIR", default_value = "/var/lib/hbd")]
    state_dir: PathBuf,
    /// Run as the quorum witness of a two-node cluster: the same
    /// configuration files, --node must be cluster.toml's `[quorum] witness`;
    /// exchanges keepalives and group reports, runs no resources, disks,
    /// checks or jobs.
    #[arg(long)]
    witness: bool,
}

fn main() -> ExitCode {
    if let Some(code) = hbd::manual::generate_if_asked::<Args>("hbd") {
        return code;
    }
    let args = Args::parse();
    // Before any thread exists: it takes NOTIFY_SOCKET out of the
    // environment the agents inherit.
    hbd::sd_notify::init_from_env();
    let node = match args.node.clone().map_or_else(uname_n, Ok) {
        Ok(n) => n,
        Err(e) => {
            eprintln!("hbd: {e:#}");
            return ExitCode::from(exit::FAILURE);
        }
    };
    let load = if args.witness {
        config::load_witness
    } else {
        config::load
    };
    let config = match load(&args.config, &node) {
        Ok(c) => c,
        Err(errors) => {
            eprintln!("hbd: the configuration is invalid; nothing was started:");
            for e in &errors.0 {
                eprintln!("  {e}");
            }
            return ExitCode::from(exit::CONFIG);
        }
    };
    for w in &config.warnings {
        eprintln!("hbd: warning: {w}");
    }
    if let Err(e) = runtime::logging::init(&config.ha) {
        eprintln!("hbd: logging: {e}");
        return ExitCode::from(exit::FAILURE);
    }
    let paths = runtime::Paths {
        config_dir: args.config,
        run_dir: args.run_dir,
        state_dir: args.state_dir,
    };
    // ha.cf `realtime`: this thread (the daemon loop) and the receive
    // thread at SCHED_RR, memory locked; the blocking pool stays normal.
    // VRRP mode has no keepalive path (and no receive thread to wake).
    if !config.vrrp_only {
        runtime::realtime::enter(runtime::realtime::Settings::of(&config));
    }
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .on_thread_start(runtime::realtime::blocking_thread_start)
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("hbd: cannot start the runtime: {e}");
            return ExitCode::from(exit::FAILURE);
        }
    };
    let result = rt.block_on(runtime::run_daemon(paths, config));
    // A blocking task still running (an account lookup stalled on LDAP or
    // sssd...) must not keep hbd from exiting.
    rt.shutdown_timeout(std::time::Duration::from_secs(1));
    match result {
        Ok(()) => ExitCode::from(exit::OK),
        Err(e) => {
            tracing::error!(error = %e, "hbd failed");
            eprintln!("hbd: {e}");
            ExitCode::from(exit::FAILURE)
        }
    }
}

fn uname_n() -> anyhow::Result<String> {
    let name = nix::unistd::gethostname().context("cannot read the host name (uname -n)")?;
    name.into_string()
        .map_err(|n| anyhow::anyhow!("host name {n:?} is not UTF-8; use --node"))
}
