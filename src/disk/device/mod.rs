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
//! # Files
//!
//! - `mod.rs`: [`Device`] (open, feeding the state machine and executing
//!   its outputs, the bitmap exchange).
//! - `config.rs`: [`DeviceConfig`], loaded from the configuration.
//! - `process.rs`: [`Device::run`] (control socket, listener, connector,
//!   signals) and the activity-log/bitmap writeback.
//! - `local.rs`: the attached backing disk and its metadata I/O.
//! - `write_path.rs`: the FUSE side (application reads, writes, flushes)
//!   and `PeerTx`, a link's sending side (channels, waiters; its bookkeeping
//!   is [`super::datapath::TransferLog`]).
//! - `network.rs`: listen/accept/connect, establishing a link, the link
//!   task and its watchdog, every received frame.
//! - `resync_io.rs`: the SyncTarget and verify drivers, resync data.
//! - `requests.rs`: status and requests (promote, demote, attach, detach,
//!   adjust, forwarded to the peer).
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
    self, ApplyOrder, IoSite, KoTracker, MetaGuard, MetaWrite, PeerFlush, Retirement, TransferLog,
};
use super::expose::{self, BlockStore, Exposed, FileStore};
use super::meta::{
    self, ActivityLog, Bitmap, Meta, MetaError, AL_EXTENT, AL_MAX_EXTENTS, BM_BLOCK,
};
use super::packet::{self, Frame, MAX_DATA};
use super::resync::{self, Geometry, Reject, TargetStep, VerifyStep};
use super::state::{
    Attached, ConnState, DiskState, Event, Input, Output, Refused, Resource, ResourceConfig, Role,
};
use super::uuid::{self, SbPolicy};
use crate::config::NotifyConfig;
use crate::wire::{AuthKey, AuthMethod};
use tokio_util::codec::Framed;

mod apply;
mod config;
mod fence_io;
mod local;
mod network;
mod process;
mod requests;
mod resync_io;
mod write_path;

use apply::{Applier, Applying};
pub use config::{DeviceConfig, LoadError};
use local::Local;
pub use local::OpenError;
use write_path::{Inflight, PeerTx};

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
/// How long a promotion waits for a running handshake to decide.
pub const HANDSHAKE_WAIT: Duration = Duration::from_secs(10);
/// How long `secondary` waits for the device to be released.
pub const RELEASE_TIMEOUT: Duration = Duration::from_secs(10);
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
        Err(r) => Err(packet::LinkError::Malformed(r.to_string()).into()),
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
    /// What the last fence-peer handler said, for status.
    last_fence: Option<String>,
    /// Write and acknowledgement latencies, for hbd's metrics.
    latency: crate::disk::ctl::DiskLatency,
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
    fn sync_flags(&mut self) -> Result<(), MetaWriteError> {
        self.persist_state(None)
    }

    /// Write the superblock for the state of `sm` (default: the machine's
    /// own), if it differs from what is on disk.
    fn persist_state(&mut self, sm: Option<&Resource>) -> Result<(), MetaWriteError> {
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
        // Consistent is UpToDate data whose peer is not known Outdated
        // (attach under `fencing`): it stays "was UpToDate", or a restart
        // before the peer is met would make it Outdated (found by disk::sim
        // with fencing: a power cut during the handshake after one).
        f.was_up_to_date = matches!(disk, DiskState::UpToDate | DiskState::Consistent);
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
                Err(source) => {
                    tracing::error!(error = %source, "writing the superblock");
                    let e = MetaWriteError {
                        what: MetaWrite::Superblock,
                        source,
                    };
                    let msg = e.to_string();
                    self.meta.failed(e.what, &msg);
                    self.last_error = Some(msg);
                    return Err(e);
                }
            }
        }
        Ok(())
    }
}

/// A metadata write of [`Core::persist_state`] that failed; it is already
/// recorded (in `meta`, so no promotion until one succeeds, and as the last
/// error) when returned.
#[derive(Debug, thiserror::Error)]
#[error("writing the {}: {source}", meta_noun(*what))]
struct MetaWriteError {
    what: MetaWrite,
    source: MetaError,
}

