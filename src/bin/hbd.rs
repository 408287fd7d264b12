//! hbd: the cluster daemon. Runs in the foreground; `systemd` or the lab
//! scripts supervise it.

use anyhow::Context;
use clap::Parser;
use hbd::vrrp::runtime::{VrrpHandle, VrrpOptions, VrrpRuntime};
use hbd::{config, exit, runtime};
use std::path::PathBuf;
use std::process::ExitCode;

/// hbd: heartbeat-compatible cluster membership and failover daemon.
///
/// Reads heartbeat's ha.cf, authkeys and haresources (plus an optional
/// cluster.toml) from the configuration directory, exchanges authenticated
/// keepalives with the other nodes and answers hbctl on a control socket.
/// SIGTERM: leave the cluster in order. SIGHUP: reload the configuration.
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
    let args = Args::parse();
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
    let result = if config.is_witness {
        // The witness runs no VRRP instances either.
        rt.block_on(async { runtime::run(paths, config).await.map_err(Into::into) })
    } else if config.vrrp_only {
        rt.block_on(run_vrrp_only(paths, config))
    } else {
        rt.block_on(run_both(paths, config))
    };
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

async fn start_vrrp(config: &config::Config) -> anyhow::Result<Option<VrrpHandle>> {
    let Some(k) = config.keepalived.clone() else {
        return Ok(None);
    };
    // cluster.toml's [vrrp.gate.INSTANCE] (validated by config::check).
    let gate_checks = config
        .cluster
        .vrrp
        .gate
        .iter()
        .filter_map(|(name, g)| g.resolve(name).ok())
        .collect();
    let v3_checksum = match config.cluster.vrrp.v3_checksum.unwrap_or_default() {
        config::V3ChecksumToml::PseudoHeader => hbd::vrrp::packet::V3Checksum::PseudoHeader,
        config::V3ChecksumToml::Rfc9568 => hbd::vrrp::packet::V3Checksum::NoPseudoHeader,
    };
    let opts = VrrpOptions {
        gate_checks,
        v3_checksum,
        ..VrrpOptions::default()
    };
    let h = VrrpRuntime::start(k, opts)
        .await
        .map_err(|e| anyhow::anyhow!("VRRP: {e}"))?;
    Ok(Some(h))
}

/// heartbeat mode, with the VRRP instances of keepalived.conf next to it when
/// there is one (stopped after the resource groups).
async fn run_both(paths: runtime::Paths, config: config::Config) -> anyhow::Result<()> {
    // Taken before the VRRP instances start, so that a second hbd stops
    // here rather than after touching the VIPs (runtime::run takes it again).
    let _pid = match config.keepalived {
        Some(_) => Some(runtime::state::PidFile::create(&paths.run_dir)?),
        None => None,
    };
    let vrrp = start_vrrp(&config).await?.map(std::sync::Arc::new);
    let r = runtime::run_with_vrrp(paths, config, vrrp.clone()).await;
    if let Some(v) = vrrp {
        v.shutdown().await;
    }
    Ok(r?)
}

/// VRRP mode alone (keepalived.conf without ha.cf): the instances run until
/// SIGTERM or SIGINT, then advertise priority 0 and remove their VIPs.
async fn run_vrrp_only(paths: runtime::Paths, config: config::Config) -> anyhow::Result<()> {
    use tokio::signal::unix::{signal, SignalKind};
    let _pid = runtime::state::PidFile::create(&paths.run_dir)?;
    let mut term = signal(SignalKind::terminate()).context("signals")?;
    let mut int = signal(SignalKind::interrupt()).context("signals")?;
    let mut hup = signal(SignalKind::hangup()).context("signals")?;
    for w in &config.warnings {
        tracing::warn!(warning = %w, "configuration warning");
    }
    let vrrp = start_vrrp(&config).await?.context("no keepalived.conf")?;
    // The control socket: status, standby and takeover of the instances.
    let access = std::sync::Arc::new(std::sync::RwLock::new(
        runtime::control::Access::from_group(config.cluster.control.group.as_deref()),
    ));
    let (call_tx, mut calls) = tokio::sync::mpsc::channel(64);
    let _control = runtime::control::ControlServer::start(&paths.run_dir, access, call_tx)
        .with_context(|| format!("control socket in {}", paths.run_dir.display()))?;
    let started = tokio::time::Instant::now();
    tracing::info!(config = %paths.config_dir.display(), "hbd started in VRRP mode (keepalived.conf, no ha.cf)");
    loop {
        tokio::select! {
            Some((request, reply)) = calls.recv() => {
                let _ = reply.send(runtime::vrrp_only_answer(&config, &vrrp, started, request));
            }
            _ = term.recv() => break,
            _ = int.recv() => break,
            _ = hup.recv() => {
                tracing::warn!("SIGHUP: reloading keepalived.conf is not supported yet; restart hbd to apply changes");
            }
        }
    }
    tracing::info!("shutting down: priority 0 adverts, VIPs removed");
    vrrp.shutdown().await;
    Ok(())
}

fn uname_n() -> anyhow::Result<String> {
    let name = nix::unistd::gethostname().context("cannot read the host name (uname -n)")?;
    name.into_string()
        .map_err(|n| anyhow::anyhow!("host name {n:?} is not UTF-8; use --node"))
}
