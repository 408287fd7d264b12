//! The FUSE side: application reads, writes and flushes (blocking, on FUSE
//! server threads), and [`PeerTx`], the sending side of one established
//! link with the requests in flight and their waiters (every decision about
//! sequence numbers, acks and barriers is [`super::datapath::TransferLog`]'s).

use super::*;

/// Result of one request to the peer as seen by the blocking caller.
pub(super) type Done = std_mpsc::SyncSender<bool>;

pub(super) struct Inflight {
    /// Every decision about sequence numbers, acks and barriers.
    pub(super) tl: TransferLog,
    /// The blocked callers of the requests in `tl`, by seq.
    pub(super) waiters: std::collections::HashMap<u64, Done>,
    /// Start times of the requests in flight (`timeout` × `ko-count`).
    pub(super) ko: KoTracker,
    /// Why a waiter gave up on the peer (the watchdog drops the link).
    pub(super) abort: Option<String>,
    /// The order of this node's own writes to its backing file: writes
    /// overlapping an earlier one (by seq) wait for it, so the local copy
    /// ends as the peer's, which applies them in the same order.
    pub(super) local: ApplyOrder,
    /// Writes of `local` whose turn has come (started, not finished).
    pub(super) local_go: std::collections::HashSet<u64>,
}

/// The sending side of one established link.
pub(super) struct PeerTx {
    pub(super) epoch: u64,
    /// Writes, barriers and resync data: one ordered, bounded channel.
    pub(super) data_tx: tokio::sync::Mutex<mpsc::Sender<Frame>>,
    /// Everything else (acks, state messages, bitmaps): never blocks;
    /// bounded ([`CTRL_QUEUE`]): a peer that stops reading while it keeps
    /// sending is dropped instead of growing it.
    pub(super) ctrl_tx: mpsc::Sender<Frame>,
    /// The control queue overflowed: why the link was dropped.
    pub(super) overflow: AtomicBool,
    pub(super) inflight: Mutex<Inflight>,
    pub(super) room: Condvar,
    /// A local write's turn came ([`Inflight::local`]).
    pub(super) turn: Condvar,
    pub(super) dead: AtomicBool,
    pub(super) cancel: CancellationToken,
}

impl PeerTx {
    pub(super) fn live(&self) -> bool {
        !self.dead.load(Ordering::Acquire)
    }

    pub(super) fn ctrl(&self, f: Frame) {
        if let Err(mpsc::error::TrySendError::Full(_)) = self.ctrl_tx.try_send(f) {
            if !self.overflow.swap(true, Ordering::AcqRel) {
                self.cancel.cancel();
            }
        }
    }

    /// Register a write or barrier and queue its frame; `None` if the link
    /// is gone. Blocking: call from plain threads.
    pub(super) fn submit(
        &self,
        make: impl FnOnce(u64) -> Frame,
        range: Option<(u64, u64)>,
    ) -> Option<std_mpsc::Receiver<bool>> {
        self.submit_seq(make, range, false).map(|(_, w)| w)
    }

    /// [`PeerTx::submit`] for a write this node also writes locally: the
    /// write takes its place in the local order ([`Inflight::local`]); the
    /// caller writes it in [`PeerTx::local_write`] with the returned seq.
    pub(super) fn submit_write(
        &self,
        make: impl FnOnce(u64) -> Frame,
        offset: u64,
        len: u64,
    ) -> Option<(u64, std_mpsc::Receiver<bool>)> {
        self.submit_seq(make, Some((offset, len)), true)
    }

    /// Write locally when no earlier overlapping write is still being
    /// written (`seq` from [`PeerTx::submit_write`]).
    pub(super) fn local_write<T>(&self, seq: u64, write: impl FnOnce() -> T) -> T {
        {
            let mut inf = lock(&self.inflight);
            while !inf.local_go.contains(&seq) {
                inf = self.turn.wait(inf).unwrap_or_else(|p| p.into_inner());
            }
        }
        let r = write();
        let mut inf = lock(&self.inflight);
        inf.local_go.remove(&seq);
        let started = match inf.local.done(seq) {
            Ok(s) => s,
            Err(e) => {
                tracing::error!(error = %e, "local write order");
                Vec::new()
            }
        };
        if !started.is_empty() {
            for s in started {
                if let datapath::Start::Write(n) = s {
                    inf.local_go.insert(n);
                }
            }
            drop(inf);
            self.turn.notify_all();
        }
        r
    }

