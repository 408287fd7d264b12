//! Sans-IO decisions of the write path (issue 12, findings 4-6): what to do
//! about a local I/O error (`on-io-error`), when a peer that does not answer
//! is dropped (`timeout` × `ko-count`), when an extent may leave the activity
//! log, what may go on after a failed metadata write, and which writes the
//! peer may not have on stable storage (the transfer log and its barriers).
//! Inputs in, actions
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
//! - [`TransferLog`]: per link, `write(offset, len)` / `flush()` give the
//!   seq of a request to send (`None` once torn down), `has_room()` bounds
//!   the requests in flight, `needs_barrier()` says a write must first
//!   flush, `ack(seq)` / `flush_ack(seq)` (the barrier: retires the writes
//!   before it), `teardown()` gives the ranges the peer may not have on
//!   stable storage (mark them out of sync).
//! - [`MetaGuard`]: `failed(what, msg)` / `written(what)` after each metadata
//!   write, `may_promote()` vetoes promotion while metadata is unwritable.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
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

// ---------------------------------------------------------------- transfer log

/// Writes and flushes in flight to the peer (DRBD's `max-buffers`, small).
pub const MAX_IN_FLIGHT: usize = 64;
/// Transfer-log entries before a write first issues a barrier.
pub const MAX_TRANSFER_LOG: usize = 4096;

/// The peer answered a sequence number that is not in flight (a protocol
/// error: the link is dropped).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("ack for unknown seq {seq}")]
pub struct UnknownSeq {
    pub seq: u64,
}

/// DRBD 8.4's transfer log (`drbd_req.c`, `tl_release`/`tl_clear`) for one
/// established link: requests sent to the peer by sequence number, and the
/// writes the peer may not yet have on stable storage.
///
/// Protocol C: an `Ack` says the peer wrote the data, not that it is stable
/// there; a `FlushAck` for the barrier `seq` N says every write sent before
/// it (seq < N) is. A write leaves the log only under a barrier ack, so when
/// the link is lost, [`TransferLog::teardown`] names exactly the writes that
/// may be lost on the peer (the caller marks them out of sync). The log is
/// bounded: once it holds [`MAX_TRANSFER_LOG`] writes, the next write first
/// issues a barrier ([`TransferLog::needs_barrier`]).
#[derive(Debug, Clone)]
pub struct TransferLog {
    next_seq: u64,
    /// Sent and not yet answered: writes and barriers.
    open: BTreeSet<u64>,
    /// Writes `(seq, offset, len)` in seq order, not yet covered by a
    /// barrier ack.
    writes: VecDeque<(u64, u64, u64)>,
    dead: bool,
    max_in_flight: usize,
    max_log: usize,
}

impl Default for TransferLog {
    fn default() -> Self {
        TransferLog::new(MAX_IN_FLIGHT, MAX_TRANSFER_LOG)
    }
}

impl TransferLog {
    pub fn new(max_in_flight: usize, max_log: usize) -> TransferLog {
        TransferLog {
            next_seq: 0,
            open: BTreeSet::new(),
            writes: VecDeque::new(),
            dead: false,
            max_in_flight,
            max_log,
        }
    }

    /// The link is gone: nothing more is sent on it.
    pub fn is_dead(&self) -> bool {
        self.dead
    }

    /// Requests sent and not answered.
    pub fn in_flight(&self) -> usize {
        self.open.len()
    }

    /// A new request may be sent now (else wait for an answer).
    pub fn has_room(&self) -> bool {
        !self.dead && self.open.len() < self.max_in_flight
    }

    /// Writes not yet covered by a barrier ack.
    pub fn len(&self) -> usize {
        self.writes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.writes.is_empty()
    }

    /// The log is full: issue a barrier before the next write.
    pub fn needs_barrier(&self) -> bool {
        self.writes.len() >= self.max_log
    }

    fn next(&mut self) -> Option<u64> {
        if self.dead {
            return None;
        }
        let seq = self.next_seq;
        self.next_seq += 1;
        self.open.insert(seq);
        Some(seq)
    }

    /// A write of `len` bytes at `offset` is sent: its seq (`None` once torn
    /// down). Does not check the room: the caller waits for it.
    pub fn write(&mut self, offset: u64, len: u64) -> Option<u64> {
        let seq = self.next()?;
        self.writes.push_back((seq, offset, len));
        Some(seq)
    }

