//! The processes holding a mount, as `fuser -m` finds them (cwd, root,
//! exe, open files, mappings), signalling them, and waiting until they let
//! go: what `stop` does before umount(2).

use super::*;
use tokio::time::Instant;

/// A process using the filesystem.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Holder {
    pid: i32,
    comm: String,
    /// What holds it: `cwd`, `root`, `exe`, `fd 3`, `mmap`.
    what: String,
}

impl std::fmt::Display for Holder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "pid {} ({}, {})", self.pid, self.comm, self.what)
    }
}

/// `fuser -m`: every process with its cwd, root, executable, an open file
/// or a mapping on device `dev`. Our own process is skipped. Processes that
/// vanish during the scan are ignored.
pub(super) fn holders(dev: (u64, u64)) -> Vec<Holder> {
    let on_dev = |p: &Path| {
        std::fs::metadata(p).is_ok_and(|m| {
            (
                nix::sys::stat::major(m.dev()),
                nix::sys::stat::minor(m.dev()),
            ) == dev
        })
    };
    let mut found = Vec::new();
    let Ok(pids) = crate::agents::other_pids() else {
        return found;
    };
    for pid in pids {
        let base = std::path::PathBuf::from(format!("/proc/{pid}"));
        let mut what = None;
        for link in ["cwd", "root", "exe"] {
            if on_dev(&base.join(link)) {
                what = Some(link.to_string());
                break;
            }
        }
        if what.is_none() {
            if let Ok(fds) = std::fs::read_dir(base.join("fd")) {
                what = fds
                    .flatten()
                    .find(|fd| on_dev(&fd.path()))
                    .map(|fd| format!("fd {}", fd.file_name().to_string_lossy()));
            }
        }
        if what.is_none() {
            // maps: "addr perms offset MAJ:MIN inode path", device in hex.
            let maps = std::fs::read_to_string(base.join("maps")).unwrap_or_default();
            let hit = maps.lines().any(|l| {
                let mut f = l.split_whitespace().skip(3);
                let (Some(d), Some(inode)) = (f.next(), f.next()) else {
                    return false;
                };
                let Some((ma, mi)) = d.split_once(':') else {
                    return false;
                };
                inode != "0"
                    && u64::from_str_radix(ma, 16).ok() == Some(dev.0)
                    && u64::from_str_radix(mi, 16).ok() == Some(dev.1)
            });
            if hit {
                what = Some("mmap".into());
            }
        }
        if let Some(what) = what {
            let comm = std::fs::read_to_string(base.join("comm"))
                .map(|c| c.trim().to_string())
                .unwrap_or_default();
            found.push(Holder { pid, comm, what });
        }
    }
    found.sort_by_key(|h| h.pid);
    found
}

pub(super) fn signal_all(hs: &[Holder], sig: nix::sys::signal::Signal, dir: &Path) {
    for h in hs {
        tracing::warn!(pid = h.pid, comm = %h.comm, holds = %h.what, signal = %sig, dir = %dir.display(), "signalling a process holding the mount");
        // ESRCH: it is gone already.
        let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(h.pid), sig);
    }
}

/// Scans every 20 ms until no process holds `dev` or `limit` has passed;
/// returns those left.
pub(super) async fn wait_released(dev: (u64, u64), limit: Duration) -> Vec<Holder> {
    let deadline = Instant::now() + limit;
    loop {
        let left = blocking(move || holders(dev)).await;
        if left.is_empty() || Instant::now() >= deadline {
            return left;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