fn meta_noun(what: MetaWrite) -> &'static str {
    match what {
        MetaWrite::Bitmap => "bitmap",
        MetaWrite::ActivityLog => "activity log",
        MetaWrite::Superblock => "superblock",
        MetaWrite::Disk => "local disk",
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
    pub fn open(cfg: DeviceConfig, rt: tokio::runtime::Handle) -> Result<Arc<Device>, OpenError> {
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
                last_fence: None,
                latency: Default::default(),
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

    /// Feed one input and carry out the machine's outputs; a refused
    /// command changed nothing.
    fn input(&self, c: &mut Core, i: Input) -> Result<(), Refused> {
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
                    Output::FencePeer => self.fence_peer_async(),
                    Output::Event(e) => self.on_event(c, e),
                }
            }
        }
        if let Err(e) = c.sync_flags() {
            // A metadata write error is a local I/O error (DRBD_META_IO_ERROR).
            self.local_io_error(c, IoSite::Meta, false, &e.to_string());
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
            Event::FencePeer {
                code,
                outcome,
                resumed,
            } => {
                let code = code.map_or("none".to_string(), |c| c.to_string());
                if *outcome == super::state::FenceOutcome::Failed {
                    tracing::error!(resource = %name, %code, resumed, "fence-peer helper broken, returned {code}: {}", outcome.as_str());
                    c.last_error = Some(format!(
                        "fence-peer: {} (exit code {code})",
                        outcome.as_str()
                    ));
                } else {
                    tracing::info!(resource = %name, %code, resumed, "fence-peer helper returned {code} ({})", outcome.as_str());
                }
                c.last_fence = Some(format!("{} (exit code {code})", outcome.as_str()));
            }
            Event::Suspended(on) => {
                if *on {
                    tracing::warn!(resource = %name, "susp( 0 -> 1 ): I/O frozen until the peer is fenced (fencing resource-and-stonith)");
                } else {
                    tracing::info!(resource = %name, "susp( 1 -> 0 ): I/O resumed");
                }
            }
            Event::SyncFinished { source } => {
                let secs = c
                    .sync
                    .as_ref()
                    .map_or(0.0, |s| s.started.elapsed().as_secs_f64());
                tracing::info!(resource = %name, source, secs, "resync done");
                c.sync = None;
                // drbd.conf `handlers { after-resync-target "..."; }` (e.g.
                // Pacemaker's crm-unfence-peer.sh), on the target, as DRBD.
                if !*source {
                    self.run_handler(&self.cfg(), "after-resync-target");
                }
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
}

/// The built-in outdater's request while no device process runs for
/// `res` (its disk cannot be in use): mark the metadata Outdated directly,
/// as `drbdmeta outdate` does for an unconfigured DRBD device. Returns a
/// fence-peer code (4 outdated, 3 Inconsistent, 5 failed) and a message.
pub fn outdate_offline(config_dir: &Path, node: &str, run_dir: &Path, res: &str) -> (u8, String) {
    use super::fence::{PEER_INCONSISTENT, PEER_OUTDATED, PEER_UNREACHABLE};
    let cfg = match DeviceConfig::load(config_dir, node, run_dir, res) {
        Ok(c) => c,
        Err(e) => return (PEER_UNREACHABLE, e.to_string()),
    };
    let disk = &cfg.host.disk;
    let (mut m, file) = match meta::open(disk) {
        Ok(x) => x,
        Err(e) => return (PEER_UNREACHABLE, format!("{}: {e}", disk.display())),
    };
    if !m.flags.consistent {
        return (
            PEER_INCONSISTENT,
            "the peer's disk is Inconsistent (device down)".into(),
        );
    }
    if !m.flags.was_up_to_date {
        return (
            PEER_OUTDATED,
            "the peer's disk is Outdated (device down)".into(),
        );
    }
    if m.uuids.bitmap != 0 {
        // As `Device::outdate_for_peer`: writes made without the peer.
        tracing::warn!(resource = %res, "the peer asked to outdate this disk: refused, it holds writes made without the peer (device down)");
        return (
            super::fence::PEER_PRIMARY,
            format!(
                "the peer's disk holds writes made without this node (device down): {}",
                crate::disk::state::REFUSE_OUTDATE_NEWER
            ),
        );
    }
    m.flags.was_up_to_date = false;
    match meta::write_superblock(&file, &m) {
        Ok(()) => {
            tracing::warn!(resource = %res, "the peer asked to outdate this disk: marked Outdated in the metadata (no device process runs)");
            (
                PEER_OUTDATED,
                "the peer's disk is Outdated now (device down)".into(),
            )
        }
        Err(e) => (PEER_UNREACHABLE, format!("writing the superblock: {e}")),
    }
}

#[cfg(test)]
mod tests;
