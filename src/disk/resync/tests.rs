//! Unit tests of `disk/resync.rs`.

use super::*;
use proptest::prelude::*;

const MIB: u64 = 1 << 20;
const SIZE: u64 = 32 * MIB;

fn geo() -> Geometry {
    Geometry::new(SIZE)
}

fn bitmap() -> Bitmap {
    Bitmap::new(SIZE / BM_BLOCK)
}

fn violation<T: std::fmt::Debug>(r: Result<T, Reject>) -> bool {
    matches!(r, Err(Reject::Violation { .. }))
}

fn ignored<T: std::fmt::Debug>(r: Result<T, Reject>) -> bool {
    matches!(r, Err(Reject::Ignore { .. }))
}

// ---- finding 8: peer-controlled arithmetic ----

#[test]
fn ranges_are_checked_without_overflow() {
    let g = geo();
    assert_eq!(
        g.range(0, 0, MAX_REQUEST),
        Err(RangeError::Empty { offset: 0 })
    );
    assert!(matches!(
        g.range(1, 4096, MAX_REQUEST),
        Err(RangeError::Unaligned { .. })
    ));
    assert!(matches!(
        g.range(0, 4095, MAX_REQUEST),
        Err(RangeError::Unaligned { .. })
    ));
    assert!(matches!(
        g.range(0, SIZE, MAX_REQUEST),
        Err(RangeError::TooLong { .. })
    ));
    assert!(matches!(
        g.range(u64::MAX - 4095, 4096, MAX_REQUEST),
        Err(RangeError::Outside { .. })
    ));
    assert!(matches!(
        g.range(u64::MAX, u64::MAX, u64::MAX),
        Err(RangeError::Outside { .. })
    ));
    assert!(matches!(
        g.range(SIZE, 4096, MAX_REQUEST),
        Err(RangeError::Outside { .. })
    ));
    let r = g.range(SIZE - MIB, MIB, MAX_REQUEST).unwrap();
    assert_eq!(
        (r.offset(), r.len(), r.end(), r.blocks()),
        (SIZE - MIB, MIB, SIZE, 256)
    );
    assert!(matches!(r.block(256), Err(RangeError::BadIndex { .. })));
    assert!(matches!(
        r.block(u32::MAX),
        Err(RangeError::BadIndex { .. })
    ));
    assert_eq!(r.block(255).unwrap().end(), SIZE);
    // A data area that ends inside a block (not made by meta, but safe).
    let odd = Geometry::new(10_000);
    let last = odd.range(8192, 10_000 - 8192, MAX_REQUEST).unwrap();
    assert_eq!(last.blocks(), 1);
    assert_eq!(last.block(0).unwrap().len(), 10_000 - 8192);
}

#[test]
fn hostile_verify_frames_never_panic_or_allocate() {
    let g = geo();
    let c = ConnState::Connected;
    let up = DiskState::UpToDate;
    // OvReq: digest count and offset.
    assert!(violation(ov_request(g, c, up, 0, 0)));
    assert!(violation(ov_request(g, c, up, 0, MAX_DIGESTS + 1)));
    assert!(violation(ov_request(g, c, up, u64::MAX - 100, 1)));
    assert!(violation(ov_request(g, c, up, 4095, 1)));
    assert!(violation(ov_request(g, c, up, SIZE, 1)));
    // More digests than blocks left before the end.
    assert!(violation(ov_request(g, c, up, SIZE - 4096, 2)));
    let r = ov_request(g, c, up, SIZE - MIB, MAX_DIGESTS).unwrap();
    assert_eq!(r.len(), MIB);
    // Out of state: ignored, not answered.
    assert!(ignored(ov_request(g, ConnState::SyncSource, up, 0, 1)));
    assert!(ignored(ov_request(g, c, DiskState::Inconsistent, 0, 1)));
    // OvReply: offset + index * BM_BLOCK, done += len.
    let mut bm = bitmap();
    let mut v = Verify::new(g);
    let now = Duration::ZERO;
    let VerifyStep::Request(first) = v.poll(now, u64::MAX, c) else {
        panic!()
    };
    assert!(violation(v.on_reply(now, u64::MAX - 1, 1, &[0], &mut bm)));
    assert!(violation(v.on_reply(now, 0, u64::MAX, &[0], &mut bm)));
    assert!(violation(v.on_reply(
        now,
        first.offset(),
        first.len(),
        &[u32::MAX],
        &mut bm
    )));
    assert_eq!(bm.count(), 0, "nothing marked by a rejected reply");
    assert_eq!(
        v.on_reply(now, first.offset(), first.len(), &[3, 3, 3, 0], &mut bm),
        Ok(2 * BM_BLOCK),
        "duplicates count once"
    );
    assert_eq!(bm.count(), 2);
    assert_eq!(v.done_bytes(), first.len());
    // The same answer twice: not asked any more.
    assert!(violation(v.on_reply(
        now,
        first.offset(),
        first.len(),
        &[],
        &mut bm
    )));
    // mark_differing bounds.
    assert!(mark_differing(first, &[256], &mut bm).is_err());
}

