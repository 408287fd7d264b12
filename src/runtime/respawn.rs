//! `ha.cf` `respawn USER PROGRAM [ARGS]`: heartbeat starts the program as
//! USER and starts it again whenever it exits, except when it exits with
//! status 100 (heartbeat's "do not respawn me").
//!
//! Each start looks USER up again off the loop and starts the program as
//! agents start ([`crate::process::clean_command`]): none of hbd's
//! environment or descriptors (but stdout and stderr, hbd's log), its own
//! process group.

use crate::config::Respawn;
use crate::process;
use std::time::Duration;
use tokio::task::JoinHandle;

/// Exit status that stops respawning (heartbeat's convention).
pub const NO_RESPAWN_STATUS: i32 = 100;
/// Delay before a program that exited is started again; doubles while it
/// keeps failing within a minute, up to [`MAX_DELAY`].
const FIRST_DELAY: Duration = Duration::from_secs(1);
const MAX_DELAY: Duration = Duration::from_secs(60);

/// The supervising tasks; dropping them kills the children (`kill_on_drop`).
pub struct Respawner {
    tasks: Vec<JoinHandle<()>>,
}

impl Drop for Respawner {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

/// Starts the `respawn` programs, except heartbeat's helpers that hbd has
/// built in (ipfail, dopd, ifcheckd): those are logged, not spawned.
pub fn start(programs: &[Respawn]) -> Respawner {
    for r in programs {
        if let Some(b) = r.builtin {
            tracing::info!(
                command = %r.command,
                at = %r.at,
                "{}: built into hbd: {}",
                b.name(),
                b.replacement()
            );
        }
    }
    Respawner {
        tasks: programs
            .iter()
            .filter(|r| r.builtin.is_none())
            .cloned()
            .map(|r| tokio::spawn(supervise(r)))
            .collect(),
    }
}

async fn supervise(r: Respawn) {
    let span = tracing::info_span!("respawn", command = %r.command, user = %r.user);
    let _e = span.enter();
    let mut delay = FIRST_DELAY;
    loop {
        let started = tokio::time::Instant::now();
        match run_once(&r).await {
            Ok(status) if status.code() == Some(NO_RESPAWN_STATUS) => {
                tracing::info!("respawned program exited with 100: not starting it again");
                return;
            }
            Ok(status) => tracing::warn!(%status, "respawned program exited"),
            Err(e) => tracing::error!(error = %e, "cannot start respawned program"),
        }
        if started.elapsed() > MAX_DELAY {
            delay = FIRST_DELAY;
        }
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(MAX_DELAY);
    }
}

async fn run_once(r: &Respawn) -> std::io::Result<std::process::ExitStatus> {
    let mut words = r.command.split_whitespace();
    let program = words
        .next()
        .ok_or_else(|| std::io::Error::other("empty command"))?;
    let user = process::user_by_name(&r.user)
        .await
        .map_err(std::io::Error::other)?;
    let mut cmd = process::clean_command(program, Some(&user));
    cmd.args(words).kill_on_drop(true);
    let mut child = cmd.spawn()?;
    tracing::info!(pid = child.id(), "respawned program started");
    child.wait().await
}
