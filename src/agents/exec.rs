//! Script agents: heartbeat-style (`resource.d`), LSB init scripts and OCF
//! agents, each run with a timeout, its output logged line by line.
//!
//! Every call runs the script from [`clean_command`] (stdin from `/dev/null`,
//! its own process group, no descriptor of hbd's but 0, 1 and 2) with a clean
//! environment: `PATH`, hbd's own `HBD_*` variables (agent tuning such as
//! `HBD_STOP_GRACE`) and, for OCF, the `OCF_*` variables. Output
//! lines are logged in the caller's span (stdout at info, stderr at warn),
//! each cut at [`MAX_LINE`] bytes; the last [`TAIL_LINES`] lines make the
//! message of a failure.
//!
//! A script that starts a daemon leaves it holding the script's stdout and
//! stderr: the call ends when the script process exits (plus a short drain
//! of what is already readable), never at EOF. The rest of the daemon's output
//! is logged by a detached task until it closes the pipes, so the daemon never
//! writes into a closed pipe while hbd runs.
//!
//! On timeout the whole process group is KILLed, as it is when the call is
//! dropped before the script exited.
//!
//! Every other program hbd starts (respawned programs, drbdadm, fsck, mount
//! helpers, VRRP scripts) starts from [`clean_command`] too, and every
//! account lookup that picks the user to run one as goes through [`lookup`],
//! off the daemon's loop.

use super::{Action, AgentError, AgentKind, Running};
use nix::sys::signal::{killpg, Signal};
use nix::unistd::{Pid, User};
use std::collections::VecDeque;
use std::path::Path;
use std::process::{ExitStatus, Stdio};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::time::Instant;
use tracing::Instrument;

/// Longest output line logged; the rest of a longer line is dropped.
pub const MAX_LINE: usize = 4096;
/// Output lines kept for error messages.
pub const TAIL_LINES: usize = 10;
/// How long output is still read after the script exited.
const DRAIN: Duration = Duration::from_millis(100);
/// Status output kept for heartbeat's pattern match.
const MAX_STATUS_OUTPUT: usize = 64 * 1024;

/// The only `PATH` a program started by hbd gets.
pub const PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// How long a caller waits for one account lookup (getpwnam, getgrnam,
/// getpwuid) before it gives up.
pub const LOOKUP_TIMEOUT: Duration = Duration::from_secs(5);
/// Account lookups running at once. A stalled one keeps its thread until
/// NSS answers; when all are stalled, later callers wait for a thread within
/// their own timeout instead of piling up threads.
const LOOKUP_THREADS: usize = 4;
static LOOKUPS: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(LOOKUP_THREADS);

/// The start every program hbd runs gets (agents, fence agents, jobs,
/// hooks, respawned programs, drbdadm, fsck, mount helpers, VRRP scripts):
///
/// - an environment of `PATH` alone (with `user`, also its `HOME`, `USER`
///   and `LOGNAME`): nothing of hbd's own environment, which the caller adds
///   to only with what the program needs;
/// - stdin from `/dev/null`;
/// - a process group of its own: a signal to hbd's group (a terminal's
///   Ctrl-C, a supervisor killing the group) does not reach it, and its own
///   group can be killed as one;
/// - no descriptor of hbd's but 0, 1 and 2: Rust and tokio open theirs
///   close-on-exec, but hbd may have inherited some that are not, so every
///   descriptor above 2 is marked close-on-exec in the child before exec;
/// - with `user`: its uid and primary gid (std drops root's supplementary
///   groups) and its home as working directory (`/` when it has none).
///
/// The user is looked up by the caller, off the loop ([`user_by_name`]);
/// nothing in the child between fork and exec looks anything up.
pub fn clean_command(
    program: impl AsRef<std::ffi::OsStr>,
    user: Option<&User>,
) -> tokio::process::Command {
    let mut cmd = tokio::process::Command::new(program);
    cmd.env_clear()
        .env("PATH", PATH)
        .stdin(Stdio::null())
        .process_group(0);
    if let Some(u) = user {
        cmd.uid(u.uid.as_raw())
            .gid(u.gid.as_raw())
            .env("HOME", &u.dir)
            .env("USER", &u.name)
            .env("LOGNAME", &u.name)
            .current_dir(if u.dir.is_dir() {
                u.dir.as_path()
            } else {
                Path::new("/")
            });
    }
    // SAFETY: the closure makes only async-signal-safe system calls and
    // allocates nothing.
    unsafe {
        cmd.pre_exec(|| {
            // Never realtime (ha.cf `realtime`): hbd's realtime threads
            // already reset children on fork; this also covers an hbd
            // started under chrt.
            let _ = crate::runtime::realtime::make_thread_normal();
            close_on_exec_above_stderr()
        });
    }
    cmd
}

