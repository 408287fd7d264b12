//! Generation UUIDs and the connect-time decision, as DRBD 8.4.
//!
//! Followed: DRBD 8.4 `drbd/drbd_receiver.c` (`drbd_uuid_compare`, its
//! rule numbers 10..100 are kept in [`Compared::rule`]; `drbd_sync_handshake`;
//! `drbd_asb_recover_0p/1p/2p`), `drbd/drbd_main.c` (`drbd_uuid_new_current`,
//! `drbd_uuid_set`, `drbd_uuid_set_bm`, `drbd_uuid_move_history`),
//! `drbd/drbd_worker.c` (`drbd_gen_and_send_sync_uuid`,
//! `drbd_resync_finished`), `drbd/drbd_nl.c` (`drbd_set_role`).
//! `drbd_receiver.c` was ported from the LINBIT/drbd-8.4 source; the UUID
//! updates of the other files follow DRBD 8.4's behaviour as described in
//! their comments here, not a line-by-line reading.
//!
//! Conventions kept from DRBD:
//! - The lowest bit of the current UUID is set while the node is Primary
//!   (`__drbd_uuid_set`); every comparison masks it (`& ~1`).
//! - `UUID_JUST_CREATED` (4) is the current UUID of freshly created metadata.
//! - Return values of `drbd_uuid_compare` map to [`Decision`]: 0 NoSync,
//!   1/2 bitmap/full sync source, -1/-2 bitmap/full sync target, 100 split
//!   brain ([`Decision::SplitBrain`], auto-recovery policies apply), -100
//!   split brain related only through history
//!   ([`Decision::SplitBrainAmbiguous`], policies apply only with
//!   `always-asbp`, and then with a full sync), -1000 unrelated.
//!   Protocol-version answers (-1091, -1096) do not exist here: hbd always
//!   speaks the behaviour of protocol 96+.

use super::state::DiskState;
use serde::{Deserialize, Serialize};

/// Current UUID of metadata just written by `create-md`.
pub const UUID_JUST_CREATED: u64 = 4;
/// DRBD's `UUID_NEW_BM_OFFSET`: a sync source derives the new bitmap UUID
/// from the old one by adding this (`drbd_gen_and_send_sync_uuid`).
pub const UUID_NEW_BM_OFFSET: u64 = 0x0001_0000_0000_0000;

const fn m(u: u64) -> u64 {
    u & !1
}

/// The generation identifiers of one node's data (DRBD's `md.uuid[]`:
/// `UI_CURRENT`, `UI_BITMAP`, `UI_HISTORY_START..=UI_HISTORY_END`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Uuids {
    pub current: u64,
    pub bitmap: u64,
    pub history: [u64; 2],
}

impl Uuids {
    /// `drbdadm create-md`: current = `UUID_JUST_CREATED`, everything else 0.
    pub fn created() -> Uuids {
        Uuids {
            current: UUID_JUST_CREATED,
            ..Uuids::default()
        }
    }

    /// This copy started a data generation without its peer (a Primary
    /// that lost the peer, or a promotion while disconnected: the bitmap
    /// UUID holds the generation they shared) and may hold acknowledged
    /// writes the peer lacks. Such a copy refuses to be outdated by the
    /// peer's fence-peer handler (see `Resource::outdate_refusal`).
    pub fn wrote_without_peer(&self) -> bool {
        self.bitmap != 0
    }

    /// `drbd_uuid_move_history`: history[1] = history[0].
    fn move_history(&mut self) {
        self.history[1] = self.history[0];
    }

    /// A new current UUID while the bitmap UUID stays (a SyncSource
    /// Primary that lost its target): the old current goes to history.
    pub fn new_current_keeping_bitmap(&mut self, fresh: u64, primary: bool) {
        self.move_history();
        self.history[0] = self.current & !1;
        self.set_current(fresh, primary);
    }

    /// `__drbd_uuid_set(UI_CURRENT, val)`: the low bit says Primary.
    pub fn set_current(&mut self, val: u64, primary: bool) {
        self.current = if primary { val | 1 } else { val & !1 };
    }

