//! Resync and online verify: every decision, no I/O (sans-IO, as
//! [`super::state`]).
//!
//! DRBD 8.4 does this in `drbd/drbd_worker.c` (`make_resync_request`,
//! `w_e_end_rsdata_req`, `make_ov_request`, `w_e_end_ov_req`,
//! `drbd_resync_finished`) and `drbd/drbd_receiver.c`
//! (`receive_DataRequest`, `receive_rs_data`, `got_IsInSync`,
//! `got_OVResult`). Here the device ([`super::device`]) does only the I/O:
//! it reads and writes the store, sends frames and sleeps; this module
//! says what to request, what to accept, what to write, what to
//! acknowledge and when a resync or verify is over.
//!
//! # API (drivable without tokio)
//!
//! Everything comes in as arguments: the connection state and role (from
//! [`super::state::Resource`]), the bitmap by reference, and `now` as a
//! [`Duration`] since any fixed origin the caller chooses (a simulation
//! passes its virtual clock). Nothing here reads a clock, a socket or a
//! file, and nothing blocks.
//!
//! * [`Geometry`] checks every peer-supplied `(offset, len)` and turns it
//!   into a [`BlockRange`]: aligned to [`BM_BLOCK`], non-empty, at most
//!   [`MAX_REQUEST`] long, inside the data area, no overflow (finding 8).
//! * [`Target`] (the SyncTarget, one per resync): call [`Target::poll`]
//!   until it answers [`TargetStep::Done`] or [`TargetStep::Stop`]:
//!   - `Request(r)`: send `RsReq` for `r` (already counted in flight);
//!   - `Pace(t)` / `Wait`: sleep until `t` / until something happens;
//!   - `Flush(ticket)`: flush the store, then [`Target::flushed`] names
//!     the ranges to acknowledge with `RsAck` (only data written before
//!     the flush started);
//!   - `Done`: send `RsDone` and feed `Input::SyncDone` to the state
//!     machine (bitmap empty, nothing in flight, everything acknowledged).
//!
//!   For each `RsData`, [`Target::on_rs_data`] decides which blocks to write
//!   (or rejects it); after writing them call [`Target::written`] (clears
//!   their bits). [`Target::note_local_write`] records an application write
//!   so resync data requested before it never overwrites it.
//! * [`Source`] (the SyncSource): [`Source::on_rs_req`] accepts a request
//!   (the device then reads and sends `RsData`), [`Source::on_rs_ack`]
//!   clears the acknowledged bits, [`Source::on_rs_done`] accepts the end.
//! * [`Verify`] (the node that runs `verify`): [`Verify::poll`] as the
//!   target's (`Request(r)`: read `r`, send `OvReq` with its digests),
//!   [`Verify::on_reply`] marks what differs; at the end
//!   [`after_verify`] says which side the blocks found are resynced from.
//!   [`ov_request`] checks a peer's `OvReq`, [`mark_differing`] marks
//!   the blocks the comparison found.
//!
//! A rejected frame is a [`Reject`]: `Ignore` for frames that may race a
//! state change (nothing is written, the link stays), `Violation` for frames
//! a correct peer never sends (the link is dropped).
//!
//! # Safety rules (issue 12, finding 3)
//!
//! * A Primary is never SyncTarget (also enforced in [`super::state`]):
//!   [`Target`] refuses every `RsData` while the local role is Primary.
//! * Only a SyncTarget accepts `RsData`, only for a range it requested and
//!   has not received yet, and only the blocks whose bit is still set and
//!   that no local write touched since the request.
//! * Only a SyncSource serves `RsReq` and takes `RsAck` (for a range it
//!   served); `OvReq` is answered only while Connected with UpToDate data.
//! * After verify the blocks found are resynced from the Primary, if there
//!   is one; with two Secondaries from the node that ran verify.

use std::collections::HashMap;
use std::time::Duration;

use super::meta::{Bitmap, BM_BLOCK};
use super::packet::{MAX_DATA, MAX_DIGESTS};
use super::state::{ConnState, DiskState, Role};

