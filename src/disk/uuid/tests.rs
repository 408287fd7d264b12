//! Unit tests of `disk/uuid.rs`.

use super::*;

fn u(current: u64, bitmap: u64, h0: u64, h1: u64) -> Uuids {
    Uuids {
        current,
        bitmap,
        history: [h0, h1],
    }
}

fn side(uuids: Uuids, primary: bool, bits: u64) -> Side {
    Side {
        uuids,
        primary,
        crashed_primary: false,
        disk: DiskState::UpToDate,
        bits_set: bits,
        discard_my_data: false,
    }
}

// Arbitrary example UUIDs (even: the low bit is the Primary flag); each
// test builds the situation that DRBD's rule comments describe.
const A: u64 = 0x6EE1_5D6C_5A7F_0870;
const B: u64 = 0x8A9A_3C1E_3E68_1D04;
const C: u64 = 0x1F7B_F83A_BC33_7E56;
const D: u64 = 0x2C4A_0C2B_A4E8_2E12;
const E: u64 = 0x5A0A_0E4D_33AB_1E80;

fn cmp(me: Uuids, p: Uuids) -> (Decision, u32) {
    let c = compare_rule(&me, &p, false, false, false);
    (c.decision, c.rule)
}

#[test]
fn rule10_both_just_created() {
    let j = Uuids::created();
    assert_eq!(cmp(j, j), (Decision::NoSync, 10));
}

#[test]
fn rule20_30_one_just_created() {
    let j = Uuids::created();
    let d = u(A, 0, B, 0);
    assert_eq!(cmp(j, d), (Decision::FullSyncTarget, 20));
    assert_eq!(cmp(u(0, 0, 0, 0), d), (Decision::FullSyncTarget, 20));
    assert_eq!(cmp(d, j), (Decision::FullSyncSource, 30));
}

#[test]
fn rule40_equal_current_and_crashed_primary() {
    let x = u(A, 0, B, 0);
    // The primary bit does not matter.
    let xp = u(A | 1, 0, B, 0);
    assert_eq!(cmp(x, xp), (Decision::NoSync, 40));
    let c = |mc, pc, rc| compare(&x, &x, mc, pc, rc);
    assert_eq!(c(true, false, false), Decision::BitmapSyncSource);
    assert_eq!(c(false, true, false), Decision::BitmapSyncTarget);
    assert_eq!(c(true, true, false), Decision::BitmapSyncSource);
    assert_eq!(c(true, true, true), Decision::BitmapSyncTarget);
}

#[test]
fn rules34_36_was_sync_source() {
    // I finished a resync as source but my "finished" update was lost.
    let me = u(A, C, B, D);
    let peer = u(A, 0, C, B);
    let r = compare_rule(&me, &peer, false, false, false);
    assert_eq!((r.decision, r.rule), (Decision::BitmapSyncSource, 34));
    assert_eq!(r.me, u(A, 0, C, B));
    let peer2 = u(A, 0, E, 0);
    assert_eq!(cmp(me, peer2), (Decision::BitmapSyncSource, 36));
}

#[test]
fn rules35_37_was_sync_target() {
    let me = u(A, 0, C, B);
    let peer = u(A, C, B, D);
    let r = compare_rule(&me, &peer, false, false, false);
    assert_eq!((r.decision, r.rule), (Decision::BitmapSyncTarget, 35));
    assert_eq!(r.peer, u(A, 0, C, B));
    assert_eq!(cmp(u(A, 0, E, 0), peer), (Decision::BitmapSyncTarget, 37));
}

#[test]
fn rule50_peer_bitmap_is_my_current() {
    // The peer was Primary, lost me, made a new current and kept the
    // old one (mine) as bitmap UUID: bitmap-based resync to me.
    let me = u(A, 0, B, 0);
    let peer = u(C | 1, A | 1, B, 0);
    assert_eq!(cmp(me, peer), (Decision::BitmapSyncTarget, 50));
    // Rule 70 is the mirror image.
    assert_eq!(cmp(peer, me), (Decision::BitmapSyncSource, 70));
}

