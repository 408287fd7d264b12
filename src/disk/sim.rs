//! Deterministic simulation of the replicated disk: two nodes, each the
//! connection machine ([`Resource`]) with its bitmap and activity log
//! ([`Bitmap`], [`ActivityLog`]) over a simulated block store, joined by a
//! simulated link, driven by random application writes and flushes,
//! promotions and demotions, crashes of either node, power cuts of both,
//! partitions, online verify (on either or both nodes), bit rot behind a
//! device's back, local write errors, a hung peer disk (its pings still
//! flow), and split brains with their resolution by an operator. The
//! decisions are the real ones: [`Resource`] (state.rs), `resync.rs`'s
//! Target/Source/after_verify, `datapath.rs`'s on_io_error and KoTracker.
//!
//! The store of each node keeps a durable map and a page cache: a crash or
//! a power cut loses the page cache. Block contents are write versions
//! (globally increasing), so "newer" is a comparison and a lost
//! acknowledged write is a smaller number than the one acknowledged.
//!
//! The data path follows `device.rs`: protocol C (a write completes when
//! the local write is done and the peer acknowledged it, or when the link
//! is gone and the block is marked out of sync), the transfer log (writes
//! since the last barrier are marked out of sync when the link breaks),
//! the activity log (extents hot before a write, written as a transaction;
//! a crashed Primary's hot extents become out of sync), the bitmap
//! exchange at connect, bitmap resync by the target's requests with acks
//! after a flush, and online verify.
//!
//! Invariants, at every step:
//! - **no Primary is ever SyncTarget** (nor waits for a bitmap as target);
//! - **no promotion of data that is not UpToDate** without `--force`, and
//!   a node promoted after its peer crashed holds every write it
//!   acknowledged to that peer;
//! - **no request to the peer waits longer than timeout × ko-count** (plus
//!   delivery): a hung peer disk never freezes the Primary;
//!
//! and at every *sync point* (both nodes up, Connected, UpToDate, nothing
//! out of sync, nothing in flight):
//! - **no silent divergence**: both nodes hold the same data;
//! - **no lost acknowledged write**: every block holds at least the newest
//!   version acknowledged to the application (after a power cut of both
//!   nodes: the newest one covered by a completed flush), unless an
//!   operator discarded it in a split-brain resolution, which is counted.
//!
//! With resource-level fencing in the model (drbd.conf `fencing`, a third
//! of the seeds each: off, resource-only, resource-and-stonith), a
//! partition cuts the replication link only or the heartbeat media too;
//! the fence-peer handler is the built-in outdater, which reaches the
//! peer only over the heartbeat media (answers 4, 6 or 3 from the peer,
//! 5 when the peer is down or cut off). Then also:
//! - **an Outdated disk is never promoted** without `--force` (a node the
//!   handler outdated never serves stale data after its peer died);
//! - **resource-and-stonith loses no acknowledged write to a failover**:
//!   unless the heartbeat media were cut too since the last sync point, a
//!   promoted node holds every acknowledged write (a lone Primary
//!   acknowledges nothing its peer lacks until the handler fenced it).
//!
//! At the end of every schedule the faults stop, the operator resolves any
//! split brain, and the cluster must reach a sync point.
//!
//! A failing seed is printed; `HBD_SIM_SEED=N cargo test --lib disk::sim`
//! replays it (`HBD_SIM_LOG=N`: the last N events, 400 by default) (`HBD_SIM_SEEDS=N` runs seeds 0..N, 300 by default).

use super::conf::OnIoError;
use super::datapath::{self, IoSite};
use super::meta::{ActivityLog, Bitmap, MetaError, AL_EXTENT, BM_BLOCK};
use super::resync::{self, Geometry, ResyncFrom, TargetStep};
use super::state::{
    Attached, ConnState, DiskState, Event, Input, Msg, Output, Refused, Resource, ResourceConfig,
    Role,
};
use super::uuid::Uuids;
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::time::Duration;

/// Activity-log extents of the simulated device.
const EXTENTS: u64 = 4;
/// Bits of the simulated device.
const BITS: u64 = EXTENTS * AL_EXTENT / BM_BLOCK;
/// Blocks per extent that the application writes (spread over the extent).
const HOT: u64 = 5;
/// A small activity log, so that extents are evicted.
const AL_CAPACITY: usize = 2;
/// Resync requests in flight (device.rs RS_IN_FLIGHT).
const RS_WINDOW: usize = 4;
/// Writes the application keeps in flight.
const APP_DEPTH: usize = 3;
/// drbd.conf `timeout` and `ko-count` of the simulated nodes.
const KO_TIMEOUT: Duration = Duration::from_millis(30);
const KO_COUNT: u32 = 3;
/// A write may wait this much longer than timeout × ko-count (delivery,
/// noticing a broken link).
const KO_SLACK: u64 = 120;
/// Block contents with this bit set are garbage (bit rot).
const GARBAGE: u64 = 1 << 63;

/// The blocks the application uses.
fn app_blocks() -> impl Iterator<Item = u64> {
    (0..EXTENTS).flat_map(|e| (0..HOT).map(move |k| e * (AL_EXTENT / BM_BLOCK) + k * 97))
}

fn off(b: u64) -> u64 {
    b * BM_BLOCK
}

/// The shared splitmix64, mixed so that seed 0 is as good as any.
struct Rng(crate::rng::SplitMix64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(crate::rng::SplitMix64::new(seed ^ 0x5bd1_e995_7f4a_7c15))
    }
    fn below(&mut self, n: u64) -> u64 {
        self.0.below(n)
    }
    fn chance(&mut self, per_mille: u64) -> bool {
        self.0.per_mille(per_mille)
    }
}

// ------------------------------------------------------------------ store

/// A block store: durable contents and a page cache lost on power loss.
#[derive(Debug, Clone, Default)]
struct Store {
    durable: BTreeMap<u64, u64>,
    cache: BTreeMap<u64, u64>,
    /// Blocks whose writes fail (EIO).
    failing: BTreeSet<u64>,
    /// Writes hang (a hung disk): the device process applies nothing, in
    /// order, until released; its pings still flow.
    stalled: bool,
}

impl Store {
    fn read(&self, b: u64) -> u64 {
        self.cache
            .get(&b)
            .or_else(|| self.durable.get(&b))
            .copied()
            .unwrap_or(0)
    }
    fn write(&mut self, b: u64, v: u64) -> Result<(), ()> {
        if self.failing.contains(&b) {
            return Err(());
        }
        self.cache.insert(b, v);
        Ok(())
    }
    fn flush(&mut self) {
        let c = std::mem::take(&mut self.cache);
        self.durable.extend(c);
    }
    fn power_loss(&mut self) {
        self.cache.clear();
    }
}

/// The metadata on stable storage (meta.rs: superblock, bitmap, AL ring).
#[derive(Debug, Clone)]
struct MetaDisk {
    uuids: Uuids,
    consistent: bool,
    was_up_to_date: bool,
    crashed_primary: bool,
    peer_outdated: bool,
    bitmap: Bitmap,
    /// Extents named by the newest AL transaction.
    al: BTreeSet<u64>,
}

// ------------------------------------------------------------------ link

#[derive(Debug, Clone)]
enum Frame {
    Ctrl(Msg),
    Bitmap(Bitmap),
    Write {
        seq: u64,
        b: u64,
        v: u64,
    },
    Ack {
        seq: u64,
    },
    /// The peer could not write it (DRBD's P_NEG_ACK).
    NegAck {
        seq: u64,
    },
    Flush {
        seq: u64,
    },
    FlushAck {
        seq: u64,
    },
    RsReq {
        offset: u64,
        len: u64,
    },
    RsData {
        offset: u64,
        values: Vec<u64>,
    },
    RsAck {
        offset: u64,
        len: u64,
    },
    RsDone,
    OvReq {
        b: u64,
        v: u64,
    },
    OvReply {
        b: u64,
        differs: bool,
    },
}

/// One established connection: in-order queues both ways.
#[derive(Debug)]
struct Conn {
    epoch: u64,
    /// `q[i]`: frames on their way to node `i` (deliver time, frame).
    q: [VecDeque<(u64, Frame)>; 2],
    /// Broken: frames are dropped; node `i` notices at `lost_at[i]`.
    broken: bool,
    lost_at: [Option<u64>; 2],
}

// ------------------------------------------------------------------ node

#[derive(Debug, Clone)]
enum Pending {
    Write { b: u64, v: u64 },
    Flush { acked_before: Vec<(u64, u64)> },
}

/// What lives in a device process's memory.
struct Live {
    sm: Resource,
    bitmap: Bitmap,
    al: ActivityLog,
    /// The epoch of the connection this node is attached to.
    epoch: Option<u64>,
    next_seq: u64,
    pending: BTreeMap<u64, Pending>,
    /// Writes `(seq, block)` not yet covered by a barrier ack.
    transfer_log: Vec<(u64, u64)>,
    peer_bitmap: Option<Bitmap>,
    exchanging: bool,
    /// timeout × ko-count (datapath.rs) over the requests sent to the peer,
    /// and when each was sent (for the invariant).
    ko: datapath::KoTracker,
    sent_at: BTreeMap<u64, u64>,
    /// Frames received while the disk hangs, applied once it is released;
    /// also frames that must see every earlier write applied
    /// (device/apply.rs: anything but writes, barriers and answers),
    /// received while writes are still being applied.
    held: VecDeque<Frame>,
    /// The receiver's replicated writes and barriers in flight
    /// (datapath.rs ApplyOrder, device/apply.rs): registered in seq order,
    /// started as the order allows, finished in random order.
    apply: datapath::ApplyOrder,
    /// The registered writes' blocks and versions, by seq.
    apply_data: BTreeMap<u64, (u64, u64)>,
    /// Started, not finished.
    apply_running: Vec<u64>,
    /// The running resync's machines (resync.rs).
    target: Option<resync::Target>,
    source: Option<resync::Source>,
    /// Verify: blocks still to check, answers awaited, differences found.
    verify: Option<(VecDeque<u64>, usize, u64)>,
    /// Connected to the peer since this process started (wfc-timeout met).
    met_peer: bool,
    /// Writeback: the flush sent to the peer and the AL candidates it covers.
    cooling: Option<(u64, u64, Vec<u64>)>,
    /// Writes done locally whose acknowledgement waits for frozen I/O to
    /// thaw (resource-and-stonith).
    held_acks: Vec<(u64, u64)>,
    /// The fence-peer handler answers at this time.
    fence_at: Option<u64>,
}

