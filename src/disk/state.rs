//! Roles, disk states, connection states and the connection state machine
//! of one replicated resource, as DRBD 8.4 (sans-IO).
//!
//! Names and orderings follow DRBD 8.4 `drbd/linux/drbd.h` (`enum drbd_role`,
//! `enum drbd_disk_state`, `enum drbd_conns`) and `drbd_strings.c`. The
//! transitions follow `drbd/drbd_receiver.c` (`drbd_connect`,
//! `receive_uuids`/`receive_state`, `drbd_sync_handshake`,
//! `receive_sync_uuid`), `drbd/drbd_state.c` (`after_state_ch`: a Primary
//! that loses its peer's data gets a new current UUID), `drbd/drbd_nl.c`
//! (`drbd_set_role`, `drbd_adm_invalidate(_peer)`, `drbd_adm_detach`) and
//! `drbd/drbd_worker.c` (`drbd_start_resync`, `drbd_resync_finished`).
//!
//! Simplifications: no C_WF_SYNC_UUID state (the target enters SyncTarget
//! when the bitmaps are exchanged and applies the sync UUID when it
//! arrives); no two-primaries; rr-conflict is always `disconnect`.
//!
//! Use: feed [`Input`]s to [`Resource::handle`] (commands answer
//! `Err(`[`Refused`]`)` when refused), then drain [`Resource::take_outputs`].

use super::uuid::{self, Decision, HandshakeError, SbPolicy, SbRecovery, Side, Uuids};
use serde::{Deserialize, Serialize};
use std::fmt;

mod commands;
mod handshake;
mod refused;

pub use refused::Refused;

macro_rules! named_enum {
    ($(#[$m:meta])* $name:ident { $($v:ident),* $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        pub enum $name { $($v),* }
        impl $name {
            /// DRBD's display name (`drbd_role_str`, `drbd_disk_str`, `drbd_conn_str`).
            pub fn as_str(self) -> &'static str {
                match self { $($name::$v => stringify!($v)),* }
            }
        }
        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

named_enum!(
    /// `enum drbd_role`.
    Role { Primary, Secondary, Unknown }
);
named_enum!(
    /// `enum drbd_disk_state`, in DRBD's order (`Failed` and `Negotiating`
    /// are not modelled): comparisons such as `disk > Inconsistent` mean
    /// what they mean in DRBD.
    DiskState { Diskless, Attaching, Inconsistent, Outdated, DUnknown, Consistent, UpToDate }
);
named_enum!(
    /// `enum drbd_conns`, in DRBD's order (a subset): `conn < Connected`
    /// means "no peer".
    ConnState {
        StandAlone,
        Unconnected,
        WFConnection,
        WFReportParams,
        Connected,
        WFBitMapS,
        WFBitMapT,
        SyncSource,
        SyncTarget,
        PausedSyncS,
        PausedSyncT,
    }
);

/// Configuration of one resource that the machine needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ResourceConfig {
    /// after-sb-0pri/1pri/2pri, always-asbp.
    pub policy: SbPolicy,
    /// This node has the lower node id: it wins ties (the other side holds
    /// DRBD's `RESOLVE_CONFLICTS`).
    pub i_am_lower_id: bool,
    /// `fencing resource-only` / `resource-and-stonith`: no promotion while
    /// disconnected unless the peer is known Outdated; a Primary that loses
    /// its peer's up-to-date copy runs the fence-peer handler.
    pub fencing: bool,
    /// `fencing resource-and-stonith`: I/O is frozen (DRBD's `susp_fen`)
    /// from the loss of the peer until the handler outdated or fenced it.
    #[serde(default)]
    pub stonith: bool,
    /// Seed of the generator of new UUIDs (the runtime seeds it randomly).
    pub seed: u64,
}

/// Local data found on attach (from the metadata).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attached {
    pub uuids: Uuids,
    pub disk: DiskState,
    pub bits_set: u64,
    pub crashed_primary: bool,
    /// MDF_PEER_OUT_DATED: the peer's copy was known Outdated when the
    /// metadata was last written (a fence-peer handler outdated it): a
    /// restart keeps it, so promoting after a crash needs no handler.
    pub peer_outdated: bool,
}