#[test]
fn rules51_71_lost_sync_uuid() {
    // The peer started a resync as source (bitmap A -> A + offset, A to
    // history) but the sync UUID never reached me.
    let me = u(A, 0, B, 0);
    let peer = u(C, A + UUID_NEW_BM_OFFSET, A, B);
    let r = compare_rule(&me, &peer, false, false, false);
    assert_eq!((r.decision, r.rule), (Decision::BitmapSyncTarget, 51));
    assert_eq!(r.peer, u(C, A, B, B));
    let r = compare_rule(&peer, &me, false, false, false);
    assert_eq!((r.decision, r.rule), (Decision::BitmapSyncSource, 71));
    assert_eq!(r.me, u(C, A, B, B));
}

#[test]
fn rules60_80_history_match_is_full_sync() {
    let me = u(A, 0, B, 0);
    let peer = u(C, 0, D, A);
    assert_eq!(cmp(me, peer), (Decision::FullSyncTarget, 60));
    assert_eq!(cmp(peer, me), (Decision::FullSyncSource, 80));
}

#[test]
fn rule90_split_brain_rule100_ambiguous_and_unrelated() {
    // Both got a new current from the same generation A.
    let me = u(C, A, B, 0);
    let peer = u(D, A | 1, B, 0);
    assert_eq!(cmp(me, peer), (Decision::SplitBrain, 90));
    // Related only through history.
    let me = u(C, E, B, 0);
    let peer = u(D, A, 0, B);
    assert_eq!(cmp(me, peer), (Decision::SplitBrainAmbiguous, 100));
    // Rule 100 compares zeros too (as DRBD): empty history slots match.
    assert_eq!(
        cmp(u(C, 0, B, 0), u(D, A, E, 0)),
        (Decision::SplitBrainAmbiguous, 100)
    );
    let peer = u(D, A, E, E ^ 0x100);
    assert_eq!(cmp(u(C, 0, B, B ^ 0x100), peer), (Decision::Unrelated, 100));
}

#[test]
fn uuid_life_cycle_new_current_resync_finish() {
    // Connected, equal.
    let mut p = u(A | 1, 0, B, 0);
    let mut s = u(A, 0, B, 0);
    // The Primary loses the Secondary: new current, old one as bitmap.
    p.new_current(C, true);
    assert_eq!(p, u(C | 1, A | 1, B, 0));
    let peer_at_handshake = p;
    assert_eq!(
        compare(&s, &p, false, false, false),
        Decision::BitmapSyncTarget
    );
    // Resync: source derives the sync UUID from its bitmap UUID.
    let sync = p.start_resync_source(0x1234);
    assert_eq!(sync, (A | 1) + UUID_NEW_BM_OFFSET);
    assert_eq!(p.history, [A | 1, B]);
    s.start_resync_target(sync);
    assert_eq!(s.bitmap, 0);
    p.finish_resync();
    s.finish_resync_target(&peer_at_handshake);
    assert_eq!(m(s.current), m(p.current));
    assert_eq!(s.bitmap, 0);
    assert_eq!(p.bitmap, 0);
    assert_eq!(compare(&s, &p, false, false, false), Decision::NoSync);
    assert_eq!(m(s.history[0]), m(p.history[0]));
}

#[test]
fn resync_from_just_created_uses_fresh_uuid() {
    let mut p = Uuids::created();
    p.force_primary(A);
    assert_eq!(p, u(A | 1, UUID_JUST_CREATED, 0, 0));
    // UUID_JUST_CREATED as bitmap uuid: the sync uuid is fresh.
    assert_eq!(p.start_resync_source(C), C);
    assert_eq!(p.history[0], UUID_JUST_CREATED);
}

fn sb_sides(me_bits: u64, peer_bits: u64) -> (Side, Side) {
    (
        side(u(C, A, B, 0), false, me_bits),
        side(u(D, A, B, 0), false, peer_bits),
    )
}