#[test]
fn hostile_resync_requests_are_bounded() {
    let g = geo();
    let mut s = Source::new(g);
    let src = ConnState::SyncSource;
    // `len as usize` allocations: at most one frame of data.
    assert!(violation(s.on_rs_req(src, 0, SIZE)));
    assert!(violation(s.on_rs_req(src, 0, u64::MAX)));
    assert!(violation(s.on_rs_req(src, u64::MAX - 4095, 4096)));
    assert!(violation(s.on_rs_req(src, 512, 4096)));
    assert!(violation(s.on_rs_req(src, 0, 0)));
    // Only a SyncSource serves.
    assert!(violation(s.on_rs_req(ConnState::Connected, 0, 4096)));
    assert!(violation(s.on_rs_req(ConnState::SyncTarget, 0, 4096)));
    assert_eq!(s.outstanding(), 0);
    // A target that never acknowledges cannot grow the source's memory.
    for i in 0..MAX_SERVED as u64 {
        let off = (i * BM_BLOCK) % SIZE;
        s.on_rs_req(ConnState::PausedSyncS, off, BM_BLOCK).unwrap();
        s.data_queued();
    }
    assert!(violation(s.on_rs_req(src, 0, BM_BLOCK)));
    // Nor can one that floods requests faster than they are read.
    let mut s = Source::new(g);
    for _ in 0..MAX_SERVING {
        s.on_rs_req(src, 0, MAX_REQUEST).unwrap();
    }
    assert!(violation(s.on_rs_req(src, 0, MAX_REQUEST)));
    s.data_queued();
    s.on_rs_req(src, 0, MAX_REQUEST).unwrap();
    // Found by the proptest: a write at the end of u64 space.
    let mut t = Target::new(g);
    t.note_local_write(u64::MAX - 1, u64::MAX);
    // Stray frames.
    assert!(stray(g, "RsData", u64::MAX, 1, true).is_violation());
    assert!(!stray(g, "RsData", 0, 4096, true).is_violation());
    assert!(stray(g, "RsReq", 0, 4096, false).is_violation());
}

#[test]
fn source_acks_only_what_it_served() {
    let g = geo();
    let mut s = Source::new(g);
    let mut bm = bitmap();
    bm.set_range(0, 3 * MIB);
    let src = ConnState::SyncSource;
    assert!(violation(s.on_rs_ack(src, 0, MIB, &mut bm)));
    let r = s.on_rs_req(src, 0, MIB).unwrap();
    assert_eq!(r.len(), MIB);
    assert!(violation(s.on_rs_done(src)), "RsDone with a range unacked");
    assert!(ignored(s.on_rs_ack(ConnState::Connected, 0, MIB, &mut bm)));
    assert_eq!(s.on_rs_ack(src, 0, MIB, &mut bm), Ok(256));
    assert!(violation(s.on_rs_ack(src, 0, MIB, &mut bm)), "acked twice");
    assert_eq!(bm.count(), 512);
    assert_eq!(s.on_rs_done(src), Ok(()));
    assert!(ignored(s.on_rs_done(ConnState::Connected)));
}

