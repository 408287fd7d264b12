//! Unit tests of `disk/state.rs`.

use super::*;
use crate::disk::uuid::{AfterSb0, UUID_JUST_CREATED};

const A: u64 = 0x6EE1_5D6C_5A7F_0870;
const B: u64 = 0x8A9A_3C1E_3E68_1D04;

fn cfg(lower: bool) -> ResourceConfig {
    ResourceConfig {
        i_am_lower_id: lower,
        seed: if lower { 1 } else { 2 },
        ..ResourceConfig::default()
    }
}

fn data(uuids: Uuids) -> Attached {
    Attached {
        uuids,
        disk: DiskState::UpToDate,
        bits_set: 0,
        crashed_primary: false,
        peer_outdated: false,
    }
}

fn same() -> Uuids {
    Uuids {
        current: A,
        bitmap: 0,
        history: [B, 0],
    }
}

/// Deliver messages both ways until quiet; return all outputs.
fn pump(a: &mut Resource, b: &mut Resource) -> (Vec<Output>, Vec<Output>) {
    let (mut all_a, mut all_b) = (Vec::new(), Vec::new());
    loop {
        let oa = a.take_outputs();
        let ob = b.take_outputs();
        if oa.is_empty() && ob.is_empty() {
            return (all_a, all_b);
        }
        for o in &oa {
            if let Output::Send(m) = o {
                b.handle(Input::Peer(*m)).unwrap();
            }
        }
        for o in &ob {
            if let Output::Send(m) = o {
                a.handle(Input::Peer(*m)).unwrap();
            }
        }
        all_a.extend(oa);
        all_b.extend(ob);
    }
}

fn connect(a: &mut Resource, b: &mut Resource) -> (Vec<Output>, Vec<Output>) {
    for r in [&mut *a, &mut *b] {
        if r.conn() == ConnState::StandAlone {
            r.handle(Input::Connect).unwrap();
        }
    }
    a.handle(Input::TransportUp).unwrap();
    b.handle(Input::TransportUp).unwrap();
    pump(a, b)
}

fn pair(cfg_a: ResourceConfig, cfg_b: ResourceConfig) -> (Resource, Resource) {
    let mut a = Resource::new(cfg_a, Some(data(same())));
    let mut b = Resource::new(cfg_b, Some(data(same())));
    connect(&mut a, &mut b);
    assert_eq!(a.conn(), ConnState::Connected);
    assert_eq!(b.conn(), ConnState::Connected);
    (a, b)
}

fn events(o: &[Output]) -> Vec<Event> {
    o.iter()
        .filter_map(|o| match o {
            Output::Event(e) => Some(e.clone()),
            _ => None,
        })
        .collect()
}

fn resync(a: &mut Resource, b: &mut Resource, bits: u64) {
    a.handle(Input::BitmapExchanged { bits }).unwrap();
    b.handle(Input::BitmapExchanged { bits }).unwrap();
    pump(a, b);
    a.handle(Input::SyncDone).unwrap();
    b.handle(Input::SyncDone).unwrap();
    pump(a, b);
}

#[test]
fn resync_from_here_is_a_bitmap_resync_with_this_node_as_source() {
    let (mut a, mut b) = pair(cfg(true), cfg(false));
    a.handle(Input::ResyncFromHere).unwrap();
    let (oa, ob) = pump(&mut a, &mut b);
    assert_eq!(a.conn(), ConnState::WFBitMapS);
    assert_eq!(b.conn(), ConnState::WFBitMapT);
    assert!(oa.contains(&Output::ExchangeBitmap { full: false }));
    assert!(ob.contains(&Output::ExchangeBitmap { full: false }));
    resync(&mut a, &mut b, 1);
    assert_eq!(a.conn(), ConnState::Connected);
    assert_eq!(b.disk(), DiskState::UpToDate);
    a.handle(Input::Disconnect).unwrap();
    assert!(a.handle(Input::ResyncFromHere).is_err());
}

/// Found by disk::sim: verify run on both Secondaries at once made both
/// SyncSource for ever; now the lower node id stays source.
#[test]
fn concurrent_resync_requests_agree_on_one_source() {
    let (mut a, mut b) = pair(cfg(true), cfg(false));
    a.handle(Input::ResyncFromHere).unwrap();
    b.handle(Input::ResyncFromHere).unwrap();
    pump(&mut a, &mut b);
    assert_eq!(a.conn(), ConnState::WFBitMapS);
    assert_eq!(b.conn(), ConnState::WFBitMapT);
    resync(&mut a, &mut b, 1);
    assert_eq!(
        (a.conn(), b.conn()),
        (ConnState::Connected, ConnState::Connected)
    );
    assert_eq!(b.disk(), DiskState::UpToDate);
    // The Primary wins whatever its node id.
    let (mut a, mut b) = pair(cfg(true), cfg(false));
    b.handle(Input::Promote { force: false }).unwrap();
    pump(&mut a, &mut b);
    a.handle(Input::ResyncFromHere).unwrap_err();
    // Both invalidated: nobody can be the source.
    let (mut a, mut b) = pair(cfg(true), cfg(false));
    a.handle(Input::Invalidate).unwrap();
    b.handle(Input::Invalidate).unwrap();
    pump(&mut a, &mut b);
    assert_eq!(
        (a.conn(), b.conn()),
        (ConnState::StandAlone, ConnState::StandAlone)
    );
}

/// A failed local write with pass_on: the data is Inconsistent, and a
/// Secondary in that state is not promoted without --force.
#[test]
fn a_local_write_error_makes_the_data_inconsistent() {
    let (mut a, mut b) = pair(cfg(true), cfg(false));
    b.handle(Input::LocalIoError).unwrap();
    pump(&mut a, &mut b);
    assert_eq!(b.disk(), DiskState::Inconsistent);
    assert_eq!(a.peer_disk(), DiskState::Inconsistent);
    assert!(b.handle(Input::Promote { force: false }).is_err());
}

