//! The control socket server: accepts `hbctl` connections, checks who is
//! calling with `SO_PEERCRED`, and forwards each request to the daemon's loop,
//! which answers from its state machines.

use crate::ctl::{self, ErrorKind, Request, Response};
use futures::{SinkExt, StreamExt};
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{mpsc, oneshot, Semaphore};
use tokio::task::JoinHandle;

/// A request on its way to the daemon's loop, with the way back.
pub type Call = (Request, oneshot::Sender<Response>);

/// Connections served at once; more wait in the kernel's backlog.
const MAX_CONNECTIONS: usize = 16;
/// A client has this long to send its request.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// Who may use the socket besides root and the daemon's own user.
#[derive(Debug, Clone, Default)]
pub struct Access {
    /// `cluster.toml` `[control] group`: its name, gid and listed members.
    pub group: Option<(String, u32, Vec<String>)>,
}

impl Access {
    /// Resolves the configured group (the config loader has checked it exists).
    pub fn from_group(name: Option<&str>) -> Access {
        let group = name.and_then(|n| {
            nix::unistd::Group::from_name(n)
                .ok()
                .flatten()
                .map(|g| (n.to_string(), g.gid.as_raw(), g.mem))
        });
        Access { group }
    }

    /// Root, our own uid, or a member of the group (primary or listed).
    pub fn allows(&self, uid: u32, gid: u32) -> bool {
        if uid == 0 || uid == nix::unistd::geteuid().as_raw() {
            return true;
        }
        let Some((_, group_gid, members)) = &self.group else {
            return false;
        };
        if gid == *group_gid {
            return true;
        }
        match nix::unistd::User::from_uid(uid.into()) {
            Ok(Some(user)) => user.gid.as_raw() == *group_gid || members.contains(&user.name),
            _ => false,
        }
    }

    fn refusal(&self, uid: u32) -> String {
        match &self.group {
            Some((name, _, _)) => format!(
                "permission denied: uid {uid} is neither root nor in group {name} (cluster.toml [control] group)"
            ),
            None => format!(
                "permission denied: uid {uid} is not root; set [control] group in cluster.toml to let a group in"
            ),
        }
    }
}

/// The listening socket; removes its file on drop.
pub struct ControlServer {
    path: PathBuf,
    task: JoinHandle<()>,
}

impl Drop for ControlServer {
    fn drop(&mut self) {
        self.task.abort();
        let _ = std::fs::remove_file(&self.path);
    }
}

impl ControlServer {
    /// Binds `run_dir/hbd.sock` (replacing a stale file: the pid file check has
    /// already made sure no other hbd owns it) and starts serving.
    pub fn start(
        run_dir: &Path,
        access: Arc<std::sync::RwLock<Access>>,
        calls: mpsc::Sender<Call>,
    ) -> io::Result<ControlServer> {
        let path = ctl::socket_path(run_dir);
        match std::fs::remove_file(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        let listener = UnixListener::bind(&path)?;
        // Everyone may connect; SO_PEERCRED decides, so a refused caller gets
        // a clear answer instead of EACCES.
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o666))?;
        let task = tokio::spawn(accept_loop(listener, access, calls));
        Ok(ControlServer { path, task })
    }
}

async fn accept_loop(
    listener: UnixListener,
    access: Arc<std::sync::RwLock<Access>>,
    calls: mpsc::Sender<Call>,
) {
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    loop {
        let Ok(permit) = slots.clone().acquire_owned().await else {
            return;
        };
        let stream = match listener.accept().await {
            Ok((s, _)) => s,
            Err(e) => {
                tracing::warn!(error = %e, "control socket accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let access = access.clone();
        let calls = calls.clone();
        tokio::spawn(async move {
            let _permit = permit;
            if let Err(e) = serve(stream, access, calls).await {
                tracing::debug!(error = %e, "control connection ended with an error");
            }
        });
    }
}

async fn serve(
    stream: UnixStream,
    access: Arc<std::sync::RwLock<Access>>,
    calls: mpsc::Sender<Call>,
) -> io::Result<()> {
    let cred = stream.peer_cred()?;
    let mut conn: ctl::Connection<Request, Response> = ctl::frame(stream);
    // Read the request before answering, refusals included: a client whose
    // request is still being written when we answer and close would see
    // EPIPE instead of the answer.
    let request = match tokio::time::timeout(REQUEST_TIMEOUT, conn.next()).await {
        Ok(Some(Ok(r))) => Ok(r),
        Ok(Some(Err(e))) => Err(format!("cannot decode the request: {e}")),
        Ok(None) | Err(_) => return Ok(()),
    };
    let refusal = {
        let access = access.read().unwrap_or_else(|e| e.into_inner());
        (!access.allows(cred.uid(), cred.gid())).then(|| access.refusal(cred.uid()))
    };
    if let Some(message) = refusal {
        tracing::warn!(
            uid = cred.uid(),
            pid = cred.pid(),
            "control connection refused"
        );
        return conn
            .send(Response::Error {
                kind: ErrorKind::PermissionDenied,
                message,
            })
            .await;
    }
    let request = match request {
        Ok(r) => r,
        Err(message) => {
            return conn
                .send(Response::Error {
                    kind: ErrorKind::BadRequest,
                    message,
                })
                .await;
        }
    };
    let (tx, rx) = oneshot::channel();
    if calls.send((request, tx)).await.is_err() {
        return Ok(()); // shutting down
    }
    if let Ok(response) = rx.await {
        conn.send(response).await?;
    }
    Ok(())
}
