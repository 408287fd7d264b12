//! The `[notify] command` hook (cluster.toml): one event as `HBD_*`
//! environment variables, run in the background with its output logged.
//! Events: check-failed/check-ok, restart, move, stay, healthy (checks);
//! node-dead; group-starting, group-started, group-stopped, group-failed;
//! takeover (a group started here after a peer's death: `HBD_PHASE`
//! started, `HBD_DURATION_MS` from the peer's last datagram, `HBD_REASON`
//! the phases with their durations); split-brain, resync (the disks).
//! Called by the daemon's runtime (checks, groups, nodes) and by the device
//! process (split brain, resync), so it sits below both.

use crate::config::NotifyConfig;
use tracing::Instrument;

/// One event for the notify hook, as `HBD_*` environment variables.
#[derive(Debug, Clone, Default)]
pub struct Notice {
    /// check-failed, check-ok, restart, move, stay, healthy...
    pub event: String,
    pub group: String,
    pub resource: String,
    pub check: String,
    pub node: String,
    pub old_state: String,
    pub new_state: String,
    pub reason: String,
    /// A takeover's phase (`started`: the whole; the reason lists the
    /// phases with their durations).
    pub phase: String,
    /// How long it took (a takeover's phase; a dead node's silence).
    pub duration_ms: Option<u64>,
}

/// Runs the notify hook for `n` in the background (its output is logged).
pub fn notify(hook: Option<&NotifyConfig>, n: Notice) {
    tracing::info!(
        event = %n.event,
        group = %n.group,
        check = %n.check,
        resource = %n.resource,
        old = %n.old_state,
        new = %n.new_state,
        reason = %n.reason,
        phase = %n.phase,
        duration_ms = n.duration_ms,
        "notice"
    );
    let Some(hook) = hook.cloned() else {
        return;
    };
    let env: Vec<(String, String)> = [
        ("HBD_EVENT", n.event),
        ("HBD_GROUP", n.group),
        ("HBD_RESOURCE", n.resource),
        ("HBD_CHECK", n.check),
        ("HBD_NODE", n.node),
        ("HBD_OLD_STATE", n.old_state),
        ("HBD_NEW_STATE", n.new_state),
        ("HBD_REASON", n.reason),
        ("HBD_PHASE", n.phase),
        (
            "HBD_DURATION_MS",
            n.duration_ms.map(|d| d.to_string()).unwrap_or_default(),
        ),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    tokio::spawn(
        async move {
            match crate::process::run_shell(&hook.command, None, &env, hook.timeout).await {
                Ok(0) => {}
                Ok(code) => tracing::warn!(code, "notify command failed"),
                Err(e) => tracing::warn!(error = %e, "notify command"),
            }
        }
        .instrument(tracing::info_span!("notify")),
    );
}
