//! The `process` check: a pid file naming a live process and/or a process
//! with the name (pidof), read from `/proc`.

use super::*;

// Processes, from /proc

/// What a check needs to know of one process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct ProcInfo {
    /// `/proc/PID/stat` field 2, without the parentheses (15 bytes at most).
    pub(super) comm: String,
    /// `/proc/PID/stat` field 3: R, S, D, Z (zombie), X (dead)...
    pub(super) state: char,
}

impl ProcInfo {
    pub(super) fn alive(&self) -> bool {
        !matches!(self.state, 'Z' | 'X' | 'x')
    }
}

/// Parses `/proc/PID/stat`: `pid (comm) state ...`; comm may hold spaces and
/// parentheses, so it ends at the *last* `)` (proc(5)).
pub(super) fn parse_stat(stat: &str) -> Option<ProcInfo> {
    let open = stat.find('(')?;
    let close = stat.rfind(')')?;
    let comm = stat.get(open + 1..close)?.to_string();
    let state = stat.get(close + 1..)?.trim_start().chars().next()?;
    Some(ProcInfo { comm, state })
}

pub(super) fn read_bounded(path: &Path, max: u64) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    let mut v = Vec::new();
    std::fs::File::open(path)?.take(max).read_to_end(&mut v)?;
    Ok(v)
}

pub(super) fn proc_info(pid: i32) -> Option<ProcInfo> {
    let stat = read_bounded(Path::new(&format!("/proc/{pid}/stat")), MAX_SMALL_FILE).ok()?;
    parse_stat(&String::from_utf8_lossy(&stat))
}

/// argv[0] of a process (empty for kernel threads and zombies).
pub(super) fn proc_argv0(pid: i32) -> Vec<u8> {
    let cmd = read_bounded(Path::new(&format!("/proc/{pid}/cmdline")), MAX_SMALL_FILE)
        .unwrap_or_default();
    cmd.split(|&b| b == 0).next().unwrap_or_default().to_vec()
}

pub(super) fn basename(b: &[u8]) -> &[u8] {
    b.rsplit(|&c| c == b'/').next().unwrap_or(b)
}

/// Whether a process is `name` as pidof(8) sees it: argv[0] or its basename,
/// the executable or its basename, or the command name (comm, which the kernel
/// cuts to 15 bytes). A name given as a path matches by its basename too.
pub(super) fn name_matches(name: &str, comm: &str, argv0: &[u8], exe: Option<&Path>) -> bool {
    let name_b = name.as_bytes();
    let base = basename(name_b);
    if !argv0.is_empty() && (argv0 == name_b || basename(argv0) == base) {
        return true;
    }
    if let Some(exe) = exe {
        use std::os::unix::ffi::OsStrExt;
        let exe = exe.as_os_str().as_bytes();
        // A replaced executable reads "/usr/sbin/x (deleted)".
        let exe = exe.strip_suffix(b" (deleted)").unwrap_or(exe);
        if exe == name_b || basename(exe) == base {
            return true;
        }
    }
    base.len() <= 15 && comm.as_bytes() == base
}

/// Whether process `pid` (known to exist) is `name`; reads what it needs.
pub(super) fn proc_is(pid: i32, info: &ProcInfo, name: &str) -> bool {
    let argv0 = proc_argv0(pid);
    name_matches(name, &info.comm, &argv0, None)
        || std::fs::read_link(format!("/proc/{pid}/exe"))
            .is_ok_and(|exe| name_matches(name, &info.comm, &argv0, Some(&exe)))
}

pub(super) fn read_pidfile(path: &Path) -> Result<i32, CheckError> {
    let text = read_bounded(path, MAX_SMALL_FILE).map_err(|source| CheckError::PidFile {
        path: path.to_path_buf(),
        source,
    })?;
    String::from_utf8_lossy(&text)
        .split_whitespace()
        .next()
        .and_then(|s| s.parse::<i32>().ok())
        .filter(|&p| p > 0)
        .ok_or_else(|| CheckError::NoPid {
            path: path.to_path_buf(),
        })
}

pub(super) fn check_process(pidfile: Option<&Path>, name: Option<&str>) -> Result<(), CheckError> {
    if let Some(path) = pidfile {
        let pid = read_pidfile(path)?;
        let pidfile = path.to_path_buf();
        let Some(info) = proc_info(pid) else {
            return Err(CheckError::NotRunning { pid, pidfile });
        };
        if !info.alive() {
            return Err(CheckError::Zombie { pid, pidfile });
        }
        if let Some(name) = name {
            if !proc_is(pid, &info, name) {
                return Err(CheckError::OtherProcess {
                    pid,
                    pidfile,
                    comm: info.comm,
                    name: name.to_string(),
                });
            }
        }
        return Ok(());
    }
    let Some(name) = name else {
        return Err(CheckError::invalid("process", "neither pidfile nor name"));
    };
    let pids = crate::agents::other_pids().map_err(CheckError::Proc)?;
    for pid in pids {
        if let Some(info) = proc_info(pid) {
            if info.alive() && proc_is(pid, &info, name) {
                return Ok(());
            }
        }
    }
    Err(CheckError::NoProcess {
        name: name.to_string(),
    })
}