/// Found by disk::sim: a Secondary promoted while waiting for the
/// bitmaps of a resync from its peer became a Primary SyncTarget.
#[test]
fn no_promotion_while_a_resync_from_the_peer_starts() {
    let (mut a, mut b) = pair(cfg(true), cfg(false));
    a.handle(Input::ResyncFromHere).unwrap();
    let oa = a.take_outputs();
    for o in oa {
        if let Output::Send(m) = o {
            b.handle(Input::Peer(m)).unwrap();
        }
    }
    assert_eq!(b.conn(), ConnState::WFBitMapT);
    let e = b.handle(Input::Promote { force: true }).unwrap_err();
    assert!(matches!(e, Refused::SyncTarget(_)), "{e:?}");
    assert!(e.to_string().contains("resync from the peer"), "{e}");
    assert_eq!(b.role(), Role::Secondary);
}

/// Issue 12, finding 3: a Primary never becomes SyncTarget, whatever
/// the peer sends or the operator asks.
#[test]
fn a_primary_is_never_sync_target() {
    let (mut a, mut b) = pair(cfg(true), cfg(false));
    a.handle(Input::Promote { force: false }).unwrap();
    pump(&mut a, &mut b);
    assert_eq!(b.peer_role(), Role::Primary);
    // Local commands on either side that would make `a` the target.
    let target_is_primary = Err(Refused::TargetIsPrimary);
    assert_eq!(a.handle(Input::Invalidate), target_is_primary);
    assert_eq!(a.handle(Input::ResyncFromPeer), target_is_primary);
    assert!(b.handle(Input::ResyncFromHere).is_err());
    assert!(b.handle(Input::InvalidateRemote).is_err());
    assert!(a.take_outputs().is_empty() && b.take_outputs().is_empty());
    assert_eq!(a.conn(), ConnState::Connected);
    assert_eq!(b.conn(), ConnState::Connected);
    // A peer that asks anyway (as verify on a Secondary did): refused,
    // the connection is dropped, the Primary keeps its role and data.
    for m in [
        Msg::BitmapResync {
            sender_is_source: true,
        },
        Msg::FullResync {
            sender_is_source: true,
        },
    ] {
        let (mut a, _b) = pair(cfg(true), cfg(false));
        a.handle(Input::Promote { force: false }).unwrap();
        a.take_outputs();
        a.handle(Input::Peer(m)).unwrap();
        let out = a.take_outputs();
        assert!(
            !out.contains(&Output::ExchangeBitmap { full: false })
                && !out.contains(&Output::ExchangeBitmap { full: true }),
            "{out:?}"
        );
        assert!(events(&out).contains(&Event::HandshakeFailed(
            "I shall become SyncTarget, but I am primary!".into()
        )));
        assert_eq!(a.conn(), ConnState::StandAlone);
        assert_eq!(a.role(), Role::Primary);
        assert_eq!(a.disk(), DiskState::UpToDate);
    }
    // A Primary peer asking a Secondary to be its source: refused too.
    let (mut a, mut b) = pair(cfg(true), cfg(false));
    a.handle(Input::Promote { force: false }).unwrap();
    pump(&mut a, &mut b);
    b.handle(Input::Peer(Msg::BitmapResync {
        sender_is_source: false,
    }))
    .unwrap();
    assert_eq!(b.conn(), ConnState::StandAlone);
}

/// Verify on the Secondary resyncs it from the Primary.
#[test]
fn resync_from_peer_makes_the_primary_the_source() {
    let (mut a, mut b) = pair(cfg(true), cfg(false));
    a.handle(Input::Promote { force: false }).unwrap();
    pump(&mut a, &mut b);
    b.handle(Input::ResyncFromPeer).unwrap();
    let (oa, ob) = pump(&mut a, &mut b);
    assert_eq!(a.conn(), ConnState::WFBitMapS);
    assert_eq!(b.conn(), ConnState::WFBitMapT);
    assert!(oa.contains(&Output::ExchangeBitmap { full: false }));
    assert!(ob.contains(&Output::ExchangeBitmap { full: false }));
    resync(&mut a, &mut b, 1);
    assert_eq!(b.conn(), ConnState::Connected);
    assert_eq!(b.disk(), DiskState::UpToDate);
    assert_eq!(a.role(), Role::Primary);
    b.handle(Input::Disconnect).unwrap();
    assert!(b.handle(Input::ResyncFromPeer).is_err());
}

#[test]
fn outdate_then_promote_needs_force() {
    let mut a = Resource::new(cfg(true), Some(data(same())));
    a.handle(Input::Outdate).unwrap();
    assert_eq!(a.disk(), DiskState::Outdated);
    assert_eq!(
        a.handle(Input::Promote { force: false }),
        Err(Refused::LocalDisk(DiskState::Outdated))
    );
    a.handle(Input::Promote { force: true }).unwrap();
    assert_eq!(a.disk(), DiskState::UpToDate);
    assert_eq!(a.handle(Input::Outdate), Err(Refused::OutdatePrimary));
}

#[test]
fn names_as_drbd() {
    assert_eq!(ConnState::WFBitMapS.as_str(), "WFBitMapS");
    assert_eq!(ConnState::PausedSyncT.to_string(), "PausedSyncT");
    assert_eq!(DiskState::DUnknown.as_str(), "DUnknown");
    assert_eq!(DiskState::UpToDate.to_string(), "UpToDate");
    assert_eq!(Role::Secondary.as_str(), "Secondary");
    assert_eq!(
        serde_json::to_string(&ConnState::StandAlone).unwrap(),
        "\"StandAlone\""
    );
    let d: DiskState = serde_json::from_str("\"Outdated\"").unwrap();
    assert_eq!(d, DiskState::Outdated);
    assert!(DiskState::Inconsistent < DiskState::Outdated);
    assert!(DiskState::Consistent < DiskState::UpToDate);
    assert!(ConnState::WFReportParams < ConnState::Connected);
}