/// Found by disk::sim: a block marked again after its range was served
/// (a local write failed on the source) keeps its bit through the RsAck.
#[test]
fn an_ack_never_clears_a_newer_mark() {
    let g = geo();
    let mut s = Source::new(g);
    let mut bm = bitmap();
    bm.set_range(0, MIB);
    let src = ConnState::SyncSource;
    s.on_rs_req(src, 0, MIB).unwrap();
    s.data_queued();
    bm.set_range(8192, 4096);
    s.note_mark(8192, 4096);
    assert_eq!(s.on_rs_ack(src, 0, MIB, &mut bm), Ok(255));
    assert!(bm.get(2), "the newer mark stays");
    assert_eq!(bm.count(), 1);
    // Forgotten once acked: a later serve of the range clears it.
    s.on_rs_req(src, 0, MIB).unwrap();
    assert_eq!(s.on_rs_ack(src, 0, MIB, &mut bm), Ok(1));
}

// ---- finding 3: RsData acceptance ----

fn request(t: &mut Target, bm: &Bitmap) -> BlockRange {
    match t.poll(
        Duration::ZERO,
        u64::MAX,
        ConnState::SyncTarget,
        Role::Secondary,
        bm,
    ) {
        TargetStep::Request(r) => r,
        s => panic!("{s:?}"),
    }
}

#[test]
fn rs_data_only_to_a_secondary_sync_target_for_requested_set_bits() {
    let g = geo();
    let mut bm = bitmap();
    bm.set_range(MIB, 8 * BM_BLOCK);
    let mut t = Target::new(g);
    let r = request(&mut t, &bm);
    assert_eq!((r.offset(), r.len()), (MIB, 8 * BM_BLOCK));
    let st = ConnState::SyncTarget;
    let sec = Role::Secondary;
    // A Primary never accepts resync data, whatever its state says.
    assert!(violation(t.on_rs_data(
        Role::Primary,
        st,
        &bm,
        MIB,
        r.len()
    )));
    // Not SyncTarget: nothing written.
    assert!(ignored(t.on_rs_data(
        sec,
        ConnState::Connected,
        &bm,
        MIB,
        r.len()
    )));
    assert!(ignored(t.on_rs_data(
        sec,
        ConnState::SyncSource,
        &bm,
        MIB,
        r.len()
    )));
    // Not the requested range (a part, another place, out of bounds).
    assert!(violation(t.on_rs_data(sec, st, &bm, MIB, BM_BLOCK)));
    assert!(violation(t.on_rs_data(sec, st, &bm, 0, r.len())));
    assert!(violation(t.on_rs_data(sec, st, &bm, u64::MAX, 1)));
    // A bit cleared meanwhile is not written.
    bm.clear_range(MIB + BM_BLOCK, BM_BLOCK);
    let a = t
        .on_rs_data(sec, ConnState::PausedSyncT, &bm, MIB, r.len())
        .unwrap();
    assert_eq!(
        a.writes
            .iter()
            .map(|w| (w.offset(), w.len()))
            .collect::<Vec<_>>(),
        vec![(MIB, BM_BLOCK), (MIB + 2 * BM_BLOCK, 6 * BM_BLOCK)]
    );
    assert_eq!(a.writes[1].within(a.request), 8192..32768);
    // The same data again while it is being written: not requested twice.
    assert!(violation(t.on_rs_data(sec, st, &bm, MIB, r.len())));
    assert_eq!(t.written(&a, &mut bm), 7);
    assert_eq!(bm.count(), 0);
    assert!(violation(t.on_rs_data(sec, st, &bm, MIB, r.len())));
}

