//! Operator commands (`hbctl standby`, `takeover`, `clear`): whether each
//! can act now, the preference it records, and how it stands afterwards
//! ([`Groups::progress`]).

use super::*;

/// Why an operator command cannot act (nothing was changed). Each displays
/// as `hbctl` prints it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CommandError {
    /// This node has not probed its resources yet.
    #[error("this node is still probing its resources; try again in a moment")]
    NotReady,
    #[error("this node is shutting down")]
    ShuttingDown,
    /// The scope names no group.
    #[error("no {} groups", scope_word(*.0))]
    NoGroups(Scope),
    /// Standby with no other node (only a witness, or none) configured.
    #[error("no other node in the cluster")]
    Alone,
    /// Standby with no other node up (`peers`: the other nodes).
    #[error("no other node is up ({}): nothing can move", peers.join(", "))]
    NoPeerUp { peers: Vec<String> },
    /// Groups (`GROUP`, or `GROUP on NODE`) starting or stopping.
    #[error("a transition is in progress: {}", .0.join(", "))]
    InTransition(Vec<String>),
    /// Standby: no other node can run these groups.
    #[error("no other node can run {}: failed or unhealthy there, or not ready", .0.join(", "))]
    NowhereToGo(Vec<String>),
    /// Takeover: every group in the scope failed here.
    #[error("failed on this node: {} (hbctl clear GROUP first)", .0.join(", "))]
    FailedHere(Vec<String>),
    /// Clear: no such group (`groups`: the configured ones).
    #[error("no group {id} (groups: {})", groups.join(", "))]
    NoGroup { id: String, groups: Vec<String> },
    /// Clear: the group has nothing to clear in its state.
    #[error("{id} is {} here: nothing to clear", state.as_str())]
    NothingToClear { id: String, state: GroupState },
}

impl Groups {
    /// An operator command. `Ok` names the groups it acts on; `Err` says why
    /// nothing can be done (and nothing was changed).
    pub fn command(&mut self, cmd: &Command, now: Duration) -> Result<Vec<usize>, CommandError> {
        if !self.ready() {
            return Err(CommandError::NotReady);
        }
        if self.leaving {
            return Err(CommandError::ShuttingDown);
        }
        let r = match cmd {
            Command::Standby(scope) => self.standby(*scope),
            Command::Takeover(scope) => self.takeover(*scope),
            Command::Clear(id) => self.clear(id),
        };
        self.decide(now);
        r
    }

    fn in_scope(&self, scope: Scope) -> Vec<usize> {
        (0..self.cfg.groups.len())
            .filter(|&i| {
                let home = self.cfg.groups[i].home == self.cfg.node;
                match scope {
                    Scope::All => true,
                    Scope::Local => home,
                    Scope::Foreign => !home,
                }
            })
            .collect()
    }

    fn next_version(&self, i: usize) -> u32 {
        let id = &self.cfg.groups[i].id;
        let peers = self
            .peers
            .iter()
            .filter_map(|p| p.report.as_ref())
            .filter_map(|r| r.groups.iter().find(|e| e.id == *id))
            .map(|e| e.pref.version());
        peers
            .chain(std::iter::once(self.local[i].pref.version()))
            .max()
            .unwrap_or(0)
            .saturating_add(1)
    }

    fn standby(&mut self, scope: Scope) -> Result<Vec<usize>, CommandError> {
        let groups = self.in_scope(scope);
        if groups.is_empty() {
            return Err(CommandError::NoGroups(scope));
        }
        let up: Vec<&Peer> = self
            .peers
            .iter()
            .filter(|p| matches!(p.life, Life::Up(_)) && !p.witness)
            .collect();
        if up.is_empty() {
            return Err(if self.peers.iter().all(|p| p.witness) {
                CommandError::Alone
            } else {
                CommandError::NoPeerUp {
                    peers: self
                        .peers
                        .iter()
                        .filter(|p| !p.witness)
                        .map(|p| p.name.clone())
                        .collect(),
                }
            });
        }
        let mut busy = Vec::new();
        let mut nowhere = Vec::new();
        for &i in &groups {
            let id = &self.cfg.groups[i].id;
            match self.local[i].state {
                GroupState::Starting | GroupState::Stopping => busy.push(id.clone()),
                GroupState::Started => {
                    let takers = up.iter().any(|p| {
                        p.report.as_ref().is_some_and(|r| {
                            r.ready
                                && !r.leaving
                                && r.groups
                                    .iter()
                                    .any(|e| e.id == *id && matches!(e.state, GroupState::Stopped))
                        })
                    });
                    if !takers {
                        nowhere.push(id.clone());
                    }
                }
                _ => {}
            }
        }
        if !busy.is_empty() {
            return Err(CommandError::InTransition(busy));
        }
        let held = groups
            .iter()
            .filter(|&&i| self.local[i].state == GroupState::Started)
            .count();
        if held > 0 && nowhere.len() == held {
            return Err(CommandError::NowhereToGo(nowhere));
        }
        for &i in &groups {
            let v = self.next_version(i);
            self.local[i].pref = Pref::Refuse(v);
        }
        Ok(groups)
    }

