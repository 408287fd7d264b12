//! Sans-IO decisions of the write path (issue 12, findings 4-6): what to do
//! about a local I/O error (`on-io-error`), when a peer that does not answer
//! is dropped (`timeout` × `ko-count`), when an extent may leave the activity
//! log, and what may go on after a failed metadata write. Inputs in, actions
//! out: no clock reads (`now` is passed in, in milliseconds of any monotonic
//! clock), no I/O, no tokio. [`super::device`] does the I/O and calls these.
//!
//! # API (for the disk simulation, `sim.rs`)
//!
//! - [`on_io_error`]`(IoError) -> IoActions`: DRBD 8.4's
//!   `__drbd_chk_io_error_` and `drbd_req` completion rules as a table.
//! - [`KoTracker`]: `start(seq, now)` when a write or flush is sent,
//!   `done(seq)` on its ack, `overdue(now)` names the oldest request older
//!   than `timeout × ko-count` (drop the peer), `deadline(now)` bounds a wait.
//! - [`Retirement`]: one activity-log aging round: `new(tick, candidates,
//!   peer)`, `local_flushed(ok)`, `peer_flushed(acked)`, `retire()` gives the
//!   extents that may leave (none until both sides flushed).
//! - [`MetaGuard`]: `failed(what, msg)` / `written(what)` after each metadata
//!   write, `may_promote()` vetoes promotion while metadata is unwritable.

use std::collections::BTreeMap;
use std::time::Duration;

use super::conf::OnIoError;

/// Milliseconds on the caller's monotonic clock.
pub type Millis = u64;

// ---------------------------------------------------------------- on-io-error

/// Where a local I/O error happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IoSite {
    /// Writing application or replicated data.
    DataWrite,
    /// Reading data.
    DataRead,
    /// A flush of the data (which writes failed is unknown: every extent in
    /// the activity log may be affected).
    DataFlush,
    /// Bitmap, activity log or superblock.
    Meta,
}

/// One local I/O error and what the caller knows around it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IoError {
    pub policy: OnIoError,
    pub site: IoSite,
    pub primary: bool,
    /// Connected, and the peer's disk is UpToDate: a detached Primary still
    /// has the data (DRBD: a Primary may only detach then).
    pub peer_up_to_date: bool,
    /// The peer acknowledged this very write (protocol C): its data is safe
    /// there.
    pub peer_acked: bool,
}

/// What to do about an [`IoError`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct IoActions {
    /// Set the range's out-of-sync bits (for a flush: every hot AL extent).
    /// Always for data: also when the peer acked, the local copy is stale.
    pub mark_out_of_sync: bool,
    /// Complete the application's request with EIO.
    pub fail_app: bool,
    /// Drop the local disk (-> Diskless); its metadata is first marked
    /// not consistent, so a later attach resyncs from the peer.
    pub detach: bool,
    /// Run the `local-io-error` handler.
    pub run_handler: bool,
    /// The local disk is failing but cannot be dropped (a Primary without an
    /// UpToDate peer): no promotion or UUID rotation until it works again.
    pub fail_stop_meta: bool,
}

/// DRBD 8.4 (`__drbd_chk_io_error_`): `pass_on` reports a data error to the
/// upper layer and keeps the disk; a metadata error always detaches, as do
/// `detach` and `call-local-io-error` (the latter runs the `local-io-error`
/// handler first). The request completes successfully only if the peer has
/// the data (a write it acked) and the local disk is dropped; hbd serves no
/// I/O through the peer yet, so a read fails either way.
pub fn on_io_error(e: IoError) -> IoActions {
    let data = e.site != IoSite::Meta;
    let mut a = IoActions {
        mark_out_of_sync: data && e.site != IoSite::DataRead,
        ..IoActions::default()
    };
    let wants_detach = !(data && e.policy == OnIoError::PassOn);
    a.run_handler = wants_detach && e.policy == OnIoError::CallLocalIoError;
    // A Primary must keep the only copy it can reach (state.rs refuses
    // Detach then): it fails I/O instead of going Diskless.
    let can_detach = !e.primary || e.peer_up_to_date;
    a.detach = wants_detach && can_detach;
    a.fail_stop_meta = wants_detach && !can_detach;
    a.fail_app = match e.site {
        IoSite::DataWrite => !(a.detach && e.peer_acked),
        IoSite::DataRead | IoSite::DataFlush => true,
        IoSite::Meta => false,
    };
    a
}

// ---------------------------------------------------------------- ko-count

/// Requests (writes, flushes) sent to the peer and not yet answered, with
/// their start times. DRBD 8.4 `request_timer_fn`: the peer is dropped once
/// its oldest request is older than `timeout × ko-count`.
#[derive(Debug, Clone, Default)]
pub struct KoTracker {
    window: Option<Millis>,
    started: BTreeMap<u64, Millis>,
}

/// The peer left request `seq` unanswered for `age` ms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Overdue {
    pub seq: u64,
    pub age: Millis,
}