/// In the child, between fork and exec: every descriptor above 2 becomes
/// close-on-exec (close_range(2), Linux 5.11; one fcntl(2) per possible
/// descriptor before that). Marked rather than closed, so that std's own
/// close-on-exec pipe still reports a failed exec. Async-signal-safe: for
/// `pre_exec` of commands not made by [`clean_command`].
pub fn close_on_exec_above_stderr() -> std::io::Result<()> {
    // SAFETY: system calls on plain integers.
    unsafe {
        if libc::syscall(
            libc::SYS_close_range,
            3u32,
            u32::MAX,
            libc::CLOSE_RANGE_CLOEXEC,
        ) == 0
        {
            return Ok(());
        }
        let mut limit = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        let max = if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) == 0 {
            limit.rlim_cur.min(1 << 20) as libc::c_int
        } else {
            1024
        };
        for fd in 3..max {
            let flags = libc::fcntl(fd, libc::F_GETFD);
            if flags >= 0 && flags & libc::FD_CLOEXEC == 0 {
                libc::fcntl(fd, libc::F_SETFD, flags | libc::FD_CLOEXEC);
            }
        }
    }
    Ok(())
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
) -> Result<T, String> {
    lookup_within(what, LOOKUP_TIMEOUT, f).await
}

async fn lookup_within<T: Send + 'static>(
    what: &str,
    limit: Duration,
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, String> {
    let gave_up = || {
        format!(
            "{what}: no answer within {} (a stalled LDAP or sssd?)",
            crate::config::format_duration(limit)
        )
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
        .map_err(|e| format!("{what}: cannot start a thread: {e}"))?;
    match tokio::time::timeout_at(deadline, rx).await {
        Ok(Ok(answer)) => Ok(answer),
        Ok(Err(_)) => Err(format!("{what}: the lookup failed")),
        Err(_) => Err(gave_up()),
    }
}

/// User `name` (getpwnam), looked up off the loop ([`lookup`]).
pub async fn user_by_name(name: &str) -> Result<User, String> {
    let n = name.to_string();
    match lookup(&format!("looking up user `{name}`"), move || {
        User::from_name(&n)
    })
    .await?
    {
        Ok(Some(u)) => Ok(u),
        Ok(None) => Err(format!("no user `{name}`")),
        Err(e) => Err(format!("cannot look up user `{name}`: {e}")),
    }
}

/// Runs `action` of a script agent (`kind` is Heartbeat, Lsb or Ocf). For
/// [`Action::Status`] the answer is whether it runs; for start and stop,
/// `Ok(Running::Running)`/`Ok(Running::Stopped)` on success.
pub async fn run(
    kind: &AgentKind,
    action: Action,
    timeout: Duration,
) -> Result<Running, AgentError> {
    let (path, args, env): (&Path, Vec<String>, Vec<(String, String)>) = match kind {
        AgentKind::Heartbeat { path, args } => {
            let mut a = args.clone();
            a.push(action.as_str().to_string());
            (path, a, Vec::new())
        }
        AgentKind::Lsb { path } => (path, vec![action.as_str().to_string()], Vec::new()),
        AgentKind::Ocf {
            path,
            ocf_root,
            provider,
            kind,
            params,
        } => (
            path,
            vec![ocf_action(action).to_string()],
            ocf_env(ocf_root, provider, kind, params),
        ),
        other => {
            return Err(AgentError::Failed(format!(
                "{} agent is not a script",
                other.class()
            )))
        }
    };
    let out = execute(path, &args, &env, action, timeout).await?;
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

/// What one call left behind.
#[derive(Debug, Default)]
struct Output {
    /// Exit code; a death by signal N is 128 + N, as the shell reports it.
    code: i32,
    /// Killed by a signal (not by us).
    signal: Option<i32>,
    /// The last lines of both streams, in arrival order, stderr lines kept
    /// before stdout ones.
    tail: VecDeque<(bool, String)>,
    /// stdout, bounded: heartbeat judges status by it.
    stdout: String,
}

impl Output {
    fn message(&self) -> String {
        let mut parts: Vec<String> = Vec::new();
        if let Some(s) = self.signal {
            parts.push(format!("killed by signal {s}"));
        }
        parts.extend(self.tail.iter().map(|(_, l)| l.clone()));
        parts.join("; ")
    }

    fn exit(&self, action: Action, meaning: Option<&str>) -> AgentError {
        let mut message = meaning.map(str::to_string).unwrap_or_default();
        let tail = self.message();
        if !tail.is_empty() {
            if !message.is_empty() {
                message.push_str(": ");
            }
            message.push_str(&tail);
        }
        AgentError::Exit {
            action,
            code: self.code,
            message,
        }
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
fn heartbeat_result(action: Action, out: &Output) -> Result<Running, AgentError> {
    match action {
        Action::Status => Ok(heartbeat_status(&out.stdout)),
        Action::Start if out.code == 0 => Ok(Running::Running),
        Action::Stop if out.code == 0 => Ok(Running::Stopped),
        _ => Err(out.exit(action, None)),
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
fn lsb_result(action: Action, out: &Output) -> Result<Running, AgentError> {
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
        (Action::Status, 4) => Err(out.exit(action, Some("program or service status is unknown"))),
        (Action::Status, c) => Err(out.exit(action, code_name(c))),
        (Action::Start, 0) => Ok(Running::Running),
        (Action::Stop, 0) => Ok(Running::Stopped),
        (_, c) => Err(out.exit(action, code_name(c))),
    }
}

/// OCF RA API 1.0 exit codes: monitor 0 running, 7 not running, 8 running as
/// master; start/stop 0 success.
fn ocf_result(action: Action, out: &Output) -> Result<Running, AgentError> {
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
        (_, c) => Err(out.exit(action, ocf_code_name(c))),
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

/// KILLs the script's process group if the call ends (timeout, or the future
/// dropped) before the script exited. Once it exited, the group may hold the
/// daemon the script started: then it is left alone.
struct GroupGuard(Option<Pid>);

impl GroupGuard {
    fn kill(&mut self) {
        if let Some(pgid) = self.0.take() {
            let _ = killpg(pgid, Signal::SIGKILL);
        }
    }
}

impl Drop for GroupGuard {
    fn drop(&mut self) {
        self.kill();
    }
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// One stream of the script: bytes split into bounded lines.
struct Stream<R> {
    reader: Option<R>,
    lines: LineSplitter,
    stderr: bool,
}

impl<R: AsyncRead + Unpin> Stream<R> {
    fn new(reader: Option<R>, stderr: bool) -> Self {
        Stream {
            reader,
            lines: LineSplitter::default(),
            stderr,
        }
    }
}

/// Reads from whichever stream has data; logs and records complete lines.
/// `None` once both streams are at EOF.
async fn read_some<A, B>(out: &mut Stream<A>, err: &mut Stream<B>, sink: &mut Sink) -> Option<()>
where
    A: AsyncRead + Unpin,
    B: AsyncRead + Unpin,
{
    let mut b1 = [0u8; 4096];
    let mut b2 = [0u8; 4096];
    let (n, is_err) = tokio::select! {
        n = read_from(&mut out.reader, &mut b1), if out.reader.is_some() => (n, false),
        n = read_from(&mut err.reader, &mut b2), if err.reader.is_some() => (n, true),
        else => return None,
    };
    if is_err {
        feed(err, &b2[..n], sink);
    } else {
        feed(out, &b1[..n], sink);
    }
    Some(())
}

/// One read; 0 at EOF or on an error (the stream is done either way).
async fn read_from<R: AsyncRead + Unpin>(reader: &mut Option<R>, buf: &mut [u8]) -> usize {
    match reader {
        Some(r) => r.read(buf).await.unwrap_or(0),
        None => std::future::pending().await,
    }
}

fn feed<R>(s: &mut Stream<R>, bytes: &[u8], sink: &mut Sink) {
    if bytes.is_empty() {
        s.reader = None;
        if let Some(line) = s.lines.finish() {
            sink.line(&line, s.stderr);
        }
        return;
    }
    for line in s.lines.push(bytes) {
        sink.line(&line, s.stderr);
    }
}

/// Where output lines go: the log, the tail, and (stdout) the status text.
#[derive(Default)]
struct Sink {
    /// (from stderr, line)
    tail: VecDeque<(bool, String)>,
    stdout: String,
    /// After the call returned: the daemon's leftovers, logged only.
    detached: bool,
}

impl Sink {
    fn line(&mut self, line: &str, stderr: bool) {
        if stderr {
            tracing::warn!(line, "agent stderr");
        } else {
            tracing::info!(line, "agent output");
        }
        if self.detached {
            return;
        }
        if !stderr && self.stdout.len() + line.len() < MAX_STATUS_OUTPUT {
            self.stdout.push_str(line);
            self.stdout.push('\n');
        }
        if !line.trim().is_empty() {
            if self.tail.len() == TAIL_LINES {
                // stdout and stderr are two pipes, read in no reliable order:
                // the stderr lines, the likelier explanation, go last.
                let i = self.tail.iter().position(|(e, _)| !e).unwrap_or(0);
                self.tail.remove(i);
            }
            self.tail.push_back((stderr, line.trim_end().to_string()));
        }
    }
}

/// Splits bytes into lines of at most [`MAX_LINE`] bytes (lossy UTF-8); the
/// excess of a longer line is dropped, marked with `…`.
#[derive(Default)]
struct LineSplitter {
    cur: Vec<u8>,
    cut: bool,
}

impl LineSplitter {
    fn push(&mut self, mut bytes: &[u8]) -> Vec<String> {
        let mut lines = Vec::new();
        while !bytes.is_empty() {
            let (part, rest, end) = match bytes.iter().position(|&b| b == b'\n') {
                Some(i) => (&bytes[..i], &bytes[i + 1..], true),
                None => (bytes, &[][..], false),
            };
            let room = MAX_LINE - self.cur.len();
            if part.len() > room {
                self.cur.extend_from_slice(&part[..room]);
                self.cut = true;
            } else {
                self.cur.extend_from_slice(part);
            }
            if end {
                lines.push(self.take());
            }
            bytes = rest;
        }
        lines
    }

    fn finish(&mut self) -> Option<String> {
        (!self.cur.is_empty() || self.cut).then(|| self.take())
    }

    fn take(&mut self) -> String {
        let mut s = String::from_utf8_lossy(&self.cur).into_owned();
        if self.cut {
            s.push('…');
        }
        self.cur.clear();
        self.cut = false;
        s
    }
}

/// Runs `/bin/sh -c command` as `user` (root's when `None`) with `env` on
/// top of the clean environment, its output logged in the current span,
/// killed with its process group at `timeout`: for jobs and notification
/// hooks. `Ok` is the exit code (0 success); `Err` says why it did not run
/// or did not finish.
pub async fn run_shell(
    command: &str,
    user: Option<&str>,
    env: &[(String, String)],
    timeout: Duration,
) -> Result<i32, String> {
    let user = match user {
        None => None,
        Some(name) => Some(user_by_name(name).await?),
    };
    let args = vec!["-c".to_string(), command.to_string()];
    match execute_as(
        Path::new("/bin/sh"),
        &args,
        env,
        Action::Start,
        timeout,
        user.as_ref(),
        None,
    )
    .await
    {
        Ok(out) => {
            if out.code != 0 {
                tracing::debug!(code = out.code, last = %out.message(), "command failed");
            }
            Ok(out.code)
        }
        Err(AgentError::Timeout { timeout, .. }) => Err(format!(
            "timed out after {}: killed",
            crate::config::format_duration(timeout)
        )),
        Err(e) => Err(e.to_string()),
    }
}

async fn execute(
    path: &Path,
    args: &[String],
    env: &[(String, String)],
    action: Action,
    timeout: Duration,
) -> Result<Output, AgentError> {
    execute_as(path, args, env, action, timeout, None, None).await
}

/// Runs `path` with `input` written to its stdin (then closed), for fence
/// agents (`key=value` lines): clean environment, own process group, output
/// logged in the current span, killed with its group at `timeout`. `Ok` is
/// the exit code and the last output lines; `Err` says why it did not run or
/// did not finish.
pub async fn run_with_input(
    path: &Path,
    input: &[u8],
    timeout: Duration,
) -> Result<(i32, String), String> {
    match execute_as(path, &[], &[], Action::Start, timeout, None, Some(input)).await {
        Ok(out) => Ok((out.code, out.message())),
        Err(AgentError::Timeout { timeout, .. }) => Err(format!(
            "timed out after {}: killed",
            crate::config::format_duration(timeout)
        )),
        Err(e) => Err(e.to_string()),
    }
}

async fn execute_as(
    path: &Path,
    args: &[String],
    env: &[(String, String)],
    action: Action,
    timeout: Duration,
    user: Option<&User>,
    input: Option<&[u8]>,
) -> Result<Output, AgentError> {
    if !is_executable(path) {
        return Err(AgentError::Failed(format!(
            "{}: not an executable file",
            path.display()
        )));
    }
    tracing::debug!(path = %path.display(), ?args, "running agent");
    let mut cmd = clean_command(path, user);
    cmd.args(args)
        .envs(std::env::vars().filter(|(k, _)| k.starts_with("HBD_")))
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if input.is_some() {
        cmd.stdin(Stdio::piped());
    }
    let deadline = Instant::now() + timeout;
    let mut child = loop {
        match cmd.spawn() {
            Ok(c) => break c,
            // A script just written may still be open for writing in a
            // process forked meanwhile (ETXTBSY): a moment later it is not.
            Err(e) if e.raw_os_error() == Some(libc::ETXTBSY) && Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Err(e) => {
                return Err(AgentError::Failed(format!("{}: {e}", path.display())));
            }
        }
    };
    let mut guard = GroupGuard(child.id().map(|id| Pid::from_raw(id as i32)));
    if let (Some(mut stdin), Some(input)) = (child.stdin.take(), input) {
        // Written from a task: an agent that does not read its stdin must
        // not block the call (a pipe holds only so much).
        let input = input.to_vec();
        tokio::spawn(async move {
            use tokio::io::AsyncWriteExt;
            let _ = stdin.write_all(&input).await;
        });
    }
    let mut out = Stream::new(child.stdout.take(), false);
    let mut err = Stream::new(child.stderr.take(), true);
    let mut sink = Sink::default();

    let status: Option<ExitStatus> = loop {
        tokio::select! {
            st = child.wait() => match st {
                Ok(st) => break Some(st),
                Err(e) => return Err(AgentError::Failed(format!("{}: wait: {e}", path.display()))),
            },
            _ = tokio::time::sleep_until(deadline) => break None,
            r = read_some(&mut out, &mut err, &mut sink) => {
                if r.is_none() {
                    // Both streams closed: only the exit is left to wait for.
                    tokio::select! {
                        st = child.wait() => match st {
                            Ok(st) => break Some(st),
                            Err(e) => return Err(AgentError::Failed(format!("{}: wait: {e}", path.display()))),
                        },
                        _ = tokio::time::sleep_until(deadline) => break None,
                    }
                }
            }
        }
    };
    match status {
        // The script exited: its process group is no longer ours to kill.
        Some(_) => guard.0 = None,
        None => {
            tracing::warn!(%action, ?timeout, "agent timed out: killing its process group");
            guard.kill();
            // KILL cannot be ignored, but a process stuck in the kernel (D
            // state, e.g. on a dead NFS server) dies only when it returns.
            if tokio::time::timeout(Duration::from_secs(5), child.wait())
                .await
                .is_err()
            {
                tracing::warn!("agent does not die after KILL");
            }
        }
    }

    // Drain what is readable now, briefly: a daemon started by the script may
    // hold the pipes open for as long as it runs.
    let drain_end = Instant::now() + DRAIN;
    loop {
        tokio::select! {
            r = read_some(&mut out, &mut err, &mut sink) => if r.is_none() { break },
            _ = tokio::time::sleep_until(drain_end) => break,
        }
    }
    if out.reader.is_some() || err.reader.is_some() {
        tracing::debug!("agent's children still hold its output: logging it in the background");
        let mut rest = Sink {
            detached: true,
            ..Sink::default()
        };
        tokio::spawn(
            async move { while read_some(&mut out, &mut err, &mut rest).await.is_some() {} }
                .instrument(tracing::Span::current()),
        );
    }

    let Some(status) = status else {
        return Err(AgentError::Timeout { action, timeout });
    };
    use std::os::unix::process::ExitStatusExt;
    let (code, signal) = match (status.code(), status.signal()) {
        (Some(c), _) => (c, None),
        (None, Some(s)) => (128 + s, Some(s)),
        (None, None) => (-1, None),
    };
    Ok(Output {
        code,
        signal,
        tail: sink.tail,
        stdout: sink.stdout,
    })
}

#[cfg(test)]
mod tests;