#[test]
fn rs_data_never_overwrites_a_newer_local_write() {
    let g = geo();
    let mut bm = bitmap();
    bm.set_range(0, 4 * BM_BLOCK);
    let mut t = Target::new(g);
    let r = request(&mut t, &bm);
    // An application write after the request, partly in one block.
    t.note_local_write(BM_BLOCK + 100, 10);
    let a = t
        .on_rs_data(
            Role::Secondary,
            ConnState::SyncTarget,
            &bm,
            r.offset(),
            r.len(),
        )
        .unwrap();
    assert_eq!(
        a.writes
            .iter()
            .map(|w| (w.offset(), w.len()))
            .collect::<Vec<_>>(),
        vec![(0, BM_BLOCK), (2 * BM_BLOCK, 2 * BM_BLOCK)]
    );
    t.written(&a, &mut bm);
    // The skipped block stays out of sync and is asked for again (its
    // new data comes from the peer, which has the write).
    assert_eq!(bm.count(), 1);
    let again = request(&mut t, &bm);
    assert_eq!((again.offset(), again.len()), (BM_BLOCK, BM_BLOCK));
    // A write noted after the data was accepted does not change what
    // is being written (the device orders it after, with io_order).
    let a = t
        .on_rs_data(
            Role::Secondary,
            ConnState::SyncTarget,
            &bm,
            BM_BLOCK,
            BM_BLOCK,
        )
        .unwrap();
    t.note_local_write(BM_BLOCK, 1);
    assert_eq!(a.writes.len(), 1);
}

#[test]
fn target_stops_when_not_sync_target_and_waits_when_paused() {
    let mut bm = bitmap();
    bm.set_range(0, BM_BLOCK);
    let mut t = Target::new(geo());
    let z = Duration::ZERO;
    assert_eq!(
        t.poll(z, 1, ConnState::PausedSyncT, Role::Secondary, &bm),
        TargetStep::Wait
    );
    assert_eq!(
        t.poll(z, 1, ConnState::SyncTarget, Role::Primary, &bm),
        TargetStep::Stop
    );
    assert_eq!(
        t.poll(z, 1, ConnState::Connected, Role::Secondary, &bm),
        TargetStep::Stop
    );
}

#[test]
fn target_paces_at_the_rate() {
    let mut bm = bitmap();
    bm.set_all();
    let mut t = Target::new(geo());
    let rate = 4 * MIB; // 1 MiB requests: one per 250 ms
    let st = ConnState::SyncTarget;
    let sec = Role::Secondary;
    let mut now = Duration::from_secs(10);
    assert!(matches!(
        t.poll(now, rate, st, sec, &bm),
        TargetStep::Request(_)
    ));
    // The next one 250 ms later, less the slack an idle driver gets.
    match t.poll(now, rate, st, sec, &bm) {
        TargetStep::Pace(at) => {
            assert!(at > now && at <= now + Duration::from_millis(250), "{at:?}")
        }
        s => panic!("{s:?}"),
    }
    now += Duration::from_millis(400);
    assert!(matches!(
        t.poll(now, rate, st, sec, &bm),
        TargetStep::Request(_)
    ));
    // Behind schedule: at most the slack is caught up at once.
    assert!(matches!(
        t.poll(now, rate, st, sec, &bm),
        TargetStep::Pace(_)
    ));
}

// ---- verify ----

#[test]
fn verify_walks_the_device_in_a_window_and_finishes() {
    let g = Geometry::new(5 * MIB + 8192);
    let mut bm = Bitmap::new(g.data_size() / BM_BLOCK);
    let mut v = Verify::new(g);
    let c = ConnState::Connected;
    let now = Duration::ZERO;
    let mut asked = Vec::new();
    loop {
        match v.poll(now, u64::MAX, c) {
            VerifyStep::Request(r) => {
                assert!(v.in_flight() <= RS_IN_FLIGHT);
                asked.push(r);
            }
            VerifyStep::Wait => {
                let r = asked.remove(0);
                let diff: &[u32] = if r.offset() == 0 { &[1] } else { &[] };
                v.on_reply(now, r.offset(), r.len(), diff, &mut bm).unwrap();
            }
            VerifyStep::Finished { mismatched } => {
                assert_eq!(mismatched, BM_BLOCK);
                break;
            }
            s => panic!("{s:?}"),
        }
    }
    assert!(asked.is_empty());
    assert!(!v.running());
    assert_eq!(v.done_bytes(), g.data_size());
    assert!(bm.get(1) && bm.count() == 1);
    // Late answers after the end are ignored.
    assert!(ignored(v.on_reply(now, 0, MIB, &[], &mut bm)));
}

