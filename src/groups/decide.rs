//! Placement: each node's view of a group, the desired owner
//! ([`Groups::desired`]), and after every input the stops, grants, claims
//! and starts that follow, with grant leases and the report to broadcast.

use super::*;

impl Groups {
    /// This node's and every ready peer's view of group `i`, in node-list order.
    pub(super) fn views(&self, i: usize) -> Vec<View> {
        let id = &self.cfg.groups[i].id;
        let mut v = Vec::new();
        for (order, name) in self.cfg.nodes.iter().enumerate() {
            if *name == self.cfg.node {
                v.push(View {
                    node: name.clone(),
                    order,
                    state: self.local[i].state,
                    pref: self.local[i].pref,
                    leaving: self.leaving,
                    known: true,
                    unhealthy: self.local[i].unhealthy.is_some() || self.local[i].waits_for_disk(),
                    barred: self.hold_blocker().is_some(),
                    ping: self.ping,
                    served: self.local[i].served,
                });
                continue;
            }
            let Some(p) = self.peers.iter().find(|p| p.name == *name) else {
                continue;
            };
            if !matches!(p.life, Life::Up(_)) {
                continue;
            }
            // A witness never runs a group, whatever it reports.
            let Some(r) = p.report.as_ref().filter(|r| r.ready && !r.witness) else {
                continue;
            };
            match r.groups.iter().find(|e| e.id == *id) {
                Some(e) => v.push(View {
                    node: name.clone(),
                    order,
                    state: e.state,
                    pref: e.pref,
                    leaving: r.leaving,
                    known: true,
                    unhealthy: e.unhealthy,
                    barred: false,
                    ping: r.ping,
                    served: e.served,
                }),
                // A peer configured without this group never runs it.
                None => v.push(View {
                    node: name.clone(),
                    order,
                    state: GroupState::Stopped,
                    pref: Pref::None,
                    leaving: r.leaving,
                    known: false,
                    unhealthy: false,
                    barred: false,
                    ping: r.ping,
                    served: 0,
                }),
            }
        }
        v
    }

    /// Whether group `i`'s previous holder released it: the last other node
    /// seen running it has since reported it stopped, and no other node
    /// was seen running it after. Its addresses then need no
    /// duplicate-address probe before they are added here (a planned
    /// switchover, a peer that stopped its groups before leaving). False
    /// when a holder was declared dead without saying so, or when nobody
    /// else was seen running it.
    ///
    /// Every other node must be accounted for too: up with a report that
    /// does not show the group running, gone cleanly (left after stopping
    /// its groups) or fenced. A node declared dead by timeout, or not heard
    /// yet, might hold the address (it may only look dead), so its start
    /// probes; so does a start while an up peer may have declared this node
    /// dead (found by the groups simulation at 1000 seeds: seeds 624 and
    /// deadtimes seed 922).
    pub fn released(&self, i: usize) -> bool {
        let Some(l) = self.local.get(i) else {
            return false;
        };
        let Some(by) = l.released_by.as_deref() else {
            return false;
        };
        l.prev_holder.is_none()
            && self.peers.iter().any(|p| p.name == by)
            && self.peers.iter().all(|p| match p.life {
                _ if p.witness || p.fenced_off() => true,
                // Its report must also show that it heard this node within
                // its deadtime: a peer that declared this node dead (a cut
                // one way, a partition) may be starting the group on its
                // own, and its report saying otherwise may be old.
                Life::Up(_) => p.report.as_ref().is_some_and(|r| {
                    self.lease_valid(p, r)
                        && self.peer_entry(p, i).is_none_or(|e| !e.state.may_run())
                }),
                // Left cleanly, and too recently to have booted again and
                // declared this node dead without hearing it (seed 624:
                // a node that left 5 s earlier had).
                Life::Dead => {
                    p.left
                        && !p.left_unclean
                        && self.latest < p.left_at.saturating_add(self.cfg.deadtime / 2)
                }
                Life::Unknown => false,
            })
    }

