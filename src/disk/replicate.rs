//! DRBD protocol C replication as a [`BlockStore`].
//!
//! The Primary wraps its local backing store in a [`ReplicatedStore`]; every
//! write goes to the local store AND over a TCP link to the Secondary, which
//! runs [`serve_secondary`] over its own local store. As in DRBD's protocol C
//! a write completes only when both stores have it, and a flush (DRBD's
//! barrier, which closes an epoch) completes only when both are flushed.
//!
//! # Wire
//!
//! Length-delimited frames (4-byte big-endian length, at most
//! [`MAX_FRAME`]), each body one [`Frame`] in bincode 1.x with
//! `DefaultOptions::new().with_limit(MAX_FRAME)` (varint, no trailing bytes),
//! so a hostile length prefix never allocates more than one frame.
//!
//! Mutual challenge–response with the cluster key before any data frame:
//!
//! ```text
//!  Primary                                  Secondary
//!    Hello{np}  ───────────────────────────▶
//!              ◀─────────────────────────── Hello{ns}
//!              ◀─────────────────────────── Auth{mac(key, np || "secondary")}
//!    Auth{mac(key, ns || "primary")} ──────▶  (verified before any Write is read)
//!    Write{seq,..} / Flush{seq} ───────────▶
//!              ◀─────────────────────────── Ack{seq} / FlushAck{seq}
//! ```
//!
//! The role is inside the MAC so neither side's answer can be reflected back.
//! Any malformed, unexpected or unauthenticated frame closes the link.
//!
//! # Ordering
//!
//! `Write` and `Flush` share one sequence space; the Secondary requires it to
//! increase by one per frame and handles frames strictly in order, so a
//! `FlushAck{seq}` means every earlier write is applied and the Secondary's
//! store was flushed after them. Several writes may be in flight at once (up
//! to [`MAX_IN_FLIGHT`]).
//!
//! # Losing the peer
//!
//! Like DRBD when the connection goes away, the Primary keeps running: a
//! write whose link fails, and every write while no peer is attached,
//! completes locally and marks its range in the out-of-sync bitmap (4 KiB per
//! bit). The Primary also keeps a transfer log of the writes sent since the
//! last acknowledged flush (acked but maybe still in the peer's volatile
//! cache); on link loss these are marked out of sync too, as DRBD does with
//! the requests in its transfer log that have no barrier ack. The bitmap is
//! handed to the resync through [`ReplicatedStore::take_bitmap`].
//!
//! # Threads
//!
//! [`BlockStore`] calls are blocking (FUSE server threads). Each
//! [`ReplicatedStore`] owns a small tokio runtime (threads `hbd-drepl`) that
//! runs the link's reader and writer tasks; a blocking caller hands its frame
//! to the writer through a bounded channel and waits for the ack on a std
//! channel. `write_at`/`flush` never panic inside an async context, but they
//! block the calling thread, so call them from plain threads.

use std::collections::{HashMap, VecDeque};
use std::io::{self, Read};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc as std_mpsc, Arc, Condvar, Mutex, MutexGuard};
use std::time::Duration;

use bincode::Options;
use futures::{SinkExt, StreamExt};
use serde::{Deserialize, Serialize};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio_util::bytes::Bytes;
use tokio_util::codec::{Framed, FramedParts, LengthDelimitedCodec};
use tokio_util::sync::CancellationToken;

use crate::disk::expose::BlockStore;
use crate::disk::meta::Bitmap;
use crate::wire::auth::{mac, verify};
use crate::wire::AuthKey;

/// Largest data payload of one `Write` frame; bigger writes are split.
pub const MAX_WRITE: usize = 1 << 20;
/// Largest frame body: one maximal write plus the enum header.
pub const MAX_FRAME: usize = MAX_WRITE + 64;
/// Writes and flushes sent but not yet acknowledged, per link.
pub const MAX_IN_FLIGHT: usize = 64;
/// Transfer-log entries (writes since the last flush ack) before a write
/// first issues a flush of its own, which keeps the log bounded.
pub const MAX_TRANSFER_LOG: usize = 4096;
/// Time allowed for the whole authentication exchange.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
const NONCE_LEN: usize = 32;
const MAX_MAC: usize = 64;
const MAX_MSG: usize = 256;
const ROLE_PRIMARY: &[u8] = b"primary";
const ROLE_SECONDARY: &[u8] = b"secondary";

