//! The control socket protocol shared by `hbd` and `hbctl`, and the text
//! `hbctl` renders the status document as ([`render`]).
//!
//! A Unix stream socket (`RUN_DIR/hbd.sock`) carrying length-delimited JSON
//! frames (tokio-serde): one [`Request`] from the client, one [`Response`] from the
//! daemon, then the daemon closes. JSON rather than bincode so that an `hbctl`
//! of another version still gets a readable answer or a clear error.
//!
//! Who may connect is checked with `SO_PEERCRED`: root, the daemon's own user,
//! and members of `cluster.toml` `[control] group`. The daemon waits at most
//! a second for the request ([`crate::runtime::control`]); callers bound the
//! whole call with [`call_within`].

pub use crate::groups::{Move, Scope};
use crate::membership::{Counters, NodeStatus};
use crate::wire::GroupState;
use futures::{SinkExt, StreamExt};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio::net::UnixStream;
use tokio_util::codec::{Framed, LengthDelimitedCodec};

pub mod render;

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
    NodeStatus {
        node: String,
    },
    ListNodes,
    /// hb_standby: give the groups in `scope` up to another node, and with
    /// `scope` all every VRRP instance too; `instance`: only that VRRP
    /// instance (priority 0, VIPs removed, no preemption until takeover).
    Standby {
        scope: Scope,
        /// Answer when they have moved (or could not), at most this long;
        /// `None`: answer at once.
        wait_ms: Option<u64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        instance: Option<String>,
    },
    /// hb_takeover: run the groups in `scope` here (and the VRRP instances,
    /// as for standby).
    Takeover {
        scope: Scope,
        wait_ms: Option<u64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        instance: Option<String>,
    },
    /// Forget that a group failed here.
    Clear {
        group: String,
    },
    /// The built-in peer outdater (heartbeat's dopd; asked by a local
    /// device's `fence-peer` handler): ask the peer's hbd, over every
    /// heartbeat medium, to mark its copy of `resource` Outdated. Answered
    /// with [`Response::Outdate`] carrying DRBD's fence-peer exit code.
    OutdatePeer {
        resource: String,
        /// Give up (code 5, peer unreachable) after this long.
        timeout_ms: u64,
    },
    /// Fence `node` now with this node's `stonith_host` devices (the
    /// operator's stonith_admin --fence); answered with [`Response::Fenced`]
    /// when an agent succeeded, an error when every one failed.
    Fence {
        node: String,
    },
    /// Stream every state change (`hbctl events`): answered with one
    /// [`Response::Event`] per event until the caller closes; with `now`,
    /// the current state first (`exists` events, then one `now`).
    Events {
        #[serde(default)]
        now: bool,
    },
    /// The Prometheus text of a scrape (`hbctl metrics`).
    Metrics,
    /// Where the daemon runs from: its configuration directory and node
    /// name (`hbctl disk` and `hbctl split-brain` use them).
    Daemon,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "response", rename_all = "snake_case")]
pub enum Response {
    Status(Box<Status>),
    NodeStatus(NodeStatus),
    Nodes {
        nodes: Vec<String>,
    },
    /// A standby/takeover/clear was accepted; with a wait, `moves` says where
    /// each group ended up.
    Done {
        groups: Vec<String>,
        moves: Vec<Move>,
    },
    Error {
        kind: ErrorKind,
        message: String,
    },
    /// The outcome of [`Request::OutdatePeer`] as a DRBD 8.4 fence-peer exit
    /// code: 3 peer's disk is Inconsistent (or older), 4 peer outdated, 5
    /// peer unreachable, 6 peer is Primary (outdate yourself), 7 peer fenced.
    Outdate {
        code: u8,
        message: String,
    },
    /// [`Request::Fence`] succeeded: which agent fenced `node`.
    Fenced {
        node: String,
        message: String,
    },
    /// One event of [`Request::Events`]'s stream.
    Event(crate::events::Event),
    /// [`Request::Metrics`]: the OpenMetrics text.
    Metrics {
        text: String,
    },
    /// [`Request::Daemon`].
    Daemon {
        node: String,
        config_dir: PathBuf,
        run_dir: PathBuf,
    },
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
    /// The request cannot be carried out now (peer dead, transition in
    /// progress, group failed there...); nothing was changed.
    Refused,
    /// Accepted, but not finished within the wait; it goes on.
    Timeout,
    /// Accepted, then failed (a start failed...).
    Failed,
}

