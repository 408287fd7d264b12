//! Built-in `drbddisk::RES`: heartbeat's `drbddisk` script (drbd-utils)
//! for hbd's replicated device, or for the DRBD kernel module.
//!
//! - **start**: makes sure RES's device process is up (as `drbdadm up`,
//!   [`client::up_async`]), then promotes it, retrying for
//!   [`PROMOTE_RETRY`] while the device refuses (the peer is still Primary
//!   while it finishes demoting, or the connection is still being set up),
//!   as the script retries `drbdadm primary` for a few seconds;
//! - **stop**: demotes (Secondary); the device answers once its loop device
//!   is released. A device that is not up is stopped already;
//! - **status**: `Running` iff the local role is Primary.
//!
//! With cluster.toml `[disk] driver = "kernel"` (or `auto`, the default, when
//! `/proc/drbd` exists) the agent runs `drbdadm primary|secondary|role RES`
//! instead, as the script does.
//!
//! The device needs the configuration directory (from the agent lookup),
//! this node's name and hbd's run dir: [`set_context`] gives the last two
//! (hbd and `hbctl resource` call it); without it, `$HBD_NODE` or `uname -n`
//! and `$HBD_RUN_DIR` or `/run/hbd`.

use super::{AgentError, Options, Running};
use crate::disk::client::{self, RequestError};
use crate::disk::ctl::{DiskRequest, DiskResponse};
use crate::disk::state::{ConnState, Role};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;

/// How long start keeps retrying a refused promotion.
pub const PROMOTE_RETRY: Duration = Duration::from_secs(10);
/// Pause between promotion attempts (the script sleeps 1 s).
const RETRY_PAUSE: Duration = Duration::from_millis(500);
/// Longest wait for the device process to answer after it was started.
const UP_TIMEOUT: Duration = Duration::from_secs(60);
/// Status calls answer within this.
const STATUS_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DrbdArgs {
    /// The resource, as in drbd.conf.
    pub res: String,
    /// The configuration directory (holds drbd.conf and cluster.toml).
    pub config_dir: PathBuf,
}

/// `drbddisk::RES`; `config_dir` is the lookup's configuration directory.
pub fn parse_args(args: &[&str], config_dir: &Path) -> Result<DrbdArgs, String> {
    match args {
        [res] if !res.is_empty() && !res.contains('/') && *res != "all" => Ok(DrbdArgs {
            res: res.to_string(),
            config_dir: config_dir.to_path_buf(),
        }),
        [res] => Err(format!(
            "drbddisk: `{res}` is not a resource name (drbddisk::r0)"
        )),
        [] => Err("drbddisk needs the resource: drbddisk::r0".into()),
        _ => Err("drbddisk takes one argument, the resource: drbddisk::r0".into()),
    }
}

/// This node's name and hbd's run dir, for the device processes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Context {
    pub node: String,
    pub run_dir: PathBuf,
}

static CONTEXT: OnceLock<Context> = OnceLock::new();

/// Tells the agent this node's name and the run dir (once per process; later
/// calls are ignored).
pub fn set_context(node: &str, run_dir: &Path) {
    let _ = CONTEXT.set(Context {
        node: node.to_string(),
        run_dir: run_dir.to_path_buf(),
    });
}

/// The context set by [`set_context`], else from the environment and the
/// defaults.
pub fn context() -> Context {
    if let Some(c) = CONTEXT.get() {
        return c.clone();
    }
    let node = std::env::var("HBD_NODE").ok().filter(|n| !n.is_empty());
    let node = node.unwrap_or_else(|| {
        nix::unistd::gethostname()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    });
    let run_dir = std::env::var_os("HBD_RUN_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/run/hbd"));
    Context {
        node: node.to_lowercase(),
        run_dir,
    }
}

/// Whether `CONFIG_DIR/cluster.toml` sends this agent to the kernel module
/// (`[disk] driver`, default `auto`).
pub fn kernel_driver(config_dir: &Path) -> bool {
    let path = config_dir.join("cluster.toml");
    let cluster = std::fs::read_to_string(&path)
        .map(|text| crate::config::parse_cluster_toml(&path, &text).0)
        .unwrap_or_default();
    cluster.disk.driver.unwrap_or_default().is_kernel()
}