struct Node {
    store: Store,
    meta: MetaDisk,
    live: Option<Live>,
}

impl Node {
    fn new() -> Node {
        let u = Uuids {
            current: 0x1000,
            bitmap: 0,
            history: [0, 0],
        };
        Node {
            store: Store::default(),
            meta: MetaDisk {
                uuids: u,
                consistent: true,
                was_up_to_date: true,
                crashed_primary: false,
                peer_outdated: false,
                bitmap: Bitmap::new(BITS),
                al: BTreeSet::new(),
            },
            live: None,
        }
    }

    /// Start the device process: attach as `Local::open` does.
    fn boot(&mut self, id: usize, seed: u64, fencing: Fencing) {
        let mut bitmap = self.meta.bitmap.clone();
        for &e in &self.meta.al {
            bitmap.set_range(e * AL_EXTENT, AL_EXTENT);
        }
        self.meta.bitmap = bitmap.clone();
        self.meta.al.clear();
        let disk = if !self.meta.consistent {
            DiskState::Inconsistent
        } else if self.meta.was_up_to_date {
            if fencing == Fencing::Off || self.meta.peer_outdated {
                DiskState::UpToDate
            } else {
                DiskState::Consistent
            }
        } else {
            DiskState::Outdated
        };
        let attached = Attached {
            uuids: self.meta.uuids,
            disk,
            bits_set: bitmap.count(),
            crashed_primary: self.meta.crashed_primary,
            peer_outdated: self.meta.peer_outdated,
        };
        let cfg = ResourceConfig {
            i_am_lower_id: id == 0,
            seed,
            fencing: fencing != Fencing::Off,
            stonith: fencing == Fencing::Stonith,
            ..ResourceConfig::default()
        };
        let mut sm = Resource::new(cfg, Some(attached));
        let _ = sm.handle(Input::Connect);
        sm.take_outputs();
        self.live = Some(Live {
            sm,
            bitmap,
            al: ActivityLog::new(AL_CAPACITY, 1).expect("capacity"),
            epoch: None,
            next_seq: 0,
            pending: BTreeMap::new(),
            transfer_log: Vec::new(),
            peer_bitmap: None,
            exchanging: false,
            ko: datapath::KoTracker::new(KO_TIMEOUT, KO_COUNT),
            sent_at: BTreeMap::new(),
            held: VecDeque::new(),
            apply: datapath::ApplyOrder::default(),
            apply_data: BTreeMap::new(),
            apply_running: Vec::new(),
            target: None,
            source: None,
            verify: None,
            met_peer: false,
            cooling: None,
            held_acks: Vec::new(),
            fence_at: None,
        });
    }
}

// ------------------------------------------------------------------ oracle

/// What the application was promised.
#[derive(Debug, Default)]
struct Oracle {
    /// Newest acknowledged version per block.
    acked: BTreeMap<u64, u64>,
    /// Newest version per block covered by a completed flush.
    flushed: BTreeMap<u64, u64>,
    /// Versions of writes in flight per block (the app never overlaps).
    inflight: BTreeSet<u64>,
    /// Acknowledged writes an operator discarded (split-brain resolution).
    discarded: u64,
    /// Versions a node must hold if it is promoted before it hears from
    /// its crashed peer again (it acknowledged them by protocol C).
    promise: [BTreeMap<u64, u64>; 2],
}

// ------------------------------------------------------------------ sim

/// Planted bugs for the mutation checks: each one an old behaviour the
/// findings of issue 12 describe; the simulation must catch every one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Bug {
    #[default]
    None,
    /// Finding 3: the node that ran verify resyncs from itself, also onto a
    /// Primary, and RsData is written whatever the receiver's state.
    VerifyFromHere,
    /// Finding 4: a local write error after the peer acked sets no bit.
    NoBitOnLocalError,
    /// Found by this simulation: the source's RsAck clears a bit that a
    /// newer local failure set after the resync data was read.
    RsAckClearsNewer,
    /// Finding 2: a node that boots alone is promoted without waiting for
    /// its peer (wfc-timeout taken as 60 s, StandAlone taken as settled).
    NoWfc,
    /// Finding 6: no timeout × ko-count: a hung peer disk freezes the
    /// Primary.
    NoKoCount,
    /// Finding 4 on the Secondary: a failed write is acknowledged as done.
    AckLocalError,
    /// Finding 5: an extent leaves the activity log after a local flush only.
    CoolOnLocalFlush,
    /// Finding 5, the other way out: a write evicts a hot extent whose
    /// writes the peer has not flushed.
    EvictUnflushed,
    /// Issue 13: resource-and-stonith that does not hold writes (acks
    /// what the peer lacks while the handler runs, as resource-only).
    AckWhileFrozen,
    /// Issue 15: a barrier is flushed and acknowledged at once, before the
    /// earlier writes still being applied landed.
    FlushEarly,
}

/// drbd.conf `fencing` of the simulated pair.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fencing {
    Off,
    ResourceOnly,
    Stonith,
}

struct Sim {
    rng: Rng,
    /// The receiver's completion order (its own stream: the schedules'
    /// draws stay those of the seeds before concurrent apply).
    apply_rng: Rng,
    fencing: Fencing,
    /// The partition cuts the heartbeat media too (the built-in outdater
    /// cannot reach the peer).
    hb_cut: bool,
    /// A full partition happened since the last sync point.
    full_cut_seen: bool,
    now: u64,
    nodes: [Node; 2],
    conn: Option<Conn>,
    epochs: u64,
    cut: bool,
    next_version: u64,
    oracle: Oracle,
    bug: Bug,
    /// The running resync was started by verify.
    verify_resync: bool,
    /// A partitioned Primary is never taken for dead (no two Primaries).
    fenced: bool,
    /// Split-brain resolutions since the nodes last connected.
    resolutions: u32,
    log: VecDeque<String>,
    steps: u64,
    stats: Stats,
}

#[derive(Debug, Default, Clone, Copy)]
pub struct Stats {
    pub steps: u64,
    pub writes_acked: u64,
    pub sync_points: u64,
    pub split_brains: u64,
    pub discarded: u64,
    pub resyncs: u64,
    pub power_cuts: u64,
    pub crashes: u64,
    pub verifies: u64,
    pub io_errors: u64,
    pub create_md: u64,
    pub ko_drops: u64,
    /// Fence-peer handler runs, and of those the peer outdated (code 4).
    pub fence_runs: u64,
    pub peers_outdated: u64,
    /// Promotions refused because the local disk was Outdated.
    pub outdated_refusals: u64,
}

impl Sim {
    fn new(seed: u64, bug: Bug) -> Sim {
        let fencing = match if std::env::var("HBD_SIM_NOFENCE").is_ok() {
            0
        } else {
            seed % 3
        } {
            0 => Fencing::Off,
            1 => Fencing::ResourceOnly,
            _ => Fencing::Stonith,
        };
        let mut s = Sim {
            rng: Rng::new(seed),
            apply_rng: Rng::new(seed ^ 0xa991_e5ee_d15c_0001),
            fencing,
            hb_cut: false,
            full_cut_seen: false,
            now: 0,
            nodes: [Node::new(), Node::new()],
            conn: None,
            epochs: 0,
            cut: false,
            next_version: 1,
            oracle: Oracle::default(),
            bug,
            verify_resync: false,
            fenced: true,
            resolutions: 0,
            log: VecDeque::new(),
            steps: 0,
            stats: Stats::default(),
        };
        for i in 0..2 {
            let seed = s.rng.below(u64::MAX);
            s.nodes[i].boot(i, seed, fencing);
        }
        s
    }

    fn note(&mut self, msg: String) {
        if self.log.len() >= log_lines() {
            self.log.pop_front();
        }
        self.log.push_back(format!("t={} {msg}", self.now));
    }

    fn fail(&self, what: &str) -> ! {
        let trail: Vec<&str> = self.log.iter().map(|s| s.as_str()).collect();
        panic!("{what}\n--- last events:\n{}", trail.join("\n"));
    }

    fn up(&self, i: usize) -> bool {
        self.nodes[i].live.is_some()
    }

    fn sm(&self, i: usize) -> Option<&Resource> {
        self.nodes[i].live.as_ref().map(|l| &l.sm)
    }

    // ---- sending

    fn send(&mut self, from: usize, f: Frame) {
        let delay = 1 + self.rng.below(8);
        let now = self.now;
        if let (Frame::Write { seq, .. } | Frame::Flush { seq }, Some(l)) =
            (&f, self.nodes[from].live.as_mut())
        {
            if l.epoch.is_some() {
                l.ko.start(*seq, now);
                l.sent_at.insert(*seq, now);
            }
        }
        let Some(epoch) = self.nodes[from].live.as_ref().and_then(|l| l.epoch) else {
            return;
        };
        let Some(c) = self.conn.as_mut() else { return };
        if c.epoch != epoch || c.broken {
            return;
        }
        let q = &mut c.q[1 - from];
        let at = q.back().map_or(now + delay, |(t, _)| (*t).max(now + delay));
        q.push_back((at, f));
    }

    /// Feed an input to node `i`'s machine and carry out its outputs.
    fn input(&mut self, i: usize, inp: Input) -> Result<(), Refused> {
        let r = {
            let l = self.nodes[i].live.as_mut().expect("up");
            l.sm.handle(inp)
        };
        self.drain(i);
        r
    }

    fn drain(&mut self, i: usize) {
        loop {
            let outs = match self.nodes[i].live.as_mut() {
                Some(l) => l.sm.take_outputs(),
                None => return,
            };
            if outs.is_empty() {
                break;
            }
            for o in outs {
                match o {
                    Output::Send(m) => self.send(i, Frame::Ctrl(m)),
                    Output::PersistUuids(_) => {}
                    Output::ExchangeBitmap { full } => {
                        let l = self.nodes[i].live.as_mut().expect("up");
                        if full {
                            l.bitmap.set_all();
                        }
                        l.exchanging = true;
                        let bm = l.bitmap.clone();
                        self.send(i, Frame::Bitmap(bm));
                        self.finish_exchange(i);
                    }
                    Output::Event(e) => self.on_event(i, e),
                    Output::FencePeer => {
                        let at = self.now + 1 + self.rng.below(30);
                        self.nodes[i].live.as_mut().expect("up").fence_at = Some(at);
                    }
                }
            }
        }
        self.sync_flags(i);
    }

