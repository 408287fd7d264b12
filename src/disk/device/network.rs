//! The link: listening, accepting and connecting, the `Join` handshake,
//! establishing a [`PeerTx`], the link task (`run_link`, keepalive and the
//! ko-count watchdog), losing the link ([`LinkGuard`]) and every received
//! frame ([`Device::on_frame`]).

use super::resync_io::diff_blocks;
use super::*;

/// Runs [`Device::link_lost`] when the link task ends, whichever way: a
/// panic in a frame handler unwinds through it, so FUSE writers waiting on
/// `Inflight` are still released and the machine still hears
/// TransportLost (issue 12, finding 8).
pub(super) struct LinkGuard {
    pub(super) dev: Arc<Device>,
    pub(super) peer: Arc<PeerTx>,
    pub(super) err: Option<io::Error>,
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

/// Control frames queued for the peer at most (acks, state messages,
/// bitmap parts): far more than a reading peer ever lets pile up.
pub(super) const CTRL_QUEUE: usize = 4096;
/// Frames the link writer sends with one flush at most.
pub(super) const WRITE_BATCH: usize = 64;
/// How long one send to the peer may block at least; DRBD's timeout ×
/// ko-count when that is longer (a peer whose disk is slow, not stuck,
/// stops reading for a while), 60 s with `ko-count 0`.
pub(super) const SEND_TIMEOUT: Duration = Duration::from_secs(6);

/// How long one send to the peer may block before it is dropped.
fn send_timeout(res: &crate::disk::conf::ResourceConf) -> Duration {
    let window = match res.ko_count {
        0 => Duration::from_secs(60),
        n => res.timeout * n,
    };
    window.max(SEND_TIMEOUT)
}

/// Unauthenticated connections handled at once on the replication port,
/// from addresses other than the peer's.
pub(super) const MAX_UNAUTHENTICATED: usize = 4;
/// The same from the peer's address (drbd.conf): its own slots.
pub(super) const PEER_UNAUTHENTICATED: usize = 2;

/// What the peer's device may ask of this one over an admin connection:
/// what `hbctl split-brain resolve` needs (issue 14, finding 2). A
/// forwarded request is never forwarded again.
fn peer_may_ask(req: &DiskRequest) -> bool {
    matches!(
        req,
        DiskRequest::Status
            | DiskRequest::Secondary
            | DiskRequest::Disconnect
            | DiskRequest::Connect { .. }
    )
}

/// A request's name as hbctl spells it.
fn request_name(req: &DiskRequest) -> String {
    serde_json::to_value(req)
        .ok()
        .and_then(|v| v.get("request")?.as_str().map(|s| s.replace('_', "-")))
        .unwrap_or_else(|| "this request".into())
}

impl Device {
    /// Accept connections on the replication address: the peer's `Join`
    /// (when this node is the acceptor) and admin requests.
    pub(super) async fn listen(self: Arc<Device>, listener: TcpListener) {
        // Connections not yet authenticated: a few at a time, each bounded
        // in size and time by the handshake (issue 14, finding 5). One more
        // is closed at once, so a flood of strangers costs nothing but
        // accepts, and the peer's next try gets in.
        // The peer's address has slots of its own: strangers filling theirs
        // never keep the peer out.
        let strangers = Arc::new(tokio::sync::Semaphore::new(MAX_UNAUTHENTICATED));
        let peer_slots = Arc::new(tokio::sync::Semaphore::new(PEER_UNAUTHENTICATED));
        let peer_ip = *self.cfg().peer_host.address.ip();
        let mut refused = 0u64;
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
            let pending = if from.ip() == peer_ip {
                &peer_slots
            } else {
                &strangers
            };
            let Ok(permit) = pending.clone().try_acquire_owned() else {
                refused += 1;
                if refused.is_power_of_two() {
                    tracing::warn!(%from, refused, "too many unauthenticated connections: closing");
                }
                continue;
            };
            let dev = self.clone();
            tokio::spawn(async move {
                match dev.clone().on_accept(stream, from, permit).await {
                    Ok(()) => {}
                    // A wrong key, a forged or replayed frame: someone
                    // other than the peer.
                    Err(e) if e.kind() == io::ErrorKind::PermissionDenied => {
                        tracing::warn!(%from, error = %e, "incoming connection refused");
                    }
                    Err(e) => tracing::debug!(%from, error = %e, "incoming connection"),
                }
            });
        }
    }

