//! The device process of one resource (`hbd-disk RES`): the connection
//! state machine ([`super::state`]) driven by real I/O.
//!
//! It keeps the backing disk and its metadata ([`super::meta`]: generation
//! UUIDs, flags, bitmap, activity log), talks to the peer's device over one
//! authenticated TCP link ([`super::link`]), replicates application writes
//! with protocol C, resyncs out-of-sync blocks and runs online verify (every
//! decision of those two in [`super::resync`]; here only their I/O), and while
//! Primary serves the device as a FUSE file behind a loop device
//! ([`super::expose`]). `hbctl disk` talks to it over a Unix socket
//! ([`super::ctl`]).
//!
//! # Threads and locks
//!
//! FUSE server threads call [`Device::app_write`] and friends (blocking).
//! Everything else runs on a small tokio runtime. One mutex (`core`) guards
//! the state machine, the metadata and the bitmap; it is never held across
//! network waits or while exposing/closing the device (whose I/O comes back
//! through FUSE into this process). Lock order: `core`, then a link's
//! `inflight`.
//!
//! # Ordering
//!
//! Application writes and resync data from the same node share one ordered
//! channel, and the receiver applies frames strictly in order. A resync read
//! holds `io_order` exclusively and application writes hold it shared from
//! submission to local completion, so the peer can never apply resync data
//! older than a write it already applied. While the handshake runs
//! (WFReportParams, WFBitMapS/T) application writes wait, as DRBD freezes I/O,
//! so no write can fall between the two bitmaps.
//!
//! # Differences from DRBD 8.4
//!
//! One TCP connection instead of two (data and meta); the node listed first in
//! drbd.conf connects, the other accepts. No diskless Primary: `detach` on a
//! Primary is refused, and a Primary never becomes SyncTarget (demote first);
//! a Primary whose disk fails (`on-io-error detach`) goes Diskless but serves
//! no I/O through the peer (EIO) until demoted and attached again.
//! Only protocol C. Write-path decisions (on-io-error, ko-count, when an
//! extent leaves the activity log, metadata fail-stop) are in
//! [`super::datapath`].

use std::collections::VecDeque;
use std::fs::File;
use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc as std_mpsc, Arc, Condvar, Mutex, MutexGuard, RwLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use futures::{SinkExt, StreamExt};
use sha2::Digest;
use tokio::net::{TcpListener, UnixListener};
use tokio::sync::{mpsc, Notify};
use tokio_util::sync::CancellationToken;

use super::conf::{HostConf, ResourceConf};
use super::ctl::{
    self, Counters, DiskRequest, DiskResponse, DiskStatus, SplitBrainStatus, SyncStatus,
    VerifyStatus,
};
use super::datapath::{
    self, IoSite, KoTracker, MetaGuard, MetaWrite, PeerFlush, Retirement, TransferLog,
};
use super::expose::{self, BlockStore, Exposed, FileStore};
use super::link::{self, Frame, MAX_DATA};
use super::meta::{
    self, ActivityLog, Bitmap, Meta, MetaError, AL_EXTENT, AL_MAX_EXTENTS, BM_BLOCK,
};
use super::resync::{self, Geometry, Reject, TargetStep, VerifyStep};
use super::state::{
    Attached, ConnState, DiskState, Event, Input, Output, Resource, ResourceConfig, Role,
};
use super::uuid::{self, SbPolicy};
use crate::config::NotifyConfig;
use crate::wire::{AuthKey, AuthMethod};
use tokio_util::codec::{Framed, LengthDelimitedCodec};

/// Resync rate when drbd.conf sets none (DRBD 8.4's dynamic controller
/// ramps up to c-max-rate, 100 MiB/s by default).
pub const DEFAULT_RESYNC_RATE: u64 = 100 << 20;
/// Keepalive on an idle link (DRBD's ping-int, shorter: failover waits on it).
pub const PING_INTERVAL: Duration = Duration::from_millis(500);
/// A link that delivered nothing for this long is dead (DRBD's
/// ping-timeout and timeout, together).
pub const LINK_TIMEOUT: Duration = Duration::from_secs(3);
/// Between connection attempts (DRBD's connect-int).
pub const CONNECT_INTERVAL: Duration = Duration::from_millis(500);
pub use super::datapath::{MAX_IN_FLIGHT, MAX_TRANSFER_LOG};
/// How long `secondary` waits for the device to be released.
pub const RELEASE_TIMEOUT: Duration = Duration::from_secs(10);
/// How often dirty bitmap pages are written.
const BITMAP_WRITEBACK: Duration = Duration::from_secs(1);

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// Monotonic time for the sans-IO machines' `now` (one origin per process).
fn mono() -> Duration {
    static ORIGIN: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    ORIGIN.get_or_init(Instant::now).elapsed()
}

/// A [`resync`] verdict: `Ignore` is logged and dropped, `Violation` ends
/// the link.
fn accept<T>(verdict: Result<T, Reject>) -> io::Result<Option<T>> {
    match verdict {
        Ok(v) => Ok(Some(v)),
        Err(r @ Reject::Ignore { .. }) => {
            tracing::warn!("{r}");
            Ok(None)
        }
        Err(r) => Err(link::LinkError::Malformed(r.to_string()).into()),
    }
}