/// What a node reports at connect (DRBD's P_UUIDS + P_STATE + P_SIZES).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Params {
    pub uuids: Uuids,
    pub role: Role,
    pub disk: DiskState,
    pub bits_set: u64,
    pub crashed_primary: bool,
    pub discard_my_data: bool,
}

/// Messages to the peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Msg {
    /// Sent on connect (and again on re-handshake after attach).
    ReportParams(Params),
    /// Role or disk changed (DRBD's P_STATE).
    State { role: Role, disk: DiskState },
    /// Our UUIDs changed while connected (P_UUIDS, as `drbd_set_role`
    /// sends after a new current UUID).
    Uuids(Uuids),
    /// The sync source's new bitmap UUID (P_SYNC_UUID).
    SyncUuid(u64),
    /// invalidate / invalidate-remote: start a full resync.
    FullResync { sender_is_source: bool },
    /// Resync the blocks marked in the bitmaps (after online verify).
    BitmapResync { sender_is_source: bool },
}

/// Observable changes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Event {
    Conn {
        from: ConnState,
        to: ConnState,
    },
    Role {
        from: Role,
        to: Role,
    },
    Disk {
        from: DiskState,
        to: DiskState,
    },
    PeerRole(Role),
    PeerDisk(DiskState),
    /// A new current UUID (new data generation).
    NewCurrentUuid(u64),
    /// `uuid_compare()=<decision> by rule <rule>` after the handshake.
    Handshake {
        rule: u32,
        decision: Decision,
    },
    /// Split brain detected (both sides' changes: bits set in the bitmaps).
    /// `recovered`: None = unresolved, the connection is dropped.
    SplitBrain {
        my_changes: u64,
        peer_changes: u64,
        recovered: Option<SbRecovery>,
    },
    /// The handshake dropped the connection (not a split brain).
    HandshakeFailed(String),
    SyncStarted {
        source: bool,
        full: bool,
        bits: u64,
    },
    SyncProgress {
        done: u64,
        total: u64,
    },
    SyncFinished {
        source: bool,
    },
    /// The fence-peer handler returned `code` ([`FenceOutcome`]); `resumed`:
    /// frozen I/O thawed.
    FencePeer {
        code: Option<u8>,
        outcome: FenceOutcome,
        resumed: bool,
    },
    /// I/O frozen (`resource-and-stonith`: the peer was lost while this
    /// node is Primary) or thawed.
    Suspended(bool),
}

/// [`Resource::outdate_refusal`] of a Primary.
pub const REFUSE_OUTDATE_PRIMARY: &str = "Refusing to outdate a Primary";
/// [`Resource::outdate_refusal`] of a copy with writes made without the peer.
pub const REFUSE_OUTDATE_NEWER: &str =
    "Refusing to be Outdated: this disk holds writes made without the peer";

/// What a fence-peer handler's exit code means (DRBD 8.4
/// `conn_try_outdate_peer`, drbd_nl.c).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum FenceOutcome {
    /// 3: the peer's disk is Inconsistent or worse.
    PeerInconsistent,
    /// 4: the peer got outdated (or already was).
    PeerOutdated,
    /// 5 with UpToDate data here: the peer is unreachable, assumed dead.
    PeerDeadAssumed,
    /// 5 without UpToDate data here: nothing is changed.
    PeerUnreachable,
    /// 6: the peer is Primary: this node outdates itself.
    PeerPrimary,
    /// 7: the peer was STONITHed.
    PeerFenced,
    /// Any other code, or the handler could not run: nothing is known;
    /// frozen I/O stays frozen (`hbctl disk resume-io` thaws it).
    Failed,
}

