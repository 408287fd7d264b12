//! How `hbd` runs, chosen from its configuration: heartbeat mode (ha.cf; also
//! the quorum witness), heartbeat mode with keepalived.conf's VRRP instances
//! beside it, or VRRP mode alone (keepalived.conf without ha.cf). Every mode
//! has the same shape: one loop that owns the state, fed by the control
//! server ([`super::control_server`]) and the signal stream
//! ([`super::signals`]) over channels; the VRRP instances are tasks of
//! their own (`vrrp::runtime`) that the loop reaches through a
//! [`VrrpHandle`].

use super::{
    calls, control_server, dump, reopen_logs, run, run_with_vrrp, signals, state, Paths,
    RuntimeError,
};
use crate::config::{self, Config};
use crate::ctl;
use crate::vrrp::runtime::{VrrpHandle, VrrpOptions, VrrpRuntime};
use futures::StreamExt;
use signal_hook::consts::{SIGHUP, SIGUSR1, SIGUSR2};
use std::sync::Arc;
use tokio::time::Instant;

/// Runs the daemon in the mode `config` asks for, until SIGTERM or SIGINT.
pub async fn run_daemon(paths: Paths, config: Config) -> Result<(), RuntimeError> {
    if config.is_witness {
        // The witness runs no VRRP instances either.
        run(paths, config).await
    } else if config.vrrp_only {
        run_vrrp_only(paths, config).await
    } else {
        run_both(paths, config).await
    }
}

/// keepalived.conf's instances, started (none without a keepalived.conf).
async fn start_vrrp(config: &Config) -> Result<Option<VrrpHandle>, RuntimeError> {
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
        config::V3ChecksumToml::PseudoHeader => crate::vrrp::packet::V3Checksum::PseudoHeader,
        config::V3ChecksumToml::Rfc9568 => crate::vrrp::packet::V3Checksum::NoPseudoHeader,
    };
    let opts = VrrpOptions {
        gate_checks,
        v3_checksum,
        ..VrrpOptions::default()
    };
    let h = VrrpRuntime::start(k, opts)
        .await
        .map_err(|e| RuntimeError::Vrrp(e.to_string()))?;
    Ok(Some(h))
}

/// heartbeat mode, with the VRRP instances of keepalived.conf next to it when
/// there is one (stopped after the resource groups).
async fn run_both(paths: Paths, config: Config) -> Result<(), RuntimeError> {
    // Taken before the VRRP instances start, so that a second hbd stops
    // here rather than after touching the VIPs (run_with_vrrp takes it again).
    let _pid = match config.keepalived {
        Some(_) => Some(state::PidFile::create(&paths.run_dir)?),
        None => None,
    };
    let vrrp = start_vrrp(&config).await?.map(Arc::new);
    let r = run_with_vrrp(paths, config, vrrp.clone()).await;
    if let Some(v) = vrrp {
        v.shutdown().await;
    }
    r
}

/// VRRP mode alone (keepalived.conf without ha.cf): the loop answers the
/// control socket from the instances' status until SIGTERM or SIGINT, then
/// the instances advertise priority 0 and remove their VIPs.
async fn run_vrrp_only(paths: Paths, config: Config) -> Result<(), RuntimeError> {
    let _pid = state::PidFile::create(&paths.run_dir)?;
    let mut signals = signals()?;
    for w in &config.warnings {
        tracing::warn!(warning = %w, "configuration warning");
    }
    let vrrp = start_vrrp(&config)
        .await?
        .ok_or_else(|| RuntimeError::Vrrp("no keepalived.conf".into()))?;
    // The control socket: status, standby and takeover of the instances.
    let super::ControlInputs {
        server: _control,
        mut calls,
        ..
    } = control_server(&paths, &config)?;
    let started = Instant::now();
    tracing::info!(config = %paths.config_dir.display(), "hbd started in VRRP mode (keepalived.conf, no ha.cf)");
    let summary = |vrrp: &VrrpHandle| {
        let st = vrrp.status();
        let master = st.iter().filter(|v| v.state == "MASTER").count();
        format!("VRRP mode: {master} of {} instances MASTER here", st.len())
    };
    crate::sd_notify::ready(&summary(&vrrp));
    let mut sd_watchdog = crate::sd_notify::WatchdogPacer::new();
    loop {
        if sd_watchdog.tick() {
            crate::sd_notify::status(&summary(&vrrp));
        }
        let wake = sd_watchdog.due();
        tokio::select! {
            _ = async { tokio::time::sleep_until(wake.unwrap_or_else(Instant::now)).await }, if wake.is_some() => {}
            Some((request, reply)) = calls.recv() => {
                let _ = reply.send(calls::vrrp_only_answer(&config, &vrrp, started, request));
            }
            sig = signals.next() => match sig {
                Some(SIGHUP) => {
                    reopen_logs("SIGHUP");
                    tracing::warn!(
                        "SIGHUP: reloading keepalived.conf is not supported yet; restart hbd to apply changes"
                    )
                }
                Some(SIGUSR2) => reopen_logs("SIGUSR2"),
                Some(SIGUSR1) => {
                    if let ctl::Response::Status(s) = calls::vrrp_only_answer(&config, &vrrp, started, ctl::Request::Status) {
                        dump::log_status(&s);
                    }
                }
                // TERM, INT, or the stream gone.
                _ => break,
            },
        }
    }
    crate::sd_notify::stopping("leaving: priority 0 adverts, VIPs removed");
    tracing::info!("shutting down: priority 0 adverts, VIPs removed");
    vrrp.shutdown().await;
    Ok(())
}
