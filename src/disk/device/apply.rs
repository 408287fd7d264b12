//! The receiving side of replicated writes: many `Write` frames applied to
//! the backing file at once, in the order [`datapath::ApplyOrder`] allows
//! (overlapping writes in seq order, a barrier's flush after every earlier
//! write), each acknowledged when it is on this node's backing file, each
//! barrier when everything before it is stable (protocol C, DRBD's epochs).
//!
//! The link's reader task owns an [`Applier`]: it registers every `Write`
//! and `Flush` frame, starts what may start on the blocking pool, and
//! finishes each when it completes (ack, then start what waited for it).
//! Any other frame that touches the disk or the state first waits until
//! nothing is being applied ([`Applier::is_idle`]), so resync data, state
//! changes and verify requests see every earlier write applied, as they did
//! when writes were applied one at a time.

use super::*;
use datapath::{ApplyOrder, Start};
use futures::future::BoxFuture;
use futures::stream::FuturesUnordered;
use std::collections::HashMap;
use std::sync::atomic::AtomicUsize;

/// Replicated requests the receiver holds at most (running or waiting);
/// beyond it the reader stops reading (TCP pushes back on the Primary).
/// The Primary keeps at most [`datapath::MAX_IN_FLIGHT`] in flight.
pub(super) const APPLY_WINDOW: usize = 2 * datapath::MAX_IN_FLIGHT;

/// Blocking writes and flushes of one link still running: the link is
/// only torn down (and a new one established) once they finished, so a
/// late write of an old link never lands after the next link's resync data.
#[derive(Default)]
pub(super) struct Applying {
    n: AtomicUsize,
    idle: Notify,
}

pub(super) struct ApplyGuard(Arc<Applying>);

impl Applying {
    pub(super) fn enter(self: &Arc<Self>) -> ApplyGuard {
        self.n.fetch_add(1, Ordering::AcqRel);
        ApplyGuard(self.clone())
    }

    /// Wait until every blocking write and flush finished (at most `limit`:
    /// a hung disk must not keep the link from being torn down).
    pub(super) async fn wait_idle(&self, limit: Duration) {
        let _ = tokio::time::timeout(limit, async {
            loop {
                let idle = self.idle.notified();
                if self.n.load(Ordering::Acquire) == 0 {
                    return;
                }
                idle.await;
            }
        })
        .await;
    }
}

impl Drop for ApplyGuard {
    fn drop(&mut self) {
        if self.0.n.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.0.idle.notify_waiters();
        }
    }
}

/// One finished blocking request.
pub(super) enum Applied {
    Write {
        seq: u64,
        offset: u64,
        len: u64,
        r: io::Result<()>,
    },
    Flush {
        seq: u64,
        /// `Err((e, local))`: the flush failed (`local`: on the disk; else
        /// there is no disk).
        r: Result<(), (io::Error, bool)>,
    },
}

/// The receiver's requests in flight on one link.
pub(super) struct Applier {
    order: ApplyOrder,
    /// Writes registered but waiting for an earlier overlapping write.
    waiting: HashMap<u64, (u64, Vec<u8>)>,
    running: FuturesUnordered<BoxFuture<'static, Applied>>,
    applying: Arc<Applying>,
}

impl Applier {
    pub(super) fn new(applying: Arc<Applying>) -> Applier {
        Applier {
            order: ApplyOrder::default(),
            waiting: HashMap::new(),
            running: FuturesUnordered::new(),
            applying,
        }
    }

    /// Nothing running and nothing waiting.
    pub(super) fn is_idle(&self) -> bool {
        self.order.is_empty()
    }

    /// Room to read another frame.
    pub(super) fn has_room(&self) -> bool {
        self.order.len() < APPLY_WINDOW
    }

    /// The next finished request (pending forever when nothing runs: use
    /// under a guard of `!is_idle()`).
    pub(super) async fn next(&mut self) -> Applied {
        match self.running.next().await {
            Some(a) => a,
            None => futures::future::pending().await,
        }
    }
}

fn malformed(e: datapath::ApplyError) -> io::Error {
    packet::LinkError::Malformed(e.to_string()).into()
}