/// Why a replication link failed (carried inside an `io::Error`).
#[derive(Debug, thiserror::Error)]
pub enum ReplError {
    #[error("malformed frame: {0}")]
    Malformed(String),
    #[error("unexpected frame {got}, wanted {want}")]
    Unexpected {
        got: &'static str,
        want: &'static str,
    },
    #[error("peer failed authentication")]
    AuthFailed,
    #[error("out-of-order frame: seq {got}, wanted {want}")]
    OutOfOrder { got: u64, want: u64 },
    #[error("link closed by peer")]
    Closed,
    #[error("peer reported: {0}")]
    Peer(String),
    #[error("authentication timed out")]
    Timeout,
}

impl From<ReplError> for io::Error {
    fn from(e: ReplError) -> io::Error {
        let kind = match e {
            ReplError::AuthFailed => io::ErrorKind::PermissionDenied,
            ReplError::Closed => io::ErrorKind::UnexpectedEof,
            ReplError::Timeout => io::ErrorKind::TimedOut,
            _ => io::ErrorKind::InvalidData,
        };
        io::Error::new(kind, e)
    }
}

/// One frame on the replication link.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
enum Frame {
    Hello {
        nonce: [u8; NONCE_LEN],
    },
    Auth {
        mac: Vec<u8>,
    },
    Write {
        seq: u64,
        offset: u64,
        data: Vec<u8>,
    },
    /// Barrier: closes an epoch.
    Flush {
        seq: u64,
    },
    Ack {
        seq: u64,
    },
    FlushAck {
        seq: u64,
    },
    Error {
        msg: String,
    },
}

impl Frame {
    fn name(&self) -> &'static str {
        match self {
            Frame::Hello { .. } => "Hello",
            Frame::Auth { .. } => "Auth",
            Frame::Write { .. } => "Write",
            Frame::Flush { .. } => "Flush",
            Frame::Ack { .. } => "Ack",
            Frame::FlushAck { .. } => "FlushAck",
            Frame::Error { .. } => "Error",
        }
    }
}

fn opts() -> impl Options {
    bincode::DefaultOptions::new().with_limit(MAX_FRAME as u64)
}

fn encode(f: &Frame) -> io::Result<Bytes> {
    opts()
        .serialize(f)
        .map(Bytes::from)
        .map_err(|e| ReplError::Malformed(e.to_string()).into())
}

fn decode(body: &[u8]) -> Result<Frame, ReplError> {
    let f: Frame = opts()
        .deserialize(body)
        .map_err(|e| ReplError::Malformed(e.to_string()))?;
    match &f {
        Frame::Auth { mac } if mac.len() > MAX_MAC => {
            Err(ReplError::Malformed("MAC too long".into()))
        }
        Frame::Write { data, .. } if data.len() > MAX_WRITE => {
            Err(ReplError::Malformed("write too long".into()))
        }
        Frame::Error { msg } if msg.len() > MAX_MSG => {
            Err(ReplError::Malformed("error message too long".into()))
        }
        _ => Ok(f),
    }
}

type Link = Framed<TcpStream, LengthDelimitedCodec>;

fn framed(stream: TcpStream) -> Link {
    let codec = LengthDelimitedCodec::builder()
        .max_frame_length(MAX_FRAME)
        .new_codec();
    Framed::new(stream, codec)
}

async fn send<S>(sink: &mut S, f: &Frame) -> io::Result<()>
where
    S: futures::Sink<Bytes, Error = io::Error> + Unpin,
{
    sink.send(encode(f)?).await
}

async fn recv<S>(stream: &mut S) -> io::Result<Frame>
where
    S: futures::Stream<Item = io::Result<tokio_util::bytes::BytesMut>> + Unpin,
{
    match stream.next().await {
        Some(Ok(body)) => Ok(decode(&body)?),
        Some(Err(e)) => Err(e),
        None => Err(ReplError::Closed.into()),
    }
}

fn nonce() -> io::Result<[u8; NONCE_LEN]> {
    let mut n = [0u8; NONCE_LEN];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut n)?;
    Ok(n)
}

fn challenge(nonce: &[u8; NONCE_LEN], role: &[u8]) -> Vec<u8> {
    let mut d = nonce.to_vec();
    d.extend_from_slice(role);
    d
}

