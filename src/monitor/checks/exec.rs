//! The `exec` check: `/bin/sh -c command` (as `user`) must exit 0 within the
//! timeout; run by [`crate::process::run`] with stdout and stderr in one
//! pipe, so that the last line written explains a failure. At the timeout
//! (or when the check is dropped) the process group is KILLed.

use super::*;
use crate::process::{self as runner, RunError};

pub(super) async fn check_exec(
    command: &str,
    user: Option<&str>,
    timeout: Duration,
) -> Result<(), String> {
    let account = match user {
        Some(u) => {
            let name = u.to_string();
            // NSS, off the loop, within the lookup's own limit.
            let found = runner::lookup(&format!("user {u}"), move || {
                nix::unistd::User::from_name(&name)
            })
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| format!("user {u}: {}", lower_first(e.desc())))?;
            Some(found.ok_or_else(|| format!("user {u}: no such user"))?)
        }
        None => None,
    };
    let c = runner::Command::shell(command)
        .user(account)
        .output(runner::Output::Merged)
        .timeout(timeout);
    let out = match runner::run(&c).await {
        Ok(out) => out,
        Err(RunError::TimedOut { timeout }) => {
            return Err(format!(
                "timed out after {}",
                crate::config::format_duration(timeout)
            ))
        }
        Err(RunError::Spawn { source, .. }) => {
            return Err(match user {
                Some(u) => format!("/bin/sh as {u}: {}", io_reason(&source)),
                None => format!("/bin/sh: {}", io_reason(&source)),
            })
        }
        Err(e) => return Err(e.to_string()),
    };
    if out.success() {
        return Ok(());
    }
    let what = match out.signal {
        None => format!("exit code {}", out.code),
        Some(sig) => match Signal::try_from(sig) {
            Ok(s) => format!("killed by {}", s.as_str()),
            Err(_) => format!("killed by signal {sig}"),
        },
    };
    match out.last_line().map(|l| printable(l.as_bytes(), MAX_LINE)) {
        Some(line) if !line.is_empty() => Err(format!("{what}: {line}")),
        _ => Err(what),
    }
}