/// Milliseconds on a monotonic clock (for [`datapath`]'s `now`).
fn mono_ms() -> u64 {
    static START: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    START.get_or_init(Instant::now).elapsed().as_millis() as u64
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Everything the device needs from the configuration.
#[derive(Debug, Clone)]
pub struct DeviceConfig {
    pub name: String,
    pub node: String,
    pub peer: String,
    pub config_dir: PathBuf,
    pub run_dir: PathBuf,
    pub res: ResourceConf,
    pub host: HostConf,
    pub peer_host: HostConf,
    pub key: AuthKey,
    pub notify: Option<NotifyConfig>,
    /// This node's `on` section comes first in drbd.conf: it connects, and
    /// wins ties (DRBD's lower node id).
    pub first: bool,
}

impl DeviceConfig {
    /// Load `dir`'s configuration (as hbd does) and pick resource `res`.
    pub fn load(dir: &Path, node: &str, run_dir: &Path, res: &str) -> Result<DeviceConfig, String> {
        let c = crate::config::load(dir, node).map_err(|e| e.to_string())?;
        let drbd = c.drbd.as_ref().ok_or_else(|| {
            format!(
                "no drbd.conf in {} (nor [disk] drbd_conf in cluster.toml)",
                dir.display()
            )
        })?;
        let r = drbd.resource(res).ok_or_else(|| {
            let names: Vec<&str> = drbd.resources.iter().map(|r| r.name.as_str()).collect();
            format!("no resource {res} (resources: {})", names.join(", "))
        })?;
        let host = r
            .host(node)
            .ok_or_else(|| format!("{res}: no `on {node}` section"))?;
        let peer_host = r
            .peer(node)
            .ok_or_else(|| format!("{res}: no `on` section for a peer of {node}"))?;
        let key = match &r.shared_secret {
            Some(s) => AuthKey {
                id: 0,
                method: AuthMethod::Sha256,
                secret: s.as_bytes().to_vec(),
            },
            None => c
                .authkeys
                .keys
                .iter()
                .find(|k| k.id == c.authkeys.active)
                .cloned()
                .ok_or_else(|| "authkeys has no active key".to_string())?,
        };
        let first = r.hosts.first().is_some_and(|h| h.name == node);
        Ok(DeviceConfig {
            name: res.to_string(),
            node: node.to_string(),
            peer: peer_host.name.clone(),
            config_dir: dir.to_path_buf(),
            run_dir: run_dir.to_path_buf(),
            res: r.clone(),
            host: host.clone(),
            peer_host: peer_host.clone(),
            key,
            notify: c.notify.clone(),
            first,
        })
    }

    pub fn resync_rate(&self) -> u64 {
        self.res
            .resync_rate
            .filter(|&r| r > 0)
            .unwrap_or(DEFAULT_RESYNC_RATE)
    }

    fn machine_config(&self) -> ResourceConfig {
        ResourceConfig {
            policy: SbPolicy {
                after_sb_0pri: self.res.after_sb_0pri,
                after_sb_1pri: self.res.after_sb_1pri,
                after_sb_2pri: self.res.after_sb_2pri,
                always_asbp: false,
            },
            i_am_lower_id: self.first,
            fencing: self.res.fencing != super::conf::Fencing::DontCare,
            seed: meta::random_u64(),
        }
    }

    fn local_addr(&self) -> SocketAddr {
        SocketAddr::V4(self.host.address)
    }
    fn peer_addr(&self) -> SocketAddr {
        SocketAddr::V4(self.peer_host.address)
    }
}

fn to_meta_uuids(u: uuid::Uuids) -> meta::Uuids {
    meta::Uuids {
        current: u.current,
        bitmap: u.bitmap,
        history: u.history,
    }
}
fn from_meta_uuids(u: meta::Uuids) -> uuid::Uuids {
    uuid::Uuids {
        current: u.current,
        bitmap: u.bitmap,
        history: u.history,
    }
}

/// The attached backing disk.
struct Local {
    meta: Meta,
    file: File,
    store: Arc<FileStore>,
    bitmap: Bitmap,
    al: ActivityLog,
    /// DRBD's USE_DEGR_WFC_T, decided at attach before the flags change.
    degr_wfc: bool,
}

impl Local {
    /// Open the backing disk: metadata (refused if absent or corrupt),
    /// bitmap, activity-log recovery (hot extents of a crashed Primary
    /// become out of sync).
    fn open(cfg: &DeviceConfig) -> Result<(Local, Attached), String> {
        let disk = &cfg.host.disk;
        let err = |e: MetaError| format!("{}: {e}", disk.display());
        let (meta, file) = meta::open(disk).map_err(err)?;
        let l = meta.layout;
        let mut bitmap = meta::read_bitmap(&file, &l).map_err(err)?;
        let rec = ActivityLog::recover(&file, &l).map_err(err)?;
        for &ext in &rec.extents {
            let off = ext * AL_EXTENT;
            if off < l.data_size {
                bitmap.set_range(off, AL_EXTENT.min(l.data_size - off));
            }
        }
        if !rec.extents.is_empty() {
            tracing::info!(
                extents = rec.extents.len(),
                "activity log: hot extents of the last Primary marked out of sync"
            );
            meta::write_bitmap(&file, &l, &bitmap).map_err(err)?;
            bitmap.take_dirty_pages();
        }
        let mut al = ActivityLog::new(AL_MAX_EXTENTS, rec.seq + 1).map_err(err)?;
        // Extents leave only after both nodes flushed them (`writeback`).
        al.cool_only();
        // An empty transaction: the recovered extents are in the bitmap now.
        al.write_transaction(&file, &l).map_err(err)?;
        let store = Arc::new(
            FileStore::open(disk, l.data_size).map_err(|e| format!("{}: {e}", disk.display()))?,
        );
        // drbd_adm_attach: Consistent if MDF_CONSISTENT (Outdated unless it
        // was UpToDate), else Inconsistent; Consistent becomes UpToDate when
        // the peer is known outdated or fencing is off.
        let f = meta.flags;
        let mut state = if !f.consistent {
            DiskState::Inconsistent
        } else if f.was_up_to_date {
            DiskState::Consistent
        } else {
            DiskState::Outdated
        };
        if state == DiskState::Consistent
            && (f.peer_outdated || cfg.res.fencing == super::conf::Fencing::DontCare)
        {
            state = DiskState::UpToDate;
        }
        // drbd_adm_attach: the Primary of a degraded cluster (primary
        // indicator set, connected indicator clear) waits degr-wfc-timeout.
        let degr_wfc = f.primary_ind && !f.connected_ind;
        let attached = Attached {
            uuids: from_meta_uuids(meta.uuids),
            disk: state,
            bits_set: bitmap.count(),
            crashed_primary: f.crashed_primary,
        };
        Ok((
            Local {
                meta,
                file,
                store,
                bitmap,
                al,
                degr_wfc,
            },
            attached,
        ))
    }

    fn write_dirty_bitmap(&mut self, counters: &mut Counters) -> Result<(), MetaError> {
        let pages = self.bitmap.take_dirty_pages();
        if pages.is_empty() {
            return Ok(());
        }
        counters.bm += pages.len() as u64;
        let r = meta::write_bitmap_pages(&self.file, &self.meta.layout, &self.bitmap, &pages);
        if r.is_err() {
            // Kept for the next writeback: a failed write must not lose bits.
            self.bitmap.redirty_pages(&pages);
        }
        r
    }

    /// The activity-log transaction a write's `mark` asked for: the bitmap
    /// pages of evicted extents first (all dirty pages after an earlier
    /// failure, which may have left an evicted extent's page unwritten).
    fn al_transaction(
        &mut self,
        m: &meta::AlMark,
        counters: &mut Counters,
        after_failure: bool,
    ) -> Result<(), MetaError> {
        if after_failure {
            self.write_dirty_bitmap(counters)?;
        }
        let mut pages = Vec::new();
        for e in &m.evicted {
            pages.extend(self.meta.layout.bm_pages_for_extent(*e));
        }
        if !pages.is_empty() {
            pages.sort_unstable();
            pages.dedup();
            meta::write_bitmap_pages(&self.file, &self.meta.layout, &self.bitmap, &pages)?;
            counters.bm += pages.len() as u64;
        }
        self.al.write_transaction(&self.file, &self.meta.layout)?;
        counters.al += 1;
        Ok(())
    }

    /// Every extent of the activity log, as data ranges: after a failed
    /// flush, the writes that may be lost lie in them.
    fn hot_ranges(&self) -> Vec<(u64, u64)> {
        let size = self.meta.layout.data_size;
        self.al
            .hot_extents()
            .into_iter()
            .map(|e| e * AL_EXTENT)
            .filter(|&off| off < size)
            .map(|off| (off, AL_EXTENT.min(size - off)))
            .collect()
    }

    /// Clean close: bitmap, empty activity log, superblock.
    fn close(
        &mut self,
        counters: &mut Counters,
        last_write_ms: Option<u64>,
    ) -> Result<(), MetaError> {
        self.meta.last_write_ms = last_write_ms.unwrap_or(self.meta.last_write_ms);
        self.store.flush()?;
        self.write_dirty_bitmap(counters)?;
        self.al.close(&self.file, &self.meta.layout)?;
        meta::write_superblock(&self.file, &self.meta)
    }
}

/// Runs [`Device::link_lost`] when the link task ends, whichever way: a
/// panic in a frame handler unwinds through it, so FUSE writers waiting on
/// `Inflight` are still released and the machine still hears
/// TransportLost (issue 12, finding 8).
struct LinkGuard {
    dev: Arc<Device>,
    peer: Arc<PeerTx>,
    err: Option<io::Error>,
}

impl Drop for LinkGuard {
    fn drop(&mut self) {
        if std::thread::panicking() {
            tracing::error!("the link task panicked: dropping the connection");
            self.err = Some(io::Error::other("the link task panicked"));
        }
        self.dev.link_lost(&self.peer, self.err.take());
    }
}

/// Result of one request to the peer as seen by the blocking caller.
type Done = std_mpsc::SyncSender<bool>;

struct Inflight {
    /// Every decision about sequence numbers, acks and barriers.
    tl: TransferLog,
    /// The blocked callers of the requests in `tl`, by seq.
    waiters: std::collections::HashMap<u64, Done>,
    /// Start times of the requests in flight (`timeout` × `ko-count`).
    ko: KoTracker,
    /// Why a waiter gave up on the peer (the watchdog drops the link).
    abort: Option<String>,
}

/// The sending side of one established link.
struct PeerTx {
    epoch: u64,
    /// Writes, barriers and resync data: one ordered, bounded channel.
    data_tx: tokio::sync::Mutex<mpsc::Sender<Frame>>,
    /// Everything else (acks, state messages, bitmaps): never blocks.
    ctrl_tx: mpsc::UnboundedSender<Frame>,
    inflight: Mutex<Inflight>,
    room: Condvar,
    dead: AtomicBool,
    cancel: CancellationToken,
}

impl PeerTx {
    fn live(&self) -> bool {
        !self.dead.load(Ordering::Acquire)
    }

    fn ctrl(&self, f: Frame) {
        let _ = self.ctrl_tx.send(f);
    }

    /// Register a write or barrier and queue its frame; `None` if the link
    /// is gone. Blocking: call from plain threads.
    fn submit(
        &self,
        make: impl FnOnce(u64) -> Frame,
        range: Option<(u64, u64)>,
    ) -> Option<std_mpsc::Receiver<bool>> {
        futures::executor::block_on(async {
            let tx = self.data_tx.lock().await;
            let (done, wait) = std_mpsc::sync_channel(1);
            let seq = {
                let mut inf = lock(&self.inflight);
                // Bounded: a peer that answers nothing within timeout ×
                // ko-count is dropped, which ends the wait.
                let deadline = inf.ko.deadline(mono_ms());
                while !inf.tl.is_dead() && !inf.tl.has_room() {
                    let now = mono_ms();
                    if deadline.is_some_and(|d| now >= d) {
                        inf.abort.get_or_insert_with(|| {
                            "no room for requests to the peer within timeout × ko-count".into()
                        });
                        return None;
                    }
                    let wait = deadline.map_or(Duration::from_secs(1), |d| {
                        Duration::from_millis(d.saturating_sub(now).clamp(1, 1000))
                    });
                    inf = self
                        .room
                        .wait_timeout(inf, wait)
                        .unwrap_or_else(|p| p.into_inner())
                        .0;
                }
                let seq = match range {
                    Some((off, len)) => inf.tl.write(off, len),
                    None => inf.tl.flush(),
                }?;
                inf.waiters.insert(seq, done);
                inf.ko.start(seq, mono_ms());
                seq
            };
            let _ = tx.send(make(seq)).await;
            Some(wait)
        })
    }

    /// Queue a data-channel frame without a completion (resync data).
    async fn send_data(&self, f: Frame) {
        let tx = self.data_tx.lock().await;
        let _ = tx.send(f).await;
    }

    fn complete(&self, seq: u64, barrier: bool) -> io::Result<()> {
        let mut inf = lock(&self.inflight);
        let answered = if barrier {
            inf.tl.flush_ack(seq)
        } else {
            inf.tl.ack(seq)
        };
        if let Err(e) = answered {
            return Err(link::LinkError::Malformed(e.to_string()).into());
        }
        // `tl` and `waiters` change under one lock: a request in flight
        // has its waiter.
        let done = inf.waiters.remove(&seq);
        inf.ko.done(seq);
        drop(inf);
        self.room.notify_all();
        if let Some(done) = done {
            let _ = done.send(true);
        }
        Ok(())
    }

    /// Wait for a request's answer, at most until the peer would be dropped
    /// (`timeout` × `ko-count`, then the watchdog in `run_link` drops it
    /// and every waiter gets `false`). `false`: no answer.
    fn wait_done(&self, w: std_mpsc::Receiver<bool>) -> bool {
        loop {
            let bound = lock(&self.inflight).ko.window();
            let Some(bound) = bound else {
                return w.recv().unwrap_or(false);
            };
            match w.recv_timeout(bound + bound / 2) {
                Ok(v) => return v,
                Err(std_mpsc::RecvTimeoutError::Disconnected) => return false,
                Err(std_mpsc::RecvTimeoutError::Timeout) => {
                    self.give_up("a request to the peer was not answered within timeout × ko-count")
                }
            }
        }
    }

    /// Ask the watchdog to drop this link.
    fn give_up(&self, why: &str) {
        lock(&self.inflight)
            .abort
            .get_or_insert_with(|| why.to_string());
    }

    /// Why the link must be dropped now, if it must (the watchdog's check).
    fn overdue(&self, now: u64) -> Option<String> {
        let inf = lock(&self.inflight);
        if let Some(why) = &inf.abort {
            return Some(why.clone());
        }
        inf.ko.overdue(now).map(|o| {
            format!(
                "the peer left request {} unanswered for {} ms (timeout × ko-count): dropping it",
                o.seq, o.age
            )
        })
    }

    /// The peer no longer takes writes (its disk is gone): the ranges it
    /// acknowledged but never flushed, to mark out of sync.
    fn drain_unflushed(&self) -> Vec<(u64, u64)> {
        lock(&self.inflight).tl.drain_unflushed()
    }

    /// The link is gone: fail every waiter; returns the ranges that may not
    /// have reached the peer's stable storage.
    fn teardown(&self) -> Vec<(u64, u64)> {
        let mut inf = lock(&self.inflight);
        self.dead.store(true, Ordering::Release);
        let ranges = inf.tl.teardown();
        inf.ko = KoTracker::new(Duration::ZERO, 0);
        for (_, done) in inf.waiters.drain() {
            let _ = done.send(false);
        }
        drop(inf);
        self.room.notify_all();
        ranges
    }
}

#[derive(Debug, Clone)]
struct SyncTrack {
    source: bool,
    full: bool,
    total_bits: u64,
    /// (when, bits left) samples for the rate.
    samples: VecDeque<(Instant, u64)>,
    started: Instant,
}

struct Core {
    sm: Resource,
    local: Option<Local>,
    link: Option<Arc<PeerTx>>,
    epoch: u64,
    /// The peer's bitmap as received (chunks, then whole).
    bitmap_rx: Vec<u8>,
    peer_bitmap: Option<Bitmap>,
    /// Our side of a bitmap exchange is pending (sent, waiting for the peer's).
    exchanging: bool,
    sync: Option<SyncTrack>,
    /// The resync decisions of this node's side ([`resync`]).
    target: Option<resync::Target>,
    source: Option<resync::Source>,
    verify: Option<resync::Verify>,
    split_brain: Option<SplitBrainStatus>,
    counters: Counters,
    last_write_ms: Option<u64>,
    peer_last_write_ms: Option<u64>,
    last_error: Option<String>,
    ever_connected: bool,
    /// Notices to hand to the notify hook once the lock is released.
    notices: Vec<(String, String)>,
    /// Failed metadata writes: promotion is refused while any is failing.
    meta: MetaGuard,
}

impl Core {
    fn frozen(&self) -> bool {
        matches!(
            self.sm.conn(),
            ConnState::WFReportParams | ConnState::WFBitMapS | ConnState::WFBitMapT
        )
    }

    /// The link application writes are replicated on, if any.
    fn replicating(&self) -> Option<Arc<PeerTx>> {
        let peer_disk = self.sm.peer_disk();
        let ok = matches!(
            self.sm.conn(),
            ConnState::Connected
                | ConnState::SyncSource
                | ConnState::PausedSyncS
                | ConnState::SyncTarget
                | ConnState::PausedSyncT
        ) && peer_disk >= DiskState::Inconsistent
            && peer_disk != DiskState::DUnknown;
        if ok {
            self.link.clone().filter(|l| l.live())
        } else {
            None
        }
    }

    /// Mark a range out of sync locally.
    fn mark(&mut self, offset: u64, len: u64) {
        if let Some(s) = self.source.as_mut() {
            s.note_mark(offset, len);
        }
        if let Some(l) = self.local.as_mut() {
            if l.bitmap.set_range(offset, len) > 0 {
                let n = l.bitmap.count();
                let _ = self.sm.handle(Input::BitsSet(n));
            }
        }
    }

    fn bits(&self) -> u64 {
        self.local.as_ref().map_or(0, |l| l.bitmap.count())
    }

    fn ctrl(&self, f: Frame) {
        if let Some(l) = &self.link {
            l.ctrl(f);
        }
    }

    /// Keep the superblock's flags in step with the states. A failed write
    /// leaves the old (on-disk) values in memory, so the next call retries,
    /// and is remembered in `meta` (no promotion meanwhile).
    fn sync_flags(&mut self) -> Result<(), String> {
        self.persist_state(None)
    }

    /// Write the superblock for the state of `sm` (default: the machine's
    /// own), if it differs from what is on disk.
    fn persist_state(&mut self, sm: Option<&Resource>) -> Result<(), String> {
        let sm = sm.unwrap_or(&self.sm);
        let (role, disk, peer_disk) = (sm.role(), sm.disk(), sm.peer_disk());
        let conn = sm.conn();
        let crashed = sm.params().crashed_primary || role == Role::Primary;
        let Some(l) = self.local.as_mut() else {
            return Ok(());
        };
        if disk == DiskState::Diskless {
            return Ok(());
        }
        let mut f = l.meta.flags;
        f.consistent = matches!(
            disk,
            DiskState::Outdated | DiskState::Consistent | DiskState::UpToDate
        );
        f.was_up_to_date = disk == DiskState::UpToDate;
        f.crashed_primary = crashed;
        f.peer_outdated = peer_disk == DiskState::Outdated;
        // __drbd_set_state: MDF_CONNECTED_IND past the handshake,
        // MDF_PRIMARY_IND while Primary (for degr-wfc-timeout at attach).
        f.connected_ind = conn > ConnState::WFReportParams;
        f.primary_ind = role == Role::Primary;
        let uuids = to_meta_uuids(sm.uuids());
        if f != l.meta.flags || uuids != l.meta.uuids {
            let mut m = l.meta.clone();
            m.flags = f;
            m.uuids = uuids;
            m.last_write_ms = self.last_write_ms.unwrap_or(0);
            match meta::write_superblock(&l.file, &m) {
                Ok(()) => {
                    l.meta = m;
                    self.meta.written(MetaWrite::Superblock);
                }
                Err(e) => {
                    tracing::error!(error = %e, "writing the superblock");
                    let msg = format!("writing the superblock: {e}");
                    self.meta.failed(MetaWrite::Superblock, &msg);
                    self.last_error = Some(msg.clone());
                    return Err(msg);
                }
            }
        }
        Ok(())
    }
}

/// One resource's device.
pub struct Device {
    cfg: Mutex<DeviceConfig>,
    core: Mutex<Core>,
    /// Signalled when the connection state or the activity log changes.
    changed: Condvar,
    io_order: RwLock<()>,
    exposed: Mutex<Option<Exposed>>,
    rt: tokio::runtime::Handle,
    shutdown: CancellationToken,
    /// Wakes the resync and verify drivers.
    wake: Notify,
    /// Starts an activity-log aging round now (the log is full).
    wake_writeback: Notify,
    data_size: u64,
    this: std::sync::Weak<Device>,
}

/// The FUSE side of the device.
struct DevStore(Arc<Device>);

impl BlockStore for DevStore {
    fn size(&self) -> u64 {
        self.0.data_size
    }
    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        self.0.app_read(buf, offset)
    }
    fn write_at(&self, data: &[u8], offset: u64) -> io::Result<()> {
        self.0.app_write(data, offset)
    }
    fn flush(&self) -> io::Result<()> {
        self.0.app_flush()
    }
}