/// Resync and verify requests in flight (DRBD's resync window, small).
pub const RS_IN_FLIGHT: usize = 4;
/// Resync data the target writes before it flushes and acknowledges.
pub const RS_ACK_BATCH: u64 = 8 << 20;
/// Largest resync or verify request (one frame of data).
pub const MAX_REQUEST: u64 = MAX_DATA as u64;
/// A paced driver that fell behind may catch up by at most this much.
pub const PACING_SLACK: Duration = Duration::from_millis(100);
/// Verify gives up when requests in flight got no answer for this long.
pub const VERIFY_ANSWER_TIMEOUT: Duration = Duration::from_secs(30);
/// Served, unacknowledged requests a source keeps; a correct target acks
/// every [`RS_ACK_BATCH`] bytes, so it never has more than about
/// `RS_ACK_BATCH / BM_BLOCK + RS_IN_FLIGHT` outstanding.
pub const MAX_SERVED: usize = 2 * (RS_ACK_BATCH / BM_BLOCK) as usize + 16 * RS_IN_FLIGHT;
/// Requests a source reads at once (each holds up to [`MAX_REQUEST`] bytes).
pub const MAX_SERVING: usize = 2 * RS_IN_FLIGHT;

/// Why a peer's frame is not acted on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Reject {
    /// May race a state change: log it, write nothing, keep the link.
    #[error("{frame} ignored: {why}")]
    Ignore { frame: &'static str, why: String },
    /// A correct peer never sends this: drop the link.
    #[error("{frame}: {why}")]
    Violation { frame: &'static str, why: String },
}

impl Reject {
    pub fn ignore(frame: &'static str, why: impl Into<String>) -> Reject {
        Reject::Ignore {
            frame,
            why: why.into(),
        }
    }
    pub fn violation(frame: &'static str, why: impl Into<String>) -> Reject {
        Reject::Violation {
            frame,
            why: why.into(),
        }
    }
    pub fn is_violation(&self) -> bool {
        matches!(self, Reject::Violation { .. })
    }
}

/// A bad peer-supplied range.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RangeError {
    #[error("empty range at {offset}")]
    Empty { offset: u64 },
    #[error("range {offset}+{len} is not aligned to {BM_BLOCK} bytes")]
    Unaligned { offset: u64, len: u64 },
    #[error("range {offset}+{len} is longer than {max} bytes")]
    TooLong { offset: u64, len: u64, max: u64 },
    #[error("range {offset}+{len} is outside the {size}-byte data area")]
    Outside { offset: u64, len: u64, size: u64 },
    #[error("block index {index} outside the {blocks} blocks of {offset}+{len}")]
    BadIndex {
        offset: u64,
        len: u64,
        index: u32,
        blocks: u64,
    },
}

impl RangeError {
    fn reject(self, frame: &'static str) -> Reject {
        Reject::violation(frame, self.to_string())
    }
}

/// A checked byte range of the data area: `offset` and `len` multiples of
/// [`BM_BLOCK`] (or `len` ending at the end of the data area), `len > 0`,
/// `offset + len <= data_size`. Only [`Geometry`] makes one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct BlockRange {
    offset: u64,
    len: u64,
}

impl BlockRange {
    pub fn offset(self) -> u64 {
        self.offset
    }
    pub fn len(self) -> u64 {
        self.len
    }
    /// Never true (a range is non-empty); for clippy's `len_without_is_empty`.
    pub fn is_empty(self) -> bool {
        self.len == 0
    }
    pub fn end(self) -> u64 {
        self.offset + self.len
    }
    /// Number of bitmap blocks (the last may be partial at the device end).
    pub fn blocks(self) -> u64 {
        self.len.div_ceil(BM_BLOCK)
    }
    fn overlaps(self, o: BlockRange) -> bool {
        self.offset < o.end() && o.offset < self.end()
    }
    /// Block `index` of this range (checked: `index < blocks()`).
    pub fn block(self, index: u32) -> Result<BlockRange, RangeError> {
        let i = u64::from(index);
        if i >= self.blocks() {
            return Err(RangeError::BadIndex {
                offset: self.offset,
                len: self.len,
                index,
                blocks: self.blocks(),
            });
        }
        let offset = self.offset + i * BM_BLOCK;
        Ok(BlockRange {
            offset,
            len: BM_BLOCK.min(self.end() - offset),
        })
    }
    /// Byte range of `self` inside a buffer holding `outer` (which contains it).
    pub fn within(self, outer: BlockRange) -> std::ops::Range<usize> {
        let start = (self.offset - outer.offset) as usize;
        start..start + self.len as usize
    }
}