impl FenceOutcome {
    /// The meaning of a fence-peer exit code; `up_to_date`: this node's
    /// disk is UpToDate (decides 5). `None`: the handler did not run.
    pub fn of(code: Option<u8>, up_to_date: bool) -> FenceOutcome {
        match code {
            Some(3) => FenceOutcome::PeerInconsistent,
            Some(4) => FenceOutcome::PeerOutdated,
            Some(5) if up_to_date => FenceOutcome::PeerDeadAssumed,
            Some(5) => FenceOutcome::PeerUnreachable,
            Some(6) => FenceOutcome::PeerPrimary,
            Some(7) => FenceOutcome::PeerFenced,
            _ => FenceOutcome::Failed,
        }
    }

    /// DRBD's log text for it.
    pub fn as_str(self) -> &'static str {
        match self {
            FenceOutcome::PeerInconsistent => "peer is inconsistent or worse",
            FenceOutcome::PeerOutdated => "peer was fenced (outdated)",
            FenceOutcome::PeerDeadAssumed => "peer is unreachable, assumed to be dead",
            FenceOutcome::PeerUnreachable => {
                "peer unreachable, doing nothing since disk != UpToDate"
            }
            FenceOutcome::PeerPrimary => "peer is Primary or holds newer writes: outdating myself",
            FenceOutcome::PeerFenced => "peer was stonithed",
            FenceOutcome::Failed => "fence-peer helper failed",
        }
    }
}

/// What the runtime must do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Output {
    Send(Msg),
    Event(Event),
    /// Exchange bitmaps with the peer (setting every bit first if `full`),
    /// then feed [`Input::BitmapExchanged`].
    ExchangeBitmap {
        full: bool,
    },
    /// Write the UUIDs to the metadata.
    PersistUuids(Uuids),
    /// Run the fence-peer handler (or the built-in outdater), then feed
    /// [`Input::FencePeerDone`] with its exit code.
    FencePeer,
}

/// Inputs: transport happenings, peer messages, resync progress, commands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Input {
    /// `drbdadm connect`: StandAlone -> WFConnection.
    Connect,
    /// `drbdadm disconnect`: -> StandAlone.
    Disconnect,
    /// The transport connected: -> WFReportParams, our params are sent.
    TransportUp,
    /// The transport broke: -> WFConnection.
    TransportLost,
    Peer(Msg),
    /// The bitmaps are exchanged: `bits` out of sync.
    BitmapExchanged {
        bits: u64,
    },
    /// Resync progress: bits done.
    SyncProgress(u64),
    SyncDone,
    /// Local writes while not connected set this many bits.
    BitsSet(u64),
    /// The fence-peer handler (or an operator) outdated the peer.
    PeerOutdated,
    /// The fence-peer handler returned (`None`: it could not be run).
    FencePeerDone {
        code: Option<u8>,
    },
    /// `hbctl disk resume-io` (drbdadm resume-io): thaw I/O frozen by
    /// `resource-and-stonith` although the peer is not known outdated.
    ResumeIo,
    Promote {
        force: bool,
    },
    Demote,
    Attach(Attached),
    Detach,
    /// `connect --discard-my-data`: this side becomes sync target in a
    /// split brain at the next connect.
    DiscardMyData,
    /// `drbdadm outdate`: mark the local data Outdated (Secondary only).
    Outdate,
    Invalidate,
    InvalidateRemote,
    /// Resync what the bitmaps mark, from this node (online verify found
    /// differences; DRBD leaves that to a disconnect/connect). Refused when
    /// the peer is Primary: a Primary is never SyncTarget.
    ResyncFromHere,
    /// Resync what the bitmaps mark, from the peer (verify ran on a
    /// Secondary whose peer is Primary). Refused on a Primary.
    ResyncFromPeer,
    PauseSync,
    ResumeSync,
    /// A local write failed and the disk stays attached (`on-io-error
    /// pass_on`): on a Secondary the data is no longer consistent (DRBD's
    /// `__drbd_chk_io_error_` sets D_INCONSISTENT), so it is never promoted
    /// or taken as a sync source until a resync from the peer repairs it.
    LocalIoError,
}

/// Why a promotion is refused under `fencing` (DRBD's SS_PRIMARY_NOP
/// text, then what is missing and the way out).
pub const FENCING_REFUSAL: &str = "Refusing to be Primary while peer is not outdated \
     (fencing): the peer is not known to be Outdated and no fence-peer handler ran; \
     use --force if you know the peer is down and outdated";

