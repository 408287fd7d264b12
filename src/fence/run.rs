//! Running a fence agent: found on `PATH`, in /usr/sbin (Debian's
//! fence-agents), or in hbd's `resources/fence`; its options on stdin; one
//! device after the other until one succeeds (Pacemaker's fencing levels,
//! simplified to file order).

use super::{devices_for, FenceDevice, FencingSettings};
use std::path::{Path, PathBuf};
use tracing::Instrument;

/// Where fence agents are looked for, after an absolute path: the daemon's
/// `PATH`, the sbin directories fence-agents installs to, and `fence/` in
/// each of hbd's resources directories.
pub fn agent_dirs(resources: &[PathBuf]) -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect())
        .unwrap_or_default();
    for d in ["/usr/sbin", "/sbin", "/usr/local/sbin"] {
        let d = PathBuf::from(d);
        if !dirs.contains(&d) {
            dirs.push(d);
        }
    }
    dirs.extend(resources.iter().map(|r| r.join("fence")));
    dirs
}

/// The program of `agent` (a name or an absolute path), if it exists and is
/// executable.
pub fn find_agent(agent: &str, dirs: &[PathBuf]) -> Option<PathBuf> {
    let exec =
        |p: &Path| nix::unistd::access(p, nix::unistd::AccessFlags::X_OK).is_ok() && p.is_file();
    if agent.starts_with('/') {
        let p = PathBuf::from(agent);
        return exec(&p).then_some(p);
    }
    dirs.iter().map(|d| d.join(agent)).find(|p| exec(p))
}

/// How fencing one node ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub node: String,
    /// The node is off (or was rebooted): an agent exited 0.
    pub ok: bool,
    /// Which device did it, or why every one failed.
    pub message: String,
}

/// Fences `node` from `me`: every device that can, in file order, until one
/// exits 0. Never panics; an agent that hangs is killed at the timeout.
pub async fn fence(
    devices: &[FenceDevice],
    dirs: &[PathBuf],
    me: &str,
    node: &str,
    settings: FencingSettings,
) -> Outcome {
    let candidates = devices_for(devices, me, node);
    if candidates.is_empty() {
        return Outcome {
            node: node.to_string(),
            ok: false,
            message: format!("no stonith_host line lets {me} fence {node}"),
        };
    }
    let action = settings.action.as_str();
    let mut failures = Vec::new();
    for d in candidates {
        let Some(path) = find_agent(&d.agent, dirs) else {
            tracing::error!(%node, agent = %d.agent, "fence agent not found (install fence-agents)");
            failures.push(format!("{}: not found", d.agent));
            continue;
        };
        let span = tracing::info_span!("fence", %node, agent = %d.agent, action);
        let stdin = d.stdin(node, action);
        tracing::warn!(parent: &span, written = %d.written, "fencing");
        // Output logged in the fence span; heartbeat's `HBD_*` tuning too.
        let cmd = crate::process::Command::new(&path)
            .input(stdin)
            .hbd_env()
            .timeout(settings.timeout)
            .require_executable();
        let r = crate::process::run(&cmd)
            .instrument(span.clone())
            .await
            .map(|f| (f.code, f.message()));
        match r {
            Ok((0, _)) => {
                tracing::warn!(parent: &span, "fenced");
                return Outcome {
                    node: node.to_string(),
                    ok: true,
                    message: format!("{} ({action}) succeeded", d.agent),
                };
            }
            Ok((code, last)) => {
                tracing::error!(parent: &span, code, last = %last, "fence agent failed");
                failures.push(if last.is_empty() {
                    format!("{} exited with code {code}", d.agent)
                } else {
                    format!("{} exited with code {code}: {last}", d.agent)
                });
            }
            Err(e) => {
                tracing::error!(parent: &span, error = %e, "fence agent failed");
                failures.push(format!("{}: {e}", d.agent));
            }
        }
    }
    Outcome {
        node: node.to_string(),
        ok: false,
        message: failures.join("; "),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fence::parse_stonith_host;
    use std::os::unix::fs::PermissionsExt;
    use std::time::Duration;

    fn agent(dir: &Path, name: &str, body: &str) {
        let p = dir.join(name);
        std::fs::write(&p, format!("#!/bin/sh\n{body}\n")).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    }

    fn dev(line: &str) -> FenceDevice {
        parse_stonith_host(&line.split_whitespace().collect::<Vec<_>>()).unwrap()
    }

    #[tokio::test]
    async fn runs_devices_in_order_with_stdin() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("stdin");
        agent(
            dir.path(),
            "fence_bad",
            "cat >/dev/null; echo no power; exit 1",
        );
        agent(
            dir.path(),
            "fence_good",
            &format!("cat > {}; exit 0", out.display()),
        );
        let devices = vec![
            dev("* fence_missing a=b"),
            dev("* fence_bad a=b"),
            dev("n1 fence_good lab=x"),
        ];
        let dirs = vec![dir.path().to_path_buf()];
        let s = FencingSettings {
            timeout: Duration::from_secs(20),
            ..Default::default()
        };
        let o = fence(&devices, &dirs, "n1", "n2", s).await;
        assert!(o.ok, "{o:?}");
        assert_eq!(o.message, "fence_good (reboot) succeeded");
        assert_eq!(
            std::fs::read_to_string(&out).unwrap(),
            "action=reboot\nplug=n2\nlab=x\n"
        );
        // From n2 only the failing ones apply.
        let o = fence(&devices, &dirs, "n2", "n1", s).await;
        assert!(!o.ok);
        assert_eq!(
            o.message,
            "fence_missing: not found; fence_bad exited with code 1: no power"
        );
        let o = fence(&devices, &dirs, "n1", "n1", s).await;
        assert_eq!(o.message, "no stonith_host line lets n1 fence n1");
    }

    #[tokio::test]
    async fn a_hanging_agent_is_killed() {
        let dir = tempfile::tempdir().unwrap();
        agent(dir.path(), "fence_hang", "exec sleep 600");
        let devices = vec![dev("* fence_hang")];
        let s = FencingSettings {
            timeout: Duration::from_millis(300),
            ..Default::default()
        };
        let o = fence(&devices, &[dir.path().to_path_buf()], "n1", "n2", s).await;
        assert!(!o.ok);
        assert!(o.message.contains("timed out"), "{o:?}");
    }
}
