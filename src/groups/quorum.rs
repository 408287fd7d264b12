//! Quorum, votes and fencing: whether this node may hold or start groups
//! now (the witness's votes, `wait_for_all`, the ping tiebreaker's
//! isolation) and which peers must be fenced before anything starts here.
//! See "Quorum and the witness", "Ping tiebreaker" and "Fencing" in the
//! module docs of [`crate::groups`].

use super::*;

impl Groups {
    /// The fence agent for `node` ended: `ok` when the node is off.
    /// A fence that answers after the node came back with a new
    /// incarnation changes nothing (that incarnation did not exist when the
    /// fence was asked for).
    pub fn on_fenced(&mut self, node: &str, ok: bool, now: Duration) {
        let Some(pi) = self.peers.iter().position(|p| p.name == node) else {
            return;
        };
        let p = &mut self.peers[pi];
        if !p.fence_asked {
            return;
        }
        p.fence_asked = false;
        if !ok {
            p.fence_retry = Some(now.saturating_add(FENCE_RETRY));
            self.decide(now);
            return;
        }
        p.fence_retry = None;
        p.fenced = Some(p.last_inc);
        // It is off: dead, whatever membership still believes.
        p.life = Life::Dead;
        p.report = None;
        for i in 0..self.local.len() {
            if self.local[i].blocked_by.as_deref() == Some(node) {
                self.local[i].blocked_by = None;
            }
            self.gone(i, node);
        }
        self.decide(now);
    }

    /// Whether `p` must be fenced before this node starts anything (see
    /// the module docs): it was declared dead by timeout (it may still run
    /// what it ran, or have started something in a partition), it left with
    /// a group stop-failed, or it reports a group stop-failed.
    pub(super) fn needs_fence(&self, p: &Peer) -> bool {
        if !self.cfg.fencing
            || self.cfg.is_witness
            || p.witness
            || p.fenced_off()
            || self.cfg.groups.is_empty()
        {
            return false;
        }
        match p.life {
            Life::Unknown => false,
            Life::Dead if !p.left || p.left_unclean => true,
            Life::Dead => self
                .local
                .iter()
                .any(|l| l.blocked_by.as_deref() == Some(p.name.as_str())),
            Life::Up(_) => p
                .report
                .as_ref()
                .is_some_and(|r| r.groups.iter().any(|e| e.state == GroupState::StopFailed)),
        }
    }

    /// The peers whose fence a start here waits for.
    fn fence_waits(&self) -> Vec<String> {
        self.peers
            .iter()
            .filter(|p| matches!(p.life, Life::Dead) && self.needs_fence(p))
            .map(|p| p.name.clone())
            .collect()
    }

    /// When `p`'s vote runs out: the send time of this node's latest report
    /// that `p` says it heard, plus half a deadtime. `p` declares this node
    /// dead no earlier than a deadtime after it heard that report, so a
    /// node cut off loses quorum (and stops its groups) half a deadtime
    /// before the other side may act on its death.
    pub(super) fn vote_expiry(&self, p: &Peer) -> Option<Duration> {
        if !matches!(p.life, Life::Up(_)) || p.fenced_off() {
            return None;
        }
        let r = p.report.as_ref()?;
        let h = r
            .heard
            .iter()
            .find(|h| h.node == self.cfg.node && h.incarnation == self.incarnation)?;
        let &(_, sent) = self.sent_at.iter().find(|(no, _)| *no == h.no)?;
        Some(sent.saturating_add(self.peer_deadtime(p)? / 2))
    }

    /// How long `p` waits before it declares this node dead: the deadtime
    /// its current incarnation announced (never more than this node's own,
    /// to stay on the safe side); `None` until it announced one.
    pub(super) fn peer_deadtime(&self, p: &Peer) -> Option<Duration> {
        match (p.life, p.deadtime) {
            (Life::Up(inc), Some((announced, d))) if inc == announced => {
                Some(d.min(self.cfg.deadtime))
            }
            _ => None,
        }
    }

    /// Votes counted now (this node, and each peer and the witness within
    /// its lease) and the names of those that do not count.
    fn votes(&self) -> (u32, Vec<&str>) {
        let mut votes = 1;
        let mut missing = Vec::new();
        for p in &self.peers {
            if self.vote_expiry(p).is_some_and(|t| self.latest < t) {
                votes += 1;
            } else {
                missing.push(p.name.as_str());
            }
        }
        (votes, missing)
    }

    /// The membership engine's quorum changed (Corosync's votequorum).
    pub fn set_engine_quorum(&mut self, q: EngineQuorum, now: Duration) {
        self.engine_quorum = Some(q);
        self.decide(now);
    }

    /// Groups run only with quorum: a witness is configured, or the
    /// membership engine gives quorum.
    pub(super) fn protected(&self) -> bool {
        self.cfg.witness.is_some() || self.cfg.engine_quorum
    }

