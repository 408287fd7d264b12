//! Talking to a device process (`hbd-disk RES`) from `hbctl disk`, the
//! `drbddisk` agent and hbd's status: starting it (`up`, as `drbdadm up`),
//! one request, stopping it (`down`).
//!
//! Each function comes in two forms: `async` (for callers inside a tokio
//! runtime: the agent, hbd) and blocking (`hbctl`: a small current-thread
//! runtime of its own; never call those from inside a runtime).

use super::ctl::{self, DiskRequest, DiskResponse, DiskStatus};
use crate::ctl::CallError;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Environment variable naming the device binary (default: `hbd-disk` next
/// to the running executable).
pub const DISK_BIN_ENV: &str = "HBD_DISK_BIN";
/// How often `up`/`down` look again.
const POLL: Duration = Duration::from_millis(100);
/// How long one poll's Status may take.
const POLL_CALL: Duration = Duration::from_secs(2);
/// Log lines quoted when the device exits during `up`.
const LOG_TAIL: usize = 20;

/// Why a call to a device process (`hbd-disk RES`) failed: no answer to a
/// request, or `up`/`down` did not get it running or stopped. A refusal
/// by the device is not an error here: it comes back as the device's
/// answer ([`DiskResponse::Refused`]).
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// Nobody listens on the device's socket: no device process.
    #[error("{res}: not up (hbctl disk up {res})")]
    NotUp { res: String },
    /// The request got no answer within its timeout.
    #[error("{res}: no answer from the device within {}", crate::config::format_duration(*timeout))]
    Timeout { res: String, timeout: Duration },
    /// Connecting, sending or reading the answer failed, or the answer did
    /// not parse (as the control socket's [`CallError`]).
    #[error("{res}: {source}")]
    Call { res: String, source: CallError },
    /// The device answered a status request with a failure (its message).
    #[error("{res}: {message}")]
    Failed { res: String, message: String },
    /// A blocking call could not start its runtime (`res`: the request's
    /// resource, which then prefixes the message).
    #[error("{}cannot start a runtime: {source}", res.as_ref().map(|r| format!("{r}: ")).unwrap_or_default())]
    Runtime {
        res: Option<String>,
        source: std::io::Error,
    },
    /// `up`: the device's run directory or log file.
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    /// `up`: the device binary did not start.
    #[error("{res}: cannot start {}: {source}", bin.display())]
    Start {
        res: String,
        bin: PathBuf,
        source: std::io::Error,
    },
    /// `up`: the device process exited before it answered (`status`: when
    /// `up` started it; `tail`: the last lines of its log).
    #[error(
        "{res}: the device process exited{} before answering; {}:\n{tail}",
        status.map(|s| format!(" ({s})")).unwrap_or_default(),
        log.display()
    )]
    Exited {
        res: String,
        status: Option<std::process::ExitStatus>,
        log: PathBuf,
        tail: String,
    },
    /// `up`: the device did not answer in time (it may still be starting).
    #[error(
        "{res}: the device did not answer within {} (it may still be starting; see {})",
        crate::config::format_duration(*timeout),
        log.display()
    )]
    StartTimeout {
        res: String,
        timeout: Duration,
        log: PathBuf,
    },
    /// `down`: the device process did not exit in time.
    #[error("{res}: the device (pid {pid}) did not exit within {}", crate::config::format_duration(*timeout))]
    ExitTimeout {
        res: String,
        pid: u32,
        timeout: Duration,
    },
}

/// Sends one request to the device of `res`; `timeout` bounds the whole call.
pub async fn request_async(
    run_dir: &Path,
    res: &str,
    req: DiskRequest,
    timeout: Duration,
) -> Result<DiskResponse, ClientError> {
    match tokio::time::timeout(timeout, ctl::call(run_dir, res, req)).await {
        Err(_) => Err(ClientError::Timeout {
            res: res.to_string(),
            timeout,
        }),
        Ok(Ok(r)) => Ok(r),
        Ok(Err(CallError::Connect { source, .. }))
            if matches!(
                source.kind(),
                std::io::ErrorKind::NotFound
                    | std::io::ErrorKind::ConnectionRefused
                    | std::io::ErrorKind::ConnectionReset
            ) =>
        {
            Err(ClientError::NotUp {
                res: res.to_string(),
            })
        }
        Ok(Err(source)) => Err(ClientError::Call {
            res: res.to_string(),
            source,
        }),
    }
}