#[test]
fn connect_transport_params_connected() {
    let mut a = Resource::new(cfg(true), Some(data(same())));
    assert_eq!(a.conn(), ConnState::StandAlone);
    a.handle(Input::Connect).unwrap();
    assert_eq!(a.conn(), ConnState::WFConnection);
    assert_eq!(a.handle(Input::Connect), Err(Refused::HasNetConfig));
    a.handle(Input::TransportUp).unwrap();
    assert_eq!(a.conn(), ConnState::WFReportParams);
    let out = a.take_outputs();
    assert!(out.contains(&Output::Send(Msg::ReportParams(a.params()))));
    let mut b = Resource::new(cfg(false), Some(data(same())));
    b.handle(Input::Connect).unwrap();
    b.handle(Input::TransportUp).unwrap();
    let (oa, _) = pump(&mut a, &mut b);
    assert_eq!(a.conn(), ConnState::Connected);
    assert_eq!(a.peer_role(), Role::Secondary);
    assert_eq!(a.peer_disk(), DiskState::UpToDate);
    assert!(events(&oa).contains(&Event::Handshake {
        rule: 40,
        decision: Decision::NoSync
    }));
    // Disconnect -> StandAlone, the peer is forgotten.
    a.handle(Input::Disconnect).unwrap();
    assert_eq!(a.conn(), ConnState::StandAlone);
    assert_eq!(a.peer_role(), Role::Unknown);
    assert_eq!(a.peer_disk(), DiskState::DUnknown);
}

#[test]
fn initial_full_sync_after_force_primary() {
    let created = Attached {
        uuids: Uuids::created(),
        disk: DiskState::Inconsistent,
        bits_set: 0,
        crashed_primary: false,
        peer_outdated: false,
    };
    let mut a = Resource::new(cfg(true), Some(created));
    let mut b = Resource::new(cfg(false), Some(created));
    connect(&mut a, &mut b);
    // Rule 10 and both Inconsistent: Connected, nothing to sync.
    assert_eq!(a.conn(), ConnState::Connected);
    assert_eq!(
        a.handle(Input::Promote { force: false }),
        Err(Refused::LocalDisk(DiskState::Inconsistent))
    );
    // --overwrite-data-of-peer.
    a.handle(Input::Promote { force: true }).unwrap();
    assert_eq!(a.role(), Role::Primary);
    assert_eq!(a.disk(), DiskState::UpToDate);
    assert_eq!(a.uuids().bitmap, UUID_JUST_CREATED);
    // receive_state: the peer became UpToDate, handshake again: rule 30,
    // full sync from the forced Primary.
    let (oa, ob) = pump(&mut a, &mut b);
    assert_eq!(a.conn(), ConnState::WFBitMapS);
    assert_eq!(b.conn(), ConnState::WFBitMapT);
    assert!(oa.contains(&Output::ExchangeBitmap { full: true }));
    assert!(ob.contains(&Output::ExchangeBitmap { full: true }));
    resync(&mut a, &mut b, 1000);
    assert_eq!(b.disk(), DiskState::UpToDate);
    assert_eq!(a.peer_disk(), DiskState::UpToDate);
    assert_eq!(a.uuids().current & !1, b.uuids().current);
}

/// Campaign finding (issue 13, seed 2201): the Primary of a partition
/// stopped (demoted) and was then outdated by its peer, which promoted
/// its older data: the writes made during the partition were lost.
#[test]
fn a_copy_with_writes_made_without_the_peer_refuses_to_be_outdated() {
    let (mut a, mut b) = pair(cfg(true), cfg(false));
    assert_eq!(a.outdate_refusal(), None);
    a.handle(Input::Promote { force: false }).unwrap();
    pump(&mut a, &mut b);
    assert_eq!(a.outdate_refusal(), Some(REFUSE_OUTDATE_PRIMARY));
    a.handle(Input::TransportLost).unwrap();
    b.handle(Input::TransportLost).unwrap();
    a.handle(Input::Demote).unwrap();
    assert_eq!(a.role(), Role::Secondary);
    assert_eq!(a.outdate_refusal(), Some(REFUSE_OUTDATE_NEWER));
    // The Secondary of the partition wrote nothing: it may be outdated.
    assert_eq!(b.outdate_refusal(), None);
    b.handle(Input::Outdate).unwrap();
    assert_eq!(b.disk(), DiskState::Outdated);
    // Reconnected, a's writes reach b and a's bitmap UUID goes.
    connect(&mut a, &mut b);
    pump(&mut a, &mut b);
    assert!(
        matches!(b.conn(), ConnState::WFBitMapT | ConnState::SyncTarget),
        "{:?}",
        b.conn()
    );
}