impl KoTracker {
    /// `ko_count` 0 never drops the peer (as DRBD).
    pub fn new(timeout: Duration, ko_count: u32) -> KoTracker {
        let w = timeout.as_millis() as u64 * u64::from(ko_count);
        KoTracker {
            window: (ko_count > 0).then_some(w.max(1)),
            started: BTreeMap::new(),
        }
    }

    /// `timeout × ko-count`, if the peer can be dropped at all.
    pub fn window(&self) -> Option<Duration> {
        self.window.map(Duration::from_millis)
    }

    pub fn start(&mut self, seq: u64, now: Millis) {
        self.started.insert(seq, now);
    }

    pub fn done(&mut self, seq: u64) {
        self.started.remove(&seq);
    }

    pub fn len(&self) -> usize {
        self.started.len()
    }

    pub fn is_empty(&self) -> bool {
        self.started.is_empty()
    }

    /// The oldest request if it is overdue: drop the peer (its writes are
    /// then marked out of sync and the Primary carries on alone).
    pub fn overdue(&self, now: Millis) -> Option<Overdue> {
        let w = self.window?;
        self.started
            .iter()
            .min_by_key(|(_, t)| **t)
            .map(|(&seq, &t)| Overdue {
                seq,
                age: now.saturating_sub(t),
            })
            .filter(|o| o.age >= w)
    }

    /// Until when a caller waiting for the peer from `now` may wait (the
    /// window plus one `timeout`, for the watchdog to act first); `None`
    /// when the peer is never dropped.
    pub fn deadline(&self, now: Millis) -> Option<Millis> {
        self.window.map(|w| now + w + w.div_ceil(2))
    }
}

// ---------------------------------------------------------------- activity log

/// The peer's part in one aging round.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PeerFlush {
    /// No link carries writes, and any earlier link's unflushed writes are
    /// already marked out of sync (its teardown is complete).
    NotReplicating,
    /// A Flush was sent; waiting for its FlushAck.
    Pending,
    Acked,
    /// No FlushAck (link lost, or its teardown still running): try again in
    /// the next round, by when the blocks are marked out of sync.
    Failed,
}

/// One activity-log aging round. An extent may leave the activity log only
/// when no crash of both nodes can leave its blocks different with no bit
/// set: its writes must be on stable storage on this node (local flush)
/// and on the peer (a FlushAck for a Flush sent after them, as DRBD's
/// barriers give), or the peer is not replicating (then those writes set
/// bits). Candidates are extents with no write in flight at `tick`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Retirement {
    pub tick: u64,
    pub candidates: Vec<u64>,
    local: Option<bool>,
    peer: PeerFlush,
}

impl Retirement {
    /// `peer` is [`PeerFlush::Pending`] (a Flush must be sent after the
    /// candidates were taken), [`PeerFlush::NotReplicating`] or
    /// [`PeerFlush::Failed`] (a link is being torn down).
    pub fn new(tick: u64, candidates: Vec<u64>, peer: PeerFlush) -> Retirement {
        Retirement {
            tick,
            candidates,
            local: None,
            peer,
        }
    }

    /// Whether a Flush must be sent to the peer for this round.
    pub fn needs_peer_flush(&self) -> bool {
        self.peer == PeerFlush::Pending
    }

    pub fn local_flushed(&mut self, ok: bool) {
        self.local = Some(ok);
    }

    pub fn peer_flushed(&mut self, acked: bool) {
        if self.peer == PeerFlush::Pending {
            self.peer = if acked {
                PeerFlush::Acked
            } else {
                PeerFlush::Failed
            };
        }
    }

    /// The extents that may leave now (pass them to `ActivityLog::cool`
    /// with `tick`); empty until both sides flushed.
    pub fn retire(&self) -> &[u64] {
        let peer_ok = matches!(self.peer, PeerFlush::Acked | PeerFlush::NotReplicating);
        if self.local == Some(true) && peer_ok {
            &self.candidates
        } else {
            &[]
        }
    }
}

// ---------------------------------------------------------------- metadata

/// A metadata write.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum MetaWrite {
    Bitmap,
    ActivityLog,
    Superblock,
    /// Not a metadata write: the local disk failed and could not be
    /// dropped (a Primary's only reachable copy); cleared by a new attach.
    Disk,
}

/// Fail-stop for metadata: after a failed metadata write nothing may rely on
/// metadata that is not on disk. Bitmap pages stay dirty (the caller keeps
/// them and retries), an AL transaction that failed undoes its marks, and
/// no promotion (which rotates UUIDs) is allowed until every kind of write
/// that failed has succeeded again.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MetaGuard {
    failed: BTreeMap<MetaWrite, String>,
}

impl MetaGuard {
    pub fn failed(&mut self, what: MetaWrite, msg: impl Into<String>) {
        self.failed.insert(what, msg.into());
    }

    pub fn written(&mut self, what: MetaWrite) {
        self.failed.remove(&what);
    }

    pub fn healthy(&self) -> bool {
        self.failed.is_empty()
    }