/// The data area's size: the one place peer-supplied ranges are checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Geometry {
    data_size: u64,
}

impl Geometry {
    pub fn new(data_size: u64) -> Geometry {
        Geometry { data_size }
    }

    pub fn data_size(self) -> u64 {
        self.data_size
    }

    /// Check `(offset, len)` from the peer (at most `max` bytes).
    pub fn range(self, offset: u64, len: u64, max: u64) -> Result<BlockRange, RangeError> {
        if len == 0 {
            return Err(RangeError::Empty { offset });
        }
        if len > max {
            return Err(RangeError::TooLong { offset, len, max });
        }
        let end = offset
            .checked_add(len)
            .filter(|&e| e <= self.data_size)
            .ok_or(RangeError::Outside {
                offset,
                len,
                size: self.data_size,
            })?;
        if !offset.is_multiple_of(BM_BLOCK)
            || (!len.is_multiple_of(BM_BLOCK) && end != self.data_size)
        {
            return Err(RangeError::Unaligned { offset, len });
        }
        Ok(BlockRange { offset, len })
    }
}

fn duration_for(len: u64, rate: u64) -> Duration {
    Duration::from_secs_f64(len as f64 / rate.max(1) as f64)
}

/// Merge `ranges` (sorted by offset) into runs of adjacent blocks.
fn coalesce(ranges: impl IntoIterator<Item = BlockRange>) -> Vec<BlockRange> {
    let mut out: Vec<BlockRange> = Vec::new();
    for r in ranges {
        match out.last_mut() {
            Some(last) if last.end() == r.offset => last.len += r.len,
            _ => out.push(r),
        }
    }
    out
}

// ---- SyncTarget ----

#[derive(Debug, Clone)]
struct Requested {
    range: BlockRange,
    /// Its data arrived and is being written ([`Target::written`] pending).
    applying: bool,
    /// Blocks a local write touched after the request (never overwritten).
    superseded: Vec<BlockRange>,
}

/// What the SyncTarget's driver does next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TargetStep {
    /// Send `RsReq` for this range (counted in flight already).
    Request(BlockRange),
    /// Rate limit: do nothing before this time.
    Pace(Duration),
    /// Wait for data, a flush or a state change.
    Wait,
    /// Flush the store, then call [`Target::flushed`].
    Flush(FlushTicket),
    /// Everything is written and acknowledged: send `RsDone`, feed
    /// `Input::SyncDone`. Answered once.
    Done,
    /// Not (or no longer) SyncTarget: the driver ends.
    Stop,
}

/// Resync data written (not yet flushed) when the flush was decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlushTicket {
    ranges: Vec<BlockRange>,
}

/// An accepted `RsData`: which blocks of the request to write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Accepted {
    pub request: BlockRange,
    /// Runs of blocks to write (bit still set, not superseded); may be empty.
    pub writes: Vec<BlockRange>,
}

/// The SyncTarget's side of one resync (`make_resync_request`,
/// `receive_rs_data`).
#[derive(Debug, Clone)]
pub struct Target {
    geo: Geometry,
    /// Scan cursor (bit). Requests in flight all lie before it, so a range
    /// found after it is never in flight twice; it wraps only when nothing
    /// is in flight.
    cursor: u64,
    inflight: Vec<Requested>,
    /// Requests whose data is written but not yet flushed.
    unacked: Vec<BlockRange>,
    unacked_bytes: u64,
    flushing: bool,
    next_at: Duration,
    finished: bool,
}