#[test]
fn transport_lost_primary_new_current_then_bitmap_resync() {
    let (mut a, mut b) = pair(cfg(true), cfg(false));
    a.handle(Input::Promote { force: false }).unwrap();
    pump(&mut a, &mut b);
    assert_eq!(b.peer_role(), Role::Primary);
    assert_eq!(a.uuids().current, A | 1);
    assert_eq!(a.uuids().bitmap, 0);
    a.handle(Input::TransportLost).unwrap();
    b.handle(Input::TransportLost).unwrap();
    assert_eq!(a.conn(), ConnState::WFConnection);
    assert_eq!(a.peer_role(), Role::Unknown);
    assert_eq!(a.peer_disk(), DiskState::DUnknown);
    let u = a.uuids();
    assert_ne!(u.current & !1, A);
    assert_eq!(u.bitmap, A | 1);
    assert!(events(&a.take_outputs()).contains(&Event::NewCurrentUuid(u.current)));
    // The Secondary keeps its UUIDs.
    assert_eq!(b.uuids(), same());
    a.handle(Input::BitsSet(7)).unwrap();
    connect(&mut a, &mut b);
    assert_eq!(a.conn(), ConnState::WFBitMapS);
    assert_eq!(b.conn(), ConnState::WFBitMapT);
    a.handle(Input::BitmapExchanged { bits: 7 }).unwrap();
    b.handle(Input::BitmapExchanged { bits: 7 }).unwrap();
    pump(&mut a, &mut b);
    assert_eq!(a.conn(), ConnState::SyncSource);
    assert_eq!(b.conn(), ConnState::SyncTarget);
    assert_eq!(b.disk(), DiskState::Inconsistent);
    a.handle(Input::SyncProgress(3)).unwrap();
    assert!(events(&a.take_outputs()).contains(&Event::SyncProgress { done: 3, total: 7 }));
    a.handle(Input::PauseSync).unwrap();
    assert_eq!(a.conn(), ConnState::PausedSyncS);
    a.handle(Input::ResumeSync).unwrap();
    a.handle(Input::SyncDone).unwrap();
    b.handle(Input::SyncDone).unwrap();
    pump(&mut a, &mut b);
    assert_eq!(a.conn(), ConnState::Connected);
    assert_eq!(b.conn(), ConnState::Connected);
    assert_eq!(b.disk(), DiskState::UpToDate);
    assert_eq!(a.peer_disk(), DiskState::UpToDate);
    assert_eq!(a.uuids().current & !1, b.uuids().current);
    assert_eq!(a.uuids().bitmap, 0);
    // Reconnecting now: no sync.
    a.handle(Input::TransportLost).unwrap();
    b.handle(Input::TransportLost).unwrap();
    connect(&mut a, &mut b);
    assert_eq!(a.conn(), ConnState::WFBitMapS, "a new generation again");
}

#[test]
fn secondary_reconnect_without_changes_is_no_sync() {
    let (mut a, mut b) = pair(cfg(true), cfg(false));
    a.handle(Input::TransportLost).unwrap();
    b.handle(Input::TransportLost).unwrap();
    connect(&mut a, &mut b);
    assert_eq!(a.conn(), ConnState::Connected);
    assert_eq!(a.uuids(), same());
}

#[test]
fn promote_refusals() {
    let (mut a, mut b) = pair(cfg(true), cfg(false));
    a.handle(Input::Promote { force: false }).unwrap();
    pump(&mut a, &mut b);
    assert_eq!(
        b.handle(Input::Promote { force: false }),
        Err(Refused::PeerPrimary)
    );
    assert_eq!(
        b.handle(Input::Promote { force: true }),
        Err(Refused::PeerPrimary)
    );
    assert_eq!(b.role(), Role::Secondary);
    // Outdated local disk.
    let mut o = Resource::new(
        cfg(true),
        Some(Attached {
            disk: DiskState::Outdated,
            ..data(same())
        }),
    );
    assert_eq!(
        o.handle(Input::Promote { force: false }),
        Err(Refused::LocalDisk(DiskState::Outdated))
    );
    o.handle(Input::Promote { force: true }).unwrap();
    assert_eq!(o.disk(), DiskState::UpToDate);
    assert_eq!(o.uuids().bitmap, A, "forced: a new generation");
    // Diskless and alone.
    let mut d = Resource::new(cfg(true), None);
    assert_eq!(
        d.handle(Input::Promote { force: true }),
        Err(Refused::LocalDisk(DiskState::Diskless))
    );
}

/// `fencing resource-only`: a disconnected promotion needs the peer
/// known Outdated; nothing outdates it yet (no fence-peer handler), so
/// only --force passes, as in DRBD when the handler fails ("Forced
/// into split brain situation!": the peer is then taken as Outdated).
#[test]
fn fencing_refuses_promotion_unless_peer_outdated_or_forced() {
    let fcfg = ResourceConfig {
        fencing: true,
        ..cfg(false)
    };
    let (mut a, mut b) = pair(cfg(true), fcfg);
    a.handle(Input::Promote { force: false }).unwrap();
    pump(&mut a, &mut b);
    b.handle(Input::TransportLost).unwrap();
    // Connected promotion would be fine; disconnected it is refused,
    // with what is missing and the way out.
    let refused = b.handle(Input::Promote { force: false }).unwrap_err();
    assert_eq!(refused, Refused::Fencing);
    let refused = refused.to_string();
    assert_eq!(refused, FENCING_REFUSAL);
    assert!(refused.starts_with("Refusing to be Primary while peer is not outdated"));
    assert!(refused.contains("no fence-peer handler") && refused.contains("--force"));
    // StandAlone too.
    b.handle(Input::Disconnect).unwrap();
    assert_eq!(
        b.handle(Input::Promote { force: false }),
        Err(Refused::Fencing)
    );
    assert_eq!(b.role(), Role::Secondary);
    b.take_outputs();
    b.handle(Input::Promote { force: true }).unwrap();
    assert_eq!(b.role(), Role::Primary);
    assert_eq!(b.peer_disk(), DiskState::Outdated);
    assert_eq!(b.disk(), DiskState::UpToDate);
    let ev = events(&b.take_outputs());
    assert!(ev.contains(&Event::PeerDisk(DiskState::Outdated)));
    assert!(
        ev.iter().any(|e| matches!(e, Event::NewCurrentUuid(_))),
        "a new data generation: {ev:?}"
    );
    // Once demoted the peer stays Outdated: no --force needed again.
    b.handle(Input::Demote).unwrap();
    b.handle(Input::Promote { force: false }).unwrap();

    // An explicitly outdated peer (the future fence-peer path).
    let (mut a, mut c) = pair(cfg(true), fcfg);
    a.handle(Input::TransportLost).unwrap();
    c.handle(Input::TransportLost).unwrap();
    c.handle(Input::PeerOutdated).unwrap();
    assert_eq!(c.peer_disk(), DiskState::Outdated);
    c.handle(Input::Promote { force: false }).unwrap();
    assert_eq!(c.role(), Role::Primary);
}

