//! The connection to Corosync (cluster.toml `[membership] backend =
//! "corosync"`): a thread of its own that joins hbd's CPG group, tracks
//! votequorum, and passes what it hears to the daemon loop as
//! [`CpgInput`]s; the loop's messages for the group go the other way.
//!
//! libcpg and libvotequorum are driven from this one thread (their
//! callbacks are plain functions, called from `dispatch` on the thread that
//! calls it): it polls their descriptors and a wake-up pipe. When Corosync
//! is not running, or stops, the loop hears `Disconnected` (no quorum) and
//! the thread tries again every second. Corosync's IPC is per network
//! namespace, so a lab node's hbd reaches its own node's corosync.

use crate::groups::EngineQuorum;
use crate::membership::cpg::CpgInput;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use rust_corosync::{cpg, votequorum, CsError, DispatchFlags, NodeId, TrackFlags};
use std::cell::RefCell;
use std::collections::VecDeque;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::mpsc;
use std::time::Duration;
use tokio::sync::mpsc as tmpsc;

/// How many messages wait for Corosync's flow control at most; more means
/// Corosync has not taken any for long: the oldest are dropped.
const PENDING_MAX: usize = 4096;
/// Between two connection attempts.
const RETRY: Duration = Duration::from_secs(1);

enum Outgoing {
    Send(Vec<u8>),
    Leave,
}

/// The loop's handle on the thread.
pub struct CorosyncLink {
    out: mpsc::Sender<Outgoing>,
    wake: OwnedFd,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl CorosyncLink {
    /// Starts the thread for CPG group `group`; what it hears goes to `tx`.
    /// `ids`: corosync.conf's nodeids (whose votequorum state makes the
    /// ring passed on with the quorum).
    pub fn start(
        group: String,
        ids: Vec<u32>,
        tx: tmpsc::Sender<CpgInput>,
    ) -> std::io::Result<CorosyncLink> {
        let (out, out_rx) = mpsc::channel();
        let (wake_rd, wake) =
            nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC | nix::fcntl::OFlag::O_NONBLOCK)
                .map_err(std::io::Error::from)?;
        let thread = std::thread::Builder::new()
            .name("hbd-corosync".into())
            .spawn(move || run(&group, &ids, &tx, &out_rx, &wake_rd))?;
        Ok(CorosyncLink {
            out,
            wake,
            thread: Some(thread),
        })
    }

    fn poke(&self) {
        let _ = nix::unistd::write(&self.wake, &[1]);
    }

    /// Multicasts `bytes` to the group (agreed order).
    pub fn send(&self, bytes: Vec<u8>) {
        if self.out.send(Outgoing::Send(bytes)).is_ok() {
            self.poke();
        }
    }

    /// Sends what is queued, leaves the group and disconnects; waits for
    /// the thread at most `wait`.
    pub fn leave(&mut self, wait: Duration) {
        if self.out.send(Outgoing::Leave).is_ok() {
            self.poke();
        }
        let deadline = std::time::Instant::now() + wait;
        while self.thread.as_ref().is_some_and(|t| !t.is_finished())
            && std::time::Instant::now() < deadline
        {
            std::thread::sleep(Duration::from_millis(10));
        }
        if self.thread.as_ref().is_some_and(|t| t.is_finished()) {
            if let Some(t) = self.thread.take() {
                let _ = t.join();
            }
        }
    }
}

/// What the callbacks need, on the thread that dispatches.
struct Sink {
    tx: tmpsc::Sender<CpgInput>,
    local: u32,
    vq: Option<votequorum::Handle>,
    /// corosync.conf's nodeids.
    ids: Vec<u32>,
}

thread_local! {
    static SINK: RefCell<Option<Sink>> = const { RefCell::new(None) };
}

fn emit(input: CpgInput) {
    SINK.with(|s| {
        if let Some(s) = s.borrow().as_ref() {
            // The loop is gone only when hbd exits.
            let _ = s.tx.blocking_send(input);
        }
    });
}

