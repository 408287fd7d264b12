//! What the daemon shows beyond status: the Prometheus scrape (served on
//! `[metrics] listen` by a minimal HTTP/1.1 responder, and to `hbctl
//! metrics` through the control socket), the event bus `hbctl events`
//! subscribes to, and the poller that turns the replicated disks' state
//! changes into events.
//!
//! ```text
//!  HTTP GET /metrics ──┐                 ┌─► Status (the daemon loop, over `calls`)
//!  hbctl metrics ──────┴─► scrape() ─────┼─► each disk's device (its socket)
//!                                        └─► Metrics (families counted in place)
//!  daemon loop ── publish ─► Bus (bounded broadcast) ─► each `hbctl events`
//!  disk poller (1 s) ──────► Bus
//! ```
//!
//! Nothing here can hold the loop: a scrape is one status request like
//! `hbctl status`, the responder reads a bounded request within a time
//! limit and serves a few connections at once, and the bus never waits
//! for a subscriber.

use super::control::Call;
use crate::ctl::{Request, Response};
use crate::disk::ctl::DiskStatus;
use crate::events::{Bus, Event};
use crate::metrics::{self, Metrics};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot, Semaphore};
use tokio::task::JoinHandle;

/// How long a scrape waits for each disk's device.
const DISK_TIMEOUT: Duration = Duration::from_millis(1000);
/// Longest HTTP request head read.
const MAX_REQUEST: usize = 8192;
/// For reading the request and for writing the answer.
const HTTP_TIMEOUT: Duration = Duration::from_secs(5);
/// HTTP connections served at once; more are closed at once.
const HTTP_SLOTS: usize = 4;
/// How often the disk poller asks the devices.
const DISK_POLL: Duration = Duration::from_secs(1);

/// The bus, the counted families and where the disks' sockets are; shared
/// by the loop, the control server and the metrics responder.
#[derive(Clone, Debug)]
pub struct Observe {
    pub bus: Bus,
    pub metrics: Arc<Metrics>,
    pub run_dir: PathBuf,
}

impl Observe {
    pub fn new(run_dir: PathBuf) -> Observe {
        Observe {
            bus: Bus::new(),
            metrics: Metrics::new(),
            run_dir,
        }
    }

    /// Publishes `e` (and counts it).
    pub fn publish(&self, e: Event) {
        self.metrics.event(&e.kind);
        self.bus.publish(e);
    }
}

/// The status document from the loop.
pub async fn status(calls: &mpsc::Sender<Call>) -> Result<crate::ctl::Status, String> {
    let (tx, rx) = oneshot::channel();
    calls
        .send((Request::Status, tx))
        .await
        .map_err(|_| "hbd is shutting down".to_string())?;
    match rx.await {
        Ok(Response::Status(s)) => Ok(*s),
        Ok(Response::Error { message, .. }) => Err(message),
        Ok(other) => Err(format!("unexpected answer {other:?}")),
        Err(_) => Err("hbd is shutting down".to_string()),
    }
}

/// One scrape's text.
pub async fn scrape(o: &Observe, calls: &mpsc::Sender<Call>) -> Result<String, String> {
    let status = status(calls).await?;
    let disks: Vec<DiskStatus> = futures::future::join_all(
        status
            .disks
            .iter()
            .map(|d| crate::disk::client::status_async(&o.run_dir, &d.name, DISK_TIMEOUT)),
    )
    .await
    .into_iter()
    .filter_map(Result::ok)
    .collect();
    Ok(metrics::render(&o.metrics, &status, &disks))
}

/// The `[metrics] listen` responder; stops when dropped.
pub struct MetricsServer {
    task: JoinHandle<()>,
}

