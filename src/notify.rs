//! The `[notify] command` hook (cluster.toml): one event as `HBD_*`
//! environment variables, run in the background with its output logged.
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
