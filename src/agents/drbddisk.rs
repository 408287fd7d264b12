//! Built-in `drbddisk::RES`: heartbeat's `drbddisk` script (drbd-utils)
//! for hbd's replicated device, or for the DRBD kernel module.
//!
//! - **start**: makes sure RES's device process is up (as `drbdadm up`,
//!   [`client::up_async`]), then promotes it, retrying for
//!   [`PROMOTE_RETRY`] while the device refuses (the peer is still Primary
//!   while it finishes demoting, or the connection is still being set up),
//!   as the script retries `drbdadm primary` for a few seconds. A device
//!   that has not met its peer since it started is promoted only after it
//!   did, or after a bounded `wfc-timeout`/`degr-wfc-timeout` ran out, as
//!   the drbd init script waits at boot ([`wfc_wait`]); StandAlone, or an
//!   unbounded wait (0, the default) that reaches the start timeout, fails
//!   the start saying what is missing and what the operator can do;
//! - **stop**: demotes (Secondary); the device answers once its loop device
//!   is released. A device that is not up is stopped already;
//! - **status**: `Running` iff the local role is Primary.
//!
//! With cluster.toml `[disk] driver = "kernel"` (or `auto`, the default, when
//! `/proc/drbd` exists) the agent runs `drbdadm primary|secondary|role RES`
//! instead, as the script does.
//!
//! The device needs the configuration directory (from the agent lookup),
//! this node's name and hbd's run dir: [`DrbdArgs::context`], which hbd and
//! `hbctl resource` set ([`crate::agents::Resource::set_context`]); without
//! it, `$HBD_NODE` or `uname -n` and `$HBD_RUN_DIR` or `/run/hbd`.

use super::{AgentError, ArgsError, Options, Running};
use crate::disk::client::{self, ClientError};
use crate::disk::ctl::{DiskRequest, DiskResponse, DiskStatus};
use crate::disk::state::{ConnState, DiskState, Role};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// How long start keeps retrying a refused promotion.
pub const PROMOTE_RETRY: Duration = Duration::from_secs(10);
/// Pause between promotion attempts (the script sleeps 1 s): a tight poll
/// of the local device, bounded by [`PROMOTE_RETRY`], so that a promotion
/// refused for a moment (the peer demoting in a switchover) goes through as
/// soon as it can.
const RETRY_PAUSE: Duration = Duration::from_millis(50);
/// Pause between `drbdadm primary` attempts (each runs a program).
const DRBDADM_RETRY_PAUSE: Duration = Duration::from_millis(100);
/// How often the state is read while waiting for the peer to connect.
const PEER_POLL: Duration = Duration::from_millis(20);
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
    /// This node's name and hbd's run dir, given by whoever runs the agent
    /// (the daemon, `hbctl resource`; [`crate::agents::Resource::set_context`]);
    /// none: from the environment and the defaults ([`Context::from_env`]).
    pub context: Option<Context>,
}

impl DrbdArgs {
    /// The node and run dir the device processes are found with.
    pub fn context(&self) -> Context {
        self.context.clone().unwrap_or_else(Context::from_env)
    }
}

/// `drbddisk::RES`; `config_dir` is the lookup's configuration directory.
pub fn parse_args(args: &[&str], config_dir: &Path) -> Result<DrbdArgs, ArgsError> {
    match args {
        [res] if !res.is_empty() && !res.contains('/') && *res != "all" => Ok(DrbdArgs {
            res: res.to_string(),
            config_dir: config_dir.to_path_buf(),
            context: None,
        }),
        [res] => Err(ArgsError::DrbdResource(res.to_string())),
        [] => Err(ArgsError::DrbdNoResource),
        _ => Err(ArgsError::DrbdArgCount),
    }
}

/// This node's name and hbd's run dir, for the device processes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Context {
    pub node: String,
    pub run_dir: PathBuf,
}