impl Target {
    pub fn new(geo: Geometry) -> Target {
        Target {
            geo,
            cursor: 0,
            inflight: Vec::new(),
            unacked: Vec::new(),
            unacked_bytes: 0,
            flushing: false,
            next_at: Duration::ZERO,
            finished: false,
        }
    }

    /// Requests in flight (including data being written).
    pub fn in_flight(&self) -> usize {
        self.inflight.len()
    }

    /// The next thing to do. `rate` is the resync rate in bytes/s.
    pub fn poll(
        &mut self,
        now: Duration,
        rate: u64,
        conn: ConnState,
        role: Role,
        bm: &Bitmap,
    ) -> TargetStep {
        if self.finished {
            return TargetStep::Stop;
        }
        match conn {
            ConnState::SyncTarget => {}
            ConnState::PausedSyncT => return TargetStep::Wait,
            _ => return TargetStep::Stop,
        }
        if role == Role::Primary {
            // Never drive a resync into a Primary (the state machine refuses
            // to get here; this is the second lock on the door).
            return TargetStep::Stop;
        }
        if !self.flushing && self.unacked_bytes >= RS_ACK_BATCH {
            return TargetStep::Flush(self.take_ticket());
        }
        if self.inflight.len() >= RS_IN_FLIGHT {
            return TargetStep::Wait;
        }
        if self.flushing && self.unacked_bytes >= RS_ACK_BATCH {
            // One batch lands while the last one flushes, no more: what
            // the source holds unacknowledged stays within two batches.
            return TargetStep::Wait;
        }
        if now < self.next_at {
            return TargetStep::Pace(self.next_at);
        }
        let max_bits = (MAX_REQUEST / BM_BLOCK).max(1);
        let mut wrapped = false;
        loop {
            let found = bm.next_set_range(self.cursor, max_bits);
            match found {
                Some((off, len)) => {
                    let end_bit = (off + len) / BM_BLOCK;
                    let Ok(range) = self.geo.range(off, len, MAX_REQUEST) else {
                        // A bitmap wider than the data area: skip the tail.
                        self.cursor = end_bit.max(self.cursor + 1);
                        continue;
                    };
                    if let Some(busy) = self
                        .inflight
                        .iter()
                        .map(|r| r.range)
                        .find(|r| r.overlaps(range))
                    {
                        // Defensive: never two requests for one block.
                        self.cursor = busy.end() / BM_BLOCK;
                        continue;
                    }
                    self.cursor = end_bit;
                    self.inflight.push(Requested {
                        range,
                        applying: false,
                        superseded: Vec::new(),
                    });
                    self.next_at = self.next_at.max(now.saturating_sub(PACING_SLACK))
                        + duration_for(len, rate);
                    return TargetStep::Request(range);
                }
                None if !self.inflight.is_empty() => return TargetStep::Wait,
                None if !wrapped && self.cursor > 0 => {
                    // Bits set behind the cursor (re-marked, or skipped as
                    // superseded): another pass.
                    self.cursor = 0;
                    wrapped = true;
                }
                None => break,
            }
        }
        if self.flushing {
            return TargetStep::Wait;
        }
        if !self.unacked.is_empty() {
            return TargetStep::Flush(self.take_ticket());
        }
        self.finished = true;
        TargetStep::Done
    }

    fn take_ticket(&mut self) -> FlushTicket {
        self.flushing = true;
        self.unacked_bytes = 0;
        FlushTicket {
            ranges: std::mem::take(&mut self.unacked),
        }
    }

    /// A batch is due (the link reader flushes it without waiting for the
    /// driver); `None` while another flush runs.
    pub fn take_flush_if_due(&mut self) -> Option<FlushTicket> {
        (!self.flushing && self.unacked_bytes >= RS_ACK_BATCH).then(|| self.take_ticket())
    }

    /// The ticket's flush completed: the ranges to acknowledge (`RsAck`).
    pub fn flushed(&mut self, t: FlushTicket) -> Vec<BlockRange> {
        self.flushing = false;
        t.ranges
    }