fn eio(msg: impl Into<String>) -> io::Error {
    io::Error::other(msg.into())
}

impl Device {
    /// Attach the backing disk (refusing corrupt or missing metadata). The
    /// device is Secondary and StandAlone until [`Device::run`].
    pub fn open(cfg: DeviceConfig, rt: tokio::runtime::Handle) -> Result<Arc<Device>, String> {
        let (local, attached) = Local::open(&cfg)?;
        let data_size = local.meta.layout.data_size;
        tracing::info!(
            resource = %cfg.name,
            disk = %attached.disk,
            uuids = ?attached.uuids,
            out_of_sync = attached.bits_set * BM_BLOCK,
            "attached {}",
            cfg.host.disk.display()
        );
        let last_write = (local.meta.last_write_ms > 0).then_some(local.meta.last_write_ms);
        let sm = Resource::new(cfg.machine_config(), Some(attached));
        Ok(Arc::new_cyclic(|this| Device {
            cfg: Mutex::new(cfg),
            core: Mutex::new(Core {
                sm,
                local: Some(local),
                link: None,
                epoch: 0,
                bitmap_rx: Vec::new(),
                peer_bitmap: None,
                exchanging: false,
                sync: None,
                target: None,
                source: None,
                verify: None,
                split_brain: None,
                counters: Counters::default(),
                last_write_ms: last_write,
                peer_last_write_ms: None,
                last_error: None,
                ever_connected: false,
                notices: Vec::new(),
                meta: MetaGuard::default(),
            }),
            changed: Condvar::new(),
            io_order: RwLock::new(()),
            exposed: Mutex::new(None),
            rt,
            shutdown: CancellationToken::new(),
            wake: Notify::new(),
            wake_writeback: Notify::new(),
            data_size,
            this: this.clone(),
        }))
    }

    fn cfg(&self) -> DeviceConfig {
        lock(&self.cfg).clone()
    }