impl Context {
    /// `HBD_NODE` (else the host name, lower case) and `HBD_RUN_DIR` (else
    /// `/run/hbd`): what an agent run without hbd finds.
    pub fn from_env() -> Context {
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
    let started = tokio::time::Instant::now();
    // Our own errors must come before the caller's start timeout cuts us
    // off with a bare "timed out".
    let give_up = started + start_budget(o.start_timeout);
    let cx = a.context();
    let s = client::up_async(&a.config_dir, &cx.node, &cx.run_dir, &a.res, UP_TIMEOUT)
        .await
        .map_err(|e| AgentError::Failed(e.to_string()))?;
    if s.role == Role::Primary {
        return Ok(());
    }
    if !s.ever_connected {
        wait_for_peer(a, &cx, &s, o, started, give_up).await?;
    }
    let deadline = (tokio::time::Instant::now() + PROMOTE_RETRY).min(give_up);
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
                         peer {}, {} {}/{}){}",
                        a.res,
                        started.elapsed().as_secs(),
                        status.peer_role,
                        status.connection,
                        status.disk,
                        status.peer_disk,
                        refusal_hint(&a.res, &status)
                    )));
                }
                tracing::info!(resource = %a.res, refused = %message, "promotion refused; retrying");
                tokio::time::sleep(RETRY_PAUSE).await;
            }
        }
    }
}

/// The part of the agent's start timeout the agent may use before it
/// fails by itself: a tenth (at most 5 s) is kept for the answer.
fn start_budget(start_timeout: Duration) -> Duration {
    start_timeout.saturating_sub((start_timeout / 10).min(Duration::from_secs(5)))
}

/// What an operator can do about a promotion refused without a peer to
/// compare with (the device refuses data that may be stale: Outdated,
/// Inconsistent, Consistent without an outdated peer).
fn refusal_hint(res: &str, s: &DiskStatus) -> String {
    if s.connection >= ConnState::Connected || s.disk >= DiskState::UpToDate {
        return String::new();
    }
    format!(
        ": this node's data may be older than the peer's; wait for the peer to connect and \
         resync this node, or, if the peer's data is lost for good, `hbctl disk primary \
         --force {res}` (discards any writes only the peer has)"
    )
}

/// Which startup timeout applies and how long it is: DRBD's
/// `drbdsetup wait-connect` (drbd-utils `choose_timeout`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WfcWait {
    /// `wfc-timeout` or `degr-wfc-timeout`.
    pub key: &'static str,
    /// `None`: wait forever.
    pub timeout: Option<Duration>,
}

/// drbd-utils `choose_timeout`: both default to 0, and 0 waits forever;
/// a finite `wfc-timeout` caps `degr-wfc-timeout` (a 0 or longer degr
/// becomes wfc's); `degr-wfc-timeout` applies only to a node that went
/// down as the Primary of a degraded cluster (`degraded`, the device's
/// USE_DEGR_WFC_T from the metadata's primary and connected indicators).
pub fn wfc_wait(wfc: Option<Duration>, degr: Option<Duration>, degraded: bool) -> WfcWait {
    let wfc = wfc.unwrap_or_default();
    let mut degr = degr.unwrap_or_default();
    if !wfc.is_zero() && (wfc < degr || degr.is_zero()) {
        degr = wfc;
    }
    let (key, t) = if degraded {
        ("degr-wfc-timeout", degr)
    } else {
        ("wfc-timeout", wfc)
    };
    WfcWait {
        key,
        timeout: (!t.is_zero()).then_some(t),
    }
}

/// What start does next while it waits for the peer (sans-IO: the device's
/// status and the time waited in, a decision out).
#[derive(Debug, Clone, PartialEq, Eq)]
enum Next {
    /// Keep polling.
    Wait,
    /// The handshake is done, or the bounded wait is over (DRBD's init
    /// script then goes on without the peer): ask the device to promote;
    /// it still refuses data that may be stale.
    Promote,
    /// Give up: what is missing and what the operator can do.
    Fail(String),
}