/// A connected, authenticated link to the Secondary, ready for
/// [`ReplicatedStore::attach_peer`].
pub struct PeerLink {
    link: Link,
    peer: SocketAddr,
}

impl std::fmt::Debug for PeerLink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PeerLink")
            .field("peer", &self.peer)
            .finish_non_exhaustive()
    }
}

impl PeerLink {
    pub fn peer_addr(&self) -> SocketAddr {
        self.peer
    }
}

/// Connect to the Secondary at `addr` and authenticate both ways with `key`.
pub async fn connect_primary(addr: SocketAddr, key: AuthKey) -> io::Result<PeerLink> {
    let stream = TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    let mut link = framed(stream);
    tokio::time::timeout(HANDSHAKE_TIMEOUT, primary_handshake(&mut link, &key))
        .await
        .map_err(|_| ReplError::Timeout)??;
    Ok(PeerLink { link, peer: addr })
}

async fn primary_handshake(link: &mut Link, key: &AuthKey) -> io::Result<()> {
    let np = nonce()?;
    send(link, &Frame::Hello { nonce: np }).await?;
    let ns = match recv(link).await? {
        Frame::Hello { nonce } => nonce,
        f => return Err(unexpected(f, "Hello")),
    };
    match recv(link).await? {
        Frame::Auth { mac: m } if verify(key, &challenge(&np, ROLE_SECONDARY), &m) => {}
        Frame::Auth { .. } => return Err(ReplError::AuthFailed.into()),
        f => return Err(unexpected(f, "Auth")),
    }
    let m = mac(key, &challenge(&ns, ROLE_PRIMARY));
    send(link, &Frame::Auth { mac: m }).await
}

fn unexpected(f: Frame, want: &'static str) -> io::Error {
    match f {
        Frame::Error { msg } => ReplError::Peer(msg).into(),
        f => ReplError::Unexpected {
            got: f.name(),
            want,
        }
        .into(),
    }
}

/// The Secondary side of one link: authenticate the Primary, then apply its
/// writes and flushes to `local` in sequence order and acknowledge each.
///
/// Returns `Ok(())` when the Primary closes the link cleanly, an error on
/// anything else (failed authentication, a malformed or out-of-order frame, a
/// local I/O error, which is also reported to the Primary as `Error`).
pub async fn serve_secondary(
    stream: TcpStream,
    key: AuthKey,
    local: Arc<dyn BlockStore>,
) -> io::Result<()> {
    stream.set_nodelay(true)?;
    let mut link = framed(stream);
    tokio::time::timeout(HANDSHAKE_TIMEOUT, secondary_handshake(&mut link, &key))
        .await
        .map_err(|_| ReplError::Timeout)??;
    let mut want = 0u64;
    loop {
        let frame = match link.next().await {
            None => return Ok(()),
            Some(Err(e)) => return Err(e),
            Some(Ok(body)) => decode(&body)?,
        };
        let (seq, result, ack) = match frame {
            Frame::Write { seq, offset, data } => {
                check_seq(seq, want)?;
                let store = local.clone();
                let r = tokio::task::spawn_blocking(move || store.write_at(&data, offset)).await;
                (seq, r, Frame::Ack { seq })
            }
            Frame::Flush { seq } => {
                check_seq(seq, want)?;
                let store = local.clone();
                let r = tokio::task::spawn_blocking(move || store.flush()).await;
                (seq, r, Frame::FlushAck { seq })
            }
            f => return Err(unexpected(f, "Write or Flush")),
        };
        let result = result.map_err(io::Error::other).and_then(|r| r);
        if let Err(e) = result {
            // DRBD would detach the failing disk; here the link goes down and
            // the Primary marks the range out of sync.
            let mut msg = format!("seq {seq}: {e}");
            msg.truncate(MAX_MSG);
            let _ = send(&mut link, &Frame::Error { msg }).await;
            return Err(e);
        }
        send(&mut link, &ack).await?;
        want += 1;
    }
}

fn check_seq(got: u64, want: u64) -> Result<(), ReplError> {
    if got == want {
        Ok(())
    } else {
        Err(ReplError::OutOfOrder { got, want })
    }
}