    /// `drbd_uuid_new_current`: a new data generation starts. The current
    /// UUID becomes the bitmap UUID (it keeps its Primary bit, which
    /// `discard-younger/older-primary` read later) and `fresh` becomes
    /// current. DRBD does this when a Primary (with bitmap UUID 0 and
    /// UpToDate data) loses its peer, and on promotion while disconnected or
    /// forced (`drbd_set_role`).
    pub fn new_current(&mut self, fresh: u64, primary: bool) {
        self.bitmap = self.current;
        self.set_current(fresh, primary);
    }

    /// `drbd_uuid_set(UI_BITMAP, val)`: the old non-zero value goes to history.
    fn set_bitmap_with_history(&mut self, val: u64) {
        if self.bitmap != 0 {
            self.move_history();
            self.history[0] = self.bitmap;
        }
        self.bitmap = val;
    }

    /// `drbd_uuid_set_bm`: val 0 retires the bitmap UUID into history;
    /// otherwise sets it (low bit cleared).
    pub fn set_bm(&mut self, val: u64) {
        if self.bitmap == 0 && val == 0 {
            return;
        }
        if val == 0 {
            self.move_history();
            self.history[0] = self.bitmap;
            self.bitmap = 0;
        } else {
            self.bitmap = val & !1;
        }
    }

    /// Resync start on the sync source (`drbd_gen_and_send_sync_uuid`): the
    /// new bitmap UUID is the old one + `UUID_NEW_BM_OFFSET`, or `fresh` when
    /// there was none (or it was `UUID_JUST_CREATED`); the old one goes to
    /// history. Returns the sync UUID to send to the target (`P_SYNC_UUID`).
    pub fn start_resync_source(&mut self, fresh: u64) -> u64 {
        let uuid = if self.bitmap != 0 && self.bitmap != UUID_JUST_CREATED {
            self.bitmap.wrapping_add(UUID_NEW_BM_OFFSET)
        } else {
            fresh
        };
        self.set_bitmap_with_history(uuid);
        uuid
    }

    /// Resync start on the sync target (`receive_sync_uuid`): current = the
    /// sync UUID, bitmap = 0.
    pub fn start_resync_target(&mut self, sync_uuid: u64) {
        self.set_current(sync_uuid, false);
        self.bitmap = 0;
    }

    /// Resync finished on the sync source (`drbd_resync_finished`:
    /// `drbd_uuid_set_bm(0)`): the bitmap UUID moves into history.
    pub fn finish_resync(&mut self) {
        self.set_bm(0);
    }

    /// Resync finished on the sync target (`drbd_resync_finished`): adopt
    /// the peer's UUIDs as they were at the handshake (bitmap and history),
    /// record our own current as bitmap, take the peer's current, then
    /// retire the bitmap UUID as the source does. Both sides end equal.
    pub fn finish_resync_target(&mut self, peer: &Uuids) {
        self.bitmap = peer.bitmap;
        self.history = peer.history;
        let cur = self.current;
        self.set_bitmap_with_history(cur);
        self.current = peer.current & !1;
        self.set_bm(0);
    }

    /// `--force primary` / `--overwrite-data-of-peer` and promotion while
    /// disconnected with bitmap UUID 0 (`drbd_set_role`): a new current UUID.
    pub fn force_primary(&mut self, fresh: u64) {
        self.new_current(fresh, true);
    }
}

/// What a node brings to the handshake (DRBD: `md.uuid`, role,
/// `CRASHED_PRIMARY`, disk state, `comm_bm_set`, `DISCARD_MY_DATA`; the
/// peer's as `p_uuid[]` including `UI_SIZE` and `UI_FLAGS`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Side {
    pub uuids: Uuids,
    pub primary: bool,
    /// Was Primary when it last went down uncleanly (`MDF_CRASHED_PRIMARY`).
    pub crashed_primary: bool,
    pub disk: DiskState,
    /// Bits set in the bitmap: blocks changed since the generations split
    /// (DRBD's `comm_bm_set`, the peer's `p_uuid[UI_SIZE]`); the
    /// `discard-*-changes` policies compare these.
    pub bits_set: u64,
    /// `connect --discard-my-data` (the peer's `UI_FLAGS & 1`).
    pub discard_my_data: bool,
}