    /// The groups `node` runs (its latest report says so) that this node
    /// would run in its place if it were dead: the addresses worth probing
    /// for while `node`'s heartbeats are late, so that the answer is in
    /// when it is declared dead. Empty on the witness.
    pub fn takeover_from(&self, node: &str) -> Vec<usize> {
        let Some(p) = self.peers.iter().find(|p| p.name == node) else {
            return Vec::new();
        };
        if self.cfg.is_witness || !matches!(p.life, Life::Up(_)) {
            return Vec::new();
        }
        let runs: Vec<usize> = (0..self.local.len())
            .filter(|&i| {
                self.local[i].state == GroupState::Stopped
                    && self.peer_entry(p, i).is_some_and(|e| e.state.may_run())
            })
            .collect();
        if runs.is_empty() {
            return runs;
        }
        let mut without = self.clone();
        if let Some(q) = without.peers.iter_mut().find(|q| q.name == node) {
            q.life = Life::Dead;
            q.report = None;
        }
        runs.into_iter()
            .filter(|&i| without.desired(i).0.as_deref() == Some(self.cfg.node.as_str()))
            .collect()
    }

    /// Where group `i` should run, from this node's view, and which rule said so.
    pub fn desired(&self, i: usize) -> (Option<String>, &'static str) {
        let views = self.views(i);
        if let Some(v) = views.iter().find(|v| v.state == GroupState::StopFailed) {
            return (Some(v.node.clone()), "stop failed there");
        }
        if self.local[i].blocked_by.is_some() {
            return (None, "blocked: stop failed on a node that left");
        }
        let home = &self.cfg.groups[i].home;
        let holders: Vec<&View> = views
            .iter()
            .filter(|v| matches!(v.state, GroupState::Starting | GroupState::Started))
            .collect();
        if holders.len() > 1 {
            // The keeper follows the data: the holder whose disks clients
            // wrote to while they had no peer, the one that wrote more (the
            // other side's writes are the ones a split-brain resolution
            // discards). Equal: the home node, then node order.
            let keeper = holders
                .iter()
                .max_by_key(|v| (v.served, v.node == *home, std::cmp::Reverse(v.order)))
                .unwrap_or(&holders[0]);
            return (
                Some(keeper.node.clone()),
                if holders.iter().any(|v| v.served != keeper.served) {
                    "two nodes run it: the keeper is the one that served clients"
                } else {
                    "two nodes run it: the keeper"
                },
            );
        }
        let eligible: Vec<&View> = views
            .iter()
            .filter(|v| v.known && !v.leaving && !v.barred && v.state != GroupState::Failed)
            .collect();
        // Healthy nodes first; when every node is unhealthy the group stays
        // where it runs (no ping-pong between two sick nodes).
        let healthy: Vec<&View> = eligible.iter().copied().filter(|v| !v.unhealthy).collect();
        let all_sick = healthy.is_empty();
        let mut eligible = if all_sick { eligible } else { healthy };
        // The ping tiebreaker (ipfail): a node that reaches fewer ping nodes
        // than another eligible node is not eligible. Equal counts change
        // nothing (no ping-pong); a node whose count is not known yet is
        // not judged.
        if self.cfg.ping_tiebreak {
            if let Some(best) = eligible.iter().filter_map(|v| v.ping).max() {
                eligible.retain(|v| v.ping.is_none_or(|p| p >= best));
            }
        }
        // The newest operator command wins (its version is one more than any
        // seen): a takeover names the node, a standby the node to avoid.
        // Older preferences on other nodes no longer count.
        let newest = views
            .iter()
            .filter(|v| v.pref != Pref::None)
            .max_by_key(|v| (v.pref.version(), std::cmp::Reverse(v.order)));
        if let Some(w) = newest.filter(|w| matches!(w.pref, Pref::Want(_))) {
            if eligible.iter().any(|v| v.node == w.node) {
                return (Some(w.node.clone()), "takeover asked");
            }
        }
        let refused = newest
            .filter(|w| matches!(w.pref, Pref::Refuse(_)))
            .map(|w| w.node.clone());
        let mut s: Vec<&View> = eligible
            .iter()
            .copied()
            .filter(|v| Some(&v.node) != refused.as_ref())
            .collect();
        if s.is_empty() {
            s = eligible.clone();
        }
        if s.is_empty() {
            return (
                None,
                if views.iter().any(|v| v.state == GroupState::Failed) {
                    "failed on every node that is up: hbctl clear GROUP"
                } else {
                    "no node can run it"
                },
            );
        }
        if all_sick {
            if let [h] = holders[..] {
                if s.iter().any(|v| v.node == h.node) {
                    return (Some(h.node.clone()), "unhealthy on every node: it stays");
                }
            }
        }
        if self.cfg.auto_failback {
            if let Some(h) = s.iter().find(|v| v.node == *home) {
                return (Some(h.node.clone()), "home node (auto_failback on)");
            }
        }
        if let [h] = holders[..] {
            if s.iter().any(|v| v.node == h.node) {
                return (Some(h.node.clone()), "runs there");
            }
        }
        if let Some(h) = s.iter().find(|v| v.node == *home) {
            return (Some(h.node.clone()), "home node");
        }
        (Some(s[0].node.clone()), "first node that can run it")
    }