/// DRBD's SS_CONNECTED_OUTDATES.
pub const OUTDATE_CONNECTED: &str = "Refusing to be Outdated while Connected";

/// The state machine of one resource.
#[derive(Debug, Clone)]
pub struct Resource {
    cfg: ResourceConfig,
    role: Role,
    disk: DiskState,
    conn: ConnState,
    peer_role: Role,
    peer_disk: DiskState,
    uuids: Uuids,
    /// The peer's UUIDs as of the handshake (corrected as DRBD does).
    peer_uuids: Option<Uuids>,
    bits_set: u64,
    crashed_primary: bool,
    discard_my_data: bool,
    /// I/O frozen until the peer is fenced (DRBD's `susp_fen`).
    suspended: bool,
    /// A fence-peer handler runs (one at a time, as DRBD).
    fence_running: bool,
    sync_total: u64,
    pending_full: bool,
    rng: crate::rng::SplitMix64,
    outputs: Vec<Output>,
}

impl Resource {
    /// A Secondary, StandAlone resource, Diskless unless `local` is given.
    pub fn new(cfg: ResourceConfig, local: Option<Attached>) -> Resource {
        let mut r = Resource {
            cfg,
            role: Role::Secondary,
            disk: DiskState::Diskless,
            conn: ConnState::StandAlone,
            peer_role: Role::Unknown,
            peer_disk: DiskState::DUnknown,
            uuids: Uuids::default(),
            peer_uuids: None,
            bits_set: 0,
            crashed_primary: false,
            discard_my_data: false,
            suspended: false,
            fence_running: false,
            sync_total: 0,
            pending_full: false,
            rng: crate::rng::SplitMix64::new(cfg.seed),
            outputs: Vec::new(),
        };
        if let Some(a) = local {
            r.uuids = a.uuids;
            r.disk = a.disk;
            r.bits_set = a.bits_set;
            r.crashed_primary = a.crashed_primary;
            if a.peer_outdated {
                r.peer_disk = DiskState::Outdated;
            }
        }
        r
    }

    /// `adjust`: a changed configuration (fencing, after-sb policies)
    /// applies from now on; the UUID generator keeps its state.
    pub fn set_config(&mut self, cfg: ResourceConfig) {
        self.cfg = ResourceConfig {
            seed: self.cfg.seed,
            ..cfg
        };
    }

    pub fn config(&self) -> ResourceConfig {
        self.cfg
    }

    pub fn role(&self) -> Role {
        self.role
    }
    pub fn disk(&self) -> DiskState {
        self.disk
    }
    pub fn conn(&self) -> ConnState {
        self.conn
    }
    pub fn peer_role(&self) -> Role {
        self.peer_role
    }
    pub fn peer_disk(&self) -> DiskState {
        self.peer_disk
    }
    pub fn uuids(&self) -> Uuids {
        self.uuids
    }

