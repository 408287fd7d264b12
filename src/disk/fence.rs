//! Resource-level fencing (DRBD 8.4 `fencing` + `handlers { fence-peer }`,
//! heartbeat's dopd): which handler runs, with which environment, and what
//! the peer's answer to the built-in outdater means. No I/O here: the device
//! runs the handler (`device/fence_io.rs`), hbd carries the built-in
//! outdater's messages (`runtime/outdate.rs`).
//!
//! The exit codes are DRBD 8.4's (`conn_try_outdate_peer`, drbd_nl.c), and
//! [`super::state::FenceOutcome`] says what each one does to the states:
//!
//! | code | meaning                              |
//! |------|--------------------------------------|
//! | 3    | the peer's disk is Inconsistent      |
//! | 4    | the peer got (or was) Outdated       |
//! | 5    | the peer is unreachable              |
//! | 6    | the peer is Primary: outdate myself  |
//! | 7    | the peer was STONITHed               |
//! | else | the handler failed                   |

use super::ctl::{DiskResponse, DiskStatus};
use super::state::{DiskState, Role};
use std::time::Duration;

/// The peer's disk is Inconsistent (or has no data).
pub const PEER_INCONSISTENT: u8 = 3;
/// The peer's disk is Outdated now.
pub const PEER_OUTDATED: u8 = 4;
/// The peer could not be asked.
pub const PEER_UNREACHABLE: u8 = 5;
/// The peer is Primary: the asking node outdates itself.
pub const PEER_PRIMARY: u8 = 6;
/// The peer was fenced (STONITH).
pub const PEER_FENCED: u8 = 7;

/// heartbeat's helper: `fence-peer "/usr/lib/heartbeat/drbd-peer-outdater -t 5"`.
pub const PEER_OUTDATER: &str = "drbd-peer-outdater";
/// drbd-peer-outdater's default timeout (`-t`, seconds).
pub const DEFAULT_OUTDATER_TIMEOUT: Duration = Duration::from_secs(60);

/// What answers the device's "fence the peer".
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FenceHandler {
    /// hbd's built-in outdater (heartbeat's dopd): the local hbd asks the
    /// peer's hbd over every heartbeat medium to outdate its disk.
    BuiltIn {
        /// Give up after this long (code 5).
        timeout: Duration,
        /// Why it was chosen, for the log.
        why: &'static str,
    },
    /// Any other handler: run with `/bin/sh -c` and DRBD's environment.
    Command(String),
    /// `fencing` is on but no handler is configured (and no dopd): the
    /// handler "fails", as DRBD's missing helper does.
    Missing,
}

/// The handler of a resource: a `fence-peer` naming heartbeat's
/// drbd-peer-outdater, or none while ha.cf respawns dopd, selects the
/// built-in outdater; anything else (Pacemaker's crm-fence-peer.sh
/// included) is run as written.
pub fn handler(fence_peer: Option<&str>, dopd_respawned: bool) -> FenceHandler {
    match fence_peer {
        Some(cmd) => match peer_outdater_timeout(cmd) {
            Some(timeout) => FenceHandler::BuiltIn {
                timeout,
                why: "fence-peer names heartbeat's drbd-peer-outdater",
            },
            None => FenceHandler::Command(cmd.to_string()),
        },
        None if dopd_respawned => FenceHandler::BuiltIn {
            timeout: DEFAULT_OUTDATER_TIMEOUT,
            why: "no fence-peer handler, and ha.cf respawns dopd",
        },
        None => FenceHandler::Missing,
    }
}

/// `Some(timeout)` when `cmd` runs heartbeat's drbd-peer-outdater (its
/// `-t SECONDS`, or the default).
fn peer_outdater_timeout(cmd: &str) -> Option<Duration> {
    let mut words = cmd.split_whitespace();
    let prog = words.next()?;
    if prog.rsplit('/').next() != Some(PEER_OUTDATER) {
        return None;
    }
    let mut timeout = DEFAULT_OUTDATER_TIMEOUT;
    while let Some(w) = words.next() {
        let v = match w.strip_prefix("-t") {
            Some("") => words.next(),
            Some(rest) => Some(rest),
            None => None,
        };
        if let Some(secs) = v.and_then(|v| v.parse::<u64>().ok()) {
            timeout = Duration::from_secs(secs.clamp(1, 3600));
        }
    }
    Some(timeout)
}

/// Whether one of ha.cf's `respawn` commands is heartbeat's dopd.
pub fn is_dopd(command: &str) -> bool {
    command
        .split_whitespace()
        .next()
        .and_then(|p| p.rsplit('/').next())
        == Some("dopd")
}

/// The environment DRBD 8.4 gives its handlers (`drbd_khelper`, and what
/// drbdadm adds): DRBD_RESOURCE, DRBD_PEER(S), DRBD_MINOR, DRBD_CONF,
/// DRBD_BACKING_DEV, DRBD_MY/PEER_ADDRESS and _AF.
pub struct HandlerEnv<'a> {
    pub resource: &'a str,
    pub peer: &'a str,
    pub device: &'a std::path::Path,
    pub backing: &'a std::path::Path,
    pub conf: &'a std::path::Path,
    pub my_address: std::net::SocketAddrV4,
    pub peer_address: std::net::SocketAddrV4,
}

