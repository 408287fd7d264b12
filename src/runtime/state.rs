//! What the daemon keeps on disk: the incarnation number in the state dir
//! (heartbeat's generation file), the newest incarnation seen of each peer
//! (also in the state dir) and the pid file in the run dir.

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

/// File in the state dir holding, per peer, the newest incarnation this
/// node saw and whether it left: `NODE INCARNATION [left]` per line.
pub const PEERS_FILE: &str = "peers";

/// What a previous run saw of one peer (see
/// [`crate::membership::Event::PeerIncarnation`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PeerSeen {
    pub incarnation: u64,
    pub left: bool,
}

/// The peers file, empty when there is none yet. A line that does not
/// parse is an error naming the file and line: the file is written
/// atomically, so only a hand edit breaks it (delete it to start over).
pub fn load_peers(state_dir: &Path) -> io::Result<std::collections::BTreeMap<String, PeerSeen>> {
    let path = state_dir.join(PEERS_FILE);
    let text = match fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(e),
    };
    let mut out = std::collections::BTreeMap::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let bad = || {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "{}:{}: expected `NODE INCARNATION [left]` (delete the file to forget \
                     every peer)",
                    path.display(),
                    i + 1
                ),
            )
        };
        let words: Vec<&str> = line.split_whitespace().collect();
        let (node, incarnation, left) = match words[..] {
            [n, inc] => (n, inc, false),
            [n, inc, "left"] => (n, inc, true),
            _ => return Err(bad()),
        };
        let incarnation = incarnation.parse::<u64>().map_err(|_| bad())?;
        out.insert(node.to_string(), PeerSeen { incarnation, left });
    }
    Ok(out)
}

/// Rewrites the peers file (atomically): called when a peer's newest
/// incarnation or its leaving changes, which is rare, never per datagram.
pub fn save_peers(
    state_dir: &Path,
    peers: &std::collections::BTreeMap<String, PeerSeen>,
) -> io::Result<()> {
    let mut text =
        String::from("# hbd: the newest incarnation seen of each peer (NODE INCARNATION [left])\n");
    for (node, p) in peers {
        text.push_str(&format!(
            "{node} {}{}\n",
            p.incarnation,
            if p.left { " left" } else { "" }
        ));
    }
    fs::create_dir_all(state_dir)?;
    write_atomically(&state_dir.join(PEERS_FILE), text.as_bytes())
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
    fn peers_round_trip_and_garbage_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        assert!(load_peers(dir.path()).unwrap().is_empty(), "no file yet");
        let mut peers = std::collections::BTreeMap::new();
        peers.insert(
            "n2".to_string(),
            PeerSeen {
                incarnation: 1_700_000_001,
                left: false,
            },
        );
        peers.insert(
            "w1".to_string(),
            PeerSeen {
                incarnation: 5,
                left: true,
            },
        );
        save_peers(dir.path(), &peers).unwrap();
        assert_eq!(load_peers(dir.path()).unwrap(), peers);
        assert!(!dir.path().join("peers.tmp").exists());
        fs::write(dir.path().join(PEERS_FILE), "n2 12x\n").unwrap();
        let e = load_peers(dir.path()).unwrap_err().to_string();
        assert!(e.ends_with("peers:1: expected `NODE INCARNATION [left]` (delete the file to forget every peer)"), "{e}");
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