    /// An application write on this node (`receive_rs_data` must not undo
    /// it): blocks of requests still waiting for data that it touches are
    /// not overwritten by that data. Call it before the write reaches the
    /// store, with the device's write ordering lock ensuring data being
    /// applied is written first.
    pub fn note_local_write(&mut self, offset: u64, len: u64) {
        if len == 0 {
            return;
        }
        let start = offset / BM_BLOCK * BM_BLOCK;
        let end = offset
            .saturating_add(len)
            .div_ceil(BM_BLOCK)
            .saturating_mul(BM_BLOCK);
        for r in self.inflight.iter_mut().filter(|r| !r.applying) {
            let lo = start.max(r.range.offset);
            let hi = end.min(r.range.end());
            if lo < hi {
                r.superseded.push(BlockRange {
                    offset: lo,
                    len: hi - lo,
                });
            }
        }
    }

    /// Decide on `RsData` for `(offset, len)`.
    pub fn on_rs_data(
        &mut self,
        role: Role,
        conn: ConnState,
        bm: &Bitmap,
        offset: u64,
        len: u64,
    ) -> Result<Accepted, Reject> {
        const F: &str = "RsData";
        let range = self
            .geo
            .range(offset, len, MAX_REQUEST)
            .map_err(|e| e.reject(F))?;
        if role == Role::Primary {
            return Err(Reject::violation(F, "a Primary is never SyncTarget"));
        }
        if !matches!(conn, ConnState::SyncTarget | ConnState::PausedSyncT) {
            return Err(Reject::ignore(F, format!("not SyncTarget ({conn})")));
        }
        let Some(req) = self
            .inflight
            .iter_mut()
            .find(|r| r.range == range && !r.applying)
        else {
            return Err(Reject::violation(
                F,
                format!("{offset}+{len} was not requested"),
            ));
        };
        req.applying = true;
        let superseded = &req.superseded;
        let writes = coalesce((0..range.blocks()).filter_map(|i| {
            let b = range.block(i as u32).ok()?;
            let bit = b.offset / BM_BLOCK;
            (bm.get(bit) && !superseded.iter().any(|s| s.overlaps(b))).then_some(b)
        }));
        Ok(Accepted {
            request: range,
            writes,
        })
    }

    /// The accepted blocks are written: clear their bits (in memory: the
    /// bitmap writeback flushes the data before it writes cleared bits),
    /// and queue the request for acknowledgement after the next flush.
    /// Returns the bits cleared.
    pub fn written(&mut self, a: &Accepted, bm: &mut Bitmap) -> u64 {
        let Some(i) = self
            .inflight
            .iter()
            .position(|r| r.range == a.request && r.applying)
        else {
            return 0;
        };
        self.inflight.swap_remove(i);
        let cleared = a
            .writes
            .iter()
            .map(|w| bm.clear_range(w.offset, w.len))
            .sum();
        self.unacked.push(a.request);
        self.unacked_bytes += a.request.len;
        cleared
    }
}

// ---- SyncSource ----

/// The SyncSource's side of one resync (`receive_DataRequest`,
/// `got_IsInSync`).
#[derive(Debug, Clone)]
pub struct Source {
    geo: Geometry,
    /// Requests served and not acknowledged yet (with multiplicity).
    served: HashMap<BlockRange, u32>,
    outstanding: usize,
    /// Accepted requests whose data is not queued yet (being read).
    serving: usize,
    /// Blocks marked out of sync again after their range was served (a
    /// local write that failed here): the range's `RsAck` must not clear
    /// them (found by disk::sim).
    remarked: Vec<BlockRange>,
}

fn is_source(conn: ConnState) -> bool {
    matches!(conn, ConnState::SyncSource | ConnState::PausedSyncS)
}

impl Source {
    pub fn new(geo: Geometry) -> Source {
        Source {
            geo,
            served: HashMap::new(),
            outstanding: 0,
            serving: 0,
            remarked: Vec::new(),
        }
    }