/// The connect-time decision (return value of `drbd_uuid_compare`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Decision {
    /// 0
    NoSync,
    /// 1
    BitmapSyncSource,
    /// -1
    BitmapSyncTarget,
    /// 2
    FullSyncSource,
    /// -2
    FullSyncTarget,
    /// 100: both have a (different) bitmap UUID from the same generation.
    SplitBrain,
    /// -100: related only through the history UUIDs.
    SplitBrainAmbiguous,
    /// -1000
    Unrelated,
}

impl Decision {
    /// DRBD's integer (`hg`).
    pub fn hg(self) -> i32 {
        match self {
            Decision::NoSync => 0,
            Decision::BitmapSyncSource => 1,
            Decision::BitmapSyncTarget => -1,
            Decision::FullSyncSource => 2,
            Decision::FullSyncTarget => -2,
            Decision::SplitBrain => 100,
            Decision::SplitBrainAmbiguous => -100,
            Decision::Unrelated => -1000,
        }
    }

    fn from_hg(hg: i32) -> Decision {
        match hg {
            0 => Decision::NoSync,
            1 => Decision::BitmapSyncSource,
            -1 => Decision::BitmapSyncTarget,
            2 => Decision::FullSyncSource,
            -2 => Decision::FullSyncTarget,
            100 => Decision::SplitBrain,
            -100 => Decision::SplitBrainAmbiguous,
            _ => Decision::Unrelated,
        }
    }

    /// Some(true) sync source, Some(false) sync target, None otherwise.
    pub fn i_am_source(self) -> Option<bool> {
        match self {
            Decision::BitmapSyncSource | Decision::FullSyncSource => Some(true),
            Decision::BitmapSyncTarget | Decision::FullSyncTarget => Some(false),
            _ => None,
        }
    }

    pub fn is_full(self) -> bool {
        matches!(self, Decision::FullSyncSource | Decision::FullSyncTarget)
    }
}

/// Result of [`compare_rule`]: the decision, DRBD's rule number, and the
/// UUID sets after DRBD's self-corrections (rules 34, 35, 51, 71 repair
/// UUIDs when a resync-finished or sync-UUID update was lost).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Compared {
    pub decision: Decision,
    pub rule: u32,
    pub me: Uuids,
    pub peer: Uuids,
}

/// `drbd_uuid_compare`. `resolve_conflicts` is DRBD's `RESOLVE_CONFLICTS`
/// connection flag: set on exactly one side, that side yields in ties.
pub fn compare(
    me: &Uuids,
    peer: &Uuids,
    me_crashed_primary: bool,
    peer_crashed_primary: bool,
    resolve_conflicts: bool,
) -> Decision {
    compare_rule(
        me,
        peer,
        me_crashed_primary,
        peer_crashed_primary,
        resolve_conflicts,
    )
    .decision
}

/// [`compare`] with the rule number and corrected UUIDs.
pub fn compare_rule(
    me: &Uuids,
    peer: &Uuids,
    me_crashed_primary: bool,
    peer_crashed_primary: bool,
    resolve_conflicts: bool,
) -> Compared {
    let mut me = *me;
    let mut peer = *peer;
    let (hg, rule) = compare_inner(
        &mut me,
        &mut peer,
        me_crashed_primary,
        peer_crashed_primary,
        resolve_conflicts,
    );
    Compared {
        decision: Decision::from_hg(hg),
        rule,
        me,
        peer,
    }
}