impl HandlerEnv<'_> {
    pub fn vars(&self) -> Vec<(String, String)> {
        let minor: String = self
            .device
            .to_string_lossy()
            .chars()
            .rev()
            .take_while(|c| c.is_ascii_digit())
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect();
        let mut v = vec![
            ("DRBD_RESOURCE", self.resource.to_string()),
            ("DRBD_PEER", self.peer.to_string()),
            ("DRBD_PEERS", self.peer.to_string()),
            ("DRBD_CONF", self.conf.display().to_string()),
            ("DRBD_BACKING_DEV", self.backing.display().to_string()),
            ("DRBD_MY_ADDRESS", self.my_address.ip().to_string()),
            ("DRBD_MY_AF", "ipv4".to_string()),
            ("DRBD_PEER_ADDRESS", self.peer_address.ip().to_string()),
            ("DRBD_PEER_AF", "ipv4".to_string()),
        ];
        if !minor.is_empty() {
            v.push(("DRBD_MINOR", minor.clone()));
            v.push(("DRBD_VOLUME", "0".to_string()));
        }
        v.into_iter().map(|(k, v)| (k.to_string(), v)).collect()
    }
}

/// A handler's exit status as the one byte DRBD looks at (`None`: killed
/// by a signal, or out of range).
pub fn exit_code(code: i32) -> Option<u8> {
    u8::try_from(code).ok()
}

/// The peer side of the built-in outdater: the answer of the local
/// device to `OutdateForPeer`, as a fence-peer exit code and a message.
pub fn outdate_answer(r: &DiskResponse) -> (u8, String) {
    match r {
        DiskResponse::Done { status, .. } => from_status(status),
        DiskResponse::Refused { message, status } => {
            if status.role == Role::Primary {
                (PEER_PRIMARY, format!("the peer is Primary: {message}"))
            } else if message == crate::disk::state::REFUSE_OUTDATE_NEWER {
                // As a Primary: the peer's data is the newer one, so the
                // asker outdates itself (code 6) instead of promoting.
                (
                    PEER_PRIMARY,
                    format!("the peer's disk holds writes made without this node: {message}"),
                )
            } else {
                let (code, m) = from_status(status);
                (code, format!("{m} ({message})"))
            }
        }
        DiskResponse::Failed { message } => (
            PEER_UNREACHABLE,
            format!("the peer's device failed to outdate: {message}"),
        ),
    }
}

fn from_status(s: &DiskStatus) -> (u8, String) {
    match s.disk {
        DiskState::Outdated => (PEER_OUTDATED, "the peer's disk is Outdated".into()),
        DiskState::Diskless | DiskState::Attaching | DiskState::Inconsistent => {
            (PEER_INCONSISTENT, format!("the peer's disk is {}", s.disk))
        }
        d => (
            PEER_UNREACHABLE,
            format!("the peer's disk stays {d}: not outdated"),
        ),
    }
}

/// A short text for a fence-peer exit code.
pub fn code_meaning(code: u8) -> &'static str {
    match code {
        PEER_INCONSISTENT => "peer is inconsistent",
        PEER_OUTDATED => "peer outdated",
        PEER_UNREACHABLE => "peer unreachable",
        PEER_PRIMARY => "peer is Primary",
        PEER_FENCED => "peer fenced",
        _ => "handler failed",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heartbeat_lines_select_the_built_in_outdater() {
        assert_eq!(
            handler(Some("/usr/lib/heartbeat/drbd-peer-outdater -t 5"), false),
            FenceHandler::BuiltIn {
                timeout: Duration::from_secs(5),
                why: "fence-peer names heartbeat's drbd-peer-outdater",
            }
        );
        assert!(matches!(
            handler(Some("/usr/lib/drbd/drbd-peer-outdater -t7"), false),
            FenceHandler::BuiltIn { timeout, .. } if timeout == Duration::from_secs(7)
        ));
        assert!(matches!(
            handler(Some("drbd-peer-outdater"), false),
            FenceHandler::BuiltIn { timeout, .. } if timeout == DEFAULT_OUTDATER_TIMEOUT
        ));
        assert!(matches!(handler(None, true), FenceHandler::BuiltIn { .. }));
        assert_eq!(handler(None, false), FenceHandler::Missing);
        // Pacemaker's handler is not mapped: it runs as written.
        assert_eq!(
            handler(Some("/usr/lib/drbd/crm-fence-peer.sh"), true),
            FenceHandler::Command("/usr/lib/drbd/crm-fence-peer.sh".into())
        );
        assert!(is_dopd("/usr/lib/heartbeat/dopd"));
        assert!(is_dopd("/usr/lib64/heartbeat/dopd -v"));
        assert!(!is_dopd("/usr/lib/heartbeat/ipfail"));
    }

    #[test]
    fn handler_environment_is_drbds() {
        let e = HandlerEnv {
            resource: "r0",
            peer: "n2",
            device: std::path::Path::new("/dev/drbd12"),
            backing: std::path::Path::new("/dev/loop3"),
            conf: std::path::Path::new("/etc/ha.d/drbd.conf"),
            my_address: "192.0.2.1:7789".parse().unwrap(),
            peer_address: "192.0.2.2:7789".parse().unwrap(),
        }
        .vars();
        let get = |k: &str| e.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
        assert_eq!(get("DRBD_RESOURCE"), Some("r0"));
        assert_eq!(get("DRBD_PEER"), Some("n2"));
        assert_eq!(get("DRBD_PEERS"), Some("n2"));
        assert_eq!(get("DRBD_MINOR"), Some("12"));
        assert_eq!(get("DRBD_PEER_ADDRESS"), Some("192.0.2.2"));
        assert_eq!(get("DRBD_CONF"), Some("/etc/ha.d/drbd.conf"));
        assert_eq!(exit_code(4), Some(4));
        assert_eq!(exit_code(-9), None);
        assert_eq!(exit_code(300), None);
    }
}
