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
) -> Result<(), CheckError> {
    let account = match user {
        Some(u) => {
            let name = u.to_string();
            // NSS, off the loop, within the lookup's own limit.
            let found = runner::lookup(&format!("user {u}"), move || {
                nix::unistd::User::from_name(&name)
            })
            .await?
            .map_err(|errno| CheckError::UserLookup {
                user: u.to_string(),
                errno,
            })?;
            Some(found.ok_or_else(|| CheckError::NoSuchUser {
                user: u.to_string(),
            })?)
        }
        None => None,
    };
    let c = runner::Command::shell(command)
        .user(account)
        .output(runner::Output::Merged)
        .timeout(timeout);
    let out = match runner::run(&c).await {
        Ok(out) => out,
        Err(RunError::TimedOut { timeout }) => return Err(CheckError::TimedOut { timeout }),
        Err(RunError::Spawn { source, .. }) => {
            return Err(CheckError::Shell {
                user: user.map(str::to_string),
                source,
            })
        }
        Err(e) => return Err(e.into()),
    };
    if out.success() {
        return Ok(());
    }
    let output = out
        .last_line()
        .map(|l| printable(l.as_bytes(), MAX_LINE))
        .filter(|l| !l.is_empty());
    Err(match out.signal {
        None => CheckError::Exit {
            code: out.code,
            output,
        },
        Some(signal) => CheckError::Killed { signal, output },
    })
}