/// Blocking [`request_async`].
pub fn request_raw(
    run_dir: &Path,
    res: &str,
    req: DiskRequest,
    timeout: Duration,
) -> Result<DiskResponse, ClientError> {
    block_on(request_async(run_dir, res, req, timeout))
        .unwrap_or_else(|source| Err(runtime_error(res, source)))
}

/// A blocking call about `res` had no runtime.
fn runtime_error(res: &str, source: std::io::Error) -> ClientError {
    ClientError::Runtime {
        res: Some(res.to_string()),
        source,
    }
}

/// The device's status, if it answers.
pub async fn status_async(
    run_dir: &Path,
    res: &str,
    timeout: Duration,
) -> Result<DiskStatus, ClientError> {
    match request_async(run_dir, res, DiskRequest::Status, timeout).await? {
        DiskResponse::Done { status, .. } | DiskResponse::Refused { status, .. } => Ok(*status),
        DiskResponse::Failed { message } => Err(ClientError::Failed {
            res: res.to_string(),
            message,
        }),
    }
}

/// The devices' states for hbd's status, all asked at once: one that does
/// not answer within `timeout` is listed with why (`not up`...).
pub async fn summaries(
    run_dir: &Path,
    names: &[String],
    timeout: Duration,
) -> Vec<crate::ctl::DiskSummary> {
    use crate::ctl::DiskSummary;
    futures::future::join_all(names.iter().map(|name| async move {
        match status_async(run_dir, name, timeout).await {
            Ok(s) => DiskSummary::from_status(&s),
            Err(ClientError::NotUp { .. }) => DiskSummary::unanswered(name, "not up".into()),
            Err(e) => DiskSummary::unanswered(name, e.to_string()),
        }
    }))
    .await
}

/// Blocking [`status_async`].
pub fn status(run_dir: &Path, res: &str, timeout: Duration) -> Result<DiskStatus, ClientError> {
    block_on(status_async(run_dir, res, timeout))
        .unwrap_or_else(|source| Err(runtime_error(res, source)))
}

/// Where the device binary is: `$HBD_DISK_BIN`, else `hbd-disk` next to the
/// running executable (or next to its parent `deps/` folder, for tests run
/// by cargo).
pub fn disk_bin() -> PathBuf {
    #[cfg(test)]
    if let Some(p) = testing::DISK_BIN.get() {
        return p.clone();
    }
    if let Some(p) = std::env::var_os(DISK_BIN_ENV) {
        return PathBuf::from(p);
    }
    let exe = std::env::current_exe().ok();
    let dir = exe.as_deref().and_then(Path::parent);
    if let Some(dir) = dir {
        let here = dir.join("hbd-disk");
        if !here.exists() && dir.file_name().is_some_and(|n| n == "deps") {
            if let Some(up) = dir.parent() {
                return up.join("hbd-disk");
            }
        }
        return here;
    }
    PathBuf::from("hbd-disk")
}

/// Whether `pid` names a live process (a zombie is not).
pub fn alive(pid: u32) -> bool {
    let exists = pid > 0
        && i32::try_from(pid).is_ok_and(|p| {
            match nix::sys::signal::kill(nix::unistd::Pid::from_raw(p), None) {
                Ok(()) => true,
                Err(e) => e == nix::errno::Errno::EPERM,
            }
        });
    exists
        && !std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|st| {
            st.rsplit_once(") ")
                .is_some_and(|(_, rest)| rest.starts_with('Z'))
        })
}

