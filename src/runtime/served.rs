//! Served data and catching-up disks. How much clients wrote to each group's replicated disks here
//! while the disks had no peer (`out_of_sync_bytes` while not Connected). After
//! a healed partition the group machine keeps a group on the side whose disks
//! served the clients, not on its home node ([`crate::groups::Groups::set_served`]).
//! And whether a group's disks here are behind the peer's and resyncing: no
//! group moves to such a node while another can run it
//! ([`crate::groups::Groups::set_disk_wait`]: auto_failback waits for the
//! resync instead of handing back to a disk that cannot be promoted).
//!
//! ```text
//!   poller task ──(GroupDisks per group, every POLL, bounded 1)──▶ daemon loop
//!   (asks each drbddisk device on its control socket)   set_served, set_disk_wait
//! ```
//!
//! The devices answer on their own sockets, so the asking runs off the loop;
//! a device that does not answer counts 0 (nothing known to have been served).

use crate::agents::AgentKind;
use crate::config::GroupConfig;
use crate::disk::state::ConnState;
use std::path::PathBuf;
use std::time::Duration;
use tokio::sync::mpsc;

/// How often the devices are asked.
pub const POLL: Duration = Duration::from_secs(1);
/// How long one device may take to answer.
const ASK_TIMEOUT: Duration = Duration::from_millis(800);

/// The drbd.conf resources of each group (its `drbddisk::RES` resources).
pub fn disks_of(groups: &[GroupConfig]) -> Vec<Vec<String>> {
    groups
        .iter()
        .map(|g| {
            g.resources
                .iter()
                .filter_map(|r| match &r.kind {
                    AgentKind::Drbddisk(a) => Some(a.res.clone()),
                    _ => None,
                })
                .collect()
        })
        .collect()
}

/// What one device counts as served: its out-of-sync bytes while it has no
/// peer, 0 once connected (the resync is under way or done).
pub fn served_bytes(s: &crate::disk::ctl::DiskStatus) -> u64 {
    if s.connection < ConnState::Connected {
        s.out_of_sync_bytes
    } else {
        0
    }
}

/// Why this copy of a disk is behind its peer's and catching up, if it is:
/// connected to an UpToDate peer while this disk is not UpToDate (a resync
/// from the peer, or Outdated/Inconsistent data waiting for one). A
/// Primary is never behind (it is the source).
pub fn catching_up(s: &crate::disk::ctl::DiskStatus) -> Option<String> {
    use crate::disk::state::{DiskState, Role};
    if s.role == Role::Primary
        || s.connection < ConnState::Connected
        || s.peer_disk != DiskState::UpToDate
        || s.disk == DiskState::UpToDate
    {
        return None;
    }
    Some(match s.sync_percent() {
        Some(p) => format!(
            "disk {} is {} ({p:.0}% synced from {})",
            s.name, s.disk, s.peer
        ),
        None => format!(
            "disk {} is {} (its peer {} is UpToDate)",
            s.name, s.disk, s.peer
        ),
    })
}

/// One poll: per group, the bytes served without a peer and why its disks
/// are catching up here (see [`catching_up`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GroupDisks {
    pub served: u64,
    pub catching_up: Option<String>,
}

/// Starts the poller when some group has a disk of hbd's own device (the
/// kernel module's disks are not asked: `None`).
pub fn start(
    disks: Vec<Vec<String>>,
    run_dir: PathBuf,
    kernel: bool,
    tx: mpsc::Sender<Vec<GroupDisks>>,
) -> Option<tokio::task::JoinHandle<()>> {
    if kernel || disks.iter().all(Vec::is_empty) {
        return None;
    }
    Some(tokio::spawn(async move {
        let mut tick = tokio::time::interval(POLL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let mut out = Vec::with_capacity(disks.len());
            for group in &disks {
                let answers = futures::future::join_all(
                    group
                        .iter()
                        .map(|res| crate::disk::client::status_async(&run_dir, res, ASK_TIMEOUT)),
                )
                .await;
                let ok: Vec<_> = answers.iter().filter_map(|a| a.as_ref().ok()).collect();
                out.push(GroupDisks {
                    served: ok.iter().map(|s| served_bytes(s)).sum(),
                    catching_up: ok.iter().find_map(|s| catching_up(s)),
                });
            }
            if tx.send(out).await.is_err() {
                return;
            }
        }
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agents::{drbddisk::DrbdArgs, Options, Resource};
    use crate::config::Location;

    fn group(id: &str, disks: &[&str]) -> GroupConfig {
        let mut resources = vec![Resource {
            spec: "mon".into(),
            kind: AgentKind::Mon,
            options: Options::default(),
        }];
        resources.extend(disks.iter().map(|d| Resource {
            spec: format!("drbddisk::{d}"),
            kind: AgentKind::Drbddisk(DrbdArgs {
                res: d.to_string(),
                config_dir: "/etc/ha.d".into(),
                context: None,
            }),
            options: Options::default(),
        }));
        GroupConfig {
            id: id.into(),
            home: "n1".into(),
            resources,
            at: Location {
                file: "haresources".into(),
                line: 1,
            },
        }
    }

    #[test]
    fn catching_up_only_behind_a_connected_up_to_date_peer() {
        use crate::disk::state::{DiskState, Role};
        let mut s = crate::disk::report::tests::status();
        s.role = Role::Secondary;
        s.connection = ConnState::SyncTarget;
        s.disk = DiskState::Inconsistent;
        s.peer_disk = DiskState::UpToDate;
        let why = catching_up(&s).unwrap();
        assert!(why.contains("disk r0 is Inconsistent"), "{why}");
        s.connection = ConnState::Connected;
        s.disk = DiskState::Outdated;
        assert!(catching_up(&s).is_some());
        // Caught up; or no peer to catch up from (the start decides then).
        s.disk = DiskState::UpToDate;
        assert_eq!(catching_up(&s), None);
        s.disk = DiskState::Outdated;
        s.connection = ConnState::WFConnection;
        assert_eq!(catching_up(&s), None);
        // A Primary is the source, never behind.
        s.connection = ConnState::Connected;
        s.role = Role::Primary;
        assert_eq!(catching_up(&s), None);
    }

    #[test]
    fn disks_per_group_and_no_poller_without_disks() {
        let groups = [group("a", &["r0", "r1"]), group("b", &[])];
        let disks = disks_of(&groups);
        assert_eq!(disks, [vec!["r0", "r1"], vec![]]);
        let (tx, _rx) = mpsc::channel(1);
        assert!(start(disks_of(&groups[1..]), "/run/hbd".into(), false, tx.clone()).is_none());
        // The kernel module's disks are not asked.
        assert!(start(disks, "/run/hbd".into(), true, tx).is_none());
    }
}
