//! The one way hbd runs a program: script agents, `exec` checks, jobs,
//! notification hooks, fence agents, VRRP track, notify and gate scripts,
//! drbdadm, fsck, mount helpers and nft all go through [`run`]; respawned
//! programs, which hbd keeps rather than waits for, start from the same
//! [`clean_command`].
//!
//! Every program starts clean ([`clean_command`]): an environment of `PATH`
//! alone plus what the caller adds, stdin from `/dev/null` (or the caller's
//! input), its own process group, no descriptor of hbd's but 0, 1 and 2,
//! never realtime. [`run`] then bounds it: at the timeout its whole process
//! group is KILLed (TERM first when the caller asks for a grace), as it is
//! when the call is dropped before the program exited; its output is read
//! as the [`Output`] mode says, in bounded lines.
//!
//! A program that starts a daemon leaves it holding the program's stdout and
//! stderr: the call ends when the program itself exits (plus a short drain
//! of what is already readable), never at EOF. In [`Output::Log`] mode the
//! rest of the daemon's output is logged by a detached task until it closes
//! the pipes, so the daemon never writes into a closed pipe while hbd runs.
//!
//! Account lookups that pick the user to run a program as go through
//! [`lookup`], off the daemon's loop.

mod lookup;
mod output;
#[cfg(test)]
mod tests;

pub use lookup::{lookup, user_by_name, LookupError, LOOKUP_TIMEOUT};
pub use output::{MAX_LINE, TAIL_LINES};

use nix::sys::signal::{killpg, Signal};
use nix::unistd::{Gid, Pid, User};
use output::{read_some, Reader, Sink, Stream};
use std::collections::VecDeque;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::time::Duration;
use tokio::time::Instant;
use tracing::Instrument;

/// The only `PATH` a program started by hbd gets.
pub const PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// How long output is still read after the program exited, in
/// [`Output::Log`] mode (a detached task logs the rest).
const DRAIN: Duration = Duration::from_millis(100);
/// The same in the other modes, which only keep what the program wrote
/// before it exited: that is in the pipe already and needs one turn of the
/// runtime, not a wait (an exec check must not spend its timeout here when
/// a daemon it started holds the pipe).
const DRAIN_KEPT: Duration = Duration::from_millis(10);
/// How long a program KILLed at its timeout may take to be reaped (one
/// stuck in the kernel, D state, dies only when it returns).
const REAP: Duration = Duration::from_secs(5);

/// The start every program hbd runs gets:
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
/// - never a realtime scheduling class (ha.cf `realtime`);
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
            // hbd's realtime threads already reset children on fork; this
            // also covers an hbd started under chrt.
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

/// What [`run`] does with the program's stdout and stderr.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Output {
    /// Each line logged in the caller's span as it arrives (stdout at info,
    /// stderr at warn) and kept ([`Finished`]); what a daemon the program
    /// started writes after the call is logged by a detached task. For
    /// agents, jobs, hooks and fence agents.
    Log,
    /// Kept, logged at debug only: for helpers whose answer the caller
    /// reads or words into its own error (drbdadm, mount helpers, nft).
    Capture,
    /// Both streams into one pipe, kept as [`Output::Capture`] keeps them:
    /// the tail is in the order the program wrote it, so its last line is
    /// the last thing said (checks, fsck).
    Merged,
    /// `/dev/null`: nothing read (VRRP scripts, as keepalived runs them).
    Discard,
}

/// One program to run: built by the caller, run by [`run`].
#[derive(Debug, Clone)]
pub struct Command {
    program: PathBuf,
    args: Vec<OsString>,
    env: Vec<(String, String)>,
    hbd_env: bool,
    user: Option<User>,
    gid: Option<Gid>,
    input: Option<Vec<u8>>,
    timeout: Option<Duration>,
    grace: Option<Duration>,
    output: Output,
    require_executable: bool,
}