    /// A barrier (flush) is sent: its seq (`None` once torn down).
    pub fn flush(&mut self) -> Option<u64> {
        self.next()
    }

    fn answer(&mut self, seq: u64) -> Result<(), UnknownSeq> {
        if self.open.remove(&seq) {
            Ok(())
        } else {
            Err(UnknownSeq { seq })
        }
    }

    /// `Ack { seq }`: the request is answered; its write stays in the log
    /// (written on the peer, maybe not stable).
    pub fn ack(&mut self, seq: u64) -> Result<(), UnknownSeq> {
        self.answer(seq)
    }

    /// `FlushAck { seq }`: the barrier's rule, every write with a smaller seq
    /// is on the peer's stable storage and leaves the log.
    pub fn flush_ack(&mut self, seq: u64) -> Result<(), UnknownSeq> {
        self.answer(seq)?;
        while self.writes.front().is_some_and(|&(s, _, _)| s < seq) {
            self.writes.pop_front();
        }
        Ok(())
    }

    /// The peer no longer takes writes (its disk is gone) but the link
    /// stays: the ranges `(offset, len)` it may not have on stable storage.
    pub fn drain_unflushed(&mut self) -> Vec<(u64, u64)> {
        self.writes.drain(..).map(|(_, o, l)| (o, l)).collect()
    }

    /// The link is gone: every open request stays unanswered (the caller
    /// fails its waiters), and the returned ranges `(offset, len)` may not
    /// be on the peer's stable storage.
    pub fn teardown(&mut self) -> Vec<(u64, u64)> {
        self.dead = true;
        self.open.clear();
        self.drain_unflushed()
    }
}

// ---------------------------------------------------------------- apply order

/// A request the [`ApplyOrder`] lets start now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Start {
    /// Write the data of this seq to the backing file.
    Write(u64),
    /// Flush the backing file, then answer this barrier (`FlushAck`).
    Flush(u64),
}

/// The order in which replicated requests may be applied to a backing file
/// (DRBD's epochs and its conflict detection), for many requests in flight:
///
/// - writes that do not overlap any earlier unfinished write start at once,
///   in any order, concurrently;
/// - a write overlapping an earlier (smaller seq) unfinished write waits
///   for it, so overlapping writes land in seq order and both replicas end
///   with the same bytes;
/// - a barrier (`Flush`) starts only once every earlier request (writes
///   and barriers) has finished: its flush then covers every write sent
///   before it, which is what its `FlushAck` promises. Later writes do not
///   wait for a barrier (landing early only adds to what it covers).
///
/// Used by the receiver (every `Write`/`Flush` frame) and by the Primary
/// for its own local writes (whose seq order is the order they were sent).
/// Inputs in, starts out: `write`/`flush` register a request (seqs
/// strictly increasing) and say whether it starts now; `done` finishes one
/// and gives those that start because of it, in seq order.
#[derive(Debug, Clone, Default)]
pub struct ApplyOrder {
    /// Unfinished requests by seq: `Some((offset, len))` for a write,
    /// `None` for a barrier; and whether each has started.
    open: BTreeMap<u64, (Option<(u64, u64)>, bool)>,
    last_seq: Option<u64>,
}

/// A request registered out of seq order, or finished twice.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ApplyError {
    #[error("request seq {0} is not after the last one")]
    OutOfOrder(u64),
    #[error("request seq {0} is not running")]
    NotRunning(u64),
}

fn overlaps(a: (u64, u64), b: (u64, u64)) -> bool {
    a.0 < b.0.saturating_add(b.1) && b.0 < a.0.saturating_add(a.1)
}

impl ApplyOrder {
    /// Requests registered and not finished (started or waiting).
    pub fn len(&self) -> usize {
        self.open.len()
    }

    pub fn is_empty(&self) -> bool {
        self.open.is_empty()
    }

    /// Requests started and not finished.
    pub fn running(&self) -> usize {
        self.open.values().filter(|(_, s)| *s).count()
    }

    fn register(&mut self, seq: u64, what: Option<(u64, u64)>) -> Result<(), ApplyError> {
        if self.last_seq.is_some_and(|l| seq <= l) {
            return Err(ApplyError::OutOfOrder(seq));
        }
        self.last_seq = Some(seq);
        self.open.insert(seq, (what, false));
        Ok(())
    }

