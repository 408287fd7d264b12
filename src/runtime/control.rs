//! The control socket server: accepts `hbctl` connections, checks who is
//! calling with `SO_PEERCRED`, and forwards each request to the daemon's loop,
//! which answers from its state machines.
//!
//! Any local user can connect (the socket is mode 666 so that a refused
//! caller gets a clear answer), so nothing a caller does may starve root or
//! the loop:
//!
//! - every connection is accepted at once and judged by its credentials
//!   before it takes a slot: root and hbd's own user at once, a refused
//!   caller answered at once (at most [`REFUSING`] answers in flight; more
//!   are closed unanswered);
//! - `[control] group` membership needs an account lookup (NSS, which may
//!   stall on LDAP or sssd): it runs off the loop
//!   ([`crate::process::lookup`]), at most [`CHECKING`] at once;
//! - [`SHARED_SLOTS`] slots serve anyone allowed, [`ROOT_SLOTS`] more only
//!   uid 0, so users let in by the group can never lock root out; a caller
//!   finding no slot is told hbd is busy (root waits for one a while);
//! - a caller has [`REQUEST_TIMEOUT`] from connecting to a complete request,
//!   and [`ANSWER_TIMEOUT`] to take the answer.

use super::observe::{self, Observe};
use crate::ctl::{self, ErrorKind, Request, Response};
use crate::events::{self, Event};
use crate::process;
use futures::{SinkExt, StreamExt};
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{mpsc, oneshot, OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinHandle;

/// A request on its way to the daemon's loop, with the way back.
pub type Call = (Request, oneshot::Sender<Response>);

/// Connections served at once for any allowed caller.
pub const SHARED_SLOTS: usize = 12;
/// Connections served at once beyond [`SHARED_SLOTS`], for root only.
pub const ROOT_SLOTS: usize = 4;
/// Group-membership checks (account lookups) in flight at once.
pub const CHECKING: usize = 8;
/// Refusals being written at once.
pub const REFUSING: usize = 16;
/// From connecting to a complete request: hbctl sends it at once.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(1);
/// For writing one answer (a caller that does not read it loses it).
pub const ANSWER_TIMEOUT: Duration = Duration::from_secs(5);
/// How long root waits for a slot when every one is taken.
pub const ROOT_SLOT_WAIT: Duration = Duration::from_secs(5);
/// `hbctl events` streams at once; a stream gives its serving slot back.
pub const STREAMS: usize = 8;

/// Who may use the socket besides root and the daemon's own user.
#[derive(Debug, Clone, Default)]
pub struct Access {
    /// `cluster.toml` `[control] group`. Resolved for each caller that needs
    /// it, off the loop: setting it looks nothing up.
    pub group: Option<String>,
}

/// What the credentials alone say about a caller.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Verdict {
    Allowed,
    Refused(String),
    /// Allowed if a member of this group (an account lookup decides).
    Check(String),
}

impl Access {
    /// The configured group (the config loader has checked it exists).
    pub fn from_group(name: Option<&str>) -> Access {
        Access {
            group: name.map(str::to_string),
        }
    }

    /// Root and our own uid at once; others only through the group.
    fn verdict(&self, uid: u32) -> Verdict {
        if uid == 0 || uid == nix::unistd::geteuid().as_raw() {
            return Verdict::Allowed;
        }
        match &self.group {
            Some(g) => Verdict::Check(g.clone()),
            None => Verdict::Refused(refusal(uid, None)),
        }
    }
}

fn refusal(uid: u32, group: Option<&str>) -> String {
    match group {
        Some(name) => format!(
            "permission denied: uid {uid} is neither root nor in group {name} (cluster.toml [control] group)"
        ),
        None => format!(
            "permission denied: uid {uid} is not root; set [control] group in cluster.toml to let a group in"
        ),
    }
}

/// Why [`member_of`] cannot say whether a caller is in the group (the caller
/// is refused, with this reason).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
enum MembershipError {
    #[error("cannot look up group {group}: {errno}")]
    GroupLookup { group: String, errno: nix::Error },
    #[error("no group {0}")]
    NoGroup(String),
    #[error("cannot look up uid {uid}: {errno}")]
    UidLookup { uid: u32, errno: nix::Error },
}

/// Whether the caller (`uid`, its `gid` from `SO_PEERCRED`) is in `group`:
/// its gid, its primary group, or listed as a member. NSS: call it only
/// through [`process::lookup`].
fn member_of(uid: u32, gid: u32, group: &str) -> Result<bool, MembershipError> {
    use nix::unistd::{Group, User};
    let g = Group::from_name(group)
        .map_err(|errno| MembershipError::GroupLookup {
            group: group.to_string(),
            errno,
        })?
        .ok_or_else(|| MembershipError::NoGroup(group.to_string()))?;
    if gid == g.gid.as_raw() {
        return Ok(true);
    }
    match User::from_uid(uid.into()) {
        Ok(Some(u)) => Ok(u.gid == g.gid || g.mem.contains(&u.name)),
        Ok(None) => Ok(false),
        Err(errno) => Err(MembershipError::UidLookup { uid, errno }),
    }
}