/// A ping node's (or ping group's) reachability, as the status shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PingState {
    /// No reply yet and `deadping` has not passed since the start.
    Unknown,
    Up,
    Dead,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PingNodeStatus {
    /// The address, or the ping group's name.
    pub name: String,
    /// The member addresses of a ping group; empty for a plain ping node.
    pub members: Vec<std::net::Ipv4Addr>,
    pub state: PingState,
    pub last_reply_ms: Option<u64>,
}

/// One VRRP instance as `hbctl status` shows it (the VRRP runtime fills
/// it, `vrrp::runtime` re-exports it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VrrpStatus {
    pub name: String,
    pub vrid: u8,
    pub interface: String,
    /// MASTER, BACKUP, FAULT, INIT or STOP.
    pub state: String,
    /// The configured priority.
    pub priority: u8,
    /// With the script weights.
    pub effective_priority: u8,
    /// The master's address: this node's when MASTER, else the master last
    /// heard (none when it went silent or gave up).
    pub master: Option<String>,
    /// The virtual addresses (`virtual_ipaddress`, then
    /// `virtual_ipaddress_excluded`).
    pub vips: Vec<String>,
    /// VRRP datagrams dropped, per reason: `malformed`, `checksum`, `ttl`,
    /// `version`, `auth_type` (undecodable on this instance's interface:
    /// counted on each instance of the interface), and for adverts with
    /// this VRID `vrid`, `auth_password`, `interval`, `addresses`,
    /// `unicast_peer`, as keepalived checks them.
    #[serde(default)]
    pub drops: BTreeMap<String, u64>,
}

/// The status document (`hbctl status --json`). Later subsystems add their
/// sections (`groups`, `vrrp`, `disks`) beside `nodes`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
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
    /// The resource groups of haresources.
    #[serde(default)]
    pub groups: Vec<GroupStatus>,
    /// The replicated disks of drbd.conf, as their devices here answer.
    #[serde(default)]
    pub disks: Vec<DiskSummary>,
    /// The VRRP instances of keepalived.conf.
    #[serde(default)]
    pub vrrp: Vec<VrrpStatus>,
    pub counters: Counters,
    /// Split-brain avoidance as this node sees it: quorum, witness, ping
    /// tiebreaker, failure timeout. `None` from a daemon that predates it
    /// (and in VRRP mode).
    #[serde(default)]
    pub protection: Option<ProtectionStatus>,
}

/// Split-brain avoidance in the status document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProtectionStatus {
    /// This node is the quorum witness (`hbd --witness`).
    pub is_witness: bool,
    /// cluster.toml `[quorum] witness`; it is also listed in `nodes`.
    pub witness: Option<String>,
    pub wait_for_all: bool,
    /// Quorum as the group machine counts it.
    pub quorum: crate::groups::QuorumView,
    /// The ping tiebreaker, when on.
    pub tiebreaker: Option<TiebreakerStatus>,
    /// `[groups] failure_timeout`; `None`: only `hbctl clear`.
    pub failure_timeout_ms: Option<u64>,
    /// ha.cf `stonith_host` lines: nodes are fenced.
    pub fencing: bool,
    /// ha.cf `respawn ... dopd`: drbd.conf's fence-peer handler is the
    /// built-in peer outdater.
    pub builtin_outdater: bool,
}