impl Command {
    /// `program` (a path, or a name looked up in [`PATH`]), output logged,
    /// no timeout until [`Command::timeout`] sets one.
    pub fn new(program: impl Into<PathBuf>) -> Self {
        Command {
            program: program.into(),
            args: Vec::new(),
            env: Vec::new(),
            hbd_env: false,
            user: None,
            gid: None,
            input: None,
            timeout: None,
            grace: None,
            output: Output::Log,
            require_executable: false,
        }
    }

    /// `/bin/sh -c command`.
    pub fn shell(command: &str) -> Self {
        Command::new("/bin/sh").arg("-c").arg(command)
    }

    pub fn arg(mut self, a: impl Into<OsString>) -> Self {
        self.args.push(a.into());
        self
    }

    pub fn args<I: IntoIterator<Item = S>, S: Into<OsString>>(mut self, args: I) -> Self {
        self.args.extend(args.into_iter().map(Into::into));
        self
    }

    /// Variables on top of the clean environment.
    pub fn envs(mut self, env: &[(String, String)]) -> Self {
        self.env.extend_from_slice(env);
        self
    }

    /// Also hbd's own `HBD_*` variables (agent tuning such as
    /// `HBD_STOP_GRACE`), for agents and the shell commands of the config.
    pub fn hbd_env(mut self) -> Self {
        self.hbd_env = true;
        self
    }

    /// Run as `user` (looked up by the caller, off the loop).
    pub fn user(mut self, user: Option<User>) -> Self {
        self.user = user;
        self
    }

    /// With this group instead of the user's primary one.
    pub fn gid(mut self, gid: Gid) -> Self {
        self.gid = Some(gid);
        self
    }

    /// Written to the program's stdin, which is then closed.
    pub fn input(mut self, input: impl Into<Vec<u8>>) -> Self {
        self.input = Some(input.into());
        self
    }

    /// The process group is killed when the program runs longer.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// At the timeout, TERM the group first and KILL it `grace` later (as
    /// keepalived stops its scripts); without it, KILL at once.
    pub fn term_first(mut self, grace: Duration) -> Self {
        self.grace = Some(grace);
        self
    }

    pub fn output(mut self, output: Output) -> Self {
        self.output = output;
        self
    }

    /// Refuse, before running anything, a program that is not an executable
    /// file ("PATH: not an executable file"), as heartbeat does for agents.
    pub fn require_executable(mut self) -> Self {
        self.require_executable = true;
        self
    }
}

/// How a program ended, and what it said.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Finished {
    /// Exit code; a death by signal N is 128 + N, as the shell reports it.
    pub code: i32,
    /// Killed by a signal (not by hbd).
    pub signal: Option<i32>,
    /// The last [`TAIL_LINES`] non-empty lines of both streams, in arrival
    /// order, stderr lines kept before stdout ones: (from stderr, line).
    pub tail: VecDeque<(bool, String)>,
    /// stdout, up to 64 KiB (both streams, in [`Output::Merged`] mode).
    pub stdout: String,
}

impl Finished {
    pub fn success(&self) -> bool {
        self.code == 0 && self.signal.is_none()
    }

    /// The last non-empty line written.
    pub fn last_line(&self) -> Option<&str> {
        self.tail.back().map(|(_, l)| l.as_str())
    }

    /// The stderr lines of the tail, one per line.
    pub fn stderr(&self) -> String {
        let lines: Vec<&str> = self
            .tail
            .iter()
            .filter(|(stderr, _)| *stderr)
            .map(|(_, l)| l.as_str())
            .collect();
        lines.join("\n")
    }

    /// The signal, if any, and the tail, as one line: "killed by signal 9;
    /// line; line".
    pub fn message(&self) -> String {
        let mut parts: Vec<String> = Vec::new();
        if let Some(s) = self.signal {
            parts.push(format!("killed by signal {s}"));
        }
        parts.extend(self.tail.iter().map(|(_, l)| l.clone()));
        parts.join("; ")
    }

    fn from_status(status: ExitStatus, sink: Sink) -> Self {
        use std::os::unix::process::ExitStatusExt;
        let (code, signal) = match (status.code(), status.signal()) {
            (Some(c), _) => (c, None),
            (None, Some(s)) => (128 + s, Some(s)),
            (None, None) => (-1, None),
        };
        Finished {
            code,
            signal,
            tail: sink.tail,
            stdout: sink.stdout,
        }
    }
}