/// The pid in the device's pid file, if it names a live process that is
/// RES's device (its command line ends with RES after a `--run-dir`: a
/// stale pid file whose pid was reused does not count).
pub fn running_pid(run_dir: &Path, res: &str) -> Option<u32> {
    std::fs::read_to_string(ctl::pid_path(run_dir, res))
        .ok()
        .and_then(|s| s.trim().parse::<u32>().ok())
        .filter(|&p| alive(p) && is_device(p, res))
}

/// Whether process `pid` looks like `hbd-disk ... --run-dir RUN RES`.
fn is_device(pid: u32, res: &str) -> bool {
    let Ok(cmdline) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
        // Not ours to read (another pid namespace...): trust the pid file.
        return true;
    };
    let args: Vec<&[u8]> = cmdline
        .split(|&b| b == 0)
        .filter(|a| !a.is_empty())
        .collect();
    args.last() == Some(&res.as_bytes()) && args.contains(&&b"--run-dir"[..])
}

/// The last `n` lines of `path` from byte `from` on.
fn log_tail(path: &Path, from: u64, n: usize) -> String {
    let mut text = String::new();
    if let Ok(mut f) = std::fs::File::open(path) {
        let _ = f.seek(SeekFrom::Start(from));
        let mut bytes = Vec::new();
        let _ = f.read_to_end(&mut bytes);
        text = String::from_utf8_lossy(&bytes).into_owned();
    }
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// `drbdadm up RES`: if the device answers it is already up (its status is
/// returned); else starts `hbd-disk --config DIR --node NAME --run-dir RUN
/// RES` in its own session, in the caller's network namespace, its log
/// appended to [`ctl::log_path`] (`--log-file`, reopened on SIGHUP or
/// SIGUSR2), and waits until it answers.
pub async fn up_async(
    config_dir: &Path,
    node: &str,
    run_dir: &Path,
    res: &str,
    timeout: Duration,
) -> Result<DiskStatus, ClientError> {
    up_with(&disk_bin(), config_dir, node, run_dir, res, timeout).await
}

/// [`up_async`] with the device binary `bin`.
async fn up_with(
    bin: &Path,
    config_dir: &Path,
    node: &str,
    run_dir: &Path,
    res: &str,
    timeout: Duration,
) -> Result<DiskStatus, ClientError> {
    match status_async(run_dir, res, POLL_CALL).await {
        Ok(s) => return Ok(s),
        Err(ClientError::NotUp { .. }) => {}
        // Starting (pid alive, socket not answering yet) or busy: wait below.
        Err(_) => {}
    }
    let log = ctl::log_path(run_dir, res);
    let deadline = tokio::time::Instant::now() + timeout;
    let mut child = None;
    let mut log_from = 0;
    if running_pid(run_dir, res).is_none() {
        std::fs::create_dir_all(ctl::disk_dir(run_dir)).map_err(|source| ClientError::Io {
            path: ctl::disk_dir(run_dir),
            source,
        })?;
        if let Some(dir) = log.parent() {
            std::fs::create_dir_all(dir).map_err(|source| ClientError::Io {
                path: dir.to_path_buf(),
                source,
            })?;
        }
        let out = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .map_err(|source| ClientError::Io {
                path: log.clone(),
                source,
            })?;
        log_from = out.metadata().map(|m| m.len()).unwrap_or(0);
        let err = out.try_clone().map_err(|source| ClientError::Io {
            path: log.clone(),
            source,
        })?;
        let mut cmd = std::process::Command::new(bin);
        cmd.arg("--config")
            .arg(config_dir)
            .arg("--node")
            .arg(node)
            .arg("--run-dir")
            .arg(run_dir)
            .arg("--log-file")
            .arg(&log)
            .arg(res)
            .stdin(std::process::Stdio::null())
            .stdout(out)
            .stderr(err);
        // SAFETY: setsid and close_range are async-signal-safe; nothing
        // else runs in the child between fork and exec.
        unsafe {
            use std::os::unix::process::CommandExt;
            cmd.pre_exec(|| {
                nix::unistd::setsid().map_err(std::io::Error::from)?;
                // It outlives its caller: none of the caller's descriptors
                // stay open in it. (Its environment does: it is hbd's own
                // binary and reads HBD_LOG.)
                crate::process::close_on_exec_above_stderr()
            });
        }
        child = Some(cmd.spawn().map_err(|source| ClientError::Start {
            res: res.to_string(),
            bin: bin.to_path_buf(),
            source,
        })?);
    }
    loop {
        match status_async(run_dir, res, POLL_CALL).await {
            Ok(s) => {
                if let Some(mut c) = child {
                    // Reap it when it ends, so a long-lived caller (hbd)
                    // keeps no zombie.
                    std::thread::spawn(move || {
                        let _ = c.wait();
                    });
                }
                return Ok(s);
            }
            Err(ClientError::NotUp { .. } | ClientError::Timeout { .. }) => {}
            Err(e) => {
                tracing::debug!(error = %e, "device not answering yet");
            }
        }
        if let Some(c) = child.as_mut() {
            if let Ok(Some(code)) = c.try_wait() {
                return Err(ClientError::Exited {
                    res: res.to_string(),
                    status: Some(code),
                    tail: log_tail(&log, log_from, LOG_TAIL),
                    log,
                });
            }
        } else if running_pid(run_dir, res).is_none() {
            return Err(ClientError::Exited {
                res: res.to_string(),
                status: None,
                tail: log_tail(&log, 0, LOG_TAIL),
                log,
            });
        }
        if tokio::time::Instant::now() >= deadline {
            if let Some(c) = child {
                std::thread::spawn(move || {
                    let mut c = c;
                    let _ = c.wait();
                });
            }
            return Err(ClientError::StartTimeout {
                res: res.to_string(),
                timeout,
                log,
            });
        }
        tokio::time::sleep(POLL).await;
    }
}

/// Blocking [`up_async`].
pub fn up(
    config_dir: &Path,
    node: &str,
    run_dir: &Path,
    res: &str,
    timeout: Duration,
) -> Result<DiskStatus, ClientError> {
    block_on(up_async(config_dir, node, run_dir, res, timeout))
        .unwrap_or_else(|source| Err(ClientError::Runtime { res: None, source }))
}

/// `drbdadm down RES`: asks the device to go down (Secondary, disconnect,
/// detach, exit) and waits until its process is gone. `Ok(None)`: it was
/// not up. A refusal or failure is returned as the device's answer, without
/// waiting.
pub async fn down_async(
    run_dir: &Path,
    res: &str,
    timeout: Duration,
) -> Result<Option<DiskResponse>, ClientError> {
    let deadline = tokio::time::Instant::now() + timeout;
    let file_pid = running_pid(run_dir, res);
    let answer = match request_async(run_dir, res, DiskRequest::Down, timeout).await {
        Err(ClientError::NotUp { .. }) if file_pid.is_none() => return Ok(None),
        Err(ClientError::NotUp { .. }) => None,
        // It went down before it could answer.
        Err(ClientError::Call {
            source: CallError::NoAnswer { .. },
            ..
        }) => None,
        Err(e) => return Err(e),
        Ok(r @ (DiskResponse::Refused { .. } | DiskResponse::Failed { .. })) => return Ok(Some(r)),
        Ok(r) => Some(r),
    };
    let pid = match &answer {
        Some(DiskResponse::Done { status, .. }) if status.pid > 0 => Some(status.pid),
        _ => file_pid,
    };
    if let Some(pid) = pid {
        while alive(pid) {
            if tokio::time::Instant::now() >= deadline {
                return Err(ClientError::ExitTimeout {
                    res: res.to_string(),
                    pid,
                    timeout,
                });
            }
            tokio::time::sleep(POLL).await;
        }
    }
    Ok(answer)
}

/// Blocking [`down_async`].
pub fn down(
    run_dir: &Path,
    res: &str,
    timeout: Duration,
) -> Result<Option<DiskResponse>, ClientError> {
    block_on(down_async(run_dir, res, timeout))
        .unwrap_or_else(|source| Err(ClientError::Runtime { res: None, source }))
}

/// Runs `f` on a fresh current-thread runtime.
fn block_on<F: std::future::Future>(f: F) -> std::io::Result<F::Output> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map(|rt| rt.block_on(f))
}