/// The ping tiebreaker in the status document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TiebreakerStatus {
    pub settle_ms: u64,
    /// How many ping nodes (ping groups count once) there are.
    pub ping_nodes: u16,
    /// How many this node reaches now, and the settled count the group
    /// machine uses (`None` until a count has held for `settle`).
    pub reached: u16,
    pub settled: Option<u16>,
    /// The settled count of each node as this node knows it (this node's
    /// own, and the peers' from their reports when the group machine
    /// shares them).
    #[serde(default)]
    pub nodes: BTreeMap<String, u16>,
}

/// One replicated disk in the status document (`hbctl status --json`).
///
/// A device that does not answer (not up, or hung) is listed with role,
/// peer role `Unknown`, disks `DUnknown`, connection `Unconfigured` (the word
/// drbdadm prints for a resource that is down) and `error` saying why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DiskSummary {
    pub name: String,
    /// Primary, Secondary or Unknown.
    pub role: String,
    pub peer_role: String,
    /// Diskless ... UpToDate, DUnknown.
    pub disk: String,
    pub peer_disk: String,
    /// StandAlone ... SyncTarget, or Unconfigured.
    pub connection: String,
    pub out_of_sync_bytes: u64,
    /// Resync progress, while one runs.
    #[serde(default)]
    pub sync_percent: Option<f64>,
    /// Split brain detected and not resolved.
    #[serde(default)]
    pub split_brain: bool,
    /// Why the device did not answer.
    #[serde(default)]
    pub error: Option<String>,
}

impl DiskSummary {
    pub fn from_status(s: &crate::disk::ctl::DiskStatus) -> DiskSummary {
        DiskSummary {
            name: s.name.clone(),
            role: s.role.to_string(),
            peer_role: s.peer_role.to_string(),
            disk: s.disk.to_string(),
            peer_disk: s.peer_disk.to_string(),
            connection: s.connection.to_string(),
            out_of_sync_bytes: s.out_of_sync_bytes,
            sync_percent: s.sync_percent(),
            split_brain: s.split_brain.is_some(),
            error: None,
        }
    }

    /// A device that did not answer.
    pub fn unanswered(name: &str, error: String) -> DiskSummary {
        DiskSummary {
            name: name.to_string(),
            role: "Unknown".into(),
            peer_role: "Unknown".into(),
            disk: "DUnknown".into(),
            peer_disk: "DUnknown".into(),
            connection: "Unconfigured".into(),
            out_of_sync_bytes: 0,
            sync_percent: None,
            split_brain: false,
            error: Some(error),
        }
    }
}

/// One resource group in the status document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupStatus {
    /// Its first resource, as in haresources.
    pub id: String,
    /// Its preferred node.
    pub home: String,
    /// The node that runs it (starting, started, stopping or stop-failed).
    pub owner: Option<String>,
    /// The owner's state, or this node's when nobody runs it.
    pub state: GroupState,
    /// This node's state.
    pub local: GroupState,
    /// Every node's state as known here.
    pub nodes: BTreeMap<String, GroupState>,
    /// Where it should run now.
    pub desired: Option<String>,
    /// `standby` or `takeover` asked on this node.
    pub pref: Option<String>,
    /// Why it runs nowhere, when it does not.
    pub note: Option<String>,
    /// This node's resources, in start order.
    pub resources: Vec<ResourceStatus>,
    /// Why the group is unhealthy on this node (its checks failed), if it is.
    #[serde(default)]
    pub unhealthy: Option<String>,
    /// Every node where its checks failed, as known here.
    #[serde(default)]
    pub unhealthy_on: Vec<String>,
    /// The latest monitoring events of this group here (newest last).
    #[serde(default)]
    pub events: Vec<String>,
    /// The group's checks on this node (`[[check]]`, run while it is started here).
    #[serde(default)]
    pub checks: Vec<crate::monitor::scheduler::CheckStatus>,
    /// The group's jobs (`[[job]]`), as this node knows them.
    #[serde(default)]
    pub jobs: Vec<crate::jobs::JobStatus>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResourceStatus {
    pub spec: String,
    /// builtin, heartbeat, lsb or ocf.
    pub agent: String,
    /// On this node: stopped, starting, started, stopping, failed, stop-failed.
    pub state: GroupState,
    /// The last error of its agent here.
    pub error: Option<String>,
}

