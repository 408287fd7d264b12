//! [`lint_scripts`]: the scripts a `keepalived.conf` runs, checked on disk.

use super::{Command, KeepalivedConf};
use crate::config::{ConfigWarning, Location};
use std::path::Path;

/// Warnings about the scripts the configuration runs (notify scripts and
/// vrrp_script commands given by absolute path): a file or directory on the
/// path that is writable by group or other, or not owned by root, lets
/// someone else run code as the scripts' user (keepalived's
/// `enable_script_security` refuses these). Missing files are left to the
/// runtime.
pub fn lint_scripts(conf: &KeepalivedConf) -> Vec<ConfigWarning> {
    let mut out = Vec::new();
    let mut check = |key: &str, cmd: &Command, at: &Location| {
        if let Some(problem) = unsafe_path(Path::new(&cmd.argv[0])) {
            out.push(ConfigWarning {
                file: at.file.clone(),
                line: at.line,
                key: key.to_string(),
                message: problem,
            });
        }
    };
    for s in &conf.scripts {
        check("script", &s.command, &s.at);
    }
    for n in conf
        .instances
        .iter()
        .map(|i| &i.notify)
        .chain(conf.sync_groups.iter().map(|g| &g.notify))
    {
        for (k, n) in n.all() {
            check(k, &n.command, &n.at);
        }
    }
    out
}

/// The first problem on an existing absolute path: the file, then its
/// directories up to `/` (a sticky directory's other-write is fine).
fn unsafe_path(path: &Path) -> Option<String> {
    use std::os::unix::fs::MetadataExt;
    if !path.is_absolute() {
        return None;
    }
    let md = std::fs::metadata(path).ok()?;
    let mut cur = Some(path);
    let mut first = true;
    while let Some(p) = cur {
        let m = if first {
            md.clone()
        } else {
            std::fs::metadata(p).ok()?
        };
        let what = if first { "script" } else { "directory" };
        let mode = m.mode() & 0o7777;
        let sticky = !first && mode & 0o1000 != 0;
        if m.uid() != 0 {
            return Some(format!(
                "{what} `{}` is owned by uid {}, not root: that user can change what runs as root",
                p.display(),
                m.uid()
            ));
        }
        if mode & 0o022 != 0 && !sticky {
            return Some(format!(
                "{what} `{}` is writable by group or other (mode {mode:04o}): they can change what runs as root",
                p.display()
            ));
        }
        first = false;
        cur = p.parent();
    }
    None
}
