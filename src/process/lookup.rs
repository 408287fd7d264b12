//! Account lookups (getpwnam, getgrnam, getpwuid) for the programs hbd
//! runs and the peers of its control socket, always off the daemon's loop.

use nix::errno::Errno;
use nix::unistd::User;
use std::time::Duration;
use tokio::time::Instant;

/// How long a caller waits for one account lookup before it gives up.
pub const LOOKUP_TIMEOUT: Duration = Duration::from_secs(5);
/// Account lookups running at once. A stalled one keeps its thread until
/// NSS answers; when all are stalled, later callers wait for a thread within
/// their own timeout instead of piling up threads.
const LOOKUP_THREADS: usize = 4;
static LOOKUPS: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(LOOKUP_THREADS);

/// Why an account lookup gave no answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LookupError {
    /// NSS did not answer in time (the lookup is left to finish on its
    /// thread).
    #[error("{what}: no answer within {} (a stalled LDAP or sssd?)", crate::config::format_duration(*limit))]
    TimedOut { what: String, limit: Duration },
    #[error("{what}: cannot start a thread: {reason}")]
    NoThread { what: String, reason: String },
    /// The lookup's thread ended without an answer (it panicked).
    #[error("{what}: the lookup failed")]
    Failed { what: String },
    #[error("no user `{0}`")]
    NoUser(String),
    #[error("cannot look up user `{name}`: {errno}")]
    Nss { name: String, errno: Errno },
}

/// Runs `f`, an account lookup (NSS: `files`, but also LDAP or sssd, which
/// stall for as long as their server does), on a thread of its own and never
/// on the daemon's loop: a lookup hanging there for `deadtime` would stop the
/// keepalives, and the peer would take the groups over while they still run
/// here. Waits at most [`LOOKUP_TIMEOUT`]; a lookup still running then is
/// left to finish on its thread, its answer dropped.
pub async fn lookup<T: Send + 'static>(
    what: &str,
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, LookupError> {
    lookup_within(what, LOOKUP_TIMEOUT, f).await
}

pub(super) async fn lookup_within<T: Send + 'static>(
    what: &str,
    limit: Duration,
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, LookupError> {
    let gave_up = || LookupError::TimedOut {
        what: what.to_string(),
        limit,
    };
    let deadline = Instant::now() + limit;
    let Ok(Ok(permit)) = tokio::time::timeout_at(deadline, LOOKUPS.acquire()).await else {
        return Err(gave_up());
    };
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name("hbd-lookup".into())
        .spawn(move || {
            let _permit = permit;
            let _ = tx.send(f());
        })
        .map_err(|e| LookupError::NoThread {
            what: what.to_string(),
            reason: e.to_string(),
        })?;
    match tokio::time::timeout_at(deadline, rx).await {
        Ok(Ok(answer)) => Ok(answer),
        Ok(Err(_)) => Err(LookupError::Failed {
            what: what.to_string(),
        }),
        Err(_) => Err(gave_up()),
    }
}

/// User `name` (getpwnam), looked up off the loop ([`lookup`]).
pub async fn user_by_name(name: &str) -> Result<User, LookupError> {
    let n = name.to_string();
    match lookup(&format!("looking up user `{name}`"), move || {
        User::from_name(&n)
    })
    .await?
    {
        Ok(Some(u)) => Ok(u),
        Ok(None) => Err(LookupError::NoUser(name.to_string())),
        Err(errno) => Err(LookupError::Nss {
            name: name.to_string(),
            errno,
        }),
    }
}