    /// The built-in outdater of node `i`: over the heartbeat media (cut in
    /// a full partition) the peer's device outdates itself unless Primary.
    fn fence_peer_code(&mut self, i: usize) -> u8 {
        let j = 1 - i;
        if self.hb_cut || !self.up(j) {
            return 5;
        }
        let sm = self.sm(j).expect("up");
        if sm.role() == Role::Primary {
            return 6;
        }
        if sm.conn() >= ConnState::Connected {
            // device.rs `outdate_for_peer` waits (bounded) for its side of
            // the link to break; a live link (reconnected) answers 5.
            return if self.conn.as_ref().is_some_and(|c| c.broken) {
                0
            } else {
                5
            };
        }
        match sm.disk() {
            DiskState::Outdated => 4,
            // `outdate_for_peer`: writes made without the peer (a Primary
            // that lost it started a new generation): the asker is the
            // older copy and outdates itself.
            DiskState::Consistent | DiskState::UpToDate if sm.uuids().wrote_without_peer() => 6,
            DiskState::Consistent | DiskState::UpToDate => {
                let _ = self.input(j, Input::Outdate);
                self.note(format!("n{j} outdated by its peer's fence-peer handler"));
                4
            }
            _ => 3,
        }
    }

    fn fence_peer_done(&mut self, i: usize) {
        let code = self.fence_peer_code(i);
        if code == 0 {
            // The peer has not noticed the broken link yet: ask again soon.
            let at = self.now + 1 + self.rng.below(10);
            if let Some(l) = self.nodes[i].live.as_mut() {
                l.fence_at = Some(at);
            }
            return;
        }
        self.note(format!("n{i} fence-peer handler returned {code}"));
        self.stats.fence_runs += 1;
        if code == 4 {
            self.stats.peers_outdated += 1;
        }
        if let Some(l) = self.nodes[i].live.as_mut() {
            l.fence_at = None;
        }
        let _ = self.input(i, Input::FencePeerDone { code: Some(code) });
    }

    /// Handler answers that are due, and acknowledgements thawed I/O lets go.
    fn fence_driver(&mut self, i: usize) {
        let due = self.nodes[i]
            .live
            .as_ref()
            .and_then(|l| l.fence_at)
            .is_some_and(|t| t <= self.now);
        if due {
            self.fence_peer_done(i);
        }
        let thawed = self.sm(i).is_some_and(|sm| !sm.suspended());
        if thawed {
            let held = std::mem::take(&mut self.nodes[i].live.as_mut().expect("up").held_acks);
            for (b, v) in held {
                self.complete_write(i, b, v);
            }
        }
    }

    fn on_event(&mut self, i: usize, e: Event) {
        match &e {
            Event::Conn { to, .. } => {
                if *to >= ConnState::Connected {
                    self.nodes[i].live.as_mut().expect("up").met_peer = true;
                    self.resolutions = 0;
                }
                if *to < ConnState::Connected {
                    self.verify_resync = false;
                    let l = self.nodes[i].live.as_mut().expect("up");
                    l.exchanging = false;
                    l.peer_bitmap = None;
                    l.target = None;
                    l.source = None;
                    l.verify = None;
                    l.cooling = None;
                }
                if *to == ConnState::StandAlone {
                    self.drop_link(i);
                }
            }
            Event::SplitBrain {
                recovered: None, ..
            } => self.stats.split_brains += 1,
            Event::SyncStarted { source, .. } => {
                self.stats.resyncs += 1;
                let l = self.nodes[i].live.as_mut().expect("up");
                let geo = Geometry::new(BITS * BM_BLOCK);
                if *source {
                    l.source = Some(resync::Source::new(geo));
                    l.target = None;
                } else {
                    l.target = Some(resync::Target::new(geo));
                    l.source = None;
                }
            }
            Event::SyncFinished { .. } => {
                self.verify_resync = false;
                let l = self.nodes[i].live.as_mut().expect("up");
                l.target = None;
                l.source = None;
            }
            _ => {}
        }
        self.note(format!("n{i} {e:?}"));
    }

    /// Keep the superblock in step (device.rs `Core::sync_flags`).
    fn sync_flags(&mut self, i: usize) {
        let n = &mut self.nodes[i];
        let Some(l) = n.live.as_ref() else { return };
        let (role, disk, peer_disk) = (l.sm.role(), l.sm.disk(), l.sm.peer_disk());
        let m = &mut n.meta;
        m.consistent = matches!(
            disk,
            DiskState::Outdated | DiskState::Consistent | DiskState::UpToDate
        );
        m.was_up_to_date = matches!(disk, DiskState::UpToDate | DiskState::Consistent);
        m.crashed_primary = l.sm.params().crashed_primary || role == Role::Primary;
        m.peer_outdated = peer_disk == DiskState::Outdated;
        m.uuids = l.sm.uuids();
    }

    fn finish_exchange(&mut self, i: usize) {
        let l = self.nodes[i].live.as_mut().expect("up");
        if !l.exchanging || l.peer_bitmap.is_none() {
            return;
        }
        let pb = l.peer_bitmap.take().expect("checked");
        l.exchanging = false;
        l.bitmap.merge(&pb).expect("same size");
        let bits = l.bitmap.count();
        // The merged bitmap is written before the resync starts.
        self.nodes[i].meta.bitmap = self.nodes[i].live.as_ref().expect("up").bitmap.clone();
        let _ = self.input(i, Input::BitmapExchanged { bits });
    }

    fn mark(&mut self, i: usize, b: u64) {
        let bug = self.bug == Bug::RsAckClearsNewer;
        if let Some(l) = self.nodes[i].live.as_mut() {
            if let Some(src) = l.source.as_mut().filter(|_| !bug) {
                src.note_mark(off(b), BM_BLOCK);
            }
            if l.bitmap.set_range(off(b), BM_BLOCK) > 0 {
                let n = l.bitmap.count();
                let _ = l.sm.handle(Input::BitsSet(n));
                l.sm.take_outputs();
            }
        }
    }

    /// device.rs `Core::replicating`: as the node sees it (a link that
    /// broke is only known broken once the node notices).
    fn replicating(&self, i: usize) -> bool {
        let Some(l) = self.nodes[i].live.as_ref() else {
            return false;
        };
        let pd = l.sm.peer_disk();
        matches!(
            l.sm.conn(),
            ConnState::Connected
                | ConnState::SyncSource
                | ConnState::PausedSyncS
                | ConnState::SyncTarget
                | ConnState::PausedSyncT
        ) && pd >= DiskState::Inconsistent
            && pd != DiskState::DUnknown
            && l.epoch.is_some()
    }

    fn frozen(&self, i: usize) -> bool {
        self.sm(i).is_some_and(|sm| {
            matches!(
                sm.conn(),
                ConnState::WFReportParams | ConnState::WFBitMapS | ConnState::WFBitMapT
            )
        })
    }

    // ---- the link

    /// Node `i` drops the connection on purpose (disconnect, a failed
    /// handshake): what it already queued still reaches the peer (device.rs
    /// `run_link` sends the queued control frames before it closes), so the
    /// peer sees its last state and detects a split brain itself.
    fn drop_link(&mut self, i: usize) {
        let mine = self.nodes[i].live.as_ref().and_then(|l| l.epoch);
        if let Some(c) = self.conn.as_mut().filter(|c| Some(c.epoch) == mine) {
            if !c.broken {
                c.broken = true;
                c.q[i].clear();
                let last = c.q[1 - i].back().map_or(self.now, |(t, _)| *t);
                c.lost_at[1 - i] = Some(last + 1 + self.rng.below(10));
            }
            c.lost_at[i] = Some(self.now);
        }
        self.teardown(i);
    }

    /// The link is gone for node `i` (device.rs `run_link` exit).
    fn teardown(&mut self, i: usize) {
        let Some(l) = self.nodes[i].live.as_mut() else {
            return;
        };
        if l.epoch.take().is_none() {
            return;
        }
        l.ko = datapath::KoTracker::new(KO_TIMEOUT, KO_COUNT);
        l.sent_at.clear();
        l.held.clear();
        // device.rs waits for the writes being applied before the link is
        // torn down: they land (unless the disk hangs: then never, as the
        // held frames); the waiting ones are dropped with the link.
        let running = std::mem::take(&mut l.apply_running);
        let data = std::mem::take(&mut l.apply_data);
        l.apply = datapath::ApplyOrder::default();
        if !self.nodes[i].store.stalled {
            for seq in running {
                match data.get(&seq) {
                    Some(&(b, v)) => {
                        if self.nodes[i].store.write(b, v).is_err() {
                            self.local_io_error(i);
                            self.mark(i, b);
                        }
                    }
                    None => self.nodes[i].store.flush(),
                }
            }
        }
        let Some(l) = self.nodes[i].live.as_mut() else {
            return;
        };
        let tl = std::mem::take(&mut l.transfer_log);
        let pending = std::mem::take(&mut l.pending);
        l.cooling = None;
        for (_, b) in tl {
            self.mark(i, b);
        }
        for p in pending.values() {
            if let Pending::Write { b, .. } = p {
                self.mark(i, *b);
            }
        }
        // device.rs `link_lost`: the machine learns of the loss before the
        // writers are answered, so under resource-and-stonith they are held.
        if self
            .sm(i)
            .is_some_and(|sm| sm.conn() > ConnState::WFConnection)
        {
            let _ = self.input(i, Input::TransportLost);
        }
        for p in pending.into_values() {
            match p {
                Pending::Write { b, v } => {
                    if self.sm(i).is_some_and(|sm| sm.suspended())
                        && self.bug != Bug::AckWhileFrozen
                    {
                        let l = self.nodes[i].live.as_mut().expect("up");
                        l.held_acks.push((b, v));
                    } else {
                        self.complete_write(i, b, v);
                    }
                }
                Pending::Flush { acked_before } => self.complete_flush(acked_before),
            }
        }
    }

    fn try_connect(&mut self) {
        if self.cut || !self.up(0) || !self.up(1) {
            return;
        }
        if let Some(c) = &self.conn {
            if !c.broken || c.lost_at.iter().any(|t| t.is_some_and(|t| t > self.now)) {
                return;
            }
        }
        let ready = (0..2).all(|i| {
            self.nodes[i]
                .live
                .as_ref()
                .is_some_and(|l| l.sm.conn() == ConnState::WFConnection && l.epoch.is_none())
        });
        if !ready {
            return;
        }
        self.epochs += 1;
        let epoch = self.epochs;
        self.conn = Some(Conn {
            epoch,
            q: [VecDeque::new(), VecDeque::new()],
            broken: false,
            lost_at: [None, None],
        });
        self.note(format!("connect epoch {epoch}"));
        for i in 0..2 {
            self.nodes[i].live.as_mut().expect("up").epoch = Some(epoch);
        }
        for i in 0..2 {
            self.oracle.promise[i].clear();
            let _ = self.input(i, Input::TransportUp);
        }
    }