/// The way out in every failure message.
fn force_hint(res: &str) -> String {
    format!(
        "start the peer and let it resync this node, or, if the peer's data is lost for good, \
         promote by hand: `hbctl disk primary --force {res}` (discards any writes only the \
         peer has)"
    )
}

/// One step of [`wait_for_peer`]: `waited` since the agent's start began,
/// `budget` the part of its start timeout it may wait.
fn next_step(res: &str, s: &DiskStatus, w: WfcWait, waited: Duration, budget: Duration) -> Next {
    let settled = s.ever_connected
        && !matches!(
            s.connection,
            ConnState::WFReportParams | ConnState::WFBitMapS | ConnState::WFBitMapT
        );
    if settled {
        return Next::Promote;
    }
    // drbdsetup stops waiting at StandAlone (unless --wait-after-sb) and
    // heartbeat would then promote. A device that never met its peer since
    // it started cannot tell whether the peer wrote while this node was
    // down, so hbd refuses instead.
    if s.connection == ConnState::StandAlone {
        return Next::Fail(format!(
            "{res}: not promoting: the device is StandAlone (disconnected, or a split brain) \
             and has not been connected to its peer since it started, so it may lack writes \
             the peer made while this node was down; connect it (`hbctl disk connect {res}`, \
             after a split brain `hbctl split-brain resolve {res}`) and {}",
            force_hint(res)
        ));
    }
    if let Some(t) = w.timeout {
        if waited >= t {
            return Next::Promote;
        }
    }
    if waited < budget {
        return Next::Wait;
    }
    let why = match w.timeout {
        None => format!(
            "{} 0 (or unset) waits for the peer forever; the start gives up before its timeout",
            w.key
        ),
        Some(t) => format!(
            "{} {}s is longer than what the agent's start timeout leaves",
            w.key,
            t.as_secs()
        ),
    };
    Next::Fail(format!(
        "{res}: not promoting: the peer did not connect within {}s ({why}), and this node may \
         lack writes the peer made while this node was down ({} {}/{}); {}",
        waited.as_secs(),
        s.connection,
        s.disk,
        s.peer_disk,
        force_hint(res)
    ))
}

/// A device that has not met its peer since it started may hold old data
/// (its node was down while the peer wrote): promoting it at once would
/// make a split brain, or silently drop the peer's writes. As the drbd
/// init script at boot (`drbdadm wait-con-int`), wait for the connection
/// first (the handshake then refuses or resyncs), up to `wfc-timeout`
/// (`degr-wfc-timeout` after a degraded Primary's crash; see [`wfc_wait`]),
/// forever when that is 0 — here: until the agent's start timeout, then
/// fail. The wait is counted from the start of the agent's start.
async fn wait_for_peer(
    a: &DrbdArgs,
    cx: &Context,
    first: &DiskStatus,
    o: &Options,
    started: tokio::time::Instant,
    give_up: tokio::time::Instant,
) -> Result<(), AgentError> {
    let conf =
        crate::disk::device::DeviceConfig::load(&a.config_dir, &cx.node, &cx.run_dir, &a.res);
    let w = match &conf {
        Ok(c) => wfc_wait(c.res.wfc_timeout, c.res.degr_wfc_timeout, first.degr_wfc),
        Err(e) => {
            tracing::warn!(resource = %a.res, error = %e, "cannot read the startup timeouts: waiting as with wfc-timeout 0");
            wfc_wait(None, None, first.degr_wfc)
        }
    };
    let budget = give_up.saturating_duration_since(started);
    tracing::info!(
        resource = %a.res,
        timeout = w.key,
        wait_s = w.timeout.map(|t| t.as_secs()),
        start_timeout_s = o.start_timeout.as_secs(),
        "device has not met its peer since it started: waiting for it before promoting"
    );
    if w.timeout.is_none_or(|t| t >= budget) {
        tracing::warn!(resource = %a.res, "the agent's start timeout ends the wait first: the start fails unless the peer connects");
    }
    let mut s = first.clone();
    loop {
        match next_step(&a.res, &s, w, started.elapsed(), budget) {
            Next::Promote => {
                if s.connection < ConnState::Connected {
                    tracing::warn!(resource = %a.res, "the peer did not connect within {} {}s: promoting without it, as DRBD's init script", w.key, started.elapsed().as_secs());
                }
                return Ok(());
            }
            Next::Fail(m) => return Err(AgentError::Failed(m)),
            Next::Wait => {}
        }
        tokio::time::sleep(PEER_POLL).await;
        s = client::status_async(&cx.run_dir, &a.res, Duration::from_secs(5))
            .await
            .map_err(|e| AgentError::Failed(e.to_string()))?;
    }
}

