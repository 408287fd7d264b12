//! The control protocol of one device process (`hbd-disk RES`), shared by
//! the device, `hbctl disk`, the `drbddisk` agent and hbd's status.
//!
//! Each device process listens on `RUN_DIR/disk/RES.sock` (a Unix stream
//! socket, root only) with the same framing as hbd's control socket
//! (length-delimited JSON, [`crate::ctl::frame`]): one [`DiskRequest`], one
//! [`DiskResponse`], then the device closes.
//!
//! [`DiskRequest::Remote`] asks the device to pass a request to its peer's
//! device over an authenticated admin connection to the peer's replication
//! address (which the device accepts even while StandAlone), so one `hbctl`
//! can drive both nodes (`hbctl split-brain resolve`).

use super::state::{ConnState, DiskState, Role};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Sub-directory of the run dir that holds the devices' sockets, pid files,
/// logs and FUSE mount points.
pub const DISK_DIR: &str = "disk";

pub fn disk_dir(run_dir: &Path) -> PathBuf {
    run_dir.join(DISK_DIR)
}
pub fn socket_path(run_dir: &Path, res: &str) -> PathBuf {
    disk_dir(run_dir).join(format!("{res}.sock"))
}
pub fn pid_path(run_dir: &Path, res: &str) -> PathBuf {
    disk_dir(run_dir).join(format!("{res}.pid"))
}
/// The default run dir of `hbd`, `hbd-disk` and `hbctl` (`--run-dir`).
pub const DEFAULT_RUN_DIR: &str = "/run/hbd";
/// Where the device processes of the default run dir log.
pub const LOG_DIR: &str = "/var/log/hbd";

/// The log of a device process started by `hbctl disk up`, hbd or the
/// drbddisk agent (`hbd-disk --log-file`): `/var/log/hbd/disk-RES.log` for
/// the default run dir, not on tmpfs, rotated by logrotate (SIGHUP or
/// SIGUSR2 reopens it). Another run dir is another instance (a lab, a
/// test): its device logs stay beside its sockets, `RUN_DIR/disk/RES.log`,
/// so that two instances never write one file.
pub fn log_path(run_dir: &Path, res: &str) -> PathBuf {
    if run_dir == Path::new(DEFAULT_RUN_DIR) {
        Path::new(LOG_DIR).join(format!("disk-{res}.log"))
    } else {
        disk_dir(run_dir).join(format!("{res}.log"))
    }
}
/// Names the loop device while Primary, so that a device process started
/// after a crash can detach the stale one.
pub fn loop_record_path(run_dir: &Path, res: &str) -> PathBuf {
    disk_dir(run_dir).join(format!("{res}.loop"))
}
/// The FUSE mount point that serves the device file while Primary.
pub fn fuse_dir(run_dir: &Path, res: &str) -> PathBuf {
    disk_dir(run_dir).join(format!("{res}.fuse"))
}

/// One request to a device process.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "request", rename_all = "snake_case")]
pub enum DiskRequest {
    Status,
    /// Open the backing disk and its metadata (refused if corrupt).
    Attach,
    /// Close the backing disk (refused on a Primary without an UpToDate peer).
    Detach,
    /// Start connecting to the peer (StandAlone -> WFConnection).
    Connect {
        discard_my_data: bool,
    },
    /// Drop the connection (-> StandAlone).
    Disconnect,
    /// Promote; exposes the device (loop device + the configured path).
    Primary {
        force: bool,
    },
    /// Demote; waits until the device is released, then stops serving it.
    Secondary,
    /// Mark the local data Outdated (`drbdadm outdate`; Secondary only).
    Outdate,
    /// The peer's fence-peer handler asks (through both hbds: the built-in
    /// outdater, heartbeat's dopd) to outdate the local data. Refused on a
    /// Primary (the asker then outdates itself, code 6); done on an
    /// UpToDate or Consistent disk, also while still connected (the asker
    /// lost the link already); persistent.
    OutdateForPeer,
    /// Thaw I/O frozen by `fencing resource-and-stonith` although the peer
    /// is not known fenced (`drbdadm resume-io`).
    ResumeIo,
    /// Online verify against the peer.
    Verify,
    /// Full resync of the local disk from the peer.
    Invalidate,
    /// Full resync of the peer's disk from this one.
    InvalidateRemote,
    PauseSync,
    ResumeSync,
    /// Re-read drbd.conf and apply what changed (resync rate, after-sb
    /// policies); reattach/reconnect as configured.
    Adjust,
    /// Secondary, disconnect, detach, and the process exits.
    Down,
    /// Pass `forward` to the peer's device (admin connection).
    Remote {
        forward: Box<DiskRequest>,
    },
}