#[test]
fn verify_aborts_on_state_change_or_silence() {
    let mut v = Verify::new(geo());
    let c = ConnState::Connected;
    assert!(matches!(
        v.poll(Duration::ZERO, u64::MAX, c),
        VerifyStep::Request(_)
    ));
    assert_eq!(
        v.poll(Duration::ZERO, u64::MAX, ConnState::WFBitMapS),
        VerifyStep::Aborted
    );
    assert!(!v.running());
    let mut v = Verify::new(geo());
    assert!(matches!(
        v.poll(Duration::ZERO, u64::MAX, c),
        VerifyStep::Request(_)
    ));
    let late = VERIFY_ANSWER_TIMEOUT + Duration::from_secs(1);
    assert_eq!(v.poll(late, u64::MAX, c), VerifyStep::Aborted);
}

#[test]
fn verify_resyncs_from_the_primary() {
    use Role::*;
    assert_eq!(after_verify(0, Secondary, Primary), None);
    assert_eq!(after_verify(1, Secondary, Primary), Some(ResyncFrom::Peer));
    assert_eq!(after_verify(1, Primary, Secondary), Some(ResyncFrom::Here));
    assert_eq!(
        after_verify(1, Secondary, Secondary),
        Some(ResyncFrom::Here)
    );
    assert_eq!(after_verify(1, Secondary, Unknown), Some(ResyncFrom::Here));
}

// ---- the planner, randomized ----

#[derive(Debug, Clone)]
enum Op {
    Poll(u64),
    Reply(usize),
    FlushDone,
    Mark(u64, u64),
    LocalWrite(u64, u64),
    Pause(bool),
}

fn op(blocks: u64) -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0u64..400).prop_map(Op::Poll),
        4 => (0usize..8).prop_map(Op::Reply),
        2 => Just(Op::FlushDone),
        1 => (0..blocks, 1u64..300).prop_map(|(b, n)| Op::Mark(b * BM_BLOCK, n * BM_BLOCK)),
        1 => (0..blocks * BM_BLOCK, 1u64..20_000).prop_map(|(o, n)| Op::LocalWrite(o, n)),
        1 => any::<bool>().prop_map(Op::Pause),
    ]
}

/// The test's view of one resync, checking the machine's answers.
struct Model {
    t: Target,
    bm: Bitmap,
    now: Duration,
    paused: bool,
    inflight: Vec<BlockRange>,
    /// Requests written, not yet in a flush ticket.
    written: Vec<BlockRange>,
    /// The outstanding flush: the ticket and what was written before it.
    flushing: Option<(FlushTicket, Vec<BlockRange>)>,
    done: bool,
}

impl Model {
    fn conn(&self) -> ConnState {
        if self.paused {
            ConnState::PausedSyncT
        } else {
            ConnState::SyncTarget
        }
    }