async fn secondary_handshake(link: &mut Link, key: &AuthKey) -> io::Result<()> {
    let np = match recv(link).await? {
        Frame::Hello { nonce } => nonce,
        f => return Err(unexpected(f, "Hello")),
    };
    let ns = nonce()?;
    send(link, &Frame::Hello { nonce: ns }).await?;
    let m = mac(key, &challenge(&np, ROLE_SECONDARY));
    send(link, &Frame::Auth { mac: m }).await?;
    match recv(link).await? {
        Frame::Auth { mac: m } if verify(key, &challenge(&ns, ROLE_PRIMARY), &m) => Ok(()),
        Frame::Auth { .. } => Err(ReplError::AuthFailed.into()),
        f => Err(unexpected(f, "Auth")),
    }
}

/// Result of one request as seen by the blocking caller.
type Done = std_mpsc::SyncSender<bool>;

/// Requests of one link not yet acknowledged, and its transfer log.
struct Inflight {
    /// Set once, when the link failed; nothing is registered afterwards.
    dead: bool,
    next_seq: u64,
    /// seq → completion (true = acked by the peer).
    pending: HashMap<u64, Done>,
    /// Writes `(seq, offset, len)` not yet covered by a flush ack.
    transfer_log: VecDeque<(u64, u64, u64)>,
}

/// The Primary's state of one attached link.
struct PeerState {
    inflight: Mutex<Inflight>,
    /// Signalled when `pending` shrinks or the link dies.
    room: Condvar,
    /// Keeps frames in seq order between registering and queueing.
    send_order: tokio::sync::Mutex<mpsc::Sender<Frame>>,
    dead: AtomicBool,
    cancel: CancellationToken,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// A BlockStore that writes locally AND to the peer: a write returns only
/// when both backing stores have it (protocol C); a flush returns only when
/// both are flushed. While the peer is gone, writes succeed locally and set
/// bits in the out-of-sync bitmap (4 KiB per bit) instead.
pub struct ReplicatedStore {
    local: Arc<dyn BlockStore>,
    bitmap: Arc<Mutex<Bitmap>>,
    peer: Mutex<Option<Arc<PeerState>>>,
    rt: Option<tokio::runtime::Runtime>,
}

impl std::fmt::Debug for ReplicatedStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReplicatedStore")
            .field("peer_connected", &self.peer_connected())
            .field("out_of_sync", &self.out_of_sync())
            .finish_non_exhaustive()
    }
}

impl ReplicatedStore {
    /// Wrap `local`; `bitmap_bits` is the size of the out-of-sync bitmap
    /// (normally `Layout::bm_bits`). No peer is attached yet.
    ///
    /// Panics only if the OS refuses to start the runtime's threads.
    pub fn new(local: Arc<dyn BlockStore>, bitmap_bits: u64) -> Arc<ReplicatedStore> {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("hbd-drepl")
            .enable_all()
            .build()
            .expect("starting the replication runtime");
        Arc::new(ReplicatedStore {
            local,
            bitmap: Arc::new(Mutex::new(Bitmap::new(bitmap_bits))),
            peer: Mutex::new(None),
            rt: Some(rt),
        })
    }