#[test]
fn asb_0pri_policies() {
    let pol = |p0| SbPolicy {
        after_sb_0pri: p0,
        ..SbPolicy::default()
    };
    let (me, peer) = sb_sides(10, 3);
    assert_eq!(
        resolve_split_brain(&pol(AfterSb0::Disconnect), &me, &peer, true),
        None
    );
    // least changes: I changed more -> I am source.
    let p = pol(AfterSb0::DiscardLeastChanges);
    assert_eq!(resolve_split_brain(&p, &me, &peer, true), Some(true));
    assert_eq!(resolve_split_brain(&p, &peer, &me, false), Some(false));
    // equal changes: the lower id wins.
    let (me, peer) = sb_sides(5, 5);
    assert_eq!(resolve_split_brain(&p, &me, &peer, true), Some(true));
    assert_eq!(resolve_split_brain(&p, &me, &peer, false), Some(false));
    // zero changes.
    let p = pol(AfterSb0::DiscardZeroChanges);
    let (me, peer) = sb_sides(5, 0);
    assert_eq!(resolve_split_brain(&p, &me, &peer, false), Some(true));
    assert_eq!(resolve_split_brain(&p, &peer, &me, true), Some(false));
    let (me, peer) = sb_sides(5, 7);
    assert_eq!(resolve_split_brain(&p, &me, &peer, true), None);
    let (me, peer) = sb_sides(0, 0);
    assert_eq!(resolve_split_brain(&p, &me, &peer, true), Some(true));
}

#[test]
fn asb_younger_older_primary() {
    // I was Primary at the split (bitmap carries the primary bit); the
    // peer was promoted afterwards: I am the older primary.
    let me = side(u(C, A | 1, B, 0), false, 1);
    let peer = side(u(D, A, B, 0), false, 100);
    let p = |p0| SbPolicy {
        after_sb_0pri: p0,
        ..SbPolicy::default()
    };
    assert_eq!(
        resolve_split_brain(&p(AfterSb0::DiscardYoungerPrimary), &me, &peer, false),
        Some(true)
    );
    assert_eq!(
        resolve_split_brain(&p(AfterSb0::DiscardOlderPrimary), &me, &peer, false),
        Some(false)
    );
    // Neither: falls through to least changes.
    let me = side(u(C, A, B, 0), false, 1);
    assert_eq!(
        resolve_split_brain(&p(AfterSb0::DiscardYoungerPrimary), &me, &peer, false),
        Some(false)
    );
}

#[test]
fn asb_1pri_and_2pri() {
    let (mut me, peer) = sb_sides(1, 100);
    me.primary = true;
    let mut pol = SbPolicy {
        after_sb_1pri: AfterSb1::DiscardSecondary,
        ..SbPolicy::default()
    };
    assert_eq!(resolve_split_brain(&pol, &me, &peer, false), Some(true));
    assert_eq!(resolve_split_brain(&pol, &peer, &me, false), Some(false));
    // consensus: 0pri least-changes would discard the Primary: no.
    pol.after_sb_1pri = AfterSb1::Consensus;
    pol.after_sb_0pri = AfterSb0::DiscardLeastChanges;
    assert_eq!(resolve_split_brain(&pol, &me, &peer, false), None);
    assert_eq!(resolve_split_brain(&pol, &peer, &me, false), None);
    // ... and agrees when it discards the Secondary.
    let (mut me, peer) = sb_sides(100, 1);
    me.primary = true;
    assert_eq!(resolve_split_brain(&pol, &me, &peer, false), Some(true));
    assert_eq!(resolve_split_brain(&pol, &peer, &me, false), Some(false));
    pol.after_sb_1pri = AfterSb1::Disconnect;
    assert_eq!(resolve_split_brain(&pol, &me, &peer, false), None);
    // two primaries: only disconnect.
    let mut peer = peer;
    peer.primary = true;
    pol.after_sb_0pri = AfterSb0::DiscardLeastChanges;
    assert_eq!(resolve_split_brain(&pol, &me, &peer, false), None);
}