    fn peer_entry<'a>(&'a self, p: &'a Peer, i: usize) -> Option<&'a GroupEntry> {
        let id = &self.cfg.groups[i].id;
        p.report
            .as_ref()
            .and_then(|r| r.groups.iter().find(|e| e.id == *id))
    }

    /// Recomputes everything after an input: stops, grants, claims, starts,
    /// and the report when it changed or is due.
    pub(super) fn decide(&mut self, now: Duration) {
        self.latest = self.latest.max(now);
        let now = self.latest;
        self.decide_quorum();
        self.decide_fences(now);
        if self.ready() {
            for i in 0..self.local.len() {
                self.expire_failure(i, now);
                self.track_holders(i, now);
                self.decide_group(i);
            }
        }
        // Second announcements that are due, for groups still running here.
        let (due, later): (Vec<_>, Vec<_>) = self.reannounce.iter().partition(|&&(_, t)| t <= now);
        self.reannounce = later;
        for (i, _) in due {
            if self.local[i].state == GroupState::Started {
                self.outputs.push(Output::Reannounce(i));
            }
        }
        // `no` and `heard` change with every report: they are refreshed on
        // every send but never cause one.
        let report = self.report();
        let changed = self.last_sent.as_ref() != Some(&report);
        if changed || now >= self.next_resend {
            self.last_sent = Some(report.clone());
            let mut report = report;
            self.report_no += 1;
            report.no = self.report_no;
            report.heard = self
                .peers
                .iter()
                .filter_map(|p| match (p.life, &p.report) {
                    (Life::Up(inc), Some(r)) => Some(Heard {
                        node: p.name.clone(),
                        incarnation: inc,
                        no: r.no,
                    }),
                    _ => None,
                })
                .collect();
            if self.sent_at.len() == SENT_REMEMBERED {
                self.sent_at.pop_front();
            }
            self.sent_at.push_back((self.report_no, now));
            self.outputs.push(Output::Send(report));
            self.next_resend = now.saturating_add(self.cfg.resend.max(Duration::from_millis(1)));
        }
    }

    /// Forgets a failure of group `i` here once `failure_timeout` passed.
    fn expire_failure(&mut self, i: usize, now: Duration) {
        if self
            .failure_expiry(&self.local[i])
            .is_some_and(|t| t <= now)
        {
            self.local[i].failed_at = None;
            self.local[i].failed_holder = None;
            self.transition(
                i,
                GroupState::Stopped,
                "failure_timeout passed: it may start here again".into(),
            );
        }
    }

    /// Follows who else runs group `i`, for the announcements: the last
    /// other holder, and two holders at once (this node the keeper).
    fn track_holders(&mut self, i: usize, now: Duration) {
        let me = self.cfg.node.clone();
        let views = self.views(i);
        for v in views.iter().filter(|v| v.node != me) {
            if v.state.may_run() {
                self.local[i].prev_holder = Some(v.node.clone());
                self.local[i].released_by = None;
            } else if self.local[i].prev_holder.as_ref() == Some(&v.node) {
                self.local[i].prev_holder = None;
                self.local[i].released_by = Some(v.node.clone());
            }
        }
        let others = views
            .iter()
            .any(|v| v.node != me && matches!(v.state, GroupState::Starting | GroupState::Started));
        let here = self.local[i].state == GroupState::Started;
        let keeper = self.desired(i).0.as_deref() == Some(me.as_str());
        if here && others && keeper && !self.local[i].two_holders {
            // A healed partition: this node keeps it. Announce now, and
            // again once the other node stopped it.
            self.local[i].two_holders = true;
            self.announce(i, now);
        } else if self.local[i].two_holders && (!here || !others) {
            self.local[i].two_holders = false;
            if here {
                self.announce(i, now);
            }
        }
    }

