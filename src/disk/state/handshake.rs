//! The connection of [`Resource`]: messages from the peer, the handshake
//! (`receive_uuids`/`receive_state`, the UUID decision of
//! [`uuid::sync_handshake`] applied), starting and finishing a resync
//! (`drbd_start_resync`, `receive_sync_uuid`, `drbd_resync_finished`),
//! and losing or dropping the peer (`after_state_ch`, `conn_disconnect`).

use super::*;

impl Resource {
    pub(super) fn on_msg(&mut self, msg: Msg) {
        match msg {
            Msg::ReportParams(p) => self.on_params(p),
            Msg::State { role, disk } => {
                if self.conn >= ConnState::Connected {
                    let was = self.peer_disk;
                    self.set_peer_role(role);
                    self.set_peer_disk(disk);
                    // receive_state: the peer's disk became UpToDate (primary
                    // --force) while ours is Inconsistent: handshake again,
                    // which starts the (full) sync from it.
                    if self.conn == ConnState::Connected
                        && self.disk == DiskState::Inconsistent
                        && disk == DiskState::UpToDate
                        && was < DiskState::UpToDate
                    {
                        self.set_conn(ConnState::WFReportParams);
                        self.send(Msg::ReportParams(self.params()));
                    }
                }
            }
            Msg::Uuids(u) => {
                if self.conn >= ConnState::Connected {
                    self.peer_uuids = Some(u);
                }
            }
            Msg::SyncUuid(u) => {
                if matches!(
                    self.conn,
                    ConnState::WFBitMapT | ConnState::SyncTarget | ConnState::PausedSyncT
                ) {
                    self.uuids.start_resync_target(u);
                    if self.role == Role::Primary {
                        self.uuids.set_current(u, true);
                    }
                    self.persist();
                }
            }
            Msg::FullResync { sender_is_source } => {
                if self.conn == ConnState::Connected && self.disk != DiskState::Diskless {
                    self.peer_starts_resync(!sender_is_source, true);
                } else if self.in_wf_bitmap() {
                    self.resync_conflict(!sender_is_source, true);
                }
            }
            Msg::BitmapResync { sender_is_source } => {
                if self.conn == ConnState::Connected && self.disk != DiskState::Diskless {
                    self.peer_starts_resync(!sender_is_source, false);
                } else if self.in_wf_bitmap() {
                    self.resync_conflict(!sender_is_source, false);
                }
            }
        }
    }

    fn on_params(&mut self, p: Params) {
        match self.conn {
            ConnState::StandAlone => return,
            ConnState::Unconnected | ConnState::WFConnection => {
                // The peer's params overtook our TransportUp.
                self.set_conn(ConnState::WFReportParams);
                self.send(Msg::ReportParams(self.params()));
            }
            ConnState::WFReportParams => {}
            _ => {
                // Re-handshake requested by the peer (it attached).
                self.set_conn(ConnState::WFReportParams);
                self.send(Msg::ReportParams(self.params()));
            }
        }
        self.set_peer_role(p.role);
        self.set_peer_disk(p.disk);
        self.peer_uuids = Some(p.uuids);

        let two_primaries = self.role == Role::Primary && p.role == Role::Primary;
        if self.disk == DiskState::Diskless || p.disk == DiskState::Diskless {
            // No data on one side: nothing to compare.
            if two_primaries {
                self.drop_two_primaries();
            } else {
                self.set_conn(ConnState::Connected);
            }
            return;
        }
        let me = Side {
            uuids: self.uuids,
            primary: self.role == Role::Primary,
            crashed_primary: self.crashed_primary,
            disk: self.disk,
            bits_set: self.bits_set,
            discard_my_data: self.discard_my_data,
        };
        let peer = Side {
            uuids: p.uuids,
            primary: p.role == Role::Primary,
            crashed_primary: p.crashed_primary,
            disk: p.disk,
            bits_set: p.bits_set,
            discard_my_data: p.discard_my_data,
        };
        let sb_event = |recovered| Event::SplitBrain {
            my_changes: me.bits_set,
            peer_changes: peer.bits_set,
            recovered,
        };
        match uuid::sync_handshake(&me, &peer, &self.cfg.policy, self.cfg.i_am_lower_id) {
            Err(HandshakeError::SplitBrain) => self.drop_connection(sb_event(None)),
            Err(e) => self.drop_connection(Event::HandshakeFailed(e.message().into())),
            Ok(h) => {
                self.event(Event::Handshake {
                    rule: h.rule,
                    decision: h.compared,
                });
                if h.me != self.uuids {
                    self.uuids = h.me;
                    self.persist();
                }
                self.peer_uuids = Some(h.peer);
                if h.split_brain.is_some() {
                    self.event(sb_event(h.split_brain));
                }
                if two_primaries {
                    self.drop_two_primaries();
                    return;
                }
                // DRBD clears DISCARD_MY_DATA once the handshake is done.
                self.discard_my_data = false;
                match h.decision.i_am_source() {
                    None => {
                        self.crashed_primary = false;
                        self.set_conn(ConnState::Connected);
                        // sanitize_state: "D_CONSISTENT and D_OUTDATED
                        // vanish when we get connected": the same data
                        // generation on both sides (no sync) is UpToDate.
                        // Without this, `fencing` (attach: Consistent)
                        // would refuse every promotion after a restart.
                        for d in [DiskState::Consistent, DiskState::Outdated] {
                            if self.disk == d {
                                self.set_disk(DiskState::UpToDate);
                            }
                            if self.peer_disk == d {
                                self.set_peer_disk(DiskState::UpToDate);
                            }
                        }
                    }
                    Some(src) => self.begin_bitmap(src, h.decision.is_full()),
                }
            }
        }
    }