/// Consistent data without fencing's outdated peer (attach with
/// `fencing` on), Outdated and Inconsistent data: never Primary without
/// --force while no peer is there to compare with; --force with fencing
/// takes both steps (disk UpToDate, peer Outdated), as drbd_set_role's
/// retry loop does.
#[test]
fn stale_or_unknown_data_needs_force_alone() {
    let fcfg = ResourceConfig {
        fencing: true,
        ..cfg(true)
    };
    for disk in [
        DiskState::Consistent,
        DiskState::Outdated,
        DiskState::Inconsistent,
    ] {
        for c in [cfg(true), fcfg] {
            let mut r = Resource::new(
                c,
                Some(Attached {
                    disk,
                    ..data(same())
                }),
            );
            for conn in [false, true] {
                if conn {
                    r.handle(Input::Connect).unwrap();
                }
                assert_eq!(
                    r.handle(Input::Promote { force: false }),
                    Err(Refused::LocalDisk(disk)),
                    "{disk} fencing={} connecting={conn}",
                    c.fencing
                );
            }
            r.handle(Input::Promote { force: true }).unwrap();
            assert_eq!((r.role(), r.disk()), (Role::Primary, DiskState::UpToDate));
            let peer = if c.fencing {
                DiskState::Outdated
            } else {
                DiskState::DUnknown
            };
            assert_eq!(r.peer_disk(), peer);
        }
    }
}

/// A restart with `fencing` attaches Consistent data (the peer is not
/// known Outdated); meeting the peer with the same data generation makes
/// both UpToDate (DRBD's sanitize_state), so a connected promotion needs
/// no --force. Outdated data of the same generation too.
#[test]
fn consistent_and_outdated_become_up_to_date_when_connected() {
    let fence = |lower| ResourceConfig {
        fencing: true,
        ..cfg(lower)
    };
    for (da, db) in [
        (DiskState::Consistent, DiskState::Consistent),
        (DiskState::Outdated, DiskState::UpToDate),
    ] {
        let mut a = Resource::new(
            fence(true),
            Some(Attached {
                disk: da,
                ..data(same())
            }),
        );
        let mut b = Resource::new(
            fence(false),
            Some(Attached {
                disk: db,
                ..data(same())
            }),
        );
        assert_eq!(
            a.handle(Input::Promote { force: false }),
            Err(Refused::LocalDisk(da))
        );
        connect(&mut a, &mut b);
        assert_eq!(a.conn(), ConnState::Connected);
        assert_eq!(
            (a.disk(), a.peer_disk()),
            (DiskState::UpToDate, DiskState::UpToDate)
        );
        assert_eq!(
            (b.disk(), b.peer_disk()),
            (DiskState::UpToDate, DiskState::UpToDate)
        );
        a.handle(Input::Promote { force: false }).unwrap();
        assert_eq!(a.role(), Role::Primary);
    }
}

/// `adjust`: a changed `fencing` applies to the next promotion, both
/// ways; the UUID generator is not reseeded.
#[test]
fn set_config_applies_fencing() {
    let mut r = Resource::new(cfg(true), Some(data(same())));
    r.handle(Input::Connect).unwrap();
    let fcfg = ResourceConfig {
        fencing: true,
        seed: 99,
        ..cfg(true)
    };
    r.set_config(fcfg);
    assert!(r.config().fencing);
    assert_eq!(r.config().seed, cfg(true).seed);
    assert_eq!(
        r.handle(Input::Promote { force: false }),
        Err(Refused::Fencing)
    );
    r.set_config(cfg(true));
    r.handle(Input::Promote { force: false }).unwrap();
    assert_eq!(r.role(), Role::Primary);
    assert_eq!(r.peer_disk(), DiskState::DUnknown);
}

#[test]
fn demote_attach_detach() {
    let (mut a, mut b) = pair(cfg(true), cfg(false));
    a.handle(Input::Promote { force: false }).unwrap();
    a.handle(Input::Demote).unwrap();
    assert_eq!(a.role(), Role::Secondary);
    assert_eq!(a.uuids().current & 1, 0);
    pump(&mut a, &mut b);
    assert_eq!(
        a.handle(Input::Attach(data(same()))),
        Err(Refused::Attached)
    );
    b.handle(Input::Detach).unwrap();
    pump(&mut a, &mut b);
    assert_eq!(b.disk(), DiskState::Diskless);
    assert_eq!(a.peer_disk(), DiskState::Diskless);
    // A Primary may detach while the peer is UpToDate ...
    a.handle(Input::Promote { force: false }).unwrap();
    pump(&mut a, &mut b);
    // (promoted with a diskless peer: a new generation, as DRBD)
    assert_eq!(a.uuids().bitmap, A);
    b.handle(Input::Attach(data(same()))).unwrap();
    let (_, ob) = pump(&mut a, &mut b);
    assert!(events(&ob).contains(&Event::Handshake {
        rule: 50,
        decision: Decision::BitmapSyncTarget
    }));
    assert_eq!(b.conn(), ConnState::WFBitMapT);
    resync(&mut a, &mut b, 5);
    assert_eq!(b.conn(), ConnState::Connected);
    assert_eq!(a.peer_disk(), DiskState::UpToDate);
    a.handle(Input::Detach).unwrap();
    pump(&mut a, &mut b);
    assert_eq!(a.disk(), DiskState::Diskless);
    // ... but a disconnected Primary must keep its data.
    let mut p = Resource::new(cfg(true), Some(data(same())));
    p.handle(Input::Promote { force: false }).unwrap();
    assert_eq!(p.handle(Input::Detach), Err(Refused::NoUpToDateData));
}