#[test]
fn handshake_split_brain_manual_and_auto() {
    let (mut me, mut peer) = sb_sides(3, 9);
    let pol = SbPolicy::default();
    assert_eq!(
        sync_handshake(&me, &peer, &pol, true),
        Err(HandshakeError::SplitBrain)
    );
    me.discard_my_data = true;
    let h = sync_handshake(&me, &peer, &pol, true).unwrap();
    assert_eq!(h.decision, Decision::BitmapSyncTarget);
    assert_eq!(h.split_brain, Some(SbRecovery::Manual));
    let h = sync_handshake(&peer, &me, &pol, false).unwrap();
    assert_eq!(h.decision, Decision::BitmapSyncSource);
    // Both discard: unresolved.
    peer.discard_my_data = true;
    assert_eq!(
        sync_handshake(&me, &peer, &pol, true),
        Err(HandshakeError::SplitBrain)
    );
    // Auto.
    me.discard_my_data = false;
    peer.discard_my_data = false;
    let pol = SbPolicy {
        after_sb_0pri: AfterSb0::DiscardLeastChanges,
        ..SbPolicy::default()
    };
    let h = sync_handshake(&me, &peer, &pol, true).unwrap();
    assert_eq!(h.decision, Decision::BitmapSyncTarget);
    assert_eq!(h.split_brain, Some(SbRecovery::Auto));
}

#[test]
fn handshake_ambiguous_needs_always_asbp_and_is_full() {
    let me = side(u(C, E, B, 0), false, 1);
    let peer = side(u(D, A, 0, B), false, 5);
    let mut pol = SbPolicy {
        after_sb_0pri: AfterSb0::DiscardLeastChanges,
        ..SbPolicy::default()
    };
    assert_eq!(
        sync_handshake(&me, &peer, &pol, true),
        Err(HandshakeError::SplitBrain)
    );
    pol.always_asbp = true;
    let h = sync_handshake(&me, &peer, &pol, true).unwrap();
    assert_eq!(h.decision, Decision::FullSyncTarget);
}

#[test]
fn handshake_disk_states_and_refusals() {
    // Same generation, but I am Inconsistent: sync target by disk state.
    let mut me = side(u(A, 0, B, 0), false, 0);
    me.disk = DiskState::Inconsistent;
    let peer = side(u(A, 0, B, 0), false, 0);
    let h = sync_handshake(&me, &peer, &SbPolicy::default(), true).unwrap();
    assert_eq!(h.decision, Decision::BitmapSyncTarget);
    let h = sync_handshake(&peer, &me, &SbPolicy::default(), true).unwrap();
    assert_eq!(h.decision, Decision::BitmapSyncSource);
    // Inconsistent and the uuids say I am source.
    let me2 = Side {
        uuids: u(C, A, B, 0),
        ..me
    };
    let mut peer2 = side(u(A, 0, B, 0), false, 0);
    peer2.disk = DiskState::Inconsistent;
    assert_eq!(
        sync_handshake(&me2, &peer2, &SbPolicy::default(), true),
        Err(HandshakeError::SourceInconsistent)
    );
    // A Primary never becomes sync target.
    let mut pri = side(u(A | 1, 0, B, 0), true, 0);
    pri.disk = DiskState::UpToDate;
    let newer = side(u(C, A, B, 0), false, 0);
    assert_eq!(
        sync_handshake(&pri, &newer, &SbPolicy::default(), true),
        Err(HandshakeError::TargetIsPrimary)
    );
    // Unrelated.
    let other = side(u(D, 0, E, E ^ 0x100), false, 0);
    let mine = side(u(A, 0, B, C), false, 0);
    assert_eq!(
        sync_handshake(&mine, &other, &SbPolicy::default(), true),
        Err(HandshakeError::Unrelated)
    );
}