fn on_deliver(_h: &cpg::Handle, _group: String, nodeid: NodeId, pid: u32, msg: &[u8], len: usize) {
    let len = len.min(msg.len());
    emit(CpgInput::Message {
        nodeid: u32::from(nodeid),
        pid,
        bytes: msg[..len].to_vec(),
    });
}

fn on_confchg(
    _h: &cpg::Handle,
    _group: &str,
    members: Vec<cpg::Address>,
    left: Vec<cpg::Address>,
    joined: Vec<cpg::Address>,
) {
    let pair = |a: &cpg::Address| (u32::from(a.nodeid), a.pid);
    emit(CpgInput::Confchg {
        members: members.iter().map(pair).collect(),
        left: left
            .iter()
            .map(|a| {
                (
                    u32::from(a.nodeid),
                    a.pid,
                    matches!(a.reason, cpg::Reason::Leave),
                )
            })
            .collect(),
        joined: joined.iter().map(pair).collect(),
    });
}

/// votequorum's view now, from this node, and the ring: the configured
/// nodes votequorum sees as members. `quorate`: the quorum notification's
/// own word when there is one; `votequorum_getinfo`'s flag is what the
/// last completed sync decided (during a sync it is stale).
fn quorum_now(quorate: Option<bool>, members: Option<Vec<u32>>) -> Option<CpgInput> {
    SINK.with(|s| {
        let s = s.borrow();
        let s = s.as_ref()?;
        let vq = s.vq.as_ref()?;
        let info = votequorum::get_info(vq, NodeId::from(s.local)).ok()?;
        let flags = info.flags;
        let device = if flags.contains(votequorum::NodeInfoFlags::VOTEQUORUM_INFO_QDEVICE_CAST_VOTE)
        {
            info.qdevice_votes
        } else {
            0
        };
        let ring: Vec<u32> = match members {
            Some(m) => m,
            None => s
                .ids
                .iter()
                .copied()
                .filter(|&id| {
                    votequorum::get_info(vq, NodeId::from(id))
                        .is_ok_and(|i| matches!(i.node_state, votequorum::NodeState::Member))
                })
                .collect(),
        };
        Some(CpgInput::Quorum {
            quorum: EngineQuorum {
                quorate: quorate.unwrap_or_else(|| {
                    flags.contains(votequorum::NodeInfoFlags::VOTEQUORUM_INFO_QUORATE)
                }),
                votes: u32::try_from(ring.len()).unwrap_or(u32::MAX) * info.node_votes.max(1)
                    + device,
                needed: info.quorum,
                expected: info.node_expected_votes.max(info.highest_expected),
                settling: false,
                syncing: false,
            },
            ring,
        })
    })
}

/// The members of a quorum notification's node list. rust-corosync 3.2
/// keeps `Node`'s fields private; its Debug form is `nodeid: N, state:
/// Member`.
fn members_of(nodes: &[votequorum::Node]) -> Vec<u32> {
    nodes
        .iter()
        .filter_map(|n| {
            let d = format!("{n:?}");
            let id = d
                .strip_prefix("nodeid: ")?
                .split(',')
                .next()?
                .trim()
                .parse()
                .ok()?;
            d.ends_with("state: Member").then_some(id)
        })
        .filter(|&id| id != 0)
        .collect()
}

/// The end of votequorum's sync: the quorum it decided, with the members
/// it decided it for (getinfo may not list a node that just joined yet:
/// the campaign's witness_loss heal fenced the peer it still held dead).
fn on_quorum(_h: &votequorum::Handle, _ctx: u64, quorate: bool, nodes: Vec<votequorum::Node>) {
    if let Some(q) = quorum_now(Some(quorate), Some(members_of(&nodes))) {
        emit(q);
    }
}