    fn core(&self) -> MutexGuard<'_, Core> {
        lock(&self.core)
    }

    /// Feed one input and carry out the machine's outputs.
    fn input(&self, c: &mut Core, i: Input) -> Result<(), String> {
        let r = c.sm.handle(i);
        self.apply(c);
        r
    }

    /// Drain the state machine's outputs.
    fn apply(&self, c: &mut Core) {
        loop {
            let outs = c.sm.take_outputs();
            if outs.is_empty() {
                break;
            }
            for o in outs {
                match o {
                    Output::Send(m) => c.ctrl(Frame::Ctrl(m)),
                    Output::PersistUuids(_) => {}
                    Output::ExchangeBitmap { full } => self.start_exchange(c, full),
                    Output::Event(e) => self.on_event(c, e),
                }
            }
        }
        if let Err(m) = c.sync_flags() {
            // A metadata write error is a local I/O error (DRBD_META_IO_ERROR).
            self.local_io_error(c, IoSite::Meta, false, &m);
        }
        self.changed.notify_all();
    }

    fn on_event(&self, c: &mut Core, e: Event) {
        let name = lock(&self.cfg).name.clone();
        match &e {
            Event::Conn { from, to } => {
                tracing::info!(resource = %name, "conn( {from} -> {to} )");
                if *to == ConnState::StandAlone {
                    if let Some(l) = c.link.take() {
                        l.cancel.cancel();
                    }
                }
                if *to >= ConnState::Connected {
                    c.split_brain = None;
                    c.last_error = None;
                    c.ever_connected = true;
                }
                let syncing = matches!(
                    to,
                    ConnState::SyncSource
                        | ConnState::SyncTarget
                        | ConnState::PausedSyncS
                        | ConnState::PausedSyncT
                );
                if !syncing {
                    c.sync = None;
                    c.target = None;
                    c.source = None;
                }
                if *to != ConnState::Connected {
                    if let Some(v) = c.verify.as_mut() {
                        v.abort();
                    }
                }
                if *to < ConnState::Connected {
                    c.exchanging = false;
                    c.peer_bitmap = None;
                    c.bitmap_rx.clear();
                }
            }
            Event::Role { from, to } => tracing::info!(resource = %name, "role( {from} -> {to} )"),
            Event::Disk { from, to } => tracing::info!(resource = %name, "disk( {from} -> {to} )"),
            Event::PeerRole(r) => tracing::info!(resource = %name, "peer( {r} )"),
            Event::PeerDisk(d) => tracing::info!(resource = %name, "pdsk( {d} )"),
            Event::NewCurrentUuid(u) => {
                tracing::info!(resource = %name, "new current UUID {u:016X}")
            }
            Event::Handshake { rule, decision } => {
                tracing::info!(resource = %name, "uuid_compare()={decision:?} by rule {rule}")
            }
            Event::SplitBrain {
                my_changes,
                peer_changes,
                recovered,
            } => match recovered {
                Some(how) => {
                    if *how == uuid::SbRecovery::Manual {
                        tracing::warn!(resource = %name, "Split-Brain detected, manually solved (discard-my-data)");
                    } else {
                        tracing::warn!(resource = %name, "Split-Brain detected, automatically solved: {how:?}");
                    }
                    c.notices.push((
                        "split-brain-recovered".into(),
                        format!("recovered by after-sb policy: {how:?}"),
                    ));
                }
                None => {
                    tracing::error!(
                        resource = %name,
                        my_changes, peer_changes,
                        "Split-Brain detected, dropping connection!"
                    );
                    let peer = lock(&self.cfg).peer.clone();
                    c.split_brain = Some(SplitBrainStatus {
                        detected_unix_ms: now_ms(),
                        peer,
                        my_changes_bytes: my_changes * BM_BLOCK,
                        peer_changes_bytes: peer_changes * BM_BLOCK,
                        my_last_write_unix_ms: c.last_write_ms,
                        peer_last_write_unix_ms: c.peer_last_write_ms,
                    });
                    c.notices.push((
                        "split-brain".into(),
                        format!(
                            "split brain: this node changed {} bytes, the peer {} bytes; \
                             resolve with hbctl split-brain resolve {name} --survivor NODE",
                            my_changes * BM_BLOCK,
                            peer_changes * BM_BLOCK
                        ),
                    ));
                }
            },
            Event::HandshakeFailed(why) => {
                tracing::error!(resource = %name, "handshake failed: {why}");
                c.last_error = Some(why.clone());
            }
            Event::SyncStarted { source, full, bits } => {
                tracing::info!(resource = %name, source, full, bytes = bits * BM_BLOCK, "resync started");
                let mut samples = VecDeque::new();
                samples.push_back((Instant::now(), *bits));
                c.sync = Some(SyncTrack {
                    source: *source,
                    full: *full,
                    total_bits: *bits,
                    samples,
                    started: Instant::now(),
                });
                let geo = Geometry::new(self.data_size);
                if *source {
                    c.source = Some(resync::Source::new(geo));
                    c.target = None;
                } else {
                    c.target = Some(resync::Target::new(geo));
                    c.source = None;
                }
                if !*source {
                    let dev = self.me();
                    let epoch = c.epoch;
                    self.rt.spawn(async move { dev.resync_target(epoch).await });
                }
            }
            Event::SyncProgress { .. } => {}
            Event::SyncFinished { source } => {
                let secs = c
                    .sync
                    .as_ref()
                    .map_or(0.0, |s| s.started.elapsed().as_secs_f64());
                tracing::info!(resource = %name, source, secs, "resync done");
                c.sync = None;
                if let Some(l) = c.local.as_mut() {
                    if let Err(e) = l.write_dirty_bitmap(&mut c.counters) {
                        tracing::error!(error = %e, "writing the bitmap");
                    }
                }
            }
        }
    }

    /// A local I/O error: `on-io-error` decides ([`datapath::on_io_error`]);
    /// this carries out the disk side (detach, handler, fail-stop). Callers
    /// mark the affected ranges out of sync first, while the disk is still
    /// attached, and answer the application as the result says.
    fn local_io_error(
        &self,
        c: &mut Core,
        site: IoSite,
        peer_acked: bool,
        msg: &str,
    ) -> datapath::IoActions {
        let policy = lock(&self.cfg).res.on_io_error;
        let a = datapath::on_io_error(datapath::IoError {
            policy,
            site,
            primary: c.sm.role() == Role::Primary,
            peer_up_to_date: c.sm.conn() >= ConnState::Connected
                && c.sm.peer_disk() == DiskState::UpToDate,
            peer_acked,
        });
        if c.local.is_none() {
            return a;
        }
        tracing::error!(?site, ?policy, error = msg, actions = ?a, "local I/O error");
        c.last_error = Some(format!("local I/O error ({site:?}): {msg}"));
        if a.run_handler {
            c.notices.push(("local-io-error".into(), msg.to_string()));
        }
        if a.fail_stop_meta {
            c.meta.failed(
                MetaWrite::Disk,
                format!("the local disk failed and cannot be detached: {msg}"),
            );
        }
        if a.detach {
            self.detach_failed(c);
        } else if a.mark_out_of_sync && site != IoSite::Meta {
            // pass_on (or a Primary that cannot detach): the disk stays,
            // its data is no longer consistent.
            let _ = self.input(c, Input::LocalIoError);
        }
        a
    }

    /// on-io-error detach: the local disk goes Diskless. Its metadata is
    /// first marked not consistent (best effort: the disk is failing), with
    /// the bitmap, so a later attach is Inconsistent and resyncs what the
    /// bits say from the peer.
    fn detach_failed(&self, c: &mut Core) {
        let mut counters = c.counters.clone();
        if let Some(l) = c.local.as_mut() {
            let _ = l.write_dirty_bitmap(&mut counters);
            l.meta.flags.consistent = false;
            l.meta.flags.was_up_to_date = false;
            if let Err(e) = meta::write_superblock(&l.file, &l.meta) {
                tracing::error!(error = %e, "marking the failed disk inconsistent");
            }
        }
        c.counters = counters;
        match self.input(c, Input::Detach) {
            Ok(()) => {
                tracing::error!("Local IO failed: detached, now Diskless");
                c.local = None;
                self.changed.notify_all();
            }
            Err(m) => {
                tracing::error!("Local IO failed, cannot detach: {m}");
                c.meta
                    .failed(MetaWrite::Disk, format!("cannot detach: {m}"));
            }
        }
    }

    /// An `Arc` of this device (the device always lives in one).
    fn me(&self) -> Arc<Device> {
        self.this.upgrade().expect("the device lives in an Arc")
    }

    fn start_exchange(&self, c: &mut Core, full: bool) {
        let Some(l) = c.local.as_mut() else { return };
        if full {
            l.bitmap.set_all();
        }
        let pages = l.bitmap.to_pages();
        let chunks: Vec<&[u8]> = pages.chunks(MAX_DATA).collect();
        let n = chunks.len();
        for (i, ch) in chunks.into_iter().enumerate() {
            c.ctrl(Frame::Bitmap {
                data: ch.to_vec(),
                last: i + 1 == n,
            });
        }
        if n == 0 {
            c.ctrl(Frame::Bitmap {
                data: vec![],
                last: true,
            });
        }
        c.exchanging = true;
        self.finish_exchange(c);
    }

    fn finish_exchange(&self, c: &mut Core) {
        if !c.exchanging || c.peer_bitmap.is_none() {
            return;
        }
        let pb = c.peer_bitmap.take().expect("checked");
        c.exchanging = false;
        let Some(l) = c.local.as_mut() else { return };
        if let Err(e) = l.bitmap.merge(&pb) {
            c.last_error = Some(e.to_string());
            let _ = self.input(c, Input::Disconnect);
            return;
        }
        if let Err(e) = meta::write_bitmap(&l.file, &l.meta.layout, &l.bitmap) {
            tracing::error!(error = %e, "writing the bitmap");
        }
        l.bitmap.take_dirty_pages();
        c.counters.bm += l.bitmap.pages();
        let bits = l.bitmap.count();
        let _ = self.input(c, Input::BitmapExchanged { bits });
    }

    // ---- application I/O (FUSE threads) ----

    fn app_read(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        let store = {
            let mut c = self.core();
            c.counters.dr += buf.len() as u64 / 1024;
            c.local.as_ref().map(|l| l.store.clone())
        };
        match store {
            Some(s) => s.read_at(buf, offset).inspect_err(|e| {
                let mut c = self.core();
                self.local_io_error(&mut c, IoSite::DataRead, false, &e.to_string());
            }),
            None => Err(eio("no local disk")),
        }
    }

    fn app_write(&self, data: &[u8], offset: u64) -> io::Result<()> {
        // Resync data requested before this write must never overwrite it
        // (unreachable while a Primary is never SyncTarget; `write_chunk`
        // takes `io_order` after this, so data being applied lands first).
        if let Some(t) = self.core().target.as_mut() {
            t.note_local_write(offset, data.len() as u64);
        }
        let mut off = offset;
        for chunk in data.chunks(MAX_DATA) {
            self.write_chunk(chunk, off)?;
            off += chunk.len() as u64;
        }
        Ok(())
    }

    /// How long a write may wait for the handshake or for room in the
    /// activity log: until a peer that does not answer would be dropped
    /// (`timeout` × `ko-count`, once and a half), at least 10 s.
    fn wait_bound(&self) -> Duration {
        let cfg = lock(&self.cfg);
        KoTracker::new(cfg.res.timeout, cfg.res.ko_count.max(1))
            .deadline(0)
            .map_or(Duration::from_secs(10), |d| {
                Duration::from_millis(d).max(Duration::from_secs(10))
            })
    }

    fn write_chunk(&self, data: &[u8], offset: u64) -> io::Result<()> {
        let len = data.len() as u64;
        let started = Instant::now();
        let bound = self.wait_bound();
        let (store, peer) = {
            let mut c = self.core();
            loop {
                if c.local.is_none() {
                    return Err(eio("no local disk"));
                }
                if c.sm.role() != Role::Primary {
                    return Err(io::Error::from_raw_os_error(libc::EROFS));
                }
                if c.frozen() {
                    // I/O is frozen while the handshake runs; a handshake the
                    // peer does not finish in time costs the connection.
                    if started.elapsed() >= bound {
                        if let Some(l) = &c.link {
                            l.give_up("the handshake did not finish within timeout × ko-count");
                        }
                    }
                    c = self
                        .changed
                        .wait_timeout(c, Duration::from_millis(100))
                        .unwrap_or_else(|p| p.into_inner())
                        .0;
                    continue;
                }
                let core = &mut *c;
                let after_failure = !core.meta.healthy();
                let l = core.local.as_mut().expect("checked");
                match l.al.mark(offset, len) {
                    Ok(m) => {
                        if m.transaction_needed {
                            if let Err(e) = l.al_transaction(&m, &mut core.counters, after_failure)
                            {
                                // Undo the mark: a failed transaction must not
                                // leak the slots (every later write would block).
                                l.al.complete(offset, len);
                                let msg = format!("activity log transaction: {e}");
                                core.meta.failed(MetaWrite::ActivityLog, &msg);
                                self.local_io_error(core, IoSite::Meta, false, &msg);
                                self.changed.notify_all();
                                return Err(eio(msg));
                            }
                            core.meta.written(MetaWrite::ActivityLog);
                        }
                        break;
                    }
                    Err(MetaError::AlFull(_)) => {
                        if started.elapsed() >= bound {
                            return Err(eio(format!(
                                "activity log full for {bound:?}: no write completed"
                            )));
                        }
                        self.wake_writeback.notify_one();
                        c = self
                            .changed
                            .wait_timeout(c, Duration::from_millis(100))
                            .unwrap_or_else(|p| p.into_inner())
                            .0;
                    }
                    Err(e) => return Err(io::Error::other(e)),
                }
            }
            let peer = c.replicating();
            if peer.is_none() {
                c.mark(offset, len);
            }
            c.counters.ap += 1;
            let store = c.local.as_ref().expect("checked").store.clone();
            (store, peer)
        };
        let (result, acked) = match peer {
            Some(p) => {
                if lock(&p.inflight).tl.needs_barrier() {
                    // Bound the transfer log: a barrier covers everything before it.
                    let _ = self.app_flush();
                }
                let order = self.io_order.read().unwrap_or_else(|p| p.into_inner());
                let wait = p.submit(
                    |seq| Frame::Write {
                        seq,
                        offset,
                        data: data.to_vec(),
                    },
                    Some((offset, len)),
                );
                let r = store.write_at(data, offset);
                drop(order);
                let acked = wait.is_some_and(|w| p.wait_done(w));
                if !acked {
                    self.core().mark(offset, len);
                } else {
                    self.core().counters.ns += len / 1024;
                }
                (r, acked)
            }
            None => {
                let _order = self.io_order.read().unwrap_or_else(|p| p.into_inner());
                (store.write_at(data, offset), false)
            }
        };
        let mut c = self.core();
        if let Some(l) = c.local.as_mut() {
            l.al.complete(offset, len);
        }
        c.counters.ap = c.counters.ap.saturating_sub(1);
        c.counters.dw += len / 1024;
        c.last_write_ms = Some(now_ms());
        let result = match result {
            Ok(()) => Ok(()),
            Err(e) => {
                // The local copy is stale even if the peer acked: mark it
                // (before a detach drops the bitmap with the disk).
                c.mark(offset, len);
                let a = self.local_io_error(&mut c, IoSite::DataWrite, acked, &e.to_string());
                if a.fail_app {
                    Err(e)
                } else {
                    Ok(())
                }
            }
        };
        self.changed.notify_all();
        result
    }

    fn app_flush(&self) -> io::Result<()> {
        let (store, peer) = {
            let mut c = self.core();
            c.counters.ep += 1;
            let store = c.local.as_ref().map(|l| l.store.clone());
            (store, c.replicating())
        };
        let wait = peer
            .as_ref()
            .and_then(|p| p.submit(|seq| Frame::Flush { seq }, None));
        let r = match store {
            Some(s) => s.flush(),
            None => Err(eio("no local disk")),
        };
        if let (Some(p), Some(w)) = (peer, wait) {
            // Bounded; a peer that does not answer is dropped and its
            // unflushed writes are marked out of sync.
            p.wait_done(w);
        }
        if let Err(e) = &r {
            let mut c = self.core();
            // Which writes the failed flush lost is unknown: every extent of
            // the activity log may hold one.
            let ranges = c.local.as_ref().map(|l| l.hot_ranges()).unwrap_or_default();
            for (o, n) in ranges {
                c.mark(o, n);
            }
            self.local_io_error(&mut c, IoSite::DataFlush, false, &e.to_string());
        }
        r
    }

    // ---- the link ----

    /// Accept connections on the replication address: the peer's `Join`
    /// (when this node is the acceptor) and admin requests.
    async fn listen(self: Arc<Device>, listener: TcpListener) {
        loop {
            let (stream, from) = tokio::select! {
                r = listener.accept() => match r {
                    Ok(x) => x,
                    Err(e) => {
                        tracing::warn!(error = %e, "accept");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                },
                _ = self.shutdown.cancelled() => return,
            };
            let dev = self.clone();
            tokio::spawn(async move {
                if let Err(e) = dev.clone().on_accept(stream).await {
                    tracing::debug!(%from, error = %e, "incoming connection");
                }
            });
        }
    }

    async fn on_accept(self: Arc<Device>, stream: tokio::net::TcpStream) -> io::Result<()> {
        let cfg = self.cfg();
        let mut link = link::accept(stream, &cfg.key).await?;
        match tokio::time::timeout(LINK_TIMEOUT, link::recv(&mut link)).await {
            Err(_) => Err(io::Error::new(io::ErrorKind::TimedOut, "no request")),
            Ok(Err(e)) => Err(e),
            Ok(Ok(Frame::Admin { resource, json })) => {
                let resp = if resource != cfg.name {
                    DiskResponse::Failed {
                        message: format!("no resource {resource} here"),
                    }
                } else {
                    match serde_json::from_str::<DiskRequest>(&json) {
                        Ok(DiskRequest::Remote { .. }) => DiskResponse::Failed {
                            message: "a forwarded request cannot be forwarded again".into(),
                        },
                        Ok(req) => {
                            let dev = self.clone();
                            tokio::task::spawn_blocking(move || dev.request(req))
                                .await
                                .unwrap_or_else(|e| DiskResponse::Failed {
                                    message: e.to_string(),
                                })
                        }
                        Err(e) => DiskResponse::Failed {
                            message: format!("bad request: {e}"),
                        },
                    }
                };
                let json = serde_json::to_string(&resp).unwrap_or_default();
                link::send(&mut link, &Frame::AdminReply { json }).await
            }
            Ok(Ok(Frame::Join {
                resource,
                node,
                data_size,
                last_write_ms,
            })) => {
                let refuse = if resource != cfg.name || node != cfg.peer {
                    Some(format!("{node}/{resource} is not my peer"))
                } else if cfg.first {
                    Some("I connect to you, not the other way".into())
                } else {
                    let c = self.core();
                    (c.sm.conn() != ConnState::WFConnection || c.link.is_some())
                        .then(|| format!("not accepting a connection ({})", c.sm.conn()))
                };
                if let Some(msg) = refuse {
                    let _ = link::send(&mut link, &Frame::error(msg.clone())).await;
                    return Err(io::Error::other(msg));
                }
                link::send(&mut link, &self.join_frame()).await?;
                self.establish(link, data_size, last_write_ms);
                Ok(())
            }
            Ok(Ok(f)) => Err(link::unexpected(f, "Join or Admin")),
        }
    }

    fn join_frame(&self) -> Frame {
        let cfg = lock(&self.cfg);
        Frame::Join {
            resource: cfg.name.clone(),
            node: cfg.node.clone(),
            data_size: self.data_size,
            last_write_ms: self.core().last_write_ms,
        }
    }

    /// The first node keeps trying to connect while WFConnection.
    async fn connector(self: Arc<Device>) {
        loop {
            tokio::select! {
                _ = tokio::time::sleep(CONNECT_INTERVAL) => {}
                _ = self.shutdown.cancelled() => return,
            }
            let want = {
                let c = self.core();
                c.sm.conn() == ConnState::WFConnection && c.link.is_none()
            };
            if !want {
                continue;
            }
            let cfg = self.cfg();
            match self.clone().try_connect(&cfg).await {
                Ok(()) => {}
                Err(e) => tracing::debug!(error = %e, "connecting to {}", cfg.peer_addr()),
            }
        }
    }

    async fn try_connect(self: Arc<Device>, cfg: &DeviceConfig) -> io::Result<()> {
        let mut link = link::connect(cfg.peer_addr(), &cfg.key, LINK_TIMEOUT).await?;
        link::send(&mut link, &self.join_frame()).await?;
        match tokio::time::timeout(LINK_TIMEOUT, link::recv(&mut link)).await {
            Err(_) => Err(io::Error::new(io::ErrorKind::TimedOut, "no answer to Join")),
            Ok(Err(e)) => Err(e),
            Ok(Ok(Frame::Join {
                data_size,
                last_write_ms,
                ..
            })) => {
                self.establish(link, data_size, last_write_ms);
                Ok(())
            }
            Ok(Ok(f)) => Err(link::unexpected(f, "Join")),
        }
    }

    /// Make `link` the replication link and start the handshake.
    ///
    /// Generic over the transport (TCP in the device, an in-memory pipe in
    /// the unit tests); authentication happened before.
    fn establish<T>(
        &self,
        link: Framed<T, LengthDelimitedCodec>,
        peer_size: u64,
        peer_last_write: Option<u64>,
    ) where
        T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin + 'static,
    {
        let mut c = self.core();
        if c.sm.conn() != ConnState::WFConnection || c.link.is_some() {
            return;
        }
        if peer_size != self.data_size {
            let msg = format!(
                "the peer's disk size differs ({peer_size} bytes, mine {} bytes): not connecting",
                self.data_size
            );
            tracing::error!("{msg}");
            c.last_error = Some(msg);
            let _ = self.input(&mut c, Input::Disconnect);
            return;
        }
        c.epoch += 1;
        let (data_tx, data_rx) = mpsc::channel(MAX_IN_FLIGHT);
        let (ctrl_tx, ctrl_rx) = mpsc::unbounded_channel();
        let peer = Arc::new(PeerTx {
            epoch: c.epoch,
            data_tx: tokio::sync::Mutex::new(data_tx),
            ctrl_tx,
            inflight: Mutex::new(Inflight {
                tl: TransferLog::default(),
                waiters: Default::default(),
                ko: {
                    let cfg = lock(&self.cfg);
                    KoTracker::new(cfg.res.timeout, cfg.res.ko_count)
                },
                abort: None,
            }),
            room: Condvar::new(),
            dead: AtomicBool::new(false),
            cancel: CancellationToken::new(),
        });
        c.link = Some(peer.clone());
        c.peer_last_write_ms = peer_last_write;
        c.bitmap_rx.clear();
        c.peer_bitmap = None;
        c.exchanging = false;
        let dev = self.me();
        self.rt
            .spawn(async move { dev.run_link(link, peer, data_rx, ctrl_rx).await });
        let _ = self.input(&mut c, Input::TransportUp);
    }

    async fn run_link<T>(
        self: Arc<Device>,
        link: Framed<T, LengthDelimitedCodec>,
        peer: Arc<PeerTx>,
        mut data_rx: mpsc::Receiver<Frame>,
        mut ctrl_rx: mpsc::UnboundedReceiver<Frame>,
    ) where
        T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin + 'static,
    {
        let (mut sink, mut stream) = link.split();
        let writer = async {
            let mut ping = tokio::time::interval(PING_INTERVAL);
            loop {
                let f = tokio::select! {
                    biased;
                    _ = peer.cancel.cancelled() => {
                        // Dropped on purpose (disconnect, a failed handshake):
                        // what was queued still goes out, so the peer sees our
                        // last state (and detects a split brain itself).
                        while let Ok(f) = ctrl_rx.try_recv() {
                            link::send(&mut sink, &f).await?;
                        }
                        let _ = sink.close().await;
                        return Ok(());
                    }
                    f = ctrl_rx.recv() => f,
                    f = data_rx.recv() => f,
                    _ = ping.tick() => Some(Frame::Ping),
                };
                let Some(f) = f else {
                    return Ok::<(), io::Error>(());
                };
                link::send(&mut sink, &f).await?;
            }
        };
        let reader = async {
            loop {
                let f = match tokio::time::timeout(LINK_TIMEOUT, link::recv(&mut stream)).await {
                    Ok(f) => f?,
                    Err(_) => {
                        return Err::<(), io::Error>(io::Error::new(
                            io::ErrorKind::TimedOut,
                            format!("the peer sent nothing for {LINK_TIMEOUT:?}"),
                        ))
                    }
                };
                self.clone().on_frame(&peer, f).await?;
            }
        };
        // DRBD's request timer: a write or flush the peer leaves unanswered
        // for timeout × ko-count drops it, even while its pings flow (a
        // hung disk on the peer). Its writes are then marked out of sync.
        let watchdog = async {
            let tick = {
                let cfg = lock(&self.cfg);
                (cfg.res.timeout / 2).clamp(Duration::from_millis(50), Duration::from_secs(1))
            };
            loop {
                tokio::time::sleep(tick).await;
                if let Some(why) = peer.overdue(mono_ms()) {
                    return io::Error::new(io::ErrorKind::TimedOut, why);
                }
            }
        };
        // However this task ends (also by a panic in `on_frame`, unwinding
        // through here), the guard tears the link down.
        let mut guard = LinkGuard {
            dev: self.clone(),
            peer: peer.clone(),
            err: None,
        };
        guard.err = tokio::select! {
            r = writer => r.err(),
            r = reader => r.err(),
            e = watchdog => Some(e),
            _ = self.shutdown.cancelled() => None,
        };
    }

    /// The link task ended (`err`: why): fail every waiting writer, mark
    /// what may not have reached the peer, tell the machine.
    fn link_lost(&self, peer: &PeerTx, err: Option<io::Error>) {
        let ranges = peer.teardown();
        let mut c = self.core();
        for (o, l) in ranges {
            c.mark(o, l);
        }
        if let Some(e) = &err {
            tracing::warn!(error = %e, "connection to the peer lost");
        }
        if c.link.as_ref().is_some_and(|l| l.epoch == peer.epoch) {
            c.link = None;
            if let Some(e) = err {
                c.last_error = Some(format!("link: {e}"));
            }
            let _ = self.input(&mut c, Input::TransportLost);
        }
        self.wake.notify_waiters();
        drop(c);
        self.flush_notices();
    }

    async fn on_frame(self: Arc<Device>, peer: &Arc<PeerTx>, f: Frame) -> io::Result<()> {
        #[cfg(test)]
        if matches!(&f, Frame::Error { msg } if msg == tests::INJECT_PANIC) {
            panic!("injected panic in the link task");
        }
        match f {
            Frame::Ping => peer.ctrl(Frame::PingAck),
            Frame::PingAck => {}
            Frame::Ctrl(m) => {
                let mut c = self.core();
                let _ = self.input(&mut c, Input::Peer(m));
                drop(c);
                self.flush_notices();
            }
            Frame::Write { seq, offset, data } => {
                let len = data.len() as u64;
                if !self.in_range(offset, len) {
                    return Err(link::LinkError::Malformed("write range".into()).into());
                }
                let store = self.core().local.as_ref().map(|l| l.store.clone());
                let r = match store {
                    Some(store) => {
                        tokio::task::spawn_blocking(move || store.write_at(&data, offset))
                            .await
                            .map_err(io::Error::other)?
                    }
                    None => Err(eio("no local disk")),
                };
                {
                    let mut c = self.core();
                    match &r {
                        Ok(()) => {
                            c.counters.nr += len / 1024;
                            c.counters.dw += len / 1024;
                            c.last_write_ms = Some(now_ms());
                        }
                        Err(e) => {
                            c.mark(offset, len);
                            self.local_io_error(&mut c, IoSite::DataWrite, false, &e.to_string());
                        }
                    }
                }
                if r.is_err() {
                    // DRBD's NegAck: the Primary has the data and marks the
                    // block, so a resync brings it here later.
                    peer.ctrl(Frame::OutOfSync { offset, len });
                }
                peer.ctrl(Frame::Ack { seq });
            }
            Frame::Flush { seq } => {
                // Without a disk (detached) nothing acked earlier is known to
                // be stable here: fail, and the Primary marks what this
                // flush would have covered (its transfer log).
                let store = self.target_store()?;
                let r = tokio::task::spawn_blocking(move || store.flush())
                    .await
                    .map_err(io::Error::other)?;
                if let Err(e) = r {
                    let mut c = self.core();
                    self.local_io_error(&mut c, IoSite::DataFlush, false, &e.to_string());
                    return Err(e);
                }
                peer.ctrl(Frame::FlushAck { seq });
            }
            Frame::Ack { seq } => peer.complete(seq, false)?,
            Frame::FlushAck { seq } => peer.complete(seq, true)?,
            Frame::Bitmap { data, last } => {
                let mut c = self.core();
                if c.bitmap_rx.len() + data.len() > (self.data_size / BM_BLOCK / 8 + 8192) as usize
                {
                    return Err(link::LinkError::Malformed("bitmap too long".into()).into());
                }
                c.bitmap_rx.extend_from_slice(&data);
                if last {
                    let bits = self.data_size / BM_BLOCK;
                    let pages = std::mem::take(&mut c.bitmap_rx);
                    let bm = Bitmap::from_pages(bits, &pages)
                        .map_err(|e| link::LinkError::Malformed(e.to_string()))?;
                    c.peer_bitmap = Some(bm);
                    self.finish_exchange(&mut c);
                }
            }
            Frame::OutOfSync { offset, len } => {
                if self.in_range(offset, len) {
                    self.core().mark(offset, len);
                }
            }
            Frame::RsReq { offset, len } => {
                let verdict = {
                    let mut c = self.core();
                    let conn = c.sm.conn();
                    match c.source.as_mut() {
                        Some(s) => s.on_rs_req(conn, offset, len),
                        None => Err(resync::stray(self.geometry(), "RsReq", offset, len, false)),
                    }
                };
                let Some(range) = accept(verdict)? else {
                    return Ok(());
                };
                let store = self.target_store()?;
                let dev = self.clone();
                let p = peer.clone();
                // Served off the reader (not awaited): the exclusive
                // `io_order` waits for application writes in submission,
                // which wait for acks only this reader can deliver.
                drop(tokio::task::spawn_blocking(move || {
                    // range.len() <= MAX_DATA: a bounded allocation.
                    let mut buf = vec![0u8; range.len() as usize];
                    let r = {
                        let _order = dev.io_order.write().unwrap_or_else(|p| p.into_inner());
                        store.read_at(&mut buf, range.offset()).map(|()| {
                            futures::executor::block_on(p.send_data(Frame::RsData {
                                offset: range.offset(),
                                data: buf,
                            }))
                        })
                    };
                    let mut c = dev.core();
                    if let Some(s) = c.source.as_mut() {
                        s.data_queued();
                    }
                    match r {
                        Ok(()) => {
                            c.counters.dr += range.len() / 1024;
                            c.counters.ns += range.len() / 1024;
                        }
                        Err(e) => {
                            tracing::error!(error = %e, "reading resync data: dropping the connection");
                            c.last_error = Some(format!("reading resync data: {e}"));
                            p.cancel.cancel();
                        }
                    }
                }));
            }
            Frame::RsData { offset, data } => {
                let dev = self.clone();
                let batch = tokio::task::spawn_blocking(move || dev.apply_rs_data(offset, &data))
                    .await
                    .map_err(io::Error::other)??;
                self.wake.notify_waiters();
                if let Some(t) = batch {
                    self.ack_resync(peer, t).await?;
                }
            }
            Frame::RsAck { offset, len } => {
                let mut c = self.core();
                let conn = c.sm.conn();
                let core = &mut *c;
                let verdict = match (core.source.as_mut(), core.local.as_mut()) {
                    (Some(s), Some(l)) => s.on_rs_ack(conn, offset, len, &mut l.bitmap),
                    _ => Err(resync::stray(self.geometry(), "RsAck", offset, len, true)),
                };
                if accept(verdict)?.is_some() {
                    self.progress(&mut c);
                }
            }
            Frame::RsDone => {
                let mut c = self.core();
                let conn = c.sm.conn();
                let verdict = match c.source.as_ref() {
                    Some(s) => s.on_rs_done(conn),
                    None => Err(Reject::ignore("RsDone", "no resync running")),
                };
                if accept(verdict)?.is_some() {
                    let _ = self.input(&mut c, Input::SyncDone);
                }
                drop(c);
                self.flush_notices();
            }
            Frame::OvReq { offset, digests } => {
                let verdict = {
                    let c = self.core();
                    resync::ov_request(
                        self.geometry(),
                        c.sm.conn(),
                        c.sm.disk(),
                        offset,
                        digests.len(),
                    )
                };
                let Some(range) = accept(verdict)? else {
                    return Ok(());
                };
                let store = self.target_store()?;
                let differing = tokio::task::spawn_blocking(move || {
                    // range.len() <= MAX_DATA, one digest per block.
                    let mut buf = vec![0u8; range.len() as usize];
                    store.read_at(&mut buf, range.offset())?;
                    Ok::<_, io::Error>(diff_blocks(&buf, &digests))
                })
                .await
                .map_err(io::Error::other)??;
                let mut c = self.core();
                for &i in &differing {
                    if let Ok(b) = range.block(i) {
                        c.mark(b.offset(), b.len());
                    }
                }
                c.counters.dr += range.len() / 1024;
                peer.ctrl(Frame::OvReply {
                    offset: range.offset(),
                    len: range.len(),
                    differing,
                });
            }
            Frame::OvReply {
                offset,
                len,
                differing,
            } => {
                let mut c = self.core();
                let core = &mut *c;
                let verdict = match (core.verify.as_mut(), core.local.as_mut()) {
                    (Some(v), Some(l)) => {
                        v.on_reply(mono(), offset, len, &differing, &mut l.bitmap)
                    }
                    _ => Err(resync::stray(self.geometry(), "OvReply", offset, len, true)),
                };
                if accept(verdict)?.is_some() {
                    let n = c.bits();
                    let _ = c.sm.handle(Input::BitsSet(n));
                }
                drop(c);
                self.wake.notify_waiters();
            }
            Frame::Error { msg } => return Err(link::LinkError::Peer(msg).into()),
            f => return Err(link::unexpected(f, "a link frame")),
        }
        Ok(())
    }

    /// SyncTarget: one `RsData` (blocking: holds `io_order` exclusively so
    /// that an application write noted after the verdict lands after this
    /// data). Returns a flush ticket when an acknowledgement batch is due.
    fn apply_rs_data(&self, offset: u64, data: &[u8]) -> io::Result<Option<resync::FlushTicket>> {
        let len = data.len() as u64;
        let _order = self.io_order.write().unwrap_or_else(|p| p.into_inner());
        let (verdict, store) = {
            let mut c = self.core();
            let (role, conn) = (c.sm.role(), c.sm.conn());
            let core = &mut *c;
            let verdict = match (core.target.as_mut(), core.local.as_ref()) {
                (Some(t), Some(l)) => t.on_rs_data(role, conn, &l.bitmap, offset, len),
                _ => Err(resync::stray(self.geometry(), "RsData", offset, len, true)),
            };
            (verdict, core.local.as_ref().map(|l| l.store.clone()))
        };
        let Some(acc) = accept(verdict)? else {
            return Ok(None);
        };
        let store = store.ok_or_else(|| eio("no local disk"))?;
        for w in &acc.writes {
            store.write_at(&data[w.within(acc.request)], w.offset())?;
        }
        let mut c = self.core();
        let core = &mut *c;
        if let (Some(t), Some(l)) = (core.target.as_mut(), core.local.as_mut()) {
            t.written(&acc, &mut l.bitmap);
        }
        c.counters.nr += len / 1024;
        c.counters.dw += len / 1024;
        self.progress(&mut c);
        Ok(c.target.as_mut().and_then(|t| t.take_flush_if_due()))
    }

    /// SyncTarget: flush the resync data a ticket covers, then acknowledge
    /// it (the source clears its bits on the ack).
    async fn ack_resync(&self, peer: &Arc<PeerTx>, ticket: resync::FlushTicket) -> io::Result<()> {
        let store = self.target_store()?;
        let flushed = tokio::task::spawn_blocking(move || store.flush())
            .await
            .map_err(io::Error::other)?;
        // The acks are queued under the lock that `flushed` is called under:
        // the driver's `RsDone` (after it sees no flush running) can never
        // overtake them on the control channel.
        let mut c = self.core();
        let ranges = c.target.as_mut().map(|t| t.flushed(ticket));
        flushed?;
        for r in ranges.unwrap_or_default() {
            peer.ctrl(Frame::RsAck {
                offset: r.offset(),
                len: r.len(),
            });
        }
        Ok(())
    }

    fn geometry(&self) -> Geometry {
        Geometry::new(self.data_size)
    }

    fn in_range(&self, offset: u64, len: u64) -> bool {
        offset.checked_add(len).is_some_and(|e| e <= self.data_size)
    }

    fn target_store(&self) -> io::Result<Arc<FileStore>> {
        self.core()
            .local
            .as_ref()
            .map(|l| l.store.clone())
            .ok_or_else(|| eio("no local disk"))
    }

    fn progress(&self, c: &mut Core) {
        let left = c.bits();
        if let Some(s) = c.sync.as_mut() {
            let now = Instant::now();
            if s.samples
                .back()
                .is_none_or(|(t, _)| now.duration_since(*t) >= Duration::from_millis(250))
            {
                s.samples.push_back((now, left));
                while s.samples.len() > 40 {
                    s.samples.pop_front();
                }
            }
            let done = s.total_bits.saturating_sub(left);
            let _ = c.sm.handle(Input::SyncProgress(done));
            c.sm.take_outputs();
        }
    }

    /// The SyncTarget's driver: carries out what [`resync::Target`] says
    /// (requests, pacing at the configured rate, acknowledgement flushes,
    /// the end) until it says stop.
    async fn resync_target(self: Arc<Device>, epoch: u64) {
        loop {
            let rate = lock(&self.cfg).resync_rate();
            let (step, link) = {
                let mut c = self.core();
                let Some(link) = c.link.clone().filter(|_| c.epoch == epoch) else {
                    return;
                };
                let (conn, role) = (c.sm.conn(), c.sm.role());
                let core = &mut *c;
                let step = match (core.target.as_mut(), core.local.as_ref()) {
                    (Some(t), Some(l)) => t.poll(mono(), rate, conn, role, &l.bitmap),
                    _ => TargetStep::Stop,
                };
                match &step {
                    TargetStep::Request(r) => link.ctrl(Frame::RsReq {
                        offset: r.offset(),
                        len: r.len(),
                    }),
                    TargetStep::Done => {
                        tracing::info!("resync: nothing left to request");
                        link.ctrl(Frame::RsDone);
                        let _ = self.input(&mut c, Input::SyncDone);
                    }
                    _ => {}
                }
                (step, link)
            };
            match step {
                TargetStep::Request(_) => {}
                TargetStep::Pace(at) => tokio::time::sleep(at.saturating_sub(mono())).await,
                TargetStep::Wait => {
                    tokio::select! {
                        _ = self.wake.notified() => {}
                        _ = tokio::time::sleep(Duration::from_millis(50)) => {}
                    }
                }
                TargetStep::Flush(ticket) => {
                    if self.ack_resync(&link, ticket).await.is_err() {
                        return;
                    }
                }
                TargetStep::Done => {
                    self.flush_notices();
                    return;
                }
                TargetStep::Stop => return,
            }
        }
    }

    /// Online verify: carries out what [`resync::Verify`] says (read a
    /// range, send its digests; the answers mark what differs), then starts
    /// the resync of what was found from the side [`resync::after_verify`]
    /// names.
    async fn verify(self: Arc<Device>, epoch: u64) {
        let found = loop {
            let rate = lock(&self.cfg).resync_rate();
            let (step, store, link) = {
                let mut c = self.core();
                let conn = c.sm.conn();
                let same = c.epoch == epoch;
                let Some(v) = c.verify.as_mut() else {
                    break None;
                };
                if !same {
                    v.abort();
                }
                let step = v.poll(mono(), rate, conn);
                (
                    step,
                    c.local.as_ref().map(|l| l.store.clone()),
                    c.link.clone(),
                )
            };
            match step {
                VerifyStep::Request(range) => {
                    let read = match store {
                        Some(store) => tokio::task::spawn_blocking(move || {
                            let mut buf = vec![0u8; range.len() as usize];
                            store
                                .read_at(&mut buf, range.offset())
                                .map(|()| digest_blocks(&buf))
                        })
                        .await
                        .map_err(io::Error::other)
                        .and_then(|r| r),
                        None => Err(eio("no local disk")),
                    };
                    match (read, link) {
                        (Ok(digests), Some(link)) => {
                            self.core().counters.dr += range.len() / 1024;
                            link.ctrl(Frame::OvReq {
                                offset: range.offset(),
                                digests,
                            });
                        }
                        _ => {
                            if let Some(v) = self.core().verify.as_mut() {
                                v.abort();
                            }
                        }
                    }
                }
                VerifyStep::Pace(at) => tokio::time::sleep(at.saturating_sub(mono())).await,
                VerifyStep::Wait => {
                    tokio::select! {
                        _ = self.wake.notified() => {}
                        _ = tokio::time::sleep(Duration::from_millis(50)) => {}
                    }
                }
                VerifyStep::Finished { mismatched } => break Some(mismatched),
                VerifyStep::Aborted => break None,
            }
        };
        let mut c = self.core();
        if let Some(v) = c.verify.as_ref() {
            tracing::info!(
                "online verify {}: {} of {} bytes checked, {} bytes out of sync",
                if found.is_some() { "done" } else { "stopped" },
                v.done_bytes(),
                v.total_bytes(),
                v.mismatched_bytes()
            );
        }
        let Some(found) = found.filter(|_| c.epoch == epoch) else {
            return;
        };
        // The Primary's data is what the application acknowledged: it is
        // the source; with two Secondaries, the node that ran verify.
        let (input, from) = match resync::after_verify(found, c.sm.role(), c.sm.peer_role()) {
            None => return,
            Some(resync::ResyncFrom::Here) => (Input::ResyncFromHere, "this node"),
            Some(resync::ResyncFrom::Peer) => (Input::ResyncFromPeer, "the peer (Primary)"),
        };
        match self.input(&mut c, input) {
            Ok(()) => tracing::info!("resyncing the {found} bytes verify found, from {from}"),
            Err(e) => tracing::warn!("not resyncing what verify found: {e}"),
        }
    }

    // ---- notices ----

    fn flush_notices(&self) {
        let notices = std::mem::take(&mut self.core().notices);
        if notices.is_empty() {
            return;
        }
        let cfg = self.cfg();
        for (event, reason) in notices {
            let _guard = self.rt.enter();
            crate::runtime::monitor::notify(
                cfg.notify.as_ref(),
                crate::runtime::monitor::Notice {
                    event: event.clone(),
                    resource: format!("drbddisk::{}", cfg.name),
                    node: cfg.node.clone(),
                    reason: reason.clone(),
                    ..Default::default()
                },
            );
            if event == "local-io-error" {
                // on-io-error call-local-io-error (DRBD runs the handler as the
                // disk fails, then detaches).
                if let Some(cmd) = cfg.res.handlers.get("local-io-error").cloned() {
                    let env = vec![("DRBD_RESOURCE".to_string(), cfg.name.clone())];
                    self.rt.spawn(async move {
                        match crate::agents::exec::run_shell(
                            &cmd,
                            None,
                            &env,
                            Duration::from_secs(60),
                        )
                        .await
                        {
                            Ok(0) => {}
                            Ok(code) => tracing::warn!(code, "local-io-error handler failed"),
                            Err(e) => tracing::warn!(error = %e, "local-io-error handler"),
                        }
                    });
                }
            }
            if event == "split-brain" {
                if let Some(cmd) = cfg.res.handlers.get("split-brain").cloned() {
                    let env = vec![
                        ("DRBD_RESOURCE".to_string(), cfg.name.clone()),
                        ("DRBD_PEER".to_string(), cfg.peer.clone()),
                    ];
                    self.rt.spawn(async move {
                        match crate::agents::exec::run_shell(
                            &cmd,
                            None,
                            &env,
                            Duration::from_secs(60),
                        )
                        .await
                        {
                            Ok(0) => {}
                            Ok(code) => tracing::warn!(code, "split-brain handler failed"),
                            Err(e) => tracing::warn!(error = %e, "split-brain handler"),
                        }
                    });
                }
            }
        }
    }

    // ---- requests ----

    /// The status document.
    pub fn status(&self) -> DiskStatus {
        let cfg = self.cfg();
        let loop_device = lock(&self.exposed).as_ref().map(|e| e.loop_dev.clone());
        let c = self.core();
        let oos = c.bits() * BM_BLOCK;
        let u = c.sm.uuids();
        let sync = c.sync.as_ref().map(|s| {
            let total = s.total_bits * BM_BLOCK;
            let done = total.saturating_sub(oos);
            let rate = match (s.samples.front(), s.samples.back()) {
                (Some((t0, l0)), Some((t1, l1))) if t1 > t0 => {
                    let secs = t1.duration_since(*t0).as_secs_f64();
                    (l0.saturating_sub(*l1) as f64 * BM_BLOCK as f64 / secs) as u64
                }
                _ => 0,
            };
            SyncStatus {
                source: s.source,
                full: s.full,
                paused: matches!(c.sm.conn(), ConnState::PausedSyncS | ConnState::PausedSyncT),
                total_bytes: total,
                done_bytes: done,
                percent: if total == 0 {
                    100.0
                } else {
                    done as f64 * 100.0 / total as f64
                },
                rate_bytes_per_sec: rate,
                limit_bytes_per_sec: cfg.resync_rate(),
                eta_secs: (rate > 0).then(|| oos / rate),
            }
        });
        let mut counters = c.counters.clone();
        if let Some(l) = &c.link {
            counters.pe = lock(&l.inflight).tl.in_flight() as u64;
        }
        DiskStatus {
            name: cfg.name.clone(),
            node: cfg.node.clone(),
            peer: cfg.peer.clone(),
            pid: std::process::id(),
            role: c.sm.role(),
            peer_role: c.sm.peer_role(),
            disk: c.sm.disk(),
            peer_disk: c.sm.peer_disk(),
            connection: c.sm.conn(),
            device: cfg.host.device.clone(),
            loop_device,
            backing: cfg.host.disk.clone(),
            size_bytes: self.data_size,
            out_of_sync_bytes: oos,
            sync,
            verify: c.verify.as_ref().map(|v| VerifyStatus {
                running: v.running(),
                done_bytes: v.done_bytes(),
                total_bytes: v.total_bytes(),
                mismatched_bytes: v.mismatched_bytes(),
            }),
            split_brain: c.split_brain.clone(),
            uuids: [
                format!("{:016X}", u.current),
                format!("{:016X}", u.bitmap),
                format!("{:016X}", u.history[0]),
                format!("{:016X}", u.history[1]),
            ],
            local_address: cfg.local_addr().to_string(),
            peer_address: cfg.peer_addr().to_string(),
            counters,
            last_write_unix_ms: c.last_write_ms,
            last_error: c.last_error.clone(),
            ever_connected: c.ever_connected,
            degr_wfc: c.local.as_ref().is_some_and(|l| l.degr_wfc),
        }
    }

    fn done(&self, message: Option<String>) -> DiskResponse {
        DiskResponse::Done {
            status: Box::new(self.status()),
            message,
        }
    }

    fn refused(&self, message: impl Into<String>) -> DiskResponse {
        DiskResponse::Refused {
            message: message.into(),
            status: Box::new(self.status()),
        }
    }

    /// Carry out one request (blocking: may wait for the device to be
    /// released or for the peer).
    pub fn request(&self, req: DiskRequest) -> DiskResponse {
        tracing::info!(?req, "request");
        let r = self.request_inner(req);
        self.flush_notices();
        r
    }

    fn simple(&self, i: Input) -> DiskResponse {
        let mut c = self.core();
        match self.input(&mut c, i) {
            Ok(()) => {
                drop(c);
                self.done(None)
            }
            Err(m) => {
                drop(c);
                self.refused(m)
            }
        }
    }

    fn request_inner(&self, req: DiskRequest) -> DiskResponse {
        match req {
            DiskRequest::Status => self.done(None),
            DiskRequest::Attach => {
                if self.core().local.is_some() {
                    return self.done(Some("already attached".into()));
                }
                let cfg = self.cfg();
                match Local::open(&cfg) {
                    Err(e) => DiskResponse::Failed { message: e },
                    Ok((local, attached)) => {
                        if local.meta.layout.data_size != self.data_size {
                            return DiskResponse::Failed {
                                message:
                                    "the backing disk changed size; restart the device (down, up)"
                                        .into(),
                            };
                        }
                        let mut c = self.core();
                        c.local = Some(local);
                        c.meta = MetaGuard::default();
                        let r = self.input(&mut c, Input::Attach(attached));
                        drop(c);
                        match r {
                            Ok(()) => self.done(None),
                            Err(m) => self.refused(m),
                        }
                    }
                }
            }
            DiskRequest::Detach => {
                let mut c = self.core();
                if c.local.is_none() {
                    drop(c);
                    return self.done(Some("already diskless".into()));
                }
                if c.sm.role() == Role::Primary {
                    drop(c);
                    return self.refused("hbd runs no diskless Primary: demote first (secondary)");
                }
                if let Err(m) = self.input(&mut c, Input::Detach) {
                    drop(c);
                    return self.refused(m);
                }
                let mut counters = c.counters.clone();
                let lw = c.last_write_ms;
                if let Some(mut l) = c.local.take() {
                    if let Err(e) = l.close(&mut counters, lw) {
                        c.last_error = Some(format!("closing the disk: {e}"));
                    }
                }
                c.counters = counters;
                drop(c);
                self.done(None)
            }
            DiskRequest::Connect { discard_my_data } => {
                let mut c = self.core();
                if c.sm.conn() != ConnState::StandAlone {
                    drop(c);
                    return self.refused(format!(
                        "already connecting or connected ({}); use disconnect first",
                        self.core().sm.conn()
                    ));
                }
                if discard_my_data {
                    if c.sm.role() == Role::Primary {
                        drop(c);
                        return self.refused("--discard-my-data on a Primary: demote first");
                    }
                    let _ = self.input(&mut c, Input::DiscardMyData);
                }
                c.last_error = None;
                let r = self.input(&mut c, Input::Connect);
                drop(c);
                match r {
                    Ok(()) => self.done(None),
                    Err(m) => self.refused(m),
                }
            }
            DiskRequest::Disconnect => self.simple(Input::Disconnect),
            DiskRequest::Outdate => self.simple(Input::Outdate),
            DiskRequest::Primary { force } => self.promote(force),
            DiskRequest::Secondary => self.demote(),
            DiskRequest::Verify => {
                let mut c = self.core();
                if c.sm.conn() != ConnState::Connected {
                    drop(c);
                    return self.refused("Need a connection to start verify or resync");
                }
                if c.sm.disk() != DiskState::UpToDate || c.sm.peer_disk() != DiskState::UpToDate {
                    drop(c);
                    return self.refused("verify needs UpToDate data on both nodes");
                }
                if c.verify.as_ref().is_some_and(|v| v.running()) {
                    drop(c);
                    return self.done(Some("verify already running".into()));
                }
                c.verify = Some(resync::Verify::new(self.geometry()));
                let epoch = c.epoch;
                drop(c);
                let dev = self.me();
                self.rt.spawn(async move { dev.verify(epoch).await });
                self.done(Some("online verify started".into()))
            }
            DiskRequest::Invalidate => {
                let mut c = self.core();
                if c.sm.role() == Role::Primary {
                    drop(c);
                    return self.refused("invalidate on a Primary: demote first");
                }
                let standalone = c.sm.conn() < ConnState::Connected;
                match self.input(&mut c, Input::Invalidate) {
                    Ok(()) => {
                        if standalone {
                            if let Some(l) = c.local.as_mut() {
                                l.bitmap.set_all();
                                let n = l.bitmap.count();
                                let _ = c.sm.handle(Input::BitsSet(n));
                            }
                        }
                        drop(c);
                        self.done(None)
                    }
                    Err(m) => {
                        drop(c);
                        self.refused(m)
                    }
                }
            }
            DiskRequest::InvalidateRemote => {
                let c = self.core();
                if c.sm.peer_role() == Role::Primary {
                    drop(c);
                    return self.refused("invalidate-remote while the peer is Primary");
                }
                drop(c);
                self.simple(Input::InvalidateRemote)
            }
            DiskRequest::PauseSync => self.simple(Input::PauseSync),
            DiskRequest::ResumeSync => {
                let r = self.simple(Input::ResumeSync);
                self.wake.notify_waiters();
                r
            }
            DiskRequest::Adjust => self.adjust(),
            DiskRequest::Down => {
                if let r @ DiskResponse::Refused { .. } = self.demote() {
                    return r;
                }
                let mut c = self.core();
                let _ = self.input(&mut c, Input::Disconnect);
                let mut counters = c.counters.clone();
                let lw = c.last_write_ms;
                if let Some(l) = c.local.as_mut() {
                    if let Err(e) = l.close(&mut counters, lw) {
                        c.last_error = Some(format!("closing the disk: {e}"));
                    }
                }
                drop(c);
                let r = self.done(Some("down".into()));
                self.shutdown.cancel();
                r
            }
            DiskRequest::Remote { forward } => self.remote(*forward),
        }
    }

    fn promote(&self, force: bool) -> DiskResponse {
        {
            let mut c = self.core();
            if c.sm.role() == Role::Primary && lock(&self.exposed).is_some() {
                drop(c);
                return self.done(Some("already Primary".into()));
            }
            if c.local.is_none() {
                drop(c);
                return self.refused("local disk Diskless (hbd runs no diskless Primary)");
            }
            if matches!(
                c.sm.conn(),
                ConnState::SyncTarget | ConnState::PausedSyncT | ConnState::WFBitMapT
            ) {
                drop(c);
                return self.refused(format!(
                    "local disk {} (resync from the peer running)",
                    self.core().sm.disk()
                ));
            }
            if let Err(m) = c.meta.may_promote() {
                drop(c);
                return DiskResponse::Failed { message: m };
            }
            // The new role's flags and UUIDs are written before anyone (the
            // peer, the application) sees them: a promotion whose metadata
            // cannot be persisted does not happen (nothing rotates).
            let peer_disk = c.sm.peer_disk();
            let mut trial = c.sm.clone();
            if let Err(m) = trial.handle(Input::Promote { force }) {
                drop(c);
                return self.refused(m);
            }
            if let Err(m) = c.persist_state(Some(&trial)) {
                let message = format!("not promoting: {m}");
                self.local_io_error(&mut c, IoSite::Meta, false, &m);
                drop(c);
                return DiskResponse::Failed { message };
            }
            c.sm = trial;
            self.apply(&mut c);
            if force && peer_disk != DiskState::Outdated && c.sm.peer_disk() == DiskState::Outdated
            {
                tracing::warn!(resource = %lock(&self.cfg).name, "Forced into split brain situation! (fencing: the peer is taken as Outdated)");
            }
        }
        let cfg = self.cfg();
        let dir = ctl::fuse_dir(&cfg.run_dir, &cfg.name);
        let r = std::fs::create_dir_all(&dir).and_then(|()| {
            expose::expose(Arc::new(DevStore(self.me())), &dir, Some(&cfg.host.device))
        });
        match r {
            Ok(e) => {
                tracing::info!(loop_dev = %e.loop_dev.display(), "Primary: device exposed at {}", cfg.host.device.display());
                let _ = std::fs::write(
                    ctl::loop_record_path(&cfg.run_dir, &cfg.name),
                    e.loop_dev.as_os_str().as_encoded_bytes(),
                );
                *lock(&self.exposed) = Some(e);
                self.done(None)
            }
            Err(e) => {
                let mut c = self.core();
                let _ = self.input(&mut c, Input::Demote);
                drop(c);
                DiskResponse::Failed {
                    message: format!("exposing the device: {e}"),
                }
            }
        }
    }

    fn demote(&self) -> DiskResponse {
        if let Some(e) = lock(&self.exposed).as_mut() {
            if let Err(err) = e.close(RELEASE_TIMEOUT) {
                return self.refused(format!("Device is held open by someone: {err}"));
            }
        }
        *lock(&self.exposed) = None;
        let cfg = self.cfg();
        let _ = std::fs::remove_file(ctl::loop_record_path(&cfg.run_dir, &cfg.name));
        let mut c = self.core();
        if c.sm.role() != Role::Primary {
            drop(c);
            return self.done(None);
        }
        let r = self.input(&mut c, Input::Demote);
        drop(c);
        // The activity log is emptied below: the peer must have flushed
        // what it acknowledged first (finding 5); one that does not answer
        // is dropped and its unflushed writes are marked.
        let _ = self.app_flush();
        let mut c = self.core();
        let mut counters = c.counters.clone();
        if let Some(l) = c.local.as_mut() {
            let res = l
                .store
                .flush()
                .map_err(MetaError::from)
                .and_then(|()| l.write_dirty_bitmap(&mut counters))
                .and_then(|()| l.al.close(&l.file, &l.meta.layout).map(|_| ()));
            if let Err(e) = res {
                c.last_error = Some(format!("closing the activity log: {e}"));
            }
        }
        c.counters = counters;
        if let Err(m) = c.sync_flags() {
            self.local_io_error(&mut c, IoSite::Meta, false, &m);
        }
        drop(c);
        match r {
            Ok(()) => self.done(None),
            Err(m) => self.refused(m),
        }
    }

    fn adjust(&self) -> DiskResponse {
        let old = self.cfg();
        let new = match DeviceConfig::load(&old.config_dir, &old.node, &old.run_dir, &old.name) {
            Ok(n) => n,
            Err(e) => return DiskResponse::Failed { message: e },
        };
        let mut notes = Vec::new();
        if new.resync_rate() != old.resync_rate() {
            notes.push(format!("resync rate {} B/s", new.resync_rate()));
        }
        if new.host.address != old.host.address || new.peer_host.address != old.peer_host.address {
            notes.push("addresses changed: take effect at the next up".into());
        }
        if new.res.fencing != old.res.fencing {
            use super::conf::Fencing;
            notes.push(
                match new.res.fencing {
                    Fencing::DontCare => "fencing dont-care",
                    Fencing::ResourceOnly => "fencing resource-only",
                    Fencing::ResourceAndStonith => "fencing resource-and-stonith",
                }
                .into(),
            );
        }
        // fencing and the after-sb policies apply from the next promotion
        // or handshake on (drbdsetup disk-options / net-options).
        self.core().sm.set_config(new.machine_config());
        *lock(&self.cfg) = new;
        if self.core().local.is_none() {
            if let DiskResponse::Failed { message } = self.request_inner(DiskRequest::Attach) {
                return DiskResponse::Failed { message };
            }
            notes.push("attached".into());
        }
        if self.core().sm.conn() == ConnState::StandAlone {
            let mut c = self.core();
            let _ = self.input(&mut c, Input::Connect);
            notes.push("connecting".into());
        }
        self.done((!notes.is_empty()).then(|| notes.join("; ")))
    }

    fn remote(&self, req: DiskRequest) -> DiskResponse {
        let cfg = self.cfg();
        let fut = async move {
            let mut link = link::connect(cfg.peer_addr(), &cfg.key, LINK_TIMEOUT).await?;
            let json = serde_json::to_string(&req).map_err(io::Error::other)?;
            link::send(
                &mut link,
                &Frame::Admin {
                    resource: cfg.name.clone(),
                    json,
                },
            )
            .await?;
            match tokio::time::timeout(Duration::from_secs(120), link::recv(&mut link)).await {
                Err(_) => Err(io::Error::new(io::ErrorKind::TimedOut, "no answer")),
                Ok(Err(e)) => Err(e),
                Ok(Ok(Frame::AdminReply { json })) => {
                    serde_json::from_str::<DiskResponse>(&json).map_err(io::Error::other)
                }
                Ok(Ok(f)) => Err(link::unexpected(f, "AdminReply")),
            }
        };
        let peer = self.cfg().peer;
        match self.rt.block_on(fut) {
            Ok(r) => r,
            Err(e) => DiskResponse::Failed {
                message: format!("peer {peer} unreachable: {e}"),
            },
        }
    }

    // ---- the process ----

    /// Run until `down` or a signal: the control socket, the listener, the
    /// connector, the bitmap writeback.
    pub async fn run(self: Arc<Device>) -> io::Result<()> {
        let cfg = self.cfg();
        let sock = ctl::socket_path(&cfg.run_dir, &cfg.name);
        std::fs::create_dir_all(ctl::disk_dir(&cfg.run_dir))?;
        let listener = TcpListener::bind(cfg.local_addr()).await.map_err(|e| {
            io::Error::new(e.kind(), format!("listening on {}: {e}", cfg.local_addr()))
        })?;
        let _ = std::fs::remove_file(&sock);
        let record = ctl::loop_record_path(&cfg.run_dir, &cfg.name);
        if let Ok(dev) = std::fs::read_to_string(&record) {
            match expose::detach_stale_loop(
                Path::new(dev.trim()),
                &ctl::fuse_dir(&cfg.run_dir, &cfg.name),
            ) {
                Ok(true) => tracing::warn!(
                    "detached {} left behind by a crashed device process",
                    dev.trim()
                ),
                Ok(false) => {}
                Err(e) => tracing::warn!(error = %e, "detaching the stale {}", dev.trim()),
            }
            let _ = std::fs::remove_file(&record);
        }
        let ctl_listener = UnixListener::bind(&sock)?;
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&sock, std::fs::Permissions::from_mode(0o600))?;
        }
        std::fs::write(
            ctl::pid_path(&cfg.run_dir, &cfg.name),
            format!("{}\n", std::process::id()),
        )?;
        {
            let mut c = self.core();
            let _ = self.input(&mut c, Input::Connect);
        }
        tokio::spawn(self.clone().listen(listener));
        if cfg.first {
            tokio::spawn(self.clone().connector());
        }
        tokio::spawn(self.clone().writeback());
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        let mut int = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())?;
        loop {
            tokio::select! {
                r = ctl_listener.accept() => {
                    if let Ok((s, _)) = r {
                        tokio::spawn(self.clone().serve_ctl(s));
                    }
                }
                _ = term.recv() => self.clone().signal_down().await,
                _ = int.recv() => self.clone().signal_down().await,
                _ = self.shutdown.cancelled() => break,
            }
        }
        // Let the last answer go out.
        tokio::time::sleep(Duration::from_millis(50)).await;
        let _ = std::fs::remove_file(&sock);
        let _ = std::fs::remove_file(ctl::pid_path(&cfg.run_dir, &cfg.name));
        Ok(())
    }

    async fn signal_down(self: Arc<Device>) {
        tracing::info!("signal: going down");
        let dev = self.clone();
        let r = tokio::task::spawn_blocking(move || dev.request(DiskRequest::Down)).await;
        if let Ok(DiskResponse::Refused { message, .. }) = r {
            tracing::warn!("not going down: {message}");
        }
    }

    async fn serve_ctl(self: Arc<Device>, s: tokio::net::UnixStream) {
        let mut conn: crate::ctl::Connection<DiskRequest, DiskResponse> = crate::ctl::frame(s);
        let req = match conn.next().await {
            Some(Ok(r)) => r,
            Some(Err(e)) => {
                let _ = conn
                    .send(DiskResponse::Failed {
                        message: format!("bad request: {e}"),
                    })
                    .await;
                return;
            }
            None => return,
        };
        let dev = self.clone();
        let resp = tokio::task::spawn_blocking(move || dev.request(req))
            .await
            .unwrap_or_else(|e| DiskResponse::Failed {
                message: e.to_string(),
            });
        let _ = conn.send(resp).await;
    }

    /// Every second (or when the activity log is full): an aging round of
    /// the activity log, then the dirty bitmap pages (after a flush of the
    /// data, so a cleared bit is never durable before the data it stands
    /// for). An extent leaves the activity log only after both nodes
    /// flushed its writes ([`datapath::Retirement`]), so a power cut of both
    /// nodes cannot leave its blocks different with no bit set.
    async fn writeback(self: Arc<Device>) {
        loop {
            tokio::select! {
                _ = tokio::time::sleep(BITMAP_WRITEBACK) => {}
                _ = self.wake_writeback.notified() => {}
                _ = self.shutdown.cancelled() => return,
            }
            let dev = self.clone();
            let _ = tokio::task::spawn_blocking(move || dev.writeback_round()).await;
            self.flush_notices();
        }
    }

    fn writeback_round(&self) {
        let (store, mut round, peer) = {
            let mut c = self.core();
            let Some(l) = c.local.as_ref() else { return };
            let store = l.store.clone();
            let (tick, idle) = l.al.cool_candidates();
            let (state, peer) = match (c.link.clone(), c.replicating()) {
                _ if idle.is_empty() => (PeerFlush::NotReplicating, None),
                (None, _) => (PeerFlush::NotReplicating, None),
                // Torn down, its bits not yet set: next round.
                (Some(p), _) if !p.live() => (PeerFlush::Failed, None),
                (Some(_), Some(p)) => (PeerFlush::Pending, Some(p)),
                (Some(p), None) => {
                    // Connected but not replicating (the peer has no disk):
                    // what it acked without a flush is not known stable.
                    for (o, n) in p.drain_unflushed() {
                        c.mark(o, n);
                    }
                    (PeerFlush::NotReplicating, None)
                }
            };
            (store, Retirement::new(tick, idle, state), peer)
        };
        // The Flush goes after every write to the candidates (they were
        // idle): its FlushAck covers them on the peer.
        let wait = peer
            .as_ref()
            .filter(|_| round.needs_peer_flush())
            .and_then(|p| p.submit(|seq| Frame::Flush { seq }, None));
        let local = store.flush();
        round.local_flushed(local.is_ok());
        if round.needs_peer_flush() {
            let acked = match (peer, wait) {
                (Some(p), Some(w)) => p.wait_done(w),
                _ => false,
            };
            round.peer_flushed(acked);
        }
        let mut c = self.core();
        if let Err(e) = &local {
            let ranges = c.local.as_ref().map(|l| l.hot_ranges()).unwrap_or_default();
            for (o, n) in ranges {
                c.mark(o, n);
            }
            self.local_io_error(&mut c, IoSite::DataFlush, false, &e.to_string());
            return;
        }
        let mut counters = c.counters.clone();
        let core = &mut *c;
        if let Some(l) = core.local.as_mut() {
            let cooled = l.al.cool(round.tick, round.retire());
            let r = l.write_dirty_bitmap(&mut counters);
            let r = match r {
                Ok(()) => {
                    core.meta.written(MetaWrite::Bitmap);
                    if cooled.is_empty() && core.meta.healthy() {
                        Ok(())
                    } else {
                        // The bitmap pages are durable: the extents may go.
                        counters.al += 1;
                        l.al.write_transaction(&l.file, &l.meta.layout)
                            .map(|_| core.meta.written(MetaWrite::ActivityLog))
                            .inspect_err(|e| {
                                core.meta.failed(MetaWrite::ActivityLog, e.to_string())
                            })
                    }
                }
                Err(e) => {
                    // The pages stay dirty; the cooled extents stay in the
                    // on-disk activity log until a transaction succeeds.
                    core.meta.failed(MetaWrite::Bitmap, e.to_string());
                    Err(e)
                }
            };
            if let Err(e) = r {
                tracing::error!(error = %e, "bitmap/activity-log writeback");
                core.counters = counters;
                let msg = format!("bitmap/activity-log writeback: {e}");
                self.local_io_error(core, IoSite::Meta, false, &msg);
                return;
            }
        }
        c.counters = counters;
        // The last write time, for split-brain reports after a restart.
        let lw = c.last_write_ms.unwrap_or(0);
        if let Some(l) = c.local.as_mut() {
            if lw > l.meta.last_write_ms + 5000 {
                l.meta.last_write_ms = lw;
                if let Err(e) = meta::write_superblock(&l.file, &l.meta) {
                    tracing::error!(error = %e, "writing the superblock");
                }
            }
        }
    }
}