    /// Deliver every frame due by now, and notice broken links.
    fn deliver(&mut self) {
        for i in 0..2 {
            let lost = self
                .conn
                .as_ref()
                .is_some_and(|c| c.broken && c.lost_at[i].is_some_and(|t| t <= self.now));
            if lost {
                self.teardown(i);
            }
        }
        loop {
            let next = self.conn.as_ref().and_then(|c| {
                (0..2)
                    .filter_map(|i| c.q[i].front().map(|(t, _)| (*t, i)))
                    .filter(|(t, _)| *t <= self.now)
                    .min()
            });
            let Some((_, to)) = next else { break };
            let f = self
                .conn
                .as_mut()
                .and_then(|c| c.q[to].pop_front())
                .map(|(_, f)| f)
                .expect("checked");
            let stalled = self.nodes[to].store.stalled;
            if let Some(l) = self.nodes[to].live.as_mut().filter(|l| l.epoch.is_some()) {
                let data = matches!(
                    f,
                    Frame::Write { .. } | Frame::Flush { .. } | Frame::RsData { .. }
                );
                if !l.held.is_empty() || (stalled && data) || (drains(&f) && !l.apply.is_empty()) {
                    l.held.push_back(f);
                } else {
                    self.receive(to, f);
                }
            }
        }
    }

    /// A frame for node `i` (device/apply.rs): writes and barriers are
    /// registered with the apply order, the rest handled at once.
    fn receive(&mut self, i: usize, f: Frame) {
        let l = self.nodes[i].live.as_mut().expect("up");
        let started = match f {
            Frame::Write { seq, b, v } => {
                l.apply_data.insert(seq, (b, v));
                l.apply.write(seq, off(b), BM_BLOCK)
            }
            Frame::Flush { seq } if self.bug == Bug::FlushEarly => {
                self.nodes[i].store.flush();
                self.send(i, Frame::FlushAck { seq });
                return;
            }
            Frame::Flush { seq } => l.apply.flush(seq),
            f => return self.on_frame(i, f),
        };
        let seq = match f {
            Frame::Write { seq, .. } | Frame::Flush { seq } => seq,
            _ => unreachable!(),
        };
        match started {
            Ok(true) => l.apply_running.push(seq),
            Ok(false) => {}
            Err(e) => self.fail(&format!("n{i}: apply order: {e}")),
        }
    }

    /// The receiver's disk finishes some of the writes and barriers it is
    /// applying, in random order.
    fn apply_driver(&mut self, i: usize) {
        if self.nodes[i].store.stalled {
            return;
        }
        loop {
            let l = self.nodes[i].live.as_mut().expect("up");
            if l.apply_running.is_empty() || !self.apply_rng.chance(600) {
                return;
            }
            let k = self.apply_rng.below(l.apply_running.len() as u64) as usize;
            let seq = l.apply_running.swap_remove(k);
            match l.apply_data.remove(&seq) {
                Some((b, v)) => self.applied_write(i, seq, b, v),
                None => {
                    self.nodes[i].store.flush();
                    self.send(i, Frame::FlushAck { seq });
                }
            }
            let Some(l) = self.nodes[i].live.as_mut() else {
                return;
            };
            if l.epoch.is_none() {
                // The write's error dropped the link (teardown cleared it).
                return;
            }
            match l.apply.done(seq) {
                Ok(starts) => {
                    for st in starts {
                        let (datapath::Start::Write(n) | datapath::Start::Flush(n)) = st;
                        l.apply_running.push(n);
                    }
                }
                Err(e) => self.fail(&format!("n{i}: apply order: {e}")),
            }
        }
    }

    /// A replicated write reached the receiver's disk (or failed there).
    fn applied_write(&mut self, i: usize, seq: u64, b: u64, v: u64) {
        // The Secondary writes into its page cache and acks (protocol C:
        // a completed write, not a flushed one).
        if self.nodes[i].store.write(b, v).is_err() {
            self.note(format!("n{i} peer write b{b}=v{v}: local error"));
            // A local error on the Secondary: out of sync here, and the
            // Primary must hear it (DRBD's P_NEG_ACK): a bit in the
            // Secondary's memory alone dies with a crash.
            self.stats.io_errors += 1;
            self.local_io_error(i);
            self.mark(i, b);
            let f = if self.bug == Bug::AckLocalError {
                Frame::Ack { seq }
            } else {
                Frame::NegAck { seq }
            };
            self.send(i, f);
            return;
        }
        self.send(i, Frame::Ack { seq });
    }

    fn on_frame(&mut self, i: usize, f: Frame) {
        match f {
            Frame::Ctrl(m) => {
                let _ = self.input(i, Input::Peer(m));
            }
            Frame::Bitmap(bm) => {
                let in_exchange = self.sm(i).is_some_and(|sm| {
                    matches!(sm.conn(), ConnState::WFBitMapS | ConnState::WFBitMapT)
                });
                let l = self.nodes[i].live.as_mut().expect("up");
                l.peer_bitmap = Some(bm);
                if in_exchange || l.exchanging {
                    self.finish_exchange(i);
                }
            }
            Frame::Write { .. } | Frame::Flush { .. } => {
                unreachable!("writes and barriers go through receive()")
            }
            Frame::Ack { seq } => {
                let l = self.nodes[i].live.as_mut().expect("up");
                l.ko.done(seq);
                l.sent_at.remove(&seq);
                if let Some(Pending::Write { b, v }) = l.pending.remove(&seq) {
                    self.complete_write(i, b, v);
                }
            }
            Frame::NegAck { seq } => {
                let l = self.nodes[i].live.as_mut().expect("up");
                l.ko.done(seq);
                l.sent_at.remove(&seq);
                if let Some(Pending::Write { b, v }) = l.pending.remove(&seq) {
                    self.mark(i, b);
                    self.complete_write(i, b, v);
                }
            }
            Frame::FlushAck { seq } => {
                let l = self.nodes[i].live.as_mut().expect("up");
                l.ko.done(seq);
                l.sent_at.remove(&seq);
                l.transfer_log.retain(|&(s, _)| s > seq);
                let p = l.pending.remove(&seq);
                let cooled = match l.cooling.take() {
                    Some((s, tick, cands)) if s == seq => Some((tick, cands)),
                    other => {
                        l.cooling = other;
                        None
                    }
                };
                if let Some(Pending::Flush { acked_before }) = p {
                    self.complete_flush(acked_before);
                }
                if let Some((tick, cands)) = cooled {
                    self.cool(i, tick, &cands);
                }
            }
            Frame::RsReq { offset, len } => {
                let l = self.nodes[i].live.as_mut().expect("up");
                let conn = l.sm.conn();
                let served = match l.source.as_mut() {
                    Some(src) => src.on_rs_req(conn, offset, len),
                    None => Err(stray("RsReq", offset, len, false)),
                };
                match served {
                    Ok(r) => {
                        let values = (r.offset() / BM_BLOCK..r.end() / BM_BLOCK)
                            .map(|b| self.nodes[i].store.read(b))
                            .collect();
                        let l = self.nodes[i].live.as_mut().expect("up");
                        if let Some(src) = l.source.as_mut() {
                            src.data_queued();
                        }
                        self.send(i, Frame::RsData { offset, values });
                    }
                    Err(r) => self.rejected(i, r),
                }
            }
            Frame::RsData { offset, values } => self.rs_data(i, offset, values),
            Frame::RsAck { offset, len } => {
                let l = self.nodes[i].live.as_mut().expect("up");
                let conn = l.sm.conn();
                let r = match l.source.as_mut() {
                    Some(src) => src.on_rs_ack(conn, offset, len, &mut l.bitmap).map(|_| ()),
                    None => Err(stray("RsAck", offset, len, true)),
                };
                if let Err(r) = r {
                    self.rejected(i, r);
                }
            }
            Frame::RsDone => {
                let l = self.nodes[i].live.as_mut().expect("up");
                let conn = l.sm.conn();
                let r = match l.source.as_ref() {
                    Some(src) => src.on_rs_done(conn),
                    None => Ok(()),
                };
                match r {
                    Ok(()) => {
                        let _ = self.input(i, Input::SyncDone);
                    }
                    Err(r) => self.rejected(i, r),
                }
            }
            Frame::OvReq { b, v } => {
                let differs = self.nodes[i].store.read(b) != v;
                if differs {
                    self.mark(i, b);
                }
                self.send(i, Frame::OvReply { b, differs });
            }
            Frame::OvReply { b, differs } => {
                if differs {
                    self.mark(i, b);
                }
                let done = {
                    let l = self.nodes[i].live.as_mut().expect("up");
                    match l.verify.as_mut() {
                        Some((left, inflight, found)) => {
                            *inflight -= 1;
                            *found += differs as u64;
                            (left.is_empty() && *inflight == 0).then_some(*found)
                        }
                        None => None,
                    }
                };
                if let Some(found) = done {
                    self.nodes[i].live.as_mut().expect("up").verify = None;
                    self.verify_done(i, found);
                }
            }
        }
    }

    /// Verify found differences: resync them from the Primary (or, with two
    /// Secondaries, from the node that ran verify).
    fn verify_done(&mut self, i: usize, found: u64) {
        self.note(format!("n{i} verify done: {found} differ"));
        if found == 0 {
            return;
        }
        let (me, peer) = match self.sm(i) {
            Some(sm) => (sm.role(), sm.peer_role()),
            None => return,
        };
        let from = if self.bug == Bug::VerifyFromHere {
            Some(ResyncFrom::Here)
        } else {
            resync::after_verify(found, me, peer)
        };
        let input = match from {
            Some(ResyncFrom::Here) => Input::ResyncFromHere,
            Some(ResyncFrom::Peer) => Input::ResyncFromPeer,
            None => return,
        };
        if self
            .sm(i)
            .is_some_and(|sm| sm.conn() == ConnState::Connected)
        {
            self.verify_resync = true;
            if let Err(e) = self.input(i, input) {
                self.note(format!("n{i} resync after verify refused: {e}"));
            }
        }
    }