    fn poll(&mut self) -> TargetStep {
        let step = self
            .t
            .poll(self.now, 64 * MIB, self.conn(), Role::Secondary, &self.bm);
        match &step {
            TargetStep::Request(r) => {
                assert!(!self.done);
                for b in r.offset() / BM_BLOCK..r.end() / BM_BLOCK {
                    assert!(self.bm.get(b), "requested a clear bit {b}");
                }
                assert!(
                    self.inflight.iter().all(|i| !i.overlaps(*r)),
                    "requested twice"
                );
                assert!(r.len() <= MAX_REQUEST && r.end() <= SIZE);
                // What the source holds unacknowledged stays bounded
                // also while a flush runs (its MAX_SERVED).
                let sum = |v: &[BlockRange]| v.iter().map(|r| r.len()).sum::<u64>();
                let held = sum(&self.written)
                    + self.flushing.as_ref().map_or(0, |(_, w)| sum(w))
                    + sum(&self.inflight);
                assert!(
                    held <= 2 * RS_ACK_BATCH + RS_IN_FLIGHT as u64 * MAX_REQUEST,
                    "{held} bytes unacknowledged"
                );
                self.inflight.push(*r);
                assert!(self.inflight.len() <= RS_IN_FLIGHT, "window exceeded");
                assert_eq!(self.t.in_flight(), self.inflight.len());
            }
            TargetStep::Flush(ticket) => {
                assert!(self.flushing.is_none(), "two flushes at once");
                self.flushing = Some((ticket.clone(), std::mem::take(&mut self.written)));
            }
            TargetStep::Done => {
                assert!(!self.done, "Done twice");
                assert_eq!(self.bm.count(), 0, "done with bits set");
                assert!(self.inflight.is_empty(), "done with requests in flight");
                assert!(
                    self.written.is_empty() && self.flushing.is_none(),
                    "done unacked"
                );
                self.done = true;
            }
            TargetStep::Stop => assert!(self.done),
            TargetStep::Wait | TargetStep::Pace(_) => {}
        }
        step
    }

    fn reply(&mut self, i: usize) {
        if self.inflight.is_empty() {
            return;
        }
        let r = self.inflight.remove(i % self.inflight.len());
        let a = self
            .t
            .on_rs_data(Role::Secondary, self.conn(), &self.bm, r.offset(), r.len())
            .expect("requested data is accepted");
        for w in &a.writes {
            assert!(w.offset() >= r.offset() && w.end() <= r.end());
            for b in w.offset() / BM_BLOCK..w.end() / BM_BLOCK {
                assert!(self.bm.get(b), "writes a block not out of sync");
            }
        }
        self.t.written(&a, &mut self.bm);
        self.written.push(r);
        if let Some(ticket) = self.t.take_flush_if_due() {
            assert!(self.flushing.is_none(), "two flushes at once");
            self.flushing = Some((ticket, std::mem::take(&mut self.written)));
        }
    }

    fn flush_done(&mut self) {
        if let Some((ticket, before)) = self.flushing.take() {
            let mut acks = self.t.flushed(ticket);
            let mut before = before;
            acks.sort();
            before.sort();
            assert_eq!(
                acks, before,
                "acks exactly the data written before the flush"
            );
        }
    }

    fn step(&mut self, op: &Op) {
        match *op {
            Op::Poll(ms) => {
                self.now += Duration::from_millis(ms);
                self.poll();
            }
            Op::Reply(i) => self.reply(i),
            Op::FlushDone => self.flush_done(),
            Op::Mark(o, n) if !self.done => {
                self.bm.set_range(o, n.min(SIZE - o));
            }
            Op::LocalWrite(o, n) => self.t.note_local_write(o, n),
            Op::Pause(p) => self.paused = p,
            Op::Mark(..) => {}
        }
    }

