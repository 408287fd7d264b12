//! What the daemon keeps on disk: the incarnation number in the state dir
//! (heartbeat's generation file) and the pid file in the run dir.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// File in the state dir holding the last incarnation used.
pub const INCARNATION_FILE: &str = "incarnation";

/// Picks and persists this start's incarnation: one more than the last one,
/// and never below the Unix time in seconds, so that it still grows if the
/// state dir is lost (peers drop datagrams of an incarnation older than the
/// one they know).
pub fn next_incarnation(state_dir: &Path, unix_secs: u64) -> io::Result<u64> {
    fs::create_dir_all(state_dir)?;
    let path = state_dir.join(INCARNATION_FILE);
    let last = match fs::read_to_string(&path) {
        Ok(s) => s.trim().parse::<u64>().map_err(|e| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("{}: not a number: {e}", path.display()),
            )
        })?,
        Err(e) if e.kind() == io::ErrorKind::NotFound => 0,
        Err(e) => return Err(e),
    };
    let next = last.saturating_add(1).max(unix_secs);
    write_atomically(&path, format!("{next}\n").as_bytes())?;
    Ok(next)
}

/// Write to a temporary file, fsync, rename over `path`, fsync the directory:
/// after a crash the file holds either the old or the new value.
pub fn write_atomically(path: &Path, data: &[u8]) -> io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let tmp = path.with_extension("tmp");
    {
        let mut f = fs::File::create(&tmp)?;
        f.write_all(data)?;
        f.sync_all()?;
    }
    fs::rename(&tmp, path)?;
    fs::File::open(dir)?.sync_all()
}

/// The pid file; removed on drop.
#[derive(Debug)]
pub struct PidFile {
    path: PathBuf,
}

#[derive(Debug, thiserror::Error)]
pub enum PidFileError {
    #[error("{}: hbd is already running as pid {pid}", path.display())]
    Running { path: PathBuf, pid: i32 },
    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: io::Error },
}

impl PidFile {
    /// Creates `run_dir/hbd.pid`, refusing when it names a live hbd.
    pub fn create(run_dir: &Path) -> Result<PidFile, PidFileError> {
        let path = run_dir.join(crate::ctl::PID_NAME);
        let io = |source| PidFileError::Io {
            path: path.clone(),
            source,
        };
        fs::create_dir_all(run_dir).map_err(io)?;
        if let Ok(s) = fs::read_to_string(&path) {
            if let Ok(pid) = s.trim().parse::<i32>() {
                if pid != std::process::id() as i32 && is_hbd(pid) {
                    return Err(PidFileError::Running { path, pid });
                }
            }
        }
        write_atomically(&path, format!("{}\n", std::process::id()).as_bytes()).map_err(io)?;
        Ok(PidFile { path })
    }
}

impl Drop for PidFile {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.path);
    }
}

fn is_hbd(pid: i32) -> bool {
    fs::read_to_string(format!("/proc/{pid}/comm"))
        .map(|c| c.trim() == "hbd")
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn incarnation_grows_and_survives_loss() {
        let dir = tempfile::tempdir().unwrap();
        let a = next_incarnation(dir.path(), 100).unwrap();
        assert_eq!(a, 100);
        let b = next_incarnation(dir.path(), 50).unwrap();
        assert_eq!(
            b, 101,
            "one more than the last even when the clock is behind"
        );
        fs::remove_file(dir.path().join(INCARNATION_FILE)).unwrap();
        let c = next_incarnation(dir.path(), 200).unwrap();
        assert_eq!(c, 200, "lost state falls back to the clock");
    }

    #[test]
    fn garbage_incarnation_file_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join(INCARNATION_FILE), "x\n").unwrap();
        assert!(next_incarnation(dir.path(), 1).is_err());
    }

    #[test]
    fn pid_file_removed_on_drop() {
        let dir = tempfile::tempdir().unwrap();
        let p = PidFile::create(dir.path()).unwrap();
        assert!(dir.path().join(crate::ctl::PID_NAME).exists());
        drop(p);
        assert!(!dir.path().join(crate::ctl::PID_NAME).exists());
    }
}