    /// RsData on the SyncTarget: resync.rs decides what is written.
    fn rs_data(&mut self, i: usize, offset: u64, values: Vec<u64>) {
        let len = values.len() as u64 * BM_BLOCK;
        let first = offset / BM_BLOCK;
        let writes: Vec<(u64, u64)> = if self.bug == Bug::VerifyFromHere {
            // The old device: written whatever the receiver's state.
            let l = self.nodes[i].live.as_mut().expect("up");
            l.bitmap.clear_range(offset, len);
            (first..first + values.len() as u64)
                .map(|b| (b, values[(b - first) as usize]))
                .collect()
        } else {
            let l = self.nodes[i].live.as_mut().expect("up");
            let (role, conn) = (l.sm.role(), l.sm.conn());
            let verdict = match l.target.as_mut() {
                Some(t) => t.on_rs_data(role, conn, &l.bitmap, offset, len),
                None => Err(stray("RsData", offset, len, true)),
            };
            let acc = match verdict {
                Ok(acc) => acc,
                Err(r) => return self.rejected(i, r),
            };
            let blocks = acc
                .writes
                .iter()
                .flat_map(|w| w.offset() / BM_BLOCK..w.end() / BM_BLOCK)
                .map(|b| (b, values[(b - first) as usize]))
                .collect();
            if let Some(t) = l.target.as_mut() {
                t.written(&acc, &mut l.bitmap);
            }
            blocks
        };
        for (b, v) in writes {
            if self.nodes[i].store.write(b, v).is_err() {
                // Still out of sync: requested again on the next pass.
                self.stats.io_errors += 1;
                self.mark(i, b);
                continue;
            }
            let primary = self.sm(i).is_some_and(|sm| sm.role() == Role::Primary);
            if v & GARBAGE != 0 && self.verify_resync && primary {
                // Rot travels with a resync the device had no way to tell
                // from good data, but verify found this block differing: it
                // must never repair a Primary from it.
                self.fail(&format!(
                    "n{i} is Primary and verify's resync wrote the peer's rotten block {b} over its data"
                ));
            }
        }
    }

    /// A local write failed: datapath.rs's `on-io-error` rule (the
    /// simulated nodes use `pass_on`: the disk stays, its data turns
    /// Inconsistent, as DRBD's `__drbd_chk_io_error_`).
    fn local_io_error(&mut self, i: usize) {
        let Some(sm) = self.sm(i) else { return };
        let a = datapath::on_io_error(datapath::IoError {
            policy: OnIoError::PassOn,
            site: IoSite::DataWrite,
            primary: sm.role() == Role::Primary,
            peer_up_to_date: sm.conn() >= ConnState::Connected
                && sm.peer_disk() == DiskState::UpToDate,
            peer_acked: false,
        });
        if !a.mark_out_of_sync {
            self.fail("on_io_error: a failed write must be marked out of sync");
        }
        if !a.detach {
            let _ = self.input(i, Input::LocalIoError);
        }
    }

    /// A frame resync.rs refused: a violation drops the link.
    fn rejected(&mut self, i: usize, r: resync::Reject) {
        self.note(format!("n{i} {r}"));
        if r.is_violation() {
            self.drop_link(i);
        }
    }

    /// The SyncTarget's driver (device.rs `resync_target`) around
    /// resync.rs's [`resync::Target`].
    fn resync_driver(&mut self, i: usize) {
        loop {
            let now = Duration::from_millis(self.now);
            let Some(l) = self.nodes[i].live.as_mut() else {
                return;
            };
            let (conn, role) = (l.sm.conn(), l.sm.role());
            let Some(t) = l.target.as_mut() else { return };
            match t.poll(now, u64::MAX, conn, role, &l.bitmap) {
                TargetStep::Request(r) => {
                    let (offset, len) = (r.offset(), r.len());
                    self.send(i, Frame::RsReq { offset, len });
                }
                TargetStep::Flush(ticket) => {
                    self.nodes[i].store.flush();
                    let l = self.nodes[i].live.as_mut().expect("up");
                    let acks = l
                        .target
                        .as_mut()
                        .map(|t| t.flushed(ticket))
                        .unwrap_or_default();
                    for r in acks {
                        let (offset, len) = (r.offset(), r.len());
                        self.send(i, Frame::RsAck { offset, len });
                    }
                }
                TargetStep::Done => {
                    self.send(i, Frame::RsDone);
                    let _ = self.input(i, Input::SyncDone);
                    return;
                }
                TargetStep::Pace(_) | TargetStep::Wait | TargetStep::Stop => return,
            }
        }
    }

    fn verify_driver(&mut self, i: usize) {
        loop {
            let connected = self
                .sm(i)
                .is_some_and(|sm| sm.conn() == ConnState::Connected);
            let l = self.nodes[i].live.as_mut().expect("up");
            let Some((left, inflight, _)) = l.verify.as_mut() else {
                return;
            };
            if !connected {
                l.verify = None;
                return;
            }
            if *inflight >= RS_WINDOW {
                return;
            }
            let Some(b) = left.pop_front() else { return };
            *inflight += 1;
            let v = self.nodes[i].store.read(b);
            self.send(i, Frame::OvReq { b, v });
        }
    }

    // ---- the application

    fn complete_write(&mut self, i: usize, b: u64, v: u64) {
        let l = self.nodes[i].live.as_mut().expect("up");
        l.al.complete(off(b), BM_BLOCK);
        self.oracle.inflight.remove(&b);
        let a = self.oracle.acked.entry(b).or_insert(0);
        *a = (*a).max(v);
        self.stats.writes_acked += 1;
        self.note(format!("n{i} acked write b{b}=v{v}"));
    }

    fn complete_flush(&mut self, acked_before: Vec<(u64, u64)>) {
        for (b, v) in acked_before {
            let f = self.oracle.flushed.entry(b).or_insert(0);
            *f = (*f).max(v);
        }
    }

    fn app_write(&mut self, i: usize) {
        let frozen_io = self.bug != Bug::AckWhileFrozen;
        if self.frozen(i) || (frozen_io && self.sm(i).is_some_and(|sm| sm.suspended())) {
            return;
        }
        let blocks: Vec<u64> = app_blocks()
            .filter(|b| !self.oracle.inflight.contains(b))
            .collect();
        if blocks.is_empty() || self.oracle.inflight.len() >= APP_DEPTH {
            return;
        }
        let b = blocks[self.rng.below(blocks.len() as u64) as usize];
        let v = self.next_version;
        // Activity log first (device.rs write_chunk). Finding 5 again: an
        // extent may leave the log only once both sides flushed it, and
        // eviction is a way of leaving: a write that would evict waits for
        // the writeback's flush round to cool an extent instead.
        let full = self.nodes[i].live.as_ref().is_some_and(|l| {
            let e = off(b) / AL_EXTENT;
            let hot = l.al.hot_extents();
            !hot.contains(&e) && hot.len() >= AL_CAPACITY
        });
        if full && self.bug != Bug::EvictUnflushed {
            self.writeback(i);
            return;
        }
        let mark = {
            let l = self.nodes[i].live.as_mut().expect("up");
            match l.al.mark(off(b), BM_BLOCK) {
                Ok(m) => m,
                Err(MetaError::AlFull(_)) => return,
                Err(e) => self.fail(&format!("activity log: {e}")),
            }
        };
        if mark.transaction_needed {
            let n = &mut self.nodes[i];
            let l = n.live.as_mut().expect("up");
            // Evicted extents' bitmap pages, then the transaction.
            for e in &mark.evicted {
                copy_extent_bits(&l.bitmap, &mut n.meta.bitmap, *e);
            }
            n.meta.al = l.al.hot_extents().into_iter().collect();
        }
        self.next_version += 1;
        self.oracle.inflight.insert(b);
        let replicating = self.replicating(i);
        if !replicating {
            self.mark(i, b);
        }
        let local = self.nodes[i].store.write(b, v);
        if local.is_err() {
            // on-io-error pass_on: the application gets EIO; the block is
            // out of sync here whatever the peer does.
            self.note(format!(
                "n{i} write b{b}=v{v}: local error (replicating {replicating})"
            ));
            self.stats.io_errors += 1;
            self.local_io_error(i);
            if self.bug != Bug::NoBitOnLocalError {
                self.mark(i, b);
            }
        }
        if replicating {
            let l = self.nodes[i].live.as_mut().expect("up");
            let seq = l.next_seq;
            l.next_seq += 1;
            if local.is_ok() {
                l.pending.insert(seq, Pending::Write { b, v });
            } else {
                // Still sent: the peer's copy becomes the good one.
                l.pending.insert(seq, Pending::Write { b, v: 0 });
            }
            l.transfer_log.push((seq, b));
            self.send(i, Frame::Write { seq, b, v });
            if local.is_err() {
                // Not acknowledged to the application.
                self.oracle.inflight.remove(&b);
                let l = self.nodes[i].live.as_mut().expect("up");
                l.pending.remove(&seq);
                l.al.complete(off(b), BM_BLOCK);
            }
        } else if local.is_ok() {
            self.complete_write(i, b, v);
        } else {
            self.oracle.inflight.remove(&b);
            let l = self.nodes[i].live.as_mut().expect("up");
            l.al.complete(off(b), BM_BLOCK);
        }
    }

    fn app_flush(&mut self, i: usize) {
        let acked_before: Vec<(u64, u64)> =
            self.oracle.acked.iter().map(|(b, v)| (*b, *v)).collect();
        self.nodes[i].store.flush();
        if self.replicating(i) {
            let l = self.nodes[i].live.as_mut().expect("up");
            let seq = l.next_seq;
            l.next_seq += 1;
            l.pending.insert(seq, Pending::Flush { acked_before });
            self.send(i, Frame::Flush { seq });
        } else {
            self.complete_flush(acked_before);
        }
    }

    /// device.rs `writeback`: flush, age the activity log, write the bitmap.
    fn writeback(&mut self, i: usize) {
        let (tick, cands) = {
            let l = self.nodes[i].live.as_ref().expect("up");
            l.al.cool_candidates()
        };
        self.nodes[i].store.flush();
        let replicating = self.replicating(i);
        let waiting = self.nodes[i]
            .live
            .as_ref()
            .is_some_and(|l| l.cooling.is_some());
        if replicating && self.bug != Bug::CoolOnLocalFlush {
            // Finding 5: an extent leaves the log only after both sides
            // flushed it.
            if !waiting {
                let l = self.nodes[i].live.as_mut().expect("up");
                let seq = l.next_seq;
                l.next_seq += 1;
                l.cooling = Some((seq, tick, cands));
                self.send(i, Frame::Flush { seq });
            }
        } else {
            self.cool(i, tick, &cands);
        }
        // Bitmap writeback, after the data flush.
        let n = &mut self.nodes[i];
        if let Some(l) = n.live.as_ref() {
            n.meta.bitmap = l.bitmap.clone();
        }
    }