    /// Quorum as this node sees it now.
    pub fn quorum(&self) -> QuorumView {
        if self.cfg.engine_quorum {
            return match self.engine_quorum {
                None => QuorumView {
                    protected: true,
                    has: false,
                    votes: 0,
                    needed: 0,
                    why: "no quorum from the membership engine yet".into(),
                },
                Some(q) => QuorumView {
                    protected: true,
                    has: q.quorate && !q.settling && !q.syncing,
                    votes: q.votes,
                    needed: q.needed,
                    why: if q.syncing {
                        format!(
                            "votequorum is deciding after Corosync lost a node (it was {} \
                             with {} of {} votes)",
                            if q.quorate { "quorate" } else { "not quorate" },
                            q.votes,
                            q.expected
                        )
                    } else if q.quorate && q.settling {
                        format!(
                            "votequorum quorate ({} of {} votes), waiting to hear every node of \
                             the membership",
                            q.votes, q.expected
                        )
                    } else if q.quorate {
                        format!(
                            "{} of {} votes, {} needed (votequorum)",
                            q.votes, q.expected, q.needed
                        )
                    } else {
                        format!(
                            "not quorate (votequorum): {} of {} votes, {} needed",
                            q.votes, q.expected, q.needed
                        )
                    },
                },
            };
        }
        if self.cfg.witness.is_none() {
            return QuorumView {
                protected: false,
                has: true,
                votes: 1,
                needed: 1,
                why: "no witness configured: no quorum protection".into(),
            };
        }
        // Every node and the witness have a vote: a majority of them is
        // needed (2 of 3 in a two-node cluster).
        let total = self.cfg.nodes.len() as u32 + 1;
        let needed = total / 2 + 1;
        let (votes, missing) = self.votes();
        let unseen: Vec<&str> = self
            .peers
            .iter()
            .filter(|p| !p.witness && !p.ever_up)
            .map(|p| p.name.as_str())
            .collect();
        let (has, why) = if votes < needed {
            (
                false,
                format!(
                    "{} unreachable: {votes} of {needed} votes",
                    missing.join(" and ")
                ),
            )
        } else if self.cfg.wait_for_all && !unseen.is_empty() {
            (
                false,
                format!(
                    "waiting for all nodes (wait_for_all): {} not seen yet",
                    unseen.join(", ")
                ),
            )
        } else {
            (true, format!("{votes} of {total} votes, {needed} needed"))
        };
        QuorumView {
            protected: true,
            has,
            votes,
            needed,
            why,
        }
    }

    /// Why this node may not run any group now (it stops what it runs):
    /// it is the witness, it lost its quorum votes, or the ping tiebreaker
    /// finds it isolated.
    pub(super) fn hold_blocker(&self) -> Option<String> {
        if self.cfg.is_witness {
            return Some("this node is the quorum witness: it runs no group".into());
        }
        if self.cfg.engine_quorum {
            // Settling (a node of the membership not heard yet) only holds
            // starts back: what runs here keeps running. While votequorum
            // decides after a loss, only fencing (the winner fences this
            // node before it starts anything) lets it keep running.
            let holds = self
                .engine_quorum
                .is_some_and(|q| q.quorate && (!q.syncing || self.cfg.fencing));
            if !holds {
                return Some(format!("no quorum: {}", self.quorum().why));
            }
        } else if self.cfg.witness.is_some() {
            let q = self.quorum();
            if q.votes < q.needed {
                return Some(format!("no quorum: {}", q.why));
            }
        }
        if self.isolated() {
            return Some(
                "isolated: no peer and none of the ping nodes reachable (ping tiebreaker)".into(),
            );
        }
        None
    }

    /// Why this node may not start a group now, when it may hold one: the
    /// blockers above, wait_for_all, fences still to be done.
    pub(super) fn start_blocker(&self) -> Option<String> {
        if let Some(b) = self.hold_blocker() {
            return Some(b);
        }
        let q = self.quorum();
        if !q.has {
            return Some(q.why);
        }
        let fences = self.fence_waits();
        if !fences.is_empty() {
            return Some(format!("waiting for fencing of {}", fences.join(", ")));
        }
        None
    }

    /// The ping tiebreaker's isolated node: ping nodes configured, none
    /// reached, and no peer heard. It is the side cut off: it takes nothing
    /// over and stops what it runs.
    ///
    /// Peers that all left cleanly are no other side: the node alone is not
    /// isolated then (its ping nodes may simply be down; found by the
    /// protected group simulation, seed 1464: the peer shut down and the
    /// survivor, reaching no ping node, ran nothing).
    fn isolated(&self) -> bool {
        self.cfg.ping_tiebreak
            && self.ping == Some(0)
            && self.peers.iter().all(|p| !matches!(p.life, Life::Up(_)))
            && self.peers.iter().any(|p| !(p.life == Life::Dead && p.left))
    }

    /// Announces a change of quorum (has, votes).
    pub(super) fn decide_quorum(&mut self) {
        if !self.protected() {
            return;
        }
        let q = self.quorum();
        if self.last_quorum != Some((q.has, q.votes)) {
            self.last_quorum = Some((q.has, q.votes));
            self.outputs.push(Output::Quorum(q));
        }
    }

    /// Asks for the fences needed (once each; again after a failure, every
    /// [`FENCE_RETRY`]). With a witness only a node with quorum fences (the
    /// side cut off never shoots the side that goes on).
    pub(super) fn decide_fences(&mut self, now: Duration) {
        if !self.cfg.fencing {
            return;
        }
        if self.protected() {
            let q = self.quorum();
            if q.votes < q.needed || !q.has && self.cfg.engine_quorum {
                return;
            }
        }
        for pi in 0..self.peers.len() {
            let p = &self.peers[pi];
            if p.fence_asked || p.fence_retry.is_some_and(|t| t > now) || !self.needs_fence(p) {
                continue;
            }
            let p = &mut self.peers[pi];
            p.fence_asked = true;
            p.fence_retry = None;
            self.outputs.push(Output::Fence(p.name.clone()));
        }
    }
}