/// The serving slots: shared ones, then (root only) the reserve.
#[derive(Clone)]
struct Slots {
    shared: Arc<Semaphore>,
    root: Arc<Semaphore>,
}

impl Slots {
    fn new(shared: usize, root: usize) -> Slots {
        Slots {
            shared: Arc::new(Semaphore::new(shared)),
            root: Arc::new(Semaphore::new(root)),
        }
    }

    /// The first slot root can take; `None` once closed (never).
    async fn wait_root(&self) -> Option<OwnedSemaphorePermit> {
        tokio::select! {
            s = self.shared.clone().acquire_owned() => s.ok(),
            s = self.root.clone().acquire_owned() => s.ok(),
        }
    }

    fn take(&self, uid: u32) -> Option<OwnedSemaphorePermit> {
        self.shared
            .clone()
            .try_acquire_owned()
            .ok()
            .or_else(|| match uid {
                0 => self.root.clone().try_acquire_owned().ok(),
                _ => None,
            })
    }
}

/// The listening socket; removes its file on drop.
pub struct ControlServer {
    path: PathBuf,
    task: JoinHandle<()>,
    /// The `[metrics] listen` responder, which lives as long.
    metrics: Option<observe::MetricsServer>,
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
        let observe = Observe::new(run_dir.to_path_buf());
        ControlServer::start_observed(run_dir, access, calls, observe)
    }

    /// [`ControlServer::start`], serving `hbctl events` from `observe`'s
    /// bus and `hbctl metrics` from its families.
    pub fn start_observed(
        run_dir: &Path,
        access: Arc<std::sync::RwLock<Access>>,
        calls: mpsc::Sender<Call>,
        observe: Observe,
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
        let task = tokio::spawn(accept_loop(listener, access, calls, observe));
        Ok(ControlServer {
            path,
            task,
            metrics: None,
        })
    }

    /// Keeps the metrics responder running as long as the control server.
    pub fn attach_metrics(&mut self, m: observe::MetricsServer) {
        self.metrics = Some(m);
    }
}

/// What every connection shares.
#[derive(Clone)]
struct Server {
    calls: mpsc::Sender<Call>,
    slots: Slots,
    checking: Arc<Semaphore>,
    refusing: Arc<Semaphore>,
    /// When a refusal was last logged at warn (ms since `epoch`, 0: never).
    warned: Arc<AtomicU64>,
    epoch: std::time::Instant,
    observe: Observe,
    streams: Arc<Semaphore>,
}