    /// The device marked `[offset, offset+len)` out of sync (a local
    /// failure, the peer's OutOfSync): a served range's later `RsAck`
    /// acknowledges the data as it was read, not this newer state.
    pub fn note_mark(&mut self, offset: u64, len: u64) {
        if len == 0 || self.served.is_empty() {
            return;
        }
        let start = offset / BM_BLOCK * BM_BLOCK;
        let end = offset
            .saturating_add(len)
            .div_ceil(BM_BLOCK)
            .saturating_mul(BM_BLOCK);
        for r in self.served.keys() {
            let lo = start.max(r.offset);
            let hi = end.min(r.end());
            if lo < hi && self.remarked.len() < MAX_SERVED {
                self.remarked.push(BlockRange {
                    offset: lo,
                    len: hi - lo,
                });
            }
        }
    }

    /// Served requests waiting for their `RsAck`.
    pub fn outstanding(&self) -> usize {
        self.outstanding
    }

    /// Accept `RsReq`: the device reads the range, sends `RsData`, then
    /// calls [`Source::data_queued`]. Served while SyncSource or
    /// PausedSyncS (requests sent before a pause). At most
    /// [`MAX_SERVING`] are read at once (a correct target has at most
    /// [`RS_IN_FLIGHT`] requests out), so the device may serve them off the
    /// link's reader without unbounded memory.
    pub fn on_rs_req(
        &mut self,
        conn: ConnState,
        offset: u64,
        len: u64,
    ) -> Result<BlockRange, Reject> {
        const F: &str = "RsReq";
        let range = self
            .geo
            .range(offset, len, MAX_REQUEST)
            .map_err(|e| e.reject(F))?;
        if !is_source(conn) {
            return Err(Reject::violation(F, format!("not SyncSource ({conn})")));
        }
        if self.outstanding >= MAX_SERVED {
            return Err(Reject::violation(
                F,
                format!("more than {MAX_SERVED} requests unacknowledged"),
            ));
        }
        if self.serving >= MAX_SERVING {
            return Err(Reject::violation(
                F,
                format!("more than {MAX_SERVING} requests at once"),
            ));
        }
        *self.served.entry(range).or_default() += 1;
        self.outstanding += 1;
        self.serving += 1;
        Ok(range)
    }

    /// The data of an accepted request is queued (or its read failed).
    pub fn data_queued(&mut self) {
        self.serving = self.serving.saturating_sub(1);
    }

    /// `RsAck`: the target has the range on stable storage; clear our bits
    /// (only for a range we served). Returns the bits cleared.
    pub fn on_rs_ack(
        &mut self,
        conn: ConnState,
        offset: u64,
        len: u64,
        bm: &mut Bitmap,
    ) -> Result<u64, Reject> {
        const F: &str = "RsAck";
        let range = self
            .geo
            .range(offset, len, MAX_REQUEST)
            .map_err(|e| e.reject(F))?;
        if !is_source(conn) {
            return Err(Reject::ignore(F, format!("not SyncSource ({conn})")));
        }
        match self.served.get_mut(&range) {
            Some(n) => {
                *n -= 1;
                if *n == 0 {
                    self.served.remove(&range);
                }
                self.outstanding -= 1;
            }
            None => {
                return Err(Reject::violation(
                    F,
                    format!("{offset}+{len} was not served"),
                ))
            }
        }
        // Blocks marked again since the range was served stay set (they
        // are resynced by the next pass or handshake); they are forgotten
        // once no serve of the range is outstanding.
        let within = |m: &BlockRange| m.offset >= range.offset && m.end() <= range.end();
        let mut keep: Vec<BlockRange> = self.remarked.iter().copied().filter(within).collect();
        if !self.served.contains_key(&range) {
            self.remarked.retain(|m| !within(m));
        }
        keep.sort_by_key(|m| m.offset);
        let mut cleared = 0;
        let mut at = range.offset;
        for m in keep {
            if m.offset > at {
                cleared += bm.clear_range(at, m.offset - at);
            }
            at = at.max(m.end());
        }
        if at < range.end() {
            cleared += bm.clear_range(at, range.end() - at);
        }
        Ok(cleared)
    }