/// Why a program did not run or did not finish.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("{}: not an executable file", .0.display())]
    NotExecutable(PathBuf),
    #[error("{}: {source}", program.display())]
    Spawn {
        program: PathBuf,
        source: std::io::Error,
    },
    #[error("{}: wait: {source}", program.display())]
    Wait {
        program: PathBuf,
        source: std::io::Error,
    },
    /// Killed with its process group at its timeout.
    #[error("timed out after {}: killed", crate::config::format_duration(*timeout))]
    TimedOut { timeout: Duration },
    /// The account to run it as could not be looked up.
    #[error(transparent)]
    Lookup(#[from] LookupError),
}

/// KILLs a process group when dropped armed: the call ended (timeout, or
/// its future dropped) before the program exited. Once it exited, the group
/// may hold a daemon it started: then the guard is disarmed.
struct GroupGuard(Option<Pid>);

impl GroupGuard {
    fn signal(&self, sig: Signal) {
        if let Some(pgid) = self.0 {
            let _ = killpg(pgid, sig);
        }
    }

    fn kill(&mut self) {
        self.signal(Signal::SIGKILL);
        self.0 = None;
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

/// Runs `c` to its end, or to its timeout; see the module's text.
pub async fn run(c: &Command) -> Result<Finished, RunError> {
    if c.require_executable && !is_executable(&c.program) {
        return Err(RunError::NotExecutable(c.program.clone()));
    }
    tracing::debug!(program = %c.program.display(), args = ?c.args, "running");
    let deadline = c.timeout.map(|t| Instant::now() + t);
    let (mut child, out, err) = spawn(c, deadline).await?;
    let mut guard = GroupGuard(child.id().map(|id| Pid::from_raw(id as i32)));
    if let (Some(mut stdin), Some(input)) = (child.stdin.take(), c.input.clone()) {
        // Written from a task: a program that does not read its stdin must
        // not block the call (a pipe holds only so much).
        tokio::spawn(async move {
            use tokio::io::AsyncWriteExt;
            let _ = stdin.write_all(&input).await;
        });
    }
    let mut out = Stream::new(out, false);
    let mut err = Stream::new(err, true);
    let mut sink = Sink::new(c.output);
    let wait_error = |source| RunError::Wait {
        program: c.program.clone(),
        source,
    };
    let until = async {
        match deadline {
            Some(d) => tokio::time::sleep_until(d).await,
            None => std::future::pending().await,
        }
    };
    tokio::pin!(until);

    let status: Option<ExitStatus> = loop {
        tokio::select! {
            st = child.wait() => break Some(st.map_err(wait_error)?),
            _ = &mut until => break None,
            r = read_some(&mut out, &mut err, &mut sink) => {
                if r.is_none() {
                    // Both streams closed: only the exit is left to wait for.
                    tokio::select! {
                        st = child.wait() => break Some(st.map_err(wait_error)?),
                        _ = &mut until => break None,
                    }
                }
            }
        }
    };
    match status {
        // The program exited: its process group is no longer ours to kill.
        Some(_) => guard.0 = None,
        None => {
            tracing::warn!(program = %c.program.display(), timeout = ?c.timeout, "timed out: killing its process group");
            if let Some(grace) = c.grace {
                guard.signal(Signal::SIGTERM);
                let _ = tokio::time::timeout(grace, child.wait()).await;
            }
            // Also after a TERM that ended the leader: its children may not
            // have followed.
            guard.kill();
            // KILL cannot be ignored, but a process stuck in the kernel (D
            // state, e.g. on a dead NFS server) dies only when it returns.
            if tokio::time::timeout(REAP, child.wait()).await.is_err() {
                tracing::warn!(program = %c.program.display(), "does not die after KILL");
            }
        }
    }

    // Drain what is readable now, briefly: a daemon started by the program
    // may hold the pipes open for as long as it runs. Reads first: what is
    // in the pipe wins over the end of the drain.
    let drain = if c.output == Output::Log {
        DRAIN
    } else {
        DRAIN_KEPT
    };
    let drain_end = Instant::now() + drain;
    loop {
        tokio::select! {
            biased;
            r = read_some(&mut out, &mut err, &mut sink) => if r.is_none() { break },
            _ = tokio::time::sleep_until(drain_end) => break,
        }
    }
    if c.output == Output::Log && (out.reader.is_some() || err.reader.is_some()) {
        tracing::debug!(
            "the program's children still hold its output: logging it in the background"
        );
        let mut rest = Sink::detached(c.output);
        tokio::spawn(
            async move { while read_some(&mut out, &mut err, &mut rest).await.is_some() {} }
                .instrument(tracing::Span::current()),
        );
    }

    match status {
        Some(st) => Ok(Finished::from_status(st, sink)),
        None => Err(RunError::TimedOut {
            timeout: c.timeout.unwrap_or_default(),
        }),
    }
}

/// Runs `/bin/sh -c command` as `user` (root's when `None`) with `env` and
/// hbd's `HBD_*` variables on top of the clean environment, its output
/// logged in the current span, killed with its process group at `timeout`:
/// for jobs, notification hooks and the disk's handlers. `Ok` is the exit
/// code (0 success); `Err` says why it did not run or did not finish.
pub async fn run_shell(
    command: &str,
    user: Option<&str>,
    env: &[(String, String)],
    timeout: Duration,
) -> Result<i32, RunError> {
    let user = match user {
        None => None,
        Some(name) => Some(user_by_name(name).await?),
    };
    let c = Command::shell(command)
        .user(user)
        .envs(env)
        .hbd_env()
        .timeout(timeout);
    let out = run(&c).await?;
    if out.code != 0 {
        tracing::debug!(code = out.code, last = %out.message(), "command failed");
    }
    Ok(out.code)
}

/// Starts `c`'s program, with its output wired as its mode says.
async fn spawn(
    c: &Command,
    deadline: Option<Instant>,
) -> Result<(tokio::process::Child, Option<Reader>, Option<Reader>), RunError> {
    let spawn_error = |source| RunError::Spawn {
        program: c.program.clone(),
        source,
    };
    let mut merged = None;
    let mut cmd = clean_command(&c.program, c.user.as_ref());
    cmd.args(&c.args);
    if c.hbd_env {
        cmd.envs(std::env::vars().filter(|(k, _)| k.starts_with("HBD_")));
    }
    cmd.envs(c.env.iter().map(|(k, v)| (k, v)));
    if let Some(g) = c.gid {
        cmd.gid(g.as_raw());
    }
    if c.input.is_some() {
        cmd.stdin(Stdio::piped());
    }
    match c.output {
        Output::Log | Output::Capture => {
            cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
        }
        Output::Discard => {
            cmd.stdout(Stdio::null()).stderr(Stdio::null());
        }
        Output::Merged => {
            let (rx, tx) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)
                .map_err(|e| spawn_error(e.into()))?;
            let tx2 = tx.try_clone().map_err(spawn_error)?;
            merged =
                Some(tokio::net::unix::pipe::Receiver::from_owned_fd(rx).map_err(spawn_error)?);
            cmd.stdout(Stdio::from(tx)).stderr(Stdio::from(tx2));
        }
    }
    let mut child = loop {
        match cmd.spawn() {
            Ok(c) => break c,
            // A script just written may still be open for writing in a
            // process forked meanwhile (ETXTBSY): a moment later it is not.
            Err(e)
                if e.raw_os_error() == Some(libc::ETXTBSY)
                    && deadline.is_none_or(|d| Instant::now() < d) =>
            {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Err(e) => return Err(spawn_error(e)),
        }
    };
    // The Command holds the merged pipe's write ends: only the child may
    // keep them, or the read end never sees EOF.
    drop(cmd);
    let out: Option<Reader> = match merged {
        Some(rx) => Some(Box::new(rx)),
        None => child.stdout.take().map(|s| Box::new(s) as Reader),
    };
    let err: Option<Reader> = child.stderr.take().map(|s| Box::new(s) as Reader);
    Ok((child, out, err))
}