fn compare_inner(
    me: &mut Uuids,
    p: &mut Uuids,
    me_crashed: bool,
    peer_crashed: bool,
    resolve_conflicts: bool,
) -> (i32, u32) {
    let s = m(me.current);
    let pc = m(p.current);

    // Rule 10: both just created: nothing to sync.
    if s == UUID_JUST_CREATED && pc == UUID_JUST_CREATED {
        return (0, 10);
    }
    // Rule 20: I am just created (or have no UUID): full sync from the peer.
    if (s == UUID_JUST_CREATED || s == 0) && pc != UUID_JUST_CREATED {
        return (-2, 20);
    }
    // Rule 30: the peer is just created: full sync to it.
    if s != UUID_JUST_CREATED && (pc == UUID_JUST_CREATED || pc == 0) {
        return (2, 30);
    }

    if s == pc {
        // Rules 34/36: same current, I still have a bitmap UUID, the peer
        // has none: I was sync source and missed (34) or the peer failed to
        // write (36) the resync-finished update.
        if p.bitmap == 0 && me.bitmap != 0 {
            if m(me.bitmap) == m(p.history[0]) && m(me.history[0]) == m(p.history[1]) {
                // "was SyncSource, missed the resync finished event, corrected myself"
                me.move_history();
                me.history[0] = me.bitmap;
                me.bitmap = 0;
                return (1, 34);
            }
            return (1, 36);
        }
        // Rules 35/37: the mirror image: I was sync target.
        if me.bitmap == 0 && p.bitmap != 0 {
            if m(me.history[0]) == m(p.bitmap) && m(me.history[1]) == m(p.history[0]) {
                // "was SyncTarget, peer missed the resync finished event, corrected peer"
                p.history[1] = p.history[0];
                p.history[0] = p.bitmap;
                p.bitmap = 0;
                return (-1, 35);
            }
            return (-1, 37);
        }
        // Rule 40: common power failure. A crashed Primary resyncs its
        // activity log to the peer; both crashed Primaries: the conflict
        // flag decides.
        let rct = u8::from(me_crashed) + 2 * u8::from(peer_crashed);
        return match rct {
            0 => (0, 40),
            1 => (1, 40),
            2 => (-1, 40),
            _ => (if resolve_conflicts { -1 } else { 1 }, 40),
        };
    }

    // Rule 50: the peer's bitmap UUID is my current: the peer changed data
    // since we split and tracked it in its bitmap: I am sync target.
    if s == m(p.bitmap) {
        return (-1, 50);
    }

    // Rule 51: the peer's history[0] is my current, and the peer's bitmap
    // is that + UUID_NEW_BM_OFFSET: the last P_SYNC_UUID did not get
    // through. Undo the peer's start-of-resync changes; I am sync target.
    let ph0 = m(p.history[0]);
    if s == ph0 && ph0.wrapping_add(UUID_NEW_BM_OFFSET) == m(p.bitmap) {
        p.bitmap = p.history[0];
        p.history[0] = p.history[1];
        return (-1, 51);
    }

    // Rule 60: my current is in the peer's history: full sync from the peer.
    if p.history.iter().any(|&h| m(h) == s) {
        return (-2, 60);
    }

    // Rule 70: my bitmap UUID is the peer's current: I am sync source.
    if m(me.bitmap) == pc {
        return (1, 70);
    }

    // Rule 71: the mirror image of rule 51 on my own UUIDs.
    let sh0 = m(me.history[0]);
    if sh0 == pc && sh0.wrapping_add(UUID_NEW_BM_OFFSET) == m(me.bitmap) {
        me.bitmap = me.history[0];
        me.history[0] = me.history[1];
        return (1, 71);
    }

    // Rule 80: the peer's current is in my history: full sync to the peer.
    if me.history.iter().any(|&h| m(h) == pc) {
        return (2, 80);
    }

    // Rule 90: both have the same (non-zero) bitmap UUID but different
    // currents: both changed data since the split. Split brain; the
    // after-sb policies may resolve it.
    if m(me.bitmap) == m(p.bitmap) && m(me.bitmap) != 0 {
        return (100, 90);
    }

    // Rule 100: related only through history: split brain, resolved
    // automatically only with always-asbp.
    for &a in &me.history {
        for &b in &p.history {
            if m(a) == m(b) {
                return (-100, 100);
            }
        }
    }

    (-1000, 100)
}

/// `after-sb-0pri`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AfterSb0 {
    #[default]
    Disconnect,
    DiscardZeroChanges,
    DiscardLeastChanges,
    DiscardYoungerPrimary,
    DiscardOlderPrimary,
}

/// `after-sb-1pri`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AfterSb1 {
    #[default]
    Disconnect,
    Consensus,
    DiscardSecondary,
}

/// `after-sb-2pri`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AfterSb2 {
    #[default]
    Disconnect,
}