/// The answer of a device process.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum DiskResponse {
    /// Done; the status after the request.
    Done {
        status: Box<DiskStatus>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        message: Option<String>,
    },
    /// A state change DRBD would refuse ("peer is Primary", "local disk
    /// Outdated"...): nothing changed.
    Refused {
        message: String,
        status: Box<DiskStatus>,
    },
    /// Could not be carried out (I/O error, timeout, peer unreachable).
    Failed { message: String },
}

/// Resync progress.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SyncStatus {
    /// This node is the sync source.
    pub source: bool,
    pub full: bool,
    pub paused: bool,
    pub total_bytes: u64,
    pub done_bytes: u64,
    pub percent: f64,
    /// Bytes per second over the last few seconds.
    pub rate_bytes_per_sec: u64,
    /// The configured limit (resync-rate / syncer rate).
    pub limit_bytes_per_sec: u64,
    pub eta_secs: Option<u64>,
}

/// Online verify progress (`hbctl disk verify`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VerifyStatus {
    pub running: bool,
    pub done_bytes: u64,
    pub total_bytes: u64,
    /// Bytes found different (now marked out of sync).
    pub mismatched_bytes: u64,
}

/// What each side changed since the split (`hbctl split-brain`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SplitBrainStatus {
    /// When it was detected (unix ms).
    pub detected_unix_ms: u64,
    pub peer: String,
    /// Bytes this node changed since the split (its bitmap).
    pub my_changes_bytes: u64,
    pub peer_changes_bytes: u64,
    /// Last write on each side (unix ms), when known.
    pub my_last_write_unix_ms: Option<u64>,
    pub peer_last_write_unix_ms: Option<u64>,
}

/// /proc/drbd's counters (KiB unless said otherwise).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counters {
    /// Sent to the peer (replication and resync).
    pub ns: u64,
    /// Received from the peer.
    pub nr: u64,
    /// Written to the local disk.
    pub dw: u64,
    /// Read from the local disk.
    pub dr: u64,
    /// Activity-log updates (metadata writes).
    pub al: u64,
    /// Bitmap page writes.
    pub bm: u64,
    /// Requests to the peer not yet answered (count).
    pub pe: u64,
    /// Application requests in flight (count).
    pub ap: u64,
    /// Epochs (flushes) sent.
    pub ep: u64,
}

/// One device's state, as `hbctl disk status` and hbd's status show it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DiskStatus {
    pub name: String,
    pub node: String,
    pub peer: String,
    pub pid: u32,
    pub role: Role,
    pub peer_role: Role,
    pub disk: DiskState,
    pub peer_disk: DiskState,
    pub connection: ConnState,
    /// The configured device path (e.g. /dev/drbd0).
    pub device: PathBuf,
    /// The loop device behind it while Primary.
    pub loop_device: Option<PathBuf>,
    pub backing: PathBuf,
    /// Usable size (the data area before the internal metadata).
    pub size_bytes: u64,
    pub out_of_sync_bytes: u64,
    pub sync: Option<SyncStatus>,
    pub verify: Option<VerifyStatus>,
    pub split_brain: Option<SplitBrainStatus>,
    /// Generation UUIDs, 16 hex digits: current, bitmap, history 1 and 2.
    pub uuids: [String; 4],
    pub local_address: String,
    pub peer_address: String,
    pub counters: Counters,
    /// Unix ms of the last application write, if any since start.
    pub last_write_unix_ms: Option<u64>,
    /// The last error worth showing (metadata, link, handshake).
    pub last_error: Option<String>,
    /// The device has been Connected since its process started (the
    /// drbddisk agent waits for that, up to wfc-timeout, before it promotes
    /// a device it just started: as the drbd init script at boot).
    #[serde(default)]
    pub ever_connected: bool,
    /// At attach the metadata said this node went down as the Primary of a
    /// degraded cluster (Primary, not connected; DRBD's USE_DEGR_WFC_T):
    /// the drbddisk agent waits `degr-wfc-timeout` instead of
    /// `wfc-timeout` for the peer.
    #[serde(default)]
    pub degr_wfc: bool,
    /// I/O is frozen (`fencing resource-and-stonith`: the peer was lost
    /// while Primary and the fence-peer handler has not fenced it yet):
    /// writes are held, not failed. `hbctl disk resume-io` thaws.
    #[serde(default)]
    pub suspended: bool,
    /// The outcome of the last fence-peer handler, if one ran.
    #[serde(default)]
    pub fence_peer: Option<String>,
    /// Latencies of application writes since the device process started
    /// (for hbd's metrics); absent from an older device.
    #[serde(default)]
    pub latency: Option<DiskLatency>,
}

