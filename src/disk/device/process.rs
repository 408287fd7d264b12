//! The process around the device: [`Device::run`] (the control socket, the
//! listener, the connector, signals), one control-socket request per
//! connection, and the activity-log/bitmap writeback loop.

use super::*;

/// How often dirty bitmap pages are written.
const BITMAP_WRITEBACK: Duration = Duration::from_secs(1);

impl Device {
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
        // Control socket, listener and pid file up: ready for systemd
        // (hbd-disk@.service, Type=notify); WATCHDOG=1 from this loop.
        // (No STATUS= refresh with the pings: status takes the device's
        // locks, which a slow request may hold.)
        crate::sd_notify::ready(&self.status_line());
        let mut sd_watchdog = crate::sd_notify::WatchdogPacer::new();
        loop {
            sd_watchdog.tick();
            let wake = sd_watchdog.due();
            tokio::select! {
                _ = async { tokio::time::sleep_until(wake.unwrap_or_else(tokio::time::Instant::now)).await }, if wake.is_some() => {}
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
        crate::sd_notify::stopping(&format!("{}: going down", cfg.name));
        // Let the last answer go out.
        tokio::time::sleep(Duration::from_millis(50)).await;
        let _ = std::fs::remove_file(&sock);
        let _ = std::fs::remove_file(ctl::pid_path(&cfg.run_dir, &cfg.name));
        Ok(())
    }

    /// The device's state in one line (systemd's STATUS=, SIGUSR1).
    pub fn status_line(&self) -> String {
        crate::ctl::render::disk(&crate::ctl::DiskSummary::from_status(&self.status()))
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