    /// Refuses promotion while any metadata write is failing.
    pub fn may_promote(&self) -> Result<(), String> {
        match self.failed.iter().next() {
            None => Ok(()),
            Some((what, msg)) => Err(format!(
                "metadata unwritable ({what:?} write failed: {msg}): not promoting"
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(policy: OnIoError, site: IoSite, primary: bool, up: bool, acked: bool) -> IoActions {
        on_io_error(IoError {
            policy,
            site,
            primary,
            peer_up_to_date: up,
            peer_acked: acked,
        })
    }

    #[test]
    fn pass_on_reports_and_marks_but_keeps_the_disk() {
        let a = err(OnIoError::PassOn, IoSite::DataWrite, true, true, true);
        assert!(a.mark_out_of_sync && a.fail_app);
        assert!(!a.detach && !a.run_handler && !a.fail_stop_meta);
        // Metadata errors detach even with pass_on (DRBD_META_IO_ERROR).
        let a = err(OnIoError::PassOn, IoSite::Meta, false, true, false);
        assert!(a.detach && !a.fail_app && !a.mark_out_of_sync);
    }

    #[test]
    fn detach_keeps_a_write_the_peer_acked() {
        let a = err(OnIoError::Detach, IoSite::DataWrite, true, true, true);
        assert!(a.mark_out_of_sync && a.detach && !a.fail_app && !a.run_handler);
        let a = err(OnIoError::Detach, IoSite::DataWrite, true, true, false);
        assert!(a.detach && a.fail_app);
        // A Primary without an UpToDate peer keeps its disk and fails I/O.
        let a = err(OnIoError::Detach, IoSite::DataWrite, true, false, false);
        assert!(!a.detach && a.fail_app && a.fail_stop_meta && a.mark_out_of_sync);
        // A Secondary always may.
        let a = err(OnIoError::Detach, IoSite::DataFlush, false, false, false);
        assert!(a.detach && a.mark_out_of_sync);
    }

    #[test]
    fn call_local_io_error_runs_the_handler_then_detaches() {
        let a = err(
            OnIoError::CallLocalIoError,
            IoSite::DataWrite,
            false,
            true,
            false,
        );
        assert!(a.run_handler && a.detach && a.mark_out_of_sync);
    }

    #[test]
    fn ko_count_drops_a_peer_that_does_not_answer() {
        let mut k = KoTracker::new(Duration::from_millis(500), 2);
        assert_eq!(k.window(), Some(Duration::from_secs(1)));
        k.start(1, 1000);
        k.start(2, 1500);
        assert_eq!(k.overdue(1999), None);
        assert_eq!(k.overdue(2000), Some(Overdue { seq: 1, age: 1000 }));
        k.done(1);
        assert_eq!(k.overdue(2000), None);
        assert_eq!(k.overdue(2600), Some(Overdue { seq: 2, age: 1100 }));
        assert_eq!(k.deadline(0), Some(1500));
        let never = KoTracker::new(Duration::from_millis(500), 0);
        assert_eq!(never.window(), None);
        assert_eq!(never.deadline(0), None);
    }

    #[test]
    fn an_extent_stays_until_the_peer_flushed_it() {
        // Finding 5: a local flush alone must not retire an extent.
        let mut r = Retirement::new(7, vec![3, 4], PeerFlush::Pending);
        assert!(r.needs_peer_flush());
        r.local_flushed(true);
        assert!(r.retire().is_empty());
        r.peer_flushed(true);
        assert_eq!(r.retire(), &[3, 4]);
        // No FlushAck: nothing leaves this round.
        let mut r = Retirement::new(7, vec![3], PeerFlush::Pending);
        r.local_flushed(true);
        r.peer_flushed(false);
        assert!(r.retire().is_empty());
        // A failed local flush: nothing leaves either.
        let mut r = Retirement::new(7, vec![3], PeerFlush::Pending);
        r.local_flushed(false);
        r.peer_flushed(true);
        assert!(r.retire().is_empty());
        // Not replicating: the writes set bits, the local flush suffices.
        let mut r = Retirement::new(7, vec![3], PeerFlush::NotReplicating);
        assert!(!r.needs_peer_flush());
        r.local_flushed(true);
        assert_eq!(r.retire(), &[3]);
        // A link being torn down: wait for its bits.
        let mut r = Retirement::new(7, vec![3], PeerFlush::Failed);
        r.local_flushed(true);
        assert!(r.retire().is_empty());
    }

    #[test]
    fn failed_metadata_vetoes_promotion_until_written() {
        let mut g = MetaGuard::default();
        assert!(g.may_promote().is_ok());
        g.failed(MetaWrite::Superblock, "EIO");
        let e = g.may_promote().unwrap_err();
        assert!(e.contains("Superblock") && e.contains("EIO"), "{e}");
        g.written(MetaWrite::Bitmap);
        assert!(!g.healthy());
        g.written(MetaWrite::Superblock);
        assert!(g.healthy() && g.may_promote().is_ok());
    }
}