pub async fn stop(a: &DrbdArgs, o: &Options) -> Result<(), AgentError> {
    if kernel_driver(&a.config_dir) {
        return drbdadm(&["secondary", &a.res], o.stop_timeout)
            .await
            .map(|_| ());
    }
    let cx = a.context();
    match client::request_async(&cx.run_dir, &a.res, DiskRequest::Secondary, o.stop_timeout).await {
        Err(ClientError::NotUp { .. }) => Ok(()),
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

/// Before the group starts: refuse when the peer stays Primary for
/// [`PROMOTE_RETRY`] (the start would be refused as long and roll back). A
/// peer that is only finishing its demotion (a hand-over) passes once it
/// did. A device that is not up, or does not answer, says nothing: the
/// start itself decides.
pub async fn preflight(a: &DrbdArgs) -> Result<(), AgentError> {
    // An Outdated disk (the peer's outdater marked it: it lacks the peer's
    // last writes) is never promoted without --force: say so before the
    // group's addresses are added.
    if local_outdated(a).await {
        return Err(AgentError::Failed(format!(
            "{}: this node's disk is Outdated (it lacks the peer's latest writes): \
             not starting; if the peer is gone for good, `hbctl disk primary {} --force` \
             takes this data as it is",
            a.res, a.res
        )));
    }
    let deadline = tokio::time::Instant::now() + PROMOTE_RETRY;
    loop {
        if !peer_primary(a).await {
            return Ok(());
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(AgentError::Failed(format!(
                "{}: the peer is Primary: it still runs this disk",
                a.res
            )));
        }
        tracing::info!(resource = %a.res, "the peer is Primary; waiting before anything starts");
        tokio::time::sleep(RETRY_PAUSE).await;
    }
}

/// This node's disk is Outdated and not Primary, as the device says now.
async fn local_outdated(a: &DrbdArgs) -> bool {
    if kernel_driver(&a.config_dir) {
        return match drbdadm(&["dstate", &a.res], STATUS_TIMEOUT).await {
            Ok(out) => out.trim().split('/').next() == Some("Outdated"),
            Err(_) => false,
        };
    }
    let cx = a.context();
    match client::status_async(&cx.run_dir, &a.res, STATUS_TIMEOUT).await {
        Ok(s) => s.disk == DiskState::Outdated && s.role != Role::Primary,
        Err(_) => false,
    }
}

/// The peer is Primary and connected to this node, as the device says now.
async fn peer_primary(a: &DrbdArgs) -> bool {
    if kernel_driver(&a.config_dir) {
        return match drbdadm(&["role", &a.res], STATUS_TIMEOUT).await {
            Ok(out) => out.trim().split('/').nth(1) == Some("Primary"),
            Err(_) => false,
        };
    }
    let cx = a.context();
    match client::status_async(&cx.run_dir, &a.res, STATUS_TIMEOUT).await {
        Ok(s) => s.peer_role == Role::Primary && s.connection >= ConnState::Connected,
        Err(_) => false,
    }
}

pub async fn status(a: &DrbdArgs) -> Result<Running, AgentError> {
    if kernel_driver(&a.config_dir) {
        let out = drbdadm(&["role", &a.res], STATUS_TIMEOUT).await?;
        return Ok(role_running(&out));
    }
    let cx = a.context();
    match client::status_async(&cx.run_dir, &a.res, STATUS_TIMEOUT).await {
        Err(ClientError::NotUp { .. }) => Ok(Running::Stopped),
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
                tokio::time::sleep(DRBDADM_RETRY_PAUSE).await;
            }
        }
    }
}