    /// The peer started a resync with us as `source` (or target). Whatever
    /// it sends, a Primary never becomes SyncTarget, and a Primary peer is
    /// never made one: the connection is dropped as DRBD's rr-conflict
    /// `disconnect` does ("I shall become SyncTarget, but I am primary!").
    fn peer_starts_resync(&mut self, source: bool, full: bool) {
        let target_is_primary = if source {
            self.peer_role == Role::Primary
        } else {
            self.role == Role::Primary
        };
        if target_is_primary {
            self.drop_connection(Event::HandshakeFailed(
                HandshakeError::TargetIsPrimary.message().into(),
            ));
            return;
        }
        self.begin_bitmap(source, full);
    }

    /// Both nodes started a resync at once (verify or invalidate run on
    /// both): each receives the other's request while waiting for the
    /// bitmaps. Both as source: the Primary, else the lower node id, stays
    /// source and the other becomes target (its bitmap is already on its
    /// way, so only the direction changes). Both as target: nobody has the
    /// data to send, the connection is dropped. Found by disk::sim: both
    /// sides used to stay SyncSource (or SyncTarget) for ever.
    fn resync_conflict(&mut self, peer_wants_me_source: bool, full: bool) {
        let i_am_source = self.conn == ConnState::WFBitMapS;
        self.pending_full |= full;
        if i_am_source == peer_wants_me_source {
            return;
        }
        if !i_am_source {
            self.drop_connection(Event::HandshakeFailed(
                "both nodes asked to become SyncTarget".into(),
            ));
            return;
        }
        let i_win = if self.role == Role::Primary {
            true
        } else if self.peer_role == Role::Primary {
            false
        } else {
            self.cfg.i_am_lower_id
        };
        if !i_win {
            self.set_conn(ConnState::WFBitMapT);
        }
    }

    pub(super) fn begin_bitmap(&mut self, source: bool, full: bool) {
        if !source && self.role == Role::Primary {
            // The last lock on the door, whatever path got here (handshake,
            // peer request, command): a Primary is never SyncTarget.
            self.drop_connection(Event::HandshakeFailed(
                "I shall become SyncTarget, but I am primary!".into(),
            ));
            return;
        }
        self.pending_full = full;
        self.set_conn(if source {
            ConnState::WFBitMapS
        } else {
            ConnState::WFBitMapT
        });
        self.outputs.push(Output::ExchangeBitmap { full });
    }

    pub(super) fn on_bitmap_exchanged(&mut self, bits: u64) {
        let source = match self.conn {
            ConnState::WFBitMapS => true,
            ConnState::WFBitMapT => false,
            _ => return,
        };
        self.bits_set = bits;
        self.sync_total = bits;
        if source {
            let fresh = self.fresh();
            let sync = self.uuids.start_resync_source(fresh);
            self.persist();
            self.send(Msg::SyncUuid(sync));
            self.set_peer_disk(DiskState::Inconsistent);
            self.set_conn(ConnState::SyncSource);
        } else {
            self.set_disk(DiskState::Inconsistent);
            self.set_conn(ConnState::SyncTarget);
        }
        self.event(Event::SyncStarted {
            source,
            full: self.pending_full,
            bits,
        });
    }