#[test]
fn invalidate_and_invalidate_remote() {
    let (mut a, mut b) = pair(cfg(true), cfg(false));
    b.handle(Input::Invalidate).unwrap();
    pump(&mut a, &mut b);
    assert_eq!(b.conn(), ConnState::WFBitMapT);
    assert_eq!(a.conn(), ConnState::WFBitMapS);
    resync(&mut a, &mut b, 100);
    assert_eq!(b.disk(), DiskState::UpToDate);
    assert_eq!(a.conn(), ConnState::Connected);
    a.handle(Input::InvalidateRemote).unwrap();
    pump(&mut a, &mut b);
    assert_eq!(b.conn(), ConnState::WFBitMapT);
    resync(&mut a, &mut b, 100);
    assert_eq!(a.uuids().current, b.uuids().current);
    a.handle(Input::Disconnect).unwrap();
    assert_eq!(
        a.handle(Input::InvalidateRemote),
        Err(Refused::NotConnected)
    );
    a.handle(Input::Invalidate).unwrap();
    assert_eq!(a.disk(), DiskState::Inconsistent);
}

#[test]
fn unrelated_data_goes_standalone() {
    let other = Uuids {
        current: 0x1111_0000_2222_0000,
        bitmap: 0,
        history: [0x3333_0000_4444_0000, 0x5555_0000_6666_0000],
    };
    let mine = Uuids {
        history: [B, 0x7777_0000_8888_0000],
        ..same()
    };
    let mut a = Resource::new(cfg(true), Some(data(mine)));
    let mut b = Resource::new(cfg(false), Some(data(other)));
    let (oa, _) = connect(&mut a, &mut b);
    assert_eq!(a.conn(), ConnState::StandAlone);
    assert_eq!(b.conn(), ConnState::StandAlone);
    assert!(events(&oa).contains(&Event::HandshakeFailed("Unrelated data, aborting!".into())));
}

#[test]
fn split_brain_auto_recovery_by_policy() {
    let pol = SbPolicy {
        after_sb_0pri: AfterSb0::DiscardLeastChanges,
        ..SbPolicy::default()
    };
    let ca = ResourceConfig {
        policy: pol,
        ..cfg(true)
    };
    let cb = ResourceConfig {
        policy: pol,
        ..cfg(false)
    };
    let (mut a, mut b) = pair(ca, cb);
    a.handle(Input::Promote { force: false }).unwrap();
    pump(&mut a, &mut b);
    a.handle(Input::TransportLost).unwrap();
    b.handle(Input::TransportLost).unwrap();
    b.handle(Input::Promote { force: false }).unwrap();
    a.handle(Input::BitsSet(2)).unwrap();
    b.handle(Input::BitsSet(50)).unwrap();
    a.handle(Input::Demote).unwrap();
    b.handle(Input::Demote).unwrap();
    let (oa, _) = connect(&mut a, &mut b);
    assert!(events(&oa).contains(&Event::SplitBrain {
        my_changes: 2,
        peer_changes: 50,
        recovered: Some(SbRecovery::Auto),
    }));
    assert_eq!(a.conn(), ConnState::WFBitMapT);
    assert_eq!(b.conn(), ConnState::WFBitMapS);
}

/// Seed 002: a split brain with two Primaries; the operator recovers
/// as the DRBD guide says: on the victim `secondary`, `disconnect`,
/// `connect --discard-my-data`; on the survivor `connect`. The victim
/// becomes SyncTarget by bitmap.
#[test]
fn seed_002_split_brain_manual_recovery() {
    let (mut a, mut b) = pair(cfg(true), cfg(false));
    a.handle(Input::Promote { force: false }).unwrap();
    pump(&mut a, &mut b);
    // The link breaks; a keeps running, b is promoted too.
    a.handle(Input::TransportLost).unwrap();
    b.handle(Input::TransportLost).unwrap();
    b.handle(Input::Promote { force: false }).unwrap();
    assert_eq!(b.uuids().bitmap, A, "b was Secondary at the split");
    assert_eq!(a.uuids().bitmap, A | 1, "a was Primary at the split");
    a.handle(Input::BitsSet(10)).unwrap();
    b.handle(Input::BitsSet(3)).unwrap();
    a.take_outputs();
    b.take_outputs();
    // The link returns: split brain, both StandAlone.
    let (oa, ob) = connect(&mut a, &mut b);
    assert!(events(&oa).contains(&Event::SplitBrain {
        my_changes: 10,
        peer_changes: 3,
        recovered: None,
    }));
    assert!(events(&ob).contains(&Event::SplitBrain {
        my_changes: 3,
        peer_changes: 10,
        recovered: None,
    }));
    assert_eq!(a.conn(), ConnState::StandAlone);
    assert_eq!(b.conn(), ConnState::StandAlone);
    // Victim b.
    b.handle(Input::Demote).unwrap();
    b.handle(Input::Disconnect).unwrap();
    b.handle(Input::DiscardMyData).unwrap();
    b.handle(Input::Connect).unwrap();
    assert_eq!(b.conn(), ConnState::WFConnection);
    // Survivor a.
    a.handle(Input::Connect).unwrap();
    let (oa, ob) = connect(&mut a, &mut b);
    assert!(events(&ob).contains(&Event::SplitBrain {
        my_changes: 3,
        peer_changes: 10,
        recovered: Some(SbRecovery::Manual),
    }));
    assert!(events(&oa).contains(&Event::Handshake {
        rule: 90,
        decision: Decision::SplitBrain
    }));
    assert_eq!(b.conn(), ConnState::WFBitMapT);
    assert_eq!(a.conn(), ConnState::WFBitMapS);
    assert!(ob.contains(&Output::ExchangeBitmap { full: false }));
    assert!(!b.discard_my_data());
    resync(&mut a, &mut b, 13);
    assert_eq!(b.conn(), ConnState::Connected);
    assert_eq!(b.disk(), DiskState::UpToDate);
    assert_eq!(a.role(), Role::Primary);
    assert_eq!(b.peer_role(), Role::Primary);
    assert_eq!(a.uuids().current & !1, b.uuids().current);
    // A later reconnect needs no sync.
    a.handle(Input::Disconnect).unwrap();
    b.handle(Input::Disconnect).unwrap();
    a.take_outputs();
    connect(&mut a, &mut b);
    assert_eq!(
        b.conn(),
        ConnState::WFBitMapT,
        "a made a new generation on disconnect"
    );
}