pub async fn start(a: &DrbdArgs, o: &Options) -> Result<(), AgentError> {
    if kernel_driver(&a.config_dir) {
        return promote_kernel(a, o).await;
    }
    let cx = context();
    let s = client::up_async(&a.config_dir, &cx.node, &cx.run_dir, &a.res, UP_TIMEOUT)
        .await
        .map_err(AgentError::Failed)?;
    if s.role == Role::Primary {
        return Ok(());
    }
    if !s.ever_connected {
        wait_for_peer(a, &cx).await?;
    }
    let deadline = tokio::time::Instant::now() + PROMOTE_RETRY;
    loop {
        let r = client::request_async(
            &cx.run_dir,
            &a.res,
            DiskRequest::Primary { force: false },
            o.start_timeout,
        )
        .await
        .map_err(|e| AgentError::Failed(e.to_string()))?;
        match r {
            DiskResponse::Done { .. } => return Ok(()),
            DiskResponse::Failed { message } => {
                return Err(AgentError::Failed(format!(
                    "{}: cannot promote: {message}",
                    a.res
                )))
            }
            DiskResponse::Refused { message, status } => {
                if tokio::time::Instant::now() >= deadline {
                    return Err(AgentError::Failed(format!(
                        "{}: State change failed: {message} (still refused after {}s; \
                         peer {}, {} {}/{})",
                        a.res,
                        PROMOTE_RETRY.as_secs(),
                        status.peer_role,
                        status.connection,
                        status.disk,
                        status.peer_disk
                    )));
                }
                tracing::info!(resource = %a.res, refused = %message, "promotion refused; retrying");
                tokio::time::sleep(RETRY_PAUSE).await;
            }
        }
    }
}

/// Wait when no DRBD is configured with `startup { wfc-timeout }` (0 or
/// unset) and no `degr-wfc-timeout` either.
pub const DEFAULT_WFC: Duration = Duration::from_secs(60);