    /// Why this copy refuses to be outdated at its peer's request (the
    /// peer's fence-peer handler, heartbeat's dopd), if it does: a Primary
    /// never is (DRBD's rule); nor, since the issue 13 campaign (seed
    /// 2201), a copy holding writes made without the peer, which the peer
    /// would otherwise promote over (its own copy is the older one).
    pub fn outdate_refusal(&self) -> Option<&'static str> {
        if self.role == Role::Primary {
            Some(REFUSE_OUTDATE_PRIMARY)
        } else if self.disk >= DiskState::Consistent && self.uuids.wrote_without_peer() {
            Some(REFUSE_OUTDATE_NEWER)
        } else {
            None
        }
    }
    pub fn bits_set(&self) -> u64 {
        self.bits_set
    }
    pub fn discard_my_data(&self) -> bool {
        self.discard_my_data
    }
    /// I/O is frozen (`resource-and-stonith`, the peer not yet fenced).
    pub fn suspended(&self) -> bool {
        self.suspended
    }
    /// A promotion now needs the fence-peer handler first (DRBD's
    /// SS_PRIMARY_NOP, which `drbd_set_role` answers by running it).
    pub fn promotion_needs_fencing(&self) -> bool {
        self.cfg.fencing
            && self.conn < ConnState::Connected
            && self.peer_disk >= DiskState::DUnknown
    }

    pub fn take_outputs(&mut self) -> Vec<Output> {
        std::mem::take(&mut self.outputs)
    }

    /// The params this node reports.
    pub fn params(&self) -> Params {
        Params {
            uuids: self.uuids,
            role: self.role,
            disk: self.disk,
            bits_set: self.bits_set,
            crashed_primary: self.crashed_primary,
            discard_my_data: self.discard_my_data,
        }
    }

    /// Apply one input. Commands that DRBD would refuse return
    /// `Err(why)` and change nothing.
    pub fn handle(&mut self, input: Input) -> Result<(), Refused> {
        match input {
            Input::Connect => {
                if self.conn != ConnState::StandAlone {
                    return Err(Refused::HasNetConfig);
                }
                self.set_conn(ConnState::WFConnection);
            }
            Input::Disconnect => {
                if self.conn != ConnState::StandAlone {
                    self.lose_peer();
                    self.set_conn(ConnState::StandAlone);
                }
            }
            Input::TransportUp => {
                if self.conn == ConnState::WFConnection || self.conn == ConnState::Unconnected {
                    self.set_conn(ConnState::WFReportParams);
                    self.send(Msg::ReportParams(self.params()));
                }
            }
            Input::TransportLost => {
                if self.conn > ConnState::WFConnection {
                    self.lose_peer();
                    self.set_conn(ConnState::WFConnection);
                }
            }
            Input::Peer(msg) => self.on_msg(msg),
            Input::BitmapExchanged { bits } => self.on_bitmap_exchanged(bits),
            Input::SyncProgress(done) => {
                if self.in_sync() {
                    self.bits_set = self.sync_total.saturating_sub(done);
                    self.event(Event::SyncProgress {
                        done,
                        total: self.sync_total,
                    });
                }
            }
            Input::SyncDone => self.on_sync_done(),
            Input::BitsSet(n) => self.bits_set = n,
            Input::PeerOutdated => {
                if self.conn < ConnState::Connected {
                    self.set_peer_disk(DiskState::Outdated);
                    self.set_suspended(false);
                }
            }
            Input::FencePeerDone { code } => self.fence_peer_done(code)?,
            Input::ResumeIo => self.set_suspended(false),
            Input::Promote { force } => self.promote(force)?,
            Input::Demote => {
                if self.role == Role::Primary {
                    // Frozen I/O stays frozen: writes held since the loss
                    // are acknowledged only once the peer is fenced.
                    self.set_role(Role::Secondary);
                    self.uuids.set_current(self.uuids.current, false);
                    self.persist();
                    self.send_state();
                }
            }
            Input::Attach(a) => {
                if self.disk != DiskState::Diskless {
                    return Err(Refused::Attached);
                }
                self.uuids = a.uuids;
                self.bits_set = a.bits_set;
                self.crashed_primary = a.crashed_primary;
                self.set_disk(a.disk);
                if a.peer_outdated && self.conn < ConnState::Connected {
                    self.set_peer_disk(DiskState::Outdated);
                }
                if self.conn >= ConnState::Connected {
                    // Re-handshake with the data we now have.
                    self.set_conn(ConnState::WFReportParams);
                    self.send(Msg::ReportParams(self.params()));
                }
            }
            Input::Detach => {
                if self.disk == DiskState::Diskless {
                    return Ok(());
                }
                if self.role == Role::Primary
                    && !(self.conn >= ConnState::Connected && self.peer_disk == DiskState::UpToDate)
                {
                    return Err(Refused::NoUpToDateData);
                }
                if self.in_sync() || self.in_wf_bitmap() {
                    self.set_conn(ConnState::Connected);
                }
                self.set_disk(DiskState::Diskless);
                self.send_state();
            }
            Input::DiscardMyData => self.discard_my_data = true,
            Input::Outdate => {
                if self.role == Role::Primary {
                    return Err(Refused::OutdatePrimary);
                }
                // SS_CONNECTED_OUTDATES: a connected peer would go on
                // replicating to an Outdated disk, and a later loss keeps
                // it Outdated with no new data generation on the Primary:
                // the next handshake would see equal UUIDs and resync
                // nothing (found by disk::sim with fencing).
                if self.conn >= ConnState::Connected && self.disk != DiskState::Outdated {
                    return Err(Refused::OutdateConnected);
                }
                if self.disk < DiskState::Outdated {
                    return Err(Refused::LocalDisk(self.disk));
                }
                if self.disk != DiskState::Outdated {
                    self.set_disk(DiskState::Outdated);
                    self.send_state();
                }
            }
            Input::Invalidate => self.invalidate()?,
            Input::InvalidateRemote => self.invalidate_remote()?,
            Input::ResyncFromHere => {
                if self.conn != ConnState::Connected {
                    return Err(Refused::NotConnected);
                }
                if self.disk != DiskState::UpToDate {
                    return Err(Refused::NoUpToDateData);
                }
                if self.peer_role == Role::Primary {
                    return Err(Refused::PeerMustBeSource);
                }
                self.send(Msg::BitmapResync {
                    sender_is_source: true,
                });
                self.begin_bitmap(true, false);
            }
            Input::ResyncFromPeer => {
                if self.conn != ConnState::Connected {
                    return Err(Refused::NotConnected);
                }
                if self.role == Role::Primary {
                    return Err(Refused::TargetIsPrimary);
                }
                if self.peer_disk != DiskState::UpToDate || self.disk == DiskState::Diskless {
                    return Err(Refused::NoUpToDateData);
                }
                self.send(Msg::BitmapResync {
                    sender_is_source: false,
                });
                self.begin_bitmap(false, false);
            }
            Input::LocalIoError => {
                // A Primary keeps serving (its application got the error);
                // the bit set for the block says what the peer must resync.
                if self.role != Role::Primary && self.disk > DiskState::Inconsistent {
                    self.set_disk(DiskState::Inconsistent);
                    self.send_state();
                }
            }
            Input::PauseSync => match self.conn {
                ConnState::SyncSource => self.set_conn(ConnState::PausedSyncS),
                ConnState::SyncTarget => self.set_conn(ConnState::PausedSyncT),
                _ => {}
            },
            Input::ResumeSync => match self.conn {
                ConnState::PausedSyncS => self.set_conn(ConnState::SyncSource),
                ConnState::PausedSyncT => self.set_conn(ConnState::SyncTarget),
                _ => {}
            },
        }
        Ok(())
    }

    /// Ask the runtime for the fence-peer handler, unless one runs.
    fn start_fence(&mut self) {
        if !self.fence_running {
            self.fence_running = true;
            self.outputs.push(Output::FencePeer);
        }
    }

    /// The fence-peer handler's exit code, as DRBD 8.4's
    /// `conn_try_outdate_peer`. A result that arrives after the peer came
    /// back changes nothing (the handshake knows better).
    fn fence_peer_done(&mut self, code: Option<u8>) -> Result<(), Refused> {
        self.fence_running = false;
        let outcome = FenceOutcome::of(code, self.disk == DiskState::UpToDate);
        if self.conn >= ConnState::WFReportParams {
            self.event(Event::FencePeer {
                code,
                outcome,
                resumed: false,
            });
            return Ok(());
        }
        let mut result = Ok(());
        match outcome {
            FenceOutcome::PeerInconsistent => self.set_peer_disk(DiskState::Inconsistent),
            FenceOutcome::PeerOutdated
            | FenceOutcome::PeerDeadAssumed
            | FenceOutcome::PeerFenced => self.set_peer_disk(DiskState::Outdated),
            FenceOutcome::PeerUnreachable | FenceOutcome::Failed => {}
            FenceOutcome::PeerPrimary => {
                // "Peer is primary, outdating myself." A Primary cannot be
                // outdated (DRBD's state change fails the same way).
                if self.role == Role::Primary {
                    result = Err(Refused::FencePeerPrimary);
                } else if self.disk > DiskState::Outdated {
                    self.set_disk(DiskState::Outdated);
                }
            }
        }
        let fenced = matches!(
            self.peer_disk,
            DiskState::Inconsistent | DiskState::Outdated
        );
        // sanitize_state: Consistent data whose peer is Outdated is the
        // newest there is (as Local::open decides at attach).
        if self.peer_disk == DiskState::Outdated && self.disk == DiskState::Consistent {
            self.set_disk(DiskState::UpToDate);
        }
        let resumed = self.suspended && fenced;
        if resumed {
            self.set_suspended(false);
        }
        self.event(Event::FencePeer {
            code,
            outcome,
            resumed,
        });
        result
    }

    fn set_suspended(&mut self, to: bool) {
        if self.suspended != to {
            self.suspended = to;
            self.event(Event::Suspended(to));
        }
    }

    fn new_current(&mut self) {
        let fresh = self.fresh();
        self.uuids.new_current(fresh, self.role == Role::Primary);
        self.event(Event::NewCurrentUuid(self.uuids.current));
    }

    /// A fresh UUID: never 0 or UUID_JUST_CREATED (ignoring the low bit).
    fn fresh(&mut self) -> u64 {
        loop {
            let z = self.rng.next_u64();
            let z = z & !1;
            if z != 0 && z != uuid::UUID_JUST_CREATED {
                return z;
            }
        }
    }

    fn in_sync(&self) -> bool {
        matches!(
            self.conn,
            ConnState::SyncSource
                | ConnState::SyncTarget
                | ConnState::PausedSyncS
                | ConnState::PausedSyncT
        )
    }

    fn in_wf_bitmap(&self) -> bool {
        matches!(self.conn, ConnState::WFBitMapS | ConnState::WFBitMapT)
    }

    fn send(&mut self, m: Msg) {
        self.outputs.push(Output::Send(m));
    }

    fn send_state(&mut self) {
        if self.conn >= ConnState::Connected {
            self.send(Msg::State {
                role: self.role,
                disk: self.disk,
            });
        }
    }

    fn persist(&mut self) {
        self.outputs.push(Output::PersistUuids(self.uuids));
    }

    fn event(&mut self, e: Event) {
        self.outputs.push(Output::Event(e));
    }

    fn set_conn(&mut self, to: ConnState) {
        if self.conn != to {
            let from = self.conn;
            self.conn = to;
            self.event(Event::Conn { from, to });
            self.resume_if_peer_has_it();
        }
    }

    /// after_state_ch "the connection was established again" (DRBD then
    /// resends the frozen requests): frozen I/O resumes once the peer
    /// holds what was written meanwhile, i.e. Connected to an UpToDate
    /// peer (after the handshake, or after the resync from here). Earlier
    /// the peer, still UpToDate while waiting for the bitmaps, could be
    /// promoted without writes acknowledged here (found by disk::sim).
    fn resume_if_peer_has_it(&mut self) {
        if self.suspended
            && self.conn == ConnState::Connected
            && self.peer_disk == DiskState::UpToDate
        {
            self.set_suspended(false);
        }
    }

    fn set_role(&mut self, to: Role) {
        if self.role != to {
            let from = self.role;
            self.role = to;
            self.event(Event::Role { from, to });
        }
    }

    fn set_disk(&mut self, to: DiskState) {
        if self.disk != to {
            let from = self.disk;
            self.disk = to;
            self.event(Event::Disk { from, to });
        }
    }

    fn set_peer_role(&mut self, to: Role) {
        if self.peer_role != to {
            self.peer_role = to;
            self.event(Event::PeerRole(to));
        }
    }

    fn set_peer_disk(&mut self, to: DiskState) {
        if self.peer_disk != to {
            self.peer_disk = to;
            self.event(Event::PeerDisk(to));
            self.resume_if_peer_has_it();
        }
    }
}

#[cfg(test)]
mod tests;