fn fenced_cfg(lower: bool, stonith: bool) -> ResourceConfig {
    ResourceConfig {
        fencing: true,
        stonith,
        ..cfg(lower)
    }
}

/// A connected pair under `fencing`, `a` Primary.
fn fenced_pair(stonith: bool) -> (Resource, Resource) {
    let (mut a, mut b) = pair(fenced_cfg(true, stonith), fenced_cfg(false, stonith));
    a.handle(Input::Promote { force: false }).unwrap();
    pump(&mut a, &mut b);
    assert_eq!(b.peer_role(), Role::Primary);
    (a, b)
}

fn fence_asked(o: &[Output]) -> bool {
    o.contains(&Output::FencePeer)
}

/// DRBD 8.4 conn_disconnect: a Primary under fencing that loses a peer
/// which may hold UpToDate data runs the fence-peer handler once;
/// resource-only goes on writing, resource-and-stonith freezes I/O
/// until the handler outdated (4) or fenced (7) the peer.
#[test]
fn losing_the_peer_runs_the_handler_and_stonith_freezes_io() {
    for stonith in [false, true] {
        let (mut a, mut b) = fenced_pair(stonith);
        a.handle(Input::TransportLost).unwrap();
        b.handle(Input::TransportLost).unwrap();
        let out = a.take_outputs();
        assert!(fence_asked(&out), "stonith={stonith}: {out:?}");
        assert_eq!(a.suspended(), stonith);
        // The Secondary runs nothing.
        assert!(!fence_asked(&b.take_outputs()));
        // One handler at a time.
        a.handle(Input::Disconnect).unwrap();
        assert!(!fence_asked(&a.take_outputs()));
        a.handle(Input::FencePeerDone { code: Some(4) }).unwrap();
        assert_eq!(a.peer_disk(), DiskState::Outdated);
        assert!(!a.suspended());
        let ev = events(&a.take_outputs());
        assert!(ev.contains(&Event::FencePeer {
            code: Some(4),
            outcome: FenceOutcome::PeerOutdated,
            resumed: stonith,
        }));
    }
    // Without fencing nothing runs.
    let (mut a, _) = pair(cfg(true), cfg(false));
    a.handle(Input::Promote { force: false }).unwrap();
    a.take_outputs();
    a.handle(Input::TransportLost).unwrap();
    assert!(!fence_asked(&a.take_outputs()) && !a.suspended());
}

/// disk::sim seed 1274 of 3000: a SyncSource Primary lost the link
/// right after its target finished the resync (UpToDate there, still
/// Inconsistent here); it did not fence and acknowledged writes alone,
/// then crashed, and the target was promoted without them. Losing a
/// SyncTarget runs the handler (and freezes I/O with stonith) too.
#[test]
fn losing_a_sync_target_runs_the_handler() {
    let (mut a, mut b) = fenced_pair(true);
    a.handle(Input::TransportLost).unwrap();
    b.handle(Input::TransportLost).unwrap();
    a.handle(Input::FencePeerDone { code: Some(4) }).unwrap();
    a.handle(Input::BitsSet(7)).unwrap();
    connect(&mut a, &mut b);
    a.handle(Input::BitmapExchanged { bits: 7 }).unwrap();
    b.handle(Input::BitmapExchanged { bits: 7 }).unwrap();
    pump(&mut a, &mut b);
    assert_eq!(a.conn(), ConnState::SyncSource);
    assert_eq!(a.peer_disk(), DiskState::Inconsistent);
    a.take_outputs();
    // The target finished; the link breaks before the source heard it.
    b.handle(Input::SyncDone).unwrap();
    b.take_outputs();
    a.handle(Input::TransportLost).unwrap();
    b.handle(Input::TransportLost).unwrap();
    assert!(fence_asked(&a.take_outputs()));
    assert!(a.suspended());
}

/// Every exit code as DRBD 8.4's conn_try_outdate_peer reads it.
#[test]
fn handler_exit_codes() {
    let cases: [(Option<u8>, DiskState, bool); 8] = [
        (Some(3), DiskState::Inconsistent, false),
        (Some(4), DiskState::Outdated, false),
        (Some(5), DiskState::Outdated, false), // UpToDate here: assumed dead
        (Some(7), DiskState::Outdated, false),
        (Some(0), DiskState::DUnknown, true),
        (Some(1), DiskState::DUnknown, true),
        (Some(42), DiskState::DUnknown, true),
        (None, DiskState::DUnknown, true),
    ];
    for (code, peer_disk, still_frozen) in cases {
        let (mut a, _) = fenced_pair(true);
        a.handle(Input::TransportLost).unwrap();
        a.handle(Input::FencePeerDone { code }).unwrap();
        assert_eq!(a.peer_disk(), peer_disk, "code {code:?}");
        assert_eq!(a.suspended(), still_frozen, "code {code:?}");
        if still_frozen {
            // hbctl disk resume-io thaws by hand.
            a.handle(Input::ResumeIo).unwrap();
            assert!(!a.suspended());
        }
    }
    // 5 without UpToDate data changes nothing; 6 outdates a Secondary.
    assert_eq!(
        FenceOutcome::of(Some(5), false),
        FenceOutcome::PeerUnreachable
    );
    let mut s = Resource::new(fenced_cfg(false, false), Some(data(same())));
    s.handle(Input::Connect).unwrap();
    s.handle(Input::FencePeerDone { code: Some(6) }).unwrap();
    assert_eq!(s.disk(), DiskState::Outdated);
    assert_eq!(
        s.handle(Input::Promote { force: false }),
        Err(Refused::LocalDisk(DiskState::Outdated))
    );
    // 6 on a Primary: an error, nothing changes.
    let (mut a, _) = fenced_pair(false);
    a.handle(Input::TransportLost).unwrap();
    assert!(a.handle(Input::FencePeerDone { code: Some(6) }).is_err());
    assert_eq!(a.disk(), DiskState::UpToDate);
    assert_eq!(a.role(), Role::Primary);
}