    /// `RsDone`: accepted when every served range was acknowledged.
    pub fn on_rs_done(&self, conn: ConnState) -> Result<(), Reject> {
        const F: &str = "RsDone";
        if !is_source(conn) {
            return Err(Reject::ignore(F, format!("not SyncSource ({conn})")));
        }
        if self.outstanding > 0 {
            return Err(Reject::violation(
                F,
                format!("{} served ranges unacknowledged", self.outstanding),
            ));
        }
        Ok(())
    }
}

/// A resync frame that arrived while no resync of that side runs:
/// malformed ones are violations, the rest `reject`.
pub fn stray(geo: Geometry, frame: &'static str, offset: u64, len: u64, ignore: bool) -> Reject {
    match geo.range(offset, len, MAX_REQUEST) {
        Err(e) => e.reject(frame),
        Ok(_) if ignore => Reject::ignore(frame, "no resync running"),
        Ok(_) => Reject::violation(frame, "no resync running"),
    }
}

// ---- online verify ----

/// What the verify driver does next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VerifyStep {
    /// Read this range and send `OvReq` with its digests.
    Request(BlockRange),
    Pace(Duration),
    Wait,
    /// Every block compared; `mismatched` bytes marked out of sync.
    Finished {
        mismatched: u64,
    },
    /// The connection changed or answers stopped: verify ends early.
    Aborted,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Running,
    Finished,
    Aborted,
}

/// The verifying node's side of online verify (`make_ov_request`,
/// `got_OVResult`).
#[derive(Debug, Clone)]
pub struct Verify {
    geo: Geometry,
    cursor: u64,
    inflight: Vec<BlockRange>,
    next_at: Duration,
    last_answer: Duration,
    done: u64,
    mismatched: u64,
    phase: Phase,
}

impl Verify {
    pub fn new(geo: Geometry) -> Verify {
        Verify {
            geo,
            cursor: 0,
            inflight: Vec::new(),
            next_at: Duration::ZERO,
            last_answer: Duration::ZERO,
            done: 0,
            mismatched: 0,
            phase: Phase::Running,
        }
    }

    pub fn running(&self) -> bool {
        self.phase == Phase::Running
    }
    pub fn done_bytes(&self) -> u64 {
        self.done
    }
    pub fn total_bytes(&self) -> u64 {
        self.geo.data_size
    }
    pub fn mismatched_bytes(&self) -> u64 {
        self.mismatched
    }
    pub fn in_flight(&self) -> usize {
        self.inflight.len()
    }

    /// End early (the read failed, the link went away).
    pub fn abort(&mut self) {
        if self.phase == Phase::Running {
            self.phase = Phase::Aborted;
            self.inflight.clear();
        }
    }

    pub fn poll(&mut self, now: Duration, rate: u64, conn: ConnState) -> VerifyStep {
        match self.phase {
            Phase::Running => {}
            Phase::Finished => {
                return VerifyStep::Finished {
                    mismatched: self.mismatched,
                }
            }
            Phase::Aborted => return VerifyStep::Aborted,
        }
        // drbd_adm_start_ov needs C_CONNECTED; a resync or disconnect ends it.
        if conn != ConnState::Connected {
            self.abort();
            return VerifyStep::Aborted;
        }
        if !self.inflight.is_empty() && now.saturating_sub(self.last_answer) > VERIFY_ANSWER_TIMEOUT
        {
            self.abort();
            return VerifyStep::Aborted;
        }
        if self.cursor >= self.geo.data_size {
            if self.inflight.is_empty() {
                self.phase = Phase::Finished;
                return VerifyStep::Finished {
                    mismatched: self.mismatched,
                };
            }
            return VerifyStep::Wait;
        }
        if self.inflight.len() >= RS_IN_FLIGHT {
            return VerifyStep::Wait;
        }
        if now < self.next_at {
            return VerifyStep::Pace(self.next_at);
        }
        let len = MAX_REQUEST.min(self.geo.data_size - self.cursor);
        let Ok(range) = self.geo.range(self.cursor, len, MAX_REQUEST) else {
            self.abort();
            return VerifyStep::Aborted;
        };
        if self.inflight.is_empty() {
            self.last_answer = now;
        }
        self.cursor = range.end();
        self.inflight.push(range);
        self.next_at = self.next_at.max(now.saturating_sub(PACING_SLACK)) + duration_for(len, rate);
        VerifyStep::Request(range)
    }

