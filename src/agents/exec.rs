//! Script agents: heartbeat-style (`resource.d`), LSB init scripts and OCF
//! agents, each run by [`crate::process::run`] with a timeout, its output
//! logged line by line in the caller's span (stdout at info, stderr at
//! warn); the last lines make the message of a failure.
//!
//! The environment is the clean one of [`crate::process::clean_command`]
//! plus hbd's own `HBD_*` variables (agent tuning such as `HBD_STOP_GRACE`)
//! and, for OCF, the `OCF_*` variables (`OCF_RESKEY_CRM_meta_timeout` the
//! operation's timeout in milliseconds). [`validate_all`] asks an agent
//! whether its parameters make sense (`hbctl check`). This file decides what an agent's
//! exit code and output mean; `process` runs it.

use super::{Action, AgentError, AgentKind, Running};
use crate::process::{self, Command, Finished, Output, RunError};
use std::path::Path;
use std::time::Duration;

/// Runs `action` of a script agent (`kind` is Heartbeat, Lsb or Ocf). For
/// [`Action::Status`] the answer is whether it runs; for start and stop,
/// `Ok(Running::Running)`/`Ok(Running::Stopped)` on success.
pub async fn run(
    kind: &AgentKind,
    action: Action,
    timeout: Duration,
) -> Result<Running, AgentError> {
    let action_word = match kind {
        AgentKind::Ocf { .. } => ocf_action(action),
        _ => action.as_str(),
    };
    let Some(cmd) = command(kind, action_word, timeout) else {
        return Err(AgentError::Failed(format!(
            "{} agent is not a script",
            kind.class()
        )));
    };
    let out = match process::run(&cmd).await {
        Ok(out) => out,
        Err(RunError::TimedOut { timeout }) => return Err(AgentError::Timeout { action, timeout }),
        Err(e) => return Err(AgentError::Failed(e.to_string())),
    };
    let result = match kind {
        AgentKind::Heartbeat { .. } => heartbeat_result(action, &out),
        AgentKind::Lsb { .. } => lsb_result(action, &out),
        _ => ocf_result(action, &out),
    };
    match &result {
        Ok(r) => tracing::debug!(%action, result = ?r, code = out.code, "agent done"),
        Err(e) => tracing::debug!(%action, error = %e, "agent failed"),
    }
    result
}

/// The call of `word` (an action as the agent's kind names it) of a script
/// agent, `None` for a built-in one. OCF agents get the OCF environment,
/// with `OCF_RESKEY_CRM_meta_timeout` the operation's timeout in
/// milliseconds, as Pacemaker passes it.
fn command(kind: &AgentKind, word: &str, timeout: Duration) -> Option<Command> {
    let (path, args, env): (&Path, Vec<String>, Vec<(String, String)>) = match kind {
        AgentKind::Heartbeat { path, args } => {
            let mut a = args.clone();
            a.push(word.to_string());
            (path, a, Vec::new())
        }
        AgentKind::Lsb { path } => (path, vec![word.to_string()], Vec::new()),
        AgentKind::Ocf {
            path,
            ocf_root,
            provider,
            kind,
            params,
        } => {
            let mut env = ocf_env(ocf_root, provider, kind, params);
            env.push((
                "OCF_RESKEY_CRM_meta_timeout".into(),
                timeout.as_millis().to_string(),
            ));
            (path, vec![word.to_string()], env)
        }
        _ => return None,
    };
    Some(
        Command::new(path)
            .args(args)
            .envs(&env)
            .hbd_env()
            .timeout(timeout)
            .require_executable(),
    )
}

/// What an agent's `validate-all` answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Validation {
    /// Exit 0, or 3 (OCF_ERR_UNIMPLEMENTED: the agent has no validate-all).
    Valid,
    /// Not asked: a built-in agent, an LSB init script, or a heartbeat-style
    /// script that does not know the action (its text never names
    /// `validate-all`: heartbeat scripts may treat an unknown action as
    /// anything).
    NotAsked,
    /// Exit 2 (OCF_ERR_ARGS), 5 (OCF_ERR_INSTALLED) or 6
    /// (OCF_ERR_CONFIGURED): the configuration is wrong here.
    Invalid { code: i32, message: String },
    /// Another exit code, a timeout or a failure to run it: the agent could
    /// not tell.
    Unknown { message: String },
}