/// A handler answer that arrives after the link came back changes
/// nothing; a reconnect thaws frozen I/O once the peer is UpToDate
/// again (after the resync from here).
#[test]
fn stale_handler_answers_are_ignored_and_reconnect_thaws() {
    let (mut a, mut b) = fenced_pair(true);
    a.handle(Input::TransportLost).unwrap();
    b.handle(Input::TransportLost).unwrap();
    assert!(a.suspended());
    connect(&mut a, &mut b);
    // The new data generation of the lone Primary: a resync from it.
    assert_eq!(a.conn(), ConnState::WFBitMapS);
    // Still frozen: the peer, UpToDate while waiting for the bitmaps,
    // lacks what was written since the loss until the resync is done.
    assert!(a.suspended());
    let before = a.peer_disk();
    a.handle(Input::FencePeerDone { code: Some(4) }).unwrap();
    assert_eq!(a.peer_disk(), before);
    assert_ne!(a.peer_disk(), DiskState::Outdated);
    resync(&mut a, &mut b, 1);
    assert_eq!(a.conn(), ConnState::Connected);
    assert!(!a.suspended());
}

/// The peer side: never outdated while Connected (DRBD's
/// SS_CONNECTED_OUTDATES), nor while Primary.
#[test]
fn outdate_refused_while_connected_or_primary() {
    let (mut a, mut b) = fenced_pair(false);
    assert_eq!(b.handle(Input::Outdate), Err(Refused::OutdateConnected));
    assert_eq!(a.handle(Input::Outdate), Err(Refused::OutdatePrimary));
    b.handle(Input::TransportLost).unwrap();
    b.handle(Input::Outdate).unwrap();
    assert_eq!(b.disk(), DiskState::Outdated);
}

/// The scenario of issue 13: replication link cut, the Primary's
/// handler outdates the Secondary, the Primary dies: the Secondary
/// refuses to promote, also after a restart (Outdated is in the
/// metadata); the Primary, restarted after a crash, finds its peer
/// outdated (MDF_PEER_OUT_DATED) and promotes without a handler.
#[test]
fn outdated_peer_is_remembered_and_an_outdated_disk_never_promotes() {
    let (mut a, mut b) = fenced_pair(false);
    a.handle(Input::TransportLost).unwrap();
    b.handle(Input::TransportLost).unwrap();
    b.handle(Input::Outdate).unwrap();
    a.handle(Input::FencePeerDone { code: Some(4) }).unwrap();
    // Kept over a disconnect (sanitize_state keeps Outdated).
    a.handle(Input::Disconnect).unwrap();
    assert_eq!(a.peer_disk(), DiskState::Outdated);
    // b: refused, before and after a restart (the device attaches
    // Outdated from the flags).
    b.handle(Input::Disconnect).unwrap();
    assert_eq!(
        b.handle(Input::Promote { force: false }),
        Err(Refused::LocalDisk(DiskState::Outdated))
    );
    let b2 = Resource::new(
        fenced_cfg(false, false),
        Some(Attached {
            disk: DiskState::Outdated,
            ..data(b.uuids())
        }),
    );
    let mut b2 = b2;
    assert_eq!(
        b2.handle(Input::Promote { force: false }),
        Err(Refused::LocalDisk(DiskState::Outdated))
    );
    // a restarts (crash): Consistent + peer outdated = UpToDate at
    // attach (Local::open), and no handler is needed to promote.
    let mut a2 = Resource::new(
        fenced_cfg(true, false),
        Some(Attached {
            peer_outdated: true,
            ..data(a.uuids())
        }),
    );
    assert_eq!(a2.peer_disk(), DiskState::Outdated);
    assert!(!a2.promotion_needs_fencing());
    a2.handle(Input::Connect).unwrap();
    a2.handle(Input::Promote { force: false }).unwrap();
    // Without the flag the handler must run first.
    let mut a3 = Resource::new(fenced_cfg(true, false), Some(data(a.uuids())));
    assert!(a3.promotion_needs_fencing());
    assert_eq!(
        a3.handle(Input::Promote { force: false }),
        Err(Refused::Fencing)
    );
    // The handler says the peer is unreachable: with UpToDate data it
    // is assumed dead (DRBD), and the promotion goes on.
    a3.handle(Input::FencePeerDone { code: Some(5) }).unwrap();
    a3.handle(Input::Promote { force: false }).unwrap();
    // Consistent data (restart, peer unknown) is made UpToDate by a 4.
    let mut c = Resource::new(
        fenced_cfg(true, false),
        Some(Attached {
            disk: DiskState::Consistent,
            ..data(same())
        }),
    );
    c.handle(Input::FencePeerDone { code: Some(5) }).unwrap();
    assert_eq!(
        c.handle(Input::Promote { force: false }),
        Err(Refused::LocalDisk(DiskState::Consistent))
    );
    c.handle(Input::FencePeerDone { code: Some(4) }).unwrap();
    assert_eq!(c.disk(), DiskState::UpToDate);
    c.handle(Input::Promote { force: false }).unwrap();
}
