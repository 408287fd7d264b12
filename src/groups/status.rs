//! What `hbctl status` shows of each group: owner, desired owner, every
//! node's state and, when the group runs nowhere or should start here
//! but does not, what it waits for.

use super::*;

impl Groups {
    pub fn status(&self) -> Vec<GroupView> {
        (0..self.cfg.groups.len())
            .map(|i| {
                let views = self.views(i);
                let owner = views.iter().find(|v| v.state.may_run());
                let (desired, why) = if self.ready() {
                    self.desired(i)
                } else {
                    (None, "probing")
                };
                GroupView {
                    id: self.cfg.groups[i].id.clone(),
                    home: self.cfg.groups[i].home.clone(),
                    owner: owner.map(|o| o.node.clone()),
                    state: owner.map_or(self.local[i].state, |o| o.state),
                    local: self.local[i].state,
                    nodes: views.iter().map(|v| (v.node.clone(), v.state)).collect(),
                    desired: desired.clone(),
                    pref: match self.local[i].pref {
                        Pref::None => None,
                        Pref::Refuse(_) => Some("standby".into()),
                        Pref::Want(_) => Some("takeover".into()),
                    },
                    unhealthy_on: views
                        .iter()
                        .filter(|v| v.unhealthy)
                        .map(|v| v.node.clone())
                        .collect(),
                    note: if owner.is_none() && desired.is_none() {
                        Some(match &self.local[i].blocked_by {
                            Some(n) if self.cfg.fencing => {
                                format!(
                                    "stop failed on {n}, which left: waiting for fencing of {n}"
                                )
                            }
                            Some(n) => format!(
                                "stop failed on {n}, which left: hbctl clear when it is cleaned up"
                            ),
                            None => self.hold_blocker().unwrap_or_else(|| why.to_string()),
                        })
                    } else if owner.is_none() && desired.as_deref() == Some(self.cfg.node.as_str())
                    {
                        // It should start here: say what it waits for.
                        self.start_blocker().or_else(|| {
                            let l = &self.local[i];
                            let mine = Grant {
                                node: self.cfg.node.clone(),
                                incarnation: self.incarnation,
                                claim: l.claim,
                            };
                            let missing = self.missing_grants(i, &mine);
                            (l.state == GroupState::Stopped && !missing.is_empty()).then(|| {
                                format!("waiting for the agreement of {}", missing.join(", "))
                            })
                        })
                    } else {
                        None
                    },
                }
            })
            .collect()
    }
}