/// The start of votequorum's sync on a new ring: the quorum is being
/// decided again (with a quorum device this can take its whole
/// sync_timeout); what getinfo says now is the previous ring's.
fn on_nodelist(_h: &votequorum::Handle, _ctx: u64, _ring: votequorum::RingId, nodes: Vec<NodeId>) {
    emit(CpgInput::Sync {
        ring: nodes.into_iter().map(u32::from).collect(),
    });
}

enum End {
    /// hbd leaves: the thread ends.
    Leave,
    /// The connection failed: try again.
    Lost(String),
}

fn cs(what: &str, e: CsError) -> String {
    format!("{what}: {e}")
}

fn run(
    group: &str,
    ids: &[u32],
    tx: &tmpsc::Sender<CpgInput>,
    out: &mpsc::Receiver<Outgoing>,
    wake: &OwnedFd,
) {
    let mut reported: Option<String> = None;
    loop {
        let end = match connect(group, ids, tx) {
            Ok((cpg_h, vq_h)) => {
                reported = None;
                tracing::info!(group, "joined the CPG group of corosync");
                let end = serve(group, &cpg_h, &vq_h, out, wake);
                if matches!(end, End::Leave) {
                    let _ = cpg::leave(&cpg_h, group);
                }
                SINK.with(|s| *s.borrow_mut() = None);
                let _ = votequorum::finalize(&vq_h);
                let _ = cpg::finalize(&cpg_h);
                end
            }
            Err(why) => End::Lost(why),
        };
        match end {
            End::Leave => return,
            End::Lost(why) => {
                if reported.as_deref() != Some(why.as_str()) {
                    tracing::error!(reason = %why, "no connection to corosync: no quorum, trying again every second");
                    let _ = tx.blocking_send(CpgInput::Disconnected { why: why.clone() });
                    reported = Some(why);
                }
            }
        }
        // Wait a second, but leave at once when asked.
        let deadline = std::time::Instant::now() + RETRY;
        while let Some(left) = deadline.checked_duration_since(std::time::Instant::now()) {
            let mut fds = [PollFd::new(wake.as_fd(), PollFlags::POLLIN)];
            let ms = u16::try_from(left.as_millis()).unwrap_or(u16::MAX);
            let _ = poll(&mut fds, PollTimeout::from(ms));
            drain(wake);
            loop {
                match out.try_recv() {
                    Ok(Outgoing::Send(_)) => {}
                    Ok(Outgoing::Leave) | Err(mpsc::TryRecvError::Disconnected) => return,
                    Err(mpsc::TryRecvError::Empty) => break,
                }
            }
            if left.is_zero() {
                break;
            }
        }
    }
}

fn drain(fd: &OwnedFd) {
    let mut buf = [0u8; 64];
    while matches!(nix::unistd::read(fd, &mut buf), Ok(n) if n > 0) {}
}

fn connect(
    group: &str,
    ids: &[u32],
    tx: &tmpsc::Sender<CpgInput>,
) -> Result<(cpg::Handle, votequorum::Handle), String> {
    let model = cpg::ModelData::ModelV1(cpg::Model1Data {
        flags: cpg::Model1Flags::None,
        deliver_fn: Some(on_deliver),
        confchg_fn: Some(on_confchg),
        totem_confchg_fn: None,
    });
    let cpg_h = cpg::initialize(&model, 0).map_err(|e| cs("cpg_initialize", e))?;
    let local = u32::from(cpg::local_get(&cpg_h).map_err(|e| cs("cpg_local_get", e))?);
    let vq_h = votequorum::initialize(&votequorum::Callbacks {
        quorum_notification_fn: Some(on_quorum),
        nodelist_notification_fn: Some(on_nodelist),
        // Expected votes come with the next quorum notification; read with
        // getinfo here they could be a sync's stale state.
        expectedvotes_notification_fn: None,
    })
    .map_err(|e| cs("votequorum_initialize", e))?;
    SINK.with(|s| {
        *s.borrow_mut() = Some(Sink {
            tx: tx.clone(),
            local,
            vq: Some(vq_h.clone()),
            ids: ids.to_vec(),
        })
    });
    // Connected before the join's configuration change is dispatched.
    let _ = tx.blocking_send(CpgInput::Connected { local });
    if let Err(e) = cpg::join(&cpg_h, group) {
        SINK.with(|s| *s.borrow_mut() = None);
        return Err(cs("cpg_join", e));
    }
    votequorum::trackstart(&vq_h, 0, TrackFlags::Changes)
        .map_err(|e| cs("votequorum_trackstart", e))?;
    // The state at connection (the last completed sync's).
    if let Some(q) = quorum_now(None, None) {
        emit(q);
    }
    Ok((cpg_h, vq_h))
}