/// The `net` section's split-brain policies (DRBD defaults: all disconnect).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct SbPolicy {
    pub after_sb_0pri: AfterSb0,
    pub after_sb_1pri: AfterSb1,
    pub after_sb_2pri: AfterSb2,
    /// `always-asbp`: apply the policies also to rule-100 split brains.
    pub always_asbp: bool,
}

/// `drbd_asb_recover_0p` as an integer: 1 I am source, -1 I am target,
/// -100 no decision. `resolve_conflicts`: see [`compare`].
fn asb_0p(policy: AfterSb0, me: &Side, peer: &Side, resolve_conflicts: bool) -> i32 {
    let self_pri = me.uuids.bitmap & 1;
    let peer_pri = peer.uuids.bitmap & 1;
    let (ch_self, ch_peer) = (me.bits_set, peer.bits_set);
    let tie = if resolve_conflicts { -1 } else { 1 };
    let least = || {
        if ch_self < ch_peer {
            -1
        } else if ch_self > ch_peer {
            1
        } else {
            tie
        }
    };
    let zero = || {
        if ch_peer == 0 && ch_self == 0 {
            Some(tie)
        } else if ch_peer == 0 {
            Some(1)
        } else if ch_self == 0 {
            Some(-1)
        } else {
            None
        }
    };
    match policy {
        AfterSb0::Disconnect => -100,
        AfterSb0::DiscardZeroChanges => zero().unwrap_or(-100),
        // DRBD falls through younger -> older -> zero-changes -> least-changes.
        AfterSb0::DiscardYoungerPrimary | AfterSb0::DiscardOlderPrimary => {
            let younger = policy == AfterSb0::DiscardYoungerPrimary;
            match (self_pri, peer_pri) {
                // I was Primary at the split (older), the peer became one later.
                (1, 0) => {
                    if younger {
                        1
                    } else {
                        -1
                    }
                }
                (0, 1) => {
                    if younger {
                        -1
                    } else {
                        1
                    }
                }
                // "Discard younger/older primary did not find a decision,
                // using discard-least-changes instead" (after zero-changes).
                _ => zero().unwrap_or_else(least),
            }
        }
        AfterSb0::DiscardLeastChanges => least(),
    }
}

/// After-split-brain recovery (`drbd_asb_recover_0p/1p/2p`), chosen by the
/// number of Primaries. `Some(true)`: I become sync source; `Some(false)`:
/// sync target (my changes are discarded); `None`: no automatic decision
/// (disconnect, StandAlone). `i_am_lower_id` wins ties (the higher id holds
/// DRBD's `RESOLVE_CONFLICTS` flag and yields).
pub fn resolve_split_brain(
    policy: &SbPolicy,
    me: &Side,
    peer: &Side,
    i_am_lower_id: bool,
) -> Option<bool> {
    let rc = !i_am_lower_id;
    let pcount = u8::from(me.primary) + u8::from(peer.primary);
    let hg = match pcount {
        0 => asb_0p(policy.after_sb_0pri, me, peer, rc),
        1 => match policy.after_sb_1pri {
            AfterSb1::Disconnect => -100,
            // Use the 0pri policy's answer only if it discards the Secondary.
            AfterSb1::Consensus => {
                let hg = asb_0p(policy.after_sb_0pri, me, peer, rc);
                if (hg == -1 && !me.primary) || (hg == 1 && me.primary) {
                    hg
                } else {
                    -100
                }
            }
            AfterSb1::DiscardSecondary => {
                if me.primary {
                    1
                } else {
                    -1
                }
            }
        },
        _ => match policy.after_sb_2pri {
            AfterSb2::Disconnect => -100,
        },
    };
    match hg {
        1 => Some(true),
        -1 => Some(false),
        _ => None,
    }
}

/// How a split brain was settled in [`sync_handshake`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum SbRecovery {
    /// By the after-sb policy ("Split-Brain detected, N primaries, automatically solved").
    Auto,
    /// By `--discard-my-data` ("Split-Brain detected, manually solved").
    Manual,
}