    fn cool(&mut self, i: usize, tick: u64, cands: &[u64]) {
        let n = &mut self.nodes[i];
        let Some(l) = n.live.as_mut() else { return };
        let cooled = l.al.cool(tick, cands);
        if !cooled.is_empty() {
            for e in &cooled {
                copy_extent_bits(&l.bitmap, &mut n.meta.bitmap, *e);
            }
            n.meta.al = l.al.hot_extents().into_iter().collect();
        }
    }

    // ---- faults and the operator

    fn crash(&mut self, i: usize) {
        if !self.up(i) {
            return;
        }
        self.note(format!("n{i} CRASH"));
        self.stats.crashes += 1;
        if let Some(c) = self.conn.as_mut() {
            if !c.broken {
                c.broken = true;
                for q in c.q.iter_mut() {
                    q.clear();
                }
                c.lost_at[1 - i] = Some(self.now + 1 + self.rng.below(40));
            }
            c.lost_at[i] = Some(self.now);
        }
        // Acknowledged writes this node had not flushed may be lost, as on
        // any disk: when the node comes back as a crashed Primary its hot
        // extents are resynced from its own stable data (DRBD's rule). But
        // a peer that had them, UpToDate, must still have them if it is
        // promoted before it hears from this node again.
        let peer = 1 - i;
        let peer_ok = self
            .sm(peer)
            .is_some_and(|sm| sm.disk() == DiskState::UpToDate);
        self.oracle.promise[i].clear();
        for b in app_blocks() {
            let a = self.oracle.acked.get(&b).copied().unwrap_or(0);
            if a == 0 {
                continue;
            }
            let has = |v: u64| v >= a && v & GARBAGE == 0;
            if peer_ok && has(self.nodes[peer].store.read(b)) {
                self.oracle.promise[peer].insert(b, a);
            }
            if !has(self.nodes[i].store.durable.get(&b).copied().unwrap_or(0)) {
                let f = self.oracle.flushed.get(&b).copied().unwrap_or(0);
                self.oracle.acked.insert(b, f.min(a));
            }
        }
        // Writes in flight on the crashed node are never acknowledged.
        if let Some(l) = self.nodes[i].live.take() {
            for p in l.pending.values() {
                if let Pending::Write { b, .. } = p {
                    self.oracle.inflight.remove(b);
                }
            }
            for (b, _) in &l.held_acks {
                self.oracle.inflight.remove(b);
            }
        }
        self.nodes[i].store.power_loss();
    }

    fn power_cut(&mut self) {
        let durable: Vec<String> = (0..2)
            .map(|i| format!("n{i} {:?}", self.nodes[i].store.durable))
            .collect();
        self.note(format!("before the cut: {durable:?}"));
        self.note("POWER CUT of both nodes".into());
        self.stats.power_cuts += 1;
        for i in 0..2 {
            self.crash(i);
        }
        self.conn = None;
        self.oracle.inflight.clear();
    }

    fn partition(&mut self) {
        if self.cut {
            return;
        }
        self.cut = true;
        self.hb_cut = self.rng.chance(500);
        self.full_cut_seen |= self.hb_cut;
        self.note(format!(
            "partition ({})",
            if self.hb_cut {
                "full"
            } else {
                "replication link only"
            }
        ));
        if let Some(c) = self.conn.as_mut().filter(|c| !c.broken) {
            c.broken = true;
            for q in c.q.iter_mut() {
                q.clear();
            }
            c.lost_at = [
                Some(self.now + 1 + self.rng.below(40)),
                Some(self.now + 1 + self.rng.below(40)),
            ];
        }
    }

    fn boot(&mut self, i: usize) {
        if self.up(i) {
            return;
        }
        self.note(format!("n{i} boots"));
        let seed = self.rng.below(u64::MAX);
        let fencing = self.fencing;
        self.nodes[i].boot(i, seed, fencing);
        self.sync_flags(i);
    }

    /// The cluster manager's promotion (drbddisk): never a node that has
    /// not met its peer since it started (wfc-timeout 0) unless the peer
    /// was already gone when it went down... kept simple: met the peer, or
    /// the peer is up and Secondary.
    fn maybe_promote(&mut self, i: usize) {
        let Some(l) = self.nodes[i].live.as_ref() else {
            return;
        };
        // Finding 2: drbddisk promotes a device that has not met its peer
        // since it started only once it has (wfc-timeout 0).
        if l.sm.role() == Role::Primary || (!l.met_peer && self.bug != Bug::NoWfc) {
            return;
        }
        let other_primary = self.sm(1 - i).is_some_and(|sm| sm.role() == Role::Primary);
        let connected = l.sm.conn() >= ConnState::Connected;
        if connected && l.sm.peer_role() == Role::Primary {
            return;
        }
        // A failover promotes only when the peer looks dead to this node.
        // Fenced (the default): a partitioned peer is not dead, as with
        // STONITH or a quorum; unfenced, it may still run (split brain).
        if other_primary && (connected || !self.cut || self.fenced) {
            // Connected: hbd's group logic never promotes both (two
            // concurrent promotions race the State messages, which DRBD
            // closes with a cluster-wide state change: not modelled here).
            return;
        }
        // device.rs `promote`: fencing, the peer not known Outdated: the
        // fence-peer handler first (drbd_set_role).
        if l.sm.promotion_needs_fencing()
            && matches!(l.sm.disk(), DiskState::UpToDate | DiskState::Consistent)
        {
            self.fence_peer_done(i);
        }
        let Some(l) = self.nodes[i].live.as_ref() else {
            return;
        };
        let disk_before = l.sm.disk();
        let meta_before = self.nodes[i].meta.clone();
        match self.input(i, Input::Promote { force: false }) {
            Ok(()) => {
                // Consistent data becomes UpToDate once the handler
                // outdated the peer (sanitize_state); Outdated never.
                let consistent_fenced =
                    disk_before == DiskState::Consistent && self.fencing != Fencing::Off;
                if disk_before != DiskState::UpToDate && !consistent_fenced {
                    self.fail(&format!("n{i} promoted {disk_before} data without --force"));
                }
                if meta_before.consistent && !meta_before.was_up_to_date {
                    self.fail(&format!("n{i} promoted data its metadata says is Outdated"));
                }
                if self.fencing == Fencing::Stonith && !self.full_cut_seen {
                    for b in app_blocks() {
                        let a = self.oracle.acked.get(&b).copied().unwrap_or(0);
                        let v = self.nodes[i].store.read(b);
                        if v < a && !self.rotten(i, b) {
                            self.fail(&format!(
                                "resource-and-stonith: n{i} promoted without acknowledged write v{a} of block {b} (holds v{v})"
                            ));
                        }
                    }
                }
                for (&b, &a) in &self.oracle.promise[i] {
                    let v = self.nodes[i].store.read(b);
                    if v < a && !self.rotten(i, b) {
                        self.fail(&format!(
                            "n{i} promoted without acknowledged write v{a} of block {b} (holds v{v})"
                        ));
                    }
                }
                self.note(format!("n{i} promoted"));
            }
            Err(e) => {
                if e == Refused::LocalDisk(DiskState::Outdated) {
                    self.stats.outdated_refusals += 1;
                }
                self.note(format!("n{i} promote refused: {e}"))
            }
        }
    }

    fn demote(&mut self, i: usize) {
        // Writes held by frozen I/O keep the device open (device.rs
        // `demote` waits for its release).
        let busy = self.nodes[i].live.as_ref().is_some_and(|l| {
            !l.held_acks.is_empty()
                || l.pending
                    .values()
                    .any(|p| matches!(p, Pending::Write { .. }))
        });
        if busy || self.sm(i).is_none_or(|sm| sm.role() != Role::Primary) {
            return;
        }
        // device.rs demote: flush, bitmap, close the activity log. Finding
        // 5 once more: the log empties only once the peer flushed too, so a
        // demotion waits for a writeback round to cool every extent first.
        let hot = self.nodes[i]
            .live
            .as_ref()
            .is_some_and(|l| !l.al.hot_extents().is_empty());
        if hot && self.replicating(i) && self.bug != Bug::CoolOnLocalFlush {
            self.writeback(i);
            return;
        }
        self.nodes[i].store.flush();
        let n = &mut self.nodes[i];
        let l = n.live.as_mut().expect("up");
        n.meta.bitmap = l.bitmap.clone();
        let (tick, cands) = l.al.cool_candidates();
        l.al.cool(tick, &cands);
        n.meta.al = l.al.hot_extents().into_iter().collect();
        let _ = self.input(i, Input::Demote);
        self.note(format!("n{i} demoted"));
    }

    /// Both nodes StandAlone after a split brain: the operator keeps one
    /// side's data (`hbctl split-brain resolve --survivor`), counting the
    /// acknowledged writes the other side loses.
    fn resolve_split_brain(&mut self) {
        let both_standalone = (0..2).all(|i| {
            self.sm(i)
                .is_some_and(|sm| sm.conn() == ConnState::StandAlone)
        });
        if !both_standalone || self.cut {
            return;
        }
        let primary = (0..2).find(|&i| self.sm(i).is_some_and(|sm| sm.role() == Role::Primary));
        // The better data survives: UpToDate, else Consistent (attached
        // under `fencing`, peer unknown), else Outdated, never Inconsistent
        // over one of those.
        let disk = |i: usize| self.sm(i).map_or(DiskState::Diskless, |sm| sm.disk());
        let survivor = match primary {
            Some(p) => p,
            None if disk(0) > disk(1) => 0,
            None if disk(1) > disk(0) => 1,
            None => self.rng.below(2) as usize,
        };
        let victim = 1 - survivor;
        if self.nodes[victim]
            .live
            .as_ref()
            .is_some_and(|l| !l.pending.is_empty())
        {
            return;
        }
        self.demote(victim);
        if self.sm(victim).is_some_and(|sm| sm.role() == Role::Primary) {
            return;
        }
        // Account for what the victim loses.
        let mut lost = 0;
        for b in app_blocks() {
            let must = self.oracle.acked.get(&b).copied().unwrap_or(0);
            let s = self.nodes[survivor].store.read(b);
            let v = self.nodes[victim].store.read(b);
            if s < must && s & GARBAGE == 0 {
                if v >= must {
                    lost += 1;
                }
                self.oracle.acked.insert(b, s);
                let f = self.oracle.flushed.entry(b).or_insert(0);
                *f = (*f).min(s);
            }
        }
        self.oracle.discarded += lost;
        self.stats.discarded += lost;
        self.resolutions += 1;
        if self.resolutions > 3 {
            // Still refused (DRBD's "Unrelated data"): the operator recreates
            // the victim's metadata (`create-md`), a full sync follows.
            self.note(format!("operator: create-md on n{victim}"));
            self.stats.create_md += 1;
            let m = &mut self.nodes[victim].meta;
            m.uuids = Uuids::created();
            m.consistent = false;
            m.was_up_to_date = false;
            m.crashed_primary = false;
            m.bitmap.set_all();
            m.al.clear();
            self.nodes[victim].live = None;
            self.boot(victim);
            self.resolutions = 0;
            let _ = self.input(survivor, Input::Connect);
            return;
        }
        self.note(format!(
            "operator: split brain resolved, survivor n{survivor}, {lost} acknowledged writes discarded"
        ));
        let _ = self.input(victim, Input::DiscardMyData);
        let _ = self.input(victim, Input::Connect);
        let _ = self.input(survivor, Input::Connect);
    }