/// A device that has not met its peer since it started may hold old data
/// (its node was down while the peer wrote): promoting it at once would
/// make a split brain. As the drbd init script at boot, wait for the
/// connection first (the handshake then refuses or resyncs), up to
/// `wfc-timeout` (or `degr-wfc-timeout` when that is 0, or 60 s).
async fn wait_for_peer(a: &DrbdArgs, cx: &Context) -> Result<(), AgentError> {
    let wait =
        crate::disk::device::DeviceConfig::load(&a.config_dir, &cx.node, &cx.run_dir, &a.res)
            .ok()
            .and_then(|c| {
                [c.res.wfc_timeout, c.res.degr_wfc_timeout]
                    .into_iter()
                    .flatten()
                    .find(|d| !d.is_zero())
            })
            .unwrap_or(DEFAULT_WFC);
    tracing::info!(resource = %a.res, wait_s = wait.as_secs(), "device just started: waiting for the peer before promoting (wfc-timeout)");
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        let s = client::status_async(&cx.run_dir, &a.res, Duration::from_secs(5))
            .await
            .map_err(|e| AgentError::Failed(e.to_string()))?;
        let settled = s.ever_connected
            && !matches!(
                s.connection,
                ConnState::WFReportParams | ConnState::WFBitMapS | ConnState::WFBitMapT
            );
        if settled || s.connection == ConnState::StandAlone {
            return Ok(());
        }
        if tokio::time::Instant::now() >= deadline {
            tracing::warn!(resource = %a.res, "the peer did not connect within {}s: promoting without it", wait.as_secs());
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

pub async fn stop(a: &DrbdArgs, o: &Options) -> Result<(), AgentError> {
    if kernel_driver(&a.config_dir) {
        return drbdadm(&["secondary", &a.res], o.stop_timeout)
            .await
            .map(|_| ());
    }
    let cx = context();
    match client::request_async(&cx.run_dir, &a.res, DiskRequest::Secondary, o.stop_timeout).await {
        Err(RequestError::NotUp { .. }) => Ok(()),
        Err(e) => Err(AgentError::Failed(e.to_string())),
        Ok(DiskResponse::Done { .. }) => Ok(()),
        Ok(DiskResponse::Refused { message, .. }) => Err(AgentError::Failed(format!(
            "{}: State change failed: {message}",
            a.res
        ))),
        Ok(DiskResponse::Failed { message }) => Err(AgentError::Failed(format!(
            "{}: cannot demote: {message}",
            a.res
        ))),
    }
}

pub async fn status(a: &DrbdArgs) -> Result<Running, AgentError> {
    if kernel_driver(&a.config_dir) {
        let out = drbdadm(&["role", &a.res], STATUS_TIMEOUT).await?;
        return Ok(role_running(&out));
    }
    let cx = context();
    match client::status_async(&cx.run_dir, &a.res, STATUS_TIMEOUT).await {
        Err(RequestError::NotUp { .. }) => Ok(Running::Stopped),
        Err(e) => Err(AgentError::Failed(e.to_string())),
        Ok(s) if s.role == Role::Primary => Ok(Running::Running),
        Ok(_) => Ok(Running::Stopped),
    }
}

/// The script's test: `drbdadm role` says `Primary/...`.
fn role_running(out: &str) -> Running {
    match out.trim().split('/').next() {
        Some("Primary") => Running::Running,
        _ => Running::Stopped,
    }
}

/// `drbdadm primary RES`, retried for [`PROMOTE_RETRY`] as the script does.
async fn promote_kernel(a: &DrbdArgs, o: &Options) -> Result<(), AgentError> {
    let deadline = tokio::time::Instant::now() + PROMOTE_RETRY;
    loop {
        match drbdadm(&["primary", &a.res], o.start_timeout).await {
            Ok(_) => return Ok(()),
            Err(e) if tokio::time::Instant::now() >= deadline => return Err(e),
            Err(e) => {
                tracing::info!(resource = %a.res, error = %e, "drbdadm primary failed; retrying");
                tokio::time::sleep(RETRY_PAUSE).await;
            }
        }
    }
}

#[cfg(test)]
static FAKE_DRBDADM: OnceLock<PathBuf> = OnceLock::new();

/// `$HBD_DRBDADM`, else `drbdadm` from PATH.
fn drbdadm_bin() -> PathBuf {
    #[cfg(test)]
    if let Some(p) = FAKE_DRBDADM.get() {
        return p.clone();
    }
    std::env::var_os("HBD_DRBDADM")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("drbdadm"))
}

/// Runs drbdadm; its stdout on success.
async fn drbdadm(args: &[&str], timeout: Duration) -> Result<String, AgentError> {
    let bin = drbdadm_bin();
    let mut cmd = tokio::process::Command::new(&bin);
    cmd.args(args)
        .env(
            "PATH",
            "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        )
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true);
    let what = format!("drbdadm {}", args.join(" "));
    let out = match tokio::time::timeout(timeout, cmd.output()).await {
        Err(_) => {
            return Err(AgentError::Failed(format!(
                "{what}: no answer within {}s",
                timeout.as_secs()
            )))
        }
        Ok(Err(e)) => return Err(AgentError::Failed(format!("{what}: {e}"))),
        Ok(Ok(out)) => out,
    };
    if out.status.success() {
        return Ok(String::from_utf8_lossy(&out.stdout).into_owned());
    }
    let err = String::from_utf8_lossy(&out.stderr);
    let last = err.lines().last().unwrap_or("").trim();
    Err(AgentError::Failed(format!(
        "{what}: exit code {}{}",
        out.status.code().unwrap_or(-1),
        if last.is_empty() {
            String::new()
        } else {
            format!(": {last}")
        }
    )))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn args() {
        let d = Path::new("/etc/ha.d");
        assert_eq!(
            parse_args(&["r0"], d).unwrap(),
            DrbdArgs {
                res: "r0".into(),
                config_dir: d.into()
            }
        );
        assert!(parse_args(&[], d).unwrap_err().contains("drbddisk::r0"));
        assert!(parse_args(&["r0", "x"], d).is_err());
        assert!(parse_args(&["a/b"], d).is_err());
        assert!(parse_args(&["all"], d).is_err());
    }

    #[test]
    fn roles() {
        assert_eq!(role_running("Primary/Secondary\n"), Running::Running);
        assert_eq!(role_running("Secondary/Primary\n"), Running::Stopped);
        assert_eq!(role_running("Unconfigured\n"), Running::Stopped);
    }

    #[test]
    fn driver_from_cluster_toml() {
        let t = tempfile::tempdir().unwrap();
        assert_eq!(kernel_driver(t.path()), Path::new("/proc/drbd").exists());
        std::fs::write(
            t.path().join("cluster.toml"),
            "[disk]\ndriver = \"kernel\"\n",
        )
        .unwrap();
        assert!(kernel_driver(t.path()));
        std::fs::write(
            t.path().join("cluster.toml"),
            "[disk]\ndriver = \"embedded\"\n",
        )
        .unwrap();
        assert!(!kernel_driver(t.path()));
    }

    /// The embedded driver, against a stand-in device: not up is stopped
    /// (and stop has nothing to do); start brings it up and promotes,
    /// retrying while the peer is Primary; stop demotes.
    #[tokio::test]
    async fn embedded_with_a_stand_in_device() {
        use crate::disk::client::testing;
        let t = tempfile::tempdir().unwrap();
        std::fs::write(
            t.path().join("cluster.toml"),
            "[disk]\ndriver = \"embedded\"\n",
        )
        .unwrap();
        let run = t.path().join("run");
        set_context("a", &run);
        testing::DISK_BIN.set(testing::install(t.path())).unwrap();
        let a = parse_args(&["r0"], t.path()).unwrap();
        let o = Options::default();
        assert_eq!(status(&a).await.unwrap(), Running::Stopped);
        stop(&a, &o).await.unwrap();
        std::fs::create_dir_all(&run).unwrap();
        std::fs::write(run.join("refuse"), "").unwrap();
        start(&a, &o).await.unwrap();
        assert!(
            !run.join("refuse").exists(),
            "the first promotion was not refused"
        );
        assert_eq!(status(&a).await.unwrap(), Running::Running);
        stop(&a, &o).await.unwrap();
        assert_eq!(status(&a).await.unwrap(), Running::Stopped);
        client::down_async(&run, "r0", Duration::from_secs(10))
            .await
            .unwrap();
        assert_eq!(status(&a).await.unwrap(), Running::Stopped);
    }

    /// The kernel driver runs drbdadm as the script does.
    #[tokio::test]
    async fn kernel_runs_drbdadm() {
        let t = tempfile::tempdir().unwrap();
        std::fs::write(
            t.path().join("cluster.toml"),
            "[disk]\ndriver = \"kernel\"\n",
        )
        .unwrap();
        let log = t.path().join("calls");
        let fake = t.path().join("drbdadm");
        std::fs::write(
            &fake,
            format!(
                "#!/bin/sh\necho \"$*\" >> {}\ncase $1 in role) echo Primary/Secondary;; \
                 primary) [ -e {}/ok ] || {{ touch {}/ok; echo 'peer is Primary' >&2; exit 11; }};; esac\n",
                log.display(),
                t.path().display(),
                t.path().display()
            ),
        )
        .unwrap();
        std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();
        FAKE_DRBDADM.set(fake).unwrap();
        let a = parse_args(&["r0"], t.path()).unwrap();
        let o = Options::default();
        start(&a, &o).await.unwrap();
        assert_eq!(status(&a).await.unwrap(), Running::Running);
        stop(&a, &o).await.unwrap();
        assert_eq!(
            std::fs::read_to_string(&log).unwrap(),
            "primary r0\nprimary r0\nrole r0\nsecondary r0\n"
        );
    }
}