/// A `--json` output with its schema version ([`crate::events::SCHEMA`]):
/// an object gets a `schema` field; anything else (a list) is wrapped as
/// `{"schema": N, KEY: ...}`.
pub fn with_schema(key: &str, v: serde_json::Value) -> serde_json::Value {
    let schema = serde_json::Value::from(crate::events::SCHEMA);
    match v {
        serde_json::Value::Object(mut m) => {
            m.insert("schema".into(), schema);
            serde_json::Value::Object(m)
        }
        other => {
            let mut m = serde_json::Map::new();
            m.insert("schema".into(), schema);
            m.insert(key.into(), other);
            serde_json::Value::Object(m)
        }
    }
}

/// Opens an event stream (`hbctl events`): the connection, with the
/// request sent; read [`Response::Event`]s from it until it ends.
pub async fn subscribe(path: &Path, now: bool) -> Result<Connection<Response, Request>, CallError> {
    let stream = UnixStream::connect(path)
        .await
        .map_err(|source| CallError::Connect {
            path: path.to_path_buf(),
            source,
        })?;
    let mut conn: Connection<Response, Request> = frame(stream);
    // A refusal is answered without reading the request: read it anyway.
    let _ = conn.send(Request::Events { now }).await;
    Ok(conn)
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
    #[error("control socket {}: hbd did not answer within {} s", path.display(), seconds(*after))]
    Timeout { path: PathBuf, after: Duration },
}

/// `10`, `0.5`: seconds as an operator would write them.
fn seconds(d: Duration) -> String {
    if d.subsec_nanos() == 0 {
        d.as_secs().to_string()
    } else {
        format!("{}", d.as_secs_f64())
    }
}

/// [`call`], giving up after `limit`: connecting, sending and waiting for
/// the answer together (a hung daemon, or one whose every connection is
/// taken, never hangs the caller).
pub async fn call_within(
    path: &Path,
    request: Request,
    limit: Duration,
) -> Result<Response, CallError> {
    match tokio::time::timeout(limit, call(path, request)).await {
        Ok(r) => r,
        Err(_) => Err(CallError::Timeout {
            path: path.to_path_buf(),
            after: limit,
        }),
    }
}

/// Sends one request and waits for its answer.
pub async fn call(path: &Path, request: Request) -> Result<Response, CallError> {
    call_json(path, request).await
}

/// Sends one JSON request on a control-style socket and waits for its answer
/// (hbd's socket and the disk devices' sockets share the framing).
pub async fn call_json<Req, Resp>(path: &Path, request: Req) -> Result<Resp, CallError>
where
    Req: Serialize + Unpin,
    Resp: for<'de> Deserialize<'de> + Unpin,
{
    let stream = UnixStream::connect(path)
        .await
        .map_err(|source| CallError::Connect {
            path: path.to_path_buf(),
            source,
        })?;
    let mut conn: Connection<Resp, Req> = frame(stream);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_json_output_has_a_schema() {
        let v = with_schema("nodes", serde_json::json!(["n1", "n2"]));
        assert_eq!(v, serde_json::json!({"schema": 1, "nodes": ["n1", "n2"]}));
        let v = with_schema("status", serde_json::json!({"node": "n1"}));
        assert_eq!(v, serde_json::json!({"schema": 1, "node": "n1"}));
        // The status document read back with the field present.
        let s: serde_json::Value = serde_json::json!({
            "schema": 1, "node": "n1", "cluster": "hbd", "version": "0", "pid": 1,
            "incarnation": 1, "uptime_ms": 5, "keepalive_ms": 100, "deadtime_ms": 1000,
            "nodes": [], "ping_nodes": [], "counters": {"sent": 0, "received": 0, "dropped": {}}
        });
        let _: Status = serde_json::from_value(s).unwrap();
    }
}