fn digest_blocks(buf: &[u8]) -> Vec<[u8; 32]> {
    buf.chunks(BM_BLOCK as usize)
        .map(|b| sha2::Sha256::digest(b).into())
        .collect()
}

fn diff_blocks(buf: &[u8], theirs: &[[u8; 32]]) -> Vec<u32> {
    digest_blocks(buf)
        .iter()
        .zip(theirs)
        .enumerate()
        .filter(|(_, (a, b))| a != b)
        .map(|(i, _)| i as u32)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::disk::conf;

    /// An `Error` frame with this text makes `on_frame` panic (test builds
    /// only): the stand-in for any bug in a frame handler.
    pub(super) const INJECT_PANIC: &str = "hbd-test: panic in on_frame";

    /// A device on a fresh 8 MiB backing file (never `run`: no sockets).
    fn device(dir: &Path, rt: &tokio::runtime::Runtime) -> Arc<Device> {
        let disk = dir.join("backing.img");
        std::fs::File::create(&disk)
            .unwrap()
            .set_len(8 << 20)
            .unwrap();
        meta::create(&disk, true).unwrap();
        let text = format!(
            "resource r0 {{\n  protocol C;\n  on n1 {{ device {d}; disk {b}; address 192.0.2.11:7788; meta-disk internal; }}\n  on n2 {{ device {d}; disk {b}; address 192.0.2.12:7788; meta-disk internal; }}\n}}\n",
            d = dir.join("drbd0").display(),
            b = disk.display()
        );
        let (c, errors, _) = conf::parse(Path::new("drbd.conf"), &text);
        assert!(errors.is_empty(), "{errors:?}");
        let res = c.resource("r0").unwrap().clone();
        let cfg = DeviceConfig {
            name: "r0".into(),
            node: "n1".into(),
            peer: "n2".into(),
            config_dir: dir.to_path_buf(),
            run_dir: dir.to_path_buf(),
            host: res.host("n1").unwrap().clone(),
            peer_host: res.peer("n1").unwrap().clone(),
            res,
            key: AuthKey {
                id: 0,
                method: AuthMethod::Sha256,
                secret: b"test".to_vec(),
            },
            notify: None,
            first: true,
        };
        Device::open(cfg, rt.handle().clone()).unwrap()
    }

    fn framed<T: tokio::io::AsyncRead + tokio::io::AsyncWrite>(
        io: T,
    ) -> Framed<T, LengthDelimitedCodec> {
        Framed::new(
            io,
            LengthDelimitedCodec::builder()
                .max_frame_length(link::MAX_FRAME)
                .new_codec(),
        )
    }

    /// Issue 12, finding 8: a panic inside the link task still tears the
    /// link down: a writer waiting for the peer's ack is released (with
    /// `false`: its range gets marked) and the machine hears TransportLost.
    #[test]
    fn a_panic_in_the_link_task_releases_waiting_writers() {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let dev = device(dir.path(), &rt);
        {
            let mut c = dev.core();
            dev.input(&mut c, Input::Connect).unwrap();
        }
        let (ours, theirs) = tokio::io::duplex(1 << 20);
        dev.establish(framed(ours), dev.data_size, None);
        let peer = dev.core().link.clone().expect("established");
        // The fake peer: keeps the link alive with pings and reads
        // everything, until told to panic the device's link task.
        let (sink, mut stream) = framed(theirs).split();
        let sink = Arc::new(tokio::sync::Mutex::new(sink));
        let pinger = {
            let sink = sink.clone();
            rt.spawn(async move {
                loop {
                    if link::send(&mut *sink.lock().await, &Frame::Ping)
                        .await
                        .is_err()
                    {
                        return;
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            })
        };
        let reader = rt.spawn(async move { while stream.next().await.is_some() {} });
        // A writer waiting on the peer's ack (as a FUSE thread in write_chunk).
        let wait = peer
            .submit(
                |seq| Frame::Write {
                    seq,
                    offset: 0,
                    data: vec![7; 4096],
                },
                Some((0, 4096)),
            )
            .expect("the link is up");
        rt.block_on(async {
            link::send(
                &mut *sink.lock().await,
                &Frame::Error {
                    msg: INJECT_PANIC.into(),
                },
            )
            .await
        })
        .unwrap();
        assert_eq!(
            wait.recv_timeout(Duration::from_secs(30)),
            Ok(false),
            "the waiting writer was not released"
        );
        let start = Instant::now();
        loop {
            {
                let c = dev.core();
                if c.link.is_none() && c.sm.conn() == ConnState::WFConnection {
                    // The unacked write's range is out of sync now.
                    assert!(c.bits() >= 1);
                    break;
                }
            }
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "no TransportLost"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        assert!(!peer.live());
        pinger.abort();
        reader.abort();
        dev.shutdown.cancel();
        drop(rt);
    }
}