/// Runs `validate-all` of an OCF agent (OCF RA API 1.0), or of a
/// heartbeat-style script whose text names the action (the project's
/// `resources/mysqld` and `resources/daemon`: `ARGS... validate-all`),
/// within `timeout` (also in `OCF_RESKEY_CRM_meta_timeout`).
pub async fn validate_all(kind: &AgentKind, timeout: Duration) -> Validation {
    if let AgentKind::Heartbeat { path, .. } = kind {
        if !knows_validate_all(path) {
            return Validation::NotAsked;
        }
    }
    let Some(cmd) = (match kind {
        AgentKind::Ocf { .. } | AgentKind::Heartbeat { .. } => {
            command(kind, "validate-all", timeout).map(|c| c.output(Output::Capture))
        }
        _ => None,
    }) else {
        return Validation::NotAsked;
    };
    let out = match process::run(&cmd).await {
        Ok(out) => out,
        Err(e) => {
            return Validation::Unknown {
                message: e.to_string(),
            }
        }
    };
    let meaning = ocf_code_name(out.code).map(str::to_string);
    let tail = out.message();
    let message = match (meaning, tail.is_empty()) {
        (Some(m), false) => format!("{m}: {tail}"),
        (Some(m), true) => m,
        (None, _) => tail,
    };
    match out.code {
        0 | 3 if out.signal.is_none() => Validation::Valid,
        code @ (2 | 5 | 6) => Validation::Invalid { code, message },
        code => Validation::Unknown {
            message: format!("exit code {code}: {message}"),
        },
    }
}

/// Whether a script's text (its first MiB) names `validate-all`.
fn knows_validate_all(path: &Path) -> bool {
    use std::io::Read;
    let mut text = Vec::new();
    std::fs::File::open(path)
        .and_then(|f| f.take(1 << 20).read_to_end(&mut text))
        .is_ok()
        && text.windows(12).any(|w| w == b"validate-all")
}

/// OCF calls status `monitor`.
fn ocf_action(action: Action) -> &'static str {
    match action {
        Action::Status => "monitor",
        a => a.as_str(),
    }
}

/// The OCF 1.0 environment of one call (OCF RA API, "Environment variables").
fn ocf_env(
    ocf_root: &Path,
    provider: &str,
    kind: &str,
    params: &[(String, String)],
) -> Vec<(String, String)> {
    let mut env = vec![
        ("OCF_ROOT".into(), ocf_root.display().to_string()),
        ("OCF_RA_VERSION_MAJOR".into(), "1".into()),
        ("OCF_RA_VERSION_MINOR".into(), "0".into()),
        ("OCF_RESOURCE_INSTANCE".into(), instance_name(kind, params)),
        ("OCF_RESOURCE_TYPE".into(), kind.into()),
        ("OCF_RESOURCE_PROVIDER".into(), provider.into()),
    ];
    for (k, v) in params {
        env.push((format!("OCF_RESKEY_{k}"), v.clone()));
    }
    env
}

/// A stable, file-name-safe instance name from the type and the parameters
/// (agents such as Dummy name their state files after it): `[A-Za-z0-9_.-]`,
/// at most 64 bytes, a hash of the full text when cut so two resources never
/// share a name.
fn instance_name(kind: &str, params: &[(String, String)]) -> String {
    let mut full = kind.to_string();
    for (k, v) in params {
        full.push('_');
        full.push_str(k);
        full.push('_');
        full.push_str(v);
    }
    let mut s = String::new();
    for c in full.chars() {
        let c = if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
            c
        } else {
            '_'
        };
        if !(c == '_' && s.ends_with('_')) {
            s.push(c);
        }
    }
    let s = s.trim_end_matches('_').to_string();
    if s.len() <= 64 {
        return s;
    }
    // FNV-1a: stable across builds, unlike std's hasher.
    let hash = full.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ b as u64).wrapping_mul(0x0100_0000_01b3)
    });
    format!("{}_{hash:016x}", &s[..47])
}

/// The failure of `action`: its exit code, `meaning` and the last lines.
fn exit_error(out: &Finished, action: Action, meaning: Option<&str>) -> AgentError {
    let mut message = meaning.map(str::to_string).unwrap_or_default();
    let tail = out.message();
    if !tail.is_empty() {
        if !message.is_empty() {
            message.push_str(": ");
        }
        message.push_str(&tail);
    }
    AgentError::Exit {
        action,
        code: out.code,
        message,
    }
}