    fn start_verify(&mut self, i: usize) {
        let ok = self.sm(i).is_some_and(|sm| {
            sm.conn() == ConnState::Connected
                && sm.disk() == DiskState::UpToDate
                && sm.peer_disk() == DiskState::UpToDate
        });
        // Verify may run on both nodes at once (state.rs settles the
        // resyncs they both start).
        let l = self.nodes[i].live.as_mut().expect("up");
        if !ok || l.verify.is_some() {
            return;
        }
        l.verify = Some((app_blocks().collect(), 0, 0));
        self.stats.verifies += 1;
        self.note(format!("n{i} verify"));
    }

    /// Bit rot on a Secondary's disk, behind the device's back.
    fn rot(&mut self, i: usize) {
        let blocks: Vec<u64> = app_blocks()
            .filter(|b| !self.oracle.inflight.contains(b))
            .collect();
        let b = blocks[self.rng.below(blocks.len() as u64) as usize];
        let g = GARBAGE | self.rng.below(1 << 20);
        let s = &mut self.nodes[i].store;
        if s.cache.contains_key(&b) {
            s.cache.insert(b, g);
        }
        s.durable.insert(b, g);
        self.note(format!("n{i} block {b} rots"));
    }

    /// Block `b` of node `i` holds rot (garbage written behind the
    /// device's back, or carried there by a resync that could not know).
    fn rotten(&self, i: usize, b: u64) -> bool {
        self.nodes[i].store.read(b) & GARBAGE != 0
    }

    /// Blocks rotten on one node only (verify can find them).
    fn one_sided_rot(&self) -> Vec<u64> {
        app_blocks()
            .filter(|&b| self.rotten(0, b) != self.rotten(1, b))
            .collect()
    }

    // ---- invariants

    fn check_step(&self) {
        let window = (KO_TIMEOUT * KO_COUNT).as_millis() as u64;
        for i in 0..2 {
            let oldest = self.nodes[i]
                .live
                .as_ref()
                .and_then(|l| l.sent_at.values().min().copied());
            if let Some(t) = oldest {
                if self.now.saturating_sub(t) > window + KO_SLACK {
                    self.fail(&format!(
                        "n{i}: a request to the peer has waited {} ms (timeout × ko-count {window} ms): a hung peer disk froze it",
                        self.now - t
                    ));
                }
            }
            if let Some(sm) = self.sm(i) {
                if sm.role() == Role::Primary
                    && matches!(
                        sm.conn(),
                        ConnState::SyncTarget | ConnState::PausedSyncT | ConnState::WFBitMapT
                    )
                {
                    self.fail(&format!("n{i} is Primary and {}", sm.conn()));
                }
            }
        }
    }

    /// Both up, Connected, UpToDate, nothing out of sync or in flight.
    fn at_sync_point(&self) -> bool {
        let quiet = self
            .conn
            .as_ref()
            .is_some_and(|c| !c.broken && c.q.iter().all(|q| q.is_empty()));
        quiet
            && self.oracle.inflight.is_empty()
            && (0..2).all(|i| {
                self.nodes[i].live.as_ref().is_some_and(|l| {
                    l.sm.conn() == ConnState::Connected
                        && l.sm.disk() == DiskState::UpToDate
                        && l.sm.peer_disk() == DiskState::UpToDate
                        && l.bitmap.count() == 0
                        && l.pending.is_empty()
                        && l.verify.is_none()
                })
            })
    }

    fn check_sync_point(&mut self) {
        self.stats.sync_points += 1;
        self.full_cut_seen = self.hb_cut;
        for b in app_blocks() {
            let rotten = |i: usize| self.rotten(i, b);
            let (a, c) = (self.nodes[0].store.read(b), self.nodes[1].store.read(b));
            if a != c && !rotten(0) && !rotten(1) {
                self.fail(&format!(
                    "silent divergence: both UpToDate and Connected, block {b}: n0 has {a}, n1 has {c}"
                ));
            }
            let must = self.oracle.acked.get(&b).copied().unwrap_or(0);
            for (i, v) in [(0, a), (1, c)] {
                if rotten(i) {
                    continue;
                }
                if v < must {
                    self.fail(&format!(
                        "lost acknowledged write: block {b} on n{i} holds version {v}, {must} was acknowledged"
                    ));
                }
            }
        }
    }

    // ---- the schedule

    fn step(&mut self) {
        self.steps += 1;
        self.now += self.rng.below(6);
        let r = self.rng.below(1000);
        match r {
            0..=299 => {
                for i in 0..2 {
                    if self.sm(i).is_some_and(|sm| sm.role() == Role::Primary)
                        && self.rng.chance(700)
                    {
                        self.app_write(i);
                    }
                }
            }
            300..=339 => {
                let i = self.rng.below(2) as usize;
                if self.sm(i).is_some_and(|sm| sm.role() == Role::Primary) {
                    self.app_flush(i);
                }
            }
            340..=399 => {
                let i = self.rng.below(2) as usize;
                if self.up(i) {
                    self.writeback(i);
                }
            }
            400..=409 => {
                let i = self.rng.below(2) as usize;
                self.maybe_promote(i);
            }
            410..=414 => {
                let i = self.rng.below(2) as usize;
                if self.up(i) {
                    self.demote(i);
                }
            }
            415..=418 => {
                let i = self.rng.below(2) as usize;
                self.crash(i);
            }
            419..=440 => {
                let i = self.rng.below(2) as usize;
                self.boot(i);
            }
            441 => self.power_cut(),
            442..=447 => self.partition(),
            448..=469 if self.cut => {
                self.note("heal".into());
                self.cut = false;
                self.hb_cut = false;
            }
            470..=479 => {
                let i = self.rng.below(2) as usize;
                if self.up(i) {
                    self.start_verify(i);
                }
            }
            480..=483 => {
                let i = self.rng.below(2) as usize;
                if self.sm(i).is_some_and(|sm| sm.role() == Role::Secondary) {
                    self.rot(i);
                }
            }
            484..=486 => {
                // A block that fails to write on one node, for a while
                // (one failing disk at a time: two are a double fault no
                // replication survives).
                let i = self.rng.below(2) as usize;
                let other_ok = self.nodes[1 - i].store.failing.is_empty()
                    && self
                        .sm(1 - i)
                        .is_some_and(|sm| sm.disk() == DiskState::UpToDate);
                if other_ok {
                    let blocks: Vec<u64> = app_blocks().collect();
                    let b = blocks[self.rng.below(blocks.len() as u64) as usize];
                    self.nodes[i].store.failing.insert(b);
                }
            }
            487..=499 => {
                let i = self.rng.below(2) as usize;
                self.nodes[i].store.failing.clear();
            }
            500..=509 => self.resolve_split_brain(),
            510..=511 => {
                // The Secondary's disk hangs for a while.
                let i = self.rng.below(2) as usize;
                if self.sm(i).is_some_and(|sm| sm.role() == Role::Secondary) {
                    self.note(format!("n{i}: disk hangs"));
                    self.nodes[i].store.stalled = true;
                }
            }
            512..=530 => {
                for i in 0..2 {
                    if self.nodes[i].store.stalled {
                        self.note(format!("n{i}: disk released"));
                        self.nodes[i].store.stalled = false;
                    }
                }
            }
            _ => {}
        }
        self.background();
        self.check_step();
        if self.at_sync_point() {
            self.check_sync_point();
        }
    }

    /// What the device processes do on their own.
    fn background(&mut self) {
        self.deliver();
        self.try_connect();
        for i in 0..2 {
            if self.up(i) {
                self.apply_driver(i);
                self.release_held(i);
                self.fence_driver(i);
                self.ko_watchdog(i);
                self.resync_driver(i);
                self.verify_driver(i);
            }
        }
    }

    /// The disk works again: what was received meanwhile is applied.
    fn release_held(&mut self, i: usize) {
        while !self.nodes[i].store.stalled {
            let Some(l) = self.nodes[i].live.as_mut() else {
                return;
            };
            if l.held
                .front()
                .is_none_or(|f| drains(f) && !l.apply.is_empty())
            {
                return;
            }
            let f = l.held.pop_front().expect("checked");
            self.receive(i, f);
        }
    }

    /// Finding 6: a peer that leaves a request unanswered for timeout ×
    /// ko-count is dropped (its pings may still flow).
    fn ko_watchdog(&mut self, i: usize) {
        if self.bug == Bug::NoKoCount {
            return;
        }
        let overdue = self.nodes[i]
            .live
            .as_ref()
            .and_then(|l| l.ko.overdue(self.now));
        if let Some(o) = overdue {
            self.stats.ko_drops += 1;
            self.note(format!(
                "n{i} drops the peer: request {} unanswered for {} ms",
                o.seq, o.age
            ));
            self.drop_link(i);
            if self
                .sm(i)
                .is_some_and(|sm| sm.conn() == ConnState::StandAlone)
            {
                let _ = self.input(i, Input::Connect);
            }
        }
    }

