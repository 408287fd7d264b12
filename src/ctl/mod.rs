//! The control socket protocol shared by `hbd` and `hbctl`.
//!
//! A Unix stream socket (`RUN_DIR/hbd.sock`) carrying length-delimited JSON
//! frames (tokio-serde): one [`Request`] from the client, one [`Response`] from the
//! daemon, then the daemon closes. JSON rather than bincode so that an `hbctl`
//! of another version still gets a readable answer or a clear error.
//!
//! Who may connect is checked with `SO_PEERCRED`: root, the daemon's own user,
//! and members of `cluster.toml` `[control] group`.

use crate::membership::{Counters, NodeStatus};
use crate::runtime::ping::PingNodeStatus;
use futures::{SinkExt, StreamExt};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use tokio::net::UnixStream;
use tokio_util::codec::{Framed, LengthDelimitedCodec};

/// Control socket file name inside the run dir.
pub const SOCKET_NAME: &str = "hbd.sock";
/// Pid file name inside the run dir.
pub const PID_NAME: &str = "hbd.pid";
/// Largest control frame either side accepts.
pub const MAX_FRAME: usize = 1 << 20;

pub fn socket_path(run_dir: &Path) -> PathBuf {
    run_dir.join(SOCKET_NAME)
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "request", rename_all = "snake_case")]
pub enum Request {
    Status,
    NodeStatus { node: String },
    ListNodes,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "response", rename_all = "snake_case")]
pub enum Response {
    Status(Box<Status>),
    NodeStatus(NodeStatus),
    Nodes { nodes: Vec<String> },
    Error { kind: ErrorKind, message: String },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// `SO_PEERCRED` says the caller may not use the socket.
    PermissionDenied,
    /// The request names something the daemon does not know.
    NotFound,
    /// The request could not be decoded.
    BadRequest,
}

/// The status document (`hbctl status --json`). Later subsystems add their
/// sections (`groups`, `vrrp`, `disks`) beside `nodes`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Status {
    /// This node.
    pub node: String,
    pub cluster: String,
    pub version: String,
    pub pid: u32,
    pub incarnation: u64,
    pub uptime_ms: u64,
    pub keepalive_ms: u64,
    pub deadtime_ms: u64,
    /// Every node of the node list, this one included.
    pub nodes: Vec<NodeStatus>,
    /// `ha.cf` `ping` nodes and `ping_group`s.
    pub ping_nodes: Vec<PingNodeStatus>,
    pub counters: Counters,
}

/// One framed JSON connection; `T` is what is read, `U` what is written.
pub type Connection<T, U> = tokio_serde::Framed<
    Framed<UnixStream, LengthDelimitedCodec>,
    T,
    U,
    tokio_serde::formats::Json<T, U>,
>;

/// Wraps a stream in the protocol's framing.
pub fn frame<T, U>(stream: UnixStream) -> Connection<T, U> {
    let codec = LengthDelimitedCodec::builder()
        .max_frame_length(MAX_FRAME)
        .new_codec();
    tokio_serde::Framed::new(
        Framed::new(stream, codec),
        tokio_serde::formats::Json::default(),
    )
}

/// Errors of [`call`].
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    #[error("cannot connect to {}: {source} (is hbd running? see --run-dir / --socket)", path.display())]
    Connect {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("control socket {}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("control socket {}: the daemon closed the connection without answering", path.display())]
    NoAnswer { path: PathBuf },
}

/// Sends one request and waits for its answer.
pub async fn call(path: &Path, request: Request) -> Result<Response, CallError> {
    let stream = UnixStream::connect(path)
        .await
        .map_err(|source| CallError::Connect {
            path: path.to_path_buf(),
            source,
        })?;
    let mut conn: Connection<Response, Request> = frame(stream);
    let io = |source| CallError::Io {
        path: path.to_path_buf(),
        source,
    };
    // If the daemon answered and closed before taking the whole request (it
    // should not, but an older one might), its answer is still ours to read.
    let sent = conn.send(request).await;
    match conn.next().await {
        Some(r) => r.map_err(io),
        None => Err(match sent {
            Err(e) => io(e),
            Ok(()) => CallError::NoAnswer {
                path: path.to_path_buf(),
            },
        }),
    }
}
