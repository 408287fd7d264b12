//! The `exec` check: `/bin/sh -c command` (as `user`) must exit 0 within the
//! timeout; the process group is killed when it runs out.

use super::*;

// Commands

/// KILLs the command's process group when the check ends before the shell
/// exited (the timeout dropped the future). Once the shell exited, what is
/// left in its group is not the check's to kill.
pub(super) struct ExecGuard(Option<Pid>);

impl Drop for ExecGuard {
    fn drop(&mut self) {
        if let Some(pgid) = self.0.take() {
            let _ = killpg(pgid, Signal::SIGKILL);
        }
    }
}

/// Keeps the last non-empty line of a stream, bounded.
#[derive(Default)]
pub(super) struct LastLine {
    pub(super) cur: Vec<u8>,
    pub(super) cut: bool,
    pub(super) last: Option<String>,
}

impl LastLine {
    pub(super) fn push(&mut self, bytes: &[u8]) {
        for &b in bytes {
            if b == b'\n' {
                self.end_line();
            } else if self.cur.len() < MAX_LINE {
                self.cur.push(b);
            } else {
                self.cut = true;
            }
        }
    }

    pub(super) fn end_line(&mut self) {
        let line = printable(&self.cur, MAX_LINE);
        if !line.is_empty() {
            self.last = Some(if self.cut { line + "…" } else { line });
        }
        self.cur.clear();
        self.cut = false;
    }

    pub(super) fn finish(mut self) -> Option<String> {
        self.end_line();
        self.last
    }
}

pub(super) const EXEC_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

pub(super) async fn check_exec(command: &str, user: Option<&str>) -> Result<(), String> {
    let account = match user {
        Some(u) => {
            let name = u.to_string();
            // NSS, off the loop (the blocking pool), within the check's timeout.
            let found = blocking(move || nix::unistd::User::from_name(&name))
                .await?
                .map_err(|e| format!("user {u}: {}", lower_first(e.desc())))?;
            Some(found.ok_or_else(|| format!("user {u}: no such user"))?)
        }
        None => None,
    };
    // stdout and stderr share one pipe, so the last line is the last written.
    let (rx, tx) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)
        .map_err(|e| format!("pipe: {}", lower_first(e.desc())))?;
    let tx2 = tx
        .try_clone()
        .map_err(|e| format!("pipe: {}", io_reason(&e)))?;
    let mut rx = tokio::net::unix::pipe::Receiver::from_owned_fd(rx)
        .map_err(|e| format!("pipe: {}", io_reason(&e)))?;
    let mut cmd = tokio::process::Command::new("/bin/sh");
    cmd.arg("-c")
        .arg(command)
        .env_clear()
        .env("PATH", EXEC_PATH)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::from(tx))
        .stderr(std::process::Stdio::from(tx2))
        .process_group(0);
    if let Some(a) = &account {
        cmd.uid(a.uid.as_raw())
            .gid(a.gid.as_raw())
            .env("HOME", &a.dir)
            .env("USER", &a.name)
            .env("LOGNAME", &a.name)
            .current_dir("/");
    }
    let spawned = cmd.spawn();
    // The Command holds the pipe's write ends: only the child may keep them,
    // or the read end never sees EOF.
    drop(cmd);
    let mut child = spawned.map_err(|e| match user {
        Some(u) => format!("/bin/sh as {u}: {}", io_reason(&e)),
        None => format!("/bin/sh: {}", io_reason(&e)),
    })?;
    let mut guard = ExecGuard(child.id().map(|id| Pid::from_raw(id as i32)));
    let mut out = LastLine::default();
    let mut buf = [0u8; 4096];
    let mut open = true;
    let status = loop {
        tokio::select! {
            st = child.wait() => break st.map_err(|e| format!("wait: {}", io_reason(&e)))?,
            r = rx.read(&mut buf), if open => match r {
                Ok(0) | Err(_) => open = false,
                Ok(n) => out.push(&buf[..n]),
            },
        }
    };
    guard.0 = None;
    // What the shell wrote is in the pipe already; a background child that
    // still holds the pipe must not make the check wait.
    for _ in 0..MAX_DRAIN_READS {
        match rx.try_read(&mut buf) {
            Ok(n) if n > 0 => out.push(&buf[..n]),
            _ => break,
        }
    }
    if status.success() {
        return Ok(());
    }
    let what = match status.code() {
        Some(c) => format!("exit code {c}"),
        None => {
            use std::os::unix::process::ExitStatusExt;
            let sig = status.signal().unwrap_or(0);
            match Signal::try_from(sig) {
                Ok(s) => format!("killed by {}", s.as_str()),
                Err(_) => format!("killed by signal {sig}"),
            }
        }
    };
    Err(match out.finish() {
        Some(line) => format!("{what}: {line}"),
        None => what,
    })
}