    /// May the request `seq` start, given everything before it?
    fn may_start(&self, seq: u64) -> bool {
        let Some(&(what, _)) = self.open.get(&seq) else {
            return false;
        };
        let mut earlier = self.open.range(..seq);
        match what {
            None => earlier.next().is_none(),
            Some(w) => !earlier.any(|(_, (e, _))| e.is_some_and(|e| overlaps(e, w))),
        }
    }

    fn try_start(&mut self, seq: u64) -> Option<Start> {
        if !self.may_start(seq) {
            return None;
        }
        let e = self.open.get_mut(&seq)?;
        if e.1 {
            return None;
        }
        e.1 = true;
        Some(match e.0 {
            Some(_) => Start::Write(seq),
            None => Start::Flush(seq),
        })
    }

    /// A write of `len` bytes at `offset` with `seq` arrived: `true` if it
    /// starts now (else a later [`ApplyOrder::done`] names it).
    pub fn write(&mut self, seq: u64, offset: u64, len: u64) -> Result<bool, ApplyError> {
        self.register(seq, Some((offset, len.max(1))))?;
        Ok(self.try_start(seq).is_some())
    }

    /// A barrier with `seq` arrived: `true` if its flush starts now.
    pub fn flush(&mut self, seq: u64) -> Result<bool, ApplyError> {
        self.register(seq, None)?;
        Ok(self.try_start(seq).is_some())
    }

    /// The started request `seq` finished (written, or flushed and
    /// answered): the requests that start now, in seq order.
    pub fn done(&mut self, seq: u64) -> Result<Vec<Start>, ApplyError> {
        match self.open.get(&seq) {
            Some((_, true)) => {}
            _ => return Err(ApplyError::NotRunning(seq)),
        }
        let (what, _) = self.open.remove(&seq).expect("checked");
        // Only later requests can have waited for this one: a barrier (if
        // nothing earlier is left), or writes overlapping it (or any
        // write, after a barrier, which never blocks writes).
        let waiting: Vec<u64> = self
            .open
            .range(seq..)
            .filter(|(_, (w, started))| {
                !started
                    && match (w, what) {
                        (None, _) => true,
                        (Some(w), Some(d)) => overlaps(*w, d),
                        (Some(_), None) => false,
                    }
            })
            .map(|(&s, _)| s)
            .collect();
        Ok(waiting
            .into_iter()
            .filter_map(|s| self.try_start(s))
            .collect())
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
    pub fn may_promote(&self) -> Result<(), MetaUnwritable> {
        match self.failed.iter().next() {
            None => Ok(()),
            Some((what, msg)) => Err(MetaUnwritable {
                what: *what,
                message: msg.clone(),
            }),
        }
    }
}

/// Why [`MetaGuard::may_promote`] vetoes a promotion: a metadata write is
/// failing (the first kind that fails, and its error).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("metadata unwritable ({what:?} write failed: {message}): not promoting")]
pub struct MetaUnwritable {
    pub what: MetaWrite,
    pub message: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn a_flush_ack_retires_only_the_writes_before_it() {
        let mut tl = TransferLog::new(8, 100);
        let w0 = tl.write(0, 4096).unwrap();
        let w1 = tl.write(8192, 4096).unwrap();
        let f = tl.flush().unwrap();
        let w3 = tl.write(16384, 512).unwrap();
        assert_eq!((w0, w1, f, w3), (0, 1, 2, 3));
        assert_eq!(tl.in_flight(), 4);
        tl.ack(w0).unwrap();
        tl.ack(w1).unwrap();
        tl.ack(w3).unwrap();
        // Acked but not flushed: still in the log.
        assert_eq!(tl.len(), 3);
        tl.flush_ack(f).unwrap();
        assert_eq!(tl.len(), 1);
        assert_eq!(tl.in_flight(), 0);
        assert_eq!(tl.teardown(), vec![(16384, 512)]);
        assert!(tl.is_dead());
        assert_eq!(tl.write(0, 1), None);
        assert_eq!(tl.flush(), None);
    }

