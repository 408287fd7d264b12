//! The I/O of resync and online verify: applying resync data, the
//! SyncTarget and verify drivers, progress, and the out-of-sync notices
//! (every decision in [`super::resync`]).

use super::*;

impl Device {
    /// SyncTarget: one `RsData` (blocking: holds `io_order` exclusively so
    /// that an application write noted after the verdict lands after this
    /// data). Returns a flush ticket when an acknowledgement batch is due.
    pub(super) fn apply_rs_data(
        &self,
        offset: u64,
        data: &[u8],
    ) -> io::Result<Option<resync::FlushTicket>> {
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
    pub(super) async fn ack_resync(
        &self,
        peer: &Arc<PeerTx>,
        ticket: resync::FlushTicket,
    ) -> io::Result<()> {
        let store = self.target_store()?;
        let flushed = tokio::task::spawn_blocking(move || store.flush())
            .await
            .map_err(io::Error::other)?;
        // The acks are queued under the lock that `flushed` is called under:
        // the driver's `RsDone` (after it sees no flush running) can never
        // overtake them on the control channel.
        let mut c = self.core();
        // A flush that outlived its link belongs to no resync running now.
        if c.link.as_ref().is_none_or(|l| l.epoch != peer.epoch) {
            return Err(eio("the link of this resync is gone"));
        }
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

    pub(super) fn geometry(&self) -> Geometry {
        Geometry::new(self.data_size)
    }

    pub(super) fn in_range(&self, offset: u64, len: u64) -> bool {
        offset.checked_add(len).is_some_and(|e| e <= self.data_size)
    }

    pub(super) fn target_store(&self) -> io::Result<Arc<FileStore>> {
        self.core()
            .local
            .as_ref()
            .map(|l| l.store.clone())
            .ok_or_else(|| eio("no local disk"))
    }

    pub(super) fn progress(&self, c: &mut Core) {
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
    pub(super) async fn resync_target(self: Arc<Device>, epoch: u64) {
        loop {
            // Registered before the step is decided: a wake-up between the
            // decision and the wait is kept, not lost (`notify_waiters`
            // stores no permit; a lost one cost up to 50 ms per window).
            let woken = self.wake.notified();
            tokio::pin!(woken);
            woken.as_mut().enable();
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
                        _ = &mut woken => {}
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
    pub(super) async fn verify(self: Arc<Device>, epoch: u64) {
        let found = loop {
            // As in `resync_target`: registered before the step is decided.
            let woken = self.wake.notified();
            tokio::pin!(woken);
            woken.as_mut().enable();
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
                        _ = &mut woken => {}
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

    pub(super) fn flush_notices(&self) {
        let notices = std::mem::take(&mut self.core().notices);
        if notices.is_empty() {
            return;
        }
        let cfg = self.cfg();
        for (event, reason) in notices {
            let _guard = self.rt.enter();
            crate::notify::notify(
                cfg.notify.as_ref(),
                crate::notify::Notice {
                    event: event.clone(),
                    resource: format!("drbddisk::{}", cfg.name),
                    node: cfg.node.clone(),
                    reason: reason.clone(),
                    ..Default::default()
                },
            );
            // drbd.conf `handlers`: on-io-error call-local-io-error runs
            // `local-io-error` as the disk fails (then detaches); a split
            // brain runs `split-brain`.
            if matches!(event.as_str(), "local-io-error" | "split-brain") {
                self.run_handler(&cfg, &event);
            }
        }
    }

    /// Run drbd.conf's handler `name` in the background (60 s limit), with
    /// DRBD's environment.
    pub(super) fn run_handler(&self, cfg: &DeviceConfig, name: &str) {
        let Some(cmd) = cfg.res.handlers.get(name).cloned() else {
            return;
        };
        let env = cfg.handler_env();
        let name = name.to_string();
        self.rt.spawn(async move {
            match crate::process::run_shell(&cmd, None, &env, Duration::from_secs(60)).await {
                Ok(0) => {}
                Ok(code) => tracing::warn!(code, handler = %name, "handler failed"),
                Err(e) => tracing::warn!(error = %e, handler = %name, "handler"),
            }
        });
    }
}

pub(super) fn digest_blocks(buf: &[u8]) -> Vec<[u8; 32]> {
    buf.chunks(BM_BLOCK as usize)
        .map(|b| sha2::Sha256::digest(b).into())
        .collect()
}

pub(super) fn diff_blocks(buf: &[u8], theirs: &[[u8; 32]]) -> Vec<u32> {
    digest_blocks(buf)
        .iter()
        .zip(theirs)
        .enumerate()
        .filter(|(_, (a, b))| a != b)
        .map(|(i, _)| i as u32)
        .collect()
}