impl Drop for MetricsServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl MetricsServer {
    /// Binds `addr` and serves `GET /metrics`.
    pub fn start(
        addr: SocketAddr,
        o: Observe,
        calls: mpsc::Sender<Call>,
    ) -> std::io::Result<MetricsServer> {
        let std_listener = std::net::TcpListener::bind(addr)?;
        std_listener.set_nonblocking(true)?;
        let listener = TcpListener::from_std(std_listener)?;
        tracing::info!(%addr, "metrics: serving GET /metrics");
        let slots = Arc::new(Semaphore::new(HTTP_SLOTS));
        let task = tokio::spawn(async move {
            loop {
                let stream = match listener.accept().await {
                    Ok((s, _)) => s,
                    Err(e) => {
                        tracing::debug!(error = %e, "metrics: accept failed");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                };
                let Ok(permit) = slots.clone().try_acquire_owned() else {
                    continue; // dropped: closed at once
                };
                let (o, calls) = (o.clone(), calls.clone());
                tokio::spawn(async move {
                    let _permit = permit;
                    if let Err(e) = serve_http(stream, &o, &calls).await {
                        tracing::debug!(error = %e, "metrics: connection ended with an error");
                    }
                });
            }
        });
        Ok(MetricsServer { task })
    }
}

/// What an HTTP request head asks for.
#[derive(Debug, PartialEq, Eq)]
enum Asked {
    Metrics,
    Index,
    NotFound,
    BadMethod,
    Bad,
}

/// The request line of `head` (the bytes up to the blank line).
fn asked(head: &[u8]) -> Asked {
    let line = head.split(|&b| b == b'\n').next().unwrap_or_default();
    let line = String::from_utf8_lossy(line);
    let mut words = line.split_whitespace();
    let (Some(method), Some(target), Some(version)) = (words.next(), words.next(), words.next())
    else {
        return Asked::Bad;
    };
    if !version.starts_with("HTTP/1.") {
        return Asked::Bad;
    }
    if method != "GET" && method != "HEAD" {
        return Asked::BadMethod;
    }
    match target.split('?').next().unwrap_or_default() {
        "/metrics" => Asked::Metrics,
        "/" => Asked::Index,
        _ => Asked::NotFound,
    }
}

async fn serve_http(
    mut stream: TcpStream,
    o: &Observe,
    calls: &mpsc::Sender<Call>,
) -> std::io::Result<()> {
    let mut head = Vec::with_capacity(512);
    let read = tokio::time::timeout(HTTP_TIMEOUT, async {
        let mut buf = [0u8; 1024];
        loop {
            let n = stream.read(&mut buf).await?;
            if n == 0 {
                return Ok::<bool, std::io::Error>(false);
            }
            head.extend_from_slice(&buf[..n]);
            if head.windows(4).any(|w| w == b"\r\n\r\n") || head.windows(2).any(|w| w == b"\n\n") {
                return Ok(true);
            }
            if head.len() > MAX_REQUEST {
                return Ok(false);
            }
        }
    })
    .await;
    let complete = matches!(read, Ok(Ok(true)));
    let (code, ctype, body) = match if complete { asked(&head) } else { Asked::Bad } {
        Asked::Metrics => match scrape(o, calls).await {
            Ok(text) => ("200 OK", metrics::CONTENT_TYPE, text),
            Err(e) => (
                "503 Service Unavailable",
                "text/plain; charset=utf-8",
                format!("{e}\n"),
            ),
        },
        Asked::Index => (
            "200 OK",
            "text/html; charset=utf-8",
            "<html><body><a href=\"/metrics\">/metrics</a></body></html>\n".to_string(),
        ),
        Asked::NotFound => (
            "404 Not Found",
            "text/plain; charset=utf-8",
            "only /metrics here\n".into(),
        ),
        Asked::BadMethod => (
            "405 Method Not Allowed",
            "text/plain; charset=utf-8",
            "GET only\n".into(),
        ),
        Asked::Bad => (
            "400 Bad Request",
            "text/plain; charset=utf-8",
            "bad request\n".into(),
        ),
    };
    let head_only = head.starts_with(b"HEAD ");
    let mut answer = format!(
        "HTTP/1.1 {code}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    if !head_only {
        answer.extend_from_slice(body.as_bytes());
    }
    match tokio::time::timeout(HTTP_TIMEOUT, stream.write_all(&answer)).await {
        Ok(r) => r?,
        Err(_) => return Ok(()),
    }
    let _ = stream.shutdown().await;
    Ok(())
}

/// The states of a disk that make events.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
struct DiskSeen {
    role: String,
    peer_role: String,
    disk: String,
    peer_disk: String,
    connection: String,
    split_brain: bool,
}

impl DiskSeen {
    fn of(s: &crate::ctl::DiskSummary) -> DiskSeen {
        DiskSeen {
            role: s.role.clone(),
            peer_role: s.peer_role.clone(),
            disk: s.disk.clone(),
            peer_disk: s.peer_disk.clone(),
            connection: s.connection.clone(),
            split_brain: s.split_brain,
        }
    }
}

/// The events between two polls of one disk.
fn disk_events(name: &str, old: &DiskSeen, new: &DiskSeen) -> Vec<Event> {
    let mut out = Vec::new();
    let fields = [
        ("role", &old.role, &new.role),
        ("peer-role", &old.peer_role, &new.peer_role),
        ("disk", &old.disk, &new.disk),
        ("peer-disk", &old.peer_disk, &new.peer_disk),
        ("connection", &old.connection, &new.connection),
    ];
    let changed: Vec<_> = fields.iter().filter(|(_, o, n)| o != n).collect();
    if !changed.is_empty() {
        let mut e = Event::change("disk", name);
        for (k, o, n) in changed {
            e = e.with(k, n).with(&format!("old-{k}"), o);
        }
        out.push(e);
    }
    if new.split_brain && !old.split_brain {
        out.push(Event::change("split-brain", name).with("connection", &new.connection));
    }
    out
}

/// Polls the devices of `names` every second and publishes their changes.
pub fn watch_disks(names: Vec<String>, o: Observe) -> Option<JoinHandle<()>> {
    if names.is_empty() {
        return None;
    }
    Some(tokio::spawn(async move {
        let mut seen: Vec<Option<DiskSeen>> = vec![None; names.len()];
        loop {
            let now = crate::disk::client::summaries(&o.run_dir, &names, DISK_TIMEOUT).await;
            for (i, s) in now.iter().enumerate() {
                let new = DiskSeen::of(s);
                if let Some(old) = &seen[i] {
                    for e in disk_events(&s.name, old, &new) {
                        o.publish(e);
                    }
                }
                seen[i] = Some(new);
            }
            tokio::time::sleep(DISK_POLL).await;
        }
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_lines() {
        assert_eq!(
            asked(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n"),
            Asked::Metrics
        );
        assert_eq!(asked(b"GET /metrics?x=1 HTTP/1.0\r\n\r\n"), Asked::Metrics);
        assert_eq!(asked(b"GET / HTTP/1.1\r\n\r\n"), Asked::Index);
        assert_eq!(asked(b"GET /x HTTP/1.1\r\n\r\n"), Asked::NotFound);
        assert_eq!(asked(b"POST /metrics HTTP/1.1\r\n\r\n"), Asked::BadMethod);
        assert_eq!(asked(b"GET /metrics\r\n\r\n"), Asked::Bad);
        assert_eq!(asked(b"\x00\xff"), Asked::Bad);
    }

    #[test]
    fn disk_changes_make_one_event_and_split_brain_its_own() {
        let old = DiskSeen {
            role: "Secondary".into(),
            connection: "Connected".into(),
            ..Default::default()
        };
        let new = DiskSeen {
            role: "Primary".into(),
            connection: "StandAlone".into(),
            split_brain: true,
            ..Default::default()
        };
        let e = disk_events("r0", &old, &new);
        assert_eq!(e.len(), 2);
        assert_eq!(e[0].attrs["role"], "Primary");
        assert_eq!(e[0].attrs["old-role"], "Secondary");
        assert_eq!(e[0].attrs["connection"], "StandAlone");
        assert!(!e[0].attrs.contains_key("disk"));
        assert_eq!(e[1].kind, "split-brain");
        assert!(disk_events("r0", &new, &new).is_empty());
    }

    /// The responder answers a scrape from the loop's status, and a request
    /// that never ends is cut off without holding anything.
    #[tokio::test]
    async fn http_scrape() {
        let (tx, mut rx) = mpsc::channel::<Call>(4);
        let o = Observe::new(std::env::temp_dir());
        tokio::spawn(async move {
            while let Some((_, reply)) = rx.recv().await {
                let s: crate::ctl::Status = serde_json::from_value(serde_json::json!({
                    "node": "n1", "cluster": "hbd", "version": "0", "pid": 1,
                    "incarnation": 1, "uptime_ms": 5000, "keepalive_ms": 100,
                    "deadtime_ms": 1000, "nodes": [], "ping_nodes": [],
                    "counters": {"sent": 3, "received": 0, "dropped": {}}
                }))
                .unwrap();
                let _ = reply.send(Response::Status(Box::new(s)));
            }
        });
        // A free port (the handle does not say which one port 0 got).
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        drop(l);
        let _server = MetricsServer::start(addr, o, tx).unwrap();
        let mut s = TcpStream::connect(addr).await.unwrap();
        s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).await.unwrap();
        assert!(out.starts_with("HTTP/1.1 200 OK\r\n"), "{out}");
        assert!(out.contains("hbd_datagrams_sent_total 3"), "{out}");
        assert!(out.ends_with("# EOF\n"), "{out}");
        let mut s = TcpStream::connect(addr).await.unwrap();
        s.write_all(b"GET /nothing HTTP/1.1\r\n\r\n").await.unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).await.unwrap();
        assert!(out.starts_with("HTTP/1.1 404"), "{out}");
    }
}
