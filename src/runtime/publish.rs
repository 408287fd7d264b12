//! The daemon loop's state changes as events (`hbctl events`), metrics
//! and notify-hook runs: node and link changes, group transitions, and a
//! failover's phases (`crate::events::Timeline`).

use super::*;
use crate::events::Event as Ev;
use crate::notify;

impl Daemon {
    /// A membership event: node and link changes on the bus; a peer's
    /// death also to the notify hook, and the `detect` phase of a failover
    /// when this node takes some of its groups over. Called before the
    /// group machine hears of it.
    pub(super) fn membership_event(&mut self, e: &Event, now: Duration) {
        let medium = |id: crate::membership::MediumId| {
            self.media
                .get(id.0 as usize)
                .map_or_else(|| format!("medium {}", id.0), |m| m.name.clone())
        };
        let ev = match e {
            Event::NodeUp { node, incarnation } => {
                self.timeline.node_up(node);
                Ev::change("node", node)
                    .with("state", "up")
                    .with("incarnation", incarnation)
            }
            Event::NodeRestarted { node, new, .. } => Ev::change("node", node)
                .with("state", "restarted")
                .with("incarnation", new),
            Event::NodeDead {
                node,
                reason,
                silence,
            } => {
                let reason = match reason {
                    DeadReason::Timeout => "timeout",
                    DeadReason::NeverHeard => "never_heard",
                    DeadReason::Left => "left",
                };
                let takes_over = !self.groups.takeover_from(node).is_empty();
                if let Some(t) = self.timeline.node_dead(node, *silence, takes_over, now) {
                    self.observe.publish(t);
                }
                notify::notify(
                    self.config.notify.as_ref(),
                    notify::Notice {
                        event: "node-dead".into(),
                        node: node.clone(),
                        old_state: "up".into(),
                        new_state: "dead".into(),
                        reason: reason.into(),
                        duration_ms: silence.map(|s| s.as_millis() as u64),
                        ..Default::default()
                    },
                );
                let mut ev = Ev::change("node", node)
                    .with("state", "dead")
                    .with("reason", reason);
                if let Some(s) = silence {
                    ev.duration_ms = Some(s.as_millis() as u64);
                }
                ev
            }
            Event::LinkUp { node, medium: m } => Ev::change("link", node)
                .with("medium", medium(*m))
                .with("state", "up"),
            Event::LinkDead { node, medium: m } => Ev::change("link", node)
                .with("medium", medium(*m))
                .with("state", "dead"),
            _ => return,
        };
        self.observe.publish(ev);
    }

    /// A group changed state here: an event, a metric, the notify hook for
    /// started, stopped and failed, and the end of its start's timeline.
    pub(super) fn group_event(&mut self, e: &grp::GroupEvent) {
        let now = self.now();
        self.observe
            .metrics
            .group_transition(&e.group, e.from.as_str(), e.to.as_str());
        self.observe.publish(
            Ev::change("group", &e.group)
                .with("from", e.from.as_str())
                .with("to", e.to.as_str())
                .with("reason", &e.reason),
        );
        let hook = |event: &str, reason: String, phase: Option<&Ev>| {
            notify::notify(
                self.config.notify.as_ref(),
                notify::Notice {
                    event: event.into(),
                    group: e.group.clone(),
                    node: self.config.node.clone(),
                    old_state: e.from.as_str().into(),
                    new_state: e.to.as_str().into(),
                    reason,
                    phase: phase.and_then(|p| p.phase.clone()).unwrap_or_default(),
                    duration_ms: phase.and_then(|p| p.duration_ms),
                    ..Default::default()
                },
            )
        };
        let i = self.groups.group_index(&e.group);
        let started = i.and_then(|i| self.timeline.group(i, &e.group, e.to, now));
        match e.to {
            GroupState::Started => {
                hook("group-started", e.reason.clone(), None);
                if let Some((ev, summary)) = started {
                    if ev.kind == "takeover" {
                        hook("takeover", summary, Some(&ev));
                    }
                    self.observe.publish(ev);
                }
            }
            GroupState::Starting => hook("group-starting", e.reason.clone(), None),
            GroupState::Stopped if e.from != GroupState::Stopped => {
                hook("group-stopped", e.reason.clone(), None)
            }
            GroupState::Failed | GroupState::StopFailed => {
                hook("group-failed", e.reason.clone(), None)
            }
            _ => {}
        }
    }

    /// Resource `r` of group `i` changed state here (the runner says so):
    /// the promote, mount or start phase of the group's start.
    pub(super) fn resource_changed(
        &mut self,
        i: usize,
        r: usize,
        state: GroupState,
        error: Option<&str>,
    ) {
        let now = self.now();
        let Some(g) = self.config.groups.get(i) else {
            return;
        };
        let Some(res) = g.resources.get(r) else {
            return;
        };
        let phase = crate::events::phase_of(&res.kind);
        let (id, spec) = (g.id.clone(), res.spec.clone());
        if let Some(mut ev) = self.timeline.resource(i, &id, r, &spec, phase, state, now) {
            if let Some(err) = error {
                ev = ev.with("error", err);
            }
            self.observe.publish(ev);
        }
        self.observe.publish(
            Ev::change("resource", &spec)
                .with("group", &id)
                .with("state", state.as_str()),
        );
    }

    /// A fencing ended: the `fence` phase.
    pub(super) fn fenced(&mut self, o: &crate::fence::run::Outcome, now: Duration) {
        if let Some(ev) = self.timeline.fenced(&o.node, o.ok, now) {
            self.observe.publish(ev.with("message", &o.message));
        }
    }
}