/// heartbeat's resource.d convention. start/stop: exit 0 is success. status:
/// judged by its stdout, not the exit code, as heartbeat's LRM plugin for
/// heartbeat-class agents does (lib/plugins/lrm/raexechb.c,
/// `map_ra_retvalue`): the lowercased output matching `*stopped*` or
/// `*not*running*` is stopped; else the lowercased output matching
/// `*running*`, or the output as is matching `*OK*`, is running. Anything else
/// is stopped, as ResourceManager's `*[Rr]unning*` test in heartbeat's init
/// script has it.
fn heartbeat_result(action: Action, out: &Finished) -> Result<Running, AgentError> {
    match action {
        Action::Status => Ok(heartbeat_status(&out.stdout)),
        Action::Start if out.code == 0 => Ok(Running::Running),
        Action::Stop if out.code == 0 => Ok(Running::Stopped),
        _ => Err(exit_error(out, action, None)),
    }
}

fn heartbeat_status(stdout: &str) -> Running {
    let lower = stdout.to_lowercase();
    let not_running = lower
        .find("not")
        .is_some_and(|i| lower[i + 3..].contains("running"));
    if lower.contains("stopped") || not_running {
        Running::Stopped
    } else if lower.contains("running") || stdout.contains("OK") {
        Running::Running
    } else {
        Running::Stopped
    }
}

/// LSB exit codes of start/stop ("Init Script Actions", LSB Core 20.2), also
/// the OCF codes 1-7 of the OCF RA API.
fn code_name(code: i32) -> Option<&'static str> {
    Some(match code {
        1 => "generic or unspecified error",
        2 => "invalid or excess arguments",
        3 => "unimplemented feature",
        4 => "insufficient privilege",
        5 => "program is not installed",
        6 => "program is not configured",
        7 => "program is not running",
        _ => return None,
    })
}

/// LSB init script: status 0 running, 1 dead with a pid file, 2 dead with a
/// lock file, 3 not running, 4 unknown (LSB Core 20.2); start/stop 0 is
/// success (stopping a stopped service is 0 too).
fn lsb_result(action: Action, out: &Finished) -> Result<Running, AgentError> {
    match (action, out.code) {
        (Action::Status, 0) => Ok(Running::Running),
        (Action::Status, 3) => Ok(Running::Stopped),
        (Action::Status, c @ (1 | 2)) => {
            let what = if c == 1 { "pid" } else { "lock" };
            tracing::warn!(
                code = c,
                "LSB status: program is dead and its {what} file still exists"
            );
            Ok(Running::Stopped)
        }
        (Action::Status, 4) => Err(exit_error(
            out,
            action,
            Some("program or service status is unknown"),
        )),
        (Action::Status, c) => Err(exit_error(out, action, code_name(c))),
        (Action::Start, 0) => Ok(Running::Running),
        (Action::Stop, 0) => Ok(Running::Stopped),
        (_, c) => Err(exit_error(out, action, code_name(c))),
    }
}

/// OCF RA API 1.0 exit codes: monitor 0 running, 7 not running, 8 running as
/// master; start/stop 0 success.
fn ocf_result(action: Action, out: &Finished) -> Result<Running, AgentError> {
    match (action, out.code) {
        (Action::Status, 0) => Ok(Running::Running),
        (Action::Status, 7) => Ok(Running::Stopped),
        (Action::Status, 8) => {
            tracing::info!("OCF monitor: running as master (promoted)");
            Ok(Running::Running)
        }
        (Action::Start, 0) => Ok(Running::Running),
        (Action::Stop, 0) => Ok(Running::Stopped),
        // OCF: stopping a stopped resource must return 0; accept "not
        // running" from agents that answer 7, as Pacemaker does.
        (Action::Stop, 7) => Ok(Running::Stopped),
        (_, c) => Err(exit_error(out, action, ocf_code_name(c))),
    }
}

fn ocf_code_name(code: i32) -> Option<&'static str> {
    match code {
        1..=7 => code_name(code),
        8 => Some("running as master"),
        9 => Some("failed as master"),
        _ => None,
    }
}

#[cfg(test)]
mod tests;