    /// Attach a connected, authenticated peer link (the Primary side). A link
    /// attached before is torn down (its unacknowledged writes are marked out
    /// of sync). The socket moves to this store's runtime, so the runtime
    /// that ran [`connect_primary`] may end afterwards.
    pub fn attach_peer(&self, link: PeerLink) {
        let Some(rt) = &self.rt else { return };
        let parts = link.link.into_parts();
        let codec = parts.codec;
        let read_buf = parts.read_buf;
        let std_stream = match parts.io.into_std() {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(error = %e, "cannot move replication link");
                return;
            }
        };
        let _guard = rt.enter();
        let stream = match TcpStream::from_std(std_stream) {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(error = %e, "cannot register replication link");
                return;
            }
        };
        let mut p = FramedParts::new::<Bytes>(stream, codec);
        p.read_buf = read_buf;
        let framed = Framed::from_parts(p);

        let (tx, rx) = mpsc::channel(MAX_IN_FLIGHT);
        let state = Arc::new(PeerState {
            inflight: Mutex::new(Inflight {
                dead: false,
                next_seq: 0,
                pending: HashMap::new(),
                transfer_log: VecDeque::new(),
            }),
            room: Condvar::new(),
            send_order: tokio::sync::Mutex::new(tx),
            dead: AtomicBool::new(false),
            cancel: CancellationToken::new(),
        });
        if let Some(old) = lock(&self.peer).replace(state.clone()) {
            old.cancel.cancel();
        }
        tracing::info!(peer = %link.peer, "replication peer attached");
        rt.spawn(run_link(framed, rx, state, self.bitmap.clone()));
    }

    /// True while a peer is attached and its link has not failed.
    pub fn peer_connected(&self) -> bool {
        lock(&self.peer)
            .as_ref()
            .is_some_and(|p| !p.dead.load(Ordering::Acquire))
    }

    /// Bytes marked out of sync.
    pub fn out_of_sync(&self) -> u64 {
        lock(&self.bitmap).out_of_sync_bytes()
    }

    /// Hand the out-of-sync bitmap to the resync, leaving an empty one.
    pub fn take_bitmap(&self) -> Bitmap {
        let mut b = lock(&self.bitmap);
        let bits = b.bits();
        std::mem::replace(&mut *b, Bitmap::new(bits))
    }

    fn mark(&self, offset: u64, len: u64) {
        lock(&self.bitmap).set_range(offset, len);
    }

    fn live_peer(&self) -> Option<Arc<PeerState>> {
        lock(&self.peer)
            .as_ref()
            .filter(|p| !p.dead.load(Ordering::Acquire))
            .cloned()
    }

    /// Register a request and queue its frame; `None` if the link is gone.
    fn submit(
        &self,
        peer: &PeerState,
        make: impl FnOnce(u64) -> Frame,
        range: Option<(u64, u64)>,
    ) -> Option<std_mpsc::Receiver<bool>> {
        // Blocking on a tokio mutex/channel through a plain executor works
        // on any thread, inside a runtime context or not.
        futures::executor::block_on(async {
            let tx = peer.send_order.lock().await;
            let (done, wait) = std_mpsc::sync_channel(1);
            let seq = {
                let mut inf = lock(&peer.inflight);
                while !inf.dead && inf.pending.len() >= MAX_IN_FLIGHT {
                    inf = peer.room.wait(inf).unwrap_or_else(|p| p.into_inner());
                }
                if inf.dead {
                    return None;
                }
                let seq = inf.next_seq;
                inf.next_seq += 1;
                inf.pending.insert(seq, done);
                if let Some((off, len)) = range {
                    inf.transfer_log.push_back((seq, off, len));
                }
                seq
            };
            // If the link died meanwhile, teardown already failed `done`.
            let _ = tx.send(make(seq)).await;
            Some(wait)
        })
    }

    fn write_chunk(&self, data: &[u8], offset: u64) -> io::Result<()> {
        let len = data.len() as u64;
        let Some(peer) = self.live_peer() else {
            self.local.write_at(data, offset)?;
            self.mark(offset, len);
            return Ok(());
        };
        if lock(&peer.inflight).transfer_log.len() >= MAX_TRANSFER_LOG {
            self.flush()?;
        }
        let frame = |seq| Frame::Write {
            seq,
            offset,
            data: data.to_vec(),
        };
        let wait = self.submit(&peer, frame, Some((offset, len)));
        // The local write runs while the peer's is in flight, as in DRBD.
        let local = self.local.write_at(data, offset);
        let acked = wait.is_some_and(|w| w.recv().unwrap_or(false));
        if !acked {
            // Peer gone: teardown marked the range if it was in the transfer
            // log; mark it here as well for the not-submitted case.
            self.mark(offset, len);
        }
        local
    }
}

impl BlockStore for ReplicatedStore {
    fn size(&self) -> u64 {
        self.local.size()
    }

    fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        self.local.read_at(buf, offset)
    }

    fn write_at(&self, data: &[u8], offset: u64) -> io::Result<()> {
        let mut off = offset;
        for chunk in data.chunks(MAX_WRITE) {
            self.write_chunk(chunk, off)?;
            off += chunk.len() as u64;
        }
        Ok(())
    }

    fn flush(&self) -> io::Result<()> {
        let wait = self
            .live_peer()
            .and_then(|peer| self.submit(&peer, |seq| Frame::Flush { seq }, None));
        let local = self.local.flush();
        // A failed link marked the unflushed epoch out of sync: the local
        // flush alone is what the Primary can still promise.
        if let Some(w) = wait {
            let _ = w.recv();
        }
        local
    }
}

impl Drop for ReplicatedStore {
    fn drop(&mut self) {
        if let Some(p) = lock(&self.peer).take() {
            p.cancel.cancel();
        }
        if let Some(rt) = self.rt.take() {
            // Never blocks, so dropping inside an async context is fine.
            rt.shutdown_background();
        }
    }
}