    /// Deliver everything until the machine says Done.
    fn finish(&mut self) {
        self.paused = false;
        for _ in 0..100_000 {
            if self.done {
                return;
            }
            self.now += Duration::from_millis(50);
            match self.poll() {
                TargetStep::Wait => {
                    if !self.inflight.is_empty() {
                        self.reply(0);
                    } else {
                        self.flush_done();
                    }
                }
                TargetStep::Flush(_) => self.flush_done(),
                _ => {}
            }
        }
        panic!("never finished: {} bits left", self.bm.count());
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    #[test]
    fn planner_requests_set_bits_in_a_window_acks_flushed_and_finishes(
        marks in proptest::collection::vec((0u64..SIZE / BM_BLOCK, 1u64..600), 0..12),
        ops in proptest::collection::vec(op(SIZE / BM_BLOCK), 0..300),
    ) {
        let mut bm = bitmap();
        for (b, n) in marks {
            let o = b * BM_BLOCK;
            bm.set_range(o, (n * BM_BLOCK).min(SIZE - o));
        }
        let mut m = Model {
            t: Target::new(geo()),
            bm,
            now: Duration::ZERO,
            paused: false,
            inflight: Vec::new(),
            written: Vec::new(),
            flushing: None,
            done: false,
        };
        for o in &ops {
            m.step(o);
        }
        m.finish();
        prop_assert_eq!(m.bm.count(), 0);
        prop_assert_eq!(m.t.in_flight(), 0);
    }

    #[test]
    fn verify_planner_windows_and_finishes_exactly_when_all_answered(
        size_blocks in 1u64..2000,
        picks in proptest::collection::vec((any::<usize>(), 0u64..300), 1..400),
    ) {
        let g = Geometry::new(size_blocks * BM_BLOCK);
        let mut bm = Bitmap::new(size_blocks);
        let mut v = Verify::new(g);
        let mut now = Duration::ZERO;
        let mut asked: Vec<BlockRange> = Vec::new();
        let mut covered = 0u64;
        let mut picks = picks.into_iter().cycle();
        loop {
            let (pick, dt) = picks.next().unwrap();
            now += Duration::from_millis(dt);
            match v.poll(now, 16 * MIB, ConnState::Connected) {
                VerifyStep::Request(r) => {
                    prop_assert!(r.offset() == covered, "in order, no gap");
                    covered = r.end();
                    asked.push(r);
                    prop_assert!(asked.len() <= RS_IN_FLIGHT);
                    prop_assert_eq!(v.in_flight(), asked.len());
                }
                VerifyStep::Pace(at) => prop_assert!(at > now),
                VerifyStep::Wait => {
                    prop_assert!(!asked.is_empty());
                    let r = asked.remove(pick % asked.len());
                    let diff = [(pick % r.blocks() as usize) as u32];
                    prop_assert!(v.on_reply(now, r.offset(), r.len(), &diff, &mut bm).is_ok());
                }
                VerifyStep::Finished { mismatched } => {
                    prop_assert!(asked.is_empty());
                    prop_assert_eq!(covered, g.data_size());
                    prop_assert_eq!(v.done_bytes(), g.data_size());
                    prop_assert_eq!(mismatched, bm.count() * BM_BLOCK);
                    break;
                }
                VerifyStep::Aborted => prop_assert!(false, "aborted"),
            }
        }
    }

    #[test]
    fn garbage_frames_never_panic(
        offset in any::<u64>(),
        len in any::<u64>(),
        idx in proptest::collection::vec(any::<u32>(), 0..8),
        n in 0usize..600,
    ) {
        let g = geo();
        let mut bm = bitmap();
        let mut s = Source::new(g);
        let _ = s.on_rs_req(ConnState::SyncSource, offset, len);
        let _ = s.on_rs_ack(ConnState::SyncSource, offset, len, &mut bm);
        let mut t = Target::new(g);
        let _ = t.poll(Duration::ZERO, 1, ConnState::SyncTarget, Role::Secondary, &bm);
        t.note_local_write(offset, len);
        let _ = t.on_rs_data(Role::Secondary, ConnState::SyncTarget, &bm, offset, len);
        let _ = ov_request(g, ConnState::Connected, DiskState::UpToDate, offset, n);
        let mut v = Verify::new(g);
        let _ = v.poll(Duration::ZERO, 1, ConnState::Connected);
        let _ = v.on_reply(Duration::ZERO, offset, len, &idx, &mut bm);
        let _ = v.on_reply(Duration::ZERO, 0, MAX_REQUEST, &idx, &mut bm);
        if let Ok(r) = g.range(offset, len, MAX_REQUEST) {
            prop_assert!(r.end() <= SIZE && r.len() <= MAX_REQUEST);
            let _ = mark_differing(r, &idx, &mut bm);
        }
    }
}