    #[test]
    fn unknown_or_repeated_acks_are_errors() {
        let mut tl = TransferLog::default();
        assert_eq!(tl.ack(0), Err(UnknownSeq { seq: 0 }));
        let s = tl.write(0, 1).unwrap();
        tl.ack(s).unwrap();
        assert_eq!(tl.ack(s), Err(UnknownSeq { seq: s }));
        assert_eq!(tl.flush_ack(s), Err(UnknownSeq { seq: s }));
        // A rejected flush ack retires nothing.
        assert_eq!(tl.len(), 1);
    }

    #[test]
    fn the_log_and_the_requests_in_flight_are_bounded() {
        let mut tl = TransferLog::new(2, 3);
        let a = tl.write(0, 1).unwrap();
        assert!(tl.has_room());
        let b = tl.write(1, 1).unwrap();
        assert!(!tl.has_room());
        tl.ack(a).unwrap();
        tl.ack(b).unwrap();
        assert!(tl.has_room() && !tl.needs_barrier());
        let c = tl.write(2, 1).unwrap();
        tl.ack(c).unwrap();
        assert!(tl.needs_barrier());
        let f = tl.flush().unwrap();
        tl.flush_ack(f).unwrap();
        assert!(!tl.needs_barrier() && tl.is_empty());
        assert_eq!(tl.drain_unflushed(), vec![]);
        assert!(!tl.is_dead());
    }

    #[derive(Debug, Clone)]
    enum Op {
        Write(u64),
        Flush,
        /// Answer the n-th open request (mod their number); a write gets an
        /// `Ack`, a barrier a `FlushAck`.
        Answer(usize),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            4 => (0u64..64).prop_map(Op::Write),
            1 => Just(Op::Flush),
            4 => any::<usize>().prop_map(Op::Answer),
        ]
    }

    proptest! {
        /// After any writes, acks, flush acks and a teardown: every write
        /// not covered by a FlushAck (of a barrier sent after it) is in the
        /// teardown ranges, and no covered write is.
        #[test]
        fn teardown_names_exactly_the_writes_no_barrier_covered(
            ops in proptest::collection::vec(op(), 0..200)
        ) {
            let mut tl = TransferLog::new(usize::MAX, usize::MAX);
            // Offsets are unique: block b of write i at (i << 8) | b.
            let mut writes: Vec<(u64, u64)> = Vec::new(); // (seq, offset)
            let mut open: Vec<(u64, bool)> = Vec::new(); // (seq, is_barrier)
            let mut acked_barriers: Vec<u64> = Vec::new();
            for (i, o) in ops.into_iter().enumerate() {
                match o {
                    Op::Write(b) => {
                        let off = ((i as u64) << 8) | b;
                        let s = tl.write(off, 512).unwrap();
                        writes.push((s, off));
                        open.push((s, false));
                    }
                    Op::Flush => open.push((tl.flush().unwrap(), true)),
                    Op::Answer(n) if !open.is_empty() => {
                        let (s, barrier) = open.remove(n % open.len());
                        if barrier {
                            tl.flush_ack(s).unwrap();
                            acked_barriers.push(s);
                        } else {
                            tl.ack(s).unwrap();
                        }
                    }
                    Op::Answer(_) => {}
                }
            }
            let lost: BTreeSet<u64> = tl.teardown().into_iter().map(|(o, _)| o).collect();
            for (s, off) in writes {
                let covered = acked_barriers.iter().any(|&b| s < b);
                prop_assert_eq!(lost.contains(&off), !covered, "write seq {} at {}", s, off);
            }
        }
    }

    #[test]
    fn overlapping_writes_wait_and_barriers_wait_for_everything_earlier() {
        let mut a = ApplyOrder::default();
        assert!(a.write(0, 0, 4096).unwrap());
        assert!(a.write(1, 8192, 4096).unwrap());
        // Overlaps seq 0: waits.
        assert!(!a.write(2, 2048, 4096).unwrap());
        // A barrier waits for all three.
        assert!(!a.flush(3).unwrap());
        // Later writes do not wait for the barrier, only for overlaps.
        assert!(a.write(4, 1 << 20, 512).unwrap());
        assert!(!a.write(5, 8192, 1).unwrap());
        assert_eq!(a.running(), 3);
        assert_eq!(a.done(1).unwrap(), vec![Start::Write(5)]);
        assert_eq!(a.done(0).unwrap(), vec![Start::Write(2)]);
        assert_eq!(a.done(2).unwrap(), vec![Start::Flush(3)]);
        assert_eq!(a.done(4).unwrap(), vec![]);
        assert!(!a.flush(6).unwrap());
        assert_eq!(a.done(3).unwrap(), vec![]);
        assert_eq!(a.done(5).unwrap(), vec![Start::Flush(6)]);
        assert_eq!(a.done(6).unwrap(), vec![]);
        assert!(a.is_empty());
        assert_eq!(a.done(6), Err(ApplyError::NotRunning(6)));
        assert_eq!(a.write(6, 0, 1), Err(ApplyError::OutOfOrder(6)));
        // Not yet started: not finishable either.
        assert!(a.write(7, 0, 10).unwrap());
        assert!(!a.write(8, 5, 10).unwrap());
        assert_eq!(a.done(8), Err(ApplyError::NotRunning(8)));
    }