    /// `OvReply` for `(offset, len)`: mark the differing blocks. Returns the
    /// bytes found out of sync.
    pub fn on_reply(
        &mut self,
        now: Duration,
        offset: u64,
        len: u64,
        differing: &[u32],
        bm: &mut Bitmap,
    ) -> Result<u64, Reject> {
        const F: &str = "OvReply";
        let range = self
            .geo
            .range(offset, len, MAX_REQUEST)
            .map_err(|e| e.reject(F))?;
        if self.phase != Phase::Running {
            return Err(Reject::ignore(F, "verify not running"));
        }
        let Some(i) = self.inflight.iter().position(|r| *r == range) else {
            return Err(Reject::violation(
                F,
                format!("{offset}+{len} was not asked"),
            ));
        };
        let found = mark_differing(range, differing, bm).map_err(|e| e.reject(F))?;
        self.inflight.swap_remove(i);
        self.last_answer = now;
        self.done = self.done.saturating_add(range.len).min(self.geo.data_size);
        self.mismatched = self.mismatched.saturating_add(found);
        Ok(found)
    }
}

/// Check a peer's `OvReq` (`offset`, `digests` 4 KiB digests): answered
/// only while Connected with UpToDate data (`receive_DataRequest`,
/// P_OV_REQUEST needs a connected, up-to-date disk).
pub fn ov_request(
    geo: Geometry,
    conn: ConnState,
    disk: DiskState,
    offset: u64,
    digests: usize,
) -> Result<BlockRange, Reject> {
    const F: &str = "OvReq";
    if digests == 0 || digests > MAX_DIGESTS {
        return Err(Reject::violation(
            F,
            format!("{digests} digests (1 to {MAX_DIGESTS})"),
        ));
    }
    // digests <= MAX_DIGESTS: no overflow.
    let want = digests as u64 * BM_BLOCK;
    let len = want.min(geo.data_size.saturating_sub(offset));
    let range = geo
        .range(offset, len, MAX_REQUEST)
        .map_err(|e| e.reject(F))?;
    if range.blocks() != digests as u64 {
        return Err(Reject::violation(
            F,
            format!("{digests} digests for {} blocks", range.blocks()),
        ));
    }
    if conn != ConnState::Connected {
        return Err(Reject::ignore(F, format!("not Connected ({conn})")));
    }
    if disk != DiskState::UpToDate {
        return Err(Reject::ignore(F, format!("local disk {disk}")));
    }
    Ok(range)
}

/// Mark the blocks `differing` (indexes into `range`) out of sync. Returns
/// the bytes they cover (each counted once).
pub fn mark_differing(
    range: BlockRange,
    differing: &[u32],
    bm: &mut Bitmap,
) -> Result<u64, RangeError> {
    let mut idx = differing.to_vec();
    idx.sort_unstable();
    idx.dedup();
    let blocks = idx
        .iter()
        .map(|&i| range.block(i))
        .collect::<Result<Vec<_>, _>>()?;
    let mut bytes = 0;
    for b in blocks {
        bm.set_range(b.offset, b.len);
        bytes += b.len;
    }
    Ok(bytes)
}

/// Where the blocks verify found are resynced from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResyncFrom {
    /// This node (it ran verify) is the source.
    Here,
    /// The peer is the source (it is Primary: its data is what the
    /// application acknowledged).
    Peer,
}

/// After verify found `mismatched` bytes: resync from the Primary if there
/// is one, else from the node that ran verify. (DRBD 8.4 only marks the
/// blocks and leaves the resync to a disconnect/connect, where the Primary's
/// new UUID makes it the source; hbd resyncs at once with the same choice.)
pub fn after_verify(mismatched: u64, me: Role, peer: Role) -> Option<ResyncFrom> {
    if mismatched == 0 {
        return None;
    }
    if me != Role::Primary && peer == Role::Primary {
        Some(ResyncFrom::Peer)
    } else {
        Some(ResyncFrom::Here)
    }
}

#[cfg(test)]
mod tests;