/// Test helpers: a stand-in device binary.
#[cfg(test)]
pub(crate) mod testing {
    /// A stand-in `hbd-disk` in Python: the same command line, socket,
    /// framing (4-byte big-endian length, JSON) and pid file; Down makes it
    /// exit.
    pub const FAKE_DEVICE: &str = r#"#!/usr/bin/env python3
import json, os, socket, struct, sys
a = sys.argv[1:]
run, res, node = a[a.index("--run-dir") + 1], a[-1], a[a.index("--node") + 1]
d = os.path.join(run, "disk")
os.makedirs(d, exist_ok=True)
open(os.path.join(d, res + ".pid"), "w").write("%d\n" % os.getpid())
path = os.path.join(d, res + ".sock")
if os.path.exists(path):
    os.unlink(path)
st = {"name": res, "node": node, "peer": "b", "pid": os.getpid(), "role": "Secondary",
      "peer_role": "Unknown", "disk": "UpToDate", "peer_disk": "DUnknown",
      "connection": "WFConnection", "device": "/dev/drbd0", "loop_device": None,
      "backing": "/tmp/x", "size_bytes": 1048576, "out_of_sync_bytes": 0, "sync": None,
      "verify": None, "split_brain": None, "uuids": ["", "", "", ""],
      "local_address": "192.0.2.1:7789", "peer_address": "192.0.2.2:7789",
      "counters": {"ns": 0, "nr": 0, "dw": 0, "dr": 0, "al": 0, "bm": 0, "pe": 0, "ap": 0, "ep": 0},
      "last_write_unix_ms": None, "last_error": None, "ever_connected": True}
s = socket.socket(socket.AF_UNIX)
s.bind(path)
s.listen(4)
print("listening", os.getsid(0) == os.getpid(), file=sys.stderr, flush=True)
while True:
    c, _ = s.accept()
    n = struct.unpack(">I", c.recv(4, socket.MSG_WAITALL))[0]
    req = json.loads(c.recv(n, socket.MSG_WAITALL))
    out = json.dumps({"result": "done", "status": st}).encode()
    if req["request"] == "primary" and os.path.exists(os.path.join(run, "refuse")):
        os.unlink(os.path.join(run, "refuse"))
        st["peer_role"] = "Primary"
        out = json.dumps({"result": "refused", "message": "peer is Primary", "status": st}).encode()
    elif req["request"] == "primary":
        st["role"], st["peer_role"] = "Primary", "Unknown"
        out = json.dumps({"result": "done", "status": st}).encode()
    elif req["request"] == "secondary":
        st["role"] = "Secondary"
        out = json.dumps({"result": "done", "status": st}).encode()
    c.sendall(struct.pack(">I", len(out)) + out)
    c.close()
    if req["request"] == "down":
        os.unlink(path)
        sys.exit(0)
"#;