fn serve(
    group: &str,
    cpg_h: &cpg::Handle,
    vq_h: &votequorum::Handle,
    out: &mpsc::Receiver<Outgoing>,
    wake: &OwnedFd,
) -> End {
    let cpg_fd = match cpg::fd_get(cpg_h) {
        Ok(fd) => fd,
        Err(e) => return End::Lost(cs("cpg_fd_get", e)),
    };
    let vq_fd = match votequorum::fd_get(vq_h) {
        Ok(fd) => fd,
        Err(e) => return End::Lost(cs("votequorum_fd_get", e)),
    };
    let mut pending: VecDeque<Vec<u8>> = VecDeque::new();
    let mut leaving = false;
    loop {
        // SAFETY: both descriptors belong to the library handles, which
        // outlive this loop.
        let (cfd, vfd) = unsafe {
            (
                BorrowedFd::borrow_raw(cpg_fd),
                BorrowedFd::borrow_raw(vq_fd),
            )
        };
        let mut fds = [
            PollFd::new(cfd, PollFlags::POLLIN),
            PollFd::new(vfd, PollFlags::POLLIN),
            PollFd::new(wake.as_fd(), PollFlags::POLLIN),
        ];
        // Flow control: try the queue again soon.
        let timeout = if pending.is_empty() { 1000u16 } else { 10 };
        if let Err(e) = poll(&mut fds, PollTimeout::from(timeout)) {
            if e != nix::errno::Errno::EINTR {
                return End::Lost(format!("poll: {e}"));
            }
        }
        let ready = |f: &PollFd| {
            f.revents().is_some_and(|r| {
                !(r & (PollFlags::POLLIN | PollFlags::POLLHUP | PollFlags::POLLERR)).is_empty()
            })
        };
        let (c, v, w) = (ready(&fds[0]), ready(&fds[1]), ready(&fds[2]));
        if c {
            if let Err(e) = cpg::dispatch(cpg_h, DispatchFlags::All) {
                return End::Lost(cs("cpg_dispatch", e));
            }
        }
        if v {
            if let Err(e) = votequorum::dispatch(vq_h, DispatchFlags::All) {
                return End::Lost(cs("votequorum_dispatch", e));
            }
        }
        if w {
            drain(wake);
        }
        loop {
            match out.try_recv() {
                Ok(Outgoing::Send(bytes)) => {
                    if pending.len() >= PENDING_MAX {
                        pending.pop_front();
                        tracing::warn!(group, "corosync takes no messages: the oldest was dropped");
                    }
                    pending.push_back(bytes);
                }
                Ok(Outgoing::Leave) | Err(mpsc::TryRecvError::Disconnected) => leaving = true,
                Err(mpsc::TryRecvError::Empty) => break,
            }
        }
        while let Some(bytes) = pending.front() {
            match cpg::mcast_joined(cpg_h, cpg::Guarantee::TypeAgreed, bytes) {
                Ok(()) => {
                    pending.pop_front();
                }
                Err(CsError::CsErrTryAgain) => break,
                Err(e) => return End::Lost(cs("cpg_mcast_joined", e)),
            }
        }
        if leaving && pending.is_empty() {
            return End::Leave;
        }
    }
}