    /// Whether `p` heard this node recently enough that it cannot have
    /// declared it dead (and withdrawn its grants) by now, with a keepalive
    /// to spare: it heard report `no`, sent at `t`, so it declares this node
    /// dead no earlier than `t + deadtime`, `p`'s deadtime.
    fn lease_valid(&self, p: &Peer, r: &GroupReport) -> bool {
        let Some(deadtime) = self.peer_deadtime(p) else {
            return false;
        };
        let Some(h) = r
            .heard
            .iter()
            .find(|h| h.node == self.cfg.node && h.incarnation == self.incarnation)
        else {
            return false;
        };
        let Some(&(_, sent)) = self.sent_at.iter().find(|(no, _)| *no == h.no) else {
            return false;
        };
        let lease = deadtime.saturating_sub(self.cfg.resend);
        self.latest < sent.saturating_add(lease)
    }

    fn decide_group(&mut self, i: usize) {
        let me = self.cfg.node.clone();
        let (desired, why) = self.desired(i);
        let me_desired = desired.as_deref() == Some(me.as_str());
        let barred = self.hold_blocker();
        match self.local[i].state {
            GroupState::Started => {
                let elsewhere = desired.as_ref().is_some_and(|d| *d != me);
                if elsewhere || self.leaving || barred.is_some() {
                    let reason = if self.leaving {
                        "shutting down".to_string()
                    } else if let Some(b) = barred {
                        b
                    } else {
                        format!(
                            "it should run on {} ({why})",
                            desired.as_deref().unwrap_or("?")
                        )
                    };
                    self.transition(i, GroupState::Stopping, reason);
                    self.local[i].grant = None;
                    self.outputs.push(Output::Stop(i));
                }
                return;
            }
            GroupState::Starting | GroupState::Stopping | GroupState::StopFailed => return,
            GroupState::Stopped | GroupState::Failed => {}
        }
        let state = self.local[i].state;
        // Without quorum (or all nodes seen once, with wait_for_all) this
        // node does not even claim: its claim could not be used.
        let claimable = me_desired
            && state == GroupState::Stopped
            && !self.leaving
            && barred.is_none()
            && self.quorum().has;
        // Keep or withdraw the grant.
        let keep = match &self.local[i].grant {
            Some(g) if g.node == me => claimable && g.claim == self.local[i].claim && g.claim != 0,
            Some(g) => self
                .peers
                .iter()
                .find(|p| p.name == g.node)
                .is_some_and(|p| {
                    p.life == Life::Up(g.incarnation)
                        && self
                            .peer_entry(p, i)
                            .is_some_and(|e| e.claim == g.claim || e.state.may_run())
                }),
            None => false,
        };
        if !keep {
            self.local[i].grant = None;
            if claimable {
                if self.local[i].claim == 0 {
                    self.last_claim += 1;
                    self.local[i].claim = self.last_claim;
                }
                self.local[i].grant = Some(Grant {
                    node: me.clone(),
                    incarnation: self.incarnation,
                    claim: self.local[i].claim,
                });
            } else {
                self.local[i].claim = 0;
                // Never while another node this one hears may run it: the
                // claimant may believe that node dead, this one knows better
                // (the witness's whole point: found by the sim, a witness
                // that booted after the holder started granted a takeover
                // to the other side of a partition).
                let runs_elsewhere = |d: &str| {
                    self.peers.iter().any(|q| {
                        q.name != d
                            && matches!(q.life, Life::Up(_))
                            && self.peer_entry(q, i).is_some_and(|e| e.state.may_run())
                    })
                };
                // The witness does not place groups, it arbitrates: its own
                // configuration (a witness may run without haresources, or
                // with other settings) must never pick a node the nodes do
                // not want (campaign finding: a witness without the ping
                // tiebreaker granted only the home node, which did not
                // claim, and the node the tiebreaker chose never started).
                // It grants the claimant its own view prefers, else the
                // first claimant; never two (the grant is kept above).
                let target = if self.cfg.is_witness {
                    let claimants: Vec<&str> = self
                        .cfg
                        .nodes
                        .iter()
                        .filter(|n| {
                            self.peers.iter().any(|p| {
                                p.name == **n
                                    && matches!(p.life, Life::Up(_))
                                    && self
                                        .peer_entry(p, i)
                                        .is_some_and(|e| e.claim != 0 && !e.state.may_run())
                            })
                        })
                        .map(String::as_str)
                        .collect();
                    desired
                        .as_deref()
                        .filter(|d| claimants.contains(d))
                        .or(claimants.first().copied())
                        .map(str::to_string)
                } else {
                    desired.clone()
                };
                if let Some(d) = target.as_ref().filter(|d| **d != me && !runs_elsewhere(d)) {
                    if let Some(p) = self.peers.iter().find(|p| p.name == *d) {
                        if let (Life::Up(inc), Some(e)) = (p.life, self.peer_entry(p, i)) {
                            if e.claim != 0 && !e.state.may_run() {
                                self.local[i].grant = Some(Grant {
                                    node: d.clone(),
                                    incarnation: inc,
                                    claim: e.claim,
                                });
                            }
                        }
                    }
                }
            }
        }
        // Start when every peer that is not dead grants our claim.
        if !claimable || self.local[i].claim == 0 {
            return;
        }
        let mine = Grant {
            node: me.clone(),
            incarnation: self.incarnation,
            claim: self.local[i].claim,
        };
        if self.missing_grants(i, &mine).is_empty() {
            // A standby ends when this node has to run the group after all
            // (its peer died): it does not push the group away again later.
            if matches!(self.local[i].pref, Pref::Refuse(_)) {
                self.local[i].pref = Pref::None;
            }
            let fenced: Vec<&str> = self
                .peers
                .iter()
                .filter(|p| p.fenced_off() && p.life == Life::Dead)
                .map(|p| p.name.as_str())
                .collect();
            let reason = if fenced.is_empty() {
                format!("starting here ({why})")
            } else {
                format!("starting here ({why}; fenced: {})", fenced.join(", "))
            };
            self.transition(i, GroupState::Starting, reason);
            self.outputs.push(Output::Start(i));
        }
    }