#[cfg(test)]
static FAKE_DRBDADM: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();

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
    run_drbdadm(&drbdadm_bin(), args, timeout).await
}

/// As agents are run ([`crate::process::run`]: no environment of hbd's but
/// PATH, no descriptors, its own process group, killed with it at `timeout`:
/// drbdsetup and the handlers drbdadm started are in that group).
async fn run_drbdadm(bin: &Path, args: &[&str], timeout: Duration) -> Result<String, AgentError> {
    use crate::process::{self, Output, RunError};
    let what = format!("drbdadm {}", args.join(" "));
    let c = process::Command::new(bin)
        .args(args)
        .output(Output::Capture)
        .timeout(timeout);
    let out = match process::run(&c).await {
        Ok(out) => out,
        Err(RunError::TimedOut { .. }) => {
            return Err(AgentError::Failed(format!(
                "{what}: no answer within {}s",
                timeout.as_secs()
            )))
        }
        Err(RunError::Spawn { source, .. } | RunError::Wait { source, .. }) => {
            return Err(AgentError::Failed(format!("{what}: {source}")))
        }
        Err(e) => return Err(AgentError::Failed(format!("{what}: {e}"))),
    };
    if out.success() {
        return Ok(out.stdout);
    }
    let err = out.stderr();
    let last = err.lines().last().unwrap_or("").trim();
    Err(AgentError::Failed(format!(
        "{what}: exit code {}{}",
        if out.signal.is_some() { -1 } else { out.code },
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
                config_dir: d.into(),
                context: None,
            }
        );
        assert!(parse_args(&[], d)
            .unwrap_err()
            .to_string()
            .contains("drbddisk::r0"));
        assert!(parse_args(&["r0", "x"], d).is_err());
        assert!(parse_args(&["a/b"], d).is_err());
        assert!(parse_args(&["all"], d).is_err());
    }

    /// drbd-utils' choose_timeout: 0 and unset wait forever; a finite
    /// wfc-timeout caps degr-wfc-timeout; degr only after a degraded
    /// Primary went down.
    #[test]
    fn wfc_wait_as_drbdsetup() {
        let s = Duration::from_secs;
        let forever = |key| WfcWait { key, timeout: None };
        let wfc = |t| WfcWait {
            key: "wfc-timeout",
            timeout: Some(s(t)),
        };
        let degr = |t| WfcWait {
            key: "degr-wfc-timeout",
            timeout: Some(s(t)),
        };
        // Unset and 0: forever (the finding: hbd used to wait 60 s).
        assert_eq!(wfc_wait(None, None, false), forever("wfc-timeout"));
        assert_eq!(wfc_wait(Some(s(0)), None, false), forever("wfc-timeout"));
        assert_eq!(wfc_wait(None, None, true), forever("degr-wfc-timeout"));
        // Seed 002: wfc-timeout 0; degr-wfc-timeout 120.
        assert_eq!(
            wfc_wait(Some(s(0)), Some(s(120)), false),
            forever("wfc-timeout")
        );
        assert_eq!(wfc_wait(Some(s(0)), Some(s(120)), true), degr(120));
        // A finite wfc caps degr, also a 0 (forever) degr.
        assert_eq!(wfc_wait(Some(s(30)), Some(s(120)), true), degr(30));
        assert_eq!(wfc_wait(Some(s(30)), Some(s(0)), true), degr(30));
        assert_eq!(wfc_wait(Some(s(30)), None, true), degr(30));
        assert_eq!(wfc_wait(Some(s(30)), Some(s(10)), true), degr(10));
        assert_eq!(wfc_wait(Some(s(30)), Some(s(10)), false), wfc(30));
    }

    fn disk_status(conn: ConnState, ever_connected: bool) -> DiskStatus {
        serde_json::from_value(serde_json::json!({
            "name": "r0", "node": "n2", "peer": "n1", "pid": 1, "role": "Secondary",
            "peer_role": "Unknown", "disk": "UpToDate", "peer_disk": "DUnknown",
            "connection": conn, "device": "/dev/drbd0", "loop_device": null,
            "backing": "/tmp/x", "size_bytes": 1, "out_of_sync_bytes": 0, "sync": null,
            "verify": null, "split_brain": null, "uuids": ["", "", "", ""],
            "local_address": "192.0.2.12:7788", "peer_address": "192.0.2.11:7788",
            "counters": {"ns": 0, "nr": 0, "dw": 0, "dr": 0, "al": 0, "bm": 0, "pe": 0, "ap": 0, "ep": 0},
            "last_write_unix_ms": null, "last_error": null, "ever_connected": ever_connected
        }))
        .unwrap()
    }

    /// The wait's decisions: connected promotes; StandAlone never met the
    /// peer fails at once (it used to count as settled); an unbounded wait
    /// fails when the start's budget is used up (it used to promote after
    /// 60 s); a bounded one promotes when it ends, as DRBD's init script.
    #[test]
    fn wait_decisions() {
        let s = Duration::from_secs;
        let forever = wfc_wait(Some(s(0)), Some(s(120)), false);
        let bounded = wfc_wait(Some(s(0)), Some(s(3)), true);
        let budget = s(100);
        let step = |st: &DiskStatus, w, waited| next_step("r0", st, w, waited, budget);
        let waiting = disk_status(ConnState::WFConnection, false);
        assert_eq!(step(&waiting, forever, s(1)), Next::Wait);
        assert_eq!(step(&waiting, forever, s(99)), Next::Wait);
        let Next::Fail(m) = step(&waiting, forever, s(100)) else {
            panic!("an unbounded wait must fail at the budget")
        };
        assert!(m.contains("wfc-timeout 0"), "{m}");
        assert!(m.contains("hbctl disk primary --force r0"), "{m}");
        assert!(m.contains("discards any writes only the peer has"), "{m}");
        assert_eq!(step(&waiting, bounded, s(2)), Next::Wait);
        assert_eq!(step(&waiting, bounded, s(3)), Next::Promote);
        // A bounded wait longer than the budget fails at the budget.
        let long = wfc_wait(Some(s(300)), None, false);
        let Next::Fail(m) = step(&waiting, long, s(100)) else {
            panic!("the budget ends a longer wfc-timeout")
        };
        assert!(m.contains("wfc-timeout 300s"), "{m}");
        // StandAlone, never connected: fail at once, whatever the timeout.
        let alone = disk_status(ConnState::StandAlone, false);
        for w in [forever, bounded] {
            let Next::Fail(m) = step(&alone, w, s(0)) else {
                panic!("StandAlone must not count as settled")
            };
            assert!(
                m.contains("StandAlone") && m.contains("hbctl disk connect r0"),
                "{m}"
            );
            assert!(m.contains("--force"), "{m}");
        }
        // Met the peer: promote (the device decides), unless mid-handshake.
        let connected = disk_status(ConnState::Connected, true);
        assert_eq!(step(&connected, forever, s(0)), Next::Promote);
        let handshake = disk_status(ConnState::WFBitMapT, true);
        assert_eq!(step(&handshake, forever, s(0)), Next::Wait);
        let lost_again = disk_status(ConnState::WFConnection, true);
        assert_eq!(step(&lost_again, forever, s(0)), Next::Promote);
    }

    #[test]
    fn start_budget_leaves_room_for_the_answer() {
        let s = Duration::from_secs;
        assert_eq!(start_budget(s(120)), s(115));
        assert_eq!(start_budget(s(8)), Duration::from_millis(7200));
        assert_eq!(start_budget(Duration::ZERO), Duration::ZERO);
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
        testing::DISK_BIN.set(testing::install(t.path())).unwrap();
        let mut a = parse_args(&["r0"], t.path()).unwrap();
        a.context = Some(Context {
            node: "a".into(),
            run_dir: run.clone(),
        });
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

    /// drbdadm starts as agents do: hbd's environment, descriptors and
    /// process group stay behind (issue 14, finding 9).
    #[tokio::test]
    async fn drbdadm_starts_clean() {
        let t = tempfile::tempdir().unwrap();
        let fake = t.path().join("drbdadm");
        // A child that outlives the call, for a look at what it was given.
        std::fs::write(
            &fake,
            "#!/bin/sh\nsleep 600 </dev/null >/dev/null 2>&1 &\necho \"$$ $!\"\n",
        )
        .unwrap();
        std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();
        // A descriptor without close-on-exec, as hbd may inherit one.
        let file = std::fs::File::open("/dev/null").unwrap();
        let leaked = nix::fcntl::fcntl(&file, nix::fcntl::FcntlArg::F_DUPFD(100)).unwrap();
        let out = run_drbdadm(&fake, &["role", "r0"], Duration::from_secs(30)).await;
        nix::unistd::close(leaked).unwrap();
        let out = out.unwrap();
        let (shell, child) = out.trim().split_once(' ').unwrap();
        let (shell, child): (i32, i32) = (shell.parse().unwrap(), child.parse().unwrap());
        struct Kill(i32);
        impl Drop for Kill {
            fn drop(&mut self) {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(self.0),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
        }
        let _k = Kill(child);
        // `$!` is known before the forked shell has exec'd sleep (until then
        // it holds the shell's descriptors, the script on fd 10), and the
        // loader of sleep opens its libraries on fd 3 for a moment: a leak
        // is a descriptor that stays, so look until the set is settled.
        let fds_of = || -> (String, Vec<String>) {
            let comm = std::fs::read_to_string(format!("/proc/{child}/comm")).unwrap_or_default();
            let mut fds: Vec<(i32, String)> = std::fs::read_dir(format!("/proc/{child}/fd"))
                .map(|d| {
                    d.flatten()
                        .filter_map(|e| {
                            let fd = e.file_name().to_str()?.parse().ok()?;
                            let to = std::fs::read_link(e.path()).ok()?;
                            Some((fd, to.display().to_string()))
                        })
                        .collect()
                })
                .unwrap_or_default();
            fds.sort();
            (
                comm,
                fds.into_iter()
                    .map(|(fd, to)| format!("{fd} -> {to}"))
                    .collect(),
            )
        };
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        loop {
            let (comm, fds) = fds_of();
            if comm == "sleep\n"
                && fds.len() == 3
                && fds
                    .iter()
                    .zip(["0 ", "1 ", "2 "])
                    .all(|(f, p)| f.starts_with(p))
            {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "descriptors leaked into {}: {fds:?}",
                comm.trim()
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let environ = std::fs::read(format!("/proc/{child}/environ")).unwrap();
        for v in environ.split(|&b| b == 0).filter(|v| !v.is_empty()) {
            let v = String::from_utf8_lossy(v);
            let key = v.split('=').next().unwrap();
            // PWD, SHLVL and _ are the shell's own.
            assert!(
                ["PATH", "PWD", "OLDPWD", "SHLVL", "_"].contains(&key),
                "hbd's environment leaked: {v}"
            );
        }
        let stat = std::fs::read_to_string(format!("/proc/{child}/stat")).unwrap();
        let pgrp: i32 = stat
            .rsplit_once(") ")
            .unwrap()
            .1
            .split(' ')
            .nth(2)
            .unwrap()
            .parse()
            .unwrap();
        assert_eq!(pgrp, shell, "drbdadm is not in a process group of its own");
    }
}