    /// Faults stop; the cluster must reach a sync point.
    fn settle(&mut self) {
        self.note("--- faults stop".into());
        self.cut = false;
        self.hb_cut = false;
        for i in 0..2 {
            self.nodes[i].store.failing.clear();
            self.nodes[i].store.stalled = false;
        }
        for _ in 0..20_000 {
            self.steps += 1;
            self.now += 1 + self.rng.below(5);
            for i in 0..2 {
                self.boot(i);
            }
            self.resolve_split_brain();
            for i in 0..2 {
                if self
                    .sm(i)
                    .is_some_and(|sm| sm.conn() == ConnState::StandAlone)
                    && self
                        .sm(1 - i)
                        .is_some_and(|sm| sm.conn() != ConnState::StandAlone)
                {
                    let _ = self.input(i, Input::Connect);
                }
                if self.up(i) && self.rng.chance(100) {
                    self.writeback(i);
                }
            }
            // Blocks marked out of sync while connected (a local write error
            // with pass_on) wait for the next handshake; DRBD resyncs
            // nothing while the UUIDs are equal: the operator invalidates
            // the node whose disk failed (demoting it first).
            for i in 0..2 {
                let stuck = self.nodes[i].live.as_ref().is_some_and(|l| {
                    l.sm.conn() == ConnState::Connected
                        && (l.bitmap.count() > 0 || l.sm.disk() != DiskState::UpToDate)
                        && l.pending.is_empty()
                        && l.sm.peer_disk() == DiskState::UpToDate
                });
                if stuck && self.rng.chance(20) {
                    self.demote(i);
                    if self.sm(i).is_some_and(|sm| sm.role() == Role::Secondary) {
                        self.note(format!("operator: invalidate n{i}"));
                        let _ = self.input(i, Input::Invalidate);
                    }
                }
            }
            // Verify repairs rot left on one node.
            if !self.one_sided_rot().is_empty() {
                let i = self.rng.below(2) as usize;
                if self.up(i) {
                    self.start_verify(i);
                }
            }
            self.background();
            self.check_step();
            if self.at_sync_point() {
                self.check_sync_point();
                if self.one_sided_rot().is_empty() {
                    return;
                }
            }
        }
        let states: Vec<String> = (0..2)
            .map(|i| match self.sm(i) {
                Some(sm) => format!(
                    "n{i}: {} {} {} peer {} bits {}",
                    sm.role(),
                    sm.conn(),
                    sm.disk(),
                    sm.peer_disk(),
                    self.nodes[i].live.as_ref().map_or(0, |l| l.bitmap.count())
                ),
                None => format!("n{i} down"),
            })
            .collect();
        self.fail(&format!(
            "no sync point after the faults stopped: {}; rotten on one side {:?}",
            states.join("; "),
            self.one_sided_rot()
        ));
    }
}

/// Frames that wait until every earlier write was applied (device/apply.rs:
/// all but writes, barriers and answers).
fn drains(f: &Frame) -> bool {
    !matches!(
        f,
        Frame::Write { .. }
            | Frame::Flush { .. }
            | Frame::Ack { .. }
            | Frame::NegAck { .. }
            | Frame::FlushAck { .. }
    )
}

fn stray(frame: &'static str, offset: u64, len: u64, ignore: bool) -> resync::Reject {
    resync::stray(Geometry::new(BITS * BM_BLOCK), frame, offset, len, ignore)
}

fn copy_extent_bits(from: &Bitmap, to: &mut Bitmap, extent: u64) {
    let first = extent * AL_EXTENT / BM_BLOCK;
    for bit in first..(first + AL_EXTENT / BM_BLOCK).min(BITS) {
        if from.get(bit) {
            to.set_range(off(bit), BM_BLOCK);
        } else {
            to.clear_range(off(bit), BM_BLOCK);
        }
    }
}

/// Run one seeded schedule of `steps` steps, then settle.
pub fn run_seed(seed: u64, steps: u64, bug: Bug) -> Stats {
    run(seed, steps, bug, false)
}

/// `wild`: partitions may run two Primaries (no fencing, as hbd before
/// split-brain avoidance). Verify may run on both nodes at once always.
fn run(seed: u64, steps: u64, bug: Bug, wild: bool) -> Stats {
    let mut s = Sim::new(seed, bug);
    s.fenced = !wild;
    // Start as a connected pair with n0 Primary.
    for _ in 0..50 {
        s.now += 1;
        s.background();
    }
    s.maybe_promote(0);
    for _ in 0..steps {
        s.step();
    }
    s.settle();
    s.stats.steps = s.steps;
    s.stats
}

/// Events kept for a failure's report (`HBD_SIM_LOG=N`, 400 by default).
fn log_lines() -> usize {
    thread_local! {
        static N: usize = std::env::var("HBD_SIM_LOG")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(400);
    }
    N.with(|n| *n)
}

fn seeds() -> u64 {
    std::env::var("HBD_SIM_SEEDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(300)
}

#[test]
fn random_schedules() {
    if let Ok(seed) = std::env::var("HBD_SIM_SEED") {
        let st = run_seed(
            seed.parse().expect("HBD_SIM_SEED is a number"),
            3000,
            Bug::None,
        );
        eprintln!("{st:?}");
        return;
    }
    let mut total = Stats::default();
    for seed in 0..seeds() {
        let r = std::panic::catch_unwind(|| run_seed(seed, 3000, Bug::None));
        match r {
            Ok(st) => {
                total.steps += st.steps;
                total.writes_acked += st.writes_acked;
                total.sync_points += st.sync_points;
                total.split_brains += st.split_brains;
                total.discarded += st.discarded;
                total.resyncs += st.resyncs;
                total.power_cuts += st.power_cuts;
                total.crashes += st.crashes;
                total.verifies += st.verifies;
                total.io_errors += st.io_errors;
                total.create_md += st.create_md;
                total.ko_drops += st.ko_drops;
                total.fence_runs += st.fence_runs;
                total.peers_outdated += st.peers_outdated;
                total.outdated_refusals += st.outdated_refusals;
            }
            Err(e) => {
                eprintln!("failing seed: HBD_SIM_SEED={seed} cargo test --lib disk::sim");
                std::panic::resume_unwind(e);
            }
        }
    }
    eprintln!("disk sim: {} seeds: {total:?}", seeds());
    assert!(total.writes_acked > 0 && total.sync_points > 0 && total.resyncs > 0);
    assert!(total.fence_runs > 0 && total.peers_outdated > 0 && total.outdated_refusals > 0);
}

/// The mutation checks: every planted bug is caught within the seeds.
/// Seeds are tried until one fails (at most 2000: a planted bug that the
/// seeds of CI's run happen to miss is still found, at a cost only then).
fn caught(bug: Bug) -> Option<u64> {
    caught_within(bug, 2000)
}

/// [`caught`] with another bound on the seeds tried.
fn caught_within(bug: Bug, at_most: u64) -> Option<u64> {
    let seeds = seeds().max(at_most);
    quiet_panics();
    QUIET.with(|q| q.set(true));
    let found =
        (0..seeds).find(|&seed| std::panic::catch_unwind(|| run_seed(seed, 3000, bug)).is_err());
    QUIET.with(|q| q.set(false));
    eprintln!("disk sim: {bug:?} caught by seed {found:?}");
    found
}

thread_local! {
    static QUIET: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// One process-wide hook that keeps the expected panics of the mutation
/// checks quiet (on their threads only) and reports every other one.
fn quiet_panics() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if !QUIET.with(|q| q.get()) {
                default(info);
            }
        }));
    });
}

#[test]
fn catches_verify_resyncing_onto_the_primary() {
    assert!(
        caught(Bug::VerifyFromHere).is_some(),
        "finding 3 not caught"
    );
}

#[test]
fn catches_a_local_write_error_without_a_bit() {
    assert!(
        caught(Bug::NoBitOnLocalError).is_some(),
        "finding 4 not caught"
    );
}

#[test]
fn catches_a_secondary_acknowledging_a_failed_write() {
    assert!(
        caught(Bug::AckLocalError).is_some(),
        "finding 4 (Secondary) not caught"
    );
}

#[test]
fn catches_a_resync_ack_clearing_a_newer_mark() {
    assert!(
        caught(Bug::RsAckClearsNewer).is_some(),
        "RsAck over a newer mark not caught"
    );
}

#[test]
fn catches_a_hung_peer_disk_freezing_the_primary() {
    assert!(caught(Bug::NoKoCount).is_some(), "finding 6 not caught");
}

#[test]
fn catches_a_lone_boot_promoting_stale_data() {
    // Rare in the random schedules: it needs a power cut, the stale node
    // booting first and promoting before the peer is back. Since the
    // simulated receiver completes writes out of order (issue 15) the
    // first seed that shows it is 2982 (1182 before), so this check may
    // try more seeds than the others.
    assert!(
        caught_within(Bug::NoWfc, 4000).is_some(),
        "finding 2 not caught"
    );
}

#[test]
fn catches_an_eviction_from_the_activity_log_before_the_peer_flushed() {
    assert!(
        caught(Bug::EvictUnflushed).is_some(),
        "finding 5 (eviction) not caught"
    );
}

#[test]
fn catches_the_activity_log_cooling_on_a_local_flush() {
    assert!(
        caught(Bug::CoolOnLocalFlush).is_some(),
        "finding 5 not caught"
    );
}

#[test]
fn catches_a_barrier_acknowledged_before_earlier_writes_landed() {
    assert!(
        caught(Bug::FlushEarly).is_some(),
        "a barrier flushed before the writes it covers not caught"
    );
}

#[test]
fn catches_resource_and_stonith_acknowledging_while_frozen() {
    assert!(
        caught(Bug::AckWhileFrozen).is_some(),
        "writes acknowledged while frozen not caught"
    );
}

/// By hand: `HBD_SIM_SEEDS=5000 cargo test --lib disk::sim::survey -- --ignored --nocapture`
/// runs every seed and prints each failure's first line (`HBD_SIM_WILD=1`:
/// unfenced partitions).
#[test]
#[ignore]
fn survey() {
    quiet_panics();
    let mut failures = BTreeMap::<String, Vec<u64>>::new();
    for seed in 0..seeds() {
        QUIET.with(|q| q.set(true));
        let wild = std::env::var("HBD_SIM_WILD").is_ok();
        let r = std::panic::catch_unwind(|| run(seed, 3000, Bug::None, wild));
        QUIET.with(|q| q.set(false));
        if let Err(e) = r {
            let msg = e
                .downcast_ref::<String>()
                .cloned()
                .unwrap_or_else(|| "?".into());
            let first = msg.lines().next().unwrap_or("").to_string();
            let key: String = first.chars().filter(|c| !c.is_ascii_digit()).collect();
            failures.entry(key).or_default().push(seed);
        }
    }
    for (k, seeds) in &failures {
        eprintln!(
            "{} seeds, e.g. {:?}: {k}",
            seeds.len(),
            &seeds[..seeds.len().min(5)]
        );
    }
    assert!(failures.is_empty());
}