    /// Writes the stand-in device into `dir`; its path.
    pub fn install(dir: &Path) -> PathBuf {
        use std::os::unix::fs::PermissionsExt;
        let bin = dir.join("hbd-disk");
        std::fs::write(&bin, FAKE_DEVICE).unwrap();
        std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o755)).unwrap();
        bin
    }

    /// The binary `disk_bin` returns in tests, when set.
    pub static DISK_BIN: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();

    use std::path::{Path, PathBuf};
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn not_up_is_recognised() {
        let t = tempfile::tempdir().unwrap();
        let e =
            request_raw(t.path(), "r0", DiskRequest::Status, Duration::from_secs(1)).unwrap_err();
        assert!(
            matches!(&e, ClientError::NotUp { res } if res == "r0"),
            "{e:?}"
        );
        assert_eq!(e.to_string(), "r0: not up (hbctl disk up r0)");
        // A stale socket file nobody listens on is "not up" too.
        std::fs::create_dir_all(ctl::disk_dir(t.path())).unwrap();
        let l = std::os::unix::net::UnixListener::bind(ctl::socket_path(t.path(), "r0")).unwrap();
        drop(l);
        let e = status(t.path(), "r0", Duration::from_secs(1)).unwrap_err();
        assert!(matches!(e, ClientError::NotUp { .. }), "{e:?}");
        assert_eq!(down(t.path(), "r0", Duration::from_secs(1)).unwrap(), None);
    }

    #[test]
    fn up_reports_a_device_that_exits() {
        let t = tempfile::tempdir().unwrap();
        let bin = t.path().join("fake-disk");
        std::fs::write(
            &bin,
            "#!/bin/sh\necho \"args: $*\" >&2\necho cannot open backing disk >&2\nexit 3\n",
        )
        .unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o755)).unwrap();
        let run = t.path().join("run");
        let e = block_on(up_with(
            &bin,
            Path::new("/etc/ha.d"),
            "a",
            &run,
            "r0",
            Duration::from_secs(10),
        ))
        .unwrap()
        .unwrap_err();
        assert!(
            matches!(&e, ClientError::Exited { status: Some(s), .. } if s.code() == Some(3)),
            "{e:?}"
        );
        let e = e.to_string();
        assert!(
            e.starts_with("r0: the device process exited (exit status: 3) before answering; "),
            "{e}"
        );
        assert!(
            e.contains("args: --config /etc/ha.d --node a --run-dir"),
            "{e}"
        );
        assert!(e.contains("cannot open backing disk"), "{e}");
    }

    #[test]
    fn up_then_down_with_a_stand_in_device() {
        let t = tempfile::tempdir().unwrap();
        let bin = testing::install(t.path());
        let run = t.path().join("run");
        let up_once = || {
            block_on(up_with(
                &bin,
                t.path(),
                "a",
                &run,
                "r0",
                Duration::from_secs(20),
            ))
            .unwrap()
        };
        let s = up_once().unwrap();
        assert_eq!((s.name.as_str(), s.node.as_str()), ("r0", "a"));
        assert_eq!(running_pid(&run, "r0"), Some(s.pid));
        // Up again: it answers, nothing new is started.
        assert_eq!(up_once().unwrap().pid, s.pid);
        // Its own session, its output in the log.
        let log = std::fs::read_to_string(ctl::log_path(&run, "r0")).unwrap();
        assert!(log.contains("listening True"), "{log}");
        match down(&run, "r0", Duration::from_secs(10)).unwrap() {
            Some(DiskResponse::Done { .. }) => {}
            r => panic!("{r:?}"),
        }
        assert!(!alive(s.pid));
        assert_eq!(down(&run, "r0", Duration::from_secs(1)).unwrap(), None);
    }

    /// Issue 16: the texts are the ones hbctl printed before they were
    /// typed.
    #[test]
    fn errors_say_what_they_always_said() {
        let io = || std::io::Error::from(std::io::ErrorKind::PermissionDenied);
        let log = PathBuf::from("/run/hbd/disk/r0.log");
        for (e, text) in [
            (
                ClientError::Timeout {
                    res: "r0".into(),
                    timeout: Duration::from_secs(2),
                },
                "r0: no answer from the device within 2s",
            ),
            (
                ClientError::Call {
                    res: "r0".into(),
                    source: CallError::NoAnswer {
                        path: "/run/hbd/disk/r0.sock".into(),
                    },
                },
                "r0: control socket /run/hbd/disk/r0.sock: the daemon closed the connection \
                 without answering",
            ),
            (
                ClientError::Failed {
                    res: "r0".into(),
                    message: "boom".into(),
                },
                "r0: boom",
            ),
            (
                ClientError::Runtime {
                    res: Some("r0".into()),
                    source: io(),
                },
                "r0: cannot start a runtime: permission denied",
            ),
            (
                ClientError::Runtime {
                    res: None,
                    source: io(),
                },
                "cannot start a runtime: permission denied",
            ),
            (
                ClientError::Io {
                    path: log.clone(),
                    source: io(),
                },
                "/run/hbd/disk/r0.log: permission denied",
            ),
            (
                ClientError::Start {
                    res: "r0".into(),
                    bin: "/usr/sbin/hbd-disk".into(),
                    source: io(),
                },
                "r0: cannot start /usr/sbin/hbd-disk: permission denied",
            ),
            (
                ClientError::Exited {
                    res: "r0".into(),
                    status: None,
                    log: log.clone(),
                    tail: "a\nb".into(),
                },
                "r0: the device process exited before answering; /run/hbd/disk/r0.log:\na\nb",
            ),
            (
                ClientError::StartTimeout {
                    res: "r0".into(),
                    timeout: Duration::from_secs(60),
                    log,
                },
                "r0: the device did not answer within 60s (it may still be starting; \
                 see /run/hbd/disk/r0.log)",
            ),
            (
                ClientError::ExitTimeout {
                    res: "r0".into(),
                    pid: 42,
                    timeout: Duration::from_secs(10),
                },
                "r0: the device (pid 42) did not exit within 10s",
            ),
        ] {
            assert_eq!(e.to_string(), text, "{e:?}");
        }
    }

    #[test]
    fn pids() {
        assert!(alive(std::process::id()));
        assert!(!alive(0));
        let t = tempfile::tempdir().unwrap();
        assert_eq!(running_pid(t.path(), "r0"), None);
        std::fs::create_dir_all(ctl::disk_dir(t.path())).unwrap();
        std::fs::write(
            ctl::pid_path(t.path(), "r0"),
            format!("{}\n", std::process::id()),
        )
        .unwrap();
        // This test process is alive, but it is not r0's device.
        assert_eq!(running_pid(t.path(), "r0"), None);
        let mut child = std::process::Command::new("sh")
            .args(["-c", "sleep 5; :", "hbd-disk", "--run-dir", "r0"])
            .spawn()
            .unwrap();
        std::fs::write(ctl::pid_path(t.path(), "r0"), format!("{}\n", child.id())).unwrap();
        // Until it has exec'd, the child still has this process's command line.
        let t0 = std::time::Instant::now();
        while running_pid(t.path(), "r0").is_none() && t0.elapsed() < Duration::from_secs(5) {
            std::thread::sleep(Duration::from_millis(10));
        }
        assert_eq!(running_pid(t.path(), "r0"), Some(child.id()));
        child.kill().unwrap();
        child.wait().unwrap();
        assert_eq!(running_pid(t.path(), "r0"), None);
    }

    #[tokio::test]
    async fn summaries_of_devices_that_are_not_up() {
        let t = tempfile::tempdir().unwrap();
        let s = summaries(
            t.path(),
            &["r0".into(), "r1".into()],
            Duration::from_secs(1),
        )
        .await;
        assert_eq!(s.len(), 2);
        assert_eq!(s[1].name, "r1");
        assert_eq!(s[0].role, "Unknown");
        assert_eq!(s[0].connection, "Unconfigured");
        assert_eq!(s[0].error.as_deref(), Some("not up"));
        // Older answers without the new fields still parse.
        let v: crate::ctl::DiskSummary = serde_json::from_str(
            r#"{"name":"r0","role":"Primary","peer_role":"Secondary","disk":"UpToDate",
                "peer_disk":"UpToDate","connection":"Connected","out_of_sync_bytes":0}"#,
        )
        .unwrap();
        assert_eq!(v.sync_percent, None);
    }
}