async fn accept_loop(
    listener: UnixListener,
    access: Arc<std::sync::RwLock<Access>>,
    calls: mpsc::Sender<Call>,
    observe: Observe,
) {
    let server = Server {
        calls,
        slots: Slots::new(SHARED_SLOTS, ROOT_SLOTS),
        checking: Arc::new(Semaphore::new(CHECKING)),
        refusing: Arc::new(Semaphore::new(REFUSING)),
        warned: Arc::new(AtomicU64::new(0)),
        epoch: std::time::Instant::now(),
        observe,
        streams: Arc::new(Semaphore::new(STREAMS)),
    };
    loop {
        let stream = match listener.accept().await {
            Ok((s, _)) => s,
            Err(e) => {
                tracing::warn!(error = %e, "control socket accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let cred = match stream.peer_cred() {
            Ok(c) => c,
            Err(e) => {
                tracing::debug!(error = %e, "control connection without credentials");
                continue;
            }
        };
        let (uid, gid) = (cred.uid(), cred.gid());
        let verdict = access
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .verdict(uid);
        match verdict {
            Verdict::Allowed => server.admit(stream, uid),
            Verdict::Refused(message) => {
                server.log_refusal(uid, "not root");
                server.refuse(stream, ErrorKind::PermissionDenied, message);
            }
            Verdict::Check(group) => {
                let Ok(permit) = server.checking.clone().try_acquire_owned() else {
                    server.log_refusal(uid, "too many callers being checked");
                    server.refuse(stream, ErrorKind::Refused, busy());
                    continue;
                };
                let server = server.clone();
                tokio::spawn(async move {
                    let g = group.clone();
                    let what = format!("checking whether uid {uid} is in group {group}");
                    let member = process::lookup(&what, move || member_of(uid, gid, &g))
                        .await
                        .map_err(|e| e.to_string())
                        .and_then(|r| r.map_err(|e| e.to_string()));
                    drop(permit);
                    match member {
                        Ok(true) => server.admit(stream, uid),
                        Ok(false) => {
                            server.log_refusal(uid, "not in the group");
                            server.refuse(
                                stream,
                                ErrorKind::PermissionDenied,
                                refusal(uid, Some(&group)),
                            );
                        }
                        Err(e) => {
                            server.log_refusal(uid, &e);
                            server.refuse(
                                stream,
                                ErrorKind::PermissionDenied,
                                format!("permission denied: {e}"),
                            );
                        }
                    }
                });
            }
        }
    }
}

fn busy() -> String {
    format!(
        "hbd is busy: all {SHARED_SLOTS} control connections are in use; try again (root has {ROOT_SLOTS} more)"
    )
}

impl Server {
    /// At warn at most once a second, so that a flood of callers cannot
    /// flood the log; the others at debug.
    fn log_refusal(&self, uid: u32, reason: &str) {
        let now = (self.epoch.elapsed().as_millis() as u64).max(1);
        let last = self.warned.load(Ordering::Relaxed);
        if (last == 0 || now >= last + 1000)
            && self
                .warned
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            tracing::warn!(uid, reason, "control connection refused");
        } else {
            tracing::debug!(uid, reason, "control connection refused");
        }
    }

    /// Serves an allowed caller in a slot. With none free, root waits for
    /// one (a while: its callers, hbctl and the disks' fence-peer, do not
    /// flood); anyone else is told at once that hbd is busy.
    fn admit(&self, stream: UnixStream, uid: u32) {
        let slot = self.slots.take(uid);
        if slot.is_none() && uid != 0 {
            self.log_refusal(uid, "every slot in use");
            self.refuse(stream, ErrorKind::Refused, busy());
            return;
        }
        let server = self.clone();
        tokio::spawn(async move {
            let slot = match slot {
                Some(s) => s,
                None => {
                    match tokio::time::timeout(ROOT_SLOT_WAIT, server.slots.wait_root()).await {
                        Ok(Some(s)) => s,
                        _ => {
                            server.log_refusal(uid, "every slot in use");
                            server.refuse(stream, ErrorKind::Refused, busy());
                            return;
                        }
                    }
                }
            };
            if let Err(e) = serve(stream, &server, slot).await {
                tracing::debug!(error = %e, "control connection ended with an error");
            }
        });
    }

    /// Answers `message` without reading the request (hbctl still reads the
    /// answer when its request could not be written) and closes.
    fn refuse(&self, stream: UnixStream, kind: ErrorKind, message: String) {
        let Ok(permit) = self.refusing.clone().try_acquire_owned() else {
            return; // dropped: closed unanswered
        };
        tokio::spawn(async move {
            let _permit = permit;
            let mut conn: ctl::Connection<Request, Response> = ctl::frame(stream);
            let _ = tokio::time::timeout(
                REQUEST_TIMEOUT,
                conn.send(Response::Error { kind, message }),
            )
            .await;
        });
    }
}

async fn serve(stream: UnixStream, server: &Server, slot: OwnedSemaphorePermit) -> io::Result<()> {
    let calls = &server.calls;
    let mut conn: ctl::Connection<Request, Response> = ctl::frame(stream);
    let request = match tokio::time::timeout(REQUEST_TIMEOUT, conn.next()).await {
        Ok(Some(Ok(r))) => r,
        Ok(Some(Err(e))) => {
            let answer = Response::Error {
                kind: ErrorKind::BadRequest,
                message: format!("cannot decode the request: {e}"),
            };
            let _ = tokio::time::timeout(ANSWER_TIMEOUT, conn.send(answer)).await;
            return Ok(());
        }
        Ok(None) | Err(_) => return Ok(()),
    };
    let response = match request {
        Request::Events { now } => {
            // A stream lasts: it leaves the serving slots to the others.
            drop(slot);
            let Ok(_stream) = server.streams.clone().try_acquire_owned() else {
                let answer = Response::Error {
                    kind: ErrorKind::Refused,
                    message: format!("hbd is busy: {STREAMS} event streams already open"),
                };
                let _ = tokio::time::timeout(ANSWER_TIMEOUT, conn.send(answer)).await;
                return Ok(());
            };
            return stream_events(conn, server, now).await;
        }
        Request::Metrics => Some(match observe::scrape(&server.observe, calls).await {
            Ok(text) => Response::Metrics { text },
            Err(message) => Response::Error {
                kind: ErrorKind::Failed,
                message,
            },
        }),
        request => {
            let (tx, rx) = oneshot::channel();
            if calls.send((request, tx)).await.is_err() {
                return Ok(()); // shutting down
            }
            rx.await.ok()
        }
    };
    if let Some(response) = response {
        match tokio::time::timeout(ANSWER_TIMEOUT, conn.send(response)).await {
            Ok(r) => r?,
            Err(_) => tracing::debug!("control caller did not take its answer"),
        }
    }
    drop(slot);
    Ok(())
}

/// Writes one event; false when the caller did not take it in time.
async fn send_event<S>(tx: &mut S, e: Event) -> bool
where
    S: futures::Sink<Response> + Unpin,
{
    matches!(
        tokio::time::timeout(ANSWER_TIMEOUT, tx.send(Response::Event(e))).await,
        Ok(Ok(()))
    )
}

/// `hbctl events`: every event of the bus until the caller goes away. A
/// caller that does not keep up loses the oldest events and is told how
/// many (a `lost` event); one that takes no answer for [`ANSWER_TIMEOUT`]
/// is dropped. Neither holds the daemon: the bus never waits.
async fn stream_events(
    conn: ctl::Connection<Request, Response>,
    server: &Server,
    now: bool,
) -> io::Result<()> {
    use tokio::sync::broadcast::error::RecvError;
    // Subscribed before the state is read: nothing falls between.
    let mut rx = server.observe.bus.subscribe();
    let (mut tx, mut incoming) = conn.split();
    if now {
        let initial = match observe::status(&server.calls).await {
            Ok(s) => events::exists_of(&s),
            Err(_) => return Ok(()),
        };
        for e in initial {
            if !send_event(&mut tx, e).await {
                return Ok(());
            }
        }
    }
    loop {
        tokio::select! {
            r = rx.recv() => {
                let e = match r {
                    Ok(e) => e,
                    Err(RecvError::Lagged(n)) => {
                        tracing::debug!(lost = n, "event stream reader too slow");
                        Event {
                            what: events::What::Lost,
                            ..Event::change("lost", "")
                        }
                        .with("events", n)
                    }
                    Err(RecvError::Closed) => return Ok(()),
                };
                if !send_event(&mut tx, e).await {
                    return Ok(());
                }
            }
            // The caller sends nothing more: anything, or the end, closes.
            _ = incoming.next() => return Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_keeps_slots_nobody_else_can_take() {
        let slots = Slots::new(2, 1);
        let a = slots.take(1000);
        let b = slots.take(1000);
        assert!(a.is_some() && b.is_some());
        assert!(slots.take(1000).is_none(), "shared slots exhausted");
        let r = slots.take(0);
        assert!(r.is_some(), "root takes the reserve");
        assert!(slots.take(0).is_none());
        drop(a);
        assert!(slots.take(0).is_some(), "root uses shared slots too");
    }

    #[test]
    fn verdicts_need_no_lookup_for_root_or_refusal() {
        let none = Access::from_group(None);
        assert_eq!(none.verdict(0), Verdict::Allowed);
        assert!(matches!(none.verdict(65534), Verdict::Refused(m) if m.contains("uid 65534")));
        let group = Access::from_group(Some("haclient"));
        assert_eq!(group.verdict(65534), Verdict::Check("haclient".into()));
        assert_eq!(
            group.verdict(nix::unistd::geteuid().as_raw()),
            Verdict::Allowed
        );
    }

    /// A caller that connects and never sends a request loses its slot
    /// quickly; root still gets answers meanwhile.
    #[tokio::test]
    async fn idle_callers_do_not_keep_root_out() {
        let t = tempfile::tempdir().unwrap();
        let access = Arc::new(std::sync::RwLock::new(Access::default()));
        let (tx, mut rx) = mpsc::channel::<Call>(4);
        let _server = ControlServer::start(t.path(), access, tx).unwrap();
        tokio::spawn(async move {
            while let Some((_, reply)) = rx.recv().await {
                let _ = reply.send(Response::Nodes { nodes: vec![] });
            }
        });
        let path = ctl::socket_path(t.path());
        // More idle connections than there are slots (these are root's too).
        let mut idle = Vec::new();
        for _ in 0..(SHARED_SLOTS + ROOT_SLOTS) {
            idle.push(UnixStream::connect(&path).await.unwrap());
        }
        let answer = tokio::time::timeout(Duration::from_secs(60), async {
            loop {
                match ctl::call(&path, Request::ListNodes).await {
                    Ok(Response::Nodes { .. }) => return,
                    // Busy until the idle ones time out.
                    Ok(Response::Error {
                        kind: ErrorKind::Refused,
                        ..
                    }) => tokio::time::sleep(Duration::from_millis(100)).await,
                    other => panic!("{other:?}"),
                }
            }
        })
        .await;
        assert!(answer.is_ok(), "never answered");
        // Each idle one was closed.
        for mut s in idle {
            use tokio::io::AsyncReadExt;
            let mut b = [0u8; 1];
            let n = tokio::time::timeout(Duration::from_secs(60), s.read(&mut b))
                .await
                .expect("an idle connection stays open")
                .unwrap_or(0);
            assert_eq!(n, 0);
        }
    }
}
