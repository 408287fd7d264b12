//! `vrrp_sync_group`, as keepalived 2.2.7 does it, without I/O: the
//! members of a group change state together.
//!
//! - A member in FAULT for its own reasons (a script, an interface) sends
//!   every other member to FAULT ([`Input::SyncFault`]) until it recovers;
//! - a member that becomes MASTER takes the others (in BACKUP) with it
//!   ([`Input::SyncMaster`]);
//! - a MASTER that goes BACKUP (a higher priority heard, standby) takes the
//!   other MASTERs with it ([`Input::SyncBackup`]).
//!
//! The group's own state (for its notify scripts) is FAULT when a member is
//! in FAULT for its own reasons, MASTER when all are MASTER, BACKUP when all are BACKUP (or
//! some BACKUP and the others not yet started), STOP when all stopped; it
//! keeps its previous value while the members are on their way.

use super::state::{Input, State};

/// What the group wants done.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SyncAction {
    /// Give `input` to member `index`.
    Member(usize, Input),
    /// The group entered `state`: run its notify scripts.
    Notify(State),
}

#[derive(Debug, Clone)]
pub struct SyncGroup {
    states: Vec<State>,
    own_fault: Vec<bool>,
    /// What each member was last told about the others' faults.
    told_fault: Vec<bool>,
    state: State,
}

impl SyncGroup {
    pub fn new(members: usize) -> SyncGroup {
        SyncGroup {
            states: vec![State::Init; members],
            own_fault: vec![false; members],
            told_fault: vec![false; members],
            state: State::Init,
        }
    }

    /// The group's state.
    pub fn state(&self) -> State {
        self.state
    }

    /// Member `index` is now in `state` (`own_fault`: in FAULT for its own
    /// reasons); returns what the others must do, in order.
    pub fn update(&mut self, index: usize, state: State, own_fault: bool) -> Vec<SyncAction> {
        let mut out = Vec::new();
        let Some(&before) = self.states.get(index) else {
            return out;
        };
        self.states[index] = state;
        self.own_fault[index] = own_fault && state == State::Fault;
        // Faults first: a member going FAULT must not drag the others to
        // MASTER on its way.
        for i in 0..self.states.len() {
            let others = self.own_fault.iter().enumerate().any(|(j, f)| j != i && *f);
            if others != self.told_fault[i] {
                self.told_fault[i] = others;
                out.push(SyncAction::Member(i, Input::SyncFault(others)));
            }
        }
        let follow = match (before, state) {
            (b, State::Master) if b != State::Master => Some(Input::SyncMaster),
            (State::Master, State::Backup) => Some(Input::SyncBackup),
            _ => None,
        };
        if let Some(input) = follow {
            for (i, s) in self.states.iter().enumerate() {
                let wanted = match input {
                    Input::SyncMaster => *s == State::Backup,
                    _ => *s == State::Master,
                };
                if i != index && wanted {
                    out.push(SyncAction::Member(i, input.clone()));
                }
            }
        }
        let all = |st: State| self.states.iter().all(|s| *s == st);
        // A member in FAULT only because of the group is on its way in or
        // out: the group's state follows the members' own faults.
        let next = if self.own_fault.contains(&true) {
            State::Fault
        } else if all(State::Master) {
            State::Master
        } else if all(State::Stop) {
            State::Stop
        } else if self.states.contains(&State::Backup)
            && self
                .states
                .iter()
                .all(|s| matches!(s, State::Backup | State::Init))
        {
            State::Backup
        } else {
            self.state
        };
        if next != self.state {
            self.state = next;
            out.push(SyncAction::Notify(next));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use SyncAction::*;

    #[test]
    fn start_backup_then_master_together() {
        let mut g = SyncGroup::new(2);
        assert_eq!(
            g.update(0, State::Backup, false),
            vec![Notify(State::Backup)]
        );
        assert_eq!(g.update(1, State::Backup, false), vec![]);
        // One member's master-down timer fires: the other follows.
        assert_eq!(
            g.update(1, State::Master, false),
            vec![Member(0, Input::SyncMaster)]
        );
        assert_eq!(
            g.update(0, State::Master, false),
            vec![Notify(State::Master)]
        );
        // A higher priority preempts one: the other steps down too.
        assert_eq!(
            g.update(0, State::Backup, false),
            vec![Member(1, Input::SyncBackup)]
        );
        assert_eq!(
            g.update(1, State::Backup, false),
            vec![Notify(State::Backup)]
        );
    }

    #[test]
    fn one_fault_faults_all_and_recovery_releases_them() {
        let mut g = SyncGroup::new(3);
        for i in 0..3 {
            g.update(i, State::Master, false);
        }
        assert_eq!(g.state(), State::Master);
        assert_eq!(
            g.update(1, State::Fault, true),
            vec![
                Member(0, Input::SyncFault(true)),
                Member(2, Input::SyncFault(true)),
                Notify(State::Fault),
            ]
        );
        // The others follow into FAULT (not for their own reasons): nothing
        // more to tell, and member 1 is never held by them.
        assert_eq!(g.update(0, State::Fault, false), vec![]);
        assert_eq!(g.update(2, State::Fault, false), vec![]);
        // Member 1 recovers.
        assert_eq!(
            g.update(1, State::Backup, false),
            vec![
                Member(0, Input::SyncFault(false)),
                Member(2, Input::SyncFault(false)),
            ]
        );
        assert_eq!(g.update(0, State::Backup, false), vec![]);
        assert_eq!(
            g.update(2, State::Backup, false),
            vec![Notify(State::Backup)]
        );
    }

    #[test]
    fn two_own_faults_hold_each_other_only_while_both_fail() {
        let mut g = SyncGroup::new(2);
        g.update(0, State::Backup, false);
        g.update(1, State::Backup, false);
        g.update(0, State::Fault, true);
        assert_eq!(
            g.update(1, State::Fault, true),
            vec![Member(0, Input::SyncFault(true))]
        );
        // 1 still fails on its own: 0 stays held after its own recovery.
        assert_eq!(
            g.update(0, State::Fault, false),
            vec![Member(1, Input::SyncFault(false))]
        );
        assert_eq!(g.state(), State::Fault);
    }

    #[test]
    fn a_member_following_late_does_not_notify_again() {
        // The DB's script reports just after start; MEMCACHE hears of the
        // fault after the DB left it.
        let mut g = SyncGroup::new(2);
        assert_eq!(
            g.update(0, State::Fault, true),
            vec![Member(1, Input::SyncFault(true)), Notify(State::Fault)]
        );
        assert_eq!(
            g.update(0, State::Backup, false),
            vec![Member(1, Input::SyncFault(false)), Notify(State::Backup)]
        );
        assert_eq!(g.update(1, State::Backup, false), vec![]);
        assert_eq!(g.update(1, State::Fault, false), vec![]);
        assert_eq!(g.update(1, State::Backup, false), vec![]);
        assert_eq!(g.state(), State::Backup);
    }

    #[test]
    fn stop() {
        let mut g = SyncGroup::new(2);
        g.update(0, State::Master, false);
        g.update(1, State::Master, false);
        g.update(0, State::Stop, false);
        assert_eq!(g.update(1, State::Stop, false), vec![Notify(State::Stop)]);
    }
}
