//! The commands of [`Resource`] with rules of their own (`drbd_set_role`,
//! `drbd_adm_invalidate(_peer)` in `drbd/drbd_nl.c`): promote (transient
//! states, forced promotion, fencing, a new data generation), invalidate
//! and invalidate-remote. The other commands are answered in
//! [`Resource::handle`].

use super::*;

impl Resource {
    pub(super) fn promote(&mut self, force: bool) -> Result<(), Refused> {
        if self.role == Role::Primary {
            return Ok(());
        }
        if self.peer_role == Role::Primary {
            return Err(Refused::PeerPrimary);
        }
        // A Primary is never SyncTarget: not while the bitmaps are being
        // exchanged for a resync from the peer either (the disk turns
        // Inconsistent only once they are; found by disk::sim).
        if matches!(
            self.conn,
            ConnState::WFBitMapT | ConnState::SyncTarget | ConnState::PausedSyncT
        ) {
            return Err(Refused::SyncTarget(self.disk));
        }
        // DRBD's SS_IN_TRANSIENT_STATE: the params of the handshake are on
        // their way; a new current UUID now would make the two sides decide
        // on different UUIDs (both became SyncSource: found by disk::sim).
        // The device waits for the handshake and tries again.
        if matches!(self.conn, ConnState::WFReportParams | ConnState::WFBitMapS) {
            return Err(Refused::Transient(self.conn));
        }
        let mut forced = false;
        if self.disk == DiskState::Diskless {
            // A diskless Primary needs a connected UpToDate peer.
            if !(self.conn >= ConnState::Connected && self.peer_disk == DiskState::UpToDate) {
                return Err(Refused::LocalDisk(DiskState::Diskless));
            }
        } else if self.disk < DiskState::UpToDate {
            if !force {
                return Err(Refused::LocalDisk(self.disk));
            }
            if self.disk < DiskState::Inconsistent
                || matches!(
                    self.conn,
                    ConnState::WFBitMapT | ConnState::SyncTarget | ConnState::PausedSyncT
                )
            {
                return Err(Refused::CannotForce(self.disk));
            }
            forced = true;
        }
        // is_valid_state: SS_PRIMARY_NOP with fencing >= resource-only while
        // not connected and the peer's disk is DUnknown or better. DRBD's
        // drbd_set_role then runs the fence-peer handler (the device does:
        // [`Resource::promotion_needs_fencing`], then `FencePeerDone`, then
        // promotes again); when it did not outdate the peer only --force
        // passes: the peer is taken as Outdated ("Forced into split brain
        // situation!").
        let force_peer_outdated = self.promotion_needs_fencing();
        if force_peer_outdated && !force {
            return Err(Refused::Fencing);
        }
        if forced {
            self.set_disk(DiskState::UpToDate);
        }
        if force_peer_outdated {
            self.set_peer_disk(DiskState::Outdated);
        }
        self.set_role(Role::Primary);
        if self.disk != DiskState::Diskless {
            // drbd_set_role: new data generation when nobody tracks our
            // changes, or when forced.
            if ((self.conn < ConnState::Connected || self.peer_disk <= DiskState::Attaching)
                && self.uuids.bitmap == 0)
                || forced
            {
                self.new_current();
                if self.conn >= ConnState::Connected {
                    self.send(Msg::Uuids(self.uuids));
                }
            } else if self.conn < ConnState::Connected && self.uuids.bitmap != 0 {
                // Promoted alone while a bitmap UUID is set (the peer was
                // lost during a resync): the peer may have moved on from our
                // current UUID meanwhile, so our lone writes get a generation
                // of their own and a later handshake sees a split brain
                // instead of discarding them (found by disk::sim, seed 2195
                // of 3000). The bitmap UUID stays: a peer still at it
                // resyncs by bitmap.
                let fresh = self.fresh();
                self.uuids.new_current_keeping_bitmap(fresh, true);
                self.event(Event::NewCurrentUuid(self.uuids.current));
            }
            self.uuids.set_current(self.uuids.current, true);
            self.persist();
        }
        self.send_state();
        Ok(())
    }

    pub(super) fn invalidate(&mut self) -> Result<(), Refused> {
        if self.disk == DiskState::Diskless {
            return Err(Refused::LocalDisk(DiskState::Diskless));
        }
        if self.conn == ConnState::Connected {
            if self.peer_disk != DiskState::UpToDate {
                return Err(Refused::NoUpToDateData);
            }
            if self.role == Role::Primary {
                return Err(Refused::TargetIsPrimary);
            }
            self.send(Msg::FullResync {
                sender_is_source: false,
            });
            self.begin_bitmap(false, true);
            return Ok(());
        }
        if self.conn > ConnState::Connected {
            return Err(Refused::ResyncRunning);
        }
        if self.role == Role::Primary {
            return Err(Refused::NoUpToDateData);
        }
        self.set_disk(DiskState::Inconsistent);
        Ok(())
    }

    pub(super) fn invalidate_remote(&mut self) -> Result<(), Refused> {
        if self.conn < ConnState::Connected {
            return Err(Refused::NotConnected);
        }
        if self.conn > ConnState::Connected {
            return Err(Refused::ResyncRunning);
        }
        if self.disk != DiskState::UpToDate {
            return Err(Refused::NoUpToDateData);
        }
        if self.peer_disk == DiskState::Diskless {
            return Err(Refused::PeerDiskless);
        }
        if self.peer_role == Role::Primary {
            return Err(Refused::PeerNeverTarget);
        }
        self.send(Msg::FullResync {
            sender_is_source: true,
        });
        self.begin_bitmap(true, true);
        Ok(())
    }
}
