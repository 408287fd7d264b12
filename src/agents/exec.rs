//! Script agents: heartbeat-style (`resource.d`), LSB init scripts and OCF
//! agents, each run with a timeout, its output logged line by line.
//!
//! STUB: filled in by the exec work item.

use super::{Action, AgentError, AgentKind, Running};
use std::time::Duration;

/// Runs `action` of a script agent (`kind` is Heartbeat, Lsb or Ocf). For
/// [`Action::Status`] the answer is whether it runs; for start and stop,
/// `Ok(Running::Running)`/`Ok(Running::Stopped)` on success.
pub async fn run(
    kind: &AgentKind,
    action: Action,
    timeout: Duration,
) -> Result<Running, AgentError> {
    let _ = (kind, timeout);
    Err(AgentError::Failed(format!(
        "{action}: script agents not implemented yet"
    )))
}