    fn submit_seq(
        &self,
        make: impl FnOnce(u64) -> Frame,
        range: Option<(u64, u64)>,
        local: bool,
    ) -> Option<(u64, std_mpsc::Receiver<bool>)> {
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
                if let (true, Some((off, len))) = (local, range) {
                    // Seqs only grow here (under `data_tx` and this lock).
                    if inf.local.write(seq, off, len) == Ok(true) {
                        inf.local_go.insert(seq);
                    }
                }
                seq
            };
            let _ = tx.send(make(seq)).await;
            Some((seq, wait))
        })
    }

    /// Queue a data-channel frame without a completion (resync data).
    pub(super) async fn send_data(&self, f: Frame) {
        let tx = self.data_tx.lock().await;
        let _ = tx.send(f).await;
    }

    pub(super) fn complete(&self, seq: u64, barrier: bool) -> io::Result<()> {
        let mut inf = lock(&self.inflight);
        let answered = if barrier {
            inf.tl.flush_ack(seq)
        } else {
            inf.tl.ack(seq)
        };
        if let Err(e) = answered {
            return Err(packet::LinkError::Malformed(e.to_string()).into());
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
    pub(super) fn wait_done(&self, w: std_mpsc::Receiver<bool>) -> bool {
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
    pub(super) fn give_up(&self, why: &str) {
        lock(&self.inflight)
            .abort
            .get_or_insert_with(|| why.to_string());
    }

    /// Why the link must be dropped now, if it must (the watchdog's check).
    pub(super) fn overdue(&self, now: u64) -> Option<String> {
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
    pub(super) fn drain_unflushed(&self) -> Vec<(u64, u64)> {
        lock(&self.inflight).tl.drain_unflushed()
    }

    /// The link is gone: fail every waiter; returns the ranges that may not
    /// have reached the peer's stable storage.
    pub(super) fn teardown(&self) -> Vec<(u64, u64)> {
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

impl Device {
    pub(super) fn app_read(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
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

    pub(super) fn app_write(&self, data: &[u8], offset: u64) -> io::Result<()> {
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
    pub(super) fn wait_bound(&self) -> Duration {
        let cfg = lock(&self.cfg);
        KoTracker::new(cfg.res.timeout, cfg.res.ko_count.max(1))
            .deadline(0)
            .map_or(Duration::from_secs(10), |d| {
                Duration::from_millis(d).max(Duration::from_secs(10))
            })
    }

    pub(super) fn write_chunk(&self, data: &[u8], offset: u64) -> io::Result<()> {
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
                if c.sm.suspended() {
                    // resource-and-stonith: held, not failed, until the
                    // peer is fenced, the link is back, or `resume-io`.
                    c = self
                        .changed
                        .wait_timeout(c, Duration::from_millis(100))
                        .unwrap_or_else(|p| p.into_inner())
                        .0;
                    continue;
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
                let sent_at = Instant::now();
                let sent = p.submit_write(
                    |seq| Frame::Write {
                        seq,
                        offset,
                        data: data.to_vec(),
                    },
                    offset,
                    len,
                );
                // Overlapping writes land here in the order they were sent
                // (the peer applies them in that order too).
                let (r, wait) = match sent {
                    Some((seq, w)) => {
                        (p.local_write(seq, || store.write_at(data, offset)), Some(w))
                    }
                    None => (store.write_at(data, offset), None),
                };
                drop(order);
                let acked = wait.is_some_and(|w| p.wait_done(w));
                if !acked {
                    self.core().mark(offset, len);
                } else {
                    let mut c = self.core();
                    c.counters.ns += len / 1024;
                    c.latency.ack.observe(sent_at.elapsed());
                }
                (r, acked)
            }
            None => {
                let _order = self.io_order.read().unwrap_or_else(|p| p.into_inner());
                (store.write_at(data, offset), false)
            }
        };
        let mut c = self.core();
        // resource-and-stonith: a write the peer did not acknowledge is
        // not acknowledged here either until the peer is fenced (DRBD
        // keeps such requests in the transfer log while `susp_fen`).
        while !acked && c.sm.suspended() {
            c = self
                .changed
                .wait_timeout(c, Duration::from_millis(100))
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
        if let Some(l) = c.local.as_mut() {
            l.al.complete(offset, len);
        }
        c.counters.ap = c.counters.ap.saturating_sub(1);
        c.counters.dw += len / 1024;
        c.last_write_ms = Some(now_ms());
        c.latency.write.observe(started.elapsed());
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

    pub(super) fn app_flush(&self) -> io::Result<()> {
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
}