    pub(super) fn on_sync_done(&mut self) {
        let source = match self.conn {
            ConnState::SyncSource | ConnState::PausedSyncS => true,
            ConnState::SyncTarget | ConnState::PausedSyncT => false,
            _ => return,
        };
        if source {
            self.uuids.finish_resync();
            self.set_peer_disk(DiskState::UpToDate);
        } else {
            let peer = self.peer_uuids.unwrap_or(self.uuids);
            self.uuids.finish_resync_target(&peer);
            if self.role == Role::Primary {
                self.uuids.set_current(self.uuids.current, true);
            }
            self.set_disk(DiskState::UpToDate);
        }
        self.bits_set = 0;
        self.sync_total = 0;
        self.crashed_primary = false;
        self.persist();
        self.set_conn(ConnState::Connected);
        self.event(Event::SyncFinished { source });
        if !source {
            self.send_state();
        }
    }

    /// The connection is gone (or dropped): forget the peer; a Primary with
    /// UpToDate data and no bitmap UUID starts a new data generation
    /// (`after_state_ch`, "lost contact to peer's copy of the data").
    /// The peer's disk becomes DUnknown unless it was Inconsistent or
    /// Outdated (sanitize_state: those stay known, so a fenced peer stays
    /// fenced); a Primary under `fencing` that lost a peer which may hold
    /// up-to-date data runs the fence-peer handler (conn_disconnect:
    /// `pdsk >= D_UNKNOWN`), freezing I/O first under resource-and-stonith.
    pub(super) fn lose_peer(&mut self) {
        let had_peer_data = self.peer_disk >= DiskState::Inconsistent
            && self.peer_disk != DiskState::DUnknown
            && self.peer_disk != DiskState::Outdated;
        self.set_peer_role(Role::Unknown);
        if !matches!(
            self.peer_disk,
            DiskState::Inconsistent | DiskState::Outdated
        ) {
            self.set_peer_disk(DiskState::DUnknown);
        }
        let was_source = matches!(self.conn, ConnState::SyncSource | ConnState::PausedSyncS);
        // A SyncSource's target may have finished its side of the resync
        // (UpToDate there) before this node heard of it: it may hold
        // up-to-date data although it is known Inconsistent here, so it is
        // fenced too (DRBD looks at pdsk alone; found by disk::sim seed
        // 1274 of 3000: the target, never outdated, was promoted after this
        // Primary crashed and lacked the writes acknowledged meanwhile).
        if self.cfg.fencing
            && self.role == Role::Primary
            && (self.peer_disk >= DiskState::DUnknown || was_source)
        {
            if self.cfg.stonith {
                self.set_suspended(true);
            }
            self.start_fence();
        }
        self.peer_uuids = None;
        if had_peer_data && self.role == Role::Primary && self.disk == DiskState::UpToDate {
            if self.uuids.bitmap == 0 {
                self.new_current();
                self.persist();
            } else if was_source {
                // A SyncSource Primary loses its target. DRBD keeps its
                // current UUID here (the bitmap UUID tracks the changes),
                // but the target may have finished its side of the resync,
                // or never started it (still UpToDate in WFBitMapT), and be
                // promoted later: its new generation then descends from our
                // current UUID and our lone writes are discarded without a
                // split brain being seen (found by disk::sim). A new current
                // UUID, the old one kept in the history and the bitmap (sync)
                // UUID kept as it is, makes that a detected split brain while
                // an Inconsistent target still resumes by bitmap (rule 50).
                let fresh = self.fresh();
                self.uuids.new_current_keeping_bitmap(fresh, true);
                self.event(Event::NewCurrentUuid(self.uuids.current));
                self.persist();
            }
        }
    }

    /// No allow-two-primaries: the state change after the handshake fails
    /// (drbd_state.c: SS_TWO_PRIMARIES) and the connection is dropped.
    fn drop_two_primaries(&mut self) {
        self.drop_connection(Event::HandshakeFailed(
            "Multiple primaries not allowed by config".into(),
        ));
    }

    fn drop_connection(&mut self, why: Event) {
        self.event(why);
        self.lose_peer();
        self.set_conn(ConnState::StandAlone);
    }
}