    /// The peers whose agreement to claim `mine` of group `i` is missing,
    /// each with why; empty: the group may start here.
    pub(super) fn missing_grants(&self, i: usize, mine: &Grant) -> Vec<String> {
        let mut missing = Vec::new();
        for p in &self.peers {
            let why = match p.life {
                // A dead peer agrees only once fenced, when fencing is on.
                Life::Dead if self.needs_fence(p) => "dead, not fenced yet",
                Life::Dead => continue,
                Life::Unknown => "not heard yet",
                // A ready peer configured without the group never runs it.
                Life::Up(_) if p.fenced_off() => continue,
                Life::Up(_) => match p.report.as_ref() {
                    None => "no report yet",
                    Some(r) if !r.ready => "still probing",
                    Some(_) if self.peer_deadtime(p).is_none() => "its deadtime not heard yet",
                    // Its grant counts only within its lease (see `lease_valid`).
                    Some(r) if !self.lease_valid(p, r) => "its lease ran out",
                    Some(_) => match self.peer_entry(p, i) {
                        None => continue,
                        Some(e) if e.state.may_run() => "it may run the group",
                        Some(e) if e.grant.as_ref() == Some(mine) => continue,
                        Some(_) => "no grant",
                    },
                },
            };
            missing.push(format!("{} ({why})", p.name));
        }
        missing
    }

    /// The report as it stands.
    pub fn report(&self) -> GroupReport {
        GroupReport {
            ready: self.ready(),
            leaving: self.leaving,
            groups: self
                .cfg
                .groups
                .iter()
                .zip(&self.local)
                .map(|(g, l)| GroupEntry {
                    id: g.id.clone(),
                    state: l.state,
                    claim: if l.state == GroupState::Stopped {
                        l.claim
                    } else {
                        0
                    },
                    grant: l.grant.clone(),
                    pref: l.pref,
                    unhealthy: l.unhealthy.is_some() || l.waits_for_disk(),
                    served: l.served,
                })
                .collect(),
            marks: self.marks.clone(),
            no: 0,
            heard: Vec::new(),
            witness: self.cfg.is_witness,
            ping: self.ping,
        }
    }
}

#[derive(Debug, Clone)]
pub(super) struct View {
    pub(super) node: String,
    /// Position in the node list.
    pub(super) order: usize,
    pub(super) state: GroupState,
    pub(super) pref: Pref,
    pub(super) leaving: bool,
    /// The node has this group in its configuration.
    pub(super) known: bool,
    pub(super) unhealthy: bool,
    /// This node may not hold groups now (no quorum, isolated, witness).
    pub(super) barred: bool,
    pub(super) ping: Option<u16>,
    pub(super) served: u64,
}