    fn takeover(&mut self, scope: Scope) -> Result<Vec<usize>, CommandError> {
        let groups = self.in_scope(scope);
        if groups.is_empty() {
            return Err(CommandError::NoGroups(scope));
        }
        let mut failed = Vec::new();
        let mut busy = Vec::new();
        for &i in &groups {
            let id = &self.cfg.groups[i].id;
            match self.local[i].state {
                GroupState::Failed | GroupState::StopFailed => failed.push(id.clone()),
                GroupState::Starting | GroupState::Stopping => busy.push(id.clone()),
                _ => {}
            }
            for p in &self.peers {
                if let Some(e) = p
                    .report
                    .as_ref()
                    .and_then(|r| r.groups.iter().find(|e| e.id == *id))
                {
                    if matches!(e.state, GroupState::Starting | GroupState::Stopping) {
                        busy.push(format!("{id} on {}", p.name));
                    }
                }
            }
        }
        if !failed.is_empty() && failed.len() == groups.len() {
            return Err(CommandError::FailedHere(failed));
        }
        if !busy.is_empty() {
            return Err(CommandError::InTransition(busy));
        }
        for &i in &groups {
            let v = self.next_version(i);
            self.local[i].pref = Pref::Want(v);
        }
        Ok(groups)
    }

    fn clear(&mut self, id: &str) -> Result<Vec<usize>, CommandError> {
        let Some(i) = self.group_index(id) else {
            return Err(CommandError::NoGroup {
                id: id.to_string(),
                groups: self.cfg.groups.iter().map(|g| g.id.clone()).collect(),
            });
        };
        let l = &mut self.local[i];
        l.failed_at = None;
        l.failed_holder = None;
        let was_blocked = l.blocked_by.take().is_some();
        let was_unhealthy = l.unhealthy.take().is_some();
        match l.state {
            GroupState::Failed | GroupState::StopFailed => {
                self.transition(i, GroupState::Stopped, "cleared by the operator".into());
                Ok(vec![i])
            }
            _ if was_blocked || was_unhealthy => Ok(vec![i]),
            state => Err(CommandError::NothingToClear {
                id: id.to_string(),
                state,
            }),
        }
    }

    /// How a command that acted on `groups` stands.
    pub fn progress(&self, cmd: &Command, groups: &[usize]) -> Progress {
        let mut moves = Vec::new();
        for &i in groups {
            let id = &self.cfg.groups[i].id;
            let l = &self.local[i];
            let owner = self.owner(i);
            match cmd {
                Command::Standby(_) => match l.state {
                    GroupState::StopFailed => {
                        return Progress::Failed(format!("{id}: stop failed here"))
                    }
                    GroupState::Stopped | GroupState::Failed => match owner {
                        Some((o, GroupState::Started)) => moves.push(Move {
                            group: id.clone(),
                            from: Some(self.cfg.node.clone()),
                            to: Some(o),
                            state: GroupState::Started,
                        }),
                        Some(_) => return Progress::Pending,
                        None if self.desired(i).0.is_some() => return Progress::Pending,
                        None => moves.push(Move {
                            group: id.clone(),
                            from: Some(self.cfg.node.clone()),
                            to: None,
                            state: GroupState::Stopped,
                        }),
                    },
                    _ => return Progress::Pending,
                },
                Command::Takeover(_) => match l.state {
                    GroupState::Started => moves.push(Move {
                        group: id.clone(),
                        from: None,
                        to: Some(self.cfg.node.clone()),
                        state: GroupState::Started,
                    }),
                    GroupState::Failed | GroupState::StopFailed if groups.len() == 1 => {
                        return Progress::Failed(format!("{id}: start failed here"))
                    }
                    GroupState::Failed | GroupState::StopFailed => moves.push(Move {
                        group: id.clone(),
                        from: None,
                        to: None,
                        state: l.state,
                    }),
                    _ => return Progress::Pending,
                },
                Command::Clear(_) => {}
            }
        }
        Progress::Done(moves)
    }

    /// The node that runs group `i`, and its state there.
    fn owner(&self, i: usize) -> Option<(String, GroupState)> {
        self.views(i)
            .into_iter()
            .find(|v| v.state.may_run())
            .map(|v| (v.node, v.state))
    }
}

fn scope_word(scope: Scope) -> &'static str {
    match scope {
        Scope::All => "resource",
        Scope::Local => "local",
        Scope::Foreign => "foreign",
    }
}
