//! One log line per state change of the machines (membership, groups,
//! quorum, ping nodes).

use super::*;

pub(super) fn log_group_event(e: &grp::GroupEvent) {
    let (from, to, reason) = (e.from.as_str(), e.to.as_str(), e.reason.as_str());
    match e.to {
        GroupState::StopFailed => {
            tracing::error!(group = %e.group, from, to, reason, "GROUP STOP FAILED")
        }
        GroupState::Failed => tracing::error!(group = %e.group, from, to, reason, "group failed"),
        _ => tracing::info!(group = %e.group, from, to, reason, "group"),
    }
}

pub(super) fn log_quorum(q: &grp::QuorumView) {
    if q.has {
        tracing::info!(votes = q.votes, needed = q.needed, why = %q.why, "quorum");
    } else {
        tracing::warn!(votes = q.votes, needed = q.needed, why = %q.why, "NO QUORUM: groups stop here");
    }
}

pub(super) fn log_ping_event(e: &ping::PingEvent) {
    match e {
        ping::PingEvent::Up { name } => tracing::info!(ping_node = %name, "ping node up"),
        ping::PingEvent::Dead { name } => tracing::warn!(ping_node = %name, "ping node dead"),
    }
}

/// One log line per state change, data in fields.
pub(super) fn log_event(media: &[network::OpenMedium], e: &Event) {
    let medium_name = |id: crate::membership::MediumId| {
        media
            .get(id.0 as usize)
            .map(|m| m.name.clone())
            .unwrap_or_else(|| format!("medium {}", id.0))
    };
    match e {
        Event::NodeUp { node, incarnation } => {
            tracing::info!(peer = %node, incarnation, "node up")
        }
        Event::NodeDead {
            node,
            reason,
            silence,
        } => tracing::warn!(
            peer = %node,
            reason = match reason {
                DeadReason::Timeout => "timeout",
                DeadReason::NeverHeard => "never_heard",
                DeadReason::Left => "left",
            },
            silence_ms = silence.map(|s| s.as_millis() as u64),
            "node dead"
        ),
        Event::NodeRestarted { node, old, new } => {
            tracing::warn!(peer = %node, old, new, "node restarted")
        }
        Event::LinkUp { node, medium } => {
            tracing::info!(peer = %node, medium = %medium_name(*medium), "link up")
        }
        Event::LinkDead { node, medium } => {
            tracing::warn!(peer = %node, medium = %medium_name(*medium), "link dead")
        }
        Event::LateHeartbeat { node, medium, gap } => tracing::warn!(
            peer = %node,
            medium = %medium_name(*medium),
            gap_ms = gap.as_millis() as u64,
            "late heartbeat"
        ),
        Event::Report { .. } | Event::Outdate { .. } => {}
        Event::PeerIncarnation {
            node,
            incarnation,
            left,
        } => tracing::debug!(peer = %node, incarnation, left, "peer incarnation remembered"),
        Event::PeerDeadtime {
            node,
            incarnation,
            deadtime,
        } => tracing::info!(
            peer = %node,
            incarnation,
            deadtime_ms = deadtime.as_millis() as u64,
            "peer deadtime"
        ),
        Event::DuplicateNode { incarnation } => tracing::error!(
            incarnation,
            "another daemon sends under this node's name: check --node and uname -n on every node"
        ),
        Event::Quorum(q) => tracing::info!(
            quorate = q.quorate,
            votes = q.votes,
            needed = q.needed,
            expected = q.expected,
            "corosync quorum"
        ),
    }
}