/// Run one attached link until it fails or is cancelled, then tear it down.
async fn run_link(
    link: Link,
    mut rx: mpsc::Receiver<Frame>,
    state: Arc<PeerState>,
    bitmap: Arc<Mutex<Bitmap>>,
) {
    let (mut sink, mut stream) = link.split();
    // Separate reader and writer: a writer blocked on a full socket must
    // not stop the acks from being read (the peer would block too).
    let writer = async {
        while let Some(f) = rx.recv().await {
            send(&mut sink, &f).await?;
        }
        Ok::<(), io::Error>(())
    };
    let reader = async {
        loop {
            let (seq, flush) = match recv(&mut stream).await? {
                Frame::Ack { seq } => (seq, false),
                Frame::FlushAck { seq } => (seq, true),
                f => return Err::<(), io::Error>(unexpected(f, "Ack or FlushAck")),
            };
            let mut inf = lock(&state.inflight);
            let Some(done) = inf.pending.remove(&seq) else {
                return Err(ReplError::Malformed(format!("ack for unknown seq {seq}")).into());
            };
            if flush {
                // Barrier ack: everything before it is stable on the peer.
                while inf.transfer_log.front().is_some_and(|&(s, _, _)| s < seq) {
                    inf.transfer_log.pop_front();
                }
            }
            drop(inf);
            state.room.notify_all();
            let _ = done.send(true);
        }
    };
    let err = tokio::select! {
        r = writer => r.err(),
        r = reader => r.err(),
        _ = state.cancel.cancelled() => None,
    };
    // Teardown: mark before failing the waiters, so a caller that sees its
    // write fail finds its range already in the bitmap.
    let mut inf = lock(&state.inflight);
    inf.dead = true;
    state.dead.store(true, Ordering::Release);
    {
        let mut bm = lock(&bitmap);
        for &(_, off, len) in &inf.transfer_log {
            bm.set_range(off, len);
        }
    }
    inf.transfer_log.clear();
    for (_, done) in inf.pending.drain() {
        let _ = done.send(false);
    }
    drop(inf);
    state.room.notify_all();
    match err {
        Some(e) => tracing::warn!(error = %e, "replication peer lost"),
        None => tracing::info!("replication link closed"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::disk::expose::FileStore;
    use crate::wire::AuthMethod;
    use std::sync::atomic::AtomicU64;
    use tokio::io::AsyncWriteExt;

    /// A raw client that connected and sent its Hello (and nothing else yet).
    async fn hello(addr: SocketAddr) -> Link {
        let mut l = framed(TcpStream::connect(addr).await.unwrap());
        let nonce = [7; NONCE_LEN];
        send(&mut l, &Frame::Hello { nonce }).await.unwrap();
        l
    }

    const SIZE: u64 = 8 << 20;

    fn key(secret: &[u8]) -> AuthKey {
        AuthKey {
            id: 1,
            method: AuthMethod::Sha256,
            secret: secret.to_vec(),
        }
    }

    fn rt() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap()
    }

    /// A FileStore that counts what reaches it.
    struct Counting {
        inner: FileStore,
        writes: AtomicU64,
        flushes: AtomicU64,
    }

    impl BlockStore for Counting {
        fn size(&self) -> u64 {
            self.inner.size()
        }
        fn read_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
            self.inner.read_at(buf, offset)
        }
        fn write_at(&self, data: &[u8], offset: u64) -> io::Result<()> {
            self.writes.fetch_add(1, Ordering::SeqCst);
            self.inner.write_at(data, offset)
        }
        fn flush(&self) -> io::Result<()> {
            self.inner.flush()?;
            self.flushes.fetch_add(1, Ordering::SeqCst);
            Ok(())
        }
    }

    fn store(dir: &tempfile::TempDir, name: &str) -> (std::path::PathBuf, Arc<Counting>) {
        let path = dir.path().join(name);
        std::fs::File::create(&path).unwrap().set_len(SIZE).unwrap();
        let inner = FileStore::open(&path, SIZE).unwrap();
        let c = Arc::new(Counting {
            inner,
            writes: AtomicU64::new(0),
            flushes: AtomicU64::new(0),
        });
        (path, c)
    }

    /// Listen once and serve the Secondary; returns the address and the task.
    fn secondary(
        rt: &tokio::runtime::Runtime,
        k: AuthKey,
        local: Arc<dyn BlockStore>,
    ) -> (SocketAddr, tokio::task::JoinHandle<io::Result<()>>) {
        let l = rt
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .unwrap();
        let addr = l.local_addr().unwrap();
        let h = rt.spawn(async move {
            let (s, _) = l.accept().await?;
            serve_secondary(s, k, local).await
        });
        (addr, h)
    }

    /// Deterministic xorshift, so failures reproduce.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
    }

    fn connected(
        rt: &tokio::runtime::Runtime,
        dir: &tempfile::TempDir,
    ) -> (
        Arc<ReplicatedStore>,
        Arc<Counting>,
        Arc<Counting>,
        tokio::task::JoinHandle<io::Result<()>>,
    ) {
        let (_, sec) = store(dir, "secondary");
        let (_, pri) = store(dir, "primary");
        let (addr, h) = secondary(rt, key(b"s3cret"), sec.clone());
        let link = rt.block_on(connect_primary(addr, key(b"s3cret"))).unwrap();
        let rs = ReplicatedStore::new(pri.clone(), SIZE / 4096);
        rs.attach_peer(link);
        assert!(rs.peer_connected());
        (rs, pri, sec, h)
    }

    #[test]
    fn writes_replicate_byte_identical() {
        let rt = rt();
        let dir = tempfile::tempdir().unwrap();
        let (rs, pri, sec, _h) = connected(&rt, &dir);
        let threads: Vec<_> = (0..6u64)
            .map(|t| {
                let rs = rs.clone();
                std::thread::spawn(move || {
                    let mut rng = Rng(0x9e37_79b9_7f4a_7c15 ^ (t + 1));
                    for _ in 0..40 {
                        let blocks = 1 + rng.next() % 64; // up to 256 KiB
                        let off = (rng.next() % (SIZE / 4096 - blocks)) * 4096;
                        let data: Vec<u8> = (0..blocks * 4096).map(|_| rng.next() as u8).collect();
                        rs.write_at(&data, off).unwrap();
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        // One write larger than a frame is split.
        let big: Vec<u8> = (0..(MAX_WRITE + 8192)).map(|i| (i % 251) as u8).collect();
        rs.write_at(&big, 4096).unwrap();
        rs.flush().unwrap();
        assert!(rs.peer_connected());
        assert_eq!(rs.out_of_sync(), 0);
        let mut a = vec![0u8; SIZE as usize];
        let mut b = vec![0u8; SIZE as usize];
        pri.read_at(&mut a, 0).unwrap();
        sec.read_at(&mut b, 0).unwrap();
        assert!(a == b, "backing files differ");
        assert_eq!(
            pri.writes.load(Ordering::SeqCst),
            sec.writes.load(Ordering::SeqCst)
        );
    }

    #[test]
    fn flush_returns_after_secondary_flushed() {
        let rt = rt();
        let dir = tempfile::tempdir().unwrap();
        let (rs, _pri, sec, _h) = connected(&rt, &dir);
        for i in 0..10u64 {
            rs.write_at(&[i as u8; 4096], i * 4096).unwrap();
        }
        assert_eq!(sec.writes.load(Ordering::SeqCst), 10);
        assert_eq!(sec.flushes.load(Ordering::SeqCst), 0);
        rs.flush().unwrap();
        assert_eq!(sec.flushes.load(Ordering::SeqCst), 1);
        rs.flush().unwrap();
        assert_eq!(sec.flushes.load(Ordering::SeqCst), 2);
    }

    #[test]
    fn wrong_key_fails_and_applies_nothing() {
        let rt = rt();
        let dir = tempfile::tempdir().unwrap();
        let (_, sec) = store(&dir, "secondary");
        let (addr, h) = secondary(&rt, key(b"right"), sec.clone());
        let e = rt
            .block_on(connect_primary(addr, key(b"wrong")))
            .unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::PermissionDenied);
        drop(rt.block_on(h));

        // A client that skips the right answer and sends writes anyway.
        let (addr, h) = secondary(&rt, key(b"right"), sec.clone());
        rt.block_on(async {
            let mut l = hello(addr).await;
            let _ = recv(&mut l).await;
            let _ = recv(&mut l).await;
            let bad = mac(&key(b"wrong"), b"whatever");
            let _ = send(&mut l, &Frame::Auth { mac: bad }).await;
            for seq in 0..4 {
                let data = vec![0xee; 4096];
                let w = Frame::Write {
                    seq,
                    offset: 0,
                    data,
                };
                let _ = send(&mut l, &w).await;
            }
        });
        let r = rt.block_on(h).unwrap();
        assert_eq!(
            r.unwrap_err().kind(),
            io::ErrorKind::PermissionDenied,
            "secondary must reject"
        );
        // And a Write instead of Auth.
        let (addr, h) = secondary(&rt, key(b"right"), sec.clone());
        rt.block_on(async {
            let mut l = hello(addr).await;
            let w = Frame::Write {
                seq: 0,
                offset: 0,
                data: vec![1; 4096],
            };
            let _ = send(&mut l, &w).await;
        });
        assert!(rt.block_on(h).unwrap().is_err());
        assert_eq!(sec.writes.load(Ordering::SeqCst), 0);
    }

    #[test]
    fn peer_killed_mid_stream_marks_later_writes() {
        let rt = rt();
        let dir = tempfile::tempdir().unwrap();
        let (rs, pri, sec, h) = connected(&rt, &dir);
        for i in 0..8u64 {
            rs.write_at(&[1; 8192], i * 65536).unwrap();
        }
        rs.flush().unwrap();
        assert_eq!(rs.out_of_sync(), 0);
        h.abort();
        let _ = rt.block_on(h);
        let applied_before = sec.writes.load(Ordering::SeqCst);
        // Writes after the loss, from several threads.
        let ranges: Vec<(u64, u64)> = (0..24u64)
            .map(|i| (SIZE / 2 + i * 3 * 4096, 4096 * (1 + i % 2)))
            .collect();
        let threads: Vec<_> = ranges
            .chunks(6)
            .map(|c| {
                let rs = rs.clone();
                let c = c.to_vec();
                std::thread::spawn(move || {
                    for (off, len) in c {
                        rs.write_at(&vec![2; len as usize], off).unwrap();
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        rs.flush().unwrap();
        assert!(!rs.peer_connected());
        let mut want = Bitmap::new(SIZE / 4096);
        for &(off, len) in &ranges {
            want.set_range(off, len);
        }
        assert_eq!(rs.out_of_sync(), want.out_of_sync_bytes());
        let got = rs.take_bitmap();
        let got: Vec<_> = got.iter_set_ranges().collect();
        let want: Vec<_> = want.iter_set_ranges().collect();
        assert_eq!(got, want);
        assert_eq!(rs.out_of_sync(), 0);
        assert_eq!(sec.writes.load(Ordering::SeqCst), applied_before);
        // Every write completed locally.
        for &(off, len) in &ranges {
            let mut b = vec![0; len as usize];
            pri.read_at(&mut b, off).unwrap();
            assert!(b.iter().all(|&x| x == 2));
        }
    }

    #[test]
    fn frame_round_trip_and_bounds() {
        let f = Frame::Write {
            seq: 3,
            offset: 4096,
            data: vec![9; 10],
        };
        assert_eq!(decode(&encode(&f).unwrap()).unwrap(), f);
        // A length prefix claiming a huge Vec must fail, not allocate.
        let mut evil = vec![1u8]; // variant Auth
        evil.extend_from_slice(&[0xfd, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f]);
        assert!(decode(&evil).is_err());
        let long = Frame::Auth { mac: vec![0; 65] };
        assert!(decode(&encode(&long).unwrap()).is_err());
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(48))]
        #[test]
        fn garbage_closes_link(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..2048),
                               framed_body in proptest::prelude::any::<bool>()) {
            let rt = rt();
            let dir = tempfile::tempdir().unwrap();
            let (_, sec) = store(&dir, "secondary");
            let (addr, h) = secondary(&rt, key(b"k"), sec.clone());
            rt.block_on(async {
                let mut s = TcpStream::connect(addr).await.unwrap();
                if framed_body {
                    // Well-framed garbage bodies.
                    let _ = s.write_all(&(bytes.len() as u32).to_be_bytes()).await;
                }
                let _ = s.write_all(&bytes).await;
                let _ = s.shutdown().await;
            });
            let r = rt.block_on(h).unwrap();
            proptest::prop_assert!(r.is_err());
            proptest::prop_assert_eq!(sec.writes.load(Ordering::SeqCst), 0);
        }
    }
}