impl Device {
    fn start_write(&self, rx: &mut Applier, seq: u64, offset: u64, data: Vec<u8>) {
        let store = self.core().local.as_ref().map(|l| l.store.clone());
        let guard = rx.applying.enter();
        let len = data.len() as u64;
        rx.running.push(Box::pin(async move {
            let r = match store {
                Some(store) => tokio::task::spawn_blocking(move || {
                    let _guard = guard;
                    store.write_at(&data, offset)
                })
                .await
                .unwrap_or_else(|e| Err(io::Error::other(e))),
                None => Err(eio("no local disk")),
            };
            Applied::Write {
                seq,
                offset,
                len,
                r,
            }
        }));
    }

    fn start_flush(&self, rx: &mut Applier, seq: u64) {
        // Without a disk (detached) nothing acked earlier is known to be
        // stable here: fail, and the Primary marks what this flush would
        // have covered (its transfer log).
        let store = self.target_store();
        let guard = rx.applying.enter();
        rx.running.push(Box::pin(async move {
            let r = match store {
                Ok(store) => tokio::task::spawn_blocking(move || {
                    let _guard = guard;
                    store.flush()
                })
                .await
                .unwrap_or_else(|e| Err(io::Error::other(e)))
                .map_err(|e| (e, true)),
                Err(e) => Err((e, false)),
            };
            Applied::Flush { seq, r }
        }));
    }

    fn start(&self, rx: &mut Applier, starts: Vec<Start>) {
        for s in starts {
            match s {
                Start::Write(seq) => {
                    if let Some((offset, data)) = rx.waiting.remove(&seq) {
                        self.start_write(rx, seq, offset, data);
                    }
                }
                Start::Flush(seq) => self.start_flush(rx, seq),
            }
        }
    }

    /// A `Write` frame from the Primary.
    pub(super) fn rx_write(
        &self,
        rx: &mut Applier,
        seq: u64,
        offset: u64,
        data: Vec<u8>,
    ) -> io::Result<()> {
        let len = data.len() as u64;
        if !self.in_range(offset, len) {
            return Err(packet::LinkError::Malformed("write range".into()).into());
        }
        if rx.order.write(seq, offset, len).map_err(malformed)? {
            self.start_write(rx, seq, offset, data);
        } else {
            rx.waiting.insert(seq, (offset, data));
        }
        Ok(())
    }

    /// A `Flush` frame (a barrier) from the Primary.
    pub(super) fn rx_flush(&self, rx: &mut Applier, seq: u64) -> io::Result<()> {
        if rx.order.flush(seq).map_err(malformed)? {
            self.start_flush(rx, seq);
        }
        Ok(())
    }

    /// A write or flush finished: answer it, start what waited for it.
    pub(super) fn rx_applied(&self, peer: &PeerTx, rx: &mut Applier, a: Applied) -> io::Result<()> {
        let seq = match a {
            Applied::Write {
                seq,
                offset,
                len,
                r,
            } => {
                {
                    let mut c = self.core();
                    match &r {
                        Ok(()) => {
                            c.counters.nr += len / 1024;
                            c.counters.dw += len / 1024;
                            c.last_write_ms = Some(now_ms());
                        }
                        Err(e) => {
                            c.mark(offset, len);
                            self.local_io_error(&mut c, IoSite::DataWrite, false, &e.to_string());
                        }
                    }
                }
                if r.is_err() {
                    // DRBD's NegAck: the Primary has the data and marks the
                    // block, so a resync brings it here later.
                    peer.ctrl(Frame::OutOfSync { offset, len });
                }
                peer.ctrl(Frame::Ack { seq });
                seq
            }
            Applied::Flush { seq, r } => {
                if let Err((e, local)) = r {
                    if local {
                        let mut c = self.core();
                        self.local_io_error(&mut c, IoSite::DataFlush, false, &e.to_string());
                    }
                    return Err(e);
                }
                peer.ctrl(Frame::FlushAck { seq });
                seq
            }
        };
        let starts = rx.order.done(seq).map_err(malformed)?;
        self.start(rx, starts);
        Ok(())
    }

    /// Finish everything registered (before a frame that must see every
    /// earlier write applied).
    pub(super) async fn rx_drain(&self, peer: &PeerTx, rx: &mut Applier) -> io::Result<()> {
        while !rx.is_idle() {
            let a = rx.next().await;
            self.rx_applied(peer, rx, a)?;
        }
        Ok(())
    }
}
