//! Requests from `hbctl disk` and the resource agent: status, promote,
//! demote, attach/detach, adjust, and requests forwarded to the peer.

use super::*;

impl Device {
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
            suspended: c.sm.suspended(),
            fence_peer: c.last_fence.clone(),
            latency: Some(c.latency.clone()),
        }
    }

    pub(super) fn done(&self, message: Option<String>) -> DiskResponse {
        DiskResponse::Done {
            status: Box::new(self.status()),
            message,
        }
    }

    /// A refusal, `message` its text (what the caller reads).
    pub(super) fn refused(&self, message: impl std::fmt::Display) -> DiskResponse {
        DiskResponse::Refused {
            message: message.to_string(),
            status: Box::new(self.status()),
        }
    }

    /// Carry out one request (blocking: may wait for the device to be
    /// released or for the peer).
    pub fn request(&self, req: DiskRequest) -> DiskResponse {
        // hbd polls status every second (served data, `hbctl status`):
        // only the requests that change something are worth an info line.
        if matches!(req, DiskRequest::Status) {
            tracing::debug!(?req, "request");
        } else {
            tracing::info!(?req, "request");
        }
        let r = self.request_inner(req);
        self.flush_notices();
        r
    }

    pub(super) fn simple(&self, i: Input) -> DiskResponse {
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

    pub(super) fn request_inner(&self, req: DiskRequest) -> DiskResponse {
        match req {
            DiskRequest::Status => self.done(None),
            DiskRequest::Attach => {
                if self.core().local.is_some() {
                    return self.done(Some("already attached".into()));
                }
                let cfg = self.cfg();
                match Local::open(&cfg) {
                    Err(e) => DiskResponse::Failed {
                        message: e.to_string(),
                    },
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
            DiskRequest::OutdateForPeer => self.outdate_for_peer(),
            DiskRequest::ResumeIo => {
                let was = self.core().sm.suspended();
                let r = self.simple(Input::ResumeIo);
                if was {
                    tracing::warn!(resource = %lock(&self.cfg).name, "resume-io: I/O thawed by hand, the peer is not known fenced");
                }
                r
            }
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

    pub(super) fn promote(&self, force: bool) -> DiskResponse {
        {
            let mut c = self.core();
            // drbd_set_role retries on SS_IN_TRANSIENT_STATE: a promotion
            // waits (bounded) for a running handshake to decide.
            let until = Instant::now() + HANDSHAKE_WAIT;
            while matches!(
                c.sm.conn(),
                ConnState::WFReportParams | ConnState::WFBitMapS
            ) && Instant::now() < until
            {
                c = self
                    .changed
                    .wait_timeout(c, Duration::from_millis(100))
                    .unwrap_or_else(|p| p.into_inner())
                    .0;
            }
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
                // Not `self.core()` in the argument: its guard would live
                // until the end of the statement, and `refused` locks again.
                let disk = c.sm.disk();
                drop(c);
                return self.refused(Refused::SyncTarget(disk));
            }
            if let Err(m) = c.meta.may_promote() {
                drop(c);
                return DiskResponse::Failed {
                    message: m.to_string(),
                };
            }
            // drbd_set_role: SS_PRIMARY_NOP (fencing, the peer's disk not
            // known Outdated) runs the fence-peer handler, then tries again.
            let mut fenced = None;
            // No handler configured (and no dopd): nothing can outdate the
            // peer; the refusal says so (FENCING_REFUSAL), as before.
            let has_handler = {
                let cfg = lock(&self.cfg);
                super::super::fence::handler(
                    cfg.res.handlers.get("fence-peer").map(String::as_str),
                    cfg.dopd,
                ) != super::super::fence::FenceHandler::Missing
            };
            if !force
                && has_handler
                && c.sm.promotion_needs_fencing()
                && matches!(c.sm.disk(), DiskState::UpToDate | DiskState::Consistent)
            {
                drop(c);
                tracing::info!(resource = %lock(&self.cfg).name, "promotion: the peer is not known Outdated (fencing): running the fence-peer handler");
                let code = self.rt.block_on(self.run_fence_handler());
                c = self.core();
                let _ = self.input(&mut c, Input::FencePeerDone { code });
                fenced = Some(code);
            }
            // The new role's flags and UUIDs are written before anyone (the
            // peer, the application) sees them: a promotion whose metadata
            // cannot be persisted does not happen (nothing rotates).
            let peer_disk = c.sm.peer_disk();
            let mut trial = c.sm.clone();
            if let Err(m) = trial.handle(Input::Promote { force }) {
                drop(c);
                let fencing = lock(&self.cfg).res.fencing != super::super::conf::Fencing::DontCare;
                return self.refused(promotion_refusal(m, fenced, fencing));
            }
            if let Err(e) = c.persist_state(Some(&trial)) {
                let m = e.to_string();
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

    pub(super) fn demote(&self) -> DiskResponse {
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
        if let Err(e) = c.sync_flags() {
            self.local_io_error(&mut c, IoSite::Meta, false, &e.to_string());
        }
        drop(c);
        match r {
            Ok(()) => self.done(None),
            Err(m) => self.refused(m),
        }
    }

    pub(super) fn adjust(&self) -> DiskResponse {
        let old = self.cfg();
        let new = match DeviceConfig::load(&old.config_dir, &old.node, &old.run_dir, &old.name) {
            Ok(n) => n,
            Err(e) => {
                return DiskResponse::Failed {
                    message: e.to_string(),
                }
            }
        };
        let mut notes = Vec::new();
        if new.resync_rate() != old.resync_rate() {
            notes.push(format!("resync rate {} B/s", new.resync_rate()));
        }
        if new.host.address != old.host.address || new.peer_host.address != old.peer_host.address {
            notes.push("addresses changed: take effect at the next up".into());
        }
        if new.res.fencing != old.res.fencing {
            use super::super::conf::Fencing;
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

    pub(super) fn remote(&self, req: DiskRequest) -> DiskResponse {
        let cfg = self.cfg();
        let fut = async move {
            let mut link =
                packet::connect(cfg.peer_addr(), &cfg.link_security(), LINK_TIMEOUT).await?;
            let json = serde_json::to_string(&req).map_err(io::Error::other)?;
            packet::send(
                &mut link,
                &Frame::Admin {
                    resource: cfg.name.clone(),
                    json,
                },
            )
            .await?;
            match tokio::time::timeout(Duration::from_secs(120), packet::recv(&mut link)).await {
                Err(_) => Err(io::Error::new(io::ErrorKind::TimedOut, "no answer")),
                Ok(Err(e)) => Err(e),
                Ok(Ok(Frame::AdminReply { json })) => {
                    serde_json::from_str::<DiskResponse>(&json).map_err(io::Error::other)
                }
                Ok(Ok(f)) => Err(packet::unexpected(f, "AdminReply")),
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
}

/// A refused promotion's message, saying what the fence-peer handler did.
fn promotion_refusal(m: Refused, fenced: Option<Option<u8>>, fencing: bool) -> String {
    use super::super::fence::code_meaning;
    let ran = match fenced {
        Some(Some(code)) => format!(
            "the fence-peer handler returned {code} ({})",
            code_meaning(code)
        ),
        Some(None) => "the fence-peer handler failed".to_string(),
        None => String::new(),
    };
    if m == Refused::Fencing && !ran.is_empty() {
        return format!(
            "Refusing to be Primary while peer is not outdated (fencing): {ran}; \
             use --force if you know the peer is down and outdated"
        );
    }
    if m == Refused::LocalDisk(DiskState::Outdated) && fencing {
        let why = if fenced == Some(Some(super::super::fence::PEER_PRIMARY)) {
            "the peer is Primary (the fence-peer handler said so)"
        } else {
            "the peer outdated this copy when it lost the replication link: its data is newer"
        };
        return format!(
            "local disk Outdated: {why}; promote the peer, or use --force to serve this older data"
        );
    }
    m.to_string()
}

impl Device {
    /// [`DiskRequest::OutdateForPeer`]: the built-in outdater of the peer
    /// asks. A Primary refuses; an Outdated, Inconsistent or Diskless disk
    /// is left as it is (the answer says which); an UpToDate or Consistent
    /// one becomes Outdated, persistently. The asker lost the link already;
    /// this side may not have noticed yet: it waits (bounded by the link
    /// timeout) for that, since DRBD never outdates a connected disk
    /// (SS_CONNECTED_OUTDATES). Still connected after that: refused (the
    /// asker is connected again, and ignores the answer).
    pub(super) fn outdate_for_peer(&self) -> DiskResponse {
        let mut c = self.core();
        let name = lock(&self.cfg).name.clone();
        let until = Instant::now() + LINK_TIMEOUT + Duration::from_secs(2);
        while c.sm.conn() >= ConnState::Connected
            && c.sm.role() != Role::Primary
            && Instant::now() < until
        {
            c = self
                .changed
                .wait_timeout(c, Duration::from_millis(100))
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
        if let Some(why) = c.sm.outdate_refusal() {
            drop(c);
            tracing::warn!(resource = %name, why, "the peer asks to outdate this disk: refused");
            return self.refused(why);
        }
        if c.sm.disk() > DiskState::Outdated && c.sm.disk() != DiskState::DUnknown {
            tracing::warn!(resource = %name, "the peer asks to outdate this disk (its fence-peer handler): outdating");
            if let Err(m) = self.input(&mut c, Input::Outdate) {
                drop(c);
                return self.refused(m);
            }
            if c.sm.disk() != DiskState::Outdated || c.meta.may_promote().is_err() {
                drop(c);
                return DiskResponse::Failed {
                    message: "the Outdated flag could not be written".into(),
                };
            }
        }
        drop(c);
        self.done(None)
    }
}