/// Upper bounds (seconds) of [`LatencyHistogram`]'s buckets: 100 µs to
/// about 13 s, doubling (the last, +Inf, is implied).
pub const LATENCY_BOUNDS: [f64; 18] = [
    0.0001, 0.0002, 0.0004, 0.0008, 0.0016, 0.0032, 0.0064, 0.0128, 0.0256, 0.0512, 0.1024, 0.2048,
    0.4096, 0.8192, 1.6384, 3.2768, 6.5536, 13.1072,
];

/// A latency histogram with the fixed buckets [`LATENCY_BOUNDS`], counted
/// in the device process and carried in its status: Prometheus's shape
/// (cumulative counts per upper bound, sum, count).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LatencyHistogram {
    /// Observations at or below each bound of [`LATENCY_BOUNDS`] (not
    /// cumulative; one more entry for above the last).
    pub buckets: Vec<u64>,
    pub sum_seconds: f64,
    pub count: u64,
}

impl LatencyHistogram {
    pub fn observe(&mut self, d: std::time::Duration) {
        let secs = d.as_secs_f64();
        if self.buckets.len() != LATENCY_BOUNDS.len() + 1 {
            self.buckets = vec![0; LATENCY_BOUNDS.len() + 1];
        }
        let i = LATENCY_BOUNDS
            .iter()
            .position(|&b| secs <= b)
            .unwrap_or(LATENCY_BOUNDS.len());
        self.buckets[i] += 1;
        self.sum_seconds += secs;
        self.count += 1;
    }

    /// `(upper bound, observations in that bucket)`, the last bound +Inf.
    pub fn per_bucket(&self) -> Vec<(f64, u64)> {
        LATENCY_BOUNDS
            .iter()
            .copied()
            .chain(std::iter::once(f64::INFINITY))
            .enumerate()
            .map(|(i, b)| (b, self.buckets.get(i).copied().unwrap_or(0)))
            .collect()
    }
}

/// The device's write latencies.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DiskLatency {
    /// An application write, from the call to its completion (local write,
    /// and the peer's acknowledgement while replicating).
    pub write: LatencyHistogram,
    /// A replicated write, from sending it to the peer to the peer's
    /// acknowledgement (protocol C: written there).
    pub ack: LatencyHistogram,
}

impl DiskStatus {
    /// Percent in sync, as hbd's status reports it (None when not syncing).
    pub fn sync_percent(&self) -> Option<f64> {
        self.sync.as_ref().map(|s| s.percent)
    }
}

/// Sends one request to the device of `res` and waits for its answer.
pub async fn call(
    run_dir: &Path,
    res: &str,
    request: DiskRequest,
) -> Result<DiskResponse, crate::ctl::CallError> {
    crate::ctl::call_json(&socket_path(run_dir, res), request).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_logs_leave_the_default_run_dir() {
        assert_eq!(
            log_path(Path::new("/run/hbd"), "r0"),
            Path::new("/var/log/hbd/disk-r0.log")
        );
        // Another instance (a lab): beside its sockets.
        assert_eq!(
            log_path(Path::new("/tmp/lab/n1/run"), "r0"),
            Path::new("/tmp/lab/n1/run/disk/r0.log")
        );
    }
}