/// A successful handshake.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Handshake {
    /// NoSync or one of the four sync decisions.
    pub decision: Decision,
    /// The compare rule.
    pub rule: u32,
    /// The compare's raw answer (before disk states and split-brain handling).
    pub compared: Decision,
    /// Set if a split brain was detected and settled.
    pub split_brain: Option<SbRecovery>,
    /// My UUIDs after DRBD's corrections.
    pub me: Uuids,
    /// The peer's UUIDs after DRBD's corrections.
    pub peer: Uuids,
}

/// Why a handshake drops the connection (DRBD returns `C_MASK`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum HandshakeError {
    /// "Unrelated data, aborting!"
    Unrelated,
    /// "Split-Brain detected but unresolved, dropping connection!"
    SplitBrain,
    /// "I shall become SyncSource, but I am inconsistent!"
    SourceInconsistent,
    /// "I shall become SyncTarget, but I am primary!" (rr-conflict disconnect)
    TargetIsPrimary,
}

impl HandshakeError {
    pub fn message(self) -> &'static str {
        match self {
            HandshakeError::Unrelated => "Unrelated data, aborting!",
            HandshakeError::SplitBrain => {
                "Split-Brain detected but unresolved, dropping connection!"
            }
            HandshakeError::SourceInconsistent => {
                "I shall become SyncSource, but I am inconsistent!"
            }
            HandshakeError::TargetIsPrimary => "I shall become SyncTarget, but I am primary!",
        }
    }
}

/// `drbd_sync_handshake`: compare, then disk states, after-sb policies,
/// `--discard-my-data`, and the final sanity checks.
pub fn sync_handshake(
    me: &Side,
    peer: &Side,
    policy: &SbPolicy,
    i_am_lower_id: bool,
) -> Result<Handshake, HandshakeError> {
    let rc = !i_am_lower_id;
    let c = compare_rule(
        &me.uuids,
        &peer.uuids,
        me.crashed_primary,
        peer.crashed_primary,
        rc,
    );
    let mut hg = c.decision.hg();
    if hg == -1000 {
        return Err(HandshakeError::Unrelated);
    }
    let mydisk = me.disk;
    let peer_disk = peer.disk;
    // "Becoming sync source/target due to disk states."
    if (mydisk == DiskState::Inconsistent && peer_disk > DiskState::Inconsistent)
        || (peer_disk == DiskState::Inconsistent && mydisk > DiskState::Inconsistent)
    {
        let f = hg == -100 || hg.abs() == 2;
        hg = if mydisk > DiskState::Inconsistent {
            1
        } else {
            -1
        };
        if f {
            hg *= 2;
        }
    }
    let mut sb = None;
    // Use the corrected UUIDs for the policies (as DRBD, which corrected in place).
    let me_c = Side { uuids: c.me, ..*me };
    let peer_c = Side {
        uuids: c.peer,
        ..*peer
    };
    if hg == 100 || (hg == -100 && policy.always_asbp) {
        let forced = hg == -100;
        if let Some(src) = resolve_split_brain(policy, &me_c, &peer_c, i_am_lower_id) {
            hg = if src { 1 } else { -1 };
            if forced {
                // "Doing a full sync, since UUIDs where ambiguous."
                hg *= 2;
            }
            sb = Some(SbRecovery::Auto);
        } else {
            hg = -100;
        }
    }
    if hg == -100 {
        if me.discard_my_data && !peer.discard_my_data {
            hg = -1;
        }
        if !me.discard_my_data && peer.discard_my_data {
            hg = 1;
        }
        if hg.abs() < 100 {
            sb = Some(SbRecovery::Manual);
        }
    }
    if hg == -100 {
        return Err(HandshakeError::SplitBrain);
    }
    if hg > 0 && mydisk <= DiskState::Inconsistent {
        return Err(HandshakeError::SourceInconsistent);
    }
    // rr-conflict disconnect (the default).
    if hg < 0 && me.primary && me.disk >= DiskState::Consistent {
        return Err(HandshakeError::TargetIsPrimary);
    }
    Ok(Handshake {
        decision: Decision::from_hg(hg),
        rule: c.rule,
        compared: c.decision,
        split_brain: sb,
        me: c.me,
        peer: c.peer,
    })
}

#[cfg(test)]
mod tests;