    proptest! {
        /// Any arrivals and any completion order of what is running: a
        /// write starts only after every earlier overlapping write finished,
        /// a barrier only after every earlier request finished, nothing
        /// waits while nothing runs, and the blocks end as if every write
        /// had been applied one at a time in seq order.
        #[test]
        fn apply_order_is_seq_order_where_it_matters(
            ops in proptest::collection::vec((0u8..10, 0u64..16, 1u64..4, any::<usize>()), 1..150)
        ) {
            let mut a = ApplyOrder::default();
            let mut seq = 0u64;
            let mut running: Vec<u64> = Vec::new();
            let mut finished: BTreeSet<u64> = BTreeSet::new();
            let mut reqs: BTreeMap<u64, Option<(u64, u64)>> = BTreeMap::new();
            let mut blocks = [None::<u64>; 20];
            let mut expect = [None::<u64>; 20];
            let check_start = |s: u64, reqs: &BTreeMap<u64, Option<(u64, u64)>>, finished: &BTreeSet<u64>| {
                let me = reqs[&s];
                for (&e, &w) in reqs.range(..s) {
                    let must = match (me, w) {
                        (None, _) => true,
                        (Some(m), Some(w)) => overlaps(m, w),
                        (Some(_), None) => false,
                    };
                    assert!(!must || finished.contains(&e), "{s} started before {e}");
                }
            };
            let apply = |s: u64, reqs: &BTreeMap<u64, Option<(u64, u64)>>, blocks: &mut [Option<u64>; 20]| {
                if let Some((o, l)) = reqs[&s] {
                    for b in o..o + l {
                        blocks[b as usize] = Some(s);
                    }
                }
            };
            let mut all_ops = ops.clone();
            // Then finish everything.
            all_ops.extend(std::iter::repeat_n((9u8, 0, 1, 0), 400));
            for (kind, off, len, pick) in all_ops {
                match kind {
                    0..=4 if seq < 120 => {
                        reqs.insert(seq, Some((off, len)));
                        for b in off..off + len {
                            expect[b as usize] = Some(seq);
                        }
                        if a.write(seq, off, len).unwrap() {
                            check_start(seq, &reqs, &finished);
                            running.push(seq);
                        }
                        seq += 1;
                    }
                    5 if seq < 120 => {
                        reqs.insert(seq, None);
                        if a.flush(seq).unwrap() {
                            check_start(seq, &reqs, &finished);
                            running.push(seq);
                        }
                        seq += 1;
                    }
                    _ if !running.is_empty() => {
                        let s = running.swap_remove(pick % running.len());
                        apply(s, &reqs, &mut blocks);
                        finished.insert(s);
                        for st in a.done(s).unwrap() {
                            let (Start::Write(n) | Start::Flush(n)) = st;
                            check_start(n, &reqs, &finished);
                            running.push(n);
                        }
                    }
                    _ => {}
                }
                prop_assert!(!running.is_empty() || a.is_empty(), "waiting with nothing running");
                prop_assert_eq!(a.running(), running.len());
            }
            prop_assert!(a.is_empty());
            prop_assert_eq!(blocks, expect);
        }
    }

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
        assert_eq!(e.what, MetaWrite::Superblock);
        assert_eq!(
            e.to_string(),
            "metadata unwritable (Superblock write failed: EIO): not promoting"
        );
        g.written(MetaWrite::Bitmap);
        assert!(!g.healthy());
        g.written(MetaWrite::Superblock);
        assert!(g.healthy() && g.may_promote().is_ok());
    }
}