    pub(super) async fn on_accept(
        self: Arc<Device>,
        stream: tokio::net::TcpStream,
        from: std::net::SocketAddr,
        permit: tokio::sync::OwnedSemaphorePermit,
    ) -> io::Result<()> {
        let cfg = self.cfg();
        let mut link = packet::accept(stream, &cfg.link_security()).await?;
        drop(permit);
        match tokio::time::timeout(LINK_TIMEOUT, packet::recv(&mut link)).await {
            Err(_) => Err(io::Error::new(io::ErrorKind::TimedOut, "no request")),
            Ok(Err(e)) => Err(e),
            Ok(Ok(Frame::Admin { resource, json })) => {
                let resp = if resource != cfg.name {
                    DiskResponse::Failed {
                        message: format!("no resource {resource} here"),
                    }
                } else {
                    match serde_json::from_str::<DiskRequest>(&json) {
                        Ok(req) if !peer_may_ask(&req) => {
                            tracing::warn!(%from, request = ?req, "refused an admin request from the peer: not one split-brain resolution needs");
                            DiskResponse::Failed {
                                message: format!(
                                    "{}: not allowed from the peer (only status, secondary, disconnect and connect are): run it on {}",
                                    request_name(&req),
                                    cfg.node
                                ),
                            }
                        }
                        Ok(req) => {
                            if !matches!(req, DiskRequest::Status) {
                                tracing::info!(%from, request = ?req, "admin request from the peer");
                            }
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
                packet::send(&mut link, &Frame::AdminReply { json }).await
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
                    let _ = packet::send(&mut link, &Frame::error(msg.clone())).await;
                    return Err(io::Error::other(msg));
                }
                packet::send(&mut link, &self.join_frame()).await?;
                self.establish(link, data_size, last_write_ms);
                Ok(())
            }
            Ok(Ok(f)) => Err(packet::unexpected(f, "Join or Admin")),
        }
    }

    pub(super) fn join_frame(&self) -> Frame {
        let cfg = lock(&self.cfg);
        Frame::Join {
            resource: cfg.name.clone(),
            node: cfg.node.clone(),
            data_size: self.data_size,
            last_write_ms: self.core().last_write_ms,
        }
    }

    /// The first node keeps trying to connect while WFConnection.
    pub(super) async fn connector(self: Arc<Device>) {
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

    pub(super) async fn try_connect(self: Arc<Device>, cfg: &DeviceConfig) -> io::Result<()> {
        let mut link = packet::connect(cfg.peer_addr(), &cfg.link_security(), LINK_TIMEOUT).await?;
        packet::send(&mut link, &self.join_frame()).await?;
        match tokio::time::timeout(LINK_TIMEOUT, packet::recv(&mut link)).await {
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
            Ok(Ok(f)) => Err(packet::unexpected(f, "Join")),
        }
    }

    /// Make `link` the replication link and start the handshake.
    ///
    /// Generic over the transport (TCP in the device, an in-memory pipe in
    /// the unit tests); authentication happened before.
    pub(super) fn establish<T>(
        &self,
        link: Framed<T, packet::LinkCodec>,
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
        let (ctrl_tx, ctrl_rx) = mpsc::channel(CTRL_QUEUE);
        let peer = Arc::new(PeerTx {
            epoch: c.epoch,
            data_tx: tokio::sync::Mutex::new(data_tx),
            ctrl_tx,
            overflow: AtomicBool::new(false),
            inflight: Mutex::new(Inflight {
                tl: TransferLog::default(),
                waiters: Default::default(),
                ko: {
                    let cfg = lock(&self.cfg);
                    KoTracker::new(cfg.res.timeout, cfg.res.ko_count)
                },
                abort: None,
                local: Default::default(),
                local_go: Default::default(),
            }),
            room: Condvar::new(),
            turn: Condvar::new(),
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

    pub(super) async fn run_link<T>(
        self: Arc<Device>,
        link: Framed<T, packet::LinkCodec>,
        peer: Arc<PeerTx>,
        mut data_rx: mpsc::Receiver<Frame>,
        mut ctrl_rx: mpsc::Receiver<Frame>,
    ) where
        T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin + 'static,
    {
        let (mut sink, mut stream) = link.split();
        // A peer that stops reading blocks our sends: it is dropped after
        // `send_timeout` (DRBD's timeout × ko-count; never "never").
        let limit = send_timeout(&lock(&self.cfg).res);
        async fn put<S>(sink: &mut S, f: &Frame, limit: Duration) -> io::Result<()>
        where
            S: futures::Sink<tokio_util::bytes::Bytes, Error = io::Error> + Unpin,
        {
            tokio::time::timeout(limit, packet::send(sink, f))
                .await
                .map_err(|_| {
                    io::Error::new(
                        io::ErrorKind::TimedOut,
                        format!("the peer read nothing for {limit:?}"),
                    )
                })?
        }
        async fn put_many<S>(sink: &mut S, fs: &[Frame], limit: Duration) -> io::Result<()>
        where
            S: futures::Sink<tokio_util::bytes::Bytes, Error = io::Error> + Unpin,
        {
            tokio::time::timeout(limit, async {
                for f in fs {
                    sink.feed(packet::encode(f)?).await?;
                }
                sink.flush().await
            })
            .await
            .map_err(|_| {
                io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("the peer read nothing for {limit:?}"),
                )
            })?
        }
        let writer = async {
            let mut ping = tokio::time::interval(PING_INTERVAL);
            loop {
                let f = tokio::select! {
                    biased;
                    _ = peer.cancel.cancelled() => {
                        if peer.overflow.load(Ordering::Acquire) {
                            return Err(io::Error::other(format!(
                                "the peer does not read: {CTRL_QUEUE} control frames queued"
                            )));
                        }
                        // Dropped on purpose (disconnect, a failed handshake):
                        // what was queued still goes out, so the peer sees our
                        // last state (and detects a split brain itself).
                        while let Ok(f) = ctrl_rx.try_recv() {
                            put(&mut sink, &f, limit).await?;
                        }
                        let _ = tokio::time::timeout(limit, sink.close()).await;
                        return Ok(());
                    }
                    f = ctrl_rx.recv() => f,
                    f = data_rx.recv() => f,
                    _ = ping.tick() => Some(Frame::Ping),
                };
                let Some(f) = f else {
                    return Ok::<(), io::Error>(());
                };
                // Whatever else is queued goes out in the same flush (acks
                // of many writes in one segment, one syscall): at most
                // WRITE_BATCH frames, acks and state first.
                let mut batch = vec![f];
                while batch.len() < WRITE_BATCH {
                    match ctrl_rx.try_recv().or_else(|_| data_rx.try_recv()) {
                        Ok(f) => batch.push(f),
                        Err(_) => break,
                    }
                }
                put_many(&mut sink, &batch, limit).await?;
            }
        };
        // Replicated writes are applied many at once (apply.rs); the
        // blocking ones still running when the link ends are waited for
        // below, before the link is torn down.
        let applying = Arc::new(Applying::default());
        let reader = async {
            let mut rx = Applier::new(applying.clone());
            let mut quiet_until = tokio::time::Instant::now() + LINK_TIMEOUT;
            loop {
                let room = rx.has_room();
                // Biased, the timeout last: after a stall of this task (a
                // busy machine, a lock held by a writer) the frames that
                // arrived meanwhile are read before silence is declared.
                // Unbiased, select! picked the elapsed timer half the time
                // although the peer had sent all along, and dropped a
                // healthy link under load ("the peer sent nothing for 3s"
                // on the Primary, "Connection reset by peer" on the
                // Secondary, seen with FUSE_ASYNC_DIO's many writes).
                tokio::select! {
                    biased;
                    a = rx.next(), if !rx.is_idle() => {
                        self.rx_applied(&peer, &mut rx, a)?;
                        quiet_until = tokio::time::Instant::now() + LINK_TIMEOUT;
                    }
                    f = packet::recv(&mut stream), if room => {
                        quiet_until = tokio::time::Instant::now() + LINK_TIMEOUT;
                        match f? {
                            Frame::Write { seq, offset, data } => {
                                self.rx_write(&mut rx, seq, offset, data)?
                            }
                            Frame::Flush { seq } => self.rx_flush(&mut rx, seq)?,
                            f @ (Frame::Ping | Frame::PingAck | Frame::Ack { .. }
                                | Frame::FlushAck { .. }) => {
                                self.clone().on_frame(&peer, f).await?
                            }
                            f => {
                                // Everything else sees every earlier write
                                // applied (resync data, state, verify).
                                self.rx_drain(&peer, &mut rx).await?;
                                self.clone().on_frame(&peer, f).await?;
                            }
                        }
                    }
                    _ = tokio::time::sleep_until(quiet_until), if room => {
                        return Err::<(), io::Error>(io::Error::new(
                            io::ErrorKind::TimedOut,
                            format!("the peer sent nothing for {LINK_TIMEOUT:?}"),
                        ));
                    }
                }
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
        // Writes of this link still landing on the backing file finish
        // before it is torn down (and before any next link's resync).
        applying.wait_idle(limit).await;
    }

    /// The link task ended (`err`: why): fail every waiting writer, mark
    /// what may not have reached the peer, tell the machine.
    pub(super) fn link_lost(&self, peer: &PeerTx, err: Option<io::Error>) {
        // `core` first (the lock order allows `inflight` under it): the
        // writers that teardown wakes see the machine after the loss, so
        // under resource-and-stonith none acknowledges a write the peer
        // may lack before I/O is frozen.
        let mut c = self.core();
        let ranges = peer.teardown();
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

    pub(super) async fn on_frame(
        self: Arc<Device>,
        peer: &Arc<PeerTx>,
        f: Frame,
    ) -> io::Result<()> {
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
            Frame::Write { .. } | Frame::Flush { .. } => {
                // Handled by the reader (apply.rs), never here.
                return Err(packet::unexpected(f, "a frame handled here"));
            }
            Frame::Ack { seq } => peer.complete(seq, false)?,
            Frame::FlushAck { seq } => peer.complete(seq, true)?,
            Frame::Bitmap { data, last } => {
                let mut c = self.core();
                if c.bitmap_rx.len() + data.len() > (self.data_size / BM_BLOCK / 8 + 8192) as usize
                {
                    return Err(packet::LinkError::Malformed("bitmap too long".into()).into());
                }
                c.bitmap_rx.extend_from_slice(&data);
                if last {
                    let bits = self.data_size / BM_BLOCK;
                    let pages = std::mem::take(&mut c.bitmap_rx);
                    let bm = Bitmap::from_pages(bits, &pages)
                        .map_err(|e| packet::LinkError::Malformed(e.to_string()))?;
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
                    // Flushed off the reader: the data behind it keeps
                    // arriving and landing while the disk flushes (the
                    // target allows one flush at a time; its acks are queued
                    // under the core lock, so `RsDone` never overtakes them).
                    let (dev, p) = (self.clone(), peer.clone());
                    tokio::spawn(async move {
                        let r = dev.ack_resync(&p, t).await;
                        dev.wake.notify_waiters();
                        if let (Err(e), true) = (r, p.live()) {
                            tracing::error!(error = %e, "flushing resync data: dropping the connection");
                            dev.core().last_error = Some(format!("flushing resync data: {e}"));
                            p.cancel.cancel();
                        }
                    });
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
            Frame::Error { msg } => return Err(packet::LinkError::Peer(msg).into()),
            f => return Err(packet::unexpected(f, "a link frame")),
        }
        Ok(())
    }
}
